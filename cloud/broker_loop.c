/* The data plane's workers: one epoll loop per thread, all waiting on the same listening
 * sockets (EPOLLEXCLUSIVE wakes one of them per new connection),
 * nonblocking TLS (or plain TCP on the development listener), framing, deadlines and the
 * mailbox other threads use to wake a connection. Also kl_dp_start / kl_dp_stop. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>

#include "dataplane.h"
#include "policy.h"

/* room for a held partial record (< KL_TREC_MAX_RECORD) and a good read after it */
#define SCRATCH (64 * 1024)
#define SEAL_BUF (64 * 1024)
#define TICK_MS 200

int64_t kl_dp_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t kl_dp_wall(void)
{
    return (int64_t)time(NULL);
}

void kl_dp_log(const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    /* client ids and topics come from the network: no control characters in the log */
    for (char *p = line; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f) *p = '?';
    fprintf(stderr, "keylinkd: dp: %s\n", line);
}

static void ep_mod(struct kl_conn *c)
{
    struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP | (c->epout ? EPOLLOUT : 0),
                             .data.ptr = c};
    epoll_ctl(c->w->ep, EPOLL_CTL_MOD, c->fd, &ev);
}

static void conn_free(struct kl_worker *w, struct kl_conn *c)
{
    struct kl_dp *dp = w->dp;
    kl_conn_gone(dp, c, c->graceful);
    pthread_mutex_lock(&w->mb_lock);
    if (c->in_mb) {
        if (c->mb_prev)
            c->mb_prev->mb_next = c->mb_next;
        else
            w->mb_head = c->mb_next;
        if (c->mb_next) c->mb_next->mb_prev = c->mb_prev;
        c->in_mb = 0;
    }
    pthread_mutex_unlock(&w->mb_lock);
    epoll_ctl(w->ep, EPOLL_CTL_DEL, c->fd, NULL);
    if (c->ssl) {
        if (c->state != KL_CS_TLS) SSL_shutdown(c->ssl); /* best effort close_notify */
        SSL_free(c->ssl);
    }
    kl_trec_conn_end(w, c);
    close(c->fd);
    if (c->prev)
        c->prev->next = c->next;
    else
        w->conns = c->next;
    if (c->next) c->next->prev = c->prev;
    w->nconns--;
    if (c->tls_p) kl_principal_unref(c->tls_p);
    if (c->principal) kl_principal_unref(c->principal);
    free(c->rbuf);
    free(c->out.p);
    free(c->pending);
    if (c->client_id != c->cid_small) free(c->client_id);
    OPENSSL_cleanse(c->nonce, sizeof c->nonce);
    /* the rest of this epoll batch may still name c (the mailbox can close a connection
     * whose own event comes later in the batch): it is freed once the batch is done */
    c->dead = 1;
    c->prev = NULL;
    c->next = w->dead;
    w->dead = c;
    atomic_fetch_sub(&dp->m.conns, 1);
}

static void reap(struct kl_worker *w)
{
    while (w->dead) {
        struct kl_conn *c = w->dead;
        w->dead = c->next;
        free(c);
    }
}

void kl_conn_close(struct kl_conn *c, int rc, const char *why)
{
    if (c->state == KL_CS_CLOSING) return;
    if (rc >= 0x80 && !c->disc_rc) c->disc_rc = (uint8_t)rc;
    if (rc >= 0x80 && c->version == 5 && c->state == KL_CS_ONLINE)
        kl_mqtt_send_disconnect(&c->out, (uint8_t)rc, why);
    c->state = KL_CS_CLOSING;
    c->deadline_ms = kl_dp_now_ms() + 2000; /* time to flush, then closed anyway */
}

/* Hands p[0..n) to TLS (OpenSSL or the handed-off records) or the plain socket. Returns the
 * bytes taken, 0 when the socket is full, -1 when c must go. */
static long conn_send(struct kl_worker *w, struct kl_conn *c, const uint8_t *p, size_t n)
{
    if (c->ssl) {
        ERR_clear_error();
        int k = SSL_write(c->ssl, p, n > INT32_MAX ? INT32_MAX : (int)n);
        if (k > 0) return k;
        int e = SSL_get_error(c->ssl, k);
        return e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ ? 0 : -1;
    }
    if (c->trec.key_len) return kl_trec_conn_write(w, c, p, n);
    ssize_t r = send(c->fd, p, n, MSG_NOSIGNAL);
    if (r < 0) return errno == EAGAIN || errno == EINTR ? 0 : -1;
    return r;
}

