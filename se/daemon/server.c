#define _GNU_SOURCE /* accept4 */
/*
 * The serving loop: one host at a time on a UNIX stream socket, like the single SPI
 * master of the real chip. Frames are read header first so a wrong length is caught
 * before any payload is trusted; anything malformed ends the connection (the stream
 * position is lost), never the daemon.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "chip.h"
#include "daemon.h"
#include "keylink/frame.h"

#define WRITE_TIMEOUT_MS 5000u

struct conn {
    int fd;
    size_t have, need;  /* bytes of the current frame read / wanted so far */
    uint64_t started;   /* when the first byte of the current frame arrived */
    uint64_t last_seen; /* last activity */
    unsigned long id;
    uint8_t in[KL_FRAME_MAX];
    uint8_t out[KL_FRAME_MAX];
};

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* One line about a connection, --verbose only. */
static void log_host(const struct kl_daemon_opts *o, unsigned long id, const char *what)
{
    if (o->verbose) fprintf(stderr, "keylink-se: host #%lu: %s\n", id, what);
}

/* Writes the whole buffer or gives up after WRITE_TIMEOUT_MS (a client not reading). */
static int send_all(int fd, const uint8_t *p, size_t n)
{
    uint64_t deadline = now_ms() + WRITE_TIMEOUT_MS;
    size_t done = 0;
    while (done < n) {
        ssize_t k = send(fd, p + done, n - done, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (k > 0) {
            done += (size_t)k;
            continue;
        }
        if (k < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) return -1;
        uint64_t now = now_ms();
        if (now >= deadline) return -1;
        struct pollfd pfd = {.fd = fd, .events = POLLOUT};
        if (poll(&pfd, 1, (int)(deadline - now)) < 0 && errno != EINTR) return -1;
    }
    return 0;
}

static void send_status(int fd, kl_status st)
{
    uint8_t f[KL_FRAME_OVERHEAD];
    size_t n = 0;
    if (kl_frame_encode((uint8_t)st, 0, NULL, 0, f, sizeof f, &n) == KL_OK)
        (void)send_all(fd, f, n);
}

static void drop(struct conn *c, const struct kl_daemon_opts *o, const char *why)
{
    log_host(o, c->id, why);
    /* Discard what the host already sent: closing with unread data makes the host see
     * ECONNRESET instead of a clean end after our last answer. */
    uint8_t sink[512];
    for (int i = 0; i < 128 && recv(c->fd, sink, sizeof sink, MSG_DONTWAIT) > 0; i++)
        ;
    close(c->fd);
    c->fd = -1;
    c->have = 0;
    c->need = KL_FRAME_HEADER;
}

static void log_command(const struct kl_daemon_opts *o, const struct conn *c, size_t out_len)
{
    if (!o->verbose) return;
    char unknown[8];
    const char *name;
    if (c->in[1] & KL_FRAME_FLAG_ENC) {
        name = "ENC"; /* the real command is inside the channel */
    } else if (!(name = kl_daemon_cmd_name(c->in[0]))) {
        snprintf(unknown, sizeof unknown, "0x%02X", c->in[0]);
        name = unknown;
    }
    size_t resp_len = out_len >= KL_FRAME_OVERHEAD ? out_len - KL_FRAME_OVERHEAD : 0;
    fprintf(stderr, "keylink-se: host #%lu: %s -> %s (request %zu bytes, response %zu bytes)\n",
            c->id, name, out_len ? kl_status_name((kl_status)c->out[0]) : "closed",
            c->need - KL_FRAME_OVERHEAD, resp_len);
}

/* Runs the complete frame in c->in. Returns 0 to keep the connection, -1 to drop it. */
static int run_frame(struct kl_chip *chip, struct conn *c, const struct kl_daemon_opts *o)
{
    size_t n = kl_chip_frame(chip, c->in, c->need, c->out, sizeof c->out);
    log_command(o, c, n);
    if (n == 0) return -1;
    if (send_all(c->fd, c->out, n) < 0) return -1;
    /* after a bad frame the next frame's start is unknown */
    if (c->out[0] == KL_E_BAD_FRAME) return -1;
    c->have = 0;
    c->need = KL_FRAME_HEADER;
    return 0;
}

/* Reads what is available for the current frame. Returns 0 or -1 (drop). */
static int on_readable(struct kl_chip *chip, struct conn *c, const struct kl_daemon_opts *o)
{
    ssize_t k = recv(c->fd, c->in + c->have, c->need - c->have, MSG_DONTWAIT);
    if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return 0;
    if (k <= 0) {
        drop(c, o, c->have ? "disconnected in the middle of a frame" : "disconnected");
        return -1;
    }
    uint64_t now = now_ms();
    if (c->have == 0) c->started = now;
    c->last_seen = now;
    c->have += (size_t)k;
    if (c->have == KL_FRAME_HEADER && c->need == KL_FRAME_HEADER) {
        size_t total = 0;
        if (kl_frame_total_len(c->in, &total) != KL_OK) {
            send_status(c->fd, KL_E_BAD_FRAME);
            drop(c, o, "sent an impossible frame header; answered KL_E_BAD_FRAME");
            return -1;
        }
        c->need = total;
    }
    if (c->have == c->need && c->need > KL_FRAME_HEADER) {
        if (run_frame(chip, c, o) < 0) {
            drop(c, o, "connection closed after the answer");
            return -1;
        }
    }
    return 0;
}

static void on_accept(int lfd, struct conn *c, const struct kl_daemon_opts *o,
                      unsigned long *next_id)
{
    int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd < 0) {
        if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
            /* the pending connection stays readable: do not spin on it */
            struct timespec ts = {0, 50 * 1000000L};
            nanosleep(&ts, NULL);
        }
        return;
    }
    if (c->fd >= 0) {
        /* the bus has one master: tell the newcomer and hang up */
        send_status(fd, KL_E_BUSY);
        close(fd);
        if (o->verbose)
            fprintf(stderr, "keylink-se: refused a second host (host #%lu holds the chip)\n",
                    c->id);
        return;
    }
    c->fd = fd;
    c->have = 0;
    c->need = KL_FRAME_HEADER;
    c->id = ++*next_id;
    c->last_seen = now_ms();
    log_host(o, c->id, "connected");
}

