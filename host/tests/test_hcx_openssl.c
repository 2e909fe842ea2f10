/*
 * Random cross-checks of the host crypto against OpenSSL 3: 200 ECDH pairs (both
 * directions, and public keys from the same scalar), 200 AES-GCM encryptions with random
 * keys, IVs, aad and lengths (and decryption of OpenSSL's output), and SHA-256, HMAC and
 * HKDF on random inputs. The two implementations share no code.
 */
#include "kl_test.h"

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../hcx.h" /* private header of host/ */

#define REQUIRE(c)                                                                                 \
    do {                                                                                           \
        if (!(c)) {                                                                                \
            fprintf(stderr, "%s:%d: OpenSSL setup failed: %s\n", __FILE__, __LINE__, #c);          \
            exit(2);                                                                               \
        }                                                                                          \
    } while (0)

static kl_status rng(void *ctx, uint8_t *out, size_t n)
{
    (void)ctx;
    return RAND_bytes(out, (int)n) == 1 ? KL_OK : KL_E_IO;
}

static uint32_t rnd(uint32_t below)
{
    uint32_t v;
    REQUIRE(RAND_bytes((unsigned char *)&v, sizeof v) == 1);
    return v % below;
}

/* An OpenSSL P-256 public key from X||Y. */
static EVP_PKEY *pkey_from_pub(const uint8_t xy[64])
{
    uint8_t enc[65];
    enc[0] = 4;
    memcpy(enc + 1, xy, 64);
    OSSL_PARAM p[] = {OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0),
                      OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, enc, sizeof enc),
                      OSSL_PARAM_construct_end()};
    EVP_PKEY_CTX *c = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
    EVP_PKEY *k = NULL;
    REQUIRE(c && EVP_PKEY_fromdata_init(c) == 1);
    REQUIRE(EVP_PKEY_fromdata(c, &k, EVP_PKEY_PUBLIC_KEY, p) == 1);
    EVP_PKEY_CTX_free(c);
    return k;
}

static void test_ecdh(void)
{
    for (int i = 0; i < 200; i++) {
        EVP_PKEY *ok = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
        REQUIRE(ok);
        uint8_t enc[65], opub[64], opriv[32], hpriv[32], hpub[64], s_h[32], s_o[32], mine[64];
        size_t elen = 0, slen = sizeof s_o;
        REQUIRE(EVP_PKEY_get_octet_string_param(ok, OSSL_PKEY_PARAM_PUB_KEY, enc, sizeof enc,
                                                &elen) == 1 &&
                elen == 65 && enc[0] == 4);
        memcpy(opub, enc + 1, 64);
        BIGNUM *bn = NULL;
        REQUIRE(EVP_PKEY_get_bn_param(ok, OSSL_PKEY_PARAM_PRIV_KEY, &bn) == 1);
        REQUIRE(BN_bn2binpad(bn, opriv, 32) == 32);
        BN_clear_free(bn);
        /* Same scalar, same public key (a sample: each costs a scalar multiplication). */
        if (i < 25) {
            CHECK(kl_hcx_p256_pub(opriv, mine) == KL_OK);
            CHECK(memcmp(mine, opub, 64) == 0);
        }
        /* Host key pair, shared secret both ways. */
        CHECK(kl_hcx_p256_keygen(rng, NULL, hpriv, hpub) == KL_OK);
        CHECK(kl_hcx_p256_ecdh(hpriv, opub, s_h) == KL_OK);
        EVP_PKEY *hk = pkey_from_pub(hpub); /* also proves the host's point is valid */
        EVP_PKEY_CTX *dc = EVP_PKEY_CTX_new(ok, NULL);
        REQUIRE(dc && EVP_PKEY_derive_init(dc) == 1 && EVP_PKEY_derive_set_peer(dc, hk) == 1);
        REQUIRE(EVP_PKEY_derive(dc, s_o, &slen) == 1 && slen == 32);
        CHECK(memcmp(s_h, s_o, 32) == 0);
        /* And the host agrees with itself in the other direction (a sample). */
        if (i < 25) {
            CHECK(kl_hcx_p256_ecdh(opriv, hpub, s_h) == KL_OK);
            CHECK(memcmp(s_h, s_o, 32) == 0);
        }
        EVP_PKEY_CTX_free(dc);
        EVP_PKEY_free(hk);
        EVP_PKEY_free(ok);
    }
}

static void ossl_gcm(int enc, const uint8_t *key, size_t klen, const uint8_t *iv,
                     const uint8_t *aad, size_t alen, const uint8_t *in, size_t n, uint8_t *out,
                     uint8_t tag[16], int *tag_ok)
{
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    int l = 0;
    REQUIRE(c);
    REQUIRE(EVP_CipherInit_ex(c, klen == 16 ? EVP_aes_128_gcm() : EVP_aes_256_gcm(), NULL, key, iv,
                              enc) == 1);
    if (alen) REQUIRE(EVP_CipherUpdate(c, NULL, &l, aad, (int)alen) == 1);
    if (n) REQUIRE(EVP_CipherUpdate(c, out, &l, in, (int)n) == 1);
    if (!enc) REQUIRE(EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, 16, tag) == 1);
    *tag_ok = EVP_CipherFinal_ex(c, out + (n ? (size_t)l : 0), &l) == 1;
    if (enc) REQUIRE(EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, 16, tag) == 1);
    EVP_CIPHER_CTX_free(c);
}

