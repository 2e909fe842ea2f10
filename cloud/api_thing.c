/* API handlers: things and thing–principal attachments. */
#include <stdlib.h>
#include <string.h>

#include "api.h"

/* attributePayload {attributes:{...}, merge:bool} -> JSON text of attributes (malloc'd). */
static kl_reg_rc payload(struct kl_api_req *r, char **attrs, int *merge, struct kl_reg_err *err)
{
    *attrs = NULL;
    *merge = 0;
    json_t *p = r->body ? json_object_get(r->body, "attributePayload") : NULL;
    if (!p || json_is_null(p)) return KL_REG_OK;
    if (!json_is_object(p))
        return kl_reg_fail(err, KL_REG_INVALID, "attributePayload must be an object");
    json_t *m = json_object_get(p, "merge");
    if (m && !json_is_boolean(m))
        return kl_reg_fail(err, KL_REG_INVALID, "attributePayload.merge must be a boolean");
    *merge = json_is_true(m);
    json_t *a = json_object_get(p, "attributes");
    if (!a || json_is_null(a)) return KL_REG_OK;
    if (!json_is_object(a))
        return kl_reg_fail(err, KL_REG_INVALID, "attributePayload.attributes must be an object");
    *attrs = json_dumps(a, JSON_COMPACT);
    return *attrs ? KL_REG_OK : kl_reg_fail(err, KL_REG_INTERNAL, "out of memory");
}

kl_reg_rc kl_api_thing_create(struct kl_api_req *r, struct kl_reg_err *err)
{
    const char *type = NULL;
    char *attrs = NULL;
    int merge;
    kl_reg_rc rc = kl_api_body_str(r, "thingTypeName", &type, err);
    if (!rc) rc = payload(r, &attrs, &merge, err);
    if (rc) return rc;
    struct kl_reg_thing t;
    rc = kl_reg_thing_create(r->reg, r->param, type, attrs, &t, err);
    free(attrs);
    if (rc) return rc;
    r->out = json_pack("{s:s, s:s, s:s}", "thingName", t.name, "thingArn", t.arn, "thingId", t.id);
    kl_reg_thing_clear(&t);
    return KL_REG_OK;
}

static json_t *thing_json(const struct kl_reg_thing *t, int full)
{
    json_t *o = full ? json_pack("{s:s, s:s, s:s, s:s}", "defaultClientId", t->name, "thingName",
                                 t->name, "thingId", t->id, "thingArn", t->arn)
                     : json_pack("{s:s, s:s}", "thingName", t->name, "thingArn", t->arn);
    if (!o) return NULL;
    if (t->type[0]) json_object_set_new(o, "thingTypeName", json_string(t->type));
    json_t *a = json_loads(t->attributes ? t->attributes : "{}", 0, NULL);
    json_object_set_new(o, "attributes", a ? a : json_object());
    json_object_set_new(o, "version", json_integer(t->version));
    return o;
}

kl_reg_rc kl_api_thing_describe(struct kl_api_req *r, struct kl_reg_err *err)
{
    struct kl_reg_thing t;
    kl_reg_rc rc = kl_reg_thing_get(r->reg, r->param, &t, err);
    if (rc) return rc;
    r->out = thing_json(&t, 1);
    kl_reg_thing_clear(&t);
    return r->out ? KL_REG_OK : kl_reg_fail(err, KL_REG_INTERNAL, "out of memory");
}

static kl_reg_rc version_of(const char *s, int64_t *v, struct kl_reg_err *err)
{
    *v = -1;
    if (!s) return KL_REG_OK;
    char *end;
    long long x = strtoll(s, &end, 10);
    if (!*s || *end || x < 0) return kl_reg_fail(err, KL_REG_INVALID, "bad expectedVersion");
    *v = x;
    return KL_REG_OK;
}

