/* MQTT client state machine against a scripted broker in the test (a fake transport that
 * answers each packet the client sends): QoS 0/1/2 both ways, exactly-once delivery of a
 * resent QoS 2 message, keep-alive and its timeout, refusals, the MQTT 5 AUTH exchange,
 * malformed and oversized packets, server DISCONNECT, reads cut into single bytes, session
 * resumption, in-flight limits. */
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

/* ---- the scripted broker ---- */
struct broker {
    uint8_t v;           /* protocol version expected */
    uint8_t connack_rc;  /* reason to answer CONNECT with */
    int session_present; /* CONNACK session present */
    int auth;            /* send AUTH 0x18 before CONNACK, check the answer */
    int no_pingresp, no_acks, trickle, silent;
    int connacked, reauth_refuse, reauths;
    int pingreqs, pubrels_seen, disconnects, auth_ok;
    uint8_t pub_rc, comp_rc; /* MQTT 5 reason code in PUBACK/PUBREC and in PUBCOMP */
    uint8_t sub_rc;          /* SUBACK code for every filter instead of the granted QoS */
    uint8_t last_disconnect_rc;
    uint8_t out[8192]; /* bytes for the client to read */
    size_t out_len, out_off;
    uint8_t sent[16][256]; /* packets the client sent, by order */
    size_t sent_len[16], nsent;
    uint64_t clock;
    const uint8_t *inject; /* raw bytes to queue after the CONNACK */
    size_t inject_len;
};

static void queue(struct broker *b, const void *p, size_t n)
{
    memcpy(b->out + b->out_len, p, n);
    b->out_len += n;
}

