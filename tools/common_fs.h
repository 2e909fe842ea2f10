/* Output-directory helpers shared by make_ca_cert and init_tls_iot. */
#ifndef KL_TOOLS_COMMON_FS_H
#define KL_TOOLS_COMMON_FS_H

#include <stddef.h>

/* buf = dir "/" name; -1 (nothing printed) when it does not fit in cap bytes. */
int kl_tool_join(char *buf, size_t cap, const char *dir, const char *name);

/* mkdir -p with mode 0755 (keys get their own 0600 when written); 0 when dir is a
 * directory afterwards, else -1 with errno. */
int kl_tool_mkdir_p(const char *dir);

#endif
