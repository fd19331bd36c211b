/* An in-memory directory for a fuzz target: the file system calls of the
 * code compiled after this header (an STB implementation included next in
 * the same translation unit) that name a path under FZM_ROOT, or an fd or a
 * mapping this layer handed out, are served from memory; every other call
 * goes to the real system call unchanged. So a target's scratch log costs no
 * kernel entry per file operation (on a VM each one is a trap: openat,
 * pread, getdents, fsync and munmap's TLB shootdown were most of an input's
 * time), while the test that includes the target still makes and reads real
 * files elsewhere.
 *
 * What it models (a directory tree under FZM_ROOT; every call holds one
 * lock, so background threads of the code under test may use it too):
 * files as byte arrays with POSIX semantics for what the headers rely on:
 * mkdir/rmdir (ENOENT without the parent, ENOTEMPTY), opendir/readdir of
 * one level, O_CREAT/O_EXCL/O_TRUNC, reads past the end are short,
 * writes past the end extend with zeros, an unlinked file lives on while an
 * fd or a mapping holds it, rename replaces, distinct inode numbers; fsync,
 * fdatasync and directory fsync succeed (memory is the medium); fallocate
 * (including FALLOC_FL_WRITE_ZEROES) extends with zeros; flock and OFD
 * record locks conflict between open file descriptions as the kernel's do;
 * mmap of a file maps its bytes (MAP_SHARED: the writer and a reader in this
 * process see the same memory), also past the end of the file (the file
 * then grows into the mapping, as pinnacle's journal does); msync and
 * madvise on such a mapping succeed; fstatfs says tmpfs (RAM, which it is).
 * A mapped file must not grow past what its mappings cover (abort()).
 *
 * Include it before the implementation, after nothing that calls these
 * functions through macros of its own; define FZM_ROOT first to change the
 * directory's name (it must not exist on disk). */
#ifndef FUZZ_MEMFS_H
#define FUZZ_MEMFS_H
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <sys/vfs.h>
#include <linux/falloc.h>
#include <pthread.h>
#include <unistd.h>

#ifndef FZM_ROOT
#define FZM_ROOT "/fuzz-memfs"
#endif
#define FZM_FN static __attribute__((unused))   /* a target uses what its header calls */
#define FZM_FD0 (1 << 20)        /* fds of this layer: far above any real one */
#define FZM_NFD 256
#define FZM_NINO 256
#define FZM_NAME 512               /* a path relative to the root */
#define FZM_NDIR 8
#define FZM_TMPFS_MAGIC 0x01021994

typedef struct fzm_ino {
    int used, linked, isdir, nopen, nmap;
    char name[FZM_NAME];         /* "" for the root, else "a", "a/b", ... */
    uint8_t *data; size_t size, cap;
    uint64_t ino;
    int flock_by, lock_by;       /* the open file description (fd) holding it, or -1 */
} fzm_ino;
typedef struct fzm_fd { int used, ino; size_t pos; } fzm_fd;
typedef struct fzm_dir { int used, ino, next; struct dirent ent; } fzm_dir;

static fzm_ino fzm_inos[FZM_NINO];
static fzm_fd fzm_fds[FZM_NFD];
static fzm_dir fzm_dirs[FZM_NDIR];
static uint64_t fzm_next_ino = 2;
static pthread_mutex_t fzm_mu = PTHREAD_RECURSIVE_MUTEX_INITIALIZER_NP;
static void fzm_lock(void) { pthread_mutex_lock(&fzm_mu); }
static int fzm_unlock(int rc) { pthread_mutex_unlock(&fzm_mu); return rc; }   /* passes rc (and errno) on */

static int fzm_err(int e) { errno = e; return -1; }

/* The root's inode (a directory, made at first use). */
FZM_FN int fzm_root(void) {
    if (!fzm_inos[0].used) {
        fzm_inos[0].used = fzm_inos[0].linked = fzm_inos[0].isdir = 1;
        fzm_inos[0].ino = 1; fzm_inos[0].flock_by = fzm_inos[0].lock_by = -1;
    }
    return 0;
}

