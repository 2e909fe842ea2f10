/* Registry: device certificates (register against a registered CA, state changes, lists). */
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/x509v3.h>

#include "registry_int.h"
#include "x509_check.h"

#define CERT_COLS                                                                                  \
    "id, ca_id, status, mode, created, modified, not_before, not_after, version, "                 \
    "generation, pem"

void kl_reg_cert_clear(struct kl_reg_cert *c)
{
    if (!c) return;
    free(c->pem);
    c->pem = NULL;
}

static void cert_row(struct kl_registry *reg, sqlite3_stmt *st, int with_pem, struct kl_reg_cert *c)
{
    memset(c, 0, sizeof *c);
    kl_reg_col_copy(st, 0, c->id, sizeof c->id);
    kl_reg_cert_arn(reg, c->id, c->arn, sizeof c->arn);
    kl_reg_col_copy(st, 1, c->ca_id, sizeof c->ca_id);
    kl_reg_col_copy(st, 2, c->status, sizeof c->status);
    kl_reg_col_copy(st, 3, c->mode, sizeof c->mode);
    c->created = sqlite3_column_int64(st, 4);
    c->modified = sqlite3_column_int64(st, 5);
    c->not_before = sqlite3_column_int64(st, 6);
    c->not_after = sqlite3_column_int64(st, 7);
    c->version = sqlite3_column_int(st, 8);
    kl_reg_col_copy(st, 9, c->generation_id, sizeof c->generation_id);
    if (with_pem) c->pem = kl_reg_col_dup(st, 10);
}

void kl_reg_ca_cache_free(struct kl_reg_ca_cache *c)
{
    for (int i = 0; i < c->n; i++)
        X509_free(c->e[i].x509);
    free(c->e);
    memset(c, 0, sizeof *c);
}

/* Adds the CA row (id, status, pem, mode) of st to c. */
static int cache_add(struct kl_reg_ca_cache *c, sqlite3_stmt *st, X509 *parsed)
{
    X509 *x = parsed ? parsed : kl_x509_from_pem((const char *)sqlite3_column_text(st, 2));
    if (!x) return -1;
    if (c->n == c->cap) {
        int cap = c->cap ? 2 * c->cap : 8;
        void *ne = realloc(c->e, (size_t)cap * sizeof *c->e);
        if (!ne) {
            X509_free(x);
            return -1;
        }
        c->e = ne;
        c->cap = cap;
    }
    X509_check_purpose(x, -1, 0); /* cache the extensions now, while one thread runs */
    struct kl_reg_ca_entry *e = &c->e[c->n++];
    e->x509 = x;
    kl_reg_col_copy(st, 0, e->id, sizeof e->id);
    kl_reg_col_copy(st, 1, e->status, sizeof e->status);
    kl_reg_col_copy(st, 3, e->mode, sizeof e->mode);
    return 0;
}

kl_reg_rc kl_reg_ca_cache_load(struct kl_registry *reg, struct kl_reg_ca_cache *c,
                               struct kl_reg_err *err)
{
    sqlite3_stmt *st = kl_reg_prep(reg->wdb, "SELECT id, status, pem, mode FROM ca_certs", err);
    if (!st) return KL_REG_INTERNAL;
    int s;
    kl_reg_rc rc = KL_REG_OK;
    while (rc == KL_REG_OK && (s = sqlite3_step(st)) == SQLITE_ROW)
        if (cache_add(c, st, NULL)) rc = kl_reg_fail(err, KL_REG_INTERNAL, "cannot load the CAs");
    if (rc == KL_REG_OK && s != SQLITE_DONE) rc = kl_reg_db_fail(reg->wdb, err, "ca load");
    kl_reg_done(st);
    return rc;
}

static void fill_ca(struct kl_reg_cert_new *n, const struct kl_reg_ca_entry *e)
{
    memcpy(n->ca_id, e->id, sizeof n->ca_id);
    memcpy(n->ca_status, e->status, sizeof n->ca_status);
    memcpy(n->mode, e->mode, sizeof n->mode);
}

