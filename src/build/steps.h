/* SPDX-License-Identifier: MIT */
/*
 * steps.h — the build step model (build-plane.md §7.2) and its validation.
 *
 * A build is a source (image, template or Dockerfile FROM) plus an ordered list of steps.
 * API steps come from JSON (build_steps_from_json(), which applies every 400 rule of §7.2:
 * unknown type, arg counts, filesHash shape, env key rules, one distinct hash for the legacy
 * types); Dockerfile instructions are lowered to the same model (dockerfile.h), with the three
 * Dockerfile-only extras: COPY with several sources and --chown, RUN in exec form, and
 * per-RUN build arguments (ARG values, visible to that RUN only).
 *
 * E2B's template builder (e2b.md §2.7) sends the same step types with more args; with
 * BUILD_STEPS_E2B they are accepted and kept in the step's E2B extras: COPY [src, dest, user?,
 * mode?], RUN [command, user?], USER [name, sudo?]. What they mean at build time (the build
 * user, static part of a COPY source, owners) is the builder's business.
 *
 * Ownership: a step owns its strings; build_steps_free() releases an array of them.
 */
#pragma once

#include "lib/err.h"

#include <errno.h>
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#define BUILD_STEPS_MAX    256
#define BUILD_STEP_ARG_MAX (256 * 1024)

enum build_step_type {
        BUILD_STEP_COPY,
        BUILD_STEP_ENV,
        BUILD_STEP_RUN,
        BUILD_STEP_WORKDIR,
        BUILD_STEP_USER,
        BUILD_STEP_CONTEXT, /* legacy: the archive is the context of the stored dockerfile */
        BUILD_STEP_FILES,   /* legacy: the archive is extracted into the working directory */
        _BUILD_STEP_TYPE_MAX,
        _BUILD_STEP_TYPE_INVALID = -EINVAL,
};

struct build_step {
        enum build_step_type type;
        char **args; /* NULL-terminated; COPY: src… dest; ENV: k1 v1 k2 v2 …; RUN: command
                      * (exec form: argv) */
        size_t n_args;
        char *files_hash; /* 64 lower-case hex or NULL */
        bool force;
        /* Dockerfile extras */
        char *chown;    /* COPY --chown value ("user", "uid:gid"), NULL */
        bool exec_form; /* RUN ["a", "b"] */
        char **run_env; /* "K=V" build arguments for this RUN, NULL-terminated or NULL */
        int line;       /* Dockerfile line, 0 for API steps */
        /* E2B extras (BUILD_STEPS_E2B only) */
        bool e2b;      /* the step follows E2B's conventions (e2b.md §2.7) */
        char *user;    /* RUN: the user to run as; COPY: the owner ("name" or "name:group");
                        * NULL: the current build user */
        bool has_mode; /* COPY: mode was given */
        unsigned mode; /* COPY: permission bits of the copied files (octal in the request) */
        bool sudo;     /* USER: also grant passwordless sudo */
};

enum build_steps_flags {
        BUILD_STEPS_E2B = 1 << 0, /* E2B's step args (above) */
};

/* "COPY", "ENV", … ("context" and "files" in lower case, as the API spells them). */
const char *build_step_type_to_string(enum build_step_type t);
/* Case-insensitive; _BUILD_STEP_TYPE_INVALID when unknown. */
enum build_step_type build_step_type_from_string(const char *s);

/* True when s is a valid environment variable name (control-plane env rules:
 * [A-Za-z_][A-Za-z0-9_]*, ≤ 256 chars). */
bool build_env_key_valid(const char *s);

/* Validates and converts the JSON array `steps` (§7.2). EINVAL messages name the step:
 * "steps[2]: COPY needs exactly 2 non-empty args". *ret_legacy_hash receives the one distinct
 * hash of the legacy steps (context/files), or NULL. Uploaded-ness of hashes is the caller's
 * check (it needs the store). */
int build_steps_from_json(json_t *steps, struct build_step **ret, size_t *ret_n,
                          char **ret_legacy_hash, struct cove_err **err);
/* The same with flags (enum build_steps_flags). */
int build_steps_from_json_flags(json_t *steps, unsigned flags, struct build_step **ret,
                                size_t *ret_n, char **ret_legacy_hash, struct cove_err **err);
void build_step_release(struct build_step *s);
void build_steps_free(struct build_step *s, size_t n);