/* 1 when path is under the root: rel gets the path below it ("" for the
 * root), without "." components or repeated or trailing slashes; 0 for a
 * path outside this layer. */
FZM_FN int fzm_path(const char *path, char rel[FZM_NAME]) {
    size_t n = strlen(FZM_ROOT);
    if (!path || strncmp(path, FZM_ROOT, n) != 0 || (path[n] != 0 && path[n] != '/')) return 0;
    size_t o = 0;
    for (const char *p = path + n; *p;) {
        while (*p == '/') p++;
        if (!*p) break;
        const char *e = strchr(p, '/');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (!(len == 1 && p[0] == '.')) {
            if (o + len + 2 > FZM_NAME) { rel[0] = 0; return -1; }
            if (o) rel[o++] = '/';
            memcpy(rel + o, p, len); o += len;
        }
        p += len;
    }
    rel[o] = 0;
    return 1;
}

FZM_FN int fzm_lookup(const char *rel) {
    if (!rel[0]) return fzm_root();
    for (int i = 1; i < FZM_NINO; i++)
        if (fzm_inos[i].used && fzm_inos[i].linked && !strcmp(fzm_inos[i].name, rel)) return i;
    return -1;
}

/* The parent directory of rel must exist. */
FZM_FN int fzm_parent_ok(const char *rel) {
    const char *sl = strrchr(rel, '/');
    if (!sl) return 1;
    char par[FZM_NAME];
    memcpy(par, rel, (size_t)(sl - rel)); par[sl - rel] = 0;
    int i = fzm_lookup(par);
    return i >= 0 && fzm_inos[i].isdir;
}

/* File buffers are kept for the next files (and inputs): a fresh large
 * block per file would be an mmap, page faults and an munmap under ASan. */
#define FZM_POOL 64
#define FZM_MIN_CAP ((size_t)64 << 10)
static uint8_t *fzm_pool_p[FZM_POOL]; static size_t fzm_pool_n[FZM_POOL];
FZM_FN void fzm_pool_put(uint8_t *p, size_t cap) {
    if (!p) return;
    for (int k = 0; k < FZM_POOL; k++)
        if (!fzm_pool_p[k]) { fzm_pool_p[k] = p; fzm_pool_n[k] = cap; return; }
    free(p);
}
FZM_FN uint8_t *fzm_pool_get(size_t cap, size_t *got) {
    int best = -1;
    for (int k = 0; k < FZM_POOL; k++)
        if (fzm_pool_p[k] && fzm_pool_n[k] >= cap && (best < 0 || fzm_pool_n[k] < fzm_pool_n[best])) best = k;
    if (best >= 0) {
        uint8_t *p = fzm_pool_p[best];
        *got = fzm_pool_n[best]; fzm_pool_p[best] = NULL;
        return p;
    }
    *got = cap;
    return (uint8_t *)malloc(cap);
}

FZM_FN void fzm_maybe_free(int i) {
    fzm_ino *f = &fzm_inos[i];
    if (i == 0 || f->linked || f->nopen || f->nmap) return;
    fzm_pool_put(f->data, f->cap);
    memset(f, 0, sizeof *f);
}

FZM_FN int fzm_create(const char *rel, int isdir) {
    if (!fzm_parent_ok(rel)) return fzm_err(ENOENT);
    for (int i = 1; i < FZM_NINO; i++)
        if (!fzm_inos[i].used) {
            fzm_ino *f = &fzm_inos[i];
            memset(f, 0, sizeof *f);
            f->used = f->linked = 1; f->isdir = isdir;
            snprintf(f->name, sizeof f->name, "%s", rel);
            f->ino = fzm_next_ino++;
            f->flock_by = f->lock_by = -1;
            return i;
        }
    return fzm_err(ENOSPC);
}

/* Room for cap bytes, without moving a mapped file; the bytes past the
 * file's size are undefined until it grows over them (zeros then). */
FZM_FN int fzm_reserve(fzm_ino *f, size_t cap) {
    if (cap <= f->cap) return 0;
    if (f->nmap) abort();            /* would move the bytes under a mapping */
    size_t c = FZM_MIN_CAP, got;
    while (c < cap) c *= 2;
    uint8_t *p = fzm_pool_get(c, &got);
    if (!p) return fzm_err(ENOSPC);
    if (f->size) memcpy(p, f->data, f->size);
    fzm_pool_put(f->data, f->cap);
    f->data = p; f->cap = got;
    return 0;
}

