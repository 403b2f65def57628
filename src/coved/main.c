/* SPDX-License-Identifier: MIT */
/*
 * coved — the Cove daemon.
 *
 *   coved [--listen HOST:PORT] [--data-dir DIR] [--config FILE] [--<setting> VALUE]...
 *   coved purge --data-dir DIR
 *
 * Starts in the foreground; SIGINT/SIGTERM (or POST /shutdown) stop it cleanly. Sandboxes
 * outlive it and are re-adopted at the next start.
 */
#include "coved/agent_client.h"
#include "coved/config.h"
#include "coved/coved.h"
#include "coved/engine/engine.h"
#include "coved/api/admin/tenancy.h"
#include "coved/api/daemon.h"
#include "coved/envd/gateway.h"
#include "coved/envd/e2b_gateway.h"
#include "coved/envd/envd.h"
#include "coved/api/e2b/e2b.h"
#include "coved/api/admin/admin.h"
#include "coved/api/seacloud/seacloud.h"
#include "coved/api/v1/v1.h"
#include "coved/events/events.h"
#include "coved/http/auth.h"
#include "coved/http/server.h"
#include "coved/manager/manager.h"
#include "coved/metrics.h"
#include "coved/obs/sampler.h"
#include "coved/templates/templates.h"
#include "lib/fdutil.h"
#include "lib/log.h"
#include "lib/macro.h"
#include "lib/rand.h"
#include "lib/timeutil.h"
#include "store/store.h"

#include <curl/curl.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <sys/stat.h>

static void usage(FILE *f)
{
        fprintf(f, "usage: coved [--config FILE] [--SETTING VALUE]...\n"
                   "       coved purge --data-dir DIR\n"
                   "\n"
                   "Runs the Cove daemon in the foreground. Settings (also 'key = value' lines of\n"
                   "the config file; flags win):\n\n");
        config_print_help(f);
        fprintf(f, "\nEnvironment: COVE_API_KEY makes sure that key exists as an admin key of the\n"
                   "default team. Without any key, coved generates one and writes it to\n"
                   "DATA-DIR/admin.key (mode 0600).\n");
}

/* Directory of our own executable: the default home of cove-runtime/-init/-agent. */
static char *self_dir(void)
{
        char path[PATH_MAX];
        ssize_t n = readlink("/proc/self/exe", path, sizeof(path) - 1);
        if (n <= 0)
                return xstrdup(".");
        path[n] = '\0';
        char *slash = strrchr(path, '/');
        if (slash)
                *slash = '\0';
        return xstrdup(path);
}

