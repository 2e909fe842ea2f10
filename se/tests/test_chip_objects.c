/* Object store through kl_chip_execute: create/write/read/delete/list/info, capacity
 * accounting, range checks, key material never read out, endurance, bad input. */
#include "chip_fixture.h"

static void test_create_validation(struct fx *f)
{
    uint16_t free0 = fx_free(f);
    /* wrong lengths */
    uint8_t r[30] = {0};
    CHECK_ST(fx_exec(f, C_CREATE, r, 19), KL_E_BAD_LENGTH);
    kl_put16(r, 0x100);
    r[2] = 5; /* counter needs 24 bytes */
    CHECK_ST(fx_exec(f, C_CREATE, r, 20), KL_E_BAD_LENGTH);
    r[2] = 4;
    CHECK_ST(fx_exec(f, C_CREATE, r, 24), KL_E_BAD_LENGTH);
    /* bad fields */
    CHECK_ST(fx_data_obj(f, 0x0000, 2, 10, NULL), KL_E_BAD_PARAM);
    CHECK_ST(fx_data_obj(f, 0xFFFF, 2, 10, NULL), KL_E_BAD_PARAM);
    CHECK_ST(fx_create(f, 0x100, 9, 2, 10, NULL, 0, 0xFF, 0, 0xFF, 0, 0), KL_E_BAD_PARAM);
    CHECK_ST(fx_data_obj(f, 0x100, 3, 10, NULL), KL_E_BAD_PARAM); /* temp and persistent */
    CHECK_ST(fx_data_obj(f, 0x100, 4, 10, NULL), KL_E_BAD_PARAM); /* neither */
    CHECK_ST(fx_data_obj(f, 0x100, 0x0A, 10, NULL), KL_E_BAD_PARAM);
    CHECK_ST(fx_data_obj(f, 0x100, 2, 0, NULL), KL_E_BAD_PARAM);
    CHECK_ST(fx_data_obj(f, 0x100, 2, 8161, NULL), KL_E_BAD_PARAM);
    uint8_t badrules[9] = {0x20, 1, 0, 0, 0, 0, 0, 0, 0};
    CHECK_ST(fx_data_obj(f, 0x100, 2, 10, badrules), KL_E_BAD_PARAM);
    uint8_t badrules2[9] = {1, 1, 1, 0, 0, 0, 0, 0, 0};
    CHECK_ST(fx_data_obj(f, 0x100, 2, 10, badrules2), KL_E_BAD_PARAM);
    uint8_t badrules3[9] = {1, 0, 0, 0, 0, 0, 0, 0, 0}; /* roles without rights */
    CHECK_ST(fx_data_obj(f, 0x100, 2, 10, badrules3), KL_E_BAD_PARAM);
    /* key sizes and types */
    CHECK_ST(fx_create(f, 0x100, 1, 2, 24, NULL, 1, 0x02, 0x14, 0xFF, 0, 0), KL_E_BAD_PARAM);
    CHECK_ST(fx_create(f, 0x100, 1, 2, 16, NULL, 4, 0x02, 0x14, 0xFF, 0, 0), KL_E_BAD_PARAM);
    CHECK_ST(fx_create(f, 0x100, 3, 2, 64, NULL, 4, 0x01, 0x01, 0xFF, 0, 0), KL_E_BAD_PARAM);
    CHECK_ST(fx_create(f, 0x100, 2, 2, 64, NULL, 1, 0x01, 0x01, 0xFF, 0, 0), KL_E_BAD_PARAM);
    CHECK_ST(fx_create(f, 0x100, 1, 2, 8, NULL, 3, 0x01, 0x20, 0xFF, 0, 0), KL_E_BAD_PARAM);
    /* usage/alg slots */
    CHECK_ST(fx_create(f, 0x100, 3, 2, 96, NULL, 4, 0x03, 0x01, 0xFF, 0, 0), KL_E_BAD_PARAM);
    CHECK_ST(fx_create(f, 0x100, 3, 2, 96, NULL, 4, 0x01, 0x14, 0xFF, 0, 0), KL_E_BAD_PARAM);
    CHECK_ST(fx_create(f, 0x100, 3, 2, 96, NULL, 4, 0xFF, 0x01, 0xFF, 0, 0), KL_E_BAD_PARAM);
    CHECK_ST(fx_create(f, 0x100, 4, 2, 10, NULL, 0, 0x01, 0x01, 0xFF, 0, 0), KL_E_BAD_PARAM);
    CHECK_ST(fx_create(f, 0x100, 5, 2, 8, NULL, 0, 0xFF, 0, 0xFF, 0, 0), KL_E_BAD_PARAM);
    CHECK(fx_free(f) == free0);
    /* nothing was created */
    CHECK_ST(fx_id_cmd(f, C_INFO, 0x100), KL_E_NOT_FOUND);
    /* good ones of every type */
    CHECK_ST(fx_create(f, 0x201, 1, 2, 32, NULL, 1, 0x02, 0x14, 0x02, 0x11, 0), KL_OK);
    CHECK_ST(fx_create(f, 0x202, 2, 2, 64, NULL, 4, 0x10, 0x01, 0xFF, 0, 0), KL_OK);
    CHECK_ST(fx_create(f, 0x203, 3, 2, 96, NULL, 4, 0x01, 0x01, 0xD1, 0x02, 0), KL_OK);
    CHECK_ST(fx_create(f, 0x204, 4, 2, 100, NULL, 0, 0xFF, 0, 0xFF, 0, 0), KL_OK);
    CHECK_ST(fx_create(f, 0x205, 5, 2, 4, NULL, 0, 0xFF, 0, 0xFF, 0, 7), KL_OK);
    CHECK_ST(fx_create(f, 0x206, 6, 2, 1000, NULL, 0, 0x10, 0x01, 0xFF, 0, 0), KL_OK);
    CHECK_ST(fx_create(f, 0x207, 7, 6, 4, NULL, 0, 0xFF, 0, 0xFF, 0, 9), KL_OK);
    CHECK(fx_free(f) == free0 - (32 + 32) - (32 + 64) - (32 + 96) - (32 + 100) - (32 + 4) -
                            (32 + 1000) - (32 + 4));
    CHECK_ST(fx_create(f, 0x204, 4, 2, 100, NULL, 0, 0xFF, 0, 0xFF, 0, 0), KL_E_EXISTS);
    /* LIST: ascending from start, 6 bytes each */
    CHECK_ST(fx_id_cmd(f, C_LIST, 0x203), KL_OK);
    CHECK(f->rlen == 5 * 6);
    CHECK(kl_be16(f->resp) == 0x203 && f->resp[2] == 3 && f->resp[3] == 2 &&
          kl_be16(f->resp + 4) == 96);
    CHECK(kl_be16(f->resp + 24) == 0x207 && f->resp[27] == 6);
    CHECK_ST(fx_id_cmd(f, C_LIST, 0x208), KL_OK);
    CHECK(f->rlen == 0);
    CHECK_ST(fx_exec(f, C_LIST, f->resp, 3), KL_E_BAD_LENGTH);
    /* INFO: create layout + used + writes + has-key */
    CHECK_ST(fx_id_cmd(f, C_INFO, 0x201), KL_OK);
    CHECK(f->rlen == 27);
    CHECK(kl_be16(f->resp) == 0x201 && f->resp[2] == 1 && f->resp[3] == 2 &&
          kl_be16(f->resp + 4) == 32 && memcmp(f->resp + 6, RULES_ALL, 9) == 0 &&
          f->resp[15] == 1 && f->resp[16] == 2 && f->resp[17] == 0x14 && f->resp[18] == 2 &&
          f->resp[19] == 0x11 && kl_be16(f->resp + 20) == 0 && kl_be32(f->resp + 22) == 0 &&
          f->resp[26] == 0);
    /* counter initial value readable */
    CHECK_ST(fx_read(f, 0x205, 0, 4), KL_OK);
    CHECK(f->rlen == 4 && kl_be32(f->resp) == 7);
    /* delete everything again: free bytes back where they were */
    for (uint16_t id = 0x201; id <= 0x207; id++)
        CHECK_ST(fx_id_cmd(f, C_DELETE, id), KL_OK);
    CHECK_ST(fx_id_cmd(f, C_DELETE, 0x201), KL_E_NOT_FOUND);
    CHECK_ST(fx_exec(f, C_DELETE, f->resp, 3), KL_E_BAD_LENGTH);
    CHECK(fx_free(f) == free0);
}

