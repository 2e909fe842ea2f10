/* Control-plane HTTP server: auth, body limits, routing, AWS-style errors (libmicrohttpd). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <openssl/crypto.h>
#include <sys/socket.h>

#include "api.h"

struct kl_api {
    struct MHD_Daemon *d;
    struct kl_registry *reg;
    char *token;
    size_t max_body, max_import;
    char endpoint[256];
    int port;
    char *(*metrics)(void *ctx);
    void *metrics_ctx;
    char *tls_cert, *tls_key; /* kept while the daemon runs */
};

enum { BODY_NONE, BODY_JSON, BODY_RAW };

struct route {
    const char *method;
    const char *pattern; /* "{}" matches one segment, "{*}" the rest of the path */
    kl_api_fn fn;
    int body;
};

static const struct route routes[] = {
    {"GET", "/registrationcode", kl_api_registration_code, BODY_NONE},
    {"GET", "/endpoint", kl_api_describe_endpoint, BODY_NONE},
    {"POST", "/keylink/import", kl_api_bulk_import, BODY_RAW},
    {"POST", "/cacertificate", kl_api_ca_register, BODY_JSON},
    {"PUT", "/cacertificate/{}", kl_api_ca_update, BODY_JSON},
    {"GET", "/cacertificate/{}", kl_api_ca_describe, BODY_NONE},
    {"DELETE", "/cacertificate/{}", kl_api_ca_delete, BODY_NONE},
    {"GET", "/cacertificates", kl_api_ca_list, BODY_NONE},
    {"POST", "/certificate/register", kl_api_cert_register, BODY_JSON},
    {"PUT", "/certificates/{}", kl_api_cert_update, BODY_JSON},
    {"GET", "/certificates/{}", kl_api_cert_describe, BODY_NONE},
    {"DELETE", "/certificates/{}", kl_api_cert_delete, BODY_NONE},
    {"GET", "/certificates", kl_api_cert_list, BODY_NONE},
    {"GET", "/certificates-by-ca/{}", kl_api_cert_list_by_ca, BODY_NONE},
    {"POST", "/things/{}", kl_api_thing_create, BODY_JSON},
    {"GET", "/things/{}", kl_api_thing_describe, BODY_NONE},
    {"PATCH", "/things/{}", kl_api_thing_update, BODY_JSON},
    {"DELETE", "/things/{}", kl_api_thing_delete, BODY_NONE},
    {"GET", "/things", kl_api_thing_list, BODY_NONE},
    {"PUT", "/things/{}/principals", kl_api_thing_attach, BODY_JSON},
    {"DELETE", "/things/{}/principals", kl_api_thing_detach, BODY_NONE},
    {"GET", "/things/{}/principals", kl_api_thing_principals, BODY_NONE},
    {"GET", "/principals/things", kl_api_principal_things, BODY_NONE},
    {"POST", "/policies/{}", kl_api_policy_create, BODY_JSON},
    {"POST", "/policies/{}/version", kl_api_policy_version_create, BODY_JSON},
    {"GET", "/policies/{}/version", kl_api_policy_version_list, BODY_NONE},
    {"GET", "/policies/{}/version/{}", kl_api_policy_version_get, BODY_NONE},
    {"PATCH", "/policies/{}/version/{}", kl_api_policy_version_default, BODY_JSON},
    {"DELETE", "/policies/{}/version/{}", kl_api_policy_version_delete, BODY_NONE},
    {"GET", "/policies/{}", kl_api_policy_get, BODY_NONE},
    {"DELETE", "/policies/{}", kl_api_policy_delete, BODY_NONE},
    {"GET", "/policies", kl_api_policy_list, BODY_NONE},
    {"PUT", "/target-policies/{}", kl_api_policy_attach, BODY_JSON},
    {"POST", "/target-policies/{}", kl_api_policy_detach, BODY_JSON},
    {"POST", "/attached-policies/{*}", kl_api_policy_attached, BODY_JSON},
};

struct conn {
    const struct route *route;
    char params[2][512];
    char url[256]; /* for the audit line, cut when longer */
    int path_known, method_ok;
    size_t limit;
    char *buf;
    size_t len, cap;
    int too_large;
    int responded; /* an error was queued before the body: ignore the rest */
};

