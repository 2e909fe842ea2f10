/* Chip API pieces that need no chip: URI handling, transport table, text forms. */
#include "kl_test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keylink/se.h"

static struct kl_se se;

/* A loopback transport that answers every frame with a fixed reply, to test the
 * command path's checks of what comes back. */
static uint8_t canned[KL_FRAME_MAX + 8];
static size_t canned_len;
static int opened, closed;
static uint8_t last_tx[KL_FRAME_MAX];
static size_t last_tx_len;

static kl_status lb_open(struct kl_se *s, const char *arg)
{
    (void)s;
    opened++;
    return strcmp(arg, "fail") ? KL_OK : KL_E_IO;
}
static kl_status lb_xfer(struct kl_se *s, const uint8_t *tx, size_t tx_len, uint8_t *rx, size_t cap,
                         size_t *rx_len)
{
    (void)s;
    memcpy(last_tx, tx, tx_len);
    last_tx_len = tx_len;
    if (canned_len > cap) return KL_E_PROTOCOL;
    memcpy(rx, canned, canned_len);
    *rx_len = canned_len;
    return KL_OK;
}
static void lb_close(struct kl_se *s)
{
    (void)s;
    closed++;
}
static const struct kl_transport_ops lb = {KL_TRANSPORT_VERSION, "loop", lb_open, lb_xfer,
                                           lb_close};

static void answer(uint8_t status, const uint8_t *p, size_t n)
{
    CHECK(kl_frame_encode(status, 0, p, n, canned, sizeof canned, &canned_len) == KL_OK);
}

static void uris(void)
{
    unsetenv("KEYLINK_SE");
    CHECK(kl_se_open(&se, NULL) == KL_E_ARG);
    CHECK(kl_se_open(&se, "") == KL_E_ARG);
    CHECK(kl_se_open(&se, "nocolon") == KL_E_ARG);
    CHECK(kl_se_open(&se, "bogus:x") == KL_E_ARG);
    CHECK(kl_se_open(&se, ":x") == KL_E_ARG);
    CHECK(kl_se_open(&se, "unix:/nonexistent/dir/sock") == KL_E_IO);
    char longp[200];
    memset(longp, 'a', sizeof longp);
    memcpy(longp, "unix:", 5);
    longp[sizeof longp - 1] = 0;
    CHECK(kl_se_open(&se, longp) == KL_E_ARG);
    kl_se_close(&se); /* harmless when closed */
    CHECK(kl_se_ping(&se, NULL, 0) == KL_E_IO);

    struct kl_transport_ops bad = lb;
    bad.version = 99;
    CHECK(kl_transport_register(&bad) == KL_E_ARG);
    CHECK(kl_transport_register(NULL) == KL_E_ARG);
    CHECK(kl_transport_register(&lb) == KL_OK);
    CHECK(kl_transport_register(&lb) == KL_OK); /* twice is fine */
    CHECK(kl_se_open(&se, "loop:fail") == KL_E_IO && se.ops == NULL);
    setenv("KEYLINK_SE", "loop:x", 1);
    CHECK(kl_se_open(&se, NULL) == KL_OK && opened == 2);
    unsetenv("KEYLINK_SE");
}

