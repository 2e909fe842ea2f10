/* Argument parsing shared by the `keylink device` subcommands (common_args.h). */
#include "common_args.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int kl_tool_parse_obj_id(const char *s, uint16_t *out)
{
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, 16);
    if (errno || !*s || *end || v == 0 || v > 0xFFFF) return 0;
    *out = (uint16_t)v;
    return 1;
}

int kl_tool_parse_num(const char *s, double lo, double hi, double *out)
{
    char *end;
    double v = strtod(s, &end);
    if (!*s || *end || !(v >= lo) || v > hi) return 0;
    *out = v;
    return 1;
}

int kl_tool_split_endpoint(const char *ep, char *host, size_t hcap, char *port, size_t pcap)
{
    const char *colon, *h = ep;
    size_t hl;
    if (ep[0] == '[') {
        const char *rb = strchr(ep, ']');
        if (!rb || rb[1] != ':') return 0;
        h = ep + 1;
        hl = (size_t)(rb - h);
        colon = rb + 1;
    } else {
        colon = strrchr(ep, ':');
        if (!colon) return 0;
        hl = (size_t)(colon - ep);
    }
    const char *p = colon + 1;
    size_t pl = strlen(p);
    if (hl == 0 || hl >= hcap || pl == 0 || pl >= pcap || strspn(p, "0123456789") != pl) return 0;
    memcpy(host, h, hl);
    host[hl] = 0;
    memcpy(port, p, pl + 1);
    return atoi(port) > 0 && atoi(port) < 65536;
}
