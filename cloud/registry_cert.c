/* Registry: device certificates (register against a registered CA, state changes, lists). */
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

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
    c->n = 0;
}

/* Finds the registered CA that signed cert: by its PEM when given, else by issuer name. */
static kl_reg_rc find_ca(struct kl_registry *reg, X509 *cert, const char *ca_pem,
                         struct kl_reg_ca_cache *cache, char id[KL_REG_ID_HEX],
                         char status[KL_REG_STATUS_MAX], char mode[KL_REG_STATUS_MAX],
                         struct kl_reg_err *err)
{
    char want[KL_REG_ID_HEX] = "";
    if (ca_pem && *ca_pem) {
        X509 *given = kl_x509_from_pem(ca_pem);
        if (!given || kl_x509_id(given, want)) {
            X509_free(given);
            return kl_reg_fail(err, KL_REG_CERT_INVALID,
                               "caCertificatePem is not one well-formed PEM certificate");
        }
        X509_free(given);
    }
    for (int i = 0; cache && i < cache->n; i++) {
        if (*want && strcmp(want, cache->e[i].id)) continue;
        if (!kl_x509_signed_by(cert, cache->e[i].x509)) continue;
        memcpy(id, cache->e[i].id, KL_REG_ID_HEX);
        memcpy(status, cache->e[i].status, KL_REG_STATUS_MAX);
        snprintf(mode, KL_REG_STATUS_MAX, "DEFAULT");
        return KL_REG_OK;
    }
    sqlite3_stmt *st;
    unsigned char *issuer = NULL;
    if (*want) {
        st = kl_reg_prep(reg->wdb, "SELECT id, status, pem, mode FROM ca_certs WHERE id=?", err);
        if (!st) return KL_REG_INTERNAL;
        kl_reg_bind_text(st, 1, want);
    } else {
        int n = kl_x509_issuer_der(cert, &issuer);
        st = n > 0 ? kl_reg_prep(reg->wdb,
                                 "SELECT id, status, pem, mode FROM ca_certs WHERE subject=?", err)
                   : NULL;
        if (!st) {
            OPENSSL_free(issuer);
            return n > 0 ? KL_REG_INTERNAL
                         : kl_reg_fail(err, KL_REG_CERT_INVALID, "certificate has no issuer");
        }
        sqlite3_bind_blob(st, 1, issuer, n, SQLITE_TRANSIENT);
    }
    int found = 0, s = SQLITE_DONE;
    kl_reg_rc rc = KL_REG_OK;
    while (!found && (s = sqlite3_step(st)) == SQLITE_ROW) {
        X509 *ca = kl_x509_from_pem((const char *)sqlite3_column_text(st, 2));
        if (ca && kl_x509_signed_by(cert, ca)) {
            found = 1;
            kl_reg_col_copy(st, 0, id, KL_REG_ID_HEX);
            kl_reg_col_copy(st, 1, status, KL_REG_STATUS_MAX);
            kl_reg_col_copy(st, 3, mode, KL_REG_STATUS_MAX);
            if (cache && cache->n < KL_REG_CA_CACHE) {
                cache->e[cache->n].x509 = ca;
                memcpy(cache->e[cache->n].id, id, KL_REG_ID_HEX);
                memcpy(cache->e[cache->n].status, status, KL_REG_STATUS_MAX);
                cache->n++;
                ca = NULL;
            }
        } else if (ca && *want) {
            rc = kl_reg_fail(err, KL_REG_CERT_INVALID,
                             "the certificate is not signed by the given CA certificate");
        }
        X509_free(ca);
    }
    if (!found && rc == KL_REG_OK && s != SQLITE_DONE && s != SQLITE_ROW)
        rc = kl_reg_db_fail(reg->wdb, err, "ca lookup");
    kl_reg_done(st);
    OPENSSL_free(issuer);
    if (rc) return rc;
    if (!found)
        return kl_reg_fail(err, KL_REG_CERT_INVALID,
                           "the certificate is not signed by a registered CA certificate");
    return KL_REG_OK;
}

static int status_ok(const char *s)
{
    return !strcmp(s, "ACTIVE") || !strcmp(s, "INACTIVE") || !strcmp(s, "REVOKED") ||
           !strcmp(s, "PENDING_ACTIVATION");
}

