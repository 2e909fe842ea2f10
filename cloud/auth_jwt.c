/* JWT as the MQTT password (the Google Cloud IoT Core way): ES256 only; iat/exp with
 * exp - iat <= 24 h and 10 minutes of clock skew; aud = the endpoint's audience; the key is
 * the public key of a registered certificate of the thing named by the client id. */
#include <string.h>

#include <jansson.h>

#include "dataplane.h"

struct ids {
    char id[8][KL_REG_ID_HEX];
    int n;
    struct kl_registry *reg;
};

static int principal_cb(void *ctx, const char *arn)
{
    struct ids *l = ctx;
    if (l->n < 8 && !kl_reg_principal_cert_id(l->reg, arn, l->id[l->n])) l->n++;
    return 0;
}

/* A NumericDate claim: a number of seconds in [0, 2^40) (years 1970..36812); anything else
 * (negative, huge, NaN) is refused before any arithmetic on it. */
static int get_time(json_t *claims, const char *k, int64_t *out)
{
    json_t *v = json_object_get(claims, k);
    const double max = (double)(1ll << 40);
    if (json_is_integer(v)) {
        json_int_t i = json_integer_value(v);
        if (i < 0 || i >= (json_int_t)(1ll << 40)) return -1;
        *out = (int64_t)i;
    } else if (json_is_real(v)) {
        double d = json_real_value(v);
        if (!(d >= 0 && d < max)) return -1; /* also NaN */
        *out = (int64_t)d;
    } else {
        return -1;
    }
    return 0;
}

/* 1 when aud (a string or an array of strings) names want. */
static int aud_ok(json_t *aud, const char *want)
{
    if (json_is_string(aud)) return !strcmp(json_string_value(aud), want);
    size_t i;
    json_t *v;
    json_array_foreach(aud, i,
                       v) if (json_is_string(v) && !strcmp(json_string_value(v), want)) return 1;
    return 0;
}

enum kl_auth_fail kl_auth_jwt(struct kl_dp *dp, const char *client_id, const uint8_t *tok,
                              size_t len, struct kl_principal **out)
{
    *out = NULL;
    if (len < 5 || len > 8192) return KL_AF_JWT_MALFORMED;
    json_t *hdr, *claims;
    uint8_t sig[64];
    size_t signed_len = 0;
    int r = kl_jws_split(tok, len, &hdr, &claims, sig, &signed_len);
    enum kl_auth_fail f = KL_AF_OK;
    const char *alg = hdr ? json_string_value(json_object_get(hdr, "alg")) : NULL;
    if (!hdr)
        f = KL_AF_JWT_MALFORMED;
    else if (!alg || strcmp(alg, "ES256")) /* none, HS256, RS256, ...: all refused */
        f = KL_AF_JWT_ALG;
    else if (r)
        f = KL_AF_JWT_MALFORMED;
    int64_t iat = 0, exp = 0;
    if (!f && (get_time(claims, "iat", &iat) || get_time(claims, "exp", &exp) || exp <= iat))
        f = KL_AF_JWT_MALFORMED;
    struct kl_principal *match = NULL;
    if (!f) {
        /* the signature first: nothing the token claims counts before it verifies */
        struct ids l = {.reg = dp->reg};
        struct kl_reg_page page = {.limit = 250};
        struct kl_reg_err err;
        if (!kl_reg_thing_name_ok(client_id) ||
            kl_reg_thing_principals(dp->reg, client_id, &page, principal_cb, &l, &err))
            f = KL_AF_JWT_THING;
        for (int i = 0; !f && i < l.n && !match; i++) {
            struct kl_principal *p = kl_auth_principal(dp, l.id[i]);
            if (p && p->pub && kl_es256_verify(p->pub, tok, signed_len, sig))
                match = p;
            else
                kl_principal_unref(p);
        }
        if (!f && !match) f = l.n ? KL_AF_JWT_SIGNATURE : KL_AF_CERT_NOT_ATTACHED;
    }
    if (!f) {
        int64_t now = kl_dp_wall();
        if (iat > now + KL_DP_JWT_SKEW)
            f = KL_AF_JWT_IAT_FUTURE;
        else if (exp < now - KL_DP_JWT_SKEW)
            f = KL_AF_JWT_EXPIRED;
        else if ((uint64_t)exp - (uint64_t)iat > KL_DP_JWT_LIFETIME) /* exp > iat here */
            f = KL_AF_JWT_LIFETIME;
        else if (!aud_ok(json_object_get(claims, "aud"), dp->audience))
            f = KL_AF_JWT_AUD;
    }
    json_decref(hdr);
    json_decref(claims);
    if (f) {
        kl_principal_unref(match);
        return f;
    }
    *out = match;
    return KL_AF_OK;
}
