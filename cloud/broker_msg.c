/* Published messages: one allocation holding topic, forwarded properties and payload,
 * shared by reference between queues. */
#include <stdlib.h>
#include <string.h>

#include "dataplane.h"

struct kl_msg *kl_msg_new(const uint8_t *topic, size_t tlen, const uint8_t *props, size_t plen,
                          const uint8_t *payload, size_t len, uint8_t qos, uint8_t retain)
{
    if (tlen > 0xffff || plen > UINT32_MAX || len > UINT32_MAX) return NULL;
    struct kl_msg *m = malloc(sizeof *m + tlen + 1 + plen + len);
    if (!m) return NULL;
    atomic_init(&m->refs, 1);
    m->qos = qos;
    m->retain = retain;
    m->topic_len = (uint16_t)tlen;
    m->props_len = (uint32_t)plen;
    m->payload_len = (uint32_t)len;
    m->expires_ms = 0;
    memcpy(m->data, topic, tlen);
    m->data[tlen] = 0;
    if (plen) memcpy(m->data + tlen + 1, props, plen);
    if (len) memcpy(m->data + tlen + 1 + plen, payload, len);
    return m;
}

void kl_msg_ref(struct kl_msg *m)
{
    atomic_fetch_add_explicit(&m->refs, 1, memory_order_relaxed);
}

void kl_msg_unref(struct kl_msg *m)
{
    if (m && atomic_fetch_sub_explicit(&m->refs, 1, memory_order_acq_rel) == 1) free(m);
}
