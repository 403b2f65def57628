/* SPDX-License-Identifier: MIT */
/*
 * request.h — the build plane's request bodies and names, validated as build-plane.md says,
 * independent of the HTTP server (pure functions: fuzz entry points).
 *
 * template_req_parse(): the union of the three generations of template create/update bodies
 * (§4, §5.3): flat fields, `extensions.<key>` and `extensions.seacloud.<key>`, with the
 * precedence seacloud > extensions > top level for the extension keys (baseTemplateID,
 * visibility, envs, storageType, storageSizeGB, volumeMounts, workdir). Every rule of §4.1 that
 * needs no store is applied here (types, ranges against the operator limits, name and tag
 * rules, `name:tag`, image references, the Dockerfile subset, storageType, storageSizeGB →
 * diskSizeMB); what needs the store or the HTTP layer is left to the caller: teamID membership,
 * baseTemplateID resolution, the env and volumeMounts rules (coved's validators), alias
 * clashes. Errors are EINVAL with the spec's messages, fit for a 400.
 * Create applies the defaults (tags ["latest"], cpu 2, memory 1024, disk 10240, visibility
 * team); PATCH reports whether any recognised field was present ("no updatable template
 * fields" otherwise).
 *
 * build_req_parse(): BuildRequest (§7.1), including `steps` (steps.h) and
 * `fromImageRegistry` credentials, which are kept only in the returned struct: free it with
 * build_req_release(), which wipes them.
 */
#pragma once

#include "build/steps.h"
#include "lib/err.h"
#include "lib/json.h"

#include <stdbool.h>
#include <stdint.h>

#define TEMPLATE_NAME_MAX    128
#define TEMPLATE_TAG_MAX     64
#define TEMPLATE_TAGS_MAX    10
#define TEMPLATE_CMD_MAX     4096
#define BUILD_ID_MAX         63
#define DOCKERFILE_FIELD_MAX (256 * 1024)

/* Names (§2): 1–128 of [A-Za-z0-9._-], starting with a letter or digit; for template names
 * (not aliases) also not "tpl-…", "tags", "aliases", "resolve" nor an official type. */
int template_name_check(const char *what, const char *name, bool is_alias,
                        char *const *official_types, struct cove_err **err);
/* Tags (§2): 1–64 of [A-Za-z0-9._-], starting with a letter or digit. */
int template_tag_check(const char *tag, struct cove_err **err);
/* Build IDs (§7.1): a DNS label [a-z0-9]([-a-z0-9]*[a-z0-9])?, at most 63 chars. */
int build_id_check(const char *id, struct cove_err **err);

enum template_visibility {
        TEMPLATE_PERSONAL,
        TEMPLATE_TEAM,
        TEMPLATE_OFFICIAL,
        _TEMPLATE_VISIBILITY_MAX,
        _TEMPLATE_VISIBILITY_INVALID = -EINVAL,
};
const char *template_visibility_to_string(enum template_visibility v);
/* "personal", "private" (= personal), "team", "official". */
enum template_visibility template_visibility_from_string(const char *s);

struct template_limits {
        int64_t max_cpu;             /* default 8 */
        int64_t max_memory_mb;       /* default 16384 */
        int64_t max_disk_mb;         /* default 51200 */
        int64_t max_storage_gb;      /* default max_disk_mb / 1024 */
        char *const *official_types; /* names template names may not take; NULL-terminated */
};

struct template_req {
        char *name;  /* without a ":tag" suffix */
        char **tags; /* create: requested tags (default ["latest"]), NULL-terminated */
        char *alias;
        char *team_id;
        struct json_bool public_;
        struct json_int cpu_count, memory_mb, disk_size_mb, ttl_seconds, port, storage_size_gb;
        bool has_visibility;
        enum template_visibility visibility;
        char *base_template_id;
        char *image;      /* as given (validated) */
        char *dockerfile; /* validated against the subset */
        json_t *envs;     /* object of strings (the env rules are the caller's) */
        char *start_cmd, *ready_cmd, *workdir;
        char *storage_type;    /* "ephemeral" when given */
        json_t *volume_mounts; /* array (the volumeMounts rules are the caller's) */
        bool any_field;        /* a recognised field was present */
};

int template_req_parse(json_t *body, bool create, const struct template_limits *lim,
                       struct template_req *ret, struct cove_err **err);
void template_req_release(struct template_req *r);

enum registry_cred_type {
        REGISTRY_CRED_NONE,
        REGISTRY_CRED_BASIC, /* {"type":"registry", username, password} */
        REGISTRY_CRED_AWS,   /* {"type":"aws", awsAccessKeyId, awsSecretAccessKey, awsRegion} */
        REGISTRY_CRED_GCP,   /* {"type":"gcp", serviceAccountJson} */
};

struct build_req {
        char *from_template;
        char *from_image;
        enum registry_cred_type cred_type;
        char *username, *password; /* BASIC, and GCP as "_json_key" + the JSON */
        char *aws_key_id, *aws_secret, *aws_region;
        struct json_bool force;
        struct build_step *steps;
        size_t n_steps;
        bool has_steps;
        char *legacy_hash; /* the one hash of context/files steps, or NULL */
        char *files_hash;  /* top-level filesHash */
        char *start_cmd, *ready_cmd;
        char *build_id;
        bool e2b; /* E2B's step conventions (e2b.md §2.7): build_req_parse_e2b() */
};

/* allow_build_id: only POST /templates/{id}/builds takes `buildID` in the body. An absent or
 * empty body is an empty request. */
int build_req_parse(json_t *body, bool allow_build_id, struct build_req *ret,
                    struct cove_err **err);
/* A BuildRequest of E2B's template builder (POST /v2/templates/{id}/builds/{buildID}): the
 * same fields, steps with E2B's args (steps.h BUILD_STEPS_E2B), extra step keys ignored;
 * ret->e2b is set. */
int build_req_parse_e2b(json_t *body, struct build_req *ret, struct cove_err **err);
void build_req_release(struct build_req *r);
