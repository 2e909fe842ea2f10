/* MQTT packet deserializers for what a client receives. Every length is checked against the
 * bytes present; anything that does not parse exactly is KL_E_PEER (a malformed packet). */
#include <string.h>

#include "mqtt_int.h"

static uint16_t be16(const uint8_t *p)
{
    return (uint16_t)((p[0] << 8) | p[1]);
}

kl_status kl_mq_frame(const uint8_t *buf, size_t n, struct kl_mq_frame *f)
{
    if (!buf || !f) return KL_E_ARG;
    memset(f, 0, sizeof *f);
    if (n < 1) return KL_OK;
    f->type = buf[0] >> 4;
    f->flags = buf[0] & 0x0F;
    if (f->type == 0) return KL_E_PEER;
    /* fixed flags of every type but PUBLISH (MQTT 2.1.3) */
    uint8_t want =
        (f->type == KL_MQ_PUBREL || f->type == KL_MQ_SUBSCRIBE || f->type == KL_MQ_UNSUBSCRIBE) ? 2
                                                                                                : 0;
    if (f->type != KL_MQ_PUBLISH && f->flags != want) return KL_E_PEER;
    if (f->type == KL_MQ_PUBLISH && ((f->flags >> 1) & 3) == 3) return KL_E_PEER;
    uint32_t rl;
    size_t used;
    kl_status st = kl_mq_varint_get(buf + 1, n - 1, &rl, &used);
    if (st == KL_E_BUFFER) return KL_OK; /* header not complete yet */
    if (st != KL_OK) return KL_E_PEER;
    f->header_len = 1 + used;
    f->body_len = rl;
    f->total = f->header_len + rl;
    f->complete = n >= f->total;
    return KL_OK;
}

kl_status kl_mq_de_connack(const uint8_t *body, size_t n, uint8_t version, struct kl_mq_connack *a)
{
    if (!body || !a) return KL_E_ARG;
    memset(a, 0, sizeof *a);
    if (n < 2 || (body[0] & 0xFE)) return KL_E_PEER;
    a->session_present = body[0] & 1;
    a->reason = body[1];
    if (version != KL_MQ_V5) {
        if (n != 2 || a->reason > 5 || (a->reason && a->session_present)) return KL_E_PEER;
        return KL_OK;
    }
    if (a->reason && a->session_present) return KL_E_PEER; /* MQTT 5 3.2.2-6 */
    size_t used;
    if (n < 3 || kl_mq_de_props(body + 2, n - 2, KL_MQ_CONNACK, &a->props, &used) || used != n - 2)
        return KL_E_PEER;
    return KL_OK;
}

kl_status kl_mq_de_publish(uint8_t flags, const uint8_t *body, size_t n, uint8_t version,
                           struct kl_mq_msg *m, struct kl_mq_props *props)
{
    if (!body || !m || !props) return KL_E_ARG;
    memset(m, 0, sizeof *m);
    memset(props, 0, sizeof *props);
    m->dup = (flags >> 3) & 1;
    m->qos = (flags >> 1) & 3;
    m->retain = flags & 1;
    if (m->qos == 3 || (m->qos == 0 && m->dup)) return KL_E_PEER;
    if (n < 2) return KL_E_PEER;
    size_t tl = be16(body), off = 2;
    if (tl > n - off) return KL_E_PEER;
    m->topic = (const char *)body + off;
    m->topic_len = tl;
    off += tl;
    if (m->qos) {
        if (n - off < 2) return KL_E_PEER;
        m->pid = be16(body + off);
        if (m->pid == 0) return KL_E_PEER;
        off += 2;
    }
    if (version == KL_MQ_V5) {
        size_t used;
        if (kl_mq_de_props(body + off, n - off, KL_MQ_PUBLISH, props, &used)) return KL_E_PEER;
        off += used;
        m->props = props;
        /* this client announces no Topic Alias Maximum, so a server may not use aliases */
        if (props->has & KL_MQ_HAS(KL_MQ_P_TOPIC_ALIAS)) return KL_E_PEER;
    }
    if (!kl_mq_topic_ok(m->topic, tl)) return KL_E_PEER;
    m->payload = body + off;
    m->payload_len = n - off;
    if (version == KL_MQ_V5 && (props->has & KL_MQ_HAS(KL_MQ_P_PAYLOAD_FORMAT)) &&
        props->payload_format == 1 && !kl_mq_utf8_ok(m->payload, m->payload_len))
        return KL_E_PEER;
    return KL_OK;
}

