/* SPDX-License-Identifier: MIT */
/*
 * main.c — cove-agent: accept loop, one detached thread per connection, request decoding and
 * dispatch by op (docs/design/agent-protocol.md). The response helpers of agent.h are reply.c's.
 *
 *   cove-agent --listen-fd N     serve the inherited listening unix socket N (cove-init)
 *   cove-agent --listen PATH     bind and listen on PATH itself (tests)
 */
#include "agent/agent.h"
#include "agent/watch.h"
#include "lib/frame.h"
#include "lib/log.h"
#include "lib/macro.h"
#include "lib/parse.h"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>

#define AGENT_MAX_CONNECTIONS    512
#define AGENT_THREAD_STACK       (512 * 1024)
#define AGENT_REQUEST_TIMEOUT_MS (60 * 1000)
#define AGENT_KEPT_IDLE_MS       (60 * 1000) /* coved keeps an idle connection 10 s at most */
static atomic_int nconns;

static bool env_object_ok(json_t *env)
{
        const char *k;
        json_t *v;

        json_object_foreach (env, k, v) {
                if (!json_is_string(v) || !*k || strchr(k, '=') ||
                    strlen(json_string_value(v)) != json_string_length(v))
                        return false;
        }
        return true;
}

static int serve_request(int fd, json_t *req)
{
        struct agent_user *user = NULL;
        json_t *v, *body, *empty = NULL;
        struct agent_call c = { .fd = fd, .req = req };
        int r;

        if (!json_is_object(req))
                return agent_reply_err(fd, 400, "request must be a JSON object");
        v = json_object_get(req, "op");
        if (!json_is_string(v))
                return agent_reply_err(fd, 400, "field 'op' is required");
        c.op = json_string_value(v);
        v = json_object_get(req, "dialect");
        agent_e2b_dialect = json_is_string(v) && streq(json_string_value(v), "e2b");

        v = json_object_get(req, "env");
        if (v && !json_is_null(v)) {
                if (!json_is_object(v) || !env_object_ok(v))
                        return agent_reply_err(fd, 400, "field 'env' must be an object of strings");
                c.env = v;
        }
        v = json_object_get(req, "workdir");
        if (v && !json_is_null(v)) {
                if (!json_is_string(v))
                        return agent_reply_err(fd, 400, "field 'workdir' must be a string");
                c.workdir = json_string_value(v);
        }
        body = json_object_get(req, "body");
        if (!body || json_is_null(body))
                body = empty = json_object();
        else if (!json_is_object(body))
                return agent_reply_err(fd, 400, "request body must be a JSON object");
        c.body = body;

        v = json_object_get(req, "user");
        if (v && !json_is_null(v) && !json_is_string(v)) {
                r = agent_reply_err(fd, 400, "field 'user' must be a string");
                goto out;
        }
        r = agent_user_lookup(v && json_is_string(v) ? json_string_value(v) : NULL, &user);
        json_t *fb = json_object_get(req, "user_fallback");
        if (r < 0 && json_is_string(fb)) /* "the user where that account exists, else …" */
                r = agent_user_lookup(json_string_value(fb), &user);
        if (r < 0) {
                r = agent_reply_err(fd, 400, "user '%s' not found", json_string_value(v));
                goto out;
        }
        c.user = user;

        if (streq(c.op, "ping"))
                r = agent_reply_ok(fd, json_pack("{s:s, s:i}", "version", AGENT_VERSION, "pid",
                                                 (int)getpid()));
        else if (streq(c.op, "ports"))
                r = ports_handle(&c);
        else if (proc_handles(c.op))
                r = proc_handle(&c);
        else if (fs_handles(c.op))
                r = fs_handle(&c);
        else
                r = agent_reply_err(fd, 404, "unknown operation '%s'", c.op);
out:
        agent_user_free(user);
        json_decref(empty);
        return r;
}

/* The ops after which a connection whose request said "keep": true serves another request
 * (coved's agent_client.c has the same list): unary ops that leave nothing on the thread or
 * the socket once answered. */
static bool keepable(const json_t *req)
{
        const char *op = json_string_value(json_object_get(req, "op"));
        return json_is_true(json_object_get(req, "keep")) && op &&
               (streq(op, "run") || streq(op, "ping"));
}

static void *conn_thread(void *arg)
{
        int fd = (int)(intptr_t)arg;
        struct buf payload;
        bool more = true;

        buf_init(&payload, FRAME_MAX_PAYLOAD + 1);
        for (int served = 0; more; served++) {
                json_t *req = NULL;
                char kind;
                int r;
                /* A client that connects and says nothing must not pin a thread forever; a
                 * kept connection idles for longer than coved keeps it (AGENT_POOL_IDLE_MS). */
                struct pollfd pfd = { .fd = fd, .events = POLLIN };
                r = TEMP_FAILURE_RETRY(
                        poll(&pfd, 1, served ? AGENT_KEPT_IDLE_MS : AGENT_REQUEST_TIMEOUT_MS));
                if (r == 0)
                        r = -ETIMEDOUT;
                else if (r > 0)
                        r = frame_read(fd, &kind, &payload);
                else
                        r = -errno;
                if (r > 0 && kind != FRAME_JSON)
                        r = -EPROTO;
                more = false;
                if (r > 0) {
                        cleanup_err struct cove_err *err = NULL;
                        if (json_parse(payload.ptr, payload.len, false, &req, &err) < 0)
                                (void)agent_reply_err(fd, 400, "%s", err->msg);
                        else
                                more = serve_request(fd, req) >= 0 && keepable(req);
                } else if (r < 0 && !(served && r == -ETIMEDOUT)) {
                        log_debug_errno(r, "read request: %m");
                }
                json_decref(req);
        }
        buf_release(&payload);
        (void)close(fd);
        atomic_fetch_sub(&nconns, 1);
        return NULL;
}

