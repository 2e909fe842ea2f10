/* API handlers: describe-endpoint and the bulk import (a keylink extension). */
#include <string.h>

#include "api.h"

kl_reg_rc kl_api_describe_endpoint(struct kl_api_req *r, struct kl_reg_err *err)
{
    const char *type = kl_api_query(r, "endpointType");
    if (type && strcmp(type, "iot:Data-ATS") && strcmp(type, "iot:Data"))
        return kl_reg_fail(err, KL_REG_INVALID, "endpointType must be iot:Data-ATS or iot:Data");
    r->out = json_pack("{s:s}", "endpointAddress", kl_api_endpoint_address(r));
    return KL_REG_OK;
}

kl_reg_rc kl_api_bulk_import(struct kl_api_req *r, struct kl_reg_err *err)
{
    const char *status = kl_api_query(r, "status");
    struct kl_reg_import_result res;
    kl_reg_rc rc = kl_reg_import(r->reg, r->raw, r->raw_len, status, &res, err);
    if (rc) return rc;
    r->out =
        json_pack("{s:I, s:I, s:I, s:I}", "lines", (json_int_t)res.lines, "thingsCreated",
                  (json_int_t)res.things_created, "certificatesRegistered",
                  (json_int_t)res.certs_registered, "principalsAttached", (json_int_t)res.attached);
    return KL_REG_OK;
}
