/* Real process crashes for vault saves: a child changes the vault and saves
 * it as fast as it can (vault_set/vault_remove + vault_save; now and then
 * vault_rekey), publishing through MAP_SHARED memory the version it is about
 * to save and the last version whose vault_save returned 0 (and likewise the
 * password a rekey is about to set and the last one a rekey returned 0 for).
 * The parent SIGKILLs it at a random moment (sometimes during vault_create,
 * when the directory is fresh, during vault_open, or during a vault_rekey:
 * all three are counted) and checks:
 *   - secure_config.json exists (unless vault_create never returned) and
 *     opens with the right password: the last acknowledged one, or the one
 *     an unacknowledged rekey was setting;
 *   - its contents are exactly version `acked` or version `intent` (the one
 *     being saved): every credential of that version, byte for byte, and
 *     nothing else; never missing, never a mix;
 *   - temp files left by the killed save (secure_config.json.tmp-*) do not
 *     break anything, and the next successful save removes them (each is a
 *     whole copy of the vault, perhaps under an old password): the parent
 *     saves once more when it finds one and checks that none is left.
 * Each round continues from the version found. The lowest PBKDF2 count
 * accepted (VAULT_ITERATIONS_FLOOR) keeps create, open and rekey fast.
 *
 * SIGKILL is not power loss: it proves the process-crash half (the file is
 * replaced atomically, whatever the moment of death).
 *
 * usage: test_crash_vault [--rounds N] [--seed N]
 *   env VAULT_CRASH_ROUNDS, VAULT_CRASH_SEED; PLG_TEST_QUICK: fewer rounds;
 *   PLG_TEST_TIME_SCALE: stretch the kill delays (under valgrind) */
#define VAULT_IMPLEMENTATION
#include "vault.h"
#include "t.h"
#include <dirent.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>

typedef struct shared {
    int64_t intent;      /* the version the child is about to save */
    int64_t acked;       /* the last version vault_save (or create: version 0) returned 0 for; -1 none */
    int64_t pw_intent;   /* the password index a rekey is about to set */
    int64_t pw_acked;    /* the password index the file has per the last call that returned 0 */
    int64_t saves, rekeys;
    int32_t created;     /* vault_create returned 0 (this round or before) */
    int32_t opened;      /* the child got its handle */
    int32_t fail_rc;     /* an unexpected error in the child */
    /* set by the parent before the fork */
    int64_t start_version, start_pw;
    int32_t fresh, rekey_every;
} shared;

static vault_options fast(void) {
    vault_options o;
    memset(&o, 0, sizeof o);
    o.iterations = VAULT_ITERATIONS_FLOOR; o.min_iterations = VAULT_ITERATIONS_FLOOR;
    return o;
}

static void pw_of(int64_t i, char *buf, size_t cap) { snprintf(buf, cap, "password %lld of the crash test", (long long)i); }

/* Version k: "version" = k, "data" = a filler whose length depends on k (so
 * the file size changes), and "slot.<k % 3>" = "x<k>" (the other two slots
 * absent). Version 0 is the empty vault vault_create makes. */
static size_t filler_len(int64_t k) { return k == 0 ? 0 : (size_t)((k * 2654435761u) % 3000); }
static void filler(int64_t k, char *buf) {
    size_t n = filler_len(k);
    for (size_t i = 0; i < n; i++) buf[i] = (char)('a' + (k + (int64_t)i * 7) % 26);
    buf[n] = 0;
}

static int apply_version(vault *v, int64_t k) {
    char val[3100], nm[32];
    snprintf(val, sizeof val, "%lld", (long long)k);
    int rc = vault_set(v, "version", val);
    filler(k, val);
    if (!rc) rc = vault_set(v, "data", val);
    for (int s = 0; s < 3 && !rc; s++) {
        snprintf(nm, sizeof nm, "slot.%d", s);
        if (s == k % 3) { snprintf(val, sizeof val, "x%lld", (long long)k); rc = vault_set(v, nm, val); }
        else { rc = vault_remove(v, nm); if (rc == VAULT_ENOTFOUND) rc = 0; }
    }
    return rc;
}

