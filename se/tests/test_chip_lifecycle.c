/* Life cycle, admin authentication, configuration, factory reset and TERMINATED. */
#include "chip_fixture.h"

static void test_admin_auth(struct fx *f, struct hkey *adm)
{
    uint8_t r[66] = {0};
    /* no challenge outstanding */
    kl_put16(r, 0x1001);
    CHECK_ST(fx_exec(f, C_AUTH, r, 66), KL_E_AUTH_FAILED);
    CHECK_ST(fx_exec(f, C_AUTH, r, 65), KL_E_BAD_LENGTH);
    CHECK_ST(fx_exec(f, C_CHAL, r, 1), KL_E_BAD_LENGTH);
    /* a wrong signature uses the challenge up */
    CHECK_ST(fx_exec(f, C_CHAL, NULL, 0), KL_OK);
    CHECK(f->rlen == 16);
    uint8_t ch[16];
    memcpy(ch, f->resp, 16);
    uint8_t other[16] = {1};
    hkey_sign_msg(adm, other, 16, r + 2);
    CHECK_ST(fx_exec(f, C_AUTH, r, 66), KL_E_AUTH_FAILED);
    hkey_sign_msg(adm, ch, 16, r + 2);
    CHECK_ST(fx_exec(f, C_AUTH, r, 66), KL_E_AUTH_FAILED); /* replay of a used challenge */
    /* a fresh challenge replaces the earlier one */
    CHECK_ST(fx_exec(f, C_CHAL, NULL, 0), KL_OK);
    memcpy(ch, f->resp, 16);
    CHECK_ST(fx_exec(f, C_CHAL, NULL, 0), KL_OK);
    CHECK(memcmp(ch, f->resp, 16) != 0);
    hkey_sign_msg(adm, ch, 16, r + 2);
    CHECK_ST(fx_exec(f, C_AUTH, r, 66), KL_E_AUTH_FAILED);
    /* a key that is not admin-auth: KL_E_USAGE, and the challenge is gone */
    CHECK_ST(fx_create(f, 0x1005, 2, 2, 64, NULL, 4, 0x01, 0x01, 0xFF, 0, 0), KL_OK);
    CHECK_ST(fx_import(f, 0x1005, adm->pub, 64, NULL), KL_OK);
    CHECK_ST(fx_exec(f, C_CHAL, NULL, 0), KL_OK);
    memcpy(ch, f->resp, 16);
    kl_put16(r, 0x1005);
    hkey_sign_msg(adm, ch, 16, r + 2);
    CHECK_ST(fx_exec(f, C_AUTH, r, 66), KL_E_USAGE);
    kl_put16(r, 0x1001);
    CHECK_ST(fx_exec(f, C_AUTH, r, 66), KL_E_AUTH_FAILED); /* challenge used up */
    kl_put16(r, 0x1FFF);
    CHECK_ST(fx_auth(f, 0x1FFF, adm), KL_E_NOT_FOUND);
    uint8_t s[2048];
    fx_status(f, s);
    CHECK((s[58] & 1) == 0);
    /* the right signature */
    CHECK_ST(fx_auth(f, 0x1001, adm), KL_OK);
    fx_status(f, s);
    CHECK((s[58] & 1) == 1);
    /* single use: the same signature again fails */
    CHECK_ST(fx_exec(f, C_CHAL, NULL, 0), KL_OK);
    memcpy(ch, f->resp, 16);
    kl_put16(r, 0x1001);
    hkey_sign_msg(adm, ch, 16, r + 2);
    CHECK_ST(fx_exec(f, C_AUTH, r, 66), KL_OK);
    CHECK_ST(fx_exec(f, C_AUTH, r, 66), KL_E_AUTH_FAILED);
    /* ADMIN_AUTH_RESET ends the session */
    CHECK_ST(fx_exec(f, C_AUTHRESET, r, 1), KL_E_BAD_LENGTH);
    CHECK_ST(fx_exec(f, C_AUTHRESET, NULL, 0), KL_OK);
    fx_status(f, s);
    CHECK((s[58] & 1) == 0);
    fx_id_cmd(f, C_DELETE, 0x1005);
}

