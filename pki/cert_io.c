/* Certificates in and out of PEM and DER. */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>

#include "pki_int.h"

kl_status kl_pki_cert_from_pem(const char *pem, size_t len, X509 **out)
{
    if (!pem || !out || !len) return kl_pki_fail(KL_E_ARG, "no certificate given");
    if (len > INT_MAX) return kl_pki_fail(KL_E_BAD_KEY, "certificate text too large");
    BIO *b = BIO_new_mem_buf(pem, (int)len);
    if (!b) return kl_pki_fail_ssl(KL_E_INTERNAL, "out of memory");
    X509 *c = PEM_read_bio_X509(b, NULL, NULL, NULL);
    BIO_free(b);
    if (!c) return kl_pki_fail_ssl(KL_E_BAD_KEY, "no PEM certificate found");
    ERR_clear_error();
    *out = c;
    return KL_OK;
}

kl_status kl_pki_cert_read(const char *path, X509 **out)
{
    if (!path || !out) return kl_pki_fail(KL_E_ARG, "no certificate file given");
    BIO *b = BIO_new_file(path, "r");
    if (!b) {
        ERR_clear_error();
        return kl_pki_fail(KL_E_IO, "cannot read the certificate file %s", path);
    }
    X509 *c = PEM_read_bio_X509(b, NULL, NULL, NULL);
    BIO_free(b);
    ERR_clear_error();
    if (!c) return kl_pki_fail(KL_E_BAD_KEY, "%s holds no PEM certificate", path);
    *out = c;
    return KL_OK;
}

kl_status kl_pki_cert_from_der(const uint8_t *der, size_t len, X509 **out)
{
    if (!der || !out || !len) return kl_pki_fail(KL_E_ARG, "no certificate given");
    if (len > INT_MAX) return kl_pki_fail(KL_E_BAD_KEY, "certificate too large");
    const unsigned char *p = der;
    X509 *c = d2i_X509(NULL, &p, (long)len);
    if (!c) return kl_pki_fail_ssl(KL_E_BAD_KEY, "not a DER certificate");
    if (p != der + len) {
        X509_free(c);
        return kl_pki_fail(KL_E_BAD_KEY, "trailing bytes after the DER certificate");
    }
    *out = c;
    return KL_OK;
}

kl_status kl_pki_cert_to_pem(X509 *cert, char **pem, size_t *pemlen)
{
    if (!cert || !pem || !pemlen) return kl_pki_fail(KL_E_ARG, "missing argument");
    BIO *b = BIO_new(BIO_s_mem());
    kl_status st;
    if (!b || !PEM_write_bio_X509(b, cert))
        st = kl_pki_fail_ssl(KL_E_INTERNAL, "cannot PEM-encode the certificate");
    else
        st = kl_pki_bio_to_string(b, pem, pemlen);
    BIO_free(b);
    return st;
}

kl_status kl_pki_cert_to_der(X509 *cert, uint8_t **der, size_t *derlen)
{
    if (!cert || !der || !derlen) return kl_pki_fail(KL_E_ARG, "missing argument");
    int n = i2d_X509(cert, NULL);
    if (n <= 0) return kl_pki_fail_ssl(KL_E_INTERNAL, "cannot DER-encode the certificate");
    uint8_t *buf = malloc((size_t)n);
    if (!buf) return kl_pki_fail(KL_E_INTERNAL, "out of memory");
    unsigned char *p = buf;
    if (i2d_X509(cert, &p) != n) {
        free(buf);
        return kl_pki_fail_ssl(KL_E_INTERNAL, "cannot DER-encode the certificate");
    }
    *der = buf;
    *derlen = (size_t)n;
    return KL_OK;
}

kl_status kl_pki_cert_write(const char *path, X509 *cert, int force)
{
    char *pem = NULL;
    size_t len = 0;
    kl_status st = kl_pki_cert_to_pem(cert, &pem, &len);
    if (st != KL_OK) return st;
    st = kl_pki_file_write(path, pem, len, 0644, force);
    free(pem);
    return st;
}
