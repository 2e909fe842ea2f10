/*
 * Access rules: the 9-byte block (3 bytes per life-cycle state: roles, rights, 0), its
 * text form and the check "may the roles held now do this to that object".
 */
#include <string.h>

#include "chip_int.h"
#include "rules.h"

static const char role_chars[] = "ahsex";  /* bit i = role_chars[i] */
static const char right_chars[] = "rwdgx"; /* bit i = right_chars[i] */

int kl_rules_valid(const uint8_t r[9])
{
    for (int i = 0; i < 3; i++) {
        uint8_t roles = r[3 * i], rights = r[3 * i + 1];
        if (roles & ~0x1Fu || rights & ~0x1Fu || r[3 * i + 2] != 0) return 0;
        /* one meaning per block: no roles without rights or the reverse */
        if ((roles == 0) != (rights == 0)) return 0;
    }
    return 1;
}

/* Parses a letter set (each letter of alphabet at most once, at least one) from s up to
 * end into a mask. Returns 0 on failure. */
static int parse_set(const char *s, const char *end, const char *alphabet, uint8_t *mask)
{
    uint8_t m = 0;
    if (s == end) return 0;
    for (; s < end; s++) {
        const char *p = *s ? strchr(alphabet, *s) : NULL;
        if (!p) return 0;
        uint8_t bit = (uint8_t)(1u << (p - alphabet));
        if (m & bit) return 0;
        m |= bit;
    }
    *mask = m;
    return 1;
}

kl_status kl_rules_parse(const char *text, uint8_t out[9])
{
    if (!text || !out) return KL_E_BAD_PARAM;
    uint8_t r[9] = {0};
    const char *s = text;
    for (int i = 0; i < 3; i++) {
        const char *end = strchr(s, ':');
        if (i < 2 && !end) return KL_E_BAD_PARAM;
        if (i == 2) {
            if (end) return KL_E_BAD_PARAM;
            end = s + strlen(s);
        }
        if (end - s == 1 && *s == '-') {
            /* no access */
        } else {
            const char *eq = memchr(s, '=', (size_t)(end - s));
            if (!eq) return KL_E_BAD_PARAM;
            if (!parse_set(s, eq, role_chars, &r[3 * i]) ||
                !parse_set(eq + 1, end, right_chars, &r[3 * i + 1]))
                return KL_E_BAD_PARAM;
        }
        s = end + 1;
    }
    memcpy(out, r, 9);
    return KL_OK;
}

kl_status kl_rules_format(const uint8_t r[9], char *out, size_t cap)
{
    if (!r || !out) return KL_E_BAD_PARAM;
    if (!kl_rules_valid(r)) return KL_E_BAD_PARAM;
    char buf[KL_RULES_TEXT_MAX];
    size_t n = 0;
    for (int i = 0; i < 3; i++) {
        if (i) buf[n++] = ':';
        if (r[3 * i] == 0) {
            buf[n++] = '-';
            continue;
        }
        for (int b = 0; b < 5; b++)
            if (r[3 * i] & (1u << b)) buf[n++] = role_chars[b];
        buf[n++] = '=';
        for (int b = 0; b < 5; b++)
            if (r[3 * i + 1] & (1u << b)) buf[n++] = right_chars[b];
    }
    buf[n++] = '\0';
    if (n > cap) return KL_E_BUFFER;
    memcpy(out, buf, n);
    return KL_OK;
}

uint8_t kl_chip_roles(const struct kl_chip *c)
{
    uint8_t roles = KL_ROLE_E | KL_ROLE_X; /* any host session holds end user and everyone */
    if (c->st.admin) roles |= KL_ROLE_A;
    if (c->channel_open) roles |= KL_ROLE_H;
    if (c->st.boot_ok) roles |= KL_ROLE_S;
    return roles;
}

kl_status kl_rules_allow(const struct kl_chip *c, const struct kl_obj *o, uint8_t right)
{
    uint8_t lc = c->st.lifecycle;
    if (lc == KL_LC_TERMINATED) return KL_E_TERMINATED;
    if (lc < KL_LC_DELIVERY || lc > KL_LC_OPERATIONAL) return KL_E_INTERNAL;
    const uint8_t *sec = &o->rules[3 * (lc - KL_LC_DELIVERY)];
    if (!(sec[1] & right)) return KL_E_ACCESS_DENIED;
    uint8_t held = kl_chip_roles(c);
    if (sec[0] & held) return KL_OK;
    /* Secure-boot gating: the right exists for role s, which is not held yet. */
    if (sec[0] & KL_ROLE_S) return KL_E_BOOT;
    return KL_E_ACCESS_DENIED;
}
