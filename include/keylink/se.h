/*
 * The secure element from the device's side: open a chip by URI, send commands, get
 * typed answers. One function per command of docs/protocol.md (Management, Objects,
 * Cryptography). libc only, no allocation: the caller owns `struct kl_se` (about 6.5 KB,
 * it holds the frame buffers) and every buffer passed in.
 *
 * Status conventions for every function below (listed once here, not repeated):
 *   KL_OK                  the chip did it;
 *   KL_E_* below 0x80      the chip's answer (docs/status.md, docs/protocol.md); the
 *                          chip changed nothing;
 *   KL_E_IO                the link failed or the chip closed it; reopen;
 *   KL_E_TIMEOUT           no answer in time (unix: 10 s, see kl_se_set_timeout);
 *   KL_E_PROTOCOL          the answer was malformed (CRC, length, unexpected payload);
 *   KL_E_BUSY              another host holds the chip (the daemon serves one at a time);
 *   KL_E_ARG               NULL where a pointer is required, or a field out of range;
 *   KL_E_BUFFER            a caller buffer is too small for the answer (the chip did
 *                          run the command);
 *   KL_E_UNSUPPORTED       the transport is not available in this build.
 * Each function's comment names only the statuses particular to it.
 *
 * Large transfers (objects, hash/MAC/cipher data, random bytes) are chunked here into
 * pieces of at most KL_SE_CHUNK bytes, which fit a frame with or without the secure
 * channel; callers pass buffers of any size.
 */
#ifndef KEYLINK_SE_H
#define KEYLINK_SE_H

#include <stddef.h>
#include <stdint.h>

#include "keylink/frame.h"
#include "keylink/status.h"

#define KL_SE_CHUNK 2000u /* data bytes per chunked command */
#define KL_SE_DEFAULT_TIMEOUT_MS 10000u
#define KL_SE_SC_STATE_SIZE 256u /* room for the secure channel state (struct kl_sc) */

struct kl_se;

/* ---------------------------------------------------------------- transports ---- */

#define KL_TRANSPORT_VERSION 1u

/*
 * A transport moves whole frames to the chip and back (SPI, I2C, a socket, a function
 * call). Implement these three functions to port the library; the table must outlive
 * every device opened with it. `version` must be KL_TRANSPORT_VERSION.
 */
struct kl_transport_ops {
    uint32_t version;
    const char *scheme; /* URI scheme it serves ("unix", "mem"), no colon */
    /* Connects to the chip named by arg (the URI after "scheme:"); may set se->tp_fd and
     * se->tp_ctx. KL_E_IO/KL_E_ARG/KL_E_STORAGE on failure, leaving nothing open. */
    kl_status (*open)(struct kl_se *se, const char *arg);
    /* Sends the tx_len-byte request frame in tx and receives exactly one response frame
     * into rx (rx_cap >= KL_FRAME_MAX), setting *rx_len. Checks no CRC (the caller does).
     * KL_E_IO, KL_E_TIMEOUT, KL_E_PROTOCOL (impossible header), KL_E_BUSY. */
    kl_status (*transceive)(struct kl_se *se, const uint8_t *tx, size_t tx_len, uint8_t *rx,
                            size_t rx_cap, size_t *rx_len);
    /* Releases what open took. Called once; never fails. */
    void (*close)(struct kl_se *se);
};

/* The built-in transport for `unix:PATH` (the keylink-se daemon), on POSIX hosts only;
 * an MCU build has no sockets and registers its own SPI/I2C table instead. */
#if defined(__unix__) || defined(__APPLE__)
#define KL_HAVE_TRANSPORT_UNIX 1
extern const struct kl_transport_ops kl_transport_unix;
#endif

/* Adds a transport to the URI table (a few static slots, no allocation). A scheme
 * registered twice keeps the first table (KL_OK). KL_E_ARG for a NULL table or a wrong
 * version; KL_E_BUFFER when the table is full. Not thread-safe: call at start-up. */
kl_status kl_transport_register(const struct kl_transport_ops *ops);

/* ------------------------------------------------------------------- device ---- */

/* The secure-channel hook (host/channel.c sets it while a channel is open). It runs one
 * command: cmd and req[0..req_len) in, the chip's status in *chip_status and the response
 * payload in resp. It builds and sends frames itself via kl_se_transceive_raw. The return
 * value is the link result (KL_OK if a response arrived, else KL_E_IO, KL_E_PROTOCOL...). */