static void sleep_ms(long ms)
{
        struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L };
        while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
                ;
}

static void refuse(int fd, const char *why)
{
        (void)agent_reply_err(fd, 503, "%s", why);
        (void)close(fd);
}

static int serve(int lfd)
{
        pthread_attr_t attr;

        if (pthread_attr_init(&attr) != 0 ||
            pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED) != 0 ||
            pthread_attr_setstacksize(&attr, AGENT_THREAD_STACK) != 0)
                return log_error_errno(ENOMEM, "thread attributes: %m");

        for (;;) {
                int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
                if (fd < 0) {
                        switch (errno) {
                        case EINTR:
                        case EAGAIN:
                        case ECONNABORTED:
                        case EPROTO:
                                continue;
                        case EMFILE:
                        case ENFILE:
                        case ENOBUFS:
                        case ENOMEM:
                                log_warning("accept: %m, backing off");
                                sleep_ms(100);
                                continue;
                        default:
                                return log_error_errno(errno, "accept: %m");
                        }
                }
                if (atomic_fetch_add(&nconns, 1) >= AGENT_MAX_CONNECTIONS) {
                        atomic_fetch_sub(&nconns, 1);
                        refuse(fd, "too many concurrent agent connections");
                        continue;
                }
                pthread_t t;
                int r = pthread_create(&t, &attr, conn_thread, (void *)(intptr_t)fd);
                if (r != 0) {
                        atomic_fetch_sub(&nconns, 1);
                        refuse(fd, "cannot start a thread for the connection");
                        sleep_ms(10);
                }
        }
}

static int listen_path(const char *path)
{
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        cleanup_close int fd = -1;

        if (strlen(path) >= sizeof(sa.sun_path))
                return log_error_errno(ENAMETOOLONG, "socket path '%s': %m", path);
        memcpy(sa.sun_path, path, strlen(path) + 1);
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return log_error_errno(errno, "socket: %m");
        (void)unlink(path);
        if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
                return log_error_errno(errno, "bind '%s': %m", path);
        if (chmod(path, 0600) < 0)
                return log_error_errno(errno, "chmod '%s': %m", path);
        if (listen(fd, 128) < 0)
                return log_error_errno(errno, "listen '%s': %m", path);
        return TAKE_FD(fd);
}

static int ensure_stdio(void)
{
        /* Spawned children get 0-2 dup2'ed over: keep them taken so no socket or pipe of ours
         * ever lands there. */
        for (int fd = 0; fd < 3; fd++)
                if (fcntl(fd, F_GETFD) < 0 && errno == EBADF) {
                        int nfd = open("/dev/null", O_RDWR | O_NOCTTY);
                        if (nfd < 0)
                                return log_error_errno(errno, "open /dev/null: %m");
                        if (nfd != fd)
                                return log_error_errno(EBADF, "stdio fd %d landed on %d", fd, nfd);
                }
        return 0;
}

static void usage(void)
{
        fprintf(stderr, "usage: cove-agent --listen-fd N | --listen PATH [--debug]\n");
}

int main(int argc, char **argv)
{
        int lfd = -1;

        log_set_ident("cove-agent");
        if (ensure_stdio() < 0)
                return 1;
        for (int i = 1; i < argc; i++) {
                if (streq(argv[i], "--listen-fd") && i + 1 < argc) {
                        uint32_t n;
                        if (safe_atou32(argv[++i], &n) < 0 || n > INT32_MAX) {
                                usage();
                                return 2;
                        }
                        lfd = (int)n;
                        int fl = fcntl(lfd, F_GETFD);
                        if (fl < 0 || fcntl(lfd, F_SETFD, fl | FD_CLOEXEC) < 0) {
                                log_error_errno(errno, "listening fd %d: %m", lfd);
                                return 1;
                        }
                } else if (streq(argv[i], "--listen") && i + 1 < argc) {
                        lfd = listen_path(argv[++i]);
                        if (lfd < 0)
                                return 1;
                } else if (streq(argv[i], "--debug")) {
                        log_max_level = LOG_LEVEL_DEBUG;
                } else if (streq(argv[i], "--version")) {
                        printf("cove-agent %s\n", AGENT_VERSION);
                        return 0;
                } else {
                        usage();
                        return 2;
                }
        }
        if (lfd < 0) {
                usage();
                return 2;
        }

        /* Writes to a vanished client must fail with EPIPE, not kill the agent. */
        if (signal(SIGPIPE, SIG_IGN) == SIG_ERR) {
                log_error_errno(errno, "ignore SIGPIPE: %m");
                return 1;
        }
        proc_init();
        return serve(lfd) < 0 ? 1 : 0;
}
