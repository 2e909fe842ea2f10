/* The registry's certificate id: hex SHA-256 of the DER. */
#include <openssl/evp.h>

#include "pki_int.h"

kl_status kl_pki_fingerprint_hex(X509 *cert, char out[KL_PKI_FPR_HEX_SIZE])
{
    if (!cert || !out) return kl_pki_fail(KL_E_ARG, "missing argument");
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    if (!X509_digest(cert, EVP_sha256(), md, &n) || n != 32)
        return kl_pki_fail_ssl(KL_E_INTERNAL, "cannot hash the certificate");
    static const char hex[] = "0123456789abcdef";
    for (unsigned i = 0; i < n; i++) {
        out[2 * i] = hex[md[i] >> 4];
        out[2 * i + 1] = hex[md[i] & 15];
    }
    out[KL_PKI_FPR_HEX_LEN] = 0;
    return KL_OK;
}
