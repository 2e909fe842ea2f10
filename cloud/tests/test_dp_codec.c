/* Data-plane units against hostile input: MQTT framing, CONNECT/PUBLISH/SUBSCRIBE parsing
 * (every truncation and single-bit flip of valid packets must be refused or parsed without
 * reading out of bounds), properties, UTF-8, topic rules, the topic tree with wildcards,
 * $-topics and retained messages, base64url, compact JWS splitting and ES256. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/ec.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>

#include "dataplane.h"

static int failures;
#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c)) {                                                                                \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #c);                  \
            failures++;                                                                            \
        }                                                                                          \
    } while (0)

/* Parses b[0..n) through a heap copy of exactly n bytes, so ASan sees any overread. */
static int parse_connect_exact(const uint8_t *b, size_t n, struct kl_mqtt_connect *c)
{
    uint8_t *h = malloc(n ? n : 1);
    memcpy(h, b, n);
    int r = kl_mqtt_parse_connect(h, n, c);
    free(h);
    return r;
}

static size_t build_connect(uint8_t *out, int v5)
{
    struct kl_wbuf w = {0};
    kl_wb_str(&w, "MQTT", 4);
    kl_wb_u8(&w, v5 ? 5 : 4);
    kl_wb_u8(&w, 0x02 | 0x04 | 0x08 | 0x80 | 0x40); /* clean, will QoS 1, user, password */
    kl_wb_u16(&w, 60);
    if (v5) {
        uint8_t p[] = {KL_P_SESSION_EXPIRY,
                       0,
                       0,
                       0,
                       30,
                       KL_P_RECEIVE_MAX,
                       0,
                       10,
                       KL_P_USER,
                       0,
                       1,
                       'k',
                       0,
                       1,
                       'v'};
        kl_wb_varint(&w, sizeof p);
        kl_wb_bytes(&w, p, sizeof p);
    }
    kl_wb_str(&w, "dev1", 4);
    if (v5) {
        uint8_t wp[] = {KL_P_WILL_DELAY, 0, 0, 0, 5};
        kl_wb_varint(&w, sizeof wp);
        kl_wb_bytes(&w, wp, sizeof wp);
    }
    kl_wb_str(&w, "will/t", 6);
    kl_wb_str(&w, "bye", 3);
    kl_wb_str(&w, "user", 4);
    kl_wb_str(&w, "pw", 2);
    memcpy(out, w.p, w.len);
    size_t n = w.len;
    free(w.p);
    return n;
}

static void test_connect(void)
{
    uint8_t b[256];
    struct kl_mqtt_connect c;
    for (int v5 = 0; v5 < 2; v5++) {
        size_t n = build_connect(b, v5);
        CHECK(kl_mqtt_parse_connect(b, n, &c) == 0); /* spans point into b */
        CHECK(c.version == (v5 ? 5 : 4) && c.clean && c.will && c.will_qos == 1);
        CHECK(c.keepalive == 60 && c.client_id.n == 4 && !memcmp(c.client_id.p, "dev1", 4));
        CHECK(c.will_topic.n == 6 && c.pass.n == 2 && c.user.n == 4);
        if (v5) {
            CHECK(c.props.session_expiry == 30 && c.props.receive_max == 10);
            CHECK(c.will_props.will_delay == 5);
        }
        /* every truncation is refused */
        for (size_t k = 0; k < n; k++)
            CHECK(parse_connect_exact(b, k, &c) != 0);
        /* trailing garbage is refused */
        b[n] = 0;
        CHECK(parse_connect_exact(b, n + 1, &c) != 0);
        /* every single-bit flip either parses or is refused, never reads out of bounds */
        for (size_t k = 0; k < n * 8; k++) {
            b[k / 8] ^= (uint8_t)(1u << (k % 8));
            (void)parse_connect_exact(b, n, &c);
            b[k / 8] ^= (uint8_t)(1u << (k % 8));
        }
    }
    /* flag rules */
    size_t n = build_connect(b, 0);
    b[7] |= 0x01; /* reserved bit */
    CHECK(parse_connect_exact(b, n, &c) == KL_RC_MALFORMED);
    b[7] &= (uint8_t)~0x01;
    b[7] |= 0x18; /* will QoS 3 */
    CHECK(parse_connect_exact(b, n, &c) == KL_RC_MALFORMED);
    b[7] &= (uint8_t)~0x10;
    b[6] = 3; /* protocol level 3 */
    CHECK(parse_connect_exact(b, n, &c) == KL_RC_UNSUPPORTED_VERSION);
    b[6] = 4;
    b[2] = 'X'; /* protocol name */
    CHECK(parse_connect_exact(b, n, &c) == KL_RC_PROTOCOL);
}

