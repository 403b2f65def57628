/* SPDX-License-Identifier: MIT */
/* poller.c — waits, tunnels and lingering closes on one epoll thread (see poller.h). */
#include "coved/http/poller.h"
#include "coved/http/worker.h"
#include "lib/log.h"
#include "lib/macro.h"
#include "lib/timeutil.h"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>

#define POLLER_EVENTS     256
#define POLLER_SCRATCH    (64 * 1024) /* lingering sockets are drained through this */
#define POLLER_LINGER_MAX 1024        /* beyond this, a socket is closed at once */
#define TUNNEL_BUF        (32 * 1024) /* per direction */
#define DEADLINE_NONE     INT64_MAX

enum reg_kind {
        REG_WAIT,
        REG_LINGER,
        REG_TUNNEL,
};

struct reg;

/* One fd of a registration; epoll events carry a pointer to it. */
struct src {
        struct reg *reg;
        int fd;
        bool added;
};

struct dir_buf {
        char *data;
        size_t cap, off, len;
        bool eof;  /* the sending side is done */
        bool shut; /* ... and the receiving side was told (shutdown SHUT_WR) */
};

struct reg {
        enum reg_kind kind;
        bool dead;               /* done: later events are ignored; freed after the batch */
        struct reg *prev, *next; /* live registrations, or the dead list (next only) */
        size_t hidx;             /* heap index; SIZE_MAX when not in the heap */
        int64_t deadline;        /* monotonic ms; DEADLINE_NONE */
        struct src src[2];

        struct http_wait *w; /* REG_WAIT */

        int64_t linger_end; /* REG_LINGER */
        int idle_ms;        /* REG_LINGER, REG_TUNNEL */

        struct MHD_UpgradeResponseHandle *urh; /* REG_TUNNEL: src[0] client, src[1] peer */
        struct dir_buf dir[2];                 /* [0] client → peer, [1] peer → client */
        int half_close_ms;
};

struct http_wait {
        struct poller *p;
        struct worker_pool *workers; /* borrowed: for http_wait_work() */
        struct MHD_Connection *conn; /* borrowed */
        int client_fd;               /* borrowed from MHD, or -1 */
        enum http_wake reason;
        struct reg *reg; /* while armed */
};

/* Calls into libmicrohttpd collected under the lock and made after it. */
struct action {
        struct MHD_Connection *resume;
        struct MHD_UpgradeResponseHandle *close;
};

struct poller {
        pthread_mutex_t lock;
        pthread_t thread;
        int epfd;
        int kick; /* eventfd */
        bool stopping;
        bool started;
        struct reg *live;  /* every registration not yet done */
        struct reg *dead;  /* done, freed after the current batch */
        struct reg **heap; /* min-heap on deadline */
        size_t nheap, heap_cap;
        unsigned lingering;
        struct action *acts; /* pending actions of this batch (poller thread only) */
        size_t nacts, acts_cap;
        char *scratch;
};

/* ---- heap ---- */

static void heap_set(struct poller *p, size_t i, struct reg *r)
{
        p->heap[i] = r;
        r->hidx = i;
}

static void heap_up(struct poller *p, size_t i)
{
        struct reg *r = p->heap[i];
        while (i > 0) {
                size_t parent = (i - 1) / 2;
                if (p->heap[parent]->deadline <= r->deadline)
                        break;
                heap_set(p, i, p->heap[parent]);
                i = parent;
        }
        heap_set(p, i, r);
}

static void heap_down(struct poller *p, size_t i)
{
        struct reg *r = p->heap[i];
        for (;;) {
                size_t c = 2 * i + 1;
                if (c >= p->nheap)
                        break;
                if (c + 1 < p->nheap && p->heap[c + 1]->deadline < p->heap[c]->deadline)
                        c++;
                if (p->heap[c]->deadline >= r->deadline)
                        break;
                heap_set(p, i, p->heap[c]);
                i = c;
        }
        heap_set(p, i, r);
}

