/* SPDX-License-Identifier: MIT */
/* proc_spawn.c — see proc_spawn.h. */
#include "agent/proc_spawn.h"
#include "lib/fdutil.h"
#include "lib/macro.h"
#include "lib/path.h"
#include "lib/sigreset.h"

#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <termios.h>

#define SPAWN_MAX_ARGS 65536

struct rlimit proc_child_nofile;
bool proc_child_nofile_set;
sigset_t proc_child_sigreset;
bool proc_child_sigreset_set;

enum child_stage {
        STAGE_SETUP = 1,
        STAGE_CREDS,
        STAGE_CHDIR,
        STAGE_EXEC,
};

struct child_report {
        int stage;
        int errnum;
};

/* Async-signal-safe: write the report, then _exit. */
__attribute__((noreturn)) static void child_fail(int fd, int stage, int errnum)
{
        struct child_report rep = { stage, errnum };
        (void)!write(fd, &rep, sizeof(rep));
        _exit(127);
}

void proc_spawned_close(struct proc_spawned *s)
{
        int *fds[] = { &s->pidfd, &s->stdin_fd, &s->stdout_fd, &s->stderr_fd, &s->master_fd };
        for (size_t i = 0; i < ARRAY_SIZE(fds); i++)
                if (*fds[i] >= 0) {
                        (void)close(*fds[i]);
                        *fds[i] = -1;
                }
}

static const char *env_lookup(char *const *envp, const char *key)
{
        size_t kl = strlen(key);
        for (; envp && *envp; envp++)
                if (strncmp(*envp, key, kl) == 0 && (*envp)[kl] == '=')
                        return *envp + kl + 1;
        return NULL;
}

/* The exec candidates for cmd: itself when it has a '/', else dir/cmd for each PATH entry. */
static char **exec_candidates(const char *cmd, char *const *envp)
{
        const char *path = env_lookup(envp, "PATH");
        size_t n = 0, cap = 8;
        char **v = xmalloc(cap * sizeof(char *));

        if (strchr(cmd, '/')) {
                v[n++] = xstrdup(cmd);
                v[n] = NULL;
                return v;
        }
        if (!path)
                path = PROC_DEFAULT_PATH;
        for (const char *p = path;;) {
                const char *e = strchrnul(p, ':');
                if (n + 1 >= cap) {
                        cap *= 2;
                        v = xrealloc(v, cap * sizeof(char *));
                }
                /* An empty entry means the current directory (execvp). */
                v[n++] = e == p ? xasprintf("./%s", cmd)
                                : xasprintf("%.*s/%s", (int)(e - p), p, cmd);
                if (!*e)
                        break;
                p = e + 1;
        }
        v[n] = NULL;
        return v;
}

static int open_pty(const struct proc_spawn_opts *o, int *ret_master, int *ret_slave,
                    struct cove_err **err)
{
        cleanup_close int master = -1, slave = -1;
        char name[PATH_MAX];
        struct winsize ws = { .ws_row = o->rows, .ws_col = o->cols };

        master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
        if (master < 0)
                return cove_err_set(err, errno, "open pty: %m");
        if (grantpt(master) < 0 || unlockpt(master) < 0)
                return cove_err_set(err, errno, "unlock pty: %m");
        int r = ptsname_r(master, name, sizeof(name));
        if (r != 0)
                return cove_err_set(err, r, "pty name: %m");
        slave = open(name, O_RDWR | O_NOCTTY | O_CLOEXEC);
        if (slave < 0)
                return cove_err_set(err, errno, "open '%s': %m", name);
        /* The terminal belongs to the user who runs on it (best effort: mesg, write). */
        (void)!fchown(slave, o->user->uid, (gid_t)-1);
        if (ioctl(master, TIOCSWINSZ, &ws) < 0)
                return cove_err_set(err, errno, "set pty size: %m");
        if (fd_set_nonblock(master, 1) < 0)
                return cove_err_set(err, errno, "pty: %m");
        *ret_master = TAKE_FD(master);
        *ret_slave = TAKE_FD(slave);
        return 0;
}

/* What the child needs, prepared by the parent (the child only reads it, on its own stack). */
struct spawn_child {
        const struct proc_spawn_opts *o;
        char **argv, **sh_argv, **cands;
        int fd0, fd1, fd2, slave, ep_w;
};

