/* `unix:PATH` transport: frames over a UNIX stream socket to the keylink-se daemon.
 * POSIX hosts only (keylink/se.h defines KL_HAVE_TRANSPORT_UNIX there). */
#include "keylink/se.h"
#ifdef KL_HAVE_TRANSPORT_UNIX
#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static kl_status unix_open(struct kl_se *se, const char *path)
{
    struct sockaddr_un sa;
    size_t n = strlen(path);
    if (n == 0 || n >= sizeof sa.sun_path) return KL_E_ARG;
    memset(&sa, 0, sizeof sa);
    sa.sun_family = AF_UNIX;
    memcpy(sa.sun_path, path, n);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return KL_E_IO;
    int r;
    do {
        r = connect(fd, (struct sockaddr *)&sa, sizeof sa);
    } while (r < 0 && errno == EINTR);
    if (r < 0) {
        close(fd);
        return KL_E_IO;
    }
    se->tp_fd = fd;
    return KL_OK;
}

/* Reads exactly n bytes before the deadline. */
static kl_status read_full(int fd, uint8_t *p, size_t n, uint64_t deadline)
{
    size_t got = 0;
    while (got < n) {
        uint64_t now = now_ms();
        if (now >= deadline) return KL_E_TIMEOUT;
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        int r = poll(&pfd, 1, (int)(deadline - now));
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) return KL_E_IO;
        if (r == 0) return KL_E_TIMEOUT;
        ssize_t k = recv(fd, p + got, n - got, 0);
        if (k < 0 && (errno == EINTR || errno == EAGAIN)) continue;
        if (k <= 0) return KL_E_IO;
        got += (size_t)k;
    }
    return KL_OK;
}

static kl_status write_full(int fd, const uint8_t *p, size_t n, uint64_t deadline)
{
    size_t done = 0;
    while (done < n) {
        uint64_t now = now_ms();
        if (now >= deadline) return KL_E_TIMEOUT;
        struct pollfd pfd = {.fd = fd, .events = POLLOUT};
        int r = poll(&pfd, 1, (int)(deadline - now));
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) return KL_E_IO;
        if (r == 0) return KL_E_TIMEOUT;
        ssize_t k = send(fd, p + done, n - done, MSG_NOSIGNAL);
        if (k < 0 && (errno == EINTR || errno == EAGAIN)) continue;
        if (k <= 0) return KL_E_IO;
        done += (size_t)k;
    }
    return KL_OK;
}

static kl_status unix_exchange(struct kl_se *se, const uint8_t *tx, size_t tx_len, uint8_t *rx,
                               size_t rx_cap, size_t *rx_len)
{
    if (se->tp_fd < 0) return KL_E_IO;
    if (rx_cap < KL_FRAME_MAX) return KL_E_BUFFER;
    uint64_t deadline = now_ms() + se->timeout_ms;
    kl_status wst = write_full(se->tp_fd, tx, tx_len, deadline);
    /* Even when the write fails, the daemon may have answered before closing (a busy
     * chip says KL_E_BUSY at once): read what is there before giving up. */
    if (wst != KL_OK) deadline = now_ms() + 200;
    kl_status st = read_full(se->tp_fd, rx, KL_FRAME_HEADER, deadline);
    if (st != KL_OK) return wst != KL_OK ? wst : st;
    size_t total = 0;
    if (kl_frame_total_len(rx, &total) != KL_OK) return KL_E_PROTOCOL;
    st = read_full(se->tp_fd, rx + KL_FRAME_HEADER, total - KL_FRAME_HEADER, deadline);
    if (st != KL_OK) return st;
    *rx_len = total;
    return KL_OK;
}

/* After a failed exchange the stream position is unknown: drop the link so later
 * commands fail cleanly with KL_E_IO instead of reading a stale answer. */
static kl_status unix_transceive(struct kl_se *se, const uint8_t *tx, size_t tx_len, uint8_t *rx,
                                 size_t rx_cap, size_t *rx_len)
{
    kl_status st = unix_exchange(se, tx, tx_len, rx, rx_cap, rx_len);
    if (st != KL_OK && st != KL_E_BUFFER && se->tp_fd >= 0) {
        close(se->tp_fd);
        se->tp_fd = -1;
    }
    return st;
}

static void unix_close(struct kl_se *se)
{
    if (se->tp_fd >= 0) close(se->tp_fd);
    se->tp_fd = -1;
}

const struct kl_transport_ops kl_transport_unix = {
    .version = KL_TRANSPORT_VERSION,
    .scheme = "unix",
    .open = unix_open,
    .transceive = unix_transceive,
    .close = unix_close,
};
#else
typedef int kl_transport_unix_unavailable; /* keeps the translation unit non-empty */
#endif
