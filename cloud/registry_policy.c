/* Registry: IoT policies, their versions, and policy–principal attachments. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy.h"
#include "registry_int.h"

#define KL_POLICY_MAX_VERSIONS 5

static const char policy_chars[] =
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+=,.@_-";

int kl_reg_policy_name_ok(const char *name)
{
    size_t n = name ? strlen(name) : 0;
    return n >= 1 && n <= 128 && strspn(name, policy_chars) == n;
}

void kl_reg_policy_clear(struct kl_reg_policy *p)
{
    if (!p) return;
    free(p->document);
    p->document = NULL;
}

static kl_reg_rc check_name(const char *name, struct kl_reg_err *err)
{
    if (!kl_reg_policy_name_ok(name))
        return kl_reg_fail(err, KL_REG_INVALID, "policyName must be 1..128 of [a-zA-Z0-9+=,.@_-]");
    return KL_REG_OK;
}

static kl_reg_rc check_doc(const char *doc, struct kl_reg_err *err)
{
    char msg[160];
    if (kl_policy_check(doc, msg, sizeof msg))
        return kl_reg_fail(err, KL_REG_MALFORMED_POLICY, "%s", msg);
    return KL_REG_OK;
}

static void policy_changed(struct kl_registry *reg, const char *name)
{
    struct kl_reg_events evs = {0};
    kl_reg_event_add(&evs, KL_REG_CHANGE_POLICY, name, "");
    kl_reg_events_fire(reg, &evs);
}

kl_reg_rc kl_reg_policy_create(struct kl_registry *reg, const char *name, const char *document,
                               struct kl_reg_policy *out, struct kl_reg_err *err)
{
    kl_reg_rc rc = check_name(name, err);
    if (rc == KL_REG_OK) rc = check_doc(document, err);
    char gen[KL_REG_ID_HEX];
    if (rc == KL_REG_OK && kl_reg_random_hex(gen, 32))
        rc = kl_reg_fail(err, KL_REG_INTERNAL, "no randomness");
    if (rc) return rc;
    rc = kl_reg_wbegin(reg, err);
    if (rc) return rc;
    int64_t now = kl_reg_now();
    sqlite3_stmt *st = kl_reg_prep(reg->wdb,
                                   "INSERT INTO policies(name, default_version, next_version, "
                                   "created, modified, generation) VALUES(?,1,2,?,?,?) "
                                   "ON CONFLICT DO NOTHING",
                                   err);
    if (!st) return kl_reg_wend(reg, KL_REG_INTERNAL, err);
    kl_reg_bind_text(st, 1, name);
    sqlite3_bind_int64(st, 2, now);
    sqlite3_bind_int64(st, 3, now);
    kl_reg_bind_text(st, 4, gen);
    rc = kl_reg_exec_stmt(reg->wdb, st, err);
    if (rc == KL_REG_OK && sqlite3_changes(reg->wdb) == 0)
        rc = kl_reg_fail(err, KL_REG_EXISTS, "policy %s already exists", name);
    if (rc == KL_REG_OK) {
        st = kl_reg_prep(reg->wdb,
                         "INSERT INTO policy_versions(policy, version, document, created) "
                         "VALUES(?,1,?,?)",
                         err);
        if (!st) return kl_reg_wend(reg, KL_REG_INTERNAL, err);
        kl_reg_bind_text(st, 1, name);
        kl_reg_bind_text(st, 2, document);
        sqlite3_bind_int64(st, 3, now);
        rc = kl_reg_exec_stmt(reg->wdb, st, err);
    }
    rc = kl_reg_wend(reg, rc, err);
    if (rc == KL_REG_OK && out) rc = kl_reg_policy_get(reg, name, out, err);
    return rc;
}

kl_reg_rc kl_reg_policy_version_create(struct kl_registry *reg, const char *name,
                                       const char *document, int set_default, char version[16],
                                       struct kl_reg_err *err)
{
    kl_reg_rc rc = check_name(name, err);
    if (rc == KL_REG_OK) rc = check_doc(document, err);
    if (rc) return rc;
    rc = kl_reg_wbegin(reg, err);
    if (rc) return rc;
    sqlite3_stmt *st =
        kl_reg_prep(reg->wdb,
                    "SELECT next_version, (SELECT count(*) FROM policy_versions WHERE policy=?1) "
                    "FROM policies WHERE name=?1",
                    err);
    if (!st) return kl_reg_wend(reg, KL_REG_INTERNAL, err);
    kl_reg_bind_text(st, 1, name);
    int s = sqlite3_step(st);
    int64_t v = 0;
    if (s == SQLITE_DONE)
        rc = kl_reg_fail(err, KL_REG_NOT_FOUND, "policy %s not found", name);
    else if (s != SQLITE_ROW)
        rc = kl_reg_db_fail(reg->wdb, err, "policy version");
    else if (sqlite3_column_int64(st, 1) >= KL_POLICY_MAX_VERSIONS)
        rc = kl_reg_fail(err, KL_REG_LIMIT, "a policy has at most %d versions",
                         KL_POLICY_MAX_VERSIONS);
    else
        v = sqlite3_column_int64(st, 0);
    kl_reg_done(st);
    if (rc == KL_REG_OK) {
        st = kl_reg_prep(reg->wdb,
                         "INSERT INTO policy_versions(policy, version, document, created) "
                         "VALUES(?,?,?,?)",
                         err);
        if (!st) return kl_reg_wend(reg, KL_REG_INTERNAL, err);
        kl_reg_bind_text(st, 1, name);
        sqlite3_bind_int64(st, 2, v);
        kl_reg_bind_text(st, 3, document);
        sqlite3_bind_int64(st, 4, kl_reg_now());
        rc = kl_reg_exec_stmt(reg->wdb, st, err);
    }
    if (rc == KL_REG_OK) {
        st = kl_reg_prep(reg->wdb,
                         "UPDATE policies SET next_version=?2+1, modified=?3, "
                         "default_version=CASE WHEN ?4 THEN ?2 ELSE default_version END "
                         "WHERE name=?1",
                         err);
        if (!st) return kl_reg_wend(reg, KL_REG_INTERNAL, err);
        kl_reg_bind_text(st, 1, name);
        sqlite3_bind_int64(st, 2, v);
        sqlite3_bind_int64(st, 3, kl_reg_now());
        sqlite3_bind_int(st, 4, set_default ? 1 : 0);
        rc = kl_reg_exec_stmt(reg->wdb, st, err);
    }
    rc = kl_reg_wend(reg, rc, err);
    if (rc == KL_REG_OK) {
        snprintf(version, 16, "%lld", (long long)v);
        if (set_default) policy_changed(reg, name);
    }
    return rc;
}

kl_reg_rc kl_reg_policy_get(struct kl_registry *reg, const char *name, struct kl_reg_policy *out,
                            struct kl_reg_err *err)
{
    kl_reg_rc rc = check_name(name, err);
    if (rc) return rc;
    kl_reg_rbegin(reg);
    sqlite3_stmt *st = kl_reg_prep(
        reg->rdb,
        "SELECT p.name, p.default_version, p.created, p.modified, p.generation, v.document "
        "FROM policies p JOIN policy_versions v ON v.policy=p.name AND "
        "v.version=p.default_version WHERE p.name=?",
        err);
    if (!st) {
        rc = KL_REG_INTERNAL;
    } else {
        kl_reg_bind_text(st, 1, name);
        int s = sqlite3_step(st);
        if (s == SQLITE_ROW) {
            memset(out, 0, sizeof *out);
            kl_reg_col_copy(st, 0, out->name, sizeof out->name);
            kl_reg_policy_arn(reg, out->name, out->arn, sizeof out->arn);
            kl_reg_col_copy(st, 1, out->default_version, sizeof out->default_version);
            out->created = sqlite3_column_int64(st, 2);
            out->modified = sqlite3_column_int64(st, 3);
            kl_reg_col_copy(st, 4, out->generation_id, sizeof out->generation_id);
            out->document = kl_reg_col_dup(st, 5);
        } else if (s == SQLITE_DONE) {
            rc = kl_reg_fail(err, KL_REG_NOT_FOUND, "policy %s not found", name);
        } else {
            rc = kl_reg_db_fail(reg->rdb, err, "policy get");
        }
        kl_reg_done(st);
    }
    kl_reg_rend(reg);
    return rc;
}

kl_reg_rc kl_reg_policy_delete(struct kl_registry *reg, const char *name, struct kl_reg_err *err)
{
    kl_reg_rc rc = check_name(name, err);
    if (rc) return rc;
    rc = kl_reg_wbegin(reg, err);
    if (rc) return rc;
    sqlite3_stmt *st = kl_reg_prep(
        reg->wdb,
        "SELECT (SELECT count(*) FROM policy_targets WHERE policy=?1), "
        "(SELECT count(*) FROM policy_versions WHERE policy=?1) FROM policies WHERE name=?1",
        err);
    if (!st) return kl_reg_wend(reg, KL_REG_INTERNAL, err);
    kl_reg_bind_text(st, 1, name);
    int s = sqlite3_step(st);
    if (s == SQLITE_DONE)
        rc = kl_reg_fail(err, KL_REG_NOT_FOUND, "policy %s not found", name);
    else if (s != SQLITE_ROW)
        rc = kl_reg_db_fail(reg->wdb, err, "policy delete");
    else if (sqlite3_column_int64(st, 0) > 0)
        rc = kl_reg_fail(err, KL_REG_DELETE_CONFLICT,
                         "policy %s is attached to principals; detach it first", name);
    else if (sqlite3_column_int64(st, 1) > 1)
        rc = kl_reg_fail(err, KL_REG_DELETE_CONFLICT,
                         "policy %s has non-default versions; delete them first", name);
    kl_reg_done(st);
    static const char *const del[] = {"DELETE FROM policy_versions WHERE policy=?",
                                      "DELETE FROM policies WHERE name=?"};
    for (int i = 0; i < 2 && rc == KL_REG_OK; i++) {
        st = kl_reg_prep(reg->wdb, del[i], err);
        if (!st) return kl_reg_wend(reg, KL_REG_INTERNAL, err);
        kl_reg_bind_text(st, 1, name);
        rc = kl_reg_exec_stmt(reg->wdb, st, err);
    }
    rc = kl_reg_wend(reg, rc, err);
    if (rc == KL_REG_OK) policy_changed(reg, name);
    return rc;
}

kl_reg_rc kl_reg_policy_list(struct kl_registry *reg, struct kl_reg_page *page, kl_reg_str_fn fn,
                             void *ctx, struct kl_reg_err *err)
{
    char key[KL_REG_ARN_MAX];
    kl_reg_rc rc = kl_reg_page_start(page, key, sizeof key, err);
    if (rc) return rc;
    const char *sql = page->descending ? "SELECT name FROM policies WHERE (?1='' OR name<?1) "
                                         "ORDER BY name DESC LIMIT ?2"
                                       : "SELECT name FROM policies WHERE name>?1 "
                                         "ORDER BY name LIMIT ?2";
    kl_reg_rbegin(reg);
    sqlite3_stmt *st = kl_reg_prep(reg->rdb, sql, err);
    if (!st) {
        kl_reg_rend(reg);
        return KL_REG_INTERNAL;
    }
    kl_reg_bind_text(st, 1, key);
    sqlite3_bind_int(st, 2, page->limit + 1);
    return kl_reg_page_strings(reg, st, page, 0, fn, ctx, rc, "policy list", err);
}

/* The target must be a certificate of this registry that exists. */
static kl_reg_rc check_target(struct kl_registry *reg, sqlite3 *db, const char *target,
                              struct kl_reg_err *err)
{
    char id[KL_REG_ID_HEX];
    if (!target || !*target) return kl_reg_fail(err, KL_REG_INVALID, "target is required");
    if (kl_reg_principal_cert_id(reg, target, id))
        return kl_reg_fail(err, KL_REG_INVALID, "target must be a certificate ARN of this account");
    sqlite3_stmt *st = kl_reg_prep(db, "SELECT 1 FROM certs WHERE id=?", err);
    if (!st) return KL_REG_INTERNAL;
    kl_reg_bind_text(st, 1, id);
    int s = sqlite3_step(st);
    kl_reg_done(st);
    if (s == SQLITE_ROW) return KL_REG_OK;
    if (s == SQLITE_DONE) return kl_reg_fail(err, KL_REG_NOT_FOUND, "certificate %s not found", id);
    return kl_reg_db_fail(db, err, "target");
}

