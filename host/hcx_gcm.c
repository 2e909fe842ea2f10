/*
 * AES-GCM (NIST SP 800-38D) with a 96-bit IV and a 128-bit tag. GHASH multiplies in
 * GF(2^128) bit by bit (algorithm 1 of the standard) with masks instead of branches, so
 * its timing does not depend on the hash key H or the data.
 */
#include <string.h>

#include "hcx.h"

struct gf128 {
    uint64_t hi, lo; /* bit 0 of the standard (leftmost) is the top bit of hi */
};

static uint64_t load_be64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return v;
}

static void store_be64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--, v >>= 8)
        p[i] = (uint8_t)v;
}

/* x = x * h in GF(2^128) with the GCM bit order. */
static void gf_mul(struct gf128 *x, const struct gf128 *h)
{
    uint64_t zh = 0, zl = 0, vh = h->hi, vl = h->lo;
    for (int i = 0; i < 128; i++) {
        uint64_t word = i < 64 ? x->hi : x->lo; /* i is public */
        uint64_t m = 0 - ((word >> (63 - (i & 63))) & 1);
        zh ^= vh & m;
        zl ^= vl & m;
        uint64_t r = 0 - (vl & 1); /* reduce by R = 11100001 || 0^120 when a bit falls off */
        vl = (vl >> 1) | (vh << 63);
        vh = (vh >> 1) ^ (0xe100000000000000ull & r);
    }
    x->hi = zh;
    x->lo = zl;
}

/* Absorbs data into the GHASH state, zero-padding the last partial block. */
static void ghash(struct gf128 *y, const struct gf128 *h, const uint8_t *d, size_t n)
{
    uint8_t blk[16];
    while (n) {
        size_t take = n < 16 ? n : 16;
        memset(blk, 0, sizeof blk);
        memcpy(blk, d, take);
        y->hi ^= load_be64(blk);
        y->lo ^= load_be64(blk + 8);
        gf_mul(y, h);
        d += take;
        n -= take;
    }
    kl_hcx_wipe(blk, sizeof blk);
}

/* CTR mode from counter block j (incremented in its last 32 bits, inc32). */
static void gctr(const struct kl_hcx_aes *a, const uint8_t j[16], const uint8_t *in, size_t n,
                 uint8_t *out)
{
    uint8_t cb[16], ks[16];
    memcpy(cb, j, 16);
    while (n) {
        uint32_t c =
            (uint32_t)cb[12] << 24 | (uint32_t)cb[13] << 16 | (uint32_t)cb[14] << 8 | cb[15];
        c++;
        cb[12] = (uint8_t)(c >> 24);
        cb[13] = (uint8_t)(c >> 16);
        cb[14] = (uint8_t)(c >> 8);
        cb[15] = (uint8_t)c;
        kl_hcx_aes_encrypt(a, cb, ks);
        size_t take = n < 16 ? n : 16;
        for (size_t i = 0; i < take; i++)
            out[i] = in[i] ^ ks[i];
        in += take;
        out += take;
        n -= take;
    }
    kl_hcx_wipe(ks, sizeof ks);
}

/* Tag over aad and ciphertext: GHASH(...) xor E(K, J0). */
static void make_tag(const struct kl_hcx_aes *a, const struct gf128 *h, const uint8_t j0[16],
                     const uint8_t *aad, size_t aad_len, const uint8_t *ct, size_t n,
                     uint8_t tag[16])
{
    struct gf128 y = {0, 0};
    uint8_t lens[16], ek[16];
    ghash(&y, h, aad, aad_len);
    ghash(&y, h, ct, n);
    store_be64(lens, (uint64_t)aad_len * 8);
    store_be64(lens + 8, (uint64_t)n * 8);
    ghash(&y, h, lens, 16);
    kl_hcx_aes_encrypt(a, j0, ek);
    store_be64(tag, y.hi);
    store_be64(tag + 8, y.lo);
    for (int i = 0; i < 16; i++)
        tag[i] ^= ek[i];
    kl_hcx_wipe(&y, sizeof y);
    kl_hcx_wipe(ek, sizeof ek);
}

static kl_status setup(struct kl_hcx_aes *a, struct gf128 *h, uint8_t j0[16], const uint8_t *key,
                       size_t klen, const uint8_t *iv, size_t iv_len, const uint8_t *aad,
                       size_t aad_len, const void *in, const void *out, size_t n)
{
    uint8_t hb[16] = {0};
    if (!iv || iv_len != KL_HCX_GCM_IV || (!aad && aad_len) || ((!in || !out) && n))
        return KL_E_ARG;
    /* SP 800-38D limits: plaintext <= 2^39 - 256 bits; aad <= 2^61 bytes. */
    if ((uint64_t)n > ((1ull << 36) - 32)) return KL_E_ARG;
    kl_status st = kl_hcx_aes_init(a, key, klen);
    if (st != KL_OK) return st;
    kl_hcx_aes_encrypt(a, hb, hb);
    h->hi = load_be64(hb);
    h->lo = load_be64(hb + 8);
    memcpy(j0, iv, 12);
    j0[12] = j0[13] = j0[14] = 0;
    j0[15] = 1;
    kl_hcx_wipe(hb, sizeof hb);
    return KL_OK;
}

kl_status kl_hcx_gcm_seal(const uint8_t *key, size_t klen, const uint8_t *iv, size_t iv_len,
                          const uint8_t *aad, size_t aad_len, const uint8_t *pt, size_t n,
                          uint8_t *ct, uint8_t tag[KL_HCX_GCM_TAG])
{
    struct kl_hcx_aes a;
    struct gf128 h;
    uint8_t j0[16];
    if (!tag) return KL_E_ARG;
    kl_status st = setup(&a, &h, j0, key, klen, iv, iv_len, aad, aad_len, pt, ct, n);
    if (st != KL_OK) return st;
    gctr(&a, j0, pt, n, ct);
    make_tag(&a, &h, j0, aad, aad_len, ct, n, tag);
    kl_hcx_wipe(&a, sizeof a);
    kl_hcx_wipe(&h, sizeof h);
    return KL_OK;
}

kl_status kl_hcx_gcm_open(const uint8_t *key, size_t klen, const uint8_t *iv, size_t iv_len,
                          const uint8_t *aad, size_t aad_len, const uint8_t *ct, size_t n,
                          const uint8_t tag[KL_HCX_GCM_TAG], uint8_t *pt)
{
    struct kl_hcx_aes a;
    struct gf128 h;
    uint8_t j0[16], want[16];
    if (!tag) return KL_E_ARG;
    kl_status st = setup(&a, &h, j0, key, klen, iv, iv_len, aad, aad_len, ct, pt, n);
    if (st != KL_OK) return st;
    /* The tag is over the ciphertext: check it before any plaintext exists. */
    make_tag(&a, &h, j0, aad, aad_len, ct, n, want);
    int ok = kl_hcx_ct_equal(want, tag, 16);
    if (ok)
        gctr(&a, j0, ct, n, pt);
    else if (n)
        memset(pt, 0, n);
    kl_hcx_wipe(&a, sizeof a);
    kl_hcx_wipe(&h, sizeof h);
    kl_hcx_wipe(want, sizeof want);
    return ok ? KL_OK : KL_E_BAD_TAG;
}
