/* SPDX-License-Identifier: MIT */
#include "runtime/config.h"

#include "lib/fdutil.h"
#include "lib/json.h"
#include "lib/macro.h"

#include <jansson.h>

#include "lib/banned.h"

struct raw_config {
        char *id, *state_dir, *init, *agent, *agent_socket, *upper_dir, *work_dir;
        char **layers;
        json_t *binds, *cgroup, *volumes, *files, *userns, *disk;
};

struct raw_cgroup {
        char *name;
        struct json_int cpu_count, memory_mb, pids_max, io_weight, cpu_weight;
};

struct raw_userns {
        struct json_int uid, gid, count;
};

struct raw_disk {
        char *image, *golden;
        struct json_int size_mb;
};

static const struct json_field config_fields[] = {
        { "id", json_take_str, offsetof(struct raw_config, id), JSON_MANDATORY, 0, 64 },
        { "state_dir", json_take_str, offsetof(struct raw_config, state_dir), JSON_MANDATORY, 0,
          4000 },
        { "layers", json_take_strv, offsetof(struct raw_config, layers), JSON_MANDATORY, 0, 0 },
        { "binds", json_take_json, offsetof(struct raw_config, binds), 0, 0, 0 },
        { "volumes", json_take_json, offsetof(struct raw_config, volumes), 0, 0, 0 },
        { "init", json_take_str, offsetof(struct raw_config, init), JSON_MANDATORY, 0, 4000 },
        { "agent", json_take_str, offsetof(struct raw_config, agent), JSON_MANDATORY, 0, 4000 },
        { "agent_socket", json_take_str, offsetof(struct raw_config, agent_socket), JSON_MANDATORY,
          0, 107 },
        { "cgroup", json_take_json, offsetof(struct raw_config, cgroup), JSON_MANDATORY, 0, 0 },
        { "upper_dir", json_take_str, offsetof(struct raw_config, upper_dir), 0, 0, 4000 },
        { "work_dir", json_take_str, offsetof(struct raw_config, work_dir), 0, 0, 4000 },
        { "files", json_take_json, offsetof(struct raw_config, files), 0, 0, 0 },
        { "userns", json_take_json, offsetof(struct raw_config, userns), 0, 0, 0 },
        { "disk", json_take_json, offsetof(struct raw_config, disk), 0, 0, 0 },
        {}
};

/* Host ids 1..2^32-2: mapping onto host root would defeat the namespace. */
static const struct json_field userns_fields[] = {
        { "uid", json_take_int, offsetof(struct raw_userns, uid), JSON_MANDATORY, 1,
          UINT32_MAX - 1 },
        { "gid", json_take_int, offsetof(struct raw_userns, gid), JSON_MANDATORY, 1,
          UINT32_MAX - 1 },
        { "count", json_take_int, offsetof(struct raw_userns, count), JSON_MANDATORY, 1,
          SANDBOX_USERNS_COUNT },
        {}
};

static const struct json_field disk_fields[] = {
        { "image", json_take_str, offsetof(struct raw_disk, image), JSON_MANDATORY, 0, 4000 },
        { "golden", json_take_str, offsetof(struct raw_disk, golden), JSON_MANDATORY, 0, 4000 },
        { "size_mb", json_take_int, offsetof(struct raw_disk, size_mb), JSON_MANDATORY, 16,
          SANDBOX_DISK_MAX_MB },
        {}
};

static const struct json_field cgroup_fields[] = {
        { "name", json_take_str, offsetof(struct raw_cgroup, name), JSON_MANDATORY, 0, 255 },
        { "cpu_count", json_take_int, offsetof(struct raw_cgroup, cpu_count), 0, 0, 1024 },
        { "memory_mb", json_take_int, offsetof(struct raw_cgroup, memory_mb), 0, 0, 1LL << 32 },
        { "pids_max", json_take_int, offsetof(struct raw_cgroup, pids_max), 0, 0, 1 << 22 },
        { "io_weight", json_take_int, offsetof(struct raw_cgroup, io_weight), 0, 0, 10000 },
        { "cpu_weight", json_take_int, offsetof(struct raw_cgroup, cpu_weight), 0, 0, 10000 },
        {}
};

