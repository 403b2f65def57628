/* SPDX-License-Identifier: MIT */
/*
 * cmd_exec.c — `cove sandbox exec` and `cove sandbox connect` (cli.md §4): a process stream
 * read on one thread while the main thread forwards local input (piped stdin, or terminal
 * keystrokes and window-size changes).
 *
 * The stream thread only writes output and reports on an event pipe ('S' started, 'E'
 * ended); the main thread polls that pipe, stdin and (for the terminal) a signalfd, so no
 * signal handler ever runs. The terminal is put back on every way out: the normal end, an
 * error, SIGTERM/SIGHUP/SIGINT/SIGQUIT (signalfd), and exit() (atexit).
 */
#include "cli.h"

#include "lib/macro.h"

#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <termios.h>

#include "lib/banned.h" /* last */

#define INPUT_CHUNK (64 * 1024)

struct session {
        struct cove_client *c;
        const struct cove_runtime *rt;
        json_t *request;
        bool background;
        int ev[2];           /* stream thread → main: 'S' started, 'E' ended */
        volatile int cancel; /* set by the main thread: the stream returns -ECANCELED */
        int signal;          /* the signal that cancelled it, 0 */

        /* Written by the stream thread before it sends 'S' / 'E'. */
        int64_t pid;
        char *cmd_id;
        bool have_end;
        int exit_code;
        char *end_error;
        int stream_r;
        struct cove_error *err;
};

static void write_all(int fd, const void *p, size_t n)
{
        const char *s = p;

        while (n > 0) {
                ssize_t k = write(fd, s, n);

                if (k < 0 && errno == EINTR)
                        continue;
                if (k <= 0)
                        return; /* the reader went away; the stream keeps draining */
                s += k;
                n -= (size_t)k;
        }
}

static void notify(struct session *s, char what)
{
        if (s->ev[1] >= 0)
                (void)TEMP_FAILURE_RETRY(write(s->ev[1], &what, 1));
}

static int on_start(void *ud, int64_t pid, const char *cmd_id)
{
        struct session *s = ud;

        s->pid = pid;
        s->cmd_id = xstrdup(cmd_id);
        if (s->background) {
                fprintf(stderr, "PID: %" PRId64 "\nCmdID: %s\n", pid, cmd_id);
                return 1; /* detach: the process keeps running */
        }
        notify(s, 'S');
        return 0;
}

static int on_stdout(void *ud, const void *p, size_t n)
{
        (void)ud;
        write_all(STDOUT_FILENO, p, n);
        return 0;
}

static int on_stderr(void *ud, const void *p, size_t n)
{
        (void)ud;
        write_all(STDERR_FILENO, p, n);
        return 0;
}

static int on_end(void *ud, const struct cove_process_end *e)
{
        struct session *s = ud;

        s->have_end = true;
        s->exit_code = e->exit_code;
        if (e->error)
                s->end_error = xstrdup(e->error);
        return 0;
}

static const struct cove_process_callbacks callbacks = {
        .on_start = on_start,
        .on_stdout = on_stdout,
        .on_stderr = on_stderr,
        .on_pty = on_stdout,
        .on_end = on_end,
};

static void *stream_thread(void *ud)
{
        struct session *s = ud;

        s->stream_r =
                cove_process_start(s->c, s->rt, s->request, &callbacks, s, &s->cancel, &s->err);
        notify(s, 'E');
        return NULL;
}

static void session_release(struct session *s)
{
        free(s->cmd_id);
        free(s->end_error);
        cove_error_free(&s->err);
        json_decref(s->request);
        if (s->ev[0] >= 0)
                (void)close(s->ev[0]);
        if (s->ev[1] >= 0)
                (void)close(s->ev[1]);
}

/* The exit code of a finished session: the end event's, else GetResult's (cli.md §4). */
static int session_exit_code(struct session *s)
{
        int code = 1;

        if (s->have_end) {
                code = s->exit_code;
        } else if (s->cmd_id) {
                json_t *res = NULL;

                if (cove_process_get_result(s->c, s->rt, s->cmd_id, &res, NULL) == 0)
                        code = (int)json_integer_value(json_object_get(res, "exitCode"));
                json_decref(res);
        }
        if (s->end_error)
                fprintf(stderr, "cove: %s\n", s->end_error);
        if (code < 0)
                return 1;
        return code > 255 ? 255 : code;
}

