/*
 * `keylink device pub` and `keylink device sub`: MQTT 3.1.1/5 through the chip's TLS, with
 * mTLS, a chip-signed JWT as password, or the keylink-es256-challenge (MQTT 5 AUTH). Built
 * on the public headers only, like firmware (docs/mqtt.md). Also the connection code that
 * `keylink device run` (device_run.c) shares.
 */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common_args.h"
#include "device_mqtt.h"
#include "keylink/jwt.h"
#include "transport_mem.h"

#define CHALLENGE_METHOD "keylink-es256-challenge"

uint64_t kl_dev_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

int64_t kl_dev_unix_s(void)
{
    return (int64_t)time(NULL);
}

static uint64_t now_cb(void *ctx)
{
    (void)ctx;
    return kl_dev_mono_ms();
}

void kl_dev_log(const struct kl_dev_opts *o, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "keylink device %s: ", o->cmd);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

static int usage_error(const struct kl_dev_opts *o, const char *usage, const char *what)
{
    fprintf(stderr, "keylink device %s: %s\n\n%s", o->cmd, what, usage);
    return 2;
}

int kl_dev_parse(struct kl_dev_opts *o, int argc, char **argv, const char *usage,
                 int (*extra)(struct kl_dev_opts *o, const char *a, const char *v, void *ctx),
                 void *ctx)
{
    o->version = KL_MQ_V311;
    o->clean = 1;
    o->root_id = 0x1003;
    o->key_id = 0x1004;
    o->cert_id = 0x1002;
    o->keepalive = 60;
    o->count = 1;
    o->timeout_s = 15;
    o->jwt_lifetime_s = 3600;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        double d;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(usage, stdout);
            return 1;
        }
        if (!strcmp(a, "--retain")) {
            o->retain = 1;
            continue;
        }
        if (!strcmp(a, "--persistent")) {
            o->clean = 0;
            continue;
        }
        if (!strcmp(a, "--verbose") || !strcmp(a, "-v")) {
            o->verbose = 1;
            continue;
        }
        if (!v) return usage_error(o, usage, "an option is missing its value");
        i++;
        if (!strcmp(a, "--device"))
            o->device = v;
        else if (!strcmp(a, "--endpoint"))
            o->endpoint = v;
        else if (!strcmp(a, "--server-name"))
            o->server_name = v;
        else if (!strcmp(a, "--alpn")) {
            if (!*v || strlen(v) > 31)
                return usage_error(o, usage, "--alpn needs a name of 1..31 bytes");
            o->alpn = v;
        } else if (!strcmp(a, "--thing"))
            o->thing = v;
        else if (!strcmp(a, "--client-id"))
            o->client_id = v;
        else if (!strcmp(a, "--audience"))
            o->audience = v;
        else if (!strcmp(a, "--username"))
            o->username = v;
        else if (!strcmp(a, "--topic"))
            o->topic = v;
        else if (!strcmp(a, "--message"))
            o->message = v;
        else if (!strcmp(a, "--pin")) {
            o->pin = v;
            if (kl_channel_pub_read_file(v, o->pinned) != KL_OK)
                return usage_error(
                    o, usage, "--pin FILE must hold the chip's identity key (PEM or hex X||Y)");
        } else if (!strcmp(a, "--auth")) {
            if (!strcmp(v, "mtls"))
                o->auth = KL_DEV_MTLS;
            else if (!strcmp(v, "jwt"))
                o->auth = KL_DEV_JWT;
            else if (!strcmp(v, "challenge"))
                o->auth = KL_DEV_CHALLENGE;
            else
                return usage_error(o, usage, "--auth is mtls, jwt or challenge");
        } else if (!strcmp(a, "--mqtt")) {
            if (!strcmp(v, "3") || !strcmp(v, "3.1.1"))
                o->version = KL_MQ_V311;
            else if (!strcmp(v, "5"))
                o->version = KL_MQ_V5;
            else
                return usage_error(o, usage, "--mqtt is 3 or 5");
        } else if (!strcmp(a, "--qos")) {
            if (!kl_tool_parse_num(v, 0, 2, &d) || d != (int)d)
                return usage_error(o, usage, "--qos is 0, 1 or 2");
            o->qos = (uint8_t)d;
        } else if (!strcmp(a, "--count")) {
            if (!kl_tool_parse_num(v, 0, 1e9, &d) || d != (long)d)
                return usage_error(o, usage, "--count needs a number");
            o->count = (long)d;
        } else if (!strcmp(a, "--keepalive")) {
            if (!kl_tool_parse_num(v, 0, 65535, &d) || d != (int)d)
                return usage_error(o, usage, "--keepalive needs seconds (0..65535)");
            o->keepalive = (uint16_t)d;
        } else if (!strcmp(a, "--session-expiry")) {
            if (!kl_tool_parse_num(v, 0, 4294967295.0, &d) || d != (uint32_t)d)
                return usage_error(o, usage, "--session-expiry needs seconds");
            o->session_expiry = (uint32_t)d;
        } else if (!strcmp(a, "--timeout")) {
            if (!kl_tool_parse_num(v, 0.001, 86400, &d))
                return usage_error(o, usage, "--timeout needs seconds > 0");
            o->timeout_s = d;
        } else if (!strcmp(a, "--duration")) {
            if (!kl_tool_parse_num(v, 0, 1e7, &d))
                return usage_error(o, usage, "--duration needs seconds");
            o->duration_s = d;
        } else if (!strcmp(a, "--interval")) {
            if (!kl_tool_parse_num(v, 0.01, 86400, &d))
                return usage_error(o, usage, "--interval needs seconds");
            o->interval_s = d;
        } else if (!strcmp(a, "--jwt-lifetime")) {
            if (!kl_tool_parse_num(v, 2, 86400, &d))
                return usage_error(o, usage, "--jwt-lifetime is 2..86400 seconds");
            o->jwt_lifetime_s = d;
        } else if (!strcmp(a, "--root-id")) {
            if (!kl_tool_parse_obj_id(v, &o->root_id))
                return usage_error(o, usage, "--root-id needs a hex object id");
        } else if (!strcmp(a, "--key-id")) {
            if (!kl_tool_parse_obj_id(v, &o->key_id))
                return usage_error(o, usage, "--key-id needs a hex object id");
        } else if (!strcmp(a, "--cert-id")) {
            if (!kl_tool_parse_obj_id(v, &o->cert_id))
                return usage_error(o, usage, "--cert-id needs a hex object id");
        } else {
            int r = extra ? extra(o, a, v, ctx) : 0;
            if (r < 0) return usage_error(o, usage, "bad option value");
            if (r == 0) return usage_error(o, usage, "unknown option");
        }
    }
    if (!o->endpoint) return usage_error(o, usage, "--endpoint HOST:PORT is required");
    if (!kl_tool_split_endpoint(o->endpoint, o->host, sizeof o->host, o->port, sizeof o->port))
        return usage_error(o, usage, "--endpoint must be HOST:PORT");
    if (!o->server_name) o->server_name = o->host;
    if (!o->client_id) o->client_id = o->thing;
    if (!o->client_id) return usage_error(o, usage, "--thing NAME (or --client-id) is required");
    if (!o->audience) o->audience = o->server_name;
    if (o->auth == KL_DEV_CHALLENGE && o->version != KL_MQ_V5)
        return usage_error(o, usage, "--auth challenge needs --mqtt 5 (enhanced authentication)");
    if (o->session_expiry && o->version != KL_MQ_V5)
        return usage_error(o, usage, "--session-expiry needs --mqtt 5");
    return 0;
}

