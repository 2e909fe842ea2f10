/*
 * MQTT 3.1.1 and 5.0 client for the device (docs/mqtt.md). libc only, no allocation: the
 * caller owns struct kl_mq_client, its two packet buffers and its in-flight table.
 *
 * Two layers, as in coreMQTT:
 *   - the codec (kl_mq_ser_* / kl_mq_de_* / kl_mq_frame): turns packets into bytes and
 *     bytes into packets, keeps no state, checks every length and field it reads;
 *   - the client (kl_mq_init ... kl_mq_disconnect): the session state (packet ids, QoS 1/2
 *     flows, keep-alive, the MQTT 5 AUTH exchange) over a transport the caller gives: the
 *     chip TLS connection (kl_mq_transport_tls) or, in tests, a plain socket.
 *
 * Names carry the prefix kl_mq_ (the endpoint's broker in cloud/ owns kl_mqtt_).
 *
 * Statuses used throughout:
 *   KL_OK            done;
 *   KL_E_ARG         a caller argument is invalid (NULL, a string over 65535 bytes, an
 *                    invalid topic or filter, a property not allowed in that packet, an
 *                    option the protocol version lacks);
 *   KL_E_BUFFER      a caller buffer (tx, rx, the in-flight table, an output array) is too
 *                    small;
 *   KL_E_PEER        the server sent something malformed or out of protocol (the
 *                    connection is then unusable: the client sends DISCONNECT 0x81/0x82
 *                    on MQTT 5 when it can, and closes);
 *   KL_E_REFUSED     the server refused (CONNACK or SUBACK reason code, see .reason; an
 *                    MQTT 5 PUBACK/PUBREC/PUBCOMP reason code >= 0x80, see kl_mq_wait);
 *   KL_E_CLOSED      the server closed or sent DISCONNECT;
 *   KL_E_TIMEOUT     no answer in time (keep-alive: no PINGRESP within the keep-alive);
 *   KL_E_STATE       not connected, or connect called while connected;
 *   KL_E_IO and any status of the transport (chip statuses through TLS).
 */
#ifndef KEYLINK_MQTT_H
#define KEYLINK_MQTT_H

#include <stddef.h>
#include <stdint.h>

#include "keylink/status.h"

struct kl_tls;

#define KL_MQ_V311 4u /* protocol level of MQTT 3.1.1 */
#define KL_MQ_V5 5u   /* protocol level of MQTT 5.0 */

/* Largest remaining length MQTT can encode (4 bytes of variable byte integer). */
#define KL_MQ_REMAINING_MAX 268435455u
/* Bytes of fixed header at most (type byte + 4 length bytes). */
#define KL_MQ_HEADER_MAX 5u

enum kl_mq_type {
    KL_MQ_CONNECT = 1,
    KL_MQ_CONNACK = 2,
    KL_MQ_PUBLISH = 3,
    KL_MQ_PUBACK = 4,
    KL_MQ_PUBREC = 5,
    KL_MQ_PUBREL = 6,
    KL_MQ_PUBCOMP = 7,
    KL_MQ_SUBSCRIBE = 8,
    KL_MQ_SUBACK = 9,
    KL_MQ_UNSUBSCRIBE = 10,
    KL_MQ_UNSUBACK = 11,
    KL_MQ_PINGREQ = 12,
    KL_MQ_PINGRESP = 13,
    KL_MQ_DISCONNECT = 14,
    KL_MQ_AUTH = 15,
};
/* Pseudo packet type for the will properties inside CONNECT (property rules differ). */
#define KL_MQ_WILL 0

