/* What the registry says about certificates and CAs, cached in memory: a connection looks
 * its certificate up by SHA-256 instead of re-verifying a chain. The registry hook
 * invalidates entries and bumps auth_epoch; an entry read from the database while the
 * epoch moved is not cached (it may predate the change). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/pem.h>
#include <openssl/x509.h>

#include "dataplane.h"
#include "policy.h"
#include "x509_check.h"

#define CACHE_MAX 500000

static size_t hid(const char *id)
{
    size_t h = 0;
    for (int i = 0; i < 16 && id[i]; i++)
        h = (h << 4) | (size_t)(id[i] <= '9' ? id[i] - '0' : id[i] - 'a' + 10);
    return h;
}

void kl_principal_unref(struct kl_principal *p)
{
    if (!p || atomic_fetch_sub(&p->refs, 1) != 1) return;
    for (size_t i = 0; i < p->nthings; i++)
        free(p->things[i]);
    for (size_t i = 0; i < p->ndocs; i++)
        kl_policy_free(p->docs[i]);
    free(p->things);
    free(p->docs);
    EVP_PKEY_free(p->pub);
    X509_free(p->x509);
    free(p);
}

int kl_principal_has_thing(const struct kl_principal *p, const char *thing)
{
    for (size_t i = 0; p && i < p->nthings; i++)
        if (!strcmp(p->things[i], thing)) return 1;
    return 0;
}

void kl_auth_cache_init(struct kl_auth_cache *c)
{
    memset(c, 0, sizeof *c);
    pthread_rwlock_init(&c->lock, NULL);
    c->cap = 4096;
    c->tab = calloc(c->cap, sizeof *c->tab);
    c->ca_stale = 1;
}

static void free_cas(struct kl_auth_cache *c)
{
    for (size_t i = 0; i < c->nca; i++)
        X509_free(c->ca[i].x509);
    free(c->ca);
    c->ca = NULL;
    c->nca = 0;
}

static void flush_locked(struct kl_auth_cache *c)
{
    for (size_t i = 0; c->tab && i < c->cap; i++)
        while (c->tab[i]) {
            struct kl_principal *p = c->tab[i];
            c->tab[i] = p->hnext;
            kl_principal_unref(p);
        }
    c->n = 0;
}

void kl_auth_cache_free(struct kl_auth_cache *c)
{
    flush_locked(c);
    free(c->tab);
    free_cas(c);
    pthread_rwlock_destroy(&c->lock);
}

static int add_str(char ***arr, size_t *n, const char *s)
{
    char **na = realloc(*arr, (*n + 1) * sizeof *na);
    if (!na) return 1;
    *arr = na;
    if (!(na[*n] = strdup(s))) return 1;
    (*n)++;
    return 0;
}

static int thing_cb(void *ctx, const char *s)
{
    struct kl_principal *p = ctx;
    return add_str(&p->things, &p->nthings, s);
}

static int doc_cb(void *ctx, const char *s)
{
    struct kl_principal *p = ctx;
    /* parsed once here, evaluated for every action of every connection of this principal */
    struct kl_policy *pol = kl_policy_compile(s);
    if (!pol) return 0; /* a document that does not parse allows nothing */
    struct kl_policy **na = realloc(p->docs, (p->ndocs + 1) * sizeof *na);
    if (!na) {
        kl_policy_free(pol);
        return 1;
    }
    p->docs = na;
    p->docs[p->ndocs++] = pol;
    return 0;
}

/* Reads one certificate's state from the registry; NULL when unknown (or on error). */
static struct kl_principal *load(struct kl_dp *dp, const char *id)
{
    struct kl_reg_cert rc;
    struct kl_reg_err err;
    if (kl_reg_cert_get(dp->reg, id, 1, &rc, &err)) return NULL;
    struct kl_principal *p = calloc(1, sizeof *p);
    if (!p) {
        kl_reg_cert_clear(&rc);
        return NULL;
    }
    atomic_init(&p->refs, 1);
    p->policy_gen = atomic_load(&dp->policy_gen);
    snprintf(p->id, sizeof p->id, "%s", rc.id);
    snprintf(p->ca_id, sizeof p->ca_id, "%s", rc.ca_id);
    snprintf(p->arn, sizeof p->arn, "%s", rc.arn);
    snprintf(p->status, sizeof p->status, "%s", rc.status);
    p->not_before = rc.not_before;
    p->not_after = rc.not_after;
    p->x509 = rc.pem ? kl_x509_from_pem(rc.pem) : NULL;
    if (p->x509) p->pub = X509_get_pubkey(p->x509);
    kl_reg_cert_clear(&rc);
    int bad = 0;
    /* every thing of the principal (a page of 250 is more than AWS allows) */
    struct kl_reg_page page = {.limit = 250};
    if (kl_reg_principal_things(dp->reg, p->arn, &page, thing_cb, p, &err)) bad = 1;
    if (!bad && kl_reg_policies_for_principal(dp->reg, p->arn, doc_cb, p, &err)) bad = 1;
    if (bad) {
        kl_principal_unref(p);
        return NULL;
    }
    return p;
}

