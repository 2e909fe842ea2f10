/*
 * cloud/tls_record.c against OpenSSL itself: a real TLS 1.2 handshake between an OpenSSL
 * client and an OpenSSL server (memory BIOs, P-256 certificates made here, client
 * certificate requested as keylinkd does), then the server is handed off with
 * kl_trec_from_ssl and freed. The OpenSSL client's records must open with kl_trec_open and
 * ours must be accepted by the client's SSL_read, for both AES-GCM suites, many records,
 * max_fragment_length, a resumed session; every corrupted, replayed, reordered, short or
 * oversized record is refused; other versions and suites stay with OpenSSL.
 * TLS 1.3 (both AES-GCM suites): the server context hooked as keylinkd's (key log lines to
 * kl_trec_keylog, record headers to kl_trec_msg), 0, 1 and 2 tickets and tickets over
 * several records under max_fragment_length (our first sequence number), keys
 * checked against the client's own key log and an independent HKDF-Expand-Label, the same
 * traffic both ways, padding, the RFC 8446 size limits, inner/outer content types,
 * KeyUpdate from the client (requested or not, many in a row, malformed bodies) and from us,
 * resumption with a ticket, CHACHA20 and incomplete key logs staying with OpenSSL.
 */
#include "kl_test.h"

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "tls_record.h"

#define GCM128 "ECDHE-ECDSA-AES128-GCM-SHA256"
#define GCM256 "ECDHE-ECDSA-AES256-GCM-SHA384"

static EVP_PKEY *srv_key, *cli_key;
static X509 *srv_cert, *cli_cert;
static struct kl_trec_ctx trx;
static SSL_CTX *srv_ctx;

static X509 *self_signed(EVP_PKEY *k, const char *cn)
{
    X509 *x = X509_new();
    if (!x) return NULL;
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_gmtime_adj(X509_getm_notBefore(x), -3600);
    X509_gmtime_adj(X509_getm_notAfter(x), 86400);
    X509_NAME *n = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
    X509_set_issuer_name(x, n);
    X509_set_pubkey(x, k);
    if (!X509_sign(x, k, EVP_sha256())) {
        X509_free(x);
        return NULL;
    }
    return x;
}

/* keylinkd asks for a client certificate and decides about it itself: accept all here */
static int accept_all(int ok, X509_STORE_CTX *xs)
{
    (void)ok;
    (void)xs;
    return 1;
}

/* One client/server pair over memory BIOs; we carry the bytes between them. */
struct pair {
    SSL_CTX *sctx, *cctx;
    SSL *s, *c;
    BIO *s_in, *s_out, *c_in, *c_out;
};

static void pair_free(struct pair *p)
{
    SSL_free(p->s);
    SSL_free(p->c);
    SSL_CTX_free(p->sctx);
    SSL_CTX_free(p->cctx);
    memset(p, 0, sizeof *p);
}

/* Moves what each side wrote to the other side; returns the bytes moved. */
static size_t carry(BIO *from, BIO *to)
{
    uint8_t b[4096];
    size_t moved = 0;
    int n;
    while ((n = BIO_read(from, b, sizeof b)) > 0) {
        BIO_write(to, b, n);
        moved += (size_t)n;
    }
    return moved;
}

/* keylinkd's server settings (tls_server.c); one context for all pairs, so a session
 * ticket of one connection resumes on the next */
static SSL_CTX *server_ctx(void)
{
    SSL_CTX *x = SSL_CTX_new(TLS_server_method());
    if (!x) return NULL;
    SSL_CTX_set_min_proto_version(x, TLS1_2_VERSION);
    SSL_CTX_use_certificate(x, srv_cert);
    SSL_CTX_use_PrivateKey(x, srv_key);
    /* keylinkd's TLS 1.2 list (tls_server.c) */
    SSL_CTX_set_cipher_list(x, GCM128 ":" GCM256 ":ECDHE-ECDSA-CHACHA20-POLY1305:"
                                      "ECDHE-ECDSA-AES128-CCM:ECDHE-ECDSA-AES256-CCM");
    SSL_CTX_set_options(x, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
    SSL_CTX_set_verify(x, SSL_VERIFY_PEER, accept_all);
    SSL_CTX_set_session_id_context(x, (const unsigned char *)"trec", 4);
    SSL_CTX_set_session_cache_mode(x, SSL_SESS_CACHE_OFF);
    return x;
}

/* For pair_new: the client writes "early" as soon as its side of the handshake is done
 * (an abbreviated handshake: before the server has read the client's Finished), and the
 * server reads ahead (takes everything the socket has). */
static int early_write, srv_read_ahead;

/* For pair_new with TLS 1.3: the server context (NULL: srv_ctx), the one suite the client
 * offers (NULL: OpenSSL's list), the client's record padding block (0: none), and the
 * kl_trec the server's hooks fill (SSL app data, as keylinkd's connection) */
static SSL_CTX *use_sctx;
static const char *cli_suites;
static size_t cli_padding;
static const char *cli_groups; /* NULL: OpenSSL's list */
static struct kl_trec *hook_t;

/* The client's own view of the traffic secrets (its key log): the reference for ours. */
static uint8_t peer_cts[48], peer_sts[48];
static size_t peer_slen;

static int unhex(const char *h, uint8_t *out, size_t cap)
{
    size_t n = strlen(h);
    if (n % 2 || n / 2 > cap) return -1;
    for (size_t i = 0; i < n / 2; i++) {
        unsigned v;
        if (sscanf(h + 2 * i, "%2x", &v) != 1) return -1;
        out[i] = (uint8_t)v;
    }
    return (int)(n / 2);
}

/* ClientHellos the client wrote (2 after a HelloRetryRequest) */
static int client_hellos;

static void cli_msg(int write_p, int version, int content_type, const void *buf, size_t len, SSL *s,
                    void *arg)
{
    (void)version;
    (void)s;
    (void)arg;
    if (write_p && content_type == SSL3_RT_HANDSHAKE && len && *(const uint8_t *)buf == 1)
        client_hellos++;
}

static void cli_keylog(const SSL *s, const char *line)
{
    (void)s;
    char label[64], rnd[80], sec[120];
    if (sscanf(line, "%63s %79s %119s", label, rnd, sec) != 3) return;
    int n = -1;
    if (!strcmp(label, "CLIENT_TRAFFIC_SECRET_0")) n = unhex(sec, peer_cts, sizeof peer_cts);
    if (!strcmp(label, "SERVER_TRAFFIC_SECRET_0")) n = unhex(sec, peer_sts, sizeof peer_sts);
    if (n > 0) peer_slen = (size_t)n;
}

/* keylinkd's TLS 1.3 hooks on the server context (tls_server.c): every key log line to
 * kl_trec_keylog, every message callback to kl_trec_msg (it counts our records after the
 * Finished); tickets_made counts the tickets themselves; keylog_client_only drops the
 * server's secret (a connection whose key log is incomplete) */
static int keylog_client_only, tickets_made;

static void srv_keylog(const SSL *s, const char *line)
{
    struct kl_trec *t = SSL_get_app_data(s);
    if (!t || (keylog_client_only && strncmp(line, "CLIENT_", 7))) return;
    kl_trec_keylog(t, line);
}

static int srv_ticket(SSL *s, void *arg)
{
    (void)s;
    (void)arg;
    tickets_made++;
    return 1;
}

static void srv_msg(int write_p, int version, int content_type, const void *buf, size_t len, SSL *s,
                    void *arg)
{
    (void)version;
    (void)arg;
    struct kl_trec *t = SSL_get_app_data(s);
    if (t) kl_trec_msg(t, write_p, content_type, buf, len);
}

static SSL_CTX *server_ctx13(int num_tickets, int hooks)
{
    SSL_CTX *x = server_ctx();
    if (!x) return NULL;
    SSL_CTX_set_ciphersuites(x, "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:"
                                "TLS_CHACHA20_POLY1305_SHA256");
    SSL_CTX_set_num_tickets(x, (size_t)num_tickets);
    if (hooks) {
        SSL_CTX_set_keylog_callback(x, srv_keylog);
        SSL_CTX_set_msg_callback(x, srv_msg);
        SSL_CTX_set_session_ticket_cb(x, srv_ticket, NULL, NULL);
    }
    return x;
}

/* A finished handshake: client offering ciphers (TLS 1.2) or TLS 1.3 when tls13, with
 * max_fragment_length mfl (0: none), resuming sess when given. 0 on success. */
static int pair_new(struct pair *p, const char *ciphers, int tls13, uint8_t mfl, SSL_SESSION *sess)
{
    memset(p, 0, sizeof *p);
    p->sctx = use_sctx ? use_sctx : srv_ctx;
    SSL_CTX_up_ref(p->sctx);
    p->cctx = SSL_CTX_new(TLS_client_method());
    if (!p->cctx) return -1;
    SSL_CTX_use_certificate(p->cctx, cli_cert);
    SSL_CTX_use_PrivateKey(p->cctx, cli_key);
    SSL_CTX_set_verify(p->cctx, SSL_VERIFY_NONE, NULL);
    if (tls13) {
        SSL_CTX_set_min_proto_version(p->cctx, TLS1_3_VERSION);
        if (cli_suites && SSL_CTX_set_ciphersuites(p->cctx, cli_suites) != 1) return -1;
        if (cli_padding) SSL_CTX_set_block_padding(p->cctx, cli_padding);
        if (cli_groups && SSL_CTX_set1_groups_list(p->cctx, cli_groups) != 1) return -1;
        SSL_CTX_set_keylog_callback(p->cctx, cli_keylog);
        SSL_CTX_set_msg_callback(p->cctx, cli_msg);
        client_hellos = 0;
        peer_slen = 0;
    } else {
        SSL_CTX_set_max_proto_version(p->cctx, TLS1_2_VERSION);
        if (SSL_CTX_set_cipher_list(p->cctx, ciphers) != 1) return -1;
    }
    p->s = SSL_new(p->sctx);
    p->c = SSL_new(p->cctx);
    if (!p->s || !p->c) return -1;
    SSL_set_app_data(p->s, hook_t);
    p->s_in = BIO_new(BIO_s_mem());
    p->s_out = BIO_new(BIO_s_mem());
    p->c_in = BIO_new(BIO_s_mem());
    p->c_out = BIO_new(BIO_s_mem());
    BIO_set_mem_eof_return(p->s_in, -1);
    BIO_set_mem_eof_return(p->c_in, -1);
    SSL_set_bio(p->s, p->s_in, p->s_out);
    SSL_set_bio(p->c, p->c_in, p->c_out);
    if (mfl) SSL_set_tlsext_max_fragment_length(p->c, mfl);
    if (sess) SSL_set_session(p->c, sess);
    SSL_set_accept_state(p->s);
    SSL_set_connect_state(p->c);
    if (srv_read_ahead) SSL_set_read_ahead(p->s, 1);
    int sd = 0, cd = 0;
    for (int round = 0; round < 20 && !(sd && cd); round++) {
        if (!cd) {
            int r = SSL_do_handshake(p->c);
            if (r == 1) {
                cd = 1;
                if (early_write && !sd && SSL_write(p->c, "early", 5) != 5) return -1;
            } else if (SSL_get_error(p->c, r) != SSL_ERROR_WANT_READ) {
                return -1;
            }
        }
        carry(p->c_out, p->s_in);
        if (!sd) {
            int r = SSL_do_handshake(p->s);
            if (r == 1)
                sd = 1;
            else if (SSL_get_error(p->s, r) != SSL_ERROR_WANT_READ)
                return -1;
        }
        carry(p->s_out, p->c_in);
    }
    return sd && cd ? 0 : -1;
}

/* The client's records since the last call, into buf; their length. */
static size_t client_raw(struct pair *p, uint8_t *buf, size_t cap)
{
    int n = BIO_read(p->c_out, buf, (int)cap);
    return n > 0 ? (size_t)n : 0;
}

/* What the client reads from the records in rec[0..n). */
static size_t client_read(struct pair *p, const uint8_t *rec, size_t n, uint8_t *out, size_t cap)
{
    BIO_write(p->c_in, rec, (int)n);
    size_t got = 0;
    for (;;) {
        int r = SSL_read(p->c, out + got, (int)(cap - got));
        if (r <= 0) break;
        got += (size_t)r;
        if (got == cap) break;
    }
    return got;
}

/* A stream of received bytes: records completed across calls, each opened, plaintexts of
 * application data appended to out. Returns the last content type opened or a negative
 * alert. */
struct stream {
    uint8_t buf[KL_TREC_MAX_RECORD];
    size_t have;
};

static uint8_t ku_out[8192];
static size_t ku_len;

static int kus_opened;

/* TLS 1.3: what keylinkd does with a client's KeyUpdate (broker_trec.c): the answer to a
 * requested one is sealed under our current keys into ku_out (sent ahead of our next
 * records by us_to_client), then our keys move on */

static int key_update_answer(struct kl_trec *t, const uint8_t *pt, size_t pl)
{
    int ku = kl_trec_key_update(t, pt, pl);
    if (ku < 0) return ku;
    kus_opened++;
    if (ku == 1) {
        if (ku_len + KL_TREC_KEY_UPDATE_LEN + KL_TREC_OVERHEAD > sizeof ku_out) return -1001;
        size_t w = kl_trec_seal(t, &trx, KL_TREC_HANDSHAKE, KL_TREC_KEY_UPDATE_MSG,
                                KL_TREC_KEY_UPDATE_LEN, ku_out + ku_len);
        if (!w || kl_trec_next_write_key(t) != 0) return -1002;
        ku_len += w;
    }
    return ku;
}

static int stream_feed(struct stream *st, struct kl_trec *t, const uint8_t *p, size_t n,
                       uint8_t *out, size_t *out_len, size_t cap, int *records)
{
    int last = 0;
    while (n) {
        long want = kl_trec_record_len(st->buf, st->have);
        size_t need = want > 0 ? (size_t)want - st->have : KL_TREC_HDR - st->have;
        if (want < 0) return (int)want;
        size_t take = need < n ? need : n;
        memcpy(st->buf + st->have, p, take);
        st->have += take;
        p += take;
        n -= take;
        want = kl_trec_record_len(st->buf, st->have);
        if (want < 0) return (int)want;
        if (want > 0 && (size_t)want == st->have) {
            uint8_t *pt = NULL;
            size_t pl = 0;
            int r = kl_trec_open(t, &trx, st->buf, st->have, &pt, &pl);
            st->have = 0;
            if (r < 0) return r;
            if (r == KL_TREC_HANDSHAKE && t->tls13) {
                int ku = key_update_answer(t, pt, pl);
                if (ku < 0) return ku;
            }
            if (r == KL_TREC_APPDATA) {
                if (*out_len + pl > cap) return -1000;
                memcpy(out + *out_len, pt, pl);
                *out_len += pl;
            }
            (*records)++;
            last = r;
        }
    }
    return last;
}

static uint8_t big_a[200000], big_b[200000], raw[300000];

static void fill(uint8_t *b, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++)
        b[i] = (uint8_t)(seed * 131 + i * 7 + (i >> 8));
}