/* MQTT 5 property identifiers (MQTT 5.0 section 2.2.2.2). */
enum kl_mq_prop_id {
    KL_MQ_P_PAYLOAD_FORMAT = 0x01,
    KL_MQ_P_MESSAGE_EXPIRY = 0x02,
    KL_MQ_P_CONTENT_TYPE = 0x03,
    KL_MQ_P_RESPONSE_TOPIC = 0x08,
    KL_MQ_P_CORRELATION = 0x09,
    KL_MQ_P_SUBSCRIPTION_ID = 0x0B,
    KL_MQ_P_SESSION_EXPIRY = 0x11,
    KL_MQ_P_ASSIGNED_CLIENT_ID = 0x12,
    KL_MQ_P_SERVER_KEEPALIVE = 0x13,
    KL_MQ_P_AUTH_METHOD = 0x15,
    KL_MQ_P_AUTH_DATA = 0x16,
    KL_MQ_P_REQUEST_PROBLEM = 0x17,
    KL_MQ_P_WILL_DELAY = 0x18,
    KL_MQ_P_REQUEST_RESPONSE = 0x19,
    KL_MQ_P_RESPONSE_INFO = 0x1A,
    KL_MQ_P_SERVER_REF = 0x1C,
    KL_MQ_P_REASON = 0x1F,
    KL_MQ_P_RECEIVE_MAX = 0x21,
    KL_MQ_P_TOPIC_ALIAS_MAX = 0x22,
    KL_MQ_P_TOPIC_ALIAS = 0x23,
    KL_MQ_P_MAX_QOS = 0x24,
    KL_MQ_P_RETAIN_AVAILABLE = 0x25,
    KL_MQ_P_USER = 0x26,
    KL_MQ_P_MAX_PACKET = 0x27,
    KL_MQ_P_WILDCARD_AVAILABLE = 0x28,
    KL_MQ_P_SUBID_AVAILABLE = 0x29,
    KL_MQ_P_SHARED_AVAILABLE = 0x2A,
};
#define KL_MQ_HAS(id) (1ull << (id))

/* Reason codes the client itself uses or tests for (MQTT 5.0 section 2.4). */
enum {
    KL_MQ_RC_SUCCESS = 0x00,
    KL_MQ_RC_CONTINUE_AUTH = 0x18,
    KL_MQ_RC_REAUTH = 0x19,
    KL_MQ_RC_UNSPECIFIED = 0x80,
    KL_MQ_RC_MALFORMED = 0x81,
    KL_MQ_RC_PROTOCOL = 0x82,
    KL_MQ_RC_PID_NOT_FOUND = 0x92,
    KL_MQ_RC_RECEIVE_MAX = 0x93,
    KL_MQ_RC_PACKET_TOO_LARGE = 0x95,
};

/* Bytes that are not a C string: a pointer and a length (<= 65535). */
struct kl_mq_bin {
    const uint8_t *p;
    size_t n;
};

#define KL_MQ_USER_MAX 4 /* user properties kept per packet (more are counted, skipped) */

/* MQTT 5 properties of one packet. `has` says which are present (KL_MQ_HAS(id)); the
 * other fields mean something only when their bit is set. Outgoing: the caller fills it
 * (pointers must live until the packet is written). Incoming: the codec fills it with
 * pointers into the packet buffer (valid until the next read). */
struct kl_mq_props {
    uint64_t has;
    uint8_t payload_format, request_problem, request_response, max_qos;
    uint8_t retain_available, wildcard_available, subid_available, shared_available;
    uint16_t server_keepalive, receive_max, topic_alias_max, topic_alias;
    uint32_t message_expiry, session_expiry, will_delay, max_packet, subscription_id;
    struct kl_mq_bin content_type, response_topic, correlation, assigned_client_id;
    struct kl_mq_bin auth_method, auth_data, response_info, server_ref, reason;
    struct kl_mq_bin user_key[KL_MQ_USER_MAX], user_val[KL_MQ_USER_MAX];
    uint8_t user_n;      /* user properties stored above */
    uint16_t user_total; /* user properties in the packet */
};

/* ------------------------------------------------------------------ codec ---- */

