/*
 * Shared by the TLS end-to-end tests: a temp dir with a test PKI made by the openssl
 * CLI, a chip over mem: provisioned through the kl_se_* API, openssl s_server on a free
 * loopback port, and a transport wrapper that records what the client sends and can
 * corrupt what it receives (a man in the middle inside the process).
 */
#ifndef KL_TESTS_TLS_FIXTURE_H
#define KL_TESTS_TLS_FIXTURE_H

#define _GNU_SOURCE
#include "kl_test.h"

#include <arpa/inet.h>
#include <ftw.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "kl_test_ossl.h"
#include "keylink/se.h"
#include "keylink/se_tls.h"
#include "keylink/tls.h"
#include "keylink/tls_posix.h"
#include "transport_mem.h"

static char fx_dir[64];

static void fx_path(char *out, size_t cap, const char *name)
{
    int n = snprintf(out, cap, "%s/%s", fx_dir, name);
    if (n < 0 || (size_t)n >= cap) {
        fprintf(stderr, "path too long: %s\n", name);
        exit(1);
    }
}

/* Runs a shell command in the temp dir; exits the test if it fails. */
__attribute__((format(printf, 1, 2))) static void sh(const char *fmt, ...)
{
    char cmd[2048], full[2200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    snprintf(full, sizeof full, "cd '%s' && { %s ; } >>pki.log 2>&1", fx_dir, cmd);
    if (system(full) != 0) {
        fprintf(stderr, "setup command failed: %s (see %s/pki.log)\n", cmd, fx_dir);
        exit(1);
    }
}

/* A root (CA:TRUE) and a server certificate for localhost signed by it. */
static void make_server_pki(const char *root, const char *srv, const char *cn)
{
    sh("openssl ecparam -name prime256v1 -genkey -noout -out %s.key", root);
    sh("openssl req -x509 -new -key %s.key -subj '/CN=%s' -days 30 -out %s.pem "
       "-addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign",
       root, cn, root);
    sh("openssl ecparam -name prime256v1 -genkey -noout -out %s.key", srv);
    sh("openssl req -new -key %s.key -subj '/CN=localhost' -out %s.csr", srv, srv);
    sh("printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\\nextendedKeyUsage=serverAuth\\n' "
       ">%s.ext",
       srv);
    sh("openssl x509 -req -in %s.csr -CA %s.pem -CAkey %s.key -CAcreateserial -days 30 "
       "-extfile %s.ext -out %s.pem",
       srv, root, root, srv, srv);
}

static EVP_PKEY *load_key(const char *name)
{
    char p[128];
    fx_path(p, sizeof p, name);
    FILE *f = fopen(p, "r");
    EVP_PKEY *k = f ? PEM_read_PrivateKey(f, NULL, NULL, NULL) : NULL;
    if (f) fclose(f);
    return k;
}

static X509 *load_cert(const char *name)
{
    char p[128];
    fx_path(p, sizeof p, name);
    FILE *f = fopen(p, "r");
    X509 *x = f ? PEM_read_X509(f, NULL, NULL, NULL) : NULL;
    if (f) fclose(f);
    return x;
}

/* DER of a PEM certificate file. */
static size_t cert_der(const char *name, uint8_t *out, size_t cap)
{
    X509 *x = load_cert(name);
    size_t r = kl_test_x509_der(x, out, cap);
    X509_free(x);
    return r;
}

/* Issues a certificate for the public key pub (X||Y, or NULL: a fresh key) with
 * validity [now+from_s, now+to_s], signed by ca; writes PEM to out (and the fresh
 * key to out.key). */
static void issue(const char *ca, const uint8_t *pub, const char *cn, const char *san,
                  const char *eku, long from_s, long to_s, const char *out)
{
    char n[96];
    snprintf(n, sizeof n, "%s.pem", ca);
    X509 *cax = load_cert(n);
    snprintf(n, sizeof n, "%s.key", ca);
    EVP_PKEY *cak = load_key(n);
    EVP_PKEY *k = NULL;
    if (pub) {
        uint8_t pt[65];
        pt[0] = 4;
        memcpy(pt + 1, pub, 64);
        EVP_PKEY_CTX *pc = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
        OSSL_PARAM prm[3] = {OSSL_PARAM_construct_utf8_string("group", (char *)"prime256v1", 0),
                             OSSL_PARAM_construct_octet_string("pub", pt, sizeof pt),
                             OSSL_PARAM_END};
        if (!pc || EVP_PKEY_fromdata_init(pc) <= 0 ||
            EVP_PKEY_fromdata(pc, &k, EVP_PKEY_PUBLIC_KEY, prm) <= 0)
            k = NULL;
        EVP_PKEY_CTX_free(pc);
    } else {
        k = EVP_EC_gen("P-256");
        char kp[128];
        snprintf(n, sizeof n, "%s.key", out);
        fx_path(kp, sizeof kp, n);
        FILE *f = fopen(kp, "w");
        if (f) {
            PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL);
            fclose(f);
        }
    }
    if (!cax || !cak || !k) {
        fprintf(stderr, "issue(%s): setup failed\n", out);
        exit(1);
    }
    X509 *x = X509_new();
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), (long)time(NULL) & 0xFFFFFF);
    X509_gmtime_adj(X509_getm_notBefore(x), from_s);
    X509_gmtime_adj(X509_getm_notAfter(x), to_s);
    X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
                               (const unsigned char *)cn, -1, -1, 0);
    X509_set_issuer_name(x, X509_get_subject_name(cax));
    X509_set_pubkey(x, k);
    X509V3_CTX ctx;
    X509V3_set_ctx(&ctx, cax, x, NULL, NULL, 0);
    const char *ext[][2] = {{"basicConstraints", "critical,CA:FALSE"},
                            {"subjectAltName", san},
                            {"extendedKeyUsage", eku}};
    for (size_t i = 0; i < 3; i++) {
        if (!ext[i][1]) continue;
        X509_EXTENSION *e = X509V3_EXT_conf(NULL, &ctx, ext[i][0], ext[i][1]);
        if (e) X509_add_ext(x, e, -1);
        X509_EXTENSION_free(e);
    }
    X509_sign(x, cak, EVP_sha256());
    char op[128];
    snprintf(n, sizeof n, "%s.pem", out);
    fx_path(op, sizeof op, n);
    FILE *f = fopen(op, "w");
    if (f) {
        PEM_write_X509(f, x);
        fclose(f);
    }
    X509_free(x);
    X509_free(cax);
    EVP_PKEY_free(cak);
    EVP_PKEY_free(k);
}

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t l = sizeof a;
    int port = -1;
    if (bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &l) == 0)
        port = ntohs(a.sin_port);
    close(fd);
    return port;
}

