/* MQTT packet serializers (MQTT 3.1.1 section 3, MQTT 5.0 section 3). Each builds the body
 * at buf + KL_MQ_HEADER_MAX, then moves it behind the fixed header once its length is known. */
#include <string.h>

#include "mqtt_int.h"

static void begin(struct kl_mq_w *w, uint8_t *buf, size_t cap)
{
    w->buf = buf;
    w->cap = cap;
    w->pos = KL_MQ_HEADER_MAX;
    w->over = cap < KL_MQ_HEADER_MAX;
}

static kl_status finish(struct kl_mq_w *w, uint8_t first, size_t *len)
{
    if (w->over) return KL_E_BUFFER;
    size_t body = w->pos - KL_MQ_HEADER_MAX;
    uint8_t vb[4];
    size_t vl = kl_mq_varint_put((uint32_t)body, vb);
    if (!vl || body > KL_MQ_REMAINING_MAX) return KL_E_BUFFER;
    w->buf[0] = first;
    memcpy(w->buf + 1, vb, vl);
    memmove(w->buf + 1 + vl, w->buf + KL_MQ_HEADER_MAX, body);
    *len = 1 + vl + body;
    return KL_OK;
}

static int version_ok(uint8_t v)
{
    return v == KL_MQ_V311 || v == KL_MQ_V5;
}

static int cstr_ok(const char *s, size_t *n)
{
    if (!s) return 0;
    *n = strlen(s);
    return *n <= 0xFFFF && kl_mq_utf8_ok((const uint8_t *)s, *n);
}

kl_status kl_mq_ser_connect(uint8_t *buf, size_t cap, const struct kl_mq_connect_opts *o,
                            size_t *len)
{
    if (!buf || !o || !len || !version_ok(o->version)) return KL_E_ARG;
    int v5 = o->version == KL_MQ_V5;
    size_t idn, un = 0, wtn = 0;
    if (!cstr_ok(o->client_id, &idn)) return KL_E_ARG;
    if (!v5 && idn == 0 && !o->clean) return KL_E_ARG; /* 3.1.1 3.1.3-7 */
    if (o->username && !cstr_ok(o->username, &un)) return KL_E_ARG;
    if (o->password.p && o->password.n > 0xFFFF) return KL_E_ARG;
    /* 3.1.1 has no password without a user name */
    if (!v5 && o->password.p && !o->username) return KL_E_ARG;
    if (!v5 && o->props) return KL_E_ARG;
    const struct kl_mq_will *wl = o->will;
    if (wl) {
        if (!cstr_ok(wl->topic, &wtn) || !kl_mq_topic_ok(wl->topic, wtn) || wl->qos > 2 ||
            wl->retain > 1 || wl->payload.n > 0xFFFF || (wl->payload.n && !wl->payload.p) ||
            (!v5 && wl->props))
            return KL_E_ARG;
    }
    uint8_t flags =
        (uint8_t)((o->clean ? 0x02 : 0) | (o->username ? 0x80 : 0) | (o->password.p ? 0x40 : 0));
    if (wl) flags |= (uint8_t)(0x04 | (wl->qos << 3) | (wl->retain ? 0x20 : 0));
    struct kl_mq_w w;
    begin(&w, buf, cap);
    kl_mq_w_bin(&w, (const uint8_t *)"MQTT", 4);
    kl_mq_w_u8(&w, o->version);
    kl_mq_w_u8(&w, flags);
    kl_mq_w_u16(&w, o->keepalive_s);
    if (v5 && kl_mq_w_props(&w, o->props, KL_MQ_CONNECT) != KL_OK) return KL_E_ARG;
    kl_mq_w_bin(&w, (const uint8_t *)o->client_id, idn);
    if (wl) {
        if (v5 && kl_mq_w_props(&w, wl->props, KL_MQ_WILL) != KL_OK) return KL_E_ARG;
        kl_mq_w_bin(&w, (const uint8_t *)wl->topic, wtn);
        kl_mq_w_bin(&w, wl->payload.p, wl->payload.n);
    }
    if (o->username) kl_mq_w_bin(&w, (const uint8_t *)o->username, un);
    if (o->password.p) kl_mq_w_bin(&w, o->password.p, o->password.n);
    return finish(&w, KL_MQ_CONNECT << 4, len);
}

kl_status kl_mq_ser_publish(uint8_t *buf, size_t cap, uint8_t version, const struct kl_mq_msg *m,
                            size_t *len)
{
    if (!buf || !m || !len || !version_ok(version)) return KL_E_ARG;
    size_t tn = m->topic_len ? m->topic_len : (m->topic ? strlen(m->topic) : 0);
    if (!kl_mq_topic_ok(m->topic, tn) || m->qos > 2 || m->retain > 1 || m->dup > 1 ||
        (m->qos == 0 && (m->dup || m->pid)) || (m->payload_len && !m->payload) ||
        (version != KL_MQ_V5 && m->props))
        return KL_E_ARG;
    if (m->qos && !m->pid) return KL_E_ARG;
    struct kl_mq_w w;
    begin(&w, buf, cap);
    kl_mq_w_bin(&w, (const uint8_t *)m->topic, tn);
    if (m->qos) kl_mq_w_u16(&w, m->pid);
    if (version == KL_MQ_V5 && kl_mq_w_props(&w, m->props, KL_MQ_PUBLISH) != KL_OK) return KL_E_ARG;
    kl_mq_w_bytes(&w, m->payload, m->payload_len);
    uint8_t first =
        (uint8_t)((KL_MQ_PUBLISH << 4) | (m->dup ? 8 : 0) | (m->qos << 1) | (m->retain ? 1 : 0));
    return finish(&w, first, len);
}

