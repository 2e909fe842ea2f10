/*
 * cloud/registry_import.c: the registry's bulk import (JSON lines) on a hostile file,
 * against a registry in a temp directory with the test root registered as an ACTIVE CA
 * (SNI_ONLY mode: no verification certificate). Invariants: a failed import names the
 * line and reports nothing registered (all or nothing); counts add up; the first error
 * is a terminated string. After a successful import the registry is made afresh.
 */
#include <string.h>
#include <unistd.h>

#include "fuzz.h"
#include "fuzz_certs.h"
#include "registry.h"

static struct kl_registry *reg;
static char dir[64], db[96];

static void drop_db(void)
{
    kl_registry_close(reg);
    reg = NULL;
    static const char *sfx[] = {"", "-wal", "-shm", "-journal"};
    char p[128];
    for (size_t i = 0; i < 4; i++) {
        snprintf(p, sizeof p, "%s%s", db, sfx[i]);
        unlink(p);
    }
}

static void cleanup(void)
{
    drop_db();
    rmdir(dir);
}

static char *pem_of(const uint8_t *der, size_t n)
{
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t cap = 64 + n * 2;
    char *o = malloc(cap);
    FZ_CHECK(o != NULL);
    size_t k = (size_t)snprintf(o, cap, "-----BEGIN CERTIFICATE-----\n");
    for (size_t i = 0, col = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)der[i] << 16;
        if (i + 1 < n) v |= (uint32_t)der[i + 1] << 8;
        if (i + 2 < n) v |= der[i + 2];
        o[k++] = b64[(v >> 18) & 63];
        o[k++] = b64[(v >> 12) & 63];
        o[k++] = i + 1 < n ? b64[(v >> 6) & 63] : '=';
        o[k++] = i + 2 < n ? b64[v & 63] : '=';
        if ((col += 4) == 64) {
            o[k++] = '\n';
            col = 0;
        }
    }
    snprintf(o + k, cap - k, "\n-----END CERTIFICATE-----\n");
    return o;
}

/* A fresh registry with the test root as an ACTIVE CA. */
static void fresh_db(void)
{
    struct kl_reg_err err;
    FZ_CHECK(kl_registry_open(db, NULL, &reg, &err) == KL_REG_OK);
    char *ca = pem_of(fz_root_der, sizeof fz_root_der);
    struct kl_reg_ca out;
    memset(&out, 0, sizeof out);
    kl_reg_rc rc = kl_reg_ca_register(reg, ca, NULL, 1, 0, "SNI_ONLY", &out, &err);
    if (rc != KL_REG_OK) fprintf(stderr, "CA registration: %s\n", err.msg);
    FZ_CHECK(rc == KL_REG_OK);
    kl_reg_ca_clear(&out);
    free(ca);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    snprintf(dir, sizeof dir, "%s/kl-fuzz-reg-XXXXXX", base);
    FZ_CHECK(mkdtemp(dir) != NULL);
    snprintf(db, sizeof db, "%s/registry.db", dir);
    fresh_db();
    atexit(cleanup);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct kl_reg_import_result res;
    struct kl_reg_err err;
    memset(&err, 0, sizeof err);
    const char *status = size && (data[0] & 1) ? "INACTIVE" : NULL;
    kl_reg_rc rc = kl_reg_import(reg, (const char *)data, size, status, &res, &err);
    if (getenv("KL_FUZZ_TRACE"))
        fprintf(stderr, "import: %s lines %ld registered %ld: %s\n", kl_reg_rc_name(rc), res.lines,
                res.certs_registered, err.msg);
    FZ_CHECK(memchr(res.first_error, 0, sizeof res.first_error) != NULL);
    FZ_CHECK(res.lines >= 0 && res.certs_registered <= res.lines);
    if (rc != KL_REG_OK) {
        FZ_CHECK(res.things_created == 0 && res.certs_registered == 0 && res.attached == 0);
        if (res.failed) FZ_CHECK(res.first_failed_line >= 1 && res.first_failed_line <= res.lines);
    } else {
        FZ_CHECK(res.certs_registered >= 1 && !res.failed);
        drop_db(); /* each input starts from the same registry */
        fresh_db();
    }
    return 0;
}
