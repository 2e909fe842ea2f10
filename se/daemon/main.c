/*
 * keylink-se: the chip model served on a UNIX stream socket, the stand-in for the
 * SPI link of a MAXQ1065. Foreground; SIGTERM/SIGINT stop it cleanly (every answered
 * command is already committed; the socket is removed).
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "chip.h"
#include "daemon.h"
#include "keylink/frame.h"

static volatile sig_atomic_t stop_flag;

static void on_signal(int sig)
{
    (void)sig;
    stop_flag = 1;
}

/* Another process holds the state directory's lock: name it when we can. */
static void state_in_use(const char *state)
{
    char comm[64];
    long pid = kl_daemon_lock_holder(state, comm, sizeof comm);
    if (pid && comm[0] && strcmp(comm, "keylink-se") != 0)
        fprintf(stderr,
                "keylink-se: %s is in use by %s (pid %ld); stop it or use another --state\n", state,
                comm, pid);
    else if (pid)
        fprintf(stderr,
                "keylink-se: %s is already served by another keylink-se (pid %ld); stop it or "
                "use another --state\n",
                state, pid);
    else
        fprintf(stderr,
                "keylink-se: %s is already served by another keylink-se (pid unknown); stop it "
                "or use another --state\n",
                state);
}

static void usage(FILE *f)
{
    fprintf(f, "usage: keylink-se --state DIR --socket PATH [--verbose] [--read-timeout MS]\n"
               "                  [--idle-timeout MS]\n"
               "\n"
               "Serves a MAXQ1065-class secure element model on a UNIX stream socket\n"
               "(docs/protocol.md). The chip's state lives in DIR; an empty or missing DIR\n"
               "is a factory-fresh chip. One host at a time: while one is connected, others\n"
               "get a KL_E_BUSY answer and are disconnected.\n"
               "\n"
               "  --state DIR         chip state directory (created 0700 if missing)\n"
               "  --socket PATH       UNIX socket to listen on (mode 0600)\n"
               "  --verbose           one log line per command: name, status, lengths\n"
               "  --read-timeout MS   drop a host that stops in the middle of a frame (5000)\n"
               "  --idle-timeout MS   drop a host silent this long; 0 = never (0)\n"
               "  --help              this text\n"
               "\n"
               "Clients: keylink se --device unix:PATH ..., or KEYLINK_SE=unix:PATH.\n");
}

static int parse_ms(const char *s, uint32_t *out)
{
    char *end = NULL;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (errno || !*s || *end || v > 86400000ul) return -1;
    *out = (uint32_t)v;
    return 0;
}

/* Binds and listens on path. A stale socket file (no one answering) is replaced; a
 * live one or any other file is an error. */
static int listen_on(const char *path)
{
    struct sockaddr_un sa;
    size_t n = strlen(path);
    if (n == 0 || n >= sizeof sa.sun_path) {
        fprintf(stderr, "keylink-se: socket path too long (max %zu bytes): %s\n",
                sizeof sa.sun_path - 1, path);
        return -1;
    }
    memset(&sa, 0, sizeof sa);
    sa.sun_family = AF_UNIX;
    memcpy(sa.sun_path, path, n);

    struct stat st;
    if (lstat(path, &st) == 0) {
        if (!S_ISSOCK(st.st_mode)) {
            fprintf(stderr, "keylink-se: %s exists and is not a socket; not touching it\n", path);
            return -1;
        }
        int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (probe >= 0 && connect(probe, (struct sockaddr *)&sa, sizeof sa) == 0) {
            close(probe);
            fprintf(stderr, "keylink-se: another keylink-se is serving %s\n", path);
            return -1;
        }
        if (probe >= 0) close(probe);
        unlink(path); /* stale: left by a killed daemon */
    }
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
        perror("keylink-se: socket");
        return -1;
    }
    /* Bind and listen under a temporary name, then rename: whoever sees the socket file
     * can connect at once (no window between bind and listen that refuses connections). */
    struct sockaddr_un tmp = sa;
    int named = snprintf(tmp.sun_path, sizeof tmp.sun_path, "%s.%ld.tmp", path, (long)getpid());
    int staged = named > 0 && (size_t)named < sizeof tmp.sun_path;
    if (!staged) tmp = sa; /* no room for a temporary name: bind the final one directly */
    unlink(tmp.sun_path);
    mode_t old = umask(077); /* the socket is the chip: owner only */
    int r = bind(fd, (struct sockaddr *)&tmp, sizeof tmp);
    umask(old);
    if (r < 0 || listen(fd, 16) < 0 || (staged && rename(tmp.sun_path, path) < 0)) {
        fprintf(stderr, "keylink-se: cannot listen on %s: %s\n", path, strerror(errno));
        if (r == 0 && staged) unlink(tmp.sun_path);
        close(fd);
        return -1;
    }
    return fd;
}

