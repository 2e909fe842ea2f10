/* Persistence: state survives close/reopen exactly; a failed commit changes nothing;
 * the state decoder refuses every truncated or corrupted image without half-loading. */
#include "chip_fixture.h"

#include <sys/stat.h>

/* Everything a host can see, concatenated: status, config, list, every object's info
 * and readable bytes. */
static size_t snapshot(struct fx *f, uint8_t *out, size_t cap)
{
    size_t n = 0;
    uint8_t s[2048];
    fx_status(f, s);
    s[58] = 0; /* session flags are volatile */
    memcpy(out, s, 59);
    n += 59;
    fx_exec(f, C_GETCFG, NULL, 0);
    memcpy(out + n, f->resp, 12);
    n += 12;
    fx_id_cmd(f, C_LIST, 0);
    size_t cnt = f->rlen / 6;
    uint8_t list[768];
    memcpy(list, f->resp, f->rlen);
    memcpy(out + n, list, f->rlen);
    n += f->rlen;
    for (size_t i = 0; i < cnt; i++) {
        uint16_t id = kl_be16(list + 6 * i);
        fx_id_cmd(f, C_INFO, id);
        memcpy(out + n, f->resp, 27);
        n += 27;
        uint16_t used = kl_be16(f->resp + 20);
        if (f->resp[2] == 1 || used == 0) continue;
        uint16_t len = (f->resp[2] == 3) ? 64 : used;
        if (fx_read(f, id, 0, len > 2048 ? 2048 : len) == KL_OK && n + f->rlen <= cap) {
            memcpy(out + n, f->resp, f->rlen);
            n += f->rlen;
        }
    }
    return n;
}

static void build_state(struct fx *f, struct hkey *adm)
{
    uint8_t d[3000];
    for (size_t i = 0; i < sizeof d; i++)
        d[i] = (uint8_t)(i ^ (i >> 8));
    fx_admin_key(f, 0x1001, adm);
    CHECK_ST(fx_data_obj(f, 0x10, 2, 3000, NULL), KL_OK);
    CHECK_ST(fx_write(f, 0x10, 0, d, 2000), KL_OK);
    CHECK_ST(fx_write(f, 0x10, 2000, d + 2000, 1000), KL_OK);
    CHECK_ST(fx_create(f, 0x11, 3, 2, 96, NULL, 4, 0x01, 0x01, 0xD1, 0x02, 0), KL_OK);
    CHECK_ST(fx_id_cmd(f, C_GENKEY, 0x11), KL_OK);
    CHECK_ST(fx_create(f, 0x12, 1, 2, 32, NULL, 1, 0x02, 0x14, 0x02, 0x15, 0), KL_OK);
    CHECK_ST(fx_id_cmd(f, C_GENKEY, 0x12), KL_OK);
    CHECK_ST(fx_create(f, 0x13, 5, 2, 4, NULL, 0, 0xFF, 0, 0xFF, 0, 100), KL_OK);
    uint8_t r[6] = {0x00, 0x13, 0, 0, 0, 5};
    CHECK_ST(fx_exec(f, C_COUNTER, r, 6), KL_OK);
    CHECK_ST(fx_create(f, 0x14, 6, 2, 500, NULL, 0, 0x10, 0x01, 0xFF, 0, 0), KL_OK);
    CHECK_ST(fx_write(f, 0x14, 100, d, 50), KL_OK);
    uint8_t rules[9];
    CHECK_ST(kl_rules_parse("ae=rwx:a=r:-", rules), KL_OK);
    CHECK_ST(fx_create(f, 0x15, 7, 2, 4, rules, 0, 0xFF, 0, 0xFF, 0, 77), KL_OK);
    CHECK_ST(fx_data_obj(f, 0x16, 1, 10, NULL), KL_OK); /* temporary: gone after reopen */
    CHECK_ST(fx_exec(f, C_TAMPER, NULL, 0), KL_OK);     /* counts tamper + reset */
    CHECK_ST(fx_data_obj(f, 0x17, 1, 10, NULL), KL_OK);
    CHECK_ST(fx_data_obj(f, 0x18, 6, 10, NULL), KL_OK); /* wipe-on-tamper, still here */
    CHECK_ST(fx_write(f, 0x18, 2, d, 3), KL_OK);
    CHECK_ST(fx_auth(f, 0x1001, adm), KL_OK);
    CHECK_ST(fx_setlc(f, 4), KL_OK);
    CHECK_ST(fx_exec(f, C_GETCFG, NULL, 0), KL_OK);
    uint8_t cfg[12];
    memcpy(cfg, f->resp, 12);
    cfg[0] |= 0x04;
    kl_put32(cfg + 4, 1234);
    CHECK_ST(fx_exec(f, C_SETCFG, cfg, 12), KL_OK);
}

