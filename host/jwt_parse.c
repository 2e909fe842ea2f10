/* Compact JWS parsing (RFC 7515 section 7.1) and ES256 verification in the chip. The only
 * JSON read is the header's "alg" (kl_json_get_string walks the top-level object). */
#include <string.h>

#include "hcx.h"
#include "keylink/jwt.h"
#include "keylink/se.h"

static size_t ws(const uint8_t *j, size_t n, size_t i)
{
    while (i < n && (j[i] == ' ' || j[i] == '\t' || j[i] == '\n' || j[i] == '\r'))
        i++;
    return i;
}

/* Skips a JSON string starting at the quote j[i]; returns the index after it, 0 if bad. */
static size_t skip_str(const uint8_t *j, size_t n, size_t i, int *escaped)
{
    *escaped = 0;
    for (i++; i < n; i++) {
        if (j[i] == '\\') {
            *escaped = 1;
            if (++i >= n) return 0;
        } else if (j[i] == '"') {
            return i + 1;
        } else if (j[i] < 0x20) {
            return 0;
        }
    }
    return 0;
}

/* Skips any JSON value (strings, nested objects/arrays by depth, scalars); 0 if bad. */
static size_t skip_value(const uint8_t *j, size_t n, size_t i)
{
    int depth = 0, e;
    do {
        if (i >= n) return 0;
        uint8_t ch = j[i];
        if (ch == '"') {
            i = skip_str(j, n, i, &e);
            if (!i) return 0;
        } else if (ch == '{' || ch == '[') {
            if (++depth > 32) return 0;
            i++;
        } else if (ch == '}' || ch == ']') {
            if (--depth < 0) return 0;
            i++;
        } else if (depth == 0) {
            size_t st = i;
            while (i < n && j[i] != ',' && j[i] != '}' && j[i] != ']' && j[i] != ' ' &&
                   j[i] != '\n' && j[i] != '\r' && j[i] != '\t')
                i++;
            if (i == st) return 0;
        } else {
            i++;
        }
    } while (depth > 0);
    return i;
}

kl_status kl_json_get_string(const uint8_t *j, size_t n, const char *key, char *out, size_t cap)
{
    if (!j || !key || !out || !cap) return KL_E_ARG;
    size_t kl = strlen(key), i = ws(j, n, 0);
    int found = 0;
    kl_status res = KL_E_NOT_FOUND;
    if (i >= n || j[i] != '{') return KL_E_PEER;
    i = ws(j, n, i + 1);
    if (i < n && j[i] == '}') return ws(j, n, i + 1) == n ? KL_E_NOT_FOUND : KL_E_PEER;
    for (;;) {
        int e;
        if (i >= n || j[i] != '"') return KL_E_PEER;
        size_t ks = i + 1, ke = skip_str(j, n, i, &e);
        if (!ke) return KL_E_PEER;
        int match = !e && ke - 1 - ks == kl && !memcmp(j + ks, key, kl);
        i = ws(j, n, ke);
        if (i >= n || j[i] != ':') return KL_E_PEER;
        i = ws(j, n, i + 1);
        size_t vs = i, ve = skip_value(j, n, i);
        if (!ve) return KL_E_PEER;
        if (match) {
            if (found) return KL_E_PEER; /* duplicate member: refuse, never guess */
            found = 1;
            if (j[vs] != '"') {
                res = KL_E_WRONG_TYPE;
            } else {
                int esc;
                skip_str(j, n, vs, &esc);
                size_t len = ve - vs - 2;
                if (esc)
                    res = KL_E_UNSUPPORTED;
                else if (len + 1 > cap)
                    res = KL_E_BUFFER;
                else {
                    memcpy(out, j + vs + 1, len);
                    out[len] = 0;
                    res = KL_OK;
                }
            }
        }
        i = ws(j, n, ve);
        if (i < n && j[i] == ',') {
            i = ws(j, n, i + 1);
            continue;
        }
        if (i < n && j[i] == '}') return ws(j, n, i + 1) == n ? res : KL_E_PEER;
        return KL_E_PEER;
    }
}

kl_status kl_jws_parse(const char *jws, size_t n, uint8_t *buf, size_t cap,
                       struct kl_jws_parts *out)
{
    if (!jws || !buf || !out) return KL_E_ARG;
    memset(out, 0, sizeof *out);
    const char *d1 = memchr(jws, '.', n);
    if (!d1) return KL_E_PEER;
    const char *d2 = memchr(d1 + 1, '.', n - (size_t)(d1 + 1 - jws));
    if (!d2 || memchr(d2 + 1, '.', n - (size_t)(d2 + 1 - jws))) return KL_E_PEER;
    size_t hl = (size_t)(d1 - jws), pl = (size_t)(d2 - d1 - 1), sl = n - (size_t)(d2 + 1 - jws);
    if (hl == 0 || sl == 0) return KL_E_PEER;
    size_t hlen, plen, siglen;
    kl_status st = kl_base64url_decode(jws, hl, buf, cap, &hlen);
    if (st != KL_OK) return st;
    st = kl_base64url_decode(d1 + 1, pl, buf + hlen, cap - hlen, &plen);
    if (st != KL_OK) return st;
    uint8_t sig[66];
    if (sl > KL_B64URL_LEN(64)) return KL_E_PEER;
    st = kl_base64url_decode(d2 + 1, sl, sig, sizeof sig, &siglen);
    if (st != KL_OK || siglen != 64) return KL_E_PEER;
    char alg[16];
    st = kl_json_get_string(buf, hlen, "alg", alg, sizeof alg);
    if (st == KL_E_BUFFER || st == KL_E_UNSUPPORTED) return KL_E_UNSUPPORTED;
    if (st != KL_OK) return KL_E_PEER;
    if (strcmp(alg, "ES256")) return KL_E_UNSUPPORTED;
    out->signing_len = (size_t)(d2 - jws);
    out->header = buf;
    out->header_len = hlen;
    out->payload = buf + hlen;
    out->payload_len = plen;
    memcpy(out->sig, sig, 64);
    return KL_OK;
}

kl_status kl_jws_verify(struct kl_se *se, const char *jws, size_t n, const struct kl_jws_parts *p,
                        const uint8_t pub[64])
{
    if (!se || !jws || !p || !pub || p->signing_len == 0 || p->signing_len >= n) return KL_E_ARG;
    uint8_t digest[32];
    kl_hcx_sha256((const uint8_t *)jws, p->signing_len, digest);
    return kl_se_verify_with_key(se, pub, KL_SE_SIG_RAW, KL_SE_INPUT_DIGEST, p->sig, 64, digest,
                                 32);
}
