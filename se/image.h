/*
 * Crash-safe persistence of one chip's state: a single encrypted, authenticated image
 * file per state directory (AES-256-GCM under a per-chip key that stands in for the
 * PUF), replaced atomically on every commit. The chip model serializes its state to
 * bytes (se/state_codec.c) and hands them here; this layer never looks inside.
 * File format, commit protocol and limits: docs/persistence.md.
 *
 * Files in the state directory: chip.key (32 bytes, 0600), chip.img (the image),
 * chip.img.tmp (only during a commit or after a crash in one; removed on open).
 * One process at a time: the directory is locked with flock while open.
 */
#ifndef KL_SE_IMAGE_H
#define KL_SE_IMAGE_H

#include <stddef.h>
#include <stdint.h>

#include "keylink/status.h"

/* Largest plaintext an image holds. The chip has 8 KB of user storage; the rest is
 * headroom for per-object metadata, identity key, counters and configuration. */
#define KL_IMAGE_MAX_DATA (1u << 20)

struct kl_image;

/* Opens (and locks) the chip state in dir. Creates dir 0700 if missing. If dir holds no
 * chip yet (no key file and no image), makes a per-chip key file of 32 random bytes
 * (mode 0600, written atomically) and sets *fresh = 1; otherwise *fresh = 0.
 * Errors (message on stderr, never key bytes):
 *   KL_E_BUSY     another process holds the directory open;
 *   KL_E_STORAGE  key file with wrong size, type, owner or group/other permissions, an
 *                 image without its key file, or an I/O failure;
 *   KL_E_ARG      NULL arguments.
 * A leftover temp file from a crashed commit is removed. */
kl_status kl_image_open(const char *dir, struct kl_image **out, int *fresh);

/* The plaintext of the last committed image in a malloc'd buffer (free it with
 * kl_image_free_data, which wipes it). KL_E_NOT_FOUND if nothing was committed yet
 * (also possible when *fresh was 0: a crash between key creation and the first commit;
 * treat it as a factory-fresh chip). KL_E_STORAGE with a message on stderr if the image
 * fails authentication, is truncated or too long, has a bad header or version, or is
 * older than an image this handle already loaded or committed; *data is then NULL.
 * Nothing is ever half-loaded. */
kl_status kl_image_load(struct kl_image *im, uint8_t **data, size_t *len);

/* Durably and atomically replaces the image with data (len <= KL_IMAGE_MAX_DATA; len 0
 * is allowed): write temp file, fsync it, rename it over the image, fsync the
 * directory. When it returns KL_OK the new image survives a crash or power loss. On any
 * failure it returns KL_E_STORAGE (message on stderr), the temp file is removed and the
 * old image stays as it was. KL_E_ARG for NULL or too long data. */
kl_status kl_image_commit(struct kl_image *im, const uint8_t *data, size_t len);

/* Generation of the last image loaded or committed through this handle (0 if none).
 * Each commit writes the previous generation + 1. */
uint64_t kl_image_generation(const struct kl_image *im);

/* Wipes and frees a buffer from kl_image_load. NULL is fine. */
void kl_image_free_data(uint8_t *data, size_t len);

/* Wipes the key, unlocks the directory, frees. NULL is fine. */
void kl_image_close(struct kl_image *im);

#endif