/* A JWT for the password (jwt) or the challenge answer (nonce set): claims iat, exp, aud,
 * sub (the thing), jti (chip random) and nonce; x5c with the chip's certificate when
 * with_cert. */
static kl_status make_token(struct kl_dev_conn *d, const uint8_t *nonce, size_t nonce_len,
                            int with_cert, int64_t lifetime)
{
    const struct kl_dev_opts *o = d->o;
    uint8_t r[16];
    char jti[33];
    kl_status st = kl_se_random(&d->se, r, sizeof r);
    if (st != KL_OK) return st;
    for (int i = 0; i < 16; i++)
        snprintf(jti + 2 * i, 3, "%02x", r[i]);
    struct kl_jwt_claims cl = {0};
    cl.sub = o->thing;
    cl.aud = o->audience;
    cl.jti = jti;
    cl.iat = kl_dev_unix_s();
    cl.exp = cl.iat + lifetime;
    cl.nonce = nonce;
    cl.nonce_len = nonce_len;
    size_t len;
    st = kl_jwt_sign(&d->se, o->key_id, &cl, with_cert ? d->cert : NULL,
                     with_cert ? d->cert_len : 0, d->jwt, sizeof d->jwt, &len);
    if (st == KL_OK) d->jwt_exp = cl.exp;
    return st;
}

