/*
 * The Wycheproof proof: every test id of the P-256, AES and MAC vector files goes
 * through the chip's command entry point (kl_chip_execute) on a factory-fresh chip:
 * keys are imported with CREATE_OBJECT + IMPORT_KEY (allowed unsigned in DELIVERY),
 * then SIGN_VERIFY, VERIFY_WITH_KEY, KEY_EXCHANGE, MD_*, MAC_* and CIPHER_* run them.
 *
 * valid      must be accepted with exactly the expected output;
 * invalid    must be rejected (an error status, no output);
 * acceptable is decided by its flags as docs/wycheproof.md says, and checked;
 * vectors the chip cannot take by design (AES-192, GCM IVs over 255 bytes, HMAC keys
 * over 64 bytes) are counted as refused, and the chip must answer them with an error.
 *
 * Files (in $KL_SHARED_DIR/vectors/wycheproof): ecdsa_secp256r1_sha256_test.json,
 * ecdsa_secp256r1_sha256_p1363_test.json, ecdh_secp256r1_test.json,
 * ecdh_secp256r1_ecpoint_test.json, aes_gcm_test.json, aes_ccm_test.json,
 * aes_cbc_pkcs5_test.json, aes_cmac_test.json, hmac_sha256_test.json.
 */
#include "chip_harness.h" /* first: kl_test.h asks for _GNU_SOURCE */

#include <jansson.h>

#include "cx.h"

#define KEY_ID 0x3000

enum res { PASS, PASS_ACCEPTABLE, REFUSED, FAIL };

#define MAX_REASONS 4

struct tally {
    const char *file;
    int pass, acceptable, refused, fail, total;
    const char *reason[MAX_REASONS]; /* why vectors were refused by design */
    int reason_n[MAX_REASONS];
};

static struct tally *cur;

/* Records one vector's outcome; failures say why. */
static void note(json_t *t, enum res r, const char *why)
{
    cur->total++;
    switch (r) {
    case PASS:
        cur->pass++;
        break;
    case PASS_ACCEPTABLE:
        cur->pass++;
        cur->acceptable++;
        break;
    case REFUSED:
        cur->refused++;
        for (int i = 0; i < MAX_REASONS; i++) {
            if (!cur->reason[i] || strcmp(cur->reason[i], why) == 0) {
                cur->reason[i] = why;
                cur->reason_n[i]++;
                break;
            }
        }
        break;
    case FAIL:
        cur->fail++;
        if (cur->fail <= 20)
            fprintf(stderr, "FAIL %s tcId %lld: %s\n", cur->file,
                    (long long)json_integer_value(json_object_get(t, "tcId")), why);
        break;
    }
}

/* A vector refused by design: the chip must have answered an error (st), not a result. */
static void refused(json_t *t, kl_status st, const char *reason)
{
    note(t, st != KL_OK ? REFUSED : FAIL,
         st != KL_OK ? reason : "the chip accepted what it must refuse by design");
}

static const char *sget(json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(o, k));
    return s ? s : "";
}

static int is(json_t *t, const char *result)
{
    return strcmp(sget(t, "result"), result) == 0;
}

/* ---- acceptable vectors: the policy of docs/wycheproof.md ---- */

/* Flags whose "acceptable" vectors the chip refuses (KL_E_BAD_KEY): it takes points
 * uncompressed only, and public keys only as the one DER form of a named-curve P-256 key. */
static const char *const refused_flags[] = {
    "CompressedPublic",  "CompressedPoint",  "InvalidAsn", "UnnamedCurve",           "UnusedParam",
    "ModifiedGenerator", "ModifiedCofactor", "NoCofactor", "ModifiedCurveParameter", "WrongOrder",
};

