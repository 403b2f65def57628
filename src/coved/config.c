/* SPDX-License-Identifier: MIT */
#include "coved/config.h"
#include "net/policy.h"
#include "net/pool.h"
#include "lib/fdutil.h"
#include "lib/macro.h"
#include "lib/parse.h"

#include <ctype.h>

enum setting_type {
        SETTING_STRING,
        SETTING_INT,
        SETTING_BOOL,
        SETTING_LIST, /* a string; each use appends a line (repeatable flags) */
};

struct setting {
        const char *key;
        enum setting_type type;
        size_t offset;
        const char *def;
        int64_t min, max;
        const char *help;
        const char *word_a, *word_b; /* SETTING_STRING: its only two values, else NULL */
};

#define S(k, f, d, h)                                                                              \
        {                                                                                          \
                k, SETTING_STRING, offsetof(struct coved_config, f), d, 0, 0, h                    \
        }
#define B(k, f, d, h)                                                                              \
        {                                                                                          \
                k, SETTING_BOOL, offsetof(struct coved_config, f), d, 0, 0, h                      \
        }
#define L(k, f, h)                                                                                 \
        {                                                                                          \
                k, SETTING_LIST, offsetof(struct coved_config, f), "", 0, 0, h                     \
        }
#define I(k, f, d, lo, hi, h)                                                                      \
        {                                                                                          \
                k, SETTING_INT, offsetof(struct coved_config, f), d, lo, hi, h                     \
        }
/* A string setting that is one of two words (checked by config_finish). */
#define W(k, f, d, a, b, h)                                                                        \
        {                                                                                          \
                k, SETTING_STRING, offsetof(struct coved_config, f), d, 0, 0, h, a, b              \
        }

