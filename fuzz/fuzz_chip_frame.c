/*
 * kl_chip_frame: wire frames (CRC, flags, lengths, the secure channel) into the chip.
 * Input: chip mode byte (fz_chip_restore; bit 6 opens a secure channel first through
 * the device library, bit 7 picks the host's ephemeral key from the input), then
 * records:
 *     kind u8 ‖ len u16 ‖ bytes
 * kind bit 0 = 0: bytes are a raw frame; kind bit 1 rebuilds its header length and CRC
 * so it gets past the frame check (ENC frames then reach the channel). kind bit 0 = 1:
 * bytes[0] is a command byte and the rest its payload, sent with kl_se_command (inside
 * the channel when one is open). Invariants: every answer is a well-formed frame of at
 * most 2054 bytes; a bad frame is answered KL_E_BAD_FRAME with no payload; a refused
 * protected frame is answered in the clear with no payload; whatever the answer, no
 * change of persistent state is left uncommitted.
 */
#include "chip_link.h"
#include "keylink/channel.h"
#include "keylink/frame.h"
#include "keylink/se.h"

static struct kl_se se;
static uint8_t *out; /* exactly KL_FRAME_MAX bytes */
static uint8_t rng_seed[32];
static uint32_t rng_ctr;

/* A deterministic "random" source for the host's ephemeral key. */
static kl_status fz_rng(void *ctx, uint8_t *o, size_t n)
{
    (void)ctx;
    for (size_t i = 0; i < n; i++)
        o[i] = (uint8_t)(rng_seed[i % 32] ^ (uint8_t)(rng_ctr + i * 37u));
    rng_ctr++;
    return KL_OK;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fz_chip_setup();
    out = malloc(KL_FRAME_MAX);
    FZ_CHECK(out != NULL);
    FZ_CHECK(kl_se_open_transport(&se, &fz_ops, "") == KL_OK);
    return 0;
}

static void check_answer(size_t n, int bad_frame)
{
    if (n == 0) return; /* the link closes */
    FZ_CHECK(n >= KL_FRAME_OVERHEAD && n <= KL_FRAME_MAX);
    struct kl_frame f;
    FZ_CHECK(kl_frame_decode(out, n, &f) == KL_OK);
    if (bad_frame) FZ_CHECK(f.code == (uint8_t)KL_E_BAD_FRAME && f.len == 0 && f.flags == 0);
    if (f.flags == 0 && f.code != KL_OK) FZ_CHECK(f.len == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fz_in in = {data, size};
    uint8_t mode = fz_u8(&in);
    fz_chip_restore(mode & 0x3F);
    memset(rng_seed, 0x5A, sizeof rng_seed);
    rng_ctr = 0;
    if (mode & 0x80) {
        size_t got;
        const uint8_t *p = fz_bytes(&in, 32, &got);
        memcpy(rng_seed, p, got);
    }
    if (mode & 0x40) {
        kl_status st = kl_se_channel_open(&se, kl_chip_identity_pub(fz_chip), fz_rng, NULL);
        FZ_CHECK(st == KL_OK || st == KL_E_BAD_KEY || st == KL_E_CHANNEL);
    }
    static uint8_t frame[KL_FRAME_MAX + 64], resp[KL_FRAME_MAX_PAYLOAD];
    for (int k = 0; k < 48 && in.n; k++) {
        uint8_t kind = fz_u8(&in);
        size_t want = fz_u16(&in) % (KL_FRAME_MAX + 32), got;
        const uint8_t *p = fz_bytes(&in, want, &got);
        if (kind & 1) {
            if (!got) continue;
            size_t rlen = 0;
            kl_status st = kl_se_command(&se, p[0], p + 1, got - 1, resp, sizeof resp, &rlen);
            if (st == KL_OK) FZ_CHECK(rlen <= sizeof resp);
            fz_chip_durable(p[0]);
            continue;
        }
        size_t n = got;
        memcpy(frame, p, got);
        int fixed = 0;
        if ((kind & 2) && got >= KL_FRAME_OVERHEAD &&
            got - KL_FRAME_OVERHEAD <= KL_FRAME_MAX_PAYLOAD) {
            size_t pl = got - KL_FRAME_OVERHEAD;
            frame[1] &= KL_FRAME_FLAGS_KNOWN;
            frame[2] = (uint8_t)(pl >> 8);
            frame[3] = (uint8_t)pl;
            uint16_t crc = kl_crc16(frame, KL_FRAME_HEADER + pl);
            frame[KL_FRAME_HEADER + pl] = (uint8_t)(crc >> 8);
            frame[KL_FRAME_HEADER + pl + 1] = (uint8_t)crc;
            fixed = 1;
        }
        uint8_t *exact = malloc(n ? n : 1);
        FZ_CHECK(exact != NULL);
        memcpy(exact, frame, n);
        struct kl_frame f;
        int valid = kl_frame_decode(exact, n, &f) == KL_OK;
        FZ_CHECK(!fixed || valid);
        size_t an = kl_chip_frame(fz_chip, exact, n, out, KL_FRAME_MAX);
        free(exact);
        check_answer(an, !valid);
        fz_chip_durable(frame[0]);
        if (valid && (f.flags & KL_FRAME_FLAG_ENC) && an) {
            /* the host's counters are out of step now: a raw ENC frame used the chip's */
            kl_se_channel_close(&se);
        }
    }
    kl_se_channel_close(&se);
    fz_chip_check();
    return 0;
}