FZM_FN int fzm_resize(fzm_ino *f, size_t size) {
    if (size > f->size) {
        if (fzm_reserve(f, size) != 0) return -1;
        memset(f->data + f->size, 0, size - f->size);
    }
    f->size = size;
    return 0;
}

FZM_FN fzm_fd *fzm_fd_of(int fd) {
    if (fd < FZM_FD0 || fd >= FZM_FD0 + FZM_NFD || !fzm_fds[fd - FZM_FD0].used) return NULL;
    return &fzm_fds[fd - FZM_FD0];
}
static int fzm_is_fd(int fd) { fzm_lock(); return fzm_unlock(fzm_fd_of(fd) != NULL); }

FZM_FN int fzm_open_rel(const char *rel, int flags) {
    int i = fzm_lookup(rel);
    if (i >= 0 && (flags & O_CREAT) && (flags & O_EXCL)) return fzm_err(EEXIST);
    if (i < 0 && !(flags & O_CREAT)) return fzm_err(ENOENT);
    if (i < 0 && (i = fzm_create(rel, 0)) < 0) return -1;
    fzm_ino *f = &fzm_inos[i];
    if ((flags & O_DIRECTORY) && !f->isdir) return fzm_err(ENOTDIR);
    if (f->isdir && (flags & O_ACCMODE) != O_RDONLY) return fzm_err(EISDIR);
    if ((flags & O_TRUNC) && (flags & O_ACCMODE) != O_RDONLY) {
        if (f->nmap) abort();
        f->size = 0;
    }
    for (int k = 0; k < FZM_NFD; k++)
        if (!fzm_fds[k].used) {
            fzm_fds[k].used = 1; fzm_fds[k].ino = i; fzm_fds[k].pos = 0;
            f->nopen++;
            return FZM_FD0 + k;
        }
    return fzm_err(EMFILE);
}

FZM_FN int fzm_open(const char *path, int flags, ...) {
    char rel[FZM_NAME];
    unsigned mode = 0;
    if (flags & (O_CREAT | O_TMPFILE)) { va_list ap; va_start(ap, flags); mode = va_arg(ap, unsigned); va_end(ap); }
    int m = fzm_path(path, rel);
    if (!m) return open(path, flags, mode);
    if (m < 0) return fzm_err(ENAMETOOLONG);
    fzm_lock();
    return fzm_unlock(fzm_open_rel(rel, flags));
}

FZM_FN int fzm_openat(int dirfd, const char *path, int flags, ...) {
    unsigned mode = 0;
    if (flags & (O_CREAT | O_TMPFILE)) { va_list ap; va_start(ap, flags); mode = va_arg(ap, unsigned); va_end(ap); }
    if (!fzm_is_fd(dirfd)) return openat(dirfd, path, flags, mode);
    if (path[0] == '/') return fzm_open(path, flags, mode);
    char full[FZM_NAME + FZM_NAME + 8];
    fzm_lock();
    fzm_ino *d = &fzm_inos[fzm_fd_of(dirfd)->ino];
    if (!d->isdir) return fzm_unlock(fzm_err(ENOTDIR));
    snprintf(full, sizeof full, "%s/%s/%s", FZM_ROOT, d->name, path);
    fzm_unlock(0);
    return fzm_open(full, flags, mode);
}

FZM_FN int fzm_close(int fd) {
    fzm_lock();
    fzm_fd *d = fzm_fd_of(fd);
    if (!d) { fzm_unlock(0); return close(fd); }
    int i = d->ino;
    if (fzm_inos[i].flock_by == fd) fzm_inos[i].flock_by = -1;
    if (fzm_inos[i].lock_by == fd) fzm_inos[i].lock_by = -1;
    d->used = 0;
    fzm_inos[i].nopen--;
    fzm_maybe_free(i);
    return fzm_unlock(0);
}

