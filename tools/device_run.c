/*
 * `keylink device run`: the device program (docs/mqtt.md). Connects through the chip with the
 * chosen authentication, publishes telemetry on dt/<thing>/telemetry every --interval,
 * subscribes to cmd/<thing>/# and answers each command on dt/<thing>/reply, reconnects
 * with exponential backoff and jitter, renews its JWT before it expires, kicks the chip's
 * watchdog, prints one line per event on standard output, and stops after --count
 * telemetry messages, --duration seconds, --retries refused reconnects, or SIGTERM/SIGINT.
 * examples/device/main.c is the same program in one file.
 */
#define _POSIX_C_SOURCE 200809L
#include <signal.h>
#include <stdarg.h>
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
    "command), reconnect with backoff and jitter, JWT renewal, watchdog kicks.\n"
    "\n"
    "options: as for `keylink device pub` (--qos is used for telemetry, replies and the\n"
    "command subscription), and\n"
    "  --interval S          seconds between telemetry messages (default 5)\n"
    "  --count N             stop after N telemetry messages (default 0 = no limit)\n"
    "  --duration S          stop after S seconds (default 0 = no limit)\n"
    "  --retries N           give up (exit 1) after N failed connects in a row\n"
    "                        (default 0 = never)\n"
    "  --backoff-max S       longest wait between reconnects (default 60)\n"
    "\n"
    "Standard output, one line per event (fields are key=value, payload last):\n"
    "  connected auth=A mqtt=V endpoint=E session=0|1\n"
    "  subscribed filter=cmd/<thing>/#\n"
    "  telemetry seq=N topic=T payload=P\n"
    "  command topic=T payload=P\n"
    "  reply topic=T payload=P\n"
    "  refused-telemetry seq=N topic=T reason=R\n"
    "  refused-reply topic=T reason=R\n"
    "  lost reason=R\n"
    "  refused attempt=N reason=R\n"
    "  retry attempt=N delay_ms=D\n"
    "  jwt-renew exp=UNIX\n"
    "  stopped telemetry=N replies=N reason=count|duration|signal|retries\n"
    "At --qos 1/2 a telemetry or reply line means the server acknowledged the message; one\n"
    "the server refused (MQTT 5 reason code >= 0x80, e.g. not authorized by its policy) is a\n"
    "refused-... line and is not counted. At QoS 0 nothing is acknowledged, so nothing can\n"
    "be seen as refused.\n"
    "\n"
    "Exit status: 0 after a clean stop, 1 when the chip cannot be opened or --retries ran\n"
    "out, 2 bad usage.\n";

static volatile sig_atomic_t stop_flag;
static void on_signal(int sig)
{
    (void)sig;
    stop_flag = 1;
}

static void ev(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void ev(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    putchar('\n');
    fflush(stdout);
}

#define CMDQ 8
struct run_ctx {
    char topic[CMDQ][256];
    char body[CMDQ][1024];
    size_t body_len[CMDQ];
    int head, n;
    long dropped;
};

/* Commands are queued here (the callback may not call the client) and answered from the
 * main loop. */
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

/* JSON string body (no quotes) of b[0..n) into out. */
static void json_escape(const char *b, size_t n, char *out, size_t cap)
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
}

/* The payload on one line: control characters become '.' */
static void one_line(const char *b, size_t n, char *out, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < n && o + 1 < cap; i++)
        out[o++] = (unsigned char)b[i] < 0x20 ? '.' : b[i];
    out[o] = 0;
}

static struct kl_dev_conn conn;
static long sent, replies; /* telemetry and replies delivered (acknowledged at QoS 1/2) */

/* QoS 1/2 messages waiting for their acknowledgement (at most one per in-flight slot): the
 * event line is printed when the server answers, refused or not. */
#define PEND (sizeof conn.slots / sizeof conn.slots[0])
struct pend {
    int used, reply;
    uint16_t pid;
    long seq;
    char topic[300];
};
static struct pend pend[PEND];
static char pend_payload[PEND][6700];

