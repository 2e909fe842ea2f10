/*
 * Persistent state <-> bytes (the plaintext of the chip image). Version 1 layout, all
 * integers big-endian:
 *   "KLST" | version u16 | lifecycle u8 | config (12) | tamper u32 | resets u32 |
 *   serial (24) | identity private (32) | identity public (64) | object count u16 |
 *   per object: id u16 | type u8 | props u8 | size u16 | rules (9) | key type u8 |
 *               usage1 u8 | alg1 u8 | usage2 u8 | alg2 u8 | has-key u8 | used u16 |
 *               writes u32 | data (used bytes)
 * Temporary objects and sessions are not stored. Decoding treats the bytes as hostile:
 * every length and field is checked, EC keys must be valid, and nothing is installed
 * unless all of it is good.
 */
#include <stdlib.h>
#include <string.h>

#include "chip_int.h"

#define KL_STATE_MAGIC "KLST"
#define KL_STATE_VERSION 1
#define HDR_LEN (4 + 2 + 1 + KL_CONFIG_LEN + 4 + 4 + KL_SERIAL_LEN + 32 + 64 + 2)
#define OBJ_HDR_LEN 28

kl_status kl_state_encode(const struct kl_chip *c, uint8_t **out, size_t *len)
{
    const struct kl_state *s = &c->st;
    size_t n = HDR_LEN;
    for (size_t i = 0; i < s->nobj; i++)
        if (s->obj[i].props & KL_PROP_PERSIST) n += OBJ_HDR_LEN + s->obj[i].used;
    uint8_t *b = malloc(n);
    if (!b) return KL_E_INTERNAL;
    uint8_t *p = b;
    memcpy(p, KL_STATE_MAGIC, 4);
    kl_put16(p + 4, KL_STATE_VERSION);
    p[6] = s->lifecycle;
    p += 7;
    memcpy(p, s->config, KL_CONFIG_LEN);
    p += KL_CONFIG_LEN;
    kl_put32(p, s->tamper_count);
    kl_put32(p + 4, s->reset_count);
    p += 8;
    memcpy(p, c->serial, KL_SERIAL_LEN);
    p += KL_SERIAL_LEN;
    memcpy(p, c->id_priv, 32);
    memcpy(p + 32, c->id_pub, 64);
    p += 96;
    uint8_t *countp = p;
    p += 2;
    uint16_t count = 0;
    for (size_t i = 0; i < s->nobj; i++) {
        const struct kl_obj *o = &s->obj[i];
        if (!(o->props & KL_PROP_PERSIST)) continue;
        kl_obj_attr_put(p, o);
        p[20] = o->has_key;
        kl_put16(p + 21, o->used);
        kl_put32(p + 23, o->writes);
        p[27] = 0; /* reserved */
        memcpy(p + OBJ_HDR_LEN, s->pool + o->off, o->used);
        p += OBJ_HDR_LEN + o->used;
        count++;
    }
    kl_put16(countp, count);
    *out = b;
    *len = n;
    return KL_OK;
}

/* Whether used/has_key agree with the object's type (what the commands can produce). */
static int used_ok(const struct kl_obj *o)
{
    if (o->has_key > 1) return 0;
    switch (o->type) {
    case KL_OBJ_SECRET:
        if (!o->has_key) return o->used == 0;
        return o->key_type == KL_KT_AES ? o->used == o->size : (o->used >= 1 && o->used <= o->size);
    case KL_OBJ_PUBKEY:
    case KL_OBJ_KEYPAIR:
        return o->has_key ? o->used == o->size : o->used == 0;
    case KL_OBJ_UPCOUNTER:
    case KL_OBJ_DOWNCOUNTER:
        return !o->has_key && o->used == 4;
    default:
        return !o->has_key && o->used <= o->size;
    }
}

/* EC material must be what the commands can produce: a point on P-256, a key pair whose
 * public half belongs to its scalar. */
static int key_ok(const struct kl_obj *o, const uint8_t *d)
{
    if (o->type == KL_OBJ_PUBKEY) return kl_cx_ec_check_pub(d) == KL_OK;
    if (o->type != KL_OBJ_KEYPAIR) return 1;
    uint8_t pub[KL_CX_P256_PUB];
    int ok = kl_cx_ec_pub_from_priv(d, pub) == KL_OK &&
             kl_cx_ct_equal(pub, d + KL_CX_P256_PRIV, KL_CX_P256_PUB);
    kl_cx_wipe(pub, sizeof pub);
    return ok;
}

