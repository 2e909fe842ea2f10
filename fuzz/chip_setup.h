/*
 * A chip for the chip harnesses: opened once in a temp dir (tmpfs when there is one),
 * provisioned with objects of every kind so that fuzz inputs reach deep code (keys for
 * every algorithm, a root certificate, data, counters), then snapshotted. Each input
 * starts from that snapshot: same objects, no sessions, no channel, no TLS session.
 */
#ifndef KL_FUZZ_CHIP_SETUP_H
#define KL_FUZZ_CHIP_SETUP_H

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "chip_int.h"
#include "image.h"
#include "fuzz.h"
#include "fuzz_certs.h"

static struct kl_chip *fz_chip;
static struct kl_state fz_base;
static char fz_dir[64];
static uint8_t *fz_resp; /* exactly KL_MAX_PAYLOAD bytes: ASan sees any overrun */

static void fz_chip_cleanup(void)
{
    kl_chip_close(fz_chip);
    fz_chip = NULL;
    static const char *files[] = {"chip.img", "chip.key", "chip.img.tmp", "chip.lock"};
    char p[128];
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        snprintf(p, sizeof p, "%s/%s", fz_dir, files[i]);
        unlink(p);
    }
    rmdir(fz_dir);
}

static kl_status fz_exec(uint8_t cmd, const uint8_t *req, size_t n, size_t *rlen)
{
    return kl_chip_execute(fz_chip, cmd, req, n, fz_resp, KL_MAX_PAYLOAD, rlen);
}

/* CREATE_OBJECT with rules that grant every right to every role in every state. */
static void fz_create(uint16_t id, uint8_t type, uint16_t size, uint8_t kt, uint8_t u1, uint8_t a1,
                      uint8_t u2, uint8_t a2, uint32_t init)
{
    uint8_t r[24] = {(uint8_t)(id >> 8), (uint8_t)id,          type,
                     KL_PROP_PERSIST,    (uint8_t)(size >> 8), (uint8_t)size};
    for (int s = 0; s < 3; s++) {
        r[6 + 3 * s] = 0x1F;
        r[7 + 3 * s] = 0x1F;
    }
    r[15] = kt;
    r[16] = u1;
    r[17] = a1;
    r[18] = u2;
    r[19] = a2;
    size_t n = 20, rl;
    if (type == KL_OBJ_UPCOUNTER || type == KL_OBJ_DOWNCOUNTER) {
        kl_put32(r + 20, init);
        n = 24;
    }
    FZ_CHECK(fz_exec(0x10, r, n, &rl) == KL_OK);
}

static void fz_id_cmd(uint8_t cmd, uint16_t id)
{
    uint8_t r[2] = {(uint8_t)(id >> 8), (uint8_t)id};
    size_t rl;
    FZ_CHECK(fz_exec(cmd, r, 2, &rl) == KL_OK);
}

