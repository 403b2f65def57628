/* SPDX-License-Identifier: MIT */
/*
 * cgroup.c — the one interface of cgroup.h: layout detection, the hierarchy table, cgroup
 * names, join/leave, the kill loop, destroy, listing; the layout-specific parts are the drivers
 * in cgroup_v1.c and cgroup_v2.c (cgroup_internal.h).
 *
 * The hierarchy table (which mount carries which controller) is built once under a mutex and
 * is read-only afterwards. Every operation works on paths "<mount>/<name>/<file>".
 */
#include "runtime/cgroup_internal.h"

#include "lib/fdutil.h"
#include "lib/macro.h"
#include "lib/parse.h"
#include "runtime/phase.h"

#include <fcntl.h>
#include <inttypes.h>
#include <linux/magic.h>
#include <pthread.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <time.h>

#include "lib/banned.h"

static const struct {
        const char *name;
        unsigned bit;
} ctrl_names[] = {
        { "memory", CTRL_MEMORY }, { "cpu", CTRL_CPU },         { "cpuacct", CTRL_CPUACCT },
        { "pids", CTRL_PIDS },     { "freezer", CTRL_FREEZER }, { "blkio", CTRL_BLKIO },
};

static pthread_mutex_t cg_lock = PTHREAD_MUTEX_INITIALIZER;
static int cg_layout; /* 0 = not detected yet */
struct hier cg_hier[CGROUP_MAX_HIER];
size_t cg_n;

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