struct kl_mq_will {
    const char *topic;
    struct kl_mq_bin payload;
    uint8_t qos, retain;
    const struct kl_mq_props *props; /* MQTT 5 will properties, NULL for none */
};

struct kl_mq_connect_opts {
    uint8_t version;       /* KL_MQ_V311 or KL_MQ_V5 */
    const char *client_id; /* "" lets the server assign one (clean sessions only on 3.1.1) */
    uint16_t keepalive_s;  /* 0: no keep-alive */
    uint8_t clean;         /* 1: clean session (3.1.1) / clean start (5) */
    const struct kl_mq_will *will;   /* NULL: no will */
    const char *username;            /* NULL: none */
    struct kl_mq_bin password;       /* p NULL: none */
    const struct kl_mq_props *props; /* MQTT 5 CONNECT properties, NULL for none */
};

/* A PUBLISH, both ways. Outgoing: topic/topic_len (topic_len 0 = strlen), payload,
 * qos, retain, dup (resend), pid (0: the client picks one), props. Incoming: pointers
 * into the receive buffer, valid during the callback. */
struct kl_mq_msg {
    const char *topic; /* not NUL-terminated when incoming */
    size_t topic_len;
    const uint8_t *payload;
    size_t payload_len;
    uint8_t qos, retain, dup;
    uint16_t pid;
    const struct kl_mq_props *props; /* NULL for none */
};

/* One SUBSCRIBE entry. The options after qos exist on MQTT 5 only (KL_E_ARG on 3.1.1). */
struct kl_mq_sub {
    const char *filter;
    uint8_t qos;
    uint8_t no_local, retain_as_published, retain_handling; /* retain_handling 0..2 */
};

/* The parsed fixed header. */
struct kl_mq_frame {
    uint8_t type, flags;
    size_t header_len; /* 2..5 */
    size_t body_len;   /* remaining length */
    size_t total;      /* header_len + body_len, 0 while the header is incomplete */
    int complete;      /* 1: the whole packet is in the buffer */
};

struct kl_mq_connack {
    uint8_t session_present;
    uint8_t reason; /* 3.1.1 return code (0..5) or MQTT 5 reason code */
    struct kl_mq_props props;
};

/* Writes a variable byte integer (1..4 bytes) into out (4 bytes of room). Returns its
 * length, 0 if v > KL_MQ_REMAINING_MAX. */
size_t kl_mq_varint_put(uint32_t v, uint8_t out[4]);
/* Reads one from p[0..n): KL_OK with *v and *used; KL_E_BUFFER when more bytes are needed;
 * KL_E_PEER for a fifth continuation byte or a non-minimal encoding. */
kl_status kl_mq_varint_get(const uint8_t *p, size_t n, uint32_t *v, size_t *used);

/* Serializers: each writes one whole packet into buf (cap bytes) and sets *len.
 * KL_E_BUFFER when it does not fit (buf then holds nothing useful); KL_E_ARG for bad
 * fields (see the top of this file). The buffer needs KL_MQ_HEADER_MAX bytes of room
 * beyond the packet (the body is built there first). */
kl_status kl_mq_ser_connect(uint8_t *buf, size_t cap, const struct kl_mq_connect_opts *o,
                            size_t *len);
kl_status kl_mq_ser_publish(uint8_t *buf, size_t cap, uint8_t version, const struct kl_mq_msg *m,
                            size_t *len);
/* PUBACK, PUBREC, PUBREL, PUBCOMP. MQTT 5: reason and props (NULL) are sent only when
 * not 0 / present, as the spec allows. 3.1.1: reason must be 0 and props NULL. */
kl_status kl_mq_ser_ack(uint8_t *buf, size_t cap, uint8_t version, uint8_t type, uint16_t pid,
                        uint8_t reason, const struct kl_mq_props *props, size_t *len);
