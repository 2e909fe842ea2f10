/*
 * Secure channel, chip side: ECDHE with the factory identity key, HKDF-SHA256 key
 * schedule, AES-256-GCM per direction with 64-bit frame counters (docs/secure-channel.md).
 * The crypto comes from the chip's OpenSSL toolbox (se/cx.h); the host side (host/
 * channel.c) uses its own dependency-free code, so the two only agree if both follow
 * docs/protocol.md.
 */
#include <stdlib.h>
#include <string.h>

#include "channel.h"
#include "chip_int.h"

struct kl_channel {
    uint8_t k_h2c[32];
    uint8_t k_c2h[32];
    uint64_t n_h2c; /* next counter expected from the host */
    uint64_t n_c2h; /* next counter the chip sends */
    uint64_t epoch; /* tells a replaced channel from the one that carried a request */
};

enum { DIR_H2C = 1, DIR_C2H = 2 };

static void channel_free(struct kl_chip *c)
{
    if (c->channel) {
        kl_cx_wipe(c->channel, sizeof(struct kl_channel));
        free(c->channel);
    }
    c->channel = NULL;
}

void kl_channel_reset(struct kl_chip *c)
{
    if (!c) return;
    if (c->channel_free) c->channel_free(c);
    c->channel = NULL;
    c->channel_open = 0;
    c->channel_free = NULL;
}

/* HKDF-SHA256 (RFC 5869) over the chip's HMAC; out_len <= 96 here. */
static kl_status hkdf(const uint8_t *salt, size_t slen, const uint8_t *ikm, size_t ilen,
                      uint8_t *out, size_t out_len)
{
    static const char info[] = KL_CHANNEL_INFO;
    const size_t info_len = sizeof info - 1;
    uint8_t prk[32], blk[32 + sizeof info];
    size_t tlen = 0, done = 0;
    kl_status st = kl_cx_hmac_sha256(salt, slen, ikm, ilen, prk);
    for (uint8_t i = 1; st == KL_OK && done < out_len; i++) {
        /* blk = T(i-1) || info || i; T(i-1) is already at its start (empty for i = 1). */
        memcpy(blk + tlen, info, info_len);
        blk[tlen + info_len] = i;
        st = kl_cx_hmac_sha256(prk, sizeof prk, blk, tlen + info_len + 1, blk);
        tlen = 32;
        size_t take = out_len - done < 32 ? out_len - done : 32;
        memcpy(out + done, blk, take);
        done += take;
    }
    kl_cx_wipe(prk, sizeof prk);
    kl_cx_wipe(blk, sizeof blk);
    return st;
}

static void make_nonce(uint8_t nonce[12], uint32_t dir, uint64_t ctr)
{
    kl_put32(nonce, dir);
    kl_put32(nonce + 4, (uint32_t)(ctr >> 32));
    kl_put32(nonce + 8, (uint32_t)ctr);
}

/* AES-256-GCM one shot through the toolbox. Decrypt: tag is the input; on a bad tag
 * KL_E_BAD_TAG and out is wiped. */
static kl_status gcm(int enc, const uint8_t key[32], const uint8_t nonce[12], const uint8_t aad[4],
                     const uint8_t *in, size_t n, uint8_t *out, uint8_t tag[KL_CHANNEL_TAG])
{
    struct kl_cx_cipher x;
    size_t got = 0, fin = 0;
    uint8_t last[KL_CHANNEL_TAG + 16];
    kl_status st =
        kl_cx_cipher_init(&x, KL_CX_GCM, enc, 0, key, 32, nonce, 12, KL_CHANNEL_TAG, 0, aad, 4);
    if (st != KL_OK) return st;
    if (n) st = kl_cx_cipher_update(&x, in, n, out, n, &got);
    if (st == KL_OK && got != n) st = KL_E_INTERNAL;
    if (st == KL_OK)
        st = kl_cx_cipher_final(&x, enc ? NULL : tag, enc ? 0 : KL_CHANNEL_TAG, last, sizeof last,
                                &fin);
    if (st == KL_OK && enc) {
        if (fin != KL_CHANNEL_TAG)
            st = KL_E_INTERNAL;
        else
            memcpy(tag, last, KL_CHANNEL_TAG);
    } else if (st == KL_OK && fin != 0) {
        st = KL_E_INTERNAL;
    }
    kl_cx_cipher_free(&x);
    kl_cx_wipe(last, sizeof last);
    if (st != KL_OK && n) kl_cx_wipe(out, n);
    return st;
}

