/* Text forms of chip values: life-cycle and object-type names, access-rule strings. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "keylink/se.h"

static const char *const lc_names[] = {"DELIVERY", "INITIALIZED", "OPERATIONAL", "TERMINATED"};

static const char *const type_names[] = {"secret-key", "public-key",  "key-pair",    "data",
                                         "up-counter", "certificate", "down-counter"};

static int ieq(const char *a, const char *b)
{
    for (; *a && *b; a++, b++)
        if (tolower((unsigned char)*a) != tolower((unsigned char)*b)) return 0;
    return *a == *b;
}

/* A whole-string decimal or 0x-hex number in [lo, hi]. */
static int parse_num(const char *s, long lo, long hi, long *v)
{
    if (!*s) return 0;
    char *end = NULL;
    long x = strtol(s, &end, 0);
    if (*end || x < lo || x > hi) return 0;
    *v = x;
    return 1;
}

const char *kl_se_lifecycle_name(uint8_t state)
{
    if (state >= KL_SE_LC_DELIVERY && state <= KL_SE_LC_TERMINATED) return lc_names[state - 3];
    return "UNKNOWN";
}

kl_status kl_se_lifecycle_parse(const char *s, uint8_t *state)
{
    if (!s || !state) return KL_E_ARG;
    for (uint8_t i = 0; i < 4; i++)
        if (ieq(s, lc_names[i])) {
            *state = (uint8_t)(i + 3);
            return KL_OK;
        }
    long v;
    if (!parse_num(s, 3, 6, &v)) return KL_E_ARG;
    *state = (uint8_t)v;
    return KL_OK;
}

const char *kl_se_type_name(uint8_t type)
{
    if (type >= 1 && type <= 7) return type_names[type - 1];
    return "unknown";
}

kl_status kl_se_type_parse(const char *s, uint8_t *type)
{
    if (!s || !type) return KL_E_ARG;
    for (uint8_t i = 0; i < 7; i++)
        if (ieq(s, type_names[i])) {
            *type = (uint8_t)(i + 1);
            return KL_OK;
        }
    long v;
    if (!parse_num(s, 1, 7, &v)) return KL_E_ARG;
    *type = (uint8_t)v;
    return KL_OK;
}

static const char role_chars[] = "ahsex";  /* bit order of KL_SE_ROLE_* */
static const char right_chars[] = "rwdgx"; /* bit order of KL_SE_RIGHT_* */

static int letters(const char *s, size_t n, const char *set, uint8_t *mask)
{
    *mask = 0;
    if (n == 0) return 0;
    for (size_t i = 0; i < n; i++) {
        const char *p = strchr(set, s[i]);
        if (!s[i] || !p) return 0;
        uint8_t bit = (uint8_t)(1u << (p - set));
        if (*mask & bit) return 0; /* a letter twice is a typo */
        *mask |= bit;
    }
    return 1;
}

kl_status kl_se_rules_parse(const char *text, uint8_t rules[9])
{
    if (!text || !rules) return KL_E_ARG;
    uint8_t out[9] = {0};
    const char *p = text;
    for (int sec = 0; sec < 3; sec++) {
        const char *end = strchr(p, ':');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        if ((sec < 2) != (end != NULL)) return KL_E_ARG; /* exactly three sections */
        if (!(n == 1 && p[0] == '-')) {
            const char *eq = memchr(p, '=', n);
            if (!eq) return KL_E_ARG;
            size_t rn = (size_t)(eq - p);
            if (!letters(p, rn, role_chars, &out[3 * sec]) ||
                !letters(eq + 1, n - rn - 1, right_chars, &out[3 * sec + 1]))
                return KL_E_ARG;
        }
        p = end ? end + 1 : p + n;
    }
    memcpy(rules, out, 9);
    return KL_OK;
}

kl_status kl_se_rules_format(const uint8_t rules[9], char *out, size_t cap)
{
    if (!rules || !out) return KL_E_ARG;
    /* Refuse what the chip refuses, so a broken or hostile chip's block is never shown as
     * some other, made-up rule. */
    for (int sec = 0; sec < 3; sec++) {
        uint8_t roles = rules[3 * sec], rights = rules[3 * sec + 1];
        if (roles & ~0x1Fu || rights & ~0x1Fu || rules[3 * sec + 2] || (!roles != !rights))
            return KL_E_ARG;
    }
    char tmp[48];
    size_t o = 0;
    for (int sec = 0; sec < 3; sec++) {
        uint8_t roles = rules[3 * sec], rights = rules[3 * sec + 1];
        if (sec) tmp[o++] = ':';
        if (!roles || !rights) {
            tmp[o++] = '-';
            continue;
        }
        for (int b = 0; b < 5; b++)
            if (roles & (1u << b)) tmp[o++] = role_chars[b];
        tmp[o++] = '=';
        for (int b = 0; b < 5; b++)
            if (rights & (1u << b)) tmp[o++] = right_chars[b];
    }
    tmp[o] = 0;
    if (o + 1 > cap) return KL_E_BUFFER;
    memcpy(out, tmp, o + 1);
    return KL_OK;
}
