/* CONNECT (MQTT 3.1.1 and 5.0): parse and validate, nothing is acted upon here. */
#include <string.h>

#include "dataplane.h"

static int span(const uint8_t **p, const uint8_t *end, struct kl_span *s)
{
    if (end - *p < 2) return -1;
    size_t n = ((size_t)(*p)[0] << 8) | (*p)[1];
    if ((size_t)(end - *p - 2) < n) return -1;
    s->p = *p + 2;
    s->n = n;
    *p += 2 + n;
    return 0;
}

int kl_mqtt_parse_connect(const uint8_t *b, size_t n, struct kl_mqtt_connect *c)
{
    memset(c, 0, sizeof *c);
    const uint8_t *p = b, *end = b + n;
    struct kl_span name;
    if (span(&p, end, &name)) return KL_RC_MALFORMED;
    if (name.n != 4 || memcmp(name.p, "MQTT", 4)) return KL_RC_PROTOCOL;
    if (end - p < 4) return KL_RC_MALFORMED;
    c->version = p[0];
    if (c->version != 4 && c->version != 5) return KL_RC_UNSUPPORTED_VERSION;
    uint8_t fl = p[1];
    c->keepalive = (uint16_t)((p[2] << 8) | p[3]);
    p += 4;
    if (fl & 0x01) return KL_RC_MALFORMED; /* reserved bit */
    c->clean = (fl >> 1) & 1;
    c->will = (fl >> 2) & 1;
    c->will_qos = (fl >> 3) & 3;
    c->will_retain = (fl >> 5) & 1;
    c->has_pass = (fl >> 6) & 1;
    c->has_user = (fl >> 7) & 1;
    if (c->will_qos == 3) return KL_RC_MALFORMED;
    if (!c->will && (c->will_qos || c->will_retain)) return KL_RC_MALFORMED;
    if (c->version == 4 && c->has_pass && !c->has_user) return KL_RC_MALFORMED;
    int rc;
    if (c->version == 5 && (rc = kl_mqtt_props_parse(&p, end, KL_MQTT_CONNECT, 0, &c->props)))
        return rc;
    if (span(&p, end, &c->client_id) || !kl_mqtt_utf8_ok(c->client_id.p, c->client_id.n))
        return KL_RC_MALFORMED;
    if (c->will) {
        if (c->version == 5 &&
            (rc = kl_mqtt_props_parse(&p, end, KL_MQTT_CONNECT, 1, &c->will_props)))
            return rc;
        if (span(&p, end, &c->will_topic) || span(&p, end, &c->will_payload) ||
            !kl_mqtt_utf8_ok(c->will_topic.p, c->will_topic.n))
            return KL_RC_MALFORMED;
    }
    if (c->has_user && (span(&p, end, &c->user) || !kl_mqtt_utf8_ok(c->user.p, c->user.n)))
        return KL_RC_MALFORMED;
    if (c->has_pass && span(&p, end, &c->pass)) return KL_RC_MALFORMED;
    if (p != end) return KL_RC_MALFORMED;
    if ((c->props.has & KL_PROP(KL_P_AUTH_DATA)) && !(c->props.has & KL_PROP(KL_P_AUTH_METHOD)))
        return KL_RC_PROTOCOL;
    return 0;
}
