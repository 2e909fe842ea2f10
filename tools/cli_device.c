/*
 * `keylink device`: the device side from the command line, built only on the device
 * library's public headers (keylink/tls.h, keylink/se.h), so it does what firmware
 * would. `keylink device tls` opens TLS 1.2 through the chip, sends standard input and
 * prints what comes back (docs/tls.md).
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "keylink/channel.h"
#include "keylink/se.h"
#include "common_args.h"
#include "keylink/tls.h"
#include "keylink/tls_posix.h"
#include "device_mqtt.h"
#include "transport_mem.h"

static const char *const usage_text =
    "usage: keylink device tls --endpoint HOST:PORT [OPTIONS]\n"
    "\n"
    "Opens a TLS 1.2 connection whose every cryptographic step runs in the secure\n"
    "element, sends standard input, and prints what the server sends back. After standard\n"
    "input ends it keeps printing until the server closes or --idle-timeout passes with\n"
    "nothing received. Suite, peer subject and timings go to standard error.\n"
    "\n"
    "options:\n"
    "  --device URI          unix:PATH (keylink-se daemon) or mem:DIR; default $KEYLINK_SE\n"
    "  --pin FILE            talk to the chip inside the secure channel, checked against\n"
    "                        this pinned identity key (keylink se channel pin)\n"
    "  --endpoint HOST:PORT  the server ([IPv6]:PORT also works)\n"
    "  --server-name NAME    SNI and the name checked against the certificate's\n"
    "                        subjectAltName (default: HOST)\n"
    "  --idle-timeout S      seconds of silence after standard input ends (default 2)\n"
    "  --timeout S           handshake limit in seconds (default 15)\n"
    "  --root-id ID          chip object holding the trusted root (default 0x1003)\n"
    "  --key-id ID           device key pair for mTLS (default 0x1004)\n"
    "  --cert-id ID          device certificate for mTLS (default 0x1002)\n"
    "  --no-client-cert      never send a client certificate\n"
    "  --suite gcm|ccm       offer only one suite (default: both, GCM first)\n"
    "  --alpn P1[,P2]        ALPN protocols to offer (default: none)\n"
    "\n"
    "Exit status: 0 clean handshake and exchange, 1 refused or failed (the message says\n"
    "why), 2 bad usage.\n";

static struct kl_se se;
static uint8_t rx[KL_TLS_RX_FULL], hs[KL_TLS_HS_DEFAULT];

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static int usage_error(const char *what)
{
    fprintf(stderr, "keylink device tls: %s\n\n%s", what, usage_text);
    return 2;
}

static int fail(const char *what, kl_status st, const char *detail)
{
    fprintf(stderr, "keylink device tls: %s: %s%s%s\n", what, kl_status_name(st),
            detail && *detail ? " - " : "", detail ? detail : "");
    return 1;
}

static int write_all(int fd, const uint8_t *d, size_t n)
{
    while (n) {
        ssize_t w = write(fd, d, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return 0;
        d += w;
        n -= (size_t)w;
    }
    return 1;
}

/* Prints what is readable now (timeout_ms for the first record). Returns KL_OK,
 * KL_E_TIMEOUT (nothing came), KL_E_CLOSED or an error. */
static kl_status drain(struct kl_tls *t, uint32_t timeout_ms, int *got_any)
{
    uint8_t buf[2048];
    for (;;) {
        size_t n = 0;
        kl_status st = kl_tls_read(t, buf, sizeof buf, &n, timeout_ms);
        if (st != KL_OK) return st;
        *got_any = 1;
        if (!write_all(1, buf, n)) return KL_E_IO;
        timeout_ms = 0; /* then only what is already there */
    }
}

