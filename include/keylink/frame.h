/*
 * The chip link frame (docs/protocol.md, "Frame"): the one encoder/decoder used by
 * both ends, the device library (host/) and the chip model (se/).
 *
 *   byte 0     request: command byte; response: status byte
 *   byte 1     flags: bit 0 ENC (secure channel); other bits must be 0
 *   bytes 2-3  payload length n, big-endian, 0..2048
 *   bytes 4..  payload (n bytes)
 *   last 2     CRC-16/CCITT-FALSE over everything before it, big-endian
 *
 * No allocation; the caller owns every buffer.
 */
#ifndef KEYLINK_FRAME_H
#define KEYLINK_FRAME_H

#include <stddef.h>
#include <stdint.h>

#include "keylink/status.h"

#define KL_FRAME_MAX_PAYLOAD 2048u /* the chip's communication buffer */
#define KL_FRAME_HEADER 4u
#define KL_FRAME_OVERHEAD 6u /* header + CRC */
#define KL_FRAME_MAX (KL_FRAME_MAX_PAYLOAD + KL_FRAME_OVERHEAD)
#define KL_FRAME_FLAG_ENC 0x01u
#define KL_FRAME_FLAGS_KNOWN KL_FRAME_FLAG_ENC

/* A decoded frame. payload points into the buffer given to kl_frame_decode. */
struct kl_frame {
    uint8_t code;  /* command byte (request) or status byte (response) */
    uint8_t flags; /* KL_FRAME_FLAG_* */
    uint16_t len;  /* payload length */
    const uint8_t *payload;
};

/* CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF, no reflection, xorout 0) of d[0..n).
 * "123456789" gives 0x29B1. */
uint16_t kl_crc16(const uint8_t *d, size_t n);

/* Writes the frame code|flags|n|payload|crc into out (cap bytes) and sets *out_len.
 * payload may be NULL when n is 0, and may point at out + KL_FRAME_HEADER (payload
 * already in place: nothing is copied). Returns KL_OK; KL_E_ARG for a NULL pointer or
 * reserved flag bits; KL_E_BAD_LENGTH if n > 2048; KL_E_BUFFER if cap < n + 6. */
kl_status kl_frame_encode(uint8_t code, uint8_t flags, const uint8_t *payload, size_t n,
                          uint8_t *out, size_t cap, size_t *out_len);

/* Total frame length announced by a 4-byte header (n + 6), for stream readers that
 * read the header first. KL_E_BAD_FRAME if the length exceeds 2048 or a reserved flag
 * bit is set (the rest of the stream cannot be trusted then). */
kl_status kl_frame_total_len(const uint8_t hdr[KL_FRAME_HEADER], size_t *total);

/* Decodes exactly one frame from in[0..n). Returns KL_OK and fills *f (payload points
 * into in); KL_E_BAD_FRAME if n is not exactly the announced length + 6, the length
 * exceeds 2048, a reserved flag bit is set or the CRC does not match; KL_E_ARG for
 * NULL pointers. */
kl_status kl_frame_decode(const uint8_t *in, size_t n, struct kl_frame *f);

#endif
