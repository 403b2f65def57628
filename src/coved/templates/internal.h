/* SPDX-License-Identifier: MIT */
/*
 * internal.h — shared by templates/ only: the build plane's state (struct builder), build
 * jobs, and what service.c (routes' work) calls of builds.c (running builds) and both call of
 * resolve.c (visibility and resolution). builds.c never calls service.c.
 *
 * Locking: builder.lock guards the queue, the running list and each job's `cancel` and
 * `sandbox_id`; it is never held across a store call that waits, a pull, or a child process.
 * The store is the truth for templates and builds: every state change is written there first.
 */
#pragma once

#include "build/blobstore.h"
#include "build/layerstore.h"
#include "build/registry.h"
#include "build/request.h"
#include "coved/coved.h"
#include "coved/templates/templates.h"
#include "lib/err.h"
#include "store/store.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#define BUILD_TIMEOUT_MS   (60LL * 60 * 1000)
#define WAITING_EXPIRY_MS  (24LL * 60 * 60 * 1000)
#define UPLOAD_SECRET_LEN  32
#define BUILD_FILES_TTL_MS (7LL * 24 * 60 * 60 * 1000)

struct build_job {
        char *template_id;
        char *build_id;
        char *team_id; /* the caller that triggered it */
        char *key_id;
        struct build_req req; /* with credentials: wiped when the job is freed */
        volatile int cancel;  /* set under builder.lock: template deleted, shutdown */
        char *cancel_reason;  /* owned, under builder.lock */
        char sandbox_id[24];  /* the build sandbox running a step, "" between steps */
        int64_t started_mono_ms;
        struct build_job *next;
};

struct builder {
        struct coved *cd;
        struct blob_store *blobs;
        struct layer_store *layers;
        char *files_dir; /* <data>/build-files: uploaded archives, per team */
        struct registry_mirror *mirrors;
        size_t n_mirrors;
        unsigned char secret[UPLOAD_SECRET_LEN];
        pthread_mutex_t lock;
        pthread_cond_t cond;
        struct build_job *queue;   /* FIFO */
        struct build_job *running; /* list */
        pthread_t *workers;
        size_t n_workers;
        bool stopping;
        bool gc_running; /* layer GC: no build starts meanwhile */
        bool gc_wanted;  /* a template went: collect once no build runs */
        pthread_t gc_thread;
        bool gc_thread_started;
};

/* resolve.c: visibility (§2) and resolution (§3) */
/* 404 "template '<ref>' not found". */
int tpl_not_found(const char *ref, struct cove_err **err);
bool tpl_is_official(const struct template_rec *t);
/* Public or official. */
bool tpl_is_public(const struct template_rec *t);
/* Public, or the caller's in its own right (its team's, or personal of its key). */
bool tpl_visible(const struct template_rec *t, const struct tpl_caller *c);
/* Official: admins only; else the caller's in its own right. */
bool tpl_may_change(const struct template_rec *t, const struct tpl_caller *c);
/* §3 steps 2–5 (no tag): the template ref names for the caller, or 404. */
int tpl_resolve(struct coved *cd, const struct tpl_caller *c, const char *ref,
                struct template_rec **ret, struct cove_err **err);
/* tpl_resolve(), then 403 unless the caller may change it (mutating routes). */
int tpl_resolve_owned(struct coved *cd, const struct tpl_caller *c, const char *ref,
                      struct template_rec **ret, struct cove_err **err);
/* §3 with a ":tag" (at the last ':'): the template and the tagged build's ID in *ret_build
 * (left alone without a tag); 404 for an unknown tag. */
int tpl_resolve_tagged(struct coved *cd, const struct tpl_caller *c, const char *ref,
                       struct template_rec **ret, char **ret_build, struct cove_err **err);
/* The ID of the template `ref` (no tag) resolves to for the caller (§3), or 404. */
int templates_resolve_id(struct coved *cd, const struct tpl_caller *c, const char *ref,
                         char **ret_id, struct cove_err **err);

/* builds.c */
int builder_start_workers(struct builder *b, struct cove_err **err);
void builder_stop_workers(struct builder *b);
/* Queues a started build (status waiting, triggered): the job is taken over. */
void builder_enqueue(struct builder *b, struct build_job *job);
/* Cancels the queued or running builds of a template (deleted): queued ones become cancelled
 * at once, running ones stop at their next check. */
void builder_cancel_template(struct builder *b, const char *template_id, const char *reason);
void build_job_free(struct build_job *j);
/* Appends a log entry of a build (errors are logged, never fatal). */
void build_log(struct coved *cd, const char *template_id, const char *build_id, const char *level,
               const char *step, const char *fmt, ...) __attribute__((format(printf, 6, 7)));
/* Build becomes ready: tags, current build, pin (§10), the template's layers. */
int builds_mark_ready(struct coved *cd, struct template_rec *t, struct build_rec *b,
                      struct cove_err **err);
/* Marks a build terminal (error / cancelled) with its message. */
void builds_mark_failed(struct coved *cd, const char *template_id, const char *build_id,
                        const char *status, const char *step, const char *message);
/* Layer GC: removes every layer no build holds (skipped while builds run). */
int builder_gc_layers(struct builder *b, int64_t *ret_removed, struct cove_err **err);
/* The lowerdir paths (topmost first) to mount a stack of layers (keys bottom → top, plus host
 * directories below them): a stack too deep for one mount has its bottom flattened into one
 * layer, whose key is added to *ret_extra_keys (for the build to hold). NULL with err. */
json_t *builder_mount_stack(struct builder *b, const json_t *keys_bottom_up,
                            const json_t *base_paths, json_t **ret_extra_keys,
                            struct cove_err **err);
/* Makes t's layers, binds and build config those of its ready build b (the layer stack
 * mounted as builder_mount_stack() says; a flattened bottom is held by b). 0, or -EIO with
 * err (t unchanged). */
int template_take_build_layers(struct coved *cd, struct template_rec *t, const struct build_rec *b,
                               struct cove_err **err);
/* Asks the GC thread for a collection as soon as no build runs. */
void builder_gc_soon(struct builder *b);
/* The path of an uploaded archive (team, hash), caller frees. */
char *builder_file_path(struct builder *b, const char *team_id, const char *hash);
/* Layer keys → host paths, topmost first (the template's `layers` for sandboxes). */
json_t *layer_paths_top_first(struct builder *b, const json_t *keys_bottom_up);
