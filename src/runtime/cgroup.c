/* SPDX-License-Identifier: MIT */
/*
 * cgroup.c — v1 and v2 drivers behind cgroup.h.
 *
 * The hierarchy table (which mount carries which controller) is built once under a mutex and
 * is read-only afterwards. Every operation works on paths "<mount>/<name>/<file>".
 */
#include "runtime/cgroup.h"

#include "lib/buf.h"
#include "lib/fdutil.h"
#include "lib/macro.h"
#include "lib/parse.h"

#include <fcntl.h>
#include <inttypes.h>
#include <linux/magic.h>
#include <pthread.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <time.h>

#include "lib/banned.h"

#define CGROUP_ROOT      "/sys/fs/cgroup"
#define CGROUP_FILE_MAX  (64 * 1024)
#define CGROUP_PROCS_MAX (4 * 1024 * 1024)
#define CGROUP_MAX_HIER  8
#define CFS_PERIOD_US    100000ULL

enum {
        CTRL_MEMORY = 1 << 0,
        CTRL_CPU = 1 << 1,
        CTRL_CPUACCT = 1 << 2,
        CTRL_PIDS = 1 << 3,
        CTRL_FREEZER = 1 << 4,
};

static const struct {
        const char *name;
        unsigned bit;
} ctrl_names[] = {
        { "memory", CTRL_MEMORY }, { "cpu", CTRL_CPU },         { "cpuacct", CTRL_CPUACCT },
        { "pids", CTRL_PIDS },     { "freezer", CTRL_FREEZER },
};

struct hier {
        char *mnt;      /* owned */
        unsigned ctrls; /* CTRL_* carried by this mount (v1) */
        char *saved;    /* owned; the caller's path before cgroup_join (for cgroup_leave) */
};

static pthread_mutex_t cg_lock = PTHREAD_MUTEX_INITIALIZER;
static int cg_layout; /* 0 = not detected yet */
static struct hier cg_hier[CGROUP_MAX_HIER];
static size_t cg_n;

static void hier_reset_locked(void)
{
        for (size_t i = 0; i < cg_n; i++) {
                free(cg_hier[i].mnt);
                free(cg_hier[i].saved);
        }
        memset(cg_hier, 0, sizeof(cg_hier));
        cg_n = 0;
        cg_layout = 0;
}

static unsigned ctrl_bits_from_opts(const char *opts)
{
        unsigned bits = 0;
        const char *p = opts;
        while (*p) {
                size_t l = strcspn(p, ",");
                for (size_t i = 0; i < ARRAY_SIZE(ctrl_names); i++)
                        if (strlen(ctrl_names[i].name) == l && memcmp(p, ctrl_names[i].name, l) == 0)
                                bits |= ctrl_names[i].bit;
                p += l;
                if (*p == ',')
                        p++;
        }
        return bits;
}

/* mountinfo: "id parent maj:min root mountpoint opts [optional...] - fstype source superopts" */
static int detect_v1_locked(struct cove_err **err)
{
        cleanup_fclose FILE *f = fopen("/proc/self/mountinfo", "re");
        cleanup_free char *line = NULL;
        size_t cap = 0;

        if (!f)
                return cove_err_set(err, errno, "open /proc/self/mountinfo: %m");
        while (getline(&line, &cap, f) > 0) {
                char *sep = strstr(line, " - ");
                if (!sep)
                        continue;
                char mnt[4096], fstype[64], src[256], opts[1024];
                if (sscanf(line, "%*s %*s %*s %*s %4095s", mnt) != 1)
                        continue;
                if (sscanf(sep + 3, "%63s %255s %1023s", fstype, src, opts) != 3)
                        continue;
                if (!streq(fstype, "cgroup"))
                        continue;
                unsigned bits = ctrl_bits_from_opts(opts);
                if (!bits || cg_n >= CGROUP_MAX_HIER)
                        continue;
                if (strchr(mnt, '\\'))
                        continue; /* escaped mount point: not a standard layout */
                cg_hier[cg_n].mnt = xstrdup(mnt);
                cg_hier[cg_n].ctrls = bits;
                cg_n++;
        }
        if (cg_n == 0)
                return cove_err_set(err, ENOENT, "no cgroup v1 controller mounts under %s",
                                    CGROUP_ROOT);
        cg_layout = CGROUP_LAYOUT_V1;
        return 0;
}

