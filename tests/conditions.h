/* Helpers shared by tests/test_*_conditions.c: a small filesystem to fill,
 * and a child that runs as an unprivileged user. Include after t.h. */
#ifndef TESTS_CONDITIONS_H
#define TESTS_CONDITIONS_H
#include <grp.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* Mounts a fresh 12 MiB ext4 (a loop device over an image file) at
 * $PLG_TEST_DIR/<name>/mnt, after detaching one a run that died half-way may
 * have left there. Returns 0 with the mount point in mnt and the image in img
 * (the directory is t_dir(name)), or -1 when the machine does not allow it
 * (not root, no loop devices); mnt is then an empty directory. */
static int t_mount_small_ext4(const char *name, char *mnt, size_t mntcap, char *img, size_t imgcap) {
    const char *tb = getenv("PLG_TEST_DIR");
    snprintf(mnt, mntcap, "%s/%s/mnt", tb && *tb ? tb : "build/tmp", name);
    umount2(mnt, MNT_DETACH);
    const char *base = t_dir(name);
    snprintf(img, imgcap, "%s/disk.img", base);
    snprintf(mnt, mntcap, "%s/mnt", base);
    mkdir(mnt, 0755);
    if (geteuid() != 0) return -1;
    char cmd[4000];
    snprintf(cmd, sizeof cmd, "truncate -s 12M '%s' && mkfs.ext4 -q -F -m 0 '%s' >/dev/null 2>&1 && mount -o loop '%s' '%s' 2>/dev/null",
             img, img, img, mnt);
    return system(cmd) == 0 ? 0 : -1;
}

/* Runs fn(arg) in a child that is not root (drops to nobody when root, since
 * root ignores permission bits); returns its exit status (0 = all its checks
 * passed, 90 = could not drop privileges, 100 = died). */
static int t_as_nobody(int (*fn)(const char *), const char *arg) {
    fflush(stdout); fflush(stderr);
    pid_t pid = fork();
    if (pid == 0) {
        if (geteuid() == 0) {
            if (setgroups(0, NULL) != 0 || setgid(65534) != 0 || setuid(65534) != 0) _exit(90);
        }
        int r = fn(arg);
        fflush(stdout); fflush(stderr);
        _exit(r);
    }
    int st = 0;
    waitpid(pid, &st, 0);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 100;
}
#endif
