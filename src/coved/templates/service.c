/* SPDX-License-Identifier: MIT */
/*
 * service.c — the work behind the build plane's routes (build-plane.md §1–§13): resolution and
 * visibility, templates, builds (records and triggers; running them is builds.c), tags,
 * aliases, rollback, uploads, the direct build, and the JSON shapes of §13.
 */
#include "coved/templates/internal.h"
#include "coved/manager/manager.h"

#include "build/digest.h"
#include "build/dockerfile.h"
#include "build/extract.h"
#include "build/upload.h"
#include "lib/log.h"
#include "lib/macro.h"
#include "lib/rand.h"
#include "lib/timeutil.h"

#include <fcntl.h>
#include <sys/stat.h>

#include "lib/banned.h"

#define LIST_LIMIT_MAX 100

static struct builder *B(struct coved *cd)
{
        return cd->builder;
}

static json_t *ts_json(int64_t ms)
{
        char out[TIME_RFC3339_MAX];
        if (ms <= 0)
                return json_null();
        time_format_rfc3339(ms, out);
        return json_string(out);
}

int templates_for_spawn(struct coved *cd, const struct tpl_caller *c, const char *ref,
                        struct template_rec **ret, struct cove_err **err)
{
        struct template_rec *t = NULL;
        cleanup_free char *tagged = NULL;
        int r = tpl_resolve_tagged(cd, c, ref, &t, &tagged, err);
        if (r == -ENOENT && streq(ref, "code-interpreter-v1")) {
                /* the E2B code-interpreter SDK's default: the official code-interpreter on
                 * every face (e2b.md §6) */
                cove_err_free(err);
                r = tpl_resolve_tagged(cd, c, "code-interpreter", &t, &tagged, err);
        }
        if (r < 0)
                return r;
        if (!tagged || (t->build_id && streq(t->build_id, tagged))) {
                *ret = t;
                return 0;
        }
        /* ":tag" names a build other than the current one: its layers and config */
        struct build_rec *b = NULL;
        r = store_build_get(cd->store, t->id, tagged, &b, NULL);
        if (r < 0 || !streq(b->status, "ready")) {
                build_rec_free(b);
                template_rec_free(t);
                return cove_err_set_status(err, 409, EBUSY, "template '%s' has no ready build",
                                           ref);
        }
        if (template_take_build_layers(cd, t, b, err) < 0) {
                build_rec_free(b);
                template_rec_free(t);
                return -EIO;
        }
        free(t->build_id);
        t->build_id = xstrdup(b->id);
        build_rec_free(b);
        *ret = t;
        return 0;
}

static char **official_types(struct coved *cd)
{
        struct template_rec **all = NULL;
        char **v = xzalloc(sizeof(char *));
        size_t n = 0;
        if (store_template_list(cd->store, NULL, &all, NULL) < 0)
                return v;
        for (struct template_rec **t = all; *t; t++) {
                if (!tpl_is_official(*t) || !(*t)->name)
                        continue;
                v = xrealloc(v, (n + 2) * sizeof(char *));
                v[n++] = xstrdup((*t)->name);
                v[n] = NULL;
        }
        template_list_free(all);
        return v;
}

/* ---- JSON shapes (§13) ---- */

static json_t *strv_to_json(char **v)
{
        json_t *a = json_array();
        for (; v && *v; v++)
                json_array_append_new(a, json_string(*v));
        return a;
}

static const char *build_status_of(struct coved *cd, const struct template_rec *t,
                                   struct build_rec **ret_shown)
{
        struct build_rec *b = NULL, **v = NULL;
        *ret_shown = NULL;
        if (t->build_id && store_build_get(cd->store, t->id, t->build_id, &b, NULL) == 0) {
                *ret_shown = b;
                return b->status;
        }
        if (store_build_list(cd->store, t->id, NULL, 0, 1, &v, NULL, NULL) == 0 && v[0]) {
                *ret_shown = v[0];
                v[0] = NULL;
        }
        build_list_free(v);
        return *ret_shown ? (*ret_shown)->status : "waiting";
}

static json_t *extensions_json(const struct template_rec *t, const char *image_source)
{
        json_t *e = json_object();
        if (t->base_template_id)
                json_object_set_new(e, "baseTemplateID", json_string(t->base_template_id));
        json_object_set_new(e, "visibility", json_string(t->visibility ? t->visibility : "team"));
        json_object_set_new(e, "envs", t->envs ? json_deep_copy(t->envs) : json_object());
        json_object_set_new(e, "storageType", json_string("ephemeral"));
        if (t->storage_size_gb > 0)
                json_object_set_new(e, "storageSizeGB", json_integer(t->storage_size_gb));
        json_t *vm = json_array();
        size_t i;
        json_t *m;
        json_array_foreach (t->volume_mounts, i, m) {
                json_array_append_new(vm,
                                      json_pack("{s:O?,s:O?}", "name", json_object_get(m, "name"),
                                                "path", json_object_get(m, "path")));
        }
        json_object_set_new(e, "volumeMounts", vm);
        if (t->workdir)
                json_object_set_new(e, "workdir", json_string(t->workdir));
        if (t->image)
                json_object_set_new(e, "image", json_string(t->image));
        json_object_set_new(e, "imageSource", json_string(image_source));
        json_object_set_new(e, "projectID", json_string(t->team_id ? t->team_id : ""));
        json_object_set_new(e, "ttlSeconds", json_integer(t->ttl_seconds));
        json_object_set_new(e, "port", json_integer(t->port));
        json_object_set_new(e, "startCmd", json_string(t->start_cmd ? t->start_cmd : ""));
        json_object_set_new(e, "readyCmd", json_string(t->ready_cmd ? t->ready_cmd : ""));
        return e;
}

static json_t *listed_json(struct coved *cd, const struct template_rec *t, const char **ret_source)
{
        struct build_rec *shown = NULL;
        const char *status = build_status_of(cd, t, &shown);
        char **aliases = NULL;
        int64_t total = 0;
        struct build_rec **none = NULL;

        (void)store_alias_list(cd->store, t->id, &aliases, NULL);
        if (store_build_list(cd->store, t->id, NULL, 0, 0, &none, &total, NULL) == 0)
                build_list_free(none);
        const char *source = shown && shown->source_kind ? shown->source_kind : "template";
        json_t *o = json_object();
        json_object_set_new(o, "templateID", json_string(t->id));
        json_object_set_new(o, "buildID", json_string(shown ? shown->id : ""));
        json_object_set_new(o, "cpuCount", json_integer(t->cpu_count));
        json_object_set_new(o, "memoryMB", json_integer(t->memory_mb));
        json_object_set_new(o, "diskSizeMB", json_integer(t->disk_size_mb));
        json_object_set_new(o, "buildStatus", json_string(status));
        json_object_set_new(o, "public", json_boolean(tpl_is_public(t)));
        json_object_set_new(o, "names", json_pack("[s]", t->name ? t->name : ""));
        json_object_set_new(o, "aliases", strv_to_json(aliases));
        json_object_set_new(o, "createdAt", ts_json(t->created_at));
        json_object_set_new(o, "updatedAt", ts_json(t->updated_at));
        json_object_set_new(o, "createdBy",
                            tpl_is_official(t) || !t->created_by
                                    ? json_null()
                                    : json_pack("{s:s}", "id", t->created_by));
        json_object_set_new(o, "lastSpawnedAt", ts_json(t->last_spawned_at));
        json_object_set_new(o, "spawnCount", json_integer(t->spawn_count));
        json_object_set_new(o, "buildCount", json_integer(total));
        json_object_set_new(o, "envdVersion", json_string(COVE_VERSION));
        json_object_set_new(o, "extensions", extensions_json(t, source));
        if (ret_source)
                *ret_source = shown && shown->source_kind ? "" : "template";
        strv_free(aliases);
        build_rec_free(shown);
        (void)source;
        return o;
}

