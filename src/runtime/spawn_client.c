/* SPDX-License-Identifier: MIT */
/*
 * spawn_client.c — the spawn of cove-runtime (async-signal-safe child, git run-command.c
 * pattern, started like posix_spawn: clone(CLONE_VM | CLONE_VFORK), so coved's page tables
 * are never copied), the one JSON result message, and process identity checks.
 */
#include "runtime/spawn_client.h"

#include "lib/fdutil.h"
#include "lib/json.h"
#include "lib/macro.h"
#include "lib/parse.h"
#include "lib/timeutil.h"

#include <fcntl.h>
#include <linux/close_range.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>

#include "lib/banned.h"

#define RESULT_MSG_MAX 4096

/* Async-signal-safe: report errno through the pipe and die. */
static _Noreturn void child_fail(int fd)
{
        int e = errno;
        (void)!write(fd, &e, sizeof(e));
        _exit(127);
}

/* The helper's fds: 3 sync socket, 4 and 5 the sealed binaries when given. */
#define HELPER_FD_SYNC  3
#define HELPER_FD_INIT  4
#define HELPER_FD_AGENT 5
#define HELPER_FD_MIN   6 /* every fd the child dup2s from sits at or above this */

static _Noreturn void spawn_child(int sync_fd, int devnull, int errpipe, int init_fd, int agent_fd,
                                  char *const argv[])
{
        sigset_t all;
        struct sigaction dfl = { .sa_handler = SIG_DFL };

        /* coved may block signals for its signalfd and ignore SIGPIPE: give the helper a clean
         * slate (both survive exec otherwise). */
        for (int s = 1; s < NSIG; s++)
                (void)sigaction(s, &dfl, NULL);
        /* coved raised its own open-file limit for its connections; sandboxes get the one
         * coved was started with. */
        fd_limit_restore();
        sigemptyset(&all);
        if (sigprocmask(SIG_SETMASK, &all, NULL) < 0)
                child_fail(errpipe);
        if (dup2(devnull, STDIN_FILENO) < 0)
                child_fail(errpipe);
        /* Every source fd is >= HELPER_FD_MIN, so no dup2 clobbers another's source; the
         * copies are not CLOEXEC. */
        if (dup2(sync_fd, HELPER_FD_SYNC) < 0)
                child_fail(errpipe);
        if (init_fd >= 0 &&
            (dup2(init_fd, HELPER_FD_INIT) < 0 || dup2(agent_fd, HELPER_FD_AGENT) < 0))
                child_fail(errpipe);
        if (syscall(SYS_close_range, init_fd >= 0 ? HELPER_FD_MIN : HELPER_FD_INIT, ~0U,
                    CLOSE_RANGE_CLOEXEC) < 0 &&
            errno != ENOSYS)
                child_fail(errpipe);
        execv(argv[0], argv);
        child_fail(errpipe);
}

struct spawn_args {
        int sync_fd, devnull, errpipe, init_fd, agent_fd;
        char *const *argv;
};

static int spawn_child_fn(void *ud)
{
        const struct spawn_args *a = ud;
        spawn_child(a->sync_fd, a->devnull, a->errpipe, a->init_fd, a->agent_fd, a->argv);
}

/* The child shares coved's memory until it execs (CLONE_VM | CLONE_VFORK: this thread waits
 * for that, coved's others run on), so nothing of coved's address space is copied; that copy
 * was the largest part of a fork() of a big multi-threaded coved, and fork() write-locks
 * coved's memory map meanwhile (other threads' page faults wait). Every signal stays blocked
 * across the clone: the child resets every disposition before it unblocks them, so no handler
 * of coved's ever runs on coved's memory in the child. The child touches only its own stack
 * and errno (this thread's, unused by it until clone returns). */
#define SPAWN_STACK_SIZE (64 * 1024)

#if defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer) ||                         \
        __has_feature(memory_sanitizer)
#define SPAWN_UNDER_SANITIZER 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define SPAWN_UNDER_SANITIZER 1
#endif

static pid_t spawn_vfork(const struct spawn_args *a)
{
#ifdef SPAWN_UNDER_SANITIZER
        /* A sanitizer's runtime tracks threads and their stacks: a CLONE_VM child on a stack
         * of ours would confuse it. Sanitized builds are for tests; they fork. */
        pid_t p = fork();
        if (p == 0)
                (void)spawn_child_fn((void *)a);
        return p;
#endif
        sigset_t all, old;
        void *stack = xmalloc(SPAWN_STACK_SIZE);
        (void)sigfillset(&all);
        (void)pthread_sigmask(SIG_SETMASK, &all, &old);
        /* the stack grows down on every architecture Cove runs on */
        pid_t pid = clone(spawn_child_fn, (char *)stack + SPAWN_STACK_SIZE,
                          CLONE_VM | CLONE_VFORK | SIGCHLD, (void *)a);
        int e = errno;
        (void)pthread_sigmask(SIG_SETMASK, &old, NULL);
        free(stack);
        errno = e;
        return pid;
}

