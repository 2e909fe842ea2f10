/* A random source for POSIX hosts (tools, tests): /dev/urandom. MCU ports pass their
 * TRNG to kl_se_channel_open instead; there this answers KL_E_UNSUPPORTED. */
#include "keylink/channel.h"

#ifdef KL_HAVE_TRANSPORT_UNIX /* set by keylink/se.h on POSIX hosts */
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

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
#else
kl_status kl_random_os(void *ctx, uint8_t *out, size_t n)
{
    (void)ctx;
    (void)out;
    (void)n;
    return KL_E_UNSUPPORTED;
}
#endif
