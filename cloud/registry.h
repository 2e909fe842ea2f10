/*
 * The keylinkd registry: CA certificates, device certificates, things, IoT policies and
 * the attachments between them, kept in one SQLite database (WAL, synchronous=FULL).
 * Names, states and rules follow AWS IoT Core; docs/registry.md describes them.
 *
 * Threads: one struct kl_registry may be used from any number of threads at once. Writes
 * go through one connection under a mutex and return only after the commit is durable;
 * reads use a second connection (WAL readers never wait for the writer).
 *
 * Every function returns a kl_reg_rc; on failure it also fills err (when not NULL) with a
 * message fit for the API caller (never key material). SQL lives only in registry_*.c.
 */
#ifndef KL_CLOUD_REGISTRY_H
#define KL_CLOUD_REGISTRY_H

#include <stddef.h>
#include <stdint.h>

/* Outcome of a registry call; each maps to one AWS IoT error name and HTTP status. */
typedef enum kl_reg_rc {
    KL_REG_OK = 0,
    KL_REG_NOT_FOUND,        /* ResourceNotFoundException, 404 */
    KL_REG_EXISTS,           /* ResourceAlreadyExistsException, 409 */
    KL_REG_INVALID,          /* InvalidRequestException, 400 */
    KL_REG_CERT_STATE,       /* CertificateStateException, 406 */
    KL_REG_CERT_INVALID,     /* CertificateValidationException, 400 */
    KL_REG_REG_CODE,         /* RegistrationCodeValidationException, 400 */
    KL_REG_DELETE_CONFLICT,  /* DeleteConflictException, 409 */
    KL_REG_VERSION_CONFLICT, /* VersionConflictException, 409 */
    KL_REG_MALFORMED_POLICY, /* MalformedPolicyException, 400 */
    KL_REG_LIMIT,            /* LimitExceededException, 410 */
    KL_REG_INTERNAL,         /* InternalFailureException, 500 (nothing was changed) */
} kl_reg_rc;

struct kl_reg_err {
    kl_reg_rc rc;
    char msg[256];
};

/* AWS error name ("ResourceNotFoundException") and HTTP status of a result code. */
const char *kl_reg_rc_name(kl_reg_rc rc);
int kl_reg_rc_http(kl_reg_rc rc);

