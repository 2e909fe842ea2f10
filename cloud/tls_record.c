/* TLS 1.2 AES-GCM records after OpenSSL's handshake (tls_record.h): key derivation from
 * the session, record header checks, open and seal. Every byte of a record is the peer's
 * and is checked before it is used; a record whose tag fails leaves nothing behind. */
#include <pthread.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/kdf.h>
#include <openssl/params.h>

#include "tls_record.h"

#define TLS12_MAJOR 3
#define TLS12_MINOR 3
#define SALT_LEN 4
#define NONCE_LEN (SALT_LEN + KL_TREC_EXPLICIT_IV)

int kl_trec_ctx_init(struct kl_trec_ctx *x)
{
    memset(x, 0, sizeof *x);
    x->c128 = EVP_CIPHER_CTX_new();
    x->c256 = EVP_CIPHER_CTX_new();
    /* the cipher is bound once; each record only sets its key and nonce */
    if (!x->c128 || !x->c256 ||
        EVP_CipherInit_ex(x->c128, EVP_aes_128_gcm(), NULL, NULL, NULL, 1) != 1 ||
        EVP_CipherInit_ex(x->c256, EVP_aes_256_gcm(), NULL, NULL, NULL, 1) != 1) {
        kl_trec_ctx_free(x);
        return -1;
    }
    return 0;
}

void kl_trec_ctx_free(struct kl_trec_ctx *x)
{
    EVP_CIPHER_CTX_free(x->c128);
    EVP_CIPHER_CTX_free(x->c256);
    x->c128 = x->c256 = NULL;
}

void kl_trec_wipe(struct kl_trec *t)
{
    OPENSSL_cleanse(t, sizeof *t);
}

/* fetched once: a fetch per handshake walks OpenSSL 3.0's provider tables under a lock */
static EVP_KDF *g_prf;
static pthread_once_t g_prf_once = PTHREAD_ONCE_INIT;
static void prf_fetch(void)
{
    g_prf = EVP_KDF_fetch(NULL, OSSL_KDF_NAME_TLS1_PRF, NULL);
}

/* RFC 5246 6.3: key_block = PRF(master_secret, "key expansion", server_random +
 * client_random), with the suite's PRF hash; OpenSSL's TLS1-PRF does the arithmetic. */
static int key_block(SSL *ssl, const EVP_MD *md, uint8_t *out, size_t out_len)
{
    uint8_t ms[SSL_MAX_MASTER_KEY_LENGTH];
    uint8_t seed[13 + 2 * SSL3_RANDOM_SIZE];
    int rc = -1;
    size_t ms_len = SSL_SESSION_get_master_key(SSL_get_session(ssl), ms, sizeof ms);
    memcpy(seed, "key expansion", 13);
    if (ms_len != SSL3_MASTER_SECRET_SIZE ||
        SSL_get_server_random(ssl, seed + 13, SSL3_RANDOM_SIZE) != SSL3_RANDOM_SIZE ||
        SSL_get_client_random(ssl, seed + 13 + SSL3_RANDOM_SIZE, SSL3_RANDOM_SIZE) !=
            SSL3_RANDOM_SIZE) {
        OPENSSL_cleanse(ms, sizeof ms);
        return -1;
    }
    pthread_once(&g_prf_once, prf_fetch);
    EVP_KDF_CTX *kc = g_prf ? EVP_KDF_CTX_new(g_prf) : NULL;
    if (kc) {
        OSSL_PARAM params[] = {
            OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)EVP_MD_get0_name(md),
                                             0),
            OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SECRET, ms, ms_len),
            OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SEED, seed, sizeof seed),
            OSSL_PARAM_construct_end(),
        };
        if (EVP_KDF_derive(kc, out, out_len, params) == 1) rc = 0;
    }
    EVP_KDF_CTX_free(kc);
    OPENSSL_cleanse(ms, sizeof ms);
    OPENSSL_cleanse(seed, sizeof seed);
    return rc;
}

