/* Constant-time compare and wipe for the host crypto. */
#include "hcx.h"

int kl_hcx_ct_equal(const uint8_t *a, const uint8_t *b, size_t n)
{
    uint32_t d = 0;
    for (size_t i = 0; i < n; i++)
        d |= (uint32_t)(a[i] ^ b[i]);
    /* 1 when d == 0, without a branch on the data. */
    return (int)(1u & ((d - 1u) >> 8));
}

void kl_hcx_wipe(void *p, size_t n)
{
    volatile uint8_t *v = (volatile uint8_t *)p;
    if (!p) return;
    for (size_t i = 0; i < n; i++)
        v[i] = 0;
}