static void test_props(void)
{
    struct kl_mqtt_props pr;
    const uint8_t dup[] = {6, KL_P_RECEIVE_MAX, 0, 1, KL_P_RECEIVE_MAX, 0, 2};
    const uint8_t *p = dup;
    CHECK(kl_mqtt_props_parse(&p, dup + sizeof dup, KL_MQTT_CONNECT, 0, &pr) == KL_RC_PROTOCOL);
    const uint8_t wrongpkt[] = {3, KL_P_TOPIC_ALIAS, 0, 1};
    p = wrongpkt;
    CHECK(kl_mqtt_props_parse(&p, wrongpkt + 4, KL_MQTT_CONNECT, 0, &pr) == KL_RC_PROTOCOL);
    const uint8_t unknown[] = {2, 0x7f, 0};
    p = unknown;
    CHECK(kl_mqtt_props_parse(&p, unknown + 3, KL_MQTT_CONNECT, 0, &pr) == KL_RC_MALFORMED);
    const uint8_t zero_rm[] = {3, KL_P_RECEIVE_MAX, 0, 0};
    p = zero_rm;
    CHECK(kl_mqtt_props_parse(&p, zero_rm + 4, KL_MQTT_CONNECT, 0, &pr) == KL_RC_PROTOCOL);
    const uint8_t overlong[] = {9, KL_P_CONTENT_TYPE, 0, 9, 'a'};
    p = overlong;
    CHECK(kl_mqtt_props_parse(&p, overlong + 5, KL_MQTT_PUBLISH, 0, &pr) == KL_RC_MALFORMED);
    /* forwarding keeps content type and user properties, drops message expiry */
    const uint8_t fw[] = {
        16, KL_P_MSG_EXPIRY, 0, 0, 0, 9, KL_P_CONTENT_TYPE, 0, 1, 'x', KL_P_USER, 0, 1, 'k', 0, 1,
        'v'};
    p = fw;
    CHECK(kl_mqtt_props_parse(&p, fw + sizeof fw, KL_MQTT_PUBLISH, 0, &pr) == 0);
    CHECK(pr.msg_expiry == 9 && pr.content_type.n == 1);
    struct kl_wbuf w = {0};
    kl_msg_props_filter(&pr, &w);
    const uint8_t want[] = {KL_P_CONTENT_TYPE, 0, 1, 'x', KL_P_USER, 0, 1, 'k', 0, 1, 'v'};
    CHECK(w.len == sizeof want && !memcmp(w.p, want, sizeof want));
    free(w.p);
}

static void test_utf8_frame(void)
{
    CHECK(kl_mqtt_utf8_ok((const uint8_t *)"a/\xc3\xa9/\xe2\x82\xac/\xf0\x9f\x98\x80", 13));
    CHECK(!kl_mqtt_utf8_ok((const uint8_t *)"a\0b", 3));
    CHECK(!kl_mqtt_utf8_ok((const uint8_t *)"\xc0\xaf", 2));         /* overlong */
    CHECK(!kl_mqtt_utf8_ok((const uint8_t *)"\xed\xa0\x80", 3));     /* surrogate */
    CHECK(!kl_mqtt_utf8_ok((const uint8_t *)"\xe2\x82", 2));         /* truncated */
    CHECK(!kl_mqtt_utf8_ok((const uint8_t *)"\xf4\x90\x80\x80", 4)); /* > U+10FFFF */
    uint8_t tf;
    size_t off, len;
    const uint8_t f1[] = {0x30, 0x80};
    CHECK(kl_mqtt_frame(f1, 2, &tf, &off, &len) == 0);
    const uint8_t f2[] = {0x30, 0xff, 0xff, 0xff, 0xff, 0x01};
    CHECK(kl_mqtt_frame(f2, 6, &tf, &off, &len) == -1);
    const uint8_t f3[] = {0x30, 0x80, 0x01, 1, 2};
    CHECK(kl_mqtt_frame(f3, 5, &tf, &off, &len) == 0 && len == 128); /* size known early */
    const uint8_t f4[] = {0xC0, 0x00};
    CHECK(kl_mqtt_frame(f4, 2, &tf, &off, &len) == 1 && tf == 0xC0 && off == 2 && len == 0);
}

