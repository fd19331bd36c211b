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
 * What it models (one flat directory, one thread at a time, as the fuzz
 * targets use it): files as byte arrays with POSIX semantics for what the
 * headers rely on: O_CREAT/O_EXCL/O_TRUNC, reads past the end are short,
 * writes past the end extend with zeros, an unlinked file lives on while an
 * fd or a mapping holds it, rename replaces, distinct inode numbers; fsync,
 * fdatasync and directory fsync succeed (memory is the medium); fallocate
 * (including FALLOC_FL_WRITE_ZEROES) extends with zeros; flock and OFD
 * record locks conflict between open file descriptions as the kernel's do;
 * mmap of a file maps its bytes (MAP_SHARED: the writer and a reader in this
 * process see the same page); fstatfs says tmpfs (RAM, which it is).
 * A file mapped with mmap must not grow while mapped (abort()).
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
#include <unistd.h>

#ifndef FZM_ROOT
#define FZM_ROOT "/fuzz-memfs"
#endif
#define FZM_FD0 (1 << 20)        /* fds of this layer: far above any real one */
#define FZM_NFD 64
#define FZM_NINO 64
#define FZM_NDIR 8
#define FZM_TMPFS_MAGIC 0x01021994

typedef struct fzm_ino {
    int used, linked, isdir, nopen, nmap;
    char name[NAME_MAX + 1];
    uint8_t *data; size_t size, cap;
    uint64_t ino;
    int flock_by, lock_by;       /* the open file description (fd) holding it, or -1 */
} fzm_ino;
typedef struct fzm_fd { int used, ino; size_t pos; } fzm_fd;
typedef struct fzm_dir { int used; int next; struct dirent ent; } fzm_dir;

static fzm_ino fzm_inos[FZM_NINO];
static fzm_fd fzm_fds[FZM_NFD];
static fzm_dir fzm_dirs[FZM_NDIR];
static uint64_t fzm_next_ino = 2;
static int fzm_root_ino = -1;

static int fzm_err(int e) { errno = e; return -1; }

/* The root's inode (a directory, made once). */
static int fzm_root(void) {
    if (fzm_root_ino < 0) {
        fzm_root_ino = 0;
        fzm_inos[0].used = fzm_inos[0].linked = fzm_inos[0].isdir = 1;
        fzm_inos[0].ino = 1; fzm_inos[0].flock_by = fzm_inos[0].lock_by = -1;
    }
    return fzm_root_ino;
}

/* 1 when path is the root itself (*leaf = NULL) or a name in it (*leaf = the
 * name); 0 for any path outside this layer. */
static int fzm_path(const char *path, const char **leaf) {
    size_t n = strlen(FZM_ROOT);
    if (!path || strncmp(path, FZM_ROOT, n) != 0) return 0;
    const char *p = path + n;
    while (*p == '/') p++;
    if (path[n] != 0 && path[n] != '/') return 0;
    *leaf = *p ? p : NULL;
    return 1;
}

static int fzm_lookup(const char *leaf) {
    for (int i = 0; i < FZM_NINO; i++)
        if (fzm_inos[i].used && fzm_inos[i].linked && !fzm_inos[i].isdir && !strcmp(fzm_inos[i].name, leaf)) return i;
    return -1;
}

static void fzm_maybe_free(int i) {
    fzm_ino *f = &fzm_inos[i];
    if (f->isdir || f->linked || f->nopen || f->nmap) return;
    free(f->data);
    memset(f, 0, sizeof *f);
}

static int fzm_create(const char *leaf) {
    if (strlen(leaf) > NAME_MAX || strchr(leaf, '/')) return fzm_err(strchr(leaf, '/') ? ENOENT : ENAMETOOLONG);
    for (int i = 0; i < FZM_NINO; i++)
        if (!fzm_inos[i].used) {
            fzm_ino *f = &fzm_inos[i];
            memset(f, 0, sizeof *f);
            f->used = f->linked = 1;
            snprintf(f->name, sizeof f->name, "%s", leaf);
            f->ino = fzm_next_ino++;
            f->flock_by = f->lock_by = -1;
            return i;
        }
    return fzm_err(ENOSPC);
}

