/*
 * The cryptography commands (docs/protocol.md, "Cryptography"; docs/crypto.md):
 * SIGN_VERIFY, VERIFY_WITH_KEY, KEY_EXCHANGE, MD_*, MAC_*, CIPHER_*, RANDOM.
 * Each handler parses and checks everything first and only then acts, so a failure
 * leaves the contexts as they were; the one exception is a *_FINISH whose tag check
 * fails, which ends its context (a failed check cannot be retried, like a used-up
 * challenge).
 */
#include <string.h>

#include "chip_int.h"
#include "crypto_sessions.h"

#define MD_CHUNK 2000     /* MD_UPDATE / MAC_UPDATE data per command */
#define CIPHER_CHUNK 2032 /* CIPHER_UPDATE data per command */

enum { OP_SIGN = 1, OP_VERIFY = 2 };
enum { FMT_RAW = 0, FMT_DER = 1 };
enum { IN_DIGEST = 0, IN_MESSAGE = 1 };
enum { PT_RAW = 0, PT_SEC1 = 1, PT_SPKI = 2 };
enum { DIR_ENC = 1, DIR_DEC = 2 };

/* The 32-byte digest a signature covers: the data itself, or SHA-256 of it. */
static kl_status digest_of(uint8_t input, const uint8_t *d, size_t n, uint8_t out[32])
{
    if (input == IN_DIGEST) {
        if (n != KL_CX_SHA256_LEN) return KL_E_BAD_LENGTH;
        memcpy(out, d, KL_CX_SHA256_LEN);
        return KL_OK;
    }
    return kl_cx_sha256(d, n, out);
}

/* Verifies sig (raw or DER, as sent) over digest. A signature that is not 64 bytes
 * (raw) or not strict DER is a signature that does not verify. */
static kl_status verify_sig(const uint8_t pub[64], uint8_t fmt, const uint8_t *sig, size_t slen,
                            const uint8_t digest[32])
{
    uint8_t raw[KL_CX_P256_SIG];
    if (fmt == FMT_RAW) {
        if (slen != KL_CX_P256_SIG) return KL_E_VERIFY_FAILED;
        memcpy(raw, sig, sizeof(raw));
    } else if (kl_cx_sig_der_to_raw(sig, slen, raw) != KL_OK) {
        return KL_E_VERIFY_FAILED;
    }
    return kl_cx_ecdsa_verify(pub, digest, raw);
}

static kl_status key_for_sign(struct kl_chip *c, uint16_t id, struct kl_obj **o)
{
    kl_status st = kl_obj_for_use(c, id, KL_USE_SIGN, KL_ALG_ECDSA, o);
    if (st == KL_E_USAGE) st = kl_obj_for_use(c, id, KL_USE_TLS, KL_ALG_ECDSA, o);
    return st;
}

static kl_status key_for_verify(struct kl_chip *c, uint16_t id, struct kl_obj **o)
{
    kl_status st = kl_obj_for_use(c, id, KL_USE_VERIFY, KL_ALG_ECDSA, o);
    if (st == KL_E_USAGE) st = kl_obj_for_use(c, id, KL_USE_SIGN, KL_ALG_ECDSA, o);
    return st;
}

