/* SPDX-License-Identifier: MIT */
#include "build/steps.h"

#include "build/digest.h"
#include "lib/macro.h"

#include <strings.h>

#include "lib/banned.h"

#define ENV_KEY_MAX 256

static const char *const type_names[_BUILD_STEP_TYPE_MAX] = {
        [BUILD_STEP_COPY] = "COPY",   [BUILD_STEP_ENV] = "ENV",
        [BUILD_STEP_RUN] = "RUN",     [BUILD_STEP_WORKDIR] = "WORKDIR",
        [BUILD_STEP_USER] = "USER",   [BUILD_STEP_CONTEXT] = "context",
        [BUILD_STEP_FILES] = "files",
};

const char *build_step_type_to_string(enum build_step_type t)
{
        return t >= 0 && t < _BUILD_STEP_TYPE_MAX ? type_names[t] : NULL;
}

enum build_step_type build_step_type_from_string(const char *s)
{
        for (int i = 0; i < _BUILD_STEP_TYPE_MAX; i++)
                if (strcasecmp(s, type_names[i]) == 0)
                        return (enum build_step_type)i;
        return _BUILD_STEP_TYPE_INVALID;
}

bool build_env_key_valid(const char *s)
{
        size_t n = 0;
        if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || *s == '_'))
                return false;
        for (; s[n]; n++)
                if (!((s[n] >= 'A' && s[n] <= 'Z') || (s[n] >= 'a' && s[n] <= 'z') ||
                      (s[n] >= '0' && s[n] <= '9') || s[n] == '_'))
                        return false;
        return n <= ENV_KEY_MAX;
}

void build_step_release(struct build_step *s)
{
        strv_free(s->args);
        free(s->files_hash);
        free(s->chown);
        strv_free(s->run_env);
        free(s->user);
        *s = (struct build_step){ 0 };
}

void build_steps_free(struct build_step *s, size_t n)
{
        if (!s)
                return;
        for (size_t i = 0; i < n; i++)
                build_step_release(&s[i]);
        free(s);
}

/* Drops args[from…] (the step keeps its canonical arity). */
static void args_truncate(struct build_step *st, size_t from)
{
        for (size_t i = from; i < st->n_args; i++) {
                free(st->args[i]);
                st->args[i] = NULL;
        }
        if (st->n_args > from)
                st->n_args = from;
}

/* E2B's extra args (e2b.md §2.7): moved from args into the step's E2B fields. */
static int e2b_extras(struct build_step *st, size_t idx, struct cove_err **err)
{
        st->e2b = true;
        switch (st->type) {
        case BUILD_STEP_COPY:
                if (st->n_args < 2 || st->n_args > 4)
                        return cove_err_set(err, EINVAL,
                                            "steps[%zu]: COPY needs 2 to 4 args (src, dest, user, "
                                            "mode)",
                                            idx);
                if (st->n_args > 2 && *st->args[2])
                        st->user = xstrdup(st->args[2]);
                if (st->n_args > 3 && *st->args[3]) {
                        const char *m = st->args[3];
                        size_t n = strlen(m);
                        unsigned v = 0;
                        if (n > 5 || strspn(m, "01234567") != n)
                                return cove_err_set(err, EINVAL,
                                                    "steps[%zu]: COPY mode '%.16s' must be octal "
                                                    "(such as 0755)",
                                                    idx, m);
                        for (size_t i = 0; i < n; i++)
                                v = v * 8 + (unsigned)(m[i] - '0');
                        if (v > 07777)
                                return cove_err_set(err, EINVAL,
                                                    "steps[%zu]: COPY mode '%.16s' is above 07777",
                                                    idx, m);
                        st->has_mode = true;
                        st->mode = v;
                }
                args_truncate(st, 2);
                break;
        case BUILD_STEP_RUN:
                if (st->n_args > 1 && *st->args[1])
                        st->user = xstrdup(st->args[1]);
                break;
        case BUILD_STEP_USER:
                st->sudo = st->n_args > 1 && streq(st->args[1], "true");
                break;
        case BUILD_STEP_ENV:
        case BUILD_STEP_WORKDIR:
        case BUILD_STEP_CONTEXT:
        case BUILD_STEP_FILES:
        case _BUILD_STEP_TYPE_MAX:
        case _BUILD_STEP_TYPE_INVALID:
                break;
        }
        return 0;
}

static int step_from_json(json_t *j, size_t idx, unsigned flags, struct build_step *st,
                          struct cove_err **err)
{
        json_t *type = json_object_get(j, "type"), *args = json_object_get(j, "args"),
               *hash = json_object_get(j, "filesHash"), *force = json_object_get(j, "force");
        size_t i;
        json_t *e;

        if (!json_is_object(j))
                return cove_err_set(err, EINVAL, "steps[%zu] must be an object", idx);
        if (!json_is_string(type))
                return cove_err_set(err, EINVAL, "steps[%zu]: field 'type' must be a string", idx);
        st->type = build_step_type_from_string(json_string_value(type));
        if (st->type < 0)
                return cove_err_set(err, EINVAL, "steps[%zu]: unknown step type '%.40s'", idx,
                                    json_string_value(type));
        const char *tn = type_names[st->type];

