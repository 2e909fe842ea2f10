/*
 * host/tls_client.c + tls_record.c + tls_codec.c: the client handshake against a fake
 * server whose bytes come from the input, with the harness chip behind it (the chip's
 * root is the test root, 0x1004/0x1002 the client key and certificate).
 * Input: flags u8, then chunks kind u8 ‖ len u16 ‖ bytes, served in order:
 *   kind & 3 = 0  the bytes as they are (records, or garbage)
 *            = 1  a ServerHello body, wrapped as a handshake record (its random noted)
 *            = 2  ServerKeyExchange params, wrapped with a valid signature by the test
 *                 server key over the client random (taken from the ClientHello the
 *                 client sent) and the server random, so the handshake can go on
 *            = 3  bytes[0] = handshake type, the rest its body, wrapped as a record
 *   kind & 4      serve this chunk at most 7 bytes per read
 *   kind & 8      (then kind & 3 is ignored) bit 0 clear: the server's ChangeCipherSpec
 *                 and a correct, sealed Finished; bit 0 set: bytes[0] is a content type,
 *                 the rest a plaintext the harness seals as the server would
 * To play the server after ServerHelloDone the harness reads the master secret out of the
 * chip (TLS_EXPORT_MASTER; the harness chip allows it), derives the key block with the
 * chip's PRF and keeps its own transcript of the handshake messages it served and the
 * client sent, so handshakes can succeed and the fuzzer reaches application data,
 * alerts, renegotiation requests and records of every size (the chip opens those over
 * 2000 bytes in pieces).
 * flags: bit 0 mutual TLS, bit 1 no max_fragment_length, bit 2 allow no EMS, bit 3 CCM
 * only, bit 4 offer ALPN, bit 5 the smallest buffers. Invariants: a failed handshake
 * says why and sent no application data; a successful one saw the harness's Finished;
 * what kl_tls_read returns is exactly the application data the server sealed, in order.
 */
#include "../se/tls_int.h" /* host/ has a tls_int.h too */
#include "chip_link.h"
#include "keylink/tls.h"

static struct kl_se se;
static uint8_t *rx_full, *hs_full, *rx_min, *hs_min;

static struct {
    struct fz_in in;
    uint8_t out[20000]; /* what the client sent */
    size_t out_len;
    uint8_t chunk[70000]; /* the chunk being served */
    size_t chunk_len, chunk_off;
    int small;
    uint8_t sr[32];
    uint16_t suite;
    uint64_t mono;
    /* playing the server after the handshake */
    uint8_t log[20000]; /* handshake messages in transcript order */
    size_t log_len;
    int client_ccs;           /* the client's ChangeCipherSpec went out */
    size_t out_seen;          /* bytes of out already parsed into records */
    int keys;                 /* key block known */
    uint8_t skey[16], siv[4]; /* server write key and IV */
    uint64_t seq;             /* server write sequence number */
    int finished_sent;
    uint8_t app[70000]; /* application data sealed, in order */
    size_t app_len;
} srv;

static void log_add(const uint8_t *p, size_t n)
{
    size_t k = n < sizeof srv.log - srv.log_len ? n : sizeof srv.log - srv.log_len;
    memcpy(srv.log + srv.log_len, p, k);
    srv.log_len += k;
}

/* The client's plaintext handshake records go into the transcript; its CCS ends that. */
static void scan_out(void)
{
    while (srv.out_len - srv.out_seen >= 5) {
        const uint8_t *r = srv.out + srv.out_seen;
        size_t n = ((size_t)r[3] << 8) | r[4];
        if (srv.out_len - srv.out_seen < 5 + n) return;
        if (r[0] == 20) srv.client_ccs = 1;
        if (r[0] == 22 && !srv.client_ccs) log_add(r + 5, n);
        srv.out_seen += 5 + n;
    }
}

static kl_status tr_send(void *ctx, const uint8_t *b, size_t n)
{
    (void)ctx;
    size_t k = n < sizeof srv.out - srv.out_len ? n : sizeof srv.out - srv.out_len;
    memcpy(srv.out + srv.out_len, b, k);
    srv.out_len += k;
    scan_out();
    return KL_OK;
}

