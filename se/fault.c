/* Fault injection for crash tests (see fault.h and docs/persistence.md). */
#define _POSIX_C_SOURCE 200809L
#include "fault.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *const step_names[KL_FAULT_STEPS] = {"write", "fsync_file", "rename",
                                                       "fsync_dir"};

static int fault_loaded;              /* KEYLINK_FAULT was read */
static int fault_armed;               /* a valid fault is set */
static enum kl_fault_step fault_step; /* which step */
static long fault_at;                 /* at which occurrence */
static long fault_seen[KL_FAULT_STEPS];

const char *kl_fault_step_name(enum kl_fault_step step)
{
    if ((int)step < 0 || step >= KL_FAULT_STEPS) return "?";
    return step_names[step];
}

kl_status kl_fault_parse(const char *spec, enum kl_fault_step *step, long *n)
{
    if (spec == NULL || step == NULL || n == NULL) return KL_E_ARG;
    const char *colon = strchr(spec, ':');
    if (colon == NULL) return KL_E_ARG;
    size_t nlen = (size_t)(colon - spec);
    int found = -1;
    for (int i = 0; i < KL_FAULT_STEPS; i++) {
        if (strlen(step_names[i]) == nlen && memcmp(spec, step_names[i], nlen) == 0) found = i;
    }
    if (found < 0) return KL_E_ARG;
    const char *num = colon + 1;
    if (*num < '1' || *num > '9') return KL_E_ARG; /* no sign, no leading zero, no empty */
    errno = 0;
    char *end = NULL;
    long v = strtol(num, &end, 10);
    if (errno != 0 || end == NULL || *end != '\0' || v < 1 || v > 0x7FFFFFFFL) return KL_E_ARG;
    *step = (enum kl_fault_step)found;
    *n = v;
    return KL_OK;
}

static void fault_load(void)
{
    fault_loaded = 1;
    const char *spec = getenv("KEYLINK_FAULT");
    if (spec == NULL || spec[0] == '\0') return;
    if (kl_fault_parse(spec, &fault_step, &fault_at) != KL_OK) {
        fprintf(stderr, "keylink: KEYLINK_FAULT must be <step>:<n> with step write, fsync_file, "
                        "rename or fsync_dir and n >= 1; stopping\n");
        _exit(98);
    }
    fault_armed = 1;
}

int kl_fault_due(enum kl_fault_step step)
{
    if (!fault_loaded) fault_load();
    if (!fault_armed || (int)step < 0 || step >= KL_FAULT_STEPS) return 0;
    fault_seen[step]++;
    return step == fault_step && fault_seen[step] == fault_at;
}

_Noreturn void kl_fault_die(void)
{
    kill(getpid(), SIGKILL);
    _exit(99);
}

void kl_fault_point(enum kl_fault_step step)
{
    if (kl_fault_due(step)) kl_fault_die();
}