static void test_reopen(void)
{
    struct fx f;
    struct hkey adm;
    fx_open(&f);
    build_state(&f, &adm);
    CHECK_ST(fx_id_cmd(&f, C_DELETE, 0x17), KL_OK);
    CHECK_ST(fx_exec(&f, C_AUTHRESET, NULL, 0), KL_OK); /* reads below as after a reopen */
    static uint8_t a[32768], b[32768];
    uint8_t idpub[64];
    memcpy(idpub, kl_chip_identity_pub(f.c), 64);
    size_t na = snapshot(&f, a, sizeof a);
    fx_reopen(&f);
    size_t nb = snapshot(&f, b, sizeof b);
    CHECK(na == nb && memcmp(a, b, na) == 0);
    for (size_t i = 0; i < na && i < nb; i++)
        if (a[i] != b[i]) {
            fprintf(stderr, "differs at %zu of %zu/%zu\n", i, na, nb);
            break;
        }
    CHECK(memcmp(idpub, kl_chip_identity_pub(f.c), 64) == 0);
    uint8_t chk[64];
    CHECK(kl_cx_ec_pub_from_priv(kl_chip_identity_priv(f.c), chk) == KL_OK &&
          memcmp(chk, idpub, 64) == 0);
    /* secret material survived too (not readable: compare inside) */
    size_t n = 0;
    CHECK(kl_obj_secret(f.c, kl_obj_find(f.c, 0x12), &n) != NULL && n == 32);
    /* the session is gone, the admin key works again */
    CHECK_ST(fx_setlc(&f, 5), KL_E_AUTH_REQUIRED);
    CHECK_ST(fx_auth(&f, 0x1001, &adm), KL_OK);
    /* two chips differ in serial and identity */
    struct fx g;
    fx_open(&g);
    uint8_t s1[2048], s2[2048];
    fx_status(&f, s1);
    fx_status(&g, s2);
    CHECK(memcmp(s1 + 21, s2 + 21, 24) != 0);
    CHECK(memcmp(kl_chip_identity_pub(f.c), kl_chip_identity_pub(g.c), 64) != 0);
    /* the same directory cannot be opened twice at once */
    struct kl_chip *c2 = NULL;
    CHECK(kl_chip_open(f.dir, &c2) != KL_OK && c2 == NULL);
    fx_close(&g);
    fx_close(&f);
    hkey_free(&adm);
}

