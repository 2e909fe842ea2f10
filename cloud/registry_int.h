/* Internals shared by the registry_*.c files; nothing outside the registry includes this. */
#ifndef KL_CLOUD_REGISTRY_INT_H
#define KL_CLOUD_REGISTRY_INT_H

#include <pthread.h>
#include <sqlite3.h>

#include "registry.h"

struct kl_registry {
    sqlite3 *wdb; /* writer connection, used under wlock */
    sqlite3 *rdb; /* reader connection, used under rlock */
    pthread_mutex_t wlock, rlock;
    char region[32];
    char account[16];
    kl_reg_hook_fn hook;
    void *hook_ctx;
};

/* Pending change notifications, collected inside a write transaction and delivered
 * after commit (never for a rolled-back change). */
#define KL_REG_MAX_EVENTS 8
struct kl_reg_events {
    int n;
    struct {
        enum kl_reg_change what;
        char id[KL_REG_NAME_MAX];
        char status[KL_REG_STATUS_MAX];
    } ev[KL_REG_MAX_EVENTS];
};
void kl_reg_event_add(struct kl_reg_events *evs, enum kl_reg_change what, const char *id,
                      const char *status);
void kl_reg_events_fire(struct kl_registry *reg, const struct kl_reg_events *evs);

/* Write transaction: locks wlock and BEGIN IMMEDIATE. end commits when rc is KL_REG_OK
 * (a failed commit turns into KL_REG_INTERNAL), else rolls back; it always unlocks. */
kl_reg_rc kl_reg_wbegin(struct kl_registry *reg, struct kl_reg_err *err);
kl_reg_rc kl_reg_wend(struct kl_registry *reg, kl_reg_rc rc, struct kl_reg_err *err);
/* Read section: locks rlock and opens a read transaction (one consistent snapshot). */
void kl_reg_rbegin(struct kl_registry *reg);
void kl_reg_rend(struct kl_registry *reg);

/* Prepares sql on db; on failure reports KL_REG_INTERNAL and returns NULL. Statements are
 * cached per connection (the same SQL text is compiled once); hand every statement back
 * with kl_reg_done, never sqlite3_finalize. */
sqlite3_stmt *kl_reg_prep(sqlite3 *db, const char *sql, struct kl_reg_err *err);
void kl_reg_done(sqlite3_stmt *st);
/* Finalizes the cached statements of db (before it is closed). */
void kl_reg_cache_drop(sqlite3 *db);
/* Binds a C string as text (NULL binds SQL NULL). */
void kl_reg_bind_text(sqlite3_stmt *st, int i, const char *s);
/* Runs a statement that returns no rows, finalizing it. */
kl_reg_rc kl_reg_exec_stmt(sqlite3 *db, sqlite3_stmt *st, struct kl_reg_err *err);
kl_reg_rc kl_reg_db_fail(sqlite3 *db, struct kl_reg_err *err, const char *what);
/* Copies column i as text into dst (size n), "" for NULL; malloc'd copy for kl_reg_col_dup. */
void kl_reg_col_copy(sqlite3_stmt *st, int i, char *dst, size_t n);
char *kl_reg_col_dup(sqlite3_stmt *st, int i);

int64_t kl_reg_now(void);
/* n random bytes as 2n lowercase hex digits + NUL. 0 on success. */
int kl_reg_random_hex(char *out, size_t nbytes);
void kl_reg_uuid(char out[40]);
int kl_reg_is_hex64(const char *s);

/* Page tokens: the last key of a page, hex-encoded. decode: 0 ok (key "" when token is
 * NULL or ""), -1 when the token is not one of ours. */
void kl_reg_token_encode(const char *key, char *out, size_t n);
/* Runs st (bound with LIMIT page->limit + 1) and hands fn the text of value_col of each
 * row up to page->limit; column 0 is the page key: a further row sets page->next_token.
 * Finalizes st and ends the read transaction. Returns rc, or a database failure (what). */
kl_reg_rc kl_reg_page_strings(struct kl_registry *reg, sqlite3_stmt *st, struct kl_reg_page *page,
                              int value_col, kl_reg_str_fn fn, void *ctx, kl_reg_rc rc,
                              const char *what, struct kl_reg_err *err);
