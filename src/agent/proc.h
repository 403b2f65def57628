/* SPDX-License-Identifier: MIT */
/*
 * proc.h — the process service (runtime.md §8) between its modules:
 *
 *   proc.c         dispatch, the unary methods (List, SendInput, CloseStdin, SendSignal,
 *                  Update, GetResult), request helpers shared with proc_start.c
 *   proc_start.c   the streaming methods Start and Connect
 *   proc_table.c   the process table: running processes and kept results, refcounts, limits,
 *                  selectors (pid or tag)
 *   proc_output.c  output fan-out: the kept output (rings), subscribers and the loop that
 *                  serves one subscriber's stream
 *   proc_blob.c    shared serialised messages (blobs, proc_blob.h)
 *   proc_pump.c    one pump thread per process: reads its output, enforces its timeout, reaps
 *                  it and stores the result
 *   proc_spawn.c   starting a child as the acting user (proc_spawn.h), proc_run.c `run`
 *
 * Locking: one table lock (`proc_tab_lock`) guards the table, every proc's state, rings,
 * subscriber lists and queues. Each proc's `in_lock` serialises writes to its stdin / PTY
 * master and their closing; it is never taken while proc_tab_lock is held.
 *
 * Lifetime: a proc is refcounted under proc_tab_lock. The table holds one reference while the
 * proc is listed (running or kept as a result), its pump holds one until the result is stored,
 * and every handler that works on it holds one.
 *
 * Output: the pump reads at most PROC_READ_CHUNK bytes per read, appends them to the proc's
 * ring (the result) and queues one pre-serialised message per subscriber. A subscriber's
 * thread writes its queue to its connection; one that is SUB_QUEUE_MAX behind is dropped, so
 * a slow client never blocks the pump. The result is stored before `end` is queued.
 */
#pragma once

#include "agent/agent.h"
#include "agent/proc_blob.h"
#include "agent/proc_spawn.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#define PROC_MAX_RUNNING       256
#define PROC_MAX_PTYS          32
#define PROC_RESULT_TTL_MS     (3600 * 1000)
#define PROC_MAX_RESULTS       1000
#define PROC_RESULTS_BYTES_MAX ((size_t)256 * 1024 * 1024)
#define SUB_QUEUE_MAX          ((size_t)4 * 1024 * 1024)
#define PROC_TAG_MAX           128
#define PROC_PTY_SIZE_MAX      1000
#define PROC_DRAIN_IDLE_MS     20
#define PROC_DRAIN_MAX_MS      2000
#define PROC_INPUT_POLL_MS     100
#define CMD_ID_LEN             20

struct qnode {
        struct qnode *next;
        struct blob *b;
};

struct sub {
        struct sub *next;
        int efd; /* owned: eventfd, written by the pump to wake the serving thread */
        struct qnode *head, *tail;
        size_t queued; /* bytes queued or being written */
        bool ended;    /* `end` queued: the stream finishes after it */
        bool dropped;  /* fell SUB_QUEUE_MAX behind */
};

/* Output kept for the result: the newest PROC_OUTPUT_MAX bytes. */
struct ring {
        char *p;
        size_t cap, start, len;
};

enum proc_state {
        PROC_STARTING,
        PROC_RUNNING,
        PROC_FINISHED,
};

struct proc {
        struct proc *prev, *next; /* in the table's running list or results list */
        int ref;
        enum proc_state state;
        bool exiting; /* the pump is about to reap: no more signals to this pid */

        pid_t pid;
        int pidfd;    /* owned by the pump */
        int out_fd;   /* owned by the pump (pipes); the PTY master otherwise (see in_fd) */
        int err_fd;   /* owned by the pump */
        char *cmd_id; /* owned */
        char *tag;    /* owned, may be NULL */
        char *cmd;    /* owned */
        char **args;  /* owned */
        json_t *envs; /* owned */
        char *cwd;    /* owned */
        bool pty;
        int64_t timeout_ms;
        int64_t started_unix, started_mono, finished_mono;