static int fzm_grow(fzm_ino *f, size_t size) {
    if (size <= f->size) return 0;
    if (size > f->cap) {
        if (f->nmap) abort();        /* a mapped file never grows here */
        size_t cap = f->cap ? f->cap : 4096;
        while (cap < size) cap *= 2;
        uint8_t *p = (uint8_t *)realloc(f->data, cap);
        if (!p) return fzm_err(ENOSPC);
        f->data = p; f->cap = cap;
    }
    memset(f->data + f->size, 0, size - f->size);
    f->size = size;
    return 0;
}

static fzm_fd *fzm_fd_of(int fd) {
    if (fd < FZM_FD0 || fd >= FZM_FD0 + FZM_NFD || !fzm_fds[fd - FZM_FD0].used) return NULL;
    return &fzm_fds[fd - FZM_FD0];
}

static int fzm_open_leaf(const char *leaf, int flags) {
    int i;
    if (!leaf) i = fzm_root();
    else {
        i = fzm_lookup(leaf);
        if (i >= 0 && (flags & O_CREAT) && (flags & O_EXCL)) return fzm_err(EEXIST);
        if (i < 0 && !(flags & O_CREAT)) return fzm_err(ENOENT);
        if (i < 0 && (i = fzm_create(leaf)) < 0) return -1;
        if ((flags & O_DIRECTORY)) return fzm_err(ENOTDIR);
        if ((flags & O_TRUNC) && (flags & O_ACCMODE) != O_RDONLY) {
            if (fzm_inos[i].nmap) abort();
            fzm_inos[i].size = 0;
        }
    }
    for (int k = 0; k < FZM_NFD; k++)
        if (!fzm_fds[k].used) {
            fzm_fds[k].used = 1; fzm_fds[k].ino = i; fzm_fds[k].pos = 0;
            fzm_inos[i].nopen++;
            return FZM_FD0 + k;
        }
    return fzm_err(EMFILE);
}

static int fzm_open(const char *path, int flags, ...) {
    const char *leaf;
    unsigned mode = 0;
    if (flags & (O_CREAT | O_TMPFILE)) { va_list ap; va_start(ap, flags); mode = va_arg(ap, unsigned); va_end(ap); }
    if (!fzm_path(path, &leaf)) return open(path, flags, mode);
    return fzm_open_leaf(leaf, flags);
}

static int fzm_openat(int dirfd, const char *path, int flags, ...) {
    unsigned mode = 0;
    if (flags & (O_CREAT | O_TMPFILE)) { va_list ap; va_start(ap, flags); mode = va_arg(ap, unsigned); va_end(ap); }
    fzm_fd *d = fzm_fd_of(dirfd);
    if (!d) return openat(dirfd, path, flags, mode);
    if (!fzm_inos[d->ino].isdir) return fzm_err(ENOTDIR);
    if (path[0] == '/') return fzm_open(path, flags, mode);
    return fzm_open_leaf(path, flags);
}

static void fzm_unlock_all(int fd) {
    for (int i = 0; i < FZM_NINO; i++) {
        if (fzm_inos[i].flock_by == fd) fzm_inos[i].flock_by = -1;
        if (fzm_inos[i].lock_by == fd) fzm_inos[i].lock_by = -1;
    }
}

static int fzm_close(int fd) {
    fzm_fd *d = fzm_fd_of(fd);
    if (!d) return close(fd);
    int i = d->ino;
    fzm_unlock_all(fd);
    d->used = 0;
    fzm_inos[i].nopen--;
    fzm_maybe_free(i);
    return 0;
}

static ssize_t fzm_pread(int fd, void *buf, size_t len, off_t off) {
    fzm_fd *d = fzm_fd_of(fd);
    if (!d) return pread(fd, buf, len, off);
    fzm_ino *f = &fzm_inos[d->ino];
    if (f->isdir) return fzm_err(EISDIR);
    if (off < 0) return fzm_err(EINVAL);
    if ((size_t)off >= f->size) return 0;
    size_t n = f->size - (size_t)off < len ? f->size - (size_t)off : len;
    memcpy(buf, f->data + off, n);
    return (ssize_t)n;
}

