/* Host-side ECDSA for the CLI: signing chip challenges and key-import requests with a
 * P-256 private key kept in a PEM file (the admin and key-import keys are the owner's,
 * never the chip's). */
#ifndef KL_TOOLS_COMMON_SIGN_H
#define KL_TOOLS_COMMON_SIGN_H

#include <stddef.h>
#include <stdint.h>

/* Environment variable with the passphrase of an encrypted key file. */
#define KL_TOOL_KEY_PASS_ENV "KEYLINK_KEY_PASSPHRASE"

/* Signs SHA-256(data) with the P-256 private key in the PEM file path (PKCS#8 or SEC1,
 * encrypted ones opened with $KEYLINK_KEY_PASSPHRASE); sig gets raw r||s. Returns 0, or
 * -1 after a message on stderr naming the file (unreadable, not P-256, wrong passphrase). */
int kl_tool_sign_sha256_pem(const char *path, const uint8_t *data, size_t len, uint8_t sig[64]);

#endif
