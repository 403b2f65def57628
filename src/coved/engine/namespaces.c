/* SPDX-License-Identifier: MIT */
/*
 * namespaces.c — the Linux-namespace backend: each sandbox is made by the cove-runtime helper
 * (a user namespace on its block of host uids, namespaces, cgroup <cgroup-parent>/<id>, overlay
 * root over idmapped layers and its own disk image) from <data-dir>/sandboxes/<id>/config.json,
 * paused and resumed through its cgroup's freezer, and destroyed through the cgroup library.
 * Its agent listens on <data-dir>/sandboxes/<id>/agent.sock. Also the node's share: the
 * sealed binaries every sandbox runs, the node budget (the parent cgroup) and disk admission.
 */
#include "coved/engine/engine.h"
#include "coved/engine/usage.h"
#include "coved/engine/network.h"
#include "coved/metrics.h"
#include "lib/fdutil.h"
#include "lib/log.h"
#include "lib/macro.h"
#include "lib/parse.h"
#include "lib/timeutil.h"
#include "runtime/cgroup.h"
#include "runtime/hostroot.h"
#include "runtime/sealed.h"
#include "runtime/spawn_client.h"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>

#define AGENT_CONNECT_RETRY_MS 5000

/* Sealed copies of cove-init and cove-agent, made once by engine_prepare() and handed to every
 * cove-runtime create (never a copy per create; read-only after start). */
static struct runtime_binaries sealed_bins = { -1, -1 };

static char *cgroup_name_of(struct coved *cd, const char *id)
{
        return xasprintf("%s/%s", cd->cfg.cgroup_parent, id);
}

static char *disk_image_of(const char *state_dir)
{
        return xasprintf("%s/disk.img", state_dir);
}

/* One formatted image per size, shared by every sandbox of that size (runtime/disk.h). */
static char *disk_golden_of(struct coved *cd, int64_t disk_mb)
{
        return xasprintf("%s/disk-images/ext4-%lldm.img", cd->cfg.data_dir, (long long)disk_mb);
}

static char *state_dir_of(struct coved *cd, const char *id)
{
        return xasprintf("%s/%s", cd->sandboxes_dir, id);
}

/* A volume's ext4 image (runtime/volume.c). */
static char *volume_image_of(struct coved *cd, const char *volume_id)
{
        return xasprintf("%s/volumes/%s.img", cd->cfg.data_dir, volume_id);
}

static char *agent_socket_of(struct coved *cd, const char *id)
{
        return xasprintf("%s/%s/agent.sock", cd->sandboxes_dir, id);
}

/* A number from a one-line file of /proc (pid_max, threads-max), or 0. */
static uint64_t proc_u64(const char *path)
{
        cleanup_free char *s = NULL;
        uint64_t v = 0;
        if (read_small_file(path, 4096, &s, NULL) < 0)
                return 0;
        s[strcspn(s, "\n")] = '\0';
        return safe_atou64(s, &v) < 0 ? 0 : v;
}

static uint64_t mem_total_mb(void)
{
        cleanup_free char *s = NULL;
        unsigned long long kb = 0;
        if (read_small_file("/proc/meminfo", 65536, &s, NULL) < 0)
                return 0;
        const char *p = strstr(s, "MemTotal:");
        if (!p || sscanf(p, "MemTotal: %llu kB", &kb) != 1)
                return 0;
        return kb / 1024;
}

/*
 * The node budget (docs/operations.md, "Node budget"): every sandbox's cgroup lives under
 * cgroup-parent, whose pids and memory limits are the host's minus the operator's reserves, so
 * no number of sandboxes can take the host's last pids or its memory (a fork bomb hits its own
 * pids.max, all of them together the parent's; the OOM killer acts inside the parent, never
 * on coved). The default capacity (max-sandboxes 0) is what the budget holds without the
 * sandboxes competing for it: every one at its pids-max and default-memory-mb.
 */
