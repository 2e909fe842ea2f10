/*
 * The crypto commands through kl_chip_execute: what they answer on success and every
 * failure path (wrong usage, wrong key type, context exhaustion, out-of-sequence
 * updates, oversize chunks, malformed points, bad tags releasing nothing).
 */
#include "chip_harness.h"
#include "cx.h"

/* expects status st from cmd */
#define EXPECT(h, cmd, req, n, st)                                                                 \
    do {                                                                                           \
        kl_status got_ = h_exec((h), (cmd), (req), (n));                                           \
        if (got_ != (st)) {                                                                        \
            fprintf(stderr, "%s:%d: command 0x%02X answered %s, expected %s\n", __FILE__,          \
                    __LINE__, (unsigned)(cmd), kl_status_name(got_), kl_status_name(st));          \
            kl_fails++;                                                                            \
        }                                                                                          \
    } while (0)

enum {
    SIGN_KEY = 0x3001,
    TLS_KEY = 0x3002,
    PUB_KEY = 0x3003,
    KEX_A = 0x3004,
    KEX_B = 0x3005,
    AES_GCM = 0x3006,
    AES_CBC = 0x3007,
    HMAC_KEY = 0x3008,
    CMAC_KEY = 0x3009,
    STORE_KEY = 0x300A,
    DATA_OBJ = 0x300B,
    AES_CCM = 0x300C,
};

static const uint8_t aes_key16[16] = {0};

static void gen(struct h_chip *h, uint16_t id, uint8_t pub[64])
{
    uint8_t r[2];
    kl_put16(r, id);
    CHECK(h_exec(h, H_GENERATE, r, 2) == KL_OK && h->rlen == 64);
    memcpy(pub, h->resp, 64);
}

static void test_random(struct h_chip *h)
{
    uint8_t r[3] = {0x08, 0x00}, first[32];
    EXPECT(h, H_RANDOM, r, 2, KL_OK);
    CHECK(h->rlen == 2048);
    kl_put16(r, 32);
    EXPECT(h, H_RANDOM, r, 2, KL_OK);
    memcpy(first, h->resp, 32);
    EXPECT(h, H_RANDOM, r, 2, KL_OK);
    CHECK(h->rlen == 32 && memcmp(first, h->resp, 32) != 0);
    kl_put16(r, 0);
    EXPECT(h, H_RANDOM, r, 2, KL_E_BAD_PARAM);
    kl_put16(r, 2049);
    EXPECT(h, H_RANDOM, r, 2, KL_E_BAD_PARAM);
    EXPECT(h, H_RANDOM, r, 1, KL_E_BAD_LENGTH);
    EXPECT(h, H_RANDOM, r, 3, KL_E_BAD_LENGTH);
}

static void test_md(struct h_chip *h)
{
    uint8_t r[1 + 2001], ctx[4], d[32];
    r[0] = 2;
    EXPECT(h, H_MD_INIT, r, 1, KL_E_BAD_PARAM);
    EXPECT(h, H_MD_INIT, r, 0, KL_E_BAD_LENGTH);
    r[0] = 1;
    for (int i = 0; i < 4; i++) {
        EXPECT(h, H_MD_INIT, r, 1, KL_OK);
        ctx[i] = h->resp[0];
    }
    EXPECT(h, H_MD_INIT, r, 1, KL_E_STATE); /* all four busy */
    /* "abc" in two updates with a peek between: the peek does not end the context */
    r[0] = ctx[0];
    memcpy(r + 1, "ab", 2);
    EXPECT(h, H_MD_UPDATE, r, 3, KL_OK);
    EXPECT(h, H_MD_PEEK, r, 1, KL_OK);
    CHECK(h->rlen == 32 && kl_cx_sha256((const uint8_t *)"ab", 2, d) == KL_OK &&
          memcmp(h->resp, d, 32) == 0);
    memcpy(r + 1, "c", 1);
    EXPECT(h, H_MD_UPDATE, r, 2, KL_OK);
    /* a chunk over 2000 bytes is refused and leaves the context as it was */
    memset(r + 1, 'x', 2001);
    EXPECT(h, H_MD_UPDATE, r, 2002, KL_E_BAD_LENGTH);
    EXPECT(h, H_MD_PEEK, r, 2, KL_E_BAD_LENGTH);
    EXPECT(h, H_MD_FINISH, r, 1, KL_OK);
    CHECK(h->rlen == 32 && kl_cx_sha256((const uint8_t *)"abc", 3, d) == KL_OK &&
          memcmp(h->resp, d, 32) == 0);
    /* finished: the context is gone */
    EXPECT(h, H_MD_UPDATE, r, 2, KL_E_STATE);
    EXPECT(h, H_MD_FINISH, r, 1, KL_E_STATE);
    EXPECT(h, H_MD_PEEK, r, 1, KL_E_STATE);
    r[0] = 4;
    EXPECT(h, H_MD_UPDATE, r, 2, KL_E_BAD_PARAM);
    /* exactly 2000 bytes is fine; the freed slot is reused */
    r[0] = 1;
    EXPECT(h, H_MD_INIT, r, 1, KL_OK);
    CHECK(h->resp[0] == ctx[0]);
    r[0] = ctx[0];
    EXPECT(h, H_MD_UPDATE, r, 2001, KL_OK);
    /* a reset frees every context */
    EXPECT(h, H_RESET, NULL, 0, KL_OK);
    for (int i = 0; i < 4; i++) {
        r[0] = ctx[i];
        EXPECT(h, H_MD_FINISH, r, 1, KL_E_STATE);
    }
}