        pthread_mutex_t in_lock;
        int in_fd; /* stdin pipe or PTY master; -1 when closed (under in_lock) */
        atomic_bool exited;

        struct ring out, err;
        struct sub *subs;
        struct blob *start_msg, *end_msg; /* owned */
        int exit_code;
};

/* A request's process selector: by pid or by tag. */
struct selector {
        pid_t pid;       /* 0 when by tag */
        const char *tag; /* borrowed from the request */
};

/* ---- proc_table.c ---- */

extern pthread_mutex_t proc_tab_lock;

/* A new proc in state PROC_STARTING with every fd -1 and one reference (the caller's). */
struct proc *proc_new(void);
/* Frees p and everything it owns (fds included); for a proc nobody else references. */
void proc_free(struct proc *p);
void proc_unref_locked(struct proc *p);
void proc_unref(struct proc *p);

/* Lists a starting p as running, taking one more reference for the table. Fails (-EAGAIN)
 * with *why set at the running / PTY limits, or (-EEXIST) when another running process has
 * p's tag. Under proc_tab_lock. */
int proc_table_admit_locked(struct proc *p, const char **why);
/* Unlists a running p that could not be started, dropping the table's reference. */
void proc_table_withdraw_locked(struct proc *p);
/* Moves a running p to the kept results (its ring sizes are final). */
void proc_table_finish_locked(struct proc *p);
/* Drops the results beyond the count, size and age limits. */
void proc_table_prune_locked(void);
/* The running proc that sel names, referenced, or NULL. */
struct proc *proc_table_find_running_locked(const struct selector *sel);
/* The newest kept result that sel names (not referenced), or NULL. */
struct proc *proc_table_find_result_locked(const struct selector *sel);
/* The kept result with cmdId id, referenced, or NULL; *ret_running tells whether a running
 * process has that id (then NULL is returned). */
struct proc *proc_table_result_by_id_locked(const char *id, bool *ret_running);
/* The running procs (not referenced: valid while the lock is held) sorted by pid, in an
 * array the caller frees; *ret_n their count. */
struct proc **proc_table_running_by_pid_locked(size_t *ret_n);

/* Parses body.process into *ret (borrowing from body). */
int proc_selector_parse(json_t *body, struct selector *ret, struct cove_err **err);

/* ---- proc_output.c ---- */

/* Appends to a ring, keeping the newest PROC_OUTPUT_MAX bytes. */
void ring_add(struct ring *r, const char *d, size_t n);
/* The ring's content as one NUL-terminated allocation. */
char *ring_linear(const struct ring *r);

/* A subscriber with its eventfd; NULL (errno set) when none can be made. */
struct sub *sub_new(void);
void sub_free(struct sub *s);
/* Wakes the subscriber's serving thread. */
void sub_wake(struct sub *s);
/* Queues b (referenced) for s; without force, a subscriber SUB_QUEUE_MAX behind is dropped. */
void sub_push_locked(struct sub *s, struct blob *b, bool force);
/* Removes s from p's subscribers, frees it and drops the subscriber's reference to p. */
void sub_detach(struct proc *p, struct sub *s);
/* Serves subscriber s of p on connection fd until `end`, a drop, or the client leaves.
 * Consumes the caller's reference to p and s. */
int sub_serve(struct proc *p, struct sub *s, int fd);

/* ---- proc_pump.c ---- */

/* The pump thread of p (holding the pump's reference): output, timeout, reaping, result. */
void *proc_pump_main(void *arg);

/* ---- proc.c: helpers shared with proc_start.c ---- */

/* Replies e with its status, or one derived from its errno. */
int proc_reply_err(int fd, struct cove_err *e);
/* pty: {size: {cols, rows}}; size absent → 80x24 (or 400 when size_required). */
int proc_parse_pty(json_t *pty, const char *field, bool size_required, unsigned short *cols,
                   unsigned short *rows, struct cove_err **err);

/* ---- proc_start.c ---- */

int proc_op_start(struct agent_call *c);
int proc_op_connect(struct agent_call *c);