static void heap_remove(struct poller *p, struct reg *r)
{
        size_t i = r->hidx;
        if (i == SIZE_MAX)
                return;
        r->hidx = SIZE_MAX;
        p->nheap--;
        if (i == p->nheap)
                return;
        struct reg *moved = p->heap[p->nheap];
        heap_set(p, i, moved);
        heap_up(p, i);
        heap_down(p, moved->hidx);
}

/* Sets (or clears, DEADLINE_NONE) r's deadline; kicks the loop when it becomes the first. */
static void set_deadline(struct poller *p, struct reg *r, int64_t deadline)
{
        heap_remove(p, r);
        r->deadline = deadline;
        if (deadline == DEADLINE_NONE)
                return;
        if (p->nheap == p->heap_cap) {
                p->heap_cap = p->heap_cap ? 2 * p->heap_cap : 64;
                p->heap = xrealloc(p->heap, p->heap_cap * sizeof(*p->heap));
        }
        heap_set(p, p->nheap++, r);
        heap_up(p, r->hidx);
        if (r->hidx == 0 && !pthread_equal(pthread_self(), p->thread)) {
                uint64_t one = 1;
                (void)!write(p->kick, &one, sizeof(one));
        }
}

/* ---- registrations ---- */

static struct reg *reg_new(struct poller *p, enum reg_kind kind)
{
        struct reg *r = xzalloc(sizeof(*r));
        r->kind = kind;
        r->hidx = SIZE_MAX;
        r->deadline = DEADLINE_NONE;
        for (int i = 0; i < 2; i++) {
                r->src[i].reg = r;
                r->src[i].fd = -1;
        }
        r->next = p->live;
        if (p->live)
                p->live->prev = r;
        p->live = r;
        return r;
}

