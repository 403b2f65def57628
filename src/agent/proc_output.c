/* SPDX-License-Identifier: MIT */
/*
 * proc_output.c — output fan-out of the process service (proc.h), two small types (and the
 * blobs of proc_blob.c that they carry):
 *   ring  the output kept for a result: the newest PROC_OUTPUT_MAX bytes of a stream
 *   sub   a subscriber (a Start or Connect stream): a queue of blobs, an eventfd that the pump
 *         writes to wake its serving thread, and that thread's loop (sub_serve)
 */
#include "agent/proc.h"
#include "lib/frame.h"
#include "lib/macro.h"

#include <poll.h>
#include <sys/eventfd.h>

/* ---- rings ---- */

void ring_add(struct ring *r, const char *d, size_t n)
{
        if (n >= PROC_OUTPUT_MAX) {
                d += n - PROC_OUTPUT_MAX;
                n = PROC_OUTPUT_MAX;
                r->start = r->len = 0;
        }
        if (r->len + n > r->cap && r->cap < PROC_OUTPUT_MAX) {
                size_t nc = MAX(MAX(r->cap * 2, r->len + n), (size_t)64 * 1024);
                nc = MIN(nc, (size_t)PROC_OUTPUT_MAX);
                char *np = xmalloc(nc);
                for (size_t i = 0, k = r->start; i < r->len; i++, k = k + 1 == r->cap ? 0 : k + 1)
                        np[i] = r->p[k];
                free(r->p);
                r->p = np;
                r->cap = nc;
                r->start = 0;
        }
        if (r->len + n > r->cap) {
                size_t drop = r->len + n - r->cap;
                r->start = (r->start + drop) % r->cap;
                r->len -= drop;
        }
        size_t w = (r->start + r->len) % r->cap;
        size_t first = MIN(n, r->cap - w);
        memcpy(r->p + w, d, first);
        memcpy(r->p, d + first, n - first);
        r->len += n;
}

char *ring_linear(const struct ring *r)
{
        char *s = xmalloc(r->len + 1);
        if (r->len) {
                size_t first = MIN(r->len, r->cap - r->start);
                memcpy(s, r->p + r->start, first);
                memcpy(s + first, r->p, r->len - first);
        }
        s[r->len] = '\0';
        return s;
}

/* ---- subscribers ---- */

void sub_wake(struct sub *s)
{
        uint64_t one = 1;
        (void)!write(s->efd, &one, sizeof(one));
}

static void sub_clear_queue(struct sub *s)
{
        while (s->head) {
                struct qnode *q = s->head;
                s->head = q->next;
                blob_unref(q->b);
                free(q);
        }
        s->tail = NULL;
        s->queued = 0;
}

void sub_push_locked(struct sub *s, struct blob *b, bool force)
{
        if (s->dropped || s->ended)
                return;
        if (!force && s->queued + b->len > SUB_QUEUE_MAX) {
                sub_clear_queue(s);
                s->dropped = true;
                sub_wake(s);
                return;
        }
        struct qnode *q = xmalloc(sizeof(*q));
        q->next = NULL;
        q->b = blob_ref(b);
        if (s->tail)
                s->tail->next = q;
        else
                s->head = q;
        s->tail = q;
        s->queued += b->len;
        if (s->head == q)
                sub_wake(s);
}

struct sub *sub_new(void)
{
        int efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (efd < 0)
                return NULL;
        struct sub *s = xzalloc(sizeof(*s));
        s->efd = efd;
        return s;
}

void sub_free(struct sub *s)
{
        if (!s)
                return;
        sub_clear_queue(s);
        (void)close(s->efd);
        free(s);
}

void sub_detach(struct proc *p, struct sub *s)
{
        pthread_mutex_lock(&proc_tab_lock);
        for (struct sub **pp = &p->subs; *pp; pp = &(*pp)->next)
                if (*pp == s) {
                        *pp = s->next;
                        break;
                }
        proc_unref_locked(p);
        pthread_mutex_unlock(&proc_tab_lock);
        sub_free(s);
}

int sub_serve(struct proc *p, struct sub *s, int fd)
{
        int r = 0;

        for (;;) {
                struct qnode *q;
                bool dropped, ended;

                pthread_mutex_lock(&proc_tab_lock);
                dropped = s->dropped;
                q = s->head;
                if (q && !dropped) {
                        s->head = q->next;
                        if (!s->head)
                                s->tail = NULL;
                }
                ended = s->ended && !s->head;
                pthread_mutex_unlock(&proc_tab_lock);

                if (dropped) {
                        (void)agent_stream_end(
                                fd, "resource_exhausted",
                                "subscriber fell more than 4 MiB behind the process output");
                        break;
                }
                if (q) {
                        r = frame_write(fd, FRAME_JSON, q->b->data, q->b->len);
                        pthread_mutex_lock(&proc_tab_lock);
                        if (!s->dropped)
                                s->queued -= q->b->len;
                        pthread_mutex_unlock(&proc_tab_lock);
                        blob_unref(q->b);
                        free(q);
                        if (r < 0)
                                break;
                        if (!ended)
                                continue;
                }
                if (ended) {
                        r = agent_stream_end(fd, NULL, NULL);
                        break;
                }

                struct pollfd pfd[2] = {
                        { .fd = s->efd, .events = POLLIN },
                        { .fd = fd, .events = POLLIN | POLLRDHUP },
                };
                if (poll(pfd, 2, -1) < 0) {
                        if (errno == EINTR)
                                continue;
                        r = -errno;
                        break;
                }
                if (pfd[0].revents & POLLIN) {
                        uint64_t v;
                        (void)!read(s->efd, &v, sizeof(v));
                }
                if (pfd[1].revents && agent_client_gone(fd, pfd[1].revents)) {
                        r = -ECONNRESET;
                        break;
                }
        }
        sub_detach(p, s);
        return r;
}
