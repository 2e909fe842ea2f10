/*
 * The chip's side of the secure channel, driven frame by frame (kl_chip_frame) by a host
 * written here from docs/protocol.md with the device library's own crypto (host/hcx):
 * handshake and confirmation, protected commands, and every attack on a frame — replay,
 * reorder, one altered byte of header, ciphertext or tag, truncation — which must close
 * the channel (KL_E_CHANNEL in the clear, and the next good frame refused too).
 * Also: host role only inside the channel, "require host role" config, replacement by a
 * new CHANNEL_OPEN, RESET inside the channel, and the channel-error reset event.
 */
#include "chip_fixture.h"

#include "../../host/hcx.h" /* the device library's crypto plays the host */
#include "channel.h"
#include "keylink/frame.h"

struct host {
    uint8_t k_h2c[32], k_c2h[32];
    uint64_t n_h2c, n_c2h;
};

static uint8_t rx[KL_FRAME_MAX];
static size_t rx_len;

static kl_status rng(void *ctx, uint8_t *out, size_t n)
{
    (void)ctx;
    FILE *f = fopen("/dev/urandom", "rb");
    size_t got = f ? fread(out, 1, n, f) : 0;
    if (f) fclose(f);
    return got == n ? KL_OK : KL_E_IO;
}

/* One frame in, the response decoded into *f (payload points into rx). */
static void xfer(struct fx *x, const uint8_t *frame, size_t n, struct kl_frame *f)
{
    rx_len = kl_chip_frame(x->c, frame, n, rx, sizeof rx);
    if (rx_len == 0 || kl_frame_decode(rx, rx_len, f) != KL_OK) {
        fprintf(stderr, "no decodable response\n");
        exit(1);
    }
}

static kl_status plain(struct fx *x, uint8_t cmd, const uint8_t *req, size_t n, uint8_t *resp,
                       size_t *rlen)
{
    uint8_t fr[KL_FRAME_MAX];
    size_t fl = 0;
    struct kl_frame f;
    if (kl_frame_encode(cmd, 0, req, n, fr, sizeof fr, &fl) != KL_OK) exit(2);
    xfer(x, fr, fl, &f);
    CHECK(f.flags == 0);
    if (resp) memcpy(resp, f.payload, f.len);
    if (rlen) *rlen = f.len;
    return (kl_status)f.code;
}

static void nonce(uint8_t n[12], uint32_t dir, uint64_t ctr)
{
    kl_put32(n, dir);
    kl_put32(n + 4, (uint32_t)(ctr >> 32));
    kl_put32(n + 8, (uint32_t)ctr);
}

/* A protected request with counter ctr (not necessarily the next one). */
static size_t seal(const struct host *h, uint64_t ctr, uint8_t cmd, const uint8_t *req, size_t n,
                   uint8_t *fr)
{
    uint8_t pt[KL_FRAME_MAX_PAYLOAD], iv[12];
    size_t plen = 1 + n + 16, fl = 0;
    uint8_t hdr[4] = {0, KL_FRAME_FLAG_ENC, (uint8_t)(plen >> 8), (uint8_t)plen};
    pt[0] = cmd;
    if (n) memcpy(pt + 1, req, n);
    nonce(iv, 1, ctr);
    if (kl_hcx_gcm_seal(h->k_h2c, 32, iv, 12, hdr, 4, pt, 1 + n, pt, pt + 1 + n) != KL_OK ||
        kl_frame_encode(0, KL_FRAME_FLAG_ENC, pt, plen, fr, KL_FRAME_MAX, &fl) != KL_OK)
        exit(2);
    return fl;
}

/* Sends a protected frame and opens the protected answer with the next c2h counter.
 * Returns the inner status, or 0x100 + clear status when the chip answered in the clear. */