int kl_trec_from_ssl(struct kl_trec *t, SSL *ssl)
{
    if (SSL_version(ssl) != TLS1_2_VERSION || !SSL_is_init_finished(ssl) || SSL_is_dtls(ssl))
        return 1;
    /* anything OpenSSL read past the Finished would be lost: keep such a connection there */
    if (SSL_has_pending(ssl) || SSL_pending(ssl) > 0) return 1;
    const SSL_CIPHER *cs = SSL_get_current_cipher(ssl);
    if (!cs || !SSL_CIPHER_is_aead(cs)) return 1;
    size_t key_len;
    switch (SSL_CIPHER_get_cipher_nid(cs)) {
    case NID_aes_128_gcm:
        key_len = 16;
        break;
    case NID_aes_256_gcm:
        key_len = 32;
        break;
    default:
        return 1; /* ChaCha20-Poly1305, CCM: OpenSSL keeps the records */
    }
    const EVP_MD *md = SSL_CIPHER_get_handshake_digest(cs);
    if (!md) return -1;
    uint8_t kb[2 * 32 + 2 * SALT_LEN];
    size_t kb_len = 2 * key_len + 2 * SALT_LEN;
    if (key_block(ssl, md, kb, kb_len)) {
        OPENSSL_cleanse(kb, sizeof kb);
        return -1;
    }
    memset(t, 0, sizeof *t);
    /* AEAD suites have no MAC keys: client key, server key, client salt, server salt */
    memcpy(t->rd.key, kb, key_len);
    memcpy(t->wr.key, kb + key_len, key_len);
    memcpy(t->rd.salt, kb + 2 * key_len, SALT_LEN);
    memcpy(t->wr.salt, kb + 2 * key_len + SALT_LEN, SALT_LEN);
    OPENSSL_cleanse(kb, sizeof kb);
    /* each side's Finished was record 0 under these keys (full and abbreviated handshakes) */
    t->rd.seq = 1;
    t->wr.seq = 1;
    t->key_len = (uint8_t)key_len;
    uint8_t mfl = SSL_SESSION_get_max_fragment_length(SSL_get_session(ssl));
    t->max_frag = (mfl >= TLSEXT_max_fragment_length_512 && mfl <= TLSEXT_max_fragment_length_4096)
                      ? (uint16_t)(512u << (mfl - TLSEXT_max_fragment_length_512))
                      : KL_TREC_MAX_PLAIN;
    return 0;
}

long kl_trec_record_len(const uint8_t *buf, size_t n)
{
    if (n < KL_TREC_HDR) return 0;
    if (buf[0] < KL_TREC_CCS || buf[0] > 24) return -KL_TREC_AD_UNEXPECTED_MESSAGE;
    if (buf[1] != TLS12_MAJOR || buf[2] != TLS12_MINOR) return -KL_TREC_AD_PROTOCOL_VERSION;
    size_t len = (size_t)buf[3] << 8 | buf[4];
    if (len > KL_TREC_MAX_RECORD - KL_TREC_HDR) return -KL_TREC_AD_RECORD_OVERFLOW;
    return (long)(KL_TREC_HDR + len);
}

static void put_be64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--, v >>= 8)
        p[i] = (uint8_t)v;
}

/* the 13 bytes of additional data: seq_num, type, version, plaintext length */
static void aad(uint8_t a[13], uint64_t seq, uint8_t type, size_t n)
{
    put_be64(a, seq);
    a[8] = type;
    a[9] = TLS12_MAJOR;
    a[10] = TLS12_MINOR;
    a[11] = (uint8_t)(n >> 8);
    a[12] = (uint8_t)n;
}

static EVP_CIPHER_CTX *pick(const struct kl_trec *t, struct kl_trec_ctx *x)
{
    return t->key_len == 16 ? x->c128 : t->key_len == 32 ? x->c256 : NULL;
}

