/* Who holds the state directory's lock, so a second daemon on the same --state can say
 * which process to stop instead of a bare KL_E_BUSY. Linux: /proc/locks lists each
 * flock with its pid, device and inode; elsewhere the holder stays unknown. */
/* _DEFAULT_SOURCE (major, minor, flock) comes from the build flags */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "daemon.h"

int kl_daemon_state_locked(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return 0; /* missing: nobody serves it yet */
    int busy = flock(fd, LOCK_EX | LOCK_NB) != 0;
    close(fd); /* releases the probe's lock at once */
    return busy;
}

long kl_daemon_lock_holder(const char *dir, char *comm, size_t cap)
{
    struct stat st;
    if (cap) comm[0] = 0;
    if (stat(dir, &st) != 0) return 0;
    FILE *f = fopen("/proc/locks", "re");
    if (!f) return 0;
    char line[256];
    long pid = 0;
    while (!pid && fgets(line, sizeof line, f)) {
        char kind[16];
        long p;
        unsigned int ma, mi;
        unsigned long ino;
        /* "1: FLOCK  ADVISORY  WRITE 1234 08:01:5678 0 EOF"; waiters carry "->" */
        if (strstr(line, "->")) continue;
        if (sscanf(line, "%*s %15s %*s %*s %ld %x:%x:%lu", kind, &p, &ma, &mi, &ino) != 5) continue;
        if (!strcmp(kind, "FLOCK") && p > 0 && ma == major(st.st_dev) && mi == minor(st.st_dev) &&
            ino == (unsigned long)st.st_ino)
            pid = p;
    }
    fclose(f);
    if (!pid || !cap) return pid;
    char path[64];
    snprintf(path, sizeof path, "/proc/%ld/comm", pid);
    FILE *c = fopen(path, "re");
    if (c) {
        if (fgets(comm, (int)cap, c)) comm[strcspn(comm, "\n")] = 0;
        fclose(c);
    }
    return pid;
}
