/*
 * The secure channel end to end through the device API (include/keylink/channel.h):
 * host/channel.c against se/channel.c, over mem: (model in-process) and unix: (a real
 * keylink-se daemon), both wrapped by a "tap" transport that can alter, truncate or replay
 * frames in either direction. Covers: pinning (right, wrong, malformed key), commands of
 * every group inside the channel, each attack closing both sides, the "require host role"
 * configuration, close, and the pin file helpers (checked against OpenSSL's PEM reader).
 */
#include "kl_test_se.h"

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "keylink/channel.h"
#include "keylink/se.h"
#include "transport_mem.h"

/* ---- the tap transport: "tap:mem:DIR" or "tap:unix:PATH" ---- */

enum tamper {
    T_NONE,
    T_TX_HDR,    /* header byte 0 of the request */
    T_TX_CT,     /* first ciphertext byte (the inner command) */
    T_TX_TAG,    /* last tag byte */
    T_TX_TRUNC,  /* one byte cut off the payload, header and CRC made consistent */
    T_TX_REPLAY, /* the previous request instead of this one */
    T_TX_NOENC,  /* ENC flag cleared */
    T_RX_CT,     /* a byte of the protected answer */
    T_RX_REPLAY, /* the previous answer instead of this one */
    T_RX_CLEAR,  /* the answer replaced by a forged clear KL_OK */
    T_DROP,      /* the link fails: nothing sent, KL_E_IO */
};
static enum tamper tamper;
static const struct kl_transport_ops *inner;
static uint8_t last_tx[KL_FRAME_MAX], last_rx[KL_FRAME_MAX];
static size_t last_tx_len, last_rx_len;

/* Re-encodes frame f (bytes changed) with payload length n and a fresh CRC. */
static size_t recrc(uint8_t *f, size_t n)
{
    uint8_t tmp[KL_FRAME_MAX_PAYLOAD];
    size_t out = 0;
    memcpy(tmp, f + 4, n);
    if (kl_frame_encode(f[0], f[1], tmp, n, f, KL_FRAME_MAX, &out) != KL_OK) abort();
    return out;
}

static kl_status tap_open(struct kl_se *se, const char *arg)
{
    if (!strncmp(arg, "mem:", 4)) {
        inner = &kl_transport_mem;
        return inner->open(se, arg + 4);
    }
    if (!strncmp(arg, "unix:", 5)) {
        inner = &kl_transport_unix;
        return inner->open(se, arg + 5);
    }
    return KL_E_ARG;
}

static kl_status tap_transceive(struct kl_se *se, const uint8_t *tx, size_t tx_len, uint8_t *rx,
                                size_t rx_cap, size_t *rx_len)
{
    uint8_t t[KL_FRAME_MAX];
    size_t n = tx_len;
    memcpy(t, tx, tx_len);
    enum tamper m = tamper;
    tamper = T_NONE; /* one shot */
    switch (m) {
    case T_TX_HDR:
        t[0] ^= 0x01;
        n = recrc(t, n - 6);
        break;
    case T_TX_CT:
        t[4] ^= 0x01;
        n = recrc(t, n - 6);
        break;
    case T_TX_TAG:
        t[n - 3] ^= 0x80;
        n = recrc(t, n - 6);
        break;
    case T_TX_TRUNC:
        n = recrc(t, n - 7);
        break;
    case T_TX_REPLAY:
        memcpy(t, last_tx, last_tx_len);
        n = last_tx_len;
        break;
    case T_TX_NOENC:
        t[1] = 0;
        n = recrc(t, n - 6);
        break;
    default:
        break;
    }
    if (m == T_DROP) return KL_E_IO;
    memcpy(last_tx, tx, tx_len);
    last_tx_len = tx_len;
    kl_status st = inner->transceive(se, t, n, rx, rx_cap, rx_len);
    if (st != KL_OK) return st;
    uint8_t keep[KL_FRAME_MAX];
    size_t keep_len = *rx_len;
    memcpy(keep, rx, keep_len);
    if (m == T_RX_CT) {
        rx[5] ^= 0x01;
        *rx_len = recrc(rx, *rx_len - 6);
    } else if (m == T_RX_REPLAY) {
        memcpy(rx, last_rx, last_rx_len);
        *rx_len = last_rx_len;
    } else if (m == T_RX_CLEAR) {
        CHECK(kl_frame_encode(KL_OK, 0, NULL, 0, rx, rx_cap, rx_len) == KL_OK);
    }
    memcpy(last_rx, keep, keep_len);
    last_rx_len = keep_len;
    return KL_OK;
}

