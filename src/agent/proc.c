/* SPDX-License-Identifier: MIT */
/*
 * proc.c — the process service (runtime.md §8; proc.h lists its modules): dispatch, the
 * unary methods (List, SendInput, CloseStdin, SendSignal, Update, GetResult) and the request
 * helpers that Start shares.
 */
#include "agent/proc.h"
#include "lib/sigreset.h"
#include "lib/b64.h"
#include "lib/http_status.h"
#include "lib/log.h"
#include "lib/macro.h"

#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <termios.h>

struct pty_size {
        struct json_int cols, rows;
};

static const struct json_field pty_size_fields[] = {
        { "cols", json_take_int, offsetof(struct pty_size, cols), JSON_MANDATORY, 1,
          PROC_PTY_SIZE_MAX },
        { "rows", json_take_int, offsetof(struct pty_size, rows), JSON_MANDATORY, 1,
          PROC_PTY_SIZE_MAX },
        {}
};

int proc_parse_pty(json_t *pty, const char *field, bool size_required, unsigned short *cols,
                   unsigned short *rows, struct cove_err **err)
{
        struct pty_size sz = { 0 };

        if (!json_is_object(pty))
                return cove_err_set(err, EINVAL, "field '%s' must be an object", field);
        json_t *size = json_object_get(pty, "size");
        if (!size || json_is_null(size)) {
                if (size_required)
                        return cove_err_set(err, EINVAL, "field '%s.size' is required", field);
                *cols = 80;
                *rows = 24;
                return 0;
        }
        if (!json_is_object(size))
                return cove_err_set(err, EINVAL, "field '%s.size' must be an object", field);
        if (json_dispatch(size, pty_size_fields, &sz, err) < 0)
                return cove_err_wrap(err, "field '%s.size'", field);
        *cols = (unsigned short)sz.cols.v;
        *rows = (unsigned short)sz.rows.v;
        return 0;
}

int proc_reply_err(int fd, struct cove_err *e)
{
        int status = e->status ? e->status : (int)http_status_from_errno(e->errnum);
        return agent_reply_err(fd, status, "%s", e->msg);
}

static int op_list(struct agent_call *c)
{
        struct proc **v;
        size_t n = 0;
        json_t *arr = json_array();

        pthread_mutex_lock(&proc_tab_lock);
        v = proc_table_running_by_pid_locked(&n);
        for (size_t i = 0; i < n; i++) {
                struct proc *p = v[i];
                json_t *args = json_array();
                for (char **a = p->args; *a; a++)
                        json_array_append_new(args, json_string(*a));
                json_t *info = json_pack("{s:i, s:{s:s, s:o, s:O, s:s}, s:s}", "pid", (int)p->pid,
                                         "config", "cmd", p->cmd, "args", args, "envs", p->envs,
                                         "cwd", p->cwd, "cmdId", p->cmd_id);
                if (p->tag)
                        json_object_set_new(info, "tag", json_string(p->tag));
                json_array_append_new(arr, info);
        }
        pthread_mutex_unlock(&proc_tab_lock);
        free(v);
        return agent_reply_ok(c->fd, json_pack("{s:o}", "processes", arr));
}

/* The running process named by the request's selector, referenced, or an error reply. */
static struct proc *selected_running(struct agent_call *c, int *ret_reply)
{
        cleanup_err struct cove_err *err = NULL;
        struct selector sel;
        struct proc *p;

        if (proc_selector_parse(c->body, &sel, &err) < 0) {
                *ret_reply = proc_reply_err(c->fd, err);
                return NULL;
        }
        pthread_mutex_lock(&proc_tab_lock);
        p = proc_table_find_running_locked(&sel);
        pthread_mutex_unlock(&proc_tab_lock);
        if (!p)
                *ret_reply = agent_reply_err(c->fd, 404, "process not found");
        return p;
}

/* Writes all of d to the process's stdin / PTY; -EPIPE when input is (or gets) closed. */
static int write_input(struct proc *p, const unsigned char *d, size_t n)
{
        int r = 0;

        pthread_mutex_lock(&p->in_lock);
        while (n > 0) {
                if (p->in_fd < 0 || atomic_load(&p->exited)) {
                        r = -EPIPE;
                        break;
                }
                ssize_t w = write(p->in_fd, d, n);
                if (w > 0) {
                        d += w;
                        n -= (size_t)w;
                        continue;
                }
                if (w < 0 && errno == EINTR)
                        continue;
                if (w < 0 && errno != EAGAIN) {
                        r = -errno;
                        break;
                }
                struct pollfd pfd = { .fd = p->in_fd, .events = POLLOUT };
                (void)poll(&pfd, 1, PROC_INPUT_POLL_MS);
        }
        pthread_mutex_unlock(&p->in_lock);
        return r;
}

