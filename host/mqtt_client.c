/* The MQTT client: session state over a transport (docs/mqtt.md). Builds packets with the
 * serializers into cfg.tx and reads them from cfg.rx with the deserializers. */
#include <string.h>

#include "mqtt_int.h"

static void set_err(struct kl_mq_client *c, const char *msg, int code)
{
    size_t n = strlen(msg);
    if (n > sizeof c->err - 8) n = sizeof c->err - 8;
    memcpy(c->err, msg, n);
    if (code >= 0) {
        static const char hex[] = "0123456789abcdef";
        c->err[n++] = ' ';
        c->err[n++] = '0';
        c->err[n++] = 'x';
        c->err[n++] = hex[(code >> 4) & 15];
        c->err[n++] = hex[code & 15];
    }
    c->err[n] = 0;
}

/* "what: <reason in words> 0xNN" for a refusal the server answered with a reason code. */
static void set_refusal(struct kl_mq_client *c, const char *what, uint8_t type, uint8_t code)
{
    char m[sizeof c->err];
    const char *name = kl_mq_reason_name(c->version, type, code);
    size_t a = strlen(what), b = strlen(name);
    if (a > sizeof m / 2) a = sizeof m / 2;
    if (b > sizeof m - a - 3) b = sizeof m - a - 3;
    memcpy(m, what, a);
    m[a] = ':';
    m[a + 1] = ' ';
    memcpy(m + a + 2, name, b);
    m[a + 2 + b] = 0;
    set_err(c, m, code);
}

const char *kl_mq_error(const struct kl_mq_client *c)
{
    return c ? c->err : "";
}

const char *kl_mq_reason_name(uint8_t version, uint8_t type, uint8_t code)
{
    if (version != KL_MQ_V5 && type == KL_MQ_CONNACK) {
        static const char *const v3[] = {
            "accepted",           "unacceptable protocol version", "identifier rejected",
            "server unavailable", "bad user name or password",     "not authorized"};
        return code < 6 ? v3[code] : "unknown reason";
    }
    switch (code) {
    case 0x00:
        return "success";
    case 0x01:
        return "granted QoS 1";
    case 0x02:
        return "granted QoS 2";
    case 0x04:
        return "disconnect with will";
    case 0x10:
        return "no matching subscribers";
    case 0x11:
        return "no subscription existed";
    case 0x18:
        return "continue authentication";
    case 0x19:
        return "re-authenticate";
    case 0x80:
        return "unspecified error";
    case 0x81:
        return "malformed packet";
    case 0x82:
        return "protocol error";
    case 0x83:
        return "implementation specific error";
    case 0x84:
        return "unsupported protocol version";
    case 0x85:
        return "client identifier not valid";
    case 0x86:
        return "bad user name or password";
    case 0x87:
        return "not authorized";
    case 0x88:
        return "server unavailable";
    case 0x89:
        return "server busy";
    case 0x8A:
        return "banned";
    case 0x8B:
        return "server shutting down";
    case 0x8C:
        return "bad authentication method";
    case 0x8D:
        return "keep alive timeout";
    case 0x8E:
        return "session taken over";
    case 0x8F:
        return "topic filter invalid";
    case 0x90:
        return "topic name invalid";
    case 0x91:
        return "packet identifier in use";
    case 0x92:
        return "packet identifier not found";
    case 0x93:
        return "receive maximum exceeded";
    case 0x94:
        return "topic alias invalid";
    case 0x95:
        return "packet too large";
    case 0x96:
        return "message rate too high";
    case 0x97:
        return "quota exceeded";
    case 0x98:
        return "administrative action";
    case 0x99:
        return "payload format invalid";
    case 0x9A:
        return "retain not supported";
    case 0x9B:
        return "QoS not supported";
    case 0x9C:
        return "use another server";
    case 0x9D:
        return "server moved";
    case 0x9E:
        return "shared subscriptions not supported";
    case 0x9F:
        return "connection rate exceeded";
    case 0xA0:
        return "maximum connect time";
    case 0xA1:
        return "subscription identifiers not supported";
    case 0xA2:
        return "wildcard subscriptions not supported";
    default:
        return "unknown reason";
    }
}

