/*
 * `keylink se`: the secure element from the command line, one subcommand per chip
 * command group. Everything goes through the device library (keylink/se.h), so the
 * CLI sees exactly what firmware would.
 */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common_hex.h"
#include "common_pem.h"
#include "common_sign.h"
#include "keylink/channel.h"
#include "keylink/se.h"
#include "transport_mem.h"

#define MAX_OBJ 8192u /* nothing on the chip is bigger than its storage */
#define MAX_LIST 1024u

struct opts {
    const char *device;
    const char *pin; /* pinned identity key: run the command inside the secure channel */
    const char *admin_key, *admin_id; /* authenticate as admin first */
    const char *pem, *import_key;
    int json;
    int help;
    /* subcommand options (each subcommand says which it takes) */
    const char *type, *props, *rules, *usage, *alg, *key_type, *size, *initial;
    const char *in, *hex, *out, *digest, *sig, *sig_file, *offset, *length, *format;
    int der, raw, create;
    int npos;
    const char *pos[8];
};

static struct kl_se se; /* 6.5 KB of frame buffers: not on the stack */

static const char *const usage_text =
    "usage: keylink se [--device URI] [--pin FILE] [--admin-key FILE [--admin-id ID]]\n"
    "                  [--json] COMMAND [ARGS] [OPTIONS]\n"
    "\n"
    "Talks to a keylink secure element: URI is unix:PATH (a keylink-se daemon's socket)\n"
    "or mem:DIR (the chip model in-process); default: $KEYLINK_SE. Object ids are hex\n"
    "(0x1004 or 1004). --json prints machine-readable output. --pin FILE runs the\n"
    "command inside the secure channel opened with the chip identity key in FILE (see\n"
    "channel pin). Exit status: 0 done, 1 the chip or the link refused (the message\n"
    "names the chip status), 2 bad usage. --admin-key FILE (a P-256 private key, PEM;\n"
    "encrypted: $KEYLINK_KEY_PASSPHRASE) opens an admin session first by signing the\n"
    "chip's challenge; the chip checks it with the admin public key object --admin-id\n"
    "(default 0x1001).\n"
    "\n"
    "commands:\n"
    "  status                      name, versions, serial, life cycle, storage, counters\n"
    "  ping [HEX]                  echo test\n"
    "  list                        every object: id, type, properties, size\n"
    "  info ID                     one object: attributes, rules, used bytes, writes\n"
    "  create ID --type TYPE [--size N] [--props P] [--rules R] [--key-type K]\n"
    "         [--usage U[,U2]] [--alg A[,A2]] [--initial N]\n"
    "                              TYPE: secret-key public-key key-pair data up-counter\n"
    "                              certificate down-counter; P: persistent|temporary\n"
    "                              [,wipe-on-tamper]; R: e.g. ahsex=rwdgx:ahsex=rwdgx:ahsex=rgx\n"
    "  delete ID\n"
    "  read ID [--out FILE] [--offset N --length N]   data as hex, or raw bytes to FILE\n"
    "  write ID (--in FILE | --hex HEX) [--offset N]\n"
    "  import ID (--pem FILE | --hex HEX) [--import-key FILE]\n"
    "                              key material into a key object: --pem a P-256 public\n"
    "                              key (PEM); --hex secret key bytes, X||Y, or d||X||Y.\n"
    "                              Outside DELIVERY the request is signed with\n"
    "                              --import-key (private half of object 0x1000)\n"
    "  genkey ID [--create] [--usage U] [--rules R]   new key in the object; --create makes\n"
    "                              a persistent P-256 key pair object first if missing;\n"
    "                              prints the public key (PEM)\n"
    "  pubkey ID [--raw]           public key as PEM (SubjectPublicKeyInfo); --raw: hex X||Y\n"
    "  sign ID (--in FILE | --hex HEX | --digest HEX) [--der] [--out FILE]\n"
    "                              ECDSA P-256/SHA-256 signature (hex r||s, or DER)\n"
    "  verify ID (--sig HEX | --sig-file FILE) (--in FILE | --hex HEX | --digest HEX) [--der]\n"
    "                              exit 0 if valid, 1 if not\n"
    "  random N                    N random bytes from the chip, hex\n"
    "  lifecycle [STATE]           show, or move to DELIVERY|INITIALIZED|OPERATIONAL|\n"
    "                              TERMINATED (needs an admin session outside DELIVERY)\n"
    "  config [KEY=VALUE...]       show, or change: require_channel terminate_allowed\n"
    "                              master_secret_readable factory_reset watchdog (0|1),\n"
    "                              reset_events (0..15), tamper_action (0|1),\n"
    "                              wd_initial_ms, wd_normal_ms\n"
    "  counter ID [--add N]        read a counter, or move it by N\n"
    "  tamper                      fire the tamper input (model input)\n"
    "  kick                        kick the watchdog\n"
    "  reset                       reset pulse (model input)\n"
    "  channel pin [--out FILE]    the chip's identity public key (PEM) to pin; do it\n"
    "                              at manufacturing, over a trusted link\n"
    "  channel check --pin FILE    opens the secure channel with the pinned key, runs\n"
    "                              GET_STATUS inside it, closes it\n"
    "\n"
    "`keylink se COMMAND --help` shows this text too.\n";

__attribute__((format(printf, 1, 2))) static int usage_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "keylink se: ");
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n(keylink se --help for usage)\n");
    return 2;
}

/* The one way the CLI reports a failed chip operation. */
static int chip_error(const char *what, kl_status st)
{
    fprintf(stderr, "keylink se: %s failed: %s: %s\n", what, kl_status_name(st),
            kl_status_text(st));
    if (st == KL_E_IO)
        fprintf(stderr, "keylink se: is keylink-se running on that socket? (--device URI)\n");
    /* KL_E_BUSY's text already says another host has the chip: one line is enough */
    return 1;
}

