/* Tamper, reset pulse, watchdog and secure boot. */
#include "chip_fixture.h"

static int exists(struct fx *f, uint16_t id)
{
    return fx_id_cmd(f, C_INFO, id) == KL_OK;
}

static uint32_t resets(struct fx *f)
{
    uint8_t s[2048];
    fx_status(f, s);
    return kl_be32(s + 54);
}

static uint32_t tampers(struct fx *f)
{
    uint8_t s[2048];
    fx_status(f, s);
    return kl_be32(s + 50);
}

static void test_tamper(void)
{
    struct fx f;
    struct hkey adm;
    fx_open(&f);
    fx_admin_key(&f, 0x1001, &adm);
    /* persistent, persistent+wipe, temporary, temporary+wipe, of several types */
    CHECK_ST(fx_data_obj(&f, 0x10, 2, 8, NULL), KL_OK);
    CHECK_ST(fx_data_obj(&f, 0x11, 6, 8, NULL), KL_OK);
    CHECK_ST(fx_data_obj(&f, 0x12, 1, 8, NULL), KL_OK);
    CHECK_ST(fx_data_obj(&f, 0x13, 5, 8, NULL), KL_OK);
    CHECK_ST(fx_create(&f, 0x14, 3, 6, 96, NULL, 4, 0x01, 0x01, 0xFF, 0, 0), KL_OK);
    CHECK_ST(fx_create(&f, 0x15, 3, 2, 96, NULL, 4, 0x01, 0x01, 0xFF, 0, 0), KL_OK);
    CHECK_ST(fx_create(&f, 0x16, 5, 6, 4, NULL, 0, 0xFF, 0, 0xFF, 0, 3), KL_OK);
    uint8_t d[8] = "tamper!!";
    CHECK_ST(fx_write(&f, 0x10, 0, d, 8), KL_OK);
    CHECK_ST(fx_id_cmd(&f, C_GENKEY, 0x15), KL_OK);
    uint8_t pub[64];
    memcpy(pub, f.resp, 64);
    CHECK_ST(fx_auth(&f, 0x1001, &adm), KL_OK);
    uint32_t t0 = tampers(&f), r0 = resets(&f);
    CHECK_ST(fx_exec(&f, C_TAMPER, d, 1), KL_E_BAD_LENGTH);
    CHECK(exists(&f, 0x11) && tampers(&f) == t0);
    CHECK_ST(fx_exec(&f, C_TAMPER, NULL, 0), KL_OK);
    CHECK(tampers(&f) == t0 + 1);
    CHECK(resets(&f) == r0 + 1); /* default config: tamper also resets */
    CHECK(exists(&f, 0x10) && exists(&f, 0x15) && exists(&f, 0x1001));
    CHECK(!exists(&f, 0x11) && !exists(&f, 0x12) && !exists(&f, 0x13) && !exists(&f, 0x14) &&
          !exists(&f, 0x16));
    CHECK_ST(fx_read(&f, 0x10, 0, 8), KL_OK);
    CHECK(memcmp(f.resp, d, 8) == 0);
    CHECK_ST(fx_read(&f, 0x15, 0, 64), KL_OK);
    CHECK(memcmp(f.resp, pub, 64) == 0);
    uint8_t s[2048];
    fx_status(&f, s);
    CHECK((s[58] & 1) == 0); /* the reset ended the admin session */
    CHECK(s[45] == 3);
    CHECK(kl_be16(s + 48) == 8192 - (32 + 64) - (32 + 8) - (32 + 96));
    /* survives reopen: the wipe is durable */
    fx_reopen(&f);
    CHECK(tampers(&f) == t0 + 1 && !exists(&f, 0x11) && exists(&f, 0x10));
    /* tamper action 1: also TERMINATED; reset event off: admin stays */
    CHECK_ST(fx_exec(&f, C_GETCFG, NULL, 0), KL_OK);
    uint8_t cfg[12];
    memcpy(cfg, f.resp, 12);
    cfg[1] = 0;
    cfg[2] = 1;
    CHECK_ST(fx_exec(&f, C_SETCFG, cfg, 12), KL_OK);
    CHECK_ST(fx_auth(&f, 0x1001, &adm), KL_OK);
    r0 = resets(&f);
    CHECK_ST(fx_exec(&f, C_TAMPER, NULL, 0), KL_OK);
    fx_status(&f, s);
    CHECK(s[45] == 6 && kl_be32(s + 54) == r0 && (s[58] & 1) == 1);
    CHECK_ST(fx_read(&f, 0x10, 0, 8), KL_E_TERMINATED);
    fx_close(&f);
    hkey_free(&adm);
}

