/*
 * keylinkd configuration: defaults, then a `key = value` file (--config), then flags.
 * docs/registry.md ("Running keylinkd") lists every key; `keylinkd --help` too.
 */
#ifndef KL_CLOUD_CONFIG_H
#define KL_CLOUD_CONFIG_H

#include <stddef.h>

#define KL_CFG_MAX_NAMES 16

struct kl_config {
    char data_dir[1024];
    char listen_host[256];
    int listen_port;
    char api_host[64];
    int api_port;
    char region[32];
    char account_id[16];
    char endpoint_address[256]; /* "" = first server name */
    char names[KL_CFG_MAX_NAMES][254];
    size_t n_names; /* 0 = localhost, 127.0.0.1 and the host name */
    size_t max_body, max_import;
    int api_threads;
    int api_tls; /* serve the control API over HTTPS with server.pem */
    /* data plane (cloud/dataplane.h) */
    char dev_host[256]; /* plaintext development listener, "" = off */
    int dev_port;
    char dev_policy[129];    /* policy for dev clients, "" = allow everything */
    char audience[256];      /* JWT / challenge aud, "" = endpoint address */
    int connect_timeout_ms;  /* TLS handshake + CONNECT deadline */
    size_t max_packet;       /* largest MQTT packet */
    int dp_threads;          /* 0 = one per core */
    int tls_records_openssl; /* 1: OpenSSL keeps every record layer (no hand-off) */
    int help, version;
};

void kl_config_defaults(struct kl_config *c);
/* Parses argv (after defaults and an optional --config file named in argv). 0 on
 * success; -1 with a message in msg. */
int kl_config_parse(struct kl_config *c, int argc, char **argv, char *msg, size_t msg_len);
/* Fills names with localhost, 127.0.0.1 and gethostname() when none were configured. */
void kl_config_default_names(struct kl_config *c);
/* "HOST:PORT" (IPv6 as [addr]:port) into host/port; 0 on success. */
int kl_config_hostport(const char *s, char *host, size_t hn, int *port);

#endif