typedef kl_status (*kl_se_wrap_fn)(struct kl_se *se, void *ctx, uint8_t cmd, const uint8_t *req,
                                   size_t req_len, uint8_t *resp, size_t resp_cap, size_t *resp_len,
                                   kl_status *chip_status);

/* A device handle. Caller-owned; fields are private to the library and its transports. */
struct kl_se {
    const struct kl_transport_ops *ops; /* NULL when closed */
    int tp_fd;                          /* transport's descriptor, -1 if none */
    void *tp_ctx;                       /* transport's state (mem: the chip model) */
    uint32_t timeout_ms;                /* per-command answer timeout */
    uint8_t tx[KL_FRAME_MAX];           /* request frame */
    uint8_t rx[KL_FRAME_MAX];           /* response frame */
    uint8_t req[KL_FRAME_MAX_PAYLOAD];  /* request payload under construction */
    /* Secure channel (include/keylink/channel.h): state, open flag and the hook that
     * wraps/unwraps every command while the channel is open. */
    _Alignas(16) uint8_t sc_state[KL_SE_SC_STATE_SIZE];
    int sc_open;
    kl_se_wrap_fn sc_hook;
    void *sc_ctx;
};

/* Opens a chip. uri is "unix:PATH" (keylink-se daemon socket) or "mem:DIR" (the model
 * in-process; the program must have called kl_se_mem_register from libkeylink_se), or
 * any registered scheme; NULL means the environment variable KEYLINK_SE.
 * KL_E_ARG: no URI (NULL and KEYLINK_SE unset) or unknown scheme; KL_E_IO: cannot
 * connect; (mem:) KL_E_STORAGE the chip's image failed to load, KL_E_BUSY another
 * process (a daemon) has DIR open. On failure *se is left closed (kl_se_close on it is
 * harmless). */
kl_status kl_se_open(struct kl_se *se, const char *uri);
/* Opens with a given transport table (for ports: SPI/I2C). arg goes to ops->open. */
kl_status kl_se_open_transport(struct kl_se *se, const struct kl_transport_ops *ops,
                               const char *arg);
/* Closes the link; the chip keeps its state. Safe on a closed or zeroed handle. */
void kl_se_close(struct kl_se *se);
/* Answer timeout for later commands (unix: transport), milliseconds, > 0. */
kl_status kl_se_set_timeout(struct kl_se *se, uint32_t ms);

/* Runs one command with any byte (the escape hatch for commands without a wrapper, e.g.
 * TLS offload). req may be NULL when req_len is 0; resp may be NULL when resp_cap is 0.
 * Returns the chip's status (or a link status); on KL_OK *resp_len is the payload length.
 * Goes through the secure channel when one is open. KL_E_BAD_LENGTH if req_len > 2048. */
kl_status kl_se_command(struct kl_se *se, uint8_t cmd, const uint8_t *req, size_t req_len,
                        uint8_t *resp, size_t resp_cap, size_t *resp_len);
/* Sends se->tx[0..tx_len) and receives one frame into se->rx (for the channel hook).
 * Does not decode; *rx_len is the received frame's length. */
kl_status kl_se_transceive_raw(struct kl_se *se, size_t tx_len, size_t *rx_len);

/* ---------------------------------------------------------------- constants ---- */

