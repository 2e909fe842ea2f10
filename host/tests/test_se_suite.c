/*
 * The chip API end to end: one command suite, run with the same body over `mem:DIR`
 * (model in-process), `unix:PATH` (a real keylink-se daemon), and `unix:PATH` again
 * inside the secure channel (every command wrapped by the channel hook). Expected
 * values are published known answers (FIPS 180-2, RFC 4231, the GCM spec) or checks
 * the chip cannot fake (a signature that verifies and stops verifying when flipped).
 */
#include "kl_test_se.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "keylink/channel.h"
#include "keylink/se.h"
#include "transport_mem.h"

static struct kl_se se;
static int in_channel; /* the current run goes through the secure channel */
static uint8_t digest_4500[32];
static int have_digest_4500;

static void management(void)
{
    static uint8_t big[KL_FRAME_MAX_PAYLOAD];
    for (size_t i = 0; i < sizeof big; i++)
        big[i] = (uint8_t)(i * 31 + 7);
    OK(kl_se_ping(&se, NULL, 0));
    /* a full frame both ways (inside the channel the tag and inner byte take 17) */
    OK(kl_se_ping(&se, big, in_channel ? KL_SE_CHANNEL_MAX_INNER : sizeof big));
    if (in_channel) CHECK_ST(kl_se_ping(&se, big, KL_SE_CHANNEL_MAX_INNER + 1), KL_E_BAD_LENGTH);

    struct kl_se_status s;
    OK(kl_se_status(&se, &s));
    CHECK(s.total_bytes == 8192 && s.free_bytes <= 8192 && s.lifecycle == KL_SE_LC_DELIVERY);
    CHECK(!strcmp(s.name, "MAXQ1065-KL"));
    uint8_t zero[24] = {0};
    CHECK(memcmp(s.serial, zero, 24) != 0);
    CHECK(!!(s.session & 2) == in_channel);

    struct kl_se_config c;
    OK(kl_se_get_config(&se, &c));
    uint8_t ch1[16], ch2[16];
    OK(kl_se_get_challenge(&se, ch1));
    OK(kl_se_get_challenge(&se, ch2));
    CHECK(memcmp(ch1, ch2, 16) != 0);
    uint8_t junk_sig[64] = {1};
    CHECK(kl_se_admin_auth(&se, 0x1001, junk_sig) != KL_OK); /* no admin key / bad sig */
    CHECK_ST(kl_se_set_lifecycle(&se, KL_SE_LC_INITIALIZED), KL_E_AUTH_REQUIRED);
    OK(kl_se_kick(&se));
}

static void objects(void)
{
    static uint8_t data[5000], back[5000];
    for (size_t i = 0; i < sizeof data; i++)
        data[i] = (uint8_t)(i ^ (i >> 8));
    struct kl_se_object_attr a = kl_test_attr(0x3000, KL_SE_OBJ_DATA, 5000);
    struct kl_se_status s0, s1;
    OK(kl_se_status(&se, &s0));
    OK(kl_se_create_object(&se, &a));
    CHECK_ST(kl_se_create_object(&se, &a), KL_E_EXISTS);
    OK(kl_se_status(&se, &s1));
    CHECK(s1.free_bytes < s0.free_bytes - 5000 + 1);

    /* 5000 bytes: three chunks each way */
    OK(kl_se_write_object(&se, 0x3000, 0, data, sizeof data));
    size_t n = 0;
    OK(kl_se_read_object(&se, 0x3000, back, sizeof back, &n));
    CHECK(n == sizeof data && !memcmp(back, data, n));
    OK(kl_se_read_object_at(&se, 0x3000, 4000, back, 1000));
    CHECK(!memcmp(back, data + 4000, 1000));
    CHECK_ST(kl_se_read_object_at(&se, 0x3000, 4001, back, 1000), KL_E_OUT_OF_RANGE);
    CHECK_ST(kl_se_write_object(&se, 0x3000, 4990, data, 11), KL_E_OUT_OF_RANGE);
    CHECK_ST(kl_se_read_object(&se, 0x3000, back, 100, &n), KL_E_BUFFER);

    struct kl_se_object_info in;
    OK(kl_se_object_info(&se, 0x3000, &in));
    CHECK(in.attr.type == KL_SE_OBJ_DATA && in.attr.size == 5000 && in.used == 5000);
    CHECK(in.write_count >= 3 && !memcmp(in.attr.rules, a.rules, 9));

    struct kl_se_object_attr ctr = kl_test_attr(0x3001, KL_SE_OBJ_UP_COUNTER, 4);
    ctr.initial = 5;
    OK(kl_se_create_object(&se, &ctr));
    uint32_t v = 0;
    OK(kl_se_counter_update(&se, 0x3001, 3, &v));
    CHECK(v == 8);
    OK(kl_se_counter_read(&se, 0x3001, &v));
    CHECK(v == 8);
    CHECK_ST(kl_se_counter_read(&se, 0x3000, &v), KL_E_WRONG_TYPE);

    struct kl_se_list_entry e[64];
    OK(kl_se_list(&se, e, 64, &n));
    int seen = 0;
    for (size_t i = 0; i < n; i++) {
        if (i) CHECK(e[i].id > e[i - 1].id);
        if (e[i].id == 0x3000) seen += e[i].type == KL_SE_OBJ_DATA && e[i].size == 5000;
        if (e[i].id == 0x3001) seen += e[i].type == KL_SE_OBJ_UP_COUNTER;
    }
    CHECK(seen == 2);
    size_t k = 0;
    OK(kl_se_list_page(&se, 0x3001, e, 64, &k));
    CHECK(k >= 1 && e[0].id == 0x3001);

    OK(kl_se_delete_object(&se, 0x3000));
    CHECK_ST(kl_se_delete_object(&se, 0x3000), KL_E_NOT_FOUND);
    CHECK_ST(kl_se_read_object(&se, 0x3000, back, sizeof back, &n), KL_E_NOT_FOUND);
    OK(kl_se_delete_object(&se, 0x3001));
    struct kl_se_status s2;
    OK(kl_se_status(&se, &s2));
    CHECK(s2.free_bytes == s0.free_bytes);
}

