/* SPDX-License-Identifier: MIT */
#include "fdutil.h"
#include "buf.h"
#include "macro.h"
#include "parse.h"

#include <fcntl.h>
#include <linux/close_range.h>
#include <linux/magic.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/vfs.h>

#ifndef OVERLAYFS_SUPER_MAGIC
#define OVERLAYFS_SUPER_MAGIC 0x794c7630
#endif

ssize_t read_full(int fd, void *p, size_t n)
{
        size_t got = 0;
        while (got < n) {
                ssize_t r = read(fd, (char *)p + got, n - got);
                if (r < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (r == 0)
                        break;
                got += (size_t)r;
        }
        return (ssize_t)got;
}

int write_full(int fd, const void *p, size_t n)
{
        size_t done = 0;
        while (done < n) {
                ssize_t r = write(fd, (const char *)p + done, n - done);
                if (r < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                done += (size_t)r;
        }
        return 0;
}

void fd_close_foreign(int fd)
{
        struct stat st;

        if (fd < 0)
                return;
        if (fstat(fd, &st) == 0 && S_ISSOCK(st.st_mode)) {
                struct linger l = { .l_onoff = 1, .l_linger = 0 };
                (void)setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
        }
        (void)close(fd);
}

bool fd_local_file_readable(int fd, int64_t *ret_size)
{
        struct stat st;
        struct statfs sfs;

        if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
                return false;
        int fl = fcntl(fd, F_GETFL);
        if (fl < 0 || (fl & O_PATH) || (fl & O_ACCMODE) == O_WRONLY)
                return false;
        if (fstatfs(fd, &sfs) < 0)
                return false;
        switch ((unsigned long)sfs.f_type) {
        case EXT4_SUPER_MAGIC:
        case XFS_SUPER_MAGIC:
        case BTRFS_SUPER_MAGIC:
        case TMPFS_MAGIC:
        case OVERLAYFS_SUPER_MAGIC:
                *ret_size = st.st_size;
                return true;
        default:
                return false;
        }
}

int fd_set_nonblock(int fd, int on)
{
        int fl = fcntl(fd, F_GETFL);
        if (fl < 0)
                return -errno;
        fl = on ? fl | O_NONBLOCK : fl & ~O_NONBLOCK;
        if (fcntl(fd, F_SETFL, fl) < 0)
                return -errno;
        return 0;
}

int fd_set_cloexec(int fd, int on)
{
        int fl = fcntl(fd, F_GETFD);
        if (fl < 0)
                return -errno;
        fl = on ? fl | FD_CLOEXEC : fl & ~FD_CLOEXEC;
        if (fcntl(fd, F_SETFD, fl) < 0)
                return -errno;
        return 0;
}

int fd_cloexec_from(int from)
{
        if (syscall(SYS_close_range, (unsigned)from, ~0U, CLOSE_RANGE_CLOEXEC) == 0)
                return 0;
        /* FIXME: drop this path once the minimum kernel has CLOSE_RANGE_CLOEXEC (5.11) */
        DIR *d = opendir("/proc/self/fd");
        if (!d)
                return -errno;
        struct dirent *de;
        while ((de = readdir(d))) {
                uint32_t fd;
                if (safe_atou32(de->d_name, &fd) < 0)
                        continue;
                if ((int)fd >= from && (int)fd != dirfd(d))
                        (void)fd_set_cloexec((int)fd, 1);
        }
        closedir(d);
        return 0;
}

int read_small_file(const char *path, size_t max, char **ret, size_t *ret_len)
{
        cleanup_close int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return -errno;
        struct buf b;
        buf_init(&b, max + 1);
        char chunk[4096];
        for (;;) {
                ssize_t r = read(fd, chunk, sizeof(chunk));
                if (r < 0) {
                        if (errno == EINTR)
                                continue;
                        int e = errno;
                        buf_release(&b);
                        return -e;
                }
                if (r == 0)
                        break;
                int q = buf_add(&b, chunk, (size_t)r);
                if (q < 0)
                        return q;
        }
        *ret = buf_take(&b, ret_len);
        return 0;
}

int write_string_file(const char *path, const char *s)
{
        cleanup_close int fd = open(path, O_WRONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return -errno;
        ssize_t n = write(fd, s, strlen(s));
        if (n < 0)
                return -errno;
        if ((size_t)n != strlen(s))
                return -EIO;
        return 0;
}

/* Written once at start, before any thread or child exists; read in forked children. */
static struct rlimit fd_limit_original;
static bool fd_limit_raised;

unsigned long fd_limit_raise(void)
{
        struct rlimit rl;

        if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
                return 1024;
        if (rl.rlim_cur >= rl.rlim_max)
                return (unsigned long)rl.rlim_cur;
        struct rlimit want = { .rlim_cur = rl.rlim_max, .rlim_max = rl.rlim_max };
        if (setrlimit(RLIMIT_NOFILE, &want) < 0)
                return (unsigned long)rl.rlim_cur;
        fd_limit_original = rl;
        fd_limit_raised = true;
        return (unsigned long)want.rlim_cur;
}

void fd_limit_restore(void)
{
        if (fd_limit_raised)
                (void)setrlimit(RLIMIT_NOFILE, &fd_limit_original);
}