struct kl_principal *kl_auth_principal(struct kl_dp *dp, const char *id)
{
    struct kl_auth_cache *c = &dp->cache;
    pthread_rwlock_rdlock(&c->lock);
    struct kl_principal *p = c->tab[hid(id) & (c->cap - 1)];
    while (p && strcmp(p->id, id))
        p = p->hnext;
    if (p) atomic_fetch_add(&p->refs, 1);
    pthread_rwlock_unlock(&c->lock);
    if (p) return p;
    uint64_t epoch = atomic_load(&dp->auth_epoch);
    p = load(dp, id);
    if (!p) return NULL;
    pthread_rwlock_wrlock(&c->lock);
    if (epoch == atomic_load(&dp->auth_epoch)) {
        if (c->n >= CACHE_MAX) flush_locked(c);
        size_t h = hid(id) & (c->cap - 1);
        struct kl_principal *x = c->tab[h];
        while (x && strcmp(x->id, id))
            x = x->hnext;
        if (!x) {
            atomic_fetch_add(&p->refs, 1);
            p->hnext = c->tab[h];
            c->tab[h] = p;
            c->n++;
        }
    }
    pthread_rwlock_unlock(&c->lock);
    return p;
}

struct kl_principal *kl_auth_principal_x509(struct kl_dp *dp, X509 *x)
{
    char id[KL_REG_ID_HEX];
    if (kl_x509_id(x, id)) return NULL;
    return kl_auth_principal(dp, id);
}

static void invalidate(struct kl_dp *dp, const char *id)
{
    struct kl_auth_cache *c = &dp->cache;
    pthread_rwlock_wrlock(&c->lock);
    for (struct kl_principal **pp = &c->tab[hid(id) & (c->cap - 1)]; *pp; pp = &(*pp)->hnext)
        if (!strcmp((*pp)->id, id)) {
            struct kl_principal *p = *pp;
            *pp = p->hnext;
            c->n--;
            kl_principal_unref(p);
            break;
        }
    pthread_rwlock_unlock(&c->lock);
}

/* ---- CAs ------------------------------------------------------------------------------- */

struct ca_list {
    char (*ids)[KL_REG_ID_HEX];
    size_t n;
};

static int ca_cb(void *ctx, const struct kl_reg_ca *ca)
{
    struct ca_list *l = ctx;
    void *na = realloc(l->ids, (l->n + 1) * sizeof *l->ids);
    if (!na) return 1;
    l->ids = na;
    snprintf(l->ids[l->n++], KL_REG_ID_HEX, "%s", ca->id);
    return 0;
}

/* Reloads every registered CA (caller holds the write lock). */
static void reload_cas(struct kl_dp *dp)
{
    struct kl_auth_cache *c = &dp->cache;
    struct ca_list l = {0};
    struct kl_reg_err err;
    struct kl_reg_page page = {.limit = 250};
    char keep[sizeof page.next_token];
    for (;;) {
        if (kl_reg_ca_list(dp->reg, &page, ca_cb, &l, &err) || !page.next_token[0]) break;
        snprintf(keep, sizeof keep, "%s", page.next_token);
        page.token = keep;
    }
    free_cas(c);
    c->ca = calloc(l.n ? l.n : 1, sizeof *c->ca);
    for (size_t i = 0; c->ca && i < l.n; i++) {
        struct kl_reg_ca ca;
        if (kl_reg_ca_get(dp->reg, l.ids[i], 1, &ca, &err)) continue;
        struct kl_ca_entry *e = &c->ca[c->nca];
        e->x509 = ca.pem ? kl_x509_from_pem(ca.pem) : NULL;
        if (e->x509) {
            snprintf(e->id, sizeof e->id, "%s", ca.id);
            e->active = !strcmp(ca.status, "ACTIVE");
            e->auto_reg = !strcmp(ca.auto_reg, "ENABLE");
            c->nca++;
        }
        kl_reg_ca_clear(&ca);
    }
    free(l.ids);
    c->ca_stale = 0;
    c->ca_loaded_ms = kl_dp_now_ms();
}

