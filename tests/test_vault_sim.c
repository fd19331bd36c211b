/* vault.h's atomic save on the simulated disk (tests/sim_disk.h, durable
 * images): a power cut after any step of a save (create the temp file, write
 * it, fsync it, rename it over the vault, fsync the directory, unlink stale
 * temps) leaves the vault as the old version under the old password or the
 * new version under the new password: never neither, never a mix. A save
 * that returned 0 is the new version. The step is a rekey that also changes
 * a credential, so old and new differ in both password and contents.
 *
 * Fault model (sim_disk.h): a new file is empty on disk until an fsync of it
 * returns; a rename or unlink is durable only once the directory's fsync
 * returns, and a cut may undo the latest ones first. Each cut is built three
 * ways: every unsynced sector and name kept, all reverted (the worst case),
 * and each at random (seeded).
 *   PLG_TEST_QUICK=1: fewer random seeds. VAULT_SIM_SEEDS=N: more.
 * A failure prints the step, the mode and the seed: rerun with
 * VAULT_SIM_SEED=<seed> to replay that seed alone. */
// NO_TSAN (vault.h starts no thread and neither does this test: nothing for TSan to check)
#define VAULT_TEST_IO
#define VAULT_IMPLEMENTATION
#include "vault.h"
#include "t.h"
#include "sim_disk.h"

static sim_disk disk;
static int step, cut_at;              /* steps seen in this save; the step after which the power goes */

static const char *pathin(const char *dir, const char *name) {
    static char b[4][1200]; static int k;
    char *p = b[k++ & 3];
    snprintf(p, sizeof b[0], "%.600s/%.500s", dir, name);
    return p;
}

/* Every hook: refuse once the disk is dead; else do the step, then cut if
 * this was the chosen one. */
#define ENTER() do { if (disk.dead) { disk.st.ops_after_cut++; errno = EIO; return -1; } } while (0)
static void after_step(void) { if (++step == cut_at) disk.dead = 1; }

static int h_open(void *ctx, const char *path, int flags, unsigned mode) {
    struct stat sb;
    int fd;
    (void)ctx;
    ENTER();
    fd = open(path, flags, (mode_t)mode);
    if (fd >= 0 && fstat(fd, &sb) == 0) sim__img_find(&disk, sb.st_dev, sb.st_ino, 1);   /* durable: empty */
    after_step();
    return fd;
}
static long h_write(void *ctx, int fd, const void *buf, size_t len) {
    long w;
    (void)ctx;
    ENTER();
    w = (long)write(fd, buf, len);
    after_step();
    return w;
}
static int h_fsync(void *ctx, int fd) {
    (void)ctx;
    ENTER();
    if (fsync(fd) != 0) return -1;
    {   /* the save's fd is write-only: read the durable bytes through another */
        char path[600];
        int rfd;
        snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
        rfd = open(path, O_RDONLY | O_CLOEXEC);
        if (rfd < 0) { fprintf(stderr, "sim: cannot reopen fd %d\n", fd); abort(); }
        sim__img_capture(&disk, rfd, 0, UINT64_MAX / 2);
        close(rfd);
    }
    after_step();
    return 0;
}
static int h_rename(void *ctx, const char *from, const char *to) {
    char grave[1100];
    sim_dirop *o;
    (void)ctx;
    ENTER();
    if (access(to, F_OK) == 0) sim__bury(&disk, to, grave, sizeof grave); else grave[0] = 0;
    if (rename(from, to) != 0) return -1;
    o = sim__dirop(&disk, SIM_DIR_RENAME, from, to);
    snprintf(o->grave_b, sizeof o->grave_b, "%s", grave);
    after_step();
    return 0;
}
static int h_unlink(void *ctx, const char *path) {
    char grave[1100];
    sim_dirop *o;
    (void)ctx;
    ENTER();
    sim__bury(&disk, path, grave, sizeof grave);
    if (unlink(path) != 0) return -1;
    o = sim__dirop(&disk, SIM_DIR_UNLINK, path, NULL);
    snprintf(o->grave_a, sizeof o->grave_a, "%s", grave);
    after_step();
    return 0;
}
static int h_fsync_dir(void *ctx, int dirfd, const char *dir) {
    int i, w = 0;
    (void)ctx;
    ENTER();
    if (fsync(dirfd) != 0) return -1;
    for (i = 0; i < disk.ndirops; i++) if (!strcmp(disk.dirops[i].dir, dir)) disk.dirops[i].done = 1;
    for (i = 0; i < disk.ndirops; i++) if (!disk.dirops[i].done) disk.dirops[w++] = disk.dirops[i];
    disk.ndirops = w;
    after_step();
    return 0;
}

static vault_options fast(void) {
    vault_options o;
    memset(&o, 0, sizeof o);
    o.iterations = 1000; o.min_iterations = 1000;
    return o;
}

