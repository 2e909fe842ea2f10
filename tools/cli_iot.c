/*
 * keylink iot SUBCOMMAND: the `aws iot` look-alike that talks to keylinkd's control API.
 * Names, flags and output shapes follow the AWS CLI; docs/cli.md ("keylink iot").
 * Results: JSON on stdout (or --output text|table); errors on stderr as
 * "An error occurred (Code) when calling the Operation operation: message".
 * Exit status: 0 ok, 252 usage, 253 configuration (no endpoint or token), 254 the
 * service answered with an error, 255 the service could not be reached.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <jansson.h>

#include "common_http.h"

enum loc { L_PATH, L_QUERY, L_BODY, L_HEADER, L_RAW };
enum typ { T_STR, T_BOOL, T_INT, T_JSON };

struct arg {
    const char *flag; /* without the leading "--" */
    const char *key;  /* query/body key or header name */
    enum loc loc;
    enum typ typ;
    int required;
};

struct op {
    const char *cmd, *name, *method, *path; /* path: "{}" takes the L_PATH argument */
    struct arg args[8];
    const char *list_key;         /* paginated: the list in the answer */
    const char *size_q, *token_q; /* the page size and token query names */
    const char *token_out;        /* where the answer puts the next token */
};

#define NOPAGE NULL, NULL, NULL, NULL
#define PAGE_T "maxResults", "nextToken", "nextToken"
#define PAGE_M "pageSize", "marker", "nextMarker"
#define CERT_ID                                                                                    \
    {                                                                                              \
        "certificate-id", NULL, L_PATH, T_STR, 1                                                   \
    }
#define THING                                                                                      \
    {                                                                                              \
        "thing-name", NULL, L_PATH, T_STR, 1                                                       \
    }
#define POLICY                                                                                     \
    {                                                                                              \
        "policy-name", NULL, L_PATH, T_STR, 1                                                      \
    }
#define PVID                                                                                       \
    {                                                                                              \
        "policy-version-id", NULL, L_PATH, T_STR, 1                                                \
    }
#define ASC                                                                                        \
    {                                                                                              \
        "ascending-order", "isAscendingOrder", L_QUERY, T_BOOL, 0                                  \
    }

