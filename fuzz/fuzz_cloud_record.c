/*
 * cloud/tls_record.c: keylinkd's TLS 1.2 AES-GCM record layer on what a hostile client
 * sends after the handshake. A fixed connection (fixed keys, sequence numbers at 1 as after
 * the Finished messages; fuzz/make_record_seeds.py seals valid seeds under the same keys).
 * Byte 0: bit 0 AES-256 (else AES-128); bit 1 round-trip mode.
 *
 * Stream mode: the rest is the client's byte stream, cut into records by
 * kl_trec_record_len and opened by kl_trec_open until the first alert (the connection ends
 * there). Each record is opened in a buffer of exactly its size (ASan sees overreads), and
 * the verdict is compared with a one-shot EVP AES-GCM reference decryption: a record opens
 * exactly when the reference says the tag is right and it is not over 2^14 bytes, with the
 * same plaintext, inside the record; the sequence number moves by one per opened record
 * and not at all on an alert; our writing state is never touched.
 *
 * Round-trip mode: the rest is (type, 2-byte length, bytes) items sealed with
 * kl_trec_seal under a max_fragment_length picked by the input; what was sealed must open
 * with the peer's view of the keys to the same type and bytes, and a record one bit off
 * must not.
 *
 * Byte 0 bit 2: TLS 1.3 (RFC 8446) instead, with fixed traffic secrets (client 0x60..,
 * server 0x90..; keys and ivs by HKDF-Expand-Label, sequence numbers from 0). Stream mode:
 * every record's verdict (outer type, 2^14 + 256 bound, tag, inner plaintext size, padding,
 * content type) equals a reference's; a handshake record goes to kl_trec_key_update, which
 * must accept exactly one well-formed KeyUpdate (the reading side moves to the reference's
 * next secret; a requested one is answered under our current key, then
 * kl_trec_next_write_key) and leave t alone for anything else. Round-trip mode: items of
 * type alert/handshake/data, and 0xff: a KeyUpdate from us that the peer follows.
 */
#include <string.h>

#include <openssl/evp.h>
#include <openssl/kdf.h>

#include "fuzz.h"
#include "tls_record.h"

static struct kl_trec_ctx trx;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    FZ_CHECK(kl_trec_ctx_init(&trx) == 0);
    return 0;
}

/* the fixed connection; make_record_seeds.py has the same numbers */
static void fixed(struct kl_trec *t, int aes256)
{
    memset(t, 0, sizeof *t);
    for (int i = 0; i < 32; i++) {
        t->rd.key[i] = (uint8_t)(0x10 + i);
        t->wr.key[i] = (uint8_t)(0x40 + i);
    }
    for (int i = 0; i < 4; i++) {
        t->rd.salt[i] = (uint8_t)(0xa0 + i);
        t->wr.salt[i] = (uint8_t)(0xb0 + i);
    }
    t->rd.seq = t->wr.seq = 1;
    t->key_len = aes256 ? 32 : 16;
    t->max_frag = KL_TREC_MAX_PLAIN;
}

/* Reference: 1 when rec[0..len) is a correct record at seq under d, plaintext into out. */
static int ref_open(const struct kl_trec_dir *d, int key_len, uint64_t seq, const uint8_t *rec,
                    size_t len, uint8_t *out)
{
    if (len < KL_TREC_OVERHEAD) return 0;
    size_t n = len - KL_TREC_OVERHEAD;
    uint8_t nonce[12], aad[13], tag[16];
    memcpy(nonce, d->salt, 4);
    memcpy(nonce + 4, rec + KL_TREC_HDR, KL_TREC_EXPLICIT_IV);
    for (int i = 0; i < 8; i++)
        aad[i] = (uint8_t)(seq >> (56 - 8 * i));
    memcpy(aad + 8, rec, 3);
    aad[11] = (uint8_t)(n >> 8);
    aad[12] = (uint8_t)n;
    memcpy(tag, rec + len - KL_TREC_TAG, KL_TREC_TAG);
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    int l = 0;
    int ok = c &&
             EVP_DecryptInit_ex(c, key_len == 32 ? EVP_aes_256_gcm() : EVP_aes_128_gcm(), NULL,
                                d->key, nonce) == 1 &&
             EVP_DecryptUpdate(c, NULL, &l, aad, sizeof aad) == 1 &&
             (!n || EVP_DecryptUpdate(c, out, &l, rec + KL_TREC_HDR + KL_TREC_EXPLICIT_IV,
                                      (int)n) == 1) &&
             EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, KL_TREC_TAG, tag) == 1 &&
             EVP_DecryptFinal_ex(c, out + n, &l) == 1;
    EVP_CIPHER_CTX_free(c);
    return ok;
}