static json_t *template_build_json(const struct build_rec *b)
{
        return json_pack("{s:s,s:s,s:o,s:o,s:o,s:I,s:I,s:I,s:s}", "buildID", b->id, "status",
                         b->status, "createdAt", ts_json(b->created_at), "updatedAt",
                         ts_json(b->updated_at), "finishedAt", ts_json(b->finished_at), "cpuCount",
                         (json_int_t)b->cpu_count, "memoryMB", (json_int_t)b->memory_mb,
                         "diskSizeMB", (json_int_t)b->disk_size_mb, "envdVersion", COVE_VERSION);
}

static json_t *template_response(struct coved *cd, const struct template_rec *t, int64_t limit,
                                 const char *next_token, struct cove_err **err)
{
        json_t *o = listed_json(cd, t, NULL);
        struct build_rec **v = NULL;
        struct tag_rec **tags = NULL;
        int64_t total = 0;

        if (limit <= 0)
                limit = 10;
        limit = MIN(limit, (int64_t)LIST_LIMIT_MAX);
        if (store_build_list(cd->store, t->id, next_token, 0, limit + 1, &v, &total, err) < 0) {
                json_decref(o);
                if (next_token) {
                        cove_err_free(err);
                        cove_err_set_status(err, 400, EINVAL,
                                            "nextToken '%s' is not a build of template '%s'",
                                            next_token, t->id);
                }
                return NULL;
        }
        json_t *builds = json_array();
        size_t n = 0;
        for (; v[n] && (int64_t)n < limit; n++)
                json_array_append_new(builds, template_build_json(v[n]));
        const char *image_source = "template";
        json_t *ext = json_object_get(o, "extensions");
        if (json_is_string(json_object_get(ext, "imageSource")))
                image_source = json_string_value(json_object_get(ext, "imageSource"));
        json_t *tag_names = json_array();
        if (store_tag_list(cd->store, t->id, &tags, NULL) == 0)
                for (struct tag_rec **tg = tags; *tg; tg++)
                        json_array_append_new(tag_names, json_string((*tg)->tag));
        tag_list_free(tags);
        json_object_set_new(o, "tags", tag_names);
        json_object_set_new(o, "name", json_string(t->name ? t->name : ""));
        json_object_set_new(o, "visibility", json_string(t->visibility ? t->visibility : "team"));
        if (t->base_template_id)
                json_object_set_new(o, "baseTemplateID", json_string(t->base_template_id));
        json_object_set_new(o, "image", json_string(t->image ? t->image : ""));
        json_object_set_new(o, "imageSource", json_string(image_source));
        json_object_set_new(o, "createdByID",
                            json_string(tpl_is_official(t) || !t->created_by ? "" : t->created_by));
        json_object_set_new(o, "projectID", json_string(t->team_id ? t->team_id : ""));
        json_object_set_new(o, "storageType", json_string("ephemeral"));
        if (t->storage_size_gb > 0)
                json_object_set_new(o, "storageSizeGB", json_integer(t->storage_size_gb));
        json_object_set_new(o, "ttlSeconds", json_integer(t->ttl_seconds));
        json_object_set_new(o, "port", json_integer(t->port));
        json_object_set_new(o, "startCmd", json_string(t->start_cmd ? t->start_cmd : ""));
        json_object_set_new(o, "readyCmd", json_string(t->ready_cmd ? t->ready_cmd : ""));
        if (t->workdir)
                json_object_set_new(o, "workdir", json_string(t->workdir));
        json_object_set_new(o, "builds", builds);
        if (v[n])
                json_object_set_new(o, "nextToken", json_string(v[n]->id));
        build_list_free(v);
        return o;
}

static json_t *build_response(const struct build_rec *b)
{
        cleanup_free char *image = streq(b->status, "ready")
                                           ? xasprintf("cove/%s:%s", b->template_id, b->id)
                                           : xstrdup("");
        return json_pack("{s:s,s:s,s:s,s:s,s:s,s:o,s:o,s:o}", "buildID", b->id, "templateID",
                         b->template_id, "status", b->status, "image", image, "errorMessage",
                         b->error_message ? b->error_message : "", "createdAt",
                         ts_json(b->created_at), "updatedAt", ts_json(b->updated_at), "finishedAt",
                         ts_json(b->finished_at));
}

/* ---- templates ---- */

static void new_id(char *out, size_t n, const char *prefix)
{
        char hex[17];
        random_hex(hex, 16);
        (void)snprintf(out, n, "%s%s", prefix, hex);
}

/* Applies the given fields of a create/update body to t (PATCH semantics). */
static void apply_fields(struct template_rec *t, const struct template_req *q, bool with_name)
{
#define SET_STR(field, value)                                                                      \
        do {                                                                                       \
                if (value) {                                                                       \
                        free(t->field);                                                            \
                        t->field = xstrdup(value);                                                 \
                }                                                                                  \
        } while (0)
        if (with_name)
                SET_STR(name, q->name);
        SET_STR(base_template_id, q->base_template_id);
        SET_STR(image, q->image);
        SET_STR(dockerfile, q->dockerfile);
        SET_STR(start_cmd, q->start_cmd);
        SET_STR(ready_cmd, q->ready_cmd);
        SET_STR(workdir, q->workdir);
#undef SET_STR
        if (q->has_visibility) {
                free(t->visibility);
                t->visibility = xstrdup(template_visibility_to_string(q->visibility));
        }
        if (q->envs) {
                json_decref(t->envs);
                t->envs = json_deep_copy(q->envs);
        }
        if (q->volume_mounts) {
                json_decref(t->volume_mounts);
                t->volume_mounts = json_deep_copy(q->volume_mounts);
        }
        if (q->cpu_count.set)
                t->cpu_count = q->cpu_count.v;
        if (q->memory_mb.set)
                t->memory_mb = q->memory_mb.v;
        if (q->disk_size_mb.set)
                t->disk_size_mb = q->disk_size_mb.v;
        if (q->ttl_seconds.set)
                t->ttl_seconds = q->ttl_seconds.v;
        if (q->port.set)
                t->port = q->port.v;
        if (q->storage_size_gb.set)
                t->storage_size_gb = q->storage_size_gb.v;
        if (q->public_.set)
                t->public_ = q->public_.v;
        t->updated_at = time_now_ms();
}