kl_status kl_mq_ser_subscribe(uint8_t *buf, size_t cap, uint8_t version, uint16_t pid,
                              const struct kl_mq_sub *subs, size_t n,
                              const struct kl_mq_props *props, size_t *len);
kl_status kl_mq_ser_unsubscribe(uint8_t *buf, size_t cap, uint8_t version, uint16_t pid,
                                const char *const *filters, size_t n,
                                const struct kl_mq_props *props, size_t *len);
kl_status kl_mq_ser_pingreq(uint8_t *buf, size_t cap, size_t *len);
/* DISCONNECT; on 3.1.1 reason must be 0 and props NULL. */
kl_status kl_mq_ser_disconnect(uint8_t *buf, size_t cap, uint8_t version, uint8_t reason,
                               const struct kl_mq_props *props, size_t *len);
/* AUTH (MQTT 5 only). */
kl_status kl_mq_ser_auth(uint8_t *buf, size_t cap, uint8_t reason, const struct kl_mq_props *props,
                         size_t *len);

/* Reads the fixed header at buf[0..n). KL_OK with f filled (f->complete says whether the
 * whole packet is there); KL_E_PEER for packet type 0, reserved flag bits that are wrong
 * for the type, or a malformed remaining length. */
kl_status kl_mq_frame(const uint8_t *buf, size_t n, struct kl_mq_frame *f);

/* Deserializers: body/n is the packet after the fixed header (f.body_len bytes). Every
 * length is checked against n; a packet that does not parse exactly gives KL_E_PEER.
 * Pointers in the results point into body. */
kl_status kl_mq_de_connack(const uint8_t *body, size_t n, uint8_t version, struct kl_mq_connack *a);
/* flags: the fixed header's low nibble (dup, qos, retain). props receives the MQTT 5
 * properties and m->props points to it. */
kl_status kl_mq_de_publish(uint8_t flags, const uint8_t *body, size_t n, uint8_t version,
                           struct kl_mq_msg *m, struct kl_mq_props *props);
/* PUBACK/PUBREC/PUBREL/PUBCOMP. reason is 0 when the packet omits it. */
kl_status kl_mq_de_ack(uint8_t type, const uint8_t *body, size_t n, uint8_t version, uint16_t *pid,
                       uint8_t *reason, struct kl_mq_props *props);
/* SUBACK/UNSUBACK: the reason codes (3.1.1 SUBACK: 0, 1, 2, 0x80; 3.1.1 UNSUBACK has none).
 * KL_E_BUFFER when there are more than cap codes. */
kl_status kl_mq_de_suback(uint8_t type, const uint8_t *body, size_t n, uint8_t version,
                          uint16_t *pid, uint8_t *codes, size_t cap, size_t *ncodes,
                          struct kl_mq_props *props);
/* DISCONNECT (MQTT 5; on 3.1.1 a server never sends one: KL_E_PEER) and AUTH. */
kl_status kl_mq_de_disconnect(const uint8_t *body, size_t n, uint8_t version, uint8_t *reason,
                              struct kl_mq_props *props);
kl_status kl_mq_de_auth(const uint8_t *body, size_t n, uint8_t *reason, struct kl_mq_props *props);
/* Parses a property block (length + properties) for packet type ptype (KL_MQ_WILL for
 * will properties). Checks each property is allowed there, not repeated (except user
 * properties and subscription ids), and in range. *used = bytes consumed. */
kl_status kl_mq_de_props(const uint8_t *p, size_t n, uint8_t ptype, struct kl_mq_props *props,
                         size_t *used);

/* 1 when s[0..n) is well-formed UTF-8 without U+0000 (what MQTT strings must be). */
int kl_mq_utf8_ok(const uint8_t *s, size_t n);
/* 1 for a valid topic name (non-empty, no wildcards, UTF-8). */
int kl_mq_topic_ok(const char *t, size_t n);
/* 1 for a valid topic filter ('#' only last and alone in its level, '+' alone). */
int kl_mq_filter_ok(const char *f, size_t n);
/* 1 when topic t[0..tn) matches filter f (a '$' topic matches no leading wildcard). */
int kl_mq_topic_match(const char *f, const char *t, size_t tn);

