/* Argument parsing shared by the `keylink device` subcommands. Each returns 1 on
 * success and 0 for a malformed value (the caller prints its own usage error). */
#ifndef KL_TOOLS_COMMON_ARGS_H
#define KL_TOOLS_COMMON_ARGS_H

#include <stddef.h>
#include <stdint.h>

/* A chip object id in hex ("1004" or "0x1004"), 1..0xFFFF. */
int kl_tool_parse_obj_id(const char *s, uint16_t *out);
/* A decimal number within [lo, hi] (no trailing characters, no NaN). */
int kl_tool_parse_num(const char *s, double lo, double hi, double *out);
/* HOST:PORT or [HOST]:PORT into NUL-terminated host and port; the port is 1..65535. */
int kl_tool_split_endpoint(const char *ep, char *host, size_t hcap, char *port, size_t pcap);

#endif