static void limits_of(struct coved *cd, struct template_limits *lim, char **officials)
{
        *lim = (struct template_limits){
                .max_cpu = cd->cfg.max_template_cpu,
                .max_memory_mb = cd->cfg.max_template_memory_mb,
                .max_disk_mb = cd->cfg.max_template_disk_mb,
                .official_types = officials,
        };
}

/* The checks of a create/update body that need the store. */
static int check_req(struct coved *cd, const struct tpl_caller *c, const struct template_req *q,
                     struct cove_err **err)
{
        if (q->has_visibility && q->visibility == TEMPLATE_OFFICIAL && !c->admin)
                return cove_err_set_status(err, 403, EPERM,
                                           "only admin keys may make official templates");
        if (q->team_id && (!c->team_id || !streq(q->team_id, c->team_id)))
                return cove_err_set_status(err, 403, EPERM, "team '%s' is not a team of this key",
                                           q->team_id);
        if (q->base_template_id) {
                struct template_rec *b = NULL;
                if (tpl_resolve(cd, c, q->base_template_id, &b, NULL) < 0)
                        return cove_err_set_status(err, 400, EINVAL,
                                                   "baseTemplateID '%s' is not a template",
                                                   q->base_template_id);
                template_rec_free(b);
        }
        return 0;
}

static struct build_rec *new_build(const struct template_rec *t, const char *id, char **tags,
                                   const struct tpl_caller *c)
{
        struct build_rec *b = xzalloc(sizeof(*b));
        int64_t now = time_now_ms();
        b->template_id = xstrdup(t->id);
        b->id = xstrdup(id);
        b->status = xstrdup("waiting");
        b->error_message = xstrdup("");
        b->tags = tags && tags[0] ? strv_to_json(tags) : json_pack("[s]", "latest");
        b->layers = json_array();
        b->config = json_object();
        b->cpu_count = t->cpu_count;
        b->memory_mb = t->memory_mb;
        b->disk_size_mb = t->disk_size_mb;
        b->envd_version = xstrdup(COVE_VERSION);
        b->created_by = c->key_id ? xstrdup(c->key_id) : NULL;
        b->created_at = b->updated_at = now;
        return b;
}

/* A team's concurrentBuilds quota (control-plane.md §11): 429 when one more build would pass
 * it; builds of official templates (team_id NULL) count for nobody. */
static int admit_build(struct coved *cd, const struct tpl_caller *c, const char *team_id,
                       struct cove_err **err)
{
        int64_t team_n = 0, key_n = 0;
        int r = 0;
        if (!team_id)
                return 0;
        r = store_build_count_active(cd->store, team_id, NULL, &team_n, err);
        if (r >= 0 && c->key_id)
                r = store_build_count_active(cd->store, NULL, c->key_id, &key_n, err);
        if (r >= 0)
                r = manager_admit_build(cd, team_id, team_n, c->key_id, key_n, err);
        return r;
}

/* Starts build b: other untriggered waiting builds are cancelled after their tags moved here;
 * the request (without credentials) is recorded; the job is queued. Takes req over. */
static int start_build(struct coved *cd, const struct tpl_caller *c, struct template_rec *t,
                       struct build_rec *b, struct build_req *req, json_t *req_json,
                       struct cove_err **err)
{
        struct build_rec **v = NULL;
        int r = admit_build(cd, c, t->team_id, err);
        if (r < 0)
                goto fail;
        r = store_build_list(cd->store, t->id, NULL, 0, 100000, &v, NULL, err);
        if (r < 0)
                goto fail;
        for (struct build_rec **o = v; *o; o++) {
                if (streq((*o)->id, b->id) || (*o)->triggered || !streq((*o)->status, "waiting"))
                        continue;
                size_t i;
                json_t *tag;
                json_array_foreach ((*o)->tags, i, tag) {
                        bool have = false;
                        size_t k;
                        json_t *x;
                        json_array_foreach (b->tags, k, x)
                                have |= json_equal(x, tag);
                        if (!have)
                                json_array_append(b->tags, tag);
                }
                builds_mark_failed(cd, t->id, (*o)->id, "cancelled", NULL,
                                   "superseded by another build of the template");
        }
        build_list_free(v);
        b->triggered = true;
        free(b->status);
        b->status = xstrdup("waiting");
        json_decref(b->request);
        b->request = req_json ? json_incref(req_json) : json_object();
        b->updated_at = time_now_ms();
        r = store_build_update(cd->store, b, err);
        if (r < 0)
                goto fail;
        struct build_job *j = xzalloc(sizeof(*j));
        j->template_id = xstrdup(t->id);
        j->build_id = xstrdup(b->id);
        j->team_id = c->team_id ? xstrdup(c->team_id) : NULL;
        j->key_id = c->key_id ? xstrdup(c->key_id) : NULL;
        j->req = *req;
        *req = (struct build_req){ 0 };
        builder_enqueue(B(cd), j);
        return 0;
fail:
        build_req_release(req);
        return r;
}

/* The request as recorded: everything but the credentials. */
static json_t *request_record(json_t *body)
{
        json_t *o = body && json_is_object(body) ? json_deep_copy(body) : json_object();
        (void)json_object_del(o, "fromImageRegistry");
        return o;
}

/* Checks of a BuildRequest that need the store: uploaded hashes, fromTemplate readiness. */
static int check_build_req(struct coved *cd, const struct tpl_caller *c,
                           const struct template_rec *t, const struct build_req *q,
                           struct cove_err **err)
{
        for (size_t i = 0; i < q->n_steps; i++) {
                const char *h = q->steps[i].files_hash;
                if (h && store_build_file_has(cd->store, c->team_id, h, NULL) != 1)
                        return cove_err_set_status(err, 400, EINVAL,
                                                   "files for hash '%s' have not been uploaded", h);
        }
        if (q->files_hash && store_build_file_has(cd->store, c->team_id, q->files_hash, NULL) != 1)
                return cove_err_set_status(err, 400, EINVAL,
                                           "files for hash '%s' have not been uploaded",
                                           q->files_hash);
        if (q->from_template) {
                struct template_rec *f = NULL;
                cleanup_free char *tagged = NULL;
                if (tpl_resolve_tagged(cd, c, q->from_template, &f, &tagged, NULL) < 0)
                        return cove_err_set_status(err, 400, EINVAL,
                                                   "fromTemplate '%s' is not a template",
                                                   q->from_template);
                bool ready = tagged || f->build_id;
                template_rec_free(f);
                if (!ready)
                        return cove_err_set_status(err, 400, EINVAL,
                                                   "fromTemplate '%s' has no ready build",
                                                   q->from_template);
        }
        /* a stored Dockerfile that copies files needs a context */
        if (!q->from_template && !q->from_image && t->dockerfile) {
                struct dockerfile *df = NULL;
                if (dockerfile_parse(t->dockerfile, strlen(t->dockerfile), &df, NULL) == 0) {
                        bool needs = df->needs_context;
                        dockerfile_free(df);
                        if (needs && !q->files_hash && !q->legacy_hash)
                                return cove_err_set_status(
                                        err, 400, EINVAL,
                                        "the Dockerfile copies files but no context was given "
                                        "(filesHash or a context step)");
                }
        }
        return 0;
}

