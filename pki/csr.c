/* PKCS#10 requests whose signature is made elsewhere (inside the chip). */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/pem.h>
#include <openssl/sha.h>

#include "pki_int.h"

/* Turn raw r||s into a DER ECDSA-Sig-Value (malloc'd). */
static kl_status rs_to_der(const uint8_t rs[KL_PKI_RAW_SIG_LEN], unsigned char **der, int *len)
{
    ECDSA_SIG *s = ECDSA_SIG_new();
    BIGNUM *r = BN_bin2bn(rs, 32, NULL), *sv = BN_bin2bn(rs + 32, 32, NULL);
    if (!s || !r || !sv || !ECDSA_SIG_set0(s, r, sv)) {
        ECDSA_SIG_free(s);
        BN_free(r);
        BN_free(sv);
        return kl_pki_fail(KL_E_INTERNAL, "out of memory");
    }
    *der = NULL;
    *len = i2d_ECDSA_SIG(s, der);
    ECDSA_SIG_free(s);
    if (*len <= 0) return kl_pki_fail_ssl(KL_E_INTERNAL, "cannot encode the signature");
    return KL_OK;
}

kl_status kl_pki_csr_build(const uint8_t pub_xy[KL_PKI_RAW_PUB_LEN], const char *cn,
                           kl_pki_signer_fn sign, void *ctx, X509_REQ **out)
{
    if (!pub_xy || !cn || !sign || !out) return kl_pki_fail(KL_E_ARG, "missing argument");
    EVP_PKEY *pub = NULL;
    X509_NAME *name = NULL;
    X509_REQ *req = NULL;
    X509_ALGOR *alg = NULL;
    ASN1_BIT_STRING *bits = NULL;
    unsigned char *tbs = NULL, *sigder = NULL;
    int tbslen = 0, siglen = 0;
    uint8_t digest[32], rs[KL_PKI_RAW_SIG_LEN];
    kl_status st;

    if ((st = kl_pki_pubkey_from_raw(pub_xy, &pub)) != KL_OK) goto done;
    if ((st = kl_pki_name_cn(cn, &name)) != KL_OK) goto done;
    req = X509_REQ_new();
    if (!req || !X509_REQ_set_version(req, X509_REQ_VERSION_1) ||
        !X509_REQ_set_subject_name(req, name) || !X509_REQ_set_pubkey(req, pub)) {
        st = kl_pki_fail_ssl(KL_E_INTERNAL, "cannot fill in the request");
        goto done;
    }
    /* The signed part is the DER of CertificationRequestInfo, re-encoded from the fields. */
    tbslen = i2d_re_X509_REQ_tbs(req, &tbs);
    if (tbslen <= 0) {
        st = kl_pki_fail_ssl(KL_E_INTERNAL, "cannot encode the request");
        goto done;
    }
    SHA256(tbs, (size_t)tbslen, digest);
    if ((st = sign(ctx, digest, rs)) != KL_OK) {
        kl_pki_fail(st, "the signer failed to sign the request");
        goto done;
    }
    if ((st = rs_to_der(rs, &sigder, &siglen)) != KL_OK) goto done;
    alg = X509_ALGOR_new();
    bits = ASN1_BIT_STRING_new();
    if (!alg || !bits ||
        !X509_ALGOR_set0(alg, OBJ_nid2obj(NID_ecdsa_with_SHA256), V_ASN1_UNDEF, NULL) ||
        !ASN1_BIT_STRING_set(bits, sigder, siglen)) {
        st = kl_pki_fail_ssl(KL_E_INTERNAL, "cannot set the request signature");
        goto done;
    }
    /* A signature BIT STRING has no unused bits; say so rather than let OpenSSL guess. */
    bits->flags &= ~(long)0x07;
    bits->flags |= ASN1_STRING_FLAG_BITS_LEFT;
    if (!X509_REQ_set1_signature_algo(req, alg)) {
        st = kl_pki_fail_ssl(KL_E_INTERNAL, "cannot set the request signature");
        goto done;
    }
    X509_REQ_set0_signature(req, bits);
    bits = NULL;
    if (X509_REQ_verify(req, pub) != 1) {
        st = kl_pki_fail_ssl(KL_E_VERIFY_FAILED,
                             "the request's signature does not verify with its public key");
        goto done;
    }
    *out = req;
    req = NULL;
    st = KL_OK;
done:
    OPENSSL_free(tbs);
    OPENSSL_free(sigder);
    ASN1_BIT_STRING_free(bits);
    X509_ALGOR_free(alg);
    X509_REQ_free(req);
    X509_NAME_free(name);
    EVP_PKEY_free(pub);
    return st;
}

kl_status kl_pki_csr_to_pem(X509_REQ *req, char **pem, size_t *pemlen)
{
    if (!req || !pem || !pemlen) return kl_pki_fail(KL_E_ARG, "missing argument");
    BIO *b = BIO_new(BIO_s_mem());
    kl_status st;
    if (!b || !PEM_write_bio_X509_REQ(b, req))
        st = kl_pki_fail_ssl(KL_E_INTERNAL, "cannot PEM-encode the request");
    else
        st = kl_pki_bio_to_string(b, pem, pemlen);
    BIO_free(b);
    return st;
}
