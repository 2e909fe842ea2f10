/* Registry database: open, schema migrations, transactions and the change hook. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "registry_int.h"

/* Each entry moves the schema from version i to i+1; never edit one that has shipped. */
static const char *const kl_migrations[] = {
    /* 1: the AWS IoT registry subset */
    "CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;"
    "CREATE TABLE ca_certs(id TEXT PRIMARY KEY, pem TEXT NOT NULL, subject BLOB NOT NULL,"
    " status TEXT NOT NULL, auto_reg TEXT NOT NULL, mode TEXT NOT NULL,"
    " created INTEGER NOT NULL, modified INTEGER NOT NULL, not_before INTEGER NOT NULL,"
    " not_after INTEGER NOT NULL, version INTEGER NOT NULL, generation TEXT NOT NULL)"
    " WITHOUT ROWID;"
    "CREATE INDEX ca_certs_subject ON ca_certs(subject);"
    "CREATE TABLE certs(id TEXT PRIMARY KEY, ca_id TEXT NOT NULL REFERENCES ca_certs(id),"
    " pem TEXT NOT NULL, status TEXT NOT NULL, mode TEXT NOT NULL, created INTEGER NOT NULL,"
    " modified INTEGER NOT NULL, not_before INTEGER NOT NULL, not_after INTEGER NOT NULL,"
    " version INTEGER NOT NULL, generation TEXT NOT NULL) WITHOUT ROWID;"
    "CREATE INDEX certs_ca ON certs(ca_id, id);"
    "CREATE TABLE things(name TEXT PRIMARY KEY, id TEXT NOT NULL, type TEXT NOT NULL,"
    " attributes TEXT NOT NULL, version INTEGER NOT NULL) WITHOUT ROWID;"
    "CREATE TABLE thing_principals(thing TEXT NOT NULL REFERENCES things(name),"
    " cert_id TEXT NOT NULL REFERENCES certs(id), PRIMARY KEY(thing, cert_id)) WITHOUT ROWID;"
    "CREATE INDEX thing_principals_cert ON thing_principals(cert_id, thing);"
    "CREATE TABLE policies(name TEXT PRIMARY KEY, default_version INTEGER NOT NULL,"
    " next_version INTEGER NOT NULL, created INTEGER NOT NULL, modified INTEGER NOT NULL,"
    " generation TEXT NOT NULL) WITHOUT ROWID;"
    "CREATE TABLE policy_versions(policy TEXT NOT NULL REFERENCES policies(name),"
    " version INTEGER NOT NULL, document TEXT NOT NULL, created INTEGER NOT NULL,"
    " PRIMARY KEY(policy, version)) WITHOUT ROWID;"
    "CREATE TABLE policy_targets(policy TEXT NOT NULL REFERENCES policies(name),"
    " target TEXT NOT NULL, PRIMARY KEY(policy, target)) WITHOUT ROWID;"
    "CREATE INDEX policy_targets_target ON policy_targets(target, policy);",
};
#define KL_SCHEMA_VERSION ((int)(sizeof kl_migrations / sizeof kl_migrations[0]))

int kl_registry_schema_version(void)
{
    return KL_SCHEMA_VERSION;
}

const char *kl_reg_rc_name(kl_reg_rc rc)
{
    switch (rc) {
    case KL_REG_OK:
        return "OK";
    case KL_REG_NOT_FOUND:
        return "ResourceNotFoundException";
    case KL_REG_EXISTS:
        return "ResourceAlreadyExistsException";
    case KL_REG_INVALID:
        return "InvalidRequestException";
    case KL_REG_CERT_STATE:
        return "CertificateStateException";
    case KL_REG_CERT_INVALID:
        return "CertificateValidationException";
    case KL_REG_REG_CODE:
        return "RegistrationCodeValidationException";
    case KL_REG_DELETE_CONFLICT:
        return "DeleteConflictException";
    case KL_REG_VERSION_CONFLICT:
        return "VersionConflictException";
    case KL_REG_MALFORMED_POLICY:
        return "MalformedPolicyException";
    case KL_REG_LIMIT:
        return "LimitExceededException";
    case KL_REG_INTERNAL:
        break;
    }
    return "InternalFailureException";
}

