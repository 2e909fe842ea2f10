/* Object commands: create, delete, info, read/write (chunked), list, counters, and the
 * key commands that act on objects (generate, public key, import). */
#include <string.h>

#include "keylink/se.h"
#include "se_wire.h"

#define ATTR_LEN 20u /* CREATE_OBJECT layout without the counter value */

static void put_attr(uint8_t *b, const struct kl_se_object_attr *a)
{
    kl_put16(b, a->id);
    b[2] = a->type;
    b[3] = a->props;
    kl_put16(b + 4, a->size);
    memcpy(b + 6, a->rules, 9);
    b[15] = a->key_type;
    b[16] = a->usage1;
    b[17] = a->alg1;
    b[18] = a->usage2;
    b[19] = a->alg2;
}

static void get_attr(const uint8_t *b, struct kl_se_object_attr *a)
{
    memset(a, 0, sizeof *a);
    a->id = kl_get16(b);
    a->type = b[2];
    a->props = b[3];
    a->size = kl_get16(b + 4);
    memcpy(a->rules, b + 6, 9);
    a->key_type = b[15];
    a->usage1 = b[16];
    a->alg1 = b[17];
    a->usage2 = b[18];
    a->alg2 = b[19];
}

static int is_counter(uint8_t type)
{
    return type == KL_SE_OBJ_UP_COUNTER || type == KL_SE_OBJ_DOWN_COUNTER;
}

kl_status kl_se_create_object(struct kl_se *se, const struct kl_se_object_attr *a)
{
    if (!se || !a) return KL_E_ARG;
    uint8_t b[ATTR_LEN + 4];
    put_attr(b, a);
    size_t n = ATTR_LEN;
    if (is_counter(a->type)) {
        kl_put32(b + ATTR_LEN, a->initial);
        n += 4;
    }
    return kl_se_command(se, KL_CMD_CREATE_OBJECT, b, n, NULL, 0, NULL);
}

kl_status kl_se_delete_object(struct kl_se *se, uint16_t id)
{
    if (!se) return KL_E_ARG;
    uint8_t b[2];
    kl_put16(b, id);
    return kl_se_command(se, KL_CMD_DELETE_OBJECT, b, 2, NULL, 0, NULL);
}

kl_status kl_se_object_info(struct kl_se *se, uint16_t id, struct kl_se_object_info *info)
{
    if (!se || !info) return KL_E_ARG;
    uint8_t b[2], r[ATTR_LEN + 7];
    kl_put16(b, id);
    size_t n = 0;
    kl_status st = kl_se_command(se, KL_CMD_OBJECT_INFO, b, 2, r, sizeof r, &n);
    if (st == KL_E_BUFFER || (st == KL_OK && n != sizeof r)) return KL_E_PROTOCOL;
    if (st != KL_OK) return st;
    get_attr(r, &info->attr);
    info->used = kl_get16(r + ATTR_LEN);
    info->write_count = kl_get32(r + ATTR_LEN + 2);
    info->has_key = r[ATTR_LEN + 6];
    return KL_OK;
}

kl_status kl_se_read_object_at(struct kl_se *se, uint16_t id, uint16_t offset, uint8_t *buf,
                               size_t len)
{
    if (!se || (len && !buf)) return KL_E_ARG;
    if ((size_t)offset + len > 0xFFFFu + 1u) return KL_E_ARG;
    size_t done = 0;
    do {
        size_t part = len - done > KL_SE_CHUNK ? KL_SE_CHUNK : len - done;
        uint8_t b[6];
        kl_put16(b, id);
        kl_put16(b + 2, (uint16_t)(offset + done));
        kl_put16(b + 4, (uint16_t)part);
        size_t n = 0;
        kl_status st = kl_se_command(se, KL_CMD_READ_OBJECT, b, 6, buf + done, part, &n);
        if (st == KL_E_BUFFER) return KL_E_PROTOCOL;
        if (st != KL_OK) return st;
        if (n != part) return KL_E_PROTOCOL;
        done += part;
    } while (done < len);
    return KL_OK;
}

kl_status kl_se_read_object(struct kl_se *se, uint16_t id, uint8_t *buf, size_t cap, size_t *len)
{
    if (!se || !len || (cap && !buf)) return KL_E_ARG;
    *len = 0;
    struct kl_se_object_info info;
    kl_status st = kl_se_object_info(se, id, &info);
    if (st != KL_OK) return st;
    size_t want = info.used;
    if (info.attr.type == KL_SE_OBJ_KEY_PAIR || info.attr.type == KL_SE_OBJ_PUBLIC_KEY)
        want = info.has_key ? 64 : 0;
    else if (is_counter(info.attr.type))
        want = 4;
    if (want > cap) return KL_E_BUFFER;
    if (want == 0) {
        if (info.attr.type == KL_SE_OBJ_SECRET_KEY) return KL_E_ACCESS_DENIED;
        return KL_OK;
    }
    st = kl_se_read_object_at(se, id, 0, buf, want);
    if (st == KL_OK) *len = want;
    return st;
}

kl_status kl_se_write_object(struct kl_se *se, uint16_t id, uint16_t offset, const uint8_t *data,
                             size_t len)
{
    if (!se || (len && !data)) return KL_E_ARG;
    if ((size_t)offset + len > 0xFFFFu + 1u) return KL_E_ARG;
    size_t done = 0;
    do {
        size_t part = len - done > KL_SE_CHUNK ? KL_SE_CHUNK : len - done;
        kl_put16(se->req, id);
        kl_put16(se->req + 2, (uint16_t)(offset + done));
        if (part) memcpy(se->req + 4, data + done, part);
        kl_status st = kl_se_command(se, KL_CMD_WRITE_OBJECT, se->req, 4 + part, NULL, 0, NULL);
        if (st != KL_OK) return st;
        done += part;
    } while (done < len);
    return KL_OK;
}

