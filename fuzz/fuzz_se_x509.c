/*
 * se/tls_x509.c: the chip's certificate checks (IMPORT_ROOT_CERT's root check and
 * TLS_VERIFY_PEER's chain verification) on hostile DER. Byte 0: bits 0-1 pick the
 * operation (0 root check of the rest; else a chain: [root if bit 7 is clear] then up
 * to 4 certificates, each u16 length ‖ DER); bit 7 uses the committed test root as the
 * trust anchor. Only the documented statuses may come back, and a leaf accepted with
 * the test root must have a valid P-256 key.
 */
#include <string.h>

#include "cx.h"
#include "fuzz.h"
#include "fuzz_certs.h"
#include "../se/tls_int.h" /* host/ has a tls_int.h too */

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fz_in in = {data, size};
    uint8_t mode = fz_u8(&in);
    if ((mode & 3) == 0) {
        kl_status st = kl_tls_check_root(in.p, in.n);
        FZ_CHECK(st == KL_OK || st == KL_E_BAD_KEY || st == KL_E_VERIFY_FAILED);
        return 0;
    }
    const uint8_t *root = fz_root_der;
    size_t root_len = sizeof fz_root_der, got;
    if (!(mode & 0x80)) {
        size_t rl = fz_u16(&in);
        root = fz_bytes(&in, rl, &got);
        root_len = got;
    }
    const uint8_t *certs[KL_TLS_CHAIN_MAX];
    size_t lens[KL_TLS_CHAIN_MAX], n = 0;
    while (in.n && n < KL_TLS_CHAIN_MAX) {
        size_t l = fz_u16(&in);
        certs[n] = fz_bytes(&in, l, &got);
        lens[n++] = got;
    }
    if (!n) return 0;
    uint8_t pub[64];
    memset(pub, 0xEE, sizeof pub);
    kl_status st = kl_tls_verify_chain(root, root_len, certs, lens, n, 2000000000u, pub);
    FZ_CHECK(st == KL_OK || st == KL_E_BAD_KEY || st == KL_E_VERIFY_FAILED || st == KL_E_EXPIRED ||
             st == KL_E_BAD_PARAM);
    if (st == KL_OK) FZ_CHECK(kl_cx_ec_check_pub(pub) == KL_OK);
    return 0;
}
