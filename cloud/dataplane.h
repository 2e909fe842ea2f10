/*
 * keylinkd's data plane: TLS 1.2/1.3 server, device authentication (mTLS, the MQTT 5
 * keylink-es256-challenge, ES256 JWT as password), MQTT 3.1.1/5 broker, IoT policies,
 * lifecycle events and metrics. docs/dataplane.md and docs/auth.md describe the behaviour.
 *
 * The first part is the interface keylinkd's main.c uses; the rest are the internals the
 * tls_*, mqtt_*, broker_*, auth_*, policy_*, events_* and metrics_* files share.
 *
 * Threads: N workers, each with its own epoll set, all waiting on the listening sockets
 * (EPOLLEXCLUSIVE); a
 * connection lives on one worker for its whole life. The broker state (sessions, topic tree,
 * retained messages, queues) is guarded by one mutex (broker.lock); a worker touches another
 * worker's connection only through that worker's mailbox (mb_lock + eventfd).
 */
#ifndef KL_CLOUD_DATAPLANE_H
#define KL_CLOUD_DATAPLANE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>

#include "registry.h"
#include "tls_record.h"

/* ---- interface ------------------------------------------------------------------------ */

struct kl_dp_cfg {
    const char *data_dir;    /* server.pem / server.key live here */
    const char *listen_host; /* TLS listener, e.g. "0.0.0.0" */
    int listen_port;         /* 0 picks a free port (kl_dp_port) */
    const char *dev_host;    /* plaintext development listener; NULL or "" = off */
    int dev_port;
    const char *dev_policy;       /* policy for dev clients; NULL = allow everything */
    const char *audience;         /* JWT / challenge aud; NULL = endpoint_address */
    const char *endpoint_address; /* "localhost" when NULL */
    int threads;                  /* 0 = one per core */
    int connect_timeout_ms;       /* TLS handshake + CONNECT deadline; 0 = 10000 */
    size_t max_packet;            /* 0 = 128 KiB */
    int tls_records_openssl;      /* 1: no record layer hand-off (tls_record.h) */
};

struct kl_dp;

/* Opens the listeners, starts the workers and sets the registry hook (call before any
 * other thread changes the registry). KL_REG_INVALID for a bad configuration (a dev
 * listener that is not loopback, a dev policy that does not exist), KL_REG_INTERNAL when a
 * port cannot be bound or the server certificate cannot be loaded. */
kl_reg_rc kl_dp_start(struct kl_registry *reg, const struct kl_dp_cfg *cfg, struct kl_dp **out,
                      struct kl_reg_err *err);
int kl_dp_port(const struct kl_dp *dp);
int kl_dp_dev_port(const struct kl_dp *dp); /* 0 when off */
/* Closes every connection and stops the workers. */
void kl_dp_stop(struct kl_dp *dp);
/* Prometheus text exposition of the data plane's counters (malloc'd; caller frees). */
char *kl_dp_metrics_text(void *dp);

/* ---- limits ----------------------------------------------------------------------------- */

#define KL_DP_MAX_PACKET_DEFAULT (128u * 1024)
#define KL_DP_TOPIC_MAX 256     /* bytes of a topic name or filter (AWS) */
#define KL_DP_TOPIC_SLASHES 7   /* at most 7 '/' (8 levels), AWS */
#define KL_DP_CLIENT_ID_MAX 128 /* bytes (AWS) */
#define KL_DP_SUBS_PER_PACKET 8 /* topic filters in one SUBSCRIBE (AWS) */
#define KL_DP_SUBS_PER_SESSION 50
#define KL_DP_QUEUE_MAX 1000      /* queued messages per session (online or offline) */
#define KL_DP_INFLIGHT 16         /* outgoing QoS 1/2 in flight per session */
#define KL_DP_RECEIVE_MAX 16      /* incoming QoS 1/2 we accept in flight (v5 CONNACK) */
#define KL_DP_EXPIRY_MAX 3600     /* persistent sessions live at most one hour offline */
#define KL_DP_KEEPALIVE_MAX 1200  /* seconds; 0 and larger values become 1200 (AWS) */
#define KL_DP_WBUF_MAX (4u << 20) /* a reader this far behind is dropped */
#define KL_DP_WBUF_PUMP (64u << 10)
#define KL_DP_NONCE_TTL_MS 30000
#define KL_DP_JWT_SKEW 600
#define KL_DP_JWT_LIFETIME 86400

/* ---- MQTT codec (mqtt_*.c) ---------------------------------------------------------------- */

