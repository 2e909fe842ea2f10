/* Frame codec: CRC known answer, byte-exact frames from docs/protocol.md, every reject. */
#include "kl_test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keylink/frame.h"

static void crc_known_answers(void)
{
    CHECK(kl_crc16((const uint8_t *)"123456789", 9) == 0x29B1);
    CHECK(kl_crc16(NULL, 0) == 0xFFFF);
}

/* The worked examples in docs/protocol.md ("Frame", "Examples"). */
static void doc_examples(void)
{
    uint8_t out[KL_FRAME_MAX];
    size_t n = 0;
    static const uint8_t ping_empty[] = {0xF7, 0x00, 0x00, 0x00, 0x4A, 0xA0};
    CHECK(kl_frame_encode(0xF7, 0, NULL, 0, out, sizeof out, &n) == KL_OK);
    CHECK(n == sizeof ping_empty && !memcmp(out, ping_empty, n));

    static const uint8_t ping_abcd[] = {0xF7, 0x00, 0x00, 0x02, 0xAB, 0xCD, 0xF0, 0xE8};
    static const uint8_t pl[] = {0xAB, 0xCD};
    CHECK(kl_frame_encode(0xF7, 0, pl, 2, out, sizeof out, &n) == KL_OK);
    CHECK(n == sizeof ping_abcd && !memcmp(out, ping_abcd, n));

    static const uint8_t get_status[] = {0xF2, 0x00, 0x00, 0x00, 0xF6, 0xE5};
    CHECK(kl_frame_encode(0xF2, 0, NULL, 0, out, sizeof out, &n) == KL_OK);
    CHECK(n == sizeof get_status && !memcmp(out, get_status, n));

    /* decode gives the same fields back */
    struct kl_frame f;
    CHECK(kl_frame_decode(ping_abcd, sizeof ping_abcd, &f) == KL_OK);
    CHECK(f.code == 0xF7 && f.flags == 0 && f.len == 2 && f.payload == ping_abcd + 4);
    CHECK(f.payload[0] == 0xAB && f.payload[1] == 0xCD);
}

static void round_trips(void)
{
    static uint8_t pl[KL_FRAME_MAX_PAYLOAD], out[KL_FRAME_MAX];
    for (size_t i = 0; i < sizeof pl; i++)
        pl[i] = (uint8_t)(i * 7 + 3);
    size_t lens[] = {0, 1, 2, 255, 256, 2047, 2048};
    for (size_t k = 0; k < sizeof lens / sizeof lens[0]; k++) {
        size_t n = 0;
        uint8_t flags = (uint8_t)(k & 1);
        CHECK(kl_frame_encode(0x13, flags, pl, lens[k], out, sizeof out, &n) == KL_OK);
        CHECK(n == lens[k] + 6);
        CHECK(out[2] == (uint8_t)(lens[k] >> 8) && out[3] == (uint8_t)lens[k]);
        size_t total = 0;
        CHECK(kl_frame_total_len(out, &total) == KL_OK && total == n);
        struct kl_frame f;
        CHECK(kl_frame_decode(out, n, &f) == KL_OK);
        CHECK(f.code == 0x13 && f.flags == flags && f.len == lens[k]);
        CHECK(!memcmp(f.payload, pl, lens[k]));
    }
    /* payload already in place at out + 4 */
    size_t n = 0;
    memcpy(out + 4, "hello", 5);
    CHECK(kl_frame_encode(0x00, 0, out + 4, 5, out, sizeof out, &n) == KL_OK);
    struct kl_frame f;
    CHECK(kl_frame_decode(out, n, &f) == KL_OK && f.len == 5 && !memcmp(f.payload, "hello", 5));
}

static void rejects(void)
{
    static uint8_t pl[KL_FRAME_MAX_PAYLOAD + 1], out[KL_FRAME_MAX + 8];
    size_t n = 0;
    CHECK(kl_frame_encode(0xF7, 0, pl, 2049, out, sizeof out, &n) == KL_E_BAD_LENGTH);
    CHECK(kl_frame_encode(0xF7, 0x02, pl, 1, out, sizeof out, &n) == KL_E_ARG);
    CHECK(kl_frame_encode(0xF7, 0, pl, 10, out, 15, &n) == KL_E_BUFFER);
    CHECK(kl_frame_encode(0xF7, 0, NULL, 3, out, sizeof out, &n) == KL_E_ARG);
    CHECK(kl_frame_encode(0xF7, 0, pl, 10, out, 16, &n) == KL_OK && n == 16);

    struct kl_frame f;
    uint8_t good[8] = {0xF7, 0x00, 0x00, 0x02, 0xAB, 0xCD, 0xF0, 0xE8};
    uint8_t b[16];
    /* every single-bit flip is caught (CRC or header check) */
    for (size_t i = 0; i < sizeof good * 8; i++) {
        memcpy(b, good, sizeof good);
        b[i / 8] ^= (uint8_t)(1u << (i % 8));
        CHECK(kl_frame_decode(b, sizeof good, &f) == KL_E_BAD_FRAME);
    }
    /* truncated and overlong input */
    for (size_t k = 0; k < sizeof good; k++)
        CHECK(kl_frame_decode(good, k, &f) == KL_E_BAD_FRAME);
    memcpy(b, good, sizeof good);
    b[8] = 0;
    CHECK(kl_frame_decode(b, 9, &f) == KL_E_BAD_FRAME);
    /* impossible length 2049, and a reserved flag, even with a matching CRC */
    uint8_t hdr[4] = {0xF7, 0x00, 0x08, 0x01};
    size_t total;
    CHECK(kl_frame_total_len(hdr, &total) == KL_E_BAD_FRAME);
    uint8_t rf[6] = {0xF7, 0x80, 0x00, 0x00, 0, 0};
    uint16_t c = kl_crc16(rf, 4);
    rf[4] = (uint8_t)(c >> 8);
    rf[5] = (uint8_t)c;
    CHECK(kl_frame_decode(rf, 6, &f) == KL_E_BAD_FRAME);
    rf[1] = 0x01; /* ENC is a known flag: decodes */
    c = kl_crc16(rf, 4);
    rf[4] = (uint8_t)(c >> 8);
    rf[5] = (uint8_t)c;
    CHECK(kl_frame_decode(rf, 6, &f) == KL_OK && f.flags == KL_FRAME_FLAG_ENC);
    CHECK(kl_frame_decode(NULL, 6, &f) == KL_E_ARG);
}

int main(void)
{
    crc_known_answers();
    doc_examples();
    round_trips();
    rejects();
    if (kl_fails) {
        fprintf(stderr, "test_frame: %d failures\n", kl_fails);
        return 1;
    }
    printf("test_frame: ok\n");
    return 0;
}