static int src_add(struct poller *p, struct src *s, int fd, uint32_t events)
{
        struct epoll_event ev = { .events = events, .data.ptr = s };
        s->fd = fd;
        if (epoll_ctl(p->epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
                return -errno;
        s->added = true;
        return 0;
}

/* Removes r from epoll, the heap and the live list; it is freed after the batch. */
static void reg_done(struct poller *p, struct reg *r)
{
        if (r->dead)
                return;
        for (int i = 0; i < 2; i++)
                if (r->src[i].added) {
                        (void)epoll_ctl(p->epfd, EPOLL_CTL_DEL, r->src[i].fd, NULL);
                        r->src[i].added = false;
                }
        heap_remove(p, r);
        if (r->prev)
                r->prev->next = r->next;
        else
                p->live = r->next;
        if (r->next)
                r->next->prev = r->prev;
        r->dead = true;
        r->prev = NULL;
        r->next = p->dead;
        p->dead = r;
}

static void reg_free(struct reg *r)
{
        free(r->dir[0].data);
        free(r->dir[1].data);
        free(r);
}

static void act(struct poller *p, struct MHD_Connection *resume,
                struct MHD_UpgradeResponseHandle *close)
{
        if (p->nacts == p->acts_cap) {
                p->acts_cap = p->acts_cap ? 2 * p->acts_cap : 64;
                p->acts = xrealloc(p->acts, p->acts_cap * sizeof(*p->acts));
        }
        p->acts[p->nacts++] = (struct action){ .resume = resume, .close = close };
}

/* ---- waits ---- */

static void wait_fire(struct poller *p, struct reg *r, enum http_wake why)
{
        struct http_wait *w = r->w;
        reg_done(p, r);
        w->reg = NULL;
        w->reason = why;
        act(p, w->conn, NULL);
}

struct http_wait *http_wait_new(struct http_req *r)
{
        struct http_wait *w = xzalloc(sizeof(*w));
        w->p = r->poller;
        w->workers = r->workers;
        w->conn = r->conn;
        w->client_fd = http_client_socket(r);
        return w;
}

void http_wait_free(struct http_wait *w)
{
        if (!w)
                return;
        if (w->reg) /* a suspended connection is never freed; this would be a bug */
                log_error("http: a wait was freed while armed");
        free(w);
}

enum http_wake http_wait_reason(struct http_wait *w)
{
        enum http_wake r = w->reason;
        w->reason = HTTP_WAKE_NONE;
        return r;
}

ssize_t http_wait_fd(struct http_wait *w, int fd, short events, int timeout_ms)
{
        struct poller *p = w->p;
        uint32_t ev = ((events & POLLIN) ? EPOLLIN : 0) | ((events & POLLOUT) ? EPOLLOUT : 0);

        (void)pthread_mutex_lock(&p->lock);
        bool stopping = p->stopping;
        (void)pthread_mutex_unlock(&p->lock);
        if (stopping)
                return MHD_CONTENT_READER_END_WITH_ERROR;

        /* Suspended before it is registered: the poller may resume it at once. */
        MHD_suspend_connection(w->conn);
        (void)pthread_mutex_lock(&p->lock);
        if (p->stopping) {
                w->reason = HTTP_WAKE_STOPPING;
                (void)pthread_mutex_unlock(&p->lock);
                MHD_resume_connection(w->conn);
                return 0;
        }
        struct reg *r = reg_new(p, REG_WAIT);
        r->w = w;
        w->reg = r;
        /* The reader finds an error of fd itself (a failed registration wakes it at once). */
        bool ready = fd >= 0 && src_add(p, &r->src[0], fd, ev) < 0;
        if (!ready && w->client_fd >= 0 && src_add(p, &r->src[1], w->client_fd, EPOLLRDHUP) < 0)
                ready = true;
        if (ready) {
                reg_done(p, r);
                w->reg = NULL;
                w->reason = HTTP_WAKE_READY;
                (void)pthread_mutex_unlock(&p->lock);
                MHD_resume_connection(w->conn);
                return 0;
        }
        if (timeout_ms >= 0)
                set_deadline(p, r, time_mono_ms() + timeout_ms);
        (void)pthread_mutex_unlock(&p->lock);
        return 0;
}

/* ---- work for readers ---- */

struct wait_job {
        struct http_wait *w; /* NULL: detached */
        struct worker_slot *slot;
        void (*fn)(void *arg);
        void *arg;
};

static void wait_job_main(void *arg)
{
        struct wait_job *j = arg;
        struct http_wait *w = j->w;

        j->fn(j->arg);
        worker_slot_release(j->slot);
        free(j);
        if (w) {
                w->reason = HTTP_WAKE_READY;
                MHD_resume_connection(w->conn); /* w may be gone from here on */
        }
}

/* 0 with the job started on a worker (w's connection suspended until it ends); < 0 when none
 * can be had: fn did not run and, when w's connection was already suspended, it is resumed
 * with HTTP_WAKE_STOPPING (-EINPROGRESS). */
static int start_job(struct worker_pool *pool, struct http_wait *w, void (*fn)(void *arg),
                     void *arg)
{
        struct wait_job *j = xzalloc(sizeof(*j));
        int q = worker_slot_take(pool, /* key= */ NULL, &j->slot);
        if (q < 0) {
                free(j);
                return q;
        }
        j->w = w;
        j->fn = fn;
        j->arg = arg;
        if (w)
                MHD_suspend_connection(w->conn);
        q = worker_run(j->slot, wait_job_main, j);
        if (q == 0)
                return 0;
        worker_slot_release(j->slot);
        free(j);
        if (!w)
                return q;
        w->reason = HTTP_WAKE_STOPPING;
        MHD_resume_connection(w->conn);
        return -EINPROGRESS;
}

ssize_t http_wait_work(struct http_wait *w, void (*fn)(void *arg), void *arg)
{
        int q = start_job(w->workers, w, fn, arg);
        if (q < 0)
                log_warning("http: no worker for a streaming response, ending it");
        if (q < 0 && q != -EINPROGRESS)
                return MHD_CONTENT_READER_END_WITH_ERROR;
        return 0;
}

void http_run_later(struct http_wait *w, void (*fn)(void *arg), void *arg)
{
        if (start_job(w->workers, /* w= */ NULL, fn, arg) < 0)
                fn(arg);
}

bool http_run_detached(struct http_req *r, void (*fn)(void *arg), void *arg)
{
        return start_job(r->workers, /* w= */ NULL, fn, arg) == 0;
}

/* ---- lingering closes ---- */

static void linger_close(struct poller *p, struct reg *r)
{
        int fd = r->src[0].fd;
        reg_done(p, r);
        (void)close(fd);
        p->lingering--;
}

static void linger_drain(struct poller *p, struct reg *r)
{
        for (;;) {
                ssize_t k = recv(r->src[0].fd, p->scratch, POLLER_SCRATCH, MSG_DONTWAIT);
                if (k > 0)
                        continue;
                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
                        break;
                linger_close(p, r); /* EOF or error: the client is done */
                return;
        }
        set_deadline(p, r, MIN(r->linger_end, time_mono_ms() + r->idle_ms));
}

void poller_linger(struct poller *p, int fd, int idle_ms, int total_ms)
{
        (void)pthread_mutex_lock(&p->lock);
        if (p->stopping || p->lingering >= POLLER_LINGER_MAX) {
                (void)pthread_mutex_unlock(&p->lock);
                (void)close(fd);
                return;
        }
        struct reg *r = reg_new(p, REG_LINGER);
        r->idle_ms = idle_ms;
        r->linger_end = time_mono_ms() + total_ms;
        p->lingering++;
        if (src_add(p, &r->src[0], fd, EPOLLIN | EPOLLRDHUP) < 0) {
                r->src[0].fd = fd;
                linger_close(p, r);
        } else {
                set_deadline(p, r, MIN(r->linger_end, time_mono_ms() + idle_ms));
        }
        (void)pthread_mutex_unlock(&p->lock);
}

/* ---- tunnels ---- */

/* Ends the tunnel; returns the handle the caller gives back to MHD (after unlocking). */
static struct MHD_UpgradeResponseHandle *tunnel_end(struct poller *p, struct reg *r)
{
        int peer = r->src[1].fd;
        reg_done(p, r); /* the client fd leaves our epoll set before MHD closes it */
        (void)shutdown(peer, SHUT_RDWR);
        (void)close(peer);
        return r->urh;
}

static void tunnel_close(struct poller *p, struct reg *r)
{
        act(p, NULL, tunnel_end(p, r));
}

/* Moves bytes both ways until nothing moves (edge-triggered: every fd is driven to EAGAIN). */
static void tunnel_pump(struct poller *p, struct reg *r)
{
        bool progress = true, moved = false;

        while (progress) {
                progress = false;
                for (int d = 0; d < 2; d++) {
                        int from = r->src[d].fd, to = r->src[1 - d].fd;
                        struct dir_buf *b = &r->dir[d];
                        while (b->off < b->len) {
                                ssize_t k = send(to, b->data + b->off, b->len - b->off,
                                                 MSG_NOSIGNAL | MSG_DONTWAIT);
                                if (k > 0) {
                                        b->off += (size_t)k;
                                        progress = moved = true;
                                } else if (k < 0 && errno == EINTR) {
                                        continue;
                                } else if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
                                        break;
                                } else {
                                        tunnel_close(p, r); /* reset: tear both down */
                                        return;
                                }
                        }
                        if (b->off < b->len)
                                continue;
                        b->off = b->len = 0;
                        if (b->eof) {
                                if (!b->shut) {
                                        (void)shutdown(to, SHUT_WR);
                                        b->shut = true;
                                }
                                continue;
                        }
                        ssize_t k = recv(from, b->data, b->cap, MSG_DONTWAIT);
                        if (k > 0) {
                                b->len = (size_t)k;
                                progress = moved = true;
                        } else if (k == 0) {
                                b->eof = true;
                                progress = moved = true;
                        } else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
                                tunnel_close(p, r);
                                return;
                        }
                }
        }
        if (r->dir[0].shut && r->dir[1].shut) {
                tunnel_close(p, r);
                return;
        }
        if (moved || r->deadline == DEADLINE_NONE) {
                /* A half-closed tunnel lingers briefly only: WebSocket has its own close
                 * handshake. */
                int idle = r->dir[0].eof || r->dir[1].eof ? r->half_close_ms : r->idle_ms;
                set_deadline(p, r, time_mono_ms() + idle);
        }
}