/* Client SSL_write of each size -> raw records -> our open, fed in pieces of chunk bytes
 * (0: all at once). */
static void client_to_us(struct pair *p, struct kl_trec *t, const size_t *sizes, size_t nsizes,
                         size_t chunk, const char *what)
{
    size_t total = 0;
    for (size_t i = 0; i < nsizes; i++) {
        fill(big_a + total, sizes[i], (unsigned)i + 1);
        if (sizes[i]) CHECK(SSL_write(p->c, big_a + total, (int)sizes[i]) == (int)sizes[i]);
        total += sizes[i];
    }
    size_t rn = client_raw(p, raw, sizeof raw);
    struct stream *st = calloc(1, sizeof *st);
    size_t got = 0;
    int recs = 0, r = 0;
    for (size_t off = 0; off < rn && r >= 0;) {
        size_t k = chunk ? (chunk < rn - off ? chunk : rn - off) : rn;
        r = stream_feed(st, t, raw + off, k, big_b, &got, sizeof big_b, &recs);
        off += k;
    }
    if (r < 0 || got != total || memcmp(big_a, big_b, total) || st->have) {
        fprintf(stderr, "%s: client->us: open %d, %zu of %zu bytes, %zu left over\n", what, r, got,
                total, st->have);
        kl_fails++;
    }
    free(st);
}

/* The explicit nonces of the records we sealed on the current connection: GCM under one
 * key must never see one twice (the receiver cannot notice, so the test looks). */
static uint64_t nonces[4096];
static size_t nnonces;

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static void nonces_check(const char *what)
{
    qsort(nonces, nnonces, sizeof nonces[0], cmp_u64);
    for (size_t i = 1; i < nnonces; i++)
        if (nonces[i] == nonces[i - 1]) {
            fprintf(stderr, "%s: explicit nonce %016llx used twice\n", what,
                    (unsigned long long)nonces[i]);
            kl_fails++;
            break;
        }
    nnonces = 0;
}

/* bytes a record adds to its plaintext: TLS 1.2 header, explicit nonce, tag; TLS 1.3
 * header, inner content type, tag */
static size_t ovh(const struct kl_trec *t)
{
    return t->tls13 ? KL_TREC_HDR + 1 + KL_TREC_TAG : KL_TREC_OVERHEAD;
}

/* Our seal of n bytes (cut into max_frag records) -> the client's SSL_read; a pending
 * KeyUpdate answer goes first. */
static void us_to_client(struct pair *p, struct kl_trec *t, size_t n, const char *what)
{
    fill(big_a, n, (unsigned)n);
    size_t rn = 0;
    size_t off = 0;
    memcpy(raw, ku_out, ku_len);
    rn = ku_len;
    ku_len = 0;
    do {
        size_t k = n - off < t->max_frag ? n - off : t->max_frag;
        size_t w = kl_trec_seal(t, &trx, KL_TREC_APPDATA, big_a + off, k, raw + rn);
        if (w != k + ovh(t)) {
            fprintf(stderr, "%s: seal of %zu bytes gave %zu\n", what, k, w);
            kl_fails++;
            return;
        }
        CHECK(raw[0 + rn] == KL_TREC_APPDATA && raw[1 + rn] == 3 && raw[2 + rn] == 3);
        uint64_t e = 0;
        for (int i = 0; i < 8; i++)
            e = e << 8 | raw[rn + KL_TREC_HDR + i];
        if (!t->tls13 && nnonces < sizeof nonces / sizeof nonces[0]) nonces[nnonces++] = e;
        rn += w;
        off += k;
    } while (off < n);
    size_t got = client_read(p, raw, rn, big_b, n ? n : 1);
    if (got != n || memcmp(big_a, big_b, n)) {
        unsigned long e = ERR_peek_error();
        fprintf(stderr, "%s: us->client: the client read %zu of %zu bytes (%s)\n", what, got, n,
                e ? ERR_reason_error_string(e) : "no error");
        kl_fails++;
    }
    ERR_clear_error();
}

/* One AES-GCM record of type/plaintext under dir's keys at seq, made here with EVP (not
 * kl_trec_seal): lets the test build records our seal refuses to make. */
static size_t ref_seal(const struct kl_trec_dir *d, int key_len, uint64_t seq, uint8_t type,
                       const uint8_t *pt, size_t n, uint8_t *out)
{
    size_t body = KL_TREC_EXPLICIT_IV + n + KL_TREC_TAG;
    uint8_t nonce[12], aad[13];
    out[0] = type;
    out[1] = out[2] = 3;
    out[3] = (uint8_t)(body >> 8);
    out[4] = (uint8_t)body;
    RAND_bytes(out + 5, 8);
    memcpy(nonce, d->salt, 4);
    memcpy(nonce + 4, out + 5, 8);
    for (int i = 0; i < 8; i++)
        aad[i] = (uint8_t)(seq >> (56 - 8 * i));
    aad[8] = type;
    aad[9] = aad[10] = 3;
    aad[11] = (uint8_t)(n >> 8);
    aad[12] = (uint8_t)n;
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    int l = 0;
    int ok = c &&
             EVP_EncryptInit_ex(c, key_len == 16 ? EVP_aes_128_gcm() : EVP_aes_256_gcm(), NULL,
                                d->key, nonce) == 1 &&
             EVP_EncryptUpdate(c, NULL, &l, aad, 13) == 1 &&
             (!n || EVP_EncryptUpdate(c, out + 13, &l, pt, (int)n) == 1) &&
             EVP_EncryptFinal_ex(c, out + 13 + n, &l) == 1 &&
             EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, 16, out + 13 + n) == 1;
    EVP_CIPHER_CTX_free(c);
    return ok ? KL_TREC_HDR + body : 0;
}

/* Opens a copy of rec with a copy of t: the verdict without touching either. */
static int try_open_len(const struct kl_trec *t, const uint8_t *rec, size_t len, size_t *out_len)
{
    struct kl_trec tc = *t;
    uint8_t *b = malloc(len ? len : 1);
    memcpy(b, rec, len);
    uint8_t *pt = NULL;
    size_t pl = 0;
    long want = kl_trec_record_len(b, len);
    int r = want < 0              ? (int)want
            : (size_t)want != len ? -1000
                                  : kl_trec_open(&tc, &trx, b, len, &pt, &pl);
    free(b);
    kl_trec_wipe(&tc);
    *out_len = pl;
    return r;
}

