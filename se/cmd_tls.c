/*
 * TLS 1.2 offload commands (docs/protocol.md, "TLS 1.2 offload"): the chip side of a
 * client handshake and its record protection. The session lives here, in the chip's
 * RAM, and never leaves it (the master secret only by TLS_EXPORT_MASTER when the config
 * allows). Every handler validates everything first and changes nothing on failure.
 */
#include <stdlib.h>
#include <string.h>

#include "chip_int.h"
#include "tls_int.h"

#define SUITE_GCM 0xC02Bu
#define SUITE_CCM 0xC0ACu
#define NO_KEY 0xFFFFu
#define FRAG_MAX 2000u
#define REC_OVERHEAD 24u
#define BIG_MAX (16384u + REC_OVERHEAD) /* the largest AEAD record fragment */

enum stage {
    S_STARTED = 1, /* client random made, ClientHello going into the transcript */
    S_HELLO,       /* server random and suite known */
    S_PEER,        /* chain verified, peer key held */
    S_SKE,         /* server ECDHE key held */
    S_CKE,         /* pre-master secret held */
    S_KEYS,        /* master secret and key block */
    S_CLIENT_FIN,  /* client Finished computed */
    S_DONE,        /* server Finished checked; transcript gone */
};

struct tls_session {
    enum stage stage;
    uint16_t root_id, key_id;
    uint64_t time;
    uint8_t cr[32], sr[32];
    uint16_t suite;
    int ems;
    struct kl_cx_sha256 th; /* transcript */
    int th_live;
    size_t th_len; /* bytes in the transcript */
    int cv_done;   /* CertificateVerify signed (once per session) */
    uint8_t cert[KL_TLS_CHAIN_MAX][KL_TLS_CERT_MAX];
    uint16_t cert_total[KL_TLS_CHAIN_MAX], cert_got[KL_TLS_CHAIN_MAX];
    uint8_t peer[64], srv_eph[64];
    uint8_t pms[32];
    uint8_t ms[48];
    uint8_t ckey[16], skey[16], civ[4], siv[4]; /* the two temporary key slots */
    uint64_t wseq, rseq;
    /* a record too big for one command, being opened (TLS_RECORD ops 3..5) */
    uint8_t *big, *big_plain;
    size_t big_total, big_got, big_len;
    uint8_t big_type;
    int big_ready;
};

/* Per-chip TLS state: the session and the staging of a root certificate import. */
struct tls_chip {
    struct tls_session *s;
    uint16_t root_id, root_total, root_got;
    uint8_t root[KL_TLS_CERT_MAX];
};

static void big_drop(struct tls_session *s);

static void session_free(struct tls_chip *t)
{
    if (!t->s) return;
    if (t->s->th_live) kl_cx_sha256_free(&t->s->th);
    big_drop(t->s);
    kl_cx_wipe(t->s, sizeof *t->s);
    free(t->s);
    t->s = NULL;
}

/* The chip calls this on reset, tamper, factory reset and close: RAM is gone. */
static void tls_free(struct kl_chip *c)
{
    struct tls_chip *t = c->tls;
    if (t) {
        session_free(t);
        kl_cx_wipe(t, sizeof *t);
        free(t);
    }
    c->tls = NULL;
    c->tls_free = NULL;
}

static struct tls_chip *state_of(struct kl_chip *c, int create)
{
    struct tls_chip *t = c->tls;
    if (t || !create) return t;
    t = calloc(1, sizeof *t);
    if (!t) return NULL;
    c->tls = t;
    c->tls_free = tls_free;
    return t;
}

static struct tls_session *session(struct kl_chip *c)
{
    struct tls_chip *t = state_of(c, 0);
    return t ? t->s : NULL;
}

static uint64_t be64(const uint8_t *p)
{
    return ((uint64_t)kl_be32(p) << 32) | kl_be32(p + 4);
}

static void put64(uint8_t *p, uint64_t v)
{
    kl_put32(p, (uint32_t)(v >> 32));
    kl_put32(p + 4, (uint32_t)v);
}

