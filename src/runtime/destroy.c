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
#include "runtime/fsutil.h"

#include <fcntl.h>
#include <limits.h>
#include <sys/stat.h>
#include <time.h>

#include "lib/banned.h"

#define COVE_CGROUP_PARENT     "cove"
/* An empty leftover cgroup younger than this may belong to a create in progress. */
#define PURGE_EMPTY_MIN_AGE_S  30
#define MOUNTINFO_MAX          (4 * 1024 * 1024)

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

/* Does pid run on an overlay root whose upperdir lies under prefix? */
static bool pid_root_under(pid_t pid, const char *prefix)
{
        char path[32 + DECIMAL_STR_MAX(pid_t)];
        cleanup_free char *s = NULL;
        size_t len = 0;

        (void)snprintf(path, sizeof(path), "/proc/%d/mountinfo", (int)pid);
        if (read_small_file(path, MOUNTINFO_MAX, &s, &len) < 0)
                return false;
        for (char *line = s; line && *line;) {
                char *nl = strchr(line, '\n');
                if (nl)
                        *nl = '\0';
                char mnt[16];
                if (sscanf(line, "%*s %*s %*s %*s %15s", mnt) == 1 && streq(mnt, "/") &&
                    strstr(line, " - overlay ")) {
                        const char *u = strstr(line, "upperdir=");
                        if (u && strncmp(u + 9, prefix, strlen(prefix)) == 0)
                                return true;
                }
                line = nl ? nl + 1 : NULL;
        }
        return false;
}

static int purge_leftover_cgroups(const char *data_dir, struct cove_err **err)
{
        cleanup_strv char **children = NULL;
        cleanup_free char *prefix = xasprintf("%s/sandboxes/", data_dir);
        int r, ret = 0;

        r = cgroup_list_children(COVE_CGROUP_PARENT, &children, err);
        if (r < 0)
                return r;
        for (char **ch = children; *ch; ch++) {
                const char *id = *ch + STRLEN(COVE_CGROUP_PARENT) + 1;
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
                                ours = pid_root_under(pids[i], prefix);
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

int runtime_purge(const char *data_dir, struct cove_err **err)
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
        r = purge_leftover_cgroups(data_dir, ret == 0 ? err : NULL);
        if (r < 0 && ret == 0)
                ret = r;
        if (ret < 0)
                return cove_err_wrap(err, "purge '%s'", data_dir);
        return 0;
}
