/*
 * init_tls_iot: the app note's device provisioning step, for one chip or a factory batch.
 * For each chip: make the device key pair inside the chip (0x1004), read its public key,
 * certify it with the CA key (csr_cert.pem), write the certificate into the chip (0x1002)
 * and load the server root certificate (0x1003). The chip is reached only through the
 * device library's chip API (include/keylink/se.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "common_fs.h"
#include "common_hex.h"
#include "common_pass.h"
#include "keylink/se.h"
#include "keylink/se_tls.h"
#include "kl_pki.h"
#include "transport_mem.h"

#define PROG "init_tls_iot"
#define DEFAULT_ROOT "/usr/share/ca-certificates/mozilla/Amazon_Root_CA_3.crt"
#define CERT_NAME "csr_cert.pem"
#define CSR_NAME "csr.pem"
#define LEDGER_NAME "provisioned.csv"
#define BULK_NAME "bulk-registration.jsonl"
#define AWS_BULK_NAME "aws-bulk-registration.jsonl"
#define AWS_TEMPLATE_NAME "aws-provisioning-template.json"
#define THING_MAX 64       /* AWS allows 128; the CN that carries it allows 64 */
#define CHIP_CERT_MAX 2048 /* largest certificate the chip stores */

enum { OBJ_CERT = 0x1002, OBJ_ROOT = 0x1003, OBJ_KEY = 0x1004 };

/* Access rules (DELIVERY:INITIALIZED:OPERATIONAL). Any host session holds roles e and x, so
 * the factory station needs no secure channel; after DELIVERY the objects are fixed: the key
 * only signs and shows its public half, the certificates are only read and used. */
#define RULES_KEY "ahex=rdgx:ahex=rx:ahex=rx"
#define RULES_CERT "ahex=rwdx:ahex=rx:ahex=rx"

struct opts {
    const char *device, *ca_cert, *ca_key, *thing, *root, *out_dir, *pass_file, *batch;
    const char *load_cert;
    int csr, force, days;
};

/* What every chip shares: the CA, the root certificate, the options. */
struct job {
    const struct opts *o;
    X509 *ca;         /* NULL in CSR-only mode */
    EVP_PKEY *ca_key; /* NULL in CSR-only mode */
    char ca_id[KL_PKI_FPR_HEX_SIZE];
    uint8_t *root_der;
    size_t root_len;
};

/* What one chip gives back. */
struct result {
    char cert_id[KL_PKI_FPR_HEX_SIZE];
    char serial[49]; /* chip serial number, hex */
};

/* ---- small helpers --------------------------------------------------------------------- */

static void msg(char *err, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void msg(char *err, size_t cap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, cap, fmt, ap);
    va_end(ap);
}

/* AWS thing names: [a-zA-Z0-9:_-]+; here at most THING_MAX, the CN limit. */
static int thing_ok(const char *t)
{
    size_t n = strlen(t);
    if (n < 1 || n > THING_MAX) return 0;
    for (size_t i = 0; i < n; i++) {
        char c = t[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == ':' || c == '_' || c == '-'))
            return 0;
    }
    return 1;
}

static int uri_ok(const char *u)
{
    return (!strncmp(u, "unix:", 5) && u[5]) || (!strncmp(u, "mem:", 4) && u[4]);
}

/* A chip status as words for a person. */
static const char *why(kl_status st)
{
    return kl_status_text(st);
}

/* ---- the chip side --------------------------------------------------------------------- */

static kl_status create_obj(struct kl_se *se, uint16_t id, uint8_t type, uint16_t size,
                            const char *rules, uint8_t key_type, uint8_t u1, uint8_t a1, uint8_t u2,
                            uint8_t a2)
{
    struct kl_se_object_attr a;
    memset(&a, 0, sizeof a);
    a.id = id;
    a.type = type;
    a.props = KL_SE_PROP_PERSISTENT;
    a.size = size;
    a.key_type = key_type;
    a.usage1 = u1;
    a.alg1 = a1;
    a.usage2 = u2;
    a.alg2 = a2;
    kl_status st = kl_se_rules_parse(rules, a.rules);
    if (st != KL_OK) return st;
    return kl_se_create_object(se, &a);
}

/* The chip signs the request's digest with 0x1004 (SIGN_VERIFY, raw r||s). */
static kl_status chip_sign(void *ctx, const uint8_t digest[32], uint8_t sig[KL_PKI_RAW_SIG_LEN])
{
    size_t len = 0;
    kl_status st = kl_se_sign(ctx, OBJ_KEY, KL_SE_SIG_RAW, KL_SE_INPUT_DIGEST, digest, 32, sig,
                              KL_PKI_RAW_SIG_LEN, &len);
    if (st == KL_OK && len != KL_PKI_RAW_SIG_LEN) st = KL_E_PROTOCOL;
    return st;
}

/* Explain a failed object creation: life cycle, space, or something else. */
static void explain_create(char *err, size_t cap, kl_status st, uint16_t id, const char *what,
                           const struct kl_se_status *cs, size_t need)
{
    if (st == KL_E_NO_SPACE)
        msg(err, cap,
            "the chip is full: %u of %u bytes free, not enough for the %s (object 0x%04X, %zu "
            "bytes plus overhead); nothing was provisioned",
            cs->free_bytes, cs->total_bytes, what, id, need);
    else if (st == KL_E_LIFECYCLE || st == KL_E_ACCESS_DENIED)
        msg(err, cap,
            "the chip's life cycle (%s) does not allow creating the %s (object 0x%04X): %s",
            kl_se_lifecycle_name(cs->lifecycle), what, id, why(st));
    else
        msg(err, cap, "cannot create the %s (object 0x%04X): %s (%s)", what, id, kl_status_name(st),
            why(st));
}

