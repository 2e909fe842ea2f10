/* Certificate authentication shared by mTLS and the challenge: the registry state checks,
 * the chain check for certificates the registry does not know, and auto-registration. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dataplane.h"
#include "x509_check.h"

const char *kl_auth_fail_name(enum kl_auth_fail f)
{
    static const char *const n[KL_AF_COUNT] = {
        [KL_AF_OK] = "ok",
        [KL_AF_NO_CREDENTIALS] = "no_credentials",
        [KL_AF_CA_UNKNOWN] = "ca_not_registered",
        [KL_AF_CA_INACTIVE] = "ca_inactive",
        [KL_AF_CERT_UNKNOWN] = "certificate_not_registered",
        [KL_AF_CERT_INACTIVE] = "certificate_inactive",
        [KL_AF_CERT_REVOKED] = "certificate_revoked",
        [KL_AF_CERT_PENDING] = "certificate_pending_activation",
        [KL_AF_CERT_NOT_ATTACHED] = "certificate_not_attached",
        [KL_AF_CERT_EXPIRED] = "certificate_expired",
        [KL_AF_CERT_BAD_SIGNATURE] = "certificate_bad_signature",
        [KL_AF_CLIENT_ID_DENIED] = "not_allowed_by_policy",
        [KL_AF_CHALLENGE_SIGNATURE] = "challenge_bad_signature",
        [KL_AF_CHALLENGE_NONCE] = "challenge_wrong_or_used_nonce",
        [KL_AF_CHALLENGE_MALFORMED] = "challenge_malformed",
        [KL_AF_AUTH_METHOD] = "bad_auth_method",
        [KL_AF_JWT_ALG] = "jwt_alg_not_es256",
        [KL_AF_JWT_MALFORMED] = "jwt_malformed",
        [KL_AF_JWT_EXPIRED] = "jwt_expired",
        [KL_AF_JWT_IAT_FUTURE] = "jwt_iat_in_future",
        [KL_AF_JWT_AUD] = "jwt_wrong_audience",
        [KL_AF_JWT_LIFETIME] = "jwt_lifetime_over_24h",
        [KL_AF_JWT_SIGNATURE] = "jwt_bad_signature",
        [KL_AF_JWT_THING] = "jwt_unknown_thing",
        [KL_AF_INTERNAL] = "internal_error",
    };
    return f < KL_AF_COUNT && n[f] ? n[f] : "unknown";
}

enum kl_auth_fail kl_auth_check_principal(struct kl_dp *dp, const struct kl_principal *p)
{
    if (!p) return KL_AF_CERT_UNKNOWN;
    if (!strcmp(p->status, "REVOKED")) return KL_AF_CERT_REVOKED;
    if (!strcmp(p->status, "INACTIVE")) return KL_AF_CERT_INACTIVE;
    if (!strcmp(p->status, "PENDING_ACTIVATION")) return KL_AF_CERT_PENDING;
    if (strcmp(p->status, "ACTIVE")) return KL_AF_CERT_INACTIVE;
    int ca = kl_auth_ca_state(dp, p->ca_id);
    if (ca < 0) return KL_AF_CA_UNKNOWN;
    if (!ca) return KL_AF_CA_INACTIVE;
    int64_t now = kl_dp_wall();
    if (now < p->not_before || now > p->not_after) return KL_AF_CERT_EXPIRED;
    if (!p->nthings) return KL_AF_CERT_NOT_ATTACHED;
    return KL_AF_OK;
}

static void auto_register(struct kl_dp *dp, X509 *x, const char *ca_id)
{
    char *pem = kl_x509_to_pem(x);
    struct kl_reg_cert out;
    struct kl_reg_err err;
    if (!pem) return;
    kl_reg_rc rc = kl_reg_cert_register(dp->reg, pem, NULL, "PENDING_ACTIVATION", &out, &err);
    free(pem);
    if (rc == KL_REG_OK) {
        kl_dp_log("auto-registered certificate %s of CA %.16s as PENDING_ACTIVATION", out.id,
                  ca_id);
        kl_event_cert_registered(dp, out.id, ca_id);
        kl_reg_cert_clear(&out);
    } else if (rc != KL_REG_EXISTS) {
        kl_dp_log("auto-registration failed: %s", err.msg);
    }
}

enum kl_auth_fail kl_auth_certificate(struct kl_dp *dp, X509 *x, int check_chain,
                                      struct kl_principal **out)
{
    *out = NULL;
    struct kl_principal *p = kl_auth_principal_x509(dp, x);
    if (p) {
        /* registered: its chain was verified at registration; state, CA and dates now */
        enum kl_auth_fail f = kl_auth_check_principal(dp, p);
        if (f == KL_AF_CERT_NOT_ATTACHED) f = KL_AF_OK; /* judged at CONNECT (policy vars) */
        if (f) {
            kl_principal_unref(p);
            return f;
        }
        *out = p;
        return KL_AF_OK;
    }
    if (!check_chain) return KL_AF_CERT_UNKNOWN;
    /* unknown certificate: say why as precisely as the registry allows */
    char ca_id[KL_REG_ID_HEX];
    int active = 0, auto_reg = 0;
    if (kl_auth_find_issuer(dp, x, ca_id, &active, &auto_reg)) return KL_AF_CA_UNKNOWN;
    if (!active) return KL_AF_CA_INACTIVE;
    int64_t nb, na, now = kl_dp_wall();
    if (kl_x509_validity(x, &nb, &na) || now < nb || now > na) return KL_AF_CERT_EXPIRED;
    if (auto_reg) {
        auto_register(dp, x, ca_id);
        return KL_AF_CERT_PENDING;
    }
    return KL_AF_CERT_UNKNOWN;
}
