/* PUBLISH, SUBSCRIBE, UNSUBSCRIBE and the QoS acknowledgements of an online client. */
#include <stdlib.h>
#include <string.h>

#include "dataplane.h"

/* Topics under $aws/events/ are the server's own (lifecycle, registration). */
static int reserved(const uint8_t *t, size_t n)
{
    return n >= 12 && !memcmp(t, "$aws/events/", 12);
}

/* A denied action: v5 gets the reason code in the ack (ack_rc != 0 means the caller sends
 * it), v3.1.1 is disconnected as AWS does. Returns 1 when the connection is closing. */
static int denied(struct kl_conn *c, const char *what, const uint8_t *name, size_t n)
{
    kl_dp_log("client %s: %s %.*s denied by policy", c->client_id, what, (int)n,
              (const char *)name);
    if (c->version != 5) {
        kl_conn_close(c, KL_RC_NOT_AUTHORIZED, NULL); /* 3.1.1: closed, no DISCONNECT */
        return 1;
    }
    return 0;
}

void kl_handle_publish(struct kl_dp *dp, struct kl_conn *c, uint8_t flags, const uint8_t *b,
                       size_t n)
{
    struct kl_mqtt_publish pub;
    int v5 = c->version == 5;
    int rc = kl_mqtt_parse_publish(flags, b, n, v5, &pub);
    if (rc) {
        kl_conn_close(c, rc, "malformed PUBLISH");
        return;
    }
    if (kl_topic_name_ok(pub.topic.p, pub.topic.n)) {
        kl_dp_log("client %s: invalid topic name in PUBLISH", c->client_id);
        kl_conn_close(c, KL_RC_TOPIC_NAME_INVALID, "invalid topic name");
        return;
    }
    atomic_fetch_add(&dp->m.msgs_in, 1);
    struct kl_broker *br = &dp->broker;
    int ack = pub.qos == 1 ? KL_MQTT_PUBACK : KL_MQTT_PUBREC;
    /* a resent QoS 2 PUBLISH that we already have: acknowledge, do not deliver twice */
    if (pub.qos == 2) {
        pthread_mutex_lock(&br->lock);
        struct kl_session *s = c->sess;
        int dup = 0;
        for (unsigned i = 0; s && i < s->n_in_q2; i++)
            if (s->in_q2[i] == pub.pid) dup = 1;
        int full = s && !dup && s->n_in_q2 >= KL_DP_RECEIVE_MAX;
        pthread_mutex_unlock(&br->lock);
        if (dup) {
            kl_mqtt_send_ack(&c->out, KL_MQTT_PUBREC, pub.pid, 0, v5);
            return;
        }
        if (full) {
            kl_conn_close(c, KL_RC_RECEIVE_MAX_EXCEEDED, "receive maximum exceeded");
            return;
        }
    }
    struct kl_wbuf pw = {0};
    if (v5) kl_msg_props_filter(&pub.props, &pw);
    struct kl_msg *m = kl_msg_new(pub.topic.p, pub.topic.n, pw.p, pw.len, pub.payload.p,
                                  pub.payload.n, pub.qos, pub.retain);
    free(pw.p);
    if (!m) {
        kl_conn_close(c, KL_RC_UNSPECIFIED, "out of memory");
        return;
    }
    if (v5 && (pub.props.has & KL_PROP(KL_P_MSG_EXPIRY)))
        m->expires_ms = kl_dp_now_ms() + (int64_t)pub.props.msg_expiry * 1000;
    pthread_mutex_lock(&br->lock);
    struct kl_session *s = c->sess;
    if (!s) { /* taken over meanwhile */
        pthread_mutex_unlock(&br->lock);
        kl_msg_unref(m);
        return;
    }
    int ok = !reserved(pub.topic.p, pub.topic.n) &&
             kl_dp_allowed(dp, &s->id, s->client_id, "iot:Publish", "topic",
                           (const char *)pub.topic.p, pub.topic.n);
    int count = 0;
    if (ok) {
        if (pub.retain) kl_tree_retain(br, m);
        count = kl_route(dp, m, s);
        if (pub.qos == 2) s->in_q2[s->n_in_q2++] = pub.pid;
    }
    pthread_mutex_unlock(&br->lock);
    kl_msg_unref(m);
    if (!ok) {
        if (denied(c, "publish to", pub.topic.p, pub.topic.n)) return;
        if (pub.qos)
            kl_mqtt_send_ack(&c->out, ack, pub.pid, KL_RC_NOT_AUTHORIZED, 1);
        else
            kl_conn_close(c, KL_RC_NOT_AUTHORIZED, "publish not authorized");
        return;
    }
    if (pub.qos)
        kl_mqtt_send_ack(&c->out, ack, pub.pid, count ? 0 : KL_RC_NO_MATCHING_SUBSCRIBERS, v5);
}