static void dir_init(struct dir_buf *b, const char *p, size_t n)
{
        b->cap = MAX((size_t)TUNNEL_BUF, n);
        b->data = xmalloc(b->cap);
        if (n > 0)
                memcpy(b->data, p, n);
        b->len = n;
}

void http_tunnel_start(struct http_req *req, struct MHD_UpgradeResponseHandle *urh, int client_fd,
                       int peer_fd, const char *to_peer, size_t to_peer_len, const char *to_client,
                       size_t to_client_len, int idle_ms, int half_close_ms)
{
        struct poller *p = req->poller;

        (void)pthread_mutex_lock(&p->lock);
        if (p->stopping) {
                (void)pthread_mutex_unlock(&p->lock);
                (void)close(peer_fd);
                (void)MHD_upgrade_action(urh, MHD_UPGRADE_ACTION_CLOSE);
                return;
        }
        struct reg *r = reg_new(p, REG_TUNNEL);
        r->urh = urh;
        r->idle_ms = idle_ms;
        r->half_close_ms = half_close_ms;
        dir_init(&r->dir[0], to_peer, to_peer_len);
        dir_init(&r->dir[1], to_client, to_client_len);
        r->src[1].fd = peer_fd;
        /* Both sockets must not block: the loop drives them to EAGAIN. */
        int fl = fcntl(client_fd, F_GETFL);
        if (fl >= 0)
                (void)fcntl(client_fd, F_SETFL, fl | O_NONBLOCK);
        fl = fcntl(peer_fd, F_GETFL);
        if (fl >= 0)
                (void)fcntl(peer_fd, F_SETFL, fl | O_NONBLOCK);
        uint32_t ev = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
        if (src_add(p, &r->src[0], client_fd, ev) < 0 || src_add(p, &r->src[1], peer_fd, ev) < 0) {
                log_warning_errno(-errno, "proxy tunnel: epoll: %m");
                struct MHD_UpgradeResponseHandle *h = tunnel_end(p, r);
                (void)pthread_mutex_unlock(&p->lock);
                (void)MHD_upgrade_action(h, MHD_UPGRADE_ACTION_CLOSE);
                return;
        }
        /* The first events (EPOLLOUT is ready at once) start the pump on the poller thread. */
        set_deadline(p, r, time_mono_ms() + idle_ms);
        (void)pthread_mutex_unlock(&p->lock);
}

