/* IoT policy documents: what kl_policy_check accepts and how kl_policy_eval decides. */
#include <stdio.h>
#include <string.h>

#include "policy.h"

static int fails;
#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c)) {                                                                                \
            fprintf(stderr, "%s:%d: FAIL %s\n", __FILE__, __LINE__, #c);                           \
            fails++;                                                                               \
        }                                                                                          \
    } while (0)

#define ARN "arn:aws:iot:us-east-1:123456789012:"

int main(void)
{
    char msg[160];
    static const char *const good[] = {
        "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Action\":\"iot:*\","
        "\"Resource\":\"*\"}]}",
        "{\"Statement\":{\"Effect\":\"Deny\",\"Action\":[\"iot:Publish\",\"iot:Receive\"],"
        "\"Resource\":[\"" ARN "topic/a/*\"]}}",
        "{\"Statement\":[{\"Sid\":\"x\",\"Effect\":\"Allow\",\"Action\":\"iot:Connect\","
        "\"Resource\":\"" ARN "client/${iot:ClientId}\"}]}",
    };
    static const char *const bad[] = {
        "",
        "   ",
        "[]",
        "not json",
        "{\"Statement\":[]}",
        "{\"Version\":\"2008-10-17\",\"Statement\":{\"Effect\":\"Allow\",\"Action\":\"iot:*\","
        "\"Resource\":\"*\"}}",
        "{\"Statement\":{\"Effect\":\"Maybe\",\"Action\":\"iot:*\",\"Resource\":\"*\"}}",
        "{\"Statement\":{\"Effect\":\"Allow\",\"Action\":\"s3:GetObject\",\"Resource\":\"*\"}}",
        "{\"Statement\":{\"Effect\":\"Allow\",\"Action\":\"iot:*\",\"Resource\":\"arn:aws:s3:::b\"}"
        "}",
        "{\"Statement\":{\"Effect\":\"Allow\",\"Action\":\"iot:*\",\"Resource\":\"" ARN
        "topic/${iot:Unknown}\"}}",
        "{\"Statement\":{\"Effect\":\"Allow\",\"Action\":\"iot:*\",\"Resource\":\"*\","
        "\"Condition\":{}}}",
        "{\"Statement\":{\"Effect\":\"Allow\",\"Action\":[],\"Resource\":\"*\"}}",
        "{\"Statement\":{\"Effect\":\"Allow\",\"Action\":\"iot:*\",\"Resource\":\"*\"},"
        "\"Statement\":{}}",
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        CHECK(kl_policy_check(good[i], msg, sizeof msg) == 0);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        msg[0] = 0;
        CHECK(kl_policy_check(bad[i], msg, sizeof msg) == -1 && msg[0]);
    }
    char big[4096];
    snprintf(big, sizeof big,
             "{\"Statement\":{\"Effect\":\"Allow\",\"Action\":\"iot:*\","
             "\"Resource\":\"" ARN "topic/%02100d\"}}",
             0);
    CHECK(kl_policy_check(big, msg, sizeof msg) == -1 && strstr(msg, "2048"));

    CHECK(kl_policy_glob("a/*", "a/b/c") && kl_policy_glob("a/?", "a/b") &&
          !kl_policy_glob("a/?", "a/bc") && kl_policy_glob("*", "") && !kl_policy_glob("a", "b"));

    const char *doc =
        "{\"Statement\":[{\"Effect\":\"Allow\",\"Action\":[\"iot:Publish\",\"iot:Subscribe\"],"
        "\"Resource\":\"" ARN "topic/dt/${iot:Connection.Thing.ThingName}/*\"},"
        "{\"Effect\":\"Allow\",\"Action\":\"iot:Connect\",\"Resource\":\"" ARN
        "client/${iot:ClientId}\"},"
        "{\"Effect\":\"Deny\",\"Action\":\"iot:Publish\",\"Resource\":\"" ARN
        "topic/dt/*/secret\"}]}";
    struct kl_policy_vars v = {"dev1", "dev1"};
    CHECK(kl_policy_eval(doc, "iot:Publish", ARN "topic/dt/dev1/t", &v) == KL_POLICY_ALLOW);
    CHECK(kl_policy_eval(doc, "iot:Publish", ARN "topic/dt/dev2/t", &v) == KL_POLICY_NONE);
    CHECK(kl_policy_eval(doc, "iot:Publish", ARN "topic/dt/dev1/secret", &v) == KL_POLICY_DENY);
    CHECK(kl_policy_eval(doc, "iot:Receive", ARN "topic/dt/dev1/t", &v) == KL_POLICY_NONE);
    CHECK(kl_policy_eval(doc, "iot:Connect", ARN "client/dev1", &v) == KL_POLICY_ALLOW);
    struct kl_policy_vars none = {NULL, "x"};
    CHECK(kl_policy_eval(doc, "iot:Publish", ARN "topic/dt//t", &none) == KL_POLICY_NONE);
    CHECK(kl_policy_eval("garbage", "iot:Connect", ARN "client/x", &v) == KL_POLICY_NONE);

    /* the compiled form decides the same, also with variable values too long for the
     * stack buffer, and can be evaluated many times */
    struct kl_policy *cp = kl_policy_compile(doc);
    CHECK(cp != NULL);
    for (int round = 0; round < 3; round++) {
        CHECK(kl_policy_eval_compiled(cp, "iot:Publish", ARN "topic/dt/dev1/t", &v) ==
              KL_POLICY_ALLOW);
        CHECK(kl_policy_eval_compiled(cp, "iot:Publish", ARN "topic/dt/dev1/secret", &v) ==
              KL_POLICY_DENY);
        CHECK(kl_policy_eval_compiled(cp, "iot:Receive", ARN "topic/dt/dev1/t", &v) ==
              KL_POLICY_NONE);
        CHECK(kl_policy_eval_compiled(cp, "iot:Publish", ARN "topic/dt//t", &none) ==
              KL_POLICY_NONE);
    }
    char longname[700], topic[900];
    memset(longname, 'x', sizeof longname - 1);
    longname[sizeof longname - 1] = 0;
    snprintf(topic, sizeof topic, ARN "topic/dt/%s/t", longname);
    struct kl_policy_vars lv = {longname, longname};
    CHECK(kl_policy_eval_compiled(cp, "iot:Publish", topic, &lv) == KL_POLICY_ALLOW);
    CHECK(kl_policy_eval(doc, "iot:Publish", topic, &lv) == KL_POLICY_ALLOW);
    kl_policy_free(cp);
    CHECK(kl_policy_compile("garbage") == NULL);
    CHECK(kl_policy_eval_compiled(NULL, "iot:Connect", ARN "client/x", &v) == KL_POLICY_NONE);
    kl_policy_free(NULL);
    if (fails)
        fprintf(stderr, "%d failure(s)\n", fails);
    else
        printf("policy: all checks passed\n");
    return fails ? 1 : 0;
}