/* Matches path against pattern; copies the {} parts (at most two) into params. */
static int match(const char *pattern, const char *path, char params[2][512])
{
    int k = 0;
    params[0][0] = params[1][0] = 0;
    while (*pattern && *path) {
        if (!strncmp(pattern, "{*}", 3)) {
            if (k > 1 || strlen(path) >= sizeof params[0]) return 0;
            snprintf(params[k], sizeof params[0], "%s", path);
            return 1;
        }
        if (!strncmp(pattern, "{}", 2)) {
            size_t seg = strcspn(path, "/");
            if (k > 1 || seg == 0 || seg >= sizeof params[0]) return 0;
            memcpy(params[k], path, seg);
            params[k][seg] = 0;
            k++;
            path += seg;
            pattern += 2;
            continue;
        }
        if (*pattern != *path) return 0;
        pattern++;
        path++;
    }
    return *pattern == 0 && *path == 0;
}

static enum MHD_Result send_json(struct MHD_Connection *c, unsigned status, json_t *o,
                                 const char *err_type)
{
    char *text = json_dumps(o, JSON_COMPACT);
    if (!text) return MHD_NO;
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE);
    if (!resp) {
        free(text);
        return MHD_NO;
    }
    MHD_add_response_header(resp, "Content-Type", "application/json");
    if (err_type) MHD_add_response_header(resp, "x-amzn-ErrorType", err_type);
    enum MHD_Result r = MHD_queue_response(c, status, resp);
    MHD_destroy_response(resp);
    return r;
}

static enum MHD_Result send_error(struct MHD_Connection *c, unsigned status, const char *type,
                                  const char *msg)
{
    json_t *o = json_pack("{s:s, s:s}", "__type", type, "message", msg);
    enum MHD_Result r = send_json(c, status, o, type);
    json_decref(o);
    return r;
}

/* Prometheus scrape: served without the token, as it holds counters only. */
static enum MHD_Result send_metrics(struct kl_api *api, struct MHD_Connection *c)
{
    char *text = api->metrics ? api->metrics(api->metrics_ctx) : NULL;
    if (!text) return send_error(c, 404, "ResourceNotFoundException", "no metrics");
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE);
    if (!resp) {
        free(text);
        return MHD_NO;
    }
    MHD_add_response_header(resp, "Content-Type", "text/plain; version=0.0.4");
    enum MHD_Result r = MHD_queue_response(c, 200, resp);
    MHD_destroy_response(resp);
    return r;
}

static int token_ok(struct kl_api *api, struct MHD_Connection *c)
{
    const char *h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
    if (!h || strncmp(h, "Bearer ", 7)) return 0;
    h += 7;
    size_t n = strlen(api->token);
    return strlen(h) == n && CRYPTO_memcmp(h, api->token, n) == 0;
}

static void route_of(const char *method, const char *url, struct conn *cs)
{
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
        char p[2][512];
        if (!match(routes[i].pattern, url, p)) continue;
        cs->path_known = 1;
        if (strcmp(routes[i].method, method)) continue;
        cs->method_ok = 1;
        cs->route = &routes[i];
        memcpy(cs->params, p, sizeof p);
        return;
    }
}