/* Which of our objects exist: bit 0 key, bit 1 cert, bit 2 root. -1 on a link error. */
static int existing(struct kl_se *se, char *err, size_t cap)
{
    static const uint16_t ids[3] = {OBJ_KEY, OBJ_CERT, OBJ_ROOT};
    int mask = 0;
    for (int i = 0; i < 3; i++) {
        struct kl_se_object_info info;
        kl_status st = kl_se_object_info(se, ids[i], &info);
        if (st == KL_OK)
            mask |= 1 << i;
        else if (st != KL_E_NOT_FOUND) {
            msg(err, cap, "cannot inspect object 0x%04X: %s (%s)", ids[i], kl_status_name(st),
                why(st));
            return -1;
        }
    }
    return mask;
}

/* --force: remove what an earlier provisioning left. */
static int clear_old(struct kl_se *se, int mask, const struct kl_se_status *cs, char *err,
                     size_t cap)
{
    static const uint16_t ids[3] = {OBJ_KEY, OBJ_CERT, OBJ_ROOT};
    for (int i = 2; i >= 0; i--) {
        if (!(mask & (1 << i))) continue;
        kl_status st = kl_se_delete_object(se, ids[i]);
        if (st == KL_OK) continue;
        if (st == KL_E_ACCESS_DENIED || st == KL_E_LIFECYCLE)
            msg(err, cap,
                "the chip's life cycle (%s) does not allow replacing object 0x%04X (%s); a "
                "chip past DELIVERY keeps its identity",
                kl_se_lifecycle_name(cs->lifecycle), ids[i], kl_status_name(st));
        else
            msg(err, cap, "cannot delete object 0x%04X: %s (%s)", ids[i], kl_status_name(st),
                why(st));
        return -1;
    }
    return 0;
}

/* Write a DER certificate into a new certificate object. *created tells whether the object
 * exists afterwards (so a failed write can be taken back); err explains a failure. */
static kl_status put_cert(struct kl_se *se, uint16_t id, const char *what, const uint8_t *der,
                          size_t len, const struct kl_se_status *cs, int *created, char *err,
                          size_t cap)
{
    *created = 0;
    kl_status st =
        create_obj(se, id, KL_SE_OBJ_CERT, (uint16_t)len, RULES_CERT, KL_SE_KEY_NONE,
                   KL_SE_USAGE_UNUSED, KL_SE_ALG_NONE, KL_SE_USAGE_UNUSED, KL_SE_ALG_NONE);
    if (st != KL_OK) {
        explain_create(err, cap, st, id, what, cs, len);
        return st;
    }
    *created = 1;
    if (id == OBJ_ROOT) {
        /* IMPORT_ROOT_CERT: the chip itself checks that this is a P-256 CA certificate. */
        st = kl_se_import_root_cert(se, id, der, len, NULL);
        if (st == KL_E_UNKNOWN_COMMAND) /* a chip without root import: plain write */
            st = kl_se_write_object(se, id, 0, der, len);
        if (st == KL_E_BAD_KEY || st == KL_E_VERIFY_FAILED)
            msg(err, cap,
                "the chip refused the root certificate: it is not a self-signed X.509 v3 CA "
                "certificate with a P-256 key (%s)",
                kl_status_name(st));
        else if (st == KL_E_AUTH_REQUIRED)
            msg(err, cap,
                "past DELIVERY the chip (life cycle %s) takes a root certificate only when the "
                "import is signed with the key-import key 0x1000",
                kl_se_lifecycle_name(cs->lifecycle));
        else if (st != KL_OK)
            msg(err, cap, "importing the root certificate into 0x%04X failed: %s (%s)", id,
                kl_status_name(st), why(st));
        return st;
    }
    if ((st = kl_se_write_object(se, id, 0, der, len)) != KL_OK)
        msg(err, cap, "writing the %s into object 0x%04X failed: %s (%s)", what, id,
            kl_status_name(st), why(st));
    return st;
}

/* Read an object back and compare (catches a chip that stored something else). */
static int same_object(struct kl_se *se, uint16_t id, const uint8_t *want, size_t len)
{
    uint8_t buf[CHIP_CERT_MAX];
    size_t got = 0;
    if (kl_se_read_object(se, id, buf, sizeof buf, &got) != KL_OK) return 0;
    return got == len && !memcmp(buf, want, len);
}

/* ---- one chip -------------------------------------------------------------------------- */

/* Everything for one chip is built and written to the chip first, the files last; on any
 * failure the objects made here are deleted again and no file is left behind. */
static int provision(const struct job *j, const char *uri, const char *thing, const char *dir,
                     struct result *res, char *err, size_t cap)
{
    const struct opts *o = j->o;
    char cert_path[PATH_MAX], csr_path[PATH_MAX];
    if (kl_tool_join(cert_path, sizeof cert_path, dir, CERT_NAME) ||
        kl_tool_join(csr_path, sizeof csr_path, dir, CSR_NAME)) {
        msg(err, cap, "output directory name too long");
        return -1;
    }
    int want_cert = j->ca != NULL;
    if (!o->force &&
        ((want_cert && access(cert_path, F_OK) == 0) || (o->csr && access(csr_path, F_OK) == 0))) {
        msg(err, cap, "%s already exists (use --force to replace it)",
            want_cert && access(cert_path, F_OK) == 0 ? cert_path : csr_path);
        return -1;
    }

    struct kl_se se;
    memset(&se, 0, sizeof se);
    kl_status st = kl_se_open(&se, uri);
    if (st != KL_OK) {
        msg(err, cap, "cannot open the chip at %s: %s (%s)", uri, kl_status_name(st), why(st));
        return -1;
    }
    int rc = -1, made = 0; /* made: bit mask of objects created here, as in existing() */
    X509 *cert = NULL;
    X509_REQ *req = NULL;
    uint8_t *der = NULL;
    char *pem = NULL, *csr_pem = NULL;
    size_t der_len = 0, pem_len = 0, csr_len = 0;
    uint8_t pub[64], pub2[64];
    struct kl_se_status cs;