kl_reg_rc kl_reg_policy_attach_tx(struct kl_registry *reg, const char *name, const char *target,
                                  struct kl_reg_err *err)
{
    kl_reg_rc rc = check_name(name, err);
    if (rc == KL_REG_OK) rc = check_target(reg, reg->wdb, target, err);
    if (rc) return rc;
    sqlite3_stmt *st = kl_reg_prep(reg->wdb, "SELECT 1 FROM policies WHERE name=?", err);
    if (!st) return KL_REG_INTERNAL;
    kl_reg_bind_text(st, 1, name);
    int s = sqlite3_step(st);
    kl_reg_done(st);
    if (s == SQLITE_DONE) return kl_reg_fail(err, KL_REG_NOT_FOUND, "policy %s not found", name);
    if (s != SQLITE_ROW) return kl_reg_db_fail(reg->wdb, err, "policy attach");
    st = kl_reg_prep(reg->wdb, "INSERT OR IGNORE INTO policy_targets(policy, target) VALUES(?,?)",
                     err);
    if (!st) return KL_REG_INTERNAL;
    kl_reg_bind_text(st, 1, name);
    kl_reg_bind_text(st, 2, target);
    return kl_reg_exec_stmt(reg->wdb, st, err);
}

kl_reg_rc kl_reg_policy_attach(struct kl_registry *reg, const char *name, const char *target,
                               struct kl_reg_err *err)
{
    kl_reg_rc rc = kl_reg_wbegin(reg, err);
    if (rc) return rc;
    rc = kl_reg_wend(reg, kl_reg_policy_attach_tx(reg, name, target, err), err);
    if (rc == KL_REG_OK) policy_changed(reg, name);
    return rc;
}