static size_t clear_status(kl_status st, uint8_t *out, size_t out_cap)
{
    size_t n = 0;
    if (kl_frame_encode((uint8_t)st, 0, NULL, 0, out, out_cap, &n) != KL_OK) return 0;
    return n;
}

/* Any failure: close the channel, maybe reset the chip (config), answer in the clear. */
static size_t channel_fail(struct kl_chip *c, uint8_t *out, size_t out_cap)
{
    kl_channel_reset(c);
    kl_chip_event(c, KL_RST_CHANNEL_ERR);
    return clear_status(KL_E_CHANNEL, out, out_cap);
}

size_t kl_channel_frame(struct kl_chip *c, const struct kl_frame *f, uint8_t *out, size_t out_cap)
{
    if (!c || !f || !out || out_cap < KL_FRAME_MAX) return 0;
    struct kl_channel *ch = c->channel;
    if (!ch) return clear_status(KL_E_CHANNEL, out, out_cap); /* nothing to close */
    if (f->code != 0 || f->len < KL_CHANNEL_TAG + 1 || f->len > KL_FRAME_MAX_PAYLOAD ||
        ch->n_h2c == UINT64_MAX || ch->n_c2h == UINT64_MAX)
        return channel_fail(c, out, out_cap);

    uint8_t hdr[4] = {f->code, f->flags, (uint8_t)(f->len >> 8), (uint8_t)f->len};
    uint8_t nonce[12], tag[KL_CHANNEL_TAG], pt[KL_FRAME_MAX_PAYLOAD];
    size_t ptlen = f->len - KL_CHANNEL_TAG;
    memcpy(tag, f->payload + ptlen, KL_CHANNEL_TAG);
    make_nonce(nonce, DIR_H2C, ch->n_h2c);
    /* A replayed or reordered frame has another counter, hence another nonce: bad tag. */
    if (gcm(0, ch->k_h2c, nonce, hdr, f->payload, ptlen, pt, tag) != KL_OK)
        return channel_fail(c, out, out_cap);
    ch->n_h2c++;

    /* The answer is protected with the keys that carried the request, even when the
     * command closes or replaces the channel (CLOSE, OPEN, RESET). */
    struct kl_channel used = *ch;
    const uint64_t epoch = ch->epoch;     /* ch may be freed by the command below */
    uint8_t *ipt = out + KL_FRAME_HEADER; /* inner status, then the response payload */
    size_t rlen = 0;
    c->channel_open = 1; /* the host role, for this command only */
    kl_status st =
        kl_chip_execute(c, pt[0], pt + 1, ptlen - 1, ipt + 1, KL_FRAME_MAX_PAYLOAD, &rlen);
    c->channel_open = 0;
    kl_cx_wipe(pt, ptlen);
    if (st == KL_OK && rlen > KL_CHANNEL_MAX_INNER) {
        kl_cx_wipe(ipt + 1, rlen);
        st = KL_E_BAD_LENGTH;
    }
    if (st != KL_OK) rlen = 0;
    ipt[0] = (uint8_t)st;

    size_t plen = 1 + rlen + KL_CHANNEL_TAG;
    uint8_t rhdr[4] = {0, KL_FRAME_FLAG_ENC, (uint8_t)(plen >> 8), (uint8_t)plen};
    uint8_t ct[KL_FRAME_MAX_PAYLOAD];
    make_nonce(nonce, DIR_C2H, used.n_c2h);
    kl_status est = gcm(1, used.k_c2h, nonce, rhdr, ipt, 1 + rlen, ct, ct + 1 + rlen);
    kl_cx_wipe(ipt, 1 + rlen);
    kl_cx_wipe(&used, sizeof used);
    struct kl_channel *now = c->channel;
    if (est != KL_OK) {
        kl_cx_wipe(ct, sizeof ct);
        return channel_fail(c, out, out_cap);
    }
    if (now && now->epoch == epoch) now->n_c2h++;
    size_t n = 0;
    if (kl_frame_encode(0, KL_FRAME_FLAG_ENC, ct, plen, out, out_cap, &n) != KL_OK) n = 0;
    kl_cx_wipe(ct, sizeof ct);
    return n;
}