    if ((st = kl_se_status(&se, &cs)) != KL_OK) {
        msg(err, cap, "cannot read the chip's status: %s (%s)", kl_status_name(st), why(st));
        goto out;
    }
    kl_tool_hex(cs.serial, sizeof cs.serial, res->serial, sizeof res->serial);
    if (cs.lifecycle == KL_SE_LC_TERMINATED) {
        msg(err, cap, "the chip is TERMINATED; its life cycle allows no provisioning");
        goto out;
    }
    /* The objects' rules allow generating and writing only in DELIVERY (see RULES_*). */
    if (cs.lifecycle != KL_SE_LC_DELIVERY) {
        msg(err, cap,
            "the chip's life cycle (%s) does not allow provisioning: the device key and "
            "certificates are made only in DELIVERY",
            kl_se_lifecycle_name(cs.lifecycle));
        goto out;
    }
    int old = existing(&se, err, cap);
    if (old < 0) goto out;
    if (old && !o->force) {
        msg(err, cap,
            "the chip is already provisioned (it holds%s%s%s); use --force to replace that",
            old & 1 ? " key 0x1004" : "", old & 2 ? " certificate 0x1002" : "",
            old & 4 ? " root 0x1003" : "");
        goto out;
    }
    if (old && clear_old(&se, old, &cs, err, cap) != 0) goto out;
    if (old) kl_se_status(&se, &cs); /* free space after the deletes */

    /* 1. the key pair, generated inside; its private half never leaves */
    st = create_obj(&se, OBJ_KEY, KL_SE_OBJ_KEY_PAIR, 96, RULES_KEY, KL_SE_KEY_ECC_P256,
                    KL_SE_USAGE_TLS_AUTH, KL_SE_ALG_ECDSA_SHA256, KL_SE_USAGE_SIGN,
                    KL_SE_ALG_ECDSA_SHA256);
    if (st != KL_OK) {
        explain_create(err, cap, st, OBJ_KEY, "device key pair", &cs, 96);
        goto out;
    }
    made |= 1;
    if ((st = kl_se_generate_key(&se, OBJ_KEY, pub)) != KL_OK) {
        msg(err, cap, "key generation in the chip failed: %s (%s)", kl_status_name(st), why(st));
        goto out;
    }
    /* 2. read the public key back the way any host would */
    if ((st = kl_se_get_public_key(&se, OBJ_KEY, pub2)) != KL_OK || memcmp(pub, pub2, 64)) {
        msg(err, cap, "the chip's public key read-back failed or differs: %s", kl_status_name(st));
        goto out;
    }
    /* 3. the request (signed inside the chip) and/or the certificate */
    if (o->csr) {
        if ((st = kl_pki_csr_build(pub, thing, chip_sign, &se, &req)) != KL_OK) {
            msg(err, cap, "building the CSR failed: %s", kl_pki_error());
            goto out;
        }
        if ((st = kl_pki_csr_to_pem(req, &csr_pem, &csr_len)) != KL_OK) {
            msg(err, cap, "%s", kl_pki_error());
            goto out;
        }
    }
    if (want_cert) {
        /* From a CSR, the key certified is the one the chip proved it holds. */
        if (req) {
            EVP_PKEY *rk = X509_REQ_get0_pubkey(req);
            if (!rk || X509_REQ_verify(req, rk) != 1 || kl_pki_pubkey_to_raw(rk, pub2) != KL_OK ||
                memcmp(pub, pub2, 64)) {
                msg(err, cap, "the chip-signed CSR does not verify");
                goto out;
            }
        }
        st = kl_pki_issue_device(j->ca, j->ca_key, pub, thing, o->days, &cert);
        if (st == KL_OK) st = kl_pki_cert_to_der(cert, &der, &der_len);
        if (st == KL_OK) st = kl_pki_cert_to_pem(cert, &pem, &pem_len);
        if (st != KL_OK) {
            msg(err, cap, "issuing the device certificate failed: %s", kl_pki_error());
            goto out;
        }
        kl_pki_fingerprint_hex(cert, res->cert_id);
        if (der_len > CHIP_CERT_MAX) {
            msg(err, cap, "the device certificate (%zu bytes) exceeds the chip's %d", der_len,
                CHIP_CERT_MAX);
            goto out;
        }
        /* 4. the certificate into the chip */
        int created = 0;
        st = put_cert(&se, OBJ_CERT, "device certificate", der, der_len, &cs, &created, err, cap);
        if (created) made |= 2;
        if (st != KL_OK) goto out;
        if (!same_object(&se, OBJ_CERT, der, der_len)) {
            msg(err, cap, "the certificate read back from object 0x1002 differs");
            goto out;
        }
    }
    /* 5. the server's root certificate */
    int root_made = 0;
    st = put_cert(&se, OBJ_ROOT, "root certificate", j->root_der, j->root_len, &cs, &root_made, err,
                  cap);
    if (root_made) made |= 4;
    if (st != KL_OK) goto out;
    if (!same_object(&se, OBJ_ROOT, j->root_der, j->root_len)) {
        msg(err, cap, "the root certificate read back from object 0x1003 differs");
        goto out;
    }
    /* 6. the files, last */
    if (kl_tool_mkdir_p(dir) != 0) {
        msg(err, cap, "cannot create the directory %s: %s", dir, strerror(errno));
        goto out;
    }
    if (o->csr && kl_pki_file_write(csr_path, csr_pem, csr_len, 0644, o->force) != KL_OK) {
        msg(err, cap, "%s", kl_pki_error());
        goto out;
    }
    if (want_cert && kl_pki_file_write(cert_path, pem, pem_len, 0644, o->force) != KL_OK) {
        msg(err, cap, "%s", kl_pki_error());
        if (o->csr) unlink(csr_path);
        goto out;
    }
    rc = 0;
out:
    if (rc != 0) { /* take back what this run put into the chip */
        if (made & 4) kl_se_delete_object(&se, OBJ_ROOT);
        if (made & 2) kl_se_delete_object(&se, OBJ_CERT);
        if (made & 1) kl_se_delete_object(&se, OBJ_KEY);
    }
    kl_se_close(&se);
    free(der);
    free(pem);
    free(csr_pem);
    X509_free(cert);
    X509_REQ_free(req);
    return rc;
}

