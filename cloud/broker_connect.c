/* CONNECT and the MQTT 5 challenge: authenticate with the method the client chose, check
 * the registry state and the Connect policy, then attach to (or take over) the session. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/rand.h>

#include "dataplane.h"

#define CHALLENGE_METHOD "keylink-es256-challenge"

/* Refuses the CONNECT with the code AWS would use and logs why. */
static void refuse(struct kl_dp *dp, struct kl_conn *c, enum kl_auth_fail why, int method)
{
    static const char *const mname[] = {"none", "mtls", "challenge", "jwt", "dev"};
    atomic_fetch_add(&dp->m.auth_fail[why], 1);
    int v5 = c->version == 5;
    uint8_t rc;
    if (why == KL_AF_AUTH_METHOD)
        rc = v5 ? KL_RC_BAD_AUTH_METHOD : KL_RC3_NOT_AUTHORIZED;
    else if (method == KL_AUTH_JWT && why != KL_AF_CLIENT_ID_DENIED && why != KL_AF_INTERNAL)
        rc = v5 ? KL_RC_BAD_USER_PASS : KL_RC3_BAD_USER_PASS;
    else if (why == KL_AF_INTERNAL)
        rc = v5 ? KL_RC_SERVER_UNAVAILABLE : KL_RC3_UNAVAILABLE;
    else
        rc = v5 ? KL_RC_NOT_AUTHORIZED : KL_RC3_NOT_AUTHORIZED;
    kl_dp_log("refused client %s from %s (%s): %s", c->client_id, c->ip, mname[method],
              kl_auth_fail_name(why));
    struct kl_connack_info ci = {.rc = rc, .v5 = v5};
    if (v5) ci.reason = kl_auth_fail_name(why);
    kl_mqtt_send_connack(&c->out, &ci);
    kl_conn_close(c, -1, NULL);
}

static void protocol_refuse(struct kl_conn *c, int v5, uint8_t rc5, uint8_t rc3, const char *why)
{
    kl_dp_log("refused CONNECT from %s: %s", c->ip, why);
    struct kl_connack_info ci = {.rc = v5 ? rc5 : rc3, .v5 = v5};
    kl_mqtt_send_connack(&c->out, &ci);
    kl_conn_close(c, -1, NULL);
}

