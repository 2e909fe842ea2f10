/*
 * The chip's TLS 1.2 offload commands, checked against OpenSSL as an independent
 * implementation: the PRF against EVP_KDF TLS1-PRF; a whole handshake driven command by
 * command, with the server side (certificates, ECDHE, signatures, Finished, records)
 * computed here with OpenSSL, for both suites, with and without extended master secret.
 * Also every out-of-order command, bad length, root import refusal, the master-secret
 * export flag, and that a reset forgets the session.
 */
#include "chip_fixture.h"

#include <openssl/core_names.h>
#include <openssl/kdf.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "tls_int.h"

enum {
    C_START = 0xB1,
    C_TRANSCRIPT,
    C_SHELLO,
    C_VERIFY_PEER,
    C_SKE,
    C_CKE,
    C_DERIVE,
    C_CV,
    C_FIN,
    C_EXPORT,
    C_END,
    C_RECORD = 0xC4,
    C_ROOT = 0xCB,
    C_CHILD = 0xCF,
};

/* Calls the handler straight from the table when the dispatcher does not know the
 * command yet, so the handlers are tested either way. */
static kl_status tx(struct fx *f, uint8_t cmd, const uint8_t *req, size_t n)
{
    kl_status st = fx_exec(f, cmd, req, n);
    if (st != KL_E_UNKNOWN_COMMAND) return st;
    for (size_t i = 0; i < kl_cmds_tls_n; i++)
        if (kl_cmds_tls[i].code == cmd) {
            f->rlen = 0;
            return kl_cmds_tls[i].fn(f->c, n ? req : (const uint8_t *)"", n, f->resp,
                                     sizeof f->resp, &f->rlen);
        }
    return st;
}

static void ossl_prf(const uint8_t *sec, size_t sl, const char *label, const uint8_t *seed,
                     size_t seedl, uint8_t *out, size_t n)
{
    uint8_t ls[256];
    size_t ll = strlen(label);
    memcpy(ls, label, ll);
    memcpy(ls + ll, seed, seedl);
    EVP_KDF *k = EVP_KDF_fetch(NULL, "TLS1-PRF", NULL);
    EVP_KDF_CTX *c = EVP_KDF_CTX_new(k);
    OSSL_PARAM p[] = {OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)"SHA256", 0),
                      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SECRET, (void *)sec, sl),
                      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SEED, ls, ll + seedl),
                      OSSL_PARAM_END};
    if (!c || EVP_KDF_derive(c, out, n, p) <= 0) exit(2);
    EVP_KDF_CTX_free(c);
    EVP_KDF_free(k);
}

static void prf_vs_openssl(void)
{
    static const size_t lens[] = {12, 32, 40, 48, 64, 100};
    for (int i = 0; i < 30; i++) {
        uint8_t sec[48], seed[64], a[100], b[100];
        RAND_bytes(sec, sizeof sec);
        RAND_bytes(seed, sizeof seed);
        size_t n = lens[i % 6], sl = 32 + (size_t)(i % 17);
        const char *label = i % 2 ? "key expansion" : "extended master secret";
        CHECK_ST(kl_tls_prf(sec, sl, label, seed, 64 - (size_t)(i % 33), a, n), KL_OK);
        ossl_prf(sec, sl, label, seed, 64 - (size_t)(i % 33), b, n);
        CHECK(!memcmp(a, b, n));
    }
}

/* ---- certificates made here ---- */
static X509 *mk_cert(EVP_PKEY *key, EVP_PKEY *signer, X509 *issuer, const char *cn, int ca,
                     long from, long to)
{
    X509 *x = X509_new();
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), ca ? 1 : 2);
    X509_gmtime_adj(X509_getm_notBefore(x), from);
    X509_gmtime_adj(X509_getm_notAfter(x), to);
    X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
                               (const unsigned char *)cn, -1, -1, 0);
    X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : X509_get_subject_name(x));
    X509_set_pubkey(x, key);
    X509V3_CTX v;
    X509V3_set_ctx(&v, issuer ? issuer : x, x, NULL, NULL, 0);
    X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, &v, NID_basic_constraints,
                                            ca ? "critical,CA:TRUE" : "critical,CA:FALSE");
    X509_add_ext(x, e, -1);
    X509_EXTENSION_free(e);
    if (!ca) {
        e = X509V3_EXT_conf_nid(NULL, &v, NID_ext_key_usage, "serverAuth");
        X509_add_ext(x, e, -1);
        X509_EXTENSION_free(e);
    }
    X509_sign(x, signer, EVP_sha256());
    return x;
}

