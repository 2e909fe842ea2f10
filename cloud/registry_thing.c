/* Registry: things (create, update with version check, delete, list with filters). */
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "registry_int.h"

#define THING_COLS "name, id, type, attributes, version"

static const char name_chars[] =
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789:_-";
static const char attr_name_chars[] =
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.,@/:#-";
static const char attr_value_chars[] =
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.,@/:#=[]-";

int kl_reg_thing_name_ok(const char *name)
{
    size_t n = name ? strlen(name) : 0;
    return n >= 1 && n <= 128 && strspn(name, name_chars) == n;
}

void kl_reg_thing_clear(struct kl_reg_thing *t)
{
    if (!t) return;
    free(t->attributes);
    t->attributes = NULL;
}

static kl_reg_rc attrs_check(json_t *o, struct kl_reg_err *err)
{
    if (!json_is_object(o))
        return kl_reg_fail(err, KL_REG_INVALID, "attributes must be a JSON object");
    if (json_object_size(o) > 50) return kl_reg_fail(err, KL_REG_INVALID, "at most 50 attributes");
    const char *k;
    json_t *v;
    json_object_foreach(o, k, v)
    {
        size_t kl = strlen(k);
        if (kl == 0 || kl > 128 || strspn(k, attr_name_chars) != kl)
            return kl_reg_fail(err, KL_REG_INVALID,
                               "attribute names are 1..128 of [a-zA-Z0-9_.,@/:#-]");
        const char *s = json_string_value(v);
        size_t vl = s ? strlen(s) : 0;
        if (!s || vl > 800 || strspn(s, attr_value_chars) != vl)
            return kl_reg_fail(err, KL_REG_INVALID,
                               "attribute values are strings of 0..800 of [a-zA-Z0-9_.,@/:#=[]-]");
    }
    return KL_REG_OK;
}

kl_reg_rc kl_reg_attributes_check(const char *attributes_json, struct kl_reg_err *err)
{
    json_t *o = json_loads(attributes_json ? attributes_json : "{}", JSON_REJECT_DUPLICATES, NULL);
    kl_reg_rc rc =
        o ? attrs_check(o, err) : kl_reg_fail(err, KL_REG_INVALID, "attributes are not valid JSON");
    json_decref(o);
    return rc;
}

/* Attributes without empty values, as compact JSON with sorted keys (malloc'd). */
static char *attrs_dump(json_t *o)
{
    const char *k;
    json_t *v;
    void *tmp;
    json_object_foreach_safe(o, tmp, k, v)
    {
        if (!*json_string_value(v)) json_object_del(o, k);
    }
    return json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
}

static void thing_row(struct kl_registry *reg, sqlite3_stmt *st, struct kl_reg_thing *t)
{
    memset(t, 0, sizeof *t);
    kl_reg_col_copy(st, 0, t->name, sizeof t->name);
    kl_reg_thing_arn(reg, t->name, t->arn, sizeof t->arn);
    kl_reg_col_copy(st, 1, t->id, sizeof t->id);
    kl_reg_col_copy(st, 2, t->type, sizeof t->type);
    t->attributes = kl_reg_col_dup(st, 3);
    t->version = sqlite3_column_int64(st, 4);
}