static void test_data_rw(struct fx *f)
{
    uint8_t buf[2048];
    for (size_t i = 0; i < sizeof buf; i++)
        buf[i] = (uint8_t)(i * 7 + 1);
    CHECK_ST(fx_data_obj(f, 0x300, 2, 3000, NULL), KL_OK);
    CHECK_ST(fx_read(f, 0x300, 0, 1), KL_E_OUT_OF_RANGE); /* nothing written yet */
    CHECK_ST(fx_write(f, 0x300, 0, buf, 2044), KL_OK);
    CHECK_ST(fx_write(f, 0x300, 2044, buf, 956), KL_OK);
    CHECK_ST(fx_write(f, 0x300, 2045, buf, 956), KL_E_OUT_OF_RANGE); /* one past the end */
    CHECK_ST(fx_write(f, 0x300, 3000, buf, 1), KL_E_OUT_OF_RANGE);
    CHECK_ST(fx_write(f, 0x300, 0xFFFF, buf, 2044), KL_E_OUT_OF_RANGE);
    CHECK_ST(fx_exec(f, C_WRITE, buf, 4), KL_E_BAD_LENGTH); /* no data */
    CHECK_ST(fx_write(f, 0x301, 0, buf, 4), KL_E_NOT_FOUND);
    CHECK_ST(fx_read(f, 0x300, 0, 2048), KL_OK);
    CHECK(f->rlen == 2048 && memcmp(f->resp, buf, 2044) == 0 &&
          memcmp(f->resp + 2044, buf, 4) == 0);
    CHECK_ST(fx_read(f, 0x300, 2044, 956), KL_OK);
    CHECK(f->rlen == 956 && memcmp(f->resp, buf, 956) == 0);
    CHECK_ST(fx_read(f, 0x300, 2045, 956), KL_E_OUT_OF_RANGE);
    CHECK_ST(fx_read(f, 0x300, 0, 0), KL_E_BAD_PARAM);
    CHECK_ST(fx_read(f, 0x300, 0, 2049), KL_E_BAD_PARAM);
    CHECK_ST(fx_read(f, 0x300, 0xFFFF, 2), KL_E_OUT_OF_RANGE);
    CHECK_ST(fx_exec(f, C_READ, buf, 5), KL_E_BAD_LENGTH);
    CHECK_ST(fx_id_cmd(f, C_INFO, 0x300), KL_OK);
    CHECK(kl_be16(f->resp + 20) == 3000 && kl_be32(f->resp + 22) == 2);
    /* keys and counters are not written this way */
    CHECK_ST(fx_create(f, 0x301, 5, 2, 4, NULL, 0, 0xFF, 0, 0xFF, 0, 1), KL_OK);
    CHECK_ST(fx_write(f, 0x301, 0, buf, 4), KL_E_WRONG_TYPE);
    CHECK_ST(fx_create(f, 0x302, 1, 2, 16, NULL, 1, 0x02, 0x10, 0xFF, 0, 0), KL_OK);
    CHECK_ST(fx_write(f, 0x302, 0, buf, 16), KL_E_WRONG_TYPE);
    CHECK_ST(fx_id_cmd(f, C_DELETE, 0x300), KL_OK);
    CHECK_ST(fx_id_cmd(f, C_DELETE, 0x301), KL_OK);
    CHECK_ST(fx_id_cmd(f, C_DELETE, 0x302), KL_OK);
}

