/*
 * make_ca_cert: the app note's CA step. Makes the P-256 CA key (encrypted PKCS#8) and the
 * self-signed CA certificate, or, with --verification-cert CODE, the verification
 * certificate a registry asks for when the CA is registered.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common_fs.h"
#include "common_pass.h"
#include "kl_pki.h"

#define PROG "make_ca_cert"
#define CA_KEY_NAME "privkey_server_ECDSA_secp256r1_secp256r1.pem"
#define CA_CERT_NAME "cert_CA.pem"
#define VERIF_CERT_NAME "verification_cert.pem"
#define VERIF_KEY_NAME "verification_key.pem"

struct opts {
    const char *out_dir;
    const char *subject;
    int days; /* 0: default */
    int force;
    const char *pass_file;
    const char *code; /* --verification-cert */
};

static void usage(FILE *f)
{
    fprintf(f,
            "usage: " PROG " [--out-dir DIR] [--subject /O=../CN=..] [--days N] [--force]\n"
            "                    [--passphrase-file FILE] [--verification-cert CODE]\n"
            "\n"
            "Writes DIR/" CA_KEY_NAME " (P-256 CA key,\n"
            "encrypted PKCS#8: PBES2, AES-256-CBC, PBKDF2-HMAC-SHA256, %d iterations; mode 0600)\n"
            "and DIR/" CA_CERT_NAME " (self-signed X.509 v3 CA certificate).\n"
            "\n"
            "  --out-dir DIR            where the files go (default: the current directory)\n"
            "  --subject NAME           CA subject, OpenSSL -subj form (default \"%s\")\n"
            "  --days N                 validity in days (CA default %d; verification cert %d)\n"
            "  --force                  replace an existing CA key and certificate\n"
            "  --passphrase-file FILE   read the CA passphrase from FILE's first line\n"
            "  --verification-cert CODE issue DIR/" VERIF_CERT_NAME " (CN = CODE, the\n"
            "                           registration code) and DIR/" VERIF_KEY_NAME ", signed\n"
            "                           by the CA in DIR; makes the CA first if DIR has none\n"
            "\n"
            "The passphrase comes from --passphrase-file, else $" KL_PASS_ENV ", else a prompt\n"
            "on the terminal; never from the command line. At least %d characters.\n",
            KL_PKI_PBKDF2_ITER, KL_PKI_CA_SUBJECT_DEFAULT, KL_PKI_CA_DAYS_DEFAULT,
            KL_PKI_DEVICE_DAYS_DEFAULT, KL_PKI_PASS_MIN);
}

static int parse_days(const char *s, int *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end || end == s || v < 1 || v > KL_PKI_DAYS_MAX) return -1;
    *out = (int)v;
    return 0;
}

static int parse_args(int argc, char **argv, struct opts *o)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int has_val = i + 1 < argc;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            exit(0);
        } else if (!strcmp(a, "--force")) {
            o->force = 1;
        } else if (!strcmp(a, "--out-dir") && has_val) {
            o->out_dir = argv[++i];
        } else if (!strcmp(a, "--subject") && has_val) {
            o->subject = argv[++i];
        } else if (!strcmp(a, "--passphrase-file") && has_val) {
            o->pass_file = argv[++i];
        } else if (!strcmp(a, "--verification-cert") && has_val) {
            o->code = argv[++i];
        } else if (!strcmp(a, "--days") && has_val) {
            if (parse_days(argv[++i], &o->days) != 0) {
                fprintf(stderr, PROG ": --days must be a whole number 1..%d\n", KL_PKI_DAYS_MAX);
                return -1;
            }
        } else if (!strcmp(a, "--passphrase") || !strcmp(a, "--pass")) {
            fprintf(stderr,
                    PROG ": the passphrase is never taken from the command line (it would show "
                         "in ps and shell history); use --passphrase-file or $" KL_PASS_ENV "\n");
            return -1;
        } else {
            fprintf(stderr, PROG ": %s '%s'\n",
                    has_val || a[0] != '-' ? "unknown argument" : "missing value for", a);
            usage(stderr);
            return -1;
        }
    }
    if (o->code && !*o->code) {
        fprintf(stderr, PROG ": --verification-cert needs the registration code\n");
        return -1;
    }
    return 0;
}

static int join(char *buf, size_t cap, const char *dir, const char *name)
{
    if (kl_tool_join(buf, cap, dir, name) != 0) {
        fprintf(stderr, PROG ": output directory name too long\n");
        return -1;
    }
    return 0;
}

static int fail(kl_status st)
{
    fprintf(stderr, PROG ": %s\n", kl_pki_error());
    return st == KL_E_ARG ? 2 : 1;
}

/* Make a new CA in memory; written by write_ca only when everything worked. */
static int new_ca(const struct opts *o, const char *pass, size_t passlen, EVP_PKEY **key,
                  X509 **cert, char **key_pem, size_t *key_len)
{
    kl_status st;
    if ((st = kl_pki_keygen_p256(key)) != KL_OK) return fail(st);
    if ((st = kl_pki_issue_ca(*key, o->subject, o->days ? o->days : KL_PKI_CA_DAYS_DEFAULT,
                              cert)) != KL_OK)
        return fail(st);
    if ((st = kl_pki_key_encrypt_pem(*key, pass, passlen, key_pem, key_len)) != KL_OK)
        return fail(st);
    return 0;
}

