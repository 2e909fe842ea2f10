/* Registry: CA certificates (register with a verification certificate, update, list). */
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/x509v3.h>

#include "registry_int.h"
#include "x509_check.h"

#define CA_COLS                                                                                    \
    "id, status, auto_reg, mode, created, modified, not_before, not_after, version, "              \
    "generation, pem"

void kl_reg_ca_clear(struct kl_reg_ca *ca)
{
    if (!ca) return;
    free(ca->pem);
    ca->pem = NULL;
}

static void ca_row(struct kl_registry *reg, sqlite3_stmt *st, int with_pem, struct kl_reg_ca *ca)
{
    memset(ca, 0, sizeof *ca);
    kl_reg_col_copy(st, 0, ca->id, sizeof ca->id);
    kl_reg_ca_arn(reg, ca->id, ca->arn, sizeof ca->arn);
    kl_reg_col_copy(st, 1, ca->status, sizeof ca->status);
    kl_reg_col_copy(st, 2, ca->auto_reg, sizeof ca->auto_reg);
    kl_reg_col_copy(st, 3, ca->mode, sizeof ca->mode);
    ca->created = sqlite3_column_int64(st, 4);
    ca->modified = sqlite3_column_int64(st, 5);
    ca->not_before = sqlite3_column_int64(st, 6);
    ca->not_after = sqlite3_column_int64(st, 7);
    ca->version = sqlite3_column_int(st, 8);
    kl_reg_col_copy(st, 9, ca->generation_id, sizeof ca->generation_id);
    if (with_pem) ca->pem = kl_reg_col_dup(st, 10);
}

/* Checks the CA and verification certificates; fills id, subject DER and validity. */
static kl_reg_rc check_ca(struct kl_registry *reg, const char *ca_pem, const char *verif_pem,
                          int need_verif, X509 **cax, char id[KL_REG_ID_HEX],
                          struct kl_reg_err *err)
{
    X509 *ca = kl_x509_from_pem(ca_pem);
    if (!ca)
        return kl_reg_fail(err, KL_REG_CERT_INVALID,
                           "caCertificate is not one well-formed PEM certificate");
    kl_reg_rc rc = KL_REG_OK;
    int64_t nb, na, now = kl_reg_now();
    if (!kl_x509_is_ca(ca)) {
        rc = kl_reg_fail(err, KL_REG_CERT_INVALID,
                         "the certificate is not a CA certificate (basicConstraints CA:TRUE)");
    } else if (kl_x509_validity(ca, &nb, &na) || now < nb || now > na) {
        rc = kl_reg_fail(err, KL_REG_CERT_INVALID, "the CA certificate is not valid now");
    } else if (!kl_x509_signed_by(ca, ca) && X509_check_issued(ca, ca) == X509_V_OK) {
        rc = kl_reg_fail(err, KL_REG_CERT_INVALID, "the CA certificate's signature is bad");
    } else if (kl_x509_id(ca, id)) {
        rc = kl_reg_fail(err, KL_REG_INTERNAL, "cannot hash the certificate");
    } else if (need_verif) {
        X509 *v = verif_pem && *verif_pem ? kl_x509_from_pem(verif_pem) : NULL;
        char cn[128], code[KL_REG_ID_HEX];
        if (!verif_pem || !*verif_pem) {
            rc = kl_reg_fail(err, KL_REG_INVALID,
                             "verificationCertificate is required for DEFAULT mode");
        } else if (!v) {
            rc = kl_reg_fail(err, KL_REG_CERT_INVALID,
                             "verificationCertificate is not one well-formed PEM certificate");
        } else if (!kl_x509_signed_by(v, ca)) {
            rc = kl_reg_fail(err, KL_REG_CERT_INVALID,
                             "the verification certificate is not signed by the CA certificate");
        } else if ((rc = kl_reg_registration_code(reg, code, err)) != KL_REG_OK) {
            /* err set */
        } else if (kl_x509_cn(v, cn, sizeof cn) || strlen(cn) != 64 ||
                   CRYPTO_memcmp(cn, code, 64) != 0) {
            rc = kl_reg_fail(err, KL_REG_REG_CODE,
                             "the verification certificate's CN is not the registration code");
        } else if (kl_x509_validity(v, &nb, &na) || now < nb || now > na) {
            rc = kl_reg_fail(err, KL_REG_CERT_INVALID,
                             "the verification certificate is not valid now");
        }
        X509_free(v);
    }
    if (rc) {
        X509_free(ca);
        return rc;
    }
    *cax = ca;
    return KL_REG_OK;
}

