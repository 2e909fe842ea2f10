/*
 * Host crypto (hcx): the small, dependency-free primitives the device library needs for
 * the secure channel (docs/secure-channel.md). libc only, no allocation, C11, 32-bit limbs
 * so it ports to a Cortex-M4. Everything that touches a secret runs in constant time:
 * AES uses a computed S-box (no tables indexed by secrets), GHASH multiplies bit by bit
 * with masks, P-256 uses complete projective formulas with a fixed-window ladder and
 * constant-time table selection. Private to host/; not a public API.
 *
 * Standards: FIPS 180-4 (SHA-256), RFC 2104 (HMAC), RFC 5869 (HKDF), FIPS 197 (AES),
 * SP 800-38D (GCM), SEC 1 v2 / FIPS 186-4 (P-256).
 */
#ifndef KL_HOST_HCX_H
#define KL_HOST_HCX_H

#include <stddef.h>
#include <stdint.h>

#include "keylink/status.h"

/* ---- utilities (hcx_util.c) ---- */
/* 1 if a[0..n) == b[0..n), 0 otherwise; time depends on n only. */
int kl_hcx_ct_equal(const uint8_t *a, const uint8_t *b, size_t n);
/* Zeroes p[0..n) through a volatile pointer so the compiler keeps it. NULL is fine. */
void kl_hcx_wipe(void *p, size_t n);

/* ---- SHA-256 (hcx_sha256.c) ---- */
#define KL_HCX_SHA256_LEN 32
#define KL_HCX_SHA256_BLOCK 64
struct kl_hcx_sha256 {
    uint32_t h[8];
    uint64_t total; /* bytes hashed so far */
    uint8_t buf[KL_HCX_SHA256_BLOCK];
    size_t fill;
};
void kl_hcx_sha256_init(struct kl_hcx_sha256 *s);
void kl_hcx_sha256_update(struct kl_hcx_sha256 *s, const uint8_t *d, size_t n);
/* Writes the digest and wipes the context. */
void kl_hcx_sha256_final(struct kl_hcx_sha256 *s, uint8_t out[KL_HCX_SHA256_LEN]);
void kl_hcx_sha256(const uint8_t *d, size_t n, uint8_t out[KL_HCX_SHA256_LEN]);

/* ---- HMAC-SHA-256 and HKDF-SHA-256 (hcx_hmac.c) ---- */
struct kl_hcx_hmac {
    struct kl_hcx_sha256 inner, outer;
};
/* Any key length (keys longer than 64 bytes are hashed first, RFC 2104). */
void kl_hcx_hmac_init(struct kl_hcx_hmac *h, const uint8_t *key, size_t klen);
void kl_hcx_hmac_update(struct kl_hcx_hmac *h, const uint8_t *d, size_t n);
/* Writes the 32-byte tag and wipes the context. */
void kl_hcx_hmac_final(struct kl_hcx_hmac *h, uint8_t out[KL_HCX_SHA256_LEN]);
void kl_hcx_hmac_sha256(const uint8_t *key, size_t klen, const uint8_t *d, size_t n,
                        uint8_t out[KL_HCX_SHA256_LEN]);
/* RFC 5869 extract-then-expand. salt may be NULL/0 (a zero salt of 32 bytes is used).
 * KL_E_ARG if out is NULL or out_len is 0 or over 255 * 32. */
kl_status kl_hcx_hkdf_sha256(const uint8_t *salt, size_t salt_len, const uint8_t *ikm,
                             size_t ikm_len, const uint8_t *info, size_t info_len, uint8_t *out,
                             size_t out_len);

/* ---- AES block encryption, 128 and 256-bit keys (hcx_aes.c) ---- */
struct kl_hcx_aes {
    uint8_t rk[240]; /* round keys, 16 bytes per round */
    unsigned rounds; /* 10 or 14 */
};
/* KL_E_ARG unless klen is 16 or 32. */
kl_status kl_hcx_aes_init(struct kl_hcx_aes *a, const uint8_t *key, size_t klen);
/* in and out may alias. */
void kl_hcx_aes_encrypt(const struct kl_hcx_aes *a, const uint8_t in[16], uint8_t out[16]);

/* ---- AES-GCM, 96-bit IV, 128-bit tag (hcx_gcm.c) ---- */
#define KL_HCX_GCM_IV 12
#define KL_HCX_GCM_TAG 16
/* Encrypts pt[0..n) into ct (may alias pt) and writes the tag. Other IV lengths and tag
 * lengths are refused by design (KL_E_ARG): the channel only uses 12 and 16.
 * KL_E_ARG also for a key that is not 16 or 32 bytes or n over 2^32 blocks. */
kl_status kl_hcx_gcm_seal(const uint8_t *key, size_t klen, const uint8_t *iv, size_t iv_len,
                          const uint8_t *aad, size_t aad_len, const uint8_t *pt, size_t n,
                          uint8_t *ct, uint8_t tag[KL_HCX_GCM_TAG]);
/* Checks the tag in constant time, then decrypts ct[0..n) into pt (may alias ct).
 * KL_E_BAD_TAG if the tag is wrong: pt is then all zero (nothing released). */
kl_status kl_hcx_gcm_open(const uint8_t *key, size_t klen, const uint8_t *iv, size_t iv_len,
                          const uint8_t *aad, size_t aad_len, const uint8_t *ct, size_t n,
                          const uint8_t tag[KL_HCX_GCM_TAG], uint8_t *pt);

/* ---- P-256 (hcx_p256.c) ---- */
#define KL_HCX_P256_PRIV 32
#define KL_HCX_P256_PUB 64 /* X||Y, big-endian */
/* Random source: fills out[0..n) and returns KL_OK, or an error that is passed on. */
typedef kl_status (*kl_hcx_rng_fn)(void *ctx, uint8_t *out, size_t n);
/* New key pair: scalar drawn by rejection sampling in [1, n-1]. KL_E_INTERNAL if the
 * source gives 64 draws in a row out of range (a broken source). */
kl_status kl_hcx_p256_keygen(kl_hcx_rng_fn rng, void *rng_ctx, uint8_t priv[KL_HCX_P256_PRIV],
                             uint8_t pub[KL_HCX_P256_PUB]);
/* Public key of a scalar; KL_E_BAD_KEY if the scalar is 0 or >= n. */
kl_status kl_hcx_p256_pub(const uint8_t priv[KL_HCX_P256_PRIV], uint8_t pub[KL_HCX_P256_PUB]);
/* KL_OK if X||Y are both < p and on the curve (cofactor 1: then the point has order n),
 * KL_E_BAD_KEY otherwise. */
kl_status kl_hcx_p256_check_pub(const uint8_t pub[KL_HCX_P256_PUB]);
/* Shared secret x(priv * peer) after full validation of peer; KL_E_BAD_KEY for a bad peer
 * point or a scalar out of range (shared is then zero). */
kl_status kl_hcx_p256_ecdh(const uint8_t priv[KL_HCX_P256_PRIV],
                           const uint8_t peer[KL_HCX_P256_PUB], uint8_t shared[32]);

#endif