static int parse_id(const char *s, uint16_t *id)
{
    if (!s || !*s) return -1;
    if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) s += 2;
    char *end = NULL;
    errno = 0;
    unsigned long v = strtoul(s, &end, 16);
    if (errno || !*s || *end || v > 0xFFFF) return -1;
    *id = (uint16_t)v;
    return 0;
}

static int parse_u32(const char *s, uint32_t *v)
{
    if (!s || !*s || *s == '-') return -1;
    char *end = NULL;
    errno = 0;
    unsigned long long x = strtoull(s, &end, 0);
    if (errno || *end || x > 0xFFFFFFFFull) return -1;
    *v = (uint32_t)x;
    return 0;
}

struct named_val {
    const char *name;
    uint8_t v;
};

static const struct named_val usages[] = {{"secure-channel", 0x00},  {"sign", 0x01},
                                          {"encrypt", 0x02},         {"tls", 0x04},
                                          {"admin", 0x08},           {"verify-cert", 0x10},
                                          {"verify-firmware", 0x20}, {"key-import", 0x80},
                                          {"key-exchange", 0xD1},    {"none", 0xFF}},
                              algs[] = {{"none", 0x00},    {"ecdsa", 0x01},    {"ecdh", 0x02},
                                        {"aes-ecb", 0x10}, {"aes-cbc", 0x11},  {"aes-ccm", 0x13},
                                        {"aes-gcm", 0x14}, {"aes-cmac", 0x15}, {"hmac", 0x20},
                                        {"tls-prf", 0x30}},
                              key_types[] = {
                                  {"none", 0}, {"aes", 1}, {"psk", 2}, {"hmac", 3}, {"ecc", 4}};

#define NAMED(tab, s, out) named(tab, sizeof tab / sizeof tab[0], s, out)
static int named(const struct named_val *tab, size_t n, const char *s, uint8_t *out)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(tab[i].name, s)) {
            *out = tab[i].v;
            return 0;
        }
    uint32_t v;
    if (parse_u32(s, &v) == 0 && v <= 0xFF) {
        *out = (uint8_t)v;
        return 0;
    }
    return -1;
}

/* "A" or "A,B" into two slots (B defaults to unused / none). */
static int pair(const struct named_val *tab, size_t n, const char *s, uint8_t *a, uint8_t *b)
{
    char buf[64];
    if (strlen(s) >= sizeof buf) return -1;
    strcpy(buf, s);
    char *comma = strchr(buf, ',');
    if (comma) *comma = 0;
    if (named(tab, n, buf, a) < 0) return -1;
    if (comma && named(tab, n, comma + 1, b) < 0) return -1;
    return 0;
}

static int connect_chip(const struct opts *o)
{
    const char *uri = o->device ? o->device : getenv("KEYLINK_SE");
    if (!uri || !*uri) {
        fprintf(stderr, "keylink se: no chip given: use --device unix:PATH (a keylink-se "
                        "socket) or mem:DIR, or set KEYLINK_SE\n");
        return 2;
    }
    kl_status st = kl_se_open(&se, uri);
    if (st == KL_E_ARG) {
        fprintf(stderr,
                "keylink se: cannot use device '%s': the URI must be unix:PATH or "
                "mem:DIR\n",
                uri);
        return 2;
    }
    if (st != KL_OK) {
        char what[300];
        snprintf(what, sizeof what, "opening %s", uri);
        return chip_error(what, st);
    }
    return 0;
}

/* Opens the secure channel with the pinned identity key in path. */
static int open_channel(const char *path)
{
    uint8_t pub[KL_SE_IDENTITY_LEN];
    kl_status st = kl_channel_pub_read_file(path, pub);
    if (st == KL_E_IO) {
        fprintf(stderr, "keylink se: cannot read the pin file %s\n", path);
        return 2;
    }
    if (st != KL_OK) {
        fprintf(stderr, "keylink se: %s holds no P-256 public key (PEM or hex X||Y)\n", path);
        return 2;
    }
    st = kl_se_channel_open(&se, pub, kl_random_os, NULL);
    if (st == KL_E_VERIFY_FAILED) {
        fprintf(stderr,
                "keylink se: the chip did not prove it holds the pinned identity key "
                "(%s): a different chip, or someone on the link; nothing was sent\n",
                path);
        return 1;
    }
    if (st != KL_OK) return chip_error("opening the secure channel", st);
    return 0;
}

/* Admin session: sign the chip's challenge with the owner's admin key. */
static int admin_login(const struct opts *o)
{
    uint16_t id = 0x1001;
    if (o->admin_id && parse_id(o->admin_id, &id) < 0)
        return usage_error("bad --admin-id '%s' (hex object id)", o->admin_id);
    uint8_t ch[16], sig[64];
    kl_status st = kl_se_get_challenge(&se, ch);
    if (st != KL_OK) return chip_error("admin authentication (challenge)", st);
    if (kl_tool_sign_sha256_pem(o->admin_key, ch, sizeof ch, sig) < 0) return 2;
    st = kl_se_admin_auth(&se, id, sig);
    if (st != KL_OK) {
        fprintf(stderr, "keylink se: is %s the private half of admin key object 0x%04x?\n",
                o->admin_key, id);
        return chip_error("admin authentication", st);
    }
    return 0;
}

/* ---------------------------------------------------------------- commands ---- */