/* Until the stream ends: forwards piped stdin (when `forward`) with SendInput, then
 * CloseStdin; a signal on sigfd (>= 0) cancels the stream. */
static void forward_stdin(struct session *s, bool forward, int sigfd, bool *ended)
{
        cleanup_free char *chunk = xmalloc(INPUT_CHUNK);
        bool started = false, stdin_open = forward;

        while (!*ended) {
                struct pollfd p[3] = { { .fd = s->ev[0], .events = POLLIN },
                                       { .fd = sigfd, .events = POLLIN },
                                       { .fd = STDIN_FILENO, .events = POLLIN } };
                nfds_t np = started && stdin_open ? 3 : 2;
                char what;

                if (poll(p, np, -1) < 0) {
                        if (errno == EINTR)
                                continue;
                        break;
                }
                if (p[1].revents) {
                        struct signalfd_siginfo si;
                        if (TEMP_FAILURE_RETRY(read(sigfd, &si, sizeof(si))) == sizeof(si) &&
                            !s->signal) {
                                s->signal = (int)si.ssi_signo;
                                s->cancel = 1;
                        }
                        continue;
                }
                if (p[0].revents) {
                        if (TEMP_FAILURE_RETRY(read(s->ev[0], &what, 1)) != 1)
                                break;
                        if (what == 'S')
                                started = true;
                        else
                                *ended = true;
                        continue;
                }
                if (np == 3 && p[2].revents) {
                        ssize_t n = TEMP_FAILURE_RETRY(read(STDIN_FILENO, chunk, INPUT_CHUNK));

                        if (n > 0 && cove_process_send_input(s->c, s->rt, s->pid, false, chunk,
                                                             (size_t)n, NULL) == 0)
                                continue;
                        /* EOF, a read error, or the process no longer takes input. */
                        stdin_open = false;
                        (void)cove_process_close_stdin(s->c, s->rt, s->pid, NULL);
                }
        }
}

static int process_run(struct cove_client *c, const struct cove_runtime *rt, json_t *request,
                       bool background, bool forward, int sigfd)
{
        struct session s = {
                .c = c, .rt = rt, .request = request, .background = background, .ev = { -1, -1 }
        };
        pthread_t thread;
        bool ended = false;
        int r;

        if (!forward && sigfd < 0) {
                s.stream_r = cove_process_start(c, rt, request, &callbacks, &s, NULL, &s.err);
        } else {
                if (pipe2(s.ev, O_CLOEXEC) < 0) {
                        session_release(&s);
                        fprintf(stderr, "cove: pipe: %m\n");
                        return EXIT_API;
                }
                r = pthread_create(&thread, NULL, stream_thread, &s);
                if (r != 0) {
                        session_release(&s);
                        fprintf(stderr, "cove: start thread: %s\n", strerror(r));
                        return EXIT_API;
                }
                forward_stdin(&s, forward, sigfd, &ended);
                (void)pthread_join(thread, NULL);
        }
        if (s.signal) {
                r = 128 + s.signal;
        } else if (s.stream_r < 0) {
                r = cli_error(&s.err);
        } else if (s.stream_r == 1 && background) {
                r = 0;
        } else {
                r = session_exit_code(&s);
        }
        session_release(&s);
        return r;
}

int process_stream(struct cove_client *c, const struct cove_runtime *rt, json_t *request,
                   bool forward, int sigfd)
{
        return process_run(c, rt, request, /* background= */ false, forward, sigfd);
}

char *join_words(char **words)
{
        size_t n = 0;
        char *s, *p;

        for (char **w = words; *w; w++)
                n += strlen(*w) + 1;
        s = p = xmalloc(n + 1);
        *p = '\0';
        for (char **w = words; *w; w++) {
                size_t k = strlen(*w);

                if (p != s)
                        *p++ = ' ';
                memcpy(p, *w, k);
                p += k;
                *p = '\0';
        }
        return s;
}

