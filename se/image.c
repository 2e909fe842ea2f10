/*
 * The chip's encrypted, authenticated state image and its atomic commit (image.h,
 * docs/persistence.md). AES-256-GCM with the header as AAD; temp file, fsync, rename,
 * fsync dir. OpenSSL libcrypto directly: this file sits below the crypto toolbox.
 */
#define _GNU_SOURCE /* O_DIRECTORY, O_NOFOLLOW, O_CLOEXEC, flock; O_NONBLOCK: a FIFO must not hang \
                       open */
#include "image.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "fault.h"

#define KEY_FILE "chip.key"
#define KEY_TMP "chip.key.tmp"
#define IMG_FILE "chip.img"
#define IMG_TMP "chip.img.tmp"

#define KEY_LEN 32
#define NONCE_LEN 12
#define TAG_LEN 16
#define HDR_LEN 32 /* magic 4, version 2, reserved 2, generation 8, length 4, nonce 12 */
#define FORMAT_VERSION 1

struct kl_image {
    int dirfd; /* open, flock'd; also fsynced after renames */
    char *dir; /* for messages */
    uint8_t key[KEY_LEN];
    uint64_t gen; /* highest generation loaded or committed here */
    int have_gen; /* an image was loaded or committed through this handle */
};

static void put_u16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static void put_u32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (24 - 8 * i));
}

static void put_u64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (56 - 8 * i));
}

static uint32_t get_u32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

static uint64_t get_u64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = (v << 8) | p[i];
    return v;
}