static void test_capacity(struct fx *f)
{
    uint16_t free0 = fx_free(f);
    CHECK(free0 == 8192);
    /* fill to exactly zero */
    CHECK_ST(fx_data_obj(f, 0x400, 2, 4000, NULL), KL_OK);
    CHECK_ST(fx_data_obj(f, 0x401, 1, 100, NULL), KL_OK); /* temporary objects count too */
    uint16_t left = fx_free(f);
    CHECK(left == 8192 - 4032 - 132);
    CHECK_ST(fx_data_obj(f, 0x402, 2, (uint16_t)(left - 32 + 1), NULL), KL_E_NO_SPACE);
    CHECK(fx_free(f) == left);
    CHECK_ST(fx_id_cmd(f, C_INFO, 0x402), KL_E_NOT_FOUND);
    CHECK_ST(fx_data_obj(f, 0x402, 2, (uint16_t)(left - 32), NULL), KL_OK);
    CHECK(fx_free(f) == 0);
    CHECK_ST(fx_create(f, 0x403, 5, 2, 4, NULL, 0, 0xFF, 0, 0xFF, 0, 0), KL_E_NO_SPACE);
    CHECK(fx_free(f) == 0);
    /* freeing the middle object: the others keep their bytes */
    uint8_t a[100], b[50];
    memset(a, 0xA5, sizeof a);
    memset(b, 0x5A, sizeof b);
    CHECK_ST(fx_write(f, 0x401, 0, a, sizeof a), KL_OK);
    CHECK_ST(fx_write(f, 0x402, 10, b, sizeof b), KL_OK);
    CHECK_ST(fx_id_cmd(f, C_DELETE, 0x400), KL_OK);
    CHECK(fx_free(f) == 4032);
    CHECK_ST(fx_read(f, 0x401, 0, 100), KL_OK);
    CHECK(memcmp(f->resp, a, 100) == 0);
    CHECK_ST(fx_read(f, 0x402, 10, 50), KL_OK);
    CHECK(memcmp(f->resp, b, 50) == 0);
    CHECK_ST(fx_id_cmd(f, C_DELETE, 0x401), KL_OK);
    CHECK_ST(fx_id_cmd(f, C_DELETE, 0x402), KL_OK);
    CHECK(fx_free(f) == 8192);
    /* many small objects: 248 one-byte objects fit, the 249th does not */
    int made = 0;
    for (uint16_t id = 1; id <= 248; id++)
        made += fx_data_obj(f, id, 1, 1, NULL) == KL_OK;
    CHECK(made == 248);
    CHECK(fx_free(f) == 8);
    CHECK_ST(fx_data_obj(f, 249, 1, 1, NULL), KL_E_NO_SPACE);
    CHECK_ST(fx_id_cmd(f, C_LIST, 0), KL_OK);
    CHECK(f->rlen == 128 * 6 && kl_be16(f->resp) == 1 && kl_be16(f->resp + 127 * 6) == 128);
    for (uint16_t id = 1; id <= 248; id++)
        fx_id_cmd(f, C_DELETE, id);
    CHECK(fx_free(f) == 8192);
}