static void test_steps(struct fx *f, struct hkey *adm)
{
    CHECK(fx_lifecycle(f) == 3);
    /* a certificate object (a possible trust anchor) takes plain writes only in DELIVERY */
    static const uint8_t cert_a[8] = "anchor-1", cert_b[8] = "forged-2";
    CHECK_ST(fx_create(f, 0x0C03, 6, 2, 8, NULL, 0, 0xFF, 0, 0xFF, 0, 0), KL_OK);
    CHECK_ST(fx_write(f, 0x0C03, 0, cert_a, 8), KL_OK);
    CHECK_ST(fx_setlc(f, 4), KL_E_AUTH_REQUIRED);
    CHECK(fx_lifecycle(f) == 3);
    CHECK_ST(fx_auth(f, 0x1001, adm), KL_OK);
    CHECK_ST(fx_setlc(f, 5), KL_E_LIFECYCLE); /* skipping */
    CHECK_ST(fx_setlc(f, 3), KL_E_LIFECYCLE); /* standing still */
    CHECK_ST(fx_setlc(f, 2), KL_E_BAD_PARAM);
    CHECK_ST(fx_setlc(f, 7), KL_E_BAD_PARAM);
    CHECK_ST(fx_exec(f, C_SETLC, NULL, 0), KL_E_BAD_LENGTH);
    CHECK(fx_lifecycle(f) == 3);
    CHECK_ST(fx_setlc(f, 4), KL_OK);
    CHECK(fx_lifecycle(f) == 4);
    CHECK_ST(fx_write(f, 0x0C03, 0, cert_b, 8), KL_E_ACCESS_DENIED);
    CHECK_ST(fx_read(f, 0x0C03, 0, 8), KL_OK);
    CHECK(f->rlen == 8 && !memcmp(f->resp, cert_a, 8));
    CHECK_ST(fx_setlc(f, 3), KL_E_LIFECYCLE); /* backwards */
    CHECK_ST(fx_setlc(f, 6), KL_E_LIFECYCLE);
    /* persists */
    fx_reopen(f);
    CHECK(fx_lifecycle(f) == 4);
    CHECK_ST(fx_setlc(f, 5), KL_E_AUTH_REQUIRED); /* the session did not survive the power cycle */
    /* unsigned import refused outside DELIVERY; persistent create needs admin */
    CHECK_ST(fx_data_obj(f, 0x800, 2, 8, NULL), KL_E_AUTH_REQUIRED);
    CHECK_ST(fx_data_obj(f, 0x800, 1, 8, NULL), KL_OK); /* temporary: anyone */
    fx_id_cmd(f, C_DELETE, 0x800);
    /* config outside DELIVERY needs admin */
    CHECK_ST(fx_exec(f, C_GETCFG, NULL, 0), KL_OK);
    uint8_t cfg[12];
    memcpy(cfg, f->resp, 12);
    CHECK_ST(fx_exec(f, C_SETCFG, cfg, 12), KL_E_AUTH_REQUIRED);
    CHECK_ST(fx_auth(f, 0x1001, adm), KL_OK);
    CHECK_ST(fx_exec(f, C_SETCFG, cfg, 12), KL_OK);
    CHECK_ST(fx_data_obj(f, 0x800, 2, 8, NULL), KL_OK);
    fx_id_cmd(f, C_DELETE, 0x800);
    CHECK_ST(fx_setlc(f, 5), KL_OK);
    CHECK(fx_lifecycle(f) == 5);
}

static void test_config(struct fx *f)
{
    CHECK_ST(fx_exec(f, C_GETCFG, NULL, 0), KL_OK);
    CHECK(f->rlen == 12);
    /* defaults: TERMINATED allowed, factory reset allowed, all reset events, wd off */
    CHECK(f->resp[0] == 0x0A && f->resp[1] == 0x0F && f->resp[2] == 0 && f->resp[3] == 0);
    uint8_t cfg[12];
    memcpy(cfg, f->resp, 12);
    uint8_t bad[12];
    memcpy(bad, cfg, 12);
    bad[0] = 0x20;
    CHECK_ST(fx_exec(f, C_SETCFG, bad, 12), KL_E_BAD_PARAM);
    memcpy(bad, cfg, 12);
    bad[1] = 0x10;
    CHECK_ST(fx_exec(f, C_SETCFG, bad, 12), KL_E_BAD_PARAM);
    memcpy(bad, cfg, 12);
    bad[2] = 2;
    CHECK_ST(fx_exec(f, C_SETCFG, bad, 12), KL_E_BAD_PARAM);
    memcpy(bad, cfg, 12);
    bad[3] = 1;
    CHECK_ST(fx_exec(f, C_SETCFG, bad, 12), KL_E_BAD_PARAM);
    memcpy(bad, cfg, 12);
    bad[0] |= 0x10;
    kl_put32(bad + 8, 0);
    CHECK_ST(fx_exec(f, C_SETCFG, bad, 12), KL_E_BAD_PARAM);
    CHECK_ST(fx_exec(f, C_SETCFG, cfg, 11), KL_E_BAD_LENGTH);
    CHECK_ST(fx_exec(f, C_GETCFG, NULL, 0), KL_OK);
    CHECK(memcmp(f->resp, cfg, 12) == 0);
    /* in DELIVERY anyone may set it; it persists */
    cfg[0] &= (uint8_t)~0x02; /* TERMINATED not allowed */
    CHECK_ST(fx_exec(f, C_SETCFG, cfg, 12), KL_OK);
    fx_reopen(f);
    CHECK_ST(fx_exec(f, C_GETCFG, NULL, 0), KL_OK);
    CHECK(memcmp(f->resp, cfg, 12) == 0);
}