/* The child, run by clone(CLONE_VM | CLONE_VFORK) on a stack of the parent's: it shares the
 * parent's memory until execve, so it makes async-signal-safe calls only, writes nothing but
 * its own stack (and sh_argv[1], which the blocked parent frees afterwards) and never
 * returns. */
static int spawn_child_main(void *arg)
{
        const struct spawn_child *a = arg;
        const struct proc_spawn_opts *o = a->o;
        const struct agent_user *u = o->user;
        int ep_w = a->ep_w;

        /* Ignored signals and the blocked mask survive exec: whatever the agent, init,
         * coved or the shell that started coved (nohup) set, user processes start with
         * every signal at its default and nothing blocked. Every signal is blocked here (the
         * parent did it), so none of the agent's handlers can run in this child before its
         * reset. */
        int r = proc_child_sigreset_set ? sig_reset_listed(&proc_child_sigreset) : sig_reset_all();
        if (r < 0)
                child_fail(ep_w, STAGE_SETUP, -r);
        if (proc_child_nofile_set)
                (void)setrlimit(RLIMIT_NOFILE, &proc_child_nofile);
        if (setsid() < 0)
                child_fail(ep_w, STAGE_SETUP, errno);
        if (o->pty && ioctl(a->slave, TIOCSCTTY, 0) < 0)
                child_fail(ep_w, STAGE_SETUP, errno);
        /* All our fds are >= 3 (main keeps 0-2 open), so dup2 cannot clobber them. */
        if (dup2(a->fd0, 0) < 0 || dup2(a->fd1, 1) < 0 || dup2(a->fd2, 2) < 0)
                child_fail(ep_w, STAGE_SETUP, errno);
        if (syscall(SYS_close_range, 3U, ~0U, CLOSE_RANGE_CLOEXEC) < 0 && errno != ENOSYS)
                child_fail(ep_w, STAGE_SETUP, errno);
        /* Raw system calls: glibc's setuid() would ask every thread of the parent (whose
         * memory this is) to change credentials too. */
        if (syscall(SYS_setgroups, u->ngroups, u->groups) < 0 || syscall(SYS_setgid, u->gid) < 0 ||
            syscall(SYS_setuid, u->uid) < 0)
                child_fail(ep_w, STAGE_CREDS, errno);
        if (chdir(o->cwd) < 0)
                child_fail(ep_w, STAGE_CHDIR, errno);
        int saved = ENOENT;
        bool eacces = false;
        for (char **c = a->cands; *c; c++) {
                execve(*c, a->argv, o->envp);
                saved = errno;
                if (saved == ENOEXEC) {
                        a->sh_argv[1] = *c;
                        execve("/bin/sh", a->sh_argv, o->envp);
                        saved = errno;
                }
                if (saved == EACCES)
                        eacces = true;
                else if (saved != ENOENT && saved != ENOTDIR && saved != ESTALE &&
                         saved != ENODEV && saved != ETIMEDOUT && saved != ELOOP &&
                         saved != ENAMETOOLONG)
                        break;
        }
        child_fail(ep_w, STAGE_EXEC, eacces && saved != E2BIG ? EACCES : saved);
}

