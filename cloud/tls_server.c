/* The data plane's TLS server context: TLS 1.2 and 1.3, the endpoint's server certificate,
 * SNI, ALPN (x-amzn-mqtt-ca, mqtt), client certificates requested (not required: JWT and the
 * challenge need none) and checked against the registry by tls_verify.c. */
#include <stdio.h>
#include <string.h>

#include <openssl/err.h>

#include "dataplane.h"

static int alpn_cb(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                   const unsigned char *in, unsigned int inlen, void *arg)
{
    (void)ssl;
    (void)arg;
    static const unsigned char ours[] = "\x0ex-amzn-mqtt-ca\x04mqtt";
    unsigned char *sel = NULL;
    if (SSL_select_next_proto(&sel, outlen, ours, sizeof ours - 1, in, inlen) ==
        OPENSSL_NPN_NEGOTIATED) {
        *out = sel;
        return SSL_TLSEXT_ERR_OK;
    }
    return SSL_TLSEXT_ERR_NOACK; /* no protocol in common: go on without ALPN */
}

static int sni_cb(SSL *ssl, int *alert, void *arg)
{
    (void)alert;
    (void)arg;
    /* one certificate serves every name; the name is kept for the logs (SSL_get_servername) */
    (void)SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
    return SSL_TLSEXT_ERR_OK;
}

/* TLS 1.3 hand-off (tls_record.h): OpenSSL tells the traffic secrets only to a key log
 * callback. Only the two application traffic secrets are kept (in the connection, wiped at
 * its end or when it stays with OpenSSL); nothing is logged. */
static void keylog_cb(const SSL *ssl, const char *line)
{
    struct kl_conn *c = SSL_get_app_data(ssl);
    if (c && SSL_version(ssl) == TLS1_3_VERSION) kl_trec_keylog(&c->trec, line);
}

/* each record written after our TLS 1.3 Finished (the tickets) takes a sequence number */
static void msg_cb(int write_p, int version, int content_type, const void *buf, size_t len,
                   SSL *ssl, void *arg)
{
    (void)version;
    (void)arg;
    struct kl_conn *c = write_p ? SSL_get_app_data(ssl) : NULL;
    if (c && SSL_version(ssl) == TLS1_3_VERSION)
        kl_trec_msg(&c->trec, write_p, content_type, buf, len);
}

SSL_CTX *kl_tls_server_ctx(struct kl_dp *dp, const char *dir, struct kl_reg_err *err)
{
    char cert[1100], key[1100];
    snprintf(cert, sizeof cert, "%s/server.pem", dir);
    snprintf(key, sizeof key, "%s/server.key", dir);
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx) {
        kl_reg_fail(err, KL_REG_INTERNAL, "cannot create the TLS context");
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1 ||
        SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(ctx) != 1) {
        kl_reg_fail(err, KL_REG_INTERNAL, "cannot load the server certificate %s and key %s", cert,
                    key);
        SSL_CTX_free(ctx);
        return NULL;
    }
    /* TLS 1.2 suites for an ECDSA server key, GCM and CCM (what the device library offers) */
    SSL_CTX_set_cipher_list(ctx, "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"
                                 "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-ECDSA-AES128-CCM:"
                                 "ECDHE-ECDSA-AES256-CCM:ECDHE-ECDSA-AES128-CCM8:"
                                 "ECDHE-ECDSA-AES128-SHA256");
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE |
                                 SSL_OP_NO_COMPRESSION);
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ENABLE_PARTIAL_WRITE |
                              SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    SSL_CTX_set_cert_verify_callback(ctx, kl_tls_verify_cb, dp);
    SSL_CTX_set_alpn_select_cb(ctx, alpn_cb, NULL);
    SSL_CTX_set_tlsext_servername_callback(ctx, sni_cb);
    /* resumption keeps the peer certificate; CONNECT re-checks it against the registry */
    SSL_CTX_set_session_id_context(ctx, (const unsigned char *)"keylinkd", 8);
    SSL_CTX_set_num_tickets(ctx, 1);
    /* tickets are stateless: no server-side cache holding every peer certificate */
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    if (!dp->tls_records_openssl) {
        SSL_CTX_set_keylog_callback(ctx, keylog_cb);
        SSL_CTX_set_msg_callback(ctx, msg_cb);
    }
    /* the CertificateRequest names no CAs: which CAs are trusted changes at run time */
    return ctx;
}

int kl_tls_verify_cb(X509_STORE_CTX *xs, void *arg)
{
    struct kl_dp *dp = arg;
    SSL *ssl = X509_STORE_CTX_get_ex_data(xs, SSL_get_ex_data_X509_STORE_CTX_idx());
    struct kl_conn *c = ssl ? SSL_get_app_data(ssl) : NULL;
    X509 *x = X509_STORE_CTX_get0_cert(xs);
    if (!c || !x) return 0;
    c->auth_epoch = atomic_load(&dp->auth_epoch);
    struct kl_principal *p = NULL;
    enum kl_auth_fail f = kl_auth_certificate(dp, x, 1, &p);
    if (c->tls_p) kl_principal_unref(c->tls_p);
    c->tls_p = p;
    c->tls_fail = f;
    /* chain problems end the handshake with the matching alert; the registry state of a
     * certificate from a trusted CA is refused at CONNECT with an MQTT reason code */
    switch (f) {
    case KL_AF_CA_UNKNOWN:
        X509_STORE_CTX_set_error(xs, X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY);
        return 0;
    case KL_AF_CA_INACTIVE:
        X509_STORE_CTX_set_error(xs, X509_V_ERR_CERT_UNTRUSTED);
        return 0;
    case KL_AF_CERT_EXPIRED:
        X509_STORE_CTX_set_error(xs, X509_V_ERR_CERT_HAS_EXPIRED);
        return 0;
    default:
        return 1;
    }
}
