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

/* Substitutes the policy variables into pattern; NULL when one is unset or too long. */
static char *expand(const char *pattern, const struct kl_policy_vars *vars)
{
    size_t cap = strlen(pattern) + 1;
    const char *vals[2] = {vars ? vars->thing_name : NULL, vars ? vars->client_id : NULL};
    static const char *const names[2] = {"${iot:Connection.Thing.ThingName}", "${iot:ClientId}"};
    for (int i = 0; i < 2; i++)
        if (vals[i]) cap += strlen(vals[i]) * 8;
    char *out = malloc(cap + 1);
    if (!out) return NULL;
    size_t o = 0;
    for (const char *p = pattern; *p;) {
        int hit = -1;
        for (int i = 0; i < 2; i++)
            if (!strncmp(p, names[i], strlen(names[i]))) hit = i;
        if (hit >= 0) {
            size_t vl = vals[hit] ? strlen(vals[hit]) : 0;
            if (!vals[hit] || o + vl >= cap) {
                free(out);
                return NULL;
            }
            memcpy(out + o, vals[hit], vl);
            o += vl;
            p += strlen(names[hit]);
        } else {
            if (o + 1 >= cap) {
                free(out);
                return NULL;
            }
            out[o++] = *p++;
        }
    }
    out[o] = 0;
    return out;
}

static int any_match(json_t *v, const char *text, const struct kl_policy_vars *vars,
                     int expand_vars)
{
    json_t *one[1] = {v};
    size_t n = json_is_array(v) ? json_array_size(v) : 1;
    for (size_t i = 0; i < n; i++) {
        json_t *e = json_is_array(v) ? json_array_get(v, i) : one[0];
        const char *pat = json_string_value(e);
        if (!pat) continue;
        if (!expand_vars) {
            if (kl_policy_glob(pat, text)) return 1;
            continue;
        }
        char *x = expand(pat, vars);
        int m = x && kl_policy_glob(x, text);
        free(x);
        if (m) return 1;
    }
    return 0;
}

enum kl_policy_decision kl_policy_eval(const char *doc, const char *action, const char *resource,
                                       const struct kl_policy_vars *vars)
{
    json_t *d = json_loads(doc, 0, NULL);
    if (!d) return KL_POLICY_NONE;
    json_t *st = json_object_get(d, "Statement");
    size_t n = json_is_array(st) ? json_array_size(st) : (json_is_object(st) ? 1 : 0);
    enum kl_policy_decision res = KL_POLICY_NONE;
    for (size_t i = 0; i < n && res != KL_POLICY_DENY; i++) {
        json_t *s = json_is_array(st) ? json_array_get(st, i) : st;
        const char *eff = json_string_value(json_object_get(s, "Effect"));
        if (!eff || !any_match(json_object_get(s, "Action"), action, vars, 0) ||
            !any_match(json_object_get(s, "Resource"), resource, vars, 1))
            continue;
        if (!strcmp(eff, "Deny"))
            res = KL_POLICY_DENY;
        else if (!strcmp(eff, "Allow"))
            res = KL_POLICY_ALLOW;
    }
    json_decref(d);
    return res;
}
