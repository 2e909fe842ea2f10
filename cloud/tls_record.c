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
static EVP_KDF *g_prf, *g_hkdf13;
static pthread_once_t g_prf_once = PTHREAD_ONCE_INIT;
static void prf_fetch(void)
{
    g_prf = EVP_KDF_fetch(NULL, OSSL_KDF_NAME_TLS1_PRF, NULL);
    g_hkdf13 = EVP_KDF_fetch(NULL, OSSL_KDF_NAME_TLS1_3_KDF, NULL);
}

/* RFC 8446 7.1 HKDF-Expand-Label(secret, label, "", out_len), by OpenSSL's TLS13-KDF */
static int expand_label(const EVP_MD *md, const uint8_t *secret, size_t secret_len,
                        const char *label, uint8_t *out, size_t out_len)
{
    pthread_once(&g_prf_once, prf_fetch);
    EVP_KDF_CTX *kc = g_hkdf13 ? EVP_KDF_CTX_new(g_hkdf13) : NULL;
    if (!kc) return -1;
    int mode = EVP_KDF_HKDF_MODE_EXPAND_ONLY;
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_int(OSSL_KDF_PARAM_MODE, &mode),
        OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)EVP_MD_get0_name(md), 0),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)secret, secret_len),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_PREFIX, (void *)"tls13 ", 6),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_LABEL, (void *)label, strlen(label)),
        OSSL_PARAM_construct_end(),
    };
    int rc = EVP_KDF_derive(kc, out, out_len, params) == 1 ? 0 : -1;
    EVP_KDF_CTX_free(kc);
    return rc;
}

/* key and iv of one direction from its traffic secret (RFC 8446 7.3) */
static int traffic_keys(const EVP_MD *md, struct kl_trec_dir *d, size_t secret_len, size_t key_len)
{
    return expand_label(md, d->secret, secret_len, "key", d->key, key_len) ||
                   expand_label(md, d->secret, secret_len, "iv", d->iv, sizeof d->iv)
               ? -1
               : 0;
}