static int run_tls(int argc, char **argv)
{
    const char *device = NULL, *endpoint = NULL, *name = NULL, *suite = NULL, *alpn_arg = NULL;
    const char *pin = NULL;
    double idle_s = 2, timeout_s = 15;
    uint16_t root_id = 0x1003, key_id = 0x1004, cert_id = 0x1002;
    int no_client = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(usage_text, stdout);
            return 0;
        }
        if (!strcmp(a, "--no-client-cert")) {
            no_client = 1;
            continue;
        }
        if (!v) return usage_error("an option is missing its value");
        i++;
        if (!strcmp(a, "--device"))
            device = v;
        else if (!strcmp(a, "--pin"))
            pin = v;
        else if (!strcmp(a, "--endpoint"))
            endpoint = v;
        else if (!strcmp(a, "--server-name"))
            name = v;
        else if (!strcmp(a, "--suite"))
            suite = v;
        else if (!strcmp(a, "--alpn"))
            alpn_arg = v;
        else if (!strcmp(a, "--idle-timeout")) {
            if (!kl_tool_parse_num(v, 0, 86400, &idle_s))
                return usage_error("--idle-timeout needs seconds");
        } else if (!strcmp(a, "--timeout")) {
            if (!kl_tool_parse_num(v, 0, 86400, &timeout_s) || timeout_s == 0)
                return usage_error("--timeout needs seconds > 0");
        } else if (!strcmp(a, "--root-id")) {
            if (!kl_tool_parse_obj_id(v, &root_id))
                return usage_error("--root-id needs a hex object id");
        } else if (!strcmp(a, "--key-id")) {
            if (!kl_tool_parse_obj_id(v, &key_id))
                return usage_error("--key-id needs a hex object id");
        } else if (!strcmp(a, "--cert-id")) {
            if (!kl_tool_parse_obj_id(v, &cert_id))
                return usage_error("--cert-id needs a hex object id");
        } else {
            return usage_error("unknown option");
        }
    }
    char host[256], port[8];
    if (!endpoint) return usage_error("--endpoint HOST:PORT is required");
    if (!kl_tool_split_endpoint(endpoint, host, sizeof host, port, sizeof port))
        return usage_error("--endpoint must be HOST:PORT");
    if (!name) name = host;
    uint16_t suites[1];
    size_t nsuites = 0;
    if (suite) {
        if (!strcmp(suite, "gcm"))
            suites[0] = KL_TLS_SUITE_ECDHE_ECDSA_AES128_GCM_SHA256;
        else if (!strcmp(suite, "ccm"))
            suites[0] = KL_TLS_SUITE_ECDHE_ECDSA_AES128_CCM;
        else
            return usage_error("--suite is gcm or ccm");
        nsuites = 1;
    }
    char alpn_buf[128];
    const char *alpn[4];
    size_t nalpn = 0;
    if (alpn_arg) {
        if (strlen(alpn_arg) >= sizeof alpn_buf) return usage_error("--alpn is too long");
        strcpy(alpn_buf, alpn_arg);
        for (char *save = NULL, *p = strtok_r(alpn_buf, ",", &save); p;
             p = strtok_r(NULL, ",", &save)) {
            if (nalpn == 4) return usage_error("--alpn takes at most 4 names");
            alpn[nalpn++] = p;
        }
    }

    (void)kl_se_mem_register();
    uint8_t pinned[KL_SE_IDENTITY_LEN];
    if (pin && kl_channel_pub_read_file(pin, pinned) != KL_OK)
        return usage_error("--pin FILE must hold the chip's identity key (PEM or hex X||Y)");
    kl_status st = kl_se_open(&se, device);
    if (st != KL_OK) return fail("cannot open the secure element", st, device);
    if (pin && (st = kl_se_channel_open(&se, pinned, kl_random_os, NULL)) != KL_OK) {
        kl_se_close(&se);
        return fail("cannot open the secure channel", st,
                    st == KL_E_VERIFY_FAILED ? "the chip is not the pinned one" : NULL);
    }
    uint64_t t0 = mono_ms();
    struct kl_tls_posix sock;
    st = kl_tls_posix_connect(&sock, host, port, (uint32_t)(timeout_s * 1000));
    if (st != KL_OK) {
        kl_se_close(&se);
        return fail("cannot connect", st, endpoint);
    }
    uint64_t t1 = mono_ms();
    struct kl_tls_transport tr;
    struct kl_tls_clock ck;
    kl_tls_posix_transport(&sock, &tr);
    kl_tls_posix_clock(&ck);
    struct kl_tls_config cfg = {0};
    cfg.server_name = name;
    cfg.alpn = nalpn ? alpn : NULL;
    cfg.alpn_n = nalpn;
    cfg.root_id = root_id;
    cfg.client_key_id = no_client ? 0 : key_id;
    cfg.client_cert_id = no_client ? 0 : cert_id;
    cfg.suites = nsuites ? suites : NULL;
    cfg.suites_n = nsuites;
    cfg.timeout_ms = (uint32_t)(timeout_s * 1000);
    struct kl_tls t;
    memset(&t, 0, sizeof t); /* kl_tls_close on it is harmless if init fails */
    int rc = 1;
    st = kl_tls_init(&t, &se, &cfg, &tr, &ck, rx, sizeof rx, hs, sizeof hs);
    if (st != KL_OK) {
        rc = st == KL_E_ARG ? usage_error("bad server name or ALPN") : fail("setup", st, NULL);
        goto out;
    }
    st = kl_tls_handshake(&t);
    if (st != KL_OK) {
        fail("TLS handshake failed", st, kl_tls_error(&t));
        goto out;
    }
    uint64_t t2 = mono_ms();
    fprintf(stderr,
            "keylink device tls: connected to %s (%s) in %llu ms + handshake %llu ms\n"
            "  suite %s, extended master secret %s, max_fragment_length %s, ALPN %s\n"
            "  peer subject CN=%s, client certificate %s\n",
            endpoint, name, (unsigned long long)(t1 - t0), (unsigned long long)(t2 - t1),
            kl_tls_suite_name(t.suite), t.ems ? "yes" : "no", t.mfl ? "1024" : "no",
            t.alpn[0] ? t.alpn : "-", t.peer_cn, t.client_auth ? "sent" : "not sent");

    /* stdin to the server, the server to stdout */
    uint8_t buf[4096];
    int in_open = 1, got_any = 0;
    uint64_t idle_since = 0, sent = 0;
    for (;;) {
        if (in_open) {
            struct pollfd pf[2] = {{0, POLLIN, 0}, {sock.fd, POLLIN, 0}};
            int r = poll(pf, 2, 200);
            if (r < 0 && errno != EINTR) {
                st = KL_E_IO;
                break;
            }
            if (r > 0 && (pf[0].revents & (POLLIN | POLLHUP | POLLERR))) {
                ssize_t n = read(0, buf, sizeof buf);
                if (n < 0 && errno == EINTR) continue;
                if (n <= 0) {
                    in_open = 0;
                    idle_since = mono_ms();
                } else {
                    st = kl_tls_write(&t, buf, (size_t)n);
                    if (st != KL_OK) break;
                    sent += (uint64_t)n;
                }
            }
            st = drain(&t, 0, &got_any);
        } else {
            uint64_t now = mono_ms(), lim = (uint64_t)(idle_s * 1000);
            if (now - idle_since >= lim) {
                st = KL_E_TIMEOUT;
                break;
            }
            int before = got_any;
            st = drain(&t, (uint32_t)(lim - (now - idle_since)), &got_any);
            if (got_any != before) idle_since = mono_ms(); /* data resets the idle clock */
        }
        if (st != KL_E_TIMEOUT) break;
    }
    if (st == KL_E_TIMEOUT || st == KL_E_CLOSED) {
        kl_tls_close(&t);
        fprintf(stderr, "keylink device tls: sent %llu bytes; %s after %llu ms\n",
                (unsigned long long)sent,
                st == KL_E_CLOSED ? "server closed the connection" : "idle timeout",
                (unsigned long long)(mono_ms() - t2));
        rc = 0;
    } else {
        fail("connection failed", st, kl_tls_error(&t));
    }
