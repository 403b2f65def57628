/* SPDX-License-Identifier: MIT */
/*
 * cove.h — libcove, the C client library of Cove (installed as <cove/cove.h>).
 *
 * libcove talks to `coved` over its public HTTP APIs only: the control plane under the API
 * root (`/api/v1`, spec control-plane.md) and a sandbox's runtime API at its `envdUrl`
 * (spec runtime.md), with libcurl for transport and jansson for JSON. JSON values cross this
 * API as jansson `json_t *`; the caller owns every `json_t *` returned through a `ret_*`
 * parameter and releases it with json_decref().
 *
 * Conventions (the same as the rest of Cove):
 *
 * - Every fallible function returns `>= 0` on success and a negative errno on failure:
 *   `-ENOENT` (404), `-EACCES` (401) or `-EIO` (any other error status) when the server
 *   answered with an error; `-ECONNREFUSED`, `-ETIMEDOUT`, `-EHOSTUNREACH` when it did not
 *   answer; `-EINVAL` for a bad argument. `struct cove_error.kind` says the same for humans.
 * - On failure, and only then, a function that takes `struct cove_error **err` stores a new
 *   error there (if `err` is not NULL and `*err` is still NULL: the first cause wins). The
 *   caller owns it and releases it with cove_error_free().
 * - `ret_*` out-parameters are written only on success.
 * - Strings passed in are borrowed for the duration of the call unless stated otherwise.
 *
 * Threads: a `struct cove_client` may be used by one thread at a time for ordinary calls.
 * cove_process_start() uses its own connection, so one thread may sit in a process stream
 * while another thread makes ordinary calls (SendInput, Update, …) on the same client; that
 * is how an interactive terminal is driven. Call cove_client_new() (which initialises
 * libcurl) before starting threads.
 */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* ---- errors ------------------------------------------------------------------------------ */

enum cove_error_kind {
        COVE_ERROR_NETWORK = 1, /* no HTTP answer: refused, DNS, timeout, TLS (http_status 0) */
        COVE_ERROR_AUTH,        /* 401: missing or rejected API key or runtime token */
        COVE_ERROR_NOT_FOUND,   /* 404: the object (sandbox, process, path, route) is not there */
        COVE_ERROR_API,         /* any other error answer, or an error inside a stream */
        COVE_ERROR_USAGE,       /* the caller passed something unusable; nothing was sent */
};

/*
 * A failed call. `message` is one line, lower-case start, what failed then why: the server's
 * `error.details`/`message` for API errors, or libcove's own text ("cannot reach
 * 'http://…': Connection refused"). `request_id` and `code` (the server's `error.code`, e.g.
 * "NOT_FOUND") are NULL when unknown. All strings are owned by the error.
 */
struct cove_error {
        int http_status;  /* 0 when there was no HTTP answer */
        char *message;    /* owned, never NULL */
        char *request_id; /* owned, may be NULL */
        char *code;       /* owned, may be NULL */
        int kind;         /* enum cove_error_kind */
};

/* Frees *err and sets it to NULL; accepts NULL and a pointer to NULL. */
void cove_error_free(struct cove_error **err);

/* ---- configuration (spec cli.md §1) ------------------------------------------------------ */

#define COVE_DEFAULT_URL "http://127.0.0.1:49982"

/*
 * The effective settings. cove_config_load() fills every field it finds; unset fields are
 * NULL. All strings are owned by the struct; release with cove_config_release().
 */
struct cove_config {
        char *url;              /* normalised API root, e.g. "http://127.0.0.1:49982/api/v1" */
        char *api_key;          /* may be NULL: no key anywhere */
        char *project_id;       /* may be NULL */
        char *config_path;      /* the stored configuration file that was (or would be) read */
        const char *url_source; /* static: "flag", "env", "config" or "default" */
        const char *key_source; /* static: "flag", "env", "config" or NULL */
};