enum kl_mqtt_type {
    KL_MQTT_CONNECT = 1,
    KL_MQTT_CONNACK,
    KL_MQTT_PUBLISH,
    KL_MQTT_PUBACK,
    KL_MQTT_PUBREC,
    KL_MQTT_PUBREL,
    KL_MQTT_PUBCOMP,
    KL_MQTT_SUBSCRIBE,
    KL_MQTT_SUBACK,
    KL_MQTT_UNSUBSCRIBE,
    KL_MQTT_UNSUBACK,
    KL_MQTT_PINGREQ,
    KL_MQTT_PINGRESP,
    KL_MQTT_DISCONNECT,
    KL_MQTT_AUTH,
};

/* MQTT 5 reason codes used here. */
enum {
    KL_RC_SUCCESS = 0x00,
    KL_RC_DISCONNECT_WITH_WILL = 0x04,
    KL_RC_NO_MATCHING_SUBSCRIBERS = 0x10,
    KL_RC_NO_SUBSCRIPTION = 0x11,
    KL_RC_CONTINUE_AUTH = 0x18,
    KL_RC_UNSPECIFIED = 0x80,
    KL_RC_MALFORMED = 0x81,
    KL_RC_PROTOCOL = 0x82,
    KL_RC_UNSUPPORTED_VERSION = 0x84,
    KL_RC_CLIENT_ID_INVALID = 0x85,
    KL_RC_BAD_USER_PASS = 0x86,
    KL_RC_NOT_AUTHORIZED = 0x87,
    KL_RC_SERVER_UNAVAILABLE = 0x88,
    KL_RC_SHUTTING_DOWN = 0x8B,
    KL_RC_BAD_AUTH_METHOD = 0x8C,
    KL_RC_KEEPALIVE_TIMEOUT = 0x8D,
    KL_RC_SESSION_TAKEN_OVER = 0x8E,
    KL_RC_TOPIC_FILTER_INVALID = 0x8F,
    KL_RC_TOPIC_NAME_INVALID = 0x90,
    KL_RC_PID_NOT_FOUND = 0x92,
    KL_RC_RECEIVE_MAX_EXCEEDED = 0x93,
    KL_RC_TOPIC_ALIAS_INVALID = 0x94,
    KL_RC_PACKET_TOO_LARGE = 0x95,
    KL_RC_QUOTA_EXCEEDED = 0x97,
    KL_RC_ADMIN_ACTION = 0x98,
    KL_RC_PAYLOAD_FORMAT_INVALID = 0x99,
    KL_RC_SHARED_SUB_UNSUPPORTED = 0x9E,
};

/* MQTT 3.1.1 CONNACK return codes. */
enum {
    KL_RC3_ACCEPTED = 0,
    KL_RC3_BAD_VERSION = 1,
    KL_RC3_ID_REJECTED = 2,
    KL_RC3_UNAVAILABLE = 3,
    KL_RC3_BAD_USER_PASS = 4,
    KL_RC3_NOT_AUTHORIZED = 5,
};

struct kl_span {
    const uint8_t *p;
    size_t n;
};

/* MQTT 5 properties of one packet; `has` has bit (1 << id) for each property seen. */
struct kl_mqtt_props {
    uint64_t has;
    uint8_t payload_format, req_problem, req_response;
    uint16_t receive_max, topic_alias_max, topic_alias;
    uint32_t msg_expiry, session_expiry, will_delay, max_packet, sub_id;
    struct kl_span auth_method, auth_data, content_type, response_topic, corr_data, reason;
    struct kl_span raw; /* the whole property block (for forwarding) */
};
#define KL_PROP(id) (1ull << (id))
enum {
    KL_P_PAYLOAD_FORMAT = 0x01,
    KL_P_MSG_EXPIRY = 0x02,
    KL_P_CONTENT_TYPE = 0x03,
    KL_P_RESPONSE_TOPIC = 0x08,
    KL_P_CORR_DATA = 0x09,
    KL_P_SUB_ID = 0x0B,
    KL_P_SESSION_EXPIRY = 0x11,
    KL_P_ASSIGNED_CLIENT_ID = 0x12,
    KL_P_SERVER_KEEPALIVE = 0x13,
    KL_P_AUTH_METHOD = 0x15,
    KL_P_AUTH_DATA = 0x16,
    KL_P_REQ_PROBLEM = 0x17,
    KL_P_WILL_DELAY = 0x18,
    KL_P_REQ_RESPONSE = 0x19,
    KL_P_REASON_STRING = 0x1F,
    KL_P_RECEIVE_MAX = 0x21,
    KL_P_TOPIC_ALIAS_MAX = 0x22,
    KL_P_TOPIC_ALIAS = 0x23,
    KL_P_MAX_QOS = 0x24,
    KL_P_RETAIN_AVAILABLE = 0x25,
    KL_P_USER = 0x26,
    KL_P_MAX_PACKET = 0x27,
    KL_P_WILDCARD_AVAILABLE = 0x28,
    KL_P_SUB_ID_AVAILABLE = 0x29,
    KL_P_SHARED_AVAILABLE = 0x2A,
};