static int tls_freed;
static void fake_tls_free(struct kl_chip *c)
{
    tls_freed++;
    c->tls = NULL;
    c->tls_free = NULL;
}

/* Tamper without the reset event: no reset, but RAM sessions (hash/MAC/cipher contexts,
 * TLS) go, since they may hold keys of wiped objects. */
static void test_tamper_sessions(void)
{
    struct fx f;
    struct hkey adm;
    fx_open(&f);
    fx_admin_key(&f, 0x1001, &adm);
    CHECK_ST(fx_exec(&f, C_GETCFG, NULL, 0), KL_OK);
    uint8_t cfg[12];
    memcpy(cfg, f.resp, 12);
    cfg[1] = 0;
    CHECK_ST(fx_exec(&f, C_SETCFG, cfg, 12), KL_OK);
    CHECK_ST(fx_auth(&f, 0x1001, &adm), KL_OK);
    uint8_t alg = 1;
    CHECK_ST(fx_exec(&f, 0xD0, &alg, 1), KL_OK); /* MD_INIT */
    CHECK(f.rlen == 1);
    uint8_t upd[4] = {f.resp[0], 'a', 'b', 'c'};
    CHECK_ST(fx_exec(&f, 0xD1, upd, 4), KL_OK);
    static int dummy;
    f.c->tls = &dummy;
    f.c->tls_free = fake_tls_free;
    uint32_t r0 = resets(&f);
    tls_freed = 0;
    CHECK_ST(fx_exec(&f, C_TAMPER, NULL, 0), KL_OK);
    CHECK(tls_freed == 1 && f.c->tls == NULL);
    CHECK_ST(fx_exec(&f, 0xD1, upd, 4), KL_E_STATE); /* the hash context is gone */
    CHECK(resets(&f) == r0);
    uint8_t s[2048];
    fx_status(&f, s);
    CHECK((s[58] & 1) == 1); /* no reset: the admin session stays */
    /* reset and close call the hook too */
    f.c->tls = &dummy;
    f.c->tls_free = fake_tls_free;
    CHECK_ST(fx_exec(&f, C_RESET, NULL, 0), KL_OK);
    CHECK(tls_freed == 2);
    f.c->tls = &dummy;
    f.c->tls_free = fake_tls_free;
    fx_close(&f);
    CHECK(tls_freed == 3);
    hkey_free(&adm);
}

static void test_reset(void)
{
    struct fx f;
    struct hkey adm;
    fx_open(&f);
    fx_admin_key(&f, 0x1001, &adm);
    CHECK_ST(fx_data_obj(&f, 0x20, 2, 8, NULL), KL_OK);
    CHECK_ST(fx_data_obj(&f, 0x21, 1, 8, NULL), KL_OK);
    CHECK_ST(fx_data_obj(&f, 0x22, 6, 8, NULL), KL_OK);
    CHECK_ST(fx_auth(&f, 0x1001, &adm), KL_OK);
    CHECK_ST(fx_exec(&f, C_CHAL, NULL, 0), KL_OK);
    uint8_t ch[16];
    memcpy(ch, f.resp, 16);
    f.c->channel_open = 1;
    uint32_t r0 = resets(&f);
    CHECK_ST(fx_exec(&f, C_RESET, ch, 1), KL_E_BAD_LENGTH);
    CHECK(resets(&f) == r0);
    CHECK_ST(fx_exec(&f, C_RESET, NULL, 0), KL_OK);
    CHECK(resets(&f) == r0 + 1);
    CHECK(f.c->channel_open == 0);
    uint8_t s[2048];
    fx_status(&f, s);
    CHECK(s[58] == 0);
    CHECK(exists(&f, 0x20) && !exists(&f, 0x21) && exists(&f, 0x22));
    /* the challenge died with the reset */
    uint8_t r[66];
    kl_put16(r, 0x1001);
    hkey_sign_msg(&adm, ch, 16, r + 2);
    CHECK_ST(fx_exec(&f, C_AUTH, r, 66), KL_E_AUTH_FAILED);
    fx_reopen(&f);
    CHECK(resets(&f) == r0 + 1);
    fx_close(&f);
    hkey_free(&adm);
}