static void test_publish_subscribe(void)
{
    struct kl_mqtt_publish pub;
    const uint8_t p1[] = {0, 3, 'a', '/', 'b', 0, 7, 'h', 'i'};
    CHECK(kl_mqtt_parse_publish(0x02, p1, sizeof p1, 0, &pub) == 0 && pub.pid == 7 &&
          pub.payload.n == 2);
    CHECK(kl_mqtt_parse_publish(0x06, p1, sizeof p1, 0, &pub) == KL_RC_MALFORMED); /* QoS 3 */
    CHECK(kl_mqtt_parse_publish(0x08, p1, sizeof p1, 0, &pub) == KL_RC_MALFORMED); /* DUP q0 */
    const uint8_t p0[] = {0, 1, 'a', 0, 0};
    CHECK(kl_mqtt_parse_publish(0x02, p0, sizeof p0, 0, &pub) == KL_RC_MALFORMED); /* pid 0 */
    const uint8_t alias[] = {0, 1, 'a', 3, KL_P_TOPIC_ALIAS, 0, 1};
    CHECK(kl_mqtt_parse_publish(0x00, alias, sizeof alias, 1, &pub) == KL_RC_TOPIC_ALIAS_INVALID);
    const uint8_t fmt[] = {0, 1, 'a', 2, KL_P_PAYLOAD_FORMAT, 1, 0xff};
    CHECK(kl_mqtt_parse_publish(0x00, fmt, sizeof fmt, 1, &pub) == KL_RC_PAYLOAD_FORMAT_INVALID);
    for (size_t k = 0; k < sizeof p1; k++) {
        uint8_t *h = malloc(k ? k : 1);
        memcpy(h, p1, k);
        int r = kl_mqtt_parse_publish(0x02, h, k, 0, &pub);
        CHECK(k >= 7 ? r == 0 : r != 0);
        free(h);
    }
    struct kl_mqtt_subscribe s;
    const uint8_t s1[] = {0, 9, 0, 3, 'a', '/', '#', 1, 0, 1, '+', 2};
    CHECK(kl_mqtt_parse_subscribe(s1, sizeof s1, 0, &s) == 0 && s.n == 2 && s.e[1].opts == 2);
    const uint8_t s2[] = {0, 9, 0, 1, 'a', 0x04}; /* No Local bit in 3.1.1 */
    CHECK(kl_mqtt_parse_subscribe(s2, sizeof s2, 0, &s) == KL_RC_MALFORMED);
    CHECK(kl_mqtt_parse_subscribe(s1, 2, 0, &s) == KL_RC_PROTOCOL); /* no filter */
    uint8_t many[2 + 9 * 4] = {0, 1};
    for (int i = 0; i < 9; i++)
        memcpy(many + 2 + i * 4, "\x00\x01x\x00", 4);
    CHECK(kl_mqtt_parse_subscribe(many, sizeof many, 0, &s) == KL_RC_QUOTA_EXCEEDED);
    uint16_t pid;
    uint8_t rc;
    const uint8_t ack[] = {0, 5, 0x80, 0};
    CHECK(kl_mqtt_parse_ack(ack, 4, 1, &pid, &rc) == 0 && pid == 5 && rc == 0x80);
    CHECK(kl_mqtt_parse_ack(ack, 3, 0, &pid, &rc) == KL_RC_MALFORMED);
}

