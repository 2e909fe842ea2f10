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
 * flags: bit 0 mutual TLS, bit 1 no max_fragment_length, bit 2 allow no EMS, bit 3 CCM
 * only, bit 4 offer ALPN, bit 5 the smallest buffers. Invariants: the handshake never
 * succeeds (no server Finished can be right), it fails with a reason, and no
 * application data goes out.
 */
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
    uint64_t mono;
} srv;

static kl_status tr_send(void *ctx, const uint8_t *b, size_t n)
{
    (void)ctx;
    size_t k = n < sizeof srv.out - srv.out_len ? n : sizeof srv.out - srv.out_len;
    memcpy(srv.out + srv.out_len, b, k);
    srv.out_len += k;
    return KL_OK;
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
        switch (kind & 3) {
        case 0:
            memcpy(srv.chunk, p, got);
            srv.chunk_len = got;
            break;
        case 1:
            if (got >= 34) memcpy(srv.sr, p + 2, 32);
            srv.chunk_len = wrap(srv.chunk, 2, p, got);
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
            break;
        }
        default:
            if (!got) continue;
            srv.chunk_len = wrap(srv.chunk, p[0], p + 1, got - 1);
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
    fz_chip_restore(0);
    srv.out_len = srv.chunk_len = srv.chunk_off = 0;
    srv.small = 0;
    memset(srv.sr, 0, sizeof srv.sr);
    srv.mono = 0;
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
    FZ_CHECK(st != KL_OK);
    FZ_CHECK(t.phase == KL_TLS_FAILED && t.err[0] != 0);
    FZ_CHECK(memchr(t.err, 0, sizeof t.err) && memchr(t.peer_cn, 0, sizeof t.peer_cn));
    /* nothing but handshake, CCS and alert records went out */
    for (size_t off = 0; off + 5 <= srv.out_len;) {
        FZ_CHECK(srv.out[off] >= 20 && srv.out[off] <= 22);
        off += 5u + (((size_t)srv.out[off + 3] << 8) | srv.out[off + 4]);
    }
    kl_tls_close(&t);
    fz_chip_check();
    return 0;
}
