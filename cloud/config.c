/* keylinkd configuration: defaults, `key = value` file, command-line flags. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api.h"
#include "config.h"

void kl_config_defaults(struct kl_config *c)
{
    memset(c, 0, sizeof *c);
    snprintf(c->listen_host, sizeof c->listen_host, "0.0.0.0");
    c->listen_port = 8883;
    snprintf(c->api_host, sizeof c->api_host, "127.0.0.1");
    c->api_port = 8443;
    snprintf(c->region, sizeof c->region, "us-east-1");
    snprintf(c->account_id, sizeof c->account_id, "123456789012");
    c->max_body = KL_API_MAX_BODY_DEFAULT;
    c->max_import = KL_API_MAX_IMPORT_DEFAULT;
    c->api_threads = 4;
    c->connect_timeout_ms = 10000;
    c->max_packet = 128 * 1024;
}

int kl_config_hostport(const char *s, char *host, size_t hn, int *port)
{
    const char *colon;
    if (s[0] == '[') {
        const char *end = strchr(s, ']');
        if (!end || end[1] != ':') return -1;
        if ((size_t)(end - s - 1) >= hn) return -1;
        memcpy(host, s + 1, (size_t)(end - s - 1));
        host[end - s - 1] = 0;
        colon = end + 1;
    } else {
        colon = strrchr(s, ':');
        if (!colon || (size_t)(colon - s) >= hn || colon == s) return -1;
        memcpy(host, s, (size_t)(colon - s));
        host[colon - s] = 0;
    }
    char *end;
    errno = 0;
    long p = strtol(colon + 1, &end, 10);
    if (!colon[1] || *end || errno || p < 0 || p > 65535) return -1;
    *port = (int)p;
    return 0;
}

static int copy(char *dst, size_t n, const char *v)
{
    if (strlen(v) >= n) return -1;
    memcpy(dst, v, strlen(v) + 1);
    return 0;
}

static int size_of(const char *v, size_t *out)
{
    char *end;
    errno = 0;
    unsigned long long x = strtoull(v, &end, 10);
    if (!*v || *v == '-' || errno || x == 0) return -1;
    if (*end == 'K' || *end == 'k')
        x <<= 10, end++;
    else if (*end == 'M' || *end == 'm')
        x <<= 20, end++;
    if (*end || x > (1ull << 32)) return -1;
    *out = (size_t)x;
    return 0;
}

/* One setting by name; used by the file and by the flags. */
static int set(struct kl_config *c, const char *key, const char *v, char *msg, size_t n)
{
    int bad = 0;
    if (!strcmp(key, "data-dir"))
        bad = copy(c->data_dir, sizeof c->data_dir, v);
    else if (!strcmp(key, "listen"))
        bad = kl_config_hostport(v, c->listen_host, sizeof c->listen_host, &c->listen_port);
    else if (!strcmp(key, "api"))
        bad = kl_config_hostport(v, c->api_host, sizeof c->api_host, &c->api_port);
    else if (!strcmp(key, "region"))
        bad = copy(c->region, sizeof c->region, v);
    else if (!strcmp(key, "account-id"))
        bad = copy(c->account_id, sizeof c->account_id, v);
    else if (!strcmp(key, "endpoint-address"))
        bad = copy(c->endpoint_address, sizeof c->endpoint_address, v);
    else if (!strcmp(key, "server-name")) {
        bad = c->n_names >= KL_CFG_MAX_NAMES || copy(c->names[c->n_names], sizeof c->names[0], v) ||
              !*v;
        if (!bad) c->n_names++;
    } else if (!strcmp(key, "max-body"))
        bad = size_of(v, &c->max_body);
    else if (!strcmp(key, "max-import"))
        bad = size_of(v, &c->max_import);
    else if (!strcmp(key, "api-threads")) {
        char *end;
        long t = strtol(v, &end, 10);
        bad = !*v || *end || t < 1 || t > 64;
        if (!bad) c->api_threads = (int)t;
    } else if (!strcmp(key, "api-tls")) {
        int yes = !strcmp(v, "yes") || !strcmp(v, "on") || !strcmp(v, "true");
        int no = !strcmp(v, "no") || !strcmp(v, "off") || !strcmp(v, "false");
        bad = !yes && !no;
        c->api_tls = yes;
    } else if (!strcmp(key, "dev-listener"))
        bad = kl_config_hostport(v, c->dev_host, sizeof c->dev_host, &c->dev_port);
    else if (!strcmp(key, "dev-policy"))
        bad = copy(c->dev_policy, sizeof c->dev_policy, v) || !*v;
    else if (!strcmp(key, "audience"))
        bad = copy(c->audience, sizeof c->audience, v) || !*v;
    else if (!strcmp(key, "connect-timeout")) {
        char *end;
        long t = strtol(v, &end, 10);
        bad = !*v || *end || t < 100 || t > 600000;
        if (!bad) c->connect_timeout_ms = (int)t;
    } else if (!strcmp(key, "max-packet"))
        bad = size_of(v, &c->max_packet) || c->max_packet < 1024 || c->max_packet > 268435455;
    else if (!strcmp(key, "tls-records")) {
        bad = strcmp(v, "keylinkd") && strcmp(v, "openssl");
        c->tls_records_openssl = !strcmp(v, "openssl");
    } else if (!strcmp(key, "dp-threads")) {
        char *end;
        long t = strtol(v, &end, 10);
        bad = !*v || *end || t < 0 || t > 256;
        if (!bad) c->dp_threads = (int)t;
    } else {
        snprintf(msg, n, "unknown setting '%s'", key);
        return -1;
    }
    if (bad) snprintf(msg, n, "bad value for %s: '%s'", key, v);
    return bad ? -1 : 0;
}

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t l = strlen(s);
    while (l && strchr(" \t\r\n", s[l - 1]))
        s[--l] = 0;
    return s;
}

