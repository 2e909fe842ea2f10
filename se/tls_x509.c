/* Certificate checks of the chip's TLS offload: root import and peer chain
 * verification, with OpenSSL's path validation at a host-supplied time. */
#include <string.h>

#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/obj_mac.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

#include "cx.h"
#include "tls_int.h"

/* One whole DER certificate, nothing after it. */
static X509 *parse(const uint8_t *der, size_t n)
{
    if (!der || n == 0 || n > KL_TLS_CERT_MAX) return NULL;
    const unsigned char *p = der;
    X509 *x = d2i_X509(NULL, &p, (long)n);
    if (x && p != der + n) {
        X509_free(x);
        return NULL;
    }
    return x;
}

/* The certificate's key as X||Y if it is an EC P-256 key, else KL_E_BAD_KEY. */
static kl_status p256_key(X509 *x, uint8_t pub[64])
{
    EVP_PKEY *k = X509_get0_pubkey(x);
    if (!k || EVP_PKEY_get_base_id(k) != EVP_PKEY_EC) return KL_E_BAD_KEY;
    char grp[32] = {0};
    size_t gl = 0;
    if (!EVP_PKEY_get_utf8_string_param(k, "group", grp, sizeof grp, &gl)) return KL_E_BAD_KEY;
    if (strcmp(grp, "prime256v1") && strcmp(grp, "P-256")) return KL_E_BAD_KEY;
    unsigned char *spki = NULL;
    int sl = i2d_PUBKEY(k, &spki);
    if (sl <= 0) return KL_E_BAD_KEY;
    uint8_t tmp[64];
    kl_status st = kl_cx_ec_decode_spki(spki, (size_t)sl, tmp);
    OPENSSL_free(spki);
    if (st == KL_OK && pub) memcpy(pub, tmp, 64);
    return st;
}

kl_status kl_tls_check_root(const uint8_t *der, size_t n)
{
    X509 *x = parse(der, n);
    if (!x) return KL_E_BAD_KEY;
    kl_status st = KL_E_BAD_KEY;
    if (X509_get_version(x) != 2 || p256_key(x, NULL) != KL_OK) goto out;
    /* a trust anchor must be a CA (basicConstraints cA) */
    if (X509_check_ca(x) < 1) goto out;
    st = X509_verify(x, X509_get0_pubkey(x)) == 1 ? KL_OK : KL_E_VERIFY_FAILED;
out:
    X509_free(x);
    return st;
}

kl_status kl_tls_verify_chain(const uint8_t *root, size_t root_len, const uint8_t *const *certs,
                              const size_t *lens, size_t n, uint64_t t, uint8_t pub[64])
{
    if (n == 0 || n > KL_TLS_CHAIN_MAX) return KL_E_BAD_PARAM;
    kl_status st = KL_E_INTERNAL;
    X509 *anchor = parse(root, root_len);
    X509 *x[KL_TLS_CHAIN_MAX] = {0};
    STACK_OF(X509) *mid = sk_X509_new_null();
    X509_STORE *store = X509_STORE_new();
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    if (!mid || !store || !ctx) goto out;
    if (!anchor) {
        st = KL_E_BAD_KEY; /* the stored root does not parse */
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        x[i] = parse(certs[i], lens[i]);
        /* the chip computes P-256 only: every key of the path must be one */
        if (!x[i] || p256_key(x[i], NULL) != KL_OK) {
            st = KL_E_BAD_KEY;
            goto out;
        }
        if (i && !sk_X509_push(mid, x[i])) goto out;
    }
    if (!X509_STORE_add_cert(store, anchor)) goto out;
    if (!X509_STORE_CTX_init(ctx, store, x[0], mid)) goto out;
    X509_VERIFY_PARAM *vp = X509_STORE_CTX_get0_param(ctx);
    X509_VERIFY_PARAM_set_time(vp, (time_t)t);
    /* the stored certificate is the trust anchor even when it is not self-signed */
    X509_VERIFY_PARAM_set_flags(vp, X509_V_FLAG_PARTIAL_CHAIN);
    X509_STORE_CTX_set_purpose(ctx, X509_PURPOSE_SSL_SERVER);
    if (X509_verify_cert(ctx) == 1) {
        st = p256_key(x[0], pub);
    } else {
        int e = X509_STORE_CTX_get_error(ctx);
        st = (e == X509_V_ERR_CERT_HAS_EXPIRED || e == X509_V_ERR_CERT_NOT_YET_VALID)
                 ? KL_E_EXPIRED
                 : KL_E_VERIFY_FAILED;
    }
out:
    X509_STORE_CTX_free(ctx);
    X509_STORE_free(store);
    sk_X509_free(mid);
    for (size_t i = 0; i < KL_TLS_CHAIN_MAX; i++)
        X509_free(x[i]);
    X509_free(anchor);
    return st;
}
