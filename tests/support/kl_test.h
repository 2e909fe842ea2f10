/*
 * Shared by the C tests of host/ and se/: the check macros with one failure counter,
 * removing a temporary directory tree, and starting a keylink-se daemon on a socket.
 * Header-only (static) so each test_*.c stays one program; kl_add_tests puts this
 * folder on every test's include path. Include it first: it asks for _GNU_SOURCE.
 */
#ifndef KL_TESTS_SUPPORT_KL_TEST_H
#define KL_TESTS_SUPPORT_KL_TEST_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <ftw.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "keylink/status.h"

/* Checks failed so far; main returns non-zero when it is. */
__attribute__((unused)) static int kl_fails;
/* What the test is doing now (e.g. which transport); shown as " [what]" when set. */
__attribute__((unused)) static const char *kl_where = "";

#define KL_WHERE_ kl_where[0] ? " [" : "", kl_where, kl_where[0] ? "]" : ""

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c)) {                                                                                \
            fprintf(stderr, "%s:%d%s%s%s: CHECK failed: %s\n", __FILE__, __LINE__, KL_WHERE_, #c); \
            kl_fails++;                                                                            \
        }                                                                                          \
    } while (0)

/* Checks a status and prints both names when it differs. */
#define CHECK_ST(expr, want)                                                                       \
    do {                                                                                           \
        kl_status got_ = (expr);                                                                   \
        if (got_ != (want)) {                                                                      \
            fprintf(stderr, "%s:%d%s%s%s: %s: got %s, want %s\n", __FILE__, __LINE__, KL_WHERE_,   \
                    #expr, kl_status_name(got_), kl_status_name(want));                            \
            kl_fails++;                                                                            \
        }                                                                                          \
    } while (0)

#define OK(expr) CHECK_ST(expr, KL_OK)

/* Decodes a test vector's hex h into out; returns its length. A malformed or oversize
 * vector is a bug in the test: abort. */
static inline size_t kl_test_unhex(const char *h, uint8_t *out, size_t cap)
{
    size_t n = strlen(h) / 2;
    if (n > cap) abort();
    for (size_t i = 0; i < n; i++) {
        unsigned v;
        if (sscanf(h + 2 * i, "%2x", &v) != 1) abort();
        out[i] = (uint8_t)v;
    }
    return n;
}

/* 1 when the n bytes at p are exactly the hex string h. */
static inline int kl_test_eqhex(const uint8_t *p, size_t n, const char *h)
{
    uint8_t b[256];
    return strlen(h) == 2 * n && kl_test_unhex(h, b, sizeof b) == n && memcmp(b, p, n) == 0;
}

static inline int kl_test_rm_one(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb, (void)flag, (void)ftw;
    return remove(p);
}

/* rm -r dir (does not follow links); 0 when all of it went. */
static inline int kl_test_rm_tree(const char *dir)
{
    return nftw(dir, kl_test_rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* Starts $KL_BIN_DIR/keylink-se with its state in dir/state, serving sock; waits up to
 * wait_ms for the socket to appear. Returns its pid, or 0 (child killed and reaped). */
static inline pid_t kl_test_start_se(const char *dir, const char *sock, int wait_ms)
{
    const char *bin = getenv("KL_BIN_DIR");
    char prog[512], state[512];
    snprintf(prog, sizeof prog, "%s/keylink-se", bin ? bin : ".");
    snprintf(state, sizeof state, "%s/state", dir);
    pid_t pid = fork();
    if (pid < 0) return 0; /* never kill(-1, ...) below */
    if (pid == 0) {
        execl(prog, prog, "--state", state, "--socket", sock, (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < wait_ms / 50; i++) {
        struct stat sb;
        if (stat(sock, &sb) == 0) return pid;
        struct timespec ts = {0, 50 * 1000000L};
        nanosleep(&ts, NULL);
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    return 0;
}

#endif