struct kl_mqtt_connect {
    uint8_t version; /* 4 = 3.1.1, 5 = 5.0 */
    uint8_t clean, will, will_qos, will_retain, has_user, has_pass;
    uint16_t keepalive;
    struct kl_mqtt_props props, will_props;
    struct kl_span client_id, will_topic, will_payload, user, pass;
};

struct kl_mqtt_publish {
    uint8_t qos, retain, dup;
    uint16_t pid;
    struct kl_span topic, payload;
    struct kl_mqtt_props props;
};

struct kl_mqtt_sub_entry {
    struct kl_span filter;
    uint8_t opts; /* qos | no_local << 2 | rap << 3 | retain handling << 4 */
};
struct kl_mqtt_subscribe {
    uint16_t pid;
    struct kl_mqtt_props props;
    size_t n;
    struct kl_mqtt_sub_entry e[KL_DP_SUBS_PER_PACKET];
};

/* A growable output buffer (the connection's pending bytes). oom is set when a reserve
 * failed; then nothing more is written. */
struct kl_wbuf {
    uint8_t *p;
    size_t len, cap;
    int oom;
};
int kl_wb_reserve(struct kl_wbuf *w, size_t extra);
void kl_wb_u8(struct kl_wbuf *w, uint8_t v);
void kl_wb_u16(struct kl_wbuf *w, uint16_t v);
void kl_wb_u32(struct kl_wbuf *w, uint32_t v);
void kl_wb_varint(struct kl_wbuf *w, uint32_t v);
void kl_wb_bytes(struct kl_wbuf *w, const void *p, size_t n);
void kl_wb_str(struct kl_wbuf *w, const void *p, size_t n); /* u16 length + bytes */
size_t kl_varint_len(uint32_t v);

/* Reads the fixed header of buf: 1 = a whole packet is there (type/flags/body/total set),
 * 0 = need more bytes, -1 = malformed remaining length. */
int kl_mqtt_frame(const uint8_t *buf, size_t len, uint8_t *type_flags, size_t *body_off,
                  size_t *body_len);
/* Parsers return 0 or a reason code (KL_RC_MALFORMED, KL_RC_PROTOCOL, ...). */
int kl_mqtt_props_parse(const uint8_t **p, const uint8_t *end, int ptype, int will,
                        struct kl_mqtt_props *out);
int kl_mqtt_utf8_ok(const uint8_t *s, size_t n);
int kl_mqtt_parse_connect(const uint8_t *b, size_t n, struct kl_mqtt_connect *c);
int kl_mqtt_parse_publish(uint8_t flags, const uint8_t *b, size_t n, int v5,
                          struct kl_mqtt_publish *pub);
/* PUBACK/PUBREC/PUBREL/PUBCOMP: pid and (v5) reason code. */
int kl_mqtt_parse_ack(const uint8_t *b, size_t n, int v5, uint16_t *pid, uint8_t *rc);
int kl_mqtt_parse_subscribe(const uint8_t *b, size_t n, int v5, struct kl_mqtt_subscribe *s);
/* UNSUBSCRIBE reuses the subscribe struct (opts unused). */
int kl_mqtt_parse_unsubscribe(const uint8_t *b, size_t n, int v5, struct kl_mqtt_subscribe *s);
int kl_mqtt_parse_disconnect(const uint8_t *b, size_t n, int v5, uint8_t *rc,
                             struct kl_mqtt_props *props);
int kl_mqtt_parse_auth(const uint8_t *b, size_t n, uint8_t *rc, struct kl_mqtt_props *props);

/* Builders append one packet to w. */
struct kl_msg;
struct kl_connack_info {
    uint8_t session_present, rc;
    int v5;
    uint16_t server_keepalive; /* 0 = none sent */
    uint32_t session_expiry;   /* sent when has_expiry */
    int has_expiry;
    const char *assigned_id; /* NULL = none */
    const char *auth_method; /* NULL = none */
    const char *reason;      /* NULL = none */
    uint32_t max_packet;
};
void kl_mqtt_send_connack(struct kl_wbuf *w, const struct kl_connack_info *ci);
void kl_mqtt_send_ack(struct kl_wbuf *w, int type, uint16_t pid, uint8_t rc, int v5);
void kl_mqtt_send_suback(struct kl_wbuf *w, int type, uint16_t pid, const uint8_t *rcs, size_t n,
                         int v5);