kl_reg_rc kl_reg_ca_cache_match(const struct kl_reg_ca_cache *cache, void *x, const char *ca_pem,
                                struct kl_reg_cert_new *n, struct kl_reg_err *err)
{
    char want[KL_REG_ID_HEX] = "";
    if (ca_pem && *ca_pem) {
        X509 *given = kl_x509_from_pem(ca_pem);
        int bad = !given || kl_x509_id(given, want);
        X509_free(given);
        if (bad)
            return kl_reg_fail(err, KL_REG_CERT_INVALID,
                               "caCertificatePem is not one well-formed PEM certificate");
    }
    for (int i = 0; i < cache->n; i++) {
        if (*want && strcmp(want, cache->e[i].id)) continue;
        if (kl_x509_signed_by(x, cache->e[i].x509)) {
            fill_ca(n, &cache->e[i]);
            return KL_REG_OK;
        }
        if (*want)
            return kl_reg_fail(err, KL_REG_CERT_INVALID,
                               "the certificate is not signed by the given CA certificate");
    }
    return kl_reg_fail(err, KL_REG_CERT_INVALID,
                       "the certificate is not signed by a registered CA certificate");
}

/* Finds the registered CA that signed x in the database: by its PEM when given, else by
 * the certificate's issuer name (candidates are checked by signature). */
static kl_reg_rc find_ca(struct kl_registry *reg, X509 *x, const char *ca_pem,
                         struct kl_reg_cert_new *n, struct kl_reg_err *err)
{
    struct kl_reg_ca_cache found = {0};
    char want[KL_REG_ID_HEX] = "";
    if (ca_pem && *ca_pem) {
        X509 *given = kl_x509_from_pem(ca_pem);
        int bad = !given || kl_x509_id(given, want);
        X509_free(given);
        if (bad)
            return kl_reg_fail(err, KL_REG_CERT_INVALID,
                               "caCertificatePem is not one well-formed PEM certificate");
    }
    sqlite3_stmt *st;
    unsigned char *issuer = NULL;
    int ilen = 0;
    if (*want) {
        st = kl_reg_prep(reg->wdb, "SELECT id, status, pem, mode FROM ca_certs WHERE id=?", err);
        if (!st) return KL_REG_INTERNAL;
        kl_reg_bind_text(st, 1, want);
    } else {
        ilen = kl_x509_issuer_der(x, &issuer);
        if (ilen <= 0) {
            OPENSSL_free(issuer);
            return kl_reg_fail(err, KL_REG_CERT_INVALID, "certificate has no issuer");
        }
        st = kl_reg_prep(reg->wdb, "SELECT id, status, pem, mode FROM ca_certs WHERE subject=?",
                         err);
        if (!st) {
            OPENSSL_free(issuer);
            return KL_REG_INTERNAL;
        }
        sqlite3_bind_blob(st, 1, issuer, ilen, SQLITE_TRANSIENT);
    }
    int s;
    kl_reg_rc rc = KL_REG_OK;
    while ((s = sqlite3_step(st)) == SQLITE_ROW)
        if (cache_add(&found, st, NULL)) rc = kl_reg_fail(err, KL_REG_INTERNAL, "cannot load a CA");
    if (rc == KL_REG_OK && s != SQLITE_DONE) rc = kl_reg_db_fail(reg->wdb, err, "ca lookup");
    kl_reg_done(st);
    OPENSSL_free(issuer);
    if (rc == KL_REG_OK) {
        if (found.n == 0)
            rc = kl_reg_fail(err, KL_REG_CERT_INVALID,
                             "the certificate is not signed by a registered CA certificate");
        else
            rc = kl_reg_ca_cache_match(&found, x, NULL, n, err);
        if (rc == KL_REG_CERT_INVALID && *want && found.n)
            rc = kl_reg_fail(err, KL_REG_CERT_INVALID,
                             "the certificate is not signed by the given CA certificate");
    }
    kl_reg_ca_cache_free(&found);
    return rc;
}

int kl_reg_cert_status_ok(const char *s)
{
    return !strcmp(s, "ACTIVE") || !strcmp(s, "INACTIVE") || !strcmp(s, "REVOKED") ||
           !strcmp(s, "PENDING_ACTIVATION");
}

