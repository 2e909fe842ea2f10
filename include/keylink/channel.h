/*
 * The secure channel from the device's side (docs/secure-channel.md, docs/protocol.md
 * "Secure channel"): an ECDHE handshake with the chip's pinned identity key, then every
 * command of this handle travels as AES-256-GCM frames with per-direction counters.
 * libc only, no allocation; the channel state lives in struct kl_se.
 *
 * While the channel is open, kl_se_command and every kl_se_* wrapper go through it
 * without any change on the caller's side. Inner payloads are limited to
 * KL_SE_CHANNEL_MAX_INNER bytes (the library's own chunking, KL_SE_CHUNK, fits).
 */
#ifndef KEYLINK_CHANNEL_H
#define KEYLINK_CHANNEL_H

#include <stddef.h>
#include <stdint.h>

#include "keylink/se.h"
#include "keylink/status.h"

#define KL_SE_CHANNEL_MAX_INNER 2031u /* 2048 - 16 (tag) - 1 (inner command/status byte) */
#define KL_SE_IDENTITY_LEN 64u        /* identity public key X||Y */

/* A random source: fills out[0..n) with unpredictable bytes and returns KL_OK, or
 * returns an error (passed on to the caller). On an MCU, wrap the hardware TRNG. */
typedef kl_status (*kl_random_fn)(void *ctx, uint8_t *out, size_t n);

/* Random source for POSIX systems (reads /dev/urandom); ctx is unused. KL_E_IO if the
 * device cannot be read; KL_E_UNSUPPORTED on a build without POSIX (an MCU: pass the
 * TRNG instead). */
kl_status kl_random_os(void *ctx, uint8_t *out, size_t n);

/* GET_IDENTITY: the chip's identity public key X||Y, the key a host pins. Taken over an
 * unprotected link, it is only as trustworthy as that moment (pin it at the factory). */
kl_status kl_se_get_identity(struct kl_se *se, uint8_t pub[KL_SE_IDENTITY_LEN]);

/*
 * Opens a channel with the chip whose identity public key is chip_identity_pub (pinned,
 * X||Y). Makes an ephemeral key pair from rng, sends CHANNEL_OPEN in the clear, derives
 * the keys and checks the chip's confirmation in constant time before trusting anything.
 * A channel this handle had open is forgotten first (the chip replaces its own).
 * Returns KL_OK (the channel is open); KL_E_BAD_KEY if chip_identity_pub is not a P-256
 * point; KL_E_VERIFY_FAILED if the confirmation is wrong (not the pinned chip, or someone
 * in between); KL_E_PROTOCOL for a malformed answer; rng's error; or the chip's/link's
 * status (see se.h). On any failure no channel is open on this handle.
 */
kl_status kl_se_channel_open(struct kl_se *se, const uint8_t chip_identity_pub[KL_SE_IDENTITY_LEN],
                             kl_random_fn rng, void *rng_ctx);

/* Sends CHANNEL_CLOSE inside the channel and forgets the keys whatever the answer.
 * KL_OK also when no channel was open (nothing is sent then). */
kl_status kl_se_channel_close(struct kl_se *se);

/* 1 if this handle has a channel open. */
int kl_se_channel_is_open(const struct kl_se *se);

/*
 * Failure behaviour while open: a response that fails authentication (tag, counter,
 * header) gives KL_E_CHANNEL; a clear answer from the chip (it refused the frame, e.g.
 * KL_E_CHANNEL after a tamper or corruption on the bus) gives that status; a link failure
 * gives the link status. In every one of these cases the host side is closed too and a
 * new channel must be opened. RESET, CHANNEL_CLOSE and CHANNEL_OPEN sent through the
 * channel also close it on this side (the chip drops or replaces its channel).
 */

/* ---- pinned identity keys (for tools) ---- */

/* Parses an identity public key: 128 hex digits (X||Y) or 130 (04||X||Y), whitespace
 * around allowed; or a PEM "PUBLIC KEY" block (SubjectPublicKeyInfo, P-256, uncompressed).
 * The point is checked to be on the curve. KL_E_BAD_KEY otherwise; KL_E_ARG for NULL. */
kl_status kl_channel_pub_parse(const char *text, size_t len, uint8_t pub[KL_SE_IDENTITY_LEN]);

/* Reads a pin file (at most 4096 bytes) with kl_channel_pub_parse. KL_E_IO if it cannot be
 * read, KL_E_BAD_KEY if its content is not a key. */
kl_status kl_channel_pub_read_file(const char *path, uint8_t pub[KL_SE_IDENTITY_LEN]);

/* Writes X||Y as a PEM SubjectPublicKeyInfo ("-----BEGIN PUBLIC KEY-----", 178 bytes with
 * the final newline, NUL-terminated) into buf. KL_E_BUFFER if cap < 179. */
kl_status kl_channel_pub_to_pem(const uint8_t pub[KL_SE_IDENTITY_LEN], char *buf, size_t cap,
                                size_t *len);

#endif
