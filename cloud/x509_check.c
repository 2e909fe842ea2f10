/* Certificate parsing and checks for the registry: pki/kl_pki.h, plus strict PEM parsing. */
#include <stdlib.h>
#include <string.h>

#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "kl_pki.h"
#include "x509_check.h"

X509 *kl_x509_from_pem(const char *pem)
{
    if (!pem) return NULL;
    const char *begin = "-----BEGIN CERTIFICATE-----";
    const char *first = strstr(pem, begin);
    /* exactly one block: nothing but whitespace around it */
    if (!first || strstr(first + 1, begin)) return NULL;
    for (const char *p = pem; p < first; p++)
        if (!strchr(" \t\r\n", *p)) return NULL;
    BIO *b = BIO_new_mem_buf(pem, -1);
    if (!b) return NULL;
    X509 *x = PEM_read_bio_X509(b, NULL, NULL, NULL);
    if (x) {
        char rest[64];
        int n;
        while ((n = BIO_read(b, rest, sizeof rest)) > 0)
            for (int i = 0; i < n; i++)
                if (!strchr(" \t\r\n", rest[i])) {
                    X509_free(x);
                    x = NULL;
                    n = 0;
                    break;
                }
    }
    BIO_free(b);
    return x;
}

X509 *kl_x509_from_der(const uint8_t *der, size_t len)
{
    if (!der || len == 0 || len > 65536) return NULL;
    const unsigned char *p = der;
    X509 *x = d2i_X509(NULL, &p, (long)len);
    if (x && p != der + len) {
        X509_free(x);
        return NULL;
    }
    return x;
}

int kl_x509_id(X509 *x, char hex[65])
{
    return kl_pki_fingerprint_hex(x, hex) == KL_OK ? 0 : -1;
}

char *kl_x509_to_pem(X509 *x)
{
    BIO *b = BIO_new(BIO_s_mem());
    char *out = NULL;
    if (b && PEM_write_bio_X509(b, x)) {
        char *data;
        long n = BIO_get_mem_data(b, &data);
        out = malloc((size_t)n + 1);
        if (out) {
            memcpy(out, data, (size_t)n);
            out[n] = 0;
        }
    }
    BIO_free(b);
    return out;
}

int kl_x509_is_ca(X509 *x)
{
    return kl_pki_cert_is_ca(x) == KL_OK;
}

int kl_x509_signed_by(X509 *child, X509 *issuer)
{
    return kl_pki_cert_signed_by(child, issuer) == KL_OK;
}

int kl_x509_cn(X509 *x, char *buf, size_t n)
{
    return kl_pki_cert_cn(x, buf, n) == KL_OK ? 0 : -1;
}

static int asn1_to_unix(const ASN1_TIME *t, int64_t *out)
{
    struct tm tm;
    if (!t || ASN1_TIME_to_tm(t, &tm) != 1) return -1;
    *out = (int64_t)timegm(&tm);
    return 0;
}

int kl_x509_validity(X509 *x, int64_t *not_before, int64_t *not_after)
{
    if (asn1_to_unix(X509_get0_notBefore(x), not_before)) return -1;
    return asn1_to_unix(X509_get0_notAfter(x), not_after);
}

int kl_x509_subject_der(X509 *x, unsigned char **out)
{
    *out = NULL;
    return i2d_X509_NAME(X509_get_subject_name(x), out);
}

int kl_x509_issuer_der(X509 *x, unsigned char **out)
{
    *out = NULL;
    return i2d_X509_NAME(X509_get_issuer_name(x), out);
}
