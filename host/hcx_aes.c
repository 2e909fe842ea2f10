/*
 * AES block encryption (FIPS 197) for 128- and 256-bit keys, without tables indexed by
 * secrets: the S-box is computed as the GF(2^8) inverse x^254 followed by the affine map,
 * four bytes at a time in a 32-bit word, using only shifts, masks and XOR. Slower than a
 * table, but its timing and memory accesses do not depend on key or data.
 */
#include <string.h>

#include "hcx.h"

/* Multiplies each of the four packed bytes by x (0x02) in GF(2^8). */
static uint32_t xtime4(uint32_t w)
{
    uint32_t hi = (w >> 7) & 0x01010101u;
    return ((w & 0x7f7f7f7fu) << 1) ^ (hi * 0x1bu);
}

/* Byte-wise GF(2^8) product of four packed bytes; no data-dependent branch or index. */
static uint32_t gmul4(uint32_t a, uint32_t b)
{
    uint32_t r = 0;
    for (int i = 0; i < 8; i++) {
        uint32_t m = ((b >> i) & 0x01010101u) * 0xffu; /* 0xff in each byte whose bit i is set */
        r ^= a & m;
        a = xtime4(a);
    }
    return r;
}

/* Rotates each packed byte left by k (1..7). */
static uint32_t rotb4(uint32_t w, unsigned k)
{
    uint32_t lo = (0xffu >> k) * 0x01010101u; /* bits that stay inside the byte */
    return ((w & lo) << k) | ((w >> (8 - k)) & ~(lo << k) & 0xffffffffu);
}

/* S-box of four packed bytes: inverse (0 maps to 0 since 0^254 = 0), then affine map. */
static uint32_t sub4(uint32_t x)
{
    uint32_t x2 = gmul4(x, x);
    uint32_t y = gmul4(x2, x);  /* x^3 */
    for (int i = 0; i < 5; i++) /* x^7, x^15, x^31, x^63, x^127 */
        y = gmul4(gmul4(y, y), x);
    y = gmul4(y, y); /* x^254 */
    return y ^ rotb4(y, 1) ^ rotb4(y, 2) ^ rotb4(y, 3) ^ rotb4(y, 4) ^ 0x63636363u;
}

static uint32_t load_le(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void store_le(uint8_t *p, uint32_t w)
{
    p[0] = (uint8_t)w;
    p[1] = (uint8_t)(w >> 8);
    p[2] = (uint8_t)(w >> 16);
    p[3] = (uint8_t)(w >> 24);
}

kl_status kl_hcx_aes_init(struct kl_hcx_aes *a, const uint8_t *key, size_t klen)
{
    if (!a || !key || (klen != 16 && klen != 32)) return KL_E_ARG;
    unsigned nk = (unsigned)klen / 4;
    a->rounds = nk == 4 ? 10 : 14;
    unsigned total = 4 * (a->rounds + 1);
    uint32_t w[60];
    for (unsigned i = 0; i < nk; i++)
        w[i] = load_le(key + 4 * i); /* byte 0 of the word is the first key byte */
    uint8_t rcon = 1;
    for (unsigned i = nk; i < total; i++) {
        uint32_t t = w[i - 1];
        if (i % nk == 0) {
            t = sub4((t >> 8) | (t << 24)) ^ rcon; /* RotWord then SubWord, Rcon on byte 0 */
            rcon = (uint8_t)((rcon << 1) ^ ((rcon >> 7) * 0x1b));
        } else if (nk == 8 && i % nk == 4) {
            t = sub4(t);
        }
        w[i] = w[i - nk] ^ t;
    }
    for (unsigned i = 0; i < total; i++)
        store_le(a->rk + 4 * i, w[i]);
    kl_hcx_wipe(w, sizeof w);
    return KL_OK;
}

void kl_hcx_aes_encrypt(const struct kl_hcx_aes *a, const uint8_t in[16], uint8_t out[16])
{
    /* col[c] holds column c; byte r of the word is row r. */
    uint32_t col[4], t[4];
    for (int c = 0; c < 4; c++)
        col[c] = load_le(in + 4 * c) ^ load_le(a->rk + 4 * c);
    for (unsigned r = 1; r <= a->rounds; r++) {
        for (int c = 0; c < 4; c++)
            col[c] = sub4(col[c]);
        /* ShiftRows: row k of column c comes from column c + k. */
        for (int c = 0; c < 4; c++)
            t[c] = (col[c] & 0x000000ffu) | (col[(c + 1) & 3] & 0x0000ff00u) |
                   (col[(c + 2) & 3] & 0x00ff0000u) | (col[(c + 3) & 3] & 0xff000000u);
        for (int c = 0; c < 4; c++) {
            uint32_t v = t[c];
            if (r != a->rounds) {                   /* MixColumns; the round number is public */
                uint32_t v1 = (v >> 8) | (v << 24); /* byte i = a[i+1] */
                uint32_t v2 = (v >> 16) | (v << 16);
                uint32_t v3 = (v >> 24) | (v << 8);
                v = xtime4(v ^ v1) ^ v1 ^ v2 ^ v3;
            }
            col[c] = v ^ load_le(a->rk + 16 * r + 4 * c);
        }
    }
    for (int c = 0; c < 4; c++)
        store_le(out + 4 * c, col[c]);
    kl_hcx_wipe(col, sizeof col);
    kl_hcx_wipe(t, sizeof t);
}
