/*
 * host/mqtt_client.c: the MQTT client's state machine against a hostile broker. The
 * broker's bytes are the input (after a mode byte), served in reads of at most 1 + the
 * next input byte % 64... bytes, so packets arrive split anywhere. Mode: bit 0 MQTT 5,
 * bit 1 small buffers (rx 64 bytes), bit 2 an AUTH handler, bit 3 subscribe, bit 4
 * QoS 1 and 2 publishes. The client connects, maybe subscribes and publishes, then
 * processes until the input ends. Invariants: messages handed to on_message lie inside
 * rx; an error always has a message; the in-flight table never holds a pid twice.
 */
#include <string.h>

#include "fuzz.h"
#include "keylink/mqtt.h"

static struct {
    const uint8_t *p;
    size_t n;
    uint64_t now;
    uint8_t *rx;
    size_t rx_cap;
} br;

static kl_status tr_send(void *ctx, const uint8_t *b, size_t n)
{
    (void)ctx;
    (void)b;
    (void)n;
    return KL_OK;
}

static kl_status tr_recv(void *ctx, uint8_t *b, size_t cap, size_t *got, uint32_t timeout_ms)
{
    (void)ctx;
    (void)timeout_ms;
    br.now += 1; /* time moves, slowly: a timeout only when the input stalls */
    *got = 0;
    if (!br.n) return KL_E_CLOSED;
    size_t k = 1 + br.p[0] % 64;
    br.p++;
    br.n--;
    if (k > br.n) k = br.n;
    if (k > cap) k = cap;
    memcpy(b, br.p, k);
    br.p += k;
    br.n -= k;
    *got = k;
    if (!k) return KL_E_TIMEOUT;
    return KL_OK;
}

static uint64_t now(void *ctx)
{
    (void)ctx;
    return br.now;
}

static void on_msg(void *ctx, const struct kl_mq_msg *m)
{
    (void)ctx;
    const uint8_t *t = (const uint8_t *)m->topic;
    FZ_CHECK(t >= br.rx && t + m->topic_len <= br.rx + br.rx_cap);
    FZ_CHECK(m->payload_len == 0 ||
             (m->payload >= br.rx && m->payload + m->payload_len <= br.rx + br.rx_cap));
    FZ_CHECK(m->qos <= 2);
}

static kl_status on_auth(void *ctx, uint8_t reason, const struct kl_mq_props *in,
                         struct kl_mq_props *out)
{
    (void)ctx;
    (void)reason;
    (void)in;
    static const uint8_t d[] = "answer";
    out->has |= KL_MQ_HAS(KL_MQ_P_AUTH_METHOD) | KL_MQ_HAS(KL_MQ_P_AUTH_DATA);
    out->auth_method = (struct kl_mq_bin){(const uint8_t *)"keylink-challenge", 17};
    out->auth_data = (struct kl_mq_bin){d, 6};
    return KL_OK;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    return 0;
}

static void check_slots(const struct kl_mq_inflight *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        for (size_t j = i + 1; j < n; j++)
            if (s[i].state && s[j].state && s[i].state != KL_MQ_SLOT_WAIT_PUBREL &&
                s[j].state != KL_MQ_SLOT_WAIT_PUBREL)
                FZ_CHECK(s[i].pid != s[j].pid);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    uint8_t mode = data[0];
    br.p = data + 1;
    br.n = size - 1;
    br.now = 1000;
    br.rx_cap = (mode & 2) ? 64 : 4096;
    br.rx = malloc(br.rx_cap);
    uint8_t *tx = malloc(1024);
    struct kl_mq_inflight slots[4];
    memset(slots, 0, sizeof slots);
    FZ_CHECK(br.rx && tx);
    struct kl_mq_config cfg = {.tr = {NULL, tr_send, tr_recv},
                               .now_ms = now,
                               .tx = tx,
                               .tx_cap = 1024,
                               .rx = br.rx,
                               .rx_cap = br.rx_cap,
                               .slots = slots,
                               .nslots = 4,
                               .on_message = on_msg,
                               .on_auth = (mode & 4) ? on_auth : NULL};
    struct kl_mq_client c;
    FZ_CHECK(kl_mq_init(&c, &cfg) == KL_OK);
    struct kl_mq_connect_opts o = {.version = (mode & 1) ? KL_MQ_V5 : KL_MQ_V311,
                                   .client_id = "dev-1",
                                   .keepalive_s = 5,
                                   .clean = (mode & 32) ? 0 : 1};
    struct kl_mq_connack ack;
    kl_status st = kl_mq_connect(&c, &o, 2000, &ack);
    if (st == KL_OK) {
        if (mode & 8) {
            struct kl_mq_sub subs[2] = {{.filter = "cmd/dev-1/#", .qos = 1},
                                        {.filter = "x/+", .qos = 2}};
            uint8_t codes[2];
            st = kl_mq_subscribe(&c, subs, 2, NULL, 2000, codes);
        }
        if (mode & 16) {
            for (uint8_t q = 0; q < 3; q++) {
                struct kl_mq_msg m = {.topic = "dt/dev-1/t",
                                      .payload = (const uint8_t *)"22.5",
                                      .payload_len = 4,
                                      .qos = q};
                uint16_t pid;
                (void)kl_mq_publish(&c, &m, &pid);
            }
            check_slots(slots, 4);
        }
        for (int i = 0; i < 16 && br.n && c.connected; i++) {
            st = kl_mq_process(&c, 500);
            check_slots(slots, 4);
        }
        if (c.connected) (void)kl_mq_disconnect(&c, 0, NULL);
    }
    if (getenv("KL_FUZZ_TRACE"))
        fprintf(stderr, "mqtt: %s connected=%d: %s\n", kl_status_name(st), c.connected,
                kl_mq_error(&c));
    if (st != KL_OK) FZ_CHECK(kl_mq_error(&c)[0] != 0);
    FZ_CHECK(memchr(c.err, 0, sizeof c.err) != NULL);
    free(br.rx);
    free(tx);
    return 0;
}