int templates_create(struct coved *cd, const struct tpl_caller *c, json_t *body, json_t **ret,
                     struct cove_err **err)
{
        return templates_create_with_build(cd, c, body, NULL, ret, err);
}

int templates_create_with_build(struct coved *cd, const struct tpl_caller *c, json_t *body,
                                const char *build_id, json_t **ret, struct cove_err **err)
{
        cleanup_strv char **officials = official_types(cd);
        struct template_limits lim;
        struct template_req q = { 0 };
        struct template_rec *t = NULL;
        struct build_rec *b = NULL;
        char bid[BUILD_ID_MAX + 1], tid[32];
        bool existed = false;
        int r;

        if (build_id && build_id_check(build_id, err) < 0) {
                (*err)->status = 400;
                return -EINVAL;
        }
        limits_of(cd, &lim, officials);
        r = template_req_parse(body, true, &lim, &q, err);
        if (r < 0)
                return r;
        r = check_req(cd, c, &q, err);
        if (r < 0)
                goto out;
        bool official = q.has_visibility && q.visibility == TEMPLATE_OFFICIAL;
        const char *team = official ? NULL : (q.team_id ? q.team_id : c->team_id);

        if (store_template_get_by_name(cd->store, team, q.name, &t, NULL) == 0) {
                existed = true;
                if (!tpl_may_change(t, c)) {
                        r = cove_err_set_status(err, 403, EPERM, "template '%s' may not be changed",
                                                q.name);
                        goto out;
                }
                apply_fields(t, &q, false);
                r = store_template_update(cd->store, t, err);
                if (r < 0)
                        goto out;
        } else {
                /* the team's quotas (control-plane.md §11): 429 before anything changes */
                if (team && (r = manager_admit_template(cd, team, c->key_id, err)) < 0)
                        goto out;
                if ((q.image || q.dockerfile) && (r = admit_build(cd, c, team, err)) < 0)
                        goto out;
                int64_t now = time_now_ms();
                t = xzalloc(sizeof(*t));
                new_id(tid, sizeof(tid), "tpl-");
                t->id = xstrdup(tid);
                t->name = xstrdup(q.name);
                t->team_id = team ? xstrdup(team) : NULL;
                t->official = official;
                t->visibility = xstrdup(template_visibility_to_string(q.visibility));
                t->created_by = c->key_id ? xstrdup(c->key_id) : NULL;
                t->envs = json_object();
                t->layers = json_array();
                t->binds = json_array();
                t->volume_mounts = json_array();
                t->build_config = json_object();
                t->build_status = xstrdup("waiting");
                t->created_at = t->updated_at = now;
                apply_fields(t, &q, false);
                t->created_at = now;
                r = store_template_insert(cd->store, t, err);
                if (r < 0)
                        goto out;
        }
        if (q.alias) {
                r = store_alias_insert(cd->store, q.alias, t->id, time_now_ms(), err);
                if (r == -EEXIST) {
                        cove_err_free(err);
                        r = cove_err_set_status(err, 409, EEXIST, "alias '%s' already exists",
                                                q.alias);
                }
                if (r < 0) {
                        if (!existed)
                                (void)store_template_delete(cd->store, t->id, NULL);
                        goto out;
                }
        }
        if (build_id)
                (void)snprintf(bid, sizeof(bid), "%s", build_id);
        else
                new_id(bid, sizeof(bid), "build-");
        b = new_build(t, bid, q.tags, c);
        r = store_build_insert(cd->store, b, err);
        if (r == -EEXIST) {
                cove_err_free(err);
                r = cove_err_set_status(err, 409, EEXIST, "build '%s' already exists", bid);
        }
        if (r < 0)
                goto out;
        if (q.image || q.dockerfile) {
                /* starts at once: the source is the template's stored image or Dockerfile */
                struct build_req none = { 0 };
                r = start_build(cd, c, t, b, &none, NULL, err);
                if (r < 0)
                        goto out;
        }
        char **aliases = NULL;
        (void)store_alias_list(cd->store, t->id, &aliases, NULL);
        *ret = json_pack("{s:s,s:s,s:b,s:[s],s:O,s:o}", "templateID", t->id, "buildID", bid,
                         "public", tpl_is_public(t), "names", t->name, "tags", b->tags, "aliases",
                         strv_to_json(aliases));
        strv_free(aliases);
        r = 0;
out:
        template_req_release(&q);
        template_rec_free(t);
        build_rec_free(b);
        return r;
}

int templates_list(struct coved *cd, const struct tpl_caller *c, const struct tpl_list_query *q,
                   json_t **ret, struct cove_err **err)
{
        struct template_rec **all = NULL;
        int64_t limit = q->limit <= 0 ? 100 : MIN(q->limit, (int64_t)LIST_LIMIT_MAX);
        int64_t skip = q->offset > 0 ? q->offset : 0;
        const char *vis = q->visibility;

        if (vis && !streq(vis, "personal") && !streq(vis, "private") && !streq(vis, "team") &&
            !streq(vis, "official") && !streq(vis, "public"))
                return cove_err_set_status(err, 400, EINVAL,
                                           "visibility must be personal, private, team, official "
                                           "or public");
        if (q->team_id && (!c->team_id || !streq(q->team_id, c->team_id)))
                return cove_err_set_status(err, 403, EPERM, "team '%s' is not a team of this key",
                                           q->team_id);
        int r = store_template_list(cd->store, NULL, &all, err);
        if (r < 0)
                return r;
        size_t n = 0;
        while (all[n])
                n++;
        /* createdAt descending, then templateID (the store gives ascending) */
        json_t *out = json_array();
        for (size_t k = n; k-- > 0;) {
                struct template_rec *t = all[k];
                if (!tpl_visible(t, c))
                        continue;
                if (q->team_id && (!t->team_id || !streq(t->team_id, q->team_id)))
                        continue;
                if (vis) {
                        const char *tv = tpl_is_official(t) ? "official"
                                         : t->visibility    ? t->visibility
                                                            : "team";
                        bool ok = streq(vis, "public")    ? tpl_is_public(t)
                                  : streq(vis, "private") ? streq(tv, "personal")
                                                          : streq(tv, vis);
                        if (!ok)
                                continue;
                }
                if (skip > 0) {
                        skip--;
                        continue;
                }
                if ((int64_t)json_array_size(out) >= limit)
                        break;
                json_array_append_new(out, listed_json(cd, t, NULL));
        }
        template_list_free(all);
        *ret = out;
        return 0;
}

int templates_get(struct coved *cd, const struct tpl_caller *c, const char *ref, int64_t limit,
                  const char *next_token, json_t **ret, struct cove_err **err)
{
        struct template_rec *t = NULL;
        int r = tpl_resolve(cd, c, ref, &t, err);
        if (r < 0)
                return r;
        *ret = template_response(cd, t, limit, next_token, err);
        template_rec_free(t);
        return *ret ? 0 : -EINVAL;
}