enum kl_se_cmd {
    KL_CMD_CREATE_OBJECT = 0x10,
    KL_CMD_DELETE_OBJECT = 0x11,
    KL_CMD_READ_OBJECT = 0x12,
    KL_CMD_WRITE_OBJECT = 0x13,
    KL_CMD_LIST_OBJECTS = 0x14,
    KL_CMD_OBJECT_INFO = 0x15,
    KL_CMD_COUNTER_UPDATE = 0x16,
    KL_CMD_GENERATE_KEY = 0x20,
    KL_CMD_KEY_EXCHANGE = 0xC3,
    KL_CMD_SIGN_VERIFY = 0xC8,
    KL_CMD_VERIFY_WITH_KEY = 0xC9,
    KL_CMD_IMPORT_KEY = 0xCA,
    KL_CMD_MD_INIT = 0xD0,
    KL_CMD_MD_UPDATE = 0xD1,
    KL_CMD_MD_FINISH = 0xD2,
    KL_CMD_MD_PEEK = 0xD3,
    KL_CMD_MAC_INIT = 0xD4,
    KL_CMD_MAC_UPDATE = 0xD5,
    KL_CMD_MAC_FINISH = 0xD6,
    KL_CMD_CIPHER_INIT = 0xD8,
    KL_CMD_CIPHER_UPDATE = 0xD9,
    KL_CMD_CIPHER_FINISH = 0xDA,
    KL_CMD_RANDOM = 0xDC,
    KL_CMD_CHANNEL_OPEN = 0xE0,
    KL_CMD_CHANNEL_CLOSE = 0xE1,
    KL_CMD_GET_IDENTITY = 0xE2,
    KL_CMD_TAMPER = 0xE8,
    KL_CMD_WATCHDOG_KICK = 0xE9,
    KL_CMD_RESET = 0xEA,
    KL_CMD_VERIFY_BOOT = 0xEB,
    KL_CMD_GET_STATUS = 0xF2,
    KL_CMD_SET_LIFECYCLE = 0xF3,
    KL_CMD_SET_CONFIG = 0xF4,
    KL_CMD_GET_CONFIG = 0xF5,
    KL_CMD_PING = 0xF7,
    KL_CMD_GET_CHALLENGE = 0xF8,
    KL_CMD_ADMIN_AUTH = 0xF9,
    KL_CMD_ADMIN_AUTH_RESET = 0xFA,
    KL_CMD_RESET_FACTORY = 0xFB,
};

enum kl_se_lifecycle {
    KL_SE_LC_DELIVERY = 3,
    KL_SE_LC_INITIALIZED = 4,
    KL_SE_LC_OPERATIONAL = 5,
    KL_SE_LC_TERMINATED = 6,
};

enum kl_se_obj_type {
    KL_SE_OBJ_SECRET_KEY = 1,
    KL_SE_OBJ_PUBLIC_KEY = 2,
    KL_SE_OBJ_KEY_PAIR = 3,
    KL_SE_OBJ_DATA = 4,
    KL_SE_OBJ_UP_COUNTER = 5,
    KL_SE_OBJ_CERT = 6,
    KL_SE_OBJ_DOWN_COUNTER = 7,
};

enum kl_se_obj_props {
    KL_SE_PROP_TEMPORARY = 1,
    KL_SE_PROP_PERSISTENT = 2,
    KL_SE_PROP_WIPE_ON_TAMPER = 4,
};

enum kl_se_key_type {
    KL_SE_KEY_NONE = 0,
    KL_SE_KEY_AES = 1,
    KL_SE_KEY_PSK = 2,
    KL_SE_KEY_HMAC = 3,
    KL_SE_KEY_ECC_P256 = 4
};

enum kl_se_usage {
    KL_SE_USAGE_SECURE_CHANNEL = 0x00,
    KL_SE_USAGE_SIGN = 0x01,
    KL_SE_USAGE_ENCRYPT = 0x02,
    KL_SE_USAGE_TLS_AUTH = 0x04,
    KL_SE_USAGE_ADMIN_AUTH = 0x08,
    KL_SE_USAGE_VERIFY_CERT = 0x10,
    KL_SE_USAGE_VERIFY_FW = 0x20,
    KL_SE_USAGE_KEY_IMPORT = 0x80,
    KL_SE_USAGE_KEY_EXCHANGE = 0xD1,
    KL_SE_USAGE_UNUSED = 0xFF,
};

enum kl_se_alg {
    KL_SE_ALG_NONE = 0x00,
    KL_SE_ALG_ECDSA_SHA256 = 0x01,
    KL_SE_ALG_ECDH = 0x02,
    KL_SE_ALG_AES_ECB = 0x10,
    KL_SE_ALG_AES_CBC = 0x11,
    KL_SE_ALG_AES_CCM = 0x13,
    KL_SE_ALG_AES_GCM = 0x14,
    KL_SE_ALG_AES_CMAC = 0x15,
    KL_SE_ALG_HMAC_SHA256 = 0x20,
    KL_SE_ALG_TLS_PRF = 0x30,
};

/* Access-rule roles and rights (bit masks, docs/protocol.md "Access rules"). */
enum {
    KL_SE_ROLE_ADMIN = 1,
    KL_SE_ROLE_HOST = 2,
    KL_SE_ROLE_BOOT = 4,
    KL_SE_ROLE_USER = 8,
    KL_SE_ROLE_ANY = 16
};
enum {
    KL_SE_RIGHT_R = 1,
    KL_SE_RIGHT_W = 2,
    KL_SE_RIGHT_D = 4,
    KL_SE_RIGHT_G = 8,
    KL_SE_RIGHT_X = 16
};