static ssize_t fzm_pwrite(int fd, const void *buf, size_t len, off_t off) {
    fzm_fd *d = fzm_fd_of(fd);
    if (!d) return pwrite(fd, buf, len, off);
    fzm_ino *f = &fzm_inos[d->ino];
    if (f->isdir) return fzm_err(EISDIR);
    if (off < 0) return fzm_err(EINVAL);
    if (fzm_grow(f, (size_t)off + len) != 0) return -1;
    memcpy(f->data + off, buf, len);
    return (ssize_t)len;
}

static ssize_t fzm_read(int fd, void *buf, size_t len) {
    fzm_fd *d = fzm_fd_of(fd);
    if (!d) return read(fd, buf, len);
    ssize_t n = fzm_pread(fd, buf, len, (off_t)d->pos);
    if (n > 0) d->pos += (size_t)n;
    return n;
}

static ssize_t fzm_write(int fd, const void *buf, size_t len) {
    fzm_fd *d = fzm_fd_of(fd);
    if (!d) return write(fd, buf, len);
    ssize_t n = fzm_pwrite(fd, buf, len, (off_t)d->pos);
    if (n > 0) d->pos += (size_t)n;
    return n;
}

static void fzm_fill_stat(const fzm_ino *f, struct stat *st) {
    memset(st, 0, sizeof *st);
    st->st_ino = (ino_t)f->ino;
    st->st_dev = makedev(0, 99);
    st->st_nlink = f->linked ? 1 : 0;
    st->st_mode = f->isdir ? (S_IFDIR | 0755) : (S_IFREG | 0644);
    st->st_size = (off_t)f->size;
    st->st_blksize = 4096;
    st->st_blocks = (blkcnt_t)((f->size + 511) / 512);
}

static int fzm_fstat(int fd, struct stat *st) {
    fzm_fd *d = fzm_fd_of(fd);
    if (!d) return fstat(fd, st);
    fzm_fill_stat(&fzm_inos[d->ino], st);
    return 0;
}

static int fzm_stat(const char *path, struct stat *st) {
    const char *leaf;
    if (!fzm_path(path, &leaf)) return stat(path, st);
    int i = leaf ? fzm_lookup(leaf) : fzm_root();
    if (i < 0) return fzm_err(ENOENT);
    fzm_fill_stat(&fzm_inos[i], st);
    return 0;
}

static int fzm_access(const char *path, int mode) {
    const char *leaf;
    if (!fzm_path(path, &leaf)) return access(path, mode);
    return (leaf ? fzm_lookup(leaf) : fzm_root()) >= 0 ? 0 : fzm_err(ENOENT);
}

static int fzm_unlink(const char *path) {
    const char *leaf;
    if (!fzm_path(path, &leaf)) return unlink(path);
    if (!leaf) return fzm_err(EISDIR);
    int i = fzm_lookup(leaf);
    if (i < 0) return fzm_err(ENOENT);
    fzm_inos[i].linked = 0;
    fzm_maybe_free(i);
    return 0;
}

static int fzm_rename(const char *from, const char *to) {
    const char *a, *b;
    int ma = fzm_path(from, &a), mb = fzm_path(to, &b);
    if (!ma && !mb) return rename(from, to);
    if (ma != mb) return fzm_err(EXDEV);
    if (!a || !b) return fzm_err(EBUSY);
    int i = fzm_lookup(a);
    if (i < 0) return fzm_err(ENOENT);
    if (strlen(b) > NAME_MAX || strchr(b, '/')) return fzm_err(ENOENT);
    int j = fzm_lookup(b);
    if (j == i) return 0;
    if (j >= 0) { fzm_inos[j].linked = 0; fzm_maybe_free(j); }
    snprintf(fzm_inos[i].name, sizeof fzm_inos[i].name, "%s", b);
    return 0;
}

static int fzm_fsync(int fd) { return fzm_fd_of(fd) ? 0 : fsync(fd); }
static int fzm_fdatasync(int fd) { return fzm_fd_of(fd) ? 0 : fdatasync(fd); }

