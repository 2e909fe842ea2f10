/* ECDSA signature encodings: DER (SEQUENCE of two INTEGERs) <-> raw r||s for P-256. */
#include <string.h>

#include <openssl/bn.h>
#include <openssl/ec.h>

#include "cx.h"

kl_status kl_cx_sig_der_to_raw(const uint8_t *der, size_t n, uint8_t sig[KL_CX_P256_SIG])
{
    if (!sig) return KL_E_INTERNAL;
    /* A P-256 DER signature is at most 72 bytes; refuse anything longer up front. */
    if (!der || n < 8 || n > 72) return KL_E_BAD_PARAM;
    const unsigned char *p = der;
    ECDSA_SIG *s = d2i_ECDSA_SIG(NULL, &p, (long)n);
    kl_status st = KL_E_BAD_PARAM;
    unsigned char *re = NULL;
    if (!s || p != der + n) goto out;
    /* Strict DER: re-encoding must give the same bytes (minimal lengths and integers). */
    int rl = i2d_ECDSA_SIG(s, &re);
    if (rl <= 0 || (size_t)rl != n || memcmp(re, der, n) != 0) goto out;
    const BIGNUM *r = NULL, *ss = NULL;
    ECDSA_SIG_get0(s, &r, &ss);
    if (BN_is_negative(r) || BN_is_negative(ss) || BN_num_bytes(r) > 32 || BN_num_bytes(ss) > 32)
        goto out;
    if (BN_bn2binpad(r, sig, 32) != 32 || BN_bn2binpad(ss, sig + 32, 32) != 32) goto out;
    st = KL_OK;
out:
    OPENSSL_free(re);
    ECDSA_SIG_free(s);
    return st;
}

kl_status kl_cx_sig_raw_to_der(const uint8_t sig[KL_CX_P256_SIG], uint8_t *der, size_t cap,
                               size_t *len)
{
    if (!sig || !der || !len) return KL_E_INTERNAL;
    *len = 0;
    kl_status st = KL_E_INTERNAL;
    ECDSA_SIG *s = ECDSA_SIG_new();
    BIGNUM *r = BN_bin2bn(sig, 32, NULL);
    BIGNUM *ss = BN_bin2bn(sig + 32, 32, NULL);
    if (!s || !r || !ss || !ECDSA_SIG_set0(s, r, ss)) {
        BN_free(r);
        BN_free(ss);
        ECDSA_SIG_free(s);
        return KL_E_INTERNAL;
    }
    int l = i2d_ECDSA_SIG(s, NULL);
    if (l <= 0)
        st = KL_E_INTERNAL;
    else if ((size_t)l > cap)
        st = KL_E_BAD_LENGTH;
    else {
        unsigned char *p = der;
        if (i2d_ECDSA_SIG(s, &p) == l) {
            *len = (size_t)l;
            st = KL_OK;
        }
    }
    ECDSA_SIG_free(s);
    return st;
}
