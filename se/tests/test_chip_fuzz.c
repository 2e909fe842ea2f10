/* Random command sequences against the core commands: the chip never crashes, a failed
 * command answers an empty payload and changes nothing a host or the image can see, and
 * the storage accounting always adds up. Seed from KL_FUZZ_SEED (printed). */
#include "chip_fixture.h"

#include <time.h>

static uint64_t rng;

static uint32_t rnd(void)
{
    rng ^= rng >> 12;
    rng ^= rng << 25;
    rng ^= rng >> 27;
    return (uint32_t)((rng * 2685821657736338717ULL) >> 32);
}

/* Everything a failed command must leave alone: the persistent image bytes plus every
 * object (temporary ones too) with its data, and the session flags. */
static size_t view(struct kl_chip *c, uint8_t **out)
{
    uint8_t *img;
    size_t n;
    if (kl_state_encode(c, &img, &n) != KL_OK) exit(2);
    size_t cap = n + 8 + (size_t)c->st.nobj * 40 + c->st.pool_used;
    uint8_t *v = malloc(cap), *p = v;
    memcpy(p, img, n);
    p += n;
    free(img);
    *p++ = c->st.admin;
    *p++ = c->st.boot_ok;
    *p++ = c->st.lifecycle;
    kl_put16(p, c->st.nobj);
    p += 2;
    for (size_t i = 0; i < c->st.nobj; i++) {
        const struct kl_obj *o = &c->st.obj[i];
        kl_put16(p, o->id);
        p[2] = o->type;
        p[3] = o->props;
        kl_put16(p + 4, o->size);
        kl_put16(p + 6, o->used);
        kl_put32(p + 8, o->writes);
        p[12] = o->has_key;
        p += 13;
        memcpy(p, c->st.pool + o->off, o->size);
        p += o->size;
    }
    *out = v;
    return (size_t)(p - v);
}

static const uint16_t ids[] = {0x0001, 0x0002, 0x0010, 0x1000, 0x1001, 0x2000, 0x0000, 0xFFFF};

static void rand_rules(uint8_t r[9])
{
    for (int i = 0; i < 9; i++)
        r[i] = 0;
    for (int s = 0; s < 3; s++) {
        if (rnd() % 8 == 0) { /* sometimes junk */
            r[3 * s] = (uint8_t)rnd();
            r[3 * s + 1] = (uint8_t)rnd();
            r[3 * s + 2] = (uint8_t)(rnd() % 2);
        } else {
            r[3 * s] = (uint8_t)(rnd() % 32);
            r[3 * s + 1] = r[3 * s] ? (uint8_t)(1 + rnd() % 31) : 0;
        }
    }
}

/* A request for cmd, mostly well-formed, sometimes not. */
static size_t make_req(uint8_t cmd, uint8_t *r)
{
    uint16_t id = ids[rnd() % (sizeof ids / sizeof ids[0])];
    size_t n = 0;
    switch (cmd) {
    case C_CREATE: {
        static const uint8_t types[] = {1, 2, 3, 4, 5, 6, 7, 0, 8};
        static const uint16_t sizes[] = {16, 32, 48, 64, 96, 4, 1, 100, 2048, 5000, 0, 8161};
        static const uint8_t kts[] = {0, 1, 2, 3, 4, 5};
        static const uint8_t uses[] = {0x00, 0x01, 0x02, 0x08, 0x10, 0x20, 0x80, 0xD1, 0xFF, 0x03};
        static const uint8_t algs[] = {0x00, 0x01, 0x02, 0x10, 0x14, 0x15, 0x20, 0x30, 0x07};
        kl_put16(r, id);
        r[2] = types[rnd() % sizeof types];
        r[3] = (uint8_t)(rnd() % 8);
        kl_put16(r + 4, sizes[rnd() % (sizeof sizes / sizeof sizes[0])]);
        rand_rules(r + 6);
        r[15] = kts[rnd() % sizeof kts];
        r[16] = uses[rnd() % sizeof uses];
        r[17] = algs[rnd() % sizeof algs];
        r[18] = uses[rnd() % sizeof uses];
        r[19] = algs[rnd() % sizeof algs];
        kl_put32(r + 20, rnd());
        n = (r[2] == 5 || r[2] == 7) ? 24 : 20;
        break;
    }
    case C_DELETE:
    case C_INFO:
    case C_LIST:
    case C_GENKEY:
        kl_put16(r, id);
        n = 2;
        break;
    case C_READ:
        kl_put16(r, id);
        kl_put16(r + 2, (uint16_t)(rnd() % 3 ? rnd() % 64 : rnd()));
        kl_put16(r + 4, (uint16_t)(rnd() % 3 ? 1 + rnd() % 64 : rnd()));
        n = 6;
        break;
    case C_WRITE:
        kl_put16(r, id);
        kl_put16(r + 2, (uint16_t)(rnd() % 3 ? rnd() % 64 : rnd()));
        n = 4 + rnd() % 100;
        for (size_t i = 4; i < n; i++)
            r[i] = (uint8_t)rnd();
        break;
    case C_COUNTER:
        kl_put16(r, id);
        kl_put32(r + 2, rnd() % 4 ? rnd() % 10 : rnd());
        n = 6;
        break;
    case C_IMPORT: {
        kl_put16(r, id);
        size_t m = (rnd() % 2) ? (size_t)(16 << (rnd() % 3)) : 96;
        kl_put16(r + 2, (uint16_t)m);
        for (size_t i = 0; i < m; i++)
            r[4 + i] = (uint8_t)rnd();
        n = 4 + m + (rnd() % 2 ? 64 : 0);
        break;
    }
    case C_SETLC:
        r[0] = (uint8_t)(2 + rnd() % 6);
        n = 1;
        break;
    case C_SETCFG:
        for (int i = 0; i < 12; i++)
            r[i] = (uint8_t)(rnd() % 4 ? 0 : rnd());
        r[0] = (uint8_t)(rnd() % 0x20) & (uint8_t)~0x01; /* keep the channel optional */
        n = 12;
        break;
    case C_AUTH:
    case C_BOOT:
        kl_put16(r, id);
        n = cmd == C_AUTH ? 66 : 98;
        for (size_t i = 2; i < n; i++)
            r[i] = (uint8_t)rnd();
        break;
    default:
        n = 0;
    }
    if (rnd() % 16 == 0) n = rnd() % 40; /* wrong length */
    return n;
}

