/*
 * Known-answer and failure-path tests of the host crypto (host/hcx_*.c): FIPS 180-4
 * SHA-256 examples, RFC 4231 HMAC, RFC 5869 HKDF, FIPS 197 AES, the GCM specification's
 * test cases, and P-256 points (1G, 2G, (n-1)G, RFC 6979's key).
 */
#include "kl_test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../hcx.h" /* private header of host/ */

static void test_sha256(void)
{
    uint8_t d[32];
    kl_hcx_sha256((const uint8_t *)"abc", 3, d);
    CHECK(kl_test_eqhex(d, 32, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"));
    kl_hcx_sha256(NULL, 0, d);
    CHECK(kl_test_eqhex(d, 32, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"));
    const char *m2 = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    kl_hcx_sha256((const uint8_t *)m2, strlen(m2), d);
    CHECK(kl_test_eqhex(d, 32, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"));
    /* One million 'a' fed in uneven pieces exercises the block buffering. */
    static uint8_t a[1000];
    memset(a, 'a', sizeof a);
    struct kl_hcx_sha256 s;
    kl_hcx_sha256_init(&s);
    size_t left = 1000000, step = 1;
    while (left) {
        size_t take = step < left ? step : left;
        if (take > sizeof a) take = sizeof a;
        kl_hcx_sha256_update(&s, a, take);
        left -= take;
        step = step * 7 % 997 + 1;
    }
    kl_hcx_sha256_final(&s, d);
    CHECK(kl_test_eqhex(d, 32, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"));
    /* Lengths around the padding boundary (55, 56, 63, 64) agree between one-shot and split. */
    for (size_t n = 50; n < 70; n++) {
        uint8_t one[32], two[32];
        kl_hcx_sha256(a, n, one);
        kl_hcx_sha256_init(&s);
        kl_hcx_sha256_update(&s, a, n / 3);
        kl_hcx_sha256_update(&s, a, n - n / 3);
        kl_hcx_sha256_final(&s, two);
        CHECK(memcmp(one, two, 32) == 0);
    }
}

static void test_hmac(void)
{
    static const struct {
        const char *key, *data, *tag;
    } v[] = {
        /* RFC 4231 test cases 1-4, 6, 7 (data in hex) */
        {"0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b", "4869205468657265",
         "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"},
        {"4a656665", "7768617420646f2079612077616e7420666f72206e6f7468696e673f",
         "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"},
        {"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
         "ddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd"
         "d"
         "dddddddddd",
         "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe"},
        {"0102030405060708090a0b0c0d0e0f10111213141516171819",
         "cdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdc"
         "d"
         "cdcdcdcdcd",
         "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b"},
    };
    uint8_t key[200], data[200], tag[32];
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        size_t kn = kl_test_unhex(v[i].key, key, sizeof key),
               dn = kl_test_unhex(v[i].data, data, sizeof data);
        kl_hcx_hmac_sha256(key, kn, data, dn, tag);
        CHECK(kl_test_eqhex(tag, 32, v[i].tag));
    }
    /* Case 5: truncated to 128 bits. */
    memset(key, 0x0c, 20);
    kl_hcx_hmac_sha256(key, 20, (const uint8_t *)"Test With Truncation", 20, tag);
    CHECK(kl_test_eqhex(tag, 16, "a3b6167473100ee06e0c796c2955552b"));
    /* Cases 6 and 7: a 131-byte key is hashed first. */
    memset(key, 0xaa, 131);
    const char *m6 = "Test Using Larger Than Block-Size Key - Hash Key First";
    kl_hcx_hmac_sha256(key, 131, (const uint8_t *)m6, strlen(m6), tag);
    CHECK(
        kl_test_eqhex(tag, 32, "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"));
    const char *m7 = "This is a test using a larger than block-size key and a larger than "
                     "block-size data. The key needs to be hashed before being used by the HMAC "
                     "algorithm.";
    struct kl_hcx_hmac h;
    kl_hcx_hmac_init(&h, key, 131);
    kl_hcx_hmac_update(&h, (const uint8_t *)m7, 10);
    kl_hcx_hmac_update(&h, (const uint8_t *)m7 + 10, strlen(m7) - 10);
    kl_hcx_hmac_final(&h, tag);
    CHECK(
        kl_test_eqhex(tag, 32, "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2"));
}

static void test_hkdf(void)
{
    uint8_t ikm[80], salt[80], info[80], okm[82];
    /* RFC 5869 A.1 */
    memset(ikm, 0x0b, 22);
    for (int i = 0; i < 13; i++)
        salt[i] = (uint8_t)i;
    for (int i = 0; i < 10; i++)
        info[i] = (uint8_t)(0xf0 + i);
    CHECK(kl_hcx_hkdf_sha256(salt, 13, ikm, 22, info, 10, okm, 42) == KL_OK);
    CHECK(kl_test_eqhex(okm, 42,
                        "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208"
                        "d5b887185865"));
    /* A.2: long inputs, 82 bytes out (three HMAC blocks). */
    for (int i = 0; i < 80; i++) {
        ikm[i] = (uint8_t)i;
        salt[i] = (uint8_t)(0x60 + i);
        info[i] = (uint8_t)(0xb0 + i);
    }
    CHECK(kl_hcx_hkdf_sha256(salt, 80, ikm, 80, info, 80, okm, 82) == KL_OK);
    CHECK(kl_test_eqhex(okm, 82,
                        "b11e398dc80327a1c8e7f78c596a49344f012eda2d4efad8a050cc4c19afa97c59045a99"
                        "cac7827271cb41c65e590e09da3275600c2f09b8367793a9aca3db71cc30c58179ec3e87"
                        "c14c01d5c1f3434f1d87"));
    /* A.3: no salt, no info. */
    memset(ikm, 0x0b, 22);
    CHECK(kl_hcx_hkdf_sha256(NULL, 0, ikm, 22, NULL, 0, okm, 42) == KL_OK);
    CHECK(kl_test_eqhex(okm, 42,
                        "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395"
                        "faa4b61a96c8"));
    /* Bad output lengths are refused. */
    static uint8_t big[255 * 32 + 1];
    CHECK(kl_hcx_hkdf_sha256(NULL, 0, ikm, 22, NULL, 0, big, 0) == KL_E_ARG);
    CHECK(kl_hcx_hkdf_sha256(NULL, 0, ikm, 22, NULL, 0, big, sizeof big) == KL_E_ARG);
    CHECK(kl_hcx_hkdf_sha256(NULL, 0, ikm, 22, NULL, 0, NULL, 32) == KL_E_ARG);
    CHECK(kl_hcx_hkdf_sha256(NULL, 0, ikm, 22, NULL, 0, big, sizeof big - 1) == KL_OK);
}

static void test_aes(void)
{
    struct kl_hcx_aes a;
    uint8_t key[32], in[16], out[16];
    /* FIPS 197 appendix B and C.1, C.3 */
    kl_test_unhex("2b7e151628aed2a6abf7158809cf4f3c", key, 16);
    kl_test_unhex("3243f6a8885a308d313198a2e0370734", in, 16);
    CHECK(kl_hcx_aes_init(&a, key, 16) == KL_OK);
    kl_hcx_aes_encrypt(&a, in, out);
    CHECK(kl_test_eqhex(out, 16, "3925841d02dc09fbdc118597196a0b32"));
    for (int i = 0; i < 32; i++)
        key[i] = (uint8_t)i;
    kl_test_unhex("00112233445566778899aabbccddeeff", in, 16);
    CHECK(kl_hcx_aes_init(&a, key, 16) == KL_OK);
    kl_hcx_aes_encrypt(&a, in, out);
    CHECK(kl_test_eqhex(out, 16, "69c4e0d86a7b0430d8cdb78070b4c55a"));
    CHECK(kl_hcx_aes_init(&a, key, 32) == KL_OK);
    kl_hcx_aes_encrypt(&a, in, in); /* in place */
    CHECK(kl_test_eqhex(in, 16, "8ea2b7ca516745bfeafc49904b496089"));
    /* AES-192 and odd sizes are refused. */
    CHECK(kl_hcx_aes_init(&a, key, 24) == KL_E_ARG);
    CHECK(kl_hcx_aes_init(&a, key, 0) == KL_E_ARG);
    CHECK(kl_hcx_aes_init(&a, NULL, 16) == KL_E_ARG);
}

static void test_gcm(void)
{
    uint8_t key[32] = {0}, iv[16] = {0}, pt[64] = {0}, ct[64], tag[16], back[64], aad[20];
    /* GCM specification test cases 1, 2 and 14. */
    CHECK(kl_hcx_gcm_seal(key, 16, iv, 12, NULL, 0, NULL, 0, NULL, tag) == KL_OK);
    CHECK(kl_test_eqhex(tag, 16, "58e2fccefa7e3061367f1d57a4e7455a"));
    CHECK(kl_hcx_gcm_seal(key, 16, iv, 12, NULL, 0, pt, 16, ct, tag) == KL_OK);
    CHECK(kl_test_eqhex(ct, 16, "0388dace60b6a392f328c2b971b2fe78"));
    CHECK(kl_test_eqhex(tag, 16, "ab6e47d42cec13bdf53a67b21257bddf"));
    CHECK(kl_hcx_gcm_seal(key, 32, iv, 12, NULL, 0, pt, 16, ct, tag) == KL_OK);
    CHECK(kl_test_eqhex(ct, 16, "cea7403d4d606b6e074ec5d3baf39d18"));
    CHECK(kl_test_eqhex(tag, 16, "d0d1c8a799996bf0265b98b5d48ab919"));
    /* Test cases 4 and 16: aad and a partial last block. */
    kl_test_unhex("feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308", key, 32);
    kl_test_unhex("cafebabefacedbaddecaf888", iv, 12);
    size_t n =
        kl_test_unhex("d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c95956"
                      "809532fcf0e2449a6b525b16aedf5aa0de657ba637b39",
                      pt, sizeof pt);
    kl_test_unhex("feedfacedeadbeeffeedfacedeadbeefabaddad2", aad, 20);
    CHECK(kl_hcx_gcm_seal(key, 16, iv, 12, aad, 20, pt, n, ct, tag) == KL_OK);
    CHECK(kl_test_eqhex(ct, n,
                        "42831ec2217774244b7221b784d0d49ce3aa212f2c02a4e035c17e2329aca12e21d514b254"
                        "66931c7d8f6a5aac84aa051ba30b396a0aac973d58e091"));
    CHECK(kl_test_eqhex(tag, 16, "5bc94fbc3221a5db94fae95ae7121a47"));
    CHECK(kl_hcx_gcm_open(key, 16, iv, 12, aad, 20, ct, n, tag, back) == KL_OK);
    CHECK(memcmp(back, pt, n) == 0);
    CHECK(kl_hcx_gcm_seal(key, 32, iv, 12, aad, 20, pt, n, ct, tag) == KL_OK);
    CHECK(kl_test_eqhex(ct, n,
                        "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa8cb08e4859"
                        "0dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662"));
    CHECK(kl_test_eqhex(tag, 16, "76fc6ece0f4e1768cddf8853bb2d551b"));
    /* Every single-bit change of aad, ciphertext or tag is refused, and nothing leaks. */
    for (size_t bit = 0; bit < 8 * (20 + n + 16); bit += 7) {
        uint8_t a2[20], c2[64], t2[16];
        memcpy(a2, aad, 20);
        memcpy(c2, ct, n);
        memcpy(t2, tag, 16);
        size_t byte = bit / 8;
        uint8_t m = (uint8_t)(1u << (bit % 8));
        if (byte < 20)
            a2[byte] ^= m;
        else if (byte < 20 + n)
            c2[byte - 20] ^= m;
        else
            t2[byte - 20 - n] ^= m;
        memset(back, 0xa5, sizeof back);
        CHECK(kl_hcx_gcm_open(key, 32, iv, 12, a2, 20, c2, n, t2, back) == KL_E_BAD_TAG);
        for (size_t i = 0; i < n; i++)
            CHECK(back[i] == 0);
    }
    /* In place both ways. */
    memcpy(back, pt, n);
    CHECK(kl_hcx_gcm_seal(key, 32, iv, 12, aad, 20, back, n, back, tag) == KL_OK);
    CHECK(memcmp(back, ct, n) == 0);
    CHECK(kl_hcx_gcm_open(key, 32, iv, 12, aad, 20, back, n, tag, back) == KL_OK);
    CHECK(memcmp(back, pt, n) == 0);
    /* Refused by design: IVs other than 12 bytes, AES-192, missing buffers. */
    CHECK(kl_hcx_gcm_seal(key, 32, iv, 16, NULL, 0, pt, n, ct, tag) == KL_E_ARG);
    CHECK(kl_hcx_gcm_seal(key, 32, iv, 8, NULL, 0, pt, n, ct, tag) == KL_E_ARG);
    CHECK(kl_hcx_gcm_seal(key, 24, iv, 12, NULL, 0, pt, n, ct, tag) == KL_E_ARG);
    CHECK(kl_hcx_gcm_seal(key, 32, iv, 12, NULL, 5, pt, n, ct, tag) == KL_E_ARG);
    CHECK(kl_hcx_gcm_seal(key, 32, iv, 12, NULL, 0, NULL, n, ct, tag) == KL_E_ARG);
    CHECK(kl_hcx_gcm_open(key, 32, iv, 12, NULL, 0, ct, n, NULL, back) == KL_E_ARG);
}

static kl_status rng_ff(void *ctx, uint8_t *out, size_t n)
{
    (void)ctx;
    memset(out, 0xff, n);
    return KL_OK;
}

static kl_status rng_fail(void *ctx, uint8_t *out, size_t n)
{
    (void)ctx;
    (void)out;
    (void)n;
    return KL_E_IO;
}

/* Gives 0, then n, then a fixed good scalar: keygen must skip the two bad draws. */
static kl_status rng_seq(void *ctx, uint8_t *out, size_t n)
{
    int *k = ctx;
    if (*k == 0)
        memset(out, 0, n);
    else if (*k == 1)
        kl_test_unhex("ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551", out, 32);
    else
        kl_test_unhex("c9afa9d845ba75166b5c215767b1d6934e50c3db36e89b127b8a622b120f6721", out, 32);
    (*k)++;
    return KL_OK;
}

static void test_p256(void)
{
    uint8_t k[32] = {0}, pub[64], priv[32], s1[32], s2[32];
    const char *g = "6b17d1f2e12c4247f8bce6e563a440f277037d812deb33a0f4a13945d898c296"
                    "4fe342e2fe1a7f9b8ee7eb4a7c0f9e162bce33576b315ececbb6406837bf51f5";
    k[31] = 1;
    CHECK(kl_hcx_p256_pub(k, pub) == KL_OK);
    CHECK(kl_test_eqhex(pub, 64, g));
    k[31] = 2;
    CHECK(kl_hcx_p256_pub(k, pub) == KL_OK);
    CHECK(kl_test_eqhex(pub, 64,
                        "7cf27b188d034f7e8a52380304b51ac3c08969e277f21b35a60b48fc47669978"
                        "07775510db8ed040293d9ac69f7430dbba7dade63ce982299e04b79d227873d1"));
    /* (n-1)G = -G = (Gx, p - Gy) */
    kl_test_unhex("ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632550", k, 32);
    CHECK(kl_hcx_p256_pub(k, pub) == KL_OK);
    CHECK(kl_test_eqhex(pub, 64,
                        "6b17d1f2e12c4247f8bce6e563a440f277037d812deb33a0f4a13945d898c296"
                        "b01cbd1c01e58065711814b583f061e9d431cca994cea1313449bf97c840ae0a"));
    /* RFC 6979 A.2.5 key pair */
    kl_test_unhex("c9afa9d845ba75166b5c215767b1d6934e50c3db36e89b127b8a622b120f6721", k, 32);
    CHECK(kl_hcx_p256_pub(k, pub) == KL_OK);
    CHECK(kl_test_eqhex(pub, 64,
                        "60fed4ba255a9d31c961eb74c6356d68c049b8923b61fa6ce669622e60f29fb6"
                        "7903fe1008b8bc99a41ae9e95628bc64f2f1b20c2d7e9f5177a3c294d4462299"));
    CHECK(kl_hcx_p256_check_pub(pub) == KL_OK);
    /* Scalars 0 and n are refused. */
    memset(k, 0, 32);
    CHECK(kl_hcx_p256_pub(k, pub) == KL_E_BAD_KEY);
    kl_test_unhex("ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551", k, 32);
    CHECK(kl_hcx_p256_pub(k, pub) == KL_E_BAD_KEY);
    /* ECDH agrees both ways: a * (bG) == b * (aG). */
    int seq = 0;
    CHECK(kl_hcx_p256_keygen(rng_seq, &seq, priv, pub) == KL_OK);
    CHECK(seq == 3);
    CHECK(
        kl_test_eqhex(pub, 32, "60fed4ba255a9d31c961eb74c6356d68c049b8923b61fa6ce669622e60f29fb6"));
    uint8_t k2[32], pub2[64];
    memset(k2, 0x42, 32);
    CHECK(kl_hcx_p256_pub(k2, pub2) == KL_OK);
    CHECK(kl_hcx_p256_ecdh(priv, pub2, s1) == KL_OK);
    CHECK(kl_hcx_p256_ecdh(k2, pub, s2) == KL_OK);
    CHECK(memcmp(s1, s2, 32) == 0);
    /* Bad peer points: off the curve, coordinate >= p, all zero. */
    uint8_t bad[64];
    memcpy(bad, pub2, 64);
    bad[63] ^= 1;
    CHECK(kl_hcx_p256_check_pub(bad) == KL_E_BAD_KEY);
    CHECK(kl_hcx_p256_ecdh(priv, bad, s1) == KL_E_BAD_KEY);
    for (int i = 0; i < 32; i++)
        CHECK(s1[i] == 0);
    memset(bad, 0, 64);
    CHECK(kl_hcx_p256_ecdh(priv, bad, s1) == KL_E_BAD_KEY);
    /* x = Gx + p does not fit; x = p with y of G is out of range */
    kl_test_unhex("ffffffff00000001000000000000000000000000ffffffffffffffffffffffff", bad, 32);
    CHECK(kl_hcx_p256_check_pub(bad) == KL_E_BAD_KEY);
    memset(k2, 0, 32);
    CHECK(kl_hcx_p256_ecdh(k2, pub, s1) == KL_E_BAD_KEY);
    /* Broken random sources. */
    CHECK(kl_hcx_p256_keygen(rng_ff, NULL, priv, pub) == KL_E_INTERNAL);
    CHECK(kl_hcx_p256_keygen(rng_fail, NULL, priv, pub) == KL_E_IO);
    CHECK(kl_hcx_p256_keygen(NULL, NULL, priv, pub) == KL_E_ARG);
}

static void test_util(void)
{
    uint8_t a[5] = {1, 2, 3, 4, 5}, b[5] = {1, 2, 3, 4, 5};
    CHECK(kl_hcx_ct_equal(a, b, 5) == 1);
    for (int i = 0; i < 5; i++) {
        for (int bit = 0; bit < 8; bit++) {
            b[i] ^= (uint8_t)(1u << bit);
            CHECK(kl_hcx_ct_equal(a, b, 5) == 0);
            b[i] ^= (uint8_t)(1u << bit);
        }
    }
    CHECK(kl_hcx_ct_equal(a, b, 0) == 1);
    kl_hcx_wipe(a, 5);
    CHECK(a[0] == 0 && a[4] == 0);
    kl_hcx_wipe(NULL, 5);
}

int main(void)
{
    test_sha256();
    test_hmac();
    test_hkdf();
    test_aes();
    test_gcm();
    test_p256();
    test_util();
    if (kl_fails) {
        fprintf(stderr, "%d check(s) failed\n", kl_fails);
        return 1;
    }
    printf("hcx known answers ok\n");
    return 0;
}