static int cmd_status(const struct opts *o)
{
    struct kl_se_status s;
    kl_status st = kl_se_status(&se, &s);
    if (st != KL_OK) return chip_error("status", st);
    char serial[49];
    kl_tool_hex(s.serial, sizeof s.serial, serial, sizeof serial);
    if (o->json) {
        printf("{\"name\": ");
        kl_tool_json_str(stdout, s.name);
        printf(", \"firmware\": \"%u.%u.%u\", \"hardware\": %u, \"serial\": \"%s\", "
               "\"lifecycle\": \"%s\", \"lifecycle_code\": %u, \"total_bytes\": %u, "
               "\"free_bytes\": %u, \"tamper_events\": %u, \"resets\": %u, "
               "\"admin_authenticated\": %s, \"channel_open\": %s, \"boot_verified\": %s}\n",
               s.fw[0], s.fw[1], s.fw[2], s.hw, serial, kl_se_lifecycle_name(s.lifecycle),
               s.lifecycle, s.total_bytes, s.free_bytes, (unsigned)s.tamper_events,
               (unsigned)s.resets, s.session & 1 ? "true" : "false",
               s.session & 2 ? "true" : "false", s.session & 4 ? "true" : "false");
        return 0;
    }
    for (char *p = s.name; *p; p++)
        if (*p < 0x20 || *p > 0x7E) *p = '?'; /* chip bytes are not trusted on a terminal */
    printf("name           %s\n", s.name);
    printf("firmware       %u.%u.%u\n", s.fw[0], s.fw[1], s.fw[2]);
    printf("hardware       0x%04x\n", s.hw);
    printf("serial         %s\n", serial);
    printf("lifecycle      %s\n", kl_se_lifecycle_name(s.lifecycle));
    printf("storage        %u of %u bytes free\n", s.free_bytes, s.total_bytes);
    printf("tamper events  %u\n", (unsigned)s.tamper_events);
    printf("resets         %u\n", (unsigned)s.resets);
    printf("session        admin %s, secure channel %s, boot %s\n",
           s.session & 1 ? "authenticated" : "no", s.session & 2 ? "open" : "closed",
           s.session & 4 ? "verified" : "not verified");
    return 0;
}

static int cmd_ping(const struct opts *o)
{
    static uint8_t buf[KL_FRAME_MAX_PAYLOAD];
    long n = 0;
    if (o->npos > 1) return usage_error("ping takes at most one HEX argument%s", "");
    if (o->npos == 1 && (n = kl_tool_unhex(o->pos[0], buf, sizeof buf)) < 0)
        return usage_error("ping: '%s' is not hex of at most 2048 bytes", o->pos[0]);
    kl_status st = kl_se_ping(&se, buf, (size_t)n);
    if (st != KL_OK) return chip_error("ping", st);
    if (o->json)
        printf("{\"ok\": true, \"bytes\": %ld}\n", n);
    else
        printf("pong (%ld bytes echoed)\n", n);
    return 0;
}

static void props_text(uint8_t p, char *out, size_t cap)
{
    snprintf(out, cap, "%s%s", p & KL_SE_PROP_TEMPORARY ? "temporary" : "persistent",
             p & KL_SE_PROP_WIPE_ON_TAMPER ? ",wipe-on-tamper" : "");
}

static int cmd_list(const struct opts *o)
{
    static struct kl_se_list_entry e[MAX_LIST];
    size_t n = 0;
    kl_status st = kl_se_list(&se, e, MAX_LIST, &n);
    if (st != KL_OK) return chip_error("list", st);
    if (o->json)
        printf("[");
    else
        printf("%-6s  %-12s  %-26s  %s\n", "ID", "TYPE", "PROPERTIES", "SIZE");
    for (size_t i = 0; i < n; i++) {
        char p[40];
        props_text(e[i].props, p, sizeof p);
        if (o->json)
            printf("%s{\"id\": \"0x%04x\", \"type\": \"%s\", \"props\": \"%s\", \"size\": %u}",
                   i ? ", " : "", e[i].id, kl_se_type_name(e[i].type), p, e[i].size);
        else
            printf("0x%04x  %-12s  %-26s  %u\n", e[i].id, kl_se_type_name(e[i].type), p, e[i].size);
    }
    if (o->json)
        printf("]\n");
    else if (n == 0)
        printf("(no objects)\n");
    return 0;
}

static const char *name_of(const struct named_val *tab, size_t n, uint8_t v)
{
    for (size_t i = 0; i < n; i++)
        if (tab[i].v == v) return tab[i].name;
    return "unknown";
}
#define NAME_OF(tab, v) name_of(tab, sizeof tab / sizeof tab[0], v)

static int cmd_info(const struct opts *o)
{
    uint16_t id;
    if (o->npos != 1 || parse_id(o->pos[0], &id) < 0)
        return usage_error("info needs one object id (hex)%s", "");
    struct kl_se_object_info in;
    kl_status st = kl_se_object_info(&se, id, &in);
    if (st != KL_OK) return chip_error("info", st);
    char rules[48] = "?", p[40];
    if (kl_se_rules_format(in.attr.rules, rules, sizeof rules) != KL_OK) strcpy(rules, "invalid");
    props_text(in.attr.props, p, sizeof p);
    const struct kl_se_object_attr *a = &in.attr;
    if (o->json) {
        printf("{\"id\": \"0x%04x\", \"type\": \"%s\", \"props\": \"%s\", \"size\": %u, "
               "\"used\": %u, \"rules\": \"%s\", \"key_type\": \"%s\", "
               "\"usage\": [\"%s\", \"%s\"], \"alg\": [\"%s\", \"%s\"], \"write_count\": %u, "
               "\"has_key\": %s}\n",
               a->id, kl_se_type_name(a->type), p, a->size, in.used, rules,
               NAME_OF(key_types, a->key_type), NAME_OF(usages, a->usage1),
               NAME_OF(usages, a->usage2), NAME_OF(algs, a->alg1), NAME_OF(algs, a->alg2),
               (unsigned)in.write_count, in.has_key ? "true" : "false");
        return 0;
    }
    printf("id           0x%04x\n", a->id);
    printf("type         %s\n", kl_se_type_name(a->type));
    printf("properties   %s\n", p);
    printf("size         %u (used %u)\n", a->size, in.used);
    printf("rules        %s\n", rules);
    printf("key type     %s\n", NAME_OF(key_types, a->key_type));
    printf("usage/alg    %s/%s, %s/%s\n", NAME_OF(usages, a->usage1), NAME_OF(algs, a->alg1),
           NAME_OF(usages, a->usage2), NAME_OF(algs, a->alg2));
    printf("writes       %u\n", (unsigned)in.write_count);
    printf("key present  %s\n", in.has_key ? "yes" : "no");
    return 0;
}