static const struct op ops[] = {
    {"get-registration-code", "GetRegistrationCode", "GET", "/registrationcode", {{0}}, NOPAGE},
    {"register-ca-certificate",
     "RegisterCACertificate",
     "POST",
     "/cacertificate",
     {{"ca-certificate", "caCertificate", L_BODY, T_STR, 1},
      {"verification-certificate", "verificationCertificate", L_BODY, T_STR, 0},
      {"set-as-active", "setAsActive", L_QUERY, T_BOOL, 0},
      {"allow-auto-registration", "allowAutoRegistration", L_QUERY, T_BOOL, 0},
      {"certificate-mode", "certificateMode", L_BODY, T_STR, 0}},
     NOPAGE},
    {"update-ca-certificate",
     "UpdateCACertificate",
     "PUT",
     "/cacertificate/{}",
     {CERT_ID,
      {"new-status", "newStatus", L_QUERY, T_STR, 0},
      {"new-auto-registration-status", "newAutoRegistrationStatus", L_QUERY, T_STR, 0}},
     NOPAGE},
    {"describe-ca-certificate",
     "DescribeCACertificate",
     "GET",
     "/cacertificate/{}",
     {CERT_ID},
     NOPAGE},
    {"list-ca-certificates",
     "ListCACertificates",
     "GET",
     "/cacertificates",
     {ASC},
     "certificates",
     PAGE_M},
    {"delete-ca-certificate",
     "DeleteCACertificate",
     "DELETE",
     "/cacertificate/{}",
     {CERT_ID},
     NOPAGE},
    {"register-certificate",
     "RegisterCertificate",
     "POST",
     "/certificate/register",
     {{"certificate-pem", "certificatePem", L_BODY, T_STR, 1},
      {"ca-certificate-pem", "caCertificatePem", L_BODY, T_STR, 0},
      {"set-as-active", "setAsActive", L_QUERY, T_BOOL, 0},
      {"status", "status", L_BODY, T_STR, 0}},
     NOPAGE},
    {"update-certificate",
     "UpdateCertificate",
     "PUT",
     "/certificates/{}",
     {CERT_ID, {"new-status", "newStatus", L_QUERY, T_STR, 1}},
     NOPAGE},
    {"describe-certificate", "DescribeCertificate", "GET", "/certificates/{}", {CERT_ID}, NOPAGE},
    {"list-certificates",
     "ListCertificates",
     "GET",
     "/certificates",
     {ASC},
     "certificates",
     PAGE_M},
    {"list-certificates-by-ca",
     "ListCertificatesByCA",
     "GET",
     "/certificates-by-ca/{}",
     {{"ca-certificate-id", NULL, L_PATH, T_STR, 1}, ASC},
     "certificates",
     PAGE_M},
    {"delete-certificate",
     "DeleteCertificate",
     "DELETE",
     "/certificates/{}",
     {CERT_ID, {"force-delete", "forceDelete", L_QUERY, T_BOOL, 0}},
     NOPAGE},
    {"create-thing",
     "CreateThing",
     "POST",
     "/things/{}",
     {THING,
      {"thing-type-name", "thingTypeName", L_BODY, T_STR, 0},
      {"attribute-payload", "attributePayload", L_BODY, T_JSON, 0}},
     NOPAGE},
    {"describe-thing", "DescribeThing", "GET", "/things/{}", {THING}, NOPAGE},
    {"update-thing",
     "UpdateThing",
     "PATCH",
     "/things/{}",
     {THING,
      {"thing-type-name", "thingTypeName", L_BODY, T_STR, 0},
      {"attribute-payload", "attributePayload", L_BODY, T_JSON, 0},
      {"expected-version", "expectedVersion", L_BODY, T_INT, 0},
      {"remove-thing-type", "removeThingType", L_BODY, T_BOOL, 0}},
     NOPAGE},
    {"list-things",
     "ListThings",
     "GET",
     "/things",
     {{"attribute-name", "attributeName", L_QUERY, T_STR, 0},
      {"attribute-value", "attributeValue", L_QUERY, T_STR, 0},
      {"thing-type-name", "thingTypeName", L_QUERY, T_STR, 0}},
     "things",
     PAGE_T},
    {"delete-thing",
     "DeleteThing",
     "DELETE",
     "/things/{}",
     {THING, {"expected-version", "expectedVersion", L_QUERY, T_INT, 0}},
     NOPAGE},
    {"attach-thing-principal",
     "AttachThingPrincipal",
     "PUT",
     "/things/{}/principals",
     {THING, {"principal", "x-amzn-principal", L_HEADER, T_STR, 1}},
     NOPAGE},
    {"detach-thing-principal",
     "DetachThingPrincipal",
     "DELETE",
     "/things/{}/principals",
     {THING, {"principal", "x-amzn-principal", L_HEADER, T_STR, 1}},
     NOPAGE},
    {"list-thing-principals",
     "ListThingPrincipals",
     "GET",
     "/things/{}/principals",
     {THING},
     "principals",
     PAGE_T},
    {"list-principal-things",
     "ListPrincipalThings",
     "GET",
     "/principals/things",
     {{"principal", "x-amzn-principal", L_HEADER, T_STR, 1}},
     "things",
     PAGE_T},
    {"create-policy",
     "CreatePolicy",
     "POST",
     "/policies/{}",
     {POLICY, {"policy-document", "policyDocument", L_BODY, T_STR, 1}},
     NOPAGE},
    {"create-policy-version",
     "CreatePolicyVersion",
     "POST",
     "/policies/{}/version",
     {POLICY,
      {"policy-document", "policyDocument", L_BODY, T_STR, 1},
      {"set-as-default", "setAsDefault", L_QUERY, T_BOOL, 0}},
     NOPAGE},
    {"get-policy", "GetPolicy", "GET", "/policies/{}", {POLICY}, NOPAGE},
    {"list-policy-versions", "ListPolicyVersions", "GET", "/policies/{}/version", {POLICY}, NOPAGE},
    {"get-policy-version",
     "GetPolicyVersion",
     "GET",
     "/policies/{}/version/{}",
     {POLICY, PVID},
     NOPAGE},
    {"set-default-policy-version",
     "SetDefaultPolicyVersion",
     "PATCH",
     "/policies/{}/version/{}",
     {POLICY, PVID},
     NOPAGE},
    {"delete-policy-version",
     "DeletePolicyVersion",
     "DELETE",
     "/policies/{}/version/{}",
     {POLICY, PVID},
     NOPAGE},
    {"list-policies",
     "ListPolicies",
     "GET",
     "/policies",
     {{"ascending-order", "ascendingOrder", L_QUERY, T_BOOL, 0}},
     "policies",
     PAGE_M},
    {"delete-policy", "DeletePolicy", "DELETE", "/policies/{}", {POLICY}, NOPAGE},
    {"attach-policy",
     "AttachPolicy",
     "PUT",
     "/target-policies/{}",
     {POLICY, {"target", "target", L_BODY, T_STR, 1}},
     NOPAGE},
    {"detach-policy",
     "DetachPolicy",
     "POST",
     "/target-policies/{}",
     {POLICY, {"target", "target", L_BODY, T_STR, 1}},
     NOPAGE},
    {"list-attached-policies",
     "ListAttachedPolicies",
     "POST",
     "/attached-policies/{}",
     {{"target", NULL, L_PATH, T_STR, 1}, {"recursive", "recursive", L_QUERY, T_BOOL, 0}},
     "policies",
     PAGE_M},
    {"describe-endpoint",
     "DescribeEndpoint",
     "GET",
     "/endpoint",
     {{"endpoint-type", "endpointType", L_QUERY, T_STR, 0}},
     NOPAGE},
    {"bulk-import",
     "BulkImport",
     "POST",
     "/keylink/import",
     {{"input", NULL, L_RAW, T_STR, 1}, {"status", "status", L_QUERY, T_STR, 0}},
     NOPAGE},
};
#define N_OPS (sizeof ops / sizeof ops[0])