struct retained_ctx {
    struct kl_dp *dp;
    struct kl_session *s;
    uint8_t qos;
    uint32_t sub_id;
};

static void on_retained(void *ctx, struct kl_msg *m)
{
    struct retained_ctx *r = ctx;
    if (!kl_dp_allowed(r->dp, &r->s->id, r->s->client_id, "iot:Receive", "topic", KL_MSG_TOPIC(m),
                       m->topic_len))
        return;
    if (m->expires_ms && m->expires_ms <= kl_dp_now_ms()) return;
    kl_sess_enqueue(r->s, m, m->qos < r->qos ? m->qos : r->qos, 1, r->sub_id);
}

void kl_handle_subscribe(struct kl_dp *dp, struct kl_conn *c, const uint8_t *b, size_t n)
{
    struct kl_mqtt_subscribe sub;
    int v5 = c->version == 5;
    int rc = kl_mqtt_parse_subscribe(b, n, v5, &sub);
    if (rc) {
        kl_conn_close(c, rc, "malformed SUBSCRIBE");
        return;
    }
    uint8_t rcs[KL_DP_SUBS_PER_PACKET];
    int deny = 0;
    struct kl_broker *br = &dp->broker;
    pthread_mutex_lock(&br->lock);
    struct kl_session *s = c->sess;
    for (size_t i = 0; s && i < sub.n; i++) {
        struct kl_mqtt_sub_entry *e = &sub.e[i];
        const char *f = (const char *)e->filter.p;
        uint8_t qos = e->opts & 3;
        if (e->filter.n >= 7 && !memcmp(f, "$share/", 7)) {
            rcs[i] = v5 ? KL_RC_SHARED_SUB_UNSUPPORTED : 0x80;
            continue;
        }
        if (kl_topic_filter_ok(e->filter.p, e->filter.n)) {
            rcs[i] = v5 ? KL_RC_TOPIC_FILTER_INVALID : 0x80;
            continue;
        }
        if (!kl_dp_allowed(dp, &s->id, s->client_id, "iot:Subscribe", "topicfilter", f,
                           e->filter.n)) {
            rcs[i] = v5 ? KL_RC_NOT_AUTHORIZED : 0x80;
            kl_dp_log("client %s: subscribe to %.*s denied by policy", c->client_id,
                      (int)e->filter.n, f);
            deny = 1;
            continue;
        }
        int existed = 0;
        int r = kl_tree_subscribe(br, s, f, e->filter.n, e->opts, sub.props.sub_id, &existed);
        if (r) {
            rcs[i] = v5 ? KL_RC_QUOTA_EXCEEDED : 0x80;
            continue;
        }
        atomic_fetch_add(&dp->m.subscriptions, 1);
        rcs[i] = qos;
        int rh = (e->opts >> 4) & 3;
        if (rh == 0 || (rh == 1 && !existed)) {
            struct retained_ctx rctx = {dp, s, qos, sub.props.sub_id};
            kl_tree_retained(br, f, e->filter.n, on_retained, &rctx);
        }
    }
    pthread_mutex_unlock(&br->lock);
    if (!s) return;
    if (deny && !v5) { /* AWS closes a v3.1.1 connection on a denied subscription */
        kl_conn_close(c, KL_RC_NOT_AUTHORIZED, NULL); /* 3.1.1: closed, no DISCONNECT */
        return;
    }
    kl_mqtt_send_suback(&c->out, KL_MQTT_SUBACK, sub.pid, rcs, sub.n, v5);
    kl_pump(dp, c);
}