/* Defaults per type, so `create ID --type data --size 100` is enough. */
static void defaults(struct kl_se_object_attr *a)
{
    a->props = KL_SE_PROP_PERSISTENT;
    a->key_type = KL_SE_KEY_NONE;
    a->usage1 = a->usage2 = KL_SE_USAGE_UNUSED;
    a->alg1 = a->alg2 = KL_SE_ALG_NONE;
    switch (a->type) {
    case KL_SE_OBJ_KEY_PAIR:
        a->size = 96;
        a->key_type = KL_SE_KEY_ECC_P256;
        a->usage1 = KL_SE_USAGE_SIGN;
        a->alg1 = KL_SE_ALG_ECDSA_SHA256;
        break;
    case KL_SE_OBJ_PUBLIC_KEY:
        a->size = 64;
        a->key_type = KL_SE_KEY_ECC_P256;
        a->usage1 = KL_SE_USAGE_VERIFY_CERT;
        a->alg1 = KL_SE_ALG_ECDSA_SHA256;
        break;
    case KL_SE_OBJ_SECRET_KEY:
        a->size = 32;
        a->key_type = KL_SE_KEY_AES;
        a->usage1 = KL_SE_USAGE_ENCRYPT;
        a->alg1 = KL_SE_ALG_AES_GCM;
        break;
    case KL_SE_OBJ_UP_COUNTER:
    case KL_SE_OBJ_DOWN_COUNTER:
        a->size = 4;
        break;
    default:
        break;
    }
}

/* Fills a from the create/genkey options. Returns 0 or a usage exit code. */
static int attr_from(const struct opts *o, uint16_t id, uint8_t type, struct kl_se_object_attr *a)
{
    memset(a, 0, sizeof *a);
    a->id = id;
    a->type = type;
    defaults(a);
    const char *rules = o->rules ? o->rules : "ahsex=rwdgx:ahsex=rwdgx:ahsex=rgx";
    if (kl_se_rules_parse(rules, a->rules) != KL_OK)
        return usage_error("bad --rules '%s' (like ahs=rwdgx:ah=rx:h=x, '-' for none)", rules);
    uint32_t v;
    if (o->size) {
        if (parse_u32(o->size, &v) < 0 || v > 0xFFFF)
            return usage_error("bad --size '%s'", o->size);
        a->size = (uint16_t)v;
    }
    if (o->initial) {
        if (parse_u32(o->initial, &v) < 0) return usage_error("bad --initial '%s'", o->initial);
        a->initial = v;
    }
    if (o->props) {
        if (!strcmp(o->props, "persistent"))
            a->props = KL_SE_PROP_PERSISTENT;
        else if (!strcmp(o->props, "temporary"))
            a->props = KL_SE_PROP_TEMPORARY;
        else if (!strcmp(o->props, "persistent,wipe-on-tamper"))
            a->props = KL_SE_PROP_PERSISTENT | KL_SE_PROP_WIPE_ON_TAMPER;
        else if (!strcmp(o->props, "temporary,wipe-on-tamper"))
            a->props = KL_SE_PROP_TEMPORARY | KL_SE_PROP_WIPE_ON_TAMPER;
        else
            return usage_error("bad --props '%s' (persistent|temporary[,wipe-on-tamper])",
                               o->props);
    }
    if (o->key_type && NAMED(key_types, o->key_type, &a->key_type) < 0)
        return usage_error("bad --key-type '%s' (none aes psk hmac ecc)", o->key_type);
    if (o->usage &&
        pair(usages, sizeof usages / sizeof usages[0], o->usage, &a->usage1, &a->usage2) < 0)
        return usage_error("bad --usage '%s' (sign tls admin encrypt key-exchange verify-cert "
                           "verify-firmware key-import secure-channel none, or A,B)",
                           o->usage);
    if (o->alg && pair(algs, sizeof algs / sizeof algs[0], o->alg, &a->alg1, &a->alg2) < 0)
        return usage_error("bad --alg '%s' (ecdsa ecdh aes-ecb aes-cbc aes-ccm aes-gcm aes-cmac "
                           "hmac tls-prf none, or A,B)",
                           o->alg);
    return 0;
}

static int cmd_create(const struct opts *o)
{
    uint16_t id;
    uint8_t type;
    if (o->npos != 1 || parse_id(o->pos[0], &id) < 0)
        return usage_error("create needs one object id (hex)%s", "");
    if (!o->type || kl_se_type_parse(o->type, &type) != KL_OK)
        return usage_error("create needs --type (secret-key public-key key-pair data "
                           "up-counter certificate down-counter)%s",
                           "");
    if ((type == KL_SE_OBJ_DATA || type == KL_SE_OBJ_CERT) && !o->size)
        return usage_error("create: a %s object needs --size N", kl_se_type_name(type));
    struct kl_se_object_attr a;
    int rc = attr_from(o, id, type, &a);
    if (rc) return rc;
    kl_status st = kl_se_create_object(&se, &a);
    if (st != KL_OK) return chip_error("create", st);
    if (o->json)
        printf("{\"id\": \"0x%04x\", \"created\": true}\n", id);
    else
        printf("created 0x%04x (%s, %u bytes)\n", id, kl_se_type_name(type), a.size);
    return 0;
}

static int cmd_delete(const struct opts *o)
{
    uint16_t id;
    if (o->npos != 1 || parse_id(o->pos[0], &id) < 0)
        return usage_error("delete needs one object id (hex)%s", "");
    kl_status st = kl_se_delete_object(&se, id);
    if (st != KL_OK) return chip_error("delete", st);
    if (o->json)
        printf("{\"id\": \"0x%04x\", \"deleted\": true}\n", id);
    else
        printf("deleted 0x%04x\n", id);
    return 0;
}