static kl_status on_auth(void *ctx, uint8_t reason, const struct kl_mq_props *in,
                         struct kl_mq_props *out)
{
    struct kl_dev_conn *d = ctx;
    (void)reason;
    if (!(in->has & KL_MQ_HAS(KL_MQ_P_AUTH_METHOD)) ||
        in->auth_method.n != strlen(CHALLENGE_METHOD) ||
        memcmp(in->auth_method.p, CHALLENGE_METHOD, in->auth_method.n) ||
        !(in->has & KL_MQ_HAS(KL_MQ_P_AUTH_DATA)) || in->auth_data.n != 32) {
        if (!d->quiet)
            kl_dev_log(d->o, "the server's challenge is not a 32-byte nonce for %s",
                       CHALLENGE_METHOD);
        return KL_E_PEER;
    }
    kl_status st = make_token(d, in->auth_data.p, 32, 1, 300);
    if (st != KL_OK) {
        if (!d->quiet)
            kl_dev_log(d->o, "signing the challenge answer in the chip failed: %s",
                       kl_status_name(st));
        return st;
    }
    if (d->o->verbose) kl_dev_log(d->o, "answering the challenge with a chip-signed JWS");
    out->has = KL_MQ_HAS(KL_MQ_P_AUTH_METHOD) | KL_MQ_HAS(KL_MQ_P_AUTH_DATA);
    out->auth_method.p = (const uint8_t *)CHALLENGE_METHOD;
    out->auth_method.n = strlen(CHALLENGE_METHOD);
    out->auth_data.p = (const uint8_t *)d->jwt;
    out->auth_data.n = strlen(d->jwt);
    return KL_OK;
}

static kl_status fail(struct kl_dev_conn *d, const char *what, kl_status st, const char *detail)
{
    snprintf(d->err, sizeof d->err, "%s: %s%s%s", what, kl_status_name(st),
             detail && *detail ? " - " : "", detail ? detail : "");
    if (!d->quiet) kl_dev_log(d->o, "%s", d->err);
    return st;
}

