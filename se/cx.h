/*
 * Crypto toolbox of the chip model: thin, allocation-hiding wrappers over OpenSSL 3
 * libcrypto. Every function validates its inputs and returns a kl_status; none keeps a
 * secret after it returns (temporaries are cleansed). Keys travel as raw bytes: P-256
 * private scalars as 32 bytes, public keys as X||Y (64 bytes), signatures as r||s.
 * Only the chip model (se/) uses this header.
 */
#ifndef KL_SE_CX_H
#define KL_SE_CX_H

#include <stddef.h>
#include <stdint.h>

#include "keylink/status.h"

#define KL_CX_P256_PRIV 32
#define KL_CX_P256_PUB 64
#define KL_CX_P256_SIG 64
#define KL_CX_SHA256_LEN 32

/* ---- SP 800-90A CTR_DRBG (AES-256), one per chip, seeded from the OS ---- */
struct kl_cx_drbg;
/* KL_OK and *out on success; personalization may be NULL. */
kl_status kl_cx_drbg_new(const uint8_t *personalization, size_t plen, struct kl_cx_drbg **out);
kl_status kl_cx_drbg_generate(struct kl_cx_drbg *d, uint8_t *out, size_t n);
void kl_cx_drbg_free(struct kl_cx_drbg *d);

/* ---- P-256 ---- */
/* A fresh key pair from the DRBG (scalar in [1, n-1]). */
kl_status kl_cx_ec_keygen(struct kl_cx_drbg *d, uint8_t priv[KL_CX_P256_PRIV],
                          uint8_t pub[KL_CX_P256_PUB]);
/* The public key X||Y of a private scalar; KL_E_BAD_KEY if the scalar is 0 or >= n. */
kl_status kl_cx_ec_pub_from_priv(const uint8_t priv[KL_CX_P256_PRIV], uint8_t pub[KL_CX_P256_PUB]);
/* KL_OK if X||Y is a point on P-256 (not infinity), KL_E_BAD_KEY otherwise. */
kl_status kl_cx_ec_check_pub(const uint8_t pub[KL_CX_P256_PUB]);
/* Decodes a SEC1 point (uncompressed 04||X||Y only; compressed is refused) or a DER
 * SubjectPublicKeyInfo (named curve prime256v1 only) into X||Y. KL_E_BAD_KEY otherwise. */
kl_status kl_cx_ec_decode_sec1(const uint8_t *in, size_t n, uint8_t pub[KL_CX_P256_PUB]);
kl_status kl_cx_ec_decode_spki(const uint8_t *in, size_t n, uint8_t pub[KL_CX_P256_PUB]);
/* ECDSA with a 32-byte digest; deterministic nonces are not required (DRBG-fed). */
kl_status kl_cx_ecdsa_sign(struct kl_cx_drbg *d, const uint8_t priv[KL_CX_P256_PRIV],
                           const uint8_t digest[KL_CX_SHA256_LEN], uint8_t sig[KL_CX_P256_SIG]);
/* KL_OK if valid, KL_E_VERIFY_FAILED if not, KL_E_BAD_KEY for a bad public key. */
kl_status kl_cx_ecdsa_verify(const uint8_t pub[KL_CX_P256_PUB],
                             const uint8_t digest[KL_CX_SHA256_LEN],
                             const uint8_t sig[KL_CX_P256_SIG]);
/* DER <-> raw r||s. der_to_raw is strict (minimal integers, no trailing bytes). */
kl_status kl_cx_sig_der_to_raw(const uint8_t *der, size_t n, uint8_t sig[KL_CX_P256_SIG]);
kl_status kl_cx_sig_raw_to_der(const uint8_t sig[KL_CX_P256_SIG], uint8_t *der, size_t cap,
                               size_t *len);
/* Shared x coordinate of priv * peer; KL_E_BAD_KEY if peer is not a valid point. */
kl_status kl_cx_ecdh(const uint8_t priv[KL_CX_P256_PRIV], const uint8_t peer[KL_CX_P256_PUB],
                     uint8_t shared[32]);

