/* JWT/JWS: base64/base64url against RFC 4648 vectors and strict decoding; the RFC 7515
 * appendix A.3 ES256 example verifies with our parser through the chip's VERIFY_WITH_KEY
 * (and a changed byte does not); chip-signed JWTs are verified by OpenSSL (an independent
 * implementation) and by our own parser, with exact header/claims JSON; refusals. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>

#include "keylink/jwt.h"
#include "keylink/se.h"
#include "transport_mem.h"

static int fails;
#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c)) {                                                                                \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #c);                  \
            fails++;                                                                               \
        }                                                                                          \
    } while (0)

static void test_base64(void)
{
    static const char *in[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
    static const char *std[] = {"", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};
    static const char *url[] = {"", "Zg", "Zm8", "Zm9v", "Zm9vYg", "Zm9vYmE", "Zm9vYmFy"};
    for (int i = 0; i < 7; i++) {
        char out[32];
        uint8_t dec[32];
        size_t n, d;
        size_t l = strlen(in[i]);
        CHECK(kl_base64_encode((const uint8_t *)in[i], l, out, sizeof out, &n) == KL_OK &&
              !strcmp(out, std[i]) && n == strlen(std[i]) && n == KL_B64_LEN(l));
        CHECK(kl_base64url_encode((const uint8_t *)in[i], l, out, sizeof out, &n) == KL_OK &&
              !strcmp(out, url[i]) && n == KL_B64URL_LEN(l));
        CHECK(kl_base64_decode(std[i], strlen(std[i]), dec, sizeof dec, &d) == KL_OK && d == l &&
              !memcmp(dec, in[i], l));
        CHECK(kl_base64url_decode(url[i], strlen(url[i]), dec, sizeof dec, &d) == KL_OK && d == l &&
              !memcmp(dec, in[i], l));
        /* exact-size output buffer: the NUL must fit too */
        CHECK(kl_base64_encode((const uint8_t *)in[i], l, out, strlen(std[i]), &n) == KL_E_BUFFER);
        if (l) CHECK(kl_base64url_decode(url[i], strlen(url[i]), dec, l - 1, &d) == KL_E_BUFFER);
    }
    /* all 256 byte values survive both alphabets */
    uint8_t all[256], back[256];
    char enc[400];
    size_t n, d;
    for (int i = 0; i < 256; i++)
        all[i] = (uint8_t)i;
    CHECK(kl_base64url_encode(all, 256, enc, sizeof enc, &n) == KL_OK && !strpbrk(enc, "+/="));
    CHECK(kl_base64url_decode(enc, n, back, sizeof back, &d) == KL_OK && d == 256 &&
          !memcmp(all, back, 256));
    CHECK(kl_base64_encode(all, 256, enc, sizeof enc, &n) == KL_OK && !strpbrk(enc, "-_"));
    CHECK(kl_base64_decode(enc, n, back, sizeof back, &d) == KL_OK && d == 256);
    static const char *bad_url[] = {"Zg==", "Z", "Zh", "Zm9v+", "Zm9v/", "Zm 9v", "Zm9v\n", "Z==="};
    for (size_t i = 0; i < sizeof bad_url / sizeof bad_url[0]; i++)
        CHECK(kl_base64url_decode(bad_url[i], strlen(bad_url[i]), back, sizeof back, &d) ==
              KL_E_PEER);
    static const char *bad_std[] = {"Zg", "Zg=", "Zh==", "Zm9v-", "=Zm9", "Zm=v", "Zg==Zg=="};
    for (size_t i = 0; i < sizeof bad_std / sizeof bad_std[0]; i++)
        CHECK(kl_base64_decode(bad_std[i], strlen(bad_std[i]), back, sizeof back, &d) == KL_E_PEER);
}

