/* SPDX-License-Identifier: MIT */
/*
 * interp.c — the code interpreter on port 49999 (e2b.md §5): /health, /execute, /contexts.
 *
 * Nothing runs in coved: every execution runs inside the sandbox, through the agent, in the
 * runner that coved embeds (interp_runner.py, started as `python3 -u -c <runner>`):
 *   - a Python context is one long-lived runner process ("kernel"), started on first use with
 *     an open stdin; an execution subscribes to its output (process.Connect), then sends one
 *     request line {"id", "code", "env_vars"} (process.SendInput);
 *   - any other language runs one runner per execution ("oneshot <lang>"), which starts the
 *     language's interpreter.
 * The runner writes the /execute lines itself, each prefixed with the execution's ID on its
 * stdout; coved keeps the lines of its own execution, adds keepalives and ends the stream.
 *
 * Contexts live in coved's memory, per sandbox, and are written into the sandbox after every
 * change (interp_state.h: ID, language, cwd, kernel pid), so that a restarted coved lists the
 * same contexts and reconnects to kernels that still run (each kernel carries its context's
 * tag; one that is gone is started again on the next execution). One execution per context at
 * a time: each context has a queue of turns, served in arrival order; waiters send keepalives,
 * and a waiter that goes away (or ends with ContextRestarting) leaves the queue wherever it
 * stands. A code-interpreter sandbox's default Python kernel is started with the sandbox
 * (envd_interp_warm(), §5.2), holding a turn like an execution. A client that goes away interrupts
 * its execution (SIGINT to the kernel: KeyboardInterrupt, the context survives; SIGINT to a
 * one-shot runner, which kills its interpreter's process group).
 *
 * The /execute response is a content reader that runs on a server thread and never blocks, as
 * rpc.c's streams: it reads the agent stream without blocking and waits with http_wait_fd()
 * (agent stream, client hang-up, keepalive timer; a waiter for its context's turn looks every
 * INTERP_TURN_POLL_MS); the agent calls that start an execution run on a worker
 * (http_wait_work()), the interrupt of an abandoned one too (http_run_later()).
 */
#include "coved/envd/envd.h"
#include "coved/envd/interp_state.h"
#include "coved/interp_runner.h"
#include "lib/b64.h"
#include "lib/frame.h"
#include "lib/json.h"
#include "lib/log.h"
#include "lib/macro.h"
#include "lib/rand.h"
#include "lib/timeutil.h"

#include <ctype.h>
#include <openssl/crypto.h>
#include <poll.h>
#include <stdarg.h>
#include <pthread.h>

#define INTERP_KEEPALIVE_MS  5000
#define INTERP_TURN_POLL_MS  100
#define INTERP_CONTEXTS_MAX  64                 /* per sandbox */
#define INTERP_LINE_MAX      (16 * 1024 * 1024) /* one NDJSON line from the runner */
#define INTERP_AGENT_TIMEOUT (30 * 1000)
#define INTERP_BODY_MAX      (8 * 1024 * 1024)
#define INTERP_DEFAULT_CWD   "/home/user"
#define INTERP_STATE_TIMEOUT (5 * 1000) /* reading or writing the contexts' file */

static const char *const languages[] = { "python", "javascript", "typescript", "bash",
                                         "r",      "java",       NULL };

/* A place in a context's queue (one execution, or the warm-up), owned by its holder. */
struct interp_turn {
        struct interp_turn *next;
};

struct interp_ctx {
        char id[40];
        char *language;
        char *cwd;
        int64_t pid;               /* python kernel, 0: not running */
        uint64_t generation;       /* bumped by restart and delete */
        struct interp_turn *turns; /* the queue: the head runs, the others wait */
        int64_t count;             /* executions of a one-shot context */
        bool deleted;
        int refs; /* registry + executions holding it */
        struct interp_ctx *next;
};

struct interp_sandbox {
        char *id;
        struct interp_ctx *ctxs; /* creation order; the two defaults first */
        struct interp_sandbox *next;
};

static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static struct interp_sandbox *registry;

static void uuid4(char out[40])
{
        unsigned char b[16];
        if (random_bytes(b, sizeof(b)) < 0)
                abort();
        b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
        b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
        (void)snprintf(out, 40,
                       "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0],
                       b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12],
                       b[13], b[14], b[15]);
}

static void ctx_unref_locked(struct interp_ctx *c)
{
        if (--c->refs > 0)
                return;
        free(c->language);
        free(c->cwd);
        free(c);
}

static struct interp_ctx *ctx_new(const char *language, const char *cwd)
{
        struct interp_ctx *c = xzalloc(sizeof(*c));
        uuid4(c->id);
        c->language = xstrdup(language);
        c->cwd = xstrdup(cwd);
        c->refs = 1;
        return c;
}

/* ---- the turn queue (under reg_lock) ---- */

static void turn_enqueue_locked(struct interp_ctx *c, struct interp_turn *t)
{
        struct interp_turn **pp = &c->turns;
        while (*pp)
                pp = &(*pp)->next;
        t->next = NULL;
        *pp = t;
}

/* Leaves the queue, wherever t stands in it (no-op when not queued). */
static void turn_leave_locked(struct interp_ctx *c, struct interp_turn *t)
{
        for (struct interp_turn **pp = &c->turns; *pp; pp = &(*pp)->next)
                if (*pp == t) {
                        *pp = t->next;
                        t->next = NULL;
                        return;
                }
}

static struct interp_sandbox *sandbox_find_locked(const char *id)
{
        for (struct interp_sandbox *s = registry; s; s = s->next)
                if (streq(s->id, id))
                        return s;
        return NULL;
}

