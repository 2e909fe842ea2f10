/* API handlers: CA certificates and the registration code. */
#include <string.h>

#include "api.h"

kl_reg_rc kl_api_registration_code(struct kl_api_req *r, struct kl_reg_err *err)
{
    char code[KL_REG_ID_HEX];
    kl_reg_rc rc = kl_reg_registration_code(r->reg, code, err);
    if (rc == KL_REG_OK) r->out = json_pack("{s:s}", "registrationCode", code);
    return rc;
}

kl_reg_rc kl_api_ca_register(struct kl_api_req *r, struct kl_reg_err *err)
{
    const char *ca = NULL, *verif = NULL, *mode = NULL;
    int active = 0, autoreg = 0;
    kl_reg_rc rc = kl_api_body_str(r, "caCertificate", &ca, err);
    if (!rc) rc = kl_api_body_str(r, "verificationCertificate", &verif, err);
    if (!rc) rc = kl_api_body_str(r, "certificateMode", &mode, err);
    if (!rc) rc = kl_api_query_bool(r, "setAsActive", 0, &active, err);
    if (!rc) rc = kl_api_query_bool(r, "allowAutoRegistration", 0, &autoreg, err);
    if (rc) return rc;
    struct kl_reg_ca out;
    rc = kl_reg_ca_register(r->reg, ca, verif, active, autoreg, mode, &out, err);
    if (rc == KL_REG_OK)
        r->out = json_pack("{s:s, s:s}", "certificateArn", out.arn, "certificateId", out.id);
    return rc;
}

kl_reg_rc kl_api_ca_update(struct kl_api_req *r, struct kl_reg_err *err)
{
    return kl_reg_ca_update(r->reg, r->param, kl_api_query(r, "newStatus"),
                            kl_api_query(r, "newAutoRegistrationStatus"), err);
}

kl_reg_rc kl_api_ca_describe(struct kl_api_req *r, struct kl_reg_err *err)
{
    struct kl_reg_ca ca;
    kl_reg_rc rc = kl_reg_ca_get(r->reg, r->param, 1, &ca, err);
    if (rc) return rc;
    r->out = json_pack(
        "{s:{s:s, s:s, s:s, s:s, s:s, s:I, s:I, s:s, s:i, s:s, s:s, s:{s:I, s:I}}, s:{}}",
        "certificateDescription", "certificateArn", ca.arn, "certificateId", ca.id, "status",
        ca.status, "certificatePem", ca.pem, "ownedBy", kl_registry_account(r->reg), "creationDate",
        (json_int_t)ca.created, "lastModifiedDate", (json_int_t)ca.modified,
        "autoRegistrationStatus", ca.auto_reg, "customerVersion", ca.version, "generationId",
        ca.generation_id, "certificateMode", ca.mode, "validity", "notBefore",
        (json_int_t)ca.not_before, "notAfter", (json_int_t)ca.not_after, "registrationConfig");
    kl_reg_ca_clear(&ca);
    return r->out ? KL_REG_OK : kl_reg_fail(err, KL_REG_INTERNAL, "out of memory");
}

kl_reg_rc kl_api_ca_delete(struct kl_api_req *r, struct kl_reg_err *err)
{
    return kl_reg_ca_delete(r->reg, r->param, err);
}

static int add_ca(void *ctx, const struct kl_reg_ca *ca)
{
    json_array_append_new(ctx, json_pack("{s:s, s:s, s:s, s:s, s:I}", "certificateArn", ca->arn,
                                         "certificateId", ca->id, "status", ca->status,
                                         "certificateMode", ca->mode, "creationDate",
                                         (json_int_t)ca->created));
    return 0;
}

kl_reg_rc kl_api_ca_list(struct kl_api_req *r, struct kl_reg_err *err)
{
    struct kl_reg_page page;
    kl_reg_rc rc = kl_api_page(r, "pageSize", "marker", &page, err);
    if (rc) return rc;
    json_t *list = json_array();
    rc = kl_reg_ca_list(r->reg, &page, add_ca, list, err);
    if (rc) {
        json_decref(list);
        return rc;
    }
    r->out = json_pack("{s:o}", "certificates", list);
    if (page.next_token[0]) json_object_set_new(r->out, "nextMarker", json_string(page.next_token));
    return KL_REG_OK;
}