/* A certificate object the current roles may use (read or execute). */
static kl_status cert_object(struct kl_chip *c, uint16_t id, struct kl_obj **out)
{
    struct kl_obj *o = kl_obj_find(c, id);
    if (!o) return KL_E_NOT_FOUND;
    if (o->type != KL_OBJ_CERT) return KL_E_WRONG_TYPE;
    kl_status st = kl_rules_allow(c, o, KL_RIGHT_X);
    if (st != KL_OK && kl_rules_allow(c, o, KL_RIGHT_R) == KL_OK) st = KL_OK;
    if (st != KL_OK) return st;
    *out = o;
    return KL_OK;
}

/* ---- 0xCB IMPORT_ROOT_CERT ---- */
static KL_HANDLER(import_root)
{
    (void)resp;
    (void)cap;
    *rlen = 0;
    if (len < 7) return KL_E_BAD_LENGTH;
    uint16_t id = kl_be16(req), total = kl_be16(req + 2), off = kl_be16(req + 4);
    const uint8_t *d = req + 6;
    size_t dl = len - 6;
    if (total == 0 || total > KL_TLS_CERT_MAX || off >= total) return KL_E_OUT_OF_RANGE;
    size_t remain = (size_t)total - off;
    size_t sig_len = 0;
    if (dl == remain + 64)
        sig_len = 64;
    else if (dl > remain)
        return KL_E_BAD_LENGTH;
    dl -= sig_len;
    struct kl_obj *o = kl_obj_find(c, id);
    if (!o) return KL_E_NOT_FOUND;
    if (o->type != KL_OBJ_CERT) return KL_E_WRONG_TYPE;
    kl_status st = kl_rules_allow(c, o, KL_RIGHT_W);
    if (st != KL_OK) return st;
    if (total > o->size) return KL_E_OUT_OF_RANGE;
    struct tls_chip *t = state_of(c, 1);
    if (!t) return KL_E_INTERNAL;
    if (off != 0 && (t->root_id != id || t->root_total != total || t->root_got != off))
        return KL_E_STATE;
    if (off + dl < total) { /* a middle chunk: stage it */
        memcpy(t->root + off, d, dl);
        t->root_id = id;
        t->root_total = total;
        t->root_got = (uint16_t)(off + dl);
        return KL_OK;
    }
    /* the last chunk: check the whole certificate, then the import signature */
    uint8_t der[KL_TLS_CERT_MAX];
    if (off) memcpy(der, t->root, off);
    memcpy(der + off, d, dl);
    st = kl_tls_check_root(der, total);
    if (st == KL_OK && c->st.lifecycle != KL_LC_DELIVERY) {
        if (!sig_len) {
            st = KL_E_AUTH_REQUIRED;
        } else {
            struct kl_obj *ik;
            st = kl_obj_for_use(c, 0x1000, KL_USE_IMPORT, KL_ALG_ECDSA, &ik);
            const uint8_t *pub = st == KL_OK ? kl_obj_pub(c, ik) : NULL;
            if (st == KL_OK && !pub) st = KL_E_STATE;
            if (st == KL_OK) {
                struct kl_cx_sha256 h;
                uint8_t hd[4], dig[32], sig[64];
                kl_put16(hd, id);
                kl_put16(hd + 2, total);
                memcpy(sig, d + dl, 64);
                st = kl_cx_sha256_init(&h);
                if (st == KL_OK) st = kl_cx_sha256_update(&h, hd, 4);
                if (st == KL_OK) st = kl_cx_sha256_update(&h, der, total);
                if (st == KL_OK)
                    st = kl_cx_sha256_final(&h, dig);
                else
                    kl_cx_sha256_free(&h);
                if (st == KL_OK) st = kl_cx_ecdsa_verify(pub, dig, sig);
                if (st == KL_E_BAD_KEY) st = KL_E_VERIFY_FAILED;
            }
        }
    }
    t->root_total = 0; /* the staging is used up either way */
    if (st != KL_OK) return st;
    st = kl_obj_count_write(o);
    if (st != KL_OK) return st;
    memcpy(kl_obj_bytes(&c->st, o), der, total);
    o->used = total;
    return KL_OK;
}