static const EVP_MD *secret_md(const struct kl_trec *t)
{
    return t->secret_len == 48 ? EVP_sha384() : EVP_sha256();
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

void kl_trec_keylog(struct kl_trec *t, const char *line)
{
    static const char cl[] = "CLIENT_TRAFFIC_SECRET_0 ", sv[] = "SERVER_TRAFFIC_SECRET_0 ";
    struct kl_trec_dir *d;
    uint8_t bit;
    if (!strncmp(line, cl, sizeof cl - 1)) {
        d = &t->rd, bit = 1;
    } else if (!strncmp(line, sv, sizeof sv - 1)) {
        d = &t->wr, bit = 2;
    } else {
        return;
    }
    /* "<label> <64 hex: client random> <hex: secret>" */
    const char *p = line + sizeof cl - 1;
    size_t rnd = strspn(p, "0123456789abcdefABCDEF");
    if (rnd != 2 * SSL3_RANDOM_SIZE || p[rnd] != ' ') return;
    p += rnd + 1;
    size_t hex = strlen(p);
    if (hex != 64 && hex != 96) return;
    uint8_t sec[48];
    for (size_t i = 0; i < hex / 2; i++) {
        int hi = hexval(p[2 * i]), lo = hexval(p[2 * i + 1]);
        if (hi < 0 || lo < 0) {
            OPENSSL_cleanse(sec, sizeof sec);
            return;
        }
        sec[i] = (uint8_t)(hi << 4 | lo);
    }
    if (t->got_secrets && t->secret_len != hex / 2) { /* both from one hash, or neither */
        OPENSSL_cleanse(sec, sizeof sec);
        t->got_secrets = 0;
        return;
    }
    memcpy(d->secret, sec, hex / 2);
    OPENSSL_cleanse(sec, sizeof sec);
    t->secret_len = (uint8_t)(hex / 2);
    t->got_secrets |= bit;
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

static uint16_t max_frag(SSL *ssl)
{
    uint8_t mfl = SSL_SESSION_get_max_fragment_length(SSL_get_session(ssl));
    return (mfl >= TLSEXT_max_fragment_length_512 && mfl <= TLSEXT_max_fragment_length_4096)
               ? (uint16_t)(512u << (mfl - TLSEXT_max_fragment_length_512))
               : KL_TREC_MAX_PLAIN;
}

static int from_ssl12(struct kl_trec *t, SSL *ssl, const SSL_CIPHER *cs);

static int from_ssl13(struct kl_trec *t, SSL *ssl, const SSL_CIPHER *cs)
{
    size_t key_len, sec_len;
    switch (SSL_CIPHER_get_id(cs) & 0xffff) {
    case 0x1301: /* TLS_AES_128_GCM_SHA256 */
        key_len = 16, sec_len = 32;
        break;
    case 0x1302: /* TLS_AES_256_GCM_SHA384 */
        key_len = 32, sec_len = 48;
        break;
    default:
        return 1; /* TLS_CHACHA20_POLY1305_SHA256, CCM: OpenSSL keeps the records */
    }
    if (t->got_secrets != 3 || t->secret_len != sec_len || !t->fin_sent) return 1;
    const EVP_MD *md = SSL_CIPHER_get_handshake_digest(cs);
    if (!md || (size_t)EVP_MD_get_size(md) != sec_len) return -1;
    if (traffic_keys(md, &t->rd, sec_len, key_len) || traffic_keys(md, &t->wr, sec_len, key_len))
        return -1;
    /* the client's first application record is its record 0; ours come after the tickets */
    t->rd.seq = 0;
    t->wr.seq = t->tickets;
    t->key_len = (uint8_t)key_len;
    t->tls13 = 1;
    t->max_frag = max_frag(ssl);
    return 0;
}

void kl_trec_msg(struct kl_trec *t, int write_p, int content_type, const void *buf, size_t len)
{
    if (!write_p) return;
    /* OpenSSL reports a record's header as it writes it, and a handshake message once all of
     * it is written: every header after our Finished is a record under the application key */
    if (content_type == SSL3_RT_HEADER && t->fin_sent) {
        if (t->tickets < UINT8_MAX)
            t->tickets++;
        else
            t->got_secrets = 0; /* cannot count on: no hand-off */
    } else if (content_type == SSL3_RT_HANDSHAKE && len &&
               *(const uint8_t *)buf == SSL3_MT_FINISHED) {
        t->fin_sent = 1;
    }
}

int kl_trec_from_ssl(struct kl_trec *t, SSL *ssl)
{
    int rc = 1;
    const SSL_CIPHER *cs = SSL_get_current_cipher(ssl);
    /* anything OpenSSL read past the Finished would be lost: keep such a connection there */
    if (SSL_is_init_finished(ssl) && !SSL_is_dtls(ssl) && !SSL_has_pending(ssl) &&
        SSL_pending(ssl) <= 0 && cs && SSL_CIPHER_is_aead(cs)) {
        if (SSL_version(ssl) == TLS1_3_VERSION) rc = from_ssl13(t, ssl, cs);
        if (SSL_version(ssl) == TLS1_2_VERSION) rc = from_ssl12(t, ssl, cs);
    }
    if (rc) kl_trec_wipe(t);
    return rc;
}

static int from_ssl12(struct kl_trec *t, SSL *ssl, const SSL_CIPHER *cs)
{
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
    kl_trec_wipe(t);
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
    t->max_frag = max_frag(ssl);
    return 0;
}

int kl_trec_key_update(struct kl_trec *t, const uint8_t *msg, size_t n)
{
    if (!t->tls13) return -KL_TREC_AD_UNEXPECTED_MESSAGE;
    /* one KeyUpdate: type 24, length 1, update_not_requested(0) / update_requested(1) */
    if (n < 4 || msg[0] != 24) return -KL_TREC_AD_UNEXPECTED_MESSAGE;
    if (msg[1] || msg[2] || msg[3] != 1 || n < 5) return -KL_TREC_AD_DECODE_ERROR;
    /* more after it in the record: a KeyUpdate must end its record (RFC 8446 5.1) */
    if (n > 5) return -KL_TREC_AD_UNEXPECTED_MESSAGE;
    if (msg[4] > 1) return -KL_TREC_AD_ILLEGAL_PARAMETER;
    const EVP_MD *md = secret_md(t);
    uint8_t next[48];
    if (expand_label(md, t->rd.secret, t->secret_len, "traffic upd", next, t->secret_len))
        return -KL_TREC_AD_INTERNAL_ERROR;
    memcpy(t->rd.secret, next, t->secret_len);
    OPENSSL_cleanse(next, sizeof next);
    if (traffic_keys(md, &t->rd, t->secret_len, t->key_len)) return -KL_TREC_AD_INTERNAL_ERROR;
    t->rd.seq = 0;
    return msg[4];
}

int kl_trec_next_write_key(struct kl_trec *t)
{
    if (!t->tls13) return -1;
    const EVP_MD *md = secret_md(t);
    uint8_t next[48];
    if (expand_label(md, t->wr.secret, t->secret_len, "traffic upd", next, t->secret_len))
        return -1;
    memcpy(t->wr.secret, next, t->secret_len);
    OPENSSL_cleanse(next, sizeof next);
    if (traffic_keys(md, &t->wr, t->secret_len, t->key_len)) return -1;
    t->wr.seq = 0;
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

/* One AES-GCM operation with c's cipher: enc 1 seals in[0..n) (and the byte *trail after
 * it, when given) into out and writes the tag; enc 0 opens in place and checks the tag
 * (inside OpenSSL, in constant time). */
static int gcm(EVP_CIPHER_CTX *c, int enc, const uint8_t *key, const uint8_t *nonce,
               const uint8_t *aad, size_t aad_len, const uint8_t *in, size_t n, uint8_t *out,
               const uint8_t *trail, uint8_t *tag)
{
    int outl = 0, finl = 0;
    if (EVP_CipherInit_ex(c, NULL, NULL, key, nonce, enc) != 1 ||
        EVP_CipherUpdate(c, NULL, &outl, aad, (int)aad_len) != 1 ||
        (n && EVP_CipherUpdate(c, out, &outl, in, (int)n) != 1) ||
        (trail && EVP_CipherUpdate(c, out + n, &outl, trail, 1) != 1) ||
        (!enc && EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, KL_TREC_TAG, tag) != 1) ||
        EVP_CipherFinal_ex(c, out + n + (trail ? 1 : 0), &finl) != 1 ||
        (enc && EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, KL_TREC_TAG, tag) != 1))
        return -1;
    return 0;
}

/* TLS 1.3 nonce: the iv XOR the sequence number, right-aligned (RFC 8446 5.3) */
static void nonce13(uint8_t nonce[12], const struct kl_trec_dir *d)
{
    memcpy(nonce, d->iv, 12);
    for (int i = 0; i < 8; i++)
        nonce[11 - i] ^= (uint8_t)(d->seq >> (8 * i));
}

static int open13(struct kl_trec *t, EVP_CIPHER_CTX *c, uint8_t *rec, size_t len, uint8_t **pt,
                  size_t *pt_len)
{
    /* after the handshake every record is sealed and says application_data outside */
    if (rec[0] != KL_TREC_APPDATA) return -KL_TREC_AD_UNEXPECTED_MESSAGE;
    if (len - KL_TREC_HDR > KL_TREC_MAX_PLAIN + 256) return -KL_TREC_AD_RECORD_OVERFLOW;
    if (len < KL_TREC_HDR + KL_TREC_TAG + 1) return -KL_TREC_AD_BAD_RECORD_MAC;
    size_t n = len - KL_TREC_HDR - KL_TREC_TAG;
    if (t->rd.seq == UINT64_MAX) return -KL_TREC_AD_INTERNAL_ERROR;
    uint8_t nonce[12];
    nonce13(nonce, &t->rd);
    uint8_t *body = rec + KL_TREC_HDR;
    if (gcm(c, 0, t->rd.key, nonce, rec, KL_TREC_HDR, body, n, body, NULL, body + n)) {
        OPENSSL_cleanse(body, n);
        return -KL_TREC_AD_BAD_RECORD_MAC;
    }
    t->rd.seq++;
    /* TLSInnerPlaintext: content, the real type, zeros */
    if (n > KL_TREC_MAX_PLAIN + 1) return -KL_TREC_AD_RECORD_OVERFLOW;
    while (n && !body[n - 1])
        n--;
    if (!n) return -KL_TREC_AD_UNEXPECTED_MESSAGE;
    uint8_t type = body[--n];
    if (type != KL_TREC_APPDATA && type != KL_TREC_ALERT && type != KL_TREC_HANDSHAKE)
        return -KL_TREC_AD_UNEXPECTED_MESSAGE;
    *pt = body;
    *pt_len = n;
    return type;
}

static size_t seal13(struct kl_trec *t, EVP_CIPHER_CTX *c, uint8_t type, const uint8_t *pt,
                     size_t n, uint8_t *out)
{
    size_t body = n + 1 + KL_TREC_TAG;
    out[0] = KL_TREC_APPDATA;
    out[1] = TLS12_MAJOR;
    out[2] = TLS12_MINOR;
    out[3] = (uint8_t)(body >> 8);
    out[4] = (uint8_t)body;
    uint8_t nonce[12];
    nonce13(nonce, &t->wr);
    uint8_t *ct = out + KL_TREC_HDR;
    if (gcm(c, 1, t->wr.key, nonce, out, KL_TREC_HDR, pt, n, ct, &type, ct + n + 1)) return 0;
    t->wr.seq++;
    return KL_TREC_HDR + body;
}

int kl_trec_open(struct kl_trec *t, struct kl_trec_ctx *x, uint8_t *rec, size_t len, uint8_t **pt,
                 size_t *pt_len)
{
    EVP_CIPHER_CTX *c = pick(t, x);
    long want = kl_trec_record_len(rec, len);
    if (want < 0) return (int)want;
    if (!c || want == 0 || (size_t)want != len) return -KL_TREC_AD_INTERNAL_ERROR;
    if (t->tls13) return open13(t, c, rec, len, pt, pt_len);
    if (len < KL_TREC_OVERHEAD) return -KL_TREC_AD_BAD_RECORD_MAC;
    size_t n = len - KL_TREC_OVERHEAD;
    if (n > KL_TREC_MAX_PLAIN) return -KL_TREC_AD_RECORD_OVERFLOW;
    if (t->rd.seq == UINT64_MAX) return -KL_TREC_AD_INTERNAL_ERROR; /* never wraps */
    uint8_t nonce[NONCE_LEN], a[13];
    memcpy(nonce, t->rd.salt, SALT_LEN);
    memcpy(nonce + SALT_LEN, rec + KL_TREC_HDR, KL_TREC_EXPLICIT_IV);
    aad(a, t->rd.seq, rec[0], n);
    uint8_t *body = rec + KL_TREC_HDR + KL_TREC_EXPLICIT_IV;
    if (gcm(c, 0, t->rd.key, nonce, a, sizeof a, body, n, body, NULL, body + n)) {
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
    if (t->tls13) return seal13(t, c, type, pt, n, out);
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
    if (gcm(c, 1, t->wr.key, nonce, a, sizeof a, pt, n, ct, NULL, ct + n)) return 0;
    t->wr.seq++;
    return KL_TREC_HDR + body;
}
