/* Pieces every issued certificate shares: serial, validity, extensions. */
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include "pki_int.h"

int kl_pki_set_random_serial(X509 *cert)
{
    unsigned char b[20];
    if (RAND_bytes(b, sizeof b) != 1) return 0;
    b[0] &= 0x7F; /* positive in DER, at most 20 octets (RFC 5280 4.1.2.2) */
    b[0] |= 0x40; /* never zero, fixed length */
    BIGNUM *bn = BN_bin2bn(b, sizeof b, NULL);
    ASN1_INTEGER *ai = bn ? BN_to_ASN1_INTEGER(bn, NULL) : NULL;
    int ok = ai && X509_set_serialNumber(cert, ai);
    ASN1_INTEGER_free(ai);
    BN_free(bn);
    return ok;
}

kl_status kl_pki_add_ext(X509 *cert, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509V3_set_ctx(&ctx, issuer, cert, NULL, NULL, 0);
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    if (!ext) {
        if (nid == NID_authority_key_identifier)
            return kl_pki_fail_ssl(KL_E_BAD_KEY,
                                   "the CA certificate has no subject key identifier");
        return kl_pki_fail_ssl(KL_E_INTERNAL, "cannot build a certificate extension");
    }
    int ok = X509_add_ext(cert, ext, -1);
    X509_EXTENSION_free(ext);
    if (!ok) return kl_pki_fail_ssl(KL_E_INTERNAL, "cannot add a certificate extension");
    return KL_OK;
}

kl_status kl_pki_set_validity(X509 *cert, int days, X509 *limit)
{
    if (days < 1 || days > KL_PKI_DAYS_MAX)
        return kl_pki_fail(KL_E_ARG, "validity must be 1..%d days", KL_PKI_DAYS_MAX);
    if (!X509_gmtime_adj(X509_getm_notBefore(cert), 0) ||
        !X509_time_adj_ex(X509_getm_notAfter(cert), days, 0, NULL))
        return kl_pki_fail_ssl(KL_E_INTERNAL, "cannot set the validity");
    /* A certificate should not outlive its issuer. */
    if (limit && ASN1_TIME_compare(X509_get0_notAfter(cert), X509_get0_notAfter(limit)) > 0 &&
        !X509_set1_notAfter(cert, X509_get0_notAfter(limit)))
        return kl_pki_fail_ssl(KL_E_INTERNAL, "cannot set the validity");
    return KL_OK;
}
