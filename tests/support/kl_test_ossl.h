/* For the C tests that check against OpenSSL: small conversions they all need. */
#ifndef KL_TESTS_SUPPORT_KL_TEST_OSSL_H
#define KL_TESTS_SUPPORT_KL_TEST_OSSL_H

#include <stdint.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

/* DER of x into out; its length, or 0 when x is NULL, does not encode or is over cap. */
static inline size_t kl_test_x509_der(X509 *x, uint8_t *out, size_t cap)
{
    unsigned char *p = NULL;
    int n = x ? i2d_X509(x, &p) : -1;
    size_t r = 0;
    if (n > 0 && (size_t)n <= cap) {
        memcpy(out, p, (size_t)n);
        r = (size_t)n;
    }
    OPENSSL_free(p);
    return r;
}

/* The raw X||Y of a P-256 key. 1 on success. */
static inline int kl_test_p256_pub(EVP_PKEY *k, uint8_t pub[64])
{
    uint8_t pt[65];
    size_t n = 0;
    if (!EVP_PKEY_get_octet_string_param(k, OSSL_PKEY_PARAM_PUB_KEY, pt, sizeof pt, &n) || n != 65)
        return 0;
    memcpy(pub, pt + 1, 64);
    return 1;
}

#endif