static kl_status t_send(void *ctx, const uint8_t *p, size_t n)
{
    struct broker *b = ctx;
    struct kl_mq_frame f;
    if (kl_mq_frame(p, n, &f) || !f.complete || f.total != n) {
        fprintf(stderr, "client sent a broken packet\n");
        fails++;
        return KL_OK;
    }
    if (b->nsent < 16 && n <= 256) {
        memcpy(b->sent[b->nsent], p, n);
        b->sent_len[b->nsent++] = n;
    }
    const uint8_t *body = p + f.header_len;
    uint8_t pkt[64];
    if (b->silent) return KL_OK;
    switch (f.type) {
    case KL_MQ_CONNECT:
        if (b->auth) {
            /* AUTH 0x18, method "m", data = 3 bytes "abc" */
            static const uint8_t a[] = {0xF0, 12,   0x18, 10, 0x15, 0,   1,
                                        'm',  0x16, 0,    3,  'a',  'b', 'c'};
            queue(b, a, sizeof a);
            break;
        }
        /* fall through */
    connack:
        b->connacked = 1;
        pkt[0] = 0x20;
        if (b->v == KL_MQ_V5) {
            pkt[1] = 3;
            pkt[2] = (uint8_t)b->session_present;
            pkt[3] = b->connack_rc;
            pkt[4] = 0;
            queue(b, pkt, 5);
        } else {
            pkt[1] = 2;
            pkt[2] = (uint8_t)b->session_present;
            pkt[3] = b->connack_rc;
            queue(b, pkt, 4);
        }
        if (b->inject) queue(b, b->inject, b->inject_len);
        break;
    case KL_MQ_AUTH: {
        uint8_t rc;
        struct kl_mq_props pr;
        int ok = kl_mq_de_auth(body, f.body_len, &rc, &pr) == KL_OK;
        static const uint8_t a18[] = {0xF0, 12,   0x18, 10, 0x15, 0,   1,
                                      'm',  0x16, 0,    3,  'a',  'b', 'c'};
        if (b->connacked && ok && rc == 0x19) { /* re-authentication: challenge again */
            queue(b, a18, sizeof a18);
            break;
        }
        b->auth_ok = ok && rc == 0x18 && pr.auth_data.n == 6 &&
                     !memcmp(pr.auth_data.p, "cba!!!", 6) && pr.auth_method.n == 1 &&
                     pr.auth_method.p[0] == 'm';
        if (b->connacked) {
            b->reauths++;
            if (b->reauth_refuse || !b->auth_ok)
                queue(b, "\xE0\x01\x87", 3);
            else
                queue(b, "\xF0\x00", 2);
            break;
        }
        goto connack;
    }
    case KL_MQ_PUBLISH:
        if (b->no_acks) break;
        if (((f.flags >> 1) & 3) == 1) {
            size_t tl = ((size_t)body[0] << 8) | body[1];
            uint8_t a[] = {0x40, b->pub_rc ? 3 : 2, body[2 + tl], body[3 + tl], b->pub_rc};
            queue(b, a, b->pub_rc ? 5 : 4);
        } else if (((f.flags >> 1) & 3) == 2) {
            size_t tl = ((size_t)body[0] << 8) | body[1];
            uint8_t a[] = {0x50, b->pub_rc ? 3 : 2, body[2 + tl], body[3 + tl], b->pub_rc};
            queue(b, a, b->pub_rc ? 5 : 4);
        }
        break;
    case KL_MQ_PUBREL: {
        b->pubrels_seen++;
        if (b->no_acks) break;
        uint8_t a[] = {0x70, b->comp_rc ? 3 : 2, body[0], body[1], b->comp_rc};
        queue(b, a, b->comp_rc ? 5 : 4);
        break;
    }
    case KL_MQ_SUBSCRIBE: {
        /* grant each requested QoS */
        size_t off = 2;
        uint8_t a[32] = {0x90, 0, body[0], body[1]};
        size_t n2 = 4;
        if (b->v == KL_MQ_V5) {
            a[n2++] = 0;
            off++;
        }
        while (off < f.body_len) {
            size_t fl = ((size_t)body[off] << 8) | body[off + 1];
            off += 2 + fl;
            a[n2++] = b->sub_rc ? b->sub_rc : (body[off] & 3);
            off++;
        }
        a[1] = (uint8_t)(n2 - 2);
        queue(b, a, n2);
        break;
    }
    case KL_MQ_UNSUBSCRIBE: {
        uint8_t a[] = {0xB0, 2, body[0], body[1], 0, 0};
        if (b->v == KL_MQ_V5) a[1] = 4; /* properties, one reason code */
        queue(b, a, (size_t)a[1] + 2);
        break;
    }
    case KL_MQ_PINGREQ:
        b->pingreqs++;
        if (!b->no_pingresp) queue(b, "\xD0\x00", 2);
        break;
    case KL_MQ_DISCONNECT:
        b->disconnects++;
        b->last_disconnect_rc = f.body_len ? body[0] : 0;
        break;
    default:
        break;
    }
    return KL_OK;
}

static kl_status t_recv(void *ctx, uint8_t *buf, size_t cap, size_t *got, uint32_t timeout_ms)
{
    struct broker *b = ctx;
    *got = 0;
    if (b->out_off == b->out_len) {
        b->clock += timeout_ms; /* nothing to read: the wait passes */
        return KL_E_TIMEOUT;
    }
    size_t n = b->out_len - b->out_off;
    if (b->trickle) n = 1;
    if (n > cap) n = cap;
    memcpy(buf, b->out + b->out_off, n);
    b->out_off += n;
    *got = n;
    return KL_OK;
}

static uint64_t t_now(void *ctx)
{
    return ((struct broker *)ctx)->clock;
}

struct got {
    int n;
    char last[64];
    uint8_t qos;
};
static void on_msg(void *ctx, const struct kl_mq_msg *m)
{
    struct got *g = ctx;
    g->n++;
    g->qos = m->qos;
    snprintf(g->last, sizeof g->last, "%.*s=%.*s", (int)m->topic_len, m->topic, (int)m->payload_len,
             (const char *)m->payload);
}