/* 1 when every flag of an acceptable vector is one the policy decides as "refuse". */
static int policy_refuses(json_t *t)
{
    json_t *flags = json_object_get(t, "flags");
    size_t i, n = 0;
    json_t *f;
    json_array_foreach(flags, i, f)
    {
        int known = 0;
        for (size_t k = 0; k < sizeof(refused_flags) / sizeof(refused_flags[0]); k++)
            if (strcmp(json_string_value(f), refused_flags[k]) == 0) known = 1;
        if (!known) return 0;
        n++;
    }
    return n > 0;
}

/* ---- ECDSA ---- */

/* SHA-256 of msg computed by the chip (MD_INIT / MD_UPDATE / MD_PEEK / MD_FINISH). */
static int chip_sha256(struct h_chip *h, const uint8_t *m, size_t n, uint8_t out[32])
{
    uint8_t r[1 + 2000];
    r[0] = 1;
    if (h_exec(h, H_MD_INIT, r, 1) != KL_OK || h->rlen != 1) return 0;
    uint8_t ctx = h->resp[0];
    /* feed in two parts with a peek between, which must not end the context */
    size_t half = n / 2;
    r[0] = ctx;
    memcpy(r + 1, m, half);
    if (h_exec(h, H_MD_UPDATE, r, 1 + half) != KL_OK) return 0;
    if (h_exec(h, H_MD_PEEK, r, 1) != KL_OK || h->rlen != 32) return 0;
    memcpy(r + 1, m + half, n - half);
    if (h_exec(h, H_MD_UPDATE, r, 1 + n - half) != KL_OK) return 0;
    if (h_exec(h, H_MD_FINISH, r, 1) != KL_OK || h->rlen != 32) return 0;
    memcpy(out, h->resp, 32);
    return 1;
}

static void run_ecdsa(struct h_chip *h, json_t *root, int der)
{
    size_t gi, ti;
    json_t *g, *t;
    json_array_foreach(json_object_get(root, "testGroups"), gi, g)
    {
        size_t pl = 0;
        uint8_t *pub = h_unhex(sget(json_object_get(g, "publicKey"), "uncompressed"), &pl);
        int key_ok = pub && pl == 65 && pub[0] == 4 &&
                     h_create_key(h, KEY_ID, 2, 64, 4, 0x10, 0x01) == KL_OK &&
                     h_import(h, KEY_ID, pub + 1, 64) == KL_OK;
        json_array_foreach(json_object_get(g, "tests"), ti, t)
        {
            if (!key_ok) {
                note(t, FAIL, "group public key not imported");
                continue;
            }
            size_t ml = 0, sl = 0;
            uint8_t *msg = h_unhex(sget(t, "msg"), &ml), *sig = h_unhex(sget(t, "sig"), &sl);
            size_t cap = 128 + sl + ml;
            uint8_t *r = malloc(cap);
            if (!msg || !sig || !r) {
                note(t, FAIL, "bad vector hex");
                free(msg), free(sig), free(r);
                continue;
            }
            /* SIGN_VERIFY op 2 with the object, the chip hashing the message */
            r[0] = 2;
            kl_put16(r + 1, KEY_ID);
            r[3] = der ? 1 : 0;
            r[4] = 1;
            kl_put16(r + 5, sl);
            memcpy(r + 7, sig, sl);
            memcpy(r + 7 + sl, msg, ml);
            size_t n1 = 7 + sl + ml;
            kl_status s1 = h_exec(h, H_SIGN_VERIFY, r, n1);
            /* VERIFY_WITH_KEY with the key in the request: DER file with the message,
             * P1363 file with a digest the chip computed through MD_* */
            r[0] = der ? 1 : 0;
            memcpy(r + 2, pub + 1, 64);
            kl_put16(r + 66, sl);
            memcpy(r + 68, sig, sl);
            size_t n2;
            kl_status s2 = KL_E_INTERNAL;
            if (der) {
                r[1] = 1;
                memcpy(r + 68 + sl, msg, ml);
                n2 = 68 + sl + ml;
                s2 = h_exec(h, H_VERIFY_WITH_KEY, r, n2);
            } else {
                uint8_t dg[32];
                r[1] = 0;
                n2 = 68 + sl + 32;
                if (chip_sha256(h, msg, ml, dg)) {
                    memcpy(r + 68 + sl, dg, 32);
                    s2 = h_exec(h, H_VERIFY_WITH_KEY, r, n2);
                }
            }
            /* a request over 2048 bytes cannot be a frame: the chip refuses its length */
            kl_status want_bad1 = n1 > 2048 ? KL_E_BAD_LENGTH : KL_E_VERIFY_FAILED;
            kl_status want_bad2 = n2 > 2048 ? KL_E_BAD_LENGTH : KL_E_VERIFY_FAILED;
            if (is(t, "valid"))
                note(t, s1 == KL_OK && s2 == KL_OK ? PASS : FAIL, "valid signature refused");
            else if (is(t, "invalid"))
                note(t, s1 == want_bad1 && s2 == want_bad2 ? PASS : FAIL,
                     "invalid signature not refused with the expected status");
            else
                note(t, FAIL, "acceptable ECDSA vector has no policy");
            free(msg), free(sig), free(r);
        }
        h_delete(h, KEY_ID);
        free(pub);
    }
}