int templates_update(struct coved *cd, const struct tpl_caller *c, const char *ref, json_t *body,
                     json_t **ret, struct cove_err **err)
{
        cleanup_strv char **officials = official_types(cd);
        struct template_limits lim;
        struct template_req q = { 0 };
        struct template_rec *t = NULL;
        int r;

        limits_of(cd, &lim, officials);
        r = template_req_parse(body, false, &lim, &q, err);
        if (r < 0)
                return r;
        r = tpl_resolve_owned(cd, c, ref, &t, err);
        if (r < 0)
                goto out;
        r = check_req(cd, c, &q, err);
        if (r < 0)
                goto out;
        if (q.has_visibility && q.visibility == TEMPLATE_OFFICIAL && !tpl_is_official(t)) {
                /* becoming official: a server-wide name */
                free(t->team_id);
                t->team_id = NULL;
                t->official = true;
        }
        apply_fields(t, &q, true);
        r = store_template_update(cd->store, t, err);
        if (r == -EEXIST) {
                cove_err_free(err);
                r = cove_err_set_status(err, 409, EEXIST, "template '%s' already exists", q.name);
        }
        if (r >= 0)
                *ret = json_pack("{s:[s]}", "names", t->name);
out:
        template_req_release(&q);
        template_rec_free(t);
        return r;
}

int templates_delete(struct coved *cd, const struct tpl_caller *c, const char *ref,
                     struct cove_err **err)
{
        struct template_rec *t = NULL;
        int r = tpl_resolve_owned(cd, c, ref, &t, err);
        if (r < 0)
                return r;
        builder_cancel_template(B(cd), t->id, "template deleted");
        r = store_template_delete(cd->store, t->id, err);
        template_rec_free(t);
        if (r >= 0)
                builder_gc_soon(B(cd));
        return r;
}

int templates_alias_lookup(struct coved *cd, const struct tpl_caller *c, const char *ref,
                           json_t **ret, struct cove_err **err)
{
        struct template_rec *t = NULL;
        int r = tpl_resolve(cd, c, ref, &t, err);
        if (r < 0)
                return r;
        *ret = json_pack("{s:s,s:b}", "templateID", t->id, "public", tpl_is_public(t));
        template_rec_free(t);
        return 0;
}

int templates_resolve_ref(struct coved *cd, const struct tpl_caller *c, const char *ref,
                          json_t **ret, struct cove_err **err)
{
        struct template_rec *t = NULL;
        cleanup_free char *tagged = NULL;
        int r = tpl_resolve_tagged(cd, c, ref, &t, &tagged, err);
        if (r < 0)
                return r;
        *ret = json_pack("{s:s,s:b}", "templateID", t->id, "public", tpl_is_public(t));
        const char *bid = tagged ? tagged : t->build_id;
        struct build_rec **v = NULL;
        if (!bid && store_build_list(cd->store, t->id, NULL, 0, 1, &v, NULL, NULL) == 0 && v[0])
                json_object_set_new(*ret, "buildID", json_string(v[0]->id));
        else if (bid)
                json_object_set_new(*ret, "buildID", json_string(bid));
        build_list_free(v);
        template_rec_free(t);
        return 0;
}

/* ---- tags (§11) ---- */

static int tag_list_of(json_t *tags, size_t min, struct cove_err **err)
{
        size_t i;
        json_t *v;
        if (!json_is_array(tags) || json_array_size(tags) < min ||
            json_array_size(tags) > TEMPLATE_TAGS_MAX)
                return cove_err_set_status(err, 400, EINVAL,
                                           "field 'tags' must be an array of %zu to %d tags", min,
                                           TEMPLATE_TAGS_MAX);
        json_array_foreach (tags, i, v) {
                if (!json_is_string(v))
                        return cove_err_set_status(err, 400, EINVAL,
                                                   "field 'tags[%zu]' must be a string", i);
                int r = template_tag_check(json_string_value(v), err);
                if (r < 0) {
                        (*err)->status = 400;
                        return r;
                }
        }
        return 0;
}

int templates_tags_assign(struct coved *cd, const struct tpl_caller *c, json_t *body, json_t **ret,
                          struct cove_err **err)
{
        json_t *target = json_object_get(body, "target"), *tags = json_object_get(body, "tags");
        struct template_rec *t = NULL;
        struct build_rec *b = NULL;
        cleanup_free char *bid = NULL;
        int r;

        if (!json_is_string(target) || !*json_string_value(target))
                return cove_err_set_status(err, 400, EINVAL, "field 'target' is required");
        r = tag_list_of(tags, 1, err);
        if (r < 0)
                return r;
        const char *ref = json_string_value(target);
        const char *colon = strrchr(ref, ':');
        cleanup_free char *base = colon ? xstrndup(ref, (size_t)(colon - ref)) : xstrdup(ref);
        r = tpl_resolve_owned(cd, c, base, &t, err);
        if (r < 0)
                return r;
        if (colon) {
                /* ":<tag>" or ":<buildID>" */
                if (store_tag_get(cd->store, t->id, colon + 1, &bid, NULL) < 0)
                        bid = xstrdup(colon + 1);
        } else if (t->build_id) {
                bid = xstrdup(t->build_id);
        }
        if (!bid || store_build_get(cd->store, t->id, bid, &b, NULL) < 0) {
                template_rec_free(t);
                return cove_err_set_status(err, 404, ENOENT, "build '%s' not found",
                                           bid ? bid : ref);
        }
        if (!streq(b->status, "ready")) {
                r = cove_err_set_status(err, 409, EBUSY, "build '%s' is not ready", bid);
                goto out;
        }
        size_t i;
        json_t *v;
        int64_t now = time_now_ms();
        json_array_foreach (tags, i, v) {
                r = store_tag_set(cd->store, t->id, json_string_value(v), bid, now, err);
                if (r < 0)
                        goto out;
        }
        *ret = json_pack("{s:O,s:s}", "tags", tags, "buildID", bid);
        r = 0;
out:
        template_rec_free(t);
        build_rec_free(b);
        return r;
}

int templates_tags_delete(struct coved *cd, const struct tpl_caller *c, json_t *body,
                          struct cove_err **err)
{
        json_t *name = json_object_get(body, "name"), *tags = json_object_get(body, "tags");
        struct template_rec *t = NULL;
        int r;

        if (!json_is_string(name) || !*json_string_value(name))
                return cove_err_set_status(err, 400, EINVAL, "field 'name' is required");
        if (!json_is_array(tags) || json_array_size(tags) == 0)
                return cove_err_set_status(err, 400, EINVAL,
                                           "field 'tags' must be a non-empty array");
        r = tpl_resolve_owned(cd, c, json_string_value(name), &t, err);
        if (r < 0)
                return r;
        size_t i;
        json_t *v;
        json_array_foreach (tags, i, v) {
                if (!json_is_string(v)) {
                        template_rec_free(t);
                        return cove_err_set_status(err, 400, EINVAL,
                                                   "field 'tags[%zu]' must be a string", i);
                }
                (void)store_tag_delete(cd->store, t->id, json_string_value(v), NULL);
        }
        template_rec_free(t);
        return 0;
}