FZM_FN ssize_t fzm_pread_l(fzm_fd *d, void *buf, size_t len, off_t off) {
    fzm_ino *f = &fzm_inos[d->ino];
    if (f->isdir) return fzm_err(EISDIR);
    if (off < 0) return fzm_err(EINVAL);
    if ((size_t)off >= f->size) return 0;
    size_t n = f->size - (size_t)off < len ? f->size - (size_t)off : len;
    memcpy(buf, f->data + off, n);
    return (ssize_t)n;
}
FZM_FN ssize_t fzm_pwrite_l(fzm_fd *d, const void *buf, size_t len, off_t off) {
    fzm_ino *f = &fzm_inos[d->ino];
    if (f->isdir) return fzm_err(EISDIR);
    if (off < 0) return fzm_err(EINVAL);
    if ((size_t)off + len > f->size && fzm_resize(f, (size_t)off + len) != 0) return -1;
    memcpy(f->data + off, buf, len);
    return (ssize_t)len;
}

FZM_FN ssize_t fzm_pread(int fd, void *buf, size_t len, off_t off) {
    fzm_lock();
    fzm_fd *d = fzm_fd_of(fd);
    if (!d) { fzm_unlock(0); return pread(fd, buf, len, off); }
    return fzm_unlock((int)fzm_pread_l(d, buf, len, off));
}
FZM_FN ssize_t fzm_pwrite(int fd, const void *buf, size_t len, off_t off) {
    fzm_lock();
    fzm_fd *d = fzm_fd_of(fd);
    if (!d) { fzm_unlock(0); return pwrite(fd, buf, len, off); }
    return fzm_unlock((int)fzm_pwrite_l(d, buf, len, off));
}
FZM_FN ssize_t fzm_read(int fd, void *buf, size_t len) {
    fzm_lock();
    fzm_fd *d = fzm_fd_of(fd);
    if (!d) { fzm_unlock(0); return read(fd, buf, len); }
    ssize_t n = fzm_pread_l(d, buf, len, (off_t)d->pos);
    if (n > 0) d->pos += (size_t)n;
    return fzm_unlock((int)n);
}
FZM_FN ssize_t fzm_write(int fd, const void *buf, size_t len) {
    fzm_lock();
    fzm_fd *d = fzm_fd_of(fd);
    if (!d) { fzm_unlock(0); return write(fd, buf, len); }
    ssize_t n = fzm_pwrite_l(d, buf, len, (off_t)d->pos);
    if (n > 0) d->pos += (size_t)n;
    return fzm_unlock((int)n);
}

FZM_FN void fzm_fill_stat(const fzm_ino *f, struct stat *st) {
    memset(st, 0, sizeof *st);
    st->st_ino = (ino_t)f->ino;
    st->st_dev = makedev(0, 99);
    st->st_nlink = f->linked ? 1 : 0;
    st->st_mode = f->isdir ? (S_IFDIR | 0755) : (S_IFREG | 0644);
    st->st_size = (off_t)f->size;
    st->st_blksize = 4096;
    st->st_blocks = (blkcnt_t)((f->size + 511) / 512);
}

FZM_FN int fzm_fstat(int fd, struct stat *st) {
    fzm_lock();
    fzm_fd *d = fzm_fd_of(fd);
    if (!d) { fzm_unlock(0); return fstat(fd, st); }
    fzm_fill_stat(&fzm_inos[d->ino], st);
    return fzm_unlock(0);
}

FZM_FN int fzm_stat(const char *path, struct stat *st) {
    char rel[FZM_NAME];
    int m = fzm_path(path, rel);
    if (!m) return stat(path, st);
    if (m < 0) return fzm_err(ENAMETOOLONG);
    fzm_lock();
    int i = fzm_lookup(rel);
    if (i < 0) return fzm_unlock(fzm_err(ENOENT));
    fzm_fill_stat(&fzm_inos[i], st);
    return fzm_unlock(0);
}
FZM_FN int fzm_lstat(const char *path, struct stat *st) {
    char rel[FZM_NAME];
    if (!fzm_path(path, rel)) return lstat(path, st);
    return fzm_stat(path, st);           /* no symbolic links here */
}

