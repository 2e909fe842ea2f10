/* Server-originated messages: lifecycle (presence) events and certificate registration
 * events, in AWS IoT's topics and JSON shapes, routed like any other message (subscribers
 * need the Receive right). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include <jansson.h>
#include <openssl/rand.h>

#include "dataplane.h"

static int64_t now_ms_wall(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

static void publish_json(struct kl_dp *dp, const char *topic, json_t *o)
{
    char *txt = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    if (!txt) return;
    struct kl_msg *m = kl_msg_new((const uint8_t *)topic, strlen(topic), NULL, 0,
                                  (const uint8_t *)txt, strlen(txt), 1, 0);
    free(txt);
    if (!m) return;
    pthread_mutex_lock(&dp->broker.lock);
    kl_route(dp, m, NULL);
    pthread_mutex_unlock(&dp->broker.lock);
    kl_msg_unref(m);
}

void kl_event_presence(struct kl_dp *dp, struct kl_conn *c, const char *client_id, int connected,
                       const char *reason)
{
    if (!atomic_load_explicit(&dp->broker.aws_subs, memory_order_relaxed)) return; /* nobody */
    char topic[KL_DP_TOPIC_MAX + 64];
    snprintf(topic, sizeof topic, "$aws/events/presence/%s/%s",
             connected ? "connected" : "disconnected", client_id);
    if (kl_topic_name_ok((const uint8_t *)topic, strlen(topic))) return; /* odd client id */
    if (!c->presence_ver) {
        /* One id and one version per connection, so a consumer can pair "connected" with
         * "disconnected". Versions grow with every connection of the process and start at
         * the wall clock in ms, so they also grow across restarts, as AWS's do per client. */
        unsigned long long want = (unsigned long long)now_ms_wall();
        unsigned long long cur = atomic_load(&dp->presence_ver);
        unsigned long long next;
        do
            next = cur >= want ? cur + 1 : want;
        while (!atomic_compare_exchange_weak(&dp->presence_ver, &cur, next));
        c->presence_ver = next;
        RAND_bytes(c->presence_sid, sizeof c->presence_sid);
    }
    const uint8_t *r = c->presence_sid;
    char sid[40];
    snprintf(sid, sizeof sid,
             "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", r[0], r[1],
             r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9], r[10], r[11], r[12], r[13], r[14],
             r[15]);
    json_t *o = json_pack("{s:s, s:I, s:s, s:s, s:s, s:I}", "clientId", client_id, "timestamp",
                          (json_int_t)now_ms_wall(), "eventType",
                          connected ? "connected" : "disconnected", "sessionIdentifier", sid,
                          "ipAddress", c->ip, "versionNumber", (json_int_t)c->presence_ver);
    if (!o) return;
    if (c->principal) json_object_set_new(o, "principalIdentifier", json_string(c->principal->id));
    if (!connected) {
        json_object_set_new(o, "clientInitiatedDisconnect", json_boolean(c->graceful));
        json_object_set_new(o, "disconnectReason", json_string(reason ? reason : "UNKNOWN"));
    }
    publish_json(dp, topic, o);
}

void kl_event_cert_registered(struct kl_dp *dp, const char *cert_id, const char *ca_id)
{
    if (!atomic_load_explicit(&dp->broker.aws_subs, memory_order_relaxed)) return;
    char topic[128];
    snprintf(topic, sizeof topic, "$aws/events/certificates/registered/%s", ca_id);
    int64_t t = now_ms_wall() / 1000;
    json_t *o = json_pack("{s:s, s:s, s:I, s:s, s:s, s:I}", "certificateId", cert_id,
                          "caCertificateId", ca_id, "timestamp", (json_int_t)t, "certificateStatus",
                          "PENDING_ACTIVATION", "awsAccountId", kl_registry_account(dp->reg),
                          "certificateRegistrationTimestamp", (json_int_t)t);
    publish_json(dp, topic, o);
}