static const struct setting settings[] = {
        S("listen", listen, "127.0.0.1:49982", "HOST:PORT of the API port"),
        S("data-dir", data_dir, "/var/lib/cove", "state directory (SQLite, sandboxes, templates)"),
        S("public-url", public_url, "",
          "base of URLs handed to clients (default http://HOST:PORT)"),
        W("auth", auth, "key", "key", "none",
          "'key' (API keys) or 'none' (open mode, single-user workstation)"),
        S("node-name", node_name, "", "clientID of sandboxes on this node (default: host name)"),
        S("libexec-dir", libexec_dir, "",
          "directory of cove-runtime, cove-init, cove-agent (default: coved's own when they are "
          "there, else PREFIX/libexec/cove)"),
        S("log-format", log_format, "text", "'text' or 'json'"),
        S("log-level", log_level, "info", "error, warning, info or debug"),
        I("default-timeout", default_timeout, "300", 1, 86400,
          "sandbox lifetime when a create names none (s)"),
        I("ready-wait", ready_wait, "120", 1, 3600, "longest waitReady / connect wait (s)"),
        I("max-sandboxes", max_sandboxes, "0", 0, 100000,
          "node capacity in live sandboxes (0: derived from the host's pids and memory)"),
        I("default-cpu-count", default_cpu_count, "2", 1, 256, "CPUs of templates that name none"),
        I("default-memory-mb", default_memory_mb, "512", 16, 1048576,
          "memory of templates that name none (MiB)"),
        I("default-disk-mb", default_disk_mb, "2048", 16, 1048576,
          "disk of templates that name none (MiB)"),
        I("pids-max", pids_max, "1024", 16, 1000000, "task limit per sandbox"),
        I("stopped-retention", stopped_retention, "3600", 0, 604800,
          "how long stopped sandboxes are kept (s)"),
        I("paused-max-age", paused_max_age, "0", 0, 31536000,
          "paused sandboxes older than this are deleted (s; 0: kept until deleted)"),
        I("volume-size-mb", volume_size_mb, "1024", 16, 16777216,
          "size of every new volume; writes past it fail with ENOSPC (MiB)"),
        I("max-disk-mb", max_disk_mb, "65536", 256, 16777216,
          "largest disk a /v1 create may ask for with disk_size_mb (MiB)"),
        I("log-max-entries", log_max_entries, "10000", 100, 1000000,
          "log entries kept per sandbox (the oldest go)"),
        I("metrics-interval", metrics_interval, "5", 1, 60,
          "seconds between sandbox metric samples"),
        I("team-metrics-interval", team_metrics_interval, "15", 1, 3600,
          "seconds between samples of team metrics"),
        I("team-metrics-retention", team_metrics_retention, "2678400", 3600, 31536000,
          "how long team metric samples are kept (s)"),
        I("event-retention", event_retention, "604800", 3600, 31536000,
          "how long lifecycle events and webhook deliveries are kept (s)"),
        W("metrics-auth", metrics_auth, "key", "key", "none",
          "GET /metrics: 'key' (any valid key) or 'none' (public)"),
        B("webhook-allow-private", webhook_allow_private, "false",
          "deliver webhooks to loopback, private, link-local and this host's addresses"),
        I("webhook-workers", webhook_workers, "4", 1, 64, "webhook delivery threads"),
        I("limit-concurrent-sandboxes", limit_concurrent_sandboxes, "0", 0, 1000000,
          "default per-team limit of starting+running sandboxes (0: none)"),
        I("limit-cpu", limit_cpu, "0", 0, 1000000,
          "default per-team limit of CPUs in use (0: none)"),
        I("limit-memory-mb", limit_memory_mb, "0", 0, 1LL << 40,
          "default per-team limit of memory in use (MiB, 0: none)"),
        I("limit-disk-mb", limit_disk_mb, "0", 0, 1LL << 40,
          "default per-team limit of sandbox disk (MiB, 0: none)"),
        I("limit-templates", limit_templates, "0", 0, 1000000,
          "default per-team limit of templates (0: none)"),
        I("limit-concurrent-builds", limit_concurrent_builds, "0", 0, 1000000,
          "default per-team limit of running builds (0: none)"),
        I("limit-max-lifetime", limit_max_lifetime, "0", 0, 86400,
          "default per-team longest sandbox timeout (s, 0: 86400)"),
        S("e2b-domain", e2b_domain, "",
          "domain of E2B Host routing: <port>-<sandboxID>.DOMAIN (default: off)"),
        I("e2b-ready-wait", e2b_ready_wait, "50", 1, 3600,
          "longest create wait of the E2B face (s); then 503, the sandbox deleted"),
        /* the build plane (build-plane.md) */
        L("registry-mirror", registry_mirrors,
          "HOST=URL[,only]: pull images of HOST from URL first (repeatable)"),
        S("aws-ecr-endpoint", aws_ecr_endpoint, "",
          "ECR API URL for fromImageRegistry type 'aws' (default https://api.ecr.REGION."
          "amazonaws.com)"),
        I("max-concurrent-builds", max_concurrent_builds, "2", 1, 64,
          "builds that run at once; more wait as 'waiting'"),
        W("direct-build", direct_build, "on", "on", "off", "'on' or 'off': serve POST /build"),
        I("max-template-cpu", max_template_cpu, "8", 1, 256, "largest cpuCount of a template"),
        I("max-template-memory-mb", max_template_memory_mb, "16384", 128, 1048576,
          "largest memoryMB of a template"),
        I("max-template-disk-mb", max_template_disk_mb, "51200", 512, 16777216,
          "largest diskSizeMB of a template"),
        W("network", network, "on", "on", "none",
          "'on': every sandbox gets a network (docs/operations.md); 'none': loopback only"),
        S("network-pool", network_pool, NET_POOL_DEFAULT,
          "sandbox addresses: an IPv4 CIDR, optionally ',' and an IPv6 CIDR"),
        S("uplink", uplink, "",
          "interfaces sandbox traffic leaves by, comma-separated (default: the default routes')"),
        S("dns-upstream", dns_upstream, "",
          "servers Cove's resolver asks, ADDR[:PORT] comma-separated (default: "
          "/etc/resolv.conf's)"),
        S("network-default-policy", network_default_policy, "",
          "egress of sandboxes whose create sets none, as a SeaCloud network object "
          "(e.g. {\"allowInternetAccess\":false,\"allowOut\":[\"pypi.org\"]})"),
        I("http-threads", http_threads, "0", 0, 256,
          "threads serving HTTP connections (0: one per CPU, at least 2)"),
        I("max-connections", max_connections, "0", 0, 1000000,
          "open HTTP connections in all (0: 3/4 of the open-file limit)"),
        I("max-connections-per-client", max_connections_client, "1024", 0, 1000000,
          "open HTTP connections from one client address, loopback included (0: no limit)"),
        I("idle-timeout", idle_timeout, "60", 1, 3600,
          "seconds a client may send nothing: a stalled request body gets 408, an idle "
          "connection is closed"),
        I("max-active-requests", max_active, "1024", 1, 65536,
          "requests doing blocking work at once (503 beyond)"),
        I("max-active-requests-per-sandbox", max_active_sandbox, "256", 1, 65536,
          "of those, for one sandbox's runtime API (429 beyond)"),
        I("uid-base", uid_base, "1879048192", 65536, 2147418112,
          "first host uid of the sandboxes' user namespaces"),
        I("uid-ranges", uid_ranges, "4094", 1, 32767,
          "number of 65,536-uid blocks from uid-base (one per sandbox)"),
        I("disk-reserve-mb", disk_reserve_mb, "2048", 0, 1048576,
          "free space kept on the data filesystem: no sandbox may eat into it (MiB)"),
        I("node-pids-reserve", node_pids_reserve, "4096", 0, 4194304,
          "pids kept for the host: all sandboxes together get the host's limit minus this"),
        I("node-memory-reserve-mb", node_memory_reserve_mb, "1024", 0, 1048576,
          "memory kept for the host: all sandboxes together get the host's RAM minus this (MiB)"),
        I("io-weight", io_weight, "100", 1, 10000,
          "I/O weight of each sandbox where the kernel can weigh I/O (v2 io.weight, v1 "
          "blkio.weight)"),
        S("cgroup-parent", cgroup_parent, "cove",
          "cgroup of all sandboxes (their node budget), relative to the cgroup roots"),
        I("warm-pool-size", warm_pool_size, "0", 0, 1000,
          "pre-started sandboxes kept ready per warm-pool template (0: no warm pool)"),
        S("warm-pool-templates", warm_pool_templates, "base",
          "comma-separated templates (IDs or names) the warm pool keeps sandboxes of"),
        {},
};

