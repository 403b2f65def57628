/* SPDX-License-Identifier: MIT */
/*
 * fs_sink.c — writes with atomic replacement (runtime.md §3): content goes to a temporary
 * file in the destination's directory, renamed over the destination on commit; an upload is
 * streamed to disk, never held in memory.
 *
 * The destination is resolved once, to a directory fd and a name: a symlink at the destination
 * is followed here, one link at a time, with every hop opened by openat2 without magic links
 * (realpath() would follow them); a dangling link is replaced by the file, as before. The
 * temporary file's name tells watchers what the write is (fs_tmp_name()).
 */
#include "agent/fs.h"
#include "lib/fdutil.h"
#include "lib/macro.h"
#include "lib/rand.h"

#include <fcntl.h>
#include <limits.h>
#include <sys/stat.h>

#define FS_SYMLINK_HOPS 40 /* like the kernel's MAXSYMLINKS */
#define FS_TMP_MARK     ".cove-"
#define FS_TMP_RANDOM   5

/* ---- temporary names ---- */

char *fs_tmp_name(const char *name, bool is_new)
{
        char rnd[FS_TMP_RANDOM + 1];

        random_alnum(rnd, FS_TMP_RANDOM);
        return xasprintf(".%.*s" FS_TMP_MARK "%c%s", FS_TMP_NAME_KEEP, name, is_new ? 'n' : 'r',
                         rnd);
}

bool fs_tmp_parse(const char *tmp, bool *ret_new)
{
        size_t n = strlen(tmp), tail = STRLEN(FS_TMP_MARK) + 1 + FS_TMP_RANDOM;

        if (n < 2 + tail || tmp[0] != '.')
                return false;
        const char *t = tmp + n - tail;
        if (memcmp(t, FS_TMP_MARK, STRLEN(FS_TMP_MARK)) != 0)
                return false;
        t += STRLEN(FS_TMP_MARK);
        if (t[0] != 'n' && t[0] != 'r')
                return false;
        for (size_t i = 1; i <= FS_TMP_RANDOM; i++)
                if (!((t[i] >= 'a' && t[i] <= 'z') || (t[i] >= '0' && t[i] <= '9')))
                        return false;
        if (ret_new)
                *ret_new = t[0] == 'n';
        return true;
}

/* ---- the sink ---- */

void fs_sink_release(struct fs_sink *s)
{
        if (s->tmp && s->dirfd >= 0)
                (void)unlinkat(s->dirfd, s->tmp, 0);
        free(s->tmp);
        s->tmp = NULL;
        if (s->fd >= 0)
                (void)close(s->fd);
        s->fd = -1;
        if (s->dirfd >= 0)
                (void)close(s->dirfd);
        s->dirfd = -1;
        free(s->name);
        s->name = NULL;
}

/* Follows the symlink chain that starts at s->dirfd / s->name, one hop at a time, to the real
 * destination; sets have_old and old. A dangling chain leaves the first link in place (it is
 * what gets replaced). */
