/*
 * Inside the chip model: the chip's state and the helpers command files share.
 * Only se/ includes this header. docs/chip-model.md describes the model.
 *
 * Everything a command may change lives in struct kl_state, a plain struct without
 * pointers: the dispatcher snapshots it before each command and copies it back when
 * the command fails or its commit fails, so a failed command changes nothing.
 */
#ifndef KL_SE_CHIP_INT_H
#define KL_SE_CHIP_INT_H

#include <stddef.h>
#include <stdint.h>

#include "chip.h"
#include "cmd.h"
#include "cx.h"
#include "keylink/status.h"

/* ---- sizes and limits ---- */
#define KL_STORAGE_TOTAL 8192u /* user storage, bytes, overhead included */
#define KL_OBJ_OVERHEAD 32u    /* fixed cost of each object in user storage */
#define KL_MAX_OBJS 248u       /* 8192 / (32 + 1): the most objects that can fit */
#define KL_MAX_WRITES 10000u   /* endurance: the 10,001st write is refused */
#define KL_CHALLENGE_LEN 16u
#define KL_SERIAL_LEN 24u
#define KL_CONFIG_LEN 12u
#define KL_STATUS_LEN 59u
#define KL_RULES_LEN 9u
#define KL_MAX_PAYLOAD 2048u

/* ---- object model (docs/protocol.md, "Objects") ---- */
enum kl_obj_type {
    KL_OBJ_SECRET = 1,
    KL_OBJ_PUBKEY = 2,
    KL_OBJ_KEYPAIR = 3,
    KL_OBJ_DATA = 4,
    KL_OBJ_UPCOUNTER = 5,
    KL_OBJ_CERT = 6,
    KL_OBJ_DOWNCOUNTER = 7,
};
enum kl_obj_props { KL_PROP_TEMP = 1, KL_PROP_PERSIST = 2, KL_PROP_WIPE = 4 };
enum kl_key_type { KL_KT_NONE = 0, KL_KT_AES = 1, KL_KT_PSK = 2, KL_KT_HMAC = 3, KL_KT_ECC = 4 };
enum kl_usage {
    KL_USE_CHANNEL = 0x00,
    KL_USE_SIGN = 0x01,
    KL_USE_ENCRYPT = 0x02,
    KL_USE_TLS = 0x04,
    KL_USE_ADMIN = 0x08,
    KL_USE_VERIFY = 0x10,
    KL_USE_FIRMWARE = 0x20,
    KL_USE_IMPORT = 0x80,
    KL_USE_KEX = 0xD1,
    KL_USE_NONE = 0xFF, /* slot unused */
};
enum kl_alg {
    KL_ALG_NONE = 0x00,
    KL_ALG_ECDSA = 0x01,
    KL_ALG_ECDH = 0x02,
    KL_ALG_AES_ECB = 0x10,
    KL_ALG_AES_CBC = 0x11,
    KL_ALG_AES_CCM = 0x13,
    KL_ALG_AES_GCM = 0x14,
    KL_ALG_AES_CMAC = 0x15,
    KL_ALG_HMAC = 0x20,
    KL_ALG_TLS_PRF = 0x30,
};
enum kl_lifecycle {
    KL_LC_DELIVERY = 3,
    KL_LC_INITIALIZED = 4,
    KL_LC_OPERATIONAL = 5,
    KL_LC_TERMINATED = 6,
};
/* Role bits (rules byte 0) and right bits (rules byte 1). */
enum kl_role { KL_ROLE_A = 1, KL_ROLE_H = 2, KL_ROLE_S = 4, KL_ROLE_E = 8, KL_ROLE_X = 16 };
enum kl_right { KL_RIGHT_R = 1, KL_RIGHT_W = 2, KL_RIGHT_D = 4, KL_RIGHT_G = 8, KL_RIGHT_X = 16 };

