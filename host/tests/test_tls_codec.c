/* TLS handshake codec and X.509 host check: good messages parse, every truncation and
 * every single-bit flip of hostile input is refused or parsed without reading out of
 * bounds (run under ASan), and each semantic refusal gives the right alert. */
#include "kl_test.h"
#include "kl_test_ossl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "../tls_codec.h"
#include "keylink/tls.h"

static const uint16_t suites[] = {0xC02B, 0xC0AC};
static const char *const alpn[] = {"x-amzn-mqtt-ca", "mqtt"};

static struct kl_tls_offer offer(void)
{
    struct kl_tls_offer o = {"iot.example.com", alpn, 2, suites, 2, 0};
    return o;
}

/* Finds extension type in a ClientHello; returns its data or NULL. */
static const uint8_t *ch_ext(const uint8_t *m, size_t n, uint16_t type, size_t *len)
{
    struct kl_rd r;
    kl_rd_init(&r, m + 4, n - 4);
    kl_rd_bytes(&r, 2 + 32);
    kl_rd_bytes(&r, kl_rd_u8(&r));
    kl_rd_bytes(&r, kl_rd_u16(&r));
    kl_rd_bytes(&r, kl_rd_u8(&r));
    struct kl_rd e = kl_rd_sub(&r, kl_rd_u16(&r));
    while (e.n && !e.bad) {
        uint16_t t = kl_rd_u16(&e);
        uint16_t l = kl_rd_u16(&e);
        const uint8_t *d = kl_rd_bytes(&e, l);
        if (t == type) {
            *len = l;
            return d;
        }
    }
    return NULL;
}

static void client_hello(void)
{
    struct kl_tls_offer o = offer();
    uint8_t rnd[32], m[512];
    memset(rnd, 0xA5, sizeof rnd);
    size_t n = 0;
    CHECK(kl_tls_build_client_hello(&o, rnd, m, sizeof m, &n) == KL_OK);
    CHECK(m[0] == 1 && ((size_t)m[1] << 16 | (size_t)m[2] << 8 | m[3]) == n - 4);
    CHECK(m[4] == 3 && m[5] == 3 && !memcmp(m + 6, rnd, 32) && m[38] == 0);
    /* suites: ours then the renegotiation SCSV */
    static const uint8_t cs[] = {0x00, 0x06, 0xC0, 0x2B, 0xC0, 0xAC, 0x00, 0xFF, 0x01, 0x00};
    CHECK(!memcmp(m + 39, cs, sizeof cs));
    size_t l = 0;
    const uint8_t *d = ch_ext(m, n, KL_EXT_SERVER_NAME, &l);
    CHECK(d && l == 2 + 3 + 15 && !memcmp(d + 5, "iot.example.com", 15));
    d = ch_ext(m, n, KL_EXT_ALPN, &l);
    static const uint8_t al[] = {0x00, 0x14, 14,  'x', '-', 'a', 'm', 'z', 'n', '-', 'm',
                                 'q',  't',  't', '-', 'c', 'a', 4,   'm', 'q', 't', 't'};
    CHECK(d && l == sizeof al && !memcmp(d, al, l));
    CHECK(ch_ext(m, n, KL_EXT_EMS, &l) && l == 0);
    d = ch_ext(m, n, KL_EXT_MAX_FRAGMENT_LENGTH, &l);
    CHECK(d && l == 1 && d[0] == 2);
    d = ch_ext(m, n, KL_EXT_SIGNATURE_ALGORITHMS, &l);
    CHECK(d && l == 4 && d[2] == 4 && d[3] == 3);
    /* every smaller buffer is refused, not overrun */
    for (size_t cap = 0; cap < n; cap++) {
        size_t k = 0;
        CHECK(kl_tls_build_client_hello(&o, rnd, m, cap, &k) == KL_E_BUFFER);
    }
    /* without max_fragment_length */
    o.no_mfl = 1;
    CHECK(kl_tls_build_client_hello(&o, rnd, m, sizeof m, &n) == KL_OK);
    CHECK(ch_ext(m, n, KL_EXT_MAX_FRAGMENT_LENGTH, &l) == NULL);
    CHECK(ch_ext(m, n, KL_EXT_EMS, &l) != NULL);
    o.no_mfl = 0;
    /* IP literal: no SNI; bad names refused */
    o.server_name = "127.0.0.1";
    CHECK(kl_tls_build_client_hello(&o, rnd, m, sizeof m, &n) == KL_OK);
    CHECK(ch_ext(m, n, KL_EXT_SERVER_NAME, &l) == NULL);
    o.server_name = "";
    CHECK(kl_tls_build_client_hello(&o, rnd, m, sizeof m, &n) == KL_E_ARG);
    o.server_name = "bad host";
    CHECK(kl_tls_build_client_hello(&o, rnd, m, sizeof m, &n) == KL_E_ARG);
}

