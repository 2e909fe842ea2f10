/* `keylink device pub|sub|run`: MQTT through the chip (tools/device_mqtt.c, device_run.c).
 * Shared connection code for the subcommands; docs/mqtt.md. */
#ifndef KL_TOOLS_DEVICE_MQTT_H
#define KL_TOOLS_DEVICE_MQTT_H

#include <stddef.h>
#include <stdint.h>

#include "keylink/channel.h"
#include "keylink/mqtt.h"
#include "keylink/se.h"
#include "keylink/tls.h"
#include "keylink/tls_posix.h"

int kl_device_pub(int argc, char **argv);
int kl_device_sub(int argc, char **argv);
int kl_device_run(int argc, char **argv);
int kl_device_jwt(int argc, char **argv);

enum kl_dev_auth { KL_DEV_MTLS, KL_DEV_JWT, KL_DEV_CHALLENGE };

struct kl_dev_opts {
    const char *cmd; /* "pub", "sub", "run" (messages) */
    const char *device, *endpoint, *server_name, *thing, *client_id, *audience, *username;
    const char *topic, *message;
    const char *pin;    /* --pin FILE: the chip link runs inside the secure channel */
    const char *alpn;   /* --alpn NAME offered in the ClientHello (AWS on 443: x-amzn-mqtt-ca) */
    uint8_t pinned[64]; /* the chip identity key read from it */
    char host[256], port[8];
    enum kl_dev_auth auth;
    uint8_t version, qos, retain, clean;
    uint16_t root_id, key_id, cert_id, keepalive;
    uint32_t session_expiry;
    long count;
    double timeout_s, duration_s, interval_s, jwt_lifetime_s;
    int verbose;
};

/* One MQTT-over-chip-TLS connection and everything it needs. */
struct kl_dev_conn {
    struct kl_se se;
    int se_open;
    struct kl_tls_posix sock;
    struct kl_tls tls;
    struct kl_mq_client mq;
    struct kl_mq_inflight slots[16];
    uint8_t tls_rx[KL_TLS_RX_FULL], tls_hs[KL_TLS_HS_DEFAULT];
    uint8_t mq_tx[16384 + 512], mq_rx[16384 + 512];
    char jwt[4096];     /* the password (jwt) or challenge answer */
    uint8_t cert[2048]; /* device certificate (x5c) */
    size_t cert_len;
    int64_t jwt_exp;       /* when the JWT in use expires (jwt auth) */
    char err[300];         /* why the last kl_dev_connect failed */
    int quiet;             /* 1: kl_dev_connect does not print failures (run prints events) */
    kl_mq_done_fn on_done; /* told how each outgoing QoS 1/2 message ended (may be NULL) */
    void *done_ctx;
    const struct kl_dev_opts *o;
};

/* Parses the options common to pub/sub/run (i is the first option); unknown options
 * are handed to extra (return 1 if consumed, taking *i forward; 0 unknown; -1 bad
 * value). Returns 0 ok, 2 after printing a usage error. */
int kl_dev_parse(struct kl_dev_opts *o, int argc, char **argv, const char *usage,
                 int (*extra)(struct kl_dev_opts *o, const char *a, const char *v, void *ctx),
                 void *ctx);
/* Opens the chip (once), connects TCP, TLS through the chip and MQTT with the chosen
 * authentication. KL_OK or a status with the reason printed to stderr. */
kl_status kl_dev_connect(struct kl_dev_conn *d, const struct kl_dev_opts *o,
                         kl_mq_message_fn on_msg, void *ctx, int *session_present);
/* DISCONNECT (if connected), TLS close_notify, socket close. The chip stays open. */
void kl_dev_hangup(struct kl_dev_conn *d);
/* kl_dev_hangup and close the chip. */
void kl_dev_close(struct kl_dev_conn *d);
uint64_t kl_dev_mono_ms(void);
int64_t kl_dev_unix_s(void);
/* Logs "keylink device CMD: ..." to stderr. */
void kl_dev_log(const struct kl_dev_opts *o, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#endif
