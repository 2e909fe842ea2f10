/*
 * The 12-byte configuration block: defaults, validation, SET_CONFIG and GET_CONFIG.
 */
#include <string.h>

#include "chip_int.h"

void kl_config_default(uint8_t cfg[KL_CONFIG_LEN])
{
    memset(cfg, 0, KL_CONFIG_LEN);
    cfg[0] = KL_CFG_ALLOW_TERMINATE | KL_CFG_FACTORY_RESET;
    cfg[1] = KL_RST_BOOT_FAIL | KL_RST_CHANNEL_ERR | KL_RST_TAMPER | KL_RST_WATCHDOG;
    cfg[2] = 0;
    kl_put32(cfg + 4, 10000); /* watchdog initial period, ms (watchdog off by default) */
    kl_put32(cfg + 8, 5000);  /* watchdog normal period, ms */
}

int kl_config_valid(const uint8_t cfg[KL_CONFIG_LEN])
{
    if (cfg[0] & ~0x1Fu || cfg[1] & ~0x0Fu || cfg[2] > 1 || cfg[3] != 0) return 0;
    if ((cfg[0] & KL_CFG_WATCHDOG) && (kl_be32(cfg + 4) == 0 || kl_be32(cfg + 8) == 0)) return 0;
    return 1;
}

KL_HANDLER(kl_cmd_set_config)
{
    (void)resp, (void)cap, (void)rlen;
    if (len != KL_CONFIG_LEN) return KL_E_BAD_LENGTH;
    if (!kl_config_valid(req)) return KL_E_BAD_PARAM;
    if (c->st.lifecycle != KL_LC_DELIVERY && !c->st.admin) return KL_E_AUTH_REQUIRED;
    memcpy(c->st.config, req, KL_CONFIG_LEN);
    kl_wd_arm(c, 1); /* a new watchdog setting starts with the initial period */
    return KL_OK;
}

KL_HANDLER(kl_cmd_get_config)
{
    (void)req;
    if (len != 0) return KL_E_BAD_LENGTH;
    if (cap < KL_CONFIG_LEN) return KL_E_INTERNAL;
    memcpy(resp, c->st.config, KL_CONFIG_LEN);
    *rlen = KL_CONFIG_LEN;
    return KL_OK;
}