/* Config block bits (docs/protocol.md, "Config block"). */
#define KL_CFG_REQUIRE_HOST 0x01u
#define KL_CFG_ALLOW_TERMINATE 0x02u
#define KL_CFG_MASTER_OUT 0x04u
#define KL_CFG_FACTORY_RESET 0x08u
#define KL_CFG_WATCHDOG 0x10u
#define KL_RST_BOOT_FAIL 0x01u
#define KL_RST_CHANNEL_ERR 0x02u
#define KL_RST_TAMPER 0x04u
#define KL_RST_WATCHDOG 0x08u

/* What the dispatcher does after a command committed (kl_state.pending_reset bits). */
#define KL_PENDING_RESET 1u /* a full reset (kl_chip_reset_volatile) */
#define KL_PENDING_WIPE 2u  /* tamper: drop RAM sessions (crypto, TLS) */

/* One object. Its data bytes live in the state's pool at off (size bytes reserved). */
struct kl_obj {
    uint16_t id;
    uint8_t type;
    uint8_t props;
    uint16_t size; /* capacity in data bytes */
    uint8_t rules[KL_RULES_LEN];
    uint8_t key_type;
    uint8_t usage[2]; /* two usage/algorithm slots */
    uint8_t alg[2];
    uint8_t has_key; /* keys: material present */
    uint16_t used;   /* data bytes written (keys: material length) */
    uint32_t writes; /* write cycles used (persisted) */
    uint16_t off;    /* offset of the data in kl_state.pool */
};

/* Everything a command can change. Plain data: copied whole for snapshot/rollback. */
struct kl_state {
    uint8_t lifecycle;
    uint8_t config[KL_CONFIG_LEN];
    uint32_t tamper_count;
    uint32_t reset_count;
    /* volatile session state */
    uint8_t admin;         /* admin session open */
    uint8_t boot_ok;       /* VERIFY_BOOT succeeded since the last reset */
    uint8_t pending_reset; /* KL_PENDING_*: done after this command commits */
    uint64_t wd_deadline;  /* watchdog expiry (ms), 0 = arm at next tick */
    /* objects, sorted by id */
    uint16_t nobj;
    struct kl_obj obj[KL_MAX_OBJS];
    uint16_t pool_used;
    uint8_t pool[KL_STORAGE_TOTAL];
};

struct kl_image;
struct kl_crypto_sessions; /* se/crypto_sessions.h (se-crypto) */

struct kl_chip {
    struct kl_state st;
    struct kl_state snap; /* the state before the running command */
    /* fixed at the factory */
    uint8_t serial[KL_SERIAL_LEN];
    uint8_t id_priv[KL_CX_P256_PRIV];
    uint8_t id_pub[KL_CX_P256_PUB];
    /* machinery */
    struct kl_cx_drbg *drbg;
    struct kl_image *image;
    uint8_t *committed; /* bytes of the last committed image */
    size_t committed_len;
    int dirty;       /* this command stored persistent material (kl_obj_store_secret) */
    int uncommitted; /* a reset outside a command could not be committed yet */
    /* Kept outside kl_state because failures change them on purpose: ADMIN_AUTH uses
     * the challenge up either way, a failed VERIFY_BOOT may reset the chip. */
    int challenge_set;
    uint8_t challenge[KL_CHALLENGE_LEN];
    uint8_t events;  /* KL_RST_* events raised by the running command */
    uint64_t now_ms; /* last time given to kl_chip_tick */
    int have_now;
    struct kl_crypto_sessions *cs;
    /* secure channel (se/channel.*): the channel helper sets these. channel_free, when
     * set, is called to drop the channel on reset and close. */
    void *channel;
    int channel_open;
    void (*channel_free)(struct kl_chip *c);
    /* TLS 1.2 offload state (se/cmd_tls.c). tls_free, when set, wipes and frees it and
     * clears both fields; called on reset, tamper, factory reset and close. */
    void *tls;
    void (*tls_free)(struct kl_chip *c);
};

/* ---- shared helpers (objects.c, rules.c) ---- */