static int try_open(const struct kl_trec *t, const uint8_t *rec, size_t len)
{
    size_t pl;
    return try_open_len(t, rec, len, &pl);
}

/* Opens rec with t for real; its content type or alert. */
static int open_rec(struct kl_trec *t, uint8_t *rec, size_t len, uint8_t **pt, size_t *pl)
{
    long want = kl_trec_record_len(rec, len);
    if (want <= 0 || (size_t)want != len) return want < 0 ? (int)want : -1000;
    return kl_trec_open(t, &trx, rec, len, pt, pl);
}

/* one client record carrying n bytes */
static size_t client_record(struct pair *p, const uint8_t *pt, size_t n, uint8_t *out, size_t cap)
{
    CHECK(SSL_write(p->c, pt, (int)n) == (int)n);
    return client_raw(p, out, cap);
}

static int has_window(const uint8_t *hay, size_t hn, const uint8_t *needle, size_t nn)
{
    for (size_t i = 0; i + 16 <= nn; i += 16)
        for (size_t j = 0; j + 16 <= hn; j++)
            if (!memcmp(hay + j, needle + i, 16)) return 1;
    return 0;
}

#define PT_LEN 200
#define REC_CAP 2048

/* A client record of PT_LEN bytes (in rec, plaintext in pt): every flipped bit, the length,
 * a replay and a reordering are refused; the original opens once. Returns its length. */
static size_t tampered(struct pair *p, struct kl_trec *t, const char *what, unsigned seed,
                       int check_seq, uint8_t *rec, uint8_t *pt, uint8_t *bad)
{
    fill(pt, PT_LEN, seed);
    size_t n = client_record(p, pt, PT_LEN, rec, REC_CAP);
    CHECK(n == PT_LEN + ovh(t));
    /* every bit of the record except the length: refused (TLS 1.3: the header is the
     * additional data), the reading side unmoved, and with a bad tag nothing of the
     * plaintext is left in the buffer */
    int flips = 0, wrong = 0;
    for (size_t i = 0; i < n; i++) {
        if (i == 3 || i == 4) continue;
        for (int bit = 0; bit < 8; bit++) {
            memcpy(bad, rec, n);
            bad[i] ^= (uint8_t)(1u << bit);
            struct kl_trec tc = *t;
            uint8_t *q = NULL;
            size_t ql = 0;
            int r = open_rec(&tc, bad, n, &q, &ql);
            flips++;
            int ok = (i >= 5 ? r == -KL_TREC_AD_BAD_RECORD_MAC : r < 0) &&
                     (!check_seq || tc.rd.seq == t->rd.seq);
            if (!ok || (r == -KL_TREC_AD_BAD_RECORD_MAC && has_window(bad, n, pt, PT_LEN))) {
                if (wrong++ < 5)
                    fprintf(stderr, "%s: byte %zu bit %d flipped: open gave %d\n", what, i, bit, r);
            }
            kl_trec_wipe(&tc);
        }
    }
    CHECK(flips == (int)(n - 2) * 8);
    if (wrong) {
        fprintf(stderr, "%s: %d of %d flipped records not refused properly\n", what, wrong, flips);
        kl_fails++;
    }
    /* the length bytes: the header no longer matches the bytes (a shorter record) */
    memcpy(bad, rec, n);
    bad[4] ^= 1;
    CHECK(try_open(t, bad, (size_t)kl_trec_record_len(bad, n)) < 0);

    /* the original opens, once */
    memcpy(bad, rec, n);
    uint8_t *q = NULL;
    size_t ql = 0;
    CHECK(open_rec(t, bad, n, &q, &ql) == KL_TREC_APPDATA && ql == PT_LEN &&
          !memcmp(q, pt, PT_LEN));
    CHECK(try_open(t, rec, n) == -KL_TREC_AD_BAD_RECORD_MAC); /* replayed */

    /* reordered: the second record first is refused; in order both open */
    uint8_t r1[512], r2[512];
    size_t n1 = client_record(p, pt, 50, r1, sizeof r1);
    size_t n2 = client_record(p, pt + 50, 60, r2, sizeof r2);
    CHECK(try_open(t, r2, n2) == -KL_TREC_AD_BAD_RECORD_MAC);
    CHECK(open_rec(t, r1, n1, &q, &ql) == KL_TREC_APPDATA && ql == 50);
    CHECK(open_rec(t, r2, n2, &q, &ql) == KL_TREC_APPDATA && ql == 60 && !memcmp(q, pt + 50, 60));
    CHECK(try_open(t, r1, n1) == -KL_TREC_AD_BAD_RECORD_MAC); /* an old one again */
    return n;
}

static void hostile(struct pair *p, struct kl_trec *t, const char *what)
{
    uint8_t rec[REC_CAP], pt[PT_LEN], bad[REC_CAP];
    size_t n = tampered(p, t, what, 99, 0, rec, pt, bad);
    size_t ql = 0;

    /* headers no record of this connection may have */
    const struct {
        uint8_t h[5];
        long want;
    } hdr[] = {
        {{23, 3, 2, 0, 40}, -KL_TREC_AD_PROTOCOL_VERSION},
        {{23, 3, 1, 0, 40}, -KL_TREC_AD_PROTOCOL_VERSION},
        {{23, 3, 4, 0, 40}, -KL_TREC_AD_PROTOCOL_VERSION},
        {{23, 2, 3, 0, 40}, -KL_TREC_AD_PROTOCOL_VERSION},
        {{23, 0x7f, 0x1c, 0, 40}, -KL_TREC_AD_PROTOCOL_VERSION},
        {{19, 3, 3, 0, 40}, -KL_TREC_AD_UNEXPECTED_MESSAGE},
        {{0, 3, 3, 0, 40}, -KL_TREC_AD_UNEXPECTED_MESSAGE},
        {{0x80, 3, 3, 0, 40}, -KL_TREC_AD_UNEXPECTED_MESSAGE},
        {{23, 3, 3, 0x48, 0x01}, -KL_TREC_AD_RECORD_OVERFLOW}, /* 2^14 + 2048 + 1 */
        {{23, 3, 3, 0xff, 0xff}, -KL_TREC_AD_RECORD_OVERFLOW},
        {{23, 3, 3, 0x48, 0x00}, KL_TREC_HDR + 0x4800}, /* the largest allowed */
        {{23, 3, 3, 0, 0}, KL_TREC_HDR},
    };
    for (size_t i = 0; i < sizeof hdr / sizeof hdr[0]; i++) {
        long got = kl_trec_record_len(hdr[i].h, 5);
        if (got != hdr[i].want) {
            fprintf(stderr, "%s: header %zu: record_len %ld, want %ld\n", what, i, got,
                    hdr[i].want);
            kl_fails++;
        }
        for (size_t k = 0; k < 5; k++)
            CHECK(kl_trec_record_len(hdr[i].h, k) == 0); /* not enough bytes yet */
    }
    /* a valid record's header with other version bytes: refused before any decryption */
    memcpy(bad, rec, n);
    bad[2] = 1;
    CHECK(try_open(t, bad, n) == -KL_TREC_AD_PROTOCOL_VERSION);

    /* too short for explicit nonce + tag (and the empty body): bad_record_mac (as OpenSSL)
     * or decode_error, never anything else */
    static uint8_t zero[KL_TREC_MAX_RECORD];
    for (size_t body = 0; body <= KL_TREC_EXPLICIT_IV + KL_TREC_TAG; body++) {
        uint8_t s[64] = {23, 3, 3, 0, (uint8_t)body};
        memcpy(s + 5, rec + 5, body);
        int r = try_open(t, s, KL_TREC_HDR + body);
        if (r != -KL_TREC_AD_BAD_RECORD_MAC && r != -KL_TREC_AD_DECODE_ERROR) {
            fprintf(stderr, "%s: a record with a %zu-byte body gave %d\n", what, body, r);
            kl_fails++;
        }
    }
    /* an empty plaintext (nonce + tag only) sealed correctly opens as an empty record */
    size_t en = ref_seal(&t->rd, t->key_len, t->rd.seq, KL_TREC_APPDATA, NULL, 0, bad);
    CHECK(en == KL_TREC_OVERHEAD);
    CHECK(try_open_len(t, bad, en, &ql) == KL_TREC_APPDATA && ql == 0);
    /* 2^14 + 1 bytes of plaintext, correctly sealed under the right keys and sequence:
     * record_overflow; 2^14 exactly opens */
    uint8_t *big = malloc(KL_TREC_MAX_RECORD);
    size_t bn =
        ref_seal(&t->rd, t->key_len, t->rd.seq, KL_TREC_APPDATA, zero, KL_TREC_MAX_PLAIN + 1, big);
    CHECK(kl_trec_record_len(big, bn) == (long)bn);
    CHECK(try_open(t, big, bn) == -KL_TREC_AD_RECORD_OVERFLOW);
    /* the largest record the header allows, all zeros: refused (overflow or tag) */
    memset(big, 0, KL_TREC_MAX_RECORD);
    memcpy(big, (uint8_t[]){23, 3, 3, 0x48, 0x00}, 5);
    CHECK(try_open(t, big, KL_TREC_MAX_RECORD) < 0);
    bn = ref_seal(&t->rd, t->key_len, t->rd.seq, KL_TREC_APPDATA, zero, KL_TREC_MAX_PLAIN, big);
    CHECK(try_open_len(t, big, bn, &ql) == KL_TREC_APPDATA && ql == KL_TREC_MAX_PLAIN);
    /* the right record under a wrong sequence number (one ahead, one behind) */
    bn = ref_seal(&t->rd, t->key_len, t->rd.seq + 1, KL_TREC_APPDATA, pt, 10, big);
    CHECK(try_open(t, big, bn) == -KL_TREC_AD_BAD_RECORD_MAC);
    bn = ref_seal(&t->rd, t->key_len, t->rd.seq - 1, KL_TREC_APPDATA, pt, 10, big);
    CHECK(try_open(t, big, bn) == -KL_TREC_AD_BAD_RECORD_MAC);
    /* sealed with our own (server) keys: a reflected record is not the client's */
    bn = ref_seal(&t->wr, t->key_len, t->rd.seq, KL_TREC_APPDATA, pt, 10, big);
    CHECK(try_open(t, big, bn) == -KL_TREC_AD_BAD_RECORD_MAC);
    /* the type is authenticated: a handshake-typed copy of an application record fails */
    bn = ref_seal(&t->rd, t->key_len, t->rd.seq, KL_TREC_APPDATA, pt, 10, big);
    big[0] = KL_TREC_HANDSHAKE;
    CHECK(try_open(t, big, bn) == -KL_TREC_AD_BAD_RECORD_MAC);
    big[0] = KL_TREC_APPDATA;
    CHECK(try_open_len(t, big, bn, &ql) == KL_TREC_APPDATA && ql == 10);
    free(big);
    /* after all that the stream still works */
    size_t sz[] = {7, 3000};
    client_to_us(p, t, sz, 2, 0, what);
    us_to_client(p, t, 5000, what);
}

