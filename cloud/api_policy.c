/* API handlers: IoT policies, versions and attachments. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"

kl_reg_rc kl_api_policy_create(struct kl_api_req *r, struct kl_reg_err *err)
{
    const char *doc = NULL;
    kl_reg_rc rc = kl_api_body_str(r, "policyDocument", &doc, err);
    if (rc) return rc;
    struct kl_reg_policy p;
    rc = kl_reg_policy_create(r->reg, r->param, doc, &p, err);
    if (rc) return rc;
    r->out = json_pack("{s:s, s:s, s:s, s:s}", "policyName", p.name, "policyArn", p.arn,
                       "policyDocument", p.document, "policyVersionId", p.default_version);
    kl_reg_policy_clear(&p);
    return KL_REG_OK;
}

kl_reg_rc kl_api_policy_version_create(struct kl_api_req *r, struct kl_reg_err *err)
{
    const char *doc = NULL;
    int def = 0;
    kl_reg_rc rc = kl_api_body_str(r, "policyDocument", &doc, err);
    if (!rc) rc = kl_api_query_bool(r, "setAsDefault", 0, &def, err);
    if (rc) return rc;
    char v[16];
    rc = kl_reg_policy_version_create(r->reg, r->param, doc, def, v, err);
    if (rc) return rc;
    struct kl_reg_policy p;
    rc = kl_reg_policy_get(r->reg, r->param, &p, err);
    if (rc) return rc;
    r->out = json_pack("{s:s, s:s, s:s, s:b}", "policyArn", p.arn, "policyDocument", doc,
                       "policyVersionId", v, "isDefaultVersion", !strcmp(v, p.default_version));
    kl_reg_policy_clear(&p);
    return KL_REG_OK;
}

kl_reg_rc kl_api_policy_get(struct kl_api_req *r, struct kl_reg_err *err)
{
    struct kl_reg_policy p;
    kl_reg_rc rc = kl_reg_policy_get(r->reg, r->param, &p, err);
    if (rc) return rc;
    r->out = json_pack("{s:s, s:s, s:s, s:s, s:I, s:I, s:s}", "policyName", p.name, "policyArn",
                       p.arn, "policyDocument", p.document, "defaultVersionId", p.default_version,
                       "creationDate", (json_int_t)p.created, "lastModifiedDate",
                       (json_int_t)p.modified, "generationId", p.generation_id);
    kl_reg_policy_clear(&p);
    return KL_REG_OK;
}

kl_reg_rc kl_api_policy_delete(struct kl_api_req *r, struct kl_reg_err *err)
{
    return kl_reg_policy_delete(r->reg, r->param, err);
}

struct plist {
    struct kl_registry *reg;
    json_t *arr;
};

static int add_policy(void *ctx, const char *name)
{
    struct plist *pl = ctx;
    char arn[KL_REG_ARN_MAX];
    snprintf(arn, sizeof arn, "arn:aws:iot:%s:%s:policy/%s", kl_registry_region(pl->reg),
             kl_registry_account(pl->reg), name);
    json_array_append_new(pl->arr, json_pack("{s:s, s:s}", "policyName", name, "policyArn", arn));
    return 0;
}

kl_reg_rc kl_api_policy_list(struct kl_api_req *r, struct kl_reg_err *err)
{
    struct kl_reg_page page;
    kl_reg_rc rc = kl_api_page(r, "pageSize", "marker", &page, err);
    if (rc) return rc;
    struct plist pl = {r->reg, json_array()};
    rc = kl_reg_policy_list(r->reg, &page, add_policy, &pl, err);
    if (rc) {
        json_decref(pl.arr);
        return rc;
    }
    r->out = json_pack("{s:o}", "policies", pl.arr);
    if (page.next_token[0]) json_object_set_new(r->out, "nextMarker", json_string(page.next_token));
    return KL_REG_OK;
}

kl_reg_rc kl_api_policy_attach(struct kl_api_req *r, struct kl_reg_err *err)
{
    const char *target = NULL;
    kl_reg_rc rc = kl_api_body_str(r, "target", &target, err);
    if (rc) return rc;
    return kl_reg_policy_attach(r->reg, r->param, target, err);
}

kl_reg_rc kl_api_policy_detach(struct kl_api_req *r, struct kl_reg_err *err)
{
    const char *target = NULL;
    kl_reg_rc rc = kl_api_body_str(r, "target", &target, err);
    if (rc) return rc;
    return kl_reg_policy_detach(r->reg, r->param, target, err);
}

kl_reg_rc kl_api_policy_attached(struct kl_api_req *r, struct kl_reg_err *err)
{
    struct kl_reg_page page;
    kl_reg_rc rc = kl_api_page(r, "pageSize", "marker", &page, err);
    if (rc) return rc;
    struct plist pl = {r->reg, json_array()};
    rc = kl_reg_policy_attached(r->reg, r->param, &page, add_policy, &pl, err);
    if (rc) {
        json_decref(pl.arr);
        return rc;
    }
    r->out = json_pack("{s:o}", "policies", pl.arr);
    if (page.next_token[0]) json_object_set_new(r->out, "nextMarker", json_string(page.next_token));
    return KL_REG_OK;
}

static int add_version(void *ctx, const struct kl_reg_policy_version *v)
{
    json_array_append_new(ctx,
                          json_pack("{s:s, s:b, s:I}", "versionId", v->version, "isDefaultVersion",
                                    v->is_default, "createDate", (json_int_t)v->created));
    return 0;
}

kl_reg_rc kl_api_policy_version_list(struct kl_api_req *r, struct kl_reg_err *err)
{
    json_t *arr = json_array();
    kl_reg_rc rc = kl_reg_policy_versions(r->reg, r->param, add_version, arr, err);
    if (rc) {
        json_decref(arr);
        return rc;
    }
    r->out = json_pack("{s:o}", "policyVersions", arr);
    return KL_REG_OK;
}

kl_reg_rc kl_api_policy_version_get(struct kl_api_req *r, struct kl_reg_err *err)
{
    struct kl_reg_policy_version v;
    kl_reg_rc rc = kl_reg_policy_version_get(r->reg, r->param, r->param2, &v, err);
    if (rc) return rc;
    struct kl_reg_policy p;
    rc = kl_reg_policy_get(r->reg, r->param, &p, err);
    if (rc == KL_REG_OK) {
        r->out =
            json_pack("{s:s, s:s, s:s, s:s, s:b, s:I, s:I, s:s}", "policyArn", p.arn, "policyName",
                      p.name, "policyDocument", v.document, "policyVersionId", v.version,
                      "isDefaultVersion", v.is_default, "creationDate", (json_int_t)v.created,
                      "lastModifiedDate", (json_int_t)p.modified, "generationId", p.generation_id);
        kl_reg_policy_clear(&p);
    }
    free(v.document);
    return rc;
}

kl_reg_rc kl_api_policy_version_default(struct kl_api_req *r, struct kl_reg_err *err)
{
    return kl_reg_policy_version_default(r->reg, r->param, r->param2, err);
}

kl_reg_rc kl_api_policy_version_delete(struct kl_api_req *r, struct kl_reg_err *err)
{
    return kl_reg_policy_version_delete(r->reg, r->param, r->param2, err);
}
