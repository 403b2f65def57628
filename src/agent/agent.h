/* SPDX-License-Identifier: MIT */
/*
 * agent.h — the in-sandbox agent's internal interface between its modules:
 *   main.c  accept loop (one thread per connection), request decoding, dispatch by op
 *   reply.c response frames (agent_reply_*, agent_stream_*) every handler writes
 *   users.c /etc/passwd and /etc/group of the sandbox, per-thread fs credentials
 *   proc.c  process.* ops and `run` (proc.h lists the modules behind it)
 *   fs_dispatch.c filesystem.* and files.* ops (fs.h lists the modules behind it), watchers
 *           (watch.h)
 * Wire protocol: docs/design/agent-protocol.md.
 *
 * Ownership: a struct agent_call lives for one connection; every pointer in it is borrowed from
 * the decoded request frame and valid until the handler returns. Handlers write their response
 * frames to c->fd themselves (agent_reply_*), and return 0, or -errno when the connection must
 * be dropped (the caller closes it either way).
 */
#pragma once

#include "lib/err.h"
#include "lib/json.h"

#include <stdbool.h>
#include <sys/types.h>

#define AGENT_VERSION "0.1.0"

struct agent_user {
        char *name;  /* owned */
        char *home;  /* owned */
        char *shell; /* owned */
        uid_t uid;
        gid_t gid;
        gid_t *groups; /* owned; supplementary groups including gid */
        size_t ngroups;
};

struct agent_call {
        int fd;                        /* the connection */
        const char *op;                /* borrowed from req */
        json_t *req;                   /* borrowed: the whole request frame */
        json_t *body;                  /* borrowed: req.body, or an empty object when absent */
        json_t *env;                   /* borrowed: req.env (object string→string) or NULL */
        const char *workdir;           /* borrowed: req.workdir or NULL */
        const struct agent_user *user; /* borrowed: resolved acting user (root by default) */
};

/* reply.c (set by main.c): this connection's request came through the E2B face (request field
 * "dialect": "e2b"): EntryInfo carries "metadata" (e2b.md §4.7). Per thread: one connection each.
 */
extern _Thread_local bool agent_e2b_dialect;

/* users.c */
/* Looks `name` up in the sandbox's /etc/passwd (+ /etc/group for supplementary groups).
 * -ENOENT when there is no such user. A NULL name means root (uid 0, home /root). */
int agent_user_lookup(const char *name, struct agent_user **ret);
struct agent_user *agent_user_free(struct agent_user *u);
/* Name of a uid / gid for EntryInfo.owner / group; the number as a string when unknown.
 * Returns an allocation the caller frees. */
char *agent_uid_name(uid_t uid);
char *agent_gid_name(gid_t gid);
/* Switch this thread's filesystem credentials (fsuid, fsgid, supplementary groups) to u,
 * and back to root. Per thread: uses raw syscalls, never glibc's process-wide setxid. */
int agent_fscreds_enter(const struct agent_user *u);
void agent_fscreds_leave(void);

/* reply.c: response helpers. body is stolen (may be NULL → {}). */
int agent_reply_ok(int fd, json_t *body);
int agent_reply_err(int fd, int status, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Stream frames: {"status":200,"stream":true}, {"msg": m} (m stolen), {"end":true[,"error":…]}. */
int agent_stream_begin(int fd);
int agent_stream_msg(int fd, json_t *m);
int agent_stream_end(int fd, const char *err_code, const char *err_msg);
/* For a stream's poll loop: true when the client closed its end of connection fd (it sends
 * nothing after the request; anything it does send is read and dropped). */
bool agent_client_gone(int fd, short revents);

/* proc.c */
void proc_init(void);
bool proc_handles(const char *op); /* "process.*" and "run" */
int proc_handle(struct agent_call *c);

/* fs_dispatch.c */
bool fs_handles(const char *op); /* "filesystem.*", "files.read", "files.write" */
int fs_handle(struct agent_call *c);
