/* SPDX-License-Identifier: MIT */
/*
 * test-runtime — cgroup drivers, host userland template, cove-runtime create/destroy/purge with
 * real namespaces, mounts and cgroups. Needs root (exit 77 otherwise).
 *
 * Binaries come from $COVE_BUILD_DIR, or from the parent of this binary's directory
 * (<builddir>/tests/test-runtime → <builddir>/cove-runtime).
 */
#include "tap.h"

#include "lib/buf.h"
#include "lib/fdutil.h"
#include "lib/macro.h"
#include "lib/parse.h"
#include "lib/rand.h"
#include "runtime/cgroup.h"
#include "runtime/fsutil.h"
#include "runtime/hostroot.h"
#include "runtime/sealed.h"
#include "runtime/spawn_client.h"

#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/statfs.h>
#include <sys/utsname.h>
#include <sys/wait.h>

static char builddir[PATH_MAX];
static char tmproot[] = "/tmp/cove-test-runtime-XXXXXX";
static char tpl[PATH_MAX];
static char datadir[PATH_MAX];

static void find_builddir(void)
{
        const char *env = getenv("COVE_BUILD_DIR");
        if (env) {
                (void)snprintf(builddir, sizeof(builddir), "%s", env);
                return;
        }
        char exe[PATH_MAX];
        ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
        if (n < 0)
                abort();
        exe[n] = '\0';
        for (int i = 0; i < 2; i++) {
                char *s = strrchr(exe, '/');
                if (s)
                        *s = '\0';
        }
        (void)snprintf(builddir, sizeof(builddir), "%s", exe);
}

static char *new_id(void)
{
        char r[13];
        random_alnum(r, 12);
        return xasprintf("t%s", r);
}

static pid_t fork_sleeper(void)
{
        pid_t pid = fork();
        if (pid == 0) {
                for (;;)
                        pause();
        }
        return pid;
}

static void test_starttime(void)
{
        uint64_t st = 0;
        ASSERT_EQ(proc_starttime(getpid(), &st), 0);
        ASSERT_TRUE(st > 0);
        /* Same pid namespace as us: never a sandbox init. */
        ASSERT_EQ(runtime_init_alive(getpid(), st), 0);
        ASSERT_EQ(proc_starttime(0x3fffffff, &st), -ENOENT);
        ASSERT_EQ(runtime_init_alive(0x3fffffff, st), 0);
}

/* The full cycle on a cgroup driven by whatever layout is current. */
static void cgroup_cycle(const char *name, const struct cgroup_limits *lim)
{
        cleanup_err struct cove_err *err = NULL;
        cleanup_free pid_t *pids = NULL;
        size_t n = 0;
        int status;

        ASSERT_EQ(cgroup_create(name, lim, &err), 0);
        ASSERT_TRUE(cgroup_exists(name));
        pid_t child = fork_sleeper();
        ASSERT_TRUE(child > 0);
        ASSERT_EQ(cgroup_join(name, child, &err), 0);
        ASSERT_EQ(cgroup_pids(name, &pids, &n, &err), 0);
        ASSERT_EQ(n, 1);
        ASSERT_EQ(pids[0], child);
        ASSERT_EQ(cgroup_is_frozen(name, &err), 0);
        ASSERT_EQ(cgroup_freeze(name, &err), 0);
        ASSERT_EQ(cgroup_is_frozen(name, &err), 1);
        ASSERT_EQ(cgroup_thaw(name, &err), 0);
        ASSERT_EQ(cgroup_is_frozen(name, &err), 0);
        ASSERT_EQ(cgroup_kill_all(name, &err), 0);
        ASSERT_EQ(waitpid(child, &status, 0), child);
        ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
        ASSERT_EQ(cgroup_destroy(name, &err), 0);
        ASSERT_TRUE(!cgroup_exists(name));
        ASSERT_EQ(cgroup_destroy(name, &err), 0); /* idempotent */
        if (err)
                printf("# %s\n", err->msg);
}

static void test_cgroup_native(void)
{
        cleanup_err struct cove_err *err = NULL;
        cleanup_free char *id = new_id();
        cleanup_free char *name = xasprintf("cove/%s", id);
        struct cgroup_limits lim = { .cpu_count = 1, .memory_mb = 64, .pids_max = 64 };
        struct cgroup_stats st;
        enum cgroup_layout layout;

        ASSERT_EQ(cgroup_layout(&layout, &err), 0);
        printf("# layout v%d\n", (int)layout);
        ASSERT_EQ(cgroup_create(name, &lim, &err), 0);
        ASSERT_EQ(cgroup_stats(name, &st, &err), 0);
        ASSERT_EQ(st.memory_limit, 64ULL * 1024 * 1024);
        ASSERT_EQ(st.pids_current, 0);
        ASSERT_EQ(cgroup_destroy(name, &err), 0);
        cgroup_cycle(name, &lim);
        /* Invalid names are refused before touching the filesystem. */
        ASSERT_EQ(cgroup_create("cove/../x", NULL, &err), -EINVAL);
}

/* A parent budget (the node's): its pids.max bounds every child together, whatever theirs. */
/* In a child: join cg, fork sleepers until the kernel refuses; write the count to fd and wait
 * to be killed (with the sleepers) through the cgroup. */
static pid_t fork_until_refused(const char *cg, int fd)
{
        pid_t p = fork();
        if (p != 0)
                return p;
        int n = 0;
        if (cgroup_join(cg, 0, NULL) == 0)
                for (; n < 64; n++) {
                        pid_t k = fork();
                        if (k < 0)
                                break;
                        if (k == 0)
                                for (;;)
                                        pause();
                }
        (void)!write(fd, &n, sizeof(n));
        for (;;)
                pause();
}

