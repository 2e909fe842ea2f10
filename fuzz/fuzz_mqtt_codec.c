/*
 * host/mqtt_de.c, mqtt_props.c: the MQTT 3.1.1/5 packet parsers on what a hostile
 * broker sends. Byte 0: bit 0 MQTT 5, bits 1-2 the property packet type for a bare
 * property block (bit 3). The rest is a packet stream: each packet is framed with
 * kl_mq_frame and its body handed to the deserializer for its type. Every pointer a
 * parser hands back lies inside the packet; counts stay within what the caller allows.
 */
#include <string.h>

#include "fuzz.h"
#include "keylink/mqtt.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    return 0;
}

static const uint8_t *lo, *hi;

static void in_pkt(const void *p, size_t n)
{
    if (!n) return;
    const uint8_t *b = p;
    FZ_CHECK(b >= lo && b <= hi && n <= (size_t)(hi - b));
}

static void check_props(const struct kl_mq_props *pr)
{
    const struct kl_mq_bin *bins[] = {
        &pr->content_type,       &pr->response_topic, &pr->correlation,
        &pr->assigned_client_id, &pr->auth_method,    &pr->auth_data,
        &pr->response_info,      &pr->server_ref,     &pr->reason};
    for (size_t i = 0; i < sizeof bins / sizeof bins[0]; i++)
        if (bins[i]->p) in_pkt(bins[i]->p, bins[i]->n);
    FZ_CHECK(pr->user_n <= KL_MQ_USER_MAX && pr->user_n <= pr->user_total);
    for (size_t i = 0; i < pr->user_n; i++) {
        in_pkt(pr->user_key[i].p, pr->user_key[i].n);
        in_pkt(pr->user_val[i].p, pr->user_val[i].n);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    uint8_t mode = data[0];
    uint8_t ver = (mode & 1) ? KL_MQ_V5 : KL_MQ_V311;
    const uint8_t *p = data + 1;
    size_t n = size - 1;
    struct kl_mq_props props;
    if (mode & 8) {
        static const uint8_t types[4] = {KL_MQ_WILL, KL_MQ_CONNACK, KL_MQ_PUBLISH, KL_MQ_AUTH};
        size_t used = 0;
        lo = p;
        hi = p + n;
        memset(&props, 0, sizeof props);
        if (kl_mq_de_props(p, n, types[(mode >> 1) & 3], &props, &used) == KL_OK) {
            FZ_CHECK(used <= n);
            check_props(&props);
        }
        (void)kl_mq_utf8_ok(p, n);
        (void)kl_mq_topic_ok((const char *)p, n);
        return 0;
    }
    while (n) {
        struct kl_mq_frame f;
        if (kl_mq_frame(p, n, &f) != KL_OK || !f.complete) break;
        FZ_CHECK(f.header_len >= 2 && f.header_len <= 5 && f.total == f.header_len + f.body_len);
        FZ_CHECK(f.total <= n);
        const uint8_t *body = p + f.header_len;
        size_t bl = f.body_len;
        /* a private copy of exactly the body, so ASan sees reads past it */
        uint8_t *b = malloc(bl ? bl : 1);
        FZ_CHECK(b != NULL);
        memcpy(b, body, bl);
        lo = b;
        hi = b + bl;
        memset(&props, 0, sizeof props);
        kl_status st = KL_E_PEER;
        switch (f.type) {
        case KL_MQ_CONNACK: {
            struct kl_mq_connack a;
            st = kl_mq_de_connack(b, bl, ver, &a);
            if (st == KL_OK) check_props(&a.props);
            break;
        }
        case KL_MQ_PUBLISH: {
            struct kl_mq_msg m;
            st = kl_mq_de_publish(f.flags, b, bl, ver, &m, &props);
            if (st == KL_OK) {
                in_pkt(m.topic, m.topic_len);
                in_pkt(m.payload, m.payload_len);
                FZ_CHECK(m.qos <= 2);
                check_props(&props);
            }
            break;
        }
        case 4: /* PUBACK..PUBCOMP */
        case 5:
        case 6:
        case 7: {
            uint16_t pid;
            uint8_t reason;
            st = kl_mq_de_ack(f.type, b, bl, ver, &pid, &reason, &props);
            if (st == KL_OK) check_props(&props);
            break;
        }
        case 9:
        case 11: {
            uint16_t pid;
            uint8_t codes[3];
            size_t nc = 99;
            st = kl_mq_de_suback(f.type, b, bl, ver, &pid, codes, sizeof codes, &nc, &props);
            if (st == KL_OK) {
                FZ_CHECK(nc <= sizeof codes);
                check_props(&props);
            }
            break;
        }
        case KL_MQ_DISCONNECT: {
            uint8_t reason;
            st = kl_mq_de_disconnect(b, bl, ver, &reason, &props);
            if (st == KL_OK) check_props(&props);
            break;
        }
        case KL_MQ_AUTH: {
            uint8_t reason;
            st = kl_mq_de_auth(b, bl, &reason, &props);
            if (st == KL_OK) check_props(&props);
            break;
        }
        default:
            break;
        }
        free(b);
        p += f.total;
        n -= f.total;
    }
    return 0;
}
