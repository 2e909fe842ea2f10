/*
 * The keylink device program in one file: copy it to start your firmware.
 *
 *   kl-example-device unix:/run/keylink-se.sock iot.example.com 8883 MY_THING [mtls|jwt|challenge]
 * [AUD]
 *
 * It opens the secure element, connects TLS 1.2 whose every key operation runs in the chip,
 * logs in over MQTT (mTLS; a chip-signed JWT as password; or the MQTT 5 challenge whose
 * answer the chip signs), publishes telemetry on dt/<thing>/telemetry every 5 s, answers
 * commands from cmd/<thing>/# on dt/<thing>/reply, reconnects with backoff and jitter,
 * renews its JWT before it expires, kicks the chip's watchdog, and stops on SIGTERM.
 *
 * Only public headers are used. What is POSIX here (the socket, the clocks, signals,
 * printf) is what an MCU port replaces: see docs/porting.md.
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "keylink/jwt.h"
#include "keylink/mqtt.h"
#include "keylink/se.h"
#include "keylink/tls.h"
#include "keylink/tls_posix.h"

#define CERT_ID 0x1002 /* device certificate, written by init_tls_iot */
#define ROOT_ID 0x1003 /* the server's root CA */
#define KEY_ID 0x1004  /* device key pair: never leaves the chip */
#define CHALLENGE "keylink-es256-challenge"

static struct kl_se se;
static struct kl_tls_posix sock;
static struct kl_tls tls;
static struct kl_mq_client mq;
static struct kl_mq_inflight slots[8];
static uint8_t tls_rx[KL_TLS_RX_MIN], tls_hs[KL_TLS_HS_DEFAULT], mq_tx[4096], mq_rx[2048];
static uint8_t cert[1024];
static size_t cert_len;
static char token[2048], cmd_topic[128], cmd_body[512];
static int cmd_ready;
static int64_t token_exp;
static const char *thing, *audience;
static volatile sig_atomic_t stop;

static void on_term(int s)
{
    (void)s;
    stop = 1;
}

