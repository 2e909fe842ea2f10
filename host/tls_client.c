/* TLS 1.2 client state machine (keylink/tls.h); every cryptographic step is a chip
 * command (keylink/se_tls.h), this file only moves and checks bytes. */
#include <stdio.h>
#include <string.h>

#include "keylink/se.h"
#include "keylink/se_tls.h"
#include "tls_int.h"

static const uint16_t default_suites[] = {KL_TLS_SUITE_ECDHE_ECDSA_AES128_GCM_SHA256,
                                          KL_TLS_SUITE_ECDHE_ECDSA_AES128_CCM};

const char *kl_tls_suite_name(uint16_t s)
{
    if (s == KL_TLS_SUITE_ECDHE_ECDSA_AES128_GCM_SHA256) return "ECDHE-ECDSA-AES128-GCM-SHA256";
    if (s == KL_TLS_SUITE_ECDHE_ECDSA_AES128_CCM) return "ECDHE-ECDSA-AES128-CCM";
    return "?";
}

const char *kl_tls_error(const struct kl_tls *t)
{
    return t ? t->err : "";
}

kl_status kl_tls_init(struct kl_tls *t, struct kl_se *se, const struct kl_tls_config *cfg,
                      const struct kl_tls_transport *tr, const struct kl_tls_clock *clock,
                      uint8_t *rx, size_t rx_cap, uint8_t *hs, size_t hs_cap)
{
    if (!t || !se || !cfg || !tr || !clock || !rx || !hs) return KL_E_ARG;
    if (!cfg->server_name || !cfg->server_name[0] || !tr->send || !tr->recv ||
        !clock->unix_seconds || !clock->monotonic_ms)
        return KL_E_ARG;
    if (cfg->alpn_n > 4 || (cfg->alpn_n && !cfg->alpn)) return KL_E_ARG;
    for (size_t i = 0; i < cfg->alpn_n; i++)
        if (!cfg->alpn[i] || !cfg->alpn[i][0] || strlen(cfg->alpn[i]) > 31) return KL_E_ARG;
    if (cfg->suites_n > 2 || (cfg->suites_n && !cfg->suites)) return KL_E_ARG;
    for (size_t i = 0; i < cfg->suites_n; i++)
        if (cfg->suites[i] != KL_TLS_SUITE_ECDHE_ECDSA_AES128_GCM_SHA256 &&
            cfg->suites[i] != KL_TLS_SUITE_ECDHE_ECDSA_AES128_CCM)
            return KL_E_ARG;
    if (rx_cap < KL_TLS_RX_MIN || hs_cap < KL_TLS_HS_MIN) return KL_E_BUFFER;
    memset(t, 0, sizeof *t);
    t->se = se;
    t->cfg = *cfg;
    if (!t->cfg.suites_n) {
        t->cfg.suites = default_suites;
        t->cfg.suites_n = 2;
    }
    if (!t->cfg.timeout_ms) t->cfg.timeout_ms = 15000;
    if (!t->cfg.root_id) t->cfg.root_id = 0x1003;
    t->tr = *tr;
    t->clock = *clock;
    t->rx = rx;
    t->rx_cap = rx_cap;
    t->hs = hs;
    t->hs_cap = hs_cap;
    t->max_frag = KL_TLS_MFL; /* until the ServerHello says otherwise */
    t->phase = KL_TLS_IDLE;
    return KL_OK;
}

/* Feeds one handshake message to the chip's transcript. */
static kl_status transcript(struct kl_tls *t, const uint8_t *m, size_t n)
{
    kl_status st = kl_se_tls_transcript(t->se, m, n);
    if (st != KL_OK)
        return kl_tls_fail(t, st, KL_AL_INTERNAL_ERROR, "chip transcript: %s", kl_status_name(st));
    return KL_OK;
}

/* Sends a handshake message built at t->hs (hs_len must be 0) and adds it to the
 * transcript. */
static kl_status send_hs(struct kl_tls *t, size_t n)
{
    kl_status st = transcript(t, t->hs, n);
    if (st != KL_OK) return st;
    /* the message sits at the start of hs; records are built after it */
    t->hs_len = n;
    st = kl_tls_send(t, KL_CT_HANDSHAKE, t->hs, n);
    t->hs_len = 0;
    if (st != KL_OK)
        return kl_tls_fail(t, st, -1, "could not send a handshake message: %s", kl_status_name(st));
    return KL_OK;
}

