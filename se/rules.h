/*
 * Access rules of an object in text form, as the CLI shows and takes them:
 * `ahs=rwdgx:ah=rx:h=x`, one section per life-cycle state (DELIVERY, INITIALIZED,
 * OPERATIONAL); `-` for no access. Roles: a admin, h host, s secure boot, e end user,
 * x everyone. Rights: r read, w write, d delete, g generate, x execute.
 * The 9-byte encoding is in docs/protocol.md ("Access rules").
 */
#ifndef KL_SE_RULES_H
#define KL_SE_RULES_H

#include <stddef.h>
#include <stdint.h>

#include "keylink/status.h"

/* Longest text kl_rules_format writes, NUL included ("ahsex=rwdgx" x 3, 2 colons). */
#define KL_RULES_TEXT_MAX 36

/* Parses text into 9 bytes. KL_E_BAD_PARAM for anything but exactly three sections of
 * `-` or `ROLES=RIGHTS` (each letter once, at least one of each); out unchanged then. */
kl_status kl_rules_parse(const char *text, uint8_t out[9]);

/* Writes the canonical text (roles in the order ahsex, rights in rwdgx). KL_E_BAD_PARAM
 * for an invalid block (reserved bytes, unknown bits, roles without rights or the
 * reverse), KL_E_BUFFER if cap is too small. */
kl_status kl_rules_format(const uint8_t r[9], char *out, size_t cap);

#endif
