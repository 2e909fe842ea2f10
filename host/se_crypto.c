/* Cryptography commands: sign/verify, ECDH, hash, MAC, cipher (chunked) and random. */
#include <string.h>

#include "keylink/se.h"
#include "se_wire.h"

kl_status kl_se_sign(struct kl_se *se, uint16_t key_id, uint8_t format, uint8_t input,
                     const uint8_t *data, size_t len, uint8_t *sig, size_t cap, size_t *sig_len)
{
    if (!se || !sig || !sig_len || (len && !data)) return KL_E_ARG;
    if (input == KL_SE_INPUT_DIGEST && len != 32) return KL_E_ARG;
    if (len > KL_FRAME_MAX_PAYLOAD - 5) return KL_E_BAD_LENGTH;
    *sig_len = 0;
    se->req[0] = 1;
    kl_put16(se->req + 1, key_id);
    se->req[3] = format;
    se->req[4] = input;
    if (len) memcpy(se->req + 5, data, len);
    uint8_t r[80];
    size_t n = 0;
    kl_status st = kl_se_command(se, KL_CMD_SIGN_VERIFY, se->req, 5 + len, r, sizeof r, &n);
    if (st == KL_E_BUFFER) return KL_E_PROTOCOL;
    if (st != KL_OK) return st;
    if ((format == KL_SE_SIG_RAW && n != 64) || n == 0) return KL_E_PROTOCOL;
    if (n > cap) return KL_E_BUFFER;
    memcpy(sig, r, n);
    *sig_len = n;
    return KL_OK;
}

kl_status kl_se_verify(struct kl_se *se, uint16_t key_id, uint8_t format, uint8_t input,
                       const uint8_t *sig, size_t sig_len, const uint8_t *data, size_t len)
{
    if (!se || !sig || (len && !data)) return KL_E_ARG;
    if (sig_len > 0xFFFF || 7 + sig_len + len > KL_FRAME_MAX_PAYLOAD) return KL_E_BAD_LENGTH;
    uint8_t *b = se->req;
    b[0] = 2;
    kl_put16(b + 1, key_id);
    b[3] = format;
    b[4] = input;
    kl_put16(b + 5, (uint16_t)sig_len);
    memcpy(b + 7, sig, sig_len);
    if (len) memcpy(b + 7 + sig_len, data, len);
    return kl_se_command(se, KL_CMD_SIGN_VERIFY, b, 7 + sig_len + len, NULL, 0, NULL);
}

kl_status kl_se_verify_with_key(struct kl_se *se, const uint8_t pub[64], uint8_t format,
                                uint8_t input, const uint8_t *sig, size_t sig_len,
                                const uint8_t *data, size_t len)
{
    if (!se || !pub || !sig || (len && !data)) return KL_E_ARG;
    if (sig_len > 0xFFFF || 68 + sig_len + len > KL_FRAME_MAX_PAYLOAD) return KL_E_BAD_LENGTH;
    uint8_t *b = se->req;
    b[0] = format;
    b[1] = input;
    memcpy(b + 2, pub, 64);
    kl_put16(b + 66, (uint16_t)sig_len);
    memcpy(b + 68, sig, sig_len);
    if (len) memcpy(b + 68 + sig_len, data, len);
    return kl_se_command(se, KL_CMD_VERIFY_WITH_KEY, b, 68 + sig_len + len, NULL, 0, NULL);
}

static kl_status key_exchange(struct kl_se *se, uint16_t key_id, uint8_t pf, const uint8_t *point,
                              size_t plen, int store, uint16_t secret_id, uint8_t shared[32])
{
    if (!se || !point || plen == 0) return KL_E_ARG;
    if (plen > 512) return KL_E_BAD_LENGTH;
    uint8_t *b = se->req;
    kl_put16(b, key_id);
    b[2] = pf;
    kl_put16(b + 3, (uint16_t)plen);
    memcpy(b + 5, point, plen);
    size_t n = 5 + plen;
    b[n++] = store ? 1 : 0;
    if (store) {
        kl_put16(b + n, secret_id);
        n += 2;
    }
    size_t rlen = 0;
    kl_status st = kl_se_command(se, KL_CMD_KEY_EXCHANGE, b, n, shared, store ? 0 : 32, &rlen);
    if (st == KL_E_BUFFER) return KL_E_PROTOCOL;
    if (st == KL_OK && rlen != (store ? 0u : 32u)) return KL_E_PROTOCOL;
    return st;
}

