/*
 * Secure channel, host side (docs/secure-channel.md): the handshake with the pinned
 * identity key and the hook that protects every command of the handle while it is open.
 * All crypto is the library's own (host/hcx.h): libc only, no allocation.
 */
#include <string.h>

#include "hcx.h"
#include "keylink/channel.h"

#define INFO "keylink secure channel v1"
#define TAG KL_HCX_GCM_TAG

/* Lives in se->sc_state; copied in and out with memcpy (the buffer is bytes). */
struct kl_sc {
    uint8_t k_h2c[32];
    uint8_t k_c2h[32];
    uint64_t n_h2c;
    uint64_t n_c2h;
};
_Static_assert(sizeof(struct kl_sc) <= KL_SE_SC_STATE_SIZE, "kl_sc must fit in kl_se");

enum { DIR_H2C = 1, DIR_C2H = 2 };

static void sc_forget(struct kl_se *se)
{
    kl_hcx_wipe(se->sc_state, sizeof se->sc_state);
    se->sc_open = 0;
    se->sc_hook = NULL;
    se->sc_ctx = NULL;
}

static void make_nonce(uint8_t n[12], uint32_t dir, uint64_t ctr)
{
    n[0] = (uint8_t)(dir >> 24);
    n[1] = (uint8_t)(dir >> 16);
    n[2] = (uint8_t)(dir >> 8);
    n[3] = (uint8_t)dir;
    for (int i = 0; i < 8; i++)
        n[4 + i] = (uint8_t)(ctr >> (56 - 8 * i));
}

/* Closes the host side and passes st on (every failure path ends here). */
static kl_status sc_fail(struct kl_se *se, struct kl_sc *s, kl_status st)
{
    kl_hcx_wipe(s, sizeof *s);
    sc_forget(se);
    return st;
}

/* The kl_se_wrap_fn: one command through the channel. */
static kl_status sc_hook(struct kl_se *se, void *ctx, uint8_t cmd, const uint8_t *req,
                         size_t req_len, uint8_t *resp, size_t resp_cap, size_t *resp_len,
                         kl_status *chip_status)
{
    (void)ctx;
    struct kl_sc s;
    uint8_t nonce[12];
    size_t tx_len = 0, rx_len = 0;
    *resp_len = 0;
    if (req_len > KL_SE_CHANNEL_MAX_INNER) return KL_E_BAD_LENGTH; /* nothing sent */
    memcpy(&s, se->sc_state, sizeof s);
    if (s.n_h2c == UINT64_MAX || s.n_c2h == UINT64_MAX) return sc_fail(se, &s, KL_E_CHANNEL);

    /* Plaintext (command byte, payload) goes to its place in the frame, sealed in place. */
    size_t plen = 1 + req_len + TAG;
    uint8_t *p = se->tx + KL_FRAME_HEADER;
    se->tx[0] = 0;
    se->tx[1] = KL_FRAME_FLAG_ENC;
    se->tx[2] = (uint8_t)(plen >> 8);
    se->tx[3] = (uint8_t)plen;
    p[0] = cmd;
    if (req_len) memmove(p + 1, req, req_len);
    make_nonce(nonce, DIR_H2C, s.n_h2c);
    kl_status st =
        kl_hcx_gcm_seal(s.k_h2c, 32, nonce, 12, se->tx, 4, p, 1 + req_len, p, p + 1 + req_len);
    if (st == KL_OK)
        st = kl_frame_encode(0, KL_FRAME_FLAG_ENC, p, plen, se->tx, sizeof se->tx, &tx_len);
    if (st != KL_OK) return sc_fail(se, &s, KL_E_INTERNAL);
    s.n_h2c++;
    /* From here on the chip may have seen the frame: any failure closes our side. */
    st = kl_se_transceive_raw(se, tx_len, &rx_len);
    if (st != KL_OK) return sc_fail(se, &s, st);
    struct kl_frame f;
    if (kl_frame_decode(se->rx, rx_len, &f) != KL_OK) return sc_fail(se, &s, KL_E_PROTOCOL);
    if (f.flags == 0) {
        /* A clear answer to a protected request: the chip refused the frame (KL_E_CHANNEL,
         * KL_E_BAD_FRAME...) and closed its side, or something on the bus answered. */
        if (f.len != 0 || f.code == KL_OK || (f.code >= 0x80 && f.code != KL_E_BUSY))
            return sc_fail(se, &s, KL_E_PROTOCOL);
        *chip_status = (kl_status)f.code;
        sc_forget(se);
        kl_hcx_wipe(&s, sizeof s);
        return KL_OK;
    }
    if (f.flags != KL_FRAME_FLAG_ENC || f.code != 0 || f.len < 1 + TAG)
        return sc_fail(se, &s, KL_E_CHANNEL);
    size_t ilen = f.len - TAG;
    uint8_t *ip = se->rx + KL_FRAME_HEADER;
    make_nonce(nonce, DIR_C2H, s.n_c2h);
    if (kl_hcx_gcm_open(s.k_c2h, 32, nonce, 12, se->rx, 4, ip, ilen, ip + ilen, ip) != KL_OK)
        return sc_fail(se, &s, KL_E_CHANNEL);
    s.n_c2h++;
    kl_status inner = (kl_status)ip[0];
    size_t n = ilen - 1;
    if (inner != KL_OK && n != 0) {
        kl_hcx_wipe(ip, ilen);
        return sc_fail(se, &s, KL_E_PROTOCOL);
    }
    memcpy(se->sc_state, &s, sizeof s);
    kl_hcx_wipe(&s, sizeof s);
    if (n > resp_cap) {
        st = KL_E_BUFFER;
    } else {
        if (n) memcpy(resp, ip + 1, n);
        *resp_len = n;
        *chip_status = inner;
    }
    kl_hcx_wipe(ip, ilen);
    /* The chip dropped or replaced its channel: ours is gone too. */
    if (cmd == KL_CMD_CHANNEL_CLOSE || cmd == KL_CMD_CHANNEL_OPEN ||
        (cmd == KL_CMD_RESET && inner == KL_OK))
        sc_forget(se);
    return st;
}