static int setting_apply(struct coved_config *c, const struct setting *s, const char *value,
                         struct cove_err **err)
{
        void *dst = (char *)c + s->offset;
        if (s->type == SETTING_LIST) {
                char **p = dst;
                char *old = *p;
                *p = old && *old && *value ? xasprintf("%s\n%s", old, value)
                                           : xstrdup(*value || !old ? value : old);
                free(old);
                return 0;
        }
        if (s->type == SETTING_STRING) {
                free(*(char **)dst);
                *(char **)dst = xstrdup(value);
                return 0;
        }
        if (s->type == SETTING_BOOL) {
                bool b;
                if (streq(value, "true") || streq(value, "1") || streq(value, "yes"))
                        b = true;
                else if (streq(value, "false") || streq(value, "0") || streq(value, "no"))
                        b = false;
                else
                        return cove_err_set(err, EINVAL, "setting '%s': '%s' is not true or false",
                                            s->key, value);
                *(bool *)dst = b;
                return 0;
        }
        int64_t v;
        if (safe_atoi64(value, &v) < 0 || v < s->min || v > s->max)
                return cove_err_set(err, EINVAL,
                                    "setting '%s': '%s' is not an integer in %lld..%lld", s->key,
                                    value, (long long)s->min, (long long)s->max);
        *(int64_t *)dst = v;
        return 0;
}

static const struct setting *setting_find(const char *key)
{
        for (const struct setting *s = settings; s->key; s++)
                if (streq(s->key, key))
                        return s;
        /* config files may spell keys with underscores */
        char tmp[64];
        size_t l = strlen(key);
        if (l >= sizeof(tmp))
                return NULL;
        for (size_t i = 0; i <= l; i++)
                tmp[i] = key[i] == '_' ? '-' : key[i];
        if (streq(tmp, "sandbox-domain")) /* e2b.md §3.4 names it so too */
                return setting_find("e2b-domain");
        for (const struct setting *s = settings; s->key; s++)
                if (streq(s->key, tmp))
                        return s;
        return NULL;
}

void config_defaults(struct coved_config *c)
{
        for (const struct setting *s = settings; s->key; s++)
                (void)setting_apply(c, s, s->def, NULL);
}

static char *trim(char *s)
{
        while (isspace((unsigned char)*s))
                s++;
        size_t l = strlen(s);
        while (l > 0 && isspace((unsigned char)s[l - 1]))
                s[--l] = '\0';
        return s;
}

int config_load_file(struct coved_config *c, const char *path, struct cove_err **err)
{
        cleanup_free char *data = NULL;
        size_t len;
        int r = read_small_file(path, 1024 * 1024, &data, &len);
        if (r < 0)
                return cove_err_set(err, -r, "read config file '%s': %m", path);
        unsigned lineno = 0;
        for (char *line = data, *next; line && *line; line = next) {
                next = strchr(line, '\n');
                if (next)
                        *next++ = '\0';
                lineno++;
                char *l = trim(line);
                if (!*l || *l == '#')
                        continue;
                char *eq = strchr(l, '=');
                if (!eq)
                        return cove_err_set(err, EINVAL, "%s:%u: expected 'key = value'", path,
                                            lineno);
                *eq = '\0';
                char *k = trim(l), *v = trim(eq + 1);
                size_t vl = strlen(v);
                if (vl >= 2 && v[0] == '"' && v[vl - 1] == '"') {
                        v[vl - 1] = '\0';
                        v++;
                }
                const struct setting *s = setting_find(k);
                if (!s)
                        return cove_err_set(err, EINVAL, "%s:%u: unknown setting '%s'", path,
                                            lineno, k);
                r = setting_apply(c, s, v, err);
                if (r < 0)
                        return cove_err_wrap(err, "%s:%u", path, lineno);
        }
        return 0;
}