static int sink_resolve(struct fs_sink *s, const char *dst, struct cove_err **err)
{
        cleanup_close int first_dirfd = fcntl(s->dirfd, F_DUPFD_CLOEXEC, 3);
        cleanup_free char *first_name = xstrdup(s->name);
        struct stat st;

        if (first_dirfd < 0)
                return fs_err(err, errno, dst);
        for (unsigned hops = 0;; hops++) {
                if (fstatat(s->dirfd, s->name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
                        if (errno != ENOENT)
                                return fs_err(err, errno, dst);
                        break; /* a new file, or a dangling link */
                }
                if (!S_ISLNK(st.st_mode)) {
                        if (!S_ISREG(st.st_mode))
                                return fs_err_not_regular(err, &st, dst);
                        s->have_old = true;
                        s->old = st;
                        return 0;
                }
                int r = fs_is_magic_link(s->dirfd, s->name, &st);
                if (r != 0)
                        return fs_err(err, r < 0 ? r : -FS_EMAGIC, dst);
                if (hops >= FS_SYMLINK_HOPS)
                        return fs_err(err, ELOOP, dst);

                cleanup_free char *target = xmalloc(FS_PATH_MAX);
                ssize_t n = readlinkat(s->dirfd, s->name, target, FS_PATH_MAX - 1);
                if (n < 0)
                        return fs_err(err, errno, dst);
                target[n] = '\0';
                /* The target's directory part is resolved by the kernel (relative to the link's
                 * directory, or from "/"); its last component is the next name. */
                char *slash = strrchr(target, '/');
                const char *base = slash ? slash + 1 : target;
                cleanup_free char *dir =
                        slash ? (slash == target ? xstrdup("/")
                                                 : xstrndup(target, (size_t)(slash - target)))
                              : xstrdup(".");
                if (!*base || streq(base, ".") || streq(base, ".."))
                        return fs_err(err, EISDIR, dst); /* "dir/", ".": names a directory */
                int fd = fs_openat(s->dirfd, dir, O_PATH | O_DIRECTORY, 0);
                if (fd == -ENOENT)
                        break; /* dangling */
                if (fd < 0)
                        return fs_err(err, fd, dst);
                (void)close(s->dirfd);
                s->dirfd = fd;
                free(s->name);
                s->name = xstrdup(base);
        }
        /* Nothing there: a dangling link is replaced by the new file. */
        (void)close(s->dirfd);
        s->dirfd = TAKE_FD(first_dirfd);
        free(s->name);
        s->name = TAKE_PTR(first_name);
        s->have_old = false;
        return 0;
}

int fs_sink_open(const char *dst, struct fs_sink *s, struct cove_err **err)
{
        cleanup_at struct fs_at at = { .dirfd = -1 };
        struct stat st;
        int r;

        r = fs_at_open(dst, &at, err);
        if (r < 0)
                return r;
        s->dirfd = TAKE_FD(at.dirfd);
        s->name = TAKE_PTR(at.name);
        r = sink_resolve(s, dst, err);
        if (r < 0)
                return r;

        for (unsigned i = 0; i < FS_TMP_TRIES; i++) {
                free(s->tmp);
                s->tmp = fs_tmp_name(s->name, !s->have_old);
                s->fd = openat(s->dirfd, s->tmp,
                               O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
                if (s->fd >= 0)
                        return 0;
                if (errno == EEXIST)
                        continue;
                int e = errno;
                free(s->tmp);
                s->tmp = NULL;
                if ((e == EACCES || e == EPERM) && s->have_old) {
                        /* Directory not writable but perhaps the file is: write in place. */
                        s->fd = openat(s->dirfd, s->name,
                                       O_WRONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
                        if (s->fd < 0)
                                return fs_err(err, errno, dst);
                        if (fstat(s->fd, &st) < 0)
                                return fs_err(err, errno, dst);
                        if (!S_ISREG(st.st_mode))
                                return fs_err_not_regular(err, &st, dst);
                        return 0;
                }
                return fs_err(err, e, dst);
        }
        return fs_err(err, EEXIST, dst);
}

int fs_sink_write(struct fs_sink *s, const void *p, size_t n, const char *path,
                  struct cove_err **err)
{
        int r = write_full(s->fd, p, n);
        if (r < 0)
                return fs_err(err, r, path);
        return 0;
}

/* When the rename cannot replace dst — a mount point (EBUSY), or a sticky directory where dst
 * belongs to someone else (EPERM) — copy the temp file's content into dst in place. */
static int fs_sink_copy_in_place(struct fs_sink *s, int mode)
{
        cleanup_close int in = openat(s->dirfd, s->tmp, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        cleanup_close int out = -1;
        struct stat st;
        int r;

        if (in < 0 || fstat(in, &st) < 0)
                return -errno;
        out = openat(s->dirfd, s->name, O_WRONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
        if (out < 0)
                return -errno;
        r = fs_copy_fd(in, out);
        if (r < 0)
                return r;
        if (ftruncate(out, st.st_size) < 0)
                return -errno;
        if (mode >= 0 && fchmod(out, (mode_t)mode) < 0)
                return -errno;
        if (agent_fs_owner && fchown(out, agent_fs_owner->uid, agent_fs_owner->gid) < 0)
                return -errno;
        (void)unlinkat(s->dirfd, s->tmp, 0);
        return 0;
}

int fs_sink_commit(struct fs_sink *s, int mode, bool root, const char *path, struct cove_err **err)
{
        if (!s->tmp) {
                off_t off = lseek(s->fd, 0, SEEK_CUR);
                if (off < 0 || ftruncate(s->fd, off) < 0)
                        return fs_err(err, errno, path);
                if (mode >= 0 && fchmod(s->fd, (mode_t)mode) < 0)
                        return fs_err(err, errno, path);
                if (agent_fs_owner && fchown(s->fd, agent_fs_owner->uid, agent_fs_owner->gid) < 0)
                        return fs_err(err, errno, path);
                return 0;
        }
        /* the new content's owner: the E2B face's acting user, else the old file's (root) */
        if (agent_fs_owner) {
                if (fchown(s->fd, agent_fs_owner->uid, agent_fs_owner->gid) < 0)
                        return fs_err(err, errno, path);
        } else if (s->have_old && root && fchown(s->fd, s->old.st_uid, s->old.st_gid) < 0) {
                return fs_err(err, errno, path);
        }
        /* (chown first: it clears setuid/setgid, which the chmod then restores) */
        mode_t m = mode >= 0 ? (mode_t)mode : s->have_old ? s->old.st_mode & 07777 : 0644;
        if (fchmod(s->fd, m) < 0)
                return fs_err(err, errno, path);
        if (renameat(s->dirfd, s->tmp, s->dirfd, s->name) < 0) {
                int e = errno;
                if ((e != EBUSY && e != EPERM && e != EACCES) || !s->have_old)
                        return fs_err(err, e, path);
                int r = fs_sink_copy_in_place(s, mode);
                if (r < 0)
                        return fs_err(err, r, path);
        }
        free(s->tmp);
        s->tmp = NULL;
        return 0;
}