static pid_t server_pid = -1;
static int server_port;

static void server_stop(void)
{
    if (server_pid > 0) {
        kill(server_pid, SIGTERM);
        waitpid(server_pid, NULL, 0);
        server_pid = -1;
    }
}

/* openssl s_server -tls1_2 with extra arguments (NULL-terminated), waits for its port. */
static void server_start(const char *first, ...)
{
    server_stop();
    server_port = free_port();
    char port[16], log[128];
    snprintf(port, sizeof port, "%d", server_port);
    fx_path(log, sizeof log, "s_server.log");
    const char *argv[40] = {"openssl", "s_server", "-tls1_2", "-quiet", "-accept", port};
    int n = 6;
    va_list ap;
    va_start(ap, first);
    for (const char *a = first; a && n < 38; a = va_arg(ap, const char *))
        argv[n++] = a;
    va_end(ap);
    argv[n] = NULL;
    server_pid = fork();
    if (server_pid == 0) {
        if (chdir(fx_dir) != 0) _exit(127);
        FILE *f = fopen(log, "a");
        if (f) {
            dup2(fileno(f), 1);
            dup2(fileno(f), 2);
        }
        execvp("openssl", (char *const *)argv);
        _exit(127);
    }
    for (int i = 0; i < 100; i++) { /* up to 5 s for the port to open */
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in a;
        memset(&a, 0, sizeof a);
        a.sin_family = AF_INET;
        a.sin_port = htons((uint16_t)server_port);
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        int ok = connect(fd, (struct sockaddr *)&a, sizeof a) == 0;
        close(fd);
        if (ok) return;
        usleep(50000);
    }
    fprintf(stderr, "s_server did not start (see %s)\n", log);
    exit(1);
}