/* The sandbox's contexts (made with the two defaults on first use). Under reg_lock. */
static struct interp_sandbox *sandbox_locked(const char *id, const char *default_cwd)
{
        struct interp_sandbox *s = sandbox_find_locked(id);
        if (s)
                return s;
        s = xzalloc(sizeof(*s));
        s->id = xstrdup(id);
        s->ctxs = ctx_new("python", default_cwd);
        s->ctxs->next = ctx_new("javascript", default_cwd);
        s->next = registry;
        registry = s;
        return s;
}

/* Drops the registries of sandboxes that no longer exist (bounded memory). */
static void prune(struct coved *cd)
{
        pthread_mutex_lock(&reg_lock);
        for (struct interp_sandbox **pp = &registry; *pp;) {
                struct interp_sandbox *s = *pp;
                struct sandbox_rec *sb = NULL;
                if (manager_get(cd, NULL, s->id, &sb, NULL) == 0 && sb->state != SANDBOX_STOPPED) {
                        sandbox_rec_free(sb);
                        pp = &s->next;
                        continue;
                }
                sandbox_rec_free(sb);
                *pp = s->next;
                while (s->ctxs) {
                        struct interp_ctx *c = s->ctxs;
                        s->ctxs = c->next;
                        c->deleted = true;
                        c->generation++;
                        ctx_unref_locked(c);
                }
                free(s->id);
                free(s);
        }
        pthread_mutex_unlock(&reg_lock);
}

/* ---- the contexts' file in the sandbox (interp_state.h) ---- */

static pthread_mutex_t save_lock = PTHREAD_MUTEX_INITIALIZER; /* one writer at a time */

static int write_state(struct coved *cd, const char *id, const char *text, struct cove_err **err)
{
        struct agent_reply rep = { 0 };
        cleanup_close int fd = agent_client_connect(cd, id, INTERP_STATE_TIMEOUT, err);
        if (fd < 0)
                return fd;
        json_auto_t *req = json_pack("{s:s, s:s, s:{s:s, s:i}}", "op", "files.write", "user",
                                     "root", "body", "path", INTERP_STATE_PATH, "mode", 0600);
        int r = agent_client_send_json(fd, req, err);
        if (r >= 0)
                r = agent_client_send_data(fd, text, strlen(text), err);
        if (r >= 0)
                r = agent_client_send_end(fd, err);
        if (r >= 0)
                r = agent_client_read_reply(fd, &rep, err);
        if (r >= 0 && rep.status != 200)
                r = cove_err_set(err, EIO, "%s", rep.message ? rep.message : "write failed");
        agent_reply_release(&rep);
        return r;
}

/* Writes the sandbox's contexts into it. Best effort: a sandbox that cannot take it (paused,
 * its disk full) keeps them in coved's memory only. */
static void registry_save(struct coved *cd, const char *sandbox_id)
{
        cleanup_err struct cove_err *err = NULL;
        struct interp_state_ctx *v = NULL;
        size_t n = 0;

        pthread_mutex_lock(&save_lock);
        pthread_mutex_lock(&reg_lock);
        struct interp_sandbox *s = sandbox_find_locked(sandbox_id);
        for (struct interp_ctx *c = s ? s->ctxs : NULL; c; c = c->next)
                n++;
        v = xzalloc(MAX(n, (size_t)1) * sizeof(*v));
        n = 0;
        for (struct interp_ctx *c = s ? s->ctxs : NULL; c; c = c->next, n++) {
                memcpy(v[n].id, c->id, INTERP_STATE_ID_LEN + 1);
                v[n].language = xstrdup(c->language);
                v[n].cwd = xstrdup(c->cwd);
                v[n].pid = c->pid;
        }
        pthread_mutex_unlock(&reg_lock);
        if (s) {
                cleanup_free char *text = interp_state_format(v, n);
                if (write_state(cd, sandbox_id, text, &err) < 0)
                        log_warning("sandbox '%s': keep the code contexts, ignoring: %s",
                                    sandbox_id, err->msg);
        }
        interp_state_free(v, n);
        pthread_mutex_unlock(&save_lock);
}

/* The file's text, or NULL (none, unreadable, not text). */
static char *read_state(struct coved *cd, const char *id)
{
        struct agent_reply rep = { 0 };
        json_auto_t *req = json_pack("{s:s, s:s, s:{s:s}}", "op", "files.content", "user", "root",
                                     "body", "path", INTERP_STATE_PATH);
        char *text = NULL;
        if (agent_client_call(cd, id, req, INTERP_STATE_TIMEOUT, &rep, NULL) == 0 &&
            rep.status == 200) {
                json_t *body = rep.body;
                json_error_t jerr;
                json_t *owned = !body && rep.body_text
                                        ? json_loadb(rep.body_text, rep.body_len, 0, &jerr)
                                        : NULL;
                body = body ? body : owned;
                const char *c = json_string_value(json_object_get(body, "content"));
                if (c && streq(json_string_value(json_object_get(body, "type")) ?: "", "text") &&
                    !json_is_true(json_object_get(body, "truncated")))
                        text = xstrdup(c);
                json_decref(owned);
        }
        agent_reply_release(&rep);
        return text;
}

/* Whether the sandbox still runs process pid with a kernel tag of context ctx_id. */
static bool kernel_alive(const json_t *procs, int64_t pid, const char *ctx_id)
{
        size_t i;
        json_t *p;
        json_array_foreach (procs, i, p) {
                int64_t ppid = 0;
                if (json_get_integer(json_object_get(p, "pid"), &ppid) && ppid == pid &&
                    interp_state_is_kernel_tag(json_string_value(json_object_get(p, "tag")),
                                               ctx_id))
                        return true;
        }
        return false;
}