kl_reg_rc kl_reg_cert_parse(const char *pem, const char *want_id, void **xout,
                            struct kl_reg_cert_new *n, struct kl_reg_err *err)
{
    memset(n, 0, sizeof *n);
    *xout = NULL;
    if (!pem || !*pem) return kl_reg_fail(err, KL_REG_INVALID, "certificatePem is required");
    X509 *x = kl_x509_from_pem(pem);
    if (!x)
        return kl_reg_fail(err, KL_REG_CERT_INVALID,
                           "certificatePem is not one well-formed PEM certificate");
    int64_t now = kl_reg_now();
    kl_reg_rc rc = KL_REG_OK;
    if (kl_x509_id(x, n->id) || !(n->pem = kl_x509_to_pem(x)))
        rc = kl_reg_fail(err, KL_REG_INTERNAL, "cannot encode the certificate");
    else if (kl_x509_is_ca(x))
        rc = kl_reg_fail(err, KL_REG_CERT_INVALID,
                         "a CA certificate cannot be registered as a device certificate");
    else if (kl_x509_validity(x, &n->not_before, &n->not_after) || now < n->not_before ||
             now > n->not_after)
        rc = kl_reg_fail(err, KL_REG_CERT_INVALID, "the certificate is not valid now");
    else if (want_id && strcmp(want_id, n->id))
        rc = kl_reg_fail(err, KL_REG_CERT_INVALID,
                         "certificateId is not the SHA-256 of the certificate");
    if (rc) {
        X509_free(x);
        free(n->pem);
        n->pem = NULL;
        return rc;
    }
    *xout = x;
    return KL_REG_OK;
}

kl_reg_rc kl_reg_cert_insert_tx(struct kl_registry *reg, struct kl_reg_cert_new *n,
                                const char *status, struct kl_reg_err *err)
{
    char *pem = n->pem;
    n->pem = NULL;
    char gen[KL_REG_ID_HEX];
    if (strcmp(n->ca_status, "ACTIVE")) {
        free(pem);
        return kl_reg_fail(err, KL_REG_CERT_STATE, "the certificate's CA %s is %s", n->ca_id,
                           n->ca_status);
    }
    if (kl_reg_random_hex(gen, 32)) {
        free(pem);
        return kl_reg_fail(err, KL_REG_INTERNAL, "no randomness");
    }
    sqlite3_stmt *st = kl_reg_prep(
        reg->wdb,
        "INSERT INTO certs(id, ca_id, pem, status, mode, created, modified, not_before, "
        "not_after, version, generation) VALUES(?,?,?,?,?,?,?,?,?,1,?) ON CONFLICT DO NOTHING",
        err);
    if (!st) {
        free(pem);
        return KL_REG_INTERNAL;
    }
    int64_t now = kl_reg_now();
    kl_reg_bind_text(st, 1, n->id);
    kl_reg_bind_text(st, 2, n->ca_id);
    sqlite3_bind_text(st, 3, pem, -1, free);
    kl_reg_bind_text(st, 4, status);
    kl_reg_bind_text(st, 5, n->mode[0] ? n->mode : "DEFAULT");
    sqlite3_bind_int64(st, 6, now);
    sqlite3_bind_int64(st, 7, now);
    sqlite3_bind_int64(st, 8, n->not_before);
    sqlite3_bind_int64(st, 9, n->not_after);
    kl_reg_bind_text(st, 10, gen);
    kl_reg_rc rc = kl_reg_exec_stmt(reg->wdb, st, err);
    if (rc == KL_REG_OK && sqlite3_changes(reg->wdb) == 0)
        rc = kl_reg_fail(err, KL_REG_EXISTS, "the certificate is already registered");
    return rc;
}