static void test_topics(void)
{
#define T(s) (const uint8_t *)(s), strlen(s)
    CHECK(kl_topic_name_ok(T("a/b/c")) == 0);
    CHECK(kl_topic_name_ok(T("a/+/c")) != 0);
    CHECK(kl_topic_name_ok(T("")) != 0);
    CHECK(kl_topic_name_ok(T("1/2/3/4/5/6/7/8")) == 0);
    CHECK(kl_topic_name_ok(T("1/2/3/4/5/6/7/8/9")) != 0);
    CHECK(kl_topic_filter_ok(T("a/+/#")) == 0);
    CHECK(kl_topic_filter_ok(T("#")) == 0);
    CHECK(kl_topic_filter_ok(T("a/#/b")) != 0);
    CHECK(kl_topic_filter_ok(T("a+")) != 0);
    CHECK(kl_topic_filter_ok(T("a/b#")) != 0);
    char big[300];
    memset(big, 'x', sizeof big);
    CHECK(kl_topic_name_ok((const uint8_t *)big, 256) == 0);
    CHECK(kl_topic_name_ok((const uint8_t *)big, 257) != 0);
}

struct hits {
    int n;
    struct kl_session *s[16];
};

static void on_hit(void *ctx, struct kl_sub *sub)
{
    struct hits *h = ctx;
    if (h->n < 16) h->s[h->n++] = sub->sess;
}

static int count(struct kl_broker *b, const char *topic)
{
    struct hits h = {0};
    kl_tree_match(b, topic, strlen(topic), on_hit, &h);
    return h.n;
}

static void on_ret(void *ctx, struct kl_msg *m)
{
    (void)m;
    (*(int *)ctx)++;
}

static int retained(struct kl_broker *b, const char *filter)
{
    int n = 0;
    kl_tree_retained(b, filter, strlen(filter), on_ret, &n);
    return n;
}

static void test_tree(void)
{
    struct kl_broker b;
    CHECK(kl_broker_init(&b) == 0);
    struct kl_session *s1 = kl_sess_create(&b, "one"), *s2 = kl_sess_create(&b, "two");
    int ex;
    CHECK(kl_tree_subscribe(&b, s1, "a/+/c", 5, 1, 0, &ex) == 0 && !ex);
    CHECK(kl_tree_subscribe(&b, s1, "a/#", 3, 1, 0, &ex) == 0);
    CHECK(kl_tree_subscribe(&b, s2, "#", 1, 0, 0, &ex) == 0);
    CHECK(kl_tree_subscribe(&b, s2, "$SYS/x", 6, 0, 0, &ex) == 0);
    CHECK(kl_tree_subscribe(&b, s2, "+/x", 3, 0, 0, &ex) == 0);
    CHECK(kl_tree_subscribe(&b, s2, "#", 1, 2, 0, &ex) == 0 && ex); /* replaced */
    CHECK(count(&b, "a/b/c") == 3);                                 /* a/+/c, a/#, # */
    CHECK(count(&b, "a") == 2);                                     /* a/# matches a, # */
    CHECK(count(&b, "a/b/c/d") == 2);                               /* a/#, # */
    CHECK(count(&b, "z/x") == 2);                                   /* #, +/x */
    CHECK(count(&b, "$SYS/x") == 1);                                /* only the explicit filter */
    CHECK(count(&b, "$other") == 0);
    CHECK(kl_sess_find(&b, "one") == s1 && kl_sess_find(&b, "nobody") == NULL);
    /* many siblings (the child table grows and shrinks) */
    char f[32];
    for (int i = 0; i < 300; i++) {
        snprintf(f, sizeof f, "dt/d%d/t", i);
        CHECK(kl_tree_subscribe(&b, s1, f, strlen(f), 0, 0, &ex) == (i < 48 ? 0 : -2));
    }
    CHECK(count(&b, "dt/d47/t") == 2 && count(&b, "dt/d48/t") == 1);
    for (int i = 0; i < 48; i += 2) {
        snprintf(f, sizeof f, "dt/d%d/t", i);
        CHECK(kl_tree_unsubscribe(&b, s1, f, strlen(f)) == 0);
    }
    for (int i = 0; i < 48; i++) {
        snprintf(f, sizeof f, "dt/d%d/t", i);
        CHECK(count(&b, f) == 1 + (i % 2));
    }
    CHECK(kl_tree_unsubscribe(&b, s1, "no/such", 7) == -1);
    /* retained */
    struct kl_msg *m1 =
        kl_msg_new((const uint8_t *)"r/a", 3, NULL, 0, (const uint8_t *)"x", 1, 1, 1);
    struct kl_msg *m2 =
        kl_msg_new((const uint8_t *)"r/b/c", 5, NULL, 0, (const uint8_t *)"y", 1, 0, 1);
    struct kl_msg *m3 =
        kl_msg_new((const uint8_t *)"$d/a", 4, NULL, 0, (const uint8_t *)"z", 1, 0, 1);
    kl_tree_retain(&b, m1);
    kl_tree_retain(&b, m2);
    kl_tree_retain(&b, m3);
    CHECK(b.retained == 3);
    CHECK(retained(&b, "r/#") == 2 && retained(&b, "r/+") == 1 && retained(&b, "#") == 2);
    CHECK(retained(&b, "+/a") == 1 && retained(&b, "$d/+") == 1 && retained(&b, "r/b/c") == 1);
    struct kl_msg *clr = kl_msg_new((const uint8_t *)"r/a", 3, NULL, 0, NULL, 0, 0, 1);
    kl_tree_retain(&b, clr);
    CHECK(retained(&b, "r/#") == 1 && b.retained == 2);
    kl_msg_unref(m1);
    kl_msg_unref(m2);
    kl_msg_unref(m3);
    kl_msg_unref(clr);
    /* queue bound */
    struct kl_msg *q = kl_msg_new((const uint8_t *)"q", 1, NULL, 0, NULL, 0, 1, 0);
    int queued = 0;
    for (int i = 0; i < KL_DP_QUEUE_MAX + 10; i++)
        queued += kl_sess_enqueue(s2, q, 1, 0, 0) == 0;
    CHECK(queued == KL_DP_QUEUE_MAX);
    kl_msg_unref(q);
    kl_sess_destroy(&b, s1);
    CHECK(count(&b, "a/b/c") == 1);
    kl_broker_free(&b); /* frees s2, its queue and the tree */
}

