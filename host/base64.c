/* base64 and base64url (RFC 4648 sections 4 and 5), strict decoding. */
#include <string.h>

#include "keylink/jwt.h"

static const char std_alpha[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char url_alpha[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static kl_status encode(const char *alpha, int pad, const uint8_t *in, size_t n, char *out,
                        size_t cap, size_t *len)
{
    if ((!in && n) || !out || !len) return KL_E_ARG;
    size_t need = pad ? KL_B64_LEN(n) : KL_B64URL_LEN(n);
    if (n > ((size_t)-1) / 2 || need + 1 > cap) return KL_E_BUFFER;
    size_t o = 0, i = 0;
    for (; i + 3 <= n; i += 3) {
        uint32_t v = ((uint32_t)in[i] << 16) | ((uint32_t)in[i + 1] << 8) | in[i + 2];
        out[o++] = alpha[v >> 18];
        out[o++] = alpha[(v >> 12) & 63];
        out[o++] = alpha[(v >> 6) & 63];
        out[o++] = alpha[v & 63];
    }
    if (n - i) {
        uint32_t v = (uint32_t)in[i] << 16;
        if (n - i == 2) v |= (uint32_t)in[i + 1] << 8;
        out[o++] = alpha[v >> 18];
        out[o++] = alpha[(v >> 12) & 63];
        if (n - i == 2)
            out[o++] = alpha[(v >> 6) & 63];
        else if (pad)
            out[o++] = '=';
        if (pad) out[o++] = '=';
    }
    out[o] = 0;
    *len = o;
    return KL_OK;
}

kl_status kl_base64_encode(const uint8_t *in, size_t n, char *out, size_t cap, size_t *len)
{
    return encode(std_alpha, 1, in, n, out, cap, len);
}

kl_status kl_base64url_encode(const uint8_t *in, size_t n, char *out, size_t cap, size_t *len)
{
    return encode(url_alpha, 0, in, n, out, cap, len);
}

static int value(char ch, int url)
{
    if (ch >= 'A' && ch <= 'Z') return ch - 'A';
    if (ch >= 'a' && ch <= 'z') return ch - 'a' + 26;
    if (ch >= '0' && ch <= '9') return ch - '0' + 52;
    if (ch == (url ? '-' : '+')) return 62;
    if (ch == (url ? '_' : '/')) return 63;
    return -1;
}

static kl_status decode(int url, const char *in, size_t n, uint8_t *out, size_t cap, size_t *len)
{
    if ((!in && n) || (!out && cap) || !len) return KL_E_ARG;
    if (!url) {
        if (n % 4) return KL_E_PEER;
        size_t p = 0;
        while (p < 2 && n > p && in[n - 1 - p] == '=')
            p++;
        n -= p;
        if (p && (n + p) % 4) return KL_E_PEER;
        if (p == 1 && n % 4 != 3) return KL_E_PEER;
        if (p == 2 && n % 4 != 2) return KL_E_PEER;
    }
    if (n % 4 == 1) return KL_E_PEER;
    size_t need = n / 4 * 3 + (n % 4 ? n % 4 - 1 : 0);
    if (need > cap) return KL_E_BUFFER;
    uint32_t acc = 0;
    int bits = 0;
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        int v = value(in[i], url);
        if (v < 0) return KL_E_PEER;
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (uint8_t)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    if (acc) return KL_E_PEER; /* unused bits must be zero */
    *len = o;
    return KL_OK;
}

kl_status kl_base64url_decode(const char *in, size_t n, uint8_t *out, size_t cap, size_t *len)
{
    return decode(1, in, n, out, cap, len);
}

kl_status kl_base64_decode(const char *in, size_t n, uint8_t *out, size_t cap, size_t *len)
{
    return decode(0, in, n, out, cap, len);
}