/* Master secret from the chip, key block with the chip's PRF (RFC 5246 6.3). */
static int derive(void)
{
    if (srv.keys) return 1;
    size_t rl = 0;
    if (fz_exec(0xBA, NULL, 0, &rl) != KL_OK || rl != 48) return 0;
    uint8_t ms[48], seed[64], kb[40];
    memcpy(ms, fz_resp, 48);
    memcpy(seed, srv.sr, 32);
    if (srv.out_len < 43) return 0;
    memcpy(seed + 32, srv.out + 11, 32);
    FZ_CHECK(kl_tls_prf(ms, 48, "key expansion", seed, 64, kb, sizeof kb) == KL_OK);
    memcpy(srv.skey, kb + 16, 16);
    memcpy(srv.siv, kb + 36, 4);
    srv.keys = 1;
    return 1;
}

/* One sealed record (type, plaintext) into o: header, explicit nonce, ciphertext, tag. */
static size_t seal(uint8_t *o, uint8_t type, const uint8_t *pt, size_t n)
{
    uint8_t nonce[12], aad[13];
    memcpy(nonce, srv.siv, 4);
    for (int i = 0; i < 8; i++) {
        nonce[4 + i] = (uint8_t)(srv.seq >> (56 - 8 * i));
        aad[i] = nonce[4 + i];
    }
    aad[8] = type;
    aad[9] = 3;
    aad[10] = 3;
    aad[11] = (uint8_t)(n >> 8);
    aad[12] = (uint8_t)n;
    struct kl_cx_cipher cx;
    enum kl_cx_aes_mode mode = srv.suite == 0xC0AC ? KL_CX_CCM : KL_CX_GCM;
    FZ_CHECK(kl_cx_cipher_init(&cx, mode, 1, 0, srv.skey, 16, nonce, 12, 16, n, aad, 13) == KL_OK);
    size_t o1 = 0, o2 = 0;
    FZ_CHECK(kl_cx_cipher_update(&cx, pt, n, o + 13, n + 32, &o1) == KL_OK);
    FZ_CHECK(kl_cx_cipher_final(&cx, NULL, 0, o + 13 + o1, n + 32 - o1, &o2) == KL_OK);
    FZ_CHECK(o1 + o2 == n + 16);
    size_t body = 8 + n + 16;
    o[0] = type;
    o[1] = 3;
    o[2] = 3;
    o[3] = (uint8_t)(body >> 8);
    o[4] = (uint8_t)body;
    memcpy(o + 5, nonce + 4, 8);
    srv.seq++;
    return 5 + body;
}

/* The server's CCS and Finished: verify_data over the transcript with the client's
 * Finished (computed here as the chip computed it). */
static size_t finished(uint8_t *o)
{
    if (!derive()) return 0;
    size_t rl = 0;
    FZ_CHECK(fz_exec(0xBA, NULL, 0, &rl) == KL_OK && rl == 48);
    uint8_t ms[48], h[32], fin[16] = {20, 0, 0, 12};
    memcpy(ms, fz_resp, 48);
    FZ_CHECK(kl_cx_sha256(srv.log, srv.log_len, h) == KL_OK);
    FZ_CHECK(kl_tls_prf(ms, 48, "client finished", h, 32, fin + 4, 12) == KL_OK);
    log_add(fin, 16);
    FZ_CHECK(kl_cx_sha256(srv.log, srv.log_len, h) == KL_OK);
    FZ_CHECK(kl_tls_prf(ms, 48, "server finished", h, 32, fin + 4, 12) == KL_OK);
    static const uint8_t ccs[6] = {20, 3, 3, 0, 1, 1};
    memcpy(o, ccs, 6);
    srv.finished_sent = 1;
    return 6 + seal(o + 6, 22, fin, 16);
}

static size_t wrap(uint8_t *o, uint8_t hs_type, const uint8_t *body, size_t n)
{
    size_t hl = 4 + n;
    o[0] = 22;
    o[1] = 3;
    o[2] = 3;
    o[3] = (uint8_t)(hl >> 8);
    o[4] = (uint8_t)hl;
    o[5] = hs_type;
    o[6] = (uint8_t)(n >> 16);
    o[7] = (uint8_t)(n >> 8);
    o[8] = (uint8_t)n;
    memcpy(o + 9, body, n);
    return 9 + n;
}

