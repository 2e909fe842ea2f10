/* PEM written into a memory BIO, handed out as a C string (certificates, requests, keys). */
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>

#include "pki_int.h"

kl_status kl_pki_bio_to_string(BIO *b, char **out, size_t *outlen)
{
    char *mem = NULL;
    long n = BIO_get_mem_data(b, &mem);
    if (n <= 0 || !mem) return kl_pki_fail(KL_E_INTERNAL, "PEM encoding produced nothing");
    char *s = malloc((size_t)n + 1);
    if (!s) return kl_pki_fail(KL_E_INTERNAL, "out of memory");
    memcpy(s, mem, (size_t)n);
    s[n] = 0;
    *out = s;
    *outlen = (size_t)n;
    return KL_OK;
}