static void test_sign(struct h_chip *h)
{
    uint8_t pub[64], tpub[64], r[256], dig[32], sig[80];
    CHECK(h_create_key(h, SIGN_KEY, 3, 96, 4, 0x01, 0x01) == KL_OK);
    CHECK(h_create_key(h, TLS_KEY, 3, 96, 4, 0x04, 0x01) == KL_OK);
    CHECK(h_create_key(h, KEX_A, 3, 96, 4, 0xD1, 0x02) == KL_OK);
    CHECK(h_create_key(h, PUB_KEY, 2, 64, 4, 0x01, 0x01) == KL_OK);
    gen(h, SIGN_KEY, pub);
    gen(h, TLS_KEY, tpub);
    CHECK(h_import(h, PUB_KEY, pub, 64) == KL_OK);
    CHECK(kl_cx_sha256((const uint8_t *)"hello", 5, dig) == KL_OK);

    /* sign a digest, raw; the toolbox and the chip both verify it */
    r[0] = 1;
    kl_put16(r + 1, SIGN_KEY);
    r[3] = 0;
    r[4] = 0;
    memcpy(r + 5, dig, 32);
    EXPECT(h, H_SIGN_VERIFY, r, 37, KL_OK);
    CHECK(h->rlen == 64 && kl_cx_ecdsa_verify(pub, dig, h->resp) == KL_OK);
    memcpy(sig, h->resp, 64);
    uint8_t v[256];
    v[0] = 2;
    kl_put16(v + 1, PUB_KEY); /* a public key with usage data signature verifies */
    v[3] = 0;
    v[4] = 1;
    kl_put16(v + 5, 64);
    memcpy(v + 7, sig, 64);
    memcpy(v + 71, "hello", 5);
    EXPECT(h, H_SIGN_VERIFY, v, 76, KL_OK);
    v[71] = 'j';
    EXPECT(h, H_SIGN_VERIFY, v, 76, KL_E_VERIFY_FAILED);
    kl_put16(v + 5, 63); /* a raw signature must be 64 bytes */
    EXPECT(h, H_SIGN_VERIFY, v, 75, KL_E_VERIFY_FAILED);
    kl_put16(v + 5, 200); /* longer than the request */
    EXPECT(h, H_SIGN_VERIFY, v, 76, KL_E_BAD_LENGTH);

    /* sign a message, DER; the TLS-authentication key signs too */
    r[3] = 1;
    r[4] = 1;
    memcpy(r + 5, "hello", 5);
    kl_put16(r + 1, TLS_KEY);
    EXPECT(h, H_SIGN_VERIFY, r, 10, KL_OK);
    CHECK(h->rlen >= 8 && h->rlen <= 72 && h->resp[0] == 0x30);
    size_t dl = h->rlen;
    memcpy(sig, h->resp, dl);
    /* VERIFY_WITH_KEY: DER over the message */
    v[0] = 1;
    v[1] = 1;
    memcpy(v + 2, tpub, 64);
    kl_put16(v + 66, dl);
    memcpy(v + 68, sig, dl);
    memcpy(v + 68 + dl, "hello", 5);
    EXPECT(h, H_VERIFY_WITH_KEY, v, 73 + dl, KL_OK);
    v[1] = 0; /* a digest must be 32 bytes */
    EXPECT(h, H_VERIFY_WITH_KEY, v, 73 + dl, KL_E_BAD_LENGTH);
    v[1] = 1;
    v[2 + 63] ^= 1; /* off the curve */
    EXPECT(h, H_VERIFY_WITH_KEY, v, 73 + dl, KL_E_BAD_KEY);
    v[2 + 63] ^= 1;
    v[0] = 2;
    EXPECT(h, H_VERIFY_WITH_KEY, v, 73 + dl, KL_E_BAD_PARAM);

    /* failures of SIGN_VERIFY */
    kl_put16(r + 1, SIGN_KEY);
    r[4] = 0;
    EXPECT(h, H_SIGN_VERIFY, r, 5 + 31, KL_E_BAD_LENGTH); /* digest of 31 bytes */
    r[0] = 3;
    EXPECT(h, H_SIGN_VERIFY, r, 37, KL_E_BAD_PARAM);
    r[0] = 1;
    r[3] = 2;
    EXPECT(h, H_SIGN_VERIFY, r, 37, KL_E_BAD_PARAM);
    r[3] = 0;
    EXPECT(h, H_SIGN_VERIFY, r, 4, KL_E_BAD_LENGTH);
    kl_put16(r + 1, PUB_KEY); /* wrong key type: a public key cannot sign */
    EXPECT(h, H_SIGN_VERIFY, r, 37, KL_E_WRONG_TYPE);
    kl_put16(r + 1, KEX_A); /* wrong usage: a key-exchange key does not sign */
    EXPECT(h, H_SIGN_VERIFY, r, 37, KL_E_USAGE);
    kl_put16(r + 1, 0x3FFF);
    EXPECT(h, H_SIGN_VERIFY, r, 37, KL_E_NOT_FOUND);
    CHECK(h_create_key(h, DATA_OBJ, 4, 16, 0, 0xFF, 0x00) == KL_OK);
    kl_put16(r + 1, DATA_OBJ);
    EXPECT(h, H_SIGN_VERIFY, r, 37, KL_E_WRONG_TYPE);
}

