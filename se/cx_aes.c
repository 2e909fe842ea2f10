/*
 * AES-128/256 in ECB, CBC (optional PKCS#7), GCM and CCM, all streaming. ECB, CBC and
 * GCM are EVP ciphers. OpenSSL's CCM takes the whole message in one call, which a chip
 * that streams 2032-byte chunks cannot use, so CCM (SP 800-38C) is composed here from
 * two EVP AES contexts: CBC with a zero IV for the CBC-MAC, CTR for the encryption.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "cx.h"

struct aes_state {
    EVP_CIPHER_CTX *ctx; /* ECB/CBC/GCM cipher, or CCM's CTR */
    EVP_CIPHER_CTX *mac; /* CCM only: CBC-MAC */
    uint8_t y[16];       /* CCM: last CBC-MAC block */
    uint8_t s0[16];      /* CCM: E(K, Ctr0), masks the tag */
    uint64_t total, done;
    int pkcs7;
};

static const EVP_CIPHER *evp_for(enum kl_cx_aes_mode mode, size_t klen)
{
    int big = klen == 32;
    switch (mode) {
    case KL_CX_ECB:
        return big ? EVP_aes_256_ecb() : EVP_aes_128_ecb();
    case KL_CX_CBC:
        return big ? EVP_aes_256_cbc() : EVP_aes_128_cbc();
    case KL_CX_GCM:
        return big ? EVP_aes_256_gcm() : EVP_aes_128_gcm();
    case KL_CX_CCM:
        return big ? EVP_aes_256_ctr() : EVP_aes_128_ctr();
    }
    return NULL;
}

static int gcm_tag_ok(size_t t)
{
    return t == 4 || t == 8 || (t >= 12 && t <= 16); /* SP 800-38D 5.2.1.2 */
}

static int ccm_tag_ok(size_t t)
{
    return t >= 4 && t <= 16 && t % 2 == 0; /* SP 800-38C A.1 */
}

/* Feeds the CBC-MAC and keeps its last output block. */
static int ccm_mac(struct aes_state *s, const uint8_t *d, size_t n)
{
    uint8_t scratch[256 + 16];
    while (n) {
        size_t k = n < 256 ? n : 256;
        int outl = 0;
        if (!EVP_EncryptUpdate(s->mac, scratch, &outl, d, (int)k)) return 0;
        if (outl >= 16) memcpy(s->y, scratch + outl - 16, 16);
        d += k;
        n -= k;
    }
    return 1;
}

static int ccm_zero_pad(struct aes_state *s, uint64_t fed)
{
    static const uint8_t zero[16];
    size_t r = (size_t)(fed % 16);
    return r == 0 || ccm_mac(s, zero, 16 - r);
}

static kl_status ccm_init(struct aes_state *s, const uint8_t *key, size_t klen,
                          const uint8_t *nonce, size_t nlen, size_t tag_len, size_t total,
                          const uint8_t *aad, size_t aadlen)
{
    size_t q = 15 - nlen;
    if (q < 8 && (uint64_t)total >> (8 * q))
        return KL_E_BAD_LENGTH; /* the length does not fit the q-byte field */
    s->mac = EVP_CIPHER_CTX_new();
    if (!s->mac) return KL_E_INTERNAL;
    static const uint8_t zero_iv[16];
    if (!EVP_EncryptInit_ex(s->mac, klen == 32 ? EVP_aes_256_cbc() : EVP_aes_128_cbc(), NULL, key,
                            zero_iv) ||
        !EVP_CIPHER_CTX_set_padding(s->mac, 0))
        return KL_E_INTERNAL;
    /* B0 = flags || N || Q */
    uint8_t b[16];
    b[0] = (uint8_t)((aadlen ? 0x40 : 0) | (((tag_len - 2) / 2) << 3) | (q - 1));
    memcpy(b + 1, nonce, nlen);
    uint64_t t = total;
    for (size_t i = 0; i < q; i++, t >>= 8)
        b[15 - i] = (uint8_t)t;
    if (!ccm_mac(s, b, 16)) return KL_E_INTERNAL;
    if (aadlen) {
        uint8_t hdr[6];
        size_t hl;
        if (aadlen < 0xFF00) {
            hdr[0] = (uint8_t)(aadlen >> 8);
            hdr[1] = (uint8_t)aadlen;
            hl = 2;
        } else {
            hdr[0] = 0xFF;
            hdr[1] = 0xFE;
            for (int i = 0; i < 4; i++)
                hdr[2 + i] = (uint8_t)((uint64_t)aadlen >> (24 - 8 * i));
            hl = 6;
        }
        if (!ccm_mac(s, hdr, hl) || !ccm_mac(s, aad, aadlen) || !ccm_zero_pad(s, hl + aadlen))
            return KL_E_INTERNAL;
    }
    /* Ctr0 = flags(q-1) || N || 0; its keystream block is S0, then Ctr1... encrypt data.
     * CTR mode increments the whole block, which equals CCM's q-byte counter because
     * the length check above keeps the counter from wrapping. */
    b[0] = (uint8_t)(q - 1);
    memset(b + 1 + nlen, 0, q);
    uint8_t zero[16] = {0};
    int outl = 0;
    if (!EVP_CipherInit_ex(s->ctx, evp_for(KL_CX_CCM, klen), NULL, key, b, 1) ||
        !EVP_EncryptUpdate(s->ctx, s->s0, &outl, zero, 16) || outl != 16)
        return KL_E_INTERNAL;
    s->total = total;
    return KL_OK;
}

