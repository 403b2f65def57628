/* SPDX-License-Identifier: MIT */
/*
 * bench-floor — the sandbox start floor (PLATFORM.md): per iteration, an overlay root (lower = a
 * skeleton made here + /usr bind) in fresh mount/pid/net/uts/ipc/cgroup namespaces with a
 * minimal /dev, pivot_root, exec /usr/bin/true, wait. Prints p50/p99 in ms.
 *
 *   bench-floor [iterations=200] [workdir=/tmp]      (BENCH_RAW=1: also print each sample)
 *
 * Self-contained on purpose (libc only): it measures the kernel's floor, not Cove's code.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <dirent.h>

#define NS_FLAGS                                                                                   \
        (CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWCGROUP)

static char base[4096];

static void die(const char *what)
{
        fprintf(stderr, "bench-floor: %s: %s\n", what, strerror(errno));
        exit(1);
}

static double now_ms(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void xmkdir(const char *p, mode_t m)
{
        if (mkdir(p, m) < 0 && errno != EEXIST)
                die(p);
}

static void skeleton(const char *lower)
{
        static const char *const dirs[] = { "usr", "proc", "dev", "tmp", "sys", "etc" };
        static const char *const links[][2] = { { "bin", "usr/bin" },
                                                { "lib", "usr/lib" },
                                                { "lib64", "usr/lib64" },
                                                { "sbin", "usr/sbin" } };
        char p[4200];
        xmkdir(lower, 0755);
        for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
                snprintf(p, sizeof(p), "%s/%s", lower, dirs[i]);
                xmkdir(p, 0755);
        }
        for (size_t i = 0; i < sizeof(links) / sizeof(links[0]); i++) {
                snprintf(p, sizeof(p), "%s/%s", lower, links[i][0]);
                if (symlink(links[i][1], p) < 0 && errno != EEXIST)
                        die(p);
        }
}

/* Child: runs as PID 1 of the new namespaces; any failure exits 100+step. */
static int child(const char *root, const char *opts)
{
        static const char *const nodes[] = { "null", "zero", "full", "random", "urandom", "tty" };
        char p[4300], src[64];

        if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
                _exit(101);
        if (mount("overlay", root, "overlay", MS_NODEV, opts) < 0)
                _exit(102);
        snprintf(p, sizeof(p), "%s/usr", root);
        if (mount("/usr", p, NULL, MS_BIND | MS_REC, NULL) < 0 ||
            mount(NULL, p, NULL, MS_BIND | MS_REMOUNT | MS_RDONLY, NULL) < 0)
                _exit(103);
        snprintf(p, sizeof(p), "%s/proc", root);
        if (mount("proc", p, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
                _exit(104);
        snprintf(p, sizeof(p), "%s/dev", root);
        if (mount("tmpfs", p, "tmpfs", MS_NOSUID, "mode=755") < 0)
                _exit(105);
        for (size_t i = 0; i < sizeof(nodes) / sizeof(nodes[0]); i++) {
                snprintf(p, sizeof(p), "%s/dev/%s", root, nodes[i]);
                snprintf(src, sizeof(src), "/dev/%s", nodes[i]);
                int fd = open(p, O_CREAT | O_WRONLY | O_CLOEXEC, 0666);
                if (fd < 0)
                        _exit(106);
                close(fd);
                if (mount(src, p, NULL, MS_BIND, NULL) < 0)
                        _exit(107);
        }
        snprintf(p, sizeof(p), "%s/dev/pts", root);
        if (mkdir(p, 0755) < 0 || mount("devpts", p, "devpts", MS_NOSUID | MS_NOEXEC,
                                        "newinstance,ptmxmode=0666,mode=0620") < 0)
                _exit(108);
        snprintf(p, sizeof(p), "%s/dev/ptmx", root);
        if (symlink("pts/ptmx", p) < 0)
                _exit(109);
        if (chdir(root) < 0 || syscall(SYS_pivot_root, ".", ".") < 0 ||
            umount2(".", MNT_DETACH) < 0 || chdir("/") < 0)
                _exit(110);
        char *argv[] = { "true", NULL };
        execve("/usr/bin/true", argv, (char *[]){ NULL });
        _exit(111);
}

static void rm_tree(const char *p)
{
        /* upper/work hold a handful of entries at most: a tiny recursive remove. */
        struct stat st;
        if (lstat(p, &st) < 0)
                return;
        if (S_ISDIR(st.st_mode)) {
                char sub[4400];
                DIR *d = opendir(p);
                struct dirent *de;
                while (d && (de = readdir(d))) {
                        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
                                continue;
                        snprintf(sub, sizeof(sub), "%s/%s", p, de->d_name);
                        rm_tree(sub);
                }
                if (d)
                        closedir(d);
                rmdir(p);
        } else {
                unlink(p);
        }
}

/* Strict decimal (no strtol: house rule); -1 on junk or overflow. */
static int parse_count(const char *s)
{
        long v = 0;
        if (!*s)
                return -1;
        for (; *s; s++) {
                if (*s < '0' || *s > '9' || v > 1000000)
                        return -1;
                v = v * 10 + (*s - '0');
        }
        return (int)v;
}

static int cmp(const void *a, const void *b)
{
        double x = *(const double *)a, y = *(const double *)b;
        return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
        int n = argc > 1 ? parse_count(argv[1]) : 200;
        const char *wd = argc > 2 ? argv[2] : "/tmp";
        char lower[4200], upper[4200], work[4200], root[4200], opts[8192];
        double *t;

        if (n <= 0 || n > 100000) {
                fprintf(stderr, "usage: bench-floor [iterations] [workdir]\n");
                return 2;
        }
        snprintf(base, sizeof(base), "%s/bench-floor-XXXXXX", wd);
        if (!mkdtemp(base))
                die("mkdtemp");
        snprintf(lower, sizeof(lower), "%s/lower", base);
        snprintf(upper, sizeof(upper), "%s/upper", base);
        snprintf(work, sizeof(work), "%s/work", base);
        snprintf(root, sizeof(root), "%s/root", base);
        skeleton(lower);
        xmkdir(root, 0755);
        snprintf(opts, sizeof(opts), "lowerdir=%s,upperdir=%s,workdir=%s", lower, upper, work);
        t = calloc((size_t)n, sizeof(double));
        if (!t)
                die("calloc");

        for (int i = 0; i < n; i++) {
                xmkdir(upper, 0755);
                xmkdir(work, 0755);
                double t0 = now_ms();
                pid_t pid = (pid_t)syscall(SYS_clone, NS_FLAGS | SIGCHLD, NULL, NULL, NULL, NULL);
                if (pid < 0)
                        die("clone");
                if (pid == 0)
                        _exit(child(root, opts));
                int status;
                if (waitpid(pid, &status, 0) != pid)
                        die("waitpid");
                t[i] = now_ms() - t0;
                if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
                        fprintf(stderr, "bench-floor: iteration %d failed (status 0x%x)\n", i,
                                status);
                        rm_tree(base);
                        return 1;
                }
                rm_tree(upper);
                rm_tree(work);
        }
        /* BENCH_RAW=1: every sample on its own line, for callers that pool runs (lifecycle.py). */
        if (getenv("BENCH_RAW"))
                for (int i = 0; i < n; i++)
                        printf("sample %.3f\n", t[i]);
        qsort(t, (size_t)n, sizeof(double), cmp);
        printf("iterations %d  p50 %.2f ms  p99 %.2f ms  min %.2f ms  max %.2f ms\n", n, t[n / 2],
               t[(n * 99) / 100 < n ? (n * 99) / 100 : n - 1], t[0], t[n - 1]);
        free(t);
        rm_tree(base);
        return 0;
}