static kl_status on_auth(void *ctx, uint8_t reason, const struct kl_mq_props *in,
                         struct kl_mq_props *out)
{
    static uint8_t answer[6];
    (void)ctx;
    if (reason != 0x18 || in->auth_data.n != 3) return KL_E_PEER;
    for (int i = 0; i < 3; i++)
        answer[i] = in->auth_data.p[2 - i];
    memcpy(answer + 3, "!!!", 3);
    out->has = KL_MQ_HAS(KL_MQ_P_AUTH_METHOD) | KL_MQ_HAS(KL_MQ_P_AUTH_DATA);
    out->auth_method = in->auth_method;
    out->auth_data.p = answer;
    out->auth_data.n = 6;
    return KL_OK;
}

static uint8_t tx[4096], rx[512];
static struct kl_mq_inflight slots[4];

static void setup(struct kl_mq_client *c, struct broker *b, struct got *g, uint8_t v)
{
    memset(b, 0, sizeof *b);
    memset(g, 0, sizeof *g);
    b->v = v;
    b->clock = 1000;
    struct kl_mq_config cfg = {.tr = {b, t_send, t_recv},
                               .now_ms = t_now,
                               .now_ctx = b,
                               .tx = tx,
                               .tx_cap = sizeof tx,
                               .rx = rx,
                               .rx_cap = sizeof rx,
                               .slots = slots,
                               .nslots = 4,
                               .on_message = on_msg,
                               .message_ctx = g,
                               .on_auth = on_auth};
    CHECK(kl_mq_init(c, &cfg) == KL_OK);
}

static kl_status connect(struct kl_mq_client *c, uint8_t v, struct kl_mq_connack *ack)
{
    struct kl_mq_connect_opts o = {.version = v, .client_id = "dev", .keepalive_s = 10, .clean = 1};
    return kl_mq_connect(c, &o, 5000, ack);
}

static size_t free_slots(void)
{
    size_t n = 0;
    for (int i = 0; i < 4; i++)
        n += slots[i].state == KL_MQ_SLOT_FREE;
    return n;
}

static void test_qos_both_ways(uint8_t v, int trickle)
{
    struct kl_mq_client c;
    struct broker b;
    struct got g;
    setup(&c, &b, &g, v);
    b.trickle = trickle;
    struct kl_mq_connack ack;
    CHECK(connect(&c, v, &ack) == KL_OK && c.connected && ack.reason == 0);
    if (v == KL_MQ_V5) {
        /* the client told the server its limits */
        struct kl_mq_props pr;
        size_t used;
        CHECK(kl_mq_de_props(b.sent[0] + 2 + 10, b.sent_len[0] - 12, KL_MQ_CONNECT, &pr, &used) ==
                  KL_OK &&
              pr.max_packet == sizeof rx && pr.receive_max == 4);
    }
    for (uint8_t q = 0; q <= 2; q++) {
        struct kl_mq_msg m = {
            .topic = "t/x", .payload = (const uint8_t *)"p", .payload_len = 1, .qos = q};
        uint16_t pid = 0;
        CHECK(kl_mq_publish(&c, &m, &pid) == KL_OK);
        CHECK((q == 0) == (pid == 0));
        CHECK(kl_mq_wait(&c, 1000) == KL_OK);
        CHECK(free_slots() == 4);
    }
    CHECK(b.pubrels_seen == 1);
    struct kl_mq_sub s[2] = {{.filter = "a/#", .qos = 2}, {.filter = "b/+", .qos = 1}};
    uint8_t codes[2];
    CHECK(kl_mq_subscribe(&c, s, 2, NULL, 1000, codes) == KL_OK && codes[0] == 2 && codes[1] == 1);
    /* a QoS 2 message, its resend (dup) before PUBREL, then PUBREL: delivered once */
    /* what a server sends is what our serializer makes for the same packet */
    uint8_t pub2[32], pub2dup[32], rel[8], pub1[32];
    size_t l2, l2d, lr, l1;
    struct kl_mq_msg sm = {.topic = "a/z", .qos = 2, .pid = 9};
    CHECK(kl_mq_ser_publish(pub2, sizeof pub2, v, &sm, &l2) == KL_OK);
    sm.dup = 1;
    CHECK(kl_mq_ser_publish(pub2dup, sizeof pub2dup, v, &sm, &l2d) == KL_OK);
    CHECK(kl_mq_ser_ack(rel, sizeof rel, v, KL_MQ_PUBREL, 9, 0, NULL, &lr) == KL_OK);
    struct kl_mq_msg s1 = {
        .topic = "b/q", .qos = 1, .pid = 7, .payload = (const uint8_t *)"x", .payload_len = 1};
    CHECK(kl_mq_ser_publish(pub1, sizeof pub1, v, &s1, &l1) == KL_OK);
    queue(&b, pub2, l2);
    queue(&b, pub2dup, l2d);
    for (int i = 0; i < 40 && b.out_off < b.out_len; i++)
        CHECK(kl_mq_process(&c, 10) == KL_OK);
    CHECK(g.n == 1 && !strcmp(g.last, "a/z=") && g.qos == 2 && free_slots() == 3);
    size_t before = b.nsent;
    queue(&b, rel, lr);
    for (int i = 0; i < 10 && b.out_off < b.out_len; i++)
        CHECK(kl_mq_process(&c, 10) == KL_OK);
    CHECK(free_slots() == 4 && b.nsent == before + 1 && b.sent[before][0] == 0x70);
    /* QoS 1 in: delivered and PUBACKed */
    queue(&b, pub1, l1);
    for (int i = 0; i < 20 && b.out_off < b.out_len; i++)
        CHECK(kl_mq_process(&c, 10) == KL_OK);
    CHECK(g.n == 2 && !strcmp(g.last, "b/q=x") && b.sent[b.nsent - 1][0] == 0x40);
    const char *uf[] = {"a/#"};
    CHECK(kl_mq_unsubscribe(&c, uf, 1, NULL, 1000, NULL) == KL_OK);
    CHECK(kl_mq_disconnect(&c, 0, NULL) == KL_OK && !c.connected && b.disconnects == 1);
    CHECK(kl_mq_process(&c, 0) == KL_E_STATE);
    CHECK(kl_mq_publish(&c, &(struct kl_mq_msg){.topic = "x"}, NULL) == KL_E_STATE);
}

