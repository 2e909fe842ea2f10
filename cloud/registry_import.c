/* Registry: bulk import of the batch-provisioning file (JSON lines), all or nothing. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "registry_int.h"

#define KL_IMPORT_MAX_LINE (64 * 1024)

static const char *opt_str(json_t *o, const char *k, int *bad)
{
    json_t *v = json_object_get(o, k);
    if (!v || json_is_null(v)) return NULL;
    if (!json_is_string(v)) *bad = 1;
    return json_string_value(v);
}

static kl_reg_rc import_line(struct kl_registry *reg, const char *line, size_t len,
                             const char *default_status, struct kl_reg_ca_cache *cache,
                             struct kl_reg_import_result *res, struct kl_reg_err *err)
{
    json_error_t je;
    json_t *o = json_loadb(line, len, JSON_REJECT_DUPLICATES, &je);
    if (!json_is_object(o)) {
        json_decref(o);
        return kl_reg_fail(err, KL_REG_INVALID, "not a JSON object");
    }
    int bad = 0;
    const char *thing = opt_str(o, "thingName", &bad);
    const char *pem = opt_str(o, "certificatePem", &bad);
    const char *ca_pem = opt_str(o, "caCertificatePem", &bad);
    const char *status = opt_str(o, "status", &bad);
    const char *policy = opt_str(o, "policyName", &bad);
    const char *want_ca = opt_str(o, "caCertificateId", &bad);
    const char *want_id = opt_str(o, "certificateId", &bad);
    json_t *attrs = json_object_get(o, "attributes");
    /* other fields (serialNumber, device, ...) are the provisioning's notes: ignored */
    kl_reg_rc rc = KL_REG_OK;
    if (bad || (attrs && !json_is_object(attrs)))
        rc = kl_reg_fail(err, KL_REG_INVALID, "a field has the wrong JSON type");
    else if (!thing || !pem)
        rc = kl_reg_fail(err, KL_REG_INVALID, "thingName and certificatePem are required");
    char *attr_text = NULL;
    if (rc == KL_REG_OK && attrs) attr_text = json_dumps(attrs, JSON_COMPACT);
    int created = 0;
    struct kl_reg_cert c;
    if (rc == KL_REG_OK) rc = kl_reg_thing_create_tx(reg, thing, NULL, attr_text, &created, err);
    free(attr_text);
    if (rc == KL_REG_OK)
        rc = kl_reg_cert_register_tx(reg, pem, ca_pem, status ? status : default_status, want_id,
                                     want_ca, cache, &c, err);
    if (rc == KL_REG_OK) rc = kl_reg_thing_attach_tx(reg, thing, c.id, err);
    if (rc == KL_REG_OK && policy) rc = kl_reg_policy_attach_tx(reg, policy, c.arn, err);
    if (rc == KL_REG_OK) {
        res->things_created += created;
        res->certs_registered++;
        res->attached++;
    }
    json_decref(o);
    return rc;
}

kl_reg_rc kl_reg_import(struct kl_registry *reg, const char *data, size_t len,
                        const char *default_status, struct kl_reg_import_result *res,
                        struct kl_reg_err *err)
{
    memset(res, 0, sizeof *res);
    if (!default_status) default_status = "ACTIVE";
    kl_reg_rc rc = kl_reg_wbegin(reg, err);
    if (rc) return rc;
    struct kl_reg_ca_cache cache = {0};
    size_t pos = 0;
    while (pos < len && rc == KL_REG_OK) {
        const char *nl = memchr(data + pos, '\n', len - pos);
        size_t end = nl ? (size_t)(nl - data) : len;
        size_t n = end - pos;
        res->lines++;
        const char *line = data + pos;
        pos = end + 1;
        while (n && (line[n - 1] == '\r' || line[n - 1] == ' ' || line[n - 1] == '\t'))
            n--;
        size_t lead = 0;
        while (lead < n && (line[lead] == ' ' || line[lead] == '\t'))
            lead++;
        if (lead == n) continue; /* blank lines are allowed */
        if (n > KL_IMPORT_MAX_LINE)
            rc = kl_reg_fail(err, KL_REG_INVALID, "line longer than %d bytes", KL_IMPORT_MAX_LINE);
        else
            rc = import_line(reg, line + lead, n - lead, default_status, &cache, res, err);
        if (rc) {
            res->failed = 1;
            res->first_failed_line = res->lines;
            snprintf(res->first_error, sizeof res->first_error, "%s: %.200s", kl_reg_rc_name(rc),
                     err ? err->msg : "");
            if (err) kl_reg_fail(err, rc, "line %ld: %s", res->lines, res->first_error);
        }
    }
    kl_reg_ca_cache_free(&cache);
    if (rc == KL_REG_OK && res->certs_registered == 0)
        rc = kl_reg_fail(err, KL_REG_INVALID, "the import file holds no records");
    rc = kl_reg_wend(reg, rc, err);
    if (rc) {
        res->things_created = res->certs_registered = res->attached = 0;
    }
    return rc;
}