kl_status kl_mq_init(struct kl_mq_client *c, const struct kl_mq_config *cfg)
{
    if (!c || !cfg || !cfg->tr.send || !cfg->tr.recv || !cfg->now_ms || !cfg->tx || !cfg->rx ||
        !cfg->slots || !cfg->nslots)
        return KL_E_ARG;
    if (cfg->tx_cap < 64 || cfg->rx_cap < 64) return KL_E_BUFFER;
    memset(c, 0, sizeof *c);
    c->cfg = *cfg;
    memset(cfg->slots, 0, cfg->nslots * sizeof *cfg->slots);
    c->next_pid = 1;
    return KL_OK;
}

static uint64_t now(struct kl_mq_client *c)
{
    return c->cfg.now_ms(c->cfg.now_ctx);
}

static kl_status send_pkt(struct kl_mq_client *c, size_t len)
{
    kl_status st = c->cfg.tr.send(c->cfg.tr.ctx, c->cfg.tx, len);
    if (st != KL_OK) {
        c->connected = 0;
        set_err(c, "sending failed", -1);
        return st;
    }
    c->last_tx_ms = now(c);
    return KL_OK;
}

/* The server broke the protocol: tell it (MQTT 5) and give up on the connection. */
static kl_status peer_error(struct kl_mq_client *c, const char *msg, uint8_t reason)
{
    if (c->connected && c->version == KL_MQ_V5) {
        size_t len;
        if (kl_mq_ser_disconnect(c->cfg.tx, c->cfg.tx_cap, KL_MQ_V5, reason, NULL, &len) == KL_OK)
            (void)c->cfg.tr.send(c->cfg.tr.ctx, c->cfg.tx, len);
    }
    c->connected = 0;
    set_err(c, msg, -1);
    return KL_E_PEER;
}

static struct kl_mq_inflight *slot_find(struct kl_mq_client *c, uint16_t pid, int in)
{
    for (size_t i = 0; i < c->cfg.nslots; i++) {
        struct kl_mq_inflight *s = &c->cfg.slots[i];
        if (s->state != KL_MQ_SLOT_FREE && s->pid == pid &&
            (s->state == KL_MQ_SLOT_WAIT_PUBREL) == (in != 0))
            return s;
    }
    return NULL;
}

static struct kl_mq_inflight *slot_free(struct kl_mq_client *c)
{
    for (size_t i = 0; i < c->cfg.nslots; i++)
        if (c->cfg.slots[i].state == KL_MQ_SLOT_FREE) return &c->cfg.slots[i];
    return NULL;
}

static size_t outgoing(const struct kl_mq_client *c)
{
    size_t n = 0;
    for (size_t i = 0; i < c->cfg.nslots; i++) {
        uint8_t s = c->cfg.slots[i].state;
        if (s >= KL_MQ_SLOT_WAIT_PUBACK && s <= KL_MQ_SLOT_WAIT_PUBCOMP) n++;
    }
    return n;
}

static uint16_t new_pid(struct kl_mq_client *c)
{
    for (;;) {
        uint16_t p = c->next_pid++;
        if (c->next_pid == 0) c->next_pid = 1;
        if (p && !slot_find(c, p, 0) && p != c->wait_pid) return p;
    }
}

static kl_status send_ack(struct kl_mq_client *c, uint8_t type, uint16_t pid, uint8_t reason)
{
    size_t len;
    kl_status st = kl_mq_ser_ack(c->cfg.tx, c->cfg.tx_cap, c->version, type, pid,
                                 c->version == KL_MQ_V5 ? reason : 0, NULL, &len);
    return st != KL_OK ? st : send_pkt(c, len);
}

static kl_status on_publish(struct kl_mq_client *c, uint8_t flags, const uint8_t *b, size_t n)
{
    struct kl_mq_msg m;
    if (kl_mq_de_publish(flags, b, n, c->version, &m, &c->in_props))
        return peer_error(c, "malformed PUBLISH", KL_MQ_RC_MALFORMED);
    if (m.qos == 2) {
        if (slot_find(c, m.pid, 1)) /* a resend we already delivered */
            return send_ack(c, KL_MQ_PUBREC, m.pid, 0);
        struct kl_mq_inflight *s = slot_free(c);
        if (!s) return peer_error(c, "more QoS 2 messages than slots", KL_MQ_RC_RECEIVE_MAX);
        s->pid = m.pid;
        s->state = KL_MQ_SLOT_WAIT_PUBREL;
    }
    if (c->cfg.on_message) c->cfg.on_message(c->cfg.message_ctx, &m);
    if (m.qos == 1) return send_ack(c, KL_MQ_PUBACK, m.pid, 0);
    if (m.qos == 2) return send_ack(c, KL_MQ_PUBREC, m.pid, 0);
    return KL_OK;
}

