/*
 * `keylink device run`: the device program (issue 8). Connects through the chip with the
 * chosen authentication, publishes telemetry on dt/<thing>/telemetry every --interval,
 * subscribes to cmd/<thing>/# and answers each command on dt/<thing>/reply, reconnects
 * with exponential backoff and jitter, renews its JWT before it expires, kicks the chip's
 * watchdog, logs what it does, and stops after --count telemetry messages, --duration
 * seconds, or SIGTERM/SIGINT. examples/device/main.c is the same program in one file.
 */
#define _POSIX_C_SOURCE 200809L
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "device_mqtt.h"

static const char *const run_usage =
    "usage: keylink device run --endpoint HOST:PORT --thing NAME [OPTIONS]\n"
    "\n"
    "The device program: telemetry on dt/<thing>/telemetry every --interval seconds,\n"
    "commands from cmd/<thing>/# answered on dt/<thing>/reply (the reply echoes the\n"
    "command), reconnect with backoff, JWT renewal, watchdog kicks; logs to standard error.\n"
    "\n"
    "options: as for `keylink device pub` (--qos is used for telemetry, replies and the\n"
    "command subscription), and\n"
    "  --interval S          seconds between telemetry messages (default 5)\n"
    "  --count N             stop after N telemetry messages (default 0 = no limit)\n"
    "  --duration S          stop after S seconds (default 0 = no limit)\n"
    "  --backoff-max S       longest wait between reconnects (default 60)\n"
    "\n"
    "Stops cleanly (DISCONNECT, TLS close_notify) on SIGTERM or SIGINT. Exit status 0 after a\n"
    "clean stop, 1 if the chip cannot be opened, 2 bad usage.\n";

static volatile sig_atomic_t stop_flag;
static void on_signal(int sig)
{
    (void)sig;
    stop_flag = 1;
}

#define CMDQ 8
struct run_ctx {
    const struct kl_dev_opts *o;
    char topic[CMDQ][256];
    char body[CMDQ][1024];
    size_t body_len[CMDQ];
    int head, n;
    long dropped;
};

static void on_command(void *ctx, const struct kl_mq_msg *m)
{
    struct run_ctx *r = ctx;
    if (r->n == CMDQ || m->topic_len >= sizeof r->topic[0] || m->payload_len > sizeof r->body[0]) {
        r->dropped++;
        return;
    }
    int k = (r->head + r->n) % CMDQ;
    memcpy(r->topic[k], m->topic, m->topic_len);
    r->topic[k][m->topic_len] = 0;
    memcpy(r->body[k], m->payload, m->payload_len);
    r->body_len[k] = m->payload_len;
    r->n++;
}

/* JSON string body (no quotes) of b[0..n) into out; bytes >= 0x80 pass through. */
static size_t json_escape(const char *b, size_t n, char *out, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < n && o + 7 < cap; i++) {
        unsigned char ch = (unsigned char)b[i];
        if (ch == '"' || ch == '\\') {
            out[o++] = '\\';
            out[o++] = (char)ch;
        } else if (ch < 0x20) {
            o += (size_t)snprintf(out + o, cap - o, "\\u%04x", ch);
        } else {
            out[o++] = (char)ch;
        }
    }
    out[o] = 0;
    return o;
}

static struct kl_dev_conn conn;

static double backoff_max_s = 60;
static int run_extra(struct kl_dev_opts *o, const char *a, const char *v, void *ctx)
{
    (void)o;
    (void)ctx;
    if (strcmp(a, "--backoff-max")) return 0;
    char *end;
    double d = strtod(v, &end);
    if (!*v || *end || !(d >= 1) || d > 86400) return -1;
    backoff_max_s = d;
    return 1;
}

static kl_status publish(struct kl_dev_opts *o, const char *topic, const char *payload)
{
    struct kl_mq_msg m = {0};
    m.topic = topic;
    m.payload = (const uint8_t *)payload;
    m.payload_len = strlen(payload);
    m.qos = o->qos;
    kl_status st = kl_mq_publish(&conn.mq, &m, NULL);
    if (st == KL_E_BUFFER) { /* all slots waiting: let the acknowledgements in first */
        st = kl_mq_wait(&conn.mq, (uint32_t)(o->timeout_s * 1000));
        if (st == KL_OK) st = kl_mq_publish(&conn.mq, &m, NULL);
    }
    return st;
}

