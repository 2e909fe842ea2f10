/* keylink_pki: issuing, key files, CSRs with an external signer, and every check's failure. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/ec.h>
#include <openssl/pem.h>
#include <openssl/sha.h>
#include <openssl/x509v3.h>

#include "kl_pki.h"

static int failures;
#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c)) {                                                                                \
            fprintf(stderr, "%s:%d: CHECK(%s) failed; last pki error: %s\n", __FILE__, __LINE__,   \
                    #c, kl_pki_error());                                                           \
            failures++;                                                                            \
        }                                                                                          \
    } while (0)

static char tmpdir[] = "/tmp/kl-pki-test-XXXXXX";

static void path_of(char *buf, size_t n, const char *name)
{
    snprintf(buf, n, "%s/%s", tmpdir, name);
}

/* Software signer standing in for the chip. */
struct soft_signer {
    EVP_PKEY *key;
    int mode; /* 0 good, 1 wrong bytes, 2 fail with KL_E_ACCESS_DENIED */
};

static kl_status soft_sign(void *ctx, const uint8_t digest[32], uint8_t sig[64])
{
    struct soft_signer *s = ctx;
    if (s->mode == 2) return KL_E_ACCESS_DENIED;
    unsigned char der[128];
    size_t dlen = sizeof der;
    EVP_PKEY_CTX *c = EVP_PKEY_CTX_new(s->key, NULL);
    if (!c || EVP_PKEY_sign_init(c) <= 0 || EVP_PKEY_sign(c, der, &dlen, digest, 32) <= 0) {
        EVP_PKEY_CTX_free(c);
        return KL_E_INTERNAL;
    }
    EVP_PKEY_CTX_free(c);
    const unsigned char *p = der;
    ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &p, (long)dlen);
    if (!es) return KL_E_INTERNAL;
    BN_bn2binpad(ECDSA_SIG_get0_r(es), sig, 32);
    BN_bn2binpad(ECDSA_SIG_get0_s(es), sig + 32, 32);
    ECDSA_SIG_free(es);
    if (s->mode == 1) sig[40] ^= 1;
    return KL_OK;
}

/* Re-date `c` (seconds from now) and re-sign it with `k`. */
static void redate(X509 *c, EVP_PKEY *k, long from, long to)
{
    X509_gmtime_adj(X509_getm_notBefore(c), from);
    X509_gmtime_adj(X509_getm_notAfter(c), to);
    X509_sign(c, k, EVP_sha256());
}

static int has_ext_crit(X509 *c, int nid, int crit)
{
    int i = X509_get_ext_by_NID(c, nid, -1);
    return i >= 0 && X509_EXTENSION_get_critical(X509_get_ext(c, i)) == crit;
}

static void test_names(void)
{
    X509_NAME *n = NULL;
    CHECK(kl_pki_name_parse("/O=Acme\\/Labs/CN=Root 1", &n) == KL_OK);
    if (n) {
        char buf[128];
        CHECK(X509_NAME_get_text_by_NID(n, NID_organizationName, buf, sizeof buf) > 0 &&
              !strcmp(buf, "Acme/Labs"));
        CHECK(X509_NAME_get_text_by_NID(n, NID_commonName, buf, sizeof buf) > 0 &&
              !strcmp(buf, "Root 1"));
        X509_NAME_free(n);
    }
    n = NULL;
    CHECK(kl_pki_name_parse("CN=plain", &n) == KL_OK);
    X509_NAME_free(n);
    n = NULL;
    CHECK(kl_pki_name_parse("/CN", &n) == KL_E_BAD_KEY && !n);
    CHECK(kl_pki_name_parse("/NOSUCH=x", &n) == KL_E_BAD_KEY && !n);
    CHECK(kl_pki_name_parse("/CN=", &n) == KL_E_BAD_KEY && !n);
    CHECK(kl_pki_name_parse("/O=a//CN=b", &n) == KL_E_BAD_KEY && !n);
    CHECK(kl_pki_name_parse("", &n) == KL_E_BAD_KEY && !n);
    CHECK(kl_pki_name_parse(NULL, &n) == KL_E_ARG);
}

