/*
 * Admin session: GET_CHALLENGE, ADMIN_AUTH (ECDSA P-256 over SHA-256 of the 16-byte
 * challenge, by an admin-authentication key object), ADMIN_AUTH_RESET.
 */
#include <string.h>

#include "chip_int.h"

KL_HANDLER(kl_cmd_get_challenge)
{
    (void)req;
    if (len != 0) return KL_E_BAD_LENGTH;
    if (cap < KL_CHALLENGE_LEN) return KL_E_INTERNAL;
    uint8_t ch[KL_CHALLENGE_LEN];
    if (kl_cx_drbg_generate(c->drbg, ch, sizeof ch) != KL_OK) return KL_E_INTERNAL;
    memcpy(c->challenge, ch, sizeof ch); /* replaces any earlier challenge */
    c->challenge_set = 1;
    memcpy(resp, ch, sizeof ch);
    *rlen = sizeof ch;
    return KL_OK;
}

KL_HANDLER(kl_cmd_admin_auth)
{
    (void)resp, (void)cap, (void)rlen;
    if (len != 2 + KL_CX_P256_SIG) return KL_E_BAD_LENGTH;
    /* The challenge is single-use: taken now, whatever the outcome. */
    int had = c->challenge_set;
    uint8_t ch[KL_CHALLENGE_LEN];
    memcpy(ch, c->challenge, sizeof ch);
    c->challenge_set = 0;
    kl_cx_wipe(c->challenge, sizeof c->challenge);

    struct kl_obj *o;
    kl_status st = kl_obj_for_use(c, kl_be16(req), KL_USE_ADMIN, KL_ALG_ECDSA, &o);
    if (st != KL_OK) return st;
    if (!had) return KL_E_AUTH_FAILED;
    uint8_t dg[KL_CX_SHA256_LEN];
    if (kl_cx_sha256(ch, sizeof ch, dg) != KL_OK) return KL_E_INTERNAL;
    st = kl_cx_ecdsa_verify(kl_obj_pub(c, o), dg, req + 2);
    if (st == KL_E_VERIFY_FAILED) return KL_E_AUTH_FAILED;
    if (st != KL_OK) return st == KL_E_BAD_KEY ? KL_E_AUTH_FAILED : KL_E_INTERNAL;
    c->st.admin = 1;
    return KL_OK;
}

KL_HANDLER(kl_cmd_admin_auth_reset)
{
    (void)req, (void)resp, (void)cap, (void)rlen;
    if (len != 0) return KL_E_BAD_LENGTH;
    c->st.admin = 0;
    return KL_OK;
}
