/* SPDX-License-Identifier: MIT */
/*
 * ns.c — `cove-runtime create`: the parent side (cgroup, agent socket, clone3, go byte, result)
 * and the child's sequence up to execveat(init).
 *
 * Sync protocol between parent and child (one SOCK_SEQPACKET pair, CLOEXEC):
 *   parent → child   one byte "go" once the parent has set the child up from outside (with a
 *                    user namespace: uid_map/gid_map written), carrying as SCM_RIGHTS the
 *                    detached (idmapped) trees of every layer, then of every bind source
 *   child  → parent  nothing on success (the socket closes at exec: EOF), or one message
 *                    { int32 errnum; char message[] } followed by _exit(1)
 */
#include "runtime/setup.h"

#include "lib/buf.h"
#include "lib/fdutil.h"
#include "lib/macro.h"
#include "lib/sigreset.h"
#include "runtime/cgroup.h"
#include "runtime/fsutil.h"
#include "runtime/phase.h"
#include "runtime/sealed.h"

#include <fcntl.h>
#include <inttypes.h>
#include <linux/close_range.h>
#include <linux/sched.h>
#include <net/if.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <grp.h>

#include "lib/banned.h"

#define SANDBOX_NS_FLAGS                                                                           \
        (CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWNET | CLONE_NEWCGROUP)
/* Trees handed over with the go byte: at most every layer and every bind (< SCM_MAX_FD). */
#define GO_FDS_MAX (SANDBOX_MAX_LAYERS + SANDBOX_MAX_BINDS)
/* The child keeps these fd numbers: 3 agent listen socket, 4 agent binary (sealed memfd). */
#define CHILD_FD_LISTEN  3
#define CHILD_FD_AGENT   4
#define CHILD_FD_MIN     5 /* everything else the child holds sits at or above this */
#define CHILD_TIMEOUT_MS 30000

struct child_fds {
        int sync;   /* child's end of the sync socket */
        int listen; /* agent listening socket */
        int agent;  /* sealed agent binary */
        int init;   /* sealed init binary */
};

struct child_msg {
        int32_t errnum;
        char message[COVE_ERR_MSG_MAX];
};

/* ---- child ---------------------------------------------------------------------------- */

static _Noreturn void child_die(int sync, struct cove_err *e)
{
        struct child_msg m = { .errnum = e ? e->errnum : EIO };
        size_t l = 0;
        if (e && e->msg) {
                l = MIN(strlen(e->msg), sizeof(m.message) - 1);
                memcpy(m.message, e->msg, l);
        }
        (void)!send(sync, &m, offsetof(struct child_msg, message) + l, MSG_NOSIGNAL);
        _exit(1);
}

static int loopback_up(struct cove_err **err)
{
        struct ifreq ifr = { 0 };
        cleanup_close int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (s < 0)
                return cove_err_set(err, errno, "bring up 'lo': socket: %m");
        memcpy(ifr.ifr_name, "lo", 3);
        if (ioctl(s, SIOCGIFFLAGS, &ifr) < 0)
                return cove_err_set(err, errno, "bring up 'lo': get flags: %m");
        ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
        if (ioctl(s, SIOCSIFFLAGS, &ifr) < 0)
                return cove_err_set(err, errno, "bring up 'lo': %m");
        return 0;
}

/* sudo and friends resolve the hostname: give the sandbox ID an /etc/hosts line (after
 * pivot_root, so paths resolve inside the sandbox; a copy-up of one small file). */
