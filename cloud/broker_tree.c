/* The topic tree: one node per level, children in a small open-addressing hash table, the
 * subscribers and the retained message of each node. Subscribers of a filter live on the
 * node the filter names ("+" and "#" are nodes too), so matching a topic walks at most
 * three children per level. */
#include <stdlib.h>
#include <string.h>

#include "dataplane.h"

struct kl_tnode {
    struct kl_tnode *parent;
    struct kl_tnode **kids;
    uint32_t nkids, kcap;
    struct kl_sub *subs;
    struct kl_msg *retained;
    uint16_t len;
    char name[];
};

static uint32_t hname(const char *s, size_t n)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (uint8_t)s[i]) * 16777619u;
    return h;
}

static struct kl_tnode *kid(struct kl_tnode *n, const char *s, size_t len)
{
    if (!n->kcap) return NULL;
    for (uint32_t i = hname(s, len) & (n->kcap - 1);; i = (i + 1) & (n->kcap - 1)) {
        struct kl_tnode *k = n->kids[i];
        if (!k) return NULL;
        if (k->len == len && !memcmp(k->name, s, len)) return k;
    }
}

static void put(struct kl_tnode **tab, uint32_t cap, struct kl_tnode *k)
{
    uint32_t i = hname(k->name, k->len) & (cap - 1);
    while (tab[i])
        i = (i + 1) & (cap - 1);
    tab[i] = k;
}

static struct kl_tnode *kid_add(struct kl_tnode *n, const char *s, size_t len)
{
    if ((n->nkids + 1) * 2 > n->kcap) {
        uint32_t nc = n->kcap ? n->kcap * 2 : 4;
        struct kl_tnode **t = calloc(nc, sizeof *t);
        if (!t) return NULL;
        for (uint32_t i = 0; i < n->kcap; i++)
            if (n->kids[i]) put(t, nc, n->kids[i]);
        free(n->kids);
        n->kids = t;
        n->kcap = nc;
    }
    struct kl_tnode *k = calloc(1, sizeof *k + len + 1);
    if (!k) return NULL;
    k->parent = n;
    k->len = (uint16_t)len;
    memcpy(k->name, s, len);
    put(n->kids, n->kcap, k);
    n->nkids++;
    return k;
}

/* Removes k from its parent's table (backward-shift deletion keeps probe chains whole). */
static void kid_del(struct kl_tnode *n, struct kl_tnode *k)
{
    uint32_t m = n->kcap - 1, i = hname(k->name, k->len) & m;
    while (n->kids[i] != k)
        i = (i + 1) & m;
    n->kids[i] = NULL;
    for (uint32_t j = (i + 1) & m; n->kids[j]; j = (j + 1) & m) {
        struct kl_tnode *x = n->kids[j];
        uint32_t h = hname(x->name, x->len) & m;
        /* move x back into the hole when its home slot is not between hole and j */
        if ((j > i && (h <= i || h > j)) || (j < i && (h <= i && h > j))) {
            n->kids[i] = x;
            n->kids[j] = NULL;
            i = j;
        }
    }
    n->nkids--;
}

static void prune(struct kl_broker *b, struct kl_tnode *n)
{
    while (n && n != b->root && !n->subs && !n->retained && !n->nkids) {
        struct kl_tnode *p = n->parent;
        kid_del(p, n);
        free(n->kids);
        free(n);
        n = p;
    }
}

static struct kl_tnode *root(struct kl_broker *b)
{
    if (!b->root) b->root = calloc(1, sizeof *b->root + 1);
    return b->root;
}

/* Finds (create != 0: makes) the node of a topic or filter. */
static struct kl_tnode *walk(struct kl_broker *b, const char *t, size_t n, int create)
{
    struct kl_tnode *node = root(b);
    size_t pos = 0;
    while (node) {
        size_t e = pos;
        while (e < n && t[e] != '/')
            e++;
        struct kl_tnode *k = kid(node, t + pos, e - pos);
        if (!k && create) k = kid_add(node, t + pos, e - pos);
        node = k;
        if (e >= n) break;
        pos = e + 1;
    }
    return node;
}

/* Wildcards at the first level never match '$' topics, so only these filters can receive the
 * server's $aws/events messages (events_publish.c skips building them otherwise). */
static int aws_filter(const char *f, size_t fl)
{
    return fl >= 5 && !memcmp(f, "$aws/", 5);
}

int kl_tree_subscribe(struct kl_broker *b, struct kl_session *s, const char *f, size_t fl,
                      uint8_t opts, uint32_t sub_id, int *existed)
{
    *existed = 0;
    for (struct kl_sub *x = s->subs; x; x = x->sess_next)
        if (x->flen == fl && !memcmp(x->filter, f, fl)) {
            x->opts = opts;
            x->sub_id = sub_id;
            *existed = 1;
            return 0;
        }
    if (s->nsubs >= KL_DP_SUBS_PER_SESSION) return -2;
    struct kl_tnode *node = walk(b, f, fl, 1);
    struct kl_sub *x = node ? calloc(1, sizeof *x + fl + 1) : NULL;
    if (!x) {
        if (node) prune(b, node);
        return -1;
    }
    memcpy(x->filter, f, fl);
    x->flen = (uint16_t)fl;
    x->opts = opts;
    x->sub_id = sub_id;
    x->sess = s;
    x->node = node;
    x->node_next = node->subs;
    if (node->subs) node->subs->node_prev = x;
    node->subs = x;
    x->sess_next = s->subs;
    s->subs = x;
    s->nsubs++;
    if (aws_filter(f, fl)) atomic_fetch_add(&b->aws_subs, 1);
    return 0;
}

