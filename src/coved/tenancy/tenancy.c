/* SPDX-License-Identifier: MIT */
/* tenancy.c — teams and API keys (tenancy.h). */
#include "coved/tenancy/tenancy.h"
#include "lib/macro.h"

#include <ctype.h>

/* The store's "not found" / "already exists" become the spec's 404 / 409. */
static int with_status(int r, struct cove_err **err)
{
        if (r == -ENOENT && err && *err)
                (*err)->status = 404;
        if (r == -EEXIST && err && *err)
                (*err)->status = 409;
        return r;
}

int tenancy_key_teams(struct coved *cd, const char *key_id, char ***ret, struct cove_err **err)
{
        if (streq(cd->cfg.auth, "none")) {
                char **v = xzalloc(2 * sizeof(char *));
                v[0] = xstrdup("team_default");
                *ret = v;
                return 0;
        }
        return store_apikey_teams(cd->store, key_id, ret, err);
}

int tenancy_team_visible(struct coved *cd, const char *key_id, const char *team_id,
                         struct cove_err **err)
{
        cleanup_strv char **teams = NULL;
        int r = tenancy_key_teams(cd, key_id, &teams, err);
        if (r < 0)
                return r;
        for (char **t = teams; *t; t++)
                if (streq(*t, team_id))
                        return 0;
        return cove_err_set_status(err, 404, ENOENT, "team '%s' not found", team_id);
}

static bool name_ok(const char *s, size_t max)
{
        size_t n = strlen(s);
        if (n == 0 || n > max)
                return false;
        for (const char *p = s; *p; p++)
                if (!isalnum((unsigned char)*p) && !strchr(" ._-", *p))
                        return false;
        return true;
}

int tenancy_team_create(struct coved *cd, const char *name, struct team_rec **ret,
                        struct cove_err **err)
{
        if (!name || !name_ok(name, TEAM_NAME_MAX))
                return cove_err_set_status(err, 400, EINVAL,
                                           "field 'name' must be 1-%d characters of letters, "
                                           "digits, space, '.', '_' or '-'",
                                           TEAM_NAME_MAX);
        return with_status(store_team_create(cd->store, name, ret, err), err);
}

int tenancy_team_get(struct coved *cd, const char *id, struct team_rec **ret, struct cove_err **err)
{
        return with_status(store_team_get(cd->store, id, ret, err), err);
}

int tenancy_team_list(struct coved *cd, struct team_rec ***ret, struct cove_err **err)
{
        return store_team_list(cd->store, ret, err);
}

int tenancy_key_create(struct coved *cd, const char *team_id, const char *role, const char *name,
                       const char *format, char **ret_key, struct apikey_rec **ret,
                       struct cove_err **err)
{
        struct team_rec *t = NULL;
        if (format && !streq(format, "cove") && !streq(format, "e2b"))
                return cove_err_set_status(err, 400, EINVAL,
                                           "field 'format' must be 'cove' or 'e2b'");
        if (!role)
                role = "user";
        if (streq(role, "member"))
                role = "user";
        if (!streq(role, "admin") && !streq(role, "user"))
                return cove_err_set_status(err, 400, EINVAL,
                                           "field 'role' must be 'admin' or 'user'");
        if (name && *name && !name_ok(name, KEY_NAME_MAX))
                return cove_err_set_status(err, 400, EINVAL,
                                           "field 'name' must be 1-%d characters of letters, "
                                           "digits, space, '.', '_' or '-'",
                                           KEY_NAME_MAX);
        int r = tenancy_team_get(cd, team_id, &t, err);
        team_rec_free(t);
        if (r < 0)
                return r;
        return with_status(store_apikey_create(cd->store, team_id, role, name,
                                               format && streq(format, "e2b"), ret_key, ret, err),
                           err);
}

int tenancy_key_list(struct coved *cd, const char *team_id, struct apikey_rec ***ret,
                     struct cove_err **err)
{
        if (team_id) {
                struct team_rec *t = NULL;
                int r = tenancy_team_get(cd, team_id, &t, err);
                team_rec_free(t);
                if (r < 0)
                        return r;
        }
        return store_apikey_list(cd->store, team_id, ret, err);
}

int tenancy_key_get(struct coved *cd, const char *id, struct apikey_rec **ret,
                    struct cove_err **err)
{
        return with_status(store_apikey_get(cd->store, id, ret, err), err);
}

int tenancy_key_revoke(struct coved *cd, const char *id, struct cove_err **err)
{
        return with_status(store_apikey_revoke(cd->store, id, err), err);
}

int tenancy_key_add_team(struct coved *cd, const char *key_id, const char *team_id,
                         struct cove_err **err)
{
        struct apikey_rec *k = NULL;
        struct team_rec *t = NULL;
        int r = tenancy_key_get(cd, key_id, &k, err);
        if (r >= 0)
                r = tenancy_team_get(cd, team_id, &t, err);
        apikey_rec_free(k);
        team_rec_free(t);
        if (r < 0)
                return r;
        return with_status(store_apikey_add_team(cd->store, key_id, team_id, err), err);
}