/* 0xC8: op u8 || key id u16 || format u8 || input u8 || [verify: sig len u16 || sig] || data */
static KL_HANDLER(cmd_sign_verify)
{
    if (len < 5) return KL_E_BAD_LENGTH;
    uint8_t op = req[0], fmt = req[3], input = req[4];
    uint16_t id = kl_be16(req + 1);
    const uint8_t *sig = NULL, *data;
    size_t slen = 0, dlen, p = 5;
    if (op == OP_VERIFY) {
        if (len < p + 2) return KL_E_BAD_LENGTH;
        slen = kl_be16(req + p);
        p += 2;
        if (len - p < slen) return KL_E_BAD_LENGTH;
        sig = req + p;
        p += slen;
    }
    data = req + p;
    dlen = len - p;
    if ((op != OP_SIGN && op != OP_VERIFY) || fmt > FMT_DER || input > IN_MESSAGE)
        return KL_E_BAD_PARAM;
    if (input == IN_DIGEST && dlen != KL_CX_SHA256_LEN) return KL_E_BAD_LENGTH;
    struct kl_obj *o = NULL;
    uint8_t digest[32];
    kl_status st;
    if (op == OP_SIGN) {
        st = key_for_sign(c, id, &o);
        if (st != KL_OK) return st;
        const uint8_t *priv = kl_obj_priv(c, o);
        if (!priv) return KL_E_WRONG_TYPE; /* a public key or secret cannot sign */
        if (cap < 72) return KL_E_INTERNAL;
        st = digest_of(input, data, dlen, digest);
        if (st != KL_OK) return st;
        uint8_t raw[KL_CX_P256_SIG];
        st = kl_cx_ecdsa_sign(kl_chip_drbg(c), priv, digest, raw);
        if (st == KL_OK) {
            if (fmt == FMT_RAW) {
                memcpy(resp, raw, sizeof(raw));
                *rlen = sizeof(raw);
            } else {
                st = kl_cx_sig_raw_to_der(raw, resp, cap, rlen);
            }
        }
        kl_cx_wipe(digest, sizeof(digest));
        return st;
    }
    st = key_for_verify(c, id, &o);
    if (st != KL_OK) return st;
    const uint8_t *pub = kl_obj_pub(c, o);
    if (!pub) return KL_E_WRONG_TYPE; /* a secret key has no public half */
    st = digest_of(input, data, dlen, digest);
    if (st != KL_OK) return st;
    return verify_sig(pub, fmt, sig, slen, digest);
}

/* 0xC9: format u8 || input u8 || public key X||Y (64) || sig len u16 || sig || data */
static KL_HANDLER(cmd_verify_with_key)
{
    (void)c, (void)resp, (void)cap, (void)rlen;
    if (len < 2 + 64 + 2) return KL_E_BAD_LENGTH;
    uint8_t fmt = req[0], input = req[1];
    const uint8_t *pub = req + 2;
    size_t slen = kl_be16(req + 66), p = 68;
    if (len - p < slen) return KL_E_BAD_LENGTH;
    const uint8_t *sig = req + p;
    p += slen;
    if (fmt > FMT_DER || input > IN_MESSAGE) return KL_E_BAD_PARAM;
    if (input == IN_DIGEST && len - p != KL_CX_SHA256_LEN) return KL_E_BAD_LENGTH;
    if (kl_cx_ec_check_pub(pub) != KL_OK) return KL_E_BAD_KEY;
    uint8_t digest[32];
    kl_status st = digest_of(input, req + p, len - p, digest);
    if (st != KL_OK) return st;
    return verify_sig(pub, fmt, sig, slen, digest);
}

/* 0xC3: key id u16 || point format u8 || point length u16 || point || output u8 ||
 * [store: secret object id u16] */
static KL_HANDLER(cmd_key_exchange)
{
    if (len < 6) return KL_E_BAD_LENGTH;
    if (cap < 32) return KL_E_INTERNAL;
    uint16_t id = kl_be16(req);
    uint8_t pfmt = req[2];
    size_t plen = kl_be16(req + 3), p = 5;
    if (len - p < plen + 1) return KL_E_BAD_LENGTH;
    const uint8_t *point = req + p;
    p += plen;
    uint8_t output = req[p++];
    if (output > 1) return KL_E_BAD_PARAM;
    if (len - p != (output == 1 ? 2u : 0u)) return KL_E_BAD_LENGTH;
    if (pfmt > PT_SPKI) return KL_E_BAD_PARAM;
    struct kl_obj *o = NULL;
    kl_status st = kl_obj_for_use(c, id, KL_USE_KEX, KL_ALG_ECDH, &o);
    if (st != KL_OK) return st;
    const uint8_t *priv = kl_obj_priv(c, o);
    if (!priv) return KL_E_WRONG_TYPE;
    uint8_t peer[KL_CX_P256_PUB];
    if (pfmt == PT_RAW)
        st = plen == KL_CX_P256_PUB ? kl_cx_ec_check_pub(point) : KL_E_BAD_KEY;
    else if (pfmt == PT_SEC1)
        st = kl_cx_ec_decode_sec1(point, plen, peer);
    else
        st = kl_cx_ec_decode_spki(point, plen, peer);
    if (st != KL_OK) return KL_E_BAD_KEY;
    if (pfmt == PT_RAW) memcpy(peer, point, sizeof(peer));
    uint8_t z[32];
    st = kl_cx_ecdh(priv, peer, z);
    if (st == KL_OK) {
        if (output == 0) {
            memcpy(resp, z, sizeof(z));
            *rlen = sizeof(z);
        } else {
            st = kl_obj_store_secret(c, kl_be16(req + p), z, sizeof(z));
        }
    }
    kl_cx_wipe(z, sizeof(z));
    return st;
}

