/* SPDX-License-Identifier: MIT */
/*
 * templates.h — where templates come from: the official templates (`base`,
 * `code-interpreter`, defaults.c) and the build plane (build-plane.md): templates, builds,
 * tags, aliases, uploaded build archives, and the builds themselves (OCI pulls, Dockerfiles,
 * steps, layers; builds.c). Handlers in api/seacloud/templates.c call the functions below and
 * reply with what they return; the work and the store access are here.
 *
 * Every call takes the caller (struct tpl_caller) and applies the visibility rules of
 * build-plane.md §2/§3: templates the caller may not see are 404 "template '<ref>' not found",
 * mutating a template the caller may only see (public, official) is 403. Results are JSON
 * bodies in the spec's shapes (new references); errors carry the spec's status in err.
 */
#pragma once

#include "coved/coved.h"
#include "lib/err.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Creates `base` and `code-interpreter` when missing (idempotent, also after a purge). */
int templates_ensure_defaults(struct coved *cd, struct cove_err **err);

struct tpl_caller {
        const char *team_id;
        const char *key_id;
        bool admin;
};

/* At start, after the store: layer and blob stores, upload secret, recovery of builds a
 * crash interrupted (→ error), build workers. */
int templates_init(struct coved *cd, struct cove_err **err);
/* Stops the workers (running builds end as error "coved stopped"). */
void templates_stop(struct coved *cd);

int templates_create(struct coved *cd, const struct tpl_caller *c, json_t *body, json_t **ret,
                     struct cove_err **err);
/* The same with the new build's ID chosen by the caller (E2B's UUIDs, e2b.md §2.7): a DNS
 * label (400 otherwise), 409 when the template has a build of that ID. */
int templates_create_with_build(struct coved *cd, const struct tpl_caller *c, json_t *body,
                                const char *build_id, json_t **ret, struct cove_err **err);
struct tpl_list_query {
        const char *visibility; /* NULL or personal|private|team|official|public */
        const char *team_id;    /* NULL or a team of the caller */
        int64_t limit, offset;
};
int templates_list(struct coved *cd, const struct tpl_caller *c, const struct tpl_list_query *q,
                   json_t **ret, struct cove_err **err);
int templates_get(struct coved *cd, const struct tpl_caller *c, const char *ref, int64_t limit,
                  const char *next_token, json_t **ret, struct cove_err **err);
int templates_update(struct coved *cd, const struct tpl_caller *c, const char *ref, json_t *body,
                     json_t **ret, struct cove_err **err);
int templates_delete(struct coved *cd, const struct tpl_caller *c, const char *ref,
                     struct cove_err **err);
int templates_alias_lookup(struct coved *cd, const struct tpl_caller *c, const char *ref,
                           json_t **ret, struct cove_err **err);
int templates_resolve_ref(struct coved *cd, const struct tpl_caller *c, const char *ref,
                          json_t **ret, struct cove_err **err);
/* For sandbox creation: the template `ref` resolves to for the caller (§3: ID, official
 * type, alias, name in the caller's team; visibility; ":tag"), 404 otherwise. With a tag
 * naming another build than the current one, the record carries that build's layers, binds
 * and config. The caller frees it (template_rec_free) after manager_create. */
int templates_for_spawn(struct coved *cd, const struct tpl_caller *c, const char *ref,
                        struct template_rec **ret, struct cove_err **err);

int templates_tags_assign(struct coved *cd, const struct tpl_caller *c, json_t *body, json_t **ret,
                          struct cove_err **err);
int templates_tags_delete(struct coved *cd, const struct tpl_caller *c, json_t *body,
                          struct cove_err **err);
int templates_tags_list(struct coved *cd, const struct tpl_caller *c, const char *ref, json_t **ret,
                        struct cove_err **err);

/* build_id NULL: POST …/builds (answers BuildResponse); else …/builds/{id} (answers {}). */
int templates_build_trigger(struct coved *cd, const struct tpl_caller *c, const char *ref,
                            const char *build_id, json_t *body, json_t **ret,
                            struct cove_err **err);
/* E2B's trigger (e2b.md §2.7): the body is E2B's BuildRequest (steps with E2B's args), and
 * the build follows E2B's conventions (build user `user` in /home/user, COPY owners and
 * modes, RUN users, USER creates missing accounts); answers nothing (the route sends {}). */
int templates_build_trigger_e2b(struct coved *cd, const struct tpl_caller *c, const char *ref,
                                const char *build_id, json_t *body, struct cove_err **err);
int templates_builds_list(struct coved *cd, const struct tpl_caller *c, const char *ref,
                          int64_t offset, int64_t limit, json_t **ret, struct cove_err **err);
int templates_build_get(struct coved *cd, const struct tpl_caller *c, const char *ref,
                        const char *build_id, json_t **ret, struct cove_err **err);
int templates_build_status(struct coved *cd, const struct tpl_caller *c, const char *ref,
                           const char *build_id, int64_t logs_offset, int64_t limit,
                           const char *level, json_t **ret, struct cove_err **err);
int templates_build_logs(struct coved *cd, const struct tpl_caller *c, const char *ref,
                         const char *build_id, int64_t cursor, int64_t limit, bool backward,
                         const char *level, json_t **ret, struct cove_err **err);
/* The same with the cursor in Unix milliseconds (E2B, e2b.md §2.7): forward entries at or
 * after it, backward entries at or before it (newest first); cursor_ms < 0: from the oldest or
 * the newest. */
int templates_build_logs_ms(struct coved *cd, const struct tpl_caller *c, const char *ref,
                            const char *build_id, int64_t cursor_ms, int64_t limit, bool backward,
                            const char *level, json_t **ret, struct cove_err **err);
int templates_rollback(struct coved *cd, const struct tpl_caller *c, const char *ref, json_t *body,
                       json_t **ret, struct cove_err **err);
/* POST /build (§12); 404 when the operator turned it off. */
int templates_direct_build(struct coved *cd, const struct tpl_caller *c, json_t *body, json_t **ret,
                           struct cove_err **err);

/* GET …/files/{hash}: {present, url}. opaque: E2B's content hash (e2b.md §2.7): the URL
 * carries &opaque=1 and its upload is not checked against the hash. */
int templates_files_get(struct coved *cd, const struct tpl_caller *c, const char *ref,
                        const char *hash, bool opaque, json_t **ret, struct cove_err **err);
/* PUT /build-files/{templateID}/{hash}?expires&signature[&opaque=1] (§9), streamed. begin
 * checks the signature (403) and opens a temporary file; write hashes and stores; finish
 * verifies the hash (400; not for opaque uploads) and the archive (400: a gzip-compressed tar,
 * or for opaque uploads a plain one too) and publishes it (replacing any stored copy). */
struct tpl_upload;
int templates_upload_begin(struct coved *cd, const char *template_id, const char *hash,
                           const char *expires, const char *signature, bool opaque,
                           struct tpl_upload **ret, struct cove_err **err);
int templates_upload_write(struct tpl_upload *u, const void *p, size_t n, struct cove_err **err);
int templates_upload_finish(struct tpl_upload *u, struct cove_err **err);
void templates_upload_free(struct tpl_upload *u);