static void test_watchdog(void)
{
    struct fx f;
    fx_open(&f);
    CHECK_ST(fx_data_obj(&f, 0x30, 1, 8, NULL), KL_OK);
    uint32_t r0 = resets(&f);
    /* disabled: time passes, nothing happens; kick is harmless */
    kl_chip_tick(f.c, 1000);
    kl_chip_tick(f.c, 10000000);
    CHECK_ST(fx_exec(&f, C_KICK, NULL, 0), KL_OK);
    CHECK_ST(fx_exec(&f, C_KICK, (uint8_t[]){0}, 1), KL_E_BAD_LENGTH);
    CHECK(resets(&f) == r0 && exists(&f, 0x30));
    /* enable: initial 1000 ms, normal 300 ms */
    CHECK_ST(fx_exec(&f, C_GETCFG, NULL, 0), KL_OK);
    uint8_t cfg[12];
    memcpy(cfg, f.resp, 12);
    cfg[0] |= 0x10;
    kl_put32(cfg + 4, 1000);
    kl_put32(cfg + 8, 300);
    CHECK_ST(fx_exec(&f, C_SETCFG, cfg, 12), KL_OK); /* armed at t=10000000 */
    uint64_t t = 10000000;
    kl_chip_tick(f.c, t + 999);
    CHECK(resets(&f) == r0 && exists(&f, 0x30));
    CHECK_ST(fx_exec(&f, C_KICK, NULL, 0), KL_OK); /* now deadline t+999+300 */
    kl_chip_tick(f.c, t + 1200);
    CHECK(resets(&f) == r0);
    CHECK_ST(fx_exec(&f, C_KICK, NULL, 0), KL_OK); /* t+1500 */
    kl_chip_tick(f.c, t + 1499);
    CHECK(resets(&f) == r0 && exists(&f, 0x30));
    f.c->channel_open = 1;
    kl_chip_tick(f.c, t + 1500); /* expired: reset */
    CHECK(resets(&f) == r0 + 1);
    CHECK(!exists(&f, 0x30) && f.c->channel_open == 0);
    /* after the reset the initial period applies again */
    kl_chip_tick(f.c, t + 2499);
    CHECK(resets(&f) == r0 + 1);
    kl_chip_tick(f.c, t + 2500);
    CHECK(resets(&f) == r0 + 2);
    /* the count is durable; after reopen the watchdog starts with the first tick */
    fx_reopen(&f);
    CHECK(resets(&f) == r0 + 2);
    kl_chip_tick(f.c, 5);
    kl_chip_tick(f.c, 1004);
    CHECK(resets(&f) == r0 + 2);
    kl_chip_tick(f.c, 1005);
    CHECK(resets(&f) == r0 + 3);
    /* reset event "watchdog" off: expiry re-arms without resetting */
    cfg[1] &= (uint8_t)~0x08;
    CHECK_ST(fx_exec(&f, C_SETCFG, cfg, 12), KL_OK);
    CHECK_ST(fx_data_obj(&f, 0x31, 1, 8, NULL), KL_OK);
    kl_chip_tick(f.c, 100000);
    CHECK(resets(&f) == r0 + 3 && exists(&f, 0x31));
    fx_close(&f);
}

/* A key whose rules give x only to role s is unusable until VERIFY_BOOT, and again after
 * a reset. */