struct sandbox_config *sandbox_config_free(struct sandbox_config *c)
{
        if (!c)
                return NULL;
        free(c->id);
        free(c->state_dir);
        strv_free(c->layers);
        for (size_t i = 0; i < c->n_binds; i++) {
                free(c->binds[i].source);
                free(c->binds[i].target);
        }
        free(c->binds);
        for (size_t i = 0; i < c->n_volumes; i++) {
                free(c->volumes[i].image);
                free(c->volumes[i].target);
                if (c->volumes[i].mnt_fd >= 0)
                        (void)close(c->volumes[i].mnt_fd);
        }
        free(c->volumes);
        free(c->init);
        free(c->agent);
        free(c->agent_socket);
        free(c->cgroup_name);
        free(c->upper_dir);
        free(c->work_dir);
        for (size_t i = 0; i < c->n_files; i++) {
                free(c->files[i].path);
                free(c->files[i].content);
        }
        free(c->files);
        free(c->disk.image);
        free(c->disk.golden);
        free(c);
        return NULL;
}

static int check_abs(const char *what, const char *p, struct cove_err **err)
{
        if (p[0] != '/')
                return cove_err_set(err, EINVAL, "%s '%s' is not an absolute path", what, p);
        return 0;
}

static bool hostname_ok(const char *s)
{
        size_t l = strlen(s);
        if (l == 0 || l > 63)
                return false;
        for (const char *p = s; *p; p++)
                if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                      (*p >= '0' && *p <= '9') || *p == '-'))
                        return false;
        return true;
}

/* `volumes`: [{image, target}]; targets absolute, normalised, not "/", distinct. */
static int convert_volumes(json_t *v, struct sandbox_config *c, struct cove_err **err)
{
        int r;

        if (v && !json_is_array(v))
                return cove_err_set(err, EINVAL, "field 'volumes' must be an array");
        size_t n = v ? json_array_size(v) : 0;
        if (n > SANDBOX_MAX_VOLUMES)
                return cove_err_set(err, EINVAL, "field 'volumes' has more than %d entries",
                                    SANDBOX_MAX_VOLUMES);
        c->volumes = xzalloc((n + 1) * sizeof(*c->volumes));
        for (size_t i = 0; i < n; i++) {
                json_t *e = json_array_get(v, i);
                const char *img = json_string_value(json_object_get(e, "image"));
                const char *tgt = json_string_value(json_object_get(e, "target"));
                if (!img || !tgt)
                        return cove_err_set(err, EINVAL,
                                            "field 'volumes[%zu]' needs string image and target",
                                            i);
                c->volumes[i].image = xstrdup(img);
                c->volumes[i].target = xstrdup(tgt);
                c->volumes[i].mnt_fd = -1;
                c->n_volumes = i + 1;
                if ((r = check_abs("volume image", img, err)) < 0 ||
                    (r = check_abs("volume target", tgt, err)) < 0)
                        return r;
                if (streq(tgt, "/") || strstr(tgt, "/../") || strstr(tgt, "/./") ||
                    strstr(tgt, "//") || (strlen(tgt) >= 3 && streq(tgt + strlen(tgt) - 3, "/..")))
                        return cove_err_set(err, EINVAL, "volume target '%s' is not normalised",
                                            tgt);
                for (size_t k = 0; k < i; k++)
                        if (streq(c->volumes[k].target, tgt))
                                return cove_err_set(err, EINVAL, "volume target '%s' repeats", tgt);
        }
        return 0;
}

/* "files": [{path, content, mode?, append?}] (seedfiles.c writes them). */
static int convert_files(json_t *files, struct sandbox_config *c, struct cove_err **err)
{
        size_t n = files ? json_array_size(files) : 0;

        if (files && (!json_is_array(files) || n > SANDBOX_MAX_FILES))
                return cove_err_set(err, EINVAL, "field 'files' must be an array of at most %d",
                                    SANDBOX_MAX_FILES);
        c->files = xzalloc((n + 1) * sizeof(*c->files));
        for (size_t i = 0; i < n; i++) {
                json_t *f = json_array_get(files, i), *p = json_object_get(f, "path");
                json_t *t = json_object_get(f, "content"), *m = json_object_get(f, "mode");
                json_t *a = json_object_get(f, "append");
                int64_t mode = 0644;
                if (!json_is_string(p) || !json_is_string(t) || (a && !json_is_boolean(a)) ||
                    (m && (!json_get_integer(m, &mode) || mode < 0 || mode > 07777)) ||
                    json_string_length(t) > SANDBOX_FILE_MAX ||
                    strlen(json_string_value(t)) != json_string_length(t))
                        return cove_err_set(err, EINVAL,
                                            "field 'files[%zu]' is not {path, content}", i);
                c->files[i].path = xstrdup(json_string_value(p));
                c->files[i].content = xstrdup(json_string_value(t));
                c->files[i].mode = (uint32_t)mode;
                c->files[i].append = a && json_is_true(a);
                c->n_files = i + 1;
                if (c->files[i].path[0] != '/' || strstr(c->files[i].path, "/../") ||
                    strstr(c->files[i].path, "/./") || strstr(c->files[i].path, "//"))
                        return cove_err_set(err, EINVAL,
                                            "file path '%s' is not absolute and normalised",
                                            c->files[i].path);
        }
        return 0;
}

