/*
 * host/jwt_parse.c, host/base64.c: compact JWS parsing (what a device reads from a
 * challenge), the small JSON string reader and the base64/base64url decoders on
 * hostile text. Byte 0 picks: 0 kl_jws_parse, 1 kl_json_get_string (key "alg", then
 * "nonce"), 2 base64url and base64 decoding (a decode that succeeds re-encodes to a
 * text that decodes to the same bytes).
 */
#include <string.h>

#include "fuzz.h"
#include "keylink/jwt.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    const char *t = (const char *)data + 1;
    size_t n = size - 1;
    switch (data[0] % 3) {
    case 0: {
        size_t cap = (data[0] & 0x80) ? 16 : 4096;
        uint8_t *buf = malloc(cap);
        FZ_CHECK(buf != NULL);
        struct kl_jws_parts parts;
        if (kl_jws_parse(t, n, buf, cap, &parts) == KL_OK) {
            FZ_CHECK(parts.signing_len <= n);
            FZ_CHECK(parts.header >= buf && parts.header_len <= cap &&
                     (size_t)(parts.header - buf) <= cap - parts.header_len);
            FZ_CHECK(parts.payload >= buf && parts.payload_len <= cap &&
                     (size_t)(parts.payload - buf) <= cap - parts.payload_len);
        }
        free(buf);
        break;
    }
    case 1: {
        static const char *keys[] = {"alg", "nonce", ""};
        for (size_t k = 0; k < 3; k++) {
            size_t cap = k == 0 ? 1 : 40;
            char *out = malloc(cap);
            FZ_CHECK(out != NULL);
            if (kl_json_get_string((const uint8_t *)t, n, keys[k], out, cap) == KL_OK)
                FZ_CHECK(memchr(out, 0, cap) != NULL);
            free(out);
        }
        break;
    }
    default: {
        size_t cap = n;
        uint8_t *out = malloc(cap ? cap : 1), *back = malloc(cap ? cap : 1);
        char *enc = malloc(2 * n + 8);
        FZ_CHECK(out && back && enc);
        size_t len = 0, el = 0, bl = 0;
        if (kl_base64url_decode(t, n, out, cap, &len) == KL_OK) {
            FZ_CHECK(len <= cap);
            FZ_CHECK(kl_base64url_encode(out, len, enc, 2 * n + 8, &el) == KL_OK);
            FZ_CHECK(kl_base64url_decode(enc, el, back, cap, &bl) == KL_OK);
            FZ_CHECK(bl == len && !memcmp(back, out, len));
        }
        if (kl_base64_decode(t, n, out, cap, &len) == KL_OK) {
            FZ_CHECK(len <= cap);
            FZ_CHECK(kl_base64_encode(out, len, enc, 2 * n + 8, &el) == KL_OK);
            FZ_CHECK(kl_base64_decode(enc, el, back, cap, &bl) == KL_OK);
            FZ_CHECK(bl == len && !memcmp(back, out, len));
        }
        free(out);
        free(back);
        free(enc);
        break;
    }
    }
    return 0;
}
