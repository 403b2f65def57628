/* SPDX-License-Identifier: MIT */
/*
 * tenancy.c — the operator's routes for teams, API keys and limits (Cove decision, beside the
 * admin routes of control-plane.md §14; docs/decisions.md "Tenancy"). Admin keys only (403
 * otherwise, by the route flag); answers are wrapped (README §4.3).
 *
 *   GET    /admin/teams                     [Team]
 *   POST   /admin/teams {name}              201 Team
 *   GET    /admin/teams/{teamID}            Team + limits + usage
 *   GET    /admin/teams/{teamID}/limits     limits in force (scope project)
 *   PUT    /admin/teams/{teamID}/limits     {metric: integer | null, …} → limits
 *   GET    /admin/keys[?teamID=]            [Key] (masked)
 *   POST   /admin/keys {teamID?, role?, name?, teams?, format?}   (format: cove | e2b)
 *                                           201 Key + "key" (the only time it is shown)
 *   GET    /admin/keys/{keyID}              Key
 *   DELETE /admin/keys/{keyID}              Key, revoked (fails within the next request)
 *   POST   /admin/keys/{keyID}/teams {teamID}  Key (one more team for X-Project-ID)
 *   GET    /admin/keys/{keyID}/limits, PUT … (scope user)
 */
#include "coved/api/admin/tenancy.h"
#include "coved/manager/manager.h"
#include "coved/tenancy/tenancy.h"
#include "lib/json.h"
#include "lib/macro.h"
#include "lib/timeutil.h"

static json_t *team_json(const struct team_rec *t)
{
        json_t *o = json_pack("{s:s, s:s}", "teamID", t->id, "name", t->name);
        json_set_time(o, "createdAt", t->created_at);
        return o;
}

/* The limits of an owner: every metric, null where none is in force; `set` lists the metrics
 * the operator set for this owner (the others come from the config file's defaults). */
static int limits_json(struct http_req *r, bool user, const char *owner, json_t **ret,
                       struct cove_err **err)
{
        struct limits l;
        int rc = manager_limits(r->cd, user, owner, &l, err);
        if (rc < 0)
                return rc;
        json_t *o = json_object(), *set = json_array();
        for (int m = 0; m < _LIMIT_MAX; m++) {
                const char *name = limit_metric_to_string((enum limit_metric)m);
                json_object_set_new(o, name, l.v[m] > 0 ? json_integer(l.v[m]) : json_null());
                if (l.set[m])
                        json_array_append_new(set, json_string(name));
        }
        *ret = json_pack("{s:s, s:s, s:o, s:o}", "scope", user ? "user" : "project", "id", owner,
                         "limits", o, "set", set);
        return 0;
}

static json_t *key_json(struct http_req *r, const struct apikey_rec *k)
{
        cleanup_free char *masked = xasprintf("****%s", k->last4 ? k->last4 : "");
        json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:b}", "keyID", k->id, "teamID",
                              k->team_id, "role", k->role, "name", k->name ? k->name : "", "apiKey",
                              masked, "revoked", k->revoked_at > 0);
        cleanup_strv char **teams = NULL;
        json_t *a = json_array();
        if (tenancy_key_teams(r->cd, k->id, &teams, NULL) >= 0)
                for (char **t = teams; *t; t++)
                        json_array_append_new(a, json_string(*t));
        json_object_set_new(o, "teams", a);
        json_set_time(o, "createdAt", k->created_at);
        json_set_time(o, "revokedAt", k->revoked_at);
        return o;
}

/* ---- teams ---- */

static int h_teams(struct http_req *r)
{
        cleanup_err struct cove_err *err = NULL;
        struct team_rec **v = NULL;
        if (tenancy_team_list(r->cd, &v, &err) < 0)
                return http_reply_err(r, err);
        json_t *a = json_array();
        for (struct team_rec **t = v; *t; t++)
                json_array_append_new(a, team_json(*t));
        team_list_free(v);
        return http_reply_wrapped(r, 200, a);
}

struct team_req {
        char *name;
};

static const struct json_field team_fields[] = {
        { "name", json_take_str, offsetof(struct team_req, name), JSON_MANDATORY, 0, 1024 },
        {},
};

static int h_team_create(struct http_req *r)
{
        cleanup_err struct cove_err *err = NULL;
        json_auto_t *body = NULL;
        struct team_req q = { 0 };
        struct team_rec *t = NULL;
        if (http_body_json(r, false, &body) < 0)
                return 0;
        int rc = json_dispatch(body, team_fields, &q, &err);
        if (rc >= 0)
                rc = tenancy_team_create(r->cd, q.name, &t, &err);
        free(q.name);
        if (rc < 0)
                return http_reply_err(r, err);
        json_t *out = team_json(t);
        team_rec_free(t);
        return http_reply_wrapped(r, 201, out);
}

