/*
 * pki/: the parsers behind make_ca_cert, init_tls_iot and the registry on hostile
 * files. Byte 0 picks: 0 a PEM certificate, 1 a DER certificate, 2 an (encrypted)
 * PKCS#8 PEM key file read with the passphrase "fuzz passphrase". An accepted
 * certificate then goes through the accessors the tools use (CN, fingerprint, raw
 * public key, CA checks); each answers a status and, for strings, a terminated one.
 */
#include <string.h>
#include <unistd.h>

#include "fuzz.h"
#include "kl_pki.h"

static char key_path[64];

static void cleanup(void)
{
    unlink(key_path);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    snprintf(key_path, sizeof key_path, "%s/kl-fuzz-key-XXXXXX", base);
    int fd = mkstemp(key_path);
    FZ_CHECK(fd >= 0);
    close(fd);
    atexit(cleanup);
    return 0;
}

static void use_cert(X509 *x)
{
    char cn[65];
    kl_status st = kl_pki_cert_cn(x, cn, sizeof cn);
    if (st == KL_OK) FZ_CHECK(memchr(cn, 0, sizeof cn) != NULL);
    char fpr[KL_PKI_FPR_HEX_SIZE];
    if (kl_pki_fingerprint_hex(x, fpr) == KL_OK) FZ_CHECK(strlen(fpr) == KL_PKI_FPR_HEX_SIZE - 1);
    uint8_t xy[KL_PKI_RAW_PUB_LEN];
    (void)kl_pki_cert_pubkey_raw(x, xy);
    (void)kl_pki_cert_is_ca(x);
    (void)kl_pki_cert_check_time(x, 2000000000);
    (void)kl_pki_cert_signed_by(x, x);
    char *pem = NULL;
    size_t pl = 0;
    if (kl_pki_cert_to_pem(x, &pem, &pl) == KL_OK) {
        X509 *y = NULL;
        FZ_CHECK(kl_pki_cert_from_pem(pem, pl, &y) == KL_OK);
        X509_free(y);
        free(pem);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    const uint8_t *b = data + 1;
    size_t n = size - 1;
    X509 *x = NULL;
    switch (data[0] % 3) {
    case 0:
        if (kl_pki_cert_from_pem((const char *)b, n, &x) == KL_OK) use_cert(x);
        break;
    case 1:
        if (kl_pki_cert_from_der(b, n, &x) == KL_OK) use_cert(x);
        break;
    default: {
        FILE *f = fopen(key_path, "wb");
        FZ_CHECK(f != NULL);
        if (n) FZ_CHECK(fwrite(b, 1, n, f) == n);
        fclose(f);
        EVP_PKEY *k = NULL;
        static const char pass[] = "fuzz passphrase";
        kl_status st = kl_pki_key_read_encrypted(key_path, pass, sizeof pass - 1, &k);
        FZ_CHECK((st == KL_OK) == (k != NULL));
        /* the reason never carries the passphrase */
        FZ_CHECK(strstr(kl_pki_error(), pass) == NULL);
        EVP_PKEY_free(k);
        break;
    }
    }
    X509_free(x);
    return 0;
}
