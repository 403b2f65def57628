/* SPDX-License-Identifier: MIT */
#include "build/request.h"

#include "build/digest.h"
#include "build/dockerfile.h"
#include "build/ref.h"
#include "lib/macro.h"

#include "lib/banned.h"

#define TTL_MAX 86400

static bool name_char(char c)
{
        return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
               c == '.' || c == '_' || c == '-';
}

static bool alnum(char c)
{
        return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

static bool charset_ok(const char *s, size_t max)
{
        size_t n = strlen(s);
        if (n == 0 || n > max || !alnum(s[0]))
                return false;
        for (size_t i = 0; i < n; i++)
                if (!name_char(s[i]))
                        return false;
        return true;
}

int template_name_check(const char *what, const char *name, bool is_alias,
                        char *const *official_types, struct cove_err **err)
{
        if (!charset_ok(name, TEMPLATE_NAME_MAX))
                return cove_err_set(err, EINVAL,
                                    "%s '%.140s' is invalid: use 1 to %d of A-Z a-z 0-9 . _ -, "
                                    "starting with a letter or digit",
                                    what, name, TEMPLATE_NAME_MAX);
        if (is_alias)
                return 0;
        if (strncmp(name, "tpl-", 4) == 0)
                return cove_err_set(err, EINVAL, "%s '%s' may not start with 'tpl-'", what, name);
        if (streq(name, "tags") || streq(name, "aliases") || streq(name, "resolve"))
                return cove_err_set(err, EINVAL, "%s '%s' is reserved", what, name);
        for (char *const *t = official_types; t && *t; t++)
                if (streq(name, *t))
                        return cove_err_set(err, EINVAL,
                                            "%s '%s' is the name of an official template", what,
                                            name);
        return 0;
}

int template_tag_check(const char *tag, struct cove_err **err)
{
        if (!charset_ok(tag, TEMPLATE_TAG_MAX))
                return cove_err_set(err, EINVAL,
                                    "tag '%.80s' is invalid: use 1 to %d of A-Z a-z 0-9 . _ -, "
                                    "starting with a letter or digit",
                                    tag, TEMPLATE_TAG_MAX);
        return 0;
}

int build_id_check(const char *id, struct cove_err **err)
{
        size_t n = strlen(id);
        bool ok = n > 0 && n <= BUILD_ID_MAX;
        for (size_t i = 0; ok && i < n; i++) {
                char c = id[i];
                bool lower_alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
                ok = lower_alnum || (c == '-' && i > 0 && i < n - 1);
        }
        if (!ok)
                return cove_err_set(
                        err, EINVAL,
                        "buildID '%.80s' must be a DNS label ([a-z0-9]([-a-z0-9]*[a-z0-9])?, "
                        "at most %d characters)",
                        id, BUILD_ID_MAX);
        return 0;
}

static const char *const visibility_names[_TEMPLATE_VISIBILITY_MAX] = {
        [TEMPLATE_PERSONAL] = "personal",
        [TEMPLATE_TEAM] = "team",
        [TEMPLATE_OFFICIAL] = "official",
};

const char *template_visibility_to_string(enum template_visibility v)
{
        return v >= 0 && v < _TEMPLATE_VISIBILITY_MAX ? visibility_names[v] : NULL;
}

enum template_visibility template_visibility_from_string(const char *s)
{
        if (streq(s, "private"))
                return TEMPLATE_PERSONAL;
        for (int i = 0; i < _TEMPLATE_VISIBILITY_MAX; i++)
                if (streq(s, visibility_names[i]))
                        return (enum template_visibility)i;
        return _TEMPLATE_VISIBILITY_INVALID;
}

/* ---- template create / update ---- */

struct raw_template {
        char *name;
        char **tags;
        char *alias;
        char *team_id;
        struct json_bool public_;
        struct json_int cpu, mem, disk, ttl, port, storage_gb;
        char *visibility, *base, *image, *dockerfile;
        json_t *envs;
        char *start_cmd, *ready_cmd, *workdir, *storage_type;
        json_t *volume_mounts;
        json_t *extensions;
};

#define RT(f) offsetof(struct raw_template, f)

/* The extension keys: accepted at the top level, in extensions and in extensions.seacloud. */
#define EXTENSION_FIELDS                                                                           \
        { "baseTemplateID", json_take_str, RT(base), 0, 0, 0 },                                    \
                { "visibility", json_take_str, RT(visibility), 0, 0, 0 },                          \
                { "envs", json_take_strmap, RT(envs), 0, 0, 0 },                                   \
                { "storageType", json_take_str, RT(storage_type), 0, 0, 0 },                       \
                { "storageSizeGB", json_take_int, RT(storage_gb), 0, 0, 0 },                       \
                { "volumeMounts", json_take_json, RT(volume_mounts), 0, 0, 0 },                    \
        {                                                                                          \
                "workdir", json_take_str, RT(workdir), 0, 0, 0                                     \
        }

static const struct json_field template_fields[] = {
        { "name", json_take_str, RT(name), 0, 0, 0 },
        { "tags", json_take_strv, RT(tags), 0, 0, 0 },
        { "alias", json_take_str, RT(alias), 0, 0, 0 },
        { "teamID", json_take_str, RT(team_id), 0, 0, 0 },
        { "public", json_take_bool, RT(public_), 0, 0, 0 },
        { "cpuCount", json_take_int, RT(cpu), 0, 0, 0 },
        { "memoryMB", json_take_int, RT(mem), 0, 0, 0 },
        { "diskSizeMB", json_take_int, RT(disk), 0, 0, 0 },
        { "ttlSeconds", json_take_int, RT(ttl), 0, 0, 0 },
        { "port", json_take_int, RT(port), 0, 0, 0 },
        { "image", json_take_str, RT(image), 0, 0, IMAGE_REF_MAX },
        { "dockerfile", json_take_str, RT(dockerfile), 0, 0, DOCKERFILE_FIELD_MAX },
        { "startCmd", json_take_str, RT(start_cmd), 0, 0, TEMPLATE_CMD_MAX },
        { "readyCmd", json_take_str, RT(ready_cmd), 0, 0, TEMPLATE_CMD_MAX },
        { "extensions", json_take_json, RT(extensions), 0, 0, 0 },
        EXTENSION_FIELDS,
        {},
};

static const struct json_field extension_fields[] = {
        EXTENSION_FIELDS,
        {},
};

static void raw_release(struct raw_template *r)
{
        free(r->name);
        strv_free(r->tags);
        free(r->alias);
        free(r->team_id);
        free(r->visibility);
        free(r->base);
        free(r->image);
        free(r->dockerfile);
        json_decref(r->envs);
        free(r->start_cmd);
        free(r->ready_cmd);
        free(r->workdir);
        free(r->storage_type);
        json_decref(r->volume_mounts);
        json_decref(r->extensions);
}

void template_req_release(struct template_req *r)
{
        free(r->name);
        strv_free(r->tags);
        free(r->alias);
        free(r->team_id);
        free(r->base_template_id);
        free(r->image);
        free(r->dockerfile);
        json_decref(r->envs);
        free(r->start_cmd);
        free(r->ready_cmd);
        free(r->workdir);
        free(r->storage_type);
        json_decref(r->volume_mounts);
        *r = (struct template_req){ 0 };
}

static int range(const char *field, const struct json_int *v, int64_t min, int64_t max,
                 struct cove_err **err)
{
        if (v->set && (v->v < min || v->v > max))
                return cove_err_set(err, EINVAL, "field '%s' must be between %lld and %lld", field,
                                    (long long)min, (long long)max);
        return 0;
}

static void strv_push_unique(char ***v, const char *s)
{
        size_t n = strv_length(*v);
        for (size_t i = 0; i < n; i++)
                if (streq((*v)[i], s))
                        return;
        *v = xrealloc(*v, (n + 2) * sizeof(char *));
        (*v)[n] = xstrdup(s);
        (*v)[n + 1] = NULL;
}

/* A template's default mounts (§4.1 volumeMounts, control-plane.md §4.1 rules): at most 16
 * {name, path[, storageType]}; path absolute, not '/', no '..' segment, at most 4096 bytes,
 * unique. Kept as [{name, path}]; the volume names are resolved when a sandbox is created. */
static int volume_mounts_check(json_t *in, json_t **ret, struct cove_err **err)
{
        if (!json_is_array(in))
                return cove_err_set(err, EINVAL, "field 'volumeMounts' must be an array");
        if (json_array_size(in) > 16)
                return cove_err_set(err, EINVAL, "field 'volumeMounts' has more than 16 mounts");
        json_auto_t *out = json_array();
        size_t i;
        json_t *m;
        json_array_foreach (in, i, m) {
                const char *name = json_string_value(json_object_get(m, "name"));
                const char *path = json_string_value(json_object_get(m, "path"));
                if (!json_is_object(m) || !name || !*name || !path)
                        return cove_err_set(err, EINVAL,
                                            "volumeMounts[%zu] needs a string 'name' and 'path'",
                                            i);
                size_t len = strlen(path);
                if (path[0] != '/' || streq(path, "/") || len > 4096 || strstr(path, "/../") ||
                    (len >= 3 && streq(path + len - 3, "/..")))
                        return cove_err_set(err, EINVAL,
                                            "volumeMounts[%zu]: path must be absolute, not '/', "
                                            "without '..' and at most 4096 bytes",
                                            i);
                size_t k;
                json_t *have;
                json_array_foreach (out, k, have)
                        if (streq(json_string_value(json_object_get(have, "path")), path))
                                return cove_err_set(err, EINVAL,
                                                    "volumeMounts: path '%.200s' appears twice",
                                                    path);
                json_array_append_new(out, json_pack("{s:s,s:s}", "name", name, "path", path));
        }
        *ret = json_incref(out);
        return 0;
}

static int validate(struct raw_template *raw, bool create, const struct template_limits *lim,
                    struct template_req *out, struct cove_err **err)
{
        int64_t max_cpu = lim && lim->max_cpu ? lim->max_cpu : 8;
        int64_t max_mem = lim && lim->max_memory_mb ? lim->max_memory_mb : 16384;
        int64_t max_disk = lim && lim->max_disk_mb ? lim->max_disk_mb : 51200;
        int64_t max_gb = lim && lim->max_storage_gb ? lim->max_storage_gb : max_disk / 1024;
        char *const *officials = lim ? lim->official_types : NULL;
        int r;

        if (raw->name) {
                char *colon = strrchr(raw->name, ':');
                if (colon) {
                        r = template_tag_check(colon + 1, err);
                        if (r < 0)
                                return r;
                        out->tags = xzalloc(sizeof(char *));
                        strv_push_unique(&out->tags, colon + 1);
                        *colon = '\0';
                }
                r = template_name_check("name", raw->name, false, officials, err);
                if (r < 0)
                        return r;
                out->name = xstrdup(raw->name);
        } else if (create) {
                return cove_err_set(err, EINVAL, "field 'name' is required");
        }
        if (create) {
                for (char **t = raw->tags; t && *t; t++) {
                        r = template_tag_check(*t, err);
                        if (r < 0)
                                return r;
                        if (!out->tags)
                                out->tags = xzalloc(sizeof(char *));
                        strv_push_unique(&out->tags, *t);
                }
                if (strv_length(out->tags) > TEMPLATE_TAGS_MAX)
                        return cove_err_set(err, EINVAL, "at most %d tags per build",
                                            TEMPLATE_TAGS_MAX);
                if (!out->tags) {
                        out->tags = xzalloc(2 * sizeof(char *));
                        out->tags[0] = xstrdup("latest");
                }
                if (raw->alias) {
                        r = template_name_check("alias", raw->alias, true, NULL, err);
                        if (r < 0)
                                return r;
                        out->alias = xstrdup(raw->alias);
                }
                out->team_id = raw->team_id ? xstrdup(raw->team_id) : NULL;
        }
        if ((r = range("cpuCount", &raw->cpu, 1, max_cpu, err)) < 0 ||
            (r = range("memoryMB", &raw->mem, 128, max_mem, err)) < 0 ||
            (r = range("diskSizeMB", &raw->disk, 512, max_disk, err)) < 0 ||
            (r = range("ttlSeconds", &raw->ttl, 0, TTL_MAX, err)) < 0 ||
            (r = range("port", &raw->port, 0, 65535, err)) < 0 ||
            (r = range("storageSizeGB", &raw->storage_gb, 1, max_gb, err)) < 0)
                return r;
        out->cpu_count = raw->cpu;
        out->memory_mb = raw->mem;
        out->disk_size_mb = raw->disk;
        out->ttl_seconds = raw->ttl;
        out->port = raw->port;
        out->storage_size_gb = raw->storage_gb;
        out->public_ = raw->public_;
        if (raw->storage_gb.set && !raw->disk.set)
                out->disk_size_mb = (struct json_int){ true, raw->storage_gb.v * 1024 };

        if (raw->visibility) {
                out->visibility = template_visibility_from_string(raw->visibility);
                if (out->visibility < 0)
                        return cove_err_set(err, EINVAL,
                                            "field 'visibility' must be one of personal, private, "
                                            "team, official");
                out->has_visibility = true;
        }
        if (raw->image) {
                struct image_ref ref = { 0 };
                r = image_ref_parse(raw->image, &ref, err);
                if (r < 0)
                        return cove_err_wrap(err, "field 'image'");
                image_ref_free(&ref);
                out->image = xstrdup(raw->image);
        }
        if (raw->dockerfile) {
                struct dockerfile *df = NULL;
                r = dockerfile_parse(raw->dockerfile, strlen(raw->dockerfile), &df, err);
                if (r < 0)
                        return r;
                dockerfile_free(df);
                out->dockerfile = xstrdup(raw->dockerfile);
        }
        if (raw->workdir) {
                if (raw->workdir[0] != '/')
                        return cove_err_set(err, EINVAL,
                                            "field 'workdir' must be an absolute path");
                out->workdir = xstrdup(raw->workdir);
        }
        if (raw->storage_type) {
                if (!streq(raw->storage_type, "ephemeral"))
                        return cove_err_set(err, EINVAL, "storageType '%.80s' is not supported",
                                            raw->storage_type);
                out->storage_type = xstrdup(raw->storage_type);
        }
        if (raw->volume_mounts) {
                r = volume_mounts_check(raw->volume_mounts, &out->volume_mounts, err);
                if (r < 0)
                        return r;
        }
        if (raw->envs)
                out->envs = json_incref(raw->envs);
        out->base_template_id = raw->base ? xstrdup(raw->base) : NULL;
        out->start_cmd = raw->start_cmd ? xstrdup(raw->start_cmd) : NULL;
        out->ready_cmd = raw->ready_cmd ? xstrdup(raw->ready_cmd) : NULL;

        out->any_field = raw->name || raw->public_.set || raw->cpu.set || raw->mem.set ||
                         raw->disk.set || raw->ttl.set || raw->port.set || raw->storage_gb.set ||
                         raw->visibility || raw->base || raw->image || raw->dockerfile ||
                         raw->envs || raw->start_cmd || raw->ready_cmd || raw->workdir ||
                         raw->storage_type || raw->volume_mounts;
        if (!create && !out->any_field)
                return cove_err_set(err, EINVAL, "no updatable template fields");
        if (create) {
                if (!out->cpu_count.set)
                        out->cpu_count = (struct json_int){ true, 2 };
                if (!out->memory_mb.set)
                        out->memory_mb = (struct json_int){ true, 1024 };
                if (!out->disk_size_mb.set)
                        out->disk_size_mb = (struct json_int){ true, 10240 };
                if (!out->has_visibility) {
                        out->visibility = TEMPLATE_TEAM;
                        out->has_visibility = true;
                }
        }
        return 0;
}

int template_req_parse(json_t *body, bool create, const struct template_limits *lim,
                       struct template_req *ret, struct cove_err **err)
{
        struct raw_template raw = { 0 };
        struct template_req out = { 0 };
        int r;

        r = json_dispatch(body, template_fields, &raw, err);
        if (r >= 0 && raw.extensions) {
                if (!json_is_object(raw.extensions)) {
                        r = cove_err_set(err, EINVAL, "field 'extensions' must be an object");
                } else {
                        /* extensions.<key> over the top level, extensions.seacloud.<key> over both
                         */
                        r = json_dispatch(raw.extensions, extension_fields, &raw, err);
                        json_t *sc = json_object_get(raw.extensions, "seacloud");
                        if (r >= 0 && sc && !json_is_null(sc)) {
                                if (!json_is_object(sc))
                                        r = cove_err_set(
                                                err, EINVAL,
                                                "field 'extensions.seacloud' must be an object");
                                else
                                        r = json_dispatch(sc, extension_fields, &raw, err);
                        }
                }
        }
        if (r >= 0)
                r = validate(&raw, create, lim, &out, err);
        raw_release(&raw);
        if (r < 0) {
                template_req_release(&out);
                return r;
        }
        *ret = out;
        return 0;
}

/* ---- BuildRequest ---- */

struct raw_build {
        char *from_template, *from_image;
        json_t *registry;
        struct json_bool force;
        json_t *steps;
        char *files_hash, *start_cmd, *ready_cmd, *build_id;
};

#define RB(f) offsetof(struct raw_build, f)

static const struct json_field build_fields[] = {
        { "fromTemplate", json_take_str, RB(from_template), 0, 0, 1024 },
        { "fromImage", json_take_str, RB(from_image), 0, 0, IMAGE_REF_MAX },
        { "fromImageRegistry", json_take_json, RB(registry), 0, 0, 0 },
        { "force", json_take_bool, RB(force), 0, 0, 0 },
        { "steps", json_take_json, RB(steps), 0, 0, 0 },
        { "filesHash", json_take_str, RB(files_hash), 0, 0, 0 },
        { "startCmd", json_take_str, RB(start_cmd), 0, 0, TEMPLATE_CMD_MAX },
        { "readyCmd", json_take_str, RB(ready_cmd), 0, 0, TEMPLATE_CMD_MAX },
        { "buildID", json_take_str, RB(build_id), 0, 0, 0 },
        {},
};

static void wipe(char *s)
{
        if (s) {
                explicit_bzero(s, strlen(s));
                free(s);
        }
}

void build_req_release(struct build_req *r)
{
        free(r->from_template);
        free(r->from_image);
        wipe(r->username);
        wipe(r->password);
        wipe(r->aws_key_id);
        wipe(r->aws_secret);
        free(r->aws_region);
        build_steps_free(r->steps, r->n_steps);
        free(r->legacy_hash);
        free(r->files_hash);
        free(r->start_cmd);
        free(r->ready_cmd);
        free(r->build_id);
        *r = (struct build_req){ 0 };
}

static int cred_string(json_t *o, const char *key, char **ret, struct cove_err **err)
{
        json_t *v = json_object_get(o, key);
        if (!json_is_string(v) || strlen(json_string_value(v)) != json_string_length(v) ||
            json_string_length(v) == 0 || json_string_length(v) > 64 * 1024)
                return cove_err_set(err, EINVAL,
                                    "fromImageRegistry: field '%s' must be a non-empty string",
                                    key);
        *ret = xstrdup(json_string_value(v));
        return 0;
}

static int parse_registry(json_t *v, struct build_req *out, struct cove_err **err)
{
        json_t *parsed = NULL;
        int r;

        if (json_is_string(v)) {
                /* the object, JSON-encoded */
                if (json_parse(json_string_value(v), json_string_length(v), false, &parsed, NULL) <
                            0 ||
                    !json_is_object(parsed)) {
                        json_decref(parsed);
                        return cove_err_set(err, EINVAL,
                                            "field 'fromImageRegistry' must be an object");
                }
                v = parsed;
        }
        if (!json_is_object(v)) {
                json_decref(parsed);
                return cove_err_set(err, EINVAL, "field 'fromImageRegistry' must be an object");
        }
        const char *type = json_string_value(json_object_get(v, "type"));
        if (!type && json_object_get(v, "username"))
                type = "registry";
        if (type && streq(type, "registry")) {
                out->cred_type = REGISTRY_CRED_BASIC;
                if ((r = cred_string(v, "username", &out->username, err)) >= 0)
                        r = cred_string(v, "password", &out->password, err);
        } else if (type && streq(type, "aws")) {
                out->cred_type = REGISTRY_CRED_AWS;
                if ((r = cred_string(v, "awsAccessKeyId", &out->aws_key_id, err)) >= 0 &&
                    (r = cred_string(v, "awsSecretAccessKey", &out->aws_secret, err)) >= 0)
                        r = cred_string(v, "awsRegion", &out->aws_region, err);
        } else if (type && streq(type, "gcp")) {
                /* Google registries take Basic auth as "_json_key" + the key file */
                out->cred_type = REGISTRY_CRED_GCP;
                r = cred_string(v, "serviceAccountJson", &out->password, err);
                if (r >= 0)
                        out->username = xstrdup("_json_key");
        } else {
                r = cove_err_set(err, EINVAL,
                                 "fromImageRegistry: field 'type' must be registry, aws or gcp");
        }
        json_decref(parsed);
        return r;
}

static int parse_build(json_t *body, bool allow_build_id, bool e2b, struct build_req *ret,
                       struct cove_err **err);

int build_req_parse(json_t *body, bool allow_build_id, struct build_req *ret, struct cove_err **err)
{
        return parse_build(body, allow_build_id, false, ret, err);
}

int build_req_parse_e2b(json_t *body, struct build_req *ret, struct cove_err **err)
{
        return parse_build(body, false, true, ret, err);
}

static int parse_build(json_t *body, bool allow_build_id, bool e2b, struct build_req *ret,
                       struct cove_err **err)
{
        struct raw_build raw = { 0 };
        struct build_req out = { 0 };
        int r = 0;

        if (body && !json_is_null(body))
                r = json_dispatch(body, build_fields, &raw, err);
        if (r >= 0 && raw.from_template && raw.from_image)
                r = cove_err_set(err, EINVAL, "fromTemplate and fromImage cannot be used together");
        if (r >= 0 && raw.from_image) {
                struct image_ref ref = { 0 };
                r = image_ref_parse(raw.from_image, &ref, err);
                if (r < 0)
                        cove_err_wrap(err, "field 'fromImage'");
                image_ref_free(&ref);
        }
        if (r >= 0 && raw.from_template && !*raw.from_template)
                r = cove_err_set(err, EINVAL, "field 'fromTemplate' must not be empty");
        if (r >= 0 && raw.registry && !json_is_null(raw.registry))
                r = parse_registry(raw.registry, &out, err);
        if (r >= 0 && raw.steps && !json_is_null(raw.steps)) {
                r = build_steps_from_json_flags(raw.steps, e2b ? BUILD_STEPS_E2B : 0, &out.steps,
                                                &out.n_steps, &out.legacy_hash, err);
                out.has_steps = r >= 0;
        }
        if (r >= 0 && raw.files_hash) {
                if (!sha256_hex_valid(raw.files_hash))
                        r = cove_err_set(err, EINVAL,
                                         "field 'filesHash' must be 64 lower-case hex characters");
                else if (out.legacy_hash && !streq(out.legacy_hash, raw.files_hash))
                        r = cove_err_set(
                                err, EINVAL,
                                "legacy context/files steps and filesHash may use only one "
                                "distinct hash per build");
        }
        if (r >= 0 && allow_build_id && raw.build_id)
                r = build_id_check(raw.build_id, err);

        if (r >= 0) {
                out.from_template = TAKE_PTR(raw.from_template);
                out.from_image = TAKE_PTR(raw.from_image);
                out.force = raw.force;
                out.files_hash = TAKE_PTR(raw.files_hash);
                out.start_cmd = TAKE_PTR(raw.start_cmd);
                out.ready_cmd = TAKE_PTR(raw.ready_cmd);
                if (allow_build_id)
                        out.build_id = TAKE_PTR(raw.build_id);
                out.e2b = e2b;
        }
        free(raw.from_template);
        free(raw.from_image);
        json_decref(raw.registry);
        json_decref(raw.steps);
        free(raw.files_hash);
        free(raw.start_cmd);
        free(raw.ready_cmd);
        free(raw.build_id);
        if (r < 0) {
                build_req_release(&out);
                return r;
        }
        *ret = out;
        return 0;
}