/* Write the key, then the certificate; if the certificate fails, take back a new key. */
static int write_ca(const struct opts *o, const char *kp, const char *cp, X509 *cert,
                    const char *key_pem, size_t key_len, int had_key)
{
    kl_status st = kl_pki_file_write(kp, key_pem, key_len, 0600, o->force);
    if (st != KL_OK) return fail(st);
    if ((st = kl_pki_cert_write(cp, cert, o->force)) != KL_OK) {
        int rc = fail(st);
        if (!had_key) unlink(kp);
        return rc;
    }
    char fpr[KL_PKI_FPR_HEX_SIZE] = "";
    kl_pki_fingerprint_hex(cert, fpr);
    printf("wrote %s (P-256 CA key, encrypted PKCS#8: PBES2 AES-256-CBC, PBKDF2-HMAC-SHA256, "
           "%d iterations)\n",
           kp, KL_PKI_PBKDF2_ITER);
    printf("wrote %s (CA certificate id %s)\n", cp, fpr);
    return 0;
}

static int verification(const struct opts *o, X509 *ca, EVP_PKEY *ca_key)
{
    char vc[PATH_MAX], vk[PATH_MAX];
    if (join(vc, sizeof vc, o->out_dir, VERIF_CERT_NAME) ||
        join(vk, sizeof vk, o->out_dir, VERIF_KEY_NAME))
        return 2;
    EVP_PKEY *k = NULL;
    X509 *c = NULL;
    int days = o->days ? o->days : KL_PKI_DEVICE_DAYS_DEFAULT;
    kl_status st = kl_pki_issue_verification(ca, ca_key, o->code, days, &k, &c);
    int rc = 0;
    /* The verification pair is throwaway and tied to one registration code: a new code
     * replaces the old files. */
    if (st != KL_OK || (st = kl_pki_key_write_plain(vk, k, 1)) != KL_OK ||
        (st = kl_pki_cert_write(vc, c, 1)) != KL_OK)
        rc = fail(st);
    else
        printf("wrote %s (verification certificate, CN = %s) and %s\n", vc, o->code, vk);
    X509_free(c);
    EVP_PKEY_free(k);
    return rc;
}

int main(int argc, char **argv)
{
    struct opts o = {.out_dir = "."};
    if (parse_args(argc, argv, &o) != 0) return 2;
    if (o.subject) { /* check the subject before asking for anything */
        X509_NAME *n = NULL;
        kl_status st = kl_pki_name_parse(o.subject, &n);
        X509_NAME_free(n);
        if (st != KL_OK) {
            fprintf(stderr, PROG ": --subject: %s\n", kl_pki_error());
            return 2;
        }
    }
    char kp[PATH_MAX], cp[PATH_MAX];
    if (join(kp, sizeof kp, o.out_dir, CA_KEY_NAME) || join(cp, sizeof cp, o.out_dir, CA_CERT_NAME))
        return 2;
    int has_key = access(kp, F_OK) == 0, has_cert = access(cp, F_OK) == 0;
    int reuse = o.code && has_key && has_cert && !o.force;
    if (o.code && !o.force && has_key != has_cert) {
        fprintf(stderr, PROG ": %s holds %s but not %s; cannot sign with half a CA\n", o.out_dir,
                has_key ? CA_KEY_NAME : CA_CERT_NAME, has_key ? CA_CERT_NAME : CA_KEY_NAME);
        return 1;
    }
    if (!o.code && !o.force && (has_key || has_cert)) {
        fprintf(stderr, PROG ": %s already exists; refusing to replace a CA (use --force)\n",
                has_key ? kp : cp);
        return 1;
    }

    char pass[KL_PASS_CAP];
    size_t passlen = 0;
    if (kl_pass_get(PROG, o.pass_file, !reuse, pass, sizeof pass, &passlen) != 0) return 1;

    int rc = 0;
    EVP_PKEY *key = NULL;
    X509 *cert = NULL;
    char *key_pem = NULL;
    size_t key_len = 0;
    kl_status st;
    if (reuse) {
        if ((st = kl_pki_cert_read(cp, &cert)) != KL_OK ||
            (st = kl_pki_key_read_encrypted(kp, pass, passlen, &key)) != KL_OK ||
            (st = kl_pki_check_ca(cert, key)) != KL_OK)
            rc = fail(st);
    } else if (kl_tool_mkdir_p(o.out_dir) != 0) {
        fprintf(stderr, PROG ": cannot create the directory %s: %s\n", o.out_dir, strerror(errno));
        rc = 1;
    } else if ((rc = new_ca(&o, pass, passlen, &key, &cert, &key_pem, &key_len)) == 0) {
        rc = write_ca(&o, kp, cp, cert, key_pem, key_len, has_key);
    }
    kl_pass_wipe(pass, sizeof pass);
    if (key_pem) free(key_pem);
    if (rc == 0 && o.code) rc = verification(&o, cert, key);
    X509_free(cert);
    EVP_PKEY_free(key);
    return rc;
}