static int op_send_input(struct agent_call *c)
{
        cleanup_free unsigned char *data = NULL;
        json_t *input, *in_stdin, *in_pty, *v;
        size_t n;
        int r = 0;

        input = json_object_get(c->body, "input");
        if (!json_is_object(input))
                return agent_reply_err(c->fd, 400,
                                       "field 'input' is required and must be an object");
        in_stdin = json_object_get(input, "stdin");
        in_pty = json_object_get(input, "pty");
        if (in_stdin && json_is_null(in_stdin))
                in_stdin = NULL;
        if (in_pty && json_is_null(in_pty))
                in_pty = NULL;
        if (!in_stdin == !in_pty)
                return agent_reply_err(c->fd, 400,
                                       "input must have exactly one of 'stdin' or 'pty'");
        v = in_stdin ? in_stdin : in_pty;
        if (!json_is_string(v))
                return agent_reply_err(c->fd, 400, "field 'input.%s' must be a base64 string",
                                       in_stdin ? "stdin" : "pty");
        if (b64_decode(json_string_value(v), json_string_length(v), 0, &data, &n) < 0)
                return agent_reply_err(c->fd, 400, "field 'input.%s' is not valid base64",
                                       in_stdin ? "stdin" : "pty");

        struct proc *p = selected_running(c, &r);
        if (!p)
                return r;
        if (in_pty && !p->pty)
                r = agent_reply_err(c->fd, 400, "process %d has no pty", (int)p->pid);
        else if (write_input(p, data, n) < 0)
                r = agent_reply_err(c->fd, 400, "stdin of process %d is closed", (int)p->pid);
        else
                r = agent_reply_ok(c->fd, NULL);
        proc_unref(p);
        return r;
}

static int op_close_stdin(struct agent_call *c)
{
        int r = 0;
        struct proc *p = selected_running(c, &r);

        if (!p)
                return r;
        if (p->pty) {
                r = agent_reply_err(c->fd, 400,
                                    "process %d runs on a pty: send byte 0x04 to end input",
                                    (int)p->pid);
        } else {
                pthread_mutex_lock(&p->in_lock);
                if (p->in_fd >= 0) {
                        (void)close(p->in_fd);
                        p->in_fd = -1;
                }
                pthread_mutex_unlock(&p->in_lock);
                r = agent_reply_ok(c->fd, NULL);
        }
        proc_unref(p);
        return r;
}

static const struct {
        const char *name;
        int sig;
} signal_names[] = {
        { "SIGKILL", SIGKILL }, { "SIGTERM", SIGTERM }, { "SIGINT", SIGINT },
        { "SIGHUP", SIGHUP },   { "SIGQUIT", SIGQUIT }, { "SIGUSR1", SIGUSR1 },
        { "SIGUSR2", SIGUSR2 },
};

static int parse_signal(json_t *v)
{
        int64_t n;

        if (json_is_string(v)) {
                const char *s = json_string_value(v);
                if (strncmp(s, "SIGNAL_", STRLEN("SIGNAL_")) == 0)
                        s += STRLEN("SIGNAL_");
                for (size_t i = 0; i < ARRAY_SIZE(signal_names); i++)
                        if (streq(s, signal_names[i].name))
                                return signal_names[i].sig;
                return -EINVAL;
        }
        if (json_get_integer(v, &n))
                for (size_t i = 0; i < ARRAY_SIZE(signal_names); i++)
                        if (n == signal_names[i].sig)
                                return signal_names[i].sig;
        return -EINVAL;
}

static int op_send_signal(struct agent_call *c)
{
        cleanup_err struct cove_err *err = NULL;
        struct selector sel;
        json_t *v = json_object_get(c->body, "signal");
        int sig;
        bool found = false;

        if (proc_selector_parse(c->body, &sel, &err) < 0)
                return proc_reply_err(c->fd, err);
        sig = v ? parse_signal(v) : -EINVAL;
        if (sig < 0)
                return agent_reply_err(c->fd, 400,
                                       "field 'signal' must be one of SIGKILL, SIGTERM, SIGINT, "
                                       "SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2");
        pthread_mutex_lock(&proc_tab_lock);
        struct proc *p = proc_table_find_running_locked(&sel);
        /* Under the lock and before the pump reaps: the pid cannot have been reused. */
        if (p && !p->exiting) {
                found = true;
                if (kill(-p->pid, sig) < 0)
                        (void)kill(p->pid, sig);
        }
        pthread_mutex_unlock(&proc_tab_lock);
        if (p)
                proc_unref(p);
        if (!found)
                return agent_reply_err(c->fd, 404, "process not found");
        return agent_reply_ok(c->fd, NULL);
}