static int h_team_get(struct http_req *r)
{
        cleanup_err struct cove_err *err = NULL;
        struct team_rec *t = NULL;
        struct usage_now u;
        json_t *limits = NULL;
        if (tenancy_team_get(r->cd, r->params[0], &t, &err) < 0 ||
            manager_usage_now(r->cd, false, t->id, &u, &err) < 0 ||
            limits_json(r, false, t->id, &limits, &err) < 0) {
                team_rec_free(t);
                return http_reply_err(r, err);
        }
        json_t *out = team_json(t);
        json_t *usage = json_object();
        for (int m = 0; m < _LIMIT_MAX; m++)
                if (m != LIMIT_MAX_LIFETIME)
                        json_object_set_new(usage, limit_metric_to_string((enum limit_metric)m),
                                            json_integer(u.v[m]));
        json_object_set_new(usage, "pausedSandboxes", json_integer(u.paused));
        json_object_set_new(out, "usage", usage);
        json_object_set(out, "limits", json_object_get(limits, "limits"));
        json_decref(limits);
        team_rec_free(t);
        return http_reply_wrapped(r, 200, out);
}

/* GET and PUT of limits, for a team (user false) or a key (user true). */
static int limits_route(struct http_req *r, bool user, bool put)
{
        cleanup_err struct cove_err *err = NULL;
        const char *owner = r->params[0];
        int rc;
        if (user) {
                struct apikey_rec *k = NULL;
                rc = tenancy_key_get(r->cd, owner, &k, &err);
                apikey_rec_free(k);
        } else {
                struct team_rec *t = NULL;
                rc = tenancy_team_get(r->cd, owner, &t, &err);
                team_rec_free(t);
        }
        if (rc < 0)
                return http_reply_err(r, err);
        if (put) {
                json_auto_t *body = NULL;
                const char *k;
                json_t *v;
                int64_t n;
                if (http_body_json(r, false, &body) < 0)
                        return 0;
                if (!json_is_object(body))
                        return http_reply_error(r, 400, "request body must be a JSON object");
                /* Everything is checked before anything is written. */
                json_object_foreach (body, k, v) {
                        if (limit_metric_from_string(k) < 0)
                                return http_reply_error(r, 400,
                                                        "unknown limit '%s' (known: "
                                                        "concurrentSandboxes, cpuCount, memoryMB, "
                                                        "diskSizeMB, templates, concurrentBuilds, "
                                                        "maxLifetimeSeconds)",
                                                        k);
                        if (!json_is_null(v) &&
                            (!json_get_integer(v, &n) || n < 0 ||
                             (limit_metric_from_string(k) == LIMIT_MAX_LIFETIME && n > 86400)))
                                return http_reply_error(r, 400,
                                                        "field '%s' must be null or an integer "
                                                        ">= 0%s",
                                                        k,
                                                        limit_metric_from_string(k) ==
                                                                        LIMIT_MAX_LIFETIME
                                                                ? " and at most 86400"
                                                                : "");
                }
                json_object_foreach (body, k, v) {
                        n = -1;
                        if (!json_is_null(v))
                                (void)json_get_integer(v, &n);
                        rc = manager_limits_set(r->cd, user, owner, limit_metric_from_string(k), n,
                                                &err);
                        if (rc < 0)
                                return http_reply_err(r, err);
                }
        }
        json_t *out = NULL;
        if (limits_json(r, user, owner, &out, &err) < 0)
                return http_reply_err(r, err);
        return http_reply_wrapped(r, 200, out);
}

static int h_team_limits(struct http_req *r)
{
        return limits_route(r, false, false);
}

static int h_team_limits_put(struct http_req *r)
{
        return limits_route(r, false, true);
}

/* ---- keys ---- */

static int h_keys(struct http_req *r)
{
        cleanup_err struct cove_err *err = NULL;
        struct apikey_rec **v = NULL;
        const char *team = http_query(r, "teamID");
        if (tenancy_key_list(r->cd, team && *team ? team : NULL, &v, &err) < 0)
                return http_reply_err(r, err);
        json_t *a = json_array();
        for (struct apikey_rec **k = v; *k; k++)
                json_array_append_new(a, key_json(r, *k));
        apikey_list_free(v);
        return http_reply_wrapped(r, 200, a);
}

struct key_req {
        char *team_id, *role, *name, *format;
        char **teams;
};

static const struct json_field key_fields[] = {
        { "teamID", json_take_str, offsetof(struct key_req, team_id), 0, 0, 128 },
        { "role", json_take_str, offsetof(struct key_req, role), 0, 0, 16 },
        { "name", json_take_str, offsetof(struct key_req, name), 0, 0, 1024 },
        { "teams", json_take_strv, offsetof(struct key_req, teams), 0, 0, 0 },
        { "format", json_take_str, offsetof(struct key_req, format), 0, 0, 16 },
        {},
};