/* Everything after the credentials were checked: registry state, policy, session. */
static void finish(struct kl_dp *dp, struct kl_conn *c, const struct kl_mqtt_connect *ck,
                   struct kl_principal *p, int method)
{
    struct kl_broker *b = &dp->broker;
    struct kl_ident id = {.p = p, .method = (uint8_t)method};
    /* the registry may change while we decide: retry with fresh data if it did */
    for (int tries = 0;; tries++) {
        if (method != KL_AUTH_DEV) {
            enum kl_auth_fail f = kl_auth_check_principal(dp, id.p);
            if (f) {
                refuse(dp, c, f, method);
                if (id.p) kl_principal_unref(id.p);
                return;
            }
        }
        id.thing = (uint8_t)kl_principal_has_thing(id.p, c->client_id);
        if (!kl_dp_allowed(dp, &id, c->client_id, "iot:Connect", "client", c->client_id,
                           strlen(c->client_id)) ||
            (ck->will && !kl_dp_allowed(dp, &id, c->client_id, "iot:Publish", "topic",
                                        (const char *)ck->will_topic.p, ck->will_topic.n))) {
            refuse(dp, c, KL_AF_CLIENT_ID_DENIED, method);
            if (id.p) kl_principal_unref(id.p);
            return;
        }
        pthread_mutex_lock(&b->lock);
        if (atomic_load(&dp->auth_epoch) == c->auth_epoch || tries >= 3 || !id.p) break;
        pthread_mutex_unlock(&b->lock);
        c->auth_epoch = atomic_load(&dp->auth_epoch);
        struct kl_principal *np = kl_auth_principal(dp, id.p->id);
        kl_principal_unref(id.p);
        id.p = np;
        if (!np) {
            refuse(dp, c, KL_AF_CERT_UNKNOWN, method);
            return;
        }
    }
    /* b->lock held */
    struct kl_session *s = kl_sess_find(b, c->client_id);
    if (s && !s->conn && s->expire_ms && s->expire_ms <= kl_dp_now_ms()) {
        kl_sess_fire_will(dp, s);
        kl_sess_destroy(b, s); /* expired, the sweep has not come by yet */
        s = NULL;
    }
    if (s && s->conn) {
        struct kl_conn *old = s->conn;
        old->sess = NULL;
        s->conn = NULL;
        /* the old connection's will goes out unless it asked for a delay (the session
         * continues at once, MQTT 5 3.1.3.2.2) */
        if (s->will && !s->will_delay) kl_sess_fire_will(dp, s);
        kl_conn_kill(old, KL_RC_SESSION_TAKEN_OVER);
    }
    if (s && ck->clean) {
        kl_sess_fire_will(dp, s); /* a delayed will: the old session ends here */
        kl_sess_destroy(b, s);
        s = NULL;
    }
    int present = s != NULL;
    if (!s) s = kl_sess_create(b, c->client_id);
    if (!s) {
        pthread_mutex_unlock(&b->lock);
        refuse(dp, c, KL_AF_INTERNAL, method);
        if (id.p) kl_principal_unref(id.p);
        return;
    }
    s->conn = c;
    c->sess = s;
    s->version = c->version;
    s->expire_ms = 0;
    if (c->version == 5) {
        uint32_t e = ck->props.session_expiry;
        s->expiry = e > KL_DP_EXPIRY_MAX ? KL_DP_EXPIRY_MAX : e;
    } else {
        s->expiry = ck->clean ? 0 : KL_DP_EXPIRY_MAX;
    }
    s->persistent = s->expiry > 0;
    s->peer_recv_max = (ck->props.has & KL_PROP(KL_P_RECEIVE_MAX)) ? ck->props.receive_max : 65535;
    if (s->id.p) kl_principal_unref(s->id.p);
    s->id = id; /* the session owns the reference now */
    if (id.p) { /* and the connection one of its own (events, logs) */
        atomic_fetch_add(&id.p->refs, 1);
        c->principal = id.p;
    }
    /* a delayed will of the previous connection is not sent: the client is back */
    kl_msg_unref(s->will);
    s->will = NULL;
    s->will_at = 0;
    s->will_delay = 0;
    if (ck->will) {
        struct kl_wbuf pw = {0};
        if (c->version == 5) kl_msg_props_filter(&ck->will_props, &pw);
        s->will = kl_msg_new(ck->will_topic.p, ck->will_topic.n, pw.p, pw.len, ck->will_payload.p,
                             ck->will_payload.n, ck->will_qos, ck->will_retain);
        if (s->will && (ck->will_props.has & KL_PROP(KL_P_MSG_EXPIRY)))
            s->will->expires_ms = kl_dp_now_ms() + (int64_t)ck->will_props.msg_expiry * 1000;
        free(pw.p);
        s->will_delay = ck->will_props.will_delay;
    }
    pthread_mutex_unlock(&b->lock);

    uint16_t ka = ck->keepalive;
    struct kl_connack_info ci = {.session_present = (uint8_t)present,
                                 .rc = 0,
                                 .v5 = c->version == 5,
                                 .max_packet = dp->max_packet};
    if (ka == 0 || ka > KL_DP_KEEPALIVE_MAX) {
        ka = KL_DP_KEEPALIVE_MAX;
        ci.server_keepalive = ka;
    }
    c->keepalive = ka;
    if (c->version == 5 && ck->props.session_expiry > KL_DP_EXPIRY_MAX) {
        ci.has_expiry = 1;
        ci.session_expiry = KL_DP_EXPIRY_MAX;
    }
    if (c->version == 5 && ck->client_id.n == 0) ci.assigned_id = c->client_id;
    if (method == KL_AUTH_CHALLENGE) ci.auth_method = CHALLENGE_METHOD;
    kl_mqtt_send_connack(&c->out, &ci);
    c->state = KL_CS_ONLINE;
    c->deadline_ms = kl_dp_now_ms() + (int64_t)ka * 1500;
    atomic_fetch_add(&dp->m.auth_ok[method], 1);
    c->announced = 1;
    static const char *const mname[] = {"none", "mtls", "challenge", "jwt", "dev"};
    kl_dp_log("client %s connected from %s (%s, MQTT %s%s%.12s)", c->client_id, c->ip,
              mname[method], c->version == 5 ? "5" : "3.1.1", c->principal ? ", certificate " : "",
              c->principal ? c->principal->id : "");
    kl_event_presence(dp, c, c->client_id, 1, NULL);
    if (present) kl_resend_inflight(dp, c);
    kl_pump(dp, c);
}