/* ---- hash ---- */

static struct kl_crypto_sessions *cs(struct kl_chip *c)
{
    return c->cs;
}

/* 0xD0: alg u8 (1 SHA-256) -> context u8 */
static KL_HANDLER(cmd_md_init)
{
    (void)cap;
    if (len != 1) return KL_E_BAD_LENGTH;
    if (req[0] != 1) return KL_E_BAD_PARAM;
    struct kl_crypto_sessions *s = cs(c);
    for (size_t i = 0; i < KL_CS_MD; i++) {
        if (s->md[i].used) continue;
        kl_status st = kl_cx_sha256_init(&s->md[i].h);
        if (st != KL_OK) return st;
        s->md[i].used = 1;
        resp[0] = (uint8_t)i;
        *rlen = 1;
        return KL_OK;
    }
    return KL_E_STATE; /* all hash contexts busy */
}

/* The open hash context named by req[0]. */
static kl_status md_ctx(struct kl_chip *c, const uint8_t *req, size_t len, struct kl_cs_md **m)
{
    if (len < 1) return KL_E_BAD_LENGTH;
    if (req[0] >= KL_CS_MD) return KL_E_BAD_PARAM;
    *m = &cs(c)->md[req[0]];
    return (*m)->used ? KL_OK : KL_E_STATE;
}

/* 0xD1: context u8 || data (<= 2000) */
static KL_HANDLER(cmd_md_update)
{
    (void)resp, (void)cap, (void)rlen;
    if (len > 1 + MD_CHUNK) return KL_E_BAD_LENGTH;
    struct kl_cs_md *m;
    kl_status st = md_ctx(c, req, len, &m);
    if (st != KL_OK) return st;
    st = kl_cx_sha256_update(&m->h, req + 1, len - 1);
    if (st != KL_OK) kl_cs_md_end(m);
    return st;
}

/* 0xD2 MD_FINISH and 0xD3 MD_PEEK: context u8 -> digest (32) */
static kl_status md_out(struct kl_chip *c, const uint8_t *req, size_t len, uint8_t *resp,
                        size_t *rlen, int finish)
{
    if (len != 1) return KL_E_BAD_LENGTH;
    struct kl_cs_md *m;
    kl_status st = md_ctx(c, req, len, &m);
    if (st != KL_OK) return st;
    if (finish) {
        st = kl_cx_sha256_final(&m->h, resp);
        m->used = 0;
    } else {
        st = kl_cx_sha256_peek(&m->h, resp);
    }
    if (st == KL_OK) *rlen = KL_CX_SHA256_LEN;
    return st;
}

static KL_HANDLER(cmd_md_finish)
{
    (void)cap;
    return md_out(c, req, len, resp, rlen, 1);
}

static KL_HANDLER(cmd_md_peek)
{
    (void)cap;
    return md_out(c, req, len, resp, rlen, 0);
}

/* ---- MAC ---- */

