/* The chip's TLS offload commands from the host side (keylink/se_tls.h). */
#include <string.h>

#include "keylink/se.h"
#include "keylink/se_tls.h"
#include "se_wire.h"

/* Runs a command expecting exactly want response bytes (want < 0: up to cap). */
static kl_status run(struct kl_se *se, uint8_t cmd, const uint8_t *req, size_t n, uint8_t *resp,
                     size_t cap, size_t *got, long want)
{
    size_t r = 0;
    kl_status st = kl_se_command(se, cmd, req, n, resp, cap, &r);
    if (st != KL_OK) return st;
    if (want >= 0 && r != (size_t)want) return KL_E_PROTOCOL;
    if (got) *got = r;
    return KL_OK;
}

kl_status kl_se_import_root_tbs(uint16_t id, const uint8_t *der, size_t len, uint8_t *out,
                                size_t cap, size_t *out_len)
{
    if (!der || !out || !out_len || len == 0 || len > 2048) return KL_E_ARG;
    if (cap < len + 4) return KL_E_BUFFER;
    kl_put16(out, id);
    kl_put16(out + 2, (uint16_t)len);
    memcpy(out + 4, der, len);
    *out_len = len + 4;
    return KL_OK;
}

/* Chunked upload shared by IMPORT_ROOT_CERT and IMPORT_CHILD_CERT: hdr (hlen bytes) ‖
 * total u16 ‖ offset u16 ‖ chunk [‖ tail on the last chunk]. */
static kl_status upload(struct kl_se *se, uint8_t cmd, const uint8_t *hdr, size_t hlen,
                        const uint8_t *d, size_t len, const uint8_t *tail, size_t tail_len)
{
    if (!se || !d || len == 0 || len > 2048) return KL_E_ARG;
    size_t off = 0;
    do {
        size_t room = KL_SE_CHUNK - hlen - 4;
        size_t n = len - off;
        int last = n + tail_len <= room;
        if (!last) n = n < room ? n : room;
        if (!last && n == len - off) n--; /* leave bytes so the tail rides with them */
        uint8_t *q = se->req;
        memcpy(q, hdr, hlen);
        kl_put16(q + hlen, (uint16_t)len);
        kl_put16(q + hlen + 2, (uint16_t)off);
        memcpy(q + hlen + 4, d + off, n);
        size_t qn = hlen + 4 + n;
        if (last && tail_len) {
            memcpy(q + qn, tail, tail_len);
            qn += tail_len;
        }
        kl_status st = run(se, cmd, q, qn, NULL, 0, NULL, 0);
        if (st != KL_OK) return st;
        off += n;
    } while (off < len);
    return KL_OK;
}

kl_status kl_se_import_root_cert(struct kl_se *se, uint16_t id, const uint8_t *der, size_t len,
                                 const uint8_t sig[64])
{
    uint8_t h[2];
    kl_put16(h, id);
    return upload(se, KL_CMD_IMPORT_ROOT_CERT, h, 2, der, len, sig, sig ? 64 : 0);
}

kl_status kl_se_tls_import_child(struct kl_se *se, uint8_t index, const uint8_t *der, size_t len)
{
    return upload(se, KL_CMD_IMPORT_CHILD_CERT, &index, 1, der, len, NULL, 0);
}

kl_status kl_se_tls_start(struct kl_se *se, uint16_t root_id, uint16_t client_key_id,
                          uint64_t unix_time, uint8_t client_random[32])
{
    if (!se || !client_random) return KL_E_ARG;
    uint8_t q[12];
    kl_put16(q, root_id);
    kl_put16(q + 2, client_key_id);
    kl_put32(q + 4, (uint32_t)(unix_time >> 32));
    kl_put32(q + 8, (uint32_t)unix_time);
    return run(se, KL_CMD_TLS_START, q, sizeof q, client_random, 32, NULL, 32);
}