/* Signature formats and inputs for sign/verify. */
enum { KL_SE_SIG_RAW = 0, KL_SE_SIG_DER = 1 };
enum { KL_SE_INPUT_DIGEST = 0, KL_SE_INPUT_MESSAGE = 1 };
/* Peer point encodings for ECDH. */
enum { KL_SE_POINT_XY = 0, KL_SE_POINT_SEC1 = 1, KL_SE_POINT_SPKI = 2 };
/* Cipher direction and padding. */
enum { KL_SE_CIPHER_ENCRYPT = 1, KL_SE_CIPHER_DECRYPT = 2 };
enum { KL_SE_PAD_NONE = 0, KL_SE_PAD_PKCS7 = 1 };

/* ------------------------------------------------------------- management ---- */

/* GET_STATUS, parsed. */
struct kl_se_status {
    char name[17]; /* NUL-terminated */
    uint8_t fw[3]; /* major, minor, patch */
    uint16_t hw;   /* hardware version */
    uint8_t serial[24];
    uint8_t lifecycle;    /* enum kl_se_lifecycle */
    uint16_t total_bytes; /* user storage (8192) */
    uint16_t free_bytes;
    uint32_t tamper_events;
    uint32_t resets;
    uint8_t session; /* bit 0 admin, bit 1 channel open, bit 2 boot verified */
};
#define KL_SE_STATUS_LEN 59u

/* GET_CONFIG / SET_CONFIG, parsed. */
struct kl_se_config {
    uint8_t flags;         /* bit 0 require channel, 1 TERMINATED allowed, 2 master secret
                              readable, 3 factory reset allowed, 4 watchdog enabled */
    uint8_t reset_events;  /* bit 0 boot failure, 1 channel error, 2 tamper, 3 watchdog */
    uint8_t tamper_action; /* 0 wipe, 1 wipe and go TERMINATED */
    uint32_t wd_initial_ms;
    uint32_t wd_normal_ms;
};
#define KL_SE_CONFIG_LEN 12u

/* PING: sends len bytes (0..2048) and checks they come back unchanged
 * (KL_E_PROTOCOL if not). data may be NULL when len is 0. */
kl_status kl_se_ping(struct kl_se *se, const uint8_t *data, size_t len);
/* GET_STATUS into *st (KL_E_PROTOCOL if the block is not 59 bytes). */
kl_status kl_se_status(struct kl_se *se, struct kl_se_status *st);
/* SET_LIFECYCLE to state (enum kl_se_lifecycle). KL_E_AUTH_REQUIRED: authenticate as
 * admin first; KL_E_LIFECYCLE: not one step forward or TERMINATED not allowed. */
kl_status kl_se_set_lifecycle(struct kl_se *se, uint8_t state);
/* GET_CONFIG into *cfg. */
kl_status kl_se_get_config(struct kl_se *se, struct kl_se_config *cfg);
/* SET_CONFIG from *cfg. KL_E_AUTH_REQUIRED outside DELIVERY without an admin session;
 * KL_E_BAD_PARAM for bits the chip does not know. */
kl_status kl_se_set_config(struct kl_se *se, const struct kl_se_config *cfg);
/* GET_CHALLENGE: 16 fresh bytes to sign with the admin key (replaces earlier ones). */
kl_status kl_se_get_challenge(struct kl_se *se, uint8_t challenge[16]);
/* ADMIN_AUTH with the r||s signature over SHA-256(challenge) made by key_id's private
 * half. KL_E_AUTH_FAILED (no challenge or bad signature), KL_E_USAGE, KL_E_NOT_FOUND. */
kl_status kl_se_admin_auth(struct kl_se *se, uint16_t key_id, const uint8_t sig[64]);
/* ADMIN_AUTH_RESET: ends the admin session. */
kl_status kl_se_admin_auth_reset(struct kl_se *se);
/* RESET_FACTORY. KL_E_AUTH_REQUIRED, KL_E_LIFECYCLE (config forbids it). */
kl_status kl_se_reset_factory(struct kl_se *se);
/* TAMPER (model input): wipes wipe-on-tamper and temporary objects. */
kl_status kl_se_tamper(struct kl_se *se);
/* WATCHDOG_KICK. */
kl_status kl_se_kick(struct kl_se *se);
/* RESET (model input: reset pulse). Also forgets this handle's secure channel. */
kl_status kl_se_reset(struct kl_se *se);
/* VERIFY_BOOT: digest of the firmware and key_id's r||s signature over it.
 * KL_E_VERIFY_FAILED, KL_E_USAGE (key is not verify-firmware), KL_E_NOT_FOUND. */
