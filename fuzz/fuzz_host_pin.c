/*
 * host/channel_pin.c: kl_channel_pub_parse (pin files: hex X‖Y, hex 04‖X‖Y, PEM
 * SubjectPublicKeyInfo) on hostile text. An accepted key is a P-256 point, and writing
 * it back as PEM and parsing that gives the same key.
 */
#include <string.h>

#include "fuzz.h"
#include "keylink/channel.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t pub[KL_SE_IDENTITY_LEN], again[KL_SE_IDENTITY_LEN];
    memset(pub, 0xEE, sizeof pub);
    kl_status st = kl_channel_pub_parse((const char *)data, size, pub);
    if (st != KL_OK) {
        FZ_CHECK(st == KL_E_BAD_KEY);
        for (size_t i = 0; i < sizeof pub; i++)
            FZ_CHECK(pub[i] == 0xEE); /* nothing half-written */
        return 0;
    }
    char pem[180];
    size_t n = 0;
    FZ_CHECK(kl_channel_pub_to_pem(pub, pem, sizeof pem, &n) == KL_OK);
    FZ_CHECK(n < sizeof pem && pem[n] == 0);
    FZ_CHECK(kl_channel_pub_parse(pem, n, again) == KL_OK);
    FZ_CHECK(memcmp(pub, again, sizeof pub) == 0);
    return 0;
}
