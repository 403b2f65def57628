/* SPDX-License-Identifier: MIT */
/*
 * fs_path.c — the file API's path rules (fs.h): request paths normalised lexically for the
 * acting user, then resolved by the kernel with openat2(RESOLVE_NO_MAGICLINKS), so that no
 * path of the file API ever goes through /proc/<pid>/{exe,cwd,root,fd/N,map_files/N} (those
 * lead to files outside the sandbox's tree: cove-init's and cove-agent's binaries, other
 * processes' roots). Every op works on the fds this module opens, never on the path again.
 *
 * openat2 reports a magic link as ELOOP, like a loop of ordinary symlinks. The two are told
 * apart by resolving once more with magic links allowed, to an O_PATH fd that is closed at
 * once (O_PATH opens nothing for reading or writing): if that succeeds, a magic link was the
 * cause (-FS_EMAGIC, 403); if it fails with ELOOP too, it is a real loop (400).
 */
#include "agent/fs.h"
#include "lib/fdutil.h"
#include "lib/macro.h"
#include "lib/path.h"

#include <fcntl.h>
#include <linux/magic.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/vfs.h>

static int openat2_raw(int dirfd, const char *path, int flags, uint64_t resolve)
{
        struct open_how how = { .flags = (uint64_t)(flags | O_CLOEXEC), .resolve = resolve };
        long fd = syscall(SYS_openat2, dirfd, path, &how, sizeof(how));

        return fd < 0 ? -errno : (int)fd;
}

int fs_openat(int dirfd, const char *path, int flags, uint64_t resolve)
{
        int fd = openat2_raw(dirfd, path, flags, resolve | RESOLVE_NO_MAGICLINKS);

        if (fd != -ELOOP)
                return fd;
        /* O_NOFOLLOW on a last component that is an ordinary symlink is ELOOP too. */
        if (flags & O_NOFOLLOW) {
                fd = openat2_raw(dirfd, path, O_PATH | O_NOFOLLOW, resolve | RESOLVE_NO_MAGICLINKS);
                if (fd >= 0) {
                        (void)close(fd);
                        return -ELOOP;
                }
        }
        fd = openat2_raw(dirfd, path, O_PATH | (flags & O_NOFOLLOW), resolve);
        if (fd >= 0) {
                (void)close(fd);
                return -FS_EMAGIC;
        }
        return fd == -ELOOP ? -ELOOP : -FS_EMAGIC;
}

int fs_is_magic_link(int dirfd, const char *name, const struct stat *st)
{
        struct statfs sfs;

        /* Magic links exist only in procfs; most symlinks are elsewhere. */
        if (!S_ISLNK(st->st_mode))
                return 0;
        if (fstatfs(dirfd, &sfs) < 0)
                return -errno;
        if (sfs.f_type != PROC_SUPER_MAGIC)
                return 0;
        /* Only a link that resolves without magic links is an ordinary one (/proc/self,
         * /proc/mounts). A magic link whose target the kernel will not give us (another user's
         * process, a process without memory map) fails with EACCES or ENOENT before openat2
         * even looks at RESOLVE_NO_MAGICLINKS: it counts as magic all the same. */
        int fd = fs_openat(dirfd, name, O_PATH, 0);
        if (fd >= 0) {
                (void)close(fd);
                return 0;
        }
        return 1;
}

/* ---- locations ---- */

void fs_at_done(struct fs_at *at)
{
        if (at->dirfd >= 0)
                (void)close(at->dirfd);
        at->dirfd = -1;
        free(at->name);
        at->name = NULL;
}

int fs_at_open(const char *path, struct fs_at *at, struct cove_err **err)
{
        cleanup_free char *parent = NULL;
        int fd;

        *at = (struct fs_at){ .dirfd = -1 };
        if (streq(path, "/")) {
                fd = fs_openat(AT_FDCWD, "/", O_PATH | O_DIRECTORY, 0);
                if (fd < 0)
                        return fs_err(err, fd, path);
                *at = (struct fs_at){ .dirfd = fd, .name = xstrdup(".") };
                return 0;
        }
        parent = fs_path_parent(path);
        fd = fs_openat(AT_FDCWD, parent, O_PATH | O_DIRECTORY, 0);
        if (fd < 0)
                return fs_err_lookup(err, fd, path);
        *at = (struct fs_at){ .dirfd = fd, .name = xstrdup(fs_path_base(path)) };
        return 0;
}