/* Makes the sandbox's registry, the first time coved sees it: from the contexts' file a coved
 * before this one wrote into the sandbox (kernels kept only when they still run with their
 * tag), else the two defaults (written there at once, so their IDs stay). */
static void registry_load(struct envd_req *t, const char *dflt)
{
        const char *id = t->rec->id;
        struct interp_state_ctx *v = NULL;
        size_t n = 0;

        pthread_mutex_lock(&reg_lock);
        bool have = sandbox_find_locked(id) != NULL;
        pthread_mutex_unlock(&reg_lock);
        if (have)
                return;
        cleanup_free char *text = read_state(t->cd, id);
        if (text &&
            (interp_state_parse(text, strlen(text), INTERP_CONTEXTS_MAX, languages, &v, &n) < 0 ||
             n == 0))
                log_warning("sandbox '%s': its code contexts file is not Cove's, ignoring it", id);
        if (n > 0) {
                struct agent_reply rep = { 0 };
                json_auto_t *req =
                        json_pack("{s:s, s:s, s:{}}", "op", "process.List", "user", "root", "body");
                bool listed =
                        agent_client_call(t->cd, id, req, INTERP_STATE_TIMEOUT, &rep, NULL) == 0 &&
                        rep.status == 200;
                for (size_t i = 0; i < n; i++)
                        if (v[i].pid > 0 &&
                            (!listed || !kernel_alive(json_object_get(rep.body, "processes"),
                                                      v[i].pid, v[i].id)))
                                v[i].pid = 0;
                agent_reply_release(&rep);
        }
        bool fresh = false;
        pthread_mutex_lock(&reg_lock);
        if (!sandbox_find_locked(id)) {
                if (n > 0) {
                        struct interp_sandbox *s = xzalloc(sizeof(*s));
                        s->id = xstrdup(id);
                        struct interp_ctx **pp = &s->ctxs;
                        for (size_t i = 0; i < n; i++) {
                                struct interp_ctx *c = ctx_new(v[i].language, v[i].cwd);
                                memcpy(c->id, v[i].id, INTERP_STATE_ID_LEN + 1);
                                c->pid = v[i].pid;
                                *pp = c;
                                pp = &c->next;
                        }
                        s->next = registry;
                        registry = s;
                } else {
                        (void)sandbox_locked(id, dflt);
                        fresh = true;
                }
        }
        pthread_mutex_unlock(&reg_lock);
        interp_state_free(v, n);
        if (fresh)
                registry_save(t->cd, id);
}

/* ---- agent calls (code runs as root, with the sandbox environment) ---- */

struct interp_target {
        struct coved *cd;
        char *sandbox_id;
        json_t *env; /* the sandbox-level environment */
};

static json_t *agent_req(const struct interp_target *g, const char *op, json_t *body, bool env)
{
        json_t *j = json_pack("{s:s, s:s, s:o}", "op", op, "user", "root", "body",
                              body ? body : json_object());
        if (env)
                json_object_set_new(
                        j, "env", json_is_object(g->env) ? json_deep_copy(g->env) : json_object());
        return j;
}

static int agent_unary(const struct interp_target *g, const char *op, json_t *body,
                       struct cove_err **err)
{
        struct agent_reply rep = { 0 };
        json_t *req = agent_req(g, op, body, false);
        int q = agent_client_call(g->cd, g->sandbox_id, req, INTERP_AGENT_TIMEOUT, &rep, err);
        json_decref(req);
        if (q == 0 && rep.status != 200)
                q = cove_err_set_status(err, rep.status, EIO, "%s",
                                        rep.message ? rep.message : "agent call failed");
        agent_reply_release(&rep);
        return q;
}

static void signal_process(const struct interp_target *g, int64_t pid, const char *sig)
{
        cleanup_err struct cove_err *err = NULL;
        (void)agent_unary(
                g, "process.SendSignal",
                json_pack("{s:{s:I}, s:s}", "process", "pid", (json_int_t)pid, "signal", sig),
                &err);
}

/* Opens a streaming call; the fd after the agent's 200 (the start message not read yet). */
static int agent_stream(const struct interp_target *g, const char *op, json_t *body, bool env,
                        struct cove_err **err)
{
        json_t *first = NULL;
        int64_t st = 0;
        json_t *req = agent_req(g, op, body, env);
        int fd = agent_client_connect(g->cd, g->sandbox_id, INTERP_AGENT_TIMEOUT, err);
        if (fd < 0) {
                json_decref(req);
                return fd;
        }
        int q = agent_client_send_json(fd, req, err);
        json_decref(req);
        if (q == 0)
                q = agent_client_read_json(fd, &first, err);
        if (q == 0 && (!json_get_integer(json_object_get(first, "status"), &st) || st != 200)) {
                const char *m = json_string_value(json_object_get(first, "message"));
                q = cove_err_set_status(err, st >= 400 ? (int)st : 500, EIO, "%s",
                                        m ? m : "agent call failed");
        }
        json_decref(first);
        if (q < 0) {
                (void)close(fd);
                return q;
        }
        return fd;
}