kl_status kl_se_tls_transcript(struct kl_se *se, const uint8_t *data, size_t len)
{
    if (!se || (!data && len)) return KL_E_ARG;
    while (len) {
        size_t n = len < KL_SE_CHUNK ? len : KL_SE_CHUNK;
        kl_status st = run(se, KL_CMD_TLS_TRANSCRIPT, data, n, NULL, 0, NULL, 0);
        if (st != KL_OK) return st;
        data += n;
        len -= n;
    }
    return KL_OK;
}

kl_status kl_se_tls_server_hello(struct kl_se *se, const uint8_t server_random[32], uint16_t suite,
                                 int ems)
{
    if (!se || !server_random) return KL_E_ARG;
    uint8_t q[35];
    memcpy(q, server_random, 32);
    kl_put16(q + 32, suite);
    q[34] = ems ? 1 : 0;
    return run(se, KL_CMD_TLS_SERVER_HELLO, q, sizeof q, NULL, 0, NULL, 0);
}

kl_status kl_se_tls_verify_peer(struct kl_se *se, uint8_t pub[64])
{
    if (!se) return KL_E_ARG;
    uint8_t k[64];
    kl_status st = run(se, KL_CMD_TLS_VERIFY_PEER, NULL, 0, k, sizeof k, NULL, 64);
    if (st == KL_OK && pub) memcpy(pub, k, 64);
    return st;
}

kl_status kl_se_tls_server_kx(struct kl_se *se, uint16_t scheme, const uint8_t *params, size_t plen,
                              const uint8_t *sig, size_t slen)
{
    if (!se || !params || !sig || plen == 0 || plen > 255 || slen == 0 || slen > 128)
        return KL_E_ARG;
    uint8_t *q = se->req;
    kl_put16(q, scheme);
    q[2] = (uint8_t)plen;
    memcpy(q + 3, params, plen);
    memcpy(q + 3 + plen, sig, slen);
    return run(se, KL_CMD_TLS_SERVER_KEY_EXCHANGE, q, 3 + plen + slen, NULL, 0, NULL, 0);
}

kl_status kl_se_tls_client_kx(struct kl_se *se, uint8_t point[65])
{
    if (!se || !point) return KL_E_ARG;
    kl_status st = run(se, KL_CMD_TLS_CLIENT_KEY_EXCHANGE, NULL, 0, point, 65, NULL, 65);
    if (st == KL_OK && point[0] != 4) return KL_E_PROTOCOL;
    return st;
}

kl_status kl_se_tls_derive_keys(struct kl_se *se)
{
    if (!se) return KL_E_ARG;
    return run(se, KL_CMD_TLS_DERIVE_KEYS, NULL, 0, NULL, 0, NULL, 0);
}

kl_status kl_se_tls_cert_verify(struct kl_se *se, uint8_t *sig, size_t cap, size_t *sig_len)
{
    if (!se || !sig || !sig_len) return KL_E_ARG;
    uint8_t s[80];
    size_t n = 0;
    kl_status st = run(se, KL_CMD_TLS_CERT_VERIFY, NULL, 0, s, sizeof s, &n, -1);
    if (st != KL_OK) return st;
    if (n < 8 || n > 72) return KL_E_PROTOCOL;
    if (n > cap) return KL_E_BUFFER;
    memcpy(sig, s, n);
    *sig_len = n;
    return KL_OK;
}

kl_status kl_se_tls_finished_client(struct kl_se *se, uint8_t verify_data[12])
{
    if (!se || !verify_data) return KL_E_ARG;
    uint8_t q = 1;
    return run(se, KL_CMD_TLS_FINISHED, &q, 1, verify_data, 12, NULL, 12);
}

kl_status kl_se_tls_finished_server(struct kl_se *se, const uint8_t verify_data[12])
{
    if (!se || !verify_data) return KL_E_ARG;
    uint8_t q[13];
    q[0] = 2;
    memcpy(q + 1, verify_data, 12);
    return run(se, KL_CMD_TLS_FINISHED, q, sizeof q, NULL, 0, NULL, 0);
}

kl_status kl_se_tls_export_master(struct kl_se *se, uint8_t master[48])
{
    if (!se || !master) return KL_E_ARG;
    return run(se, KL_CMD_TLS_EXPORT_MASTER, NULL, 0, master, 48, NULL, 48);
}

