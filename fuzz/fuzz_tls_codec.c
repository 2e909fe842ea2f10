/* host/tls_codec.c: every server-message parser, the handshake splitter and the
 * ClientHello builder (with hostile names) on fuzz bytes. Pointers handed back must
 * lie inside the input; lengths must add up. Byte 0 picks the parser. */
#include <string.h>

#include "fuzz.h"
#include "tls_codec.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    return 0;
}

static int inside(const uint8_t *p, size_t n, const uint8_t *b, size_t bn)
{
    return p >= b && n <= bn && (size_t)(p - b) <= bn - n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    uint8_t sel = data[0];
    const uint8_t *b = data + 1;
    size_t n = size - 1;
    uint8_t alert = 0;
    const char *why = NULL;
    static const uint16_t suites[] = {0xC02B, 0xC0AC};
    const char *alpn[] = {"mqtt", "x-amzn-mqtt-ca"};
    struct kl_tls_offer o = {.server_name = "iot.example.com",
                             .alpn = alpn,
                             .alpn_n = 2,
                             .suites = suites,
                             .suites_n = 2,
                             .no_mfl = sel & 0x80};
    kl_status st;
    switch (sel & 7) {
    case 0: {
        struct kl_tls_server_hello sh;
        st = kl_tls_parse_server_hello(b, n, &o, &sh, &alert, &why);
        if (st == KL_OK) {
            FZ_CHECK(sh.suite == 0xC02B || sh.suite == 0xC0AC);
            FZ_CHECK(memchr(sh.alpn, 0, sizeof sh.alpn) != NULL);
        }
        break;
    }
    case 1: {
        const uint8_t *der[KL_TLS_MAX_CHAIN];
        size_t len[KL_TLS_MAX_CHAIN], count = 0;
        st = kl_tls_parse_certificate(b, n, der, len, &count, &alert, &why);
        if (st == KL_OK) {
            FZ_CHECK(count >= 1 && count <= KL_TLS_MAX_CHAIN);
            for (size_t i = 0; i < count; i++)
                FZ_CHECK(len[i] >= 1 && len[i] <= KL_TLS_MAX_CERT && inside(der[i], len[i], b, n));
        }
        break;
    }
    case 2: {
        const uint8_t *params = NULL, *sig = NULL;
        size_t plen = 0, slen = 0;
        uint16_t scheme = 0;
        st = kl_tls_parse_server_key_exchange(b, n, &params, &plen, &scheme, &sig, &slen, &alert,
                                              &why);
        if (st == KL_OK) {
            FZ_CHECK(plen == 69 && inside(params, plen, b, n) && inside(sig, slen, b, n));
            FZ_CHECK(slen >= 8 && slen <= 72 && scheme == 0x0403);
        }
        break;
    }
    case 3: {
        int can = 0;
        st = kl_tls_parse_certificate_request(b, n, &can, &alert, &why);
        break;
    }
    case 4: {
        uint8_t type;
        const uint8_t *body;
        size_t blen, total;
        st = kl_tls_next_handshake(b, n, &type, &body, &blen, &total);
        if (st == KL_OK)
            FZ_CHECK(total == blen + 4 && total <= n && inside(body, blen, b, n));
        else
            FZ_CHECK(st == KL_E_TIMEOUT);
        return 0;
    }
    default: {
        /* ClientHello with a hostile server name and ALPN list (NUL-split input) */
        char name[300], a0[300];
        size_t k = n < sizeof name - 1 ? n : sizeof name - 1;
        memcpy(name, b, k);
        name[k] = 0;
        size_t nl = strlen(name);
        size_t rest = n > nl + 1 ? n - nl - 1 : 0;
        size_t ka = rest < sizeof a0 - 1 ? rest : sizeof a0 - 1;
        memcpy(a0, nl + 1 <= n ? b + nl + 1 : b + n, ka);
        a0[ka] = 0;
        const char *al[] = {a0, "mqtt"};
        struct kl_tls_offer oc = {.server_name = name,
                                  .alpn = al,
                                  .alpn_n = (sel & 8) ? 2 : 1,
                                  .suites = suites,
                                  .suites_n = 2,
                                  .no_mfl = sel & 0x80};
        static uint8_t out[4096];
        uint8_t rnd[32] = {0};
        size_t len = 0;
        size_t cap = (sel & 0x40) ? 64 : sizeof out;
        st = kl_tls_build_client_hello(&oc, rnd, out, cap, &len);
        if (st == KL_OK) {
            FZ_CHECK(len <= cap && len >= 4);
            uint8_t type;
            const uint8_t *body;
            size_t blen, total;
            FZ_CHECK(kl_tls_next_handshake(out, len, &type, &body, &blen, &total) == KL_OK);
            FZ_CHECK(type == KL_HT_CLIENT_HELLO && total == len);
        }
        return 0;
    }
    }
    if (st != KL_OK) FZ_CHECK(st == KL_E_PEER && why != NULL && alert != 0);
    return 0;
}
