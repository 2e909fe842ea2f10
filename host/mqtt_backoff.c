/* Reconnect delays: exponential backoff with "equal jitter" (keylink/mqtt.h). */
#include "keylink/mqtt.h"

kl_status kl_mq_backoff_init(struct kl_mq_backoff *b, uint32_t base_ms, uint32_t max_ms,
                             uint32_t seed)
{
    if (!b || base_ms == 0 || max_ms < base_ms) return KL_E_ARG;
    b->base_ms = base_ms;
    b->max_ms = max_ms;
    b->attempt = 0;
    b->rng = seed ? seed : 0x9E3779B9u; /* xorshift must not start at 0 */
    return KL_OK;
}

static uint32_t xorshift(uint32_t *s)
{
    uint32_t x = *s;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    *s = x;
    return x;
}

uint32_t kl_mq_backoff_next(struct kl_mq_backoff *b)
{
    uint64_t d = b->base_ms;
    for (uint32_t i = 0; i < b->attempt && d < b->max_ms; i++)
        d <<= 1;
    if (d > b->max_ms) d = b->max_ms;
    if (b->attempt < 32) b->attempt++;
    uint32_t half = (uint32_t)(d / 2);
    uint32_t span = (uint32_t)d - half;
    return half + (span ? xorshift(&b->rng) % (span + 1) : 0);
}

void kl_mq_backoff_reset(struct kl_mq_backoff *b)
{
    b->attempt = 0;
}
