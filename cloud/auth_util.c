/* Shared pieces of the JWT and challenge methods: base64url, compact JWS, ES256. */
#include <string.h>

#include <jansson.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>

#include "dataplane.h"

static int b64v(uint8_t c)
{
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '-') return 62;
    if (c == '_') return 63;
    return -1;
}

int kl_b64url_decode(const char *in, size_t n, uint8_t *out, size_t cap, size_t *outlen)
{
    if (n % 4 == 1) return -1;
    size_t o = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < n; i++) {
        int v = b64v((uint8_t)in[i]);
        if (v < 0) return -1;
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (o >= cap) return -1;
            out[o++] = (uint8_t)(acc >> bits);
        }
    }
    if (bits && (acc & ((1u << bits) - 1))) return -1; /* non-canonical trailing bits */
    *outlen = o;
    return 0;
}

void kl_b64url_encode(const uint8_t *in, size_t n, char *out, size_t cap)
{
    static const char al[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t o = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < n && o + 1 < cap; i++) {
        acc = (acc << 8) | in[i];
        bits += 8;
        while (bits >= 6 && o + 1 < cap) {
            bits -= 6;
            out[o++] = al[(acc >> bits) & 63];
        }
    }
    if (bits && o + 1 < cap) out[o++] = al[(acc << (6 - bits)) & 63];
    out[o] = 0;
}

int kl_es256_verify(EVP_PKEY *pub, const uint8_t *msg, size_t n, const uint8_t sig[64])
{
    if (!pub || EVP_PKEY_get_base_id(pub) != EVP_PKEY_EC || EVP_PKEY_get_bits(pub) != 256) return 0;
    ECDSA_SIG *s = ECDSA_SIG_new();
    BIGNUM *r = BN_bin2bn(sig, 32, NULL), *ss = BN_bin2bn(sig + 32, 32, NULL);
    uint8_t der[80], *dp = der;
    int ok = 0;
    if (s && r && ss && ECDSA_SIG_set0(s, r, ss)) {
        r = ss = NULL;
        int dl = i2d_ECDSA_SIG(s, NULL);
        if (dl > 0 && dl <= (int)sizeof der && i2d_ECDSA_SIG(s, &dp) == dl) {
            EVP_MD_CTX *md = EVP_MD_CTX_new();
            ok = md && EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, pub) == 1 &&
                 EVP_DigestVerify(md, der, (size_t)dl, msg, n) == 1;
            EVP_MD_CTX_free(md);
        }
    }
    BN_free(r);
    BN_free(ss);
    ECDSA_SIG_free(s);
    return ok;
}

static json_t *part_json(const uint8_t *p, size_t n)
{
    uint8_t buf[6144];
    size_t l;
    if (n > 8000 || kl_b64url_decode((const char *)p, n, buf, sizeof buf, &l)) return NULL;
    json_t *j = json_loadb((const char *)buf, l, JSON_REJECT_DUPLICATES, NULL);
    if (j && !json_is_object(j)) {
        json_decref(j);
        j = NULL;
    }
    return j;
}

int kl_jws_split(const uint8_t *tok, size_t len, json_t **hdr, json_t **claims, uint8_t sig[64],
                 size_t *signed_len)
{
    *hdr = *claims = NULL;
    const uint8_t *d1 = memchr(tok, '.', len);
    if (!d1) return -1;
    const uint8_t *d2 = memchr(d1 + 1, '.', len - (size_t)(d1 + 1 - tok));
    if (!d2 || memchr(d2 + 1, '.', len - (size_t)(d2 + 1 - tok))) return -1;
    *hdr = part_json(tok, (size_t)(d1 - tok));
    if (!*hdr) return -1;
    *claims = part_json(d1 + 1, (size_t)(d2 - d1 - 1));
    size_t sl = 0;
    uint8_t sb[80];
    if (!*claims ||
        kl_b64url_decode((const char *)d2 + 1, len - (size_t)(d2 + 1 - tok), sb, sizeof sb, &sl) ||
        sl != 64)
        return -2; /* header parsed: the caller can still report a wrong alg */
    memcpy(sig, sb, 64);
    *signed_len = (size_t)(d2 - tok);
    return 0;
}
