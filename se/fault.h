/*
 * Fault injection for crash tests: the environment variable KEYLINK_FAULT="<step>:<n>"
 * kills the process (SIGKILL, like a power cut: no cleanup, no flush) at the n-th
 * occurrence (1-based) of a step of kl_image_commit. Steps:
 *   write       the temp file is written only half, then the process dies
 *   fsync_file  the temp file is fully written, dies before it is fsynced
 *   rename      the temp file is durable, dies before the rename over the image
 *   fsync_dir   the rename happened, dies before the directory is fsynced
 * Compiled in always: without the variable each check is one branch on a cached flag.
 * A malformed value stops the process with a message (exit 98), so a typo cannot make a
 * crash test pass silently. Not thread-safe; the chip model is single-threaded.
 * docs/persistence.md describes it.
 */
#ifndef KL_SE_FAULT_H
#define KL_SE_FAULT_H

#include "keylink/status.h"

enum kl_fault_step {
    KL_FAULT_WRITE = 0,
    KL_FAULT_FSYNC_FILE,
    KL_FAULT_RENAME,
    KL_FAULT_FSYNC_DIR,
    KL_FAULT_STEPS
};

/* Parses "<step>:<n>" (n in 1..2^31-1). KL_E_ARG if malformed. */
kl_status kl_fault_parse(const char *spec, enum kl_fault_step *step, long *n);

/* The step's name as written in KEYLINK_FAULT, or "?" for a bad value. */
const char *kl_fault_step_name(enum kl_fault_step step);

/* Counts one occurrence of step; 1 if the process must die at this one. The first call
 * reads KEYLINK_FAULT. */
int kl_fault_due(enum kl_fault_step step);

/* Dies now: SIGKILL to itself (exit code 99 should that ever return). */
_Noreturn void kl_fault_die(void);

/* kl_fault_due then kl_fault_die if it says so. */
void kl_fault_point(enum kl_fault_step step);

#endif
