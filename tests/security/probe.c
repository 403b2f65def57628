/* SPDX-License-Identifier: MIT */
/*
 * cove-probe — what a hostile process inside a sandbox would try, one attempt per line
 * (tests/security/test_escape_sandbox.py uploads it into real sandboxes and runs it as root and
 * as `user`). Static, so it runs on any template.
 *
 *   cove-probe all [HOSTPID]      every refusal probe: "<name> <ret> <errno>" per line
 *   cove-probe cve MS             kill -9 the agent, then for MS milliseconds try to open init's
 *                                 and every agent's binary and fds: "cve <opened> <refused>
 * <errnos>" cove-probe ptrace-child       ptrace of one's own child (must keep working):
 * "ptrace-child <ret> <errno>" cove-probe forkbomb SECONDS   fork until refused, hold for SECONDS:
 * "forkbomb <n> <errno>" cove-probe diskbomb PATH      write PATH until refused: "diskbomb <MiB
 * written> <errno>"
 *
 * A probe that "succeeds" prints ret >= 0 and errno 0; the test asserts the refusal it expects.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <linux/io_uring.h>
#include <linux/keyctl.h>
#include <linux/perf_event.h>
#include <linux/reboot.h>
#include <linux/sched.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/time.h>
#include <sys/timex.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef AF_VSOCK
#define AF_VSOCK 40
#endif

/* Decimal digits only; -1 otherwise. */
static long num(const char *s)
{
        long v = 0;
        if (!*s)
                return -1;
        for (; *s; s++) {
                if (*s < '0' || *s > '9' || v > 100000000)
                        return -1;
                v = v * 10 + (*s - '0');
        }
        return v;
}

static void report(const char *name, long ret, int err)
{
        printf("%s %ld %d\n", name, ret, ret < 0 ? err : 0);
        fflush(stdout);
}

#define TRY(name, expr)                                                                            \
        do {                                                                                       \
                errno = 0;                                                                         \
                long r_ = (long)(expr);                                                            \
                report(name, r_, errno);                                                           \
        } while (0)

/* The first process whose cmdline starts with "cove-agent", or -1. */
static pid_t find_agent(void)
{
        DIR *d = opendir("/proc");
        struct dirent *de;
        pid_t found = -1;
        while (d && (de = readdir(d))) {
                char path[300], buf[64] = "";
                long pid = num(de->d_name);
                if (pid <= 1)
                        continue;
                snprintf(path, sizeof(path), "/proc/%ld/cmdline", pid);
                int fd = open(path, O_RDONLY | O_CLOEXEC);
                if (fd < 0)
                        continue;
                ssize_t n = read(fd, buf, sizeof(buf) - 1);
                close(fd);
                if (n > 0 && strncmp(buf, "cove-agent", 10) == 0) {
                        found = (pid_t)pid;
                        break;
                }
        }
        if (d)
                closedir(d);
        return found;
}

static long open_close(const char *path, int flags)
{
        int fd = open(path, flags | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
        if (fd >= 0)
                close(fd);
        return fd;
}

static void proc_probes(const char *who, pid_t pid)
{
        char path[128], name[128];
        static const struct {
                const char *file;
                int flags;
        } files[] = {
                { "exe", O_RDONLY },
                { "exe", O_WRONLY },
                { "mem", O_RDONLY },
                { "mem", O_RDWR },
                { "environ", O_RDONLY },
                { "fd/3", O_RDONLY },
                { "fd/4", O_RDONLY },
                { "fd/4", O_WRONLY },
                { "root/etc/hostname", O_RDONLY },
                { "ns/mnt", O_RDONLY },
                { "ns/user", O_RDONLY },
                { "map_files", O_RDONLY | O_DIRECTORY },
        };
        for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
                snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, files[i].file);
                snprintf(name, sizeof(name), "%s-%s-%s", who, files[i].file,
                         (files[i].flags & O_ACCMODE) == O_RDONLY ? "r" : "w");
                for (char *c = name; *c; c++)
                        if (*c == '/')
                                *c = '_';
                TRY(name, open_close(path, files[i].flags));
        }
        char target[256];
        snprintf(path, sizeof(path), "/proc/%d/exe", (int)pid);
        snprintf(name, sizeof(name), "%s-readlink-exe", who);
        TRY(name, readlink(path, target, sizeof(target)));
        snprintf(name, sizeof(name), "%s-ptrace-attach", who);
        TRY(name, ptrace(PTRACE_ATTACH, pid, NULL, NULL));
        snprintf(name, sizeof(name), "%s-ptrace-seize", who);
        TRY(name, ptrace(PTRACE_SEIZE, pid, NULL, NULL));
        char buf[16];
        struct iovec local = { buf, sizeof(buf) }, remote = { (void *)0x400000, sizeof(buf) };
        snprintf(name, sizeof(name), "%s-process_vm_readv", who);
        TRY(name, process_vm_readv(pid, &local, 1, &remote, 1, 0));
        snprintf(name, sizeof(name), "%s-process_vm_writev", who);
        TRY(name, process_vm_writev(pid, &local, 1, &remote, 1, 0));
        snprintf(name, sizeof(name), "%s-kcmp", who);
        TRY(name, syscall(SYS_kcmp, getpid(), pid, 0 /* KCMP_FILE */, 0, 3));
        int pfd = (int)syscall(SYS_pidfd_open, pid, 0);
        snprintf(name, sizeof(name), "%s-pidfd_getfd", who);
        TRY(name, pfd < 0 ? pfd : syscall(SYS_pidfd_getfd, pfd, 4, 0));
        if (pfd >= 0)
                close(pfd);
}