static int h_key_create(struct http_req *r)
{
        cleanup_err struct cove_err *err = NULL;
        json_auto_t *body = NULL;
        struct key_req q = { 0 };
        struct apikey_rec *k = NULL;
        cleanup_free char *key = NULL;
        if (http_body_json(r, true, &body) < 0)
                return 0;
        int rc = json_dispatch(body, key_fields, &q, &err);
        /* Every extra team must exist before the key does. */
        for (char **t = q.teams; rc >= 0 && t && *t; t++) {
                struct team_rec *tr = NULL;
                rc = tenancy_team_get(r->cd, *t, &tr, &err);
                team_rec_free(tr);
        }
        if (rc >= 0)
                rc = tenancy_key_create(r->cd, q.team_id ? q.team_id : "team_default", q.role,
                                        q.name, q.format, &key, &k, &err);
        for (char **t = q.teams; rc >= 0 && t && *t; t++)
                rc = tenancy_key_add_team(r->cd, k->id, *t, &err);
        free(q.team_id);
        free(q.role);
        free(q.name);
        free(q.format);
        strv_free(q.teams);
        if (rc < 0) {
                apikey_rec_free(k);
                return http_reply_err(r, err);
        }
        json_t *out = key_json(r, k);
        json_object_set_new(out, "key", json_string(key));
        apikey_rec_free(k);
        return http_reply_wrapped(r, 201, out);
}

static int h_key_get(struct http_req *r)
{
        cleanup_err struct cove_err *err = NULL;
        struct apikey_rec *k = NULL;
        if (tenancy_key_get(r->cd, r->params[0], &k, &err) < 0)
                return http_reply_err(r, err);
        json_t *out = key_json(r, k);
        apikey_rec_free(k);
        return http_reply_wrapped(r, 200, out);
}

static int h_key_revoke(struct http_req *r)
{
        cleanup_err struct cove_err *err = NULL;
        struct apikey_rec *k = NULL;
        if (tenancy_key_revoke(r->cd, r->params[0], &err) < 0 ||
            tenancy_key_get(r->cd, r->params[0], &k, &err) < 0)
                return http_reply_err(r, err);
        json_t *out = key_json(r, k);
        apikey_rec_free(k);
        return http_reply_wrapped(r, 200, out);
}

struct key_team_req {
        char *team_id;
};

static const struct json_field key_team_fields[] = {
        { "teamID", json_take_str, offsetof(struct key_team_req, team_id), JSON_MANDATORY, 0, 128 },
        {},
};

static int h_key_add_team(struct http_req *r)
{
        cleanup_err struct cove_err *err = NULL;
        json_auto_t *body = NULL;
        struct key_team_req q = { 0 };
        struct apikey_rec *k = NULL;
        if (http_body_json(r, false, &body) < 0)
                return 0;
        int rc = json_dispatch(body, key_team_fields, &q, &err);
        if (rc >= 0)
                rc = tenancy_key_add_team(r->cd, r->params[0], q.team_id, &err);
        if (rc >= 0)
                rc = tenancy_key_get(r->cd, r->params[0], &k, &err);
        free(q.team_id);
        if (rc < 0)
                return http_reply_err(r, err);
        json_t *out = key_json(r, k);
        apikey_rec_free(k);
        return http_reply_wrapped(r, 200, out);
}

static int h_key_limits(struct http_req *r)
{
        return limits_route(r, true, false);
}

static int h_key_limits_put(struct http_req *r)
{
        return limits_route(r, true, true);
}

const struct route admin_tenancy_routes[] = {
        { "GET", "admin/teams", h_teams, ROUTE_ADMIN, 0, NULL },
        { "POST", "admin/teams", h_team_create, ROUTE_ADMIN, 0, NULL },
        { "GET", "admin/teams/:team", h_team_get, ROUTE_ADMIN, 0, NULL },
        { "GET", "admin/teams/:team/limits", h_team_limits, ROUTE_ADMIN, 0, NULL },
        { "PUT", "admin/teams/:team/limits", h_team_limits_put, ROUTE_ADMIN, 0, NULL },
        { "GET", "admin/keys", h_keys, ROUTE_ADMIN, 0, NULL },
        { "POST", "admin/keys", h_key_create, ROUTE_ADMIN, 0, NULL },
        { "GET", "admin/keys/:key", h_key_get, ROUTE_ADMIN, 0, NULL },
        { "DELETE", "admin/keys/:key", h_key_revoke, ROUTE_ADMIN, 0, NULL },
        { "POST", "admin/keys/:key/teams", h_key_add_team, ROUTE_ADMIN, 0, NULL },
        { "GET", "admin/keys/:key/limits", h_key_limits, ROUTE_ADMIN, 0, NULL },
        { "PUT", "admin/keys/:key/limits", h_key_limits_put, ROUTE_ADMIN, 0, NULL },
        {},
};
