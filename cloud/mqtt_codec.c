/* MQTT wire basics shared by every packet: output buffer, variable integers, the fixed
 * header, UTF-8 rules and the MQTT 5 property block. */
#include <stdlib.h>
#include <string.h>

#include "dataplane.h"

int kl_wb_reserve(struct kl_wbuf *w, size_t extra)
{
    if (w->oom) return -1;
    if (w->len + extra <= w->cap) return 0;
    size_t cap = w->cap ? w->cap : 256;
    while (cap < w->len + extra)
        cap *= 2;
    uint8_t *p = realloc(w->p, cap);
    if (!p) {
        w->oom = 1;
        return -1;
    }
    w->p = p;
    w->cap = cap;
    return 0;
}

void kl_wb_bytes(struct kl_wbuf *w, const void *p, size_t n)
{
    if (!n || kl_wb_reserve(w, n)) return;
    memcpy(w->p + w->len, p, n);
    w->len += n;
}

void kl_wb_u8(struct kl_wbuf *w, uint8_t v)
{
    kl_wb_bytes(w, &v, 1);
}

void kl_wb_u16(struct kl_wbuf *w, uint16_t v)
{
    uint8_t b[2] = {(uint8_t)(v >> 8), (uint8_t)v};
    kl_wb_bytes(w, b, 2);
}