/* AES-128 GCM/CCM with a 12-byte nonce and 16-byte tag. Returns 1 if ok. */
static int aead(int ccm, int enc, const uint8_t key[16], const uint8_t nonce[12],
                const uint8_t aad[13], const uint8_t *in, size_t n, uint8_t *out, uint8_t tag[16])
{
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    const EVP_CIPHER *ci = ccm ? EVP_aes_128_ccm() : EVP_aes_128_gcm();
    int l = 0, ok = EVP_CipherInit_ex(c, ci, NULL, NULL, NULL, enc) &&
                    EVP_CIPHER_CTX_ctrl(c, ccm ? EVP_CTRL_CCM_SET_IVLEN : EVP_CTRL_GCM_SET_IVLEN,
                                        12, NULL);
    if (ok && ccm) ok = EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_CCM_SET_TAG, 16, enc ? NULL : tag);
    if (ok) ok = EVP_CipherInit_ex(c, NULL, NULL, key, nonce, enc);
    if (ok && ccm) ok = EVP_CipherUpdate(c, NULL, &l, NULL, (int)n);
    if (ok) ok = EVP_CipherUpdate(c, NULL, &l, aad, 13);
    if (ok && !enc && !ccm) ok = EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, 16, tag);
    if (ok) ok = EVP_CipherUpdate(c, out, &l, in, (int)n) > 0 || (ccm && n == 0);
    if (ok && !ccm) ok = EVP_CipherFinal_ex(c, out + l, &l);
    if (ok && enc)
        ok = EVP_CIPHER_CTX_ctrl(c, ccm ? EVP_CTRL_CCM_GET_TAG : EVP_CTRL_GCM_GET_TAG, 16, tag);
    EVP_CIPHER_CTX_free(c);
    return ok;
}

static void put64(uint8_t *p, uint64_t v)
{
    kl_put32(p, (uint32_t)(v >> 32));
    kl_put32(p + 4, (uint32_t)v);
}

static void set_master_out(struct fx *f, int on)
{
    CHECK_ST(fx_exec(f, C_GETCFG, NULL, 0), KL_OK);
    uint8_t cfg[12];
    memcpy(cfg, f->resp, 12);
    cfg[0] = (uint8_t)(on ? cfg[0] | 4 : cfg[0] & ~4);
    CHECK_ST(fx_exec(f, C_SETCFG, cfg, 12), KL_OK);
}