kl_reg_rc kl_reg_thing_create_tx(struct kl_registry *reg, const char *name, const char *type,
                                 const char *attributes, int *created, struct kl_reg_err *err)
{
    if (created) *created = 0;
    if (!kl_reg_thing_name_ok(name))
        return kl_reg_fail(err, KL_REG_INVALID, "thingName must be 1..128 of [a-zA-Z0-9:_-]");
    if (type && *type && !kl_reg_thing_name_ok(type))
        return kl_reg_fail(err, KL_REG_INVALID, "thingTypeName must be 1..128 of [a-zA-Z0-9:_-]");
    json_t *o = json_loads(attributes ? attributes : "{}", JSON_REJECT_DUPLICATES, NULL);
    kl_reg_rc rc =
        o ? attrs_check(o, err) : kl_reg_fail(err, KL_REG_INVALID, "attributes are not valid JSON");
    char *text = rc ? NULL : attrs_dump(o);
    json_decref(o);
    if (rc) return rc;
    if (!text) return kl_reg_fail(err, KL_REG_INTERNAL, "out of memory");
    char uuid[40];
    kl_reg_uuid(uuid);
    sqlite3_stmt *st = kl_reg_prep(reg->wdb,
                                   "INSERT INTO things(name, id, type, attributes, version) "
                                   "VALUES(?,?,?,?,1) ON CONFLICT DO NOTHING",
                                   err);
    if (!st) {
        free(text);
        return KL_REG_INTERNAL;
    }
    kl_reg_bind_text(st, 1, name);
    kl_reg_bind_text(st, 2, uuid);
    kl_reg_bind_text(st, 3, type ? type : "");
    sqlite3_bind_text(st, 4, text, -1, free);
    rc = kl_reg_exec_stmt(reg->wdb, st, err);
    if (rc == KL_REG_OK && sqlite3_changes(reg->wdb) == 0)
        return created ? KL_REG_OK
                       : kl_reg_fail(err, KL_REG_EXISTS, "thing %s already exists", name);
    if (rc == KL_REG_OK && created) *created = 1;
    return rc;
}

kl_reg_rc kl_reg_thing_create(struct kl_registry *reg, const char *name, const char *type,
                              const char *attributes, struct kl_reg_thing *out,
                              struct kl_reg_err *err)
{
    kl_reg_rc rc = kl_reg_wbegin(reg, err);
    if (rc) return rc;
    rc = kl_reg_wend(reg, kl_reg_thing_create_tx(reg, name, type, attributes, NULL, err), err);
    if (rc == KL_REG_OK && out) rc = kl_reg_thing_get(reg, name, out, err);
    return rc;
}

kl_reg_rc kl_reg_thing_get(struct kl_registry *reg, const char *name, struct kl_reg_thing *out,
                           struct kl_reg_err *err)
{
    if (!kl_reg_thing_name_ok(name))
        return kl_reg_fail(err, KL_REG_INVALID, "thingName must be 1..128 of [a-zA-Z0-9:_-]");
    kl_reg_rbegin(reg);
    kl_reg_rc rc = KL_REG_OK;
    sqlite3_stmt *st = kl_reg_prep(reg->rdb, "SELECT " THING_COLS " FROM things WHERE name=?", err);
    if (!st) {
        rc = KL_REG_INTERNAL;
    } else {
        kl_reg_bind_text(st, 1, name);
        int s = sqlite3_step(st);
        if (s == SQLITE_ROW)
            thing_row(reg, st, out);
        else if (s == SQLITE_DONE)
            rc = kl_reg_fail(err, KL_REG_NOT_FOUND, "thing %s not found", name);
        else
            rc = kl_reg_db_fail(reg->rdb, err, "thing get");
        kl_reg_done(st);
    }
    kl_reg_rend(reg);
    return rc;
}

