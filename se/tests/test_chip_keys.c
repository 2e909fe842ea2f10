/* GENERATE_KEY, IMPORT_KEY (unsigned in DELIVERY, signed by 0x1000 otherwise), key usage
 * checks (kl_obj_for_use) and kl_obj_store_secret. */
#include "chip_fixture.h"

static void test_generate(struct fx *f)
{
    CHECK_ST(fx_create(f, 0x100, 3, 2, 96, NULL, 4, 0x01, 0x01, 0xD1, 0x02, 0), KL_OK);
    CHECK_ST(fx_id_cmd(f, C_GENKEY, 0x100), KL_OK);
    uint8_t pub1[64];
    memcpy(pub1, f->resp, 64);
    CHECK_ST(kl_cx_ec_check_pub(pub1), KL_OK);
    CHECK_ST(fx_id_cmd(f, C_GENKEY, 0x100), KL_OK); /* a new key replaces it */
    CHECK(memcmp(pub1, f->resp, 64) != 0);
    memcpy(pub1, f->resp, 64);
    CHECK_ST(fx_exec(f, C_GENKEY, f->resp, 3), KL_E_BAD_LENGTH);
    /* AES-128, AES-256, HMAC-48 secrets: right sizes, different each time */
    CHECK_ST(fx_create(f, 0x101, 1, 2, 16, NULL, 1, 0x02, 0x14, 0xFF, 0, 0), KL_OK);
    CHECK_ST(fx_create(f, 0x102, 1, 2, 32, NULL, 1, 0x02, 0x11, 0xFF, 0, 0), KL_OK);
    CHECK_ST(fx_create(f, 0x103, 1, 2, 48, NULL, 3, 0x01, 0x20, 0xFF, 0, 0), KL_OK);
    for (uint16_t id = 0x101; id <= 0x103; id++) {
        CHECK_ST(fx_id_cmd(f, C_GENKEY, id), KL_OK);
        CHECK(f->rlen == 0);
    }
    size_t n1 = 0, n2 = 0, n3 = 0;
    struct kl_obj *a = kl_obj_find(f->c, 0x101), *b = kl_obj_find(f->c, 0x102),
                  *h = kl_obj_find(f->c, 0x103);
    const uint8_t *ka = kl_obj_secret(f->c, a, &n1), *kb = kl_obj_secret(f->c, b, &n2);
    CHECK(ka && kb && kl_obj_secret(f->c, h, &n3) && n1 == 16 && n2 == 32 && n3 == 48);
    CHECK(memcmp(ka, kb, 16) != 0);
    /* key-type accessors refuse the wrong kinds */
    CHECK(kl_obj_priv(f->c, a) == NULL && kl_obj_pub(f->c, a) == NULL);
    struct kl_obj *kp = kl_obj_find(f->c, 0x100);
    CHECK(kl_obj_secret(f->c, kp, NULL) == NULL && kl_obj_data(f->c, kp, NULL) == NULL);
    CHECK(memcmp(kl_obj_pub(f->c, kp), pub1, 64) == 0);
    /* usage checks */
    CHECK_ST(kl_obj_for_use(f->c, 0x100, 0x01, 0x01, NULL), KL_OK);
    CHECK_ST(kl_obj_for_use(f->c, 0x100, 0xD1, 0x02, NULL), KL_OK);
    CHECK_ST(kl_obj_for_use(f->c, 0x100, 0x01, 0x02, NULL), KL_E_USAGE);
    CHECK_ST(kl_obj_for_use(f->c, 0x100, 0x04, 0x01, NULL), KL_E_USAGE);
    CHECK_ST(kl_obj_for_use(f->c, 0x101, 0x02, 0x14, NULL), KL_OK);
    CHECK_ST(kl_obj_for_use(f->c, 0x101, 0x02, 0x11, NULL), KL_E_USAGE);
    CHECK_ST(kl_obj_for_use(f->c, 0x1FF, 0x02, 0x14, NULL), KL_E_NOT_FOUND);
    CHECK_ST(fx_data_obj(f, 0x104, 2, 8, NULL), KL_OK);
    CHECK_ST(kl_obj_for_use(f->c, 0x104, 0x02, 0x14, NULL), KL_E_WRONG_TYPE);
    CHECK_ST(fx_create(f, 0x105, 1, 2, 16, NULL, 1, 0x02, 0x14, 0xFF, 0, 0), KL_OK);
    CHECK_ST(kl_obj_for_use(f->c, 0x105, 0x02, 0x14, NULL), KL_E_STATE); /* no key yet */
    /* a key outside its usage through a command: admin auth with a signing key */
    CHECK_ST(fx_exec(f, C_CHAL, NULL, 0), KL_OK);
    uint8_t r[66] = {0x01, 0x00};
    CHECK_ST(fx_exec(f, C_AUTH, r, 66), KL_E_USAGE);
}

