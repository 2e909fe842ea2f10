/*
 * Runs the Wycheproof vectors (shared/vectors/wycheproof) against the HOST crypto:
 * aes_gcm_test.json (128/256-bit keys with 96-bit IVs; other sizes are refused by design
 * and counted), hmac_sha256_test.json and ecdh_secp256r1_ecpoint_test.json (uncompressed
 * points; compressed and malformed encodings are refused by the decoder and counted).
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../hcx.h" /* private header of host/ */

static int fails;

static size_t unhex(const char *h, uint8_t *out, size_t cap, int *ok)
{
    size_t n = strlen(h);
    *ok = (n % 2 == 0) && n / 2 <= cap;
    if (!*ok) return 0;
    for (size_t i = 0; i < n / 2; i++) {
        unsigned v;
        if (sscanf(h + 2 * i, "%2x", &v) != 1) {
            *ok = 0;
            return 0;
        }
        out[i] = (uint8_t)v;
    }
    return n / 2;
}

#define HEX(obj, key, buf, len)                                                                    \
    do {                                                                                           \
        int ok_;                                                                                   \
        len = unhex(json_string_value(json_object_get(obj, key)), buf, sizeof buf, &ok_);          \
        if (!ok_) {                                                                                \
            fprintf(stderr, "bad hex field %s\n", key);                                            \
            exit(2);                                                                               \
        }                                                                                          \
    } while (0)

static json_t *load(const char *name)
{
    const char *dir = getenv("KL_SHARED_DIR");
    char path[1024];
    json_error_t err;
    if (!dir) {
        fprintf(stderr, "KL_SHARED_DIR is not set\n");
        exit(2);
    }
    snprintf(path, sizeof path, "%s/vectors/wycheproof/%s", dir, name);
    json_t *j = json_load_file(path, 0, &err);
    if (!j) {
        fprintf(stderr, "%s: %s\n", path, err.text);
        exit(2);
    }
    return j;
}

static void fail(const char *file, json_int_t tc, const char *what)
{
    fprintf(stderr, "%s tcId %lld: %s\n", file, (long long)tc, what);
    fails++;
}

static void run_gcm(void)
{
    json_t *j = load("aes_gcm_test.json");
    size_t gi, ti, run = 0, refused = 0;
    json_t *g, *t;
    json_array_foreach(json_object_get(j, "testGroups"), gi, g)
    {
        json_int_t ks = json_integer_value(json_object_get(g, "keySize"));
        json_int_t ivs = json_integer_value(json_object_get(g, "ivSize"));
        json_int_t tags = json_integer_value(json_object_get(g, "tagSize"));
        json_array_foreach(json_object_get(g, "tests"), ti, t)
        {
            static uint8_t key[32], iv[300], aad[600], msg[600], ct[600], tag[16], out[600], t2[16];
            size_t kn, ivn, an, mn, cn, tn;
            json_int_t tc = json_integer_value(json_object_get(t, "tcId"));
            const char *res = json_string_value(json_object_get(t, "result"));
            int valid = strcmp(res, "valid") == 0;
            HEX(t, "key", key, kn);
            HEX(t, "iv", iv, ivn);
            HEX(t, "aad", aad, an);
            HEX(t, "msg", msg, mn);
            HEX(t, "ct", ct, cn);
            HEX(t, "tag", tag, tn);
            int ours = (ks == 128 || ks == 256) && ivs == 96 && tags == 128 && tn == 16;
            if (!ours) {
                /* Refused by design: must be refused, not silently mis-handled. */
                if (kl_hcx_gcm_seal(key, kn, iv, ivn, aad, an, msg, mn, out, t2) != KL_E_ARG)
                    fail("aes_gcm", tc, "size outside the supported set was not refused");
                refused++;
                continue;
            }
            run++;
            if (valid) {
                if (kl_hcx_gcm_seal(key, kn, iv, ivn, aad, an, msg, mn, out, t2) != KL_OK ||
                    cn != mn || memcmp(out, ct, cn) != 0 || memcmp(t2, tag, 16) != 0)
                    fail("aes_gcm", tc, "seal differs");
            }
            kl_status st = kl_hcx_gcm_open(key, kn, iv, ivn, aad, an, ct, cn, tag, out);
            if (valid && (st != KL_OK || memcmp(out, msg, mn) != 0))
                fail("aes_gcm", tc, "valid vector did not open");
            if (!valid && st == KL_OK) fail("aes_gcm", tc, "invalid vector opened");
        }
    }
    printf("aes_gcm: %zu run, %zu refused by design (AES-192 or IV not 96 bits)\n", run, refused);
    if (run < 100) fail("aes_gcm", 0, "too few vectors run");
    json_decref(j);
}