kl_status kl_dev_connect(struct kl_dev_conn *d, const struct kl_dev_opts *o,
                         kl_mq_message_fn on_msg, void *ctx, int *session_present)
{
    d->o = o;
    kl_status st;
    if (!d->se_open) {
        (void)kl_se_mem_register();
        st = kl_se_open(&d->se, o->device);
        if (st != KL_OK) return fail(d, "cannot open the secure element", st, o->device);
        d->se_open = 1;
        /* every chip command of TLS, JWT and the watchdog then goes through the channel */
        if (o->pin && (st = kl_se_channel_open(&d->se, o->pinned, kl_random_os, NULL)) != KL_OK) {
            kl_se_close(&d->se);
            d->se_open = 0;
            return fail(d, "cannot open the secure channel", st,
                        st == KL_E_VERIFY_FAILED ? "the chip is not the pinned one" : NULL);
        }
    }
    if (o->auth == KL_DEV_CHALLENGE && !d->cert_len) {
        st = kl_se_read_object(&d->se, o->cert_id, d->cert, sizeof d->cert, &d->cert_len);
        if (st != KL_OK || !d->cert_len)
            return fail(d, "cannot read the device certificate", st ? st : KL_E_NOT_FOUND, NULL);
    }
    uint64_t t0 = kl_dev_mono_ms();
    uint32_t tmo = (uint32_t)(o->timeout_s * 1000);
    st = kl_tls_posix_connect(&d->sock, o->host, o->port, tmo);
    if (st != KL_OK) return fail(d, "cannot connect", st, o->endpoint);
    struct kl_tls_transport tr;
    struct kl_tls_clock ck;
    kl_tls_posix_transport(&d->sock, &tr);
    kl_tls_posix_clock(&ck);
    struct kl_tls_config cfg = {0};
    cfg.server_name = o->server_name;
    cfg.root_id = o->root_id;
    if (o->alpn) {
        cfg.alpn = &o->alpn;
        cfg.alpn_n = 1;
    }
    /* only mTLS shows a client certificate: keylinkd takes a certificate as the identity */
    cfg.client_key_id = o->auth == KL_DEV_MTLS ? o->key_id : 0;
    cfg.client_cert_id = o->auth == KL_DEV_MTLS ? o->cert_id : 0;
    cfg.timeout_ms = tmo;
    memset(&d->tls, 0, sizeof d->tls);
    st = kl_tls_init(&d->tls, &d->se, &cfg, &tr, &ck, d->tls_rx, sizeof d->tls_rx, d->tls_hs,
                     sizeof d->tls_hs);
    if (st == KL_OK) st = kl_tls_handshake(&d->tls);
    if (st != KL_OK) {
        fail(d, "TLS handshake failed", st, kl_tls_error(&d->tls));
        kl_tls_close(&d->tls);
        kl_tls_posix_close(&d->sock);
        return st;
    }
    uint64_t t1 = kl_dev_mono_ms();
    if (o->verbose)
        kl_dev_log(o, "TLS %s to %s (%s) in %llu ms, client certificate %s, ALPN %s",
                   kl_tls_suite_name(d->tls.suite), o->endpoint, o->server_name,
                   (unsigned long long)(t1 - t0), d->tls.client_auth ? "sent" : "not sent",
                   d->tls.alpn[0] ? d->tls.alpn : "none");
    struct kl_mq_config mc = {0};
    kl_mq_transport_tls(&d->tls, &mc.tr);
    mc.now_ms = now_cb;
    mc.tx = d->mq_tx;
    mc.tx_cap = sizeof d->mq_tx;
    mc.rx = d->mq_rx;
    mc.rx_cap = sizeof d->mq_rx;
    mc.slots = d->slots;
    mc.nslots = sizeof d->slots / sizeof d->slots[0];
    mc.on_message = on_msg;
    mc.message_ctx = ctx;
    mc.on_auth = on_auth;
    mc.auth_ctx = d;
    mc.on_done = d->on_done;
    mc.done_ctx = d->done_ctx;
    /* keep the in-flight table across reconnects of a persistent session */
    int keep = d->mq.cfg.slots == d->slots && !o->clean;
    struct kl_mq_inflight saved[16];
    if (keep) memcpy(saved, d->slots, sizeof saved);
    kl_mq_init(&d->mq, &mc);
    if (keep) memcpy(d->slots, saved, sizeof saved);

    struct kl_mq_connect_opts co = {0};
    struct kl_mq_props cp = {0};
    co.version = o->version;
    co.client_id = o->client_id;
    co.keepalive_s = o->keepalive;
    co.clean = o->clean;
    if (o->version == KL_MQ_V5) co.props = &cp;
    if (o->session_expiry) {
        cp.has |= KL_MQ_HAS(KL_MQ_P_SESSION_EXPIRY);
        cp.session_expiry = o->session_expiry;
    }
    if (o->auth == KL_DEV_JWT) {
        st = make_token(d, NULL, 0, 0, (int64_t)o->jwt_lifetime_s);
        if (st != KL_OK) {
            kl_dev_hangup(d);
            return fail(d, "signing the JWT in the chip failed", st, NULL);
        }
        co.username = o->username ? o->username : "unused";
        co.password.p = (const uint8_t *)d->jwt;
        co.password.n = strlen(d->jwt);
    } else if (o->username) {
        co.username = o->username;
    }
    if (o->auth == KL_DEV_CHALLENGE) {
        cp.has |= KL_MQ_HAS(KL_MQ_P_AUTH_METHOD);
        cp.auth_method.p = (const uint8_t *)CHALLENGE_METHOD;
        cp.auth_method.n = strlen(CHALLENGE_METHOD);
    }
    struct kl_mq_connack ack;
    st = kl_mq_connect(&d->mq, &co, tmo, &ack);
    if (st != KL_OK) {
        char why[200];
        /* the server's log has the detail a refusal code cannot carry (which check failed) */
        snprintf(why, sizeof why, "%s%s", kl_mq_error(&d->mq),
                 st == KL_E_REFUSED ? " (the endpoint's log names the reason)" : "");
        fail(d, "MQTT connect failed", st, why);
        kl_tls_close(&d->tls);
        kl_tls_posix_close(&d->sock);
        return st;
    }
    if (session_present) *session_present = ack.session_present;
    /* the tools keep no copy of what they published: messages the old connection left
     * unacknowledged are given up (the client already resent PUBREL for QoS 2 halves) */
    for (size_t i = 0; i < sizeof d->slots / sizeof d->slots[0]; i++)
        if (d->slots[i].state == KL_MQ_SLOT_WAIT_PUBACK ||
            d->slots[i].state == KL_MQ_SLOT_WAIT_PUBREC)
            d->slots[i].state = KL_MQ_SLOT_FREE;
    if (o->verbose)
        kl_dev_log(o, "MQTT %s connected as %s (%s) in %llu ms%s",
                   o->version == KL_MQ_V5 ? "5" : "3.1.1", o->client_id,
                   o->auth == KL_DEV_MTLS  ? "mtls"
                   : o->auth == KL_DEV_JWT ? "jwt"
                                           : "challenge",
                   (unsigned long long)(kl_dev_mono_ms() - t1),
                   ack.session_present ? ", session present" : "");
    return KL_OK;
}

void kl_dev_hangup(struct kl_dev_conn *d)
{
    if (d->mq.connected) kl_mq_disconnect(&d->mq, 0, NULL);
    kl_tls_close(&d->tls);
    kl_tls_posix_close(&d->sock);
}

void kl_dev_close(struct kl_dev_conn *d)
{
    kl_dev_hangup(d);
    if (d->se_open) kl_se_close(&d->se);
    d->se_open = 0;
}