static int op_update(struct agent_call *c)
{
        cleanup_err struct cove_err *err = NULL;
        unsigned short cols, rows;
        json_t *pty = json_object_get(c->body, "pty");
        int r = 0;

        if (!pty || json_is_null(pty))
                return agent_reply_err(c->fd, 400, "field 'pty' is required");
        if (proc_parse_pty(pty, "pty", true, &cols, &rows, &err) < 0)
                return proc_reply_err(c->fd, err);
        struct proc *p = selected_running(c, &r);
        if (!p)
                return r;
        if (!p->pty) {
                r = agent_reply_err(c->fd, 400, "process %d has no pty", (int)p->pid);
        } else {
                struct winsize ws = { .ws_row = rows, .ws_col = cols };
                int e = 0;
                pthread_mutex_lock(&p->in_lock);
                if (p->in_fd < 0)
                        e = ESRCH;
                else if (ioctl(p->in_fd, TIOCSWINSZ, &ws) < 0)
                        e = errno;
                pthread_mutex_unlock(&p->in_lock);
                if (e == ESRCH)
                        r = agent_reply_err(c->fd, 404, "process not found");
                else if (e)
                        r = agent_reply_err(c->fd, 500, "resize pty: %s", strerror(e));
                else
                        r = agent_reply_ok(c->fd, NULL);
        }
        proc_unref(p);
        return r;
}

static int op_get_result(struct agent_call *c)
{
        json_t *v = json_object_get(c->body, "cmdId");
        struct proc *p = NULL;
        bool still_running = false;

        if (!v || json_is_null(v))
                return agent_reply_err(c->fd, 400, "field 'cmdId' is required");
        if (!json_is_string(v))
                return agent_reply_err(c->fd, 400, "field 'cmdId' must be a string");
        const char *id = json_string_value(v);

        pthread_mutex_lock(&proc_tab_lock);
        proc_table_prune_locked();
        p = proc_table_result_by_id_locked(id, &still_running);
        pthread_mutex_unlock(&proc_tab_lock);

        if (still_running)
                return agent_reply_err(c->fd, 404, "process not finished");
        if (!p)
                return agent_reply_err(c->fd, 404, "process not found");

        /* A finished proc's rings no longer change. */
        cleanup_free char *out = ring_linear(&p->out);
        cleanup_free char *errs = ring_linear(&p->err);
        json_t *body = json_pack("{s:i, s:o, s:o, s:I}", "exitCode", p->exit_code, "stdout",
                                 proc_text_json(out, p->out.len), "stderr",
                                 proc_text_json(errs, p->err.len), "startedAtUnix",
                                 (json_int_t)p->started_unix);
        proc_unref(p);
        return agent_reply_ok(c->fd, body);
}

static const struct {
        const char *op;
        int (*fn)(struct agent_call *c);
} proc_ops[] = {
        { "process.Start", proc_op_start },
        { "process.Connect", proc_op_connect },
        { "process.List", op_list },
        { "process.SendInput", op_send_input },
        { "process.CloseStdin", op_close_stdin },
        { "process.SendSignal", op_send_signal },
        { "process.Update", op_update },
        { "process.GetResult", op_get_result },
        { "run", proc_run },
};

void proc_init(void)
{
        sig_nondefault(&proc_child_sigreset);
        proc_child_sigreset_set = true;
        /* 256 processes (pidfd + 3 pipes each) and 512 connections (socket + eventfd) need more
         * than the usual soft limit of 1024; children get the original limit back. */
        struct rlimit rl;
        if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
                proc_child_nofile = rl;
                proc_child_nofile_set = true;
                if (rl.rlim_cur < rl.rlim_max) {
                        rl.rlim_cur = rl.rlim_max;
                        if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
                                log_warning("raise RLIMIT_NOFILE: %m, ignoring");
                }
        }
}

bool proc_handles(const char *op)
{
        return strncmp(op, "process.", STRLEN("process.")) == 0 || streq(op, "run");
}

int proc_handle(struct agent_call *c)
{
        for (size_t i = 0; i < ARRAY_SIZE(proc_ops); i++)
                if (streq(c->op, proc_ops[i].op))
                        return proc_ops[i].fn(c);
        return agent_reply_err(c->fd, 404, "unknown operation '%s'", c->op);
}