/* The next handshake message from the server: whole, in t->hs[0..*total). The caller
 * consumes it with consume(). CCS records are reported as type 0xFF. */
static kl_status next_msg(struct kl_tls *t, uint64_t deadline, uint8_t *type, const uint8_t **body,
                          size_t *blen, size_t *total)
{
    for (;;) {
        if (kl_tls_next_handshake(t->hs, t->hs_len, type, body, blen, total) == KL_OK) return KL_OK;
        if (t->hs_len >= 4) {
            size_t want = 4 + (((size_t)t->hs[1] << 16) | ((size_t)t->hs[2] << 8) | t->hs[3]);
            if (want > t->hs_cap)
                return kl_tls_fail(t, KL_E_PEER, KL_AL_INTERNAL_ERROR,
                                   "handshake message of %zu bytes exceeds the buffer", want);
        }
        uint8_t ct;
        uint8_t *f;
        size_t n;
        kl_status st = kl_tls_read_record(t, deadline, &ct, &f, &n);
        if (st == KL_E_TIMEOUT) return kl_tls_fail(t, st, -1, "server did not answer in time");
        if (st != KL_OK) return st;
        if (ct == KL_CT_ALERT) {
            st = kl_tls_on_alert(t, f, n);
            if (st == KL_OK) continue; /* a warning */
            return st;
        }
        if (ct == KL_CT_CCS) {
            if (t->hs_len)
                return kl_tls_fail(t, KL_E_PEER, KL_AL_UNEXPECTED_MESSAGE,
                                   "ChangeCipherSpec inside a handshake message");
            if (n != 1 || f[0] != 1)
                return kl_tls_fail(t, KL_E_PEER, KL_AL_DECODE_ERROR, "bad ChangeCipherSpec");
            *type = 0xFF;
            *total = 0;
            return KL_OK;
        }
        if (ct != KL_CT_HANDSHAKE)
            return kl_tls_fail(t, KL_E_PEER, KL_AL_UNEXPECTED_MESSAGE,
                               "server sent record type %u during the handshake", ct);
        if (n > t->hs_cap - t->hs_len)
            return kl_tls_fail(t, KL_E_PEER, KL_AL_INTERNAL_ERROR,
                               "handshake data exceeds the %zu-byte buffer", t->hs_cap);
        memcpy(t->hs + t->hs_len, f, n);
        t->hs_len += n;
    }
}

static void consume(struct kl_tls *t, size_t total)
{
    memmove(t->hs, t->hs + total, t->hs_len - total);
    t->hs_len -= total;
}

static kl_status expect(struct kl_tls *t, uint64_t deadline, uint8_t want, const uint8_t **body,
                        size_t *blen, size_t *total)
{
    uint8_t type;
    kl_status st = next_msg(t, deadline, &type, body, blen, total);
    if (st != KL_OK) return st;
    if (type != want)
        return kl_tls_fail(t, KL_E_PEER, KL_AL_UNEXPECTED_MESSAGE,
                           "server sent handshake message %u where %u was due", type, want);
    return KL_OK;
}

static int chip_alert(kl_status st)
{
    switch (st) {
    case KL_E_VERIFY_FAILED:
        return KL_AL_UNKNOWN_CA;
    case KL_E_EXPIRED:
        return KL_AL_CERTIFICATE_EXPIRED;
    case KL_E_BAD_KEY:
        return KL_AL_BAD_CERTIFICATE;
    default:
        return KL_AL_INTERNAL_ERROR;
    }
}

