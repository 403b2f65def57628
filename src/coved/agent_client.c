/* SPDX-License-Identifier: MIT */
#include "coved/agent_client.h"
#include "coved/engine/engine.h"
#include "lib/frame.h"
#include "lib/json.h"
#include "lib/macro.h"
#include "lib/timeutil.h"

#include <poll.h>
#include <pthread.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>

#define AGENT_DATA_CHUNK FRAME_MAX_PAYLOAD /* D frames of uploads: the agent splices each */

/* ---- the pool of kept connections (agent_client.h) ---- */

struct pooled {
        char *id; /* owned; NULL: free slot */
        int fd;
        int64_t since_ms; /* monotonic: when it went idle */
};

struct agent_pool {
        pthread_mutex_t lock;
        struct pooled v[AGENT_POOL_MAX];
        int epfd;   /* every idle fd, for hang-ups and stray bytes */
        int stopfd; /* eventfd: the watcher exits */
        pthread_t watcher;
};

/* Lock held. Closes slot i's connection and frees the slot. */
static void pool_drop_locked(struct agent_pool *p, size_t i)
{
        (void)epoll_ctl(p->epfd, EPOLL_CTL_DEL, p->v[i].fd, NULL);
        (void)close(p->v[i].fd);
        free(p->v[i].id);
        p->v[i] = (struct pooled){ .id = NULL, .fd = -1 };
}

/* The watcher: an idle connection that becomes readable (the agent hung up, died, or sent
 * bytes nobody asked for) or idles past AGENT_POOL_IDLE_MS is closed at once. It only ever
 * closes fds: nothing an agent does can block it. */
static void *pool_watch(void *arg)
{
        struct agent_pool *p = arg;
        for (;;) {
                struct epoll_event ev[16];
                int n = epoll_wait(p->epfd, ev, (int)ARRAY_SIZE(ev), 1000);
                if (n < 0 && errno != EINTR)
                        return NULL;
                int64_t now = time_mono_ms();
                (void)pthread_mutex_lock(&p->lock);
                for (int k = 0; k < n; k++) {
                        if (ev[k].data.fd == p->stopfd) {
                                (void)pthread_mutex_unlock(&p->lock);
                                return NULL;
                        }
                        for (size_t i = 0; i < AGENT_POOL_MAX; i++)
                                if (p->v[i].id && p->v[i].fd == ev[k].data.fd)
                                        pool_drop_locked(p, i);
                }
                for (size_t i = 0; i < AGENT_POOL_MAX; i++)
                        if (p->v[i].id && now - p->v[i].since_ms >= AGENT_POOL_IDLE_MS)
                                pool_drop_locked(p, i);
                (void)pthread_mutex_unlock(&p->lock);
        }
}

int agent_pool_new(struct agent_pool **ret, struct cove_err **err)
{
        struct agent_pool *p = xzalloc(sizeof(*p));
        struct epoll_event ev = { .events = EPOLLIN };

        for (size_t i = 0; i < AGENT_POOL_MAX; i++)
                p->v[i].fd = -1;
        p->epfd = epoll_create1(EPOLL_CLOEXEC);
        p->stopfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        ev.data.fd = p->stopfd;
        if (p->epfd < 0 || p->stopfd < 0 || epoll_ctl(p->epfd, EPOLL_CTL_ADD, p->stopfd, &ev) < 0) {
                int e = errno;
                if (p->epfd >= 0)
                        (void)close(p->epfd);
                if (p->stopfd >= 0)
                        (void)close(p->stopfd);
                free(p);
                return cove_err_set(err, e, "agent connection pool: %m");
        }
        if (pthread_mutex_init(&p->lock, NULL) != 0)
                abort();
        int r = pthread_create(&p->watcher, NULL, pool_watch, p);
        if (r != 0) {
                (void)close(p->epfd);
                (void)close(p->stopfd);
                (void)pthread_mutex_destroy(&p->lock);
                free(p);
                return cove_err_set(err, r, "agent connection pool: start its thread: %m");
        }
        *ret = p;
        return 0;
}