/* ---- SHA-256 (streaming, copyable so the digest so far can be taken) ---- */
struct kl_cx_sha256 {
    void *md; /* EVP_MD_CTX */
};
kl_status kl_cx_sha256_init(struct kl_cx_sha256 *h);
kl_status kl_cx_sha256_update(struct kl_cx_sha256 *h, const uint8_t *d, size_t n);
/* Digest of the data so far; the context goes on. */
kl_status kl_cx_sha256_peek(const struct kl_cx_sha256 *h, uint8_t out[KL_CX_SHA256_LEN]);
/* Digest and free. */
kl_status kl_cx_sha256_final(struct kl_cx_sha256 *h, uint8_t out[KL_CX_SHA256_LEN]);
void kl_cx_sha256_free(struct kl_cx_sha256 *h);
kl_status kl_cx_sha256(const uint8_t *d, size_t n, uint8_t out[KL_CX_SHA256_LEN]);

/* ---- MACs (streaming): HMAC-SHA-256 and AES-CMAC ---- */
enum kl_cx_mac_alg { KL_CX_HMAC_SHA256 = 1, KL_CX_AES_CMAC = 2 };
struct kl_cx_mac {
    void *ctx; /* EVP_MAC_CTX */
    enum kl_cx_mac_alg alg;
};
kl_status kl_cx_mac_init(struct kl_cx_mac *m, enum kl_cx_mac_alg alg, const uint8_t *key,
                         size_t klen);
kl_status kl_cx_mac_update(struct kl_cx_mac *m, const uint8_t *d, size_t n);
/* Writes the full tag (32 for HMAC, 16 for CMAC) and frees. */
kl_status kl_cx_mac_final(struct kl_cx_mac *m, uint8_t *tag, size_t cap, size_t *len);
void kl_cx_mac_free(struct kl_cx_mac *m);
kl_status kl_cx_hmac_sha256(const uint8_t *key, size_t klen, const uint8_t *d, size_t n,
                            uint8_t out[32]);

/* ---- AES (128/256): ECB, CBC (optional PKCS#7), CCM, GCM; streaming ---- */
enum kl_cx_aes_mode { KL_CX_ECB = 1, KL_CX_CBC, KL_CX_CCM, KL_CX_GCM };
struct kl_cx_cipher {
    void *ctx; /* EVP_CIPHER_CTX */
    enum kl_cx_aes_mode mode;
    int encrypt;
    size_t tag_len;
};
/* iv: 16 bytes for CBC, none for ECB, 7..13 for CCM, >= 1 for GCM. CCM needs the total
 * data length up front. aad is given once here. */
kl_status kl_cx_cipher_init(struct kl_cx_cipher *c, enum kl_cx_aes_mode mode, int encrypt,
                            int pkcs7, const uint8_t *key, size_t klen, const uint8_t *iv,
                            size_t ivlen, size_t tag_len, size_t total_len, const uint8_t *aad,
                            size_t aadlen);
kl_status kl_cx_cipher_update(struct kl_cx_cipher *c, const uint8_t *in, size_t n, uint8_t *out,
                              size_t cap, size_t *outlen);
/* Encrypt: final output then the tag (AEAD). Decrypt AEAD: tag in, KL_E_BAD_TAG if wrong. */
kl_status kl_cx_cipher_final(struct kl_cx_cipher *c, const uint8_t *tag_in, size_t tag_in_len,
                             uint8_t *out, size_t cap, size_t *outlen);
void kl_cx_cipher_free(struct kl_cx_cipher *c);

/* Constant-time equality: 1 if equal. */
int kl_cx_ct_equal(const uint8_t *a, const uint8_t *b, size_t n);
/* Zeroes memory in a way the compiler keeps. */
void kl_cx_wipe(void *p, size_t n);

#endif