static kl_status server_hello(struct kl_tls *t, const struct kl_tls_offer *o, uint64_t dl)
{
    const uint8_t *b;
    size_t bl, total;
    kl_status st = expect(t, dl, KL_HT_SERVER_HELLO, &b, &bl, &total);
    if (st != KL_OK) return st;
    struct kl_tls_server_hello sh;
    uint8_t alert;
    const char *why;
    if (kl_tls_parse_server_hello(b, bl, o, &sh, &alert, &why) != KL_OK)
        return kl_tls_fail(t, KL_E_PEER, alert, "ServerHello: %s", why);
    if (!sh.ems && !t->cfg.allow_no_ems)
        return kl_tls_fail(t, KL_E_PEER, KL_AL_HANDSHAKE_FAILURE,
                           "server does not support extended master secret (RFC 7627)");
    if (!sh.reneg)
        return kl_tls_fail(t, KL_E_PEER, KL_AL_HANDSHAKE_FAILURE,
                           "server does not support secure renegotiation (RFC 5746)");
    t->suite = sh.suite;
    t->ems = sh.ems;
    t->mfl = sh.mfl;
    t->max_frag = sh.mfl ? KL_TLS_MFL : KL_TLS_CHIP_FRAGMENT;
    memcpy(t->alpn, sh.alpn, sizeof t->alpn);
    /* no ALPN answer is allowed: t->alpn stays "" and the caller decides */
    st = kl_se_tls_server_hello(t->se, sh.random, sh.suite, sh.ems);
    if (st != KL_OK)
        return kl_tls_fail(t, st, KL_AL_HANDSHAKE_FAILURE, "chip refused the ServerHello: %s",
                           kl_status_name(st));
    st = transcript(t, t->hs, total);
    consume(t, total);
    return st;
}

static kl_status certificate(struct kl_tls *t, uint64_t dl)
{
    const uint8_t *b;
    size_t bl, total;
    kl_status st = expect(t, dl, KL_HT_CERTIFICATE, &b, &bl, &total);
    if (st != KL_OK) return st;
    const uint8_t *der[KL_TLS_MAX_CHAIN];
    size_t len[KL_TLS_MAX_CHAIN], count = 0;
    uint8_t alert;
    const char *why;
    if (kl_tls_parse_certificate(b, bl, der, len, &count, &alert, &why) != KL_OK)
        return kl_tls_fail(t, KL_E_PEER, alert, "Certificate: %s", why);
    for (size_t i = 0; i < count; i++) {
        st = kl_se_tls_import_child(t->se, (uint8_t)i, der[i], len[i]);
        if (st != KL_OK)
            return kl_tls_fail(t, st, chip_alert(st), "chip refused server certificate %zu: %s", i,
                               kl_status_name(st));
    }
    st = kl_se_tls_verify_peer(t->se, NULL);
    if (st == KL_E_VERIFY_FAILED)
        return kl_tls_fail(t, st, KL_AL_UNKNOWN_CA,
                           "server certificate does not chain to the chip's root (object "
                           "0x%04X)",
                           t->cfg.root_id);
    if (st == KL_E_EXPIRED)
        return kl_tls_fail(t, st, KL_AL_CERTIFICATE_EXPIRED,
                           "server certificate chain is expired or not yet valid");
    if (st != KL_OK)
        return kl_tls_fail(t, st, chip_alert(st), "chip rejected the server chain: %s",
                           kl_status_name(st));
    int match = 0;
    st = kl_x509_check_host(der[0], len[0], t->cfg.server_name, &match, t->peer_cn,
                            sizeof t->peer_cn);
    if (st != KL_OK && st != KL_E_BUFFER)
        return kl_tls_fail(t, KL_E_PEER, KL_AL_BAD_CERTIFICATE,
                           "server certificate does not parse");
    if (!match)
        return kl_tls_fail(t, KL_E_VERIFY_FAILED, KL_AL_BAD_CERTIFICATE,
                           "server certificate is not for '%s' (subjectAltName)",
                           t->cfg.server_name);
    st = transcript(t, t->hs, total);
    consume(t, total);
    return st;
}

static kl_status server_key_exchange(struct kl_tls *t, uint64_t dl)
{
    const uint8_t *b;
    size_t bl, total;
    kl_status st = expect(t, dl, KL_HT_SERVER_KEY_EXCHANGE, &b, &bl, &total);
    if (st != KL_OK) return st;
    const uint8_t *params, *sig;
    size_t plen, slen;
    uint16_t scheme;
    uint8_t alert;
    const char *why;
    if (kl_tls_parse_server_key_exchange(b, bl, &params, &plen, &scheme, &sig, &slen, &alert,
                                         &why) != KL_OK)
        return kl_tls_fail(t, KL_E_PEER, alert, "ServerKeyExchange: %s", why);
    st = kl_se_tls_server_kx(t->se, scheme, params, plen, sig, slen);
    if (st == KL_E_VERIFY_FAILED)
        return kl_tls_fail(t, st, KL_AL_DECRYPT_ERROR,
                           "ServerKeyExchange signature does not verify with the server key");
    if (st != KL_OK)
        return kl_tls_fail(t, st, KL_AL_ILLEGAL_PARAMETER, "chip refused the ServerKeyExchange: %s",
                           kl_status_name(st));
    st = transcript(t, t->hs, total);
    consume(t, total);
    return st;
}

