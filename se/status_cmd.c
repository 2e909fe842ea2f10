/*
 * PING and GET_STATUS (the 59-byte status block of docs/protocol.md).
 */
#include <string.h>

#include "chip_int.h"

#define KL_FW_MAJOR 1
#define KL_FW_MINOR 0
#define KL_FW_PATCH 0
#define KL_HW_VERSION 0x0001

KL_HANDLER(kl_cmd_ping)
{
    (void)c;
    if (len > KL_MAX_PAYLOAD) return KL_E_BAD_LENGTH;
    if (cap < len) return KL_E_INTERNAL;
    if (len) memcpy(resp, req, len);
    *rlen = len;
    return KL_OK;
}

KL_HANDLER(kl_cmd_get_status)
{
    (void)req;
    if (len != 0) return KL_E_BAD_LENGTH;
    if (cap < KL_STATUS_LEN) return KL_E_INTERNAL;
    memset(resp, 0, KL_STATUS_LEN);
    static const char name[] = "MAXQ1065-KL";
    memcpy(resp, name, sizeof name - 1);
    resp[16] = KL_FW_MAJOR;
    resp[17] = KL_FW_MINOR;
    resp[18] = KL_FW_PATCH;
    kl_put16(resp + 19, KL_HW_VERSION);
    memcpy(resp + 21, c->serial, KL_SERIAL_LEN);
    resp[45] = c->st.lifecycle;
    kl_put16(resp + 46, (uint16_t)KL_STORAGE_TOTAL);
    kl_put16(resp + 48, (uint16_t)kl_store_free(&c->st));
    kl_put32(resp + 50, c->st.tamper_count);
    kl_put32(resp + 54, c->st.reset_count);
    resp[58] = (uint8_t)((c->st.admin ? 1 : 0) | (c->channel ? 2 : 0) | (c->st.boot_ok ? 4 : 0));
    *rlen = KL_STATUS_LEN;
    return KL_OK;
}