/* A ServerHello body with the given extension block. */
static size_t server_hello(uint8_t *b, uint16_t suite, const uint8_t *ext, size_t elen)
{
    size_t n = 0;
    b[n++] = 3;
    b[n++] = 3;
    for (int i = 0; i < 32; i++)
        b[n++] = (uint8_t)i;
    b[n++] = 4; /* session id */
    memcpy(b + n, "SIDS", 4);
    n += 4;
    b[n++] = (uint8_t)(suite >> 8);
    b[n++] = (uint8_t)suite;
    b[n++] = 0;
    b[n++] = (uint8_t)(elen >> 8);
    b[n++] = (uint8_t)elen;
    memcpy(b + n, ext, elen);
    return n + elen;
}

static const uint8_t good_ext[] = {0xFF, 0x01, 0x00, 0x01, 0x00,       /* renegotiation_info */
                                   0x00, 0x17, 0x00, 0x00,             /* EMS */
                                   0x00, 0x01, 0x00, 0x01, 0x02,       /* MFL */
                                   0x00, 0x0B, 0x00, 0x02, 0x01, 0x00, /* ec_point_formats */
                                   0x00, 0x00, 0x00, 0x00,             /* SNI ack */
                                   0x00, 0x10, 0x00, 0x07, 0x00, 0x05, 0x04, /* ALPN "mqtt" */
                                   'm',  'q',  't',  't'};

