/* Private to host/mqtt_*.c: the bounded writer the serializers share. */
#ifndef KL_HOST_MQTT_INT_H
#define KL_HOST_MQTT_INT_H

#include <stddef.h>
#include <stdint.h>

#include "keylink/mqtt.h"

/* Writes into buf[0..cap); once something does not fit, `over` is set and nothing more is
 * written (one check at the end instead of one per field). */
struct kl_mq_w {
    uint8_t *buf;
    size_t cap, pos;
    int over;
};

void kl_mq_w_bytes(struct kl_mq_w *w, const void *p, size_t n);
void kl_mq_w_u8(struct kl_mq_w *w, uint8_t v);
void kl_mq_w_u16(struct kl_mq_w *w, uint16_t v);
void kl_mq_w_u32(struct kl_mq_w *w, uint32_t v);
void kl_mq_w_varint(struct kl_mq_w *w, uint32_t v);
/* A 2-byte length and the bytes (the caller checked n <= 65535). */
void kl_mq_w_bin(struct kl_mq_w *w, const uint8_t *p, size_t n);
/* Writes the property block (length + properties) for packet type ptype. KL_E_ARG for a
 * property not allowed there or out of range, or a string over 65535 bytes. */
kl_status kl_mq_w_props(struct kl_mq_w *w, const struct kl_mq_props *pr, uint8_t ptype);

/* 1 if property id is allowed in packet type ptype (KL_MQ_WILL for will properties). */
int kl_mq_prop_allowed(uint8_t id, uint8_t ptype);

#endif