static int load_file(struct kl_config *c, const char *path, char *msg, size_t n)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(msg, n, "cannot read config file %s", path);
        return -1;
    }
    char line[2048];
    int lineno = 0, rc = 0;
    while (!rc && fgets(line, sizeof line, f)) {
        lineno++;
        char *s = trim(line);
        if (!*s || *s == '#') continue;
        char *eq = strchr(s, '=');
        if (!eq) {
            snprintf(msg, n, "%s:%d: expected key = value", path, lineno);
            rc = -1;
            break;
        }
        *eq = 0;
        char sub[256];
        rc = set(c, trim(s), trim(eq + 1), sub, sizeof sub);
        if (rc) snprintf(msg, n, "%s:%d: %s", path, lineno, sub);
    }
    fclose(f);
    return rc;
}

int kl_config_parse(struct kl_config *c, int argc, char **argv, char *msg, size_t n)
{
    /* the file first, so flags override it wherever they stand */
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--config")) {
            if (i + 1 >= argc) {
                snprintf(msg, n, "--config needs a file");
                return -1;
            }
            if (load_file(c, argv[i + 1], msg, n)) return -1;
        }
    size_t file_names = c->n_names;
    int flag_names = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            c->help = 1;
            continue;
        }
        if (!strcmp(a, "--version")) {
            c->version = 1;
            continue;
        }
        if (strncmp(a, "--", 2)) {
            snprintf(msg, n, "unexpected argument '%s'", a);
            return -1;
        }
        if (i + 1 >= argc) {
            snprintf(msg, n, "%s needs a value", a);
            return -1;
        }
        const char *v = argv[++i];
        if (!strcmp(a, "--config")) continue;
        if (!strcmp(a + 2, "server-name") && !flag_names) {
            /* names on the command line replace the file's */
            flag_names = 1;
            c->n_names = 0;
            (void)file_names;
        }
        char sub[256];
        if (set(c, a + 2, v, sub, sizeof sub)) {
            snprintf(msg, n, "%s", sub);
            return -1;
        }
    }
    return 0;
}

void kl_config_default_names(struct kl_config *c)
{
    if (c->n_names) return;
    snprintf(c->names[c->n_names++], sizeof c->names[0], "localhost");
    snprintf(c->names[c->n_names++], sizeof c->names[0], "127.0.0.1");
    char host[254] = "";
    if (gethostname(host, sizeof host - 1) == 0 && host[0] && strcmp(host, "localhost") &&
        strspn(host, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-") ==
            strlen(host))
        snprintf(c->names[c->n_names++], sizeof c->names[0], "%s", host);
}
