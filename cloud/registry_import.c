/*
 * Registry: bulk import of the batch-provisioning file (JSON lines), all or nothing.
 *
 * The whole import is one write transaction. Lines go in chunks: worker threads parse
 * each chunk's lines and certificates and match them to the registered CAs (loaded once,
 * read-only while the workers run); then this thread writes the chunk's rows in line order.
 * The certificate work dominates, so it is what runs in parallel.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/x509.h>

#include "registry_int.h"

#define KL_IMPORT_MAX_LINE (64 * 1024)
#define KL_IMPORT_CHUNK 1024
#define KL_IMPORT_THREADS 4

/* One line, as the workers leave it for the writer. */
struct line {
    const char *text;
    size_t len;
    long lineno;
    json_t *o; /* the parsed object (owns the strings below) */
    const char *thing, *status, *policy;
    char *attrs; /* JSON text of attributes, malloc'd, or NULL */
    struct kl_reg_cert_new cert;
    kl_reg_rc rc; /* a failure found by the worker */
    char msg[256];
};

struct work {
    const struct kl_reg_ca_cache *cas;
    const char *default_status;
    struct line *lines;
    size_t n;
    size_t next; /* next line to take, under lock */
    pthread_mutex_t lock;
};

static const char *opt_str(json_t *o, const char *k, int *bad)
{
    json_t *v = json_object_get(o, k);
    if (!v || json_is_null(v)) return NULL;
    if (!json_is_string(v)) *bad = 1;
    return json_string_value(v);
}

/* Everything about one line that needs no database (runs on a worker). */
static void prepare(struct work *w, struct line *l)
{
    struct kl_reg_err err = {0};
    kl_reg_rc rc = KL_REG_OK;
    if (l->len > KL_IMPORT_MAX_LINE) {
        rc = kl_reg_fail(&err, KL_REG_INVALID, "line longer than %d bytes", KL_IMPORT_MAX_LINE);
        goto out;
    }
    json_error_t je;
    l->o = json_loadb(l->text, l->len, JSON_REJECT_DUPLICATES, &je);
    if (!json_is_object(l->o)) {
        rc = kl_reg_fail(&err, KL_REG_INVALID, "not a JSON object");
        goto out;
    }
    int bad = 0;
    l->thing = opt_str(l->o, "thingName", &bad);
    const char *pem = opt_str(l->o, "certificatePem", &bad);
    const char *ca_pem = opt_str(l->o, "caCertificatePem", &bad);
    l->status = opt_str(l->o, "status", &bad);
    l->policy = opt_str(l->o, "policyName", &bad);
    const char *want_ca = opt_str(l->o, "caCertificateId", &bad);
    const char *want_id = opt_str(l->o, "certificateId", &bad);
    json_t *attrs = json_object_get(l->o, "attributes");
    /* other fields (serialNumber, device, ...) are the provisioning's notes: ignored */
    if (bad || (attrs && !json_is_object(attrs))) {
        rc = kl_reg_fail(&err, KL_REG_INVALID, "a field has the wrong JSON type");
        goto out;
    }
    if (!l->thing || !pem) {
        rc = kl_reg_fail(&err, KL_REG_INVALID, "thingName and certificatePem are required");
        goto out;
    }
    if (!l->status) l->status = w->default_status;
    if (!kl_reg_cert_status_ok(l->status)) {
        rc = kl_reg_fail(&err, KL_REG_INVALID,
                         "status must be ACTIVE, INACTIVE, REVOKED or PENDING_ACTIVATION");
        goto out;
    }
    if (attrs && !(l->attrs = json_dumps(attrs, JSON_COMPACT))) {
        rc = kl_reg_fail(&err, KL_REG_INTERNAL, "out of memory");
        goto out;
    }
    void *x = NULL;
    rc = kl_reg_cert_parse(pem, want_id, &x, &l->cert, &err);
    if (rc == KL_REG_OK) {
        rc = kl_reg_ca_cache_match(w->cas, x, ca_pem, &l->cert, &err);
        X509_free(x);
    }
    if (rc == KL_REG_OK && want_ca && strcmp(want_ca, l->cert.ca_id))
        rc = kl_reg_fail(&err, KL_REG_CERT_INVALID,
                         "the certificate is not signed by the CA caCertificateId names");
out:
    l->rc = rc;
    if (rc) snprintf(l->msg, sizeof l->msg, "%s", err.msg);
}

static void *worker(void *arg)
{
    struct work *w = arg;
    for (;;) {
        pthread_mutex_lock(&w->lock);
        size_t i = w->next++;
        pthread_mutex_unlock(&w->lock);
        if (i >= w->n) return NULL;
        prepare(w, &w->lines[i]);
    }
}

