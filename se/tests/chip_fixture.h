/*
 * Shared by the chip-model tests (test_chip_*.c): a chip in a fresh temp directory,
 * commands through kl_chip_execute, and P-256 keys/signatures made with OpenSSL on the
 * host side (independent of the chip's own crypto).
 */
#ifndef KL_SE_TESTS_CHIP_FIXTURE_H
#define KL_SE_TESTS_CHIP_FIXTURE_H

#define _GNU_SOURCE
#include "kl_test.h"
#include "kl_test_ossl.h"

#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/sha.h>

#include "chip.h"
#include "chip_int.h"
#include "rules.h"

struct fx {
    char dir[64];
    struct kl_chip *c;
    uint8_t resp[2048];
    size_t rlen;
};

static inline void fx_open(struct fx *f)
{
    memset(f, 0, sizeof *f);
    strcpy(f->dir, "/tmp/kl-chip-test-XXXXXX");
    if (!mkdtemp(f->dir)) {
        perror("mkdtemp");
        exit(2);
    }
    if (kl_chip_open(f->dir, &f->c) != KL_OK) {
        fprintf(stderr, "kl_chip_open failed\n");
        exit(2);
    }
}

static inline void fx_reopen(struct fx *f)
{
    kl_chip_close(f->c);
    f->c = NULL;
    if (kl_chip_open(f->dir, &f->c) != KL_OK) {
        fprintf(stderr, "kl_chip_open (reopen) failed\n");
        exit(2);
    }
}

static inline void fx_close(struct fx *f)
{
    kl_chip_close(f->c);
    f->c = NULL;
    kl_test_rm_tree(f->dir);
}

static inline kl_status fx_exec(struct fx *f, uint8_t cmd, const uint8_t *req, size_t n)
{
    f->rlen = 12345;
    kl_status st = kl_chip_execute(f->c, cmd, req, n, f->resp, sizeof f->resp, &f->rlen);
    if (st != KL_OK && f->rlen != 0) {
        fprintf(stderr, "response length %zu on status %s\n", f->rlen, kl_status_name(st));
        kl_fails++;
    }
    return st;
}

/* Commands */
enum {
    C_CREATE = 0x10,
    C_DELETE = 0x11,
    C_READ = 0x12,
    C_WRITE = 0x13,
    C_LIST = 0x14,
    C_INFO = 0x15,
    C_COUNTER = 0x16,
    C_GENKEY = 0x20,
    C_IMPORT = 0xCA,
    C_STATUS = 0xF2,
    C_SETLC = 0xF3,
    C_SETCFG = 0xF4,
    C_GETCFG = 0xF5,
    C_PING = 0xF7,
    C_CHAL = 0xF8,
    C_AUTH = 0xF9,
    C_AUTHRESET = 0xFA,
    C_FACTORY = 0xFB,
    C_TAMPER = 0xE8,
    C_KICK = 0xE9,
    C_RESET = 0xEA,
    C_BOOT = 0xEB,
};

static const uint8_t RULES_ALL[9] = {0x1F, 0x1F, 0, 0x1F, 0x1F, 0, 0x1F, 0x1F, 0};

/* CREATE_OBJECT request (20 bytes, 24 for counters). Returns the status. */
static inline kl_status fx_create(struct fx *f, uint16_t id, uint8_t type, uint8_t props,
                                  uint16_t size, const uint8_t rules[9], uint8_t kt, uint8_t u1,
                                  uint8_t a1, uint8_t u2, uint8_t a2, uint32_t init)
{
    uint8_t r[24];
    kl_put16(r, id);
    r[2] = type;
    r[3] = props;
    kl_put16(r + 4, size);
    memcpy(r + 6, rules ? rules : RULES_ALL, 9);
    r[15] = kt;
    r[16] = u1;
    r[17] = a1;
    r[18] = u2;
    r[19] = a2;
    kl_put32(r + 20, init);
    int counter = type == 5 || type == 7;
    return fx_exec(f, C_CREATE, r, counter ? 24 : 20);
}

static inline kl_status fx_data_obj(struct fx *f, uint16_t id, uint8_t props, uint16_t size,
                                    const uint8_t rules[9])
{
    return fx_create(f, id, 4, props, size, rules, 0, 0xFF, 0, 0xFF, 0, 0);
}

static inline kl_status fx_write(struct fx *f, uint16_t id, uint16_t off, const uint8_t *d,
                                 size_t n)
{
    uint8_t r[2048];
    kl_put16(r, id);
    kl_put16(r + 2, off);
    memcpy(r + 4, d, n);
    return fx_exec(f, C_WRITE, r, 4 + n);
}