unsigned cg_ctrl_bits_from_opts(const char *opts)
{
        unsigned bits = 0;
        const char *p = opts;
        while (*p) {
                size_t l = strcspn(p, ",");
                for (size_t i = 0; i < ARRAY_SIZE(ctrl_names); i++)
                        if (strlen(ctrl_names[i].name) == l &&
                            memcmp(p, ctrl_names[i].name, l) == 0)
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
        unsigned seen = 0;

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
                unsigned bits = cg_ctrl_bits_from_opts(opts);
                if (strchr(mnt, '\\'))
                        continue; /* escaped mount point: not a standard layout */
                /* blkio only where it can weigh I/O (BFQ or CFQ): otherwise a sandbox would get
                 * one more directory for nothing. */
                if (bits & CTRL_BLKIO) {
                        cleanup_free char *w1 = xasprintf("%s/blkio.weight", mnt);
                        cleanup_free char *w2 = xasprintf("%s/blkio.bfq.weight", mnt);
                        if (access(w1, F_OK) < 0 && access(w2, F_OK) < 0)
                                bits &= ~(unsigned)CTRL_BLKIO;
                }
                /* One entry per hierarchy: a v1 controller lives in exactly one, so a mount
                 * carrying controllers already seen is the same hierarchy mounted again (a
                 * chroot's bind of /sys/fs/cgroup, a container's view), which may go away;
                 * and only mounts under CGROUP_ROOT, where the layout says they are. */
                if (strncmp(mnt, CGROUP_ROOT "/", strlen(CGROUP_ROOT) + 1) != 0 || (bits & seen))
                        continue;
                if (!bits || cg_n >= CGROUP_MAX_HIER)
                        continue;
                seen |= bits;
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
                                return cove_err_set(err, EINVAL, "invalid cgroup name '%s'", name);
                }
                p += l;
                if (*p == '/') {
                        p++;
                        if (!*p)
                                return cove_err_set(err, EINVAL, "invalid cgroup name '%s'", name);
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

static const struct cgroup_driver *driver(void)
{
        return cg_layout == CGROUP_LAYOUT_V2 ? &cgroup_driver_v2 : &cgroup_driver_v1;
}

static bool is_v2(void)
{
        return cg_layout == CGROUP_LAYOUT_V2;
}

const struct hier *cg_hier_for(unsigned ctrl)
{
        for (size_t i = 0; i < cg_n; i++)
                if (cg_hier[i].ctrls & ctrl)
                        return &cg_hier[i];
        return NULL;
}

char *cg_file(const struct hier *h, const char *name, const char *file)
{
        if (file)
                return xasprintf("%s/%s/%s", h->mnt, name, file);
        return xasprintf("%s/%s", h->mnt, name);
}

int cg_write(const struct hier *h, const char *name, const char *file, const char *value,
             struct cove_err **err)
{
        cleanup_free char *p = cg_file(h, name, file);
        int r = write_string_file(p, value);
        if (r < 0)
                return cove_err_set(err, -r, "write '%s' to '%s': %m", value, p);
        return 0;
}

int cg_read(const struct hier *h, const char *name, const char *file, char **ret,
            struct cove_err **err)
{
        cleanup_free char *p = cg_file(h, name, file);
        int r = read_small_file(p, CGROUP_FILE_MAX, ret, NULL);
        if (r < 0)
                return cove_err_set(err, -r, "read '%s': %m", p);
        return 0;
}

bool cg_has_file(const struct hier *h, const char *name, const char *file)
{
        cleanup_free char *p = cg_file(h, name, file);
        return access(p, F_OK) == 0;
}

int cg_read_u64(const struct hier *h, const char *name, const char *file, uint64_t *ret,
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

int cg_keyed_u64(const char *text, const char *key, uint64_t *ret)
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

void cg_sleep_ms(long ms)
{
        struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L };
        while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
                ;
}

int64_t cg_mono_ms(void)
{
        struct timespec ts;
        (void)clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- create ---------------------------------------------------------------------------- */

static bool listed(const char *list, const char *word)
{
        size_t wl = strlen(word);
        for (const char *q = list; *q;) {
                size_t l = strcspn(q, " \n");
                if (l == wl && memcmp(q, word, l) == 0)
                        return true;
                q += l;
                q += strspn(q, " \n");
        }
        return false;
}

int cg_mkdir_p(const char *mnt, const char *name, const char *const *enable, size_t n_enable,
               struct cove_err **err)
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
                if (n_enable) {
                        /* Enable what the parent offers in the parent's subtree_control. */
                        char *slash = strrchr(path, '/');
                        *slash = '\0';
                        cleanup_free char *avail = NULL;
                        cleanup_free char *ctl = xasprintf("%s/cgroup.controllers", path);
                        cleanup_free char *sub = xasprintf("%s/cgroup.subtree_control", path);
                        *slash = '/';
                        if (read_small_file(ctl, CGROUP_FILE_MAX, &avail, NULL) == 0) {
                                for (size_t i = 0; i < n_enable; i++) {
                                        if (!listed(avail, enable[i]))
                                                continue;
                                        cleanup_free char *v = xasprintf("+%s", enable[i]);
                                        int r = write_string_file(sub, v);
                                        if (r < 0)
                                                return cove_err_set(
                                                        err, -r, "write '%s' to '%s': %m", v, sub);
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

int cgroup_update(const char *name, const struct cgroup_limits *limits, struct cove_err **err)
{
        int r = prepare(name, err);
        if (r >= 0)
                r = driver()->make(name, err);
        if (r >= 0)
                r = driver()->set_limits(name, limits, err);
        if (r < 0)
                return cove_err_wrap(err, "set limits of cgroup '%s'", name ? name : "");
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
        r = driver()->make(name, err);
        if (r >= 0)
                r = driver()->set_limits(name, limits, err);
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
                        bool match =
                                is_v2() ? (*ctrls == '\0' && line[0] == '0')
                                        : (cg_ctrl_bits_from_opts(ctrls) & cg_hier[i].ctrls) != 0;
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
                const char *slash = strrchr(cg_hier[i].mnt, '/');
                char ph[PHASE_NAME_MAX];
                (void)snprintf(ph, sizeof(ph), "cgroup.join.%s",
                               slash ? slash + 1 : cg_hier[i].mnt);
                phase_mark(ph);
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

int cgroup_freeze(const char *name, struct cove_err **err)
{
        int r = prepare(name, err);
        return r < 0 ? r : driver()->set_frozen(name, true, err);
}

int cgroup_thaw(const char *name, struct cove_err **err)
{
        int r = prepare(name, err);
        return r < 0 ? r : driver()->set_frozen(name, false, err);
}

int cgroup_is_frozen(const char *name, struct cove_err **err)
{
        int r = prepare(name, err);
        return r < 0 ? r : driver()->is_frozen(name, err);
}

char *cgroup_freezer_pin_name(const char *parent, const char *data_dir)
{
        uint64_t h = 14695981039346656037ULL; /* FNV-1a */
        for (const unsigned char *p = (const unsigned char *)data_dir; *p; p++)
                h = (h ^ *p) * 1099511628211ULL;
        return xasprintf("%s/.freeze-pin-%016llx", parent, (unsigned long long)h);
}

int cgroup_freezer_pin(const char *name, struct cove_err **err)
{
        int r = prepare(name, err);
        if (r < 0 || is_v2())
                return MIN(r, 0);
        const struct hier *h = cg_hier_for(CTRL_FREEZER);
        if (!h)
                return 0;
        r = cg_mkdir_p(h->mnt, name, NULL, 0, err);
        if (r >= 0)
                r = cg_write(h, name, "freezer.state", "FROZEN", err);
        return r;
}

int cgroup_freezer_unpin(const char *name, struct cove_err **err)
{
        int r = prepare(name, err);
        if (r < 0 || is_v2())
                return MIN(r, 0);
        const struct hier *h = cg_hier_for(CTRL_FREEZER);
        if (!h || !cg_has_file(h, name, "freezer.state"))
                return 0;
        r = cg_write(h, name, "freezer.state", "THAWED", err);
        if (r < 0)
                return r;
        cleanup_free char *p = cg_file(h, name, NULL);
        if (rmdir(p) < 0 && errno != ENOENT)
                return cove_err_set(err, errno, "remove '%s': %m", p);
        return 0;
}

/* ---- pids / kill / destroy ------------------------------------------------------------- */

int cg_read_pids(const struct hier *h, const char *name, pid_t **ret, size_t *ret_n,
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
        return cg_read_pids(&cg_hier[0], name, ret, ret_n, err);
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
                int r = cg_read_pids(&cg_hier[i], name, &pids, &n, err);
                if (r < 0)
                        return r;
                for (size_t j = 0; j < n; j++)
                        if (!pid_is_zombie(pids[j]))
                                return 0;
        }
        return 1;
}

int cg_kill_listed(const struct hier *h, const char *name, struct cove_err **err)
{
        cleanup_free pid_t *pids = NULL;
        size_t n = 0;
        int r = cg_read_pids(h, name, &pids, &n, err);
        if (r < 0)
                return r;
        for (size_t i = 0; i < n; i++)
                if (kill(pids[i], SIGKILL) < 0 && errno != ESRCH)
                        return cove_err_set(err, errno, "kill %d: %m", (int)pids[i]);
        return 0;
}

int cg_settle_frozen(const char *name, bool freeze, cg_frozen_step_fn step, struct cove_err **err)
{
        int64_t deadline = cg_mono_ms() + CGROUP_SETTLE_TIMEOUT_MS;

        for (long wait = 1;; wait = MIN(wait * 2, 20)) {
                int r = step(name, freeze, err);
                if (r != 0)
                        return MIN(r, 0);
                if (cg_mono_ms() > deadline)
                        break;
                cg_sleep_ms(wait);
        }
        return cove_err_set(err, ETIMEDOUT, "%s cgroup '%s': not settled after %d ms",
                            freeze ? "freeze" : "thaw", name, CGROUP_SETTLE_TIMEOUT_MS);
}

int cg_kill_listed_frozen(const struct hier *h, const char *name,
                          int (*set_frozen)(const char *name, bool freeze, struct cove_err **err),
                          struct cove_err **err)
{
        /* Freeze so nothing forks between reading the list and the kill; SIGKILL is delivered
         * to frozen tasks on thaw. */
        bool frozen = set_frozen && set_frozen(name, true, NULL) >= 0;
        int r = cg_kill_listed(h, name, err);
        if (frozen)
                (void)set_frozen(name, false, NULL);
        return r;
}

int cgroup_kill_all(const char *name, struct cove_err **err)
{
        int64_t deadline;
        int r = prepare(name, err);
        if (r < 0)
                return r;
        if (!cgroup_exists(name))
                return 0;
        deadline = cg_mono_ms() + CGROUP_SETTLE_TIMEOUT_MS;
        for (long wait = 1;; wait = MIN(wait * 2, 20)) {
                r = is_empty(name, err);
                if (r < 0)
                        goto fail;
                if (r > 0)
                        return 0;
                if (cg_mono_ms() > deadline)
                        break;
                r = driver()->kill_round(name, err);
                if (r < 0)
                        goto fail;
                cg_sleep_ms(wait);
        }
        r = cove_err_set(err, ETIMEDOUT, "processes still alive after %d ms",
                         CGROUP_SETTLE_TIMEOUT_MS);
fail:
        /* Its directory went away meanwhile (another destroyer, or a purge that found it
         * empty): a cgroup is removed only when it has no task, and every task of the sandbox
         * is in it, so nothing is left to kill — which is what was asked. */
        if (r == -ENOENT) {
                cove_err_free(err);
                return 0;
        }
        return cove_err_wrap(err, "kill cgroup '%s'", name);
}

int cgroup_destroy(const char *name, struct cove_err **err)
{
        int r = prepare(name, err);
        if (r < 0)
                return r;
        for (size_t i = 0; i < cg_n; i++) {
                cleanup_free char *p = cg_file(&cg_hier[i], name, NULL);
                int64_t deadline = cg_mono_ms() + CGROUP_SETTLE_TIMEOUT_MS / 5;
                for (long wait = 1;; wait = MIN(wait * 2, 20)) {
                        if (rmdir(p) == 0 || errno == ENOENT)
                                break;
                        if (errno != EBUSY || cg_mono_ms() > deadline)
                                return cove_err_set(err, errno, "rmdir cgroup '%s': %m", p);
                        cg_sleep_ms(wait);
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
        unsigned bit = controller ? cg_ctrl_bits_from_opts(controller) : 0;
        if (prepare(name, NULL) < 0)
                return NULL;
        const struct hier *h = bit ? cg_hier_for(bit) : &cg_hier[0];
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

int cgroup_stats(const char *name, struct cgroup_stats *ret, struct cove_err **err)
{
        int r = prepare(name, err);
        return r < 0 ? r : driver()->stats(name, ret, err);
}