kl_status kl_se_get_identity(struct kl_se *se, uint8_t pub[KL_SE_IDENTITY_LEN])
{
    size_t n = 0;
    if (!se || !pub) return KL_E_ARG;
    kl_status st = kl_se_command(se, KL_CMD_GET_IDENTITY, NULL, 0, pub, KL_SE_IDENTITY_LEN, &n);
    if (st == KL_OK && n != KL_SE_IDENTITY_LEN) st = KL_E_PROTOCOL;
    if (st == KL_OK && kl_hcx_p256_check_pub(pub) != KL_OK) st = KL_E_PROTOCOL;
    if (st != KL_OK) memset(pub, 0, KL_SE_IDENTITY_LEN);
    return st;
}

kl_status kl_se_channel_open(struct kl_se *se, const uint8_t chip_identity_pub[KL_SE_IDENTITY_LEN],
                             kl_random_fn rng, void *rng_ctx)
{
    if (!se || !chip_identity_pub || !rng) return KL_E_ARG;
    if (kl_hcx_p256_check_pub(chip_identity_pub) != KL_OK) return KL_E_BAD_KEY;
    sc_forget(se); /* the chip replaces its channel; a half-known old one is useless */

    uint8_t priv[32], eph[64], ans[96], z[64], salt[128], keys[96], msg[4 + 128], want[32];
    size_t n = 0;
    kl_status st = kl_hcx_p256_keygen(rng, rng_ctx, priv, eph);
    if (st != KL_OK) goto out;
    st = kl_se_command(se, KL_CMD_CHANNEL_OPEN, eph, sizeof eph, ans, sizeof ans, &n);
    if (st != KL_OK) goto out;
    if (n != sizeof ans) {
        st = KL_E_PROTOCOL;
        goto out;
    }
    /* Both ECDHs validate the chip's points; a bad ephemeral point is a bad answer. */
    if (kl_hcx_p256_ecdh(priv, ans, z) != KL_OK ||
        kl_hcx_p256_ecdh(priv, chip_identity_pub, z + 32) != KL_OK) {
        st = KL_E_PROTOCOL;
        goto out;
    }
    memcpy(salt, eph, 64);
    memcpy(salt + 64, ans, 64);
    st = kl_hcx_hkdf_sha256(salt, sizeof salt, z, sizeof z, (const uint8_t *)INFO, sizeof INFO - 1,
                            keys, sizeof keys);
    if (st != KL_OK) goto out;
    memcpy(msg, "chip", 4);
    memcpy(msg + 4, salt, sizeof salt);
    kl_hcx_hmac_sha256(keys + 64, 32, msg, sizeof msg, want);
    if (!kl_hcx_ct_equal(want, ans + 64, 32)) {
        st = KL_E_VERIFY_FAILED; /* not the pinned chip: trust nothing */
        goto out;
    }
    struct kl_sc s;
    memcpy(s.k_h2c, keys, 32);
    memcpy(s.k_c2h, keys + 32, 32);
    s.n_h2c = 0;
    s.n_c2h = 0;
    memcpy(se->sc_state, &s, sizeof s);
    kl_hcx_wipe(&s, sizeof s);
    se->sc_open = 1;
    se->sc_ctx = NULL;
    se->sc_hook = sc_hook;
out:
    kl_hcx_wipe(priv, sizeof priv);
    kl_hcx_wipe(z, sizeof z);
    kl_hcx_wipe(keys, sizeof keys);
    kl_hcx_wipe(want, sizeof want);
    return st;
}

kl_status kl_se_channel_close(struct kl_se *se)
{
    if (!se) return KL_E_ARG;
    if (!se->sc_open || !se->sc_hook) {
        sc_forget(se);
        return KL_OK;
    }
    kl_status st = kl_se_command(se, KL_CMD_CHANNEL_CLOSE, NULL, 0, NULL, 0, NULL);
    sc_forget(se); /* whatever the answer */
    return st;
}

int kl_se_channel_is_open(const struct kl_se *se)
{
    return se && se->sc_open && se->sc_hook == sc_hook;
}