int kl_reg_rc_http(kl_reg_rc rc)
{
    switch (rc) {
    case KL_REG_OK:
        return 200;
    case KL_REG_NOT_FOUND:
        return 404;
    case KL_REG_EXISTS:
    case KL_REG_DELETE_CONFLICT:
    case KL_REG_VERSION_CONFLICT:
        return 409;
    case KL_REG_CERT_STATE:
        return 406;
    case KL_REG_LIMIT:
        return 410;
    case KL_REG_INVALID:
    case KL_REG_CERT_INVALID:
    case KL_REG_REG_CODE:
    case KL_REG_MALFORMED_POLICY:
        return 400;
    case KL_REG_INTERNAL:
        break;
    }
    return 500;
}

kl_reg_rc kl_reg_fail(struct kl_reg_err *err, kl_reg_rc rc, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
        err->rc = rc;
    }
    return rc;
}

kl_reg_rc kl_reg_db_fail(sqlite3 *db, struct kl_reg_err *err, const char *what)
{
    /* SQLite's message names tables, never values: safe to log, not to send. */
    fprintf(stderr, "keylinkd: registry: %s: %s\n", what, db ? sqlite3_errmsg(db) : "?");
    return kl_reg_fail(err, KL_REG_INTERNAL, "internal registry error");
}

static int exec(sqlite3 *db, const char *sql)
{
    char *msg = NULL;
    int rc = sqlite3_exec(db, sql, NULL, NULL, &msg);
    if (rc != SQLITE_OK) {
        fprintf(stderr, "keylinkd: registry: %s\n", msg ? msg : sqlite3_errstr(rc));
        sqlite3_free(msg);
        return -1;
    }
    return 0;
}

static int open_conn(const char *path, sqlite3 **out)
{
    sqlite3 *db = NULL;
    int rc = sqlite3_open_v2(
        path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        fprintf(stderr, "keylinkd: registry: cannot open %s: %s\n", path, sqlite3_errstr(rc));
        sqlite3_close(db);
        return -1;
    }
    sqlite3_busy_timeout(db, 10000);
    /* FULL: a commit is on disk (WAL fsynced) before we answer. */
    if (exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;")) {
        sqlite3_close(db);
        return -1;
    }
    *out = db;
    return 0;
}

