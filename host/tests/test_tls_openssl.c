/*
 * The TLS client with every crypto step in the chip (mem:), against openssl s_server
 * -tls1_2 with a PKI made by the openssl CLI: both suites, with and without mTLS,
 * extended master secret (the chip's master secret equals s_server's key log), and the
 * refusals: another root, wrong host name, expired certificate, a server with only an
 * unsupported suite, a flipped bit in a server record, a truncated handshake message,
 * a missing client certificate. After a refusal nothing was sent as application data.
 */
#include "tls_fixture.h"

#include "keylink/channel.h"

static struct kl_se se;
static uint8_t rx[KL_TLS_RX_FULL], hs[KL_TLS_HS_DEFAULT];
static const char *const alpn[] = {"x-amzn-mqtt-ca", "mqtt"};

/* Clock that can run ahead (for the expiry test). */
static long clock_skew_s;
static uint64_t t_unix(void *ctx)
{
    (void)ctx;
    return (uint64_t)(time(NULL) + clock_skew_s);
}
static uint64_t t_mono(void *ctx)
{
    (void)ctx;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

struct conn {
    struct mitm m;
    struct kl_tls t;
    kl_status hs_st;
};

static int no_mfl;

static kl_status connect_tls(struct conn *c, const char *name, uint16_t suite, int mtls)
{
    memset(&c->m, 0, sizeof c->m);
    char port[16];
    snprintf(port, sizeof port, "%d", server_port);
    kl_status st = kl_tls_posix_connect(&c->m.sock, "127.0.0.1", port, 5000);
    if (st != KL_OK) return st;
    struct kl_tls_transport tr = {&c->m, mitm_send, mitm_recv};
    struct kl_tls_clock ck = {NULL, t_unix, t_mono};
    uint16_t suites[1] = {suite};
    struct kl_tls_config cfg = {0};
    cfg.server_name = name;
    cfg.alpn = alpn;
    cfg.alpn_n = 2;
    cfg.root_id = 0x1003;
    cfg.client_key_id = mtls ? 0x1004 : 0;
    cfg.client_cert_id = mtls ? 0x1002 : 0;
    cfg.suites = suite ? suites : NULL;
    cfg.suites_n = suite ? 1 : 0;
    cfg.timeout_ms = 10000;
    cfg.no_mfl = no_mfl;
    st = kl_tls_init(&c->t, &se, &cfg, &tr, &ck, rx, sizeof rx, hs, sizeof hs);
    if (st != KL_OK) return st;
    c->hs_st = kl_tls_handshake(&c->t);
    if (c->hs_st != KL_OK) fprintf(stderr, "  (handshake: %s)\n", kl_tls_error(&c->t));
    return c->hs_st;
}

/* A handshake with the bare default configuration through a man in the middle that cuts
 * the server's flight after cut_at bytes (0: never) or shortens the first message's
 * length by one (shorten_first). The result is in c->hs_st. */
static void connect_damaged(struct conn *c, size_t cut_at, int shorten_first)
{
    memset(c, 0, sizeof *c);
    char port[16];
    snprintf(port, sizeof port, "%d", server_port);
    CHECK_ST(kl_tls_posix_connect(&c->m.sock, "127.0.0.1", port, 5000), KL_OK);
    c->m.cut_at = cut_at;
    c->m.shorten_first = shorten_first;
    struct kl_tls_transport tr = {&c->m, mitm_send, mitm_recv};
    struct kl_tls_clock ck = {NULL, t_unix, t_mono};
    struct kl_tls_config cfg = {0};
    cfg.server_name = "localhost";
    CHECK_ST(kl_tls_init(&c->t, &se, &cfg, &tr, &ck, rx, sizeof rx, hs, sizeof hs), KL_OK);
    c->hs_st = kl_tls_handshake(&c->t);
}

static void conn_end(struct conn *c)
{
    kl_tls_close(&c->t);
    kl_tls_posix_close(&c->m.sock);
}

/* Sends a line to s_server -rev and checks it comes back reversed. */
static void echo(struct conn *c, const char *line, const char *want)
{
    CHECK_ST(kl_tls_write(&c->t, (const uint8_t *)line, strlen(line)), KL_OK);
    static char got[16384];
    size_t n = 0;
    while (n < strlen(want)) {
        size_t k = 0;
        kl_status st = kl_tls_read(&c->t, (uint8_t *)got + n, sizeof got - 1 - n, &k, 5000);
        if (st != KL_OK) {
            fprintf(stderr, "  read: %s (%s)\n", kl_status_name(st), kl_tls_error(&c->t));
            break;
        }
        n += k;
    }
    got[n] = 0;
    CHECK(strstr(got, want) != NULL);
    CHECK(!sent_contains(&c->m, line)); /* it went out sealed */
}

static void provision(void)
{
    char dir[128];
    fx_path(dir, sizeof dir, "chip");
    CHECK_ST(kl_se_mem_register(), KL_OK);
    char uri[160];
    snprintf(uri, sizeof uri, "mem:%s", dir);
    if (kl_se_open(&se, uri) != KL_OK) {
        fprintf(stderr, "cannot open %s\n", uri);
        exit(1);
    }
    struct kl_se_object_attr a;
    memset(&a, 0, sizeof a);
    CHECK_ST(kl_se_rules_parse("ahex=rwdgx:ahex=rwdgx:ahex=rwdgx", a.rules), KL_OK);
    a.props = KL_SE_PROP_PERSISTENT;
    a.usage1 = a.usage2 = KL_SE_USAGE_UNUSED;
    a.id = 0x1003;
    a.type = KL_SE_OBJ_CERT;
    a.size = 1024;
    CHECK_ST(kl_se_create_object(&se, &a), KL_OK);
    a.id = 0x1002;
    CHECK_ST(kl_se_create_object(&se, &a), KL_OK);
    a.id = 0x1004;
    a.type = KL_SE_OBJ_KEY_PAIR;
    a.size = 96;
    a.key_type = KL_SE_KEY_ECC_P256;
    a.usage1 = KL_SE_USAGE_TLS_AUTH;
    a.alg1 = KL_SE_ALG_ECDSA_SHA256;
    CHECK_ST(kl_se_create_object(&se, &a), KL_OK);
    uint8_t pub[64];
    CHECK_ST(kl_se_generate_key(&se, 0x1004, pub), KL_OK);
    /* the root goes in through IMPORT_ROOT_CERT, which checks it is a P-256 CA */
    uint8_t der[2048];
    size_t n = cert_der("sroot.pem", der, sizeof der);
    CHECK(n > 0);
    CHECK_ST(kl_se_import_root_cert(&se, 0x1003, der, n, NULL), KL_OK);
    /* a leaf is not a root */
    size_t ln = cert_der("srv.pem", der, sizeof der);
    CHECK_ST(kl_se_import_root_cert(&se, 0x1003, der, ln, NULL), KL_E_BAD_KEY);
    /* the device certificate, issued by the client CA for the chip's key */
    issue("cca", pub, "device-1", NULL, "clientAuth", -60, 86400, "dev");
    n = cert_der("dev.pem", der, sizeof der);
    CHECK(n > 0);
    CHECK_ST(kl_se_write_object(&se, 0x1002, 0, der, n), KL_OK);
}

static void handshakes(void)
{
    static const struct {
        uint16_t suite;
        const char *cipher;
        int mtls;
    } cases[] = {
        {KL_TLS_SUITE_ECDHE_ECDSA_AES128_GCM_SHA256, "ECDHE-ECDSA-AES128-GCM-SHA256", 0},
        {KL_TLS_SUITE_ECDHE_ECDSA_AES128_GCM_SHA256, "ECDHE-ECDSA-AES128-GCM-SHA256", 1},
        {KL_TLS_SUITE_ECDHE_ECDSA_AES128_CCM, "ECDHE-ECDSA-AES128-CCM", 0},
        {KL_TLS_SUITE_ECDHE_ECDSA_AES128_CCM, "ECDHE-ECDSA-AES128-CCM", 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        fprintf(stderr, "handshake %s mtls=%d\n", cases[i].cipher, cases[i].mtls);
        if (cases[i].mtls)
            server_start("-cert", "srv.pem", "-key", "srv.key", "-cipher", cases[i].cipher,
                         "-Verify", "1", "-CAfile", "cca.pem", "-alpn", "mqtt", "-rev",
                         (char *)NULL);
        else
            server_start("-cert", "srv.pem", "-key", "srv.key", "-cipher", cases[i].cipher, "-alpn",
                         "mqtt", "-rev", (char *)NULL);
        struct conn c;
        CHECK_ST(connect_tls(&c, "localhost", 0, cases[i].mtls), KL_OK);
        if (c.hs_st == KL_OK) {
            CHECK(c.t.suite == cases[i].suite);
            CHECK(c.t.ems == 1);
            CHECK(c.t.mfl == 1);
            CHECK(!strcmp(c.t.alpn, "mqtt"));
            CHECK(!strcmp(c.t.peer_cn, "localhost"));
            CHECK(c.t.client_auth == cases[i].mtls);
            CHECK(!kl_tls_pending(&c.t));
            echo(&c, "hello-keylink\n", "knilyek-olleh");
            /* a small read leaves the rest of the record pending */
            CHECK_ST(kl_tls_write(&c.t, (const uint8_t *)"abcdef\n", 7), KL_OK);
            uint8_t two[2];
            size_t kn = 0;
            CHECK_ST(kl_tls_read(&c.t, two, 2, &kn, 5000), KL_OK);
            CHECK(kn >= 1 && kl_tls_pending(&c.t));
            char restb[16] = {0};
            size_t rn = 0;
            while (kl_tls_pending(&c.t) && rn < sizeof restb - 1 &&
                   kl_tls_read(&c.t, (uint8_t *)restb + rn, sizeof restb - 1 - rn, &kn, 0) == KL_OK)
                rn += kn;
            CHECK(kn >= 1 && !kl_tls_pending(&c.t));
            /* more than one record each way (fragmented at the agreed 1024 bytes) */
            char big[3001], rev[3001];
            for (int k = 0; k < 3000; k++)
                big[k] = (char)('a' + k % 26);
            big[3000] = 0;
            for (int k = 0; k < 3000; k++)
                rev[k] = big[2999 - k];
            rev[3000] = 0;
            char line[3002];
            snprintf(line, sizeof line, "%s\n", big);
            echo(&c, line, rev);
        }
        conn_end(&c);
    }
    /* a server that warns unrecognized_name (its -servername is another) and goes on */
    {
        fprintf(stderr, "warning alert during the handshake\n");
        server_start("-cert", "srv.pem", "-key", "srv.key", "-servername", "other.example",
                     "-cert2", "srv.pem", "-key2", "srv.key", "-rev", (char *)NULL);
        struct conn c;
        CHECK_ST(connect_tls(&c, "localhost", 0, 0), KL_OK);
        CHECK(c.t.alert_recv == 112);
        if (c.hs_st == KL_OK) echo(&c, "warned\n", "denraw");
        conn_end(&c);
    }
    /* without max_fragment_length the server sends records bigger than one chip command:
     * they go through the chip in pieces */
    for (int ccm = 0; ccm < 2; ccm++) {
        fprintf(stderr, "large records, %s\n", ccm ? "CCM" : "GCM");
        server_start("-cert", "srv.pem", "-key", "srv.key", "-cipher",
                     ccm ? "ECDHE-ECDSA-AES128-CCM" : "ECDHE-ECDSA-AES128-GCM-SHA256", "-rev",
                     (char *)NULL);
        no_mfl = 1;
        struct conn c;
        CHECK_ST(connect_tls(&c, "localhost",
                             ccm ? KL_TLS_SUITE_ECDHE_ECDSA_AES128_CCM
                                 : KL_TLS_SUITE_ECDHE_ECDSA_AES128_GCM_SHA256,
                             0),
                 KL_OK);
        no_mfl = 0;
        if (c.hs_st == KL_OK) {
            CHECK(c.t.mfl == 0);
            static char big[12001], rev[12001], line[12002];
            for (int k = 0; k < 12000; k++)
                big[k] = (char)('A' + k % 23);
            for (int k = 0; k < 12000; k++)
                rev[k] = big[11999 - k];
            big[12000] = rev[12000] = 0;
            snprintf(line, sizeof line, "%s\n", big);
            echo(&c, line, rev);
        }
        conn_end(&c);
    }
}

/* The same through the secure channel: every TLS command is then 17 bytes shorter on
 * the wire, the sizes the client uses (2000-byte plaintext records, 1996/1998-byte
 * pieces of big records, 2000-byte certificate chunks) must still fit a frame. */
static void under_channel(void)
{
    fprintf(stderr, "mTLS and big records under the secure channel\n");
    uint8_t id[KL_SE_IDENTITY_LEN];
    CHECK_ST(kl_se_get_identity(&se, id), KL_OK);
    CHECK_ST(kl_se_channel_open(&se, id, kl_random_os, NULL), KL_OK);
    for (int big = 0; big < 2; big++) {
        server_start("-cert", "srv.pem", "-key", "srv.key", "-Verify", "1", "-CAfile", "cca.pem",
                     "-rev", (char *)NULL);
        no_mfl = big;
        struct conn c;
        CHECK_ST(connect_tls(&c, "localhost", 0, 1), KL_OK);
        no_mfl = 0;
        if (c.hs_st == KL_OK) {
            CHECK(c.t.client_auth == 1 && c.t.mfl == !big);
            static char line[6002], rev[6001];
            for (int k = 0; k < 6000; k++)
                line[k] = (char)('0' + k % 10);
            for (int k = 0; k < 6000; k++)
                rev[k] = line[5999 - k];
            rev[6000] = 0;
            line[6000] = '\n';
            line[6001] = 0;
            echo(&c, line, rev);
        }
        conn_end(&c);
    }
    CHECK(kl_se_channel_is_open(&se));
    CHECK_ST(kl_se_channel_close(&se), KL_OK);
}

/* The chip's master secret (exported once the config allows it) is the one s_server
 * logged: the PRF, EMS and transcript in the chip agree with OpenSSL's. */
static void master_secret(void)
{
    fprintf(stderr, "master secret vs s_server key log\n");
    server_start("-cert", "srv.pem", "-key", "srv.key", "-keylogfile", "keys.log", "-rev",
                 (char *)NULL);
    struct conn c;
    CHECK_ST(connect_tls(&c, "localhost", 0, 0), KL_OK);
    uint8_t ms[48];
    CHECK_ST(kl_se_tls_export_master(&se, ms), KL_E_ACCESS_DENIED);
    struct kl_se_config cfg;
    CHECK_ST(kl_se_get_config(&se, &cfg), KL_OK);
    cfg.flags |= 0x04;
    CHECK_ST(kl_se_set_config(&se, &cfg), KL_OK);
    CHECK_ST(kl_se_tls_export_master(&se, ms), KL_OK);
    cfg.flags &= (uint8_t)~0x04u;
    CHECK_ST(kl_se_set_config(&se, &cfg), KL_OK);
    echo(&c, "x\n", "x");
    conn_end(&c);
    server_stop();
    char hex[97];
    for (int i = 0; i < 48; i++)
        snprintf(hex + 2 * i, 3, "%02X", ms[i]);
    char p[128], line[512];
    fx_path(p, sizeof p, "keys.log");
    FILE *f = fopen(p, "r");
    int found = 0;
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, "CLIENT_RANDOM ", 14) && strcasestr(line, hex)) found = 1;
    if (f) fclose(f);
    CHECK(found);
}