kl_status kl_se_ecdh(struct kl_se *se, uint16_t key_id, uint8_t point_format, const uint8_t *point,
                     size_t point_len, uint8_t shared[32])
{
    if (!shared) return KL_E_ARG;
    return key_exchange(se, key_id, point_format, point, point_len, 0, 0, shared);
}

kl_status kl_se_ecdh_store(struct kl_se *se, uint16_t key_id, uint8_t point_format,
                           const uint8_t *point, size_t point_len, uint16_t secret_id)
{
    return key_exchange(se, key_id, point_format, point, point_len, 1, secret_id, NULL);
}

/* A command answering one context byte. */
static kl_status ctx_answer(struct kl_se *se, uint8_t cmd, const uint8_t *req, size_t len,
                            uint8_t *ctx)
{
    size_t n = 0;
    kl_status st = kl_se_command(se, cmd, req, len, ctx, 1, &n);
    if (st == KL_E_BUFFER || (st == KL_OK && n != 1)) return KL_E_PROTOCOL;
    return st;
}

/* ctx || data in chunks; output (if any) appended to out. */
static kl_status chunked(struct kl_se *se, uint8_t cmd, uint8_t ctx, const uint8_t *data,
                         size_t len, uint8_t *out, size_t cap, size_t *out_len)
{
    if (!se || (len && !data) || (cap && !out)) return KL_E_ARG;
    size_t done = 0, produced = 0;
    do {
        size_t part = len - done > KL_SE_CHUNK ? KL_SE_CHUNK : len - done;
        se->req[0] = ctx;
        if (part) memcpy(se->req + 1, data + done, part);
        size_t n = 0;
        kl_status st = kl_se_command(se, cmd, se->req, 1 + part, out ? out + produced : NULL,
                                     cap - produced, &n);
        if (st != KL_OK) return st;
        produced += n;
        done += part;
    } while (done < len);
    if (out_len) *out_len = produced;
    return KL_OK;
}

kl_status kl_se_md_init(struct kl_se *se, uint8_t *ctx)
{
    if (!se || !ctx) return KL_E_ARG;
    uint8_t alg = 1; /* SHA-256 */
    return ctx_answer(se, KL_CMD_MD_INIT, &alg, 1, ctx);
}

kl_status kl_se_md_update(struct kl_se *se, uint8_t ctx, const uint8_t *data, size_t len)
{
    return chunked(se, KL_CMD_MD_UPDATE, ctx, data, len, NULL, 0, NULL);
}

static kl_status digest_of(struct kl_se *se, uint8_t cmd, uint8_t ctx, uint8_t digest[32])
{
    if (!se || !digest) return KL_E_ARG;
    size_t n = 0;
    kl_status st = kl_se_command(se, cmd, &ctx, 1, digest, 32, &n);
    if (st == KL_E_BUFFER || (st == KL_OK && n != 32)) return KL_E_PROTOCOL;
    return st;
}

kl_status kl_se_md_finish(struct kl_se *se, uint8_t ctx, uint8_t digest[32])
{
    return digest_of(se, KL_CMD_MD_FINISH, ctx, digest);
}

kl_status kl_se_md_peek(struct kl_se *se, uint8_t ctx, uint8_t digest[32])
{
    return digest_of(se, KL_CMD_MD_PEEK, ctx, digest);
}

kl_status kl_se_sha256(struct kl_se *se, const uint8_t *data, size_t len, uint8_t digest[32])
{
    uint8_t ctx = 0;
    kl_status st = kl_se_md_init(se, &ctx);
    if (st != KL_OK) return st;
    st = kl_se_md_update(se, ctx, data, len);
    if (st != KL_OK) {
        uint8_t junk[32];
        (void)kl_se_md_finish(se, ctx, junk); /* free the chip's context */
        return st;
    }
    return kl_se_md_finish(se, ctx, digest);
}

kl_status kl_se_mac_init(struct kl_se *se, uint16_t key_id, uint8_t alg, uint8_t *ctx)
{
    if (!se || !ctx) return KL_E_ARG;
    uint8_t b[3];
    kl_put16(b, key_id);
    b[2] = alg;
    return ctx_answer(se, KL_CMD_MAC_INIT, b, 3, ctx);
}

kl_status kl_se_mac_update(struct kl_se *se, uint8_t ctx, const uint8_t *data, size_t len)
{
    return chunked(se, KL_CMD_MAC_UPDATE, ctx, data, len, NULL, 0, NULL);
}