static int node_budget(struct coved *cd, struct cove_err **err)
{
        uint64_t pid_max = proc_u64("/proc/sys/kernel/pid_max");
        uint64_t threads = proc_u64("/proc/sys/kernel/threads-max");
        uint64_t host_pids = threads && threads < pid_max ? threads : pid_max;
        uint64_t mem = mem_total_mb();
        uint64_t pids_reserve = (uint64_t)cd->cfg.node_pids_reserve;
        uint64_t mem_reserve = (uint64_t)cd->cfg.node_memory_reserve_mb;
        uint64_t pids_budget = host_pids > pids_reserve ? host_pids - pids_reserve : 0;
        uint64_t mem_budget = mem > mem_reserve ? mem - mem_reserve : 0;

        if (pids_budget < (uint64_t)cd->cfg.pids_max ||
            mem_budget < (uint64_t)cd->cfg.default_memory_mb)
                return cove_err_set(err, EINVAL,
                                    "node budget too small for one sandbox: %llu pids (host %llu, "
                                    "reserve %llu), %llu MiB (host %llu, reserve %llu)",
                                    (unsigned long long)pids_budget, (unsigned long long)host_pids,
                                    (unsigned long long)pids_reserve,
                                    (unsigned long long)mem_budget, (unsigned long long)mem,
                                    (unsigned long long)mem_reserve);
        struct cgroup_limits lim = { .pids_max = (uint32_t)MIN(pids_budget, (uint64_t)UINT32_MAX),
                                     .memory_mb = mem_budget };
        int r = cgroup_update(cd->cfg.cgroup_parent, &lim, err);
        if (r < 0)
                return r;
        uint64_t by_pids = pids_budget / (uint64_t)cd->cfg.pids_max;
        uint64_t by_mem = mem_budget / (uint64_t)cd->cfg.default_memory_mb;
        if (cd->cfg.max_sandboxes == 0)
                cd->cfg.max_sandboxes = (int64_t)MAX(MIN(by_pids, by_mem), 1);
        log_info("node budget '%s': %llu pids, %llu MiB; capacity %lld sandboxes (by pids %llu, by "
                 "memory %llu)",
                 cd->cfg.cgroup_parent, (unsigned long long)pids_budget,
                 (unsigned long long)mem_budget, (long long)cd->cfg.max_sandboxes,
                 (unsigned long long)by_pids, (unsigned long long)by_mem);
        return 0;
}

int engine_prepare(struct coved *cd, struct cove_err **err)
{
        cleanup_free char *init = xasprintf("%s/cove-init", cd->cfg.libexec_dir);
        cleanup_free char *agent = xasprintf("%s/cove-agent", cd->cfg.libexec_dir);
        int r = sealed_exec_copy(init, "cove-init", &sealed_bins.init_fd, err);
        if (r >= 0)
                r = sealed_exec_copy(agent, "cove-agent", &sealed_bins.agent_fd, err);
        if (r < 0)
                return cove_err_wrap(err, "sealed copies of the sandbox binaries");
        r = node_budget(cd, err);
        if (r < 0)
                return cove_err_wrap(err, "node budget");
        /* Fast pause and resume on cgroup v1 (runtime/cgroup.h); only speed depends on it. */
        cleanup_free char *pin = cgroup_freezer_pin_name(cd->cfg.cgroup_parent, cd->cfg.data_dir);
        cleanup_err struct cove_err *e = NULL;
        if (cgroup_freezer_pin(pin, &e) < 0)
                log_warning("freezer pin: %s, ignoring (pause and resume are slower)", e->msg);
        return 0;
}

void engine_release(struct coved *cd)
{
        cleanup_free char *pin = cgroup_freezer_pin_name(cd->cfg.cgroup_parent, cd->cfg.data_dir);
        cleanup_err struct cove_err *e = NULL;
        if (cgroup_freezer_unpin(pin, &e) < 0)
                log_warning("freezer pin: %s", e->msg);
}

int engine_init(void)
{
        if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) < 0)
                return -errno;
        return 0;
}

int engine_purge(const char *data_dir, const char *cgroup_parent, struct cove_err **err)
{
        return runtime_purge(data_dir, cgroup_parent, err);
}

/* ---- admission ---- */

/* Serialises admission: a check and its image file are one step. */
static pthread_mutex_t disk_lock = PTHREAD_MUTEX_INITIALIZER;

/* What disk_outstanding() found, at most DISK_SCAN_MAX_AGE_MS ago, plus the images admitted
 * since (each counted at its full size). The scan reads every sandbox's image: its cost grows
 * with the fleet, and every create waited for it under disk_lock. Between scans the figure
 * only errs high (sandboxes writing into their images, or removed, lower the real one), so
 * admission is never looser than with a scan; a refusal is only ever decided on a fresh scan,
 * and a destroy forgets the figure. Guarded by disk_lock. */
#define DISK_SCAN_MAX_AGE_MS 1000
static struct {
        bool valid;
        int64_t at_ms; /* monotonic */
        uint64_t sum;
} outstanding_cache;

