/*
 * Crash test of the image store: a child commits images whose content encodes a
 * sequence number and acknowledges each one after kl_image_commit returns. The parent
 * kills it with SIGKILL at random instants, and at every commit step through
 * KEYLINK_FAULT; after each kill the image must load, hold exactly the content of one
 * committed sequence number, never torn, and that number must be the last acknowledged
 * one or the one after it. At least 1,000 changes are acknowledged overall.
 */
#include "crash_harness.h"

#include "fault.h"
#include "image.h"

#define MIN_CHANGES 1000
#define RANDOM_KILLS 40
#define ROUND_CAP 300 /* changes per child run at most, then it waits to be killed */

/* The content committed for seq: its length and bytes both depend on seq, so a torn or
 * mixed image cannot match any seq. */
static size_t content(uint64_t seq, uint8_t *buf)
{
    size_t len = 16 + (size_t)((seq * 7919u) % 3000u);
    for (int i = 0; i < 8; i++)
        buf[i] = (uint8_t)(seq >> (56 - 8 * i));
    for (size_t i = 8; i < len; i++)
        buf[i] = (uint8_t)((seq * 2654435761u) >> ((i % 4) * 8)) ^ (uint8_t)i;
    return len;
}

/* 0 and *seq if data is exactly the content of some seq. */
static int decode(const uint8_t *data, size_t len, uint64_t *seq)
{
    if (len < 8) return -1;
    uint64_t s = crash_be64(data);
    uint8_t want[4096];
    size_t wl = content(s, want);
    if (wl != len || memcmp(want, data, len) != 0) return -1;
    *seq = s;
    return 0;
}

static int child(const char *dir, uint64_t target, int stay)
{
    struct kl_image *im = NULL;
    int fresh = 0;
    if (kl_image_open(dir, &im, &fresh) != KL_OK) return 2;
    uint8_t *d = NULL;
    size_t n = 0;
    uint64_t seq = 0;
    kl_status st = kl_image_load(im, &d, &n);
    if (st == KL_OK) {
        int bad = decode(d, n, &seq) != 0 || kl_image_generation(im) != seq;
        kl_image_free_data(d, n);
        if (bad) return 3;
    } else if (st != KL_E_NOT_FOUND) {
        return 4;
    }
    uint8_t buf[4096];
    while (seq < target) {
        seq++;
        size_t len = content(seq, buf);
        if (kl_image_commit(im, buf, len) != KL_OK) return 5;
        if (crash_ack(seq) != 0) return 6;
    }
    if (stay) crash_wait_for_kill();
    kl_image_close(im);
    return 0;
}

/* Loads the image in the parent; returns its seq (0 if none committed) or -1. */
static int64_t check_state(const char *dir)
{
    struct kl_image *im = NULL;
    int fresh = 0;
    kl_status st = kl_image_open(dir, &im, &fresh);
    if (st != KL_OK) {
        fprintf(stderr, "FAIL: reopen after kill: %s\n", kl_status_name(st));
        return -1;
    }
    if (crash_exists(dir, "chip.img.tmp")) {
        fprintf(stderr, "FAIL: open left the temp file\n");
        kl_image_close(im);
        return -1;
    }
    uint8_t *d = NULL;
    size_t n = 0;
    int64_t r = -1;
    st = kl_image_load(im, &d, &n);
    if (st == KL_E_NOT_FOUND) {
        r = 0;
    } else if (st == KL_OK) {
        uint64_t s = 0;
        if (decode(d, n, &s) != 0)
            fprintf(stderr, "FAIL: loaded image is not any committed content (torn)\n");
        else if (kl_image_generation(im) != s)
            fprintf(stderr, "FAIL: generation %llu for seq %llu\n",
                    (unsigned long long)kl_image_generation(im), (unsigned long long)s);
        else
            r = (int64_t)s;
    } else {
        fprintf(stderr, "FAIL: load after kill: %s\n", kl_status_name(st));
    }
    kl_image_free_data(d, n);
    kl_image_close(im);
    return r;
}

/* One child run from state `floor` (the seq on disk): killed at a random instant (kill),
 * or run until it reaches target. Returns the seq on disk after it, or -1. */