int proc_spawn(const struct proc_spawn_opts *o, struct proc_spawned *ret, struct cove_err **err)
{
        /* The child's stack while it runs before execve (it uses a few hundred bytes). */
        _Alignas(16) char child_stack[32 * 1024];
        cleanup_strv char **argv = NULL, **cands = NULL;
        cleanup_free char **sh_argv = NULL;
        cleanup_close int in_r = -1, in_w = -1, out_r = -1, out_w = -1, err_r = -1, err_w = -1;
        cleanup_close int master = -1, slave = -1, ep_r = -1, ep_w = -1;
        size_t nargs = 0;
        int p[2];

        while (o->args && o->args[nargs])
                nargs++;
        if (nargs + 3 > SPAWN_MAX_ARGS)
                return cove_err_set_status(err, 400, E2BIG, "too many arguments");
        argv = xmalloc((nargs + 2) * sizeof(char *));
        argv[0] = xstrdup(o->cmd);
        for (size_t i = 0; i < nargs; i++)
                argv[i + 1] = xstrdup(o->args[i]);
        argv[nargs + 1] = NULL;
        /* For a script without "#!" (ENOEXEC), execvp runs it with /bin/sh. */
        sh_argv = xmalloc((nargs + 3) * sizeof(char *));
        sh_argv[0] = (char *)"/bin/sh";
        sh_argv[1] = NULL; /* the candidate, filled in by the child */
        for (size_t i = 0; i <= nargs; i++)
                sh_argv[i + 2] = argv[i + 1];
        cands = exec_candidates(o->cmd, o->envp);

        if (o->pty) {
                if (open_pty(o, &master, &slave, err) < 0)
                        return -(*err)->errnum;
        } else {
                if (o->stdin_pipe) {
                        if (pipe2(p, O_CLOEXEC) < 0)
                                return cove_err_set(err, errno, "pipe: %m");
                        in_r = p[0];
                        in_w = p[1];
                } else {
                        in_r = open("/dev/null", O_RDONLY | O_CLOEXEC | O_NOCTTY);
                        if (in_r < 0)
                                return cove_err_set(err, errno, "open /dev/null: %m");
                }
                if (pipe2(p, O_CLOEXEC) < 0)
                        return cove_err_set(err, errno, "pipe: %m");
                out_r = p[0];
                out_w = p[1];
                if (pipe2(p, O_CLOEXEC) < 0)
                        return cove_err_set(err, errno, "pipe: %m");
                err_r = p[0];
                err_w = p[1];
                if (fd_set_nonblock(out_r, 1) < 0 || fd_set_nonblock(err_r, 1) < 0 ||
                    (in_w >= 0 && fd_set_nonblock(in_w, 1) < 0))
                        return cove_err_set(err, errno, "pipe: %m");
        }
        if (pipe2(p, O_CLOEXEC) < 0)
                return cove_err_set(err, errno, "pipe: %m");
        ep_r = p[0];
        ep_w = p[1];

        struct spawn_child a = {
                .o = o,
                .argv = argv,
                .sh_argv = sh_argv,
                .cands = cands,
                .fd0 = o->pty ? slave : in_r,
                .fd1 = o->pty ? slave : out_w,
                .fd2 = o->pty ? slave : err_w,
                .slave = slave,
                .ep_w = ep_w,
        };
        const struct agent_user *u = o->user;
        /* vfork semantics (the child borrows our memory until it execs or exits: no copy of
         * the agent's page tables, which costs more than the exec of a small program), with
         * every signal blocked so that no handler of ours runs in the child before it has
         * reset them all. */
        sigset_t all, old;
        sigfillset(&all);
        int sr = pthread_sigmask(SIG_SETMASK, &all, &old);
        if (sr != 0)
                return cove_err_set(err, sr, "block signals: %m");
        pid_t pid = clone(spawn_child_main, child_stack + sizeof(child_stack),
                          CLONE_VM | CLONE_VFORK | SIGCHLD, &a);
        int clone_errno = errno;
        (void)pthread_sigmask(SIG_SETMASK, &old, NULL);
        if (pid < 0)
                /* EAGAIN: the sandbox's task limit — "too many", not "try later". */
                return cove_err_set_status(err, clone_errno == EAGAIN ? 429 : 0, clone_errno,
                                           "fork: %s", strerror(clone_errno));

        /* Parent. */
        (void)close(TAKE_FD(ep_w));
        struct child_report rep;
        ssize_t n = read_full(ep_r, &rep, sizeof(rep));
        if (n != 0) {
                int status;
                (void)TEMP_FAILURE_RETRY(waitpid(pid, &status, 0));
                if (n != (ssize_t)sizeof(rep))
                        return cove_err_set(err, n < 0 ? (int)-n : EIO,
                                            "start '%s': lost the child's report", o->cmd);
                switch (rep.stage) {
                case STAGE_CHDIR:
                        if (rep.errnum == ENOENT || rep.errnum == ENOTDIR)
                                return cove_err_set_status(err, 400, rep.errnum,
                                                           "cwd '%s' does not exist", o->cwd);
                        return cove_err_set_status(err, 400, rep.errnum,
                                                   "cannot change directory to '%s': %m", o->cwd);
                case STAGE_EXEC:
                        if (rep.errnum == ENOENT || rep.errnum == ENOTDIR)
                                return cove_err_set_status(err, 400, rep.errnum,
                                                           "executable '%s' not found%s", o->cmd,
                                                           strchr(o->cmd, '/') ? "" : " in PATH");
                        return cove_err_set_status(err, 400, rep.errnum, "cannot execute '%s': %m",
                                                   o->cmd);
                case STAGE_CREDS:
                        return cove_err_set(err, rep.errnum, "switch to user '%s': %m", u->name);
                default:
                        return cove_err_set(err, rep.errnum, "set up process '%s': %m", o->cmd);
                }
        }

        int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
        if (pidfd < 0 && errno != ENOSYS) {
                int e = errno;
                (void)kill(-pid, SIGKILL);
                (void)kill(pid, SIGKILL);
                (void)TEMP_FAILURE_RETRY(waitpid(pid, NULL, 0));
                return cove_err_set(err, e, "pidfd_open: %m");
        }
        *ret = (struct proc_spawned){
                .pid = pid,
                .pidfd = pidfd,
                .stdin_fd = TAKE_FD(in_w),
                .stdout_fd = TAKE_FD(out_r),
                .stderr_fd = TAKE_FD(err_r),
                .master_fd = TAKE_FD(master),
        };
        return 0;
}