static void ensure_cas(struct kl_dp *dp, int force)
{
    struct kl_auth_cache *c = &dp->cache;
    if (!force) { /* the common case, every handshake: a shared lock only */
        pthread_rwlock_rdlock(&c->lock);
        int stale = c->ca_stale;
        pthread_rwlock_unlock(&c->lock);
        if (!stale) return;
    }
    pthread_rwlock_wrlock(&c->lock);
    /* a miss reloads, at most every 50 ms (a flood of strangers must not hammer the db) */
    if (c->ca_stale || (force && kl_dp_now_ms() - c->ca_loaded_ms >= 50)) reload_cas(dp);
    pthread_rwlock_unlock(&c->lock);
}

int kl_auth_ca_state(struct kl_dp *dp, const char *id)
{
    struct kl_auth_cache *c = &dp->cache;
    for (int pass = 0; pass < 2; pass++) {
        ensure_cas(dp, pass);
        pthread_rwlock_rdlock(&c->lock);
        int st = -1;
        for (size_t i = 0; i < c->nca; i++)
            if (!strcmp(c->ca[i].id, id)) st = c->ca[i].active;
        pthread_rwlock_unlock(&c->lock);
        if (st >= 0) return st;
    }
    return -1;
}

int kl_auth_find_issuer(struct kl_dp *dp, X509 *x, char ca_id[KL_REG_ID_HEX], int *active,
                        int *auto_reg)
{
    struct kl_auth_cache *c = &dp->cache;
    X509_NAME *iss = X509_get_issuer_name(x);
    for (int pass = 0; pass < 2; pass++) {
        ensure_cas(dp, pass);
        pthread_rwlock_rdlock(&c->lock);
        int found = -1;
        for (size_t i = 0; i < c->nca && found < 0; i++) {
            struct kl_ca_entry *e = &c->ca[i];
            if (X509_NAME_cmp(iss, X509_get_subject_name(e->x509))) continue;
            EVP_PKEY *k = X509_get0_pubkey(e->x509);
            if (k && X509_verify(x, k) == 1) {
                found = (int)i;
                snprintf(ca_id, KL_REG_ID_HEX, "%s", e->id);
                *active = e->active;
                *auto_reg = e->auto_reg;
            }
        }
        pthread_rwlock_unlock(&c->lock);
        if (found >= 0) return 0;
    }
    return -1;
}

/* ---- the registry hook ------------------------------------------------------------------ */

void kl_auth_on_change(void *ctx, enum kl_reg_change what, const char *id, const char *status)
{
    struct kl_dp *dp = ctx;
    struct kl_auth_cache *c = &dp->cache;
    switch (what) {
    case KL_REG_CHANGE_CERT_STATUS:
    case KL_REG_CHANGE_CERT_DELETED:
        invalidate(dp, id);
        atomic_fetch_add(&dp->auth_epoch, 1);
        if (what == KL_REG_CHANGE_CERT_DELETED || strcmp(status, "ACTIVE"))
            kl_dp_kill_matching(dp, id, NULL, KL_RC_NOT_AUTHORIZED);
        break;
    case KL_REG_CHANGE_CA_STATUS:
    case KL_REG_CHANGE_CA_DELETED:
        pthread_rwlock_wrlock(&c->lock);
        c->ca_stale = 1;
        pthread_rwlock_unlock(&c->lock);
        atomic_fetch_add(&dp->auth_epoch, 1);
        if (what == KL_REG_CHANGE_CA_DELETED || strcmp(status, "ACTIVE"))
            kl_dp_kill_matching(dp, NULL, id, KL_RC_NOT_AUTHORIZED);
        break;
    case KL_REG_CHANGE_THING_PRINCIPAL: {
        invalidate(dp, id);
        atomic_fetch_add(&dp->auth_epoch, 1);
        atomic_fetch_add(&dp->policy_gen, 1); /* the thing name may have changed */
        struct kl_principal *p = kl_auth_principal(dp, id);
        if (!p || !p->nthings) kl_dp_kill_matching(dp, id, NULL, KL_RC_NOT_AUTHORIZED);
        kl_principal_unref(p);
        break;
    }
    case KL_REG_CHANGE_POLICY:
    case KL_REG_CHANGE_THING_DELETED:
        pthread_rwlock_wrlock(&c->lock);
        flush_locked(c);
        pthread_rwlock_unlock(&c->lock);
        atomic_fetch_add(&dp->auth_epoch, 1);
        atomic_fetch_add(&dp->policy_gen, 1);
        break;
    }
}
