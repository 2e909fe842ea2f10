/*
 * SP 800-90A CTR_DRBG with AES-256 (derivation function on), one per chip. With no
 * parent, OpenSSL seeds and reseeds it from the operating system's entropy source.
 */
#include <stdlib.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include "cx.h"

struct kl_cx_drbg {
    EVP_RAND_CTX *ctx;
};

/* One EVP_RAND_generate call may ask for at most this much (OpenSSL's max_request). */
#define KL_DRBG_CHUNK 4096

kl_status kl_cx_drbg_new(const uint8_t *personalization, size_t plen, struct kl_cx_drbg **out)
{
    if (!out || (plen && !personalization)) return KL_E_INTERNAL;
    *out = NULL;
    struct kl_cx_drbg *d = calloc(1, sizeof(*d));
    if (!d) return KL_E_INTERNAL;
    EVP_RAND *rand = EVP_RAND_fetch(NULL, "CTR-DRBG", NULL);
    if (!rand) goto fail;
    d->ctx = EVP_RAND_CTX_new(rand, NULL);
    EVP_RAND_free(rand);
    if (!d->ctx) goto fail;
    OSSL_PARAM params[2];
    params[0] = OSSL_PARAM_construct_utf8_string(OSSL_DRBG_PARAM_CIPHER, "AES-256-CTR", 0);
    params[1] = OSSL_PARAM_construct_end();
    if (!EVP_RAND_instantiate(d->ctx, 256, 0, personalization, plen, params)) goto fail;
    /* The daemon may call from more than one thread. */
    if (!EVP_RAND_enable_locking(d->ctx)) goto fail;
    *out = d;
    return KL_OK;
fail:
    kl_cx_drbg_free(d);
    return KL_E_INTERNAL;
}

kl_status kl_cx_drbg_generate(struct kl_cx_drbg *d, uint8_t *out, size_t n)
{
    if (!d || !d->ctx || (n && !out)) return KL_E_INTERNAL;
    while (n) {
        size_t k = n < KL_DRBG_CHUNK ? n : KL_DRBG_CHUNK;
        if (!EVP_RAND_generate(d->ctx, out, k, 256, 0, NULL, 0)) return KL_E_INTERNAL;
        out += k;
        n -= k;
    }
    return KL_OK;
}

void kl_cx_drbg_free(struct kl_cx_drbg *d)
{
    if (!d) return;
    if (d->ctx) {
        EVP_RAND_uninstantiate(d->ctx);
        EVP_RAND_CTX_free(d->ctx);
    }
    free(d);
}
