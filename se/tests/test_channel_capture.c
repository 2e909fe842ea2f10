/*
 * Wire capture: the device library talks to a real keylink-se daemon over unix: through
 * a relay socket that records every byte both ways. With the secure channel open, a
 * known secret written to an object, a known message signed and the signature never
 * appear in the capture (a control run without the channel shows that they would), and
 * one byte changed by the relay in a protected frame closes the channel.
 */
#include "kl_test_se.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "keylink/channel.h"
#include "keylink/frame.h"
#include "keylink/se.h"

/* ---- the relay ---- */

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static uint8_t cap[4 << 20];
static size_t cap_len;
static int tamper_next; /* flip one ciphertext byte of the next protected request */
static int tampered;
static int listen_fd = -1;
static char upstream_path[100]; /* fits sun_path */

static void record(const uint8_t *d, size_t n)
{
    pthread_mutex_lock(&mu);
    if (cap_len + n <= sizeof cap) {
        memcpy(cap + cap_len, d, n);
        cap_len += n;
    } else {
        fprintf(stderr, "capture buffer full\n");
        kl_fails++;
    }
    pthread_mutex_unlock(&mu);
}

static int read_full(int fd, uint8_t *b, size_t n)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, b + got, n - got);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return -1;
        got += (size_t)r;
    }
    return 0;
}

static int write_full(int fd, const uint8_t *b, size_t n)
{
    size_t put = 0;
    while (put < n) {
        ssize_t w = write(fd, b + put, n - put);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return -1;
        put += (size_t)w;
    }
    return 0;
}

/* One whole frame from fd into b; returns its length or 0. */
static size_t read_frame(int fd, uint8_t *b)
{
    size_t total = 0;
    if (read_full(fd, b, KL_FRAME_HEADER) < 0) return 0;
    if (kl_frame_total_len(b, &total) != KL_OK) return 0;
    if (read_full(fd, b + KL_FRAME_HEADER, total - KL_FRAME_HEADER) < 0) return 0;
    return total;
}