/* TERMINATED refused by config, then allowed; once there only GET_STATUS answers. */
static void test_terminate(struct fx *f, struct hkey *adm)
{
    CHECK_ST(fx_auth(f, 0x1001, adm), KL_OK);
    CHECK_ST(fx_setlc(f, 6), KL_E_LIFECYCLE); /* config forbids it (test_config) */
    CHECK(fx_lifecycle(f) == 5);
    CHECK_ST(fx_exec(f, C_GETCFG, NULL, 0), KL_OK);
    uint8_t cfg[12];
    memcpy(cfg, f->resp, 12);
    cfg[0] |= 0x02;
    CHECK_ST(fx_exec(f, C_SETCFG, cfg, 12), KL_OK);
    CHECK_ST(fx_data_obj(f, 0x900, 2, 8, NULL), KL_OK);
    uint8_t d[8] = "abcdefgh";
    CHECK_ST(fx_write(f, 0x900, 0, d, 8), KL_OK);
    CHECK_ST(fx_setlc(f, 6), KL_OK);
    CHECK(fx_lifecycle(f) == 6);
    static const uint8_t cmds[] = {C_CREATE,  C_DELETE, C_READ,   C_WRITE,     C_LIST,    C_INFO,
                                   C_COUNTER, C_GENKEY, C_IMPORT, C_SETLC,     C_SETCFG,  C_GETCFG,
                                   C_PING,    C_CHAL,   C_AUTH,   C_AUTHRESET, C_FACTORY, C_TAMPER,
                                   C_KICK,    C_RESET,  C_BOOT,   0xC8,        0xD0,      0xDC};
    uint8_t req[64] = {0x09, 0x00, 0, 0, 0, 8};
    for (size_t i = 0; i < sizeof cmds; i++)
        CHECK_ST(fx_exec(f, cmds[i], req, 6), KL_E_TERMINATED);
    uint8_t s[2048];
    fx_status(f, s);
    CHECK(s[45] == 6);
    struct kl_obj *o = kl_obj_find(f->c, 0x900);
    CHECK(o != NULL);
    CHECK_ST(kl_obj_for_use(f->c, 0x1001, 0x08, 0x01, NULL), KL_E_TERMINATED);
    fx_reopen(f);
    CHECK(fx_lifecycle(f) == 6);
    CHECK_ST(fx_read(f, 0x900, 0, 8), KL_E_TERMINATED);
}

static void test_factory_reset(struct hkey *adm)
{
    struct fx f;
    fx_open(&f);
    uint8_t s1[2048], s2[2048];
    fx_status(&f, s1);
    fx_admin_key(&f, 0x1001, adm);
    CHECK_ST(fx_data_obj(&f, 0x900, 2, 8, NULL), KL_OK);
    CHECK_ST(fx_exec(&f, C_FACTORY, NULL, 0), KL_E_AUTH_REQUIRED);
    CHECK_ST(fx_auth(&f, 0x1001, adm), KL_OK);
    CHECK_ST(fx_setlc(&f, 4), KL_OK);
    CHECK_ST(fx_exec(&f, C_GETCFG, NULL, 0), KL_OK);
    uint8_t cfg[12];
    memcpy(cfg, f.resp, 12);
    cfg[0] &= (uint8_t)~0x08;
    CHECK_ST(fx_exec(&f, C_SETCFG, cfg, 12), KL_OK);
    CHECK_ST(fx_exec(&f, C_FACTORY, NULL, 0), KL_E_ACCESS_DENIED);
    cfg[0] |= 0x08;
    CHECK_ST(fx_exec(&f, C_SETCFG, cfg, 12), KL_OK);
    CHECK_ST(fx_exec(&f, C_FACTORY, f.resp, 1), KL_E_BAD_LENGTH);
    CHECK_ST(fx_exec(&f, C_FACTORY, NULL, 0), KL_OK);
    fx_status(&f, s2);
    CHECK(s2[45] == 3 && kl_be16(s2 + 48) == 8192 && (s2[58] & 1) == 0);
    CHECK(memcmp(s1 + 21, s2 + 21, 24) == 0); /* same serial */
    CHECK_ST(fx_id_cmd(&f, C_INFO, 0x1001), KL_E_NOT_FOUND);
    fx_reopen(&f);
    fx_status(&f, s2);
    CHECK(s2[45] == 3 && kl_be16(s2 + 48) == 8192);
    CHECK(memcmp(s1 + 21, s2 + 21, 24) == 0);
    fx_close(&f);
    hkey_free(adm);
}

int main(void)
{
    struct fx f;
    struct hkey adm, adm2;
    fx_open(&f);
    fx_admin_key(&f, 0x1001, &adm);
    test_admin_auth(&f, &adm);
    test_config(&f);
    test_steps(&f, &adm);
    test_terminate(&f, &adm);
    fx_close(&f);
    test_factory_reset(&adm2);
    hkey_free(&adm);
    if (kl_fails) fprintf(stderr, "%d check(s) failed\n", kl_fails);
    return kl_fails ? 1 : 0;
}
