/* keylinkd's root CA and TLS server certificate, made on first start (OpenSSL + kl_pki). */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include <arpa/inet.h>

#include <openssl/bn.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include "kl_pki.h"
#include "server_pki.h"

#define KL_SERVER_ROOT_SUBJECT "/O=keylink/CN=keylink endpoint root CA"
#define KL_SERVER_DAYS 3650

static int exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

static int add_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, issuer, x, NULL, NULL, 0);
    X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    if (!e) return -1;
    int ok = X509_add_ext(x, e, -1);
    X509_EXTENSION_free(e);
    return ok ? 0 : -1;
}

static int is_ip(const char *s)
{
    unsigned char buf[16];
    return inet_pton(AF_INET, s, buf) == 1 || inet_pton(AF_INET6, s, buf) == 1;
}

/* The subjectAltName value "DNS:a,IP:b,..."; -1 when a name has characters that could
 * break the list. */
static int san_value(const char *const *names, size_t n, char *out, size_t cap)
{
    size_t o = 0;
    out[0] = 0;
    for (size_t i = 0; i < n; i++) {
        size_t l = strlen(names[i]);
        if (l == 0 || l > 253 ||
            strspn(names[i],
                   "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-:_") != l)
            return -1;
        int w = snprintf(out + o, cap - o, "%s%s:%s", i ? "," : "", is_ip(names[i]) ? "IP" : "DNS",
                         names[i]);
        if (w < 0 || (size_t)w >= cap - o) return -1;
        o += (size_t)w;
    }
    return 0;
}

static X509 *issue_server(X509 *ca, EVP_PKEY *ca_key, EVP_PKEY *key, const char *const *names,
                          size_t n)
{
    char san[4096];
    if (san_value(names, n, san, sizeof san)) return NULL;
    X509 *x = X509_new();
    BIGNUM *bn = BN_new();
    X509_NAME *subj = X509_NAME_new();
    int ok = x && bn && subj && X509_set_version(x, 2) && BN_rand(bn, 127, 0, 0) &&
             BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) &&
             X509_NAME_add_entry_by_txt(subj, "O", MBSTRING_UTF8, (const unsigned char *)"keylink",
                                        -1, -1, 0) &&
             X509_NAME_add_entry_by_txt(subj, "CN", MBSTRING_UTF8, (const unsigned char *)names[0],
                                        -1, -1, 0) &&
             X509_set_subject_name(x, subj) && X509_set_issuer_name(x, X509_get_subject_name(ca)) &&
             X509_gmtime_adj(X509_getm_notBefore(x), -300) &&
             X509_time_adj_ex(X509_getm_notAfter(x), KL_SERVER_DAYS - 1, 0, NULL) &&
             X509_set_pubkey(x, key);
    if (ok && ASN1_TIME_compare(X509_get0_notAfter(x), X509_get0_notAfter(ca)) > 0)
        ok = X509_set1_notAfter(x, X509_get0_notAfter(ca));
    ok = ok && !add_ext(x, ca, NID_basic_constraints, "critical,CA:FALSE") &&
         !add_ext(x, ca, NID_key_usage, "critical,digitalSignature") &&
         !add_ext(x, ca, NID_ext_key_usage, "serverAuth") &&
         !add_ext(x, ca, NID_subject_key_identifier, "hash") &&
         !add_ext(x, ca, NID_authority_key_identifier, "keyid") &&
         !add_ext(x, ca, NID_subject_alt_name, san) && X509_sign(x, ca_key, EVP_sha256()) > 0;
    BN_free(bn);
    X509_NAME_free(subj);
    if (!ok) {
        X509_free(x);
        return NULL;
    }
    return x;
}

kl_reg_rc kl_server_pki_ensure(const char *dir, const char *const *names, size_t n,
                               struct kl_reg_err *err)
{
    char ca_pem[4096], ca_key[4096], srv_pem[4096], srv_key[4096];
    if (n == 0) return kl_reg_fail(err, KL_REG_INVALID, "no server names");
    if ((size_t)snprintf(ca_pem, sizeof ca_pem, "%s/server-root-ca.pem", dir) >= sizeof ca_pem)
        return kl_reg_fail(err, KL_REG_INVALID, "data directory path too long");
    snprintf(ca_key, sizeof ca_key, "%s/server-root-ca.key", dir);
    snprintf(srv_pem, sizeof srv_pem, "%s/server.pem", dir);
    snprintf(srv_key, sizeof srv_key, "%s/server.key", dir);
    if (exists(ca_pem) && exists(srv_pem) && exists(srv_key)) return KL_REG_OK;

    EVP_PKEY *rk = NULL, *sk = NULL;
    X509 *root = NULL, *srv = NULL;
    kl_reg_rc rc = KL_REG_OK;
    if (exists(ca_pem) || exists(ca_key)) {
        /* The root exists but the server pair is incomplete: a root key is needed. */
        BIO *b = BIO_new_file(ca_key, "r");
        rk = b ? PEM_read_bio_PrivateKey(b, NULL, NULL, NULL) : NULL;
        BIO_free(b);
        if (!rk || kl_pki_cert_read(ca_pem, &root) != KL_OK ||
            kl_pki_key_matches_cert(root, rk) != KL_OK)
            rc = kl_reg_fail(err, KL_REG_INTERNAL,
                             "%s or its key is missing or damaged; move the data directory's "
                             "server-* files away to make new ones",
                             ca_pem);
    } else if (kl_pki_keygen_p256(&rk) != KL_OK ||
               kl_pki_issue_ca(rk, KL_SERVER_ROOT_SUBJECT, KL_SERVER_DAYS, &root) != KL_OK ||
               kl_pki_key_write_plain(ca_key, rk, 1) != KL_OK ||
               kl_pki_cert_write(ca_pem, root, 1) != KL_OK) {
        rc = kl_reg_fail(err, KL_REG_INTERNAL, "cannot make the root CA: %s", kl_pki_error());
    }
    if (rc == KL_REG_OK) {
        if (kl_pki_keygen_p256(&sk) != KL_OK || !(srv = issue_server(root, rk, sk, names, n)))
            rc = kl_reg_fail(err, KL_REG_INVALID,
                             "cannot issue the server certificate (check the server names)");
        else if (kl_pki_key_write_plain(srv_key, sk, 1) != KL_OK ||
                 kl_pki_cert_write(srv_pem, srv, 1) != KL_OK)
            rc = kl_reg_fail(err, KL_REG_INTERNAL, "cannot write the server certificate: %s",
                             kl_pki_error());
    }
    EVP_PKEY_free(rk);
    EVP_PKEY_free(sk);
    X509_free(root);
    X509_free(srv);
    return rc;
}