static int send_enc(struct fx *x, struct host *h, const uint8_t *fr, size_t fl, uint8_t *resp,
                    size_t *rlen)
{
    struct kl_frame f;
    uint8_t iv[12];
    xfer(x, fr, fl, &f);
    if (f.flags == 0) {
        CHECK(f.len == 0);
        return 0x100 + f.code;
    }
    CHECK(f.flags == KL_FRAME_FLAG_ENC && f.code == 0 && f.len >= 17);
    size_t il = f.len - 16;
    uint8_t *p = rx + 4;
    nonce(iv, 2, h->n_c2h);
    if (kl_hcx_gcm_open(h->k_c2h, 32, iv, 12, rx, 4, p, il, p + il, p) != KL_OK) {
        fprintf(stderr, "chip answer does not authenticate\n");
        kl_fails++;
        return -1;
    }
    h->n_c2h++;
    if (resp) memcpy(resp, p + 1, il - 1);
    if (rlen) *rlen = il - 1;
    return p[0];
}

static int cmd_enc(struct fx *x, struct host *h, uint8_t cmd, const uint8_t *req, size_t n,
                   uint8_t *resp, size_t *rlen)
{
    uint8_t fr[KL_FRAME_MAX];
    size_t fl = seal(h, h->n_h2c++, cmd, req, n, fr);
    return send_enc(x, h, fr, fl, resp, rlen);
}

/* The whole handshake of docs/protocol.md; returns the CHANNEL_OPEN status. */
static kl_status open_channel(struct fx *x, struct host *h, const uint8_t id_pub[64])
{
    uint8_t priv[32], eph[64], ans[128], z[64], salt[128], keys[96], msg[132], want[32];
    size_t n = 0;
    if (kl_hcx_p256_keygen(rng, NULL, priv, eph) != KL_OK) exit(2);
    kl_status st = plain(x, 0xE0, eph, 64, ans, &n);
    if (st != KL_OK) return st;
    CHECK(n == 96);
    CHECK(kl_hcx_p256_ecdh(priv, ans, z) == KL_OK);
    CHECK(kl_hcx_p256_ecdh(priv, id_pub, z + 32) == KL_OK);
    memcpy(salt, eph, 64);
    memcpy(salt + 64, ans, 64);
    CHECK(kl_hcx_hkdf_sha256(salt, 128, z, 64, (const uint8_t *)"keylink secure channel v1", 25,
                             keys, 96) == KL_OK);
    memcpy(msg, "chip", 4);
    memcpy(msg + 4, salt, 128);
    kl_hcx_hmac_sha256(keys + 64, 32, msg, sizeof msg, want);
    CHECK(kl_hcx_ct_equal(want, ans + 64, 32));
    memcpy(h->k_h2c, keys, 32);
    memcpy(h->k_c2h, keys + 32, 32);
    h->n_h2c = h->n_c2h = 0;
    return KL_OK;
}

/* Re-encodes a frame after its bytes were changed (fresh CRC), so only the channel can
 * notice the change. new_len is the payload length to announce. */
static size_t refresh(uint8_t *fr, size_t new_len)
{
    size_t fl = 0;
    uint8_t tmp[KL_FRAME_MAX_PAYLOAD];
    memcpy(tmp, fr + 4, new_len);
    if (kl_frame_encode(fr[0], fr[1], tmp, new_len, fr, KL_FRAME_MAX, &fl) != KL_OK) exit(2);
    return fl;
}

/* After a failure the channel must be gone: a good frame with the counter the chip would
 * expect if it were still open (the failed frame's, or the one after it) is refused. */
static void expect_closed(struct fx *x, struct host *h, const char *what)
{
    uint8_t fr[KL_FRAME_MAX];
    for (uint64_t back = 0; back < 2 && back <= h->n_h2c; back++) {
        size_t fl = seal(h, h->n_h2c - back, 0xF7, (const uint8_t *)"x", 1, fr);
        int r = send_enc(x, h, fr, fl, NULL, NULL);
        if (r != 0x100 + KL_E_CHANNEL) {
            fprintf(stderr, "%s: channel still open after the failure (got %#x)\n", what, r);
            kl_fails++;
        }
    }
}