int kl_trec_open(struct kl_trec *t, struct kl_trec_ctx *x, uint8_t *rec, size_t len, uint8_t **pt,
                 size_t *pt_len)
{
    EVP_CIPHER_CTX *c = pick(t, x);
    long want = kl_trec_record_len(rec, len);
    if (want < 0) return (int)want;
    if (!c || want == 0 || (size_t)want != len) return -KL_TREC_AD_INTERNAL_ERROR;
    if (len < KL_TREC_OVERHEAD) return -KL_TREC_AD_BAD_RECORD_MAC;
    size_t n = len - KL_TREC_OVERHEAD;
    if (n > KL_TREC_MAX_PLAIN) return -KL_TREC_AD_RECORD_OVERFLOW;
    if (t->rd.seq == UINT64_MAX) return -KL_TREC_AD_INTERNAL_ERROR; /* never wraps */
    uint8_t nonce[NONCE_LEN], a[13];
    memcpy(nonce, t->rd.salt, SALT_LEN);
    memcpy(nonce + SALT_LEN, rec + KL_TREC_HDR, KL_TREC_EXPLICIT_IV);
    aad(a, t->rd.seq, rec[0], n);
    uint8_t *body = rec + KL_TREC_HDR + KL_TREC_EXPLICIT_IV;
    int outl = 0, finl = 0;
    /* the tag check happens in EVP_DecryptFinal_ex (constant time inside OpenSSL) */
    if (EVP_CipherInit_ex(c, NULL, NULL, t->rd.key, nonce, 0) != 1 ||
        EVP_CipherUpdate(c, NULL, &outl, a, sizeof a) != 1 ||
        (n && EVP_CipherUpdate(c, body, &outl, body, (int)n) != 1) ||
        EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, KL_TREC_TAG, body + n) != 1 ||
        EVP_CipherFinal_ex(c, body + n, &finl) != 1) {
        OPENSSL_cleanse(body, n); /* unauthenticated plaintext is never used */
        return -KL_TREC_AD_BAD_RECORD_MAC;
    }
    t->rd.seq++;
    *pt = body;
    *pt_len = n;
    return rec[0];
}

size_t kl_trec_seal(struct kl_trec *t, struct kl_trec_ctx *x, uint8_t type, const uint8_t *pt,
                    size_t n, uint8_t *out)
{
    EVP_CIPHER_CTX *c = pick(t, x);
    if (!c || n > t->max_frag || n > KL_TREC_MAX_PLAIN || t->wr.seq == UINT64_MAX) return 0;
    size_t body = KL_TREC_EXPLICIT_IV + n + KL_TREC_TAG;
    out[0] = type;
    out[1] = TLS12_MAJOR;
    out[2] = TLS12_MINOR;
    out[3] = (uint8_t)(body >> 8);
    out[4] = (uint8_t)body;
    /* the explicit nonce is the sequence number: never repeats under one key */
    put_be64(out + KL_TREC_HDR, t->wr.seq);
    uint8_t nonce[NONCE_LEN], a[13];
    memcpy(nonce, t->wr.salt, SALT_LEN);
    memcpy(nonce + SALT_LEN, out + KL_TREC_HDR, KL_TREC_EXPLICIT_IV);
    aad(a, t->wr.seq, type, n);
    uint8_t *ct = out + KL_TREC_HDR + KL_TREC_EXPLICIT_IV;
    int outl = 0, finl = 0;
    if (EVP_CipherInit_ex(c, NULL, NULL, t->wr.key, nonce, 1) != 1 ||
        EVP_CipherUpdate(c, NULL, &outl, a, sizeof a) != 1 ||
        (n && EVP_CipherUpdate(c, ct, &outl, pt, (int)n) != 1) ||
        EVP_CipherFinal_ex(c, ct + n, &finl) != 1 ||
        EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, KL_TREC_TAG, ct + n) != 1)
        return 0;
    t->wr.seq++;
    return KL_TREC_HDR + body;
}
