/*
 * TLS 1.2 handshake message codec for the client (host/tls_client.c): builds the
 * ClientHello and parses what a server sends. Pure functions over caller buffers; every
 * parser treats its input as hostile and checks each length before it reads. On a
 * parse failure they return KL_E_PEER, the alert to send and a short reason.
 */
#ifndef KL_HOST_TLS_CODEC_H
#define KL_HOST_TLS_CODEC_H

#include <stddef.h>
#include <stdint.h>

#include "keylink/status.h"

/* Record content types, handshake types, alerts (RFC 5246, 6066, 7301, 5746). */
enum { KL_CT_CCS = 20, KL_CT_ALERT = 21, KL_CT_HANDSHAKE = 22, KL_CT_APPDATA = 23 };
enum {
    KL_HT_HELLO_REQUEST = 0,
    KL_HT_CLIENT_HELLO = 1,
    KL_HT_SERVER_HELLO = 2,
    KL_HT_NEW_SESSION_TICKET = 4,
    KL_HT_CERTIFICATE = 11,
    KL_HT_SERVER_KEY_EXCHANGE = 12,
    KL_HT_CERTIFICATE_REQUEST = 13,
    KL_HT_SERVER_HELLO_DONE = 14,
    KL_HT_CERTIFICATE_VERIFY = 15,
    KL_HT_CLIENT_KEY_EXCHANGE = 16,
    KL_HT_FINISHED = 20,
};
enum {
    KL_AL_CLOSE_NOTIFY = 0,
    KL_AL_UNEXPECTED_MESSAGE = 10,
    KL_AL_BAD_RECORD_MAC = 20,
    KL_AL_RECORD_OVERFLOW = 22,
    KL_AL_HANDSHAKE_FAILURE = 40,
    KL_AL_BAD_CERTIFICATE = 42,
    KL_AL_UNSUPPORTED_CERTIFICATE = 43,
    KL_AL_CERTIFICATE_EXPIRED = 45,
    KL_AL_CERTIFICATE_UNKNOWN = 46,
    KL_AL_ILLEGAL_PARAMETER = 47,
    KL_AL_UNKNOWN_CA = 48,
    KL_AL_DECODE_ERROR = 50,
    KL_AL_DECRYPT_ERROR = 51,
    KL_AL_PROTOCOL_VERSION = 70,
    KL_AL_INTERNAL_ERROR = 80,
    KL_AL_NO_RENEGOTIATION = 100,
    KL_AL_UNSUPPORTED_EXTENSION = 110,
    KL_AL_NO_APPLICATION_PROTOCOL = 120,
};
/* Extensions we send or accept. */
enum {
    KL_EXT_SERVER_NAME = 0,
    KL_EXT_MAX_FRAGMENT_LENGTH = 1,
    KL_EXT_SUPPORTED_GROUPS = 10,
    KL_EXT_EC_POINT_FORMATS = 11,
    KL_EXT_SIGNATURE_ALGORITHMS = 13,
    KL_EXT_ALPN = 16,
    KL_EXT_EMS = 23,
    KL_EXT_RENEGOTIATION_INFO = 0xFF01,
};
#define KL_TLS_SIG_ECDSA_P256_SHA256 0x0403u
#define KL_TLS_GROUP_P256 23u
#define KL_TLS_MAX_CHAIN 4
#define KL_TLS_MAX_CERT 2048u

/* Bounded reader: once a read runs past the end, bad is set and every later read
 * yields zeros, so a parser checks bad once at the end of a block. */
struct kl_rd {
    const uint8_t *p;
    size_t n;
    int bad;
};
void kl_rd_init(struct kl_rd *r, const uint8_t *p, size_t n);
uint8_t kl_rd_u8(struct kl_rd *r);
uint16_t kl_rd_u16(struct kl_rd *r);
uint32_t kl_rd_u24(struct kl_rd *r);
/* Returns a pointer to the next n bytes and skips them (NULL and bad if short). */
const uint8_t *kl_rd_bytes(struct kl_rd *r, size_t n);
/* A sub-reader over the next n bytes. */
struct kl_rd kl_rd_sub(struct kl_rd *r, size_t n);

/* What the client offers (copied from struct kl_tls_config, validated by kl_tls_init). */
struct kl_tls_offer {
    const char *server_name;
    const char *const *alpn;
    size_t alpn_n;
    const uint16_t *suites;
    size_t suites_n;
    int no_mfl; /* do not ask for max_fragment_length */
};

/* A whole ClientHello handshake message (4-byte header included) into out.
 * KL_E_BUFFER if cap is too small, KL_E_ARG for a server name that is empty, longer
 * than 255 bytes or not a host name. */
kl_status kl_tls_build_client_hello(const struct kl_tls_offer *o, const uint8_t random[32],
                                    uint8_t *out, size_t cap, size_t *len);

struct kl_tls_server_hello {
    uint8_t random[32];
    uint16_t suite;
    int ems;       /* extended_master_secret echoed */
    int reneg;     /* renegotiation_info echoed (empty) */
    int mfl;       /* max_fragment_length echoed */
    char alpn[32]; /* "" if none */
};
/* Parses a ServerHello body (after the 4-byte header) against what was offered. */
kl_status kl_tls_parse_server_hello(const uint8_t *b, size_t n, const struct kl_tls_offer *o,
                                    struct kl_tls_server_hello *sh, uint8_t *alert,
                                    const char **why);

/* Certificate body: up to KL_TLS_MAX_CHAIN certificates of 1..KL_TLS_MAX_CERT bytes,
 * pointers into b. An empty list is refused (the server must authenticate). */
kl_status kl_tls_parse_certificate(const uint8_t *b, size_t n, const uint8_t **der, size_t *len,
                                   size_t *count, uint8_t *alert, const char **why);

/* ServerKeyExchange body for ECDHE_ECDSA: params (named curve P-256, uncompressed
 * point) and a DER signature, pointers into b. */
kl_status kl_tls_parse_server_key_exchange(const uint8_t *b, size_t n, const uint8_t **params,
                                           size_t *plen, uint16_t *scheme, const uint8_t **sig,
                                           size_t *slen, uint8_t *alert, const char **why);

/* CertificateRequest body: *can_sign = 1 if it allows ecdsa_sign with
 * ecdsa_secp256r1_sha256 (what the chip can answer). */
kl_status kl_tls_parse_certificate_request(const uint8_t *b, size_t n, int *can_sign,
                                           uint8_t *alert, const char **why);

/* Splits the first handshake message off buf[0..n): type, body, whole length. Returns
 * KL_OK, or KL_E_TIMEOUT when more bytes are needed (nothing wrong yet). */
kl_status kl_tls_next_handshake(const uint8_t *buf, size_t n, uint8_t *type, const uint8_t **body,
                                size_t *blen, size_t *total);

/* Writes a 4-byte handshake header for a body of blen bytes. */
void kl_tls_hs_header(uint8_t out[4], uint8_t type, size_t blen);

/* Alert description name ("bad_certificate"), never NULL. */
const char *kl_tls_alert_name(uint8_t desc);

#endif