static void pend_clear(void)
{
    for (size_t i = 0; i < PEND; i++)
        pend[i].used = 0;
}

static long pend_telemetry(void)
{
    long n = 0;
    for (size_t i = 0; i < PEND; i++)
        n += pend[i].used && !pend[i].reply;
    return n;
}

static void report(int reply, long seq, const char *topic, const char *payload)
{
    if (reply) {
        replies++;
        ev("reply topic=%s payload=%s", topic, payload);
    } else {
        sent++;
        ev("telemetry seq=%ld topic=%s payload=%s", seq, topic, payload);
    }
}

/* The client's on_done: how a QoS 1/2 message ended. */
static void run_done(void *ctx, uint16_t pid, uint8_t type, uint8_t reason)
{
    const struct kl_dev_opts *o = ctx;
    for (size_t i = 0; i < PEND; i++) {
        struct pend *p = &pend[i];
        if (!p->used || p->pid != pid) continue;
        p->used = 0;
        if (reason < 0x80)
            report(p->reply, p->seq, p->topic, pend_payload[i]);
        else if (p->reply)
            ev("refused-reply topic=%s reason=%s (0x%02x)", p->topic,
               kl_mq_reason_name(o->version, type, reason), reason);
        else
            ev("refused-telemetry seq=%ld topic=%s reason=%s (0x%02x)", p->seq, p->topic,
               kl_mq_reason_name(o->version, type, reason), reason);
        return;
    }
}

static double backoff_max_s = 60;
static long retries_max;

static int run_extra(struct kl_dev_opts *o, const char *a, const char *v, void *ctx)
{
    (void)o;
    (void)ctx;
    char *end;
    double d = strtod(v, &end);
    if (!*v || *end) return -1;
    if (!strcmp(a, "--backoff-max")) {
        if (!(d >= 1) || d > 86400) return -1;
        backoff_max_s = d;
        return 1;
    }
    if (!strcmp(a, "--retries")) {
        if (!(d >= 0) || d > 1e9 || d != (long)d) return -1;
        retries_max = (long)d;
        return 1;
    }
    return 0;
}

/* Publishes a telemetry message (seq) or a reply. QoS 0: reported at once; QoS 1/2: kept
 * in pend until run_done hears the answer. */
static kl_status publish(const struct kl_dev_opts *o, int reply, long seq, const char *topic,
                         const char *payload)
{
    struct kl_mq_msg m = {0};
    m.topic = topic;
    m.payload = (const uint8_t *)payload;
    m.payload_len = strlen(payload);
    m.qos = o->qos;
    uint16_t pid = 0;
    kl_status st = kl_mq_publish(&conn.mq, &m, &pid);
    if (st == KL_E_BUFFER) { /* every slot waits for an acknowledgement: let them in first */
        st = kl_mq_wait(&conn.mq, (uint32_t)(o->timeout_s * 1000));
        if (st == KL_E_REFUSED) st = KL_OK; /* run_done already logged it */
        if (st == KL_OK) st = kl_mq_publish(&conn.mq, &m, &pid);
    }
    if (st != KL_OK) return st;
    if (!m.qos) {
        report(reply, seq, topic, payload);
        return KL_OK;
    }
    for (size_t i = 0; i < PEND; i++) {
        if (pend[i].used) continue;
        pend[i] = (struct pend){.used = 1, .reply = reply, .pid = pid, .seq = seq};
        snprintf(pend[i].topic, sizeof pend[i].topic, "%s", topic);
        snprintf(pend_payload[i], sizeof pend_payload[i], "%s", payload);
        return KL_OK;
    }
    return KL_OK; /* cannot happen: no more in flight than slots */
}

