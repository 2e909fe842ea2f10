/* HTTP client for the tools over libcurl (keylink iot -> keylinkd). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "common_http.h"

struct sink {
    char *buf;
    size_t len, cap, max;
    int overflow;
};

static size_t on_data(char *p, size_t size, size_t n, void *ctx)
{
    struct sink *s = ctx;
    size_t k = size * n;
    if (s->len + k > s->max) {
        s->overflow = 1;
        return 0; /* makes curl fail the transfer */
    }
    if (s->len + k + 1 > s->cap) {
        size_t cap = s->cap ? s->cap : 8192;
        while (cap < s->len + k + 1)
            cap *= 2;
        char *nb = realloc(s->buf, cap);
        if (!nb) return 0;
        s->buf = nb;
        s->cap = cap;
    }
    memcpy(s->buf + s->len, p, k);
    s->len += k;
    s->buf[s->len] = 0;
    return k;
}

int kl_http_request(const char *method, const char *url, const char *const *headers,
                    const char *body, size_t body_len, const char *ca_file, size_t max_resp,
                    int timeout_s, struct kl_http_resp *out, char *err, size_t err_len)
{
    memset(out, 0, sizeof *out);
    if (strncmp(url, "http://", 7) && strncmp(url, "https://", 8)) {
        snprintf(err, err_len, "endpoint URL must start with http:// or https://");
        return -1;
    }
    CURL *c = curl_easy_init();
    if (!c) {
        snprintf(err, err_len, "cannot start libcurl");
        return -1;
    }
    struct curl_slist *hl = NULL;
    for (size_t i = 0; headers && headers[i]; i++)
        hl = curl_slist_append(hl, headers[i]);
    hl = curl_slist_append(hl, "Expect:"); /* no 100-continue round trip */
    struct sink s = {.max = max_resp};
    char cerr[CURL_ERROR_SIZE] = "";
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &s);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, cerr);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, (long)timeout_s);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    if (ca_file) curl_easy_setopt(c, CURLOPT_CAINFO, ca_file);
    if (body) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
    } else if (!strcmp(method, "GET")) {
        curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
    }
    CURLcode rc = curl_easy_perform(c);
    if (rc == CURLE_OK) {
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &out->status);
        out->body = s.buf ? s.buf : calloc(1, 1);
        out->len = s.len;
    } else {
        snprintf(err, err_len, "%s",
                 s.overflow ? "the answer is too large"
                 : cerr[0]  ? cerr
                            : curl_easy_strerror(rc));
        free(s.buf);
    }
    curl_slist_free_all(hl);
    curl_easy_cleanup(c);
    return rc == CURLE_OK && out->body ? 0 : -1;
}

void kl_http_resp_free(struct kl_http_resp *r)
{
    free(r->body);
    r->body = NULL;
    r->len = 0;
}

char *kl_http_escape(const char *s)
{
    static const char hd[] = "0123456789ABCDEF";
    size_t n = strlen(s);
    char *o = malloc(3 * n + 1), *p = o;
    if (!o) return NULL;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
            strchr("-._~", ch)) {
            *p++ = (char)ch;
        } else {
            *p++ = '%';
            *p++ = hd[ch >> 4];
            *p++ = hd[ch & 15];
        }
    }
    *p = 0;
    return o;
}