static int known_alert(int r)
{
    return r == -KL_TREC_AD_UNEXPECTED_MESSAGE || r == -KL_TREC_AD_BAD_RECORD_MAC ||
           r == -KL_TREC_AD_RECORD_OVERFLOW || r == -KL_TREC_AD_DECODE_ERROR ||
           r == -KL_TREC_AD_PROTOCOL_VERSION;
}

static uint8_t ref_pt[KL_TREC_MAX_RECORD];

static void stream(int aes256, const uint8_t *p, size_t n)
{
    struct kl_trec t, keep;
    fixed(&t, aes256);
    while (n) {
        long want = kl_trec_record_len(p, n);
        if (want == 0) {
            FZ_CHECK(n < KL_TREC_HDR);
            break;
        }
        if (want < 0) {
            FZ_CHECK(known_alert((int)want) && n >= KL_TREC_HDR);
            break;
        }
        FZ_CHECK(want >= KL_TREC_HDR && want <= KL_TREC_MAX_RECORD);
        if ((size_t)want > n) break; /* the rest has not arrived */
        size_t len = (size_t)want;
        uint8_t *rec = malloc(len);
        FZ_CHECK(rec != NULL);
        memcpy(rec, p, len);
        keep = t;
        int ref = ref_open(&t.rd, t.key_len, t.rd.seq, p, len, ref_pt);
        uint8_t *pt = NULL;
        size_t pl = 0;
        int r = kl_trec_open(&t, &trx, rec, len, &pt, &pl);
        if (getenv("KL_FUZZ_TRACE"))
            fprintf(stderr, "record type %u, %zu bytes: open %d (reference %d)\n", p[0], len, r,
                    ref);
        FZ_CHECK(!memcmp(&t.wr, &keep.wr, sizeof t.wr) && t.key_len == keep.key_len);
        FZ_CHECK(!memcmp(t.rd.key, keep.rd.key, sizeof t.rd.key));
        if (r >= 0) {
            FZ_CHECK(ref && len - KL_TREC_OVERHEAD <= KL_TREC_MAX_PLAIN);
            FZ_CHECK(r == p[0] && r >= KL_TREC_CCS && r <= 24);
            FZ_CHECK(pt == rec + KL_TREC_HDR + KL_TREC_EXPLICIT_IV);
            FZ_CHECK(pl == len - KL_TREC_OVERHEAD);
            FZ_CHECK(!memcmp(pt, ref_pt, pl));
            FZ_CHECK(t.rd.seq == keep.rd.seq + 1);
        } else {
            FZ_CHECK(known_alert(r));
            FZ_CHECK(t.rd.seq == keep.rd.seq);
            /* a record with the right tag is refused only for its size */
            if (ref) FZ_CHECK(r == -KL_TREC_AD_RECORD_OVERFLOW);
            if (!ref && len >= KL_TREC_OVERHEAD && len - KL_TREC_OVERHEAD <= KL_TREC_MAX_PLAIN)
                FZ_CHECK(r == -KL_TREC_AD_BAD_RECORD_MAC);
        }
        free(rec);
        if (r < 0) break; /* an alert ends the connection */
        p += len;
        n -= len;
    }
    kl_trec_wipe(&t);
}

/* The record out[0..w) with one bit off (the length bytes aside) is refused, and the peer
 * stays where it was. */