/* ------------------------------------------------------------------ pub ---- */

static const char *const pub_usage =
    "usage: keylink device pub --endpoint HOST:PORT --thing NAME --topic T [OPTIONS]\n"
    "\n"
    "Connects over TLS 1.2 through the secure element, publishes --message --count times\n"
    "(QoS 1/2: waits for every acknowledgement) and disconnects.\n"
    "\n"
    "options:\n"
    "  --device URI          unix:PATH (keylink-se daemon) or mem:DIR; default $KEYLINK_SE\n"
    "  --pin FILE            talk to the chip inside the secure channel, checked against\n"
    "                        this pinned identity key (keylink se channel pin)\n"
    "  --endpoint HOST:PORT  the broker\n"
    "  --server-name NAME    SNI and the name the server certificate must carry (default HOST)\n"
    "  --alpn NAME           offer this ALPN protocol (AWS IoT Core on port 443 needs\n"
    "                        x-amzn-mqtt-ca); a server answering another name is refused\n"
    "  --thing NAME          the thing name; also the client id unless --client-id\n"
    "  --client-id ID        MQTT client id (default: the thing name)\n"
    "  --auth mtls|jwt|challenge  how the device proves itself (default mtls):\n"
    "                        mtls: client certificate 0x1002 + key 0x1004 in TLS;\n"
    "                        jwt: chip-signed ES256 JWT as the MQTT password (user \"unused\");\n"
    "                        challenge: MQTT 5 AUTH keylink-es256-challenge (needs --mqtt 5)\n"
    "  --audience AUD        JWT aud (default: the server name)\n"
    "  --mqtt 3|5            protocol version (default 3 = 3.1.1)\n"
    "  --topic T             topic to publish on\n"
    "  --message M           payload (default: read standard input)\n"
    "  --qos 0|1|2           (default 0)\n"
    "  --retain              set the retain flag\n"
    "  --content-type T, --response-topic T, --correlation D, --message-expiry S,\n"
    "  --user-property K=V   (up to 4): MQTT 5 message properties (need --mqtt 5)\n"
    "  --count N             publish N times (default 1)\n"
    "  --keepalive S         keep-alive seconds (default 60)\n"
    "  --persistent          persistent session (clean session/start off)\n"
    "  --session-expiry S    MQTT 5 session expiry interval\n"
    "  --timeout S           connect and acknowledgement limit (default 15)\n"
    "  --jwt-lifetime S      exp - iat of the JWT (default 3600)\n"
    "  --root-id/--key-id/--cert-id ID  chip objects (default 0x1003/0x1004/0x1002)\n"
    "  --verbose             log the steps to standard error\n"
    "\n"
    "Exit status: 0 published (and acknowledged), 1 failed (the message says why), 2 usage.\n";

static struct kl_dev_conn conn; /* large: buffers for TLS and MQTT */

/* MQTT 5 PUBLISH properties from pub's options. */
static int pub_extra(struct kl_dev_opts *o, const char *a, const char *v, void *ctx)
{
    (void)o;
    struct kl_mq_props *p = ctx;
    size_t n = strlen(v);
    if (n > 1024) return -1;
    if (!strcmp(a, "--content-type")) {
        p->has |= KL_MQ_HAS(KL_MQ_P_CONTENT_TYPE);
        p->content_type = (struct kl_mq_bin){(const uint8_t *)v, n};
    } else if (!strcmp(a, "--response-topic")) {
        if (!kl_mq_topic_ok(v, n)) return -1;
        p->has |= KL_MQ_HAS(KL_MQ_P_RESPONSE_TOPIC);
        p->response_topic = (struct kl_mq_bin){(const uint8_t *)v, n};
    } else if (!strcmp(a, "--correlation")) {
        p->has |= KL_MQ_HAS(KL_MQ_P_CORRELATION);
        p->correlation = (struct kl_mq_bin){(const uint8_t *)v, n};
    } else if (!strcmp(a, "--message-expiry")) {
        char *end;
        unsigned long e = strtoul(v, &end, 10);
        if (!*v || *end || e == 0 || e > 0xFFFFFFFFul) return -1;
        p->has |= KL_MQ_HAS(KL_MQ_P_MESSAGE_EXPIRY);
        p->message_expiry = (uint32_t)e;
    } else if (!strcmp(a, "--user-property")) {
        const char *eq = strchr(v, '=');
        if (!eq || eq == v || p->user_n == KL_MQ_USER_MAX) return -1;
        p->has |= KL_MQ_HAS(KL_MQ_P_USER);
        p->user_key[p->user_n] = (struct kl_mq_bin){(const uint8_t *)v, (size_t)(eq - v)};
        p->user_val[p->user_n] = (struct kl_mq_bin){(const uint8_t *)eq + 1, strlen(eq + 1)};
        p->user_n++;
    } else {
        return 0;
    }
    return 1;
}

