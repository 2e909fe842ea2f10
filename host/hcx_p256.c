/*
 * P-256 (SEC 2 secp256r1, FIPS 186-4 D.1.2.3): key generation, public key, validation and
 * ECDH. Field elements are 8 little-endian 32-bit limbs in Montgomery form (R = 2^256),
 * products are uint64_t of two limbs, so it runs on a Cortex-M4. Points use homogeneous
 * projective coordinates and the complete addition law for a = -3 of Renes, Costello and
 * Batina (2016): one formula for every pair of inputs, infinity and doubling included, so
 * no input makes a special case. Scalar multiplication is a fixed 4-bit window over all 64
 * digits with a constant-time scan of the 16-entry table; no branch or memory index
 * depends on the scalar.
 */
#include <string.h>

#include "hcx.h"

typedef uint32_t fe[8];

struct pt {
    fe x, y, z;
};

static const fe P = {0xffffffff, 0xffffffff, 0xffffffff, 0x00000000,
                     0x00000000, 0x00000000, 0x00000001, 0xffffffff};
static const fe N = {0xfc632551, 0xf3b9cac2, 0xa7179e84, 0xbce6faad,
                     0xffffffff, 0xffffffff, 0x00000000, 0xffffffff};
/* R^2 mod p, for conversion into Montgomery form. */
static const fe R2 = {0x00000003, 0x00000000, 0xffffffff, 0xfffffffb,
                      0xfffffffe, 0xffffffff, 0xfffffffd, 0x00000004};
/* 1 and b in Montgomery form. */
static const fe ONE_M = {0x00000001, 0x00000000, 0x00000000, 0xffffffff,
                         0xffffffff, 0xffffffff, 0xfffffffe, 0x00000000};
static const fe B_M = {0x29c4bddf, 0xd89cdf62, 0x78843090, 0xacf005cd,
                       0xf7212ed6, 0xe5a220ab, 0x04874834, 0xdc30061d};
/* Base point G, big-endian X||Y. */
static const uint8_t G_XY[64] = {
    0x6b, 0x17, 0xd1, 0xf2, 0xe1, 0x2c, 0x42, 0x47, 0xf8, 0xbc, 0xe6, 0xe5, 0x63, 0xa4, 0x40, 0xf2,
    0x77, 0x03, 0x7d, 0x81, 0x2d, 0xeb, 0x33, 0xa0, 0xf4, 0xa1, 0x39, 0x45, 0xd8, 0x98, 0xc2, 0x96,
    0x4f, 0xe3, 0x42, 0xe2, 0xfe, 0x1a, 0x7f, 0x9b, 0x8e, 0xe7, 0xeb, 0x4a, 0x7c, 0x0f, 0x9e, 0x16,
    0x2b, 0xce, 0x33, 0x57, 0x6b, 0x31, 0x5e, 0xce, 0xcb, 0xb6, 0x40, 0x68, 0x37, 0xbf, 0x51, 0xf5};

/* ---- field arithmetic mod p, all constant time ---- */

/* r = mask ? a : r, mask all-ones or zero. */
static void fe_cmov(fe r, const fe a, uint32_t mask)
{
    for (int i = 0; i < 8; i++)
        r[i] ^= (r[i] ^ a[i]) & mask;
}

/* r = a - m, returns the borrow (0 or 1). */
static uint32_t sub8(fe r, const fe a, const fe m)
{
    uint64_t bw = 0;
    for (int i = 0; i < 8; i++) {
        uint64_t d = (uint64_t)a[i] - m[i] - bw;
        r[i] = (uint32_t)d;
        bw = (d >> 32) & 1;
    }
    return (uint32_t)bw;
}

/* Reduces the 257-bit value carry:t (< 2p) into [0, p). */
static void fe_reduce_once(fe r, const fe t, uint32_t carry)
{
    fe d;
    uint32_t bw = sub8(d, t, P);
    uint32_t keep_t = 0 - ((~carry & 1) & bw); /* t < p: keep t */
    for (int i = 0; i < 8; i++)
        r[i] = (t[i] & keep_t) | (d[i] & ~keep_t);
}

