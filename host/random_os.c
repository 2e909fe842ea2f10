/* A random source for POSIX hosts (tools, tests): /dev/urandom. MCU ports pass their
 * TRNG instead. */
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include "keylink/channel.h"

kl_status kl_random_os(void *ctx, uint8_t *out, size_t n)
{
    (void)ctx;
    if (!out && n) return KL_E_ARG;
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return KL_E_IO;
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, out + got, n - got);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) {
            close(fd);
            return KL_E_IO;
        }
        got += (size_t)r;
    }
    close(fd);
    return KL_OK;
}