/* What the existing sandboxes' images may still grow by: their size minus what they hold. */
static uint64_t disk_outstanding(struct coved *cd)
{
        cleanup_closedir DIR *d = opendir(cd->sandboxes_dir);
        struct dirent *de;
        uint64_t sum = 0;

        while (d && (de = readdir(d))) {
                struct stat st;
                if (de->d_name[0] == '.')
                        continue;
                cleanup_free char *img = xasprintf("%s/disk.img", de->d_name);
                if (fstatat(dirfd(d), img, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode))
                        continue;
                uint64_t held = (uint64_t)st.st_blocks * 512;
                if ((uint64_t)st.st_size > held)
                        sum += (uint64_t)st.st_size - held;
        }
        return sum;
}

static void outstanding_rescan(struct coved *cd)
{
        outstanding_cache.valid = true;
        outstanding_cache.at_ms = time_mono_ms();
        outstanding_cache.sum = disk_outstanding(cd);
}

static bool disk_fits(uint64_t avail, uint64_t reserve, uint64_t committed, uint64_t want)
{
        return avail >= reserve && avail - reserve >= committed &&
               avail - reserve - committed >= want;
}

int engine_reserve(struct coved *cd, const char *id, int64_t disk_mb, struct cove_err **err)
{
        cleanup_free char *state_dir = state_dir_of(cd, id);
        cleanup_free char *image = disk_image_of(state_dir);
        uint64_t want = (uint64_t)disk_mb << 20, reserve = (uint64_t)cd->cfg.disk_reserve_mb << 20;
        struct statvfs sv;
        cleanup_close int fd = -1;
        int r = 0;

        pthread_mutex_lock(&disk_lock);
        if (statvfs(cd->cfg.data_dir, &sv) < 0) {
                r = cove_err_set(err, errno, "statvfs '%s': %m", cd->cfg.data_dir);
                goto out;
        }
        uint64_t avail = (uint64_t)sv.f_bavail * (uint64_t)sv.f_frsize;
        bool fresh = !outstanding_cache.valid ||
                     time_mono_ms() - outstanding_cache.at_ms > DISK_SCAN_MAX_AGE_MS;
        if (fresh || !disk_fits(avail, reserve, outstanding_cache.sum, want))
                outstanding_rescan(cd); /* refuse only on what a scan finds now */
        uint64_t committed = outstanding_cache.sum;
        if (!disk_fits(avail, reserve, committed, want)) {
                r = cove_err_set_status(
                        err, 503, ENOSPC,
                        "not enough disk space for a new sandbox: %llu MiB free on the data "
                        "filesystem, %llu MiB promised to running sandboxes, %llu MiB reserved, "
                        "%lld MiB asked",
                        (unsigned long long)(avail >> 20), (unsigned long long)(committed >> 20),
                        (unsigned long long)(reserve >> 20), (long long)disk_mb);
                goto out;
        }
        if (mkdir(state_dir, 0700) < 0 && errno != EEXIST) {
                r = cove_err_set(err, errno, "create '%s': %m", state_dir);
                goto out;
        }
        fd = open(image, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd < 0 || ftruncate(fd, (off_t)want) < 0)
                r = cove_err_set(err, errno, "create disk image '%s': %m", image);
        else
                outstanding_cache.sum += want;
out:
        pthread_mutex_unlock(&disk_lock);
        return r;
}

/* ---- start / destroy / pause / resume ---- */