FZM_FN int fzm_access(const char *path, int mode) {
    char rel[FZM_NAME];
    int m = fzm_path(path, rel);
    if (!m) return access(path, mode);
    fzm_lock();
    return fzm_unlock(m > 0 && fzm_lookup(rel) >= 0 ? 0 : fzm_err(ENOENT));
}

FZM_FN int fzm_has_children(const char *rel) {
    size_t n = strlen(rel);
    for (int i = 1; i < FZM_NINO; i++)
        if (fzm_inos[i].used && fzm_inos[i].linked && (n == 0 || (!strncmp(fzm_inos[i].name, rel, n) && fzm_inos[i].name[n] == '/')))
            return 1;
    return 0;
}

FZM_FN int fzm_unlink(const char *path) {
    char rel[FZM_NAME];
    int m = fzm_path(path, rel);
    if (!m) return unlink(path);
    fzm_lock();
    int i = m > 0 ? fzm_lookup(rel) : -1;
    if (i < 0) return fzm_unlock(fzm_err(ENOENT));
    if (fzm_inos[i].isdir) return fzm_unlock(fzm_err(EISDIR));
    fzm_inos[i].linked = 0;
    fzm_maybe_free(i);
    return fzm_unlock(0);
}

FZM_FN int fzm_rmdir(const char *path) {
    char rel[FZM_NAME];
    int m = fzm_path(path, rel);
    if (!m) return rmdir(path);
    fzm_lock();
    int i = m > 0 ? fzm_lookup(rel) : -1;
    if (i < 0) return fzm_unlock(fzm_err(ENOENT));
    if (!fzm_inos[i].isdir) return fzm_unlock(fzm_err(ENOTDIR));
    if (i == 0) return fzm_unlock(fzm_err(EBUSY));
    if (fzm_has_children(rel)) return fzm_unlock(fzm_err(ENOTEMPTY));
    fzm_inos[i].linked = 0;
    fzm_maybe_free(i);
    return fzm_unlock(0);
}

FZM_FN int fzm_mkdir(const char *path, mode_t mode) {
    char rel[FZM_NAME];
    int m = fzm_path(path, rel);
    if (!m) return mkdir(path, mode);
    if (m < 0) return fzm_err(ENAMETOOLONG);
    fzm_lock();
    if (fzm_lookup(rel) >= 0) return fzm_unlock(fzm_err(EEXIST));
    return fzm_unlock(fzm_create(rel, 1) < 0 ? -1 : 0);
}

FZM_FN int fzm_rename(const char *from, const char *to) {
    char a[FZM_NAME], b[FZM_NAME];
    int ma = fzm_path(from, a), mb = fzm_path(to, b);
    if (!ma && !mb) return rename(from, to);
    if (!ma || !mb) return fzm_err(EXDEV);
    if (ma < 0 || mb < 0) return fzm_err(ENAMETOOLONG);
    fzm_lock();
    int i = fzm_lookup(a);
    if (i < 0) return fzm_unlock(fzm_err(ENOENT));
    if (i == 0 || !b[0]) return fzm_unlock(fzm_err(EBUSY));
    if (!fzm_parent_ok(b)) return fzm_unlock(fzm_err(ENOENT));
    int j = fzm_lookup(b);
    if (j == i) return fzm_unlock(0);
    size_t an = strlen(a), bn = strlen(b);
    if (fzm_inos[i].isdir && !strncmp(b, a, an) && b[an] == '/') return fzm_unlock(fzm_err(EINVAL));
    if (j >= 0) {
        if (fzm_inos[j].isdir != fzm_inos[i].isdir) return fzm_unlock(fzm_err(fzm_inos[j].isdir ? EISDIR : ENOTDIR));
        if (fzm_inos[j].isdir && fzm_has_children(b)) return fzm_unlock(fzm_err(ENOTEMPTY));
        fzm_inos[j].linked = 0; fzm_maybe_free(j);
    }
    if (fzm_inos[i].isdir)               /* the entries below move with it */
        for (int k = 1; k < FZM_NINO; k++) {
            fzm_ino *f = &fzm_inos[k];
            if (!f->used || !f->linked || strncmp(f->name, a, an) != 0 || f->name[an] != '/') continue;
            if (bn + strlen(f->name + an) + 1 > FZM_NAME) return fzm_unlock(fzm_err(ENAMETOOLONG));
            char nn[FZM_NAME];
            snprintf(nn, sizeof nn, "%s%s", b, f->name + an);
            snprintf(f->name, sizeof f->name, "%s", nn);
        }
    snprintf(fzm_inos[i].name, sizeof fzm_inos[i].name, "%s", b);
    return fzm_unlock(0);
}