/* Sets err (if not NULL) to rc and a printf-style message; returns rc. */
kl_reg_rc kl_reg_fail(struct kl_reg_err *err, kl_reg_rc rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define KL_REG_ID_HEX 65     /* 64 hex digits of a SHA-256 + NUL */
#define KL_REG_NAME_MAX 129  /* thing and policy names: 1..128 characters */
#define KL_REG_ARN_MAX 320   /* arn:aws:iot:<region>:<account>:thing/<128 chars> fits */
#define KL_REG_STATUS_MAX 24 /* PENDING_ACTIVATION + NUL */

struct kl_registry;

struct kl_registry_opts {
    const char *region;     /* "us-east-1" when NULL */
    const char *account_id; /* "123456789012" when NULL; 12 digits */
};

/* Opens (creating if needed) the registry database at path, applies schema migrations
 * and generates the account's registration code on first use. KL_REG_INTERNAL when the
 * file cannot be opened, is not a keylink registry, or has a newer schema version. */
kl_reg_rc kl_registry_open(const char *path, const struct kl_registry_opts *opts,
                           struct kl_registry **out, struct kl_reg_err *err);
void kl_registry_close(struct kl_registry *reg);

/* Schema version this build writes (PRAGMA user_version). */
int kl_registry_schema_version(void);
const char *kl_registry_region(const struct kl_registry *reg);
const char *kl_registry_account(const struct kl_registry *reg);

/* ---- change notification (revocation etc.) ------------------------------------------ */

enum kl_reg_change {
    KL_REG_CHANGE_CERT_STATUS, /* id = certificate id, status = its new status */
    KL_REG_CHANGE_CERT_DELETED,
    KL_REG_CHANGE_CA_STATUS, /* id = CA certificate id, status = its new status */
    KL_REG_CHANGE_CA_DELETED,
    KL_REG_CHANGE_THING_PRINCIPAL, /* id = certificate id; attachments changed */
    KL_REG_CHANGE_POLICY,          /* id = policy name; document or attachments changed */
    KL_REG_CHANGE_THING_DELETED,   /* id = thing name */
};
/* Called after the change is committed, on the thread that made it, outside any
 * registry lock (the hook may call back into the registry). status may be "". */
typedef void (*kl_reg_hook_fn)(void *ctx, enum kl_reg_change what, const char *id,
                               const char *status);
/* Sets the one hook (NULL removes it). Set it before other threads use the registry. */
void kl_registry_set_hook(struct kl_registry *reg, kl_reg_hook_fn fn, void *ctx);

/* ---- pagination ---------------------------------------------------------------------- */

/* A page request: at most `limit` rows (1..250) after the opaque `token` (NULL = start).
 * On return next_token holds the token for the following page, "" when this was the last.
 * A token that this registry did not make gives KL_REG_INVALID. */
struct kl_reg_page {
    int limit;
    const char *token;
    int descending; /* order by id/name descending when not 0 (AWS isAscendingOrder) */
    char next_token[KL_REG_ARN_MAX * 2];
};

/* ---- account ------------------------------------------------------------------------- */

/* The account's CA registration code (64 hex digits), stable for the registry's life. */
kl_reg_rc kl_reg_registration_code(struct kl_registry *reg, char code[KL_REG_ID_HEX],
                                   struct kl_reg_err *err);

/* ---- CA certificates ----------------------------------------------------------------- */

struct kl_reg_ca {
    char id[KL_REG_ID_HEX]; /* hex SHA-256 of the DER */
    char arn[KL_REG_ARN_MAX];
    char status[KL_REG_STATUS_MAX];    /* ACTIVE | INACTIVE */
    char auto_reg[KL_REG_STATUS_MAX];  /* ENABLE | DISABLE */
    char mode[KL_REG_STATUS_MAX];      /* DEFAULT | SNI_ONLY */
    int64_t created, modified;         /* unix seconds */
    int64_t not_before, not_after;     /* validity, unix seconds */
    int version;                       /* customerVersion */
    char generation_id[KL_REG_ID_HEX]; /* changes on every update */
    char *pem;                         /* malloc'd (describe only), free with kl_reg_ca_clear */
};
void kl_reg_ca_clear(struct kl_reg_ca *ca);

/* Registers a CA. ca_pem must hold one CA certificate (basicConstraints CA:TRUE); unless
 * mode is "SNI_ONLY", verif_pem must be a certificate signed by that CA whose subject CN
 * is the registration code. Errors: KL_REG_CERT_INVALID (unparsable, not a CA, expired,
 * verification not signed by the CA), KL_REG_REG_CODE (CN is not the code),
 * KL_REG_EXISTS (same certificate already registered), KL_REG_INVALID. */
kl_reg_rc kl_reg_ca_register(struct kl_registry *reg, const char *ca_pem, const char *verif_pem,
                             int set_active, int allow_auto_registration, const char *mode,
                             struct kl_reg_ca *out, struct kl_reg_err *err);
/* new_status: NULL, ACTIVE or INACTIVE; new_auto: NULL, ENABLE or DISABLE. */
kl_reg_rc kl_reg_ca_update(struct kl_registry *reg, const char *id, const char *new_status,
                           const char *new_auto, struct kl_reg_err *err);
kl_reg_rc kl_reg_ca_get(struct kl_registry *reg, const char *id, int with_pem,
                        struct kl_reg_ca *out, struct kl_reg_err *err);
/* Deletes an INACTIVE CA that no registered device certificate names
 * (KL_REG_CERT_STATE if ACTIVE, KL_REG_DELETE_CONFLICT if certificates use it). */
kl_reg_rc kl_reg_ca_delete(struct kl_registry *reg, const char *id, struct kl_reg_err *err);
typedef int (*kl_reg_ca_fn)(void *ctx, const struct kl_reg_ca *ca); /* non-0 stops */
kl_reg_rc kl_reg_ca_list(struct kl_registry *reg, struct kl_reg_page *page, kl_reg_ca_fn fn,
                         void *ctx, struct kl_reg_err *err);

/* ---- device certificates -------------------------------------------------------------- */

struct kl_reg_cert {
    char id[KL_REG_ID_HEX];
    char arn[KL_REG_ARN_MAX];
    char ca_id[KL_REG_ID_HEX]; /* the registered CA it chains to */
    char status[KL_REG_STATUS_MAX];
    char mode[KL_REG_STATUS_MAX];
    int64_t created, modified, not_before, not_after;
    int version;
    char generation_id[KL_REG_ID_HEX];
    char *pem; /* malloc'd when asked for; free with kl_reg_cert_clear */
};
void kl_reg_cert_clear(struct kl_reg_cert *c);

/* Registers a device certificate that chains (is directly signed by) a registered CA:
 * the one given as ca_pem, or else the registered CA whose subject is its issuer.
 * status: ACTIVE | INACTIVE | REVOKED | PENDING_ACTIVATION (NULL = INACTIVE).
 * Errors: KL_REG_CERT_INVALID (unparsable, a CA itself, expired, CA unknown, signature
 * wrong), KL_REG_CERT_STATE (its CA is INACTIVE), KL_REG_EXISTS, KL_REG_INVALID. */
kl_reg_rc kl_reg_cert_register(struct kl_registry *reg, const char *pem, const char *ca_pem,
                               const char *status, struct kl_reg_cert *out, struct kl_reg_err *err);
/* Moves a certificate to new_status (ACTIVE | INACTIVE | REVOKED). A REVOKED certificate
 * cannot come back (KL_REG_CERT_STATE). Fires KL_REG_CHANGE_CERT_STATUS. */
kl_reg_rc kl_reg_cert_update(struct kl_registry *reg, const char *id, const char *new_status,
                             struct kl_reg_err *err);
kl_reg_rc kl_reg_cert_get(struct kl_registry *reg, const char *id, int with_pem,
                          struct kl_reg_cert *out, struct kl_reg_err *err);
/* Looks a certificate up by its DER bytes (the data plane's fingerprint lookup). */
kl_reg_rc kl_reg_cert_get_der(struct kl_registry *reg, const uint8_t *der, size_t der_len,
                              struct kl_reg_cert *out, struct kl_reg_err *err);
/* Deletes a certificate that is not ACTIVE (KL_REG_CERT_STATE), not attached to a thing
 * (KL_REG_DELETE_CONFLICT) and, unless force, has no policy attached. */
kl_reg_rc kl_reg_cert_delete(struct kl_registry *reg, const char *id, int force,
                             struct kl_reg_err *err);
typedef int (*kl_reg_cert_fn)(void *ctx, const struct kl_reg_cert *c);
/* Lists all certificates, or those of one CA when ca_id is not NULL. */
kl_reg_rc kl_reg_cert_list(struct kl_registry *reg, const char *ca_id, struct kl_reg_page *page,
                           kl_reg_cert_fn fn, void *ctx, struct kl_reg_err *err);

/* ---- things ----------------------------------------------------------------------------- */

struct kl_reg_thing {
    char name[KL_REG_NAME_MAX];
    char arn[KL_REG_ARN_MAX];
    char id[40];                /* UUID */
    char type[KL_REG_NAME_MAX]; /* thingTypeName, "" when none */
    int64_t version;
    char *attributes; /* malloc'd JSON object text ({"k":"v",...}); kl_reg_thing_clear */
};
void kl_reg_thing_clear(struct kl_reg_thing *t);

/* Thing names: 1..128 of [a-zA-Z0-9:_-]. Attributes (JSON object text, string values)
 * follow AWS's rules and count (at most 50). */
int kl_reg_thing_name_ok(const char *name);
kl_reg_rc kl_reg_attributes_check(const char *attributes_json, struct kl_reg_err *err);
/* Creates a thing (KL_REG_EXISTS if a thing of that name exists). attributes may be NULL. */
kl_reg_rc kl_reg_thing_create(struct kl_registry *reg, const char *name, const char *type,
                              const char *attributes, struct kl_reg_thing *out,
                              struct kl_reg_err *err);
/* Updates attributes (merge: keys with "" values are removed; else replaced whole) and/or
 * type (remove_type clears it). expected_version < 0 skips the version check
 * (KL_REG_VERSION_CONFLICT otherwise). */
kl_reg_rc kl_reg_thing_update(struct kl_registry *reg, const char *name, const char *type,
                              int remove_type, const char *attributes, int merge,
                              int64_t expected_version, struct kl_reg_err *err);
kl_reg_rc kl_reg_thing_get(struct kl_registry *reg, const char *name, struct kl_reg_thing *out,
                           struct kl_reg_err *err);
/* Deletes a thing; a thing that does not exist is not an error (AWS). A thing with
 * principals attached gives KL_REG_INVALID (detach them first). */
kl_reg_rc kl_reg_thing_delete(struct kl_registry *reg, const char *name, int64_t expected_version,
                              struct kl_reg_err *err);
typedef int (*kl_reg_thing_fn)(void *ctx, const struct kl_reg_thing *t);
/* Lists things, filtered by attribute name (and value) or type when not NULL. */
kl_reg_rc kl_reg_thing_list(struct kl_registry *reg, const char *attr_name, const char *attr_value,
                            const char *type, struct kl_reg_page *page, kl_reg_thing_fn fn,
                            void *ctx, struct kl_reg_err *err);

/* ---- principals (certificate ARNs) ---------------------------------------------------- */

/* Parses a certificate ARN of this registry's region/account into its id. 0 on success. */
int kl_reg_principal_cert_id(const struct kl_registry *reg, const char *principal,
                             char id[KL_REG_ID_HEX]);
kl_reg_rc kl_reg_thing_attach(struct kl_registry *reg, const char *thing, const char *principal,
                              struct kl_reg_err *err);
kl_reg_rc kl_reg_thing_detach(struct kl_registry *reg, const char *thing, const char *principal,
                              struct kl_reg_err *err);
typedef int (*kl_reg_str_fn)(void *ctx, const char *s);
/* Principals (ARNs) attached to a thing; things attached to a principal. */
kl_reg_rc kl_reg_thing_principals(struct kl_registry *reg, const char *thing,
                                  struct kl_reg_page *page, kl_reg_str_fn fn, void *ctx,
                                  struct kl_reg_err *err);
kl_reg_rc kl_reg_principal_things(struct kl_registry *reg, const char *principal,
                                  struct kl_reg_page *page, kl_reg_str_fn fn, void *ctx,
                                  struct kl_reg_err *err);

/* ---- policies --------------------------------------------------------------------------- */

struct kl_reg_policy {
    char name[KL_REG_NAME_MAX];
    char arn[KL_REG_ARN_MAX];
    char default_version[16];
    int64_t created, modified;
    char generation_id[KL_REG_ID_HEX];
    char *document; /* malloc'd (default version's JSON text); kl_reg_policy_clear */
};
void kl_reg_policy_clear(struct kl_reg_policy *p);

/* Policy names: 1..128 of [a-zA-Z0-9+=,.@_-]. */
int kl_reg_policy_name_ok(const char *name);
/* Creates a policy with version "1" as default (document checked by kl_policy_check). */
kl_reg_rc kl_reg_policy_create(struct kl_registry *reg, const char *name, const char *document,
                               struct kl_reg_policy *out, struct kl_reg_err *err);
/* Adds a version (at most 5 per policy, KL_REG_LIMIT), optionally as the default. */
kl_reg_rc kl_reg_policy_version_create(struct kl_registry *reg, const char *name,
                                       const char *document, int set_default, char version[16],
                                       struct kl_reg_err *err);
kl_reg_rc kl_reg_policy_get(struct kl_registry *reg, const char *name, struct kl_reg_policy *out,
                            struct kl_reg_err *err);
struct kl_reg_policy_version {
    char version[16];
    int is_default;
    int64_t created;
    char *document; /* malloc'd by kl_reg_policy_version_get only; free() it */
};
typedef int (*kl_reg_pv_fn)(void *ctx, const struct kl_reg_policy_version *v);
/* Every version of a policy, newest first. */
kl_reg_rc kl_reg_policy_versions(struct kl_registry *reg, const char *name, kl_reg_pv_fn fn,
                                 void *ctx, struct kl_reg_err *err);
kl_reg_rc kl_reg_policy_version_get(struct kl_registry *reg, const char *name, const char *version,
                                    struct kl_reg_policy_version *out, struct kl_reg_err *err);
/* Makes version the default (fires KL_REG_CHANGE_POLICY). */
kl_reg_rc kl_reg_policy_version_default(struct kl_registry *reg, const char *name,
                                        const char *version, struct kl_reg_err *err);
/* Deletes a version that is not the default (KL_REG_DELETE_CONFLICT for the default). */
kl_reg_rc kl_reg_policy_version_delete(struct kl_registry *reg, const char *name,
                                       const char *version, struct kl_reg_err *err);
/* Deletes a policy that is attached to nothing and has only its default version
 * (KL_REG_DELETE_CONFLICT otherwise). */
kl_reg_rc kl_reg_policy_delete(struct kl_registry *reg, const char *name, struct kl_reg_err *err);
kl_reg_rc kl_reg_policy_list(struct kl_registry *reg, struct kl_reg_page *page, kl_reg_str_fn fn,
                             void *ctx, struct kl_reg_err *err);
/* target: a certificate ARN of this registry (KL_REG_NOT_FOUND if unknown). */
kl_reg_rc kl_reg_policy_attach(struct kl_registry *reg, const char *name, const char *target,
                               struct kl_reg_err *err);
kl_reg_rc kl_reg_policy_detach(struct kl_registry *reg, const char *name, const char *target,
                               struct kl_reg_err *err);
/* Names of the policies attached to target. */
kl_reg_rc kl_reg_policy_attached(struct kl_registry *reg, const char *target,
                                 struct kl_reg_page *page, kl_reg_str_fn fn, void *ctx,
                                 struct kl_reg_err *err);
/* The data plane's lookup: the default-version documents of every policy attached to
 * target, one call of fn per document (no paging). */
kl_reg_rc kl_reg_policies_for_principal(struct kl_registry *reg, const char *target,
                                        kl_reg_str_fn fn, void *ctx, struct kl_reg_err *err);

/* ---- bulk import -------------------------------------------------------------------------- */

struct kl_reg_import_result {
    long lines, things_created, certs_registered, attached, failed;
    long first_failed_line; /* 1-based, 0 when none */
    char first_error[256];
};
/* Imports the batch-provisioning file (docs/registry.md, "Bulk import"; init_tls_iot
 * --batch writes it as bulk-registration.jsonl): one JSON object per line with thingName
 * and certificatePem; optional caCertificatePem, caCertificateId and certificateId (both
 * checked when present), status, attributes, policyName; other fields are ignored. Each line
 * creates the thing (if missing), registers the certificate and attaches it. All lines are applied
 * in one transaction: when any line fails nothing is changed and res->first_failed_line names it
 * (all-or-nothing). */
kl_reg_rc kl_reg_import(struct kl_registry *reg, const char *data, size_t len,
                        const char *default_status, struct kl_reg_import_result *res,
                        struct kl_reg_err *err);

#endif
