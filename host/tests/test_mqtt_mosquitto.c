/* The MQTT client against Debian's mosquitto (plain TCP on loopback, started here) over the
 * POSIX socket transport: MQTT 5 properties carried end to end, QoS 0/1/2 both ways,
 * subscription options (no local), retained messages, a will sent when a client vanishes,
 * a persistent 3.1.1 session with a queued message, unsubscribe, keep-alive pings, and an
 * unknown enhanced-authentication method refused with 0x8C. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "keylink/mqtt.h"
#include "keylink/tls_posix.h"

static int fails;
#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c)) {                                                                                \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #c);                  \
            fails++;                                                                               \
        }                                                                                          \
    } while (0)

static char port[8];

static uint64_t now_ms(void *ctx)
{
    (void)ctx;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

struct inbox {
    int n;
    char topic[8][64], body[8][64];
    uint8_t qos[8], retain[8];
    char ctype[32], corr[32], user[32];
};

static void on_msg(void *ctx, const struct kl_mq_msg *m)
{
    struct inbox *b = ctx;
    if (b->n >= 8) return;
    snprintf(b->topic[b->n], 64, "%.*s", (int)m->topic_len, m->topic);
    snprintf(b->body[b->n], 64, "%.*s", (int)m->payload_len, (const char *)m->payload);
    b->qos[b->n] = m->qos;
    b->retain[b->n] = m->retain;
    if (m->props && (m->props->has & KL_MQ_HAS(KL_MQ_P_CONTENT_TYPE)))
        snprintf(b->ctype, sizeof b->ctype, "%.*s", (int)m->props->content_type.n,
                 (const char *)m->props->content_type.p);
    if (m->props && (m->props->has & KL_MQ_HAS(KL_MQ_P_CORRELATION)))
        snprintf(b->corr, sizeof b->corr, "%.*s", (int)m->props->correlation.n,
                 (const char *)m->props->correlation.p);
    if (m->props && m->props->user_n)
        snprintf(b->user, sizeof b->user, "%.*s=%.*s", (int)m->props->user_key[0].n,
                 (const char *)m->props->user_key[0].p, (int)m->props->user_val[0].n,
                 (const char *)m->props->user_val[0].p);
    b->n++;
}

struct cli {
    struct kl_tls_posix sock;
    struct kl_mq_client c;
    struct kl_mq_inflight slots[8];
    uint8_t tx[2048], rx[2048];
    struct inbox in;
};

static kl_status open_cli(struct cli *k, const struct kl_mq_connect_opts *o,
                          struct kl_mq_connack *ack)
{
    memset(&k->in, 0, sizeof k->in);
    kl_status st = kl_tls_posix_connect(&k->sock, "127.0.0.1", port, 3000);
    if (st != KL_OK) return st;
    struct kl_tls_transport t;
    kl_tls_posix_transport(&k->sock, &t);
    struct kl_mq_config cfg = {.tr = {t.ctx, t.send, t.recv},
                               .now_ms = now_ms,
                               .tx = k->tx,
                               .tx_cap = sizeof k->tx,
                               .rx = k->rx,
                               .rx_cap = sizeof k->rx,
                               .slots = k->slots,
                               .nslots = 8,
                               .on_message = on_msg,
                               .message_ctx = &k->in};
    CHECK(kl_mq_init(&k->c, &cfg) == KL_OK);
    struct kl_mq_connack a;
    st = kl_mq_connect(&k->c, o, 3000, ack ? ack : &a);
    if (st != KL_OK)
        fprintf(stderr, "connect %s: %s %s\n", o->client_id, kl_status_name(st),
                kl_mq_error(&k->c));
    return st;
}

static void close_cli(struct cli *k)
{
    if (k->c.connected) kl_mq_disconnect(&k->c, 0, NULL);
    kl_tls_posix_close(&k->sock);
}

/* Processes k until it holds n messages or ms passed. */
static void pump_for(struct cli *k, int n, uint64_t ms)
{
    uint64_t t0 = now_ms(NULL);
    while (k->in.n < n && now_ms(NULL) - t0 < ms)
        if (kl_mq_process(&k->c, 50) != KL_OK) break;
}
static void pump(struct cli *k, int n)
{
    pump_for(k, n, 3000);
}

