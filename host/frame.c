/* Frame encoder/decoder and CRC-16/CCITT-FALSE (docs/protocol.md, "Frame"). */
#include <string.h>

#include "keylink/frame.h"

uint16_t kl_crc16(const uint8_t *d, size_t n)
{
    uint16_t crc = 0xFFFF;
    for (size_t i = 0; i < n; i++) {
        crc ^= (uint16_t)(d[i] << 8);
        for (int b = 0; b < 8; b++)
            crc = (crc & 0x8000) ? (uint16_t)((crc << 1) ^ 0x1021) : (uint16_t)(crc << 1);
    }
    return crc;
}

kl_status kl_frame_encode(uint8_t code, uint8_t flags, const uint8_t *payload, size_t n,
                          uint8_t *out, size_t cap, size_t *out_len)
{
    if (!out || !out_len || (n && !payload)) return KL_E_ARG;
    if (flags & ~KL_FRAME_FLAGS_KNOWN) return KL_E_ARG;
    if (n > KL_FRAME_MAX_PAYLOAD) return KL_E_BAD_LENGTH;
    if (cap < n + KL_FRAME_OVERHEAD) return KL_E_BUFFER;
    /* memmove: the payload may already sit at out + 4 (or overlap it) */
    if (n && payload != out + KL_FRAME_HEADER) memmove(out + KL_FRAME_HEADER, payload, n);
    out[0] = code;
    out[1] = flags;
    out[2] = (uint8_t)(n >> 8);
    out[3] = (uint8_t)n;
    uint16_t crc = kl_crc16(out, KL_FRAME_HEADER + n);
    out[KL_FRAME_HEADER + n] = (uint8_t)(crc >> 8);
    out[KL_FRAME_HEADER + n + 1] = (uint8_t)crc;
    *out_len = n + KL_FRAME_OVERHEAD;
    return KL_OK;
}

kl_status kl_frame_total_len(const uint8_t hdr[KL_FRAME_HEADER], size_t *total)
{
    if (!hdr || !total) return KL_E_ARG;
    size_t n = ((size_t)hdr[2] << 8) | hdr[3];
    if (n > KL_FRAME_MAX_PAYLOAD || (hdr[1] & ~KL_FRAME_FLAGS_KNOWN)) return KL_E_BAD_FRAME;
    *total = n + KL_FRAME_OVERHEAD;
    return KL_OK;
}

kl_status kl_frame_decode(const uint8_t *in, size_t n, struct kl_frame *f)
{
    if (!in || !f) return KL_E_ARG;
    size_t total;
    if (n < KL_FRAME_OVERHEAD) return KL_E_BAD_FRAME;
    if (kl_frame_total_len(in, &total) != KL_OK || total != n) return KL_E_BAD_FRAME;
    size_t plen = n - KL_FRAME_OVERHEAD;
    uint16_t want = (uint16_t)((in[n - 2] << 8) | in[n - 1]);
    if (kl_crc16(in, n - 2) != want) return KL_E_BAD_FRAME;
    f->code = in[0];
    f->flags = in[1];
    f->len = (uint16_t)plen;
    f->payload = in + KL_FRAME_HEADER;
    return KL_OK;
}