/* ---- ECDH ---- */

static void run_ecdh(struct h_chip *h, json_t *root, uint8_t point_fmt)
{
    size_t gi, ti;
    json_t *g, *t;
    json_array_foreach(json_object_get(root, "testGroups"), gi, g)
    {
        json_array_foreach(json_object_get(g, "tests"), ti, t)
        {
            size_t kl = 0, pl = 0, zl = 0;
            uint8_t *k = h_unhex(sget(t, "private"), &kl), *pt = h_unhex(sget(t, "public"), &pl),
                    *z = h_unhex(sget(t, "shared"), &zl);
            uint8_t mat[96] = {0};
            const uint8_t *kk = k;
            while (kl > 32 && kk && *kk == 0)
                kk++, kl--;
            int ok = k && pt && z && kl <= 32;
            if (ok) {
                memcpy(mat + 32 - kl, kk, kl);
                /* the public half for the import; the ECDH itself runs in the chip */
                ok = kl_cx_ec_pub_from_priv(mat, mat + 32) == KL_OK &&
                     h_create_key(h, KEY_ID, 3, 96, 4, 0xD1, 0x02) == KL_OK &&
                     h_import(h, KEY_ID, mat, 96) == KL_OK;
            }
            kl_cx_wipe(mat, sizeof(mat));
            if (!ok) {
                note(t, FAIL, "private key not imported");
            } else {
                uint8_t *r = malloc(6 + pl);
                if (!r) abort();
                kl_put16(r, KEY_ID);
                r[2] = point_fmt;
                kl_put16(r + 3, pl);
                memcpy(r + 5, pt, pl);
                r[5 + pl] = 0; /* return the shared secret */
                kl_status s = h_exec(h, H_KEY_EXCHANGE, r, 6 + pl);
                free(r);
                /* a request over 2048 bytes cannot be a frame: the chip refuses its length */
                kl_status no = 6 + pl > 2048 ? KL_E_BAD_LENGTH : KL_E_BAD_KEY;
                if (is(t, "valid"))
                    note(t,
                         s == KL_OK && h->rlen == zl && memcmp(h->resp, z, zl) == 0 ? PASS : FAIL,
                         "valid exchange refused or wrong secret");
                else if (is(t, "invalid"))
                    note(t, s == no && h->rlen == 0 ? PASS : FAIL,
                         "invalid public key not refused with KL_E_BAD_KEY");
                else if (!policy_refuses(t))
                    note(t, FAIL,
                         "acceptable vector with a flag docs/wycheproof.md does not decide");
                else
                    note(t, s == no && h->rlen == 0 ? PASS_ACCEPTABLE : FAIL,
                         "acceptable vector not refused as the policy says");
            }
            h_delete(h, KEY_ID);
            free(k), free(pt), free(z);
        }
    }
}