kl_status kl_cx_cipher_init(struct kl_cx_cipher *c, enum kl_cx_aes_mode mode, int encrypt,
                            int pkcs7, const uint8_t *key, size_t klen, const uint8_t *iv,
                            size_t ivlen, size_t tag_len, size_t total_len, const uint8_t *aad,
                            size_t aadlen)
{
    if (!c || !key) return KL_E_INTERNAL;
    c->ctx = NULL;
    if (klen != 16 && klen != 32) return KL_E_BAD_KEY;
    if (mode < KL_CX_ECB || mode > KL_CX_GCM) return KL_E_BAD_PARAM;
    if (pkcs7 && mode != KL_CX_CBC) return KL_E_BAD_PARAM;
    if ((ivlen && !iv) || (aadlen && !aad)) return KL_E_INTERNAL;
    switch (mode) {
    case KL_CX_ECB:
        if (ivlen || tag_len || aadlen) return KL_E_BAD_PARAM;
        break;
    case KL_CX_CBC:
        if (ivlen != 16 || tag_len || aadlen) return KL_E_BAD_PARAM;
        break;
    case KL_CX_CCM:
        if (ivlen < 7 || ivlen > 13 || !ccm_tag_ok(tag_len)) return KL_E_BAD_PARAM;
        break;
    case KL_CX_GCM:
        if (ivlen < 1 || !gcm_tag_ok(tag_len)) return KL_E_BAD_PARAM;
        break;
    }
    struct aes_state *s = calloc(1, sizeof(*s));
    if (!s) return KL_E_INTERNAL;
    c->ctx = s;
    c->mode = mode;
    c->encrypt = encrypt ? 1 : 0;
    c->tag_len = tag_len;
    s->pkcs7 = pkcs7 ? 1 : 0;
    s->ctx = EVP_CIPHER_CTX_new();
    kl_status st = KL_E_INTERNAL;
    if (!s->ctx) goto fail;
    if (mode == KL_CX_CCM) {
        st = ccm_init(s, key, klen, iv, ivlen, tag_len, total_len, aad, aadlen);
        if (st != KL_OK) goto fail;
        return KL_OK;
    }
    const EVP_CIPHER *ciph = evp_for(mode, klen);
    if (!EVP_CipherInit_ex(s->ctx, ciph, NULL, NULL, NULL, c->encrypt)) goto fail;
    if (mode == KL_CX_GCM &&
        EVP_CIPHER_CTX_ctrl(s->ctx, EVP_CTRL_AEAD_SET_IVLEN, (int)ivlen, NULL) <= 0)
        goto fail;
    if (!EVP_CipherInit_ex(s->ctx, NULL, NULL, key, ivlen ? iv : NULL, c->encrypt)) goto fail;
    if (mode != KL_CX_GCM && !EVP_CIPHER_CTX_set_padding(s->ctx, pkcs7 ? 1 : 0)) goto fail;
    if (mode == KL_CX_GCM && aadlen) {
        int outl = 0;
        if (!EVP_CipherUpdate(s->ctx, NULL, &outl, aad, (int)aadlen)) goto fail;
    }
    return KL_OK;
fail:
    kl_cx_cipher_free(c);
    return st;
}

static kl_status ccm_update(struct kl_cx_cipher *c, struct aes_state *s, const uint8_t *in,
                            size_t n, uint8_t *out, size_t *outlen)
{
    if (n > s->total - s->done) return KL_E_BAD_LENGTH;
    int outl = 0;
    if (c->encrypt) {
        if (!ccm_mac(s, in, n) || !EVP_EncryptUpdate(s->ctx, out, &outl, in, (int)n))
            return KL_E_INTERNAL;
    } else {
        if (!EVP_EncryptUpdate(s->ctx, out, &outl, in, (int)n) || !ccm_mac(s, out, n))
            return KL_E_INTERNAL;
    }
    s->done += n;
    *outlen = (size_t)outl;
    return KL_OK;
}