/* A parent budget (the node's): its pids.max bounds every child together, whatever theirs. */
static void test_cgroup_parent_budget(void)
{
        cleanup_err struct cove_err *err = NULL;
        cleanup_free char *id = new_id();
        cleanup_free char *parent = xasprintf("cove-test-%s", id);
        cleanup_free char *a = xasprintf("%s/a", parent), *b = xasprintf("%s/b", parent);
        struct cgroup_limits budget = { .pids_max = 8, .memory_mb = 128 };
        struct cgroup_limits each = { .pids_max = 6, .io_weight = 50 };
        int pa[2], pb[2], na = -1, nb = -1;

        ASSERT_EQ(cgroup_update(parent, &budget, &err), 0);
        ASSERT_EQ(cgroup_create(a, &each, &err), 0);
        ASSERT_EQ(cgroup_create(b, &each, &err), 0);
        ASSERT_EQ(cgroup_update(parent, &budget, &err), 0); /* idempotent, children stay */
        ASSERT_TRUE(cgroup_exists(a));
        ASSERT_EQ(pipe2(pa, O_CLOEXEC), 0);
        ASSERT_EQ(pipe2(pb, O_CLOEXEC), 0);
        pid_t ca = fork_until_refused(a, pa[1]);
        ASSERT_EQ(read(pa[0], &na, sizeof(na)), (ssize_t)sizeof(na));
        pid_t cb = fork_until_refused(b, pb[1]);
        ASSERT_EQ(read(pb[0], &nb, sizeof(nb)), (ssize_t)sizeof(nb));
        printf("# forks: %d in a (limit 6), then %d in b (limit 6, parent 8)\n", na, nb);
        ASSERT_EQ(na, 5);         /* a's own pids.max: 6 with the forker */
        ASSERT_EQ(nb, 8 - 6 - 1); /* the parent's budget binds b */
        ASSERT_EQ(cgroup_kill_all(a, &err), 0);
        ASSERT_EQ(cgroup_kill_all(b, &err), 0);
        ASSERT_EQ(waitpid(ca, NULL, 0), ca);
        ASSERT_EQ(waitpid(cb, NULL, 0), cb);
        for (int i = 0; i < 2; i++) {
                (void)close(pa[i]);
                (void)close(pb[i]);
        }
        ASSERT_EQ(cgroup_destroy(a, &err), 0);
        ASSERT_EQ(cgroup_destroy(b, &err), 0);
        ASSERT_EQ(cgroup_destroy(parent, &err), 0);
        ASSERT_TRUE(!cgroup_exists(parent));
}

static void test_cgroup_v2_freeze(void)
{
        cleanup_free char *id = new_id();
        cleanup_free char *name = xasprintf("cove-test-%s", id);
        if (cgroup_force_v2_root("/sys/fs/cgroup/unified") < 0) {
                printf("# no cgroup2 at /sys/fs/cgroup/unified: v2 driver not exercised here\n");
                return;
        }
        cgroup_cycle(name, NULL);
        ASSERT_EQ(cgroup_force_v2_root(NULL), 0);
}

static void test_hostroot(void)
{
        cleanup_err struct cove_err *err = NULL;
        cleanup_free char *s = NULL;
        char path[PATH_MAX], link[PATH_MAX];
        struct stat st;

        ASSERT_EQ(hostroot_build(tpl, &err), 0);
        (void)snprintf(path, sizeof(path), "%s/bin", tpl);
        ssize_t n = readlink(path, link, sizeof(link) - 1);
        ASSERT_TRUE(n > 0);
        (void)snprintf(path, sizeof(path), "%s/etc/shadow", tpl);
        ASSERT_EQ(stat(path, &st), 0);
        ASSERT_EQ(st.st_mode & 07777, 0640);
        ASSERT_EQ(read_small_file(path, 4096, &s, NULL), 0);
        ASSERT_TRUE(strncmp(s, "root:*:", 7) == 0);
        (void)snprintf(path, sizeof(path), "%s/etc/sudoers", tpl);
        ASSERT_EQ(stat(path, &st), 0);
        ASSERT_EQ(st.st_mode & 07777, 0440);
        (void)snprintf(path, sizeof(path), "%s/home/user", tpl);
        ASSERT_EQ(stat(path, &st), 0);
        ASSERT_EQ(st.st_uid, 1000);
        (void)snprintf(path, sizeof(path), "%s/etc/mtab", tpl);
        ASSERT_EQ(lstat(path, &st), 0);
        ASSERT_TRUE(S_ISLNK(st.st_mode));
        /* Idempotent: a rebuild swaps in a fresh tree and leaves no .tmp behind. */
        ASSERT_EQ(hostroot_build(tpl, &err), 0);
        (void)snprintf(path, sizeof(path), "%s.tmp", tpl);
        ASSERT_TRUE(access(path, F_OK) < 0 && errno == ENOENT);
}

struct sb {
        char *id, *dir, *config, *sock, *cgroup;
};

static void sb_free(struct sb *s)
{
        free(s->id);
        free(s->dir);
        free(s->config);
        free(s->sock);
        free(s->cgroup);
}

/* Optional config sections (userns, disk) for write_config_ext. */
#define TEST_UID_BASE 0x7ff00000U
#define TEST_DISK_MB  64

static void write_config_ext(struct sb *s, const char *layer, bool userns, bool disk);

static void write_config(struct sb *s, const char *layer)
{
        write_config_ext(s, layer, false, false);
}

