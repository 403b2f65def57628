/* SPDX-License-Identifier: MIT */
#include "build/upper.h"

#include "lib/macro.h"
#include "runtime/fsutil.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/xattr.h>

#include "lib/banned.h"

#define UPPER_DEPTH_MAX   256
#define UPPER_ENTRIES_MAX (1000 * 1000)
#define XATTR_LIST_MAX_   (64 * 1024)

struct walk {
        uint32_t base, count;
        dev_t dev;
        uint64_t entries;
};

static int shift(struct walk *w, uint32_t id, uint32_t *ret)
{
        if (id < w->base || id - w->base >= w->count)
                return -ERANGE;
        *ret = id - w->base;
        return 0;
}

/* fd: O_PATH or real fd of the entry; name/dirfd for the *at calls. */
static int fix_xattrs(int fd, bool is_dir, const char *path, struct cove_err **err)
{
        char list[XATTR_LIST_MAX_], v[8];
        char proc[64];
        ssize_t n;

        /* xattrs need a real fd; an O_PATH fd works through /proc/self/fd */
        (void)snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
        n = listxattr(proc, list, sizeof(list));
        if (n < 0)
                return errno == ENOTSUP
                               ? 0
                               : cove_err_set(err, errno, "layer '%s': list xattrs: %m", path);
        bool opaque = false;
        for (ssize_t o = 0; o < n; o += (ssize_t)strlen(list + o) + 1) {
                const char *name = list + o;
                if (!strstr(name, ".overlay."))
                        continue;
                bool is_opaque =
                        streq(name, "user.overlay.opaque") || streq(name, "trusted.overlay.opaque");
                if (is_dir && is_opaque && getxattr(proc, name, v, sizeof(v)) == 1 && v[0] == 'y') {
                        opaque = true;
                        continue;
                }
                if (removexattr(proc, name) < 0 && errno != ENODATA)
                        return cove_err_set(err, errno, "layer '%s': remove xattr '%s': %m", path,
                                            name);
        }
        if (opaque && (setxattr(proc, "trusted.overlay.opaque", "y", 1, 0) < 0 ||
                       setxattr(proc, "user.overlay.opaque", "y", 1, 0) < 0))
                return cove_err_set(err, errno, "layer '%s': mark opaque: %m", path);
        return 0;
}

static int walk_dir(struct walk *w, int dfd, const char *path, int depth, struct cove_err **err)
{
        int dup_fd;
        cleanup_closedir DIR *d = NULL;
        struct dirent *de;

        if (depth > UPPER_DEPTH_MAX)
                return cove_err_set(err, ELOOP, "layer: tree deeper than %d levels",
                                    UPPER_DEPTH_MAX);
        dup_fd = openat(dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dup_fd < 0)
                return cove_err_set(err, errno, "layer '%s': open: %m", path);
        d = fdopendir(dup_fd);
        if (!d) {
                (void)close(dup_fd);
                return cove_err_set(err, errno, "layer '%s': open: %m", path);
        }
        while ((errno = 0, de = readdir(d))) {
                struct stat st;
                uint32_t uid, gid;
                if (streq(de->d_name, ".") || streq(de->d_name, ".."))
                        continue;
                cleanup_free char *child = xasprintf("%s/%s", path, de->d_name);
                if (++w->entries > UPPER_ENTRIES_MAX)
                        return cove_err_set(err, EFBIG, "layer: more than %d entries",
                                            UPPER_ENTRIES_MAX);
                if (fstatat(dfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                        return cove_err_set(err, errno, "layer '%s': stat: %m", child);
                if (st.st_dev != w->dev)
                        return cove_err_set(err, EXDEV, "layer '%s': a mount point", child);
                if (S_ISSOCK(st.st_mode)) {
                        if (unlinkat(dfd, de->d_name, 0) < 0)
                                return cove_err_set(err, errno, "layer '%s': remove socket: %m",
                                                    child);
                        continue;
                }
                if ((S_ISCHR(st.st_mode) && st.st_rdev != 0) || S_ISBLK(st.st_mode))
                        return cove_err_set(err, EPERM, "layer '%s': device nodes are not allowed",
                                            child);
                if (shift(w, st.st_uid, &uid) < 0 || shift(w, st.st_gid, &gid) < 0)
                        return cove_err_set(
                                err, ERANGE,
                                "layer '%s': owner %u:%u is outside the build sandbox's ids", child,
                                (unsigned)st.st_uid, (unsigned)st.st_gid);
                if ((uid != st.st_uid || gid != st.st_gid) &&
                    fchownat(dfd, de->d_name, uid, gid, AT_SYMLINK_NOFOLLOW) < 0)
                        return cove_err_set(err, errno, "layer '%s': chown: %m", child);
                if (S_ISLNK(st.st_mode))
                        continue;
                cleanup_close int fd = openat(dfd, de->d_name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
                if (fd < 0)
                        return cove_err_set(err, errno, "layer '%s': open: %m", child);
                if ((st.st_mode & 06000) && (uid != st.st_uid || gid != st.st_gid)) {
                        /* chown cleared setuid/setgid: restore them */
                        char proc[64];
                        (void)snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
                        if (chmod(proc, st.st_mode & 07777) < 0)
                                return cove_err_set(err, errno, "layer '%s': chmod: %m", child);
                }
                int r = fix_xattrs(fd, S_ISDIR(st.st_mode), child, err);
                if (r < 0)
                        return r;
                if (S_ISDIR(st.st_mode)) {
                        cleanup_close int cfd = openat(
                                dfd, de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                        if (cfd < 0)
                                return cove_err_set(err, errno, "layer '%s': open: %m", child);
                        r = walk_dir(w, cfd, child, depth + 1, err);
                        if (r < 0)
                                return r;
                }
        }
        if (errno)
                return cove_err_set(err, errno, "layer '%s': read directory: %m", path);
        return 0;
}

int upper_to_layer(int rootfd, uint32_t base, uint32_t count, struct cove_err **err)
{
        struct walk w = { .base = base, .count = count };
        struct stat st;
        uint32_t uid, gid;

        if (count == 0)
                return cove_err_set(err, EINVAL, "layer: empty id range");
        if (fstat(rootfd, &st) < 0)
                return cove_err_set(err, errno, "layer: stat root: %m");
        w.dev = st.st_dev;
        /* The root is the directory the build made for the overlay: shifted when the sandbox
         * owned it, else left as it is. */
        if (shift(&w, st.st_uid, &uid) == 0 && shift(&w, st.st_gid, &gid) == 0 &&
            (uid != st.st_uid || gid != st.st_gid) && fchown(rootfd, uid, gid) < 0)
                return cove_err_set(err, errno, "layer '/': chown: %m");
        int r = fix_xattrs(rootfd, true, "", err);
        if (r < 0)
                return r;
        return walk_dir(&w, rootfd, "", 0, err);
}

int upper_remove_scratch(const char *path, struct cove_err **err)
{
        return rm_rf(path, err);
}
