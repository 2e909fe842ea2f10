/*
 * host/tls_x509.c: kl_x509_check_host (subject CN, subjectAltName matching) on hostile
 * DER. Input: host name ‖ NUL ‖ DER. The CN handed back is always a terminated,
 * printable string within the caller's buffer, whatever the certificate holds.
 */
#include <string.h>

#include "fuzz.h"
#include "keylink/tls.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *z = memchr(data, 0, size < 300 ? size : 300);
    if (!z) return 0;
    char host[300];
    memcpy(host, data, (size_t)(z - data) + 1);
    const uint8_t *der = z + 1;
    size_t n = size - (size_t)(der - data);
    for (size_t cap = 1; cap <= 64; cap += 63) {
        char *cn = malloc(cap);
        FZ_CHECK(cn != NULL);
        int match = -1;
        kl_status st = kl_x509_check_host(der, n, host, &match, cn, cap);
        FZ_CHECK(st == KL_OK || st == KL_E_BAD_KEY || st == KL_E_BUFFER);
        FZ_CHECK(match == 0 || match == 1);
        FZ_CHECK(memchr(cn, 0, cap) != NULL);
        for (size_t i = 0; cn[i]; i++)
            FZ_CHECK(cn[i] >= 0x20 && cn[i] < 0x7F);
        /* a wildcard or name match needs a real host name: never the empty string */
        if (match) FZ_CHECK(host[0] != 0);
        free(cn);
    }
    return 0;
}