static void refused(const char *what, kl_status want, struct conn *c)
{
    fprintf(stderr, "refusal: %s -> %s (%s)\n", what, kl_status_name(c->hs_st),
            kl_tls_error(&c->t));
    CHECK_ST(c->hs_st, want);
    CHECK(kl_tls_error(&c->t)[0] != 0);
    CHECK(!sent_appdata(&c->m));
    CHECK_ST(kl_tls_write(&c->t, (const uint8_t *)"secret", 6), KL_E_STATE);
    CHECK(!sent_contains(&c->m, "secret"));
    conn_end(c);
}

static void refusals(void)
{
    struct conn c;
    /* a server certificate from another root */
    server_start("-cert", "osrv.pem", "-key", "osrv.key", (char *)NULL);
    connect_tls(&c, "localhost", 0, 0);
    CHECK(c.t.alert_sent == 48); /* unknown_ca */
    refused("another root", KL_E_VERIFY_FAILED, &c);

    /* wrong host name */
    server_start("-cert", "srv.pem", "-key", "srv.key", (char *)NULL);
    connect_tls(&c, "iot.example.com", 0, 0);
    CHECK(c.t.alert_sent == 42); /* bad_certificate */
    CHECK(strstr(kl_tls_error(&c.t), "iot.example.com") != NULL);
    refused("wrong host name", KL_E_VERIFY_FAILED, &c);

    /* expired certificate (issued by the right root, validity in the past) */
    server_start("-cert", "expired.pem", "-key", "expired.key", (char *)NULL);
    connect_tls(&c, "localhost", 0, 0);
    CHECK(c.t.alert_sent == 45); /* certificate_expired */
    refused("expired certificate", KL_E_EXPIRED, &c);

    /* the chip checks validity at the time the host supplies */
    server_start("-cert", "srv.pem", "-key", "srv.key", (char *)NULL);
    clock_skew_s = 400L * 86400;
    connect_tls(&c, "localhost", 0, 0);
    clock_skew_s = 0;
    refused("clock after notAfter", KL_E_EXPIRED, &c);

    /* a server that offers only a suite we do not support */
    server_start("-cert", "srv.pem", "-key", "srv.key", "-cipher", "ECDHE-ECDSA-AES256-GCM-SHA384",
                 (char *)NULL);
    connect_tls(&c, "localhost", 0, 0);
    CHECK(c.t.alert_recv == 40); /* handshake_failure from the server */
    refused("unsupported suite only", KL_E_REFUSED, &c);

    /* mTLS required but we have no client certificate */
    server_start("-cert", "srv.pem", "-key", "srv.key", "-Verify", "1", "-CAfile", "cca.pem",
                 (char *)NULL);
    connect_tls(&c, "localhost", 0, 0);
    refused("client certificate required", KL_E_REFUSED, &c);

    /* a truncated handshake message: the ServerHello claims one byte less */
    server_start("-cert", "srv.pem", "-key", "srv.key", (char *)NULL);
    connect_damaged(&c, 0, 1);
    CHECK(c.t.alert_sent == 50); /* decode_error */
    refused("truncated ServerHello", KL_E_PEER, &c);

    /* the connection cut in the middle of the server's flight */
    server_start("-cert", "srv.pem", "-key", "srv.key", (char *)NULL);
    connect_damaged(&c, 300, 0);
    refused("cut handshake", KL_E_CLOSED, &c);

    /* a flipped bit in the server's ServerKeyExchange signature area: byte ~ end of
     * the first flight; the signature no longer verifies in the chip */
    server_start("-cert", "srv.pem", "-key", "srv.key", (char *)NULL);
    memset(&c, 0, sizeof c);
    {
        char port[16];
        snprintf(port, sizeof port, "%d", server_port);
        CHECK_ST(kl_tls_posix_connect(&c.m.sock, "127.0.0.1", port, 5000), KL_OK);
        struct kl_tls_transport tr = {&c.m, mitm_send, mitm_recv};
        struct kl_tls_clock ck = {NULL, t_unix, t_mono};
        struct kl_tls_config cfg = {0};
        cfg.server_name = "localhost";
        CHECK_ST(kl_tls_init(&c.t, &se, &cfg, &tr, &ck, rx, sizeof rx, hs, sizeof hs), KL_OK);
        /* the SKE's client/server randoms are signed: flip a bit of the server random */
        c.m.flip_at = 5 + 4 + 2 + 5;
        c.m.flip_bit = 3;
        c.hs_st = kl_tls_handshake(&c.t);
    }
    CHECK(c.t.alert_sent == 51); /* decrypt_error */
    refused("server random altered", KL_E_VERIFY_FAILED, &c);

    /* one flipped bit in a server application-data record: bad_record_mac, closed */
    server_start("-cert", "srv.pem", "-key", "srv.key", "-rev", (char *)NULL);
    CHECK_ST(connect_tls(&c, "localhost", 0, 0), KL_OK);
    c.m.flip_type = 23;
    CHECK_ST(kl_tls_write(&c.t, (const uint8_t *)"abc\n", 4), KL_OK);
    uint8_t buf[64];
    size_t got = 0;
    CHECK_ST(kl_tls_read(&c.t, buf, sizeof buf, &got, 5000), KL_E_BAD_TAG);
    CHECK(got == 0);
    CHECK(c.t.alert_sent == 20);
    CHECK_ST(kl_tls_read(&c.t, buf, sizeof buf, &got, 100), KL_E_STATE);
    CHECK_ST(kl_tls_write(&c.t, (const uint8_t *)"more", 4), KL_E_STATE);
    conn_end(&c);
    server_stop();
}