FZM_FN int fzm_fsync(int fd) { return fzm_is_fd(fd) ? 0 : fsync(fd); }
FZM_FN int fzm_fdatasync(int fd) { return fzm_is_fd(fd) ? 0 : fdatasync(fd); }

FZM_FN int fzm_ftruncate(int fd, off_t len) {
    fzm_lock();
    fzm_fd *d = fzm_fd_of(fd);
    if (!d) { fzm_unlock(0); return ftruncate(fd, len); }
    fzm_ino *f = &fzm_inos[d->ino];
    if (len < 0 || f->isdir) return fzm_unlock(fzm_err(EINVAL));
    return fzm_unlock(fzm_resize(f, (size_t)len));
}

/* fallocate mode 0 and FALLOC_FL_WRITE_ZEROES: both leave zeros. */
FZM_FN int fzm_fallocate_l(fzm_fd *d, int mode, off_t off, off_t len) {
    fzm_ino *f = &fzm_inos[d->ino];
    if (mode & ~0x80) return fzm_err(EOPNOTSUPP);   /* 0x80: FALLOC_FL_WRITE_ZEROES */
    if (off < 0 || len <= 0 || f->isdir) return fzm_err(EINVAL);
    if ((mode & 0x80) && (size_t)off < f->size)
        memset(f->data + off, 0, (size_t)(off + len) <= f->size ? (size_t)len : f->size - (size_t)off);
    return (size_t)(off + len) > f->size ? fzm_resize(f, (size_t)(off + len)) : 0;
}
FZM_FN int fzm_fallocate(int fd, int mode, off_t off, off_t len) {
    fzm_lock();
    fzm_fd *d = fzm_fd_of(fd);
    if (!d) { fzm_unlock(0); return fallocate(fd, mode, off, len); }
    return fzm_unlock(fzm_fallocate_l(d, mode, off, len));
}

FZM_FN int fzm_flock(int fd, int op) {
    fzm_lock();
    fzm_fd *d = fzm_fd_of(fd);
    if (!d) { fzm_unlock(0); return flock(fd, op); }
    fzm_ino *f = &fzm_inos[d->ino];
    if (op & LOCK_UN) { if (f->flock_by == fd) f->flock_by = -1; return fzm_unlock(0); }
    if (f->flock_by >= 0 && f->flock_by != fd) return fzm_unlock(fzm_err(EWOULDBLOCK));
    f->flock_by = fd;
    return fzm_unlock(0);
}

/* Whole-file OFD write locks (what the headers take), and F_GETLK on them. */
FZM_FN int fzm_fcntl(int fd, int cmd, ...) {
    va_list ap; va_start(ap, cmd);
    void *arg = va_arg(ap, void *);
    va_end(ap);
    fzm_lock();
    fzm_fd *d = fzm_fd_of(fd);
    if (!d) { fzm_unlock(0); return fcntl(fd, cmd, arg); }
    fzm_ino *f = &fzm_inos[d->ino];
    struct flock *lk = (struct flock *)arg;
    switch (cmd) {
    case F_OFD_SETLK: case F_OFD_SETLKW: case F_SETLK: case F_SETLKW:
        if (lk->l_type == F_UNLCK) { if (f->lock_by == fd) f->lock_by = -1; return fzm_unlock(0); }
        if (f->lock_by >= 0 && f->lock_by != fd) return fzm_unlock(fzm_err(EAGAIN));
        f->lock_by = fd;
        return fzm_unlock(0);
    case F_OFD_GETLK: case F_GETLK:
        if (f->lock_by >= 0 && f->lock_by != fd) { lk->l_type = F_WRLCK; lk->l_pid = cmd == F_GETLK ? getpid() : -1; }
        else lk->l_type = F_UNLCK;
        return fzm_unlock(0);
    case F_GETFD: case F_GETFL: case F_SETFD: case F_SETFL: return fzm_unlock(0);
    default: return fzm_unlock(fzm_err(EINVAL));
    }
}

