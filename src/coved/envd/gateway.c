/* SPDX-License-Identifier: MIT */
/*
 * gateway.c — the runtime API gateway: every /envd/{id}/… request (runtime.md). begin()
 * finds the sandbox, classifies the path with the route table below, checks the credential
 * (access.c), the method and the acting user, asks the manager for a sandbox that serves
 * runtime traffic (waiting for a starting one, resuming a paused one with autoResume), sets
 * the body limit and hands over to the route; handler() answers deferred errors and calls it.
 */
#include "coved/envd/gateway.h"
#include "coved/envd/envd.h"
#include "lib/log.h"
#include "lib/macro.h"

struct envd_route {
        const char *pattern; /* segments after /envd/{id} (lib/urlpath.h) */
        enum envd_kind kind;
        const char *methods; /* the Allow list */
        envd_fn begin;       /* optional: body set-up once the checks passed */
        envd_fn handler;
};

/* The most literal pattern wins, so "files/content" is never taken for "files". */
static const struct envd_route routes[] = {
        { "health", ENVD_HEALTH, "GET", NULL, NULL },
        { "files", ENVD_FILES, "GET, POST", envd_files_begin, envd_files_handler },
        { "file", ENVD_FILE, "GET, POST", envd_files_begin, envd_files_handler },
        { "files/content", ENVD_FILES_CONTENT, "GET", NULL, envd_files_content },
        { "files/batch", ENVD_FILES_BATCH, "POST", envd_json_upload_begin, envd_files_batch },
        { "files/compose", ENVD_FILES_COMPOSE, "POST", envd_json_upload_begin, envd_files_compose },
        { "run", ENVD_RUN, "POST", NULL, envd_run },
        { "envs", ENVD_ENVS, "GET", NULL, envd_envs },
        { "configure", ENVD_CONFIGURE, "POST", NULL, envd_configure },
        { "metrics", ENVD_METRICS, "GET", NULL, envd_metrics },
        { "ports", ENVD_PORTS, "GET", NULL, envd_ports },
        { ":service/:method", ENVD_RPC, "POST", envd_rpc_begin, envd_rpc_handler },
};

/* The E2B dialect's routes (e2b.md §4.1); the handlers are the same, their dialect is t->e2b.
 * Everything else of runtime.md (/run, /file, /files/content, …) is not part of that face. */
static const struct envd_route e2b_routes[] = {
        { "health", ENVD_HEALTH, "GET", NULL, NULL },
        { "files", ENVD_FILES, "GET, POST", envd_files_begin, envd_files_handler },
        { "files/compose", ENVD_FILES_COMPOSE, "POST", envd_json_upload_begin, envd_files_compose },
        { "envs", ENVD_ENVS, "GET", NULL, envd_envs },
        { "metrics", ENVD_METRICS, "GET", NULL, envd_metrics },
        { ":service/:method", ENVD_RPC, "POST", envd_rpc_begin, envd_rpc_handler },
        { "init", ENVD_RESERVED, "", NULL, NULL },
        { "upgrade", ENVD_RESERVED, "", NULL, NULL },
        { "freeze", ENVD_RESERVED, "", NULL, NULL },
        { "unfreeze", ENVD_RESERVED, "", NULL, NULL },
        { "fsfreeze", ENVD_RESERVED, "", NULL, NULL },
        { "fsthaw", ENVD_RESERVED, "", NULL, NULL },
        { "collapse", ENVD_RESERVED, "", NULL, NULL },
};

static void envd_req_free(void *p)
{
        struct envd_req *t = p;

        if (!t)
                return;
        if (t->activity && t->rec)
                manager_activity_end(t->cd, t->rec->id);
        sandbox_rec_free(t->rec);
        free(t->user);
        free(t->op);
        free(t->err_msg);
        if (t->agent_fd >= 0)
                (void)close(t->agent_fd);
        if (t->dec_ready)
                connect_decoder_release(&t->dec);
        json_decref(t->si_process);
        json_decref(t->e2b_metadata);
        envd_multipart_free(t);
        envd_proxy_free(t->proxy);
        free(t);
}

static int reply_405(struct http_req *r, const char *allow)
{
        struct MHD_Response *resp = http_error_response(r, 405, "method not allowed");
        if (!resp)
                return -ENOMEM;
        (void)MHD_add_response_header(resp, "Allow", allow);
        return http_reply_response(r, 405, resp);
}

