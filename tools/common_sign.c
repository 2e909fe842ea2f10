/* ECDSA P-256 over SHA-256 with a PEM private key, via OpenSSL, as raw r||s. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "common_sign.h"

static EVP_PKEY *load_p256(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "cannot open the key file %s\n", path);
        return NULL;
    }
    /* with no callback OpenSSL takes the last argument as the passphrase */
    const char *pass = getenv(KL_TOOL_KEY_PASS_ENV);
    EVP_PKEY *k = PEM_read_PrivateKey(f, NULL, NULL, (void *)(pass ? pass : ""));
    fclose(f);
    ERR_clear_error();
    if (!k) {
        fprintf(stderr, "%s holds no readable private key (encrypted? set %s)\n", path,
                KL_TOOL_KEY_PASS_ENV);
        return NULL;
    }
    char group[64] = "";
    size_t glen = 0;
    if (!EVP_PKEY_is_a(k, "EC") ||
        !EVP_PKEY_get_utf8_string_param(k, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof group,
                                        &glen) ||
        strcmp(group, "prime256v1")) {
        fprintf(stderr, "%s is not a P-256 (prime256v1) key\n", path);
        EVP_PKEY_free(k);
        return NULL;
    }
    return k;
}

int kl_tool_sign_sha256_pem(const char *path, const uint8_t *data, size_t len, uint8_t sig[64])
{
    EVP_PKEY *k = load_p256(path);
    if (!k) return -1;
    int rc = -1;
    uint8_t der[80];
    size_t dlen = sizeof der;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    ECDSA_SIG *es = NULL;
    if (md && EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, k) == 1 &&
        EVP_DigestSign(md, der, &dlen, data, len) == 1) {
        const uint8_t *p = der;
        es = d2i_ECDSA_SIG(NULL, &p, (long)dlen);
        const BIGNUM *r = NULL, *s = NULL;
        if (es) ECDSA_SIG_get0(es, &r, &s);
        if (r && s && BN_bn2binpad(r, sig, 32) == 32 && BN_bn2binpad(s, sig + 32, 32) == 32) rc = 0;
    }
    if (rc) fprintf(stderr, "signing with %s failed\n", path);
    ECDSA_SIG_free(es);
    EVP_MD_CTX_free(md);
    EVP_PKEY_free(k);
    return rc;
}