out:
    kl_tls_close(&t);
    kl_tls_posix_close(&sock);
    kl_se_close(&se);
    return rc;
}

/* What `keylink device` alone prints: every subcommand, each with its own --help. */
static const char *const device_overview =
    "usage: keylink device SUBCOMMAND --device URI --endpoint HOST:PORT [OPTIONS]\n"
    "\n"
    "The device side of AN-7648: every cryptographic step runs in the chip.\n"
    "\n"
    "  tls   TLS 1.2 handshake through the chip; send stdin, print the answer\n"
    "  pub   publish MQTT messages (--auth mtls|jwt|challenge)\n"
    "  sub   subscribe and print MQTT messages\n"
    "  run   the device program: telemetry, commands, reconnects, JWT renewal\n"
    "  jwt   print a chip-signed ES256 JWT\n"
    "\n"
    "`keylink device SUBCOMMAND --help` tells more. The chip comes from --device URI\n"
    "or KEYLINK_SE (unix:PATH for keylink-se, mem:DIR in-process).\n";

int kl_cli_device(int argc, char **argv);
int kl_cli_device(int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        fputs(device_overview, argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (!strcmp(argv[1], "tls")) return run_tls(argc - 1, argv + 1);
    /* MQTT through the chip and the device program: tools/device_mqtt.c, device_run.c */
    if (!strcmp(argv[1], "pub")) return kl_device_pub(argc - 1, argv + 1);
    if (!strcmp(argv[1], "sub")) return kl_device_sub(argc - 1, argv + 1);
    if (!strcmp(argv[1], "run")) return kl_device_run(argc - 1, argv + 1);
    if (!strcmp(argv[1], "jwt")) return kl_device_jwt(argc - 1, argv + 1);
    fprintf(stderr, "keylink device: unknown command '%s'\n\n%s", argv[1], device_overview);
    return 2;
}
