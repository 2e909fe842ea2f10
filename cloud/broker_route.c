/* Routing: matching subscribers get a queue entry (after the Receive policy check); the
 * owner worker of each online receiver then pumps its queue into the connection. */
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "dataplane.h"

void kl_mqtt_send_publish(struct kl_wbuf *w, const struct kl_msg *m, uint8_t qos, uint8_t retain,
                          uint8_t dup, uint16_t pid, uint32_t sub_id, int v5, int64_t now_ms);

struct route_ctx {
    struct kl_dp *dp;
    struct kl_msg *m;
    struct kl_session *from;
    uint64_t seq;
    int count;
};

static void post(struct kl_conn *c, int kill, uint8_t rc)
{
    struct kl_worker *w = c->w;
    pthread_mutex_lock(&w->mb_lock);
    if (kill) {
        c->mb_kill = 1;
        c->mb_kill_rc = rc;
    }
    int was = c->in_mb;
    if (!was) {
        c->in_mb = 1;
        c->mb_prev = NULL;
        c->mb_next = w->mb_head;
        if (w->mb_head) w->mb_head->mb_prev = c;
        w->mb_head = c;
    }
    pthread_mutex_unlock(&w->mb_lock);
    if (!was) {
        uint64_t one = 1;
        ssize_t r = write(w->evfd, &one, sizeof one);
        (void)r; /* a full eventfd counter already means "wake up" */
    }
}

void kl_conn_wake(struct kl_conn *c)
{
    post(c, 0, 0);
}

void kl_conn_kill(struct kl_conn *c, uint8_t rc)
{
    post(c, 1, rc);
}

static void on_match(void *ctx, struct kl_sub *sub)
{
    struct route_ctx *r = ctx;
    struct kl_session *s = sub->sess;
    struct kl_msg *m = r->m;
    if ((sub->opts & 4) && s == r->from) return; /* No Local */
    uint8_t qos = (uint8_t)(sub->opts & 3);
    if (m->qos < qos) qos = m->qos;
    if (s->seen_seq == r->seq) {
        /* overlapping subscriptions: one copy, at the highest QoS granted */
        if (s->qlen) {
            struct kl_qent *e = &s->q[(s->qhead + s->qlen - 1) % s->qcap];
            if (e->m == m && e->qos < qos) e->qos = qos;
        }
        return;
    }
    if (!s->conn && (!s->persistent || qos == 0)) return;
    if (!kl_dp_allowed(r->dp, &s->id, s->client_id, "iot:Receive", "topic", KL_MSG_TOPIC(m),
                       m->topic_len))
        return;
    s->seen_seq = r->seq;
    if (kl_sess_enqueue(s, m, qos, (sub->opts & 8) ? m->retain : 0, sub->sub_id)) {
        atomic_fetch_add(&r->dp->m.msgs_dropped, 1);
        return;
    }
    r->count++;
    if (s->conn) kl_conn_wake(s->conn);
}

int kl_route(struct kl_dp *dp, struct kl_msg *m, struct kl_session *from)
{
    struct route_ctx r = {dp, m, from, ++dp->broker.route_seq, 0};
    kl_tree_match(&dp->broker, KL_MSG_TOPIC(m), m->topic_len, on_match, &r);
    return r.count;
}

static uint16_t free_pid(struct kl_session *s)
{
    for (;;) {
        uint16_t pid = s->next_pid++;
        if (!s->next_pid) s->next_pid = 1;
        if (!pid) continue;
        int used = 0;
        for (unsigned i = 0; i < s->ninfl; i++)
            if (s->infl[i].pid == pid) used = 1;
        if (!used) return pid;
    }
}

static size_t publish_size(const struct kl_msg *m, uint8_t qos, uint32_t sub_id, int v5)
{
    size_t props =
        v5 ? m->props_len + (m->expires_ms ? 5 : 0) + (sub_id ? 1 + kl_varint_len(sub_id) : 0) : 0;
    size_t rl = 2 + m->topic_len + (qos ? 2 : 0) + (v5 ? kl_varint_len((uint32_t)props) : 0) +
                props + m->payload_len;
    return 1 + kl_varint_len((uint32_t)rl) + rl;
}