/* Reads the stream's first message, the start event: the pid. */
static int read_start_pid(int fd, int64_t *ret, struct cove_err **err)
{
        json_t *m = NULL;
        int q = agent_client_read_json(fd, &m, err);
        if (q < 0)
                return q;
        json_t *start =
                json_object_get(json_object_get(json_object_get(m, "msg"), "event"), "start");
        bool ok = json_get_integer(json_object_get(start, "pid"), ret) && *ret > 0;
        json_decref(m);
        return ok ? 0 : cove_err_set_status(err, 500, EPROTO, "the runner did not start");
}

/* Starts a runner: its stream fd (positioned after the start event) and pid. */
static int start_runner(const struct interp_target *g, const char *mode, const char *lang,
                        const char *cwd, const char *tag, int64_t *ret_pid, struct cove_err **err)
{
        json_t *args = json_pack("[s, s, s, s]", "-u", "-c", interp_runner_py, mode);
        if (lang)
                json_array_append_new(args, json_string(lang));
        json_t *body =
                json_pack("{s:{s:s, s:o, s:s, s:{s:s}}, s:b}", "process", "cmd", "python3", "args",
                          args, "cwd", cwd, "envs", "PYTHONUNBUFFERED", "1", "stdin", true);
        if (tag) /* a restarted coved finds the kernel by it (interp_state.h) */
                json_object_set_new(body, "tag", json_string(tag));
        int fd = agent_stream(g, "process.Start", body, true, err);
        if (fd < 0)
                return fd;
        if (read_start_pid(fd, ret_pid, err) < 0) {
                (void)close(fd);
                return -EPROTO;
        }
        return fd;
}

static int send_line(const struct interp_target *g, int64_t pid, const char *line, size_t len,
                     struct cove_err **err)
{
        char *b64 = b64_encode_alloc(line, len, 0);
        int q = agent_unary(g, "process.SendInput",
                            json_pack("{s:{s:I}, s:{s:s}}", "process", "pid", (json_int_t)pid,
                                      "input", "stdin", b64),
                            err);
        free(b64);
        return q;
}

/* Starts the kernel of Python context c (its caller holds c's turn) and records its pid,
 * also in the sandbox's contexts file. */
static int kernel_start(const struct interp_target *g, struct interp_ctx *c, int64_t *ret_pid,
                        struct cove_err **err)
{
        cleanup_free char *tag = interp_state_kernel_tag(c->id);
        int fd = start_runner(g, "kernel", NULL, c->cwd, tag, ret_pid, err);
        if (fd < 0)
                return fd;
        (void)close(fd); /* the kernel keeps running */
        pthread_mutex_lock(&reg_lock);
        c->pid = *ret_pid;
        pthread_mutex_unlock(&reg_lock);
        registry_save(g->cd, g->sandbox_id);
        return 0;
}

/* ---- /execute ---- */

enum exec_phase {
        EXEC_WAIT, /* for the context's turn */
        EXEC_RUN,  /* reading the runner's lines */
        EXEC_DONE, /* the last line is queued */
};

struct interp_exec {
        struct interp_target g;
        struct interp_ctx *ctx;  /* referenced */
        struct interp_turn turn; /* in ctx->turns until the execution ends */
        uint64_t generation;
        enum exec_phase phase;
        char exec_id[40];
        char *request;            /* owned: the request line for the runner */
        int fd;                   /* owned: the agent stream of the runner's output, -1 */
        int client_fd;            /* borrowed: hang-up detection */
        struct http_wait *wait;   /* owned: waits without holding a server thread */
        struct frame_decoder dec; /* the runner's stream, read without blocking */
        bool oneshot;
        int64_t pid;     /* the runner this execution talks to */
        struct buf line; /* partial runner line */
        struct buf out;  /* NDJSON not yet handed to MHD */
        size_t out_off;
        int64_t last_ms;
};

static void exec_line(struct interp_exec *e, const char *json_text)
{
        (void)buf_adds(&e->out, json_text);
        (void)buf_addc(&e->out, '\n');
}

static void exec_error(struct interp_exec *e, const char *name, const char *value)
{
        json_t *j = json_pack("{s:s, s:s, s:s, s:s}", "type", "error", "name", name, "value", value,
                              "traceback", "");
        cleanup_free char *s = json_dumps_compact(j);
        json_decref(j);
        exec_line(e, s);
        exec_line(e, "{\"type\":\"end_of_execution\"}");
        e->phase = EXEC_DONE;
}

/* Leaves the context's queue: the next waiter's turn when this one had it. */
static void exec_release_turn(struct interp_exec *e)
{
        pthread_mutex_lock(&reg_lock);
        turn_leave_locked(e->ctx, &e->turn);
        pthread_mutex_unlock(&reg_lock);
}

/* One line of the runner's stdout: "<execution id> <json>". */
static void runner_line(struct interp_exec *e, const char *p, size_t n)
{
        size_t il = strlen(e->exec_id);
        if (n <= il + 1 || memcmp(p, e->exec_id, il) != 0 || p[il] != ' ')
                return; /* another execution's tail (an interrupted one) */
        cleanup_free char *s = xstrndup(p + il + 1, n - il - 1);
        exec_line(e, s);
        if (strstr(s, "\"type\":\"end_of_execution\""))
                e->phase = EXEC_DONE;
}

static void runner_output(struct interp_exec *e, const char *p, size_t n)
{
        for (size_t i = 0; i < n && e->phase == EXEC_RUN; i++) {
                if (p[i] != '\n') {
                        if (buf_addc(&e->line, p[i]) < 0)
                                buf_init(&e->line, INTERP_LINE_MAX); /* dropped: over the max */
                        continue;
                }
                runner_line(e, e->line.ptr ? e->line.ptr : "", e->line.len);
                buf_reset(&e->line);
        }
}