kl_status kl_se_verify_boot(struct kl_se *se, uint16_t key_id, const uint8_t digest[32],
                            const uint8_t sig[64]);

/* ---------------------------------------------------------------- objects ---- */

/* CREATE_OBJECT fields. initial is used for counters only. rules: 3 bytes per state
 * (DELIVERY, INITIALIZED, OPERATIONAL): roles mask, rights mask, 0. */
struct kl_se_object_attr {
    uint16_t id;
    uint8_t type;  /* enum kl_se_obj_type */
    uint8_t props; /* enum kl_se_obj_props */
    uint16_t size; /* capacity in data bytes */
    uint8_t rules[9];
    uint8_t key_type; /* enum kl_se_key_type */
    uint8_t usage1, alg1, usage2, alg2;
    uint32_t initial; /* counters: start value */
};

/* OBJECT_INFO, parsed. */
struct kl_se_object_info {
    struct kl_se_object_attr attr; /* attr.initial is 0 */
    uint16_t used;                 /* data bytes written so far */
    uint32_t write_count;
    uint8_t has_key; /* key objects: 1 once generated or imported */
};

/* One LIST_OBJECTS entry. */
struct kl_se_list_entry {
    uint16_t id;
    uint8_t type;
    uint8_t props;
    uint16_t size;
};

/* CREATE_OBJECT. KL_E_EXISTS, KL_E_NO_SPACE, KL_E_BAD_PARAM. */
kl_status kl_se_create_object(struct kl_se *se, const struct kl_se_object_attr *a);
/* DELETE_OBJECT. KL_E_NOT_FOUND, KL_E_ACCESS_DENIED. */
kl_status kl_se_delete_object(struct kl_se *se, uint16_t id);
/* OBJECT_INFO. KL_E_NOT_FOUND. */
kl_status kl_se_object_info(struct kl_se *se, uint16_t id, struct kl_se_object_info *info);
/* READ_OBJECT of len bytes at offset into buf, chunked. KL_E_OUT_OF_RANGE,
 * KL_E_ACCESS_DENIED, KL_E_NOT_FOUND. */
kl_status kl_se_read_object_at(struct kl_se *se, uint16_t id, uint16_t offset, uint8_t *buf,
                               size_t len);
/* Reads a whole object into buf (cap bytes), *len = its length: the used bytes of data
 * and certificates; 4 for counters; the public key (64) of key pairs and public keys
 * (0 while no key was generated or imported).
 * KL_E_BUFFER if cap is too small (nothing read); secret keys: KL_E_ACCESS_DENIED. */
kl_status kl_se_read_object(struct kl_se *se, uint16_t id, uint8_t *buf, size_t cap, size_t *len);
/* WRITE_OBJECT of len bytes at offset, chunked (each chunk is one write and one write
 * cycle). KL_E_OUT_OF_RANGE, KL_E_ENDURANCE, KL_E_WRONG_TYPE, KL_E_ACCESS_DENIED. If a
 * later chunk fails, the earlier chunks stay written. */
kl_status kl_se_write_object(struct kl_se *se, uint16_t id, uint16_t offset, const uint8_t *data,
                             size_t len);
/* LIST_OBJECTS from start_id, one page (up to 128 entries) into out (cap entries). */
kl_status kl_se_list_page(struct kl_se *se, uint16_t start_id, struct kl_se_list_entry *out,
                          size_t cap, size_t *count);
/* Every object, ascending, walking the pages. KL_E_BUFFER if more than cap exist
 * (out then holds the first cap and *count = cap). */
kl_status kl_se_list(struct kl_se *se, struct kl_se_list_entry *out, size_t cap, size_t *count);
/* COUNTER_UPDATE by step; *value (may be NULL) gets the new value. KL_E_COUNTER,
 * KL_E_WRONG_TYPE. */
kl_status kl_se_counter_update(struct kl_se *se, uint16_t id, uint32_t step, uint32_t *value);
/* Reads a counter's value. KL_E_WRONG_TYPE if id is not a counter. */
kl_status kl_se_counter_read(struct kl_se *se, uint16_t id, uint32_t *value);