static void write_config_ext(struct sb *s, const char *layer, bool userns, bool disk)
{
        char agent[PATH_MAX + 16];
        (void)snprintf(agent, sizeof(agent), "%s/cove-agent", builddir);
        if (access(agent, X_OK) < 0) /* agent not built: init restarts whatever this is */
                (void)snprintf(agent, sizeof(agent), "%s/cove-init", builddir);
        s->id = new_id();
        s->dir = xasprintf("%s/sandboxes/%s", datadir, s->id);
        s->config = xasprintf("%s/config.json", s->dir);
        s->sock = xasprintf("%s/agent.sock", s->dir);
        s->cgroup = xasprintf("cove/%s", s->id);
        ASSERT_EQ(mkdir_p(s->dir, 0700, NULL), 0);
        cleanup_free char *extra =
                userns ? xasprintf(",\"userns\":{\"uid\":%u,\"gid\":%u,\"count\":65536}",
                                   TEST_UID_BASE, TEST_UID_BASE)
                       : xstrdup("");
        cleanup_free char *diskj = disk ? xasprintf(",\"disk\":{\"image\":\"%s/disk.img\","
                                                    "\"golden\":\"%s/disk-images/ext4-%dm.img\","
                                                    "\"size_mb\":%d}",
                                                    s->dir, datadir, TEST_DISK_MB, TEST_DISK_MB)
                                        : xstrdup("");
        cleanup_free char *json =
                xasprintf("{\"id\":\"%s\",\"state_dir\":\"%s\",\"layers\":[\"%s\"],"
                          "\"binds\":[{\"source\":\"/usr\",\"target\":\"/usr\",\"readonly\":true}],"
                          "\"init\":\"%s/cove-init\",\"agent\":\"%s\",\"agent_socket\":\"%s\","
                          "\"cgroup\":{\"name\":\"%s\",\"cpu_count\":1,\"memory_mb\":256,\"pids_"
                          "max\":512}%s%s}",
                          s->id, s->dir, layer, builddir, agent, s->sock, s->cgroup, extra, diskj);
        ASSERT_EQ(write_file_mode(s->config, json, 0600, NULL), 0);
}

static char *helper(void)
{
        return xasprintf("%s/cove-runtime", builddir);
}

static bool host_mounts_mention(const char *needle)
{
        cleanup_free char *mi = NULL;
        if (read_small_file("/proc/self/mountinfo", 4 * 1024 * 1024, &mi, NULL) < 0)
                return true;
        return strstr(mi, needle) != NULL;
}

/* In a forked child: join the UTS namespace of pid and compare the hostname. */
static int hostname_of_is(pid_t pid, const char *want)
{
        pid_t c = fork();
        if (c == 0) {
                char p[64];
                struct utsname u;
                (void)snprintf(p, sizeof(p), "/proc/%d/ns/uts", (int)pid);
                int fd = open(p, O_RDONLY | O_CLOEXEC);
                if (fd < 0 || setns(fd, CLONE_NEWUTS) < 0 || uname(&u) < 0)
                        _exit(2);
                _exit(streq(u.nodename, want) ? 0 : 1);
        }
        int status;
        if (waitpid(c, &status, 0) != c || !WIFEXITED(status))
                return -1;
        return WEXITSTATUS(status);
}

/* What follows key in /proc/pid/status (owned), or NULL. */
static char *status_value(pid_t pid, const char *key)
{
        char path[64];
        cleanup_free char *s = NULL;
        (void)snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
        if (read_small_file(path, 65536, &s, NULL) < 0)
                return NULL;
        char *p = strstr(s, key);
        return p ? xstrdup(p + strlen(key)) : NULL;
}

static uint64_t status_hex(pid_t pid, const char *key)
{
        cleanup_free char *s = status_value(pid, key);
        uint64_t v;
        if (!s || sscanf(s, "%" SCNx64, &v) != 1)
                return UINT64_MAX;
        return v;
}

/* The first number of a line with several (Uid:, Gid:). */
static uint64_t status_first_dec(pid_t pid, const char *key)
{
        cleanup_free char *s = status_value(pid, key);
        uint64_t v;
        if (!s || sscanf(s, "%" SCNu64, &v) != 1)
                return UINT64_MAX;
        return v;
}

/* runtime_create() of s's config, which must succeed; bins NULL: the helper finds them. */
static void create_ok(const char *h, struct sb *s, const struct runtime_binaries *bins,
                      struct runtime_result *res)
{
        cleanup_err struct cove_err *err = NULL;
        int r = runtime_create(h, s->config, bins, res, &err);
        if (r < 0)
                printf("# create: %s\n", err->msg);
        ASSERT_EQ(r, 0);
}

/* runtime_destroy() of s, which must succeed, then reaps its init (our child: the helper set
 * PR_SET_CHILD_SUBREAPER). */
static void destroy_ok(struct sb *s, pid_t init)
{
        cleanup_err struct cove_err *err = NULL;
        int status;
        int r = runtime_destroy(s->config, &err);
        if (r < 0)
                printf("# destroy: %s\n", err->msg);
        ASSERT_EQ(r, 0);
        ASSERT_EQ(waitpid(init, &status, 0), init);
}

