/* SPDX-License-Identifier: MIT */
/*
 * proc_blob.h — a serialised stream message ({"msg": …}) of the process service, made once and
 * shared by every subscriber it is queued to. A blob is refcounted (atomically: the pump makes
 * it, subscribers' threads drop it); it is immutable once made.
 */
#pragma once

#include "lib/json.h"

#include <stdatomic.h>
#include <stddef.h>

struct blob {
        atomic_int ref;
        size_t len;
        char data[]; /* len bytes and a NUL */
};

struct blob *blob_ref(struct blob *b);
void blob_unref(struct blob *b); /* NULL is fine */
/* {"msg": {"event": event}} as one blob; steals event. */
struct blob *blob_from_event(json_t *event);
/* The data event of n output bytes of stream `kind` ("stdout", "stderr", "pty"). */
struct blob *blob_data(const char *kind, const char *p, size_t n);