/* `connect {"timeout": t}`, then the runtime of the returned sandbox. */
static int connect_sandbox(const char *id, int timeout, const char *user, json_t **ret_sandbox,
                           struct cove_runtime *ret_rt)
{
        struct cove_error *err = NULL;
        json_t *sb = NULL;

        if (cove_sandbox_connect(cli_client(), id, timeout, &sb, &err) < 0)
                return cli_error(&err);
        if (cove_runtime_init(ret_rt, sb, user, &err) < 0) {
                json_decref(sb);
                return cli_error(&err);
        }
        if (ret_sandbox)
                *ret_sandbox = sb;
        else
                json_decref(sb);
        return 0;
}

int cmd_sandbox_exec(int argc, char **argv)
{
        static const struct cmd_help help = {
                "cove sandbox exec <id> <command…> [--background] [--cwd DIR] [--user USER] "
                "[--env k=v…] [--timeout-ms MS]",
                "Run a command line with 'sh -lc' in the sandbox, streaming its output. Piped "
                "stdin is\nforwarded. Exits with the command's exit code. Flags go before the "
                "command (or use --)."
        };
        static int a_bg = -1;
        static const char *a_cwd, *a_user;
        static char **a_env;
        static int64_t a_timeout_ms = -1;
        static const struct opt opts[] = {
                { "background", NULL, OPT_BOOL, &a_bg, "print PID and CmdID, do not wait" },
                { "cwd", NULL, OPT_STRING, &a_cwd, "working directory" },
                { "user", NULL, OPT_STRING, &a_user, "run as this user (default root)" },
                { "env", NULL, OPT_LIST, &a_env, "environment k=v (repeatable)" },
                { "timeout-ms", NULL, OPT_INT, &a_timeout_ms, "kill the command after MS" },
                {}
        };
        cleanup_free char **pos = NULL;
        cleanup_free char *line = NULL;
        struct cove_runtime rt = {};
        json_t *req, *proc, *envs = NULL;
        bool forward;
        int n, r;

        n = opt_parse(argc, argv, opts, &help, 2, &pos);
        if (n < 0)
                return EXIT_USAGE;
        if (n < 2)
                return usage_error(&help, n == 0 ? "missing sandbox ID" : "missing command");
        if (parse_kv_list(a_env, "env", &envs) < 0)
                return EXIT_USAGE;
        line = join_words(pos + 1);
        forward = a_bg <= 0 && !isatty(STDIN_FILENO);
        proc = json_pack("{s:s,s:[s,s]}", "cmd", "sh", "args", "-lc", line);
        if (json_object_size(envs))
                json_object_set(proc, "envs", envs);
        json_decref(envs);
        if (a_cwd)
                json_object_set_new(proc, "cwd", json_string(a_cwd));
        req = json_pack("{s:o,s:b}", "process", proc, "stdin", forward);
        if (a_timeout_ms >= 0)
                json_object_set_new(req, "timeoutMs", json_integer(a_timeout_ms));

        if (arg_dry_run) {
                struct cli_req rq = { .action = "exec in sandbox", .method = "POST" };
                cleanup_free char *start = json_dumps(req, JSON_COMPACT | JSON_PRESERVE_ORDER);

                rq.path = xasprintf("/sandboxes/%s/connect", pos[0]);
                rq.body = json_pack("{s:i}", "timeout", 0);
                rq.ids = json_pack("[s]", pos[0]);
                cli_req_note(&rq, "then POST {envdUrl}/process.Process/Start %s%s%s", start,
                             a_user ? " as user " : "", a_user ? a_user : "");
                if (forward)
                        cli_req_note(&rq, "stdin is forwarded with SendInput, then CloseStdin");
                cli_print_dry_run(&rq);
                cli_req_release(&rq);
                json_decref(req);
                return 0;
        }
        r = connect_sandbox(pos[0], 0, a_user, NULL, &rt);
        if (r) {
                json_decref(req);
                return r;
        }
        /* req is owned by the session from here on. */
        r = process_run(cli_client(), &rt, req, a_bg > 0, forward, /* sigfd= */ -1);
        cove_runtime_release(&rt);
        return r;
}

/* ---- the interactive terminal ------------------------------------------------------------ */

static struct termios term_saved;
static volatile sig_atomic_t term_is_raw;