static int fzm_ftruncate(int fd, off_t len) {
    fzm_fd *d = fzm_fd_of(fd);
    if (!d) return ftruncate(fd, len);
    fzm_ino *f = &fzm_inos[d->ino];
    if (len < 0) return fzm_err(EINVAL);
    if ((size_t)len <= f->size) { if (f->nmap && (size_t)len < f->size) abort(); f->size = (size_t)len; return 0; }
    return fzm_grow(f, (size_t)len);
}

static int fzm_flock(int fd, int op) {
    fzm_fd *d = fzm_fd_of(fd);
    if (!d) return flock(fd, op);
    fzm_ino *f = &fzm_inos[d->ino];
    if (op & LOCK_UN) { if (f->flock_by == fd) f->flock_by = -1; return 0; }
    if (f->flock_by >= 0 && f->flock_by != fd) return fzm_err(EWOULDBLOCK);
    f->flock_by = fd;
    return 0;
}

/* Whole-file OFD write locks (what the headers take), and F_GETLK on them. */
static int fzm_fcntl(int fd, int cmd, ...) {
    va_list ap; va_start(ap, cmd);
    void *arg = va_arg(ap, void *);
    va_end(ap);
    fzm_fd *d = fzm_fd_of(fd);
    if (!d) return fcntl(fd, cmd, arg);
    fzm_ino *f = &fzm_inos[d->ino];
    struct flock *lk = (struct flock *)arg;
    switch (cmd) {
    case F_OFD_SETLK: case F_OFD_SETLKW: case F_SETLK: case F_SETLKW:
        if (lk->l_type == F_UNLCK) { if (f->lock_by == fd) f->lock_by = -1; return 0; }
        if (f->lock_by >= 0 && f->lock_by != fd) return fzm_err(EAGAIN);
        f->lock_by = fd;
        return 0;
    case F_OFD_GETLK: case F_GETLK:
        if (f->lock_by >= 0 && f->lock_by != fd) { lk->l_type = F_WRLCK; lk->l_pid = cmd == F_GETLK ? getpid() : -1; }
        else lk->l_type = F_UNLCK;
        return 0;
    case F_GETFD: case F_GETFL: return 0;
    case F_SETFD: case F_SETFL: return 0;
    default: return fzm_err(EINVAL);
    }
}

static void *fzm_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off) {
    fzm_fd *d = fzm_fd_of(fd);
    if (!d) return mmap(addr, len, prot, flags, fd, off);
    fzm_ino *f = &fzm_inos[d->ino];
    if (!(flags & MAP_SHARED) || off < 0 || (size_t)off + len > f->size || f->isdir) { errno = EINVAL; return MAP_FAILED; }
    f->nmap++;
    return f->data + off;
}

static int fzm_munmap(void *addr, size_t len) {
    for (int i = 0; i < FZM_NINO; i++) {
        fzm_ino *f = &fzm_inos[i];
        if (f->used && f->nmap && (uint8_t *)addr >= f->data && (uint8_t *)addr < f->data + f->size) {
            f->nmap--;
            fzm_maybe_free(i);
            return 0;
        }
    }
    return munmap(addr, len);
}

static int fzm_fstatfs(int fd, struct statfs *sf) {
    if (!fzm_fd_of(fd)) return fstatfs(fd, sf);
    memset(sf, 0, sizeof *sf);
    sf->f_type = FZM_TMPFS_MAGIC;
    sf->f_bsize = 4096;
    sf->f_blocks = sf->f_bfree = sf->f_bavail = 1u << 20;
    sf->f_namelen = NAME_MAX;
    return 0;
}

static int fzm_mkdir(const char *path, mode_t mode) {
    const char *leaf;
    if (!fzm_path(path, &leaf)) return mkdir(path, mode);
    if (!leaf) { fzm_root(); return fzm_err(EEXIST); }
    return fzm_err(EPERM);           /* one flat directory */
}

