/*
 * TLS 1.2 client whose every cryptographic step runs in the secure element
 * (docs/tls.md). Suites TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256 and
 * TLS_ECDHE_ECDSA_WITH_AES_128_CCM, curve P-256, SNI, ALPN, extended master secret
 * (required unless the config allows otherwise), max_fragment_length 2^10, optional
 * client certificate, renegotiation refused.
 *
 * No allocation: the caller owns struct kl_tls and the two buffers it points at. The
 * network and the clock come from two small interfaces (struct kl_tls_transport,
 * struct kl_tls_clock) so the same code runs on an MCU (docs/porting.md).
 *
 * Every function returns a kl_status. After any error but KL_E_TIMEOUT from
 * kl_tls_read, the connection is dead: the client has sent the matching alert when it
 * could and ended the chip's TLS session; kl_tls_error() says what happened (never a
 * secret).
 */
#ifndef KEYLINK_TLS_H
#define KEYLINK_TLS_H

#include <stddef.h>
#include <stdint.h>

#include "keylink/status.h"

struct kl_se;

#define KL_TLS_SUITE_ECDHE_ECDSA_AES128_GCM_SHA256 0xC02Bu
#define KL_TLS_SUITE_ECDHE_ECDSA_AES128_CCM 0xC0ACu

/* Largest record plaintext the chip opens or seals in one command (docs/protocol.md). */
#define KL_TLS_CHIP_FRAGMENT 2000u
/* The max_fragment_length the client asks for (RFC 6066 code 2). */
#define KL_TLS_MFL 1024u
/* Record buffer: 5-byte header + the largest record the client accepts. With the
 * server honouring max_fragment_length, KL_TLS_RX_MIN is enough; KL_TLS_RX_FULL takes
 * any plaintext handshake record a server may send without it. */
#define KL_TLS_RX_MIN (5u + 2048u + 256u)
#define KL_TLS_RX_FULL (5u + 16384u + 256u)
/* Handshake buffer: holds the largest handshake message (the server's Certificate,
 * up to 4 certificates of at most 2048 bytes). */
#define KL_TLS_HS_MIN 2048u
#define KL_TLS_HS_DEFAULT 8448u

/* The network. send writes all n bytes or fails (KL_E_IO). recv waits at most
 * timeout_ms for at least one byte: KL_OK with *got >= 1, KL_E_TIMEOUT with *got = 0,
 * KL_E_CLOSED when the peer closed, KL_E_IO on failure. */
struct kl_tls_transport {
    void *ctx;
    kl_status (*send)(void *ctx, const uint8_t *buf, size_t n);
    kl_status (*recv)(void *ctx, uint8_t *buf, size_t cap, size_t *got, uint32_t timeout_ms);
};

/* Time. unix_seconds gives the wall clock the chip checks certificate validity
 * against; monotonic_ms a clock that never goes back (for timeouts). */
struct kl_tls_clock {
    void *ctx;
    uint64_t (*unix_seconds)(void *ctx);
    uint64_t (*monotonic_ms)(void *ctx);
};

struct kl_tls_config {
    /* Sent as SNI and checked against the leaf's subjectAltName dNSName entries (or
     * iPAddress when it is a dotted IPv4 address). Required. */
    const char *server_name;
    /* ALPN protocols to offer, most preferred first; NULL/0: no ALPN. A server that
     * answers none leaves kl_tls.alpn empty (the caller decides); one that answers a name
     * not offered is refused. */
    const char *const *alpn;
    size_t alpn_n;
    /* Chip object ids: the root certificate (0x1003), and for mTLS the key pair (0x1004)
     * and the certificate object (0x1002) sent when the server asks; 0 = no client cert. */
    uint16_t root_id;
    uint16_t client_key_id;
    uint16_t client_cert_id;
    /* Suites to offer in order; NULL/0: GCM then CCM. */
    const uint16_t *suites;
    size_t suites_n;
    /* Whole-handshake and per-read limit, ms (0: 15000). */
    uint32_t timeout_ms;
    /* 1: accept a server that does not do extended master secret (RFC 7627). */
    int allow_no_ems;
    /* 1: do not ask for max_fragment_length; records of up to 16 KB then go through the
     * chip in pieces and rx must be KL_TLS_RX_FULL. */
    int no_mfl;
};

enum kl_tls_phase { KL_TLS_IDLE = 0, KL_TLS_HANDSHAKE, KL_TLS_OPEN, KL_TLS_CLOSED, KL_TLS_FAILED };