kl_status kl_se_tls_end(struct kl_se *se)
{
    if (!se) return KL_E_ARG;
    return run(se, KL_CMD_TLS_END, NULL, 0, NULL, 0, NULL, 0);
}

static kl_status record(struct kl_se *se, uint8_t op, uint8_t type, const uint8_t *in, size_t len,
                        uint8_t *out, size_t cap, size_t *out_len, size_t expect)
{
    uint8_t *q = se->req;
    q[0] = op;
    q[1] = type;
    if (len) memcpy(q + 2, in, len);
    size_t n = 0;
    kl_status st = kl_se_command(se, KL_CMD_TLS_RECORD, q, 2 + len, out, cap, &n);
    if (st == KL_E_BUFFER) return st;
    if (st != KL_OK) return st;
    if (n != expect) return KL_E_PROTOCOL;
    *out_len = n;
    return KL_OK;
}

kl_status kl_se_tls_protect(struct kl_se *se, uint8_t type, const uint8_t *in, size_t len,
                            uint8_t *out, size_t cap, size_t *out_len)
{
    if (!se || (!in && len) || !out || !out_len || len > 2000) return KL_E_ARG;
    if (cap < len + KL_SE_TLS_RECORD_OVERHEAD) return KL_E_BUFFER;
    return record(se, 1, type, in, len, out, cap, out_len, len + KL_SE_TLS_RECORD_OVERHEAD);
}

kl_status kl_se_tls_unprotect(struct kl_se *se, uint8_t type, const uint8_t *in, size_t len,
                              uint8_t *out, size_t cap, size_t *out_len)
{
    if (!se || !in || !out || !out_len) return KL_E_ARG;
    if (len < KL_SE_TLS_RECORD_OVERHEAD || len > 2000 + KL_SE_TLS_RECORD_OVERHEAD) return KL_E_ARG;
    if (cap < len - KL_SE_TLS_RECORD_OVERHEAD) return KL_E_BUFFER;
    return record(se, 2, type, in, len, out, cap, out_len, len - KL_SE_TLS_RECORD_OVERHEAD);
}

kl_status kl_se_tls_unprotect_large(struct kl_se *se, uint8_t type, const uint8_t *in, size_t len,
                                    uint8_t *out, size_t cap, size_t *out_len)
{
    if (!se || !in || !out || !out_len) return KL_E_ARG;
    if (len <= KL_SE_TLS_RECORD_OVERHEAD || len > 16384 + KL_SE_TLS_RECORD_OVERHEAD)
        return KL_E_ARG;
    size_t plain = len - KL_SE_TLS_RECORD_OVERHEAD;
    if (cap < plain) return KL_E_BUFFER;
    /* everything goes in before anything comes out, so out may overlap in */
    uint8_t *q = se->req;
    uint8_t r[2];
    size_t off = 0, got = 0;
    while (off < len) {
        size_t hdr = off ? 2 : 4;
        size_t n = len - off < KL_SE_CHUNK - hdr ? len - off : KL_SE_CHUNK - hdr;
        q[0] = off ? 4 : 3;
        q[1] = type;
        if (!off) kl_put16(q + 2, (uint16_t)len);
        memcpy(q + hdr, in + off, n);
        off += n;
        kl_status st = run(se, KL_CMD_TLS_RECORD, q, hdr + n, r, sizeof r, &got, -1);
        if (st != KL_OK) return st;
        if (off < len ? got != 0 : (got != 2 || kl_get16(r) != plain)) return KL_E_PROTOCOL;
    }
    for (size_t o = 0; o < plain;) {
        size_t w = plain - o < KL_SE_CHUNK ? plain - o : KL_SE_CHUNK;
        uint8_t rq[6] = {5, type};
        kl_put16(rq + 2, (uint16_t)o);
        kl_put16(rq + 4, (uint16_t)w);
        kl_status st = run(se, KL_CMD_TLS_RECORD, rq, sizeof rq, out + o, w, NULL, (long)w);
        if (st != KL_OK) return st;
        o += w;
    }
    *out_len = plain;
    return KL_OK;
}
