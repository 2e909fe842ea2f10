/*
 * Differential: the device library's host name check (host/tls_x509.c,
 * kl_x509_check_host) against OpenSSL's X509_check_host / X509_check_ip_asc with the same
 * policy (subjectAltName only, no partial wildcards). Input: host name ‖ NUL ‖ DER. For
 * every certificate OpenSSL parses, a name the library accepts must be one OpenSSL
 * accepts too (the library may be stricter, never looser).
 */
#include <string.h>

#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "fuzz.h"
#include "keylink/tls.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    return 0;
}

static int is_ipv4(const char *s)
{
    int dots = 0, digits = 0;
    for (; *s; s++) {
        if (*s == '.') {
            if (!digits) return 0;
            dots++;
            digits = 0;
        } else if (*s >= '0' && *s <= '9') {
            digits++;
        } else {
            return 0;
        }
    }
    return dots == 3 && digits;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *z = memchr(data, 0, size < 256 ? size : 256);
    if (!z || z == data) return 0;
    const char *host = (const char *)data;
    const uint8_t *der = z + 1;
    size_t n = size - (size_t)(der - data);
    const unsigned char *p = der;
    X509 *x = d2i_X509(NULL, &p, (long)n);
    if (!x) return 0;
    int whole = p == der + n;
    int match = 0;
    char cn[64];
    kl_status st = kl_x509_check_host(der, n, host, &match, cn, sizeof cn);
    if (whole && (st == KL_OK || st == KL_E_BUFFER) && match) {
        unsigned flags = X509_CHECK_FLAG_NEVER_CHECK_SUBJECT | X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS;
        int ossl = is_ipv4(host) ? X509_check_ip_asc(x, host, flags)
                                 : X509_check_host(x, host, strlen(host), flags, NULL);
        if (ossl != 1) fprintf(stderr, "library accepts '%s', OpenSSL does not\n", host);
        FZ_CHECK(ossl == 1);
    }
    X509_free(x);
    return 0;
}