/* CertificateRequest (optional) and ServerHelloDone. *asked: a certificate is due;
 * *can_sign: the request allows what the chip signs. */
static kl_status server_done(struct kl_tls *t, uint64_t dl, int *asked, int *can_sign)
{
    *asked = 0;
    *can_sign = 0;
    for (;;) {
        uint8_t type;
        const uint8_t *b;
        size_t bl, total;
        kl_status st = next_msg(t, dl, &type, &b, &bl, &total);
        if (st != KL_OK) return st;
        if (type == KL_HT_CERTIFICATE_REQUEST && !*asked) {
            uint8_t alert;
            const char *why;
            if (kl_tls_parse_certificate_request(b, bl, can_sign, &alert, &why) != KL_OK)
                return kl_tls_fail(t, KL_E_PEER, alert, "CertificateRequest: %s", why);
            *asked = 1;
        } else if (type == KL_HT_SERVER_HELLO_DONE) {
            if (bl != 0)
                return kl_tls_fail(t, KL_E_PEER, KL_AL_DECODE_ERROR,
                                   "ServerHelloDone is not empty");
        } else {
            return kl_tls_fail(t, KL_E_PEER, KL_AL_UNEXPECTED_MESSAGE,
                               "server sent handshake message %u before ServerHelloDone", type);
        }
        st = transcript(t, t->hs, total);
        consume(t, total);
        if (st != KL_OK) return st;
        if (type == KL_HT_SERVER_HELLO_DONE) break;
    }
    if (t->hs_len)
        return kl_tls_fail(t, KL_E_PEER, KL_AL_UNEXPECTED_MESSAGE,
                           "server sent data after ServerHelloDone");
    return KL_OK;
}

/* Client Certificate: ours from the chip, or an empty list when we have none or the
 * server wants something the chip cannot sign. Returns whether one was sent. */
static kl_status client_certificate(struct kl_tls *t, int can_sign, int *sent)
{
    *sent = 0;
    size_t clen = 0;
    uint8_t *m = t->hs;
    if (t->cfg.client_key_id && t->cfg.client_cert_id && can_sign) {
        kl_status st =
            kl_se_read_object(t->se, t->cfg.client_cert_id, m + 10, t->hs_cap - 10, &clen);
        if (st != KL_OK)
            return kl_tls_fail(t, st, KL_AL_INTERNAL_ERROR,
                               "cannot read the device certificate (object 0x%04X): %s",
                               t->cfg.client_cert_id, kl_status_name(st));
        if (clen == 0)
            return kl_tls_fail(t, KL_E_STATE, KL_AL_INTERNAL_ERROR,
                               "device certificate object 0x%04X is empty", t->cfg.client_cert_id);
        *sent = 1;
    }
    size_t body = clen ? 3 + 3 + clen : 3;
    kl_tls_hs_header(m, KL_HT_CERTIFICATE, body);
    size_t list = clen ? 3 + clen : 0;
    m[4] = (uint8_t)(list >> 16);
    m[5] = (uint8_t)(list >> 8);
    m[6] = (uint8_t)list;
    if (clen) {
        m[7] = (uint8_t)(clen >> 16);
        m[8] = (uint8_t)(clen >> 8);
        m[9] = (uint8_t)clen;
    }
    return send_hs(t, 4 + body);
}