static void ecdsa(void)
{
    struct kl_se_object_attr a = kl_test_attr(0x3004, KL_SE_OBJ_KEY_PAIR, 96);
    a.key_type = KL_SE_KEY_ECC_P256;
    a.usage1 = KL_SE_USAGE_SIGN;
    a.alg1 = KL_SE_ALG_ECDSA_SHA256;
    OK(kl_se_create_object(&se, &a));
    uint8_t pub[64], pub2[64];
    OK(kl_se_generate_key(&se, 0x3004, pub));
    OK(kl_se_get_public_key(&se, 0x3004, pub2));
    CHECK(!memcmp(pub, pub2, 64));
    size_t n = 0;
    uint8_t whole[64];
    OK(kl_se_read_object(&se, 0x3004, whole, sizeof whole, &n)); /* public half only */
    CHECK(n == 64 && !memcmp(whole, pub, 64));

    const uint8_t msg[] = "keylink chip suite";
    uint8_t sig[80], der[80];
    size_t sl = 0, dl = 0;
    OK(kl_se_sign(&se, 0x3004, KL_SE_SIG_RAW, KL_SE_INPUT_MESSAGE, msg, sizeof msg, sig, sizeof sig,
                  &sl));
    CHECK(sl == 64);
    OK(kl_se_verify(&se, 0x3004, KL_SE_SIG_RAW, KL_SE_INPUT_MESSAGE, sig, sl, msg, sizeof msg));
    OK(kl_se_verify_with_key(&se, pub, KL_SE_SIG_RAW, KL_SE_INPUT_MESSAGE, sig, sl, msg,
                             sizeof msg));
    sig[10] ^= 1;
    CHECK_ST(
        kl_se_verify(&se, 0x3004, KL_SE_SIG_RAW, KL_SE_INPUT_MESSAGE, sig, sl, msg, sizeof msg),
        KL_E_VERIFY_FAILED);
    /* digest input equals the message input for the same SHA-256 */
    uint8_t d[32];
    OK(kl_se_sha256(&se, msg, sizeof msg, d));
    OK(kl_se_sign(&se, 0x3004, KL_SE_SIG_DER, KL_SE_INPUT_DIGEST, d, 32, der, sizeof der, &dl));
    CHECK(dl >= 8 && dl <= 72 && der[0] == 0x30);
    OK(kl_se_verify(&se, 0x3004, KL_SE_SIG_DER, KL_SE_INPUT_MESSAGE, der, dl, msg, sizeof msg));

    /* ECDH of the key with its own public key: the chip accepts the point; a point off
     * the curve is refused */
    uint8_t shared[32];
    struct kl_se_object_attr x = kl_test_attr(0x3005, KL_SE_OBJ_KEY_PAIR, 96);
    x.key_type = KL_SE_KEY_ECC_P256;
    x.usage1 = KL_SE_USAGE_KEY_EXCHANGE;
    x.alg1 = KL_SE_ALG_ECDH;
    OK(kl_se_create_object(&se, &x));
    uint8_t xpub[64], s1[32], s2[32];
    OK(kl_se_generate_key(&se, 0x3005, xpub));
    OK(kl_se_ecdh(&se, 0x3005, KL_SE_POINT_XY, pub, 64, s1));
    uint8_t sec1[65] = {0x04};
    memcpy(sec1 + 1, pub, 64);
    OK(kl_se_ecdh(&se, 0x3005, KL_SE_POINT_SEC1, sec1, 65, s2));
    CHECK(!memcmp(s1, s2, 32));
    pub[63] ^= 1;
    CHECK_ST(kl_se_ecdh(&se, 0x3005, KL_SE_POINT_XY, pub, 64, shared), KL_E_BAD_KEY);
    CHECK_ST(
        kl_se_sign(&se, 0x3005, KL_SE_SIG_RAW, KL_SE_INPUT_DIGEST, d, 32, sig, sizeof sig, &sl),
        KL_E_USAGE);
    OK(kl_se_delete_object(&se, 0x3004));
    OK(kl_se_delete_object(&se, 0x3005));
}