static void test_keys_not_readable(struct fx *f)
{
    CHECK_ST(fx_create(f, 0x500, 3, 2, 96, NULL, 4, 0x01, 0x01, 0xFF, 0, 0), KL_OK);
    CHECK_ST(fx_read(f, 0x500, 0, 64), KL_E_OUT_OF_RANGE); /* no key yet */
    CHECK_ST(fx_id_cmd(f, C_GENKEY, 0x500), KL_OK);
    CHECK(f->rlen == 64);
    uint8_t pub[64];
    memcpy(pub, f->resp, 64);
    CHECK_ST(fx_read(f, 0x500, 0, 64), KL_OK); /* the public half only */
    CHECK(f->rlen == 64 && memcmp(f->resp, pub, 64) == 0);
    CHECK_ST(fx_read(f, 0x500, 0, 65), KL_E_OUT_OF_RANGE);
    CHECK_ST(fx_read(f, 0x500, 32, 64), KL_E_OUT_OF_RANGE);
    CHECK_ST(fx_read(f, 0x500, 0, 96), KL_E_OUT_OF_RANGE);
    /* the private scalar is what kl_obj_priv holds, and it matches the public key */
    struct kl_obj *o = kl_obj_find(f->c, 0x500);
    uint8_t chk[64];
    CHECK(o && kl_cx_ec_pub_from_priv(kl_obj_priv(f->c, o), chk) == KL_OK &&
          memcmp(chk, pub, 64) == 0);
    /* secret keys are never read, whatever the rules say */
    CHECK_ST(fx_create(f, 0x501, 1, 2, 32, NULL, 3, 0x01, 0x20, 0xFF, 0, 0), KL_OK);
    CHECK_ST(fx_id_cmd(f, C_GENKEY, 0x501), KL_OK);
    CHECK(f->rlen == 0);
    CHECK_ST(fx_read(f, 0x501, 0, 1), KL_E_ACCESS_DENIED);
    CHECK_ST(fx_read(f, 0x501, 0, 32), KL_E_ACCESS_DENIED);
    CHECK_ST(fx_id_cmd(f, C_INFO, 0x501), KL_OK);
    CHECK(f->resp[26] == 1 && kl_be16(f->resp + 20) == 32 && kl_be32(f->resp + 22) == 1);
    /* generate on non-key objects */
    CHECK_ST(fx_data_obj(f, 0x502, 2, 10, NULL), KL_OK);
    CHECK_ST(fx_id_cmd(f, C_GENKEY, 0x502), KL_E_WRONG_TYPE);
    CHECK_ST(fx_create(f, 0x503, 2, 2, 64, NULL, 4, 0x10, 0x01, 0xFF, 0, 0), KL_OK);
    CHECK_ST(fx_id_cmd(f, C_GENKEY, 0x503), KL_E_WRONG_TYPE);
    CHECK_ST(fx_id_cmd(f, C_GENKEY, 0x5FF), KL_E_NOT_FOUND);
    for (uint16_t id = 0x500; id <= 0x503; id++)
        fx_id_cmd(f, C_DELETE, id);
}