/* How the QoS 1/2 exchanges ended (MQTT 5 tells a refusal by its reason code). */
struct pub_tally {
    long acked, refused;
    uint8_t type, reason; /* the last refusal */
};

static void pub_done(void *ctx, uint16_t pid, uint8_t type, uint8_t reason)
{
    struct pub_tally *t = ctx;
    (void)pid;
    if (reason < 0x80) {
        t->acked++;
        return;
    }
    t->refused++;
    t->type = type;
    t->reason = reason;
}

int kl_device_pub(int argc, char **argv)
{
    struct kl_dev_opts o = {.cmd = "pub"};
    static struct kl_mq_props props;
    int r = kl_dev_parse(&o, argc, argv, pub_usage, pub_extra, &props);
    if (r) return r == 1 ? 0 : r;
    if (props.has && o.version != KL_MQ_V5)
        return usage_error(&o, pub_usage, "message properties need --mqtt 5");
    if (!o.topic || !kl_mq_topic_ok(o.topic, strlen(o.topic)))
        return usage_error(&o, pub_usage, "--topic needs a topic name without wildcards");
    static char stdin_buf[16384];
    size_t mlen;
    if (o.message) {
        mlen = strlen(o.message);
    } else {
        mlen = fread(stdin_buf, 1, sizeof stdin_buf, stdin);
        if (!feof(stdin)) return usage_error(&o, pub_usage, "standard input over 16 KB");
        o.message = stdin_buf;
    }
    if (mlen > 16000) return usage_error(&o, pub_usage, "--message over 16000 bytes");
    struct pub_tally tally = {0};
    conn.on_done = pub_done;
    conn.done_ctx = &tally;
    kl_status st = kl_dev_connect(&conn, &o, NULL, NULL, NULL);
    if (st != KL_OK) {
        kl_dev_close(&conn);
        return 1;
    }
    struct kl_mq_msg m = {0};
    m.props = props.has ? &props : NULL;
    m.topic = o.topic;
    m.payload = (const uint8_t *)o.message;
    m.payload_len = mlen;
    m.qos = o.qos;
    m.retain = o.retain;
    uint32_t tmo = (uint32_t)(o.timeout_s * 1000);
    long sent = 0;
    for (; sent < o.count && st == KL_OK; sent++) {
        st = kl_mq_publish(&conn.mq, &m, NULL);
        /* the table has 16 slots: let acknowledgements free them as we go */
        if (st == KL_E_BUFFER) {
            st = kl_mq_wait(&conn.mq, tmo);
            if (st == KL_E_REFUSED) st = KL_OK; /* counted by pub_done, reported below */
            if (st == KL_OK) st = kl_mq_publish(&conn.mq, &m, NULL);
        }
        if (st == KL_OK) st = kl_mq_process(&conn.mq, 0);
    }
    if (st == KL_OK) st = kl_mq_wait(&conn.mq, tmo);
    if (st == KL_E_REFUSED) st = KL_OK; /* pub_done counted each refusal */
    int rc = 0;
    if (st == KL_OK && tally.refused) {
        /* MQTT 5 PUBACK/PUBREC/PUBCOMP with a reason code >= 0x80: not delivered */
        if (o.count == 1)
            kl_dev_log(&o, "the server refused the message: %s (0x%02x)",
                       kl_mq_reason_name(o.version, tally.type, tally.reason), tally.reason);
        else
            kl_dev_log(&o, "the server refused %ld of %ld messages: %s (0x%02x)", tally.refused,
                       o.count, kl_mq_reason_name(o.version, tally.type, tally.reason),
                       tally.reason);
        rc = 1;
    } else if (st != KL_OK) {
        kl_dev_log(&o, "publishing failed after %ld of %ld: %s%s%s", sent, o.count,
                   kl_status_name(st), *kl_mq_error(&conn.mq) ? " - " : "", kl_mq_error(&conn.mq));
        rc = 1;
    } else if (o.verbose) {
        kl_dev_log(&o, "published %ld message(s) to %s at QoS %u", sent, o.topic, o.qos);
    }
    kl_dev_close(&conn);
    return rc;
}

/* ------------------------------------------------------------------ sub ---- */