/* ---- 0xB1 TLS_START ---- */
static KL_HANDLER(tls_start)
{
    if (len != 12) return KL_E_BAD_LENGTH;
    if (cap < 32) return KL_E_INTERNAL;
    uint16_t root_id = kl_be16(req), key_id = kl_be16(req + 2);
    struct kl_obj *o;
    kl_status st = cert_object(c, root_id, &o);
    if (st != KL_OK) return st;
    if (key_id != NO_KEY) {
        struct kl_obj *k = kl_obj_find(c, key_id);
        if (!k) return KL_E_NOT_FOUND;
        if (k->type != KL_OBJ_KEYPAIR) return KL_E_WRONG_TYPE;
    }
    struct tls_chip *t = state_of(c, 1);
    if (!t) return KL_E_INTERNAL;
    struct tls_session *s = calloc(1, sizeof *s);
    if (!s) return KL_E_INTERNAL;
    if (kl_cx_sha256_init(&s->th) != KL_OK ||
        kl_cx_drbg_generate(kl_chip_drbg(c), s->cr, 32) != KL_OK) {
        kl_cx_sha256_free(&s->th);
        free(s);
        return KL_E_INTERNAL;
    }
    s->th_live = 1;
    s->root_id = root_id;
    s->key_id = key_id;
    s->time = be64(req + 4);
    s->stage = S_STARTED;
    session_free(t); /* a new session replaces the old one */
    t->s = s;
    memcpy(resp, s->cr, 32);
    *rlen = 32;
    return KL_OK;
}

/* ---- 0xB2 TLS_TRANSCRIPT ---- */
static KL_HANDLER(tls_transcript)
{
    (void)resp;
    (void)cap;
    *rlen = 0;
    if (len == 0 || len > FRAG_MAX) return KL_E_BAD_LENGTH;
    struct tls_session *s = session(c);
    if (!s || !s->th_live) return KL_E_STATE;
    /* The transcript must open with a TLS 1.2 ClientHello carrying this session's client
     * random: what the chip signs (CertificateVerify) and derives from is then always a
     * handshake of its own, never a message the host chose. */
    for (size_t i = 0; i < len && s->th_len + i < 38; i++) {
        size_t at = s->th_len + i;
        int want = at == 0 ? 1 : at < 4 ? -1 : at < 6 ? 3 : s->cr[at - 6];
        if (want >= 0 && req[i] != want) return KL_E_BAD_PARAM;
    }
    if (kl_cx_sha256_update(&s->th, req, len) != KL_OK) return KL_E_INTERNAL;
    s->th_len += len;
    return KL_OK;
}

/* ---- 0xB3 TLS_SERVER_HELLO ---- */
static KL_HANDLER(tls_server_hello)
{
    (void)resp;
    (void)cap;
    *rlen = 0;
    if (len != 35) return KL_E_BAD_LENGTH;
    struct tls_session *s = session(c);
    if (!s || s->stage != S_STARTED || s->th_len < 38) return KL_E_STATE; /* ClientHello first */
    uint16_t suite = kl_be16(req + 32);
    if ((suite != SUITE_GCM && suite != SUITE_CCM) || req[34] > 1) return KL_E_BAD_PARAM;
    memcpy(s->sr, req, 32);
    s->suite = suite;
    s->ems = req[34];
    s->stage = S_HELLO;
    return KL_OK;
}