/* A commit that cannot happen: the command answers KL_E_STORAGE and changes nothing. */
static void test_commit_failure(void)
{
    struct fx f;
    struct hkey adm;
    fx_open(&f);
    build_state(&f, &adm);
    static uint8_t a[32768], b[32768];
    size_t na = snapshot(&f, a, sizeof a);
    char tmp[128];
    snprintf(tmp, sizeof tmp, "%s/chip.img.tmp", f.dir);
    CHECK(mkdir(tmp, 0700) == 0); /* the image layer cannot create its temp file */
    uint8_t d[4] = {9, 9, 9, 9};
    CHECK_ST(fx_data_obj(&f, 0x20, 2, 8, NULL), KL_E_STORAGE);
    CHECK_ST(fx_write(&f, 0x10, 0, d, 4), KL_E_STORAGE);
    CHECK_ST(fx_id_cmd(&f, C_DELETE, 0x10), KL_E_STORAGE);
    CHECK_ST(fx_id_cmd(&f, C_GENKEY, 0x11), KL_E_STORAGE);
    uint8_t r[6] = {0x00, 0x13, 0, 0, 0, 1};
    CHECK_ST(fx_exec(&f, C_COUNTER, r, 6), KL_E_STORAGE);
    CHECK_ST(fx_setlc(&f, 5), KL_E_STORAGE);
    CHECK_ST(fx_exec(&f, C_TAMPER, NULL, 0), KL_E_STORAGE);
    CHECK_ST(fx_exec(&f, C_RESET, NULL, 0), KL_E_STORAGE);
    CHECK_ST(kl_obj_store_secret(f.c, 0x12, d, 4), KL_E_BAD_PARAM);
    size_t nb = snapshot(&f, b, sizeof b);
    CHECK(na == nb && memcmp(a, b, na) == 0);
    uint8_t s[2048];
    fx_status(&f, s);
    CHECK((s[58] & 1) == 1); /* the failed RESET did not reset */
    /* temporary objects need no commit */
    CHECK_ST(fx_data_obj(&f, 0x21, 1, 8, NULL), KL_OK);
    CHECK_ST(fx_write(&f, 0x21, 0, d, 4), KL_OK);
    /* a watchdog reset while the disk fails: counted in memory, reads still answer,
     * committed by the next tick once the disk is back */
    CHECK_ST(fx_exec(&f, C_GETCFG, NULL, 0), KL_OK);
    CHECK(rmdir(tmp) == 0);
    uint8_t cfg[12];
    memcpy(cfg, f.resp, 12);
    cfg[0] |= 0x10;
    kl_put32(cfg + 4, 100);
    CHECK_ST(fx_exec(&f, C_SETCFG, cfg, 12), KL_OK);
    CHECK(mkdir(tmp, 0700) == 0);
    fx_status(&f, s);
    uint32_t r0 = kl_be32(s + 54);
    kl_chip_tick(f.c, 1000);
    kl_chip_tick(f.c, 1100); /* expired: reset, commit fails */
    fx_status(&f, s);
    CHECK(kl_be32(s + 54) == r0 + 1);
    CHECK_ST(fx_read(&f, 0x10, 0, 4), KL_OK);
    CHECK(rmdir(tmp) == 0);
    kl_chip_tick(f.c, 1150); /* retries the commit */
    fx_reopen(&f);
    fx_status(&f, s);
    CHECK(kl_be32(s + 54) == r0 + 1);
    CHECK_ST(fx_write(&f, 0x10, 0, d, 4), KL_OK);
    fx_reopen(&f);
    CHECK_ST(fx_read(&f, 0x10, 0, 4), KL_OK);
    CHECK(memcmp(f.resp, d, 4) == 0);
    CHECK(fx_lifecycle(&f) == 4);
    fx_close(&f);
    hkey_free(&adm);
}

