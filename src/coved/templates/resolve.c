/* SPDX-License-Identifier: MIT */
/*
 * resolve.c — who sees and who may change a template (build-plane.md §2), and what a
 * reference names (§3): an ID, an official name, an alias, a name of the caller's team, each
 * with an optional ":tag". Below service.c (the routes' work) and builds.c (a build FROM a
 * template), which both resolve through here; it calls only the store.
 */
#include "coved/templates/internal.h"

#include "lib/macro.h"

#include "lib/banned.h"

int tpl_not_found(const char *ref, struct cove_err **err)
{
        return cove_err_set_status(err, 404, ENOENT, "template '%s' not found", ref);
}

bool tpl_is_official(const struct template_rec *t)
{
        return t->official || (t->visibility && streq(t->visibility, "official"));
}

bool tpl_is_public(const struct template_rec *t)
{
        return t->public_ || tpl_is_official(t);
}

/* The caller sees it in its own right (team, or personal of its key). */
static bool owned_view(const struct template_rec *t, const struct tpl_caller *c)
{
        if (!t->team_id || !c->team_id || !streq(t->team_id, c->team_id))
                return false;
        if (t->visibility && streq(t->visibility, "personal"))
                return t->created_by && c->key_id && streq(t->created_by, c->key_id);
        return true;
}

bool tpl_visible(const struct template_rec *t, const struct tpl_caller *c)
{
        return tpl_is_public(t) || owned_view(t, c);
}

bool tpl_may_change(const struct template_rec *t, const struct tpl_caller *c)
{
        if (tpl_is_official(t))
                return c->admin;
        return owned_view(t, c);
}

/* §3 steps 2–5 (no tag). */
int tpl_resolve(struct coved *cd, const struct tpl_caller *c, const char *ref,
                struct template_rec **ret, struct cove_err **err)
{
        struct template_rec *t = NULL;
        cleanup_free char *tid = NULL;

        if (!*ref || strchr(ref, '/'))
                return tpl_not_found(ref, err);
        if (store_template_get(cd->store, ref, &t, NULL) == 0) {
                if (tpl_visible(t, c)) {
                        *ret = t;
                        return 0;
                }
                template_rec_free(t);
                t = NULL;
        }
        if (store_template_get_by_name(cd->store, NULL, ref, &t, NULL) == 0) {
                *ret = t; /* an official type */
                return 0;
        }
        if (store_alias_get(cd->store, ref, &tid, NULL) == 0 &&
            store_template_get(cd->store, tid, &t, NULL) == 0) {
                if (tpl_visible(t, c)) {
                        *ret = t;
                        return 0;
                }
                template_rec_free(t);
                t = NULL;
        }
        if (c->team_id && store_template_get_by_name(cd->store, c->team_id, ref, &t, NULL) == 0) {
                if (tpl_visible(t, c)) {
                        *ret = t;
                        return 0;
                }
                template_rec_free(t);
        }
        return tpl_not_found(ref, err);
}

/* A reference for a mutating route: resolved, then owned (403 otherwise). */
int tpl_resolve_owned(struct coved *cd, const struct tpl_caller *c, const char *ref,
                      struct template_rec **ret, struct cove_err **err)
{
        int r = tpl_resolve(cd, c, ref, ret, err);
        if (r < 0)
                return r;
        if (!tpl_may_change(*ret, c)) {
                template_rec_free(*ret);
                *ret = NULL;
                return cove_err_set_status(err, 403, EPERM,
                                           "template '%s' belongs to another team or is official",
                                           ref);
        }
        return 0;
}

/* §3 with a ":tag" (at the last ':'): the template and the tagged build. */
int tpl_resolve_tagged(struct coved *cd, const struct tpl_caller *c, const char *ref,
                       struct template_rec **ret, char **ret_build, struct cove_err **err)
{
        const char *colon = strrchr(ref, ':');
        if (!colon)
                return tpl_resolve(cd, c, ref, ret, err);
        cleanup_free char *base = xstrndup(ref, (size_t)(colon - ref));
        int r = tpl_resolve(cd, c, base, ret, err);
        if (r < 0)
                return r;
        if (store_tag_get(cd->store, (*ret)->id, colon + 1, ret_build, NULL) < 0) {
                template_rec_free(*ret);
                *ret = NULL;
                return cove_err_set_status(err, 404, ENOENT, "tag '%s' not found on template '%s'",
                                           colon + 1, base);
        }
        return 0;
}

int templates_resolve_id(struct coved *cd, const struct tpl_caller *c, const char *ref,
                         char **ret_id, struct cove_err **err)
{
        struct template_rec *t = NULL;
        int r = tpl_resolve(cd, c, ref, &t, err);
        if (r < 0)
                return r;
        *ret_id = xstrdup(t->id);
        template_rec_free(t);
        return 0;
}