static void fz_chip_setup(void)
{
    fz_resp = malloc(KL_MAX_PAYLOAD);
    FZ_CHECK(fz_resp != NULL);
    const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    snprintf(fz_dir, sizeof fz_dir, "%s/kl-fuzz-XXXXXX", base);
    FZ_CHECK(mkdtemp(fz_dir) != NULL);
    FZ_CHECK(kl_chip_open(fz_dir, &fz_chip) == KL_OK);
    atexit(fz_chip_cleanup);
    const uint8_t N = KL_USE_NONE;
    fz_create(0x1000, KL_OBJ_KEYPAIR, 96, KL_KT_ECC, KL_USE_IMPORT, KL_ALG_ECDSA, KL_USE_SIGN,
              KL_ALG_ECDSA, 0);
    fz_create(0x1001, KL_OBJ_KEYPAIR, 96, KL_KT_ECC, KL_USE_ADMIN, KL_ALG_ECDSA, KL_USE_FIRMWARE,
              KL_ALG_ECDSA, 0);
    fz_create(0x1002, KL_OBJ_CERT, 1024, KL_KT_NONE, N, 0, N, 0, 0);
    fz_create(0x1003, KL_OBJ_CERT, 2048, KL_KT_NONE, N, 0, N, 0, 0);
    fz_create(0x1004, KL_OBJ_KEYPAIR, 96, KL_KT_ECC, KL_USE_TLS, KL_ALG_ECDSA, KL_USE_KEX,
              KL_ALG_ECDH, 0);
    fz_create(0x1005, KL_OBJ_PUBKEY, 64, KL_KT_ECC, KL_USE_VERIFY, KL_ALG_ECDSA, N, 0, 0);
    fz_create(0x2000, KL_OBJ_SECRET, 16, KL_KT_AES, KL_USE_ENCRYPT, KL_ALG_AES_GCM, KL_USE_ENCRYPT,
              KL_ALG_AES_CBC, 0);
    fz_create(0x2001, KL_OBJ_SECRET, 32, KL_KT_AES, KL_USE_ENCRYPT, KL_ALG_AES_CCM, KL_USE_SIGN,
              KL_ALG_AES_CMAC, 0);
    fz_create(0x2002, KL_OBJ_SECRET, 32, KL_KT_HMAC, KL_USE_SIGN, KL_ALG_HMAC, N, 0, 0);
    fz_create(0x2003, KL_OBJ_SECRET, 16, KL_KT_AES, KL_USE_ENCRYPT, KL_ALG_AES_ECB, N, 0, 0);
    fz_create(0x2004, KL_OBJ_SECRET, 32, KL_KT_AES, KL_USE_ENCRYPT, KL_ALG_AES_GCM, N, 0, 0);
    fz_create(0x3000, KL_OBJ_DATA, 300, KL_KT_NONE, N, 0, N, 0, 0);
    fz_create(0x3001, KL_OBJ_UPCOUNTER, 4, KL_KT_NONE, N, 0, N, 0, 5);
    fz_create(0x3002, KL_OBJ_DOWNCOUNTER, 4, KL_KT_NONE, N, 0, N, 0, 100);
    static const uint16_t gen[] = {0x1000, 0x1001, 0x1004, 0x2000, 0x2001, 0x2002, 0x2003};
    for (size_t i = 0; i < sizeof gen / sizeof gen[0]; i++)
        fz_id_cmd(0x20, gen[i]);
    /* 0x1005 gets 0x1004's public key; 0x1002 the server certificate (a client cert
     * stand-in); 0x1003 the root, through IMPORT_ROOT_CERT (DELIVERY: no signature). */
    size_t rl;
    uint8_t req[2100];
    FZ_CHECK(fz_exec(0x12, (const uint8_t[]){0x10, 0x04, 0, 0, 0, 64}, 6, &rl) == KL_OK);
    uint8_t imp[68] = {0x10, 0x05, 0, 64};
    memcpy(imp + 4, fz_resp, 64);
    FZ_CHECK(fz_exec(0xCA, imp, sizeof imp, &rl) == KL_OK);
    req[0] = 0x10;
    req[1] = 0x02;
    req[2] = req[3] = 0;
    memcpy(req + 4, fz_server_der, sizeof fz_server_der);
    FZ_CHECK(fz_exec(0x13, req, 4 + sizeof fz_server_der, &rl) == KL_OK);
    req[0] = 0x10;
    req[1] = 0x03;
    kl_put16(req + 2, sizeof fz_root_der);
    req[4] = req[5] = 0;
    memcpy(req + 6, fz_root_der, sizeof fz_root_der);
    FZ_CHECK(fz_exec(0xCB, req, 6 + sizeof fz_root_der, &rl) == KL_OK);
    uint8_t d[200];
    for (size_t i = 0; i < sizeof d; i++)
        d[i] = (uint8_t)i;
    memcpy(req, (const uint8_t[]){0x30, 0x00, 0, 0}, 4);
    memcpy(req + 4, d, sizeof d);
    FZ_CHECK(fz_exec(0x13, req, 4 + sizeof d, &rl) == KL_OK);
    fz_base = fz_chip->st;
}