static enum MHD_Result dispatch(struct kl_api *api, struct MHD_Connection *c, struct conn *cs)
{
    struct kl_api_req r = {.api = api, .reg = api->reg, .conn = c};
    r.param = cs->params[0][0] ? cs->params[0] : NULL;
    r.param2 = cs->params[1][0] ? cs->params[1] : NULL;
    r.raw = cs->buf ? cs->buf : "";
    r.raw_len = cs->len;
    if (cs->route->body == BODY_JSON && cs->len > 0) {
        json_error_t je;
        r.body = json_loadb(cs->buf, cs->len, JSON_REJECT_DUPLICATES, &je);
        if (!json_is_object(r.body)) {
            json_decref(r.body);
            return send_error(c, 400, "InvalidRequestException",
                              "the request body is not a JSON object");
        }
    }
    struct kl_reg_err err = {0};
    kl_reg_rc rc = cs->route->fn(&r, &err);
    json_decref(r.body);
    enum MHD_Result res;
    if (rc == KL_REG_OK) {
        if (!r.out) r.out = json_object();
        res = send_json(c, 200, r.out, NULL);
    } else {
        res = send_error(c, (unsigned)kl_reg_rc_http(rc), kl_reg_rc_name(rc),
                         err.msg[0] ? err.msg : kl_reg_rc_name(rc));
    }
    json_decref(r.out);
    /* audit trail of changes: who is always the admin token, so method, path, outcome */
    if (strcmp(cs->route->method, "GET"))
        fprintf(stderr, "keylinkd: api: %s %s -> %d %s\n", cs->route->method, cs->url,
                kl_reg_rc_http(rc), rc ? kl_reg_rc_name(rc) : "OK");
    return res;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_size, void **con_cls)
{
    (void)version;
    struct kl_api *api = cls;
    struct conn *cs = *con_cls;
    if (!cs) {
        cs = calloc(1, sizeof *cs);
        if (!cs) return MHD_NO;
        *con_cls = cs;
        cs->responded = 1; /* until the request is accepted below */
        if (!strcmp(url, "/metrics") && !strcmp(method, "GET")) return send_metrics(api, c);
        /* Reject before reading any body: a wrong token changes nothing. */
        if (!token_ok(api, c))
            return send_error(c, 401, "UnauthorizedException", "missing or wrong bearer token");
        route_of(method, url, cs);
        snprintf(cs->url, sizeof cs->url, "%s", url);
        if (!cs->route) {
            if (cs->path_known)
                return send_error(c, 405, "MethodNotAllowedException",
                                  "this method is not allowed on this path");
            return send_error(c, 404, "ResourceNotFoundException", "no such API path");
        }
        cs->limit = cs->route->body == BODY_RAW ? api->max_import : api->max_body;
        const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Length");
        if (cl && strtoull(cl, NULL, 10) > cs->limit)
            return send_error(c, 413, "RequestEntityTooLargeException",
                              "the request body is too large");
        cs->responded = 0;
        return MHD_YES;
    }
    if (cs->responded) {
        *upload_size = 0;
        return MHD_YES;
    }
    if (*upload_size) {
        size_t n = *upload_size;
        *upload_size = 0;
        if (cs->too_large) return MHD_YES;
        if (cs->len + n > cs->limit) {
            cs->too_large = 1;
            free(cs->buf);
            cs->buf = NULL;
            cs->len = cs->cap = 0;
            return MHD_YES;
        }
        if (cs->len + n + 1 > cs->cap) {
            size_t cap = cs->cap ? cs->cap : 4096;
            while (cap < cs->len + n + 1)
                cap *= 2;
            char *nb = realloc(cs->buf, cap);
            if (!nb) return MHD_NO;
            cs->buf = nb;
            cs->cap = cap;
        }
        memcpy(cs->buf + cs->len, upload_data, n);
        cs->len += n;
        cs->buf[cs->len] = 0;
        return MHD_YES;
    }
    cs->responded = 1;
    if (cs->too_large)
        return send_error(c, 413, "RequestEntityTooLargeException",
                          "the request body is too large");
    return dispatch(api, c, cs);
}

static void on_done(void *cls, struct MHD_Connection *c, void **con_cls,
                    enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)c;
    (void)toe;
    struct conn *cs = *con_cls;
    if (!cs) return;
    free(cs->buf);
    free(cs);
    *con_cls = NULL;
}