static int cmd_read(const struct opts *o)
{
    static uint8_t buf[MAX_OBJ];
    uint16_t id;
    if (o->npos != 1 || parse_id(o->pos[0], &id) < 0)
        return usage_error("read needs one object id (hex)%s", "");
    size_t n = 0;
    kl_status st;
    if (o->offset || o->length) {
        uint32_t off = 0, len = 0;
        if ((o->offset && (parse_u32(o->offset, &off) < 0 || off > 0xFFFF)) || !o->length ||
            parse_u32(o->length, &len) < 0 || len > MAX_OBJ)
            return usage_error("read: --offset N needs --length N (at most 8192)%s", "");
        st = kl_se_read_object_at(&se, id, (uint16_t)off, buf, len);
        n = len;
    } else {
        st = kl_se_read_object(&se, id, buf, sizeof buf, &n);
    }
    if (st != KL_OK) return chip_error("read", st);
    if (o->out) return kl_tool_write_file(o->out, buf, n) < 0 ? 1 : 0;
    if (o->json) {
        printf("{\"id\": \"0x%04x\", \"length\": %zu, \"hex\": \"", id, n);
        kl_tool_hex_print(stdout, buf, n);
        printf("\"}\n");
    } else {
        kl_tool_hex_print(stdout, buf, n);
        printf("\n");
    }
    return 0;
}

/* The data of --in FILE or --hex HEX. Returns the length, or -1 after a message. */
static long input_data(const struct opts *o, uint8_t *buf, size_t cap)
{
    if (!!o->in + !!o->hex != 1) {
        usage_error("give the data with exactly one of --in FILE or --hex HEX%s", "");
        return -1;
    }
    if (o->in) return kl_tool_read_file(o->in, buf, cap);
    long n = kl_tool_unhex(o->hex, buf, cap);
    if (n < 0) usage_error("--hex '%s' is not hex (or too long)", o->hex);
    return n;
}

static int cmd_write(const struct opts *o)
{
    static uint8_t buf[MAX_OBJ];
    uint16_t id;
    if (o->npos != 1 || parse_id(o->pos[0], &id) < 0)
        return usage_error("write needs one object id (hex)%s", "");
    long n = input_data(o, buf, sizeof buf);
    if (n < 0) return 2;
    uint32_t off = 0;
    if (o->offset && (parse_u32(o->offset, &off) < 0 || off > 0xFFFF))
        return usage_error("bad --offset '%s'", o->offset);
    kl_status st = kl_se_write_object(&se, id, (uint16_t)off, buf, (size_t)n);
    if (st != KL_OK) return chip_error("write", st);
    if (o->json)
        printf("{\"id\": \"0x%04x\", \"written\": %ld}\n", id, n);
    else
        printf("wrote %ld bytes to 0x%04x at offset %u\n", n, id, (unsigned)off);
    return 0;
}

static int print_pub(const struct opts *o, uint16_t id, const uint8_t pub[64], int raw)
{
    if (o->json) {
        uint8_t der[KL_TOOL_P256_SPKI_LEN];
        kl_tool_p256_spki(pub, der);
        printf("{\"id\": \"0x%04x\", \"public_key\": \"", id);
        kl_tool_hex_print(stdout, pub, 64);
        printf("\", \"spki_der\": \"");
        kl_tool_hex_print(stdout, der, sizeof der);
        printf("\"}\n");
        return 0;
    }
    if (raw) {
        kl_tool_hex_print(stdout, pub, 64);
        printf("\n");
        return 0;
    }
    return kl_tool_pem_pubkey(stdout, pub) < 0 ? 1 : 0;
}

static int cmd_import(const struct opts *o)
{
    uint16_t id;
    if (o->npos != 1 || parse_id(o->pos[0], &id) < 0)
        return usage_error("import needs one key object id (hex)");
    if (!!o->pem + !!o->hex != 1)
        return usage_error("import needs exactly one of --pem FILE or --hex HEX");
    uint8_t m[128];
    long n;
    if (o->pem) {
        if (kl_channel_pub_read_file(o->pem, m) != KL_OK)
            return usage_error("%s holds no P-256 public key (PEM)", o->pem);
        n = 64;
    } else if ((n = kl_tool_unhex(o->hex, m, sizeof m)) <= 0) {
        return usage_error("--hex is not key material in hex");
    }
    uint8_t sig[64], tbs[4 + sizeof m];
    size_t tl = 0;
    if (o->import_key) {
        kl_status st = kl_se_import_key_tbs(id, m, (size_t)n, tbs, sizeof tbs, &tl);
        if (st != KL_OK) return chip_error("import", st);
        if (kl_tool_sign_sha256_pem(o->import_key, tbs, tl, sig) < 0) return 2;
    }
    kl_status st = kl_se_import_key(&se, id, m, (size_t)n, o->import_key ? sig : NULL);
    memset(m, 0, sizeof m);
    memset(tbs, 0, sizeof tbs);
    if (st != KL_OK) {
        if (!o->import_key && (st == KL_E_AUTH_FAILED || st == KL_E_VERIFY_FAILED))
            fprintf(stderr, "keylink se: outside DELIVERY an import must be signed: "
                            "--import-key FILE\n");
        return chip_error("import", st);
    }
    if (o->json)
        printf("{\"id\": \"0x%04x\", \"imported\": %ld}\n", id, n);
    else
        printf("imported %ld bytes of key material into 0x%04x\n", n, id);
    return 0;
}

static int cmd_genkey(const struct opts *o)
{
    uint16_t id;
    if (o->npos != 1 || parse_id(o->pos[0], &id) < 0)
        return usage_error("genkey needs one object id (hex)%s", "");
    if (o->create) {
        struct kl_se_object_info in;
        kl_status st = kl_se_object_info(&se, id, &in);
        if (st == KL_E_NOT_FOUND) {
            uint8_t type = KL_SE_OBJ_KEY_PAIR;
            if (o->type && kl_se_type_parse(o->type, &type) != KL_OK)
                return usage_error("bad --type '%s'", o->type);
            struct kl_se_object_attr a;
            int rc = attr_from(o, id, type, &a);
            if (rc) return rc;
            st = kl_se_create_object(&se, &a);
            if (st != KL_OK) return chip_error("genkey (creating the object)", st);
        } else if (st != KL_OK) {
            return chip_error("genkey", st);
        }
    }
    uint8_t pub[64];
    struct kl_se_object_info in;
    kl_status st = kl_se_object_info(&se, id, &in);
    if (st != KL_OK) return chip_error("genkey", st);
    int pair = in.attr.type == KL_SE_OBJ_KEY_PAIR;
    st = kl_se_generate_key(&se, id, pair ? pub : NULL);
    if (st != KL_OK) return chip_error("genkey", st);
    if (!pair) {
        if (o->json)
            printf("{\"id\": \"0x%04x\", \"generated\": true}\n", id);
        else
            printf("generated a new key in 0x%04x\n", id);
        return 0;
    }
    return print_pub(o, id, pub, o->raw);
}