        if (args && !json_is_null(args)) {
                if (!json_is_array(args))
                        return cove_err_set(err, EINVAL,
                                            "steps[%zu]: field 'args' must be an array", idx);
                if (json_array_size(args) > 4096)
                        return cove_err_set(err, EINVAL, "steps[%zu]: too many args", idx);
                st->args = xzalloc((json_array_size(args) + 1) * sizeof(char *));
                json_array_foreach (args, i, e) {
                        if (!json_is_string(e) ||
                            strlen(json_string_value(e)) != json_string_length(e))
                                return cove_err_set(err, EINVAL,
                                                    "steps[%zu]: args[%zu] must be a string", idx,
                                                    i);
                        if (json_string_length(e) > BUILD_STEP_ARG_MAX)
                                return cove_err_set(err, EINVAL,
                                                    "steps[%zu]: args[%zu] is too long", idx, i);
                        st->args[i] = xstrdup(json_string_value(e));
                }
                st->n_args = json_array_size(args);
        }
        if (hash && !json_is_null(hash)) {
                if (!json_is_string(hash) || !sha256_hex_valid(json_string_value(hash)))
                        return cove_err_set(
                                err, EINVAL,
                                "steps[%zu]: filesHash must be 64 lower-case hex characters", idx);
                st->files_hash = xstrdup(json_string_value(hash));
        }
        if (force && !json_is_null(force)) {
                if (!json_is_boolean(force))
                        return cove_err_set(err, EINVAL,
                                            "steps[%zu]: field 'force' must be a boolean", idx);
                st->force = json_is_true(force);
        }

        if ((flags & BUILD_STEPS_E2B) && e2b_extras(st, idx, err) < 0)
                return -EINVAL;
        switch (st->type) {
        case BUILD_STEP_COPY:
                if (st->n_args != 2 || !*st->args[0] || !*st->args[1])
                        return cove_err_set(err, EINVAL,
                                            "steps[%zu]: COPY needs exactly 2 non-empty args", idx);
                if (!st->files_hash)
                        return cove_err_set(err, EINVAL, "steps[%zu]: COPY needs filesHash", idx);
                break;
        case BUILD_STEP_ENV:
                if (st->n_args == 0 || st->n_args % 2)
                        return cove_err_set(
                                err, EINVAL,
                                "steps[%zu]: ENV needs a non-empty, even number of args", idx);
                for (i = 0; i < st->n_args; i += 2)
                        if (!build_env_key_valid(st->args[i]))
                                return cove_err_set(
                                        err, EINVAL,
                                        "steps[%zu]: invalid environment variable name '%.80s'",
                                        idx, st->args[i]);
                break;
        case BUILD_STEP_RUN:
        case BUILD_STEP_WORKDIR:
        case BUILD_STEP_USER:
                if (st->n_args < 1 || !*st->args[0])
                        return cove_err_set(err, EINVAL, "steps[%zu]: %s needs a non-empty args[0]",
                                            idx, tn);
                /* further args are ignored (§7.2) */
                args_truncate(st, 1);
                break;
        case BUILD_STEP_CONTEXT:
        case BUILD_STEP_FILES:
                if (!st->files_hash)
                        return cove_err_set(err, EINVAL, "steps[%zu]: %s needs filesHash", idx, tn);
                if (st->n_args > 0)
                        return cove_err_set(err, EINVAL, "steps[%zu]: %s takes no args", idx, tn);
                if (force && !json_is_null(force))
                        return cove_err_set(err, EINVAL, "steps[%zu]: %s takes no force", idx, tn);
                break;
        case _BUILD_STEP_TYPE_MAX:
        case _BUILD_STEP_TYPE_INVALID:
                break;
        }
        if (!st->args)
                st->args = xzalloc(sizeof(char *));
        return 0;
}

int build_steps_from_json(json_t *steps, struct build_step **ret, size_t *ret_n,
                          char **ret_legacy_hash, struct cove_err **err)
{
        return build_steps_from_json_flags(steps, 0, ret, ret_n, ret_legacy_hash, err);
}

int build_steps_from_json_flags(json_t *steps, unsigned flags, struct build_step **ret,
                                size_t *ret_n, char **ret_legacy_hash, struct cove_err **err)
{
        struct build_step *v;
        const char *legacy = NULL;
        size_t n, i;
        json_t *e;
        int r;

        if (!json_is_array(steps))
                return cove_err_set(err, EINVAL, "field 'steps' must be an array");
        n = json_array_size(steps);
        if (n > BUILD_STEPS_MAX)
                return cove_err_set(err, EINVAL, "field 'steps' has more than %d steps",
                                    BUILD_STEPS_MAX);
        v = xzalloc(MAX(n, (size_t)1) * sizeof(*v));
        json_array_foreach (steps, i, e) {
                r = step_from_json(e, i, flags, &v[i], err);
                if (r < 0) {
                        build_steps_free(v, n);
                        return r;
                }
                if (v[i].type == BUILD_STEP_CONTEXT || v[i].type == BUILD_STEP_FILES) {
                        if (legacy && !streq(legacy, v[i].files_hash)) {
                                build_steps_free(v, n);
                                return cove_err_set(err, EINVAL,
                                                    "legacy context/files steps may use only one "
                                                    "distinct filesHash per build");
                        }
                        legacy = v[i].files_hash;
                }
        }
        if (ret_legacy_hash)
                *ret_legacy_hash = legacy ? xstrdup(legacy) : NULL;
        *ret = v;
        *ret_n = n;
        return 0;
}