/* ---- AES ---- */

/* Creates and fills the AES key object; KL_OK or the chip's refusal. */
static kl_status aes_key(struct h_chip *h, const uint8_t *k, size_t kl, uint8_t usage, uint8_t alg)
{
    kl_status st = h_create_key(h, KEY_ID, 1, kl, 1, usage, alg);
    if (st == KL_OK) st = h_import(h, KEY_ID, k, kl);
    return st;
}

/* CIPHER_INIT; the iv length byte is what a host writes: values over 255 cannot be
 * expressed, so the request carries 0xFF and the whole IV (the chip must refuse). */
static kl_status cipher_init(struct h_chip *h, uint8_t alg, uint8_t dir, uint8_t pad,
                             const uint8_t *iv, size_t ivl, size_t tagl, size_t total,
                             const uint8_t *aad, size_t al, uint8_t *ctx)
{
    uint8_t r[2048];
    size_t n = 0;
    if (6 + ivl + 7 + al > sizeof(r)) return KL_E_ARG;
    kl_put16(r, KEY_ID);
    r[2] = alg;
    r[3] = dir;
    r[4] = pad;
    r[5] = ivl > 255 ? 0xFF : (uint8_t)ivl;
    n = 6;
    memcpy(r + n, iv, ivl);
    n += ivl;
    r[n++] = (uint8_t)tagl;
    kl_put32(r + n, total);
    n += 4;
    kl_put16(r + n, al);
    n += 2;
    if (al) memcpy(r + n, aad, al);
    n += al;
    kl_status st = h_exec(h, H_CIPHER_INIT, r, n);
    if (st == KL_OK) *ctx = h->resp[0];
    return st;
}

/* Streams data through CIPHER_UPDATE in odd-sized chunks; appends output to out. */
static kl_status cipher_updates(struct h_chip *h, uint8_t ctx, const uint8_t *d, size_t n,
                                uint8_t *out, size_t *ol, int expect_empty)
{
    uint8_t r[1 + 2032];
    size_t off = 0;
    while (off < n) {
        size_t k = n - off < 97 ? n - off : 97;
        r[0] = ctx;
        memcpy(r + 1, d + off, k);
        kl_status st = h_exec(h, H_CIPHER_UPDATE, r, 1 + k);
        if (st != KL_OK) return st;
        if (expect_empty && h->rlen != 0)
            return KL_E_INTERNAL; /* AEAD decrypt released data before the tag */
        memcpy(out + *ol, h->resp, h->rlen);
        *ol += h->rlen;
        off += k;
    }
    return KL_OK;
}

static kl_status cipher_finish(struct h_chip *h, uint8_t ctx, const uint8_t *tag, size_t tl,
                               uint8_t *out, size_t *ol)
{
    uint8_t r[1 + 16];
    r[0] = ctx;
    if (tl) memcpy(r + 1, tag, tl);
    kl_status st = h_exec(h, H_CIPHER_FINISH, r, 1 + tl);
    if (st == KL_OK) {
        memcpy(out + *ol, h->resp, h->rlen);
        *ol += h->rlen;
    }
    return st;
}

/* The total data length field: CCM needs it, GCM must leave it 0. */
static size_t total(uint8_t alg, size_t n)
{
    return alg == 0x13 ? n : 0;
}