int templates_tags_list(struct coved *cd, const struct tpl_caller *c, const char *ref, json_t **ret,
                        struct cove_err **err)
{
        struct template_rec *t = NULL;
        struct tag_rec **tags = NULL;
        int r = tpl_resolve(cd, c, ref, &t, err);
        if (r < 0)
                return r;
        r = store_tag_list(cd->store, t->id, &tags, err);
        template_rec_free(t);
        if (r < 0)
                return r;
        json_t *out = json_array();
        for (struct tag_rec **tg = tags; *tg; tg++)
                json_array_append_new(out, json_pack("{s:s,s:s,s:o}", "tag", (*tg)->tag, "buildID",
                                                     (*tg)->build_id, "createdAt",
                                                     ts_json((*tg)->created_at)));
        tag_list_free(tags);
        *ret = out;
        return 0;
}

/* ---- builds (§7, §8) ---- */

static int build_trigger(struct coved *cd, const struct tpl_caller *c, const char *ref,
                         const char *build_id, json_t *body, bool e2b, json_t **ret,
                         struct cove_err **err);

int templates_build_trigger(struct coved *cd, const struct tpl_caller *c, const char *ref,
                            const char *build_id, json_t *body, json_t **ret, struct cove_err **err)
{
        return build_trigger(cd, c, ref, build_id, body, false, ret, err);
}

int templates_build_trigger_e2b(struct coved *cd, const struct tpl_caller *c, const char *ref,
                                const char *build_id, json_t *body, struct cove_err **err)
{
        json_t *out = NULL;
        int r = build_trigger(cd, c, ref, build_id, body, true, &out, err);
        json_decref(out);
        return r;
}

static int build_trigger(struct coved *cd, const struct tpl_caller *c, const char *ref,
                         const char *build_id, json_t *body, bool e2b, json_t **ret,
                         struct cove_err **err)
{
        struct template_rec *t = NULL;
        struct build_rec *b = NULL;
        struct build_req q = { 0 };
        int r;

        if (build_id && build_id_check(build_id, err) < 0) {
                (*err)->status = 400;
                return -EINVAL;
        }
        r = e2b ? build_req_parse_e2b(body, &q, err)
                : build_req_parse(body, build_id == NULL, &q, err);
        if (r < 0) {
                (*err)->status = 400;
                return r;
        }
        const char *want = build_id ? build_id : q.build_id;
        r = tpl_resolve_owned(cd, c, ref, &t, err);
        if (r < 0)
                goto out;
        r = check_build_req(cd, c, t, &q, err);
        if (r < 0)
                goto out;
        if (want) {
                if (store_build_get(cd->store, t->id, want, &b, NULL) == 0) {
                        if (b->triggered || !streq(b->status, "waiting")) {
                                r = cove_err_set_status(err, 409, EBUSY,
                                                        "build '%s' already started", want);
                                goto out;
                        }
                } else {
                        b = new_build(t, want, NULL, c);
                        json_decref(b->tags);
                        b->tags = json_array(); /* filled by moved tags, else latest */
                        r = store_build_insert(cd->store, b, err);
                        if (r == -EEXIST) {
                                cove_err_free(err);
                                r = cove_err_set_status(err, 409, EBUSY,
                                                        "build '%s' already started", want);
                        }
                        if (r < 0)
                                goto out;
                }
        } else {
                struct build_rec **v = NULL;
                r = store_build_list(cd->store, t->id, NULL, 0, 100000, &v, NULL, err);
                if (r < 0)
                        goto out;
                for (struct build_rec **o = v; *o && !b; o++)
                        if (!(*o)->triggered && streq((*o)->status, "waiting"))
                                (void)store_build_get(cd->store, t->id, (*o)->id, &b, NULL);
                build_list_free(v);
                if (!b) {
                        char bid[32];
                        new_id(bid, sizeof(bid), "build-");
                        b = new_build(t, bid, NULL, c);
                        json_decref(b->tags);
                        b->tags = json_array();
                        r = store_build_insert(cd->store, b, err);
                        if (r < 0)
                                goto out;
                }
        }
        json_t *rec = request_record(body);
        r = start_build(cd, c, t, b, &q, rec, err);
        json_decref(rec);
        if (r < 0)
                goto out;
        if (json_array_size(b->tags) == 0) {
                json_array_append_new(b->tags, json_string("latest"));
                (void)store_build_update(cd->store, b, NULL);
        }
        *ret = build_id ? json_object() : build_response(b);
        r = 0;
out:
        build_req_release(&q);
        template_rec_free(t);
        build_rec_free(b);
        return r;
}

int templates_builds_list(struct coved *cd, const struct tpl_caller *c, const char *ref,
                          int64_t offset, int64_t limit, json_t **ret, struct cove_err **err)
{
        struct template_rec *t = NULL;
        struct build_rec **v = NULL;
        int64_t total = 0;
        int r = tpl_resolve(cd, c, ref, &t, err);
        if (r < 0)
                return r;
        limit = limit <= 0 ? 100 : MIN(limit, (int64_t)LIST_LIMIT_MAX);
        r = store_build_list(cd->store, t->id, NULL, MAX(offset, (int64_t)0), limit, &v, &total,
                             err);
        template_rec_free(t);
        if (r < 0)
                return r;
        json_t *a = json_array();
        for (struct build_rec **b = v; *b; b++)
                json_array_append_new(a, build_response(*b));
        build_list_free(v);
        *ret = json_pack("{s:o,s:I}", "builds", a, "total", (json_int_t)total);
        return 0;
}

static int get_build(struct coved *cd, const struct tpl_caller *c, const char *ref,
                     const char *build_id, struct build_rec **ret, struct cove_err **err)
{
        struct template_rec *t = NULL;
        int r = tpl_resolve(cd, c, ref, &t, err);
        if (r < 0)
                return r;
        r = store_build_get(cd->store, t->id, build_id, ret, NULL);
        template_rec_free(t);
        if (r < 0)
                return cove_err_set_status(err, 404, ENOENT, "build '%s' not found", build_id);
        return 0;
}

int templates_build_get(struct coved *cd, const struct tpl_caller *c, const char *ref,
                        const char *build_id, json_t **ret, struct cove_err **err)
{
        struct build_rec *b = NULL;
        int r = get_build(cd, c, ref, build_id, &b, err);
        if (r < 0)
                return r;
        *ret = build_response(b);
        build_rec_free(b);
        return 0;
}

static json_t *log_entry_json(const struct build_log_rec *l)
{
        return json_pack("{s:o,s:s,s:s,s:s}", "timestamp", ts_json(l->ts), "level", l->level,
                         "step", l->step, "message", l->message);
}

static int level_ok(const char *level, struct cove_err **err)
{
        if (level && !streq(level, "debug") && !streq(level, "info") && !streq(level, "warn") &&
            !streq(level, "error"))
                return cove_err_set_status(err, 400, EINVAL,
                                           "level must be debug, info, warn or error");
        return 0;
}