kl_reg_rc kl_api_start(struct kl_registry *reg, const struct kl_api_cfg *cfg, struct kl_api **out,
                       struct kl_reg_err *err)
{
    struct sockaddr_in sa = {0};
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)cfg->port);
    if (inet_pton(AF_INET, cfg->host, &sa.sin_addr) != 1)
        return kl_reg_fail(err, KL_REG_INVALID, "API host must be an IPv4 address: %s", cfg->host);
    if (!cfg->token || strlen(cfg->token) < 16)
        return kl_reg_fail(err, KL_REG_INVALID, "API token missing or too short");
    struct kl_api *api = calloc(1, sizeof *api);
    if (!api || !(api->token = strdup(cfg->token))) {
        free(api);
        return kl_reg_fail(err, KL_REG_INTERNAL, "out of memory");
    }
    api->reg = reg;
    api->metrics = cfg->metrics;
    api->metrics_ctx = cfg->metrics_ctx;
    api->max_body = cfg->max_body ? cfg->max_body : KL_API_MAX_BODY_DEFAULT;
    api->max_import = cfg->max_import ? cfg->max_import : KL_API_MAX_IMPORT_DEFAULT;
    snprintf(api->endpoint, sizeof api->endpoint, "%s",
             cfg->endpoint_address ? cfg->endpoint_address : "localhost");
    unsigned threads = cfg->threads > 0 ? (unsigned)cfg->threads : 4;
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL_LINUX_ONLY | MHD_USE_ERROR_LOG;
    struct MHD_OptionItem opts[8] = {
        {MHD_OPTION_SOCK_ADDR, 0, &sa},
        {MHD_OPTION_THREAD_POOL_SIZE, threads, NULL},
        {MHD_OPTION_CONNECTION_LIMIT, 256, NULL},
        {MHD_OPTION_CONNECTION_TIMEOUT, 60, NULL},
        {MHD_OPTION_END, 0, NULL},
    };
    if (cfg->tls_cert_pem && cfg->tls_key_pem) {
        if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES ||
            !(api->tls_cert = strdup(cfg->tls_cert_pem)) ||
            !(api->tls_key = strdup(cfg->tls_key_pem))) {
            kl_api_stop(api);
            return kl_reg_fail(err, KL_REG_INTERNAL, "HTTPS is not available in libmicrohttpd");
        }
        flags |= MHD_USE_TLS;
        opts[4] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_KEY, 0, api->tls_key};
        opts[5] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_CERT, 0, api->tls_cert};
        opts[6] = (struct MHD_OptionItem){MHD_OPTION_END, 0, NULL};
    }
    api->d = MHD_start_daemon(flags, 0, NULL, NULL, on_request, api, MHD_OPTION_NOTIFY_COMPLETED,
                              on_done, api, MHD_OPTION_ARRAY, opts, MHD_OPTION_END);
    if (!api->d) {
        kl_api_stop(api);
        return kl_reg_fail(err, KL_REG_INTERNAL, "cannot listen on %s:%d", cfg->host, cfg->port);
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(api->d, MHD_DAEMON_INFO_BIND_PORT);
    api->port = info ? info->port : cfg->port;
    *out = api;
    return KL_REG_OK;
}

int kl_api_port(const struct kl_api *api)
{
    return api->port;
}

void kl_api_stop(struct kl_api *api)
{
    if (!api) return;
    if (api->d) MHD_stop_daemon(api->d);
    OPENSSL_cleanse(api->token, strlen(api->token));
    free(api->token);
    if (api->tls_key) OPENSSL_cleanse(api->tls_key, strlen(api->tls_key));
    free(api->tls_key);
    free(api->tls_cert);
    free(api);
}

const char *kl_api_query(struct kl_api_req *r, const char *name)
{
    return MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, name);
}

const char *kl_api_header(struct kl_api_req *r, const char *name)
{
    return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
}

const char *kl_api_endpoint_address(struct kl_api_req *r)
{
    return r->api->endpoint;
}

kl_reg_rc kl_api_body_str(struct kl_api_req *r, const char *key, const char **out,
                          struct kl_reg_err *err)
{
    json_t *v = r->body ? json_object_get(r->body, key) : NULL;
    *out = NULL;
    if (!v || json_is_null(v)) return KL_REG_OK;
    if (!json_is_string(v)) return kl_reg_fail(err, KL_REG_INVALID, "%s must be a string", key);
    *out = json_string_value(v);
    return KL_REG_OK;
}

kl_reg_rc kl_api_query_bool(struct kl_api_req *r, const char *name, int def, int *out,
                            struct kl_reg_err *err)
{
    const char *v = kl_api_query(r, name);
    *out = def;
    if (!v) return KL_REG_OK;
    if (!strcmp(v, "true"))
        *out = 1;
    else if (!strcmp(v, "false"))
        *out = 0;
    else
        return kl_reg_fail(err, KL_REG_INVALID, "%s must be true or false", name);
    return KL_REG_OK;
}

kl_reg_rc kl_api_page(struct kl_api_req *r, const char *size_param, const char *token_param,
                      struct kl_reg_page *page, struct kl_reg_err *err)
{
    memset(page, 0, sizeof *page);
    page->limit = 25;
    const char *s = kl_api_query(r, size_param);
    if (s) {
        char *end;
        long v = strtol(s, &end, 10);
        if (*s == 0 || *end || v < 1 || v > 250)
            return kl_reg_fail(err, KL_REG_INVALID, "%s must be 1..250", size_param);
        page->limit = (int)v;
    }
    page->token = kl_api_query(r, token_param);
    int asc = 1;
    kl_reg_rc rc = kl_api_query_bool(r, "isAscendingOrder", 1, &asc, err);
    if (rc == KL_REG_OK && kl_api_query(r, "ascendingOrder"))
        rc = kl_api_query_bool(r, "ascendingOrder", 1, &asc, err);
    page->descending = !asc;
    return rc;
}