/* ---- 0xCF IMPORT_CHILD_CERT ---- */
static KL_HANDLER(import_child)
{
    (void)resp;
    (void)cap;
    *rlen = 0;
    if (len < 6) return KL_E_BAD_LENGTH;
    uint8_t idx = req[0];
    uint16_t total = kl_be16(req + 1), off = kl_be16(req + 3);
    size_t dl = len - 5;
    if (idx >= KL_TLS_CHAIN_MAX) return KL_E_BAD_PARAM;
    if (total == 0 || total > KL_TLS_CERT_MAX || off >= total) return KL_E_OUT_OF_RANGE;
    if (dl > (size_t)total - off) return KL_E_BAD_LENGTH;
    struct tls_session *s = session(c);
    if (!s || s->stage != S_HELLO) return KL_E_STATE;
    /* certificates arrive in order, each whole before the next */
    if (idx > 0 && (s->cert_total[idx - 1] == 0 || s->cert_got[idx - 1] != s->cert_total[idx - 1]))
        return KL_E_STATE;
    if (off == 0) {
        for (size_t i = idx + 1; i < KL_TLS_CHAIN_MAX; i++)
            if (s->cert_total[i]) return KL_E_STATE;
    } else if (s->cert_total[idx] != total || s->cert_got[idx] != off) {
        return KL_E_STATE;
    }
    memcpy(s->cert[idx] + off, req + 5, dl);
    s->cert_total[idx] = total;
    s->cert_got[idx] = (uint16_t)(off + dl);
    return KL_OK;
}

/* ---- 0xB4 TLS_VERIFY_PEER ---- */
static KL_HANDLER(tls_verify_peer)
{
    if (len != 0) return KL_E_BAD_LENGTH;
    if (cap < 64) return KL_E_INTERNAL;
    struct tls_session *s = session(c);
    if (!s || s->stage != S_HELLO) return KL_E_STATE;
    size_t n = 0;
    const uint8_t *certs[KL_TLS_CHAIN_MAX];
    size_t lens[KL_TLS_CHAIN_MAX];
    while (n < KL_TLS_CHAIN_MAX && s->cert_total[n]) {
        if (s->cert_got[n] != s->cert_total[n]) return KL_E_STATE;
        certs[n] = s->cert[n];
        lens[n] = s->cert_total[n];
        n++;
    }
    if (n == 0) return KL_E_STATE;
    struct kl_obj *o;
    kl_status st = cert_object(c, s->root_id, &o);
    if (st != KL_OK) return st;
    size_t rl = 0;
    const uint8_t *root = kl_obj_data(c, o, &rl);
    if (!root || rl == 0) return KL_E_NOT_FOUND;
    uint8_t pub[64];
    st = kl_tls_verify_chain(root, rl, certs, lens, n, s->time, pub);
    if (st != KL_OK) return st;
    memcpy(s->peer, pub, 64);
    kl_cx_wipe(s->cert, sizeof s->cert);
    memset(s->cert_total, 0, sizeof s->cert_total);
    memset(s->cert_got, 0, sizeof s->cert_got);
    s->stage = S_PEER;
    memcpy(resp, pub, 64);
    *rlen = 64;
    return KL_OK;
}

/* ---- 0xB5 TLS_SERVER_KEY_EXCHANGE ---- */
static KL_HANDLER(tls_server_kx)
{
    (void)resp;
    (void)cap;
    *rlen = 0;
    if (len < 3) return KL_E_BAD_LENGTH;
    uint16_t scheme = kl_be16(req);
    size_t pl = req[2];
    if (len < 3 + pl + 8 || len > 3 + pl + 72) return KL_E_BAD_LENGTH;
    const uint8_t *p = req + 3, *sig = req + 3 + pl;
    size_t sl = len - 3 - pl;
    struct tls_session *s = session(c);
    if (!s || s->stage != S_PEER) return KL_E_STATE;
    if (scheme != 0x0403) return KL_E_BAD_PARAM;
    if (pl != 69 || p[0] != 3 || p[1] != 0 || p[2] != 23 || p[3] != 65 || p[4] != 4)
        return KL_E_BAD_PARAM;
    if (kl_cx_ec_check_pub(p + 5) != KL_OK) return KL_E_BAD_KEY;
    uint8_t raw[64], dig[32];
    if (kl_cx_sig_der_to_raw(sig, sl, raw) != KL_OK) return KL_E_VERIFY_FAILED;
    struct kl_cx_sha256 h;
    kl_status st = kl_cx_sha256_init(&h);
    if (st == KL_OK) st = kl_cx_sha256_update(&h, s->cr, 32);
    if (st == KL_OK) st = kl_cx_sha256_update(&h, s->sr, 32);
    if (st == KL_OK) st = kl_cx_sha256_update(&h, p, pl);
    if (st == KL_OK)
        st = kl_cx_sha256_final(&h, dig);
    else
        kl_cx_sha256_free(&h);
    if (st != KL_OK) return KL_E_INTERNAL;
    st = kl_cx_ecdsa_verify(s->peer, dig, raw);
    if (st != KL_OK) return st == KL_E_BAD_KEY ? KL_E_BAD_KEY : KL_E_VERIFY_FAILED;
    memcpy(s->srv_eph, p + 5, 64);
    s->stage = S_SKE;
    return KL_OK;
}

