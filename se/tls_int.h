/* Helpers of the chip's TLS 1.2 offload (se/cmd_tls.c). Only se/ includes this. */
#ifndef KL_SE_TLS_INT_H
#define KL_SE_TLS_INT_H

#include <stddef.h>
#include <stdint.h>

#include "keylink/status.h"

#define KL_TLS_CERT_MAX 2048u
#define KL_TLS_CHAIN_MAX 4u

/* TLS 1.2 PRF with SHA-256 (RFC 5246 section 5): out = P_SHA256(secret, label || seed). */
kl_status kl_tls_prf(const uint8_t *secret, size_t slen, const char *label, const uint8_t *seed,
                     size_t seedlen, uint8_t *out, size_t outlen);

/* Checks that der is one DER X.509 v3 CA certificate with an ECDSA P-256 key whose
 * self-signature verifies (IMPORT_ROOT_CERT). KL_E_BAD_KEY / KL_E_VERIFY_FAILED. */
kl_status kl_tls_check_root(const uint8_t *der, size_t n);

/* Verifies certs[0] (leaf) with certs[1..n-1] as intermediates against the trust anchor
 * root at unix time t, for TLS server authentication; every key ECDSA P-256. On KL_OK
 * pub gets the leaf key X||Y. KL_E_EXPIRED, KL_E_VERIFY_FAILED, KL_E_BAD_KEY. */
kl_status kl_tls_verify_chain(const uint8_t *root, size_t root_len, const uint8_t *const *certs,
                              const size_t *lens, size_t n, uint64_t t, uint8_t pub[64]);

#endif
