/* Allocation, reset and teardown of the chip's crypto contexts. */
#include <stdlib.h>

#include "crypto_sessions.h"

kl_status kl_crypto_sessions_new(struct kl_crypto_sessions **out)
{
    if (!out) return KL_E_INTERNAL;
    *out = calloc(1, sizeof(struct kl_crypto_sessions));
    return *out ? KL_OK : KL_E_INTERNAL;
}

void kl_cs_md_end(struct kl_cs_md *m)
{
    if (m->used) kl_cx_sha256_free(&m->h);
    m->used = 0;
}

void kl_cs_mac_end(struct kl_cs_mac *m)
{
    if (m->used) kl_cx_mac_free(&m->m);
    m->used = 0;
}

void kl_cs_cipher_end(struct kl_cs_cipher *c)
{
    if (c->used) kl_cx_cipher_free(&c->x);
    /* held plaintext must not outlive the context */
    kl_cx_wipe(c->buf, c->len);
    c->used = c->hold = c->draining = 0;
    c->len = c->off = 0;
}

void kl_crypto_sessions_reset(struct kl_crypto_sessions *s)
{
    if (!s) return;
    for (size_t i = 0; i < KL_CS_MD; i++)
        kl_cs_md_end(&s->md[i]);
    for (size_t i = 0; i < KL_CS_MAC; i++)
        kl_cs_mac_end(&s->mac[i]);
    for (size_t i = 0; i < KL_CS_CIPHER; i++)
        kl_cs_cipher_end(&s->cipher[i]);
}

void kl_crypto_sessions_free(struct kl_crypto_sessions *s)
{
    if (!s) return;
    kl_crypto_sessions_reset(s);
    free(s);
}
