/*
 * COUNTER_UPDATE: up-counters only go up, down-counters only down, neither wraps.
 */
#include "chip_int.h"

KL_HANDLER(kl_cmd_counter_update)
{
    if (len != 6) return KL_E_BAD_LENGTH;
    uint32_t step = kl_be32(req + 2);
    struct kl_obj *o = kl_obj_find(c, kl_be16(req));
    if (!o) return KL_E_NOT_FOUND;
    if (o->type != KL_OBJ_UPCOUNTER && o->type != KL_OBJ_DOWNCOUNTER) return KL_E_WRONG_TYPE;
    kl_status st = kl_rules_allow(c, o, KL_RIGHT_W);
    if (st != KL_OK) return st;
    if (step == 0) return KL_E_BAD_PARAM;
    uint8_t *d = kl_obj_bytes(&c->st, o);
    uint32_t v = kl_be32(d), nv;
    if (o->type == KL_OBJ_UPCOUNTER) {
        if (step > UINT32_MAX - v) return KL_E_COUNTER;
        nv = v + step;
    } else {
        if (step > v) return KL_E_COUNTER;
        nv = v - step;
    }
    if (cap < 4) return KL_E_INTERNAL;
    st = kl_obj_count_write(o);
    if (st != KL_OK) return st;
    kl_put32(d, nv);
    kl_put32(resp, nv);
    *rlen = 4;
    return KL_OK;
}
