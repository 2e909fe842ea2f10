/* POSIX socket transport and clock for the TLS client (keylink/tls_posix.h). */
#if defined(__unix__) || defined(__APPLE__)
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "keylink/tls_posix.h"

static uint64_t mono_ms(void *ctx)
{
    (void)ctx;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static uint64_t unix_s(void *ctx)
{
    (void)ctx;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec;
}

void kl_tls_posix_clock(struct kl_tls_clock *c)
{
    c->ctx = NULL;
    c->unix_seconds = unix_s;
    c->monotonic_ms = mono_ms;
}

/* Non-blocking connect with a deadline, then back to blocking. */
static int connect_one(const struct addrinfo *ai, uint32_t timeout_ms, int *timed_out)
{
    int fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
    if (fd < 0) return -1;
    int fl = fcntl(fd, F_GETFL);
    fcntl(fd, F_SETFL, fl | O_NONBLOCK);
    int r = connect(fd, ai->ai_addr, ai->ai_addrlen);
    if (r < 0 && errno == EINPROGRESS) {
        struct pollfd pf = {fd, POLLOUT, 0};
        r = poll(&pf, 1, (int)(timeout_ms > 0x7FFFFFFF ? 0x7FFFFFFF : timeout_ms));
        if (r == 0) *timed_out = 1;
        int err = 0;
        socklen_t el = sizeof err;
        if (r == 1 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) == 0 && err == 0)
            r = 0;
        else
            r = -1;
    }
    if (r < 0) {
        close(fd);
        return -1;
    }
    fcntl(fd, F_SETFL, fl);
    return fd;
}

kl_status kl_tls_posix_connect(struct kl_tls_posix *p, const char *host, const char *port,
                               uint32_t timeout_ms)
{
    if (!p) return KL_E_ARG;
    p->fd = -1;
    if (!host || !*host || !port || !*port) return KL_E_ARG;
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    if (getaddrinfo(host, port, &hints, &res) != 0 || !res) return KL_E_IO;
    int timed_out = 0;
    for (const struct addrinfo *ai = res; ai && p->fd < 0; ai = ai->ai_next)
        p->fd = connect_one(ai, timeout_ms, &timed_out);
    freeaddrinfo(res);
    if (p->fd < 0) return timed_out ? KL_E_TIMEOUT : KL_E_IO;
    return KL_OK;
}

static kl_status sock_send(void *ctx, const uint8_t *buf, size_t n)
{
    struct kl_tls_posix *p = ctx;
    while (n) {
        ssize_t w = send(p->fd, buf, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return KL_E_IO;
        buf += w;
        n -= (size_t)w;
    }
    return KL_OK;
}

static kl_status sock_recv(void *ctx, uint8_t *buf, size_t cap, size_t *got, uint32_t timeout_ms)
{
    struct kl_tls_posix *p = ctx;
    *got = 0;
    struct pollfd pf = {p->fd, POLLIN, 0};
    int r;
    do
        r = poll(&pf, 1, (int)(timeout_ms > 0x7FFFFFFF ? 0x7FFFFFFF : timeout_ms));
    while (r < 0 && errno == EINTR);
    if (r == 0) return KL_E_TIMEOUT;
    if (r < 0) return KL_E_IO;
    ssize_t k;
    do
        k = recv(p->fd, buf, cap, 0);
    while (k < 0 && errno == EINTR);
    if (k == 0) return KL_E_CLOSED;
    if (k < 0) return errno == ECONNRESET ? KL_E_CLOSED : KL_E_IO;
    *got = (size_t)k;
    return KL_OK;
}

void kl_tls_posix_transport(struct kl_tls_posix *p, struct kl_tls_transport *tr)
{
    tr->ctx = p;
    tr->send = sock_send;
    tr->recv = sock_recv;
}

void kl_tls_posix_close(struct kl_tls_posix *p)
{
    if (p && p->fd >= 0) {
        close(p->fd);
        p->fd = -1;
    }
}
#else
/* No POSIX sockets on this target: the port supplies its own transport and clock. */
typedef int kl_tls_posix_unused;
#endif