static void test_key_files(EVP_PKEY *ca_key)
{
    char kp[512], plain[512];
    path_of(kp, sizeof kp, "ca.pem");
    path_of(plain, sizeof plain, "plain.pem");
    const char *pass = "correct horse battery";
    CHECK(kl_pki_key_write_encrypted(kp, ca_key, "short", 5, 0) == KL_E_ARG);
    CHECK(access(kp, F_OK) != 0);
    CHECK(kl_pki_key_write_encrypted(kp, ca_key, pass, strlen(pass), 0) == KL_OK);
    struct stat sb;
    CHECK(stat(kp, &sb) == 0 && (sb.st_mode & 0777) == 0600);
    CHECK(kl_pki_key_write_encrypted(kp, ca_key, pass, strlen(pass), 0) == KL_E_EXISTS);
    CHECK(kl_pki_key_write_encrypted(kp, ca_key, pass, strlen(pass), 1) == KL_OK);

    /* PBES2 / PBKDF2-HMAC-SHA256 / AES-256-CBC with our iteration count. */
    FILE *f = fopen(kp, "r");
    X509_SIG *p8 = f ? PEM_read_PKCS8(f, NULL, NULL, NULL) : NULL;
    if (f) fclose(f);
    CHECK(p8 != NULL);
    if (p8) {
        const X509_ALGOR *alg = NULL;
        X509_SIG_get0(p8, &alg, NULL);
        const ASN1_OBJECT *oid = NULL;
        const void *pv = NULL;
        int ptype = 0;
        X509_ALGOR_get0(&oid, &ptype, &pv, alg);
        CHECK(OBJ_obj2nid(oid) == NID_pbes2);
        PBE2PARAM *p2 = ASN1_item_unpack(pv, ASN1_ITEM_rptr(PBE2PARAM));
        CHECK(p2 && OBJ_obj2nid(p2->encryption->algorithm) == NID_aes_256_cbc);
        if (p2) {
            PBKDF2PARAM *kdf = ASN1_item_unpack(p2->keyfunc->parameter->value.sequence,
                                                ASN1_ITEM_rptr(PBKDF2PARAM));
            CHECK(kdf && ASN1_INTEGER_get(kdf->iter) == KL_PKI_PBKDF2_ITER);
            CHECK(kdf && kdf->prf && OBJ_obj2nid(kdf->prf->algorithm) == NID_hmacWithSHA256);
            PBKDF2PARAM_free(kdf);
        }
        PBE2PARAM_free(p2);
        X509_SIG_free(p8);
    }

    EVP_PKEY *back = NULL;
    CHECK(kl_pki_key_read_encrypted(kp, pass, strlen(pass), &back) == KL_OK);
    CHECK(back && EVP_PKEY_eq(back, ca_key) == 1);
    EVP_PKEY_free(back);
    back = NULL;
    CHECK(kl_pki_key_read_encrypted(kp, "wrong passphrase", 16, &back) == KL_E_AUTH_FAILED);
    CHECK(!back && strstr(kl_pki_error(), "wrong passphrase"));
    CHECK(!strstr(kl_pki_error(), "wrong passphrase!"));
    CHECK(kl_pki_key_read_encrypted("/nonexistent/x.pem", pass, strlen(pass), &back) == KL_E_IO);
    CHECK(kl_pki_key_write_plain(plain, ca_key, 0) == KL_OK);
    CHECK(kl_pki_key_read_encrypted(plain, pass, strlen(pass), &back) == KL_E_BAD_KEY && !back);
}

