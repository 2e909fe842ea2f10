/* Path validation of a certificate up to trusted CAs, by OpenSSL's verifier. */
#include <openssl/err.h>
#include <openssl/x509_vfy.h>

#include "pki_int.h"

kl_status kl_pki_verify_chain(X509 *leaf, X509 *const *trusted, size_t ntrusted,
                              X509 *const *untrusted, size_t nuntrusted, time_t at)
{
    if (!leaf || (!trusted && ntrusted) || (!untrusted && nuntrusted) || !ntrusted)
        return kl_pki_fail(KL_E_ARG, "no certificate or no trusted CA given");
    kl_status st = KL_E_INTERNAL;
    X509_STORE *store = X509_STORE_new();
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    STACK_OF(X509) *chain = sk_X509_new_null();
    if (!store || !ctx || !chain) {
        st = kl_pki_fail(KL_E_INTERNAL, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < ntrusted; i++)
        if (!trusted[i] || !X509_STORE_add_cert(store, trusted[i])) {
            st = kl_pki_fail_ssl(KL_E_ARG, "bad trusted certificate");
            goto done;
        }
    for (size_t i = 0; i < nuntrusted; i++)
        if (!untrusted[i] || !sk_X509_push(chain, untrusted[i])) {
            st = kl_pki_fail(KL_E_ARG, "bad intermediate certificate");
            goto done;
        }
    if (!X509_STORE_CTX_init(ctx, store, leaf, chain)) {
        st = kl_pki_fail_ssl(KL_E_INTERNAL, "cannot set up verification");
        goto done;
    }
    /* A registered CA may itself be an intermediate: trust stops at any trusted cert. */
    X509_VERIFY_PARAM *vp = X509_STORE_CTX_get0_param(ctx);
    X509_VERIFY_PARAM_set_flags(vp, X509_V_FLAG_PARTIAL_CHAIN);
    if (at) X509_VERIFY_PARAM_set_time(vp, at);
    if (X509_verify_cert(ctx) == 1) {
        st = KL_OK;
    } else {
        int e = X509_STORE_CTX_get_error(ctx);
        int expired = e == X509_V_ERR_CERT_HAS_EXPIRED || e == X509_V_ERR_CERT_NOT_YET_VALID;
        st = kl_pki_fail(expired ? KL_E_EXPIRED : KL_E_VERIFY_FAILED,
                         "certificate chain does not verify: %s (depth %d)",
                         X509_verify_cert_error_string(e), X509_STORE_CTX_get_error_depth(ctx));
    }
    ERR_clear_error();
done:
    sk_X509_free(chain); /* the certificates stay the caller's */
    X509_STORE_CTX_free(ctx);
    X509_STORE_free(store);
    return st;
}