static int cmd_pubkey(const struct opts *o)
{
    uint16_t id;
    if (o->npos != 1 || parse_id(o->pos[0], &id) < 0)
        return usage_error("pubkey needs one object id (hex)%s", "");
    uint8_t pub[64];
    kl_status st = kl_se_get_public_key(&se, id, pub);
    if (st != KL_OK) return chip_error("pubkey", st);
    return print_pub(o, id, pub, o->raw);
}

/* Message or digest for sign/verify: sets *input and the data; long messages are hashed
 * on the chip (MD_*) and signed as a digest. Returns length or -1 (message printed). */
static long sign_input(const struct opts *o, uint8_t *buf, size_t cap, uint8_t *input)
{
    if (o->digest) {
        if (o->in || o->hex) {
            usage_error("give --digest or the message (--in/--hex), not both%s", "");
            return -1;
        }
        long n = kl_tool_unhex(o->digest, buf, cap);
        if (n != 32) {
            usage_error("--digest must be 32 bytes of hex (a SHA-256)%s", "");
            return -1;
        }
        *input = KL_SE_INPUT_DIGEST;
        return 32;
    }
    long n = input_data(o, buf, cap);
    if (n < 0) return -1;
    *input = KL_SE_INPUT_MESSAGE;
    if (n > 1900) { /* too big for one frame with the signature: hash on the chip */
        uint8_t d[32];
        kl_status st = kl_se_sha256(&se, buf, (size_t)n, d);
        if (st != KL_OK) {
            chip_error("hashing the message", st);
            return -2;
        }
        memcpy(buf, d, 32);
        *input = KL_SE_INPUT_DIGEST;
        return 32;
    }
    return n;
}

static int cmd_sign(const struct opts *o)
{
    static uint8_t buf[1u << 20];
    uint16_t id;
    if (o->npos != 1 || parse_id(o->pos[0], &id) < 0)
        return usage_error("sign needs one key id (hex)%s", "");
    uint8_t input;
    long n = sign_input(o, buf, sizeof buf, &input);
    if (n < 0) return n == -1 ? 2 : 1;
    uint8_t sig[80];
    size_t sl = 0;
    kl_status st = kl_se_sign(&se, id, o->der ? KL_SE_SIG_DER : KL_SE_SIG_RAW, input, buf,
                              (size_t)n, sig, sizeof sig, &sl);
    if (st != KL_OK) return chip_error("sign", st);
    if (o->out) return kl_tool_write_file(o->out, sig, sl) < 0 ? 1 : 0;
    if (o->json) {
        printf("{\"id\": \"0x%04x\", \"format\": \"%s\", \"signature\": \"", id,
               o->der ? "der" : "raw");
        kl_tool_hex_print(stdout, sig, sl);
        printf("\"}\n");
    } else {
        kl_tool_hex_print(stdout, sig, sl);
        printf("\n");
    }
    return 0;
}

static int cmd_verify(const struct opts *o)
{
    static uint8_t buf[1u << 20];
    uint16_t id;
    if (o->npos != 1 || parse_id(o->pos[0], &id) < 0)
        return usage_error("verify needs one key id (hex)%s", "");
    uint8_t sig[128];
    long sl;
    if (!!o->sig + !!o->sig_file != 1)
        return usage_error("verify needs exactly one of --sig HEX or --sig-file FILE%s", "");
    sl = o->sig ? kl_tool_unhex(o->sig, sig, sizeof sig)
                : kl_tool_read_file(o->sig_file, sig, sizeof sig);
    if (sl <= 0) return usage_error("the signature is empty or not hex%s", "");
    uint8_t input;
    long n = sign_input(o, buf, sizeof buf, &input);
    if (n < 0) return n == -1 ? 2 : 1;
    kl_status st = kl_se_verify(&se, id, o->der ? KL_SE_SIG_DER : KL_SE_SIG_RAW, input, sig,
                                (size_t)sl, buf, (size_t)n);
    if (st != KL_OK && st != KL_E_VERIFY_FAILED) return chip_error("verify", st);
    if (o->json)
        printf("{\"id\": \"0x%04x\", \"valid\": %s}\n", id, st == KL_OK ? "true" : "false");
    else
        printf("signature %s\n", st == KL_OK ? "valid" : "NOT valid");
    return st == KL_OK ? 0 : 1;
}

static int cmd_random(const struct opts *o)
{
    static uint8_t buf[65536];
    uint32_t n;
    if (o->npos != 1 || parse_u32(o->pos[0], &n) < 0 || n == 0 || n > sizeof buf)
        return usage_error("random needs a byte count 1..65536%s", "");
    kl_status st = kl_se_random(&se, buf, n);
    if (st != KL_OK) return chip_error("random", st);
    if (o->out) return kl_tool_write_file(o->out, buf, n) < 0 ? 1 : 0;
    if (o->json) printf("{\"hex\": \"");
    kl_tool_hex_print(stdout, buf, n);
    printf(o->json ? "\"}\n" : "\n");
    return 0;
}

