/*
 * The object store (8192 bytes of user storage, KL_OBJ_OVERHEAD bytes per object on top
 * of its capacity) and the object commands CREATE, DELETE, READ, WRITE, LIST and INFO.
 * Objects are kept sorted by id; their data is packed in the state's pool.
 */
#include <string.h>

#include "chip_int.h"

uint16_t kl_be16(const uint8_t *p)
{
    return (uint16_t)((p[0] << 8) | p[1]);
}

uint32_t kl_be32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

void kl_put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

void kl_put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

size_t kl_store_free(const struct kl_state *s)
{
    size_t used = (size_t)s->nobj * KL_OBJ_OVERHEAD + s->pool_used;
    return used >= KL_STORAGE_TOTAL ? 0 : KL_STORAGE_TOTAL - used;
}

/* Index of the first object with id >= id. */
static size_t lower_bound(const struct kl_state *s, uint16_t id)
{
    size_t lo = 0, hi = s->nobj;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (s->obj[mid].id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

struct kl_obj *kl_obj_find(struct kl_chip *c, uint16_t id)
{
    size_t i = lower_bound(&c->st, id);
    return (i < c->st.nobj && c->st.obj[i].id == id) ? &c->st.obj[i] : NULL;
}

uint8_t *kl_obj_bytes(struct kl_state *s, const struct kl_obj *o)
{
    return s->pool + o->off;
}

static int usage_known(uint8_t u)
{
    switch (u) {
    case KL_USE_CHANNEL:
    case KL_USE_SIGN:
    case KL_USE_ENCRYPT:
    case KL_USE_TLS:
    case KL_USE_ADMIN:
    case KL_USE_VERIFY:
    case KL_USE_FIRMWARE:
    case KL_USE_IMPORT:
    case KL_USE_KEX:
        return 1;
    default:
        return 0;
    }
}

/* Algorithms a key type (or a certificate, key_type 0) may name in a slot. */
static int alg_fits(uint8_t type, uint8_t key_type, uint8_t alg)
{
    if (alg == KL_ALG_NONE) return 1;
    if (type == KL_OBJ_CERT) return alg == KL_ALG_ECDSA;
    switch (key_type) {
    case KL_KT_ECC:
        return alg == KL_ALG_ECDSA || alg == KL_ALG_ECDH;
    case KL_KT_AES:
        return alg == KL_ALG_AES_ECB || alg == KL_ALG_AES_CBC || alg == KL_ALG_AES_CCM ||
               alg == KL_ALG_AES_GCM || alg == KL_ALG_AES_CMAC;
    case KL_KT_HMAC:
    case KL_KT_PSK:
        return alg == KL_ALG_HMAC || alg == KL_ALG_TLS_PRF;
    default:
        return 0;
    }
}

kl_status kl_obj_check_layout(uint8_t type, uint8_t props, uint16_t size, const uint8_t rules[9],
                              uint8_t key_type, const uint8_t usage[2], const uint8_t alg[2])
{
    uint8_t life = props & (KL_PROP_TEMP | KL_PROP_PERSIST);
    if (props & ~0x07u || (life != KL_PROP_TEMP && life != KL_PROP_PERSIST)) return KL_E_BAD_PARAM;
    if (!kl_rules_valid(rules)) return KL_E_BAD_PARAM;
    int ok;
    switch (type) {
    case KL_OBJ_SECRET:
        ok = (key_type == KL_KT_AES && (size == 16 || size == 32)) ||
             (key_type == KL_KT_HMAC && size >= 16 && size <= 64) ||
             (key_type == KL_KT_PSK && size >= 1 && size <= 64);
        break;
    case KL_OBJ_PUBKEY:
        ok = key_type == KL_KT_ECC && size == KL_CX_P256_PUB;
        break;
    case KL_OBJ_KEYPAIR:
        ok = key_type == KL_KT_ECC && size == KL_CX_P256_PRIV + KL_CX_P256_PUB;
        break;
    case KL_OBJ_DATA:
        ok = key_type == KL_KT_NONE && size >= 1 && size <= KL_STORAGE_TOTAL - KL_OBJ_OVERHEAD;
        break;
    case KL_OBJ_CERT:
        ok = key_type == KL_KT_NONE && size >= 1 && size <= KL_MAX_PAYLOAD;
        break;
    case KL_OBJ_UPCOUNTER:
    case KL_OBJ_DOWNCOUNTER:
        ok = key_type == KL_KT_NONE && size == 4;
        break;
    default:
        ok = 0;
    }
    if (!ok) return KL_E_BAD_PARAM;
    int keyish = type == KL_OBJ_SECRET || type == KL_OBJ_PUBKEY || type == KL_OBJ_KEYPAIR ||
                 type == KL_OBJ_CERT;
    for (int i = 0; i < 2; i++) {
        if (usage[i] == KL_USE_NONE) {
            if (alg[i] != KL_ALG_NONE) return KL_E_BAD_PARAM;
            continue;
        }
        if (!keyish || !usage_known(usage[i]) || !alg_fits(type, key_type, alg[i]))
            return KL_E_BAD_PARAM;
    }
    return KL_OK;
}

kl_status kl_obj_insert(struct kl_state *s, const struct kl_obj *tmpl, struct kl_obj **out)
{
    size_t i = lower_bound(s, tmpl->id);
    if (i < s->nobj && s->obj[i].id == tmpl->id) return KL_E_EXISTS;
    if (s->nobj >= KL_MAX_OBJS || kl_store_free(s) < (size_t)KL_OBJ_OVERHEAD + tmpl->size)
        return KL_E_NO_SPACE;
    memmove(&s->obj[i + 1], &s->obj[i], (s->nobj - i) * sizeof s->obj[0]);
    s->obj[i] = *tmpl;
    s->obj[i].off = s->pool_used;
    memset(s->pool + s->pool_used, 0, tmpl->size);
    s->pool_used = (uint16_t)(s->pool_used + tmpl->size);
    s->nobj++;
    if (out) *out = &s->obj[i];
    return KL_OK;
}

void kl_obj_remove(struct kl_state *s, uint16_t id)
{
    size_t i = lower_bound(s, id);
    if (i >= s->nobj || s->obj[i].id != id) return;
    uint16_t off = s->obj[i].off, size = s->obj[i].size;
    /* close the gap in the pool and wipe the freed tail */
    memmove(s->pool + off, s->pool + off + size, (size_t)(s->pool_used - off - size));
    s->pool_used = (uint16_t)(s->pool_used - size);
    kl_cx_wipe(s->pool + s->pool_used, size);
    memmove(&s->obj[i], &s->obj[i + 1], (s->nobj - i - 1) * sizeof s->obj[0]);
    s->nobj--;
    memset(&s->obj[s->nobj], 0, sizeof s->obj[0]);
    for (size_t j = 0; j < s->nobj; j++)
        if (s->obj[j].off > off) s->obj[j].off = (uint16_t)(s->obj[j].off - size);
}

void kl_obj_remove_props(struct kl_state *s, uint8_t mask)
{
    size_t i = s->nobj;
    while (i-- > 0)
        if (s->obj[i].props & mask) kl_obj_remove(s, s->obj[i].id);
}

kl_status kl_obj_count_write(struct kl_obj *o)
{
    if (o->writes >= KL_MAX_WRITES) return KL_E_ENDURANCE;
    o->writes++;
    return KL_OK;
}

/* ---- key material for the command files ---- */

const uint8_t *kl_obj_priv(const struct kl_chip *c, const struct kl_obj *o)
{
    if (!o || o->type != KL_OBJ_KEYPAIR || !o->has_key) return NULL;
    return c->st.pool + o->off;
}

const uint8_t *kl_obj_pub(const struct kl_chip *c, const struct kl_obj *o)
{
    if (!o || !o->has_key) return NULL;
    if (o->type == KL_OBJ_KEYPAIR) return c->st.pool + o->off + KL_CX_P256_PRIV;
    if (o->type == KL_OBJ_PUBKEY) return c->st.pool + o->off;
    return NULL;
}

const uint8_t *kl_obj_secret(const struct kl_chip *c, const struct kl_obj *o, size_t *len)
{
    if (!o || o->type != KL_OBJ_SECRET || !o->has_key) return NULL;
    if (len) *len = o->used;
    return c->st.pool + o->off;
}

const uint8_t *kl_obj_data(const struct kl_chip *c, const struct kl_obj *o, size_t *len)
{
    if (!o || (o->type != KL_OBJ_DATA && o->type != KL_OBJ_CERT)) return NULL;
    if (len) *len = o->used;
    return c->st.pool + o->off;
}

kl_status kl_obj_for_use(struct kl_chip *c, uint16_t id, uint8_t usage, uint8_t alg,
                         struct kl_obj **out)
{
    if (c->st.lifecycle == KL_LC_TERMINATED) return KL_E_TERMINATED;
    struct kl_obj *o = kl_obj_find(c, id);
    if (!o) return KL_E_NOT_FOUND;
    if (o->type != KL_OBJ_SECRET && o->type != KL_OBJ_PUBKEY && o->type != KL_OBJ_KEYPAIR)
        return KL_E_WRONG_TYPE;
    kl_status st = kl_rules_allow(c, o, KL_RIGHT_X);
    if (st != KL_OK) return st;
    if (!((o->usage[0] == usage && o->alg[0] == alg) || (o->usage[1] == usage && o->alg[1] == alg)))
        return KL_E_USAGE;
    if (!o->has_key) return KL_E_STATE;
    if (out) *out = o;
    return KL_OK;
}

/* Whether n bytes fit a secret-key object as its material. */
static int secret_len_ok(const struct kl_obj *o, size_t n)
{
    if (o->key_type == KL_KT_AES) return n == o->size;
    return n >= 1 && n <= o->size;
}

kl_status kl_obj_store_secret(struct kl_chip *c, uint16_t id, const uint8_t *k, size_t n)
{
    if (c->st.lifecycle == KL_LC_TERMINATED) return KL_E_TERMINATED;
    struct kl_obj *o = kl_obj_find(c, id);
    if (!o) return KL_E_NOT_FOUND;
    if (o->type != KL_OBJ_SECRET) return KL_E_WRONG_TYPE;
    if (!k || !secret_len_ok(o, n)) return KL_E_BAD_PARAM;
    kl_status st = kl_rules_allow(c, o, KL_RIGHT_W);
    if (st != KL_OK) return st;
    st = kl_obj_count_write(o);
    if (st != KL_OK) return st;
    uint8_t *d = kl_obj_bytes(&c->st, o);
    kl_cx_wipe(d, o->size);
    memcpy(d, k, n);
    o->used = (uint16_t)n;
    o->has_key = 1;
    if (o->props & KL_PROP_PERSIST) c->dirty = 1;
    return KL_OK;
}

/* ---- commands ---- */

KL_HANDLER(kl_cmd_create_object)
{
    (void)resp, (void)cap, (void)rlen;
    if (len < 20) return KL_E_BAD_LENGTH;
    uint8_t type = req[2];
    int counter = type == KL_OBJ_UPCOUNTER || type == KL_OBJ_DOWNCOUNTER;
    if (len != (counter ? 24u : 20u)) return KL_E_BAD_LENGTH;
    struct kl_obj o;
    memset(&o, 0, sizeof o);
    kl_obj_attr_get(&o, req);
    if (o.id == 0x0000 || o.id == 0xFFFF) return KL_E_BAD_PARAM;
    kl_status st =
        kl_obj_check_layout(o.type, o.props, o.size, o.rules, o.key_type, o.usage, o.alg);
    if (st != KL_OK) return st;
    /* After DELIVERY only an admin may add persistent objects. */
    if ((o.props & KL_PROP_PERSIST) && c->st.lifecycle != KL_LC_DELIVERY && !c->st.admin)
        return KL_E_AUTH_REQUIRED;
    struct kl_obj *n;
    st = kl_obj_insert(&c->st, &o, &n);
    if (st != KL_OK) return st;
    if (counter) {
        memcpy(kl_obj_bytes(&c->st, n), req + 20, 4);
        n->used = 4;
    }
    return KL_OK;
}

KL_HANDLER(kl_cmd_delete_object)
{
    (void)resp, (void)cap, (void)rlen;
    if (len != 2) return KL_E_BAD_LENGTH;
    struct kl_obj *o = kl_obj_find(c, kl_be16(req));
    if (!o) return KL_E_NOT_FOUND;
    kl_status st = kl_rules_allow(c, o, KL_RIGHT_D);
    if (st != KL_OK) return st;
    kl_obj_remove(&c->st, o->id);
    return KL_OK;
}

KL_HANDLER(kl_cmd_read_object)
{
    if (len != 6) return KL_E_BAD_LENGTH;
    uint16_t off = kl_be16(req + 2), n = kl_be16(req + 4);
    struct kl_obj *o = kl_obj_find(c, kl_be16(req));
    if (!o) return KL_E_NOT_FOUND;
    if (o->type == KL_OBJ_SECRET) return KL_E_ACCESS_DENIED; /* never leaves the chip */
    kl_status st = kl_rules_allow(c, o, KL_RIGHT_R);
    if (st != KL_OK) return st;
    if (n == 0 || n > KL_MAX_PAYLOAD) return KL_E_BAD_PARAM;
    const uint8_t *src = kl_obj_bytes(&c->st, o);
    size_t avail;
    switch (o->type) {
    case KL_OBJ_KEYPAIR: /* the public half only */
        src += KL_CX_P256_PRIV;
        avail = o->has_key ? KL_CX_P256_PUB : 0;
        break;
    case KL_OBJ_PUBKEY:
        avail = o->has_key ? KL_CX_P256_PUB : 0;
        break;
    default:
        avail = o->used;
    }
    if ((size_t)off + n > avail) return KL_E_OUT_OF_RANGE;
    if (cap < n) return KL_E_INTERNAL;
    memcpy(resp, src + off, n);
    *rlen = n;
    return KL_OK;
}

KL_HANDLER(kl_cmd_write_object)
{
    (void)resp, (void)cap, (void)rlen;
    if (len < 5) return KL_E_BAD_LENGTH;
    uint16_t off = kl_be16(req + 2);
    size_t n = len - 4;
    struct kl_obj *o = kl_obj_find(c, kl_be16(req));
    if (!o) return KL_E_NOT_FOUND;
    if (o->type != KL_OBJ_DATA && o->type != KL_OBJ_CERT) return KL_E_WRONG_TYPE;
    kl_status st = kl_rules_allow(c, o, KL_RIGHT_W);
    if (st != KL_OK) return st;
    /* A certificate can be a TLS trust anchor: after DELIVERY it changes only through the
     * import commands, which need the key-import signature; a plain write would bypass it. */
    if (o->type == KL_OBJ_CERT && c->st.lifecycle != KL_LC_DELIVERY) return KL_E_ACCESS_DENIED;
    if ((size_t)off + n > o->size) return KL_E_OUT_OF_RANGE;
    st = kl_obj_count_write(o);
    if (st != KL_OK) return st;
    memcpy(kl_obj_bytes(&c->st, o) + off, req + 4, n);
    if (off + n > o->used) o->used = (uint16_t)(off + n);
    return KL_OK;
}

KL_HANDLER(kl_cmd_list_objects)
{
    if (len != 2) return KL_E_BAD_LENGTH;
    size_t i = lower_bound(&c->st, kl_be16(req)), n = 0;
    for (; i < c->st.nobj && n < 128; i++, n++) {
        if (cap < (n + 1) * 6) return KL_E_INTERNAL;
        const struct kl_obj *o = &c->st.obj[i];
        uint8_t *e = resp + n * 6;
        kl_put16(e, o->id);
        e[2] = o->type;
        e[3] = o->props;
        kl_put16(e + 4, o->size);
    }
    *rlen = n * 6;
    return KL_OK;
}

KL_HANDLER(kl_cmd_object_info)
{
    if (len != 2) return KL_E_BAD_LENGTH;
    const struct kl_obj *o = kl_obj_find(c, kl_be16(req));
    if (!o) return KL_E_NOT_FOUND;
    if (cap < 27) return KL_E_INTERNAL;
    kl_obj_attr_put(resp, o);
    kl_put16(resp + 20, o->used);
    kl_put32(resp + 22, o->writes);
    resp[26] = o->has_key;
    *rlen = 27;
    return KL_OK;
}
