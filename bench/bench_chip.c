/*
 * kl-bench-chip: what the chip model costs. Operations per second through the public kl_se_*
 * API (include/keylink/se.h) over one transport (mem: in-process or unix: to keylink-se),
 * and the same operations done directly with OpenSSL in the same process, same run.
 *
 *   kl-bench-chip URI [SECONDS_PER_OP]      URI: mem:DIR (fresh directory) or unix:PATH
 *
 * Prints one line per operation: `op=NAME chip=OPS_PER_S openssl=OPS_PER_S`. Each loop stops
 * after SECONDS_PER_OP (default 0.5) or 1,000,000 operations. The objects it creates
 * (0x3A00..0x3A02) are deleted at the end.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>

#include "keylink/se.h"
#include "transport_mem.h"

#define ID_SIGN 0x3A00
#define ID_ECDH 0x3A01
#define ID_AES 0x3A02
#define MAX_OPS 1000000L

static struct kl_se se;
static double budget = 0.5;
static uint8_t kib[1024], digest[32], sig[64], peer[64], key16[16], iv[12];

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void fail(const char *what, kl_status st)
{
    fprintf(stderr, "kl-bench-chip: %s: %s\n", what, kl_status_name(st));
    exit(1);
}

typedef int (*op_fn)(void);

/* Runs fn until the time budget or MAX_OPS; ops per second, exits on the first failure. */
static double rate(const char *name, op_fn fn)
{
    long n = 0;
    double t0 = now_s(), t = t0;
    while (n < MAX_OPS && t - t0 < budget) {
        if (fn()) {
            fprintf(stderr, "kl-bench-chip: %s failed\n", name);
            exit(1);
        }
        n++;
        if ((n & 7) == 0) t = now_s();
    }
    t = now_s();
    return (double)n / (t - t0);
}

/* ---- through the chip ---- */

static int chip_sign(void)
{
    size_t l = 0;
    return kl_se_sign(&se, ID_SIGN, KL_SE_SIG_RAW, KL_SE_INPUT_DIGEST, digest, 32, sig, sizeof sig,
                      &l) != KL_OK;
}
static int chip_verify(void)
{
    return kl_se_verify(&se, ID_SIGN, KL_SE_SIG_RAW, KL_SE_INPUT_DIGEST, sig, 64, digest, 32) !=
           KL_OK;
}
static int chip_ecdh(void)
{
    uint8_t s[32];
    return kl_se_ecdh(&se, ID_ECDH, KL_SE_POINT_XY, peer, 64, s) != KL_OK;
}
static int chip_sha(void)
{
    uint8_t d[32];
    return kl_se_sha256(&se, kib, sizeof kib, d) != KL_OK;
}
static int chip_gcm(void)
{
    static uint8_t out[1024 + 64];
    uint8_t ctx;
    size_t o1 = 0, o2 = 0;
    struct kl_se_cipher_params p = {.key_id = ID_AES,
                                    .alg = KL_SE_ALG_AES_GCM,
                                    .dir = KL_SE_CIPHER_ENCRYPT,
                                    .iv = iv,
                                    .iv_len = 12,
                                    .tag_len = 16};
    if (kl_se_cipher_init(&se, &p, &ctx) != KL_OK) return 1;
    if (kl_se_cipher_update(&se, ctx, kib, sizeof kib, out, sizeof out, &o1) != KL_OK) return 1;
    return kl_se_cipher_finish(&se, ctx, NULL, 0, out + o1, sizeof out - o1, &o2) != KL_OK;
}

/* ---- OpenSSL directly ---- */

static EVP_PKEY *ossl_key, *ossl_peer;
static EVP_PKEY_CTX *sign_ctx, *verify_ctx;
static uint8_t ossl_sig[80];
static size_t ossl_sig_len;

static int ossl_sign(void)
{
    ossl_sig_len = sizeof ossl_sig;
    return EVP_PKEY_sign(sign_ctx, ossl_sig, &ossl_sig_len, digest, 32) != 1;
}
static int ossl_verify(void)
{
    return EVP_PKEY_verify(verify_ctx, ossl_sig, ossl_sig_len, digest, 32) != 1;
}
static int ossl_ecdh(void)
{
    /* like the chip: a fresh exchange with the peer's point each time */
    uint8_t s[32];
    size_t l = sizeof s;
    EVP_PKEY_CTX *c = EVP_PKEY_CTX_new(ossl_key, NULL);
    int bad = !c || EVP_PKEY_derive_init(c) != 1 || EVP_PKEY_derive_set_peer(c, ossl_peer) != 1 ||
              EVP_PKEY_derive(c, s, &l) != 1;
    EVP_PKEY_CTX_free(c);
    return bad;
}
static int ossl_sha(void)
{
    uint8_t d[32];
    return EVP_Digest(kib, sizeof kib, d, NULL, EVP_sha256(), NULL) != 1;
}
static int ossl_gcm(void)
{
    static uint8_t out[1024 + 32];
    uint8_t tag[16];
    int l1 = 0, l2 = 0;
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    int bad = !c || EVP_EncryptInit_ex(c, EVP_aes_128_gcm(), NULL, key16, iv) != 1 ||
              EVP_EncryptUpdate(c, out, &l1, kib, sizeof kib) != 1 ||
              EVP_EncryptFinal_ex(c, out + l1, &l2) != 1 ||
              EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, 16, tag) != 1;
    EVP_CIPHER_CTX_free(c);
    return bad;
}