kl_reg_rc kl_reg_policy_detach(struct kl_registry *reg, const char *name, const char *target,
                               struct kl_reg_err *err)
{
    kl_reg_rc rc = check_name(name, err);
    if (rc) return rc;
    rc = kl_reg_wbegin(reg, err);
    if (rc) return rc;
    sqlite3_stmt *st =
        kl_reg_prep(reg->wdb, "DELETE FROM policy_targets WHERE policy=? AND target=?", err);
    if (!st) return kl_reg_wend(reg, KL_REG_INTERNAL, err);
    kl_reg_bind_text(st, 1, name);
    kl_reg_bind_text(st, 2, target);
    rc = kl_reg_exec_stmt(reg->wdb, st, err);
    if (rc == KL_REG_OK && sqlite3_changes(reg->wdb) == 0)
        rc = kl_reg_fail(err, KL_REG_NOT_FOUND, "policy %s is not attached to that target", name);
    rc = kl_reg_wend(reg, rc, err);
    if (rc == KL_REG_OK) policy_changed(reg, name);
    return rc;
}

kl_reg_rc kl_reg_policy_attached(struct kl_registry *reg, const char *target,
                                 struct kl_reg_page *page, kl_reg_str_fn fn, void *ctx,
                                 struct kl_reg_err *err)
{
    char key[KL_REG_ARN_MAX];
    kl_reg_rc rc = kl_reg_page_start(page, key, sizeof key, err);
    if (rc) return rc;
    kl_reg_rbegin(reg);
    rc = check_target(reg, reg->rdb, target, err);
    sqlite3_stmt *st = rc ? NULL
                          : kl_reg_prep(reg->rdb,
                                        "SELECT policy FROM policy_targets WHERE target=?1 AND "
                                        "policy>?2 ORDER BY policy LIMIT ?3",
                                        err);
    if (!st) {
        kl_reg_rend(reg);
        return rc ? rc : KL_REG_INTERNAL;
    }
    kl_reg_bind_text(st, 1, target);
    kl_reg_bind_text(st, 2, key);
    sqlite3_bind_int(st, 3, page->limit + 1);
    return kl_reg_page_strings(reg, st, page, 0, fn, ctx, rc, "attached", err);
}