static int all_zero(const void *p, size_t n)
{
    const uint8_t *b = p;
    uint8_t acc = 0;
    for (size_t i = 0; i < n; i++)
        acc |= b[i];
    return acc == 0;
}

static void suite(const char *ciphers, uint8_t key_len)
{
    kl_where = ciphers;
    struct pair p;
    struct kl_trec t;
    memset(&t, 0, sizeof t);
    if (pair_new(&p, ciphers, 0, 0, NULL)) {
        fprintf(stderr, "%s: handshake failed\n", ciphers);
        ERR_print_errors_fp(stderr);
        kl_fails++;
        pair_free(&p);
        return;
    }
    CHECK(!strcmp(SSL_get_cipher_name(p.s), ciphers));
    CHECK(kl_trec_from_ssl(&t, p.s) == 0);
    CHECK(t.key_len == key_len && t.max_frag == KL_TREC_MAX_PLAIN);
    CHECK(t.rd.seq == 1 && t.wr.seq == 1);
    CHECK(!t.tls13);
    { /* KeyUpdate is TLS 1.3 only */
        struct kl_trec tc = t;
        CHECK(kl_trec_key_update(&tc, KL_TREC_KEY_UPDATE_MSG, KL_TREC_KEY_UPDATE_LEN) < 0);
        CHECK(kl_trec_next_write_key(&tc) != 0);
        CHECK(!memcmp(&tc, &t, sizeof t));
        kl_trec_wipe(&tc);
    }
    SSL_SESSION *sess = SSL_get1_session(p.c);
    SSL_free(p.s); /* keylinkd frees it: from here the records are ours alone */
    nnonces = 0;
    p.s = NULL;

    /* client -> us: single records of 1, 1000, 16384; 40000 bytes (3 records); several
     * records in one buffer; the same split over reads of 1, 7 and 4000 bytes */
    const size_t s1[] = {1}, s2[] = {1000}, s3[] = {16384}, s4[] = {40000},
                 s5[] = {1, 5, 300, 16384, 2, 999};
    client_to_us(&p, &t, s1, 1, 0, "1 byte");
    client_to_us(&p, &t, s2, 1, 0, "1000 bytes");
    client_to_us(&p, &t, s3, 1, 0, "16384 bytes");
    client_to_us(&p, &t, s4, 1, 0, "40000 bytes");
    client_to_us(&p, &t, s5, 6, 0, "6 records in one buffer");
    client_to_us(&p, &t, s5, 6, 1, "6 records, 1 byte per read");
    client_to_us(&p, &t, s5, 6, 7, "6 records, 7 bytes per read");
    client_to_us(&p, &t, s5, 6, 4000, "6 records, 4000 bytes per read");

    /* us -> client: empty record (then data), 1, 1000, 16384, 100000 bytes */
    uint8_t rec[64], got[16];
    size_t en = kl_trec_seal(&t, &trx, KL_TREC_APPDATA, (const uint8_t *)"", 0, rec);
    CHECK(en == KL_TREC_OVERHEAD);
    BIO_write(p.c_in, rec, (int)en);
    CHECK(SSL_read(p.c, got, sizeof got) <= 0); /* nothing to read yet, no error */
    CHECK(SSL_get_error(p.c, -1) == SSL_ERROR_WANT_READ);
    ERR_clear_error();
    us_to_client(&p, &t, 1, "seal 1 byte (after an empty record)");
    us_to_client(&p, &t, 1000, "seal 1000");
    us_to_client(&p, &t, 16384, "seal 16384");
    us_to_client(&p, &t, 100000, "seal 100000");
    CHECK(kl_trec_seal(&t, &trx, KL_TREC_APPDATA, big_a, KL_TREC_MAX_PLAIN + 1, raw) == 0);

    /* 1000 records each way, interleaved */
    uint64_t rd0 = t.rd.seq, wr0 = t.wr.seq;
    int before = kl_fails;
    for (int i = 0; i < 1000 && kl_fails == before; i++) {
        size_t sz[] = {(size_t)(i % 97) + 1};
        client_to_us(&p, &t, sz, 1, 0, "1000 records");
        us_to_client(&p, &t, (size_t)(i % 89) + 1, "1000 records");
    }
    CHECK(t.rd.seq == rd0 + 1000 && t.wr.seq == wr0 + 1000);
    nonces_check(ciphers);

    hostile(&p, &t, ciphers);

    /* close_notify from the client */
    uint8_t *q = NULL;
    size_t ql = 0;
    SSL_shutdown(p.c);
    size_t n = client_raw(&p, raw, sizeof raw);
    CHECK(n == 2 + KL_TREC_OVERHEAD);
    CHECK(open_rec(&t, raw, n, &q, &ql) == KL_TREC_ALERT && ql == 2 && q[0] == 1 && q[1] == 0);

    /* wipe leaves nothing of the keys */
    kl_trec_wipe(&t);
    CHECK(all_zero(&t, sizeof t) && t.key_len == 0);
    pair_free(&p);

    /* a resumed session (abbreviated handshake) hands off the same way */
    if (pair_new(&p, ciphers, 0, 0, sess)) {
        fprintf(stderr, "%s: resumption handshake failed\n", ciphers);
        kl_fails++;
    } else {
        CHECK(SSL_session_reused(p.s) == 1);
        CHECK(kl_trec_from_ssl(&t, p.s) == 0 && t.key_len == key_len);
        SSL_free(p.s);
        p.s = NULL;
        client_to_us(&p, &t, s5, 6, 3, "resumed");
        us_to_client(&p, &t, 20000, "resumed");
        /* a renegotiation attempt arrives as a handshake record (keylinkd refuses it) */
        if (SSL_renegotiate(p.c) == 1) {
            SSL_do_handshake(p.c);
            n = client_raw(&p, raw, sizeof raw);
            CHECK(n > KL_TREC_OVERHEAD && open_rec(&t, raw, n, &q, &ql) == KL_TREC_HANDSHAKE &&
                  ql > 4 && q[0] == 1 /* ClientHello */);
        } else {
            fprintf(stderr, "%s: client cannot start a renegotiation\n", ciphers);
            kl_fails++;
        }
        ERR_clear_error();
        kl_trec_wipe(&t);
    }
    pair_free(&p);
    /* resumed, and the client's first record right behind its Finished: the server has not
     * read it, so it is ours to open; a server that read ahead holds it: no hand-off */
    for (int ahead = 0; ahead < 2; ahead++) {
        early_write = 1;
        srv_read_ahead = ahead;
        int rc = pair_new(&p, ciphers, 0, 0, sess);
        early_write = srv_read_ahead = 0;
        if (rc || SSL_session_reused(p.s) != 1) {
            fprintf(stderr, "%s: resumption with early data (read ahead %d): rc %d, reused %d\n",
                    ciphers, ahead, rc, p.s ? SSL_session_reused(p.s) : -1);
            kl_fails++;
            pair_free(&p);
            continue;
        }
        uint8_t rest[256];
        if (ahead) {
            CHECK(kl_trec_from_ssl(&t, p.s) == 1); /* OpenSSL holds the record */
            char b5[8];
            CHECK(SSL_read(p.s, b5, sizeof b5) == 5 && !memcmp(b5, "early", 5));
        } else {
            CHECK(kl_trec_from_ssl(&t, p.s) == 0);
            int rn = BIO_read(p.s_in, rest, sizeof rest); /* what OpenSSL left unread */
            CHECK(rn == 5 + KL_TREC_OVERHEAD);
            CHECK(rn > 0 && open_rec(&t, rest, (size_t)rn, &q, &ql) == KL_TREC_APPDATA && ql == 5 &&
                  !memcmp(q, "early", 5));
            kl_trec_wipe(&t);
        }
        /* a client freed without a shutdown marks its session not resumable */
        SSL_set_shutdown(p.c, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
        pair_free(&p);
    }
    SSL_SESSION_free(sess);

    /* max_fragment_length 1024 (and 512): records we send fit, the client accepts them */
    const uint8_t modes[] = {TLSEXT_max_fragment_length_1024, TLSEXT_max_fragment_length_512};
    const uint16_t sizes[] = {1024, 512};
    for (int m = 0; m < 2; m++) {
        if (pair_new(&p, ciphers, 0, modes[m], NULL)) {
            fprintf(stderr, "%s: handshake with max_fragment_length failed\n", ciphers);
            kl_fails++;
            pair_free(&p);
            continue;
        }
        CHECK(SSL_SESSION_get_max_fragment_length(SSL_get_session(p.s)) == modes[m]);
        CHECK(kl_trec_from_ssl(&t, p.s) == 0);
        CHECK(t.max_frag == sizes[m]);
        SSL_free(p.s);
        p.s = NULL;
        us_to_client(&p, &t, sizes[m], "max_fragment_length, one full record");
        us_to_client(&p, &t, 10000, "max_fragment_length, 10000 bytes");
        CHECK(kl_trec_seal(&t, &trx, KL_TREC_APPDATA, big_a, (size_t)sizes[m] + 1, raw) == 0);
        const size_t cs[] = {sizes[m], 3000};
        client_to_us(&p, &t, cs, 2, 0, "max_fragment_length, client records");
        /* the limit is real: the client refuses a record one byte over it (made here with
         * our keys, since kl_trec_seal will not make it) */
        size_t bn =
            ref_seal(&t.wr, t.key_len, t.wr.seq, KL_TREC_APPDATA, big_a, (size_t)sizes[m] + 1, raw);
        CHECK(client_read(&p, raw, bn, big_b, sizeof big_b) == 0);
        ERR_clear_error();
        kl_trec_wipe(&t);
        pair_free(&p);
    }
    kl_where = "";
}

/* Versions and suites that stay with OpenSSL: 1, and t wiped (whatever it held before).
 * TLS 1.3 here runs on srv_ctx, which has no key log hook: without the traffic secrets
 * there is nothing to hand off. */
static void stays(const char *ciphers, int tls13)
{
    kl_where = tls13 ? "TLS 1.3 without the key log" : ciphers;
    struct pair p;
    struct kl_trec t;
    memset(&t, 0xa5, sizeof t);
    if (pair_new(&p, ciphers, tls13, 0, NULL)) {
        fprintf(stderr, "handshake failed\n");
        ERR_print_errors_fp(stderr);
        kl_fails++;
    } else {
        CHECK(kl_trec_from_ssl(&t, p.s) == 1);
        CHECK(all_zero(&t, sizeof t));
        /* OpenSSL still carries the data */
        CHECK(SSL_write(p.c, "ping", 4) == 4);
        carry(p.c_out, p.s_in);
        char b4[8];
        CHECK(SSL_read(p.s, b4, sizeof b4) == 4 && !memcmp(b4, "ping", 4));
    }
    pair_free(&p);
    kl_where = "";
}

/* ---- TLS 1.3 (RFC 8446): secrets from the key log, tickets counted, KeyUpdate ---- */

#define S13_128 "TLS_AES_128_GCM_SHA256"
#define S13_256 "TLS_AES_256_GCM_SHA384"

/* HKDF-Expand-Label(secret, label, "", n) (RFC 8446 7.1), built here on plain HKDF-Expand
 * (the code under test uses OpenSSL's TLS13-KDF): the reference for every key we check */
static int hkdf_label(const EVP_MD *md, const uint8_t *secret, size_t slen, const char *label,
                      uint8_t *out, size_t n)
{
    uint8_t info[2 + 1 + 6 + 32 + 1];
    size_t ll = strlen(label);
    if (ll > 32) return -1;
    info[0] = (uint8_t)(n >> 8);
    info[1] = (uint8_t)n;
    info[2] = (uint8_t)(6 + ll);
    memcpy(info + 3, "tls13 ", 6);
    memcpy(info + 9, label, ll);
    info[9 + ll] = 0; /* empty context */
    EVP_KDF *kdf = EVP_KDF_fetch(NULL, OSSL_KDF_NAME_HKDF, NULL);
    EVP_KDF_CTX *kc = kdf ? EVP_KDF_CTX_new(kdf) : NULL;
    int mode = EVP_KDF_HKDF_MODE_EXPAND_ONLY;
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)EVP_MD_get0_name(md), 0),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)secret, slen),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, info, 10 + ll),
        OSSL_PARAM_construct_int(OSSL_KDF_PARAM_MODE, &mode),
        OSSL_PARAM_construct_end(),
    };
    int ok = kc && EVP_KDF_derive(kc, out, n, params) == 1;
    EVP_KDF_CTX_free(kc);
    EVP_KDF_free(kdf);
    return ok ? 0 : -1;
}

