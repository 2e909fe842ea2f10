/* A compact JWS (JWT) signed by the chip: the JSON of header and claims is produced piece
 * by piece straight into a base64url stream in the caller's buffer, so no JSON buffer is
 * needed; then SHA-256 over "header.claims" on the host and SIGN (raw r||s) in the chip. */
#include <string.h>

#include "hcx.h"
#include "keylink/jwt.h"
#include "keylink/se.h"

static const char url_alpha[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
static const char std_alpha[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* base64url output stream into out[0..cap) */
struct b64s {
    char *out;
    size_t cap, pos;
    uint8_t grp[3];
    int n, over;
};

static void emit(struct b64s *s, char ch)
{
    if (s->pos + 1 >= s->cap) { /* keep room for the NUL */
        s->over = 1;
        return;
    }
    s->out[s->pos++] = ch;
}

static void put(struct b64s *s, const void *p, size_t n)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++) {
        s->grp[s->n++] = b[i];
        if (s->n == 3) {
            uint32_t v = ((uint32_t)s->grp[0] << 16) | ((uint32_t)s->grp[1] << 8) | s->grp[2];
            emit(s, url_alpha[v >> 18]);
            emit(s, url_alpha[(v >> 12) & 63]);
            emit(s, url_alpha[(v >> 6) & 63]);
            emit(s, url_alpha[v & 63]);
            s->n = 0;
        }
    }
}

static void flush(struct b64s *s)
{
    if (!s->n) return;
    uint32_t v = (uint32_t)s->grp[0] << 16;
    if (s->n == 2) v |= (uint32_t)s->grp[1] << 8;
    emit(s, url_alpha[v >> 18]);
    emit(s, url_alpha[(v >> 12) & 63]);
    if (s->n == 2) emit(s, url_alpha[(v >> 6) & 63]);
    s->n = 0;
}

static void puts_(struct b64s *s, const char *t)
{
    put(s, t, strlen(t));
}

/* A JSON string with the escapes RFC 8259 requires. */
static void put_json_str(struct b64s *s, const char *t)
{
    static const char hex[] = "0123456789abcdef";
    put(s, "\"", 1);
    for (; *t; t++) {
        unsigned char ch = (unsigned char)*t;
        if (ch == '"' || ch == '\\') {
            char e[2] = {'\\', (char)ch};
            put(s, e, 2);
        } else if (ch < 0x20) {
            char e[6] = {'\\', 'u', '0', '0', hex[ch >> 4], hex[ch & 15]};
            put(s, e, 6);
        } else {
            put(s, &ch, 1);
        }
    }
    put(s, "\"", 1);
}

static void put_int(struct b64s *s, int64_t v)
{
    char d[24];
    size_t n = 0;
    uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    do {
        d[n++] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0) put(s, "-", 1);
    while (n)
        put(s, &d[--n], 1);
}

/* "key": as a JSON member, with a comma before all but the first. */
static void member(struct b64s *s, int *first, const char *key)
{
    if (!*first) put(s, ",", 1);
    *first = 0;
    put_json_str(s, key);
    put(s, ":", 1);
}

/* Standard base64 of der, fed into the base64url stream (x5c inside the header). */
static void put_b64_std(struct b64s *s, const uint8_t *der, size_t n)
{
    size_t i = 0;
    for (; i + 3 <= n; i += 3) {
        uint32_t v = ((uint32_t)der[i] << 16) | ((uint32_t)der[i + 1] << 8) | der[i + 2];
        char q[4] = {std_alpha[v >> 18], std_alpha[(v >> 12) & 63], std_alpha[(v >> 6) & 63],
                     std_alpha[v & 63]};
        put(s, q, 4);
    }
    if (n - i) {
        uint32_t v = (uint32_t)der[i] << 16;
        if (n - i == 2) v |= (uint32_t)der[i + 1] << 8;
        char q[4] = {std_alpha[v >> 18], std_alpha[(v >> 12) & 63],
                     n - i == 2 ? std_alpha[(v >> 6) & 63] : '=', '='};
        put(s, q, 4);
    }
}

/* base64url of bytes (the nonce), as a JSON string. */
static void put_b64url_str(struct b64s *s, const uint8_t *p, size_t n)
{
    put(s, "\"", 1);
    size_t i = 0;
    for (; i < n; i += 3) {
        size_t k = n - i < 3 ? n - i : 3;
        uint32_t v = (uint32_t)p[i] << 16;
        if (k > 1) v |= (uint32_t)p[i + 1] << 8;
        if (k > 2) v |= p[i + 2];
        char q[4] = {url_alpha[v >> 18], url_alpha[(v >> 12) & 63], url_alpha[(v >> 6) & 63],
                     url_alpha[v & 63]};
        put(s, q, k + 1);
    }
    put(s, "\"", 1);
}

kl_status kl_jwt_sign(struct kl_se *se, uint16_t key_id, const struct kl_jwt_claims *cl,
                      const uint8_t *cert_der, size_t cert_len, char *out, size_t cap, size_t *len)
{
    if (!se || !cl || !out || !len || (cert_der && !cert_len) || (cl->nonce_len && !cl->nonce) ||
        cl->nonce_len > 1024)
        return KL_E_ARG;
    struct b64s s = {.out = out, .cap = cap};
    puts_(&s, "{\"alg\":\"ES256\",\"typ\":\"JWT\"");
    if (cert_der) {
        puts_(&s, ",\"x5c\":[\"");
        put_b64_std(&s, cert_der, cert_len);
        puts_(&s, "\"]");
    }
    puts_(&s, "}");
    flush(&s);
    emit(&s, '.');
    int first = 1;
    put(&s, "{", 1);
    const char *keys[4] = {"iss", "sub", "aud", NULL};
    const char *vals[3] = {cl->iss, cl->sub, cl->aud};
    for (int i = 0; keys[i]; i++)
        if (vals[i]) {
            member(&s, &first, keys[i]);
            put_json_str(&s, vals[i]);
        }
    member(&s, &first, "iat");
    put_int(&s, cl->iat);
    if (cl->exp) {
        member(&s, &first, "exp");
        put_int(&s, cl->exp);
    }
    if (cl->jti) {
        member(&s, &first, "jti");
        put_json_str(&s, cl->jti);
    }
    if (cl->nonce) {
        member(&s, &first, "nonce");
        put_b64url_str(&s, cl->nonce, cl->nonce_len);
    }
    put(&s, "}", 1);
    flush(&s);
    /* "." + 86 characters of signature + NUL */
    if (s.over || cap - s.pos < 1 + KL_B64URL_LEN(64) + 1) return KL_E_BUFFER;
    uint8_t digest[32], sig[64];
    size_t sl = 0;
    kl_hcx_sha256((const uint8_t *)out, s.pos, digest);
    kl_status st =
        kl_se_sign(se, key_id, KL_SE_SIG_RAW, KL_SE_INPUT_DIGEST, digest, 32, sig, sizeof sig, &sl);
    if (st != KL_OK) return st;
    if (sl != 64) return KL_E_PROTOCOL;
    out[s.pos++] = '.';
    size_t el;
    st = kl_base64url_encode(sig, 64, out + s.pos, cap - s.pos, &el);
    if (st != KL_OK) return st;
    *len = s.pos + el;
    return KL_OK;
}
