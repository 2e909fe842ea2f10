/* keylinkd: the keylink endpoint (registry, control-plane API, TLS + MQTT data plane). */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "api.h"
#include "config.h"
#include "dataplane.h"
#include "registry.h"
#include "server_pki.h"

static const char help_text[] =
    "NAME\n"
    "    keylinkd - the keylink endpoint: an AWS-IoT-Core-style registry, control API and\n"
    "               TLS + MQTT data plane\n"
    "\n"
    "SYNOPSIS\n"
    "    keylinkd --data-dir DIR [--listen HOST:PORT] [--api HOST:PORT] [--config FILE]\n"
    "             [--server-name NAME]... [--region REGION] [--account-id ID]\n"
    "             [--endpoint-address HOST] [--max-body BYTES] [--max-import BYTES]\n"
    "             [--api-threads N] [--api-tls yes|no] [--dev-listener HOST:PORT]\n"
    "             [--dev-policy NAME]\n"
    "             [--audience AUD] [--connect-timeout MS] [--max-packet BYTES]\n"
    "             [--dp-threads N] [--tls-records keylinkd|openssl]\n"
    "\n"
    "DESCRIPTION\n"
    "    keylinkd keeps the registry of CA certificates, device certificates, things and\n"
    "    IoT policies (SQLite, DIR/registry.db), serves the control-plane HTTP API that\n"
    "    `keylink iot` (the `aws iot` look-alike) talks to, and the data plane: TLS 1.2/1.3\n"
    "    and MQTT 3.1.1/5 for devices whose certificates are registered and ACTIVE\n"
    "    (docs/dataplane.md). Every registry change is on disk before it is acknowledged:\n"
    "    a kill -9 at any instant loses no acknowledged change.\n"
    "\n"
    "    The first start in an empty DIR creates: registry.db (schema migrations run on\n"
    "    every start), server-root-ca.pem (the endpoint's root CA; devices trust it the way\n"
    "    they trust Amazon Root CA 3) with its key server-root-ca.key, server.pem/server.key\n"
    "    (the TLS server certificate for the server names), and admin-token (0600), the\n"
    "    bearer token of the control API. Existing files are kept on later starts.\n"
    "\n"
    "OPTIONS\n"
    "    --data-dir DIR        where state lives (created 0700). Required.\n"
    "    --listen HOST:PORT    data plane (TLS + MQTT) address, default 0.0.0.0:8883\n"
    "                          (port 0 picks a free one, printed on start).\n"
    "    --api HOST:PORT       control API address, default 127.0.0.1:8443 (loopback;\n"
    "                          port 0 picks a free one, printed on start).\n"
    "    --config FILE         read settings from FILE first: one `key = value` a line,\n"
    "                          `#` comments; keys are the long option names without\n"
    "                          dashes in front (data-dir, listen, api, server-name, ...).\n"
    "                          Flags on the command line win.\n"
    "    --server-name NAME    a DNS name or IP address for the server certificate; may be\n"
    "                          repeated. Default: localhost, 127.0.0.1 and this machine's\n"
    "                          host name. Used only when server.pem is made.\n"
    "    --region REGION       region in ARNs, default us-east-1.\n"
    "    --account-id ID       12-digit account in ARNs, default 123456789012.\n"
    "    --endpoint-address H  what describe-endpoint answers, default the first name.\n"
    "    --max-body BYTES      largest JSON request body, default 256K (413 beyond).\n"
    "    --max-import BYTES    largest bulk-import body, default 512M.\n"
    "    --api-threads N       control API worker threads, default 4.\n"
    "    --api-tls yes|no      serve the control API over HTTPS with server.pem (clients\n"
    "                          trust server-root-ca.pem: keylink iot --ca-bundle); default\n"
    "                          no (plain HTTP, meant for loopback).\n"
    "    --dev-listener H:P    a plaintext MQTT listener for development, loopback only;\n"
    "                          default off.\n"
    "    --dev-policy NAME     IoT policy applied to dev-listener clients; default: allow\n"
    "                          everything.\n"
    "    --audience AUD        `aud` that device JWTs and challenge answers must carry;\n"
    "                          default the endpoint address.\n"
    "    --connect-timeout MS  TLS handshake + MQTT CONNECT deadline, default 10000.\n"
    "    --max-packet BYTES    largest MQTT packet, default 128K.\n"
    "    --dp-threads N        data plane worker threads, default one per core.\n"
    "    --tls-records keylinkd|openssl\n"
    "                          who protects TLS 1.2 AES-GCM records once the handshake is\n"
    "                          done: keylinkd (default; the connection's OpenSSL state is\n"
    "                          freed, ~15 KiB less per connection) or openssl (kept).\n"
    "    --help, --version\n"
    "\n"
    "METRICS\n"
    "    GET /metrics on the control API answers Prometheus text without the token.\n"
    "\n"
    "CONTROL API\n"
    "    AWS IoT's REST paths and JSON (docs/api.md), with `Authorization: Bearer TOKEN`\n"
    "    where TOKEN is the content of DIR/admin-token. Errors are AWS-style JSON\n"
    "    {\"__type\": \"ResourceNotFoundException\", \"message\": ...} with the matching\n"
    "    HTTP status.\n"
    "\n"
    "SIGNALS\n"
    "    SIGINT and SIGTERM stop the daemon cleanly.\n"
    "\n"
    "FILES\n"
    "    DIR/registry.db, DIR/server-root-ca.pem, DIR/server-root-ca.key, DIR/server.pem,\n"
    "    DIR/server.key, DIR/admin-token, DIR/lock\n"
    "\n"
    "EXIT STATUS\n"
    "    0 after a clean stop, 1 on a start-up error, 2 on a usage error.\n"
    "\n"
    "SEE ALSO\n"
    "    keylink iot --help, docs/registry.md, docs/api.md\n";