static int cmd_lifecycle(const struct opts *o)
{
    if (o->npos > 1) return usage_error("lifecycle takes at most one STATE%s", "");
    if (o->npos == 1) {
        uint8_t state;
        if (kl_se_lifecycle_parse(o->pos[0], &state) != KL_OK)
            return usage_error("unknown life-cycle state '%s' (DELIVERY INITIALIZED "
                               "OPERATIONAL TERMINATED)",
                               o->pos[0]);
        kl_status st = kl_se_set_lifecycle(&se, state);
        if (st != KL_OK) return chip_error("lifecycle", st);
    }
    struct kl_se_status s;
    kl_status st = kl_se_status(&se, &s);
    if (st != KL_OK) return chip_error("status", st);
    if (o->json)
        printf("{\"lifecycle\": \"%s\", \"lifecycle_code\": %u}\n",
               kl_se_lifecycle_name(s.lifecycle), s.lifecycle);
    else
        printf("%s\n", kl_se_lifecycle_name(s.lifecycle));
    return 0;
}

static const struct {
    const char *key;
    uint8_t bit;
} cfg_flags[] = {{"require_channel", 1},
                 {"terminate_allowed", 2},
                 {"master_secret_readable", 4},
                 {"factory_reset", 8},
                 {"watchdog", 16}};

static int cmd_config(const struct opts *o)
{
    struct kl_se_config c;
    kl_status st = kl_se_get_config(&se, &c);
    if (st != KL_OK) return chip_error("config", st);
    if (o->npos) {
        for (int i = 0; i < o->npos; i++) {
            char kv[80];
            if (strlen(o->pos[i]) >= sizeof kv) return usage_error("bad setting '%s'", o->pos[i]);
            strcpy(kv, o->pos[i]);
            char *eq = strchr(kv, '=');
            uint32_t v;
            if (!eq || parse_u32(eq + 1, &v) < 0)
                return usage_error("config settings are KEY=NUMBER, not '%s'", o->pos[i]);
            *eq = 0;
            int done = 0;
            for (size_t k = 0; k < sizeof cfg_flags / sizeof cfg_flags[0]; k++)
                if (!strcmp(kv, cfg_flags[k].key)) {
                    if (v > 1) return usage_error("%s takes 0 or 1", kv);
                    c.flags =
                        (uint8_t)(v ? c.flags | cfg_flags[k].bit : c.flags & ~cfg_flags[k].bit);
                    done = 1;
                }
            if (!strcmp(kv, "reset_events") && v <= 15) c.reset_events = (uint8_t)v, done = 1;
            if (!strcmp(kv, "tamper_action") && v <= 1) c.tamper_action = (uint8_t)v, done = 1;
            if (!strcmp(kv, "wd_initial_ms")) c.wd_initial_ms = v, done = 1;
            if (!strcmp(kv, "wd_normal_ms")) c.wd_normal_ms = v, done = 1;
            if (!done) return usage_error("unknown config key or value out of range: '%s'", kv);
        }
        st = kl_se_set_config(&se, &c);
        if (st != KL_OK) return chip_error("config", st);
        st = kl_se_get_config(&se, &c);
        if (st != KL_OK) return chip_error("config", st);
    }
    if (o->json) printf("{");
    for (size_t k = 0; k < sizeof cfg_flags / sizeof cfg_flags[0]; k++) {
        int on = !!(c.flags & cfg_flags[k].bit);
        if (o->json)
            printf("\"%s\": %s, ", cfg_flags[k].key, on ? "true" : "false");
        else
            printf("%-24s %d\n", cfg_flags[k].key, on);
    }
    if (o->json)
        printf("\"reset_events\": %u, \"tamper_action\": %u, \"wd_initial_ms\": %u, "
               "\"wd_normal_ms\": %u}\n",
               c.reset_events, c.tamper_action, (unsigned)c.wd_initial_ms,
               (unsigned)c.wd_normal_ms);
    else
        printf("%-24s %u\n%-24s %u\n%-24s %u\n%-24s %u\n", "reset_events", c.reset_events,
               "tamper_action", c.tamper_action, "wd_initial_ms", (unsigned)c.wd_initial_ms,
               "wd_normal_ms", (unsigned)c.wd_normal_ms);
    return 0;
}

static int cmd_counter(const struct opts *o)
{
    uint16_t id;
    if (o->npos != 1 || parse_id(o->pos[0], &id) < 0)
        return usage_error("counter needs one object id (hex)%s", "");
    uint32_t v = 0, step;
    kl_status st;
    if (o->hex) return usage_error("counter takes --add N, not --hex%s", "");
    if (o->length) { /* --add is stored in length (see parse_opts) */
        if (parse_u32(o->length, &step) < 0) return usage_error("bad --add '%s'", o->length);
        st = kl_se_counter_update(&se, id, step, &v);
    } else {
        st = kl_se_counter_read(&se, id, &v);
    }
    if (st != KL_OK) return chip_error("counter", st);
    if (o->json)
        printf("{\"id\": \"0x%04x\", \"value\": %u}\n", id, (unsigned)v);
    else
        printf("%u\n", (unsigned)v);
    return 0;
}

static int simple(const struct opts *o, const char *name, kl_status (*fn)(struct kl_se *))
{
    if (o->npos) return usage_error("%s takes no arguments", name);
    kl_status st = fn(&se);
    if (st != KL_OK) return chip_error(name, st);
    if (o->json)
        printf("{\"ok\": true}\n");
    else
        printf("%s: done\n", name);
    return 0;
}

static int cmd_tamper(const struct opts *o)
{
    return simple(o, "tamper", kl_se_tamper);
}
static int cmd_kick(const struct opts *o)
{
    return simple(o, "kick", kl_se_kick);
}
static int cmd_reset(const struct opts *o)
{
    return simple(o, "reset", kl_se_reset);
}