static inline kl_status fx_read(struct fx *f, uint16_t id, uint16_t off, uint16_t n)
{
    uint8_t r[6];
    kl_put16(r, id);
    kl_put16(r + 2, off);
    kl_put16(r + 4, n);
    return fx_exec(f, C_READ, r, 6);
}

static inline kl_status fx_id_cmd(struct fx *f, uint8_t cmd, uint16_t id)
{
    uint8_t r[2];
    kl_put16(r, id);
    return fx_exec(f, cmd, r, 2);
}

/* The status block. */
static inline void fx_status(struct fx *f, uint8_t blk[59])
{
    size_t n = 0;
    if (kl_chip_execute(f->c, C_STATUS, NULL, 0, blk, 2048, &n) != KL_OK || n != 59) {
        fprintf(stderr, "GET_STATUS failed\n");
        exit(2);
    }
}

static inline uint16_t fx_free(struct fx *f)
{
    uint8_t b[2048];
    fx_status(f, b);
    return kl_be16(b + 48);
}

static inline uint8_t fx_lifecycle(struct fx *f)
{
    uint8_t b[2048];
    fx_status(f, b);
    return b[45];
}

/* ---- host-side P-256 keys with OpenSSL ---- */
struct hkey {
    EVP_PKEY *pk;
    uint8_t priv[32];
    uint8_t pub[64];
};

static inline void hkey_new(struct hkey *k)
{
    k->pk = EVP_EC_gen("P-256");
    if (!k->pk) exit(2);
    BIGNUM *d = NULL;
    if (!kl_test_p256_pub(k->pk, k->pub) ||
        !EVP_PKEY_get_bn_param(k->pk, OSSL_PKEY_PARAM_PRIV_KEY, &d) ||
        BN_bn2binpad(d, k->priv, 32) != 32)
        exit(2);
    BN_clear_free(d);
}

static inline void hkey_free(struct hkey *k)
{
    EVP_PKEY_free(k->pk);
}

/* ECDSA over a 32-byte digest, raw r||s. */
static inline void hkey_sign_digest(struct hkey *k, const uint8_t dg[32], uint8_t sig[64])
{
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new(k->pk, NULL);
    uint8_t der[80];
    size_t n = sizeof der;
    if (!ctx || EVP_PKEY_sign_init(ctx) <= 0 || EVP_PKEY_sign(ctx, der, &n, dg, 32) <= 0) exit(2);
    EVP_PKEY_CTX_free(ctx);
    const uint8_t *p = der;
    ECDSA_SIG *s = d2i_ECDSA_SIG(NULL, &p, (long)n);
    if (!s) exit(2);
    BN_bn2binpad(ECDSA_SIG_get0_r(s), sig, 32);
    BN_bn2binpad(ECDSA_SIG_get0_s(s), sig + 32, 32);
    ECDSA_SIG_free(s);
}

static inline void hkey_sign_msg(struct hkey *k, const uint8_t *m, size_t n, uint8_t sig[64])
{
    uint8_t dg[32];
    SHA256(m, n, dg);
    hkey_sign_digest(k, dg, sig);
}

/* IMPORT_KEY (unsigned when signer is NULL). */
static inline kl_status fx_import(struct fx *f, uint16_t id, const uint8_t *m, size_t n,
                                  struct hkey *signer)
{
    uint8_t r[4 + 128 + 64];
    kl_put16(r, id);
    kl_put16(r + 2, (uint16_t)n);
    memcpy(r + 4, m, n);
    size_t len = 4 + n;
    if (signer) {
        hkey_sign_msg(signer, r, len, r + len);
        len += 64;
    }
    return fx_exec(f, C_IMPORT, r, len);
}

/* Admin key at id as a public-key object (usage admin auth, ECDSA), imported unsigned:
 * call in DELIVERY. */
static inline void fx_admin_key(struct fx *f, uint16_t id, struct hkey *k)
{
    hkey_new(k);
    if (fx_create(f, id, 2, 2, 64, NULL, 4, 0x08, 0x01, 0xFF, 0, 0) != KL_OK ||
        fx_import(f, id, k->pub, 64, NULL) != KL_OK) {
        fprintf(stderr, "admin key setup failed\n");
        exit(2);
    }
}

/* GET_CHALLENGE + ADMIN_AUTH with k. Returns ADMIN_AUTH's status. */
static inline kl_status fx_auth(struct fx *f, uint16_t id, struct hkey *k)
{
    if (fx_exec(f, C_CHAL, NULL, 0) != KL_OK || f->rlen != 16) return KL_E_INTERNAL;
    uint8_t r[66];
    kl_put16(r, id);
    hkey_sign_msg(k, f->resp, 16, r + 2);
    return fx_exec(f, C_AUTH, r, 66);
}

static inline kl_status fx_setlc(struct fx *f, uint8_t lc)
{
    return fx_exec(f, C_SETLC, &lc, 1);
}

#endif