/* GENERATE_KEY in an existing key object. Key pairs: pub (may be NULL) gets X||Y.
 * KL_E_WRONG_TYPE, KL_E_ACCESS_DENIED (right g). */
kl_status kl_se_generate_key(struct kl_se *se, uint16_t id, uint8_t pub[64]);
/* The public key X||Y of a key-pair or public-key object. */
kl_status kl_se_get_public_key(struct kl_se *se, uint16_t id, uint8_t pub[64]);
/* The bytes an IMPORT_KEY signature covers (id, length, material): writes them to out
 * (cap bytes), *out_len. Sign SHA-256 of them with the private half of object 0x1000. */
kl_status kl_se_import_key_tbs(uint16_t id, const uint8_t *material, size_t len, uint8_t *out,
                               size_t cap, size_t *out_len);
/* IMPORT_KEY: material is the secret key; public X||Y; or key pair scalar(32)||X||Y.
 * sig (r||s) may be NULL in DELIVERY. KL_E_AUTH_FAILED/KL_E_VERIFY_FAILED (signature),
 * KL_E_BAD_KEY, KL_E_WRONG_TYPE, KL_E_ACCESS_DENIED. */
kl_status kl_se_import_key(struct kl_se *se, uint16_t id, const uint8_t *material, size_t len,
                           const uint8_t sig[64]);

/* ----------------------------------------------------------- cryptography ---- */

/* SIGN with key_id. format KL_SE_SIG_RAW (64 bytes) or KL_SE_SIG_DER (<= 72); input
 * KL_SE_INPUT_DIGEST (len must be 32) or KL_SE_INPUT_MESSAGE (the chip hashes; len <= 2043).
 * KL_E_USAGE, KL_E_WRONG_TYPE, KL_E_ACCESS_DENIED, KL_E_BOOT. */
kl_status kl_se_sign(struct kl_se *se, uint16_t key_id, uint8_t format, uint8_t input,
                     const uint8_t *data, size_t len, uint8_t *sig, size_t cap, size_t *sig_len);
/* VERIFY with key_id: KL_OK if sig is valid, KL_E_VERIFY_FAILED if not. */
kl_status kl_se_verify(struct kl_se *se, uint16_t key_id, uint8_t format, uint8_t input,
                       const uint8_t *sig, size_t sig_len, const uint8_t *data, size_t len);
/* VERIFY_WITH_KEY: verify with a public key given in the request. KL_E_BAD_KEY. */
kl_status kl_se_verify_with_key(struct kl_se *se, const uint8_t pub[64], uint8_t format,
                                uint8_t input, const uint8_t *sig, size_t sig_len,
                                const uint8_t *data, size_t len);
/* KEY_EXCHANGE: shared x coordinate of key_id's private half and the peer point
 * (encoding KL_SE_POINT_*). KL_E_BAD_KEY, KL_E_USAGE. */
kl_status kl_se_ecdh(struct kl_se *se, uint16_t key_id, uint8_t point_format, const uint8_t *point,
                     size_t point_len, uint8_t shared[32]);
/* KEY_EXCHANGE storing the shared secret into secret object secret_id. */
kl_status kl_se_ecdh_store(struct kl_se *se, uint16_t key_id, uint8_t point_format,
                           const uint8_t *point, size_t point_len, uint16_t secret_id);

/* Hash contexts (4 on the chip). KL_E_STATE: no free context / unknown context. */
kl_status kl_se_md_init(struct kl_se *se, uint8_t *ctx);
kl_status kl_se_md_update(struct kl_se *se, uint8_t ctx, const uint8_t *data, size_t len);
/* MD_FINISH: the digest; the context is freed. */
kl_status kl_se_md_finish(struct kl_se *se, uint8_t ctx, uint8_t digest[32]);
/* MD_PEEK: digest of the data so far; the context goes on. */
kl_status kl_se_md_peek(struct kl_se *se, uint8_t ctx, uint8_t digest[32]);
/* SHA-256 of any length on the chip (init, updates, finish). */
kl_status kl_se_sha256(struct kl_se *se, const uint8_t *data, size_t len, uint8_t digest[32]);