static void test_endurance(struct fx *f)
{
    /* A temporary object: the same write counter, no image commit per write (fast). */
    uint8_t d[4] = {1, 2, 3, 4};
    CHECK_ST(fx_data_obj(f, 0x600, 1, 4, NULL), KL_OK);
    int ok = 0;
    for (int i = 0; i < 10000; i++)
        ok += fx_write(f, 0x600, 0, d, 4) == KL_OK;
    CHECK(ok == 10000);
    d[0] = 9;
    CHECK_ST(fx_write(f, 0x600, 0, d, 4), KL_E_ENDURANCE); /* the 10,001st */
    CHECK_ST(fx_read(f, 0x600, 0, 4), KL_OK);
    CHECK(f->resp[0] == 1); /* unchanged */
    CHECK_ST(fx_id_cmd(f, C_INFO, 0x600), KL_OK);
    CHECK(kl_be32(f->resp + 22) == 10000);
    /* counter updates and key generation count too */
    CHECK_ST(fx_create(f, 0x601, 5, 1, 4, NULL, 0, 0xFF, 0, 0xFF, 0, 0), KL_OK);
    uint8_t r[6];
    kl_put16(r, 0x601);
    kl_put32(r + 2, 1);
    ok = 0;
    for (int i = 0; i < 10000; i++)
        ok += fx_exec(f, C_COUNTER, r, 6) == KL_OK;
    CHECK(ok == 10000);
    CHECK_ST(fx_exec(f, C_COUNTER, r, 6), KL_E_ENDURANCE);
    CHECK_ST(fx_read(f, 0x601, 0, 4), KL_OK);
    CHECK(kl_be32(f->resp) == 10000);
    CHECK_ST(fx_create(f, 0x602, 1, 1, 16, NULL, 1, 0x02, 0x10, 0xFF, 0, 0), KL_OK);
    struct kl_obj *o = kl_obj_find(f->c, 0x602);
    o->writes = 9999; /* skip ahead: generation is slow-ish */
    CHECK_ST(fx_id_cmd(f, C_GENKEY, 0x602), KL_OK);
    CHECK_ST(fx_id_cmd(f, C_GENKEY, 0x602), KL_E_ENDURANCE);
    uint8_t k[16] = {0};
    CHECK_ST(fx_import(f, 0x602, k, 16, NULL), KL_E_ENDURANCE);
    fx_id_cmd(f, C_DELETE, 0x600);
    fx_id_cmd(f, C_DELETE, 0x601);
    fx_id_cmd(f, C_DELETE, 0x602);
}