static void hashing(void)
{
    static uint8_t million[1000000];
    memset(million, 'a', sizeof million);
    uint8_t d[32], want[32];
    /* FIPS 180-2 B.1 and B.3: "abc" and a million 'a' (500 MD_UPDATE frames) */
    OK(kl_se_sha256(&se, (const uint8_t *)"abc", 3, d));
    kl_test_unhex("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", want,
                  sizeof want);
    CHECK(!memcmp(d, want, 32));
    if (!in_channel) { /* host-side AES-GCM of 1 MB is slow under the sanitizers */
        OK(kl_se_sha256(&se, million, sizeof million, d));
        kl_test_unhex("cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0", want,
                      sizeof want);
        CHECK(!memcmp(d, want, 32));
    }
    /* three MD_UPDATE chunks; every transport must agree with the first run */
    OK(kl_se_sha256(&se, million, 4500, d));
    if (have_digest_4500) CHECK(!memcmp(d, digest_4500, 32));
    memcpy(digest_4500, d, 32);
    have_digest_4500 = 1;
    uint8_t ctx, p[32];
    OK(kl_se_md_init(&se, &ctx));
    OK(kl_se_md_update(&se, ctx, (const uint8_t *)"ab", 2));
    OK(kl_se_md_peek(&se, ctx, p));
    OK(kl_se_md_update(&se, ctx, (const uint8_t *)"c", 1));
    OK(kl_se_md_finish(&se, ctx, d));
    kl_test_unhex("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", want,
                  sizeof want);
    CHECK(!memcmp(d, want, 32) && memcmp(p, want, 32));
    CHECK_ST(kl_se_md_finish(&se, ctx, d), KL_E_STATE); /* freed */
}