kl_status kl_cx_cipher_update(struct kl_cx_cipher *c, const uint8_t *in, size_t n, uint8_t *out,
                              size_t cap, size_t *outlen)
{
    if (!c || !c->ctx || !outlen || (n && (!in || !out))) return KL_E_INTERNAL;
    *outlen = 0;
    if (n > (size_t)1 << 30) return KL_E_BAD_LENGTH;
    /* Block modes may release one buffered block more than they take in. */
    size_t need = (c->mode == KL_CX_ECB || c->mode == KL_CX_CBC) ? n + 16 : n;
    if (cap < need) return KL_E_BAD_LENGTH;
    struct aes_state *s = c->ctx;
    if (n == 0) return KL_OK;
    if (c->mode == KL_CX_CCM) return ccm_update(c, s, in, n, out, outlen);
    int outl = 0;
    if (!EVP_CipherUpdate(s->ctx, out, &outl, in, (int)n)) return KL_E_INTERNAL;
    *outlen = (size_t)outl;
    return KL_OK;
}

static kl_status ccm_final(struct kl_cx_cipher *c, struct aes_state *s, const uint8_t *tag_in,
                           size_t tag_in_len, uint8_t *out, size_t cap, size_t *outlen)
{
    if (s->done != s->total) return KL_E_BAD_LENGTH;
    if (!ccm_zero_pad(s, s->done)) return KL_E_INTERNAL;
    uint8_t t[16];
    for (int i = 0; i < 16; i++)
        t[i] = s->y[i] ^ s->s0[i];
    kl_status st = KL_OK;
    if (c->encrypt) {
        if (cap < c->tag_len)
            st = KL_E_BAD_LENGTH;
        else {
            memcpy(out, t, c->tag_len);
            *outlen = c->tag_len;
        }
    } else if (tag_in_len != c->tag_len || !kl_cx_ct_equal(t, tag_in, c->tag_len)) {
        st = KL_E_BAD_TAG;
    }
    kl_cx_wipe(t, sizeof(t));
    return st;
}

kl_status kl_cx_cipher_final(struct kl_cx_cipher *c, const uint8_t *tag_in, size_t tag_in_len,
                             uint8_t *out, size_t cap, size_t *outlen)
{
    if (!c || !c->ctx || !outlen || (cap && !out) || (tag_in_len && !tag_in)) return KL_E_INTERNAL;
    *outlen = 0;
    struct aes_state *s = c->ctx;
    int aead = c->mode == KL_CX_GCM || c->mode == KL_CX_CCM;
    kl_status st = KL_E_INTERNAL;
    if (!aead && tag_in_len) {
        st = KL_E_BAD_PARAM;
        goto out;
    }
    if (aead && !c->encrypt && tag_in_len != c->tag_len) {
        st = KL_E_BAD_TAG;
        goto out;
    }
    if (c->mode == KL_CX_CCM) {
        st = ccm_final(c, s, tag_in, tag_in_len, out, cap, outlen);
        goto out;
    }
    if (c->mode == KL_CX_GCM) {
        int outl = 0;
        if (c->encrypt) {
            if (cap < c->tag_len) {
                st = KL_E_BAD_LENGTH;
                goto out;
            }
            if (EVP_CipherFinal_ex(s->ctx, out, &outl) && outl == 0 &&
                EVP_CIPHER_CTX_ctrl(s->ctx, EVP_CTRL_AEAD_GET_TAG, (int)c->tag_len, out) > 0) {
                *outlen = c->tag_len;
                st = KL_OK;
            }
        } else {
            uint8_t t[16];
            memcpy(t, tag_in, c->tag_len);
            if (EVP_CIPHER_CTX_ctrl(s->ctx, EVP_CTRL_AEAD_SET_TAG, (int)c->tag_len, t) > 0)
                st = EVP_CipherFinal_ex(s->ctx, t, &outl) > 0 ? KL_OK : KL_E_BAD_TAG;
        }
        goto out;
    }
    /* ECB / CBC: at most one block comes out. */
    if (cap < 16) {
        st = KL_E_BAD_LENGTH;
        goto out;
    }
    int outl = 0;
    if (EVP_CipherFinal_ex(s->ctx, out, &outl) > 0) {
        *outlen = (size_t)outl;
        st = KL_OK;
    } else if (!s->pkcs7 || c->encrypt) {
        st = KL_E_BAD_LENGTH; /* data is not a whole number of blocks */
    } else {
        /* Decrypt with PKCS#7: either a partial block or a bad pad; both are the data's
         * fault. The chip does not say which (no padding oracle beyond a failure). */
        st = KL_E_BAD_PARAM;
    }
out:
    kl_cx_cipher_free(c);
    return st;
}

void kl_cx_cipher_free(struct kl_cx_cipher *c)
{
    if (!c || !c->ctx) return;
    struct aes_state *s = c->ctx;
    EVP_CIPHER_CTX_free(s->ctx); /* cleanses the key schedule */
    EVP_CIPHER_CTX_free(s->mac);
    kl_cx_wipe(s, sizeof(*s));
    free(s);
    c->ctx = NULL;
}
