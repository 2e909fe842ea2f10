/*
 * P-256 key handling, ECDSA and ECDH over EVP_PKEY. Keys enter as raw bytes and are
 * turned into short-lived EVP_PKEYs; everything secret is cleansed on the way out.
 */
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/obj_mac.h>
#include <openssl/param_build.h>

#include "cx.h"

/* The group order n of P-256, big-endian. */
static const uint8_t p256_n[32] = {0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff,
                                   0xff, 0xff, 0xff, 0xff, 0xff, 0xbc, 0xe6, 0xfa, 0xad, 0xa7, 0x17,
                                   0x9e, 0x84, 0xf3, 0xb9, 0xca, 0xc2, 0xfc, 0x63, 0x25, 0x51};

/* The only DER SubjectPublicKeyInfo header of an uncompressed named-curve P-256 key:
 * SEQ { SEQ { id-ecPublicKey, prime256v1 }, BIT STRING (66 bytes, 0 unused bits) }.
 * DER admits exactly one encoding, so a byte compare is a strict parse. */
static const uint8_t p256_spki_hdr[26] = {0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48,
                                          0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a, 0x86, 0x48,
                                          0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00};

/* 1 if 0 < k < n (constant time over the bytes). */
static int scalar_ok(const uint8_t k[32])
{
    unsigned nonzero = 0;
    int borrow = 0;
    for (int i = 31; i >= 0; i--) {
        nonzero |= k[i];
        int diff = (int)k[i] - (int)p256_n[i] - borrow;
        borrow = diff < 0;
    }
    /* borrow set means k < n */
    return nonzero != 0 && borrow;
}

kl_status kl_cx_ec_check_pub(const uint8_t pub[KL_CX_P256_PUB])
{
    if (!pub) return KL_E_BAD_KEY;
    uint8_t oct[65];
    oct[0] = 0x04;
    memcpy(oct + 1, pub, 64);
    kl_status st = KL_E_BAD_KEY;
    EC_GROUP *g = EC_GROUP_new_by_curve_name(NID_X9_62_prime256v1);
    EC_POINT *p = g ? EC_POINT_new(g) : NULL;
    BN_CTX *bn = BN_CTX_new();
    if (!g || !p || !bn) st = KL_E_INTERNAL;
    /* oct2point rejects coordinates >= p and points off the curve; infinity has no
     * uncompressed X||Y form, so it cannot come through here. */
    else if (EC_POINT_oct2point(g, p, oct, sizeof(oct), bn) == 1 &&
             EC_POINT_is_on_curve(g, p, bn) == 1 && !EC_POINT_is_at_infinity(g, p))
        st = KL_OK;
    BN_CTX_free(bn);
    EC_POINT_free(p);
    EC_GROUP_free(g);
    return st;
}

kl_status kl_cx_ec_pub_from_priv(const uint8_t priv[KL_CX_P256_PRIV], uint8_t pub[KL_CX_P256_PUB])
{
    if (!priv || !pub) return KL_E_INTERNAL;
    if (!scalar_ok(priv)) return KL_E_BAD_KEY;
    kl_status st = KL_E_INTERNAL;
    uint8_t oct[65];
    EC_GROUP *g = EC_GROUP_new_by_curve_name(NID_X9_62_prime256v1);
    EC_POINT *p = g ? EC_POINT_new(g) : NULL;
    BN_CTX *bn = BN_CTX_new();
    BIGNUM *k = BN_secure_new();
    if (!g || !p || !bn || !k || !BN_bin2bn(priv, 32, k)) goto out;
    BN_set_flags(k, BN_FLG_CONSTTIME);
    if (!EC_POINT_mul(g, p, k, NULL, NULL, bn)) goto out;
    if (EC_POINT_point2oct(g, p, POINT_CONVERSION_UNCOMPRESSED, oct, sizeof(oct), bn) != 65)
        goto out;
    memcpy(pub, oct + 1, 64);
    st = KL_OK;
out:
    BN_clear_free(k);
    BN_CTX_free(bn);
    EC_POINT_free(p);
    EC_GROUP_free(g);
    return st;
}