static void flipped_refused(const struct kl_trec *peer, const uint8_t *out, size_t w, unsigned flip)
{
    size_t pos = (size_t)flip * 131 % w;
    if (pos == 3 || pos == 4) return;
    uint8_t *bad = malloc(w);
    FZ_CHECK(bad != NULL);
    memcpy(bad, out, w);
    bad[pos] ^= (uint8_t)(1u << (flip & 7));
    struct kl_trec pc = *peer;
    uint8_t *q = NULL;
    size_t ql = 0;
    long bl = kl_trec_record_len(bad, w);
    int r = bl < 0 ? (int)bl : kl_trec_open(&pc, &trx, bad, w, &q, &ql);
    FZ_CHECK(r < 0 && pc.rd.seq == peer->rd.seq);
    free(bad);
}
static void roundtrip(int aes256, const uint8_t *data, size_t size)
{
    struct fz_in in = {data, size};
    struct kl_trec us, peer;
    fixed(&us, aes256);
    static const uint16_t frags[] = {512, 1024, 2048, 4096, KL_TREC_MAX_PLAIN};
    us.max_frag = frags[fz_u8(&in) % 5];
    /* the client's view: its reading keys are our writing keys */
    peer = us;
    peer.rd = us.wr;
    peer.wr = us.rd;
    static uint8_t out[KL_TREC_MAX_PLAIN + KL_TREC_OVERHEAD + 64];
    for (int items = 0; in.n && items < 64; items++) {
        uint8_t type = fz_u8(&in);
        size_t want = fz_u16(&in) % (KL_TREC_MAX_PLAIN + 2), got = 0;
        const uint8_t *pt = fz_bytes(&in, want, &got);
        uint8_t flip = fz_u8(&in);
        uint64_t seq = us.wr.seq;
        size_t w = kl_trec_seal(&us, &trx, type, pt, got, out);
        if (got > us.max_frag) {
            FZ_CHECK(w == 0 && us.wr.seq == seq);
            continue;
        }
        FZ_CHECK(w == got + KL_TREC_OVERHEAD && us.wr.seq == seq + 1);
        FZ_CHECK(out[0] == type && out[1] == 3 && out[2] == 3);
        if (type < KL_TREC_CCS || type > 24) {
            FZ_CHECK(kl_trec_record_len(out, w) == -KL_TREC_AD_UNEXPECTED_MESSAGE);
            peer.rd.seq++; /* the client would have taken it; keep the two in step */
            continue;
        }
        FZ_CHECK(kl_trec_record_len(out, w) == (long)w);
        /* one bit off (length bytes aside): refused, and the peer stays where it was */
        flipped_refused(&peer, out, w, flip);
        uint8_t *q = NULL;
        size_t ql = 0;
        int r = kl_trec_open(&peer, &trx, out, w, &q, &ql);
        FZ_CHECK(r == type && ql == got && (!got || !memcmp(q, pt, got)));
    }
    kl_trec_wipe(&us);
    kl_trec_wipe(&peer);
}

/* ---- TLS 1.3 (byte 0 bit 2): fixed traffic secrets, keys derived as RFC 8446 7.3 ---- */

/* HKDF-Expand-Label(secret, label, "", n) on plain HKDF-Expand: the reference */
static void ref_label(size_t slen, const uint8_t *secret, const char *label, uint8_t *out, size_t n)
{
    uint8_t info[2 + 1 + 6 + 16 + 1];
    size_t ll = strlen(label);
    info[0] = (uint8_t)(n >> 8);
    info[1] = (uint8_t)n;
    info[2] = (uint8_t)(6 + ll);
    memcpy(info + 3, "tls13 ", 6);
    memcpy(info + 9, label, ll);
    info[9 + ll] = 0;
    EVP_PKEY_CTX *k = EVP_PKEY_CTX_new_id(EVP_PKEY_HKDF, NULL);
    FZ_CHECK(k && EVP_PKEY_derive_init(k) == 1);
    FZ_CHECK(EVP_PKEY_CTX_set_hkdf_mode(k, EVP_PKEY_HKDEF_MODE_EXPAND_ONLY) == 1);
    FZ_CHECK(EVP_PKEY_CTX_set_hkdf_md(k, slen == 48 ? EVP_sha384() : EVP_sha256()) == 1);
    FZ_CHECK(EVP_PKEY_CTX_set1_hkdf_key(k, secret, (int)slen) == 1);
    FZ_CHECK(EVP_PKEY_CTX_add1_hkdf_info(k, info, (int)(10 + ll)) == 1);
    size_t got = n;
    FZ_CHECK(EVP_PKEY_derive(k, out, &got) == 1 && got == n);
    EVP_PKEY_CTX_free(k);
}