static kl_status on_ack(struct kl_mq_client *c, uint8_t type, const uint8_t *b, size_t n)
{
    uint16_t pid;
    uint8_t reason;
    if (kl_mq_de_ack(type, b, n, c->version, &pid, &reason, &c->in_props))
        return peer_error(c, "malformed acknowledgement", KL_MQ_RC_MALFORMED);
    if (type == KL_MQ_PUBREL) {
        struct kl_mq_inflight *s = slot_find(c, pid, 1);
        if (s) s->state = KL_MQ_SLOT_FREE;
        return send_ack(c, KL_MQ_PUBCOMP, pid, s ? 0 : KL_MQ_RC_PID_NOT_FOUND);
    }
    struct kl_mq_inflight *s = slot_find(c, pid, 0);
    uint8_t want = type == KL_MQ_PUBACK   ? KL_MQ_SLOT_WAIT_PUBACK
                   : type == KL_MQ_PUBREC ? KL_MQ_SLOT_WAIT_PUBREC
                                          : KL_MQ_SLOT_WAIT_PUBCOMP;
    if (!s || s->state != want) {
        /* an answer to nothing we sent: answer PUBREC so the server can finish */
        if (type == KL_MQ_PUBREC && reason < 0x80)
            return send_ack(c, KL_MQ_PUBREL, pid, KL_MQ_RC_PID_NOT_FOUND);
        return KL_OK;
    }
    if (type == KL_MQ_PUBREC && reason < 0x80) {
        s->state = KL_MQ_SLOT_WAIT_PUBCOMP;
        return send_ack(c, KL_MQ_PUBREL, pid, 0);
    }
    s->state = KL_MQ_SLOT_FREE; /* done, or refused by the server (reason >= 0x80) */
    if (reason >= 0x80) {
        /* kept until kl_mq_wait reports it: a refused message is not a delivered one */
        c->refused++;
        c->refused_pid = pid;
        c->refused_type = type;
        c->refused_reason = reason;
        set_refusal(c, "the server refused a message", type, reason);
    }
    if (c->cfg.on_done) c->cfg.on_done(c->cfg.done_ctx, pid, type, reason);
    return KL_OK;
}

static kl_status on_suback(struct kl_mq_client *c, uint8_t type, const uint8_t *b, size_t n)
{
    uint16_t pid;
    uint8_t codes[64];
    size_t k;
    kl_status st =
        kl_mq_de_suback(type, b, n, c->version, &pid, codes, sizeof codes, &k, &c->in_props);
    if (st == KL_E_BUFFER) st = KL_E_PEER; /* we never send that many filters */
    if (st) return peer_error(c, "malformed SUBACK/UNSUBACK", KL_MQ_RC_MALFORMED);
    if (pid != c->wait_pid || type != c->wait_type || c->wait_done) return KL_OK;
    if (c->version == KL_MQ_V5 || type == KL_MQ_SUBACK) {
        if (k != c->wait_cap)
            return peer_error(c, "wrong number of reason codes", KL_MQ_RC_PROTOCOL);
        if (c->wait_codes) memcpy(c->wait_codes, codes, k);
    }
    c->wait_n = k;
    c->wait_done = 1;
    return KL_OK;
}

static kl_status auth_step(struct kl_mq_client *c, const struct kl_mq_frame *f);