kl_reg_rc kl_reg_ca_register(struct kl_registry *reg, const char *ca_pem, const char *verif_pem,
                             int set_active, int allow_auto_registration, const char *mode,
                             struct kl_reg_ca *out, struct kl_reg_err *err)
{
    if (!mode) mode = "DEFAULT";
    if (strcmp(mode, "DEFAULT") && strcmp(mode, "SNI_ONLY"))
        return kl_reg_fail(err, KL_REG_INVALID, "certificateMode must be DEFAULT or SNI_ONLY");
    if (!ca_pem || !*ca_pem) return kl_reg_fail(err, KL_REG_INVALID, "caCertificate is required");
    X509 *ca = NULL;
    char id[KL_REG_ID_HEX];
    kl_reg_rc rc = check_ca(reg, ca_pem, verif_pem, !strcmp(mode, "DEFAULT"), &ca, id, err);
    if (rc) return rc;
    unsigned char *subj = NULL;
    int subj_len = kl_x509_subject_der(ca, &subj);
    int64_t nb = 0, na = 0;
    kl_x509_validity(ca, &nb, &na);
    char *canon = kl_x509_to_pem(ca);
    X509_free(ca);
    char gen[KL_REG_ID_HEX];
    if (subj_len <= 0 || !canon || kl_reg_random_hex(gen, 32)) {
        OPENSSL_free(subj);
        free(canon);
        return kl_reg_fail(err, KL_REG_INTERNAL, "cannot encode the certificate");
    }
    rc = kl_reg_wbegin(reg, err);
    if (rc == KL_REG_OK) {
        sqlite3_stmt *st = kl_reg_prep(reg->wdb,
                                       "SELECT 1 FROM ca_certs WHERE id=?1 UNION ALL "
                                       "SELECT 1 FROM certs WHERE id=?1",
                                       err);
        if (!st) {
            rc = KL_REG_INTERNAL;
        } else {
            kl_reg_bind_text(st, 1, id);
            int s = sqlite3_step(st);
            kl_reg_done(st);
            if (s == SQLITE_ROW)
                rc = kl_reg_fail(err, KL_REG_EXISTS, "the CA certificate is already registered");
            else if (s != SQLITE_DONE)
                rc = kl_reg_db_fail(reg->wdb, err, "ca lookup");
        }
        if (rc == KL_REG_OK) {
            st = kl_reg_prep(reg->wdb,
                             "INSERT INTO ca_certs(id, pem, subject, status, auto_reg, mode, "
                             "created, modified, not_before, not_after, version, generation) "
                             "VALUES(?,?,?,?,?,?,?,?,?,?,1,?)",
                             err);
            if (!st) {
                rc = KL_REG_INTERNAL;
            } else {
                int64_t now = kl_reg_now();
                kl_reg_bind_text(st, 1, id);
                kl_reg_bind_text(st, 2, canon);
                sqlite3_bind_blob(st, 3, subj, subj_len, SQLITE_TRANSIENT);
                kl_reg_bind_text(st, 4, set_active ? "ACTIVE" : "INACTIVE");
                kl_reg_bind_text(st, 5, allow_auto_registration ? "ENABLE" : "DISABLE");
                kl_reg_bind_text(st, 6, mode);
                sqlite3_bind_int64(st, 7, now);
                sqlite3_bind_int64(st, 8, now);
                sqlite3_bind_int64(st, 9, nb);
                sqlite3_bind_int64(st, 10, na);
                kl_reg_bind_text(st, 11, gen);
                rc = kl_reg_exec_stmt(reg->wdb, st, err);
            }
        }
        rc = kl_reg_wend(reg, rc, err);
    }
    OPENSSL_free(subj);
    free(canon);
    if (rc == KL_REG_OK && out) rc = kl_reg_ca_get(reg, id, 0, out, err);
    return rc;
}

