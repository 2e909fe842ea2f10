/* Connections after the record layer hand-off (tls_record.h): the switch away from OpenSSL
 * once the handshake is done, reading and opening records from the socket, sealing and
 * writing, alerts. An idle handed-off connection holds its keys and counters only: no
 * OpenSSL object, no buffers (a partial record or unsent records are held only while they
 * exist). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <openssl/crypto.h>

#include "dataplane.h"

#define LVL_WARNING 1
#define LVL_FATAL 2
/* as OpenSSL: a peer may not keep a connection busy with records that carry nothing */
#define MAX_EMPTY_RECORDS 32
#define MAX_WARNING_ALERTS 5

void kl_conn_handoff(struct kl_dp *dp, struct kl_conn *c)
{
    if (dp->tls_records_openssl || !c->ssl) return;
    if (kl_trec_from_ssl(&c->trec, c->ssl)) return; /* this session stays with OpenSSL */
    X509 *peer = SSL_get0_peer_certificate(c->ssl);
    if (peer) {
        c->peer_cert = 1;
        if (!c->tls_p && !c->tls_fail) {
            /* a resumed session skipped the verify callback; the SSL object (and with it
             * the certificate) is about to go, so the registry answers now */
            c->auth_epoch = atomic_load(&dp->auth_epoch);
            c->tls_fail = kl_auth_certificate(dp, peer, 1, &c->tls_p);
        }
    }
    SSL_free(c->ssl); /* SSL_set_fd's BIO does not own the socket */
    c->ssl = NULL;
    atomic_fetch_add(&dp->m.tls_handoffs, 1);
}

static const char *who(const struct kl_conn *c)
{
    return c->client_id[0] ? c->client_id : c->ip;
}

/* One alert, best effort; after a fatal one (either way) nothing more is sent. */
static void send_alert(struct kl_worker *w, struct kl_conn *c, uint8_t level, uint8_t desc)
{
    if (c->tls_done) return;
    c->tls_done = 1;
    /* in the middle of a record the peer would read garbage: then only the close tells */
    if (c->tpend_off < c->tpend_len) return;
    uint8_t a[2] = {level, desc}, rec[2 + KL_TREC_OVERHEAD];
    size_t n = kl_trec_seal(&c->trec, &w->trx, KL_TREC_ALERT, a, sizeof a, rec);
    if (n) {
        ssize_t r = send(c->fd, rec, n, MSG_NOSIGNAL | MSG_DONTWAIT);
        (void)r;
    }
}

