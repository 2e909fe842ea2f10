/* MQTT codec: every packet the client sends is byte-exact against hand-built encodings from
 * the MQTT 3.1.1 and 5.0 specifications; every packet it receives parses, and every
 * truncation, every extension by a byte and every single-bit flip of those is refused or
 * parsed within bounds (ASan checks the bounds); remaining-length edge cases; property
 * rules; topic/filter/UTF-8 checks. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keylink/mqtt.h"

static int fails;
#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c)) {                                                                                \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #c);                  \
            fails++;                                                                               \
        }                                                                                          \
    } while (0)

static uint8_t buf[70000];

static int same(const uint8_t *a, size_t an, const uint8_t *b, size_t bn)
{
    if (an == bn && !memcmp(a, b, an)) return 1;
    fprintf(stderr, "got %zu bytes:", an);
    for (size_t i = 0; i < an; i++)
        fprintf(stderr, " %02x", a[i]);
    fprintf(stderr, "\nwant %zu bytes:", bn);
    for (size_t i = 0; i < bn; i++)
        fprintf(stderr, " %02x", b[i]);
    fprintf(stderr, "\n");
    return 0;
}
#define SAME(got, gn, ...)                                                                         \
    do {                                                                                           \
        static const uint8_t want_[] = {__VA_ARGS__};                                              \
        CHECK(same(got, gn, want_, sizeof want_));                                                 \
    } while (0)

static void test_varint(void)
{
    static const struct {
        uint32_t v;
        uint8_t b[4];
        size_t n;
    } vec[] = {{0, {0}, 1},
               {127, {0x7F}, 1},
               {128, {0x80, 0x01}, 2},
               {16383, {0xFF, 0x7F}, 2},
               {16384, {0x80, 0x80, 0x01}, 3},
               {2097151, {0xFF, 0xFF, 0x7F}, 3},
               {2097152, {0x80, 0x80, 0x80, 0x01}, 4},
               {268435455, {0xFF, 0xFF, 0xFF, 0x7F}, 4}};
    for (size_t i = 0; i < sizeof vec / sizeof vec[0]; i++) {
        uint8_t out[4];
        CHECK(kl_mq_varint_put(vec[i].v, out) == vec[i].n && !memcmp(out, vec[i].b, vec[i].n));
        uint32_t v;
        size_t used;
        CHECK(kl_mq_varint_get(vec[i].b, vec[i].n, &v, &used) == KL_OK && v == vec[i].v &&
              used == vec[i].n);
        /* one byte short: needs more */
        if (vec[i].n > 1) CHECK(kl_mq_varint_get(vec[i].b, vec[i].n - 1, &v, &used) == KL_E_BUFFER);
    }
    uint8_t out[4];
    CHECK(kl_mq_varint_put(268435456u, out) == 0);
    uint32_t v;
    size_t used;
    static const uint8_t five[] = {0xFF, 0xFF, 0xFF, 0xFF, 0x7F};
    CHECK(kl_mq_varint_get(five, 5, &v, &used) == KL_E_PEER);
    static const uint8_t nonmin[] = {0x80, 0x00};
    CHECK(kl_mq_varint_get(nonmin, 2, &v, &used) == KL_E_PEER);
    CHECK(kl_mq_varint_get(nonmin, 0, &v, &used) == KL_E_BUFFER);
}