/* ----------------------------------------------------------------- client ---- */

/* The network: send writes all n bytes or fails; recv waits at most timeout_ms for at
 * least one byte (KL_OK with *got >= 1, KL_E_TIMEOUT with *got = 0, KL_E_CLOSED). Same
 * shape as struct kl_tls_transport. */
struct kl_mq_transport {
    void *ctx;
    kl_status (*send)(void *ctx, const uint8_t *buf, size_t n);
    kl_status (*recv)(void *ctx, uint8_t *buf, size_t cap, size_t *got, uint32_t timeout_ms);
};

/* Fills tr so MQTT runs over an open chip TLS connection t (t must outlive it). */
void kl_mq_transport_tls(struct kl_tls *t, struct kl_mq_transport *tr);

/* A message arrived (QoS 2: once, when the PUBLISH first arrives). m points into the
 * receive buffer: copy what you keep. Do not call client functions from here. */
typedef void (*kl_mq_message_fn)(void *ctx, const struct kl_mq_msg *m);
/* MQTT 5 enhanced authentication: the server sent AUTH with reason `reason` (0x18) and
 * the properties in `in`; fill out->auth_method and out->auth_data (memory that lives
 * until the function returns to the client, e.g. the ctx) to answer. Any status but
 * KL_OK ends the connect with that status. */
typedef kl_status (*kl_mq_auth_fn)(void *ctx, uint8_t reason, const struct kl_mq_props *in,
                                   struct kl_mq_props *out);

/* An outgoing QoS 1/2 exchange ended: type is the packet that ended it (PUBACK, PUBCOMP, or
 * PUBREC with a refusal) and reason its reason code (always 0 on 3.1.1). reason >= 0x80: the
 * server refused the message (MQTT 5; e.g. 0x87 not authorized), it was not delivered. Same
 * rules as kl_mq_message_fn: do not call client functions from here. */
typedef void (*kl_mq_done_fn)(void *ctx, uint16_t pid, uint8_t type, uint8_t reason);

/* One slot of the in-flight table (caller's array): a QoS 1/2 exchange under way. */
struct kl_mq_inflight {
    uint16_t pid;
    uint8_t state; /* enum below; 0 = free */
};
enum {
    KL_MQ_SLOT_FREE = 0,
    KL_MQ_SLOT_WAIT_PUBACK = 1,  /* we sent a QoS 1 PUBLISH */
    KL_MQ_SLOT_WAIT_PUBREC = 2,  /* we sent a QoS 2 PUBLISH */
    KL_MQ_SLOT_WAIT_PUBCOMP = 3, /* we sent PUBREL */
    KL_MQ_SLOT_WAIT_PUBREL = 4,  /* we got a QoS 2 PUBLISH and sent PUBREC */
};

struct kl_mq_config {
    struct kl_mq_transport tr;
    uint64_t (*now_ms)(void *ctx); /* monotonic milliseconds */
    void *now_ctx;
    uint8_t *tx; /* outgoing packets are built here */
    size_t tx_cap;
    uint8_t *rx; /* incoming packets; the largest packet accepted is rx_cap bytes */
    size_t rx_cap;
    struct kl_mq_inflight *slots; /* QoS 1/2 exchanges both ways; >= 1 */
    size_t nslots;
    kl_mq_message_fn on_message;
    void *message_ctx;
    kl_mq_auth_fn on_auth; /* NULL: an AUTH from the server is a protocol error */
    void *auth_ctx;
    kl_mq_done_fn on_done; /* NULL: not told (kl_mq_wait still reports refusals) */
    void *done_ctx;
};

