/*
 * The device library (host/se_*.c, host/channel.c) parsing what a hostile chip, or an
 * interposer on the bus, answers. The transport answers every request with the next
 * chunk of the input: kind u8 ‖ len u16 ‖ bytes; kind bit 0 builds a valid frame from
 * the bytes (status byte, then payload: the CRC and length are right, so the answer's
 * contents are what is tested), otherwise the bytes go back raw. Byte 0 of the input
 * picks where in the API list below to start. Every output buffer is exactly the size
 * the caller declares (ASan sees any overrun); the library must never report more
 * bytes than the buffer holds.
 */
#include <string.h>

#include "fuzz.h"
#include "keylink/channel.h"
#include "keylink/frame.h"
#include "keylink/se.h"
#include "keylink/se_tls.h"

static struct kl_se se;
static struct fz_in in;

static kl_status tr_open(struct kl_se *s, const char *arg)
{
    (void)s;
    (void)arg;
    return KL_OK;
}

static kl_status tr_xfer(struct kl_se *s, const uint8_t *tx, size_t tx_len, uint8_t *rx,
                         size_t rx_cap, size_t *rx_len)
{
    (void)s;
    (void)tx;
    (void)tx_len;
    if (!in.n) return KL_E_IO;
    uint8_t kind = fz_u8(&in);
    size_t want = fz_u16(&in), got;
    const uint8_t *p = fz_bytes(&in, want, &got);
    if (kind & 1) {
        if (!got || got - 1 > KL_FRAME_MAX_PAYLOAD) return KL_E_IO;
        size_t n = 0;
        if (kl_frame_encode(p[0], (kind >> 1) & 1, p + 1, got - 1, rx, rx_cap, &n) != KL_OK)
            return KL_E_IO;
        *rx_len = n;
        return KL_OK;
    }
    if (got > rx_cap) return KL_E_PROTOCOL;
    memcpy(rx, p, got);
    *rx_len = got;
    return KL_OK;
}

static void tr_close(struct kl_se *s)
{
    (void)s;
}

static const struct kl_transport_ops ops = {
    .version = KL_TRANSPORT_VERSION,
    .scheme = "fuzzresp",
    .open = tr_open,
    .transceive = tr_xfer,
    .close = tr_close,
};

static kl_status rng(void *ctx, uint8_t *o, size_t n)
{
    (void)ctx;
    for (size_t i = 0; i < n; i++)
        o[i] = (uint8_t)(0x42 + i);
    return KL_OK;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    return 0;
}

/* A buffer of exactly n bytes. */
static uint8_t *buf(size_t n)
{
    uint8_t *b = malloc(n ? n : 1);
    FZ_CHECK(b != NULL);
    return b;
}

#define OUT_OK(st, got, cap) FZ_CHECK((st) != KL_OK || (got) <= (cap))