static int detect_locked(struct cove_err **err)
{
        struct statfs sfs;

        if (cg_layout)
                return 0;
        if (statfs(CGROUP_ROOT, &sfs) < 0)
                return cove_err_set(err, errno, "statfs '%s': %m", CGROUP_ROOT);
        if (sfs.f_type == CGROUP2_SUPER_MAGIC) {
                cg_hier[0].mnt = xstrdup(CGROUP_ROOT);
                cg_hier[0].ctrls = CTRL_MEMORY | CTRL_CPU | CTRL_CPUACCT | CTRL_PIDS | CTRL_FREEZER;
                cg_n = 1;
                cg_layout = CGROUP_LAYOUT_V2;
                return 0;
        }
        if (sfs.f_type == TMPFS_MAGIC)
                return detect_v1_locked(err);
        return cove_err_set(err, EOPNOTSUPP, "unknown cgroup layout at %s (f_type 0x%lx)",
                            CGROUP_ROOT, (unsigned long)sfs.f_type);
}

static int detect(struct cove_err **err)
{
        pthread_mutex_lock(&cg_lock);
        int r = detect_locked(err);
        pthread_mutex_unlock(&cg_lock);
        return r;
}

int cgroup_layout(enum cgroup_layout *ret_layout, struct cove_err **err)
{
        int r = detect(err);
        if (r < 0)
                return r;
        *ret_layout = (enum cgroup_layout)cg_layout;
        return 0;
}

int cgroup_force_v2_root(const char *mountpoint)
{
        struct statfs sfs;

        pthread_mutex_lock(&cg_lock);
        hier_reset_locked();
        if (mountpoint) {
                if (statfs(mountpoint, &sfs) < 0 || sfs.f_type != CGROUP2_SUPER_MAGIC) {
                        pthread_mutex_unlock(&cg_lock);
                        return -EINVAL;
                }
                cg_hier[0].mnt = xstrdup(mountpoint);
                cg_hier[0].ctrls = CTRL_MEMORY | CTRL_CPU | CTRL_CPUACCT | CTRL_PIDS | CTRL_FREEZER;
                cg_n = 1;
                cg_layout = CGROUP_LAYOUT_V2;
        }
        pthread_mutex_unlock(&cg_lock);
        return 0;
}