kl_reg_rc kl_reg_ca_get(struct kl_registry *reg, const char *id, int with_pem,
                        struct kl_reg_ca *out, struct kl_reg_err *err)
{
    if (!kl_reg_is_hex64(id))
        return kl_reg_fail(err, KL_REG_INVALID, "certificateId must be 64 lowercase hex digits");
    kl_reg_rbegin(reg);
    kl_reg_rc rc = KL_REG_OK;
    sqlite3_stmt *st = kl_reg_prep(reg->rdb, "SELECT " CA_COLS " FROM ca_certs WHERE id=?", err);
    if (!st) {
        rc = KL_REG_INTERNAL;
    } else {
        kl_reg_bind_text(st, 1, id);
        int s = sqlite3_step(st);
        if (s == SQLITE_ROW)
            ca_row(reg, st, with_pem, out);
        else if (s == SQLITE_DONE)
            rc = kl_reg_fail(err, KL_REG_NOT_FOUND, "CA certificate %s not found", id);
        else
            rc = kl_reg_db_fail(reg->rdb, err, "ca get");
        kl_reg_done(st);
    }
    kl_reg_rend(reg);
    return rc;
}

kl_reg_rc kl_reg_ca_update(struct kl_registry *reg, const char *id, const char *new_status,
                           const char *new_auto, struct kl_reg_err *err)
{
    if (!kl_reg_is_hex64(id))
        return kl_reg_fail(err, KL_REG_INVALID, "certificateId must be 64 lowercase hex digits");
    if (new_status && strcmp(new_status, "ACTIVE") && strcmp(new_status, "INACTIVE"))
        return kl_reg_fail(err, KL_REG_INVALID, "newStatus must be ACTIVE or INACTIVE");
    if (new_auto && strcmp(new_auto, "ENABLE") && strcmp(new_auto, "DISABLE"))
        return kl_reg_fail(err, KL_REG_INVALID,
                           "newAutoRegistrationStatus must be ENABLE or DISABLE");
    if (!new_status && !new_auto) return kl_reg_fail(err, KL_REG_INVALID, "nothing to update");
    char gen[KL_REG_ID_HEX];
    if (kl_reg_random_hex(gen, 32)) return kl_reg_fail(err, KL_REG_INTERNAL, "no randomness");
    kl_reg_rc rc = kl_reg_wbegin(reg, err);
    if (rc) return rc;
    sqlite3_stmt *st = kl_reg_prep(
        reg->wdb,
        "UPDATE ca_certs SET status=coalesce(?2, status), auto_reg=coalesce(?3, auto_reg), "
        "modified=?4, version=version+1, generation=?5 WHERE id=?1",
        err);
    if (!st) return kl_reg_wend(reg, KL_REG_INTERNAL, err);
    kl_reg_bind_text(st, 1, id);
    kl_reg_bind_text(st, 2, new_status);
    kl_reg_bind_text(st, 3, new_auto);
    sqlite3_bind_int64(st, 4, kl_reg_now());
    kl_reg_bind_text(st, 5, gen);
    rc = kl_reg_exec_stmt(reg->wdb, st, err);
    if (rc == KL_REG_OK && sqlite3_changes(reg->wdb) == 0)
        rc = kl_reg_fail(err, KL_REG_NOT_FOUND, "CA certificate %s not found", id);
    rc = kl_reg_wend(reg, rc, err);
    if (rc == KL_REG_OK && new_status) {
        struct kl_reg_events evs = {0};
        kl_reg_event_add(&evs, KL_REG_CHANGE_CA_STATUS, id, new_status);
        kl_reg_events_fire(reg, &evs);
    }
    return rc;
}

