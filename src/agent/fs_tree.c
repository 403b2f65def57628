/* SPDX-License-Identifier: MIT */
/*
 * fs_tree.c — whole trees (fs.h): mkdir -p (remembering what it made, to undo it), rm -r
 * (never following symlinks), the checks that a later rm -r or mkdir -p would be allowed, and
 * the copy that a Move across filesystems makes (directories, symlinks and special files kept
 * as such, owners kept when acting as root, magic links refused).
 */
#include "agent/fs.h"
#include "lib/fdutil.h"
#include "lib/macro.h"

#include <fcntl.h>
#include <sys/stat.h>

/* ---- creating ---- */

int fs_tree_mkdir_at(int dirfd, const char *name)
{
        cleanup_close int fd = -1;
        struct stat st;

        if (mkdirat(dirfd, name, 0755) < 0)
                return -errno;
        /* 0755 regardless of the umask, keeping a setgid bit inherited from the parent. */
        fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd >= 0 && fstat(fd, &st) >= 0 && (st.st_mode & 0777) != 0755)
                (void)fchmod(fd, (st.st_mode & 07000) | 0755);
        /* the E2B face creates as root for the acting user (chown keeps no setgid bit on a
         * directory, so the mode stays) */
        if (fd >= 0 && agent_fs_owner && fchown(fd, agent_fs_owner->uid, agent_fs_owner->gid) < 0)
                return -errno;
        return 0;
}

void fs_created_done(struct fs_created *m)
{
        free(m->top);
        m->top = NULL;
}

/* The components of the absolute path p from the top, each with the path up to it. */
struct comp_walk {
        const char *s; /* borrowed: what is left of p */
        char *prefix;  /* owned: p up to and including comp */
        size_t pl;
        char *comp; /* owned: the current component */
};

static struct comp_walk comp_walk_start(const char *p)
{
        return (struct comp_walk){ .s = p, .prefix = xzalloc(strlen(p) + 1) };
}

static void comp_walk_done(struct comp_walk *w)
{
        free(w->prefix);
        free(w->comp);
}
#define cleanup_comp_walk __attribute__((cleanup(comp_walk_done)))

static bool comp_walk_next(struct comp_walk *w)
{
        w->s += strspn(w->s, "/");
        size_t l = strcspn(w->s, "/");
        if (l == 0)
                return false;
        free(w->comp);
        w->comp = xstrndup(w->s, l);
        w->prefix[w->pl++] = '/';
        memcpy(w->prefix + w->pl, w->s, l);
        w->pl += l;
        w->prefix[w->pl] = '\0';
        w->s += l;
        return true;
}

int fs_tree_mkdir_parents(const char *p, struct fs_created *made, struct cove_err **err)
{
        cleanup_comp_walk struct comp_walk w = comp_walk_start(p);
        cleanup_close int cur = -1;

        cur = fs_openat(AT_FDCWD, "/", O_PATH | O_DIRECTORY, 0);
        if (cur < 0)
                return fs_err(err, cur, "/");
        while (comp_walk_next(&w)) {
                int fd = fs_openat(cur, w.comp, O_PATH | O_DIRECTORY, 0);
                if (fd == -ENOENT) {
                        fd = fs_tree_mkdir_at(cur, w.comp);
                        if (fd >= 0 && !made->top)
                                made->top = xstrdup(w.prefix);
                        if (fd >= 0 || fd == -EEXIST)
                                fd = fs_openat(cur, w.comp, O_PATH | O_DIRECTORY, 0);
                }
                if (fd < 0) {
                        int r = fs_err(err, fd, w.prefix);
                        fs_tree_unmake(made, w.prefix); /* what this call made, if anything */
                        return r;
                }
                (void)close(cur);
                cur = fd;
        }
        return TAKE_FD(cur);
}

void fs_tree_unmake(struct fs_created *made, const char *leaf)
{
        cleanup_free char *cur = NULL;

        if (!made->top || !fs_path_is_under(leaf, made->top))
                return;
        cur = xstrdup(leaf);
        for (;;) {
                cleanup_at struct fs_at at = { .dirfd = -1 };
                int r = fs_at_open(cur, &at, NULL);
                if (r >= 0 && unlinkat(at.dirfd, at.name, AT_REMOVEDIR) < 0)
                        r = -errno;
                /* Not empty (someone else's entry): leave it and what is above. */
                if (r < 0 && r != -ENOENT)
                        break;
                if (streq(cur, made->top))
                        break;
                char *parent = fs_path_parent(cur);
                free(cur);
                cur = parent;
        }
        fs_created_done(made);
}