void agent_pool_free(struct agent_pool *p)
{
        if (!p)
                return;
        uint64_t one = 1;
        (void)!write(p->stopfd, &one, sizeof(one));
        (void)pthread_join(p->watcher, NULL);
        for (size_t i = 0; i < AGENT_POOL_MAX; i++)
                if (p->v[i].id)
                        pool_drop_locked(p, i);
        (void)close(p->epfd);
        (void)close(p->stopfd);
        (void)pthread_mutex_destroy(&p->lock);
        free(p);
}

void agent_pool_forget(struct agent_pool *p, const char *id)
{
        if (!p)
                return;
        (void)pthread_mutex_lock(&p->lock);
        for (size_t i = 0; i < AGENT_POOL_MAX; i++)
                if (p->v[i].id && streq(p->v[i].id, id))
                        pool_drop_locked(p, i);
        (void)pthread_mutex_unlock(&p->lock);
}

/* An idle connection to id's agent (the most recent), or -1. */
static int pool_take(struct agent_pool *p, const char *id)
{
        int fd = -1;
        ssize_t best = -1;

        (void)pthread_mutex_lock(&p->lock);
        for (size_t i = 0; i < AGENT_POOL_MAX; i++)
                if (p->v[i].id && streq(p->v[i].id, id) &&
                    (best < 0 || p->v[i].since_ms > p->v[best].since_ms))
                        best = (ssize_t)i;
        if (best >= 0) {
                fd = p->v[best].fd;
                (void)epoll_ctl(p->epfd, EPOLL_CTL_DEL, fd, NULL);
                free(p->v[best].id);
                p->v[best] = (struct pooled){ .id = NULL, .fd = -1 };
        }
        (void)pthread_mutex_unlock(&p->lock);
        /* Idle means silent: anything to read (EOF of an agent that went, stray bytes) and the
         * connection is not reused. */
        struct pollfd pfd = { .fd = fd, .events = POLLIN | POLLRDHUP };
        if (fd >= 0 && poll(&pfd, 1, 0) != 0) {
                (void)close(fd);
                fd = -1;
        }
        return fd;
}

/* Keeps fd (a connection to id's agent with no call in progress) for the next call; closes
 * it when the pool holds AGENT_POOL_PER_SANDBOX for id already (the oldest of all makes room
 * when the pool is full). */
static void pool_put(struct agent_pool *p, const char *id, int fd)
{
        size_t mine = 0;
        ssize_t slot = -1, oldest = -1;
        struct epoll_event ev = { .events = EPOLLIN | EPOLLRDHUP, .data.fd = fd };

        (void)pthread_mutex_lock(&p->lock);
        for (size_t i = 0; i < AGENT_POOL_MAX; i++) {
                if (!p->v[i].id) {
                        if (slot < 0)
                                slot = (ssize_t)i;
                        continue;
                }
                if (streq(p->v[i].id, id))
                        mine++;
                if (oldest < 0 || p->v[i].since_ms < p->v[oldest].since_ms)
                        oldest = (ssize_t)i;
        }
        if (mine >= AGENT_POOL_PER_SANDBOX) {
                (void)pthread_mutex_unlock(&p->lock);
                (void)close(fd);
                return;
        }
        if (slot < 0) {
                pool_drop_locked(p, (size_t)oldest);
                slot = oldest;
        }
        if (epoll_ctl(p->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
                (void)pthread_mutex_unlock(&p->lock);
                (void)close(fd);
                return;
        }
        p->v[slot] = (struct pooled){ .id = xstrdup(id), .fd = fd, .since_ms = time_mono_ms() };
        (void)pthread_mutex_unlock(&p->lock);
}

static int unreachable(struct cove_err **err, int errnum)
{
        if (errnum == EAGAIN || errnum == EWOULDBLOCK || errnum == ETIMEDOUT)
                return cove_err_set_status(err, 503, ETIMEDOUT, "sandbox agent timed out");
        return cove_err_set_status(err, 503, errnum ? errnum : ECONNRESET,
                                   "sandbox agent unreachable");
}

void agent_reply_release(struct agent_reply *r)
{
        if (!r)
                return;
        json_decref(r->frame);
        free(r->body_text);
        *r = (struct agent_reply){ 0 };
}

int agent_client_set_timeout(int fd, int timeout_ms)
{
        struct timeval tv = { .tv_sec = timeout_ms / 1000, .tv_usec = (timeout_ms % 1000) * 1000 };
        if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0)
                return -errno;
        if (setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) < 0)
                return -errno;
        return 0;
}