static int probe_all(pid_t hostpid)
{
        struct mount_attr attr = { .attr_set = MOUNT_ATTR_RDONLY };
        (void)mkdir("/tmp/cove-probe-mnt", 0755);
        (void)mkdir("/tmp/cove-probe-mnt/old", 0755);

        /* mounts: the kernel refuses (no CAP_SYS_ADMIN in any namespace we can reach) */
        TRY("mount-tmpfs", mount("none", "/tmp/cove-probe-mnt", "tmpfs", 0, NULL));
        TRY("mount-bind-root", mount("/", "/tmp/cove-probe-mnt", NULL, MS_BIND, NULL));
        TRY("mount-remount-usr-rw", mount(NULL, "/usr", NULL, MS_REMOUNT | MS_BIND, NULL));
        TRY("mount-cgroup", mount("cgroup", "/tmp/cove-probe-mnt", "cgroup", 0, "rdma"));
        TRY("mount-proc", mount("proc", "/tmp/cove-probe-mnt", "proc", 0, NULL));
        TRY("umount-proc-sys", umount2("/proc/sys", MNT_DETACH));
        TRY("umount-usr", umount2("/usr", MNT_DETACH));
        TRY("pivot_root",
            syscall(SYS_pivot_root, "/tmp/cove-probe-mnt", "/tmp/cove-probe-mnt/old"));
        TRY("fsopen", syscall(SYS_fsopen, "tmpfs", 0));
        TRY("fspick", syscall(SYS_fspick, AT_FDCWD, "/", 0));
        TRY("open_tree-clone", syscall(SYS_open_tree, AT_FDCWD, "/usr", OPEN_TREE_CLONE));
        TRY("move_mount",
            syscall(SYS_move_mount, AT_FDCWD, "/usr", AT_FDCWD, "/tmp/cove-probe-mnt", 0));
        TRY("mount_setattr", syscall(SYS_mount_setattr, AT_FDCWD, "/", 0, &attr, sizeof(attr)));
        TRY("chroot-escape", ({
                    /* the classic: chroot into a subdir, climb out with .., chroot back */
                    struct stat before, after;
                    long r = stat("/", &before);
                    int self = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                    if (r == 0 && chroot("/tmp/cove-probe-mnt") == 0) {
                            (void)!fchdir(self);
                            for (int i = 0; i < 64; i++)
                                    (void)!chdir("..");
                            (void)!chroot(".");
                            r = stat("/", &after);
                            /* 1 would mean a different root than the sandbox's */
                            r = r == 0 &&
                                (after.st_ino != before.st_ino || after.st_dev != before.st_dev);
                    }
                    if (self >= 0)
                            close(self);
                    r;
            }));

        /* devices */
        TRY("mknod-char-mem", mknod("/tmp/cove-probe-mem", S_IFCHR | 0600, makedev(1, 1)));
        TRY("mknod-block-disk", mknod("/tmp/cove-probe-disk", S_IFBLK | 0600, makedev(8, 0)));
        TRY("open-dev-mem", open_close("/dev/mem", O_RDONLY));
        TRY("open-dev-kmsg", open_close("/dev/kmsg", O_RDONLY));
        TRY("open-dev-vda", open_close("/dev/vda", O_RDONLY));
        TRY("open-dev-sda", open_close("/dev/sda", O_RDONLY));
        TRY("open-dev-loop-control", open_close("/dev/loop-control", O_RDWR));

        /* kernel knobs: /proc/sys, /sys, the kernel log */
        TRY("write-core_pattern", open_close("/proc/sys/kernel/core_pattern", O_WRONLY));
        TRY("write-sysrq-trigger", open_close("/proc/sysrq-trigger", O_WRONLY));
        TRY("write-modprobe", open_close("/proc/sys/kernel/modprobe", O_WRONLY));
        TRY("write-sys-mtu", open_close("/sys/class/net/lo/mtu", O_WRONLY));
        TRY("write-sys-uevent_helper", open_close("/sys/kernel/uevent_helper", O_WRONLY));
        TRY("write-cgroup-release_agent", open_close("/sys/fs/cgroup/release_agent", O_WRONLY));
        TRY("read-proc-kmsg", open_close("/proc/kmsg", O_RDONLY));
        TRY("read-proc-kcore", ({
                    int fd = open("/proc/kcore", O_RDONLY | O_CLOEXEC);
                    char b[16];
                    long r = fd < 0 ? fd : read(fd, b, sizeof(b)); /* 0: masked with /dev/null */
                    if (fd >= 0)
                            close(fd);
                    r;
            }));
        TRY("syslog-read", syscall(SYS_syslog, 3 /* READ_ALL */, NULL, 0));

        /* modules, kexec, reboot, clocks, swap, accounting, raw I/O */
        TRY("init_module", syscall(SYS_init_module, NULL, 0, ""));
        TRY("finit_module", ({
                    int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
                    long r = syscall(SYS_finit_module, fd, "", 0);
                    close(fd);
                    r;
            }));
        TRY("delete_module", syscall(SYS_delete_module, "loop", O_NONBLOCK));
        TRY("kexec_load", syscall(SYS_kexec_load, 0, 0, NULL, 0));
        TRY("kexec_file_load", syscall(SYS_kexec_file_load, -1, -1, 0, "", 0));
        TRY("reboot-cad-off", syscall(SYS_reboot, LINUX_REBOOT_MAGIC1, LINUX_REBOOT_MAGIC2,
                                      LINUX_REBOOT_CMD_CAD_OFF, NULL));
        TRY("settimeofday", ({
                    struct timeval tv;
                    gettimeofday(&tv, NULL);
                    settimeofday(&tv, NULL);
            }));
        TRY("clock_settime", ({
                    struct timespec ts;
                    clock_gettime(CLOCK_REALTIME, &ts);
                    clock_settime(CLOCK_REALTIME, &ts);
            }));
        TRY("adjtimex-set", ({
                    struct timex tx = { .modes = ADJ_OFFSET, .offset = 0 };
                    adjtimex(&tx);
            }));
        TRY("swapon", syscall(SYS_swapon, "/tmp/cove-probe-swap", 0));
        TRY("acct", syscall(SYS_acct, "/tmp/cove-probe-acct"));
        TRY("iopl", syscall(SYS_iopl, 3));
        TRY("ioperm", syscall(SYS_ioperm, 0x80, 1, 1));
        TRY("quotactl", syscall(SYS_quotactl, 0x800007 /* Q_SYNC */, NULL, 0, NULL));
        TRY("sethostname", sethostname("cove-probe", 10));

        /* keyrings, bpf, perf, userfaultfd, io_uring, file handles */
        TRY("keyctl", syscall(SYS_keyctl, KEYCTL_GET_KEYRING_ID, KEY_SPEC_USER_KEYRING, 0));
        TRY("add_key",
            syscall(SYS_add_key, "user", "cove-probe", "x", 1, KEY_SPEC_PROCESS_KEYRING));
        TRY("request_key", syscall(SYS_request_key, "user", "cove-probe", NULL, 0));
        TRY("bpf-prog-load", ({
                    union bpf_attr a;
                    memset(&a, 0, sizeof(a));
                    a.prog_type = BPF_PROG_TYPE_SOCKET_FILTER;
                    syscall(SYS_bpf, BPF_PROG_LOAD, &a, sizeof(a));
            }));
        TRY("bpf-map-create", ({
                    union bpf_attr a;
                    memset(&a, 0, sizeof(a));
                    a.map_type = BPF_MAP_TYPE_ARRAY;
                    a.key_size = 4;
                    a.value_size = 4;
                    a.max_entries = 1;
                    syscall(SYS_bpf, BPF_MAP_CREATE, &a, sizeof(a));
            }));
        TRY("perf_event_open", ({
                    struct perf_event_attr pe;
                    memset(&pe, 0, sizeof(pe));
                    pe.type = PERF_TYPE_SOFTWARE;
                    pe.size = sizeof(pe);
                    pe.config = PERF_COUNT_SW_CPU_CLOCK;
                    pe.exclude_kernel = 1;
                    syscall(SYS_perf_event_open, &pe, 0, -1, -1, 0);
            }));
        TRY("userfaultfd", syscall(SYS_userfaultfd, O_CLOEXEC));
        TRY("io_uring_setup", ({
                    struct io_uring_params p;
                    memset(&p, 0, sizeof(p));
                    syscall(SYS_io_uring_setup, 4, &p);
            }));
        TRY("io_uring_enter", syscall(SYS_io_uring_enter, -1, 0, 0, 0, NULL, 0));
        TRY("io_uring_register", syscall(SYS_io_uring_register, -1, 0, NULL, 0));
        TRY("open_by_handle_at", ({
                    struct {
                            struct file_handle fh;
                            unsigned char f[128];
                    } h;
                    memset(&h, 0, sizeof(h));
                    h.fh.handle_bytes = 8;
                    h.fh.handle_type = 1;
                    syscall(SYS_open_by_handle_at, AT_FDCWD, &h.fh, O_RDONLY);
            }));

        /* namespaces */
        TRY("unshare-user", unshare(CLONE_NEWUSER));
        TRY("unshare-mnt", unshare(CLONE_NEWNS));
        TRY("unshare-net", unshare(CLONE_NEWNET));
        TRY("clone-newuser", ({
                    long r = syscall(SYS_clone, CLONE_NEWUSER | SIGCHLD, 0, 0, 0, 0);
                    if (r == 0)
                            _exit(0);
                    if (r > 0)
                            waitpid((pid_t)r, NULL, 0);
                    r;
            }));
        TRY("clone3", ({
                    struct clone_args ca;
                    memset(&ca, 0, sizeof(ca));
                    ca.flags = CLONE_NEWUSER;
                    ca.exit_signal = SIGCHLD;
                    long r = syscall(SYS_clone3, &ca, sizeof(ca));
                    if (r == 0)
                            _exit(0);
                    if (r > 0)
                            waitpid((pid_t)r, NULL, 0);
                    r;
            }));
        TRY("setns-own-net", ({
                    int fd = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
                    long r = fd < 0 ? fd : setns(fd, 0);
                    if (fd >= 0)
                            close(fd);
                    r;
            }));

        /* sockets */
        TRY("socket-vsock", ({
                    int fd = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0);
                    if (fd >= 0)
                            close(fd);
                    fd;
            }));
        TRY("socket-raw", ({
                    int fd = socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, 1 /* ICMP */);
                    if (fd >= 0)
                            close(fd);
                    fd;
            }));
        TRY("socket-packet", ({
                    int fd = socket(17 /* AF_PACKET */, SOCK_RAW | SOCK_CLOEXEC, 0);
                    if (fd >= 0)
                            close(fd);
                    fd;
            }));

        /* init (PID 1) and the agent: no ptrace, no /proc/<pid>/{exe,fd,mem,root,ns} */
        proc_probes("init", 1);
        pid_t agent = find_agent();
        printf("agent-pid %d 0\n", (int)agent);
        if (agent > 0)
                proc_probes("agent", agent);

        /* the host's processes do not exist here */
        if (hostpid > 0) {
                TRY("kill-host-pid", kill(hostpid, 0));
                TRY("pidfd_open-host-pid", syscall(SYS_pidfd_open, hostpid, 0));
        }
        return 0;
}

