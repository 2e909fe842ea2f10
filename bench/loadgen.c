/*
 * kl-loadgen: MQTT-over-mutual-TLS load generator for the broker benchmarks (bench/run.sh).
 * One thread, many nonblocking connections on one epoll set; run several processes to use
 * several cores or to hold more connections than one process may open.
 *
 * Every connection does a full TLS 1.2 handshake (no session resumption) with
 * ECDHE-ECDSA-AES128-GCM-SHA256 on P-256 and a client certificate, then MQTT 3.1.1 CONNECT.
 *
 *   kl-loadgen hs   COMMON --conns C --seconds S      handshake + CONNECT + CONNACK, close, again
 *   kl-loadgen idle COMMON --conns N --hold S         open N, print "up N", hold up to S seconds
 *   kl-loadgen pub  COMMON --pubs P --qos Q --size B --seconds S [--window W]
 *                                                     fan-in: P publishers -> 1 subscriber
 *   COMMON: --port P --ca FILE --cert FILE --key FILE [--id PREFIX] [--verify 0|1]
 *
 * Results are one line of key=value pairs on standard output. Traffic goes to 127.0.0.1 only.
 * Every loop is bounded by the --seconds/--hold limit (and a 120 s cap on the ramp up).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#define IN_CAP 16384
#define MAX_PAYLOAD 65536
#define QOS1_INFLIGHT 10 /* per publisher: below both brokers' receive limits */
#define RAMP_CAP_NS (120ll * 1000000000ll)

enum { ST_TCP, ST_TLS, ST_CONNACK, ST_SUBACK, ST_READY, ST_BYE, ST_DEAD };
enum { R_HS, R_IDLE, R_PUB, R_SUB };

struct conn {
    int fd;
    SSL *ssl;
    int state, role, events, idx;
    int64_t t0;
    uint8_t *in;
    size_t inlen;
    uint8_t *out;
    size_t outlen, outcap;
    uint16_t pid;
    int inflight;
};

static struct {
    SSL_CTX *ctx;
    int ep, port, verify;
    const char *id;
    long serial;
    /* results */
    long done, errors, recv, sent, lost;
    int64_t *lat; /* ns samples */
    size_t nlat, latcap;
    int qos;
    size_t size;
    char topic_buf[64];
} G;

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000ll + ts.tv_nsec;
}

static void die(const char *m)
{
    fprintf(stderr, "kl-loadgen: %s\n", m);
    ERR_print_errors_fp(stderr);
    exit(1);
}

static void lat_add(int64_t ns)
{
    if (G.nlat == G.latcap) {
        size_t cap = G.latcap ? G.latcap * 2 : 65536;
        if (cap > (1u << 24)) return; /* enough samples for a percentile */
        int64_t *p = realloc(G.lat, cap * sizeof *p);
        if (!p) return;
        G.lat = p;
        G.latcap = cap;
    }
    G.lat[G.nlat++] = ns;
}

static int cmp64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static double pct(double p)
{
    if (!G.nlat) return 0;
    size_t i = (size_t)(p * (double)(G.nlat - 1) + 0.5);
    return (double)G.lat[i] / 1000.0; /* microseconds */
}

static void out_put(struct conn *c, const void *p, size_t n)
{
    if (c->outlen + n > c->outcap) {
        size_t cap = c->outcap ? c->outcap : 256;
        while (cap < c->outlen + n)
            cap *= 2;
        uint8_t *q = realloc(c->out, cap);
        if (!q) die("out of memory");
        c->out = q;
        c->outcap = cap;
    }
    memcpy(c->out + c->outlen, p, n);
    c->outlen += n;
}

/* MQTT fixed header: type byte + remaining length varint. */
static void mq_hdr(struct conn *c, uint8_t type, size_t rl)
{
    uint8_t h[5];
    size_t n = 0;
    h[n++] = type;
    do {
        uint8_t d = rl % 128;
        rl /= 128;
        h[n++] = d | (rl ? 0x80 : 0);
    } while (rl);
    out_put(c, h, n);
}

static void mq_str(struct conn *c, const char *s, size_t n)
{
    uint8_t l[2] = {(uint8_t)(n >> 8), (uint8_t)n};
    out_put(c, l, 2);
    out_put(c, s, n);
}

