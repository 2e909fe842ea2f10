/*
 * Keys made or brought into the chip: GENERATE_KEY (P-256 key pairs, AES, HMAC/PSK
 * secrets, from the chip's DRBG) and IMPORT_KEY (signed by the key-import key 0x1000
 * outside DELIVERY).
 */
#include <string.h>

#include "chip_int.h"

#define KL_IMPORT_KEY_ID 0x1000

KL_HANDLER(kl_cmd_generate_key)
{
    if (len != 2) return KL_E_BAD_LENGTH;
    struct kl_obj *o = kl_obj_find(c, kl_be16(req));
    if (!o) return KL_E_NOT_FOUND;
    if (o->type != KL_OBJ_KEYPAIR && o->type != KL_OBJ_SECRET) return KL_E_WRONG_TYPE;
    kl_status st = kl_rules_allow(c, o, KL_RIGHT_G);
    if (st != KL_OK) return st;
    if (o->writes >= KL_MAX_WRITES) return KL_E_ENDURANCE;
    if (cap < KL_CX_P256_PUB) return KL_E_INTERNAL;

    uint8_t k[KL_CX_P256_PRIV + KL_CX_P256_PUB];
    size_t n;
    if (o->type == KL_OBJ_KEYPAIR) {
        st = kl_cx_ec_keygen(c->drbg, k, k + KL_CX_P256_PRIV);
        n = sizeof k;
    } else {
        n = o->size;
        st = kl_cx_drbg_generate(c->drbg, k, n);
    }
    if (st != KL_OK) {
        kl_cx_wipe(k, sizeof k);
        return KL_E_INTERNAL;
    }
    (void)kl_obj_count_write(o); /* cannot fail: checked above */
    uint8_t *d = kl_obj_bytes(&c->st, o);
    memcpy(d, k, n);
    o->used = (uint16_t)n;
    o->has_key = 1;
    if (o->type == KL_OBJ_KEYPAIR) {
        memcpy(resp, k + KL_CX_P256_PRIV, KL_CX_P256_PUB);
        *rlen = KL_CX_P256_PUB;
    }
    kl_cx_wipe(k, sizeof k);
    return KL_OK;
}

/* Checks the material for the object: its length and, for EC keys, the point and that
 * the public half belongs to the private scalar. */
static kl_status check_material(const struct kl_obj *o, const uint8_t *m, size_t n)
{
    switch (o->type) {
    case KL_OBJ_SECRET:
        if (o->key_type == KL_KT_AES ? n != o->size : (n < 1 || n > o->size)) return KL_E_BAD_PARAM;
        return KL_OK;
    case KL_OBJ_PUBKEY:
        if (n != KL_CX_P256_PUB) return KL_E_BAD_PARAM;
        return kl_cx_ec_check_pub(m) == KL_OK ? KL_OK : KL_E_BAD_KEY;
    case KL_OBJ_KEYPAIR: {
        if (n != KL_CX_P256_PRIV + KL_CX_P256_PUB) return KL_E_BAD_PARAM;
        uint8_t pub[KL_CX_P256_PUB];
        if (kl_cx_ec_pub_from_priv(m, pub) != KL_OK) return KL_E_BAD_KEY;
        int same = kl_cx_ct_equal(pub, m + KL_CX_P256_PRIV, KL_CX_P256_PUB);
        return same ? KL_OK : KL_E_BAD_KEY;
    }
    default:
        return KL_E_WRONG_TYPE;
    }
}

/* Verifies the key-import signature over SHA-256(signed[0..n)). */
static kl_status check_import_sig(struct kl_chip *c, const uint8_t *signed_part, size_t n,
                                  const uint8_t *sig)
{
    struct kl_obj *ik;
    kl_status st = kl_obj_for_use(c, KL_IMPORT_KEY_ID, KL_USE_IMPORT, KL_ALG_ECDSA, &ik);
    if (st == KL_E_NOT_FOUND || st == KL_E_STATE) return KL_E_VERIFY_FAILED;
    if (st != KL_OK) return st;
    uint8_t dg[KL_CX_SHA256_LEN];
    if (kl_cx_sha256(signed_part, n, dg) != KL_OK) return KL_E_INTERNAL;
    st = kl_cx_ecdsa_verify(kl_obj_pub(c, ik), dg, sig);
    if (st == KL_OK) return KL_OK;
    return st == KL_E_VERIFY_FAILED || st == KL_E_BAD_KEY ? KL_E_VERIFY_FAILED : KL_E_INTERNAL;
}

KL_HANDLER(kl_cmd_import_key)
{
    (void)resp, (void)cap, (void)rlen;
    if (len < 4) return KL_E_BAD_LENGTH;
    size_t n = kl_be16(req + 2);
    const uint8_t *m = req + 4;
    int has_sig;
    if (len == 4 + n)
        has_sig = 0;
    else if (len == 4 + n + KL_CX_P256_SIG)
        has_sig = 1;
    else
        return KL_E_BAD_LENGTH;
    if (n == 0) return KL_E_BAD_PARAM;
    struct kl_obj *o = kl_obj_find(c, kl_be16(req));
    if (!o) return KL_E_NOT_FOUND;
    if (o->type != KL_OBJ_SECRET && o->type != KL_OBJ_PUBKEY && o->type != KL_OBJ_KEYPAIR)
        return KL_E_WRONG_TYPE;
    kl_status st = kl_rules_allow(c, o, KL_RIGHT_W);
    if (st != KL_OK) return st;
    st = check_material(o, m, n);
    if (st != KL_OK) return st;
    if (!has_sig && c->st.lifecycle != KL_LC_DELIVERY) return KL_E_AUTH_REQUIRED;
    if (has_sig) {
        st = check_import_sig(c, req, 4 + n, m + n);
        if (st != KL_OK) return st;
    }
    st = kl_obj_count_write(o);
    if (st != KL_OK) return st;
    uint8_t *d = kl_obj_bytes(&c->st, o);
    kl_cx_wipe(d, o->size);
    memcpy(d, m, n);
    o->used = (uint16_t)n;
    o->has_key = 1;
    return KL_OK;
}