static int write_all(int fd, const uint8_t *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        if (w == 0) {
            errno = EIO;
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Reads exactly n bytes; -1 with errno, or -2 if the file ended early. */
static int read_all(int fd, uint8_t *p, size_t n)
{
    while (n > 0) {
        ssize_t r = read(fd, p, n);
        if (r < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        if (r == 0) return -2;
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

/* mkdir -p with mode 0700 for what it creates. */
static int make_dirs(const char *dir)
{
    size_t n = strlen(dir);
    char *p = malloc(n + 1);
    if (p == NULL) {
        errno = ENOMEM;
        return -1;
    }
    memcpy(p, dir, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (p[i] != '/' && p[i] != '\0') continue;
        char saved = p[i];
        p[i] = '\0';
        if (mkdir(p, 0700) != 0 && errno != EEXIST) {
            int e = errno;
            free(p);
            errno = e;
            return -1;
        }
        p[i] = saved;
    }
    free(p);
    return 0;
}

static void remove_leftover(struct kl_image *im, const char *name)
{
    if (unlinkat(im->dirfd, name, 0) != 0 && errno != ENOENT)
        fprintf(stderr, "keylink: state dir %s: cannot remove leftover %s: %s\n", im->dir, name,
                strerror(errno));
}

/* Writes the per-chip key atomically: temp file 0600, fsync, rename, fsync dir. */
static kl_status create_key(struct kl_image *im)
{
    if (RAND_priv_bytes(im->key, KEY_LEN) != 1) {
        fprintf(stderr, "keylink: state dir %s: no random bytes for the chip key\n", im->dir);
        return KL_E_STORAGE;
    }
    int fd =
        openat(im->dirfd, KEY_TMP, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
    const char *what = "create";
    if (fd < 0) goto fail;
    what = "write";
    if (fchmod(fd, 0600) != 0 || write_all(fd, im->key, KEY_LEN) != 0) goto fail;
    what = "fsync";
    if (fsync(fd) != 0) goto fail;
    what = "close";
    int rc = close(fd);
    fd = -1;
    if (rc != 0) goto fail;
    what = "rename";
    if (renameat(im->dirfd, KEY_TMP, im->dirfd, KEY_FILE) != 0) goto fail;
    what = "fsync the directory after writing";
    if (fsync(im->dirfd) != 0) goto fail;
    return KL_OK;
fail:
    fprintf(stderr, "keylink: state dir %s: cannot %s key file %s: %s\n", im->dir, what, KEY_FILE,
            strerror(errno));
    if (fd >= 0) close(fd);
    unlinkat(im->dirfd, KEY_TMP, 0);
    return KL_E_STORAGE;
}

static kl_status read_key(struct kl_image *im, int fd)
{
    struct stat st;
    if (fstat(fd, &st) != 0) {
        fprintf(stderr, "keylink: state dir %s: cannot stat key file: %s\n", im->dir,
                strerror(errno));
        return KL_E_STORAGE;
    }
    if (!S_ISREG(st.st_mode)) {
        fprintf(stderr, "keylink: state dir %s: key file %s is not a regular file; refusing\n",
                im->dir, KEY_FILE);
        return KL_E_STORAGE;
    }
    if (st.st_uid != geteuid()) {
        fprintf(stderr, "keylink: state dir %s: key file %s belongs to another user; refusing\n",
                im->dir, KEY_FILE);
        return KL_E_STORAGE;
    }
    if ((st.st_mode & 077) != 0) {
        fprintf(stderr,
                "keylink: state dir %s: key file %s is accessible to group or others (mode "
                "%03o); refusing, it must be 0600\n",
                im->dir, KEY_FILE, (unsigned)(st.st_mode & 0777));
        return KL_E_STORAGE;
    }
    if (st.st_size != KEY_LEN) {
        fprintf(stderr,
                "keylink: state dir %s: key file %s has %lld bytes, expected %d; refusing\n",
                im->dir, KEY_FILE, (long long)st.st_size, KEY_LEN);
        return KL_E_STORAGE;
    }
    int rc = read_all(fd, im->key, KEY_LEN);
    if (rc != 0) {
        fprintf(stderr, "keylink: state dir %s: cannot read key file %s: %s\n", im->dir, KEY_FILE,
                rc == -2 ? "file ended early" : strerror(errno));
        OPENSSL_cleanse(im->key, KEY_LEN);
        return KL_E_STORAGE;
    }
    return KL_OK;
}

void kl_image_close(struct kl_image *im)
{
    if (im == NULL) return;
    OPENSSL_cleanse(im->key, KEY_LEN);
    if (im->dirfd >= 0) close(im->dirfd); /* releases the flock */
    free(im->dir);
    free(im);
}

kl_status kl_image_open(const char *dir, struct kl_image **out, int *fresh)
{
    if (out != NULL) *out = NULL;
    if (dir == NULL || dir[0] == '\0' || out == NULL || fresh == NULL) return KL_E_ARG;
    *fresh = 0;
    struct kl_image *im = calloc(1, sizeof *im);
    if (im == NULL) return KL_E_INTERNAL;
    im->dirfd = -1;
    im->dir = strdup(dir);
    if (im->dir == NULL) {
        free(im);
        return KL_E_INTERNAL;
    }
    kl_status st = KL_E_STORAGE;
    if (make_dirs(dir) != 0) {
        fprintf(stderr, "keylink: cannot create state dir %s: %s\n", dir, strerror(errno));
        goto fail;
    }
    im->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (im->dirfd < 0) {
        fprintf(stderr, "keylink: cannot open state dir %s: %s\n", dir, strerror(errno));
        goto fail;
    }
    if (flock(im->dirfd, LOCK_EX | LOCK_NB) != 0) {
        if (errno == EWOULDBLOCK) {
            fprintf(stderr, "keylink: state dir %s is in use by another chip instance\n", dir);
            st = KL_E_BUSY;
        } else {
            fprintf(stderr, "keylink: cannot lock state dir %s: %s\n", dir, strerror(errno));
        }
        goto fail;
    }
    /* We hold the lock: any temp file is debris of a crashed commit. */
    remove_leftover(im, IMG_TMP);
    remove_leftover(im, KEY_TMP);

    /* O_NONBLOCK: a FIFO planted as key or image must not hang the open. */
    int kfd = openat(im->dirfd, KEY_FILE, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (kfd >= 0) {
        st = read_key(im, kfd);
        close(kfd);
        if (st != KL_OK) goto fail;
    } else if (errno == ENOENT) {
        struct stat ist;
        if (fstatat(im->dirfd, IMG_FILE, &ist, AT_SYMLINK_NOFOLLOW) == 0) {
            fprintf(stderr,
                    "keylink: state dir %s has an image but no key file %s; refusing (the "
                    "chip's state cannot be decrypted)\n",
                    dir, KEY_FILE);
            goto fail;
        }
        st = create_key(im);
        if (st != KL_OK) goto fail;
        *fresh = 1;
    } else {
        fprintf(stderr, "keylink: state dir %s: cannot open key file %s: %s\n", dir, KEY_FILE,
                strerror(errno));
        goto fail;
    }
    *out = im;
    return KL_OK;
fail:
    kl_image_close(im);
    return st;
}

uint64_t kl_image_generation(const struct kl_image *im)
{
    return im != NULL ? im->gen : 0;
}

void kl_image_free_data(uint8_t *data, size_t len)
{
    if (data == NULL) return;
    OPENSSL_cleanse(data, len);
    free(data);
}

/* AES-256-GCM over data with aad = hdr (which already holds the nonce). encrypt: out gets
 * the ciphertext and tag is written; decrypt: tag is checked. 0 on success. */
static int gcm(const uint8_t key[KEY_LEN], int encrypt, const uint8_t hdr[HDR_LEN],
               const uint8_t *in, size_t len, uint8_t *out, uint8_t tag[TAG_LEN])
{
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    if (ctx == NULL) return -1;
    int ok = 0, n = 0;
    const uint8_t *nonce = hdr + HDR_LEN - NONCE_LEN;
    if (EVP_CipherInit_ex(ctx, EVP_aes_256_gcm(), NULL, NULL, NULL, encrypt) != 1 ||
        EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, NONCE_LEN, NULL) != 1 ||
        EVP_CipherInit_ex(ctx, NULL, NULL, key, nonce, encrypt) != 1 ||
        EVP_CipherUpdate(ctx, NULL, &n, hdr, HDR_LEN) != 1)
        goto done;
    /* len <= KL_IMAGE_MAX_DATA, so it fits an int. */
    if (len > 0 && EVP_CipherUpdate(ctx, out, &n, in, (int)len) != 1) goto done;
    if (!encrypt && EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, TAG_LEN, tag) != 1) goto done;
    if (EVP_CipherFinal_ex(ctx, out + len, &n) != 1) goto done; /* decrypt: the tag did not match */
    if (encrypt && EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, TAG_LEN, tag) != 1) goto done;
    ok = 1;
done:
    EVP_CIPHER_CTX_free(ctx);
    return ok ? 0 : -1;
}

kl_status kl_image_load(struct kl_image *im, uint8_t **data, size_t *len)
{
    if (data != NULL) *data = NULL;
    if (len != NULL) *len = 0;
    if (im == NULL || data == NULL || len == NULL) return KL_E_ARG;
    int fd = openat(im->dirfd, IMG_FILE, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT && !im->have_gen) return KL_E_NOT_FOUND;
        fprintf(stderr, "keylink: state dir %s: cannot open image %s: %s\n", im->dir, IMG_FILE,
                strerror(errno));
        return KL_E_STORAGE;
    }
    kl_status st = KL_E_STORAGE;
    uint8_t *file = NULL, *plain = NULL;
    size_t plen = 0;
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        fprintf(stderr, "keylink: state dir %s: cannot stat image: %s\n", im->dir, strerror(errno));
        goto out;
    }
    if (!S_ISREG(sb.st_mode)) {
        fprintf(stderr, "keylink: state dir %s: image %s is not a regular file; refusing\n",
                im->dir, IMG_FILE);
        goto out;
    }
    if (sb.st_size < HDR_LEN + TAG_LEN) {
        fprintf(stderr,
                "keylink: state dir %s: image %s is truncated (%lld bytes, shorter than "
                "header and tag); refusing\n",
                im->dir, IMG_FILE, (long long)sb.st_size);
        goto out;
    }
    if (sb.st_size > (off_t)HDR_LEN + KL_IMAGE_MAX_DATA + TAG_LEN) {
        fprintf(stderr, "keylink: state dir %s: image %s is too large (%lld bytes); refusing\n",
                im->dir, IMG_FILE, (long long)sb.st_size);
        goto out;
    }
    size_t fsize = (size_t)sb.st_size;
    file = malloc(fsize);
    if (file == NULL) {
        st = KL_E_INTERNAL;
        goto out;
    }
    int rc = read_all(fd, file, fsize);
    if (rc != 0) {
        fprintf(stderr, "keylink: state dir %s: cannot read image %s: %s\n", im->dir, IMG_FILE,
                rc == -2 ? "file ended early" : strerror(errno));
        goto out;
    }
    if (memcmp(file, "KLSE", 4) != 0) {
        fprintf(stderr, "keylink: state dir %s: image %s has a bad magic; refusing\n", im->dir,
                IMG_FILE);
        goto out;
    }
    unsigned version = ((unsigned)file[4] << 8) | file[5];
    if (version != FORMAT_VERSION || file[6] != 0 || file[7] != 0) {
        fprintf(stderr,
                "keylink: state dir %s: image %s has format version %u (reserved %02x%02x), "
                "this build reads version %d; refusing\n",
                im->dir, IMG_FILE, version, file[6], file[7], FORMAT_VERSION);
        goto out;
    }
    uint64_t gen = get_u64(file + 8);
    uint32_t dlen = get_u32(file + 16);
    if (dlen > KL_IMAGE_MAX_DATA || (size_t)dlen + HDR_LEN + TAG_LEN != fsize) {
        fprintf(stderr,
                "keylink: state dir %s: image %s is truncated or has extra bytes (header says "
                "%lu data bytes, file has %zu bytes); refusing\n",
                im->dir, IMG_FILE, (unsigned long)dlen, fsize);
        goto out;
    }
    plen = dlen;
    plain = malloc(plen > 0 ? plen : 1);
    if (plain == NULL) {
        st = KL_E_INTERNAL;
        goto out;
    }
    if (gcm(im->key, 0, file, file + HDR_LEN, plen, plain, file + HDR_LEN + plen) != 0) {
        fprintf(stderr,
                "keylink: state dir %s: image %s failed authentication (altered, or not made "
                "with this chip's key); refusing\n",
                im->dir, IMG_FILE);
        goto out;
    }
    /* Only now is the generation trustworthy. */
    if (gen == 0) {
        fprintf(stderr,
                "keylink: state dir %s: image %s has generation 0, which no commit writes; "
                "refusing\n",
                im->dir, IMG_FILE);
        goto out;
    }
    if (im->have_gen && gen < im->gen) {
        fprintf(stderr,
                "keylink: state dir %s: image %s has generation %llu, older than generation "
                "%llu already seen; refusing a rolled-back image\n",
                im->dir, IMG_FILE, (unsigned long long)gen, (unsigned long long)im->gen);
        goto out;
    }
    im->gen = gen;
    im->have_gen = 1;
    *data = plain;
    *len = plen;
    plain = NULL;
    st = KL_OK;
out:
    kl_image_free_data(plain, plen);
    free(file);
    close(fd);
    return st;
}

kl_status kl_image_commit(struct kl_image *im, const uint8_t *data, size_t len)
{
    if (im == NULL || (data == NULL && len > 0) || len > KL_IMAGE_MAX_DATA) return KL_E_ARG;
    if (!im->have_gen) {
        /* Never replace a chip's state that nobody has looked at (e.g. one that failed to
         * load): that would destroy it. */
        struct stat ist;
        if (fstatat(im->dirfd, IMG_FILE, &ist, AT_SYMLINK_NOFOLLOW) == 0) {
            fprintf(stderr,
                    "keylink: state dir %s: refusing to replace image %s that was not loaded "
                    "first\n",
                    im->dir, IMG_FILE);
            return KL_E_STORAGE;
        }
    }
    size_t fsize = HDR_LEN + len + TAG_LEN;
    uint8_t *file = malloc(fsize);
    if (file == NULL) return KL_E_INTERNAL;
    uint64_t gen = im->gen + 1;
    memcpy(file, "KLSE", 4);
    put_u16(file + 4, FORMAT_VERSION);
    put_u16(file + 6, 0);
    put_u64(file + 8, gen);
    put_u32(file + 16, (uint32_t)len);
    kl_status st = KL_E_STORAGE;
    int fd = -2; /* -2: nothing on disk yet; -1: temp file may exist, closed */
    const char *what = "encrypt";
    /* A fresh random nonce per commit: at most 2^32 commits per key would keep the GCM
     * collision bound; a chip lives 10,000 writes per object. */
    if (RAND_bytes(file + HDR_LEN - NONCE_LEN, NONCE_LEN) != 1 ||
        gcm(im->key, 1, file, data, len, file + HDR_LEN, file + HDR_LEN + len) != 0)
        goto fail;
    what = "create";
    fd = openat(im->dirfd, IMG_TMP, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) goto fail;
    what = "write";
    if (kl_fault_due(KL_FAULT_WRITE)) {
        (void)write_all(fd, file, fsize / 2);
        kl_fault_die();
    }
    if (write_all(fd, file, fsize) != 0) goto fail;
    kl_fault_point(KL_FAULT_FSYNC_FILE);
    what = "fsync";
    if (fsync(fd) != 0) goto fail;
    what = "close";
    int rc = close(fd);
    fd = -1;
    if (rc != 0) goto fail;
    kl_fault_point(KL_FAULT_RENAME);
    what = "rename";
    if (renameat(im->dirfd, IMG_TMP, im->dirfd, IMG_FILE) != 0) goto fail;
    /* From here the new image is in place; the old one is gone. */
    im->gen = gen;
    im->have_gen = 1;
    kl_fault_point(KL_FAULT_FSYNC_DIR);
    if (fsync(im->dirfd) != 0) {
        fprintf(stderr,
                "keylink: state dir %s: cannot fsync the directory after replacing image %s: "
                "%s; the change may not survive a power loss\n",
                im->dir, IMG_FILE, strerror(errno));
        free(file);
        return KL_E_STORAGE;
    }
    free(file);
    return KL_OK;
fail:
    if (fd == -2) {
        fprintf(stderr, "keylink: state dir %s: cannot encrypt the image; old image kept\n",
                im->dir);
    } else {
        int e = errno;
        fprintf(stderr, "keylink: state dir %s: cannot %s temp image %s: %s; old image kept\n",
                im->dir, what, IMG_TMP, strerror(e));
        if (fd >= 0) close(fd);
        unlinkat(im->dirfd, IMG_TMP, 0);
    }
    free(file);
    return st;
}
