/* keylink: the umbrella CLI. `keylink se ...`, `keylink iot ...`, `keylink device ...`. */
#include <stdio.h>
#include <string.h>

struct kl_cli_entry {
    const char *name;
    int (*run)(int argc, char **argv);
};

#include "cli_table.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: keylink COMMAND [ARGS...]\n\ncommands:\n");
    for (const struct kl_cli_entry *e = kl_cli_table; e->name; e++)
        fprintf(f, "  %s\n", e->name);
    fprintf(f, "\n`keylink COMMAND --help` tells more.\n");
}

int main(int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    for (const struct kl_cli_entry *e = kl_cli_table; e->name; e++)
        if (!strcmp(e->name, argv[1])) return e->run(argc - 1, argv + 1);
    fprintf(stderr, "keylink: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}
