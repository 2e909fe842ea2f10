/* Access rules: text <-> 9 bytes, and their enforcement per role and life-cycle state. */
#include "chip_fixture.h"
#include "rules.h"

static void test_text(void)
{
    uint8_t r[9];
    char t[KL_RULES_TEXT_MAX];
    CHECK_ST(kl_rules_parse("ahs=rwdgx:ah=rx:h=x", r), KL_OK);
    static const uint8_t want[9] = {0x07, 0x1F, 0, 0x03, 0x11, 0, 0x02, 0x10, 0};
    CHECK(memcmp(r, want, 9) == 0);
    CHECK_ST(kl_rules_format(r, t, sizeof t), KL_OK);
    CHECK(strcmp(t, "ahs=rwdgx:ah=rx:h=x") == 0);
    CHECK_ST(kl_rules_parse("-:-:-", r), KL_OK);
    CHECK(memcmp(r, (uint8_t[9]){0}, 9) == 0);
    CHECK_ST(kl_rules_format(r, t, sizeof t), KL_OK);
    CHECK(strcmp(t, "-:-:-") == 0);
    /* non-canonical order parses; printing gives the canonical order */
    CHECK_ST(kl_rules_parse("xesha=xgdwr:-:e=r", r), KL_OK);
    CHECK_ST(kl_rules_format(r, t, sizeof t), KL_OK);
    CHECK(strcmp(t, "ahsex=rwdgx:-:e=r") == 0);
    CHECK(strlen(t) < KL_RULES_TEXT_MAX);
    CHECK_ST(kl_rules_parse("ahsex=rwdgx:ahsex=rwdgx:ahsex=rwdgx", r), KL_OK);
    CHECK_ST(kl_rules_format(r, t, sizeof t), KL_OK);
    CHECK(strlen(t) == KL_RULES_TEXT_MAX - 1);
    CHECK_ST(kl_rules_format(r, t, KL_RULES_TEXT_MAX - 1), KL_E_BUFFER);
    /* every section value round-trips */
    int bad = 0;
    for (int roles = 0; roles < 32; roles++)
        for (int rights = 0; rights < 32; rights++) {
            if ((roles == 0) != (rights == 0)) continue;
            uint8_t a[9] = {(uint8_t)roles, (uint8_t)rights, 0, 0, 0, 0,
                            (uint8_t)roles, (uint8_t)rights, 0};
            uint8_t b[9];
            if (kl_rules_format(a, t, sizeof t) != KL_OK || kl_rules_parse(t, b) != KL_OK ||
                memcmp(a, b, 9) != 0)
                bad++;
        }
    CHECK(bad == 0);
    /* malformed text is refused and leaves out alone */
    static const char *const badtext[] = {
        "",          "-",       "-:-",     "-:-:-:-",   "a=r:-",     "a=r:-:-:",
        "a=:-:-",    "=r:-:-",  "a:-:-",   "a=r=w:-:-", "aa=r:-:-",  "a=rr:-:-",
        "q=r:-:-",   "a=z:-:-", "A=R:-:-", " a=r:-:-",  "a=r :-:-",  "--:-:-",
        "a=r:-:-\n", ":-:-",    "-::-",    "-:-:",      "a=r,w:-:-", "ahsexa=r:-:-",
    };
    for (size_t i = 0; i < sizeof badtext / sizeof badtext[0]; i++) {
        memset(r, 0xEE, 9);
        kl_status st = kl_rules_parse(badtext[i], r);
        if (st != KL_E_BAD_PARAM) fprintf(stderr, "accepted: \"%s\"\n", badtext[i]);
        CHECK_ST(st, KL_E_BAD_PARAM);
        CHECK(r[0] == 0xEE && r[8] == 0xEE);
    }
    CHECK_ST(kl_rules_parse(NULL, r), KL_E_BAD_PARAM);
    /* invalid blocks do not print */
    uint8_t inv[9] = {0x20, 1, 0, 0, 0, 0, 0, 0, 0};
    CHECK_ST(kl_rules_format(inv, t, sizeof t), KL_E_BAD_PARAM);
    uint8_t inv2[9] = {1, 1, 0, 0, 0, 0, 0, 0, 4};
    CHECK_ST(kl_rules_format(inv2, t, sizeof t), KL_E_BAD_PARAM);
    uint8_t inv3[9] = {0, 1, 0, 0, 0, 0, 0, 0, 0};
    CHECK_ST(kl_rules_format(inv3, t, sizeof t), KL_E_BAD_PARAM);
}