/* A whole handshake for one suite, the server side done with OpenSSL. */
static void handshake(uint16_t suite, int ems, int mtls)
{
    struct fx f;
    fx_open(&f);
    EVP_PKEY *rk = EVP_EC_gen("P-256"), *sk = EVP_EC_gen("P-256"), *eph = EVP_EC_gen("P-256");
    X509 *root = mk_cert(rk, rk, NULL, "root", 1, -60, 86400);
    X509 *leaf = mk_cert(sk, rk, root, "server", 0, -60, 86400);
    uint8_t rder[2048], lder[2048], req[2100];
    size_t rn = kl_test_x509_der(root, rder, sizeof rder),
           ln = kl_test_x509_der(leaf, lder, sizeof lder);
    CHECK_ST(fx_create(&f, 0x1003, 6, 2, 1024, NULL, 0, 0xFF, 0, 0xFF, 0, 0), KL_OK);
    kl_put16(req, 0x1003);
    kl_put16(req + 2, (uint16_t)rn);
    kl_put16(req + 4, 0);
    memcpy(req + 6, rder, rn);
    CHECK_ST(tx(&f, C_ROOT, req, 6 + rn), KL_OK);

    /* nothing works before TLS_START */
    CHECK_ST(tx(&f, C_TRANSCRIPT, (const uint8_t *)"x", 1), KL_E_STATE);
    CHECK_ST(tx(&f, C_RECORD, (const uint8_t *)"\x01\x17", 2), KL_E_STATE);
    uint8_t st_req[12];
    kl_put16(st_req, 0x1003);
    kl_put16(st_req + 2, 0xFFFF);
    put64(st_req + 4, (uint64_t)time(NULL));
    CHECK_ST(tx(&f, C_START, st_req, 11), KL_E_BAD_LENGTH);
    kl_put16(st_req, 0x1004);
    CHECK_ST(tx(&f, C_START, st_req, 12), KL_E_NOT_FOUND);
    kl_put16(st_req, 0x1003);
    struct hkey dev;
    if (mtls) { /* the device key pair, imported so the test can check its signature */
        hkey_new(&dev);
        uint8_t m[96];
        memcpy(m, dev.priv, 32);
        memcpy(m + 32, dev.pub, 64);
        CHECK_ST(fx_create(&f, 0x1004, 3, 2, 96, NULL, 4, 0x04, 0x01, 0xFF, 0, 0), KL_OK);
        CHECK_ST(fx_import(&f, 0x1004, m, 96, NULL), KL_OK);
        kl_put16(st_req + 2, 0x1004);
    }
    CHECK_ST(tx(&f, C_START, st_req, 12), KL_OK);
    CHECK(f.rlen == 32);
    uint8_t cr[32], sr[32];
    memcpy(cr, f.resp, 32);
    RAND_bytes(sr, 32);

    /* the transcript, as the test sees it */
    uint8_t tr[8192];
    size_t trn = 0;
    /* the transcript must open with a ClientHello carrying the chip's random */
    uint8_t ch[41] = {1, 0, 0, 37, 3, 3};
    memcpy(ch + 6, cr, 32);
    uint8_t sh0[35] = {0};
    kl_put16(sh0 + 32, suite);
    CHECK_ST(tx(&f, C_SHELLO, sh0, 35), KL_E_STATE); /* no ClientHello yet */
    ch[20] ^= 1;
    CHECK_ST(tx(&f, C_TRANSCRIPT, ch, sizeof ch), KL_E_BAD_PARAM); /* not our random */
    ch[20] ^= 1;
    ch[0] = 2;
    CHECK_ST(tx(&f, C_TRANSCRIPT, ch, sizeof ch), KL_E_BAD_PARAM);
    ch[0] = 1;
    CHECK_ST(tx(&f, C_TRANSCRIPT, ch, 10), KL_OK); /* in pieces is fine */
    CHECK_ST(tx(&f, C_TRANSCRIPT, ch + 10, sizeof ch - 10), KL_OK);
    memcpy(tr + trn, ch, sizeof ch);
    trn += sizeof ch;

    memset(req, 0, 3 + 69 + 70);
    req[2] = 69;
    CHECK_ST(tx(&f, C_SKE, req, 3 + 69 + 70), KL_E_STATE); /* out of order */
    uint8_t sh[35];
    memcpy(sh, sr, 32);
    kl_put16(sh + 32, 0x1301);
    sh[34] = (uint8_t)ems;
    CHECK_ST(tx(&f, C_SHELLO, sh, 35), KL_E_BAD_PARAM);
    kl_put16(sh + 32, suite);
    CHECK_ST(tx(&f, C_SHELLO, sh, 34), KL_E_BAD_LENGTH);
    CHECK_ST(tx(&f, C_SHELLO, sh, 35), KL_OK);
    CHECK_ST(tx(&f, C_SHELLO, sh, 35), KL_E_STATE); /* once */

    /* the leaf in two chunks; out-of-order chunks and indexes refused */
    req[0] = 1;
    kl_put16(req + 1, (uint16_t)ln);
    kl_put16(req + 3, 0);
    memcpy(req + 5, lder, 100);
    CHECK_ST(tx(&f, C_CHILD, req, 105), KL_E_STATE); /* index 1 before 0 */
    req[0] = 0;
    CHECK_ST(tx(&f, C_CHILD, req, 105), KL_OK);
    CHECK_ST(tx(&f, C_VERIFY_PEER, NULL, 0), KL_E_STATE); /* incomplete */
    kl_put16(req + 3, 99);
    CHECK_ST(tx(&f, C_CHILD, req, 105), KL_E_STATE); /* wrong offset */
    kl_put16(req + 3, 100);
    memcpy(req + 5, lder + 100, ln - 100);
    CHECK_ST(tx(&f, C_CHILD, req, 5 + ln - 100 + 1), KL_E_BAD_LENGTH); /* past the total */
    CHECK_ST(tx(&f, C_CHILD, req, 5 + ln - 100), KL_OK);
    CHECK_ST(tx(&f, C_VERIFY_PEER, NULL, 0), KL_OK);
    uint8_t spub[64];
    (void)kl_test_p256_pub(sk, spub);
    CHECK(f.rlen == 64 && !memcmp(f.resp, spub, 64));
    static const uint8_t certmsg[] = {11, 0, 0, 1, 0};
    CHECK_ST(tx(&f, C_TRANSCRIPT, certmsg, sizeof certmsg), KL_OK);
    memcpy(tr + trn, certmsg, sizeof certmsg);
    trn += sizeof certmsg;

    /* ServerKeyExchange signed by the leaf's key over randoms and params */
    uint8_t params[69] = {3, 0, 23, 65, 4};
    uint8_t epub[64];
    (void)kl_test_p256_pub(eph, epub);
    memcpy(params + 5, epub, 64);
    uint8_t tbs[64 + 69], dig[32], sig[80];
    memcpy(tbs, cr, 32);
    memcpy(tbs + 32, sr, 32);
    memcpy(tbs + 64, params, 69);
    SHA256(tbs, sizeof tbs, dig);
    EVP_PKEY_CTX *pc = EVP_PKEY_CTX_new(sk, NULL);
    size_t sl = sizeof sig;
    if (!pc || EVP_PKEY_sign_init(pc) <= 0 || EVP_PKEY_sign(pc, sig, &sl, dig, 32) <= 0) exit(2);
    EVP_PKEY_CTX_free(pc);
    kl_put16(req, 0x0403);
    req[2] = 69;
    memcpy(req + 3, params, 69);
    memcpy(req + 72, sig, sl);
    req[72 + sl - 1] ^= 1; /* a bad signature changes nothing */
    CHECK_ST(tx(&f, C_SKE, req, 72 + sl), KL_E_VERIFY_FAILED);
    req[72 + sl - 1] ^= 1;
    kl_put16(req, 0x0503);
    CHECK_ST(tx(&f, C_SKE, req, 72 + sl), KL_E_BAD_PARAM);
    kl_put16(req, 0x0403);
    CHECK_ST(tx(&f, C_SKE, req, 72 + sl), KL_OK);

    CHECK_ST(tx(&f, C_DERIVE, NULL, 0), KL_E_STATE); /* no pre-master secret yet */
    CHECK_ST(tx(&f, C_CKE, NULL, 0), KL_OK);
    CHECK(f.rlen == 65 && f.resp[0] == 4);
    uint8_t cpt[65];
    memcpy(cpt, f.resp, 65);
    /* the pre-master secret from the server's side */
    EVP_PKEY *cpk = NULL;
    EVP_PKEY_CTX *fc = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
    OSSL_PARAM fp[] = {OSSL_PARAM_construct_utf8_string("group", (char *)"prime256v1", 0),
                       OSSL_PARAM_construct_octet_string("pub", cpt, 65), OSSL_PARAM_END};
    if (!fc || EVP_PKEY_fromdata_init(fc) <= 0 ||
        EVP_PKEY_fromdata(fc, &cpk, EVP_PKEY_PUBLIC_KEY, fp) <= 0)
        exit(2);
    EVP_PKEY_CTX_free(fc);
    uint8_t pms[32];
    size_t pl = 32;
    EVP_PKEY_CTX *dc = EVP_PKEY_CTX_new(eph, NULL);
    if (!dc || EVP_PKEY_derive_init(dc) <= 0 || EVP_PKEY_derive_set_peer(dc, cpk) <= 0 ||
        EVP_PKEY_derive(dc, pms, &pl) <= 0)
        exit(2);
    EVP_PKEY_CTX_free(dc);
    uint8_t cke[70] = {16, 0, 0, 66, 65};
    memcpy(cke + 5, cpt, 65);
    CHECK_ST(tx(&f, C_TRANSCRIPT, cke, 70), KL_OK);
    memcpy(tr + trn, cke, 70);
    trn += 70;
    CHECK_ST(tx(&f, C_FIN, (const uint8_t *)"\x01", 1), KL_E_STATE); /* keys first */
    CHECK_ST(tx(&f, C_DERIVE, NULL, 0), KL_OK);

    uint8_t ms[48], seed[64], h[32];
    if (ems) {
        SHA256(tr, trn, h);
        ossl_prf(pms, 32, "extended master secret", h, 32, ms, 48);
    } else {
        memcpy(seed, cr, 32);
        memcpy(seed + 32, sr, 32);
        ossl_prf(pms, 32, "master secret", seed, 64, ms, 48);
    }
    CHECK_ST(tx(&f, C_EXPORT, NULL, 0), KL_E_ACCESS_DENIED); /* off by default */
    set_master_out(&f, 1);
    CHECK_ST(tx(&f, C_EXPORT, NULL, 0), KL_OK);
    CHECK(f.rlen == 48 && !memcmp(f.resp, ms, 48));
    set_master_out(&f, 0);
    if (!mtls) {
        CHECK_ST(tx(&f, C_CV, NULL, 0), KL_E_NOT_FOUND); /* no client key in this session */
    } else {
        /* CertificateVerify: the device key signs the transcript so far, once */
        CHECK_ST(tx(&f, C_CV, NULL, 0), KL_OK);
        SHA256(tr, trn, h);
        EVP_PKEY_CTX *vc = EVP_PKEY_CTX_new(dev.pk, NULL);
        CHECK(vc && EVP_PKEY_verify_init(vc) > 0 &&
              EVP_PKEY_verify(vc, f.resp, f.rlen, h, 32) == 1);
        EVP_PKEY_CTX_free(vc);
        static const uint8_t cvm[] = {15, 0, 0, 1, 0};
        CHECK_ST(tx(&f, C_TRANSCRIPT, cvm, sizeof cvm), KL_OK);
        memcpy(tr + trn, cvm, sizeof cvm);
        trn += sizeof cvm;
        CHECK_ST(tx(&f, C_CV, NULL, 0), KL_E_STATE); /* not a signing oracle */
    }

    uint8_t kb[40];
    memcpy(seed, sr, 32);
    memcpy(seed + 32, cr, 32);
    ossl_prf(ms, 48, "key expansion", seed, 64, kb, 40);

    /* Finished both ways */
    uint8_t vd[12];
    SHA256(tr, trn, h);
    ossl_prf(ms, 48, "client finished", h, 32, vd, 12);
    CHECK_ST(tx(&f, C_FIN, (const uint8_t *)"\x01", 1), KL_OK);
    CHECK(f.rlen == 12 && !memcmp(f.resp, vd, 12));
    uint8_t cfin[16] = {20, 0, 0, 12};
    memcpy(cfin + 4, vd, 12);
    CHECK_ST(tx(&f, C_TRANSCRIPT, cfin, 16), KL_OK);
    memcpy(tr + trn, cfin, 16);
    trn += 16;
    SHA256(tr, trn, h);
    ossl_prf(ms, 48, "server finished", h, 32, vd, 12);
    uint8_t sfin[13] = {2};
    memcpy(sfin + 1, vd, 12);
    sfin[12] ^= 0x80;
    CHECK_ST(tx(&f, C_FIN, sfin, 13), KL_E_VERIFY_FAILED);
    sfin[12] ^= 0x80;
    CHECK_ST(tx(&f, C_FIN, sfin, 12), KL_E_BAD_LENGTH);
    CHECK_ST(tx(&f, C_FIN, sfin, 13), KL_OK);
    CHECK_ST(tx(&f, C_TRANSCRIPT, cfin, 16), KL_E_STATE); /* transcript is over */

    /* records: ours open with OpenSSL, the server's (made with OpenSSL) open in the chip */
    int ccm = suite == 0xC0AC;
    for (uint64_t seq = 0; seq < 3; seq++) {
        uint8_t rq[2 + 600], nonce[12], aad[13], pt[600], tag[16];
        size_t n = 100 + 200 * (size_t)seq;
        rq[0] = 1;
        rq[1] = 23;
        memset(rq + 2, (int)('a' + seq), n);
        CHECK_ST(tx(&f, C_RECORD, rq, 2 + n), KL_OK);
        CHECK(f.rlen == n + 24);
        memcpy(nonce, kb + 32, 4);
        memcpy(nonce + 4, f.resp, 8);
        uint8_t want_nonce[8];
        put64(want_nonce, seq);
        CHECK(!memcmp(f.resp, want_nonce, 8)); /* explicit nonce = sequence number */
        put64(aad, seq);
        aad[8] = 23;
        aad[9] = 3;
        aad[10] = 3;
        kl_put16(aad + 11, (uint16_t)n);
        memcpy(tag, f.resp + 8 + n, 16);
        CHECK(aead(ccm, 0, kb, nonce, aad, f.resp + 8, n, pt, tag));
        CHECK(!memcmp(pt, rq + 2, n));

        /* the server's record number seq */
        uint8_t srec[2 + 8 + 600 + 16];
        srec[0] = 2;
        srec[1] = 23;
        memcpy(nonce, kb + 36, 4);
        RAND_bytes(nonce + 4, 8); /* any explicit nonce the server picks */
        memcpy(srec + 2, nonce + 4, 8);
        memset(pt, (int)('A' + seq), n);
        CHECK(aead(ccm, 1, kb + 16, nonce, aad, pt, n, srec + 10, tag));
        memcpy(srec + 10 + n, tag, 16);
        srec[10 + n / 2] ^= 0x10; /* one flipped bit: refused, read sequence unchanged */
        CHECK_ST(tx(&f, C_RECORD, srec, 2 + 8 + n + 16), KL_E_BAD_TAG);
        srec[10 + n / 2] ^= 0x10;
        srec[1] = 22; /* another content type is other additional data */
        CHECK_ST(tx(&f, C_RECORD, srec, 2 + 8 + n + 16), KL_E_BAD_TAG);
        srec[1] = 23;
        CHECK_ST(tx(&f, C_RECORD, srec, 2 + 8 + n + 16), KL_OK);
        CHECK(f.rlen == n && !memcmp(f.resp, pt, n));
    }
    uint8_t big[2 + 2001] = {1, 23};
    CHECK_ST(tx(&f, C_RECORD, big, sizeof big), KL_E_BAD_LENGTH);
    CHECK_ST(tx(&f, C_RECORD, big, 2 + 2000), KL_OK);
    big[0] = 6;
    CHECK_ST(tx(&f, C_RECORD, big, 10), KL_E_BAD_PARAM);

    /* a 5000-byte server record, bigger than one command: in by chunks, out by pieces */
    {
        static uint8_t pt5[5000], rec[8 + 5000 + 16], q[2 + 2 + 2000];
        uint8_t nonce[12], aad[13], tag[16];
        for (int k = 0; k < 2; k++) {
            memset(pt5, 'Z' - k, sizeof pt5);
            memcpy(nonce, kb + 36, 4);
            RAND_bytes(nonce + 4, 8);
            memcpy(rec, nonce + 4, 8);
            put64(aad, 3); /* three small records came first; a failure does not count */
            aad[8] = 23;
            aad[9] = 3;
            aad[10] = 3;
            kl_put16(aad + 11, 5000);
            CHECK(aead(ccm, 1, kb + 16, nonce, aad, pt5, 5000, rec + 8, tag));
            memcpy(rec + 8 + 5000, tag, 16);
            if (k == 0) rec[4000] ^= 4; /* first try: one flipped bit */
            q[0] = 4;
            q[1] = 23;
            CHECK_ST(tx(&f, C_RECORD, q, 2 + 10), KL_E_STATE); /* no record begun */
            size_t total = sizeof rec, off = 0;
            q[0] = 3;
            kl_put16(q + 2, (uint16_t)total);
            memcpy(q + 4, rec, 1998);
            CHECK_ST(tx(&f, C_RECORD, q, 4 + 1998), KL_OK);
            CHECK(f.rlen == 0);
            off = 1998;
            kl_status last = KL_OK;
            while (off < total) {
                size_t c = total - off < 2000 ? total - off : 2000;
                q[0] = 4;
                memcpy(q + 2, rec + off, c);
                last = tx(&f, C_RECORD, q, 2 + c);
                off += c;
                if (off < total) CHECK_ST(last, KL_OK);
            }
            uint8_t rd[6] = {5, 23, 0, 0, 0x07, 0xD0};
            if (k == 0) {
                CHECK_ST(last, KL_E_BAD_TAG);
                CHECK_ST(tx(&f, C_RECORD, rd, 6), KL_E_STATE); /* nothing to read */
                continue;
            }
            CHECK_ST(last, KL_OK);
            CHECK(f.rlen == 2 && kl_be16(f.resp) == 5000);
            for (size_t o = 0; o < 5000; o += 2000) {
                size_t w = 5000 - o < 2000 ? 5000 - o : 2000;
                kl_put16(rd + 2, (uint16_t)o);
                kl_put16(rd + 4, (uint16_t)w);
                CHECK_ST(tx(&f, C_RECORD, rd, 6), KL_OK);
                CHECK(f.rlen == w && !memcmp(f.resp, pt5 + o, w));
            }
            kl_put16(rd + 2, 4000);
            kl_put16(rd + 4, 1001);
            CHECK_ST(tx(&f, C_RECORD, rd, 6), KL_E_OUT_OF_RANGE);
        }
    }

    /* a reset forgets the session */
    CHECK_ST(fx_exec(&f, C_RESET, NULL, 0), KL_OK);
    big[0] = 1;
    CHECK_ST(tx(&f, C_RECORD, big, 10), KL_E_STATE);
    CHECK_ST(tx(&f, C_END, NULL, 0), KL_OK);

    if (mtls) hkey_free(&dev);
    EVP_PKEY_free(cpk);
    X509_free(root);
    X509_free(leaf);
    EVP_PKEY_free(rk);
    EVP_PKEY_free(sk);
    EVP_PKEY_free(eph);
    fx_close(&f);
}