kl_reg_rc kl_reg_thing_update(struct kl_registry *reg, const char *name, const char *type,
                              int remove_type, const char *attributes, int merge,
                              int64_t expected_version, struct kl_reg_err *err)
{
    if (!kl_reg_thing_name_ok(name))
        return kl_reg_fail(err, KL_REG_INVALID, "thingName must be 1..128 of [a-zA-Z0-9:_-]");
    if (type && *type && !kl_reg_thing_name_ok(type))
        return kl_reg_fail(err, KL_REG_INVALID, "thingTypeName must be 1..128 of [a-zA-Z0-9:_-]");
    if (type && remove_type)
        return kl_reg_fail(err, KL_REG_INVALID, "thingTypeName and removeThingType conflict");
    json_t *upd = NULL;
    if (attributes) {
        upd = json_loads(attributes, JSON_REJECT_DUPLICATES, NULL);
        kl_reg_rc rc = upd ? attrs_check(upd, err)
                           : kl_reg_fail(err, KL_REG_INVALID, "attributes are not valid JSON");
        if (rc) {
            json_decref(upd);
            return rc;
        }
    }
    kl_reg_rc rc = kl_reg_wbegin(reg, err);
    if (rc) {
        json_decref(upd);
        return rc;
    }
    sqlite3_stmt *st =
        kl_reg_prep(reg->wdb, "SELECT attributes, version FROM things WHERE name=?", err);
    char *text = NULL;
    if (!st) {
        rc = KL_REG_INTERNAL;
    } else {
        kl_reg_bind_text(st, 1, name);
        int s = sqlite3_step(st);
        if (s == SQLITE_DONE) {
            rc = kl_reg_fail(err, KL_REG_NOT_FOUND, "thing %s not found", name);
        } else if (s != SQLITE_ROW) {
            rc = kl_reg_db_fail(reg->wdb, err, "thing update");
        } else if (expected_version >= 0 && sqlite3_column_int64(st, 1) != expected_version) {
            rc = kl_reg_fail(err, KL_REG_VERSION_CONFLICT,
                             "expectedVersion %lld does not match the thing's version %lld",
                             (long long)expected_version, (long long)sqlite3_column_int64(st, 1));
        } else if (upd) {
            json_t *base = merge ? json_loads((const char *)sqlite3_column_text(st, 0), 0, NULL)
                                 : json_object();
            if (!base) base = json_object();
            json_object_update(base, upd);
            if (json_object_size(base) > 50)
                rc = kl_reg_fail(err, KL_REG_INVALID, "at most 50 attributes");
            else if (!(text = attrs_dump(base)))
                rc = kl_reg_fail(err, KL_REG_INTERNAL, "out of memory");
            json_decref(base);
        }
        kl_reg_done(st);
    }
    json_decref(upd);
    if (rc == KL_REG_OK) {
        st = kl_reg_prep(reg->wdb,
                         "UPDATE things SET attributes=coalesce(?2, attributes), "
                         "type=CASE WHEN ?4 THEN '' ELSE coalesce(?3, type) END, "
                         "version=version+1 WHERE name=?1",
                         err);
        if (!st) {
            rc = KL_REG_INTERNAL;
        } else {
            kl_reg_bind_text(st, 1, name);
            kl_reg_bind_text(st, 2, text);
            kl_reg_bind_text(st, 3, type);
            sqlite3_bind_int(st, 4, remove_type ? 1 : 0);
            rc = kl_reg_exec_stmt(reg->wdb, st, err);
        }
    }
    free(text);
    return kl_reg_wend(reg, rc, err);
}

kl_reg_rc kl_reg_thing_delete(struct kl_registry *reg, const char *name, int64_t expected_version,
                              struct kl_reg_err *err)
{
    if (!kl_reg_thing_name_ok(name))
        return kl_reg_fail(err, KL_REG_INVALID, "thingName must be 1..128 of [a-zA-Z0-9:_-]");
    kl_reg_rc rc = kl_reg_wbegin(reg, err);
    if (rc) return rc;
    sqlite3_stmt *st = kl_reg_prep(
        reg->wdb,
        "SELECT version, (SELECT count(*) FROM thing_principals WHERE thing=?1) FROM things "
        "WHERE name=?1",
        err);
    if (!st) return kl_reg_wend(reg, KL_REG_INTERNAL, err);
    kl_reg_bind_text(st, 1, name);
    int s = sqlite3_step(st), gone = 0;
    if (s == SQLITE_DONE)
        gone = 1; /* AWS: deleting a thing that does not exist succeeds */
    else if (s != SQLITE_ROW)
        rc = kl_reg_db_fail(reg->wdb, err, "thing delete");
    else if (expected_version >= 0 && sqlite3_column_int64(st, 0) != expected_version)
        rc = kl_reg_fail(err, KL_REG_VERSION_CONFLICT,
                         "expectedVersion does not match the thing's version");
    else if (sqlite3_column_int64(st, 1) > 0)
        rc = kl_reg_fail(err, KL_REG_INVALID, "thing %s has principals attached; detach them first",
                         name);
    kl_reg_done(st);
    if (rc == KL_REG_OK && !gone) {
        st = kl_reg_prep(reg->wdb, "DELETE FROM things WHERE name=?", err);
        if (!st) return kl_reg_wend(reg, KL_REG_INTERNAL, err);
        kl_reg_bind_text(st, 1, name);
        rc = kl_reg_exec_stmt(reg->wdb, st, err);
    }
    rc = kl_reg_wend(reg, rc, err);
    if (rc == KL_REG_OK && !gone) {
        struct kl_reg_events evs = {0};
        kl_reg_event_add(&evs, KL_REG_CHANGE_THING_DELETED, name, "");
        kl_reg_events_fire(reg, &evs);
    }
    return rc;
}