void kl_wb_u32(struct kl_wbuf *w, uint32_t v)
{
    uint8_t b[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
    kl_wb_bytes(w, b, 4);
}

void kl_wb_varint(struct kl_wbuf *w, uint32_t v)
{
    uint8_t b[4];
    size_t n = 0;
    do {
        uint8_t d = v & 0x7f;
        v >>= 7;
        b[n++] = (uint8_t)(d | (v ? 0x80 : 0));
    } while (v && n < 4);
    kl_wb_bytes(w, b, n);
}

void kl_wb_str(struct kl_wbuf *w, const void *p, size_t n)
{
    kl_wb_u16(w, (uint16_t)n);
    kl_wb_bytes(w, p, n);
}

size_t kl_varint_len(uint32_t v)
{
    return v < 128 ? 1 : v < 16384 ? 2 : v < 2097152 ? 3 : 4;
}

int kl_mqtt_frame(const uint8_t *buf, size_t len, uint8_t *tf, size_t *body_off, size_t *body_len)
{
    *body_len = 0;
    if (len < 2) return 0;
    uint32_t v = 0;
    size_t i = 1;
    for (int shift = 0;; shift += 7) {
        if (i >= len) return 0;
        if (i > 4) return -1; /* more than four length bytes */
        uint8_t d = buf[i++];
        v |= (uint32_t)(d & 0x7f) << shift;
        if (!(d & 0x80)) break;
    }
    *tf = buf[0];
    *body_off = i;
    *body_len = v; /* set even when the body is still incomplete (size checks) */
    return len - i >= v ? 1 : 0;
}

int kl_mqtt_utf8_ok(const uint8_t *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        uint8_t c = s[i];
        uint32_t cp;
        size_t k;
        if (c < 0x80) {
            if (c == 0) return 0;
            i++;
            continue;
        } else if ((c & 0xe0) == 0xc0) {
            cp = c & 0x1f;
            k = 1;
        } else if ((c & 0xf0) == 0xe0) {
            cp = c & 0x0f;
            k = 2;
        } else if ((c & 0xf8) == 0xf0) {
            cp = c & 0x07;
            k = 3;
        } else {
            return 0;
        }
        for (size_t j = 1; j <= k; j++) {
            if (i + j >= n || (s[i + j] & 0xc0) != 0x80) return 0;
            cp = (cp << 6) | (s[i + j] & 0x3f);
        }
        /* overlong forms, surrogates and values above U+10FFFF are not UTF-8 */
        if ((k == 1 && cp < 0x80) || (k == 2 && cp < 0x800) || (k == 3 && cp < 0x10000) ||
            (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
            return 0;
        i += k + 1;
    }
    return 1;
}

/* Property data types. */
enum { PT_NONE, PT_BYTE, PT_U16, PT_U32, PT_VARINT, PT_STR, PT_BIN, PT_PAIR };

static int prop_type(uint32_t id)
{
    switch (id) {
    case 0x01:
    case 0x17:
    case 0x19:
    case 0x24:
    case 0x25:
    case 0x28:
    case 0x29:
    case 0x2A:
        return PT_BYTE;
    case 0x13:
    case 0x21:
    case 0x22:
    case 0x23:
        return PT_U16;
    case 0x02:
    case 0x11:
    case 0x18:
    case 0x27:
        return PT_U32;
    case 0x0B:
        return PT_VARINT;
    case 0x03:
    case 0x08:
    case 0x12:
    case 0x15:
    case 0x1A:
    case 0x1C:
    case 0x1F:
        return PT_STR;
    case 0x09:
    case 0x16:
        return PT_BIN;
    case 0x26:
        return PT_PAIR;
    default:
        return PT_NONE;
    }
}

/* May property id appear in a packet of ptype sent by a client (will = will properties)? */
static int prop_allowed(uint32_t id, int ptype, int will)
{
    if (id == 0x26) return 1;
    if (will)
        return id == 0x01 || id == 0x02 || id == 0x03 || id == 0x08 || id == 0x09 || id == 0x18;
    switch (ptype) {
    case KL_MQTT_CONNECT:
        return id == 0x11 || id == 0x15 || id == 0x16 || id == 0x17 || id == 0x19 || id == 0x21 ||
               id == 0x22 || id == 0x27;
    case KL_MQTT_PUBLISH:
        return id == 0x01 || id == 0x02 || id == 0x03 || id == 0x08 || id == 0x09 || id == 0x23;
    case KL_MQTT_PUBACK:
    case KL_MQTT_PUBREC:
    case KL_MQTT_PUBREL:
    case KL_MQTT_PUBCOMP:
    case KL_MQTT_UNSUBSCRIBE:
        return id == 0x1F;
    case KL_MQTT_SUBSCRIBE:
        return id == 0x0B;
    case KL_MQTT_DISCONNECT:
        return id == 0x11 || id == 0x1F || id == 0x1C;
    case KL_MQTT_AUTH:
        return id == 0x15 || id == 0x16 || id == 0x1F;
    default:
        return 0;
    }
}

static int get_varint(const uint8_t **p, const uint8_t *end, uint32_t *out)
{
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) {
        if (*p >= end) return -1;
        uint8_t d = *(*p)++;
        v |= (uint32_t)(d & 0x7f) << (7 * i);
        if (!(d & 0x80)) {
            *out = v;
            return 0;
        }
    }
    return -1;
}

static int get_span(const uint8_t **p, const uint8_t *end, struct kl_span *s)
{
    if (end - *p < 2) return -1;
    size_t n = ((size_t)(*p)[0] << 8) | (*p)[1];
    if ((size_t)(end - *p - 2) < n) return -1;
    s->p = *p + 2;
    s->n = n;
    *p += 2 + n;
    return 0;
}

int kl_mqtt_props_parse(const uint8_t **pp, const uint8_t *end, int ptype, int will,
                        struct kl_mqtt_props *o)
{
    memset(o, 0, sizeof *o);
    uint32_t len;
    if (get_varint(pp, end, &len) || (size_t)(end - *pp) < len) return KL_RC_MALFORMED;
    const uint8_t *p = *pp, *pe = *pp + len;
    o->raw.p = p;
    o->raw.n = len;
    while (p < pe) {
        uint32_t id;
        if (get_varint(&p, pe, &id)) return KL_RC_MALFORMED;
        int t = prop_type(id);
        if (t == PT_NONE) return KL_RC_MALFORMED;
        if (!prop_allowed(id, ptype, will)) return KL_RC_PROTOCOL;
        if (id != 0x26 && (o->has & KL_PROP(id))) return KL_RC_PROTOCOL; /* only once */
        o->has |= KL_PROP(id);
        uint32_t v = 0;
        struct kl_span s = {0}, s2;
        switch (t) {
        case PT_BYTE:
            if (p >= pe) return KL_RC_MALFORMED;
            v = *p++;
            break;
        case PT_U16:
            if (pe - p < 2) return KL_RC_MALFORMED;
            v = ((uint32_t)p[0] << 8) | p[1];
            p += 2;
            break;
        case PT_U32:
            if (pe - p < 4) return KL_RC_MALFORMED;
            v = ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
            p += 4;
            break;
        case PT_VARINT:
            if (get_varint(&p, pe, &v)) return KL_RC_MALFORMED;
            break;
        case PT_STR:
        case PT_BIN:
            if (get_span(&p, pe, &s)) return KL_RC_MALFORMED;
            if (t == PT_STR && !kl_mqtt_utf8_ok(s.p, s.n)) return KL_RC_MALFORMED;
            break;
        case PT_PAIR:
            if (get_span(&p, pe, &s) || get_span(&p, pe, &s2) || !kl_mqtt_utf8_ok(s.p, s.n) ||
                !kl_mqtt_utf8_ok(s2.p, s2.n))
                return KL_RC_MALFORMED;
            break;
        }
        switch (id) {
        case 0x01:
            if (v > 1) return KL_RC_PROTOCOL;
            o->payload_format = (uint8_t)v;
            break;
        case 0x02:
            o->msg_expiry = v;
            break;
        case 0x03:
            o->content_type = s;
            break;
        case 0x08:
            o->response_topic = s;
            break;
        case 0x09:
            o->corr_data = s;
            break;
        case 0x0B:
            if (v == 0) return KL_RC_PROTOCOL;
            o->sub_id = v;
            break;
        case 0x11:
            o->session_expiry = v;
            break;
        case 0x15:
            o->auth_method = s;
            break;
        case 0x16:
            o->auth_data = s;
            break;
        case 0x17:
            if (v > 1) return KL_RC_PROTOCOL;
            o->req_problem = (uint8_t)v;
            break;
        case 0x18:
            o->will_delay = v;
            break;
        case 0x19:
            if (v > 1) return KL_RC_PROTOCOL;
            o->req_response = (uint8_t)v;
            break;
        case 0x1F:
            o->reason = s;
            break;
        case 0x21:
            if (v == 0) return KL_RC_PROTOCOL;
            o->receive_max = (uint16_t)v;
            break;
        case 0x22:
            o->topic_alias_max = (uint16_t)v;
            break;
        case 0x23:
            o->topic_alias = (uint16_t)v;
            break;
        case 0x27:
            if (v == 0) return KL_RC_PROTOCOL;
            o->max_packet = v;
            break;
        default:
            break;
        }
    }
    *pp = pe;
    return 0;
}

/* The properties a PUBLISH keeps when it is forwarded (MQTT 5 3.3.2.3): payload format,
 * content type, response topic, correlation data and user properties, in their order. */
void kl_msg_props_filter(const struct kl_mqtt_props *pr, struct kl_wbuf *w)
{
    const uint8_t *p = pr->raw.p, *pe = pr->raw.p + pr->raw.n;
    while (p < pe) {
        const uint8_t *start = p;
        uint32_t id;
        if (get_varint(&p, pe, &id)) return; /* parsed before: cannot happen */
        struct kl_span s;
        switch (prop_type(id)) {
        case PT_BYTE:
            p += 1;
            break;
        case PT_U16:
            p += 2;
            break;
        case PT_U32:
            p += 4;
            break;
        case PT_VARINT: {
            uint32_t v;
            if (get_varint(&p, pe, &v)) return;
            break;
        }
        case PT_STR:
        case PT_BIN:
            if (get_span(&p, pe, &s)) return;
            break;
        case PT_PAIR:
            if (get_span(&p, pe, &s) || get_span(&p, pe, &s)) return;
            break;
        default:
            return;
        }
        if (id == 0x01 || id == 0x03 || id == 0x08 || id == 0x09 || id == 0x26)
            kl_wb_bytes(w, start, (size_t)(p - start));
    }
}