static void test_kex(struct h_chip *h)
{
    uint8_t pa[64], pb[64], r[200], z[32];
    CHECK(h_create_key(h, KEX_B, 3, 96, 4, 0xD1, 0x02) == KL_OK);
    gen(h, KEX_A, pa);
    gen(h, KEX_B, pb);
    /* A with B's raw key, B with A's SEC1 point and SPKI: one secret */
    kl_put16(r, KEX_A);
    r[2] = 0;
    kl_put16(r + 3, 64);
    memcpy(r + 5, pb, 64);
    r[69] = 0;
    EXPECT(h, H_KEY_EXCHANGE, r, 70, KL_OK);
    CHECK(h->rlen == 32);
    memcpy(z, h->resp, 32);
    kl_put16(r, KEX_B);
    r[2] = 1;
    kl_put16(r + 3, 65);
    r[5] = 4;
    memcpy(r + 6, pa, 64);
    r[70] = 0;
    EXPECT(h, H_KEY_EXCHANGE, r, 71, KL_OK);
    CHECK(h->rlen == 32 && memcmp(h->resp, z, 32) == 0);
    static const uint8_t hdr[26] = {0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48,
                                    0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a, 0x86, 0x48,
                                    0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00};
    r[2] = 2;
    kl_put16(r + 3, 91);
    memcpy(r + 5, hdr, 26);
    r[31] = 4;
    memcpy(r + 32, pa, 64);
    r[96] = 0;
    EXPECT(h, H_KEY_EXCHANGE, r, 97, KL_OK);
    CHECK(h->rlen == 32 && memcmp(h->resp, z, 32) == 0);

    /* malformed points: KL_E_BAD_KEY */
    r[2] = 1;
    kl_put16(r + 3, 33);
    r[5] = 2 | (pa[63] & 1); /* compressed: refused */
    memcpy(r + 6, pa, 32);
    r[38] = 0;
    EXPECT(h, H_KEY_EXCHANGE, r, 39, KL_E_BAD_KEY);
    kl_put16(r + 3, 64);
    memcpy(r + 5, pa, 64); /* SEC1 without the 04 byte */
    r[69] = 0;
    EXPECT(h, H_KEY_EXCHANGE, r, 70, KL_E_BAD_KEY);
    r[2] = 0;
    pa[10] ^= 1; /* off the curve */
    memcpy(r + 5, pa, 64);
    EXPECT(h, H_KEY_EXCHANGE, r, 70, KL_E_BAD_KEY);
    pa[10] ^= 1;
    memset(r + 5, 0, 64); /* (0, 0) */
    EXPECT(h, H_KEY_EXCHANGE, r, 70, KL_E_BAD_KEY);
    memcpy(r + 5, pa, 64);
    r[2] = 3;
    EXPECT(h, H_KEY_EXCHANGE, r, 70, KL_E_BAD_PARAM);
    r[2] = 0;
    r[69] = 2;
    EXPECT(h, H_KEY_EXCHANGE, r, 70, KL_E_BAD_PARAM);
    r[69] = 0;
    EXPECT(h, H_KEY_EXCHANGE, r, 71, KL_E_BAD_LENGTH); /* trailing byte */
    kl_put16(r, SIGN_KEY);
    EXPECT(h, H_KEY_EXCHANGE, r, 70, KL_E_USAGE);

    /* store the secret in an AES-256 key and use it: same as encrypting with z */
    CHECK(h_create_key(h, STORE_KEY, 1, 32, 1, 0x02, 0x10) == KL_OK);
    kl_put16(r, KEX_B);
    memcpy(r + 5, pa, 64);
    r[69] = 1;
    kl_put16(r + 70, 0x3FFE);
    EXPECT(h, H_KEY_EXCHANGE, r, 72, KL_E_NOT_FOUND);
    kl_put16(r + 70, STORE_KEY);
    EXPECT(h, H_KEY_EXCHANGE, r, 71, KL_E_BAD_LENGTH);
    EXPECT(h, H_KEY_EXCHANGE, r, 72, KL_OK);
    CHECK(h->rlen == 0);
    uint8_t ci[20] = {0};
    kl_put16(ci, STORE_KEY);
    ci[2] = 0x10;
    ci[3] = 1;
    EXPECT(h, H_CIPHER_INIT, ci, 13, KL_OK);
    uint8_t u[17] = {h->resp[0]}, want[16];
    EXPECT(h, H_CIPHER_UPDATE, u, 17, KL_OK);
    CHECK(h->rlen == 16);
    memcpy(want, h->resp, 16);
    EXPECT(h, H_CIPHER_FINISH, u, 1, KL_OK);
    struct kl_cx_cipher x;
    size_t ol = 0;
    uint8_t out[32];
    CHECK(kl_cx_cipher_init(&x, KL_CX_ECB, 1, 0, z, 32, NULL, 0, 0, 0, NULL, 0) == KL_OK);
    CHECK(kl_cx_cipher_update(&x, u + 1, 16, out, sizeof(out), &ol) == KL_OK && ol == 16);
    kl_cx_cipher_free(&x);
    CHECK(memcmp(out, want, 16) == 0);
}