static void test_connect(void)
{
    size_t n;
    struct kl_mq_connect_opts o = {0};
    o.version = KL_MQ_V311;
    o.client_id = "ab";
    o.keepalive_s = 60;
    o.clean = 1;
    CHECK(kl_mq_ser_connect(buf, sizeof buf, &o, &n) == KL_OK);
    SAME(buf, n, 0x10, 14, 0, 4, 'M', 'Q', 'T', 'T', 4, 0x02, 0, 60, 0, 2, 'a', 'b');
    /* will, user, password, persistent session */
    struct kl_mq_will w = {
        .topic = "w", .payload = {(const uint8_t *)"x", 1}, .qos = 1, .retain = 1};
    o.clean = 0;
    o.will = &w;
    o.username = "u";
    o.password.p = (const uint8_t *)"pw";
    o.password.n = 2;
    CHECK(kl_mq_ser_connect(buf, sizeof buf, &o, &n) == KL_OK);
    SAME(buf, n, 0x10, 27, 0, 4, 'M', 'Q', 'T', 'T', 4, 0xEC, 0, 60, 0, 2, 'a', 'b', 0, 1, 'w', 0,
         1, 'x', 0, 1, 'u', 0, 2, 'p', 'w');
    /* 3.1.1: no password without user, no empty id with a persistent session, no props */
    o.username = NULL;
    CHECK(kl_mq_ser_connect(buf, sizeof buf, &o, &n) == KL_E_ARG);
    o.username = "u";
    o.client_id = "";
    CHECK(kl_mq_ser_connect(buf, sizeof buf, &o, &n) == KL_E_ARG);
    o.client_id = "ab";
    struct kl_mq_props p = {0};
    o.props = &p;
    CHECK(kl_mq_ser_connect(buf, sizeof buf, &o, &n) == KL_E_ARG);
    /* bad will */
    o.props = NULL;
    w.topic = "a/+";
    CHECK(kl_mq_ser_connect(buf, sizeof buf, &o, &n) == KL_E_ARG);
    w.topic = "w";
    w.qos = 3;
    CHECK(kl_mq_ser_connect(buf, sizeof buf, &o, &n) == KL_E_ARG);
    w.qos = 1;
    o.version = 3;
    CHECK(kl_mq_ser_connect(buf, sizeof buf, &o, &n) == KL_E_ARG);

    /* MQTT 5: properties (session expiry, auth method, user property), will properties */
    struct kl_mq_connect_opts f = {0};
    f.version = KL_MQ_V5;
    f.client_id = "c";
    f.clean = 1;
    p.has = KL_MQ_HAS(KL_MQ_P_SESSION_EXPIRY) | KL_MQ_HAS(KL_MQ_P_AUTH_METHOD) |
            KL_MQ_HAS(KL_MQ_P_USER);
    p.session_expiry = 0x01020304;
    p.auth_method.p = (const uint8_t *)"m";
    p.auth_method.n = 1;
    p.user_key[0].p = (const uint8_t *)"k";
    p.user_key[0].n = 1;
    p.user_val[0].p = (const uint8_t *)"v";
    p.user_val[0].n = 1;
    p.user_n = 1;
    f.props = &p;
    struct kl_mq_props wp = {0};
    wp.has = KL_MQ_HAS(KL_MQ_P_WILL_DELAY);
    wp.will_delay = 5;
    struct kl_mq_will w5 = {.topic = "w", .payload = {(const uint8_t *)"", 0}, .props = &wp};
    f.will = &w5;
    CHECK(kl_mq_ser_connect(buf, sizeof buf, &f, &n) == KL_OK);
    SAME(buf, n, 0x10, 41, 0, 4, 'M', 'Q', 'T', 'T', 5, 0x06, 0, 0,
         /* props */ 16, 0x11, 1, 2, 3, 4, 0x15, 0, 1, 'm', 0x26, 0, 1, 'k', 0, 1, 'v',
         /* id */ 0, 1, 'c',
         /* will props */ 5, 0x18, 0, 0, 0, 5,
         /* will topic, payload */ 0, 1, 'w', 0, 0);
    /* a property CONNECT may not carry, and one in the will that belongs to CONNECT */
    p.has |= KL_MQ_HAS(KL_MQ_P_TOPIC_ALIAS);
    p.topic_alias = 1;
    CHECK(kl_mq_ser_connect(buf, sizeof buf, &f, &n) == KL_E_ARG);
    p.has &= ~KL_MQ_HAS(KL_MQ_P_TOPIC_ALIAS);
    wp.has |= KL_MQ_HAS(KL_MQ_P_SESSION_EXPIRY);
    CHECK(kl_mq_ser_connect(buf, sizeof buf, &f, &n) == KL_E_ARG);
    wp.has = 0;
    /* out of range values */
    p.has |= KL_MQ_HAS(KL_MQ_P_RECEIVE_MAX);
    p.receive_max = 0;
    CHECK(kl_mq_ser_connect(buf, sizeof buf, &f, &n) == KL_E_ARG);
    p.has &= ~KL_MQ_HAS(KL_MQ_P_RECEIVE_MAX);
    /* invalid UTF-8 in a string property and a client id */
    p.auth_method.p = (const uint8_t *)"\xC0\x80";
    p.auth_method.n = 2;
    CHECK(kl_mq_ser_connect(buf, sizeof buf, &f, &n) == KL_E_ARG);
    p.auth_method.p = (const uint8_t *)"m";
    p.auth_method.n = 1;
    f.client_id = "\xFF";
    CHECK(kl_mq_ser_connect(buf, sizeof buf, &f, &n) == KL_E_ARG);
    f.client_id = "c";
    /* every buffer size below the packet: KL_E_BUFFER, never an overrun */
    CHECK(kl_mq_ser_connect(buf, sizeof buf, &f, &n) == KL_OK);
    size_t need = n;
    for (size_t cap = 0; cap < need + KL_MQ_HEADER_MAX; cap++) {
        uint8_t *b = malloc(cap ? cap : 1);
        size_t m;
        kl_status st = kl_mq_ser_connect(b, cap, &f, &m);
        CHECK(st == KL_E_BUFFER || (st == KL_OK && m == need && cap >= need));
        free(b);
    }
}

