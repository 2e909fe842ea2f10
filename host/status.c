/* Names and meanings of kl_status values (docs/status.md says the same at length). */
#include "keylink/status.h"

struct row {
    kl_status st;
    const char *name;
    const char *text;
};

static const struct row rows[] = {
    {KL_OK, "KL_OK", "success"},
    {KL_E_UNKNOWN_COMMAND, "KL_E_UNKNOWN_COMMAND", "the chip does not know this command"},
    {KL_E_BAD_LENGTH, "KL_E_BAD_LENGTH", "the request is too short or too long for the command"},
    {KL_E_BAD_PARAM, "KL_E_BAD_PARAM", "a request field has a value the chip does not accept"},
    {KL_E_NOT_FOUND, "KL_E_NOT_FOUND",
     "no object has this id; list the objects to see what exists"},
    {KL_E_EXISTS, "KL_E_EXISTS",
     "an object with this id already exists; delete it first or pick another id"},
    {KL_E_ACCESS_DENIED, "KL_E_ACCESS_DENIED",
     "the object's access rules deny this to the current role in this life-cycle state"},
    {KL_E_LIFECYCLE, "KL_E_LIFECYCLE", "not allowed in the chip's current life-cycle state"},
    {KL_E_WRONG_TYPE, "KL_E_WRONG_TYPE", "the object is of the wrong type for this command"},
    {KL_E_USAGE, "KL_E_USAGE", "the key's usage or algorithm does not allow this operation"},
    {KL_E_NO_SPACE, "KL_E_NO_SPACE", "the chip's 8192-byte user storage is full; delete objects"},
    {KL_E_OUT_OF_RANGE, "KL_E_OUT_OF_RANGE", "offset or length lies outside the object"},
    {KL_E_ENDURANCE, "KL_E_ENDURANCE", "the object has used its 10,000 write cycles"},
    {KL_E_AUTH_REQUIRED, "KL_E_AUTH_REQUIRED",
     "authenticate as admin first (challenge + admin key)"},
    {KL_E_AUTH_FAILED, "KL_E_AUTH_FAILED",
     "admin authentication failed; get a new challenge and sign it"},
    {KL_E_VERIFY_FAILED, "KL_E_VERIFY_FAILED", "the signature or certificate did not verify"},
    {KL_E_BAD_TAG, "KL_E_BAD_TAG", "the authentication tag or MAC did not match"},
    {KL_E_STATE, "KL_E_STATE", "command out of sequence (no such context, or none free)"},
    {KL_E_COUNTER, "KL_E_COUNTER",
     "the counter cannot move that way (it never goes back or wraps)"},
    {KL_E_STORAGE, "KL_E_STORAGE", "the chip could not commit its storage; nothing was changed"},
    {KL_E_TERMINATED, "KL_E_TERMINATED", "the chip is TERMINATED; only status answers"},
    {KL_E_CHANNEL_REQUIRED, "KL_E_CHANNEL_REQUIRED",
     "the chip requires the secure channel; open it with the chip's pinned identity key"},
    {KL_E_CHANNEL, "KL_E_CHANNEL", "secure channel failure; the channel is closed, open a new one"},
    {KL_E_BOOT, "KL_E_BOOT", "the object is locked until secure boot verifies the firmware"},
    {KL_E_BAD_FRAME, "KL_E_BAD_FRAME", "the frame was malformed (CRC, length or flags)"},
    {KL_E_BAD_KEY, "KL_E_BAD_KEY", "a key, point or certificate is malformed or not acceptable"},
    {KL_E_EXPIRED, "KL_E_EXPIRED", "a certificate is outside its validity period"},
    {KL_E_INTERNAL, "KL_E_INTERNAL", "internal failure in the chip; nothing was changed"},
    {KL_E_IO, "KL_E_IO", "the link to the chip or the network failed"},
    {KL_E_TIMEOUT, "KL_E_TIMEOUT", "no answer in time"},
    {KL_E_PROTOCOL, "KL_E_PROTOCOL", "a response was malformed"},
    {KL_E_BUFFER, "KL_E_BUFFER", "a buffer is too small for the result"},
    {KL_E_ARG, "KL_E_ARG", "an argument is invalid"},
    {KL_E_UNSUPPORTED, "KL_E_UNSUPPORTED", "not supported by this build or transport"},
    {KL_E_BUSY, "KL_E_BUSY", "the chip is in use by another host; try again when it is free"},
    {KL_E_PEER, "KL_E_PEER", "the peer broke the protocol"},
    {KL_E_CLOSED, "KL_E_CLOSED", "the peer closed the connection"},
    {KL_E_REFUSED, "KL_E_REFUSED", "the peer refused the connection or request"},
};

static const struct row *find(kl_status st)
{
    for (unsigned i = 0; i < sizeof rows / sizeof rows[0]; i++)
        if (rows[i].st == st) return &rows[i];
    return 0;
}

const char *kl_status_name(kl_status st)
{
    const struct row *r = find(st);
    return r ? r->name : "KL_E_UNKNOWN_STATUS";
}

const char *kl_status_text(kl_status st)
{
    const struct row *r = find(st);
    return r ? r->text : "unknown status code";
}