/* MAC contexts (2 on the chip). alg KL_SE_ALG_HMAC_SHA256 or KL_SE_ALG_AES_CMAC. */
kl_status kl_se_mac_init(struct kl_se *se, uint16_t key_id, uint8_t alg, uint8_t *ctx);
kl_status kl_se_mac_update(struct kl_se *se, uint8_t ctx, const uint8_t *data, size_t len);
/* MAC_FINISH returning the tag (16 or 32 bytes) into tag (cap >= 32 is always enough). */
kl_status kl_se_mac_finish(struct kl_se *se, uint8_t ctx, uint8_t *tag, size_t cap,
                           size_t *tag_len);
/* MAC_FINISH comparing on the chip with expected (1..32 bytes): KL_OK or KL_E_BAD_TAG. */
kl_status kl_se_mac_finish_verify(struct kl_se *se, uint8_t ctx, const uint8_t *expected,
                                  size_t len);

/* CIPHER_INIT parameters (docs/protocol.md). iv/aad may be NULL when their length is 0.
 * The chip wants tag_len and aad_len 0 except for GCM/CCM, total_len 0 except for CCM
 * (KL_E_BAD_PARAM otherwise). */
struct kl_se_cipher_params {
    uint16_t key_id;
    uint8_t alg;     /* KL_SE_ALG_AES_ECB/CBC/CCM/GCM */
    uint8_t dir;     /* KL_SE_CIPHER_ENCRYPT / KL_SE_CIPHER_DECRYPT */
    uint8_t padding; /* KL_SE_PAD_*, CBC only */
    const uint8_t *iv;
    uint8_t iv_len;
    uint8_t tag_len;    /* AEAD */
    uint32_t total_len; /* CCM: total data length */
    const uint8_t *aad;
    uint16_t aad_len; /* the whole request must fit one frame */
};
/* Cipher contexts (2 on the chip). KL_E_USAGE, KL_E_BAD_PARAM, KL_E_STATE. */
kl_status kl_se_cipher_init(struct kl_se *se, const struct kl_se_cipher_params *p, uint8_t *ctx);
/* CIPHER_UPDATE, chunked; appends the output to out (cap bytes), *out_len total.
 * AEAD decryption outputs nothing until finish. */
kl_status kl_se_cipher_update(struct kl_se *se, uint8_t ctx, const uint8_t *in, size_t len,
                              uint8_t *out, size_t cap, size_t *out_len);
/* CIPHER_FINISH: tag is the expected tag for AEAD decryption (else NULL, 0). Output:
 * encrypt: last bytes || tag (AEAD); decrypt: the rest of the plaintext (AEAD: all of it,
 * up to 4096 bytes, fetched in 2000-byte pieces). KL_E_BAD_TAG (nothing released);
 * KL_E_BUFFER if cap is too small (the chip then still holds the rest: reset frees it). */
kl_status kl_se_cipher_finish(struct kl_se *se, uint8_t ctx, const uint8_t *tag, size_t tag_len,
                              uint8_t *out, size_t cap, size_t *out_len);

/* RANDOM: len bytes from the chip's DRBG, chunked. */
kl_status kl_se_random(struct kl_se *se, uint8_t *buf, size_t len);

/* ---------------------------------------------------------------- text ---- */

/* "DELIVERY", "INITIALIZED", "OPERATIONAL", "TERMINATED" or "UNKNOWN"; never NULL. */
const char *kl_se_lifecycle_name(uint8_t state);
/* Parses a life-cycle name (case-insensitive) or number into *state. KL_E_ARG. */
kl_status kl_se_lifecycle_parse(const char *s, uint8_t *state);
/* "secret-key", "public-key", "key-pair", "data", "up-counter", "certificate",
 * "down-counter" or "unknown". */
const char *kl_se_type_name(uint8_t type);
/* Parses a type name (or number 1..7). KL_E_ARG. */
kl_status kl_se_type_parse(const char *s, uint8_t *type);
/* Access rules text "ahs=rwdgx:ah=rx:h=x" (one section per state, '-' for none) to the
 * 9-byte encoding and back. parse: KL_E_ARG for anything else; format: KL_E_ARG for a
 * block the chip would refuse (unknown bits, reserved byte set, roles without rights or
 * the reverse), KL_E_BUFFER if cap is too small (40 bytes always suffice). */
kl_status kl_se_rules_parse(const char *text, uint8_t rules[9]);
kl_status kl_se_rules_format(const uint8_t rules[9], char *out, size_t cap);

#endif
