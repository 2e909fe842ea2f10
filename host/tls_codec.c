/* TLS 1.2 handshake codec: ClientHello out, server messages in (tls_codec.h). */
#include <string.h>

#include "tls_codec.h"

void kl_rd_init(struct kl_rd *r, const uint8_t *p, size_t n)
{
    r->p = p;
    r->n = p ? n : 0;
    r->bad = 0;
}

const uint8_t *kl_rd_bytes(struct kl_rd *r, size_t n)
{
    if (r->bad || n > r->n) {
        r->bad = 1;
        r->n = 0;
        return NULL;
    }
    const uint8_t *p = r->p;
    r->p += n;
    r->n -= n;
    return p;
}

uint8_t kl_rd_u8(struct kl_rd *r)
{
    const uint8_t *p = kl_rd_bytes(r, 1);
    return p ? p[0] : 0;
}

uint16_t kl_rd_u16(struct kl_rd *r)
{
    const uint8_t *p = kl_rd_bytes(r, 2);
    return p ? (uint16_t)((p[0] << 8) | p[1]) : 0;
}

uint32_t kl_rd_u24(struct kl_rd *r)
{
    const uint8_t *p = kl_rd_bytes(r, 3);
    return p ? ((uint32_t)p[0] << 16) | ((uint32_t)p[1] << 8) | p[2] : 0;
}

struct kl_rd kl_rd_sub(struct kl_rd *r, size_t n)
{
    struct kl_rd s;
    const uint8_t *p = kl_rd_bytes(r, n);
    kl_rd_init(&s, p, p ? n : 0);
    s.bad = p ? 0 : 1;
    return s;
}

void kl_tls_hs_header(uint8_t out[4], uint8_t type, size_t blen)
{
    out[0] = type;
    out[1] = (uint8_t)(blen >> 16);
    out[2] = (uint8_t)(blen >> 8);
    out[3] = (uint8_t)blen;
}

/* ---- writer ---- */
struct wr {
    uint8_t *p;
    size_t cap, n;
    int bad;
};

static void w_bytes(struct wr *w, const void *d, size_t n)
{
    if (w->bad || n > w->cap - w->n) {
        w->bad = 1;
        return;
    }
    if (n) memcpy(w->p + w->n, d, n);
    w->n += n;
}

static void w_u8(struct wr *w, unsigned v)
{
    uint8_t b = (uint8_t)v;
    w_bytes(w, &b, 1);
}

static void w_u16(struct wr *w, unsigned v)
{
    uint8_t b[2] = {(uint8_t)(v >> 8), (uint8_t)v};
    w_bytes(w, b, 2);
}

/* Reserves a length field of sz bytes; returns its offset. */
static size_t w_len_open(struct wr *w, size_t sz)
{
    size_t at = w->n;
    static const uint8_t z[3];
    w_bytes(w, z, sz);
    return at;
}

static void w_len_close(struct wr *w, size_t at, size_t sz)
{
    if (w->bad) return;
    size_t v = w->n - at - sz;
    if ((sz == 1 && v > 0xFF) || (sz == 2 && v > 0xFFFF)) {
        w->bad = 1;
        return;
    }
    for (size_t i = 0; i < sz; i++)
        w->p[at + i] = (uint8_t)(v >> (8 * (sz - 1 - i)));
}

static int host_name_ok(const char *s, size_t *len)
{
    size_t n = strnlen(s, 256);
    if (n == 0 || n > 255) return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '.' || c == '_'))
            return 0;
    }
    *len = n;
    return 1;
}

/* A dotted IPv4 literal gets no SNI (RFC 6066 section 3). */
static int is_ipv4(const char *s)
{
    int dots = 0, digits = 0;
    for (; *s; s++) {
        if (*s == '.') {
            if (!digits) return 0;
            dots++;
            digits = 0;
        } else if (*s >= '0' && *s <= '9') {
            if (++digits > 3) return 0;
        } else {
            return 0;
        }
    }
    return dots == 3 && digits;
}