#define EXIT_USAGE 252
#define EXIT_CONFIG 253
#define EXIT_SERVICE 254
#define EXIT_CONNECT 255

struct opts {
    const char *endpoint, *token_file, *output, *query, *ca_bundle;
    long max_items, page_size;
    const char *starting_token;
    int no_paginate;
    const char *vals[8]; /* values of the op's args, by index */
    int bools[8];        /* 1 true, 0 false, -1 unset */
};

static void usage(FILE *f)
{
    fprintf(f, "usage: keylink iot [GLOBAL OPTIONS] SUBCOMMAND [OPTIONS]\n\n"
               "Talks to keylinkd's control API the way `aws iot` talks to AWS IoT Core.\n\n"
               "global options:\n"
               "  --endpoint-url URL   control API (default $KEYLINK_ENDPOINT_URL, else\n"
               "                       http://127.0.0.1:8443)\n"
               "  --token-file PATH    file holding the admin token (default $KEYLINK_TOKEN)\n"
               "  --ca-bundle PATH     CA bundle for an https:// endpoint, e.g. keylinkd's\n"
               "                       server-root-ca.pem (default $KEYLINK_CA_BUNDLE)\n"
               "  --output FORMAT      json (default), text or table\n"
               "  --query EXPR         print only part of the answer: names, [N], [*]\n"
               "                       (a JMESPath subset), e.g. things[*].thingName\n"
               "  --max-items N, --starting-token T, --page-size N, --no-paginate\n"
               "                       pagination of list-* subcommands\n\n"
               "Arguments taking text accept file://PATH to read it from a file.\n\n"
               "subcommands:\n");
    for (size_t i = 0; i < N_OPS; i++)
        fprintf(f, "  %s\n", ops[i].cmd);
    fprintf(f, "\n`keylink iot SUBCOMMAND --help` lists a subcommand's options.\n");
}

static void op_usage(const struct op *op, FILE *f)
{
    fprintf(f, "usage: keylink iot %s", op->cmd);
    for (int i = 0; i < 8 && op->args[i].flag; i++) {
        const struct arg *a = &op->args[i];
        const char *v = a->typ == T_BOOL ? "" : a->typ == T_INT ? " N" : " VALUE";
        if (a->typ == T_BOOL)
            fprintf(f, " [--%s | --no-%s]", a->flag, a->flag);
        else
            fprintf(f, a->required ? " --%s%s" : " [--%s%s]", a->flag, v);
    }
    if (op->list_key) fprintf(f, " [--max-items N] [--starting-token T] [--page-size N]");
    fprintf(f, "\n(calls the %s operation)\n", op->name);
}

static void *xfail(void)
{
    fprintf(stderr, "keylink iot: out of memory\n");
    exit(EXIT_CONNECT);
}

/* file://PATH (or fileb://PATH) reads the file; other values are taken as they are. */
static char *arg_value(const char *v, size_t *len, int *bad)
{
    const char *path = NULL;
    if (!strncmp(v, "file://", 7)) path = v + 7;
    if (!strncmp(v, "fileb://", 8)) path = v + 8;
    if (!path) {
        *len = strlen(v);
        char *s = strdup(v);
        return s ? s : xfail();
    }
    FILE *f = fopen(path, "rb");
    struct stat st;
    if (!f || fstat(fileno(f), &st) || !S_ISREG(st.st_mode) || st.st_size > (1L << 30)) {
        fprintf(stderr, "keylink iot: error: cannot read %s: %s\n", path,
                f ? "not a regular file under 1 GiB" : strerror(errno));
        if (f) fclose(f);
        *bad = 1;
        return NULL;
    }
    char *buf = malloc((size_t)st.st_size + 1);
    if (!buf) xfail();
    size_t n = fread(buf, 1, (size_t)st.st_size, f);
    fclose(f);
    buf[n] = 0;
    *len = n;
    return buf;
}

static int append(char **s, size_t *len, size_t *cap, const char *add)
{
    size_t n = strlen(add);
    if (*len + n + 1 > *cap) {
        size_t c = *cap ? *cap * 2 : 256;
        while (c < *len + n + 1)
            c *= 2;
        char *ns = realloc(*s, c);
        if (!ns) xfail();
        *s = ns;
        *cap = c;
    }
    memcpy(*s + *len, add, n + 1);
    *len += n;
    return 0;
}

