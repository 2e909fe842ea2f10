/*
 * Command handler table shared by the chip's dispatcher and the files that implement
 * command groups (one group per file: objects, keys, life cycle, crypto, TLS...).
 */
#ifndef KL_SE_CMD_H
#define KL_SE_CMD_H

#include <stddef.h>
#include <stdint.h>

#include "keylink/status.h"

struct kl_chip;

/* A handler parses req (payload only), validates everything, then acts. It writes at
 * most cap bytes to resp and sets *rlen; on any status but KL_OK it changed nothing. */
typedef kl_status (*kl_cmd_fn)(struct kl_chip *c, const uint8_t *req, size_t len, uint8_t *resp,
                               size_t cap, size_t *rlen);

enum kl_cmd_flags {
    KL_CMDF_ANY_STATE = 1u << 0,  /* also answers when TERMINATED (GET_STATUS only) */
    KL_CMDF_NO_CHANNEL = 1u << 1, /* allowed outside the secure channel even when required */
    KL_CMDF_PERSIST = 1u << 2,    /* may change persistent state: commit after KL_OK */
};

struct kl_cmd {
    uint8_t code;
    uint8_t flags;
    const char *name;
    kl_cmd_fn fn;
};

/* Each group exports its table; the dispatcher (chip.c) walks them all. */
extern const struct kl_cmd kl_cmds_crypto[];
extern const size_t kl_cmds_crypto_n;
/* Secure channel: GET_IDENTITY, CHANNEL_OPEN, CHANNEL_CLOSE (se/channel.c). */
extern const struct kl_cmd kl_cmds_channel[];
extern const size_t kl_cmds_channel_n;

/* TLS 1.2 offload: 0xC4, 0xCB, 0xCF, 0xB1..0xBB (se/cmd_tls.c). */
extern const struct kl_cmd kl_cmds_tls[];
extern const size_t kl_cmds_tls_n;

#endif