static struct kl_se_object_attr attr(uint16_t id, uint8_t type, uint16_t size)
{
    struct kl_se_object_attr a;
    memset(&a, 0, sizeof a);
    a.id = id;
    a.type = type;
    a.props = KL_SE_PROP_PERSISTENT;
    a.size = size;
    if (kl_se_rules_parse("ahsex=rwdgx:ahsex=rwdgx:ahsex=rwdgx", a.rules) != KL_OK)
        fail("rules", KL_E_ARG);
    a.usage1 = a.usage2 = KL_SE_USAGE_UNUSED;
    return a;
}

static void setup_chip(void)
{
    kl_status st;
    for (uint16_t id = ID_SIGN; id <= ID_AES; id++)
        (void)kl_se_delete_object(&se, id); /* left over by an interrupted run */
    struct kl_se_object_attr a = attr(ID_SIGN, KL_SE_OBJ_KEY_PAIR, 96);
    a.key_type = KL_SE_KEY_ECC_P256;
    a.usage1 = KL_SE_USAGE_SIGN;
    a.alg1 = KL_SE_ALG_ECDSA_SHA256;
    if ((st = kl_se_create_object(&se, &a)) != KL_OK) fail("create signing key", st);
    if ((st = kl_se_generate_key(&se, ID_SIGN, peer)) != KL_OK) fail("generate signing key", st);
    struct kl_se_object_attr x = attr(ID_ECDH, KL_SE_OBJ_KEY_PAIR, 96);
    x.key_type = KL_SE_KEY_ECC_P256;
    x.usage1 = KL_SE_USAGE_KEY_EXCHANGE;
    x.alg1 = KL_SE_ALG_ECDH;
    if ((st = kl_se_create_object(&se, &x)) != KL_OK) fail("create ECDH key", st);
    if ((st = kl_se_generate_key(&se, ID_ECDH, NULL)) != KL_OK) fail("generate ECDH key", st);
    struct kl_se_object_attr g = attr(ID_AES, KL_SE_OBJ_SECRET_KEY, 16);
    g.key_type = KL_SE_KEY_AES;
    g.usage1 = KL_SE_USAGE_ENCRYPT;
    g.alg1 = KL_SE_ALG_AES_GCM;
    if ((st = kl_se_create_object(&se, &g)) != KL_OK) fail("create AES key", st);
    if ((st = kl_se_import_key(&se, ID_AES, key16, 16, NULL)) != KL_OK) fail("import AES key", st);
    if (chip_sign()) fail("first signature", KL_E_INTERNAL);
}

static void setup_openssl(void)
{
    ossl_key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    ossl_peer = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    sign_ctx = EVP_PKEY_CTX_new(ossl_key, NULL);
    verify_ctx = EVP_PKEY_CTX_new(ossl_key, NULL);
    if (!ossl_key || !ossl_peer || !sign_ctx || !verify_ctx || EVP_PKEY_sign_init(sign_ctx) != 1 ||
        EVP_PKEY_verify_init(verify_ctx) != 1 || ossl_sign()) {
        fprintf(stderr, "kl-bench-chip: OpenSSL set-up failed\n");
        exit(1);
    }
}

int main(int argc, char **argv)
{
    if (argc < 2 || argc > 3) {
        fprintf(stderr, "usage: kl-bench-chip mem:DIR|unix:PATH [SECONDS_PER_OP]\n");
        return 2;
    }
    if (argc == 3) budget = atof(argv[2]);
    if (budget <= 0 || budget > 10) budget = 0.5;
    for (size_t i = 0; i < sizeof kib; i++)
        kib[i] = (uint8_t)(i * 7 + 1);
    for (size_t i = 0; i < 32; i++)
        digest[i] = (uint8_t)(i * 13 + 5);
    kl_status st = kl_se_mem_register();
    if (st != KL_OK) fail("mem transport", st);
    if ((st = kl_se_open(&se, argv[1])) != KL_OK) fail("open", st);
    setup_chip();
    setup_openssl();
    static const struct {
        const char *name;
        op_fn chip, ossl;
    } ops[] = {
        {"ecdsa_sign", chip_sign, ossl_sign}, {"ecdsa_verify", chip_verify, ossl_verify},
        {"ecdh", chip_ecdh, ossl_ecdh},       {"sha256_1k", chip_sha, ossl_sha},
        {"aes128gcm_1k", chip_gcm, ossl_gcm},
    };
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++) {
        double c = rate(ops[i].name, ops[i].chip);
        double o = rate(ops[i].name, ops[i].ossl);
        printf("op=%s chip=%.0f openssl=%.0f\n", ops[i].name, c, o);
        fflush(stdout);
    }
    for (uint16_t id = ID_SIGN; id <= ID_AES; id++)
        (void)kl_se_delete_object(&se, id);
    kl_se_close(&se);
    EVP_PKEY_CTX_free(sign_ctx);
    EVP_PKEY_CTX_free(verify_ctx);
    EVP_PKEY_free(ossl_key);
    EVP_PKEY_free(ossl_peer);
    return 0;
}
