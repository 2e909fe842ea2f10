/* Streaming SHA-256 over EVP_MD_CTX; peek copies the context so hashing can go on. */
#include <openssl/evp.h>

#include "cx.h"

kl_status kl_cx_sha256_init(struct kl_cx_sha256 *h)
{
    if (!h) return KL_E_INTERNAL;
    EVP_MD_CTX *m = EVP_MD_CTX_new();
    if (!m) return KL_E_INTERNAL;
    if (!EVP_DigestInit_ex(m, EVP_sha256(), NULL)) {
        EVP_MD_CTX_free(m);
        return KL_E_INTERNAL;
    }
    h->md = m;
    return KL_OK;
}

kl_status kl_cx_sha256_update(struct kl_cx_sha256 *h, const uint8_t *d, size_t n)
{
    if (!h || !h->md || (n && !d)) return KL_E_INTERNAL;
    if (n && !EVP_DigestUpdate(h->md, d, n)) return KL_E_INTERNAL;
    return KL_OK;
}

kl_status kl_cx_sha256_peek(const struct kl_cx_sha256 *h, uint8_t out[KL_CX_SHA256_LEN])
{
    if (!h || !h->md || !out) return KL_E_INTERNAL;
    EVP_MD_CTX *t = EVP_MD_CTX_new();
    unsigned int len = 0;
    kl_status st = KL_E_INTERNAL;
    if (t && EVP_MD_CTX_copy_ex(t, h->md) && EVP_DigestFinal_ex(t, out, &len) &&
        len == KL_CX_SHA256_LEN)
        st = KL_OK;
    EVP_MD_CTX_free(t);
    return st;
}

kl_status kl_cx_sha256_final(struct kl_cx_sha256 *h, uint8_t out[KL_CX_SHA256_LEN])
{
    if (!h || !h->md || !out) return KL_E_INTERNAL;
    unsigned int len = 0;
    kl_status st = KL_E_INTERNAL;
    if (EVP_DigestFinal_ex(h->md, out, &len) && len == KL_CX_SHA256_LEN) st = KL_OK;
    kl_cx_sha256_free(h);
    return st;
}

void kl_cx_sha256_free(struct kl_cx_sha256 *h)
{
    if (!h) return;
    EVP_MD_CTX_free(h->md); /* also cleanses the state */
    h->md = NULL;
}

kl_status kl_cx_sha256(const uint8_t *d, size_t n, uint8_t out[KL_CX_SHA256_LEN])
{
    if ((n && !d) || !out) return KL_E_INTERNAL;
    unsigned int len = 0;
    if (!EVP_Digest(n ? d : (const uint8_t *)"", n, out, &len, EVP_sha256(), NULL) ||
        len != KL_CX_SHA256_LEN)
        return KL_E_INTERNAL;
    return KL_OK;
}
