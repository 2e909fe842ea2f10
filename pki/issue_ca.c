/* The self-signed CA certificate (the app note's JWT_CA, cert_CA.pem). */
#include <openssl/x509v3.h>

#include "pki_int.h"

kl_status kl_pki_issue_ca(EVP_PKEY *key, const char *subject, int days, X509 **out)
{
    if (!key || !out) return kl_pki_fail(KL_E_ARG, "missing argument");
    if (!kl_pki_is_p256(key)) return kl_pki_fail(KL_E_UNSUPPORTED, "CA key is not EC P-256");
    X509_NAME *name = NULL;
    kl_status st = kl_pki_name_parse(subject ? subject : KL_PKI_CA_SUBJECT_DEFAULT, &name);
    if (st != KL_OK) return st;
    X509 *c = X509_new();
    if (!c) {
        X509_NAME_free(name);
        return kl_pki_fail(KL_E_INTERNAL, "out of memory");
    }
    if (!X509_set_version(c, X509_VERSION_3) || !kl_pki_set_random_serial(c) ||
        !X509_set_subject_name(c, name) || !X509_set_issuer_name(c, name) ||
        !X509_set_pubkey(c, key)) {
        st = kl_pki_fail_ssl(KL_E_INTERNAL, "cannot fill in the CA certificate");
        goto done;
    }
    if ((st = kl_pki_set_validity(c, days, NULL)) != KL_OK ||
        (st = kl_pki_add_ext(c, c, NID_basic_constraints, "critical,CA:TRUE")) != KL_OK ||
        (st = kl_pki_add_ext(c, c, NID_key_usage, "critical,keyCertSign,cRLSign")) != KL_OK ||
        (st = kl_pki_add_ext(c, c, NID_subject_key_identifier, "hash")) != KL_OK ||
        (st = kl_pki_add_ext(c, c, NID_authority_key_identifier, "keyid:always")) != KL_OK)
        goto done;
    if (X509_sign(c, key, EVP_sha256()) <= 0) {
        st = kl_pki_fail_ssl(KL_E_INTERNAL, "signing the CA certificate failed");
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