kl_reg_rc kl_api_thing_update(struct kl_api_req *r, struct kl_reg_err *err)
{
    const char *type = NULL;
    char *attrs = NULL;
    int merge = 0, remove = 0;
    int64_t expected = -1;
    kl_reg_rc rc = kl_api_body_str(r, "thingTypeName", &type, err);
    json_t *ev = r->body ? json_object_get(r->body, "expectedVersion") : NULL;
    json_t *rm = r->body ? json_object_get(r->body, "removeThingType") : NULL;
    if (!rc && ev && !json_is_null(ev)) {
        if (!json_is_integer(ev) || json_integer_value(ev) < 0)
            rc = kl_reg_fail(err, KL_REG_INVALID, "expectedVersion must be an integer");
        else
            expected = json_integer_value(ev);
    }
    if (!rc && rm && !json_is_null(rm)) {
        if (!json_is_boolean(rm))
            rc = kl_reg_fail(err, KL_REG_INVALID, "removeThingType must be a boolean");
        remove = json_is_true(rm);
    }
    if (!rc) rc = payload(r, &attrs, &merge, err);
    if (rc) return rc;
    rc = kl_reg_thing_update(r->reg, r->param, type, remove, attrs, merge, expected, err);
    free(attrs);
    return rc;
}

kl_reg_rc kl_api_thing_delete(struct kl_api_req *r, struct kl_reg_err *err)
{
    int64_t expected;
    kl_reg_rc rc = version_of(kl_api_query(r, "expectedVersion"), &expected, err);
    if (rc) return rc;
    return kl_reg_thing_delete(r->reg, r->param, expected, err);
}

static int add_thing(void *ctx, const struct kl_reg_thing *t)
{
    json_array_append_new(ctx, thing_json(t, 0));
    return 0;
}

kl_reg_rc kl_api_thing_list(struct kl_api_req *r, struct kl_reg_err *err)
{
    struct kl_reg_page page;
    kl_reg_rc rc = kl_api_page(r, "maxResults", "nextToken", &page, err);
    if (rc) return rc;
    json_t *arr = json_array();
    rc = kl_reg_thing_list(r->reg, kl_api_query(r, "attributeName"),
                           kl_api_query(r, "attributeValue"), kl_api_query(r, "thingTypeName"),
                           &page, add_thing, arr, err);
    if (rc) {
        json_decref(arr);
        return rc;
    }
    r->out = json_pack("{s:o}", "things", arr);
    if (page.next_token[0]) json_object_set_new(r->out, "nextToken", json_string(page.next_token));
    return KL_REG_OK;
}

kl_reg_rc kl_api_thing_attach(struct kl_api_req *r, struct kl_reg_err *err)
{
    return kl_reg_thing_attach(r->reg, r->param, kl_api_header(r, "x-amzn-principal"), err);
}

kl_reg_rc kl_api_thing_detach(struct kl_api_req *r, struct kl_reg_err *err)
{
    return kl_reg_thing_detach(r->reg, r->param, kl_api_header(r, "x-amzn-principal"), err);
}

static int add_str(void *ctx, const char *s)
{
    json_array_append_new(ctx, json_string(s));
    return 0;
}

static kl_reg_rc str_page(struct kl_api_req *r, const char *key,
                          kl_reg_rc (*fn)(struct kl_registry *, const char *, struct kl_reg_page *,
                                          kl_reg_str_fn, void *, struct kl_reg_err *),
                          const char *owner, struct kl_reg_err *err)
{
    struct kl_reg_page page;
    kl_reg_rc rc = kl_api_page(r, "maxResults", "nextToken", &page, err);
    if (rc) return rc;
    json_t *arr = json_array();
    rc = fn(r->reg, owner, &page, add_str, arr, err);
    if (rc) {
        json_decref(arr);
        return rc;
    }
    r->out = json_pack("{s:o}", key, arr);
    if (page.next_token[0]) json_object_set_new(r->out, "nextToken", json_string(page.next_token));
    return KL_REG_OK;
}

kl_reg_rc kl_api_thing_principals(struct kl_api_req *r, struct kl_reg_err *err)
{
    return str_page(r, "principals", kl_reg_thing_principals, r->param, err);
}

kl_reg_rc kl_api_principal_things(struct kl_api_req *r, struct kl_reg_err *err)
{
    return str_page(r, "things", kl_reg_principal_things, kl_api_header(r, "x-amzn-principal"),
                    err);
}