/* AUTH after CONNACK: only as part of a re-authentication we started. */
static kl_status on_reauth(struct kl_mq_client *c, const struct kl_mq_frame *f)
{
    uint8_t reason;
    if (c->reauth != 1) return peer_error(c, "AUTH without a re-authentication", KL_MQ_RC_PROTOCOL);
    if (kl_mq_de_auth(c->cfg.rx + f->header_len, f->body_len, &reason, &c->in_props))
        return peer_error(c, "malformed AUTH", KL_MQ_RC_MALFORMED);
    if (reason == KL_MQ_RC_SUCCESS) {
        c->reauth = 2;
        return KL_OK;
    }
    kl_status st = auth_step(c, f); /* 0x18: answer through on_auth */
    if (st == KL_E_PEER) return peer_error(c, c->err, KL_MQ_RC_PROTOCOL);
    return st;
}

/* One whole packet at rx[0..f->total). */
static kl_status handle(struct kl_mq_client *c, const struct kl_mq_frame *f)
{
    const uint8_t *b = c->cfg.rx + f->header_len;
    size_t n = f->body_len;
    switch (f->type) {
    case KL_MQ_PUBLISH:
        return on_publish(c, f->flags, b, n);
    case KL_MQ_PUBACK:
    case KL_MQ_PUBREC:
    case KL_MQ_PUBREL:
    case KL_MQ_PUBCOMP:
        return on_ack(c, f->type, b, n);
    case KL_MQ_SUBACK:
    case KL_MQ_UNSUBACK:
        return on_suback(c, f->type, b, n);
    case KL_MQ_PINGRESP:
        if (n) return peer_error(c, "malformed PINGRESP", KL_MQ_RC_MALFORMED);
        c->ping_outstanding = 0;
        return KL_OK;
    case KL_MQ_DISCONNECT: {
        uint8_t r;
        if (kl_mq_de_disconnect(b, n, c->version, &r, &c->in_props))
            return peer_error(c, "malformed DISCONNECT", KL_MQ_RC_MALFORMED);
        c->disconnect_reason = r;
        c->connected = 0;
        set_err(c, "the server disconnected, reason", r);
        return KL_E_CLOSED;
    }
    case KL_MQ_AUTH:
        return on_reauth(c, f);
    default:
        set_err(c, "unexpected packet", f->type);
        return peer_error(c, c->err, KL_MQ_RC_PROTOCOL);
    }
}

static void consume(struct kl_mq_client *c, size_t total)
{
    memmove(c->cfg.rx, c->cfg.rx + total, c->rx_len - total);
    c->rx_len -= total;
}

/* Reads more bytes (waiting at most timeout_ms). KL_OK also on a timeout with nothing. */
static kl_status fill(struct kl_mq_client *c, uint32_t timeout_ms)
{
    if (c->rx_len == c->cfg.rx_cap)
        return peer_error(c, "packet larger than the receive buffer", KL_MQ_RC_PACKET_TOO_LARGE);
    size_t got = 0;
    kl_status st = c->cfg.tr.recv(c->cfg.tr.ctx, c->cfg.rx + c->rx_len, c->cfg.rx_cap - c->rx_len,
                                  &got, timeout_ms);
    if (st == KL_E_TIMEOUT) return KL_OK;
    if (st != KL_OK) {
        c->connected = 0;
        set_err(c, st == KL_E_CLOSED ? "the server closed the connection" : "receiving failed", -1);
        return st;
    }
    if (got > c->cfg.rx_cap - c->rx_len) return peer_error(c, "transport overran", 0x80);
    c->rx_len += got;
    return KL_OK;
}

/* The next whole packet in rx: 1 and f filled, 0 if none yet, or an error in *st. */
static int next_packet(struct kl_mq_client *c, struct kl_mq_frame *f, kl_status *st)
{
    *st = KL_OK;
    if (kl_mq_frame(c->cfg.rx, c->rx_len, f)) {
        *st = peer_error(c, "malformed fixed header", KL_MQ_RC_MALFORMED);
        return 0;
    }
    if (f->total > c->cfg.rx_cap) {
        *st = peer_error(c, "packet larger than the receive buffer", KL_MQ_RC_PACKET_TOO_LARGE);
        return 0;
    }
    return f->complete;
}

