/* Registry rules through the C API: CAs, certificates, things, principals, policies,
 * pagination, change hook, bulk import (all or nothing) and persistence across reopen. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "kl_pki.h"
#include "registry.h"
#include "x509_check.h"

static int fails;
#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c)) {                                                                                \
            fprintf(stderr, "%s:%d: FAIL %s\n", __FILE__, __LINE__, #c);                           \
            fails++;                                                                               \
        }                                                                                          \
    } while (0)
#define RC(expr, want)                                                                             \
    do {                                                                                           \
        struct kl_reg_err e_ = {0};                                                                \
        (void)e_;                                                                                  \
        kl_reg_rc got_ = (expr);                                                                   \
        if (got_ != (want)) {                                                                      \
            fprintf(stderr, "%s:%d: FAIL %s = %s, want %s\n", __FILE__, __LINE__, #expr,           \
                    kl_reg_rc_name(got_), kl_reg_rc_name(want));                                   \
            fails++;                                                                               \
        }                                                                                          \
    } while (0)

struct ca {
    EVP_PKEY *key;
    X509 *cert;
    char *pem;
};

static struct ca make_ca(const char *subject)
{
    struct ca c = {0};
    if (kl_pki_keygen_p256(&c.key) || kl_pki_issue_ca(c.key, subject, 30, &c.cert)) abort();
    c.pem = kl_x509_to_pem(c.cert);
    return c;
}

static void free_ca(struct ca *c)
{
    EVP_PKEY_free(c->key);
    X509_free(c->cert);
    free(c->pem);
}

static char *device_pem(struct ca *ca, const char *cn)
{
    EVP_PKEY *k = NULL;
    uint8_t xy[64];
    X509 *x = NULL;
    if (kl_pki_keygen_p256(&k) || kl_pki_pubkey_to_raw(k, xy) ||
        kl_pki_issue_device(ca->cert, ca->key, xy, cn, 10, &x))
        abort();
    char *pem = kl_x509_to_pem(x);
    EVP_PKEY_free(k);
    X509_free(x);
    return pem;
}

static char *verif_pem(struct ca *ca, const char *code)
{
    EVP_PKEY *k = NULL;
    X509 *x = NULL;
    if (kl_pki_issue_verification(ca->cert, ca->key, code, 5, &k, &x)) abort();
    char *pem = kl_x509_to_pem(x);
    EVP_PKEY_free(k);
    X509_free(x);
    return pem;
}

static int events;
static char last_event[128];
static void hook(void *ctx, enum kl_reg_change what, const char *id, const char *status)
{
    (void)ctx;
    events++;
    snprintf(last_event, sizeof last_event, "%d %.64s %s", (int)what, id, status);
}

static int count_cb(void *ctx, const struct kl_reg_thing *t)
{
    (void)t;
    (*(int *)ctx)++;
    return 0;
}

static int pv_count(void *ctx, const struct kl_reg_policy_version *v)
{
    (void)v;
    (*(int *)ctx)++;
    return 0;
}

static int str_count(void *ctx, const char *s)
{
    (void)s;
    (*(int *)ctx)++;
    return 0;
}

int main(void)
{
    char dir[] = "/tmp/kl-registry-XXXXXX", path[256];
    if (!mkdtemp(dir)) return 1;
    snprintf(path, sizeof path, "%s/registry.db", dir);
    struct kl_registry *reg = NULL;
    struct kl_reg_err err = {0};
    RC(kl_registry_open(path, NULL, &reg, &err), KL_REG_OK);
    if (!reg) return 1;
    struct kl_registry_opts bad_opts = {"us-east-1", "12ab"};
    struct kl_registry *r2 = NULL;
    RC(kl_registry_open(path, &bad_opts, &r2, &err), KL_REG_INVALID);
    kl_registry_set_hook(reg, hook, NULL);

    char code[KL_REG_ID_HEX], code2[KL_REG_ID_HEX];
    RC(kl_reg_registration_code(reg, code, &err), KL_REG_OK);
    RC(kl_reg_registration_code(reg, code2, &err), KL_REG_OK);
    CHECK(strlen(code) == 64 && !strcmp(code, code2));

    struct ca ca = make_ca("/CN=test CA one"), other = make_ca("/CN=test CA two");
    struct kl_reg_ca rca;
    /* CA registration: the checks */
    char *v_ok = verif_pem(&ca, code), *v_wrong_code = verif_pem(&ca, "not-the-code");
    char *v_wrong_signer = verif_pem(&other, code);
    char *dev_as_ca = device_pem(&ca, "dev0");
    RC(kl_reg_ca_register(reg, ca.pem, NULL, 1, 0, NULL, &rca, &err), KL_REG_INVALID);
    RC(kl_reg_ca_register(reg, ca.pem, v_wrong_code, 1, 0, NULL, &rca, &err), KL_REG_REG_CODE);
    RC(kl_reg_ca_register(reg, ca.pem, v_wrong_signer, 1, 0, NULL, &rca, &err),
       KL_REG_CERT_INVALID);
    RC(kl_reg_ca_register(reg, dev_as_ca, v_ok, 1, 0, NULL, &rca, &err), KL_REG_CERT_INVALID);
    RC(kl_reg_ca_register(reg, "garbage", v_ok, 1, 0, NULL, &rca, &err), KL_REG_CERT_INVALID);
    RC(kl_reg_ca_register(reg, ca.pem, v_ok, 1, 0, "BOGUS", &rca, &err), KL_REG_INVALID);
    /* two certificates in one PEM is not "one certificate" */
    char two[8192];
    snprintf(two, sizeof two, "%s%s", ca.pem, other.pem);
    RC(kl_reg_ca_register(reg, two, v_ok, 1, 0, NULL, &rca, &err), KL_REG_CERT_INVALID);
    RC(kl_reg_ca_register(reg, ca.pem, v_ok, 1, 0, NULL, &rca, &err), KL_REG_OK);
    CHECK(!strcmp(rca.status, "ACTIVE") && strlen(rca.id) == 64);
    CHECK(strstr(rca.arn, ":cacert/") && strstr(rca.arn, rca.id));
    RC(kl_reg_ca_register(reg, ca.pem, v_ok, 1, 0, NULL, NULL, &err), KL_REG_EXISTS);
    char ca_id[KL_REG_ID_HEX];
    memcpy(ca_id, rca.id, sizeof ca_id);
    /* the other CA: SNI_ONLY needs no verification certificate; starts INACTIVE */
    RC(kl_reg_ca_register(reg, other.pem, NULL, 0, 0, "SNI_ONLY", &rca, &err), KL_REG_OK);
    char other_id[KL_REG_ID_HEX];
    memcpy(other_id, rca.id, sizeof other_id);
    CHECK(!strcmp(rca.status, "INACTIVE"));

    /* device certificates */
    char *d1 = device_pem(&ca, "dev1"), *d2 = device_pem(&ca, "dev2");
    char *d_other = device_pem(&other, "dev-other");
    struct ca unknown = make_ca("/CN=unknown CA");
    char *d_unknown = device_pem(&unknown, "dev-unknown");
    struct kl_reg_cert c1, c;
    RC(kl_reg_cert_register(reg, d_unknown, NULL, "ACTIVE", &c, &err), KL_REG_CERT_INVALID);
    RC(kl_reg_cert_register(reg, d_unknown, unknown.pem, "ACTIVE", &c, &err), KL_REG_CERT_INVALID);
    RC(kl_reg_cert_register(reg, d_other, NULL, "ACTIVE", &c, &err), KL_REG_CERT_STATE);
    RC(kl_reg_cert_register(reg, d1, other.pem, "ACTIVE", &c, &err), KL_REG_CERT_INVALID);
    RC(kl_reg_cert_register(reg, ca.pem, NULL, "ACTIVE", &c, &err), KL_REG_CERT_INVALID);
    RC(kl_reg_cert_register(reg, d1, NULL, "WEIRD", &c, &err), KL_REG_INVALID);
    RC(kl_reg_cert_register(reg, d1, ca.pem, "ACTIVE", &c1, &err), KL_REG_OK);
    CHECK(!strcmp(c1.ca_id, ca_id) && !strcmp(c1.status, "ACTIVE"));
    RC(kl_reg_cert_register(reg, d1, NULL, NULL, &c, &err), KL_REG_EXISTS);
    RC(kl_reg_cert_register(reg, d2, NULL, NULL, &c, &err), KL_REG_OK);
    CHECK(!strcmp(c.status, "INACTIVE"));
    char id2[KL_REG_ID_HEX];
    memcpy(id2, c.id, sizeof id2);
    /* the id is the SHA-256 of the DER; the DER lookup finds it */
    X509 *x1 = kl_x509_from_pem(d1);
    unsigned char *der = NULL;
    int derlen = i2d_X509(x1, &der);
    RC(kl_reg_cert_get_der(reg, der, (size_t)derlen, &c, &err), KL_REG_OK);
    CHECK(!strcmp(c.id, c1.id));
    OPENSSL_free(der);
    X509_free(x1);
    RC(kl_reg_cert_get(reg, c1.id, 1, &c, &err), KL_REG_OK);
    CHECK(c.pem && strstr(c.pem, "BEGIN CERTIFICATE"));
    kl_reg_cert_clear(&c);
    RC(kl_reg_cert_get(reg, "00", 0, &c, &err), KL_REG_INVALID);
    RC(kl_reg_cert_get(reg, ca_id, 0, &c, &err), KL_REG_NOT_FOUND);

    /* states: revoke fires the hook; REVOKED is final; activation needs an ACTIVE CA */
    events = 0;
    RC(kl_reg_cert_update(reg, id2, "REVOKED", &err), KL_REG_OK);
    CHECK(events == 1 && strstr(last_event, id2) && strstr(last_event, "REVOKED"));
    RC(kl_reg_cert_update(reg, id2, "ACTIVE", &err), KL_REG_CERT_STATE);
    RC(kl_reg_cert_update(reg, id2, "PENDING_ACTIVATION", &err), KL_REG_INVALID);
    CHECK(events == 1);

    /* things */
    struct kl_reg_thing t;
    RC(kl_reg_thing_create(reg, "bad name", NULL, NULL, &t, &err), KL_REG_INVALID);
    RC(kl_reg_thing_create(reg, "t1", NULL, "{\"a\":\"1\",\"b\":\"x\"}", &t, &err), KL_REG_OK);
    CHECK(t.version == 1 && strstr(t.attributes, "\"a\":\"1\""));
    kl_reg_thing_clear(&t);
    RC(kl_reg_thing_create(reg, "t1", NULL, NULL, &t, &err), KL_REG_EXISTS);
    RC(kl_reg_thing_create(reg, "t2", NULL, "{\"a\":1}", &t, &err), KL_REG_INVALID);
    RC(kl_reg_thing_create(reg, "t2", NULL, "{\"a b\":\"1\"}", &t, &err), KL_REG_INVALID);
    RC(kl_reg_thing_create(reg, "t2", NULL, "[1]", &t, &err), KL_REG_INVALID);
    RC(kl_reg_thing_update(reg, "t1", NULL, 0, "{\"b\":\"\",\"c\":\"3\"}", 1, 1, &err), KL_REG_OK);
    RC(kl_reg_thing_update(reg, "t1", NULL, 0, "{\"d\":\"4\"}", 1, 1, &err),
       KL_REG_VERSION_CONFLICT);
    RC(kl_reg_thing_get(reg, "t1", &t, &err), KL_REG_OK);
    CHECK(t.version == 2 && !strcmp(t.attributes, "{\"a\":\"1\",\"c\":\"3\"}"));
    kl_reg_thing_clear(&t);
    RC(kl_reg_thing_update(reg, "t1", "sensor", 0, "{\"z\":\"9\"}", 0, -1, &err), KL_REG_OK);
    RC(kl_reg_thing_get(reg, "t1", &t, &err), KL_REG_OK);
    CHECK(!strcmp(t.attributes, "{\"z\":\"9\"}") && !strcmp(t.type, "sensor"));
    kl_reg_thing_clear(&t);
    RC(kl_reg_thing_update(reg, "nope", NULL, 0, NULL, 0, -1, &err), KL_REG_NOT_FOUND);
    RC(kl_reg_thing_get(reg, "nope", &t, &err), KL_REG_NOT_FOUND);

    /* principals */
    char arn1[KL_REG_ARN_MAX];
    snprintf(arn1, sizeof arn1, "%s", c1.arn);
    RC(kl_reg_thing_attach(reg, "nope", arn1, &err), KL_REG_NOT_FOUND);
    RC(kl_reg_thing_attach(reg, "t1", "arn:aws:iot:us-east-1:123456789012:cert/zz", &err),
       KL_REG_INVALID);
    RC(kl_reg_thing_attach(reg, "t1", arn1, &err), KL_REG_OK);
    RC(kl_reg_thing_attach(reg, "t1", arn1, &err), KL_REG_OK); /* idempotent */
    struct kl_reg_page pg = {.limit = 10};
    int n = 0;
    RC(kl_reg_thing_principals(reg, "t1", &pg, str_count, &n, &err), KL_REG_OK);
    CHECK(n == 1);
    n = 0;
    RC(kl_reg_principal_things(reg, arn1, &pg, str_count, &n, &err), KL_REG_OK);
    CHECK(n == 1);
    /* delete rules: ACTIVE -> state error; attached -> conflict; thing with principals */
    RC(kl_reg_cert_delete(reg, c1.id, 0, &err), KL_REG_CERT_STATE);
    RC(kl_reg_cert_update(reg, c1.id, "INACTIVE", &err), KL_REG_OK);
    RC(kl_reg_cert_delete(reg, c1.id, 0, &err), KL_REG_DELETE_CONFLICT);
    RC(kl_reg_thing_delete(reg, "t1", -1, &err), KL_REG_INVALID);
    RC(kl_reg_cert_update(reg, c1.id, "ACTIVE", &err), KL_REG_OK);

    /* policies */
    const char *doc = "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\","
                      "\"Action\":[\"iot:Connect\"],\"Resource\":[\"arn:aws:iot:us-east-1:"
                      "123456789012:client/${iot:Connection.Thing.ThingName}\"]}]}";
    struct kl_reg_policy p;
    RC(kl_reg_policy_create(reg, "p1", "{\"Statement\":[]}", &p, &err), KL_REG_MALFORMED_POLICY);
    RC(kl_reg_policy_create(reg, "p1", "not json", &p, &err), KL_REG_MALFORMED_POLICY);
    RC(kl_reg_policy_create(reg, "bad/name", doc, &p, &err), KL_REG_INVALID);
    RC(kl_reg_policy_create(reg, "p1", doc, &p, &err), KL_REG_OK);
    CHECK(!strcmp(p.default_version, "1"));
    kl_reg_policy_clear(&p);
    RC(kl_reg_policy_create(reg, "p1", doc, &p, &err), KL_REG_EXISTS);
    RC(kl_reg_policy_attach(reg, "p1",
                            "arn:aws:iot:us-east-1:123456789012:cert/"
                            "0000000000000000000000000000000000000000000000000000000000000000",
                            &err),
       KL_REG_NOT_FOUND);
    RC(kl_reg_policy_attach(reg, "nope", arn1, &err), KL_REG_NOT_FOUND);
    RC(kl_reg_policy_attach(reg, "p1", arn1, &err), KL_REG_OK);
    n = 0;
    RC(kl_reg_policies_for_principal(reg, arn1, str_count, &n, &err), KL_REG_OK);
    CHECK(n == 1);
    RC(kl_reg_policy_delete(reg, "p1", &err), KL_REG_DELETE_CONFLICT);
    char ver[16];
    for (int i = 0; i < 4; i++)
        RC(kl_reg_policy_version_create(reg, "p1", doc, i == 3, ver, &err), KL_REG_OK);
    CHECK(!strcmp(ver, "5"));
    RC(kl_reg_policy_version_create(reg, "p1", doc, 0, ver, &err), KL_REG_LIMIT);
    RC(kl_reg_policy_get(reg, "p1", &p, &err), KL_REG_OK);
    CHECK(!strcmp(p.default_version, "5"));
    kl_reg_policy_clear(&p);
    RC(kl_reg_policy_detach(reg, "p1", arn1, &err), KL_REG_OK);
    RC(kl_reg_policy_detach(reg, "p1", arn1, &err), KL_REG_NOT_FOUND);
    RC(kl_reg_policy_delete(reg, "p1", &err), KL_REG_DELETE_CONFLICT); /* versions remain */
    struct kl_reg_policy_version pv;
    RC(kl_reg_policy_version_get(reg, "p1", "3", &pv, &err), KL_REG_OK);
    CHECK(!pv.is_default && pv.document && strstr(pv.document, "iot:Connect"));
    free(pv.document);
    RC(kl_reg_policy_version_get(reg, "p1", "9", &pv, &err), KL_REG_NOT_FOUND);
    RC(kl_reg_policy_version_get(reg, "p1", "03", &pv, &err), KL_REG_INVALID);
    RC(kl_reg_policy_version_delete(reg, "p1", "5", &err), KL_REG_DELETE_CONFLICT);
    events = 0;
    RC(kl_reg_policy_version_default(reg, "p1", "1", &err), KL_REG_OK);
    CHECK(events == 1 && strstr(last_event, "p1"));
    for (int v = 2; v <= 5; v++) {
        char vs[4];
        snprintf(vs, sizeof vs, "%d", v);
        RC(kl_reg_policy_version_delete(reg, "p1", vs, &err), KL_REG_OK);
    }
    n = 0;
    RC(kl_reg_policy_versions(reg, "p1", pv_count, &n, &err), KL_REG_OK);
    CHECK(n == 1);
    RC(kl_reg_policy_versions(reg, "nope", pv_count, &n, &err), KL_REG_NOT_FOUND);
    RC(kl_reg_policy_delete(reg, "p1", &err), KL_REG_OK);
    RC(kl_reg_policy_create(reg, "p2", doc, &p, &err), KL_REG_OK);
    kl_reg_policy_clear(&p);
    RC(kl_reg_policy_delete(reg, "p2", &err), KL_REG_OK);
    RC(kl_reg_policy_get(reg, "p2", &p, &err), KL_REG_NOT_FOUND);

    /* CA deletion: ACTIVE refused; with certificates refused */
    RC(kl_reg_ca_delete(reg, ca_id, &err), KL_REG_CERT_STATE);
    RC(kl_reg_ca_update(reg, ca_id, "INACTIVE", NULL, &err), KL_REG_OK);
    RC(kl_reg_cert_update(reg, c1.id, "ACTIVE", &err), KL_REG_CERT_STATE); /* CA INACTIVE */
    RC(kl_reg_ca_delete(reg, ca_id, &err), KL_REG_DELETE_CONFLICT);
    RC(kl_reg_ca_update(reg, ca_id, "ACTIVE", "ENABLE", &err), KL_REG_OK);
    RC(kl_reg_ca_get(reg, ca_id, 0, &rca, &err), KL_REG_OK);
    CHECK(!strcmp(rca.auto_reg, "ENABLE") && rca.version == 3);
    RC(kl_reg_ca_delete(reg, other_id, &err), KL_REG_OK);
    RC(kl_reg_ca_get(reg, other_id, 0, &rca, &err), KL_REG_NOT_FOUND);

    /* pagination over 30 things in pages of 7 */
    char name[32];
    for (int i = 0; i < 30; i++) {
        snprintf(name, sizeof name, "page-%02d", i);
        RC(kl_reg_thing_create(reg, name, NULL, i % 2 ? "{\"odd\":\"yes\"}" : NULL, NULL, &err),
           KL_REG_OK);
    }
    int total = 0, pages = 0;
    char token[sizeof pg.next_token] = "";
    do {
        struct kl_reg_page q = {.limit = 7, .token = token};
        RC(kl_reg_thing_list(reg, NULL, NULL, NULL, &q, count_cb, &total, &err), KL_REG_OK);
        memcpy(token, q.next_token, sizeof token);
        pages++;
    } while (token[0] && pages < 20);
    CHECK(total == 31 && pages == 5); /* 30 + t1 */
    total = 0;
    struct kl_reg_page q = {.limit = 100};
    RC(kl_reg_thing_list(reg, "odd", "yes", NULL, &q, count_cb, &total, &err), KL_REG_OK);
    CHECK(total == 15);
    q.token = "zz-not-hex";
    RC(kl_reg_thing_list(reg, NULL, NULL, NULL, &q, count_cb, &total, &err), KL_REG_INVALID);
    q.token = NULL;
    q.limit = 0;
    RC(kl_reg_thing_list(reg, NULL, NULL, NULL, &q, count_cb, &total, &err), KL_REG_INVALID);

    /* bulk import: all or nothing */
    char *d3 = device_pem(&ca, "dev3"), *d4 = device_pem(&ca, "dev4");
    json_t *l1 = json_pack("{s:s, s:s, s:s}", "thingName", "bulk-1", "certificatePem", d3,
                           "serialNumber", "ignored");
    json_t *l2 = json_pack("{s:s, s:s}", "thingName", "bulk-2", "certificatePem", d_unknown);
    json_t *l3 = json_pack("{s:s, s:s, s:s}", "thingName", "bulk-3", "certificatePem", d4,
                           "caCertificateId", ca_id);
    char *s1 = json_dumps(l1, JSON_COMPACT), *s2 = json_dumps(l2, JSON_COMPACT),
         *s3 = json_dumps(l3, JSON_COMPACT);
    size_t cap = strlen(s1) + strlen(s2) + strlen(s3) + 16;
    char *bad_file = malloc(cap), *good_file = malloc(cap);
    snprintf(bad_file, cap, "%s\n%s\n%s\n", s1, s2, s3);
    snprintf(good_file, cap, "%s\n\n%s\n", s1, s3);
    struct kl_reg_import_result res;
    RC(kl_reg_import(reg, bad_file, strlen(bad_file), NULL, &res, &err), KL_REG_CERT_INVALID);
    CHECK(res.first_failed_line == 2 && res.certs_registered == 0);
    RC(kl_reg_thing_get(reg, "bulk-1", &t, &err), KL_REG_NOT_FOUND);
    RC(kl_reg_import(reg, "{\"thingName\":1}\n", 16, NULL, &res, &err), KL_REG_INVALID);
    RC(kl_reg_import(reg, "", 0, NULL, &res, &err), KL_REG_INVALID);
    RC(kl_reg_import(reg, good_file, strlen(good_file), NULL, &res, &err), KL_REG_OK);
    CHECK(res.certs_registered == 2 && res.things_created == 2 && res.lines == 3);
    n = 0;
    pg = (struct kl_reg_page){.limit = 10};
    RC(kl_reg_thing_principals(reg, "bulk-3", &pg, str_count, &n, &err), KL_REG_OK);
    CHECK(n == 1);
    free(s1), free(s2), free(s3), free(bad_file), free(good_file);
    json_decref(l1), json_decref(l2), json_decref(l3);

    /* everything survives a reopen */
    kl_registry_close(reg);
    reg = NULL;
    RC(kl_registry_open(path, NULL, &reg, &err), KL_REG_OK);
    RC(kl_reg_registration_code(reg, code2, &err), KL_REG_OK);
    CHECK(!strcmp(code, code2));
    RC(kl_reg_thing_get(reg, "bulk-3", &t, &err), KL_REG_OK);
    kl_reg_thing_clear(&t);
    RC(kl_reg_cert_get(reg, id2, 0, &c, &err), KL_REG_OK);
    CHECK(!strcmp(c.status, "REVOKED"));
    CHECK(kl_registry_schema_version() >= 1);
    kl_registry_close(reg);

    free(v_ok), free(v_wrong_code), free(v_wrong_signer), free(dev_as_ca);
    free(d1), free(d2), free(d_other), free(d_unknown), free(d3), free(d4);
    free_ca(&ca), free_ca(&other), free_ca(&unknown);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd)) fails++;
    if (fails)
        fprintf(stderr, "%d failure(s)\n", fails);
    else
        printf("registry: all checks passed\n");
    return fails ? 1 : 0;
}