static void response_checks(void)
{
    /* PING echo must match */
    uint8_t hi[2] = {'h', 'i'};
    answer(KL_OK, hi, 2);
    CHECK(kl_se_ping(&se, hi, 2) == KL_OK);
    answer(KL_OK, (const uint8_t *)"ho", 2);
    CHECK(kl_se_ping(&se, hi, 2) == KL_E_PROTOCOL);
    /* a chip error is passed through; an error with a payload is a protocol error */
    answer(KL_E_NOT_FOUND, NULL, 0);
    CHECK(kl_se_delete_object(&se, 0x1234) == KL_E_NOT_FOUND);
    answer(KL_E_NOT_FOUND, hi, 2);
    CHECK(kl_se_delete_object(&se, 0x1234) == KL_E_PROTOCOL);
    /* the daemon's busy answer */
    answer(KL_E_BUSY, NULL, 0);
    CHECK(kl_se_ping(&se, NULL, 0) == KL_E_BUSY);
    /* host-only codes never come from the chip */
    answer(KL_E_TIMEOUT, NULL, 0);
    CHECK(kl_se_ping(&se, NULL, 0) == KL_E_PROTOCOL);
    /* corrupted CRC */
    answer(KL_OK, NULL, 0);
    canned[canned_len - 1] ^= 1;
    CHECK(kl_se_ping(&se, NULL, 0) == KL_E_PROTOCOL);
    /* an ENC response while no channel is open */
    CHECK(kl_frame_encode(KL_OK, KL_FRAME_FLAG_ENC, NULL, 0, canned, sizeof canned, &canned_len) ==
          KL_OK);
    CHECK(kl_se_ping(&se, NULL, 0) == KL_E_PROTOCOL);
    /* status block parsing, byte for byte from docs/protocol.md */
    uint8_t b[59] = {0};
    memcpy(b, "MAXQ1065-KL", 11);
    b[16] = 1, b[17] = 2, b[18] = 3, b[19] = 0x01, b[20] = 0x02;
    for (int i = 0; i < 24; i++)
        b[21 + i] = (uint8_t)(0xA0 + i);
    b[45] = 5, b[46] = 0x20, b[47] = 0x00, b[48] = 0x1F, b[49] = 0x40;
    b[50] = 0, b[53] = 7, b[57] = 9, b[58] = 0x03;
    answer(KL_OK, b, sizeof b);
    struct kl_se_status st;
    CHECK(kl_se_status(&se, &st) == KL_OK);
    CHECK(!strcmp(st.name, "MAXQ1065-KL") && st.fw[0] == 1 && st.fw[2] == 3 && st.hw == 0x0102);
    CHECK(st.serial[0] == 0xA0 && st.serial[23] == 0xA0 + 23 && st.lifecycle == 5);
    CHECK(st.total_bytes == 8192 && st.free_bytes == 0x1F40 && st.tamper_events == 7);
    CHECK(st.resets == 9 && st.session == 3);
    answer(KL_OK, b, 58); /* one byte short */
    CHECK(kl_se_status(&se, &st) == KL_E_PROTOCOL);
    /* a raw signature must be 64 bytes */
    uint8_t d[32] = {0}, sig[72];
    size_t sl;
    answer(KL_OK, b, 50);
    CHECK(kl_se_sign(&se, 0x1004, KL_SE_SIG_RAW, KL_SE_INPUT_DIGEST, d, 32, sig, sizeof sig, &sl) ==
          KL_E_PROTOCOL);
    CHECK(kl_se_sign(&se, 0x1004, KL_SE_SIG_RAW, KL_SE_INPUT_DIGEST, d, 31, sig, sizeof sig, &sl) ==
          KL_E_ARG);
    /* list entries must ascend */
    uint8_t l[12] = {0x10, 0x05, 4, 2, 0, 8, 0x10, 0x01, 4, 2, 0, 8};
    answer(KL_OK, l, sizeof l);
    struct kl_se_list_entry e[4];
    size_t n;
    CHECK(kl_se_list(&se, e, 4, &n) == KL_E_PROTOCOL);
    l[7] = 0x06;
    answer(KL_OK, l, sizeof l);
    CHECK(kl_se_list(&se, e, 4, &n) == KL_OK && n == 2 && e[1].id == 0x1006 && e[0].size == 8);
    CHECK(kl_se_list(&se, e, 1, &n) == KL_E_BUFFER);
    kl_se_close(&se);
    CHECK(closed == 1 && se.ops == NULL);
}

/* The request payload the last command put on the wire equals want (hex, from the
 * layouts in docs/protocol.md), behind the right command byte, with a valid frame. */
static int sent(uint8_t cmd, const char *want)
{
    uint8_t w[256];
    size_t n = 0;
    for (; want[2 * n]; n++) {
        unsigned v;
        sscanf(want + 2 * n, "%2x", &v);
        w[n] = (uint8_t)v;
    }
    struct kl_frame f;
    if (kl_frame_decode(last_tx, last_tx_len, &f) != KL_OK) return 0;
    return f.code == cmd && f.flags == 0 && f.len == n && !memcmp(f.payload, w, n);
}

