/*
 * keylink status codes, shared by the chip model (se/) and the device library (host/).
 *
 * Values 0x00..0x7F are answered by the chip in the status byte of a response frame
 * (docs/protocol.md). Values 0x80..0xFF are raised on the host side (transport, framing,
 * caller buffers); the one exception on the wire is KL_E_BUSY, which the keylink-se
 * daemon answers to a second host before closing it. docs/status.md explains each one.
 */
#ifndef KEYLINK_STATUS_H
#define KEYLINK_STATUS_H

typedef enum kl_status {
    KL_OK = 0x00,
    /* The command byte is not one the chip knows. */
    KL_E_UNKNOWN_COMMAND = 0x01,
    /* The payload is shorter or longer than the command's layout allows. */
    KL_E_BAD_LENGTH = 0x02,
    /* A field has a value outside its allowed set (bad type, algorithm, flag...). */
    KL_E_BAD_PARAM = 0x03,
    /* No object has this id. */
    KL_E_NOT_FOUND = 0x04,
    /* An object with this id already exists. */
    KL_E_EXISTS = 0x05,
    /* The object's access rules deny this right to the current role in this life-cycle state. */
    KL_E_ACCESS_DENIED = 0x06,
    /* The command is not allowed in the chip's current life-cycle state. */
    KL_E_LIFECYCLE = 0x07,
    /* The object is of the wrong type for this command. */
    KL_E_WRONG_TYPE = 0x08,
    /* The key's usage/algorithm slots do not allow this operation. */
    KL_E_USAGE = 0x09,
    /* Not enough free bytes in the 8192-byte user storage. */
    KL_E_NO_SPACE = 0x0A,
    /* Offset or length outside the object. */
    KL_E_OUT_OF_RANGE = 0x0B,
    /* The object reached its 10,000 write cycles. */
    KL_E_ENDURANCE = 0x0C,
    /* The command needs an authenticated admin session. */
    KL_E_AUTH_REQUIRED = 0x0D,
    /* Admin authentication failed (bad signature, no challenge outstanding). */
    KL_E_AUTH_FAILED = 0x0E,
    /* A signature or certificate did not verify. */
    KL_E_VERIFY_FAILED = 0x0F,
    /* An AEAD tag or MAC did not match. */
    KL_E_BAD_TAG = 0x10,
    /* Command out of sequence (update without init, no free context...). */
    KL_E_STATE = 0x11,
    /* A counter would move backwards or overflow. */
    KL_E_COUNTER = 0x12,
    /* The storage could not be committed; the change was not applied. */
    KL_E_STORAGE = 0x13,
    /* The chip is TERMINATED: only status answers. */
    KL_E_TERMINATED = 0x14,
    /* The configuration requires the host role (secure channel) for this command. */
    KL_E_CHANNEL_REQUIRED = 0x15,
    /* Secure channel failure: bad tag, replay, reorder. The channel is closed. */
    KL_E_CHANNEL = 0x16,
    /* The object is gated by secure boot and the firmware is not verified. */
    KL_E_BOOT = 0x17,
    /* The frame was malformed (CRC, length, flags). */
    KL_E_BAD_FRAME = 0x18,
    /* A key, point or certificate is malformed or not acceptable. */
    KL_E_BAD_KEY = 0x19,
    /* A certificate is outside its validity period at the supplied time. */
    KL_E_EXPIRED = 0x1A,
    /* Internal failure in the chip model. Nothing was changed. */
    KL_E_INTERNAL = 0x1F,

    /* Host-side only. */
    KL_E_IO = 0x80,           /* transport read/write failed or peer closed */
    KL_E_TIMEOUT = 0x81,      /* no answer in time */
    KL_E_PROTOCOL = 0x82,     /* a response frame was malformed (CRC, length) */
    KL_E_BUFFER = 0x83,       /* a caller buffer is too small */
    KL_E_ARG = 0x84,          /* a caller argument is invalid (NULL, bad URI...) */
    KL_E_UNSUPPORTED = 0x85,  /* a feature is not available in this build/transport */
    KL_E_BUSY = 0x86,         /* the chip is used by another host */
    KL_E_PEER = 0x87,         /* the network peer misbehaved (TLS/MQTT protocol error) */
    KL_E_CLOSED = 0x88,       /* the network peer closed the connection */
    KL_E_REFUSED = 0x89,      /* the network peer refused us (alert, CONNACK code) */
} kl_status;

/* Short stable name of a status ("KL_E_NOT_FOUND"), never NULL. */
const char *kl_status_name(kl_status st);
/* One sentence saying what the status means and what to do, never NULL. */
const char *kl_status_text(kl_status st);

#endif
