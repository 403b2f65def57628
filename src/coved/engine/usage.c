/* SPDX-License-Identifier: MIT */
/*
 * usage.c — what a sandbox uses (engine_usage() in namespaces.c names its cgroup), from the
 * cgroup (through the runtime's cgroup library for the basics, and the cgroup's own files for
 * the rest) and /proc.
 *
 *                   v2 (unified)                      v1 (hybrid/legacy)
 *   cpu user/sys    cpu.stat user_usec/system_usec    cpuacct.usage_user / usage_sys
 *   swap            memory.swap.current / .max        memory.memsw.* minus memory.*
 *   tasks           cgroup.threads, pids.max          pids hierarchy: tasks, pids.max
 *   I/O             io.stat rbytes/wbytes/rios/wios   /proc/<pid>/io of the sandbox's processes
 *                                                     (sandboxes have no blkio cgroup there)
 *   load            tasks in state R or D, from /proc/<tid>/stat (at most USAGE_TASKS_MAX)
 *   network         -1 here; engine_usage() then fills net_* from the counters of the host end
 *                   of the sandbox's veth (engine_network_usage(), network.c), when it has one
 */
#include "coved/engine/usage.h"
#include "lib/fdutil.h"
#include "lib/macro.h"
#include "lib/parse.h"
#include "runtime/cgroup.h"

#define USAGE_FILE_MAX  (64 * 1024)
#define USAGE_TASKS_MAX 4096

/* "key value" lines: value of key, or -1. */
static int64_t keyed(const char *text, const char *key)
{
        size_t kl = strlen(key);
        for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
                if (strncmp(p, key, kl) == 0 && (p[kl] == ' ' || p[kl] == '=')) {
                        char v[32];
                        size_t l = strcspn(p + kl + 1, " \n");
                        uint64_t u;
                        if (l == 0 || l >= sizeof(v))
                                return -1;
                        memcpy(v, p + kl + 1, l);
                        v[l] = '\0';
                        return safe_atou64(v, &u) == 0 && u <= INT64_MAX ? (int64_t)u : -1;
                }
        return -1;
}

static char *read_in(const char *dir, const char *file)
{
        cleanup_free char *path = xasprintf("%s/%s", dir, file);
        char *text = NULL;
        size_t len;
        if (read_small_file(path, USAGE_FILE_MAX, &text, &len) < 0)
                return NULL;
        return text;
}

/* A file holding one number ("max" = -1). */
static int64_t number_in(const char *dir, const char *file)
{
        cleanup_free char *t = read_in(dir, file);
        uint64_t v;
        if (!t)
                return -1;
        t[strcspn(t, "\n")] = '\0';
        if (safe_atou64(t, &v) < 0 || v > INT64_MAX)
                return -1;
        return (int64_t)v;
}

/* "huge" limits mean none (v1 writes PAGE_COUNTER_MAX pages). */
static int64_t limit_or_none(int64_t v)
{
        return v < 0 || v >= (INT64_C(1) << 60) ? -1 : v;
}

/* Counts tasks in state R or D among the thread IDs listed in a tasks file. */
static int64_t runnable_of(const char *dir, const char *file, int64_t *ret_tasks)
{
        cleanup_free char *list = read_in(dir, file);
        int64_t runnable = 0, n = 0;
        if (!list)
                return -1;
        for (char *p = list, *next; *p && n < USAGE_TASKS_MAX; p = next) {
                next = p + strcspn(p, "\n");
                if (*next)
                        *next++ = '\0';
                uint32_t tid;
                if (safe_atou32(p, &tid) < 0)
                        continue;
                n++;
                char path[64];
                cleanup_free char *stat = NULL;
                size_t len;
                (void)snprintf(path, sizeof(path), "/proc/%u/stat", tid);
                if (read_small_file(path, 4096, &stat, &len) < 0)
                        continue;
                const char *rp = strrchr(stat, ')'); /* comm may hold anything but ')' last */
                if (rp && rp[1] == ' ' && (rp[2] == 'R' || rp[2] == 'D'))
                        runnable++;
        }
        if (ret_tasks && *ret_tasks < 0)
                *ret_tasks = n;
        return runnable;
}

/* v1 has no per-cgroup I/O counters for our sandboxes: the sum of /proc/<pid>/io over the
 * cgroup's processes (processes that exited take their share with them; rates clamp at 0). */
static void io_of_processes(const char *dir, struct sandbox_usage *u)
{
        cleanup_free char *procs = read_in(dir, "cgroup.procs");
        int64_t rb = 0, wb = 0, ro = 0, wo = 0, n = 0;
        if (!procs)
                return;
        for (char *p = procs, *next; *p && n < USAGE_TASKS_MAX; p = next) {
                next = p + strcspn(p, "\n");
                if (*next)
                        *next++ = '\0';
                uint32_t pid;
                if (safe_atou32(p, &pid) < 0)
                        continue;
                n++;
                char path[64];
                cleanup_free char *io = NULL;
                size_t len;
                (void)snprintf(path, sizeof(path), "/proc/%u/io", pid);
                if (read_small_file(path, 4096, &io, &len) < 0)
                        continue;
                rb += MAX(keyed(io, "read_bytes:"), (int64_t)0);
                wb += MAX(keyed(io, "write_bytes:"), (int64_t)0);
                ro += MAX(keyed(io, "syscr:"), (int64_t)0);
                wo += MAX(keyed(io, "syscw:"), (int64_t)0);
        }
        u->io_read_bytes = rb;
        u->io_write_bytes = wb;
        u->io_read_ops = ro;
        u->io_write_ops = wo;
}