static void exec_lost(struct interp_exec *e)
{
        exec_error(e, "UnexpectedEndOfExecution",
                   "Connection to the execution was closed before the execution was finished");
}

/* One agent frame of the runner's stream. */
static int exec_frame(void *ud, uint8_t kind, const char *p, size_t n)
{
        struct interp_exec *e = ud;
        json_error_t jerr;
        if (e->phase != EXEC_RUN)
                return 0;
        if (kind != FRAME_JSON) {
                exec_lost(e);
                return -EPROTO;
        }
        json_t *j = json_loadb(p, n, 0, &jerr);
        json_t *ev = json_object_get(json_object_get(j, "msg"), "event");
        const char *out = json_string_value(json_object_get(json_object_get(ev, "data"), "stdout"));
        if (out) {
                unsigned char *dec = NULL;
                size_t dl = 0;
                if (b64_decode(out, strlen(out), 0, &dec, &dl) == 0)
                        runner_output(e, (const char *)dec, dl);
                free(dec);
        } else if (json_object_get(ev, "end") || json_is_true(json_object_get(j, "end"))) {
                if (!e->oneshot) {
                        pthread_mutex_lock(&reg_lock);
                        if (e->ctx->pid == e->pid)
                                e->ctx->pid = 0;
                        pthread_mutex_unlock(&reg_lock);
                }
                if (e->phase == EXEC_RUN)
                        exec_lost(e);
        }
        json_decref(j);
        return 0;
}

/* Reads what the agent has sent, without blocking: true when something happened (bytes fed,
 * or the stream ended), false when nothing is there yet. */
static bool exec_pump(struct interp_exec *e)
{
        char buf[64 * 1024];
        for (;;) {
                ssize_t n = recv(e->fd, buf, sizeof(buf), MSG_DONTWAIT);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
                        return false;
                if (n <= 0 || frame_decoder_feed(&e->dec, buf, (size_t)n, exec_frame, e) < 0) {
                        if (e->phase == EXEC_RUN)
                                exec_lost(e);
                }
                return true;
        }
}

/* The context's turn has come: reach its runner and send the request. */
static void exec_start(struct interp_exec *e)
{
        cleanup_err struct cove_err *err = NULL;
        e->phase = EXEC_RUN;
        if (e->oneshot) {
                e->fd = start_runner(&e->g, "oneshot", e->ctx->language, e->ctx->cwd, NULL, &e->pid,
                                     &err);
        } else {
                pthread_mutex_lock(&reg_lock);
                int64_t pid = e->ctx->pid;
                pthread_mutex_unlock(&reg_lock);
                for (int attempt = 0; attempt < 2 && e->fd < 0; attempt++) {
                        if (pid <= 0) {
                                cove_err_free(&err);
                                if (kernel_start(&e->g, e->ctx, &pid, &err) < 0)
                                        break;
                        }
                        cove_err_free(&err);
                        e->fd = agent_stream(
                                &e->g, "process.Connect",
                                json_pack("{s:{s:I}}", "process", "pid", (json_int_t)pid), false,
                                &err);
                        if (e->fd >= 0) {
                                int64_t ignored;
                                if (read_start_pid(e->fd, &ignored, &err) < 0) {
                                        (void)close(e->fd);
                                        e->fd = -1;
                                }
                        }
                        if (e->fd < 0)
                                pid = 0; /* gone: start it again */
                }
                e->pid = pid;
        }
        if (e->fd < 0 || send_line(&e->g, e->pid, e->request, strlen(e->request), &err) < 0) {
                exec_error(e, "UnexpectedEndOfExecution",
                           err ? err->msg : "the runner could not be started");
                return;
        }
}

/* On a worker (http_wait_work()): the agent calls that start the execution. */
static void exec_start_job(void *arg)
{
        exec_start(arg);
}

/* Runs on a server thread: never blocks. */
static ssize_t exec_read(void *cls, uint64_t pos, char *out, size_t max)
{
        struct interp_exec *e = cls;
        (void)pos;

        enum http_wake why = http_wait_reason(e->wait);
        if (why == HTTP_WAKE_CLIENT_GONE || why == HTTP_WAKE_STOPPING)
                return MHD_CONTENT_READER_END_WITH_ERROR; /* interrupted in exec_free */
        for (;;) {
                if (e->out_off < e->out.len) {
                        size_t k = MIN(max, e->out.len - e->out_off);
                        memcpy(out, e->out.ptr + e->out_off, k);
                        e->out_off += k;
                        if (e->out_off == e->out.len) {
                                buf_reset(&e->out);
                                e->out_off = 0;
                        }
                        e->last_ms = time_mono_ms();
                        return (ssize_t)k;
                }
                if (e->phase == EXEC_DONE) {
                        exec_release_turn(e);
                        return MHD_CONTENT_READER_END_OF_STREAM;
                }
                int64_t wait = e->last_ms + INTERP_KEEPALIVE_MS - time_mono_ms();
                if (wait <= 0) {
                        if (http_client_gone(e->client_fd))
                                return MHD_CONTENT_READER_END_WITH_ERROR;
                        exec_line(e, "{\"type\":\"keepalive\"}");
                        continue;
                }
                if (e->phase == EXEC_WAIT) {
                        pthread_mutex_lock(&reg_lock);
                        bool restarted = e->ctx->generation != e->generation;
                        bool turn = e->ctx->turns == &e->turn;
                        pthread_mutex_unlock(&reg_lock);
                        if (restarted) {
                                exec_error(e, "ContextRestarting", "Context was restarted");
                                continue;
                        }
                        if (turn) /* phase RUN (or DONE) when the reader runs again */
                                return http_wait_work(e->wait, exec_start_job, e);
                        return http_wait_fd(e->wait, -1, 0, (int)MIN(wait, INTERP_TURN_POLL_MS));
                }
                /* EXEC_RUN */
                pthread_mutex_lock(&reg_lock);
                bool restarted = e->ctx->generation != e->generation;
                pthread_mutex_unlock(&reg_lock);
                if (restarted) {
                        exec_error(e, "ContextRestarting", "Context was restarted");
                        continue;
                }
                if (exec_pump(e))
                        continue;
                return http_wait_fd(e->wait, e->fd, POLLIN, (int)MIN(wait, 1000));
        }
}

