/*
 * One wire frame in, one wire frame out (docs/protocol.md, "Frame"): the chip side of
 * the link, shared by the daemon and the in-process mem: transport.
 */
#include <string.h>

#include "channel.h"
#include "chip.h"
#include "keylink/frame.h"

/* An empty-payload answer carrying only a status. */
static size_t answer_status(kl_status st, uint8_t *out, size_t out_cap)
{
    size_t n = 0;
    if (kl_frame_encode((uint8_t)st, 0, NULL, 0, out, out_cap, &n) != KL_OK) return 0;
    return n;
}

size_t kl_chip_frame(struct kl_chip *c, const uint8_t *in, size_t in_len, uint8_t *out,
                     size_t out_cap)
{
    if (!c || !in || !out || out_cap < KL_FRAME_MAX) return 0;
    struct kl_frame f;
    if (kl_frame_decode(in, in_len, &f) != KL_OK)
        return answer_status(KL_E_BAD_FRAME, out, out_cap);

    if (f.flags & KL_FRAME_FLAG_ENC) {
        /* Protected frame: the secure channel unwraps, runs and wraps it. */
        return kl_channel_frame(c, &f, out, out_cap);
    }

    /* The response payload goes straight to its place in the output frame. */
    size_t rlen = 0;
    kl_status st = kl_chip_execute(c, f.code, f.payload, f.len, out + KL_FRAME_HEADER,
                                   KL_FRAME_MAX_PAYLOAD, &rlen);
    if (st != KL_OK || rlen > KL_FRAME_MAX_PAYLOAD) {
        if (st == KL_OK) st = KL_E_INTERNAL; /* never send a frame that lies about its size */
        rlen = 0;
    }
    size_t n = 0;
    if (kl_frame_encode((uint8_t)st, 0, out + KL_FRAME_HEADER, rlen, out, out_cap, &n) != KL_OK)
        return 0;
    return n;
}
