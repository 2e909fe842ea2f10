/* The object attribute block shared by CREATE_OBJECT, OBJECT_INFO and the image. */
#include <string.h>

#include "chip_int.h"

void kl_obj_attr_put(uint8_t *p, const struct kl_obj *o)
{
    kl_put16(p, o->id);
    p[2] = o->type;
    p[3] = o->props;
    kl_put16(p + 4, o->size);
    memcpy(p + 6, o->rules, 9);
    p[15] = o->key_type;
    p[16] = o->usage[0];
    p[17] = o->alg[0];
    p[18] = o->usage[1];
    p[19] = o->alg[1];
}

void kl_obj_attr_get(struct kl_obj *o, const uint8_t *p)
{
    o->id = kl_be16(p);
    o->type = p[2];
    o->props = p[3];
    o->size = kl_be16(p + 4);
    memcpy(o->rules, p + 6, 9);
    o->key_type = p[15];
    o->usage[0] = p[16];
    o->alg[0] = p[17];
    o->usage[1] = p[18];
    o->alg[1] = p[19];
}