/* --load-cert: put a certificate issued elsewhere (from csr.pem) into a chip whose 0x1004
 * holds its key. */
static int load_cert(const struct job *j, char *err, size_t cap)
{
    const struct opts *o = j->o;
    X509 *cert = NULL;
    uint8_t *der = NULL;
    size_t der_len = 0;
    uint8_t pub[64], cpub[64];
    int rc = -1;
    kl_status st;
    if ((st = kl_pki_cert_read(o->load_cert, &cert)) != KL_OK ||
        (st = kl_pki_cert_pubkey_raw(cert, cpub)) != KL_OK ||
        (st = kl_pki_cert_to_der(cert, &der, &der_len)) != KL_OK) {
        msg(err, cap, "%s", kl_pki_error());
        X509_free(cert);
        return -1;
    }
    if (j->ca && kl_pki_verify_chain(cert, &j->ca, 1, NULL, 0, 0) != KL_OK) {
        msg(err, cap, "%s: %s", o->load_cert, kl_pki_error());
        goto done;
    }
    if (der_len > CHIP_CERT_MAX) {
        msg(err, cap, "the certificate (%zu bytes) exceeds the chip's %d", der_len, CHIP_CERT_MAX);
        goto done;
    }
    struct kl_se se;
    memset(&se, 0, sizeof se);
    if ((st = kl_se_open(&se, o->device)) != KL_OK) {
        msg(err, cap, "cannot open the chip at %s: %s (%s)", o->device, kl_status_name(st),
            why(st));
        goto done;
    }
    struct kl_se_status cs;
    int created = 0;
    if ((st = kl_se_status(&se, &cs)) != KL_OK)
        msg(err, cap, "cannot read the chip's status: %s", kl_status_name(st));
    else if ((st = kl_se_get_public_key(&se, OBJ_KEY, pub)) != KL_OK)
        msg(err, cap, "the chip has no device key 0x1004 (%s); run with --csr first",
            kl_status_name(st));
    else if (memcmp(pub, cpub, 64))
        msg(err, cap, "%s certifies a different key than the chip's 0x1004", o->load_cert);
    else {
        st = kl_se_object_info(&se, OBJ_CERT, &(struct kl_se_object_info){0});
        if (st == KL_OK && !o->force)
            msg(err, cap, "the chip already holds a certificate in 0x1002; use --force");
        else if (st == KL_OK && (st = kl_se_delete_object(&se, OBJ_CERT)) != KL_OK)
            msg(err, cap, "the chip's life cycle (%s) does not allow replacing 0x1002 (%s)",
                kl_se_lifecycle_name(cs.lifecycle), kl_status_name(st));
        else if (put_cert(&se, OBJ_CERT, "device certificate", der, der_len, &cs, &created, err,
                          cap) != KL_OK) {
            if (created) kl_se_delete_object(&se, OBJ_CERT);
        } else if (!same_object(&se, OBJ_CERT, der, der_len)) {
            msg(err, cap, "the certificate read back from object 0x1002 differs");
            kl_se_delete_object(&se, OBJ_CERT);
        } else {
            rc = 0;
        }
    }
    kl_se_close(&se);
done:
    free(der);
    X509_free(cert);
    return rc;
}

/* ---- batch ----------------------------------------------------------------------------- */

struct row {
    char *thing, *device;
    int line;
    int done; /* in the ledger already */
    char cert_id[KL_PKI_FPR_HEX_SIZE];
    char serial[49];
};

struct rows {
    struct row *v;
    size_t n, cap;
};

static void rows_free(struct rows *r)
{
    for (size_t i = 0; i < r->n; i++) {
        free(r->v[i].thing);
        free(r->v[i].device);
    }
    free(r->v);
}

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r' || s[n - 1] == '\n'))
        s[--n] = 0;
    return s;
}

/* The manifest: "thing,device" per line; '#' comments, blank lines and an optional header
 * line "thing,device" are skipped. Every line is checked before any chip is touched. */