kl_reg_rc kl_reg_policies_for_principal(struct kl_registry *reg, const char *target,
                                        kl_reg_str_fn fn, void *ctx, struct kl_reg_err *err)
{
    kl_reg_rbegin(reg);
    kl_reg_rc rc = KL_REG_OK;
    sqlite3_stmt *st =
        kl_reg_prep(reg->rdb,
                    "SELECT v.document FROM policy_targets t JOIN policies p ON p.name=t.policy "
                    "JOIN policy_versions v ON v.policy=p.name AND v.version=p.default_version "
                    "WHERE t.target=? ORDER BY p.name",
                    err);
    if (!st) {
        kl_reg_rend(reg);
        return KL_REG_INTERNAL;
    }
    kl_reg_bind_text(st, 1, target);
    int s;
    while ((s = sqlite3_step(st)) == SQLITE_ROW)
        if (fn(ctx, (const char *)sqlite3_column_text(st, 0))) break;
    if (s != SQLITE_ROW && s != SQLITE_DONE) rc = kl_reg_db_fail(reg->rdb, err, "policies");
    kl_reg_done(st);
    kl_reg_rend(reg);
    return rc;
}

/* A version id: decimal 1..999999999 without leading zeros. */
static kl_reg_rc version_of(const char *v, int64_t *out, struct kl_reg_err *err)
{
    size_t n = v ? strlen(v) : 0;
    if (n == 0 || n > 9 || strspn(v, "0123456789") != n || v[0] == '0')
        return kl_reg_fail(err, KL_REG_INVALID, "policyVersionId must be a positive number");
    *out = strtoll(v, NULL, 10);
    return KL_REG_OK;
}

