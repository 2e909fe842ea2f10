/* P-256 key generation and the raw X||Y form the chip speaks. */
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/param_build.h>

#include "pki_int.h"

int kl_pki_is_p256(EVP_PKEY *key)
{
    char group[64];
    size_t glen = 0;
    if (!key || EVP_PKEY_get_base_id(key) != EVP_PKEY_EC) return 0;
    if (!EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof group,
                                        &glen))
        return 0;
    return !strcmp(group, "prime256v1") || !strcmp(group, "P-256");
}

kl_status kl_pki_keygen_p256(EVP_PKEY **out)
{
    if (!out) return kl_pki_fail(KL_E_ARG, "no output for the key");
    EVP_PKEY *k = EVP_EC_gen("P-256");
    if (!k) return kl_pki_fail_ssl(KL_E_INTERNAL, "P-256 key generation failed");
    *out = k;
    return KL_OK;
}

kl_status kl_pki_pubkey_from_raw(const uint8_t xy[KL_PKI_RAW_PUB_LEN], EVP_PKEY **out)
{
    if (!xy || !out) return kl_pki_fail(KL_E_ARG, "no public key given");
    uint8_t point[1 + KL_PKI_RAW_PUB_LEN];
    point[0] = 0x04; /* uncompressed SEC1 point */
    memcpy(point + 1, xy, KL_PKI_RAW_PUB_LEN);

    kl_status st = KL_E_INTERNAL;
    EVP_PKEY *k = NULL;
    EVP_PKEY_CTX *cx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, (char *)"prime256v1", 0),
        OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, point, sizeof point),
        OSSL_PARAM_construct_end(),
    };
    if (!cx || EVP_PKEY_fromdata_init(cx) <= 0) {
        st = kl_pki_fail_ssl(KL_E_INTERNAL, "cannot set up an EC key");
        goto done;
    }
    if (EVP_PKEY_fromdata(cx, &k, EVP_PKEY_PUBLIC_KEY, params) <= 0) {
        st = kl_pki_fail_ssl(KL_E_BAD_KEY, "public key is not a valid P-256 point");
        goto done;
    }
    /* fromdata decodes the point; the explicit check also rejects anything off the curve. */
    EVP_PKEY_CTX *chk = EVP_PKEY_CTX_new_from_pkey(NULL, k, NULL);
    int ok = chk && EVP_PKEY_public_check(chk) == 1;
    EVP_PKEY_CTX_free(chk);
    if (!ok) {
        st = kl_pki_fail_ssl(KL_E_BAD_KEY, "public key is not a valid P-256 point");
        EVP_PKEY_free(k);
        goto done;
    }
    *out = k;
    st = KL_OK;
done:
    EVP_PKEY_CTX_free(cx);
    return st;
}

kl_status kl_pki_pubkey_to_raw(EVP_PKEY *key, uint8_t xy[KL_PKI_RAW_PUB_LEN])
{
    if (!key || !xy) return kl_pki_fail(KL_E_ARG, "no key given");
    if (!kl_pki_is_p256(key)) return kl_pki_fail(KL_E_UNSUPPORTED, "key is not EC P-256");
    uint8_t point[1 + KL_PKI_RAW_PUB_LEN + 8];
    size_t len = 0;
    if (!EVP_PKEY_get_octet_string_param(key, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, point,
                                         sizeof point, &len))
        return kl_pki_fail_ssl(KL_E_INTERNAL, "cannot read the public point");
    if (len != sizeof point - 8 || point[0] != 0x04)
        return kl_pki_fail(KL_E_UNSUPPORTED, "public point is not in uncompressed form");
    memcpy(xy, point + 1, KL_PKI_RAW_PUB_LEN);
    return KL_OK;
}

kl_status kl_pki_cert_pubkey_raw(X509 *cert, uint8_t xy[KL_PKI_RAW_PUB_LEN])
{
    if (!cert || !xy) return kl_pki_fail(KL_E_ARG, "no certificate given");
    EVP_PKEY *pk = X509_get0_pubkey(cert);
    if (!pk) return kl_pki_fail(KL_E_UNSUPPORTED, "certificate has no readable public key");
    return kl_pki_pubkey_to_raw(pk, xy);
}
