/* Registry: thing–principal attachments (a principal is a certificate ARN). */
#include <stdio.h>
#include <string.h>

#include "registry_int.h"

static kl_reg_rc need_row(sqlite3 *db, const char *sql, const char *key, const char *what,
                          struct kl_reg_err *err)
{
    sqlite3_stmt *st = kl_reg_prep(db, sql, err);
    if (!st) return KL_REG_INTERNAL;
    kl_reg_bind_text(st, 1, key);
    int s = sqlite3_step(st);
    kl_reg_done(st);
    if (s == SQLITE_ROW) return KL_REG_OK;
    if (s == SQLITE_DONE) return kl_reg_fail(err, KL_REG_NOT_FOUND, "%s %s not found", what, key);
    return kl_reg_db_fail(db, err, "lookup");
}

kl_reg_rc kl_reg_thing_attach_tx(struct kl_registry *reg, const char *thing, const char *cert_id,
                                 struct kl_reg_err *err)
{
    kl_reg_rc rc = need_row(reg->wdb, "SELECT 1 FROM things WHERE name=?", thing, "thing", err);
    if (rc == KL_REG_OK)
        rc = need_row(reg->wdb, "SELECT 1 FROM certs WHERE id=?", cert_id, "certificate", err);
    if (rc) return rc;
    sqlite3_stmt *st = kl_reg_prep(
        reg->wdb, "INSERT OR IGNORE INTO thing_principals(thing, cert_id) VALUES(?,?)", err);
    if (!st) return KL_REG_INTERNAL;
    kl_reg_bind_text(st, 1, thing);
    kl_reg_bind_text(st, 2, cert_id);
    return kl_reg_exec_stmt(reg->wdb, st, err);
}

static kl_reg_rc parse_principal(struct kl_registry *reg, const char *principal,
                                 char id[KL_REG_ID_HEX], struct kl_reg_err *err)
{
    if (!principal || !*principal) return kl_reg_fail(err, KL_REG_INVALID, "principal is required");
    if (kl_reg_principal_cert_id(reg, principal, id))
        return kl_reg_fail(err, KL_REG_INVALID,
                           "principal must be a certificate ARN arn:aws:iot:%s:%s:cert/<id>",
                           reg->region, reg->account);
    return KL_REG_OK;
}

kl_reg_rc kl_reg_thing_attach(struct kl_registry *reg, const char *thing, const char *principal,
                              struct kl_reg_err *err)
{
    char id[KL_REG_ID_HEX];
    if (!kl_reg_thing_name_ok(thing))
        return kl_reg_fail(err, KL_REG_INVALID, "thingName must be 1..128 of [a-zA-Z0-9:_-]");
    kl_reg_rc rc = parse_principal(reg, principal, id, err);
    if (rc) return rc;
    rc = kl_reg_wbegin(reg, err);
    if (rc) return rc;
    rc = kl_reg_wend(reg, kl_reg_thing_attach_tx(reg, thing, id, err), err);
    if (rc == KL_REG_OK) {
        struct kl_reg_events evs = {0};
        kl_reg_event_add(&evs, KL_REG_CHANGE_THING_PRINCIPAL, id, "");
        kl_reg_events_fire(reg, &evs);
    }
    return rc;
}

kl_reg_rc kl_reg_thing_detach(struct kl_registry *reg, const char *thing, const char *principal,
                              struct kl_reg_err *err)
{
    char id[KL_REG_ID_HEX];
    if (!kl_reg_thing_name_ok(thing))
        return kl_reg_fail(err, KL_REG_INVALID, "thingName must be 1..128 of [a-zA-Z0-9:_-]");
    kl_reg_rc rc = parse_principal(reg, principal, id, err);
    if (rc) return rc;
    rc = kl_reg_wbegin(reg, err);
    if (rc) return rc;
    rc = need_row(reg->wdb, "SELECT 1 FROM things WHERE name=?", thing, "thing", err);
    if (rc == KL_REG_OK)
        rc = need_row(reg->wdb, "SELECT 1 FROM certs WHERE id=?", id, "certificate", err);
    if (rc == KL_REG_OK) {
        sqlite3_stmt *st =
            kl_reg_prep(reg->wdb, "DELETE FROM thing_principals WHERE thing=? AND cert_id=?", err);
        if (!st) return kl_reg_wend(reg, KL_REG_INTERNAL, err);
        kl_reg_bind_text(st, 1, thing);
        kl_reg_bind_text(st, 2, id);
        rc = kl_reg_exec_stmt(reg->wdb, st, err);
    }
    rc = kl_reg_wend(reg, rc, err);
    if (rc == KL_REG_OK) {
        struct kl_reg_events evs = {0};
        kl_reg_event_add(&evs, KL_REG_CHANGE_THING_PRINCIPAL, id, "");
        kl_reg_events_fire(reg, &evs);
    }
    return rc;
}

/* One page of a two-column keyed query: column 0 is the page key, column 1 the value. */
static kl_reg_rc page_query(struct kl_registry *reg, const char *exists_sql, const char *what,
                            const char *sql, const char *owner, struct kl_reg_page *page,
                            kl_reg_str_fn fn, void *ctx, struct kl_reg_err *err)
{
    char key[KL_REG_ARN_MAX];
    kl_reg_rc rc = kl_reg_page_start(page, key, sizeof key, err);
    if (rc) return rc;
    kl_reg_rbegin(reg);
    rc = need_row(reg->rdb, exists_sql, owner, what, err);
    sqlite3_stmt *st = rc ? NULL : kl_reg_prep(reg->rdb, sql, err);
    if (!st) {
        kl_reg_rend(reg);
        return rc ? rc : KL_REG_INTERNAL;
    }
    kl_reg_bind_text(st, 1, owner);
    kl_reg_bind_text(st, 2, key);
    sqlite3_bind_int(st, 3, page->limit + 1);
    return kl_reg_page_strings(reg, st, page, 1, fn, ctx, rc, "list", err);
}

kl_reg_rc kl_reg_thing_principals(struct kl_registry *reg, const char *thing,
                                  struct kl_reg_page *page, kl_reg_str_fn fn, void *ctx,
                                  struct kl_reg_err *err)
{
    if (!kl_reg_thing_name_ok(thing))
        return kl_reg_fail(err, KL_REG_INVALID, "thingName must be 1..128 of [a-zA-Z0-9:_-]");
    char sql[320];
    snprintf(sql, sizeof sql,
             "SELECT cert_id, 'arn:aws:iot:%s:%s:cert/' || cert_id FROM thing_principals "
             "WHERE thing=?1 AND cert_id>?2 ORDER BY cert_id LIMIT ?3",
             reg->region, reg->account);
    return page_query(reg, "SELECT 1 FROM things WHERE name=?", "thing", sql, thing, page, fn, ctx,
                      err);
}

kl_reg_rc kl_reg_principal_things(struct kl_registry *reg, const char *principal,
                                  struct kl_reg_page *page, kl_reg_str_fn fn, void *ctx,
                                  struct kl_reg_err *err)
{
    char id[KL_REG_ID_HEX];
    kl_reg_rc rc = parse_principal(reg, principal, id, err);
    if (rc) return rc;
    return page_query(reg, "SELECT 1 FROM certs WHERE id=?", "certificate",
                      "SELECT thing, thing FROM thing_principals WHERE cert_id=?1 AND thing>?2 "
                      "ORDER BY thing LIMIT ?3",
                      id, page, fn, ctx, err);
}