static void test_create_destroy(void)
{
        cleanup_err struct cove_err *err = NULL;
        cleanup_free char *h = helper();
        struct sb s = { 0 };
        struct runtime_result res = { 0 };
        struct cgroup_stats cst;
        struct stat st;
        char path[PATH_MAX];

        write_config(&s, tpl);
        create_ok(h, &s, NULL, &res);
        printf("# init pid %d starttime %" PRIu64 "\n", (int)res.pid, res.starttime);
        ASSERT_EQ(runtime_init_alive(res.pid, res.starttime), 1);
        ASSERT_EQ(runtime_init_alive(res.pid, res.starttime + 1), 0);
        /* The view from inside. */
        (void)snprintf(path, sizeof(path), "/proc/%d/root/usr/bin/true", (int)res.pid);
        ASSERT_EQ(access(path, X_OK), 0);
        (void)snprintf(path, sizeof(path), "/proc/%d/root/etc/shadow", (int)res.pid);
        cleanup_free char *shadow = NULL;
        ASSERT_EQ(read_small_file(path, 4096, &shadow, NULL), 0);
        ASSERT_TRUE(strncmp(shadow, "root:*:", 7) == 0);
        (void)snprintf(path, sizeof(path), "/proc/%d/root/home/user", (int)res.pid);
        ASSERT_EQ(stat(path, &st), 0);
        ASSERT_EQ(st.st_uid, 1000);
        (void)snprintf(path, sizeof(path), "/proc/%d/root/root/workspace", (int)res.pid);
        ASSERT_EQ(stat(path, &st), 0);
        ASSERT_TRUE(S_ISDIR(st.st_mode));
        (void)snprintf(path, sizeof(path), "/proc/%d/root/dev/pts/ptmx", (int)res.pid);
        ASSERT_EQ(access(path, F_OK), 0);
        ASSERT_EQ(hostname_of_is(res.pid, s.id), 0);
        /* Capabilities and seccomp of init. */
        ASSERT_EQ(status_hex(res.pid, "CapBnd:\t"), 0x00000000a00405fbULL);
        ASSERT_EQ(status_hex(res.pid, "Seccomp:\t"), 2);
        ASSERT_EQ(status_hex(res.pid, "NoNewPrivs:\t"), 0);
        /* Agent socket, and nothing of the sandbox in the host's mount table. */
        ASSERT_EQ(stat(s.sock, &st), 0);
        ASSERT_TRUE(S_ISSOCK(st.st_mode));
        ASSERT_EQ(st.st_mode & 0777, 0600);
        ASSERT_TRUE(!host_mounts_mention(s.dir));
        /* cgroup limits, freeze/thaw. */
        ASSERT_TRUE(cgroup_exists(s.cgroup));
        ASSERT_EQ(cgroup_stats(s.cgroup, &cst, &err), 0);
        ASSERT_EQ(cst.memory_limit, 256ULL * 1024 * 1024);
        ASSERT_TRUE(cst.pids_current >= 1);
        ASSERT_EQ(cgroup_freeze(s.cgroup, &err), 0);
        ASSERT_EQ(cgroup_is_frozen(s.cgroup, &err), 1);
        ASSERT_EQ(cgroup_thaw(s.cgroup, &err), 0);
        ASSERT_EQ(cgroup_is_frozen(s.cgroup, &err), 0);

        /* Destroy: init (our child via PR_SET_CHILD_SUBREAPER) dies, everything goes. */
        destroy_ok(&s, res.pid);
        ASSERT_EQ(runtime_init_alive(res.pid, res.starttime), 0);
        ASSERT_TRUE(!cgroup_exists(s.cgroup));
        ASSERT_TRUE(access(s.dir, F_OK) < 0 && errno == ENOENT);
        ASSERT_TRUE(access(s.sock, F_OK) < 0 && errno == ENOENT);
        ASSERT_EQ(runtime_destroy(s.dir, &err), 0); /* idempotent */
        sb_free(&s);
}

/* The first child of pid (from /proc/pid/task/pid/children), or -1. */
static pid_t first_child(pid_t pid)
{
        char path[96];
        cleanup_free char *s = NULL;
        (void)snprintf(path, sizeof(path), "/proc/%d/task/%d/children", (int)pid, (int)pid);
        if (read_small_file(path, 65536, &s, NULL) < 0 || !s[0])
                return -1;
        s[strcspn(s, " \n")] = '\0';
        uint32_t v;
        return safe_atou32(s, &v) == 0 ? (pid_t)v : -1;
}

static pid_t wait_child_other_than(pid_t init, pid_t old)
{
        for (int i = 0; i < 300; i++) {
                pid_t c = first_child(init);
                if (c > 0 && c != old)
                        return c;
                usleep(10000);
        }
        return -1;
}

static void test_init_supervises(void)
{
        cleanup_err struct cove_err *err = NULL;
        cleanup_free char *h = helper();
        struct sb s = { 0 };
        struct runtime_result res = { 0 };
        int status;

        write_config(&s, tpl);
        ASSERT_EQ(runtime_create(h, s.config, NULL, &res, &err), 0);
        pid_t agent = wait_child_other_than(res.pid, -1);
        ASSERT_TRUE(agent > 0);
        /* A dead agent is restarted by init. */
        ASSERT_EQ(kill(agent, SIGKILL), 0);
        pid_t agent2 = wait_child_other_than(res.pid, agent);
        ASSERT_TRUE(agent2 > 0);
        ASSERT_EQ(runtime_init_alive(res.pid, res.starttime), 1);
        /* SIGTERM: init forwards it and exits once everything is gone. */
        ASSERT_EQ(kill(res.pid, SIGTERM), 0);
        ASSERT_EQ(waitpid(res.pid, &status, 0), res.pid);
        ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        ASSERT_EQ(runtime_destroy(s.config, &err), 0);
        ASSERT_TRUE(!cgroup_exists(s.cgroup));
        sb_free(&s);
}