/* AWS shorthand for --attribute-payload: attributes={k=v,k2=v2},merge=true */
static json_t *shorthand_payload(const char *s)
{
    json_t *o = json_object(), *attrs = json_object();
    const char *p = s;
    while (*p) {
        if (!strncmp(p, "attributes={", 12)) {
            p += 12;
            while (*p && *p != '}') {
                const char *eq = strchr(p, '=');
                if (!eq) goto bad;
                size_t vl = strcspn(eq + 1, ",}");
                char *k = strndup(p, (size_t)(eq - p)), *v = strndup(eq + 1, vl);
                json_object_set_new(attrs, k, json_string(v));
                free(k);
                free(v);
                p = eq + 1 + vl;
                if (*p == ',') p++;
            }
            if (*p != '}') goto bad;
            p++;
        } else if (!strncmp(p, "merge=true", 10)) {
            json_object_set_new(o, "merge", json_true());
            p += 10;
        } else if (!strncmp(p, "merge=false", 11)) {
            json_object_set_new(o, "merge", json_false());
            p += 11;
        } else {
            goto bad;
        }
        if (*p == ',') p++;
    }
    json_object_set_new(o, "attributes", attrs);
    return o;
bad:
    json_decref(attrs);
    json_decref(o);
    return NULL;
}

/* Seconds since the epoch as the AWS CLI prints timestamps (ISO 8601, UTC). */
static void iso_times(json_t *v)
{
    static const char *const keys[] = {"creationDate", "lastModifiedDate", "notBefore", "notAfter",
                                       "createDate"};
    if (json_is_array(v)) {
        size_t i;
        json_t *e;
        json_array_foreach(v, i, e) iso_times(e);
        return;
    }
    if (!json_is_object(v)) return;
    const char *k;
    json_t *e;
    json_object_foreach(v, k, e)
    {
        int is_time = 0;
        for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
            if (!strcmp(k, keys[i])) is_time = 1;
        if (is_time && json_is_integer(e)) {
            time_t t = (time_t)json_integer_value(e);
            struct tm tm;
            char buf[40];
            gmtime_r(&t, &tm);
            strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S+00:00", &tm);
            json_object_set_new(v, k, json_string(buf));
        } else {
            iso_times(e);
        }
    }
}

static void scalar_text(json_t *v, FILE *f)
{
    if (json_is_string(v))
        fputs(json_string_value(v), f);
    else if (json_is_integer(v))
        fprintf(f, "%lld", (long long)json_integer_value(v));
    else if (json_is_true(v))
        fputs("True", f);
    else if (json_is_false(v))
        fputs("False", f);
    else if (json_is_null(v))
        fputs("None", f);
    else if (json_is_real(v))
        fprintf(f, "%g", json_real_value(v));
}

static int is_scalar(json_t *v)
{
    return !json_is_object(v) && !json_is_array(v);
}

/* The AWS CLI's text output: scalars of an object on one tab-separated line (prefixed by
 * the upper-cased key it sits under), nested values after it. */
static void text_out(const char *name, json_t *v, FILE *f)
{
    char up[128] = "";
    for (size_t i = 0; name && name[i] && i < sizeof up - 1; i++)
        up[i] = (char)(name[i] >= 'a' && name[i] <= 'z' ? name[i] - 32 : name[i]);
    if (json_is_array(v)) {
        size_t i;
        json_t *e;
        int scalars = 1;
        json_array_foreach(v, i, e) if (!is_scalar(e)) scalars = 0;
        if (scalars) {
            int first = 1;
            if (up[0]) {
                fputs(up, f);
                first = 0;
            }
            json_array_foreach(v, i, e)
            {
                if (!first) fputc('\t', f);
                first = 0;
                scalar_text(e, f);
            }
            fputc('\n', f);
        } else {
            json_array_foreach(v, i, e) text_out(name, e, f);
        }
        return;
    }
    if (!json_is_object(v)) return;
    const char **keys = malloc(json_object_size(v) * sizeof *keys + 1);
    size_t n = 0;
    const char *k;
    json_t *e;
    json_object_foreach(v, k, e) keys[n++] = k;
    for (size_t i = 0; i < n; i++)
        for (size_t j = i + 1; j < n; j++)
            if (strcmp(keys[i], keys[j]) > 0) {
                const char *t = keys[i];
                keys[i] = keys[j];
                keys[j] = t;
            }
    int any = 0;
    for (size_t i = 0; i < n; i++) {
        e = json_object_get(v, keys[i]);
        if (!is_scalar(e)) continue;
        if (!any && up[0]) fputs(up, f);
        if (any || up[0]) fputc('\t', f);
        scalar_text(e, f);
        any = 1;
    }
    if (any) fputc('\n', f);
    for (size_t i = 0; i < n; i++) {
        e = json_object_get(v, keys[i]);
        if (!is_scalar(e)) text_out(keys[i], e, f);
    }
    free(keys);
}