static bool env_has(json_t *env, const char *k)
{
        return env && json_is_string(json_object_get(env, k));
}

char **proc_build_env(const struct agent_call *c, json_t *extra, bool pty)
{
        json_t *m = json_object();
        const char *k;
        json_t *v;
        char **envp;
        size_t i = 0;

        if (c->env)
                json_object_foreach (c->env, k, v)
                        json_object_set(m, k, v);
        json_object_set_new(m, "HOME", json_string(c->user->home));
        json_object_set_new(m, "USER", json_string(c->user->name));
        json_object_set_new(m, "LOGNAME", json_string(c->user->name));
        if (!env_has(m, "PATH"))
                json_object_set_new(m, "PATH", json_string(PROC_DEFAULT_PATH));
        if (extra)
                json_object_foreach (extra, k, v)
                        json_object_set(m, k, v);
        if (pty && !env_has(m, "TERM"))
                json_object_set_new(m, "TERM", json_string("xterm-256color"));

        envp = xmalloc((json_object_size(m) + 1) * sizeof(char *));
        json_object_foreach (m, k, v)
                envp[i++] = xasprintf("%s=%s", k, json_string_value(v));
        envp[i] = NULL;
        json_decref(m);
        return envp;
}

char *proc_resolve_cwd(const struct agent_call *c, const char *cwd)
{
        const char *base = c->workdir && c->workdir[0] == '/' ? c->workdir : c->user->home;
        cleanup_free char *joined = NULL;

        if (!base || base[0] != '/')
                base = "/";
        if (!cwd || !*cwd) {
                /* A default that does not exist (nobody's /nonexistent) must not make every
                 * command fail: fall back to the root. */
                struct stat st;
                if (stat(base, &st) < 0 || !S_ISDIR(st.st_mode))
                        base = "/";
                return path_normalize(NULL, base);
        }
        if (cwd[0] == '/')
                return path_normalize(NULL, cwd);
        if (cwd[0] == '~' && (cwd[1] == '\0' || cwd[1] == '/'))
                joined = xasprintf("%s/%s", c->user->home, cwd + 1);
        else
                joined = xasprintf("%s/%s", base, cwd);
        return path_normalize(NULL, joined[0] == '/' ? joined : "/");
}