static void ref_keys(struct kl_trec_dir *d, size_t slen, size_t key_len)
{
    ref_label(slen, d->secret, "key", d->key, key_len);
    ref_label(slen, d->secret, "iv", d->iv, sizeof d->iv);
}

/* the next traffic secret and its keys, sequence number 0 (RFC 8446 7.2) */
static void ref_next(struct kl_trec_dir *d, size_t slen, size_t key_len)
{
    uint8_t s[48];
    ref_label(slen, d->secret, "traffic upd", s, slen);
    memcpy(d->secret, s, slen);
    ref_keys(d, slen, key_len);
    d->seq = 0;
}

static int same_dir(const struct kl_trec_dir *a, const struct kl_trec_dir *b, size_t slen,
                    size_t key_len)
{
    return !memcmp(a->secret, b->secret, slen) && !memcmp(a->key, b->key, key_len) &&
           !memcmp(a->iv, b->iv, sizeof a->iv) && a->seq == b->seq;
}

/* the fixed connection; make_record_seeds.py has the same numbers */
static void fixed13(struct kl_trec *t, int aes256)
{
    memset(t, 0, sizeof *t);
    t->secret_len = aes256 ? 48 : 32;
    t->key_len = aes256 ? 32 : 16;
    for (int i = 0; i < t->secret_len; i++) {
        t->rd.secret[i] = (uint8_t)(0x60 + i);
        t->wr.secret[i] = (uint8_t)(0x90 + i);
    }
    ref_keys(&t->rd, t->secret_len, t->key_len);
    ref_keys(&t->wr, t->secret_len, t->key_len);
    t->tls13 = 1;
    t->got_secrets = 3;
    t->max_frag = KL_TREC_MAX_PLAIN;
}

/* Reference open of a TLS 1.3 record under d: the verdict (content type or -alert), the
 * plaintext into out and its length */
static int ref_open13(const struct kl_trec_dir *d, int key_len, const uint8_t *rec, size_t len,
                      uint8_t *out, size_t *out_len)
{
    if (rec[0] != KL_TREC_APPDATA) return -KL_TREC_AD_UNEXPECTED_MESSAGE;
    if (len - KL_TREC_HDR > KL_TREC_MAX_PLAIN + 256) return -KL_TREC_AD_RECORD_OVERFLOW;
    if (len < KL_TREC_HDR + KL_TREC_TAG + 1) return -KL_TREC_AD_BAD_RECORD_MAC;
    size_t n = len - KL_TREC_HDR - KL_TREC_TAG;
    uint8_t nonce[12], tag[16];
    memcpy(nonce, d->iv, 12);
    for (int i = 0; i < 8; i++)
        nonce[11 - i] ^= (uint8_t)(d->seq >> (8 * i));
    memcpy(tag, rec + len - KL_TREC_TAG, KL_TREC_TAG);
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    int l = 0;
    int ok = c &&
             EVP_DecryptInit_ex(c, key_len == 32 ? EVP_aes_256_gcm() : EVP_aes_128_gcm(), NULL,
                                d->key, nonce) == 1 &&
             EVP_DecryptUpdate(c, NULL, &l, rec, KL_TREC_HDR) == 1 &&
             EVP_DecryptUpdate(c, out, &l, rec + KL_TREC_HDR, (int)n) == 1 &&
             EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, KL_TREC_TAG, tag) == 1 &&
             EVP_DecryptFinal_ex(c, out + n, &l) == 1;
    EVP_CIPHER_CTX_free(c);
    if (!ok) return -KL_TREC_AD_BAD_RECORD_MAC;
    if (n > KL_TREC_MAX_PLAIN + 1) return -KL_TREC_AD_RECORD_OVERFLOW; /* RFC 8446 5.4 */
    while (n && !out[n - 1])
        n--;
    if (!n) return -KL_TREC_AD_UNEXPECTED_MESSAGE; /* no content type */
    uint8_t type = out[--n];
    if (type != KL_TREC_APPDATA && type != KL_TREC_ALERT && type != KL_TREC_HANDSHAKE)
        return -KL_TREC_AD_UNEXPECTED_MESSAGE;
    *out_len = n;
    return type;
}