static void unlink_sub(struct kl_broker *b, struct kl_sub *x)
{
    if (aws_filter(x->filter, x->flen)) atomic_fetch_sub(&b->aws_subs, 1);
    struct kl_tnode *node = x->node;
    if (x->node_prev)
        x->node_prev->node_next = x->node_next;
    else
        node->subs = x->node_next;
    if (x->node_next) x->node_next->node_prev = x->node_prev;
    free(x);
    prune(b, node);
}

int kl_tree_unsubscribe(struct kl_broker *b, struct kl_session *s, const char *f, size_t fl)
{
    for (struct kl_sub **pp = &s->subs; *pp; pp = &(*pp)->sess_next) {
        struct kl_sub *x = *pp;
        if (x->flen == fl && !memcmp(x->filter, f, fl)) {
            *pp = x->sess_next;
            s->nsubs--;
            unlink_sub(b, x);
            return 0;
        }
    }
    return -1;
}

void kl_tree_unsubscribe_all(struct kl_broker *b, struct kl_session *s)
{
    while (s->subs) {
        struct kl_sub *x = s->subs;
        s->subs = x->sess_next;
        unlink_sub(b, x);
    }
    s->nsubs = 0;
}

static void emit(struct kl_tnode *n, kl_tree_match_fn fn, void *ctx)
{
    for (struct kl_sub *x = n ? n->subs : NULL, *nx; x; x = nx) {
        nx = x->node_next;
        fn(ctx, x);
    }
}

static void match(struct kl_tnode *n, const char *t, size_t tl, size_t pos, int top,
                  kl_tree_match_fn fn, void *ctx)
{
    if (pos > tl) { /* past the last level: this node, and "#" below it ("a/#" matches "a") */
        emit(n, fn, ctx);
        emit(kid(n, "#", 1), fn, ctx);
        return;
    }
    size_t e = pos;
    while (e < tl && t[e] != '/')
        e++;
    /* topics starting with '$' are not matched by a leading wildcard */
    if (!(top && t[0] == '$')) {
        emit(kid(n, "#", 1), fn, ctx);
        struct kl_tnode *p = kid(n, "+", 1);
        if (p) match(p, t, tl, e + 1, 0, fn, ctx);
    }
    struct kl_tnode *k = kid(n, t + pos, e - pos);
    if (k) match(k, t, tl, e + 1, 0, fn, ctx);
}

void kl_tree_match(struct kl_broker *b, const char *t, size_t tl, kl_tree_match_fn fn, void *ctx)
{
    if (b->root) match(b->root, t, tl, 0, 1, fn, ctx);
}

int kl_tree_retain(struct kl_broker *b, struct kl_msg *m)
{
    int clear = m->payload_len == 0;
    struct kl_tnode *n = walk(b, KL_MSG_TOPIC(m), m->topic_len, !clear);
    if (!n) return clear ? 0 : -1;
    if (n->retained) {
        kl_msg_unref(n->retained);
        n->retained = NULL;
        b->retained--;
    }
    if (clear) {
        prune(b, n);
        return 0;
    }
    kl_msg_ref(m);
    n->retained = m;
    b->retained++;
    return 0;
}

static void all_retained(struct kl_tnode *n, int top, kl_tree_retained_fn fn, void *ctx)
{
    if (n->retained) fn(ctx, n->retained);
    for (uint32_t i = 0; i < n->kcap; i++) {
        struct kl_tnode *k = n->kids[i];
        if (k && !(top && k->len && k->name[0] == '$')) all_retained(k, 0, fn, ctx);
    }
}

static void retained(struct kl_tnode *n, const char *f, size_t fl, size_t pos, int top,
                     kl_tree_retained_fn fn, void *ctx)
{
    if (pos > fl) {
        if (n->retained) fn(ctx, n->retained);
        return;
    }
    size_t e = pos;
    while (e < fl && f[e] != '/')
        e++;
    if (e - pos == 1 && f[pos] == '#') {
        if (!top && n->retained) fn(ctx, n->retained); /* "a/#" matches "a" */
        for (uint32_t i = 0; i < n->kcap; i++) {
            struct kl_tnode *k = n->kids[i];
            if (k && !(top && k->len && k->name[0] == '$')) all_retained(k, 0, fn, ctx);
        }
        return;
    }
    if (e - pos == 1 && f[pos] == '+') {
        for (uint32_t i = 0; i < n->kcap; i++) {
            struct kl_tnode *k = n->kids[i];
            if (k && !(top && k->len && k->name[0] == '$')) retained(k, f, fl, e + 1, 0, fn, ctx);
        }
        return;
    }
    struct kl_tnode *k = kid(n, f + pos, e - pos);
    if (k) retained(k, f, fl, e + 1, 0, fn, ctx);
}

void kl_tree_retained(struct kl_broker *b, const char *f, size_t fl, kl_tree_retained_fn fn,
                      void *ctx)
{
    if (b->root) retained(b->root, f, fl, 0, 1, fn, ctx);
}

static void free_node(struct kl_tnode *n)
{
    for (uint32_t i = 0; i < n->kcap; i++)
        if (n->kids[i]) free_node(n->kids[i]);
    kl_msg_unref(n->retained);
    free(n->kids);
    free(n);
}

void kl_tree_free(struct kl_broker *b)
{
    if (b->root) free_node(b->root);
    b->root = NULL;
}