static const char *const sub_usage =
    "usage: keylink device sub --endpoint HOST:PORT --thing NAME --topic FILTER [OPTIONS]\n"
    "\n"
    "Connects through the secure element, subscribes to FILTER (wildcards allowed; repeat\n"
    "--topic for more) and prints each message's payload on its own line, until --count\n"
    "messages arrived (default 1, 0 = no limit) or --duration seconds passed. \"subscribed\"\n"
    "goes to standard error once the server granted the subscription.\n"
    "\n"
    "options: as for `keylink device pub` (--qos is the subscription's maximum QoS), and\n"
    "  --show-topic          print \"TOPIC PAYLOAD\" instead of the payload only\n"
    "  --duration S          stop after S seconds (exit 0 if --count is 0, else 1)\n"
    "SIGTERM or SIGINT ends it cleanly (exit 0 if --count is 0, else 1).\n"
    "\n"
    "Exit status: 0 all messages arrived, 1 failed or timed out, 2 bad usage.\n";

static volatile sig_atomic_t sub_stop;
static void sub_signal(int sig)
{
    (void)sig;
    sub_stop = 1;
}

struct sub_ctx {
    const char *topics[8];
    size_t ntopics;
    int show_topic;
    long got;
};

static void sub_msg(void *ctx, const struct kl_mq_msg *m)
{
    struct sub_ctx *s = ctx;
    if (s->show_topic) printf("%.*s ", (int)m->topic_len, m->topic);
    fwrite(m->payload, 1, m->payload_len, stdout);
    putchar('\n');
    fflush(stdout);
    s->got++;
}

int kl_device_sub(int argc, char **argv)
{
    struct kl_dev_opts o = {.cmd = "sub"};
    struct sub_ctx s = {0};
    /* --topic may repeat and --show-topic is a flag: take them out before the common parse */
    char *args[64];
    int n = 0;
    if (argc > 64) return usage_error(&o, sub_usage, "too many arguments");
    for (int i = 0; i < argc; i++) {
        if (i > 0 && !strcmp(argv[i], "--show-topic")) {
            s.show_topic = 1;
            continue;
        }
        if (i > 0 && !strcmp(argv[i], "--topic") && i + 1 < argc) {
            if (s.ntopics == 8) return usage_error(&o, sub_usage, "at most 8 --topic filters");
            s.topics[s.ntopics++] = argv[++i];
            continue;
        }
        args[n++] = argv[i];
    }
    int r = kl_dev_parse(&o, n, args, sub_usage, NULL, NULL);
    if (r) return r == 1 ? 0 : r;
    if (!s.ntopics) return usage_error(&o, sub_usage, "--topic FILTER is required");
    struct kl_mq_sub subs[8];
    memset(subs, 0, sizeof subs);
    for (size_t i = 0; i < s.ntopics; i++) {
        if (!kl_mq_filter_ok(s.topics[i], strlen(s.topics[i])))
            return usage_error(&o, sub_usage, "--topic is not a valid topic filter");
        subs[i].filter = s.topics[i];
        subs[i].qos = o.qos;
    }
    kl_status st = kl_dev_connect(&conn, &o, sub_msg, &s, NULL);
    if (st != KL_OK) {
        kl_dev_close(&conn);
        return 1;
    }
    uint8_t codes[8];
    st = kl_mq_subscribe(&conn.mq, subs, s.ntopics, NULL, (uint32_t)(o.timeout_s * 1000), codes);
    if (st != KL_OK) {
        if (st == KL_E_REFUSED)
            kl_dev_log(&o, "subscribe failed: %s", kl_mq_error(&conn.mq));
        else
            kl_dev_log(&o, "subscribe failed: %s - %s", kl_status_name(st), kl_mq_error(&conn.mq));
        kl_dev_close(&conn);
        return 1;
    }
    kl_dev_log(&o, "subscribed (granted QoS %u)", codes[0]);
    uint64_t start = kl_dev_mono_ms();
    int rc = 0;
    /* SIGTERM/SIGINT end the subscription cleanly: DISCONNECT and close_notify */
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = sub_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    while (!sub_stop && (o.count == 0 || s.got < o.count)) {
        uint64_t el = kl_dev_mono_ms() - start;
        if (o.duration_s > 0 && el >= (uint64_t)(o.duration_s * 1000)) {
            rc = o.count ? 1 : 0;
            if (rc)
                kl_dev_log(&o, "only %ld of %ld messages in %.1f s", s.got, o.count, o.duration_s);
            break;
        }
        st = kl_mq_process(&conn.mq, 200);
        if (st != KL_OK && !sub_stop) {
            kl_dev_log(&o, "connection lost: %s - %s", kl_status_name(st), kl_mq_error(&conn.mq));
            rc = 1;
            break;
        }
    }
    if (sub_stop && o.count && s.got < o.count) rc = 1;
    kl_dev_close(&conn);
    return rc;
}

/* ------------------------------------------------------------------ jwt ---- */