/* Writes pending output; 0 ok, -1 when the connection is gone (freed). */
static int flush(struct kl_worker *w, struct kl_conn *c)
{
    if (c->out.oom || c->out.len - c->out_off > KL_DP_WBUF_MAX) {
        kl_dp_log("client %s: output buffer over its limit, dropping", c->client_id);
        conn_free(w, c);
        return -1;
    }
    int rounds = 0;
again:
    while (c->out_off < c->out.len) {
        long n = conn_send(w, c, c->out.p + c->out_off, c->out.len - c->out_off);
        if (n < 0) {
            conn_free(w, c);
            return -1;
        }
        if (!n) break;
        c->out_off += (size_t)n;
        atomic_fetch_add_explicit(&w->dp->m.bytes_out, n, memory_order_relaxed);
    }
    /* records sealed earlier that the socket did not take */
    if (c->out_off == c->out.len && c->tpend_off < c->tpend_len &&
        kl_trec_conn_write(w, c, NULL, 0) < 0) {
        conn_free(w, c);
        return -1;
    }
    int want = c->out_off < c->out.len || c->tpend_off < c->tpend_len;
    if (!want && c->pump_more && c->state == KL_CS_ONLINE) {
        /* the socket took everything: move more of the session's queue out */
        c->pump_more = 0;
        c->out.len = c->out_off = 0;
        if (++rounds > 16) {
            kl_conn_wake(c); /* let the other connections of this worker have a turn */
        } else {
            kl_pump(w->dp, c);
            if (c->out.len) goto again;
        }
    }
    if (!want) {
        /* idle connections keep no output buffer: it goes back to the worker for the next
         * connection that has something to say (no malloc per message) */
        if (!w->spare.p && !c->out.oom && c->out.cap <= 2 * KL_DP_WBUF_PUMP) {
            w->spare = c->out;
            w->spare.len = 0;
        } else {
            free(c->out.p);
        }
        memset(&c->out, 0, sizeof c->out);
        c->out_off = 0;
        if (c->state == KL_CS_CLOSING) {
            conn_free(w, c);
            return -1;
        }
    }
    if (want != c->epout) {
        c->epout = (uint8_t)want;
        ep_mod(c);
    }
    return 0;
}

/* Handles the whole packets at the start of buf; returns the bytes used. Closes c on a bad
 * or oversized header. */
static size_t packets(struct kl_dp *dp, struct kl_conn *c, const uint8_t *buf, size_t len)
{
    size_t off = 0;
    while (c->state != KL_CS_CLOSING) {
        uint8_t tf;
        size_t bo, bl;
        int r = kl_mqtt_frame(buf + off, len - off, &tf, &bo, &bl);
        if (r < 0) {
            kl_conn_close(c, KL_RC_MALFORMED, "bad remaining length");
            break;
        }
        if (bl > dp->max_packet) {
            kl_dp_log("client %s: packet of %zu bytes over the %u limit", c->client_id, bl,
                      dp->max_packet);
            kl_conn_close(c, KL_RC_PACKET_TOO_LARGE, "packet too large");
            break;
        }
        if (!r) break;
        kl_conn_on_packet(dp, c, tf, buf + off + bo, bl);
        off += bo + bl;
    }
    return off;
}

/* Size of the packet starting at b (header included) once its header is complete, else 0. */
static size_t packet_total(const uint8_t *b, size_t n)
{
    uint8_t tf;
    size_t bo = 0, bl = 0;
    if (kl_mqtt_frame(b, n, &tf, &bo, &bl) < 0 || (!bl && !bo)) return 0;
    return bo ? bo + bl : 0;
}

/* Splits received bytes into packets. A packet split across reads is completed in c->rbuf
 * (which never holds more than one packet, so it stays within the maximum packet size);
 * whole packets are handled straight from the worker's buffer. -1 when c must go. */
