/*
 * Shared by the crash tests (test_crash_*.c): run this same program as a child that
 * applies changes and reports each acknowledged one as an 8-byte big-endian number on
 * its stdout (a pipe), kill it with SIGKILL after a random delay or let KEYLINK_FAULT
 * kill it, and collect every acknowledgement it managed to send.
 */
#ifndef KL_SE_TESTS_CRASH_HARNESS_H
#define KL_SE_TESTS_CRASH_HARNESS_H

#define _GNU_SOURCE
#include "kl_test.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

struct crash_run {
    pid_t pid;
    int fd;          /* read end of the ack pipe */
    uint8_t part[8]; /* a partly read ack */
    size_t npart;
    uint64_t last;    /* last acknowledged number */
    uint64_t count;   /* acks received in this run */
    uint64_t stop_at; /* crash_read returns once count reaches it (0: never) */
    int eof;
};

static uint64_t crash_rng_state;

static inline uint64_t crash_rand(void)
{
    /* xorshift64*: reproducible from the printed seed. */
    crash_rng_state ^= crash_rng_state >> 12;
    crash_rng_state ^= crash_rng_state << 25;
    crash_rng_state ^= crash_rng_state >> 27;
    return crash_rng_state * 2685821657736338717ULL;
}

static inline void crash_seed(void)
{
    const char *s = getenv("KL_CRASH_SEED");
    uint64_t seed = s != NULL ? strtoull(s, NULL, 0) : 0;
    if (seed == 0) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        seed = ((uint64_t)ts.tv_sec * 1000000007ULL) ^ (uint64_t)ts.tv_nsec ^ (uint64_t)getpid();
        if (seed == 0) seed = 1;
    }
    crash_rng_state = seed;
    printf("crash test seed %llu (set KL_CRASH_SEED to repeat)\n", (unsigned long long)seed);
}

static inline uint64_t crash_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Where the state dirs go: KL_CRASH_DIR, else /dev/shm, else TMPDIR or /tmp. A SIGKILL
 * leaves the page cache intact, so these tests need no disk: what they prove (the
 * image is the old or the new one, never torn, never missing an acknowledged change)
 * is the same on tmpfs, where fsync does not wait for a busy disk. The fsync steps
 * still run, and KEYLINK_FAULT kills at each of them. */
static inline const char *crash_base_dir(void)
{
    const char *d = getenv("KL_CRASH_DIR");
    if (d != NULL && d[0] != '\0') return d;
    if (access("/dev/shm", W_OK | X_OK) == 0) return "/dev/shm";
    d = getenv("TMPDIR");
    return d != NULL && d[0] != '\0' ? d : "/tmp";
}

/* Starts this program as "argv0 --child args..." with fault (NULL: none) in
 * KEYLINK_FAULT. 0 on success. */
static inline int crash_spawn(struct crash_run *r, char *const args[], const char *fault)
{
    memset(r, 0, sizeof *r);
    int p[2];
    if (pipe(p) != 0) return -1;
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        close(p[0]);
        close(p[1]);
        return -1;
    }
    if (pid == 0) {
        close(p[0]);
        if (dup2(p[1], 1) < 0) _exit(120);
        close(p[1]);
        if (fault != NULL)
            setenv("KEYLINK_FAULT", fault, 1);
        else
            unsetenv("KEYLINK_FAULT");
        execv("/proc/self/exe", args);
        _exit(121);
    }
    close(p[1]);
    r->pid = pid;
    r->fd = p[0];
    return 0;
}

/* Starts this program's child side: "--child dir target stay" (stay 1: wait to be killed
 * after the last change), with fault (NULL: none) in KEYLINK_FAULT. 0 on success. */
static inline int crash_spawn_child(struct crash_run *r, const char *dir, uint64_t target, int stay,
                                    const char *fault)
{
    char tbuf[32];
    snprintf(tbuf, sizeof tbuf, "%llu", (unsigned long long)target);
    char *args[] = {"crash-child", "--child", (char *)dir, tbuf, stay ? "1" : "0", NULL};
    return crash_spawn(r, args, fault);
}

static inline uint64_t crash_be64(const uint8_t *b)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = (v << 8) | b[i];
    return v;
}

/* Reads acks until EOF or until timeout_ms passes (-1: until EOF). Acks must rise by
 * one each time; returns -1 if they do not. */