static int name_check(const char *name, struct cove_err **err)
{
        const char *p = name;

        if (!name || !*name || strlen(name) > 255)
                return cove_err_set(err, EINVAL, "invalid cgroup name");
        while (*p) {
                size_t l = strcspn(p, "/");
                if (l == 0 || (l == 1 && p[0] == '.') || (l == 2 && p[0] == '.' && p[1] == '.'))
                        return cove_err_set(err, EINVAL, "invalid cgroup name '%s'", name);
                for (size_t i = 0; i < l; i++) {
                        char c = p[i];
                        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                              (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-'))
                                return cove_err_set(err, EINVAL, "invalid cgroup name '%s'",
                                                    name);
                }
                p += l;
                if (*p == '/') {
                        p++;
                        if (!*p)
                                return cove_err_set(err, EINVAL, "invalid cgroup name '%s'",
                                                    name);
                }
        }
        return 0;
}

static int prepare(const char *name, struct cove_err **err)
{
        int r = name_check(name, err);
        if (r < 0)
                return r;
        return detect(err);
}

static bool is_v2(void)
{
        return cg_layout == CGROUP_LAYOUT_V2;
}

/* The hierarchy carrying a controller (v2: the one tree), or NULL. */
static const struct hier *hier_for(unsigned ctrl)
{
        for (size_t i = 0; i < cg_n; i++)
                if (cg_hier[i].ctrls & ctrl)
                        return &cg_hier[i];
        return NULL;
}

static char *cg_file(const struct hier *h, const char *name, const char *file)
{
        if (file)
                return xasprintf("%s/%s/%s", h->mnt, name, file);
        return xasprintf("%s/%s", h->mnt, name);
}

static int cg_write(const struct hier *h, const char *name, const char *file, const char *value,
                    struct cove_err **err)
{
        cleanup_free char *p = cg_file(h, name, file);
        int r = write_string_file(p, value);
        if (r < 0)
                return cove_err_set(err, -r, "write '%s' to '%s': %m", value, p);
        return 0;
}

static int cg_read(const struct hier *h, const char *name, const char *file, char **ret,
                   struct cove_err **err)
{
        cleanup_free char *p = cg_file(h, name, file);
        int r = read_small_file(p, CGROUP_FILE_MAX, ret, NULL);
        if (r < 0)
                return cove_err_set(err, -r, "read '%s': %m", p);
        return 0;
}

static bool cg_has_file(const struct hier *h, const char *name, const char *file)
{
        cleanup_free char *p = cg_file(h, name, file);
        return access(p, F_OK) == 0;
}

/* First line of a file as an unsigned; "max" → UINT64_MAX. */
static int cg_read_u64(const struct hier *h, const char *name, const char *file, uint64_t *ret,
                       struct cove_err **err)
{
        cleanup_free char *s = NULL;
        int r = cg_read(h, name, file, &s, err);
        if (r < 0)
                return r;
        s[strcspn(s, "\n")] = '\0';
        if (streq(s, "max")) {
                *ret = UINT64_MAX;
                return 0;
        }
        r = safe_atou64(s, ret);
        if (r < 0)
                return cove_err_set(err, -r, "parse '%s' in %s/%s/%s", s, h->mnt, name, file);
        return 0;
}

/* "key value" line of a flat-keyed file; -ENOENT when the key is absent. */
static int keyed_u64(const char *text, const char *key, uint64_t *ret)
{
        size_t kl = strlen(key);
        for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
                if (strncmp(p, key, kl) == 0 && p[kl] == ' ') {
                        char v[32];
                        size_t l = strcspn(p + kl + 1, "\n");
                        if (l == 0 || l >= sizeof(v))
                                return -EINVAL;
                        memcpy(v, p + kl + 1, l);
                        v[l] = '\0';
                        return safe_atou64(v, ret);
                }
        }
        return -ENOENT;
}

static void sleep_ms(long ms)
{
        struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L };
        while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
                ;
}