static void test_issue(EVP_PKEY *ca_key)
{
    X509 *ca = NULL, *dev = NULL, *other_ca = NULL;
    EVP_PKEY *dev_key = NULL, *other_key = NULL;
    uint8_t xy[64], xy2[64];
    CHECK(kl_pki_issue_ca(ca_key, "/O=Test/CN=Test CA", 30, &ca) == KL_OK);
    CHECK(kl_pki_issue_ca(ca_key, "/BAD", 30, &other_ca) == KL_E_BAD_KEY && !other_ca);
    CHECK(kl_pki_issue_ca(ca_key, NULL, 0, &other_ca) == KL_E_ARG && !other_ca);
    if (!ca) return;
    CHECK(X509_get_version(ca) == X509_VERSION_3);
    CHECK(has_ext_crit(ca, NID_basic_constraints, 1) && has_ext_crit(ca, NID_key_usage, 1));
    CHECK(X509_get_key_usage(ca) == (KU_KEY_CERT_SIGN | KU_CRL_SIGN));
    CHECK(X509_get0_subject_key_id(ca) != NULL);
    BIGNUM *serial = ASN1_INTEGER_to_BN(X509_get0_serialNumber(ca), NULL);
    CHECK(serial && !BN_is_negative(serial) && BN_num_bits(serial) == 159);
    BN_free(serial);
    CHECK(kl_pki_cert_is_ca(ca) == KL_OK && kl_pki_check_ca(ca, ca_key) == KL_OK);

    /* fingerprint = sha256(DER) */
    uint8_t *der = NULL;
    size_t dlen = 0;
    char fpr[KL_PKI_FPR_HEX_SIZE], want[KL_PKI_FPR_HEX_SIZE];
    CHECK(kl_pki_cert_to_der(ca, &der, &dlen) == KL_OK);
    unsigned char md[32];
    SHA256(der, dlen, md);
    for (int i = 0; i < 32; i++)
        snprintf(want + 2 * i, 3, "%02x", md[i]);
    CHECK(kl_pki_fingerprint_hex(ca, fpr) == KL_OK && !strcmp(fpr, want));
    X509 *again = NULL;
    CHECK(kl_pki_cert_from_der(der, dlen, &again) == KL_OK && X509_cmp(again, ca) == 0);
    X509_free(again);
    again = NULL;
    uint8_t *longer = malloc(dlen + 1);
    memcpy(longer, der, dlen);
    longer[dlen] = 0;
    CHECK(kl_pki_cert_from_der(longer, dlen + 1, &again) == KL_E_BAD_KEY && !again);
    free(longer);
    free(der);
    char *pem = NULL;
    size_t plen = 0;
    CHECK(kl_pki_cert_to_pem(ca, &pem, &plen) == KL_OK);
    CHECK(pem && kl_pki_cert_from_pem(pem, plen, &again) == KL_OK && X509_cmp(again, ca) == 0);
    X509_free(again);
    free(pem);
    CHECK(kl_pki_cert_from_pem("garbage", 7, &again) == KL_E_BAD_KEY);

    /* device certificate */
    CHECK(kl_pki_keygen_p256(&dev_key) == KL_OK);
    CHECK(kl_pki_pubkey_to_raw(dev_key, xy) == KL_OK);
    CHECK(kl_pki_issue_device(ca, ca_key, xy, "THING_1", 10, &dev) == KL_OK);
    if (dev) {
        char cn[65];
        CHECK(kl_pki_cert_cn(dev, cn, sizeof cn) == KL_OK && !strcmp(cn, "THING_1"));
        CHECK(kl_pki_cert_cn(dev, cn, 4) == KL_E_BUFFER);
        CHECK(kl_pki_cert_pubkey_raw(dev, xy2) == KL_OK && !memcmp(xy, xy2, 64));
        CHECK(X509_get_key_usage(dev) == KU_DIGITAL_SIGNATURE);
        CHECK(X509_get_extended_key_usage(dev) == XKU_SSL_CLIENT);
        CHECK(
            X509_get0_authority_key_id(dev) &&
            !ASN1_OCTET_STRING_cmp(X509_get0_authority_key_id(dev), X509_get0_subject_key_id(ca)));
        CHECK(X509_get0_subject_key_id(dev) != NULL);
        CHECK(kl_pki_cert_is_ca(dev) == KL_E_VERIFY_FAILED);
        CHECK(kl_pki_key_matches_cert(dev, dev_key) == KL_OK);
        CHECK(kl_pki_key_matches_cert(dev, ca_key) == KL_E_VERIFY_FAILED);
        CHECK(kl_pki_cert_signed_by(dev, ca) == KL_OK);
        CHECK(kl_pki_cert_signed_by(ca, dev) == KL_E_VERIFY_FAILED);
        CHECK(kl_pki_verify_chain(dev, &ca, 1, NULL, 0, 0) == KL_OK);
        CHECK(kl_pki_verify_chain(dev, &ca, 1, NULL, 0, time(NULL) + 40 * 86400) == KL_E_EXPIRED);
        X509 *stranger = NULL;
        CHECK(kl_pki_issue_ca(dev_key, "/CN=Test CA", 30, &stranger) == KL_OK);
        CHECK(kl_pki_verify_chain(dev, &stranger, 1, NULL, 0, 0) == KL_E_VERIFY_FAILED);
        X509_free(stranger);
        /* a non-CA certificate cannot issue */
        X509 *bad = NULL;
        CHECK(kl_pki_issue_device(dev, dev_key, xy, "X", 10, &bad) == KL_E_VERIFY_FAILED && !bad);
        /* clamped to the CA's notAfter */
        CHECK(kl_pki_issue_device(ca, ca_key, xy, "LONG", 3650, &bad) == KL_OK);
        CHECK(bad && ASN1_TIME_compare(X509_get0_notAfter(bad), X509_get0_notAfter(ca)) == 0);
        X509_free(bad);
    }
    /* wrong CA key */
    X509 *none = NULL;
    CHECK(kl_pki_keygen_p256(&other_key) == KL_OK);
    CHECK(kl_pki_issue_device(ca, other_key, xy, "X", 10, &none) == KL_E_VERIFY_FAILED && !none);
    CHECK(kl_pki_issue_device(ca, ca_key, xy, "", 10, &none) == KL_E_BAD_KEY && !none);
    char longcn[80];
    memset(longcn, 'a', 79);
    longcn[79] = 0;
    CHECK(kl_pki_issue_device(ca, ca_key, xy, longcn, 10, &none) == KL_E_BAD_KEY && !none);
    /* a point off the curve */
    uint8_t badxy[64];
    memcpy(badxy, xy, 64);
    badxy[63] ^= 1;
    CHECK(kl_pki_issue_device(ca, ca_key, badxy, "X", 10, &none) == KL_E_BAD_KEY && !none);
    /* an expired CA and one not yet valid */
    X509 *old = X509_dup(ca);
    redate(old, ca_key, -10 * 86400, -86400);
    CHECK(kl_pki_cert_check_time(old, 0) == KL_E_EXPIRED);
    CHECK(kl_pki_issue_device(old, ca_key, xy, "X", 10, &none) == KL_E_EXPIRED && !none);
    CHECK(strstr(kl_pki_error(), "expired") != NULL);
    redate(old, ca_key, 86400, 10 * 86400);
    CHECK(kl_pki_issue_device(old, ca_key, xy, "X", 10, &none) == KL_E_EXPIRED && !none);
    X509_free(old);

    /* verification certificate */
    EVP_PKEY *vk = NULL;
    X509 *vc = NULL;
    CHECK(kl_pki_issue_verification(ca, ca_key, "0123abcd", 1, &vk, &vc) == KL_OK);
    if (vc) {
        char cn[65];
        CHECK(kl_pki_cert_cn(vc, cn, sizeof cn) == KL_OK && !strcmp(cn, "0123abcd"));
        CHECK(kl_pki_cert_signed_by(vc, ca) == KL_OK && kl_pki_key_matches_cert(vc, vk) == KL_OK);
    }
    X509_free(vc);
    EVP_PKEY_free(vk);

    /* CSR with an external signer */
    struct soft_signer ss = {dev_key, 0};
    X509_REQ *req = NULL;
    CHECK(kl_pki_csr_build(xy, "THING_1", soft_sign, &ss, &req) == KL_OK);
    if (req) {
        CHECK(X509_REQ_verify(req, dev_key) == 1);
        char *rp = NULL;
        size_t rl = 0;
        CHECK(kl_pki_csr_to_pem(req, &rp, &rl) == KL_OK && strstr(rp, "CERTIFICATE REQUEST"));
        free(rp);
        X509_REQ_free(req);
        req = NULL;
    }
    ss.mode = 1;
    CHECK(kl_pki_csr_build(xy, "THING_1", soft_sign, &ss, &req) == KL_E_VERIFY_FAILED && !req);
    ss.mode = 2;
    CHECK(kl_pki_csr_build(xy, "THING_1", soft_sign, &ss, &req) == KL_E_ACCESS_DENIED && !req);
    ss.mode = 0;
    ss.key = other_key; /* signer holds a different key than the request names */
    CHECK(kl_pki_csr_build(xy, "THING_1", soft_sign, &ss, &req) == KL_E_VERIFY_FAILED && !req);

    X509_free(dev);
    X509_free(ca);
    EVP_PKEY_free(dev_key);
    EVP_PKEY_free(other_key);
}