static void mac_cipher_random(void)
{
    /* RFC 4231 test case 1 */
    struct kl_se_object_attr h = kl_test_attr(0x3010, KL_SE_OBJ_SECRET_KEY, 20);
    h.key_type = KL_SE_KEY_HMAC;
    h.usage1 = KL_SE_USAGE_SIGN;
    h.alg1 = KL_SE_ALG_HMAC_SHA256;
    OK(kl_se_create_object(&se, &h));
    uint8_t key[20];
    memset(key, 0x0b, sizeof key);
    OK(kl_se_import_key(&se, 0x3010, key, sizeof key, NULL));
    uint8_t ctx, tag[32], want[32];
    size_t tl = 0;
    OK(kl_se_mac_init(&se, 0x3010, KL_SE_ALG_HMAC_SHA256, &ctx));
    OK(kl_se_mac_update(&se, ctx, (const uint8_t *)"Hi There", 8));
    OK(kl_se_mac_finish(&se, ctx, tag, sizeof tag, &tl));
    kl_test_unhex("b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7", want,
                  sizeof want);
    CHECK(tl == 32 && !memcmp(tag, want, 32));
    OK(kl_se_mac_init(&se, 0x3010, KL_SE_ALG_HMAC_SHA256, &ctx));
    OK(kl_se_mac_update(&se, ctx, (const uint8_t *)"Hi There", 8));
    OK(kl_se_mac_finish_verify(&se, ctx, want, 16));
    want[0] ^= 1;
    OK(kl_se_mac_init(&se, 0x3010, KL_SE_ALG_HMAC_SHA256, &ctx));
    OK(kl_se_mac_update(&se, ctx, (const uint8_t *)"Hi There", 8));
    CHECK_ST(kl_se_mac_finish_verify(&se, ctx, want, 32), KL_E_BAD_TAG);
    size_t n;
    uint8_t rd[32];
    CHECK_ST(kl_se_read_object(&se, 0x3010, rd, sizeof rd, &n), KL_E_ACCESS_DENIED);

    /* GCM spec test case 2: zero key, zero IV, one zero block */
    struct kl_se_object_attr g = kl_test_attr(0x3011, KL_SE_OBJ_SECRET_KEY, 16);
    g.key_type = KL_SE_KEY_AES;
    g.usage1 = KL_SE_USAGE_ENCRYPT;
    g.alg1 = KL_SE_ALG_AES_GCM;
    OK(kl_se_create_object(&se, &g));
    uint8_t zero[16] = {0}, out[64], pt[64];
    OK(kl_se_import_key(&se, 0x3011, zero, 16, NULL));
    struct kl_se_cipher_params p = {.key_id = 0x3011,
                                    .alg = KL_SE_ALG_AES_GCM,
                                    .dir = KL_SE_CIPHER_ENCRYPT,
                                    .iv = zero,
                                    .iv_len = 12,
                                    .tag_len = 16};
    size_t o1 = 0, o2 = 0;
    OK(kl_se_cipher_init(&se, &p, &ctx));
    OK(kl_se_cipher_update(&se, ctx, zero, 16, out, sizeof out, &o1));
    OK(kl_se_cipher_finish(&se, ctx, NULL, 0, out + o1, sizeof out - o1, &o2));
    uint8_t ct[32];
    kl_test_unhex("0388dace60b6a392f328c2b971b2fe78ab6e47d42cec13bdf53a67b21257bddf", ct,
                  sizeof ct);
    CHECK(o1 + o2 == 32 && !memcmp(out, ct, 32));
    p.dir = KL_SE_CIPHER_DECRYPT;
    OK(kl_se_cipher_init(&se, &p, &ctx));
    OK(kl_se_cipher_update(&se, ctx, ct, 16, pt, sizeof pt, &o1));
    CHECK(o1 == 0); /* AEAD: nothing before the tag checks */
    OK(kl_se_cipher_finish(&se, ctx, ct + 16, 16, pt, sizeof pt, &o2));
    CHECK(o2 == 16 && !memcmp(pt, zero, 16));
    ct[31] ^= 1;
    OK(kl_se_cipher_init(&se, &p, &ctx));
    OK(kl_se_cipher_update(&se, ctx, ct, 16, pt, sizeof pt, &o1));
    CHECK_ST(kl_se_cipher_finish(&se, ctx, ct + 16, 16, pt, sizeof pt, &o2), KL_E_BAD_TAG);
    CHECK(o2 == 0);
    /* AEAD decryption of 2000 and 4096 bytes: the plaintext comes back in 2000-byte
     * pieces after the tag checks (one full piece + an empty one; 2000 + 2000 + 96) */
    static uint8_t big[4096], enc[4096 + 16], dec[4096];
    for (size_t i = 0; i < sizeof big; i++)
        big[i] = (uint8_t)(i * 13 + 5);
    size_t sizes[] = {2000, 4096};
    for (size_t k = 0; k < 2; k++) {
        size_t len = sizes[k];
        p.dir = KL_SE_CIPHER_ENCRYPT;
        OK(kl_se_cipher_init(&se, &p, &ctx));
        OK(kl_se_cipher_update(&se, ctx, big, len, enc, sizeof enc, &o1));
        OK(kl_se_cipher_finish(&se, ctx, NULL, 0, enc + o1, sizeof enc - o1, &o2));
        CHECK(o1 + o2 == len + 16);
        p.dir = KL_SE_CIPHER_DECRYPT;
        OK(kl_se_cipher_init(&se, &p, &ctx));
        OK(kl_se_cipher_update(&se, ctx, enc, len, dec, sizeof dec, &o1));
        CHECK(o1 == 0);
        OK(kl_se_cipher_finish(&se, ctx, enc + len, 16, dec, sizeof dec, &o2));
        CHECK(o2 == len && !memcmp(dec, big, len));
    }
    /* both cipher contexts are free again (a piece left behind would hold one) */
    uint8_t c1, c2, t1[32];
    p.dir = KL_SE_CIPHER_ENCRYPT;
    OK(kl_se_cipher_init(&se, &p, &c1));
    OK(kl_se_cipher_init(&se, &p, &c2));
    OK(kl_se_cipher_finish(&se, c1, NULL, 0, t1, sizeof t1, &o2));
    CHECK(o2 == 16);
    OK(kl_se_cipher_finish(&se, c2, NULL, 0, t1, sizeof t1, &o2));
    CHECK(o2 == 16);
    OK(kl_se_delete_object(&se, 0x3010));
    OK(kl_se_delete_object(&se, 0x3011));

    static uint8_t r1[5000], r2[5000];
    OK(kl_se_random(&se, r1, sizeof r1));
    OK(kl_se_random(&se, r2, sizeof r2));
    CHECK(memcmp(r1, r2, sizeof r1) != 0);
    size_t zeros = 0;
    for (size_t i = 0; i < sizeof r1; i++)
        zeros += r1[i] == 0;
    CHECK(zeros < 100); /* ~20 expected; a zero-filled tail would show */
}