static void term_restore(void)
{
        if (term_is_raw) {
                (void)tcsetattr(STDIN_FILENO, TCSADRAIN, &term_saved);
                term_is_raw = 0;
        }
}

static int term_raw(void)
{
        static bool registered;
        struct termios raw;

        if (tcgetattr(STDIN_FILENO, &term_saved) < 0)
                return -errno;
        if (!registered) {
                if (atexit(term_restore) != 0)
                        return -ENOMEM;
                registered = true;
        }
        raw = term_saved;
        cfmakeraw(&raw);
        if (tcsetattr(STDIN_FILENO, TCSADRAIN, &raw) < 0)
                return -errno;
        term_is_raw = 1;
        return 0;
}

static void term_size(unsigned *cols, unsigned *rows)
{
        struct winsize ws = {};

        if (ioctl(STDIN_FILENO, TIOCGWINSZ, &ws) < 0 || ws.ws_col == 0 || ws.ws_row == 0)
                if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) < 0)
                        ws = (struct winsize){};
        *cols = ws.ws_col ? MIN(ws.ws_col, 1000) : 80;
        *rows = ws.ws_row ? MIN(ws.ws_row, 1000) : 24;
}

/* The main loop of a terminal session: keystrokes, resizes and signals until the end. */
static int pty_loop(struct session *s, int sfd)
{
        char chunk[4096];
        bool started = false, stdin_open = true;

        for (;;) {
                struct pollfd p[3] = { { .fd = s->ev[0], .events = POLLIN },
                                       { .fd = sfd, .events = POLLIN },
                                       { .fd = STDIN_FILENO, .events = POLLIN } };
                nfds_t np = started && stdin_open ? 3 : 2;
                char what;

                if (poll(p, np, -1) < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (p[0].revents) {
                        if (TEMP_FAILURE_RETRY(read(s->ev[0], &what, 1)) != 1 || what == 'E')
                                return 0;
                        started = true;
                        continue;
                }
                if (p[1].revents) {
                        struct signalfd_siginfo si;
                        unsigned cols, rows;

                        if (TEMP_FAILURE_RETRY(read(sfd, &si, sizeof(si))) != sizeof(si))
                                continue;
                        if (si.ssi_signo != SIGWINCH)
                                return (int)si.ssi_signo; /* the caller leaves */
                        if (!started)
                                continue;
                        term_size(&cols, &rows);
                        (void)cove_process_pty_resize(s->c, s->rt, s->pid, cols, rows, NULL);
                        continue;
                }
                if (np == 3 && p[2].revents) {
                        ssize_t n = TEMP_FAILURE_RETRY(read(STDIN_FILENO, chunk, sizeof(chunk)));

                        if (n <= 0) {
                                stdin_open = false;
                                continue;
                        }
                        /* Ctrl-C, Ctrl-D … are bytes for the remote terminal. An error here
                         * means the process is gone; its end event follows. */
                        (void)cove_process_send_input(s->c, s->rt, s->pid, true, chunk, (size_t)n,
                                                      NULL);
                }
        }
}

int pty_session(struct cove_client *c, const json_t *sandbox, const char *shell)
{
        struct cove_runtime rt = {};
        struct cove_error *err = NULL;
        struct session s = { .c = c, .rt = &rt, .ev = { -1, -1 } };
        cleanup_close int sfd = -1;
        sigset_t mask, old;
        pthread_t thread;
        unsigned cols, rows;
        json_t *proc;
        int r, sig;

        if (!isatty(STDIN_FILENO))
                return usage_error(NULL, "an interactive shell needs a terminal on stdin; use "
                                         "'cove sandbox exec' to run commands");
        if (cove_runtime_init(&rt, sandbox, NULL, &err) < 0)
                return cli_error(&err);
        if (!shell || !*shell)
                shell = "sh";
        if (strchr(shell, ' '))
                proc = json_pack("{s:s,s:[s,s]}", "cmd", "sh", "args", "-lc", shell);
        else
                proc = json_pack("{s:s,s:[]}", "cmd", shell, "args");
        term_size(&cols, &rows);
        s.request = json_pack("{s:o,s:{s:{s:i,s:i}},s:b}", "process", proc, "pty", "size", "cols",
                              (int)cols, "rows", (int)rows, "stdin", true);

        /* Blocked before the thread starts, so only the signalfd sees them. */
        sigemptyset(&mask);
        sigaddset(&mask, SIGWINCH);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGHUP);
        sigaddset(&mask, SIGINT);
        sigaddset(&mask, SIGQUIT);
        if (pthread_sigmask(SIG_BLOCK, &mask, &old) != 0 ||
            (sfd = signalfd(-1, &mask, SFD_CLOEXEC)) < 0 || pipe2(s.ev, O_CLOEXEC) < 0) {
                fprintf(stderr, "cove: set up signals: %m\n");
                (void)pthread_sigmask(SIG_SETMASK, &old, NULL);
                session_release(&s);
                cove_runtime_release(&rt);
                return EXIT_API;
        }
        r = term_raw();
        if (r < 0) {
                (void)pthread_sigmask(SIG_SETMASK, &old, NULL);
                session_release(&s);
                cove_runtime_release(&rt);
                fprintf(stderr, "cove: set terminal to raw mode: %s\n", strerror(-r));
                return EXIT_API;
        }
        r = pthread_create(&thread, NULL, stream_thread, &s);
        if (r != 0) {
                term_restore();
                (void)pthread_sigmask(SIG_SETMASK, &old, NULL);
                session_release(&s);
                cove_runtime_release(&rt);
                fprintf(stderr, "cove: start thread: %s\n", strerror(r));
                return EXIT_API;
        }
        sig = pty_loop(&s, sfd);
        if (sig > 0) {
                /* SIGTERM, SIGHUP …: put the terminal back and leave at once; the stream
                 * thread is blocked in libcurl and dies with the process. */
                term_restore();
                _exit(128 + sig);
        }
        (void)pthread_join(thread, NULL);
        term_restore();
        (void)pthread_sigmask(SIG_SETMASK, &old, NULL);
        if (s.stream_r < 0)
                r = cli_error(&s.err);
        else
                r = session_exit_code(&s);
        session_release(&s);
        cove_runtime_release(&rt);
        return r;
}