/*
 * Resolves the settings with the precedence of cli.md §1: the flag_* arguments (may be NULL),
 * then COVE_URL / COVE_API_KEY / COVE_PROJECT_ID, then SEACLOUD_BASE_URL / SEACLOUD_API_KEY,
 * then the stored file ($COVE_CONFIG, else $XDG_CONFIG_HOME/cove/config.json, else
 * ~/.config/cove/config.json), then COVE_DEFAULT_URL. A missing file is not an error; an
 * unreadable or malformed one is (kind COVE_ERROR_USAGE). `cfg` is overwritten; after a
 * failure it holds nothing (cove_config_release() is then optional).
 */
int cove_config_load(struct cove_config *cfg, const char *flag_url, const char *flag_key,
                     const char *flag_project, struct cove_error **err);
void cove_config_release(struct cove_config *cfg);

/* The path of the stored configuration file (see above). Caller frees. */
char *cove_config_path(void);

/*
 * Updates the stored file at `path`: `url` and `api_key` replace the stored values when not
 * NULL; with `remove_key` the stored key is removed. Missing directories are created (0700);
 * the file is replaced atomically and has mode 0600. Other keys in the file are kept.
 */
int cove_config_store(const char *path, const char *url, const char *api_key, bool remove_key,
                      struct cove_error **err);

/*
 * Returns a new string: `url` without trailing slashes, with "/api/v1" appended unless it
 * already ends in "/api/v1", "/api/sandbox/v1" or "/api/v1/sandbox". NULL if `url` is not an
 * http:// or https:// URL.
 */
char *cove_url_normalize(const char *url);

/* ---- the client -------------------------------------------------------------------------- */

struct cove_client;

/*
 * A client for the API root `api_url` (normalised with cove_url_normalize(); NULL when it is
 * not a URL). `api_key` and `project_id` may be NULL. The strings are copied. The key is sent
 * as both `X-API-Key` and `Authorization: Bearer`, the project as `X-Project-ID`.
 */
struct cove_client *cove_client_new(const char *api_url, const char *api_key,
                                    const char *project_id);
/* Accepts NULL; returns NULL. */
struct cove_client *cove_client_free(struct cove_client *c);
/* The normalised API root (borrowed from c). */
const char *cove_client_url(const struct cove_client *c);
/* The path part of the API root, e.g. "/api/v1" (borrowed from c). */
const char *cove_client_api_path(const struct cove_client *c);
/* Per-request timeout in seconds for ordinary calls (default 180; 0 = none). */
void cove_client_set_timeout(struct cove_client *c, long seconds);

/* ---- generic calls ----------------------------------------------------------------------- */

/*
 * A successful answer. `body` is the parsed JSON body (NULL for an empty body, e.g. 204);
 * `next_token`/`has_next` come from the X-Next-Token / X-Has-Next headers of list routes.
 * Release with cove_response_release(); a zero-initialised struct is valid to release.
 */
struct cove_response {
        long status;
        json_t *body;     /* owned, may be NULL */
        char *request_id; /* owned, may be NULL */
        char *next_token; /* owned, NULL when absent or empty */
        bool has_next;
};
void cove_response_release(struct cove_response *r);

/*
 * Sends `method` to the API root + `path` ("/sandboxes/abc"). `query` (may be NULL) is an
 * object whose values are strings, integers, booleans, or arrays of those (sent as repeated
 * parameters); `body` (may be NULL: no body) is sent as JSON. A 2xx answer fills *ret (which
 * may be NULL to discard it); anything else is an error with the server's message.
 */
int cove_api_call(struct cove_client *c, const char *method, const char *path, const json_t *query,
                  const json_t *body, struct cove_response *ret, struct cove_error **err);

/*
 * PUT `len` bytes to an absolute URL the server handed out (the pre-signed upload URL of
 * build-plane.md §9). No API key is sent: the URL carries its own signature. 2xx → 0.
 */