/* Table output: one row per leaf, "path | value". */
static void table_rows(const char *prefix, json_t *v, json_t *rows)
{
    char path[512];
    if (json_is_object(v)) {
        const char *k;
        json_t *e;
        json_object_foreach(v, k, e)
        {
            snprintf(path, sizeof path, "%s%s%s", prefix, *prefix ? "." : "", k);
            table_rows(path, e, rows);
        }
    } else if (json_is_array(v)) {
        size_t i;
        json_t *e;
        json_array_foreach(v, i, e)
        {
            snprintf(path, sizeof path, "%s[%zu]", prefix, i);
            table_rows(path, e, rows);
        }
    } else {
        char *val = NULL;
        size_t vl = 0;
        FILE *mf = open_memstream(&val, &vl);
        if (!mf) return;
        scalar_text(v, mf);
        fclose(mf);
        json_array_append_new(rows, json_pack("[s,s]", prefix, val));
        free(val);
    }
}

static void table_out(const char *title, json_t *v, FILE *f)
{
    json_t *rows = json_array();
    table_rows("", v, rows);
    size_t w1 = 3, w2 = 5, i;
    json_t *r;
    json_array_foreach(rows, i, r)
    {
        size_t a = strlen(json_string_value(json_array_get(r, 0)));
        size_t b = strcspn(json_string_value(json_array_get(r, 1)), "\n");
        if (a > w1) w1 = a;
        if (b > w2) w2 = b;
    }
    size_t total = w1 + w2 + 7;
    for (size_t k = 0; k < total; k++)
        fputc('-', f);
    fprintf(f, "\n|%*s%s%*s|\n", (int)((total - 2 - strlen(title)) / 2), "", title,
            (int)(total - 2 - strlen(title) - (total - 2 - strlen(title)) / 2), "");
    for (size_t k = 0; k < total; k++)
        fputc('-', f);
    fputc('\n', f);
    json_array_foreach(rows, i, r)
    {
        const char *val = json_string_value(json_array_get(r, 1));
        fprintf(f, "| %-*s | %-*.*s |\n", (int)w1, json_string_value(json_array_get(r, 0)), (int)w2,
                (int)strcspn(val, "\n"), val);
    }
    for (size_t k = 0; k < total; k++)
        fputc('-', f);
    fputc('\n', f);
    json_decref(rows);
}

/* Performs one HTTP call; on an HTTP error prints the AWS CLI error line. */
static int call(const struct op *op, const char *url, const char *token, const char *const *hdrs,
                const char *body, size_t body_len, int raw, const char *ca_bundle, json_t **out)
{
    const char *headers[8];
    size_t nh = 0;
    char auth[1100];
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", token);
    headers[nh++] = auth;
    headers[nh++] = raw ? "Content-Type: application/x-ndjson" : "Content-Type: application/json";
    for (size_t i = 0; hdrs && hdrs[i] && nh < 7; i++)
        headers[nh++] = hdrs[i];
    headers[nh] = NULL;
    struct kl_http_resp resp;
    char err[256];
    if (kl_http_request(op->method, url, headers, body, body_len, ca_bundle, 256u << 20, 600, &resp,
                        err, sizeof err)) {
        fprintf(stderr, "Could not connect to the endpoint URL: \"%s\" (%s)\n", url, err);
        return EXIT_CONNECT;
    }
    json_t *j = json_loadb(resp.body, resp.len, 0, NULL);
    if (resp.status < 200 || resp.status > 299) {
        const char *type = json_string_value(json_object_get(j, "__type"));
        const char *msg = json_string_value(json_object_get(j, "message"));
        fprintf(stderr, "An error occurred (%s) when calling the %s operation: %s\n",
                type ? type : "HTTPError", op->name, msg ? msg : "(no message)");
        json_decref(j);
        kl_http_resp_free(&resp);
        return EXIT_SERVICE;
    }
    kl_http_resp_free(&resp);
    if (!json_is_object(j)) {
        fprintf(stderr, "keylink iot: the service answered with something that is not JSON\n");
        json_decref(j);
        return EXIT_SERVICE;
    }
    *out = j;
    return 0;
}

static char *env_token(void)
{
    const char *t = getenv("KEYLINK_TOKEN");
    return t && *t ? strdup(t) : NULL;
}

static char *token_from_file(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) return NULL;
    char buf[1024];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    while (n && strchr("\r\n \t", buf[n - 1]))
        buf[--n] = 0;
    return n ? strdup(buf) : NULL;
}

/* --query: the JMESPath subset scripts use most: dotted names, [N] (negative counts from
 * the end) and [*] projections, e.g. `certificateDescription.status`, `things[*].thingName`,
 * `things[0]`. Returns a new reference (JSON null when nothing matches), or NULL with
 * *bad set when the expression is outside the subset. */