static void test_publish_out(void)
{
    size_t n;
    struct kl_mq_msg m = {0};
    m.topic = "a/b";
    m.payload = (const uint8_t *)"hi";
    m.payload_len = 2;
    CHECK(kl_mq_ser_publish(buf, sizeof buf, KL_MQ_V311, &m, &n) == KL_OK);
    SAME(buf, n, 0x30, 7, 0, 3, 'a', '/', 'b', 'h', 'i');
    m.qos = 2;
    m.pid = 0x1234;
    m.dup = 1;
    m.retain = 1;
    CHECK(kl_mq_ser_publish(buf, sizeof buf, KL_MQ_V311, &m, &n) == KL_OK);
    SAME(buf, n, 0x3D, 9, 0, 3, 'a', '/', 'b', 0x12, 0x34, 'h', 'i');
    CHECK(kl_mq_ser_publish(buf, sizeof buf, KL_MQ_V5, &m, &n) == KL_OK);
    SAME(buf, n, 0x3D, 10, 0, 3, 'a', '/', 'b', 0x12, 0x34, 0, 'h', 'i');
    struct kl_mq_props p = {0};
    p.has = KL_MQ_HAS(KL_MQ_P_PAYLOAD_FORMAT) | KL_MQ_HAS(KL_MQ_P_CONTENT_TYPE) |
            KL_MQ_HAS(KL_MQ_P_CORRELATION);
    p.payload_format = 1;
    p.content_type.p = (const uint8_t *)"t";
    p.content_type.n = 1;
    p.correlation.p = (const uint8_t *)"\x00\x01";
    p.correlation.n = 2;
    m.props = &p;
    CHECK(kl_mq_ser_publish(buf, sizeof buf, KL_MQ_V5, &m, &n) == KL_OK);
    SAME(buf, n, 0x3D, 21, 0, 3, 'a', '/', 'b', 0x12, 0x34, 11, 0x01, 1, 0x03, 0, 1, 't', 0x09, 0,
         2, 0, 1, 'h', 'i');
    CHECK(kl_mq_ser_publish(buf, sizeof buf, KL_MQ_V311, &m, &n) == KL_E_ARG); /* props on 3.1.1 */
    m.props = NULL;
    m.topic = "a/#";
    CHECK(kl_mq_ser_publish(buf, sizeof buf, KL_MQ_V311, &m, &n) == KL_E_ARG);
    m.topic = "";
    CHECK(kl_mq_ser_publish(buf, sizeof buf, KL_MQ_V311, &m, &n) == KL_E_ARG);
    m.topic = "a";
    m.pid = 0;
    CHECK(kl_mq_ser_publish(buf, sizeof buf, KL_MQ_V311, &m, &n) ==
          KL_E_ARG); /* QoS 2 needs a pid */
    m.qos = 0;
    m.dup = 1;
    CHECK(kl_mq_ser_publish(buf, sizeof buf, KL_MQ_V311, &m, &n) == KL_E_ARG); /* dup at QoS 0 */
    m.dup = 0;
    m.qos = 3;
    m.pid = 1;
    CHECK(kl_mq_ser_publish(buf, sizeof buf, KL_MQ_V311, &m, &n) == KL_E_ARG);
    /* remaining length across the 1/2/3-byte boundaries */
    static uint8_t big[70000];
    const size_t sizes[] = {127 - 3, 128 - 3, 16383 - 3, 16384 - 3, 65536};
    for (size_t i = 0; i < 5; i++) {
        struct kl_mq_msg b = {.topic = "a", .payload = big, .payload_len = sizes[i]};
        size_t rl = sizes[i] + 3;
        CHECK(kl_mq_ser_publish(buf, sizeof buf, KL_MQ_V311, &b, &n) == KL_OK);
        struct kl_mq_frame f;
        CHECK(kl_mq_frame(buf, n, &f) == KL_OK && f.complete && f.body_len == rl &&
              f.header_len == 1 + (rl < 128     ? 1
                                   : rl < 16384 ? 2
                                                : 3) &&
              f.total == n);
    }
}

