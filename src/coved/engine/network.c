/* SPDX-License-Identifier: MIT */
/*
 * network.c — every sandbox's network (docs/design/network.md), through src/net: set up once at
 * start, attached to a sandbox right after the runtime made its namespaces (coved opens
 * /proc/<init>/ns/net and configures it over netlink from the privileged side; cove-runtime only
 * writes the seed files), policy changes, re-adoption after a restart, removal, purge.
 *
 * With `--network none` cd->net is NULL and every function here is a no-op: sandboxes keep
 * their loopback-only namespace.
 */
#include "coved/engine/network.h"
#include "lib/log.h"
#include "lib/macro.h"
#include "net/net.h"
#include "net/netns.h"
#include "net/policy.h"
#include "runtime/spawn_client.h"

#include <fcntl.h>

#define LIST_MAX 8

/* Splits a comma-separated setting into at most max trimmed, non-empty items (owned copy in
 * *ret_buf). */
static size_t split_list(const char *s, const char **out, size_t max, char **ret_buf)
{
        char *buf = xstrdup(s ? s : ""), *p = buf;
        size_t n = 0;

        while (p && *p && n < max) {
                char *comma = strchr(p, ','), *end;
                if (comma)
                        *comma = '\0';
                while (*p == ' ')
                        p++;
                end = p + strlen(p);
                while (end > p && end[-1] == ' ')
                        *--end = '\0';
                if (*p)
                        out[n++] = p;
                p = comma ? comma + 1 : NULL;
        }
        *ret_buf = buf;
        return n;
}

int engine_network_open(struct coved *cd, struct cove_err **err)
{
        cleanup_free char *ubuf = NULL, *dbuf = NULL;
        struct net_config c = { .pool = cd->cfg.network_pool, .api_port = cd->cfg.port };
        int r;

        if (streq(cd->cfg.network, "none"))
                return 0;
        c.n_uplinks = split_list(cd->cfg.uplink, c.uplinks, NET_UPLINKS_MAX, &ubuf);
        c.n_dns_upstreams =
                split_list(cd->cfg.dns_upstream, c.dns_upstreams, NET_DNS_UPSTREAMS_MAX, &dbuf);
        r = net_open(&c, &cd->net, err);
        if (r < 0)
                return cove_err_wrap(err, "sandbox networking (run with --network none to go "
                                          "without)");
        return 0;
}

void engine_network_close(struct coved *cd)
{
        net_close(cd->net);
        cd->net = NULL;
}

int engine_network_purge(const struct coved_config *cfg, struct cove_err **err)
{
        if (streq(cfg->network, "none"))
                return 0;
        return net_purge(cfg->network_pool, err);
}

int engine_network_gateway(struct coved *cd, char out[NET_ADDR_STR_MAX])
{
        struct net_addr g;

        if (!cd->net)
                return -ENOENT;
        net_gateway4(cd->net, &g);
        net_addr_format(&g, out);
        return 0;
}

void engine_network_usage(struct coved *cd, const char *id, struct sandbox_usage *u)
{
        struct net_counters c;

        if (!cd->net || net_sandbox_counters(cd->net, id, &c) < 0)
                return;
        u->net_rx_bytes = (int64_t)MIN(c.rx_bytes, (uint64_t)INT64_MAX);
        u->net_tx_bytes = (int64_t)MIN(c.tx_bytes, (uint64_t)INT64_MAX);
        u->net_rx_packets = (int64_t)MIN(c.rx_packets, (uint64_t)INT64_MAX);
        u->net_tx_packets = (int64_t)MIN(c.tx_packets, (uint64_t)INT64_MAX);
        u->net_rx_errors = (int64_t)MIN(c.rx_errors, (uint64_t)INT64_MAX);
        u->net_tx_errors = (int64_t)MIN(c.tx_errors, (uint64_t)INT64_MAX);
        u->net_rx_drops = (int64_t)MIN(c.rx_drops, (uint64_t)INT64_MAX);
        u->net_tx_drops = (int64_t)MIN(c.tx_drops, (uint64_t)INT64_MAX);
}