static void test_counters(struct fx *f)
{
    uint8_t r[6];
    CHECK_ST(fx_create(f, 0x700, 5, 2, 4, NULL, 0, 0xFF, 0, 0xFF, 0, 0xFFFFFFF0u), KL_OK);
    CHECK_ST(fx_create(f, 0x701, 7, 2, 4, NULL, 0, 0xFF, 0, 0xFF, 0, 10), KL_OK);
    kl_put16(r, 0x700);
    kl_put32(r + 2, 0x0F);
    CHECK_ST(fx_exec(f, C_COUNTER, r, 6), KL_OK);
    CHECK(f->rlen == 4 && kl_be32(f->resp) == 0xFFFFFFFFu);
    kl_put32(r + 2, 1);
    CHECK_ST(fx_exec(f, C_COUNTER, r, 6), KL_E_COUNTER); /* no wrap */
    kl_put32(r + 2, 0);
    CHECK_ST(fx_exec(f, C_COUNTER, r, 6), KL_E_BAD_PARAM);
    kl_put16(r, 0x701);
    kl_put32(r + 2, 11);
    CHECK_ST(fx_exec(f, C_COUNTER, r, 6), KL_E_COUNTER); /* below zero */
    kl_put32(r + 2, 10);
    CHECK_ST(fx_exec(f, C_COUNTER, r, 6), KL_OK);
    CHECK(kl_be32(f->resp) == 0);
    kl_put32(r + 2, 1);
    CHECK_ST(fx_exec(f, C_COUNTER, r, 6), KL_E_COUNTER);
    CHECK_ST(fx_read(f, 0x701, 0, 4), KL_OK);
    CHECK(kl_be32(f->resp) == 0);
    CHECK_ST(fx_read(f, 0x700, 0, 4), KL_OK);
    CHECK(kl_be32(f->resp) == 0xFFFFFFFFu);
    CHECK_ST(fx_exec(f, C_COUNTER, r, 5), KL_E_BAD_LENGTH);
    kl_put16(r, 0x7FF);
    CHECK_ST(fx_exec(f, C_COUNTER, r, 6), KL_E_NOT_FOUND);
    CHECK_ST(fx_data_obj(f, 0x702, 2, 4, NULL), KL_OK);
    kl_put16(r, 0x702);
    CHECK_ST(fx_exec(f, C_COUNTER, r, 6), KL_E_WRONG_TYPE);
    /* survives close/reopen and still never goes back */
    fx_reopen(f);
    CHECK_ST(fx_read(f, 0x701, 0, 4), KL_OK);
    CHECK(kl_be32(f->resp) == 0);
    CHECK_ST(fx_id_cmd(f, C_INFO, 0x701), KL_OK);
    CHECK(kl_be32(f->resp + 22) == 1);
    for (uint16_t id = 0x700; id <= 0x702; id++)
        fx_id_cmd(f, C_DELETE, id);
}

static void test_general(struct fx *f)
{
    CHECK_ST(fx_exec(f, 0x7E, NULL, 0), KL_E_UNKNOWN_COMMAND);
    uint8_t big[2049] = {0};
    size_t n = 1;
    CHECK_ST(kl_chip_execute(f->c, C_PING, big, 2049, f->resp, 2048, &n), KL_E_BAD_LENGTH);
    CHECK(n == 0);
    CHECK_ST(kl_chip_execute(f->c, C_PING, big, 10, f->resp, 100, &n), KL_E_INTERNAL);
    memcpy(big, "hello", 5);
    CHECK_ST(fx_exec(f, C_PING, big, 5), KL_OK);
    CHECK(f->rlen == 5 && memcmp(f->resp, "hello", 5) == 0);
    CHECK_ST(fx_exec(f, C_PING, big, 2048), KL_OK);
    CHECK(f->rlen == 2048);
    CHECK_ST(fx_exec(f, C_STATUS, big, 1), KL_E_BAD_LENGTH);
    uint8_t s[2048];
    fx_status(f, s);
    CHECK(memcmp(s, "MAXQ1065-KL\0\0\0\0\0", 16) == 0);
    CHECK(s[45] == 3 && kl_be16(s + 46) == 8192 && s[58] == 0);
}

int main(void)
{
    struct fx f;
    fx_open(&f);
    test_general(&f);
    test_create_validation(&f);
    test_data_rw(&f);
    test_capacity(&f);
    test_keys_not_readable(&f);
    test_endurance(&f);
    test_counters(&f);
    fx_close(&f);
    if (kl_fails) fprintf(stderr, "%d check(s) failed\n", kl_fails);
    return kl_fails ? 1 : 0;
}
