/* HMAC-SHA-256 (RFC 2104) and HKDF-SHA-256 (RFC 5869). */
#include <string.h>

#include "hcx.h"

void kl_hcx_hmac_init(struct kl_hcx_hmac *h, const uint8_t *key, size_t klen)
{
    uint8_t k[KL_HCX_SHA256_BLOCK] = {0};
    uint8_t pad[KL_HCX_SHA256_BLOCK];
    if (klen > KL_HCX_SHA256_BLOCK)
        kl_hcx_sha256(key, klen, k);
    else if (klen)
        memcpy(k, key, klen);
    for (size_t i = 0; i < sizeof pad; i++)
        pad[i] = k[i] ^ 0x36;
    kl_hcx_sha256_init(&h->inner);
    kl_hcx_sha256_update(&h->inner, pad, sizeof pad);
    for (size_t i = 0; i < sizeof pad; i++)
        pad[i] = k[i] ^ 0x5c;
    kl_hcx_sha256_init(&h->outer);
    kl_hcx_sha256_update(&h->outer, pad, sizeof pad);
    kl_hcx_wipe(k, sizeof k);
    kl_hcx_wipe(pad, sizeof pad);
}

void kl_hcx_hmac_update(struct kl_hcx_hmac *h, const uint8_t *d, size_t n)
{
    kl_hcx_sha256_update(&h->inner, d, n);
}

void kl_hcx_hmac_final(struct kl_hcx_hmac *h, uint8_t out[KL_HCX_SHA256_LEN])
{
    uint8_t ih[KL_HCX_SHA256_LEN];
    kl_hcx_sha256_final(&h->inner, ih);
    kl_hcx_sha256_update(&h->outer, ih, sizeof ih);
    kl_hcx_sha256_final(&h->outer, out);
    kl_hcx_wipe(ih, sizeof ih);
    kl_hcx_wipe(h, sizeof *h);
}

void kl_hcx_hmac_sha256(const uint8_t *key, size_t klen, const uint8_t *d, size_t n,
                        uint8_t out[KL_HCX_SHA256_LEN])
{
    struct kl_hcx_hmac h;
    kl_hcx_hmac_init(&h, key, klen);
    kl_hcx_hmac_update(&h, d, n);
    kl_hcx_hmac_final(&h, out);
}

kl_status kl_hcx_hkdf_sha256(const uint8_t *salt, size_t salt_len, const uint8_t *ikm,
                             size_t ikm_len, const uint8_t *info, size_t info_len, uint8_t *out,
                             size_t out_len)
{
    static const uint8_t zero_salt[KL_HCX_SHA256_LEN];
    uint8_t prk[KL_HCX_SHA256_LEN], t[KL_HCX_SHA256_LEN];
    struct kl_hcx_hmac h;
    if (!out || out_len == 0 || out_len > 255u * KL_HCX_SHA256_LEN) return KL_E_ARG;
    if ((!ikm && ikm_len) || (!info && info_len) || (!salt && salt_len)) return KL_E_ARG;
    if (!salt_len) salt = zero_salt, salt_len = sizeof zero_salt;
    kl_hcx_hmac_sha256(salt, salt_len, ikm, ikm_len, prk); /* extract */
    size_t done = 0, tlen = 0;
    for (uint8_t i = 1; done < out_len; i++) {
        kl_hcx_hmac_init(&h, prk, sizeof prk);
        kl_hcx_hmac_update(&h, t, tlen);
        if (info_len) kl_hcx_hmac_update(&h, info, info_len);
        kl_hcx_hmac_update(&h, &i, 1);
        kl_hcx_hmac_final(&h, t);
        tlen = sizeof t;
        size_t take = out_len - done < tlen ? out_len - done : tlen;
        memcpy(out + done, t, take);
        done += take;
    }
    kl_hcx_wipe(prk, sizeof prk);
    kl_hcx_wipe(t, sizeof t);
    return KL_OK;
}