/* Records why the image is refused (for the caller's message). */
#define bad(what) (*why = (what), KL_E_STORAGE)

kl_status kl_state_decode(const uint8_t *in, size_t len, struct kl_state *st,
                          uint8_t serial[KL_SERIAL_LEN], uint8_t id_priv[KL_CX_P256_PRIV],
                          uint8_t id_pub[KL_CX_P256_PUB], const char **why)
{
    const char *unused_why;
    if (!why) why = &unused_why;
    *why = "";
    if (!in || len < HDR_LEN) return bad("too short");
    if (memcmp(in, KL_STATE_MAGIC, 4) != 0) return bad("bad magic");
    if (kl_be16(in + 4) != KL_STATE_VERSION) return bad("unknown state version");
    struct kl_state *s = calloc(1, sizeof *s);
    if (!s) return KL_E_INTERNAL;
    kl_status rc = KL_E_STORAGE;
    const uint8_t *p = in + 6;
    s->lifecycle = p[0];
    p++;
    memcpy(s->config, p, KL_CONFIG_LEN);
    p += KL_CONFIG_LEN;
    s->tamper_count = kl_be32(p);
    s->reset_count = kl_be32(p + 4);
    p += 8;
    const uint8_t *ser = p, *ipriv = p + KL_SERIAL_LEN, *ipub = ipriv + 32;
    p += KL_SERIAL_LEN + 96;
    size_t count = kl_be16(p);
    p += 2;
    const uint8_t *end = in + len;
    if (s->lifecycle < KL_LC_DELIVERY || s->lifecycle > KL_LC_TERMINATED) {
        rc = bad("bad life-cycle state");
        goto out;
    }
    if (!kl_config_valid(s->config)) {
        rc = bad("bad configuration");
        goto out;
    }
    uint8_t chk[KL_CX_P256_PUB];
    if (kl_cx_ec_pub_from_priv(ipriv, chk) != KL_OK || !kl_cx_ct_equal(chk, ipub, 64)) {
        rc = bad("bad identity key");
        goto out;
    }
    if (count > KL_MAX_OBJS) {
        rc = bad("too many objects");
        goto out;
    }
    for (size_t i = 0; i < count; i++) {
        if ((size_t)(end - p) < OBJ_HDR_LEN) {
            rc = bad("truncated object");
            goto out;
        }
        struct kl_obj o;
        memset(&o, 0, sizeof o);
        kl_obj_attr_get(&o, p);
        o.has_key = p[20];
        o.used = kl_be16(p + 21);
        o.writes = kl_be32(p + 23);
        int ok = p[27] == 0 && o.id != 0 && o.id != 0xFFFF &&
                 (i == 0 || o.id > s->obj[s->nobj - 1].id) && (o.props & KL_PROP_PERSIST) &&
                 kl_obj_check_layout(o.type, o.props, o.size, o.rules, o.key_type, o.usage,
                                     o.alg) == KL_OK &&
                 o.writes <= KL_MAX_WRITES && used_ok(&o);
        if (!ok) {
            rc = bad("bad object header");
            goto out;
        }
        p += OBJ_HDR_LEN;
        if ((size_t)(end - p) < o.used) {
            rc = bad("truncated object data");
            goto out;
        }
        if (o.has_key && !key_ok(&o, p)) {
            rc = bad("bad key material");
            goto out;
        }
        struct kl_obj *n;
        if (kl_obj_insert(s, &o, &n) != KL_OK) {
            rc = bad("objects exceed the user storage");
            goto out;
        }
        memcpy(s->pool + n->off, p, o.used);
        p += o.used;
    }
    if (p != end) {
        rc = bad("trailing bytes");
        goto out;
    }
    *st = *s;
    memcpy(serial, ser, KL_SERIAL_LEN);
    memcpy(id_priv, ipriv, 32);
    memcpy(id_pub, ipub, 64);
    rc = KL_OK;
out:
    kl_cx_wipe(s, sizeof *s);
    free(s);
    return rc;
}