static void test_mac(struct h_chip *h)
{
    /* RFC 4231 test case 2 needs a 4-byte key; HMAC objects hold 16..64, so a 20-byte
     * key is used and the answer checked against the toolbox. */
    uint8_t key[20], r[2100], tag[32];
    for (int i = 0; i < 20; i++)
        key[i] = (uint8_t)(0x0b + i);
    CHECK(h_create_key(h, HMAC_KEY, 1, 20, 3, 0x01, 0x20) == KL_OK);
    CHECK(h_import(h, HMAC_KEY, key, 20) == KL_OK);
    CHECK(h_create_key(h, CMAC_KEY, 1, 16, 1, 0x01, 0x15) == KL_OK);
    CHECK(h_import(h, CMAC_KEY, aes_key16, 16) == KL_OK);
    CHECK(kl_cx_hmac_sha256(key, 20, (const uint8_t *)"Hi There", 8, tag) == KL_OK);

    kl_put16(r, HMAC_KEY);
    r[2] = 0x20;
    EXPECT(h, H_MAC_INIT, r, 3, KL_OK);
    uint8_t c0 = h->resp[0];
    kl_put16(r, CMAC_KEY);
    r[2] = 0x15;
    EXPECT(h, H_MAC_INIT, r, 3, KL_OK);
    uint8_t c1 = h->resp[0];
    EXPECT(h, H_MAC_INIT, r, 3, KL_E_STATE); /* both MAC contexts busy */
    r[0] = c0;
    memcpy(r + 1, "Hi ", 3);
    EXPECT(h, H_MAC_UPDATE, r, 4, KL_OK);
    memset(r + 1, 0, 2001);
    EXPECT(h, H_MAC_UPDATE, r, 2002, KL_E_BAD_LENGTH); /* oversize: context unchanged */
    memcpy(r + 1, "There", 5);
    EXPECT(h, H_MAC_UPDATE, r, 6, KL_OK);
    memset(r + 1, 0, 33);
    EXPECT(h, H_MAC_FINISH, r, 34, KL_E_BAD_LENGTH); /* a tag longer than HMAC's */
    EXPECT(h, H_MAC_FINISH, r, 1, KL_OK);
    CHECK(h->rlen == 32 && memcmp(h->resp, tag, 32) == 0);
    EXPECT(h, H_MAC_UPDATE, r, 2, KL_E_STATE);
    /* checking a tag: leading bytes compared; a wrong tag ends the context */
    kl_put16(r, HMAC_KEY);
    r[2] = 0x20;
    EXPECT(h, H_MAC_INIT, r, 3, KL_OK);
    r[0] = h->resp[0];
    memcpy(r + 1, "Hi There", 8);
    EXPECT(h, H_MAC_UPDATE, r, 9, KL_OK);
    memcpy(r + 1, tag, 16);
    r[16] ^= 1;
    EXPECT(h, H_MAC_FINISH, r, 17, KL_E_BAD_TAG);
    CHECK(h->rlen == 0);
    EXPECT(h, H_MAC_FINISH, r, 17, KL_E_STATE);
    /* CMAC of the empty message, key 0: check then compute */
    r[0] = c1;
    EXPECT(h, H_MAC_FINISH, r, 1, KL_OK);
    CHECK(h->rlen == 16);
    memcpy(tag, h->resp, 16);
    kl_put16(r, CMAC_KEY);
    r[2] = 0x15;
    EXPECT(h, H_MAC_INIT, r, 3, KL_OK);
    r[0] = h->resp[0];
    memcpy(r + 1, tag, 16);
    EXPECT(h, H_MAC_FINISH, r, 18, KL_E_BAD_LENGTH); /* 17 > 16 */
    EXPECT(h, H_MAC_FINISH, r, 17, KL_OK);
    /* wrong usage / algorithm / type */
    kl_put16(r, HMAC_KEY);
    r[2] = 0x15;
    EXPECT(h, H_MAC_INIT, r, 3, KL_E_USAGE);
    r[2] = 0x14;
    EXPECT(h, H_MAC_INIT, r, 3, KL_E_BAD_PARAM);
    kl_put16(r, STORE_KEY);
    r[2] = 0x15;
    EXPECT(h, H_MAC_INIT, r, 3, KL_E_USAGE); /* an encryption key does not MAC */
    kl_put16(r, DATA_OBJ);
    EXPECT(h, H_MAC_INIT, r, 3, KL_E_WRONG_TYPE);
    EXPECT(h, H_MAC_INIT, r, 4, KL_E_BAD_LENGTH);
    r[0] = 2;
    EXPECT(h, H_MAC_UPDATE, r, 2, KL_E_BAD_PARAM);
}