static void test_create_fails(void)
{
        cleanup_err struct cove_err *err = NULL;
        cleanup_free char *h = helper();
        struct sb s = { 0 };
        struct runtime_result res = { 0 };

        write_config(&s, "/nonexistent/cove-layer");
        ASSERT_TRUE(runtime_create(h, s.config, NULL, &res, &err) < 0);
        ASSERT_TRUE(err != NULL);
        printf("# error: %s\n", err->msg);
        ASSERT_EQ(err->errnum, ENOENT);
        ASSERT_TRUE(strstr(err->msg,
                           "overlay layer '/nonexistent/cove-layer': No such file or directory") !=
                    NULL);
        ASSERT_TRUE(!cgroup_exists(s.cgroup));
        ASSERT_TRUE(access(s.sock, F_OK) < 0);
        cove_err_free(&err);

        /* A failure inside the child (the init binary is not executable there) is reported by
         * step, and nothing is left behind either. */
        cleanup_free char *json = xasprintf(
                "{\"id\":\"%s\",\"state_dir\":\"%s\",\"layers\":[\"%s\"],"
                "\"binds\":[{\"source\":\"/nonexistent-src\",\"target\":\"/usr\"}],"
                "\"init\":\"%s/cove-init\",\"agent\":\"%s/cove-init\",\"agent_socket\":\"%s\","
                "\"cgroup\":{\"name\":\"%s\",\"memory_mb\":64}}",
                s.id, s.dir, tpl, builddir, builddir, s.sock, s.cgroup);
        ASSERT_EQ(write_file_mode(s.config, json, 0600, NULL), 0);
        ASSERT_TRUE(runtime_create(h, s.config, NULL, &res, &err) < 0);
        printf("# error: %s\n", err->msg);
        ASSERT_EQ(err->errnum, ENOENT);
        ASSERT_TRUE(strstr(err->msg, "bind '/nonexistent-src'") != NULL);
        ASSERT_TRUE(!cgroup_exists(s.cgroup));
        ASSERT_TRUE(access(s.sock, F_OK) < 0);
        char upper[PATH_MAX];
        (void)snprintf(upper, sizeof(upper), "%s/upper", s.dir);
        ASSERT_TRUE(access(upper, F_OK) < 0);
        cove_err_free(&err);

        /* A user namespace that would map onto host root, or past the last id, is refused. */
        static const char *const bad_userns[] = {
                "{\"uid\":0,\"gid\":100000,\"count\":65536}",
                "{\"uid\":4294901760,\"gid\":100000,\"count\":65536}",
                "{\"uid\":100000,\"gid\":100000,\"count\":65537}",
        };
        for (size_t i = 0; i < ARRAY_SIZE(bad_userns); i++) {
                cleanup_free char *j = xasprintf(
                        "{\"id\":\"%s\",\"state_dir\":\"%s\",\"layers\":[\"%s\"],"
                        "\"init\":\"%s/cove-init\",\"agent\":\"%s/"
                        "cove-init\",\"agent_socket\":\"%s\","
                        "\"cgroup\":{\"name\":\"%s\"},\"userns\":%s}",
                        s.id, s.dir, tpl, builddir, builddir, s.sock, s.cgroup, bad_userns[i]);
                ASSERT_EQ(write_file_mode(s.config, j, 0600, NULL), 0);
                ASSERT_TRUE(runtime_create(h, s.config, NULL, &res, &err) < 0);
                printf("# error: %s\n", err->msg);
                ASSERT_EQ(err->errnum, EINVAL);
                ASSERT_TRUE(strstr(err->msg, "userns") != NULL);
                ASSERT_TRUE(!cgroup_exists(s.cgroup));
                cove_err_free(&err);
        }
        ASSERT_EQ(unlink(s.config), 0);

        /* A missing helper is an exec error. */
        ASSERT_EQ(runtime_create("/nonexistent/cove-runtime", s.config, NULL, &res, &err), -ENOENT);
        ASSERT_TRUE(strstr(err->msg, "exec '/nonexistent/cove-runtime'") != NULL);
        ASSERT_EQ(runtime_destroy(s.dir, NULL), 0);
        ASSERT_TRUE(access(s.dir, F_OK) < 0);
        sb_free(&s);
}