/* The object with this id, or NULL. */
struct kl_obj *kl_obj_find(struct kl_chip *c, uint16_t id);

/* Looks up a key for a cryptographic use: the object exists (KL_E_NOT_FOUND), is a
 * secret key, public key or key pair (KL_E_WRONG_TYPE) holding material (KL_E_STATE),
 * the chip is not TERMINATED (KL_E_TERMINATED), the current roles hold right x in the
 * current life-cycle state (KL_E_ACCESS_DENIED, or KL_E_BOOT when only the secure-boot
 * role would grant it), and one slot matches usage and alg (KL_E_USAGE). */
kl_status kl_obj_for_use(struct kl_chip *c, uint16_t id, uint8_t usage, uint8_t alg,
                         struct kl_obj **out);

/* Key material. NULL when the object is not of the right kind or holds no key. */
const uint8_t *kl_obj_priv(const struct kl_chip *c, const struct kl_obj *o); /* 32, key pair */
const uint8_t *kl_obj_pub(const struct kl_chip *c, const struct kl_obj *o);  /* 64, pair/pub */
const uint8_t *kl_obj_secret(const struct kl_chip *c, const struct kl_obj *o, size_t *len);
/* Data bytes of a transparent-data or certificate object (*len = bytes written). */
const uint8_t *kl_obj_data(const struct kl_chip *c, const struct kl_obj *o, size_t *len);

/* Writes secret material into an existing secret-key object: KL_E_NOT_FOUND,
 * KL_E_WRONG_TYPE, KL_E_BAD_PARAM (n does not fit the key type/size), KL_E_ACCESS_DENIED /
 * KL_E_BOOT (right w), KL_E_ENDURANCE. Counts a write. The dispatcher commits it. */
kl_status kl_obj_store_secret(struct kl_chip *c, uint16_t id, const uint8_t *k, size_t n);

/* The chip's DRBG. */
struct kl_cx_drbg *kl_chip_drbg(struct kl_chip *c);

/* 1 when the host role is held (secure channel open). */
int kl_chip_role_host(const struct kl_chip *c);

/* The factory identity key pair (secure channel): 32-byte scalar, 64-byte X||Y. */
const uint8_t *kl_chip_identity_priv(struct kl_chip *c);
const uint8_t *kl_chip_identity_pub(struct kl_chip *c);

/* Roles held now (KL_ROLE_* bits). */
uint8_t kl_chip_roles(const struct kl_chip *c);

/* KL_OK if the current roles hold right on o in the current life-cycle state;
 * KL_E_BOOT if only the secure-boot role would grant it; KL_E_ACCESS_DENIED otherwise. */
kl_status kl_rules_allow(const struct kl_chip *c, const struct kl_obj *o, uint8_t right);

/* An event that resets the chip when the config says so (bit of config byte 1). The
 * channel helper calls it with KL_RST_CHANNEL_ERR after a channel failure. */
void kl_chip_event(struct kl_chip *c, uint8_t reset_event);

/* ---- internals of the core files ---- */
uint16_t kl_be16(const uint8_t *p);
uint32_t kl_be32(const uint8_t *p);
void kl_put16(uint8_t *p, uint16_t v);
void kl_put32(uint8_t *p, uint32_t v);

/* objects.c */
size_t kl_store_free(const struct kl_state *s);
kl_status kl_obj_check_layout(uint8_t type, uint8_t props, uint16_t size, const uint8_t rules[9],
                              uint8_t key_type, const uint8_t usage[2], const uint8_t alg[2]);
/* Adds an object (validated already); space and id checked here. */
kl_status kl_obj_insert(struct kl_state *s, const struct kl_obj *tmpl, struct kl_obj **out);
void kl_obj_remove(struct kl_state *s, uint16_t id);
/* Removes every object whose props share a bit with mask. */
void kl_obj_remove_props(struct kl_state *s, uint8_t mask);
uint8_t *kl_obj_bytes(struct kl_state *s, const struct kl_obj *o);
/* KL_E_ENDURANCE when the object has no write cycle left; otherwise counts one. */
kl_status kl_obj_count_write(struct kl_obj *o);