kl_status kl_mq_ser_ack(uint8_t *buf, size_t cap, uint8_t version, uint8_t type, uint16_t pid,
                        uint8_t reason, const struct kl_mq_props *props, size_t *len)
{
    if (!buf || !len || !version_ok(version) || type < KL_MQ_PUBACK || type > KL_MQ_PUBCOMP ||
        pid == 0)
        return KL_E_ARG;
    if (version != KL_MQ_V5 && (reason || props)) return KL_E_ARG;
    struct kl_mq_w w;
    begin(&w, buf, cap);
    kl_mq_w_u16(&w, pid);
    if (version == KL_MQ_V5 && (reason || (props && props->has))) {
        kl_mq_w_u8(&w, reason);
        if (props && props->has && kl_mq_w_props(&w, props, type) != KL_OK) return KL_E_ARG;
    }
    return finish(&w, (uint8_t)((type << 4) | (type == KL_MQ_PUBREL ? 2 : 0)), len);
}

kl_status kl_mq_ser_subscribe(uint8_t *buf, size_t cap, uint8_t version, uint16_t pid,
                              const struct kl_mq_sub *subs, size_t n,
                              const struct kl_mq_props *props, size_t *len)
{
    if (!buf || !len || !subs || n == 0 || pid == 0 || !version_ok(version)) return KL_E_ARG;
    int v5 = version == KL_MQ_V5;
    if (!v5 && props) return KL_E_ARG;
    struct kl_mq_w w;
    begin(&w, buf, cap);
    kl_mq_w_u16(&w, pid);
    if (v5 && kl_mq_w_props(&w, props, KL_MQ_SUBSCRIBE) != KL_OK) return KL_E_ARG;
    for (size_t i = 0; i < n; i++) {
        const struct kl_mq_sub *s = &subs[i];
        size_t fl = s->filter ? strlen(s->filter) : 0;
        if (!kl_mq_filter_ok(s->filter, fl) || s->qos > 2 || s->no_local > 1 ||
            s->retain_as_published > 1 || s->retain_handling > 2)
            return KL_E_ARG;
        if (!v5 && (s->no_local || s->retain_as_published || s->retain_handling)) return KL_E_ARG;
        kl_mq_w_bin(&w, (const uint8_t *)s->filter, fl);
        kl_mq_w_u8(&w, (uint8_t)(s->qos | (s->no_local << 2) | (s->retain_as_published << 3) |
                                 (s->retain_handling << 4)));
    }
    return finish(&w, (KL_MQ_SUBSCRIBE << 4) | 2, len);
}

kl_status kl_mq_ser_unsubscribe(uint8_t *buf, size_t cap, uint8_t version, uint16_t pid,
                                const char *const *filters, size_t n,
                                const struct kl_mq_props *props, size_t *len)
{
    if (!buf || !len || !filters || n == 0 || pid == 0 || !version_ok(version)) return KL_E_ARG;
    int v5 = version == KL_MQ_V5;
    if (!v5 && props) return KL_E_ARG;
    struct kl_mq_w w;
    begin(&w, buf, cap);
    kl_mq_w_u16(&w, pid);
    if (v5 && kl_mq_w_props(&w, props, KL_MQ_UNSUBSCRIBE) != KL_OK) return KL_E_ARG;
    for (size_t i = 0; i < n; i++) {
        size_t fl = filters[i] ? strlen(filters[i]) : 0;
        if (!kl_mq_filter_ok(filters[i], fl)) return KL_E_ARG;
        kl_mq_w_bin(&w, (const uint8_t *)filters[i], fl);
    }
    return finish(&w, (KL_MQ_UNSUBSCRIBE << 4) | 2, len);
}

kl_status kl_mq_ser_pingreq(uint8_t *buf, size_t cap, size_t *len)
{
    if (!buf || !len) return KL_E_ARG;
    if (cap < 2) return KL_E_BUFFER;
    buf[0] = KL_MQ_PINGREQ << 4;
    buf[1] = 0;
    *len = 2;
    return KL_OK;
}

kl_status kl_mq_ser_disconnect(uint8_t *buf, size_t cap, uint8_t version, uint8_t reason,
                               const struct kl_mq_props *props, size_t *len)
{
    if (!buf || !len || !version_ok(version)) return KL_E_ARG;
    if (version != KL_MQ_V5 && (reason || props)) return KL_E_ARG;
    struct kl_mq_w w;
    begin(&w, buf, cap);
    if (version == KL_MQ_V5 && (reason || (props && props->has))) {
        kl_mq_w_u8(&w, reason);
        if (props && props->has && kl_mq_w_props(&w, props, KL_MQ_DISCONNECT) != KL_OK)
            return KL_E_ARG;
    }
    return finish(&w, KL_MQ_DISCONNECT << 4, len);
}

kl_status kl_mq_ser_auth(uint8_t *buf, size_t cap, uint8_t reason, const struct kl_mq_props *props,
                         size_t *len)
{
    if (!buf || !len) return KL_E_ARG;
    if (reason != KL_MQ_RC_SUCCESS && reason != KL_MQ_RC_CONTINUE_AUTH && reason != KL_MQ_RC_REAUTH)
        return KL_E_ARG;
    struct kl_mq_w w;
    begin(&w, buf, cap);
    if (reason || (props && props->has)) {
        kl_mq_w_u8(&w, reason);
        if (kl_mq_w_props(&w, props, KL_MQ_AUTH) != KL_OK) return KL_E_ARG;
    }
    return finish(&w, KL_MQ_AUTH << 4, len);
}