static void run_hmac(void)
{
    json_t *j = load("hmac_sha256_test.json");
    size_t gi, ti, run = 0;
    json_t *g, *t;
    json_array_foreach(json_object_get(j, "testGroups"), gi, g)
    {
        size_t tag_bytes = (size_t)json_integer_value(json_object_get(g, "tagSize")) / 8;
        json_array_foreach(json_object_get(g, "tests"), ti, t)
        {
            static uint8_t key[200], msg[400], tag[32], out[32];
            size_t kn, mn, tn;
            json_int_t tc = json_integer_value(json_object_get(t, "tcId"));
            int valid = strcmp(json_string_value(json_object_get(t, "result")), "valid") == 0;
            HEX(t, "key", key, kn);
            HEX(t, "msg", msg, mn);
            HEX(t, "tag", tag, tn);
            kl_hcx_hmac_sha256(key, kn, msg, mn, out);
            /* Truncated tags compare the leading bytes. */
            int match = tn == tag_bytes && tn <= 32 && kl_hcx_ct_equal(out, tag, tn);
            if (match != valid)
                fail("hmac_sha256", tc, valid ? "tag differs" : "invalid tag matched");
            run++;
        }
    }
    printf("hmac_sha256: %zu run\n", run);
    if (run < 100) fail("hmac_sha256", 0, "too few vectors run");
    json_decref(j);
}

static void run_ecdh(void)
{
    json_t *j = load("ecdh_secp256r1_ecpoint_test.json");
    size_t gi, ti, run = 0, refused = 0;
    json_t *g, *t;
    json_array_foreach(json_object_get(j, "testGroups"), gi, g)
    {
        json_array_foreach(json_object_get(g, "tests"), ti, t)
        {
            static uint8_t pub[200], priv[64], shared[64], out[32], k[32];
            size_t pn, kn, sn;
            json_int_t tc = json_integer_value(json_object_get(t, "tcId"));
            const char *res = json_string_value(json_object_get(t, "result"));
            HEX(t, "public", pub, pn);
            HEX(t, "private", priv, kn);
            HEX(t, "shared", shared, sn);
            /* The private key is an unsigned integer: drop leading zero bytes. */
            size_t off = 0;
            while (kn - off > 32 && priv[off] == 0)
                off++;
            if (kn - off > 32) {
                fail("ecdh", tc, "private key too long");
                continue;
            }
            memset(k, 0, 32);
            memcpy(k + 32 - (kn - off), priv + off, kn - off);
            if (pn != 65 || pub[0] != 0x04) {
                /* Only uncompressed points are decoded; the rest is refused by design. */
                if (strcmp(res, "valid") == 0)
                    fail("ecdh", tc, "valid vector uses an encoding we refuse");
                refused++;
                continue;
            }
            run++;
            kl_status st = kl_hcx_p256_ecdh(k, pub + 1, out);
            if (strcmp(res, "invalid") == 0) {
                if (st != KL_E_BAD_KEY) fail("ecdh", tc, "invalid point accepted");
            } else if (st != KL_OK || sn != 32 || memcmp(out, shared, 32) != 0) {
                fail("ecdh", tc, "shared secret differs");
            }
        }
    }
    printf("ecdh_secp256r1_ecpoint: %zu run, %zu refused by design (not 04||X||Y)\n", run, refused);
    if (run < 300) fail("ecdh", 0, "too few vectors run");
    json_decref(j);
}

int main(void)
{
    run_gcm();
    run_hmac();
    run_ecdh();
    if (fails) {
        fprintf(stderr, "%d failure(s)\n", fails);
        return 1;
    }
    printf("wycheproof vectors ok against the host crypto\n");
    return 0;
}