kl_reg_rc kl_reg_cert_register_tx(struct kl_registry *reg, const char *pem, const char *ca_pem,
                                  const char *status, const char *want_id, const char *want_ca_id,
                                  struct kl_reg_cert *out, struct kl_reg_err *err)
{
    if (!status) status = "INACTIVE";
    if (!kl_reg_cert_status_ok(status))
        return kl_reg_fail(err, KL_REG_INVALID,
                           "status must be ACTIVE, INACTIVE, REVOKED or PENDING_ACTIVATION");
    struct kl_reg_cert_new n;
    void *x = NULL;
    kl_reg_rc rc = kl_reg_cert_parse(pem, want_id, &x, &n, err);
    if (rc) return rc;
    rc = find_ca(reg, x, ca_pem, &n, err);
    X509_free(x);
    if (rc == KL_REG_OK && want_ca_id && strcmp(want_ca_id, n.ca_id))
        rc = kl_reg_fail(err, KL_REG_CERT_INVALID,
                         "the certificate is not signed by the CA caCertificateId names");
    if (rc) {
        free(n.pem);
        return rc;
    }
    rc = kl_reg_cert_insert_tx(reg, &n, status, err);
    if (rc == KL_REG_OK && out) {
        memset(out, 0, sizeof *out);
        memcpy(out->id, n.id, sizeof n.id);
        kl_reg_cert_arn(reg, n.id, out->arn, sizeof out->arn);
        memcpy(out->ca_id, n.ca_id, sizeof n.ca_id);
        snprintf(out->status, sizeof out->status, "%s", status);
    }
    return rc;
}

kl_reg_rc kl_reg_cert_register(struct kl_registry *reg, const char *pem, const char *ca_pem,
                               const char *status, struct kl_reg_cert *out, struct kl_reg_err *err)
{
    kl_reg_rc rc = kl_reg_wbegin(reg, err);
    if (rc) return rc;
    struct kl_reg_cert c = {0};
    rc = kl_reg_cert_register_tx(reg, pem, ca_pem, status, NULL, NULL, &c, err);
    rc = kl_reg_wend(reg, rc, err);
    if (rc == KL_REG_OK && out) rc = kl_reg_cert_get(reg, c.id, 0, out, err);
    return rc;
}

static kl_reg_rc cert_get_where(struct kl_registry *reg, const char *where, const char *key,
                                int with_pem, struct kl_reg_cert *out, struct kl_reg_err *err)
{
    char sql[256];
    snprintf(sql, sizeof sql, "SELECT " CERT_COLS " FROM certs WHERE %s", where);
    kl_reg_rbegin(reg);
    kl_reg_rc rc = KL_REG_OK;
    sqlite3_stmt *st = kl_reg_prep(reg->rdb, sql, err);
    if (!st) {
        rc = KL_REG_INTERNAL;
    } else {
        kl_reg_bind_text(st, 1, key);
        int s = sqlite3_step(st);
        if (s == SQLITE_ROW)
            cert_row(reg, st, with_pem, out);
        else if (s == SQLITE_DONE)
            rc = kl_reg_fail(err, KL_REG_NOT_FOUND, "certificate %s not found", key);
        else
            rc = kl_reg_db_fail(reg->rdb, err, "cert get");
        kl_reg_done(st);
    }
    kl_reg_rend(reg);
    return rc;
}

kl_reg_rc kl_reg_cert_get(struct kl_registry *reg, const char *id, int with_pem,
                          struct kl_reg_cert *out, struct kl_reg_err *err)
{
    if (!kl_reg_is_hex64(id))
        return kl_reg_fail(err, KL_REG_INVALID, "certificateId must be 64 lowercase hex digits");
    return cert_get_where(reg, "id=?", id, with_pem, out, err);
}

kl_reg_rc kl_reg_cert_get_der(struct kl_registry *reg, const uint8_t *der, size_t der_len,
                              struct kl_reg_cert *out, struct kl_reg_err *err)
{
    X509 *x = kl_x509_from_der(der, der_len);
    char id[KL_REG_ID_HEX];
    int bad = !x || kl_x509_id(x, id);
    X509_free(x);
    if (bad) return kl_reg_fail(err, KL_REG_CERT_INVALID, "malformed certificate");
    return cert_get_where(reg, "id=?", id, 0, out, err);
}

