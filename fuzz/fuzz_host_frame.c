/* host/frame.c: kl_frame_decode / kl_frame_total_len on hostile bytes. A frame that
 * decodes re-encodes to exactly the same bytes; one that does not is refused with
 * KL_E_BAD_FRAME and nothing else. */
#include <string.h>

#include "fuzz.h"
#include "keylink/frame.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct kl_frame f;
    kl_status st = kl_frame_decode(data, size, &f);
    if (size >= KL_FRAME_HEADER) {
        size_t total = 0;
        kl_status ts = kl_frame_total_len(data, &total);
        if (ts == KL_OK)
            FZ_CHECK(total >= KL_FRAME_OVERHEAD && total <= KL_FRAME_MAX);
        else
            FZ_CHECK(ts == KL_E_BAD_FRAME);
        if (st == KL_OK) FZ_CHECK(ts == KL_OK && total == size);
    }
    if (st != KL_OK) {
        FZ_CHECK(st == KL_E_BAD_FRAME);
        return 0;
    }
    FZ_CHECK(f.payload == data + KL_FRAME_HEADER);
    FZ_CHECK((size_t)f.len + KL_FRAME_OVERHEAD == size);
    static uint8_t out[KL_FRAME_MAX];
    size_t n = 0;
    FZ_CHECK(kl_frame_encode(f.code, f.flags, f.payload, f.len, out, sizeof out, &n) == KL_OK);
    FZ_CHECK(n == size && memcmp(out, data, n) == 0);
    return 0;
}
