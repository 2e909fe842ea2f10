/*
 * A small HTTP client for the tools, over libcurl: one request, whole answer in memory.
 * Used by `keylink iot` to talk to keylinkd's control API.
 */
#ifndef KL_TOOLS_COMMON_HTTP_H
#define KL_TOOLS_COMMON_HTTP_H

#include <stddef.h>

struct kl_http_resp {
    long status; /* HTTP status, 0 when no answer came */
    char *body;  /* malloc'd, NUL-terminated */
    size_t len;
};

/* Sends one request. headers: NULL-terminated "Name: value" strings (may be NULL).
 * body may be NULL. ca_file: PEM bundle that https:// servers are checked against (NULL =
 * the system's). Answers larger than max_resp bytes fail. Returns 0 when an HTTP answer
 * came (any status), -1 with a reason in err otherwise. */
int kl_http_request(const char *method, const char *url, const char *const *headers,
                    const char *body, size_t body_len, const char *ca_file, size_t max_resp,
                    int timeout_s, struct kl_http_resp *out, char *err, size_t err_len);
void kl_http_resp_free(struct kl_http_resp *r);
/* Percent-encodes s for a URL path segment or query value (malloc'd). */
char *kl_http_escape(const char *s);

#endif
