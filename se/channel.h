/*
 * The chip's side of the secure channel (docs/secure-channel.md, docs/protocol.md
 * "Secure channel"). The command handlers (GET_IDENTITY, CHANNEL_OPEN, CHANNEL_CLOSE) are
 * in kl_cmds_channel (se/cmd.h); protected frames go through kl_channel_frame.
 *
 * c->channel != NULL means a channel exists; c->channel_open is 1 only while a command
 * that arrived inside the channel runs, so only such a command holds the host role.
 */
#ifndef KL_SE_CHANNEL_H
#define KL_SE_CHANNEL_H

#include <stddef.h>
#include <stdint.h>

#include "keylink/frame.h"

struct kl_chip;

#define KL_CHANNEL_INFO "keylink secure channel v1"
#define KL_CHANNEL_TAG 16u
/* Largest inner payload either way: 2048 - tag - inner command/status byte. */
#define KL_CHANNEL_MAX_INNER (KL_FRAME_MAX_PAYLOAD - KL_CHANNEL_TAG - 1u)

/* Runs one decoded frame that has the ENC flag: checks and decrypts it, runs the inner
 * command with the host role, and writes the protected response frame into out
 * (out_cap >= KL_FRAME_MAX). On any channel failure (no channel, header byte 0 not 0,
 * too short, bad tag, which covers replayed, reordered and altered frames, counter
 * exhausted) it closes the channel, raises the channel-error reset event and writes a
 * clear KL_E_CHANNEL frame. An inner response longer than KL_CHANNEL_MAX_INNER becomes
 * inner status KL_E_BAD_LENGTH. Returns the frame length, 0 if nothing could be written. */
size_t kl_channel_frame(struct kl_chip *c, const struct kl_frame *f, uint8_t *out, size_t out_cap);

/* Drops the channel (wipes its keys). Safe when none is open. */
void kl_channel_reset(struct kl_chip *c);

#endif