static void request_layouts(void)
{
    CHECK(kl_se_open(&se, "loop:x") == KL_OK);
    uint8_t z[64] = {0}, sig[64], b[80];
    for (int i = 0; i < 64; i++)
        sig[i] = (uint8_t)i;
    size_t n;
    answer(KL_OK, NULL, 0);
    struct kl_se_object_attr a = {.id = 0x1004,
                                  .type = KL_SE_OBJ_KEY_PAIR,
                                  .props = KL_SE_PROP_PERSISTENT | KL_SE_PROP_WIPE_ON_TAMPER,
                                  .size = 96,
                                  .rules = {7, 0x1F, 0, 3, 0x11, 0, 2, 0x10, 0},
                                  .key_type = KL_SE_KEY_ECC_P256,
                                  .usage1 = KL_SE_USAGE_SIGN,
                                  .alg1 = KL_SE_ALG_ECDSA_SHA256,
                                  .usage2 = KL_SE_USAGE_UNUSED,
                                  .alg2 = KL_SE_ALG_NONE};
    CHECK(kl_se_create_object(&se, &a) == KL_OK);
    CHECK(sent(0x10, "1004030600600"
                     "71f00031100021000"
                     "040101ff00"));
    a.id = 0x2001, a.type = KL_SE_OBJ_UP_COUNTER, a.props = KL_SE_PROP_PERSISTENT, a.size = 4;
    a.initial = 0x01020304;
    CHECK(kl_se_create_object(&se, &a) == KL_OK);
    CHECK(sent(0x10, "20010502000407"
                     "1f00031100021000"
                     "040101ff0001020304"));
    CHECK(kl_se_delete_object(&se, 0xBEEF) == KL_OK && sent(0x11, "beef"));
    CHECK(kl_se_write_object(&se, 0x2000, 0x0102, (const uint8_t *)"\xAA\xBB", 2) == KL_OK);
    CHECK(sent(0x13, "20000102aabb"));
    answer(KL_OK, z, 5);
    CHECK(kl_se_read_object_at(&se, 0x2000, 0x10, b, 5) == KL_OK && sent(0x12, "200000100005"));
    answer(KL_OK, sig, 64);
    CHECK(kl_se_sign(&se, 0x1004, KL_SE_SIG_RAW, KL_SE_INPUT_MESSAGE, (const uint8_t *)"hi", 2, b,
                     sizeof b, &n) == KL_OK);
    CHECK(sent(0xC8, "01100400016869") && n == 64 && !memcmp(b, sig, 64));
    answer(KL_OK, NULL, 0);
    CHECK(kl_se_verify(&se, 0x1004, KL_SE_SIG_DER, KL_SE_INPUT_DIGEST, sig, 3, z, 32) == KL_OK);
    CHECK(sent(0xC8, "02100401000003000102"
                     "0000000000000000000000000000000000000000000000000000000000000000"));
    CHECK(kl_se_admin_auth(&se, 0x1001, sig) == KL_OK);
    CHECK(sent(0xF9, "1001000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
                     "202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f"));
    CHECK(kl_se_set_lifecycle(&se, KL_SE_LC_OPERATIONAL) == KL_OK && sent(0xF3, "05"));
    struct kl_se_config c = {.flags = 0x1A,
                             .reset_events = 0x0F,
                             .tamper_action = 1,
                             .wd_initial_ms = 10000,
                             .wd_normal_ms = 0x01020304};
    CHECK(kl_se_set_config(&se, &c) == KL_OK && sent(0xF4, "1a0f0100000027100"
                                                           "1020304"));
    CHECK(kl_se_import_key(&se, 0x3000, (const uint8_t *)"\x01\x02\x03", 3, NULL) == KL_OK);
    CHECK(sent(0xCA, "30000003010203"));
    CHECK(kl_se_ecdh_store(&se, 0x1004, KL_SE_POINT_SEC1, (const uint8_t *)"\x04\x05", 2, 0x2010) ==
          KL_OK);
    CHECK(sent(0xC3, "1004010002040501"
                     "2010"));
    answer(KL_OK, (const uint8_t *)"\x02", 1);
    uint8_t ctx = 9;
    struct kl_se_cipher_params p = {.key_id = 0x3011,
                                    .alg = KL_SE_ALG_AES_GCM,
                                    .dir = KL_SE_CIPHER_DECRYPT,
                                    .iv = sig,
                                    .iv_len = 2,
                                    .tag_len = 16,
                                    .total_len = 0x100,
                                    .aad = z,
                                    .aad_len = 3};
    CHECK(kl_se_cipher_init(&se, &p, &ctx) == KL_OK && ctx == 2);
    CHECK(sent(0xD8, "30111402000200011000000100"
                     "0003000000"));
    CHECK(kl_se_mac_init(&se, 0x3010, KL_SE_ALG_HMAC_SHA256, &ctx) == KL_OK);
    CHECK(sent(0xD4, "301020"));
    answer(KL_OK, sig, 7);
    CHECK(kl_se_random(&se, b, 7) == KL_OK && sent(0xDC, "0007"));
    answer(KL_OK, NULL, 0);
    CHECK(kl_se_counter_update(&se, 0x2001, 1, NULL) == KL_E_PROTOCOL); /* no value back */
    CHECK(sent(0x16, "200100000001"));
    kl_se_close(&se);
}