static inline int crash_read(struct crash_run *r, int timeout_ms)
{
    uint64_t end = crash_now_ms() + (uint64_t)(timeout_ms < 0 ? 0 : timeout_ms);
    while (!r->eof && (r->stop_at == 0 || r->count < r->stop_at)) {
        int wait = -1;
        if (timeout_ms >= 0) {
            uint64_t now = crash_now_ms();
            if (now >= end) break;
            wait = (int)(end - now);
        }
        struct pollfd pf = {.fd = r->fd, .events = POLLIN};
        int pr = poll(&pf, 1, wait);
        if (pr < 0 && errno == EINTR) continue;
        if (pr <= 0) break;
        uint8_t buf[512];
        ssize_t n = read(r->fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            r->eof = 1;
            break;
        }
        for (ssize_t i = 0; i < n; i++) {
            r->part[r->npart++] = buf[i];
            if (r->npart == 8) {
                uint64_t v = crash_be64(r->part);
                r->npart = 0;
                if (r->count > 0 && v != r->last + 1) {
                    fprintf(stderr, "FAIL: acks out of order: %llu after %llu\n",
                            (unsigned long long)v, (unsigned long long)r->last);
                    return -1;
                }
                r->last = v;
                r->count++;
            }
        }
    }
    return 0;
}

/* Kills (if kill_it), drains the pipe, reaps. Returns the wait status. */
static inline int crash_finish(struct crash_run *r, int kill_it);

/* Kills the child at a random instant: one round in four 0..39 ms after the start (so
 * also while it opens and loads), the others 0..3 ms after its 1st..20th
 * acknowledgement (while it streams changes, whatever the speed of the disk).
 * *rc gets -1 if the acks were out of order. Returns the wait status. */
static inline int crash_kill_random(struct crash_run *r, int *rc)
{
    if (crash_rand() % 4 == 0) {
        *rc = crash_read(r, (int)(crash_rand() % 40));
    } else {
        r->stop_at = 1 + crash_rand() % 20;
        *rc = crash_read(r, 30000);
        r->stop_at = 0;
        struct timespec ts = {0, (long)(crash_rand() % 3000) * 1000};
        nanosleep(&ts, NULL);
    }
    return crash_finish(r, 1);
}

/* Child side: after its last change a child that is to be killed waits for it. */
static inline void crash_wait_for_kill(void)
{
    for (;;)
        pause();
}

static inline int crash_finish(struct crash_run *r, int kill_it)
{
    if (kill_it) kill(r->pid, SIGKILL);
    (void)crash_read(r, -1);
    close(r->fd);
    int ws = 0;
    while (waitpid(r->pid, &ws, 0) < 0 && errno == EINTR) {
    }
    return ws;
}

/* Child side: reports one acknowledged change. */
static inline int crash_ack(uint64_t v)
{
    uint8_t b[8];
    for (int i = 0; i < 8; i++)
        b[i] = (uint8_t)(v >> (56 - 8 * i));
    return write(1, b, 8) == 8 ? 0 : -1;
}

static inline int crash_exists(const char *dir, const char *name)
{
    char p[512];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    struct stat st;
    return lstat(p, &st) == 0;
}

static inline long crash_size(const char *dir, const char *name)
{
    char p[512];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    struct stat st;
    return lstat(p, &st) == 0 ? (long)st.st_size : -1;
}

static inline void crash_rm_state(const char *dir)
{
    const char *names[] = {"chip.key", "chip.key.tmp", "chip.img", "chip.img.tmp"};
    char p[512];
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        snprintf(p, sizeof p, "%s/%s", dir, names[i]);
        unlink(p);
    }
    rmdir(dir);
}

/* Parent side: the child's acks must go on right after floor, the state it started from.
 * Prints why and returns -1 when they do not. */
static inline int crash_acks_follow(const struct crash_run *r, uint64_t floor)
{
    if (r->count > 0 && r->last - r->count != floor) {
        fprintf(stderr, "FAIL: child started after %llu, state was %llu\n",
                (unsigned long long)(r->last - r->count), (unsigned long long)floor);
        return -1;
    }
    return 0;
}

/* Parent side: makes a fresh crash_base_dir()/prefix-XXXXXX in base and names its state
 * directory base/state in dir (created by the chip or image store). 0 on success. */
static inline int crash_make_dirs(const char *prefix, char *base, size_t bcap, char *dir,
                                  size_t dcap)
{
    snprintf(base, bcap, "%s/%s-XXXXXX", crash_base_dir(), prefix);
    if (mkdtemp(base) == NULL) {
        perror("mkdtemp");
        return -1;
    }
    snprintf(dir, dcap, "%s/state", base);
    return 0;
}

/* Parent side: removes both directories and reports; main's exit status. */
static inline int crash_done(const char *base, const char *dir, const char *test)
{
    crash_rm_state(dir);
    rmdir(base);
    if (kl_fails != 0) {
        fprintf(stderr, "%d check(s) failed\n", kl_fails);
        return 1;
    }
    printf("%s: all checks passed\n", test);
    return 0;
}
#endif
