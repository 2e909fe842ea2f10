/*
 * cloud/mqtt_*.c: the broker's MQTT 3.1.1/5 parsers on what a hostile device sends
 * (keylinkd's most exposed surface). Byte 0: bit 0 MQTT 5. The rest is a packet stream:
 * kl_mqtt_frame splits it, each body goes to the parser for its type (CONNECT picks its
 * own version). Every span a parser hands back lies inside the packet body; counts stay
 * within the broker's limits.
 */
#include <string.h>

#include "dataplane.h"
#include "fuzz.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    return 0;
}

static const uint8_t *lo, *hi;

static void in_body(const struct kl_span *s)
{
    if (!s->n) return;
    FZ_CHECK(s->p >= lo && s->p <= hi && s->n <= (size_t)(hi - s->p));
}

static void check_props(const struct kl_mqtt_props *p)
{
    const struct kl_span *s[] = {
        &p->auth_method, &p->auth_data, &p->content_type, &p->response_topic,
        &p->corr_data,   &p->reason,    &p->raw};
    for (size_t i = 0; i < sizeof s / sizeof s[0]; i++)
        in_body(s[i]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    int v5 = data[0] & 1;
    const uint8_t *p = data + 1;
    size_t n = size - 1;
    while (n) {
        uint8_t tf;
        size_t off = 0, bl = 0;
        int fr = kl_mqtt_frame(p, n, &tf, &off, &bl);
        if (fr != 1) break;
        FZ_CHECK(off >= 2 && off <= 5 && bl <= n - off);
        if (getenv("KL_FUZZ_TRACE")) fprintf(stderr, "packet type %u, %zu bytes\n", tf >> 4, bl);
        uint8_t *b = malloc(bl ? bl : 1); /* exactly the body: ASan sees overreads */
        FZ_CHECK(b != NULL);
        memcpy(b, p + off, bl);
        lo = b;
        hi = b + bl;
        switch (tf >> 4) {
        case 1: {
            struct kl_mqtt_connect c;
            memset(&c, 0, sizeof c);
            int r = kl_mqtt_parse_connect(b, bl, &c);
            if (getenv("KL_FUZZ_TRACE")) fprintf(stderr, "  CONNECT -> %d\n", r);
            if (r == 0) {
                const struct kl_span *s[] = {&c.client_id, &c.will_topic, &c.will_payload, &c.user,
                                             &c.pass};
                for (size_t i = 0; i < 5; i++)
                    in_body(s[i]);
                check_props(&c.props);
                check_props(&c.will_props);
                FZ_CHECK(c.version == 4 || c.version == 5);
                v5 = c.version == 5;
            }
            break;
        }
        case 3: {
            struct kl_mqtt_publish pub;
            memset(&pub, 0, sizeof pub);
            int r = kl_mqtt_parse_publish(tf & 15, b, bl, v5, &pub);
            if (getenv("KL_FUZZ_TRACE")) fprintf(stderr, "  PUBLISH -> %d\n", r);
            if (r == 0) {
                in_body(&pub.topic);
                in_body(&pub.payload);
                check_props(&pub.props);
                FZ_CHECK(pub.qos <= 2);
            }
            break;
        }
        case 4:
        case 5:
        case 6:
        case 7: {
            uint16_t pid;
            uint8_t rc;
            (void)kl_mqtt_parse_ack(b, bl, v5, &pid, &rc);
            break;
        }
        case 8:
        case 10: {
            static struct kl_mqtt_subscribe s;
            memset(&s, 0, sizeof s);
            int r = (tf >> 4) == 8 ? kl_mqtt_parse_subscribe(b, bl, v5, &s)
                                   : kl_mqtt_parse_unsubscribe(b, bl, v5, &s);
            if (getenv("KL_FUZZ_TRACE")) fprintf(stderr, "  (UN)SUBSCRIBE -> %d\n", r);
            if (r == 0) {
                FZ_CHECK(s.n <= KL_DP_SUBS_PER_PACKET);
                for (size_t i = 0; i < s.n; i++)
                    in_body(&s.e[i].filter);
                check_props(&s.props);
            }
            break;
        }
        case 14:
        case 15: {
            uint8_t rc;
            struct kl_mqtt_props pr;
            memset(&pr, 0, sizeof pr);
            int r = (tf >> 4) == 14 ? kl_mqtt_parse_disconnect(b, bl, v5, &rc, &pr)
                                    : kl_mqtt_parse_auth(b, bl, &rc, &pr);
            if (r == 0) check_props(&pr);
            break;
        }
        default:
            break;
        }
        free(b);
        p += off + bl;
        n -= off + bl;
    }
    return 0;
}