static void test_json(void)
{
    char v[16];
    const char *j = " { \"typ\" : \"JWT\", \"x\":{\"alg\":\"no\",\"a\":[1,{\"b\":\"}\"}]}, "
                    "\"alg\":\"ES256\" } ";
    CHECK(kl_json_get_string((const uint8_t *)j, strlen(j), "alg", v, sizeof v) == KL_OK &&
          !strcmp(v, "ES256"));
    CHECK(kl_json_get_string((const uint8_t *)j, strlen(j), "nope", v, sizeof v) == KL_E_NOT_FOUND);
    CHECK(kl_json_get_string((const uint8_t *)j, strlen(j), "typ", v, 3) == KL_E_BUFFER);
    static const struct {
        const char *j;
        kl_status want;
    } c[] = {{"{\"alg\":\"ES256\",\"alg\":\"none\"}", KL_E_PEER},
             {"{\"alg\":1}", KL_E_WRONG_TYPE},
             {"{\"alg\":\"ES\\u0032\"}", KL_E_UNSUPPORTED},
             {"[\"alg\",\"ES256\"]", KL_E_PEER},
             {"{\"alg\":\"ES256\"", KL_E_PEER},
             {"{\"alg\":\"ES256\"} x", KL_E_PEER},
             {"{\"alg\" \"ES256\"}", KL_E_PEER},
             {"{}", KL_E_NOT_FOUND},
             {"", KL_E_PEER}};
    for (size_t i = 0; i < sizeof c / sizeof c[0]; i++)
        CHECK(kl_json_get_string((const uint8_t *)c[i].j, strlen(c[i].j), "alg", v, sizeof v) ==
              c[i].want);
}

/* RFC 7515 appendix A.3: the ES256 example (key and token as published). */
static const char a3_jws[] =
    "eyJhbGciOiJFUzI1NiJ9"
    ".eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlf"
    "Q"
    ".DtEhU3ljbEg8L38VWAfUAqOyKAM6-Xx-F4GawxaepmXFCgfTjDxw5djxLa8ISlSApmWQxfKTUJqPP3-Kg6NU1Q";
static const char a3_x[] = "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU";
static const char a3_y[] = "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0";

