/*
 * AWS IoT policy documents, the subset keylinkd understands: Version "2012-10-17",
 * Statement (one or a list) with Effect Allow|Deny, Action among iot:Connect,
 * iot:Publish, iot:Subscribe, iot:Receive (wildcards * and ? allowed, e.g. "iot:*"),
 * Resource "*" or arn:aws:iot:<region>:<account>:client|topic|topicfilter/... with
 * wildcards and the variables ${iot:Connection.Thing.ThingName} and ${iot:ClientId}.
 * docs/registry.md ("Policies") has the rules.
 */
#ifndef KL_CLOUD_POLICY_H
#define KL_CLOUD_POLICY_H

#include <stddef.h>

/* 0 when doc is an acceptable policy; else -1 and a reason in msg. */
int kl_policy_check(const char *doc, char *msg, size_t msg_len);

struct kl_policy_vars {
    const char *thing_name; /* NULL when the connection has no thing */
    const char *client_id;
};
enum kl_policy_decision { KL_POLICY_NONE = 0, KL_POLICY_ALLOW = 1, KL_POLICY_DENY = -1 };
/* Evaluates one document for action ("iot:Publish") on resource (a full ARN). An explicit
 * Deny wins over Allow; a statement whose variables are unset matches nothing. A document
 * that does not parse gives KL_POLICY_NONE. */
enum kl_policy_decision kl_policy_eval(const char *doc, const char *action, const char *resource,
                                       const struct kl_policy_vars *vars);

/* The same, with the document parsed once: kl_policy_compile returns an immutable form
 * that any number of threads may evaluate at once (NULL when doc does not parse or memory
 * ran out; evaluating NULL gives KL_POLICY_NONE). Free it with kl_policy_free. */
struct kl_policy;
struct kl_policy *kl_policy_compile(const char *doc);
enum kl_policy_decision kl_policy_eval_compiled(const struct kl_policy *p, const char *action,
                                                const char *resource,
                                                const struct kl_policy_vars *vars);
void kl_policy_free(struct kl_policy *p);
/* Glob match with * (any run) and ? (one character). 1 on match. */
int kl_policy_glob(const char *pattern, const char *text);

#endif