FZM_FN void *fzm_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off) {
    fzm_lock();
    fzm_fd *d = fzm_fd_of(fd);
    if (!d) { fzm_unlock(0); return mmap(addr, len, prot, flags, fd, off); }
    fzm_ino *f = &fzm_inos[d->ino];
    if (!(flags & MAP_SHARED) || off < 0 || len == 0 || f->isdir || (f->nmap && (size_t)off + len > f->cap) ||
        fzm_reserve(f, (size_t)off + len) != 0) {
        fzm_unlock(0);
        errno = EINVAL;
        return MAP_FAILED;
    }
    if ((size_t)off + len > f->size) {   /* past the end: zeros until the file grows there */
        size_t from = (size_t)off > f->size ? (size_t)off : f->size;
        memset(f->data + from, 0, (size_t)off + len - from);
    }
    f->nmap++;
    fzm_unlock(0);
    return f->data + off;
}

/* The inode whose bytes hold addr (a mapping of this layer), or -1. */
FZM_FN int fzm_mapped(const void *addr) {
    for (int i = 1; i < FZM_NINO; i++) {
        fzm_ino *f = &fzm_inos[i];
        if (f->used && f->nmap && (const uint8_t *)addr >= f->data && (const uint8_t *)addr < f->data + f->cap) return i;
    }
    return -1;
}

FZM_FN int fzm_munmap(void *addr, size_t len) {
    fzm_lock();
    int i = fzm_mapped(addr);
    if (i < 0) { fzm_unlock(0); return munmap(addr, len); }
    fzm_inos[i].nmap--;
    fzm_maybe_free(i);
    return fzm_unlock(0);
}
FZM_FN int fzm_msync(void *addr, size_t len, int flags) {
    fzm_lock();
    int i = fzm_mapped(addr);
    fzm_unlock(0);
    return i < 0 ? msync(addr, len, flags) : 0;
}
FZM_FN int fzm_madvise(void *addr, size_t len, int advice) {
    fzm_lock();
    int i = fzm_mapped(addr);
    fzm_unlock(0);
    return i < 0 ? madvise(addr, len, advice) : 0;
}

FZM_FN int fzm_fstatfs(int fd, struct statfs *sf) {
    if (!fzm_is_fd(fd)) return fstatfs(fd, sf);
    memset(sf, 0, sizeof *sf);
    sf->f_type = FZM_TMPFS_MAGIC;
    sf->f_bsize = 4096;
    sf->f_blocks = sf->f_bfree = sf->f_bavail = 1u << 20;
    sf->f_namelen = NAME_MAX;
    return 0;
}

FZM_FN DIR *fzm_opendir(const char *path) {
    char rel[FZM_NAME];
    int m = fzm_path(path, rel);
    if (!m) return opendir(path);
    fzm_lock();
    int i = m > 0 ? fzm_lookup(rel) : -1;
    if (i < 0 || !fzm_inos[i].isdir) { fzm_unlock(0); errno = i < 0 ? ENOENT : ENOTDIR; return NULL; }
    for (int k = 0; k < FZM_NDIR; k++)
        if (!fzm_dirs[k].used) {
            fzm_dirs[k].used = 1; fzm_dirs[k].ino = i; fzm_dirs[k].next = 1;
            fzm_unlock(0);
            return (DIR *)(void *)&fzm_dirs[k];
        }
    fzm_unlock(0);
    errno = EMFILE;
    return NULL;
}

FZM_FN fzm_dir *fzm_dir_of(DIR *d) {
    for (int k = 0; k < FZM_NDIR; k++)
        if ((void *)d == (void *)&fzm_dirs[k] && fzm_dirs[k].used) return &fzm_dirs[k];
    return NULL;
}

