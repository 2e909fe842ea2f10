/*
 * Crash test through the chip: a child opens the chip on a state directory and applies
 * numbered changes with WRITE_OBJECT and COUNTER_UPDATE (docs/protocol.md) to two
 * persistent objects, reporting each one the chip answered KL_OK. The parent kills it
 * with SIGKILL at random instants and at every commit step through KEYLINK_FAULT;
 * after each kill it reopens the chip with kl_chip_open and reads the objects back with
 * READ_OBJECT: the state must be exactly "changes 1..m applied" (never a mix) with m
 * the last acknowledged change or the one after it. At least 1,000 changes overall.
 *
 * Change k: odd k writes content(k) (64 bytes) to data object 0x2001; even k adds 1 to
 * up-counter 0x2002, so after changes 1..m the counter holds m / 2 and the data object
 * content(largest odd k <= m).
 */
#include "crash_harness.h"

#include "chip.h"
#include "fault.h"

#define MIN_CHANGES 1000
#define RANDOM_KILLS 40
/* Changes per child run at most, then it waits to be killed: keeps each object far
 * below its 10,000-write endurance however fast the disk is. */
#define ROUND_CAP 300
#define DATA_ID 0x2001
#define CTR_ID 0x2002
#define DATA_LEN 64

enum {
    CMD_CREATE_OBJECT = 0x10,
    CMD_READ_OBJECT = 0x12,
    CMD_WRITE_OBJECT = 0x13,
    CMD_COUNTER_UPDATE = 0x16,
};

static void put16(uint8_t *p, unsigned v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static void put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (24 - 8 * i));
}

static void content(uint64_t k, uint8_t out[DATA_LEN])
{
    for (int i = 0; i < 8; i++)
        out[i] = (uint8_t)(k >> (56 - 8 * i));
    for (int i = 8; i < DATA_LEN; i++)
        out[i] = (uint8_t)((k * 40503u) >> (i % 3 * 4)) ^ (uint8_t)(i * 29);
}

static kl_status exec(struct kl_chip *c, uint8_t cmd, const uint8_t *req, size_t n,
                      uint8_t resp[2048], size_t *rlen)
{
    return kl_chip_execute(c, cmd, req, n, resp, 2048, rlen);
}

/* Reads the chip's state and says which m it is: 0 and *m, or -1 if it is no state
 * "changes 1..m" (a mix, or unreadable). *missing gets a mask of objects not there. */
static int read_state(struct kl_chip *c, uint64_t *m, int *missing)
{
    uint8_t req[6], resp[2048];
    size_t rl = 0;
    *missing = 0;
    put16(req, DATA_ID);
    put16(req + 2, 0);
    put16(req + 4, DATA_LEN);
    uint64_t kd = 0; /* last odd change applied, 0 if none */
    kl_status st = exec(c, CMD_READ_OBJECT, req, 6, resp, &rl);
    if (st == KL_E_NOT_FOUND) {
        *missing |= 1;
    } else if (st == KL_OK && rl == DATA_LEN) {
        uint8_t want[DATA_LEN];
        kd = crash_be64(resp);
        content(kd, want);
        if (kd % 2 != 1 || memcmp(want, resp, DATA_LEN) != 0) {
            fprintf(stderr, "FAIL: data object holds no committed content\n");
            return -1;
        }
    } else if (st != KL_E_OUT_OF_RANGE) { /* OUT_OF_RANGE: created, never written */
        fprintf(stderr, "FAIL: READ_OBJECT data: %s\n", kl_status_name(st));
        return -1;
    }
    put16(req, CTR_ID);
    put16(req + 4, 4);
    uint64_t v = 0;
    st = exec(c, CMD_READ_OBJECT, req, 6, resp, &rl);
    if (st == KL_E_NOT_FOUND) {
        *missing |= 2;
    } else if (st == KL_OK && rl == 4) {
        v = ((uint64_t)resp[0] << 24) | ((uint64_t)resp[1] << 16) | ((uint64_t)resp[2] << 8) |
            resp[3];
    } else {
        fprintf(stderr, "FAIL: READ_OBJECT counter: %s\n", kl_status_name(st));
        return -1;
    }
    if (kd == 0 && v == 0) {
        *m = 0;
    } else if (kd != 0 && v == (kd - 1) / 2) {
        *m = kd;
    } else if (kd != 0 && v == (kd + 1) / 2) {
        *m = kd + 1;
    } else {
        fprintf(stderr, "FAIL: mixed state: data at change %llu, counter %llu\n",
                (unsigned long long)kd, (unsigned long long)v);
        return -1;
    }
    return 0;
}