/* A whole small text file (the server certificate or key), malloc'd, or NULL. */
static char *slurp(const char *dir, const char *name)
{
    char path[1100];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "r");
    if (!f) return NULL;
    char *buf = calloc(1, 65537);
    size_t n = buf ? fread(buf, 1, 65536, f) : 0;
    int more = fgetc(f) != EOF;
    fclose(f);
    if (!buf || n == 0 || more) {
        free(buf);
        return NULL;
    }
    return buf;
}

static int lock_dir(const char *dir)
{
    char path[1100];
    snprintf(path, sizeof path, "%s/lock", dir);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0 || flock(fd, LOCK_EX | LOCK_NB)) {
        if (fd >= 0) close(fd);
        return -1;
    }
    return fd; /* held until exit */
}

int main(int argc, char **argv)
{
    struct kl_config cfg;
    char msg[512];
    kl_config_defaults(&cfg);
    if (kl_config_parse(&cfg, argc, argv, msg, sizeof msg)) {
        fprintf(stderr, "keylinkd: %s\n(see keylinkd --help)\n", msg);
        return 2;
    }
    if (cfg.help) {
        fputs(help_text, stdout);
        return 0;
    }
    if (cfg.version) {
        printf("keylinkd 0.1.0 (registry schema %d)\n", kl_registry_schema_version());
        return 0;
    }
    if (!cfg.data_dir[0]) {
        fprintf(stderr, "keylinkd: --data-dir is required (see keylinkd --help)\n");
        return 2;
    }
    kl_config_default_names(&cfg);
    if (mkdir(cfg.data_dir, 0700) && errno != EEXIST) {
        fprintf(stderr, "keylinkd: cannot create %s: %s\n", cfg.data_dir, strerror(errno));
        return 1;
    }
    if (lock_dir(cfg.data_dir) < 0) {
        fprintf(stderr, "keylinkd: %s is in use by another keylinkd\n", cfg.data_dir);
        return 1;
    }
    /* signals are taken by sigwait below; block them before any thread starts */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    struct kl_reg_err err = {0};
    char dbpath[1100];
    snprintf(dbpath, sizeof dbpath, "%s/registry.db", cfg.data_dir);
    struct kl_registry_opts ro = {cfg.region, cfg.account_id};
    struct kl_registry *reg = NULL;
    if (kl_registry_open(dbpath, &ro, &reg, &err)) {
        fprintf(stderr, "keylinkd: %s\n", err.msg);
        return 1;
    }
    const char *names[KL_CFG_MAX_NAMES];
    for (size_t i = 0; i < cfg.n_names; i++)
        names[i] = cfg.names[i];
    char token[65];
    if (kl_server_pki_ensure(cfg.data_dir, names, cfg.n_names, &err) ||
        kl_admin_token_ensure(cfg.data_dir, token, &err)) {
        fprintf(stderr, "keylinkd: %s\n", err.msg);
        kl_registry_close(reg);
        return 1;
    }
    const char *endpoint = cfg.endpoint_address[0] ? cfg.endpoint_address : cfg.names[0];
    /* the data plane sets the registry hook, so it starts before anything can change it */
    struct kl_dp_cfg dc = {
        .data_dir = cfg.data_dir,
        .listen_host = cfg.listen_host,
        .listen_port = cfg.listen_port,
        .dev_host = cfg.dev_host[0] ? cfg.dev_host : NULL,
        .dev_port = cfg.dev_port,
        .dev_policy = cfg.dev_policy[0] ? cfg.dev_policy : NULL,
        .audience = cfg.audience[0] ? cfg.audience : NULL,
        .endpoint_address = endpoint,
        .threads = cfg.dp_threads,
        .connect_timeout_ms = cfg.connect_timeout_ms,
        .max_packet = cfg.max_packet,
        .tls_records_openssl = cfg.tls_records_openssl,
    };
    struct kl_dp *dp = NULL;
    if (kl_dp_start(reg, &dc, &dp, &err)) {
        OPENSSL_cleanse(token, sizeof token);
        fprintf(stderr, "keylinkd: %s\n", err.msg);
        kl_registry_close(reg);
        return 1;
    }
    struct kl_api_cfg ac = {
        .host = cfg.api_host,
        .port = cfg.api_port,
        .token = token,
        .max_body = cfg.max_body,
        .max_import = cfg.max_import,
        .endpoint_address = endpoint,
        .threads = cfg.api_threads,
        .metrics = kl_dp_metrics_text,
        .metrics_ctx = dp,
    };
    char *tls_cert = NULL, *tls_key = NULL;
    if (cfg.api_tls) {
        tls_cert = slurp(cfg.data_dir, "server.pem");
        tls_key = slurp(cfg.data_dir, "server.key");
        if (!tls_cert || !tls_key) {
            fprintf(stderr, "keylinkd: --api-tls: cannot read server.pem / server.key\n");
            free(tls_cert);
            free(tls_key);
            kl_dp_stop(dp);
            kl_registry_close(reg);
            return 1;
        }
        ac.tls_cert_pem = tls_cert;
        ac.tls_key_pem = tls_key;
    }
    if (!cfg.api_tls && strncmp(cfg.api_host, "127.", 4))
        fprintf(stderr,
                "keylinkd: warning: the control API on %s is not loopback; it speaks plain "
                "HTTP, so the bearer token crosses the network in clear\n",
                cfg.api_host);
    struct kl_api *api = NULL;
    kl_reg_rc rc = kl_api_start(reg, &ac, &api, &err);
    OPENSSL_cleanse(token, sizeof token);
    if (tls_key) OPENSSL_cleanse(tls_key, strlen(tls_key));
    free(tls_key);
    free(tls_cert);
    if (rc) {
        fprintf(stderr, "keylinkd: %s\n", err.msg);
        kl_dp_stop(dp);
        kl_registry_close(reg);
        return 1;
    }
    fprintf(stderr,
            "keylinkd: control API on %s://%s:%d (token in %s/admin-token); data plane on "
            "%s:%d\n",
            cfg.api_tls ? "https" : "http", cfg.api_host, kl_api_port(api), cfg.data_dir,
            cfg.listen_host, kl_dp_port(dp));
    if (kl_dp_dev_port(dp))
        fprintf(stderr, "keylinkd: development listener (plaintext) on %s:%d\n", cfg.dev_host,
                kl_dp_dev_port(dp));

    int sig = 0;
    sigwait(&set, &sig);
    fprintf(stderr, "keylinkd: signal %d, stopping\n", sig);
    kl_api_stop(api);
    kl_dp_stop(dp);
    kl_registry_close(reg);
    return 0;
}