/* ---- 0xB6 TLS_CLIENT_KEY_EXCHANGE ---- */
static KL_HANDLER(tls_client_kx)
{
    if (len != 0) return KL_E_BAD_LENGTH;
    if (cap < 65) return KL_E_INTERNAL;
    struct tls_session *s = session(c);
    if (!s || s->stage != S_SKE) return KL_E_STATE;
    uint8_t priv[32], pub[64], z[32];
    kl_status st = kl_cx_ec_keygen(kl_chip_drbg(c), priv, pub);
    if (st == KL_OK) st = kl_cx_ecdh(priv, s->srv_eph, z);
    kl_cx_wipe(priv, sizeof priv); /* ephemeral: used once, gone */
    if (st != KL_OK) {
        kl_cx_wipe(z, sizeof z);
        return st == KL_E_BAD_KEY ? KL_E_BAD_KEY : KL_E_INTERNAL;
    }
    memcpy(s->pms, z, 32);
    kl_cx_wipe(z, sizeof z);
    s->stage = S_CKE;
    resp[0] = 4;
    memcpy(resp + 1, pub, 64);
    *rlen = 65;
    return KL_OK;
}

/* ---- 0xB7 TLS_DERIVE_KEYS ---- */
static KL_HANDLER(tls_derive)
{
    (void)resp;
    (void)cap;
    *rlen = 0;
    if (len != 0) return KL_E_BAD_LENGTH;
    struct tls_session *s = session(c);
    if (!s || s->stage != S_CKE || !s->th_live) return KL_E_STATE;
    uint8_t seed[64], ms[48], kb[40];
    kl_status st;
    if (s->ems) {
        /* RFC 7627: session_hash = transcript through ClientKeyExchange */
        st = kl_cx_sha256_peek(&s->th, seed);
        if (st == KL_OK)
            st = kl_tls_prf(s->pms, 32, "extended master secret", seed, 32, ms, sizeof ms);
    } else {
        memcpy(seed, s->cr, 32);
        memcpy(seed + 32, s->sr, 32);
        st = kl_tls_prf(s->pms, 32, "master secret", seed, 64, ms, sizeof ms);
    }
    if (st == KL_OK) {
        memcpy(seed, s->sr, 32);
        memcpy(seed + 32, s->cr, 32);
        st = kl_tls_prf(ms, sizeof ms, "key expansion", seed, 64, kb, sizeof kb);
    }
    if (st == KL_OK) {
        memcpy(s->ms, ms, 48);
        memcpy(s->ckey, kb, 16);
        memcpy(s->skey, kb + 16, 16);
        memcpy(s->civ, kb + 32, 4);
        memcpy(s->siv, kb + 36, 4);
        kl_cx_wipe(s->pms, sizeof s->pms);
        s->wseq = s->rseq = 0;
        s->stage = S_KEYS;
    }
    kl_cx_wipe(ms, sizeof ms);
    kl_cx_wipe(kb, sizeof kb);
    return st == KL_OK ? KL_OK : KL_E_INTERNAL;
}