static void test_import(struct fx *f, struct hkey *adm)
{
    struct hkey imp, k;
    hkey_new(&imp);
    hkey_new(&k);
    /* the key-import key itself, unsigned in DELIVERY */
    CHECK_ST(fx_create(f, 0x1000, 2, 2, 64, NULL, 4, 0x80, 0x01, 0xFF, 0, 0), KL_OK);
    CHECK_ST(fx_import(f, 0x1000, imp.pub, 64, NULL), KL_OK);
    CHECK_ST(fx_create(f, 0x200, 2, 2, 64, NULL, 4, 0x10, 0x01, 0xFF, 0, 0), KL_OK);
    CHECK_ST(fx_create(f, 0x201, 3, 2, 96, NULL, 4, 0x01, 0x01, 0xFF, 0, 0), KL_OK);
    CHECK_ST(fx_create(f, 0x202, 1, 2, 16, NULL, 1, 0x02, 0x14, 0xFF, 0, 0), KL_OK);
    CHECK_ST(fx_create(f, 0x203, 1, 2, 64, NULL, 3, 0x01, 0x20, 0xFF, 0, 0), KL_OK);
    uint8_t kp[96], bad[96];
    memcpy(kp, k.priv, 32);
    memcpy(kp + 32, k.pub, 64);
    /* material checks */
    memcpy(bad, kp, 96);
    bad[40] ^= 1; /* public half does not match */
    CHECK_ST(fx_import(f, 0x201, bad, 96, NULL), KL_E_BAD_KEY);
    memset(bad, 0, 32);
    CHECK_ST(fx_import(f, 0x201, bad, 96, NULL), KL_E_BAD_KEY); /* scalar 0 */
    CHECK_ST(fx_import(f, 0x201, kp, 64, NULL), KL_E_BAD_PARAM);
    memcpy(bad, k.pub, 64);
    bad[63] ^= 1; /* not on the curve */
    CHECK_ST(fx_import(f, 0x200, bad, 64, NULL), KL_E_BAD_KEY);
    CHECK_ST(fx_import(f, 0x200, k.pub, 63, NULL), KL_E_BAD_PARAM);
    CHECK_ST(fx_import(f, 0x202, kp, 15, NULL), KL_E_BAD_PARAM);
    CHECK_ST(fx_import(f, 0x202, kp, 32, NULL), KL_E_BAD_PARAM);
    CHECK_ST(fx_import(f, 0x203, kp, 65, NULL), KL_E_BAD_PARAM);
    CHECK_ST(fx_data_obj(f, 0x204, 2, 8, NULL), KL_OK);
    CHECK_ST(fx_import(f, 0x204, kp, 8, NULL), KL_E_WRONG_TYPE);
    CHECK_ST(fx_import(f, 0x2FF, kp, 8, NULL), KL_E_NOT_FOUND);
    uint8_t req[8] = {0x02, 0x02, 0x00, 0x10, 1, 2, 3, 4};
    CHECK_ST(fx_exec(f, C_IMPORT, req, 8), KL_E_BAD_LENGTH);
    CHECK_ST(fx_exec(f, C_IMPORT, req, 3), KL_E_BAD_LENGTH);
    CHECK_ST(fx_id_cmd(f, C_INFO, 0x201), KL_OK);
    CHECK(f->resp[26] == 0 && kl_be32(f->resp + 22) == 0); /* nothing happened */
    /* good imports in DELIVERY, unsigned and signed */
    CHECK_ST(fx_import(f, 0x201, kp, 96, NULL), KL_OK);
    CHECK_ST(fx_read(f, 0x201, 0, 64), KL_OK);
    CHECK(memcmp(f->resp, k.pub, 64) == 0);
    CHECK_ST(fx_import(f, 0x203, kp, 20, &imp), KL_OK);
    size_t n = 0;
    const uint8_t *s = kl_obj_secret(f->c, kl_obj_find(f->c, 0x203), &n);
    CHECK(s && n == 20 && memcmp(s, kp, 20) == 0);
    /* outside DELIVERY: a signature by 0x1000 is required */
    CHECK_ST(fx_auth(f, 0x1001, adm), KL_OK);
    CHECK_ST(fx_setlc(f, 4), KL_OK);
    CHECK_ST(fx_import(f, 0x200, k.pub, 64, NULL), KL_E_AUTH_REQUIRED);
    CHECK_ST(fx_import(f, 0x200, k.pub, 64, &k), KL_E_VERIFY_FAILED); /* wrong signer */
    /* a signature over other bytes (id changed after signing) */
    uint8_t rq[4 + 64 + 64];
    kl_put16(rq, 0x200);
    kl_put16(rq + 2, 64);
    memcpy(rq + 4, k.pub, 64);
    hkey_sign_msg(&imp, rq, 68, rq + 68);
    kl_put16(rq, 0x201);
    CHECK_ST(fx_exec(f, C_IMPORT, rq, sizeof rq), KL_E_BAD_PARAM); /* 64 bytes for a pair */
    CHECK_ST(fx_create(f, 0x205, 2, 2, 64, NULL, 4, 0x10, 0x01, 0xFF, 0, 0), KL_OK);
    kl_put16(rq, 0x205);
    CHECK_ST(fx_exec(f, C_IMPORT, rq, sizeof rq), KL_E_VERIFY_FAILED);
    CHECK_ST(fx_id_cmd(f, C_INFO, 0x205), KL_OK);
    CHECK(f->resp[26] == 0);
    kl_put16(rq, 0x200);
    CHECK_ST(fx_exec(f, C_IMPORT, rq, sizeof rq), KL_OK);
    CHECK_ST(fx_read(f, 0x200, 0, 64), KL_OK);
    CHECK(memcmp(f->resp, k.pub, 64) == 0);
    /* the import key must have usage key-import */
    struct kl_obj *ik = kl_obj_find(f->c, 0x1000);
    ik->usage[0] = 0x10;
    CHECK_ST(fx_import(f, 0x205, k.pub, 64, &imp), KL_E_USAGE);
    ik->usage[0] = 0x80;
    CHECK_ST(fx_import(f, 0x205, k.pub, 64, &imp), KL_OK);
    /* without 0x1000, no signed import can succeed */
    CHECK_ST(fx_id_cmd(f, C_DELETE, 0x1000), KL_OK);
    CHECK_ST(fx_import(f, 0x202, kp, 16, &imp), KL_E_VERIFY_FAILED);
    hkey_free(&imp);
    hkey_free(&k);
}

