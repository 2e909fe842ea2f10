/* Policy decisions of the data plane: the identity's attached policies (deny beats allow,
 * nothing allowed unless a statement allows it), re-read when policies changed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dataplane.h"
#include "policy.h"

int kl_dp_allowed(struct kl_dp *dp, struct kl_ident *id, const char *client_id, const char *action,
                  const char *kind, const char *name, size_t nlen)
{
    struct kl_policy *const *docs;
    size_t ndocs;
    if (id->method == KL_AUTH_DEV) {
        if (!dp->dev_docs) return 1; /* --dev-policy not given: allow everything */
        docs = dp->dev_docs;
        ndocs = dp->ndev_docs;
    } else {
        if (!id->p) return 0;
        if (id->p->policy_gen != atomic_load(&dp->policy_gen)) {
            struct kl_principal *np = kl_auth_principal(dp, id->p->id);
            if (np) {
                kl_principal_unref(id->p);
                id->p = np;
                id->thing = (uint8_t)kl_principal_has_thing(np, client_id);
            }
        }
        docs = id->p->docs;
        ndocs = id->p->ndocs;
    }
    char res[KL_DP_TOPIC_MAX + 128];
    int l = snprintf(res, sizeof res, "arn:aws:iot:%s:%s:%s/", kl_registry_region(dp->reg),
                     kl_registry_account(dp->reg), kind);
    if (l < 0 || (size_t)l + nlen >= sizeof res) return 0;
    memcpy(res + l, name, nlen);
    res[(size_t)l + nlen] = 0;
    if (memchr(name, 0, nlen)) return 0;
    struct kl_policy_vars vars = {id->thing ? client_id : NULL, client_id};
    int allow = 0;
    for (size_t i = 0; i < ndocs; i++) {
        enum kl_policy_decision d = kl_policy_eval_compiled(docs[i], action, res, &vars);
        if (d == KL_POLICY_DENY) return 0;
        if (d == KL_POLICY_ALLOW) allow = 1;
    }
    return allow;
}
