/* MQTT 5 properties: which may appear where, and reading/writing them (MQTT 5.0
 * section 2.2.2). Also the bounded writer and the string/topic checks the codec shares. */
#include <string.h>

#include "mqtt_int.h"

enum { K_NONE, K_BYTE, K_U16, K_U32, K_VARINT, K_STR, K_BIN, K_PAIR };

#define T(x) (1u << (x))
#define ACKS (T(KL_MQ_PUBACK) | T(KL_MQ_PUBREC) | T(KL_MQ_PUBREL) | T(KL_MQ_PUBCOMP))
#define ALL                                                                                        \
    (T(KL_MQ_WILL) | T(KL_MQ_CONNECT) | T(KL_MQ_CONNACK) | T(KL_MQ_PUBLISH) | ACKS |               \
     T(KL_MQ_SUBSCRIBE) | T(KL_MQ_SUBACK) | T(KL_MQ_UNSUBSCRIBE) | T(KL_MQ_UNSUBACK) |             \
     T(KL_MQ_DISCONNECT) | T(KL_MQ_AUTH))

static const struct {
    uint8_t kind;
    uint16_t where;
} props[0x2B] = {
    [KL_MQ_P_PAYLOAD_FORMAT] = {K_BYTE, T(KL_MQ_PUBLISH) | T(KL_MQ_WILL)},
    [KL_MQ_P_MESSAGE_EXPIRY] = {K_U32, T(KL_MQ_PUBLISH) | T(KL_MQ_WILL)},
    [KL_MQ_P_CONTENT_TYPE] = {K_STR, T(KL_MQ_PUBLISH) | T(KL_MQ_WILL)},
    [KL_MQ_P_RESPONSE_TOPIC] = {K_STR, T(KL_MQ_PUBLISH) | T(KL_MQ_WILL)},
    [KL_MQ_P_CORRELATION] = {K_BIN, T(KL_MQ_PUBLISH) | T(KL_MQ_WILL)},
    [KL_MQ_P_SUBSCRIPTION_ID] = {K_VARINT, T(KL_MQ_PUBLISH) | T(KL_MQ_SUBSCRIBE)},
    [KL_MQ_P_SESSION_EXPIRY] = {K_U32, T(KL_MQ_CONNECT) | T(KL_MQ_CONNACK) | T(KL_MQ_DISCONNECT)},
    [KL_MQ_P_ASSIGNED_CLIENT_ID] = {K_STR, T(KL_MQ_CONNACK)},
    [KL_MQ_P_SERVER_KEEPALIVE] = {K_U16, T(KL_MQ_CONNACK)},
    [KL_MQ_P_AUTH_METHOD] = {K_STR, T(KL_MQ_CONNECT) | T(KL_MQ_CONNACK) | T(KL_MQ_AUTH)},
    [KL_MQ_P_AUTH_DATA] = {K_BIN, T(KL_MQ_CONNECT) | T(KL_MQ_CONNACK) | T(KL_MQ_AUTH)},
    [KL_MQ_P_REQUEST_PROBLEM] = {K_BYTE, T(KL_MQ_CONNECT)},
    [KL_MQ_P_WILL_DELAY] = {K_U32, T(KL_MQ_WILL)},
    [KL_MQ_P_REQUEST_RESPONSE] = {K_BYTE, T(KL_MQ_CONNECT)},
    [KL_MQ_P_RESPONSE_INFO] = {K_STR, T(KL_MQ_CONNACK)},
    [KL_MQ_P_SERVER_REF] = {K_STR, T(KL_MQ_CONNACK) | T(KL_MQ_DISCONNECT)},
    [KL_MQ_P_REASON] = {K_STR, T(KL_MQ_CONNACK) | ACKS | T(KL_MQ_SUBACK) | T(KL_MQ_UNSUBACK) |
                                   T(KL_MQ_DISCONNECT) | T(KL_MQ_AUTH)},
    [KL_MQ_P_RECEIVE_MAX] = {K_U16, T(KL_MQ_CONNECT) | T(KL_MQ_CONNACK)},
    [KL_MQ_P_TOPIC_ALIAS_MAX] = {K_U16, T(KL_MQ_CONNECT) | T(KL_MQ_CONNACK)},
    [KL_MQ_P_TOPIC_ALIAS] = {K_U16, T(KL_MQ_PUBLISH)},
    [KL_MQ_P_MAX_QOS] = {K_BYTE, T(KL_MQ_CONNACK)},
    [KL_MQ_P_RETAIN_AVAILABLE] = {K_BYTE, T(KL_MQ_CONNACK)},
    [KL_MQ_P_USER] = {K_PAIR, ALL},
    [KL_MQ_P_MAX_PACKET] = {K_U32, T(KL_MQ_CONNECT) | T(KL_MQ_CONNACK)},
    [KL_MQ_P_WILDCARD_AVAILABLE] = {K_BYTE, T(KL_MQ_CONNACK)},
    [KL_MQ_P_SUBID_AVAILABLE] = {K_BYTE, T(KL_MQ_CONNACK)},
    [KL_MQ_P_SHARED_AVAILABLE] = {K_BYTE, T(KL_MQ_CONNACK)},
};