int kl_conn_feed(struct kl_worker *w, struct kl_conn *c, const uint8_t *data, size_t n)
{
    struct kl_dp *dp = w->dp;
    while (n && c->state != KL_CS_CLOSING) {
        if (!c->rlen) {
            size_t used = packets(dp, c, data, n);
            data += used;
            n -= used;
            if (!n || c->state == KL_CS_CLOSING) break;
        }
        /* a partial packet: its size once the header is known, else one header byte */
        size_t total = c->rlen ? packet_total(c->rbuf, c->rlen) : packet_total(data, n);
        size_t want = total ? total - c->rlen : 1;
        size_t take = want < n ? want : n;
        size_t cap = total ? total : 8;
        if (cap > c->rcap) {
            uint8_t *nb = realloc(c->rbuf, cap);
            if (!nb) return -1;
            c->rbuf = nb;
            c->rcap = (uint32_t)cap;
        }
        memcpy(c->rbuf + c->rlen, data, take);
        c->rlen += (uint32_t)take;
        data += take;
        n -= take;
        size_t t = packet_total(c->rbuf, c->rlen);
        if (t) { /* complete: handled; oversized: closed; else wait for the rest */
            if (packets(dp, c, c->rbuf, c->rlen) == c->rlen) c->rlen = 0;
        } else if (c->rlen >= 5) {
            kl_conn_close(c, KL_RC_MALFORMED, "bad remaining length");
        }
    }
    if (!c->rlen || c->state == KL_CS_CLOSING) {
        /* idle connections keep no input buffer */
        free(c->rbuf);
        c->rbuf = NULL;
        c->rlen = c->rcap = 0;
    }
    return 0;
}

static void log_tls_failure(struct kl_conn *c)
{
    unsigned long e = ERR_peek_last_error();
    char msg[256] = "connection closed";
    if (e) ERR_error_string_n(e, msg, sizeof msg);
    if (c->tls_fail)
        kl_dp_log("refused %s at TLS: %s", c->ip, kl_auth_fail_name(c->tls_fail));
    else
        kl_dp_log("TLS handshake with %s failed: %s", c->ip, msg);
}

/* Lends the worker's spare output buffer to a connection about to be served. */
static void lend(struct kl_worker *w, struct kl_conn *c)
{
    if (!c->out.p && w->spare.p) {
        c->out = w->spare;
        memset(&w->spare, 0, sizeof w->spare);
    }
}

static void conn_io(struct kl_worker *w, struct kl_conn *c, uint32_t events)
{
    struct kl_dp *dp = w->dp;
    lend(w, c);
    if (c->state == KL_CS_TLS) {
        ERR_clear_error();
        int r = SSL_do_handshake(c->ssl);
        if (r != 1) {
            int e = SSL_get_error(c->ssl, r);
            if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
                int want = e == SSL_ERROR_WANT_WRITE;
                if (want != c->epout) {
                    c->epout = (uint8_t)want;
                    ep_mod(c);
                }
                return;
            }
            atomic_fetch_add(&dp->m.tls_failures, 1);
            if (c->tls_fail) atomic_fetch_add(&dp->m.auth_fail[c->tls_fail], 1);
            log_tls_failure(c);
            conn_free(w, c);
            return;
        }
        atomic_fetch_add(&dp->m.tls_handshakes, 1);
        c->state = KL_CS_CONNECT;
        kl_conn_handoff(dp, c); /* c->ssl is NULL from here when the records are ours */
        if (c->epout) {
            c->epout = 0;
            ep_mod(c);
        }
        /* the socket's readiness was the handshake's: read only what TLS already holds */
        events = 0;
    }
    /* An SSL_read that ends in WANT_READ leaves a 16 KiB record buffer allocated until the
     * next record: read only when the socket is readable, and stop once TLS holds nothing
     * more (level-triggered epoll reports what is left in the socket). */
    if ((events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) ||
        (c->ssl && SSL_has_pending(c->ssl))) {
        for (;;) {
            if (c->state == KL_CS_CLOSING) break;
            int n;
            if (!c->ssl && c->trec.key_len) {
                if (kl_trec_conn_read(w, c)) {
                    conn_free(w, c);
                    return;
                }
                break;
            }
            if (c->ssl) {
                ERR_clear_error();
                n = SSL_read(c->ssl, w->scratch, (int)w->scratch_cap);
                if (n <= 0) {
                    int e = SSL_get_error(c->ssl, n);
                    if (e == SSL_ERROR_WANT_READ) break;
                    if (e == SSL_ERROR_WANT_WRITE) {
                        c->epout = 1;
                        ep_mod(c);
                        break;
                    }
                    if (c->tls_fail && c->state == KL_CS_CONNECT) log_tls_failure(c);
                    conn_free(w, c);
                    return;
                }
            } else {
                ssize_t r = recv(c->fd, w->scratch, w->scratch_cap, 0);
                if (r < 0 && (errno == EAGAIN || errno == EINTR)) break;
                if (r <= 0) {
                    conn_free(w, c);
                    return;
                }
                n = (int)r;
            }
            atomic_fetch_add_explicit(&dp->m.bytes_in, n, memory_order_relaxed);
            if (kl_conn_feed(w, c, w->scratch, (size_t)n)) {
                conn_free(w, c);
                return;
            }
            if (c->ssl && !SSL_has_pending(c->ssl)) break;
            if (!c->ssl && (size_t)n < w->scratch_cap) break;
        }
    }
    flush(w, c);
}

