/*
 * kl-gen-batch: writes a bulk-import file (docs/registry.md) of N things, each with its own
 * device certificate signed by the given CA. One device key serves every certificate (the
 * certificates differ by serial and CN), which keeps 100,000 certificates fast to make.
 * usage: kl-gen-batch CA_CERT.pem CA_KEY.pem COUNT PREFIX OUT.jsonl [FIRST]
 * FIRST (default 0) numbers the first thing, so several generators can split the work.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

static X509 *read_cert(const char *p)
{
    FILE *f = fopen(p, "r");
    X509 *x = f ? PEM_read_X509(f, NULL, NULL, NULL) : NULL;
    if (f) fclose(f);
    return x;
}

int main(int argc, char **argv)
{
    if (argc != 6 && argc != 7) {
        fprintf(stderr,
                "usage: kl-gen-batch CA_CERT.pem CA_KEY.pem COUNT PREFIX OUT.jsonl [FIRST]\n");
        return 2;
    }
    X509 *ca = read_cert(argv[1]);
    FILE *kf = fopen(argv[2], "r");
    EVP_PKEY *cak = kf ? PEM_read_PrivateKey(kf, NULL, NULL, NULL) : NULL;
    if (kf) fclose(kf);
    long count = strtol(argv[3], NULL, 10);
    long first = argc == 7 ? strtol(argv[6], NULL, 10) : 0;
    FILE *out = fopen(argv[5], "w");
    EVP_PKEY *dk = EVP_EC_gen("P-256");
    if (!ca || !cak || count < 1 || first < 0 || !out || !dk) {
        fprintf(stderr, "kl-gen-batch: bad CA, key, count or output\n");
        return 1;
    }
    BIO *mem = BIO_new(BIO_s_mem());
    /* one signing context, copied per certificate: OpenSSL 3's per-call algorithm fetch
     * would otherwise dominate the time */
    EVP_MD_CTX *tmpl = EVP_MD_CTX_new(), *ctx = EVP_MD_CTX_new();
    if (!tmpl || !ctx || EVP_DigestSignInit(tmpl, NULL, EVP_sha256(), NULL, cak) != 1) {
        fprintf(stderr, "kl-gen-batch: cannot set up signing\n");
        return 1;
    }
    /* one certificate object re-used: only serial and subject change, so the public key
     * is encoded once (OpenSSL 3's key encoders are the slow part) */
    X509 *x = X509_new();
    if (!x || !X509_set_version(x, 2) || !X509_set_issuer_name(x, X509_get_subject_name(ca)) ||
        !X509_gmtime_adj(X509_getm_notBefore(x), -60) ||
        !X509_gmtime_adj(X509_getm_notAfter(x), 86400L * 30) || !X509_set_pubkey(x, dk)) {
        fprintf(stderr, "kl-gen-batch: cannot build the certificate\n");
        return 1;
    }
    for (long i = first; i < first + count; i++) {
        char cn[128];
        snprintf(cn, sizeof cn, "%s-%07ld", argv[4], i);
        X509_NAME *n = X509_NAME_new();
        if (!n || !ASN1_INTEGER_set_int64(X509_get_serialNumber(x), i + 1000) ||
            !X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (unsigned char *)cn, -1, -1, 0) ||
            !X509_set_subject_name(x, n) || EVP_MD_CTX_copy_ex(ctx, tmpl) != 1 ||
            X509_sign_ctx(x, ctx) <= 0) {
            fprintf(stderr, "kl-gen-batch: signing failed\n");
            return 1;
        }
        X509_NAME_free(n);
        (void)BIO_reset(mem);
        PEM_write_bio_X509(mem, x);
        char *pem;
        long pl = BIO_get_mem_data(mem, &pem);
        fprintf(out, "{\"thingName\":\"%s\",\"certificatePem\":\"", cn);
        for (long k = 0; k < pl; k++) {
            if (pem[k] == '\n')
                fputs("\\n", out);
            else
                fputc(pem[k], out);
        }
        fputs("\"}\n", out);
    }
    X509_free(x);
    BIO_free(mem);
    EVP_MD_CTX_free(ctx);
    EVP_MD_CTX_free(tmpl);
    EVP_PKEY_free(dk);
    EVP_PKEY_free(cak);
    X509_free(ca);
    return fclose(out) ? 1 : 0;
}