/* d holds secret (slen bytes) and the key and iv derived from it */
static int dir_is(const struct kl_trec_dir *d, const EVP_MD *md, const uint8_t *secret, size_t slen,
                  size_t key_len)
{
    uint8_t key[32], iv[12];
    return !hkdf_label(md, secret, slen, "key", key, key_len) &&
           !hkdf_label(md, secret, slen, "iv", iv, sizeof iv) && !memcmp(d->secret, secret, slen) &&
           !memcmp(d->key, key, key_len) && !memcmp(d->iv, iv, sizeof iv);
}

/* TLSInnerPlaintext: content, type (0: none), pad zeros; into out, its length */
static size_t inner13(uint8_t *out, const uint8_t *pt, size_t n, uint8_t type, size_t pad)
{
    if (n) memmove(out, pt, n);
    out[n] = type;
    memset(out + n + 1, 0, pad);
    return n + 1 + pad;
}

/* One TLS 1.3 record (outer type, inner[0..n) sealed) under d at seq, made here with EVP:
 * records our seal never makes */
static size_t ref_seal13(const struct kl_trec_dir *d, int key_len, uint64_t seq, uint8_t outer,
                         const uint8_t *inner, size_t n, uint8_t *out)
{
    size_t body = n + KL_TREC_TAG;
    out[0] = outer;
    out[1] = out[2] = 3;
    out[3] = (uint8_t)(body >> 8);
    out[4] = (uint8_t)body;
    uint8_t nonce[12];
    memcpy(nonce, d->iv, sizeof nonce);
    for (int i = 0; i < 8; i++)
        nonce[11 - i] ^= (uint8_t)(seq >> (8 * i));
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    int l = 0;
    int ok = c &&
             EVP_EncryptInit_ex(c, key_len == 16 ? EVP_aes_128_gcm() : EVP_aes_256_gcm(), NULL,
                                d->key, nonce) == 1 &&
             EVP_EncryptUpdate(c, NULL, &l, out, KL_TREC_HDR) == 1 &&
             (!n || EVP_EncryptUpdate(c, out + KL_TREC_HDR, &l, inner, (int)n) == 1) &&
             EVP_EncryptFinal_ex(c, out + KL_TREC_HDR + n, &l) == 1 &&
             EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, KL_TREC_TAG, out + KL_TREC_HDR + n) == 1;
    EVP_CIPHER_CTX_free(c);
    return ok ? KL_TREC_HDR + body : 0;
}

static uint8_t big13[KL_TREC_MAX_RECORD + 64], in13[KL_TREC_MAX_RECORD + 64];

/* a hand-made record under the client's keys at its next sequence number: its verdict */
static int try13(const struct kl_trec *t, uint8_t outer, const uint8_t *pt, size_t n, uint8_t type,
                 size_t pad, size_t *ql)
{
    size_t il = inner13(in13, pt, n, type, pad);
    size_t bn = ref_seal13(&t->rd, t->key_len, t->rd.seq, outer, in13, il, big13);
    CHECK(bn == il + KL_TREC_HDR + KL_TREC_TAG);
    return try_open_len(t, big13, bn, ql);
}

static void hostile13(struct pair *p, struct kl_trec *t, const char *what)
{
    uint8_t rec[REC_CAP], pt[PT_LEN], bad[REC_CAP];
    tampered(p, t, what, 77, 1, rec, pt, bad);
    uint8_t *q = NULL;
    size_t ql = 0;

    static const uint8_t zero[KL_TREC_MAX_PLAIN + 2];
    /* an empty record and padded ones open (RFC 8446 5.4: the zeros are not content) */
    CHECK(try13(t, 23, NULL, 0, KL_TREC_APPDATA, 0, &ql) == KL_TREC_APPDATA && ql == 0);
    CHECK(try13(t, 23, NULL, 0, KL_TREC_APPDATA, 200, &ql) == KL_TREC_APPDATA && ql == 0);
    CHECK(try13(t, 23, pt, 100, KL_TREC_APPDATA, 1000, &ql) == KL_TREC_APPDATA && ql == 100);
    CHECK(try13(t, 23, pt, 1, KL_TREC_APPDATA, KL_TREC_MAX_PLAIN - 1, &ql) == KL_TREC_APPDATA &&
          ql == 1); /* inner plaintext of exactly 2^14 + 1 */
    CHECK(try13(t, 23, zero, KL_TREC_MAX_PLAIN, KL_TREC_APPDATA, 0, &ql) == KL_TREC_APPDATA &&
          ql == KL_TREC_MAX_PLAIN);
    /* the plaintext really is handed over, padding cut */
    {
        struct kl_trec tc = *t;
        size_t il = inner13(in13, pt, 33, KL_TREC_APPDATA, 77);
        size_t bn = ref_seal13(&tc.rd, tc.key_len, tc.rd.seq, 23, in13, il, big13);
        CHECK(open_rec(&tc, big13, bn, &q, &ql) == KL_TREC_APPDATA && ql == 33 &&
              !memcmp(q, pt, 33) && tc.rd.seq == t->rd.seq + 1);
        kl_trec_wipe(&tc);
    }
    /* record_overflow: content over 2^14, inner plaintext over 2^14 + 1 (RFC 8446 5.4),
     * ciphertext over 2^14 + 256 (5.2) whatever it holds */
    CHECK(try13(t, 23, zero, KL_TREC_MAX_PLAIN + 1, KL_TREC_APPDATA, 0, &ql) ==
          -KL_TREC_AD_RECORD_OVERFLOW);
    CHECK(try13(t, 23, zero, KL_TREC_MAX_PLAIN, KL_TREC_APPDATA, 1, &ql) ==
          -KL_TREC_AD_RECORD_OVERFLOW);
    CHECK(try13(t, 23, pt, 10, KL_TREC_APPDATA, KL_TREC_MAX_PLAIN + 256 - KL_TREC_TAG - 11 + 1,
                &ql) == -KL_TREC_AD_RECORD_OVERFLOW);
    memset(big13, 0, sizeof big13);
    memcpy(big13, (uint8_t[]){23, 3, 3, 0x41, 0x01}, 5); /* 2^14 + 257 */
    CHECK(try_open(t, big13, KL_TREC_HDR + 0x4101) == -KL_TREC_AD_RECORD_OVERFLOW);
    memcpy(big13, (uint8_t[]){23, 3, 3, 0x48, 0x00}, 5); /* the TLS 1.2 bound */
    CHECK(try_open(t, big13, KL_TREC_HDR + 0x4800) == -KL_TREC_AD_RECORD_OVERFLOW);
    memcpy(big13, (uint8_t[]){23, 3, 3, 0x41, 0x00}, 5); /* 2^14 + 256 of zeros: the tag */
    CHECK(try_open(t, big13, KL_TREC_HDR + 0x4100) == -KL_TREC_AD_BAD_RECORD_MAC);
    /* an inner plaintext of zeros only has no content type: unexpected_message */
    CHECK(try13(t, 23, zero, 10, 0, 0, &ql) == -KL_TREC_AD_UNEXPECTED_MESSAGE);
    CHECK(try13(t, 23, NULL, 0, 0, 0, &ql) == -KL_TREC_AD_UNEXPECTED_MESSAGE);
    CHECK(try13(t, 23, NULL, 0, 0, 500, &ql) == -KL_TREC_AD_UNEXPECTED_MESSAGE);
    /* correctly sealed under an outer type other than application_data */
    const uint8_t outers[] = {KL_TREC_CCS, KL_TREC_ALERT, KL_TREC_HANDSHAKE, 24};
    for (size_t i = 0; i < sizeof outers; i++)
        CHECK(try13(t, outers[i], pt, 5, KL_TREC_APPDATA, 0, &ql) ==
              -KL_TREC_AD_UNEXPECTED_MESSAGE);
    /* a plaintext change_cipher_spec (middlebox compatibility, handshake only) */
    CHECK(try_open(t, (const uint8_t[]){20, 3, 3, 0, 1, 1}, 6) == -KL_TREC_AD_UNEXPECTED_MESSAGE);
    /* inner types: alert and handshake go to the caller; change_cipher_spec, heartbeat or
     * unknown ones inside a sealed record are unexpected_message (RFC 8446 5) */
    CHECK(try13(t, 23, (const uint8_t *)"\x01\x00", 2, KL_TREC_ALERT, 3, &ql) == KL_TREC_ALERT &&
          ql == 2);
    CHECK(try13(t, 23, KL_TREC_KEY_UPDATE_MSG, 5, KL_TREC_HANDSHAKE, 0, &ql) == KL_TREC_HANDSHAKE &&
          ql == 5);
    const uint8_t inners[] = {KL_TREC_CCS, 24, 1, 19, 25, 0xff};
    for (size_t i = 0; i < sizeof inners; i++)
        CHECK(try13(t, 23, pt, 5, inners[i], 0, &ql) == -KL_TREC_AD_UNEXPECTED_MESSAGE);
    /* too short for a tag and a content type */
    for (size_t body = 0; body <= KL_TREC_TAG; body++) {
        uint8_t s[64] = {23, 3, 3, 0, (uint8_t)body};
        memcpy(s + 5, rec + 5, body);
        int r = try_open(t, s, KL_TREC_HDR + body);
        if (r != -KL_TREC_AD_BAD_RECORD_MAC && r != -KL_TREC_AD_DECODE_ERROR) {
            fprintf(stderr, "%s: a record with a %zu-byte body gave %d\n", what, body, r);
            kl_fails++;
        }
    }
    /* right record, wrong sequence number (ahead, behind), our own direction's keys */
    size_t il = inner13(in13, pt, 10, KL_TREC_APPDATA, 0);
    size_t bn = ref_seal13(&t->rd, t->key_len, t->rd.seq + 1, 23, in13, il, big13);
    CHECK(try_open(t, big13, bn) == -KL_TREC_AD_BAD_RECORD_MAC);
    bn = ref_seal13(&t->rd, t->key_len, t->rd.seq - 1, 23, in13, il, big13);
    CHECK(try_open(t, big13, bn) == -KL_TREC_AD_BAD_RECORD_MAC);
    bn = ref_seal13(&t->wr, t->key_len, t->rd.seq, 23, in13, il, big13);
    CHECK(try_open(t, big13, bn) == -KL_TREC_AD_BAD_RECORD_MAC);
    /* other version bytes in the header (authenticated too): refused */
    bn = ref_seal13(&t->rd, t->key_len, t->rd.seq, 23, in13, il, big13);
    big13[2] = 4;
    CHECK(try_open(t, big13, bn) < 0);
    big13[2] = 3;
    CHECK(try_open_len(t, big13, bn, &ql) == KL_TREC_APPDATA && ql == 10);
    /* after all that the stream still works */
    size_t sz[] = {7, 3000};
    client_to_us(p, t, sz, 2, 0, what);
    us_to_client(p, t, 5000, what);
}