struct exec_interrupt {
        struct interp_target g;
        int64_t pid;
};

/* On a worker (http_run_later()): SIGINT to the runner of an abandoned execution. */
static void exec_interrupt_job(void *arg)
{
        struct exec_interrupt *x = arg;
        signal_process(&x->g, x->pid, "SIGINT");
        free(x->g.sandbox_id);
        json_decref(x->g.env);
        free(x);
}

static void exec_free(void *cls)
{
        struct interp_exec *e = cls;
        if (e->phase == EXEC_RUN && e->pid > 0) { /* the client went away: interrupt (§5.2) */
                struct exec_interrupt *x = xzalloc(sizeof(*x));
                x->g = e->g;
                x->pid = e->pid;
                e->g.sandbox_id = NULL; /* moved */
                e->g.env = NULL;
                http_run_later(e->wait, exec_interrupt_job, x);
        }
        exec_release_turn(e);
        if (e->fd >= 0)
                (void)close(e->fd);
        pthread_mutex_lock(&reg_lock);
        ctx_unref_locked(e->ctx);
        pthread_mutex_unlock(&reg_lock);
        http_wait_free(e->wait);
        frame_decoder_release(&e->dec);
        free(e->g.sandbox_id);
        json_decref(e->g.env);
        free(e->request);
        buf_release(&e->line);
        buf_release(&e->out);
        free(e);
}

/* ---- request handling ---- */