/* Rules no command can set (execute only), written into the chip behind its back and then
 * committed as a command would, so memory and disk agree even if no command follows. */
static void set_rules(struct fx *f, uint16_t id, const uint8_t rules[9])
{
    memcpy(kl_obj_find(f->c, id)->rules, rules, 9);
    f->c->uncommitted = 1;
    kl_chip_retry_commit(f->c);
}

int main(void)
{
    const char *s = getenv("KL_FUZZ_SEED");
    rng = s ? strtoull(s, NULL, 0) : ((uint64_t)time(NULL) * 2654435761u) ^ (uint64_t)getpid();
    if (!rng) rng = 1;
    printf("fuzz seed %llu (set KL_FUZZ_SEED to repeat)\n", (unsigned long long)rng);
    static const uint8_t cmds[] = {C_CREATE, C_CREATE, C_CREATE, C_DELETE,  C_READ,      C_WRITE,
                                   C_WRITE,  C_LIST,   C_INFO,   C_COUNTER, C_GENKEY,    C_IMPORT,
                                   C_SETLC,  C_SETCFG, C_CHAL,   C_AUTH,    C_AUTHRESET, C_KICK,
                                   C_BOOT,   C_STATUS, C_GETCFG, C_PING};
    struct fx f;
    struct hkey adm;
    hkey_new(&adm);
    uint8_t adm_rules[9];
    if (kl_rules_parse("e=x:e=x:e=x", adm_rules) != KL_OK) return 2;
    fx_open(&f);
    /* an admin key the random commands cannot delete or replace, used now and then */
    CHECK_ST(fx_create(&f, 0x1001, 2, 2, 64, RULES_ALL, 4, 0x08, 0x01, 0xFF, 0, 0), KL_OK);
    CHECK_ST(fx_import(&f, 0x1001, adm.pub, 64, NULL), KL_OK);
    set_rules(&f, 0x1001, adm_rules);
    int fails = 0, oks = 0, auths = 0, steps = 0;
    static uint8_t req[2048];
    for (int it = 0; it < 4000 && !kl_fails; it++) {
        if (rnd() % 40 == 0) auths += fx_auth(&f, 0x1001, &adm) == KL_OK;
        uint8_t cmd = cmds[rnd() % sizeof cmds];
        size_t n = make_req(cmd, req);
        uint8_t *before, *after;
        size_t nb = view(f.c, &before);
        kl_status st = fx_exec(&f, cmd, req, n);
        size_t na = view(f.c, &after);
        if (st == KL_OK) {
            oks++;
            steps += cmd == C_SETLC;
        } else {
            fails++;
            /* a failed VERIFY_BOOT may reset the chip on purpose (config) */
            int may_reset = cmd == C_BOOT && st == KL_E_VERIFY_FAILED;
            if (!may_reset && (na != nb || memcmp(before, after, na) != 0)) {
                fprintf(stderr, "iteration %d: cmd 0x%02X failed with %s but changed state\n", it,
                        cmd, kl_status_name(st));
                kl_fails++;
            }
        }
        /* accounting */
        size_t used = 0;
        for (size_t i = 0; i < f.c->st.nobj; i++)
            used += KL_OBJ_OVERHEAD + f.c->st.obj[i].size;
        if (used + kl_store_free(&f.c->st) != KL_STORAGE_TOTAL || used > KL_STORAGE_TOTAL) {
            fprintf(stderr, "iteration %d: storage accounting broken\n", it);
            kl_fails++;
        }
        free(before);
        free(after);
        if (fx_lifecycle(&f) == 6) { /* start over from a fresh chip */
            fx_close(&f);
            fx_open(&f);
            CHECK_ST(fx_create(&f, 0x1001, 2, 2, 64, RULES_ALL, 4, 0x08, 0x01, 0xFF, 0, 0), KL_OK);
            CHECK_ST(fx_import(&f, 0x1001, adm.pub, 64, NULL), KL_OK);
            set_rules(&f, 0x1001, adm_rules);
        }
    }
    /* what is on disk equals what is in memory */
    uint8_t *v1, *v2;
    size_t n1 = 0, n2 = 0;
    CHECK_ST(kl_state_encode(f.c, &v1, &n1), KL_OK);
    fx_reopen(&f);
    CHECK_ST(kl_state_encode(f.c, &v2, &n2), KL_OK);
    CHECK(n1 == n2 && memcmp(v1, v2, n1) == 0);
    free(v1);
    free(v2);
    fx_close(&f);
    printf("%d ok, %d refused, %d admin sessions, %d life-cycle steps\n", oks, fails, auths, steps);
    CHECK(oks > 100 && fails > 100 && auths > 10); /* steps: informative only */
    hkey_free(&adm);
    if (kl_fails) fprintf(stderr, "%d check(s) failed\n", kl_fails);
    return kl_fails ? 1 : 0;
}