static int hosts_add_self(const char *id, struct cove_err **err)
{
        cleanup_free char *text = NULL;
        cleanup_free char *line = xasprintf("127.0.1.1\t%s\n", id);
        int r = read_small_file("/etc/hosts", 1024 * 1024, &text, NULL);
        if (r == -ENOENT || r == -ENOTDIR)
                return 0;
        if (r < 0)
                return cove_err_set(err, -r, "read /etc/hosts: %m");
        if (strstr(text, line))
                return 0;
        cleanup_close int fd = open("/etc/hosts", O_WRONLY | O_APPEND | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return cove_err_set(err, errno, "open /etc/hosts: %m");
        if (text[0] && text[strlen(text) - 1] != '\n' && write_full(fd, "\n", 1) < 0)
                return cove_err_set(err, errno, "write /etc/hosts: %m");
        r = write_full(fd, line, strlen(line));
        if (r < 0)
                return cove_err_set(err, -r, "write /etc/hosts: %m");
        return 0;
}

static int stdio_devnull(struct cove_err **err)
{
        /* The helper's stdio are host files; inside, /proc/self/fd/N would lead back to them. */
        cleanup_close int fd = open("/dev/null", O_RDWR | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return cove_err_set(err, errno, "open /dev/null: %m");
        for (int i = 0; i < 3; i++)
                if (dup2(fd, i) < 0)
                        return cove_err_set(err, errno, "dup2 /dev/null: %m");
        return 0;
}

/* Whatever the helper inherited (coved under nohup ignores SIGHUP; a shell may block signals)
 * survives execve: give init, and through it every process of the sandbox, default dispositions
 * and an empty blocked mask. */
static int signals_reset(struct cove_err **err)
{
        int r = sig_reset_all();
        if (r < 0)
                return cove_err_set(err, -r, "reset signal dispositions: %m");
        return 0;
}

static int child_fd_layout(const struct child_fds *f, struct cove_err **err)
{
        /* All of f are >= CHILD_FD_MIN (parent's doing), so these dup2s clobber nothing we
         * need; dup2 clears CLOEXEC on 3 and 4, the rest stays CLOEXEC. */
        if (dup2(f->listen, CHILD_FD_LISTEN) < 0 || dup2(f->agent, CHILD_FD_AGENT) < 0)
                return cove_err_set(err, errno, "dup2: %m");
        if (fd_cloexec_from(CHILD_FD_MIN) < 0)
                return cove_err_set(err, errno, "mark fds close-on-exec: %m");
        return 0;
}

/* Waits for the go byte and takes the trees that come with it (close-on-exec). Returns -1
 * when the parent is gone (nothing to report to). */
static int child_wait_go(int sync, const struct sandbox_config *c, struct sandbox_mounts *m,
                         struct cove_err **err)
{
        size_t nl = strv_length(c->layers), want = nl + c->n_binds;
        union {
                char buf[CMSG_SPACE(GO_FDS_MAX * sizeof(int))];
                struct cmsghdr align;
        } ctl;
        char go;
        struct iovec iov = { .iov_base = &go, .iov_len = 1 };
        struct msghdr msg = { .msg_iov = &iov,
                              .msg_iovlen = 1,
                              .msg_control = ctl.buf,
                              .msg_controllen = sizeof(ctl.buf) };
        ssize_t n = TEMP_FAILURE_RETRY(recvmsg(sync, &msg, MSG_CMSG_CLOEXEC));
        if (n != 1)
                return -1; /* parent gone or gave up */
        struct cmsghdr *cm = CMSG_FIRSTHDR(&msg);
        size_t got = 0;
        if (cm && cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS)
                got = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        if ((msg.msg_flags & MSG_CTRUNC) || got != want)
                return cove_err_set(err, EPROTO, "go message carried %zu mounts, not %zu", got,
                                    want);
        const int *fds = (const int *)(const void *)CMSG_DATA(cm);
        for (size_t i = 0; i < want; i++) {
                if (i < nl)
                        m->layers[i] = fds[i];
                else
                        m->binds[i - nl] = fds[i];
        }
        return 0;
}

/* The child's cwd is its copy of <state_dir>/rootfs (the parent's cwd at clone, translated
 * into the new mount namespace by the kernel); the directories it mounts on are opened from
 * there, so they name mounts of its own namespace. */
static int child_open_dirs(const struct sandbox_config *c, struct sandbox_mounts *m,
                           struct cove_err **err)
{
        m->rootfs = open(".", O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (m->rootfs < 0)
                return cove_err_set(err, errno, "open '%s/rootfs': %m", c->state_dir);
        if (c->disk.image || c->upper_dir)
                return 0;
        m->upper = open("../upper", O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (m->upper < 0)
                return cove_err_set(err, errno, "open '%s/upper': %m", c->state_dir);
        m->work = open("../work", O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (m->work < 0)
                return cove_err_set(err, errno, "open '%s/work': %m", c->state_dir);
        return 0;
}

/* In a new user namespace the child still carries the host ids it was cloned with (host root,
 * unmapped there): once the maps exist, become the namespace's root, without supplementary
 * groups, so that what it creates (the overlay's work dir first) is owned by mapped ids. */
static int child_become_root(const struct sandbox_config *c, struct cove_err **err)
{
        if (!c->userns.set)
                return 0;
        if (setgroups(0, NULL) < 0)
                return cove_err_set(err, errno, "setgroups in the user namespace: %m");
        if (setresgid(0, 0, 0) < 0 || setresuid(0, 0, 0) < 0)
                return cove_err_set(err, errno, "become root of the user namespace: %m");
        return 0;
}

static _Noreturn void child_main(const struct sandbox_config *c, const struct child_fds *f,
                                 struct sandbox_mounts *m)
{
        struct cove_err *e = NULL;

        /* Before anything else: 3 and 4 take their final fds, so the trees that come with the
         * go byte land above them. */
        if (child_fd_layout(f, &e) < 0)
                child_die(f->sync, e);
        int r = child_wait_go(f->sync, c, m, &e);
        if (r == -1)
                _exit(1);
        if (r < 0)
                child_die(f->sync, e);
        umask(0022);
        if (child_become_root(c, &e) < 0 || signals_reset(&e) < 0 || child_open_dirs(c, m, &e) < 0)
                child_die(f->sync, e);
        if (rootfs_setup(c, m, &e) < 0)
                child_die(f->sync, e);
        if (sethostname(c->id, strlen(c->id)) < 0) {
                (void)cove_err_set(&e, errno, "sethostname '%s': %m", c->id);
                child_die(f->sync, e);
        }
        if (hosts_add_self(c->id, &e) < 0 || loopback_up(&e) < 0 || stdio_devnull(&e) < 0)
                child_die(f->sync, e);
        if (seed_files(c, &e) < 0)
                child_die(f->sync, e);
        if (caps_drop_bounding(&e) < 0 || seccomp_install(&e) < 0)
                child_die(f->sync, e);

        char *argv[] = { (char *)"cove-init", NULL };
        char *envp[] = { (char *)"PATH=" SANDBOX_PATH, (char *)"HOME=/root",
                         (char *)"container=cove", NULL };
        syscall(SYS_execveat, f->init, "", argv, envp, AT_EMPTY_PATH);
        (void)cove_err_set(&e, errno, "exec init '%s': %m", c->init);
        child_die(f->sync, e);
}

/* ---- parent --------------------------------------------------------------------------- */

static int fd_move_high(int *fd, struct cove_err **err)
{
        if (*fd >= CHILD_FD_MIN)
                return 0;
        int n = fcntl(*fd, F_DUPFD_CLOEXEC, CHILD_FD_MIN);
        if (n < 0)
                return cove_err_set(err, errno, "dup: %m");
        (void)close(*fd);
        *fd = n;
        return 0;
}

static int listen_socket(const char *path, struct cove_err **err)
{
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        cleanup_close int fd = -1;

        if (strlen(path) >= sizeof(sa.sun_path))
                return cove_err_set(err, ENAMETOOLONG, "agent socket '%s': path too long", path);
        memcpy(sa.sun_path, path, strlen(path) + 1);
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return cove_err_set(err, errno, "agent socket: %m");
        if (unlink(path) < 0 && errno != ENOENT)
                return cove_err_set(err, errno, "unlink stale agent socket '%s': %m", path);
        /* umask makes the socket inode 0600 at bind (no window with a wider mode). */
        mode_t old = umask(0177);
        int r = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
        int e = errno;
        umask(old);
        if (r < 0)
                return cove_err_set(err, e, "bind agent socket '%s': %m", path);
        if (chmod(path, 0600) < 0 || listen(fd, SOMAXCONN) < 0) {
                e = errno;
                (void)unlink(path);
                return cove_err_set(err, e, "listen on agent socket '%s': %m", path);
        }
        return TAKE_FD(fd);
}

static int write_map(pid_t pid, const char *file, uint32_t inside_to, uint32_t count,
                     struct cove_err **err)
{
        char path[32 + DECIMAL_STR_MAX(pid_t)], line[3 * DECIMAL_STR_MAX(uint32_t) + 4];
        (void)snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, file);
        (void)snprintf(line, sizeof(line), "0 %" PRIu32 " %" PRIu32 "\n", inside_to, count);
        int r = write_string_file(path, line);
        if (r < 0)
                return cove_err_set(err, -r, "write '%s' to '%s': %m", line, path);
        return 0;
}

/* From outside, before the go byte: with a user namespace, the child's id maps (written by
 * us, host root, so setgroups stays allowed: sudo and the agent need it) and an fd of the
 * namespace for idmapped mounts (*ret_userns, else -1). */
static int prepare_child(const struct sandbox_config *c, pid_t pid, int *ret_userns,
                         struct cove_err **err)
{
        char path[32 + DECIMAL_STR_MAX(pid_t)];
        int r;

        *ret_userns = -1;
        if (!c->userns.set)
                return 0;
        if ((r = write_map(pid, "uid_map", c->userns.uid, c->userns.count, err)) < 0 ||
            (r = write_map(pid, "gid_map", c->userns.gid, c->userns.count, err)) < 0)
                return cove_err_wrap(err, "user namespace of the sandbox");
        (void)snprintf(path, sizeof(path), "/proc/%d/ns/user", (int)pid);
        *ret_userns = open(path, O_RDONLY | O_CLOEXEC);
        if (*ret_userns < 0)
                return cove_err_set(err, errno, "open '%s': %m", path);
        return 0;
}

static int send_go(int sync, const struct sandbox_config *c, const struct sandbox_mounts *m,
                   struct cove_err **err)
{
        size_t nl = strv_length(c->layers), n = nl + c->n_binds;
        union {
                char buf[CMSG_SPACE(GO_FDS_MAX * sizeof(int))];
                struct cmsghdr align;
        } ctl = { 0 };
        struct iovec iov = { .iov_base = (char *)"g", .iov_len = 1 };
        struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };
        if (n > 0) {
                msg.msg_control = ctl.buf;
                msg.msg_controllen = CMSG_SPACE(n * sizeof(int));
                struct cmsghdr *cm = CMSG_FIRSTHDR(&msg);
                cm->cmsg_level = SOL_SOCKET;
                cm->cmsg_type = SCM_RIGHTS;
                cm->cmsg_len = CMSG_LEN(n * sizeof(int));
                int *fds = (int *)(void *)CMSG_DATA(cm);
                for (size_t i = 0; i < n; i++)
                        fds[i] = i < nl ? m->layers[i] : m->binds[i - nl];
        }
        if (TEMP_FAILURE_RETRY(sendmsg(sync, &msg, MSG_NOSIGNAL)) != 1)
                return cove_err_set(err, errno, "send go byte: %m");
        return 0;
}

static int check_layers(const struct sandbox_config *c, struct cove_err **err)
{
        struct stat st;
        for (size_t i = 0; c->layers[i]; i++) {
                if (stat(c->layers[i], &st) < 0)
                        return cove_err_set(err, errno, "overlay layer '%s': %m", c->layers[i]);
                if (!S_ISDIR(st.st_mode))
                        return cove_err_set(err, ENOTDIR, "overlay layer '%s': %m", c->layers[i]);
        }
        return 0;
}

/* Creates rootfs/ (and upper/, work/ without a disk image or an upper_dir) under the state
 * dir; records which were new in *created. */
static int make_state_dirs(const struct sandbox_config *c, unsigned *created, struct cove_err **err)
{
        static const char *const names[] = { "rootfs", "upper", "work" };
        for (size_t i = 0; i < (c->disk.image || c->upper_dir ? 1 : ARRAY_SIZE(names)); i++) {
                cleanup_free char *p = xasprintf("%s/%s", c->state_dir, names[i]);
                if (mkdir(p, 0755) == 0)
                        *created |= 1U << i;
                else if (errno != EEXIST)
                        return cove_err_set(err, errno, "mkdir '%s': %m", p);
        }
        return 0;
}

static void remove_state_dirs(const struct sandbox_config *c, unsigned created)
{
        static const char *const names[] = { "rootfs", "upper", "work" };
        for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
                if (!(created & (1U << i)))
                        continue;
                cleanup_free char *p = xasprintf("%s/%s", c->state_dir, names[i]);
                (void)rm_rf(p, NULL);
        }
}

static int wait_child_result(int sync, pid_t pid, struct cove_err **err)
{
        struct pollfd pfd = { .fd = sync, .events = POLLIN };
        struct child_msg m;
        int r = TEMP_FAILURE_RETRY(poll(&pfd, 1, CHILD_TIMEOUT_MS));
        if (r == 0)
                return cove_err_set(err, ETIMEDOUT, "sandbox setup did not finish in %d ms",
                                    CHILD_TIMEOUT_MS);
        if (r < 0)
                return cove_err_set(err, errno, "poll sync socket: %m");
        ssize_t n = TEMP_FAILURE_RETRY(recv(sync, &m, sizeof(m), 0));
        if (n < 0)
                return cove_err_set(err, errno, "read sync socket: %m");
        if (n == 0) {
                /* EOF: exec happened, or the child died before it could say why. */
                int status;
                pid_t w = waitpid(pid, &status, WNOHANG);
                if (w == pid)
                        return cove_err_set(err, EIO,
                                            "sandbox init exited during setup (status 0x%x)",
                                            (unsigned)status);
                return 0;
        }
        if ((size_t)n < offsetof(struct child_msg, message))
                return cove_err_set(err, EPROTO, "short message on sync socket");
        size_t l = (size_t)n - offsetof(struct child_msg, message);
        m.message[MIN(l, sizeof(m.message) - 1)] = '\0';
        return cove_err_set(err, m.errnum > 0 ? m.errnum : EIO, "%s", m.message);
}

/* The kernel refuses a new user namespace to a chrooted process (EPERM), so coved run in a
 * chroot (a build root, a minimal test root) would get no sandbox. Then, for the clone only, the
 * helper steps out to its mount namespace's root with the classic move of a privileged process
 * (chroot into a subdirectory, climb out of it with "..", chroot there), keeping the cwd at
 * rootfs/ as seen from its chroot; chroot_return() puts it back. The child needs no path of
 * the chroot: everything from the host reaches it as an fd or through its cwd.
 * *ret_root: the chroot's root (O_PATH), for chroot_return(). */
static int chroot_leave(const char *rootfs, int *ret_root, struct cove_err **err)
{
        cleanup_close int root = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
        struct stat here, up;

        if (root < 0)
                return cove_err_set(err, errno, "leave chroot: open '/': %m");
        if (chroot(rootfs) < 0 || fchdir(root) < 0)
                return cove_err_set(err, errno, "leave chroot: chroot '%s': %m", rootfs);
        for (int i = 0;; i++) {
                if (i == 4096 || stat(".", &here) < 0 || chdir("..") < 0 || stat(".", &up) < 0)
                        return cove_err_set(err, errno ? errno : ELOOP,
                                            "leave chroot: find the namespace's root: %m");
                if (here.st_dev == up.st_dev && here.st_ino == up.st_ino)
                        break;
        }
        if (chroot(".") < 0 || fchdir(root) < 0 || chdir(rootfs + 1) < 0)
                return cove_err_set(err, errno, "leave chroot: %m");
        *ret_root = TAKE_FD(root);
        return 0;
}

static void chroot_return(int root)
{
        if (fchdir(root) < 0 || chroot(".") < 0)
                abort(); /* root, with the fd of a directory we were in: cannot fail */
}

/* The init and agent the sandbox runs: coved's sealed copies (checked), or our own. */
static int binaries_open(const struct sandbox_config *c, const struct runtime_binaries *bins,
                         int *ret_init, int *ret_agent, struct cove_err **err)
{
        int r;

        if (!bins)
                return (r = sealed_exec_copy(c->init, "cove-init", ret_init, err)) < 0
                               ? r
                               : sealed_exec_copy(c->agent, "cove-agent", ret_agent, err);
        if ((r = sealed_exec_check(bins->init_fd, "init", err)) < 0 ||
            (r = sealed_exec_check(bins->agent_fd, "agent", err)) < 0)
                return r;
        *ret_init = fcntl(bins->init_fd, F_DUPFD_CLOEXEC, CHILD_FD_MIN);
        if (*ret_init < 0)
                return cove_err_set(err, errno, "dup init binary fd: %m");
        *ret_agent = fcntl(bins->agent_fd, F_DUPFD_CLOEXEC, CHILD_FD_MIN);
        if (*ret_agent < 0)
                return cove_err_set(err, errno, "dup agent binary fd: %m");
        return 0;
}

/*
 * The helper joins the sandbox's cgroup before the clone, so the child is born inside (its
 * cgroup namespace root is the sandbox's). A write to cgroup.procs takes the kernel's
 * cgroup_threadgroup_rwsem for writing, which waits for an RCU grace period (~5–10 ms here,
 * most of it idle waiting; only the first hierarchy's write pays it, docs/decisions.md).
 * So a second thread does the join while the first prepares the socket, binaries, volumes
 * and the disk image (~3–4 ms of work), and the clone waits for the join. The joiner writes
 * the helper's pid, which moves both threads; it is gone (joined) before the clone.
 */
struct cgroup_joiner {
        pthread_t thread;
        bool threaded, waited;
        const char *name;
        int r;
        struct cove_err *err;
};

static void *joiner_main(void *ud)
{
        struct cgroup_joiner *j = ud;
        j->r = cgroup_join(j->name, 0, &j->err);
        return NULL;
}

/* Starts joining; joins at once when no thread can be made. */
static void joiner_start(struct cgroup_joiner *j, const char *name)
{
        j->name = name;
        j->threaded = pthread_create(&j->thread, NULL, joiner_main, j) == 0;
        if (!j->threaded)
                (void)joiner_main(j);
}

/* Waits for the join: 0, or its error (into *err, or dropped when err is NULL). */
static int joiner_wait(struct cgroup_joiner *j, struct cove_err **err)
{
        if (j->threaded && !j->waited) {
                (void)pthread_join(j->thread, NULL);
                j->waited = true;
        }
        if (j->r < 0) {
                if (err && !*err)
                        *err = TAKE_PTR(j->err);
                cove_err_free(&j->err);
        }
        return j->r;
}

int sandbox_run(const struct sandbox_config *c, const struct runtime_binaries *bins,
                struct runtime_result *ret, struct cove_err **err)
{
        struct cgroup_joiner joiner = { 0 };
        cleanup_close int sync_parent = -1, listen_fd = -1, agent_fd = -1, init_fd = -1;
        cleanup_close int sync_child = -1, userns_fd = -1;
        cleanup_free char *rootfs = NULL;
        struct cgroup_limits lim = { c->cpu_count, c->memory_mb, c->pids_max, c->io_weight,
                                     c->cpu_weight };
        struct sandbox_mounts m;
        bool cg_created = false, joined = false, sock_created = false;
        unsigned dirs_created = 0;
        pid_t pid = -1;
        int sv[2], r;

        mounts_init(&m, c);
        r = check_layers(c, err);
        if (r < 0)
                goto fail;
        r = make_state_dirs(c, &dirs_created, err);
        if (r < 0)
                goto fail;
        rootfs = xasprintf("%s/rootfs", c->state_dir);
        phase_mark("state_dirs");
        r = cgroup_create(c->cgroup_name, &lim, err);
        if (r < 0)
                goto fail;
        cg_created = true;
        phase_mark("cgroup.limits");
        /* Join (in the background) so the child is born inside; see struct cgroup_joiner. */
        joiner_start(&joiner, c->cgroup_name);
        joined = true;
        listen_fd = listen_socket(c->agent_socket, err);
        if (listen_fd < 0) {
                r = listen_fd;
                goto fail;
        }
        sock_created = true;
        r = binaries_open(c, bins, &init_fd, &agent_fd, err);
        if (r < 0)
                goto fail;
        r = volumes_open(c, err);
        for (size_t i = 0; r >= 0 && i < c->n_volumes; i++)
                r = fd_move_high(&c->volumes[i].mnt_fd, err);
        if (r < 0)
                goto fail;
        phase_mark("socket+binaries+volumes");
        r = mounts_prepare_host(c, &m, err);
        if (r < 0)
                goto fail;
        phase_mark("disk");
        if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
                r = cove_err_set(err, errno, "sync socketpair: %m");
                goto fail;
        }
        sync_parent = sv[0];
        sync_child = sv[1];
        if ((r = fd_move_high(&listen_fd, err)) < 0 || (r = fd_move_high(&agent_fd, err)) < 0 ||
            (r = fd_move_high(&init_fd, err)) < 0 || (r = fd_move_high(&sync_child, err)) < 0 ||
            (r = fd_move_high(&sync_parent, err)) < 0)
                goto fail;
        if (m.disk >= 0 && (r = fd_move_high(&m.disk, err)) < 0)
                goto fail;
        r = joiner_wait(&joiner, err);
        phase_mark("cgroup.join.wait");
        if (r < 0)
                goto fail;
        /* The child starts in its copy of rootfs/ (see child_open_dirs). */
        if (chdir(rootfs) < 0) {
                r = cove_err_set(err, errno, "chdir '%s': %m", rootfs);
                goto fail;
        }

        struct clone_args ca = {
                .flags = SANDBOX_NS_FLAGS | (c->userns.set ? CLONE_NEWUSER : 0),
                .exit_signal = SIGCHLD,
        };
        pid = (pid_t)syscall(SYS_clone3, &ca, sizeof(ca));
        if (pid < 0 && errno == EPERM && c->userns.set) {
                /* In a chroot: step out of it for the clone, then once more. */
                cleanup_close int chroot_root = -1;
                if ((r = chroot_leave(rootfs, &chroot_root, err)) < 0)
                        goto fail;
                pid = (pid_t)syscall(SYS_clone3, &ca, sizeof(ca));
                int e = errno;
                if (pid != 0)
                        chroot_return(chroot_root);
                errno = e;
        }
        if (pid < 0) {
                r = cove_err_set(err, errno, "clone3: %m");
                goto fail;
        }
        if (pid == 0) {
                struct child_fds f = { sync_child, listen_fd, agent_fd, init_fd };
                child_main(c, &f, &m);
        }
        (void)close(TAKE_FD(sync_child));
        (void)!chdir("/");
        phase_mark("clone");

        r = prepare_child(c, pid, &userns_fd, err);
        if (r < 0)
                goto fail;
        phase_mark("userns_map");
        r = mounts_prepare_trees(c, userns_fd, &m, err);
        if (r >= 0)
                r = volumes_idmap(c, userns_fd, err);
        if (r < 0)
                goto fail;
        phase_mark("idmap");
        r = send_go(sync_parent, c, &m, err);
        if (r < 0)
                goto fail;
        /* The child holds its own copies now (or the mounts go with it). */
        mounts_close(&m, c);
        volumes_close(c);
        r = wait_child_result(sync_parent, pid, err);
        if (r < 0)
                goto fail;
        phase_mark("child_mounts+exec");
        struct runtime_result res = { .pid = pid };
        r = proc_starttime(pid, &res.starttime);
        if (r < 0) {
                r = cove_err_set(err, -r, "start time of init %d: %m", (int)pid);
                goto fail;
        }
        *ret = res;
        return 0;

fail:
        if (joined)
                (void)joiner_wait(&joiner, NULL);
        mounts_close(&m, c);
        volumes_close(c);
        if (pid > 0) {
                (void)kill(pid, SIGKILL);
                (void)TEMP_FAILURE_RETRY(waitpid(pid, NULL, 0));
        }
        /* Never kill through a cgroup we could not leave: we would be among the killed. */
        bool left = !joined || cgroup_leave(NULL) >= 0;
        if (cg_created && left) {
                (void)cgroup_kill_all(c->cgroup_name, NULL);
                (void)cgroup_destroy(c->cgroup_name, NULL);
        }
        if (sock_created)
                (void)unlink(c->agent_socket);
        remove_state_dirs(c, dirs_created);
        return cove_err_wrap(err, "create sandbox '%s'", c->id);
}