/* ---- the loop ---- */

/* A deadline passed (why: HTTP_WAKE_TIMEOUT), or the poller stops (HTTP_WAKE_STOPPING). */
static void expire(struct poller *p, struct reg *r, enum http_wake why)
{
        switch (r->kind) {
        case REG_WAIT:
                wait_fire(p, r, why);
                break;
        case REG_LINGER:
                linger_close(p, r);
                break;
        case REG_TUNNEL:
                tunnel_close(p, r);
                break;
        }
}

static void handle(struct poller *p, struct src *s, uint32_t events)
{
        struct reg *r = s->reg;

        if (r->dead)
                return; /* a stale event of this batch */
        switch (r->kind) {
        case REG_WAIT:
                /* src[1] is the client: only a hang-up is registered there. */
                wait_fire(p, r, s == &r->src[1] ? HTTP_WAKE_CLIENT_GONE : HTTP_WAKE_READY);
                break;
        case REG_LINGER:
                linger_drain(p, r);
                break;
        case REG_TUNNEL:
                (void)events;
                tunnel_pump(p, r);
                break;
        }
}

static void run_actions(struct poller *p)
{
        /* Only this thread appends to acts; the lock is not held while MHD is called. */
        for (size_t i = 0; i < p->nacts; i++) {
                if (p->acts[i].resume)
                        MHD_resume_connection(p->acts[i].resume);
                if (p->acts[i].close)
                        (void)MHD_upgrade_action(p->acts[i].close, MHD_UPGRADE_ACTION_CLOSE);
        }
        p->nacts = 0;
}