static void test_b64_jws(void)
{
    uint8_t raw[64], back[64];
    for (int i = 0; i < 64; i++)
        raw[i] = (uint8_t)(i * 37);
    char enc[100];
    for (size_t n = 0; n <= 64; n++) {
        size_t bl = 0;
        kl_b64url_encode(raw, n, enc, sizeof enc);
        CHECK(strchr(enc, '=') == NULL);
        CHECK(kl_b64url_decode(enc, strlen(enc), back, sizeof back, &bl) == 0 && bl == n &&
              !memcmp(raw, back, n));
    }
    size_t bl;
    CHECK(kl_b64url_decode("ab+c", 4, back, sizeof back, &bl) != 0); /* not url alphabet */
    CHECK(kl_b64url_decode("abc=", 4, back, sizeof back, &bl) != 0);
    CHECK(kl_b64url_decode("a", 1, back, sizeof back, &bl) != 0);
    CHECK(kl_b64url_decode("AB", 2, back, sizeof back, &bl) != 0); /* non-zero spare bits */
    CHECK(kl_b64url_decode("AA", 2, back, 0, &bl) != 0);           /* no room */

    /* ES256 over a compact JWS */
    EVP_PKEY *k = EVP_EC_gen("P-256");
    CHECK(k != NULL);
    char hdr[64], cl[64], tok[400];
    kl_b64url_encode((const uint8_t *)"{\"alg\":\"ES256\"}", 15, hdr, sizeof hdr);
    kl_b64url_encode((const uint8_t *)"{\"iat\":1}", 9, cl, sizeof cl);
    int hl = snprintf(tok, sizeof tok, "%s.%s", hdr, cl);
    uint8_t der[80], sig[64] = {0};
    size_t dl = sizeof der;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    CHECK(EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, k) == 1 &&
          EVP_DigestSign(md, der, &dl, (const uint8_t *)tok, (size_t)hl) == 1);
    EVP_MD_CTX_free(md);
    const uint8_t *dp = der;
    ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &dp, (long)dl);
    BN_bn2binpad(ECDSA_SIG_get0_r(es), sig, 32);
    BN_bn2binpad(ECDSA_SIG_get0_s(es), sig + 32, 32);
    ECDSA_SIG_free(es);
    char s64[100];
    kl_b64url_encode(sig, 64, s64, sizeof s64);
    int tl = snprintf(tok + hl, sizeof tok - (size_t)hl, ".%s", s64) + hl;
    struct json_t *h, *c;
    uint8_t got[64];
    size_t signed_len;
    CHECK(kl_jws_split((const uint8_t *)tok, (size_t)tl, &h, &c, got, &signed_len) == 0);
    CHECK(signed_len == (size_t)hl && !memcmp(got, sig, 64));
    json_decref(h);
    json_decref(c);
    CHECK(kl_es256_verify(k, (const uint8_t *)tok, signed_len, got) == 1);
    got[10] ^= 1;
    CHECK(kl_es256_verify(k, (const uint8_t *)tok, signed_len, got) == 0);
    CHECK(kl_es256_verify(k, (const uint8_t *)tok, signed_len - 1, sig) == 0);
    /* shapes that are not a compact JWS */
    CHECK(kl_jws_split((const uint8_t *)tok, (size_t)hl, &h, &c, got, &signed_len) != 0);
    json_decref(h);
    json_decref(c);
    char bad[500];
    int bn = snprintf(bad, sizeof bad, "%s.x", tok);
    CHECK(kl_jws_split((const uint8_t *)bad, (size_t)bn, &h, &c, got, &signed_len) != 0);
    json_decref(h);
    json_decref(c);
    bn = snprintf(bad, sizeof bad, "%s.%s.AAAA", hdr, cl); /* 3-byte signature */
    CHECK(kl_jws_split((const uint8_t *)bad, (size_t)bn, &h, &c, got, &signed_len) == -2);
    json_decref(h);
    json_decref(c);
    EVP_PKEY_free(k);
}

