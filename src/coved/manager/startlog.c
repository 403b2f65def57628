/* SPDX-License-Identifier: MIT */
/*
 * startlog.c — the output of templates' startCmd in their sandboxes' logs (internal.h).
 *
 * One thread and one epoll set for every sandbox whose startCmd runs: each entry owns the
 * agent stream of its process.Start (docs/design/agent-protocol.md), decodes frames as bytes
 * arrive (lib/frame.h), splits stdout and stderr into lines and appends them through
 * manager_sandbox_log() with source "start_cmd" (control-plane.md §8). An entry ends with its
 * stream: the process's end event, the agent's EOF (the sandbox was deleted or its init
 * died), or a broken frame. Bounds: one entry per sandbox, a partial line of at most
 * STARTLOG_LINE_MAX bytes per stream (longer lines are cut), and at most
 * STARTLOG_LINES_PER_S entries per sandbox and second (the rest is counted and reported in
 * one entry), so a chatty service cannot flood the store.
 */
#include "coved/agent_client.h"
#include "coved/manager/internal.h"
#include "lib/b64.h"
#include "lib/buf.h"
#include "lib/frame.h"
#include "lib/json.h"
#include "lib/log.h"
#include "lib/macro.h"
#include "lib/timeutil.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#define STARTLOG_LINE_MAX    4096
#define STARTLOG_LINES_PER_S 100
#define STARTLOG_READ_CHUNK  65536

struct partial {
        char buf[STARTLOG_LINE_MAX];
        size_t len;
};

struct stream {
        struct stream *next;
        char *id;
        int fd;
        struct frame_decoder dec;
        struct partial out, err;
        int64_t window_start; /* ms (monotonic) of the rate window */
        int64_t window_lines; /* entries written in it */
        int64_t dropped;      /* lines not written since the last report */
        bool done;
};

struct startlog {
        struct coved *cd;
        int epfd;
        int kickfd;
        atomic_bool stopping;
        pthread_mutex_t lock; /* streams */
        struct stream *streams;
        pthread_t thread;
        bool running;
};

static void stream_free(struct startlog *sl, struct stream *s)
{
        (void)epoll_ctl(sl->epfd, EPOLL_CTL_DEL, s->fd, NULL);
        (void)close(s->fd);
        frame_decoder_release(&s->dec);
        free(s->id);
        free(s);
}

/* One line (without its newline) into the log, within the rate bound. */
static void emit_line(struct startlog *sl, struct stream *s, const char *level, const char *p,
                      size_t n)
{
        if (n == 0)
                return; /* empty lines make no entry */
        int64_t now = time_mono_ms();
        if (now - s->window_start >= 1000) {
                if (s->dropped > 0) {
                        char msg[128];
                        (void)snprintf(msg, sizeof(msg),
                                       "%lld lines of startCmd output dropped (over %d lines/s)",
                                       (long long)s->dropped, STARTLOG_LINES_PER_S);
                        (void)manager_sandbox_log(sl->cd, s->id, "start_cmd", "warn", msg, NULL);
                        s->dropped = 0;
                }
                s->window_start = now;
                s->window_lines = 0;
        }
        if (s->window_lines >= STARTLOG_LINES_PER_S) {
                s->dropped++;
                return;
        }
        s->window_lines++;
        cleanup_free char *line = xstrndup(p, n);
        cleanup_err struct cove_err *err = NULL;
        if (manager_sandbox_log(sl->cd, s->id, "start_cmd", level, line, &err) < 0 &&
            err->errnum == ENOENT)
                s->done = true; /* the sandbox is gone */
}