kl_status kl_tls_build_client_hello(const struct kl_tls_offer *o, const uint8_t random[32],
                                    uint8_t *out, size_t cap, size_t *len)
{
    if (!o || !random || !out || !len || !o->server_name || !o->suites || !o->suites_n)
        return KL_E_ARG;
    size_t sn_len = 0;
    if (!host_name_ok(o->server_name, &sn_len)) return KL_E_ARG;
    struct wr w = {out, cap, 0, 0};
    w_u8(&w, KL_HT_CLIENT_HELLO);
    size_t body = w_len_open(&w, 3);
    w_u16(&w, 0x0303);
    w_bytes(&w, random, 32);
    w_u8(&w, 0); /* no session id: no resumption */
    size_t cs = w_len_open(&w, 2);
    for (size_t i = 0; i < o->suites_n; i++)
        w_u16(&w, o->suites[i]);
    w_u16(&w, 0x00FF); /* TLS_EMPTY_RENEGOTIATION_INFO_SCSV (RFC 5746) */
    w_len_close(&w, cs, 2);
    w_u8(&w, 1);
    w_u8(&w, 0); /* null compression only */
    size_t exts = w_len_open(&w, 2);
    if (!is_ipv4(o->server_name)) {
        w_u16(&w, KL_EXT_SERVER_NAME);
        size_t e = w_len_open(&w, 2);
        size_t l = w_len_open(&w, 2);
        w_u8(&w, 0); /* host_name */
        w_u16(&w, (unsigned)sn_len);
        w_bytes(&w, o->server_name, sn_len);
        w_len_close(&w, l, 2);
        w_len_close(&w, e, 2);
    }
    static const uint8_t mfl[] = {0x00, 0x01, 0x00, 0x01, 0x02}; /* max_fragment_length 2^10 */
    if (!o->no_mfl) w_bytes(&w, mfl, sizeof mfl);
    static const uint8_t fixed[] = {
        0x00, 0x0A, 0x00, 0x04, 0x00, 0x02, 0x00, 0x17, /* supported_groups: secp256r1 */
        0x00, 0x0B, 0x00, 0x02, 0x01, 0x00,             /* ec_point_formats: uncompressed */
        0x00, 0x0D, 0x00, 0x04, 0x00, 0x02, 0x04, 0x03, /* signature_algorithms */
        0x00, 0x17, 0x00, 0x00,                         /* extended_master_secret */
    };
    w_bytes(&w, fixed, sizeof fixed);
    if (o->alpn_n) {
        w_u16(&w, KL_EXT_ALPN);
        size_t e = w_len_open(&w, 2);
        size_t l = w_len_open(&w, 2);
        for (size_t i = 0; i < o->alpn_n; i++) {
            size_t an = strnlen(o->alpn[i], 256);
            if (an == 0 || an > 255) return KL_E_ARG;
            w_u8(&w, (unsigned)an);
            w_bytes(&w, o->alpn[i], an);
        }
        w_len_close(&w, l, 2);
        w_len_close(&w, e, 2);
    }
    w_len_close(&w, exts, 2);
    w_len_close(&w, body, 3);
    if (w.bad) return KL_E_BUFFER;
    *len = w.n;
    return KL_OK;
}

#define FAIL(a, text)                                                                              \
    do {                                                                                           \
        *alert = (a);                                                                              \
        *why = (text);                                                                             \
        return KL_E_PEER;                                                                          \
    } while (0)

static int offered_suite(const struct kl_tls_offer *o, uint16_t s)
{
    for (size_t i = 0; i < o->suites_n; i++)
        if (o->suites[i] == s) return 1;
    return 0;
}