static json_t *query_eval(json_t *v, const char *q, int *bad)
{
    if (!v) return json_null();
    while (*q == '.')
        q++;
    if (!*q) return json_incref(v);
    if (*q == '[') {
        const char *end = strchr(q, ']');
        if (!end) {
            *bad = 1;
            return NULL;
        }
        if (end == q + 2 && q[1] == '*') {
            if (!json_is_array(v)) return json_null();
            json_t *out = json_array();
            size_t i;
            json_t *e;
            json_array_foreach(v, i, e)
            {
                json_t *r = query_eval(e, end + 1, bad);
                if (!r) {
                    json_decref(out);
                    return NULL;
                }
                if (json_is_null(r))
                    json_decref(r);
                else
                    json_array_append_new(out, r);
            }
            return out;
        }
        char *num_end;
        long idx = strtol(q + 1, &num_end, 10);
        if (num_end != end || end == q + 1) {
            *bad = 1;
            return NULL;
        }
        if (!json_is_array(v)) return json_null();
        long n = (long)json_array_size(v);
        if (idx < 0) idx += n;
        if (idx < 0 || idx >= n) return json_null();
        return query_eval(json_array_get(v, (size_t)idx), end + 1, bad);
    }
    size_t l = strcspn(q, ".[");
    if (l == 0 || l > 128) {
        *bad = 1;
        return NULL;
    }
    for (size_t i = 0; i < l; i++)
        if (!(q[i] == '_' || (q[i] >= 'a' && q[i] <= 'z') || (q[i] >= 'A' && q[i] <= 'Z') ||
              (q[i] >= '0' && q[i] <= '9'))) {
            *bad = 1;
            return NULL;
        }
    char key[129];
    memcpy(key, q, l);
    key[l] = 0;
    if (!json_is_object(v)) return json_null();
    return query_eval(json_object_get(v, key), q + l, bad);
}