int kl_reg_token_decode(const char *token, char *key, size_t n);
/* Checks the page limit (1..250) and decodes its token into key; KL_REG_INVALID on error. */
kl_reg_rc kl_reg_page_start(struct kl_reg_page *page, char *key, size_t n, struct kl_reg_err *err);

void kl_reg_cert_arn(const struct kl_registry *reg, const char *id, char *out, size_t n);
void kl_reg_ca_arn(const struct kl_registry *reg, const char *id, char *out, size_t n);
void kl_reg_thing_arn(const struct kl_registry *reg, const char *name, char *out, size_t n);
void kl_reg_policy_arn(const struct kl_registry *reg, const char *name, char *out, size_t n);

/* Registered CAs looked up in one write transaction (the bulk import loads them all up
 * front and matches many certificates against them from several threads: the entries are
 * only read then). Free with kl_reg_ca_cache_free. */
struct kl_reg_ca_cache {
    int n, cap;
    struct kl_reg_ca_entry {
        void *x509; /* X509 *, extensions cached so concurrent reads do not write */
        char id[KL_REG_ID_HEX];
        char status[KL_REG_STATUS_MAX];
        char mode[KL_REG_STATUS_MAX];
    } * e;
};
void kl_reg_ca_cache_free(struct kl_reg_ca_cache *c);
/* Loads every registered CA into c (inside a write transaction). */
kl_reg_rc kl_reg_ca_cache_load(struct kl_registry *reg, struct kl_reg_ca_cache *c,
                               struct kl_reg_err *err);

/* A device certificate checked and matched to its CA, ready to be inserted. */
struct kl_reg_cert_new {
    char id[KL_REG_ID_HEX], ca_id[KL_REG_ID_HEX];
    char ca_status[KL_REG_STATUS_MAX], mode[KL_REG_STATUS_MAX];
    int64_t not_before, not_after;
    char *pem; /* canonical PEM, malloc'd */
};
/* Checks pem without the database: exactly one certificate, not a CA, valid now, and its
 * id equal to want_id when given. *x gets the parsed certificate (caller frees). */
kl_reg_rc kl_reg_cert_parse(const char *pem, const char *want_id, void **x,
                            struct kl_reg_cert_new *n, struct kl_reg_err *err);
/* Matches x to a CA of cache (the one whose PEM is ca_pem when given) by issuer name and
 * signature; fills n's CA fields. KL_REG_CERT_INVALID when none signed it. No database. */
kl_reg_rc kl_reg_ca_cache_match(const struct kl_reg_ca_cache *cache, void *x, const char *ca_pem,
                                struct kl_reg_cert_new *n, struct kl_reg_err *err);
/* Inserts n (its CA must be ACTIVE: KL_REG_CERT_STATE; a duplicate: KL_REG_EXISTS) inside
 * an open write transaction. Takes n->pem. */
kl_reg_rc kl_reg_cert_insert_tx(struct kl_registry *reg, struct kl_reg_cert_new *n,
                                const char *status, struct kl_reg_err *err);
/* Registers a device certificate inside an open write transaction; out gets id and arn.
 * want_id / want_ca_id (may be NULL): the certificate's id and its CA's id must be these
 * (KL_REG_CERT_INVALID otherwise), checked before anything is written. */
kl_reg_rc kl_reg_cert_register_tx(struct kl_registry *reg, const char *pem, const char *ca_pem,
                                  const char *status, const char *want_id, const char *want_ca_id,
                                  struct kl_reg_cert *out, struct kl_reg_err *err);
int kl_reg_cert_status_ok(const char *s);
kl_reg_rc kl_reg_thing_create_tx(struct kl_registry *reg, const char *name, const char *type,
                                 const char *attributes, int *created, struct kl_reg_err *err);
kl_reg_rc kl_reg_thing_attach_tx(struct kl_registry *reg, const char *thing, const char *cert_id,
                                 struct kl_reg_err *err);
kl_reg_rc kl_reg_policy_attach_tx(struct kl_registry *reg, const char *name, const char *target,
                                  struct kl_reg_err *err);

#endif