static int user_version(sqlite3 *db)
{
    sqlite3_stmt *st = NULL;
    int v = -1;
    if (sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    return v;
}

static int migrate(sqlite3 *db)
{
    if (exec(db, "BEGIN IMMEDIATE")) return -1;
    int v = user_version(db);
    if (v < 0 || v > KL_SCHEMA_VERSION) {
        fprintf(stderr, "keylinkd: registry: schema version %d is not one this build knows (%d)\n",
                v, KL_SCHEMA_VERSION);
        exec(db, "ROLLBACK");
        return -1;
    }
    for (; v < KL_SCHEMA_VERSION; v++) {
        char sql[64];
        snprintf(sql, sizeof sql, "PRAGMA user_version=%d", v + 1);
        if (exec(db, kl_migrations[v]) || exec(db, sql)) {
            exec(db, "ROLLBACK");
            return -1;
        }
    }
    return exec(db, "COMMIT");
}

kl_reg_rc kl_registry_open(const char *path, const struct kl_registry_opts *opts,
                           struct kl_registry **out, struct kl_reg_err *err)
{
    if (!path || !out) return kl_reg_fail(err, KL_REG_INVALID, "no registry path");
    const char *region = opts && opts->region ? opts->region : "us-east-1";
    const char *account = opts && opts->account_id ? opts->account_id : "123456789012";
    if (strlen(account) != 12 || strspn(account, "0123456789") != 12)
        return kl_reg_fail(err, KL_REG_INVALID, "account id must be 12 digits");
    size_t rl = strlen(region);
    if (rl == 0 || rl >= 32 || strspn(region, "abcdefghijklmnopqrstuvwxyz0123456789-") != rl)
        return kl_reg_fail(err, KL_REG_INVALID, "region must be 1..31 of [a-z0-9-]");
    struct kl_registry *reg = calloc(1, sizeof *reg);
    if (!reg) return kl_reg_fail(err, KL_REG_INTERNAL, "out of memory");
    snprintf(reg->region, sizeof reg->region, "%s", region);
    snprintf(reg->account, sizeof reg->account, "%s", account);
    pthread_mutex_init(&reg->wlock, NULL);
    pthread_mutex_init(&reg->rlock, NULL);
    if (open_conn(path, &reg->wdb) || migrate(reg->wdb) || open_conn(path, &reg->rdb)) {
        kl_registry_close(reg);
        return kl_reg_fail(err, KL_REG_INTERNAL, "cannot open the registry database");
    }
    char code[KL_REG_ID_HEX];
    kl_reg_rc rc = kl_reg_registration_code(reg, code, err);
    if (rc) {
        kl_registry_close(reg);
        return rc;
    }
    *out = reg;
    return KL_REG_OK;
}

void kl_registry_close(struct kl_registry *reg)
{
    if (!reg) return;
    kl_reg_cache_drop(reg->rdb);
    kl_reg_cache_drop(reg->wdb);
    sqlite3_close(reg->rdb);
    sqlite3_close(reg->wdb);
    pthread_mutex_destroy(&reg->wlock);
    pthread_mutex_destroy(&reg->rlock);
    free(reg);
}

const char *kl_registry_region(const struct kl_registry *reg)
{
    return reg->region;
}

const char *kl_registry_account(const struct kl_registry *reg)
{
    return reg->account;
}

void kl_registry_set_hook(struct kl_registry *reg, kl_reg_hook_fn fn, void *ctx)
{
    pthread_mutex_lock(&reg->wlock);
    reg->hook = fn;
    reg->hook_ctx = ctx;
    pthread_mutex_unlock(&reg->wlock);
}

void kl_reg_event_add(struct kl_reg_events *evs, enum kl_reg_change what, const char *id,
                      const char *status)
{
    if (evs->n >= KL_REG_MAX_EVENTS) return;
    evs->ev[evs->n].what = what;
    snprintf(evs->ev[evs->n].id, sizeof evs->ev[evs->n].id, "%s", id ? id : "");
    snprintf(evs->ev[evs->n].status, sizeof evs->ev[evs->n].status, "%s", status ? status : "");
    evs->n++;
}

void kl_reg_events_fire(struct kl_registry *reg, const struct kl_reg_events *evs)
{
    pthread_mutex_lock(&reg->wlock);
    kl_reg_hook_fn fn = reg->hook;
    void *ctx = reg->hook_ctx;
    pthread_mutex_unlock(&reg->wlock);
    if (!fn) return;
    for (int i = 0; i < evs->n; i++)
        fn(ctx, evs->ev[i].what, evs->ev[i].id, evs->ev[i].status);
}

kl_reg_rc kl_reg_wbegin(struct kl_registry *reg, struct kl_reg_err *err)
{
    pthread_mutex_lock(&reg->wlock);
    if (sqlite3_exec(reg->wdb, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK) {
        kl_reg_rc rc = kl_reg_db_fail(reg->wdb, err, "begin");
        pthread_mutex_unlock(&reg->wlock);
        return rc;
    }
    return KL_REG_OK;
}

kl_reg_rc kl_reg_wend(struct kl_registry *reg, kl_reg_rc rc, struct kl_reg_err *err)
{
    if (rc == KL_REG_OK) {
        if (sqlite3_exec(reg->wdb, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
            rc = kl_reg_db_fail(reg->wdb, err, "commit");
            sqlite3_exec(reg->wdb, "ROLLBACK", NULL, NULL, NULL);
        }
    } else {
        sqlite3_exec(reg->wdb, "ROLLBACK", NULL, NULL, NULL);
    }
    pthread_mutex_unlock(&reg->wlock);
    return rc;
}

void kl_reg_rbegin(struct kl_registry *reg)
{
    pthread_mutex_lock(&reg->rlock);
    sqlite3_exec(reg->rdb, "BEGIN", NULL, NULL, NULL);
}

void kl_reg_rend(struct kl_registry *reg)
{
    sqlite3_exec(reg->rdb, "COMMIT", NULL, NULL, NULL);
    pthread_mutex_unlock(&reg->rlock);
}

/* The statement cache: compiling SQL costs more than running most of these statements.
 * A cached statement is lent to one user at a time (busy); a second concurrent user of the
 * same text on the same connection gets a private statement. */
#define KL_REG_STMT_CACHE 96
static struct {
    sqlite3 *db;
    char *sql;
    sqlite3_stmt *st;
    int busy;
} stmt_cache[KL_REG_STMT_CACHE];
static pthread_mutex_t stmt_lock = PTHREAD_MUTEX_INITIALIZER;

sqlite3_stmt *kl_reg_prep(sqlite3 *db, const char *sql, struct kl_reg_err *err)
{
    int free_slot = -1;
    pthread_mutex_lock(&stmt_lock);
    for (int i = 0; i < KL_REG_STMT_CACHE; i++) {
        if (!stmt_cache[i].db) {
            if (free_slot < 0) free_slot = i;
            continue;
        }
        if (stmt_cache[i].db == db && !stmt_cache[i].busy && !strcmp(stmt_cache[i].sql, sql)) {
            stmt_cache[i].busy = 1;
            sqlite3_stmt *st = stmt_cache[i].st;
            pthread_mutex_unlock(&stmt_lock);
            return st;
        }
    }
    pthread_mutex_unlock(&stmt_lock);
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, &st, NULL) != SQLITE_OK) {
        kl_reg_db_fail(db, err, "prepare");
        sqlite3_finalize(st);
        return NULL;
    }
    if (free_slot >= 0) {
        char *copy = strdup(sql);
        pthread_mutex_lock(&stmt_lock);
        if (copy && !stmt_cache[free_slot].db) {
            stmt_cache[free_slot].db = db;
            stmt_cache[free_slot].sql = copy;
            stmt_cache[free_slot].st = st;
            stmt_cache[free_slot].busy = 1;
            copy = NULL;
        }
        pthread_mutex_unlock(&stmt_lock);
        free(copy);
    }
    return st;
}

void kl_reg_done(sqlite3_stmt *st)
{
    if (!st) return;
    pthread_mutex_lock(&stmt_lock);
    for (int i = 0; i < KL_REG_STMT_CACHE; i++)
        if (stmt_cache[i].st == st) {
            sqlite3_reset(st);
            sqlite3_clear_bindings(st);
            stmt_cache[i].busy = 0;
            pthread_mutex_unlock(&stmt_lock);
            return;
        }
    pthread_mutex_unlock(&stmt_lock);
    sqlite3_finalize(st);
}

void kl_reg_cache_drop(sqlite3 *db)
{
    pthread_mutex_lock(&stmt_lock);
    for (int i = 0; i < KL_REG_STMT_CACHE; i++)
        if (stmt_cache[i].db == db) {
            sqlite3_finalize(stmt_cache[i].st);
            free(stmt_cache[i].sql);
            memset(&stmt_cache[i], 0, sizeof stmt_cache[i]);
        }
    pthread_mutex_unlock(&stmt_lock);
}

void kl_reg_bind_text(sqlite3_stmt *st, int i, const char *s)
{
    if (s)
        sqlite3_bind_text(st, i, s, -1, SQLITE_TRANSIENT);
    else
        sqlite3_bind_null(st, i);
}

kl_reg_rc kl_reg_exec_stmt(sqlite3 *db, sqlite3_stmt *st, struct kl_reg_err *err)
{
    int rc = sqlite3_step(st);
    kl_reg_done(st);
    if (rc != SQLITE_DONE) return kl_reg_db_fail(db, err, "step");
    return KL_REG_OK;
}

void kl_reg_col_copy(sqlite3_stmt *st, int i, char *dst, size_t n)
{
    const unsigned char *s = sqlite3_column_text(st, i);
    snprintf(dst, n, "%s", s ? (const char *)s : "");
}

char *kl_reg_col_dup(sqlite3_stmt *st, int i)
{
    const unsigned char *s = sqlite3_column_text(st, i);
    return strdup(s ? (const char *)s : "");
}

void kl_reg_cert_arn(const struct kl_registry *reg, const char *id, char *out, size_t n)
{
    snprintf(out, n, "arn:aws:iot:%s:%s:cert/%s", reg->region, reg->account, id);
}

void kl_reg_ca_arn(const struct kl_registry *reg, const char *id, char *out, size_t n)
{
    /* AWS names CA certificates "cacert/", device certificates "cert/". */
    snprintf(out, n, "arn:aws:iot:%s:%s:cacert/%s", reg->region, reg->account, id);
}

void kl_reg_thing_arn(const struct kl_registry *reg, const char *name, char *out, size_t n)
{
    snprintf(out, n, "arn:aws:iot:%s:%s:thing/%s", reg->region, reg->account, name);
}

void kl_reg_policy_arn(const struct kl_registry *reg, const char *name, char *out, size_t n)
{
    snprintf(out, n, "arn:aws:iot:%s:%s:policy/%s", reg->region, reg->account, name);
}

int kl_reg_principal_cert_id(const struct kl_registry *reg, const char *principal,
                             char id[KL_REG_ID_HEX])
{
    char prefix[96];
    int n = snprintf(prefix, sizeof prefix, "arn:aws:iot:%s:%s:cert/", reg->region, reg->account);
    if (!principal || strncmp(principal, prefix, (size_t)n) != 0) return -1;
    const char *p = principal + n;
    if (!kl_reg_is_hex64(p)) return -1;
    memcpy(id, p, KL_REG_ID_HEX);
    return 0;
}

kl_reg_rc kl_reg_registration_code(struct kl_registry *reg, char code[KL_REG_ID_HEX],
                                   struct kl_reg_err *err)
{
    kl_reg_rc rc = kl_reg_wbegin(reg, err);
    if (rc) return rc;
    sqlite3_stmt *st = kl_reg_prep(reg->wdb, "SELECT value FROM meta WHERE key='regcode'", err);
    if (!st) return kl_reg_wend(reg, KL_REG_INTERNAL, err);
    int step = sqlite3_step(st);
    if (step == SQLITE_ROW) {
        kl_reg_col_copy(st, 0, code, KL_REG_ID_HEX);
        kl_reg_done(st);
        return kl_reg_wend(reg, KL_REG_OK, err);
    }
    kl_reg_done(st);
    if (step != SQLITE_DONE) return kl_reg_wend(reg, kl_reg_db_fail(reg->wdb, err, "regcode"), err);
    if (kl_reg_random_hex(code, 32))
        return kl_reg_wend(reg, kl_reg_fail(err, KL_REG_INTERNAL, "no randomness"), err);
    st = kl_reg_prep(reg->wdb, "INSERT INTO meta(key, value) VALUES('regcode', ?)", err);
    if (!st) return kl_reg_wend(reg, KL_REG_INTERNAL, err);
    kl_reg_bind_text(st, 1, code);
    return kl_reg_wend(reg, kl_reg_exec_stmt(reg->wdb, st, err), err);
}
