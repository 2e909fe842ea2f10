/*
 * The chip's volatile crypto contexts (docs/protocol.md, "Cryptography"): 4 hash,
 * 2 MAC and 2 cipher contexts, each addressed by its index (the context byte). They
 * live in RAM only; a reset frees them all. AEAD decryption keeps its plaintext here
 * (up to KL_CS_AEAD_BUF bytes) until the tag has been checked.
 */
#ifndef KL_SE_CRYPTO_SESSIONS_H
#define KL_SE_CRYPTO_SESSIONS_H

#include <stddef.h>
#include <stdint.h>

#include "cx.h"
#include "keylink/status.h"

#define KL_CS_MD 4
#define KL_CS_MAC 2
#define KL_CS_CIPHER 2
#define KL_CS_AEAD_BUF 4096  /* AEAD-decrypt plaintext held per cipher context */
#define KL_CS_OUT_PIECE 2000 /* released plaintext per CIPHER_FINISH answer */

struct kl_cs_md {
    int used;
    struct kl_cx_sha256 h;
};

struct kl_cs_mac {
    int used;
    struct kl_cx_mac m;
};

struct kl_cs_cipher {
    int used;
    int hold;     /* AEAD decrypt: plaintext is kept in buf until the tag checks */
    int draining; /* the tag checked; buf[off..len) is still to be handed out */
    struct kl_cx_cipher x;
    size_t len, off;
    uint8_t buf[KL_CS_AEAD_BUF];
};

struct kl_crypto_sessions {
    struct kl_cs_md md[KL_CS_MD];
    struct kl_cs_mac mac[KL_CS_MAC];
    struct kl_cs_cipher cipher[KL_CS_CIPHER];
};

/* A new set with all contexts free: KL_OK and *out, or KL_E_INTERNAL (out of memory). */
kl_status kl_crypto_sessions_new(struct kl_crypto_sessions **out);
/* Frees every context (wiping keyed state and held plaintext) and the struct. NULL ok. */
void kl_crypto_sessions_free(struct kl_crypto_sessions *s);
/* Frees every context; the struct stays usable (chip reset). NULL ok. */
void kl_crypto_sessions_reset(struct kl_crypto_sessions *s);

/* Frees one context of each kind (wipes what it held). */
void kl_cs_md_end(struct kl_cs_md *m);
void kl_cs_mac_end(struct kl_cs_mac *m);
void kl_cs_cipher_end(struct kl_cs_cipher *c);

#endif