kl_status kl_cx_ec_keygen(struct kl_cx_drbg *d, uint8_t priv[KL_CX_P256_PRIV],
                          uint8_t pub[KL_CX_P256_PUB])
{
    if (!d || !priv || !pub) return KL_E_INTERNAL;
    /* Rejection sampling: a uniform scalar in [1, n-1]; n is close to 2^256, so one
     * try almost always suffices. */
    for (int tries = 0; tries < 64; tries++) {
        kl_status st = kl_cx_drbg_generate(d, priv, KL_CX_P256_PRIV);
        if (st != KL_OK) break;
        if (scalar_ok(priv)) {
            st = kl_cx_ec_pub_from_priv(priv, pub);
            if (st != KL_OK) kl_cx_wipe(priv, KL_CX_P256_PRIV);
            return st;
        }
    }
    kl_cx_wipe(priv, KL_CX_P256_PRIV);
    return KL_E_INTERNAL;
}

kl_status kl_cx_ec_decode_sec1(const uint8_t *in, size_t n, uint8_t pub[KL_CX_P256_PUB])
{
    if (!pub) return KL_E_INTERNAL;
    if (!in || n != 65 || in[0] != 0x04)
        return KL_E_BAD_KEY; /* compressed and hybrid forms are refused */
    if (kl_cx_ec_check_pub(in + 1) != KL_OK) return KL_E_BAD_KEY;
    memcpy(pub, in + 1, 64);
    return KL_OK;
}

kl_status kl_cx_ec_decode_spki(const uint8_t *in, size_t n, uint8_t pub[KL_CX_P256_PUB])
{
    if (!pub) return KL_E_INTERNAL;
    if (!in || n != sizeof(p256_spki_hdr) + 65 ||
        memcmp(in, p256_spki_hdr, sizeof(p256_spki_hdr)) != 0)
        return KL_E_BAD_KEY;
    return kl_cx_ec_decode_sec1(in + sizeof(p256_spki_hdr), 65, pub);
}

/* An EVP_PKEY for P-256 from a public key and/or a private scalar. */
static EVP_PKEY *make_pkey(const uint8_t *priv, const uint8_t *pub, int selection)
{
    EVP_PKEY *pk = NULL;
    OSSL_PARAM_BLD *b = OSSL_PARAM_BLD_new();
    OSSL_PARAM *params = NULL;
    BIGNUM *k = NULL;
    EVP_PKEY_CTX *pc = NULL;
    uint8_t oct[65];
    if (!b || !OSSL_PARAM_BLD_push_utf8_string(b, OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0))
        goto out;
    if (pub) {
        oct[0] = 0x04;
        memcpy(oct + 1, pub, 64);
        if (!OSSL_PARAM_BLD_push_octet_string(b, OSSL_PKEY_PARAM_PUB_KEY, oct, sizeof(oct)))
            goto out;
    }
    if (priv) {
        k = BN_secure_new();
        if (!k || !BN_bin2bn(priv, 32, k) ||
            !OSSL_PARAM_BLD_push_BN(b, OSSL_PKEY_PARAM_PRIV_KEY, k))
            goto out;
    }
    params = OSSL_PARAM_BLD_to_param(b);
    pc = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
    if (!params || !pc || EVP_PKEY_fromdata_init(pc) <= 0 ||
        EVP_PKEY_fromdata(pc, &pk, selection, params) <= 0)
        pk = NULL;
out:
    EVP_PKEY_CTX_free(pc);
    OSSL_PARAM_free(params); /* BLD params holding a secure BN are cleared on free */
    BN_clear_free(k);
    OSSL_PARAM_BLD_free(b);
    return pk;
}

