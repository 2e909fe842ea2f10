/* The app note's challenge as MQTT 5 enhanced authentication (keylink-es256-challenge): the
 * device answers the server's 32-byte nonce with an ES256 JWS whose x5c header carries its
 * certificate and whose claims carry the nonce (base64url), aud and iat. docs/auth.md. */
#include <string.h>

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "dataplane.h"

/* Standard base64 (x5c uses it, RFC 7515 4.1.6) into DER, then X509. */
static X509 *x5c_cert(json_t *hdr)
{
    const char *b = json_string_value(json_array_get(json_object_get(hdr, "x5c"), 0));
    if (!b) return NULL;
    size_t n = strlen(b);
    if (n == 0 || n % 4 || n > 8192) return NULL;
    unsigned char der[6144];
    int l = EVP_DecodeBlock(der, (const unsigned char *)b, (int)n);
    if (l < 0) return NULL;
    if (b[n - 1] == '=') l--;
    if (n > 1 && b[n - 2] == '=') l--;
    const unsigned char *p = der;
    X509 *x = d2i_X509(NULL, &p, l);
    if (x && p != der + l) {
        X509_free(x);
        x = NULL;
    }
    return x;
}

enum kl_auth_fail kl_auth_challenge(struct kl_dp *dp, const uint8_t nonce[32], const uint8_t *jws,
                                    size_t len, struct kl_principal **out)
{
    *out = NULL;
    if (!jws || len < 5 || len > 12000) return KL_AF_CHALLENGE_MALFORMED;
    json_t *hdr, *claims;
    uint8_t sig[64];
    size_t signed_len = 0;
    enum kl_auth_fail f = KL_AF_OK;
    X509 *x = NULL;
    struct kl_principal *p = NULL;
    const char *alg;
    if (kl_jws_split(jws, len, &hdr, &claims, sig, &signed_len) ||
        !(alg = json_string_value(json_object_get(hdr, "alg"))) || strcmp(alg, "ES256") ||
        !(x = x5c_cert(hdr)))
        f = KL_AF_CHALLENGE_MALFORMED;
    if (!f) f = kl_auth_certificate(dp, x, 1, &p);
    if (!f && !kl_es256_verify(X509_get0_pubkey(x), jws, signed_len, sig))
        f = KL_AF_CHALLENGE_SIGNATURE;
    if (!f) {
        const char *nc = json_string_value(json_object_get(claims, "nonce"));
        uint8_t got[40];
        size_t gl = 0;
        if (!nc || kl_b64url_decode(nc, strlen(nc), got, sizeof got, &gl) || gl != 32 ||
            CRYPTO_memcmp(got, nonce, 32))
            f = KL_AF_CHALLENGE_NONCE;
    }
    if (!f) {
        const char *aud = json_string_value(json_object_get(claims, "aud"));
        json_t *iv = json_object_get(claims, "iat");
        int64_t now = kl_dp_wall(), iat = json_is_integer(iv) ? json_integer_value(iv) : 0;
        if (!aud || strcmp(aud, dp->audience))
            f = KL_AF_JWT_AUD;
        else if (!json_is_integer(iv))
            f = KL_AF_CHALLENGE_MALFORMED;
        else if (iat > now + KL_DP_JWT_SKEW)
            f = KL_AF_JWT_IAT_FUTURE;
        else if (iat < now - KL_DP_JWT_SKEW)
            f = KL_AF_JWT_EXPIRED;
    }
    json_decref(hdr);
    json_decref(claims);
    X509_free(x);
    if (f) {
        kl_principal_unref(p);
        return f;
    }
    *out = p;
    return KL_AF_OK;
}