static void test_store_secret(struct fx *f)
{
    uint8_t k[64];
    for (int i = 0; i < 64; i++)
        k[i] = (uint8_t)i;
    CHECK_ST(fx_create(f, 0x300, 1, 1, 32, NULL, 3, 0x01, 0x20, 0xFF, 0, 0), KL_OK);
    CHECK_ST(fx_create(f, 0x301, 1, 1, 16, NULL, 1, 0x02, 0x14, 0xFF, 0, 0), KL_OK);
    uint8_t ro[9];
    CHECK_ST(kl_rules_parse("e=x:e=x:e=x", ro), KL_OK);
    CHECK_ST(fx_create(f, 0x302, 1, 1, 32, ro, 3, 0x01, 0x20, 0xFF, 0, 0), KL_OK);
    CHECK_ST(fx_data_obj(f, 0x303, 1, 32, NULL), KL_OK);
    CHECK_ST(kl_obj_store_secret(f->c, 0x300, k, 32), KL_OK);
    size_t n = 0;
    const uint8_t *s = kl_obj_secret(f->c, kl_obj_find(f->c, 0x300), &n);
    CHECK(s && n == 32 && memcmp(s, k, 32) == 0);
    CHECK_ST(kl_obj_store_secret(f->c, 0x300, k + 1, 20), KL_OK);
    s = kl_obj_secret(f->c, kl_obj_find(f->c, 0x300), &n);
    CHECK(n == 20 && memcmp(s, k + 1, 20) == 0);
    CHECK_ST(kl_obj_store_secret(f->c, 0x300, k, 33), KL_E_BAD_PARAM);
    CHECK_ST(kl_obj_store_secret(f->c, 0x300, k, 0), KL_E_BAD_PARAM);
    CHECK_ST(kl_obj_store_secret(f->c, 0x301, k, 32), KL_E_BAD_PARAM); /* AES-128 needs 16 */
    CHECK_ST(kl_obj_store_secret(f->c, 0x301, k, 16), KL_OK);
    CHECK_ST(kl_obj_store_secret(f->c, 0x302, k, 32), KL_E_ACCESS_DENIED);
    CHECK_ST(kl_obj_store_secret(f->c, 0x303, k, 32), KL_E_WRONG_TYPE);
    CHECK_ST(kl_obj_store_secret(f->c, 0x304, k, 32), KL_E_NOT_FOUND);
    kl_obj_find(f->c, 0x300)->writes = 10000;
    CHECK_ST(kl_obj_store_secret(f->c, 0x300, k, 32), KL_E_ENDURANCE);
    s = kl_obj_secret(f->c, kl_obj_find(f->c, 0x300), &n);
    CHECK(n == 20 && memcmp(s, k + 1, 20) == 0);
}

int main(void)
{
    struct fx f;
    struct hkey adm;
    fx_open(&f);
    fx_admin_key(&f, 0x1001, &adm);
    test_generate(&f);
    test_store_secret(&f);
    test_import(&f, &adm);
    fx_close(&f);
    hkey_free(&adm);
    if (kl_fails) fprintf(stderr, "%d check(s) failed\n", kl_fails);
    return kl_fails ? 1 : 0;
}