int fs_at_lstat(const struct fs_at *at, struct stat *st)
{
        if (fstatat(at->dirfd, at->name, st, AT_SYMLINK_NOFOLLOW) < 0)
                return -errno;
        int r = fs_is_magic_link(at->dirfd, at->name, st);
        if (r < 0)
                return r;
        return r ? -FS_EMAGIC : 0;
}

/* ---- opening ---- */

/* The path is resolved twice: to an O_PATH fd first, so that a device or FIFO is refused
 * without even being opened, then for reading (fstat'ed again: that check is the one that
 * counts, the file may have been swapped between the two). */
int fs_open_regular(const char *path, bool edit, struct cove_err **err)
{
        cleanup_close int fd = -1;
        struct stat st;

        fd = fs_openat(AT_FDCWD, path, O_PATH, 0);
        if (fd >= 0) {
                if (fstat(fd, &st) < 0)
                        return fs_err(err, errno, path);
                if (!S_ISREG(st.st_mode))
                        return fs_err_not_regular(err, &st, path);
                (void)close(TAKE_FD(fd));
                fd = fs_openat(AT_FDCWD, path, O_RDONLY | O_NONBLOCK | O_NOCTTY, 0);
        }
        if (fd < 0) {
                if (edit && (fd == -ENOENT || fd == -ENOTDIR))
                        return cove_err_set_status(err, 404, ENOENT, "file '%s' not found", path);
                return fs_err_lookup(err, fd, path);
        }
        if (fstat(fd, &st) < 0)
                return fs_err(err, errno, path);
        if (!S_ISREG(st.st_mode))
                return fs_err_not_regular(err, &st, path);
        int r = fd_set_nonblock(fd, 0);
        if (r < 0)
                return fs_err(err, r, path);
        return TAKE_FD(fd);
}

int fs_open_dir(const char *path, struct cove_err **err)
{
        cleanup_close int fd = -1;
        struct stat st;

        fd = fs_openat(AT_FDCWD, path, O_PATH, 0);
        if (fd >= 0) {
                if (fstat(fd, &st) < 0)
                        return fs_err(err, errno, path);
                if (!S_ISDIR(st.st_mode))
                        return fs_err(err, ENOTDIR, path);
                (void)close(TAKE_FD(fd));
                fd = fs_openat(AT_FDCWD, path, O_RDONLY | O_DIRECTORY | O_NONBLOCK, 0);
        }
        if (fd < 0)
                return fs_err_lookup(err, fd, path);
        return TAKE_FD(fd);
}

/* ---- permissions checked before anything changes ---- */

static int access_fd(int fd, int mode)
{
        /* With AT_EACCESS the kernel checks the thread's fs credentials (the acting user). */
        if (syscall(SYS_faccessat2, fd, "", mode, AT_EACCESS | AT_EMPTY_PATH) < 0)
                return -errno;
        return 0;
}

int fs_check_writable_dir(int dirfd, const char *path, struct cove_err **err)
{
        int r = access_fd(dirfd, W_OK | X_OK);

        if (r < 0)
                return fs_err(err, r, path);
        return 0;
}

/* Kernel filesystems whose entries cannot be removed or moved away, whatever the mode bits
 * say (root's access() check passes there). */
static bool is_pseudo_fs(int fd)
{
        struct statfs sfs;

        if (fstatfs(fd, &sfs) < 0)
                return false;
        switch ((unsigned long)sfs.f_type) {
        case PROC_SUPER_MAGIC:
        case SYSFS_MAGIC:
        case CGROUP_SUPER_MAGIC:
        case CGROUP2_SUPER_MAGIC:
        case DEVPTS_SUPER_MAGIC:
        case SECURITYFS_MAGIC:
        case DEBUGFS_MAGIC:
        case TRACEFS_MAGIC:
        case BPF_FS_MAGIC:
        case NSFS_MAGIC:
                return true;
        default:
                return false;
        }
}

int fs_check_removable(const struct fs_at *at, const struct stat *st, uid_t uid, const char *path,
                       struct cove_err **err)
{
        struct stat dst;
        int r;