static void test_small_packets(void)
{
    size_t n;
    CHECK(kl_mq_ser_ack(buf, sizeof buf, KL_MQ_V311, KL_MQ_PUBACK, 7, 0, NULL, &n) == KL_OK);
    SAME(buf, n, 0x40, 2, 0, 7);
    CHECK(kl_mq_ser_ack(buf, sizeof buf, KL_MQ_V311, KL_MQ_PUBREL, 0x0102, 0, NULL, &n) == KL_OK);
    SAME(buf, n, 0x62, 2, 1, 2);
    CHECK(kl_mq_ser_ack(buf, sizeof buf, KL_MQ_V5, KL_MQ_PUBCOMP, 1, 0, NULL, &n) == KL_OK);
    SAME(buf, n, 0x70, 2, 0, 1);
    CHECK(kl_mq_ser_ack(buf, sizeof buf, KL_MQ_V5, KL_MQ_PUBREC, 1, 0x92, NULL, &n) == KL_OK);
    SAME(buf, n, 0x50, 3, 0, 1, 0x92);
    struct kl_mq_props p = {0};
    p.has = KL_MQ_HAS(KL_MQ_P_REASON);
    p.reason.p = (const uint8_t *)"r";
    p.reason.n = 1;
    CHECK(kl_mq_ser_ack(buf, sizeof buf, KL_MQ_V5, KL_MQ_PUBACK, 1, 0, &p, &n) == KL_OK);
    SAME(buf, n, 0x40, 8, 0, 1, 0, 4, 0x1F, 0, 1, 'r');
    CHECK(kl_mq_ser_ack(buf, sizeof buf, KL_MQ_V311, KL_MQ_PUBACK, 1, 0x80, NULL, &n) == KL_E_ARG);
    CHECK(kl_mq_ser_ack(buf, sizeof buf, KL_MQ_V311, KL_MQ_PUBACK, 0, 0, NULL, &n) == KL_E_ARG);
    CHECK(kl_mq_ser_ack(buf, sizeof buf, KL_MQ_V311, KL_MQ_SUBACK, 1, 0, NULL, &n) == KL_E_ARG);

    struct kl_mq_sub s[2] = {{.filter = "a/+", .qos = 1}, {.filter = "#", .qos = 2}};
    CHECK(kl_mq_ser_subscribe(buf, sizeof buf, KL_MQ_V311, 10, s, 2, NULL, &n) == KL_OK);
    SAME(buf, n, 0x82, 12, 0, 10, 0, 3, 'a', '/', '+', 1, 0, 1, '#', 2);
    s[1].no_local = 1;
    CHECK(kl_mq_ser_subscribe(buf, sizeof buf, KL_MQ_V311, 10, s, 2, NULL, &n) == KL_E_ARG);
    s[1].retain_as_published = 1;
    s[1].retain_handling = 2;
    struct kl_mq_props sp = {0};
    sp.has = KL_MQ_HAS(KL_MQ_P_SUBSCRIPTION_ID);
    sp.subscription_id = 200;
    CHECK(kl_mq_ser_subscribe(buf, sizeof buf, KL_MQ_V5, 10, s, 2, &sp, &n) == KL_OK);
    SAME(buf, n, 0x82, 16, 0, 10, 3, 0x0B, 0xC8, 0x01, 0, 3, 'a', '/', '+', 1, 0, 1, '#', 0x2E);
    s[1].retain_handling = 3;
    CHECK(kl_mq_ser_subscribe(buf, sizeof buf, KL_MQ_V5, 10, s, 2, NULL, &n) == KL_E_ARG);
    const char *bad[] = {"a/#/b", "a+", "#a", "", "a/b#"};
    for (size_t i = 0; i < 5; i++) {
        struct kl_mq_sub b = {.filter = bad[i]};
        CHECK(kl_mq_ser_subscribe(buf, sizeof buf, KL_MQ_V311, 1, &b, 1, NULL, &n) == KL_E_ARG);
    }
    const char *uf[] = {"a", "b/#"};
    CHECK(kl_mq_ser_unsubscribe(buf, sizeof buf, KL_MQ_V311, 3, uf, 2, NULL, &n) == KL_OK);
    SAME(buf, n, 0xA2, 10, 0, 3, 0, 1, 'a', 0, 3, 'b', '/', '#');
    CHECK(kl_mq_ser_unsubscribe(buf, sizeof buf, KL_MQ_V5, 3, uf, 2, NULL, &n) == KL_OK);
    SAME(buf, n, 0xA2, 11, 0, 3, 0, 0, 1, 'a', 0, 3, 'b', '/', '#');
    CHECK(kl_mq_ser_unsubscribe(buf, sizeof buf, KL_MQ_V5, 0, uf, 2, NULL, &n) == KL_E_ARG);
    CHECK(kl_mq_ser_pingreq(buf, sizeof buf, &n) == KL_OK);
    SAME(buf, n, 0xC0, 0);
    CHECK(kl_mq_ser_pingreq(buf, 1, &n) == KL_E_BUFFER);
    CHECK(kl_mq_ser_disconnect(buf, sizeof buf, KL_MQ_V311, 0, NULL, &n) == KL_OK);
    SAME(buf, n, 0xE0, 0);
    CHECK(kl_mq_ser_disconnect(buf, sizeof buf, KL_MQ_V5, 0x04, NULL, &n) == KL_OK);
    SAME(buf, n, 0xE0, 1, 0x04);
    CHECK(kl_mq_ser_disconnect(buf, sizeof buf, KL_MQ_V311, 0x04, NULL, &n) == KL_E_ARG);
    struct kl_mq_props ap = {0};
    ap.has = KL_MQ_HAS(KL_MQ_P_AUTH_METHOD) | KL_MQ_HAS(KL_MQ_P_AUTH_DATA);
    ap.auth_method.p = (const uint8_t *)"m";
    ap.auth_method.n = 1;
    ap.auth_data.p = (const uint8_t *)"\x01";
    ap.auth_data.n = 1;
    CHECK(kl_mq_ser_auth(buf, sizeof buf, KL_MQ_RC_CONTINUE_AUTH, &ap, &n) == KL_OK);
    SAME(buf, n, 0xF0, 10, 0x18, 8, 0x15, 0, 1, 'm', 0x16, 0, 1, 1);
    CHECK(kl_mq_ser_auth(buf, sizeof buf, 0, NULL, &n) == KL_OK);
    SAME(buf, n, 0xF0, 0);
    CHECK(kl_mq_ser_auth(buf, sizeof buf, 0x80, NULL, &n) == KL_E_ARG);
}

