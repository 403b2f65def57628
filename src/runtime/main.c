/* SPDX-License-Identifier: MIT */
/*
 * cove-runtime — the one-shot privileged helper (docs/design/runtime-helper.md).
 *
 *   cove-runtime create <config.json> [--init-fd N --agent-fd N]
 *                                         fd 3: SOCK_SEQPACKET sync socket from coved;
 *                                         N: sealed copies of cove-init/cove-agent (sealed.h)
 *   cove-runtime destroy <config.json|state-dir>
 *   cove-runtime purge --data-dir DIR [--cgroup-parent NAME]
 *
 * `create` answers with exactly one JSON message on fd 3 (if fd 3 is not a socket, on
 * stdout, for manual runs) and exits 0 on success, 1 on failure.
 */
#include "lib/err.h"
#include "lib/json.h"
#include "lib/log.h"
#include "lib/macro.h"
#include "lib/parse.h"
#include "runtime/config.h"
#include "runtime/phase.h"
#include "runtime/setup.h"
#include "runtime/spawn_client.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "lib/banned.h"

#define SYNC_FD 3

static void answer(json_t *j)
{
        cleanup_free char *s = json_dumps_compact(j);
        struct stat st;

        if (fstat(SYNC_FD, &st) == 0 && S_ISSOCK(st.st_mode)) {
                if (send(SYNC_FD, s, strlen(s), MSG_NOSIGNAL) < 0)
                        log_error("send result on fd %d: %m", SYNC_FD);
        } else {
                printf("%s\n", s);
                fflush(stdout);
        }
        json_decref(j);
}

static int cmd_create(const char *config_path, const struct runtime_binaries *bins)
{
        cleanup_config struct sandbox_config *c = NULL;
        cleanup_err struct cove_err *err = NULL;
        struct runtime_result res;
        int r;

        phase_start();
        r = sandbox_config_load(config_path, &c, &err);
        phase_mark("config");
        if (r >= 0)
                r = sandbox_run(c, bins, &res, &err);
        if (r < 0) {
                const char *msg = err && err->msg ? err->msg : "unknown error";
                log_error("%s", msg);
                answer(json_pack("{s:b, s:i, s:s%}", "ok", 0, "errno", err ? err->errnum : EIO,
                                 "message", msg, MIN(strlen(msg), (size_t)COVE_ERR_MSG_MAX)));
                return 1;
        }
        size_t n_phases;
        const struct phase *ph = phase_list(&n_phases);
        json_t *phases = json_object();
        for (size_t i = 0; i < n_phases; i++)
                json_object_set_new(phases, ph[i].name, json_integer((json_int_t)ph[i].us));
        answer(json_pack("{s:b, s:I, s:I, s:o}", "ok", 1, "pid", (json_int_t)res.pid, "starttime",
                         (json_int_t)res.starttime, "phases_us", phases));
        return 0;
}

static int cmd_destroy(const char *path)
{
        cleanup_err struct cove_err *err = NULL;
        if (runtime_destroy(path, &err) < 0) {
                log_error("%s", err->msg);
                return 1;
        }
        return 0;
}

static int cmd_purge(const char *data_dir, const char *cgroup_parent)
{
        cleanup_err struct cove_err *err = NULL;
        if (runtime_purge(data_dir, cgroup_parent, &err) < 0) {
                log_error("%s", err->msg);
                return 1;
        }
        return 0;
}

static int usage(void)
{
        fprintf(stderr, "usage: cove-runtime create <config.json> [--init-fd N --agent-fd N]\n"
                        "       cove-runtime destroy <config.json|state-dir>\n"
                        "       cove-runtime purge --data-dir DIR [--cgroup-parent NAME]\n");
        return 2;
}

static int parse_fd(const char *s, int *ret)
{
        uint32_t v;
        if (safe_atou32(s, &v) < 0 || v < 3 || v > INT32_MAX)
                return -EINVAL;
        *ret = (int)v;
        return 0;
}

int main(int argc, char **argv)
{
        log_set_ident("cove-runtime");
        if (argc == 3 && streq(argv[1], "create"))
                return cmd_create(argv[2], NULL);
        if (argc == 7 && streq(argv[1], "create") && streq(argv[3], "--init-fd") &&
            streq(argv[5], "--agent-fd")) {
                struct runtime_binaries bins;
                if (parse_fd(argv[4], &bins.init_fd) < 0 || parse_fd(argv[6], &bins.agent_fd) < 0)
                        return usage();
                return cmd_create(argv[2], &bins);
        }
        if (argc == 3 && streq(argv[1], "destroy"))
                return cmd_destroy(argv[2]);
        if (argc == 4 && streq(argv[1], "purge") && streq(argv[2], "--data-dir"))
                return cmd_purge(argv[3], NULL);
        if (argc == 6 && streq(argv[1], "purge") && streq(argv[2], "--data-dir") &&
            streq(argv[4], "--cgroup-parent"))
                return cmd_purge(argv[3], argv[5]);
        return usage();
}