        if (is_pseudo_fs(at->dirfd))
                return fs_err(err, EPERM, path);
        r = access_fd(at->dirfd, W_OK | X_OK);
        if (r < 0)
                return fs_err(err, r, path);
        if (uid == 0)
                return 0; /* CAP_FOWNER: the sticky bit does not apply */
        if (fstat(at->dirfd, &dst) < 0)
                return fs_err(err, errno, path);
        /* In a sticky directory (/tmp) only the owner of the entry or of the directory may
         * remove or replace it. */
        if ((dst.st_mode & S_ISVTX) && st->st_uid != uid && dst.st_uid != uid)
                return fs_err(err, EPERM, path);
        return 0;
}

/* ---- lexical rules ---- */

/* Normalises p lexically (lib/path.h), refusing results longer than FS_PATH_MAX. */
int fs_path_normalize(const char *base, const char *p, char **ret)
{
        cleanup_free char *out = path_normalize(base, p);
        if (strlen(out) >= FS_PATH_MAX)
                return -ENAMETOOLONG;
        *ret = TAKE_PTR(out);
        return 0;
}

/* Resolves a request path for the acting user; empty → 400 `what is required`. Relative
 * paths are under the user's home; on the E2B face (e2b.md §4.2) under the sandbox's default
 * working directory when it has one (req.workdir), and `~`, `~/…` are the home. */
int fs_path_resolve(const struct agent_call *c, const char *p, const char *what, char **ret,
                    struct cove_err **err)
{
        const char *home = c->user && c->user->home && c->user->home[0] ? c->user->home : "/";
        const char *base = home;

        if (!p || !p[0])
                return cove_err_set_status(err, 400, EINVAL, "%s is required", what);
        if (strlen(p) >= FS_PATH_MAX)
                return cove_err_set_status(err, 400, ENAMETOOLONG, "%s is too long", what);
        if (agent_e2b_dialect && p[0] == '~' && (p[1] == '\0' || p[1] == '/'))
                p = p[1] ? p + 2 : ".";
        else if (agent_e2b_dialect && c->workdir && c->workdir[0] == '/')
                base = c->workdir;
        if (fs_path_normalize(base, p, ret) < 0)
                return cove_err_set_status(err, 400, ENAMETOOLONG, "%s is too long", what);
        return 0;
}

int fs_req_parse_path(struct agent_call *c, const struct json_field *fields, struct fs_req *q,
                      char **ret_path, struct cove_err **err)
{
        int r = fs_req_parse(c, fields, q, err);
        if (r < 0)
                return r;
        return fs_path_resolve(c, q->path, "path", ret_path, err);
}

int fs_path_resolve_json(const struct agent_call *c, json_t *v, const char *what, char **ret,
                         struct cove_err **err)
{
        if (!v || json_is_null(v))
                return cove_err_set_status(err, 400, EINVAL, "%s is required", what);
        if (!json_is_string(v))
                return cove_err_set_status(err, 400, EINVAL, "%s must be a string", what);
        if (strlen(json_string_value(v)) != json_string_length(v))
                return cove_err_set_status(err, 400, EINVAL, "%s must not contain NUL bytes", what);
        return fs_path_resolve(c, json_string_value(v), what, ret, err);
}

/* Base name of a normalised path ("/" for the root); borrowed from p. */
const char *fs_path_base(const char *p)
{
        const char *s = strrchr(p, '/');
        return s && s[1] ? s + 1 : p;
}

/* Parent directory of a normalised path; "/" for "/x" and "/". */
char *fs_path_parent(const char *p)
{
        const char *s = strrchr(p, '/');
        if (!s || s == p)
                return xstrdup("/");
        return xstrndup(p, (size_t)(s - p));
}

char *fs_path_join(const char *dir, const char *name)
{
        return xasprintf("%s%s%s", dir, streq(dir, "/") ? "" : "/", name);
}

/* Is p equal to or below dir (both normalised)? */
bool fs_path_is_under(const char *p, const char *dir)
{
        size_t l = strlen(dir);
        if (streq(dir, "/"))
                return true;
        return strncmp(p, dir, l) == 0 && (p[l] == '\0' || p[l] == '/');
}