int kl_cli_iot(int argc, char **argv);
int kl_cli_iot(int argc, char **argv)
{
    struct opts o = {0};
    o.max_items = -1;
    o.page_size = -1;
    for (int i = 0; i < 8; i++)
        o.bools[i] = -1;
    const struct op *op = NULL;
    int help = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h") || !strcmp(a, "help")) {
            help = 1;
            continue;
        }
        if (strncmp(a, "--", 2)) {
            if (op) {
                fprintf(stderr, "keylink iot: error: unexpected argument '%s'\n", a);
                return EXIT_USAGE;
            }
            for (size_t k = 0; k < N_OPS; k++)
                if (!strcmp(ops[k].cmd, a)) op = &ops[k];
            if (!op) {
                fprintf(stderr, "keylink iot: error: unknown subcommand '%s'\n", a);
                usage(stderr);
                return EXIT_USAGE;
            }
            continue;
        }
        const char *f = a + 2;
        if (!strcmp(f, "no-paginate")) {
            o.no_paginate = 1;
            continue;
        }
        /* boolean flags of the op: --x / --no-x */
        int matched = 0;
        for (int k = 0; op && k < 8 && op->args[k].flag; k++) {
            if (op->args[k].typ != T_BOOL) continue;
            if (!strcmp(f, op->args[k].flag)) o.bools[k] = 1, matched = 1;
            if (!strncmp(f, "no-", 3) && !strcmp(f + 3, op->args[k].flag))
                o.bools[k] = 0, matched = 1;
        }
        if (matched) continue;
        if (i + 1 >= argc) {
            fprintf(stderr, "keylink iot: error: argument %s: expected one argument\n", a);
            return EXIT_USAGE;
        }
        const char *v = argv[++i];
        if (!strcmp(f, "endpoint-url"))
            o.endpoint = v;
        else if (!strcmp(f, "token-file"))
            o.token_file = v;
        else if (!strcmp(f, "output"))
            o.output = v;
        else if (!strcmp(f, "query"))
            o.query = v;
        else if (!strcmp(f, "ca-bundle"))
            o.ca_bundle = v;
        else if (!strcmp(f, "starting-token"))
            o.starting_token = v;
        else if (!strcmp(f, "max-items") || !strcmp(f, "page-size")) {
            char *end;
            long n = strtol(v, &end, 10);
            if (!*v || *end || n < 1) {
                fprintf(stderr, "keylink iot: error: %s must be a positive integer\n", a);
                return EXIT_USAGE;
            }
            if (f[0] == 'm')
                o.max_items = n;
            else
                o.page_size = n;
        } else {
            int k;
            for (k = 0; op && k < 8 && op->args[k].flag; k++)
                if (!strcmp(f, op->args[k].flag)) break;
            if (!op || k >= 8 || !op->args[k].flag) {
                fprintf(stderr, "keylink iot: error: unknown option %s%s%s\n", a, op ? " for " : "",
                        op ? op->cmd : "");
                return EXIT_USAGE;
            }
            o.vals[k] = v;
        }
    }
    if (!op) {
        usage(help ? stdout : stderr);
        return help ? 0 : EXIT_USAGE;
    }
    if (help) {
        op_usage(op, stdout);
        return 0;
    }
    const char *fmt = o.output                   ? o.output
                      : getenv("KEYLINK_OUTPUT") ? getenv("KEYLINK_OUTPUT")
                                                 : "json";
    if (strcmp(fmt, "json") && strcmp(fmt, "text") && strcmp(fmt, "table")) {
        fprintf(stderr, "keylink iot: error: --output must be json, text or table\n");
        return EXIT_USAGE;
    }
    for (int k = 0; k < 8 && op->args[k].flag; k++)
        if (op->args[k].required && !o.vals[k]) {
            fprintf(stderr, "keylink iot: error: the following arguments are required: --%s\n",
                    op->args[k].flag);
            op_usage(op, stderr);
            return EXIT_USAGE;
        }
    if ((o.max_items > 0 || o.starting_token || o.page_size > 0) && !op->list_key) {
        fprintf(stderr, "keylink iot: error: %s does not paginate\n", op->cmd);
        return EXIT_USAGE;
    }
    const char *endpoint = o.endpoint ? o.endpoint : getenv("KEYLINK_ENDPOINT_URL");
    const char *ca_bundle = o.ca_bundle ? o.ca_bundle : getenv("KEYLINK_CA_BUNDLE");
    if (!endpoint || !*endpoint) endpoint = "http://127.0.0.1:8443";
    char *token = o.token_file ? token_from_file(o.token_file) : env_token();
    if (!token) {
        fprintf(stderr, "keylink iot: no token: use --token-file PATH or set KEYLINK_TOKEN "
                        "(keylinkd writes it to DATA_DIR/admin-token)\n");
        return EXIT_CONFIG;
    }

    /* Build path, query, headers and body from the arguments. */
    int rc = 0;
    char *path = NULL, *query = NULL, *raw = NULL;
    size_t pl = 0, pc = 0, ql = 0, qc = 0, raw_len = 0;
    json_t *body = json_object();
    char *hdr_store[8] = {0};
    const char *hdrs[9] = {0};
    size_t nh = 0;
    {
        size_t el = strlen(endpoint);
        while (el && endpoint[el - 1] == '/')
            el--;
        char *ep = strndup(endpoint, el);
        append(&path, &pl, &pc, ep);
        free(ep);
    }
    append(&query, &ql, &qc, "");
    int next_path = 0; /* the {} placeholders take the path arguments in order */
    for (const char *p = op->path; *p;) {
        if (!strncmp(p, "{}", 2)) {
            for (int k = next_path; k < 8 && op->args[k].flag; k++)
                if (op->args[k].loc == L_PATH) {
                    char *e = kl_http_escape(o.vals[k]);
                    append(&path, &pl, &pc, e);
                    free(e);
                    next_path = k + 1;
                    break;
                }
            p += 2;
        } else {
            char one[2] = {*p++, 0};
            append(&path, &pl, &pc, one);
        }
    }
    for (int k = 0; k < 8 && op->args[k].flag && !rc; k++) {
        const struct arg *a = &op->args[k];
        if (a->typ == T_BOOL) {
            if (o.bools[k] < 0) continue;
            if (a->loc == L_QUERY) {
                append(&query, &ql, &qc, ql ? "&" : "?");
                append(&query, &ql, &qc, a->key);
                append(&query, &ql, &qc, o.bools[k] ? "=true" : "=false");
            } else {
                json_object_set_new(body, a->key, json_boolean(o.bools[k]));
            }
            continue;
        }
        if (!o.vals[k] || a->loc == L_PATH) continue;
        size_t len;
        int bad = 0;
        char *v = arg_value(o.vals[k], &len, &bad);
        if (!v) {
            rc = EXIT_USAGE;
            break;
        }
        if (a->typ == T_INT) {
            char *end;
            long long n = strtoll(v, &end, 10);
            if (!*v || *end) {
                fprintf(stderr, "keylink iot: error: --%s must be an integer\n", a->flag);
                rc = EXIT_USAGE;
            } else if (a->loc == L_BODY) {
                json_object_set_new(body, a->key, json_integer(n));
            } else {
                append(&query, &ql, &qc, ql ? "&" : "?");
                append(&query, &ql, &qc, a->key);
                append(&query, &ql, &qc, "=");
                append(&query, &ql, &qc, v);
            }
        } else if (a->loc == L_QUERY) {
            char *e = kl_http_escape(v);
            append(&query, &ql, &qc, ql ? "&" : "?");
            append(&query, &ql, &qc, a->key);
            append(&query, &ql, &qc, "=");
            append(&query, &ql, &qc, e);
            free(e);
        } else if (a->loc == L_HEADER) {
            if (strpbrk(v, "\r\n")) {
                fprintf(stderr, "keylink iot: error: --%s must be one line\n", a->flag);
                rc = EXIT_USAGE;
            } else {
                size_t n = strlen(a->key) + strlen(v) + 3;
                hdr_store[nh] = malloc(n);
                if (!hdr_store[nh]) xfail();
                snprintf(hdr_store[nh], n, "%s: %s", a->key, v);
                hdrs[nh] = hdr_store[nh];
                nh++;
            }
        } else if (a->loc == L_RAW) {
            raw = v;
            raw_len = len;
            v = NULL;
        } else if (a->typ == T_JSON) {
            json_t *j = v[0] == '{' ? json_loads(v, 0, NULL) : shorthand_payload(v);
            if (!j) {
                fprintf(stderr, "keylink iot: error: --%s is not valid JSON or shorthand\n",
                        a->flag);
                rc = EXIT_USAGE;
            } else {
                json_object_set_new(body, a->key, j);
            }
        } else {
            json_object_set_new(body, a->key, json_string(v));
        }
        free(v);
    }

    json_t *result = NULL;
    if (!rc) {
        char *body_text = NULL;
        size_t body_len = 0;
        int is_raw = raw != NULL;
        if (raw) {
            body_text = raw;
            body_len = raw_len;
            raw = NULL;
        } else if (json_object_size(body) || !strcmp(op->method, "POST") ||
                   !strcmp(op->method, "PUT") || !strcmp(op->method, "PATCH")) {
            body_text = json_dumps(body, JSON_COMPACT);
            body_len = body_text ? strlen(body_text) : 0;
        }
        const char *token_in = o.starting_token;
        json_t *items = op->list_key ? json_array() : NULL;
        char *next = NULL;
        for (;;) {
            char *url = NULL;
            size_t ul = 0, uc = 0;
            append(&url, &ul, &uc, path);
            append(&url, &ul, &uc, query);
            char num[64];
            if (op->list_key) {
                long want = o.page_size > 0 ? o.page_size : 250;
                if (o.max_items > 0 && o.max_items - (long)json_array_size(items) < want)
                    want = o.max_items - (long)json_array_size(items);
                if (want > 250) want = 250;
                snprintf(num, sizeof num, "%s%s=%ld", ul > strlen(path) ? "&" : "?", op->size_q,
                         want);
                append(&url, &ul, &uc, num);
                if (token_in) {
                    char *e = kl_http_escape(token_in);
                    append(&url, &ul, &uc, "&");
                    append(&url, &ul, &uc, op->token_q);
                    append(&url, &ul, &uc, "=");
                    append(&url, &ul, &uc, e);
                    free(e);
                }
            }
            json_t *page = NULL;
            rc = call(op, url, token, hdrs, body_text, body_len, is_raw, ca_bundle, &page);
            free(url);
            if (rc) break;
            if (!op->list_key) {
                result = page;
                break;
            }
            json_array_extend(items, json_object_get(page, op->list_key));
            free(next);
            const char *nt = json_string_value(json_object_get(page, op->token_out));
            next = nt ? strdup(nt) : NULL;
            if (!result)
                result = page;
            else
                json_decref(page);
            token_in = next;
            if (!next || o.no_paginate ||
                (o.max_items > 0 && (long)json_array_size(items) >= o.max_items))
                break;
        }
        if (!rc && op->list_key) {
            json_object_set(result, op->list_key, items);
            json_object_del(result, op->token_out);
            /* the AWS CLI's pagination token: pass it to --starting-token */
            if (next) json_object_set_new(result, "NextToken", json_string(next));
        }
        json_decref(items);
        free(next);
        free(body_text);
    }
    free(raw);
    if (!rc && result) {
        iso_times(result);
        if (o.query) {
            int bad = 0;
            json_t *sel = query_eval(result, o.query, &bad);
            if (!sel) {
                fprintf(stderr,
                        "keylink iot: error: --query: unsupported expression '%s' (names, "
                        "[N] and [*] only)\n",
                        o.query);
                rc = EXIT_USAGE;
            }
            json_decref(result);
            result = sel;
        }
        if (rc || !result) {
            /* nothing to print */
        } else if (!o.query && json_object_size(result) == 0) {
            /* the AWS CLI prints nothing for an empty answer */
        } else if (!strcmp(fmt, "json")) {
            char *s = json_dumps(result, JSON_INDENT(4) | JSON_PRESERVE_ORDER | JSON_ENCODE_ANY);
            if (s) printf("%s\n", s);
            free(s);
        } else if (!strcmp(fmt, "text")) {
            if (is_scalar(result)) {
                scalar_text(result, stdout);
                fputc('\n', stdout);
            } else {
                text_out(NULL, result, stdout);
            }
        } else {
            table_out(op->name, result, stdout);
        }
    }
    json_decref(result);
    json_decref(body);
    for (size_t i = 0; i < nh; i++)
        free(hdr_store[i]);
    free(path);
    free(query);
    memset(token, 0, strlen(token));
    free(token);
    return rc;
}