static int reply_text(struct http_req *r, unsigned status, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

static int reply_text(struct http_req *r, unsigned status, const char *fmt, ...)
{
        char msg[BUF_MAX_ERR_MSG];
        va_list ap;
        va_start(ap, fmt);
        (void)vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        return http_reply_error(r, status, "%s", msg); /* text/plain in this dialect */
}

/* Trimmed, lower-cased, js → javascript, ts → typescript, "" → python. Caller frees. */
static char *normalise_language(const char *l)
{
        if (!l)
                return xstrdup("python");
        while (*l == ' ' || *l == '\t')
                l++;
        char *s = xstrdup(l);
        size_t n = strlen(s);
        while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\n'))
                s[--n] = '\0';
        for (char *c = s; *c; c++)
                *c = (char)tolower((unsigned char)*c);
        if (!*s || streq(s, "py") || streq(s, "python3")) {
                free(s);
                return xstrdup("python");
        }
        if (streq(s, "js")) {
                free(s);
                return xstrdup("javascript");
        }
        if (streq(s, "ts")) {
                free(s);
                return xstrdup("typescript");
        }
        return s;
}

static bool language_supported(const char *l)
{
        for (size_t i = 0; i < ARRAY_SIZE(languages); i++)
                if (streq(languages[i], l))
                        return true;
        return false;
}

static bool is_directory(struct envd_req *t, const char *path)
{
        struct agent_reply rep = { 0 };
        json_t *req = json_pack("{s:s, s:s, s:{s:s}}", "op", "filesystem.Stat", "user", "root",
                                "body", "path", path);
        int q = agent_client_call(t->cd, t->rec->id, req, INTERP_AGENT_TIMEOUT, &rep, NULL);
        json_decref(req);
        bool dir =
                q == 0 && rep.status == 200 &&
                streq(json_string_value(json_object_get(json_object_get(rep.body, "entry"), "type"))
                              ?: "",
                      "FILE_TYPE_DIRECTORY");
        agent_reply_release(&rep);
        return dir;
}

static const char *default_cwd(struct envd_req *t)
{
        return is_directory(t, INTERP_DEFAULT_CWD) ? INTERP_DEFAULT_CWD : "/root";
}

static json_t *ctx_json(const struct interp_ctx *c)
{
        return json_pack("{s:s, s:s, s:s}", "id", c->id, "language", c->language, "cwd", c->cwd);
}

static bool token_ok(struct http_req *r, struct envd_req *t)
{
        const char *tok = http_header(r, "X-Access-Token");
        const char *want = t->rec->access_token ? t->rec->access_token : "";
        size_t l = strlen(want);
        return tok && l > 0 && strlen(tok) == l && CRYPTO_memcmp(tok, want, l) == 0;
}

/* Finds a context (referenced) of the sandbox by ID, or the default of a language (made again
 * when deleted). NULL when the ID is unknown. */
static struct interp_ctx *find_ctx(struct envd_req *t, const char *ctx_id, const char *language,
                                   const char *dflt_cwd)
{
        struct interp_ctx *found = NULL;
        bool made = false;
        registry_load(t, dflt_cwd);
        pthread_mutex_lock(&reg_lock);
        struct interp_sandbox *s = sandbox_locked(t->rec->id, dflt_cwd);
        for (struct interp_ctx *c = s->ctxs; c && !found; c = c->next)
                if (ctx_id ? streq(c->id, ctx_id) : streq(c->language, language))
                        found = c;
        if (!found && !ctx_id) {
                found = ctx_new(language, dflt_cwd);
                struct interp_ctx **pp = &s->ctxs;
                while (*pp)
                        pp = &(*pp)->next;
                *pp = found;
                made = true;
        }
        if (found)
                found->refs++;
        pthread_mutex_unlock(&reg_lock);
        if (made)
                registry_save(t->cd, t->rec->id);
        return found;
}

static int handle_execute(struct http_req *r, struct envd_req *t)
{
        cleanup_err struct cove_err *err = NULL;
        json_auto_t *body = NULL;

        if (!token_ok(r, t))
                return reply_text(r, 401, "unauthorized");
        if (json_parse(buf_str(&r->body), r->body.len, false, &body, &err) < 0 ||
            !json_is_object(body) || !json_is_string(json_object_get(body, "code")))
                return reply_text(r, 422, "the body must be a JSON object with a string 'code'");
        json_t *cid = json_object_get(body, "context_id"),
               *lang = json_object_get(body, "language");
        json_t *env = json_object_get(body, "env_vars");
        const char *ctx_id =
                json_is_string(cid) && *json_string_value(cid) ? json_string_value(cid) : NULL;
        const char *lang_s =
                json_is_string(lang) && *json_string_value(lang) ? json_string_value(lang) : NULL;
        if ((cid && !json_is_null(cid) && !json_is_string(cid)) ||
            (lang && !json_is_null(lang) && !json_is_string(lang)) ||
            (env && !json_is_null(env) && !json_is_object(env)))
                return reply_text(r, 422, "invalid request body");
        if (ctx_id && lang_s)
                return reply_text(r, 400, "Only one of context_id or language can be provided");
        cleanup_free char *language = normalise_language(lang_s);
        if (!ctx_id && !language_supported(language))
                return reply_text(r, 400, "unsupported language '%s'", language);

        prune(r->cd);
        struct interp_ctx *c = find_ctx(t, ctx_id, language, default_cwd(t));
        if (!c)
                return reply_text(r, 404, "Context %s not found", ctx_id);

        struct interp_exec *e = xzalloc(sizeof(*e));
        e->g.cd = r->cd;
        e->g.sandbox_id = xstrdup(t->rec->id);
        e->g.env =
                json_is_object(t->rec->env_vars) ? json_deep_copy(t->rec->env_vars) : json_object();
        e->ctx = c;
        e->fd = -1;
        e->oneshot = !streq(c->language, "python");
        e->client_fd = http_client_socket(r);
        e->last_ms = time_mono_ms();
        uuid4(e->exec_id);
        buf_init(&e->line, INTERP_LINE_MAX);
        buf_init(&e->out, SIZE_MAX / 2);
        frame_decoder_init(&e->dec, FRAME_MAX_PAYLOAD, /* check= */ NULL);
        e->wait = http_wait_new(r);
        pthread_mutex_lock(&reg_lock);
        turn_enqueue_locked(c, &e->turn);
        e->generation = c->generation;
        int64_t count = ++c->count;
        pthread_mutex_unlock(&reg_lock);
        /* "o" takes the reference: with "O" the empty object made here leaked on every call
         * that sends no env_vars */
        json_t *req = json_pack("{s:s, s:O, s:o, s:s, s:I}", "id", e->exec_id, "code",
                                json_object_get(body, "code"), "env_vars",
                                json_is_object(env) ? json_incref(env) : json_object(), "cwd",
                                c->cwd, "count", (json_int_t)count);
        char *line = json_dumps_compact(req);
        json_decref(req);
        e->request = xasprintf("%s\n", line);
        free(line);

        struct MHD_Response *resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 64 * 1024,
                                                                      exec_read, e, exec_free);
        if (!resp) {
                exec_free(e);
                return -ENOMEM;
        }
        (void)MHD_add_response_header(resp, "Content-Type", "application/x-ndjson; charset=utf-8");
        return http_reply_response(r, 200, resp);
}

static int handle_create_context(struct http_req *r, struct envd_req *t)
{
        json_auto_t *body = NULL;
        cleanup_err struct cove_err *err = NULL;
        if (json_parse(buf_str(&r->body), r->body.len, true, &body, &err) < 0 ||
            !json_is_object(body))
                return reply_text(r, 400, "the body must be a JSON object");
        json_t *lang = json_object_get(body, "language"), *cwd = json_object_get(body, "cwd");
        if ((lang && !json_is_null(lang) && !json_is_string(lang)) ||
            (cwd && !json_is_null(cwd) && !json_is_string(cwd)))
                return reply_text(r, 400, "fields 'language' and 'cwd' must be strings");
        cleanup_free char *language = normalise_language(json_string_value(lang));
        if (!language_supported(language))
                return reply_text(r, 400, "unsupported language '%s'", language);
        const char *dir =
                json_is_string(cwd) && *json_string_value(cwd) ? json_string_value(cwd) : NULL;
        const char *dflt = default_cwd(t);
        if (dir && !is_directory(t, dir))
                return reply_text(r, 400, "directory '%s' does not exist", dir);
        prune(r->cd);
        registry_load(t, dflt);
        pthread_mutex_lock(&reg_lock);
        struct interp_sandbox *s = sandbox_locked(t->rec->id, dflt);
        size_t n = 0;
        struct interp_ctx **pp = &s->ctxs;
        for (; *pp; pp = &(*pp)->next)
                n++;
        struct interp_ctx *c = NULL;
        if (n < INTERP_CONTEXTS_MAX) {
                c = ctx_new(language, dir ? dir : dflt);
                *pp = c;
        }
        json_t *j = c ? ctx_json(c) : NULL;
        pthread_mutex_unlock(&reg_lock);
        if (!c)
                return reply_text(r, 429, "at most %d contexts per sandbox", INTERP_CONTEXTS_MAX);
        registry_save(r->cd, t->rec->id);
        return http_reply_json(r, 200, j);
}