int cmd_sandbox_connect(int argc, char **argv)
{
        static const struct cmd_help help = {
                "cove sandbox connect <id> [--shell SHELL] [--timeout SECONDS]",
                "Open an interactive shell on a terminal in the sandbox (resumes a paused one).\n"
                "Keystrokes, Ctrl-C included, go to the sandbox; the shell's exit ends it."
        };
        static const char *a_shell = "sh";
        static int64_t a_timeout = -1;
        static const struct opt opts[] = {
                { "shell", NULL, OPT_STRING, &a_shell, "shell to run (default sh)" },
                { "timeout", NULL, OPT_INT, &a_timeout, "new lifetime in seconds (0 = keep)" },
                {}
        };
        cleanup_free char **pos = NULL;
        struct cove_runtime rt = {};
        json_t *sb = NULL;
        int n, r;

        n = opt_parse(argc, argv, opts, &help, 0, &pos);
        if (n < 0)
                return EXIT_USAGE;
        if (n != 1)
                return usage_error(&help, n == 0 ? "missing sandbox ID" : "too many arguments");
        if (a_timeout > 86400)
                return usage_error(&help, "--timeout is at most 86400 seconds");
        if (arg_dry_run) {
                struct cli_req rq = { .action = "connect to sandbox", .method = "POST" };

                rq.path = xasprintf("/sandboxes/%s/connect", pos[0]);
                rq.body =
                        json_pack("{s:I}", "timeout", (json_int_t)(a_timeout > 0 ? a_timeout : 0));
                rq.ids = json_pack("[s]", pos[0]);
                cli_req_note(&rq,
                             "then POST {envdUrl}/process.Process/Start '%s' on a terminal "
                             "of this window's size, stdin: true",
                             a_shell);
                cli_print_dry_run(&rq);
                cli_req_release(&rq);
                return 0;
        }
        r = connect_sandbox(pos[0], a_timeout > 0 ? (int)a_timeout : 0, NULL, &sb, &rt);
        if (r)
                return r;
        cove_runtime_release(&rt);
        r = pty_session(cli_client(), sb, a_shell);
        json_decref(sb);
        return r;
}