static int64_t mono_ms(void)
{
        struct timespec ts;
        (void)clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- create ---------------------------------------------------------------------------- */

static int mkdir_p_cg(const char *mnt, const char *name, bool v2, struct cove_err **err)
{
        cleanup_free char *path = xasprintf("%s/%s", mnt, name);
        size_t base = strlen(mnt);

        /* Walk the components: mkdir each; on v2 enable controllers in each parent. */
        for (char *p = path + base + 1;; p++) {
                bool last = (*p == '\0');
                if (*p != '/' && !last)
                        continue;
                char saved = *p;
                *p = '\0';
                if (v2) {
                        /* Enable what the parent offers in the parent's subtree_control. */
                        char *slash = strrchr(path, '/');
                        *slash = '\0';
                        cleanup_free char *avail = NULL;
                        cleanup_free char *ctl = xasprintf("%s/cgroup.controllers", path);
                        cleanup_free char *sub = xasprintf("%s/cgroup.subtree_control", path);
                        *slash = '/';
                        if (read_small_file(ctl, CGROUP_FILE_MAX, &avail, NULL) == 0) {
                                static const char *const want[] = { "cpu", "memory", "pids" };
                                for (size_t i = 0; i < ARRAY_SIZE(want); i++) {
                                        size_t wl = strlen(want[i]);
                                        bool have = false;
                                        for (const char *q = avail; *q;) {
                                                size_t l = strcspn(q, " \n");
                                                if (l == wl && memcmp(q, want[i], l) == 0)
                                                        have = true;
                                                q += l;
                                                q += strspn(q, " \n");
                                        }
                                        if (!have)
                                                continue;
                                        cleanup_free char *v = xasprintf("+%s", want[i]);
                                        int r = write_string_file(sub, v);
                                        if (r < 0)
                                                return cove_err_set(err, -r, "write '%s' to '%s': %m",
                                                                    v, sub);
                                }
                        }
                }
                if (mkdir(path, 0755) < 0 && errno != EEXIST)
                        return cove_err_set(err, errno, "mkdir '%s': %m", path);
                *p = saved;
                if (last)
                        break;
        }
        return 0;
}

static int set_limits_v2(const struct hier *h, const char *name, const struct cgroup_limits *lim,
                         struct cove_err **err)
{
        char v[64];
        int r;

        if (lim->memory_mb) {
                if (!cg_has_file(h, name, "memory.max"))
                        return cove_err_set(err, EOPNOTSUPP, "cgroup controller 'memory' not available");
                (void)snprintf(v, sizeof(v), "%" PRIu64, lim->memory_mb * 1024 * 1024);
                r = cg_write(h, name, "memory.max", v, err);
                if (r < 0)
                        return r;
                if (cg_has_file(h, name, "memory.swap.max")) {
                        r = cg_write(h, name, "memory.swap.max", "0", err);
                        if (r < 0)
                                return r;
                }
        }
        if (lim->cpu_count) {
                if (!cg_has_file(h, name, "cpu.max"))
                        return cove_err_set(err, EOPNOTSUPP, "cgroup controller 'cpu' not available");
                (void)snprintf(v, sizeof(v), "%llu %llu", lim->cpu_count * CFS_PERIOD_US,
                               CFS_PERIOD_US);
                r = cg_write(h, name, "cpu.max", v, err);
                if (r < 0)
                        return r;
        }
        if (lim->pids_max) {
                if (!cg_has_file(h, name, "pids.max"))
                        return cove_err_set(err, EOPNOTSUPP, "cgroup controller 'pids' not available");
                (void)snprintf(v, sizeof(v), "%" PRIu32, lim->pids_max);
                r = cg_write(h, name, "pids.max", v, err);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int set_limits_v1(const char *name, const struct cgroup_limits *lim, struct cove_err **err)
{
        const struct hier *h;
        char v[64];
        int r;

        if (lim->memory_mb) {
                h = hier_for(CTRL_MEMORY);
                if (!h)
                        return cove_err_set(err, EOPNOTSUPP, "cgroup controller 'memory' not available");
                (void)snprintf(v, sizeof(v), "%" PRIu64, lim->memory_mb * 1024 * 1024);
                r = cg_write(h, name, "memory.limit_in_bytes", v, err);
                if (r < 0)
                        return r;
                /* memsw >= limit: set after the limit; absent without swap accounting. */
                if (cg_has_file(h, name, "memory.memsw.limit_in_bytes")) {
                        r = cg_write(h, name, "memory.memsw.limit_in_bytes", v, err);
                        if (r < 0)
                                return r;
                }
        }
        if (lim->cpu_count) {
                h = hier_for(CTRL_CPU);
                if (!h)
                        return cove_err_set(err, EOPNOTSUPP, "cgroup controller 'cpu' not available");
                (void)snprintf(v, sizeof(v), "%llu", CFS_PERIOD_US);
                r = cg_write(h, name, "cpu.cfs_period_us", v, err);
                if (r < 0)
                        return r;
                (void)snprintf(v, sizeof(v), "%llu", lim->cpu_count * CFS_PERIOD_US);
                r = cg_write(h, name, "cpu.cfs_quota_us", v, err);
                if (r < 0)
                        return r;
        }
        if (lim->pids_max) {
                h = hier_for(CTRL_PIDS);
                if (!h)
                        return cove_err_set(err, EOPNOTSUPP, "cgroup controller 'pids' not available");
                (void)snprintf(v, sizeof(v), "%" PRIu32, lim->pids_max);
                r = cg_write(h, name, "pids.max", v, err);
                if (r < 0)
                        return r;
        }
        return 0;
}

int cgroup_create(const char *name, const struct cgroup_limits *limits, struct cove_err **err)
{
        static const struct cgroup_limits none = { 0 };
        int r = prepare(name, err);
        if (r < 0)
                goto fail;
        if (!limits)
                limits = &none;
        for (size_t i = 0; i < cg_n; i++) {
                r = mkdir_p_cg(cg_hier[i].mnt, name, is_v2(), err);
                if (r < 0)
                        goto fail;
        }
        r = is_v2() ? set_limits_v2(&cg_hier[0], name, limits, err) : set_limits_v1(name, limits, err);
        if (r < 0)
                goto fail;
        return 0;
fail:
        (void)cgroup_destroy(name, NULL);
        return cove_err_wrap(err, "create cgroup '%s'", name ? name : "");
}

/* ---- join / leave ---------------------------------------------------------------------- */

/* Saves the caller's current paths from /proc/self/cgroup (once). */
static void save_self_locked(void)
{
        cleanup_fclose FILE *f = NULL;
        cleanup_free char *line = NULL;
        size_t cap = 0;

        for (size_t i = 0; i < cg_n; i++)
                if (cg_hier[i].saved)
                        return;
        f = fopen("/proc/self/cgroup", "re");
        if (!f)
                return;
        while (getline(&line, &cap, f) > 0) {
                line[strcspn(line, "\n")] = '\0';
                char *c1 = strchr(line, ':');
                char *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
                if (!c2)
                        continue;
                *c2 = '\0';
                const char *ctrls = c1 + 1, *path = c2 + 1;
                for (size_t i = 0; i < cg_n; i++) {
                        bool match = is_v2() ? (*ctrls == '\0' && line[0] == '0')
                                             : (ctrl_bits_from_opts(ctrls) & cg_hier[i].ctrls) != 0;
                        if (match && !cg_hier[i].saved)
                                cg_hier[i].saved = xstrdup(path);
                }
        }
}

int cgroup_join(const char *name, pid_t pid, struct cove_err **err)
{
        char v[DECIMAL_STR_MAX(pid_t)];
        int r = prepare(name, err);
        if (r < 0)
                return r;
        if (pid == 0) {
                pthread_mutex_lock(&cg_lock);
                save_self_locked();
                pthread_mutex_unlock(&cg_lock);
        }
        (void)snprintf(v, sizeof(v), "%d", pid == 0 ? (int)getpid() : (int)pid);
        for (size_t i = 0; i < cg_n; i++) {
                r = cg_write(&cg_hier[i], name, "cgroup.procs", v, err);
                if (r < 0)
                        return cove_err_wrap(err, "join cgroup '%s'", name);
        }
        return 0;
}

int cgroup_leave(struct cove_err **err)
{
        char v[DECIMAL_STR_MAX(pid_t)];
        int r = detect(err);
        if (r < 0)
                return r;
        (void)snprintf(v, sizeof(v), "%d", (int)getpid());
        for (size_t i = 0; i < cg_n; i++) {
                const char *saved = cg_hier[i].saved ? cg_hier[i].saved : "/";
                cleanup_free char *p = xasprintf("%s%s/cgroup.procs", cg_hier[i].mnt,
                                                 streq(saved, "/") ? "" : saved);
                r = write_string_file(p, v);
                if (r < 0)
                        return cove_err_set(err, -r, "leave cgroup: write '%s': %m", p);
        }
        return 0;
}

/* ---- freeze / thaw --------------------------------------------------------------------- */

static int v2_event(const struct hier *h, const char *name, const char *key, uint64_t *ret,
                    struct cove_err **err)
{
        cleanup_free char *s = NULL;
        int r = cg_read(h, name, "cgroup.events", &s, err);
        if (r < 0)
                return r;
        r = keyed_u64(s, key, ret);
        if (r < 0)
                return cove_err_set(err, -r, "cgroup.events of '%s' has no '%s'", name, key);
        return 0;
}

static int set_frozen(const char *name, bool freeze, struct cove_err **err)
{
        int64_t deadline;
        int r = prepare(name, err);
        if (r < 0)
                return r;
        deadline = mono_ms() + CGROUP_SETTLE_TIMEOUT_MS;
        if (is_v2()) {
                const struct hier *h = &cg_hier[0];
                r = cg_write(h, name, "cgroup.freeze", freeze ? "1" : "0", err);
                if (r < 0)
                        return r;
                for (long wait = 1;; wait = MIN(wait * 2, 20)) {
                        uint64_t v;
                        r = v2_event(h, name, "frozen", &v, err);
                        if (r < 0)
                                return r;
                        if ((v == 1) == freeze)
                                return 0;
                        if (mono_ms() > deadline)
                                break;
                        sleep_ms(wait);
                }
        } else {
                const struct hier *h = hier_for(CTRL_FREEZER);
                const char *want = freeze ? "FROZEN" : "THAWED";
                if (!h)
                        return cove_err_set(err, EOPNOTSUPP, "cgroup controller 'freezer' not available");
                for (long wait = 1;; wait = MIN(wait * 2, 20)) {
                        cleanup_free char *s = NULL;
                        /* Re-writing FROZEN retries a freeze that got stuck in FREEZING. */
                        r = cg_write(h, name, "freezer.state", want, err);
                        if (r < 0)
                                return r;
                        r = cg_read(h, name, "freezer.state", &s, err);
                        if (r < 0)
                                return r;
                        s[strcspn(s, "\n")] = '\0';
                        if (streq(s, want))
                                return 0;
                        if (mono_ms() > deadline)
                                break;
                        sleep_ms(wait);
                }
        }
        return cove_err_set(err, ETIMEDOUT, "%s cgroup '%s': not settled after %d ms",
                            freeze ? "freeze" : "thaw", name, CGROUP_SETTLE_TIMEOUT_MS);
}

int cgroup_freeze(const char *name, struct cove_err **err)
{
        return set_frozen(name, true, err);
}

int cgroup_thaw(const char *name, struct cove_err **err)
{
        return set_frozen(name, false, err);
}

int cgroup_is_frozen(const char *name, struct cove_err **err)
{
        int r = prepare(name, err);
        if (r < 0)
                return r;
        if (is_v2()) {
                uint64_t v;
                r = v2_event(&cg_hier[0], name, "frozen", &v, err);
                return r < 0 ? r : v == 1;
        }
        const struct hier *h = hier_for(CTRL_FREEZER);
        cleanup_free char *s = NULL;
        if (!h)
                return cove_err_set(err, EOPNOTSUPP, "cgroup controller 'freezer' not available");
        r = cg_read(h, name, "freezer.state", &s, err);
        if (r < 0)
                return r;
        return strncmp(s, "FROZEN", 6) == 0;
}

/* ---- pids / kill / destroy ------------------------------------------------------------- */

static int read_pids(const struct hier *h, const char *name, pid_t **ret, size_t *ret_n,
                     struct cove_err **err)
{
        cleanup_free char *p = cg_file(h, name, "cgroup.procs");
        cleanup_free char *s = NULL;
        cleanup_free pid_t *v = NULL;
        size_t n = 0, cap = 0, len = 0;
        int r = read_small_file(p, CGROUP_PROCS_MAX, &s, &len);
        if (r < 0)
                return cove_err_set(err, -r, "read '%s': %m", p);
        for (char *q = s, *end = s + len; q < end;) {
                size_t l = strcspn(q, "\n");
                uint32_t pid;
                q[l] = '\0';
                if (l > 0 && safe_atou32(q, &pid) == 0 && pid > 0) {
                        if (n == cap) {
                                cap = cap ? cap * 2 : 16;
                                v = xrealloc(v, cap * sizeof(pid_t));
                        }
                        v[n++] = (pid_t)pid;
                }
                q += l + 1;
        }
        *ret = TAKE_PTR(v);
        *ret_n = n;
        return 0;
}

int cgroup_pids(const char *name, pid_t **ret, size_t *ret_n, struct cove_err **err)
{
        int r = prepare(name, err);
        if (r < 0)
                return r;
        return read_pids(&cg_hier[0], name, ret, ret_n, err);
}

/* A zombie whose parent lives outside the cgroup is the caller's to reap: count it as gone. */
static bool pid_is_zombie(pid_t pid)
{
        char path[32 + DECIMAL_STR_MAX(pid_t)];
        cleanup_free char *s = NULL;
        (void)snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
        if (read_small_file(path, 4096, &s, NULL) < 0)
                return true; /* gone */
        char *rp = strrchr(s, ')');
        return rp && rp[1] == ' ' && (rp[2] == 'Z' || rp[2] == 'X');
}

/* 1 when every hierarchy's cgroup.procs is empty (or holds zombies only). */
static int is_empty(const char *name, struct cove_err **err)
{
        for (size_t i = 0; i < cg_n; i++) {
                cleanup_free pid_t *pids = NULL;
                size_t n = 0;
                if (!cg_has_file(&cg_hier[i], name, NULL))
                        continue;
                int r = read_pids(&cg_hier[i], name, &pids, &n, err);
                if (r < 0)
                        return r;
                for (size_t j = 0; j < n; j++)
                        if (!pid_is_zombie(pids[j]))
                                return 0;
        }
        return 1;
}

static int kill_listed(const struct hier *h, const char *name, struct cove_err **err)
{
        cleanup_free pid_t *pids = NULL;
        size_t n = 0;
        int r = read_pids(h, name, &pids, &n, err);
        if (r < 0)
                return r;
        for (size_t i = 0; i < n; i++)
                if (kill(pids[i], SIGKILL) < 0 && errno != ESRCH)
                        return cove_err_set(err, errno, "kill %d: %m", (int)pids[i]);
        return 0;
}

int cgroup_kill_all(const char *name, struct cove_err **err)
{
        int64_t deadline;
        int r = prepare(name, err);
        if (r < 0)
                return r;
        if (!cgroup_exists(name))
                return 0;
        deadline = mono_ms() + CGROUP_SETTLE_TIMEOUT_MS;
        for (long wait = 1;; wait = MIN(wait * 2, 20)) {
                r = is_empty(name, err);
                if (r < 0)
                        goto fail;
                if (r > 0)
                        return 0;
                if (mono_ms() > deadline)
                        break;
                if (is_v2() && cg_has_file(&cg_hier[0], name, "cgroup.kill")) {
                        r = cg_write(&cg_hier[0], name, "cgroup.kill", "1", err);
                } else {
                        /* Freeze so nothing forks between reading the list and the kill;
                         * SIGKILL is delivered to frozen tasks on thaw. */
                        const struct hier *h = is_v2() ? &cg_hier[0] : hier_for(CTRL_FREEZER);
                        bool frozen = h && cgroup_freeze(name, NULL) >= 0;
                        r = kill_listed(h ? h : &cg_hier[0], name, err);
                        if (frozen)
                                (void)cgroup_thaw(name, NULL);
                }
                if (r < 0)
                        goto fail;
                sleep_ms(wait);
        }
        r = cove_err_set(err, ETIMEDOUT, "processes still alive after %d ms",
                         CGROUP_SETTLE_TIMEOUT_MS);
fail:
        return cove_err_wrap(err, "kill cgroup '%s'", name);
}

int cgroup_destroy(const char *name, struct cove_err **err)
{
        int r = prepare(name, err);
        if (r < 0)
                return r;
        for (size_t i = 0; i < cg_n; i++) {
                cleanup_free char *p = cg_file(&cg_hier[i], name, NULL);
                int64_t deadline = mono_ms() + CGROUP_SETTLE_TIMEOUT_MS / 5;
                for (long wait = 1;; wait = MIN(wait * 2, 20)) {
                        if (rmdir(p) == 0 || errno == ENOENT)
                                break;
                        if (errno != EBUSY || mono_ms() > deadline)
                                return cove_err_set(err, errno, "rmdir cgroup '%s': %m", p);
                        sleep_ms(wait);
                }
        }
        return 0;
}

bool cgroup_exists(const char *name)
{
        if (prepare(name, NULL) < 0)
                return false;
        for (size_t i = 0; i < cg_n; i++)
                if (cg_has_file(&cg_hier[i], name, NULL))
                        return true;
        return false;
}

char *cgroup_path(const char *name, const char *controller)
{
        unsigned bit = controller ? ctrl_bits_from_opts(controller) : 0;
        if (prepare(name, NULL) < 0)
                return NULL;
        const struct hier *h = bit ? hier_for(bit) : &cg_hier[0];
        return h ? cg_file(h, name, NULL) : NULL;
}

int cgroup_list_children(const char *parent, char ***ret, struct cove_err **err)
{
        cleanup_strv char **v = NULL;
        size_t n = 0;
        int r = prepare(parent, err);
        if (r < 0)
                return r;
        v = xzalloc(sizeof(char *));
        for (size_t i = 0; i < cg_n; i++) {
                cleanup_free char *p = cg_file(&cg_hier[i], parent, NULL);
                cleanup_closedir DIR *d = opendir(p);
                struct dirent *de;
                if (!d) {
                        if (errno == ENOENT)
                                continue;
                        return cove_err_set(err, errno, "open '%s': %m", p);
                }
                while ((de = readdir(d))) {
                        if (de->d_type != DT_DIR || de->d_name[0] == '.')
                                continue;
                        cleanup_free char *child = xasprintf("%s/%s", parent, de->d_name);
                        bool dup = false;
                        for (size_t j = 0; j < n; j++)
                                if (streq(v[j], child))
                                        dup = true;
                        if (dup)
                                continue;
                        v = xrealloc(v, (n + 2) * sizeof(char *));
                        v[n++] = TAKE_PTR(child);
                        v[n] = NULL;
                }
        }
        *ret = TAKE_PTR(v);
        return 0;
}

/* ---- stats ----------------------------------------------------------------------------- */

static uint64_t clamp_unlimited(uint64_t v)
{
        /* v1 reports "unlimited" as PAGE_COUNTER_MAX pages (0x7ffffffffffff000 on 4k). */
        return v >= (1ULL << 62) ? UINT64_MAX : v;
}

int cgroup_stats(const char *name, struct cgroup_stats *ret, struct cove_err **err)
{
        struct cgroup_stats s = { 0 };
        cleanup_free char *txt = NULL;
        const struct hier *h;
        int r = prepare(name, err);
        if (r < 0)
                return r;
        if (is_v2()) {
                h = &cg_hier[0];
                if (cg_has_file(h, name, "memory.current")) {
                        r = cg_read_u64(h, name, "memory.current", &s.memory_usage, err);
                        if (r < 0)
                                return r;
                        r = cg_read_u64(h, name, "memory.max", &s.memory_limit, err);
                        if (r < 0)
                                return r;
                } else {
                        s.memory_limit = UINT64_MAX;
                }
                if (cg_read(h, name, "cpu.stat", &txt, NULL) == 0) {
                        uint64_t us;
                        if (keyed_u64(txt, "usage_usec", &us) == 0)
                                s.cpu_usage_ns = us * 1000;
                }
                if (cg_has_file(h, name, "pids.current")) {
                        r = cg_read_u64(h, name, "pids.current", &s.pids_current, err);
                        if (r < 0)
                                return r;
                }
                cleanup_free char *ms = NULL;
                if (cg_read(h, name, "memory.stat", &ms, NULL) == 0)
                        (void)keyed_u64(ms, "file", &s.memory_cache);
                cleanup_free char *ev = NULL;
                if (cg_read(h, name, "memory.events", &ev, NULL) == 0 &&
                    keyed_u64(ev, "oom_kill", &s.oom_kills) == 0)
                        s.has_oom_kills = true;
        } else {
                s.memory_limit = UINT64_MAX;
                if ((h = hier_for(CTRL_MEMORY))) {
                        r = cg_read_u64(h, name, "memory.usage_in_bytes", &s.memory_usage, err);
                        if (r < 0)
                                return r;
                        r = cg_read_u64(h, name, "memory.limit_in_bytes", &s.memory_limit, err);
                        if (r < 0)
                                return r;
                        s.memory_limit = clamp_unlimited(s.memory_limit);
                        cleanup_free char *ms = NULL;
                        if (cg_read(h, name, "memory.stat", &ms, NULL) == 0 &&
                            keyed_u64(ms, "total_cache", &s.memory_cache) < 0)
                                (void)keyed_u64(ms, "cache", &s.memory_cache);
                        cleanup_free char *oc = NULL;
                        if (cg_read(h, name, "memory.oom_control", &oc, NULL) == 0 &&
                            keyed_u64(oc, "oom_kill", &s.oom_kills) == 0)
                                s.has_oom_kills = true;
                }
                if ((h = hier_for(CTRL_CPUACCT))) {
                        r = cg_read_u64(h, name, "cpuacct.usage", &s.cpu_usage_ns, err);
                        if (r < 0)
                                return r;
                }
                if ((h = hier_for(CTRL_PIDS))) {
                        r = cg_read_u64(h, name, "pids.current", &s.pids_current, err);
                        if (r < 0)
                                return r;
                }
        }
        *ret = s;
        return 0;
}