static void test_v5(void)
{
    static struct cli a, b;
    struct kl_mq_props cp = {.has = KL_MQ_HAS(KL_MQ_P_SESSION_EXPIRY), .session_expiry = 0};
    struct kl_mq_connect_opts oa = {
        .version = KL_MQ_V5, .client_id = "kl-a", .keepalive_s = 30, .clean = 1, .props = &cp};
    struct kl_mq_connect_opts ob = oa;
    ob.client_id = "kl-b";
    struct kl_mq_connack ack;
    CHECK(open_cli(&a, &oa, &ack) == KL_OK && ack.reason == 0);
    CHECK(open_cli(&b, &ob, NULL) == KL_OK);
    /* b takes t/+ at QoS 2 with no local: it must not get its own messages */
    struct kl_mq_sub s = {.filter = "t/+", .qos = 2, .no_local = 1};
    uint8_t code = 0xFF;
    CHECK(kl_mq_subscribe(&b.c, &s, 1, NULL, 3000, &code) == KL_OK && code == 2);
    struct kl_mq_props mp = {0};
    mp.has = KL_MQ_HAS(KL_MQ_P_CONTENT_TYPE) | KL_MQ_HAS(KL_MQ_P_CORRELATION) |
             KL_MQ_HAS(KL_MQ_P_USER) | KL_MQ_HAS(KL_MQ_P_PAYLOAD_FORMAT);
    mp.payload_format = 1;
    mp.content_type = (struct kl_mq_bin){(const uint8_t *)"text/plain", 10};
    mp.correlation = (struct kl_mq_bin){(const uint8_t *)"corr-1", 6};
    mp.user_key[0] = (struct kl_mq_bin){(const uint8_t *)"k", 1};
    mp.user_val[0] = (struct kl_mq_bin){(const uint8_t *)"v", 1};
    mp.user_n = 1;
    for (uint8_t q = 0; q <= 2; q++) {
        char body[16];
        snprintf(body, sizeof body, "q%u", q);
        struct kl_mq_msg m = {.topic = "t/x",
                              .payload = (const uint8_t *)body,
                              .payload_len = 2,
                              .qos = q,
                              .props = &mp};
        CHECK(kl_mq_publish(&a.c, &m, NULL) == KL_OK);
    }
    CHECK(kl_mq_wait(&a.c, 3000) == KL_OK);
    /* b's own message on t/y is not sent back to it (no local) */
    struct kl_mq_msg own = {
        .topic = "t/y", .payload = (const uint8_t *)"own", .payload_len = 3, .qos = 1};
    CHECK(kl_mq_publish(&b.c, &own, NULL) == KL_OK);
    pump(&b, 3);
    pump_for(&b, 4, 400); /* the own message would come now */
    CHECK(b.in.n == 3);
    for (int i = 0; i < 3 && i < b.in.n; i++) {
        char want[4];
        snprintf(want, sizeof want, "q%d", i);
        CHECK(!strcmp(b.in.topic[i], "t/x") && !strcmp(b.in.body[i], want) && b.in.qos[i] == i);
    }
    CHECK(!strcmp(b.in.ctype, "text/plain") && !strcmp(b.in.corr, "corr-1") &&
          !strcmp(b.in.user, "k=v"));
    /* retained */
    struct kl_mq_msg r = {.topic = "r/1",
                          .payload = (const uint8_t *)"kept",
                          .payload_len = 4,
                          .qos = 1,
                          .retain = 1};
    CHECK(kl_mq_publish(&a.c, &r, NULL) == KL_OK && kl_mq_wait(&a.c, 3000) == KL_OK);
    struct kl_mq_sub rs = {.filter = "r/#", .qos = 1};
    b.in.n = 0;
    CHECK(kl_mq_subscribe(&b.c, &rs, 1, NULL, 3000, NULL) == KL_OK);
    pump(&b, 1);
    CHECK(b.in.n == 1 && !strcmp(b.in.body[0], "kept") && b.in.retain[0] == 1);
    /* clear it again, then unsubscribe: nothing more arrives */
    struct kl_mq_msg clr = {.topic = "r/1", .qos = 1, .retain = 1};
    CHECK(kl_mq_publish(&a.c, &clr, NULL) == KL_OK && kl_mq_wait(&a.c, 3000) == KL_OK);
    const char *uf[] = {"t/+"};
    uint8_t uc = 0xFF;
    CHECK(kl_mq_unsubscribe(&b.c, uf, 1, NULL, 3000, &uc) == KL_OK && uc == 0);
    b.in.n = 0;
    struct kl_mq_msg late = {
        .topic = "t/x", .payload = (const uint8_t *)"late", .payload_len = 4, .qos = 1};
    CHECK(kl_mq_publish(&a.c, &late, NULL) == KL_OK && kl_mq_wait(&a.c, 3000) == KL_OK);
    for (int i = 0; i < 6; i++)
        kl_mq_process(&b.c, 50);
    CHECK(b.in.n <= 1 &&
          (b.in.n == 0 || !strcmp(b.in.topic[0], "r/1"))); /* the cleared retain may echo */
    /* will: c vanishes without DISCONNECT, b gets its will */
    static struct cli c;
    struct kl_mq_sub ws = {.filter = "will/#", .qos = 1};
    CHECK(kl_mq_subscribe(&b.c, &ws, 1, NULL, 3000, NULL) == KL_OK);
    struct kl_mq_will w = {.topic = "will/c", .payload = {(const uint8_t *)"gone", 4}, .qos = 1};
    struct kl_mq_connect_opts oc = {
        .version = KL_MQ_V5, .client_id = "kl-c", .clean = 1, .will = &w};
    CHECK(open_cli(&c, &oc, NULL) == KL_OK);
    kl_tls_posix_close(&c.sock); /* no DISCONNECT */
    b.in.n = 0;
    pump(&b, 1);
    CHECK(b.in.n == 1 && !strcmp(b.in.topic[0], "will/c") && !strcmp(b.in.body[0], "gone"));
    /* keep-alive: a 1 s keep-alive survives 2.5 s of silence with pings */
    static struct cli k;
    struct kl_mq_connect_opts ok = {
        .version = KL_MQ_V5, .client_id = "kl-k", .clean = 1, .keepalive_s = 1};
    CHECK(open_cli(&k, &ok, NULL) == KL_OK);
    uint64_t t0 = now_ms(NULL);
    kl_status st = KL_OK;
    while (st == KL_OK && now_ms(NULL) - t0 < 2500)
        st = kl_mq_process(&k.c, 100);
    CHECK(st == KL_OK && k.c.connected);
    close_cli(&k);
    /* an enhanced-authentication method mosquitto does not know: refused, 0x8C */
    struct kl_mq_props ap = {.has = KL_MQ_HAS(KL_MQ_P_AUTH_METHOD)};
    ap.auth_method = (struct kl_mq_bin){(const uint8_t *)"keylink-es256-challenge", 23};
    struct kl_mq_connect_opts oe = {
        .version = KL_MQ_V5, .client_id = "kl-e", .clean = 1, .props = &ap};
    static struct cli e;
    CHECK(open_cli(&e, &oe, &ack) == KL_E_REFUSED && ack.reason == 0x8C);
    close_cli(&e);
    close_cli(&a);
    close_cli(&b);
}