static int connect_unix(const char *path)
{
    struct sockaddr_un a;
    memset(&a, 0, sizeof a);
    a.sun_family = AF_UNIX;
    snprintf(a.sun_path, sizeof a.sun_path, "%s", path);
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    if (fd < 0) return -1;
    if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Serves downstream connections one after another until the listening socket closes. */
static void *relay(void *arg)
{
    (void)arg;
    static uint8_t b[KL_FRAME_MAX];
    for (;;) {
        int down = accept(listen_fd, NULL, NULL);
        if (down < 0) {
            if (errno == EINTR) continue;
            return NULL;
        }
        int up = connect_unix(upstream_path);
        while (up >= 0) {
            size_t n = read_frame(down, b);
            if (!n) break;
            record(b, n);
            pthread_mutex_lock(&mu);
            int t = tamper_next && (b[1] & KL_FRAME_FLAG_ENC) && n > 4 + 17 + 2;
            if (t) tamper_next = 0, tampered++;
            pthread_mutex_unlock(&mu);
            if (t) {
                /* one ciphertext byte, CRC made good again: only the channel can notice */
                uint8_t pl[KL_FRAME_MAX_PAYLOAD];
                size_t len = n - KL_FRAME_OVERHEAD;
                memcpy(pl, b + 4, len);
                pl[1] ^= 0x40;
                if (kl_frame_encode(b[0], b[1], pl, len, b, sizeof b, &n) != KL_OK) break;
            }
            if (write_full(up, b, n) < 0) break;
            n = read_frame(up, b);
            if (!n) break;
            record(b, n);
            if (write_full(down, b, n) < 0) break;
        }
        if (up >= 0) close(up);
        close(down);
    }
}

static int contains(const uint8_t *needle, size_t n)
{
    int found = 0;
    pthread_mutex_lock(&mu);
    for (size_t i = 0; n && i + n <= cap_len && !found; i++)
        found = memcmp(cap + i, needle, n) == 0;
    pthread_mutex_unlock(&mu);
    return found;
}

/* Any 12-byte window of the needle in the capture (catches partial leaks). */
static int contains_part(const uint8_t *needle, size_t n)
{
    for (size_t i = 0; i + 12 <= n; i++)
        if (contains(needle + i, 12)) return 1;
    return 0;
}

/* Writes the secret, reads it back, signs the message; returns the signature. */
static void workload(struct kl_se *se, uint16_t base, const uint8_t *secret, size_t sn,
                     const uint8_t *msg, size_t mn, uint8_t sig[64])
{
    uint8_t back[256], pub[64];
    size_t n = 0;
    struct kl_se_object_attr a = kl_test_attr(base, KL_SE_OBJ_DATA, 200);
    OK(kl_se_create_object(se, &a));
    OK(kl_se_write_object(se, base, 0, secret, sn));
    OK(kl_se_read_object(se, base, back, sizeof back, &n));
    CHECK(n == sn && !memcmp(back, secret, sn));
    struct kl_se_object_attr k = kl_test_attr((uint16_t)(base + 1), KL_SE_OBJ_KEY_PAIR, 96);
    k.key_type = KL_SE_KEY_ECC_P256;
    k.usage1 = KL_SE_USAGE_SIGN;
    k.alg1 = KL_SE_ALG_ECDSA_SHA256;
    OK(kl_se_create_object(se, &k));
    OK(kl_se_generate_key(se, (uint16_t)(base + 1), pub));
    OK(kl_se_sign(se, (uint16_t)(base + 1), KL_SE_SIG_RAW, KL_SE_INPUT_MESSAGE, msg, mn, sig, 64,
                  &n));
    CHECK(n == 64);
    OK(kl_se_verify_with_key(se, pub, KL_SE_SIG_RAW, KL_SE_INPUT_MESSAGE, sig, 64, msg, mn));
}

int main(void)
{
    char dir[] = "/tmp/kl-capture-XXXXXX", relay_path[100], uri[120];
    if (!mkdtemp(dir)) return 2;
    snprintf(upstream_path, sizeof upstream_path, "%s/se.sock", dir);
    snprintf(relay_path, sizeof relay_path, "%s/relay.sock", dir);
    snprintf(uri, sizeof uri, "unix:%s", relay_path);
    pid_t pid = kl_test_start_se(dir, upstream_path, 10000);
    if (!pid) {
        fprintf(stderr, "could not start keylink-se (KL_BIN_DIR=%s)\n", getenv("KL_BIN_DIR"));
        return 1;
    }
    struct sockaddr_un a;
    memset(&a, 0, sizeof a);
    a.sun_family = AF_UNIX;
    snprintf(a.sun_path, sizeof a.sun_path, "%s", relay_path);
    listen_fd = socket(AF_UNIX, SOCK_STREAM, 0);
    pthread_t th;
    if (listen_fd < 0 || bind(listen_fd, (struct sockaddr *)&a, sizeof a) < 0 ||
        listen(listen_fd, 4) < 0 || pthread_create(&th, NULL, relay, NULL) != 0) {
        perror("relay");
        kill(pid, SIGKILL);
        return 1;
    }

    static const uint8_t control_secret[] = "CONTROL-SECRET-in-the-clear-0123456789";
    static const uint8_t control_msg[] = "control message signed in the clear, visible";
    static const uint8_t secret[] = "KEYLINK-CAPTURE-SECRET-7f3a9c1e5b2d8f4a6c0e";
    static const uint8_t msg[] = "capture test: this message is signed inside the channel";
    uint8_t control_sig[64], sig[64], id[64];
    struct kl_se se;

    /* Control: without the channel the capture does show all three. */
    OK(kl_se_open(&se, uri));
    workload(&se, 0x3300, control_secret, sizeof control_secret, control_msg, sizeof control_msg,
             control_sig);
    kl_se_close(&se);
    CHECK(contains(control_secret, sizeof control_secret));
    CHECK(contains(control_msg, sizeof control_msg));
    CHECK(contains(control_sig, 64));

    /* Inside the channel: none of them, not even a 12-byte piece. */
    size_t before = cap_len;
    OK(kl_se_open(&se, uri));
    OK(kl_se_get_identity(&se, id));
    OK(kl_se_channel_open(&se, id, kl_random_os, NULL));
    workload(&se, 0x3310, secret, sizeof secret, msg, sizeof msg, sig);
    OK(kl_se_channel_close(&se));
    kl_se_close(&se);
    size_t captured = cap_len - before;
    CHECK(captured > 1000); /* the channel's frames were recorded */
    CHECK(!contains_part(secret, sizeof secret - 1));
    CHECK(!contains_part(msg, sizeof msg - 1));
    CHECK(!contains_part(sig, 64));

    /* Tampering in the relay closes the channel; a new one works. */
    OK(kl_se_open(&se, uri));
    OK(kl_se_channel_open(&se, id, kl_random_os, NULL));
    OK(kl_se_ping(&se, (const uint8_t *)"before", 6));
    pthread_mutex_lock(&mu);
    tamper_next = 1;
    pthread_mutex_unlock(&mu);
    CHECK_ST(kl_se_ping(&se, (const uint8_t *)"tampered", 8), KL_E_CHANNEL);
    CHECK(tampered == 1);
    CHECK(!kl_se_channel_is_open(&se));
    struct kl_se_status s;
    OK(kl_se_status(&se, &s));
    CHECK((s.session & 2) == 0); /* the chip has no channel either */
    OK(kl_se_channel_open(&se, id, kl_random_os, NULL));
    OK(kl_se_ping(&se, (const uint8_t *)"after", 5));
    uint8_t back[256];
    size_t n = 0;
    OK(kl_se_read_object(&se, 0x3310, back, sizeof back, &n));
    CHECK(n == sizeof secret && !memcmp(back, secret, n));
    OK(kl_se_channel_close(&se));
    kl_se_close(&se);
    CHECK(!contains_part(secret, sizeof secret - 1));

    shutdown(listen_fd, SHUT_RDWR);
    close(listen_fd);
    pthread_join(th, NULL);
    kill(pid, SIGTERM);
    waitpid(pid, NULL, 0);
    if (kl_test_rm_tree(dir) != 0) fprintf(stderr, "warning: could not remove %s\n", dir);
    if (kl_fails) {
        fprintf(stderr, "%d failure(s)\n", kl_fails);
        return 1;
    }
    printf(
        "capture: %zu channel bytes recorded, no secret, message or signature in them; tampering "
        "closed the channel\n",
        captured);
    return 0;
}