void kl_pump(struct kl_dp *dp, struct kl_conn *c)
{
    struct kl_broker *b = &dp->broker;
    pthread_mutex_lock(&b->lock);
    struct kl_session *s = c->sess;
    if (!s || c->state != KL_CS_ONLINE) {
        pthread_mutex_unlock(&b->lock);
        return;
    }
    int64_t now = kl_dp_now_ms();
    int v5 = c->version == 5;
    unsigned window = s->peer_recv_max < KL_DP_INFLIGHT ? s->peer_recv_max : KL_DP_INFLIGHT;
    while (s->qlen && c->out.len - c->out_off < KL_DP_WBUF_PUMP && !c->out.oom) {
        struct kl_qent *e = &s->q[s->qhead];
        if (e->qos && s->ninfl >= window) break;
        struct kl_msg *m = e->m;
        int drop = (m->expires_ms && m->expires_ms <= now) ||
                   publish_size(m, e->qos, e->sub_id, v5) > c->peer_max_packet;
        if (!drop && e->qos && !s->infl && !(s->infl = calloc(KL_DP_INFLIGHT, sizeof *s->infl)))
            break; /* out of memory: stays queued */
        if (!drop && e->qos) {
            struct kl_inflight *f = &s->infl[s->ninfl++];
            f->m = m; /* the queue's reference moves here */
            f->pid = free_pid(s);
            f->qos = e->qos;
            f->retain = e->retain;
            f->sub_id = e->sub_id;
            f->state = 1;
            kl_mqtt_send_publish(&c->out, m, e->qos, e->retain, 0, f->pid, e->sub_id, v5, now);
        } else {
            if (!drop) kl_mqtt_send_publish(&c->out, m, 0, e->retain, 0, 0, e->sub_id, v5, now);
            kl_msg_unref(m);
        }
        if (drop)
            atomic_fetch_add(&dp->m.msgs_dropped, 1);
        else
            atomic_fetch_add(&dp->m.msgs_out, 1);
        s->qhead = (s->qhead + 1) % s->qcap;
        s->qlen--;
    }
    /* stopped by the buffer threshold (not the in-flight window): flush() pumps again */
    c->pump_more = s->qlen && c->out.len - c->out_off >= KL_DP_WBUF_PUMP;
    pthread_mutex_unlock(&b->lock);
}

/* Resends what was in flight when a persistent session comes back (DUP set). */
void kl_resend_inflight(struct kl_dp *dp, struct kl_conn *c)
{
    pthread_mutex_lock(&dp->broker.lock);
    struct kl_session *s = c->sess;
    int64_t now = kl_dp_now_ms();
    for (unsigned i = 0; s && i < s->ninfl; i++) {
        struct kl_inflight *f = &s->infl[i];
        if (f->state == 1)
            kl_mqtt_send_publish(&c->out, f->m, f->qos, f->retain, 1, f->pid, f->sub_id,
                                 c->version == 5, now);
        else
            kl_mqtt_send_ack(&c->out, KL_MQTT_PUBREL, f->pid, 0, c->version == 5);
    }
    pthread_mutex_unlock(&dp->broker.lock);
}

void kl_dp_kill_matching(struct kl_dp *dp, const char *cert_id, const char *ca_id, uint8_t rc)
{
    struct kl_broker *b = &dp->broker;
    int n = 0;
    pthread_mutex_lock(&b->lock);
    for (size_t i = 0; i < b->nbuckets; i++)
        for (struct kl_session *s = b->sess[i]; s; s = s->hnext) {
            struct kl_principal *p = s->id.p;
            if (!s->conn || !p) continue;
            if ((cert_id && !strcmp(p->id, cert_id)) || (ca_id && !strcmp(p->ca_id, ca_id))) {
                kl_conn_kill(s->conn, rc);
                n++;
            }
        }
    pthread_mutex_unlock(&b->lock);
    if (n) {
        atomic_fetch_add(&dp->m.revoked_drops, n);
        kl_dp_log("registry change: disconnecting %d connection(s) of %s %.16s", n,
                  cert_id ? "certificate" : "CA", cert_id ? cert_id : ca_id);
    }
}