static void listeners(struct kl_worker *w, int on)
{
    struct epoll_event ev = {.events = EPOLLIN | EPOLLEXCLUSIVE, .data.ptr = &w->lfd};
    epoll_ctl(w->ep, on ? EPOLL_CTL_ADD : EPOLL_CTL_DEL, w->lfd, &ev);
    if (w->dev_lfd >= 0) {
        ev.data.ptr = &w->dev_lfd;
        epoll_ctl(w->ep, on ? EPOLL_CTL_ADD : EPOLL_CTL_DEL, w->dev_lfd, &ev);
    }
}

static void accept_all(struct kl_worker *w, int lfd, int dev)
{
    struct kl_dp *dp = w->dp;
    /* a bounded batch: what is left wakes another worker (level-triggered) */
    for (int batch = 0; batch < 64; batch++) {
        struct sockaddr_storage sa;
        socklen_t sl = sizeof sa;
        int fd = accept4(lfd, (struct sockaddr *)&sa, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if ((errno == EMFILE || errno == ENFILE) && !w->accept_paused) {
                /* stop listening for a moment instead of spinning on a readable socket */
                kl_dp_log("accept: out of file descriptors, pausing new connections");
                listeners(w, 0);
                w->accept_paused = 1;
            }
            return;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        struct kl_conn *c = calloc(1, sizeof *c);
        if (!c) {
            close(fd);
            continue;
        }
        c->w = w;
        c->client_id = c->cid_small; /* "" */
        c->fd = fd;
        c->dev = (uint8_t)dev;
        c->peer_max_packet = UINT32_MAX;
        if (sa.ss_family == AF_INET)
            inet_ntop(AF_INET, &((struct sockaddr_in *)&sa)->sin_addr, c->ip, sizeof c->ip);
        else if (sa.ss_family == AF_INET6)
            inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&sa)->sin6_addr, c->ip, sizeof c->ip);
        if (!dev) {
            c->ssl = SSL_new(dp->ssl_ctx);
            if (!c->ssl || !SSL_set_fd(c->ssl, fd)) {
                SSL_free(c->ssl);
                close(fd);
                free(c);
                continue;
            }
            SSL_set_app_data(c->ssl, c);
            SSL_set_accept_state(c->ssl);
            c->state = KL_CS_TLS;
        } else {
            c->state = KL_CS_CONNECT;
            atomic_fetch_add(&dp->m.dev_conns, 1);
        }
        c->deadline_ms = kl_dp_now_ms() + dp->connect_timeout_ms;
        struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP, .data.ptr = c};
        if (epoll_ctl(w->ep, EPOLL_CTL_ADD, fd, &ev)) {
            SSL_free(c->ssl);
            close(fd);
            free(c);
            continue;
        }
        c->next = w->conns;
        if (w->conns) w->conns->prev = c;
        w->conns = c;
        w->nconns++;
        atomic_fetch_add(&dp->m.conns, 1);
        atomic_fetch_add(&dp->m.conns_total, 1);
    }
}

static void mailbox(struct kl_worker *w)
{
    uint64_t v;
    ssize_t r = read(w->evfd, &v, sizeof v);
    (void)r;
    for (;;) {
        pthread_mutex_lock(&w->mb_lock);
        struct kl_conn *c = w->mb_head;
        if (c) {
            w->mb_head = c->mb_next;
            if (w->mb_head) w->mb_head->mb_prev = NULL;
            c->in_mb = 0;
        }
        int kill = c ? c->mb_kill : 0;
        uint8_t rc = c ? c->mb_kill_rc : 0;
        if (c) c->mb_kill = 0;
        pthread_mutex_unlock(&w->mb_lock);
        if (!c) break;
        lend(w, c);
        if (kill) {
            if (rc == KL_RC_SESSION_TAKEN_OVER)
                kl_dp_log("client %s: session taken over by a new connection", c->client_id);
            kl_conn_close(c, rc,
                          rc == KL_RC_SESSION_TAKEN_OVER ? "session taken over"
                                                         : "credentials no longer valid");
            /* do not wait long for a slow reader: gone within the next tick or two */
            c->deadline_ms = kl_dp_now_ms() + 300;
        } else {
            kl_pump(w->dp, c);
        }
        flush(w, c);
    }
}