static kl_status keepalive(struct kl_mq_client *c)
{
    if (!c->keepalive_s) return KL_OK;
    uint64_t t = now(c), ka = (uint64_t)c->keepalive_s * 1000u;
    if (c->ping_outstanding) {
        if (t - c->ping_sent_ms >= ka) {
            c->connected = 0;
            set_err(c, "no PINGRESP within the keep-alive", -1);
            return KL_E_TIMEOUT;
        }
        return KL_OK;
    }
    if (t - c->last_tx_ms >= ka) {
        size_t len;
        kl_status st = kl_mq_ser_pingreq(c->cfg.tx, c->cfg.tx_cap, &len);
        if (st == KL_OK) st = send_pkt(c, len);
        if (st != KL_OK) return st;
        c->ping_outstanding = 1;
        c->ping_sent_ms = t;
    }
    return KL_OK;
}

static kl_status drain(struct kl_mq_client *c)
{
    struct kl_mq_frame f;
    kl_status st;
    while (c->connected && next_packet(c, &f, &st)) {
        st = handle(c, &f);
        if (st != KL_OK) return st;
        consume(c, f.total);
    }
    return st;
}

kl_status kl_mq_process(struct kl_mq_client *c, uint32_t timeout_ms)
{
    if (!c) return KL_E_ARG;
    if (!c->connected) return KL_E_STATE;
    kl_status st = drain(c);
    if (st == KL_OK && c->connected) {
        /* do not sleep past the moment a PINGREQ is due */
        if (c->keepalive_s && !c->ping_outstanding) {
            uint64_t t = now(c), due = c->last_tx_ms + (uint64_t)c->keepalive_s * 1000u;
            uint64_t left = due > t ? due - t : 0;
            if (left < timeout_ms) timeout_ms = (uint32_t)left;
        }
        st = fill(c, timeout_ms);
    }
    if (st == KL_OK && c->connected) st = drain(c);
    if (st == KL_OK && c->connected) st = keepalive(c);
    if (st == KL_OK && !c->connected) st = KL_E_CLOSED;
    return st;
}

static kl_status connack(struct kl_mq_client *c, const struct kl_mq_frame *f,
                         struct kl_mq_connack *ack)
{
    if (kl_mq_de_connack(c->cfg.rx + f->header_len, f->body_len, c->version, ack)) {
        set_err(c, "malformed CONNACK", -1);
        return KL_E_PEER;
    }
    if (ack->reason) {
        set_err(c, kl_mq_reason_name(c->version, KL_MQ_CONNACK, ack->reason), ack->reason);
        return KL_E_REFUSED;
    }
    const struct kl_mq_props *p = &ack->props;
    c->srv_max_qos = (p->has & KL_MQ_HAS(KL_MQ_P_MAX_QOS)) ? p->max_qos : 2;
    c->srv_retain = (p->has & KL_MQ_HAS(KL_MQ_P_RETAIN_AVAILABLE)) ? p->retain_available : 1;
    c->srv_receive_max = (p->has & KL_MQ_HAS(KL_MQ_P_RECEIVE_MAX)) ? p->receive_max : 65535;
    c->srv_max_packet = (p->has & KL_MQ_HAS(KL_MQ_P_MAX_PACKET)) ? p->max_packet : 0;
    if (p->has & KL_MQ_HAS(KL_MQ_P_SERVER_KEEPALIVE)) c->keepalive_s = p->server_keepalive;
    c->connected = 1;
    c->last_tx_ms = now(c);
    c->err[0] = 0;
    if (!ack->session_present) {
        memset(c->cfg.slots, 0, c->cfg.nslots * sizeof *c->cfg.slots);
        return KL_OK;
    }
    for (size_t i = 0; i < c->cfg.nslots; i++) {
        struct kl_mq_inflight *s = &c->cfg.slots[i];
        if (s->state == KL_MQ_SLOT_WAIT_PUBCOMP) {
            kl_status st = send_ack(c, KL_MQ_PUBREL, s->pid, 0);
            if (st != KL_OK) return st;
        }
    }
    return KL_OK;
}