/* 0 if v holds exactly version k; else a message in why */
static int is_version(vault *v, int64_t k, char *why, size_t cap) {
    char buf[3100], want[3100], nm[32];
    if (k == 0) {
        if (vault_count(v) != 0) { snprintf(why, cap, "version 0 with %d credentials", vault_count(v)); return -1; }
        return 0;
    }
    if (vault_count(v) != 3) { snprintf(why, cap, "version %lld with %d credentials, not 3", (long long)k, vault_count(v)); return -1; }
    filler(k, want);
    if (vault_get(v, "data", buf, sizeof buf) < 0 || strcmp(buf, want) != 0) { snprintf(why, cap, "version %lld: \"data\" is another version's", (long long)k); return -1; }
    snprintf(nm, sizeof nm, "slot.%d", (int)(k % 3));
    snprintf(want, sizeof want, "x%lld", (long long)k);
    if (vault_get(v, nm, buf, sizeof buf) < 0 || strcmp(buf, want) != 0) { snprintf(why, cap, "version %lld: %s missing or another version's", (long long)k, nm); return -1; }
    return 0;
}

static void child_main(const char *path, shared *sh) {
    vault_options o = fast();
    vault *v;
    char pw[80];
    int rc;
    int64_t k, cur_pw = sh->start_pw;
    pw_of(cur_pw, pw, sizeof pw);
    if (sh->fresh) {
        rc = vault_create_ex(&v, path, pw, &o);
        if (rc) { sh->fail_rc = rc; _exit(3); }
        __atomic_store_n(&sh->acked, 0, __ATOMIC_RELEASE);
        __atomic_store_n(&sh->created, 1, __ATOMIC_RELEASE);
        k = 0;
    } else {
        rc = vault_open_ex(&v, path, pw, &o);
        if (rc) { sh->fail_rc = rc; _exit(3); }
        k = sh->start_version;
    }
    __atomic_store_n(&sh->opened, 1, __ATOMIC_RELEASE);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int64_t i = 1;; i++) {
        if (sh->rekey_every && i % sh->rekey_every == 0) {
            /* the file then holds version k (what was saved last) under the new password */
            __atomic_store_n(&sh->pw_intent, cur_pw + 1, __ATOMIC_RELEASE);
            pw_of(cur_pw + 1, pw, sizeof pw);
            rc = vault_rekey(v, pw);
            if (rc) { sh->fail_rc = rc; _exit(4); }
            cur_pw++;
            __atomic_store_n(&sh->pw_acked, cur_pw, __ATOMIC_RELEASE);
            __atomic_add_fetch(&sh->rekeys, 1, __ATOMIC_RELAXED);
        } else {
            if ((rc = apply_version(v, k + 1)) != 0) { sh->fail_rc = rc; _exit(5); }
            __atomic_store_n(&sh->intent, k + 1, __ATOMIC_RELEASE);
            rc = vault_save(v);
            if (rc) { sh->fail_rc = rc; _exit(6); }
            k++;
            __atomic_store_n(&sh->acked, k, __ATOMIC_RELEASE);
            __atomic_add_fetch(&sh->saves, 1, __ATOMIC_RELAXED);
        }
        clock_gettime(CLOCK_MONOTONIC, &t1);
        if (t1.tv_sec - t0.tv_sec > 10) _exit(7);      /* never killed: the parent is gone */
    }
}

static uint64_t env_u64(const char *name, uint64_t def) {
    const char *v = getenv(name);
    return v && *v ? strtoull(v, NULL, 0) : def;
}
static uint64_t default_rounds(void) {
    if (getenv("PLG_TEST_QUICK")) return 60;
#if defined(__SANITIZE_THREAD__)
    return 60;
#elif defined(__SANITIZE_ADDRESS__)
    return 200;
#else
    return 600;
#endif
}

static int count_temps(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return 0;
    struct dirent *e;
    int n = 0;
    while ((e = readdir(d)) != NULL) if (strstr(e->d_name, ".tmp-")) n++;
    closedir(d);
    return n;
}

static uint64_t opt_rounds, opt_seed = 1;