static void tap_close(struct kl_se *se)
{
    inner->close(se);
}

static const struct kl_transport_ops tap = {
    .version = KL_TRANSPORT_VERSION,
    .scheme = "tap",
    .open = tap_open,
    .transceive = tap_transceive,
    .close = tap_close,
};

/* ---- commands of every group, inside the channel ---- */

static void every_group(struct kl_se *se)
{
    struct kl_se_status s;
    struct kl_se_config cfg;
    uint8_t buf[3000], pub[64], sig[80], d[32], shared[32], ch[16];
    size_t n = 0;
    /* management */
    static uint8_t big[KL_SE_CHANNEL_MAX_INNER + 1];
    memset(big, 0xA7, sizeof big);
    OK(kl_se_ping(se, big, KL_SE_CHANNEL_MAX_INNER));
    CHECK_ST(kl_se_ping(se, big, sizeof big), KL_E_BAD_LENGTH); /* too long for the channel */
    CHECK(kl_se_channel_is_open(se));                           /* ...and nothing was sent */
    OK(kl_se_status(se, &s));
    CHECK(s.session & 2);
    OK(kl_se_get_config(se, &cfg));
    OK(kl_se_set_config(se, &cfg));
    OK(kl_se_get_challenge(se, ch));
    OK(kl_se_admin_auth_reset(se));
    OK(kl_se_kick(se));
    /* objects */
    struct kl_se_object_attr a = kl_test_attr(0x3100, KL_SE_OBJ_DATA, 2500);
    OK(kl_se_create_object(se, &a));
    for (size_t i = 0; i < 2500; i++)
        buf[i] = (uint8_t)(i * 7);
    OK(kl_se_write_object(se, 0x3100, 0, buf, 2500)); /* two chunks */
    memset(buf, 0, sizeof buf);
    OK(kl_se_read_object(se, 0x3100, buf, sizeof buf, &n));
    CHECK(n == 2500 && buf[2499] == (uint8_t)(2499 * 7));
    struct kl_se_object_info info;
    OK(kl_se_object_info(se, 0x3100, &info));
    CHECK(info.used == 2500);
    struct kl_se_list_entry l[16];
    OK(kl_se_list(se, l, 16, &n));
    CHECK(n >= 1);
    struct kl_se_object_attr c = kl_test_attr(0x3101, KL_SE_OBJ_UP_COUNTER, 4);
    c.initial = 5;
    OK(kl_se_create_object(se, &c));
    uint32_t v = 0;
    OK(kl_se_counter_update(se, 0x3101, 3, &v));
    CHECK(v == 8);
    /* keys and ECDSA, ECDH */
    struct kl_se_object_attr k = kl_test_attr(0x3102, KL_SE_OBJ_KEY_PAIR, 96);
    k.key_type = KL_SE_KEY_ECC_P256;
    k.usage1 = KL_SE_USAGE_SIGN;
    k.alg1 = KL_SE_ALG_ECDSA_SHA256;
    k.usage2 = KL_SE_USAGE_KEY_EXCHANGE;
    k.alg2 = KL_SE_ALG_ECDH;
    OK(kl_se_create_object(se, &k));
    OK(kl_se_generate_key(se, 0x3102, pub));
    const uint8_t msg[] = "inside the channel";
    OK(kl_se_sign(se, 0x3102, KL_SE_SIG_RAW, KL_SE_INPUT_MESSAGE, msg, sizeof msg, sig, sizeof sig,
                  &n));
    CHECK(n == 64);
    OK(kl_se_verify_with_key(se, pub, KL_SE_SIG_RAW, KL_SE_INPUT_MESSAGE, sig, 64, msg,
                             sizeof msg));
    sig[3] ^= 1;
    CHECK_ST(kl_se_verify(se, 0x3102, KL_SE_SIG_RAW, KL_SE_INPUT_MESSAGE, sig, 64, msg, sizeof msg),
             KL_E_VERIFY_FAILED);
    OK(kl_se_ecdh(se, 0x3102, KL_SE_POINT_XY, pub, 64, shared));
    /* hash, MAC, cipher, random */
    OK(kl_se_sha256(se, (const uint8_t *)"abc", 3, d));
    CHECK(d[0] == 0xba && d[31] == 0xad);
    struct kl_se_object_attr h = kl_test_attr(0x3103, KL_SE_OBJ_SECRET_KEY, 32);
    h.key_type = KL_SE_KEY_AES;
    h.usage1 = KL_SE_USAGE_ENCRYPT;
    h.alg1 = KL_SE_ALG_AES_GCM;
    OK(kl_se_create_object(se, &h));
    OK(kl_se_generate_key(se, 0x3103, NULL));
    uint8_t iv[12] = {1}, ct[64], tag[16], ctx = 0;
    struct kl_se_cipher_params p = {.key_id = 0x3103,
                                    .alg = KL_SE_ALG_AES_GCM,
                                    .dir = KL_SE_CIPHER_ENCRYPT,
                                    .iv = iv,
                                    .iv_len = 12,
                                    .tag_len = 16};
    OK(kl_se_cipher_init(se, &p, &ctx));
    OK(kl_se_cipher_update(se, ctx, msg, sizeof msg, ct, sizeof ct, &n));
    size_t m = 0;
    OK(kl_se_cipher_finish(se, ctx, NULL, 0, ct + n, sizeof ct - n, &m));
    CHECK(n + m == sizeof msg + 16);
    memcpy(tag, ct + sizeof msg, 16);
    p.dir = KL_SE_CIPHER_DECRYPT;
    OK(kl_se_cipher_init(se, &p, &ctx));
    OK(kl_se_cipher_update(se, ctx, ct, sizeof msg, buf, sizeof buf, &n));
    OK(kl_se_cipher_finish(se, ctx, tag, 16, buf + n, sizeof buf - n, &m));
    CHECK(n + m == sizeof msg && !memcmp(buf, msg, sizeof msg));
    OK(kl_se_random(se, buf, 2500));
    for (uint16_t id = 0x3100; id <= 0x3103; id++)
        OK(kl_se_delete_object(se, id));
}

