/* SPDX-License-Identifier: MIT */
/*
 * proc_run.c — `run` (runtime.md §4.7): start a command, feed it stdin, collect its output
 * (first 16 MiB per stream), wait, answer once. Runs on the connection's thread; closing the
 * connection cancels the call and kills the command's process group.
 */
#include "agent/proc_spawn.h"
#include "lib/log.h"
#include "lib/macro.h"
#include "lib/timeutil.h"

#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>

#define RUN_DEFAULT_TIMEOUT_MS (60 * 1000)
#define RUN_MAX_TIMEOUT_MS     (3600 * 1000)
#define RUN_DRAIN_IDLE_MS      20
#define RUN_DRAIN_MAX_MS       2000

struct run_req {
        char *cmd;
        char **args;
        char *cwd;
        json_t *env;
        json_t *stdin_;
};

static const struct json_field run_fields[] = {
        { "cmd", json_take_str, offsetof(struct run_req, cmd), JSON_MANDATORY },
        { "args", json_take_strv, offsetof(struct run_req, args), 0 },
        { "cwd", json_take_str, offsetof(struct run_req, cwd), 0 },
        { "env", json_take_json, offsetof(struct run_req, env), 0 },
        { "stdin", json_take_json, offsetof(struct run_req, stdin_), 0 },
        {}
};

struct capture {
        char *p;
        size_t len, cap;
        bool truncated;
};

static void capture_add(struct capture *b, const char *d, size_t n)
{
        if (b->len + n > PROC_OUTPUT_MAX) {
                b->truncated = true;
                n = PROC_OUTPUT_MAX - b->len;
        }
        if (n == 0)
                return;
        if (b->len + n > b->cap) {
                size_t nc = MIN(MAX(MAX(b->cap * 2, b->len + n), (size_t)16384),
                                (size_t)PROC_OUTPUT_MAX);
                b->p = xrealloc(b->p, nc);
                b->cap = nc;
        }
        memcpy(b->p + b->len, d, n);
        b->len += n;
}

struct run_state {
        int fds[2]; /* stdout, stderr read ends (-1 when done) */
        struct capture cap[2];
        char *chunk;
};

/* One read; closes the fd at EOF or error. */
static void run_read(struct run_state *st, int i)
{
        ssize_t n = read(st->fds[i], st->chunk, PROC_READ_CHUNK);
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
                return;
        if (n <= 0) {
                (void)close(st->fds[i]);
                st->fds[i] = -1;
                return;
        }
        capture_add(&st->cap[i], st->chunk, (size_t)n);
}

static void kill_group(pid_t pid)
{
        (void)kill(-pid, SIGKILL);
        (void)kill(pid, SIGKILL);
}

static bool pid_exited(pid_t pid)
{
        siginfo_t si = { 0 };
        if (waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) < 0)
                return errno == ECHILD;
        return si.si_pid != 0;
}

