/*
 * The POSIX implementations of the TLS client's two interfaces (keylink/tls.h): a TCP
 * socket transport and a clock over clock_gettime. Built only where POSIX sockets
 * exist; an MCU port writes its own pair (docs/porting.md shows this one as the
 * worked example).
 */
#ifndef KEYLINK_TLS_POSIX_H
#define KEYLINK_TLS_POSIX_H

#include <stdint.h>

#include "keylink/tls.h"

struct kl_tls_posix {
    int fd; /* connected TCP socket, -1 when closed */
};

/* Connects to host:port (name or address, IPv4 or IPv6), waiting at most timeout_ms.
 * KL_E_ARG for NULL or an empty host/port; KL_E_IO when the name does not resolve or
 * no address accepts; KL_E_TIMEOUT. */
kl_status kl_tls_posix_connect(struct kl_tls_posix *p, const char *host, const char *port,
                               uint32_t timeout_ms);
/* Fills tr with send/recv over p's socket (p must outlive the connection). */
void kl_tls_posix_transport(struct kl_tls_posix *p, struct kl_tls_transport *tr);
/* Fills c with CLOCK_REALTIME seconds and CLOCK_MONOTONIC milliseconds. */
void kl_tls_posix_clock(struct kl_tls_clock *c);
/* Closes the socket; safe to call twice. */
void kl_tls_posix_close(struct kl_tls_posix *p);

#endif
