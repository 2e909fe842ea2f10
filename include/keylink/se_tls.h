/*
 * The chip's TLS 1.2 offload commands (docs/protocol.md, "TLS 1.2 offload"), one
 * function each. The TLS client (keylink/tls.h) drives them in order; they are public
 * so other stacks (a port of another TLS library) can use the chip the same way.
 * Status conventions as in keylink/se.h; each comment names the statuses particular to
 * the command. The session state never leaves the chip.
 */
#ifndef KEYLINK_SE_TLS_H
#define KEYLINK_SE_TLS_H

#include <stddef.h>
#include <stdint.h>

#include "keylink/status.h"

struct kl_se;

enum {
    KL_CMD_TLS_START = 0xB1,
    KL_CMD_TLS_TRANSCRIPT = 0xB2,
    KL_CMD_TLS_SERVER_HELLO = 0xB3,
    KL_CMD_TLS_VERIFY_PEER = 0xB4,
    KL_CMD_TLS_SERVER_KEY_EXCHANGE = 0xB5,
    KL_CMD_TLS_CLIENT_KEY_EXCHANGE = 0xB6,
    KL_CMD_TLS_DERIVE_KEYS = 0xB7,
    KL_CMD_TLS_CERT_VERIFY = 0xB8,
    KL_CMD_TLS_FINISHED = 0xB9,
    KL_CMD_TLS_EXPORT_MASTER = 0xBA,
    KL_CMD_TLS_END = 0xBB,
    KL_CMD_TLS_RECORD = 0xC4,
    KL_CMD_IMPORT_ROOT_CERT = 0xCB,
    KL_CMD_IMPORT_CHILD_CERT = 0xCF,
};
#define KL_SE_TLS_NO_KEY 0xFFFFu
#define KL_SE_TLS_RECORD_OVERHEAD 24u /* explicit nonce 8 + tag 16 */

/* IMPORT_ROOT_CERT: DER certificate (<= 2048 bytes) into certificate object id, chunked.
 * sig: r||s by the private half of 0x1000 over SHA-256(id u16 || length u16 || der),
 * NULL in DELIVERY (kl_se_import_root_tbs writes those bytes). KL_E_BAD_KEY (not a P-256
 * CA certificate), KL_E_VERIFY_FAILED, KL_E_WRONG_TYPE, KL_E_OUT_OF_RANGE. */
kl_status kl_se_import_root_cert(struct kl_se *se, uint16_t id, const uint8_t *der, size_t len,
                                 const uint8_t sig[64]);
kl_status kl_se_import_root_tbs(uint16_t id, const uint8_t *der, size_t len, uint8_t *out,
                                size_t cap, size_t *out_len);

/* TLS_START: new session checked against root_id, client key client_key_id
 * (KL_SE_TLS_NO_KEY: none), certificates checked at unix_time. Returns the client random. */
kl_status kl_se_tls_start(struct kl_se *se, uint16_t root_id, uint16_t client_key_id,
                          uint64_t unix_time, uint8_t client_random[32]);
/* TLS_TRANSCRIPT: adds handshake bytes (any length, chunked) to the chip's transcript. */
kl_status kl_se_tls_transcript(struct kl_se *se, const uint8_t *data, size_t len);
/* TLS_SERVER_HELLO. KL_E_BAD_PARAM: suite not supported. */
kl_status kl_se_tls_server_hello(struct kl_se *se, const uint8_t server_random[32], uint16_t suite,
                                 int ems);
/* IMPORT_CHILD_CERT: certificate index (0 = leaf) of the server's chain, chunked. */
kl_status kl_se_tls_import_child(struct kl_se *se, uint8_t index, const uint8_t *der, size_t len);
/* TLS_VERIFY_PEER: checks the imported chain; pub (may be NULL) gets the leaf key.
 * KL_E_VERIFY_FAILED, KL_E_EXPIRED, KL_E_BAD_KEY. */
kl_status kl_se_tls_verify_peer(struct kl_se *se, uint8_t pub[64]);
/* TLS_SERVER_KEY_EXCHANGE: params = ServerECDHParams (69 bytes), DER signature.
 * KL_E_VERIFY_FAILED, KL_E_BAD_KEY, KL_E_BAD_PARAM. */
kl_status kl_se_tls_server_kx(struct kl_se *se, uint16_t scheme, const uint8_t *params, size_t plen,
                              const uint8_t *sig, size_t slen);
/* TLS_CLIENT_KEY_EXCHANGE: the chip's ECDHE point 04||X||Y. */
kl_status kl_se_tls_client_kx(struct kl_se *se, uint8_t point[65]);
/* TLS_DERIVE_KEYS: master secret and key block, inside the chip. */
kl_status kl_se_tls_derive_keys(struct kl_se *se);
/* TLS_CERT_VERIFY: DER signature (<= 72 bytes) over the transcript with the client key.
 * KL_E_NOT_FOUND, KL_E_USAGE, KL_E_ACCESS_DENIED. */
kl_status kl_se_tls_cert_verify(struct kl_se *se, uint8_t *sig, size_t cap, size_t *sig_len);
/* TLS_FINISHED: client verify_data out; server verify_data checked (KL_E_VERIFY_FAILED). */
kl_status kl_se_tls_finished_client(struct kl_se *se, uint8_t verify_data[12]);
kl_status kl_se_tls_finished_server(struct kl_se *se, const uint8_t verify_data[12]);
/* TLS_EXPORT_MASTER: KL_E_ACCESS_DENIED unless the chip's config allows it. */
kl_status kl_se_tls_export_master(struct kl_se *se, uint8_t master[48]);
/* TLS_END: wipes the session. */
kl_status kl_se_tls_end(struct kl_se *se);
/* TLS_RECORD protect: plaintext (<= 2000) to explicit nonce || ciphertext || tag
 * (len + 24 bytes into out). KL_E_STATE (no keys), KL_E_COUNTER. */
kl_status kl_se_tls_protect(struct kl_se *se, uint8_t type, const uint8_t *in, size_t len,
                            uint8_t *out, size_t cap, size_t *out_len);
/* TLS_RECORD unprotect: record fragment (24..2024) to plaintext. KL_E_BAD_TAG. */
kl_status kl_se_tls_unprotect(struct kl_se *se, uint8_t type, const uint8_t *in, size_t len,
                              uint8_t *out, size_t cap, size_t *out_len);
/* TLS_RECORD unprotect of a record too big for one command (plaintext 1..16384): sent in
 * chunks (ops 3, 4), opened whole in the chip, read back in pieces (op 5). out may be
 * in itself. KL_E_BAD_TAG (nothing released). */
kl_status kl_se_tls_unprotect_large(struct kl_se *se, uint8_t type, const uint8_t *in, size_t len,
                                    uint8_t *out, size_t cap, size_t *out_len);

#endif