/* KeyUpdate both ways (RFC 8446 4.6.3) between the OpenSSL client and us */
static void key_updates(struct pair *p, struct kl_trec *t, const EVP_MD *md, const char *what)
{
    size_t sl = t->secret_len, kl = t->key_len, ql = 0;
    uint8_t want[48];
    const size_t s8[] = {8};
    /* not requested: our reading side moves, our writing side does not */
    struct kl_trec_dir rd0 = t->rd, wr0 = t->wr;
    kus_opened = 0;
    CHECK(SSL_key_update(p->c, SSL_KEY_UPDATE_NOT_REQUESTED) == 1);
    client_to_us(p, t, s8, 1, 0, "data behind a KeyUpdate");
    CHECK(kus_opened == 1 && ku_len == 0);
    CHECK(!hkdf_label(md, rd0.secret, sl, "traffic upd", want, sl) &&
          dir_is(&t->rd, md, want, sl, kl));
    CHECK(t->rd.seq == 1); /* the data was record 0 under the new key */
    CHECK(!memcmp(&t->wr, &wr0, sizeof wr0));
    /* the old key no longer opens anything */
    size_t il = inner13(in13, (const uint8_t *)"old", 3, KL_TREC_APPDATA, 0);
    size_t bn = ref_seal13(&rd0, t->key_len, rd0.seq + 1, 23, in13, il, big13);
    CHECK(try_open_len(t, big13, bn, &ql) == -KL_TREC_AD_BAD_RECORD_MAC);
    us_to_client(p, t, 100, "after the client's KeyUpdate");

    /* requested: our KeyUpdate under the current key, then our next key */
    wr0 = t->wr;
    rd0 = t->rd;
    CHECK(SSL_key_update(p->c, SSL_KEY_UPDATE_REQUESTED) == 1);
    client_to_us(p, t, s8, 1, 0, "data behind a requested KeyUpdate");
    CHECK(kus_opened == 2 && ku_len == KL_TREC_KEY_UPDATE_LEN + ovh(t));
    CHECK(!hkdf_label(md, rd0.secret, sl, "traffic upd", want, sl) &&
          dir_is(&t->rd, md, want, sl, kl));
    CHECK(!hkdf_label(md, wr0.secret, sl, "traffic upd", want, sl) &&
          dir_is(&t->wr, md, want, sl, kl));
    CHECK(t->wr.seq == 0);
    /* the client takes our KeyUpdate, then reads what we sealed under the next key */
    us_to_client(p, t, 3000, "sealed under our next key");
    CHECK(t->wr.seq == 1);
    /* our own, unasked (either side may update at any time) */
    ku_len = kl_trec_seal(t, &trx, KL_TREC_HANDSHAKE, KL_TREC_KEY_UPDATE_MSG,
                          KL_TREC_KEY_UPDATE_LEN, ku_out);
    CHECK(ku_len == KL_TREC_KEY_UPDATE_LEN + ovh(t) && kl_trec_next_write_key(t) == 0);
    us_to_client(p, t, 17000, "after our unasked KeyUpdate");

    /* many in a row: 1 to 3 KeyUpdates (pushed by SSL_do_handshake) before each record */
    int before = kl_fails, sent = 0;
    kus_opened = 0;
    for (int i = 0; i < 60 && kl_fails == before; i++) {
        for (int j = 0; j <= i % 3; j++, sent++) {
            CHECK(SSL_key_update(p->c, (i + j) % 2 ? SSL_KEY_UPDATE_REQUESTED
                                                   : SSL_KEY_UPDATE_NOT_REQUESTED) == 1);
            CHECK(SSL_do_handshake(p->c) == 1);
        }
        size_t sz[] = {(size_t)(i * 101 % 16384) + 1};
        client_to_us(p, t, sz, 1, (size_t)(i % 4) * 5, "KeyUpdates in a row");
        us_to_client(p, t, (size_t)(i * 37) + 1, "KeyUpdates in a row");
    }
    CHECK(kus_opened == sent);

    /* a KeyUpdate record replayed (old key) and malformed bodies: refused, t untouched */
    CHECK(SSL_key_update(p->c, SSL_KEY_UPDATE_NOT_REQUESTED) == 1 && SSL_do_handshake(p->c) == 1);
    uint8_t kur[256];
    size_t kn = client_raw(p, kur, sizeof kur);
    CHECK(kn == KL_TREC_KEY_UPDATE_LEN + ovh(t));
    uint8_t *q = NULL;
    CHECK(open_rec(t, kur, kn, &q, &ql) == KL_TREC_HANDSHAKE && ql == 5 && q[0] == 24);
    CHECK(key_update_answer(t, q, ql) == 0);
    kn = client_raw(p, kur, sizeof kur); /* nothing more from the client */
    CHECK(kn == 0);
    const struct {
        const char *m;
        size_t n;
        int want; /* 0: any alert; 1: the message is not alone in the record (decode_error or
                   * unexpected_message) */
    } bad[] = {
        {"", 0, 0},
        {"\x18", 1, 0},
        {"\x18\x00\x00\x01", 4, 0},
        {"\x18\x00\x00\x01\x02", 5, -KL_TREC_AD_ILLEGAL_PARAMETER},
        {"\x18\x00\x00\x01\xff", 5, -KL_TREC_AD_ILLEGAL_PARAMETER},
        {"\x18\x00\x00\x01\x00\x00", 6, 1}, /* RFC 8446 5.1: unexpected_message */
        {"\x18\x00\x00\x02\x00\x00", 6, -KL_TREC_AD_DECODE_ERROR},
        {"\x18\x00\x00\x00\x00", 5, -KL_TREC_AD_DECODE_ERROR},
        {"\x18\x01\x00\x01\x00", 5, -KL_TREC_AD_DECODE_ERROR},
        {"\x18\x00\x00\x01\x01\x18\x00\x00\x01\x00", 10, 1},
        {"\x04\x00\x00\x01\x00", 5, -KL_TREC_AD_UNEXPECTED_MESSAGE}, /* NewSessionTicket */
        {"\x01\x00\x00\x01\x00", 5, -KL_TREC_AD_UNEXPECTED_MESSAGE}, /* ClientHello */
        {"\x14\x00\x00\x01\x00", 5, -KL_TREC_AD_UNEXPECTED_MESSAGE}, /* Finished */
        {"\x0d\x00\x00\x01\x00", 5, -KL_TREC_AD_UNEXPECTED_MESSAGE}, /* CertificateRequest */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct kl_trec tc = *t;
        int r = kl_trec_key_update(&tc, (const uint8_t *)bad[i].m, bad[i].n);
        int ok = bad[i].want == 0 ? r < 0
                 : bad[i].want == 1
                     ? r == -KL_TREC_AD_DECODE_ERROR || r == -KL_TREC_AD_UNEXPECTED_MESSAGE
                     : r == bad[i].want;
        if (!ok) {
            fprintf(stderr, "%s: KeyUpdate body %zu: %d, want %d\n", what, i, r, bad[i].want);
            kl_fails++;
        }
        CHECK(!memcmp(&tc, t, sizeof tc));
        kl_trec_wipe(&tc);
    }
    /* the same through a record: it opens as a handshake record, the body is refused */
    {
        struct kl_trec tc = *t;
        il = inner13(in13, (const uint8_t *)"\x18\x00\x00\x01\x02", 5, KL_TREC_HANDSHAKE, 0);
        bn = ref_seal13(&tc.rd, tc.key_len, tc.rd.seq, 23, in13, il, big13);
        CHECK(open_rec(&tc, big13, bn, &q, &ql) == KL_TREC_HANDSHAKE && ql == 5);
        CHECK(kl_trec_key_update(&tc, q, ql) == -KL_TREC_AD_ILLEGAL_PARAMETER);
        kl_trec_wipe(&tc);
    }
    size_t sz[] = {1, 16384};
    client_to_us(p, t, sz, 2, 0, "after the refused KeyUpdates");
    us_to_client(p, t, 16384, "after the refused KeyUpdates");
}

/* one TLS 1.3 pair on sctx; t filled by the server's hooks. 0 on success. */
static int pair13(struct pair *p, SSL_CTX *sctx, const char *suite, struct kl_trec *t, uint8_t mfl,
                  SSL_SESSION *sess)
{
    memset(t, 0, sizeof *t);
    use_sctx = sctx;
    cli_suites = suite;
    hook_t = t;
    tickets_made = 0;
    int rc = pair_new(p, NULL, 1, mfl, sess);
    use_sctx = NULL;
    cli_suites = NULL;
    hook_t = NULL;
    if (rc) {
        fprintf(stderr, "%s: TLS 1.3 handshake failed\n", suite);
        ERR_print_errors_fp(stderr);
        kl_fails++;
        pair_free(p);
    }
    return rc;
}