static void test_sealed_binaries(void)
{
        cleanup_err struct cove_err *err = NULL;
        cleanup_free char *h = helper();
        cleanup_free char *init = xasprintf("%s/cove-init", builddir);
        cleanup_free char *agent = xasprintf("%s/cove-agent", builddir);
        cleanup_close int ifd = -1, afd = -1, plain = -1;
        struct sb s = { 0 };
        struct runtime_result res = { 0 };
        struct stat st;

        if (access(agent, X_OK) < 0) {
                free(agent);
                agent = xstrdup(init);
        }
        ASSERT_EQ(sealed_exec_copy(init, "cove-init", &ifd, &err), 0);
        ASSERT_EQ(sealed_exec_copy(agent, "cove-agent", &afd, &err), 0);
        /* Execute-only, sealed against every change, close-on-exec. */
        ASSERT_EQ(fstat(ifd, &st), 0);
        ASSERT_EQ(st.st_mode & 07777, 0111);
        ASSERT_EQ(fcntl(ifd, F_GETFD), FD_CLOEXEC);
        ASSERT_EQ(fcntl(ifd, F_GET_SEALS) & 0xf,
                  F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE);
        ASSERT_TRUE(write(ifd, "x", 1) < 0 && errno == EPERM);
        ASSERT_TRUE(ftruncate(ifd, 0) < 0 && errno == EPERM);
        /* F_SEAL_EXEC (6.3+) keeps the exec bits as they are. */
        ASSERT_TRUE(fchmod(ifd, 0) < 0 || (fcntl(ifd, F_GET_SEALS) & 0x20) == 0);
        ASSERT_EQ(sealed_exec_check(ifd, "init", &err), 0);

        /* The helper runs what it is handed, and refuses what is not sealed. */
        struct runtime_binaries bins = { ifd, afd };
        write_config(&s, tpl);
        create_ok(h, &s, &bins, &res);
        char path[64];
        (void)snprintf(path, sizeof(path), "/proc/%d/exe", (int)res.pid);
        char target[256] = "";
        ASSERT_TRUE(readlink(path, target, sizeof(target) - 1) > 0);
        ASSERT_TRUE(strncmp(target, "/memfd:cove-init", 16) == 0);
        ASSERT_EQ(status_hex(res.pid, "CapBnd:\t"), 0x00000000a00405fbULL);
        destroy_ok(&s, res.pid);
        sb_free(&s);

        plain = open(init, O_RDONLY | O_CLOEXEC);
        ASSERT_TRUE(plain >= 0);
        struct runtime_binaries bad = { plain, afd };
        write_config(&s, tpl);
        ASSERT_TRUE(runtime_create(h, s.config, &bad, &res, &err) < 0);
        printf("# error: %s\n", err->msg);
        ASSERT_EQ(err->errnum, EPERM);
        ASSERT_TRUE(strstr(err->msg, "init binary") != NULL);
        ASSERT_TRUE(!cgroup_exists(s.cgroup));
        ASSERT_EQ(runtime_destroy(s.dir, NULL), 0);
        sb_free(&s);
}

/* The loop device backed by path, or -1. */
static int loop_backed_by(const char *path)
{
        for (int i = 0; i < 4096; i++) {
                char p[96];
                cleanup_free char *b = NULL;
                (void)snprintf(p, sizeof(p), "/sys/block/loop%d/loop/backing_file", i);
                if (read_small_file(p, 4096, &b, NULL) < 0)
                        continue;
                b[strcspn(b, "\n")] = '\0';
                if (strncmp(b, path, strlen(path)) == 0)
                        return i;
        }
        return -1;
}

static void test_userns_disk(void)
{
        cleanup_err struct cove_err *err = NULL;
        cleanup_free char *h = helper();
        struct sb s = { 0 };
        struct runtime_result res = { 0 };
        struct stat st;
        struct statfs sfs;
        char path[PATH_MAX];

        write_config_ext(&s, tpl, true, true);
        create_ok(h, &s, NULL, &res);
        /* Sandbox root is the first id of its range on the host. */
        ASSERT_EQ(status_first_dec(res.pid, "Uid:\t"), TEST_UID_BASE);
        (void)snprintf(path, sizeof(path), "/proc/%d/uid_map", (int)res.pid);
        cleanup_free char *map = NULL;
        ASSERT_EQ(read_small_file(path, 4096, &map, NULL), 0);
        unsigned inside = 1, outside = 0, count = 0;
        ASSERT_EQ(sscanf(map, "%u %u %u", &inside, &outside, &count), 3);
        ASSERT_EQ(inside, 0);
        ASSERT_EQ(outside, TEST_UID_BASE);
        ASSERT_EQ(count, 65536);
        /* The template and /usr through idmapped mounts: host root's files are the sandbox
         * root's, setuid sudo included; home/user (host 1000) is the range's 1000. */
        (void)snprintf(path, sizeof(path), "/proc/%d/root/usr/bin/sudo", (int)res.pid);
        if (stat(path, &st) == 0) {
                ASSERT_EQ(st.st_uid, TEST_UID_BASE);
                ASSERT_TRUE(st.st_mode & S_ISUID);
        }
        (void)snprintf(path, sizeof(path), "/proc/%d/root/home/user", (int)res.pid);
        ASSERT_EQ(stat(path, &st), 0);
        ASSERT_EQ(st.st_uid, TEST_UID_BASE + 1000);
        (void)snprintf(path, sizeof(path), "/proc/%d/root/etc/shadow", (int)res.pid);
        ASSERT_EQ(stat(path, &st), 0);
        ASSERT_EQ(st.st_uid, TEST_UID_BASE);
        /* The writable layer is the disk image: its size, on a loop device, nothing of it in
         * the host's mount table. */
        (void)snprintf(path, sizeof(path), "/proc/%d/root/", (int)res.pid);
        ASSERT_EQ(statfs(path, &sfs), 0);
        uint64_t total = (uint64_t)sfs.f_blocks * (uint64_t)sfs.f_bsize;
        printf("# disk %" PRIu64 " bytes\n", total);
        ASSERT_TRUE(total <= TEST_DISK_MB * 1024ULL * 1024 &&
                    total >= TEST_DISK_MB * 700ULL * 1024);
        cleanup_free char *img = xasprintf("%s/disk.img", s.dir);
        ASSERT_TRUE(loop_backed_by(img) >= 0);
        ASSERT_TRUE(!host_mounts_mention(s.dir));
        ASSERT_EQ(status_hex(res.pid, "CapBnd:\t"), 0x00000000a00405fbULL);

        destroy_ok(&s, res.pid);
        ASSERT_EQ(loop_backed_by(img), -1);
        ASSERT_TRUE(access(s.dir, F_OK) < 0 && errno == ENOENT);
        sb_free(&s);
}

/* In a forked child: become uid `uid` of pid's user namespace, in its mount namespace (its root),
 * and create `name` (uid 0 also removes /etc/mtab: a whiteout in the upper dir). */
