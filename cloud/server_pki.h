/*
 * keylinkd's own PKI, made on first start in the data directory: the endpoint root CA
 * (the role Amazon Root CA 3 plays for AWS) and a TLS server certificate it signs for the
 * endpoint's host names; plus the admin token of the control API.
 *
 * Files (docs/registry.md, "Data directory"):
 *   server-root-ca.pem  root CA certificate (0644) — devices and tools trust this
 *   server-root-ca.key  its private key, PKCS#8 PEM (0600)
 *   server.pem          server certificate (0644)
 *   server.key          its private key (0600)
 *   admin-token         64 hex digits, no newline (0600)
 */
#ifndef KL_CLOUD_SERVER_PKI_H
#define KL_CLOUD_SERVER_PKI_H

#include <stddef.h>

#include "registry.h"

/* Creates the root CA and server certificate when missing; existing files are kept.
 * names: DNS names or IPv4/IPv6 literals for the subjectAltName (at least one). */
kl_reg_rc kl_server_pki_ensure(const char *dir, const char *const *names, size_t n,
                               struct kl_reg_err *err);

/* Reads DIR/admin-token, or makes one (32 random bytes as hex) when missing. A token file
 * that is not a regular file of mode 0600 with 64 hex digits is refused. */
kl_reg_rc kl_admin_token_ensure(const char *dir, char token[65], struct kl_reg_err *err);

#endif