int cove_put_url(struct cove_client *c, const char *url, const void *data, size_t len,
                 const char *content_type, struct cove_error **err);

/* Builds "path?query" exactly as cove_api_call() sends it (without the root). Caller frees. */
char *cove_query_string(const json_t *query);

/* The server's version, from `cove_build_info` on GET {api}/metrics. Caller frees. */
int cove_server_version(struct cove_client *c, char **ret_version, struct cove_error **err);

/* ---- sandboxes (control-plane.md) -------------------------------------------------------- */

/*
 * POST /sandboxes with `request` as the NewSandboxRequest (may be NULL: the server's
 * defaults, template `base`). *ret_sandbox gets the `Sandbox` object.
 */
int cove_sandbox_create(struct cove_client *c, const json_t *request, json_t **ret_sandbox,
                        struct cove_error **err);

/* One page of GET /sandboxes. `query` as in cove_api_call() (state, metadata, limit,
 * nextToken). *ret_items is the array; *ret_next_token is NULL on the last page. */
int cove_sandbox_list(struct cove_client *c, const json_t *query, json_t **ret_items,
                      char **ret_next_token, struct cove_error **err);

int cove_sandbox_get(struct cove_client *c, const char *id, json_t **ret_detail,
                     struct cove_error **err);
int cove_sandbox_delete(struct cove_client *c, const char *id, struct cove_error **err);
/* POST /connect {"timeout": timeout_s}; resumes a paused sandbox. *ret_sandbox: `Sandbox`. */
int cove_sandbox_connect(struct cove_client *c, const char *id, int timeout_s, json_t **ret_sandbox,
                         struct cove_error **err);
int cove_sandbox_pause(struct cove_client *c, const char *id, struct cove_error **err);
int cove_sandbox_set_timeout(struct cove_client *c, const char *id, int timeout_s,
                             struct cove_error **err);
/* duration_s < 0: no body (the server's default of 300 s). */
int cove_sandbox_refresh(struct cove_client *c, const char *id, int duration_s,
                         struct cove_error **err);
/* GET /sandboxes/{id}/logs with `query` (cursor, limit, direction, level, search). */
int cove_sandbox_logs(struct cove_client *c, const char *id, const json_t *query, json_t **ret_logs,
                      struct cove_error **err);

/* ---- the runtime of one sandbox (runtime.md) --------------------------------------------- */

/*
 * Where and as whom runtime calls go. Fill it from a `Sandbox` object (create or connect)
 * with cove_runtime_init(); `user` (may be NULL: root) is sent as
 * `Authorization: Basic base64("user:")`, the token as `X-Access-Token`.
 */
struct cove_runtime {
        char *envd_url; /* owned */
        char *token;    /* owned, may be NULL */
        char *user;     /* owned, may be NULL */
};
/* -EINVAL (COVE_ERROR_USAGE) when the object has no `envdUrl`. */
int cove_runtime_init(struct cove_runtime *rt, const json_t *sandbox, const char *user,
                      struct cove_error **err);
void cove_runtime_release(struct cove_runtime *rt);

/* GET /files?path=: the whole file into a new buffer (NUL-terminated; *ret_len excludes the
 * NUL), at most `max` bytes (-E2BIG beyond). */
int cove_files_read(struct cove_client *c, const struct cove_runtime *rt, const char *path,
                    size_t max, char **ret_data, size_t *ret_len, struct cove_error **err);
/* GET /files?path= streamed into `out` (not closed). */
int cove_files_read_to(struct cove_client *c, const struct cove_runtime *rt, const char *path,
                       FILE *out, struct cove_error **err);
/* POST /files?path= with the raw bytes; parents are created by the server. */
int cove_files_write(struct cove_client *c, const struct cove_runtime *rt, const char *path,
                     const void *data, size_t len, struct cove_error **err);

/* POST /files?path= with the bytes read from `in` until its end, streamed (never held whole
 * in memory): `len` is the length when known (a regular file), else -1 (sent chunked). */