static void test_keepalive(void)
{
    struct kl_mq_client c;
    struct broker b;
    struct got g;
    setup(&c, &b, &g, KL_MQ_V311);
    struct kl_mq_connack ack;
    CHECK(connect(&c, KL_MQ_V311, &ack) == KL_OK);
    /* 25 s of silence with a 10 s keep-alive: two pings, both answered */
    for (int i = 0; i < 50; i++)
        CHECK(kl_mq_process(&c, 500) == KL_OK);
    CHECK(b.pingreqs == 2 || b.pingreqs == 3);
    /* the server stops answering: the connection is declared dead within 2 keep-alives */
    b.no_pingresp = 1;
    kl_status st = KL_OK;
    for (int i = 0; i < 100 && st == KL_OK; i++)
        st = kl_mq_process(&c, 500);
    CHECK(st == KL_E_TIMEOUT && !c.connected);
}

static void test_refusals(void)
{
    struct kl_mq_client c;
    struct broker b;
    struct got g;
    struct kl_mq_connack ack;
    setup(&c, &b, &g, KL_MQ_V311);
    b.connack_rc = 5;
    CHECK(connect(&c, KL_MQ_V311, &ack) == KL_E_REFUSED && ack.reason == 5 && !c.connected);
    CHECK(strstr(kl_mq_error(&c), "not authorized") != NULL);
    setup(&c, &b, &g, KL_MQ_V5);
    b.connack_rc = 0x86;
    CHECK(connect(&c, KL_MQ_V5, &ack) == KL_E_REFUSED && ack.reason == 0x86);
    /* nothing answers: timeout */
    setup(&c, &b, &g, KL_MQ_V311);
    b.silent = 1;
    struct kl_mq_connect_opts o = {.version = KL_MQ_V311, .client_id = "x", .clean = 1};
    CHECK(kl_mq_connect(&c, &o, 100, &ack) == KL_E_TIMEOUT && !c.connected);
    /* an AUTH to a 3.1.1 client, a PUBLISH before CONNACK */
    setup(&c, &b, &g, KL_MQ_V311);
    queue(&b, "\xF0\x00", 2);
    o.version = KL_MQ_V311;
    CHECK(kl_mq_connect(&c, &o, 1000, &ack) == KL_E_PEER);
}