static int handle_list_contexts(struct http_req *r, struct envd_req *t)
{
        const char *dflt = default_cwd(t);
        json_t *arr = json_array();
        registry_load(t, dflt);
        pthread_mutex_lock(&reg_lock);
        struct interp_sandbox *s = sandbox_locked(t->rec->id, dflt);
        for (struct interp_ctx *c = s->ctxs; c; c = c->next)
                json_array_append_new(arr, ctx_json(c));
        pthread_mutex_unlock(&reg_lock);
        return http_reply_json(r, 200, arr);
}

/* Restart (keep == true) or delete a context: its kernel is killed; executions in flight end
 * with ContextRestarting. */
static int handle_context_op(struct http_req *r, struct envd_req *t, const char *id, bool keep)
{
        const char *dflt = default_cwd(t);
        int64_t pid = 0;
        bool found = false;
        registry_load(t, dflt);
        pthread_mutex_lock(&reg_lock);
        struct interp_sandbox *s = sandbox_locked(t->rec->id, dflt);
        for (struct interp_ctx **pp = &s->ctxs; *pp; pp = &(*pp)->next) {
                struct interp_ctx *c = *pp;
                if (!streq(c->id, id))
                        continue;
                found = true;
                pid = c->pid;
                c->pid = 0;
                c->generation++;
                c->count = 0;
                if (!keep) {
                        *pp = c->next;
                        c->deleted = true;
                        ctx_unref_locked(c);
                }
                break;
        }
        pthread_mutex_unlock(&reg_lock);
        if (!found)
                return reply_text(r, 404, "Context %s not found", id);
        if (pid > 0) {
                struct interp_target g = { .cd = r->cd, .sandbox_id = t->rec->id };
                signal_process(&g, pid, "SIGKILL");
        }
        registry_save(r->cd, t->rec->id);
        return http_reply_json_text(r, 200, xstrdup("null"), 4);
}

/* ---- warming up (§5.2) ---- */

void envd_interp_warm(struct coved *cd, const char *sandbox_id)
{
        cleanup_err struct cove_err *err = NULL;
        struct sandbox_rec *rec = NULL;
        if (manager_get(cd, NULL, sandbox_id, &rec, NULL) < 0)
                return;
        struct envd_req t = { .cd = cd, .rec = rec };
        struct interp_ctx *c = find_ctx(&t, NULL, "python", default_cwd(&t));
        struct interp_turn turn;
        pthread_mutex_lock(&reg_lock);
        /* an execution already queued starts the kernel itself: nothing to wait for */
        bool mine = !c->turns && c->pid <= 0 && !c->deleted;
        if (mine)
                turn_enqueue_locked(c, &turn);
        pthread_mutex_unlock(&reg_lock);
        if (mine) {
                struct interp_target g = {
                        .cd = cd,
                        .sandbox_id = rec->id,
                        .env = json_is_object(rec->env_vars) ? rec->env_vars : NULL,
                };
                int64_t pid;
                if (kernel_start(&g, c, &pid, &err) < 0)
                        log_warning("sandbox '%s': the default Python context did not start, "
                                    "its first execution will start it: %s",
                                    sandbox_id, err->msg);
                pthread_mutex_lock(&reg_lock);
                turn_leave_locked(c, &turn);
                pthread_mutex_unlock(&reg_lock);
        }
        pthread_mutex_lock(&reg_lock);
        ctx_unref_locked(c);
        pthread_mutex_unlock(&reg_lock);
        sandbox_rec_free(rec);
}

int envd_interp_begin(struct http_req *r, struct envd_req *t)
{
        t->kind = ENVD_INTERP;
        t->body_limit = INTERP_BODY_MAX;
        if (streq(r->method, "OPTIONS"))
                return http_reply_e2b_preflight(r);
        uint64_t len;
        if (http_body_length(r, &len) && len > t->body_limit)
                return http_reply_error(r, 413, "request body too large (limit %zu bytes)",
                                        t->body_limit);
        return 0;
}

int envd_interp_handler(struct http_req *r, struct envd_req *t)
{
        if (t->body_over)
                return reply_text(r, 413, "request body too large");
        const char *m = r->method;
        char **s = t->sub;
        size_t n = t->nsub;
        if (n == 1 && streq(s[0], "health") && streq(m, "GET"))
                return http_reply_json_text(r, 200, xstrdup("\"OK\""), 4);
        if (n == 1 && streq(s[0], "execute") && streq(m, "POST"))
                return handle_execute(r, t);
        if (n == 1 && streq(s[0], "contexts") && streq(m, "POST"))
                return handle_create_context(r, t);
        if (n == 1 && streq(s[0], "contexts") && streq(m, "GET"))
                return handle_list_contexts(r, t);
        if (n == 2 && streq(s[0], "contexts") && streq(m, "DELETE"))
                return handle_context_op(r, t, s[1], false);
        if (n == 3 && streq(s[0], "contexts") && streq(s[2], "restart") && streq(m, "POST"))
                return handle_context_op(r, t, s[1], true);
        return reply_text(r, 404, "no route for %s '%s'", m, r->raw_path);
}
