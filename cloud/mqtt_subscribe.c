/* SUBSCRIBE / UNSUBSCRIBE parsing and SUBACK / UNSUBACK building. */
#include <string.h>

#include "dataplane.h"

static int parse_list(const uint8_t *b, size_t n, int v5, int ptype, struct kl_mqtt_subscribe *s)
{
    memset(s, 0, sizeof *s);
    const uint8_t *p = b, *end = b + n;
    if (n < 2) return KL_RC_MALFORMED;
    s->pid = (uint16_t)((p[0] << 8) | p[1]);
    p += 2;
    if (!s->pid) return KL_RC_MALFORMED;
    if (v5) {
        int rc = kl_mqtt_props_parse(&p, end, ptype, 0, &s->props);
        if (rc) return rc;
    }
    while (p < end) {
        if (s->n >= KL_DP_SUBS_PER_PACKET) return KL_RC_QUOTA_EXCEEDED;
        if (end - p < 2) return KL_RC_MALFORMED;
        size_t fl = ((size_t)p[0] << 8) | p[1];
        if ((size_t)(end - p - 2) < fl) return KL_RC_MALFORMED;
        struct kl_mqtt_sub_entry *e = &s->e[s->n++];
        e->filter.p = p + 2;
        e->filter.n = fl;
        p += 2 + fl;
        if (!kl_mqtt_utf8_ok(e->filter.p, fl)) return KL_RC_MALFORMED;
        if (ptype == KL_MQTT_SUBSCRIBE) {
            if (p >= end) return KL_RC_MALFORMED;
            e->opts = *p++;
            /* reserved bits; v3.1.1 allows only the QoS bits */
            if ((e->opts & 0xC0) || (!v5 && (e->opts & 0xFC)) || (e->opts & 3) == 3 ||
                ((e->opts >> 4) & 3) == 3)
                return KL_RC_MALFORMED;
        }
    }
    return s->n ? 0 : KL_RC_PROTOCOL; /* at least one filter */
}

int kl_mqtt_parse_subscribe(const uint8_t *b, size_t n, int v5, struct kl_mqtt_subscribe *s)
{
    return parse_list(b, n, v5, KL_MQTT_SUBSCRIBE, s);
}

int kl_mqtt_parse_unsubscribe(const uint8_t *b, size_t n, int v5, struct kl_mqtt_subscribe *s)
{
    return parse_list(b, n, v5, KL_MQTT_UNSUBSCRIBE, s);
}

void kl_mqtt_send_suback(struct kl_wbuf *w, int type, uint16_t pid, const uint8_t *rcs, size_t n,
                         int v5)
{
    /* a v3.1.1 UNSUBACK has no payload */
    size_t body = 2 + (v5 ? 1 : 0) + (type == KL_MQTT_UNSUBACK && !v5 ? 0 : n);
    kl_wb_u8(w, (uint8_t)(type << 4));
    kl_wb_varint(w, (uint32_t)body);
    kl_wb_u16(w, pid);
    if (v5) kl_wb_u8(w, 0);
    if (type == KL_MQTT_UNSUBACK && !v5) return;
    kl_wb_bytes(w, rcs, n);
}
