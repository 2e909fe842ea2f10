/*
 * The chip model's entry points, used by the daemon (keylink-se), the in-process
 * `mem:` transport and the tests. Everything a host can do goes through
 * kl_chip_execute (one command) or kl_chip_frame (one wire frame, docs/protocol.md).
 */
#ifndef KL_SE_CHIP_H
#define KL_SE_CHIP_H

#include <stddef.h>
#include <stdint.h>

#include "keylink/status.h"

struct kl_chip;

/* Opens the chip whose state lives in state_dir (created 0700 if missing). An empty
 * directory gives a factory-fresh chip: DELIVERY, new serial, new per-chip key.
 * KL_E_STORAGE with a message on stderr if the image fails authentication. */
kl_status kl_chip_open(const char *state_dir, struct kl_chip **out);
/* Frees the chip; committed state stays on disk. NULL is fine. */
void kl_chip_close(struct kl_chip *c);

/* Runs one command. req/resp are payloads without the frame. Returns the status the
 * chip answers; *resp_len is 0 for every status but KL_OK. resp_cap must be >= 2048. */
kl_status kl_chip_execute(struct kl_chip *c, uint8_t cmd, const uint8_t *req, size_t req_len,
                          uint8_t *resp, size_t resp_cap, size_t *resp_len);

/* Runs one wire frame (CRC, secure channel) and writes the response frame.
 * Returns the response frame length, 0 if the connection must be closed. */
size_t kl_chip_frame(struct kl_chip *c, const uint8_t *in, size_t in_len, uint8_t *out,
                     size_t out_cap);

/* Advances the model's clock (watchdog). now_ms is CLOCK_MONOTONIC milliseconds. */
void kl_chip_tick(struct kl_chip *c, uint64_t now_ms);

#endif
