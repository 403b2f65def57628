/* SPDX-License-Identifier: MIT */
/*
 * proc_blob.c — blobs (proc_blob.h): serialised stream messages shared by every subscriber
 * they are queued to.
 */
#include "agent/proc_blob.h"
#include "lib/b64.h"
#include "lib/json.h"
#include "lib/macro.h"

#include <stdio.h>

static struct blob *blob_new(size_t len)
{
        struct blob *b = xmalloc(sizeof(*b) + len + 1);
        atomic_init(&b->ref, 1);
        b->len = len;
        b->data[len] = '\0';
        return b;
}

struct blob *blob_ref(struct blob *b)
{
        atomic_fetch_add(&b->ref, 1);
        return b;
}

void blob_unref(struct blob *b)
{
        if (b && atomic_fetch_sub(&b->ref, 1) == 1)
                free(b);
}

/* {"msg": event} as one blob; steals event. */
struct blob *blob_from_event(json_t *event)
{
        json_t *m = json_pack("{s:{s:o}}", "msg", "event", event);
        char *s = json_dumps_compact(m);
        size_t n = strlen(s);
        struct blob *b = blob_new(n);
        memcpy(b->data, s, n);
        free(s);
        json_decref(m);
        return b;
}

struct blob *blob_data(const char *kind, const char *p, size_t n)
{
        char prefix[64];
        int pl = snprintf(prefix, sizeof(prefix), "{\"msg\":{\"event\":{\"data\":{\"%s\":\"", kind);
        static const char suffix[] = "\"}}}}";
        size_t el = b64_encoded_len(n, 0);
        struct blob *b = blob_new((size_t)pl + el + (sizeof(suffix) - 1));

        memcpy(b->data, prefix, (size_t)pl);
        b64_encode(p, n, b->data + pl, 0);
        memcpy(b->data + pl + el, suffix, (sizeof(suffix) - 1));
        b->data[b->len] = '\0';
        return b;
}
