/* SPDX-License-Identifier: MIT */
/*
 * interp_state.h — the code interpreter's contexts as coved keeps them inside the sandbox
 * (e2b.md §5.3; docs/decisions.md "The E2B face"), so that a restarted coved lists the same
 * contexts and finds their kernels again:
 *
 *   INTERP_STATE_PATH: {"v":1,"contexts":[{"id","language","cwd","pid"?}…]}   (root, 0600)
 *
 * The file lives in the sandbox, whose root may rewrite it: interp_state_parse() takes its
 * bytes as untrusted (a fuzz entry point). Anything off — not that shape, more than `max`
 * contexts, an ID that is not a lower-case UUID or appears twice, a language not in
 * `languages`, a cwd that is not an absolute path of at most INTERP_STATE_CWD_MAX bytes
 * without NUL, a pid outside 1..INT32_MAX — refuses the whole file (-EINVAL): the sandbox
 * then starts with fresh default contexts. A pid read back is only a hint: the caller checks
 * that the process still carries a kernel tag of the context (interp_state_is_kernel_tag()).
 *
 * Pure functions of bytes and records (jansson only); the caller reads and writes the file.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define INTERP_STATE_PATH    "/run/cove/interp/contexts.json"
#define INTERP_STATE_MAX     (256 * 1024) /* bytes of the file */
#define INTERP_STATE_CWD_MAX 4096
#define INTERP_STATE_ID_LEN  36
#define INTERP_KERNEL_TAG    "cove-interp-" /* + context ID + "-" + 8 hex: a Python kernel */

struct interp_state_ctx {
        char id[INTERP_STATE_ID_LEN + 1];
        char *language; /* owned */
        char *cwd;      /* owned */
        int64_t pid;    /* 0: no kernel */
};

/* Parses the file's bytes into *ret (n entries; caller frees with interp_state_free). */
int interp_state_parse(const char *p, size_t n, size_t max, const char *const *languages,
                       struct interp_state_ctx **ret, size_t *ret_n);
/* The file's text for n contexts (caller frees). */
char *interp_state_format(const struct interp_state_ctx *v, size_t n);
void interp_state_free(struct interp_state_ctx *v, size_t n);
/* A new kernel tag of context ctx_id, "cove-interp-<id>-<8 random hex>" (unique: the
 * agent refuses a tag a process still holds, and a killed kernel may hold it a moment longer);
 * caller frees. */
char *interp_state_kernel_tag(const char *ctx_id);
/* Whether tag is a kernel tag of context ctx_id. */
bool interp_state_is_kernel_tag(const char *tag, const char *ctx_id);
