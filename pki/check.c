/* Checks on a CA before it signs anything, and on who signed a certificate. */
#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "pki_int.h"

kl_status kl_pki_key_matches_cert(X509 *cert, EVP_PKEY *key)
{
    if (!cert || !key) return kl_pki_fail(KL_E_ARG, "missing argument");
    EVP_PKEY *pub = X509_get0_pubkey(cert);
    int ok = pub && EVP_PKEY_eq(pub, key) == 1;
    ERR_clear_error();
    if (!ok) return kl_pki_fail(KL_E_VERIFY_FAILED, "the key does not belong to the certificate");
    return KL_OK;
}

kl_status kl_pki_cert_is_ca(X509 *cert)
{
    if (!cert) return kl_pki_fail(KL_E_ARG, "missing argument");
    /* X509_get_extension_flags caches the parsed extensions; EXFLAG_INVALID marks junk. */
    uint32_t fl = X509_get_extension_flags(cert);
    if (fl & EXFLAG_INVALID)
        return kl_pki_fail(KL_E_VERIFY_FAILED, "the certificate's extensions are malformed");
    if (!(fl & EXFLAG_CA))
        return kl_pki_fail(KL_E_VERIFY_FAILED,
                           "the certificate is not a CA (no basicConstraints CA:TRUE)");
    if ((fl & EXFLAG_KUSAGE) && !(X509_get_key_usage(cert) & KU_KEY_CERT_SIGN))
        return kl_pki_fail(KL_E_VERIFY_FAILED,
                           "the CA certificate's keyUsage does not allow keyCertSign");
    return KL_OK;
}

kl_status kl_pki_cert_check_time(X509 *cert, time_t at)
{
    if (!cert) return kl_pki_fail(KL_E_ARG, "missing argument");
    time_t now = at ? at : time(NULL);
    int a = X509_cmp_time(X509_get0_notBefore(cert), &now);
    int b = X509_cmp_time(X509_get0_notAfter(cert), &now);
    if (a == 0 || b == 0) return kl_pki_fail(KL_E_EXPIRED, "the certificate's dates are malformed");
    if (a > 0) return kl_pki_fail(KL_E_EXPIRED, "the certificate is not yet valid");
    if (b < 0) return kl_pki_fail(KL_E_EXPIRED, "the certificate has expired");
    return KL_OK;
}

kl_status kl_pki_check_ca(X509 *cert, EVP_PKEY *key)
{
    kl_status st = kl_pki_cert_is_ca(cert);
    if (st != KL_OK) return st;
    time_t now = time(NULL);
    if (X509_cmp_time(X509_get0_notAfter(cert), &now) < 0)
        return kl_pki_fail(KL_E_EXPIRED, "the CA certificate has expired");
    if ((st = kl_pki_cert_check_time(cert, now)) != KL_OK)
        return kl_pki_fail(st, "the CA certificate is not valid now (notBefore in the future?)");
    if (key && (st = kl_pki_key_matches_cert(cert, key)) != KL_OK)
        return kl_pki_fail(st, "the CA key does not match the CA certificate");
    return KL_OK;
}

kl_status kl_pki_cert_signed_by(X509 *cert, X509 *issuer)
{
    if (!cert || !issuer) return kl_pki_fail(KL_E_ARG, "missing argument");
    if (X509_NAME_cmp(X509_get_issuer_name(cert), X509_get_subject_name(issuer)) != 0)
        return kl_pki_fail(KL_E_VERIFY_FAILED, "the certificate's issuer is not the CA's subject");
    EVP_PKEY *pub = X509_get0_pubkey(issuer);
    int ok = pub && X509_verify(cert, pub) == 1;
    ERR_clear_error();
    if (!ok)
        return kl_pki_fail(KL_E_VERIFY_FAILED, "the certificate is not signed by the CA's key");
    return KL_OK;
}