kl_reg_rc kl_reg_thing_list(struct kl_registry *reg, const char *attr_name, const char *attr_value,
                            const char *type, struct kl_reg_page *page, kl_reg_thing_fn fn,
                            void *ctx, struct kl_reg_err *err)
{
    char key[KL_REG_ARN_MAX], path[160] = "";
    kl_reg_rc rc = kl_reg_page_start(page, key, sizeof key, err);
    if (rc) return rc;
    if (attr_name) {
        size_t n = strlen(attr_name);
        if (n == 0 || n > 128 || strspn(attr_name, attr_name_chars) != n)
            return kl_reg_fail(err, KL_REG_INVALID, "attributeName is not a valid name");
        /* the name's characters exclude '"', so the JSON path cannot be escaped */
        snprintf(path, sizeof path, "$.\"%s\"", attr_name);
    } else if (attr_value) {
        return kl_reg_fail(err, KL_REG_INVALID, "attributeValue needs attributeName");
    }
    const char *sql = page->descending
                          ? "SELECT " THING_COLS
                            " FROM things WHERE (?1='' OR name<?1) AND (?3 IS NULL OR "
                            "json_extract(attributes, ?3) IS NOT NULL) AND (?4 IS NULL OR "
                            "json_extract(attributes, ?3)=?4) AND (?5 IS NULL OR type=?5) "
                            "ORDER BY name DESC LIMIT ?2"
                          : "SELECT " THING_COLS " FROM things WHERE name>?1 AND (?3 IS NULL OR "
                            "json_extract(attributes, ?3) IS NOT NULL) AND (?4 IS NULL OR "
                            "json_extract(attributes, ?3)=?4) AND (?5 IS NULL OR type=?5) "
                            "ORDER BY name LIMIT ?2";
    kl_reg_rbegin(reg);
    sqlite3_stmt *st = kl_reg_prep(reg->rdb, sql, err);
    if (!st) {
        kl_reg_rend(reg);
        return KL_REG_INTERNAL;
    }
    kl_reg_bind_text(st, 1, key);
    sqlite3_bind_int(st, 2, page->limit + 1);
    kl_reg_bind_text(st, 3, attr_name ? path : NULL);
    kl_reg_bind_text(st, 4, attr_value);
    kl_reg_bind_text(st, 5, type);
    int n = 0, s;
    char last[KL_REG_NAME_MAX] = "";
    while ((s = sqlite3_step(st)) == SQLITE_ROW) {
        if (n == page->limit) {
            kl_reg_token_encode(last, page->next_token, sizeof page->next_token);
            break;
        }
        struct kl_reg_thing t;
        thing_row(reg, st, &t);
        memcpy(last, t.name, sizeof last);
        n++;
        int stop = fn(ctx, &t);
        kl_reg_thing_clear(&t);
        if (stop) break;
    }
    if (s != SQLITE_ROW && s != SQLITE_DONE) rc = kl_reg_db_fail(reg->rdb, err, "thing list");
    kl_reg_done(st);
    kl_reg_rend(reg);
    return rc;
}