static void step(int k)
{
    static const uint8_t data[64] = {1, 2, 3};
    size_t got = 0;
    kl_status st;
    switch (k) {
    case 0: {
        struct kl_se_status s;
        (void)kl_se_status(&se, &s);
        struct kl_se_config cfg;
        (void)kl_se_get_config(&se, &cfg);
        uint8_t ch[16];
        (void)kl_se_get_challenge(&se, ch);
        break;
    }
    case 1: {
        struct kl_se_object_info info;
        (void)kl_se_object_info(&se, 0x1004, &info);
        uint8_t *b = buf(100);
        st = kl_se_read_object(&se, 0x3000, b, 100, &got);
        OUT_OK(st, got, 100);
        st = kl_se_read_object_at(&se, 0x3000, 10, b, 50);
        free(b);
        break;
    }
    case 2: {
        struct kl_se_list_entry *e = malloc(5 * sizeof *e);
        FZ_CHECK(e != NULL);
        size_t count = 0;
        st = kl_se_list(&se, e, 5, &count);
        FZ_CHECK(st != KL_OK || count <= 5);
        st = kl_se_list_page(&se, 0x1000, e, 5, &count);
        FZ_CHECK(st != KL_OK || count <= 5);
        free(e);
        uint32_t v;
        (void)kl_se_counter_read(&se, 0x3001, &v);
        (void)kl_se_counter_update(&se, 0x3001, 1, &v);
        break;
    }
    case 3: {
        uint8_t pub[64], shared[32];
        (void)kl_se_get_public_key(&se, 0x1004, pub);
        (void)kl_se_generate_key(&se, 0x1004, pub);
        (void)kl_se_ecdh(&se, 0x1004, 0, data, 64, shared);
        uint8_t *sig = buf(72);
        st = kl_se_sign(&se, 0x1000, 1, 0, data, 32, sig, 72, &got);
        OUT_OK(st, got, 72);
        st = kl_se_sign(&se, 0x1000, 0, 1, data, 5, sig, 64, &got);
        OUT_OK(st, got, 64);
        free(sig);
        break;
    }
    case 4: {
        uint8_t ctx = 0, d[32];
        (void)kl_se_md_init(&se, &ctx);
        (void)kl_se_md_update(&se, ctx, data, 10);
        (void)kl_se_md_peek(&se, ctx, d);
        (void)kl_se_md_finish(&se, ctx, d);
        (void)kl_se_mac_init(&se, 0x2002, 0x20, &ctx);
        uint8_t *tag = buf(16);
        st = kl_se_mac_finish(&se, ctx, tag, 16, &got);
        OUT_OK(st, got, 16);
        free(tag);
        (void)kl_se_mac_finish_verify(&se, ctx, data, 16);
        break;
    }
    case 5: {
        struct kl_se_cipher_params p = {
            .key_id = 0x2000, .alg = 0x14, .dir = 2, .iv = data, .iv_len = 12, .tag_len = 16};
        uint8_t ctx = 0;
        (void)kl_se_cipher_init(&se, &p, &ctx);
        uint8_t *o = buf(3000);
        st = kl_se_cipher_update(&se, ctx, data, 64, o, 3000, &got);
        OUT_OK(st, got, 3000);
        st = kl_se_cipher_finish(&se, ctx, data, 16, o, 3000, &got);
        OUT_OK(st, got, 3000);
        st = kl_se_cipher_finish(&se, ctx, NULL, 0, o, 40, &got);
        OUT_OK(st, got, 40);
        free(o);
        uint8_t *r = buf(2500);
        (void)kl_se_random(&se, r, 2500);
        free(r);
        break;
    }
    case 6: {
        uint8_t cr[32], pub[64], pt[65], vd[12], ms[48];
        (void)kl_se_tls_start(&se, 0x1003, 0x1004, 2000000000u, cr);
        (void)kl_se_tls_verify_peer(&se, pub);
        (void)kl_se_tls_client_kx(&se, pt);
        uint8_t *sig = buf(72);
        st = kl_se_tls_cert_verify(&se, sig, 72, &got);
        OUT_OK(st, got, 72);
        free(sig);
        (void)kl_se_tls_finished_client(&se, vd);
        (void)kl_se_tls_export_master(&se, ms);
        break;
    }
    case 7: {
        static uint8_t rec[5000];
        uint8_t *o = buf(40);
        st = kl_se_tls_protect(&se, 23, data, 10, o, 40, &got);
        OUT_OK(st, got, 40);
        st = kl_se_tls_unprotect(&se, 23, rec, 40, o, 16, &got);
        OUT_OK(st, got, 16);
        free(o);
        uint8_t *big = buf(4000);
        st = kl_se_tls_unprotect_large(&se, 23, rec, sizeof rec, big, 4000, &got);
        OUT_OK(st, got, 4000);
        free(big);
        break;
    }
    default: {
        uint8_t id[64];
        st = kl_se_get_identity(&se, id);
        if (st == KL_OK) {
            st = kl_se_channel_open(&se, id, rng, NULL);
            /* a forged answer to a protected command must not pass as the chip's */
            uint8_t *b = buf(100);
            st = kl_se_read_object(&se, 0x3000, b, 100, &got);
            OUT_OK(st, got, 100);
            free(b);
            (void)kl_se_ping(&se, data, 20);
            kl_se_channel_close(&se);
        }
        break;
    }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t size)
{
    in = (struct fz_in){d, size};
    uint8_t start = fz_u8(&in);
    FZ_CHECK(kl_se_open_transport(&se, &ops, "") == KL_OK);
    for (int k = 0; k < 9 && in.n; k++)
        step((start + k) % 9);
    kl_se_channel_close(&se);
    kl_se_close(&se);
    return 0;
}