/* Sends a sealed record after what is already waiting (or at once). -1 when c must go. */
static int queue_sealed(struct kl_conn *c, const uint8_t *rec, size_t n)
{
    size_t left = c->tpend_len - c->tpend_off;
    if (!left) {
        ssize_t r = send(c->fd, rec, n, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (r < 0 && errno != EAGAIN && errno != EINTR) return -1;
        if (r < 0) r = 0;
        rec += r;
        n -= (size_t)r;
        if (!n) return 0;
    }
    if (left + n > KL_DP_WBUF_MAX) return -1; /* a peer that asks but does not read */
    uint8_t *nb = malloc(left + n);
    if (!nb) return -1;
    if (left) memcpy(nb, c->tpend + c->tpend_off, left);
    memcpy(nb + left, rec, n);
    free(c->tpend);
    c->tpend = nb;
    c->tpend_len = (uint32_t)(left + n);
    c->tpend_off = 0;
    return 0;
}

/* A TLS 1.3 KeyUpdate from the client: its key moves on; when it asks, ours does too, after
 * a KeyUpdate sealed with the old key. -1 when c must go. */
static int key_update(struct kl_worker *w, struct kl_conn *c, const uint8_t *msg, size_t n)
{
    int k = kl_trec_key_update(&c->trec, msg, n);
    if (k < 0) {
        kl_dp_log("%s: TLS 1.3 post-handshake message refused (alert %d)", who(c), -k);
        send_alert(w, c, LVL_FATAL, (uint8_t)-k);
        return -1;
    }
    if (k == 1) {
        uint8_t rec[KL_TREC_KEY_UPDATE_LEN + KL_TREC_OVERHEAD];
        size_t rn = kl_trec_seal(&c->trec, &w->trx, KL_TREC_HANDSHAKE, KL_TREC_KEY_UPDATE_MSG,
                                 KL_TREC_KEY_UPDATE_LEN, rec);
        if (!rn || queue_sealed(c, rec, rn) || kl_trec_next_write_key(&c->trec)) return -1;
    }
    return 0;
}

/* Opens and handles the whole records at buf[0..n); *used gets what was consumed. -1 when
 * c must go (an alert was sent or received, or feeding failed). */
static int records(struct kl_worker *w, struct kl_conn *c, uint8_t *buf, size_t n, size_t *used)
{
    struct kl_dp *dp = w->dp;
    size_t off = 0;
    while (off < n) {
        if (c->state == KL_CS_CLOSING) { /* nothing more is read from a closing connection */
            off = n;
            break;
        }
        long rl = kl_trec_record_len(buf + off, n - off);
        if (rl < 0) {
            kl_dp_log("%s: TLS record header refused (alert %ld)", who(c), -rl);
            send_alert(w, c, LVL_FATAL, (uint8_t)-rl);
            return -1;
        }
        if (rl == 0 || (size_t)rl > n - off) break; /* the rest has not arrived */
        uint8_t *pt = NULL;
        size_t pn = 0;
        int type = kl_trec_open(&c->trec, &w->trx, buf + off, (size_t)rl, &pt, &pn);
        off += (size_t)rl;
        if (type < 0) {
            kl_dp_log("%s: TLS record refused (alert %d)", who(c), -type);
            send_alert(w, c, LVL_FATAL, (uint8_t)-type);
            return -1;
        }
        switch (type) {
        case KL_TREC_APPDATA:
            if (!pn) {
                if (++c->trec_empty > MAX_EMPTY_RECORDS) {
                    kl_dp_log("%s: too many empty TLS records", who(c));
                    send_alert(w, c, LVL_FATAL, KL_TREC_AD_UNEXPECTED_MESSAGE);
                    return -1;
                }
                break;
            }
            c->trec_empty = c->trec_warns = 0;
            atomic_fetch_add_explicit(&dp->m.bytes_in, (long)pn, memory_order_relaxed);
            if (kl_conn_feed(w, c, pt, pn)) return -1;
            break;
        case KL_TREC_ALERT:
            if (pn != 2 || (pt[0] != LVL_WARNING && pt[0] != LVL_FATAL)) {
                send_alert(w, c, LVL_FATAL, KL_TREC_AD_DECODE_ERROR);
                return -1;
            }
            /* close_notify is answered with ours (kl_trec_conn_end) */
            if (pt[1] == KL_TREC_AD_CLOSE_NOTIFY) return -1;
            /* TLS 1.3: every alert but user_canceled is fatal, whatever its level says */
            if (c->trec.tls13 ? pt[1] != KL_TREC_AD_USER_CANCELED : pt[0] == LVL_FATAL) {
                c->tls_done = 1;
                return -1;
            }
            /* other warnings (user_canceled, ...) are ignored, as OpenSSL does, a few */
            if (++c->trec_warns >= MAX_WARNING_ALERTS) {
                send_alert(w, c, LVL_FATAL, KL_TREC_AD_UNEXPECTED_MESSAGE);
                return -1;
            }
            break;
        case KL_TREC_HANDSHAKE:
            if (c->trec.tls13) { /* the only message a client may send now: KeyUpdate */
                if (key_update(w, c, pt, pn)) return -1;
                break;
            }
            /* a ClientHello on an established connection: renegotiation, never done */
            kl_dp_log("%s: TLS renegotiation refused", who(c));
            send_alert(w, c, LVL_WARNING, KL_TREC_AD_NO_RENEGOTIATION);
            return -1;
        default:
            send_alert(w, c, LVL_FATAL, KL_TREC_AD_UNEXPECTED_MESSAGE);
            return -1;
        }
    }
    *used = off;
    return 0;
}

int kl_trec_conn_read(struct kl_worker *w, struct kl_conn *c)
{
    /* a bounded number of reads per wake-up; level-triggered epoll reports the rest */
    for (int round = 0; round < 8; round++) {
        if (c->state == KL_CS_CLOSING) return 0;
        size_t have = c->thold_len, room = w->scratch_cap - have;
        if (have) memcpy(w->scratch, c->thold, have);
        ssize_t r = recv(c->fd, w->scratch + have, room, 0);
        if (r < 0 && (errno == EAGAIN || errno == EINTR)) {
            OPENSSL_cleanse(w->scratch, have);
            return 0;
        }
        if (r <= 0) return -1; /* closed (without close_notify) or reset */
        free(c->thold);
        c->thold = NULL;
        c->thold_len = 0;
        size_t n = have + (size_t)r, used = 0;
        int rc = records(w, c, w->scratch, n, &used);
        if (!rc && used < n && c->state != KL_CS_CLOSING) {
            /* the start of a record: at most one record's worth, checked by its header */
            c->thold = malloc(n - used);
            if (!c->thold)
                rc = -1;
            else {
                memcpy(c->thold, w->scratch + used, n - used);
                c->thold_len = (uint32_t)(n - used);
            }
        }
        OPENSSL_cleanse(w->scratch, n); /* plaintext does not outlive its use */
        if (rc) return -1;
        if ((size_t)r < room) return 0; /* the socket is empty */
    }
    return 0;
}

long kl_trec_conn_write(struct kl_worker *w, struct kl_conn *c, const uint8_t *p, size_t n)
{
    if (c->tls_done) return -1;
    if (c->tpend_off < c->tpend_len) {
        ssize_t r = send(c->fd, c->tpend + c->tpend_off, c->tpend_len - c->tpend_off, MSG_NOSIGNAL);
        if (r < 0) return errno == EAGAIN || errno == EINTR ? 0 : -1;
        c->tpend_off += (uint32_t)r;
        if (c->tpend_off < c->tpend_len) return 0;
        free(c->tpend);
        c->tpend = NULL;
        c->tpend_len = c->tpend_off = 0;
    }
    /* as many records as fit the worker's buffer, sent with one call */
    size_t frag = c->trec.max_frag, used = 0, len = 0;
    while (used < n && len + frag + KL_TREC_OVERHEAD <= w->seal_cap) {
        size_t k = n - used < frag ? n - used : frag;
        size_t s = kl_trec_seal(&c->trec, &w->trx, KL_TREC_APPDATA, p + used, k, w->seal + len);
        if (!s) return -1;
        len += s;
        used += k;
    }
    if (!len) return 0;
    ssize_t r = send(c->fd, w->seal, len, MSG_NOSIGNAL);
    if (r < 0) {
        if (errno != EAGAIN && errno != EINTR) return -1;
        r = 0;
    }
    if ((size_t)r < len) { /* sealed is sent: the rest waits for the socket */
        c->tpend = malloc(len - (size_t)r);
        if (!c->tpend) return -1;
        memcpy(c->tpend, w->seal + r, len - (size_t)r);
        c->tpend_len = (uint32_t)(len - (size_t)r);
        c->tpend_off = 0;
    }
    return (long)used;
}

void kl_trec_conn_end(struct kl_worker *w, struct kl_conn *c)
{
    if (c->trec.key_len && c->state != KL_CS_TLS)
        send_alert(w, c, LVL_WARNING, KL_TREC_AD_CLOSE_NOTIFY);
    kl_trec_wipe(&c->trec); /* also TLS 1.3 secrets of a connection that stayed with OpenSSL */
    free(c->thold);
    free(c->tpend);
    c->thold = c->tpend = NULL;
    c->thold_len = c->tpend_len = c->tpend_off = 0;
}
