/* Small helpers of the registry: time, random ids, page tokens. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <openssl/rand.h>

#include "registry_int.h"

static const char hexd[] = "0123456789abcdef";

int64_t kl_reg_now(void)
{
    return (int64_t)time(NULL);
}

int kl_reg_random_hex(char *out, size_t nbytes)
{
    unsigned char b[64];
    if (nbytes > sizeof b || RAND_bytes(b, (int)nbytes) != 1) return -1;
    for (size_t i = 0; i < nbytes; i++) {
        out[2 * i] = hexd[b[i] >> 4];
        out[2 * i + 1] = hexd[b[i] & 15];
    }
    out[2 * nbytes] = 0;
    return 0;
}

void kl_reg_uuid(char out[40])
{
    unsigned char b[16] = {0};
    if (RAND_bytes(b, sizeof b) != 1) memset(b, 0, sizeof b);
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40); /* version 4 */
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
    snprintf(out, 40, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0],
             b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13],
             b[14], b[15]);
}

int kl_reg_is_hex64(const char *s)
{
    return s && strlen(s) == 64 && strspn(s, hexd) == 64;
}

void kl_reg_token_encode(const char *key, char *out, size_t n)
{
    size_t k = strlen(key);
    if (n == 0) return;
    if (2 * k + 1 > n) k = (n - 1) / 2;
    for (size_t i = 0; i < k; i++) {
        out[2 * i] = hexd[(unsigned char)key[i] >> 4];
        out[2 * i + 1] = hexd[(unsigned char)key[i] & 15];
    }
    out[2 * k] = 0;
}

kl_reg_rc kl_reg_page_strings(struct kl_registry *reg, sqlite3_stmt *st, struct kl_reg_page *page,
                              int value_col, kl_reg_str_fn fn, void *ctx, kl_reg_rc rc,
                              const char *what, struct kl_reg_err *err)
{
    int n = 0, s;
    char last[KL_REG_ARN_MAX] = "";
    while ((s = sqlite3_step(st)) == SQLITE_ROW) {
        if (n == page->limit) { /* one row past the page: there is a next page */
            kl_reg_token_encode(last, page->next_token, sizeof page->next_token);
            break;
        }
        kl_reg_col_copy(st, 0, last, sizeof last);
        char val[KL_REG_ARN_MAX];
        kl_reg_col_copy(st, value_col, val, sizeof val);
        n++;
        if (fn(ctx, val)) break;
    }
    if (s != SQLITE_ROW && s != SQLITE_DONE) rc = kl_reg_db_fail(reg->rdb, err, what);
    kl_reg_done(st);
    kl_reg_rend(reg);
    return rc;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

int kl_reg_token_decode(const char *token, char *key, size_t n)
{
    key[0] = 0;
    if (!token || !*token) return 0;
    size_t l = strlen(token);
    if (l % 2 || l / 2 + 1 > n) return -1;
    for (size_t i = 0; i < l / 2; i++) {
        int hi = hexval(token[2 * i]), lo = hexval(token[2 * i + 1]);
        if (hi < 0 || lo < 0) return -1;
        key[i] = (char)(hi << 4 | lo);
        if (key[i] == 0) return -1;
    }
    key[l / 2] = 0;
    return 0;
}

kl_reg_rc kl_reg_page_start(struct kl_reg_page *page, char *key, size_t n, struct kl_reg_err *err)
{
    page->next_token[0] = 0;
    if (page->limit < 1 || page->limit > 250)
        return kl_reg_fail(err, KL_REG_INVALID, "page size must be 1..250");
    if (kl_reg_token_decode(page->token, key, n))
        return kl_reg_fail(err, KL_REG_INVALID, "invalid pagination token");
    return KL_REG_OK;
}