/* ---- hostile replay: a real server flight, truncated and bit-flipped ---- */
struct replay {
    const uint8_t *d;
    size_t n, pos;
};

static kl_status rp_send(void *ctx, const uint8_t *b, size_t n)
{
    (void)ctx, (void)b, (void)n;
    return KL_OK;
}

static kl_status rp_recv(void *ctx, uint8_t *b, size_t cap, size_t *got, uint32_t to)
{
    struct replay *r = ctx;
    (void)to;
    *got = 0;
    if (r->pos >= r->n) return KL_E_CLOSED;
    size_t k = r->n - r->pos;
    if (k > cap) k = cap;
    if (k > 97) k = 97; /* odd pieces: records and messages split anywhere */
    memcpy(b, r->d + r->pos, k);
    r->pos += k;
    *got = k;
    return KL_OK;
}

static kl_status replay_once(const uint8_t *d, size_t n)
{
    struct replay r = {d, n, 0};
    struct kl_tls_transport tr = {&r, rp_send, rp_recv};
    struct kl_tls_clock ck = {NULL, t_unix, t_mono};
    struct kl_tls_config cfg = {0};
    cfg.server_name = "localhost";
    struct kl_tls t;
    if (kl_tls_init(&t, &se, &cfg, &tr, &ck, rx, sizeof rx, hs, sizeof hs) != KL_OK)
        return KL_E_INTERNAL;
    kl_status st = kl_tls_handshake(&t);
    CHECK(st != KL_OK ? kl_tls_error(&t)[0] != 0 : 1);
    kl_tls_close(&t);
    return st;
}