static uint16_t done_pid[8];
static uint8_t done_type[8], done_rc[8];
static int ndone;
static void on_done(void *ctx, uint16_t pid, uint8_t type, uint8_t reason)
{
    (void)ctx;
    if (ndone < 8) {
        done_pid[ndone] = pid;
        done_type[ndone] = type;
        done_rc[ndone] = reason;
    }
    ndone++;
}

/* MQTT 5 PUBACK/PUBREC/PUBCOMP reason codes >= 0x80: kl_mq_wait says KL_E_REFUSED with the
 * reason, on_done hears each ending, the connection stays usable; success codes below 0x80
 * (0x10 no matching subscribers) are deliveries. */
static void test_publish_refused(void)
{
    struct kl_mq_client c;
    struct broker b;
    struct got g;
    struct kl_mq_connack ack;
    struct kl_mq_msg m = {.topic = "t/x", .payload = (const uint8_t *)"p", .payload_len = 1};
    uint16_t pid;
    setup(&c, &b, &g, KL_MQ_V5);
    c.cfg.on_done = on_done;
    ndone = 0;
    CHECK(connect(&c, KL_MQ_V5, &ack) == KL_OK);
    for (uint8_t q = 1; q <= 2; q++) {
        b.pub_rc = 0x87;
        m.qos = q;
        CHECK(kl_mq_publish(&c, &m, &pid) == KL_OK);
        CHECK(kl_mq_wait(&c, 1000) == KL_E_REFUSED && c.connected && free_slots() == 4);
        CHECK(c.refused_reason == 0x87 && c.refused_pid == pid && c.refused == 0);
        CHECK(c.refused_type == (q == 1 ? KL_MQ_PUBACK : KL_MQ_PUBREC));
        CHECK(strstr(kl_mq_error(&c), "refused a message: not authorized 0x87") != NULL);
        CHECK(ndone == q && done_pid[q - 1] == pid && done_rc[q - 1] == 0x87);
        /* reported once; the next message is accepted */
        CHECK(kl_mq_wait(&c, 1000) == KL_OK);
        b.pub_rc = 0x10;
        CHECK(kl_mq_publish(&c, &m, &pid) == KL_OK);
        CHECK(kl_mq_wait(&c, 1000) == KL_OK && free_slots() == 4);
        ndone = q;
    }
    CHECK(b.pubrels_seen == 1); /* only the accepted QoS 2 message was released */
    /* several in flight, one refused among them: reported after all are done */
    b.pub_rc = 0;
    m.qos = 1;
    CHECK(kl_mq_publish(&c, &m, NULL) == KL_OK);
    b.pub_rc = 0x97;
    CHECK(kl_mq_publish(&c, &m, NULL) == KL_OK);
    b.pub_rc = 0;
    CHECK(kl_mq_publish(&c, &m, NULL) == KL_OK);
    CHECK(kl_mq_wait(&c, 1000) == KL_E_REFUSED && c.refused_reason == 0x97 && free_slots() == 4);
    CHECK(strstr(kl_mq_error(&c), "quota exceeded 0x97") != NULL);
    /* PUBCOMP with a failure code */
    b.comp_rc = 0x92;
    m.qos = 2;
    CHECK(kl_mq_publish(&c, &m, &pid) == KL_OK);
    CHECK(kl_mq_wait(&c, 1000) == KL_E_REFUSED && c.refused_type == KL_MQ_PUBCOMP &&
          c.refused_reason == 0x92 && c.connected);
    /* a fresh connection starts with nothing to report */
    b.comp_rc = 0;
    c.refused = 5;
    CHECK(kl_mq_disconnect(&c, 0, NULL) == KL_OK);
    CHECK(connect(&c, KL_MQ_V5, &ack) == KL_OK && c.refused == 0);
    CHECK(kl_mq_wait(&c, 1000) == KL_OK);
    /* a refused subscription names its reason */
    setup(&c, &b, &g, KL_MQ_V5);
    CHECK(connect(&c, KL_MQ_V5, &ack) == KL_OK);
    b.sub_rc = 0x87;
    struct kl_mq_sub s = {.filter = "cmd/#", .qos = 1};
    uint8_t code = 0;
    CHECK(kl_mq_subscribe(&c, &s, 1, NULL, 1000, &code) == KL_E_REFUSED && code == 0x87);
    CHECK(strstr(kl_mq_error(&c), "refused a filter: not authorized 0x87") != NULL && c.connected);
    /* 3.1.1: the only failure code is 0x80 */
    setup(&c, &b, &g, KL_MQ_V311);
    CHECK(connect(&c, KL_MQ_V311, &ack) == KL_OK);
    b.sub_rc = 0x80;
    CHECK(kl_mq_subscribe(&c, &s, 1, NULL, 1000, &code) == KL_E_REFUSED && code == 0x80);
}