static int write_config(struct coved *cd, const struct engine_spec *s, const char *state_dir,
                        const char *path, struct cove_err **err)
{
        cleanup_free char *cg = cgroup_name_of(cd, s->id);
        cleanup_free char *init = xasprintf("%s/cove-init", cd->cfg.libexec_dir);
        cleanup_free char *agent = xasprintf("%s/cove-agent", cd->cfg.libexec_dir);
        cleanup_free char *sock = agent_socket_of(cd, s->id);
        cleanup_free char *image = disk_image_of(state_dir);
        cleanup_free char *golden = disk_golden_of(cd, s->disk_mb);
        json_auto_t *j = json_pack(
                "{s:s, s:s, s:O, s:O, s:s, s:s, s:s, s:{s:s, s:I, s:I, s:I}, s:o}", "id", s->id,
                "state_dir", state_dir, "layers", s->layers, "binds", s->binds, "init", init,
                "agent", agent, "agent_socket", sock, "cgroup", "name", cg, "cpu_count",
                (json_int_t)s->cpu_count, "memory_mb", (json_int_t)s->memory_mb, "pids_max",
                (json_int_t)s->pids_max, "files", engine_network_files(cd, s));
        if (!j)
                return cove_err_set(err, EINVAL, "cannot build sandbox config");
        json_object_set_new(json_object_get(j, "cgroup"), "io_weight",
                            json_integer(cd->cfg.io_weight));
        if (s->cpu_weight > 0)
                json_object_set_new(json_object_get(j, "cgroup"), "cpu_weight",
                                    json_integer(s->cpu_weight));
        if (s->uid_base > 0)
                json_object_set_new(j, "userns",
                                    json_pack("{s:I, s:I, s:i}", "uid", (json_int_t)s->uid_base,
                                              "gid", (json_int_t)s->uid_base, "count", 65536));
        /* a build sandbox writes its layer into upper_dir, on the layer store's filesystem */
        if (!s->upper_dir)
                json_object_set_new(j, "disk",
                                    json_pack("{s:s, s:s, s:I}", "image", image, "golden", golden,
                                              "size_mb", (json_int_t)s->disk_mb));
        if (s->volumes && json_array_size(s->volumes) > 0) {
                json_t *vols = json_array();
                size_t i;
                json_t *v;
                json_array_foreach (s->volumes, i, v) {
                        const char *vid = json_string_value(json_object_get(v, "id"));
                        const char *target = json_string_value(json_object_get(v, "path"));
                        if (!vid || !target) {
                                json_decref(vols);
                                return cove_err_set(err, EINVAL, "volume %zu lacks id or path", i);
                        }
                        cleanup_free char *img = volume_image_of(cd, vid);
                        json_array_append_new(
                                vols, json_pack("{s:s, s:s}", "image", img, "target", target));
                }
                json_object_set_new(j, "volumes", vols);
        }
        if (s->upper_dir) {
                json_object_set_new(j, "upper_dir", json_string(s->upper_dir));
                json_object_set_new(j, "work_dir", json_string(s->work_dir));
        }
        cleanup_free char *text = json_dumps(j, JSON_INDENT(2));
        cleanup_close int fd =
                open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd < 0)
                return cove_err_set(err, errno, "create '%s': %m", path);
        int r = write_full(fd, text, strlen(text));
        if (r < 0)
                return cove_err_set(err, -r, "write '%s': %m", path);
        return 0;
}

int engine_start(struct coved *cd, const struct engine_spec *spec, struct engine_identity *ret,
                 struct cove_err **err)
{
        cleanup_free char *state_dir = state_dir_of(cd, spec->id);
        cleanup_free char *config = xasprintf("%s/config.json", state_dir);
        cleanup_free char *helper = xasprintf("%s/cove-runtime", cd->cfg.libexec_dir);

        int64_t t = time_mono_us();
        if (mkdir(state_dir, 0700) < 0 && errno != EEXIST)
                return cove_err_set(err, errno, "create '%s': %m", state_dir);
        int r = write_config(cd, spec, state_dir, config, err);
        metrics_create_phase("engine.config", (double)(time_mono_us() - t) / 1e6);
        if (r >= 0) {
                struct runtime_result res = { 0 };
                r = runtime_create(helper, config, &sealed_bins, &res, err);
                if (r >= 0) {
                        for (size_t i = 0; i < res.n_phases; i++) {
                                char name[64];
                                (void)snprintf(name, sizeof(name), "runtime.%s",
                                               res.phases[i].name);
                                metrics_create_phase(name, (double)res.phases[i].us / 1e6);
                        }
                        ret->pid = res.pid;
                        ret->starttime = (int64_t)res.starttime;
                        if (spec->spawned)
                                spec->spawned(spec->spawned_ud);
                        t = time_mono_us();
                        r = engine_network_attach(cd, spec, ret, err);
                        metrics_create_phase("network.attach", (double)(time_mono_us() - t) / 1e6);
                        if (r >= 0)
                                return 0;
                }
        }
        (void)runtime_destroy(state_dir, NULL);
        engine_network_detach(cd, spec->id);
        return r;
}

/* Reaps init when it is our child (it is, unless coved restarted since it was made); waits a
 * second at most for it to turn into a zombie. */
static void reap_init(const struct engine_identity *who)
{
        if (!who || who->pid <= 0)
                return;
        for (int i = 0; i < 200; i++) {
                pid_t p = waitpid((pid_t)who->pid, NULL, WNOHANG);
                if (p == (pid_t)who->pid || (p < 0 && errno == ECHILD))
                        return;
                struct timespec ts = { 0, 5 * 1000 * 1000 };
                (void)nanosleep(&ts, NULL);
        }
}