int kl_mq_prop_allowed(uint8_t id, uint8_t ptype)
{
    return id < 0x2B && props[id].kind != K_NONE && ptype < 16 && (props[id].where & T(ptype));
}

/* ---- the bounded writer ---- */

void kl_mq_w_bytes(struct kl_mq_w *w, const void *p, size_t n)
{
    if (w->over || n > w->cap - w->pos) {
        w->over = 1;
        return;
    }
    if (n) memcpy(w->buf + w->pos, p, n);
    w->pos += n;
}

void kl_mq_w_u8(struct kl_mq_w *w, uint8_t v)
{
    kl_mq_w_bytes(w, &v, 1);
}

void kl_mq_w_u16(struct kl_mq_w *w, uint16_t v)
{
    uint8_t b[2] = {(uint8_t)(v >> 8), (uint8_t)v};
    kl_mq_w_bytes(w, b, 2);
}

void kl_mq_w_u32(struct kl_mq_w *w, uint32_t v)
{
    uint8_t b[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
    kl_mq_w_bytes(w, b, 4);
}

void kl_mq_w_varint(struct kl_mq_w *w, uint32_t v)
{
    uint8_t b[4];
    size_t n = kl_mq_varint_put(v, b);
    if (!n) {
        w->over = 1;
        return;
    }
    kl_mq_w_bytes(w, b, n);
}

void kl_mq_w_bin(struct kl_mq_w *w, const uint8_t *p, size_t n)
{
    kl_mq_w_u16(w, (uint16_t)n);
    kl_mq_w_bytes(w, p, n);
}

size_t kl_mq_varint_put(uint32_t v, uint8_t out[4])
{
    if (v > KL_MQ_REMAINING_MAX) return 0;
    size_t n = 0;
    do {
        uint8_t b = (uint8_t)(v & 0x7F);
        v >>= 7;
        out[n++] = (uint8_t)(b | (v ? 0x80 : 0));
    } while (v);
    return n;
}

kl_status kl_mq_varint_get(const uint8_t *p, size_t n, uint32_t *v, size_t *used)
{
    uint32_t val = 0;
    for (size_t i = 0; i < 4; i++) {
        if (i >= n) return KL_E_BUFFER;
        val |= (uint32_t)(p[i] & 0x7F) << (7 * i);
        if (!(p[i] & 0x80)) {
            /* a last byte of 0 after others is a non-minimal encoding (MQTT 1.5.5) */
            if (i > 0 && p[i] == 0) return KL_E_PEER;
            *v = val;
            *used = i + 1;
            return KL_OK;
        }
    }
    return KL_E_PEER;
}

/* ---- writing properties ---- */

static int bin_ok(const struct kl_mq_bin *b)
{
    return b->n <= 0xFFFF && (b->p || !b->n);
}

static int str_ok(const struct kl_mq_bin *b)
{
    return bin_ok(b) && kl_mq_utf8_ok(b->p ? b->p : (const uint8_t *)"", b->n);
}

/* The field of pr that holds property id (for byte/u16/u32/varint/string/binary). */
static const struct kl_mq_bin *bin_field(const struct kl_mq_props *pr, uint8_t id)
{
    switch (id) {
    case KL_MQ_P_CONTENT_TYPE:
        return &pr->content_type;
    case KL_MQ_P_RESPONSE_TOPIC:
        return &pr->response_topic;
    case KL_MQ_P_CORRELATION:
        return &pr->correlation;
    case KL_MQ_P_ASSIGNED_CLIENT_ID:
        return &pr->assigned_client_id;
    case KL_MQ_P_AUTH_METHOD:
        return &pr->auth_method;
    case KL_MQ_P_AUTH_DATA:
        return &pr->auth_data;
    case KL_MQ_P_RESPONSE_INFO:
        return &pr->response_info;
    case KL_MQ_P_SERVER_REF:
        return &pr->server_ref;
    default:
        return &pr->reason;
    }
}

static uint32_t num_field(const struct kl_mq_props *pr, uint8_t id)
{
    switch (id) {
    case KL_MQ_P_PAYLOAD_FORMAT:
        return pr->payload_format;
    case KL_MQ_P_MESSAGE_EXPIRY:
        return pr->message_expiry;
    case KL_MQ_P_SUBSCRIPTION_ID:
        return pr->subscription_id;
    case KL_MQ_P_SESSION_EXPIRY:
        return pr->session_expiry;
    case KL_MQ_P_SERVER_KEEPALIVE:
        return pr->server_keepalive;
    case KL_MQ_P_REQUEST_PROBLEM:
        return pr->request_problem;
    case KL_MQ_P_WILL_DELAY:
        return pr->will_delay;
    case KL_MQ_P_REQUEST_RESPONSE:
        return pr->request_response;
    case KL_MQ_P_RECEIVE_MAX:
        return pr->receive_max;
    case KL_MQ_P_TOPIC_ALIAS_MAX:
        return pr->topic_alias_max;
    case KL_MQ_P_TOPIC_ALIAS:
        return pr->topic_alias;
    case KL_MQ_P_MAX_QOS:
        return pr->max_qos;
    case KL_MQ_P_RETAIN_AVAILABLE:
        return pr->retain_available;
    case KL_MQ_P_MAX_PACKET:
        return pr->max_packet;
    case KL_MQ_P_WILDCARD_AVAILABLE:
        return pr->wildcard_available;
    case KL_MQ_P_SUBID_AVAILABLE:
        return pr->subid_available;
    default:
        return pr->shared_available;
    }
}

/* Range rules the spec puts on values (both directions). */
static int value_ok(uint8_t id, uint32_t v)
{
    switch (id) {
    case KL_MQ_P_PAYLOAD_FORMAT:
    case KL_MQ_P_REQUEST_PROBLEM:
    case KL_MQ_P_REQUEST_RESPONSE:
    case KL_MQ_P_MAX_QOS:
    case KL_MQ_P_RETAIN_AVAILABLE:
    case KL_MQ_P_WILDCARD_AVAILABLE:
    case KL_MQ_P_SUBID_AVAILABLE:
    case KL_MQ_P_SHARED_AVAILABLE:
        return v <= 1;
    case KL_MQ_P_SUBSCRIPTION_ID:
        return v >= 1 && v <= KL_MQ_REMAINING_MAX;
    case KL_MQ_P_RECEIVE_MAX:
    case KL_MQ_P_TOPIC_ALIAS:
    case KL_MQ_P_MAX_PACKET:
        return v != 0;
    default:
        return 1;
    }
}

kl_status kl_mq_w_props(struct kl_mq_w *w, const struct kl_mq_props *pr, uint8_t ptype)
{
    /* the block is written after 4 reserved bytes, then moved down behind its length */
    size_t start = w->pos;
    kl_mq_w_u32(w, 0);
    if (pr) {
        if (pr->user_n > KL_MQ_USER_MAX) return KL_E_ARG;
        for (uint8_t id = 1; id < 0x2B; id++) {
            if (!(pr->has & KL_MQ_HAS(id))) continue;
            if (!kl_mq_prop_allowed(id, ptype)) return KL_E_ARG;
            uint8_t k = props[id].kind;
            if (k == K_PAIR) {
                for (uint8_t i = 0; i < pr->user_n; i++) {
                    if (!str_ok(&pr->user_key[i]) || !str_ok(&pr->user_val[i])) return KL_E_ARG;
                    kl_mq_w_u8(w, id);
                    kl_mq_w_bin(w, pr->user_key[i].p, pr->user_key[i].n);
                    kl_mq_w_bin(w, pr->user_val[i].p, pr->user_val[i].n);
                }
                continue;
            }
            if (k == K_STR || k == K_BIN) {
                const struct kl_mq_bin *b = bin_field(pr, id);
                if (k == K_STR ? !str_ok(b) : !bin_ok(b)) return KL_E_ARG;
                kl_mq_w_u8(w, id);
                kl_mq_w_bin(w, b->p, b->n);
                continue;
            }
            uint32_t v = num_field(pr, id);
            if (!value_ok(id, v)) return KL_E_ARG;
            kl_mq_w_u8(w, id);
            if (k == K_BYTE)
                kl_mq_w_u8(w, (uint8_t)v);
            else if (k == K_U16)
                kl_mq_w_u16(w, (uint16_t)v);
            else if (k == K_U32)
                kl_mq_w_u32(w, v);
            else
                kl_mq_w_varint(w, v);
        }
    }
    if (w->over) return KL_OK; /* the caller reports KL_E_BUFFER */
    size_t plen = w->pos - start - 4;
    uint8_t vb[4];
    size_t vl = kl_mq_varint_put((uint32_t)plen, vb);
    if (!vl) {
        w->over = 1;
        return KL_OK;
    }
    memmove(w->buf + start + vl, w->buf + start + 4, plen);
    memcpy(w->buf + start, vb, vl);
    w->pos = start + vl + plen;
    return KL_OK;
}

/* ---- reading properties ---- */

static kl_status rd_bin(const uint8_t *p, size_t n, size_t *off, struct kl_mq_bin *out, int utf8)
{
    if (n - *off < 2) return KL_E_PEER;
    size_t l = ((size_t)p[*off] << 8) | p[*off + 1];
    *off += 2;
    if (n - *off < l) return KL_E_PEER;
    if (utf8 && !kl_mq_utf8_ok(p + *off, l)) return KL_E_PEER;
    out->p = p + *off;
    out->n = l;
    *off += l;
    return KL_OK;
}

static void set_num(struct kl_mq_props *pr, uint8_t id, uint32_t v)
{
    switch (id) {
    case KL_MQ_P_PAYLOAD_FORMAT:
        pr->payload_format = (uint8_t)v;
        break;
    case KL_MQ_P_MESSAGE_EXPIRY:
        pr->message_expiry = v;
        break;
    case KL_MQ_P_SUBSCRIPTION_ID:
        pr->subscription_id = v;
        break;
    case KL_MQ_P_SESSION_EXPIRY:
        pr->session_expiry = v;
        break;
    case KL_MQ_P_SERVER_KEEPALIVE:
        pr->server_keepalive = (uint16_t)v;
        break;
    case KL_MQ_P_REQUEST_PROBLEM:
        pr->request_problem = (uint8_t)v;
        break;
    case KL_MQ_P_WILL_DELAY:
        pr->will_delay = v;
        break;
    case KL_MQ_P_REQUEST_RESPONSE:
        pr->request_response = (uint8_t)v;
        break;
    case KL_MQ_P_RECEIVE_MAX:
        pr->receive_max = (uint16_t)v;
        break;
    case KL_MQ_P_TOPIC_ALIAS_MAX:
        pr->topic_alias_max = (uint16_t)v;
        break;
    case KL_MQ_P_TOPIC_ALIAS:
        pr->topic_alias = (uint16_t)v;
        break;
    case KL_MQ_P_MAX_QOS:
        pr->max_qos = (uint8_t)v;
        break;
    case KL_MQ_P_RETAIN_AVAILABLE:
        pr->retain_available = (uint8_t)v;
        break;
    case KL_MQ_P_MAX_PACKET:
        pr->max_packet = v;
        break;
    case KL_MQ_P_WILDCARD_AVAILABLE:
        pr->wildcard_available = (uint8_t)v;
        break;
    case KL_MQ_P_SUBID_AVAILABLE:
        pr->subid_available = (uint8_t)v;
        break;
    default:
        pr->shared_available = (uint8_t)v;
        break;
    }
}

kl_status kl_mq_de_props(const uint8_t *p, size_t n, uint8_t ptype, struct kl_mq_props *pr,
                         size_t *used)
{
    memset(pr, 0, sizeof *pr);
    uint32_t plen;
    size_t vl;
    kl_status st = kl_mq_varint_get(p, n, &plen, &vl);
    if (st != KL_OK) return KL_E_PEER;
    if (plen > n - vl) return KL_E_PEER;
    const uint8_t *q = p + vl;
    size_t end = plen, off = 0;
    while (off < end) {
        uint32_t id32;
        size_t il;
        /* identifiers are variable byte integers; all known ones fit one byte */
        if (kl_mq_varint_get(q + off, end - off, &id32, &il) != KL_OK) return KL_E_PEER;
        off += il;
        if (id32 >= 0x2B || !kl_mq_prop_allowed((uint8_t)id32, ptype)) return KL_E_PEER;
        uint8_t id = (uint8_t)id32, k = props[id].kind;
        if ((pr->has & KL_MQ_HAS(id)) && k != K_PAIR && id != KL_MQ_P_SUBSCRIPTION_ID)
            return KL_E_PEER; /* repeated (MQTT 5.0 2.2.2.2) */
        if (k == K_PAIR) {
            struct kl_mq_bin key, val;
            if (rd_bin(q, end, &off, &key, 1) || rd_bin(q, end, &off, &val, 1)) return KL_E_PEER;
            if (pr->user_n < KL_MQ_USER_MAX) {
                pr->user_key[pr->user_n] = key;
                pr->user_val[pr->user_n] = val;
                pr->user_n++;
            }
            if (pr->user_total < 0xFFFF) pr->user_total++;
        } else if (k == K_STR || k == K_BIN) {
            struct kl_mq_bin b;
            if (rd_bin(q, end, &off, &b, k == K_STR)) return KL_E_PEER;
            *(struct kl_mq_bin *)bin_field(pr, id) = b;
        } else {
            uint32_t v = 0;
            size_t need = k == K_BYTE ? 1 : k == K_U16 ? 2 : k == K_U32 ? 4 : 0;
            if (k == K_VARINT) {
                if (kl_mq_varint_get(q + off, end - off, &v, &need) != KL_OK) return KL_E_PEER;
            } else {
                if (end - off < need) return KL_E_PEER;
                for (size_t i = 0; i < need; i++)
                    v = (v << 8) | q[off + i];
            }
            off += need;
            if (!value_ok(id, v)) return KL_E_PEER;
            if (!(pr->has & KL_MQ_HAS(id))) set_num(pr, id, v); /* first subscription id */
        }
        pr->has |= KL_MQ_HAS(id);
    }
    *used = vl + plen;
    return KL_OK;
}

/* ---- strings and topics ---- */

int kl_mq_utf8_ok(const uint8_t *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        uint8_t c = s[i];
        uint32_t cp;
        size_t len;
        if (c == 0) return 0;
        if (c < 0x80) {
            i++;
            continue;
        }
        if (c >= 0xC2 && c <= 0xDF) {
            len = 2;
            cp = c & 0x1F;
        } else if (c >= 0xE0 && c <= 0xEF) {
            len = 3;
            cp = c & 0x0F;
        } else if (c >= 0xF0 && c <= 0xF4) {
            len = 4;
            cp = c & 0x07;
        } else {
            return 0;
        }
        if (n - i < len) return 0;
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xC0) != 0x80) return 0;
            cp = (cp << 6) | (s[i + k] & 0x3F);
        }
        /* overlong forms, surrogates, beyond U+10FFFF */
        if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)) ||
            (cp >= 0xD800 && cp <= 0xDFFF))
            return 0;
        i += len;
    }
    return 1;
}

