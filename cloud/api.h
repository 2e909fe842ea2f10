/*
 * keylinkd's control-plane HTTP API: AWS IoT's REST paths and JSON shapes over
 * libmicrohttpd, bearer-token protected. docs/api.md lists every route.
 *
 * The server (api_server.c) authenticates, limits and parses the body, routes, and turns a
 * handler's kl_reg_rc into the AWS error JSON {"__type": ..., "message": ...} with the
 * matching HTTP status. Handlers live in api_<group>.c and only call the registry.
 */
#ifndef KL_CLOUD_API_H
#define KL_CLOUD_API_H

#include <stddef.h>

#include <jansson.h>

#include "registry.h"

#define KL_API_MAX_BODY_DEFAULT (256u * 1024)
#define KL_API_MAX_IMPORT_DEFAULT (512u * 1024 * 1024)

struct kl_api_cfg {
    const char *host;             /* address to bind, e.g. "127.0.0.1" */
    int port;                     /* 0 picks a free port (see kl_api_port) */
    const char *token;            /* the admin bearer token */
    size_t max_body;              /* JSON requests; larger gets 413 */
    size_t max_import;            /* the bulk import's JSON-lines body */
    const char *endpoint_address; /* what describe-endpoint answers */
    int threads;                  /* worker threads (default 4) */
    /* GET /metrics (no token: counters only, no secrets): malloc'd text, NULL = 404 */
    char *(*metrics)(void *ctx);
    void *metrics_ctx;
    /* HTTPS when both are set (PEM text, copied): the endpoint's server certificate */
    const char *tls_cert_pem;
    const char *tls_key_pem;
};

struct kl_api;

/* Starts serving; KL_REG_INTERNAL with a message when the address cannot be bound. */
kl_reg_rc kl_api_start(struct kl_registry *reg, const struct kl_api_cfg *cfg, struct kl_api **out,
                       struct kl_reg_err *err);
int kl_api_port(const struct kl_api *api);
void kl_api_stop(struct kl_api *api);

/* ---- for the handlers ---------------------------------------------------------------- */

struct kl_api_req {
    struct kl_api *api;
    struct kl_registry *reg;
    void *conn;         /* struct MHD_Connection * */
    const char *param;  /* the path's first {} segment, URL-decoded, or NULL */
    const char *param2; /* the second one (a policy version id), or NULL */
    json_t *body;       /* the JSON body (an object), or NULL when there was none */
    const char *raw;    /* raw body bytes (for the import) */
    size_t raw_len;
    json_t *out; /* the handler's answer (NULL = {}) */
};

typedef kl_reg_rc (*kl_api_fn)(struct kl_api_req *r, struct kl_reg_err *err);

/* A query-string or header value, or NULL. */
const char *kl_api_query(struct kl_api_req *r, const char *name);
const char *kl_api_header(struct kl_api_req *r, const char *name);
/* Optional string member of the body: *out = NULL when absent or null; KL_REG_INVALID when
 * it has another type. */
kl_reg_rc kl_api_body_str(struct kl_api_req *r, const char *key, const char **out,
                          struct kl_reg_err *err);
/* Boolean query value: 1, 0, or def when absent; KL_REG_INVALID when not true/false. */
kl_reg_rc kl_api_query_bool(struct kl_api_req *r, const char *name, int def, int *out,
                            struct kl_reg_err *err);
/* Page from the query (size_param, token_param, order param "isAscendingOrder" or
 * "ascendingOrder"); default size 25... max 250. */
kl_reg_rc kl_api_page(struct kl_api_req *r, const char *size_param, const char *token_param,
                      struct kl_reg_page *page, struct kl_reg_err *err);
const char *kl_api_endpoint_address(struct kl_api_req *r);

/* Handlers, one file per resource group. */
kl_reg_rc kl_api_registration_code(struct kl_api_req *r, struct kl_reg_err *err);
kl_reg_rc kl_api_describe_endpoint(struct kl_api_req *r, struct kl_reg_err *err);
kl_reg_rc kl_api_bulk_import(struct kl_api_req *r, struct kl_reg_err *err);

kl_reg_rc kl_api_ca_register(struct kl_api_req *r, struct kl_reg_err *err);
kl_reg_rc kl_api_ca_update(struct kl_api_req *r, struct kl_reg_err *err);
kl_reg_rc kl_api_ca_describe(struct kl_api_req *r, struct kl_reg_err *err);
kl_reg_rc kl_api_ca_delete(struct kl_api_req *r, struct kl_reg_err *err);
kl_reg_rc kl_api_ca_list(struct kl_api_req *r, struct kl_reg_err *err);

kl_reg_rc kl_api_cert_register(struct kl_api_req *r, struct kl_reg_err *err);
kl_reg_rc kl_api_cert_update(struct kl_api_req *r, struct kl_reg_err *err);
kl_reg_rc kl_api_cert_describe(struct kl_api_req *r, struct kl_reg_err *err);
kl_reg_rc kl_api_cert_delete(struct kl_api_req *r, struct kl_reg_err *err);
kl_reg_rc kl_api_cert_list(struct kl_api_req *r, struct kl_reg_err *err);
kl_reg_rc kl_api_cert_list_by_ca(struct kl_api_req *r, struct kl_reg_err *err);

kl_reg_rc kl_api_thing_create(struct kl_api_req *r, struct kl_reg_err *err);
kl_reg_rc kl_api_thing_describe(struct kl_api_req *r, struct kl_reg_err *err);
kl_reg_rc kl_api_thing_update(struct kl_api_req *r, struct kl_reg_err *err);
kl_reg_rc kl_api_thing_delete(struct kl_api_req *r, struct kl_reg_err *err);
kl_reg_rc kl_api_thing_list(struct kl_api_req *r, struct kl_reg_err *err);
kl_reg_rc kl_api_thing_attach(struct kl_api_req *r, struct kl_reg_err *err);
kl_reg_rc kl_api_thing_detach(struct kl_api_req *r, struct kl_reg_err *err);
kl_reg_rc kl_api_thing_principals(struct kl_api_req *r, struct kl_reg_err *err);
kl_reg_rc kl_api_principal_things(struct kl_api_req *r, struct kl_reg_err *err);

kl_reg_rc kl_api_policy_create(struct kl_api_req *r, struct kl_reg_err *err);
kl_reg_rc kl_api_policy_version_create(struct kl_api_req *r, struct kl_reg_err *err);
kl_reg_rc kl_api_policy_version_list(struct kl_api_req *r, struct kl_reg_err *err);
kl_reg_rc kl_api_policy_version_get(struct kl_api_req *r, struct kl_reg_err *err);
kl_reg_rc kl_api_policy_version_default(struct kl_api_req *r, struct kl_reg_err *err);
kl_reg_rc kl_api_policy_version_delete(struct kl_api_req *r, struct kl_reg_err *err);
kl_reg_rc kl_api_policy_get(struct kl_api_req *r, struct kl_reg_err *err);
kl_reg_rc kl_api_policy_delete(struct kl_api_req *r, struct kl_reg_err *err);
kl_reg_rc kl_api_policy_list(struct kl_api_req *r, struct kl_reg_err *err);
kl_reg_rc kl_api_policy_attach(struct kl_api_req *r, struct kl_reg_err *err);
kl_reg_rc kl_api_policy_detach(struct kl_api_req *r, struct kl_reg_err *err);
kl_reg_rc kl_api_policy_attached(struct kl_api_req *r, struct kl_reg_err *err);

#endif
