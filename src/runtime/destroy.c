/* SPDX-License-Identifier: MIT */
/*
 * destroy.c — runtime_destroy() and runtime_purge(): in-process teardown through the cgroup.
 *
 * Killing init (PID 1 of the sandbox's pid namespace) makes the kernel kill every other process
 * of the namespace; once init is gone its mount namespace (and the overlay) goes with it, so
 * teardown never unmounts anything in the host namespace.
 */
#include "runtime/spawn_client.h"

#include "lib/fdutil.h"
#include "lib/macro.h"
#include "runtime/cgroup.h"
#include "runtime/config.h"
#include "runtime/disk.h"
#include "runtime/fsutil.h"

#include <fcntl.h>
#include <limits.h>
#include <sys/stat.h>
#include <time.h>

#include "lib/banned.h"

#define COVE_CGROUP_PARENT "cove"
/* An empty leftover cgroup younger than this may belong to a create in progress. */
#define PURGE_EMPTY_MIN_AGE_S 30
#define NET_UNIX_MAX          (64 * 1024 * 1024)

static char *parent_dir(const char *path)
{
        char *d = xstrdup(path);
        char *s = strrchr(d, '/');
        if (!s)
                return (free(d), xstrdup("."));
        if (s == d)
                s[1] = '\0';
        else
                *s = '\0';
        return d;
}

static bool same_dir(const char *a, const char *b)
{
        char ra[PATH_MAX], rb[PATH_MAX];
        if (realpath(a, ra) && realpath(b, rb))
                return streq(ra, rb);
        return streq(a, b);
}

int runtime_destroy(const char *arg, struct cove_err **err)
{
        cleanup_config struct sandbox_config *c = NULL;
        cleanup_free char *config = NULL, *dir = NULL;
        struct stat st;
        bool arg_is_dir = false;
        int r;

        if (stat(arg, &st) == 0 && S_ISDIR(st.st_mode)) {
                arg_is_dir = true;
                dir = xstrdup(arg);
                config = xasprintf("%s/config.json", arg);
        } else {
                config = xstrdup(arg);
                dir = parent_dir(arg);
        }
        r = sandbox_config_load(config, &c, err);
        if (r == -ENOENT) {
                cove_err_free(err);
                /* Nothing to kill is known: a bare state directory is just removed. */
                if (arg_is_dir) {
                        r = rm_rf(dir, err);
                        if (r < 0)
                                return cove_err_wrap(err, "destroy '%s'", arg);
                }
                return 0;
        }
        if (r < 0)
                return cove_err_wrap(err, "destroy '%s'", arg);
        if (!same_dir(c->state_dir, dir))
                return cove_err_set(err, EINVAL,
                                    "destroy '%s': state_dir '%s' is not the config's directory",
                                    arg, c->state_dir);

        r = cgroup_kill_all(c->cgroup_name, err);
        if (r >= 0)
                r = cgroup_destroy(c->cgroup_name, err);
        if (r >= 0 && unlink(c->agent_socket) < 0 && errno != ENOENT)
                r = cove_err_set(err, errno, "unlink '%s': %m", c->agent_socket);
        if (r >= 0)
                r = rm_rf(c->state_dir, err);
        if (r < 0)
                return cove_err_wrap(err, "destroy sandbox '%s'", c->id);
        return 0;
}

/* Does pid hold, as fd 3, a unix socket bound under prefix? Every sandbox's init and agent do:
 * the agent's listening socket, bound by the helper at <state_dir>/agent.sock in the host's
 * network namespace (so /proc/net/unix names it, even after the state dir is gone). */