/* The entries one level below (no "." and ".."), in inode order. */
FZM_FN struct dirent *fzm_readdir(DIR *dd) {
    fzm_lock();
    fzm_dir *d = fzm_dir_of(dd);
    if (!d) { fzm_unlock(0); return readdir(dd); }
    const char *dn = fzm_inos[d->ino].name;
    size_t n = strlen(dn);
    for (; d->next < FZM_NINO; d->next++) {
        fzm_ino *f = &fzm_inos[d->next];
        if (!f->used || !f->linked) continue;
        const char *leaf = f->name;
        if (n) { if (strncmp(f->name, dn, n) != 0 || f->name[n] != '/') continue; leaf = f->name + n + 1; }
        if (strchr(leaf, '/') || strlen(leaf) >= sizeof d->ent.d_name) continue;
        memset(&d->ent, 0, sizeof d->ent);
        d->ent.d_ino = (ino_t)f->ino;
        d->ent.d_type = f->isdir ? DT_DIR : DT_REG;
        snprintf(d->ent.d_name, sizeof d->ent.d_name, "%s", leaf);
        d->next++;
        fzm_unlock(0);
        return &d->ent;
    }
    fzm_unlock(0);
    return NULL;
}

FZM_FN int fzm_closedir(DIR *dd) {
    fzm_lock();
    fzm_dir *d = fzm_dir_of(dd);
    if (!d) { fzm_unlock(0); return closedir(dd); }
    d->used = 0;
    return fzm_unlock(0);
}

/* fallocate on this layer's fds; every other system call unchanged. */
FZM_FN long fzm_syscall(long nr, ...) {
    /* read only the arguments the caller passed: reading past them reads
     * the caller's stack (ASan: stack-buffer-underflow, seen with fallocate's 4) */
    int nargs = 6;
    if (nr == SYS_fallocate) nargs = 4;
    else if (nr == SYS_sched_setaffinity) nargs = 3;
    va_list ap; va_start(ap, nr);
    long a[6] = {0, 0, 0, 0, 0, 0};
    for (int i = 0; i < nargs; i++) a[i] = va_arg(ap, long);
    va_end(ap);
    if (nr == SYS_fallocate && fzm_is_fd((int)a[0])) return fzm_fallocate((int)a[0], (int)a[1], (off_t)a[2], (off_t)a[3]);
    return syscall(nr, a[0], a[1], a[2], a[3], a[4], a[5]);
}

/* Drops every file and directory (between inputs); the root stays. */
FZM_FN void fzm_reset(void) {
    fzm_lock();
    for (int i = 1; i < FZM_NINO; i++)
        if (fzm_inos[i].used) { fzm_inos[i].linked = 0; fzm_maybe_free(i); }
    fzm_unlock(0);
}

/* From here on the calls go through this layer. Object-like names where a
 * header also uses the name as a struct member (plg_file_ops and pp_io:
 * open, close, pwrite, fsync, fdatasync, rename, unlink, msync, ...): the
 * member is renamed with it, consistently; function-like ones where a struct
 * shares the name (stat, fstatfs, flock). */
#define open fzm_open
#define openat fzm_openat
#define close fzm_close
#define pread fzm_pread
#define pwrite fzm_pwrite
#define read fzm_read
#define write fzm_write
#define fstat(fd, st) fzm_fstat(fd, st)
#define stat(path, st) fzm_stat(path, st)
#define lstat(path, st) fzm_lstat(path, st)
#define access fzm_access
#define unlink fzm_unlink
#define rmdir fzm_rmdir
#define mkdir fzm_mkdir
#define rename fzm_rename
#define fsync fzm_fsync
#define fdatasync fzm_fdatasync
#define ftruncate fzm_ftruncate
#define fallocate fzm_fallocate
#define flock(fd, op) fzm_flock(fd, op)
#define fcntl fzm_fcntl
#define mmap fzm_mmap
#define munmap fzm_munmap
#define msync fzm_msync
#define madvise fzm_madvise
#define fstatfs(fd, sf) fzm_fstatfs(fd, sf)
#define opendir fzm_opendir
#define readdir fzm_readdir
#define closedir fzm_closedir
#define syscall fzm_syscall
#endif
