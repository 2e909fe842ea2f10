/* Sessions: the client-id table, bounded message queues, expiry of offline sessions. */
#include <stdlib.h>
#include <string.h>

#include "dataplane.h"

static size_t hash_str(const char *s)
{
    size_t h = 1469598103934665603ull;
    while (*s)
        h = (h ^ (uint8_t)*s++) * 1099511628211ull;
    return h;
}

int kl_broker_init(struct kl_broker *b)
{
    memset(b, 0, sizeof *b);
    if (pthread_mutex_init(&b->lock, NULL)) return -1;
    b->nbuckets = 1024;
    b->sess = calloc(b->nbuckets, sizeof *b->sess);
    return b->sess ? 0 : -1;
}

struct kl_session *kl_sess_find(struct kl_broker *b, const char *id)
{
    for (struct kl_session *s = b->sess[hash_str(id) & (b->nbuckets - 1)]; s; s = s->hnext)
        if (!strcmp(s->client_id, id)) return s;
    return NULL;
}

static void grow(struct kl_broker *b)
{
    size_t nb = b->nbuckets * 2;
    struct kl_session **t = calloc(nb, sizeof *t);
    if (!t) return; /* keep the old table: longer chains, still correct */
    for (size_t i = 0; i < b->nbuckets; i++)
        for (struct kl_session *s = b->sess[i], *nx; s; s = nx) {
            nx = s->hnext;
            size_t h = hash_str(s->client_id) & (nb - 1);
            s->hnext = t[h];
            t[h] = s;
        }
    free(b->sess);
    b->sess = t;
    b->nbuckets = nb;
}

struct kl_session *kl_sess_create(struct kl_broker *b, const char *id)
{
    struct kl_session *s = calloc(1, sizeof *s);
    if (!s || !(s->client_id = strdup(id))) {
        free(s);
        return NULL;
    }
    s->next_pid = 1;
    s->peer_recv_max = 65535;
    if (b->nsess >= b->nbuckets) grow(b);
    size_t h = hash_str(id) & (b->nbuckets - 1);
    s->hnext = b->sess[h];
    b->sess[h] = s;
    b->nsess++;
    return s;
}

void kl_sess_destroy(struct kl_broker *b, struct kl_session *s)
{
    struct kl_session **pp = &b->sess[hash_str(s->client_id) & (b->nbuckets - 1)];
    while (*pp && *pp != s)
        pp = &(*pp)->hnext;
    if (*pp) *pp = s->hnext;
    b->nsess--;
    kl_tree_unsubscribe_all(b, s);
    for (uint32_t i = 0; i < s->qlen; i++)
        kl_msg_unref(s->q[(s->qhead + i) % s->qcap].m);
    free(s->q);
    for (unsigned i = 0; i < s->ninfl; i++)
        kl_msg_unref(s->infl[i].m);
    free(s->infl);
    kl_msg_unref(s->will);
    if (s->id.p) kl_principal_unref(s->id.p);
    free(s->client_id);
    free(s);
}

int kl_sess_enqueue(struct kl_session *s, struct kl_msg *m, uint8_t qos, uint8_t retain,
                    uint32_t sub_id)
{
    if (s->qlen >= KL_DP_QUEUE_MAX) return -1;
    if (s->qlen == s->qcap) {
        uint32_t nc = s->qcap ? s->qcap * 2 : 8;
        if (nc > KL_DP_QUEUE_MAX) nc = KL_DP_QUEUE_MAX;
        struct kl_qent *q = malloc(nc * sizeof *q);
        if (!q) return -1;
        for (uint32_t i = 0; i < s->qlen; i++)
            q[i] = s->q[(s->qhead + i) % s->qcap];
        free(s->q);
        s->q = q;
        s->qcap = nc;
        s->qhead = 0;
    }
    struct kl_qent *e = &s->q[(s->qhead + s->qlen) % s->qcap];
    kl_msg_ref(m);
    e->m = m;
    e->qos = qos;
    e->retain = retain;
    e->sub_id = sub_id;
    s->qlen++;
    return 0;
}

void kl_sess_fire_will(struct kl_dp *dp, struct kl_session *s)
{
    struct kl_msg *w = s->will;
    s->will = NULL;
    s->will_at = 0;
    if (!w) return;
    /* the Publish right to the will topic was checked at CONNECT */
    if (w->retain) kl_tree_retain(&dp->broker, w);
    kl_route(dp, w, s);
    kl_msg_unref(w);
}

void kl_sess_expire(struct kl_dp *dp, int64_t now)
{
    struct kl_broker *b = &dp->broker;
    for (size_t i = 0; i < b->nbuckets; i++)
        for (struct kl_session *s = b->sess[i], *nx; s; s = nx) {
            nx = s->hnext;
            if (s->conn) continue;
            if (s->will && s->will_at && s->will_at <= now) kl_sess_fire_will(dp, s);
            if (s->expire_ms && s->expire_ms <= now) {
                kl_sess_fire_will(dp, s); /* a session ending sends its delayed will */
                kl_sess_destroy(b, s);
            }
        }
}

void kl_broker_free(struct kl_broker *b)
{
    if (!b->sess) return;
    for (size_t i = 0; i < b->nbuckets; i++)
        while (b->sess[i])
            kl_sess_destroy(b, b->sess[i]);
    free(b->sess);
    b->sess = NULL;
    kl_tree_free(b);
    pthread_mutex_destroy(&b->lock);
}