/* Back to the provisioned chip. mode: bit 0 admin session, bits 1-2 life cycle
 * (0/1 DELIVERY, 2 INITIALIZED, 3 OPERATIONAL), bit 3 require the channel, bit 4
 * master secret readable, bit 5 watchdog on. */
static void fz_chip_restore(uint8_t mode)
{
    fz_chip->st = fz_base;
    kl_chip_reset_volatile(fz_chip);
    static const uint8_t lc[4] = {KL_LC_DELIVERY, KL_LC_DELIVERY, KL_LC_INITIALIZED,
                                  KL_LC_OPERATIONAL};
    fz_chip->st.lifecycle = lc[(mode >> 1) & 3];
    fz_chip->st.admin = mode & 1;
    if (mode & 8) fz_chip->st.config[0] |= KL_CFG_REQUIRE_HOST;
    if (mode & 16) fz_chip->st.config[0] |= KL_CFG_MASTER_OUT;
    if (mode & 32) fz_chip->st.config[0] |= KL_CFG_WATCHDOG;
    fz_chip->uncommitted = 0;
    /* The restored state counts as the last commit (what is on disk does not matter to
     * the harness), so "acknowledged means committed" can be checked from here on. */
    uint8_t *img = NULL;
    size_t n = 0;
    FZ_CHECK(kl_state_encode(fz_chip, &img, &n) == KL_OK);
    kl_image_free_data(fz_chip->committed, fz_chip->committed_len);
    fz_chip->committed = img;
    fz_chip->committed_len = n;
}

/* Every acknowledged change of persistent state is on disk: the state the chip would
 * encode now equals its last commit (unless a reset outside a command is still waiting
 * for its retry, which the chip tracks itself). A refused command changed nothing, so
 * this holds after every command and frame, whatever the answer. */
static void fz_chip_durable(uint8_t cmd)
{
    if (fz_chip->uncommitted || !fz_chip->committed) return;
    uint8_t *img = NULL;
    size_t n = 0;
    FZ_CHECK(kl_state_encode(fz_chip, &img, &n) == KL_OK);
    int same = n == fz_chip->committed_len && memcmp(img, fz_chip->committed, n) == 0;
    free(img);
    if (!same) fprintf(stderr, "command %02X left a change that is not committed\n", cmd);
    FZ_CHECK(same);
}

/* What must hold after any input: the storage accounting adds up, and the persistent
 * state the chip would commit now decodes again (else the chip could not restart). */
static void fz_chip_check(void)
{
    const struct kl_state *s = &fz_chip->st;
    FZ_CHECK(s->nobj <= KL_MAX_OBJS);
    size_t pool = 0;
    for (size_t i = 0; i < s->nobj; i++) {
        const struct kl_obj *o = &s->obj[i];
        if (i) FZ_CHECK(s->obj[i - 1].id < o->id);
        FZ_CHECK(o->used <= o->size);
        FZ_CHECK((size_t)o->off + o->size <= KL_STORAGE_TOTAL);
        pool += o->size;
    }
    FZ_CHECK(pool == s->pool_used);
    FZ_CHECK((size_t)s->nobj * KL_OBJ_OVERHEAD + s->pool_used <= KL_STORAGE_TOTAL);
    uint8_t *img = NULL;
    size_t n = 0;
    FZ_CHECK(kl_state_encode(fz_chip, &img, &n) == KL_OK);
    static struct kl_state back;
    uint8_t serial[KL_SERIAL_LEN], priv[KL_CX_P256_PRIV], pub[KL_CX_P256_PUB];
    const char *why = NULL;
    kl_status st = kl_state_decode(img, n, &back, serial, priv, pub, &why);
    if (st != KL_OK) fprintf(stderr, "state refused after commit: %s\n", why ? why : "?");
    FZ_CHECK(st == KL_OK);
    kl_cx_wipe(priv, sizeof priv);
    free(img);
}

#endif