static int parse_args(struct coved_config *c, int argc, char **argv, bool *ret_purge,
                      struct cove_err **err)
{
        const char *config_file = NULL;
        int i = 1;
        if (argc > 1 && streq(argv[1], "purge")) {
                *ret_purge = true;
                i = 2;
        }
        /* The config file first, so that flags override it. */
        for (int k = i; k < argc; k++)
                if (streq(argv[k], "--config") && k + 1 < argc)
                        config_file = argv[k + 1];
                else if (strncmp(argv[k], "--config=", 9) == 0)
                        config_file = argv[k] + 9;
        if (config_file) {
                int r = config_load_file(c, config_file, err);
                if (r < 0)
                        return r;
        }
        for (; i < argc; i++) {
                const char *a = argv[i];
                if (streq(a, "--help") || streq(a, "-h")) {
                        usage(stdout);
                        exit(0);
                }
                if (streq(a, "--version")) {
                        printf("coved %s\n", COVE_VERSION);
                        exit(0);
                }
                if (strncmp(a, "--", 2) != 0)
                        return cove_err_set(err, EINVAL, "unexpected argument '%s'", a);
                cleanup_free char *key = NULL;
                const char *value;
                const char *eq = strchr(a, '=');
                if (eq) {
                        key = xstrndup(a + 2, (size_t)(eq - a - 2));
                        value = eq + 1;
                } else {
                        key = xstrdup(a + 2);
                        if (i + 1 >= argc)
                                return cove_err_set(err, EINVAL, "option '%s' needs a value", a);
                        value = argv[++i];
                }
                if (streq(key, "config"))
                        continue;
                int r = config_set(c, key, value, err);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int mkdir_p0700(const char *path, struct cove_err **err)
{
        cleanup_free char *p = xstrdup(path);
        for (char *s = p + 1; *s; s++) {
                if (*s != '/')
                        continue;
                *s = '\0';
                if (mkdir(p, 0755) < 0 && errno != EEXIST)
                        return cove_err_set(err, errno, "create '%s': %m", p);
                *s = '/';
        }
        if (mkdir(p, 0700) < 0 && errno != EEXIST)
                return cove_err_set(err, errno, "create '%s': %m", p);
        return 0;
}

/* Makes sure an API key exists: COVE_API_KEY, else a generated one written to admin.key.
 * *ret_printable says where the key is, never the key itself — stdout ends up in the
 * service's log — except a key generated just now when stdout is a terminal (`make run`). */
static int ensure_api_key(struct coved *cd, char **ret_printable, struct cove_err **err)
{
        int r = store_team_ensure_default(cd->store, err);
        if (r < 0)
                return r;
        const char *env_key = getenv("COVE_API_KEY");
        if (env_key && *env_key) {
                r = store_apikey_insert(cd->store, env_key, "team_default", "admin", err);
                if (r < 0 && r != -EEXIST)
                        return r;
                cove_err_free(err);
                size_t l = strlen(env_key);
                *ret_printable =
                        xasprintf("from COVE_API_KEY (****%s)", env_key + (l > 4 ? l - 4 : 0));
                return 0;
        }
        int64_t n = 0;
        r = store_apikey_count(cd->store, &n, err);
        if (r < 0)
                return r;
        if (n > 0) {
                *ret_printable = xasprintf("in %s", cd->api_key_file);
                return 0;
        }
        char rnd[41];
        random_alnum(rnd, 40);
        cleanup_free char *key = xasprintf("cove_%s", rnd);
        r = store_apikey_insert(cd->store, key, "team_default", "admin", err);
        if (r < 0)
                return r;
        cleanup_free char *tmp = xasprintf("%s.tmp", cd->api_key_file);
        cleanup_close int fd =
                open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd < 0)
                return cove_err_set(err, errno, "create '%s': %m", tmp);
        cleanup_free char *line = xasprintf("%s\n", key);
        r = write_full(fd, line, strlen(line));
        if (r < 0)
                return cove_err_set(err, -r, "write '%s': %m", tmp);
        if (rename(tmp, cd->api_key_file) < 0)
                return cove_err_set(err, errno, "rename '%s': %m", tmp);
        if (isatty(STDOUT_FILENO))
                *ret_printable = xasprintf("%s (also in %s)", key, cd->api_key_file);
        else
                *ret_printable = xasprintf("in %s", cd->api_key_file);
        return 0;
}

/* One table of the given tables, in order. */
static const struct route *join_routes(const struct route *const *tables, size_t ntables)
{
        size_t n = 0;
        for (size_t t = 0; t < ntables; t++)
                for (const struct route *r = tables[t]; r->method; r++)
                        n++;
        struct route *all = xzalloc((n + 1) * sizeof(*all));
        size_t k = 0;
        for (size_t t = 0; t < ntables; t++)
                for (const struct route *r = tables[t]; r->method; r++)
                        all[k++] = *r;
        return all;
}

static const struct route *build_routes(void)
{
        const struct route *const tables[] = {
                seacloud_sandbox_routes,
                seacloud_team_routes,
                seacloud_volume_routes,
                seacloud_template_routes,
                seacloud_observe_routes,
                seacloud_event_routes,
                v1_routes,
                admin_routes,
                admin_tenancy_routes,
                daemon_routes,
        };
        return join_routes(tables, ARRAY_SIZE(tables));
}

static const struct route *build_e2b_routes(void)
{
        const struct route *const tables[] = { e2b_sandbox_routes, e2b_template_routes };
        return join_routes(tables, ARRAY_SIZE(tables));
}

int main(int argc, char **argv)
{
        struct coved cd = { .interp_warm = envd_interp_warm };
        cleanup_err struct cove_err *err = NULL;
        bool purge = false;
        int r;

        log_set_ident("coved");
        config_defaults(&cd.cfg);
        if (parse_args(&cd.cfg, argc, argv, &purge, &err) < 0) {
                fprintf(stderr, "coved: %s (see coved --help)\n", err->msg);
                return 2;
        }
        if (config_finish(&cd.cfg, &err) < 0) {
                fprintf(stderr, "coved: %s\n", err->msg);
                return 2;
        }
        log_set_json(streq(cd.cfg.log_format, "json"));
        log_max_level = streq(cd.cfg.log_level, "debug")     ? LOG_LEVEL_DEBUG
                        : streq(cd.cfg.log_level, "warning") ? LOG_LEVEL_WARNING
                        : streq(cd.cfg.log_level, "error")   ? LOG_LEVEL_ERROR
                                                             : LOG_LEVEL_INFO;
        if (!*cd.cfg.libexec_dir) {
                /* Next to coved (the build tree), else where `make install` put them. */
                cleanup_free char *self = self_dir();
                cleanup_free char *probe = xasprintf("%s/cove-runtime", self);
                free(cd.cfg.libexec_dir);
                cd.cfg.libexec_dir =
                        access(probe, X_OK) == 0 ? TAKE_PTR(self) : xstrdup(COVE_LIBEXECDIR);
        }

        if (purge) {
                if (engine_purge(cd.cfg.data_dir, cd.cfg.cgroup_parent, &err) < 0) {
                        log_error("purge '%s': %s", cd.cfg.data_dir, err->msg);
                        return 1;
                }
                if (engine_network_purge(&cd.cfg, &err) < 0) {
                        log_error("purge sandbox networking: %s", err->msg);
                        return 1;
                }
                log_info("purged every sandbox of '%s'", cd.cfg.data_dir);
                config_release(&cd.cfg);
                return 0;
        }

        /* Connections are file descriptors: take what the hard limit allows (before any
         * thread or child exists). Children get the original limit back (fd_limit_restore()
         * in the runtime helper's spawn), so sandboxes never see the raised one. */
        unsigned long nofile = fd_limit_raise();

        /* Signals go to a signalfd read by this thread; worker threads inherit the mask. */
        sigset_t mask;
        sigemptyset(&mask);
        sigaddset(&mask, SIGINT);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGHUP);
        (void)pthread_sigmask(SIG_BLOCK, &mask, NULL);
        (void)signal(SIGPIPE, SIG_IGN);
        cleanup_close int sfd = signalfd(-1, &mask, SFD_CLOEXEC);
        if (sfd < 0)
                return log_error_errno(errno, "signalfd: %m"), 1;

