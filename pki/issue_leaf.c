/* Certificates the CA signs: the device certificate and the CA registration's
 * verification certificate. Both are end-entity certificates with CN = one string. */
#include <openssl/x509v3.h>

#include "pki_int.h"

/* Issue an end-entity certificate for `pub` with subject CN = cn; `eku` may be NULL. */
static kl_status issue_leaf(X509 *ca, EVP_PKEY *ca_key, EVP_PKEY *pub, const char *cn, int days,
                            const char *eku, X509 **out)
{
    kl_status st = kl_pki_check_ca(ca, ca_key);
    if (st != KL_OK) return st;
    X509_NAME *name = NULL;
    if ((st = kl_pki_name_cn(cn, &name)) != KL_OK) return st;
    X509 *c = X509_new();
    if (!c) {
        X509_NAME_free(name);
        return kl_pki_fail(KL_E_INTERNAL, "out of memory");
    }
    if (!X509_set_version(c, X509_VERSION_3) || !kl_pki_set_random_serial(c) ||
        !X509_set_subject_name(c, name) || !X509_set_issuer_name(c, X509_get_subject_name(ca)) ||
        !X509_set_pubkey(c, pub)) {
        st = kl_pki_fail_ssl(KL_E_INTERNAL, "cannot fill in the certificate");
        goto done;
    }
    if ((st = kl_pki_set_validity(c, days, ca)) != KL_OK ||
        (st = kl_pki_add_ext(c, ca, NID_basic_constraints, "critical,CA:FALSE")) != KL_OK ||
        (st = kl_pki_add_ext(c, ca, NID_key_usage, "critical,digitalSignature")) != KL_OK ||
        (eku && (st = kl_pki_add_ext(c, ca, NID_ext_key_usage, eku)) != KL_OK) ||
        (st = kl_pki_add_ext(c, ca, NID_subject_key_identifier, "hash")) != KL_OK ||
        (st = kl_pki_add_ext(c, ca, NID_authority_key_identifier, "keyid:always")) != KL_OK)
        goto done;
    if (X509_sign(c, ca_key, EVP_sha256()) <= 0) {
        st = kl_pki_fail_ssl(KL_E_INTERNAL, "signing the certificate failed");
        goto done;
    }
    *out = c;
    c = NULL;
    st = KL_OK;
done:
    X509_free(c);
    X509_NAME_free(name);
    return st;
}

kl_status kl_pki_issue_device(X509 *ca, EVP_PKEY *ca_key, const uint8_t pub_xy[KL_PKI_RAW_PUB_LEN],
                              const char *cn, int days, X509 **out)
{
    if (!ca || !ca_key || !pub_xy || !cn || !out) return kl_pki_fail(KL_E_ARG, "missing argument");
    EVP_PKEY *pub = NULL;
    kl_status st = kl_pki_pubkey_from_raw(pub_xy, &pub);
    if (st != KL_OK) return st;
    st = issue_leaf(ca, ca_key, pub, cn, days, "clientAuth", out);
    EVP_PKEY_free(pub);
    return st;
}

kl_status kl_pki_issue_verification(X509 *ca, EVP_PKEY *ca_key, const char *code, int days,
                                    EVP_PKEY **key_out, X509 **out)
{
    if (!ca || !ca_key || !code || !key_out || !out)
        return kl_pki_fail(KL_E_ARG, "missing argument");
    EVP_PKEY *k = NULL;
    kl_status st = kl_pki_keygen_p256(&k);
    if (st != KL_OK) return st;
    st = issue_leaf(ca, ca_key, k, code, days, NULL, out);
    if (st != KL_OK) {
        EVP_PKEY_free(k);
        return st;
    }
    *key_out = k;
    return KL_OK;
}