/* Output bytes of one stream: complete lines are written, the rest waits (cut at the cap). */
static void feed_output(struct startlog *sl, struct stream *s, struct partial *pl,
                        const char *level, const char *p, size_t n)
{
        while (n > 0 && !s->done) {
                const char *nl = memchr(p, '\n', n);
                size_t take = nl ? (size_t)(nl - p) : n;
                size_t room = sizeof(pl->buf) - pl->len;
                size_t copy = MIN(take, room);
                memcpy(pl->buf + pl->len, p, copy);
                pl->len += copy;
                if (nl || pl->len == sizeof(pl->buf)) {
                        size_t len = pl->len;
                        if (len > 0 && pl->buf[len - 1] == '\r')
                                len--;
                        emit_line(sl, s, level, pl->buf, len);
                        pl->len = 0;
                }
                if (nl && copy == take) {
                        p += take + 1;
                        n -= take + 1;
                } else {
                        p += copy;
                        n -= copy;
                }
        }
}

static void flush_partials(struct startlog *sl, struct stream *s)
{
        if (s->out.len > 0)
                emit_line(sl, s, "info", s->out.buf, s->out.len);
        if (s->err.len > 0)
                emit_line(sl, s, "warn", s->err.buf, s->err.len);
        s->out.len = s->err.len = 0;
}

static void on_event(struct startlog *sl, struct stream *s, const json_t *ev)
{
        const json_t *data = json_object_get(ev, "data");
        const json_t *end = json_object_get(ev, "end");
        const char *names[] = { "stdout", "stderr" };
        for (size_t i = 0; data && i < ARRAY_SIZE(names); i++) {
                const char *b64 = json_string_value(json_object_get(data, names[i]));
                unsigned char *raw = NULL;
                size_t n = 0;
                if (!b64 || b64_decode(b64, strlen(b64), 0, &raw, &n) < 0)
                        continue;
                feed_output(sl, s, i == 0 ? &s->out : &s->err, i == 0 ? "info" : "warn",
                            (const char *)raw, n);
                free(raw);
        }
        if (end) {
                flush_partials(sl, s);
                const char *status = json_string_value(json_object_get(end, "status"));
                int64_t code = -1;
                (void)json_get_integer(json_object_get(end, "exitCode"), &code);
                char msg[256];
                (void)snprintf(msg, sizeof(msg), "startCmd ended: %s",
                               status ? status : "unknown status");
                (void)manager_sandbox_log(sl->cd, s->id, "start_cmd", code == 0 ? "info" : "error",
                                          msg, NULL);
                s->done = true;
        }
}

struct frame_ctx {
        struct startlog *sl;
        struct stream *s;
};

static int on_frame_ctx(void *ud, uint8_t kind, const char *p, size_t n)
{
        struct frame_ctx *c = ud;
        if (kind != FRAME_JSON)
                return 0;
        json_auto_t *j = json_loadb(p, n, 0, NULL);
        if (!json_is_object(j))
                return -EPROTO;
        if (json_object_get(j, "end")) {
                flush_partials(c->sl, c->s);
                c->s->done = true;
                return 0;
        }
        const json_t *event = json_object_get(json_object_get(j, "msg"), "event");
        if (event)
                on_event(c->sl, c->s, event);
        return 0;
}

/* Reads what the stream has; false when it ended (remove it). */
static bool pump(struct startlog *sl, struct stream *s)
{
        char buf[STARTLOG_READ_CHUNK];
        ssize_t n = read(s->fd, buf, sizeof(buf));
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
                return true;
        if (n <= 0) {
                flush_partials(sl, s);
                return false;
        }
        struct frame_ctx c = { sl, s };
        if (frame_decoder_feed(&s->dec, buf, (size_t)n, on_frame_ctx, &c) < 0) {
                log_warning("sandbox '%s': startCmd output stream broken, no longer logged", s->id);
                return false;
        }
        return !s->done;
}