static void test_rfc7515(struct kl_se *se)
{
    uint8_t pub[64], buf[512];
    size_t n;
    CHECK(kl_base64url_decode(a3_x, strlen(a3_x), pub, 32, &n) == KL_OK && n == 32);
    CHECK(kl_base64url_decode(a3_y, strlen(a3_y), pub + 32, 32, &n) == KL_OK && n == 32);
    struct kl_jws_parts p;
    CHECK(kl_jws_parse(a3_jws, strlen(a3_jws), buf, sizeof buf, &p) == KL_OK);
    CHECK(p.header_len == 15 && !memcmp(p.header, "{\"alg\":\"ES256\"}", 15));
    static const char a3_payload[] =
        "{\"iss\":\"joe\",\r\n \"exp\":1300819380,\r\n \"http://example.com/is_root\":true}";
    CHECK(p.payload_len == strlen(a3_payload) && !memcmp(p.payload, a3_payload, p.payload_len));
    CHECK(p.signing_len == strlen(a3_jws) - 87);
    CHECK(kl_jws_verify(se, a3_jws, strlen(a3_jws), &p, pub) == KL_OK);
    /* one character of the payload changed: the chip says no */
    char t[sizeof a3_jws];
    memcpy(t, a3_jws, sizeof a3_jws);
    t[30] = t[30] == 'A' ? 'B' : 'A';
    CHECK(kl_jws_parse(t, strlen(t), buf, sizeof buf, &p) == KL_OK);
    CHECK(kl_jws_verify(se, t, strlen(t), &p, pub) == KL_E_VERIFY_FAILED);
    /* another key: no */
    memcpy(t, a3_jws, sizeof a3_jws);
    CHECK(kl_jws_parse(t, strlen(t), buf, sizeof buf, &p) == KL_OK);
    pub[63] ^= 1;
    CHECK(kl_jws_verify(se, t, strlen(t), &p, pub) != KL_OK);
    /* malformed tokens */
    static const char *bad[] = {"a.b",
                                "a.b.c.d",
                                ".eyJ9.AAAA",
                                "eyJhbGciOiJFUzI1NiJ9.e30.",
                                "eyJhbGciOiJFUzI1NiJ9.e30.AAAA",
                                "eyJhbGciOiJFUzI1NiJ9.e3=.AA",
                                "e30.e30.DtEhU3ljbEg8L38VWAfUAqOyKAM6-Xx-"
                                "F4GawxaepmXFCgfTjDxw5djxLa8ISlSApmWQxfKTUJqPP3-Kg6NU1Q"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        CHECK(kl_jws_parse(bad[i], strlen(bad[i]), buf, sizeof buf, &p) == KL_E_PEER);
    /* alg none / HS256: refused as unsupported */
    char none[300];
    snprintf(none, sizeof none, "eyJhbGciOiJub25lIn0.e30.%s", strrchr(a3_jws, '.') + 1);
    CHECK(kl_jws_parse(none, strlen(none), buf, sizeof buf, &p) == KL_E_UNSUPPORTED);
    snprintf(none, sizeof none, "eyJhbGciOiJIUzI1NiJ9.e30.%s", strrchr(a3_jws, '.') + 1);
    CHECK(kl_jws_parse(none, strlen(none), buf, sizeof buf, &p) == KL_E_UNSUPPORTED);
    CHECK(kl_jws_parse(a3_jws, strlen(a3_jws), buf, 20, &p) == KL_E_BUFFER);
}

/* OpenSSL verifies an ES256 JWS made with the chip key whose public half is pub. */
static int openssl_verify(const char *jws, size_t signing_len, const uint8_t sig[64],
                          const uint8_t pub[64])
{
    uint8_t pt[65] = {4};
    memcpy(pt + 1, pub, 64);
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0);
    OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, pt, sizeof pt);
    OSSL_PARAM *params = OSSL_PARAM_BLD_to_param(bld);
    EVP_PKEY_CTX *pc = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
    EVP_PKEY *key = NULL;
    EVP_PKEY_fromdata_init(pc);
    EVP_PKEY_fromdata(pc, &key, EVP_PKEY_PUBLIC_KEY, params);
    ECDSA_SIG *es = ECDSA_SIG_new();
    ECDSA_SIG_set0(es, BN_bin2bn(sig, 32, NULL), BN_bin2bn(sig + 32, 32, NULL));
    unsigned char *der = NULL;
    int dl = i2d_ECDSA_SIG(es, &der);
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    int ok = key && dl > 0 && EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, key) == 1 &&
             EVP_DigestVerify(md, der, (size_t)dl, (const unsigned char *)jws, signing_len) == 1;
    EVP_MD_CTX_free(md);
    OPENSSL_free(der);
    ECDSA_SIG_free(es);
    EVP_PKEY_free(key);
    EVP_PKEY_CTX_free(pc);
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(bld);
    return ok;
}