static void tick(struct kl_worker *w, int64_t now)
{
    struct kl_dp *dp = w->dp;
    if (w->accept_paused) {
        w->accept_paused = 0;
        listeners(w, 1);
    }
    for (struct kl_conn *c = w->conns, *nx; c; c = nx) {
        nx = c->next;
        if (!c->deadline_ms || now < c->deadline_ms) continue;
        if (c->state == KL_CS_CLOSING) {
            conn_free(w, c);
        } else if (c->state == KL_CS_ONLINE) {
            atomic_fetch_add(&dp->m.timeouts, 1);
            kl_dp_log("client %s: keep-alive timeout (%us x 1.5)", c->client_id, c->keepalive);
            kl_conn_close(c, KL_RC_KEEPALIVE_TIMEOUT, "keep alive timeout");
            flush(w, c);
        } else {
            atomic_fetch_add(&dp->m.timeouts, 1);
            kl_dp_log("%s: %s timeout after %d ms, dropped", c->ip,
                      c->state == KL_CS_TLS ? "TLS handshake" : "CONNECT", dp->connect_timeout_ms);
            conn_free(w, c);
        }
    }
    if (w->idx == 0) {
        /* a handshake leaves tens of KiB freed behind; once a burst has been over for a
         * second, give the free pages back instead of keeping the peak */
        long hs = atomic_load(&dp->m.tls_handshakes);
        if (hs != w->trim_hs) {
            w->trim_hs = hs;
            w->trim_at = now + 500;
        } else if (w->trim_at && now >= w->trim_at) {
            w->trim_at = 0;
            malloc_trim(0);
        }
    }
    if (w->idx == 0 && now >= w->next_expire) {
        w->next_expire = now + 1000;
        pthread_mutex_lock(&dp->broker.lock);
        kl_sess_expire(dp, now);
        pthread_mutex_unlock(&dp->broker.lock);
    }
}

static void *worker_main(void *arg)
{
    struct kl_worker *w = arg;
    struct kl_dp *dp = w->dp;
    struct epoll_event evs[128];
    w->next_tick = kl_dp_now_ms() + TICK_MS;
    while (!atomic_load(&dp->stop)) {
        int64_t now = kl_dp_now_ms();
        int to = w->next_tick > now ? (int)(w->next_tick - now) : 0;
        int n = epoll_wait(w->ep, evs, 128, to);
        for (int i = 0; i < n; i++) {
            void *p = evs[i].data.ptr;
            if (p == &w->lfd)
                accept_all(w, w->lfd, 0);
            else if (p == &w->dev_lfd)
                accept_all(w, w->dev_lfd, 1);
            else if (p == &w->evfd)
                mailbox(w);
            else if (!((struct kl_conn *)p)->dead)
                conn_io(w, p, evs[i].events);
        }
        now = kl_dp_now_ms();
        if (now >= w->next_tick) {
            tick(w, now);
            w->next_tick = now + TICK_MS;
        }
        reap(w);
    }
    while (w->conns) {
        w->conns->graceful = 1; /* a server shutdown publishes no wills */
        w->conns->disc_rc = KL_RC_SHUTTING_DOWN;
        conn_free(w, w->conns);
    }
    reap(w);
    return NULL;
}

