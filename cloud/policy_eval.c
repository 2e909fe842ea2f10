/* Evaluation of IoT policy documents for the data plane (deny beats allow). */
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "policy.h"

int kl_policy_glob(const char *p, const char *t)
{
    const char *star = NULL, *mark = NULL;
    while (*t) {
        if (*p == '?' || *p == *t) {
            p++;
            t++;
        } else if (*p == '*') {
            star = p++;
            mark = t;
        } else if (star) {
            p = star + 1;
            t = ++mark;
        } else {
            return 0;
        }
    }
    while (*p == '*')
        p++;
    return *p == 0;
}

static const char *const var_names[2] = {"${iot:Connection.Thing.ThingName}", "${iot:ClientId}"};

/* A document reduced to what evaluation needs: immutable once built, so threads share it. */
struct kl_pstmt {
    int deny;
    size_t na, nr;
    char **act, **res;
    unsigned char *has_var; /* per resource: contains "${" */
};
struct kl_policy {
    size_t n;
    struct kl_pstmt *st;
};

void kl_policy_free(struct kl_policy *p)
{
    if (!p) return;
    for (size_t i = 0; i < p->n; i++) {
        for (size_t k = 0; k < p->st[i].na; k++)
            free(p->st[i].act[k]);
        for (size_t k = 0; k < p->st[i].nr; k++)
            free(p->st[i].res[k]);
        free(p->st[i].act);
        free(p->st[i].res);
        free(p->st[i].has_var);
    }
    free(p->st);
    free(p);
}

/* Copies a string or list of strings (non-strings are skipped). -1 on no memory. */
static int strings(json_t *v, char ***out, size_t *n)
{
    size_t cap = json_is_array(v) ? json_array_size(v) : 1;
    *out = calloc(cap ? cap : 1, sizeof **out);
    *n = 0;
    if (!*out) return -1;
    for (size_t i = 0; i < cap; i++) {
        const char *s = json_string_value(json_is_array(v) ? json_array_get(v, i) : v);
        if (!s) continue;
        if (!((*out)[*n] = strdup(s))) return -1;
        (*n)++;
    }
    return 0;
}

struct kl_policy *kl_policy_compile(const char *doc)
{
    json_t *d = doc ? json_loads(doc, 0, NULL) : NULL;
    if (!d) return NULL;
    json_t *st = json_object_get(d, "Statement");
    size_t n = json_is_array(st) ? json_array_size(st) : (json_is_object(st) ? 1 : 0);
    struct kl_policy *p = calloc(1, sizeof *p);
    if (p) p->st = calloc(n ? n : 1, sizeof *p->st);
    int bad = !p || !p->st;
    for (size_t i = 0; i < n && !bad; i++) {
        json_t *s = json_is_array(st) ? json_array_get(st, i) : st;
        const char *eff = json_string_value(json_object_get(s, "Effect"));
        if (!eff || (strcmp(eff, "Allow") && strcmp(eff, "Deny"))) continue;
        struct kl_pstmt *t = &p->st[p->n++];
        t->deny = !strcmp(eff, "Deny");
        bad = strings(json_object_get(s, "Action"), &t->act, &t->na) ||
              strings(json_object_get(s, "Resource"), &t->res, &t->nr) ||
              !(t->has_var = calloc(t->nr ? t->nr : 1, 1));
        for (size_t k = 0; !bad && k < t->nr; k++)
            t->has_var[k] = strstr(t->res[k], "${") != NULL;
    }
    json_decref(d);
    if (bad) {
        kl_policy_free(p);
        return NULL;
    }
    return p;
}

/* Substitutes the variables into pattern, in buf when it fits, else in a malloc'd string
 * (*heap). NULL when a variable is unset. */
static const char *expand_into(const char *pattern, const struct kl_policy_vars *vars, char *buf,
                               size_t cap, char **heap)
{
    const char *vals[2] = {vars ? vars->thing_name : NULL, vars ? vars->client_id : NULL};
    size_t need = 1;
    for (const char *p = pattern; *p;) {
        int hit = -1;
        for (int i = 0; i < 2; i++)
            if (!strncmp(p, var_names[i], strlen(var_names[i]))) hit = i;
        if (hit < 0) {
            need++;
            p++;
            continue;
        }
        if (!vals[hit]) return NULL;
        need += strlen(vals[hit]);
        p += strlen(var_names[hit]);
    }
    char *out = buf;
    *heap = NULL;
    if (need > cap) {
        if (!(out = *heap = malloc(need))) return NULL;
    }
    size_t o = 0;
    for (const char *p = pattern; *p;) {
        int hit = -1;
        for (int i = 0; i < 2; i++)
            if (!strncmp(p, var_names[i], strlen(var_names[i]))) hit = i;
        if (hit < 0) {
            out[o++] = *p++;
            continue;
        }
        size_t vl = strlen(vals[hit]);
        memcpy(out + o, vals[hit], vl);
        o += vl;
        p += strlen(var_names[hit]);
    }
    out[o] = 0;
    return out;
}

enum kl_policy_decision kl_policy_eval_compiled(const struct kl_policy *p, const char *action,
                                                const char *resource,
                                                const struct kl_policy_vars *vars)
{
    if (!p) return KL_POLICY_NONE;
    enum kl_policy_decision res = KL_POLICY_NONE;
    for (size_t i = 0; i < p->n; i++) {
        const struct kl_pstmt *t = &p->st[i];
        if (!t->deny && res == KL_POLICY_ALLOW) continue; /* only a Deny can change it */
        int act = 0, hit = 0;
        for (size_t k = 0; k < t->na && !act; k++)
            act = kl_policy_glob(t->act[k], action);
        for (size_t k = 0; act && k < t->nr && !hit; k++) {
            if (!t->has_var[k]) {
                hit = kl_policy_glob(t->res[k], resource);
                continue;
            }
            char buf[512], *heap = NULL;
            const char *x = expand_into(t->res[k], vars, buf, sizeof buf, &heap);
            hit = x && kl_policy_glob(x, resource);
            free(heap);
        }
        if (!hit) continue;
        if (t->deny) return KL_POLICY_DENY;
        res = KL_POLICY_ALLOW;
    }
    return res;
}

enum kl_policy_decision kl_policy_eval(const char *doc, const char *action, const char *resource,
                                       const struct kl_policy_vars *vars)
{
    struct kl_policy *p = kl_policy_compile(doc);
    enum kl_policy_decision d = kl_policy_eval_compiled(p, action, resource, vars);
    kl_policy_free(p);
    return d;
}