/* 0xD4: key id u16 || alg u8 (0x15 CMAC, 0x20 HMAC-SHA256) -> context u8 */
static KL_HANDLER(cmd_mac_init)
{
    (void)cap;
    if (len != 3) return KL_E_BAD_LENGTH;
    uint8_t alg = req[2];
    if (alg != KL_ALG_AES_CMAC && alg != KL_ALG_HMAC) return KL_E_BAD_PARAM;
    struct kl_obj *o = NULL;
    kl_status st = kl_obj_for_use(c, kl_be16(req), KL_USE_SIGN, alg, &o);
    if (st != KL_OK) return st;
    size_t klen = 0;
    const uint8_t *key = kl_obj_secret(c, o, &klen);
    int kt_ok = alg == KL_ALG_AES_CMAC ? o->key_type == KL_KT_AES
                                       : (o->key_type == KL_KT_HMAC || o->key_type == KL_KT_PSK);
    if (!key || !kt_ok) return KL_E_WRONG_TYPE;
    struct kl_crypto_sessions *s = cs(c);
    for (size_t i = 0; i < KL_CS_MAC; i++) {
        if (s->mac[i].used) continue;
        st = kl_cx_mac_init(&s->mac[i].m, alg == KL_ALG_HMAC ? KL_CX_HMAC_SHA256 : KL_CX_AES_CMAC,
                            key, klen);
        if (st != KL_OK) return st;
        s->mac[i].used = 1;
        resp[0] = (uint8_t)i;
        *rlen = 1;
        return KL_OK;
    }
    return KL_E_STATE;
}

static kl_status mac_ctx(struct kl_chip *c, const uint8_t *req, size_t len, struct kl_cs_mac **m)
{
    if (len < 1) return KL_E_BAD_LENGTH;
    if (req[0] >= KL_CS_MAC) return KL_E_BAD_PARAM;
    *m = &cs(c)->mac[req[0]];
    return (*m)->used ? KL_OK : KL_E_STATE;
}

/* 0xD5: context u8 || data (<= 2000) */
static KL_HANDLER(cmd_mac_update)
{
    (void)resp, (void)cap, (void)rlen;
    if (len > 1 + MD_CHUNK) return KL_E_BAD_LENGTH;
    struct kl_cs_mac *m;
    kl_status st = mac_ctx(c, req, len, &m);
    if (st != KL_OK) return st;
    st = kl_cx_mac_update(&m->m, req + 1, len - 1);
    if (st != KL_OK) kl_cs_mac_end(m);
    return st;
}

/* 0xD6: context u8 || [expected tag, 1..full length] -> tag, or — / KL_E_BAD_TAG */
static KL_HANDLER(cmd_mac_finish)
{
    struct kl_cs_mac *m;
    kl_status st = mac_ctx(c, req, len, &m);
    if (st != KL_OK) return st;
    size_t full = m->m.alg == KL_CX_HMAC_SHA256 ? 32 : 16, given = len - 1;
    if (given > full) return KL_E_BAD_LENGTH;
    uint8_t tag[32];
    size_t tl = 0;
    st = kl_cx_mac_final(&m->m, tag, sizeof(tag), &tl);
    m->used = 0;
    if (st == KL_OK && tl != full) st = KL_E_INTERNAL;
    if (st == KL_OK) {
        if (given == 0) {
            if (cap < tl)
                st = KL_E_INTERNAL;
            else {
                memcpy(resp, tag, tl);
                *rlen = tl;
            }
        } else if (!kl_cx_ct_equal(tag, req + 1, given)) {
            st = KL_E_BAD_TAG;
        }
    }
    kl_cx_wipe(tag, sizeof(tag));
    return st;
}

/* ---- cipher ---- */

static int mode_of(uint8_t alg, enum kl_cx_aes_mode *m)
{
    switch (alg) {
    case KL_ALG_AES_ECB:
        *m = KL_CX_ECB;
        return 1;
    case KL_ALG_AES_CBC:
        *m = KL_CX_CBC;
        return 1;
    case KL_ALG_AES_CCM:
        *m = KL_CX_CCM;
        return 1;
    case KL_ALG_AES_GCM:
        *m = KL_CX_GCM;
        return 1;
    default:
        return 0;
    }
}

/* 0xD8: key id u16 || alg u8 || dir u8 || padding u8 || iv length u8 || iv ||
 * tag length u8 || total data length u32 || aad length u16 || aad -> context u8 */