static void test_gcm(void)
{
    static uint8_t key[32], iv[12], aad[64], pt[300], ct_h[300], ct_o[300], back[300];
    uint8_t tag_h[16], tag_o[16];
    for (int i = 0; i < 200; i++) {
        size_t klen = rnd(2) ? 32 : 16, alen = rnd(65), n = rnd(i < 20 ? 40 : 300);
        int ok;
        REQUIRE(RAND_bytes(key, 32) == 1 && RAND_bytes(iv, 12) == 1 &&
                RAND_bytes(aad, sizeof aad) == 1 && RAND_bytes(pt, sizeof pt) == 1);
        CHECK(kl_hcx_gcm_seal(key, klen, iv, 12, aad, alen, pt, n, ct_h, tag_h) == KL_OK);
        ossl_gcm(1, key, klen, iv, aad, alen, pt, n, ct_o, tag_o, &ok);
        CHECK(ok);
        CHECK(memcmp(ct_h, ct_o, n) == 0);
        CHECK(memcmp(tag_h, tag_o, 16) == 0);
        /* OpenSSL opens ours; we open OpenSSL's. */
        ossl_gcm(0, key, klen, iv, aad, alen, ct_h, n, back, tag_h, &ok);
        CHECK(ok && memcmp(back, pt, n) == 0);
        CHECK(kl_hcx_gcm_open(key, klen, iv, 12, aad, alen, ct_o, n, tag_o, back) == KL_OK);
        CHECK(memcmp(back, pt, n) == 0);
        /* A flipped byte anywhere is refused by both. */
        size_t where = rnd((uint32_t)(n + alen + 16));
        if (where < n)
            ct_o[where] ^= 0x80;
        else if (where < n + alen)
            aad[where - n] ^= 0x80;
        else
            tag_o[where - n - alen] ^= 0x80;
        CHECK(kl_hcx_gcm_open(key, klen, iv, 12, aad, alen, ct_o, n, tag_o, back) == KL_E_BAD_TAG);
        ossl_gcm(0, key, klen, iv, aad, alen, ct_o, n, back, tag_o, &ok);
        CHECK(!ok);
    }
}

static void test_hash_mac_kdf(void)
{
    static uint8_t msg[1000], key[150], salt[80], info[80];
    uint8_t h1[32], h2[32], okm1[200], okm2[200];
    for (int i = 0; i < 100; i++) {
        size_t n = rnd(sizeof msg), kn = rnd(sizeof key), sn = rnd(sizeof salt),
               in = rnd(sizeof info), on = 1 + rnd(sizeof okm1);
        unsigned hl = 32;
        REQUIRE(RAND_bytes(msg, sizeof msg) == 1 && RAND_bytes(key, sizeof key) == 1);
        REQUIRE(RAND_bytes(salt, sizeof salt) == 1 && RAND_bytes(info, sizeof info) == 1);
        kl_hcx_sha256(msg, n, h1);
        REQUIRE(EVP_Digest(msg, n, h2, &hl, EVP_sha256(), NULL) == 1);
        CHECK(memcmp(h1, h2, 32) == 0);
        kl_hcx_hmac_sha256(key, kn, msg, n, h1);
        size_t ml = 32;
        REQUIRE(EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, key, kn, msg, n, h2, 32, &ml));
        CHECK(memcmp(h1, h2, 32) == 0);
        CHECK(kl_hcx_hkdf_sha256(salt, sn, msg, n, info, in, okm1, on) == KL_OK);
        EVP_KDF *kdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
        EVP_KDF_CTX *kc = EVP_KDF_CTX_new(kdf);
        uint8_t zero[32] = {0};
        OSSL_PARAM p[] = {
            OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, "SHA256", 0),
            OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, msg, n),
            OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, sn ? salt : zero, sn ? sn : 32),
            OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, info, in),
            OSSL_PARAM_construct_end()};
        REQUIRE(kc && EVP_KDF_derive(kc, okm2, on, p) == 1);
        CHECK(memcmp(okm1, okm2, on) == 0);
        EVP_KDF_CTX_free(kc);
        EVP_KDF_free(kdf);
    }
}

int main(void)
{
    test_ecdh();
    test_gcm();
    test_hash_mac_kdf();
    if (kl_fails) {
        fprintf(stderr, "%d check(s) failed\n", kl_fails);
        return 1;
    }
    printf("hcx agrees with OpenSSL: 200 ECDH pairs, 200 AES-GCM, 100 SHA/HMAC/HKDF\n");
    return 0;
}