static int read_manifest(const char *path, struct rows *r)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, PROG ": cannot read the manifest %s: %s\n", path, strerror(errno));
        return -1;
    }
    char line[4096];
    int ln = 0, rc = 0;
    while (rc == 0 && fgets(line, sizeof line, f)) {
        ln++;
        if (!strchr(line, '\n') && !feof(f)) {
            fprintf(stderr, PROG ": %s:%d: line too long\n", path, ln);
            rc = -1;
            break;
        }
        char *s = trim(line);
        if (!*s || *s == '#') continue;
        char *comma = strchr(s, ',');
        if (!comma || strchr(comma + 1, ',')) {
            fprintf(stderr, PROG ": %s:%d: expected two fields \"thing,device\"\n", path, ln);
            rc = -1;
            break;
        }
        *comma = 0;
        char *thing = trim(s), *dev = trim(comma + 1);
        if (ln == 1 && !strcmp(thing, "thing") && !strcmp(dev, "device")) continue;
        if (!thing_ok(thing)) {
            fprintf(stderr,
                    PROG ": %s:%d: thing name '%s' is not 1..%d characters of [A-Za-z0-9:_-]\n",
                    path, ln, thing, THING_MAX);
            rc = -1;
            break;
        }
        if (!uri_ok(dev)) {
            fprintf(stderr, PROG ": %s:%d: device '%s' is not a unix:PATH or mem:DIR URI\n", path,
                    ln, dev);
            rc = -1;
            break;
        }
        for (size_t i = 0; i < r->n && rc == 0; i++) {
            if (!strcmp(r->v[i].thing, thing) || !strcmp(r->v[i].device, dev)) {
                fprintf(stderr, PROG ": %s:%d: %s '%s' repeats line %d\n", path, ln,
                        strcmp(r->v[i].thing, thing) ? "device" : "thing",
                        strcmp(r->v[i].thing, thing) ? dev : thing, r->v[i].line);
                rc = -1;
            }
        }
        if (rc) break;
        if (r->n == r->cap) {
            size_t nc = r->cap ? 2 * r->cap : 16;
            struct row *nv = realloc(r->v, nc * sizeof *nv);
            if (!nv) {
                rc = -1;
                break;
            }
            r->v = nv;
            r->cap = nc;
        }
        struct row *w = &r->v[r->n];
        memset(w, 0, sizeof *w);
        w->thing = strdup(thing);
        w->device = strdup(dev);
        w->line = ln;
        if (!w->thing || !w->device) {
            free(w->thing);
            free(w->device);
            rc = -1;
            break;
        }
        r->n++;
    }
    if (rc == 0 && ferror(f)) {
        fprintf(stderr, PROG ": error reading %s\n", path);
        rc = -1;
    }
    fclose(f);
    if (rc == 0 && r->n == 0) {
        fprintf(stderr, PROG ": %s lists no chips\n", path);
        rc = -1;
    }
    return rc;
}

/* The ledger: one line "thing,device,certificateId,serial" per chip done. Chips listed there
 * are skipped on a later run. */
static void read_ledger(const char *path, struct rows *r)
{
    FILE *f = fopen(path, "r");
    if (!f) return;
    char line[1024];
    while (fgets(line, sizeof line, f)) {
        char *s = trim(line), *fld[4];
        int n = 0;
        for (char *p = s; n < 4; n++) {
            fld[n] = p;
            char *c = strchr(p, ',');
            if (!c) {
                n++;
                break;
            }
            *c = 0;
            p = c + 1;
        }
        if (n != 4 || strlen(fld[2]) != KL_PKI_FPR_HEX_LEN || strlen(fld[3]) > 48) continue;
        for (size_t i = 0; i < r->n; i++)
            if (!strcmp(r->v[i].thing, fld[0]) && !strcmp(r->v[i].device, fld[1])) {
                r->v[i].done = 1;
                strcpy(r->v[i].cert_id, fld[2]);
                strcpy(r->v[i].serial, fld[3]);
            }
    }
    fclose(f);
}

static int ledger_append(const char *path, const struct row *w)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0) return -1;
    char line[1024];
    int n =
        snprintf(line, sizeof line, "%s,%s,%s,%s\n", w->thing, w->device, w->cert_id, w->serial);
    int ok = n > 0 && (size_t)n < sizeof line && write(fd, line, (size_t)n) == n && fsync(fd) == 0;
    close(fd);
    return ok ? 0 : -1;
}

/* Dump a JSON object as one line and append it to a growing buffer. */
static int append_json(char **buf, size_t *len, json_t *obj)
{
    char *s = json_dumps(obj, JSON_COMPACT);
    json_decref(obj);
    if (!s) return -1;
    size_t n = strlen(s);
    char *nb = realloc(*buf, *len + n + 2);
    if (!nb) {
        free(s);
        return -1;
    }
    memcpy(nb + *len, s, n);
    nb[*len + n] = '\n';
    *len += n + 1;
    nb[*len] = 0;
    *buf = nb;
    free(s);
    return 0;
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) return NULL;
    char *buf = malloc(16384);
    size_t n = buf ? fread(buf, 1, 16383, f) : 0;
    fclose(f);
    if (!buf) return NULL;
    buf[n] = 0;
    return buf;
}

/* The template start-thing-registration-task applies to each line of the AWS file. */
static const char aws_template[] =
    "{\n"
    "  \"Parameters\": {\n"
    "    \"ThingName\": {\"Type\": \"String\"},\n"
    "    \"SerialNumber\": {\"Type\": \"String\"},\n"
    "    \"CertificatePem\": {\"Type\": \"String\"},\n"
    "    \"CACertificatePem\": {\"Type\": \"String\"}\n"
    "  },\n"
    "  \"Resources\": {\n"
    "    \"thing\": {\n"
    "      \"Type\": \"AWS::IoT::Thing\",\n"
    "      \"Properties\": {\n"
    "        \"ThingName\": {\"Ref\": \"ThingName\"},\n"
    "        \"AttributePayload\": {\"serial\": {\"Ref\": \"SerialNumber\"}}\n"
    "      }\n"
    "    },\n"
    "    \"certificate\": {\n"
    "      \"Type\": \"AWS::IoT::Certificate\",\n"
    "      \"Properties\": {\n"
    "        \"CertificatePem\": {\"Ref\": \"CertificatePem\"},\n"
    "        \"CACertificatePem\": {\"Ref\": \"CACertificatePem\"},\n"
    "        \"Status\": \"ACTIVE\"\n"
    "      }\n"
    "    }\n"
    "  }\n"
    "}\n";