/* Calls the deserializer for a received packet by its type; returns its status. */
static kl_status parse_any(const uint8_t *p, size_t n, uint8_t version)
{
    struct kl_mq_frame f;
    kl_status st = kl_mq_frame(p, n, &f);
    if (st != KL_OK) return st;
    if (!f.complete) return KL_E_BUFFER;
    if (f.total != n) return KL_E_BAD_LENGTH;
    /* copy the body to its own allocation so ASan sees reads past it */
    uint8_t *b = malloc(f.body_len ? f.body_len : 1);
    memcpy(b, p + f.header_len, f.body_len);
    struct kl_mq_props pr;
    struct kl_mq_connack ca;
    struct kl_mq_msg m;
    uint16_t pid;
    uint8_t rc, codes[16];
    size_t k;
    switch (f.type) {
    case KL_MQ_CONNACK:
        st = kl_mq_de_connack(b, f.body_len, version, &ca);
        break;
    case KL_MQ_PUBLISH:
        st = kl_mq_de_publish(f.flags, b, f.body_len, version, &m, &pr);
        if (st == KL_OK) {
            CHECK(m.topic >= (const char *)b &&
                  m.topic + m.topic_len <= (const char *)b + f.body_len);
            CHECK(m.payload >= b && m.payload + m.payload_len == b + f.body_len);
        }
        break;
    case KL_MQ_PUBACK:
    case KL_MQ_PUBREC:
    case KL_MQ_PUBREL:
    case KL_MQ_PUBCOMP:
        st = kl_mq_de_ack(f.type, b, f.body_len, version, &pid, &rc, &pr);
        break;
    case KL_MQ_SUBACK:
    case KL_MQ_UNSUBACK:
        st = kl_mq_de_suback(f.type, b, f.body_len, version, &pid, codes, sizeof codes, &k, &pr);
        break;
    case KL_MQ_DISCONNECT:
        st = kl_mq_de_disconnect(b, f.body_len, version, &rc, &pr);
        break;
    case KL_MQ_AUTH:
        st = kl_mq_de_auth(b, f.body_len, &rc, &pr);
        break;
    case KL_MQ_PINGRESP:
        st = f.body_len ? KL_E_PEER : KL_OK;
        break;
    default:
        st = KL_E_PEER;
    }
    free(b);
    return st;
}

struct pkt {
    uint8_t v;
    size_t n;
    uint8_t b[64];
};