static void *startlog_thread(void *arg)
{
        struct startlog *sl = arg;
        struct epoll_event evs[32];
        while (!atomic_load(&sl->stopping)) {
                int n = epoll_wait(sl->epfd, evs, (int)ARRAY_SIZE(evs), -1);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        log_warning_errno(errno, "startCmd logs: epoll_wait: %m");
                        break;
                }
                for (int i = 0; i < n; i++) {
                        struct stream *s = evs[i].data.ptr;
                        if (!s) { /* the kick: new streams or stop */
                                uint64_t v;
                                while (read(sl->kickfd, &v, sizeof(v)) > 0)
                                        ;
                                continue;
                        }
                        if (pump(sl, s))
                                continue;
                        (void)pthread_mutex_lock(&sl->lock);
                        for (struct stream **p = &sl->streams; *p; p = &(*p)->next)
                                if (*p == s) {
                                        *p = s->next;
                                        break;
                                }
                        (void)pthread_mutex_unlock(&sl->lock);
                        stream_free(sl, s);
                }
        }
        return NULL;
}

int startlog_new(struct coved *cd, struct startlog **ret, struct cove_err **err)
{
        struct startlog *sl = xzalloc(sizeof(*sl));
        sl->cd = cd;
        sl->epfd = epoll_create1(EPOLL_CLOEXEC);
        sl->kickfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (sl->epfd < 0 || sl->kickfd < 0) {
                int e = errno;
                startlog_free(sl);
                return cove_err_set(err, e, "startCmd logs: epoll/eventfd");
        }
        struct epoll_event ev = { .events = EPOLLIN, .data.ptr = NULL };
        if (epoll_ctl(sl->epfd, EPOLL_CTL_ADD, sl->kickfd, &ev) < 0) {
                int e = errno;
                startlog_free(sl);
                return cove_err_set(err, e, "startCmd logs: epoll_ctl");
        }
        if (pthread_mutex_init(&sl->lock, NULL) != 0)
                abort();
        int r = pthread_create(&sl->thread, NULL, startlog_thread, sl);
        if (r != 0) {
                (void)pthread_mutex_destroy(&sl->lock);
                sl->lock = (pthread_mutex_t)PTHREAD_MUTEX_INITIALIZER;
                startlog_free(sl);
                return cove_err_set(err, r, "startCmd logs: start thread");
        }
        sl->running = true;
        *ret = sl;
        return 0;
}

void startlog_free(struct startlog *sl)
{
        if (!sl)
                return;
        if (sl->running) {
                atomic_store(&sl->stopping, true);
                uint64_t one = 1;
                if (write(sl->kickfd, &one, sizeof(one)) < 0)
                        log_warning_errno(errno, "stop the startCmd log thread: %m");
                (void)pthread_join(sl->thread, NULL);
        }
        while (sl->streams) {
                struct stream *s = sl->streams;
                sl->streams = s->next;
                stream_free(sl, s);
        }
        if (sl->running)
                (void)pthread_mutex_destroy(&sl->lock);
        if (sl->kickfd >= 0)
                (void)close(sl->kickfd);
        if (sl->epfd >= 0)
                (void)close(sl->epfd);
        free(sl);
}

void startlog_add(struct startlog *sl, const char *id, int fd)
{
        if (!sl) {
                (void)close(fd);
                return;
        }
        struct stream *s = xzalloc(sizeof(*s));
        s->id = xstrdup(id);
        s->fd = fd;
        s->window_start = time_mono_ms();
        frame_decoder_init(&s->dec, FRAME_MAX_PAYLOAD, NULL);
        int fl = fcntl(fd, F_GETFL);
        (void)agent_client_set_timeout(fd, 0);
        if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) {
                log_warning_errno(errno, "sandbox '%s': startCmd output not logged: %m", id);
                frame_decoder_release(&s->dec);
                free(s->id);
                free(s);
                (void)close(fd);
                return;
        }
        (void)pthread_mutex_lock(&sl->lock);
        struct epoll_event ev = { .events = EPOLLIN | EPOLLRDHUP, .data.ptr = s };
        if (epoll_ctl(sl->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
                (void)pthread_mutex_unlock(&sl->lock);
                log_warning_errno(errno, "sandbox '%s': startCmd output not logged: %m", id);
                frame_decoder_release(&s->dec);
                free(s->id);
                free(s);
                (void)close(fd);
                return;
        }
        s->next = sl->streams;
        sl->streams = s;
        (void)pthread_mutex_unlock(&sl->lock);
}
