/* TLS 1.2 PRF, P_SHA256 (RFC 5246 section 5), over the chip's HMAC-SHA-256. */
#include <string.h>

#include "cx.h"
#include "tls_int.h"

kl_status kl_tls_prf(const uint8_t *secret, size_t slen, const char *label, const uint8_t *seed,
                     size_t seedlen, uint8_t *out, size_t outlen)
{
    /* A(i) || label || seed; labels and seeds here are at most 22 + 64 bytes */
    uint8_t buf[32 + 128];
    size_t ll = strlen(label);
    if (!secret || !out || ll + seedlen > sizeof buf - 32) return KL_E_INTERNAL;
    memcpy(buf + 32, label, ll);
    if (seedlen) memcpy(buf + 32 + ll, seed, seedlen);
    size_t sl = ll + seedlen;
    uint8_t a[32], blk[32];
    kl_status st = kl_cx_hmac_sha256(secret, slen, buf + 32, sl, a); /* A(1) */
    while (st == KL_OK && outlen) {
        memcpy(buf, a, 32);
        st = kl_cx_hmac_sha256(secret, slen, buf, 32 + sl, blk);
        if (st != KL_OK) break;
        size_t k = outlen < 32 ? outlen : 32;
        memcpy(out, blk, k);
        out += k;
        outlen -= k;
        st = kl_cx_hmac_sha256(secret, slen, buf, 32, a); /* A(i+1), from the copy in buf */
    }
    kl_cx_wipe(a, sizeof a);
    kl_cx_wipe(blk, sizeof blk);
    kl_cx_wipe(buf, sizeof buf);
    return st;
}