static uint64_t now_ms(void *ctx)
{
    (void)ctx;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static int64_t unix_now(void)
{
    return (int64_t)time(NULL);
}

/* A JWT signed by the chip: for the password (nonce NULL) or the challenge answer. */
static kl_status sign_token(const uint8_t *nonce, int with_cert)
{
    struct kl_jwt_claims c = {.sub = thing, .aud = audience, .iat = unix_now()};
    c.exp = c.iat + (nonce ? 300 : 3600);
    c.nonce = nonce;
    c.nonce_len = nonce ? 32 : 0;
    size_t n;
    kl_status st = kl_jwt_sign(&se, KEY_ID, &c, with_cert ? cert : NULL, with_cert ? cert_len : 0,
                               token, sizeof token, &n);
    if (st == KL_OK) token_exp = c.exp;
    return st;
}

/* MQTT 5 AUTH: the server's 32-byte nonce in, a chip-signed JWS with x5c out. */
static kl_status on_auth(void *ctx, uint8_t reason, const struct kl_mq_props *in,
                         struct kl_mq_props *out)
{
    (void)ctx;
    (void)reason;
    if (in->auth_data.n != 32) return KL_E_PEER;
    kl_status st = sign_token(in->auth_data.p, 1);
    if (st != KL_OK) return st;
    out->has = KL_MQ_HAS(KL_MQ_P_AUTH_METHOD) | KL_MQ_HAS(KL_MQ_P_AUTH_DATA);
    out->auth_method = (struct kl_mq_bin){(const uint8_t *)CHALLENGE, strlen(CHALLENGE)};
    out->auth_data = (struct kl_mq_bin){(const uint8_t *)token, strlen(token)};
    return KL_OK;
}

/* Called from kl_mq_process: keep the command, answer it from the main loop. */
static void on_message(void *ctx, const struct kl_mq_msg *m)
{
    (void)ctx;
    if (cmd_ready || m->topic_len >= sizeof cmd_topic || m->payload_len >= sizeof cmd_body) return;
    memcpy(cmd_topic, m->topic, m->topic_len);
    cmd_topic[m->topic_len] = 0;
    memcpy(cmd_body, m->payload, m->payload_len);
    cmd_body[m->payload_len] = 0;
    cmd_ready = 1;
}

/* The server's answer to one of our QoS 1 messages. Under MQTT 5 a reason code of 0x80 or
 * more means it was refused and not delivered (0x87: the policy does not allow the topic). */
static void on_done(void *ctx, uint16_t pid, uint8_t type, uint8_t reason)
{
    (void)ctx;
    (void)type;
    if (reason >= 0x80)
        printf("message %u refused by the server: reason 0x%02x\n", (unsigned)pid, reason);
}

static void hang_up(void)
{
    if (mq.connected) kl_mq_disconnect(&mq, 0, NULL);
    kl_tls_close(&tls);
    kl_tls_posix_close(&sock);
}

static kl_status connect_all(const char *host, const char *port, const char *auth)
{
    int mtls = !strcmp(auth, "mtls"), jwt = !strcmp(auth, "jwt");
    kl_status st = kl_tls_posix_connect(&sock, host, port, 10000);
    if (st != KL_OK) return st;
    struct kl_tls_transport tr;
    struct kl_tls_clock clk;
    kl_tls_posix_transport(&sock, &tr);
    kl_tls_posix_clock(&clk);
    struct kl_tls_config tc = {.server_name = host, .root_id = ROOT_ID, .timeout_ms = 10000};
    if (mtls) {
        tc.client_key_id = KEY_ID;
        tc.client_cert_id = CERT_ID;
    }
    memset(&tls, 0, sizeof tls);
    st = kl_tls_init(&tls, &se, &tc, &tr, &clk, tls_rx, sizeof tls_rx, tls_hs, sizeof tls_hs);
    if (st == KL_OK) st = kl_tls_handshake(&tls);
    if (st != KL_OK) {
        printf("TLS failed: %s %s\n", kl_status_name(st), kl_tls_error(&tls));
        return st;
    }
    struct kl_mq_config mc = {.now_ms = now_ms,
                              .tx = mq_tx,
                              .tx_cap = sizeof mq_tx,
                              .rx = mq_rx,
                              .rx_cap = sizeof mq_rx,
                              .slots = slots,
                              .nslots = 8,
                              .on_message = on_message,
                              .on_auth = on_auth,
                              .on_done = on_done};
    kl_mq_transport_tls(&tls, &mc.tr);
    kl_mq_init(&mq, &mc);
    struct kl_mq_props cp = {0};
    struct kl_mq_connect_opts co = {.version = mtls || jwt ? KL_MQ_V311 : KL_MQ_V5,
                                    .client_id = thing,
                                    .keepalive_s = 60,
                                    .clean = 1};
    if (jwt) {
        if ((st = sign_token(NULL, 0)) != KL_OK) return st;
        co.username = "unused";
        co.password = (struct kl_mq_bin){(const uint8_t *)token, strlen(token)};
    } else if (!mtls) {
        cp.has = KL_MQ_HAS(KL_MQ_P_AUTH_METHOD);
        cp.auth_method = (struct kl_mq_bin){(const uint8_t *)CHALLENGE, strlen(CHALLENGE)};
        co.props = &cp;
    }
    struct kl_mq_connack ack;
    st = kl_mq_connect(&mq, &co, 10000, &ack);
    if (st != KL_OK) {
        printf("MQTT refused: %s %s\n", kl_status_name(st), kl_mq_error(&mq));
        return st;
    }
    char filter[128];
    snprintf(filter, sizeof filter, "cmd/%s/#", thing);
    struct kl_mq_sub sub = {.filter = filter, .qos = 1};
    return kl_mq_subscribe(&mq, &sub, 1, NULL, 10000, NULL);
}

static kl_status publish(const char *topic, const char *payload)
{
    struct kl_mq_msg m = {.topic = topic,
                          .payload = (const uint8_t *)payload,
                          .payload_len = strlen(payload),
                          .qos = 1};
    return kl_mq_publish(&mq, &m, NULL);
}

int main(int argc, char **argv)
{
    if (argc < 5) {
        fprintf(stderr,
                "usage: %s SE_URI HOST PORT THING [mtls|jwt|challenge] [AUDIENCE]\n"
                "Runs until SIGINT (Ctrl-C) or SIGTERM: telemetry, answered commands,\n"
                "reconnects with backoff.\n",
                argv[0]);
        return 2;
    }
    const char *host = argv[2], *port = argv[3], *auth = argc > 5 ? argv[5] : "mtls";
    thing = argv[4];
    audience = argc > 6 ? argv[6] : host;
    signal(SIGTERM, on_term);
    signal(SIGINT, on_term);
    kl_status st = kl_se_open(&se, argv[1]);
    if (st == KL_OK) st = kl_se_read_object(&se, CERT_ID, cert, sizeof cert, &cert_len);
    if (st != KL_OK) {
        fprintf(stderr, "secure element: %s\n", kl_status_name(st));
        return 1;
    }
    uint32_t seed = 0;
    kl_se_random(&se, (uint8_t *)&seed, sizeof seed); /* spreads a fleet's reconnects */
    struct kl_mq_backoff bo;
    kl_mq_backoff_init(&bo, 500, 60000, seed);
    char t_tele[128], t_reply[128], msg[768];
    snprintf(t_tele, sizeof t_tele, "dt/%s/telemetry", thing);
    snprintf(t_reply, sizeof t_reply, "dt/%s/reply", thing);
    int up = 0;
    long seq = 0;
    uint64_t next_tele = 0, next_kick = 0;
    while (!stop) {
        if (!up) {
            if (connect_all(host, port, auth) != KL_OK) {
                hang_up();
                uint32_t d = kl_mq_backoff_next(&bo);
                printf("reconnect in %u ms\n", d);
                struct timespec ts = {d / 1000, (long)(d % 1000) * 1000000L};
                nanosleep(&ts, NULL);
                continue;
            }
            kl_mq_backoff_reset(&bo);
            up = 1;
            printf("connected (%s)\n", auth);
        }
        uint64_t now = now_ms(NULL);
        if (now >= next_kick) { /* the chip resets if the firmware stops kicking */
            kl_se_kick(&se);
            next_kick = now + 1000;
        }
        if (!strcmp(auth, "jwt") && unix_now() > token_exp - 60) { /* renew before exp */
            hang_up();
            up = 0;
            continue;
        }
        st = KL_OK;
        if (now >= next_tele) {
            snprintf(msg, sizeof msg, "{\"thing\":\"%s\",\"seq\":%ld}", thing, ++seq);
            st = publish(t_tele, msg);
            printf("telemetry %ld: %s\n", seq, kl_status_name(st));
            next_tele = now + 5000;
        }
        if (st == KL_OK && cmd_ready) {
            snprintf(msg, sizeof msg, "{\"topic\":\"%s\",\"command\":\"%s\"}", cmd_topic, cmd_body);
            st = publish(t_reply, msg);
            printf("command on %s answered: %s\n", cmd_topic, kl_status_name(st));
            cmd_ready = 0;
        }
        if (st == KL_OK) st = kl_mq_process(&mq, 200);
        if (st != KL_OK) {
            printf("connection lost: %s %s\n", kl_status_name(st), kl_mq_error(&mq));
            hang_up();
            up = 0;
        }
        fflush(stdout);
    }
    hang_up();
    kl_se_close(&se);
    printf("stopped after %ld telemetry messages\n", seq);
    return 0;
}
