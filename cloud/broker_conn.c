/* One connection's packets after framing: which packet is allowed in which state, and what
 * happens to the session when the connection ends. */
#include <string.h>

#include "dataplane.h"

void kl_conn_on_packet(struct kl_dp *dp, struct kl_conn *c, uint8_t tf, const uint8_t *b, size_t n)
{
    int type = tf >> 4, flags = tf & 0x0f;
    /* fixed-header flags are fixed for every packet but PUBLISH */
    int want = (type == KL_MQTT_PUBREL || type == KL_MQTT_SUBSCRIBE || type == KL_MQTT_UNSUBSCRIBE)
                   ? 2
                   : 0;
    if (type != KL_MQTT_PUBLISH && flags != want) {
        kl_conn_close(c, KL_RC_MALFORMED, "bad fixed header flags");
        return;
    }
    if (c->state == KL_CS_CONNECT) {
        if (type != KL_MQTT_CONNECT) {
            kl_dp_log("%s: first packet is not CONNECT (type %d), closing", c->ip, type);
            kl_conn_close(c, -1, NULL);
            return;
        }
        kl_handle_connect(dp, c, b, n);
        return;
    }
    if (c->state == KL_CS_AUTH) {
        if (type == KL_MQTT_AUTH)
            kl_handle_auth(dp, c, b, n);
        else
            kl_conn_close(c, -1, NULL); /* anything else during the challenge ends it */
        return;
    }
    if (c->state != KL_CS_ONLINE) return;
    int ka = c->keepalive ? c->keepalive : KL_DP_KEEPALIVE_MAX;
    c->deadline_ms = kl_dp_now_ms() + (int64_t)ka * 1500;
    switch (type) {
    case KL_MQTT_PUBLISH:
        kl_handle_publish(dp, c, (uint8_t)flags, b, n);
        break;
    case KL_MQTT_PUBACK:
    case KL_MQTT_PUBREC:
    case KL_MQTT_PUBREL:
    case KL_MQTT_PUBCOMP:
        kl_handle_ack(dp, c, type, b, n);
        break;
    case KL_MQTT_SUBSCRIBE:
        kl_handle_subscribe(dp, c, b, n);
        break;
    case KL_MQTT_UNSUBSCRIBE:
        kl_handle_unsubscribe(dp, c, b, n);
        break;
    case KL_MQTT_PINGREQ:
        if (n) {
            kl_conn_close(c, KL_RC_MALFORMED, "PINGREQ with a body");
            return;
        }
        kl_mqtt_send_pingresp(&c->out);
        break;
    case KL_MQTT_DISCONNECT: {
        uint8_t rc;
        struct kl_mqtt_props pr;
        int r = kl_mqtt_parse_disconnect(b, n, c->version == 5, &rc, &pr);
        if (r) {
            kl_conn_close(c, r, "malformed DISCONNECT");
            return;
        }
        pthread_mutex_lock(&dp->broker.lock);
        struct kl_session *s = c->sess;
        int bad = 0;
        if (s && (pr.has & KL_PROP(KL_P_SESSION_EXPIRY))) {
            /* a session that ended at disconnect cannot be revived here (MQTT 5 3.14.2.2.2) */
            if (!s->persistent && pr.session_expiry)
                bad = 1;
            else {
                s->expiry =
                    pr.session_expiry > KL_DP_EXPIRY_MAX ? KL_DP_EXPIRY_MAX : pr.session_expiry;
                s->persistent = s->expiry > 0;
            }
        }
        pthread_mutex_unlock(&dp->broker.lock);
        if (bad) {
            kl_conn_close(c, KL_RC_PROTOCOL, "session expiry cannot be set at DISCONNECT");
            return;
        }
        c->graceful = rc != KL_RC_DISCONNECT_WITH_WILL;
        kl_conn_close(c, -1, NULL);
        break;
    }
    case KL_MQTT_AUTH:
        /* re-authentication is not offered */
        kl_conn_close(c, KL_RC_PROTOCOL, "re-authentication is not supported");
        break;
    default:
        kl_conn_close(c, KL_RC_PROTOCOL, "unexpected packet type");
        break;
    }
}

void kl_conn_gone(struct kl_dp *dp, struct kl_conn *c, int graceful)
{
    struct kl_broker *b = &dp->broker;
    pthread_mutex_lock(&b->lock);
    struct kl_session *s = c->sess;
    if (s) {
        s->conn = NULL;
        c->sess = NULL;
        int64_t now = kl_dp_now_ms();
        if (!graceful && s->will && s->will_delay && s->persistent) {
            /* MQTT 5 Will Delay: sent when the delay or the session ends, whichever is first,
             * unless the client comes back before (the sweep runs once a second) */
            uint32_t d = s->will_delay < s->expiry ? s->will_delay : s->expiry;
            s->will_at = now + (int64_t)d * 1000;
        } else if (!graceful) {
            kl_sess_fire_will(dp, s);
        } else {
            kl_msg_unref(s->will);
            s->will = NULL;
        }
        if (!s->persistent)
            kl_sess_destroy(b, s);
        else
            s->expire_ms = now + (int64_t)s->expiry * 1000;
    }
    pthread_mutex_unlock(&b->lock);
    if (c->announced) {
        /* AWS's disconnectReason names */
        const char *why = graceful ? "CLIENT_INITIATED_DISCONNECT" : "CONNECTION_LOST";
        switch (c->disc_rc) {
        case 0:
            break;
        case KL_RC_SESSION_TAKEN_OVER:
            why = "DUPLICATE_CLIENTID";
            break;
        case KL_RC_NOT_AUTHORIZED:
            why = "AUTHORIZATION_FAILURE";
            break;
        case KL_RC_KEEPALIVE_TIMEOUT:
            why = "MQTT_KEEP_ALIVE_TIMEOUT";
            break;
        case KL_RC_SHUTTING_DOWN:
            why = "SERVER_INITIATED_DISCONNECT";
            break;
        default:
            why = "CLIENT_ERROR";
            break;
        }
        kl_event_presence(dp, c, c->client_id, 0, why);
        kl_dp_log("client %s disconnected (%s)", c->client_id, why);
    }
    c->announced = 0;
}