/* The logs of build build_id of the template ref names for c, after checking level: the
 * store's page (store_build_log_list()) in *ret_logs, and the build in *ret_build (NULL: freed). */
static int build_logs(struct coved *cd, const struct tpl_caller *c, const char *ref,
                      const char *build_id, const char *level, int64_t cursor, bool backward,
                      int64_t skip, int64_t limit, struct build_rec **ret_build,
                      struct build_log_rec ***ret_logs, struct cove_err **err)
{
        struct build_rec *b = NULL;
        int r = level_ok(level, err);
        if (r < 0)
                return r;
        r = get_build(cd, c, ref, build_id, &b, err);
        if (r < 0)
                return r;
        r = store_build_log_list(cd->store, b->template_id, b->id, level, cursor, backward, skip,
                                 limit, ret_logs, err);
        if (r >= 0 && ret_build)
                *ret_build = b;
        else
                build_rec_free(b);
        return r;
}

/* A page's size: 100 unless the caller asked for fewer. */
static int64_t logs_page(int64_t limit)
{
        return limit <= 0 ? 100 : MIN(limit, (int64_t)100);
}

int templates_build_status(struct coved *cd, const struct tpl_caller *c, const char *ref,
                           const char *build_id, int64_t logs_offset, int64_t limit,
                           const char *level, json_t **ret, struct cove_err **err)
{
        struct build_rec *b = NULL;
        struct build_log_rec **logs = NULL;
        int r = build_logs(cd, c, ref, build_id, level, -1, false, MAX(logs_offset, (int64_t)0),
                           logs_page(limit), &b, &logs, err);
        if (r < 0)
                return r;
        json_t *msgs = json_array(), *entries = json_array();
        for (struct build_log_rec **l = logs; *l; l++) {
                json_array_append_new(msgs, json_string((*l)->message));
                json_array_append_new(entries, log_entry_json(*l));
        }
        build_log_list_free(logs);
        json_t *reason = json_null();
        if (streq(b->status, "error") || streq(b->status, "cancelled")) {
                reason = json_pack("{s:s}", "message", b->error_message ? b->error_message : "");
                if (b->error_step)
                        json_object_set_new(reason, "step", json_string(b->error_step));
        }
        *ret = json_pack("{s:s,s:s,s:s,s:o,s:o,s:o,s:o,s:o}", "buildID", b->id, "templateID",
                         b->template_id, "status", b->status, "logs", msgs, "logEntries", entries,
                         "reason", reason, "createdAt", ts_json(b->created_at), "updatedAt",
                         ts_json(b->updated_at));
        build_rec_free(b);
        return 0;
}

int templates_build_logs(struct coved *cd, const struct tpl_caller *c, const char *ref,
                         const char *build_id, int64_t cursor, int64_t limit, bool backward,
                         const char *level, json_t **ret, struct cove_err **err)
{
        struct build_log_rec **logs = NULL;
        int r = build_logs(cd, c, ref, build_id, level, cursor, backward, 0, logs_page(limit), NULL,
                           &logs, err);
        if (r < 0)
                return r;
        json_t *a = json_array();
        for (struct build_log_rec **l = logs; *l; l++)
                json_array_append_new(a, log_entry_json(*l));
        build_log_list_free(logs);
        *ret = json_pack("{s:o}", "logs", a);
        return 0;
}

int templates_build_logs_ms(struct coved *cd, const struct tpl_caller *c, const char *ref,
                            const char *build_id, int64_t cursor_ms, int64_t limit, bool backward,
                            const char *level, json_t **ret, struct cove_err **err)
{
        struct build_log_rec **logs = NULL;
        /* the entries are in time order: every one (at most BUILD_LOG_MAX), then the cursor */
        int r = build_logs(cd, c, ref, build_id, level, -1, backward, 0, BUILD_LOG_MAX + 1, NULL,
                           &logs, err);
        if (r < 0)
                return r;
        limit = logs_page(limit);
        json_t *a = json_array();
        for (struct build_log_rec **l = logs; *l && (int64_t)json_array_size(a) < limit; l++) {
                if (cursor_ms >= 0 && (backward ? (*l)->ts > cursor_ms : (*l)->ts < cursor_ms))
                        continue;
                json_array_append_new(a, log_entry_json(*l));
        }
        build_log_list_free(logs);
        *ret = json_pack("{s:o}", "logs", a);
        return 0;
}

int templates_rollback(struct coved *cd, const struct tpl_caller *c, const char *ref, json_t *body,
                       json_t **ret, struct cove_err **err)
{
        json_t *bid = json_object_get(body, "buildID");
        struct template_rec *t = NULL;
        struct build_rec *b = NULL;
        int r;

        if (!json_is_string(bid) || !*json_string_value(bid))
                return cove_err_set_status(err, 400, EINVAL, "field 'buildID' is required");
        r = tpl_resolve_owned(cd, c, ref, &t, err);
        if (r < 0)
                return r;
        if (store_build_get(cd->store, t->id, json_string_value(bid), &b, NULL) < 0) {
                template_rec_free(t);
                return cove_err_set_status(err, 404, ENOENT, "build '%s' not found",
                                           json_string_value(bid));
        }
        if (streq(b->status, "ready")) {
                free(t->pinned_build_id);
                t->pinned_build_id = xstrdup(b->id);
                r = builds_mark_ready(cd, t, b, err); /* becomes current at once */
        } else if (streq(b->status, "waiting") || streq(b->status, "building")) {
                free(t->pinned_build_id);
                t->pinned_build_id = xstrdup(b->id);
                t->updated_at = time_now_ms();
                r = store_template_update(cd->store, t, err);
        }
        if (r >= 0) {
                struct template_rec *now = NULL;
                r = store_template_get(cd->store, t->id, &now, err);
                if (r >= 0) {
                        *ret = template_response(cd, now, 10, NULL, err);
                        template_rec_free(now);
                        r = *ret ? 0 : -EIO;
                }
        }
        template_rec_free(t);
        build_rec_free(b);
        return r;
}

/* ---- the direct build (§12) ---- */

static bool project_ok(const char *s)
{
        size_t n = strlen(s);
        if (n == 0 || n > 64 || !((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= '0' && s[0] <= '9')))
                return false;
        for (size_t i = 1; i < n; i++)
                if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '.' ||
                      s[i] == '_' || s[i] == '-'))
                        return false;
        return true;
}

int templates_direct_build(struct coved *cd, const struct tpl_caller *c, json_t *body, json_t **ret,
                           struct cove_err **err)
{
        const char *project = json_string_value(json_object_get(body, "project"));
        const char *image = json_string_value(json_object_get(body, "image"));
        const char *tag = json_string_value(json_object_get(body, "tag"));
        const char *df_text = json_string_value(json_object_get(body, "dockerfile"));
        struct dockerfile *df = NULL;
        int r;