static void text(void)
{
    uint8_t r[9], want[9] = {0x07, 0x1F, 0, 0x03, 0x11, 0, 0x02, 0x10, 0};
    CHECK(kl_se_rules_parse("ahs=rwdgx:ah=rx:h=x", r) == KL_OK && !memcmp(r, want, 9));
    char t[40];
    CHECK(kl_se_rules_format(r, t, sizeof t) == KL_OK && !strcmp(t, "ahs=rwdgx:ah=rx:h=x"));
    CHECK(kl_se_rules_format(r, t, 5) == KL_E_BUFFER);
    CHECK(kl_se_rules_parse("-:-:-", r) == KL_OK && r[0] == 0 && r[4] == 0);
    CHECK(kl_se_rules_format(r, t, sizeof t) == KL_OK && !strcmp(t, "-:-:-"));
    /* blocks the chip itself refuses are refused, never printed as another rule */
    const uint8_t invalid[][9] = {
        {0x20, 0x01, 0, 0, 0, 0, 0, 0, 0}, /* unknown role bit */
        {0x01, 0x40, 0, 0, 0, 0, 0, 0, 0}, /* unknown right bit */
        {0x01, 0x01, 7, 0, 0, 0, 0, 0, 0}, /* reserved byte set */
        {0, 0, 0, 0x01, 0x00, 0, 0, 0, 0}, /* roles without rights */
        {0, 0, 0, 0, 0, 0, 0x00, 0x01, 0}, /* rights without roles */
    };
    for (size_t i = 0; i < sizeof invalid / sizeof invalid[0]; i++)
        CHECK(kl_se_rules_format(invalid[i], t, sizeof t) == KL_E_ARG);
    const char *bad[] = {"",         "a=r",    "a=r:a=r", "a=r:a=r:a=r:a=r", "q=r:-:-", "a=q:-:-",
                         "aa=r:-:-", "a=:-:-", "=r:-:-",  "a:-:-",           "a=r:-:"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        CHECK(kl_se_rules_parse(bad[i], r) == KL_E_ARG);
    uint8_t v;
    CHECK(kl_se_lifecycle_parse("operational", &v) == KL_OK && v == 5);
    CHECK(kl_se_lifecycle_parse("6", &v) == KL_OK && v == 6);
    CHECK(kl_se_lifecycle_parse("7", &v) == KL_E_ARG);
    CHECK(!strcmp(kl_se_lifecycle_name(3), "DELIVERY"));
    CHECK(!strcmp(kl_se_lifecycle_name(9), "UNKNOWN"));
    CHECK(kl_se_type_parse("key-pair", &v) == KL_OK && v == 3);
    CHECK(kl_se_type_parse("0x4", &v) == KL_OK && v == 4);
    CHECK(kl_se_type_parse("8", &v) == KL_E_ARG);
    CHECK(!strcmp(kl_se_type_name(6), "certificate"));
}

int main(void)
{
    uris();
    response_checks();
    request_layouts();
    text();
    if (kl_fails) {
        fprintf(stderr, "test_se_api: %d failures\n", kl_fails);
        return 1;
    }
    printf("test_se_api: ok\n");
    return 0;
}