static KL_HANDLER(cmd_cipher_init)
{
    (void)cap;
    if (len < 6) return KL_E_BAD_LENGTH;
    uint16_t id = kl_be16(req);
    uint8_t alg = req[2], dir = req[3], pad = req[4];
    size_t ivlen = req[5], p = 6;
    if (len - p < ivlen + 1 + 4 + 2) return KL_E_BAD_LENGTH;
    const uint8_t *iv = req + p;
    p += ivlen;
    size_t tag_len = req[p++];
    uint32_t total = kl_be32(req + p);
    p += 4;
    size_t aadlen = kl_be16(req + p);
    p += 2;
    if (len - p != aadlen) return KL_E_BAD_LENGTH;
    const uint8_t *aad = req + p;

    enum kl_cx_aes_mode mode;
    if (!mode_of(alg, &mode) || (dir != DIR_ENC && dir != DIR_DEC) || pad > 1 ||
        (pad && mode != KL_CX_CBC))
        return KL_E_BAD_PARAM;
    int aead = mode == KL_CX_GCM || mode == KL_CX_CCM;
    /* Fields a mode does not use must be empty. */
    if (!aead && (tag_len || aadlen)) return KL_E_BAD_PARAM;
    if (mode != KL_CX_CCM && total) return KL_E_BAD_PARAM;
    int hold = aead && dir == DIR_DEC;
    if (hold && mode == KL_CX_CCM && total > KL_CS_AEAD_BUF)
        return KL_E_BAD_LENGTH; /* could never be held for the tag check */

    struct kl_obj *o = NULL;
    kl_status st = kl_obj_for_use(c, id, KL_USE_ENCRYPT, alg, &o);
    if (st != KL_OK) return st;
    size_t klen = 0;
    const uint8_t *key = kl_obj_secret(c, o, &klen);
    if (!key || o->key_type != KL_KT_AES) return KL_E_WRONG_TYPE;
    struct kl_crypto_sessions *s = cs(c);
    for (size_t i = 0; i < KL_CS_CIPHER; i++) {
        struct kl_cs_cipher *x = &s->cipher[i];
        if (x->used) continue;
        st = kl_cx_cipher_init(&x->x, mode, dir == DIR_ENC, pad, key, klen, ivlen ? iv : NULL,
                               ivlen, tag_len, total, aadlen ? aad : NULL, aadlen);
        if (st != KL_OK) return st;
        x->used = 1;
        x->hold = hold;
        x->draining = 0;
        x->len = x->off = 0;
        resp[0] = (uint8_t)i;
        *rlen = 1;
        return KL_OK;
    }
    return KL_E_STATE;
}

static kl_status cipher_ctx(struct kl_chip *c, const uint8_t *req, size_t len,
                            struct kl_cs_cipher **x)
{
    if (len < 1) return KL_E_BAD_LENGTH;
    if (req[0] >= KL_CS_CIPHER) return KL_E_BAD_PARAM;
    *x = &cs(c)->cipher[req[0]];
    return (*x)->used ? KL_OK : KL_E_STATE;
}

/* 0xD9: context u8 || data (<= 2032) -> output (empty while AEAD decrypt holds it) */
static KL_HANDLER(cmd_cipher_update)
{
    if (len > 1 + CIPHER_CHUNK) return KL_E_BAD_LENGTH;
    struct kl_cs_cipher *x;
    kl_status st = cipher_ctx(c, req, len, &x);
    if (st != KL_OK) return st;
    if (x->draining) return KL_E_STATE; /* the data is complete; only CIPHER_FINISH is left */
    size_t n = len - 1, out = 0;
    if (x->hold) {
        if (n > KL_CS_AEAD_BUF - x->len) return KL_E_BAD_LENGTH;
        st = kl_cx_cipher_update(&x->x, req + 1, n, x->buf + x->len, KL_CS_AEAD_BUF - x->len, &out);
        if (st == KL_OK) x->len += out;
    } else {
        st = kl_cx_cipher_update(&x->x, req + 1, n, resp, cap, &out);
        if (st == KL_OK) *rlen = out;
    }
    /* cx refuses bad lengths before it acts; anything else leaves a broken context */
    if (st != KL_OK && st != KL_E_BAD_LENGTH) kl_cs_cipher_end(x);
    return st;
}