/* Rights per state: each right granted to e alone, checked by the command that needs it. */
static void test_enforcement(void)
{
    struct fx f;
    struct hkey adm;
    fx_open(&f);
    fx_admin_key(&f, 0x1001, &adm);
    uint8_t d[4] = {1, 2, 3, 4};
    uint8_t r[9];
    /* read only for everyone in DELIVERY; admin-only write in INITIALIZED; nothing later */
    CHECK_ST(kl_rules_parse("e=r:a=rw:-", r), KL_OK);
    CHECK_ST(fx_data_obj(&f, 0x100, 2, 4, RULES_ALL), KL_OK);
    CHECK_ST(fx_write(&f, 0x100, 0, d, 4), KL_OK);
    CHECK_ST(fx_id_cmd(&f, C_DELETE, 0x100), KL_OK);
    CHECK_ST(fx_data_obj(&f, 0x100, 2, 4, r), KL_OK);
    CHECK_ST(fx_write(&f, 0x100, 0, d, 4), KL_E_ACCESS_DENIED);
    CHECK_ST(fx_read(&f, 0x100, 0, 1), KL_E_OUT_OF_RANGE); /* r allowed; nothing written */
    CHECK_ST(fx_id_cmd(&f, C_DELETE, 0x100), KL_E_ACCESS_DENIED);
    /* key pair: generation only with admin */
    CHECK_ST(kl_rules_parse("a=g:a=g:-", r), KL_OK);
    CHECK_ST(fx_create(&f, 0x101, 3, 2, 96, r, 4, 0x01, 0x01, 0xFF, 0, 0), KL_OK);
    CHECK_ST(fx_id_cmd(&f, C_GENKEY, 0x101), KL_E_ACCESS_DENIED);
    CHECK_ST(fx_read(&f, 0x101, 0, 64), KL_E_ACCESS_DENIED);
    CHECK_ST(kl_obj_for_use(f.c, 0x101, 0x01, 0x01, NULL), KL_E_ACCESS_DENIED);
    CHECK_ST(fx_auth(&f, 0x1001, &adm), KL_OK);
    CHECK_ST(fx_id_cmd(&f, C_GENKEY, 0x101), KL_OK);
    CHECK_ST(fx_write(&f, 0x100, 0, d, 4), KL_E_ACCESS_DENIED); /* a holds no w in DELIVERY */
    CHECK_ST(fx_setlc(&f, 4), KL_OK);
    CHECK_ST(fx_write(&f, 0x100, 0, d, 4), KL_OK); /* INITIALIZED: admin writes */
    CHECK_ST(fx_read(&f, 0x100, 0, 4), KL_OK);
    CHECK_ST(fx_exec(&f, C_AUTHRESET, NULL, 0), KL_OK);
    CHECK_ST(fx_read(&f, 0x100, 0, 4), KL_E_ACCESS_DENIED);
    CHECK_ST(fx_auth(&f, 0x1001, &adm), KL_OK);
    CHECK_ST(fx_setlc(&f, 5), KL_OK);
    CHECK_ST(fx_read(&f, 0x100, 0, 4), KL_E_ACCESS_DENIED); /* OPERATIONAL: "-" */
    CHECK_ST(fx_write(&f, 0x100, 0, d, 4), KL_E_ACCESS_DENIED);
    CHECK_ST(fx_id_cmd(&f, C_DELETE, 0x100), KL_E_ACCESS_DENIED);
    CHECK_ST(fx_id_cmd(&f, C_GENKEY, 0x101), KL_E_ACCESS_DENIED);
    /* host role: only with the channel open (set by the channel code) */
    CHECK_ST(kl_rules_parse("h=rwd:h=rwd:h=rwd", r), KL_OK);
    CHECK_ST(fx_data_obj(&f, 0x102, 2, 4, r), KL_OK);
    CHECK_ST(fx_write(&f, 0x102, 0, d, 4), KL_E_ACCESS_DENIED);
    CHECK(kl_chip_role_host(f.c) == 0);
    f.c->channel_open = 1;
    CHECK(kl_chip_role_host(f.c) == 1);
    CHECK_ST(fx_write(&f, 0x102, 0, d, 4), KL_OK);
    f.c->channel_open = 0;
    CHECK_ST(fx_read(&f, 0x102, 0, 4), KL_E_ACCESS_DENIED);
    /* everyone role x */
    CHECK_ST(kl_rules_parse("x=r:x=r:x=r", r), KL_OK);
    CHECK_ST(fx_data_obj(&f, 0x103, 2, 4, r), KL_OK);
    CHECK_ST(fx_write(&f, 0x103, 0, d, 4), KL_E_ACCESS_DENIED);
    /* require-host config: commands refused without the channel, except the open ones */
    CHECK_ST(fx_exec(&f, C_GETCFG, NULL, 0), KL_OK);
    uint8_t cfg[12];
    memcpy(cfg, f.resp, 12);
    cfg[0] |= 0x01;
    CHECK_ST(fx_exec(&f, C_SETCFG, cfg, 12), KL_OK);
    CHECK_ST(fx_read(&f, 0x102, 0, 4), KL_E_CHANNEL_REQUIRED);
    CHECK_ST(fx_exec(&f, C_GETCFG, NULL, 0), KL_E_CHANNEL_REQUIRED);
    CHECK_ST(fx_exec(&f, 0xDC, (uint8_t[]){0, 4}, 2), KL_E_CHANNEL_REQUIRED);
    CHECK_ST(fx_exec(&f, C_PING, d, 4), KL_OK);
    uint8_t s[2048];
    fx_status(&f, s);
    f.c->channel_open = 1;
    CHECK_ST(fx_read(&f, 0x102, 0, 4), KL_OK);
    cfg[0] &= (uint8_t)~0x01;
    CHECK_ST(fx_exec(&f, C_SETCFG, cfg, 12), KL_OK);
    f.c->channel_open = 0;
    CHECK_ST(fx_exec(&f, C_GETCFG, NULL, 0), KL_OK);
    fx_close(&f);
    hkey_free(&adm);
}

int main(void)
{
    test_text();
    test_enforcement();
    if (kl_fails) fprintf(stderr, "%d check(s) failed\n", kl_fails);
    return kl_fails ? 1 : 0;
}