static void sleep_ms(uint32_t ms)
{
    uint64_t until = kl_dev_mono_ms() + ms;
    while (!stop_flag && kl_dev_mono_ms() < until) {
        struct timespec ts = {0, 20 * 1000000L};
        nanosleep(&ts, NULL);
    }
}

int kl_device_run(int argc, char **argv)
{
    struct kl_dev_opts o = {.cmd = "run"};
    int r = kl_dev_parse(&o, argc, argv, run_usage, run_extra, NULL);
    if (r) return r == 1 ? 0 : r;
    if (o.interval_s == 0) o.interval_s = 5;
    if (!o.thing) o.thing = o.client_id;
    int count_given = 0; /* pub/sub default to one message; run runs until told */
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--count")) count_given = 1;
    if (!count_given) o.count = 0;
    if (strpbrk(o.thing, "+#/")) {
        kl_dev_log(&o, "the thing name must not contain '+', '#' or '/' (it is part of topics)");
        return 2;
    }
    char t_tele[300], t_reply[300], t_cmd[300];
    snprintf(t_tele, sizeof t_tele, "dt/%s/telemetry", o.thing);
    snprintf(t_reply, sizeof t_reply, "dt/%s/reply", o.thing);
    snprintf(t_cmd, sizeof t_cmd, "cmd/%s/#", o.thing);
    const char *auth_name = o.auth == KL_DEV_MTLS  ? "mtls"
                            : o.auth == KL_DEV_JWT ? "jwt"
                                                   : "challenge";

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    static struct run_ctx rc;
    struct kl_mq_backoff bo;
    uint64_t start = kl_dev_mono_ms(), next_tele = start, next_kick = start;
    long tele_seq = 0, failed = 0, attempts = 0;
    int connected = 0, seeded = 0, exit_code = 0;
    const char *why = "signal";
    uint32_t tmo = (uint32_t)(o.timeout_s * 1000);
    conn.quiet = 1;
    conn.on_done = run_done;
    conn.done_ctx = &o;
    while (!stop_flag) {
        uint64_t now = kl_dev_mono_ms();
        if (o.duration_s > 0 && now - start >= (uint64_t)(o.duration_s * 1000)) {
            why = "duration";
            break;
        }
        if (o.count && sent >= o.count) {
            why = "count";
            break;
        }
        if (!connected) {
            int sp = 0;
            attempts++;
            kl_status st = kl_dev_connect(&conn, &o, on_command, &rc, &sp);
            if (!conn.se_open) { /* no chip: nothing to retry */
                kl_dev_log(&o, "%s", conn.err);
                return 1;
            }
            if (!seeded) { /* the chip's RANDOM spreads a fleet's reconnects */
                uint32_t seed = 0;
                kl_se_random(&conn.se, (uint8_t *)&seed, sizeof seed);
                kl_mq_backoff_init(&bo, 500, (uint32_t)(backoff_max_s * 1000), seed);
                seeded = 1;
            }
            if (st == KL_OK) {
                uint8_t code = 0;
                struct kl_mq_sub s = {.filter = t_cmd, .qos = o.qos};
                st = kl_mq_subscribe(&conn.mq, &s, 1, NULL, tmo, &code);
                if (st != KL_OK) {
                    snprintf(conn.err, sizeof conn.err, "subscribe %.100s: %s - %.120s", t_cmd,
                             kl_status_name(st), kl_mq_error(&conn.mq));
                    kl_dev_hangup(&conn);
                } else {
                    ev("connected auth=%s mqtt=%s endpoint=%s session=%d", auth_name,
                       o.version == KL_MQ_V5 ? "5" : "3.1.1", o.endpoint, sp);
                    ev("subscribed filter=%s", t_cmd);
                }
            }
            if (st != KL_OK) {
                failed++;
                ev("refused attempt=%ld reason=%s", attempts, conn.err);
                if (retries_max && failed >= retries_max) {
                    why = "retries";
                    exit_code = 1;
                    break;
                }
                uint32_t d = kl_mq_backoff_next(&bo);
                ev("retry attempt=%ld delay_ms=%u", attempts + 1, d);
                sleep_ms(d);
                continue;
            }
            kl_mq_backoff_reset(&bo);
            pend_clear(); /* what the old connection left unacknowledged is given up */
            failed = 0;
            connected = 1;
        }
        kl_status st = KL_OK;
        now = kl_dev_mono_ms();
        if (now >= next_kick) { /* the chip's watchdog, once a second */
            kl_status ks = kl_se_kick(&conn.se);
            if (ks != KL_OK) kl_dev_log(&o, "watchdog kick failed: %s", kl_status_name(ks));
            next_kick = now + 1000;
        }
        if (o.auth == KL_DEV_JWT) { /* a fresh token a minute (or 10%) before exp */
            int64_t margin = (int64_t)(o.jwt_lifetime_s / 10);
            if (margin > 60) margin = 60;
            if (margin < 1) margin = 1;
            if (kl_dev_unix_s() >= conn.jwt_exp - margin) {
                ev("jwt-renew exp=%lld", (long long)conn.jwt_exp);
                kl_dev_hangup(&conn);
                connected = 0;
                continue;
            }
        }
        /* with --count, no more telemetry than may still be needed */
        if (now >= next_tele && (!o.count || sent + pend_telemetry() < o.count)) {
            char payload[512];
            snprintf(payload, sizeof payload,
                     "{\"thing\":\"%s\",\"seq\":%ld,\"uptime_ms\":%llu,\"ts\":%lld}", o.thing,
                     tele_seq + 1, (unsigned long long)(now - start), (long long)kl_dev_unix_s());
            st = publish(&o, 0, tele_seq + 1, t_tele, payload);
            if (st == KL_OK) tele_seq++;
            next_tele = now + (uint64_t)(o.interval_s * 1000);
        }
        while (st == KL_OK && rc.n) {
            int k = rc.head;
            static char esc[6200], reply[6600], line[1100];
            one_line(rc.body[k], rc.body_len[k], line, sizeof line);
            ev("command topic=%s payload=%s", rc.topic[k], line);
            json_escape(rc.body[k], rc.body_len[k], esc, sizeof esc);
            snprintf(reply, sizeof reply, "{\"thing\":\"%s\",\"topic\":\"%s\",\"command\":\"%s\"}",
                     o.thing, rc.topic[k], esc);
            st = publish(&o, 1, 0, t_reply, reply);
            if (st != KL_OK) break;
            rc.head = (rc.head + 1) % CMDQ;
            rc.n--;
        }
        if (st == KL_OK) {
            uint64_t t = kl_dev_mono_ms(), wait = next_tele > t ? next_tele - t : 0;
            if (!wait && o.count && sent + pend_telemetry() >= o.count)
                wait = 50; /* the last acknowledgements are still coming: no busy loop */
            if (wait > 200) wait = 200; /* stay responsive to signals and the watchdog */
            st = kl_mq_process(&conn.mq, (uint32_t)wait);
        }
        if (st != KL_OK) {
            ev("lost reason=%s%s%s", kl_status_name(st), *kl_mq_error(&conn.mq) ? " - " : "",
               kl_mq_error(&conn.mq));
            kl_dev_hangup(&conn);
            connected = 0;
        }
    }
    if (connected) {
        kl_status st = kl_mq_wait(&conn.mq, tmo);
        if (st != KL_OK && st != KL_E_REFUSED) /* refusals were logged as they came */
            kl_dev_log(&o, "acknowledgements missing at stop: %s", kl_status_name(st));
    }
    if (rc.dropped) kl_dev_log(&o, "%ld command(s) dropped (queue full or too long)", rc.dropped);
    ev("stopped telemetry=%ld replies=%ld reason=%s", sent, replies, why);
    kl_dev_close(&conn);
    return exit_code;
}
