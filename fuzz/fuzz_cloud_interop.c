/*
 * Interop differential: every packet the device library's serializers build
 * (host/mqtt_ser.c, mqtt_props.c) from fuzzed fields must be accepted by keylinkd's
 * parsers (cloud/mqtt_*.c) with the same fields. Byte 0 picks the packet (CONNECT,
 * PUBLISH, SUBSCRIBE, UNSUBSCRIBE) and bit 2 the version; the rest are the fields: a
 * few lengths, then strings cut from the input (client id, topic, payload, user name,
 * password, property strings). A packet the library refuses to build is fine; one it
 * builds and the broker refuses is a bug on one side.
 */
#include <string.h>

#include "dataplane.h"
#include "fuzz.h"
#include "keylink/mqtt.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    return 0;
}

static char strs[8][300];
static size_t lens[8];

static int span_is(const struct kl_span *s, const void *p, size_t n)
{
    return s->n == n && (n == 0 || memcmp(s->p, p, n) == 0);
}

/* Optional MQTT 5 properties for a packet type from the flag bits. */
static void props_for(struct kl_mq_props *pr, uint8_t fl, uint8_t type)
{
    memset(pr, 0, sizeof *pr);
    if (type == KL_MQ_PUBLISH || type == KL_MQ_WILL) {
        if (fl & 1) {
            pr->has |= KL_MQ_HAS(KL_MQ_P_CONTENT_TYPE);
            pr->content_type = (struct kl_mq_bin){(const uint8_t *)strs[5], lens[5]};
        }
        if (fl & 2) {
            pr->has |= KL_MQ_HAS(KL_MQ_P_RESPONSE_TOPIC);
            pr->response_topic = (struct kl_mq_bin){(const uint8_t *)strs[6], lens[6]};
        }
        if (fl & 4) {
            pr->has |= KL_MQ_HAS(KL_MQ_P_CORRELATION);
            pr->correlation = (struct kl_mq_bin){(const uint8_t *)strs[7], lens[7]};
        }
        if (fl & 8) {
            pr->has |= KL_MQ_HAS(KL_MQ_P_MESSAGE_EXPIRY);
            pr->message_expiry = 60;
        }
    }
    if (fl & 16) {
        pr->has |= KL_MQ_HAS(KL_MQ_P_USER);
        pr->user_key[0] = (struct kl_mq_bin){(const uint8_t *)strs[5], lens[5]};
        pr->user_val[0] = (struct kl_mq_bin){(const uint8_t *)strs[6], lens[6]};
        pr->user_n = 1;
        pr->user_total = 1;
    }
    if (type == KL_MQ_CONNECT && (fl & 32)) {
        pr->has |= KL_MQ_HAS(KL_MQ_P_SESSION_EXPIRY) | KL_MQ_HAS(KL_MQ_P_RECEIVE_MAX);
        pr->session_expiry = 3600;
        pr->receive_max = 8;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fz_in in = {data, size};
    uint8_t sel = fz_u8(&in), fl = fz_u8(&in), q = fz_u8(&in);
    uint8_t ver = (sel & 4) ? KL_MQ_V5 : KL_MQ_V311;
    for (int i = 0; i < 8; i++) {
        size_t want = fz_u8(&in), got;
        const uint8_t *p = fz_bytes(&in, want, &got);
        memcpy(strs[i], p, got);
        strs[i][got] = 0;
        lens[i] = got;
    }
    static uint8_t buf[8192];
    size_t len = 0;
    struct kl_mq_props pr, wpr;
    props_for(&pr, fl, (sel & 3) == 0 ? KL_MQ_CONNECT : KL_MQ_PUBLISH);
    int with_props = ver == KL_MQ_V5 && (fl & 64);
    kl_status st;
    switch (sel & 3) {
    case 0: {
        props_for(&wpr, (uint8_t)(fl >> 1), KL_MQ_WILL);
        struct kl_mq_will will = {.topic = strs[1],
                                  .payload = {(const uint8_t *)strs[2], lens[2]},
                                  .qos = (uint8_t)(q % 3),
                                  .retain = (uint8_t)((q >> 2) & 1),
                                  .props = with_props ? &wpr : NULL};
        struct kl_mq_connect_opts o = {
            .version = ver,
            .client_id = strs[0],
            .keepalive_s = (uint16_t)(q * 7),
            .clean = (uint8_t)((q >> 3) & 1),
            .will = (fl & 128) ? &will : NULL,
            .username = (q & 16) ? strs[3] : NULL,
            .password = {(q & 32) ? (const uint8_t *)strs[4] : NULL, lens[4]},
            .props = with_props ? &pr : NULL};
        st = kl_mq_ser_connect(buf, sizeof buf, &o, &len);
        if (getenv("KL_FUZZ_TRACE")) fprintf(stderr, "built %u: %s\n", sel & 3, kl_status_name(st));
        if (st != KL_OK) return 0;
        uint8_t tf;
        size_t off, bl;
        FZ_CHECK(kl_mqtt_frame(buf, len, &tf, &off, &bl) == 1 && off + bl == len);
        FZ_CHECK(tf >> 4 == 1);
        struct kl_mqtt_connect c;
        int r = kl_mqtt_parse_connect(buf + off, bl, &c);
        if (r) fprintf(stderr, "broker refuses the library's CONNECT: reason 0x%02x\n", r);
        FZ_CHECK(r == 0);
        FZ_CHECK(c.version == ver && c.keepalive == o.keepalive_s && c.clean == o.clean);
        FZ_CHECK(span_is(&c.client_id, strs[0], strlen(strs[0])));
        FZ_CHECK(c.will == (o.will != NULL) && c.has_user == (o.username != NULL));
        if (o.will) {
            FZ_CHECK(span_is(&c.will_topic, strs[1], strlen(strs[1])));
            FZ_CHECK(span_is(&c.will_payload, strs[2], lens[2]));
            FZ_CHECK(c.will_qos == will.qos && c.will_retain == will.retain);
        }
        if (o.username) FZ_CHECK(span_is(&c.user, strs[3], strlen(strs[3])));
        if (o.password.p) FZ_CHECK(c.has_pass && span_is(&c.pass, strs[4], lens[4]));
        break;
    }
    case 1: {
        struct kl_mq_msg m = {.topic = strs[1],
                              .payload = (const uint8_t *)strs[2],
                              .payload_len = lens[2],
                              .qos = (uint8_t)(q % 3),
                              .retain = (uint8_t)((q >> 2) & 1),
                              .dup = (uint8_t)(q % 3 ? (q >> 3) & 1 : 0),
                              .pid = (uint16_t)(q % 3 ? 1 + q : 0),
                              .props = with_props ? &pr : NULL};
        st = kl_mq_ser_publish(buf, sizeof buf, ver, &m, &len);
        if (getenv("KL_FUZZ_TRACE")) fprintf(stderr, "built %u: %s\n", sel & 3, kl_status_name(st));
        if (st != KL_OK) return 0;
        uint8_t tf;
        size_t off, bl;
        FZ_CHECK(kl_mqtt_frame(buf, len, &tf, &off, &bl) == 1 && off + bl == len);
        struct kl_mqtt_publish pub;
        int r = kl_mqtt_parse_publish(tf & 15, buf + off, bl, ver == KL_MQ_V5, &pub);
        if (r) fprintf(stderr, "broker refuses the library's PUBLISH: reason 0x%02x\n", r);
        FZ_CHECK(r == 0);
        FZ_CHECK(span_is(&pub.topic, strs[1], strlen(strs[1])));
        FZ_CHECK(span_is(&pub.payload, strs[2], lens[2]));
        FZ_CHECK(pub.qos == m.qos && pub.retain == m.retain && (!m.qos || pub.pid == m.pid));
        break;
    }
    default: {
        struct kl_mq_sub subs[3];
        const char *filters[3];
        size_t n = 1 + q % 3;
        for (size_t i = 0; i < n; i++) {
            filters[i] = strs[1 + i];
            subs[i] =
                (struct kl_mq_sub){.filter = strs[1 + i],
                                   .qos = (uint8_t)((q >> (2 * i)) % 3),
                                   .no_local = ver == KL_MQ_V5 ? (fl >> i) & 1 : 0,
                                   .retain_as_published = ver == KL_MQ_V5 ? (fl >> (i + 3)) & 1 : 0,
                                   .retain_handling = 0};
        }
        int sub = (sel & 3) == 2;
        st = sub ? kl_mq_ser_subscribe(buf, sizeof buf, ver, 7, subs, n, NULL, &len)
                 : kl_mq_ser_unsubscribe(buf, sizeof buf, ver, 7, filters, n, NULL, &len);
        if (getenv("KL_FUZZ_TRACE")) fprintf(stderr, "built %u: %s\n", sel & 3, kl_status_name(st));
        if (st != KL_OK) return 0;
        uint8_t tf;
        size_t off, bl;
        FZ_CHECK(kl_mqtt_frame(buf, len, &tf, &off, &bl) == 1 && off + bl == len);
        static struct kl_mqtt_subscribe s;
        int r = sub ? kl_mqtt_parse_subscribe(buf + off, bl, ver == KL_MQ_V5, &s)
                    : kl_mqtt_parse_unsubscribe(buf + off, bl, ver == KL_MQ_V5, &s);
        if (r) fprintf(stderr, "broker refuses the library's (UN)SUBSCRIBE: reason 0x%02x\n", r);
        FZ_CHECK(r == 0 && s.pid == 7 && s.n == n);
        for (size_t i = 0; i < n; i++) {
            FZ_CHECK(span_is(&s.e[i].filter, strs[1 + i], strlen(strs[1 + i])));
            if (sub) FZ_CHECK((s.e[i].opts & 3) == subs[i].qos);
        }
        break;
    }
    }
    return 0;
}
