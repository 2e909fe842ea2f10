/*
 * TLS 1.2 AES-GCM record protection (RFC 5246 section 6.2, RFC 5288) for a connection whose
 * handshake OpenSSL finished. keylinkd hands such a connection off and frees its SSL object:
 * an idle device then costs the broker about a hundred bytes of keys and counters instead of
 * OpenSSL's ~15 KiB per connection. The handshake, every certificate decision and the AES-GCM
 * arithmetic itself stay in OpenSSL; only the record framing, the nonces and the sequence
 * numbers are done here. docs/dataplane.md ("Record layer hand-off") says when a connection
 * is handed off and what it answers to each kind of record.
 */
#ifndef KL_CLOUD_TLS_RECORD_H
#define KL_CLOUD_TLS_RECORD_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>
#include <openssl/ssl.h>

#define KL_TREC_HDR 5
#define KL_TREC_EXPLICIT_IV 8
#define KL_TREC_TAG 16
#define KL_TREC_OVERHEAD (KL_TREC_HDR + KL_TREC_EXPLICIT_IV + KL_TREC_TAG)
#define KL_TREC_MAX_PLAIN 16384
/* the largest record a peer may send (RFC 5246 6.2.3: 2^14 + 2048 of ciphertext) */
#define KL_TREC_MAX_RECORD (KL_TREC_HDR + KL_TREC_MAX_PLAIN + 2048)

/* record content types */
#define KL_TREC_CCS 20
#define KL_TREC_ALERT 21
#define KL_TREC_HANDSHAKE 22
#define KL_TREC_APPDATA 23

/* alert descriptions this layer sends */
#define KL_TREC_AD_CLOSE_NOTIFY 0
#define KL_TREC_AD_UNEXPECTED_MESSAGE 10
#define KL_TREC_AD_BAD_RECORD_MAC 20
#define KL_TREC_AD_RECORD_OVERFLOW 22
#define KL_TREC_AD_ILLEGAL_PARAMETER 47
#define KL_TREC_AD_DECODE_ERROR 50
#define KL_TREC_AD_PROTOCOL_VERSION 70
#define KL_TREC_AD_INTERNAL_ERROR 80
#define KL_TREC_AD_USER_CANCELED 90
#define KL_TREC_AD_NO_RENEGOTIATION 100

/* One direction's state: key, nonce material, the record counter; TLS 1.3 also keeps the
 * traffic secret (the next key after a KeyUpdate is derived from it). */
struct kl_trec_dir {
    uint8_t key[32];
    union {
        uint8_t salt[4]; /* TLS 1.2: the implicit part of the nonce */
        uint8_t iv[12];  /* TLS 1.3: XORed with the sequence number */
    };
    uint64_t seq;
    uint8_t secret[48]; /* TLS 1.3 traffic secret */
};

struct kl_trec {
    struct kl_trec_dir rd, wr; /* rd: the client's writing keys; wr: ours */
    uint8_t key_len;           /* 16 (AES-128-GCM) or 32 (AES-256-GCM); 0 = not handed off */
    uint8_t tls13;             /* 1: TLS 1.3 records (RFC 8446 5.2) */
    uint8_t secret_len;        /* TLS 1.3: 32 (SHA-256 suites) or 48 (SHA-384) */
    uint8_t got_secrets;       /* TLS 1.3: bit 0 client, bit 1 server traffic secret seen */
    uint8_t fin_sent;          /* TLS 1.3: our Finished is written (kl_trec_msg) */
    uint8_t tickets;           /* TLS 1.3: records we wrote after it (NewSessionTickets) */
    uint16_t max_frag;         /* plaintext bytes per record we send (max_fragment_length) */
};

/* Per-thread cipher contexts (one per key size), reused for every record of every connection
 * of a worker: no cipher state is kept per connection. */
struct kl_trec_ctx {
    EVP_CIPHER_CTX *c128, *c256;
};
int kl_trec_ctx_init(struct kl_trec_ctx *x);
void kl_trec_ctx_free(struct kl_trec_ctx *x);