kl_status kl_mq_de_ack(uint8_t type, const uint8_t *body, size_t n, uint8_t version, uint16_t *pid,
                       uint8_t *reason, struct kl_mq_props *props)
{
    if (!body || !pid || !reason || !props || type < KL_MQ_PUBACK || type > KL_MQ_PUBCOMP)
        return KL_E_ARG;
    memset(props, 0, sizeof *props);
    *reason = 0;
    if (n < 2) return KL_E_PEER;
    *pid = be16(body);
    if (*pid == 0) return KL_E_PEER;
    if (version != KL_MQ_V5) return n == 2 ? KL_OK : KL_E_PEER;
    if (n == 2) return KL_OK;
    *reason = body[2];
    if (n == 3) return KL_OK;
    size_t used;
    if (kl_mq_de_props(body + 3, n - 3, type, props, &used) || used != n - 3) return KL_E_PEER;
    return KL_OK;
}

kl_status kl_mq_de_suback(uint8_t type, const uint8_t *body, size_t n, uint8_t version,
                          uint16_t *pid, uint8_t *codes, size_t cap, size_t *ncodes,
                          struct kl_mq_props *props)
{
    if (!body || !pid || !ncodes || !props || (type != KL_MQ_SUBACK && type != KL_MQ_UNSUBACK))
        return KL_E_ARG;
    memset(props, 0, sizeof *props);
    *ncodes = 0;
    if (n < 2) return KL_E_PEER;
    *pid = be16(body);
    if (*pid == 0) return KL_E_PEER;
    size_t off = 2;
    if (version == KL_MQ_V5) {
        size_t used;
        if (kl_mq_de_props(body + off, n - off, type, props, &used)) return KL_E_PEER;
        off += used;
    } else if (type == KL_MQ_UNSUBACK) {
        return n == 2 ? KL_OK : KL_E_PEER;
    }
    size_t k = n - off;
    if (k == 0) return KL_E_PEER; /* at least one code per filter */
    for (size_t i = 0; i < k; i++) {
        uint8_t c = body[off + i];
        if (version != KL_MQ_V5 && c > 2 && c != 0x80) return KL_E_PEER;
    }
    if (k > cap) return KL_E_BUFFER;
    if (codes && k) memcpy(codes, body + off, k);
    *ncodes = k;
    return KL_OK;
}

kl_status kl_mq_de_disconnect(const uint8_t *body, size_t n, uint8_t version, uint8_t *reason,
                              struct kl_mq_props *props)
{
    if ((!body && n) || !reason || !props) return KL_E_ARG;
    memset(props, 0, sizeof *props);
    *reason = 0;
    if (version != KL_MQ_V5) return KL_E_PEER;
    if (n == 0) return KL_OK;
    *reason = body[0];
    if (n == 1) return KL_OK;
    size_t used;
    if (kl_mq_de_props(body + 1, n - 1, KL_MQ_DISCONNECT, props, &used) || used != n - 1)
        return KL_E_PEER;
    return KL_OK;
}

kl_status kl_mq_de_auth(const uint8_t *body, size_t n, uint8_t *reason, struct kl_mq_props *props)
{
    if ((!body && n) || !reason || !props) return KL_E_ARG;
    memset(props, 0, sizeof *props);
    *reason = 0;
    if (n == 0) return KL_OK;
    *reason = body[0];
    if (*reason != KL_MQ_RC_SUCCESS && *reason != KL_MQ_RC_CONTINUE_AUTH &&
        *reason != KL_MQ_RC_REAUTH)
        return KL_E_PEER;
    if (n == 1) return KL_OK;
    size_t used;
    if (kl_mq_de_props(body + 1, n - 1, KL_MQ_AUTH, props, &used) || used != n - 1)
        return KL_E_PEER;
    return KL_OK;
}

const char *kl_mq_type_name(uint8_t type)
{
    static const char *const names[16] = {"?",         "CONNECT",  "CONNACK",     "PUBLISH",
                                          "PUBACK",    "PUBREC",   "PUBREL",      "PUBCOMP",
                                          "SUBSCRIBE", "SUBACK",   "UNSUBSCRIBE", "UNSUBACK",
                                          "PINGREQ",   "PINGRESP", "DISCONNECT",  "AUTH"};
    return type < 16 ? names[type] : "?";
}
