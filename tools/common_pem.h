/* PEM output of chip public keys for the CLI tools. */
#ifndef KL_TOOLS_COMMON_PEM_H
#define KL_TOOLS_COMMON_PEM_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* DER SubjectPublicKeyInfo (91 bytes) of a P-256 public key X||Y. */
#define KL_TOOL_P256_SPKI_LEN 91u
void kl_tool_p256_spki(const uint8_t pub[64], uint8_t der[KL_TOOL_P256_SPKI_LEN]);
/* Prints X||Y as a "PUBLIC KEY" PEM block (SubjectPublicKeyInfo). 0, or -1 on failure. */
int kl_tool_pem_pubkey(FILE *f, const uint8_t pub[64]);

#endif
