/* Per-thread failure reasons, so the registry's worker threads never see each other's. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <openssl/err.h>

#include "pki_int.h"

static _Thread_local char kl_pki_reason[512];

const char *kl_pki_error(void)
{
    return kl_pki_reason;
}

kl_status kl_pki_fail(kl_status st, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(kl_pki_reason, sizeof kl_pki_reason, fmt, ap);
    va_end(ap);
    return st;
}

kl_status kl_pki_fail_ssl(kl_status st, const char *what)
{
    unsigned long e = ERR_peek_last_error();
    char buf[256] = "";
    if (e) ERR_error_string_n(e, buf, sizeof buf);
    ERR_clear_error();
    if (buf[0]) return kl_pki_fail(st, "%s (%s)", what, buf);
    return kl_pki_fail(st, "%s", what);
}