static void attacks(struct fx *x, const uint8_t id[64])
{
    struct host h;
    uint8_t fr[KL_FRAME_MAX], f0[KL_FRAME_MAX], f1[KL_FRAME_MAX], resp[2048];
    size_t fl, l0, l1, rl;
    const uint8_t msg[] = "attack at dawn";

    /* replay: a frame the chip already ran */
    CHECK(open_channel(x, &h, id) == KL_OK);
    fl = seal(&h, h.n_h2c++, 0xF7, msg, sizeof msg, fr);
    CHECK(send_enc(x, &h, fr, fl, resp, &rl) == KL_OK);
    CHECK(rl == sizeof msg && memcmp(resp, msg, rl) == 0);
    CHECK(send_enc(x, &h, fr, fl, NULL, NULL) == 0x100 + KL_E_CHANNEL);
    expect_closed(x, &h, "replay");

    /* reorder: frame 1 before frame 0 */
    CHECK(open_channel(x, &h, id) == KL_OK);
    l0 = seal(&h, 0, 0xF7, msg, 3, f0);
    l1 = seal(&h, 1, 0xF7, msg, 4, f1);
    CHECK(send_enc(x, &h, f1, l1, NULL, NULL) == 0x100 + KL_E_CHANNEL);
    CHECK(send_enc(x, &h, f0, l0, NULL, NULL) == 0x100 + KL_E_CHANNEL);

    /* one altered byte: header byte 0, each payload byte position class */
    size_t spots[] = {0, 4, 5, 10, 4 + 1 + sizeof msg, 4 + 1 + sizeof msg + 15};
    for (size_t i = 0; i < sizeof spots / sizeof spots[0]; i++) {
        CHECK(open_channel(x, &h, id) == KL_OK);
        CHECK(cmd_enc(x, &h, 0xF7, msg, 2, NULL, NULL) == KL_OK); /* counters past 0 */
        fl = seal(&h, h.n_h2c++, 0xF7, msg, sizeof msg, fr);
        fr[spots[i]] ^= 0x01;
        fl = refresh(fr, fl - 6);
        CHECK(send_enc(x, &h, fr, fl, NULL, NULL) == 0x100 + KL_E_CHANNEL);
        expect_closed(x, &h, "altered byte");
    }
    /* header length bytes: announce one byte less (the frame shrinks accordingly) */
    CHECK(open_channel(x, &h, id) == KL_OK);
    fl = seal(&h, h.n_h2c++, 0xF7, msg, sizeof msg, fr);
    fl = refresh(fr, fl - 6 - 1);
    CHECK(send_enc(x, &h, fr, fl, NULL, NULL) == 0x100 + KL_E_CHANNEL);
    expect_closed(x, &h, "truncated by one");
    /* truncated below tag + inner byte */
    CHECK(open_channel(x, &h, id) == KL_OK);
    fl = seal(&h, h.n_h2c++, 0xF7, msg, sizeof msg, fr);
    fl = refresh(fr, 16);
    CHECK(send_enc(x, &h, fr, fl, NULL, NULL) == 0x100 + KL_E_CHANNEL);
    expect_closed(x, &h, "truncated to 16");
    CHECK(open_channel(x, &h, id) == KL_OK);
    fl = refresh(fr, 0);
    CHECK(send_enc(x, &h, fr, fl, NULL, NULL) == 0x100 + KL_E_CHANNEL);
    expect_closed(x, &h, "empty payload");
    /* a frame sealed with the host->chip key but the chip->host nonce direction */
    CHECK(open_channel(x, &h, id) == KL_OK);
    {
        uint8_t pt[8] = {0xF7, 1, 2, 3}, iv[12];
        uint8_t hdr[4] = {0, 1, 0, 4 + 16};
        nonce(iv, 2, 0);
        CHECK(kl_hcx_gcm_seal(h.k_h2c, 32, iv, 12, hdr, 4, pt, 4, pt, fr + 100) == KL_OK);
        memcpy(fr + 200, pt, 4);
        memcpy(fr + 204, fr + 100, 16);
        CHECK(kl_frame_encode(0, 1, fr + 200, 20, fr, sizeof fr, &fl) == KL_OK);
        CHECK(send_enc(x, &h, fr, fl, NULL, NULL) == 0x100 + KL_E_CHANNEL);
    }
    /* a CRC error is the frame layer's business: KL_E_BAD_FRAME, channel untouched */
    CHECK(open_channel(x, &h, id) == KL_OK);
    fl = seal(&h, h.n_h2c, 0xF7, msg, 1, fr);
    fr[fl - 1] ^= 0xFF;
    CHECK(send_enc(x, &h, fr, fl, NULL, NULL) == 0x100 + KL_E_BAD_FRAME);
    fr[fl - 1] ^= 0xFF;
    h.n_h2c++;
    CHECK(send_enc(x, &h, fr, fl, NULL, NULL) == KL_OK);
}

