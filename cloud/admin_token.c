/* The control API's admin token: DIR/admin-token, 64 hex digits, mode 0600. */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "kl_pki.h"
#include "server_pki.h"

kl_reg_rc kl_admin_token_ensure(const char *dir, char token[65], struct kl_reg_err *err)
{
    char path[4096];
    if ((size_t)snprintf(path, sizeof path, "%s/admin-token", dir) >= sizeof path)
        return kl_reg_fail(err, KL_REG_INVALID, "data directory path too long");
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd >= 0) {
        struct stat st;
        char buf[80];
        ssize_t n = -1;
        if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & 077) == 0)
            n = read(fd, buf, sizeof buf);
        close(fd);
        while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
            n--;
        if (n != 64 || strspn(buf, "0123456789abcdef") < 64) {
            OPENSSL_cleanse(buf, sizeof buf);
            return kl_reg_fail(err, KL_REG_INTERNAL, "%s is not a 0600 file of 64 hex digits",
                               path);
        }
        memcpy(token, buf, 64);
        token[64] = 0;
        OPENSSL_cleanse(buf, sizeof buf);
        return KL_REG_OK;
    }
    unsigned char raw[32];
    if (RAND_bytes(raw, sizeof raw) != 1) return kl_reg_fail(err, KL_REG_INTERNAL, "no randomness");
    static const char hd[] = "0123456789abcdef";
    for (int i = 0; i < 32; i++) {
        token[2 * i] = hd[raw[i] >> 4];
        token[2 * i + 1] = hd[raw[i] & 15];
    }
    token[64] = 0;
    OPENSSL_cleanse(raw, sizeof raw);
    /* written through a temp file and rename: a reader never sees half a token */
    if (kl_pki_file_write(path, token, 64, 0600, 0) != KL_OK)
        return kl_reg_fail(err, KL_REG_INTERNAL, "cannot write %s: %s", path, kl_pki_error());
    return KL_REG_OK;
}