/* TLS_START, then a minimal ClientHello with the chip's random into the transcript. */
static void start_session(struct fx *f, const uint8_t st_req[12])
{
    CHECK_ST(tx(f, C_START, st_req, 12), KL_OK);
    uint8_t ch[38] = {1, 0, 0, 34, 3, 3};
    memcpy(ch + 6, f->resp, 32);
    CHECK_ST(tx(f, C_TRANSCRIPT, ch, sizeof ch), KL_OK);
}

/* Peer chains the chip refuses: another root, expired, a CA as leaf, a non-CA issuer. */
static void chain_refusals(void)
{
    struct fx f;
    fx_open(&f);
    EVP_PKEY *rk = EVP_EC_gen("P-256"), *ok = EVP_EC_gen("P-256"), *sk = EVP_EC_gen("P-256");
    X509 *root = mk_cert(rk, rk, NULL, "root", 1, -60, 86400);
    X509 *other = mk_cert(ok, ok, NULL, "other", 1, -60, 86400);
    X509 *good = mk_cert(sk, rk, root, "server", 0, -60, 86400);
    X509 *foreign = mk_cert(sk, ok, other, "server", 0, -60, 86400);
    X509 *expired = mk_cert(sk, rk, root, "server", 0, -7200, -3600);
    X509 *leaf_as_issuer = mk_cert(sk, sk, good, "server2", 0, -60, 86400);
    uint8_t d[2048], req[2100];
    size_t n = kl_test_x509_der(root, d, sizeof d);
    CHECK_ST(fx_create(&f, 0x1003, 6, 2, 1024, NULL, 0, 0xFF, 0, 0xFF, 0, 0), KL_OK);
    CHECK_ST(fx_create(&f, 0x1005, 4, 2, 64, NULL, 0, 0xFF, 0, 0xFF, 0, 0), KL_OK);
    kl_put16(req, 0x1005);
    kl_put16(req + 2, (uint16_t)n);
    kl_put16(req + 4, 0);
    memcpy(req + 6, d, n);
    CHECK_ST(tx(&f, C_ROOT, req, 6 + n), KL_E_WRONG_TYPE);
    kl_put16(req, 0x1003);
    /* chunked in 3 pieces, the middle one out of place first */
    kl_put16(req + 4, 100);
    CHECK_ST(tx(&f, C_ROOT, req, 6 + 100), KL_E_STATE);
    kl_put16(req + 4, 0);
    CHECK_ST(tx(&f, C_ROOT, req, 6 + 100), KL_OK);
    kl_put16(req + 4, 100);
    memcpy(req + 6, d + 100, 100);
    CHECK_ST(tx(&f, C_ROOT, req, 6 + 100), KL_OK);
    kl_put16(req + 4, 200);
    memcpy(req + 6, d + 200, n - 200);
    CHECK_ST(tx(&f, C_ROOT, req, 6 + n - 200), KL_OK);
    CHECK_ST(fx_read(&f, 0x1003, 0, (uint16_t)n), KL_OK);
    CHECK(f.rlen == n && !memcmp(f.resp, d, n));
    /* a leaf is not a trust anchor; the object keeps the root */
    size_t gn = kl_test_x509_der(good, d, sizeof d);
    kl_put16(req + 2, (uint16_t)gn);
    kl_put16(req + 4, 0);
    memcpy(req + 6, d, gn);
    CHECK_ST(tx(&f, C_ROOT, req, 6 + gn), KL_E_BAD_KEY);
    CHECK_ST(fx_read(&f, 0x1003, 0, 16), KL_OK);

    struct {
        X509 *leaf, *mid;
        kl_status want;
    } cases[] = {
        {foreign, NULL, KL_E_VERIFY_FAILED},
        {expired, NULL, KL_E_EXPIRED},
        {leaf_as_issuer, good, KL_E_VERIFY_FAILED},
        {good, NULL, KL_OK},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint8_t st_req[12];
        kl_put16(st_req, 0x1003);
        kl_put16(st_req + 2, 0xFFFF);
        put64(st_req + 4, (uint64_t)time(NULL));
        start_session(&f, st_req);
        uint8_t sh[35] = {0};
        kl_put16(sh + 32, 0xC02B);
        CHECK_ST(tx(&f, C_SHELLO, sh, 35), KL_OK);
        X509 *chain[2] = {cases[i].leaf, cases[i].mid};
        for (uint8_t k = 0; k < 2 && chain[k]; k++) {
            size_t cn = kl_test_x509_der(chain[k], d, sizeof d);
            req[0] = k;
            kl_put16(req + 1, (uint16_t)cn);
            kl_put16(req + 3, 0);
            memcpy(req + 5, d, cn);
            CHECK_ST(tx(&f, C_CHILD, req, 5 + cn), KL_OK);
        }
        CHECK_ST(tx(&f, C_VERIFY_PEER, NULL, 0), cases[i].want);
    }
    /* the same good chain checked at a time after notAfter */
    uint8_t st_req[12];
    kl_put16(st_req, 0x1003);
    kl_put16(st_req + 2, 0xFFFF);
    put64(st_req + 4, (uint64_t)time(NULL) + 3 * 86400);
    start_session(&f, st_req);
    uint8_t sh[35] = {0};
    kl_put16(sh + 32, 0xC0AC);
    CHECK_ST(tx(&f, C_SHELLO, sh, 35), KL_OK);
    n = kl_test_x509_der(good, d, sizeof d);
    req[0] = 0;
    kl_put16(req + 1, (uint16_t)n);
    kl_put16(req + 3, 0);
    memcpy(req + 5, d, n);
    CHECK_ST(tx(&f, C_CHILD, req, 5 + n), KL_OK);
    CHECK_ST(tx(&f, C_VERIFY_PEER, NULL, 0), KL_E_EXPIRED);

    /* outside DELIVERY a root import needs the key-import signature (0x1000) */
    struct hkey admin, imp;
    fx_admin_key(&f, 0x1001, &admin);
    hkey_new(&imp);
    CHECK_ST(fx_create(&f, 0x1000, 2, 2, 64, NULL, 4, 0x80, 0x01, 0xFF, 0, 0), KL_OK);
    CHECK_ST(fx_import(&f, 0x1000, imp.pub, 64, NULL), KL_OK);
    CHECK_ST(fx_auth(&f, 0x1001, &admin), KL_OK);
    CHECK_ST(fx_setlc(&f, 4), KL_OK);
    n = kl_test_x509_der(root, d, sizeof d);
    kl_put16(req, 0x1003);
    kl_put16(req + 2, (uint16_t)n);
    kl_put16(req + 4, 0);
    memcpy(req + 6, d, n);
    CHECK_ST(tx(&f, C_ROOT, req, 6 + n), KL_E_AUTH_REQUIRED);
    uint8_t tbs[4 + 2048];
    kl_put16(tbs, 0x1003);
    kl_put16(tbs + 2, (uint16_t)n);
    memcpy(tbs + 4, d, n);
    hkey_sign_msg(&admin, tbs, 4 + n, req + 6 + n); /* the wrong key */
    CHECK_ST(tx(&f, C_ROOT, req, 6 + n + 64), KL_E_VERIFY_FAILED);
    hkey_sign_msg(&imp, tbs, 4 + n, req + 6 + n);
    CHECK_ST(tx(&f, C_ROOT, req, 6 + n + 64), KL_OK);
    hkey_free(&admin);
    hkey_free(&imp);

    X509 *all[] = {root, other, good, foreign, expired, leaf_as_issuer};
    for (size_t i = 0; i < 6; i++)
        X509_free(all[i]);
    EVP_PKEY_free(rk);
    EVP_PKEY_free(ok);
    EVP_PKEY_free(sk);
    fx_close(&f);
}

int main(void)
{
    prf_vs_openssl();
    handshake(0xC02B, 1, 1);
    handshake(0xC0AC, 1, 0);
    handshake(0xC02B, 0, 0);
    handshake(0xC0AC, 0, 1);
    chain_refusals();
    if (kl_fails) {
        fprintf(stderr, "%d check(s) failed\n", kl_fails);
        return 1;
    }
    printf("tls chip ok\n");
    return 0;
}