kl_reg_rc kl_reg_ca_delete(struct kl_registry *reg, const char *id, struct kl_reg_err *err)
{
    if (!kl_reg_is_hex64(id))
        return kl_reg_fail(err, KL_REG_INVALID, "certificateId must be 64 lowercase hex digits");
    kl_reg_rc rc = kl_reg_wbegin(reg, err);
    if (rc) return rc;
    sqlite3_stmt *st = kl_reg_prep(
        reg->wdb,
        "SELECT status, (SELECT count(*) FROM certs WHERE ca_id=?1) FROM ca_certs WHERE id=?1",
        err);
    if (!st) return kl_reg_wend(reg, KL_REG_INTERNAL, err);
    kl_reg_bind_text(st, 1, id);
    int s = sqlite3_step(st);
    if (s == SQLITE_DONE) {
        rc = kl_reg_fail(err, KL_REG_NOT_FOUND, "CA certificate %s not found", id);
    } else if (s != SQLITE_ROW) {
        rc = kl_reg_db_fail(reg->wdb, err, "ca delete");
    } else if (!strcmp((const char *)sqlite3_column_text(st, 0), "ACTIVE")) {
        rc = kl_reg_fail(err, KL_REG_CERT_STATE,
                         "an ACTIVE CA certificate cannot be deleted; set it INACTIVE first");
    } else if (sqlite3_column_int64(st, 1) > 0) {
        rc = kl_reg_fail(err, KL_REG_DELETE_CONFLICT,
                         "device certificates signed by this CA are still registered");
    }
    kl_reg_done(st);
    if (rc == KL_REG_OK) {
        st = kl_reg_prep(reg->wdb, "DELETE FROM ca_certs WHERE id=?", err);
        if (!st) return kl_reg_wend(reg, KL_REG_INTERNAL, err);
        kl_reg_bind_text(st, 1, id);
        rc = kl_reg_exec_stmt(reg->wdb, st, err);
    }
    rc = kl_reg_wend(reg, rc, err);
    if (rc == KL_REG_OK) {
        struct kl_reg_events evs = {0};
        kl_reg_event_add(&evs, KL_REG_CHANGE_CA_DELETED, id, "");
        kl_reg_events_fire(reg, &evs);
    }
    return rc;
}

kl_reg_rc kl_reg_ca_list(struct kl_registry *reg, struct kl_reg_page *page, kl_reg_ca_fn fn,
                         void *ctx, struct kl_reg_err *err)
{
    char key[KL_REG_ARN_MAX];
    kl_reg_rc rc = kl_reg_page_start(page, key, sizeof key, err);
    if (rc) return rc;
    const char *sql = page->descending ? "SELECT " CA_COLS " FROM ca_certs WHERE (?1='' OR id<?1) "
                                         "ORDER BY id DESC LIMIT ?2"
                                       : "SELECT " CA_COLS
                                         " FROM ca_certs WHERE id>?1 ORDER BY id LIMIT ?2";
    kl_reg_rbegin(reg);
    sqlite3_stmt *st = kl_reg_prep(reg->rdb, sql, err);
    if (!st) {
        kl_reg_rend(reg);
        return KL_REG_INTERNAL;
    }
    kl_reg_bind_text(st, 1, key);
    sqlite3_bind_int(st, 2, page->limit + 1);
    int n = 0, s;
    struct kl_reg_ca ca = {0};
    while ((s = sqlite3_step(st)) == SQLITE_ROW) {
        if (n == page->limit) {
            kl_reg_token_encode(ca.id, page->next_token, sizeof page->next_token);
            break;
        }
        ca_row(reg, st, 0, &ca);
        n++;
        if (fn(ctx, &ca)) break;
    }
    if (s != SQLITE_ROW && s != SQLITE_DONE) rc = kl_reg_db_fail(reg->rdb, err, "ca list");
    kl_reg_done(st);
    kl_reg_rend(reg);
    return rc;
}