static void server_hello_parse(void)
{
    struct kl_tls_offer o = offer();
    uint8_t b[256];
    size_t n = server_hello(b, 0xC0AC, good_ext, sizeof good_ext);
    struct kl_tls_server_hello sh;
    uint8_t alert = 0xEE;
    const char *why = NULL;
    CHECK(kl_tls_parse_server_hello(b, n, &o, &sh, &alert, &why) == KL_OK);
    CHECK(sh.suite == 0xC0AC && sh.ems && sh.reneg && sh.mfl && !strcmp(sh.alpn, "mqtt"));
    CHECK(sh.random[0] == 0 && sh.random[31] == 31);
    /* truncations: every prefix but "no extensions at all" fails cleanly */
    size_t no_ext = n - sizeof good_ext - 2;
    for (size_t k = 0; k < n; k++) {
        kl_status st = kl_tls_parse_server_hello(b, k, &o, &sh, &alert, &why);
        CHECK(k == no_ext ? st == KL_OK : st == KL_E_PEER);
    }
    CHECK(kl_tls_parse_server_hello(NULL, 0, &o, &sh, &alert, &why) == KL_E_PEER);
    /* every bit flip: parses or is refused, never reads out of bounds */
    for (size_t i = 0; i < n * 8; i++) {
        b[i / 8] ^= (uint8_t)(1u << (i % 8));
        (void)kl_tls_parse_server_hello(b, n, &o, &sh, &alert, &why);
        b[i / 8] ^= (uint8_t)(1u << (i % 8));
    }
    /* semantic refusals */
    n = server_hello(b, 0xC02F, good_ext, sizeof good_ext); /* RSA suite, not offered */
    CHECK(kl_tls_parse_server_hello(b, n, &o, &sh, &alert, &why) == KL_E_PEER &&
          alert == KL_AL_HANDSHAKE_FAILURE);
    n = server_hello(b, 0xC02B, good_ext, sizeof good_ext);
    b[1] = 2; /* TLS 1.1 */
    CHECK(kl_tls_parse_server_hello(b, n, &o, &sh, &alert, &why) == KL_E_PEER &&
          alert == KL_AL_PROTOCOL_VERSION);
    static const uint8_t unknown[] = {0x00, 0x23, 0x00, 0x00}; /* session_ticket */
    n = server_hello(b, 0xC02B, unknown, sizeof unknown);
    CHECK(kl_tls_parse_server_hello(b, n, &o, &sh, &alert, &why) == KL_E_PEER &&
          alert == KL_AL_UNSUPPORTED_EXTENSION);
    static const uint8_t dup[] = {0x00, 0x17, 0x00, 0x00, 0x00, 0x17, 0x00, 0x00};
    n = server_hello(b, 0xC02B, dup, sizeof dup);
    CHECK(kl_tls_parse_server_hello(b, n, &o, &sh, &alert, &why) == KL_E_PEER);
    static const uint8_t bad_alpn[] = {0x00, 0x10, 0x00, 0x05, 0x00, 0x03, 0x02, 'h', '2'};
    n = server_hello(b, 0xC02B, bad_alpn, sizeof bad_alpn);
    CHECK(kl_tls_parse_server_hello(b, n, &o, &sh, &alert, &why) == KL_E_PEER &&
          alert == KL_AL_ILLEGAL_PARAMETER);
    static const uint8_t bad_reneg[] = {0xFF, 0x01, 0x00, 0x02, 0x01, 0x00};
    n = server_hello(b, 0xC02B, bad_reneg, sizeof bad_reneg);
    CHECK(kl_tls_parse_server_hello(b, n, &o, &sh, &alert, &why) == KL_E_PEER);
    static const uint8_t bad_mfl[] = {0x00, 0x01, 0x00, 0x01, 0x04};
    n = server_hello(b, 0xC02B, bad_mfl, sizeof bad_mfl);
    CHECK(kl_tls_parse_server_hello(b, n, &o, &sh, &alert, &why) == KL_E_PEER);
    o.no_mfl = 1; /* an answer to a question not asked */
    n = server_hello(b, 0xC02B, good_ext, sizeof good_ext);
    CHECK(kl_tls_parse_server_hello(b, n, &o, &sh, &alert, &why) == KL_E_PEER &&
          alert == KL_AL_UNSUPPORTED_EXTENSION);
    o.no_mfl = 0;
    n = server_hello(b, 0xC02B, good_ext, sizeof good_ext);
    b[n] = 0; /* trailing byte */
    CHECK(kl_tls_parse_server_hello(b, n + 1, &o, &sh, &alert, &why) == KL_E_PEER);
}

static void certificate_parse(void)
{
    uint8_t b[16];
    static const uint8_t two[] = {0, 0, 10, 0, 0, 2, 0xAA, 0xBB, 0, 0, 2, 0xCC, 0xDD};
    const uint8_t *der[KL_TLS_MAX_CHAIN];
    size_t len[KL_TLS_MAX_CHAIN], count = 0;
    uint8_t alert;
    const char *why;
    CHECK(kl_tls_parse_certificate(two, sizeof two, der, len, &count, &alert, &why) == KL_OK);
    CHECK(count == 2 && len[0] == 2 && der[0][0] == 0xAA && der[1][1] == 0xDD);
    for (size_t k = 0; k < sizeof two; k++)
        CHECK(kl_tls_parse_certificate(two, k, der, len, &count, &alert, &why) == KL_E_PEER);
    memcpy(b, two, sizeof two);
    b[5] = 3; /* entry claims more than the list */
    CHECK(kl_tls_parse_certificate(b, sizeof two, der, len, &count, &alert, &why) == KL_E_PEER);
    static const uint8_t empty[] = {0, 0, 0};
    CHECK(kl_tls_parse_certificate(empty, 3, der, len, &count, &alert, &why) == KL_E_PEER &&
          alert == KL_AL_HANDSHAKE_FAILURE);
    /* five certificates: more than the chip takes */
    uint8_t five[3 + 5 * 4];
    five[0] = 0;
    five[1] = 0;
    five[2] = 20;
    for (int i = 0; i < 5; i++) {
        uint8_t *e = five + 3 + 4 * i;
        e[0] = 0;
        e[1] = 0;
        e[2] = 1;
        e[3] = 0x30;
    }
    CHECK(kl_tls_parse_certificate(five, sizeof five, der, len, &count, &alert, &why) ==
              KL_E_PEER &&
          alert == KL_AL_UNSUPPORTED_CERTIFICATE);
    /* one certificate of 2049 bytes */
    static uint8_t big[3 + 3 + 2049];
    big[2] = (uint8_t)((3 + 2049) & 0xFF);
    big[1] = (uint8_t)((3 + 2049) >> 8);
    big[4] = (uint8_t)(2049 >> 8);
    big[5] = (uint8_t)(2049 & 0xFF);
    CHECK(kl_tls_parse_certificate(big, sizeof big, der, len, &count, &alert, &why) == KL_E_PEER &&
          alert == KL_AL_UNSUPPORTED_CERTIFICATE);
}