int kl_device_run(int argc, char **argv)
{
    struct kl_dev_opts o = {.cmd = "run"};
    int r = kl_dev_parse(&o, argc, argv, run_usage, run_extra, NULL);
    if (r) return r == 1 ? 0 : r;
    if (o.interval_s == 0) o.interval_s = 5;
    if (!o.thing) o.thing = o.client_id;
    /* parse set count to 1 by default for pub/sub; run means "no limit" unless given */
    int count_given = 0;
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--count")) count_given = 1;
    if (!count_given) o.count = 0;
    char t_tele[300], t_reply[300], t_cmd[300];
    snprintf(t_tele, sizeof t_tele, "dt/%s/telemetry", o.thing);
    snprintf(t_reply, sizeof t_reply, "dt/%s/reply", o.thing);
    snprintf(t_cmd, sizeof t_cmd, "cmd/%s/#", o.thing);
    if (strpbrk(o.thing, "+#/") || !kl_mq_topic_ok(t_tele, strlen(t_tele))) {
        kl_dev_log(&o, "the thing name must not contain '+', '#' or '/' (it is part of topics)");
        return 2;
    }

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    struct run_ctx rc = {.o = &o};
    struct kl_mq_backoff bo;
    uint32_t seed = 0;
    uint64_t start = kl_dev_mono_ms(), next_tele = start, next_kick = start;
    long sent = 0, replies = 0, reconnects = 0;
    int connected = 0, first = 1, exit_code = 0;
    uint32_t tmo = (uint32_t)(o.timeout_s * 1000);
    kl_dev_log(&o, "starting: thing %s, endpoint %s, auth %s, MQTT %s, telemetry every %.1f s",
               o.thing, o.endpoint,
               o.auth == KL_DEV_MTLS  ? "mtls"
               : o.auth == KL_DEV_JWT ? "jwt"
                                      : "challenge",
               o.version == KL_MQ_V5 ? "5" : "3.1.1", o.interval_s);
    while (!stop_flag) {
        uint64_t now = kl_dev_mono_ms();
        if (o.duration_s > 0 && now - start >= (uint64_t)(o.duration_s * 1000)) break;
        if (o.count && sent >= o.count) break;
        if (!connected) {
            int sp = 0;
            kl_status st = kl_dev_connect(&conn, &o, on_command, &rc, &sp);
            if (first) {
                if (!conn.se_open) return 1; /* no chip: nothing to retry */
                kl_se_random(&conn.se, (uint8_t *)&seed, sizeof seed);
                kl_mq_backoff_init(&bo, 500, (uint32_t)(backoff_max_s * 1000), seed);
                first = 0;
            }
            if (st == KL_OK) {
                uint8_t code;
                struct kl_mq_sub s = {.filter = t_cmd, .qos = o.qos};
                st = kl_mq_subscribe(&conn.mq, &s, 1, NULL, tmo, &code);
                if (st != KL_OK) {
                    kl_dev_log(&o, "subscribing to %s failed: %s - %s", t_cmd, kl_status_name(st),
                               kl_mq_error(&conn.mq));
                    kl_dev_hangup(&conn);
                }
            }
            if (st != KL_OK) {
                uint32_t d = kl_mq_backoff_next(&bo);
                kl_dev_log(&o, "not connected; next attempt in %u ms", d);
                uint64_t until = kl_dev_mono_ms() + d;
                while (!stop_flag && kl_dev_mono_ms() < until) {
                    struct timespec ts = {0, 50 * 1000000L};
                    nanosleep(&ts, NULL);
                }
                reconnects++;
                continue;
            }
            kl_mq_backoff_reset(&bo);
            connected = 1;
            kl_dev_log(&o, "connected%s; subscribed to %s", sp ? " (session resumed)" : "", t_cmd);
        }
        kl_status st = KL_OK;
        now = kl_dev_mono_ms();
        /* the watchdog: kicked once a second while the program runs */
        if (now >= next_kick) {
            kl_status ks = kl_se_kick(&conn.se);
            if (ks != KL_OK) kl_dev_log(&o, "watchdog kick failed: %s", kl_status_name(ks));
            next_kick = now + 1000;
        }
        /* JWT renewal: reconnect with a fresh token a minute (or 10%) before exp */
        if (o.auth == KL_DEV_JWT) {
            int64_t margin = (int64_t)(o.jwt_lifetime_s / 10);
            if (margin > 60) margin = 60;
            if (kl_dev_unix_s() >= conn.jwt_exp - margin) {
                kl_dev_log(&o, "JWT expires soon: reconnecting with a new one");
                kl_dev_hangup(&conn);
                connected = 0;
                continue;
            }
        }
        if (now >= next_tele) {
            char payload[512];
            snprintf(payload, sizeof payload,
                     "{\"thing\":\"%s\",\"seq\":%ld,\"uptime_ms\":%llu,\"ts\":%lld}", o.thing,
                     sent + 1, (unsigned long long)(now - start), (long long)kl_dev_unix_s());
            st = publish(&o, t_tele, payload);
            if (st == KL_OK) {
                sent++;
                kl_dev_log(&o, "telemetry %ld published on %s", sent, t_tele);
            }
            next_tele = now + (uint64_t)(o.interval_s * 1000);
        }
        while (st == KL_OK && rc.n) {
            int k = rc.head;
            char esc[2400], reply[2800];
            json_escape(rc.body[k], rc.body_len[k], esc, sizeof esc);
            snprintf(reply, sizeof reply, "{\"thing\":\"%s\",\"topic\":\"%s\",\"command\":\"%s\"}",
                     o.thing, rc.topic[k], esc);
            st = publish(&o, t_reply, reply);
            if (st != KL_OK) break;
            replies++;
            kl_dev_log(&o, "command on %s answered on %s", rc.topic[k], t_reply);
            rc.head = (rc.head + 1) % CMDQ;
            rc.n--;
        }
        if (st == KL_OK) {
            uint64_t t = kl_dev_mono_ms(), wait = next_tele > t ? next_tele - t : 0;
            if (wait > 200) wait = 200; /* stay responsive to signals and the watchdog */
            st = kl_mq_process(&conn.mq, (uint32_t)wait);
        }
        if (st != KL_OK) {
            kl_dev_log(&o, "connection lost: %s%s%s", kl_status_name(st),
                       *kl_mq_error(&conn.mq) ? " - " : "", kl_mq_error(&conn.mq));
            kl_dev_hangup(&conn);
            connected = 0;
        }
    }
    if (connected) {
        kl_status st = kl_mq_wait(&conn.mq, tmo);
        if (st != KL_OK)
            kl_dev_log(&o, "some acknowledgements did not come: %s", kl_status_name(st));
    }
    if (rc.dropped) kl_dev_log(&o, "%ld command(s) dropped (queue full or too long)", rc.dropped);
    kl_dev_log(&o, "stopping: %ld telemetry, %ld replies, %ld reconnect attempt(s)%s", sent,
               replies, reconnects, stop_flag ? " (signal)" : "");
    kl_dev_close(&conn);
    return exit_code;
}