/* exactly one well-formed KeyUpdate: its request byte, else -1 */
static int ref_key_update(const uint8_t *m, size_t n)
{
    return n == 5 && m[0] == 24 && !m[1] && !m[2] && m[3] == 1 && m[4] <= 1 ? m[4] : -1;
}

static void stream13(int aes256, const uint8_t *p, size_t n)
{
    struct kl_trec t, keep;
    fixed13(&t, aes256);
    struct kl_trec_dir rr = t.rd, rw = t.wr; /* the reference's view of both directions */
    size_t sl = t.secret_len, kl = t.key_len;
    while (n) {
        long want = kl_trec_record_len(p, n);
        if (want == 0) {
            FZ_CHECK(n < KL_TREC_HDR);
            break;
        }
        if (want < 0) {
            FZ_CHECK(known_alert((int)want) && n >= KL_TREC_HDR);
            break;
        }
        if ((size_t)want > n) break;
        size_t len = (size_t)want, ref_len = 0;
        uint8_t *rec = malloc(len);
        FZ_CHECK(rec != NULL);
        memcpy(rec, p, len);
        keep = t;
        int ref = ref_open13(&rr, t.key_len, p, len, ref_pt, &ref_len);
        uint8_t *pt = NULL;
        size_t pl = 0;
        int r = kl_trec_open(&t, &trx, rec, len, &pt, &pl);
        if (getenv("KL_FUZZ_TRACE"))
            fprintf(stderr, "TLS 1.3 record type %u, %zu bytes: open %d (reference %d)\n", p[0],
                    len, r, ref);
        FZ_CHECK(r == ref);
        FZ_CHECK(!memcmp(&t.wr, &keep.wr, sizeof t.wr) && t.key_len == keep.key_len);
        if (r < 0) {
            /* the connection ends; the sequence number may have moved for a record whose tag
             * was right */
            FZ_CHECK(same_dir(&t.rd, &rr, sl, kl) || t.rd.seq == rr.seq + 1);
            free(rec);
            break;
        }
        rr.seq++;
        FZ_CHECK(same_dir(&t.rd, &rr, sl, kl));
        FZ_CHECK(pt == rec + KL_TREC_HDR && pl == ref_len && !memcmp(pt, ref_pt, pl));
        int stop = 0;
        if (r == KL_TREC_HANDSHAKE) {
            struct kl_trec before = t;
            int ku = kl_trec_key_update(&t, pt, pl), rk = ref_key_update(pt, pl);
            if (rk < 0) {
                FZ_CHECK(ku == -KL_TREC_AD_UNEXPECTED_MESSAGE || ku == -KL_TREC_AD_DECODE_ERROR ||
                         ku == -KL_TREC_AD_ILLEGAL_PARAMETER);
                FZ_CHECK(!memcmp(&t, &before, sizeof t)); /* nothing half-done */
                stop = 1;
            } else {
                FZ_CHECK(ku == rk);
                ref_next(&rr, sl, kl);
                FZ_CHECK(same_dir(&t.rd, &rr, sl, kl) && same_dir(&t.wr, &rw, sl, kl));
                if (ku == 1) { /* our answer under the current key, then the next key */
                    uint8_t out[64];
                    size_t w = kl_trec_seal(&t, &trx, KL_TREC_HANDSHAKE, KL_TREC_KEY_UPDATE_MSG,
                                            KL_TREC_KEY_UPDATE_LEN, out);
                    size_t ol = 0;
                    FZ_CHECK(w == KL_TREC_HDR + KL_TREC_KEY_UPDATE_LEN + 1 + KL_TREC_TAG);
                    FZ_CHECK(ref_open13(&rw, t.key_len, out, w, ref_pt, &ol) == KL_TREC_HANDSHAKE &&
                             ol == KL_TREC_KEY_UPDATE_LEN &&
                             !memcmp(ref_pt, KL_TREC_KEY_UPDATE_MSG, ol));
                    FZ_CHECK(kl_trec_next_write_key(&t) == 0);
                    ref_next(&rw, sl, kl);
                    FZ_CHECK(same_dir(&t.wr, &rw, sl, kl));
                }
            }
        }
        free(rec);
        if (stop) break;
        p += len;
        n -= len;
    }
    kl_trec_wipe(&t);
}