        if (!streq(cd->cfg.direct_build, "on"))
                return cove_err_set_status(err, 404, ENOENT, "not found");
        if (!json_is_object(body))
                return cove_err_set_status(err, 400, EINVAL, "request body must be a JSON object");
        if (!project || !project_ok(project))
                return cove_err_set_status(err, 400, EINVAL,
                                           "field 'project' must match [a-z0-9][a-z0-9._-]{0,63}");
        if (!image || !project_ok(image))
                return cove_err_set_status(err, 400, EINVAL,
                                           "field 'image' must match [a-z0-9][a-z0-9._-]{0,63}");
        if (!tag || template_tag_check(tag, NULL) < 0)
                return cove_err_set_status(err, 400, EINVAL, "field 'tag' is not a valid tag");
        if (!df_text || strlen(df_text) > DOCKERFILE_FIELD_MAX)
                return cove_err_set_status(err, 400, EINVAL,
                                           "field 'dockerfile' is required (at most 256 KiB)");
        r = dockerfile_parse(df_text, strlen(df_text), &df, err);
        if (r < 0) {
                (*err)->status = 400;
                return r;
        }
        bool copies = df->needs_context;
        dockerfile_free(df);
        if (copies)
                return cove_err_set_status(err, 400, EINVAL,
                                           "COPY and ADD are not allowed in a direct build (there "
                                           "is no context)");
        cleanup_free char *name = xasprintf("%s-%s", project, image);
        json_t *create = json_pack("{s:s,s:[s],s:s,s:s}", "name", name, "tags", tag, "dockerfile",
                                   df_text, "visibility", "team");
        json_t *res = NULL;
        r = templates_create(cd, c, create, &res, err);
        json_decref(create);
        if (r < 0)
                return r;
        cleanup_free char *full = xasprintf("cove/%s/%s:%s", project, image, tag);
        *ret = json_pack("{s:O,s:O,s:s}", "templateID", json_object_get(res, "templateID"),
                         "buildID", json_object_get(res, "buildID"), "imageFullName", full);
        json_decref(res);
        return 0;
}

/* ---- uploads (§9) ---- */

int templates_files_get(struct coved *cd, const struct tpl_caller *c, const char *ref,
                        const char *hash, bool opaque, json_t **ret, struct cove_err **err)
{
        struct template_rec *t = NULL;
        char sig[65];

        if (!sha256_hex_valid(hash))
                return cove_err_set_status(err, 400, EINVAL,
                                           "hash '%.80s' must be 64 lower-case hex characters",
                                           hash);
        int r = tpl_resolve(cd, c, ref, &t, err);
        if (r < 0)
                return r;
        int present = store_build_file_has(cd->store, c->team_id, hash, NULL) == 1;
        int64_t expires = time_now_ms() / 1000 + UPLOAD_URL_TTL_S;
        upload_signature(B(cd)->secret, sizeof(B(cd)->secret), t->id, hash, expires, opaque, sig);
        cleanup_free char *url =
                xasprintf("%s/build-files/%s/%s?expires=%lld&signature=%s%s", cd->cfg.public_url,
                          t->id, hash, (long long)expires, sig, opaque ? "&opaque=1" : "");
        *ret = json_pack("{s:b,s:s}", "present", present, "url", url);
        template_rec_free(t);
        return 0;
}

struct tpl_upload {
        struct coved *cd;
        char *team_id, *hash, *tmp_path, *final_path;
        bool opaque; /* E2B: the hash names the content; gzip or plain tar */
        int fd;
        struct sha256_ctx sha;
        uint64_t bytes;
};

void templates_upload_free(struct tpl_upload *u)
{
        if (!u)
                return;
        if (u->fd >= 0)
                (void)close(u->fd);
        if (u->tmp_path)
                (void)unlink(u->tmp_path);
        sha256_free(&u->sha);
        free(u->team_id);
        free(u->hash);
        free(u->tmp_path);
        free(u->final_path);
        free(u);
}

int templates_upload_begin(struct coved *cd, const char *template_id, const char *hash,
                           const char *expires, const char *signature, bool opaque,
                           struct tpl_upload **ret, struct cove_err **err)
{
        struct template_rec *t = NULL;
        char rnd[17];
        int r;

        if (!sha256_hex_valid(hash))
                return cove_err_set_status(err, 400, EINVAL,
                                           "hash '%.80s' must be 64 lower-case hex characters",
                                           hash);
        r = upload_signature_check(B(cd)->secret, sizeof(B(cd)->secret), template_id, hash, expires,
                                   opaque, signature, time_now_ms() / 1000, err);
        if (r < 0) {
                (*err)->status = 403;
                return r;
        }
        if (store_template_get(cd->store, template_id, &t, NULL) < 0)
                return tpl_not_found(template_id, err);
        struct tpl_upload *u = xzalloc(sizeof(*u));
        u->cd = cd;
        u->fd = -1;
        u->opaque = opaque;
        u->team_id = xstrdup(t->team_id ? t->team_id : "official");
        template_rec_free(t);
        u->hash = xstrdup(hash);
        cleanup_free char *dir = xasprintf("%s/%s", B(cd)->files_dir, u->team_id);
        if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
                r = cove_err_set(err, errno, "store upload: %m");
                goto fail;
        }
        random_hex(rnd, 16);
        u->tmp_path = xasprintf("%s/.%s.%s", dir, hash, rnd);
        u->final_path = builder_file_path(B(cd), u->team_id, hash);
        u->fd = open(u->tmp_path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (u->fd < 0 || sha256_init(&u->sha) < 0) {
                r = cove_err_set(err, errno ? errno : ENOMEM, "store upload: %m");
                goto fail;
        }
        *ret = u;
        return 0;
fail:
        templates_upload_free(u);
        return r;
}

int templates_upload_write(struct tpl_upload *u, const void *p, size_t n, struct cove_err **err)
{
        sha256_update(&u->sha, p, n);
        u->bytes += n;
        for (size_t done = 0; done < n;) {
                ssize_t k = write(u->fd, (const char *)p + done, n - done);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0)
                        return cove_err_set_status(err, errno == ENOSPC ? 507 : 500, errno,
                                                   "store upload: %m");
                done += (size_t)k;
        }
        return 0;
}

int templates_upload_finish(struct tpl_upload *u, struct cove_err **err)
{
        char got[65];
        sha256_final_hex(&u->sha, got);
        if (!u->opaque && !streq(got, u->hash))
                return cove_err_set_status(err, 400, EINVAL, "SHA-256 of the body is %s, not %s",
                                           got, u->hash);
        if (lseek(u->fd, 0, SEEK_SET) < 0)
                return cove_err_set(err, errno, "store upload: %m");
        int r = u->opaque ? extract_check_tar_fd(u->fd, err) : extract_check_targz_fd(u->fd, err);
        if (r < 0) {
                (*err)->status = 400;
                return r;
        }
        if (fsync(u->fd) < 0 || rename(u->tmp_path, u->final_path) < 0)
                return cove_err_set(err, errno, "store upload: %m");
        free(u->tmp_path);
        u->tmp_path = NULL;
        return store_build_file_put(u->cd->store, u->team_id, u->hash, (int64_t)u->bytes,
                                    time_now_ms(), err);
}
