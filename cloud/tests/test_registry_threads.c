/* The registry shared by threads, as keylinkd's API workers and the data plane share it:
 * writers and readers at once, every acknowledged write visible afterwards, hook calls
 * counted; plus schema versioning (a newer database is refused). */
#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "registry.h"

#define WRITERS 4
#define PER_WRITER 150

static struct kl_registry *reg;
static atomic_int hook_calls, failures, stop_readers;

static void hook(void *ctx, enum kl_reg_change what, const char *id, const char *status)
{
    (void)ctx;
    (void)id;
    (void)status;
    if (what == KL_REG_CHANGE_THING_DELETED) atomic_fetch_add(&hook_calls, 1);
}

static void *writer(void *arg)
{
    long w = (long)arg;
    struct kl_reg_err err;
    for (int i = 0; i < PER_WRITER; i++) {
        char name[64];
        snprintf(name, sizeof name, "w%ld-%03d", w, i);
        if (kl_reg_thing_create(reg, name, NULL, "{\"k\":\"v\"}", NULL, &err) != KL_REG_OK)
            atomic_fetch_add(&failures, 1);
        if (i % 10 == 0 && kl_reg_thing_delete(reg, name, -1, &err) != KL_REG_OK)
            atomic_fetch_add(&failures, 1);
    }
    return NULL;
}

static int count(void *ctx, const struct kl_reg_thing *t)
{
    (void)t;
    (*(int *)ctx)++;
    return 0;
}

static void *reader(void *arg)
{
    (void)arg;
    struct kl_reg_err err;
    while (!atomic_load(&stop_readers)) {
        struct kl_reg_page pg = {.limit = 250};
        int n = 0;
        if (kl_reg_thing_list(reg, NULL, NULL, NULL, &pg, count, &n, &err) != KL_REG_OK)
            atomic_fetch_add(&failures, 1);
        struct kl_reg_thing t;
        kl_reg_rc rc = kl_reg_thing_get(reg, "w0-001", &t, &err);
        if (rc == KL_REG_OK)
            kl_reg_thing_clear(&t);
        else if (rc != KL_REG_NOT_FOUND)
            atomic_fetch_add(&failures, 1);
    }
    return NULL;
}

int main(void)
{
    char dir[] = "/tmp/kl-regthr-XXXXXX", path[256], cmd[300];
    if (!mkdtemp(dir)) return 1;
    snprintf(path, sizeof path, "%s/registry.db", dir);
    struct kl_reg_err err;
    int fails = 0;
    if (kl_registry_open(path, NULL, &reg, &err) != KL_REG_OK) return 1;
    kl_registry_set_hook(reg, hook, NULL);
    pthread_t w[WRITERS], r[2];
    for (long i = 0; i < 2; i++)
        pthread_create(&r[i], NULL, reader, NULL);
    for (long i = 0; i < WRITERS; i++)
        pthread_create(&w[i], NULL, writer, (void *)i);
    for (int i = 0; i < WRITERS; i++)
        pthread_join(w[i], NULL);
    atomic_store(&stop_readers, 1);
    for (int i = 0; i < 2; i++)
        pthread_join(r[i], NULL);
    int total = 0;
    char token[sizeof((struct kl_reg_page){0}).next_token] = "";
    do {
        struct kl_reg_page pg = {.limit = 250, .token = token};
        if (kl_reg_thing_list(reg, NULL, NULL, NULL, &pg, count, &total, &err)) fails++;
        memcpy(token, pg.next_token, sizeof token);
    } while (token[0]);
    int want = WRITERS * (PER_WRITER - PER_WRITER / 10);
    if (atomic_load(&failures) || total != want || atomic_load(&hook_calls) != WRITERS * 15) {
        fprintf(stderr, "FAIL: failures %d, things %d (want %d), hook calls %d\n",
                atomic_load(&failures), total, want, atomic_load(&hook_calls));
        fails++;
    }
    kl_registry_close(reg);

    /* a database written by a newer keylinkd is refused, and left as it is */
    sqlite3 *db;
    if (sqlite3_open(path, &db) != SQLITE_OK ||
        sqlite3_exec(db, "PRAGMA user_version=99", NULL, NULL, NULL) != SQLITE_OK)
        fails++;
    sqlite3_close(db);
    reg = NULL;
    if (kl_registry_open(path, NULL, &reg, &err) != KL_REG_INTERNAL || reg) {
        fprintf(stderr, "FAIL: a schema-99 database was opened\n");
        fails++;
    }
    /* a file that is not a database at all */
    snprintf(cmd, sizeof cmd, "%s/junk.db", dir);
    FILE *f = fopen(cmd, "w");
    if (f) {
        fputs("this is not an SQLite database, just some text that is long enough........\n", f);
        fclose(f);
    }
    if (kl_registry_open(cmd, NULL, &reg, &err) != KL_REG_INTERNAL) {
        fprintf(stderr, "FAIL: junk opened as a registry\n");
        fails++;
    }
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd)) fails++;
    if (!fails) printf("registry threads + schema: all checks passed\n");
    return fails ? 1 : 0;
}
