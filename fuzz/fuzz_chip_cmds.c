/*
 * kl_chip_execute for every command byte: an input is a chip mode byte (see
 * fz_chip_restore) and a list of commands, each
 *     cmd u8 ‖ ctl u8 ‖ len u16 ‖ [ctl bit 0: dst u16 ‖ src u8 ‖ cnt u8] ‖ payload
 * ctl bit 0 copies cnt bytes of the previous successful answer (from src) into the
 * payload at dst before sending, so sequences that echo chip values (the TLS client
 * random, a context byte, a challenge) are reachable. ctl bit 1 advances the clock by
 * 6 s first (watchdog). ctl bit 2 on a TLS_SERVER_KEY_EXCHANGE (0xB5) replaces its
 * signature with a valid one by the test server key over the client random (last
 * TLS_START answer), the server random (last TLS_SERVER_HELLO) and the params, so the
 * handshake can go on past it. Invariants: a failed command answers no bytes; an acknowledged
 * change of persistent state is committed; the storage accounting adds up; the state the
 * chip would commit decodes again.
 */
#include "chip_setup.h"

static uint8_t prev[KL_MAX_PAYLOAD];
static size_t prev_len;
static uint8_t cr[32], sr[32];
static int trace; /* KL_FUZZ_TRACE set: one line per command on stderr */

/* scheme u16 ‖ plen u8 ‖ params ‖ DER signature: re-signs, returns a new buffer. */
static uint8_t *sign_ske(uint8_t *req, size_t *n)
{
    if (*n < 3 || *n - 3 < req[2]) return req;
    size_t pl = 3u + req[2];
    uint8_t tbs[64 + 256], dig[32], raw[64], der[80];
    memcpy(tbs, cr, 32);
    memcpy(tbs + 32, sr, 32);
    memcpy(tbs + 64, req + 3, req[2]);
    size_t dl = 0;
    if (kl_cx_sha256(tbs, 64u + req[2], dig) != KL_OK ||
        kl_cx_ecdsa_sign(kl_chip_drbg(fz_chip), fz_server_priv, dig, raw) != KL_OK ||
        kl_cx_sig_raw_to_der(raw, der, sizeof der, &dl) != KL_OK)
        return req;
    uint8_t *o = malloc(pl + dl);
    FZ_CHECK(o != NULL);
    memcpy(o, req, pl);
    memcpy(o + pl, der, dl);
    free(req);
    *n = pl + dl;
    return o;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fz_chip_setup();
    trace = getenv("KL_FUZZ_TRACE") != NULL;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fz_in in = {data, size};
    fz_chip_restore(fz_u8(&in));
    prev_len = 0;
    uint64_t now = 1000;
    kl_chip_tick(fz_chip, now);
    for (int k = 0; k < 64 && in.n; k++) {
        uint8_t cmd = fz_u8(&in), ctl = fz_u8(&in);
        size_t want = fz_u16(&in) % (KL_MAX_PAYLOAD + 8), got;
        uint16_t dst = 0;
        uint8_t src = 0, cnt = 0;
        if (ctl & 1) {
            dst = fz_u16(&in);
            src = fz_u8(&in);
            cnt = fz_u8(&in);
        }
        const uint8_t *p = fz_bytes(&in, want, &got);
        uint8_t *req = malloc(got ? got : 1);
        FZ_CHECK(req != NULL);
        if (got) memcpy(req, p, got);
        if (ctl & 1)
            for (size_t i = 0; i < cnt && (size_t)src + i < prev_len && dst + i < got; i++)
                req[dst + i] = prev[src + i];
        if ((ctl & 4) && cmd == 0xB5) req = sign_ske(req, &got);
        if (ctl & 2) {
            now += 6000;
            kl_chip_tick(fz_chip, now);
        }
        if (cmd == 0xB3 && got >= 32) memcpy(sr, req, 32);
        size_t rlen = 12345;
        kl_status st = fz_exec(cmd, req, got, &rlen);
        free(req);
        if (trace)
            fprintf(stderr, "cmd %02X len %zu -> %s (%zu bytes)\n", cmd, got, kl_status_name(st),
                    rlen);
        FZ_CHECK(rlen <= KL_MAX_PAYLOAD);
        if (st != KL_OK) {
            FZ_CHECK(rlen == 0);
        } else {
            fz_chip_durable(cmd);
            memcpy(prev, fz_resp, rlen);
            prev_len = rlen;
            if (cmd == 0xB1 && rlen == 32) memcpy(cr, fz_resp, 32);
        }
    }
    fz_chip_check();
    return 0;
}