static void run_aead(struct h_chip *h, json_t *root, uint8_t alg)
{
    size_t gi, ti;
    json_t *g, *t;
    json_array_foreach(json_object_get(root, "testGroups"), gi, g)
    {
        size_t tagl = (size_t)json_integer_value(json_object_get(g, "tagSize")) / 8;
        json_array_foreach(json_object_get(g, "tests"), ti, t)
        {
            size_t kl = 0, ivl = 0, al = 0, ml = 0, cl = 0, tl = 0;
            uint8_t *k = h_unhex(sget(t, "key"), &kl), *iv = h_unhex(sget(t, "iv"), &ivl),
                    *aad = h_unhex(sget(t, "aad"), &al), *m = h_unhex(sget(t, "msg"), &ml),
                    *ct = h_unhex(sget(t, "ct"), &cl), *tag = h_unhex(sget(t, "tag"), &tl);
            uint8_t *out = malloc(ml + cl + 64);
            uint8_t ctx = 0;
            size_t ol = 0;
            if (!k || !iv || !aad || !m || !ct || !tag || !out) {
                note(t, FAIL, "bad vector hex");
                goto next;
            }
            kl_status ks = aes_key(h, k, kl, 0x02, alg);
            if (kl == 24) {
                refused(
                    t, ks,
                    "AES-192: the chip has AES-128 and AES-256 only (key object size 16 or 32)");
                goto next;
            }
            if (ks != KL_OK) {
                note(t, is(t, "invalid") ? PASS : FAIL, "AES key refused");
                goto next;
            }
            if (is(t, "valid") && ivl > 255) {
                /* refused by design: the one-byte iv length cannot carry it */
                kl_status s =
                    cipher_init(h, alg, 2, 0, iv, ivl, tagl, total(alg, cl), aad, al, &ctx);
                refused(t, s, "GCM IV over 255 bytes: the CIPHER_INIT iv length field is one byte");
                if (s == KL_OK) cipher_finish(h, ctx, NULL, 0, out, &ol);
                goto next;
            }
            if (is(t, "valid")) {
                /* encrypt: ct || tag exactly */
                kl_status s =
                    cipher_init(h, alg, 1, 0, iv, ivl, tagl, total(alg, ml), aad, al, &ctx);
                if (s == KL_OK) s = cipher_updates(h, ctx, m, ml, out, &ol, 0);
                if (s == KL_OK) s = cipher_finish(h, ctx, NULL, 0, out, &ol);
                if (s != KL_OK || ol != cl + tl || memcmp(out, ct, cl) ||
                    memcmp(out + cl, tag, tl)) {
                    note(t, FAIL, "encryption refused or wrong ct||tag");
                    goto next;
                }
            }
            /* decrypt: nothing before the tag, then exactly msg; invalid: an error, no data */
            ol = 0;
            kl_status s = cipher_init(h, alg, 2, 0, iv, ivl, tagl, total(alg, cl), aad, al, &ctx);
            if (s == KL_OK) {
                s = cipher_updates(h, ctx, ct, cl, out, &ol, 1);
                if (s == KL_OK)
                    s = cipher_finish(h, ctx, tag, tl, out, &ol);
                else
                    cipher_finish(h, ctx, tag, tl, out, &ol); /* free the context */
            }
            if (is(t, "valid"))
                note(t, s == KL_OK && ol == ml && memcmp(out, m, ml) == 0 ? PASS : FAIL,
                     "decryption refused or wrong plaintext");
            else
                note(t, s != KL_OK && ol == 0 ? PASS : FAIL, "invalid ciphertext/tag accepted");
        next:
            h_delete(h, KEY_ID);
            free(k), free(iv), free(aad), free(m), free(ct), free(tag), free(out);
        }
    }
}