static void hostile_replay(void)
{
    fprintf(stderr, "hostile replay of a server flight\n");
    server_start("-cert", "srv.pem", "-key", "srv.key", (char *)NULL);
    struct conn c;
    CHECK_ST(connect_tls(&c, "localhost", 0, 0), KL_OK);
    static uint8_t flight[32768];
    size_t n = c.m.got_len;
    memcpy(flight, c.m.got, n);
    conn_end(&c);
    server_stop();
    CHECK(n > 200);
    /* the replay itself is refused: our random differs, so the SKE signature fails */
    CHECK_ST(replay_once(flight, n), KL_E_VERIFY_FAILED);
    for (size_t k = 0; k < n; k += 3) /* every third truncation point */
        CHECK(replay_once(flight, k) != KL_OK);
    srand(7);
    for (int i = 0; i < 400; i++) {
        size_t at = (size_t)rand() % n;
        uint8_t bit = (uint8_t)(1u << (rand() % 8));
        flight[at] ^= bit;
        CHECK(replay_once(flight, n) != KL_OK);
        flight[at] ^= bit;
    }
}

int main(void)
{
    fx_init();
    make_server_pki("sroot", "srv", "Test Server Root");
    make_server_pki("oroot", "osrv", "Other Root");
    sh("openssl ecparam -name prime256v1 -genkey -noout -out cca.key");
    sh("openssl req -x509 -new -key cca.key -subj '/CN=Test Client CA' -days 30 -out cca.pem "
       "-addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign");
    issue("sroot", NULL, "localhost", "DNS:localhost", "serverAuth", -3 * 86400, -86400, "expired");
    provision();
    handshakes();
    master_secret();
    under_channel();
    refusals();
    hostile_replay();
    kl_se_close(&se);
    if (kl_fails) {
        fprintf(stderr, "%d check(s) failed\n", kl_fails);
        return 1;
    }
    printf("tls against openssl s_server ok\n");
    return 0;
}