        /* Before any thread: libcurl's global state (webhook deliveries) and the metrics. */
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
                return log_error("cannot initialise libcurl"), 1;
        metrics_init();
        cd.started_mono_ms = time_mono_ms();
        cd.sandboxes_dir = xasprintf("%s/sandboxes", cd.cfg.data_dir);
        cd.templates_dir = xasprintf("%s/templates", cd.cfg.data_dir);
        cd.api_key_file = xasprintf("%s/admin.key", cd.cfg.data_dir);
        if (mkdir_p0700(cd.cfg.data_dir, &err) < 0 || mkdir_p0700(cd.sandboxes_dir, &err) < 0 ||
            mkdir_p0700(cd.templates_dir, &err) < 0) {
                log_error("data dir: %s", err->msg);
                return 1;
        }
        (void)chmod(cd.templates_dir, 0755);
        cleanup_free char *db = xasprintf("%s/cove.db", cd.cfg.data_dir);
        if (store_open(db, &cd.store, &err) < 0) {
                log_error("open store '%s': %s", db, err->msg);
                return 1;
        }
        cd.keys = http_keycache_new();
        if (agent_pool_new(&cd.agents, &err) < 0) {
                log_error("%s", err->msg);
                return 1;
        }
        cleanup_free char *key = NULL;
        if (ensure_api_key(&cd, &key, &err) < 0) {
                log_error("api key: %s", err->msg);
                return 1;
        }
        if (templates_ensure_defaults(&cd, &err) < 0) {
                log_error("%s", err->msg);
                return 1;
        }
        if (engine_prepare(&cd, &err) < 0) {
                log_error("%s", err->msg);
                return 1;
        }
        r = engine_init();
        if (r < 0)
                log_warning_errno(r, "cannot become a child subreaper, ignoring: %m");
        if (engine_network_open(&cd, &err) < 0) {
                log_error("%s", err->msg);
                return 1;
        }
        if (manager_init(&cd, &err) < 0) {
                log_error("%s", err->msg);
                return 1;
        }
        manager_adopt(&cd);
        if (templates_init(&cd, &err) < 0) {
                log_error("build plane: %s", err->msg);
                return 1;
        }
        if (manager_start(&cd, &err) < 0 || sampler_start(&cd, &err) < 0 ||
            webhook_pool_start(&cd, &err) < 0) {
                log_error("%s", err->msg);
                webhook_pool_stop(&cd);
                sampler_stop(&cd);
                manager_stop(&cd);
                return 1;
        }