void kl_mqtt_send_publish(struct kl_wbuf *w, const struct kl_msg *m, uint8_t qos, uint8_t retain,
                          uint8_t dup, uint16_t pid, uint32_t sub_id, int v5, int64_t now_ms);
void kl_mqtt_send_pingresp(struct kl_wbuf *w);
void kl_mqtt_send_disconnect(struct kl_wbuf *w, uint8_t rc, const char *reason);
void kl_mqtt_send_auth(struct kl_wbuf *w, uint8_t rc, const char *method, const uint8_t *data,
                       size_t data_len);

/* ---- messages, sessions, topic tree (broker_*.c) --------------------------------------------- */

/* One published message, shared by every queue that holds it (refcounted). data holds the
 * topic, then the v5 properties to forward (payload format, content type, response topic,
 * correlation data, user properties), then the payload. */
struct kl_msg {
    atomic_uint refs;
    uint8_t qos, retain;
    uint16_t topic_len;
    uint32_t props_len, payload_len;
    int64_t expires_ms; /* 0 = never (monotonic ms) */
    uint8_t data[];
};
#define KL_MSG_TOPIC(m) ((const char *)(m)->data)
#define KL_MSG_PROPS(m) ((m)->data + (m)->topic_len + 1)
#define KL_MSG_PAYLOAD(m) ((m)->data + (m)->topic_len + 1 + (m)->props_len)
struct kl_msg *kl_msg_new(const uint8_t *topic, size_t tlen, const uint8_t *props, size_t plen,
                          const uint8_t *payload, size_t len, uint8_t qos, uint8_t retain);
void kl_msg_ref(struct kl_msg *m);
void kl_msg_unref(struct kl_msg *m);
/* Appends the forwardable properties of a v5 PUBLISH/will to w (without the length). */
void kl_msg_props_filter(const struct kl_mqtt_props *pr, struct kl_wbuf *w);

struct kl_principal; /* auth_cache.c */
struct kl_policy;    /* policy.h */
struct kl_session;
struct kl_conn;
struct kl_dp;

/* Who a connection is (fixed at CONNECT). */
struct kl_ident {
    struct kl_principal *p; /* NULL on the dev listener */
    uint8_t method;         /* enum kl_auth_method */
    /* the client id names a thing attached to p: ${iot:Connection.Thing.ThingName} is the
     * client id (AWS sets it only then); 0 = the variable is unset */
    uint8_t thing;
};

struct kl_sub {
    struct kl_sub *node_next, *node_prev; /* subscribers of one tree node */
    struct kl_sub *sess_next;             /* subscriptions of one session */
    struct kl_session *sess;
    struct kl_tnode *node;
    uint32_t sub_id;
    uint8_t opts;
    uint16_t flen;
    char filter[];
};

struct kl_qent {
    struct kl_msg *m;
    uint32_t sub_id;
    uint8_t qos, retain;
};

struct kl_inflight {
    struct kl_msg *m;
    uint32_t sub_id;
    uint16_t pid;
    uint8_t qos, retain, state; /* state: 1 wait PUBACK/PUBREC, 2 wait PUBCOMP */
};

struct kl_session {
    struct kl_session *hnext;
    char *client_id;
    struct kl_conn *conn; /* NULL while offline */
    struct kl_ident id;   /* for Receive checks while offline too */
    uint8_t version, persistent;
    uint32_t expiry; /* seconds after disconnect */
    int64_t expire_ms;
    struct kl_sub *subs;
    unsigned nsubs;
    struct kl_qent *q;
    uint32_t qhead, qlen, qcap;
    struct kl_inflight *infl; /* KL_DP_INFLIGHT entries, allocated at the first QoS 1/2 */
    uint8_t ninfl;
    uint16_t next_pid, peer_recv_max;
    uint16_t in_q2[KL_DP_RECEIVE_MAX]; /* QoS 2 packet ids waiting for PUBREL */
    uint8_t n_in_q2;
    uint64_t seen_seq; /* last routing pass that queued for this session */
    struct kl_msg *will;
    uint32_t will_delay;
    int64_t will_at; /* a delayed will waiting (MQTT 5 Will Delay Interval); 0 = none */
};

struct kl_tnode;