static DIR *fzm_opendir(const char *path) {
    const char *leaf;
    if (!fzm_path(path, &leaf)) return opendir(path);
    if (leaf) { errno = fzm_lookup(leaf) >= 0 ? ENOTDIR : ENOENT; return NULL; }
    fzm_root();
    for (int k = 0; k < FZM_NDIR; k++)
        if (!fzm_dirs[k].used) { fzm_dirs[k].used = 1; fzm_dirs[k].next = 0; return (DIR *)(void *)&fzm_dirs[k]; }
    errno = EMFILE;
    return NULL;
}

static fzm_dir *fzm_dir_of(DIR *d) {
    for (int k = 0; k < FZM_NDIR; k++)
        if ((void *)d == (void *)&fzm_dirs[k] && fzm_dirs[k].used) return &fzm_dirs[k];
    return NULL;
}

static struct dirent *fzm_readdir(DIR *dd) {
    fzm_dir *d = fzm_dir_of(dd);
    if (!d) return readdir(dd);
    for (; d->next < FZM_NINO; d->next++) {
        fzm_ino *f = &fzm_inos[d->next];
        if (!f->used || !f->linked || f->isdir) continue;
        memset(&d->ent, 0, sizeof d->ent);
        d->ent.d_ino = (ino_t)f->ino;
        d->ent.d_type = DT_REG;
        snprintf(d->ent.d_name, sizeof d->ent.d_name, "%s", f->name);
        d->next++;
        return &d->ent;
    }
    return NULL;
}

static int fzm_closedir(DIR *dd) {
    fzm_dir *d = fzm_dir_of(dd);
    if (!d) return closedir(dd);
    d->used = 0;
    return 0;
}

/* fallocate on this layer's fds (mode 0 and FALLOC_FL_WRITE_ZEROES: both
 * leave zeros); every other system call unchanged. */
static long fzm_syscall(long nr, ...) {
    va_list ap; va_start(ap, nr);
    long a[6];
    for (int i = 0; i < 6; i++) a[i] = va_arg(ap, long);
    va_end(ap);
    if (nr == SYS_fallocate && fzm_fd_of((int)a[0])) {
        fzm_ino *f = &fzm_inos[fzm_fd_of((int)a[0])->ino];
        if (a[1] & ~(long)0x80) return fzm_err(EOPNOTSUPP);   /* 0x80: FALLOC_FL_WRITE_ZEROES */
        if (a[2] < 0 || a[3] <= 0) return fzm_err(EINVAL);
        return fzm_grow(f, (size_t)(a[2] + a[3]));
    }
    return syscall(nr, a[0], a[1], a[2], a[3], a[4], a[5]);
}

/* Every file of the directory (between inputs); the root stays. */
static void fzm_reset(void) {
    for (int i = 0; i < FZM_NINO; i++)
        if (fzm_inos[i].used && !fzm_inos[i].isdir) { fzm_inos[i].linked = 0; fzm_maybe_free(i); }
}

/* From here on the calls go through this layer. Object-like names where a
 * header also uses the name as a struct member (plg_file_ops: open, close,
 * pwrite, fsync, rename, unlink): the member is renamed with it, consistently;
 * function-like ones where a struct shares the name (stat, fstatfs, flock). */
#define open fzm_open
#define openat fzm_openat
#define close fzm_close
#define pread fzm_pread
#define pwrite fzm_pwrite
#define read fzm_read
#define write fzm_write
#define fstat(fd, st) fzm_fstat(fd, st)
#define stat(path, st) fzm_stat(path, st)
#define access fzm_access
#define unlink fzm_unlink
#define rename fzm_rename
#define fsync fzm_fsync
#define fdatasync fzm_fdatasync
#define ftruncate fzm_ftruncate
#define flock(fd, op) fzm_flock(fd, op)
#define fcntl fzm_fcntl
#define mmap fzm_mmap
#define munmap fzm_munmap
#define fstatfs(fd, sf) fzm_fstatfs(fd, sf)
#define mkdir fzm_mkdir
#define opendir fzm_opendir
#define readdir fzm_readdir
#define closedir fzm_closedir
#define syscall fzm_syscall
#endif
