/*
 * VERIFY_BOOT: ECDSA P-256 over a 32-byte firmware digest with a verify-firmware key.
 * Success grants the secure-boot role (s) until the next reset; failure may reset the
 * chip (config reset event "secure-boot failure").
 */
#include "chip_int.h"

KL_HANDLER(kl_cmd_verify_boot)
{
    (void)resp, (void)cap, (void)rlen;
    if (len != 2 + KL_CX_SHA256_LEN + KL_CX_P256_SIG) return KL_E_BAD_LENGTH;
    struct kl_obj *o;
    kl_status st = kl_obj_for_use(c, kl_be16(req), KL_USE_FIRMWARE, KL_ALG_ECDSA, &o);
    if (st != KL_OK) return st;
    st = kl_cx_ecdsa_verify(kl_obj_pub(c, o), req + 2, req + 2 + KL_CX_SHA256_LEN);
    if (st == KL_E_VERIFY_FAILED || st == KL_E_BAD_KEY) {
        c->events |= KL_RST_BOOT_FAIL;
        return KL_E_VERIFY_FAILED;
    }
    if (st != KL_OK) return KL_E_INTERNAL;
    c->st.boot_ok = 1;
    return KL_OK;
}
