/* SPDX-License-Identifier: MIT */
/*
 * rowcache.c — the manager's read cache of sandbox rows (internal.h). The store stays the
 * truth: a row is cached only as read from it, and dropped by the store's write hook on every
 * write of that row.
 *
 * Staleness: a read that raced a write must not be cached. The store numbers its writes and
 * stamps every row it reads with the count at that moment (read_seq), under its lock; the
 * write hook records, per slot, the count of the latest write of an ID that maps to it. A row
 * is kept only if it was read at or after that count: any write of it after the read has
 * either already been recorded (the row is refused) or will drop it (the hook runs after the
 * write, under the store's lock, and takes the slot's lock).
 *
 * Direct-mapped (one row per slot, a slot per hash of the ID), so memory is bounded without
 * eviction bookkeeping; a slot lock each, so that readers of different sandboxes do not
 * contend. Lock order: store, then slot; nothing here calls the store.
 */
#include "coved/manager/internal.h"
#include "lib/macro.h"

#include <pthread.h>

#define ROWCACHE_SLOTS 4096 /* power of two */

struct rowcache_slot {
        pthread_mutex_t lock;
        struct sandbox_rec *rec; /* owned, or NULL */
        uint64_t written_seq;    /* the store's count at the latest write of an ID of this slot */
};

struct rowcache {
        struct rowcache_slot slots[ROWCACHE_SLOTS];
};

static struct rowcache_slot *slot_of(struct rowcache *c, const char *id)
{
        uint32_t h = 2166136261u; /* FNV-1a */
        for (const unsigned char *p = (const unsigned char *)id; *p; p++)
                h = (h ^ *p) * 16777619u;
        return &c->slots[h & (ROWCACHE_SLOTS - 1)];
}

struct rowcache *rowcache_new(void)
{
        struct rowcache *c = xzalloc(sizeof(*c));
        for (size_t i = 0; i < ROWCACHE_SLOTS; i++)
                if (pthread_mutex_init(&c->slots[i].lock, NULL) != 0)
                        abort();
        return c;
}

void rowcache_free(struct rowcache *c)
{
        if (!c)
                return;
        for (size_t i = 0; i < ROWCACHE_SLOTS; i++) {
                sandbox_rec_free(c->slots[i].rec);
                (void)pthread_mutex_destroy(&c->slots[i].lock);
        }
        free(c);
}

struct sandbox_rec *rowcache_get(struct rowcache *c, const char *id)
{
        struct rowcache_slot *s = slot_of(c, id);
        struct sandbox_rec *copy = NULL;

        (void)pthread_mutex_lock(&s->lock);
        if (s->rec && streq(s->rec->id, id))
                copy = sandbox_rec_dup(s->rec);
        (void)pthread_mutex_unlock(&s->lock);
        return copy;
}

void rowcache_put(struct rowcache *c, const struct sandbox_rec *rec)
{
        struct rowcache_slot *s = slot_of(c, rec->id);
        struct sandbox_rec *old = NULL, *copy = sandbox_rec_dup(rec);

        (void)pthread_mutex_lock(&s->lock);
        if (rec->read_seq >= s->written_seq) {
                old = s->rec;
                s->rec = TAKE_PTR(copy);
        }
        (void)pthread_mutex_unlock(&s->lock);
        sandbox_rec_free(old);
        sandbox_rec_free(copy);
}

void rowcache_written(void *ud, const char *id, uint64_t seq)
{
        struct rowcache *c = ud;
        struct rowcache_slot *s = slot_of(c, id);
        struct sandbox_rec *old = NULL;

        (void)pthread_mutex_lock(&s->lock);
        s->written_seq = MAX(s->written_seq, seq);
        if (s->rec && streq(s->rec->id, id))
                old = TAKE_PTR(s->rec);
        (void)pthread_mutex_unlock(&s->lock);
        sandbox_rec_free(old); /* json_decref and free: no store call */
}