static kl_status client_flight(struct kl_tls *t, int asked, int can_sign)
{
    int sent_cert = 0;
    kl_status st;
    if (asked && (st = client_certificate(t, can_sign, &sent_cert)) != KL_OK) return st;
    /* ClientKeyExchange: the chip's ECDHE point; the shared secret stays in the chip */
    uint8_t *m = t->hs;
    st = kl_se_tls_client_kx(t->se, m + 5);
    if (st != KL_OK)
        return kl_tls_fail(t, st, KL_AL_INTERNAL_ERROR, "chip ECDHE: %s", kl_status_name(st));
    kl_tls_hs_header(m, KL_HT_CLIENT_KEY_EXCHANGE, 66);
    m[4] = 65;
    if ((st = send_hs(t, 70)) != KL_OK) return st;
    st = kl_se_tls_derive_keys(t->se);
    if (st != KL_OK)
        return kl_tls_fail(t, st, KL_AL_INTERNAL_ERROR, "chip key derivation: %s",
                           kl_status_name(st));
    if (sent_cert) {
        size_t sl = 0;
        st = kl_se_tls_cert_verify(t->se, m + 8, 72, &sl);
        if (st != KL_OK)
            return kl_tls_fail(t, st, KL_AL_INTERNAL_ERROR,
                               "chip could not sign CertificateVerify with key 0x%04X: %s",
                               t->cfg.client_key_id, kl_status_name(st));
        kl_tls_hs_header(m, KL_HT_CERTIFICATE_VERIFY, 4 + sl);
        m[4] = 0x04;
        m[5] = 0x03;
        m[6] = (uint8_t)(sl >> 8);
        m[7] = (uint8_t)sl;
        if ((st = send_hs(t, 8 + sl)) != KL_OK) return st;
        t->client_auth = 1;
    }
    static const uint8_t ccs = 1;
    st = kl_tls_send(t, KL_CT_CCS, &ccs, 1);
    if (st != KL_OK)
        return kl_tls_fail(t, st, -1, "could not send ChangeCipherSpec: %s", kl_status_name(st));
    t->encrypt_write = 1;
    st = kl_se_tls_finished_client(t->se, m + 4);
    if (st != KL_OK)
        return kl_tls_fail(t, st, KL_AL_INTERNAL_ERROR, "chip Finished: %s", kl_status_name(st));
    kl_tls_hs_header(m, KL_HT_FINISHED, 12);
    return send_hs(t, 16);
}

static kl_status server_finish(struct kl_tls *t, uint64_t dl)
{
    uint8_t type;
    const uint8_t *b;
    size_t bl, total;
    kl_status st = next_msg(t, dl, &type, &b, &bl, &total);
    if (st != KL_OK) return st;
    if (type != 0xFF)
        return kl_tls_fail(t, KL_E_PEER, KL_AL_UNEXPECTED_MESSAGE,
                           "server sent handshake message %u before ChangeCipherSpec", type);
    t->encrypt_read = 1;
    st = expect(t, dl, KL_HT_FINISHED, &b, &bl, &total);
    if (st != KL_OK) return st;
    if (bl != 12) return kl_tls_fail(t, KL_E_PEER, KL_AL_DECODE_ERROR, "Finished is not 12 bytes");
    st = kl_se_tls_finished_server(t->se, b);
    if (st == KL_E_VERIFY_FAILED)
        return kl_tls_fail(t, st, KL_AL_DECRYPT_ERROR,
                           "server Finished does not match: the handshake was tampered with");
    if (st != KL_OK)
        return kl_tls_fail(t, st, KL_AL_INTERNAL_ERROR, "chip Finished check: %s",
                           kl_status_name(st));
    consume(t, total);
    if (t->hs_len)
        return kl_tls_fail(t, KL_E_PEER, KL_AL_UNEXPECTED_MESSAGE,
                           "server sent handshake data after Finished");
    return KL_OK;
}

kl_status kl_tls_handshake(struct kl_tls *t)
{
    if (!t) return KL_E_ARG;
    if (t->phase != KL_TLS_IDLE) return KL_E_STATE;
    t->phase = KL_TLS_HANDSHAKE;
    uint64_t dl = kl_tls_now_ms(t) + t->cfg.timeout_ms;
    struct kl_tls_offer o = {t->cfg.server_name, t->cfg.alpn,     t->cfg.alpn_n,
                             t->cfg.suites,      t->cfg.suites_n, t->cfg.no_mfl};
    uint8_t random[32];
    uint16_t key = t->cfg.client_key_id ? t->cfg.client_key_id : KL_SE_TLS_NO_KEY;
    kl_status st =
        kl_se_tls_start(t->se, t->cfg.root_id, key, t->clock.unix_seconds(t->clock.ctx), random);
    if (st != KL_OK)
        return kl_tls_fail(t, st, -1, "chip could not start a TLS session (root 0x%04X): %s",
                           t->cfg.root_id, kl_status_name(st));
    t->chip_session = 1;
    size_t n = 0;
    st = kl_tls_build_client_hello(&o, random, t->hs, t->hs_cap, &n);
    if (st != KL_OK) return kl_tls_fail(t, st, -1, "cannot build ClientHello");
    if ((st = send_hs(t, n)) != KL_OK) return st;
    if ((st = server_hello(t, &o, dl)) != KL_OK) return st;
    if ((st = certificate(t, dl)) != KL_OK) return st;
    if ((st = server_key_exchange(t, dl)) != KL_OK) return st;
    int asked, can_sign;
    if ((st = server_done(t, dl, &asked, &can_sign)) != KL_OK) return st;
    if ((st = client_flight(t, asked, can_sign)) != KL_OK) return st;
    if ((st = server_finish(t, dl)) != KL_OK) return st;
    t->phase = KL_TLS_OPEN;
    return KL_OK;
}