/* ---- 0xB8 TLS_CERT_VERIFY ---- */
static KL_HANDLER(tls_cert_verify)
{
    if (len != 0) return KL_E_BAD_LENGTH;
    if (cap < 72) return KL_E_INTERNAL;
    struct tls_session *s = session(c);
    if (!s || s->stage != S_KEYS || !s->th_live || s->cv_done) return KL_E_STATE;
    if (s->key_id == NO_KEY) return KL_E_NOT_FOUND;
    struct kl_obj *k;
    kl_status st = kl_obj_for_use(c, s->key_id, KL_USE_TLS, KL_ALG_ECDSA, &k);
    if (st == KL_E_USAGE) st = kl_obj_for_use(c, s->key_id, KL_USE_SIGN, KL_ALG_ECDSA, &k);
    if (st != KL_OK) return st;
    const uint8_t *priv = kl_obj_priv(c, k);
    if (!priv) return KL_E_WRONG_TYPE;
    uint8_t dig[32], raw[64];
    if (kl_cx_sha256_peek(&s->th, dig) != KL_OK) return KL_E_INTERNAL;
    st = kl_cx_ecdsa_sign(kl_chip_drbg(c), priv, dig, raw);
    if (st == KL_OK) st = kl_cx_sig_raw_to_der(raw, resp, cap, rlen);
    if (st != KL_OK) return KL_E_INTERNAL;
    s->cv_done = 1;
    return KL_OK;
}

/* ---- 0xB9 TLS_FINISHED ---- */
static KL_HANDLER(tls_finished)
{
    if (len < 1) return KL_E_BAD_LENGTH;
    if (cap < 12) return KL_E_INTERNAL;
    struct tls_session *s = session(c);
    int client = req[0] == 1;
    if (req[0] != 1 && req[0] != 2) return KL_E_BAD_PARAM;
    if (len != (client ? 1u : 13u)) return KL_E_BAD_LENGTH;
    if (!s || !s->th_live || s->stage != (client ? S_KEYS : S_CLIENT_FIN)) return KL_E_STATE;
    uint8_t dig[32], vd[12];
    if (kl_cx_sha256_peek(&s->th, dig) != KL_OK) return KL_E_INTERNAL;
    if (kl_tls_prf(s->ms, 48, client ? "client finished" : "server finished", dig, 32, vd, 12) !=
        KL_OK)
        return KL_E_INTERNAL;
    if (client) {
        memcpy(resp, vd, 12);
        *rlen = 12;
        s->stage = S_CLIENT_FIN;
        return KL_OK;
    }
    *rlen = 0;
    if (!kl_cx_ct_equal(vd, req + 1, 12)) return KL_E_VERIFY_FAILED;
    kl_cx_sha256_free(&s->th);
    s->th_live = 0;
    s->stage = S_DONE;
    return KL_OK;
}

/* ---- 0xBA TLS_EXPORT_MASTER ---- */
static KL_HANDLER(tls_export_master)
{
    if (len != 0) return KL_E_BAD_LENGTH;
    if (cap < 48) return KL_E_INTERNAL;
    if (!(c->st.config[0] & KL_CFG_MASTER_OUT)) return KL_E_ACCESS_DENIED;
    struct tls_session *s = session(c);
    if (!s || s->stage < S_KEYS) return KL_E_STATE;
    memcpy(resp, s->ms, 48);
    *rlen = 48;
    return KL_OK;
}

/* ---- 0xBB TLS_END ---- */
static KL_HANDLER(tls_end)
{
    (void)req;
    (void)resp;
    (void)cap;
    *rlen = 0;
    if (len != 0) return KL_E_BAD_LENGTH;
    struct tls_chip *t = state_of(c, 0);
    if (t) session_free(t);
    return KL_OK;
}

/* ---- 0xC4 TLS_RECORD ---- */

/* Opens one record fragment (explicit nonce || ciphertext || tag) with the server write
 * key and the read sequence number into out (n - 24 bytes). Nothing is left in out
 * unless the tag verified; the sequence number moves only then. */
