/* P-256 public key as SubjectPublicKeyInfo PEM: a fixed DER prefix (the SPKI of every
 * uncompressed P-256 key starts the same) and OpenSSL's base64. */
#include <string.h>

#include <openssl/evp.h>

#include "common_pem.h"

/* SEQUENCE { SEQUENCE { id-ecPublicKey, prime256v1 }, BIT STRING 0x00 0x04 ... } */
static const uint8_t spki_prefix[27] = {0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48,
                                        0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a, 0x86, 0x48,
                                        0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00, 0x04};

void kl_tool_p256_spki(const uint8_t pub[64], uint8_t der[KL_TOOL_P256_SPKI_LEN])
{
    memcpy(der, spki_prefix, sizeof spki_prefix);
    memcpy(der + sizeof spki_prefix, pub, 64);
}

int kl_tool_pem_pubkey(FILE *f, const uint8_t pub[64])
{
    uint8_t der[KL_TOOL_P256_SPKI_LEN];
    kl_tool_p256_spki(pub, der);
    unsigned char b64[4 * ((KL_TOOL_P256_SPKI_LEN + 2) / 3) + 1];
    int n = EVP_EncodeBlock(b64, der, (int)sizeof der);
    if (n <= 0) return -1;
    fputs("-----BEGIN PUBLIC KEY-----\n", f);
    for (int i = 0; i < n; i += 64)
        fprintf(f, "%.*s\n", n - i < 64 ? n - i : 64, (const char *)b64 + i);
    fputs("-----END PUBLIC KEY-----\n", f);
    return 0;
}
