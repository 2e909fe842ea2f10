/*
 * Life cycle: SET_LIFECYCLE (DELIVERY -> INITIALIZED -> OPERATIONAL -> TERMINATED, one
 * step forward, admin session needed) and RESET_FACTORY.
 */
#include <string.h>

#include "chip_int.h"

KL_HANDLER(kl_cmd_set_lifecycle)
{
    (void)resp, (void)cap, (void)rlen;
    if (len != 1) return KL_E_BAD_LENGTH;
    uint8_t to = req[0];
    if (to < KL_LC_DELIVERY || to > KL_LC_TERMINATED) return KL_E_BAD_PARAM;
    if (!c->st.admin) return KL_E_AUTH_REQUIRED;
    if (to != c->st.lifecycle + 1) return KL_E_LIFECYCLE;
    if (to == KL_LC_TERMINATED && !(c->st.config[0] & KL_CFG_ALLOW_TERMINATE))
        return KL_E_LIFECYCLE;
    c->st.lifecycle = to;
    return KL_OK;
}

/* Back to the factory: every object gone, DELIVERY, default configuration. The serial,
 * the identity key and the tamper/reset counts stay (they belong to the silicon). */
KL_HANDLER(kl_cmd_reset_factory)
{
    (void)req, (void)resp, (void)cap, (void)rlen;
    if (len != 0) return KL_E_BAD_LENGTH;
    if (!c->st.admin) return KL_E_AUTH_REQUIRED;
    if (!(c->st.config[0] & KL_CFG_FACTORY_RESET)) return KL_E_ACCESS_DENIED;
    kl_cx_wipe(c->st.pool, sizeof c->st.pool);
    memset(c->st.obj, 0, sizeof c->st.obj);
    c->st.nobj = 0;
    c->st.pool_used = 0;
    c->st.lifecycle = KL_LC_DELIVERY;
    kl_config_default(c->st.config);
    c->st.pending_reset |= KL_PENDING_RESET; /* sessions may hold keys that are gone: drop them */
    return KL_OK;
}