kl_reg_rc kl_reg_cert_update(struct kl_registry *reg, const char *id, const char *new_status,
                             struct kl_reg_err *err)
{
    if (!kl_reg_is_hex64(id))
        return kl_reg_fail(err, KL_REG_INVALID, "certificateId must be 64 lowercase hex digits");
    if (!new_status || (strcmp(new_status, "ACTIVE") && strcmp(new_status, "INACTIVE") &&
                        strcmp(new_status, "REVOKED")))
        return kl_reg_fail(err, KL_REG_INVALID, "newStatus must be ACTIVE, INACTIVE or REVOKED");
    char gen[KL_REG_ID_HEX];
    if (kl_reg_random_hex(gen, 32)) return kl_reg_fail(err, KL_REG_INTERNAL, "no randomness");
    kl_reg_rc rc = kl_reg_wbegin(reg, err);
    if (rc) return rc;
    sqlite3_stmt *st = kl_reg_prep(
        reg->wdb,
        "SELECT c.status, a.status FROM certs c JOIN ca_certs a ON a.id=c.ca_id WHERE c.id=?", err);
    if (!st) return kl_reg_wend(reg, KL_REG_INTERNAL, err);
    kl_reg_bind_text(st, 1, id);
    int s = sqlite3_step(st);
    if (s == SQLITE_DONE) {
        rc = kl_reg_fail(err, KL_REG_NOT_FOUND, "certificate %s not found", id);
    } else if (s != SQLITE_ROW) {
        rc = kl_reg_db_fail(reg->wdb, err, "cert update");
    } else {
        const char *cur = (const char *)sqlite3_column_text(st, 0);
        const char *ca = (const char *)sqlite3_column_text(st, 1);
        if (!strcmp(cur, "REVOKED") && strcmp(new_status, "REVOKED"))
            rc = kl_reg_fail(err, KL_REG_CERT_STATE, "a REVOKED certificate cannot change state");
        else if (!strcmp(new_status, "ACTIVE") && strcmp(ca, "ACTIVE"))
            rc = kl_reg_fail(err, KL_REG_CERT_STATE,
                             "the certificate's CA is not ACTIVE; it cannot be activated");
    }
    kl_reg_done(st);
    if (rc == KL_REG_OK) {
        st = kl_reg_prep(reg->wdb,
                         "UPDATE certs SET status=?2, modified=?3, version=version+1, "
                         "generation=?4 WHERE id=?1",
                         err);
        if (!st) return kl_reg_wend(reg, KL_REG_INTERNAL, err);
        kl_reg_bind_text(st, 1, id);
        kl_reg_bind_text(st, 2, new_status);
        sqlite3_bind_int64(st, 3, kl_reg_now());
        kl_reg_bind_text(st, 4, gen);
        rc = kl_reg_exec_stmt(reg->wdb, st, err);
    }
    rc = kl_reg_wend(reg, rc, err);
    if (rc == KL_REG_OK) {
        struct kl_reg_events evs = {0};
        kl_reg_event_add(&evs, KL_REG_CHANGE_CERT_STATUS, id, new_status);
        kl_reg_events_fire(reg, &evs);
    }
    return rc;
}