kl_status kl_tls_parse_server_hello(const uint8_t *b, size_t n, const struct kl_tls_offer *o,
                                    struct kl_tls_server_hello *sh, uint8_t *alert,
                                    const char **why)
{
    memset(sh, 0, sizeof *sh);
    struct kl_rd r;
    kl_rd_init(&r, b, n);
    uint16_t ver = kl_rd_u16(&r);
    const uint8_t *rnd = kl_rd_bytes(&r, 32);
    uint8_t sid_len = kl_rd_u8(&r);
    kl_rd_bytes(&r, sid_len);
    sh->suite = kl_rd_u16(&r);
    uint8_t comp = kl_rd_u8(&r);
    if (r.bad) FAIL(KL_AL_DECODE_ERROR, "ServerHello is truncated");
    if (ver != 0x0303) FAIL(KL_AL_PROTOCOL_VERSION, "server did not choose TLS 1.2");
    if (sid_len > 32) FAIL(KL_AL_DECODE_ERROR, "ServerHello session id longer than 32 bytes");
    if (!offered_suite(o, sh->suite))
        FAIL(KL_AL_HANDSHAKE_FAILURE, "server chose a cipher suite we did not offer");
    if (comp != 0) FAIL(KL_AL_ILLEGAL_PARAMETER, "server chose compression");
    memcpy(sh->random, rnd, 32);
    if (r.n == 0) return KL_OK; /* no extensions at all */
    uint16_t elen = kl_rd_u16(&r);
    struct kl_rd e = kl_rd_sub(&r, elen);
    if (r.bad || r.n) FAIL(KL_AL_DECODE_ERROR, "ServerHello extensions have a bad length");
    uint32_t seen = 0;
    while (e.n) {
        uint16_t type = kl_rd_u16(&e);
        uint16_t len = kl_rd_u16(&e);
        struct kl_rd x = kl_rd_sub(&e, len);
        if (e.bad) FAIL(KL_AL_DECODE_ERROR, "ServerHello extension is truncated");
        int bit;
        switch (type) {
        case KL_EXT_SERVER_NAME:
            bit = 0;
            break;
        case KL_EXT_MAX_FRAGMENT_LENGTH:
            bit = 1;
            break;
        case KL_EXT_EC_POINT_FORMATS:
            bit = 2;
            break;
        case KL_EXT_ALPN:
            bit = 3;
            break;
        case KL_EXT_EMS:
            bit = 4;
            break;
        case KL_EXT_RENEGOTIATION_INFO:
            bit = 5;
            break;
        default:
            FAIL(KL_AL_UNSUPPORTED_EXTENSION, "server sent an extension we did not offer");
        }
        if (seen & (1u << bit)) FAIL(KL_AL_DECODE_ERROR, "server repeated an extension");
        seen |= 1u << bit;
        switch (type) {
        case KL_EXT_SERVER_NAME:
            if (len != 0) FAIL(KL_AL_DECODE_ERROR, "server_name answer is not empty");
            break;
        case KL_EXT_MAX_FRAGMENT_LENGTH:
            if (o->no_mfl)
                FAIL(KL_AL_UNSUPPORTED_EXTENSION, "server sent max_fragment_length unasked");
            if (len != 1 || kl_rd_u8(&x) != 2)
                FAIL(KL_AL_ILLEGAL_PARAMETER, "server answered a different max_fragment_length");
            sh->mfl = 1;
            break;
        case KL_EXT_EC_POINT_FORMATS: {
            uint8_t l = kl_rd_u8(&x);
            struct kl_rd f = kl_rd_sub(&x, l);
            int unc = 0;
            while (f.n)
                if (kl_rd_u8(&f) == 0) unc = 1;
            if (x.bad || x.n || l == 0) FAIL(KL_AL_DECODE_ERROR, "bad ec_point_formats");
            if (!unc) FAIL(KL_AL_ILLEGAL_PARAMETER, "server refuses uncompressed points");
            break;
        }
        case KL_EXT_ALPN: {
            uint16_t l = kl_rd_u16(&x);
            uint8_t pl = kl_rd_u8(&x);
            const uint8_t *p = kl_rd_bytes(&x, pl);
            if (x.bad || x.n || l != (uint16_t)(pl + 1) || pl == 0)
                FAIL(KL_AL_DECODE_ERROR, "bad ALPN answer");
            int ok = 0;
            for (size_t i = 0; i < o->alpn_n; i++)
                if (strlen(o->alpn[i]) == pl && !memcmp(o->alpn[i], p, pl)) ok = 1;
            if (!ok || pl >= sizeof sh->alpn)
                FAIL(KL_AL_ILLEGAL_PARAMETER, "server chose an ALPN protocol we did not offer");
            memcpy(sh->alpn, p, pl);
            sh->alpn[pl] = 0;
            break;
        }
        case KL_EXT_EMS:
            if (len != 0) FAIL(KL_AL_DECODE_ERROR, "extended_master_secret answer is not empty");
            sh->ems = 1;
            break;
        case KL_EXT_RENEGOTIATION_INFO:
            /* initial handshake: renegotiated_connection must be empty */
            if (len != 1 || kl_rd_u8(&x) != 0)
                FAIL(KL_AL_HANDSHAKE_FAILURE, "renegotiation_info is not empty");
            sh->reneg = 1;
            break;
        }
    }
    if (e.bad) FAIL(KL_AL_DECODE_ERROR, "ServerHello extensions are malformed");
    return KL_OK;
}

