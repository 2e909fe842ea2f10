/* keylink-se internals: the serving loop and command names for the log. */
#ifndef KL_SE_DAEMON_H
#define KL_SE_DAEMON_H

#include <signal.h>
#include <stdint.h>

struct kl_chip;

struct kl_daemon_opts {
    const char *socket_path;
    int verbose;
    uint32_t read_timeout_ms; /* a started frame must complete within this */
    uint32_t idle_timeout_ms; /* 0: a quiet client keeps the chip as long as it likes */
    uint32_t tick_ms;         /* watchdog clock granularity */
};

/* Serves the chip on the already listening socket lfd until *stop becomes non-zero.
 * Returns 0 on a requested stop, 1 on a fatal socket error. */
int kl_daemon_serve(struct kl_chip *chip, int lfd, const struct kl_daemon_opts *o,
                    volatile sig_atomic_t *stop);

/* 1 when another process holds the lock of the state directory dir (a missing dir: 0). */
int kl_daemon_state_locked(const char *dir);
/* The pid of the process holding dir's lock (0 if unknown) and its name into comm
 * ("" if unknown). */
long kl_daemon_lock_holder(const char *dir, char *comm, size_t cap);

/* Protocol name of a command byte ("GET_STATUS"), or NULL if unknown. */
const char *kl_daemon_cmd_name(uint8_t cmd);

#endif