static void free_dead(struct poller *p)
{
        while (p->dead) {
                struct reg *r = p->dead;
                p->dead = r->next;
                reg_free(r);
        }
}

static void *poller_main(void *arg)
{
        struct poller *p = arg;
        struct epoll_event evs[POLLER_EVENTS];

        for (;;) {
                (void)pthread_mutex_lock(&p->lock);
                if (p->stopping) {
                        while (p->live)
                                expire(p, p->live, HTTP_WAKE_STOPPING);
                        (void)pthread_mutex_unlock(&p->lock);
                        run_actions(p);
                        free_dead(p);
                        return NULL;
                }
                int64_t now = time_mono_ms();
                int timeout = -1;
                if (p->nheap > 0)
                        timeout = (int)MIN(MAX(p->heap[0]->deadline - now, 0), 60 * 1000);
                (void)pthread_mutex_unlock(&p->lock);

                int n = epoll_wait(p->epfd, evs, POLLER_EVENTS, timeout);
                if (n < 0 && errno != EINTR) {
                        log_error_errno(-errno, "http poller: epoll_wait: %m");
                        n = 0;
                }
                (void)pthread_mutex_lock(&p->lock);
                for (int i = 0; i < n; i++) {
                        if (!evs[i].data.ptr) { /* the kick */
                                uint64_t v;
                                (void)!read(p->kick, &v, sizeof(v));
                                continue;
                        }
                        handle(p, evs[i].data.ptr, evs[i].events);
                }
                now = time_mono_ms();
                while (p->nheap > 0 && p->heap[0]->deadline <= now)
                        expire(p, p->heap[0], HTTP_WAKE_TIMEOUT);
                (void)pthread_mutex_unlock(&p->lock);
                run_actions(p);
                free_dead(p);
        }
}

int poller_start(struct poller **ret, struct cove_err **err)
{
        struct poller *p = xzalloc(sizeof(*p));
        int r;

        p->epfd = -1;
        p->kick = -1;
        (void)pthread_mutex_init(&p->lock, NULL);
        p->scratch = xmalloc(POLLER_SCRATCH);
        p->epfd = epoll_create1(EPOLL_CLOEXEC);
        if (p->epfd < 0) {
                r = cove_err_set(err, errno, "http poller: epoll_create1: %m");
                goto fail;
        }
        p->kick = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (p->kick < 0) {
                r = cove_err_set(err, errno, "http poller: eventfd: %m");
                goto fail;
        }
        struct epoll_event ev = { .events = EPOLLIN, .data.ptr = NULL };
        if (epoll_ctl(p->epfd, EPOLL_CTL_ADD, p->kick, &ev) < 0) {
                r = cove_err_set(err, errno, "http poller: epoll_ctl: %m");
                goto fail;
        }
        r = pthread_create(&p->thread, NULL, poller_main, p);
        if (r != 0) {
                r = cove_err_set(err, r, "http poller: cannot start its thread: %s", strerror(r));
                goto fail;
        }
        p->started = true;
        *ret = p;
        return 0;
fail:
        poller_free(p);
        return r;
}

void poller_stop(struct poller *p)
{
        if (!p || !p->started)
                return;
        (void)pthread_mutex_lock(&p->lock);
        p->stopping = true;
        (void)pthread_mutex_unlock(&p->lock);
        uint64_t one = 1;
        (void)!write(p->kick, &one, sizeof(one));
        (void)pthread_join(p->thread, NULL);
        p->started = false;
}

void poller_free(struct poller *p)
{
        if (!p)
                return;
        poller_stop(p);
        if (p->epfd >= 0)
                (void)close(p->epfd);
        if (p->kick >= 0)
                (void)close(p->kick);
        free(p->heap);
        free(p->acts);
        free(p->scratch);
        (void)pthread_mutex_destroy(&p->lock);
        free(p);
}