int config_set(struct coved_config *c, const char *key, const char *value, struct cove_err **err)
{
        const struct setting *s = setting_find(key);
        if (!s)
                return cove_err_set(err, ENOENT, "unknown option '--%s'", key);
        return setting_apply(c, s, value, err);
}

bool config_known(const char *key)
{
        return setting_find(key) != NULL;
}

void config_print_help(FILE *f)
{
        int w = 20;
        for (const struct setting *s = settings; s->key; s++)
                w = MAX(w, (int)strlen(s->key));
        for (const struct setting *s = settings; s->key; s++)
                if (*s->def)
                        fprintf(f, "  --%-*s %s (default: %s)\n", w, s->key, s->help, s->def);
                else
                        fprintf(f, "  --%-*s %s\n", w, s->key, s->help);
}

int config_finish(struct coved_config *c, struct cove_err **err)
{
        const char *colon = strrchr(c->listen, ':');
        uint32_t port;
        if (!colon || colon == c->listen || safe_atou32(colon + 1, &port) < 0 || port == 0 ||
            port > 65535)
                return cove_err_set(err, EINVAL, "listen address '%s' is not HOST:PORT", c->listen);
        free(c->listen_host);
        c->listen_host = xstrndup(c->listen, (size_t)(colon - c->listen));
        c->port = (uint16_t)port;
        for (const struct setting *s = settings; s->key; s++) {
                const char *v = *(char **)((char *)c + s->offset);
                if (s->word_a && !streq(v, s->word_a) && !streq(v, s->word_b))
                        return cove_err_set(err, EINVAL, "setting '%s' must be '%s' or '%s'",
                                            s->key, s->word_a, s->word_b);
        }
        if (!*c->public_url) {
                free(c->public_url);
                c->public_url = xasprintf("http://%s:%u", c->listen_host, c->port);
        }
        size_t pl = strlen(c->public_url);
        while (pl > 0 && c->public_url[pl - 1] == '/')
                c->public_url[--pl] = '\0';
        if (!*c->node_name) {
                char host[256] = "cove";
                (void)gethostname(host, sizeof(host) - 1);
                host[sizeof(host) - 1] = '\0';
                free(c->node_name);
                c->node_name = xstrdup(*host ? host : "cove");
        }
        for (char *d = c->e2b_domain; *d; d++)
                *d = (char)tolower((unsigned char)*d);
        if (*c->network_default_policy) {
                json_error_t je;
                struct net_policy p;
                json_t *j = json_loads(c->network_default_policy, JSON_REJECT_DUPLICATES, &je);
                int r = j ? net_policy_from_seacloud(j, NULL, &p, err)
                          : cove_err_set(err, EINVAL, "%s", je.text);
                json_decref(j);
                if (r < 0)
                        return cove_err_wrap(err, "setting 'network-default-policy'");
                net_policy_done(&p);
        }
        if (c->data_dir[0] != '/')
                return cove_err_set(err, EINVAL, "data dir '%s' must be an absolute path",
                                    c->data_dir);
        /* Sandbox uids stay below 2^31 (tools that read uids as signed ints). */
        if (c->uid_base + c->uid_ranges * 65536 > 2147483648LL)
                return cove_err_set(err, EINVAL,
                                    "settings 'uid-base' + 'uid-ranges' * 65536 pass 2^31");
        if (!*c->cgroup_parent || strstr(c->cgroup_parent, "..") || c->cgroup_parent[0] == '/')
                return cove_err_set(err, EINVAL,
                                    "setting 'cgroup-parent' must be a relative cgroup name");
        return 0;
}

void config_release(struct coved_config *c)
{
        for (const struct setting *s = settings; s->key; s++)
                if (s->type == SETTING_STRING || s->type == SETTING_LIST) {
                        char **p = (char **)((char *)c + s->offset);
                        free(*p);
                        *p = NULL;
                }
        free(c->listen_host);
        c->listen_host = NULL;
}
