/* SPDX-License-Identifier: MIT */
/*
 * builds.c — running builds (build-plane.md §7): a queue served by a fixed number of worker
 * threads (--max-concurrent-builds; more builds wait as `waiting`), each build resolving its
 * source (an OCI image, a template, the stored Dockerfile), then applying its steps. Every step
 * that changes the filesystem makes one layer keyed as §7.3 (cachekey.h): an existing layer is
 * a cache hit; otherwise COPY/files extract into a build sandbox's overlay through
 * /proc/<init>/root, RUN runs `/bin/sh -c` through the build sandbox's agent, and the overlay's
 * upper directory becomes the layer (docs/design/build-plane.md, "Build sandboxes"). Logs go
 * to the store as they come, so status polls see them live.
 *
 * Builds triggered through the E2B face (build_req.e2b) follow E2B's step conventions
 * (e2b.md §2.7): they begin as user `user` (created when the source lacks it) in /home/user,
 * RUN and COPY take a user, COPY a mode and the static part of its source, USER creates a
 * missing account, WORKDIR belongs to the build user, and the last USER becomes the E2B
 * face's default user of the template's sandboxes (config "e2bUser").
 */
#include "coved/templates/internal.h"

#include "build/cachekey.h"
#include "build/digest.h"
#include "build/ecr.h"
#include "build/dockerfile.h"
#include "build/extract.h"
#include "build/flatten.h"
#include "build/pull.h"
#include "build/upper.h"
#include "coved/agent_client.h"
#include "coved/engine/engine.h"
#include "coved/manager/manager.h"
#include "lib/b64.h"
#include "lib/fdutil.h"
#include "lib/frame.h"
#include "lib/log.h"
#include "lib/macro.h"
#include "lib/path.h"
#include "lib/rand.h"
#include "lib/timeutil.h"

#include <ctype.h>
#include <dirent.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <openssl/crypto.h>
#include <stdarg.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#include "lib/banned.h"

#define DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
#define LOG_LINE_MAX 8192

/* E2B's build user and its home (e2b.md §2.7) */
#define E2B_BUILD_USER "user"
#define E2B_BUILD_HOME "/home/user"

/* Creates user $1 when $2 is 1 (useradd as E2B does; else the adduser of busybox-like images;
 * else, in an image without account tools, the next free id >= 1000 written into /etc/passwd
 * and /etc/group), and grants it passwordless sudo when $3 is true. Run as root in the build
 * sandbox, so only the image's own tools and shell touch its account files. */
static const char E2B_ENSURE_USER[] =
        "u=\"$1\"\n"
        "if [ \"$2\" = 1 ]; then\n"
        "  if command -v useradd >/dev/null 2>&1; then useradd --create-home --shell /bin/bash "
        "\"$u\" || exit 1\n"
        "  elif command -v adduser >/dev/null 2>&1; then adduser -D -s /bin/sh \"$u\" || exit 1\n"
        "  else\n"
        "    n=999\n"
        "    for f in /etc/passwd /etc/group; do\n"
        "      [ -f \"$f\" ] || continue\n"
        "      while IFS=: read -r _a _b i _c; do\n"
        "        case \"$i\" in ''|*[!0-9]*) continue;; esac\n"
        "        if [ \"$i\" -gt \"$n\" ] && [ \"$i\" -lt 60000 ]; then n=$i; fi\n"
        "      done < \"$f\"\n"
        "    done\n"
        "    n=$((n + 1))\n"
        "    echo \"$u:x:$n:$n::/home/$u:/bin/sh\" >> /etc/passwd &&\n"
        "    echo \"$u:x:$n:\" >> /etc/group &&\n"
        "    mkdir -p \"/home/$u\" && chown \"$n:$n\" \"/home/$u\" || exit 1\n"
        "  fi\n"
        "fi\n"
        "if [ \"$3\" = true ]; then\n"
        "  mkdir -p /etc/sudoers.d && printf '%s ALL=(ALL:ALL) NOPASSWD: ALL\\n' \"$u\" > "
        "\"/etc/sudoers.d/$u\" && chmod 0440 \"/etc/sudoers.d/$u\" || exit 1\n"
        "fi\n";

/* ---- logs and terminal states ---- */

void build_log(struct coved *cd, const char *template_id, const char *build_id, const char *level,
               const char *step, const char *fmt, ...)
{
        char msg[LOG_LINE_MAX];
        va_list ap;
        va_start(ap, fmt);
        (void)vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        struct cove_err *err = NULL;
        if (store_build_log_append(cd->store, template_id, build_id, time_now_ms(), level, step,
                                   msg, &err) < 0) {
                log_warning("build '%s': log: %s", build_id, err->msg);
                cove_err_free(&err);
        }
}

void builds_mark_failed(struct coved *cd, const char *template_id, const char *build_id,
                        const char *status, const char *step, const char *message)
{
        struct build_rec *b = NULL;
        if (store_build_get(cd->store, template_id, build_id, &b, NULL) < 0)
                return;
        int64_t now = time_now_ms();
        free(b->status);
        b->status = xstrdup(status);
        free(b->error_message);
        b->error_message = xstrdup(message);
        free(b->error_step);
        b->error_step = step ? xstrdup(step) : NULL;
        b->updated_at = b->finished_at = now;
        (void)store_build_update(cd->store, b, NULL);
        build_rec_free(b);
}

int template_take_build_layers(struct coved *cd, struct template_rec *t, const struct build_rec *b,
                               struct cove_err **err)
{
        json_t *extra = NULL;
        json_t *paths = builder_mount_stack(cd->builder, b->layers,
                                            json_object_get(b->config, "basePaths"), &extra, err);
        if (!paths)
                return -EIO;
        if (json_array_size(extra) > 0) {
                /* the flattened bottom is a layer this build holds */
                char **v = xzalloc((json_array_size(extra) + 1) * sizeof(char *));
                size_t i;
                json_t *k;
                json_array_foreach (extra, i, k)
                        v[i] = xstrdup(json_string_value(k));
                (void)store_build_layers_add(cd->store, t->id, b->id, v, NULL);
                strv_free(v);
        }
        json_decref(extra);
        json_decref(t->layers);
        t->layers = paths;
        json_t *binds = json_object_get(b->config, "binds");
        json_decref(t->binds);
        t->binds = binds ? json_deep_copy(binds) : json_array();
        json_decref(t->build_config);
        t->build_config = json_deep_copy(b->config);
        return 0;
}

int builds_mark_ready(struct coved *cd, struct template_rec *t, struct build_rec *b,
                      struct cove_err **err)
{
        int64_t now = time_now_ms();
        int r;

        if (!streq(b->status, "ready")) {
                free(b->status);
                b->status = xstrdup("ready");
                b->updated_at = b->finished_at = now;
                r = store_build_update(cd->store, b, err);
                if (r < 0)
                        return r;
                size_t i;
                json_t *tag;
                json_array_foreach (b->tags, i, tag)
                        (void)store_tag_set(cd->store, t->id, json_string_value(tag), b->id, now,
                                            NULL);
                /* another build became ready: a rollback pin ends (§10) */
                if (t->pinned_build_id && !streq(t->pinned_build_id, b->id)) {
                        free(t->pinned_build_id);
                        t->pinned_build_id = NULL;
                }
        }
        /* the current build: what new sandboxes are made of */
        free(t->build_id);
        t->build_id = xstrdup(b->id);
        free(t->build_status);
        t->build_status = xstrdup("ready");
        if (template_take_build_layers(cd, t, b, err) < 0)
                return -EIO;
        /* the build's startCmd/readyCmd (request, Dockerfile CMD) become the template's, which
         * a later PATCH may change again for sandboxes created afterwards */
        const char *sc = json_string_value(json_object_get(b->config, "startCmd"));
        const char *rc = json_string_value(json_object_get(b->config, "readyCmd"));
        if (sc) {
                free(t->start_cmd);
                t->start_cmd = xstrdup(sc);
        }
        if (rc) {
                free(t->ready_cmd);
                t->ready_cmd = xstrdup(rc);
        }
        int64_t port = 0;
        if (json_get_integer(json_object_get(b->config, "port"), &port) && !t->port)
                t->port = port;
        t->updated_at = now;
        return store_template_update(cd->store, t, err);
}

/* ---- the queue ---- */

void build_job_free(struct build_job *j)
{
        if (!j)
                return;
        free(j->template_id);
        free(j->build_id);
        free(j->team_id);
        free(j->key_id);
        free(j->cancel_reason);
        build_req_release(&j->req);
        free(j);
}

void builder_enqueue(struct builder *b, struct build_job *job)
{
        pthread_mutex_lock(&b->lock);
        struct build_job **p = &b->queue;
        while (*p)
                p = &(*p)->next;
        job->next = NULL;
        *p = job;
        /* broadcast: the GC thread waits on the same condition */
        pthread_cond_broadcast(&b->cond);
        pthread_mutex_unlock(&b->lock);
}

void builder_cancel_template(struct builder *b, const char *template_id, const char *reason)
{
        struct build_job *dropped = NULL;

        pthread_mutex_lock(&b->lock);
        for (struct build_job **p = &b->queue; *p;) {
                if (streq((*p)->template_id, template_id)) {
                        struct build_job *j = *p;
                        *p = j->next;
                        j->next = dropped;
                        dropped = j;
                } else {
                        p = &(*p)->next;
                }
        }
        for (struct build_job *j = b->running; j; j = j->next)
                if (streq(j->template_id, template_id) && !j->cancel) {
                        j->cancel = 1;
                        free(j->cancel_reason);
                        j->cancel_reason = xstrdup(reason);
                }
        pthread_mutex_unlock(&b->lock);
        while (dropped) {
                struct build_job *j = dropped;
                dropped = j->next;
                build_job_free(j);
        }
}