/* The decoder against every truncation and single-byte corruption of a real image. */
static void test_hostile_decode(void)
{
    struct fx f;
    struct hkey adm;
    fx_open(&f);
    build_state(&f, &adm);
    uint8_t *img;
    size_t n;
    CHECK_ST(kl_state_encode(f.c, &img, &n), KL_OK);
    struct kl_state *st = malloc(sizeof *st), *orig = malloc(sizeof *orig);
    uint8_t ser[24], ipriv[32], ipub[64];
    CHECK_ST(kl_state_decode(img, n, st, ser, ipriv, ipub, NULL), KL_OK);
    CHECK(st->nobj == 8 && st->lifecycle == 4 && st->tamper_count == 1);
    CHECK(memcmp(ipub, kl_chip_identity_pub(f.c), 64) == 0);
    memset(st, 0xEE, sizeof *st);
    memcpy(orig, st, sizeof *st);
    int bad = 0, accepted_trunc = 0;
    for (size_t len = 0; len < n; len++) {
        if (kl_state_decode(img, len, st, ser, ipriv, ipub, NULL) != KL_E_STORAGE) accepted_trunc++;
        if (memcmp(st, orig, sizeof *st) != 0) bad++;
    }
    CHECK(accepted_trunc == 0 && bad == 0);
    uint8_t *tail = malloc(n + 1);
    memcpy(tail, img, n);
    tail[n] = 0;
    CHECK_ST(kl_state_decode(tail, n + 1, st, ser, ipriv, ipub, NULL), KL_E_STORAGE);
    free(tail);
    /* flip each byte of the headers (object data bytes may legitimately be anything) */
    uint8_t *m = malloc(n);
    int crashed_or_half = 0, accepted = 0;
    for (size_t i = 0; i < n; i++) {
        static const uint8_t flips[] = {0x01, 0x80, 0xFF};
        for (size_t k = 0; k < sizeof flips; k++) {
            memcpy(m, img, n);
            m[i] ^= flips[k];
            memset(st, 0xEE, sizeof *st);
            kl_status rc = kl_state_decode(m, n, st, ser, ipriv, ipub, NULL);
            if (rc == KL_OK) {
                accepted++;
                /* an accepted image is self-consistent */
                if (st->nobj > KL_MAX_OBJS || kl_store_free(st) > KL_STORAGE_TOTAL)
                    crashed_or_half++;
            } else if (rc != KL_E_STORAGE || memcmp(st, orig, sizeof *st) != 0) {
                crashed_or_half++;
            }
        }
    }
    CHECK(crashed_or_half == 0);
    CHECK(accepted < (int)(3 * n)); /* most corruptions are caught */
    /* specific refusals */
    memcpy(m, img, n);
    m[0] = 'X';
    CHECK_ST(kl_state_decode(m, n, st, ser, ipriv, ipub, NULL), KL_E_STORAGE);
    memcpy(m, img, n);
    m[5] = 2; /* version */
    CHECK_ST(kl_state_decode(m, n, st, ser, ipriv, ipub, NULL), KL_E_STORAGE);
    memcpy(m, img, n);
    m[6] = 7; /* life cycle */
    CHECK_ST(kl_state_decode(m, n, st, ser, ipriv, ipub, NULL), KL_E_STORAGE);
    /* a key pair whose public half does not belong to its scalar (object 0x11's data) */
    const char *why = NULL;
    struct kl_obj *kp = kl_obj_find(f.c, 0x11);
    const uint8_t *pub = kl_obj_pub(f.c, kp);
    uint8_t *at = memmem(img, n, pub, 64);
    CHECK(at != NULL);
    if (at) {
        memcpy(m, img, n);
        m[at - img + 63] ^= 1;
        CHECK_ST(kl_state_decode(m, n, st, ser, ipriv, ipub, &why), KL_E_STORAGE);
        CHECK(why && strcmp(why, "bad key material") == 0);
    }
    free(m);
    free(img);
    free(st);
    free(orig);
    fx_close(&f);
    hkey_free(&adm);
}

/* A damaged image file on disk: the chip refuses to open rather than start empty. */
static void test_damaged_file(void)
{
    struct fx f;
    fx_open(&f);
    CHECK_ST(fx_data_obj(&f, 0x10, 2, 8, NULL), KL_OK);
    kl_chip_close(f.c);
    f.c = NULL;
    char p[128];
    snprintf(p, sizeof p, "%s/chip.img", f.dir);
    FILE *fp = fopen(p, "r+b");
    CHECK(fp != NULL);
    if (fp) {
        fseek(fp, 40, SEEK_SET);
        int ch = fgetc(fp);
        fseek(fp, 40, SEEK_SET);
        fputc(ch ^ 0x10, fp);
        fclose(fp);
    }
    struct kl_chip *c = NULL;
    CHECK_ST(kl_chip_open(f.dir, &c), KL_E_STORAGE);
    CHECK(c == NULL);
    fx_close(&f);
}

int main(void)
{
    test_reopen();
    test_commit_failure();
    test_hostile_decode();
    test_damaged_file();
    if (kl_fails) fprintf(stderr, "%d check(s) failed\n", kl_fails);
    return kl_fails ? 1 : 0;
}