/* Length of the valid UTF-8 sequence at p (1-4), or 0 when invalid. */
static size_t utf8_seq(const unsigned char *p, size_t n)
{
        unsigned char c = p[0];
        size_t l;
        uint32_t cp;

        if (c < 0x80)
                return 1;
        if (c >= 0xc2 && c <= 0xdf) {
                l = 2;
                cp = c & 0x1f;
        } else if (c >= 0xe0 && c <= 0xef) {
                l = 3;
                cp = c & 0x0f;
        } else if (c >= 0xf0 && c <= 0xf4) {
                l = 4;
                cp = c & 0x07;
        } else {
                return 0;
        }
        if (n < l)
                return 0;
        for (size_t i = 1; i < l; i++) {
                if ((p[i] & 0xc0) != 0x80)
                        return 0;
                cp = cp << 6 | (p[i] & 0x3f);
        }
        if ((l == 3 && cp < 0x800) || (l == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
            (cp >= 0xd800 && cp <= 0xdfff))
                return 0;
        return l;
}

json_t *proc_text_json(const char *p, size_t n)
{
        const unsigned char *s = (const unsigned char *)p;
        size_t i = 0, bad = 0;

        for (i = 0; i < n;) {
                size_t l = utf8_seq(s + i, n - i);
                if (l == 0) {
                        bad++;
                        i++;
                } else {
                        i += l;
                }
        }
        if (n == 0)
                return json_string("");
        if (bad == 0)
                return json_stringn_nocheck(p, n);

        /* Each invalid byte (3 bytes of U+FFFD) replaces 1. */
        char *out = xmalloc_array(n + 2 * bad + 1, 1);
        if (!out)
                abort();
        size_t o = 0;
        for (i = 0; i < n;) {
                size_t l = utf8_seq(s + i, n - i);
                if (l == 0) {
                        memcpy(out + o, "\xef\xbf\xbd", 3);
                        o += 3;
                        i++;
                } else {
                        memcpy(out + o, s + i, l);
                        o += l;
                        i += l;
                }
        }
        json_t *j = json_stringn_nocheck(out, o);
        free(out);
        return j;
}

static const char *signal_text(int sig)
{
        switch (sig) {
        case SIGHUP:
                return "hangup";
        case SIGINT:
                return "interrupt";
        case SIGQUIT:
                return "quit";
        case SIGILL:
                return "illegal instruction";
        case SIGTRAP:
                return "trace/breakpoint trap";
        case SIGABRT:
                return "aborted";
        case SIGBUS:
                return "bus error";
        case SIGFPE:
                return "floating point exception";
        case SIGKILL:
                return "killed";
        case SIGUSR1:
                return "user defined signal 1";
        case SIGSEGV:
                return "segmentation fault";
        case SIGUSR2:
                return "user defined signal 2";
        case SIGPIPE:
                return "broken pipe";
        case SIGALRM:
                return "alarm clock";
        case SIGTERM:
                return "terminated";
        case SIGXCPU:
                return "CPU time limit exceeded";
        case SIGXFSZ:
                return "file size limit exceeded";
        case SIGVTALRM:
                return "virtual timer expired";
        case SIGPROF:
                return "profiling timer expired";
        case SIGSYS:
                return "bad system call";
        default:
                return NULL;
        }
}

void proc_describe_status(int wstatus, char *status, size_t size, int *ret_code)
{
        if (WIFEXITED(wstatus)) {
                *ret_code = WEXITSTATUS(wstatus);
                (void)snprintf(status, size, "exit status %d", *ret_code);
        } else if (WIFSIGNALED(wstatus)) {
                int sig = WTERMSIG(wstatus);
                const char *t = signal_text(sig);
                *ret_code = 128 + sig;
                if (t)
                        (void)snprintf(status, size, "signal: %s%s", t,
                                       WCOREDUMP(wstatus) ? " (core dumped)" : "");
                else
                        (void)snprintf(status, size, "signal: signal %d", sig);
        } else {
                *ret_code = 255;
                (void)snprintf(status, size, "exit status 255");
        }
}

int proc_take_timeout_ms(json_t *body, int64_t *ret_ms, struct cove_err **err)
{
        json_t *t = json_object_get(body, "timeout"), *tm = json_object_get(body, "timeoutMs");
        int64_t ms = 0;

        if (tm && !json_is_null(tm)) {
                if (!json_get_integer(tm, &ms))
                        return cove_err_set(err, EINVAL, "field 'timeoutMs' must be an integer");
                if (ms < 0 || ms > INT64_C(1) << 50)
                        return cove_err_set(err, EINVAL, "field 'timeoutMs' is out of range");
        } else if (t && !json_is_null(t)) {
                if (!json_is_number(t))
                        return cove_err_set(err, EINVAL, "field 'timeout' must be a number");
                double d = json_number_value(t);
                if (!isfinite(d) || d < 0 || d > 1e12)
                        return cove_err_set(err, EINVAL, "field 'timeout' is out of range");
                ms = (int64_t)llround(d * 1000.0);
                if (ms == 0 && d > 0)
                        ms = 1;
        }
        *ret_ms = ms;
        return 0;
}

int proc_take_envs(json_t *v, const char *field, struct cove_err **err)
{
        const char *k;
        json_t *e;

        if (!json_is_object(v))
                return cove_err_set(err, EINVAL, "field '%s' must be an object", field);
        json_object_foreach (v, k, e) {
                if (!json_is_string(e))
                        return cove_err_set(err, EINVAL, "field '%s.%s' must be a string", field,
                                            k);
                if (!*k || strchr(k, '='))
                        return cove_err_set(err, EINVAL, "field '%s': invalid variable name '%s'",
                                            field, k);
                if (strlen(json_string_value(e)) != json_string_length(e))
                        return cove_err_set(err, EINVAL, "field '%s.%s' must not contain NUL bytes",
                                            field, k);
        }
        return 0;
}