static kl_status auth_step(struct kl_mq_client *c, const struct kl_mq_frame *f)
{
    uint8_t reason;
    if (c->version != KL_MQ_V5 ||
        kl_mq_de_auth(c->cfg.rx + f->header_len, f->body_len, &reason, &c->in_props)) {
        set_err(c, "malformed or unexpected AUTH", -1);
        return KL_E_PEER;
    }
    if (reason != KL_MQ_RC_CONTINUE_AUTH || !c->cfg.on_auth) {
        set_err(c, "unexpected AUTH, reason", reason);
        return KL_E_PEER;
    }
    struct kl_mq_props out;
    memset(&out, 0, sizeof out);
    kl_status st = c->cfg.on_auth(c->cfg.auth_ctx, reason, &c->in_props, &out);
    if (st != KL_OK) {
        set_err(c, "the authentication answer failed", -1);
        return st;
    }
    size_t len;
    st = kl_mq_ser_auth(c->cfg.tx, c->cfg.tx_cap, KL_MQ_RC_CONTINUE_AUTH, &out, &len);
    if (st != KL_OK) {
        set_err(c, "the authentication answer does not fit", -1);
        return st;
    }
    return send_pkt(c, len);
}

kl_status kl_mq_connect(struct kl_mq_client *c, const struct kl_mq_connect_opts *o,
                        uint32_t timeout_ms, struct kl_mq_connack *ack)
{
    if (!c || !o || !ack) return KL_E_ARG;
    if (c->connected) return KL_E_STATE;
    memset(ack, 0, sizeof *ack);
    c->version = o->version;
    c->rx_len = 0;
    c->ping_outstanding = 0;
    c->disconnect_reason = 0;
    c->keepalive_s = o->keepalive_s;
    c->wait_pid = 0;
    c->reauth = 0;
    c->refused = 0;
    c->refused_reason = 0;
    struct kl_mq_connect_opts oo = *o;
    struct kl_mq_props pr;
    if (o->version == KL_MQ_V5) {
        /* tell the server what we can take: our buffer and our slots */
        if (o->props)
            pr = *o->props;
        else
            memset(&pr, 0, sizeof pr);
        if (!(pr.has & KL_MQ_HAS(KL_MQ_P_MAX_PACKET))) {
            pr.has |= KL_MQ_HAS(KL_MQ_P_MAX_PACKET);
            pr.max_packet = c->cfg.rx_cap > 0xFFFFFFFFu ? 0xFFFFFFFFu : (uint32_t)c->cfg.rx_cap;
        }
        if (!(pr.has & KL_MQ_HAS(KL_MQ_P_RECEIVE_MAX))) {
            pr.has |= KL_MQ_HAS(KL_MQ_P_RECEIVE_MAX);
            pr.receive_max = c->cfg.nslots > 0xFFFF ? 0xFFFF : (uint16_t)c->cfg.nslots;
        }
        oo.props = &pr;
    }
    size_t len;
    kl_status st = kl_mq_ser_connect(c->cfg.tx, c->cfg.tx_cap, &oo, &len);
    if (st != KL_OK) {
        set_err(c, st == KL_E_BUFFER ? "CONNECT does not fit tx" : "bad CONNECT options", -1);
        return st;
    }
    st = send_pkt(c, len);
    if (st != KL_OK) return st;
    uint64_t start = now(c);
    for (;;) {
        struct kl_mq_frame f;
        if (kl_mq_frame(c->cfg.rx, c->rx_len, &f) || f.total > c->cfg.rx_cap) {
            set_err(c, "malformed or oversized packet before CONNACK", -1);
            return KL_E_PEER;
        }
        if (f.complete) {
            if (f.type == KL_MQ_CONNACK) {
                st = connack(c, &f, ack);
                consume(c, f.total);
                return st;
            }
            if (f.type != KL_MQ_AUTH) {
                set_err(c, "packet before CONNACK", f.type);
                return KL_E_PEER;
            }
            st = auth_step(c, &f);
            consume(c, f.total);
            if (st != KL_OK) return st;
            continue;
        }
        uint64_t t = now(c);
        if (t - start >= timeout_ms) {
            set_err(c, "no CONNACK in time", -1);
            return KL_E_TIMEOUT;
        }
        size_t got = 0;
        if (c->rx_len == c->cfg.rx_cap) {
            set_err(c, "packet before CONNACK larger than the receive buffer", -1);
            return KL_E_PEER;
        }
        st = c->cfg.tr.recv(c->cfg.tr.ctx, c->cfg.rx + c->rx_len, c->cfg.rx_cap - c->rx_len, &got,
                            (uint32_t)(timeout_ms - (t - start)));
        if (st == KL_E_TIMEOUT) continue;
        if (st != KL_OK) {
            set_err(c,
                    st == KL_E_CLOSED ? "the server closed the connection before CONNACK"
                                      : "receiving failed",
                    -1);
            return st;
        }
        if (got > c->cfg.rx_cap - c->rx_len) {
            set_err(c, "transport overran", -1);
            return KL_E_PEER;
        }
        c->rx_len += got;
    }
}