void agent_client_set_bulk(int fd)
{
        int n = AGENT_BULK_SNDBUF;
        /* SO_SNDBUFFORCE: past net.core.wmem_max (coved runs as root); SO_SNDBUF otherwise. */
        if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &n, sizeof(n)) < 0)
                (void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &n, sizeof(n));
}

int agent_client_connect(struct coved *cd, const char *id, int io_timeout_ms, struct cove_err **err)
{
        cleanup_err struct cove_err *e = NULL;
        cleanup_close int fd = engine_agent_connect(cd, id, &e);

        if (fd < 0)
                return e && e->errnum == ENAMETOOLONG ? cove_err_set(err, e->errnum, "%s", e->msg)
                                                      : unreachable(err, -fd);
        if (agent_client_set_timeout(fd, io_timeout_ms) < 0)
                return cove_err_set(err, errno, "set agent socket timeouts: %m");
        return TAKE_FD(fd);
}

int agent_client_send_json(int fd, const json_t *j, struct cove_err **err)
{
        int r = frame_write_json(fd, j);
        if (r == -E2BIG)
                return cove_err_set(err, E2BIG, "agent request too large");
        if (r < 0)
                return unreachable(err, -r);
        return 0;
}

int agent_client_send_data(int fd, const void *p, size_t n, struct cove_err **err)
{
        const char *c = p;
        while (n > 0) {
                size_t k = MIN(n, (size_t)AGENT_DATA_CHUNK);
                int r = frame_write(fd, FRAME_DATA, c, k);
                if (r < 0)
                        return unreachable(err, -r);
                c += k;
                n -= k;
        }
        return 0;
}

int agent_client_send_end(int fd, struct cove_err **err)
{
        int r = frame_write(fd, FRAME_END, NULL, 0);
        if (r < 0)
                return unreachable(err, -r);
        return 0;
}

int agent_client_read_frame(int fd, char *ret_kind, struct buf *payload, struct cove_err **err)
{
        int r = frame_read(fd, ret_kind, payload);
        if (r == 0)
                return unreachable(err, ECONNRESET);
        if (r < 0)
                return unreachable(err, r == -EPROTO ? EPROTO : -r);
        return 0;
}

int agent_client_read_json(int fd, json_t **ret, struct cove_err **err)
{
        cleanup_buf struct buf b = { 0 };
        char kind;
        json_error_t jerr;

        buf_init(&b, FRAME_MAX_PAYLOAD + 1);
        int r = agent_client_read_frame(fd, &kind, &b, err);
        if (r < 0)
                return r;
        if (kind != FRAME_JSON)
                return unreachable(err, EPROTO);
        /* Process output may hold NUL bytes ("\u0000" in a run reply's stdout). */
        json_t *j = json_loadb(buf_str(&b), b.len, JSON_ALLOW_NUL, &jerr);
        if (!j || !json_is_object(j)) {
                json_decref(j);
                return unreachable(err, EPROTO);
        }
        *ret = j;
        return 0;
}

