/* SPDX-License-Identifier: MIT */
/*
 * cli.h — what the `cove` commands share (git builtin.h in spirit).
 *
 * Every command is `int cmd_<name>(int argc, char **argv)` where argv[0] is the command's own
 * name; it returns the process exit code (spec cli.md §2: 0, 1 error, 2 usage, 3 credentials,
 * n the remote exit code for `sandbox exec`). Commands parse their flags with opt_parse(),
 * which also accepts the global flags (arg_*) anywhere on the line and prints --help.
 *
 * Requests go through cli_call(): it prints the request instead of sending it under
 * --dry-run, and prints errors in the one-line form `cove: <message> (request <id>)`.
 */
#pragma once

#include "libcove/cove.h"

#include <stdbool.h>
#include <stdint.h>

/* Exit codes (cli.md §2). */
#define EXIT_API   1
#define EXIT_USAGE 2
#define EXIT_AUTH  3

enum output_mode {
        OUTPUT_TABLE,
        OUTPUT_JSON,
};

/* Global flags. */
extern const char *arg_url;
extern const char *arg_api_key;
extern const char *arg_project_id;
extern bool arg_dry_run;
extern enum output_mode arg_output;

/* ---- options ---- */

enum opt_type {
        OPT_BOOL,   /* int*: -1 unset; `--x`, `--x=true|false`, `--x true|false` */
        OPT_STRING, /* const char**: `--x v` or `--x=v` */
        OPT_INT,    /* int64_t*: -1 unset; a non-negative decimal */
        OPT_LIST,   /* char***: NULL-terminated, repeats and commas both append */
};

struct opt {
        const char *name;  /* without the leading "--" */
        const char *alias; /* another long name, may be NULL */
        enum opt_type type;
        void *dst;
        const char *help;
};

struct cmd_help {
        const char *usage;   /* "cove sandbox exec <id> <command…> [flags]" */
        const char *summary; /* one or more lines */
};

/*
 * Parses argv[1..] into `opts` (NULL-terminated by a zero entry) and the global flags.
 * Positional arguments are collected into *ret_pos (borrowed from argv, NULL-terminated).
 * After `stop_after` positionals (0: never) or after "--", everything else is positional.
 * `-h`/`--help` prints the help and exits 0. Returns the number of positionals, or -1 after
 * printing a usage error (the caller returns EXIT_USAGE).
 */
int opt_parse(int argc, char **argv, const struct opt *opts, const struct cmd_help *help,
              int stop_after, char ***ret_pos);

/* Prints a usage error and returns EXIT_USAGE. */
int usage_error(const struct cmd_help *help, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));

/* Parses "k=v" items into an object of strings; -1 after printing a usage error. */
int parse_kv_list(char **items, const char *flag, json_t **ret);

/* ---- requests ---- */

/* A request as --dry-run prints it (cli.md §2). The strings are borrowed; the json_t values
 * are owned and released by cli_req_release(). */
struct cli_req {
        const char *action; /* "create sandbox" */
        const char *method;
        char *path;    /* owned, relative to the API root: "/sandboxes/x" */
        json_t *query; /* owned object, may be NULL */
        json_t *body;  /* owned, may be NULL */
        json_t *ids;   /* owned array, may be NULL */
        json_t *notes; /* owned array, may be NULL */
        bool destructive;
};

void cli_req_release(struct cli_req *rq);
void cli_req_note(struct cli_req *rq, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The client for the configured server (exits with EXIT_USAGE on a bad configuration). */
struct cove_client *cli_client(void);

#define CLI_DRY_RUN (-1)
/* Sends rq (or prints it under --dry-run: returns CLI_DRY_RUN). 0 on success with *ret
 * filled (may be NULL); on failure prints the error and returns the exit code. */
int cli_call(struct cli_req *rq, struct cove_response *ret);
/* Sends rq and prints the answer: JSON mode prints the body; table mode calls `table` on the
 * body, or prints `done` (for bodiless answers), or falls back to JSON. Releases rq; returns
 * the exit code. */
int cli_run(struct cli_req *rq, void (*table)(const json_t *body), const char *done);
/* Prints the dry-run JSON of rq. */
void cli_print_dry_run(const struct cli_req *rq);

/* Prints err (and frees it); returns the exit code for it. */
int cli_error(struct cove_error **err);

/* JSON output: v indented by 2 spaces, with a newline. */
void print_json(const json_t *v);
/* A small aligned table on stdout: rows of `ncols` strings (NULL prints "-"). */
struct table;
struct table *table_new(const char *const *headers, size_t ncols);
void table_add(struct table *t, ...); /* ncols const char * arguments */
void table_print_free(struct table *t);

/* Shortens "2026-06-10T08:55:50.123Z" to "2026-06-10 08:55:50" (static buffer per call). */
const char *short_time(const char *ts);
const char *json_str(const json_t *obj, const char *key);

/* ---- commands ---- */

int cmd_auth(int argc, char **argv);
int cmd_sandbox(int argc, char **argv);
int cmd_template(int argc, char **argv);
int cmd_template_init(int argc, char **argv);
int cmd_template_build(int argc, char **argv);
int cmd_admin(int argc, char **argv);
int cmd_version(int argc, char **argv);
/* cmd_admin_tenancy.c: `cove admin team …`, `cove admin key …` */
int cmd_admin_team(int argc, char **argv);
int cmd_admin_key(int argc, char **argv);

/* cmd_run.c: `cove sandbox run|upload|download|wake` (cli.md §4, Cove additions). */
int cmd_sandbox_run(int argc, char **argv);
int cmd_sandbox_upload(int argc, char **argv);
int cmd_sandbox_download(int argc, char **argv);
int cmd_sandbox_wake(int argc, char **argv);

/* cmd_exec.c */
int cmd_sandbox_exec(int argc, char **argv);
int cmd_sandbox_connect(int argc, char **argv);
/* Runs a ProcessStartRequest (taken) in the sandbox of rt, streaming its output, forwarding
 * piped stdin when `forward`. A signal arriving on sigfd (a signalfd, or -1) cancels the
 * stream: then 128 + its number is returned; otherwise the command's exit code (cli.md §2). */
int process_stream(struct cove_client *c, const struct cove_runtime *rt, json_t *request,
                   bool forward, int sigfd);
/* Joins command words into the one line that `sh -lc` runs (caller frees). */
char *join_words(char **words);
/* The interactive PTY session on an already-connected sandbox; returns the exit code. */
int pty_session(struct cove_client *c, const json_t *sandbox, const char *shell);

/* Dispatch through a table of subcommands (argv[0] is the group's name). */
struct cmd {
        const char *name;
        const char *aliases; /* space-separated, may be NULL */
        int (*fn)(int argc, char **argv);
        const char *summary;
};
int cmd_dispatch(const struct cmd *table, const char *group, int argc, char **argv);