/* A listening socket on host:port; *port gets the bound port. */
static int listen_on(const char *host, int *port, char *why, size_t wn)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *ai = NULL;
    char ps[16];
    snprintf(ps, sizeof ps, "%d", *port);
    if (getaddrinfo(host, ps, &hints, &ai) || !ai) {
        snprintf(why, wn, "cannot resolve %s", host);
        return -1;
    }
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd >= 0) {
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    }
    if (fd < 0 || bind(fd, ai->ai_addr, ai->ai_addrlen) || listen(fd, 4096)) {
        snprintf(why, wn, "cannot listen on %s:%d: %s", host, *port, strerror(errno));
        if (fd >= 0) close(fd);
        freeaddrinfo(ai);
        return -1;
    }
    freeaddrinfo(ai);
    struct sockaddr_storage sa;
    socklen_t sl = sizeof sa;
    getsockname(fd, (struct sockaddr *)&sa, &sl);
    *port = ntohs(sa.ss_family == AF_INET ? ((struct sockaddr_in *)&sa)->sin_port
                                          : ((struct sockaddr_in6 *)&sa)->sin6_port);
    return fd;
}

static int is_loopback(const char *host)
{
    struct in_addr a4;
    struct in6_addr a6;
    if (!strcmp(host, "localhost")) return 1;
    if (inet_pton(AF_INET, host, &a4) == 1) return (ntohl(a4.s_addr) >> 24) == 127;
    if (inet_pton(AF_INET6, host, &a6) == 1) return IN6_IS_ADDR_LOOPBACK(&a6);
    return 0;
}

kl_reg_rc kl_dp_start(struct kl_registry *reg, const struct kl_dp_cfg *cfg, struct kl_dp **out,
                      struct kl_reg_err *err)
{
    int dev = cfg->dev_host && cfg->dev_host[0];
    if (dev && !is_loopback(cfg->dev_host))
        return kl_reg_fail(err, KL_REG_INVALID,
                           "--dev-listener must be a loopback address (127.0.0.0/8, ::1, "
                           "localhost), not %s",
                           cfg->dev_host);
    struct kl_dp *dp = calloc(1, sizeof *dp);
    if (!dp) return kl_reg_fail(err, KL_REG_INTERNAL, "out of memory");
    dp->reg = reg;
    dp->lfd = dp->dev_lfd = -1;
    dp->connect_timeout_ms = cfg->connect_timeout_ms > 0 ? cfg->connect_timeout_ms : 10000;
    dp->max_packet = (uint32_t)(cfg->max_packet ? cfg->max_packet : KL_DP_MAX_PACKET_DEFAULT);
    dp->tls_records_openssl = cfg->tls_records_openssl;
    snprintf(dp->audience, sizeof dp->audience, "%s",
             cfg->audience ? cfg->audience
                           : (cfg->endpoint_address ? cfg->endpoint_address : "localhost"));
    kl_auth_cache_init(&dp->cache);
    if (kl_broker_init(&dp->broker)) {
        free(dp);
        return kl_reg_fail(err, KL_REG_INTERNAL, "out of memory");
    }
    if (cfg->dev_policy) {
        struct kl_reg_policy pol;
        if (kl_reg_policy_get(reg, cfg->dev_policy, &pol, err)) {
            kl_broker_free(&dp->broker);
            free(dp);
            return kl_reg_fail(err, KL_REG_INVALID, "--dev-policy %s: no such policy",
                               cfg->dev_policy);
        }
        dp->dev_docs = calloc(1, sizeof *dp->dev_docs);
        if (dp->dev_docs) {
            dp->dev_docs[0] = kl_policy_compile(pol.document);
            dp->ndev_docs = dp->dev_docs[0] ? 1 : 0; /* unparsable: allows nothing */
        }
        kl_reg_policy_clear(&pol);
    }
    /* 10,000+ connections need more descriptors than the usual soft limit */
    struct rlimit rl;
    if (!getrlimit(RLIMIT_NOFILE, &rl) && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    dp->ssl_ctx = kl_tls_server_ctx(dp, cfg->data_dir, err);
    if (!dp->ssl_ctx) {
        kl_dp_stop(dp);
        return err ? err->rc : KL_REG_INTERNAL;
    }
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    dp->nworkers = cfg->threads > 0 ? cfg->threads : (ncpu > 0 ? (int)ncpu : 1);
    if (dp->nworkers > 64) dp->nworkers = 64;
    dp->workers = calloc((size_t)dp->nworkers, sizeof *dp->workers);
    if (!dp->workers) {
        kl_dp_stop(dp);
        return kl_reg_fail(err, KL_REG_INTERNAL, "out of memory");
    }
    dp->port = cfg->listen_port;
    dp->dev_port = dev ? cfg->dev_port : 0;
    char why[300];
    for (int i = 0; i < dp->nworkers; i++) /* kl_dp_stop closes only what was opened */
        dp->workers[i].lfd = dp->workers[i].dev_lfd = dp->workers[i].ep = dp->workers[i].evfd = -1;
    for (int i = 0; i < dp->nworkers; i++) {
        struct kl_worker *w = &dp->workers[i];
        w->dp = dp;
        w->idx = i;
        w->lfd = w->dev_lfd = w->ep = w->evfd = -1;
        pthread_mutex_init(&w->mb_lock, NULL);
        w->scratch_cap = SCRATCH;
        w->scratch = malloc(SCRATCH);
        w->seal_cap = SEAL_BUF;
        w->seal = malloc(SEAL_BUF);
        w->ep = epoll_create1(EPOLL_CLOEXEC);
        w->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        if (!w->scratch || !w->seal || kl_trec_ctx_init(&w->trx) || w->ep < 0 || w->evfd < 0) {
            kl_dp_stop(dp);
            return kl_reg_fail(err, KL_REG_INTERNAL, "cannot create worker %d", i);
        }
        if (i == 0) {
            /* one socket per listener, shared by the workers (no SO_REUSEPORT: another
             * process cannot bind the same port and take a share of the devices) */
            dp->lfd = listen_on(cfg->listen_host, &dp->port, why, sizeof why);
            if (dp->lfd >= 0 && dev)
                dp->dev_lfd = listen_on(cfg->dev_host, &dp->dev_port, why, sizeof why);
            if (dp->lfd < 0 || (dev && dp->dev_lfd < 0)) {
                kl_dp_stop(dp);
                return kl_reg_fail(err, KL_REG_INTERNAL, "%s", why);
            }
        }
        w->lfd = dp->lfd;
        w->dev_lfd = dp->dev_lfd;
        listeners(w, 1);
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &w->evfd};
        epoll_ctl(w->ep, EPOLL_CTL_ADD, w->evfd, &ev);
    }
    kl_registry_set_hook(reg, kl_auth_on_change, dp);
    for (int i = 0; i < dp->nworkers; i++) {
        if (pthread_create(&dp->workers[i].th, NULL, worker_main, &dp->workers[i])) {
            kl_registry_set_hook(reg, NULL, NULL);
            kl_dp_stop(dp);
            return kl_reg_fail(err, KL_REG_INTERNAL, "cannot start worker threads");
        }
        dp->workers[i].th_started = 1;
    }
    kl_dp_log("MQTT over TLS on %s:%d (%d workers)", cfg->listen_host, dp->port, dp->nworkers);
    if (dev)
        kl_dp_log("development listener (plaintext, no credentials, policy %s) on %s:%d",
                  cfg->dev_policy ? cfg->dev_policy : "allow-all", cfg->dev_host, dp->dev_port);
    *out = dp;
    return KL_REG_OK;
}