/* ---- commands ---- */

/* GET_IDENTITY: the factory identity public key, the one a host pins. */
static KL_HANDLER(cmd_get_identity)
{
    if (len != 0) return KL_E_BAD_LENGTH;
    memcpy(resp, kl_chip_identity_pub(c), KL_CX_P256_PUB);
    *rlen = KL_CX_P256_PUB;
    return KL_OK;
}

/* CHANNEL_OPEN: host ephemeral X||Y in; chip ephemeral X||Y and confirmation out.
 * KL_E_BAD_LENGTH, KL_E_BAD_KEY (host point not on the curve), KL_E_INTERNAL. A channel
 * that was open is replaced only when the new one is ready. */
static KL_HANDLER(cmd_channel_open)
{
    if (len != KL_CX_P256_PUB) return KL_E_BAD_LENGTH;
    if (kl_cx_ec_check_pub(req) != KL_OK) return KL_E_BAD_KEY;
    uint8_t eph_priv[32], eph_pub[64], z[64], salt[128], keys[96], msg[4 + 128];
    struct kl_channel *nc = calloc(1, sizeof *nc);
    if (!nc) return KL_E_INTERNAL;
    kl_status st = kl_cx_ec_keygen(kl_chip_drbg(c), eph_priv, eph_pub);
    if (st == KL_OK) st = kl_cx_ecdh(eph_priv, req, z);
    if (st == KL_OK) st = kl_cx_ecdh(kl_chip_identity_priv(c), req, z + 32);
    memcpy(salt, req, 64);
    memcpy(salt + 64, eph_pub, 64);
    if (st == KL_OK) st = hkdf(salt, sizeof salt, z, sizeof z, keys, sizeof keys);
    memcpy(msg, "chip", 4);
    memcpy(msg + 4, salt, sizeof salt);
    if (st == KL_OK) st = kl_cx_hmac_sha256(keys + 64, 32, msg, sizeof msg, resp + 64);
    if (st == KL_OK) {
        memcpy(nc->k_h2c, keys, 32);
        memcpy(nc->k_c2h, keys + 32, 32);
        const struct kl_channel *old = c->channel;
        nc->epoch = old ? old->epoch + 1 : 0;
        kl_channel_reset(c); /* opening a new channel replaces the old one */
        c->channel = nc;
        c->channel_free = channel_free;
        memcpy(resp, eph_pub, 64);
        *rlen = 96;
        nc = NULL;
    } else {
        st = KL_E_INTERNAL; /* the host point was checked: nothing else can be its fault */
    }
    if (nc) {
        kl_cx_wipe(nc, sizeof *nc);
        free(nc);
    }
    kl_cx_wipe(eph_priv, sizeof eph_priv);
    kl_cx_wipe(z, sizeof z);
    kl_cx_wipe(keys, sizeof keys);
    return st;
}

/* CHANNEL_CLOSE: only inside the channel (KL_E_STATE otherwise; nothing closes). */
static KL_HANDLER(cmd_channel_close)
{
    if (len != 0) return KL_E_BAD_LENGTH;
    if (!c->channel_open || !c->channel) return KL_E_STATE;
    kl_channel_reset(c);
    return KL_OK;
}

const struct kl_cmd kl_cmds_channel[] = {
    {0xE2, KL_CMDF_NO_CHANNEL, "GET_IDENTITY", cmd_get_identity},
    {0xE0, KL_CMDF_NO_CHANNEL, "CHANNEL_OPEN", cmd_channel_open},
    {0xE1, KL_CMDF_NO_CHANNEL, "CHANNEL_CLOSE", cmd_channel_close},
};
const size_t kl_cmds_channel_n = sizeof kl_cmds_channel / sizeof kl_cmds_channel[0];