int agent_client_read_reply(int fd, struct agent_reply *ret, struct cove_err **err)
{
        struct agent_reply rep = { 0 };
        int64_t st;
        int r;

        r = agent_client_read_json(fd, &rep.frame, err);
        if (r < 0)
                return r;
        if (!json_get_integer(json_object_get(rep.frame, "status"), &st) || st < 100 || st > 599) {
                agent_reply_release(&rep);
                return unreachable(err, EPROTO);
        }
        rep.status = (int)st;
        rep.message = json_string_value(json_object_get(rep.frame, "message"));
        rep.body = json_object_get(rep.frame, "body");

        if (json_is_true(json_object_get(rep.frame, "bodyFollows"))) {
                cleanup_buf struct buf text = { 0 };
                cleanup_buf struct buf chunk = { 0 };
                buf_init(&text, AGENT_REPLY_BODY_MAX);
                buf_init(&chunk, FRAME_MAX_PAYLOAD + 1);
                for (;;) {
                        char kind;
                        r = agent_client_read_frame(fd, &kind, &chunk, err);
                        if (r < 0) {
                                agent_reply_release(&rep);
                                return r;
                        }
                        if (kind == FRAME_END)
                                break;
                        if (kind != FRAME_DATA || buf_add(&text, chunk.ptr, chunk.len) < 0) {
                                agent_reply_release(&rep);
                                return kind != FRAME_DATA
                                               ? unreachable(err, EPROTO)
                                               : cove_err_set(err, E2BIG, "agent reply too large");
                        }
                }
                if (text.len == 0 && buf_add(&text, "{}", 2) < 0) {
                        agent_reply_release(&rep);
                        return -ENOMEM;
                }
                rep.body_text = buf_take(&text, &rep.body_len);
                rep.body = NULL;
        }
        *ret = rep;
        return 0;
}

/* The ops whose connection the agent keeps for another request when asked ("keep": true;
 * src/agent/main.c has the same list, docs/design/agent-protocol.md). */
static bool keepable(const json_t *req)
{
        const char *op = json_string_value(json_object_get(req, "op"));
        return op && (streq(op, "run") || streq(op, "ping"));
}

int agent_client_call(struct coved *cd, const char *id, const json_t *req, int timeout_ms,
                      struct agent_reply *ret, struct cove_err **err)
{
        cleanup_close int fd = -1;
        cleanup_err struct cove_err *send_err = NULL;
        json_t *kept = NULL;
        bool keep = cd->agents && keepable(req);

        if (keep) {
                fd = pool_take(cd->agents, id);
                if (fd >= 0 && agent_client_set_timeout(fd, timeout_ms) < 0) {
                        (void)close(fd);
                        fd = -1;
                }
                kept = json_copy((json_t *)req); /* shallow: the caller's request stays as is */
                if (!kept)
                        abort();
                json_object_set_new(kept, "keep", json_true());
                req = kept;
        }
        if (fd < 0)
                fd = agent_client_connect(cd, id, timeout_ms, err);
        if (fd < 0) {
                json_decref(kept);
                return fd;
        }
        /* On a send failure the agent may still have answered (and closed) before reading
         * everything: its reply wins. */
        int r = agent_client_send_json(fd, req, &send_err);
        json_decref(kept);
        if (r < 0 && send_err->errnum == E2BIG)
                return cove_err_set(err, E2BIG, "%s", send_err->msg);
        r = agent_client_read_reply(fd, ret, err);
        if (r >= 0 && keep && !send_err)
                pool_put(cd->agents, id, TAKE_FD(fd));
        return r;
}

int agent_client_ping(struct coved *cd, const char *id, int timeout_ms, struct cove_err **err)
{
        int64_t deadline = time_mono_ms() + timeout_ms;
        json_t *req = json_pack("{s:s}", "op", "ping");
        int r;

        for (;;) {
                struct agent_reply rep = { 0 };
                cleanup_err struct cove_err *e = NULL;
                int64_t left = deadline - time_mono_ms();

                r = agent_client_call(cd, id, req, (int)MAX(MIN(left, 5000), 100), &rep, &e);
                if (r == 0 && rep.status == 200) {
                        agent_reply_release(&rep);
                        json_decref(req);
                        return 0;
                }
                if (r == 0)
                        r = cove_err_set_status(&e, 503, EIO, "agent ping failed with status %d",
                                                rep.status);
                agent_reply_release(&rep);
                if (time_mono_ms() >= deadline) {
                        json_decref(req);
                        return cove_err_set_status(err, 503, e ? e->errnum : EIO,
                                                   "sandbox agent did not answer within %d ms: %s",
                                                   timeout_ms, e ? e->msg : "no reply");
                }
                struct timespec ts = { 0, 50 * 1000 * 1000 };
                (void)nanosleep(&ts, NULL);
        }
}
