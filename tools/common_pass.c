/* The CA passphrase from a file, the environment, or a no-echo terminal prompt. */
#include "common_pass.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

void kl_pass_wipe(char *buf, size_t cap)
{
    volatile char *p = buf;
    while (cap--)
        *p++ = 0;
}

/* Keep only the first line; drop "\n" or "\r\n". */
static size_t first_line(char *buf, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (buf[i] == '\n' || buf[i] == '\r') {
            n = i;
            break;
        }
    buf[n] = 0;
    return n;
}

static int from_file(const char *prog, const char *file, char *buf, size_t cap, size_t *len)
{
    int fd = open(file, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        fprintf(stderr, "%s: cannot open passphrase file %s: %s\n", prog, file, strerror(errno));
        return -1;
    }
    struct stat sb;
    if (fstat(fd, &sb) == 0 && S_ISREG(sb.st_mode) && (sb.st_mode & 077))
        fprintf(stderr, "%s: warning: passphrase file %s is readable by other users\n", prog, file);
    size_t n = 0;
    while (n < cap - 1) {
        ssize_t r = read(fd, buf + n, cap - 1 - n);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) {
            fprintf(stderr, "%s: cannot read passphrase file %s: %s\n", prog, file,
                    strerror(errno));
            close(fd);
            kl_pass_wipe(buf, cap);
            return -1;
        }
        if (r == 0) break;
        n += (size_t)r;
    }
    close(fd);
    *len = first_line(buf, n);
    if (*len == cap - 1) {
        fprintf(stderr, "%s: passphrase in %s is too long\n", prog, file);
        kl_pass_wipe(buf, cap);
        return -1;
    }
    return 0;
}

/* One no-echo line from the terminal. */
static int prompt(int tty, const char *text, char *buf, size_t cap, size_t *len)
{
    struct termios old, quiet;
    int have_term = tcgetattr(tty, &old) == 0;
    if (have_term) {
        quiet = old;
        quiet.c_lflag &= ~(tcflag_t)(ECHO | ECHONL);
        quiet.c_lflag |= ICANON;
        tcsetattr(tty, TCSAFLUSH, &quiet);
    }
    if (write(tty, text, strlen(text)) < 0) { /* nothing to do: the read still works */
    }
    size_t n = 0;
    int rc = 0;
    for (;;) {
        char c;
        ssize_t r = read(tty, &c, 1);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0 || c == '\n' || c == '\r') break;
        if (n + 1 >= cap) {
            rc = -1; /* too long: keep reading to the line end, then fail */
            continue;
        }
        buf[n++] = c;
    }
    buf[n] = 0;
    if (have_term) tcsetattr(tty, TCSAFLUSH, &old);
    if (write(tty, "\n", 1) < 0) {
    }
    *len = n;
    return rc;
}

static int from_tty(const char *prog, int confirm, char *buf, size_t cap, size_t *len)
{
    int tty = open("/dev/tty", O_RDWR | O_CLOEXEC | O_NOCTTY);
    if (tty < 0) {
        fprintf(stderr,
                "%s: no CA passphrase: give --passphrase-file FILE or set %s (no terminal to "
                "prompt on)\n",
                prog, KL_PASS_ENV);
        return -1;
    }
    int rc = prompt(tty, "CA key passphrase: ", buf, cap, len);
    if (rc == 0 && confirm) {
        char *again = calloc(1, cap);
        size_t alen = 0;
        if (!again)
            rc = -1;
        else {
            rc = prompt(tty, "Repeat the passphrase: ", again, cap, &alen);
            if (rc == 0 && (alen != *len || memcmp(again, buf, alen) != 0)) {
                fprintf(stderr, "%s: the passphrases do not match\n", prog);
                rc = -1;
            }
            kl_pass_wipe(again, cap);
            free(again);
        }
    } else if (rc != 0) {
        fprintf(stderr, "%s: passphrase too long\n", prog);
    }
    close(tty);
    return rc;
}

int kl_pass_get(const char *prog, const char *file, int confirm, char *buf, size_t cap, size_t *len)
{
    if (!buf || cap < 2 || !len) return -1;
    int rc;
    const char *env = getenv(KL_PASS_ENV);
    if (file) {
        rc = from_file(prog, file, buf, cap, len);
    } else if (env) {
        size_t n = strlen(env);
        if (n >= cap) {
            fprintf(stderr, "%s: %s is too long\n", prog, KL_PASS_ENV);
            return -1;
        }
        memcpy(buf, env, n + 1);
        *len = n;
        rc = 0;
    } else {
        rc = from_tty(prog, confirm, buf, cap, len);
    }
    if (rc == 0 && *len == 0) {
        fprintf(stderr, "%s: the CA passphrase is empty\n", prog);
        rc = -1;
    }
    if (rc != 0) kl_pass_wipe(buf, cap);
    return rc;
}