/* Parses the (possibly kept) CONNECT body and validates what does not need credentials. */
static int parse(struct kl_conn *c, const uint8_t *b, size_t n, struct kl_mqtt_connect *ck)
{
    int rc = kl_mqtt_parse_connect(b, n, ck);
    if (rc) {
        int v5 = ck->version == 5;
        if (rc == KL_RC_UNSUPPORTED_VERSION)
            protocol_refuse(c, 0, 0, KL_RC3_BAD_VERSION, "unsupported protocol version");
        else if (v5)
            protocol_refuse(c, 1, (uint8_t)rc, 0, "malformed CONNECT");
        else {
            kl_dp_log("malformed CONNECT from %s, closing", c->ip);
            kl_conn_close(c, -1, NULL);
        }
        return -1;
    }
    c->version = ck->version;
    int v5 = c->version == 5;
    if (ck->client_id.n > KL_DP_CLIENT_ID_MAX || (ck->client_id.n == 0 && !ck->clean && !v5)) {
        protocol_refuse(c, v5, KL_RC_CLIENT_ID_INVALID, KL_RC3_ID_REJECTED,
                        "client id empty or over 128 bytes");
        return -1;
    }
    if (ck->client_id.n) {
        char *dst = c->cid_small;
        if (ck->client_id.n >= sizeof c->cid_small && !(dst = malloc(ck->client_id.n + 1))) {
            protocol_refuse(c, v5, KL_RC_SERVER_UNAVAILABLE, KL_RC3_UNAVAILABLE, "out of memory");
            return -1;
        }
        memcpy(dst, ck->client_id.p, ck->client_id.n);
        dst[ck->client_id.n] = 0;
        if (c->client_id != c->cid_small) free(c->client_id);
        c->client_id = dst;
    } else if (!c->client_id[0]) {
        uint8_t r[8];
        RAND_bytes(r, sizeof r);
        snprintf(c->cid_small, sizeof c->cid_small, "kl-%02x%02x%02x%02x%02x%02x%02x%02x", r[0],
                 r[1], r[2], r[3], r[4], r[5], r[6], r[7]);
        c->client_id = c->cid_small;
    }
    if (ck->will && kl_topic_name_ok(ck->will_topic.p, ck->will_topic.n)) {
        protocol_refuse(c, v5, KL_RC_TOPIC_NAME_INVALID, KL_RC3_NOT_AUTHORIZED, "bad will topic");
        return -1;
    }
    if (ck->props.has & KL_PROP(KL_P_MAX_PACKET)) c->peer_max_packet = ck->props.max_packet;
    return 0;
}