static void test_file_write(void)
{
    char p[512];
    path_of(p, sizeof p, "f.txt");
    CHECK(kl_pki_file_write(p, "one", 3, 0644, 0) == KL_OK);
    CHECK(kl_pki_file_write(p, "two", 3, 0644, 0) == KL_E_EXISTS);
    char buf[8] = {0};
    FILE *f = fopen(p, "r");
    CHECK(f && fread(buf, 1, 7, f) == 3 && !strcmp(buf, "one"));
    if (f) fclose(f);
    CHECK(kl_pki_file_write(p, "two", 3, 0644, 1) == KL_OK);
    CHECK(kl_pki_file_write("/nonexistent-dir/f", "x", 1, 0644, 0) == KL_E_IO);
}

int main(void)
{
    if (!mkdtemp(tmpdir)) return 1;
    EVP_PKEY *ca_key = NULL;
    CHECK(kl_pki_keygen_p256(&ca_key) == KL_OK);
    test_names();
    test_file_write();
    if (ca_key) {
        test_key_files(ca_key);
        test_issue(ca_key);
    }
    EVP_PKEY_free(ca_key);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0) failures++;
    if (failures)
        fprintf(stderr, "%d check(s) failed\n", failures);
    else
        printf("pki lib ok\n");
    return failures ? 1 : 0;
}