int kl_mq_topic_ok(const char *t, size_t n)
{
    if (!t || n == 0 || n > 0xFFFF) return 0;
    if (memchr(t, '+', n) || memchr(t, '#', n)) return 0;
    return kl_mq_utf8_ok((const uint8_t *)t, n);
}

int kl_mq_filter_ok(const char *f, size_t n)
{
    if (!f || n == 0 || n > 0xFFFF || !kl_mq_utf8_ok((const uint8_t *)f, n)) return 0;
    for (size_t i = 0; i < n; i++) {
        int lstart = i == 0 || f[i - 1] == '/';
        int lend = i + 1 == n || f[i + 1] == '/';
        if (f[i] == '+' && !(lstart && lend)) return 0;
        if (f[i] == '#' && !(lstart && i + 1 == n)) return 0;
    }
    return 1;
}

int kl_mq_topic_match(const char *f, const char *t, size_t tn)
{
    size_t fn = strlen(f), fi = 0, ti = 0;
    if (tn && t[0] == '$' && fn && (f[0] == '+' || f[0] == '#')) return 0;
    for (;;) {
        if (fi == fn) return ti == tn;
        if (f[fi] == '#') return 1; /* also matches the parent level ("a/#" matches "a") */
        if (f[fi] == '+') {
            while (ti < tn && t[ti] != '/')
                ti++;
            fi++;
        } else {
            /* compare one level literally */
            while (fi < fn && f[fi] != '/' && ti < tn && t[ti] != '/') {
                if (f[fi] != t[ti]) return 0;
                fi++;
                ti++;
            }
            if ((fi < fn && f[fi] != '/') || (ti < tn && t[ti] != '/')) return 0;
        }
        /* both at a level end */
        if (fi == fn) return ti == tn;
        if (ti == tn) /* "a/#" against "a" */
            return fn - fi == 2 && f[fi] == '/' && f[fi + 1] == '#';
        fi++;
        ti++;
    }
}