struct kl_tls {
    /* set by kl_tls_init */
    struct kl_se *se;
    struct kl_tls_config cfg;
    struct kl_tls_transport tr;
    struct kl_tls_clock clock;
    uint8_t *rx; /* record buffer (caller's) */
    size_t rx_cap;
    size_t rx_len;    /* bytes of records received, not yet consumed */
    size_t rec_total; /* length of the record handed out last (dropped on the next read) */
    uint8_t *hs;      /* handshake reassembly buffer (caller's) */
    size_t hs_cap;
    size_t hs_len;
    /* application data already opened, waiting for kl_tls_read (points into rx) */
    size_t app_off, app_len;
    enum kl_tls_phase phase;
    int encrypt_read, encrypt_write; /* after the peer's / our ChangeCipherSpec */
    int chip_session;                /* the chip holds a session we must end */
    size_t max_frag;                 /* plaintext per record we send */
    /* what was negotiated */
    uint16_t suite;
    int ems;
    int mfl; /* the server agreed to max_fragment_length */
    char alpn[32];
    char peer_cn[64];
    int client_auth; /* we sent a certificate and CertificateVerify */
    /* last error, for people */
    char err[160];
    uint8_t alert_sent, alert_recv; /* alert descriptions, 0 if none */
};

/* Prepares t. rx/rx_cap: record buffer (>= KL_TLS_RX_MIN); hs/hs_cap: handshake
 * buffer (>= KL_TLS_HS_MIN). Both stay the caller's and must live as long as t.
 * Copies cfg, tr and clock (strings in cfg must outlive t).
 * KL_E_ARG for NULL, a missing server name or function pointer, an unknown suite, an
 * ALPN name longer than 31 bytes or more than 4 of them; KL_E_BUFFER for small buffers. */
kl_status kl_tls_init(struct kl_tls *t, struct kl_se *se, const struct kl_tls_config *cfg,
                      const struct kl_tls_transport *tr, const struct kl_tls_clock *clock,
                      uint8_t *rx, size_t rx_cap, uint8_t *hs, size_t hs_cap);

/* Runs the whole handshake. KL_OK: the connection is open. Errors:
 *   KL_E_VERIFY_FAILED  the chain does not lead to the chip's root, the host name is not
 *                       in the certificate, or a signature / Finished did not verify;
 *   KL_E_EXPIRED        a certificate is outside its validity at the clock's time;
 *   KL_E_REFUSED        the server sent an alert (kl_tls_error names it);
 *   KL_E_PEER           the server broke the protocol (bad message, suite we did not
 *                       offer, no EMS, a record too big for the chip...);
 *   KL_E_CLOSED / KL_E_IO / KL_E_TIMEOUT  the network;
 *   any chip status from the SE link. */
kl_status kl_tls_handshake(struct kl_tls *t);

/* Sends n bytes as application data, cut into records the chip can seal.
 * KL_E_STATE if the connection is not open; network and chip statuses. */
kl_status kl_tls_write(struct kl_tls *t, const uint8_t *data, size_t n);

/* Reads application data: waits at most timeout_ms for a record, gives up to cap
 * bytes (the rest stays for the next call). KL_OK with *got >= 1; KL_E_TIMEOUT with
 * *got = 0 (the connection stays open); KL_E_CLOSED when the server sent close_notify
 * (answered with ours) or closed the socket; KL_E_BAD_TAG when a record failed to open
 * (bad_record_mac sent); KL_E_REFUSED for a fatal alert. A HelloRequest is refused
 * with a no_renegotiation warning and reading goes on. */
kl_status kl_tls_read(struct kl_tls *t, uint8_t *buf, size_t cap, size_t *got, uint32_t timeout_ms);

/* 1 when bytes already received wait in the client (opened application data, or record
 * bytes not processed yet): call kl_tls_read before waiting on the socket again, since
 * poll()/select() will not report them. 0 otherwise. */
int kl_tls_pending(const struct kl_tls *t);

/* Sends close_notify if the connection is open and ends the chip's session. Always
 * safe to call; returns the status of sending close_notify (KL_OK if none was due). */
kl_status kl_tls_close(struct kl_tls *t);

/* The last error in words, "" if none. */
const char *kl_tls_error(const struct kl_tls *t);
/* "ECDHE-ECDSA-AES128-GCM-SHA256" / "ECDHE-ECDSA-AES128-CCM" / "?" */
const char *kl_tls_suite_name(uint16_t suite);

/* ---- Minimal X.509 DER reading (hostile input; no allocation) ---- */

/* Finds, in a DER certificate, the subject CN (UTF8/Printable/IA5 string, copied with a
 * NUL; "" if none; KL_E_BUFFER if it does not fit cap) and checks host against the
 * subjectAltName: dNSName entries (a leading "*." matches exactly one leftmost label)
 * compared case-insensitively, or iPAddress entries when host is a dotted IPv4 address.
 * Without a subjectAltName nothing matches (the CN is not used for matching).
 * *match = 1 if host matched. KL_E_BAD_KEY if the DER does not parse. */
kl_status kl_x509_check_host(const uint8_t *der, size_t n, const char *host, int *match, char *cn,
                             size_t cn_cap);

#endif
