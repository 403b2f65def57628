/* SPDX-License-Identifier: MIT */
/*
 * netlab — drives src/net the way coved does, for tests and benchmarks that run before (and
 * beside) coved's own wiring. It runs in the network namespace it is started in (the tests'
 * "host" namespace) and reads one JSON command per line on stdin, answering one JSON line:
 *
 *   {"op":"open","pool":"…","uplinks":["up0"],"dns":["198.51.100.53"],"apiPort":8080,"dnsPort":53}
 *   {"op":"attach","id":"sb1","netns":"/run/netns/x","policy":POLICY}  → {"ok":true,"addr4":…}
 *   {"op":"adopt","id":"sb1","policy":POLICY}
 *   {"op":"policy","id":"sb1","policy":POLICY}
 *   {"op":"detach","id":"sb1"}   {"op":"sweep"}   {"op":"close"}
 *   {"op":"purge","pool":"…"}   {"op":"leftovers","pool":"…"}
 *   {"op":"text","slot":N,"generation":N,"addr4":"…","addr6":"…","policy":POLICY}
 *     → {"ok":true,"text":"…"}: the libnftables text of a sandbox's objects (ruleset.h), the
 *     reference the tests compare the libnftnl batches (nftnl.h) against
 *
 * POLICY is {"network":{…}} (SeaCloud face) or {"egress":{…}} (/v1 face); absent: allow all.
 * Errors answer {"ok":false,"error":"…","errno":N}.
 */
#include "lib/err.h"
#include "lib/macro.h"
#include "net/net.h"
#include "net/ruleset.h"

#include <fcntl.h>
#include <jansson.h>
#include <time.h>

static struct net *net;