/* Hands out the next piece of checked plaintext. A piece shorter than KL_CS_OUT_PIECE
 * (possibly empty) is the last one and ends the context, so the host simply asks again
 * while it gets full pieces. */
static kl_status drain(struct kl_cs_cipher *x, uint8_t *resp, size_t cap, size_t *rlen)
{
    size_t n = x->len - x->off;
    if (n > KL_CS_OUT_PIECE) n = KL_CS_OUT_PIECE;
    if (n > cap) return KL_E_INTERNAL;
    memcpy(resp, x->buf + x->off, n);
    x->off += n;
    *rlen = n;
    if (n < KL_CS_OUT_PIECE) kl_cs_cipher_end(x);
    return KL_OK;
}

/* 0xDA: context u8 || [decrypt AEAD: tag] -> last output || tag (encrypt AEAD);
 * decrypt AEAD: the held plaintext (pieces of <= 2000 bytes, see docs/protocol.md) */
static KL_HANDLER(cmd_cipher_finish)
{
    struct kl_cs_cipher *x;
    kl_status st = cipher_ctx(c, req, len, &x);
    if (st != KL_OK) return st;
    size_t tlen = len - 1;
    if (x->draining) {
        if (tlen) return KL_E_BAD_LENGTH;
        return drain(x, resp, cap, rlen);
    }
    int aead = x->x.mode == KL_CX_GCM || x->x.mode == KL_CX_CCM;
    if (tlen != (aead && !x->x.encrypt ? x->x.tag_len : 0)) return KL_E_BAD_LENGTH;
    size_t out = 0;
    if (x->hold) {
        uint8_t none[16];
        st = kl_cx_cipher_final(&x->x, req + 1, tlen, none, sizeof(none), &out);
        if (st != KL_OK || out != 0) {
            kl_cs_cipher_end(x); /* wipes the held plaintext: nothing is released */
            return st != KL_OK ? st : KL_E_INTERNAL;
        }
        x->draining = 1;
        x->off = 0;
        return drain(x, resp, cap, rlen);
    }
    st = kl_cx_cipher_final(&x->x, tlen ? req + 1 : NULL, tlen, resp, cap, &out);
    kl_cs_cipher_end(x);
    if (st == KL_OK) *rlen = out;
    return st;
}

/* 0xDC: length u16 (1..2048) -> random bytes */
static KL_HANDLER(cmd_random)
{
    if (len != 2) return KL_E_BAD_LENGTH;
    size_t n = kl_be16(req);
    if (n < 1 || n > KL_MAX_PAYLOAD) return KL_E_BAD_PARAM;
    if (n > cap) return KL_E_INTERNAL;
    kl_status st = kl_cx_drbg_generate(kl_chip_drbg(c), resp, n);
    if (st == KL_OK) *rlen = n;
    return st;
}

const struct kl_cmd kl_cmds_crypto[] = {
    {0xC8, 0, "SIGN_VERIFY", cmd_sign_verify},
    {0xC9, 0, "VERIFY_WITH_KEY", cmd_verify_with_key},
    {0xC3, KL_CMDF_PERSIST, "KEY_EXCHANGE", cmd_key_exchange},
    {0xD0, 0, "MD_INIT", cmd_md_init},
    {0xD1, 0, "MD_UPDATE", cmd_md_update},
    {0xD2, 0, "MD_FINISH", cmd_md_finish},
    {0xD3, 0, "MD_PEEK", cmd_md_peek},
    {0xD4, 0, "MAC_INIT", cmd_mac_init},
    {0xD5, 0, "MAC_UPDATE", cmd_mac_update},
    {0xD6, 0, "MAC_FINISH", cmd_mac_finish},
    {0xD8, 0, "CIPHER_INIT", cmd_cipher_init},
    {0xD9, 0, "CIPHER_UPDATE", cmd_cipher_update},
    {0xDA, 0, "CIPHER_FINISH", cmd_cipher_finish},
    {0xDC, 0, "RANDOM", cmd_random},
};
const size_t kl_cmds_crypto_n = sizeof(kl_cmds_crypto) / sizeof(kl_cmds_crypto[0]);
