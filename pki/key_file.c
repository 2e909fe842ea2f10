/* Private keys on disk: encrypted PKCS#8 (PBES2, AES-256-CBC, PBKDF2-HMAC-SHA256). */
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/pkcs12.h>
#include <openssl/rand.h>
#include <openssl/x509.h>

#include "pki_int.h"

kl_status kl_pki_key_encrypt_pem(EVP_PKEY *key, const char *pass, size_t passlen, char **pem,
                                 size_t *pemlen)
{
    if (!key || !pass || !pem || !pemlen) return kl_pki_fail(KL_E_ARG, "missing argument");
    if (passlen < KL_PKI_PASS_MIN)
        return kl_pki_fail(KL_E_ARG, "passphrase too short (at least %d characters)",
                           KL_PKI_PASS_MIN);
    if (passlen > KL_PKI_PASS_MAX)
        return kl_pki_fail(KL_E_ARG, "passphrase too long (at most %d bytes)", KL_PKI_PASS_MAX);

    kl_status st = KL_E_INTERNAL;
    PKCS8_PRIV_KEY_INFO *p8 = EVP_PKEY2PKCS8(key);
    X509_ALGOR *alg = NULL;
    X509_SIG *enc = NULL;
    BIO *b = NULL;
    unsigned char salt[16];
    if (!p8) {
        st = kl_pki_fail_ssl(KL_E_INTERNAL, "cannot convert the key to PKCS#8");
        goto done;
    }
    if (RAND_bytes(salt, sizeof salt) != 1) {
        st = kl_pki_fail_ssl(KL_E_INTERNAL, "no random salt");
        goto done;
    }
    /* PBES2 with an explicit PRF and iteration count: OpenSSL's PEM defaults use far fewer
     * iterations. The IV is drawn at random when aiv is NULL. */
    alg = PKCS5_pbe2_set_iv_ex(EVP_aes_256_cbc(), KL_PKI_PBKDF2_ITER, salt, sizeof salt, NULL,
                               NID_hmacWithSHA256, NULL);
    if (!alg) {
        st = kl_pki_fail_ssl(KL_E_INTERNAL, "cannot set up PBES2");
        goto done;
    }
    enc = PKCS8_set0_pbe_ex(pass, (int)passlen, p8, alg, NULL, NULL);
    if (!enc) {
        st = kl_pki_fail_ssl(KL_E_INTERNAL, "key encryption failed");
        goto done;
    }
    alg = NULL; /* owned by enc now */
    b = BIO_new(BIO_s_mem());
    if (!b || !PEM_write_bio_PKCS8(b, enc)) {
        st = kl_pki_fail_ssl(KL_E_INTERNAL, "cannot PEM-encode the key");
        goto done;
    }
    st = kl_pki_bio_to_string(b, pem, pemlen);
done:
    BIO_free(b);
    X509_SIG_free(enc);
    X509_ALGOR_free(alg);
    PKCS8_PRIV_KEY_INFO_free(p8);
    OPENSSL_cleanse(salt, sizeof salt);
    return st;
}

kl_status kl_pki_key_write_encrypted(const char *path, EVP_PKEY *key, const char *pass,
                                     size_t passlen, int force)
{
    char *pem = NULL;
    size_t len = 0;
    kl_status st = kl_pki_key_encrypt_pem(key, pass, passlen, &pem, &len);
    if (st != KL_OK) return st;
    st = kl_pki_file_write(path, pem, len, 0600, force);
    free(pem);
    return st;
}

kl_status kl_pki_key_write_plain(const char *path, EVP_PKEY *key, int force)
{
    if (!path || !key) return kl_pki_fail(KL_E_ARG, "missing argument");
    BIO *b = BIO_new(BIO_s_mem());
    char *mem = NULL;
    long n;
    kl_status st;
    if (!b || !PEM_write_bio_PKCS8PrivateKey(b, key, NULL, NULL, 0, NULL, NULL) ||
        (n = BIO_get_mem_data(b, &mem)) <= 0) {
        st = kl_pki_fail_ssl(KL_E_INTERNAL, "cannot PEM-encode the key");
    } else {
        st = kl_pki_file_write(path, mem, (size_t)n, 0600, force);
        OPENSSL_cleanse(mem, (size_t)n);
    }
    BIO_free(b);
    return st;
}

struct pass_cb {
    const char *pass;
    size_t len;
    int asked;
};

static int give_pass(char *buf, int size, int rwflag, void *u)
{
    (void)rwflag;
    struct pass_cb *pc = u;
    pc->asked = 1;
    if (size < 0 || pc->len > (size_t)size) return -1;
    memcpy(buf, pc->pass, pc->len);
    return (int)pc->len;
}

kl_status kl_pki_key_read_encrypted(const char *path, const char *pass, size_t passlen,
                                    EVP_PKEY **out)
{
    if (!path || !pass || !out) return kl_pki_fail(KL_E_ARG, "missing argument");
    if (passlen > KL_PKI_PASS_MAX) return kl_pki_fail(KL_E_AUTH_FAILED, "passphrase too long");
    BIO *b = BIO_new_file(path, "r");
    if (!b) {
        ERR_clear_error();
        return kl_pki_fail(KL_E_IO, "cannot read the key file %s", path);
    }
    struct pass_cb pc = {pass, passlen, 0};
    EVP_PKEY *k = PEM_read_bio_PrivateKey(b, NULL, give_pass, &pc);
    BIO_free(b);
    ERR_clear_error();
    if (!k) {
        if (pc.asked)
            return kl_pki_fail(KL_E_AUTH_FAILED, "cannot decrypt the key in %s: wrong passphrase",
                               path);
        return kl_pki_fail(KL_E_BAD_KEY, "%s holds no private key in PEM form", path);
    }
    if (!pc.asked) {
        EVP_PKEY_free(k);
        return kl_pki_fail(KL_E_BAD_KEY,
                           "the key in %s is not encrypted; a CA key must be (re-encrypt it "
                           "with `openssl pkcs8 -topk8 -v2 aes-256-cbc`)",
                           path);
    }
    if (!kl_pki_is_p256(k)) {
        EVP_PKEY_free(k);
        return kl_pki_fail(KL_E_UNSUPPORTED, "the key in %s is not an EC P-256 key", path);
    }
    *out = k;
    return KL_OK;
}