static const char *const jwt_usage =
    "usage: keylink device jwt --audience AUD [OPTIONS]\n"
    "\n"
    "Prints a compact JWS (JWT) made and signed in the secure element (ES256, docs/jwt.md):\n"
    "header {\"alg\":\"ES256\",\"typ\":\"JWT\"[,\"x5c\":[...]]}, claims sub, aud, iat, exp, jti\n"
    "[, nonce]. The same token `--auth jwt` sends as the MQTT password.\n"
    "\n"
    "options:\n"
    "  --device URI          unix:PATH or mem:DIR; default $KEYLINK_SE\n"
    "  --audience AUD        the aud claim (required)\n"
    "  --thing NAME          the sub claim (default: none)\n"
    "  --lifetime S          exp - iat in seconds (default 3600)\n"
    "  --nonce HEX           add a nonce claim (base64url of these bytes, at most 64)\n"
    "  --x5c                 add the device certificate (object --cert-id) as x5c\n"
    "  --key-id ID           signing key pair (default 0x1004)\n"
    "  --cert-id ID          certificate object (default 0x1002)\n"
    "\n"
    "Exit status: 0 printed, 1 the chip failed, 2 bad usage.\n";

int kl_device_jwt(int argc, char **argv)
{
    struct kl_dev_opts o = {.cmd = "jwt"};
    const char *device = NULL, *aud = NULL, *thing = NULL, *nonce_hex = NULL;
    double life = 3600;
    int x5c = 0;
    uint16_t key_id = 0x1004, cert_id = 0x1002;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(jwt_usage, stdout);
            return 0;
        }
        if (!strcmp(a, "--x5c")) {
            x5c = 1;
            continue;
        }
        if (!v) return usage_error(&o, jwt_usage, "an option is missing its value");
        i++;
        if (!strcmp(a, "--device"))
            device = v;
        else if (!strcmp(a, "--audience"))
            aud = v;
        else if (!strcmp(a, "--thing"))
            thing = v;
        else if (!strcmp(a, "--nonce"))
            nonce_hex = v;
        else if (!strcmp(a, "--lifetime")) {
            if (!kl_tool_parse_num(v, 1, 86400 * 365, &life))
                return usage_error(&o, jwt_usage, "--lifetime needs seconds");
        } else if (!strcmp(a, "--key-id")) {
            if (!kl_tool_parse_obj_id(v, &key_id))
                return usage_error(&o, jwt_usage, "--key-id needs a hex object id");
        } else if (!strcmp(a, "--cert-id")) {
            if (!kl_tool_parse_obj_id(v, &cert_id))
                return usage_error(&o, jwt_usage, "--cert-id needs a hex object id");
        } else
            return usage_error(&o, jwt_usage, "unknown option");
    }
    if (!aud) return usage_error(&o, jwt_usage, "--audience is required");
    uint8_t nonce[64];
    size_t nl = 0;
    if (nonce_hex) {
        size_t hl = strlen(nonce_hex);
        if (hl == 0 || hl % 2 || hl / 2 > sizeof nonce)
            return usage_error(&o, jwt_usage, "--nonce needs 1..64 bytes of hex");
        for (size_t i = 0; i < hl / 2; i++) {
            unsigned int b;
            if (sscanf(nonce_hex + 2 * i, "%2x", &b) != 1 ||
                !strchr("0123456789abcdefABCDEF", nonce_hex[2 * i]) ||
                !strchr("0123456789abcdefABCDEF", nonce_hex[2 * i + 1]))
                return usage_error(&o, jwt_usage, "--nonce needs hex");
            nonce[nl++] = (uint8_t)b;
        }
    }
    struct kl_dev_conn *d = &conn;
    o.thing = thing;
    o.audience = aud;
    o.key_id = key_id;
    d->o = &o;
    (void)kl_se_mem_register();
    kl_status st = kl_se_open(&d->se, device);
    if (st != KL_OK) {
        kl_dev_log(&o, "cannot open the secure element: %s", kl_status_name(st));
        return 1;
    }
    d->se_open = 1;
    if (x5c) {
        st = kl_se_read_object(&d->se, cert_id, d->cert, sizeof d->cert, &d->cert_len);
        if (st == KL_OK && !d->cert_len) st = KL_E_NOT_FOUND;
    }
    if (st == KL_OK) st = make_token(d, nl ? nonce : NULL, nl, x5c, (int64_t)life);
    kl_se_close(&d->se);
    d->se_open = 0;
    if (st != KL_OK) {
        kl_dev_log(&o, "making the JWT in the chip failed: %s", kl_status_name(st));
        return 1;
    }
    puts(d->jwt);
    return 0;
}