static int write_as(pid_t pid, uid_t uid, const char *name)
{
        char p[64];
        (void)snprintf(p, sizeof(p), "/proc/%d/ns/user", (int)pid);
        int ufd = open(p, O_RDONLY | O_CLOEXEC);
        (void)snprintf(p, sizeof(p), "/proc/%d/ns/mnt", (int)pid);
        int mfd = open(p, O_RDONLY | O_CLOEXEC);
        if (ufd < 0 || mfd < 0 || setns(ufd, CLONE_NEWUSER) < 0 || setgroups(0, NULL) < 0 ||
            setresgid(0, 0, 0) < 0 || setresuid(0, 0, 0) < 0 || setns(mfd, CLONE_NEWNS) < 0)
                return 10;
        if (uid == 0 && unlink("/etc/mtab") < 0)
                return 11;
        if (uid != 0 && (setresgid(uid, uid, uid) < 0 || setresuid(uid, uid, uid) < 0))
                return 12;
        int fd = open(name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        if (fd < 0)
                return 13;
        (void)close(fd);
        return 0;
}

/* A build sandbox: the overlay's upper dir is a given host directory (a layer being made, in
 * a directory the sandbox's root cannot traverse). Through the idmapped clone of that
 * directory, what the sandbox writes lands with the ids it sees (no shift afterwards), and
 * overlay's whiteouts are 0:0 character devices. */
static void test_userns_upper_dir(void)
{
        cleanup_err struct cove_err *err = NULL;
        cleanup_free char *h = helper();
        cleanup_free char *scratch = xasprintf("%s/scratch", tmproot);
        cleanup_free char *up = xasprintf("%s/up", scratch);
        cleanup_free char *work = xasprintf("%s/up.work", scratch);
        struct sb s = { 0 };
        struct runtime_result res = { 0 };
        struct stat st;
        char path[PATH_MAX];
        int status;

        ASSERT_EQ(mkdir_p(scratch, 0700, NULL), 0);
        ASSERT_EQ(mkdir(up, 0755), 0);
        ASSERT_EQ(mkdir(work, 0700), 0);
        write_config_ext(&s, tpl, true, false);
        cleanup_free char *json = NULL;
        ASSERT_EQ(read_small_file(s.config, 65536, &json, NULL), 0);
        json[strlen(json) - 1] = '\0'; /* the closing brace */
        cleanup_free char *json2 =
                xasprintf("%s,\"upper_dir\":\"%s\",\"work_dir\":\"%s\"}", json, up, work);
        ASSERT_EQ(write_file_mode(s.config, json2, 0600, NULL), 0);

        create_ok(h, &s, NULL, &res);
        ASSERT_EQ(status_first_dec(res.pid, "Uid:\t"), TEST_UID_BASE);
        cleanup_free char *state_upper = xasprintf("%s/upper", s.dir);
        ASSERT_TRUE(access(state_upper, F_OK) < 0); /* no upper of its own */
        for (uid_t uid = 0; uid <= 1000; uid += 1000) {
                pid_t c = fork();
                if (c == 0)
                        _exit(write_as(res.pid, uid, uid ? "/home/user/by-user" : "/by-root"));
                ASSERT_EQ(waitpid(c, &status, 0), c);
                ASSERT_TRUE(WIFEXITED(status));
                ASSERT_EQ(WEXITSTATUS(status), 0);
        }
        (void)snprintf(path, sizeof(path), "%s/by-root", up);
        ASSERT_EQ(lstat(path, &st), 0);
        ASSERT_EQ(st.st_uid, 0);
        (void)snprintf(path, sizeof(path), "%s/home/user/by-user", up);
        ASSERT_EQ(lstat(path, &st), 0);
        ASSERT_EQ(st.st_uid, 1000);
        ASSERT_EQ(st.st_gid, 1000);
        (void)snprintf(path, sizeof(path), "%s/etc/mtab", up);
        ASSERT_EQ(lstat(path, &st), 0);
        ASSERT_TRUE(S_ISCHR(st.st_mode) && st.st_rdev == 0 && st.st_uid == 0);
        ASSERT_TRUE(!host_mounts_mention(scratch));

        destroy_ok(&s, res.pid);
        ASSERT_EQ(lstat(up, &st), 0); /* the upper dir is the caller's: kept */
        ASSERT_EQ(st.st_uid, 0);
        sb_free(&s);
        (void)rm_rf(scratch, NULL);
}

/* Templates of many layers (the build plane stacks image layers): each is its own idmapped
 * tree; the topmost wins. More than fsconfig's 255-byte string of joined paths can hold. */
static void test_many_layers(void)
{
        cleanup_err struct cove_err *err = NULL;
        cleanup_free char *h = helper();
        struct sb s = { 0 };
        struct runtime_result res = { 0 };
        struct stat st;
        char path[PATH_MAX];
        struct buf layers;

        buf_init(&layers, 64 * 1024);
        for (int i = 20; i >= 1; i--) {
                /* layer i holds /opt/layer (its number) and /opt/only-<i> */
                cleanup_free char *dir = xasprintf("%s/layers/l%d/opt", tmproot, i);
                ASSERT_EQ(mkdir_p(dir, 0755, NULL), 0);
                cleanup_free char *f = xasprintf("%s/layer", dir);
                cleanup_free char *v = xasprintf("%d\n", i);
                ASSERT_EQ(write_file_mode(f, v, 0644, NULL), 0);
                cleanup_free char *only = xasprintf("%s/only-%d", dir, i);
                ASSERT_EQ(write_file_mode(only, "", 0644, NULL), 0);
                ASSERT_EQ(buf_addf(&layers, "%s/layers/l%d\",\"", tmproot, i), 0);
        }
        ASSERT_EQ(buf_adds(&layers, tpl), 0);
        write_config_ext(&s, buf_str(&layers), true, true);
        buf_release(&layers);
        create_ok(h, &s, NULL, &res);
        (void)snprintf(path, sizeof(path), "/proc/%d/root/opt/layer", (int)res.pid);
        cleanup_free char *top = NULL;
        ASSERT_EQ(read_small_file(path, 64, &top, NULL), 0);
        ASSERT_STREQ(top, "20\n");
        for (int i = 1; i <= 20; i++) {
                (void)snprintf(path, sizeof(path), "/proc/%d/root/opt/only-%d", (int)res.pid, i);
                ASSERT_EQ(stat(path, &st), 0);
                ASSERT_EQ(st.st_uid, TEST_UID_BASE); /* host root's, idmapped */
        }
        destroy_ok(&s, res.pid);
        sb_free(&s);
}

/* coved run in a chroot (a build root, the fresh-root check): the kernel refuses a chrooted
 * process a user namespace, and the helper steps out of the chroot for its clone. A forked
 * child of this test chroots into a recursive bind of '/' in a mount namespace of its own and
 * creates a sandbox from there. */
static void test_create_in_chroot(void)
{
        cleanup_free char *h = helper();
        cleanup_free char *croot = xasprintf("%s/chroot", tmproot);
        struct sb s = { 0 };
        int status;

        ASSERT_EQ(mkdir_p(croot, 0755, NULL), 0);
        write_config_ext(&s, tpl, true, true);
        pid_t c = fork();
        if (c == 0) {
                struct cove_err *e = NULL;
                struct runtime_result res = { 0 };
                if (unshare(CLONE_NEWNS) < 0 ||
                    mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 ||
                    mount("/", croot, NULL, MS_BIND | MS_REC, NULL) < 0 || chroot(croot) < 0 ||
                    chdir("/") < 0)
                        _exit(3);
                /* really chrooted: a user namespace is refused here */
                pid_t u = (pid_t)syscall(SYS_clone, CLONE_NEWUSER | SIGCHLD, 0, 0, 0, 0);
                if (u == 0)
                        _exit(0);
                if (u > 0 || errno != EPERM)
                        _exit(4);
                if (runtime_create(h, s.config, NULL, &res, &e) < 0) {
                        printf("# create in chroot: %s\n", e->msg);
                        _exit(5);
                }
                char map[64];
                (void)snprintf(map, sizeof(map), "/proc/%d/uid_map", (int)res.pid);
                cleanup_free char *m = NULL;
                if (read_small_file(map, 4096, &m, NULL) < 0 || !strstr(m, "2146435072"))
                        _exit(6);
                if (runtime_destroy(s.config, &e) < 0)
                        _exit(7);
                _exit(0);
        }
        ASSERT_EQ(waitpid(c, &status, 0), c);
        ASSERT_TRUE(WIFEXITED(status));
        ASSERT_EQ(WEXITSTATUS(status), 0);
        (void)runtime_destroy(s.dir, NULL);
        /* the sandbox's init was re-parented to us (subreaper): collect it */
        while (waitpid(-1, NULL, WNOHANG) > 0)
                ;
        sb_free(&s);
}

static void test_purge(void)
{
        cleanup_err struct cove_err *err = NULL;
        cleanup_free char *h = helper();
        struct sb a = { 0 }, b = { 0 };
        struct runtime_result ra, rb;
        int status;

        write_config(&a, tpl);
        write_config(&b, tpl);
        ASSERT_EQ(runtime_create(h, a.config, NULL, &ra, &err), 0);
        ASSERT_EQ(runtime_create(h, b.config, NULL, &rb, &err), 0);
        /* b's directory vanishes (coved lost it): purge still finds its cgroup by its overlay. */
        ASSERT_EQ(rm_rf(b.dir, &err), 0);
        ASSERT_EQ(runtime_purge(datadir, NULL, &err), 0);
        ASSERT_EQ(waitpid(ra.pid, &status, 0), ra.pid);
        ASSERT_EQ(waitpid(rb.pid, &status, 0), rb.pid);
        ASSERT_TRUE(!cgroup_exists(a.cgroup));
        ASSERT_TRUE(!cgroup_exists(b.cgroup));
        ASSERT_TRUE(access(a.dir, F_OK) < 0);
        sb_free(&a);
        sb_free(&b);
}

int main(void)
{
        if (geteuid() != 0) {
                printf("1..0 # SKIP needs root\n");
                return 77;
        }
        find_builddir();
        if (!mkdtemp(tmproot))
                return 1;
        (void)snprintf(tpl, sizeof(tpl), "%s/tpl", tmproot);
        (void)snprintf(datadir, sizeof(datadir), "%s/data", tmproot);
        /* Sandbox inits are orphaned by the helper: become their reaper. */
        (void)prctl(PR_SET_CHILD_SUBREAPER, 1);

        RUN(test_starttime);
        RUN(test_cgroup_native);
        RUN(test_cgroup_parent_budget);
        RUN(test_cgroup_v2_freeze);
        RUN(test_hostroot);
        RUN(test_create_destroy);
        RUN(test_init_supervises);
        RUN(test_create_fails);
        RUN(test_sealed_binaries);
        RUN(test_userns_disk);
        RUN(test_userns_upper_dir);
        RUN(test_many_layers);
        RUN(test_create_in_chroot);
        RUN(test_purge);

        (void)runtime_purge(datadir, NULL, NULL);
        (void)rm_rf(tmproot, NULL);
        return tap_done();
}