kl_reg_rc kl_reg_cert_register_tx(struct kl_registry *reg, const char *pem, const char *ca_pem,
                                  const char *status, const char *want_id, const char *want_ca_id,
                                  struct kl_reg_ca_cache *cache, struct kl_reg_cert *out,
                                  struct kl_reg_err *err)
{
    if (!status) status = "INACTIVE";
    if (!status_ok(status))
        return kl_reg_fail(err, KL_REG_INVALID,
                           "status must be ACTIVE, INACTIVE, REVOKED or PENDING_ACTIVATION");
    if (!pem || !*pem) return kl_reg_fail(err, KL_REG_INVALID, "certificatePem is required");
    X509 *x = kl_x509_from_pem(pem);
    if (!x)
        return kl_reg_fail(err, KL_REG_CERT_INVALID,
                           "certificatePem is not one well-formed PEM certificate");
    char id[KL_REG_ID_HEX], ca_id[KL_REG_ID_HEX], ca_status[KL_REG_STATUS_MAX];
    char mode[KL_REG_STATUS_MAX], gen[KL_REG_ID_HEX];
    int64_t nb, na, now = kl_reg_now();
    kl_reg_rc rc = KL_REG_OK;
    char *canon = NULL;
    if (kl_x509_id(x, id) || kl_reg_random_hex(gen, 32) || !(canon = kl_x509_to_pem(x)))
        rc = kl_reg_fail(err, KL_REG_INTERNAL, "cannot encode the certificate");
    else if (kl_x509_is_ca(x))
        rc = kl_reg_fail(err, KL_REG_CERT_INVALID,
                         "a CA certificate cannot be registered as a device certificate");
    else if (kl_x509_validity(x, &nb, &na) || now < nb || now > na)
        rc = kl_reg_fail(err, KL_REG_CERT_INVALID, "the certificate is not valid now");
    else if (want_id && strcmp(want_id, id))
        rc = kl_reg_fail(err, KL_REG_CERT_INVALID,
                         "certificateId is not the SHA-256 of the certificate");
    else
        rc = find_ca(reg, x, ca_pem, cache, ca_id, ca_status, mode, err);
    if (rc == KL_REG_OK && want_ca_id && strcmp(want_ca_id, ca_id))
        rc = kl_reg_fail(err, KL_REG_CERT_INVALID,
                         "the certificate is not signed by the CA caCertificateId names");
    X509_free(x);
    if (rc == KL_REG_OK && strcmp(ca_status, "ACTIVE"))
        rc = kl_reg_fail(err, KL_REG_CERT_STATE, "the certificate's CA %s is %s", ca_id, ca_status);
    if (rc) {
        free(canon);
        return rc;
    }
    sqlite3_stmt *st = kl_reg_prep(
        reg->wdb,
        "INSERT INTO certs(id, ca_id, pem, status, mode, created, modified, not_before, "
        "not_after, version, generation) VALUES(?,?,?,?,?,?,?,?,?,1,?) ON CONFLICT DO NOTHING",
        err);
    if (!st) {
        free(canon);
        return KL_REG_INTERNAL;
    }
    kl_reg_bind_text(st, 1, id);
    kl_reg_bind_text(st, 2, ca_id);
    sqlite3_bind_text(st, 3, canon, -1, free);
    kl_reg_bind_text(st, 4, status);
    kl_reg_bind_text(st, 5, mode);
    sqlite3_bind_int64(st, 6, now);
    sqlite3_bind_int64(st, 7, now);
    sqlite3_bind_int64(st, 8, nb);
    sqlite3_bind_int64(st, 9, na);
    kl_reg_bind_text(st, 10, gen);
    rc = kl_reg_exec_stmt(reg->wdb, st, err);
    if (rc == KL_REG_OK && sqlite3_changes(reg->wdb) == 0)
        rc = kl_reg_fail(err, KL_REG_EXISTS, "the certificate is already registered");
    if (rc == KL_REG_OK && out) {
        memset(out, 0, sizeof *out);
        memcpy(out->id, id, sizeof id);
        kl_reg_cert_arn(reg, id, out->arn, sizeof out->arn);
        memcpy(out->ca_id, ca_id, sizeof ca_id);
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
    rc = kl_reg_cert_register_tx(reg, pem, ca_pem, status, NULL, NULL, NULL, &c, err);
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