static const struct pkt good[] = {
    {4, 4, {0x20, 2, 0, 0}},
    {4, 4, {0x20, 2, 1, 0}},
    {4, 4, {0x20, 2, 0, 5}},
    {5, 5, {0x20, 3, 0, 0, 0}},
    {5, 15, {0x20, 13, 0, 0, 10, 0x24, 1, 0x21, 0, 10, 0x13, 0, 30, 0x25, 0}},
    {5, 12, {0x20, 10, 0, 0x87, 7, 0x1F, 0, 4, 'n', 'o', 'p', 'e'}},
    {4, 8, {0x30, 6, 0, 1, 't', 'x', 'y', 'z'}},
    {4, 9, {0x33, 7, 0, 1, 't', 0, 9, 'h', 'i'}},
    {4, 7, {0x3C, 5, 0, 1, 't', 0, 1}},
    {5, 15, {0x32, 13, 0, 1, 't', 0, 2, 4, 0x01, 1, 0x0B, 0x05, 'o', 'k', '!'}},
    {5, 6, {0x30, 4, 0, 1, 't', 0}},
    {4, 4, {0x40, 2, 0, 1}},
    {4, 4, {0x50, 2, 0, 1}},
    {4, 4, {0x62, 2, 0, 1}},
    {4, 4, {0x70, 2, 0, 1}},
    {5, 5, {0x40, 3, 0, 1, 0x10}},
    {5, 10, {0x50, 8, 0, 1, 0x80, 4, 0x1F, 0, 1, 'x'}},
    {5, 6, {0x40, 4, 0, 1, 0, 0}},
    {4, 6, {0x90, 4, 0, 2, 1, 0x80}},
    {5, 7, {0x90, 5, 0, 2, 0, 1, 0x87}},
    {4, 4, {0xB0, 2, 0, 2}},
    {5, 6, {0xB0, 4, 0, 2, 0, 0x11}},
    {4, 2, {0xD0, 0}},
    {5, 2, {0xE0, 0}},
    {5, 3, {0xE0, 1, 0x8E}},
    {5, 12, {0xE0, 10, 0x9C, 8, 0x1C, 0, 5, 'o', 't', 'h', 'e', 'r'}},
    {5, 2, {0xF0, 0}},
    {5, 13, {0xF0, 11, 0x18, 9, 0x15, 0, 1, 'm', 0x16, 0, 2, 1, 2}},
};

static const struct pkt bad[] = {
    {4, 5, {0x20, 3, 0, 0, 0}},                     /* 3.1.1 CONNACK of 3 bytes */
    {4, 4, {0x20, 2, 2, 0}},                        /* reserved ack flag */
    {4, 4, {0x20, 2, 0, 6}},                        /* unknown 3.1.1 return code */
    {4, 4, {0x20, 2, 1, 5}},                        /* session present with a refusal */
    {5, 4, {0x20, 2, 0, 0}},                        /* MQTT 5 CONNACK without property length */
    {5, 7, {0x20, 5, 0, 0, 2, 0x24, 2}},            /* maximum QoS 2 */
    {5, 7, {0x20, 5, 0, 0, 2, 0x01, 0}},            /* payload format in CONNACK */
    {5, 9, {0x20, 7, 0, 0, 4, 0x24, 0, 0x24, 1}},   /* repeated property */
    {5, 7, {0x20, 5, 0, 0, 3, 0x24, 0}},            /* property length past the end */
    {5, 8, {0x20, 6, 0, 0, 3, 0x21, 0, 0}},         /* receive maximum 0 */
    {5, 9, {0x20, 7, 0, 0, 4, 0x1F, 0, 1, 0x00}},   /* U+0000 in a string */
    {5, 9, {0x20, 7, 0, 0, 4, 0x1F, 0, 1, 0xFF}},   /* bad UTF-8 */
    {4, 5, {0x36, 3, 0, 1, 't'}},                   /* QoS 3 */
    {4, 5, {0x38, 3, 0, 1, 't'}},                   /* dup at QoS 0 */
    {4, 7, {0x32, 5, 0, 1, 't', 0, 0}},             /* packet id 0 */
    {4, 6, {0x32, 4, 0, 1, 't', 0}},                /* truncated packet id */
    {4, 5, {0x30, 3, 0, 5, 't'}},                   /* topic past the end */
    {4, 5, {0x30, 3, 0, 1, '#'}},                   /* wildcard in a topic name */
    {4, 4, {0x30, 2, 0, 0}},                        /* empty topic */
    {5, 9, {0x30, 7, 0, 1, 't', 3, 0x23, 0, 1}},    /* topic alias (we allow none) */
    {5, 8, {0x30, 6, 0, 1, 't', 2, 0x01, 1}},       /* (valid props...) */
    {5, 9, {0x30, 7, 0, 1, 't', 2, 0x01, 1, 0xFF}}, /* payload format UTF-8 but not UTF-8 */
    {5, 8, {0x30, 6, 0, 1, 't', 2, 0x11, 0}},       /* session expiry in PUBLISH */
    {4, 5, {0x40, 3, 0, 1, 0}},                     /* 3.1.1 PUBACK of 3 */
    {4, 4, {0x40, 2, 0, 0}},                        /* pid 0 */
    {4, 4, {0x60, 2, 0, 1}},                        /* PUBREL flags 0 */
    {4, 4, {0x42, 2, 0, 1}},                        /* PUBACK flags 2 */
    {5, 7, {0x40, 5, 0, 1, 0, 2, 0x1F}},            /* property cut */
    {4, 5, {0x90, 3, 0, 2, 3}},                     /* 3.1.1 SUBACK code 3 */
    {4, 4, {0x90, 2, 0, 2}},                        /* SUBACK with no code */
    {4, 5, {0xB0, 3, 0, 2, 0}},                     /* 3.1.1 UNSUBACK with a code */
    {4, 3, {0xD0, 1, 0}},                           /* PINGRESP with a body */
    {4, 2, {0xE0, 0}},                              /* 3.1.1 server DISCONNECT */
    {5, 3, {0xF0, 1, 0x87}},                        /* AUTH with a reason it may not carry */
    {5, 2, {0x00, 0}},                              /* type 0 */
    {4, 2, {0x10, 0}},                              /* CONNECT from a server */
    {4, 3, {0x82, 1, 0}},                           /* SUBSCRIBE from a server */
    {4, 6, {0x20, 0x80, 0x80, 0x80, 0x80, 0x01}},   /* five length bytes */
};