json_t *engine_network_files(struct coved *cd, const struct engine_spec *spec)
{
        json_t *files = json_array();
        char g[NET_ADDR_STR_MAX];

        if (engine_network_gateway(cd, g) == 0) {
                cleanup_free char *resolv = xasprintf("nameserver %s\n", g);
                cleanup_free char *line = xasprintf("%s\t" NET_DNS_INTERNAL_NAME "\n", g);
                json_array_append_new(files,
                                      json_pack("{s:s, s:s, s:i}", "path", "/etc/resolv.conf",
                                                "content", resolv, "mode", 0644));
                json_array_append_new(files, json_pack("{s:s, s:s, s:i, s:b}", "path", "/etc/hosts",
                                                       "content", line, "mode", 0644, "append", 1));
        }
        if (spec->access_token)
                json_array_append_new(files,
                                      json_pack("{s:s, s:s, s:i}", "path", "/run/cove/access-token",
                                                "content", spec->access_token, "mode", 0600));
        return files;
}

/* The policy of a sandbox: its /v1 `egress` when that face set it last (deny before allow,
 * ports), else its stored SeaCloud `network` (allow overrides deny). */
static int policy_of(const json_t *network, const json_t *egress, struct net_policy *ret,
                     struct cove_err **err)
{
        if (egress && json_is_object(egress))
                return net_policy_from_v1((json_t *)egress, "egress", ret, err);
        return net_policy_from_seacloud_view((json_t *)network, ret, err);
}

/* The network namespace of a live init, checked after the open (the fd pins it). */
static int open_netns(const char *id, const struct engine_identity *who, struct cove_err **err)
{
        int fd;

        if (!who || who->pid <= 1 || who->pid > INT32_MAX)
                return cove_err_set(err, ESRCH, "sandbox '%s' has no init", id);
        fd = netns_open_pid((int)who->pid);
        if (fd < 0)
                return cove_err_set(err, -fd, "open the network namespace of sandbox '%s': %m", id);
        if (runtime_init_alive((pid_t)who->pid, (uint64_t)who->starttime) != 1) {
                (void)close(fd);
                return cove_err_set(err, ESRCH, "sandbox '%s' is not running", id);
        }
        return fd;
}

int engine_network_attach(struct coved *cd, const struct engine_spec *spec,
                          const struct engine_identity *who, struct cove_err **err)
{
        struct net_policy p;
        cleanup_close int fd = -1;
        int r;

        if (!cd->net)
                return 0;
        r = policy_of(spec->network, spec->egress, &p, err);
        if (r < 0)
                return r;
        fd = open_netns(spec->id, who, err);
        r = fd < 0 ? fd : net_sandbox_attach(cd->net, spec->id, fd, &p, NULL, err);
        net_policy_done(&p);
        return r;
}

void engine_network_detach(struct coved *cd, const char *id)
{
        cleanup_err struct cove_err *err = NULL;

        if (cd->net && net_sandbox_detach(cd->net, id, &err) < 0)
                log_warning("sandbox '%s': %s, ignoring", id, err->msg);
}

int engine_set_network(struct coved *cd, const char *id, const json_t *network,
                       const json_t *egress, struct cove_err **err)
{
        struct net_policy p;
        int r;

        if (!cd->net)
                return 0;
        r = policy_of(network, egress, &p, err);
        if (r >= 0)
                r = net_sandbox_set_policy(cd->net, id, &p, err);
        net_policy_done(&p);
        return r;
}

int engine_adopt(struct coved *cd, const char *id, const struct engine_identity *who,
                 const json_t *network, const json_t *egress, struct cove_err **err)
{
        struct net_policy p;
        cleanup_close int fd = -1;
        int r;

        if (!cd->net)
                return 0;
        r = policy_of(network, egress, &p, err);
        if (r < 0)
                return r;
        r = net_sandbox_adopt(cd->net, id, &p, NULL, err);
        if (r == -ENOENT) {
                /* Its link is gone (or it was made under --network none): a new one. */
                fd = open_netns(id, who, err);
                r = fd < 0 ? fd : net_sandbox_attach(cd->net, id, fd, &p, NULL, err);
        }
        net_policy_done(&p);
        return r;
}

void engine_adopt_done(struct coved *cd)
{
        cleanup_err struct cove_err *err = NULL;
        int r;

        if (!cd->net)
                return;
        r = net_sweep_unadopted(cd->net, &err);
        if (r < 0)
                log_warning("remove networks of gone sandboxes: %s", err->msg);
        else if (r > 0)
                log_info("removed the networks of %d sandboxes that are gone", r);
}
