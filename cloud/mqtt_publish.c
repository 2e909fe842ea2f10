/* PUBLISH: parse a client's, build the server's (per receiver version). */
#include <string.h>

#include "dataplane.h"

int kl_mqtt_parse_publish(uint8_t flags, const uint8_t *b, size_t n, int v5,
                          struct kl_mqtt_publish *pub)
{
    memset(pub, 0, sizeof *pub);
    pub->dup = (flags >> 3) & 1;
    pub->qos = (flags >> 1) & 3;
    pub->retain = flags & 1;
    if (pub->qos == 3) return KL_RC_MALFORMED;
    if (pub->qos == 0 && pub->dup) return KL_RC_MALFORMED;
    const uint8_t *p = b, *end = b + n;
    if (end - p < 2) return KL_RC_MALFORMED;
    size_t tl = ((size_t)p[0] << 8) | p[1];
    if ((size_t)(end - p - 2) < tl) return KL_RC_MALFORMED;
    pub->topic.p = p + 2;
    pub->topic.n = tl;
    p += 2 + tl;
    if (!kl_mqtt_utf8_ok(pub->topic.p, tl)) return KL_RC_MALFORMED;
    if (pub->qos) {
        if (end - p < 2) return KL_RC_MALFORMED;
        pub->pid = (uint16_t)((p[0] << 8) | p[1]);
        p += 2;
        if (!pub->pid) return KL_RC_MALFORMED;
    }
    if (v5) {
        int rc = kl_mqtt_props_parse(&p, end, KL_MQTT_PUBLISH, 0, &pub->props);
        if (rc) return rc;
        /* we announce Topic Alias Maximum 0: any alias is a protocol error */
        if (pub->props.has & KL_PROP(KL_P_TOPIC_ALIAS)) return KL_RC_TOPIC_ALIAS_INVALID;
        if (pub->props.payload_format == 1 && !kl_mqtt_utf8_ok(p, (size_t)(end - p)))
            return KL_RC_PAYLOAD_FORMAT_INVALID;
    }
    pub->payload.p = p;
    pub->payload.n = (size_t)(end - p);
    return 0;
}

/* Appends one PUBLISH of m for a receiver of version v (4/5) to w. */
void kl_mqtt_send_publish(struct kl_wbuf *w, const struct kl_msg *m, uint8_t qos, uint8_t retain,
                          uint8_t dup, uint16_t pid, uint32_t sub_id, int v5, int64_t now_ms)
{
    size_t pl = 0, props = 0;
    uint32_t expiry = 0;
    if (v5) {
        props = m->props_len;
        if (m->expires_ms) {
            int64_t left = (m->expires_ms - now_ms + 999) / 1000;
            expiry = left > 0 ? (uint32_t)left : 1;
            props += 5;
        }
        if (sub_id) props += 1 + kl_varint_len(sub_id);
        pl = kl_varint_len((uint32_t)props) + props;
    }
    size_t rl = 2 + m->topic_len + (qos ? 2 : 0) + pl + m->payload_len;
    if (kl_wb_reserve(w, 5 + rl)) return;
    kl_wb_u8(w, (uint8_t)(0x30 | (dup ? 8 : 0) | (qos << 1) | (retain ? 1 : 0)));
    kl_wb_varint(w, (uint32_t)rl);
    kl_wb_str(w, KL_MSG_TOPIC(m), m->topic_len);
    if (qos) kl_wb_u16(w, pid);
    if (v5) {
        kl_wb_varint(w, (uint32_t)props);
        if (m->expires_ms) {
            kl_wb_u8(w, KL_P_MSG_EXPIRY);
            kl_wb_u32(w, expiry);
        }
        if (sub_id) {
            kl_wb_u8(w, KL_P_SUB_ID);
            kl_wb_varint(w, sub_id);
        }
        kl_wb_bytes(w, KL_MSG_PROPS(m), m->props_len);
    }
    kl_wb_bytes(w, KL_MSG_PAYLOAD(m), m->payload_len);
}
