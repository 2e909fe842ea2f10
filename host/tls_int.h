/* Shared by the TLS client files (tls_client.c, tls_record.c). Private to host/. */
#ifndef KL_HOST_TLS_INT_H
#define KL_HOST_TLS_INT_H

#include "keylink/tls.h"
#include "tls_codec.h"

uint64_t kl_tls_now_ms(struct kl_tls *t);
/* Records the reason, sends a fatal alert (alert >= 0) when the link still works, ends
 * the chip session and marks t failed. Returns st. */
kl_status kl_tls_fail(struct kl_tls *t, kl_status st, int alert, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Sends n bytes of one content type, in records of at most t->max_frag plaintext,
 * sealed by the chip once our ChangeCipherSpec went out. */
kl_status kl_tls_send(struct kl_tls *t, uint8_t type, const uint8_t *d, size_t n);
kl_status kl_tls_send_alert(struct kl_tls *t, uint8_t level, uint8_t desc);
/* Reads the next whole record (opened by the chip when reading is encrypted). frag
 * points into t->rx and stays valid until the next call. On error t has failed. */
kl_status kl_tls_read_record(struct kl_tls *t, uint64_t deadline, uint8_t *type, uint8_t **frag,
                             size_t *len);
/* Handles an alert record: close_notify gives KL_E_CLOSED, a warning after the
 * handshake KL_OK, anything else KL_E_REFUSED. */
kl_status kl_tls_on_alert(struct kl_tls *t, const uint8_t *f, size_t n);

#endif