kl_status kl_mq_publish(struct kl_mq_client *c, const struct kl_mq_msg *m, uint16_t *pid)
{
    if (!c || !m) return KL_E_ARG;
    if (!c->connected) return KL_E_STATE;
    if (m->qos > c->srv_max_qos || (m->retain && !c->srv_retain)) {
        set_err(c, "the server does not offer this QoS or retain", -1);
        return KL_E_UNSUPPORTED;
    }
    struct kl_mq_msg mm = *m;
    struct kl_mq_inflight *s = NULL;
    if (m->qos) {
        if (m->pid) {
            /* a resend after reconnect reuses its slot */
            s = slot_find(c, m->pid, 0);
        } else {
            if (outgoing(c) >= c->srv_receive_max) {
                set_err(c, "the server's receive maximum is reached", -1);
                return KL_E_BUFFER;
            }
            s = slot_free(c);
            if (s) mm.pid = new_pid(c);
        }
        if (!s) {
            set_err(c, "no free in-flight slot", -1);
            return KL_E_BUFFER;
        }
    }
    size_t len;
    kl_status st = kl_mq_ser_publish(c->cfg.tx, c->cfg.tx_cap, c->version, &mm, &len);
    if (st != KL_OK) {
        set_err(c, st == KL_E_BUFFER ? "message does not fit tx" : "bad PUBLISH fields", -1);
        return st;
    }
    if (c->srv_max_packet && len > c->srv_max_packet) {
        set_err(c, "message larger than the server's maximum packet size", -1);
        return KL_E_BUFFER;
    }
    st = send_pkt(c, len);
    if (st != KL_OK) return st;
    if (s) {
        s->pid = mm.pid;
        s->state = m->qos == 1 ? KL_MQ_SLOT_WAIT_PUBACK : KL_MQ_SLOT_WAIT_PUBREC;
    }
    if (pid) *pid = mm.pid;
    return KL_OK;
}

/* Sends tx[0..len) (a SUBSCRIBE/UNSUBSCRIBE with pid) and processes until its answer. */
static kl_status wait_answer(struct kl_mq_client *c, size_t len, uint16_t pid, uint8_t type,
                             size_t n, uint8_t *codes, uint32_t timeout_ms)
{
    c->wait_pid = pid;
    c->wait_type = type;
    c->wait_done = 0;
    c->wait_codes = codes;
    c->wait_cap = n;
    kl_status st = send_pkt(c, len);
    uint64_t start = now(c);
    while (st == KL_OK && !c->wait_done) {
        uint64_t t = now(c);
        if (t - start >= timeout_ms) {
            set_err(c, type == KL_MQ_SUBACK ? "no SUBACK in time" : "no UNSUBACK in time", -1);
            st = KL_E_TIMEOUT;
            break;
        }
        st = kl_mq_process(c, (uint32_t)(timeout_ms - (t - start)));
    }
    c->wait_pid = 0;
    c->wait_codes = NULL;
    if (st != KL_OK) return st;
    if (codes && (c->version == KL_MQ_V5 || type == KL_MQ_SUBACK))
        for (size_t i = 0; i < n; i++)
            if (codes[i] >= 0x80) {
                set_refusal(c, "the server refused a filter", type, codes[i]);
                return KL_E_REFUSED;
            }
    return KL_OK;
}

kl_status kl_mq_subscribe(struct kl_mq_client *c, const struct kl_mq_sub *subs, size_t n,
                          const struct kl_mq_props *props, uint32_t timeout_ms, uint8_t *codes)
{
    if (!c || !subs || !n || n > 64) return KL_E_ARG;
    if (!c->connected) return KL_E_STATE;
    uint8_t local[64];
    uint16_t pid = new_pid(c);
    size_t len;
    kl_status st =
        kl_mq_ser_subscribe(c->cfg.tx, c->cfg.tx_cap, c->version, pid, subs, n, props, &len);
    if (st != KL_OK) return st;
    return wait_answer(c, len, pid, KL_MQ_SUBACK, n, codes ? codes : local, timeout_ms);
}