int kl_daemon_serve(struct kl_chip *chip, int lfd, const struct kl_daemon_opts *o,
                    volatile sig_atomic_t *stop)
{
    static struct conn c; /* 4 KB of buffers: keep them off the stack */
    unsigned long next_id = 0;
    c.fd = -1;
    c.need = KL_FRAME_HEADER;
    while (!*stop) {
        struct pollfd pfd[2] = {{.fd = lfd, .events = POLLIN}, {.fd = c.fd, .events = POLLIN}};
        int r = poll(pfd, c.fd >= 0 ? 2 : 1, (int)o->tick_ms);
        if (r < 0 && errno != EINTR) {
            perror("keylink-se: poll");
            if (c.fd >= 0) close(c.fd);
            return 1;
        }
        uint64_t now = now_ms();
        kl_chip_tick(chip, now);
        if (r <= 0) {
            if (c.fd >= 0 && c.have && now - c.started > o->read_timeout_ms)
                drop(&c, o, "timed out in the middle of a frame");
            else if (c.fd >= 0 && o->idle_timeout_ms && now - c.last_seen > o->idle_timeout_ms)
                drop(&c, o, "idle too long");
            continue;
        }
        if (c.fd >= 0 && (pfd[1].revents & (POLLIN | POLLHUP | POLLERR)))
            (void)on_readable(chip, &c, o);
        if (c.fd >= 0 && c.have && now_ms() - c.started > o->read_timeout_ms)
            drop(&c, o, "timed out in the middle of a frame");
        if (pfd[0].revents & POLLIN) on_accept(lfd, &c, o, &next_id);
    }
    if (c.fd >= 0) close(c.fd);
    c.fd = -1;
    return 0;
}