static void ske_parse(void)
{
    uint8_t b[4 + 65 + 4 + 70];
    size_t n = 0;
    b[n++] = 3;
    b[n++] = 0;
    b[n++] = 23;
    b[n++] = 65;
    b[n++] = 4;
    memset(b + n, 7, 64);
    n += 64;
    b[n++] = 4;
    b[n++] = 3;
    b[n++] = 0;
    b[n++] = 70;
    memset(b + n, 0x30, 70);
    n += 70;
    const uint8_t *p, *s;
    size_t pl, sl;
    uint16_t scheme;
    uint8_t alert;
    const char *why;
    CHECK(kl_tls_parse_server_key_exchange(b, n, &p, &pl, &scheme, &s, &sl, &alert, &why) == KL_OK);
    CHECK(p == b && pl == 69 && scheme == 0x0403 && s == b + 73 && sl == 70);
    for (size_t k = 0; k < n; k++)
        CHECK(kl_tls_parse_server_key_exchange(b, k, &p, &pl, &scheme, &s, &sl, &alert, &why) ==
              KL_E_PEER);
    b[2] = 24; /* P-384 */
    CHECK(kl_tls_parse_server_key_exchange(b, n, &p, &pl, &scheme, &s, &sl, &alert, &why) ==
              KL_E_PEER &&
          alert == KL_AL_ILLEGAL_PARAMETER);
    b[2] = 23;
    b[70] = 1; /* scheme 0x0401 rsa_pkcs1_sha256 */
    CHECK(kl_tls_parse_server_key_exchange(b, n, &p, &pl, &scheme, &s, &sl, &alert, &why) ==
          KL_E_PEER);
}

static void cert_request_parse(void)
{
    static const uint8_t cr[] = {2, 1, 64, 0, 4, 4, 1, 4, 3, 0, 4, 0, 2, 0x30, 0x00};
    int can = 0;
    uint8_t alert;
    const char *why;
    CHECK(kl_tls_parse_certificate_request(cr, sizeof cr, &can, &alert, &why) == KL_OK && can);
    for (size_t k = 0; k < sizeof cr; k++)
        CHECK(kl_tls_parse_certificate_request(cr, k, &can, &alert, &why) == KL_E_PEER);
    static const uint8_t rsa_only[] = {1, 1, 0, 2, 4, 1, 0, 0};
    CHECK(kl_tls_parse_certificate_request(rsa_only, sizeof rsa_only, &can, &alert, &why) ==
              KL_OK &&
          !can);
}

static void next_handshake(void)
{
    static const uint8_t two[] = {14, 0, 0, 0, 20, 0, 0, 2, 9, 9};
    uint8_t type;
    const uint8_t *b;
    size_t bl, total;
    CHECK(kl_tls_next_handshake(two, sizeof two, &type, &b, &bl, &total) == KL_OK);
    CHECK(type == 14 && bl == 0 && total == 4);
    CHECK(kl_tls_next_handshake(two + 4, 6, &type, &b, &bl, &total) == KL_OK && bl == 2);
    CHECK(kl_tls_next_handshake(two + 4, 5, &type, &b, &bl, &total) == KL_E_TIMEOUT);
    CHECK(kl_tls_next_handshake(two, 3, &type, &b, &bl, &total) == KL_E_TIMEOUT);
}