void kl_handle_unsubscribe(struct kl_dp *dp, struct kl_conn *c, const uint8_t *b, size_t n)
{
    struct kl_mqtt_subscribe sub;
    int v5 = c->version == 5;
    int rc = kl_mqtt_parse_unsubscribe(b, n, v5, &sub);
    if (rc) {
        kl_conn_close(c, rc, "malformed UNSUBSCRIBE");
        return;
    }
    uint8_t rcs[KL_DP_SUBS_PER_PACKET];
    pthread_mutex_lock(&dp->broker.lock);
    struct kl_session *s = c->sess;
    for (size_t i = 0; s && i < sub.n; i++)
        rcs[i] =
            kl_tree_unsubscribe(&dp->broker, s, (const char *)sub.e[i].filter.p, sub.e[i].filter.n)
                ? KL_RC_NO_SUBSCRIPTION
                : 0;
    pthread_mutex_unlock(&dp->broker.lock);
    if (s) kl_mqtt_send_suback(&c->out, KL_MQTT_UNSUBACK, sub.pid, rcs, sub.n, v5);
}

void kl_handle_ack(struct kl_dp *dp, struct kl_conn *c, int type, const uint8_t *b, size_t n)
{
    uint16_t pid;
    uint8_t rc;
    int v5 = c->version == 5;
    int r = kl_mqtt_parse_ack(b, n, v5, &pid, &rc);
    if (r) {
        kl_conn_close(c, r, "malformed acknowledgement");
        return;
    }
    pthread_mutex_lock(&dp->broker.lock);
    struct kl_session *s = c->sess;
    if (!s) {
        pthread_mutex_unlock(&dp->broker.lock);
        return;
    }
    if (type == KL_MQTT_PUBREL) {
        int found = 0;
        for (unsigned i = 0; i < s->n_in_q2; i++)
            if (s->in_q2[i] == pid) {
                s->in_q2[i] = s->in_q2[--s->n_in_q2];
                found = 1;
                break;
            }
        pthread_mutex_unlock(&dp->broker.lock);
        kl_mqtt_send_ack(&c->out, KL_MQTT_PUBCOMP, pid, found ? 0 : KL_RC_PID_NOT_FOUND, v5);
        return;
    }
    int idx = -1;
    for (unsigned i = 0; i < s->ninfl; i++)
        if (s->infl[i].pid == pid) idx = (int)i;
    int send_rel = 0, freed = 0;
    if (idx >= 0) {
        struct kl_inflight *f = &s->infl[idx];
        int done = 0;
        if (type == KL_MQTT_PUBACK && f->qos == 1 && f->state == 1)
            done = 1;
        else if (type == KL_MQTT_PUBREC && f->qos == 2 && f->state == 1) {
            if (rc >= 0x80)
                done = 1; /* the receiver refused it: the flow ends here */
            else {
                f->state = 2;
                send_rel = 1;
            }
        } else if (type == KL_MQTT_PUBCOMP && f->qos == 2 && f->state == 2)
            done = 1;
        if (done) {
            kl_msg_unref(f->m);
            *f = s->infl[--s->ninfl];
            freed = 1;
        }
    }
    pthread_mutex_unlock(&dp->broker.lock);
    if (type == KL_MQTT_PUBREC && (send_rel || idx < 0))
        kl_mqtt_send_ack(&c->out, KL_MQTT_PUBREL, pid, send_rel ? 0 : KL_RC_PID_NOT_FOUND, v5);
    if (freed) kl_pump(dp, c);
}