static void run_cbc(struct h_chip *h, json_t *root)
{
    size_t gi, ti;
    json_t *g, *t;
    json_array_foreach(json_object_get(root, "testGroups"), gi, g)
    {
        json_array_foreach(json_object_get(g, "tests"), ti, t)
        {
            size_t kl = 0, ivl = 0, ml = 0, cl = 0;
            uint8_t *k = h_unhex(sget(t, "key"), &kl), *iv = h_unhex(sget(t, "iv"), &ivl),
                    *m = h_unhex(sget(t, "msg"), &ml), *ct = h_unhex(sget(t, "ct"), &cl);
            uint8_t *out = malloc(ml + cl + 64);
            uint8_t ctx = 0;
            size_t ol = 0;
            if (!k || !iv || !m || !ct || !out) {
                note(t, FAIL, "bad vector hex");
                goto next;
            }
            kl_status ks = aes_key(h, k, kl, 0x02, 0x11);
            if (kl == 24) {
                refused(
                    t, ks,
                    "AES-192: the chip has AES-128 and AES-256 only (key object size 16 or 32)");
                goto next;
            }
            if (ks != KL_OK) {
                note(t, FAIL, "AES key refused");
                goto next;
            }
            if (is(t, "valid")) {
                kl_status s = cipher_init(h, 0x11, 1, 1, iv, ivl, 0, 0, NULL, 0, &ctx);
                if (s == KL_OK) s = cipher_updates(h, ctx, m, ml, out, &ol, 0);
                if (s == KL_OK) s = cipher_finish(h, ctx, NULL, 0, out, &ol);
                if (s != KL_OK || ol != cl || memcmp(out, ct, cl)) {
                    note(t, FAIL, "encryption refused or wrong ciphertext");
                    goto next;
                }
            }
            ol = 0;
            kl_status s = cipher_init(h, 0x11, 2, 1, iv, ivl, 0, 0, NULL, 0, &ctx);
            if (s == KL_OK) {
                s = cipher_updates(h, ctx, ct, cl, out, &ol, 0);
                if (s == KL_OK)
                    s = cipher_finish(h, ctx, NULL, 0, out, &ol);
                else
                    cipher_finish(h, ctx, NULL, 0, out, &ol);
            }
            if (is(t, "valid"))
                note(t, s == KL_OK && ol == ml && memcmp(out, m, ml) == 0 ? PASS : FAIL,
                     "decryption refused or wrong plaintext");
            else /* bad padding: refused; what came out before the last block is not the answer */
                note(t, s != KL_OK ? PASS : FAIL, "bad padding accepted");
        next:
            h_delete(h, KEY_ID);
            free(k), free(iv), free(m), free(ct), free(out);
        }
    }
}

/* ---- MACs ---- */

static kl_status mac_run(struct h_chip *h, uint8_t alg, const uint8_t *m, size_t ml,
                         const uint8_t *tag, size_t tl)
{
    uint8_t r[1 + 2000];
    kl_put16(r, KEY_ID);
    r[2] = alg;
    kl_status st = h_exec(h, H_MAC_INIT, r, 3);
    if (st != KL_OK) return st;
    uint8_t ctx = h->resp[0];
    size_t off = 0;
    while (off < ml) {
        size_t k = ml - off < 61 ? ml - off : 61;
        r[0] = ctx;
        memcpy(r + 1, m + off, k);
        st = h_exec(h, H_MAC_UPDATE, r, 1 + k);
        if (st != KL_OK) return st;
        off += k;
    }
    r[0] = ctx;
    if (tl) memcpy(r + 1, tag, tl);
    return h_exec(h, H_MAC_FINISH, r, 1 + tl);
}

