/* The CA passphrase for make_ca_cert and init_tls_iot: never from argv. */
#ifndef KL_COMMON_PASS_H
#define KL_COMMON_PASS_H

#include <stddef.h>

/* Environment variable that may hold the CA passphrase. */
#define KL_PASS_ENV "KEYLINK_CA_PASSPHRASE"
/* Room for a passphrase plus its terminating NUL. */
#define KL_PASS_CAP 1025

/*
 * Get the CA passphrase into buf (cap bytes, NUL-terminated), *len its length. Sources in
 * order: `file` (when not NULL: its first line, without the line end), the environment
 * variable KEYLINK_CA_PASSPHRASE, then a prompt on the controlling terminal with echo off
 * (asked twice when `confirm` is set, for a new key). Prints a clear message prefixed by
 * `prog` to stderr and returns -1 on failure (no source, unreadable file, empty
 * passphrase, mismatch); 0 on success. Wipe buf with kl_pass_wipe when done.
 */
int kl_pass_get(const char *prog, const char *file, int confirm, char *buf, size_t cap,
                size_t *len);

/* Overwrite a passphrase buffer with zeros in a way the compiler keeps. */
void kl_pass_wipe(char *buf, size_t cap);

#endif