kl_status kl_tls_parse_certificate(const uint8_t *b, size_t n, const uint8_t **der, size_t *len,
                                   size_t *count, uint8_t *alert, const char **why)
{
    struct kl_rd r;
    kl_rd_init(&r, b, n);
    uint32_t total = kl_rd_u24(&r);
    if (r.bad || total != r.n) FAIL(KL_AL_DECODE_ERROR, "Certificate list has a bad length");
    if (total == 0) FAIL(KL_AL_HANDSHAKE_FAILURE, "server sent no certificate");
    size_t k = 0;
    while (r.n) {
        uint32_t cl = kl_rd_u24(&r);
        const uint8_t *c = kl_rd_bytes(&r, cl);
        if (r.bad || cl == 0) FAIL(KL_AL_DECODE_ERROR, "Certificate entry is truncated");
        if (k == KL_TLS_MAX_CHAIN)
            FAIL(KL_AL_UNSUPPORTED_CERTIFICATE, "server chain longer than the chip takes (4)");
        if (cl > KL_TLS_MAX_CERT)
            FAIL(KL_AL_UNSUPPORTED_CERTIFICATE,
                 "server certificate larger than the chip takes (2048 bytes)");
        der[k] = c;
        len[k] = cl;
        k++;
    }
    *count = k;
    return KL_OK;
}

kl_status kl_tls_parse_server_key_exchange(const uint8_t *b, size_t n, const uint8_t **params,
                                           size_t *plen, uint16_t *scheme, const uint8_t **sig,
                                           size_t *slen, uint8_t *alert, const char **why)
{
    struct kl_rd r;
    kl_rd_init(&r, b, n);
    uint8_t ctype = kl_rd_u8(&r);
    uint16_t group = kl_rd_u16(&r);
    uint8_t ptlen = kl_rd_u8(&r);
    const uint8_t *pt = kl_rd_bytes(&r, ptlen);
    *scheme = kl_rd_u16(&r);
    uint16_t sl = kl_rd_u16(&r);
    const uint8_t *s = kl_rd_bytes(&r, sl);
    if (r.bad || r.n) FAIL(KL_AL_DECODE_ERROR, "ServerKeyExchange has a bad length");
    if (ctype != 3 || group != KL_TLS_GROUP_P256)
        FAIL(KL_AL_ILLEGAL_PARAMETER, "server chose a curve other than P-256");
    if (ptlen != 65 || pt[0] != 4)
        FAIL(KL_AL_ILLEGAL_PARAMETER, "server ECDHE point is not an uncompressed P-256 point");
    if (*scheme != KL_TLS_SIG_ECDSA_P256_SHA256)
        FAIL(KL_AL_ILLEGAL_PARAMETER, "server signed with a scheme we did not offer");
    if (sl < 8 || sl > 72) FAIL(KL_AL_DECODE_ERROR, "ServerKeyExchange signature length");
    *params = b;
    *plen = 4u + ptlen;
    *sig = s;
    *slen = sl;
    return KL_OK;
}