struct kl_mq_client {
    struct kl_mq_config cfg;
    uint8_t version;
    int connected;
    uint16_t keepalive_s;
    uint16_t next_pid;
    uint64_t last_tx_ms;
    uint64_t ping_sent_ms;
    int ping_outstanding;
    size_t rx_len; /* bytes in cfg.rx not yet handled */
    /* what the server allows (MQTT 5 CONNACK; 3.1.1 defaults) */
    uint8_t srv_max_qos, srv_retain;
    uint16_t srv_receive_max;
    uint32_t srv_max_packet;
    /* the last SUBACK/UNSUBACK waited for */
    uint16_t wait_pid;
    uint8_t wait_type;
    int wait_done;
    uint8_t *wait_codes;
    size_t wait_cap, wait_n;
    int reauth; /* 1 while a re-authentication is under way, 2 once it succeeded */
    /* the server's DISCONNECT reason (MQTT 5), 0 if none */
    uint8_t disconnect_reason;
    /* outgoing messages the server refused (PUBACK/PUBREC/PUBCOMP reason >= 0x80) since the
     * connect or the last kl_mq_wait that reported them, and the last one's pid, packet type
     * and reason code (kept after the report) */
    uint32_t refused;
    uint16_t refused_pid;
    uint8_t refused_type, refused_reason;
    struct kl_mq_props in_props; /* properties of the packet being handled */
    char err[128];               /* last error in words ("" if none) */
};

/* Prepares c (not connected). KL_E_ARG for missing functions/buffers; KL_E_BUFFER for
 * tx or rx under 64 bytes. The buffers and the slot table stay the caller's. */
kl_status kl_mq_init(struct kl_mq_client *c, const struct kl_mq_config *cfg);

/* Sends CONNECT over an open transport and waits (at most timeout_ms) for CONNACK,
 * answering AUTH packets through cfg.on_auth on MQTT 5. On MQTT 5 it asks for
 * Maximum Packet Size = rx_cap unless o->props sets one. With a session the server kept
 * (ack->session_present), PUBREL is sent again for exchanges waiting for PUBCOMP and
 * slots waiting for PUBACK/PUBREC stay (resend those messages with dup = 1 and the same
 * pid, see kl_mq_pending); otherwise the table is cleared. KL_E_REFUSED with
 * ack->reason when the server refuses; KL_E_STATE when already connected. */
kl_status kl_mq_connect(struct kl_mq_client *c, const struct kl_mq_connect_opts *o,
                        uint32_t timeout_ms, struct kl_mq_connack *ack);

/* Sends a PUBLISH. QoS 1/2 take a slot (KL_E_BUFFER if none is free) and *pid (may be
 * NULL) gets the packet id; the exchange then completes in kl_mq_process/kl_mq_wait.
 * KL_E_UNSUPPORTED for a QoS above the server's maximum or retain it does not offer. */
kl_status kl_mq_publish(struct kl_mq_client *c, const struct kl_mq_msg *m, uint16_t *pid);

/* Subscribes and waits (timeout_ms) for SUBACK; codes (n entries, may be NULL) get the
 * granted QoS or failure codes. KL_E_REFUSED if any code is >= 0x80. n is 1..64 (KL_E_ARG
 * otherwise). Messages that arrive meanwhile go to on_message as usual. */
kl_status kl_mq_subscribe(struct kl_mq_client *c, const struct kl_mq_sub *subs, size_t n,
                          const struct kl_mq_props *props, uint32_t timeout_ms, uint8_t *codes);
/* Unsubscribes (1..64 filters) and waits for UNSUBACK (codes only on MQTT 5; may be NULL). */
kl_status kl_mq_unsubscribe(struct kl_mq_client *c, const char *const *filters, size_t n,
                            const struct kl_mq_props *props, uint32_t timeout_ms, uint8_t *codes);