struct kl_broker {
    pthread_mutex_t lock;
    struct kl_session **sess; /* hash buckets */
    size_t nbuckets, nsess;
    struct kl_tnode *root;
    uint64_t route_seq;
    size_t retained;
    atomic_long aws_subs; /* filters starting with "$aws/": the only ones events can match */
};

int kl_broker_init(struct kl_broker *b);
void kl_broker_free(struct kl_broker *b);
/* Everything below runs with b->lock held. */
struct kl_session *kl_sess_find(struct kl_broker *b, const char *client_id);
struct kl_session *kl_sess_create(struct kl_broker *b, const char *client_id);
void kl_sess_destroy(struct kl_broker *b, struct kl_session *s);
/* Queue one delivery (drops it when the queue is full; returns 0 when queued). */
int kl_sess_enqueue(struct kl_session *s, struct kl_msg *m, uint8_t qos, uint8_t retain,
                    uint32_t sub_id);
void kl_sess_expire(struct kl_dp *dp, int64_t now_ms);
/* Publishes the session's will now (retained too when flagged) and drops it. */
void kl_sess_fire_will(struct kl_dp *dp, struct kl_session *s);

/* Topic names and filters (broker_topic.c): 0 when acceptable. */
int kl_topic_name_ok(const uint8_t *t, size_t n);
int kl_topic_filter_ok(const uint8_t *t, size_t n);

/* Topic tree (broker_tree.c). */
int kl_tree_subscribe(struct kl_broker *b, struct kl_session *s, const char *filter, size_t flen,
                      uint8_t opts, uint32_t sub_id, int *existed);
int kl_tree_unsubscribe(struct kl_broker *b, struct kl_session *s, const char *filter, size_t flen);
void kl_tree_unsubscribe_all(struct kl_broker *b, struct kl_session *s);
typedef void (*kl_tree_match_fn)(void *ctx, struct kl_sub *sub);
void kl_tree_match(struct kl_broker *b, const char *topic, size_t tlen, kl_tree_match_fn fn,
                   void *ctx);
/* Sets (payload non-empty) or clears the retained message of topic. */
int kl_tree_retain(struct kl_broker *b, struct kl_msg *m);
typedef void (*kl_tree_retained_fn)(void *ctx, struct kl_msg *m);
void kl_tree_retained(struct kl_broker *b, const char *filter, size_t flen, kl_tree_retained_fn fn,
                      void *ctx);
void kl_tree_free(struct kl_broker *b);

/* Routing (broker_route.c): delivers m to every matching subscriber allowed to receive it.
 * from may be NULL (server-originated). Returns the number of sessions it was queued for. */
int kl_route(struct kl_dp *dp, struct kl_msg *m, struct kl_session *from);
/* Moves queued messages of c's session into c's output buffer (owner thread). */
void kl_pump(struct kl_dp *dp, struct kl_conn *c);
/* Asks c's worker to pump (any thread, b->lock held). */
void kl_conn_wake(struct kl_conn *c);
/* Asks c's worker to close c with reason rc (any thread, b->lock held). */
void kl_conn_kill(struct kl_conn *c, uint8_t rc);
/* Resends a resumed session's in-flight messages (owner thread). */
void kl_resend_inflight(struct kl_dp *dp, struct kl_conn *c);

/* ---- authentication (auth_*.c) ------------------------------------------------------------ */

enum kl_auth_method { KL_AUTH_NONE, KL_AUTH_MTLS, KL_AUTH_CHALLENGE, KL_AUTH_JWT, KL_AUTH_DEV };

/* Why a device was refused; each has a metrics label and a log text. */
enum kl_auth_fail {
    KL_AF_OK = 0,
    KL_AF_NO_CREDENTIALS,
    KL_AF_CA_UNKNOWN,
    KL_AF_CA_INACTIVE,
    KL_AF_CERT_UNKNOWN,
    KL_AF_CERT_INACTIVE,
    KL_AF_CERT_REVOKED,
    KL_AF_CERT_PENDING,
    KL_AF_CERT_NOT_ATTACHED,
    KL_AF_CERT_EXPIRED,
    KL_AF_CERT_BAD_SIGNATURE,
    KL_AF_CLIENT_ID_DENIED,
    KL_AF_CHALLENGE_SIGNATURE,
    KL_AF_CHALLENGE_NONCE,
    KL_AF_CHALLENGE_MALFORMED,
    KL_AF_AUTH_METHOD,
    KL_AF_JWT_ALG,
    KL_AF_JWT_MALFORMED,
    KL_AF_JWT_EXPIRED,
    KL_AF_JWT_IAT_FUTURE,
    KL_AF_JWT_AUD,
    KL_AF_JWT_LIFETIME,
    KL_AF_JWT_SIGNATURE,
    KL_AF_JWT_THING,
    KL_AF_INTERNAL,
    KL_AF_COUNT
};
const char *kl_auth_fail_name(enum kl_auth_fail f);