static void test_incoming(void)
{
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        kl_status st = parse_any(good[i].b, good[i].n, good[i].v);
        if (st != KL_OK) fprintf(stderr, "good packet %zu: %s\n", i, kl_status_name(st));
        CHECK(st == KL_OK);
        /* every truncation: incomplete, or (with the length byte cut) not complete */
        for (size_t t = 0; t < good[i].n; t++)
            CHECK(parse_any(good[i].b, t, good[i].v) != KL_OK);
        /* the body one byte shorter than the header says, with the length fixed up */
        if (good[i].n > 2 && good[i].b[1] > 0) {
            uint8_t c[64];
            memcpy(c, good[i].b, good[i].n);
            c[1]--;
            kl_status s2 = parse_any(c, good[i].n - 1, good[i].v);
            (void)s2; /* may parse (shorter payload) or not; must stay in bounds */
        }
        /* every single bit flip: refused or parsed, always within bounds */
        for (size_t bit = 0; bit < good[i].n * 8; bit++) {
            uint8_t c[64];
            memcpy(c, good[i].b, good[i].n);
            c[bit / 8] ^= (uint8_t)(1u << (bit % 8));
            (void)parse_any(c, good[i].n, good[i].v);
        }
    }
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        kl_status st = parse_any(bad[i].b, bad[i].n, bad[i].v);
        if (i == 20) { /* the control line: those props are fine */
            CHECK(st == KL_OK);
            continue;
        }
        if (st == KL_OK) fprintf(stderr, "bad packet %zu parsed\n", i);
        CHECK(st == KL_E_PEER);
    }
    /* values come out right */
    struct kl_mq_connack ca;
    CHECK(kl_mq_de_connack(good[4].b + 2, 13, KL_MQ_V5, &ca) == KL_OK);
    CHECK(ca.props.max_qos == 1 && ca.props.receive_max == 10 && ca.props.server_keepalive == 30 &&
          ca.props.retain_available == 0 &&
          ca.props.has == (KL_MQ_HAS(0x24) | KL_MQ_HAS(0x21) | KL_MQ_HAS(0x13) | KL_MQ_HAS(0x25)));
    struct kl_mq_msg m;
    struct kl_mq_props pr;
    CHECK(kl_mq_de_publish(0x2, good[9].b + 2, 13, KL_MQ_V5, &m, &pr) == KL_OK);
    CHECK(m.qos == 1 && m.pid == 2 && m.payload_len == 3 && !memcmp(m.payload, "ok!", 3) &&
          pr.payload_format == 1 && pr.subscription_id == 5 && m.props == &pr);
    uint16_t pid;
    uint8_t codes[1];
    size_t k;
    CHECK(kl_mq_de_suback(KL_MQ_SUBACK, good[18].b + 2, 4, KL_MQ_V311, &pid, codes, 1, &k, &pr) ==
          KL_E_BUFFER);
    uint8_t rc;
    CHECK(kl_mq_de_auth(good[27].b + 2, 11, &rc, &pr) == KL_OK && rc == 0x18 &&
          pr.auth_data.n == 2 && pr.auth_method.n == 1);
    /* more user properties than kept: counted */
    uint8_t up[2 + 1 + 6 * 5];
    up[0] = 0;
    up[1] = 0;
    up[2] = 30;
    for (int i = 0; i < 5; i++)
        memcpy(up + 3 + 6 * i, "\x26\x00\x00\x00\x01z", 6);
    size_t used;
    CHECK(kl_mq_de_props(up + 2, sizeof up - 2, KL_MQ_PUBACK, &pr, &used) == KL_OK &&
          pr.user_n == KL_MQ_USER_MAX && pr.user_total == 5 && used == 31);
}