static void fe_add(fe r, const fe a, const fe b)
{
    fe t;
    uint64_t c = 0;
    for (int i = 0; i < 8; i++) {
        c += (uint64_t)a[i] + b[i];
        t[i] = (uint32_t)c;
        c >>= 32;
    }
    fe_reduce_once(r, t, (uint32_t)c);
}

static void fe_sub(fe r, const fe a, const fe b)
{
    fe t;
    uint32_t bw = sub8(t, a, b);
    uint32_t m = 0 - bw;
    uint64_t c = 0;
    for (int i = 0; i < 8; i++) {
        c += (uint64_t)t[i] + (P[i] & m);
        r[i] = (uint32_t)c;
        c >>= 32;
    }
}

/* Montgomery product r = a * b / 2^256 mod p (CIOS). -p^-1 mod 2^32 is 1 for this p. */
static void fe_mul(fe r, const fe a, const fe b)
{
    uint32_t t[10] = {0};
    for (int i = 0; i < 8; i++) {
        uint64_t acc;
        uint32_t carry = 0;
        for (int j = 0; j < 8; j++) {
            acc = (uint64_t)a[j] * b[i] + t[j] + carry;
            t[j] = (uint32_t)acc;
            carry = (uint32_t)(acc >> 32);
        }
        acc = (uint64_t)t[8] + carry;
        t[8] = (uint32_t)acc;
        t[9] = (uint32_t)(acc >> 32);
        uint32_t m = t[0];
        acc = (uint64_t)m * P[0] + t[0];
        carry = (uint32_t)(acc >> 32);
        for (int j = 1; j < 8; j++) {
            acc = (uint64_t)m * P[j] + t[j] + carry;
            t[j - 1] = (uint32_t)acc;
            carry = (uint32_t)(acc >> 32);
        }
        acc = (uint64_t)t[8] + carry;
        t[7] = (uint32_t)acc;
        t[8] = t[9] + (uint32_t)(acc >> 32);
    }
    fe_reduce_once(r, t, t[8]);
    kl_hcx_wipe(t, sizeof t);
}

/* Big-endian 32 bytes to limbs (no reduction). */
static void fe_load(fe r, const uint8_t b[32])
{
    for (int i = 0; i < 8; i++) {
        const uint8_t *q = b + 28 - 4 * i;
        r[i] = (uint32_t)q[0] << 24 | (uint32_t)q[1] << 16 | (uint32_t)q[2] << 8 | q[3];
    }
}

static void fe_store(uint8_t b[32], const fe a)
{
    for (int i = 0; i < 8; i++) {
        uint8_t *q = b + 28 - 4 * i;
        q[0] = (uint8_t)(a[i] >> 24);
        q[1] = (uint8_t)(a[i] >> 16);
        q[2] = (uint8_t)(a[i] >> 8);
        q[3] = (uint8_t)a[i];
    }
}

/* 1 if a < m (a and m as limbs), constant time. */
static uint32_t lt(const fe a, const fe m)
{
    fe d;
    return sub8(d, a, m);
}

static uint32_t fe_is_zero(const fe a)
{
    uint32_t z = 0;
    for (int i = 0; i < 8; i++)
        z |= a[i];
    return 1 & ((z | (0 - z)) >> 31 ^ 1);
}

/* a^(p-2) = a^-1 (0 for 0). The exponent is public, so branching on its bits is fine. */
static void fe_inv(fe r, const fe a)
{
    static const fe E = {0xfffffffd, 0xffffffff, 0xffffffff, 0x00000000,
                         0x00000000, 0x00000000, 0x00000001, 0xffffffff};
    fe acc;
    memcpy(acc, ONE_M, sizeof acc);
    for (int i = 255; i >= 0; i--) {
        fe_mul(acc, acc, acc);
        if ((E[i / 32] >> (i % 32)) & 1) fe_mul(acc, acc, a);
    }
    memcpy(r, acc, sizeof acc);
    kl_hcx_wipe(acc, sizeof acc);
}

/* ---- points ---- */