static void suite(const char *uri, int channel)
{
    kl_where = channel ? "channel" : uri;
    in_channel = channel;
    kl_status st = kl_se_open(&se, uri);
    if (st != KL_OK) {
        fprintf(stderr, "[%s] open: %s\n", uri, kl_status_name(st));
        kl_fails++;
        return;
    }
    if (channel) {
        uint8_t id[KL_SE_IDENTITY_LEN];
        OK(kl_se_get_identity(&se, id));
        OK(kl_se_channel_open(&se, id, kl_random_os, NULL));
        CHECK(kl_se_channel_is_open(&se));
    }
    management();
    objects();
    ecdsa();
    hashing();
    mac_cipher_random();
    if (channel) CHECK(kl_se_channel_is_open(&se)); /* nothing above broke the channel */
    kl_se_close(&se);
    CHECK_ST(kl_se_ping(&se, NULL, 0), KL_E_IO); /* closed handle */
}

int main(void)
{
    char dir[] = "/tmp/kl-suite-XXXXXX";
    if (!mkdtemp(dir)) return 1;
    char mem[600], unix_uri[600], sock[560];
    snprintf(mem, sizeof mem, "mem:%s/mem", dir);
    snprintf(sock, sizeof sock, "%s/se.sock", dir);
    snprintf(unix_uri, sizeof unix_uri, "unix:%s", sock);
    CHECK(kl_se_mem_register() == KL_OK);

    suite(mem, 0);

    pid_t pid = kl_test_start_se(dir, sock, 5000);
    if (!pid) {
        fprintf(stderr, "could not start keylink-se (KL_BIN_DIR=%s)\n", getenv("KL_BIN_DIR"));
        kl_fails++;
    } else {
        suite(unix_uri, 0);
        suite(unix_uri, 1); /* the same suite inside the secure channel */
        /* the daemon serves one host at a time */
        kl_where = "busy";
        struct kl_se a, b;
        OK(kl_se_open(&a, unix_uri));
        OK(kl_se_ping(&a, NULL, 0));
        OK(kl_se_open(&b, unix_uri));
        CHECK_ST(kl_se_ping(&b, NULL, 0), KL_E_BUSY);
        kl_se_close(&b);
        OK(kl_se_ping(&a, NULL, 0));
        kl_se_close(&a);
        kill(pid, SIGTERM);
        int wst = 0;
        waitpid(pid, &wst, 0);
        CHECK(WIFEXITED(wst) && WEXITSTATUS(wst) == 0);
        struct stat sb;
        CHECK(stat(sock, &sb) != 0); /* socket removed on a clean stop */
    }
    if (kl_test_rm_tree(dir) != 0) fprintf(stderr, "warning: could not remove %s\n", dir);
    if (kl_fails) {
        fprintf(stderr, "test_se_suite: %d failures\n", kl_fails);
        return 1;
    }
    printf("test_se_suite: ok (mem:, unix:, unix: inside the secure channel)\n");
    return 0;
}