static void mq_connect(struct conn *c)
{
    char cid[96];
    int n = snprintf(cid, sizeof cid, "%s-%d-%ld", G.id, (int)getpid(), G.serial++);
    static const uint8_t vh[] = {0, 4, 'M', 'Q', 'T', 'T', 4, 0x02, 0x03, 0xE8}; /* ka 1000 s */
    mq_hdr(c, 0x10, sizeof vh + 2 + (size_t)n);
    out_put(c, vh, sizeof vh);
    mq_str(c, cid, (size_t)n);
}

static void mq_subscribe(struct conn *c, const char *filter, int qos)
{
    size_t fl = strlen(filter);
    mq_hdr(c, 0x82, 2 + 2 + fl + 1);
    uint8_t pid[2] = {0, 1};
    out_put(c, pid, 2);
    mq_str(c, filter, fl);
    uint8_t q = (uint8_t)qos;
    out_put(c, &q, 1);
}

static void mq_publish(struct conn *c)
{
    static uint8_t payload[MAX_PAYLOAD];
    char topic[32];
    int tl = snprintf(topic, sizeof topic, "bench/%d", c->idx);
    size_t rl = 2 + (size_t)tl + (G.qos ? 2 : 0) + G.size;
    mq_hdr(c, G.qos ? 0x32 : 0x30, rl);
    mq_str(c, topic, (size_t)tl);
    if (G.qos) {
        if (++c->pid == 0) c->pid = 1;
        uint8_t p[2] = {(uint8_t)(c->pid >> 8), (uint8_t)c->pid};
        out_put(c, p, 2);
        c->inflight++;
    }
    int64_t t = now_ns();
    memcpy(payload, &t, sizeof t);
    out_put(c, payload, G.size);
    G.sent++;
}

static void set_events(struct conn *c, int ev)
{
    if (c->events == ev) return;
    struct epoll_event e = {.events = (uint32_t)ev, .data.ptr = c};
    if (epoll_ctl(G.ep, EPOLL_CTL_MOD, c->fd, &e)) die("epoll_ctl");
    c->events = ev;
}

static void conn_free(struct conn *c)
{
    if (c->ssl) SSL_free(c->ssl);
    if (c->fd >= 0) close(c->fd); /* closing removes it from the epoll set */
    free(c->in);
    free(c->out);
    free(c);
}

static struct conn *conn_new(int role, int idx)
{
    struct conn *c = calloc(1, sizeof *c);
    if (!c) die("out of memory");
    c->role = role;
    c->idx = idx;
    c->in = malloc(IN_CAP);
    if (!c->in) die("out of memory");
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0) die("socket (raise the open files limit)");
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    /* reset on close: thousands of handshakes a second would otherwise fill TIME_WAIT */
    struct linger lg = {1, 0};
    setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)G.port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    c->t0 = now_ns();
    if (connect(c->fd, (struct sockaddr *)&sa, sizeof sa) && errno != EINPROGRESS) die("connect");
    c->state = ST_TCP;
    c->events = EPOLLOUT;
    struct epoll_event e = {.events = EPOLLOUT, .data.ptr = c};
    if (epoll_ctl(G.ep, EPOLL_CTL_ADD, c->fd, &e)) die("epoll_ctl add");
    return c;
}

/* Flushes c->out; 0 ok (maybe partial), -1 dead. */
static int flush(struct conn *c)
{
    size_t off = 0;
    while (off < c->outlen) {
        int n = SSL_write(c->ssl, c->out + off, (int)(c->outlen - off));
        if (n <= 0) {
            int e = SSL_get_error(c->ssl, n);
            if (e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ) break;
            return -1;
        }
        off += (size_t)n;
    }
    memmove(c->out, c->out + off, c->outlen - off);
    c->outlen -= off;
    return 0;
}

