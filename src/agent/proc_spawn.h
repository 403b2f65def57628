/* SPDX-License-Identifier: MIT */
/*
 * proc_spawn.h — helpers shared by proc.c (process.* ops) and proc_run.c (`run`):
 * starting a child as the acting user, its environment and working directory, and turning
 * output and wait statuses into the spec's shapes (runtime.md §4.7, §8).
 *
 * proc_spawn() does everything that can fail before fork (argv, envp, PATH candidates, pipes,
 * PTY), then starts the child with vfork semantics (clone CLONE_VM|CLONE_VFORK, all signals
 * blocked meanwhile); the child only makes async-signal-safe calls and reports a failure over a
 * CLOEXEC pipe, so a missing executable or cwd is known before the caller answers. The child
 * starts with every signal at its default disposition and an empty blocked mask, whatever the
 * agent inherited, and with the RLIMIT_NOFILE the agent was given.
 */
#pragma once

#include "agent/agent.h"
#include "lib/err.h"

#include <stdbool.h>
#include <stddef.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/types.h>

#define PROC_OUTPUT_MAX   (16 * 1024 * 1024) /* retained bytes per stream */
#define PROC_READ_CHUNK   (64 * 1024)        /* raw bytes per data event */
#define PROC_DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

/* The RLIMIT_NOFILE children get (the agent raises its own soft limit; proc_init). */
extern struct rlimit proc_child_nofile;
extern bool proc_child_nofile_set;
/* The signals a child resets before exec (lib/sigreset.h): what was not at SIG_DFL when the
 * agent started (proc_init(); the agent installs no handlers and ignores nothing later), set
 * once before any thread; every signal when not set. */
extern sigset_t proc_child_sigreset;
extern bool proc_child_sigreset_set;

struct proc_spawn_opts {
        const char *cmd;               /* borrowed */
        char *const *args;             /* borrowed, NULL-terminated, may be NULL */
        char *const *envp;             /* borrowed, NULL-terminated "K=V" */
        const char *cwd;               /* borrowed, absolute */
        const struct agent_user *user; /* borrowed */
        bool stdin_pipe;               /* false: /dev/null */
        bool pty;
        unsigned short cols, rows;
};

struct proc_spawned {
        pid_t pid;     /* leader of its own session and process group */
        int pidfd;     /* -1 when the kernel has no pidfd_open */
        int stdin_fd;  /* write end (non-blocking) or -1; for a PTY, -1 (use master_fd) */
        int stdout_fd; /* read end (non-blocking); -1 for a PTY */
        int stderr_fd; /* read end (non-blocking); -1 for a PTY */
        int master_fd; /* PTY master (non-blocking) or -1 */
};

/* On failure the error carries status 400 when the executable or cwd is missing. */
int proc_spawn(const struct proc_spawn_opts *o, struct proc_spawned *ret, struct cove_err **err);
void proc_spawned_close(struct proc_spawned *s);

/* The process environment: call env, HOME/USER/LOGNAME, PATH default, extra (object of
 * strings, may be NULL), TERM for PTYs. NULL-terminated, caller frees with strv_free(). */
char **proc_build_env(const struct agent_call *c, json_t *extra, bool pty);
/* Absolute, lexically normalised working directory: cwd (absolute, or relative to the
 * default), else the call's workdir, else the user's home. Caller frees. */
char *proc_resolve_cwd(const struct agent_call *c, const char *cwd);

/* Bytes as a JSON string of valid UTF-8 (invalid sequences become U+FFFD). */
json_t *proc_text_json(const char *p, size_t n);
/* "exit status 3", "signal: killed", …, and the matching exit code (N, or 128 + n). */
void proc_describe_status(int wstatus, char *status, size_t size, int *ret_code);

/* The `run` op (runtime.md §4.7), in proc_run.c. */
int proc_run(struct agent_call *c);

/* Validation helpers for request fields (README §3 types). 0 or -EINVAL with err set. */
int proc_take_timeout_ms(json_t *body, int64_t *ret_ms, struct cove_err **err);
int proc_take_envs(json_t *v, const char *field, struct cove_err **err);
