/* SPDX-License-Identifier: MIT */
#include "runtime/fsutil.h"

#include "lib/fdutil.h"
#include "lib/macro.h"

#include <fcntl.h>
#include <sys/stat.h>

#include "lib/banned.h"

#define RM_RF_MAX_DEPTH 256

static int rm_dir_contents(int dfd, dev_t dev, int depth, const char *what, struct cove_err **err)
{
        cleanup_closedir DIR *d = NULL;
        struct dirent *de;
        int dup_fd;

        if (depth > RM_RF_MAX_DEPTH)
                return cove_err_set(err, ELOOP, "remove '%s': tree deeper than %d levels", what,
                                    RM_RF_MAX_DEPTH);
        dup_fd = fcntl(dfd, F_DUPFD_CLOEXEC, 3);
        if (dup_fd < 0)
                return cove_err_set(err, errno, "remove '%s': dup: %m", what);
        d = fdopendir(dup_fd);
        if (!d) {
                int e = errno;
                (void)close(dup_fd);
                return cove_err_set(err, e, "remove '%s': fdopendir: %m", what);
        }
        while ((errno = 0, de = readdir(d))) {
                struct stat st;
                if (streq(de->d_name, ".") || streq(de->d_name, ".."))
                        continue;
                if (fstatat(dfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
                        if (errno == ENOENT)
                                continue;
                        return cove_err_set(err, errno, "remove '%s/%s': stat: %m", what,
                                            de->d_name);
                }
                if (S_ISDIR(st.st_mode)) {
                        cleanup_close int cfd = -1;
                        if (st.st_dev != dev)
                                return cove_err_set(err, EBUSY, "remove '%s/%s': is a mount point",
                                                    what, de->d_name);
                        cfd = openat(dfd, de->d_name,
                                     O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY);
                        if (cfd < 0)
                                return cove_err_set(err, errno, "remove '%s/%s': open: %m", what,
                                                    de->d_name);
                        struct stat cst;
                        if (fstat(cfd, &cst) < 0)
                                return cove_err_set(err, errno, "remove '%s/%s': stat: %m", what,
                                                    de->d_name);
                        if (cst.st_dev != dev)
                                return cove_err_set(err, EBUSY, "remove '%s/%s': is a mount point",
                                                    what, de->d_name);
                        int r = rm_dir_contents(cfd, dev, depth + 1, what, err);
                        if (r < 0)
                                return r;
                        if (unlinkat(dfd, de->d_name, AT_REMOVEDIR) < 0 && errno != ENOENT)
                                return cove_err_set(err, errno, "remove '%s/%s': %m", what,
                                                    de->d_name);
                } else if (unlinkat(dfd, de->d_name, 0) < 0 && errno != ENOENT) {
                        return cove_err_set(err, errno, "remove '%s/%s': %m", what, de->d_name);
                }
        }
        if (errno != 0)
                return cove_err_set(err, errno, "remove '%s': readdir: %m", what);
        return 0;
}

int rm_rf_at(int dirfd, const char *name, struct cove_err **err)
{
        cleanup_close int fd = -1;
        struct stat st;

        if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
                if (errno == ENOENT)
                        return 0;
                return cove_err_set(err, errno, "remove '%s': stat: %m", name);
        }
        if (!S_ISDIR(st.st_mode)) {
                if (unlinkat(dirfd, name, 0) < 0 && errno != ENOENT)
                        return cove_err_set(err, errno, "remove '%s': %m", name);
                return 0;
        }
        fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return cove_err_set(err, errno, "remove '%s': open: %m", name);
        if (fstat(fd, &st) < 0)
                return cove_err_set(err, errno, "remove '%s': stat: %m", name);
        int r = rm_dir_contents(fd, st.st_dev, 0, name, err);
        if (r < 0)
                return r;
        if (unlinkat(dirfd, name, AT_REMOVEDIR) < 0 && errno != ENOENT)
                return cove_err_set(err, errno, "remove '%s': %m", name);
        return 0;
}

int rm_rf(const char *path, struct cove_err **err)
{
        return rm_rf_at(AT_FDCWD, path, err);
}

int mkdir_p(const char *path, mode_t mode, struct cove_err **err)
{
        cleanup_free char *p = xstrdup(path);
        for (char *s = p + 1;; s++) {
                if (*s != '/' && *s != '\0')
                        continue;
                char c = *s;
                *s = '\0';
                if (mkdir(p, mode) < 0 && errno != EEXIST)
                        return cove_err_set(err, errno, "mkdir '%s': %m", p);
                *s = c;
                if (!c)
                        break;
        }
        return 0;
}

int copy_file(const char *src, const char *dst, mode_t mode, struct cove_err **err)
{
        cleanup_close int in = -1, out = -1;
        cleanup_free char *tmp = xasprintf("%s.tmp", dst);
        char chunk[65536];
        struct stat st;

        in = open(src, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
        if (in < 0)
                return cove_err_set(err, errno, "open '%s': %m", src);
        if (fstat(in, &st) < 0)
                return cove_err_set(err, errno, "stat '%s': %m", src);
        if (!S_ISREG(st.st_mode))
                return cove_err_set(err, EINVAL, "'%s' is not a regular file", src);
        out = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode);
        if (out < 0)
                return cove_err_set(err, errno, "create '%s': %m", tmp);
        for (;;) {
                ssize_t n = read(in, chunk, sizeof(chunk));
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return cove_err_set(err, errno, "read '%s': %m", src);
                }
                if (n == 0)
                        break;
                int r = write_full(out, chunk, (size_t)n);
                if (r < 0)
                        return cove_err_set(err, -r, "write '%s': %m", tmp);
        }
        if (fchmod(out, mode) < 0)
                return cove_err_set(err, errno, "chmod '%s': %m", tmp);
        if (rename(tmp, dst) < 0)
                return cove_err_set(err, errno, "rename '%s': %m", tmp);
        return 0;
}

int write_file_mode(const char *path, const char *content, mode_t mode, struct cove_err **err)
{
        cleanup_close int fd =
                open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode);
        if (fd < 0)
                return cove_err_set(err, errno, "create '%s': %m", path);
        int r = write_full(fd, content, strlen(content));
        if (r < 0)
                return cove_err_set(err, -r, "write '%s': %m", path);
        if (fchmod(fd, mode) < 0)
                return cove_err_set(err, errno, "chmod '%s': %m", path);
        return 0;
}