/* Which version the vault at p is: 1 old, 2 new, 0 neither. */
static int version_of(const char *p) {
    vault_options o = fast();
    vault *v = NULL;
    char buf[32];
    int which = 0;
    if (vault_open_ex(&v, p, "old password", &o) == 0) {
        if (vault_get(v, "coinbase.api_key", buf, sizeof buf) >= 0 && !strcmp(buf, "old-key") && vault_count(v) == 1) which = 1;
        vault_close(v);
    } else if (vault_open_ex(&v, p, "new password", &o) == 0) {
        if (vault_get(v, "coinbase.api_key", buf, sizeof buf) >= 0 && !strcmp(buf, "new-key") && vault_count(v) == 2) which = 2;
        vault_close(v);
    }
    return which;
}

static int counts[3];

/* One save, the power cut after step `at` (0: no cut), the image built in
 * `mode`. Returns 0 when the result is allowed. */
static int one(const char *base, int at, int mode, uint64_t seed, int *steps_out) {
    char data[900], grave[900], after[900], cmd[5000];
    vault_options o = fast();
    vault *v = NULL;
    sim_cfg sc;
    vault_io io;
    int rc, which;
    snprintf(data, sizeof data, "%.800s/data", base);
    snprintf(grave, sizeof grave, "%.800s/grave", base);
    snprintf(after, sizeof after, "%.800s/after", base);
    snprintf(cmd, sizeof cmd, "rm -rf '%s' '%s' '%s' && mkdir -p '%s'", data, grave, after, data);
    if (system(cmd) != 0) return -1;
    /* the old version, durable */
    if (vault_create_ex(&v, pathin(data, "secure_config.json"), "old password", &o) != 0) return -2;
    if (vault_set(v, "coinbase.api_key", "old-key") != 0 || vault_save(v) != 0) return -3;
    vault_close(v);
    memset(&sc, 0, sizeof sc);
    sc.seed = seed;
    sim_init(&disk, &sc);
    sim_img_init(&disk, grave);
    sim_img_adopt(&disk, data);
    if (vault_open_ex(&v, pathin(data, "secure_config.json"), "old password", &o) != 0) return -4;
    /* the new version: one save through the hooks */
    memset(&io, 0, sizeof io);
    io.open = h_open; io.write = h_write; io.fsync = h_fsync; io.rename = h_rename;
    io.unlink = h_unlink; io.fsync_dir = h_fsync_dir;
    step = 0; cut_at = at;
    vault_test_set_io(&io);
    rc = vault_set(v, "coinbase.api_key", "new-key");
    if (rc == 0) rc = vault_set(v, "binance.api_key", "b");
    if (rc == 0) rc = vault_rekey(v, "new password");
    vault_test_set_io(NULL);
    vault_close(v);
    if (steps_out) *steps_out = step;
    disk.dead = 1;
    sim_img_build(&disk, data, after, mode, seed);
    which = version_of(pathin(after, "secure_config.json"));
    sim_destroy(&disk);
    counts[which]++;
    if (which == 0) {
        printf("  cut after step %d (mode %d, seed %llu): the vault is neither the old nor the new version\n",
               at, mode, (unsigned long long)seed);
        if (getenv("VAULT_SIM_STOP")) exit(1);
        return 1;
    }
    if (rc == 0 && which != 2) {
        printf("  cut after step %d (mode %d, seed %llu): the save returned 0 but the old version came back\n",
               at, mode, (unsigned long long)seed);
        return 1;
    }
    return 0;
}

static void test_power_cut_after_every_step_of_a_save(void) {
    const char *base = t_dir("vault_sim");
    const char *q = getenv("PLG_TEST_QUICK"), *ns = getenv("VAULT_SIM_SEEDS"), *one_seed = getenv("VAULT_SIM_SEED");
    int steps = 0, at, bad = 0, nseeds = ns ? atoi(ns) : (q && *q && *q != '0') ? 2 : 6;
    uint64_t s, s0 = one_seed ? strtoull(one_seed, NULL, 10) : 1;
    if (one_seed) nseeds = 1;
    /* a save without a cut: how many steps it has */
    REQUIRE(one(base, 0, 2, 1, &steps) == 0);
    printf("  a save (rekey) has %d steps\n", steps);
    memset(counts, 0, sizeof counts);
    CHECK(steps >= 5);                                 /* open, write, fsync, rename, dir fsync at least */
    for (at = 1; at <= steps; at++) {
        bad += one(base, at, 1, 1, NULL) != 0;         /* every unsynced thing lost */
        bad += one(base, at, 2, 1, NULL) != 0;         /* everything kept (a process crash) */
        for (s = s0; s < s0 + (uint64_t)nseeds; s++) bad += one(base, at, 0, s, NULL) != 0;   /* each at random */
    }
    printf("  %d cuts: old version %d times, new %d times, neither %d\n", counts[0] + counts[1] + counts[2],
           counts[1], counts[2], counts[0]);
    CHECK_EQ(bad, 0);
    CHECK(counts[1] > 0);                              /* both outcomes happen */
    CHECK(counts[2] > 0);
}

int main(void) {
    (void)t_rand;     /* the parts of sim_disk.h this test does not use (the plg_io engine) */
    (void)sim_stats_add; (void)sim_print_stats; (void)sim_external_sync; (void)sim_outstanding;
    (void)sim_cut; (void)sim_reap; (void)sim_fsync; (void)sim_write;
    RUN(test_power_cut_after_every_step_of_a_save);
    return t_done();
}