int proc_run(struct agent_call *c)
{
        cleanup_err struct cove_err *err = NULL;
        struct run_req req = { 0 };
        json_t *stdin_json = NULL;
        cleanup_strv char **envp = NULL;
        cleanup_free char *cwd = NULL;
        struct proc_spawned sp = { .pid = 0,
                                   .pidfd = -1,
                                   .stdin_fd = -1,
                                   .stdout_fd = -1,
                                   .stderr_fd = -1,
                                   .master_fd = -1 };
        struct run_state st = { .fds = { -1, -1 } };
        int64_t timeout_ms = 0, t0, deadline;
        const char *in_data = NULL;
        size_t in_len = 0, in_off = 0;
        bool exited = false, timed_out = false, cancelled = false;
        int wstatus = 0, r;

        if (json_dispatch(c->body, run_fields, &req, &err) < 0)
                goto invalid;
        stdin_json = TAKE_PTR(req.stdin_);
        if (!*req.cmd) {
                cove_err_set(&err, EINVAL, "field 'cmd' must not be empty");
                goto invalid;
        }
        if (req.env && !json_is_null(req.env) && proc_take_envs(req.env, "env", &err) < 0)
                goto invalid;
        if (stdin_json && !json_is_null(stdin_json)) {
                if (!json_is_string(stdin_json)) {
                        cove_err_set(&err, EINVAL, "field 'stdin' must be a string");
                        goto invalid;
                }
                in_data = json_string_value(stdin_json);
                in_len = json_string_length(stdin_json);
        }
        if (proc_take_timeout_ms(c->body, &timeout_ms, &err) < 0)
                goto invalid;
        if (timeout_ms == 0)
                timeout_ms = RUN_DEFAULT_TIMEOUT_MS;
        timeout_ms = MIN(timeout_ms, (int64_t)RUN_MAX_TIMEOUT_MS);

        envp = proc_build_env(c, req.env && json_is_object(req.env) ? req.env : NULL, false);
        cwd = proc_resolve_cwd(c, req.cwd);
        struct proc_spawn_opts o = {
                .cmd = req.cmd,
                .args = req.args,
                .envp = envp,
                .cwd = cwd,
                .user = c->user,
                .stdin_pipe = in_data != NULL,
        };
        t0 = time_mono_ms();
        if (proc_spawn(&o, &sp, &err) < 0) {
                r = agent_reply_err(c->fd, err->status ? err->status : 500, "%s", err->msg);
                goto out;
        }
        deadline = t0 + timeout_ms;
        st.fds[0] = sp.stdout_fd;
        st.fds[1] = sp.stderr_fd;
        sp.stdout_fd = sp.stderr_fd = -1;
        st.chunk = xmalloc(PROC_READ_CHUNK);
        if (sp.stdin_fd >= 0 && in_len == 0) {
                (void)close(sp.stdin_fd);
                sp.stdin_fd = -1;
        }

        while (!exited) {
                struct pollfd pfd[5];
                int idx[5];
                nfds_t n = 0;
                for (int i = 0; i < 2; i++)
                        if (st.fds[i] >= 0) {
                                pfd[n] = (struct pollfd){ .fd = st.fds[i], .events = POLLIN };
                                idx[n++] = i;
                        }
                if (sp.stdin_fd >= 0) {
                        pfd[n] = (struct pollfd){ .fd = sp.stdin_fd, .events = POLLOUT };
                        idx[n++] = 2;
                }
                if (sp.pidfd >= 0) {
                        pfd[n] = (struct pollfd){ .fd = sp.pidfd, .events = POLLIN };
                        idx[n++] = 3;
                }
                if (!cancelled) {
                        pfd[n] = (struct pollfd){ .fd = c->fd, .events = POLLRDHUP };
                        idx[n++] = 4;
                }
                int64_t left = timed_out ? 50 : MAX(deadline - time_mono_ms(), 0);
                int timeout = (int)MIN(left, (int64_t)(sp.pidfd >= 0 ? INT32_MAX : 50));
                int pr = poll(pfd, n, timeout);
                if (pr < 0 && errno != EINTR) {
                        log_error_errno(errno, "poll run: %m");
                        kill_group(sp.pid);
                        timed_out = true;
                }
                for (nfds_t k = 0; pr > 0 && k < n; k++) {
                        if (!pfd[k].revents)
                                continue;
                        switch (idx[k]) {
                        case 0:
                        case 1:
                                run_read(&st, idx[k]);
                                break;
                        case 2: {
                                ssize_t w = write(sp.stdin_fd, in_data + in_off, in_len - in_off);
                                if (w > 0)
                                        in_off += (size_t)w;
                                if ((w < 0 && errno != EAGAIN && errno != EINTR) ||
                                    in_off == in_len) {
                                        (void)close(sp.stdin_fd);
                                        sp.stdin_fd = -1;
                                }
                                break;
                        }
                        case 3:
                                exited = true;
                                break;
                        case 4:
                                /* The client left: cancel the call. */
                                cancelled = true;
                                kill_group(sp.pid);
                                break;
                        }
                }
                if (sp.pidfd < 0 && pid_exited(sp.pid))
                        exited = true;
                if (!exited && !timed_out && time_mono_ms() >= deadline) {
                        kill_group(sp.pid);
                        timed_out = true;
                }
        }

        int64_t drain_end = time_mono_ms() + RUN_DRAIN_MAX_MS;
        while (st.fds[0] >= 0 || st.fds[1] >= 0) {
                struct pollfd pfd[2];
                int idx[2];
                nfds_t n = 0;
                int64_t left = drain_end - time_mono_ms();
                if (left <= 0)
                        break;
                for (int i = 0; i < 2; i++)
                        if (st.fds[i] >= 0) {
                                pfd[n] = (struct pollfd){ .fd = st.fds[i], .events = POLLIN };
                                idx[n++] = i;
                        }
                int pr = poll(pfd, n, (int)MIN(left, (int64_t)RUN_DRAIN_IDLE_MS));
                if (pr < 0 && errno == EINTR)
                        continue;
                if (pr <= 0)
                        break;
                for (nfds_t k = 0; k < n; k++)
                        if (pfd[k].revents)
                                run_read(&st, idx[k]);
        }
        if (TEMP_FAILURE_RETRY(waitpid(sp.pid, &wstatus, 0)) < 0)
                wstatus = W_EXITCODE(255, 0);
        int64_t duration = time_mono_ms() - t0;

        if (cancelled) {
                r = -ECONNRESET;
                goto out;
        }

        char status[96];
        int code;
        json_t *error = NULL;
        proc_describe_status(wstatus, status, sizeof(status), &code);
        if (timed_out && !WIFEXITED(wstatus)) {
                code = 124;
                error = json_sprintf("command timed out after %lld ms", (long long)timeout_ms);
        } else if (WIFSIGNALED(wstatus)) {
                error = json_string(status);
        } else if (st.cap[0].truncated || st.cap[1].truncated) {
                error = json_string("output truncated");
        }
        json_t *body = json_pack("{s:o, s:o, s:i, s:I}", "stdout",
                                 proc_text_json(st.cap[0].p, st.cap[0].len), "stderr",
                                 proc_text_json(st.cap[1].p, st.cap[1].len), "exit_code", code,
                                 "duration_ms", (json_int_t)duration);
        if (error)
                json_object_set_new(body, "error", error);
        r = agent_reply_ok(c->fd, body);
        goto out;

invalid:
        r = agent_reply_err(c->fd, 400, "%s", err->msg);
out:
        for (int i = 0; i < 2; i++) {
                if (st.fds[i] >= 0)
                        (void)close(st.fds[i]);
                free(st.cap[i].p);
        }
        free(st.chunk);
        proc_spawned_close(&sp);
        free(req.cmd);
        strv_free(req.args);
        free(req.cwd);
        json_decref(req.env);
        json_decref(stdin_json);
        return r;
}