/* Rebuild both registration files from the ledger's chips and their certificate files. */
static int write_bulk(const struct job *j, const struct rows *r)
{
    const struct opts *o = j->o;
    char *ours = NULL, *aws = NULL, *ca_pem = NULL;
    size_t ours_len = 0, aws_len = 0, ca_len = 0;
    int rc = 0;
    if (kl_pki_cert_to_pem(j->ca, &ca_pem, &ca_len) != KL_OK) return -1;
    for (size_t i = 0; i < r->n && rc == 0; i++) {
        const struct row *w = &r->v[i];
        if (!w->done) continue;
        char dir[PATH_MAX], p[PATH_MAX];
        if (kl_tool_join(dir, sizeof dir, o->out_dir, w->thing) ||
            kl_tool_join(p, sizeof p, dir, CERT_NAME)) {
            rc = -1;
            break;
        }
        char *pem = slurp(p);
        if (!pem) {
            fprintf(stderr, PROG ": %s is missing; %s is left out of the registration files\n", p,
                    w->thing);
            continue;
        }
        json_t *a = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "thingName", w->thing,
                              "certificatePem", pem, "caCertificateId", j->ca_id, "certificateId",
                              w->cert_id, "serialNumber", w->serial, "device", w->device);
        json_t *b = json_pack("{s:s, s:s, s:s, s:s}", "ThingName", w->thing, "SerialNumber",
                              w->serial, "CertificatePem", pem, "CACertificatePem", ca_pem);
        if (o->csr) {
            char q[PATH_MAX];
            char *csr = kl_tool_join(q, sizeof q, dir, CSR_NAME) ? NULL : slurp(q);
            if (csr && b) json_object_set_new(b, "CSR", json_string(csr));
            free(csr);
        }
        if (!a || !b || append_json(&ours, &ours_len, a) || append_json(&aws, &aws_len, b)) rc = -1;
        free(pem);
    }
    char p1[PATH_MAX], p2[PATH_MAX], p3[PATH_MAX];
    if (rc == 0 && (kl_tool_join(p1, sizeof p1, o->out_dir, BULK_NAME) ||
                    kl_tool_join(p2, sizeof p2, o->out_dir, AWS_BULK_NAME) ||
                    kl_tool_join(p3, sizeof p3, o->out_dir, AWS_TEMPLATE_NAME)))
        rc = -1;
    if (rc == 0 && (kl_pki_file_write(p1, ours ? ours : "", ours_len, 0644, 1) != KL_OK ||
                    kl_pki_file_write(p2, aws ? aws : "", aws_len, 0644, 1) != KL_OK ||
                    kl_pki_file_write(p3, aws_template, strlen(aws_template), 0644, 1) != KL_OK)) {
        fprintf(stderr, PROG ": %s\n", kl_pki_error());
        rc = -1;
    }
    free(ours);
    free(aws);
    free(ca_pem);
    return rc;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A progress bar with rate and ETA on a terminal. */
static void progress(size_t done, size_t total, double t0, const char *thing)
{
    double el = now_s() - t0, rate = el > 0 ? (double)done / el : 0;
    long eta = rate > 0 ? (long)((double)(total - done) / rate + 0.5) : 0;
    int width = 30, fill = total ? (int)((double)done * width / (double)total) : width;
    char bar[32];
    for (int i = 0; i < width; i++)
        bar[i] = i < fill ? '#' : '.';
    bar[width] = 0;
    fprintf(stderr, "\r[%s] %zu/%zu  %.1f chips/s  ETA %ld:%02ld  %-20.20s", bar, done, total, rate,
            eta / 60, eta % 60, thing);
    fflush(stderr);
}

static int run_batch(const struct job *j)
{
    const struct opts *o = j->o;
    struct rows r = {0};
    if (read_manifest(o->batch, &r) != 0) {
        rows_free(&r);
        return 2;
    }
    if (kl_tool_mkdir_p(o->out_dir) != 0) {
        fprintf(stderr, PROG ": cannot create the directory %s: %s\n", o->out_dir, strerror(errno));
        rows_free(&r);
        return 1;
    }
    char ledger[PATH_MAX];
    if (kl_tool_join(ledger, sizeof ledger, o->out_dir, LEDGER_NAME)) {
        rows_free(&r);
        return 2;
    }
    read_ledger(ledger, &r);
    size_t todo = 0, skipped = 0, ok = 0, failed = 0;
    for (size_t i = 0; i < r.n; i++)
        r.v[i].done ? skipped++ : todo++;
    int tty = isatty(STDERR_FILENO);
    if (skipped)
        fprintf(stderr, PROG ": %zu of %zu chips are in %s already; skipping them\n", skipped, r.n,
                ledger);
    double t0 = now_s();
    size_t seen = 0;
    for (size_t i = 0; i < r.n; i++) {
        struct row *w = &r.v[i];
        if (w->done) continue;
        if (tty) progress(seen, todo, t0, w->thing);
        char dir[PATH_MAX], err[768] = "";
        struct result res;
        memset(&res, 0, sizeof res);
        int rc = kl_tool_join(dir, sizeof dir, o->out_dir, w->thing) ? -1 : 0;
        if (rc)
            msg(err, sizeof err, "output directory name too long");
        else
            rc = provision(j, w->device, w->thing, dir, &res, err, sizeof err);
        seen++;
        if (rc == 0) {
            strcpy(w->cert_id, res.cert_id);
            strcpy(w->serial, res.serial);
            if (ledger_append(ledger, w) != 0) {
                /* The chip is done but unrecorded: say so; a re-run will refuse it (already
                 * provisioned) rather than make a second identity silently. */
                msg(err, sizeof err, "provisioned, but the ledger %s could not be written", ledger);
                rc = -1;
            } else {
                w->done = 1;
            }
        }
        if (tty) fprintf(stderr, "\r\033[K");
        if (rc == 0) {
            ok++;
            fprintf(tty ? stderr : stdout, "[%zu/%zu] %s: provisioned (%s), certificate id %s\n",
                    seen, todo, w->thing, w->device, w->cert_id);
        } else {
            failed++;
            fprintf(stderr, "[%zu/%zu] %s: FAILED (%s:%d, %s): %s\n", seen, todo, w->thing,
                    o->batch, w->line, w->device, err);
        }
        fflush(stdout);
    }
    if (tty && todo) {
        progress(seen, todo, t0, "");
        fprintf(stderr, "\n");
    }
    int brc = write_bulk(j, &r);
    printf("%zu provisioned, %zu skipped (done before), %zu failed; registration files: %s/%s "
           "and %s/%s\n",
           ok, skipped, failed, o->out_dir, BULK_NAME, o->out_dir, AWS_BULK_NAME);
    rows_free(&r);
    return failed || brc ? 1 : 0;
}