static void test_names(void)
{
    CHECK(kl_mq_topic_ok("a/b", 3) && !kl_mq_topic_ok("a/+", 3) && !kl_mq_topic_ok("", 0));
    CHECK(kl_mq_filter_ok("+", 1) && kl_mq_filter_ok("a/+/b/#", 7) && kl_mq_filter_ok("/", 1));
    CHECK(!kl_mq_filter_ok("a#", 2) && !kl_mq_filter_ok("a/#/", 4) && !kl_mq_filter_ok("++", 2));
    CHECK(kl_mq_utf8_ok((const uint8_t *)"\xE2\x82\xAC\xF0\x9F\x98\x80", 7));
    CHECK(!kl_mq_utf8_ok((const uint8_t *)"\xED\xA0\x80", 3));     /* surrogate */
    CHECK(!kl_mq_utf8_ok((const uint8_t *)"\xE0\x80\xAF", 3));     /* overlong */
    CHECK(!kl_mq_utf8_ok((const uint8_t *)"\xF4\x90\x80\x80", 4)); /* > U+10FFFF */
    CHECK(!kl_mq_utf8_ok((const uint8_t *)"\xE2\x82", 2));         /* cut */
    static const struct {
        const char *f, *t;
        int m;
    } mt[] = {{"a/b", "a/b", 1},       {"a/+", "a/b", 1},   {"a/+", "a/b/c", 0},
              {"a/#", "a", 1},         {"a/#", "a/b/c", 1}, {"#", "x/y", 1},
              {"+/+", "/x", 1},        {"+", "a/b", 0},     {"a/+/c", "a//c", 1},
              {"#", "$SYS/x", 0},      {"+/x", "$a/x", 0},  {"$SYS/#", "$SYS/x", 1},
              {"cmd/D/#", "cmd/D", 1}, {"a/b", "a/bc", 0},  {"a/bc", "a/b", 0}};
    for (size_t i = 0; i < sizeof mt / sizeof mt[0]; i++) {
        int got = kl_mq_topic_match(mt[i].f, mt[i].t, strlen(mt[i].t));
        if (got != mt[i].m) fprintf(stderr, "match %s %s\n", mt[i].f, mt[i].t);
        CHECK(got == mt[i].m);
    }
    CHECK(!strcmp(kl_mq_reason_name(KL_MQ_V311, KL_MQ_CONNACK, 5), "not authorized"));
    CHECK(!strcmp(kl_mq_reason_name(KL_MQ_V5, KL_MQ_CONNACK, 0x87), "not authorized"));
    CHECK(!strcmp(kl_mq_type_name(KL_MQ_AUTH), "AUTH"));
}

static void test_backoff(void)
{
    struct kl_mq_backoff b;
    CHECK(kl_mq_backoff_init(&b, 0, 10, 1) == KL_E_ARG);
    CHECK(kl_mq_backoff_init(&b, 100, 50, 1) == KL_E_ARG);
    CHECK(kl_mq_backoff_init(&b, 100, 5000, 42) == KL_OK);
    uint32_t cap = 100, seen_min = ~0u, seen_max = 0;
    for (int i = 0; i < 40; i++) {
        uint32_t d = kl_mq_backoff_next(&b);
        CHECK(d >= cap / 2 && d <= cap);
        if (cap == 5000) {
            if (d < seen_min) seen_min = d;
            if (d > seen_max) seen_max = d;
        }
        cap = cap * 2 > 5000 ? 5000 : cap * 2;
    }
    CHECK(seen_max > seen_min); /* jitter: not the same delay every time */
    kl_mq_backoff_reset(&b);
    CHECK(kl_mq_backoff_next(&b) <= 100);
    /* two devices with different seeds spread out */
    struct kl_mq_backoff a, c;
    kl_mq_backoff_init(&a, 1000, 60000, 1);
    kl_mq_backoff_init(&c, 1000, 60000, 2);
    int differ = 0;
    for (int i = 0; i < 8; i++)
        differ += kl_mq_backoff_next(&a) != kl_mq_backoff_next(&c);
    CHECK(differ > 0);
}

int main(void)
{
    test_varint();
    test_connect();
    test_publish_out();
    test_small_packets();
    test_incoming();
    test_names();
    test_backoff();
    if (fails) {
        fprintf(stderr, "%d check(s) failed\n", fails);
        return 1;
    }
    printf("mqtt codec ok\n");
    return 0;
}