static int convert_userns(json_t *j, struct sandbox_userns *u, struct cove_err **err)
{
        struct raw_userns ru = { 0 };
        int r = json_dispatch(j, userns_fields, &ru, err);
        if (r < 0)
                return cove_err_wrap(err, "field 'userns'");
        if ((uint64_t)ru.uid.v + (uint64_t)ru.count.v > UINT32_MAX ||
            (uint64_t)ru.gid.v + (uint64_t)ru.count.v > UINT32_MAX)
                return cove_err_set(err, EINVAL, "field 'userns': range past the last id");
        *u = (struct sandbox_userns){ .set = true,
                                      .uid = (uint32_t)ru.uid.v,
                                      .gid = (uint32_t)ru.gid.v,
                                      .count = (uint32_t)ru.count.v };
        return 0;
}

static int convert_disk(json_t *j, struct sandbox_disk *d, struct cove_err **err)
{
        struct raw_disk rd = { 0 };
        int r = json_dispatch(j, disk_fields, &rd, err);
        if (r >= 0)
                r = check_abs("disk image", rd.image, err);
        if (r >= 0)
                r = check_abs("disk golden image", rd.golden, err);
        if (r < 0) {
                free(rd.image);
                free(rd.golden);
                return cove_err_wrap(err, "field 'disk'");
        }
        d->image = rd.image;
        d->golden = rd.golden;
        d->size_mb = (uint64_t)rd.size_mb.v;
        return 0;
}

static int convert(struct raw_config *raw, struct raw_cgroup *rc, struct sandbox_config *c,
                   struct cove_err **err)
{
        int r;