/* ---- command line ---------------------------------------------------------------------- */

static void usage(FILE *f)
{
    fprintf(
        f,
        "usage: " PROG " --device URI --ca-cert FILE --ca-key FILE --thing NAME\n"
        "                    [--root FILE] [--out-dir DIR] [--csr] [--force] [--days N]\n"
        "                    [--passphrase-file FILE]\n"
        "       " PROG " --batch MANIFEST.csv --ca-cert FILE --ca-key FILE [--root FILE]\n"
        "                    [--out-dir DIR] [--csr] [--force] [--days N] [--passphrase-file F]\n"
        "       " PROG " --device URI --thing NAME --csr [--root FILE] [--out-dir DIR]\n"
        "       " PROG " --device URI --load-cert FILE [--ca-cert FILE] [--force]\n"
        "\n"
        "Provisions a chip: device key pair generated inside it (0x1004: TLS authentication\n"
        "and data signature, ECDSA-SHA256), certificate issued by the CA (CN = thing name,\n"
        "written to DIR/" CERT_NAME " and into the chip as 0x1002), server root certificate\n"
        "loaded as 0x1003 (default " DEFAULT_ROOT ").\n"
        "\n"
        "  --device URI           unix:PATH (keylink-se daemon) or mem:DIR (in-process chip);\n"
        "                         default $KEYLINK_SE\n"
        "  --ca-cert, --ca-key    the CA from make_ca_cert (the key's passphrase comes from\n"
        "                         --passphrase-file, $" KL_PASS_ENV " or a prompt)\n"
        "  --thing NAME           the thing name: 1..%d of [A-Za-z0-9:_-]\n"
        "  --root FILE            the server root CA certificate to load (PEM)\n"
        "  --out-dir DIR          where files go (default: the current directory)\n"
        "  --csr                  also make DIR/" CSR_NAME ", a PKCS#10 request signed inside\n"
        "                         the chip; without --ca-cert/--ca-key it stops there\n"
        "  --load-cert FILE       write a certificate issued elsewhere into 0x1002 (its key\n"
        "                         must be the chip's 0x1004)\n"
        "  --force                replace a chip's earlier provisioning and output files\n"
        "  --days N               certificate validity (default %d, never past the CA's)\n"
        "  --batch FILE           provision every chip in a CSV manifest of \"thing,device\"\n"
        "                         lines; one directory per thing in DIR, a ledger\n"
        "                         DIR/" LEDGER_NAME " (re-runs skip chips listed there), and\n"
        "                         DIR/" BULK_NAME " + DIR/" AWS_BULK_NAME "\n"
        "                         (see docs/provisioning.md)\n",
        THING_MAX, KL_PKI_DEVICE_DAYS_DEFAULT);
}

static int parse_args(int argc, char **argv, struct opts *o)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int v = i + 1 < argc;
        const char **slot = NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            exit(0);
        } else if (!strcmp(a, "--csr")) {
            o->csr = 1;
            continue;
        } else if (!strcmp(a, "--force")) {
            o->force = 1;
            continue;
        } else if (!strcmp(a, "--device"))
            slot = &o->device;
        else if (!strcmp(a, "--ca-cert"))
            slot = &o->ca_cert;
        else if (!strcmp(a, "--ca-key"))
            slot = &o->ca_key;
        else if (!strcmp(a, "--thing"))
            slot = &o->thing;
        else if (!strcmp(a, "--root"))
            slot = &o->root;
        else if (!strcmp(a, "--out-dir"))
            slot = &o->out_dir;
        else if (!strcmp(a, "--passphrase-file"))
            slot = &o->pass_file;
        else if (!strcmp(a, "--batch"))
            slot = &o->batch;
        else if (!strcmp(a, "--load-cert"))
            slot = &o->load_cert;
        else if (!strcmp(a, "--days") && v) {
            char *end;
            errno = 0;
            long d = strtol(argv[++i], &end, 10);
            if (errno || *end || d < 1 || d > KL_PKI_DAYS_MAX) {
                fprintf(stderr, PROG ": --days must be a whole number 1..%d\n", KL_PKI_DAYS_MAX);
                return -1;
            }
            o->days = (int)d;
            continue;
        } else if (!strcmp(a, "--passphrase") || !strcmp(a, "--pass")) {
            fprintf(stderr, PROG ": the passphrase is never taken from the command line; use "
                                 "--passphrase-file or $" KL_PASS_ENV "\n");
            return -1;
        }
        if (!slot || !v) {
            fprintf(stderr, PROG ": %s '%s'\n", slot ? "missing value for" : "unknown argument", a);
            usage(stderr);
            return -1;
        }
        *slot = argv[++i];
    }
    if (!o->days) o->days = KL_PKI_DEVICE_DAYS_DEFAULT;
    if (!o->out_dir) o->out_dir = ".";
    if (!o->root) o->root = DEFAULT_ROOT;
    if ((o->ca_cert == NULL) != (o->ca_key == NULL) && !o->load_cert) {
        fprintf(stderr, PROG ": --ca-cert and --ca-key go together\n");
        return -1;
    }
    if (o->batch) {
        if (o->device || o->thing || o->load_cert) {
            fprintf(stderr, PROG ": --batch takes devices and things from the manifest\n");
            return -1;
        }
        if (!o->ca_cert) {
            fprintf(stderr, PROG ": --batch needs --ca-cert and --ca-key\n");
            return -1;
        }
        return 0;
    }
    if (!o->device) o->device = getenv("KEYLINK_SE");
    if (!o->device) {
        fprintf(stderr, PROG ": --device URI is required (or $KEYLINK_SE, or --batch FILE)\n");
        return -1;
    }
    if (!uri_ok(o->device)) {
        fprintf(stderr, PROG ": --device '%s' is not a unix:PATH or mem:DIR URI\n", o->device);
        return -1;
    }
    if (o->load_cert) return 0;
    if (!o->thing) {
        fprintf(stderr, PROG ": --thing NAME is required\n");
        return -1;
    }
    if (!thing_ok(o->thing)) {
        fprintf(stderr, PROG ": thing name '%s' is not 1..%d characters of [A-Za-z0-9:_-]\n",
                o->thing, THING_MAX);
        return -1;
    }
    if (!o->ca_cert && !o->csr) {
        fprintf(stderr, PROG ": --ca-cert and --ca-key are required (or --csr alone)\n");
        return -1;
    }
    return 0;
}