/* CIPHER_INIT request; returns its length. */
static size_t ci_req(uint8_t *r, uint16_t id, uint8_t alg, uint8_t dir, uint8_t pad, size_t ivl,
                     size_t tagl, size_t total, size_t al)
{
    size_t n = 0;
    kl_put16(r, id);
    r[2] = alg;
    r[3] = dir;
    r[4] = pad;
    r[5] = (uint8_t)ivl;
    n = 6;
    memset(r + n, 0x11, ivl);
    n += ivl;
    r[n++] = (uint8_t)tagl;
    kl_put32(r + n, total);
    n += 4;
    kl_put16(r + n, al);
    n += 2;
    memset(r + n, 0x22, al);
    return n + al;
}

static void test_cipher(struct h_chip *h)
{
    static uint8_t pt[4200], ct[4200], out[4200], r[2100];
    for (size_t i = 0; i < sizeof(pt); i++)
        pt[i] = (uint8_t)(i * 7);
    CHECK(h_create_key(h, AES_GCM, 1, 16, 1, 0x02, 0x14) == KL_OK);
    CHECK(h_import(h, AES_GCM, aes_key16, 16) == KL_OK);
    CHECK(h_create_key(h, AES_CBC, 1, 32, 1, 0x02, 0x11) == KL_OK);
    CHECK(h_import(h, AES_CBC, pt, 32) == KL_OK);
    CHECK(h_create_key(h, AES_CCM, 1, 16, 1, 0x02, 0x13) == KL_OK);
    CHECK(h_import(h, AES_CCM, aes_key16, 16) == KL_OK);
    size_t n;

    /* parameter checks */
    n = ci_req(r, AES_GCM, 0x14, 3, 0, 12, 16, 0, 0);
    EXPECT(h, H_CIPHER_INIT, r, n, KL_E_BAD_PARAM); /* direction */
    n = ci_req(r, AES_GCM, 0x14, 1, 1, 12, 16, 0, 0);
    EXPECT(h, H_CIPHER_INIT, r, n, KL_E_BAD_PARAM); /* padding is CBC only */
    n = ci_req(r, AES_GCM, 0x14, 1, 0, 12, 16, 5, 0);
    EXPECT(h, H_CIPHER_INIT, r, n, KL_E_BAD_PARAM); /* total length is CCM only */
    n = ci_req(r, AES_GCM, 0x14, 1, 0, 12, 5, 0, 0);
    EXPECT(h, H_CIPHER_INIT, r, n, KL_E_BAD_PARAM); /* GCM tag of 5 bytes */
    n = ci_req(r, AES_GCM, 0x14, 1, 0, 0, 16, 0, 0);
    EXPECT(h, H_CIPHER_INIT, r, n, KL_E_BAD_PARAM); /* empty IV */
    n = ci_req(r, AES_CBC, 0x11, 1, 1, 16, 16, 0, 0);
    EXPECT(h, H_CIPHER_INIT, r, n, KL_E_BAD_PARAM); /* a tag for CBC */
    n = ci_req(r, AES_CBC, 0x11, 1, 1, 12, 0, 0, 0);
    EXPECT(h, H_CIPHER_INIT, r, n, KL_E_BAD_PARAM); /* CBC IV of 12 */
    n = ci_req(r, AES_GCM, 0x12, 1, 0, 12, 16, 0, 0);
    EXPECT(h, H_CIPHER_INIT, r, n, KL_E_BAD_PARAM); /* unknown algorithm */
    n = ci_req(r, AES_CCM, 0x13, 2, 0, 12, 16, 4097, 0);
    EXPECT(h, H_CIPHER_INIT, r, n, KL_E_BAD_LENGTH); /* CCM decrypt beyond what is held */
    n = ci_req(r, AES_GCM, 0x14, 1, 0, 12, 16, 0, 3);
    EXPECT(h, H_CIPHER_INIT, r, n - 1, KL_E_BAD_LENGTH); /* aad shorter than said */
    EXPECT(h, H_CIPHER_INIT, r, 5, KL_E_BAD_LENGTH);
    /* usage and type */
    n = ci_req(r, AES_GCM, 0x11, 1, 0, 16, 0, 0, 0);
    EXPECT(h, H_CIPHER_INIT, r, n, KL_E_USAGE); /* a GCM key is not a CBC key */
    n = ci_req(r, HMAC_KEY, 0x14, 1, 0, 12, 16, 0, 0);
    EXPECT(h, H_CIPHER_INIT, r, n, KL_E_USAGE);
    n = ci_req(r, DATA_OBJ, 0x14, 1, 0, 12, 16, 0, 0);
    EXPECT(h, H_CIPHER_INIT, r, n, KL_E_WRONG_TYPE);

    /* GCM encrypt of 3000 bytes in two chunks */
    n = ci_req(r, AES_GCM, 0x14, 1, 0, 12, 16, 0, 3);
    EXPECT(h, H_CIPHER_INIT, r, n, KL_OK);
    uint8_t c0 = h->resp[0];
    EXPECT(h, H_CIPHER_INIT, r, n, KL_OK);
    uint8_t c1 = h->resp[0];
    EXPECT(h, H_CIPHER_INIT, r, n, KL_E_STATE); /* both cipher contexts busy */
    r[0] = c1;
    EXPECT(h, H_CIPHER_FINISH, r, 1, KL_OK); /* empty GCM: just the tag */
    CHECK(h->rlen == 16);
    r[0] = c0;
    memcpy(r + 1, pt, 2033);
    EXPECT(h, H_CIPHER_UPDATE, r, 2034, KL_E_BAD_LENGTH); /* over 2032 */
    EXPECT(h, H_CIPHER_UPDATE, r, 2033, KL_OK);
    CHECK(h->rlen == 2032);
    memcpy(ct, h->resp, 2032);
    memcpy(r + 1, pt + 2032, 968);
    EXPECT(h, H_CIPHER_UPDATE, r, 969, KL_OK);
    CHECK(h->rlen == 968);
    memcpy(ct + 2032, h->resp, 968);
    EXPECT(h, H_CIPHER_FINISH, r, 1, KL_OK);
    CHECK(h->rlen == 16);
    memcpy(ct + 3000, h->resp, 16);
    EXPECT(h, H_CIPHER_UPDATE, r, 2, KL_E_STATE); /* finished */

    /* GCM decrypt: nothing before the tag; 3000 bytes come out as 2000 + 1000 */
    n = ci_req(r, AES_GCM, 0x14, 2, 0, 12, 16, 0, 3);
    EXPECT(h, H_CIPHER_INIT, r, n, KL_OK);
    c0 = h->resp[0];
    r[0] = c0;
    memcpy(r + 1, ct, 2032);
    EXPECT(h, H_CIPHER_UPDATE, r, 2033, KL_OK);
    CHECK(h->rlen == 0);
    memcpy(r + 1, ct + 2032, 968);
    EXPECT(h, H_CIPHER_UPDATE, r, 969, KL_OK);
    CHECK(h->rlen == 0);
    memcpy(r + 1, ct + 3000, 15);
    EXPECT(h, H_CIPHER_FINISH, r, 16, KL_E_BAD_LENGTH); /* tag of the wrong length */
    memcpy(r + 1, ct + 3000, 16);
    EXPECT(h, H_CIPHER_FINISH, r, 17, KL_OK);
    CHECK(h->rlen == 2000 && memcmp(h->resp, pt, 2000) == 0);
    EXPECT(h, H_CIPHER_UPDATE, r, 2, KL_E_STATE);       /* draining: no more data */
    EXPECT(h, H_CIPHER_FINISH, r, 17, KL_E_BAD_LENGTH); /* no tag this time */
    EXPECT(h, H_CIPHER_FINISH, r, 1, KL_OK);
    CHECK(h->rlen == 1000 && memcmp(h->resp, pt + 2000, 1000) == 0);
    EXPECT(h, H_CIPHER_FINISH, r, 1, KL_E_STATE); /* all out: the context is gone */

    /* exactly 2000 bytes: a full piece, then an empty last piece */
    n = ci_req(r, AES_GCM, 0x14, 1, 0, 12, 16, 0, 0);
    EXPECT(h, H_CIPHER_INIT, r, n, KL_OK);
    r[0] = h->resp[0];
    memcpy(r + 1, pt, 2000);
    EXPECT(h, H_CIPHER_UPDATE, r, 2001, KL_OK);
    memcpy(ct, h->resp, 2000);
    EXPECT(h, H_CIPHER_FINISH, r, 1, KL_OK);
    CHECK(h->rlen == 16);
    memcpy(ct + 2000, h->resp, 16);
    n = ci_req(r, AES_GCM, 0x14, 2, 0, 12, 16, 0, 0);
    EXPECT(h, H_CIPHER_INIT, r, n, KL_OK);
    r[0] = h->resp[0];
    memcpy(r + 1, ct, 2000);
    EXPECT(h, H_CIPHER_UPDATE, r, 2001, KL_OK);
    memcpy(r + 1, ct + 2000, 16);
    EXPECT(h, H_CIPHER_FINISH, r, 17, KL_OK);
    CHECK(h->rlen == 2000 && memcmp(h->resp, pt, 2000) == 0);
    EXPECT(h, H_CIPHER_FINISH, r, 1, KL_OK);
    CHECK(h->rlen == 0);
    EXPECT(h, H_CIPHER_FINISH, r, 1, KL_E_STATE);

    /* a bad tag releases nothing and ends the context */
    n = ci_req(r, AES_GCM, 0x14, 2, 0, 12, 16, 0, 3);
    EXPECT(h, H_CIPHER_INIT, r, n, KL_OK);
    r[0] = h->resp[0];
    memcpy(r + 1, ct, 100);
    EXPECT(h, H_CIPHER_UPDATE, r, 101, KL_OK);
    CHECK(h->rlen == 0);
    memcpy(r + 1, ct + 100, 2032);
    EXPECT(h, H_CIPHER_UPDATE, r, 2033, KL_OK);
    memcpy(r + 1, ct + 2132, 868);
    EXPECT(h, H_CIPHER_UPDATE, r, 869, KL_OK);
    memcpy(r + 1, ct + 3000, 16);
    r[16] ^= 0x40;
    EXPECT(h, H_CIPHER_FINISH, r, 17, KL_E_BAD_TAG);
    CHECK(h->rlen == 0);
    EXPECT(h, H_CIPHER_FINISH, r, 1, KL_E_STATE);
    /* the hold buffer is 4096 bytes */
    n = ci_req(r, AES_GCM, 0x14, 2, 0, 12, 16, 0, 0);
    EXPECT(h, H_CIPHER_INIT, r, n, KL_OK);
    r[0] = h->resp[0];
    EXPECT(h, H_CIPHER_UPDATE, r, 2033, KL_OK);
    EXPECT(h, H_CIPHER_UPDATE, r, 2033, KL_OK);
    EXPECT(h, H_CIPHER_UPDATE, r, 34, KL_E_BAD_LENGTH); /* 4064 + 33 > 4096 */
    EXPECT(h, H_CIPHER_UPDATE, r, 33, KL_OK);           /* exactly 4096 */
    EXPECT(h, H_CIPHER_UPDATE, r, 2, KL_E_BAD_LENGTH);
    EXPECT(h, H_CIPHER_FINISH, r, 17, KL_E_BAD_TAG); /* end it */

    /* CCM: exactly the announced length; the tag checks */
    n = ci_req(r, AES_CCM, 0x13, 1, 0, 13, 8, 40, 5);
    EXPECT(h, H_CIPHER_INIT, r, n, KL_OK);
    r[0] = h->resp[0];
    memcpy(r + 1, pt, 41);
    EXPECT(h, H_CIPHER_UPDATE, r, 42, KL_E_BAD_LENGTH); /* more than announced */
    EXPECT(h, H_CIPHER_UPDATE, r, 31, KL_OK);
    CHECK(h->rlen == 30);
    memcpy(ct, h->resp, 30);
    EXPECT(h, H_CIPHER_FINISH, r, 1, KL_E_BAD_LENGTH); /* 10 bytes missing: ends it */
    EXPECT(h, H_CIPHER_FINISH, r, 1, KL_E_STATE);

    /* CBC with PKCS#7 round trip (AES-256), then a wrong pad */
    n = ci_req(r, AES_CBC, 0x11, 1, 1, 16, 0, 0, 0);
    EXPECT(h, H_CIPHER_INIT, r, n, KL_OK);
    r[0] = h->resp[0];
    memcpy(r + 1, pt, 37);
    EXPECT(h, H_CIPHER_UPDATE, r, 38, KL_OK);
    size_t ol = h->rlen;
    memcpy(ct, h->resp, ol);
    EXPECT(h, H_CIPHER_FINISH, r, 1, KL_OK);
    memcpy(ct + ol, h->resp, h->rlen);
    ol += h->rlen;
    CHECK(ol == 48);
    n = ci_req(r, AES_CBC, 0x11, 2, 1, 16, 0, 0, 0);
    EXPECT(h, H_CIPHER_INIT, r, n, KL_OK);
    uint8_t cx = h->resp[0];
    r[0] = cx;
    memcpy(r + 1, ct, 48);
    EXPECT(h, H_CIPHER_UPDATE, r, 49, KL_OK);
    size_t got = h->rlen;
    memcpy(out, h->resp, got);
    EXPECT(h, H_CIPHER_FINISH, r, 1, KL_OK);
    memcpy(out + got, h->resp, h->rlen);
    got += h->rlen;
    CHECK(got == 37 && memcmp(out, pt, 37) == 0);
    n = ci_req(r, AES_CBC, 0x11, 2, 1, 16, 0, 0, 0);
    EXPECT(h, H_CIPHER_INIT, r, n, KL_OK);
    r[0] = h->resp[0];
    memcpy(r + 1, ct, 48);
    r[48] ^= 0x5A; /* the last byte of the last block: wrong pad */
    EXPECT(h, H_CIPHER_UPDATE, r, 49, KL_OK);
    EXPECT(h, H_CIPHER_FINISH, r, 1, KL_E_BAD_PARAM);
    /* out-of-sequence and unknown contexts */
    r[0] = 0;
    EXPECT(h, H_CIPHER_UPDATE, r, 2, KL_E_STATE);
    r[0] = 2;
    EXPECT(h, H_CIPHER_UPDATE, r, 2, KL_E_BAD_PARAM);
    EXPECT(h, H_CIPHER_FINISH, r, 0, KL_E_BAD_LENGTH);
    memset(out, 0, sizeof(out));
}

int main(void)
{
    struct h_chip h;
    if (!h_open(&h)) return 2;
    test_random(&h);
    test_md(&h);
    test_sign(&h);
    test_kex(&h);
    test_mac(&h);
    test_cipher(&h);
    h_close(&h);
    if (kl_fails) {
        fprintf(stderr, "test_crypto_cmds: %d checks failed\n", kl_fails);
        return 1;
    }
    printf("test_crypto_cmds: all checks passed\n");
    return 0;
}