        if (!hostname_ok(raw->id))
                return cove_err_set(err, EINVAL, "field 'id': '%s' is not a valid sandbox id",
                                    raw->id);
        r = check_abs("state_dir", raw->state_dir, err);
        if (r < 0)
                return r;
        if ((r = check_abs("init", raw->init, err)) < 0 ||
            (r = check_abs("agent", raw->agent, err)) < 0 ||
            (r = check_abs("agent_socket", raw->agent_socket, err)) < 0)
                return r;
        size_t nl = strv_length(raw->layers);
        if (nl == 0 || nl > SANDBOX_MAX_LAYERS)
                return cove_err_set(err, EINVAL, "field 'layers' must have 1 to %d entries",
                                    SANDBOX_MAX_LAYERS);
        for (size_t i = 0; i < nl; i++) {
                r = check_abs("layer", raw->layers[i], err);
                if (r < 0)
                        return r;
                if (strpbrk(raw->layers[i], ":,"))
                        return cove_err_set(err, EINVAL, "layer '%s' contains ':' or ','",
                                            raw->layers[i]);
        }
        if (raw->binds && !json_is_array(raw->binds))
                return cove_err_set(err, EINVAL, "field 'binds' must be an array");
        size_t nb = raw->binds ? json_array_size(raw->binds) : 0;
        if (nb > SANDBOX_MAX_BINDS)
                return cove_err_set(err, EINVAL, "field 'binds' has more than %d entries",
                                    SANDBOX_MAX_BINDS);
        c->binds = xzalloc((nb + 1) * sizeof(*c->binds));
        for (size_t i = 0; i < nb; i++) {
                json_t *b = json_array_get(raw->binds, i);
                json_t *s = json_object_get(b, "source"), *t = json_object_get(b, "target");
                json_t *ro = json_object_get(b, "readonly");
                if (!json_is_string(s) || !json_is_string(t) || (ro && !json_is_boolean(ro)))
                        return cove_err_set(err, EINVAL,
                                            "field 'binds[%zu]' needs string source and target", i);
                c->binds[i].source = xstrdup(json_string_value(s));
                c->binds[i].target = xstrdup(json_string_value(t));
                c->binds[i].readonly = !ro || json_is_true(ro);
                c->n_binds = i + 1;
                if ((r = check_abs("bind source", c->binds[i].source, err)) < 0 ||
                    (r = check_abs("bind target", c->binds[i].target, err)) < 0)
                        return r;
                if (strstr(c->binds[i].target, "/../") || strstr(c->binds[i].target, "/./"))
                        return cove_err_set(err, EINVAL, "bind target '%s' is not normalised",
                                            c->binds[i].target);
        }
        r = convert_volumes(raw->volumes, c, err);
        if (r < 0)
                return r;
        if (!raw->upper_dir != !raw->work_dir)
                return cove_err_set(err, EINVAL, "fields 'upper_dir' and 'work_dir' go together");
        if (raw->upper_dir && ((r = check_abs("upper_dir", raw->upper_dir, err)) < 0 ||
                               (r = check_abs("work_dir", raw->work_dir, err)) < 0))
                return r;
        if (raw->upper_dir && (strpbrk(raw->upper_dir, ":,") || strpbrk(raw->work_dir, ":,")))
                return cove_err_set(err, EINVAL, "upper_dir or work_dir contains ':' or ','");
        /* one mount must hold both (overlayfs), and the helper clones their directory */
        if (raw->upper_dir && (strrchr(raw->upper_dir, '/') - raw->upper_dir !=
                                       strrchr(raw->work_dir, '/') - raw->work_dir ||
                               strncmp(raw->upper_dir, raw->work_dir,
                                       (size_t)(strrchr(raw->upper_dir, '/') - raw->upper_dir)) ||
                               !strrchr(raw->upper_dir, '/')[1] || !strrchr(raw->work_dir, '/')[1]))
                return cove_err_set(err, EINVAL,
                                    "upper_dir and work_dir must be entries of one directory");
        if (raw->upper_dir && raw->disk)
                return cove_err_set(err, EINVAL,
                                    "fields 'upper_dir' and 'disk' exclude each other");
        r = json_dispatch(raw->cgroup, cgroup_fields, rc, err);
        if (r < 0)
                return cove_err_wrap(err, "field 'cgroup'");
        r = convert_files(raw->files, c, err);
        if (r < 0)
                return r;
        if (raw->userns && (r = convert_userns(raw->userns, &c->userns, err)) < 0)
                return r;
        if (raw->disk && (r = convert_disk(raw->disk, &c->disk, err)) < 0)
                return r;
        c->id = TAKE_PTR(raw->id);
        c->state_dir = TAKE_PTR(raw->state_dir);
        c->layers = TAKE_PTR(raw->layers);
        c->init = TAKE_PTR(raw->init);
        c->agent = TAKE_PTR(raw->agent);
        c->agent_socket = TAKE_PTR(raw->agent_socket);
        c->upper_dir = TAKE_PTR(raw->upper_dir);
        c->work_dir = TAKE_PTR(raw->work_dir);
        c->cgroup_name = TAKE_PTR(rc->name);
        c->cpu_count = rc->cpu_count.set ? (uint32_t)rc->cpu_count.v : 0;
        c->memory_mb = rc->memory_mb.set ? (uint64_t)rc->memory_mb.v : 0;
        c->pids_max = rc->pids_max.set ? (uint32_t)rc->pids_max.v : 0;
        c->io_weight = rc->io_weight.set ? (uint32_t)rc->io_weight.v : 0;
        c->cpu_weight = rc->cpu_weight.set ? (uint32_t)rc->cpu_weight.v : 0;
        return 0;
}

int sandbox_config_load(const char *path, struct sandbox_config **ret, struct cove_err **err)
{
        cleanup_free char *text = NULL;
        size_t len = 0;
        json_t *root = NULL;
        struct raw_config raw = { 0 };
        struct raw_cgroup rc = { 0 };
        struct sandbox_config *c = xzalloc(sizeof(*c));
        int r;

        r = read_small_file(path, SANDBOX_CONFIG_MAX, &text, &len);
        if (r < 0) {
                r = cove_err_set(err, -r, "read config '%s': %m", path);
                goto out;
        }
        r = json_parse(text, len, false, &root, err);
        if (r >= 0)
                r = json_dispatch(root, config_fields, &raw, err);
        if (r >= 0)
                r = convert(&raw, &rc, c, err);
        if (r < 0)
                r = cove_err_wrap(err, "config '%s'", path);
out:
        json_decref(root);
        json_decref(raw.binds);
        json_decref(raw.cgroup);
        json_decref(raw.volumes);
        json_decref(raw.files);
        json_decref(raw.userns);
        json_decref(raw.disk);
        free(raw.id);
        free(raw.state_dir);
        free(raw.init);
        free(raw.agent);
        free(raw.agent_socket);
        free(raw.upper_dir);
        free(raw.work_dir);
        strv_free(raw.layers);
        free(rc.name);
        if (r < 0) {
                sandbox_config_free(c);
                return r;
        }
        *ret = c;
        return 0;
}