/* Complete addition for a = -3 (Renes-Costello-Batina, algorithm 4). r may alias. */
static void pt_add(struct pt *r, const struct pt *p, const struct pt *q)
{
    fe t0, t1, t2, t3, t4, x3, y3, z3;
    fe_mul(t0, p->x, q->x);
    fe_mul(t1, p->y, q->y);
    fe_mul(t2, p->z, q->z);
    fe_add(t3, p->x, p->y);
    fe_add(t4, q->x, q->y);
    fe_mul(t3, t3, t4);
    fe_add(t4, t0, t1);
    fe_sub(t3, t3, t4);
    fe_add(t4, p->y, p->z);
    fe_add(x3, q->y, q->z);
    fe_mul(t4, t4, x3);
    fe_add(x3, t1, t2);
    fe_sub(t4, t4, x3);
    fe_add(x3, p->x, p->z);
    fe_add(y3, q->x, q->z);
    fe_mul(x3, x3, y3);
    fe_add(y3, t0, t2);
    fe_sub(y3, x3, y3);
    fe_mul(z3, B_M, t2);
    fe_sub(x3, y3, z3);
    fe_add(z3, x3, x3);
    fe_add(x3, x3, z3);
    fe_sub(z3, t1, x3);
    fe_add(x3, t1, x3);
    fe_mul(y3, B_M, y3);
    fe_add(t1, t2, t2);
    fe_add(t2, t1, t2);
    fe_sub(y3, y3, t2);
    fe_sub(y3, y3, t0);
    fe_add(t1, y3, y3);
    fe_add(y3, t1, y3);
    fe_add(t1, t0, t0);
    fe_add(t0, t1, t0);
    fe_sub(t0, t0, t2);
    fe_mul(t1, t4, y3);
    fe_mul(t2, t0, y3);
    fe_mul(y3, x3, z3);
    fe_add(y3, y3, t2);
    fe_mul(x3, x3, t3);
    fe_sub(x3, x3, t1);
    fe_mul(z3, z3, t4);
    fe_mul(t1, t3, t0);
    fe_add(z3, z3, t1);
    memcpy(r->x, x3, sizeof x3);
    memcpy(r->y, y3, sizeof y3);
    memcpy(r->z, z3, sizeof z3);
}

static void pt_cmov(struct pt *r, const struct pt *a, uint32_t mask)
{
    fe_cmov(r->x, a->x, mask);
    fe_cmov(r->y, a->y, mask);
    fe_cmov(r->z, a->z, mask);
}

static void pt_infinity(struct pt *r)
{
    memset(r, 0, sizeof *r);
    memcpy(r->y, ONE_M, sizeof r->y);
}

/* Loads affine X||Y (already checked to be < p) into Montgomery projective form. */
static void pt_load(struct pt *r, const uint8_t xy[64])
{
    fe_load(r->x, xy);
    fe_load(r->y, xy + 32);
    fe_mul(r->x, r->x, R2);
    fe_mul(r->y, r->y, R2);
    memcpy(r->z, ONE_M, sizeof r->z);
}

/* r = k * p, k big-endian 32 bytes (any value; the caller checks the range). */
static void pt_mul(struct pt *r, const uint8_t k[32], const struct pt *p)
{
    struct pt tab[16], sel, acc;
    pt_infinity(&tab[0]);
    tab[1] = *p;
    for (int i = 2; i < 16; i++)
        pt_add(&tab[i], &tab[i - 1], p);
    pt_infinity(&acc);
    for (int d = 0; d < 64; d++) {
        for (int j = 0; j < 4; j++)
            pt_add(&acc, &acc, &acc);
        uint32_t digit = (k[d / 2] >> (d % 2 ? 0 : 4)) & 0xf;
        pt_infinity(&sel);
        for (uint32_t i = 1; i < 16; i++) {
            uint32_t eq = ((i ^ digit) - 1) >> 31; /* 1 iff i == digit */
            pt_cmov(&sel, &tab[i], 0 - eq);
        }
        pt_add(&acc, &acc, &sel);
    }
    *r = acc;
    kl_hcx_wipe(tab, sizeof tab);
    kl_hcx_wipe(&sel, sizeof sel);
    kl_hcx_wipe(&acc, sizeof acc);
}

