/* Minimal X.509 DER walker: subject CN and subjectAltName host check (keylink/tls.h).
 * It only finds fields; the chip verifies signatures, validity and the chain. */
#include <string.h>

#include "keylink/tls.h"

struct der {
    const uint8_t *p;
    size_t n;
};

/* Reads one TLV: tag, value. Refuses multi-byte tags, indefinite and non-minimal
 * lengths beyond 3 length bytes, and values running past the end. */
static int tlv(struct der *d, uint8_t *tag, struct der *val)
{
    if (d->n < 2) return 0;
    uint8_t t = d->p[0];
    if ((t & 0x1F) == 0x1F) return 0;
    size_t i = 1, len = d->p[i++];
    if (len & 0x80) {
        size_t k = len & 0x7F;
        if (k == 0 || k > 3 || d->n - i < k) return 0;
        len = 0;
        for (size_t j = 0; j < k; j++)
            len = (len << 8) | d->p[i++];
        if (len < 0x80) return 0;
    }
    if (d->n - i < len) return 0;
    *tag = t;
    val->p = d->p + i;
    val->n = len;
    d->p += i + len;
    d->n -= i + len;
    return 1;
}

static int expect(struct der *d, uint8_t want, struct der *val)
{
    uint8_t t;
    return tlv(d, &t, val) && t == want;
}

static const uint8_t OID_CN[] = {0x55, 0x04, 0x03};
static const uint8_t OID_SAN[] = {0x55, 0x1D, 0x11};

static int oid_is(const struct der *v, const uint8_t *o, size_t n)
{
    return v->n == n && !memcmp(v->p, o, n);
}

static int find_cn(struct der name, char *cn, size_t cap, int *too_long)
{
    while (name.n) {
        struct der set, atv, oid, val;
        if (!expect(&name, 0x31, &set)) return 0;
        while (set.n) {
            if (!expect(&set, 0x30, &atv) || !expect(&atv, 0x06, &oid)) return 0;
            uint8_t t;
            if (!tlv(&atv, &t, &val)) return 0;
            if (oid_is(&oid, OID_CN, sizeof OID_CN) && (t == 0x0C || t == 0x13 || t == 0x16)) {
                if (val.n >= cap) {
                    *too_long = 1;
                    continue;
                }
                for (size_t i = 0; i < val.n; i++)
                    cn[i] = (val.p[i] >= 0x20 && val.p[i] < 0x7F) ? (char)val.p[i] : '?';
                cn[val.n] = 0;
            }
        }
    }
    return 1;
}

static int lower(int c)
{
    return (c >= 'A' && c <= 'Z') ? c + 32 : c;
}

static int ieq(const uint8_t *a, const char *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (lower(a[i]) != lower((unsigned char)b[i])) return 0;
    return 1;
}

/* dNSName vs host; "*.example.com" matches "a.example.com", not "a.b.example.com"
 * nor "example.com". Wildcards only as the whole leftmost label, and over at least two
 * more labels: "*.com" matches nothing (as in OpenSSL and RFC 6125 practice). */
static int dns_match(const uint8_t *pat, size_t pn, const char *host)
{
    size_t hn = strlen(host);
    if (pn == 0 || hn == 0) return 0;
    if (pn >= 2 && pat[0] == '*' && pat[1] == '.') {
        const char *dot = strchr(host, '.');
        if (!dot || dot == host) return 0;
        size_t rest = hn - (size_t)(dot - host);
        if (rest != pn - 1 || rest < 3) return 0;
        int inner_dot = 0; /* a dot inside what the wildcard is over: two labels at least */
        for (size_t i = 2; i < pn; i++) {
            if (pat[i] == '*') return 0;
            if (pat[i] == '.' && i > 2 && i + 1 < pn) inner_dot = 1;
        }
        if (!inner_dot) return 0;
        return ieq(pat + 1, dot, rest);
    }
    for (size_t i = 0; i < pn; i++)
        if (pat[i] == '*') return 0;
    return pn == hn && ieq(pat, host, hn);
}

