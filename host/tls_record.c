/* TLS 1.2 record layer of the client: read whole records from the transport, write
 * records (plain or sealed by the chip), alerts. Internal to host/ (tls_int.h). */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "keylink/se_tls.h"
#include "tls_int.h"

#define REC_HDR 5u
#define MAX_CIPHERTEXT (16384u + 2048u) /* RFC 5246 6.2.3 */

uint64_t kl_tls_now_ms(struct kl_tls *t)
{
    return t->clock.monotonic_ms(t->clock.ctx);
}

kl_status kl_tls_fail(struct kl_tls *t, kl_status st, int alert, const char *fmt, ...)
{
    if (t->phase == KL_TLS_FAILED) return st; /* keep the first reason */
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(t->err, sizeof t->err, fmt, ap);
    va_end(ap);
    int link_ok = st != KL_E_IO && st != KL_E_CLOSED && st != KL_E_TIMEOUT;
    if (alert >= 0 && link_ok) {
        t->alert_sent = (uint8_t)alert;
        (void)kl_tls_send_alert(t, 2, (uint8_t)alert);
    }
    if (t->chip_session) {
        (void)kl_se_tls_end(t->se);
        t->chip_session = 0;
    }
    t->phase = KL_TLS_FAILED;
    return st;
}

/* One record out: the header, then the fragment (plain) or what the chip sealed. */
static kl_status send_one(struct kl_tls *t, uint8_t type, const uint8_t *d, size_t n)
{
    size_t used = t->hs_len;
    uint8_t *out = t->hs + used;
    size_t cap = t->hs_cap - used;
    size_t body = n;
    if (t->encrypt_write) {
        if (cap < REC_HDR + n + KL_SE_TLS_RECORD_OVERHEAD) return KL_E_BUFFER;
        kl_status st = kl_se_tls_protect(t->se, type, d, n, out + REC_HDR, cap - REC_HDR, &body);
        if (st != KL_OK) return st;
    } else {
        if (cap < REC_HDR) return KL_E_BUFFER;
    }
    out[0] = type;
    out[1] = 3;
    out[2] = 3;
    out[3] = (uint8_t)(body >> 8);
    out[4] = (uint8_t)body;
    if (t->encrypt_write) return t->tr.send(t->tr.ctx, out, REC_HDR + body);
    kl_status st = t->tr.send(t->tr.ctx, out, REC_HDR);
    if (st == KL_OK && n) st = t->tr.send(t->tr.ctx, d, n);
    return st;
}

kl_status kl_tls_send(struct kl_tls *t, uint8_t type, const uint8_t *d, size_t n)
{
    /* The plaintext of one record: what was agreed with the server, what the chip seals
     * in one command, and what fits after anything already in the handshake buffer. */
    size_t frag = t->max_frag;
    if (t->encrypt_write) {
        size_t room = t->hs_cap - t->hs_len;
        if (room < REC_HDR + KL_SE_TLS_RECORD_OVERHEAD + 1) return KL_E_BUFFER;
        room -= REC_HDR + KL_SE_TLS_RECORD_OVERHEAD;
        if (frag > room) frag = room;
    }
    if (n == 0) return send_one(t, type, d, 0);
    while (n) {
        size_t k = n < frag ? n : frag;
        kl_status st = send_one(t, type, d, k);
        if (st != KL_OK) return st;
        d += k;
        n -= k;
    }
    return KL_OK;
}

kl_status kl_tls_send_alert(struct kl_tls *t, uint8_t level, uint8_t desc)
{
    uint8_t a[2] = {level, desc};
    return kl_tls_send(t, KL_CT_ALERT, a, 2);
}

/* Drops the record handed out by the last kl_tls_read_record. */
static void drop_record(struct kl_tls *t)
{
    if (!t->rec_total) return;
    memmove(t->rx, t->rx + t->rec_total, t->rx_len - t->rec_total);
    t->rx_len -= t->rec_total;
    t->rec_total = 0;
}

static kl_status fill(struct kl_tls *t, size_t want, uint64_t deadline)
{
    while (t->rx_len < want) {
        /* at least one attempt, so a zero timeout polls what is there */
        uint64_t now = kl_tls_now_ms(t);
        uint64_t left = deadline > now ? deadline - now : 0;
        size_t got = 0;
        kl_status st = t->tr.recv(t->tr.ctx, t->rx + t->rx_len, t->rx_cap - t->rx_len, &got,
                                  left > 0xFFFFFFFFu ? 0xFFFFFFFFu : (uint32_t)left);
        if (st != KL_OK) return st;
        if (got == 0 || got > t->rx_cap - t->rx_len) return KL_E_IO;
        t->rx_len += got;
    }
    return KL_OK;
}