static int64_t run_round(const char *dir, uint64_t floor, int kill_it, uint64_t target,
                         uint64_t *acked, uint64_t *last_ack, int *killed_mid_commit)
{
    struct crash_run r;
    if (crash_spawn_child(&r, dir, target, kill_it, NULL) != 0) {
        fprintf(stderr, "FAIL: spawn\n");
        return -1;
    }
    int ws;
    if (kill_it) {
        int rc = 0;
        ws = crash_kill_random(&r, &rc);
        if (rc != 0) kl_fails++;
        if (!WIFSIGNALED(ws) || WTERMSIG(ws) != SIGKILL) {
            fprintf(stderr, "FAIL: child was not killed by SIGKILL (status 0x%x)\n", ws);
            return -1;
        }
        *killed_mid_commit = crash_exists(dir, "chip.img.tmp");
    } else {
        /* 60 s guard against a child that hangs. */
        if (crash_read(&r, 60000) != 0) kl_fails++;
        ws = crash_finish(&r, !r.eof);
        if (!WIFEXITED(ws) || WEXITSTATUS(ws) != 0) {
            fprintf(stderr, "FAIL: child failed (status 0x%x)\n", ws);
            return -1;
        }
    }
    if (crash_acks_follow(&r, floor) != 0) return -1;
    *last_ack = r.count > 0 ? r.last : floor;
    *acked += r.count;
    int64_t seq = check_state(dir);
    if (seq < 0) return -1;
    if ((uint64_t)seq < *last_ack || (uint64_t)seq > *last_ack + 1) {
        fprintf(stderr, "FAIL: image holds seq %lld, last acknowledged %llu\n", (long long)seq,
                (unsigned long long)*last_ack);
        return -1;
    }
    return seq;
}

int main(int argc, char **argv)
{
    if (argc == 5 && strcmp(argv[1], "--child") == 0)
        return child(argv[2], strtoull(argv[3], NULL, 10), strcmp(argv[4], "1") == 0);
    crash_seed();
    char base[256], dir[300];
    if (crash_make_dirs("kl-crash-img", base, sizeof base, dir, sizeof dir) != 0) return 1;
    uint64_t floor = 0, acked = 0;
    int mid = 0, ahead = 0;

    /* Random instants. */
    for (int i = 0; i < RANDOM_KILLS && kl_fails == 0; i++) {
        int killed_mid = 0;
        uint64_t last_ack = 0;
        int64_t s = run_round(dir, floor, 1, floor + ROUND_CAP, &acked, &last_ack, &killed_mid);
        if (s < 0) {
            kl_fails++;
            break;
        }
        ahead += (uint64_t)s == last_ack + 1;
        mid += killed_mid;
        floor = (uint64_t)s;
    }

    /* Each commit step, at the first commit of a run and at a later one. */
    for (int step = 0; step < KL_FAULT_STEPS && kl_fails == 0; step++) {
        for (int j = 0; j < 2 && kl_fails == 0; j++) {
            long k = j == 0 ? 1 : 2 + (long)(crash_rand() % 20);
            char fault[64];
            snprintf(fault, sizeof fault, "%s:%ld", kl_fault_step_name((enum kl_fault_step)step),
                     k);
            uint64_t before = acked;
            /* Run by hand: the directory is inspected as the crash left it. */
            struct crash_run r;
            CHECK(crash_spawn_child(&r, dir, floor + ROUND_CAP, 0, fault) == 0);
            CHECK(crash_read(&r, 30000) == 0);
            int ws = crash_finish(&r, !r.eof);
            CHECK(WIFSIGNALED(ws) && WTERMSIG(ws) == SIGKILL);
            CHECK(r.count == (uint64_t)(k - 1));
            uint64_t last_ack = r.count > 0 ? r.last : floor;
            acked += r.count;
            int tmp_left = crash_exists(dir, "chip.img.tmp");
            long tmp_size = crash_size(dir, "chip.img.tmp");
            uint8_t buf[4096];
            long full = 32 + (long)content(last_ack + 1, buf) + 16;
            int64_t s = check_state(dir);
            CHECK(s >= 0);
            if (step == KL_FAULT_FSYNC_DIR) {
                /* Renamed but not acknowledged: the new image is the one in place. */
                CHECK(!tmp_left);
                CHECK(s == (int64_t)last_ack + 1);
            } else {
                CHECK(tmp_left);
                CHECK(s == (int64_t)last_ack);
                if (step == KL_FAULT_WRITE)
                    CHECK(tmp_size == full / 2); /* the partial write is real */
                else
                    CHECK(tmp_size == full);
            }
            printf("fault %-14s: %llu acks, image at seq %lld, temp file %s\n", fault,
                   (unsigned long long)(acked - before), (long long)s,
                   tmp_left ? "left (removed on open)" : "none");
            if (s >= 0) floor = (uint64_t)s;
        }
    }

    /* Then at least MIN_CHANGES acknowledged changes overall, checked again at the end. */
    if (kl_fails == 0 && acked < MIN_CHANGES) {
        uint64_t target = floor + (MIN_CHANGES - acked);
        int unused = 0;
        uint64_t last_ack = 0;
        int64_t s = run_round(dir, floor, 0, target, &acked, &last_ack, &unused);
        CHECK(s == (int64_t)target);
    }
    printf("%d random kills (%d with a temp file left, %d after a rename not yet acknowledged), "
           "%d fault kills, %llu acknowledged changes\n",
           RANDOM_KILLS, mid, ahead, 2 * KL_FAULT_STEPS, (unsigned long long)acked);
    CHECK(acked >= MIN_CHANGES);

    return crash_done(base, dir, "test_crash_image");
}