kl_reg_rc kl_reg_policy_versions(struct kl_registry *reg, const char *name, kl_reg_pv_fn fn,
                                 void *ctx, struct kl_reg_err *err)
{
    kl_reg_rc rc = check_name(name, err);
    if (rc) return rc;
    kl_reg_rbegin(reg);
    sqlite3_stmt *st =
        kl_reg_prep(reg->rdb,
                    "SELECT v.version, v.version=p.default_version, v.created FROM policies p "
                    "JOIN policy_versions v ON v.policy=p.name WHERE p.name=? "
                    "ORDER BY v.version DESC",
                    err);
    if (!st) {
        kl_reg_rend(reg);
        return KL_REG_INTERNAL;
    }
    kl_reg_bind_text(st, 1, name);
    int s, n = 0;
    while ((s = sqlite3_step(st)) == SQLITE_ROW) {
        struct kl_reg_policy_version v = {0};
        kl_reg_col_copy(st, 0, v.version, sizeof v.version);
        v.is_default = sqlite3_column_int(st, 1);
        v.created = sqlite3_column_int64(st, 2);
        n++;
        if (fn(ctx, &v)) break;
    }
    if (s != SQLITE_ROW && s != SQLITE_DONE)
        rc = kl_reg_db_fail(reg->rdb, err, "policy versions");
    else if (n == 0)
        rc = kl_reg_fail(err, KL_REG_NOT_FOUND, "policy %s not found", name);
    kl_reg_done(st);
    kl_reg_rend(reg);
    return rc;
}

