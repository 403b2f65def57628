/* SPDX-License-Identifier: MIT */
/*
 * err.h — the error convention (docs/design/errors.md).
 *
 * Fallible functions return >= 0 on success and -errno on failure. Those whose failure a human
 * must understand take `struct cove_err **err` last and fill it only on failure:
 *
 *         if (fd < 0)
 *                 return cove_err_set(err, errno, "open '%s': %m", path);
 *         ...
 *         return cove_err_wrap(err, "create sandbox '%s'", id);
 *
 * cove_err_set() formats (with %m meaning strerror(errnum)), stores, and returns -errnum.
 * cove_err_wrap() prefixes "<context>: " to the message and returns -(*err)->errnum.
 * An err that is already set is not overwritten by cove_err_set() (the first cause wins).
 * `err` may be NULL: then nothing is stored, the return value is the same.
 */
#pragma once

#include <stdarg.h>

struct cove_err {
        int errnum;    /* positive errno value */
        int status;    /* HTTP status override, 0 = derive from errnum */
        char *msg;     /* owned; "open 'etc/passwd': No such file or directory" */
        char *details; /* owned or NULL: a JSON object (text) for the error body's top-level
                        * "details" (spec README §5.4, quota errors) */
};

#define COVE_ERR_MSG_MAX 1024

int cove_err_set(struct cove_err **err, int errnum, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
/* Like cove_err_set() with an explicit HTTP status (for spec-mandated statuses). */
int cove_err_set_status(struct cove_err **err, int status, int errnum, const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));
int cove_err_wrap(struct cove_err **err, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));
void cove_err_free(struct cove_err **err);
/* Attaches details (JSON object text, taken over) to a set err; no-op (frees) otherwise. */
void cove_err_set_details(struct cove_err **err, char *details);
#define cleanup_err __attribute__((cleanup(cove_err_free)))
