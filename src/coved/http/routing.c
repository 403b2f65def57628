/* SPDX-License-Identifier: MIT */
/* routing.c — API roots and the route table lookup. */
#include "coved/http/routing.h"
#include "lib/macro.h"

size_t http_route_strip_root(struct http_req *r)
{
        static const struct {
                const char *segs[3];
                size_t n;
                const char *root;
        } roots[] = {
                { { "api", "v1", "sandbox" }, 3, "/api/v1/sandbox" },
                { { "api", "sandbox", "v1" }, 3, "/api/sandbox/v1" },
                { { "api", "v1" }, 2, "/api/v1" },
        };
        for (size_t i = 0; i < ARRAY_SIZE(roots); i++) {
                bool ok = r->nsegs >= roots[i].n;
                for (size_t k = 0; ok && k < roots[i].n; k++)
                        ok = streq(r->segs[k], roots[i].segs[k]);
                if (ok) {
                        r->root = xstrdup(roots[i].root);
                        return roots[i].n;
                }
        }
        r->root = xstrdup("");
        return 0;
}

static bool method_listed(const struct buf *allow, const char *method)
{
        size_t l = strlen(method);
        for (const char *p = buf_str(allow); (p = strstr(p, method)); p += l)
                if ((p == buf_str(allow) || p[-1] == ' ') && (p[l] == '\0' || p[l] == ','))
                        return true;
        return false;
}

const struct route *http_route_find(const struct route *table, struct http_req *r, size_t skip,
                                    unsigned *ret_status, struct buf *allow)
{
        const struct route *best = NULL;
        const char *best_params[ROUTE_MAX_PARAMS] = { 0 };
        uint64_t best_mask = 0, path_mask = 0;
        bool path_known = false;

        /* The most literal pattern that matches the path decides; among its entries, the
         * method picks one. */
        for (const struct route *rt = table; rt->method; rt++) {
                const char *params[ROUTE_MAX_PARAMS];
                if (!route_match(rt->pattern, r->segs + skip, r->nsegs - skip, params))
                        continue;
                uint64_t mask = route_literal_mask(rt->pattern);
                if (!path_known || mask > path_mask) {
                        path_known = true;
                        path_mask = mask;
                        buf_reset(allow);
                }
                if (mask < path_mask)
                        continue;
                if (!method_listed(allow, rt->method))
                        (void)buf_addf(allow, "%s%s", allow->len ? ", " : "", rt->method);
                if (streq(rt->method, r->method) && (!best || mask > best_mask)) {
                        best = rt;
                        best_mask = mask;
                        memcpy(best_params, params, sizeof(params));
                }
        }
        if (best && best_mask == path_mask) {
                for (size_t k = 0; k < ROUTE_MAX_PARAMS; k++)
                        r->params[k] = best_params[k] ? xstrdup(best_params[k]) : NULL;
                return best;
        }
        *ret_status = path_known ? 405 : 404;
        return NULL;
}

/* ---- the E2B face ---- */

static const char *nonempty_header(struct http_req *r, const char *name)
{
        const char *v = http_header(r, name);
        return v && *v ? v : NULL;
}

enum e2b_class http_e2b_classify(struct http_req *r, const char *domain, char **ret_id,
                                 char **ret_port, char *msg, size_t msglen)
{
        struct e2b_request_view v = {
                .method = r->method,
                .segs = (const char *const *)r->segs,
                .nsegs = r->nsegs,
                .sandbox_id = nonempty_header(r, "E2b-Sandbox-Id"),
                .sandbox_port = nonempty_header(r, "E2b-Sandbox-Port"),
                .host = http_header(r, "Host"),
                .acr_headers = http_header(r, "Access-Control-Request-Headers"),
                .has_signature = http_query(r, "signature") != NULL,
        };
        return e2b_classify(&v, domain, ret_id, ret_port, msg, msglen);
}

bool http_e2b_control_path(const struct http_req *r)
{
        static const char *const prefixes[] = {
                "sandboxes",
                "v2",
                "v3",
                "templates",
                "volumes",
                "teams",
                "secrets",
                "volumecontent",
                "snapshots",
                "api-keys",
                "access-tokens",
                "nodes",
        };
        if (!r->root || *r->root || r->nsegs == 0)
                return false;
        for (size_t i = 0; i < ARRAY_SIZE(prefixes); i++)
                if (streq(r->segs[0], prefixes[i]))
                        return true;
        return false;
}