int kl_dp_port(const struct kl_dp *dp)
{
    return dp->port;
}

int kl_dp_dev_port(const struct kl_dp *dp)
{
    return dp->dev_port;
}

void kl_dp_stop(struct kl_dp *dp)
{
    if (!dp) return;
    kl_registry_set_hook(dp->reg, NULL, NULL);
    atomic_store(&dp->stop, 1);
    for (int i = 0; dp->workers && i < dp->nworkers; i++) {
        struct kl_worker *w = &dp->workers[i];
        if (w->th_started) {
            uint64_t one = 1;
            ssize_t r = write(w->evfd, &one, sizeof one);
            (void)r;
            pthread_join(w->th, NULL);
        }
    }
    for (int i = 0; dp->workers && i < dp->nworkers; i++) {
        struct kl_worker *w = &dp->workers[i];
        if (w->ep >= 0) close(w->ep);
        if (w->evfd >= 0) close(w->evfd);
        free(w->scratch);
        free(w->seal);
        kl_trec_ctx_free(&w->trx);
        free(w->spare.p);
        pthread_mutex_destroy(&w->mb_lock);
    }
    free(dp->workers);
    if (dp->lfd >= 0) close(dp->lfd);
    if (dp->dev_lfd >= 0) close(dp->dev_lfd);
    kl_broker_free(&dp->broker);
    kl_auth_cache_free(&dp->cache);
    for (size_t i = 0; i < dp->ndev_docs; i++)
        kl_policy_free(dp->dev_docs[i]);
    free(dp->dev_docs);
    SSL_CTX_free(dp->ssl_ctx);
    free(dp);
}
