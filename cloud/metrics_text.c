/* /metrics: the data plane's counters in Prometheus text format 0.0.4. */
#include <malloc.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dataplane.h"

struct out {
    char *p;
    size_t len, cap;
    int oom;
};

static void put(struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(struct out *o, const char *fmt, ...)
{
    if (o->oom) return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(o->p + o->len, o->cap - o->len, fmt, ap);
        va_end(ap);
        if (n < 0) {
            o->oom = 1;
            return;
        }
        if ((size_t)n < o->cap - o->len) {
            o->len += (size_t)n;
            return;
        }
        size_t nc = o->cap * 2 + (size_t)n;
        char *np = realloc(o->p, nc);
        if (!np) {
            o->oom = 1;
            return;
        }
        o->p = np;
        o->cap = nc;
    }
}

static void metric(struct out *o, const char *name, const char *type, const char *help, long v)
{
    put(o, "# HELP %s %s\n# TYPE %s %s\n%s %ld\n", name, help, name, type, name, v);
}

static long rss_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    long pages = 0, rss = 0;
    if (!f) return 0;
    if (fscanf(f, "%ld %ld", &pages, &rss) != 2) rss = 0;
    fclose(f);
    return rss * 4096;
}

char *kl_dp_metrics_text(void *arg)
{
    struct kl_dp *dp = arg;
    struct kl_metrics *m = &dp->m;
    struct out o = {malloc(4096), 0, 4096, 0};
    if (!o.p) return NULL;
    o.p[0] = 0;
    metric(&o, "keylinkd_connections", "gauge", "Open data-plane connections.",
           atomic_load(&m->conns));
    metric(&o, "keylinkd_connections_total", "counter", "Accepted data-plane connections.",
           atomic_load(&m->conns_total));
    metric(&o, "keylinkd_dev_connections_total", "counter",
           "Connections accepted on the development listener.", atomic_load(&m->dev_conns));
    metric(&o, "keylinkd_tls_handshakes_total", "counter", "Completed TLS handshakes.",
           atomic_load(&m->tls_handshakes));
    metric(&o, "keylinkd_tls_handshake_failures_total", "counter", "Failed TLS handshakes.",
           atomic_load(&m->tls_failures));
    metric(&o, "keylinkd_tls_handoffs_total", "counter",
           "Connections whose TLS records keylinkd protects after OpenSSL's handshake.",
           atomic_load(&m->tls_handoffs));
    static const char *const meth[] = {"none", "mtls", "challenge", "jwt", "dev"};
    put(&o, "# HELP keylinkd_auth_success_total Accepted CONNECTs by method.\n"
            "# TYPE keylinkd_auth_success_total counter\n");
    for (int i = 1; i < 5; i++)
        put(&o, "keylinkd_auth_success_total{method=\"%s\"} %ld\n", meth[i],
            atomic_load(&m->auth_ok[i]));
    put(&o, "# HELP keylinkd_auth_failures_total Refused devices by reason.\n"
            "# TYPE keylinkd_auth_failures_total counter\n");
    for (int i = 1; i < KL_AF_COUNT; i++)
        put(&o, "keylinkd_auth_failures_total{reason=\"%s\"} %ld\n",
            kl_auth_fail_name((enum kl_auth_fail)i), atomic_load(&m->auth_fail[i]));
    metric(&o, "keylinkd_messages_in_total", "counter", "PUBLISH packets received.",
           atomic_load(&m->msgs_in));
    metric(&o, "keylinkd_messages_out_total", "counter", "PUBLISH packets sent.",
           atomic_load(&m->msgs_out));
    metric(&o, "keylinkd_messages_dropped_total", "counter",
           "Deliveries dropped (queue full, expired, too large for the receiver).",
           atomic_load(&m->msgs_dropped));
    metric(&o, "keylinkd_bytes_in_total", "counter", "Plaintext MQTT bytes received.",
           atomic_load(&m->bytes_in));
    metric(&o, "keylinkd_bytes_out_total", "counter", "Plaintext MQTT bytes sent.",
           atomic_load(&m->bytes_out));
    metric(&o, "keylinkd_timeouts_total", "counter",
           "Connections dropped by the handshake, CONNECT or keep-alive timeouts.",
           atomic_load(&m->timeouts));
    metric(&o, "keylinkd_registry_disconnects_total", "counter",
           "Connections closed because the registry revoked their right to be connected.",
           atomic_load(&m->revoked_drops));
    metric(&o, "keylinkd_subscriptions_total", "counter", "Accepted subscriptions.",
           atomic_load(&m->subscriptions));
    pthread_mutex_lock(&dp->broker.lock);
    long sess = (long)dp->broker.nsess, ret = (long)dp->broker.retained;
    pthread_mutex_unlock(&dp->broker.lock);
    metric(&o, "keylinkd_sessions", "gauge", "Sessions (online and persistent offline).", sess);
    metric(&o, "keylinkd_retained_messages", "gauge", "Retained messages.", ret);
    metric(&o, "keylinkd_resident_memory_bytes", "gauge", "Resident set size of keylinkd.",
           rss_bytes());
    struct mallinfo2 mi = mallinfo2();
    metric(&o, "keylinkd_heap_in_use_bytes", "gauge", "Heap bytes allocated (malloc).",
           (long)mi.uordblks);
    if (o.oom) {
        free(o.p);
        return NULL;
    }
    return o.p;
}