static int64_t mono_us(void)
{
        struct timespec ts;

        (void)clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static json_t *fail(struct cove_err *err, int r)
{
        json_t *o = json_pack("{s:b, s:s, s:i}", "ok", 0, "error", err ? err->msg : strerror(-r),
                              "errno", err ? err->errnum : -r);
        return o;
}

static int policy_of(json_t *cmd, struct net_policy *p, struct cove_err **err)
{
        json_t *pol = json_object_get(cmd, "policy"), *v;

        if (!pol || json_is_null(pol)) {
                net_policy_init_default(p);
                return 0;
        }
        v = json_object_get(pol, "egress");
        if (v)
                return net_policy_from_v1(v, "egress", p, err);
        return net_policy_from_seacloud(json_object_get(pol, "network"), NULL, p, err);
}

static void strs_of(json_t *a, const char **out, size_t max, size_t *ret_n)
{
        size_t i, k = 0;
        json_t *e;

        json_array_foreach (a, i, e) {
                if (json_is_string(e) && k < max)
                        out[k++] = json_string_value(e);
        }
        *ret_n = k;
}

static json_t *info_json(const struct net_sandbox_info *info)
{
        char a4[NET_ADDR_STR_MAX], a6[NET_ADDR_STR_MAX], g[NET_ADDR_STR_MAX];

        return json_pack("{s:b, s:s, s:s, s:s?, s:s}", "ok", 1, "ifname", info->ifname, "addr4",
                         net_addr_format(&info->addr4, a4), "addr6",
                         info->addr6.family ? net_addr_format(&info->addr6, a6) : NULL, "gateway4",
                         net_addr_format(&info->gateway4, g));
}

static json_t *ruleset_text(json_t *cmd)
{
        struct net_ruleset_sandbox s;
        struct net_addr a4, a6 = { 0 };
        const char *t6 = json_string_value(json_object_get(cmd, "addr6"));
        struct cove_err *err = NULL;
        struct net_policy p;
        struct buf b;
        json_t *res;
        int r;

        if (net_addr_parse(json_string_value(json_object_get(cmd, "addr4")) ?: "", NET_FAMILY_V4,
                           &a4) < 0 ||
            (t6 && net_addr_parse(t6, NET_FAMILY_V6, &a6) < 0))
                return json_pack("{s:b, s:s}", "ok", 0, "error", "bad address");
        r = policy_of(cmd, &p, &err);
        if (r < 0)
                return fail(err, r);
        net_ruleset_sandbox_init(&s, (uint32_t)json_integer_value(json_object_get(cmd, "slot")),
                                 &a4, t6 ? &a6 : NULL);
        s.generation = (uint32_t)json_integer_value(json_object_get(cmd, "generation"));
        buf_init(&b, 1 << 22);
        r = net_ruleset_sandbox_add(&s, &p, &b);
        net_policy_done(&p);
        res = r < 0 ? json_pack("{s:b, s:s}", "ok", 0, "error", "text too long")
                    : json_pack("{s:b, s:s}", "ok", 1, "text", buf_str(&b));
        buf_release(&b);
        return res;
}

static json_t *run(json_t *cmd)
{
        const char *op = json_string_value(json_object_get(cmd, "op"));
        const char *id = json_string_value(json_object_get(cmd, "id"));
        cleanup_err struct cove_err *err = NULL;
        struct net_policy p;
        int r;

        if (!op)
                return json_pack("{s:b, s:s}", "ok", 0, "error", "no op");
        if (streq(op, "open")) {
                struct net_config cfg = {
                        .pool = json_string_value(json_object_get(cmd, "pool")),
                        .api_port = (uint16_t)json_integer_value(json_object_get(cmd, "apiPort")),
                        .dns_port = (uint16_t)json_integer_value(json_object_get(cmd, "dnsPort")),
                };
                strs_of(json_object_get(cmd, "uplinks"), cfg.uplinks, NET_UPLINKS_MAX,
                        &cfg.n_uplinks);
                strs_of(json_object_get(cmd, "dns"), cfg.dns_upstreams, NET_DNS_UPSTREAMS_MAX,
                        &cfg.n_dns_upstreams);
                r = net_open(&cfg, &net, &err);
                return r < 0 ? fail(err, r) : json_pack("{s:b}", "ok", 1);
        }
        if (streq(op, "purge") || streq(op, "leftovers")) {
                const char *pool = json_string_value(json_object_get(cmd, "pool"));
                struct net_leftovers l;
                if (streq(op, "purge")) {
                        r = net_purge(pool, &err);
                        return r < 0 ? fail(err, r) : json_pack("{s:b}", "ok", 1);
                }
                r = net_leftovers(pool, &l, &err);
                return r < 0 ? fail(err, r)
                             : json_pack("{s:b, s:i, s:b, s:i}", "ok", 1, "links", l.links, "table",
                                         l.table, "conntrack", l.conntrack);
        }
        if (!net)
                return json_pack("{s:b, s:s}", "ok", 0, "error", "not open");
        if (streq(op, "close")) {
                net_close(net);
                net = NULL;
                return json_pack("{s:b}", "ok", 1);
        }
        if (streq(op, "sweep")) {
                r = net_sweep_unadopted(net, &err);
                return r < 0 ? fail(err, r) : json_pack("{s:b, s:i}", "ok", 1, "swept", r);
        }
        if (streq(op, "text"))
                return ruleset_text(cmd);
        if (!id)
                return json_pack("{s:b, s:s}", "ok", 0, "error", "no id");
        if (streq(op, "detach")) {
                r = net_sandbox_detach(net, id, &err);
                return r < 0 ? fail(err, r) : json_pack("{s:b}", "ok", 1);
        }
        r = policy_of(cmd, &p, &err);
        if (r < 0)
                return fail(err, r);
        if (streq(op, "attach") || streq(op, "adopt")) {
                struct net_sandbox_info info;
                if (streq(op, "attach")) {
                        const char *path = json_string_value(json_object_get(cmd, "netns"));
                        int fd = path ? open(path, O_RDONLY | O_CLOEXEC) : -1;
                        if (fd < 0) {
                                net_policy_done(&p);
                                return json_pack("{s:b, s:s}", "ok", 0, "error",
                                                 "cannot open netns");
                        }
                        r = net_sandbox_attach(net, id, fd, &p, &info, &err);
                        (void)close(fd);
                } else
                        r = net_sandbox_adopt(net, id, &p, &info, &err);
                net_policy_done(&p);
                return r < 0 ? fail(err, r) : info_json(&info);
        }
        if (streq(op, "policy")) {
                r = net_sandbox_set_policy(net, id, &p, &err);
                net_policy_done(&p);
                return r < 0 ? fail(err, r) : json_pack("{s:b}", "ok", 1);
        }
        net_policy_done(&p);
        return json_pack("{s:b, s:s}", "ok", 0, "error", "unknown op");
}

int main(void)
{
        char *line = NULL;
        size_t cap = 0;
        ssize_t n;

        setvbuf(stdout, NULL, _IOLBF, 0);
        while ((n = getline(&line, &cap, stdin)) > 0) {
                json_error_t e;
                json_t *cmd = json_loadb(line, (size_t)n, 0, &e), *res;
                char *out;

                int64_t t0 = mono_us();
                res = cmd ? run(cmd) : json_pack("{s:b, s:s}", "ok", 0, "error", e.text);
                /* how long the library call took, for bench/network.py */
                json_object_set_new(res, "us", json_integer(mono_us() - t0));
                out = json_dumps(res, JSON_COMPACT);
                printf("%s\n", out);
                free(out);
                json_decref(res);
                json_decref(cmd);
        }
        free(line);
        net_close(net);
        return 0;
}