static int move_above(int *fd)
{
        if (*fd >= HELPER_FD_MIN)
                return 0;
        int n = fcntl(*fd, F_DUPFD_CLOEXEC, HELPER_FD_MIN);
        if (n < 0)
                return -errno;
        (void)close(*fd);
        *fd = n;
        return 0;
}

static int wait_helper(pid_t pid, int *ret_status)
{
        int status = 0;
        if (TEMP_FAILURE_RETRY(waitpid(pid, &status, 0)) < 0)
                return -errno;
        *ret_status = status;
        return 0;
}

static int parse_result(const char *msg, size_t len, struct runtime_result *ret,
                        struct cove_err **err)
{
        json_t *j = NULL;
        int r = json_parse(msg, len, false, &j, err);
        if (r < 0)
                return cove_err_wrap(err, "cove-runtime answer");
        json_t *ok = json_object_get(j, "ok");
        int64_t pid, st, en;
        if (json_is_true(ok)) {
                if (!json_get_integer(json_object_get(j, "pid"), &pid) || pid <= 0 ||
                    pid > INT32_MAX || !json_get_integer(json_object_get(j, "starttime"), &st) ||
                    st < 0) {
                        json_decref(j);
                        return cove_err_set(err, EPROTO, "cove-runtime answer lacks pid/starttime");
                }
                ret->pid = (pid_t)pid;
                ret->starttime = (uint64_t)st;
                const char *k;
                json_t *v;
                json_object_foreach (json_object_get(j, "phases_us"), k, v) {
                        int64_t us;
                        if (ret->n_phases >= PHASES_MAX || !json_get_integer(v, &us) || us < 0)
                                continue;
                        struct phase *p = &ret->phases[ret->n_phases++];
                        (void)snprintf(p->name, sizeof(p->name), "%s", k);
                        p->us = (uint64_t)us;
                }
                json_decref(j);
                return 0;
        }
        const char *m = json_string_value(json_object_get(j, "message"));
        if (!json_get_integer(json_object_get(j, "errno"), &en) || en <= 0 || en > 4095)
                en = EIO;
        r = cove_err_set(err, (int)en, "%s", m ? m : "cove-runtime failed without a message");
        json_decref(j);
        return r;
}

int runtime_create(const char *helper, const char *config_path, const struct runtime_binaries *bins,
                   struct runtime_result *ret, struct cove_err **err)
{
        cleanup_close int sync_parent = -1, sync_child = -1, devnull = -1, ep_r = -1, ep_w = -1;
        cleanup_close int init_fd = -1, agent_fd = -1;
        char *argv_plain[] = { (char *)helper, (char *)"create", (char *)config_path, NULL };
        char *argv_fds[] = { (char *)helper,      (char *)"create",
                             (char *)config_path, (char *)"--init-fd",
                             (char *)"4",         (char *)"--agent-fd",
                             (char *)"5",         NULL };
        char **argv = argv_plain;
        int sv[2], ep[2], status = 0, child_errno = 0, r;
        char msg[RESULT_MSG_MAX + 1];
        ssize_t n;
        pid_t pid;

        if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
                return cove_err_set(err, errno, "runtime: socketpair: %m");
        sync_parent = sv[0];
        sync_child = sv[1];
        if (pipe2(ep, O_CLOEXEC) < 0)
                return cove_err_set(err, errno, "runtime: pipe: %m");
        ep_r = ep[0];
        ep_w = ep[1];
        devnull = open("/dev/null", O_RDWR | O_CLOEXEC | O_NOCTTY);
        if (devnull < 0)
                return cove_err_set(err, errno, "runtime: open /dev/null: %m");
        if (bins && bins->init_fd >= 0 && bins->agent_fd >= 0) {
                /* Private copies at >= HELPER_FD_MIN; the caller's fds stay untouched. */
                init_fd = fcntl(bins->init_fd, F_DUPFD_CLOEXEC, HELPER_FD_MIN);
                if (init_fd < 0)
                        return cove_err_set(err, errno, "runtime: dup init binary fd: %m");
                agent_fd = fcntl(bins->agent_fd, F_DUPFD_CLOEXEC, HELPER_FD_MIN);
                if (agent_fd < 0)
                        return cove_err_set(err, errno, "runtime: dup agent binary fd: %m");
                argv = argv_fds;
        }
        /* Nothing the child needs may sit on fd 0..5, which it overwrites. */
        if ((r = move_above(&sync_parent)) < 0 || (r = move_above(&sync_child)) < 0 ||
            (r = move_above(&ep_r)) < 0 || (r = move_above(&ep_w)) < 0 ||
            (r = move_above(&devnull)) < 0)
                return cove_err_set(err, -r, "runtime: dup: %m");