int cove_files_write_from(struct cove_client *c, const struct cove_runtime *rt, const char *path,
                          FILE *in, int64_t len, struct cove_error **err);

/* POST /run with `request` ({cmd, args?, cwd?, env?, stdin?, timeoutMs?}); *ret_result gets
 * {stdout, stderr, exit_code, duration_ms, error?}. */
int cove_run(struct cove_client *c, const struct cove_runtime *rt, const json_t *request,
             json_t **ret_result, struct cove_error **err);

/* How a process ended (the `end` event, runtime.md §8.3). Strings borrowed for the call. */
struct cove_process_end {
        bool exited;
        int exit_code;      /* N, or 128 + signal */
        const char *status; /* "exit status 0", "signal: killed" */
        const char *error;  /* NULL, or "process timed out after … ms" */
};

/*
 * Stream callbacks, all optional, called on the thread that runs cove_process_start(), in
 * stream order. Data is the decoded bytes, borrowed for the call. A callback returning
 * non-zero stops the stream: cove_process_start() then returns 1 (the process keeps
 * running in the sandbox: that is how background commands detach).
 */
struct cove_process_callbacks {
        int (*on_start)(void *userdata, int64_t pid, const char *cmd_id);
        int (*on_stdout)(void *userdata, const void *data, size_t len);
        int (*on_stderr)(void *userdata, const void *data, size_t len);
        int (*on_pty)(void *userdata, const void *data, size_t len);
        int (*on_end)(void *userdata, const struct cove_process_end *end);
};

/*
 * process.Process/Start with `request` (a ProcessStartRequest: {process: {cmd, args, envs,
 * cwd}, stdin, pty, timeoutMs, tag}), reading the Connect stream (5-byte envelopes: flags,
 * big-endian length; empty keepalives skipped; flag 0x02 ends it) as it arrives and calling
 * `cb`. Returns 0 when the stream ended normally, 1 when a callback stopped it, < 0 on
 * failure (an error end envelope becomes a COVE_ERROR_API error). No overall time limit.
 * `cancel` (may be NULL) is polled by libcurl's progress callback (at least about once a
 * second, and whenever data arrives); when it becomes non-zero the call returns -ECANCELED.
 */
int cove_process_start(struct cove_client *c, const struct cove_runtime *rt, const json_t *request,
                       const struct cove_process_callbacks *cb, void *userdata,
                       const volatile int *cancel, struct cove_error **err);

/* SendInput: `data` goes to the process's stdin, or to its terminal when `pty`. */
int cove_process_send_input(struct cove_client *c, const struct cove_runtime *rt, int64_t pid,
                            bool pty, const void *data, size_t len, struct cove_error **err);
/* CloseStdin: end of file on the process's stdin. */
int cove_process_close_stdin(struct cove_client *c, const struct cove_runtime *rt, int64_t pid,
                             struct cove_error **err);
/* Update: resize the process's terminal. */
int cove_process_pty_resize(struct cove_client *c, const struct cove_runtime *rt, int64_t pid,
                            unsigned cols, unsigned rows, struct cove_error **err);
/* SendSignal: `signal` as spelt in runtime.md §8.6 ("SIGTERM", "SIGNAL_SIGKILL", …). */
int cove_process_signal(struct cove_client *c, const struct cove_runtime *rt, int64_t pid,
                        const char *signal, struct cove_error **err);
/* GetResult {cmdId}: *ret_result gets {exitCode, stdout, stderr, startedAtUnix}. */
int cove_process_get_result(struct cove_client *c, const struct cove_runtime *rt,
                            const char *cmd_id, json_t **ret_result, struct cove_error **err);

/* A unary Connect-RPC call, e.g. method "filesystem.Filesystem/ListDir". */
int cove_rpc(struct cove_client *c, const struct cove_runtime *rt, const char *method,
             const json_t *request, json_t **ret_response, struct cove_error **err);