static void test_sign(struct kl_se *se)
{
    struct kl_se_object_attr a;
    memset(&a, 0, sizeof a);
    a.id = 0x1104;
    a.type = KL_SE_OBJ_KEY_PAIR;
    a.props = KL_SE_PROP_PERSISTENT;
    a.size = 96;
    CHECK(kl_se_rules_parse("ahsex=rwdgx:ahsex=rwdgx:ahsex=rwdgx", a.rules) == KL_OK);
    a.key_type = KL_SE_KEY_ECC_P256;
    a.usage1 = KL_SE_USAGE_SIGN;
    a.alg1 = KL_SE_ALG_ECDSA_SHA256;
    a.usage2 = KL_SE_USAGE_UNUSED;
    CHECK(kl_se_create_object(se, &a) == KL_OK);
    uint8_t pub[64];
    CHECK(kl_se_generate_key(se, 0x1104, pub) == KL_OK);

    uint8_t der[301];
    for (size_t i = 0; i < sizeof der; i++)
        der[i] = (uint8_t)(i * 7 + 3);
    uint8_t nonce[32];
    for (int i = 0; i < 32; i++)
        nonce[i] = (uint8_t)(0xF0 + i);
    struct kl_jwt_claims cl = {.iss = "me",
                               .sub = "dev\"1\\",
                               .aud = "keylink.example",
                               .jti = "j\n",
                               .iat = 1700000000,
                               .exp = 1700003600,
                               .nonce = nonce,
                               .nonce_len = 32};
    static char tok[4096];
    size_t n;
    CHECK(kl_jwt_sign(se, 0x1104, &cl, der, sizeof der, tok, sizeof tok, &n) == KL_OK);
    CHECK(n == strlen(tok));
    uint8_t buf[4096];
    struct kl_jws_parts p;
    CHECK(kl_jws_parse(tok, n, buf, sizeof buf, &p) == KL_OK);
    CHECK(kl_jws_verify(se, tok, n, &p, pub) == KL_OK);
    CHECK(openssl_verify(tok, p.signing_len, p.sig, pub));
    /* the exact JSON: x5c is standard base64 of the DER, nonce base64url */
    char x5c[500], nb[50], want[1200];
    EVP_EncodeBlock((unsigned char *)x5c, der, sizeof der);
    size_t nl;
    CHECK(kl_base64url_encode(nonce, 32, nb, sizeof nb, &nl) == KL_OK);
    snprintf(want, sizeof want, "{\"alg\":\"ES256\",\"typ\":\"JWT\",\"x5c\":[\"%s\"]}", x5c);
    CHECK(p.header_len == strlen(want) && !memcmp(p.header, want, p.header_len));
    snprintf(
        want, sizeof want,
        "{\"iss\":\"me\",\"sub\":\"dev\\\"1\\\\\",\"aud\":\"keylink.example\",\"iat\":1700000000,"
        "\"exp\":1700003600,\"jti\":\"j\\u000a\",\"nonce\":\"%s\"}",
        nb);
    CHECK(p.payload_len == strlen(want) && !memcmp(p.payload, want, p.payload_len));
    /* a JWT without x5c and optional claims; two signatures of the same input differ
     * (ECDSA is randomized) and both verify */
    struct kl_jwt_claims c2 = {.aud = "a", .iat = 5};
    char t2[512], t3[512];
    size_t n2, n3;
    CHECK(kl_jwt_sign(se, 0x1104, &c2, NULL, 0, t2, sizeof t2, &n2) == KL_OK);
    CHECK(kl_jwt_sign(se, 0x1104, &c2, NULL, 0, t3, sizeof t3, &n3) == KL_OK);
    CHECK(n2 == n3 && strcmp(t2, t3) != 0);
    CHECK(kl_jws_parse(t2, n2, buf, sizeof buf, &p) == KL_OK && p.payload_len == 19 &&
          !memcmp(p.payload, "{\"aud\":\"a\",\"iat\":5}", 19) &&
          openssl_verify(t2, p.signing_len, p.sig, pub));
    /* every short output buffer: KL_E_BUFFER, no signature spent past the check */
    for (size_t cap = 0; cap < n2 + 1; cap += 7)
        CHECK(kl_jwt_sign(se, 0x1104, &c2, NULL, 0, t3, cap, &n3) == KL_E_BUFFER);
    CHECK(kl_jwt_sign(se, 0x1104, &c2, NULL, 0, t3, n2 + 1, &n3) == KL_OK && n3 == n2);
    /* the chip's refusals come through: no such key, a key without sign usage */
    CHECK(kl_jwt_sign(se, 0x1199, &c2, NULL, 0, t3, sizeof t3, &n3) == KL_E_NOT_FOUND);
    CHECK(kl_jwt_sign(se, 0x1104, NULL, NULL, 0, t3, sizeof t3, &n3) == KL_E_ARG);
}

int main(void)
{
    test_base64();
    test_json();
    char dir[] = "/tmp/kl-jwt-XXXXXX";
    if (!mkdtemp(dir)) return 1;
    char uri[64];
    snprintf(uri, sizeof uri, "mem:%s", dir);
    CHECK(kl_se_mem_register() == KL_OK);
    static struct kl_se se;
    kl_status st = kl_se_open(&se, uri);
    CHECK(st == KL_OK);
    if (st == KL_OK) {
        test_rfc7515(&se);
        test_sign(&se);
        kl_se_close(&se);
    }
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd)) fails++;
    if (fails) {
        fprintf(stderr, "%d check(s) failed\n", fails);
        return 1;
    }
    printf("jwt ok\n");
    return 0;
}