static int parse_ipv4(const char *s, uint8_t ip[4])
{
    int part = 0;
    unsigned v = 0, digits = 0;
    for (;; s++) {
        if (*s >= '0' && *s <= '9') {
            v = v * 10 + (unsigned)(*s - '0');
            if (++digits > 3 || v > 255) return 0;
        } else if (*s == '.' || *s == 0) {
            if (!digits || part > 3) return 0;
            ip[part++] = (uint8_t)v;
            v = 0;
            digits = 0;
            if (*s == 0) break;
        } else {
            return 0;
        }
    }
    return part == 4;
}

static int san_match(struct der san, const char *host, int *ok)
{
    struct der seq;
    if (!expect(&san, 0x30, &seq) || san.n) return 0;
    uint8_t ip[4];
    int is_ip = parse_ipv4(host, ip);
    while (seq.n) {
        uint8_t t;
        struct der v;
        if (!tlv(&seq, &t, &v)) return 0;
        if (t == 0x82 && !is_ip && dns_match(v.p, v.n, host)) *ok = 1;
        if (t == 0x87 && is_ip && v.n == 4 && !memcmp(v.p, ip, 4)) *ok = 1;
    }
    return 1;
}

kl_status kl_x509_check_host(const uint8_t *der, size_t n, const char *host, int *match, char *cn,
                             size_t cn_cap)
{
    if (!der || !host || !match || !cn || cn_cap == 0) return KL_E_ARG;
    *match = 0;
    cn[0] = 0;
    struct der d = {der, n}, cert, tbs, v;
    if (!expect(&d, 0x30, &cert) || d.n) return KL_E_BAD_KEY;
    if (!expect(&cert, 0x30, &tbs)) return KL_E_BAD_KEY;
    uint8_t t;
    if (!tlv(&tbs, &t, &v)) return KL_E_BAD_KEY;
    if (t == 0xA0 && !tlv(&tbs, &t, &v)) return KL_E_BAD_KEY; /* version, then serial */
    if (t != 0x02) return KL_E_BAD_KEY;
    struct der sigalg, issuer, validity, subject, spki;
    if (!expect(&tbs, 0x30, &sigalg) || !expect(&tbs, 0x30, &issuer) ||
        !expect(&tbs, 0x30, &validity) || !expect(&tbs, 0x30, &subject) ||
        !expect(&tbs, 0x30, &spki))
        return KL_E_BAD_KEY;
    int too_long = 0;
    if (!find_cn(subject, cn, cn_cap, &too_long)) return KL_E_BAD_KEY;
    int ok = 0, have_san = 0;
    while (tbs.n) {
        if (!tlv(&tbs, &t, &v)) return KL_E_BAD_KEY;
        if (t != 0xA3) continue; /* issuer/subject unique ids */
        struct der exts;
        if (!expect(&v, 0x30, &exts) || v.n) return KL_E_BAD_KEY;
        while (exts.n) {
            struct der ext, oid, val;
            if (!expect(&exts, 0x30, &ext) || !expect(&ext, 0x06, &oid)) return KL_E_BAD_KEY;
            if (!tlv(&ext, &t, &val)) return KL_E_BAD_KEY;
            if (t == 0x01 && !tlv(&ext, &t, &val)) return KL_E_BAD_KEY; /* critical */
            if (t != 0x04 || ext.n) return KL_E_BAD_KEY;
            if (oid_is(&oid, OID_SAN, sizeof OID_SAN)) {
                if (have_san) return KL_E_BAD_KEY; /* an extension appears once */
                have_san = 1;
                if (!san_match(val, host, &ok)) return KL_E_BAD_KEY;
            }
        }
    }
    *match = ok;
    return too_long ? KL_E_BUFFER : KL_OK;
}