/* After an attack: the call failed, both sides are closed, plain commands work, and a
 * new channel opens. */
static void attack(struct kl_se *se, const uint8_t id[64], enum tamper t, kl_status want,
                   const char *name)
{
    kl_where = name;
    OK(kl_se_channel_open(se, id, kl_random_os, NULL));
    OK(kl_se_ping(se, (const uint8_t *)"warm", 4));
    tamper = t;
    CHECK_ST(kl_se_ping(se, (const uint8_t *)"ping", 4), want);
    CHECK(!kl_se_channel_is_open(se));
    struct kl_se_status s;
    OK(kl_se_status(se, &s));                                        /* in the clear now */
    if (t != T_TX_NOENC && t < T_RX_CT) CHECK((s.session & 2) == 0); /* chip closed too */
    OK(kl_se_channel_open(se, id, kl_random_os, NULL));
    OK(kl_se_ping(se, (const uint8_t *)"again", 5));
    OK(kl_se_channel_close(se));
}

static void run(const char *uri)
{
    struct kl_se se;
    uint8_t id[64], other[64], bad[64];
    char tag[64];
    kl_where = uri;
    OK(kl_se_open(&se, uri));
    OK(kl_se_get_identity(&se, id));
    CHECK(!kl_se_channel_is_open(&se));

    /* pins: a valid key of another chip, a point off the curve */
    memcpy(bad, id, 64);
    bad[10] ^= 1;
    CHECK_ST(kl_se_channel_open(&se, bad, kl_random_os, NULL), KL_E_BAD_KEY);
    CHECK(kl_channel_pub_parse("6b17d1f2e12c4247f8bce6e563a440f277037d812deb33a0f4a13945d898c296"
                               "4fe342e2fe1a7f9b8ee7eb4a7c0f9e162bce33576b315ececbb6406837bf51f5",
                               128, other) == KL_OK);
    CHECK_ST(kl_se_channel_open(&se, other, kl_random_os, NULL), KL_E_VERIFY_FAILED);
    CHECK(!kl_se_channel_is_open(&se));
    CHECK_ST(kl_se_channel_open(&se, id, NULL, NULL), KL_E_ARG);

    /* every group of commands through the channel */
    OK(kl_se_channel_open(&se, id, kl_random_os, NULL));
    CHECK(kl_se_channel_is_open(&se));
    snprintf(tag, sizeof tag, "%s channel", uri);
    kl_where = tag;
    every_group(&se);
    CHECK(kl_se_channel_is_open(&se));
    /* a caller buffer too small: KL_E_BUFFER, and the channel goes on in step */
    uint8_t small[10];
    size_t sn = 0;
    CHECK_ST(kl_se_command(&se, KL_CMD_PING, (const uint8_t *)"0123456789abcdef", 16, small,
                           sizeof small, &sn),
             KL_E_BUFFER);
    CHECK(kl_se_channel_is_open(&se));
    OK(kl_se_ping(&se, (const uint8_t *)"in step", 7));
    /* a link failure closes the host side; the next open replaces the chip's channel */
    tamper = T_DROP;
    CHECK_ST(kl_se_ping(&se, (const uint8_t *)"x", 1), KL_E_IO);
    CHECK(!kl_se_channel_is_open(&se));
    OK(kl_se_ping(&se, (const uint8_t *)"plain", 5));
    OK(kl_se_channel_open(&se, id, kl_random_os, NULL));
    /* a forged clear KL_OK answer is not accepted */
    tamper = T_RX_CLEAR;
    CHECK_ST(kl_se_ping(&se, (const uint8_t *)"x", 1), KL_E_PROTOCOL);
    CHECK(!kl_se_channel_is_open(&se));

    /* each attack closes the channel on both sides */
    attack(&se, id, T_TX_HDR, KL_E_CHANNEL, "altered header byte");
    attack(&se, id, T_TX_CT, KL_E_CHANNEL, "altered ciphertext byte");
    attack(&se, id, T_TX_TAG, KL_E_CHANNEL, "altered tag byte");
    attack(&se, id, T_TX_TRUNC, KL_E_CHANNEL, "truncated request");
    attack(&se, id, T_TX_REPLAY, KL_E_CHANNEL, "replayed request");
    attack(&se, id, T_TX_NOENC, KL_E_UNKNOWN_COMMAND, "ENC flag stripped");
    attack(&se, id, T_RX_CT, KL_E_CHANNEL, "altered answer");
    attack(&se, id, T_RX_REPLAY, KL_E_CHANNEL, "replayed answer");

    /* "require host role": plain commands refused, the four exceptions work */
    kl_where = uri;
    struct kl_se_config cfg, back;
    OK(kl_se_get_config(&se, &cfg));
    cfg.flags |= 1;
    OK(kl_se_set_config(&se, &cfg));
    CHECK_ST(kl_se_get_config(&se, &back), KL_E_CHANNEL_REQUIRED);
    uint8_t r[32];
    CHECK_ST(kl_se_random(&se, r, sizeof r), KL_E_CHANNEL_REQUIRED);
    CHECK_ST(kl_se_sha256(&se, r, 1, r), KL_E_CHANNEL_REQUIRED);
    OK(kl_se_ping(&se, r, 3));
    struct kl_se_status s;
    OK(kl_se_status(&se, &s));
    OK(kl_se_get_identity(&se, other));
    CHECK(!memcmp(other, id, 64));
    OK(kl_se_channel_open(&se, id, kl_random_os, NULL));
    OK(kl_se_get_config(&se, &back));
    CHECK(back.flags & 1);
    OK(kl_se_random(&se, r, sizeof r));
    cfg.flags &= (uint8_t)~1u;
    OK(kl_se_set_config(&se, &cfg)); /* switched off from inside the channel */
    OK(kl_se_channel_close(&se));
    CHECK(!kl_se_channel_is_open(&se));
    OK(kl_se_channel_close(&se)); /* nothing open: nothing sent */
    OK(kl_se_get_config(&se, &back));
    CHECK((back.flags & 1) == 0);
    /* MAC, digest so far, identity, admin session and life cycle, all inside */
    OK(kl_se_channel_open(&se, id, kl_random_os, NULL));
    OK(kl_se_get_identity(&se, other));
    CHECK(!memcmp(other, id, 64));
    struct kl_se_object_attr hk = kl_test_attr(0x3104, KL_SE_OBJ_SECRET_KEY, 32);
    hk.key_type = KL_SE_KEY_HMAC;
    hk.usage1 = KL_SE_USAGE_SIGN;
    hk.alg1 = KL_SE_ALG_HMAC_SHA256;
    OK(kl_se_create_object(&se, &hk));
    OK(kl_se_generate_key(&se, 0x3104, NULL));
    uint8_t mctx = 0, mac1[32], mac2[32], dg[32], sig[64];
    size_t ml = 0;
    OK(kl_se_mac_init(&se, 0x3104, KL_SE_ALG_HMAC_SHA256, &mctx));
    OK(kl_se_mac_update(&se, mctx, (const uint8_t *)"mac me", 6));
    OK(kl_se_mac_finish(&se, mctx, mac1, sizeof mac1, &ml));
    CHECK(ml == 32);
    OK(kl_se_mac_init(&se, 0x3104, KL_SE_ALG_HMAC_SHA256, &mctx));
    OK(kl_se_mac_update(&se, mctx, (const uint8_t *)"mac me", 6));
    OK(kl_se_mac_finish_verify(&se, mctx, mac1, 32));
    OK(kl_se_mac_init(&se, 0x3104, KL_SE_ALG_HMAC_SHA256, &mctx));
    OK(kl_se_mac_update(&se, mctx, (const uint8_t *)"mac me!", 7));
    OK(kl_se_mac_finish(&se, mctx, mac2, sizeof mac2, &ml));
    CHECK(memcmp(mac1, mac2, 32) != 0);
    uint8_t md = 0;
    OK(kl_se_md_init(&se, &md));
    OK(kl_se_md_update(&se, md, (const uint8_t *)"ab", 2));
    OK(kl_se_md_peek(&se, md, dg));
    OK(kl_se_md_finish(&se, md, dg));
    struct kl_se_object_attr ak = kl_test_attr(0x1001, KL_SE_OBJ_KEY_PAIR, 96);
    ak.key_type = KL_SE_KEY_ECC_P256;
    ak.usage1 = KL_SE_USAGE_ADMIN_AUTH;
    ak.alg1 = KL_SE_ALG_ECDSA_SHA256;
    ak.usage2 = KL_SE_USAGE_SIGN; /* so the chip itself can answer its challenge */
    ak.alg2 = KL_SE_ALG_ECDSA_SHA256;
    OK(kl_se_create_object(&se, &ak));
    OK(kl_se_generate_key(&se, 0x1001, NULL));
    uint8_t chal[16];
    size_t sl = 0;
    OK(kl_se_get_challenge(&se, chal));
    OK(kl_se_sha256(&se, chal, sizeof chal, dg));
    OK(kl_se_sign(&se, 0x1001, KL_SE_SIG_RAW, KL_SE_INPUT_DIGEST, dg, 32, sig, sizeof sig, &sl));
    OK(kl_se_admin_auth(&se, 0x1001, sig));
    OK(kl_se_set_lifecycle(&se, KL_SE_LC_INITIALIZED));
    OK(kl_se_status(&se, &s));
    CHECK(s.lifecycle == KL_SE_LC_INITIALIZED && (s.session & 3) == 3);
    OK(kl_se_admin_auth_reset(&se));
    /* TAMPER inside: answered, and the tamper reset (default config) drops the chip's
     * channel, which the host learns at its next command */
    OK(kl_se_tamper(&se));
    CHECK_ST(kl_se_ping(&se, (const uint8_t *)"x", 1), KL_E_CHANNEL);
    CHECK(!kl_se_channel_is_open(&se));
    /* RESET through the channel is answered, then both sides have no channel */
    OK(kl_se_channel_open(&se, id, kl_random_os, NULL));
    OK(kl_se_reset(&se));
    CHECK(!kl_se_channel_is_open(&se));
    OK(kl_se_status(&se, &s));
    CHECK((s.session & 2) == 0);
    kl_se_close(&se);
}

