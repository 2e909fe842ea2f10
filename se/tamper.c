/*
 * TAMPER (model input: the tamper pin fires). Wipes exactly the wipe-on-tamper and the
 * temporary objects, counts the event, and per the config goes TERMINATED and/or resets.
 */
#include "chip_int.h"

KL_HANDLER(kl_cmd_tamper)
{
    (void)req, (void)resp, (void)cap, (void)rlen;
    if (len != 0) return KL_E_BAD_LENGTH;
    kl_obj_remove_props(&c->st, KL_PROP_WIPE | KL_PROP_TEMP);
    if (c->st.tamper_count < UINT32_MAX) c->st.tamper_count++;
    if (c->st.config[2] == 1) c->st.lifecycle = KL_LC_TERMINATED;
    /* Keys of wiped objects may live on in RAM sessions: those go in any case. */
    c->st.pending_reset |= KL_PENDING_WIPE;
    if (c->st.config[1] & KL_RST_TAMPER) {
        if (c->st.reset_count < UINT32_MAX) c->st.reset_count++;
        c->st.pending_reset |= KL_PENDING_RESET;
    }
    return KL_OK;
}
