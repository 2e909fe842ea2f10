/* PUBACK, PUBREC, PUBREL, PUBCOMP: parse a client's, send the server's. */
#include "dataplane.h"

int kl_mqtt_parse_ack(const uint8_t *b, size_t n, int v5, uint16_t *pid, uint8_t *rc)
{
    if (n < 2) return KL_RC_MALFORMED;
    *pid = (uint16_t)((b[0] << 8) | b[1]);
    *rc = 0;
    if (!*pid) return KL_RC_MALFORMED;
    if (!v5) return n == 2 ? 0 : KL_RC_MALFORMED;
    if (n == 2) return 0;
    *rc = b[2];
    if (n == 3) return 0;
    const uint8_t *p = b + 3;
    struct kl_mqtt_props pr;
    int r = kl_mqtt_props_parse(&p, b + n, KL_MQTT_PUBACK, 0, &pr);
    if (r) return r;
    return p == b + n ? 0 : KL_RC_MALFORMED;
}

void kl_mqtt_send_ack(struct kl_wbuf *w, int type, uint16_t pid, uint8_t rc, int v5)
{
    uint8_t b[5] = {(uint8_t)((type << 4) | (type == KL_MQTT_PUBREL ? 2 : 0)), 2,
                    (uint8_t)(pid >> 8), (uint8_t)pid, rc};
    if (v5 && rc) {
        b[1] = 3;
        kl_wb_bytes(w, b, 5);
    } else {
        kl_wb_bytes(w, b, 4);
    }
}