static kl_status open_record(struct tls_session *s, uint8_t type, const uint8_t *d, size_t n,
                             uint8_t *out)
{
    if (s->rseq == UINT64_MAX) return KL_E_COUNTER;
    size_t plain = n - REC_OVERHEAD;
    uint8_t nonce[12], aad[13];
    memcpy(nonce, s->siv, 4);
    memcpy(nonce + 4, d, 8);
    put64(aad, s->rseq);
    aad[8] = type;
    aad[9] = 3;
    aad[10] = 3;
    kl_put16(aad + 11, (uint16_t)plain);
    struct kl_cx_cipher cx;
    enum kl_cx_aes_mode mode = s->suite == SUITE_CCM ? KL_CX_CCM : KL_CX_GCM;
    if (kl_cx_cipher_init(&cx, mode, 0, 0, s->skey, 16, nonce, 12, 16, plain, aad, sizeof aad) !=
        KL_OK)
        return KL_E_INTERNAL;
    size_t o1 = 0, o2 = 0;
    kl_status st = kl_cx_cipher_update(&cx, d + 8, plain, out, plain, &o1);
    if (st == KL_OK)
        st = kl_cx_cipher_final(&cx, d + 8 + plain, 16, out + o1, plain - o1, &o2);
    else
        kl_cx_cipher_free(&cx);
    if (st != KL_OK || o1 + o2 != plain) {
        kl_cx_wipe(out, plain);
        return st == KL_E_BAD_TAG ? KL_E_BAD_TAG : KL_E_INTERNAL;
    }
    s->rseq++;
    return KL_OK;
}

static void big_drop(struct tls_session *s)
{
    if (s->big) {
        kl_cx_wipe(s->big, BIG_MAX);
        free(s->big);
    }
    if (s->big_plain) {
        kl_cx_wipe(s->big_plain, BIG_MAX);
        free(s->big_plain);
    }
    s->big = s->big_plain = NULL;
    s->big_total = s->big_got = s->big_len = 0;
    s->big_ready = 0;
}

/* Records larger than one command: op 3 begins (type, total, first chunk), op 4 adds
 * chunks; when the last byte is in, the record is opened whole and op 5 reads the
 * plaintext back in pieces. Nothing is released before the tag verified. */
static kl_status big_record(struct tls_session *s, uint8_t op, uint8_t type, const uint8_t *d,
                            size_t n, uint8_t *resp, size_t *rlen)
{
    if (op == 5) {
        if (n != 4) return KL_E_BAD_LENGTH;
        if (!s->big_ready || type != s->big_type) return KL_E_STATE;
        size_t off = kl_be16(d), want = kl_be16(d + 2);
        if (want == 0 || want > FRAG_MAX) return KL_E_BAD_LENGTH;
        if (off > s->big_len || want > s->big_len - off) return KL_E_OUT_OF_RANGE;
        memcpy(resp, s->big_plain + off, want);
        *rlen = want;
        return KL_OK;
    }
    size_t chunk_off = 0;
    if (op == 3) {
        if (n < 2) return KL_E_BAD_LENGTH;
        size_t total = kl_be16(d);
        if (total <= REC_OVERHEAD || total > BIG_MAX) return KL_E_OUT_OF_RANGE;
        if (n - 2 > total || n - 2 > FRAG_MAX) return KL_E_BAD_LENGTH;
        uint8_t *buf = malloc(BIG_MAX), *pbuf = malloc(BIG_MAX);
        if (!buf || !pbuf) {
            free(buf);
            free(pbuf);
            return KL_E_INTERNAL;
        }
        big_drop(s); /* a new record replaces an unfinished or unread one */
        s->big = buf;
        s->big_plain = pbuf;
        s->big_total = total;
        s->big_type = type;
        chunk_off = 2;
    } else {
        if (!s->big || s->big_ready || type != s->big_type) return KL_E_STATE;
        if (n == 0 || n > FRAG_MAX || n > s->big_total - s->big_got) return KL_E_BAD_LENGTH;
    }
    memcpy(s->big + s->big_got, d + chunk_off, n - chunk_off);
    s->big_got += n - chunk_off;
    if (s->big_got < s->big_total) return KL_OK;
    kl_status st = open_record(s, type, s->big, s->big_total, s->big_plain);
    if (st != KL_OK) {
        big_drop(s);
        return st;
    }
    s->big_len = s->big_total - REC_OVERHEAD;
    s->big_ready = 1;
    kl_put16(resp, (uint16_t)s->big_len);
    *rlen = 2;
    return KL_OK;
}