kl_status kl_se_list_page(struct kl_se *se, uint16_t start_id, struct kl_se_list_entry *out,
                          size_t cap, size_t *count)
{
    if (!se || !count || (cap && !out)) return KL_E_ARG;
    *count = 0;
    uint8_t b[2];
    kl_put16(b, start_id);
    size_t n = 0;
    /* the answer lands in se->req (free while no request is being built) */
    kl_status st = kl_se_command(se, KL_CMD_LIST_OBJECTS, b, 2, se->req, sizeof se->req, &n);
    if (st != KL_OK) return st;
    if (n % 6 || n / 6 > 128) return KL_E_PROTOCOL;
    size_t k = n / 6;
    uint32_t prev = 0;
    for (size_t i = 0; i < k; i++) {
        const uint8_t *e = se->req + 6 * i;
        uint16_t id = kl_get16(e);
        /* ascending and >= start, or the paging loop could spin */
        if (id < start_id || (i && id <= prev)) return KL_E_PROTOCOL;
        prev = id;
        if (i >= cap) return KL_E_BUFFER;
        out[i].id = id;
        out[i].type = e[2];
        out[i].props = e[3];
        out[i].size = kl_get16(e + 4);
        *count = i + 1;
    }
    return KL_OK;
}

kl_status kl_se_list(struct kl_se *se, struct kl_se_list_entry *out, size_t cap, size_t *count)
{
    if (!se || !count || (cap && !out)) return KL_E_ARG;
    *count = 0;
    uint32_t start = 0;
    struct kl_se_list_entry page[128];
    for (;;) {
        size_t k = 0;
        kl_status st = kl_se_list_page(se, (uint16_t)start, page, 128, &k);
        if (st != KL_OK) return st;
        for (size_t i = 0; i < k; i++) {
            if (*count >= cap) return KL_E_BUFFER;
            out[(*count)++] = page[i];
        }
        if (k < 128) return KL_OK;
        start = (uint32_t)page[k - 1].id + 1;
        if (start > 0xFFFF) return KL_OK;
    }
}

kl_status kl_se_counter_update(struct kl_se *se, uint16_t id, uint32_t step, uint32_t *value)
{
    if (!se) return KL_E_ARG;
    uint8_t b[6], r[4];
    kl_put16(b, id);
    kl_put32(b + 2, step);
    size_t n = 0;
    kl_status st = kl_se_command(se, KL_CMD_COUNTER_UPDATE, b, 6, r, 4, &n);
    if (st == KL_E_BUFFER || (st == KL_OK && n != 4)) return KL_E_PROTOCOL;
    if (st == KL_OK && value) *value = kl_get32(r);
    return st;
}

kl_status kl_se_counter_read(struct kl_se *se, uint16_t id, uint32_t *value)
{
    if (!se || !value) return KL_E_ARG;
    struct kl_se_object_info info;
    kl_status st = kl_se_object_info(se, id, &info);
    if (st != KL_OK) return st;
    if (!is_counter(info.attr.type)) return KL_E_WRONG_TYPE;
    uint8_t r[4];
    st = kl_se_read_object_at(se, id, 0, r, 4);
    if (st == KL_OK) *value = kl_get32(r);
    return st;
}

kl_status kl_se_generate_key(struct kl_se *se, uint16_t id, uint8_t pub[64])
{
    if (!se) return KL_E_ARG;
    uint8_t b[2], r[64];
    kl_put16(b, id);
    size_t n = 0;
    kl_status st = kl_se_command(se, KL_CMD_GENERATE_KEY, b, 2, r, sizeof r, &n);
    if (st == KL_E_BUFFER || (st == KL_OK && n != 0 && n != 64)) return KL_E_PROTOCOL;
    if (st == KL_OK && pub) {
        if (n != 64) return KL_E_WRONG_TYPE; /* a secret key has no public half */
        memcpy(pub, r, 64);
    }
    return st;
}

kl_status kl_se_get_public_key(struct kl_se *se, uint16_t id, uint8_t pub[64])
{
    if (!se || !pub) return KL_E_ARG;
    return kl_se_read_object_at(se, id, 0, pub, 64);
}

kl_status kl_se_import_key_tbs(uint16_t id, const uint8_t *material, size_t len, uint8_t *out,
                               size_t cap, size_t *out_len)
{
    if (!out || !out_len || (len && !material)) return KL_E_ARG;
    if (len > KL_FRAME_MAX_PAYLOAD - 4 - 64) return KL_E_BAD_LENGTH;
    if (cap < 4 + len) return KL_E_BUFFER;
    kl_put16(out, id);
    kl_put16(out + 2, (uint16_t)len);
    if (len) memmove(out + 4, material, len);
    *out_len = 4 + len;
    return KL_OK;
}

kl_status kl_se_import_key(struct kl_se *se, uint16_t id, const uint8_t *material, size_t len,
                           const uint8_t sig[64])
{
    if (!se) return KL_E_ARG;
    size_t n = 0;
    kl_status st = kl_se_import_key_tbs(id, material, len, se->req, sizeof se->req, &n);
    if (st != KL_OK) return st;
    if (sig) {
        memcpy(se->req + n, sig, 64);
        n += 64;
    }
    st = kl_se_command(se, KL_CMD_IMPORT_KEY, se->req, n, NULL, 0, NULL);
    memset(se->req, 0, n); /* the request held key material */
    return st;
}