int main(void)
{
    struct fx x;
    struct host h, old;
    uint8_t id[64], resp[2048], fr[KL_FRAME_MAX];
    size_t rl, fl;
    fx_open(&x);

    /* GET_IDENTITY: the factory key, valid, stable across a restart of the model. */
    CHECK_ST(plain(&x, 0xE2, NULL, 0, id, &rl), KL_OK);
    CHECK(rl == 64 && kl_hcx_p256_check_pub(id) == KL_OK);
    CHECK(memcmp(id, kl_chip_identity_pub(x.c), 64) == 0);
    CHECK_ST(plain(&x, 0xE2, id, 1, NULL, NULL), KL_E_BAD_LENGTH);
    fx_reopen(&x);
    CHECK_ST(plain(&x, 0xE2, NULL, 0, resp, &rl), KL_OK);
    CHECK(memcmp(resp, id, 64) == 0);

    /* The channel must close by itself: switch off the default "channel error resets
     * the chip" event (tested at the end), which would hide a channel that stays open. */
    uint8_t cfg[12];
    CHECK_ST(plain(&x, 0xF5, NULL, 0, cfg, &rl), KL_OK);
    cfg[1] &= (uint8_t)~KL_RST_CHANNEL_ERR;
    CHECK_ST(plain(&x, 0xF4, cfg, 12, NULL, NULL), KL_OK);
    CHECK_ST(plain(&x, 0xF2, NULL, 0, resp, &rl), KL_OK);
    uint32_t resets0 = kl_be32(resp + 54);

    /* No channel: protected frames are refused in the clear. */
    memset(&h, 0x11, sizeof h);
    fl = seal(&h, 0, 0xF7, NULL, 0, fr);
    CHECK(send_enc(&x, &h, fr, fl, NULL, NULL) == 0x100 + KL_E_CHANNEL);

    /* CHANNEL_OPEN input checks. */
    CHECK_ST(plain(&x, 0xE0, id, 63, NULL, NULL), KL_E_BAD_LENGTH);
    memcpy(resp, id, 64);
    resp[63] ^= 1;
    CHECK_ST(plain(&x, 0xE0, resp, 64, NULL, NULL), KL_E_BAD_KEY);
    memset(resp, 0, 64);
    CHECK_ST(plain(&x, 0xE0, resp, 64, NULL, NULL), KL_E_BAD_KEY);

    /* A channel: commands and answers both protected, counters advance. */
    CHECK_ST(open_channel(&x, &h, id), KL_OK);
    for (int i = 0; i < 5; i++) {
        uint8_t ping[300];
        memset(ping, i, sizeof ping);
        CHECK(cmd_enc(&x, &h, 0xF7, ping, sizeof ping, resp, &rl) == KL_OK);
        CHECK(rl == sizeof ping && memcmp(resp, ping, rl) == 0);
    }
    CHECK(cmd_enc(&x, &h, 0xF2, NULL, 0, resp, &rl) == KL_OK);
    CHECK(rl == 59 && (resp[58] & 2));
    /* An inner error carries no payload. */
    CHECK(cmd_enc(&x, &h, 0x12, (const uint8_t *)"\x77\x77\0\0\0\1", 6, resp, &rl) ==
          KL_E_NOT_FOUND);
    CHECK(rl == 0);
    CHECK(cmd_enc(&x, &h, 0x05, NULL, 0, resp, &rl) == KL_E_UNKNOWN_COMMAND);
    /* The largest inner request; and a response too large for the channel. */
    memset(fr, 0x5A, sizeof fr);
    CHECK(cmd_enc(&x, &h, 0xF7, fr, KL_CHANNEL_MAX_INNER, resp, &rl) == KL_OK);
    CHECK(rl == KL_CHANNEL_MAX_INNER);
    uint8_t rq[2] = {0x08, 0x00}; /* RANDOM 2048: fits a frame, not the channel */
    CHECK(cmd_enc(&x, &h, 0xDC, rq, 2, resp, &rl) == KL_E_BAD_LENGTH);
    rq[0] = 0x07;
    rq[1] = 0xEF; /* 2031 */
    CHECK(cmd_enc(&x, &h, 0xDC, rq, 2, resp, &rl) == KL_OK);
    CHECK(rl == 2031);

    /* Host role only for commands inside the channel: data object readable by h only. */
    uint8_t rules_h[9] = {
        KL_ROLE_H, KL_RIGHT_R | KL_RIGHT_W, 0, KL_ROLE_H, KL_RIGHT_R, 0, KL_ROLE_H, KL_RIGHT_R, 0};
    uint8_t rd[6] = {0x30, 0x01, 0, 0, 0, 4};
    CHECK_ST(fx_data_obj(&x, 0x3001, KL_PROP_PERSIST, 16, rules_h), KL_OK);
    uint8_t wr[6] = {0x30, 0x01, 0, 0, 'a', 'b'};
    CHECK_ST(plain(&x, 0x13, wr, 6, NULL, NULL), KL_E_ACCESS_DENIED);
    CHECK(cmd_enc(&x, &h, 0x13, wr, 6, NULL, NULL) == KL_OK);
    rd[5] = 2;
    CHECK_ST(plain(&x, 0x12, rd, 6, NULL, NULL), KL_E_ACCESS_DENIED);
    CHECK(cmd_enc(&x, &h, 0x12, rd, 6, resp, &rl) == KL_OK);
    CHECK(rl == 2 && resp[0] == 'a' && resp[1] == 'b');
    /* GET_STATUS in the clear while the channel exists. */
    CHECK_ST(plain(&x, 0xF2, NULL, 0, resp, &rl), KL_OK);
    /* CHANNEL_CLOSE in the clear does nothing. */
    CHECK_ST(plain(&x, 0xE1, NULL, 0, NULL, NULL), KL_E_STATE);
    CHECK(cmd_enc(&x, &h, 0xF7, NULL, 0, NULL, NULL) == KL_OK);

    /* A new CHANNEL_OPEN replaces the channel: frames under the old keys fail. */
    old = h;
    CHECK_ST(open_channel(&x, &h, id), KL_OK);
    CHECK(cmd_enc(&x, &old, 0xF7, NULL, 0, NULL, NULL) == 0x100 + KL_E_CHANNEL);
    expect_closed(&x, &h, "old keys after replacement");

    /* CHANNEL_OPEN inside the channel: answered under the old keys, then the new one. */
    CHECK_ST(open_channel(&x, &h, id), KL_OK);
    {
        uint8_t priv[32], eph[64];
        CHECK(kl_hcx_p256_keygen(rng, NULL, priv, eph) == KL_OK);
        CHECK(cmd_enc(&x, &h, 0xE0, eph, 64, resp, &rl) == KL_OK);
        CHECK(rl == 96);
        CHECK(cmd_enc(&x, &h, 0xF7, NULL, 0, NULL, NULL) == 0x100 + KL_E_CHANNEL);
    }

    /* CHANNEL_CLOSE inside: answered protected, then closed. */
    CHECK_ST(open_channel(&x, &h, id), KL_OK);
    CHECK(cmd_enc(&x, &h, 0xE1, NULL, 0, NULL, NULL) == KL_OK);
    CHECK(cmd_enc(&x, &h, 0xE1, (const uint8_t *)"x", 1, NULL, NULL) == 0x100 + KL_E_CHANNEL);
    CHECK_ST(plain(&x, 0xF2, NULL, 0, resp, &rl), KL_OK);
    CHECK((resp[58] & 2) == 0);

    /* RESET inside: answered protected, then the channel is gone. */
    CHECK_ST(open_channel(&x, &h, id), KL_OK);
    CHECK(cmd_enc(&x, &h, 0xEA, NULL, 0, NULL, NULL) == KL_OK);
    expect_closed(&x, &h, "reset");

    /* Every attack closes the channel. */
    attacks(&x, id);

    /* "Require host role": outside the channel only PING, GET_STATUS, GET_IDENTITY,
     * CHANNEL_OPEN; inside, everything. */
    CHECK_ST(plain(&x, 0xF2, NULL, 0, resp, &rl), KL_OK);
    CHECK(kl_be32(resp + 54) == resets0 + 1); /* the one RESET command above, no more */
    CHECK_ST(plain(&x, 0xF5, NULL, 0, cfg, &rl), KL_OK);
    cfg[0] |= KL_CFG_REQUIRE_HOST;
    cfg[1] |= KL_RST_CHANNEL_ERR; /* and a channel error resets the chip */
    CHECK_ST(plain(&x, 0xF4, cfg, 12, NULL, NULL), KL_OK);
    CHECK_ST(plain(&x, 0x12, rd, 6, NULL, NULL), KL_E_CHANNEL_REQUIRED);
    CHECK_ST(plain(&x, 0xF5, NULL, 0, NULL, NULL), KL_E_CHANNEL_REQUIRED);
    CHECK_ST(plain(&x, 0xDC, rq, 2, NULL, NULL), KL_E_CHANNEL_REQUIRED);
    CHECK_ST(plain(&x, 0xF7, (const uint8_t *)"hi", 2, NULL, NULL), KL_OK);
    CHECK_ST(plain(&x, 0xF2, NULL, 0, resp, &rl), KL_OK);
    uint32_t resets = kl_be32(resp + 54);
    CHECK_ST(plain(&x, 0xE2, NULL, 0, NULL, NULL), KL_OK);
    CHECK_ST(open_channel(&x, &h, id), KL_OK);
    CHECK(cmd_enc(&x, &h, 0x12, rd, 6, resp, &rl) == KL_OK);
    CHECK(cmd_enc(&x, &h, 0xF5, NULL, 0, resp, &rl) == KL_OK && rl == 12);
    /* Even with a channel open, a plain frame stays outside it. */
    CHECK_ST(plain(&x, 0x12, rd, 6, NULL, NULL), KL_E_CHANNEL_REQUIRED);
    /* A channel error with the reset event configured resets the chip. */
    fl = seal(&h, h.n_h2c + 5, 0xF7, NULL, 0, fr);
    CHECK(send_enc(&x, &h, fr, fl, NULL, NULL) == 0x100 + KL_E_CHANNEL);
    CHECK_ST(plain(&x, 0xF2, NULL, 0, resp, &rl), KL_OK);
    CHECK(kl_be32(resp + 54) == resets + 1);

    fx_close(&x);
    if (kl_fails) {
        fprintf(stderr, "%d failure(s)\n", kl_fails);
        return 1;
    }
    printf("secure channel (chip side) ok\n");
    return 0;
}