/* What the registry says about one certificate, refcounted and immutable once built. */
struct kl_principal {
    atomic_uint refs;
    struct kl_principal *hnext; /* cache chain, under the cache lock */
    char id[KL_REG_ID_HEX];
    char ca_id[KL_REG_ID_HEX];
    char arn[KL_REG_ARN_MAX];
    char status[KL_REG_STATUS_MAX];
    int64_t not_before, not_after;
    uint64_t policy_gen;
    EVP_PKEY *pub;
    X509 *x509;
    size_t nthings, ndocs;
    char **things;           /* attached thing names */
    struct kl_policy **docs; /* attached policies, compiled (policy.h) */
};
void kl_principal_unref(struct kl_principal *p);
/* 1 when thing is one of the things p is attached to. */
int kl_principal_has_thing(const struct kl_principal *p, const char *thing);

struct kl_ca_entry {
    char id[KL_REG_ID_HEX];
    int active, auto_reg;
    X509 *x509;
};

struct kl_auth_cache {
    pthread_rwlock_t lock;
    struct kl_principal **tab; /* hash buckets by id */
    size_t cap, n;
    struct kl_ca_entry *ca;
    size_t nca;
    int ca_stale;
    int64_t ca_loaded_ms;
};

/* Looks up (cache, else registry) the principal of certificate id; NULL when the registry
 * does not know it. The caller owns one reference. */
struct kl_principal *kl_auth_principal(struct kl_dp *dp, const char *id);
/* The principal of a DER certificate (hashes it first). */
struct kl_principal *kl_auth_principal_x509(struct kl_dp *dp, X509 *x);
/* CA state of id: 1 active, 0 inactive, -1 unknown. */
int kl_auth_ca_state(struct kl_dp *dp, const char *id);
/* Finds the registered CA that signed x (issuer name and signature): its id into ca_id and
 * whether it is active / auto-registering. 0 found, -1 none. */
int kl_auth_find_issuer(struct kl_dp *dp, X509 *x, char ca_id[KL_REG_ID_HEX], int *active,
                        int *auto_reg);
/* The registry state checks shared by every method: certificate ACTIVE, its CA ACTIVE,
 * attached to a thing, inside its validity. KL_AF_OK or the reason. */
enum kl_auth_fail kl_auth_check_principal(struct kl_dp *dp, const struct kl_principal *p);
/* Chain + registry check of a certificate presented outside TLS (challenge x5c) or by
 * TLS; on KL_AF_CERT_UNKNOWN from an auto-registering CA it records the certificate as
 * PENDING_ACTIVATION and announces it. *out gets a reference when KL_AF_OK. */
enum kl_auth_fail kl_auth_certificate(struct kl_dp *dp, X509 *x, int check_chain,
                                      struct kl_principal **out);
void kl_auth_cache_init(struct kl_auth_cache *c);
void kl_auth_cache_free(struct kl_auth_cache *c);
/* The registry hook: invalidates the cache and disconnects affected connections. */
void kl_auth_on_change(void *ctx, enum kl_reg_change what, const char *id, const char *status);

/* JWT as the MQTT password (auth_jwt.c): verifies token for the thing named client_id. */
enum kl_auth_fail kl_auth_jwt(struct kl_dp *dp, const char *client_id, const uint8_t *tok,
                              size_t len, struct kl_principal **out);
/* MQTT 5 challenge (auth_challenge.c): checks the JWS answer to nonce. */
enum kl_auth_fail kl_auth_challenge(struct kl_dp *dp, const uint8_t nonce[32], const uint8_t *jws,
                                    size_t len, struct kl_principal **out);
/* Helpers (auth_util.c). */
int kl_b64url_decode(const char *in, size_t n, uint8_t *out, size_t cap, size_t *outlen);
void kl_b64url_encode(const uint8_t *in, size_t n, char *out, size_t cap);
/* Verifies an ES256 signature (r || s, 64 bytes) over msg. 1 valid. */
int kl_es256_verify(EVP_PKEY *pub, const uint8_t *msg, size_t n, const uint8_t sig[64]);
/* Splits a compact JWS into its parsed header/claims (jansson) and signature. 0 ok. */
struct json_t;
int kl_jws_split(const uint8_t *tok, size_t len, struct json_t **hdr, struct json_t **claims,
                 uint8_t sig[64], size_t *signed_len);