void kl_handle_connect(struct kl_dp *dp, struct kl_conn *c, const uint8_t *b, size_t n)
{
    struct kl_mqtt_connect ck;
    if (parse(c, b, n, &ck)) return;
    if (c->dev) {
        finish(dp, c, &ck, NULL, KL_AUTH_DEV);
        return;
    }
    if (ck.props.has & KL_PROP(KL_P_AUTH_METHOD)) {
        if (ck.props.auth_method.n != strlen(CHALLENGE_METHOD) ||
            memcmp(ck.props.auth_method.p, CHALLENGE_METHOD, ck.props.auth_method.n)) {
            refuse(dp, c, KL_AF_AUTH_METHOD, KL_AUTH_CHALLENGE);
            return;
        }
        c->pending = malloc(n ? n : 1);
        if (!c->pending || RAND_bytes(c->nonce, sizeof c->nonce) != 1) {
            refuse(dp, c, KL_AF_INTERNAL, KL_AUTH_CHALLENGE);
            return;
        }
        memcpy(c->pending, b, n);
        c->pending_len = (uint32_t)n;
        c->nonce_exp = kl_dp_now_ms() + KL_DP_NONCE_TTL_MS;
        c->state = KL_CS_AUTH;
        kl_mqtt_send_auth(&c->out, KL_RC_CONTINUE_AUTH, CHALLENGE_METHOD, c->nonce,
                          sizeof c->nonce);
        return;
    }
    X509 *peer = c->ssl ? SSL_get0_peer_certificate(c->ssl) : NULL;
    struct kl_principal *p = NULL;
    if (peer || c->peer_cert) {
        if (c->tls_fail) {
            refuse(dp, c, c->tls_fail, KL_AUTH_MTLS);
            return;
        }
        if (!c->tls_p && !peer) { /* the hand-off looked it up; nothing to go on */
            refuse(dp, c, KL_AF_INTERNAL, KL_AUTH_MTLS);
            return;
        }
        if (!c->tls_p) {
            /* a resumed TLS session skips the verify callback: look the certificate up now */
            c->auth_epoch = atomic_load(&dp->auth_epoch);
            enum kl_auth_fail f = kl_auth_certificate(dp, peer, 1, &c->tls_p);
            if (f) {
                refuse(dp, c, f, KL_AUTH_MTLS);
                return;
            }
        }
        p = c->tls_p;
        c->tls_p = NULL;
        finish(dp, c, &ck, p, KL_AUTH_MTLS);
        return;
    }
    if (ck.has_pass) {
        c->auth_epoch = atomic_load(&dp->auth_epoch);
        enum kl_auth_fail f = kl_auth_jwt(dp, c->client_id, ck.pass.p, ck.pass.n, &p);
        if (f) {
            refuse(dp, c, f, KL_AUTH_JWT);
            return;
        }
        finish(dp, c, &ck, p, KL_AUTH_JWT);
        return;
    }
    refuse(dp, c, KL_AF_NO_CREDENTIALS, KL_AUTH_NONE);
}

void kl_handle_auth(struct kl_dp *dp, struct kl_conn *c, const uint8_t *b, size_t n)
{
    uint8_t rc;
    struct kl_mqtt_props pr;
    int r = kl_mqtt_parse_auth(b, n, &rc, &pr);
    int expired = kl_dp_now_ms() > c->nonce_exp;
    uint8_t nonce[32];
    memcpy(nonce, c->nonce, sizeof nonce);
    /* single use: whatever happens next, this nonce is gone */
    OPENSSL_cleanse(c->nonce, sizeof c->nonce);
    c->nonce_exp = 0;
    struct kl_mqtt_connect ck;
    if (r || rc != KL_RC_CONTINUE_AUTH || pr.auth_method.n != strlen(CHALLENGE_METHOD) ||
        memcmp(pr.auth_method.p, CHALLENGE_METHOD, pr.auth_method.n)) {
        kl_mqtt_parse_connect(c->pending, c->pending_len, &ck);
        refuse(dp, c,
               r || rc != KL_RC_CONTINUE_AUTH ? KL_AF_CHALLENGE_MALFORMED : KL_AF_AUTH_METHOD,
               KL_AUTH_CHALLENGE);
        return;
    }
    if (expired) {
        refuse(dp, c, KL_AF_CHALLENGE_NONCE, KL_AUTH_CHALLENGE);
        return;
    }
    struct kl_principal *p = NULL;
    c->auth_epoch = atomic_load(&dp->auth_epoch);
    enum kl_auth_fail f = kl_auth_challenge(dp, nonce, pr.auth_data.p, pr.auth_data.n, &p);
    OPENSSL_cleanse(nonce, sizeof nonce);
    if (f) {
        refuse(dp, c, f, KL_AUTH_CHALLENGE);
        return;
    }
    if (kl_mqtt_parse_connect(c->pending, c->pending_len, &ck)) { /* parsed once already */
        kl_principal_unref(p);
        refuse(dp, c, KL_AF_INTERNAL, KL_AUTH_CHALLENGE);
        return;
    }
    /* ck points into c->pending, which lives until the connection is freed */
    finish(dp, c, &ck, p, KL_AUTH_CHALLENGE);
}
