/* CONNACK and AUTH from the server. */
#include <string.h>

#include "dataplane.h"

void kl_mqtt_send_connack(struct kl_wbuf *w, const struct kl_connack_info *ci)
{
    if (!ci->v5) {
        uint8_t b[4] = {0x20, 2, ci->session_present, ci->rc};
        kl_wb_bytes(w, b, 4);
        return;
    }
    uint8_t pb[600];
    struct kl_wbuf pw = {pb, 0, sizeof pb, 0};
    /* pw points at a stack buffer with enough room: kl_wb_reserve never reallocs it */
    if (ci->has_expiry) {
        kl_wb_u8(&pw, KL_P_SESSION_EXPIRY);
        kl_wb_u32(&pw, ci->session_expiry);
    }
    if (ci->rc == 0) {
        kl_wb_u8(&pw, KL_P_RECEIVE_MAX);
        kl_wb_u16(&pw, KL_DP_RECEIVE_MAX);
        /* Maximum QoS is absent: it may only say 0 or 1 (MQTT 5 3.2.2.3.4); we do 2 */
        kl_wb_u8(&pw, KL_P_MAX_PACKET);
        kl_wb_u32(&pw, ci->max_packet);
        kl_wb_u8(&pw, KL_P_TOPIC_ALIAS_MAX);
        kl_wb_u16(&pw, 0);
        kl_wb_u8(&pw, KL_P_SHARED_AVAILABLE);
        kl_wb_u8(&pw, 0);
        if (ci->server_keepalive) {
            kl_wb_u8(&pw, KL_P_SERVER_KEEPALIVE);
            kl_wb_u16(&pw, ci->server_keepalive);
        }
        if (ci->assigned_id) {
            kl_wb_u8(&pw, KL_P_ASSIGNED_CLIENT_ID);
            kl_wb_str(&pw, ci->assigned_id, strlen(ci->assigned_id));
        }
    }
    if (ci->auth_method) {
        kl_wb_u8(&pw, KL_P_AUTH_METHOD);
        kl_wb_str(&pw, ci->auth_method, strlen(ci->auth_method));
    }
    if (ci->reason && strlen(ci->reason) < 200) {
        kl_wb_u8(&pw, KL_P_REASON_STRING);
        kl_wb_str(&pw, ci->reason, strlen(ci->reason));
    }
    uint32_t rl = (uint32_t)(2 + kl_varint_len((uint32_t)pw.len) + pw.len);
    kl_wb_u8(w, 0x20);
    kl_wb_varint(w, rl);
    kl_wb_u8(w, ci->session_present);
    kl_wb_u8(w, ci->rc);
    kl_wb_varint(w, (uint32_t)pw.len);
    kl_wb_bytes(w, pb, pw.len);
}

void kl_mqtt_send_auth(struct kl_wbuf *w, uint8_t rc, const char *method, const uint8_t *data,
                       size_t dl)
{
    size_t ml = strlen(method);
    uint32_t pl = (uint32_t)(1 + 2 + ml + (data ? 1 + 2 + dl : 0));
    kl_wb_u8(w, 0xF0);
    kl_wb_varint(w, (uint32_t)(1 + kl_varint_len(pl) + pl));
    kl_wb_u8(w, rc);
    kl_wb_varint(w, pl);
    kl_wb_u8(w, KL_P_AUTH_METHOD);
    kl_wb_str(w, method, ml);
    if (data) {
        kl_wb_u8(w, KL_P_AUTH_DATA);
        kl_wb_str(w, data, dl);
    }
}
