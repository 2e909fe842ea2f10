/* Known-answer and failure tests of the chip's crypto toolbox (se/cx.h). */
#include "kl_test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cx.h"

static void test_sha(void)
{
    uint8_t d[32], e[32];
    CHECK(kl_cx_sha256((const uint8_t *)"abc", 3, d) == KL_OK);
    CHECK(kl_test_eqhex(d, 32, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"));
    struct kl_cx_sha256 h;
    CHECK(kl_cx_sha256_init(&h) == KL_OK);
    CHECK(kl_cx_sha256_update(&h, (const uint8_t *)"ab", 2) == KL_OK);
    CHECK(kl_cx_sha256_peek(&h, e) == KL_OK);
    CHECK(kl_cx_sha256((const uint8_t *)"ab", 2, d) == KL_OK);
    CHECK(memcmp(d, e, 32) == 0);
    CHECK(kl_cx_sha256_update(&h, (const uint8_t *)"c", 1) == KL_OK);
    CHECK(kl_cx_sha256_final(&h, e) == KL_OK);
    CHECK(kl_test_eqhex(e, 32, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"));
    CHECK(h.md == NULL);
}

static void test_mac(void)
{
    uint8_t t[32];
    size_t tl = 0;
    const char *msg = "what do ya want for nothing?";
    /* RFC 4231 test case 2 */
    CHECK(kl_cx_hmac_sha256((const uint8_t *)"Jefe", 4, (const uint8_t *)msg, strlen(msg), t) ==
          KL_OK);
    CHECK(kl_test_eqhex(t, 32, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"));
    /* RFC 4493 example 1 (empty message) and 2 */
    uint8_t k[16], m[16];
    kl_test_unhex("2b7e151628aed2a6abf7158809cf4f3c", k, sizeof k);
    kl_test_unhex("6bc1bee22e409f96e93d7e117393172a", m, sizeof m);
    struct kl_cx_mac c;
    CHECK(kl_cx_mac_init(&c, KL_CX_AES_CMAC, k, 16) == KL_OK);
    CHECK(kl_cx_mac_final(&c, t, sizeof(t), &tl) == KL_OK && tl == 16);
    CHECK(kl_test_eqhex(t, 16, "bb1d6929e95937287fa37d129b756746"));
    CHECK(kl_cx_mac_init(&c, KL_CX_AES_CMAC, k, 16) == KL_OK);
    CHECK(kl_cx_mac_update(&c, m, 7) == KL_OK && kl_cx_mac_update(&c, m + 7, 9) == KL_OK);
    CHECK(kl_cx_mac_final(&c, t, sizeof(t), &tl) == KL_OK && tl == 16);
    CHECK(kl_test_eqhex(t, 16, "070a16b46b4d4144f79bdd9dd04a287c"));
    /* AES-192 and other sizes are not chip keys */
    CHECK(kl_cx_mac_init(&c, KL_CX_AES_CMAC, k, 24) == KL_E_BAD_KEY);
    CHECK(kl_cx_mac_init(&c, KL_CX_HMAC_SHA256, k, 0) == KL_E_BAD_KEY);
    CHECK(kl_cx_mac_init(&c, (enum kl_cx_mac_alg)9, k, 16) == KL_E_BAD_PARAM);
    /* a too-small tag buffer fails and still frees the context */
    CHECK(kl_cx_mac_init(&c, KL_CX_HMAC_SHA256, k, 16) == KL_OK);
    CHECK(kl_cx_mac_final(&c, t, 16, &tl) == KL_E_BAD_LENGTH && tl == 0 && c.ctx == NULL);
}

/* One-shot helper: runs a whole cipher operation in chunks of `chunk` bytes. */
static kl_status run_cipher(enum kl_cx_aes_mode mode, int enc, int pkcs7, const char *key,
                            const char *iv, size_t tag_len, const char *aad, const uint8_t *in,
                            size_t n, const uint8_t *tag, size_t chunk, uint8_t *out,
                            size_t *outlen)
{
    uint8_t k[32], v[32], a[64];
    size_t kl = kl_test_unhex(key, k, sizeof k), vl = kl_test_unhex(iv, v, sizeof v),
           al = kl_test_unhex(aad, a, sizeof a);
    struct kl_cx_cipher c;
    kl_status st = kl_cx_cipher_init(&c, mode, enc, pkcs7, k, kl, vl ? v : NULL, vl, tag_len, n,
                                     al ? a : NULL, al);
    if (st != KL_OK) return st;
    size_t off = 0, o = 0;
    while (off < n) {
        size_t k2 = n - off < chunk ? n - off : chunk, got = 0;
        st = kl_cx_cipher_update(&c, in + off, k2, out + o, 256, &got);
        if (st != KL_OK) {
            kl_cx_cipher_free(&c);
            return st;
        }
        off += k2;
        o += got;
    }
    size_t got = 0;
    st = kl_cx_cipher_final(&c, tag, tag ? tag_len : 0, out + o, 256, &got);
    *outlen = o + got;
    return st;
}

static void test_aes(void)
{
    uint8_t pt[64], out[512], back[512];
    size_t n, on = 0, bn = 0;
    /* SP 800-38A F.1.1 ECB-AES128 and F.2.1 CBC-AES128 (first block) */
    n = kl_test_unhex("6bc1bee22e409f96e93d7e117393172a", pt, sizeof pt);
    CHECK(run_cipher(KL_CX_ECB, 1, 0, "2b7e151628aed2a6abf7158809cf4f3c", "", 0, "", pt, n, NULL, 5,
                     out, &on) == KL_OK);
    CHECK(kl_test_eqhex(out, on, "3ad77bb40d7a3660a89ecaf32466ef97"));
    CHECK(run_cipher(KL_CX_CBC, 1, 0, "2b7e151628aed2a6abf7158809cf4f3c",
                     "000102030405060708090a0b0c0d0e0f", 0, "", pt, n, NULL, 16, out,
                     &on) == KL_OK);
    CHECK(kl_test_eqhex(out, on, "7649abac8119b246cee98e9b12e9197d"));
    /* CBC with PKCS#7 round trip, odd chunking; a bad pad is refused */
    for (size_t i = 0; i < 37; i++)
        pt[i] = (uint8_t)i;
    CHECK(run_cipher(
              KL_CX_CBC, 1, 1, "000102030405060708090a0b0c0d0e0f000102030405060708090a0b0c0d0e0f",
              "0f0e0d0c0b0a09080706050403020100", 0, "", pt, 37, NULL, 7, out, &on) == KL_OK);
    CHECK(on == 48);
    CHECK(run_cipher(
              KL_CX_CBC, 0, 1, "000102030405060708090a0b0c0d0e0f000102030405060708090a0b0c0d0e0f",
              "0f0e0d0c0b0a09080706050403020100", 0, "", out, on, NULL, 11, back, &bn) == KL_OK);
    CHECK(bn == 37 && memcmp(back, pt, 37) == 0);
    out[on - 1] ^= 0x55;
    CHECK(run_cipher(KL_CX_CBC, 0, 1,
                     "000102030405060708090a0b0c0d0e0f000102030405060708090a0b0c0d0e0f",
                     "0f0e0d0c0b0a09080706050403020100", 0, "", out, on, NULL, 16, back,
                     &bn) == KL_E_BAD_PARAM);
    /* no padding: a partial block is a length error */
    CHECK(run_cipher(KL_CX_CBC, 1, 0, "2b7e151628aed2a6abf7158809cf4f3c",
                     "000102030405060708090a0b0c0d0e0f", 0, "", pt, 15, NULL, 16, out,
                     &on) == KL_E_BAD_LENGTH);
    /* GCM, the classic test case 2 of the GCM spec */
    memset(pt, 0, 16);
    CHECK(run_cipher(KL_CX_GCM, 1, 0, "00000000000000000000000000000000",
                     "000000000000000000000000", 16, "", pt, 16, NULL, 16, out, &on) == KL_OK);
    CHECK(
        kl_test_eqhex(out, on, "0388dace60b6a392f328c2b971b2fe78ab6e47d42cec13bdf53a67b21257bddf"));
    CHECK(run_cipher(KL_CX_GCM, 0, 0, "00000000000000000000000000000000",
                     "000000000000000000000000", 16, "", out, 16, out + 16, 3, back, &bn) == KL_OK);
    CHECK(bn == 16 && memcmp(back, pt, 16) == 0);
    out[16] ^= 1;
    CHECK(run_cipher(KL_CX_GCM, 0, 0, "00000000000000000000000000000000",
                     "000000000000000000000000", 16, "", out, 16, out + 16, 16, back,
                     &bn) == KL_E_BAD_TAG);
    /* CCM, RFC 3610 packet vector 1 (8-byte tag, 8 bytes of aad, 23 bytes of data) */
    for (size_t i = 0; i < 31; i++)
        pt[i] = (uint8_t)i;
    CHECK(run_cipher(KL_CX_CCM, 1, 0, "c0c1c2c3c4c5c6c7c8c9cacbcccdcecf",
                     "00000003020100a0a1a2a3a4a5", 8, "0001020304050607", pt + 8, 23, NULL, 4, out,
                     &on) == KL_OK);
    CHECK(kl_test_eqhex(out, on, "588c979a61c663d2f066d0c2c0f989806d5f6b61dac38417e8d12cfdf926e0"));
    CHECK(run_cipher(KL_CX_CCM, 0, 0, "c0c1c2c3c4c5c6c7c8c9cacbcccdcecf",
                     "00000003020100a0a1a2a3a4a5", 8, "0001020304050607", out, 23, out + 23, 10,
                     back, &bn) == KL_OK);
    CHECK(bn == 23 && memcmp(back, pt + 8, 23) == 0);
    out[30] ^= 0x80;
    CHECK(run_cipher(KL_CX_CCM, 0, 0, "c0c1c2c3c4c5c6c7c8c9cacbcccdcecf",
                     "00000003020100a0a1a2a3a4a5", 8, "0001020304050607", out, 23, out + 23, 23,
                     back, &bn) == KL_E_BAD_TAG);
    /* CCM needs exactly the announced length */
    {
        uint8_t k[16] = {0}, nn[12] = {0};
        struct kl_cx_cipher c;
        size_t got;
        CHECK(kl_cx_cipher_init(&c, KL_CX_CCM, 1, 0, k, 16, nn, 12, 16, 10, NULL, 0) == KL_OK);
        CHECK(kl_cx_cipher_update(&c, pt, 11, out, sizeof(out), &got) == KL_E_BAD_LENGTH);
        CHECK(kl_cx_cipher_update(&c, pt, 9, out, sizeof(out), &got) == KL_OK && got == 9);
        CHECK(kl_cx_cipher_final(&c, NULL, 0, out, sizeof(out), &got) == KL_E_BAD_LENGTH);
        CHECK(c.ctx == NULL);
    }
    /* parameters outside what the chip does */
    {
        uint8_t k[32] = {0}, v[16] = {0};
        struct kl_cx_cipher c;
        CHECK(kl_cx_cipher_init(&c, KL_CX_GCM, 1, 0, k, 24, v, 12, 16, 0, NULL, 0) == KL_E_BAD_KEY);
        CHECK(kl_cx_cipher_init(&c, KL_CX_GCM, 1, 0, k, 16, v, 0, 16, 0, NULL, 0) ==
              KL_E_BAD_PARAM);
        CHECK(kl_cx_cipher_init(&c, KL_CX_GCM, 1, 0, k, 16, v, 12, 5, 0, NULL, 0) ==
              KL_E_BAD_PARAM);
        CHECK(kl_cx_cipher_init(&c, KL_CX_CCM, 1, 0, k, 16, v, 6, 16, 0, NULL, 0) ==
              KL_E_BAD_PARAM);
        CHECK(kl_cx_cipher_init(&c, KL_CX_CCM, 1, 0, k, 16, v, 14, 16, 0, NULL, 0) ==
              KL_E_BAD_PARAM);
        CHECK(kl_cx_cipher_init(&c, KL_CX_CCM, 1, 0, k, 16, v, 12, 7, 0, NULL, 0) ==
              KL_E_BAD_PARAM);
        CHECK(kl_cx_cipher_init(&c, KL_CX_CBC, 1, 0, k, 16, v, 12, 0, 0, NULL, 0) ==
              KL_E_BAD_PARAM);
        CHECK(kl_cx_cipher_init(&c, KL_CX_ECB, 1, 1, k, 16, NULL, 0, 0, 0, NULL, 0) ==
              KL_E_BAD_PARAM);
        /* 13-byte nonce leaves a 2-byte length field: 65536 bytes do not fit */
        CHECK(kl_cx_cipher_init(&c, KL_CX_CCM, 1, 0, k, 16, v, 13, 16, 65536, NULL, 0) ==
              KL_E_BAD_LENGTH);
    }
}

static void test_ec(void)
{
    struct kl_cx_drbg *d = NULL;
    CHECK(kl_cx_drbg_new((const uint8_t *)"test", 4, &d) == KL_OK);
    uint8_t r1[5000], r2[32];
    CHECK(kl_cx_drbg_generate(d, r1, sizeof(r1)) == KL_OK);
    CHECK(kl_cx_drbg_generate(d, r2, sizeof(r2)) == KL_OK);
    CHECK(memcmp(r1, r2, 32) != 0);

    uint8_t one[32] = {0}, pub[64], priv[32], priv2[32], pub2[64];
    one[31] = 1;
    CHECK(kl_cx_ec_pub_from_priv(one, pub) == KL_OK);
    CHECK(kl_test_eqhex(pub, 64,
                        "6b17d1f2e12c4247f8bce6e563a440f277037d812deb33a0f4a13945d898c296"
                        "4fe342e2fe1a7f9b8ee7eb4a7c0f9e162bce33576b315ececbb6406837bf51f5"));
    CHECK(kl_cx_ec_check_pub(pub) == KL_OK);
    uint8_t bad[64];
    memcpy(bad, pub, 64);
    bad[63] ^= 1;
    CHECK(kl_cx_ec_check_pub(bad) == KL_E_BAD_KEY);
    uint8_t n[32];
    kl_test_unhex("ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551", n, sizeof n);
    CHECK(kl_cx_ec_pub_from_priv(n, pub2) == KL_E_BAD_KEY);
    memset(priv, 0, 32);
    CHECK(kl_cx_ec_pub_from_priv(priv, pub2) == KL_E_BAD_KEY);
    n[31] = 0x50; /* n - 1 is the largest scalar */
    CHECK(kl_cx_ec_pub_from_priv(n, pub2) == KL_OK);

    CHECK(kl_cx_ec_keygen(d, priv, pub) == KL_OK);
    CHECK(kl_cx_ec_keygen(d, priv2, pub2) == KL_OK);
    uint8_t dig[32], sig[64], der[80], raw[64];
    size_t dl = 0;
    CHECK(kl_cx_sha256((const uint8_t *)"hello", 5, dig) == KL_OK);
    CHECK(kl_cx_ecdsa_sign(d, priv, dig, sig) == KL_OK);
    CHECK(kl_cx_ecdsa_verify(pub, dig, sig) == KL_OK);
    CHECK(kl_cx_ecdsa_verify(pub2, dig, sig) == KL_E_VERIFY_FAILED);
    CHECK(kl_cx_ecdsa_verify(bad, dig, sig) == KL_E_BAD_KEY);
    dig[0] ^= 1;
    CHECK(kl_cx_ecdsa_verify(pub, dig, sig) == KL_E_VERIFY_FAILED);
    CHECK(kl_cx_sig_raw_to_der(sig, der, sizeof(der), &dl) == KL_OK);
    CHECK(kl_cx_sig_der_to_raw(der, dl, raw) == KL_OK && memcmp(raw, sig, 64) == 0);
    CHECK(kl_cx_sig_raw_to_der(sig, der, 8, &dl) == KL_E_BAD_LENGTH);
    /* non-minimal length form and trailing bytes are refused */
    uint8_t lax[80];
    CHECK(kl_cx_sig_raw_to_der(sig, der, sizeof(der), &dl) == KL_OK);
    CHECK(dl < 0x80);
    lax[0] = 0x30;
    lax[1] = 0x81;
    lax[2] = der[1];
    memcpy(lax + 3, der + 2, dl - 2);
    CHECK(kl_cx_sig_der_to_raw(lax, dl + 1, raw) == KL_E_BAD_PARAM);
    memcpy(lax, der, dl);
    lax[dl] = 0;
    CHECK(kl_cx_sig_der_to_raw(lax, dl + 1, raw) == KL_E_BAD_PARAM);
    /* zero r verifies as nothing */
    memset(sig, 0, 32);
    CHECK(kl_cx_ecdsa_verify(pub, dig, sig) == KL_E_VERIFY_FAILED);

    uint8_t z1[32], z2[32];
    CHECK(kl_cx_ecdh(priv, pub2, z1) == KL_OK);
    CHECK(kl_cx_ecdh(priv2, pub, z2) == KL_OK);
    CHECK(memcmp(z1, z2, 32) == 0);
    CHECK(kl_cx_ecdh(priv, bad, z1) == KL_E_BAD_KEY);

    uint8_t sec1[65], spki[91], out[64];
    sec1[0] = 4;
    memcpy(sec1 + 1, pub, 64);
    CHECK(kl_cx_ec_decode_sec1(sec1, 65, out) == KL_OK && memcmp(out, pub, 64) == 0);
    sec1[0] = 6 | (pub[63] & 1); /* hybrid form: same length, refused */
    CHECK(kl_cx_ec_decode_sec1(sec1, 65, out) == KL_E_BAD_KEY);
    sec1[0] = 2 | (pub[63] & 1);
    CHECK(kl_cx_ec_decode_sec1(sec1, 33, out) == KL_E_BAD_KEY); /* compressed: refused */
    kl_test_unhex("3059301306072a8648ce3d020106082a8648ce3d030107034200", spki, sizeof spki);
    spki[26] = 4;
    memcpy(spki + 27, pub, 64);
    CHECK(kl_cx_ec_decode_spki(spki, 91, out) == KL_OK && memcmp(out, pub, 64) == 0);
    spki[1] = 0x5a;
    CHECK(kl_cx_ec_decode_spki(spki, 91, out) == KL_E_BAD_KEY);
    CHECK(kl_cx_ec_decode_spki(spki, 90, out) == KL_E_BAD_KEY);
    kl_cx_drbg_free(d);

    CHECK(kl_cx_ct_equal((const uint8_t *)"abc", (const uint8_t *)"abc", 3) == 1);
    CHECK(kl_cx_ct_equal((const uint8_t *)"abc", (const uint8_t *)"abd", 3) == 0);
}

int main(void)
{
    test_sha();
    test_mac();
    test_aes();
    test_ec();
    if (kl_fails) {
        fprintf(stderr, "test_cx: %d checks failed\n", kl_fails);
        return 1;
    }
    printf("test_cx: all checks passed\n");
    return 0;
}