static void test_auth(void)
{
    struct kl_mq_client c;
    struct broker b;
    struct got g;
    setup(&c, &b, &g, KL_MQ_V5);
    b.auth = 1;
    struct kl_mq_props p = {.has = KL_MQ_HAS(KL_MQ_P_AUTH_METHOD)};
    p.auth_method.p = (const uint8_t *)"m";
    p.auth_method.n = 1;
    struct kl_mq_connect_opts o = {.version = KL_MQ_V5, .client_id = "d", .clean = 1, .props = &p};
    struct kl_mq_connack ack;
    CHECK(kl_mq_connect(&c, &o, 1000, &ack) == KL_OK && b.auth_ok == 1);
    /* re-authentication on the live connection: challenge, answer, AUTH 0x00 */
    CHECK(kl_mq_reauth(&c, &p, 1000) == KL_OK && b.reauths == 1 && c.connected);
    struct kl_mq_msg m = {.topic = "t", .qos = 1};
    CHECK(kl_mq_publish(&c, &m, NULL) == KL_OK && kl_mq_wait(&c, 1000) == KL_OK);
    /* refused: the server's DISCONNECT 0x87 */
    b.reauth_refuse = 1;
    CHECK(kl_mq_reauth(&c, &p, 1000) == KL_E_CLOSED && !c.connected && c.disconnect_reason == 0x87);
    struct kl_mq_props nomethod = {0};
    CHECK(kl_mq_reauth(&c, &nomethod, 1000) == KL_E_ARG);
    /* an AUTH nobody asked for after CONNACK is a protocol error */
    setup(&c, &b, &g, KL_MQ_V5);
    b.inject = (const uint8_t *)"\xF0\x00";
    b.inject_len = 2;
    struct kl_mq_connect_opts plain = {.version = KL_MQ_V5, .client_id = "d", .clean = 1};
    CHECK(kl_mq_connect(&c, &plain, 1000, &ack) == KL_OK);
    kl_status st = KL_OK;
    for (int i = 0; i < 5 && st == KL_OK; i++)
        st = kl_mq_process(&c, 10);
    CHECK(st == KL_E_PEER && b.disconnects == 1 && b.last_disconnect_rc == 0x82);
    /* re-authentication needs MQTT 5 */
    setup(&c, &b, &g, KL_MQ_V311);
    CHECK(connect(&c, KL_MQ_V311, &ack) == KL_OK);
    CHECK(kl_mq_reauth(&c, &p, 1000) == KL_E_UNSUPPORTED);
    /* without an auth callback the AUTH is a protocol error */
    setup(&c, &b, &g, KL_MQ_V5);
    b.auth = 1;
    c.cfg.on_auth = NULL;
    CHECK(kl_mq_connect(&c, &o, 1000, &ack) == KL_E_PEER);
}