kl_status kl_tls_parse_certificate_request(const uint8_t *b, size_t n, int *can_sign,
                                           uint8_t *alert, const char **why)
{
    struct kl_rd r;
    kl_rd_init(&r, b, n);
    uint8_t tl = kl_rd_u8(&r);
    struct kl_rd types = kl_rd_sub(&r, tl);
    uint16_t sl = kl_rd_u16(&r);
    struct kl_rd algs = kl_rd_sub(&r, sl);
    uint16_t dl = kl_rd_u16(&r);
    struct kl_rd names = kl_rd_sub(&r, dl);
    if (r.bad || r.n || tl == 0 || sl == 0 || (sl & 1))
        FAIL(KL_AL_DECODE_ERROR, "CertificateRequest has a bad length");
    while (names.n) { /* each DistinguishedName is length-prefixed; only check framing */
        uint16_t l = kl_rd_u16(&names);
        kl_rd_bytes(&names, l);
        if (names.bad) FAIL(KL_AL_DECODE_ERROR, "CertificateRequest names are malformed");
    }
    int ecdsa = 0, scheme = 0;
    while (types.n)
        if (kl_rd_u8(&types) == 64) ecdsa = 1;
    while (algs.n)
        if (kl_rd_u16(&algs) == KL_TLS_SIG_ECDSA_P256_SHA256) scheme = 1;
    *can_sign = ecdsa && scheme;
    return KL_OK;
}

kl_status kl_tls_next_handshake(const uint8_t *buf, size_t n, uint8_t *type, const uint8_t **body,
                                size_t *blen, size_t *total)
{
    if (n < 4) return KL_E_TIMEOUT;
    size_t l = ((size_t)buf[1] << 16) | ((size_t)buf[2] << 8) | buf[3];
    if (n - 4 < l) return KL_E_TIMEOUT;
    *type = buf[0];
    *body = buf + 4;
    *blen = l;
    *total = l + 4;
    return KL_OK;
}

const char *kl_tls_alert_name(uint8_t d)
{
    switch (d) {
    case KL_AL_CLOSE_NOTIFY:
        return "close_notify";
    case KL_AL_UNEXPECTED_MESSAGE:
        return "unexpected_message";
    case KL_AL_BAD_RECORD_MAC:
        return "bad_record_mac";
    case KL_AL_RECORD_OVERFLOW:
        return "record_overflow";
    case KL_AL_HANDSHAKE_FAILURE:
        return "handshake_failure";
    case KL_AL_BAD_CERTIFICATE:
        return "bad_certificate";
    case KL_AL_UNSUPPORTED_CERTIFICATE:
        return "unsupported_certificate";
    case 44:
        return "certificate_revoked";
    case KL_AL_CERTIFICATE_EXPIRED:
        return "certificate_expired";
    case KL_AL_CERTIFICATE_UNKNOWN:
        return "certificate_unknown";
    case KL_AL_ILLEGAL_PARAMETER:
        return "illegal_parameter";
    case KL_AL_UNKNOWN_CA:
        return "unknown_ca";
    case 49:
        return "access_denied";
    case KL_AL_DECODE_ERROR:
        return "decode_error";
    case KL_AL_DECRYPT_ERROR:
        return "decrypt_error";
    case KL_AL_PROTOCOL_VERSION:
        return "protocol_version";
    case 71:
        return "insufficient_security";
    case KL_AL_INTERNAL_ERROR:
        return "internal_error";
    case 86:
        return "inappropriate_fallback";
    case 90:
        return "user_canceled";
    case KL_AL_NO_RENEGOTIATION:
        return "no_renegotiation";
    case KL_AL_UNSUPPORTED_EXTENSION:
        return "unsupported_extension";
    case 112:
        return "unrecognized_name";
    case 116:
        return "certificate_required";
    case KL_AL_NO_APPLICATION_PROTOCOL:
        return "no_application_protocol";
    default:
        return "unknown alert";
    }
}