/* Items (type, 2-byte length, bytes, flip) sealed by us and opened by the peer; type 0xff
 * is a KeyUpdate from us (then our next key) that the peer follows. */
static void roundtrip13(int aes256, const uint8_t *data, size_t size)
{
    struct fz_in in = {data, size};
    struct kl_trec us, peer;
    fixed13(&us, aes256);
    static const uint16_t frags[] = {512, 1024, 2048, 4096, KL_TREC_MAX_PLAIN};
    us.max_frag = frags[fz_u8(&in) % 5];
    peer = us;
    peer.rd = us.wr;
    peer.wr = us.rd;
    size_t sl = us.secret_len, kl = us.key_len;
    static uint8_t out[KL_TREC_MAX_PLAIN + KL_TREC_OVERHEAD + 64];
    for (int items = 0; in.n && items < 64; items++) {
        uint8_t tb = fz_u8(&in);
        size_t want = fz_u16(&in) % (KL_TREC_MAX_PLAIN + 2), got = 0;
        const uint8_t *pt = fz_bytes(&in, want, &got);
        uint8_t flip = fz_u8(&in);
        int ku = tb == 0xff;
        uint8_t type = ku ? KL_TREC_HANDSHAKE : (uint8_t)(KL_TREC_ALERT + tb % 3);
        if (ku) {
            pt = KL_TREC_KEY_UPDATE_MSG;
            got = KL_TREC_KEY_UPDATE_LEN;
        }
        uint64_t seq = us.wr.seq;
        size_t w = kl_trec_seal(&us, &trx, type, pt, got, out);
        if (got > us.max_frag) {
            FZ_CHECK(w == 0 && us.wr.seq == seq);
            continue;
        }
        FZ_CHECK(w == got + KL_TREC_HDR + 1 + KL_TREC_TAG && us.wr.seq == seq + 1);
        FZ_CHECK(out[0] == KL_TREC_APPDATA && out[1] == 3 && out[2] == 3);
        FZ_CHECK(kl_trec_record_len(out, w) == (long)w);
        flipped_refused(&peer, out, w, flip);
        uint8_t *q = NULL;
        size_t ql = 0;
        int r = kl_trec_open(&peer, &trx, out, w, &q, &ql);
        /* the content type byte follows the content, so content ending in zeros survives */
        FZ_CHECK(r == type && ql == got && (!got || !memcmp(q, pt, got)));
        if (ku) {
            FZ_CHECK(kl_trec_next_write_key(&us) == 0 && us.wr.seq == 0);
            FZ_CHECK(kl_trec_key_update(&peer, q, ql) == 0);
            FZ_CHECK(same_dir(&peer.rd, &us.wr, sl, kl));
        }
    }
    kl_trec_wipe(&us);
    kl_trec_wipe(&peer);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    if (data[0] & 4) {
        if (data[0] & 2)
            roundtrip13(data[0] & 1, data + 1, size - 1);
        else
            stream13(data[0] & 1, data + 1, size - 1);
        return 0;
    }
    if (data[0] & 2)
        roundtrip(data[0] & 1, data + 1, size - 1);
    else
        stream(data[0] & 1, data + 1, size - 1);
    return 0;
}