/* ---- policies (policy_dp.c) ------------------------------------------------------------- */

/* 1 when the connection's identity may do action on resource (a topic, topic filter or
 * client id; the ARN is built here). */
int kl_dp_allowed(struct kl_dp *dp, struct kl_ident *id, const char *client_id, const char *action,
                  const char *kind, const char *name, size_t nlen);

/* ---- events (events_*.c) ---------------------------------------------------------------- */

void kl_event_presence(struct kl_dp *dp, struct kl_conn *c, const char *client_id, int connected,
                       const char *reason);
void kl_event_cert_registered(struct kl_dp *dp, const char *cert_id, const char *ca_id);

/* ---- metrics (metrics_*.c) ---------------------------------------------------------------- */

struct kl_metrics {
    atomic_long conns, conns_total, tls_handshakes, tls_failures, tls_handoffs, dev_conns;
    atomic_long auth_ok[5];
    atomic_long auth_fail[KL_AF_COUNT];
    atomic_long msgs_in, msgs_out, msgs_dropped, bytes_in, bytes_out;
    atomic_long timeouts, revoked_drops, subscriptions;
};

/* ---- connections and workers (broker_loop.c, broker_conn.c) -----------------------------------
 */

enum kl_conn_state {
    KL_CS_TLS,     /* TLS handshake */
    KL_CS_CONNECT, /* waiting for CONNECT */
    KL_CS_AUTH,    /* MQTT 5 challenge sent, waiting for AUTH */
    KL_CS_ONLINE,  /* CONNACK sent */
    KL_CS_CLOSING, /* flush what is left, then close */
};

struct kl_worker;

struct kl_conn {
    struct kl_worker *w;
    struct kl_conn *prev, *next;       /* all connections of the worker */
    struct kl_conn *mb_next, *mb_prev; /* worker mailbox */
    uint8_t in_mb, mb_kill, mb_kill_rc;
    int fd;
    SSL *ssl;            /* NULL on the dev listener and once the records are handed off (trec) */
    struct kl_trec trec; /* record keys after the hand-off; trec.key_len = 0 before */
    uint8_t *thold;      /* the start of a record that has not all arrived */
    uint32_t thold_len;
    uint8_t *tpend; /* sealed records the socket has not taken yet */
    uint32_t tpend_len, tpend_off;
    uint8_t tls_done; /* a fatal alert went either way: no more records */
    uint8_t dead;     /* closed; memory freed at the end of the worker's epoll batch */
    uint8_t trec_empty, trec_warns; /* empty records / warning alerts in a row (bounded) */
    uint8_t peer_cert;              /* the client authenticated with a certificate */
    uint8_t state, version, dev, epout, graceful, announced;
    uint8_t pump_more; /* the queue stopped at the output buffer's threshold */
    uint8_t disc_rc;   /* reason code the server closed it with (presence event), 0 = none */
    uint16_t keepalive;
    int64_t deadline_ms;
    uint8_t *rbuf;
    uint32_t rlen, rcap;
    struct kl_wbuf out;
    size_t out_off;
    struct kl_session *sess;    /* under broker lock */
    struct kl_principal *tls_p; /* from the TLS verify callback */
    enum kl_auth_fail tls_fail;
    uint64_t auth_epoch;
    uint8_t *pending; /* CONNECT packet body kept during the challenge */
    uint32_t pending_len;
    uint8_t nonce[32];
    int64_t nonce_exp;
    uint32_t peer_max_packet;
    char *client_id;                /* cid_small, or malloc'd for a long id; "" until CONNECT */
    char cid_small[24];             /* most client ids (and assigned ones) fit here */
    struct kl_principal *principal; /* a reference once online; NULL on the dev listener */
    char ip[48];
    /* Presence events: both events of one connection carry the same session id and
     * version number; 0 = not drawn yet (drawn at the first event of the connection). */
    uint64_t presence_ver;
    uint8_t presence_sid[16];
};

