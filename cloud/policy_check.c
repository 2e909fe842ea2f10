/* Validation of IoT policy documents (the subset in policy.h). */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "policy.h"

static const char *const kl_actions[] = {"iot:Connect", "iot:Publish", "iot:Subscribe",
                                         "iot:Receive"};

static int fail(char *msg, size_t n, const char *why)
{
    snprintf(msg, n, "%s", why);
    return -1;
}

static int action_ok(const char *a)
{
    for (size_t i = 0; i < sizeof kl_actions / sizeof kl_actions[0]; i++)
        if (kl_policy_glob(a, kl_actions[i])) return 1;
    return 0;
}

/* Only the variables named in policy.h may appear, each closed. */
static int vars_ok(const char *r)
{
    const char *p = r;
    while ((p = strstr(p, "${")) != NULL) {
        const char *e = strchr(p, '}');
        if (!e) return 0;
        size_t n = (size_t)(e - p) + 1;
        if (!(n == strlen("${iot:Connection.Thing.ThingName}") &&
              !strncmp(p, "${iot:Connection.Thing.ThingName}", n)) &&
            !(n == strlen("${iot:ClientId}") && !strncmp(p, "${iot:ClientId}", n)))
            return 0;
        p = e + 1;
    }
    return 1;
}

static int resource_ok(const char *r)
{
    if (!strcmp(r, "*")) return 1;
    if (strncmp(r, "arn:aws:iot:", 12)) return 0;
    /* arn:aws:iot:<region>:<account>:<type>/... ; region/account may be wildcards */
    const char *p = r + 12;
    for (int field = 0; field < 2; field++) {
        p = strchr(p, ':');
        if (!p) return 0;
        p++;
    }
    if (!*p) return 0;
    if (strncmp(p, "client/", 7) && strncmp(p, "topic/", 6) && strncmp(p, "topicfilter/", 12) &&
        strcmp(p, "*") && strncmp(p, "thing/", 6))
        return 0;
    return vars_ok(r);
}

/* Calls ok() on a string or on each string of a non-empty list. */
static int strings_ok(json_t *v, int (*ok)(const char *))
{
    if (json_is_string(v)) return ok(json_string_value(v));
    if (!json_is_array(v) || json_array_size(v) == 0) return 0;
    size_t i;
    json_t *e;
    json_array_foreach(v, i, e)
    {
        if (!json_is_string(e) || !ok(json_string_value(e))) return 0;
    }
    return 1;
}

static int statement_ok(json_t *s, char *msg, size_t n)
{
    if (!json_is_object(s)) return fail(msg, n, "each Statement must be an object");
    const char *k;
    json_t *v;
    json_object_foreach(s, k, v)
    {
        if (strcmp(k, "Effect") && strcmp(k, "Action") && strcmp(k, "Resource") &&
            strcmp(k, "Sid")) {
            snprintf(msg, n, "unsupported statement key %.40s", k);
            return -1;
        }
    }
    const char *eff = json_string_value(json_object_get(s, "Effect"));
    if (!eff || (strcmp(eff, "Allow") && strcmp(eff, "Deny")))
        return fail(msg, n, "Effect must be Allow or Deny");
    if (!strings_ok(json_object_get(s, "Action"), action_ok))
        return fail(msg, n,
                    "Action must name iot:Connect, iot:Publish, iot:Subscribe or "
                    "iot:Receive (wildcards allowed)");
    if (!strings_ok(json_object_get(s, "Resource"), resource_ok))
        return fail(msg, n,
                    "Resource must be \"*\" or arn:aws:iot:REGION:ACCOUNT:"
                    "client|topic|topicfilter/... with known variables only");
    return 0;
}

int kl_policy_check(const char *doc, char *msg, size_t n)
{
    if (!doc) return fail(msg, n, "policyDocument is required");
    size_t chars = 0;
    for (const char *p = doc; *p; p++)
        if (!isspace((unsigned char)*p)) chars++;
    if (chars == 0) return fail(msg, n, "policyDocument is empty");
    if (chars > 2048) return fail(msg, n, "policyDocument exceeds 2048 characters");
    json_error_t je;
    json_t *d = json_loads(doc, JSON_REJECT_DUPLICATES, &je);
    if (!d) return fail(msg, n, "policyDocument is not valid JSON");
    int rc = 0;
    const char *k;
    json_t *v;
    if (!json_is_object(d)) {
        rc = fail(msg, n, "policyDocument must be a JSON object");
        goto out;
    }
    json_object_foreach(d, k, v)
    {
        if (strcmp(k, "Version") && strcmp(k, "Statement") && strcmp(k, "Id")) {
            snprintf(msg, n, "unsupported policy key %.40s", k);
            rc = -1;
            goto out;
        }
    }
    v = json_object_get(d, "Version");
    if (v && (!json_is_string(v) || strcmp(json_string_value(v), "2012-10-17"))) {
        rc = fail(msg, n, "Version must be \"2012-10-17\"");
        goto out;
    }
    v = json_object_get(d, "Statement");
    if (json_is_object(v)) {
        rc = statement_ok(v, msg, n);
    } else if (json_is_array(v) && json_array_size(v) > 0) {
        size_t i;
        json_t *s;
        json_array_foreach(v, i, s)
        {
            if ((rc = statement_ok(s, msg, n)) != 0) break;
        }
    } else {
        rc = fail(msg, n, "Statement must be an object or a non-empty list");
    }
out:
    json_decref(d);
    return rc;
}
