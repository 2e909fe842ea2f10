/*
 * Helpers for tests that drive the chip model through kl_chip_execute only: a chip in a
 * fresh temporary state directory, typed command wrappers, hex decoding. Header-only
 * (static inline) so each test_*.c stays one program.
 */
#ifndef KL_SE_TESTS_CHIP_HARNESS_H
#define KL_SE_TESTS_CHIP_HARNESS_H

#include "kl_test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "chip.h"
#include "chip_int.h" /* kl_put16, kl_put32 */

#define H_CREATE 0x10
#define H_DELETE 0x11
#define H_IMPORT 0xCA
#define H_GENERATE 0x20
#define H_SIGN_VERIFY 0xC8
#define H_VERIFY_WITH_KEY 0xC9
#define H_KEY_EXCHANGE 0xC3
#define H_MD_INIT 0xD0
#define H_MD_UPDATE 0xD1
#define H_MD_FINISH 0xD2
#define H_MD_PEEK 0xD3
#define H_MAC_INIT 0xD4
#define H_MAC_UPDATE 0xD5
#define H_MAC_FINISH 0xD6
#define H_CIPHER_INIT 0xD8
#define H_CIPHER_UPDATE 0xD9
#define H_CIPHER_FINISH 0xDA
#define H_RANDOM 0xDC
#define H_RESET 0xEA

struct h_chip {
    struct kl_chip *c;
    char dir[64];
    uint8_t resp[4096];
    size_t rlen;
};

/* Opens a factory-fresh chip (DELIVERY) in a new temporary directory. */
static inline int h_open(struct h_chip *h)
{
    memset(h, 0, sizeof(*h));
    strcpy(h->dir, "/tmp/kl-test-chip-XXXXXX");
    if (!mkdtemp(h->dir)) {
        perror("mkdtemp");
        return 0;
    }
    kl_status st = kl_chip_open(h->dir, &h->c);
    if (st != KL_OK) {
        fprintf(stderr, "kl_chip_open: %s\n", kl_status_name(st));
        return 0;
    }
    return 1;
}

/* Closes the chip and removes its state directory. */
static inline void h_close(struct h_chip *h)
{
    kl_chip_close(h->c);
    h->c = NULL;
    kl_test_rm_tree(h->dir);
}

static inline kl_status h_exec(struct h_chip *h, uint8_t cmd, const uint8_t *req, size_t n)
{
    h->rlen = 0;
    return kl_chip_execute(h->c, cmd, req, n, h->resp, sizeof(h->resp), &h->rlen);
}

/* CREATE_OBJECT of a temporary key object everyone may use in every state. */
static inline kl_status h_create_key(struct h_chip *h, uint16_t id, uint8_t type, size_t size,
                                     uint8_t key_type, uint8_t usage, uint8_t alg)
{
    uint8_t r[20] = {0};
    kl_put16(r, id);
    r[2] = type;
    r[3] = 1; /* temporary: RAM only, no image commit per vector */
    kl_put16(r + 4, size);
    for (int i = 0; i < 3; i++) {
        r[6 + 3 * i] = 0x1F;     /* every role */
        r[6 + 3 * i + 1] = 0x1F; /* every right */
    }
    r[15] = key_type;
    r[16] = usage;
    r[17] = alg;
    r[18] = 0xFF;
    r[19] = 0x00;
    return h_exec(h, H_CREATE, r, sizeof(r));
}

static inline kl_status h_import(struct h_chip *h, uint16_t id, const uint8_t *m, size_t n)
{
    uint8_t r[4 + 128];
    if (n > 128) return KL_E_ARG;
    kl_put16(r, id);
    kl_put16(r + 2, n);
    memcpy(r + 4, m, n);
    return h_exec(h, H_IMPORT, r, 4 + n);
}

static inline kl_status h_delete(struct h_chip *h, uint16_t id)
{
    uint8_t r[2];
    kl_put16(r, id);
    return h_exec(h, H_DELETE, r, 2);
}

/* Decodes hex into a fresh buffer (NUL-safe, at least 1 byte allocated). */
static inline uint8_t *h_unhex(const char *s, size_t *n)
{
    size_t l = strlen(s);
    *n = 0;
    uint8_t *b = malloc(l / 2 + 1);
    if (!b || l % 2) {
        free(b);
        return NULL;
    }
    for (size_t i = 0; i < l / 2; i++) {
        unsigned v;
        if (sscanf(s + 2 * i, "%2x", &v) != 1) {
            free(b);
            return NULL;
        }
        b[i] = (uint8_t)v;
    }
    *n = l / 2;
    return b;
}

#endif