kl_status kl_cx_ecdsa_sign(struct kl_cx_drbg *d, const uint8_t priv[KL_CX_P256_PRIV],
                           const uint8_t digest[KL_CX_SHA256_LEN], uint8_t sig[KL_CX_P256_SIG])
{
    if (!d || !priv || !digest || !sig) return KL_E_INTERNAL;
    uint8_t pub[64];
    kl_status st = kl_cx_ec_pub_from_priv(priv, pub);
    if (st != KL_OK) return st;
    st = KL_E_INTERNAL;
    uint8_t der[80];
    size_t dlen = sizeof(der);
    EVP_PKEY *pk = make_pkey(priv, pub, EVP_PKEY_KEYPAIR);
    EVP_PKEY_CTX *pc = pk ? EVP_PKEY_CTX_new_from_pkey(NULL, pk, NULL) : NULL;
    /* The per-signature nonce comes from OpenSSL's own CTR_DRBG (AES-256, OS-seeded);
     * see docs/crypto.md. */
    if (pc && EVP_PKEY_sign_init(pc) > 0 &&
        EVP_PKEY_sign(pc, der, &dlen, digest, KL_CX_SHA256_LEN) > 0)
        st = kl_cx_sig_der_to_raw(der, dlen, sig) == KL_OK ? KL_OK : KL_E_INTERNAL;
    EVP_PKEY_CTX_free(pc);
    EVP_PKEY_free(pk);
    return st;
}

kl_status kl_cx_ecdsa_verify(const uint8_t pub[KL_CX_P256_PUB],
                             const uint8_t digest[KL_CX_SHA256_LEN],
                             const uint8_t sig[KL_CX_P256_SIG])
{
    if (!pub || !digest || !sig) return KL_E_INTERNAL;
    if (kl_cx_ec_check_pub(pub) != KL_OK) return KL_E_BAD_KEY;
    uint8_t der[80];
    size_t dlen = 0;
    if (kl_cx_sig_raw_to_der(sig, der, sizeof(der), &dlen) != KL_OK) return KL_E_INTERNAL;
    kl_status st = KL_E_INTERNAL;
    EVP_PKEY *pk = make_pkey(NULL, pub, EVP_PKEY_PUBLIC_KEY);
    EVP_PKEY_CTX *pc = pk ? EVP_PKEY_CTX_new_from_pkey(NULL, pk, NULL) : NULL;
    if (pc && EVP_PKEY_verify_init(pc) > 0) {
        /* 1 valid; 0 or -1 (r or s out of range) both mean "does not verify" */
        int r = EVP_PKEY_verify(pc, der, dlen, digest, KL_CX_SHA256_LEN);
        st = r == 1 ? KL_OK : KL_E_VERIFY_FAILED;
    }
    EVP_PKEY_CTX_free(pc);
    EVP_PKEY_free(pk);
    return st;
}

kl_status kl_cx_ecdh(const uint8_t priv[KL_CX_P256_PRIV], const uint8_t peer[KL_CX_P256_PUB],
                     uint8_t shared[32])
{
    if (!priv || !peer || !shared) return KL_E_INTERNAL;
    if (kl_cx_ec_check_pub(peer) != KL_OK) return KL_E_BAD_KEY;
    uint8_t pub[64];
    kl_status st = kl_cx_ec_pub_from_priv(priv, pub);
    if (st != KL_OK) return st;
    st = KL_E_INTERNAL;
    uint8_t z[32];
    size_t zlen = sizeof(z);
    EVP_PKEY *mine = make_pkey(priv, pub, EVP_PKEY_KEYPAIR);
    EVP_PKEY *other = make_pkey(NULL, peer, EVP_PKEY_PUBLIC_KEY);
    EVP_PKEY_CTX *pc = mine && other ? EVP_PKEY_CTX_new_from_pkey(NULL, mine, NULL) : NULL;
    if (pc && EVP_PKEY_derive_init(pc) > 0 && EVP_PKEY_derive_set_peer(pc, other) > 0 &&
        EVP_PKEY_derive(pc, z, &zlen) > 0 && zlen == sizeof(z)) {
        memcpy(shared, z, sizeof(z));
        st = KL_OK;
    }
    kl_cx_wipe(z, sizeof(z));
    EVP_PKEY_CTX_free(pc);
    EVP_PKEY_free(other);
    EVP_PKEY_free(mine);
    return st;
}
