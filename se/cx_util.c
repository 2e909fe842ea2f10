/* Constant-time compare and secure wipe for the chip model. */
#include <openssl/crypto.h>

#include "cx.h"

int kl_cx_ct_equal(const uint8_t *a, const uint8_t *b, size_t n)
{
    if (n == 0) return 1;
    if (!a || !b) return 0;
    return CRYPTO_memcmp(a, b, n) == 0;
}

void kl_cx_wipe(void *p, size_t n)
{
    if (p && n) OPENSSL_cleanse(p, n);
}