/* obj_attr.c: the 20-byte attribute block of CREATE_OBJECT (docs/protocol.md), which also
 * starts OBJECT_INFO's answer and each object header of the image. _get sets only the
 * fields the block holds (id .. alg[1]). */
#define KL_OBJ_ATTR_LEN 20u
void kl_obj_attr_put(uint8_t *p, const struct kl_obj *o);
void kl_obj_attr_get(struct kl_obj *o, const uint8_t *p);

/* rules.c: validity of a 9-byte rules block (reserved bytes 0, known bits only). */
int kl_rules_valid(const uint8_t r[9]);

/* config.c */
void kl_config_default(uint8_t cfg[KL_CONFIG_LEN]);
int kl_config_valid(const uint8_t cfg[KL_CONFIG_LEN]);

/* chip.c: volatile reset (temporary objects, sessions, channel, admin, secure boot). */
void kl_chip_reset_volatile(struct kl_chip *c);
/* chip.c: commits a reset count that an earlier event could not commit (no-op if none). */
void kl_chip_retry_commit(struct kl_chip *c);

/* watchdog.c */
uint32_t kl_wd_period(const struct kl_state *s, int initial);
void kl_wd_arm(struct kl_chip *c, int initial);

/* state_codec.c: persistent state <-> bytes. encode mallocs *out. decode fills st (whose
 * volatile fields it zeroes) plus the factory fields, or refuses with KL_E_STORAGE and
 * sets *why (a short reason, no secrets; why may be NULL) and changes nothing. */
kl_status kl_state_encode(const struct kl_chip *c, uint8_t **out, size_t *len);
kl_status kl_state_decode(const uint8_t *in, size_t len, struct kl_state *st,
                          uint8_t serial[KL_SERIAL_LEN], uint8_t id_priv[KL_CX_P256_PRIV],
                          uint8_t id_pub[KL_CX_P256_PUB], const char **why);

/* ---- the core command handlers ---- */
/* Handler signature (struct kl_cmd's kl_cmd_fn). Not every handler needs every
 * argument, hence the unused markers. */
#define KL_UNUSED __attribute__((unused))
#define KL_HANDLER(name)                                                                           \
    kl_status name(struct kl_chip *c KL_UNUSED, const uint8_t *req KL_UNUSED,                      \
                   size_t len KL_UNUSED, uint8_t *resp KL_UNUSED, size_t cap KL_UNUSED,            \
                   size_t *rlen KL_UNUSED)
KL_HANDLER(kl_cmd_ping);
KL_HANDLER(kl_cmd_get_status);
KL_HANDLER(kl_cmd_set_lifecycle);
KL_HANDLER(kl_cmd_set_config);
KL_HANDLER(kl_cmd_get_config);
KL_HANDLER(kl_cmd_get_challenge);
KL_HANDLER(kl_cmd_admin_auth);
KL_HANDLER(kl_cmd_admin_auth_reset);
KL_HANDLER(kl_cmd_reset_factory);
KL_HANDLER(kl_cmd_tamper);
KL_HANDLER(kl_cmd_watchdog_kick);
KL_HANDLER(kl_cmd_reset);
KL_HANDLER(kl_cmd_verify_boot);
KL_HANDLER(kl_cmd_create_object);
KL_HANDLER(kl_cmd_delete_object);
KL_HANDLER(kl_cmd_read_object);
KL_HANDLER(kl_cmd_write_object);
KL_HANDLER(kl_cmd_list_objects);
KL_HANDLER(kl_cmd_object_info);
KL_HANDLER(kl_cmd_counter_update);
KL_HANDLER(kl_cmd_generate_key);
KL_HANDLER(kl_cmd_import_key);

#endif