static int cmd_channel(const struct opts *o)
{
    if (o->npos != 1 || (strcmp(o->pos[0], "pin") && strcmp(o->pos[0], "check")))
        return usage_error("channel needs 'pin' or 'check'");
    if (!strcmp(o->pos[0], "pin")) {
        uint8_t pub[KL_SE_IDENTITY_LEN];
        kl_status st = kl_se_get_identity(&se, pub);
        if (st != KL_OK) return chip_error("channel pin", st);
        char pem[256];
        size_t n = 0;
        st = kl_channel_pub_to_pem(pub, pem, sizeof pem, &n);
        if (st != KL_OK) return chip_error("channel pin", st);
        if (o->out) {
            if (kl_tool_write_file(o->out, (const uint8_t *)pem, n) < 0) return 1;
            if (o->json) {
                printf("{\"identity\": \"");
                kl_tool_hex_print(stdout, pub, sizeof pub);
                printf("\", \"pin_file\": ");
                kl_tool_json_str(stdout, o->out);
                printf("}\n");
            } else {
                printf("pinned the chip identity key in %s\n", o->out);
            }
            return 0;
        }
        if (o->json) {
            printf("{\"identity\": \"");
            kl_tool_hex_print(stdout, pub, sizeof pub);
            printf("\"}\n");
        } else {
            fputs(pem, stdout);
        }
        return 0;
    }
    if (!o->pin) return usage_error("channel check needs --pin FILE");
    /* the channel was opened (and the confirmation checked) before we got here */
    struct kl_se_status s;
    kl_status st = kl_se_status(&se, &s);
    if (st != KL_OK) return chip_error("status inside the channel", st);
    int open = kl_se_channel_is_open(&se) && (s.session & 2);
    st = kl_se_channel_close(&se);
    if (st != KL_OK) return chip_error("closing the channel", st);
    if (o->json)
        printf("{\"channel\": %s}\n", open ? "true" : "false");
    else
        printf("secure channel %s\n", open ? "opened with the pinned chip: ok" : "NOT open");
    return open ? 0 : 1;
}

static const struct {
    const char *name;
    int (*run)(const struct opts *o);
} cmds[] = {
    {"status", cmd_status},   {"ping", cmd_ping},           {"list", cmd_list},
    {"info", cmd_info},       {"create", cmd_create},       {"delete", cmd_delete},
    {"read", cmd_read},       {"write", cmd_write},         {"genkey", cmd_genkey},
    {"pubkey", cmd_pubkey},   {"sign", cmd_sign},           {"verify", cmd_verify},
    {"random", cmd_random},   {"lifecycle", cmd_lifecycle}, {"config", cmd_config},
    {"counter", cmd_counter}, {"tamper", cmd_tamper},       {"kick", cmd_kick},
    {"reset", cmd_reset},     {"channel", cmd_channel},     {"import", cmd_import},
};

/* Options may come before or after the command (`keylink se status --json`). */
static int parse_opts(int argc, char **argv, struct opts *o, const char **cmd)
{
    static const struct {
        const char *name;
        size_t off;
    } valued[] = {
        {"--device", offsetof(struct opts, device)},
        {"--pin", offsetof(struct opts, pin)},
        {"--admin-key", offsetof(struct opts, admin_key)},
        {"--admin-id", offsetof(struct opts, admin_id)},
        {"--pem", offsetof(struct opts, pem)},
        {"--import-key", offsetof(struct opts, import_key)},
        {"--type", offsetof(struct opts, type)},
        {"--props", offsetof(struct opts, props)},
        {"--rules", offsetof(struct opts, rules)},
        {"--usage", offsetof(struct opts, usage)},
        {"--alg", offsetof(struct opts, alg)},
        {"--key-type", offsetof(struct opts, key_type)},
        {"--size", offsetof(struct opts, size)},
        {"--initial", offsetof(struct opts, initial)},
        {"--in", offsetof(struct opts, in)},
        {"--hex", offsetof(struct opts, hex)},
        {"--out", offsetof(struct opts, out)},
        {"--digest", offsetof(struct opts, digest)},
        {"--sig", offsetof(struct opts, sig)},
        {"--sig-file", offsetof(struct opts, sig_file)},
        {"--offset", offsetof(struct opts, offset)},
        {"--length", offsetof(struct opts, length)},
        {"--add", offsetof(struct opts, length)},
    };
    *cmd = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--json")) {
            o->json = 1;
            continue;
        }
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            o->help = 1;
            continue;
        }
        if (!strcmp(a, "--der")) {
            o->der = 1;
            continue;
        }
        if (!strcmp(a, "--raw")) {
            o->raw = 1;
            continue;
        }
        if (!strcmp(a, "--create")) {
            o->create = 1;
            continue;
        }
        if (a[0] == '-' && a[1] == '-') {
            size_t k;
            for (k = 0; k < sizeof valued / sizeof valued[0]; k++)
                if (!strcmp(a, valued[k].name)) break;
            if (k == sizeof valued / sizeof valued[0]) return usage_error("unknown option %s", a);
            if (i + 1 >= argc) return usage_error("%s needs a value", a);
            *(const char **)((char *)o + valued[k].off) = argv[++i];
            continue;
        }
        if (!*cmd) {
            *cmd = a;
            continue;
        }
        if (o->npos >= (int)(sizeof o->pos / sizeof o->pos[0]))
            return usage_error("too many arguments at '%s'", a);
        o->pos[o->npos++] = a;
    }
    return 0;
}

int kl_cli_se(int argc, char **argv);
int kl_cli_se(int argc, char **argv)
{
    struct opts o;
    memset(&o, 0, sizeof o);
    const char *cmd = NULL;
    int rc = parse_opts(argc, argv, &o, &cmd);
    if (rc) return rc;
    if (o.help || !cmd) {
        fputs(usage_text, o.help ? stdout : stderr);
        return o.help ? 0 : 2;
    }
    size_t k;
    for (k = 0; k < sizeof cmds / sizeof cmds[0]; k++)
        if (!strcmp(cmd, cmds[k].name)) break;
    if (k == sizeof cmds / sizeof cmds[0]) return usage_error("unknown command '%s'", cmd);
    (void)kl_se_mem_register(); /* mem:DIR works in this program */
    rc = connect_chip(&o);
    if (rc) return rc;
    if (o.pin && (rc = open_channel(o.pin)) != 0) {
        kl_se_close(&se);
        return rc;
    }
    if (o.admin_key && (rc = admin_login(&o)) != 0) {
        kl_se_close(&se);
        return rc;
    }
    rc = cmds[k].run(&o);
    kl_se_close(&se);
    return rc;
}