/* One whole MQTT packet from the broker. -1 = protocol failure. */
static int on_packet(struct conn *c, uint8_t tf, const uint8_t *b, size_t n)
{
    switch (tf >> 4) {
    case 2: /* CONNACK */
        if (c->state != ST_CONNACK || n < 2 || b[1] != 0) return -1;
        if (c->role == R_HS) {
            G.done++;
            lat_add(now_ns() - c->t0);
            /* DISCONNECT, then wait for the broker to close (a clean end for both brokers) */
            static const uint8_t disc[2] = {0xE0, 0};
            out_put(c, disc, 2);
            c->state = ST_BYE;
            return 0;
        }
        if (c->role == R_SUB) {
            mq_subscribe(c, "bench/#", G.qos);
            c->state = ST_SUBACK;
        } else {
            c->state = ST_READY;
            G.done++;
        }
        return 0;
    case 9: /* SUBACK */
        if (c->state != ST_SUBACK || n < 3 || b[2] > 2) return -1;
        c->state = ST_READY;
        return 0;
    case 3: { /* PUBLISH to the subscriber */
        int q = (tf >> 1) & 3;
        if (n < 2) return -1;
        size_t tl = (size_t)b[0] << 8 | b[1];
        size_t off = 2 + tl + (q ? 2 : 0);
        if (off > n) return -1;
        if (q) {
            uint8_t ack[4] = {0x40, 2, b[2 + tl], b[3 + tl]};
            out_put(c, ack, 4);
        }
        if (n - off >= 8) {
            int64_t t;
            memcpy(&t, b + off, 8);
            lat_add(now_ns() - t);
        }
        G.recv++;
        return 0;
    }
    case 4: /* PUBACK to a publisher */
        if (c->inflight > 0) c->inflight--;
        return 0;
    case 13: /* PINGRESP */
        return 0;
    default:
        return -1;
    }
}

/* Reads and handles everything readable. 1 finished, 0 ok, -1 dead. */
static int pump_in(struct conn *c)
{
    for (int rounds = 0; rounds < 64; rounds++) {
        int r = SSL_read(c->ssl, c->in + c->inlen, (int)(IN_CAP - c->inlen));
        if (r <= 0) {
            int e = SSL_get_error(c->ssl, r);
            if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) return 0;
            return c->state == ST_BYE ? 1 : -1; /* the broker closed after our DISCONNECT */
        }
        c->inlen += (size_t)r;
        size_t off = 0;
        for (;;) {
            size_t avail = c->inlen - off, rl = 0, i = 1;
            unsigned mul = 1;
            int ok = 0;
            while (i < avail && i <= 4) {
                rl += (size_t)(c->in[off + i] & 127) * mul;
                mul *= 128;
                if (!(c->in[off + i++] & 128)) {
                    ok = 1;
                    break;
                }
            }
            if (!ok) {
                if (i > 4) return -1;
                break;
            }
            if (i + rl > IN_CAP) return -1;
            if (avail < i + rl) break;
            int h = on_packet(c, c->in[off], c->in + off + i, rl);
            if (h) return h;
            off += i + rl;
        }
        memmove(c->in, c->in + off, c->inlen - off);
        c->inlen -= off;
    }
    return 0;
}

/* Advances c. Returns 1 when it finished (hs role), -1 when it failed, 0 otherwise. */
static int drive(struct conn *c)
{
    if (c->state == ST_TCP) {
        int err = 0;
        socklen_t l = sizeof err;
        getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &l);
        if (err) return -1;
        c->ssl = SSL_new(G.ctx);
        if (!c->ssl) die("SSL_new");
        SSL_set_fd(c->ssl, c->fd);
        SSL_set_connect_state(c->ssl);
        SSL_set_tlsext_host_name(c->ssl, "localhost");
        c->state = ST_TLS;
    }
    if (c->state == ST_TLS) {
        int r = SSL_do_handshake(c->ssl);
        if (r != 1) {
            int e = SSL_get_error(c->ssl, r);
            if (e == SSL_ERROR_WANT_READ)
                set_events(c, EPOLLIN);
            else if (e == SSL_ERROR_WANT_WRITE)
                set_events(c, EPOLLIN | EPOLLOUT);
            else
                return -1;
            return 0;
        }
        mq_connect(c);
        c->state = ST_CONNACK;
    }
    if (flush(c)) return -1;
    int h = pump_in(c);
    if (h) return h;
    if (flush(c)) return -1;
    set_events(c, EPOLLIN | (c->outlen ? EPOLLOUT : 0));
    return 0;
}

static void usage(void)
{
    fprintf(stderr, "usage: kl-loadgen hs|idle|pub --port P --ca FILE --cert FILE --key FILE\n"
                    "       [--conns N] [--seconds S] [--hold S] [--pubs P] [--qos 0|1]\n"
                    "       [--size BYTES] [--window W] [--id PREFIX] [--verify 0|1]\n");
    exit(2);
}