/* Waits at most timeout_ms for packets and handles all that arrived (messages go to
 * on_message, acks advance the QoS flows), and sends PINGREQ when the keep-alive is due.
 * KL_OK also when nothing came. Any other status: the connection is dead (connected = 0);
 * the caller closes the transport and reconnects. KL_E_TIMEOUT: PINGRESP did not come
 * within the keep-alive. */
kl_status kl_mq_process(struct kl_mq_client *c, uint32_t timeout_ms);
/* MQTT 5 re-authentication on a live connection (MQTT 5.0 section 4.12.1): sends AUTH with
 * reason 0x19 and props (Authentication Method as in CONNECT, optional data), answers each
 * AUTH 0x18 through cfg.on_auth, and returns KL_OK when the server's AUTH 0x00 comes
 * (timeout_ms at most). Messages keep flowing meanwhile. KL_E_UNSUPPORTED on 3.1.1;
 * KL_E_ARG without a method; a refusal comes as the server's DISCONNECT (KL_E_CLOSED). */
kl_status kl_mq_reauth(struct kl_mq_client *c, const struct kl_mq_props *props,
                       uint32_t timeout_ms);
/* Processes until no outgoing QoS 1/2 exchange is in flight. KL_E_TIMEOUT if some are
 * still in flight after timeout_ms (the connection stays up). KL_E_REFUSED when all are
 * done but the server refused at least one message (MQTT 5 PUBACK/PUBREC/PUBCOMP reason
 * code >= 0x80) since the connect or the previous kl_mq_wait: c->refused says how many,
 * c->refused_reason the last reason code, kl_mq_error the words ("... not authorized
 * 0x87"); the count is then reset and the connection stays up. QoS 0 has no answer, so a
 * refused QoS 0 message is never reported (a server may close the connection instead). */
kl_status kl_mq_wait(struct kl_mq_client *c, uint32_t timeout_ms);
/* The i-th outgoing exchange waiting for PUBACK/PUBREC (after a reconnect with a session):
 * KL_OK with *pid, KL_E_NOT_FOUND past the last. */
kl_status kl_mq_pending(const struct kl_mq_client *c, size_t i, uint16_t *pid);
/* Sends DISCONNECT (reason/props on MQTT 5 only) and marks c not connected. The transport
 * stays the caller's to close. */
kl_status kl_mq_disconnect(struct kl_mq_client *c, uint8_t reason, const struct kl_mq_props *props);
/* The last error in words ("" if none); never a secret. */
const char *kl_mq_error(const struct kl_mq_client *c);
/* "CONNECT" ... "AUTH", "?" */
const char *kl_mq_type_name(uint8_t type);
/* Words for an MQTT 5 reason code ("not authorized"), or for a 3.1.1 CONNACK return code
 * when version is KL_MQ_V311 and type KL_MQ_CONNACK; "unknown reason" otherwise. */
const char *kl_mq_reason_name(uint8_t version, uint8_t type, uint8_t code);

/* ------------------------------------------------------------- reconnect ---- */

/* Exponential backoff with jitter for reconnects: the n-th delay is drawn uniformly from
 * [d/2, d] with d = min(max_ms, base_ms * 2^n) ("equal jitter": never 0, spread so a
 * fleet that lost the server together does not come back together). */
struct kl_mq_backoff {
    uint32_t base_ms, max_ms;
    uint32_t attempt;
    uint32_t rng; /* xorshift state; seed it from the chip's RANDOM */
};
/* KL_E_ARG if base_ms is 0 or max_ms < base_ms. seed 0 is replaced by a constant. */
kl_status kl_mq_backoff_init(struct kl_mq_backoff *b, uint32_t base_ms, uint32_t max_ms,
                             uint32_t seed);
/* The delay before the next attempt, in ms; advances the attempt count. */
uint32_t kl_mq_backoff_next(struct kl_mq_backoff *b);
/* After a successful connect. */
void kl_mq_backoff_reset(struct kl_mq_backoff *b);

#endif