static void usage_v2(const char *cg, struct sandbox_usage *u)
{
        cleanup_free char *dir = cgroup_path(cg, NULL);
        if (!dir)
                return;
        cleanup_free char *cpu = read_in(dir, "cpu.stat");
        if (cpu) {
                int64_t us = keyed(cpu, "user_usec"), ss = keyed(cpu, "system_usec");
                u->cpu_user_ns = us >= 0 ? us * 1000 : -1;
                u->cpu_system_ns = ss >= 0 ? ss * 1000 : -1;
        }
        u->swap_bytes = number_in(dir, "memory.swap.current");
        u->swap_limit = limit_or_none(number_in(dir, "memory.swap.max"));
        u->tasks_max = limit_or_none(number_in(dir, "pids.max"));
        u->runnable = runnable_of(dir, "cgroup.threads", &u->tasks);
        cleanup_free char *io = read_in(dir, "io.stat");
        if (io) { /* one line per device: "8:0 rbytes=… wbytes=… rios=… wios=… …" */
                int64_t rb = 0, wb = 0, ro = 0, wo = 0;
                for (char *line = io; line && *line;) {
                        char *eol = strchr(line, '\n');
                        if (eol)
                                *eol = '\0';
                        for (char *f = strchr(line, ' '); f; f = strchr(f + 1, ' ')) {
                                int64_t v;
                                if ((v = keyed(f + 1, "rbytes")) >= 0)
                                        rb += v;
                                else if ((v = keyed(f + 1, "wbytes")) >= 0)
                                        wb += v;
                                else if ((v = keyed(f + 1, "rios")) >= 0)
                                        ro += v;
                                else if ((v = keyed(f + 1, "wios")) >= 0)
                                        wo += v;
                        }
                        line = eol ? eol + 1 : NULL;
                }
                u->io_read_bytes = rb;
                u->io_write_bytes = wb;
                u->io_read_ops = ro;
                u->io_write_ops = wo;
        }
}

static void usage_v1(const char *cg, struct sandbox_usage *u)
{
        cleanup_free char *acct = cgroup_path(cg, "cpuacct");
        if (acct) {
                u->cpu_user_ns = number_in(acct, "cpuacct.usage_user");
                u->cpu_system_ns = number_in(acct, "cpuacct.usage_sys");
        }
        cleanup_free char *mem = cgroup_path(cg, "memory");
        if (mem) {
                int64_t memsw = number_in(mem, "memory.memsw.usage_in_bytes");
                int64_t memsw_limit = limit_or_none(number_in(mem, "memory.memsw.limit_in_bytes"));
                int64_t usage = number_in(mem, "memory.usage_in_bytes");
                int64_t limit = limit_or_none(number_in(mem, "memory.limit_in_bytes"));
                if (memsw >= 0 && usage >= 0)
                        u->swap_bytes = MAX(memsw - usage, (int64_t)0);
                if (memsw_limit >= 0 && limit >= 0)
                        u->swap_limit = MAX(memsw_limit - limit, (int64_t)0);
        }
        cleanup_free char *pids = cgroup_path(cg, "pids");
        if (pids) {
                u->tasks_max = limit_or_none(number_in(pids, "pids.max"));
                u->runnable = runnable_of(pids, "tasks", &u->tasks);
                io_of_processes(pids, u);
        }
}

int usage_of_cgroup(const char *cg, struct sandbox_usage *ret, struct cove_err **err)
{
        struct cgroup_stats st = { 0 };
        enum cgroup_layout layout;
        int r = cgroup_stats(cg, &st, err);
        if (r < 0)
                return r;
        struct sandbox_usage u = {
                .memory_bytes = (int64_t)st.memory_usage,
                .memory_limit = st.memory_limit == UINT64_MAX ? -1 : (int64_t)st.memory_limit,
                .memory_cache = (int64_t)st.memory_cache,
                .cpu_usage_ns = (int64_t)st.cpu_usage_ns,
                .tasks = (int64_t)st.pids_current,
        };
        int64_t *unknown[] = {
                &u.swap_bytes,     &u.swap_limit,     &u.cpu_user_ns,   &u.cpu_system_ns,
                &u.tasks_max,      &u.runnable,       &u.io_read_bytes, &u.io_write_bytes,
                &u.io_read_ops,    &u.io_write_ops,   &u.net_rx_bytes,  &u.net_tx_bytes,
                &u.net_rx_packets, &u.net_tx_packets, &u.net_rx_errors, &u.net_tx_errors,
                &u.net_rx_drops,   &u.net_tx_drops,
        };
        for (size_t i = 0; i < ARRAY_SIZE(unknown); i++)
                *unknown[i] = -1;
        if (cgroup_layout(&layout, NULL) >= 0) {
                if (layout == CGROUP_LAYOUT_V2)
                        usage_v2(cg, &u);
                else
                        usage_v1(cg, &u);
        }
        *ret = u;
        return 0;
}