static kl_status create(struct kl_chip *c, unsigned id, uint8_t type, unsigned size)
{
    uint8_t req[24], resp[2048];
    size_t rl = 0, n = 20;
    memset(req, 0, sizeof req);
    put16(req, id);
    req[2] = type;
    req[3] = 0x02; /* persistent */
    put16(req + 4, size);
    for (int i = 0; i < 3; i++) {
        req[6 + 3 * i] = 0x10;     /* everyone */
        req[6 + 3 * i + 1] = 0x03; /* read, write */
    }
    req[15] = 0;    /* key type none */
    req[16] = 0xFF; /* usage slots unused */
    req[18] = 0xFF;
    if (type == 5) n = 24; /* up-counter: initial value 0 */
    return exec(c, CMD_CREATE_OBJECT, req, n, resp, &rl);
}

static int child(const char *dir, uint64_t target, int stay)
{
    struct kl_chip *c = NULL;
    if (kl_chip_open(dir, &c) != KL_OK) return 2;
    uint64_t m = 0;
    int missing = 0;
    if (read_state(c, &m, &missing) != 0) return 3;
    if ((missing & 1) && create(c, DATA_ID, 4, DATA_LEN) != KL_OK) return 4;
    if ((missing & 2) && create(c, CTR_ID, 5, 4) != KL_OK) return 4;
    uint8_t req[4 + DATA_LEN], resp[2048];
    size_t rl = 0;
    for (uint64_t k = m + 1; k <= target; k++) {
        kl_status st;
        if (k % 2 == 1) {
            put16(req, DATA_ID);
            put16(req + 2, 0);
            content(k, req + 4);
            st = exec(c, CMD_WRITE_OBJECT, req, 4 + DATA_LEN, resp, &rl);
            if (st == KL_OK && rl != 0) return 5;
        } else {
            put16(req, CTR_ID);
            put32(req + 2, 1);
            st = exec(c, CMD_COUNTER_UPDATE, req, 6, resp, &rl);
            if (st == KL_OK && (rl != 4 || resp[0] != (uint8_t)(k / 2 >> 24) ||
                                resp[1] != (uint8_t)(k / 2 >> 16) ||
                                resp[2] != (uint8_t)(k / 2 >> 8) || resp[3] != (uint8_t)(k / 2)))
                return 5;
        }
        if (st != KL_OK) {
            fprintf(stderr, "child: change %llu: %s\n", (unsigned long long)k, kl_status_name(st));
            return 6;
        }
        if (crash_ack(k) != 0) return 7;
    }
    if (stay) crash_wait_for_kill();
    kl_chip_close(c);
    return 0;
}

/* Reopens the chip in the parent; its m, or -1. */
static int64_t check_state(const char *dir)
{
    struct kl_chip *c = NULL;
    kl_status st = kl_chip_open(dir, &c);
    if (st != KL_OK) {
        fprintf(stderr, "FAIL: kl_chip_open after kill: %s\n", kl_status_name(st));
        return -1;
    }
    uint64_t m = 0;
    int missing = 0;
    int rc = read_state(c, &m, &missing);
    kl_chip_close(c);
    if (rc != 0) return -1;
    if (m > 0 && missing != 0) {
        fprintf(stderr, "FAIL: objects missing after change %llu\n", (unsigned long long)m);
        return -1;
    }
    return (int64_t)m;
}

struct round {
    uint64_t acks, last_ack;
    int64_t m; /* state after the round */
    int status;
};

/* Runs the child from state floor: killed at a random instant (kill_it), or by fault, or
 * (neither) until it reaches target. */