int fs_tree_check_creatable(const char *p, struct cove_err **err)
{
        cleanup_comp_walk struct comp_walk w = comp_walk_start(p);
        cleanup_close int cur = -1;

        cur = fs_openat(AT_FDCWD, "/", O_PATH | O_DIRECTORY, 0);
        if (cur < 0)
                return fs_err(err, cur, "/");
        while (comp_walk_next(&w)) {
                int fd = fs_openat(cur, w.comp, O_PATH | O_DIRECTORY, 0);
                if (fd == -ENOENT) {
                        /* The first missing component is created in the last existing one. */
                        cleanup_free char *parent = fs_path_parent(w.prefix);
                        return fs_check_writable_dir(cur, parent, err);
                }
                if (fd < 0)
                        return fs_err(err, fd, w.prefix);
                (void)close(cur);
                cur = fd;
        }
        return 0;
}

/* ---- reading directories ---- */

int fs_dir_open(int dfd, const char *path, DIR **ret, struct cove_err **err)
{
        DIR *d = fdopendir(dfd);
        if (!d) {
                int e = errno;
                (void)close(dfd);
                return fs_err(err, e, path);
        }
        *ret = d;
        return 0;
}

int fs_dir_next(DIR *d, const char *path, struct dirent **ret, struct cove_err **err)
{
        for (;;) {
                errno = 0;
                struct dirent *de = readdir(d);
                if (!de)
                        return errno ? fs_err(err, errno, path) : 0;
                if (streq(de->d_name, ".") || streq(de->d_name, ".."))
                        continue;
                *ret = de;
                return 1;
        }
}

/* ---- removing ---- */

/* fs_dir_open() of a directory `level` below the top of a walk (dfd owned): deeper than
 * FS_TREE_MAX_DEPTH is refused, as every level holds an fd. */
static int open_tree_dir(int dfd, const char *path, unsigned level, DIR **ret,
                         struct cove_err **err)
{
        if (level > FS_TREE_MAX_DEPTH) {
                (void)close(dfd);
                return cove_err_set_status(err, 400, ELOOP, "'%s' is nested too deeply", path);
        }
        return fs_dir_open(dfd, path, ret, err);
}

/* The next entry of a walk in d (the directory path): the entry in *ret, its lstat in *st, its
 * path in *ret_child (caller frees); entries that vanish meanwhile are skipped. 1, 0 at the
 * end, or an fs_err(). */
static int next_child(DIR *d, const char *path, struct dirent **ret, struct stat *st,
                      char **ret_child, struct cove_err **err)
{
        for (;;) {
                struct dirent *de;
                int r = fs_dir_next(d, path, &de, err);
                if (r <= 0)
                        return r;
                char *child = fs_path_join(path, de->d_name);
                if (fstatat(dirfd(d), de->d_name, st, AT_SYMLINK_NOFOLLOW) < 0) {
                        int e = errno;
                        r = e == ENOENT ? 0 : fs_err(err, e, child);
                        free(child);
                        if (r < 0)
                                return r;
                        continue;
                }
                *ret = de;
                *ret_child = child;
                return 1;
        }
}

/* Removes everything inside the directory dfd (owned), not following symlinks. */
static int rm_contents(int dfd, const char *path, unsigned level, struct cove_err **err)
{
        cleanup_closedir DIR *d = NULL;
        struct dirent *de;
        int r;

        r = open_tree_dir(dfd, path, level, &d, err);
        if (r < 0)
                return r;
        for (;;) {
                cleanup_free char *child = NULL;
                struct stat st;
                r = next_child(d, path, &de, &st, &child, err);
                if (r <= 0)
                        return r;
                if (S_ISDIR(st.st_mode)) {
                        int sub = openat(dirfd(d), de->d_name,
                                         O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC |
                                                 O_NONBLOCK);
                        if (sub < 0)
                                return fs_err(err, errno, child);
                        r = rm_contents(sub, child, level + 1, err);
                        if (r < 0)
                                return r;
                        if (unlinkat(dirfd(d), de->d_name, AT_REMOVEDIR) < 0 && errno != ENOENT)
                                return fs_err(err, errno, child);
                } else if (unlinkat(dirfd(d), de->d_name, 0) < 0 && errno != ENOENT) {
                        return fs_err(err, errno, child);
                }
        }
}