kl_status kl_tls_write(struct kl_tls *t, const uint8_t *data, size_t n)
{
    if (!t || (!data && n)) return KL_E_ARG;
    if (t->phase != KL_TLS_OPEN) return KL_E_STATE;
    if (n == 0) return KL_OK;
    kl_status st = kl_tls_send(t, KL_CT_APPDATA, data, n);
    if (st != KL_OK)
        return kl_tls_fail(t, st, -1, "could not send application data: %s", kl_status_name(st));
    return KL_OK;
}

/* A handshake message after the handshake: HelloRequest is refused politely, anything
 * else ends the connection. */
static kl_status post_handshake(struct kl_tls *t, const uint8_t *f, size_t n)
{
    if (n > t->hs_cap - t->hs_len)
        return kl_tls_fail(t, KL_E_PEER, KL_AL_INTERNAL_ERROR, "handshake data too large");
    memcpy(t->hs + t->hs_len, f, n);
    t->hs_len += n;
    uint8_t type;
    const uint8_t *b;
    size_t bl, total;
    while (kl_tls_next_handshake(t->hs, t->hs_len, &type, &b, &bl, &total) == KL_OK) {
        if (type != KL_HT_HELLO_REQUEST || bl != 0)
            return kl_tls_fail(t, KL_E_PEER, KL_AL_UNEXPECTED_MESSAGE,
                               "server sent handshake message %u after the handshake", type);
        consume(t, total);
        kl_status st = kl_tls_send_alert(t, 1, KL_AL_NO_RENEGOTIATION);
        if (st != KL_OK) return kl_tls_fail(t, st, -1, "could not refuse renegotiation");
    }
    return KL_OK;
}

kl_status kl_tls_read(struct kl_tls *t, uint8_t *buf, size_t cap, size_t *got, uint32_t timeout_ms)
{
    if (!t || !buf || !got || cap == 0) return KL_E_ARG;
    *got = 0;
    if (t->phase == KL_TLS_CLOSED) return KL_E_CLOSED;
    if (t->phase != KL_TLS_OPEN) return KL_E_STATE;
    uint64_t dl = kl_tls_now_ms(t) + timeout_ms;
    while (!t->app_len) {
        uint8_t ct;
        uint8_t *f;
        size_t n;
        kl_status st = kl_tls_read_record(t, dl, &ct, &f, &n);
        if (st != KL_OK) return st;
        if (ct == KL_CT_APPDATA) {
            t->app_off = (size_t)(f - t->rx);
            t->app_len = n;
        } else if (ct == KL_CT_ALERT) {
            st = kl_tls_on_alert(t, f, n);
            if (st != KL_OK) return st;
        } else if (ct == KL_CT_HANDSHAKE) {
            st = post_handshake(t, f, n);
            if (st != KL_OK) return st;
        } else {
            return kl_tls_fail(t, KL_E_PEER, KL_AL_UNEXPECTED_MESSAGE,
                               "server sent ChangeCipherSpec after the handshake");
        }
    }
    size_t k = t->app_len < cap ? t->app_len : cap;
    memcpy(buf, t->rx + t->app_off, k);
    t->app_off += k;
    t->app_len -= k;
    *got = k;
    return KL_OK;
}

int kl_tls_pending(const struct kl_tls *t)
{
    if (!t || t->phase != KL_TLS_OPEN) return 0;
    return t->app_len > 0 || t->rx_len > t->rec_total;
}

kl_status kl_tls_close(struct kl_tls *t)
{
    if (!t) return KL_E_ARG;
    kl_status st = KL_OK;
    if (t->phase == KL_TLS_OPEN) st = kl_tls_send_alert(t, 1, KL_AL_CLOSE_NOTIFY);
    if (t->chip_session) (void)kl_se_tls_end(t->se);
    t->chip_session = 0;
    if (t->phase != KL_TLS_FAILED) t->phase = KL_TLS_CLOSED;
    return st;
}