/* ---- one build ---- */

struct run {
        struct builder *b;
        struct coved *cd;
        struct build_job *job;
        struct template_rec *t;
        struct build_rec *rec;
        /* the filesystem so far, bottom → top */
        char **keys;
        size_t n_keys;
        json_t *binds;      /* of a host-userland base */
        json_t *base_paths; /* host directories under our layers (host-userland base), top first */
        /* what later steps run with */
        char **env; /* "K=V" */
        char *workdir;
        char *user;
        char *start_cmd, *ready_cmd;
        int port;
        bool force;
        char step[16];
        char *error_step;
};

static void run_release(struct run *rn)
{
        strv_free(rn->keys);
        json_decref(rn->binds);
        json_decref(rn->base_paths);
        strv_free(rn->env);
        free(rn->workdir);
        free(rn->user);
        free(rn->start_cmd);
        free(rn->ready_cmd);
        free(rn->error_step);
        template_rec_free(rn->t);
        build_rec_free(rn->rec);
}

static void rlog(struct run *rn, const char *level, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
static void rlog(struct run *rn, const char *level, const char *fmt, ...)
{
        char msg[LOG_LINE_MAX];
        va_list ap;
        va_start(ap, fmt);
        (void)vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        build_log(rn->cd, rn->job->template_id, rn->job->build_id, level, rn->step, "%s", msg);
}

static bool cancelled(struct run *rn, struct cove_err **err)
{
        bool c;
        pthread_mutex_lock(&rn->b->lock);
        c = rn->job->cancel;
        pthread_mutex_unlock(&rn->b->lock);
        if (c)
                return cove_err_set(err, ECANCELED, "cancelled"), true;
        if (time_mono_ms() - rn->job->started_mono_ms > BUILD_TIMEOUT_MS)
                return cove_err_set(err, ETIMEDOUT, "the build ran over 60 minutes"), true;
        return false;
}

static void push_key(struct run *rn, const char *key)
{
        rn->keys = xrealloc(rn->keys, (rn->n_keys + 2) * sizeof(char *));
        rn->keys[rn->n_keys++] = xstrdup(key);
        rn->keys[rn->n_keys] = NULL;
}

static void env_set(char ***env, const char *k, const char *v)
{
        size_t kl = strlen(k), n = strv_length(*env);
        for (size_t i = 0; i < n; i++)
                if (strncmp((*env)[i], k, kl) == 0 && (*env)[i][kl] == '=') {
                        free((*env)[i]);
                        (*env)[i] = xasprintf("%s=%s", k, v);
                        return;
                }
        *env = xrealloc(*env, (n + 2) * sizeof(char *));
        (*env)[n] = xasprintf("%s=%s", k, v);
        (*env)[n + 1] = NULL;
}

static void stack_key(struct run *rn, char out[65])
{
        cache_key_stack((const char *const *)rn->keys, rn->n_keys, out);
}

/* Records that this build holds key (before the layer exists: GC keeps it). */
static int hold_layer(struct run *rn, const char *key, struct cove_err **err)
{
        char *one[] = { (char *)key, NULL };
        return store_build_layers_add(rn->cd->store, rn->job->template_id, rn->job->build_id, one,
                                      err);
}

/* ---- the source ---- */

static void log_pull(void *ud, const char *msg)
{
        struct run *rn = ud;
        rlog(rn, "info", "%s", msg);
}

static int source_image(struct run *rn, const char *ref, struct cove_err **err)
{
        struct build_req *q = &rn->job->req;
        struct oci_pull_opts po = {
                .blobs = rn->b->blobs,
                .registry = { .mirrors = rn->b->mirrors,
                              .n_mirrors = rn->b->n_mirrors,
                              .cancel = &rn->job->cancel },
                .log = log_pull,
                .log_ud = rn,
        };
        struct oci_image *img = NULL;
        cleanup_free char *ecr_user = NULL;
        char *ecr_password = NULL;
        int r;

        if (q->cred_type == REGISTRY_CRED_AWS) {
                /* build-plane.md §7.1: AWS keys become ECR's registry credentials */
                struct ecr_opts eo = { .access_key_id = q->aws_key_id,
                                       .secret_access_key = q->aws_secret,
                                       .region = q->aws_region,
                                       .endpoint = rn->cd->cfg.aws_ecr_endpoint,
                                       .cancel = &rn->job->cancel };
                rlog(rn, "info", "getting registry credentials from ECR (%s)", q->aws_region);
                r = ecr_login(&eo, &ecr_user, &ecr_password, err);
                if (r < 0)
                        return cove_err_wrap(err, "pull '%s'", ref);
                po.registry.username = ecr_user;
                po.registry.password = ecr_password;
        }
        if (q->cred_type == REGISTRY_CRED_BASIC || q->cred_type == REGISTRY_CRED_GCP) {
                po.registry.username = q->username;
                po.registry.password = q->password;
        }
        rlog(rn, "info", "pulling image %s", ref);
        r = oci_pull(ref, &po, &img, err);
        if (ecr_password) {
                OPENSSL_cleanse(ecr_password, strlen(ecr_password));
                free(ecr_password);
        }
        if (r >= 0)
                r = oci_image_unpack(img, rn->b->blobs, rn->b->layers, &rn->job->cancel, log_pull,
                                     rn, err);
        if (r < 0) {
                oci_image_free(img);
                return r;
        }
        for (size_t i = 0; i < img->n_layers; i++) {
                r = hold_layer(rn, img->layers[i].key, err);
                if (r < 0)
                        break;
                push_key(rn, img->layers[i].key);
        }
        if (r >= 0) {
                /* §7.9: the image's Env (PATH when it sets none), WorkingDir, User */
                bool has_path = false;
                for (char **e = img->config->env; *e; e++) {
                        const char *eq = strchr(*e, '=');
                        cleanup_free char *k = xstrndup(*e, (size_t)(eq - *e));
                        has_path |= streq(k, "PATH");
                        env_set(&rn->env, k, eq + 1);
                }
                if (!has_path)
                        env_set(&rn->env, "PATH", DEFAULT_PATH);
                free(rn->workdir);
                rn->workdir = xstrdup(
                        img->config->workdir && *img->config->workdir ? img->config->workdir : "/");
                free(rn->user);
                rn->user = xstrdup(img->config->user && *img->config->user ? img->config->user
                                                                           : "root");
                if (img->config->port && !rn->port)
                        rn->port = img->config->port;
                rlog(rn, "info", "image %s: %zu layers (%s)", img->name, img->n_layers,
                     img->manifest_digest);
        }
        oci_image_free(img);
        return r;
}

static int source_template(struct run *rn, const char *ref, struct cove_err **err)
{
        struct tpl_caller c = { .team_id = rn->job->team_id, .key_id = rn->job->key_id };
        cleanup_free char *tid = NULL, *tagged = NULL;
        struct template_rec *t = NULL;
        struct build_rec *b = NULL;
        const char *colon = strrchr(ref, ':');
        cleanup_free char *base = colon ? xstrndup(ref, (size_t)(colon - ref)) : xstrdup(ref);
        int r = templates_resolve_id(rn->cd, &c, base, &tid, err);
        if (r < 0)
                return cove_err_wrap(err, "fromTemplate");
        r = store_template_get(rn->cd->store, tid, &t, err);
        if (r < 0)
                return r;
        if (colon && store_tag_get(rn->cd->store, tid, colon + 1, &tagged, NULL) < 0) {
                template_rec_free(t);
                return cove_err_set(err, ENOENT, "tag '%s' not found on template '%s'", colon + 1,
                                    base);
        }
        const char *bid = tagged ? tagged : t->build_id;
        rlog(rn, "info", "from template %s (%s)", ref, t->id);
        if (bid && store_build_get(rn->cd->store, tid, bid, &b, NULL) == 0 &&
            json_array_size(b->layers) > 0) {
                size_t i;
                json_t *k;
                json_array_foreach (b->layers, i, k) {
                        r = hold_layer(rn, json_string_value(k), err);
                        if (r < 0)
                                break;
                        push_key(rn, json_string_value(k));
                }
                json_t *env = json_object_get(b->config, "env");
                json_array_foreach (env, i, k) {
                        const char *e = json_string_value(k), *eq = e ? strchr(e, '=') : NULL;
                        if (eq) {
                                cleanup_free char *kk = xstrndup(e, (size_t)(eq - e));
                                env_set(&rn->env, kk, eq + 1);
                        }
                }
                json_t *bb = json_object_get(b->config, "binds");
                if (bb)
                        rn->binds = json_deep_copy(bb);
                json_t *bp = json_object_get(b->config, "basePaths");
                if (bp)
                        rn->base_paths = json_deep_copy(bp);
        } else if (json_array_size(t->layers) > 0) {
                /* a template made outside the build plane (the host-userland defaults): its
                 * root directory is the base, kept as it is (not a layer of the store) */
                rn->binds = json_deep_copy(t->binds);
                rn->base_paths = json_deep_copy(t->layers);
                env_set(&rn->env, "PATH", DEFAULT_PATH);
                /* not a layer of the store: a name for the cache keys only */
                cleanup_free char *joined = json_dumps(t->layers, JSON_COMPACT);
                char h[65];
                sha256_hex(joined, strlen(joined), h);
                cleanup_free char *pseudo = xasprintf("host:%s", h);
                push_key(rn, pseudo);
        } else {
                r = cove_err_set(err, ENOENT, "template '%s' has no ready build", ref);
        }
        /* its stored environment (§7.9) */
        const char *k;
        json_t *v;
        json_object_foreach (t->envs, k, v)
                env_set(&rn->env, k, json_string_value(v));
        free(rn->workdir);
        rn->workdir = xstrdup(t->workdir ? t->workdir : "/");
        template_rec_free(t);
        build_rec_free(b);
        return r;
}

/* ---- where uploads and layers are on the host ---- */

char *builder_file_path(struct builder *b, const char *team_id, const char *hash)
{
        return xasprintf("%s/%s/%s.tar.gz", b->files_dir, team_id, hash);
}

json_t *layer_paths_top_first(struct builder *b, const json_t *keys_bottom_up)
{
        json_t *a = json_array();
        for (size_t i = json_array_size(keys_bottom_up); i-- > 0;) {
                cleanup_free char *p = layer_store_path(
                        b->layers, json_string_value(json_array_get(keys_bottom_up, i)));
                if (p)
                        json_array_append_new(a, json_string(p));
        }
        return a;
}

/* ---- build sandboxes ---- */

struct bsb {
        char id[24];
        struct engine_identity who;
        bool started;
        bool uid_block; /* holds a block of host uids (manager_uid_block_acquire) */
};

/* What one overlay mount can take: mount(2) options are one page, and upperdir/workdir need
 * room too. A deeper stack has its bottom flattened into one layer (flatten.h), once per
 * distinct stack (the flattened layer is keyed by what it holds). */
#define STACK_OPTS_BUDGET 3000

json_t *builder_mount_stack(struct builder *b, const json_t *keys_bottom_up,
                            const json_t *base_paths, json_t **ret_extra_keys,
                            struct cove_err **err)
{
        size_t n = json_array_size(keys_bottom_up);
        size_t base_len = 0, i;
        json_t *p;
        json_array_foreach (base_paths, i, p)
                base_len += json_string_length(p) + 1;
        size_t per = strlen(layer_store_dir(b->layers)) + 1 + 64 + 1;
        size_t fit = base_len + per * n <= STACK_OPTS_BUDGET
                             ? n
                             : (STACK_OPTS_BUDGET > base_len + per
                                        ? (STACK_OPTS_BUDGET - base_len) / per - 1
                                        : 0);
        json_t *keys = json_array();
        if (ret_extra_keys)
                *ret_extra_keys = json_array();
        if (fit < n) {
                /* keys[0 .. n-fit) become one layer; only store layers can be flattened */
                size_t cut = n - fit;
                char **v = xzalloc((cut + 1) * sizeof(char *));
                size_t k = 0;
                for (i = 0; i < cut; i++) {
                        const char *key = json_string_value(json_array_get(keys_bottom_up, i));
                        if (key && sha256_hex_valid(key))
                                v[k++] = xstrdup(key);
                }
                char flat[65];
                int r = layer_flatten(b->layers, v, k, flat, NULL, err);
                strv_free(v);
                if (r < 0) {
                        json_decref(keys);
                        return NULL;
                }
                json_array_append_new(keys, json_string(flat));
                if (ret_extra_keys)
                        json_array_append_new(*ret_extra_keys, json_string(flat));
                for (i = cut; i < n; i++)
                        json_array_append(keys, json_array_get(keys_bottom_up, i));
        } else {
                json_array_extend(keys, (json_t *)keys_bottom_up);
        }
        json_t *paths = layer_paths_top_first(b, keys);
        json_decref(keys);
        json_array_foreach (base_paths, i, p)
                json_array_append(paths, p);
        return paths;
}

/* The layer paths of the filesystem so far, topmost first, for the overlay. */
static json_t *stack_paths(struct run *rn)
{
        json_t *keys = json_array();
        for (size_t i = 0; i < rn->n_keys; i++)
                json_array_append_new(keys, json_string(rn->keys[i]));
        json_t *extra = NULL;
        struct cove_err *err = NULL;
        json_t *paths = builder_mount_stack(rn->b, keys, rn->base_paths, &extra, &err);
        if (!paths) {
                log_warning("build '%s': flatten the stack: %s", rn->job->build_id, err->msg);
                cove_err_free(&err);
                paths = json_array();
        }
        size_t i;
        json_t *k;
        json_array_foreach (extra, i, k)
                (void)hold_layer(rn, json_string_value(k), NULL);
        json_decref(extra);
        json_decref(keys);
        return paths;
}

/* Starts a build sandbox over the stack, writing into upper (a directory of the layer store).
 * With userns (RUN steps: image code runs), sandbox root is an unprivileged host uid, like any
 * sandbox's; the runtime idmaps upper's directory so that the files land with the ids the
 * step saw (image ids as host ids). */
static int bsb_start(struct run *rn, struct bsb *s, const char *upper, const char *work,
                     bool userns, struct cove_err **err)
{
        json_auto_t *layers = stack_paths(rn);
        json_auto_t *binds = rn->binds ? json_incref(rn->binds) : json_array();
        int r;

        if (json_array_size(layers) == 0) {
                /* FROM scratch-like: an empty base to mount */
                return cove_err_set(err, EINVAL, "the build has no base filesystem");
        }
        /* "build-…": a '-' no user sandbox ID has, so a restart finds leftovers by name */
        memcpy(s->id, "build-", 6);
        random_alnum(s->id + 6, 14);
        int64_t uid_base = 0;
        if (userns) {
                r = manager_uid_block_acquire(rn->cd, s->id, &uid_base, err);
                if (r < 0)
                        return cove_err_wrap(err, "start the build sandbox");
                s->uid_block = true;
        }
        struct engine_spec spec = {
                .id = s->id,
                .layers = layers,
                .binds = binds,
                .cpu_count =
                        rn->t->cpu_count > 0 ? rn->t->cpu_count : rn->cd->cfg.default_cpu_count,
                .memory_mb =
                        rn->t->memory_mb > 0 ? rn->t->memory_mb : rn->cd->cfg.default_memory_mb,
                .disk_mb = rn->t->disk_size_mb,
                .pids_max = rn->cd->cfg.pids_max,
                .upper_dir = upper,
                .work_dir = work,
                .uid_base = uid_base,
        };
        pthread_mutex_lock(&rn->b->lock);
        (void)snprintf(rn->job->sandbox_id, sizeof(rn->job->sandbox_id), "%s", s->id);
        pthread_mutex_unlock(&rn->b->lock);
        r = engine_start(rn->cd, &spec, &s->who, err);
        if (r < 0)
                return cove_err_wrap(err, "start the build sandbox");
        s->started = true;
        r = agent_client_ping(rn->cd, s->id, 60 * 1000, err);
        if (r < 0)
                return cove_err_wrap(err, "build sandbox agent");
        return 0;
}

static void bsb_stop(struct run *rn, struct bsb *s)
{
        if (s->id[0]) {
                struct cove_err *err = NULL;
                if (engine_destroy(rn->cd, s->id, s->started ? &s->who : NULL, &err) < 0) {
                        log_warning("build sandbox '%s': destroy: %s", s->id, err->msg);
                        cove_err_free(&err);
                } else if (s->uid_block) {
                        manager_uid_block_release(rn->cd, s->id);
                }
        }
        pthread_mutex_lock(&rn->b->lock);
        rn->job->sandbox_id[0] = '\0';
        pthread_mutex_unlock(&rn->b->lock);
        *s = (struct bsb){ 0 };
}

/* A line-splitting log sink for a step's output. */
struct out_lines {
        struct run *rn;
        struct buf line[2]; /* stdout, stderr */
};

static void out_flush(struct out_lines *o, int which, bool all)
{
        struct buf *b = &o->line[which];
        const char *level = which ? "warn" : "info";
        for (;;) {
                const char *s = buf_str(b);
                const char *nl = memchr(s, '\n', b->len);
                if (!nl && !(all && b->len) && b->len < LOG_LINE_MAX - 1)
                        return;
                size_t n = nl ? (size_t)(nl - s) : b->len;
                rlog(o->rn, level, "%.*s", (int)n, s);
                size_t rest = b->len - (nl ? n + 1 : n);
                memmove(b->ptr, s + (b->len - rest), rest);
                b->len = rest;
                b->ptr[rest] = '\0';
                if (!rest)
                        return;
        }
}

static void out_add(struct out_lines *o, int which, const char *b64)
{
        unsigned char *data = NULL;
        size_t n = 0;
        if (b64_decode(b64, strlen(b64), 0, &data, &n) < 0)
                return;
        if (buf_add(&o->line[which], data, n) < 0)
                buf_init(&o->line[which], 1 << 20);
        free(data);
        out_flush(o, which, false);
}

/* Runs argv in the build sandbox through the agent, streaming its output into the log.
 * 0 when it exited 0. */
static int bsb_run(struct run *rn, struct bsb *s, json_t *argv, json_t *envs, struct cove_err **err)
{
        cleanup_close int fd = agent_client_connect(rn->cd, s->id, 0, err);
        if (fd < 0)
                return fd;
        int64_t left = BUILD_TIMEOUT_MS - (time_mono_ms() - rn->job->started_mono_ms);
        json_t *proc = json_pack("{s:O,s:O,s:O,s:s}", "cmd", json_array_get(argv, 0), "args",
                                 json_array_size(argv) > 1 ? argv : json_array(), "envs", envs,
                                 "cwd", rn->workdir);
        if (json_array_size(argv) > 1) {
                json_t *args = json_array();
                for (size_t i = 1; i < json_array_size(argv); i++)
                        json_array_append(args, json_array_get(argv, i));
                json_object_set_new(proc, "args", args);
        }
        json_auto_t *req = json_pack("{s:s,s:s,s:{s:o,s:b,s:I}}", "op", "process.Start", "user",
                                     rn->user, "body", "process", proc, "stdin", 0, "timeoutMs",
                                     (json_int_t)MAX(left, (int64_t)1000));
        json_object_set_new(req, "env", json_object());
        json_object_set_new(req, "workdir", json_string(rn->workdir));
        int r = agent_client_send_json(fd, req, err);
        if (r < 0)
                return r;
        struct out_lines o = { .rn = rn };
        buf_init(&o.line[0], 1 << 20);
        buf_init(&o.line[1], 1 << 20);
        int64_t exit_code = -1;
        char *failure = NULL;
        json_t *first = NULL;
        r = agent_client_read_json(fd, &first, err);
        if (r >= 0) {
                int64_t st = 0;
                (void)json_get_integer(json_object_get(first, "status"), &st);
                if (st != 200) {
                        const char *m = json_string_value(json_object_get(first, "message"));
                        r = cove_err_set(err, EINVAL, "%s", m ? m : "the command could not start");
                }
        }
        json_decref(first);
        while (r >= 0) {
                json_t *f = NULL;
                if (cancelled(rn, err)) {
                        r = -ECANCELED;
                        break;
                }
                r = agent_client_read_json(fd, &f, err);
                if (r < 0)
                        break;
                if (json_is_true(json_object_get(f, "end"))) {
                        json_decref(f);
                        break;
                }
                json_t *ev = json_object_get(json_object_get(json_object_get(f, "msg"), "event"),
                                             "data");
                if (ev) {
                        if (json_is_string(json_object_get(ev, "stdout")))
                                out_add(&o, 0, json_string_value(json_object_get(ev, "stdout")));
                        if (json_is_string(json_object_get(ev, "stderr")))
                                out_add(&o, 1, json_string_value(json_object_get(ev, "stderr")));
                }
                json_t *end =
                        json_object_get(json_object_get(json_object_get(f, "msg"), "event"), "end");
                if (end) {
                        (void)json_get_integer(json_object_get(end, "exitCode"), &exit_code);
                        if (json_is_string(json_object_get(end, "error")) && !failure)
                                failure = xstrdup(json_string_value(json_object_get(end, "error")));
                }
                json_decref(f);
        }
        out_flush(&o, 0, true);
        out_flush(&o, 1, true);
        buf_release(&o.line[0]);
        buf_release(&o.line[1]);
        if (r >= 0 && exit_code != 0) {
                if (failure)
                        r = cove_err_set(err, EIO, "the command failed: %s", failure);
                else
                        r = cove_err_set(err, EIO, "the command exited with status %lld",
                                         (long long)exit_code);
        }
        free(failure);
        return r;
}

/* ---- reading the filesystem so far (no sandbox needed) ---- */

static long open_in_layer(const char *root, const char *rel, int flags)
{
        cleanup_close int rfd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (rfd < 0)
                return -1;
        struct open_how how = { .flags = (uint64_t)(flags | O_CLOEXEC),
                                .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS };
        return syscall(SYS_openat2, rfd, rel, &how, sizeof(how));
}

/* The topmost version of a small file in the stack (NULL when absent or deleted). */
static char *stack_read(struct run *rn, const char *rel, size_t max)
{
        json_auto_t *paths = stack_paths(rn);
        for (size_t i = 0; i < json_array_size(paths); i++) {
                const char *root = json_string_value(json_array_get(paths, i));
                cleanup_close int pfd = (int)open_in_layer(root, rel, O_PATH | O_NOFOLLOW);
                struct stat st;
                if (pfd < 0 || fstat(pfd, &st) < 0)
                        continue;
                if (!S_ISREG(st.st_mode))
                        return NULL; /* a whiteout or something else hides lower versions */
                cleanup_close int fd = (int)open_in_layer(root, rel, O_RDONLY | O_NOFOLLOW);
                char *data = NULL;
                size_t len;
                cleanup_free char *proc = xasprintf("/proc/self/fd/%d", fd);
                if (fd >= 0 && read_small_file(proc, max, &data, &len) == 0)
                        return data;
                return NULL;
        }
        return NULL;
}

static bool stack_has_dir(struct run *rn, const char *rel)
{
        json_auto_t *paths = stack_paths(rn);
        for (size_t i = 0; i < json_array_size(paths); i++) {
                const char *root = json_string_value(json_array_get(paths, i));
                cleanup_close int fd = (int)open_in_layer(root, rel, O_PATH);
                struct stat st;
                if (fd < 0 || fstat(fd, &st) < 0)
                        continue;
                return S_ISDIR(st.st_mode);
        }
        return false;
}

/* "name", "uid" or "uid:gid" → the user name the agent runs as, from the stack's
 * /etc/passwd; with_gid receives the numeric ids. -ENOENT when it does not exist. */
static int user_lookup(struct run *rn, const char *spec, char **ret_name, uid_t *ret_uid,
                       gid_t *ret_gid)
{
        cleanup_free char *passwd = stack_read(rn, "etc/passwd", 4 << 20);
        cleanup_free char *group = NULL;
        cleanup_free char *u = xstrndup(spec, strcspn(spec, ":"));
        const char *g = strchr(spec, ':') ? strchr(spec, ':') + 1 : NULL;
        bool numeric = *u && strspn(u, "0123456789") == strlen(u);

        if (!passwd) {
                if (streq(u, "root") || streq(u, "0")) {
                        *ret_name = xstrdup("root");
                        *ret_uid = 0;
                        *ret_gid = 0;
                        return 0;
                }
                return -ENOENT;
        }
        for (char *line = passwd, *next; line && *line; line = next) {
                next = strchr(line, '\n');
                if (next)
                        *next++ = '\0';
                char *f[7] = { 0 };
                size_t n = 0;
                for (char *p = line; n < 7; n++) {
                        f[n] = p;
                        p = strchr(p, ':');
                        if (!p)
                                break;
                        *p++ = '\0';
                }
                if (n < 3 || !f[2] || !f[3])
                        continue;
                if (numeric ? !streq(f[2], u) : !streq(f[0], u))
                        continue;
                *ret_name = xstrdup(f[0]);
                *ret_uid = (uid_t)strtoul(f[2], NULL, 10);
                *ret_gid = (gid_t)strtoul(f[3], NULL, 10);
                if (g && *g) {
                        if (strspn(g, "0123456789") == strlen(g)) {
                                *ret_gid = (gid_t)strtoul(g, NULL, 10);
                        } else {
                                group = stack_read(rn, "etc/group", 4 << 20);
                                bool found = false;
                                for (char *l = group, *nx; l && *l && !found; l = nx) {
                                        nx = strchr(l, '\n');
                                        if (nx)
                                                *nx++ = '\0';
                                        size_t gl = strcspn(l, ":");
                                        const char *gid = strchr(l, ':')
                                                                  ? strchr(strchr(l, ':') + 1, ':')
                                                                  : NULL;
                                        if (gl == strlen(g) && strncmp(l, g, gl) == 0 && gid) {
                                                *ret_gid = (gid_t)strtoul(gid + 1, NULL, 10);
                                                found = true;
                                        }
                                }
                                if (!found) {
                                        free(*ret_name);
                                        return -ENOENT;
                                }
                        }
                }
                return 0;
        }
        return -ENOENT;
}

/* ---- steps ---- */

static char *fd_path(int fd)
{
        char proc[64], out[4096];
        (void)snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
        ssize_t n = readlink(proc, out, sizeof(out) - 1);
        if (n <= 0)
                return NULL;
        out[n] = '\0';
        return xstrdup(out);
}

struct step_fill {
        struct run *rn;
        const struct build_step *st;
        json_t *argv;        /* RUN */
        json_t *envs;        /* RUN */
        const char *archive; /* COPY/files: the uploaded archive */
        const char *src;     /* COPY: the archive entry, when not args[0] (E2B) */
        const char *dest;    /* COPY/files: absolute destination (trailing '/' kept) */
        int64_t uid, gid;    /* COPY owner; WORKDIR owner of what it makes when chown_dirs */
        bool chown_dirs;     /* WORKDIR (E2B): new directories belong to uid:gid */
        bool has_mode;       /* COPY (E2B): mode of the copied files */
        unsigned mode;
        const char *mkdir_path; /* WORKDIR */
};

/* mkdir -p of an absolute path inside a root, resolving existing components in it; the
 * directories it makes get uid:gid when uid >= 0. */
static int mkdir_in_root(int rootfd, const char *path, int64_t uid, int64_t gid,
                         struct cove_err **err)
{
        cleanup_free char *p = path_normalize("/", path);
        cleanup_free char *prefix = xzalloc(strlen(p) + 1);
        size_t pl = 0;

        for (const char *c = p + 1; *c;) {
                size_t n = strcspn(c, "/");
                cleanup_free char *comp = xstrndup(c, n);
                struct open_how how = { .flags = O_PATH | O_DIRECTORY | O_CLOEXEC,
                                        .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS };
                long parent = syscall(SYS_openat2, rootfd, pl ? prefix : ".", &how, sizeof(how));
                if (parent < 0)
                        return cove_err_set(err, errno, "WORKDIR '%s': %m", path);
                bool made = mkdirat((int)parent, comp, 0755) == 0;
                if (!made && errno != EEXIST) {
                        int e = errno;
                        (void)close((int)parent);
                        return cove_err_set(err, e, "WORKDIR '%s': %m", path);
                }
                if (made && uid >= 0 &&
                    fchownat((int)parent, comp, (uid_t)uid, (gid_t)gid, AT_SYMLINK_NOFOLLOW) < 0) {
                        int e = errno;
                        (void)close((int)parent);
                        return cove_err_set(err, e, "WORKDIR '%s': chown: %m", path);
                }
                (void)close((int)parent);
                if (pl)
                        prefix[pl++] = '/';
                memcpy(prefix + pl, c, n);
                pl += n;
                prefix[pl] = '\0';
                c += n;
                while (*c == '/')
                        c++;
        }
        return 0;
}

static int fill_step(void *ud, int rootfd, struct cove_err **err)
{
        struct step_fill *f = ud;
        struct run *rn = f->rn;
        struct bsb s = { 0 };
        cleanup_free char *upper = fd_path(rootfd);
        cleanup_free char *work = upper ? xasprintf("%s.work", upper) : NULL;
        int r;

        if (!upper)
                return cove_err_set(err, EIO, "layer directory: %m");
        if (mkdir(work, 0700) < 0)
                return cove_err_set(err, errno, "mkdir '%s': %m", work);
        r = bsb_start(rn, &s, upper, work, f->argv != NULL, err);
        if (r >= 0 && f->argv) {
                r = bsb_run(rn, &s, f->argv, f->envs, err);
        } else if (r >= 0) {
                /* through the sandbox's root, which resolves against the whole stack; what is
                 * written lands in the upper directory */
                cleanup_free char *proc = xasprintf("/proc/%lld/root", (long long)s.who.pid);
                cleanup_close int sroot = open(proc, O_PATH | O_DIRECTORY | O_CLOEXEC);
                cleanup_close int afd = -1;
                if (sroot < 0)
                        r = cove_err_set(err, errno, "open the build root: %m");
                else if (f->mkdir_path)
                        r = mkdir_in_root(sroot, f->mkdir_path, f->chown_dirs ? f->uid : -1, f->gid,
                                          err);
                else if ((afd = open(f->archive, O_RDONLY | O_CLOEXEC | O_NOCTTY)) < 0)
                        r = cove_err_set(err, errno, "open the build files: %m");
                size_t nsrc = f->st->type == BUILD_STEP_COPY ? f->st->n_args - 1 : 1;
                for (size_t i = 0; r >= 0 && afd >= 0 && i < nsrc; i++) {
                        struct extract_opts eo = {
                                .flags = EXTRACT_FOLLOW_IN_ROOT,
                                .src = f->src                           ? f->src
                                       : f->st->type == BUILD_STEP_COPY ? f->st->args[i]
                                                                        : ".",
                                .dest = f->dest,
                                .uid = f->uid,
                                .gid = f->gid,
                                .has_file_mode = f->has_mode,
                                .file_mode = f->mode,
                                .cancel = &rn->job->cancel,
                        };
                        if (lseek(afd, 0, SEEK_SET) < 0)
                                r = cove_err_set(err, errno, "read the build files: %m");
                        else
                                r = extract_archive_fd(sroot, afd, &eo, NULL, err);
                }
        }
        bsb_stop(rn, &s);
        (void)upper_remove_scratch(work, NULL);
        if (r >= 0)
                r = upper_to_layer(rootfd, 0, 65536, err);
        return r;
}

/* The cache key of a step on the current filesystem (§7.3). */
static void step_key(struct run *rn, const struct build_step *st, const char *extra, char out[65])
{
        char parent[65];
        stack_key(rn, parent);
        cleanup_free char *force = rn->force ? xasprintf("force:%s", rn->job->build_id) : NULL;
        cleanup_free char *ex = xasprintf("%s|%s|%s", extra ? extra : "",
                                          st->chown ? st->chown : "", force ? force : "");
        struct cache_step_input in = {
                .parent = parent,
                .type = build_step_type_to_string(st->type),
                .args = st->args,
                .n_args = st->n_args,
                .files_hash = st->files_hash,
                .extra = ex,
                .env = rn->env,
                .n_env = strv_length(rn->env),
                .workdir = rn->workdir,
                .user = rn->user,
        };
        cache_key_step(&in, out);
}

/* Makes (or finds) the layer of a step and puts it on the stack. */
static int layer_step(struct run *rn, const char *key, struct step_fill *f, struct cove_err **err)
{
        bool created = false;
        int r = hold_layer(rn, key, err);
        if (r < 0)
                return r;
        if (layer_store_has(rn->b->layers, key)) {
                rlog(rn, "info", "cached: layer %.12s", key);
        } else {
                r = layer_store_ensure(rn->b->layers, key, fill_step, f, &rn->job->cancel, &created,
                                       err);
                if (r < 0)
                        return r;
                rlog(rn, "info", "%s layer %.12s", created ? "made" : "cached:", key);
        }
        push_key(rn, key);
        return 0;
}

static char *abs_dest(struct run *rn, const char *dest)
{
        cleanup_free char *norm = path_normalize(rn->workdir, dest);
        size_t l = strlen(dest);
        if (l && dest[l - 1] == '/' && !streq(norm, "/"))
                return xasprintf("%s/", norm);
        return TAKE_PTR(norm);
}

/* The environment later steps run with, as the agent's envs object. */
static json_t *env_object(const struct run *rn)
{
        json_t *envs = json_object();
        for (char **e = rn->env; e && *e; e++) {
                cleanup_free char *k = xstrndup(*e, strcspn(*e, "="));
                json_object_set_new(envs, k, json_string(strchr(*e, '=') + 1));
        }
        return envs;
}

/* ---- E2B's step conventions (e2b.md §2.7) ---- */

/* The static part of an E2B COPY source: its path segments before the first one holding a
 * glob character ("." when that is the first). The archive holds only what the glob matched,
 * under that part. */
static char *e2b_static_src(const char *src)
{
        size_t keep = 0;
        for (const char *p = src; *p;) {
                size_t n = strcspn(p, "/");
                if (memchr(p, '*', n) || memchr(p, '?', n) || memchr(p, '[', n) ||
                    memchr(p, '{', n))
                        break;
                keep = (size_t)(p - src) + n;
                p += n;
                while (*p == '/')
                        p++;
        }
        return keep ? xstrndup(src, keep) : xstrdup(".");
}

/* A name useradd takes and /etc/passwd can hold: [A-Za-z_][A-Za-z0-9_.-]{0,31} (no option,
 * no ':' or newline). */
static bool user_name_ok(const char *s)
{
        size_t n = strlen(s);
        if (n == 0 || n > 32 || !(isalpha((unsigned char)s[0]) || s[0] == '_'))
                return false;
        return strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-") == n;
}

/* Makes sure the account `name` exists (created as E2B does when missing) and, with sudo, may
 * sudo without a password: a RUN as root in a build sandbox, cached like any step. */
static int e2b_ensure_user(struct run *rn, const char *name, bool sudo, struct cove_err **err)
{
        cleanup_free char *found = NULL;
        uid_t u;
        gid_t g;
        bool exists = user_lookup(rn, name, &found, &u, &g) == 0;
        char key[65];
        int r;

        if (exists && !sudo)
                return 0;
        if (!user_name_ok(name))
                return cove_err_set(err, EINVAL,
                                    "USER: '%.64s' is not a user name that can be created", name);
        char *args[] = { "/bin/sh",
                         "-c",
                         (char *)E2B_ENSURE_USER,
                         "sh",
                         (char *)name,
                         exists ? "0" : "1",
                         sudo ? "true" : "false",
                         NULL };
        struct build_step st = {
                .type = BUILD_STEP_RUN, .args = args, .n_args = 7, .exec_form = true
        };
        json_t *argv = json_array();
        for (size_t i = 0; args[i]; i++)
                json_array_append_new(argv, json_string(args[i]));
        json_t *envs = env_object(rn);
        if (exists)
                rlog(rn, "info", "passwordless sudo for user '%s'", name);
        else
                rlog(rn, "info", "creating user '%s'%s", name, sudo ? " (passwordless sudo)" : "");
        char *saved = rn->user;
        rn->user = xstrdup("root");
        step_key(rn, &st, "e2b-user", key);
        struct step_fill f = { .rn = rn, .st = &st, .argv = argv, .envs = envs };
        r = layer_step(rn, key, &f, err);
        free(rn->user);
        rn->user = saved;
        json_decref(argv);
        json_decref(envs);
        free(found);
        found = NULL;
        if (r >= 0 && user_lookup(rn, name, &found, &u, &g) < 0)
                r = cove_err_set(err, ENOENT, "user '%s' was not created", name);
        return r;
}

/* A missing directory made for the current build user (E2B's WORKDIR and /home/user). */
static int e2b_mkdir_owned(struct run *rn, const struct build_step *st, const char *path,
                           struct cove_err **err)
{
        cleanup_free char *name = NULL;
        uid_t u;
        gid_t g;
        char key[65];

        if (stack_has_dir(rn, path + 1))
                return 0;
        if (user_lookup(rn, rn->user, &name, &u, &g) < 0)
                return cove_err_set(err, ENOENT, "user '%s' does not exist", rn->user);
        struct step_fill f = {
                .rn = rn, .st = st, .mkdir_path = path, .uid = u, .gid = g, .chown_dirs = true
        };
        step_key(rn, st, "mkdir-owned", key);
        return layer_step(rn, key, &f, err);
}

/* The start of an E2B build: user `user` (created with passwordless sudo when the source
 * lacks it) in /home/user (made, owned by it, when missing). */
static int e2b_start(struct run *rn, struct cove_err **err)
{
        cleanup_free char *name = NULL;
        uid_t u;
        gid_t g;
        char *home[] = { (char *)E2B_BUILD_HOME, NULL };
        struct build_step st = { .type = BUILD_STEP_WORKDIR, .args = home, .n_args = 1 };
        int r = 0;

        if (user_lookup(rn, E2B_BUILD_USER, &name, &u, &g) < 0)
                r = e2b_ensure_user(rn, E2B_BUILD_USER, /* sudo= */ true, err);
        if (r < 0)
                return r;
        free(rn->user);
        rn->user = xstrdup(E2B_BUILD_USER);
        r = e2b_mkdir_owned(rn, &st, E2B_BUILD_HOME, err);
        if (r < 0)
                return r;
        free(rn->workdir);
        rn->workdir = xstrdup(E2B_BUILD_HOME);
        rlog(rn, "info", "building as user '%s' in %s", rn->user, rn->workdir);
        return 0;
}

static int run_step(struct run *rn, size_t idx, const struct build_step *st, struct cove_err **err)
{
        char key[65];
        int r = 0;

        (void)snprintf(rn->step, sizeof(rn->step), "%zu", idx + 1);
        if (st->force)
                rn->force = true;
        switch (st->type) {
        case BUILD_STEP_ENV:
                for (size_t i = 0; i + 1 < st->n_args; i += 2)
                        env_set(&rn->env, st->args[i], st->args[i + 1]);
                rlog(rn, "info", "ENV %zu variable%s", st->n_args / 2, st->n_args == 2 ? "" : "s");
                return 0;
        case BUILD_STEP_USER: {
                cleanup_free char *name = NULL;
                uid_t u;
                gid_t g;
                if (st->e2b && (r = e2b_ensure_user(rn, st->args[0], st->sudo, err)) < 0)
                        return r;
                if (user_lookup(rn, st->args[0], &name, &u, &g) < 0)
                        return cove_err_set(err, ENOENT, "USER: user '%s' does not exist",
                                            st->args[0]);
                free(rn->user);
                rn->user = TAKE_PTR(name);
                rlog(rn, "info", "USER %s", st->args[0]);
                return 0;
        }
        case BUILD_STEP_WORKDIR: {
                cleanup_free char *wd = path_normalize(rn->workdir, st->args[0]);
                free(rn->workdir);
                rn->workdir = TAKE_PTR(wd);
                rlog(rn, "info", "WORKDIR %s", rn->workdir);
                if (st->e2b)
                        return e2b_mkdir_owned(rn, st, rn->workdir, err);
                if (stack_has_dir(rn, rn->workdir + 1))
                        return 0;
                struct step_fill f = { .rn = rn, .st = st, .mkdir_path = rn->workdir };
                step_key(rn, st, "mkdir", key);
                return layer_step(rn, key, &f, err);
        }
        case BUILD_STEP_RUN: {
                cleanup_free char *as = NULL;
                if (st->e2b && st->user) {
                        /* E2B's RUN [command, user]: this step only runs as that user */
                        uid_t u;
                        gid_t g;
                        if (user_lookup(rn, st->user, &as, &u, &g) < 0)
                                return cove_err_set(err, ENOENT, "RUN: user '%s' does not exist",
                                                    st->user);
                        char *t = rn->user;
                        rn->user = as;
                        as = t;
                }
                json_t *argv = json_array();
                if (st->exec_form)
                        for (size_t i = 0; i < st->n_args; i++)
                                json_array_append_new(argv, json_string(st->args[i]));
                else { /* json_array_extend() copies: the packed array is ours to drop */
                        json_t *sh = json_pack("[s,s,s]", "/bin/sh", "-c", st->args[0]);
                        json_array_extend(argv, sh);
                        json_decref(sh);
                }
                json_t *envs = env_object(rn);
                cleanup_free char *extra = NULL;
                for (char **e = st->run_env; e && *e; e++) {
                        cleanup_free char *k = xstrndup(*e, strcspn(*e, "="));
                        json_object_set_new(envs, k, json_string(strchr(*e, '=') + 1));
                        char *x = xasprintf("%s%s;", extra ? extra : "", *e);
                        free(extra);
                        extra = x;
                }
                cleanup_free char *shown =
                        st->exec_form ? json_dumps(argv, JSON_COMPACT) : xstrdup(st->args[0]);
                rlog(rn, "info", "RUN %s", shown);
                struct step_fill f = { .rn = rn, .st = st, .argv = argv, .envs = envs };
                cleanup_free char *x2 =
                        xasprintf("%s%s", st->exec_form ? "exec;" : "", extra ? extra : "");
                step_key(rn, st, x2, key);
                r = layer_step(rn, key, &f, err);
                json_decref(argv);
                json_decref(envs);
                if (as) { /* back to the build user */
                        char *t = rn->user;
                        rn->user = as;
                        as = t;
                }
                return r;
        }
        case BUILD_STEP_COPY:
        case BUILD_STEP_FILES: {
                const char *hash = st->files_hash;
                const char *team = rn->t->team_id ? rn->t->team_id : "official";
                cleanup_free char *archive = builder_file_path(rn->b, team, hash);
                cleanup_free char *dest = abs_dest(
                        rn, st->type == BUILD_STEP_COPY ? st->args[st->n_args - 1] : rn->workdir);
                int64_t uid = 0, gid = 0;
                /* E2B: the owner is the step's user, else the build user (not root) */
                const char *owner = st->e2b ? (st->user ? st->user : rn->user) : st->chown;
                if (owner) {
                        cleanup_free char *name = NULL;
                        uid_t u;
                        gid_t g;
                        if (user_lookup(rn, owner, &name, &u, &g) < 0)
                                return cove_err_set(err, ENOENT, "COPY %s: '%s' does not exist",
                                                    st->e2b ? "user" : "--chown", owner);
                        uid = u;
                        gid = g;
                }
                cleanup_free char *src = st->e2b ? e2b_static_src(st->args[0]) : NULL;
                cleanup_free char *e2b_extra = st->e2b ? xasprintf("e2b|%s|%s|%o", src, owner,
                                                                   st->has_mode ? st->mode : 010000)
                                                       : NULL;
                (void)store_build_file_touch(rn->cd->store, team, hash, time_now_ms(), NULL);
                rlog(rn, "info", "%s %s → %s", st->type == BUILD_STEP_COPY ? "COPY" : "files",
                     st->type == BUILD_STEP_COPY ? st->args[0] : "(archive)", dest);
                struct step_fill f = { .rn = rn,
                                       .st = st,
                                       .archive = archive,
                                       .src = src,
                                       .dest = dest,
                                       .uid = uid,
                                       .gid = gid,
                                       .has_mode = st->e2b && st->has_mode,
                                       .mode = st->mode };
                step_key(rn, st, e2b_extra, key);
                return layer_step(rn, key, &f, err);
        }
        case BUILD_STEP_CONTEXT:
                return 0; /* the context of the stored Dockerfile: used by the source */
        case _BUILD_STEP_TYPE_MAX:
        case _BUILD_STEP_TYPE_INVALID:
                break;
        }
        return cove_err_set(err, EINVAL, "unknown step");
}

/* Source, then steps, then the result; returns the step to blame in *ret_step. */
static int run_build(struct run *rn, struct cove_err **err)
{
        struct build_req *q = &rn->job->req;
        struct template_rec *t = rn->t;
        struct dockerfile *df = NULL;
        struct build_step *df_steps = NULL;
        size_t n_df = 0;
        const char *start_cmd = NULL;
        int r;

        (void)snprintf(rn->step, sizeof(rn->step), "base");
        rn->force = q->force.set && q->force.v;
        rn->user = xstrdup("root");
        rn->workdir = xstrdup("/");
        rn->env = xzalloc(sizeof(char *));
        const char *source_kind;
        if (q->from_template) {
                source_kind = "template";
                r = source_template(rn, q->from_template, err);
        } else if (q->from_image) {
                source_kind = "image";
                r = source_image(rn, q->from_image, err);
        } else if (t->dockerfile) {
                source_kind = "dockerfile";
                r = dockerfile_parse(t->dockerfile, strlen(t->dockerfile), &df, err);
                if (r >= 0)
                        r = source_image(rn, df->from, err);
        } else if (t->image) {
                source_kind = "image";
                r = source_image(rn, t->image, err);
        } else {
                source_kind = "template";
                r = source_template(rn, t->base_template_id ? t->base_template_id : "base", err);
        }
        if (r < 0)
                goto out;
        /* the template's environment applies to RUN steps (§4.1 envs) */
        const char *k;
        json_t *v;
        json_object_foreach (t->envs, k, v)
                env_set(&rn->env, k, json_string_value(v));
        rn->port = (int)t->port;
        if (q->e2b) {
                r = e2b_start(rn, err);
                if (r < 0)
                        goto out;
        }

        if (df) {
                const char *ctx = q->files_hash ? q->files_hash : q->legacy_hash;
                struct df_lower_opts lo = { .base_env = rn->env, .context_hash = ctx };
                r = dockerfile_lower(df, &lo, &df_steps, &n_df, err);
                if (r < 0)
                        goto out;
                start_cmd = df->start_cmd;
                if (!rn->port && df->port)
                        rn->port = df->port;
        }
        for (size_t i = 0; i < n_df && r >= 0; i++) {
                if (cancelled(rn, err)) {
                        r = -ECANCELED;
                        break;
                }
                r = run_step(rn, i, &df_steps[i], err);
        }
        for (size_t i = 0; i < q->n_steps && r >= 0; i++) {
                if (cancelled(rn, err)) {
                        r = -ECANCELED;
                        break;
                }
                r = run_step(rn, n_df + i, &q->steps[i], err);
        }
        if (r < 0)
                goto out;

        (void)snprintf(rn->step, sizeof(rn->step), "finalize");
        json_t *layers = json_array();
        for (size_t i = 0; i < rn->n_keys; i++)
                if (sha256_hex_valid(rn->keys[i]))
                        json_array_append_new(layers, json_string(rn->keys[i]));
        json_t *cfg = json_pack("{s:o}", "env", json_array());
        for (char **e = rn->env; *e; e++)
                json_array_append_new(json_object_get(cfg, "env"), json_string(*e));
        if (rn->workdir && (q->e2b || !streq(rn->workdir, "/")))
                json_object_set_new(cfg, "workdir", json_string(rn->workdir));
        if (q->e2b) /* the E2B face's default user of its sandboxes (e2b.md §2.7, §4.2) */
                json_object_set_new(cfg, "e2bUser", json_string(rn->user));
        const char *sc = q->start_cmd ? q->start_cmd : start_cmd ? start_cmd : t->start_cmd;
        const char *rc = q->ready_cmd ? q->ready_cmd : t->ready_cmd;
        if (sc && *sc)
                json_object_set_new(cfg, "startCmd", json_string(sc));
        if (rc && *rc)
                json_object_set_new(cfg, "readyCmd", json_string(rc));
        if (rn->port)
                json_object_set_new(cfg, "port", json_integer(rn->port));
        if (rn->binds)
                json_object_set_new(cfg, "binds", json_incref(rn->binds));
        if (rn->base_paths)
                json_object_set_new(cfg, "basePaths", json_incref(rn->base_paths));
        json_object_set_new(cfg, "stackKeys", json_array());
        for (size_t i = 0; i < rn->n_keys; i++)
                json_array_append_new(json_object_get(cfg, "stackKeys"), json_string(rn->keys[i]));
        json_decref(rn->rec->layers);
        rn->rec->layers = layers;
        json_decref(rn->rec->config);
        rn->rec->config = cfg;
        free(rn->rec->source_kind);
        rn->rec->source_kind = xstrdup(source_kind);
        rlog(rn, "info", "%zu layers", json_array_size(layers));
out:
        build_steps_free(df_steps, n_df);
        dockerfile_free(df);
        return r;
}

static void run_job(struct builder *b, struct build_job *job)
{
        struct coved *cd = b->cd;
        struct run rn = { .b = b, .cd = cd, .job = job };
        struct cove_err *err = NULL;
        int r;

        if (store_template_get(cd->store, job->template_id, &rn.t, NULL) < 0 ||
            store_build_get(cd->store, job->template_id, job->build_id, &rn.rec, NULL) < 0) {
                run_release(&rn);
                return; /* deleted meanwhile */
        }
        if (!streq(rn.rec->status, "waiting")) {
                run_release(&rn);
                return; /* cancelled while queued */
        }
        job->started_mono_ms = time_mono_ms();
        free(rn.rec->status);
        rn.rec->status = xstrdup("building");
        rn.rec->started_at = rn.rec->updated_at = time_now_ms();
        (void)store_build_update(cd->store, rn.rec, NULL);
        log_info("build '%s' of template '%s' started", job->build_id, job->template_id);

        r = run_build(&rn, &err);
        if (r >= 0) {
                /* the template as it is now (it may have changed while we built) */
                struct template_rec *now = NULL;
                r = store_template_get(cd->store, job->template_id, &now, &err);
                if (r >= 0) {
                        rn.rec->updated_at = time_now_ms();
                        r = builds_mark_ready(cd, now, rn.rec, &err);
                        template_rec_free(now);
                }
        }
        if (r >= 0) {
                build_log(cd, job->template_id, job->build_id, "info", "finalize", "build ready");
                log_info("build '%s' of template '%s' ready", job->build_id, job->template_id);
        } else {
                bool cancel = r == -ECANCELED;
                const char *why = err && err->msg ? err->msg : "failed";
                cleanup_free char *msg = NULL;
                pthread_mutex_lock(&b->lock);
                if (cancel && job->cancel_reason)
                        msg = xstrdup(job->cancel_reason);
                pthread_mutex_unlock(&b->lock);
                if (!msg)
                        msg = streq(rn.step, "base") || streq(rn.step, "finalize")
                                      ? xstrdup(why)
                                      : xasprintf("step %s: %s", rn.step, why);
                build_log(cd, job->template_id, job->build_id, "error", rn.step, "%s", msg);
                builds_mark_failed(cd, job->template_id, job->build_id,
                                   cancel ? "cancelled" : "error", rn.step, msg);
                log_info("build '%s' of template '%s' %s: %s", job->build_id, job->template_id,
                         cancel ? "cancelled" : "failed", msg);
        }
        cove_err_free(&err);
        run_release(&rn);
}

static void *worker(void *ud)
{
        struct builder *b = ud;
        for (;;) {
                pthread_mutex_lock(&b->lock);
                while ((!b->queue || b->gc_running) && !b->stopping)
                        pthread_cond_wait(&b->cond, &b->lock);
                if (b->stopping) {
                        pthread_mutex_unlock(&b->lock);
                        return NULL;
                }
                struct build_job *j = b->queue;
                b->queue = j->next;
                j->next = b->running;
                b->running = j;
                pthread_mutex_unlock(&b->lock);

                run_job(b, j);

                pthread_mutex_lock(&b->lock);
                for (struct build_job **p = &b->running; *p; p = &(*p)->next)
                        if (*p == j) {
                                *p = j->next;
                                break;
                        }
                pthread_cond_broadcast(&b->cond);
                pthread_mutex_unlock(&b->lock);
                build_job_free(j);
        }
}

int builder_start_workers(struct builder *b, struct cove_err **err)
{
        b->n_workers = (size_t)b->cd->cfg.max_concurrent_builds;
        b->workers = xzalloc(b->n_workers * sizeof(pthread_t));
        for (size_t i = 0; i < b->n_workers; i++) {
                int r = pthread_create(&b->workers[i], NULL, worker, b);
                if (r != 0) {
                        b->n_workers = i;
                        return cove_err_set(err, r, "start build workers: %m");
                }
        }
        return 0;
}

void builder_stop_workers(struct builder *b)
{
        pthread_mutex_lock(&b->lock);
        b->stopping = true;
        for (struct build_job *j = b->running; j; j = j->next) {
                j->cancel = 1;
                free(j->cancel_reason);
                j->cancel_reason = xstrdup("coved stopped while the build ran");
        }
        pthread_cond_broadcast(&b->cond);
        pthread_mutex_unlock(&b->lock);
        for (size_t i = 0; i < b->n_workers; i++)
                (void)pthread_join(b->workers[i], NULL);
        free(b->workers);
        b->workers = NULL;
        b->n_workers = 0;
        while (b->queue) {
                struct build_job *j = b->queue;
                b->queue = j->next;
                builds_mark_failed(b->cd, j->template_id, j->build_id, "error", "base",
                                   "coved stopped before the build started");
                build_job_free(j);
        }
}

/* Layer GC runs while no build runs (a build holds its layers in the store before it looks
 * for them, but between the look and the use only this exclusion keeps them alive). */
/* Layers mounted by sandboxes that exist: a deleted template's sandboxes keep running
 * (build-plane.md §5.4) on layers no build holds any more. Each sandbox's config.json (the
 * engine's, in its state dir) names its lowerdirs; those under the layers root are kept. */
static void sandbox_layer_keys(struct builder *b, char ***keys)
{
        const char *root = layer_store_dir(b->layers);
        size_t rootlen = strlen(root);
        cleanup_closedir DIR *d = opendir(b->cd->sandboxes_dir);
        struct dirent *de;

        while (d && (de = readdir(d))) {
                if (de->d_name[0] == '.')
                        continue;
                cleanup_free char *cfg =
                        xasprintf("%s/%s/config.json", b->cd->sandboxes_dir, de->d_name);
                json_auto_t *j = json_load_file(cfg, 0, NULL);
                size_t i;
                json_t *l;
                json_array_foreach (json_object_get(j, "layers"), i, l) {
                        const char *p = json_string_value(l);
                        if (!p || strncmp(p, root, rootlen) != 0 || p[rootlen] != '/')
                                continue;
                        const char *key = p + rootlen + 1;
                        if (*key && !strchr(key, '/')) {
                                size_t n = strv_length(*keys);
                                *keys = xrealloc(*keys, (n + 2) * sizeof(char *));
                                (*keys)[n] = xstrdup(key);
                                (*keys)[n + 1] = NULL;
                        }
                }
        }
}

int builder_gc_layers(struct builder *b, int64_t *ret_removed, struct cove_err **err)
{
        char **all = NULL, **used = NULL;
        int64_t removed = 0;
        int r;

        pthread_mutex_lock(&b->lock);
        if (b->running || b->gc_running) {
                pthread_mutex_unlock(&b->lock);
                if (ret_removed)
                        *ret_removed = 0;
                return 0; /* builds run: the next GC collects */
        }
        b->gc_running = true;
        pthread_mutex_unlock(&b->lock);

        r = layer_store_list(b->layers, &all, err);
        if (r >= 0)
                r = store_layer_keys_in_use(b->cd->store, &used, err);
        if (r >= 0)
                sandbox_layer_keys(b, &used);
        for (size_t i = 0; r >= 0 && all[i]; i++) {
                bool keep = false;
                for (size_t k = 0; used[k] && !keep; k++)
                        keep = streq(used[k], all[i]);
                struct cove_err *rerr = NULL;
                if (keep)
                        continue;
                if (layer_store_remove(b->layers, all[i], &rerr) == 0)
                        removed++;
                else
                        log_warning("layer GC: %s", rerr ? rerr->msg : all[i]);
                cove_err_free(&rerr);
        }
        strv_free(all);
        strv_free(used);

        pthread_mutex_lock(&b->lock);
        b->gc_running = false;
        pthread_cond_broadcast(&b->cond);
        pthread_mutex_unlock(&b->lock);
        if (ret_removed)
                *ret_removed = removed;
        return r;
}

void builder_gc_soon(struct builder *b)
{
        pthread_mutex_lock(&b->lock);
        b->gc_wanted = true;
        pthread_cond_broadcast(&b->cond);
        pthread_mutex_unlock(&b->lock);
}

#define WAITING_MAX_MS    (24LL * 3600 * 1000)     /* §4.2: untriggered builds */
#define ARCHIVE_UNUSED_MS (7LL * 24 * 3600 * 1000) /* §9: uploaded archives */
#define HOUSEKEEPING_S    60

/* Untriggered `waiting` builds older than 24 hours become `cancelled` (§4.2); uploaded
 * archives no build used for 7 days are deleted (§9). */
static void housekeeping(struct builder *b)
{
        int64_t now = time_now_ms();
        struct build_rec **v = NULL;
        if (store_build_list_by_status(b->cd->store, "waiting", &v, NULL) == 0) {
                for (struct build_rec **x = v; *x; x++)
                        if (!(*x)->triggered && (*x)->created_at < now - WAITING_MAX_MS)
                                builds_mark_failed(b->cd, (*x)->template_id, (*x)->id, "cancelled",
                                                   NULL, "never triggered within 24 hours");
                build_list_free(v);
        }
        char **gone = NULL;
        if (store_build_file_list_unused(b->cd->store, now - ARCHIVE_UNUSED_MS, &gone, NULL) < 0)
                return;
        for (char **g = gone; *g; g++) {
                char *slash = strchr(*g, '/');
                if (!slash)
                        continue;
                *slash = '\0';
                cleanup_free char *path = builder_file_path(b, *g, slash + 1);
                if (unlink(path) < 0 && errno != ENOENT)
                        log_warning("remove '%s': %m", path);
                (void)store_build_file_delete(b->cd->store, *g, slash + 1, NULL);
        }
        strv_free(gone);
}

static void *gc_thread(void *ud)
{
        struct builder *b = ud;
        int64_t next_housekeeping = 0;
        for (;;) {
                pthread_mutex_lock(&b->lock);
                while (!b->stopping && (!b->gc_wanted || b->running || b->queue) &&
                       time_now_ms() < next_housekeeping) {
                        struct timespec until = { .tv_sec = next_housekeeping / 1000,
                                                  .tv_nsec = (next_housekeeping % 1000) * 1000000 };
                        (void)pthread_cond_timedwait(&b->cond, &b->lock, &until);
                }
                if (b->stopping) {
                        pthread_mutex_unlock(&b->lock);
                        return NULL;
                }
                bool gc = b->gc_wanted && !b->running && !b->queue;
                if (gc)
                        b->gc_wanted = false;
                pthread_mutex_unlock(&b->lock);
                if (time_now_ms() >= next_housekeeping) {
                        housekeeping(b);
                        next_housekeeping = time_now_ms() + HOUSEKEEPING_S * 1000;
                }
                if (!gc)
                        continue;
                log_debug("layer GC starts");
                int64_t removed = 0;
                struct cove_err *err = NULL;
                if (builder_gc_layers(b, &removed, &err) < 0) {
                        log_warning("layer GC: %s", err->msg);
                        cove_err_free(&err);
                } else if (removed) {
                        log_info("layer GC removed %lld unreferenced layer%s", (long long)removed,
                                 removed == 1 ? "" : "s");
                }
        }
}

/* ---- the daemon ---- */

static int load_secret(struct builder *b, struct cove_err **err)
{
        cleanup_free char *hex = NULL;
        if (store_setting_get(b->cd->store, "upload_secret", &hex, NULL) >= 0 && hex &&
            strlen(hex) == 2 * UPLOAD_SECRET_LEN) {
                for (size_t i = 0; i < UPLOAD_SECRET_LEN; i++) {
                        unsigned v;
                        if (sscanf(hex + 2 * i, "%2x", &v) != 1)
                                goto fresh;
                        b->secret[i] = (unsigned char)v;
                }
                return 0;
        }
fresh:
        if (random_bytes(b->secret, sizeof(b->secret)) < 0)
                return cove_err_set(err, EIO, "upload secret: no randomness");
        char out[2 * UPLOAD_SECRET_LEN + 1];
        for (size_t i = 0; i < UPLOAD_SECRET_LEN; i++)
                (void)snprintf(out + 2 * i, 3, "%02x", b->secret[i]);
        return store_setting_set(b->cd->store, "upload_secret", out, err);
}

/* A crash (kill -9) or stop left builds building or queued: they become errors, and their
 * build sandboxes (named build-…) are destroyed. */
static void recover(struct builder *b)
{
        static const char *const states[] = { "building", "waiting" };
        for (size_t s = 0; s < ARRAY_SIZE(states); s++) {
                struct build_rec **v = NULL;
                if (store_build_list_by_status(b->cd->store, states[s], &v, NULL) < 0)
                        continue;
                for (struct build_rec **x = v; *x; x++) {
                        if (!(*x)->triggered)
                                continue;
                        build_log(b->cd, (*x)->template_id, (*x)->id, "error", "base",
                                  "coved stopped (or crashed) while the build %s",
                                  s == 0 ? "ran" : "waited for a slot");
                        builds_mark_failed(b->cd, (*x)->template_id, (*x)->id, "error", NULL,
                                           s == 0 ? "interrupted: coved stopped or crashed while "
                                                    "the build ran"
                                                  : "interrupted: coved stopped or crashed before "
                                                    "the build started");
                }
                build_list_free(v);
        }
        DIR *d = opendir(b->cd->sandboxes_dir);
        struct dirent *de;
        while (d && (de = readdir(d))) {
                if (strncmp(de->d_name, "build-", 6) != 0)
                        continue;
                struct cove_err *err = NULL;
                if (engine_destroy(b->cd, de->d_name, NULL, &err) < 0) {
                        log_warning("build sandbox '%s': %s", de->d_name, err->msg);
                        cove_err_free(&err);
                }
        }
        if (d)
                closedir(d);
}

int templates_init(struct coved *cd, struct cove_err **err)
{
        struct builder *b = xzalloc(sizeof(*b));
        cleanup_free char *blobs = xasprintf("%s/blobs", cd->cfg.data_dir);
        cleanup_free char *layers = xasprintf("%s/layers", cd->cfg.data_dir);
        int r;

        b->cd = cd;
        pthread_mutex_init(&b->lock, NULL);
        pthread_cond_init(&b->cond, NULL);
        cd->builder = b;
        b->files_dir = xasprintf("%s/build-files", cd->cfg.data_dir);
        if (mkdir(b->files_dir, 0700) < 0 && errno != EEXIST)
                return cove_err_set(err, errno, "mkdir '%s': %m", b->files_dir);
        r = blob_store_open(blobs, &b->blobs, err);
        if (r >= 0)
                r = layer_store_open(layers, &b->layers, err);
        if (r < 0)
                return r;
        for (char *line = cd->cfg.registry_mirrors; line && *line;) {
                size_t n = strcspn(line, "\n");
                cleanup_free char *one = xstrndup(line, n);
                b->mirrors = xrealloc(b->mirrors, (b->n_mirrors + 1) * sizeof(*b->mirrors));
                r = registry_mirror_parse(one, &b->mirrors[b->n_mirrors], err);
                if (r < 0)
                        return r;
                b->n_mirrors++;
                line += n;
                while (*line == '\n')
                        line++;
        }
        r = load_secret(b, err);
        if (r < 0)
                return r;
        recover(b);
        (void)builder_gc_layers(b, NULL, NULL);
        r = pthread_create(&b->gc_thread, NULL, gc_thread, b);
        if (r != 0)
                return cove_err_set(err, r, "start the layer GC: %m");
        b->gc_thread_started = true;
        return builder_start_workers(b, err);
}

void templates_stop(struct coved *cd)
{
        struct builder *b = cd->builder;
        if (!b)
                return;
        builder_stop_workers(b);
        if (b->gc_thread_started)
                (void)pthread_join(b->gc_thread, NULL);
        blob_store_free(b->blobs);
        layer_store_free(b->layers);
        for (size_t i = 0; i < b->n_mirrors; i++)
                registry_mirror_free(&b->mirrors[i]);
        free(b->mirrors);
        free(b->files_dir);
        explicit_bzero(b->secret, sizeof(b->secret));
        free(b);
        cd->builder = NULL;
}