static int run(const char *dir, uint64_t floor, int kill_it, const char *fault, uint64_t target,
               struct round *out)
{
    struct crash_run r;
    memset(out, 0, sizeof *out);
    if (crash_spawn_child(&r, dir, target, kill_it, fault) != 0) {
        fprintf(stderr, "FAIL: spawn\n");
        return -1;
    }
    int rc = 0;
    if (kill_it) {
        out->status = crash_kill_random(&r, &rc);
    } else {
        rc = crash_read(&r, 60000); /* guard against a hang */
        out->status = crash_finish(&r, !r.eof);
    }
    if (rc != 0 || crash_acks_follow(&r, floor) != 0) return -1;
    out->acks = r.count;
    out->last_ack = r.count > 0 ? r.last : floor;
    out->m = check_state(dir);
    if (out->m < 0) return -1;
    if ((uint64_t)out->m < out->last_ack || (uint64_t)out->m > out->last_ack + 1) {
        fprintf(stderr, "FAIL: chip holds change %lld, last acknowledged %llu\n", (long long)out->m,
                (unsigned long long)out->last_ack);
        return -1;
    }
    return 0;
}

static int killed(int ws)
{
    return WIFSIGNALED(ws) && WTERMSIG(ws) == SIGKILL;
}

int main(int argc, char **argv)
{
    if (argc == 5 && strcmp(argv[1], "--child") == 0)
        return child(argv[2], strtoull(argv[3], NULL, 10), strcmp(argv[4], "1") == 0);
    crash_seed();
    char base[256], dir[300];
    if (crash_make_dirs("kl-crash-chip", base, sizeof base, dir, sizeof dir) != 0) return 1;
    uint64_t floor = 0, acked = 0;
    int ahead = 0;
    struct round rd;

    /* Random instants; the first runs also catch the factory commit and the creates. */
    for (int i = 0; i < RANDOM_KILLS && kl_fails == 0; i++) {
        if (run(dir, floor, 1, NULL, floor + ROUND_CAP, &rd) != 0 || !killed(rd.status)) {
            fprintf(stderr, "FAIL: random kill round %d (status 0x%x)\n", i, rd.status);
            kl_fails++;
            break;
        }
        acked += rd.acks;
        ahead += (uint64_t)rd.m == rd.last_ack + 1;
        floor = (uint64_t)rd.m;
    }
    /* The fault rounds need the objects in place: one uninterrupted change. */
    if (kl_fails == 0 && floor == 0) {
        CHECK(run(dir, floor, 0, NULL, 1, &rd) == 0 && WIFEXITED(rd.status) &&
              WEXITSTATUS(rd.status) == 0 && rd.m == 1);
        acked += rd.acks;
        floor = 1;
    }

    /* Each commit step, at the first change of a run and at a later one. The chip does
     * not commit when it opens an existing state, so the n-th commit is change n. */
    for (int step = 0; step < KL_FAULT_STEPS && kl_fails == 0; step++) {
        for (int j = 0; j < 2 && kl_fails == 0; j++) {
            long k = j == 0 ? 1 : 2 + (long)(crash_rand() % 20);
            char fault[64];
            snprintf(fault, sizeof fault, "%s:%ld", kl_fault_step_name((enum kl_fault_step)step),
                     k);
            if (run(dir, floor, 0, fault, floor + ROUND_CAP, &rd) != 0) {
                kl_fails++;
                break;
            }
            CHECK(killed(rd.status));
            CHECK(rd.acks == (uint64_t)(k - 1));
            if (step == KL_FAULT_FSYNC_DIR)
                CHECK((uint64_t)rd.m == rd.last_ack + 1);
            else
                CHECK((uint64_t)rd.m == rd.last_ack);
            printf("fault %-14s: %llu acks, chip at change %lld\n", fault,
                   (unsigned long long)rd.acks, (long long)rd.m);
            acked += rd.acks;
            floor = (uint64_t)rd.m;
        }
    }

    if (kl_fails == 0 && acked < MIN_CHANGES) {
        uint64_t target = floor + (MIN_CHANGES - acked);
        CHECK(run(dir, floor, 0, NULL, target, &rd) == 0 && WIFEXITED(rd.status) &&
              WEXITSTATUS(rd.status) == 0 && rd.m == (int64_t)target);
        acked += rd.acks;
    }
    printf("%d random kills (%d after a commit not yet acknowledged), %d fault kills, %llu "
           "acknowledged changes\n",
           RANDOM_KILLS, ahead, 2 * KL_FAULT_STEPS, (unsigned long long)acked);
    CHECK(acked >= MIN_CHANGES);

    return crash_done(base, dir, "test_crash_chip");
}