/* A certificate with the given SANs (NULL: no SAN) and CN, DER into out. */
static size_t make_cert(const char *cn, const char *san, uint8_t *out, size_t cap)
{
    EVP_PKEY *k = EVP_EC_gen("P-256");
    X509 *x = X509_new();
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 7);
    X509_gmtime_adj(X509_getm_notBefore(x), 0);
    X509_gmtime_adj(X509_getm_notAfter(x), 3600);
    X509_NAME *nm = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(nm, "O", MBSTRING_ASC, (const unsigned char *)"keylink", -1, -1, 0);
    X509_NAME_add_entry_by_txt(nm, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
    X509_set_issuer_name(x, nm);
    X509_set_pubkey(x, k);
    X509V3_CTX ctx;
    X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
    X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, &ctx, NID_basic_constraints, "critical,CA:FALSE");
    X509_add_ext(x, e, -1);
    X509_EXTENSION_free(e);
    if (san) {
        e = X509V3_EXT_conf_nid(NULL, &ctx, NID_subject_alt_name, san);
        X509_add_ext(x, e, -1);
        X509_EXTENSION_free(e);
    }
    X509_sign(x, k, EVP_sha256());
    size_t r = kl_test_x509_der(x, out, cap);
    X509_free(x);
    EVP_PKEY_free(k);
    return r;
}

static int host_ok(const uint8_t *d, size_t n, const char *host)
{
    int m = -1;
    char cn[64];
    if (kl_x509_check_host(d, n, host, &m, cn, sizeof cn) != KL_OK) return -1;
    return m;
}

static void x509_host(void)
{
    uint8_t d[2048];
    size_t n =
        make_cert("Device One", "DNS:localhost,DNS:*.iot.example.com,IP:127.0.0.1", d, sizeof d);
    CHECK(n > 0);
    char cn[64];
    int m = 0;
    CHECK(kl_x509_check_host(d, n, "localhost", &m, cn, sizeof cn) == KL_OK && m);
    CHECK(!strcmp(cn, "Device One"));
    CHECK(host_ok(d, n, "LOCALHOST") == 1);
    CHECK(host_ok(d, n, "a.iot.example.com") == 1);
    CHECK(host_ok(d, n, "a.b.iot.example.com") == 0);
    CHECK(host_ok(d, n, "iot.example.com") == 0);
    CHECK(host_ok(d, n, "127.0.0.1") == 1);
    CHECK(host_ok(d, n, "127.0.0.2") == 0);
    CHECK(host_ok(d, n, "localhost.evil") == 0);
    CHECK(host_ok(d, n, "Device One") == 0);
    char small[4];
    CHECK(kl_x509_check_host(d, n, "localhost", &m, small, sizeof small) == KL_E_BUFFER && m);
    /* the CN is not a name to match against */
    n = make_cert("localhost", NULL, d, sizeof d);
    CHECK(host_ok(d, n, "localhost") == 0);
    /* hostile DER: every truncation refused, every bit flip survives */
    n = make_cert("x", "DNS:localhost", d, sizeof d);
    for (size_t k = 0; k < n; k++)
        CHECK(host_ok(d, k, "localhost") == -1);
    for (size_t i = 0; i < n * 8; i++) {
        d[i / 8] ^= (uint8_t)(1u << (i % 8));
        (void)host_ok(d, n, "localhost");
        d[i / 8] ^= (uint8_t)(1u << (i % 8));
    }
    CHECK(host_ok(d, n, "localhost") == 1);
}

int main(void)
{
    client_hello();
    server_hello_parse();
    certificate_parse();
    ske_parse();
    cert_request_parse();
    next_handshake();
    x509_host();
    if (kl_fails) {
        fprintf(stderr, "%d check(s) failed\n", kl_fails);
        return 1;
    }
    printf("tls codec ok\n");
    return 0;
}
