/* API handlers: device certificates. */
#include <string.h>

#include "api.h"

kl_reg_rc kl_api_cert_register(struct kl_api_req *r, struct kl_reg_err *err)
{
    const char *pem = NULL, *ca = NULL, *status = NULL;
    int active = 0;
    kl_reg_rc rc = kl_api_body_str(r, "certificatePem", &pem, err);
    if (!rc) rc = kl_api_body_str(r, "caCertificatePem", &ca, err);
    if (!rc) rc = kl_api_body_str(r, "status", &status, err);
    if (!rc) rc = kl_api_query_bool(r, "setAsActive", 0, &active, err);
    if (rc) return rc;
    if (!status && active) status = "ACTIVE";
    struct kl_reg_cert out;
    rc = kl_reg_cert_register(r->reg, pem, ca, status, &out, err);
    if (rc == KL_REG_OK)
        r->out = json_pack("{s:s, s:s}", "certificateArn", out.arn, "certificateId", out.id);
    return rc;
}

kl_reg_rc kl_api_cert_update(struct kl_api_req *r, struct kl_reg_err *err)
{
    return kl_reg_cert_update(r->reg, r->param, kl_api_query(r, "newStatus"), err);
}

kl_reg_rc kl_api_cert_describe(struct kl_api_req *r, struct kl_reg_err *err)
{
    struct kl_reg_cert c;
    kl_reg_rc rc = kl_reg_cert_get(r->reg, r->param, 1, &c, err);
    if (rc) return rc;
    r->out = json_pack("{s:{s:s, s:s, s:s, s:s, s:s, s:s, s:I, s:I, s:i, s:s, s:s, s:{}, "
                       "s:{s:I, s:I}}}",
                       "certificateDescription", "certificateArn", c.arn, "certificateId", c.id,
                       "caCertificateId", c.ca_id, "status", c.status, "certificatePem", c.pem,
                       "ownedBy", kl_registry_account(r->reg), "creationDate",
                       (json_int_t)c.created, "lastModifiedDate", (json_int_t)c.modified,
                       "customerVersion", c.version, "generationId", c.generation_id,
                       "certificateMode", c.mode, "transferData", "validity", "notBefore",
                       (json_int_t)c.not_before, "notAfter", (json_int_t)c.not_after);
    kl_reg_cert_clear(&c);
    return r->out ? KL_REG_OK : kl_reg_fail(err, KL_REG_INTERNAL, "out of memory");
}

kl_reg_rc kl_api_cert_delete(struct kl_api_req *r, struct kl_reg_err *err)
{
    int force = 0;
    kl_reg_rc rc = kl_api_query_bool(r, "forceDelete", 0, &force, err);
    if (rc) return rc;
    return kl_reg_cert_delete(r->reg, r->param, force, err);
}

static int add_cert(void *ctx, const struct kl_reg_cert *c)
{
    json_array_append_new(ctx,
                          json_pack("{s:s, s:s, s:s, s:s, s:I}", "certificateArn", c->arn,
                                    "certificateId", c->id, "status", c->status, "certificateMode",
                                    c->mode, "creationDate", (json_int_t)c->created));
    return 0;
}

static kl_reg_rc list(struct kl_api_req *r, const char *ca_id, struct kl_reg_err *err)
{
    struct kl_reg_page page;
    kl_reg_rc rc = kl_api_page(r, "pageSize", "marker", &page, err);
    if (rc) return rc;
    json_t *arr = json_array();
    rc = kl_reg_cert_list(r->reg, ca_id, &page, add_cert, arr, err);
    if (rc) {
        json_decref(arr);
        return rc;
    }
    r->out = json_pack("{s:o}", "certificates", arr);
    if (page.next_token[0]) json_object_set_new(r->out, "nextMarker", json_string(page.next_token));
    return KL_REG_OK;
}

kl_reg_rc kl_api_cert_list(struct kl_api_req *r, struct kl_reg_err *err)
{
    return list(r, NULL, err);
}

kl_reg_rc kl_api_cert_list_by_ca(struct kl_api_req *r, struct kl_reg_err *err)
{
    return list(r, r->param, err);
}