static void line_free(struct line *l)
{
    json_decref(l->o);
    free(l->attrs);
    free(l->cert.pem);
    memset(l, 0, sizeof *l);
}

/* Writes one prepared line inside the transaction. */
static kl_reg_rc write_line(struct kl_registry *reg, struct line *l,
                            struct kl_reg_import_result *res, struct kl_reg_err *err)
{
    if (l->rc) return kl_reg_fail(err, l->rc, "%s", l->msg);
    int created = 0;
    kl_reg_rc rc = kl_reg_thing_create_tx(reg, l->thing, NULL, l->attrs, &created, err);
    char id[KL_REG_ID_HEX], arn[KL_REG_ARN_MAX];
    memcpy(id, l->cert.id, sizeof id);
    if (rc == KL_REG_OK) rc = kl_reg_cert_insert_tx(reg, &l->cert, l->status, err);
    if (rc == KL_REG_OK) rc = kl_reg_thing_attach_tx(reg, l->thing, id, err);
    kl_reg_cert_arn(reg, id, arn, sizeof arn);
    if (rc == KL_REG_OK && l->policy) rc = kl_reg_policy_attach_tx(reg, l->policy, arn, err);
    if (rc == KL_REG_OK) {
        res->things_created += created;
        res->certs_registered++;
        res->attached++;
    }
    return rc;
}

static int threads_to_use(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    if (n < 1) n = 1;
    return n > KL_IMPORT_THREADS ? KL_IMPORT_THREADS : (int)n;
}

kl_reg_rc kl_reg_import(struct kl_registry *reg, const char *data, size_t len,
                        const char *default_status, struct kl_reg_import_result *res,
                        struct kl_reg_err *err)
{
    memset(res, 0, sizeof *res);
    if (!default_status) default_status = "ACTIVE";
    struct line *lines = calloc(KL_IMPORT_CHUNK, sizeof *lines);
    if (!lines) return kl_reg_fail(err, KL_REG_INTERNAL, "out of memory");
    kl_reg_rc rc = kl_reg_wbegin(reg, err);
    if (rc) {
        free(lines);
        return rc;
    }
    struct kl_reg_ca_cache cas = {0};
    rc = kl_reg_ca_cache_load(reg, &cas, err);
    int nthreads = threads_to_use();
    size_t pos = 0;
    long lineno = 0;
    while (rc == KL_REG_OK && pos < len) {
        /* cut the next chunk of non-blank lines */
        size_t n = 0;
        while (n < KL_IMPORT_CHUNK && pos < len) {
            const char *nl = memchr(data + pos, '\n', len - pos);
            size_t end = nl ? (size_t)(nl - data) : len;
            const char *t = data + pos;
            size_t tl = end - pos;
            pos = end + 1;
            lineno++;
            while (tl && strchr(" \t\r", t[tl - 1]))
                tl--;
            while (tl && strchr(" \t", t[0]))
                t++, tl--;
            if (tl == 0) continue; /* blank lines are allowed */
            lines[n] = (struct line){.text = t, .len = tl, .lineno = lineno};
            n++;
        }
        struct work w = {.cas = &cas, .default_status = default_status, .lines = lines, .n = n};
        pthread_mutex_init(&w.lock, NULL);
        pthread_t th[KL_IMPORT_THREADS];
        int started = 0;
        for (int i = 1; i < nthreads && n > 64; i++)
            if (pthread_create(&th[started], NULL, worker, &w) == 0) started++;
        worker(&w); /* this thread works too */
        for (int i = 0; i < started; i++)
            pthread_join(th[i], NULL);
        pthread_mutex_destroy(&w.lock);
        for (size_t i = 0; i < n; i++) {
            if (rc == KL_REG_OK) {
                rc = write_line(reg, &lines[i], res, err);
                if (rc) {
                    res->failed = 1;
                    res->first_failed_line = lines[i].lineno;
                    snprintf(res->first_error, sizeof res->first_error, "%s: %.200s",
                             kl_reg_rc_name(rc), err ? err->msg : "");
                    if (err)
                        kl_reg_fail(err, rc, "line %ld: %s", lines[i].lineno, res->first_error);
                }
            }
            line_free(&lines[i]);
        }
    }
    res->lines = lineno;
    kl_reg_ca_cache_free(&cas);
    free(lines);
    if (rc == KL_REG_OK && res->certs_registered == 0)
        rc = kl_reg_fail(err, KL_REG_INVALID, "the import file holds no records");
    rc = kl_reg_wend(reg, rc, err);
    if (rc) res->things_created = res->certs_registered = res->attached = 0;
    return rc;
}
