/* MQTT over the chip TLS connection: the client's transport on kl_tls_write/kl_tls_read. */
#include "keylink/mqtt.h"
#include "keylink/tls.h"

static kl_status tls_send(void *ctx, const uint8_t *buf, size_t n)
{
    return kl_tls_write((struct kl_tls *)ctx, buf, n);
}

static kl_status tls_recv(void *ctx, uint8_t *buf, size_t cap, size_t *got, uint32_t timeout_ms)
{
    return kl_tls_read((struct kl_tls *)ctx, buf, cap, got, timeout_ms);
}

void kl_mq_transport_tls(struct kl_tls *t, struct kl_mq_transport *tr)
{
    tr->ctx = t;
    tr->send = tls_send;
    tr->recv = tls_recv;
}
