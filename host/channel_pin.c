/*
 * Pinned identity keys for tools: parse a chip's identity public key from hex or a PEM
 * SubjectPublicKeyInfo, read it from a file, write it as PEM. Strict: P-256 with the
 * uncompressed point only, and the point must be on the curve.
 */
#include <stdio.h>
#include <string.h>

#include "hcx.h"
#include "keylink/channel.h"

/* DER of SubjectPublicKeyInfo { id-ecPublicKey, prime256v1 } up to the point's 0x04. */
static const uint8_t SPKI_PREFIX[27] = {0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48,
                                        0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a, 0x86, 0x48,
                                        0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00, 0x04};
#define SPKI_LEN (sizeof SPKI_PREFIX + 64)
static const char PEM_BEGIN[] = "-----BEGIN PUBLIC KEY-----";
static const char PEM_END[] = "-----END PUBLIC KEY-----";
static const char B64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static int is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static int b64val(char c)
{
    const char *p = c ? strchr(B64, c) : NULL;
    return p ? (int)(p - B64) : -1;
}

/* Decodes the base64 body between the PEM lines (whitespace ignored, '=' padding). */
static int b64_decode(const char *s, size_t n, uint8_t *out, size_t cap, size_t *len)
{
    uint32_t acc = 0;
    int bits = 0, pad = 0;
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (is_space(s[i])) continue;
        if (s[i] == '=') {
            pad++;
            continue;
        }
        int v = b64val(s[i]);
        if (v < 0 || pad) return 0; /* data after padding */
        acc = acc << 6 | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (o >= cap) return 0;
            out[o++] = (uint8_t)(acc >> bits);
        }
    }
    if (pad > 2) return 0;
    *len = o;
    return 1;
}

static kl_status parse_pem(const char *t, size_t n, uint8_t pub[64])
{
    const char *b = NULL, *e = NULL;
    size_t bl = sizeof PEM_BEGIN - 1, el = sizeof PEM_END - 1;
    for (size_t i = 0; i + bl <= n; i++)
        if (!memcmp(t + i, PEM_BEGIN, bl)) {
            b = t + i + bl;
            break;
        }
    if (!b) return KL_E_BAD_KEY;
    for (const char *q = b; q + el <= t + n; q++)
        if (!memcmp(q, PEM_END, el)) {
            e = q;
            break;
        }
    if (!e) return KL_E_BAD_KEY;
    uint8_t der[SPKI_LEN + 3];
    size_t dl = 0;
    if (!b64_decode(b, (size_t)(e - b), der, sizeof der, &dl) || dl != SPKI_LEN ||
        memcmp(der, SPKI_PREFIX, sizeof SPKI_PREFIX) != 0)
        return KL_E_BAD_KEY;
    memcpy(pub, der + sizeof SPKI_PREFIX, 64);
    return KL_OK;
}

static kl_status parse_hex(const char *t, size_t n, uint8_t pub[64])
{
    uint8_t b[65];
    size_t digits = 0;
    while (n && is_space(*t))
        t++, n--;
    while (n && is_space(t[n - 1]))
        n--;
    if (n != 128 && n != 130) return KL_E_BAD_KEY;
    for (size_t i = 0; i < n; i += 2) {
        int hi = hexval(t[i]), lo = hexval(t[i + 1]);
        if (hi < 0 || lo < 0) return KL_E_BAD_KEY;
        b[digits++] = (uint8_t)(hi << 4 | lo);
    }
    if (digits == 65 && b[0] != 0x04) return KL_E_BAD_KEY;
    memcpy(pub, b + (digits == 65), 64);
    return KL_OK;
}

kl_status kl_channel_pub_parse(const char *text, size_t len, uint8_t pub[KL_SE_IDENTITY_LEN])
{
    if (!text || !pub) return KL_E_ARG;
    uint8_t k[64];
    int pem = 0;
    for (size_t i = 0; i < len; i++)
        if (text[i] == '-') pem = 1;
    kl_status st = pem ? parse_pem(text, len, k) : parse_hex(text, len, k);
    if (st == KL_OK && kl_hcx_p256_check_pub(k) != KL_OK) st = KL_E_BAD_KEY;
    if (st == KL_OK) memcpy(pub, k, 64);
    return st;
}

kl_status kl_channel_pub_read_file(const char *path, uint8_t pub[KL_SE_IDENTITY_LEN])
{
    char buf[4097];
    if (!path || !pub) return KL_E_ARG;
    FILE *f = fopen(path, "rb");
    if (!f) return KL_E_IO;
    size_t n = fread(buf, 1, sizeof buf, f);
    int err = ferror(f);
    fclose(f);
    if (err) return KL_E_IO;
    if (n > 4096) return KL_E_BAD_KEY; /* no key file is that long */
    return kl_channel_pub_parse(buf, n, pub);
}

kl_status kl_channel_pub_to_pem(const uint8_t pub[KL_SE_IDENTITY_LEN], char *buf, size_t cap,
                                size_t *len)
{
    uint8_t der[SPKI_LEN];
    if (!pub || !buf || !len) return KL_E_ARG;
    if (cap < 179) return KL_E_BUFFER;
    memcpy(der, SPKI_PREFIX, sizeof SPKI_PREFIX);
    memcpy(der + sizeof SPKI_PREFIX, pub, 64);
    size_t o = 0, col = 0;
    memcpy(buf, PEM_BEGIN, sizeof PEM_BEGIN - 1);
    o = sizeof PEM_BEGIN - 1;
    buf[o++] = '\n';
    for (size_t i = 0; i < SPKI_LEN; i += 3) { /* 91 bytes: 30 full groups, then 1 byte */
        uint32_t v = (uint32_t)der[i] << 16;
        size_t have = SPKI_LEN - i < 3 ? SPKI_LEN - i : 3;
        if (have > 1) v |= (uint32_t)der[i + 1] << 8;
        if (have > 2) v |= der[i + 2];
        char q[4] = {B64[(v >> 18) & 63], B64[(v >> 12) & 63], have > 1 ? B64[(v >> 6) & 63] : '=',
                     have > 2 ? B64[v & 63] : '='};
        for (int j = 0; j < 4; j++) {
            buf[o++] = q[j];
            if (++col == 64) {
                buf[o++] = '\n';
                col = 0;
            }
        }
    }
    if (col) buf[o++] = '\n';
    memcpy(buf + o, PEM_END, sizeof PEM_END - 1);
    o += sizeof PEM_END - 1;
    buf[o++] = '\n';
    buf[o] = '\0';
    *len = o;
    return KL_OK;
}
