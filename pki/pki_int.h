/* Internal helpers of keylink_pki (not installed, not for other layers). */
#ifndef KL_PKI_INT_H
#define KL_PKI_INT_H

#include <openssl/x509.h>

#include "kl_pki.h"

/* Record the reason for a failure (printf format) and return `st`. */
kl_status kl_pki_fail(kl_status st, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Like kl_pki_fail, with OpenSSL's first queued error appended; clears OpenSSL's queue. */
kl_status kl_pki_fail_ssl(kl_status st, const char *what);

/* Give `cert` a random positive 159-bit serial number. 1 on success. */
int kl_pki_set_random_serial(X509 *cert);

/* Add extension `nid` with OpenSSL config value `value`, issuer `issuer` (may be cert). */
kl_status kl_pki_add_ext(X509 *cert, X509 *issuer, int nid, const char *value);

/* Set notBefore = now, notAfter = now + days, clamped to `limit`'s notAfter if not NULL. */
kl_status kl_pki_set_validity(X509 *cert, int days, X509 *limit);

/* Subject with the single attribute CN = cn (1..64 bytes of UTF-8). */
kl_status kl_pki_name_cn(const char *cn, X509_NAME **out);

/* Copy a memory BIO's contents into a NUL-terminated malloc'd string (*outlen without
 * the NUL); *out is untouched on failure. */
kl_status kl_pki_bio_to_string(BIO *b, char **out, size_t *outlen);

/* 1 if `key` is an EC key on P-256. */
int kl_pki_is_p256(EVP_PKEY *key);

#endif