static KL_HANDLER(tls_record)
{
    if (len < 2) return KL_E_BAD_LENGTH;
    uint8_t op = req[0], type = req[1];
    const uint8_t *d = req + 2;
    size_t n = len - 2;
    if (op < 1 || op > 5) return KL_E_BAD_PARAM;
    if (type < 20 || type > 23) return KL_E_BAD_PARAM;
    if (op == 1 && n > FRAG_MAX) return KL_E_BAD_LENGTH;
    if (op == 2 && (n < REC_OVERHEAD || n > FRAG_MAX + REC_OVERHEAD)) return KL_E_BAD_LENGTH;
    if (cap < FRAG_MAX + REC_OVERHEAD) return KL_E_INTERNAL;
    struct tls_session *s = session(c);
    if (!s || s->stage < S_KEYS) return KL_E_STATE;
    if (op >= 3) return big_record(s, op, type, d, n, resp, rlen);
    if (op == 2) {
        /* open into a private buffer; nothing leaves before the tag checks */
        uint8_t pt[FRAG_MAX];
        kl_status st = open_record(s, type, d, n, pt);
        if (st != KL_OK) return st;
        memcpy(resp, pt, n - REC_OVERHEAD);
        kl_cx_wipe(pt, sizeof pt);
        *rlen = n - REC_OVERHEAD;
        return KL_OK;
    }
    if (s->wseq == UINT64_MAX) return KL_E_COUNTER;
    uint8_t nonce[12], aad[13];
    memcpy(nonce, s->civ, 4);
    put64(nonce + 4, s->wseq); /* explicit nonce = sequence number */
    put64(aad, s->wseq);
    aad[8] = type;
    aad[9] = 3;
    aad[10] = 3;
    kl_put16(aad + 11, (uint16_t)n);
    struct kl_cx_cipher cx;
    enum kl_cx_aes_mode mode = s->suite == SUITE_CCM ? KL_CX_CCM : KL_CX_GCM;
    if (kl_cx_cipher_init(&cx, mode, 1, 0, s->ckey, 16, nonce, 12, 16, n, aad, sizeof aad) != KL_OK)
        return KL_E_INTERNAL;
    size_t o1 = 0, o2 = 0;
    memcpy(resp, nonce + 4, 8);
    kl_status st = kl_cx_cipher_update(&cx, d, n, resp + 8, cap - 8, &o1);
    if (st == KL_OK)
        st = kl_cx_cipher_final(&cx, NULL, 0, resp + 8 + o1, cap - 8 - o1, &o2);
    else
        kl_cx_cipher_free(&cx);
    if (st != KL_OK || 8 + o1 + o2 != n + REC_OVERHEAD) {
        kl_cx_wipe(resp, cap);
        return KL_E_INTERNAL;
    }
    s->wseq++;
    *rlen = n + REC_OVERHEAD;
    return KL_OK;
}

const struct kl_cmd kl_cmds_tls[] = {
    {0xCB, KL_CMDF_PERSIST, "IMPORT_ROOT_CERT", import_root},
    {0xB1, 0, "TLS_START", tls_start},
    {0xB2, 0, "TLS_TRANSCRIPT", tls_transcript},
    {0xB3, 0, "TLS_SERVER_HELLO", tls_server_hello},
    {0xCF, 0, "IMPORT_CHILD_CERT", import_child},
    {0xB4, 0, "TLS_VERIFY_PEER", tls_verify_peer},
    {0xB5, 0, "TLS_SERVER_KEY_EXCHANGE", tls_server_kx},
    {0xB6, 0, "TLS_CLIENT_KEY_EXCHANGE", tls_client_kx},
    {0xB7, 0, "TLS_DERIVE_KEYS", tls_derive},
    {0xB8, 0, "TLS_CERT_VERIFY", tls_cert_verify},
    {0xB9, 0, "TLS_FINISHED", tls_finished},
    {0xBA, 0, "TLS_EXPORT_MASTER", tls_export_master},
    {0xBB, 0, "TLS_END", tls_end},
    {0xC4, 0, "TLS_RECORD", tls_record},
};
const size_t kl_cmds_tls_n = sizeof kl_cmds_tls / sizeof kl_cmds_tls[0];