static bool method_in(const char *method, const char *allow)
{
        size_t l = strlen(method);
        for (const char *p = allow; (p = strstr(p, method)); p += l)
                if ((p == allow || p[-1] == ' ') && (p[l] == '\0' || p[l] == ','))
                        return true;
        return false;
}

/* Sets t->kind (and t->op for RPC); the route, or NULL for the root, the proxy and unknown
 * paths. */
static const struct envd_route *classify(struct envd_req *t, const struct envd_route *table,
                                         size_t n)
{
        const struct envd_route *best = NULL;
        uint64_t best_mask = 0;

        t->kind = ENVD_UNKNOWN;
        if (t->nsub == 0) {
                t->kind = ENVD_ROOT;
                return NULL;
        }
        if (!t->e2b && t->nsub >= 2 && streq(t->sub[0], "proxy")) { /* proxy.c, any method */
                t->kind = ENVD_PROXY;
                return NULL;
        }
        for (size_t i = 0; i < n; i++) {
                const char *params[ROUTE_MAX_PARAMS];
                if (!route_match(table[i].pattern, t->sub, t->nsub, params))
                        continue;
                if (table[i].kind == ENVD_RPC &&
                    envd_rpc_lookup(params[0], params[1], &t->rpc_kind) < 0)
                        continue;
                uint64_t mask = route_literal_mask(table[i].pattern);
                if (!best || mask > best_mask) {
                        best = &table[i];
                        best_mask = mask;
                }
        }
        if (!best)
                return NULL;
        t->kind = best->kind;
        if (best->kind == ENVD_RPC)
                t->op = xasprintf("%s.%s",
                                  streq(t->sub[0], "process.Process") ? "process" : "filesystem",
                                  t->sub[1]);
        return best;
}

static const struct envd_route *route_of(enum envd_kind kind)
{
        /* Both tables share their handlers: the SeaCloud one has every kind. */
        for (size_t i = 0; i < ARRAY_SIZE(routes); i++)
                if (routes[i].kind == kind)
                        return &routes[i];
        return NULL;
}

struct envd_req *envd_req_new(struct http_req *r, char **sub, size_t nsub)
{
        struct envd_req *t = xzalloc(sizeof(*t));

        t->agent_fd = -1;
        t->cd = r->cd;
        r->ctx = t;
        r->ctx_free = envd_req_free;
        t->sub = sub;
        t->nsub = nsub;
        if (t->nsub > 0 && t->sub[t->nsub - 1][0] == '\0') /* one trailing slash */
                t->nsub--;

        /* The server buffers (and the route ignores) any body until a route says otherwise. */
        t->body_limit = ENVD_JSON_BODY_MAX;
        r->body.max = ENVD_JSON_BODY_MAX;
        http_body_set_limit(r, ENVD_JSON_BODY_MAX);
        return t;
}

/* After the checks: the route's body set-up. */
static int route_begin(struct http_req *r, struct envd_req *t, const struct envd_route *route)
{
        if (route->begin)
                return route->begin(r, t);
        /* Content-Length known up front: refuse oversize JSON bodies before reading them. */
        uint64_t len;
        if (http_body_length(r, &len) && len > t->body_limit)
                return http_reply_error(r, 413, "request body too large (limit %zu bytes)",
                                        t->body_limit);
        return 0;
}

int envd_e2b_begin(struct http_req *r, struct envd_req *t)
{
        t->e2b = true;
        if (streq(r->method, "OPTIONS"))
                return http_reply_e2b_preflight(r);
        const struct envd_route *route = classify(t, e2b_routes, ARRAY_SIZE(e2b_routes));
        if (t->kind == ENVD_HEALTH && streq(r->method, "GET"))
                return http_reply_empty(r, 204);
        if (t->kind == ENVD_RESERVED) {
                json_t *j = json_pack("{s:s, s:s, s:i}", "message",
                                      "This endpoint is reserved for the control plane and is not "
                                      "reachable through the sandbox URL",
                                      "path", r->raw_path, "code", 404);
                return http_reply_json(r, 404, j);
        }
        if (!route || t->kind == ENVD_HEALTH)
                return http_reply_error(r, 404, "no route for %s '%s'", r->method, r->raw_path);
        if (envd_e2b_check_access(r, t) < 0)
                return 0;
        if (!method_in(r->method, route->methods))
                return reply_405(r, route->methods) < 0 ? -EIO : 0;
        if (t->kind == ENVD_RPC)
                r->dialect = HTTP_DIALECT_E2B_CONNECT;
        if (envd_resolve_user(r, t) < 0)
                return 0;
        return route_begin(r, t, route);
}