static void run_mac(struct h_chip *h, json_t *root, uint8_t alg)
{
    size_t gi, ti;
    json_t *g, *t;
    json_array_foreach(json_object_get(root, "testGroups"), gi, g)
    {
        size_t tagl = (size_t)json_integer_value(json_object_get(g, "tagSize")) / 8;
        json_array_foreach(json_object_get(g, "tests"), ti, t)
        {
            size_t kl = 0, ml = 0, tl = 0;
            uint8_t *k = h_unhex(sget(t, "key"), &kl), *m = h_unhex(sget(t, "msg"), &ml),
                    *tag = h_unhex(sget(t, "tag"), &tl);
            if (!k || !m || !tag || tl > tagl) {
                note(t, FAIL, "bad vector hex");
                goto next;
            }
            kl_status ks = alg == 0x15 ? h_create_key(h, KEY_ID, 1, kl, 1, 0x01, alg)
                                       : h_create_key(h, KEY_ID, 1, kl, 3, 0x01, alg);
            if (ks == KL_OK) ks = h_import(h, KEY_ID, k, kl);
            if (alg == 0x15 && kl == 24) {
                refused(
                    t, ks,
                    "AES-192: the chip has AES-128 and AES-256 only (key object size 16 or 32)");
                goto next;
            }
            if (alg == 0x20 && kl > 64) {
                refused(t, ks, "HMAC key over 64 bytes: HMAC key objects hold 16..64 bytes");
                goto next;
            }
            if (ks != KL_OK) {
                note(t, is(t, "invalid") ? PASS : FAIL, "MAC key refused");
                goto next;
            }
            /* the tag the chip computes, and the chip's own check of the given tag */
            kl_status s1 = mac_run(h, alg, m, ml, NULL, 0);
            int same = s1 == KL_OK && h->rlen >= tl && memcmp(h->resp, tag, tl) == 0;
            kl_status s2 = mac_run(h, alg, m, ml, tag, tl);
            if (is(t, "valid"))
                note(t, same && s2 == KL_OK ? PASS : FAIL, "valid tag not reproduced/accepted");
            else
                note(t, s1 == KL_OK && !same && s2 == KL_E_BAD_TAG ? PASS : FAIL,
                     "invalid tag accepted");
        next:
            h_delete(h, KEY_ID);
            free(k), free(m), free(tag);
        }
    }
}

int main(void)
{
    const char *shared = getenv("KL_SHARED_DIR");
    if (!shared) {
        fprintf(stderr, "KL_SHARED_DIR is not set\n");
        return 2;
    }
    struct file {
        const char *name;
        int kind;
    } files[] = {
        {"ecdsa_secp256r1_sha256_test.json", 0},
        {"ecdsa_secp256r1_sha256_p1363_test.json", 1},
        {"ecdh_secp256r1_test.json", 2},
        {"ecdh_secp256r1_ecpoint_test.json", 3},
        {"aes_gcm_test.json", 4},
        {"aes_ccm_test.json", 5},
        {"aes_cbc_pkcs5_test.json", 6},
        {"aes_cmac_test.json", 7},
        {"hmac_sha256_test.json", 8},
    };
    struct h_chip h;
    if (!h_open(&h)) return 2;
    int bad = 0;
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        char path[1024];
        snprintf(path, sizeof(path), "%s/vectors/wycheproof/%s", shared, files[i].name);
        json_error_t err;
        json_t *root = json_load_file(path, 0, &err);
        if (!root) {
            fprintf(stderr, "%s: %s\n", path, err.text);
            bad = 1;
            continue;
        }
        struct tally tl = {.file = files[i].name};
        cur = &tl;
        switch (files[i].kind) {
        case 0:
            run_ecdsa(&h, root, 1);
            break;
        case 1:
            run_ecdsa(&h, root, 0);
            break;
        case 2:
            run_ecdh(&h, root, 2);
            break;
        case 3:
            run_ecdh(&h, root, 1);
            break;
        case 4:
            run_aead(&h, root, 0x14);
            break;
        case 5:
            run_aead(&h, root, 0x13);
            break;
        case 6:
            run_cbc(&h, root);
            break;
        case 7:
            run_mac(&h, root, 0x15);
            break;
        case 8:
            run_mac(&h, root, 0x20);
            break;
        }
        long long declared = json_integer_value(json_object_get(root, "numberOfTests"));
        printf("%-40s %4d vectors: %4d passed (%d acceptable, decided), %3d refused by design, "
               "%d failed\n",
               files[i].name, tl.total, tl.pass, tl.acceptable, tl.refused, tl.fail);
        for (int r = 0; r < MAX_REASONS && tl.reason[r]; r++)
            printf("    refused by design %4d: %s\n", tl.reason_n[r], tl.reason[r]);
        if (tl.fail || tl.total != declared) {
            if (tl.total != declared)
                fprintf(stderr, "%s: ran %d of %lld vectors\n", files[i].name, tl.total, declared);
            bad = 1;
        }
        json_decref(root);
    }
    h_close(&h);
    return bad;
}