kl_reg_rc kl_reg_cert_delete(struct kl_registry *reg, const char *id, int force,
                             struct kl_reg_err *err)
{
    if (!kl_reg_is_hex64(id))
        return kl_reg_fail(err, KL_REG_INVALID, "certificateId must be 64 lowercase hex digits");
    char arn[KL_REG_ARN_MAX];
    kl_reg_cert_arn(reg, id, arn, sizeof arn);
    kl_reg_rc rc = kl_reg_wbegin(reg, err);
    if (rc) return rc;
    sqlite3_stmt *st =
        kl_reg_prep(reg->wdb,
                    "SELECT status, (SELECT count(*) FROM thing_principals WHERE cert_id=?1), "
                    "(SELECT count(*) FROM policy_targets WHERE target=?2) "
                    "FROM certs WHERE id=?1",
                    err);
    if (!st) return kl_reg_wend(reg, KL_REG_INTERNAL, err);
    kl_reg_bind_text(st, 1, id);
    kl_reg_bind_text(st, 2, arn);
    int s = sqlite3_step(st);
    if (s == SQLITE_DONE)
        rc = kl_reg_fail(err, KL_REG_NOT_FOUND, "certificate %s not found", id);
    else if (s != SQLITE_ROW)
        rc = kl_reg_db_fail(reg->wdb, err, "cert delete");
    else if (!strcmp((const char *)sqlite3_column_text(st, 0), "ACTIVE"))
        rc = kl_reg_fail(err, KL_REG_CERT_STATE,
                         "an ACTIVE certificate cannot be deleted; deactivate it first");
    else if (sqlite3_column_int64(st, 1) > 0)
        rc = kl_reg_fail(err, KL_REG_DELETE_CONFLICT,
                         "the certificate is attached to a thing; detach it first");
    else if (sqlite3_column_int64(st, 2) > 0 && !force)
        rc = kl_reg_fail(err, KL_REG_DELETE_CONFLICT,
                         "the certificate has policies attached; detach them or force");
    kl_reg_done(st);
    if (rc == KL_REG_OK) {
        st = kl_reg_prep(reg->wdb, "DELETE FROM policy_targets WHERE target=?", err);
        if (!st) return kl_reg_wend(reg, KL_REG_INTERNAL, err);
        kl_reg_bind_text(st, 1, arn);
        rc = kl_reg_exec_stmt(reg->wdb, st, err);
    }
    if (rc == KL_REG_OK) {
        st = kl_reg_prep(reg->wdb, "DELETE FROM certs WHERE id=?", err);
        if (!st) return kl_reg_wend(reg, KL_REG_INTERNAL, err);
        kl_reg_bind_text(st, 1, id);
        rc = kl_reg_exec_stmt(reg->wdb, st, err);
    }
    rc = kl_reg_wend(reg, rc, err);
    if (rc == KL_REG_OK) {
        struct kl_reg_events evs = {0};
        kl_reg_event_add(&evs, KL_REG_CHANGE_CERT_DELETED, id, "");
        kl_reg_events_fire(reg, &evs);
    }
    return rc;
}

kl_reg_rc kl_reg_cert_list(struct kl_registry *reg, const char *ca_id, struct kl_reg_page *page,
                           kl_reg_cert_fn fn, void *ctx, struct kl_reg_err *err)
{
    char key[KL_REG_ARN_MAX];
    kl_reg_rc rc = kl_reg_page_start(page, key, sizeof key, err);
    if (rc) return rc;
    if (ca_id && !kl_reg_is_hex64(ca_id))
        return kl_reg_fail(err, KL_REG_INVALID, "caCertificateId must be 64 lowercase hex digits");
    const char *sql = page->descending ? "SELECT " CERT_COLS
                                         " FROM certs WHERE (?1='' OR id<?1) AND (?3 IS NULL OR "
                                         "ca_id=?3) ORDER BY id DESC LIMIT ?2"
                                       : "SELECT " CERT_COLS
                                         " FROM certs WHERE id>?1 AND (?3 IS NULL OR ca_id=?3) "
                                         "ORDER BY id LIMIT ?2";
    kl_reg_rbegin(reg);
    if (ca_id) {
        sqlite3_stmt *c = kl_reg_prep(reg->rdb, "SELECT 1 FROM ca_certs WHERE id=?", err);
        if (!c) {
            kl_reg_rend(reg);
            return KL_REG_INTERNAL;
        }
        kl_reg_bind_text(c, 1, ca_id);
        int s = sqlite3_step(c);
        kl_reg_done(c);
        if (s != SQLITE_ROW) {
            kl_reg_rend(reg);
            return kl_reg_fail(err, KL_REG_NOT_FOUND, "CA certificate %s not found", ca_id);
        }
    }
    sqlite3_stmt *st = kl_reg_prep(reg->rdb, sql, err);
    if (!st) {
        kl_reg_rend(reg);
        return KL_REG_INTERNAL;
    }
    kl_reg_bind_text(st, 1, key);
    sqlite3_bind_int(st, 2, page->limit + 1);
    kl_reg_bind_text(st, 3, ca_id);
    int n = 0, s;
    struct kl_reg_cert c = {0};
    while ((s = sqlite3_step(st)) == SQLITE_ROW) {
        if (n == page->limit) {
            kl_reg_token_encode(c.id, page->next_token, sizeof page->next_token);
            break;
        }
        cert_row(reg, st, 0, &c);
        n++;
        if (fn(ctx, &c)) break;
    }
    if (s != SQLITE_ROW && s != SQLITE_DONE) rc = kl_reg_db_fail(reg->rdb, err, "cert list");
    kl_reg_done(st);
    kl_reg_rend(reg);
    return rc;
}