int engine_destroy(struct coved *cd, const char *id, const struct engine_identity *who,
                   struct cove_err **err)
{
        cleanup_free char *state_dir = state_dir_of(cd, id);
        int r = runtime_destroy(state_dir, err);
        pthread_mutex_lock(&disk_lock); /* its image is gone: count again */
        outstanding_cache.valid = false;
        pthread_mutex_unlock(&disk_lock);
        /* The state dir (and config) may be gone already: make sure of the cgroup by name. */
        cleanup_free char *cg = cgroup_name_of(cd, id);
        if (cgroup_exists(cg)) {
                (void)cgroup_kill_all(cg, NULL);
                (void)cgroup_destroy(cg, NULL);
        }
        reap_init(who);
        engine_network_detach(cd, id);
        return r;
}

int engine_pause(struct coved *cd, const char *id, struct cove_err **err)
{
        cleanup_free char *cg = cgroup_name_of(cd, id);
        return cgroup_freeze(cg, err);
}

int engine_resume(struct coved *cd, const char *id, struct cove_err **err)
{
        cleanup_free char *cg = cgroup_name_of(cd, id);
        return cgroup_thaw(cg, err);
}

/* ---- usage ---- */

int engine_usage(struct coved *cd, const char *id, struct sandbox_usage *ret, struct cove_err **err)
{
        cleanup_free char *cg = cgroup_name_of(cd, id);
        int r = usage_of_cgroup(cg, ret, err);
        if (r >= 0)
                engine_network_usage(cd, id, ret);
        return r;
}

/* ---- identity ---- */

bool engine_alive(const struct engine_identity *who)
{
        if (!who || who->pid <= 0)
                return false;
        if (runtime_init_alive((pid_t)who->pid, (uint64_t)who->starttime) == 1)
                return true;
        reap_init(who);
        return false;
}

int engine_watch(const struct engine_identity *who)
{
        if (!who || who->pid <= 0 || who->pid > INT32_MAX)
                return -ESRCH;
        int fd = (int)syscall(SYS_pidfd_open, (pid_t)who->pid, 0);
        if (fd < 0)
                return -errno;
        /* Checked after the open: the pidfd pins the process, so a pid reused before the open
         * shows another start time here. pidfds are always close-on-exec. */
        if (runtime_init_alive((pid_t)who->pid, (uint64_t)who->starttime) != 1) {
                (void)close(fd);
                return -ESRCH;
        }
        return fd;
}

void engine_reap(const struct engine_identity *who)
{
        if (who && who->pid > 0)
                (void)waitpid((pid_t)who->pid, NULL, WNOHANG);
}

/* ---- agent transport ---- */

int engine_agent_connect(struct coved *cd, const char *id, struct cove_err **err)
{
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        cleanup_free char *path = agent_socket_of(cd, id);
        cleanup_close int fd = -1;
        int64_t deadline = time_mono_ms() + AGENT_CONNECT_RETRY_MS;

        if (strlen(path) >= sizeof(sa.sun_path))
                return cove_err_set(err, ENAMETOOLONG, "agent socket path '%s' is too long", path);
        memcpy(sa.sun_path, path, strlen(path) + 1);

        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return cove_err_set(err, errno, "create agent socket: %m");
        for (;;) {
                if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
                        return TAKE_FD(fd);
                int e = errno;
                if (e == EINTR)
                        continue;
                /* A full backlog on a unix socket is EAGAIN: retry briefly. */
                if (e == EAGAIN && time_mono_ms() < deadline) {
                        struct timespec ts = { 0, 10 * 1000 * 1000 };
                        (void)nanosleep(&ts, NULL);
                        continue;
                }
                return cove_err_set(err, e == EAGAIN ? ECONNREFUSED : e,
                                    "connect to the agent of sandbox '%s': %m", id);
        }
}

/* ---- volumes ---- */

int engine_volume_create(struct coved *cd, const char *volume_id, int64_t size_mb,
                         struct cove_err **err)
{
        cleanup_free char *dir = xasprintf("%s/volumes", cd->cfg.data_dir);
        cleanup_free char *img = volume_image_of(cd, volume_id);
        if (mkdir(dir, 0700) < 0 && errno != EEXIST)
                return cove_err_set(err, errno, "create '%s': %m", dir);
        if (size_mb <= 0)
                return cove_err_set(err, EINVAL, "volume size must be positive");
        return runtime_volume_create(img, (uint64_t)size_mb, err);
}

int engine_volume_delete(struct coved *cd, const char *volume_id, struct cove_err **err)
{
        cleanup_free char *img = volume_image_of(cd, volume_id);
        return runtime_volume_delete(img, err);
}

/* ---- templates ---- */

int engine_host_rootfs(const char *dir, struct cove_err **err)
{
        return hostroot_build(dir, err);
}