        int64_t t0_us = time_mono_us();
        struct spawn_args sa = { sync_child, devnull, ep_w, init_fd, agent_fd, argv };
        pid = spawn_vfork(&sa);
        if (pid < 0)
                return cove_err_set(err, errno, "runtime: clone: %m");

        (void)close(TAKE_FD(sync_child));
        (void)close(TAKE_FD(ep_w));
        n = read_full(ep_r, &child_errno, sizeof(child_errno));
        if (n == (ssize_t)sizeof(child_errno)) {
                (void)wait_helper(pid, &status);
                return cove_err_set(err, child_errno, "runtime: exec '%s': %m", helper);
        }

        struct pollfd pfd = { .fd = sync_parent, .events = POLLIN };
        r = TEMP_FAILURE_RETRY(poll(&pfd, 1, RUNTIME_CREATE_TIMEOUT_MS));
        if (r <= 0) {
                int e = r == 0 ? ETIMEDOUT : errno;
                (void)kill(pid, SIGKILL);
                (void)wait_helper(pid, &status);
                return cove_err_set(err, e, "runtime: waiting for cove-runtime: %m");
        }
        n = TEMP_FAILURE_RETRY(recv(sync_parent, msg, RESULT_MSG_MAX, MSG_CMSG_CLOEXEC));
        int recv_errno = errno;
        r = wait_helper(pid, &status);
        if (n < 0)
                return cove_err_set(err, recv_errno, "runtime: read cove-runtime answer: %m");
        if (n == 0) {
                if (r == 0 && WIFSIGNALED(status))
                        return cove_err_set(err, EIO, "runtime: cove-runtime killed by signal %d",
                                            WTERMSIG(status));
                return cove_err_set(err, EIO,
                                    "runtime: cove-runtime exited (status %d) without an answer",
                                    r == 0 && WIFEXITED(status) ? WEXITSTATUS(status) : -1);
        }
        msg[n] = '\0';
        struct runtime_result res = { 0 };
        r = parse_result(msg, (size_t)n, &res, err);
        if (r < 0)
                return r;
        uint64_t wall = (uint64_t)(time_mono_us() - t0_us), inside = 0;
        for (size_t i = 0; i < res.n_phases; i++)
                inside += res.phases[i].us;
        struct phase *rest = &res.phases[res.n_phases++];
        (void)snprintf(rest->name, sizeof(rest->name), "helper.spawn+exit");
        rest->us = wall > inside ? wall - inside : 0;
        *ret = res;
        return 0;
}

int proc_starttime(pid_t pid, uint64_t *ret)
{
        char path[32 + DECIMAL_STR_MAX(pid_t)];
        cleanup_free char *s = NULL;
        int r;

        (void)snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
        r = read_small_file(path, 4096, &s, NULL);
        if (r < 0)
                return r == -ESRCH ? -ENOENT : r;
        char *p = strrchr(s, ')');
        if (!p)
                return -EINVAL;
        p++;
        /* After ')' come fields 3 (state) … : starttime is field 22, the 20th token. */
        for (int field = 3; field <= 22; field++) {
                p += strspn(p, " ");
                size_t l = strcspn(p, " \n");
                if (l == 0)
                        return -EINVAL;
                if (field == 22) {
                        char num[DECIMAL_STR_MAX(uint64_t)];
                        if (l >= sizeof(num))
                                return -EINVAL;
                        memcpy(num, p, l);
                        num[l] = '\0';
                        uint64_t v;
                        r = safe_atou64(num, &v);
                        if (r < 0)
                                return r;
                        *ret = v;
                        return 0;
                }
                p += l;
        }
        return -EINVAL;
}

static bool proc_is_zombie(pid_t pid)
{
        char path[32 + DECIMAL_STR_MAX(pid_t)];
        cleanup_free char *s = NULL;
        (void)snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
        if (read_small_file(path, 4096, &s, NULL) < 0)
                return true;
        char *p = strrchr(s, ')');
        return !p || p[1] != ' ' || p[2] == 'Z' || p[2] == 'X';
}

int runtime_init_alive(pid_t pid, uint64_t starttime)
{
        char path[32 + DECIMAL_STR_MAX(pid_t)];
        struct stat self, other;
        uint64_t st;

        if (pid <= 0 || proc_starttime(pid, &st) < 0 || st != starttime || proc_is_zombie(pid))
                return 0;
        (void)snprintf(path, sizeof(path), "/proc/%d/ns/pid", (int)pid);
        if (stat(path, &other) < 0 || stat("/proc/self/ns/pid", &self) < 0)
                return 0;
        if (self.st_ino == other.st_ino && self.st_dev == other.st_dev)
                return 0;
        /* Re-check: the pid could have been reused between the reads. */
        if (proc_starttime(pid, &st) < 0 || st != starttime)
                return 0;
        return 1;
}