static void test_secure_boot(void)
{
    struct fx f;
    struct hkey fw, other;
    fx_open(&f);
    hkey_new(&fw);
    hkey_new(&other);
    CHECK_ST(fx_create(&f, 0x40, 2, 2, 64, NULL, 4, 0x20, 0x01, 0xFF, 0, 0), KL_OK);
    CHECK_ST(fx_import(&f, 0x40, fw.pub, 64, NULL), KL_OK);
    uint8_t r[9];
    CHECK_ST(kl_rules_parse("s=x:s=x:s=x", r), KL_OK);
    CHECK_ST(fx_create(&f, 0x41, 3, 2, 96, r, 4, 0x01, 0x01, 0xFF, 0, 0), KL_OK);
    struct kl_obj *o = kl_obj_find(f.c, 0x41);
    uint8_t kp[96];
    memcpy(kp, other.priv, 32);
    memcpy(kp + 32, other.pub, 64);
    CHECK_ST(kl_rules_parse("s=x:s=x:s=x", r), KL_OK);
    memcpy(o->rules, RULES_ALL, 9); /* import needs w: grant it for the setup only */
    CHECK_ST(fx_import(&f, 0x41, kp, 96, NULL), KL_OK);
    o = kl_obj_find(f.c, 0x41);
    memcpy(o->rules, r, 9);
    CHECK_ST(kl_obj_for_use(f.c, 0x41, 0x01, 0x01, NULL), KL_E_BOOT);
    CHECK_ST(kl_obj_for_use(f.c, 0x41, 0x02, 0x01, NULL), KL_E_BOOT);
    /* VERIFY_BOOT: bad length, wrong key usage, bad signature */
    uint8_t req[98];
    kl_put16(req, 0x40);
    for (int i = 0; i < 32; i++)
        req[2 + i] = (uint8_t)(0xF0 ^ i);
    hkey_sign_digest(&fw, req + 2, req + 34);
    CHECK_ST(fx_exec(&f, C_BOOT, req, 97), KL_E_BAD_LENGTH);
    kl_put16(req, 0x41);
    CHECK_ST(fx_exec(&f, C_BOOT, req, 98), KL_E_BOOT); /* gated key cannot verify either */
    CHECK_ST(fx_create(&f, 0x42, 2, 2, 64, NULL, 4, 0x10, 0x01, 0xFF, 0, 0), KL_OK);
    CHECK_ST(fx_import(&f, 0x42, fw.pub, 64, NULL), KL_OK);
    kl_put16(req, 0x42);
    CHECK_ST(fx_exec(&f, C_BOOT, req, 98), KL_E_USAGE);
    kl_put16(req, 0x43);
    CHECK_ST(fx_exec(&f, C_BOOT, req, 98), KL_E_NOT_FOUND);
    /* a bad signature; default config resets the chip on a secure-boot failure */
    uint32_t r0 = resets(&f);
    kl_put16(req, 0x40);
    req[2] ^= 1;
    CHECK_ST(fx_exec(&f, C_BOOT, req, 98), KL_E_VERIFY_FAILED);
    CHECK(resets(&f) == r0 + 1);
    CHECK_ST(kl_obj_for_use(f.c, 0x41, 0x01, 0x01, NULL), KL_E_BOOT);
    req[2] ^= 1;
    CHECK_ST(fx_exec(&f, C_BOOT, req, 98), KL_OK);
    uint8_t s[2048];
    fx_status(&f, s);
    CHECK((s[58] & 4) == 4);
    CHECK_ST(kl_obj_for_use(f.c, 0x41, 0x01, 0x01, &o), KL_OK);
    CHECK(o && memcmp(kl_obj_pub(f.c, o), other.pub, 64) == 0);
    CHECK_ST(kl_obj_for_use(f.c, 0x41, 0x02, 0x01, NULL), KL_E_USAGE);
    /* the reset takes role s away */
    CHECK_ST(fx_exec(&f, C_RESET, NULL, 0), KL_OK);
    fx_status(&f, s);
    CHECK((s[58] & 4) == 0);
    CHECK_ST(kl_obj_for_use(f.c, 0x41, 0x01, 0x01, NULL), KL_E_BOOT);
    CHECK_ST(fx_exec(&f, C_BOOT, req, 98), KL_OK);
    CHECK_ST(kl_obj_for_use(f.c, 0x41, 0x01, 0x01, NULL), KL_OK);
    fx_reopen(&f); /* power cycle: also gone */
    CHECK_ST(kl_obj_for_use(f.c, 0x41, 0x01, 0x01, NULL), KL_E_BOOT);
    fx_close(&f);
    hkey_free(&fw);
    hkey_free(&other);
}

int main(void)
{
    test_tamper();
    test_tamper_sessions();
    test_reset();
    test_watchdog();
    test_secure_boot();
    if (kl_fails) fprintf(stderr, "%d check(s) failed\n", kl_fails);
    return kl_fails ? 1 : 0;
}
