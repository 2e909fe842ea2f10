/* Streaming HMAC-SHA-256 and AES-CMAC (128/256-bit keys) over EVP_MAC. */
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include "cx.h"

/* Upper bound on HMAC key length accepted here; objects are smaller (docs/crypto.md). */
#define KL_CX_HMAC_KEY_MAX 1024

kl_status kl_cx_mac_init(struct kl_cx_mac *m, enum kl_cx_mac_alg alg, const uint8_t *key,
                         size_t klen)
{
    if (!m || !key) return KL_E_INTERNAL;
    m->ctx = NULL;
    OSSL_PARAM params[2];
    const char *name;
    if (alg == KL_CX_HMAC_SHA256) {
        if (klen < 1 || klen > KL_CX_HMAC_KEY_MAX) return KL_E_BAD_KEY;
        name = "HMAC";
        params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, "SHA256", 0);
    } else if (alg == KL_CX_AES_CMAC) {
        if (klen != 16 && klen != 32) return KL_E_BAD_KEY;
        name = "CMAC";
        params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_CIPHER,
                                                     klen == 16 ? "AES-128-CBC" : "AES-256-CBC", 0);
    } else {
        return KL_E_BAD_PARAM;
    }
    params[1] = OSSL_PARAM_construct_end();
    EVP_MAC *mac = EVP_MAC_fetch(NULL, name, NULL);
    if (!mac) return KL_E_INTERNAL;
    EVP_MAC_CTX *ctx = EVP_MAC_CTX_new(mac);
    EVP_MAC_free(mac);
    if (!ctx) return KL_E_INTERNAL;
    if (!EVP_MAC_init(ctx, key, klen, params)) {
        EVP_MAC_CTX_free(ctx);
        return KL_E_INTERNAL;
    }
    m->ctx = ctx;
    m->alg = alg;
    return KL_OK;
}

kl_status kl_cx_mac_update(struct kl_cx_mac *m, const uint8_t *d, size_t n)
{
    if (!m || !m->ctx || (n && !d)) return KL_E_INTERNAL;
    if (n && !EVP_MAC_update(m->ctx, d, n)) return KL_E_INTERNAL;
    return KL_OK;
}

kl_status kl_cx_mac_final(struct kl_cx_mac *m, uint8_t *tag, size_t cap, size_t *len)
{
    if (!m || !m->ctx || !tag || !len) return KL_E_INTERNAL;
    size_t want = m->alg == KL_CX_HMAC_SHA256 ? 32 : 16;
    kl_status st = KL_E_INTERNAL;
    size_t out = 0;
    if (cap < want)
        st = KL_E_BAD_LENGTH;
    else if (EVP_MAC_final(m->ctx, tag, &out, cap) && out == want)
        st = KL_OK;
    *len = st == KL_OK ? out : 0;
    kl_cx_mac_free(m);
    return st;
}

void kl_cx_mac_free(struct kl_cx_mac *m)
{
    if (!m) return;
    EVP_MAC_CTX_free(m->ctx); /* cleanses the keyed state */
    m->ctx = NULL;
}

kl_status kl_cx_hmac_sha256(const uint8_t *key, size_t klen, const uint8_t *d, size_t n,
                            uint8_t out[32])
{
    struct kl_cx_mac m;
    size_t len = 0;
    kl_status st = kl_cx_mac_init(&m, KL_CX_HMAC_SHA256, key, klen);
    if (st != KL_OK) return st;
    st = kl_cx_mac_update(&m, d, n);
    if (st != KL_OK) {
        kl_cx_mac_free(&m);
        return st;
    }
    return kl_cx_mac_final(&m, out, 32, &len);
}
