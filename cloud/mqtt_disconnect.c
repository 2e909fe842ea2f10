/* DISCONNECT, AUTH (client side parse), PINGRESP. */
#include <string.h>

#include "dataplane.h"

int kl_mqtt_parse_disconnect(const uint8_t *b, size_t n, int v5, uint8_t *rc,
                             struct kl_mqtt_props *props)
{
    memset(props, 0, sizeof *props);
    *rc = 0;
    if (!v5) return n == 0 ? 0 : KL_RC_MALFORMED;
    if (n == 0) return 0;
    *rc = b[0];
    if (n == 1) return 0;
    const uint8_t *p = b + 1;
    int r = kl_mqtt_props_parse(&p, b + n, KL_MQTT_DISCONNECT, 0, props);
    if (r) return r;
    return p == b + n ? 0 : KL_RC_MALFORMED;
}

int kl_mqtt_parse_auth(const uint8_t *b, size_t n, uint8_t *rc, struct kl_mqtt_props *props)
{
    memset(props, 0, sizeof *props);
    *rc = 0;
    if (n == 0) return 0;
    *rc = b[0];
    if (n == 1) return 0;
    const uint8_t *p = b + 1;
    int r = kl_mqtt_props_parse(&p, b + n, KL_MQTT_AUTH, 0, props);
    if (r) return r;
    return p == b + n ? 0 : KL_RC_MALFORMED;
}

void kl_mqtt_send_pingresp(struct kl_wbuf *w)
{
    uint8_t b[2] = {0xD0, 0};
    kl_wb_bytes(w, b, 2);
}

void kl_mqtt_send_disconnect(struct kl_wbuf *w, uint8_t rc, const char *reason)
{
    size_t rl = reason ? strlen(reason) : 0;
    if (rl > 200) rl = 200;
    size_t pl = rl ? 3 + rl : 0;
    kl_wb_u8(w, 0xE0);
    kl_wb_varint(w, (uint32_t)(1 + kl_varint_len((uint32_t)pl) + pl));
    kl_wb_u8(w, rc);
    kl_wb_varint(w, (uint32_t)pl);
    if (rl) {
        kl_wb_u8(w, KL_P_REASON_STRING);
        kl_wb_str(w, reason, rl);
    }
}