/* TLS 1.3 needs the traffic secrets, which OpenSSL hands out only through its key log
 * callback (SSL_CTX_set_keylog_callback): give every line of the connection to
 * kl_trec_keylog(t, line) during the handshake; it keeps CLIENT_TRAFFIC_SECRET_0 and
 * SERVER_TRAFFIC_SECRET_0 in t and ignores the rest. The NewSessionTicket messages OpenSSL
 * writes right after the handshake take our first sequence numbers, one per record (a
 * ticket can need several records under a small max_fragment_length): give every call of
 * the SSL_CTX_set_msg_callback callback to kl_trec_msg, which counts the records written
 * after our Finished in t->tickets. */
void kl_trec_keylog(struct kl_trec *t, const char *line);
void kl_trec_msg(struct kl_trec *t, int write_p, int content_type, const void *buf, size_t len);

/* Fills t from an SSL whose handshake has just finished (SSL_do_handshake returned 1 and
 * nothing was read past the client's Finished). Returns 0 when the connection can be handed
 * off (TLS 1.2 with an AES-GCM suite; TLS 1.3 with TLS_AES_128_GCM_SHA256 or
 * TLS_AES_256_GCM_SHA384 and both traffic secrets seen; no data buffered inside OpenSSL),
 * 1 when it stays with OpenSSL (another version or suite; t wiped), -1 on an internal error
 * (t wiped). */
int kl_trec_from_ssl(struct kl_trec *t, SSL *ssl);

/* TLS 1.3 KeyUpdate (RFC 8446 4.6.3): msg[0..n) is the plaintext of a handshake record from
 * the client. Moves the reading side to the next traffic secret. Returns 0, 1 when the client
 * asked for ours too (then seal KL_TREC_KEY_UPDATE_MSG as a handshake record with the
 * current keys and call kl_trec_next_write_key), or -(alert description) for anything but
 * one well-formed KeyUpdate. */
int kl_trec_key_update(struct kl_trec *t, const uint8_t *msg, size_t n);
int kl_trec_next_write_key(struct kl_trec *t);
#define KL_TREC_KEY_UPDATE_MSG ((const uint8_t *)"\x18\x00\x00\x01\x00")
#define KL_TREC_KEY_UPDATE_LEN 5

/* Looks at the record header at buf[0..n). Returns the whole record's length (header
 * included) once the 5 header bytes are there, 0 when more bytes are needed, or
 * -(alert description) for a header no record of this connection may have (the TLS 1.2
 * bound, 2^14 + 2048 bytes; kl_trec_open holds TLS 1.3 records to 2^14 + 256). */
long kl_trec_record_len(const uint8_t *buf, size_t n);

/* Opens one whole record rec[0..len) (len from kl_trec_record_len) in place. Returns the
 * content type (TLS 1.3: the inner type, padding removed) with *pt / *pt_len set to the
 * plaintext inside rec, or -(alert description): bad_record_mac when the tag does not check
 * (nothing of the plaintext may be used then), record_overflow for more than 2^14 bytes of
 * plaintext, unexpected_message for a TLS 1.3 record whose outer type is not
 * application_data or whose plaintext has no content type. */
int kl_trec_open(struct kl_trec *t, struct kl_trec_ctx *x, uint8_t *rec, size_t len, uint8_t **pt,
                 size_t *pt_len);

/* Seals pt[0..n) (n <= t->max_frag) as one record of the given type into out, which has room
 * for n + KL_TREC_OVERHEAD bytes. Returns the record's length, or 0 on an internal error. */
size_t kl_trec_seal(struct kl_trec *t, struct kl_trec_ctx *x, uint8_t type, const uint8_t *pt,
                    size_t n, uint8_t *out);

/* Wipes the keys. */
void kl_trec_wipe(struct kl_trec *t);

#endif