/* One start-up line naming the chip (serial and life cycle), from GET_STATUS. */
static void announce(struct kl_chip *chip, const char *path)
{
    uint8_t b[KL_FRAME_MAX_PAYLOAD];
    size_t n = 0;
    if (kl_chip_execute(chip, 0xF2, NULL, 0, b, sizeof b, &n) != KL_OK || n < 46) {
        fprintf(stderr, "keylink-se: serving on %s\n", path);
        return;
    }
    char serial[49];
    for (int i = 0; i < 24; i++)
        snprintf(serial + 2 * i, 3, "%02x", b[21 + i]);
    static const char *const lc[] = {"DELIVERY", "INITIALIZED", "OPERATIONAL", "TERMINATED"};
    const char *state = b[45] >= 3 && b[45] <= 6 ? lc[b[45] - 3] : "UNKNOWN";
    fprintf(stderr, "keylink-se: chip %s (%s) serving on %s\n", serial, state, path);
}

int main(int argc, char **argv)
{
    const char *state = NULL;
    struct kl_daemon_opts o = {.read_timeout_ms = 5000, .idle_timeout_ms = 0, .tick_ms = 50};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int has_val = i + 1 < argc;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "--verbose") || !strcmp(a, "-v")) {
            o.verbose = 1;
        } else if (!strcmp(a, "--state") && has_val) {
            state = argv[++i];
        } else if (!strcmp(a, "--socket") && has_val) {
            o.socket_path = argv[++i];
        } else if (!strcmp(a, "--read-timeout") && has_val) {
            if (parse_ms(argv[++i], &o.read_timeout_ms) < 0 || !o.read_timeout_ms) {
                fprintf(stderr, "keylink-se: --read-timeout needs milliseconds > 0\n");
                return 2;
            }
        } else if (!strcmp(a, "--idle-timeout") && has_val) {
            if (parse_ms(argv[++i], &o.idle_timeout_ms) < 0) {
                fprintf(stderr, "keylink-se: --idle-timeout needs milliseconds\n");
                return 2;
            }
        } else {
            fprintf(stderr, "keylink-se: unknown or incomplete option '%s'\n", a);
            usage(stderr);
            return 2;
        }
    }
    if (!state || !o.socket_path) {
        fprintf(stderr, "keylink-se: --state DIR and --socket PATH are required\n");
        usage(stderr);
        return 2;
    }

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    struct kl_chip *chip = NULL;
    /* asked first so a second daemon is told so (not the chip's KL_E_BUSY for hosts) */
    kl_status st = kl_daemon_state_locked(state) ? KL_E_BUSY : kl_chip_open(state, &chip);
    if (st == KL_E_BUSY) {
        state_in_use(state);
        return 1;
    }
    if (st != KL_OK) {
        fprintf(stderr, "keylink-se: cannot open the chip state in %s: %s (%s)\n", state,
                kl_status_name(st), kl_status_text(st));
        return 1;
    }
    int lfd = listen_on(o.socket_path);
    if (lfd < 0) {
        kl_chip_close(chip);
        return 1;
    }
    announce(chip, o.socket_path);
    int rc = kl_daemon_serve(chip, lfd, &o, &stop_flag);
    close(lfd);
    unlink(o.socket_path);
    kl_chip_close(chip);
    if (o.verbose || rc == 0) fprintf(stderr, "keylink-se: stopped\n");
    return rc;
}