static int runtime_begin(struct http_req *r)
{
        cleanup_err struct cove_err *err = NULL;
        const char *id = r->params[0];
        struct envd_req *t = envd_req_new(r, r->segs + 2, r->nsegs >= 2 ? r->nsegs - 2 : 0);
        int q;

        if (streq(r->method, "OPTIONS") && !(t->nsub >= 2 && streq(t->sub[0], "proxy")))
                return http_reply_empty(r, 204);

        /* Any team: the access token, not an API key, authorises runtime requests. */
        if (!id || !*id || strchr(id, '/') ||
            manager_get(r->cd, /* team_id= */ NULL, id, &t->rec, &err) < 0)
                return http_reply_error(r, 404, "sandbox '%s' not found", id ? id : "");
        log_set_context(r->request_id, r->params[0]); /* borrowed: lives as long as r */

        const struct envd_route *route = classify(t, routes, ARRAY_SIZE(routes));
        if ((t->kind == ENVD_ROOT || t->kind == ENVD_HEALTH) && streq(r->method, "GET"))
                return http_reply_empty(r, 204);

        if (t->kind == ENVD_PROXY) {
                if (r->begin_nowait) /* connects upstream */
                        return HTTP_WOULD_BLOCK;
                q = envd_check_proxy_access(r, t);
                return q < 0 ? 0 : envd_proxy_begin(r, t);
        }
        if (envd_check_access(r, t) < 0)
                return 0;
        if (!route)
                return http_reply_error(r, 404, "no route for %s '%s'", r->method, r->raw_path);
        if (!method_in(r->method, route->methods))
                return reply_405(r, route->methods) < 0 ? -EIO : 0;
        if (envd_resolve_user(r, t) < 0)
                return 0;

        /* State: 404/409/503, waits for starting sandboxes, auto-resumes paused ones. On the
         * server thread (ROUTE_BEGIN_TRY) only the running sandbox that needs none of that, and
         * only for routes without a begin of their own (those open agent connections). */
        struct sandbox_rec *fresh = NULL;
        if (r->begin_nowait) {
                if (route->begin)
                        return HTTP_WOULD_BLOCK;
                q = manager_runtime_target_nowait(r->cd, t->rec->id, &fresh, &err);
                if (q == -EWOULDBLOCK)
                        return HTTP_WOULD_BLOCK;
        } else {
                q = manager_runtime_target(r->cd, t->rec->id, &fresh, &err);
        }
        if (q < 0)
                return http_reply_err(r, err);
        sandbox_rec_free(t->rec);
        t->rec = fresh;
        t->activity = true;
        return route_begin(r, t, route);
}

static int runtime_handler(struct http_req *r)
{
        struct envd_req *t = r->ctx;

        if (!t || !t->rec)
                return http_reply_error(r, 500, "runtime request without context");
        return envd_handler(r, t);
}

int envd_handler(struct http_req *r, struct envd_req *t)
{
        if (t->err_status)
                return envd_reply_deferred(r, t);
        if (t->body_over)
                return http_reply_error(r, 413, "request body too large (limit %zu bytes)",
                                        t->body_limit);
        if (t->kind == ENVD_PROXY)
                return envd_proxy_handler(r, t);
        const struct envd_route *route = route_of(t->kind);
        if (t->kind == ENVD_ROOT || (route && !route->handler))
                return http_reply_empty(r, 204);
        if (!route)
                return http_reply_error(r, 404, "no route for %s '%s'", r->method, r->raw_path);
        return route->handler(r, t);
}

const struct route runtime_route = {
        .method = "*",
        .pattern = "envd/:id",
        .handler = runtime_handler,
        .flags = ROUTE_NO_AUTH | ROUTE_BEGIN_TRY,
        .body_max = ENVD_JSON_UPLOAD_MAX,
        .begin = runtime_begin,
};