/* Load the CA (checked: a CA, in date, key matches) and the root certificate. */
static int load_job(struct job *j)
{
    const struct opts *o = j->o;
    kl_status st;
    X509 *root = NULL;
    if (!o->load_cert) {
        if ((st = kl_pki_cert_read(o->root, &root)) != KL_OK) {
            fprintf(stderr, PROG ": root certificate: %s\n", kl_pki_error());
            return -1;
        }
        /* What the chip can use as a trust anchor: a self-signed P-256 CA certificate. */
        uint8_t xy[KL_PKI_RAW_PUB_LEN];
        if (kl_pki_cert_is_ca(root) != KL_OK || kl_pki_cert_signed_by(root, root) != KL_OK ||
            kl_pki_cert_pubkey_raw(root, xy) != KL_OK) {
            fprintf(stderr,
                    PROG ": the root certificate %s is not a self-signed CA certificate with a "
                         "P-256 key (%s)\n",
                    o->root, kl_pki_error());
            X509_free(root);
            return -1;
        }
        st = kl_pki_cert_to_der(root, &j->root_der, &j->root_len);
        X509_free(root);
        if (st != KL_OK || j->root_len > CHIP_CERT_MAX) {
            fprintf(stderr, PROG ": the root certificate %s is larger than the chip's %d bytes\n",
                    o->root, CHIP_CERT_MAX);
            return -1;
        }
    }
    if (!o->ca_cert) return 0;
    if ((st = kl_pki_cert_read(o->ca_cert, &j->ca)) != KL_OK) {
        fprintf(stderr, PROG ": CA certificate: %s\n", kl_pki_error());
        return -1;
    }
    if ((st = kl_pki_check_ca(j->ca, NULL)) != KL_OK) {
        fprintf(stderr, PROG ": %s: %s\n", o->ca_cert, kl_pki_error());
        return -1;
    }
    kl_pki_fingerprint_hex(j->ca, j->ca_id);
    if (o->load_cert) return 0;
    char pass[KL_PASS_CAP];
    size_t plen = 0;
    if (kl_pass_get(PROG, o->pass_file, 0, pass, sizeof pass, &plen) != 0) return -1;
    st = kl_pki_key_read_encrypted(o->ca_key, pass, plen, &j->ca_key);
    kl_pass_wipe(pass, sizeof pass);
    if (st != KL_OK) {
        fprintf(stderr, PROG ": CA key: %s\n", kl_pki_error());
        return -1;
    }
    if ((st = kl_pki_check_ca(j->ca, j->ca_key)) != KL_OK) {
        fprintf(stderr, PROG ": %s\n", kl_pki_error());
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    struct opts o;
    memset(&o, 0, sizeof o);
    if (parse_args(argc, argv, &o) != 0) return 2;
    if (kl_se_mem_register() != KL_OK) {
        fprintf(stderr, PROG ": cannot register the mem: transport\n");
        return 1;
    }
    struct job j;
    memset(&j, 0, sizeof j);
    j.o = &o;
    int rc;
    if (load_job(&j) != 0) {
        rc = 1;
    } else if (o.batch) {
        rc = run_batch(&j);
    } else if (o.load_cert) {
        char err[768] = "";
        rc = load_cert(&j, err, sizeof err) == 0 ? 0 : 1;
        if (rc)
            fprintf(stderr, PROG ": %s\n", err);
        else
            printf("wrote %s into the chip as object 0x1002\n", o.load_cert);
    } else {
        char err[768] = "";
        struct result res;
        memset(&res, 0, sizeof res);
        rc = provision(&j, o.device, o.thing, o.out_dir, &res, err, sizeof err) == 0 ? 0 : 1;
        if (rc) {
            fprintf(stderr, PROG ": %s\n", err);
        } else {
            printf("chip %s (serial %s): key pair 0x1004 generated inside, root certificate "
                   "%s loaded as 0x1003\n",
                   o.device, res.serial, o.root);
            if (o.csr) printf("wrote %s/%s (PKCS#10, signed by the chip)\n", o.out_dir, CSR_NAME);
            if (j.ca)
                printf("wrote %s/%s and object 0x1002 (thing %s, certificate id %s)\n", o.out_dir,
                       CERT_NAME, o.thing, res.cert_id);
        }
    }
    X509_free(j.ca);
    EVP_PKEY_free(j.ca_key);
    free(j.root_der);
    return rc;
}