/* The next chunk from the input into srv.chunk; 0 when the input is used up. */
static int next_chunk(void)
{
    while (srv.in.n) {
        uint8_t kind = fz_u8(&srv.in);
        size_t want = fz_u16(&srv.in), got;
        const uint8_t *p = fz_bytes(&srv.in, want, &got);
        srv.small = kind & 4;
        srv.chunk_off = 0;
        if (kind & 8) {
            if (!(kind & 1)) {
                srv.chunk_len = finished(srv.chunk);
            } else if (got && derive()) {
                srv.chunk_len = seal(srv.chunk, p[0], p + 1, got - 1);
                if (p[0] == 23 && got - 1 <= sizeof srv.app - srv.app_len) {
                    memcpy(srv.app + srv.app_len, p + 1, got - 1);
                    srv.app_len += got - 1;
                }
            } else {
                srv.chunk_len = 0;
            }
            if (srv.chunk_len) return 1;
            continue;
        }
        switch (kind & 3) {
        case 0:
            memcpy(srv.chunk, p, got);
            srv.chunk_len = got;
            break;
        case 1:
            if (got >= 34) memcpy(srv.sr, p + 2, 32);
            if (got >= 35 && got >= 37u + p[34])
                srv.suite = (uint16_t)(p[35 + p[34]] << 8 | p[36 + p[34]]);
            srv.chunk_len = wrap(srv.chunk, 2, p, got);
            log_add(srv.chunk + 5, srv.chunk_len - 5);
            break;
        case 2: {
            /* the client random is at 5 (record) + 4 (handshake) + 2 (version) */
            uint8_t body[600], tbs[64 + 300], dig[32], raw[64];
            size_t pl = got < 255 ? got : 255, dl = 0;
            if (srv.out_len >= 43)
                memcpy(tbs, srv.out + 11, 32);
            else
                memset(tbs, 0, 32);
            memcpy(tbs + 32, srv.sr, 32);
            memcpy(tbs + 64, p, pl);
            memcpy(body, p, pl);
            body[pl] = 0x04;
            body[pl + 1] = 0x03;
            FZ_CHECK(kl_cx_sha256(tbs, 64 + pl, dig) == KL_OK);
            FZ_CHECK(kl_cx_ecdsa_sign(kl_chip_drbg(fz_chip), fz_server_priv, dig, raw) == KL_OK);
            FZ_CHECK(kl_cx_sig_raw_to_der(raw, body + pl + 4, 80, &dl) == KL_OK);
            body[pl + 2] = (uint8_t)(dl >> 8);
            body[pl + 3] = (uint8_t)dl;
            srv.chunk_len = wrap(srv.chunk, 12, body, pl + 4 + dl);
            log_add(srv.chunk + 5, srv.chunk_len - 5);
            break;
        }
        default:
            if (!got) continue;
            srv.chunk_len = wrap(srv.chunk, p[0], p + 1, got - 1);
            log_add(srv.chunk + 5, srv.chunk_len - 5);
            break;
        }
        if (srv.chunk_len) return 1;
    }
    return 0;
}

static kl_status tr_recv(void *ctx, uint8_t *b, size_t cap, size_t *got, uint32_t timeout_ms)
{
    (void)ctx;
    (void)timeout_ms;
    *got = 0;
    if (srv.chunk_off == srv.chunk_len && !next_chunk()) return KL_E_IO; /* server closed */
    size_t k = srv.chunk_len - srv.chunk_off;
    if (srv.small && k > 7) k = 7;
    if (k > cap) k = cap;
    memcpy(b, srv.chunk + srv.chunk_off, k);
    srv.chunk_off += k;
    *got = k;
    return KL_OK;
}

static uint64_t unix_now(void *ctx)
{
    (void)ctx;
    return 2000000000u;
}