static SSL_CTX *make_ctx(const char *ca, const char *cert, const char *key)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx) die("SSL_CTX_new");
    /* the device's profile: TLS 1.2, one ECDSA suite, P-256 only, no resumption */
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_max_proto_version(ctx, TLS1_2_VERSION);
    if (SSL_CTX_set_cipher_list(ctx, "ECDHE-ECDSA-AES128-GCM-SHA256") != 1) die("cipher list");
    if (SSL_CTX_set1_groups_list(ctx, "P-256") != 1) die("groups");
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ENABLE_PARTIAL_WRITE |
                              SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) die("client certificate");
    if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1) die("client key");
    if (G.verify) {
        if (SSL_CTX_load_verify_locations(ctx, ca, NULL) != 1) die("CA file");
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    }
    return ctx;
}

int main(int argc, char **argv)
{
    if (argc < 2) usage();
    const char *mode = argv[1], *ca = NULL, *cert = NULL, *key = NULL;
    int conns = 16, pubs = 4, window = 64;
    double seconds = 5, hold = 60;
    G.id = "lg";
    G.verify = 1;
    G.size = 64;
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v) usage();
        i++;
        if (!strcmp(a, "--port"))
            G.port = atoi(v);
        else if (!strcmp(a, "--ca"))
            ca = v;
        else if (!strcmp(a, "--cert"))
            cert = v;
        else if (!strcmp(a, "--key"))
            key = v;
        else if (!strcmp(a, "--conns"))
            conns = atoi(v);
        else if (!strcmp(a, "--seconds"))
            seconds = atof(v);
        else if (!strcmp(a, "--hold"))
            hold = atof(v);
        else if (!strcmp(a, "--pubs"))
            pubs = atoi(v);
        else if (!strcmp(a, "--qos"))
            G.qos = atoi(v);
        else if (!strcmp(a, "--size"))
            G.size = (size_t)atol(v);
        else if (!strcmp(a, "--window"))
            window = atoi(v);
        else if (!strcmp(a, "--id"))
            G.id = v;
        else if (!strcmp(a, "--verify"))
            G.verify = atoi(v);
        else
            usage();
    }
    if (G.port <= 0 || G.port > 65535 || !ca || !cert || !key || conns < 1 || conns > 20000 ||
        pubs < 1 || pubs > 1000 || (G.qos != 0 && G.qos != 1) || G.size < 8 ||
        G.size > MAX_PAYLOAD - 64 || window < 1 || seconds <= 0 || seconds > 600 || hold <= 0 ||
        hold > 3600)
        usage();
    G.ctx = make_ctx(ca, cert, key);
    G.ep = epoll_create1(EPOLL_CLOEXEC);
    if (G.ep < 0) die("epoll_create1");
    struct epoll_event ev[256];
    int64_t start = now_ns();

    if (!strcmp(mode, "hs")) {
        /* keep `conns` handshakes in flight for `seconds` */
        int64_t end = start + (int64_t)(seconds * 1e9);
        for (int i = 0; i < conns; i++)
            conn_new(R_HS, i);
        while (now_ns() < end) {
            int n = epoll_wait(G.ep, ev, 256, 50);
            for (int i = 0; i < n; i++) {
                struct conn *c = ev[i].data.ptr;
                int r = drive(c);
                if (r) {
                    if (r < 0) G.errors++;
                    int idx = c->idx;
                    conn_free(c);
                    conn_new(R_HS, idx);
                }
            }
        }
        double t = (double)(now_ns() - start) / 1e9;
        qsort(G.lat, G.nlat, sizeof *G.lat, cmp64);
        printf("handshakes=%ld seconds=%.3f rate=%.1f errors=%ld p50_ms=%.3f p99_ms=%.3f\n", G.done,
               t, (double)G.done / t, G.errors, pct(0.5) / 1000, pct(0.99) / 1000);
        return 0;
    }

    if (!strcmp(mode, "idle")) {
        /* open `conns` connections, at most 64 handshakes at a time, then hold them */
        struct conn **all = calloc((size_t)conns, sizeof *all);
        if (!all) die("out of memory");
        int started = 0, pending = 0;
        int64_t ramp_end = start + RAMP_CAP_NS;
        while ((G.done + G.errors < conns) && now_ns() < ramp_end) {
            while (started < conns && pending < 64) {
                all[started] = conn_new(R_IDLE, started);
                started++;
                pending++;
            }
            int n = epoll_wait(G.ep, ev, 256, 50);
            for (int i = 0; i < n; i++) {
                struct conn *c = ev[i].data.ptr;
                if (c->state == ST_DEAD) continue;
                int was = c->state;
                int r = drive(c);
                if (r < 0) {
                    G.errors++;
                    c->state = ST_DEAD;
                    if (c->ssl) SSL_free(c->ssl);
                    c->ssl = NULL;
                    close(c->fd);
                    c->fd = -1;
                    pending--;
                } else if (was != ST_READY && c->state == ST_READY) {
                    pending--;
                }
            }
        }
        printf("up=%ld errors=%ld seconds=%.3f\n", G.done, G.errors,
               (double)(now_ns() - start) / 1e9);
        fflush(stdout);
        /* hold: answer nothing, read whatever comes, until killed or `hold` passes */
        int64_t end = now_ns() + (int64_t)(hold * 1e9);
        while (now_ns() < end) {
            int n = epoll_wait(G.ep, ev, 256, 500);
            for (int i = 0; i < n; i++) {
                struct conn *c = ev[i].data.ptr;
                if (c->state == ST_DEAD) continue;
                if (drive(c) < 0) {
                    c->state = ST_DEAD;
                    SSL_free(c->ssl);
                    c->ssl = NULL;
                    close(c->fd);
                    c->fd = -1;
                }
            }
        }
        return 0;
    }

    if (!strcmp(mode, "pub")) {
        int64_t ramp_end = start + RAMP_CAP_NS;
        struct conn *sub = conn_new(R_SUB, 0);
        while (sub->state != ST_READY) {
            if (now_ns() > ramp_end) die("subscriber did not get its SUBACK");
            int n = epoll_wait(G.ep, ev, 256, 50);
            for (int i = 0; i < n; i++)
                if (drive(ev[i].data.ptr) < 0) die("subscriber failed");
        }
        struct conn **p = calloc((size_t)pubs, sizeof *p);
        if (!p) die("out of memory");
        for (int i = 0; i < pubs; i++)
            p[i] = conn_new(R_PUB, i);
        while (G.done < pubs) {
            if (now_ns() > ramp_end) die("publishers did not connect");
            int n = epoll_wait(G.ep, ev, 256, 50);
            for (int i = 0; i < n; i++)
                if (drive(ev[i].data.ptr) < 0) die("connection failed during ramp up");
        }
        /* 0.5 s warm-up, then `seconds` measured; at most `window` messages in the broker */
        int64_t t_warm = now_ns() + 500000000ll, t_end = t_warm + (int64_t)(seconds * 1e9);
        int64_t last_progress = now_ns();
        long recv_warm = 0, last_recv = 0;
        int rr = 0, warmed = 0;
        for (;;) {
            int64_t t = now_ns();
            if (!warmed && t >= t_warm) {
                warmed = 1;
                recv_warm = G.recv;
                G.nlat = 0;
            }
            if (t >= t_end) break;
            if (G.recv != last_recv) {
                last_recv = G.recv;
                last_progress = t;
            } else if (G.sent - G.recv > 0 && t - last_progress > 200000000ll) {
                /* a QoS 0 message dropped by the broker: give its window slot back */
                G.lost += G.sent - G.recv;
                G.sent = G.recv;
                last_progress = t;
                for (int i = 0; i < pubs; i++)
                    p[i]->inflight = 0;
            }
            for (int tries = 0; G.sent - G.recv < window && tries < pubs; tries++) {
                struct conn *c = p[rr++ % pubs];
                if (G.qos && c->inflight >= QOS1_INFLIGHT) continue;
                mq_publish(c);
                tries = -1;
            }
            for (int i = 0; i < pubs; i++)
                if (p[i]->outlen && drive(p[i]) < 0) die("publisher failed");
            int n = epoll_wait(G.ep, ev, 256, 5);
            for (int i = 0; i < n; i++)
                if (drive(ev[i].data.ptr) < 0) die("connection failed");
        }
        double secs = (double)(t_end - t_warm) / 1e9;
        qsort(G.lat, G.nlat, sizeof *G.lat, cmp64);
        printf("msgs=%ld seconds=%.3f rate=%.1f p50_us=%.1f p99_us=%.1f lost=%ld\n",
               G.recv - recv_warm, secs, (double)(G.recv - recv_warm) / secs, pct(0.5), pct(0.99),
               G.lost);
        return 0;
    }
    usage();
    return 2;
}