int fs_tree_remove_at(const struct fs_at *at, const struct stat *st, const char *path,
                      struct cove_err **err)
{
        if (!S_ISDIR(st->st_mode)) {
                if (unlinkat(at->dirfd, at->name, 0) < 0)
                        return fs_err(err, errno, path);
                return 0;
        }
        int dfd = openat(at->dirfd, at->name,
                         O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
        if (dfd < 0)
                return fs_err(err, errno, path);
        int r = rm_contents(dfd, path, 0, err);
        if (r < 0)
                return r;
        if (unlinkat(at->dirfd, at->name, AT_REMOVEDIR) < 0)
                return fs_err(err, errno, path);
        return 0;
}

int fs_tree_remove(const char *path, struct cove_err **err)
{
        cleanup_at struct fs_at at = { .dirfd = -1 };
        struct stat st;
        int r;

        r = fs_at_open(path, &at, err);
        if (r < 0)
                return r;
        r = fs_at_lstat(&at, &st);
        if (r < 0)
                return fs_err_lookup(err, r, path);
        return fs_tree_remove_at(&at, &st, path, err);
}

/* The directory dfd (owned) and everything below: each directory writable by the acting user,
 * each entry removable under the sticky rule, no mount point (rmdir would fail with EBUSY). */
static int check_removable_contents(int dfd, const struct stat *dst, uid_t uid, const char *path,
                                    unsigned level, struct cove_err **err)
{
        cleanup_closedir DIR *d = NULL;
        struct dirent *de;
        int r;

        r = open_tree_dir(dfd, path, level, &d, err);
        if (r < 0)
                return r;
        r = fs_check_writable_dir(dirfd(d), path, err);
        if (r < 0)
                return r;
        for (;;) {
                cleanup_free char *child = NULL;
                struct stat st;
                r = next_child(d, path, &de, &st, &child, err);
                if (r <= 0)
                        return r;
                if (uid != 0 && (dst->st_mode & S_ISVTX) && st.st_uid != uid && dst->st_uid != uid)
                        return fs_err(err, EPERM, child);
                if (!S_ISDIR(st.st_mode))
                        continue;
                if (st.st_dev != dst->st_dev)
                        return cove_err_set_status(err, 409, EBUSY, "'%s' is a mount point", child);
                int sub = openat(dirfd(d), de->d_name,
                                 O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
                if (sub < 0)
                        return fs_err(err, errno, child);
                r = check_removable_contents(sub, &st, uid, child, level + 1, err);
                if (r < 0)
                        return r;
        }
}

int fs_tree_check_removable(const struct fs_at *at, const struct stat *st, uid_t uid,
                            const char *path, struct cove_err **err)
{
        int r = fs_check_removable(at, st, uid, path, err);

        if (r < 0 || !S_ISDIR(st->st_mode))
                return r;
        int dfd = openat(at->dirfd, at->name,
                         O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
        if (dfd < 0)
                return fs_err(err, errno, path);
        return check_removable_contents(dfd, st, uid, path, 0, err);
}

/* ---- copying (Move across filesystems) ---- */

int fs_copy_fd(int in, int out)
{
        cleanup_free char *chunk = NULL;
        bool plain = false;

        for (;;) {
                if (!plain) {
                        ssize_t n = copy_file_range(in, NULL, out, NULL, 1U << 30, 0);
                        if (n == 0)
                                return 0;
                        if (n > 0)
                                continue;
                        if (errno == EINTR)
                                continue;
                        if (errno != EXDEV && errno != ENOSYS && errno != EINVAL &&
                            errno != EOPNOTSUPP && errno != EBADF)
                                return -errno;
                        plain = true;
                }
                if (!chunk)
                        chunk = xmalloc(FS_COPY_CHUNK); /* threads have small stacks */
                ssize_t n = TEMP_FAILURE_RETRY(read(in, chunk, FS_COPY_CHUNK));
                if (n < 0)
                        return -errno;
                if (n == 0)
                        return 0;
                int r = write_full(out, chunk, (size_t)n);
                if (r < 0)
                        return r;
        }
}

/* Owner (when root), mode and times of st onto fd. */
static int copy_meta(int fd, const struct stat *st, bool root)
{
        struct timespec ts[2] = { st->st_atim, st->st_mtim };

        if (root && fchown(fd, st->st_uid, st->st_gid) < 0)
                return -errno;
        if (fchmod(fd, st->st_mode & 07777) < 0)
                return -errno;
        if (futimens(fd, ts) < 0)
                return -errno;
        return 0;
}

/* Copies sfd/sname (whose path is spath, for messages) to dfd/dname, which must not exist.
 * Directories recursively, symlinks as links, special files with mknod. */
int fs_tree_copy(int sfd, const char *sname, const char *spath, int dfd, const char *dname,
                 bool root, unsigned level, struct cove_err **err)
{
        struct stat st;
        int r;

        if (level > FS_TREE_MAX_DEPTH)
                return cove_err_set_status(err, 400, ELOOP, "'%s' is nested too deeply", spath);
        if (fstatat(sfd, sname, &st, AT_SYMLINK_NOFOLLOW) < 0)
                return fs_err(err, errno, spath);

        if (S_ISREG(st.st_mode)) {
                cleanup_close int in =
                        openat(sfd, sname, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
                if (in < 0)
                        return fs_err(err, errno, spath);
                cleanup_close int out = openat(
                        dfd, dname, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
                if (out < 0)
                        return fs_err(err, errno, spath);
                r = fs_copy_fd(in, out);
                if (r >= 0)
                        r = copy_meta(out, &st, root);
                if (r < 0)
                        return fs_err(err, r, spath);
                return 0;
        }
        if (S_ISDIR(st.st_mode)) {
                cleanup_closedir DIR *d = NULL;
                struct dirent *de;
                cleanup_close int out = -1;
                int in = openat(sfd, sname, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

                if (in < 0)
                        return fs_err(err, errno, spath);
                r = fs_dir_open(in, spath, &d, err);
                if (r < 0)
                        return r;
                /* Now `in` is owned by d. */
                if (mkdirat(dfd, dname, 0700) < 0)
                        return fs_err(err, errno, spath);
                out = openat(dfd, dname, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                if (out < 0)
                        return fs_err(err, errno, spath);
                for (;;) {
                        r = fs_dir_next(d, spath, &de, err);
                        if (r < 0)
                                return r;
                        if (r == 0)
                                break;
                        cleanup_free char *child = fs_path_join(spath, de->d_name);
                        r = fs_tree_copy(dirfd(d), de->d_name, child, out, de->d_name, root,
                                         level + 1, err);
                        if (r < 0)
                                return r;
                }
                r = copy_meta(out, &st, root);
                if (r < 0)
                        return fs_err(err, r, spath);
                return 0;
        }
        if (S_ISLNK(st.st_mode)) {
                cleanup_free char *target = xmalloc(FS_PATH_MAX);
                r = fs_is_magic_link(sfd, sname, &st);
                if (r != 0)
                        return fs_err(err, r < 0 ? r : -FS_EMAGIC, spath);
                ssize_t n = readlinkat(sfd, sname, target, FS_PATH_MAX - 1);
                if (n < 0)
                        return fs_err(err, errno, spath);
                target[n] = '\0';
                if (symlinkat(target, dfd, dname) < 0)
                        return fs_err(err, errno, spath);
                if (root && fchownat(dfd, dname, st.st_uid, st.st_gid, AT_SYMLINK_NOFOLLOW) < 0)
                        return fs_err(err, errno, spath);
                struct timespec ts[2] = { st.st_atim, st.st_mtim };
                (void)utimensat(dfd, dname, ts, AT_SYMLINK_NOFOLLOW);
                return 0;
        }
        if (mknodat(dfd, dname, st.st_mode, st.st_rdev) < 0)
                return fs_err(err, errno, spath);
        if (root && fchownat(dfd, dname, st.st_uid, st.st_gid, AT_SYMLINK_NOFOLLOW) < 0)
                return fs_err(err, errno, spath);
        return 0;
}