static void test_sigkill_rounds(void) {
    uint64_t rounds = opt_rounds ? opt_rounds : env_u64("VAULT_CRASH_ROUNDS", default_rounds());
    /* PLG_TEST_TIME_SCALE (valgrind sets 30): the child runs that much slower,
     * so the kill delays stretch with it (otherwise every kill lands in create) */
    useconds_t time_scale = (useconds_t)env_u64("PLG_TEST_TIME_SCALE", 1);
    if (time_scale < 1) time_scale = 1;
    uint64_t rng = opt_seed;
    shared *sh = (shared *)mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    REQUIRE(sh != MAP_FAILED);
    const uint32_t per_dir = 20;                      /* a fresh directory (vault_create) every 20 rounds */
    const char *dir = NULL;
    char path[600];
    int64_t version = 0, pw_idx = 0;
    int exists = 0;
    uint64_t bad = 0, in_create = 0, in_open = 0, in_rekey = 0, missing_ok = 0, found_intent = 0, found_acked = 0;
    uint64_t new_pw = 0, saves = 0, rekeys = 0, max_temps = 0, temps_seen = 0, temps_removed = 0;
    struct timespec ts0, ts1;
    clock_gettime(CLOCK_MONOTONIC, &ts0);
    vault_options o = fast();
    for (uint32_t round = 0; round < rounds; round++) {
        if (round % per_dir == 0) {
            dir = t_dir("crash_vault");
            snprintf(path, sizeof path, "%s/secure_config.json", dir);
            version = 0; pw_idx = 0; exists = 0;
        }
        memset(sh, 0, sizeof *sh);
        sh->acked = -1; sh->intent = -1;
        sh->start_version = version; sh->start_pw = pw_idx;
        sh->pw_acked = sh->pw_intent = pw_idx;
        sh->fresh = !exists;
        sh->created = exists;
        sh->rekey_every = round % 3 == 2 ? 2 + (int32_t)(round % 5) : 0;
        if (exists) sh->acked = sh->intent = version;
        fflush(stdout); fflush(stderr);
        pid_t pid = fork();
        REQUIRE(pid >= 0);
        if (pid == 0) child_main(path, sh);
        /* Kill within the first 1.5 ms (create or open) in one round in six and
         * in the first round of each fresh directory (not in the retries after
         * a killed create: those would crowd out the saves). Otherwise wait
         * until the child has its handle (bounded), then kill after 0.5..25 ms:
         * on a loaded machine or under a sanitizer, create and open alone can
         * take longer than any fixed delay, and no save would ever be hit. */
        uint64_t r = t_rand(&rng);
        int early = r % 6 == 0 || (!exists && round % per_dir == 0);
        if (!early)
            for (int w = 0; w < 20000 && !__atomic_load_n(&sh->opened, __ATOMIC_ACQUIRE); w++) usleep(500);   /* <= 10 s */
        useconds_t us = early ? (useconds_t)((r >> 8) % 1500) : 500 + (useconds_t)((r >> 8) % 24500);
        usleep(us * time_scale);
        kill(pid, SIGKILL);
        int st = 0;
        waitpid(pid, &st, 0);
        if (!(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL)) {
            fprintf(stderr, "  round %u: the child exited on its own (status %d, rc %d: %s)\n", round, st, sh->fail_rc,
                    vault_strerror(sh->fail_rc));
            bad++;
            break;
        }
        int64_t acked = __atomic_load_n(&sh->acked, __ATOMIC_ACQUIRE), intent = __atomic_load_n(&sh->intent, __ATOMIC_ACQUIRE);
        int64_t pwa = __atomic_load_n(&sh->pw_acked, __ATOMIC_ACQUIRE), pwi = __atomic_load_n(&sh->pw_intent, __ATOMIC_ACQUIRE);
        int created = __atomic_load_n(&sh->created, __ATOMIC_ACQUIRE);
        saves += (uint64_t)sh->saves; rekeys += (uint64_t)sh->rekeys;
        if (!exists && !created) in_create++;
        else if (!sh->opened) in_open++;
        else if (pwi != pwa) in_rekey++;
        /* check */
        char why[300] = "";
        struct stat sb;
        if (lstat(path, &sb) != 0) {
            if (created) snprintf(why, sizeof why, "secure_config.json is missing after vault_create returned 0");
            else { missing_ok++; }
        } else {
            char pw[80];
            vault *v = NULL;
            int64_t used = pwa;
            pw_of(pwa, pw, sizeof pw);
            int rc = vault_open_ex(&v, path, pw, &o);
            if (rc == VAULT_EAUTH && pwi != pwa) {
                used = pwi;
                pw_of(pwi, pw, sizeof pw);
                rc = vault_open_ex(&v, path, pw, &o);
            }
            if (rc) snprintf(why, sizeof why, "vault_open: %s (password %lld acknowledged, %lld being set)", vault_strerror(rc),
                             (long long)pwa, (long long)pwi);
            else {
                char vb[64] = "0";
                int64_t found = vault_get(v, "version", vb, sizeof vb) >= 0 ? strtoll(vb, NULL, 10) : 0;
                if (found != acked && found != intent && !(acked < 0 && found == 0))
                    snprintf(why, sizeof why, "holds version %lld; acknowledged %lld, being saved %lld", (long long)found,
                             (long long)acked, (long long)intent);
                else if (is_version(v, found, why, sizeof why) == 0) {
                    if (found == acked || (acked < 0 && found == 0)) found_acked++; else found_intent++;
                    if (used != pwa) new_pw++;
                    version = found; pw_idx = used; exists = 1;
                    /* a temp left by the killed save is a whole copy of the vault, perhaps
                     * under an old password: the next successful save removes it */
                    if (count_temps(dir) > 0) {
                        temps_seen++;
                        int mx = count_temps(dir);
                        if ((uint64_t)mx > max_temps) max_temps = (uint64_t)mx;
                        if (vault_save(v) != 0) snprintf(why, sizeof why, "saving again after the crash failed");
                        else if (count_temps(dir) != 0)
                            snprintf(why, sizeof why, "%d temp files left after a successful save", count_temps(dir));
                        else temps_removed++;
                    }
                }
                vault_close(v);
            }
        }
        if (why[0]) {
            char cmd[1400];
            snprintf(cmd, sizeof cmd, "rm -rf '%s.failed'; cp -r '%s' '%s.failed'", dir, dir, dir);
            if (system(cmd) != 0) {}
            fprintf(stderr, "  round %u FAILED: %s (seed %llu; files in %s.failed)\n", round, why, (unsigned long long)opt_seed, dir);
            bad++;
            break;
        }
    }
    munmap(sh, 4096);
    clock_gettime(CLOCK_MONOTONIC, &ts1);
    CHECK_EQ(bad, 0);
    CHECK(saves > 0);
    printf("  crash: %llu SIGKILL rounds in %.1f s (%llu during vault_create, %llu during vault_open, %llu during vault_rekey), %llu failed;\n"
           "         %llu saves and %llu rekeys acknowledged; the file held the acknowledged version %llu times and the one\n"
           "         being saved %llu times (%llu times under the password of an unacknowledged rekey); missing only\n"
           "         before vault_create returned: %llu; temp files left in %llu rounds (at most %llu at once), removed by the next save %llu times\n",
           (unsigned long long)rounds, (double)(ts1.tv_sec - ts0.tv_sec) + (double)(ts1.tv_nsec - ts0.tv_nsec) / 1e9,
           (unsigned long long)in_create, (unsigned long long)in_open, (unsigned long long)in_rekey, (unsigned long long)bad, (unsigned long long)saves,
           (unsigned long long)rekeys, (unsigned long long)found_acked, (unsigned long long)found_intent,
           (unsigned long long)new_pw, (unsigned long long)missing_ok, (unsigned long long)temps_seen, (unsigned long long)max_temps,
           (unsigned long long)temps_removed);
}

int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--rounds") && i + 1 < argc) opt_rounds = strtoull(argv[++i], NULL, 0);
        else if (!strcmp(argv[i], "--seed") && i + 1 < argc) opt_seed = strtoull(argv[++i], NULL, 0);
    }
    if (getenv("VAULT_CRASH_SEED")) opt_seed = strtoull(getenv("VAULT_CRASH_SEED"), NULL, 0);
    RUN(test_sigkill_rounds);
    return t_done();
}