struct kl_worker {
    struct kl_dp *dp;
    int idx, ep, evfd, lfd, dev_lfd; /* lfd, dev_lfd: the kl_dp's */
    int accept_paused;
    pthread_t th;
    int th_started;
    pthread_mutex_t mb_lock;
    struct kl_conn *mb_head;
    struct kl_conn *conns;
    struct kl_conn *dead; /* closed in this epoll batch, chained by next; freed after it */
    size_t nconns;
    uint8_t *scratch; /* received bytes: plaintext from OpenSSL, or records opened in place */
    size_t scratch_cap;
    struct kl_trec_ctx trx; /* AES-GCM contexts for handed-off connections */
    uint8_t *seal;          /* records being sealed for one write */
    size_t seal_cap;
    struct kl_wbuf spare; /* an output buffer between two connections */
    int64_t next_tick, next_expire;
    long trim_hs;    /* worker 0: handshakes counted at the last tick */
    int64_t trim_at; /* worker 0: when to give freed handshake memory back; 0 = nothing to */
};

struct kl_dp {
    struct kl_registry *reg;
    SSL_CTX *ssl_ctx;
    int port, dev_port, nworkers;
    int lfd, dev_lfd; /* listening sockets, shared by the workers */
    atomic_int stop;
    struct kl_worker *workers;
    struct kl_broker broker;
    struct kl_auth_cache cache;
    struct kl_metrics m;
    atomic_ullong auth_epoch, policy_gen;
    char audience[256];
    struct kl_policy **dev_docs; /* the dev policy, compiled; NULL = allow all */
    size_t ndev_docs;
    int connect_timeout_ms;
    uint32_t max_packet;
    int tls_records_openssl;    /* no record layer hand-off */
    atomic_ullong presence_ver; /* last presence versionNumber handed out */
};

int64_t kl_dp_now_ms(void); /* monotonic */
int64_t kl_dp_wall(void);   /* unix seconds */
/* Logs one line to stderr with a "keylinkd: dp: " prefix. */
void kl_dp_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Handling of one connection (broker_conn.c, owner thread). */
void kl_conn_on_packet(struct kl_dp *dp, struct kl_conn *c, uint8_t tf, const uint8_t *b, size_t n);
/* Marks c for closing after its output is flushed (v5: sends DISCONNECT rc first). */
void kl_conn_close(struct kl_conn *c, int rc, const char *why);
/* Detaches c from its session (will, presence event, expiry) before it is freed. */
void kl_conn_gone(struct kl_dp *dp, struct kl_conn *c, int graceful);
/* CONNECT handling (broker_connect.c). */
void kl_handle_connect(struct kl_dp *dp, struct kl_conn *c, const uint8_t *b, size_t n);
void kl_handle_auth(struct kl_dp *dp, struct kl_conn *c, const uint8_t *b, size_t n);
void kl_handle_publish(struct kl_dp *dp, struct kl_conn *c, uint8_t flags, const uint8_t *b,
                       size_t n);
void kl_handle_subscribe(struct kl_dp *dp, struct kl_conn *c, const uint8_t *b, size_t n);
void kl_handle_unsubscribe(struct kl_dp *dp, struct kl_conn *c, const uint8_t *b, size_t n);
void kl_handle_ack(struct kl_dp *dp, struct kl_conn *c, int type, const uint8_t *b, size_t n);
/* Kills every live connection whose principal matches (cert id or CA id). */
void kl_dp_kill_matching(struct kl_dp *dp, const char *cert_id, const char *ca_id, uint8_t rc);

/* TLS (tls_*.c). */
SSL_CTX *kl_tls_server_ctx(struct kl_dp *dp, const char *data_dir, struct kl_reg_err *err);
int kl_tls_verify_cb(X509_STORE_CTX *ctx, void *arg);

/* Splits received plaintext into MQTT packets and handles them (broker_loop.c); -1 when c
 * must be freed. */
int kl_conn_feed(struct kl_worker *w, struct kl_conn *c, const uint8_t *data, size_t n);

/* Connections whose records keylinkd protects itself (broker_trec.c, tls_record.h). */
/* Right after the handshake: takes the record keys and frees the SSL object when the
 * session allows it (TLS 1.2, AES-GCM), else leaves c with OpenSSL. A certificate from a
 * resumed session is looked up in the registry here, while it is still at hand. */
void kl_conn_handoff(struct kl_dp *dp, struct kl_conn *c);
/* Reads and opens what the socket holds and feeds it on; -1 when c must be freed. */
int kl_trec_conn_read(struct kl_worker *w, struct kl_conn *c);
/* Sends sealed records still waiting, then seals and sends p[0..n). Returns the plaintext
 * bytes taken (0 when the socket is full), -1 when c must be freed. */
long kl_trec_conn_write(struct kl_worker *w, struct kl_conn *c, const uint8_t *p, size_t n);
/* Before c is freed: close_notify (best effort, unless a fatal alert ended it), keys wiped. */
void kl_trec_conn_end(struct kl_worker *w, struct kl_conn *c);

#endif
