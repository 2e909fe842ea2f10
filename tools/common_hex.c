/* Hex, file and JSON-string helpers shared by the CLI tools. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "common_hex.h"

void kl_tool_hex_print(FILE *f, const uint8_t *d, size_t n)
{
    for (size_t i = 0; i < n; i++)
        fprintf(f, "%02x", d[i]);
}

char *kl_tool_hex(const uint8_t *d, size_t n, char *out, size_t cap)
{
    static const char digits[] = "0123456789abcdef";
    size_t o = 0;
    for (size_t i = 0; i < n && o + 2 < cap; i++) {
        out[o++] = digits[d[i] >> 4];
        out[o++] = digits[d[i] & 15];
    }
    if (cap) out[o] = 0;
    return out;
}

static int nib(int c)
{
    if (c >= '0' && c <= '9') return c - '0';
    c = tolower(c);
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

long kl_tool_unhex(const char *s, uint8_t *out, size_t cap)
{
    if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) s += 2;
    size_t n = 0;
    int hi = -1;
    for (; *s; s++) {
        if (isspace((unsigned char)*s) || *s == ':') continue;
        int v = nib((unsigned char)*s);
        if (v < 0) return -1;
        if (hi < 0) {
            hi = v;
            continue;
        }
        if (n >= cap) return -1;
        out[n++] = (uint8_t)(hi << 4 | v);
        hi = -1;
    }
    return hi < 0 ? (long)n : -1;
}

long kl_tool_read_file(const char *path, uint8_t *buf, size_t cap)
{
    int fd = strcmp(path, "-") ? open(path, O_RDONLY | O_CLOEXEC) : 0;
    if (fd < 0) {
        fprintf(stderr, "cannot open %s: %s\n", path, strerror(errno));
        return -1;
    }
    size_t n = 0;
    for (;;) {
        uint8_t extra;
        ssize_t k = n < cap ? read(fd, buf + n, cap - n) : read(fd, &extra, 1);
        if (k < 0 && errno == EINTR) continue;
        if (k < 0) {
            fprintf(stderr, "cannot read %s: %s\n", path, strerror(errno));
            n = (size_t)-1;
            break;
        }
        if (k == 0) break;
        if (n >= cap) {
            fprintf(stderr, "%s is too large (at most %zu bytes)\n", path, cap);
            n = (size_t)-1;
            break;
        }
        n += (size_t)k;
    }
    if (fd) close(fd);
    return n == (size_t)-1 ? -1 : (long)n;
}

int kl_tool_write_file(const char *path, const uint8_t *d, size_t n)
{
    int fd = strcmp(path, "-") ? open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600) : 1;
    if (fd < 0) {
        fprintf(stderr, "cannot create %s: %s\n", path, strerror(errno));
        return -1;
    }
    size_t done = 0;
    while (done < n) {
        ssize_t k = write(fd, d + done, n - done);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) {
            fprintf(stderr, "cannot write %s: %s\n", path, strerror(errno));
            if (fd != 1) close(fd);
            return -1;
        }
        done += (size_t)k;
    }
    if (fd != 1 && close(fd) < 0) {
        fprintf(stderr, "cannot write %s: %s\n", path, strerror(errno));
        return -1;
    }
    return 0;
}

void kl_tool_json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            fprintf(f, "\\%c", c);
        else if (c < 0x20 || c >= 0x7F)
            fprintf(f, "\\u%04x", c);
        else
            fputc(c, f);
    }
    fputc('"', f);
}