static void test_builders(void)
{
    struct kl_wbuf w = {0};
    struct kl_connack_info ci = {.session_present = 1, .rc = 0, .v5 = 0};
    kl_mqtt_send_connack(&w, &ci);
    CHECK(w.len == 4 && !memcmp(w.p, "\x20\x02\x01\x00", 4));
    w.len = 0;
    ci = (struct kl_connack_info){.rc = KL_RC_NOT_AUTHORIZED, .v5 = 1, .reason = "why"};
    kl_mqtt_send_connack(&w, &ci);
    uint8_t tf;
    size_t off, len;
    CHECK(kl_mqtt_frame(w.p, w.len, &tf, &off, &len) == 1 && tf == 0x20 && off + len == w.len);
    CHECK(w.p[off + 1] == KL_RC_NOT_AUTHORIZED);
    w.len = 0;
    struct kl_msg *m = kl_msg_new((const uint8_t *)"t/1", 3, (const uint8_t *)"\x03\x00\x01x", 4,
                                  (const uint8_t *)"pay", 3, 1, 0);
    kl_mqtt_send_publish(&w, m, 1, 0, 1, 9, 7, 1, 0);
    struct kl_mqtt_publish pub;
    CHECK(kl_mqtt_frame(w.p, w.len, &tf, &off, &len) == 1 && (tf & 0x0f) == 0x0a);
    /* the server's PUBLISH carries a Subscription Identifier, which a client may not send:
     * check the layout by hand instead */
    CHECK(w.p[off + 6] == 9 && w.p[off + 7] == 6 && w.p[off + 8] == KL_P_SUB_ID);
    w.len = 0;
    kl_mqtt_send_publish(&w, m, 0, 1, 0, 0, 0, 0, 0);
    CHECK(kl_mqtt_frame(w.p, w.len, &tf, &off, &len) == 1 && tf == 0x31);
    CHECK(kl_mqtt_parse_publish(tf & 0x0f, w.p + off, len, 0, &pub) == 0 && pub.payload.n == 3);
    kl_msg_unref(m);
    free(w.p);
}

int main(void)
{
    test_connect();
    test_props();
    test_utf8_frame();
    test_publish_subscribe();
    test_topics();
    test_tree();
    test_b64_jws();
    test_builders();
    if (failures) {
        fprintf(stderr, "%d check(s) failed\n", failures);
        return 1;
    }
    printf("data-plane codec ok\n");
    return 0;
}
