/* The `mem:DIR` transport: the chip model linked into the calling program, reached
 * through the very same frames as the daemon (kl_chip_frame). */
#ifndef KL_SE_TRANSPORT_MEM_H
#define KL_SE_TRANSPORT_MEM_H

#include "keylink/se.h"

extern const struct kl_transport_ops kl_transport_mem;

/* Registers `mem:` with the device library so kl_se_open("mem:DIR") works. Call once
 * at start-up; KL_OK (also when already registered), else kl_transport_register's
 * status. The chip in DIR is opened (and locked) by kl_se_open and closed by
 * kl_se_close: one handle per DIR at a time. */
kl_status kl_se_mem_register(void);

#endif