static bool pid_socket_under(pid_t pid, const char *prefix)
{
        char link[32 + DECIMAL_STR_MAX(pid_t)], target[64];
        cleanup_free char *s = NULL;
        size_t len = 0;
        unsigned long ino;

        (void)snprintf(link, sizeof(link), "/proc/%d/fd/3", (int)pid);
        ssize_t n = readlink(link, target, sizeof(target) - 1);
        if (n <= 0)
                return false;
        target[n] = '\0';
        if (sscanf(target, "socket:[%lu]", &ino) != 1)
                return false;
        if (read_small_file("/proc/net/unix", NET_UNIX_MAX, &s, &len) < 0)
                return false;
        for (char *line = s; line && *line;) {
                char *nl = strchr(line, '\n');
                if (nl)
                        *nl = '\0';
                unsigned long li;
                int off = 0;
                if (sscanf(line, "%*s %*s %*s %*s %*s %*s %lu %n", &li, &off) == 1 && li == ino &&
                    off > 0 && strncmp(line + off, prefix, strlen(prefix)) == 0)
                        return true;
                line = nl ? nl + 1 : NULL;
        }
        return false;
}

static int purge_leftover_cgroups(const char *data_dir, const char *parent, struct cove_err **err)
{
        cleanup_strv char **children = NULL;
        cleanup_free char *prefix = xasprintf("%s/sandboxes/", data_dir);
        int r, ret = 0;

        r = cgroup_list_children(parent, &children, err);
        if (r < 0)
                return r;
        for (char **ch = children; *ch; ch++) {
                const char *id = *ch + strlen(parent) + 1;
                cleanup_free char *sbdir = xasprintf("%s%s", prefix, id);
                cleanup_free pid_t *pids = NULL;
                size_t n = 0;
                bool ours = false;

                if (access(sbdir, F_OK) == 0)
                        continue; /* a live sandbox directory (its destroy failed above) */
                if (cgroup_pids(*ch, &pids, &n, NULL) < 0)
                        continue;
                if (n == 0) {
                        cleanup_free char *p = cgroup_path(*ch, NULL);
                        struct stat st;
                        ours = p && stat(p, &st) == 0 &&
                               time(NULL) - st.st_mtime >= PURGE_EMPTY_MIN_AGE_S;
                } else {
                        for (size_t i = 0; i < n && !ours; i++)
                                ours = pid_socket_under(pids[i], prefix);
                }
                if (!ours)
                        continue; /* another data dir's sandbox, or being created */
                r = cgroup_kill_all(*ch, err);
                if (r >= 0)
                        r = cgroup_destroy(*ch, err);
                if (r < 0 && ret == 0)
                        ret = r;
        }
        return ret;
}

int runtime_purge(const char *data_dir, const char *cgroup_parent, struct cove_err **err)
{
        cleanup_free char *sbroot = xasprintf("%s/sandboxes", data_dir);
        cleanup_closedir DIR *d = opendir(sbroot);
        int ret = 0, r;

        if (!d && errno != ENOENT)
                return cove_err_set(err, errno, "purge: open '%s': %m", sbroot);
        while (d) {
                struct dirent *de = readdir(d);
                if (!de)
                        break;
                if (de->d_name[0] == '.' || de->d_type != DT_DIR)
                        continue;
                cleanup_free char *p = xasprintf("%s/%s", sbroot, de->d_name);
                r = runtime_destroy(p, ret == 0 ? err : NULL);
                if (r < 0 && ret == 0)
                        ret = r;
        }
        r = purge_leftover_cgroups(data_dir, cgroup_parent ? cgroup_parent : COVE_CGROUP_PARENT,
                                   ret == 0 ? err : NULL);
        if (r < 0 && ret == 0)
                ret = r;
        /* The freezer pin of a coved of this data dir that did not stop cleanly. */
        cleanup_free char *pin = cgroup_freezer_pin_name(
                cgroup_parent ? cgroup_parent : COVE_CGROUP_PARENT, data_dir);
        r = cgroup_freezer_unpin(pin, ret == 0 ? err : NULL);
        if (r < 0 && ret == 0)
                ret = r;
        /* The kernel detaches a sandbox's loop device when its mount namespace goes; this is
         * the safety net for one that outlived it (a crash between attach and mount). */
        cleanup_free char *prefix = xasprintf("%s/", sbroot);
        r = disk_release_loops(prefix, ret == 0 ? err : NULL);
        if (r < 0 && ret == 0)
                ret = r;
        if (ret < 0)
                return cove_err_wrap(err, "purge '%s'", data_dir);
        return 0;
}