/* hands p's server off into t, checked against the client's own secrets; frees it */
static int handoff13(struct pair *p, struct kl_trec *t, const char *suite, const EVP_MD *md,
                     int tickets)
{
    size_t sl = (size_t)EVP_MD_get_size(md), kl = strstr(suite, "AES_256") ? 32 : 16;
    CHECK(!strcmp(SSL_get_cipher_name(p->s), suite) && SSL_version(p->s) == TLS1_3_VERSION);
    /* one record per ticket here (no max_fragment_length): our sequence numbers start
     * after them */
    CHECK(t->got_secrets == 3 && t->tickets == tickets && tickets_made == tickets);
    int rc = kl_trec_from_ssl(t, p->s);
    CHECK(rc == 0);
    CHECK(t->tls13 == 1 && t->key_len == kl && t->secret_len == sl);
    CHECK(t->rd.seq == 0 && t->wr.seq == (uint64_t)tickets);
    CHECK(peer_slen == sl && dir_is(&t->rd, md, peer_cts, sl, kl) &&
          dir_is(&t->wr, md, peer_sts, sl, kl));
    SSL_free(p->s); /* keylinkd frees it: from here the records are ours alone */
    p->s = NULL;
    return rc;
}

static void suite13(const char *suite, const EVP_MD *md)
{
    struct pair p;
    struct kl_trec t;
    char where[96];
    /* num_tickets 0, 1 (keylinkd), 2 (OpenSSL's default): the client reads the tickets,
     * then our first record, which opens only under the right sequence number */
    for (int nt = 0; nt <= 2; nt++) {
        snprintf(where, sizeof where, "%s, %d tickets", suite, nt);
        kl_where = where;
        SSL_CTX *sctx = server_ctx13(nt, 1);
        if (!sctx || pair13(&p, sctx, suite, &t, 0, NULL)) {
            SSL_CTX_free(sctx);
            continue;
        }
        handoff13(&p, &t, suite, md, nt);
        us_to_client(&p, &t, 1, "our first record, after the tickets");
        const size_t s1[] = {1}, s3[] = {16384}, s4[] = {40000}, s5[] = {1, 5, 300, 16384, 2, 999};
        client_to_us(&p, &t, s1, 1, 0, "1 byte");
        client_to_us(&p, &t, s3, 1, 0, "16384 bytes");
        us_to_client(&p, &t, 16384, "seal 16384");
        if (nt != 1) {
            kl_trec_wipe(&t);
            pair_free(&p);
            SSL_CTX_free(sctx);
            continue;
        }
        client_to_us(&p, &t, s4, 1, 0, "40000 bytes");
        client_to_us(&p, &t, s5, 6, 0, "6 records in one buffer");
        client_to_us(&p, &t, s5, 6, 1, "6 records, 1 byte per read");
        client_to_us(&p, &t, s5, 6, 7, "6 records, 7 bytes per read");
        /* us -> client: an empty record (nothing to read), then data */
        uint8_t rec[64], got[16];
        size_t en = kl_trec_seal(&t, &trx, KL_TREC_APPDATA, (const uint8_t *)"", 0, rec);
        CHECK(en == ovh(&t) && rec[0] == KL_TREC_APPDATA);
        BIO_write(p.c_in, rec, (int)en);
        CHECK(SSL_read(p.c, got, sizeof got) <= 0);
        CHECK(SSL_get_error(p.c, -1) == SSL_ERROR_WANT_READ);
        ERR_clear_error();
        us_to_client(&p, &t, 1000, "seal 1000 after an empty record");
        us_to_client(&p, &t, 100000, "seal 100000");
        CHECK(kl_trec_seal(&t, &trx, KL_TREC_APPDATA, big_a, KL_TREC_MAX_PLAIN + 1, raw) == 0);
        /* alerts and handshake messages we seal go out as application_data too */
        en = kl_trec_seal(&t, &trx, KL_TREC_HANDSHAKE, KL_TREC_KEY_UPDATE_MSG, 5, rec);
        CHECK(en == 5 + ovh(&t) && rec[0] == KL_TREC_APPDATA);
        CHECK(kl_trec_next_write_key(&t) == 0);
        memcpy(ku_out, rec, en);
        ku_len = en;
        us_to_client(&p, &t, 10, "after a sealed KeyUpdate");

        /* 1000 records each way, interleaved, sizes 1 .. 16384 */
        uint64_t rd0 = t.rd.seq, wr0 = t.wr.seq;
        int before = kl_fails;
        for (int i = 0; i < 1000 && kl_fails == before; i++) {
            size_t sz[] = {i % 250 == 7 ? KL_TREC_MAX_PLAIN : (size_t)(i % 97) + 1};
            client_to_us(&p, &t, sz, 1, 0, "1000 records");
            us_to_client(&p, &t, i % 250 == 9 ? KL_TREC_MAX_PLAIN : (size_t)(i % 89) + 1,
                         "1000 records");
        }
        CHECK(t.rd.seq == rd0 + 1000 && t.wr.seq == wr0 + 1000);

        hostile13(&p, &t, where);
        key_updates(&p, &t, md, where);
        SSL_SESSION *sess = SSL_get1_session(p.c); /* after the client read our ticket */

        /* close_notify both ways */
        uint8_t *q = NULL;
        size_t ql = 0;
        en = kl_trec_seal(&t, &trx, KL_TREC_ALERT, (const uint8_t *)"\x01\x00", 2, rec);
        CHECK(en == 2 + ovh(&t));
        BIO_write(p.c_in, rec, (int)en);
        CHECK(SSL_read(p.c, got, sizeof got) == 0 &&
              SSL_get_error(p.c, 0) == SSL_ERROR_ZERO_RETURN);
        SSL_shutdown(p.c);
        size_t n = client_raw(&p, raw, sizeof raw);
        CHECK(n == 2 + ovh(&t));
        CHECK(open_rec(&t, raw, n, &q, &ql) == KL_TREC_ALERT && ql == 2 && q[0] == 1 && q[1] == 0);
        ERR_clear_error();
        /* wipe leaves nothing: keys, ivs, traffic secrets */
        kl_trec_wipe(&t);
        CHECK(all_zero(&t, sizeof t));
        pair_free(&p);

        /* resumption with the ticket (PSK): handed off the same way, new ticket counted */
        kl_where = "TLS 1.3 resumed";
        if (!sess || !SSL_SESSION_is_resumable(sess)) {
            fprintf(stderr, "%s: no resumable session from the ticket\n", suite);
            kl_fails++;
        } else if (!pair13(&p, sctx, suite, &t, 0, sess)) {
            CHECK(SSL_session_reused(p.s) == 1);
            handoff13(&p, &t, suite, md, 1);
            client_to_us(&p, &t, s5, 6, 3, "resumed");
            us_to_client(&p, &t, 20000, "resumed");
            kl_trec_wipe(&t);
            SSL_set_shutdown(p.c, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
            pair_free(&p);
        }
        /* the client's first record right behind its Finished: the server left it unread
         * (ours, record 0), or read ahead (no hand-off) */
        for (int ahead = 0; ahead < 2 && sess; ahead++) {
            early_write = 1;
            srv_read_ahead = ahead;
            int rc = pair13(&p, sctx, suite, &t, 0, sess);
            early_write = srv_read_ahead = 0;
            if (rc) continue;
            if (ahead) {
                CHECK(t.got_secrets == 3);
                CHECK(kl_trec_from_ssl(&t, p.s) == 1 && all_zero(&t, sizeof t));
                char b5[8];
                CHECK(SSL_read(p.s, b5, sizeof b5) == 5 && !memcmp(b5, "early", 5));
            } else {
                CHECK(kl_trec_from_ssl(&t, p.s) == 0 && t.rd.seq == 0);
                uint8_t rest[256];
                int rn = BIO_read(p.s_in, rest, sizeof rest);
                CHECK(rn == 5 + (int)ovh(&t));
                CHECK(rn > 0 && open_rec(&t, rest, (size_t)rn, &q, &ql) == KL_TREC_APPDATA &&
                      ql == 5 && !memcmp(q, "early", 5));
                kl_trec_wipe(&t);
            }
            SSL_set_shutdown(p.c, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
            pair_free(&p);
        }
        SSL_SESSION_free(sess);

        /* max_fragment_length 512 and 1024: a ticket bigger than that goes out as several
         * records, each taking a sequence number; either the hand-off knows (the client
         * reads our records) or the connection stays with OpenSSL */
        const uint8_t modes[] = {TLSEXT_max_fragment_length_512, TLSEXT_max_fragment_length_1024};
        for (int m = 0; m < 2; m++) {
            size_t mf = m ? 1024 : 512;
            snprintf(where, sizeof where, "%s, max_fragment_length %zu", suite, mf);
            kl_where = where;
            if (pair13(&p, sctx, suite, &t, modes[m], NULL)) continue;
            CHECK(t.got_secrets == 3 && tickets_made == 1 && t.tickets >= 1);
            int rc = kl_trec_from_ssl(&t, p.s);
            CHECK(rc == 0 || rc == 1);
            if (rc == 0) {
                CHECK(t.max_frag == mf);
                SSL_free(p.s);
                p.s = NULL;
                us_to_client(&p, &t, mf, "one full record");
                us_to_client(&p, &t, 10000, "10000 bytes in max_fragment_length records");
                CHECK(kl_trec_seal(&t, &trx, KL_TREC_APPDATA, big_a, mf + 1, raw) == 0);
                const size_t cs[] = {mf, 3000};
                client_to_us(&p, &t, cs, 2, 0, "max_fragment_length, client records");
            } else {
                CHECK(all_zero(&t, sizeof t));
            }
            kl_trec_wipe(&t);
            pair_free(&p);
        }
        /* a client that pads its records (SSL_CTX_set_block_padding) */
        kl_where = "TLS 1.3 padded client";
        cli_padding = 256;
        int rc = pair13(&p, sctx, suite, &t, 0, NULL);
        cli_padding = 0;
        if (!rc) {
            handoff13(&p, &t, suite, md, 1);
            n = client_record(&p, (const uint8_t *)"x", 1, raw, sizeof raw);
            CHECK(n == KL_TREC_HDR + 256 + KL_TREC_TAG); /* really padded */
            CHECK(open_rec(&t, raw, n, &q, &ql) == KL_TREC_APPDATA && ql == 1 && q[0] == 'x');
            client_to_us(&p, &t, s5, 6, 0, "padded records");
            us_to_client(&p, &t, 3000, "padded client");
            kl_trec_wipe(&t);
            pair_free(&p);
        }
        /* a HelloRetryRequest (the client's first key share is X25519, the server takes
         * only P-256): the middlebox change_cipher_spec records and the second ClientHello
         * change nothing of the records after the handshake */
        kl_where = "TLS 1.3 after a HelloRetryRequest";
        SSL_CTX_set1_groups_list(sctx, "P-256");
        cli_groups = "X25519:P-256";
        rc = pair13(&p, sctx, suite, &t, 0, NULL);
        cli_groups = NULL;
        if (!rc) {
            CHECK(client_hellos == 2);
            handoff13(&p, &t, suite, md, 1);
            us_to_client(&p, &t, 2000, "after a HelloRetryRequest");
            client_to_us(&p, &t, s5, 6, 0, "after a HelloRetryRequest");
            kl_trec_wipe(&t);
            pair_free(&p);
        }
        SSL_CTX_free(sctx);
    }
    kl_where = "";
}

/* TLS 1.3 connections that stay with OpenSSL: 1 and t wiped (its secrets too) */
static void stays13(void)
{
    struct pair p;
    struct kl_trec t;
    SSL_CTX *sctx = server_ctx13(1, 1);
    /* CHACHA20: the secrets were seen, the suite is not ours */
    kl_where = "TLS 1.3 CHACHA20";
    if (sctx && !pair13(&p, sctx, "TLS_CHACHA20_POLY1305_SHA256", &t, 0, NULL)) {
        CHECK(t.got_secrets == 3);
        CHECK(kl_trec_from_ssl(&t, p.s) == 1 && all_zero(&t, sizeof t));
        CHECK(SSL_write(p.c, "ping", 4) == 4);
        carry(p.c_out, p.s_in);
        char b4[8];
        CHECK(SSL_read(p.s, b4, sizeof b4) == 4 && !memcmp(b4, "ping", 4));
        pair_free(&p);
    }
    /* the server's secret never reached the key log */
    kl_where = "TLS 1.3, half the key log";
    keylog_client_only = 1;
    if (sctx && !pair13(&p, sctx, S13_128, &t, 0, NULL)) {
        CHECK(t.got_secrets == 1);
        CHECK(kl_trec_from_ssl(&t, p.s) == 1 && all_zero(&t, sizeof t));
        pair_free(&p);
    }
    keylog_client_only = 0;
    SSL_CTX_free(sctx);
    /* no key log hook at all */
    kl_where = "TLS 1.3, no key log";
    sctx = server_ctx13(1, 0);
    if (sctx && !pair13(&p, sctx, S13_256, &t, 0, NULL)) {
        CHECK(t.got_secrets == 0);
        CHECK(kl_trec_from_ssl(&t, p.s) == 1 && all_zero(&t, sizeof t));
        pair_free(&p);
    }
    SSL_CTX_free(sctx);

    /* key log lines that are not the two traffic secrets, or malformed: ignored */
    kl_where = "key log lines";
    char rnd[65], s32[65], s48[97], line[300];
    memset(rnd, 'a', 64);
    rnd[64] = 0;
    for (int i = 0; i < 64; i++)
        s32[i] = "0123456789abcdef"[i % 16];
    s32[64] = 0;
    for (int i = 0; i < 96; i++)
        s48[i] = "fedcba9876543210"[i % 16];
    s48[96] = 0;
    const char *junk[] = {
        "",
        "CLIENT_TRAFFIC_SECRET_0",
        "CLIENT_TRAFFIC_SECRET_0 ",
        "CLIENT_TRAFFIC_SECRET_0 @",
        "CLIENT_TRAFFIC_SECRET_0 @ ",
        "CLIENT_TRAFFIC_SECRET_0 @ 0123",
        "CLIENT_TRAFFIC_SECRET_0 @ @0",
        "CLIENT_TRAFFIC_SECRET_0 @ @g",
        "CLIENT_TRAFFIC_SECRET_0 @ @00",
        "CLIENT_TRAFFIC_SECRET_0 @ @@",
        "CLIENT_TRAFFIC_SECRET_0 abc @",
        "CLIENT_TRAFFIC_SECRET_0  @ @",
        "CLIENT_TRAFFIC_SECRET_1 @ @",
        "CLIENT_HANDSHAKE_TRAFFIC_SECRET @ @",
        "SERVER_HANDSHAKE_TRAFFIC_SECRET @ @",
        "EXPORTER_SECRET @ @",
        "CLIENT_RANDOM @ @",
        "client_traffic_secret_0 @ @",
        "XCLIENT_TRAFFIC_SECRET_0 @ @",
    };
    memset(&t, 0, sizeof t);
    for (size_t i = 0; i < sizeof junk / sizeof junk[0]; i++) {
        /* each @: the client random first, then the secret */
        size_t o = 0;
        for (const char *c = junk[i]; *c && o < sizeof line - 100; c++) {
            const char *sub = *c == '@' ? (c == strchr(junk[i], '@') ? rnd : s32) : NULL;
            if (sub) {
                memcpy(line + o, sub, strlen(sub));
                o += strlen(sub);
            } else {
                line[o++] = *c;
            }
        }
        line[o] = 0;
        kl_trec_keylog(&t, line);
        if (!all_zero(&t, sizeof t)) {
            fprintf(stderr, "key log line %zu changed t\n", i);
            kl_fails++;
            memset(&t, 0, sizeof t);
        }
    }
    /* the two secrets from one hash are kept; one of another hash spoils the pair */
    uint8_t want[48];
    snprintf(line, sizeof line, "CLIENT_TRAFFIC_SECRET_0 %s %s", rnd, s32);
    kl_trec_keylog(&t, line);
    CHECK(t.got_secrets == 1 && t.secret_len == 32 && unhex(s32, want, sizeof want) == 32 &&
          !memcmp(t.rd.secret, want, 32));
    snprintf(line, sizeof line, "SERVER_TRAFFIC_SECRET_0 %s %s", rnd, s48);
    kl_trec_keylog(&t, line);
    CHECK(t.got_secrets != 3);
    memset(&t, 0, sizeof t);
    snprintf(line, sizeof line, "SERVER_TRAFFIC_SECRET_0 %s %s", rnd, s48);
    kl_trec_keylog(&t, line);
    CHECK(t.got_secrets == 2 && t.secret_len == 48 && unhex(s48, want, sizeof want) == 48 &&
          !memcmp(t.wr.secret, want, 48));
    kl_trec_wipe(&t);

    /* kl_trec_msg: only records we write after our Finished count; reads never; a count
     * that no longer fits spoils the hand-off instead of wrapping */
    kl_where = "record counting";
    const uint8_t hdr[5] = {23, 3, 3, 0, 20}, fin[4] = {SSL3_MT_FINISHED, 0, 0, 32},
                  nst[4] = {SSL3_MT_NEWSESSION_TICKET, 0, 1, 0};
    memset(&t, 0, sizeof t);
    t.got_secrets = 3;
    kl_trec_msg(&t, 1, SSL3_RT_HEADER, hdr, sizeof hdr);    /* e.g. our Certificate's record */
    kl_trec_msg(&t, 0, SSL3_RT_HANDSHAKE, fin, sizeof fin); /* the client's Finished: read */
    kl_trec_msg(&t, 1, SSL3_RT_HEADER, hdr, sizeof hdr);    /* our Finished's record */
    CHECK(t.tickets == 0);
    kl_trec_msg(&t, 1, SSL3_RT_HANDSHAKE, fin, sizeof fin); /* our Finished, written */
    kl_trec_msg(&t, 0, SSL3_RT_HEADER, hdr, sizeof hdr);    /* a record read: not ours */
    CHECK(t.tickets == 0);
    for (int i = 0; i < 3; i++) /* one ticket over three records */
        kl_trec_msg(&t, 1, SSL3_RT_HEADER, hdr, sizeof hdr);
    kl_trec_msg(&t, 1, SSL3_RT_HANDSHAKE, nst, sizeof nst);
    kl_trec_msg(&t, 1, SSL3_RT_INNER_CONTENT_TYPE, "\x16", 1);
    CHECK(t.tickets == 3 && t.got_secrets == 3);
    for (int i = 3; i < 255; i++)
        kl_trec_msg(&t, 1, SSL3_RT_HEADER, hdr, sizeof hdr);
    CHECK(t.tickets == 255 && t.got_secrets == 3);
    kl_trec_msg(&t, 1, SSL3_RT_HEADER, hdr, sizeof hdr);
    CHECK(t.got_secrets != 3);                     /* kl_trec_from_ssl will not hand it off */
    kl_trec_msg(&t, 1, SSL3_RT_HANDSHAKE, fin, 0); /* an empty message: no crash, nothing */
    kl_trec_wipe(&t);
    kl_where = "";
}

int main(void)
{
    srv_key = EVP_EC_gen("P-256");
    cli_key = EVP_EC_gen("P-256");
    srv_cert = srv_key ? self_signed(srv_key, "localhost") : NULL;
    cli_cert = cli_key ? self_signed(cli_key, "device") : NULL;
    srv_ctx = srv_cert && cli_cert ? server_ctx() : NULL;
    if (!srv_ctx || kl_trec_ctx_init(&trx)) {
        fprintf(stderr, "cannot set up keys and certificates\n");
        return 1;
    }
    suite(GCM128, 16);
    suite(GCM256, 32);
    stays("ECDHE-ECDSA-CHACHA20-POLY1305", 0);
    stays("ECDHE-ECDSA-AES128-CCM", 0);
    stays(GCM128, 1);
    suite13(S13_128, EVP_sha256());
    suite13(S13_256, EVP_sha384());
    stays13();

    /* a handshake not finished yet is never handed off */
    struct pair p;
    struct kl_trec t;
    memset(&p, 0, sizeof p);
    p.sctx = SSL_CTX_new(TLS_server_method());
    SSL_CTX_use_certificate(p.sctx, srv_cert);
    SSL_CTX_use_PrivateKey(p.sctx, srv_key);
    p.s = SSL_new(p.sctx);
    SSL_set_accept_state(p.s);
    CHECK(kl_trec_from_ssl(&t, p.s) == 1);
    pair_free(&p);

    kl_trec_ctx_free(&trx);
    SSL_CTX_free(srv_ctx);
    X509_free(srv_cert);
    X509_free(cli_cert);
    EVP_PKEY_free(srv_key);
    EVP_PKEY_free(cli_key);
    if (kl_fails) {
        fprintf(stderr, "test_tls_record: %d checks failed\n", kl_fails);
        return 1;
    }
    printf("tls_record: TLS 1.2 and 1.3, both GCM suites against OpenSSL, KeyUpdate, hostile "
           "records refused\n");
    return 0;
}
