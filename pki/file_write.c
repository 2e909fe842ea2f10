/* Crash-safe file output: temp file, fsync, then rename (replace) or link (no replace). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pki_int.h"

static void sync_parent_dir(const char *path)
{
    char dir[4096];
    const char *slash = strrchr(path, '/');
    if (!slash) {
        strcpy(dir, ".");
    } else if (slash == path) {
        strcpy(dir, "/");
    } else {
        size_t n = (size_t)(slash - path);
        if (n >= sizeof dir) return;
        memcpy(dir, path, n);
        dir[n] = 0;
    }
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
}

kl_status kl_pki_file_write(const char *path, const void *data, size_t len, mode_t mode, int force)
{
    if (!path || !*path || (!data && len)) return kl_pki_fail(KL_E_ARG, "no file name given");
    size_t plen = strlen(path);
    if (plen > 4000) return kl_pki_fail(KL_E_ARG, "file name too long");
    if (!force && access(path, F_OK) == 0)
        return kl_pki_fail(KL_E_EXISTS, "%s already exists (use --force to replace it)", path);

    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp.XXXXXX", path);
    int fd = mkstemp(tmp); /* created 0600: nothing readable by others, even for a moment */
    if (fd < 0) return kl_pki_fail(KL_E_IO, "cannot create %s: %s", path, strerror(errno));
    const uint8_t *p = data;
    size_t left = len;
    int err = 0;
    while (left && !err) {
        ssize_t w = write(fd, p, left);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {
            err = errno ? errno : EIO;
            break;
        }
        p += w;
        left -= (size_t)w;
    }
    if (!err && fchmod(fd, mode) != 0) err = errno;
    if (!err && fsync(fd) != 0) err = errno;
    if (close(fd) != 0 && !err) err = errno;
    if (err) {
        unlink(tmp);
        return kl_pki_fail(KL_E_IO, "cannot write %s: %s", path, strerror(err));
    }
    if (force) {
        if (rename(tmp, path) != 0) err = errno;
    } else {
        /* link() never replaces: a file that appeared meanwhile is left alone. */
        if (link(tmp, path) != 0) err = errno;
        unlink(tmp);
    }
    if (err) {
        if (force) unlink(tmp);
        if (err == EEXIST)
            return kl_pki_fail(KL_E_EXISTS, "%s already exists (use --force to replace it)", path);
        return kl_pki_fail(KL_E_IO, "cannot write %s: %s", path, strerror(err));
    }
    sync_parent_dir(path);
    return KL_OK;
}