static void test_v311_session(void)
{
    static struct cli p, a;
    struct kl_mq_connect_opts op = {
        .version = KL_MQ_V311, .client_id = "kl-persist", .clean = 0, .keepalive_s = 30};
    struct kl_mq_connack ack;
    CHECK(open_cli(&p, &op, &ack) == KL_OK);
    struct kl_mq_sub s = {.filter = "p/#", .qos = 1};
    uint8_t code;
    CHECK(kl_mq_subscribe(&p.c, &s, 1, NULL, 3000, &code) == KL_OK && code == 1);
    close_cli(&p);
    struct kl_mq_connect_opts oa = {.version = KL_MQ_V311, .client_id = "kl-a3", .clean = 1};
    CHECK(open_cli(&a, &oa, NULL) == KL_OK);
    struct kl_mq_msg m = {
        .topic = "p/x", .payload = (const uint8_t *)"queued", .payload_len = 6, .qos = 1};
    CHECK(kl_mq_publish(&a.c, &m, NULL) == KL_OK && kl_mq_wait(&a.c, 3000) == KL_OK);
    close_cli(&a);
    CHECK(open_cli(&p, &op, &ack) == KL_OK && ack.session_present == 1);
    pump(&p, 1);
    CHECK(p.in.n == 1 && !strcmp(p.in.body[0], "queued") && p.in.qos[0] == 1);
    close_cli(&p);
    /* and a clean session ends it */
    op.clean = 1;
    CHECK(open_cli(&p, &op, &ack) == KL_OK && ack.session_present == 0);
    close_cli(&p);
}

int main(void)
{
    if (system("command -v mosquitto >/dev/null")) {
        fprintf(stderr, "mosquitto not installed\n");
        return 1;
    }
    char dir[] = "/tmp/kl-mq-XXXXXX";
    if (!mkdtemp(dir)) return 1;
    /* a free port: bind 0 through python would need python; try a few in a high range */
    struct kl_tls_posix probe;
    int pn = 0;
    srand((unsigned)getpid());
    for (int i = 0; i < 50 && !pn; i++) {
        int cand = 20000 + rand() % 30000;
        snprintf(port, sizeof port, "%d", cand);
        if (kl_tls_posix_connect(&probe, "127.0.0.1", port, 200) != KL_OK)
            pn = cand;
        else
            kl_tls_posix_close(&probe);
    }
    char conf[256], cmd[600];
    snprintf(conf, sizeof conf, "%s/m.conf", dir);
    FILE *f = fopen(conf, "w");
    if (!f) return 1;
    fprintf(f, "listener %s 127.0.0.1\nallow_anonymous true\nuser root\npersistence false\n", port);
    fclose(f);
    pid_t pid = fork();
    if (pid == 0) {
        snprintf(cmd, sizeof cmd, "%s/m.log", dir);
        FILE *lf = freopen(cmd, "w", stderr);
        (void)lf;
        execlp("mosquitto", "mosquitto", "-c", conf, (char *)NULL);
        _exit(127);
    }
    int up = 0;
    for (int i = 0; i < 100 && !up; i++) {
        if (kl_tls_posix_connect(&probe, "127.0.0.1", port, 200) == KL_OK) {
            kl_tls_posix_close(&probe);
            up = 1;
        } else {
            usleep(50000);
        }
    }
    CHECK(up);
    if (up) {
        test_v5();
        test_v311_session();
    }
    kill(pid, SIGTERM);
    waitpid(pid, NULL, 0);
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd)) fails++;
    if (fails) {
        fprintf(stderr, "%d check(s) failed\n", fails);
        return 1;
    }
    printf("mqtt against mosquitto ok\n");
    return 0;
}