/* CVE-2019-5736: with the agent dead (and being restarted), try to open the binaries that
 * PID 1 and every agent run, for writing and at all. */
static int probe_cve(long ms)
{
        pid_t agent = find_agent();
        long opened = 0, refused = 0;
        char errs[256] = "";
        struct timespec t0, t;

        if (agent > 0)
                (void)kill(agent, SIGKILL);
        clock_gettime(CLOCK_MONOTONIC, &t0);
        for (;;) {
                clock_gettime(CLOCK_MONOTONIC, &t);
                if ((t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000 > ms)
                        break;
                char path[64];
                pid_t pids[2] = { 1, find_agent() };
                static const char *const files[] = { "exe", "fd/3", "fd/4" };
                for (int p = 0; p < 2; p++) {
                        if (pids[p] <= 0)
                                continue;
                        for (size_t f = 0; f < 3; f++) {
                                snprintf(path, sizeof(path), "/proc/%d/%s", (int)pids[p], files[f]);
                                for (int mode = 0; mode < 2; mode++) {
                                        long r = open_close(path, mode ? O_WRONLY : O_RDONLY);
                                        if (r >= 0) {
                                                opened++;
                                                fprintf(stderr, "opened %s mode %d\n", path, mode);
                                        } else {
                                                refused++;
                                                char e[16];
                                                size_t l = strlen(errs);
                                                snprintf(e, sizeof(e), "%d,", errno);
                                                if (!strstr(errs, e))
                                                        snprintf(errs + l, sizeof(errs) - l, "%s",
                                                                 e);
                                        }
                                }
                        }
                }
        }
        printf("cve %ld %ld %s\n", opened, refused, errs[0] ? errs : "-");
        return 0;
}

static int probe_ptrace_child(void)
{
        pid_t c = fork();
        if (c == 0) {
                for (;;)
                        pause();
        }
        long r = ptrace(PTRACE_ATTACH, c, NULL, NULL);
        int e = errno;
        if (r == 0) {
                int status;
                waitpid(c, &status, 0);
                r = ptrace(PTRACE_PEEKUSER, c, NULL, NULL) == -1 && errno ? -1 : 0;
                e = errno;
                (void)ptrace(PTRACE_DETACH, c, NULL, NULL);
        }
        kill(c, SIGKILL);
        waitpid(c, NULL, 0);
        report("ptrace-child", r, e);
        return 0;
}

static int probe_forkbomb(long seconds)
{
        long n = 0;
        int e = 0;
        for (;;) {
                pid_t p = fork();
                if (p < 0) {
                        e = errno;
                        break;
                }
                if (p == 0) {
                        sleep((unsigned)seconds + 1);
                        _exit(0);
                }
                n++;
        }
        printf("forkbomb %ld %d\n", n, e);
        fflush(stdout);
        sleep((unsigned)seconds);
        kill(0, SIGKILL);
        return 0;
}

static int probe_diskbomb(const char *path)
{
        static char buf[1 << 20];
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        long mb = 0;
        int e = 0;
        if (fd < 0) {
                report("diskbomb", -1, errno);
                return 1;
        }
        memset(buf, 0xa5, sizeof(buf));
        for (;;) {
                ssize_t n = write(fd, buf, sizeof(buf));
                if (n < 0) {
                        e = errno;
                        break;
                }
                if (n < (ssize_t)sizeof(buf)) {
                        /* a short write: the next one reports why */
                        continue;
                }
                mb++;
        }
        if (fsync(fd) < 0 && !e)
                e = errno;
        close(fd);
        printf("diskbomb %ld %d\n", mb, e);
        return 0;
}

int main(int argc, char **argv)
{
        if (argc >= 2 && strcmp(argv[1], "all") == 0)
                return probe_all(argc >= 3 ? (pid_t)num(argv[2]) : 0);
        if (argc == 3 && strcmp(argv[1], "cve") == 0)
                return probe_cve(num(argv[2]));
        if (argc == 2 && strcmp(argv[1], "ptrace-child") == 0)
                return probe_ptrace_child();
        if (argc == 3 && strcmp(argv[1], "forkbomb") == 0)
                return probe_forkbomb(num(argv[2]));
        if (argc == 3 && strcmp(argv[1], "diskbomb") == 0)
                return probe_diskbomb(argv[2]);
        fprintf(stderr, "usage: cove-probe all [HOSTPID] | cve MS | ptrace-child | forkbomb S | "
                        "diskbomb PATH\n");
        return 2;
}
