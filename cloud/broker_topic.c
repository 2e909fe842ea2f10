/* Topic name and topic filter rules: MQTT's plus AWS IoT's limits (256 bytes, 7 slashes). */
#include "dataplane.h"

static int common(const uint8_t *t, size_t n)
{
    if (n == 0 || n > KL_DP_TOPIC_MAX) return -1;
    int slashes = 0;
    for (size_t i = 0; i < n; i++)
        if (t[i] == '/') slashes++;
    return slashes > KL_DP_TOPIC_SLASHES ? -1 : 0;
}

int kl_topic_name_ok(const uint8_t *t, size_t n)
{
    if (common(t, n)) return -1;
    for (size_t i = 0; i < n; i++)
        if (t[i] == '+' || t[i] == '#') return -1;
    return 0;
}

int kl_topic_filter_ok(const uint8_t *t, size_t n)
{
    if (common(t, n)) return -1;
    for (size_t i = 0; i < n; i++) {
        int alone = (i == 0 || t[i - 1] == '/') && (i + 1 == n || t[i + 1] == '/');
        if (t[i] == '+' && !alone) return -1;
        if (t[i] == '#' && (!alone || i + 1 != n)) return -1;
    }
    return 0;
}
