/* Small shared helpers for the CLI tools: hex, whole-file I/O, JSON string output. */
#ifndef KL_TOOLS_COMMON_HEX_H
#define KL_TOOLS_COMMON_HEX_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Writes n bytes as lowercase hex (no separators) to f. */
void kl_tool_hex_print(FILE *f, const uint8_t *d, size_t n);
/* Lowercase hex of d into out (cap >= 2n+1), NUL-terminated. Returns out. */
char *kl_tool_hex(const uint8_t *d, size_t n, char *out, size_t cap);
/* Parses hex (optional 0x prefix, whitespace and ':' ignored) into out (cap bytes).
 * Returns the byte count, or -1 for odd length, bad digits or too long. */
long kl_tool_unhex(const char *s, uint8_t *out, size_t cap);
/* Reads a whole file ("-" = stdin) into buf (cap bytes). Returns the length or -1
 * (message on stderr naming the file); too long is an error, not a truncation. */
long kl_tool_read_file(const char *path, uint8_t *buf, size_t cap);
/* Writes n bytes to path ("-" = stdout), mode 0600 for new files. 0 or -1 (message). */
int kl_tool_write_file(const char *path, const uint8_t *d, size_t n);
/* Writes s as a JSON string literal (quotes and escapes included). */
void kl_tool_json_str(FILE *f, const char *s);

#endif