kl_status kl_tls_read_record(struct kl_tls *t, uint64_t deadline, uint8_t *type, uint8_t **frag,
                             size_t *len)
{
    drop_record(t);
    t->app_len = 0;
    /* A timeout is not an error here: a partial record stays in rx for the next call
     * (the handshake turns a timeout into a failure itself). */
    kl_status st = fill(t, REC_HDR, deadline);
    if (st == KL_E_TIMEOUT) return st;
    if (st != KL_OK)
        return kl_tls_fail(t, st, -1, "network: %s while reading a record", kl_status_name(st));
    uint8_t ct = t->rx[0];
    size_t n = ((size_t)t->rx[3] << 8) | t->rx[4];
    if (ct < KL_CT_CCS || ct > KL_CT_APPDATA)
        return kl_tls_fail(t, KL_E_PEER, KL_AL_UNEXPECTED_MESSAGE,
                           "server sent a record of unknown type %u", ct);
    if (t->rx[1] != 3)
        return kl_tls_fail(t, KL_E_PEER, KL_AL_PROTOCOL_VERSION,
                           "server record is not TLS (version %u.%u)", t->rx[1], t->rx[2]);
    if (n > MAX_CIPHERTEXT || REC_HDR + n > t->rx_cap)
        return kl_tls_fail(t, KL_E_PEER, KL_AL_RECORD_OVERFLOW,
                           "server record of %zu bytes exceeds the receive buffer", n);
    if (t->encrypt_read) {
        if (n < KL_SE_TLS_RECORD_OVERHEAD)
            return kl_tls_fail(t, KL_E_PEER, KL_AL_DECODE_ERROR, "sealed record too short");
        size_t plain = n - KL_SE_TLS_RECORD_OVERHEAD;
        if (plain > 16384u || (t->mfl && plain > KL_TLS_MFL))
            return kl_tls_fail(t, KL_E_PEER, KL_AL_RECORD_OVERFLOW,
                               "server record with %zu bytes of plaintext breaks the limit "
                               "agreed (max_fragment_length) or TLS's own",
                               plain);
    } else if (t->mfl && n > KL_TLS_MFL) {
        return kl_tls_fail(t, KL_E_PEER, KL_AL_RECORD_OVERFLOW,
                           "server record of %zu bytes breaks max_fragment_length", n);
    }
    st = fill(t, REC_HDR + n, deadline);
    if (st == KL_E_TIMEOUT) return st;
    if (st != KL_OK)
        return kl_tls_fail(t, st, -1, "network: %s inside a record", kl_status_name(st));
    t->rec_total = REC_HDR + n;
    uint8_t *f = t->rx + REC_HDR;
    if (t->encrypt_read) {
        size_t plain = 0;
        /* a record bigger than one chip command goes through in pieces */
        if (n - KL_SE_TLS_RECORD_OVERHEAD <= KL_TLS_CHIP_FRAGMENT)
            st = kl_se_tls_unprotect(t->se, ct, f, n, f, n, &plain);
        else
            st = kl_se_tls_unprotect_large(t->se, ct, f, n, f, n, &plain);
        if (st == KL_E_BAD_TAG)
            return kl_tls_fail(t, KL_E_BAD_TAG, KL_AL_BAD_RECORD_MAC,
                               "a server record failed authentication in the chip");
        if (st != KL_OK)
            return kl_tls_fail(t, st, KL_AL_INTERNAL_ERROR, "chip could not open a record: %s",
                               kl_status_name(st));
        n = plain;
    }
    if (n == 0 && ct != KL_CT_APPDATA)
        return kl_tls_fail(t, KL_E_PEER, KL_AL_DECODE_ERROR, "empty record of type %u", ct);
    *type = ct;
    *frag = f;
    *len = n;
    return KL_OK;
}

kl_status kl_tls_on_alert(struct kl_tls *t, const uint8_t *f, size_t n)
{
    if (n != 2)
        return kl_tls_fail(t, KL_E_PEER, KL_AL_DECODE_ERROR, "alert record of %zu bytes", n);
    t->alert_recv = f[1];
    if (f[1] == KL_AL_CLOSE_NOTIFY) {
        if (t->phase == KL_TLS_OPEN) {
            (void)kl_tls_send_alert(t, 1, KL_AL_CLOSE_NOTIFY);
            if (t->chip_session) (void)kl_se_tls_end(t->se);
            t->chip_session = 0;
            t->phase = KL_TLS_CLOSED;
            snprintf(t->err, sizeof t->err, "server closed the connection (close_notify)");
            return KL_E_CLOSED;
        }
        return kl_tls_fail(t, KL_E_CLOSED, -1, "server closed the connection during handshake");
    }
    /* the warnings a peer sends and goes on after (RFC 6066, RFC 5246 7.2.2) */
    if (f[0] == 1 && (f[1] == 112 /* unrecognized_name */ || f[1] == 90 /* user_canceled */))
        return KL_OK;
    return kl_tls_fail(t, KL_E_REFUSED, -1, "server sent alert %s (%u)", kl_tls_alert_name(f[1]),
                       f[1]);
}