/* ---- recording / corrupting transport ---- */
struct mitm {
    struct kl_tls_posix sock;
    uint8_t sent[65536];
    size_t sent_len;
    /* corruption of the server's stream: flip bit `flip_bit` of received byte number
     * flip_at (counted over the whole stream), if flip_at != 0 */
    size_t recv_count, flip_at;
    int flip_bit;
    /* find the first server record of type flip_type after the handshake and flip a
     * bit in its body (set by the test after the handshake) */
    int flip_type;
    /* cut: report the connection closed after this many received bytes (0: never) */
    size_t cut_at;
    /* shorten the first handshake message of the stream by one in its header */
    int shorten_first;
    /* everything received, as received (before any corruption) */
    uint8_t got[32768];
    size_t got_len;
    /* record parser state for flip_type */
    uint8_t hdr[5];
    size_t hdr_got, body_left;
};

static kl_status mitm_send(void *ctx, const uint8_t *b, size_t n)
{
    struct mitm *m = ctx;
    size_t k = n < sizeof m->sent - m->sent_len ? n : sizeof m->sent - m->sent_len;
    memcpy(m->sent + m->sent_len, b, k);
    m->sent_len += k;
    struct kl_tls_transport tr;
    kl_tls_posix_transport(&m->sock, &tr);
    return tr.send(tr.ctx, b, n);
}

static kl_status mitm_recv(void *ctx, uint8_t *b, size_t cap, size_t *got, uint32_t to)
{
    struct mitm *m = ctx;
    struct kl_tls_transport tr;
    kl_tls_posix_transport(&m->sock, &tr);
    if (m->cut_at && m->recv_count >= m->cut_at) return KL_E_CLOSED;
    if (m->cut_at && cap > m->cut_at - m->recv_count) cap = m->cut_at - m->recv_count;
    kl_status st = tr.recv(tr.ctx, b, cap, got, to);
    if (st != KL_OK) return st;
    size_t keep = *got < sizeof m->got - m->got_len ? *got : sizeof m->got - m->got_len;
    memcpy(m->got + m->got_len, b, keep);
    m->got_len += keep;
    for (size_t i = 0; i < *got; i++) {
        size_t pos = m->recv_count + i;
        if (m->shorten_first && pos == 8) { /* record hdr 5 + hs type 1 + len[0..1] */
            b[i] = (uint8_t)(b[i] - 1);
            m->shorten_first = 0;
        }
        if (m->flip_at && pos == m->flip_at) b[i] ^= (uint8_t)(1u << m->flip_bit);
        /* walk records to find a body byte of the wanted type */
        if (m->body_left) {
            m->body_left--;
            if (m->flip_type && m->hdr[0] == m->flip_type && m->body_left == 3) {
                b[i] ^= 0x01;
                m->flip_type = 0;
            }
            continue;
        }
        m->hdr[m->hdr_got++] = b[i];
        if (m->hdr_got == 5) {
            m->body_left = ((size_t)m->hdr[3] << 8) | m->hdr[4];
            m->hdr_got = 0;
        }
    }
    m->recv_count += *got;
    return KL_OK;
}

/* Did the client send any application-data record, or the given bytes, in clear? */
static int sent_appdata(const struct mitm *m)
{
    size_t i = 0;
    while (i + 5 <= m->sent_len) {
        if (m->sent[i] == 23) return 1;
        i += 5 + (((size_t)m->sent[i + 3] << 8) | m->sent[i + 4]);
    }
    return 0;
}

static int sent_contains(const struct mitm *m, const char *s)
{
    size_t n = strlen(s);
    if (m->sent_len < n) return 0;
    for (size_t i = 0; i + n <= m->sent_len; i++)
        if (!memcmp(m->sent + i, s, n)) return 1;
    return 0;
}

static void fx_cleanup(void)
{
    server_stop();
    if (fx_dir[0] && !getenv("KL_KEEP_TMP")) kl_test_rm_tree(fx_dir);
}

static void fx_init(void)
{
    snprintf(fx_dir, sizeof fx_dir, "/tmp/kl-tls-XXXXXX");
    if (!mkdtemp(fx_dir)) {
        perror("mkdtemp");
        exit(1);
    }
    atexit(fx_cleanup);
    signal(SIGPIPE, SIG_IGN);
}

#endif