static void test_hostile(void)
{
    static const struct {
        uint8_t v;
        size_t n;
        uint8_t b[12];
        kl_status want;
        uint8_t disc; /* DISCONNECT reason the client must send (MQTT 5), 0 = none */
    } cases[] = {
        {KL_MQ_V5, 4, {0x30, 2, 0, 5}, KL_E_PEER, 0x81}, /* topic past the end */
        {KL_MQ_V5, 2, {0x10, 0}, KL_E_PEER, 0x82},       /* CONNECT from the server */
        {KL_MQ_V5, 2, {0x22, 0}, KL_E_PEER, 0x81},       /* bad flags */
        {KL_MQ_V5, 3, {0xE0, 1, 0x8E}, KL_E_CLOSED, 0},  /* server DISCONNECT */
        {KL_MQ_V311, 2, {0xE0, 0}, KL_E_PEER, 0},        /* 3.1.1 DISCONNECT */
        {KL_MQ_V5, 6, {0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F}, KL_E_PEER, 0x81},
        {KL_MQ_V5, 4, {0x30, 0x80, 0x08, 0}, KL_E_PEER, 0x95}, /* 1024 > rx */
        {KL_MQ_V311, 3, {0xD0, 1, 0}, KL_E_PEER, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct kl_mq_client c;
        struct broker b;
        struct got g;
        setup(&c, &b, &g, cases[i].v);
        b.inject = cases[i].b;
        b.inject_len = cases[i].n;
        struct kl_mq_connack ack;
        CHECK(connect(&c, cases[i].v, &ack) == KL_OK);
        kl_status st = KL_OK;
        for (int k = 0; k < 20 && st == KL_OK; k++)
            st = kl_mq_process(&c, 10);
        if (st != cases[i].want) fprintf(stderr, "hostile case %zu: %s\n", i, kl_status_name(st));
        CHECK(st == cases[i].want && !c.connected);
        CHECK(b.disconnects == (cases[i].disc ? 1 : 0));
        if (cases[i].disc) CHECK(b.last_disconnect_rc == cases[i].disc);
        if (cases[i].want == KL_E_CLOSED) CHECK(c.disconnect_reason == 0x8E);
        CHECK(g.n == 0);
    }
}

static void test_session_and_limits(void)
{
    struct kl_mq_client c;
    struct broker b;
    struct got g;
    setup(&c, &b, &g, KL_MQ_V311);
    struct kl_mq_connack ack;
    CHECK(connect(&c, KL_MQ_V311, &ack) == KL_OK);
    b.no_acks = 1;
    struct kl_mq_msg m = {.topic = "t", .qos = 1};
    uint16_t pids[4];
    for (int i = 0; i < 4; i++)
        CHECK(kl_mq_publish(&c, &m, &pids[i]) == KL_OK);
    CHECK(kl_mq_publish(&c, &m, NULL) == KL_E_BUFFER); /* four slots */
    CHECK(kl_mq_wait(&c, 300) == KL_E_TIMEOUT && c.connected);
    /* one becomes a QoS 2 exchange waiting for PUBCOMP */
    slots[3].state = KL_MQ_SLOT_WAIT_PUBCOMP;
    /* reconnect with the session kept */
    c.connected = 0;
    b.no_acks = 0;
    b.session_present = 1;
    b.pubrels_seen = 0;
    struct kl_mq_connect_opts o = {.version = KL_MQ_V311, .client_id = "dev", .clean = 0};
    CHECK(kl_mq_connect(&c, &o, 1000, &ack) == KL_OK && ack.session_present);
    CHECK(b.pubrels_seen == 1); /* PUBREL resent at once */
    uint16_t pid;
    size_t n = 0;
    while (kl_mq_pending(&c, n, &pid) == KL_OK)
        n++;
    CHECK(n == 3);
    /* the app resends them with dup and the same ids */
    for (size_t i = 0; i < 3; i++) {
        struct kl_mq_msg r = m;
        CHECK(kl_mq_pending(&c, 0, &r.pid) == KL_OK);
        r.dup = 1;
        CHECK(kl_mq_publish(&c, &r, NULL) == KL_OK);
        CHECK(kl_mq_process(&c, 10) == KL_OK);
    }
    CHECK(kl_mq_wait(&c, 1000) == KL_OK && free_slots() == 4);
    /* a clean reconnect forgets the table */
    slots[0].state = KL_MQ_SLOT_WAIT_PUBACK;
    slots[0].pid = 77;
    c.connected = 0;
    b.session_present = 0;
    CHECK(connect(&c, KL_MQ_V311, &ack) == KL_OK && free_slots() == 4);
    /* arguments */
    CHECK(kl_mq_connect(&c, &o, 10, &ack) == KL_E_STATE);
    struct kl_mq_msg bad = {.topic = "a/+"};
    CHECK(kl_mq_publish(&c, &bad, NULL) == KL_E_ARG);
    struct kl_mq_msg huge = {.topic = "t", .payload = tx, .payload_len = sizeof tx};
    CHECK(kl_mq_publish(&c, &huge, NULL) == KL_E_BUFFER);
    struct kl_mq_config cfg = c.cfg;
    cfg.rx_cap = 10;
    CHECK(kl_mq_init(&c, &cfg) == KL_E_BUFFER);
    cfg.now_ms = NULL;
    CHECK(kl_mq_init(&c, &cfg) == KL_E_ARG);
}

/* Random packets from a hostile server: whatever comes, the client either handles it or
 * gives up with a status; it never reads or writes outside its buffers (ASan) and never
 * delivers a message whose pointers leave the receive buffer. */
static const uint8_t *rx_lo, *rx_hi;
static void check_bounds(void *ctx, const struct kl_mq_msg *m)
{
    (void)ctx;
    CHECK((const uint8_t *)m->topic >= rx_lo && (const uint8_t *)m->topic + m->topic_len <= rx_hi);
    CHECK(m->payload >= rx_lo && m->payload + m->payload_len <= rx_hi);
}

static void test_random(void)
{
    uint32_t x = 12345;
    int handled = 0, refused = 0;
    rx_lo = rx;
    rx_hi = rx + sizeof rx;
    for (int round = 0; round < 3000; round++) {
        struct kl_mq_client c;
        struct broker b;
        struct got g;
        uint8_t v = round & 1 ? KL_MQ_V5 : KL_MQ_V311;
        setup(&c, &b, &g, v);
        c.cfg.on_message = check_bounds;
        uint8_t pkt[64];
        size_t n = 2;
        x ^= x << 13, x ^= x >> 17, x ^= x << 5;
        /* mostly well-framed packets of the types a server sends, with random bodies */
        static const uint8_t types[] = {0x20, 0x30, 0x32, 0x34, 0x3B, 0x40, 0x50,
                                        0x62, 0x70, 0x90, 0xB0, 0xD0, 0xE0, 0xF0};
        pkt[0] = (x & 7) ? types[(x >> 3) % sizeof types] : (uint8_t)(x >> 8);
        size_t body = (x >> 16) % 40;
        pkt[1] = (uint8_t)body;
        for (size_t i = 0; i < body; i++) {
            x ^= x << 13, x ^= x >> 17, x ^= x << 5;
            pkt[n++] = (uint8_t)((x & 3) == 0 ? x >> 8 : (x >> 8) % 8); /* many small values */
        }
        b.inject = pkt;
        b.inject_len = n;
        struct kl_mq_connack ack;
        if (connect(&c, v, &ack) != KL_OK) continue;
        kl_status st = KL_OK;
        for (int k = 0; k < 5 && st == KL_OK; k++)
            st = kl_mq_process(&c, 1);
        if (st == KL_OK)
            handled++;
        else
            refused++;
    }
    CHECK(handled > 0 && refused > 0);
}

int main(void)
{
    test_random();
    test_qos_both_ways(KL_MQ_V311, 0);
    test_qos_both_ways(KL_MQ_V5, 0);
    test_qos_both_ways(KL_MQ_V311, 1);
    test_qos_both_ways(KL_MQ_V5, 1);
    test_keepalive();
    test_refusals();
    test_publish_refused();
    test_auth();
    test_hostile();
    test_session_and_limits();
    if (fails) {
        fprintf(stderr, "%d check(s) failed\n", fails);
        return 1;
    }
    printf("mqtt client ok\n");
    return 0;
}