kl_status kl_mq_unsubscribe(struct kl_mq_client *c, const char *const *filters, size_t n,
                            const struct kl_mq_props *props, uint32_t timeout_ms, uint8_t *codes)
{
    if (!c || !filters || !n || n > 64) return KL_E_ARG;
    if (!c->connected) return KL_E_STATE;
    uint8_t local[64];
    uint16_t pid = new_pid(c);
    size_t len;
    kl_status st =
        kl_mq_ser_unsubscribe(c->cfg.tx, c->cfg.tx_cap, c->version, pid, filters, n, props, &len);
    if (st != KL_OK) return st;
    return wait_answer(c, len, pid, KL_MQ_UNSUBACK, n, codes ? codes : local, timeout_ms);
}

kl_status kl_mq_reauth(struct kl_mq_client *c, const struct kl_mq_props *props, uint32_t timeout_ms)
{
    if (!c || !props || !(props->has & KL_MQ_HAS(KL_MQ_P_AUTH_METHOD))) return KL_E_ARG;
    if (!c->connected) return KL_E_STATE;
    if (c->version != KL_MQ_V5) return KL_E_UNSUPPORTED;
    size_t len;
    kl_status st = kl_mq_ser_auth(c->cfg.tx, c->cfg.tx_cap, KL_MQ_RC_REAUTH, props, &len);
    if (st != KL_OK) return st;
    c->reauth = 1;
    st = send_pkt(c, len);
    uint64_t start = now(c);
    while (st == KL_OK && c->reauth == 1) {
        uint64_t t = now(c);
        if (t - start >= timeout_ms) {
            set_err(c, "no AUTH answer in time", -1);
            st = KL_E_TIMEOUT;
            break;
        }
        st = kl_mq_process(c, (uint32_t)(timeout_ms - (t - start)));
    }
    if (c->reauth != 2 && st == KL_OK) st = KL_E_PEER;
    c->reauth = 0;
    return st;
}

kl_status kl_mq_wait(struct kl_mq_client *c, uint32_t timeout_ms)
{
    if (!c) return KL_E_ARG;
    uint64_t start = now(c);
    while (outgoing(c)) {
        if (!c->connected) return KL_E_STATE;
        uint64_t t = now(c);
        if (t - start >= timeout_ms) {
            set_err(c, "acknowledgements still missing", -1);
            return KL_E_TIMEOUT;
        }
        kl_status st = kl_mq_process(c, (uint32_t)(timeout_ms - (t - start)));
        if (st != KL_OK) return st;
    }
    if (c->refused) {
        /* reported once: the next wait starts counting again */
        c->refused = 0;
        set_refusal(c, "the server refused a message", c->refused_type, c->refused_reason);
        return KL_E_REFUSED;
    }
    return KL_OK;
}

kl_status kl_mq_pending(const struct kl_mq_client *c, size_t i, uint16_t *pid)
{
    if (!c || !pid) return KL_E_ARG;
    for (size_t k = 0; k < c->cfg.nslots; k++) {
        uint8_t s = c->cfg.slots[k].state;
        if (s != KL_MQ_SLOT_WAIT_PUBACK && s != KL_MQ_SLOT_WAIT_PUBREC) continue;
        if (i-- == 0) {
            *pid = c->cfg.slots[k].pid;
            return KL_OK;
        }
    }
    return KL_E_NOT_FOUND;
}

kl_status kl_mq_disconnect(struct kl_mq_client *c, uint8_t reason, const struct kl_mq_props *props)
{
    if (!c) return KL_E_ARG;
    if (!c->connected) return KL_E_STATE;
    size_t len;
    kl_status st = kl_mq_ser_disconnect(c->cfg.tx, c->cfg.tx_cap, c->version,
                                        c->version == KL_MQ_V5 ? reason : 0,
                                        c->version == KL_MQ_V5 ? props : NULL, &len);
    if (st == KL_OK) st = send_pkt(c, len);
    c->connected = 0;
    return st;
}