static uint64_t mono_now(void *ctx)
{
    (void)ctx;
    return ++srv.mono;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fz_chip_setup();
    FZ_CHECK(kl_se_open_transport(&se, &fz_ops, "") == KL_OK);
    rx_full = malloc(KL_TLS_RX_FULL);
    hs_full = malloc(KL_TLS_HS_DEFAULT);
    rx_min = malloc(KL_TLS_RX_MIN);
    hs_min = malloc(KL_TLS_HS_MIN);
    FZ_CHECK(rx_full && hs_full && rx_min && hs_min);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    srv.in = (struct fz_in){data, size};
    uint8_t flags = fz_u8(&srv.in);
    fz_chip_restore(16); /* master secret readable: the harness plays the server */
    srv.out_len = srv.chunk_len = srv.chunk_off = 0;
    srv.small = 0;
    memset(srv.sr, 0, sizeof srv.sr);
    srv.suite = 0;
    srv.mono = 0;
    srv.log_len = srv.out_seen = srv.app_len = 0;
    srv.client_ccs = srv.keys = srv.finished_sent = 0;
    srv.seq = 0;
    static const uint16_t ccm[] = {KL_TLS_SUITE_ECDHE_ECDSA_AES128_CCM};
    const char *alpn[] = {"mqtt"};
    struct kl_tls_config cfg = {.server_name = "iot.example.com",
                                .alpn = (flags & 16) ? alpn : NULL,
                                .alpn_n = (flags & 16) ? 1 : 0,
                                .root_id = 0x1003,
                                .client_key_id = (flags & 1) ? 0x1004 : 0,
                                .client_cert_id = (flags & 1) ? 0x1002 : 0,
                                .suites = (flags & 8) ? ccm : NULL,
                                .suites_n = (flags & 8) ? 1 : 0,
                                .timeout_ms = 1000,
                                .allow_no_ems = (flags & 4) ? 1 : 0,
                                .no_mfl = (flags & 2) ? 1 : 0};
    struct kl_tls_transport tr = {NULL, tr_send, tr_recv};
    struct kl_tls_clock clk = {NULL, unix_now, mono_now};
    int small = (flags & 32) && !(flags & 2);
    struct kl_tls t;
    FZ_CHECK(kl_tls_init(&t, &se, &cfg, &tr, &clk, small ? rx_min : rx_full,
                         small ? KL_TLS_RX_MIN : KL_TLS_RX_FULL, small ? hs_min : hs_full,
                         small ? KL_TLS_HS_MIN : KL_TLS_HS_DEFAULT) == KL_OK);
    kl_status st = kl_tls_handshake(&t);
    if (getenv("KL_FUZZ_TRACE")) fprintf(stderr, "handshake: %s: %s\n", kl_status_name(st), t.err);
    FZ_CHECK(memchr(t.err, 0, sizeof t.err) && memchr(t.peer_cn, 0, sizeof t.peer_cn));
    if (st != KL_OK) {
        FZ_CHECK(t.phase == KL_TLS_FAILED && t.err[0] != 0);
        /* nothing but handshake, CCS and alert records went out */
        for (size_t off = 0; off + 5 <= srv.out_len;) {
            FZ_CHECK(srv.out[off] >= 20 && srv.out[off] <= 22);
            off += 5u + (((size_t)srv.out[off + 3] << 8) | srv.out[off + 4]);
        }
    } else {
        FZ_CHECK(srv.finished_sent && t.phase == KL_TLS_OPEN);
        /* what the client reads is exactly what the server sealed, in order */
        static uint8_t got_app[sizeof srv.app];
        size_t have = 0;
        for (int i = 0; i < 64; i++) {
            size_t got = 0;
            size_t cap = 1 + (size_t)(i * 37 % 3000);
            if (cap > sizeof got_app - have) cap = sizeof got_app - have;
            if (!cap) break;
            kl_status rs = kl_tls_read(&t, got_app + have, cap, &got, 100);
            if (getenv("KL_FUZZ_TRACE") && rs != KL_OK)
                fprintf(stderr, "read: %s: %s\n", kl_status_name(rs), t.err);
            if (rs != KL_OK) break;
            FZ_CHECK(got >= 1 && got <= cap);
            have += got;
        }
        FZ_CHECK(have <= srv.app_len && memcmp(got_app, srv.app, have) == 0);
        if (t.phase == KL_TLS_OPEN) (void)kl_tls_write(&t, (const uint8_t *)"telemetry", 9);
    }
    kl_tls_close(&t);
    fz_chip_durable(0);
    fz_chip_check();
    return 0;
}