kl_reg_rc kl_reg_policy_version_get(struct kl_registry *reg, const char *name, const char *version,
                                    struct kl_reg_policy_version *out, struct kl_reg_err *err)
{
    int64_t v = 0; /* set by version_of; initialised for -O3, which cannot see that */
    kl_reg_rc rc = check_name(name, err);
    if (!rc) rc = version_of(version, &v, err);
    if (rc) return rc;
    kl_reg_rbegin(reg);
    sqlite3_stmt *st = kl_reg_prep(
        reg->rdb,
        "SELECT v.version, v.version=p.default_version, v.created, v.document FROM policies p "
        "JOIN policy_versions v ON v.policy=p.name WHERE p.name=? AND v.version=?",
        err);
    if (!st) {
        kl_reg_rend(reg);
        return KL_REG_INTERNAL;
    }
    kl_reg_bind_text(st, 1, name);
    sqlite3_bind_int64(st, 2, v);
    int s = sqlite3_step(st);
    if (s == SQLITE_ROW) {
        memset(out, 0, sizeof *out);
        kl_reg_col_copy(st, 0, out->version, sizeof out->version);
        out->is_default = sqlite3_column_int(st, 1);
        out->created = sqlite3_column_int64(st, 2);
        out->document = kl_reg_col_dup(st, 3);
    } else if (s == SQLITE_DONE) {
        rc = kl_reg_fail(err, KL_REG_NOT_FOUND, "policy %s has no version %s", name, version);
    } else {
        rc = kl_reg_db_fail(reg->rdb, err, "policy version");
    }
    kl_reg_done(st);
    kl_reg_rend(reg);
    return rc;
}

/* Sets the default version, or deletes a version that is not the default. */
static kl_reg_rc version_write(struct kl_registry *reg, const char *name, const char *version,
                               int for_delete, struct kl_reg_err *err)
{
    int64_t v = 0; /* set by version_of; initialised for -O3, which cannot see that */
    kl_reg_rc rc = check_name(name, err);
    if (!rc) rc = version_of(version, &v, err);
    if (rc) return rc;
    rc = kl_reg_wbegin(reg, err);
    if (rc) return rc;
    sqlite3_stmt *st = kl_reg_prep(reg->wdb,
                                   "SELECT v.version=p.default_version FROM policies p JOIN "
                                   "policy_versions v ON v.policy=p.name WHERE p.name=? AND "
                                   "v.version=?",
                                   err);
    if (!st) return kl_reg_wend(reg, KL_REG_INTERNAL, err);
    kl_reg_bind_text(st, 1, name);
    sqlite3_bind_int64(st, 2, v);
    int s = sqlite3_step(st);
    if (s == SQLITE_DONE)
        rc = kl_reg_fail(err, KL_REG_NOT_FOUND, "policy %s has no version %s", name, version);
    else if (s != SQLITE_ROW)
        rc = kl_reg_db_fail(reg->wdb, err, "policy version");
    else if (for_delete && sqlite3_column_int(st, 0))
        rc = kl_reg_fail(err, KL_REG_DELETE_CONFLICT,
                         "the default version of a policy cannot be deleted");
    kl_reg_done(st);
    if (rc == KL_REG_OK) {
        st = kl_reg_prep(reg->wdb,
                         for_delete ? "DELETE FROM policy_versions WHERE policy=?1 AND version=?2"
                                    : "UPDATE policies SET default_version=?2, modified=?3 "
                                      "WHERE name=?1",
                         err);
        if (!st) return kl_reg_wend(reg, KL_REG_INTERNAL, err);
        kl_reg_bind_text(st, 1, name);
        sqlite3_bind_int64(st, 2, v);
        if (!for_delete) sqlite3_bind_int64(st, 3, kl_reg_now());
        rc = kl_reg_exec_stmt(reg->wdb, st, err);
    }
    rc = kl_reg_wend(reg, rc, err);
    if (rc == KL_REG_OK && !for_delete) policy_changed(reg, name);
    return rc;
}

kl_reg_rc kl_reg_policy_version_default(struct kl_registry *reg, const char *name,
                                        const char *version, struct kl_reg_err *err)
{
    return version_write(reg, name, version, 0, err);
}

kl_reg_rc kl_reg_policy_version_delete(struct kl_registry *reg, const char *name,
                                       const char *version, struct kl_reg_err *err)
{
    return version_write(reg, name, version, 1, err);
}