kl_status kl_se_mac_finish(struct kl_se *se, uint8_t ctx, uint8_t *tag, size_t cap, size_t *tag_len)
{
    if (!se || !tag || !tag_len) return KL_E_ARG;
    uint8_t r[32];
    size_t n = 0;
    *tag_len = 0;
    kl_status st = kl_se_command(se, KL_CMD_MAC_FINISH, &ctx, 1, r, sizeof r, &n);
    if (st == KL_E_BUFFER || (st == KL_OK && n != 16 && n != 32)) return KL_E_PROTOCOL;
    if (st != KL_OK) return st;
    if (n > cap) return KL_E_BUFFER;
    memcpy(tag, r, n);
    *tag_len = n;
    return KL_OK;
}

kl_status kl_se_mac_finish_verify(struct kl_se *se, uint8_t ctx, const uint8_t *expected,
                                  size_t len)
{
    if (!se || !expected || len == 0 || len > 32) return KL_E_ARG;
    uint8_t b[33];
    b[0] = ctx;
    memcpy(b + 1, expected, len);
    return kl_se_command(se, KL_CMD_MAC_FINISH, b, 1 + len, NULL, 0, NULL);
}

kl_status kl_se_cipher_init(struct kl_se *se, const struct kl_se_cipher_params *p, uint8_t *ctx)
{
    if (!se || !p || !ctx || (p->iv_len && !p->iv) || (p->aad_len && !p->aad)) return KL_E_ARG;
    size_t n = 6 + p->iv_len + 1 + 4 + 2 + p->aad_len;
    if (n > KL_FRAME_MAX_PAYLOAD) return KL_E_BAD_LENGTH;
    uint8_t *b = se->req;
    kl_put16(b, p->key_id);
    b[2] = p->alg;
    b[3] = p->dir;
    b[4] = p->padding;
    b[5] = p->iv_len;
    size_t o = 6;
    if (p->iv_len) memcpy(b + o, p->iv, p->iv_len);
    o += p->iv_len;
    b[o++] = p->tag_len;
    kl_put32(b + o, p->total_len);
    o += 4;
    kl_put16(b + o, p->aad_len);
    o += 2;
    if (p->aad_len) memcpy(b + o, p->aad, p->aad_len);
    return ctx_answer(se, KL_CMD_CIPHER_INIT, b, n, ctx);
}

kl_status kl_se_cipher_update(struct kl_se *se, uint8_t ctx, const uint8_t *in, size_t len,
                              uint8_t *out, size_t cap, size_t *out_len)
{
    if (!out_len) return KL_E_ARG;
    *out_len = 0;
    return chunked(se, KL_CMD_CIPHER_UPDATE, ctx, in, len, out, cap, out_len);
}

kl_status kl_se_cipher_finish(struct kl_se *se, uint8_t ctx, const uint8_t *tag, size_t tag_len,
                              uint8_t *out, size_t cap, size_t *out_len)
{
    if (!se || !out_len || (tag_len && !tag) || tag_len > 16 || (cap && !out)) return KL_E_ARG;
    *out_len = 0;
    uint8_t b[17];
    b[0] = ctx;
    if (tag_len) memcpy(b + 1, tag, tag_len);
    size_t n = 0, total = 0;
    kl_status st = kl_se_command(se, KL_CMD_CIPHER_FINISH, b, 1 + tag_len, out, cap, &n);
    /* AEAD decryption hands its plaintext out in 2000-byte pieces (docs/protocol.md): a
     * full piece means more follows, asked for with the context byte alone. */
    while (st == KL_OK && n == KL_SE_CHUNK) {
        total += n;
        if (total > 4096) return KL_E_PROTOCOL; /* the chip holds at most 4096 */
        st = kl_se_command(se, KL_CMD_CIPHER_FINISH, &ctx, 1, out + total, cap - total, &n);
    }
    if (st == KL_OK) *out_len = total + n;
    return st;
}

kl_status kl_se_random(struct kl_se *se, uint8_t *buf, size_t len)
{
    if (!se || (len && !buf)) return KL_E_ARG;
    size_t done = 0;
    while (done < len) {
        size_t part = len - done > KL_SE_CHUNK ? KL_SE_CHUNK : len - done;
        uint8_t b[2];
        kl_put16(b, (uint16_t)part);
        size_t n = 0;
        kl_status st = kl_se_command(se, KL_CMD_RANDOM, b, 2, buf + done, part, &n);
        if (st == KL_E_BUFFER || (st == KL_OK && n != part)) return KL_E_PROTOCOL;
        if (st != KL_OK) return st;
        done += part;
    }
    return KL_OK;
}