/* Affine X||Y of p; returns 0 for the point at infinity (out is then zero). */
static int pt_store(uint8_t xy[64], const struct pt *p)
{
    fe zi, x, y;
    fe one = {1, 0, 0, 0, 0, 0, 0, 0};
    uint32_t inf = fe_is_zero(p->z);
    fe_inv(zi, p->z);
    fe_mul(x, p->x, zi);
    fe_mul(y, p->y, zi);
    fe_mul(x, x, one); /* out of Montgomery form */
    fe_mul(y, y, one);
    fe_store(xy, x);
    fe_store(xy + 32, y);
    kl_hcx_wipe(zi, sizeof zi);
    kl_hcx_wipe(x, sizeof x);
    kl_hcx_wipe(y, sizeof y);
    return !inf;
}

/* 1 if 1 <= k < n (k big-endian), constant time. */
static uint32_t scalar_ok(const uint8_t k[32])
{
    fe s;
    fe_load(s, k);
    uint32_t ok = lt(s, N) & (fe_is_zero(s) ^ 1);
    kl_hcx_wipe(s, sizeof s);
    return ok;
}

kl_status kl_hcx_p256_check_pub(const uint8_t pub[KL_HCX_P256_PUB])
{
    fe x, y, l, r, t;
    if (!pub) return KL_E_ARG;
    fe_load(x, pub);
    fe_load(y, pub + 32);
    if (!lt(x, P) || !lt(y, P)) return KL_E_BAD_KEY;
    fe_mul(x, x, R2);
    fe_mul(y, y, R2);
    fe_mul(l, y, y); /* y^2 */
    fe_mul(t, x, x);
    fe_mul(r, t, x); /* x^3 */
    fe_add(t, x, x);
    fe_add(t, t, x);
    fe_sub(r, r, t); /* x^3 - 3x */
    fe_add(r, r, B_M);
    fe_sub(t, l, r);
    return fe_is_zero(t) ? KL_OK : KL_E_BAD_KEY;
}

kl_status kl_hcx_p256_pub(const uint8_t priv[KL_HCX_P256_PRIV], uint8_t pub[KL_HCX_P256_PUB])
{
    struct pt g, q;
    if (!priv || !pub) return KL_E_ARG;
    if (!scalar_ok(priv)) return KL_E_BAD_KEY;
    pt_load(&g, G_XY);
    pt_mul(&q, priv, &g);
    int fin = pt_store(pub, &q);
    kl_hcx_wipe(&q, sizeof q);
    return fin ? KL_OK : KL_E_INTERNAL;
}

kl_status kl_hcx_p256_keygen(kl_hcx_rng_fn rng, void *rng_ctx, uint8_t priv[KL_HCX_P256_PRIV],
                             uint8_t pub[KL_HCX_P256_PUB])
{
    if (!rng || !priv || !pub) return KL_E_ARG;
    for (int tries = 0; tries < 64; tries++) {
        kl_status st = rng(rng_ctx, priv, KL_HCX_P256_PRIV);
        if (st != KL_OK) {
            kl_hcx_wipe(priv, KL_HCX_P256_PRIV);
            return st;
        }
        if (scalar_ok(priv)) {
            st = kl_hcx_p256_pub(priv, pub);
            if (st != KL_OK) kl_hcx_wipe(priv, KL_HCX_P256_PRIV);
            return st;
        }
    }
    kl_hcx_wipe(priv, KL_HCX_P256_PRIV);
    return KL_E_INTERNAL;
}

kl_status kl_hcx_p256_ecdh(const uint8_t priv[KL_HCX_P256_PRIV],
                           const uint8_t peer[KL_HCX_P256_PUB], uint8_t shared[32])
{
    struct pt q, s;
    uint8_t xy[64];
    if (!priv || !peer || !shared) return KL_E_ARG;
    memset(shared, 0, 32);
    if (kl_hcx_p256_check_pub(peer) != KL_OK || !scalar_ok(priv)) return KL_E_BAD_KEY;
    pt_load(&q, peer);
    pt_mul(&s, priv, &q);
    int fin = pt_store(xy, &s);
    if (fin) memcpy(shared, xy, 32);
    kl_hcx_wipe(xy, sizeof xy);
    kl_hcx_wipe(&s, sizeof s);
    return fin ? KL_OK : KL_E_BAD_KEY;
}