        struct http_server *srv = NULL;
        long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
        struct http_server_config hc = {
                .host = cd.cfg.listen_host,
                .port = cd.cfg.port,
                .routes = build_routes(),
                .runtime_route = &runtime_route,
                .e2b_routes = build_e2b_routes(),
                .e2b_sandbox_route = &e2b_sandbox_route,
                .threads = cd.cfg.http_threads ? (unsigned)cd.cfg.http_threads
                                               : (unsigned)MAX(ncpu, 2L),
                /* The rest of the fds: SQLite, pidfds, agent and upstream sockets of
                 * streams, spawns. */
                .max_connections = cd.cfg.max_connections ? (unsigned)cd.cfg.max_connections
                                                          : (unsigned)(nofile / 4 * 3),
                .max_per_client = (unsigned)cd.cfg.max_connections_client,
                .idle_timeout_s = (unsigned)cd.cfg.idle_timeout,
                .max_active = (unsigned)cd.cfg.max_active,
                .max_active_per_sandbox = (unsigned)cd.cfg.max_active_sandbox,
        };
        if (http_server_start(&cd, &hc, &srv, &err) < 0) {
                log_error("%s", err->msg);
                webhook_pool_stop(&cd);
                sampler_stop(&cd);
                manager_stop(&cd);
                return 1;
        }
        /* cove.internal: the same API on the sandboxes' gateway address, unless the main
         * listener already covers it (a wildcard address). */
        struct http_server *internal = NULL;
        char gateway[46];
        if (engine_network_gateway(&cd, gateway) == 0 && !streq(cd.cfg.listen_host, "0.0.0.0") &&
            !streq(cd.cfg.listen_host, gateway)) {
                struct http_server_config ic = hc;
                ic.host = gateway;
                if (http_server_start(&cd, &ic, &internal, &err) < 0) {
                        log_error("cove.internal: %s", err->msg);
                        http_server_stop(srv);
                        manager_stop(&cd);
                        return 1;
                }
        }
        daemon_set_pid(getpid());
        printf("coved %s listening on %s\n", COVE_VERSION, cd.cfg.public_url);
        printf("API key: %s\n", key);
        if (streq(cd.cfg.auth, "none"))
                printf("auth: none (open mode: any key or none acts as admin of the default "
                       "team)\n");
        /* e2b.md §7: how E2B's SDKs reach this coved. */
        printf("E2B SDKs: export E2B_API_URL=%s E2B_SANDBOX_URL=%s E2B_API_KEY=<key>\n"
               "  (the Python SDK wants e2b_ + 40 hex: `cove admin key create --e2b` makes such "
               "a key)\n",
               cd.cfg.public_url, cd.cfg.public_url);
        fflush(stdout);
        log_info("listening on %s:%u, data dir '%s' (%u HTTP threads, up to %u connections, "
                 "open-file limit %lu)",
                 cd.cfg.listen_host, cd.cfg.port, cd.cfg.data_dir, hc.threads, hc.max_connections,
                 nofile);

        for (;;) {
                struct signalfd_siginfo si;
                ssize_t n = read(sfd, &si, sizeof(si));
                if (n < 0 && errno == EINTR)
                        continue;
                if (n != sizeof(si))
                        break;
                if (si.ssi_signo == SIGHUP)
                        continue;
                log_info("received %s, stopping (sandboxes keep running)",
                         strsignal((int)si.ssi_signo));
                break;
        }
        cd.stopping = true;
        http_server_stop(internal);
        http_server_stop(srv);
        webhook_pool_stop(&cd);
        sampler_stop(&cd);
        templates_stop(&cd);
        manager_stop(&cd);
        agent_pool_free(cd.agents);
        engine_release(&cd);
        engine_network_close(&cd);
        cd.store = store_close(cd.store);
        http_keycache_free(cd.keys);
        free((void *)hc.routes);
        free((void *)hc.e2b_routes);
        free(cd.sandboxes_dir);
        free(cd.templates_dir);
        free(cd.api_key_file);
        config_release(&cd.cfg);
        metrics_free();
        curl_global_cleanup();
        return 0;
}