static void pins(const char *dir)
{
    uint8_t pub[64], back[64];
    char pem[200], path[600];
    size_t n = 0;
    kl_where = "pin files";
    CHECK(kl_channel_pub_parse("6b17d1f2e12c4247f8bce6e563a440f277037d812deb33a0f4a13945d898c296"
                               "4fe342e2fe1a7f9b8ee7eb4a7c0f9e162bce33576b315ececbb6406837bf51f5",
                               128, pub) == KL_OK);
    CHECK_ST(kl_channel_pub_to_pem(pub, pem, 178, &n), KL_E_BUFFER);
    OK(kl_channel_pub_to_pem(pub, pem, sizeof pem, &n));
    CHECK(n == 178 && strlen(pem) == 178);
    OK(kl_channel_pub_parse(pem, n, back));
    CHECK(!memcmp(pub, back, 64));
    /* OpenSSL reads the same key from our PEM */
    BIO *b = BIO_new_mem_buf(pem, (int)n);
    EVP_PKEY *k = PEM_read_bio_PUBKEY(b, NULL, NULL, NULL);
    CHECK(k != NULL);
    if (k) {
        uint8_t enc[65];
        size_t el = 0;
        CHECK(EVP_PKEY_get_octet_string_param(k, "pub", enc, sizeof enc, &el) == 1 && el == 65 &&
              !memcmp(enc + 1, pub, 64));
        EVP_PKEY_free(k);
    }
    BIO_free(b);
    /* files: PEM, hex with 04 and newline */
    snprintf(path, sizeof path, "%s/pin.pem", dir);
    FILE *f = fopen(path, "w");
    CHECK(f && fputs(pem, f) >= 0);
    if (f) fclose(f);
    memset(back, 0, 64);
    OK(kl_channel_pub_read_file(path, back));
    CHECK(!memcmp(pub, back, 64));
    snprintf(path, sizeof path, "%s/pin.hex", dir);
    f = fopen(path, "w");
    if (f) {
        fputs("  04", f);
        for (int i = 0; i < 64; i++)
            fprintf(f, "%02X", pub[i]);
        fputs("\n", f);
        fclose(f);
    }
    memset(back, 0, 64);
    OK(kl_channel_pub_read_file(path, back));
    CHECK(!memcmp(pub, back, 64));
    /* refusals */
    snprintf(path, sizeof path, "%s/missing", dir);
    CHECK_ST(kl_channel_pub_read_file(path, back), KL_E_IO);
    CHECK_ST(kl_channel_pub_parse("04abcd", 6, back), KL_E_BAD_KEY);
    char hex[131];
    for (int i = 0; i < 64; i++)
        sprintf(hex + 2 * i, "%02x", pub[i]);
    hex[127] ^= 1; /* another y: off the curve */
    CHECK_ST(kl_channel_pub_parse(hex, 128, back), KL_E_BAD_KEY);
    hex[127] ^= 1;
    hex[5] = 'g';
    CHECK_ST(kl_channel_pub_parse(hex, 128, back), KL_E_BAD_KEY);
    char mod[200];
    memcpy(mod, pem, n + 1);
    mod[40] = mod[40] == 'A' ? 'B' : 'A'; /* the algorithm identifier changes */
    CHECK_ST(kl_channel_pub_parse(mod, n, back), KL_E_BAD_KEY);
    CHECK_ST(kl_channel_pub_parse(pem, 60, back), KL_E_BAD_KEY); /* no END line */
    CHECK_ST(kl_channel_pub_parse(NULL, 0, back), KL_E_ARG);
}

int main(void)
{
    char dir[] = "/tmp/kl-chan-XXXXXX", uri[700], sock[600];
    if (!mkdtemp(dir)) return 2;
    CHECK(kl_se_mem_register() == KL_OK);
    CHECK(kl_transport_register(&tap) == KL_OK);
    snprintf(uri, sizeof uri, "tap:mem:%s/mem", dir);
    run(uri);
    snprintf(sock, sizeof sock, "%s/se.sock", dir);
    pid_t pid = kl_test_start_se(dir, sock, 10000);
    if (!pid) {
        fprintf(stderr, "could not start keylink-se\n");
        kl_fails++;
    } else {
        snprintf(uri, sizeof uri, "tap:unix:%s", sock);
        run(uri);
        kill(pid, SIGTERM);
        waitpid(pid, NULL, 0);
    }
    pins(dir);
    if (kl_test_rm_tree(dir) != 0) fprintf(stderr, "warning: could not remove %s\n", dir);
    if (kl_fails) {
        fprintf(stderr, "%d failure(s)\n", kl_fails);
        return 1;
    }
    printf("secure channel end to end ok (mem: and unix:)\n");
    return 0;
}
