/* SPDX-License-Identifier: MIT */
/*
 * macro.h — small language helpers used everywhere.
 *
 * Cleanup attributes: declare locals initialised (`cleanup_free char *p = NULL;`,
 * `cleanup_close int fd = -1;`) and they are released on every return path. Hand ownership
 * out with TAKE_PTR()/TAKE_FD(). Never return through such frames in a forked child: _exit().
 *
 * x*alloc() abort on OOM: use them only for small internal allocations; anything sized by
 * input goes through a capped `struct buf` or xmalloc_array() with its overflow check.
 */
#pragma once

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <dirent.h>

#define UNUSED        __attribute__((unused))
#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define STRLEN(s)     (sizeof("" s "") - 1)
#define streq(a, b)   (strcmp((a), (b)) == 0)
#define MIN(a, b)     ((a) < (b) ? (a) : (b))
#define MAX(a, b)     ((a) > (b) ? (a) : (b))

/* Upper bound of the decimal length of an integer type, with sign (systemd). */
#define DECIMAL_STR_MAX(type)                                                                      \
        (2U + (sizeof(type) <= 1 ? 3U : sizeof(type) <= 2 ? 5U : sizeof(type) <= 4 ? 10U : 20U))

#define TAKE_PTR(p)                                                                                \
        ({                                                                                         \
                __typeof__(p) _p_ = (p);                                                           \
                (p) = NULL;                                                                        \
                _p_;                                                                               \
        })
#define TAKE_FD(fd)                                                                                \
        ({                                                                                         \
                int _fd_ = (fd);                                                                   \
                (fd) = -1;                                                                         \
                _fd_;                                                                              \
        })

#ifndef TEMP_FAILURE_RETRY
#define TEMP_FAILURE_RETRY(expr)                                                                   \
        ({                                                                                         \
                long _r_;                                                                          \
                do                                                                                 \
                        _r_ = (long)(expr);                                                        \
                while (_r_ == -1L && errno == EINTR);                                              \
                _r_;                                                                               \
        })
#endif

static inline void freep(void *p)
{
        free(*(void **)p);
}
static inline void closep(int *fd)
{
        if (*fd >= 0) {
                int saved = errno;
                (void)close(*fd);
                errno = saved;
        }
}
static inline void fclosep(FILE **f)
{
        if (*f)
                (void)fclose(*f);
}
static inline void closedirp(DIR **d)
{
        if (*d)
                (void)closedir(*d);
}
static inline void strv_free(char **v)
{
        if (!v)
                return;
        for (char **s = v; *s; s++)
                free(*s);
        free(v);
}
static inline void strv_freep(char ***v)
{
        strv_free(*v);
}

#define cleanup_free     __attribute__((cleanup(freep)))
#define cleanup_close    __attribute__((cleanup(closep)))
#define cleanup_fclose   __attribute__((cleanup(fclosep)))
#define cleanup_closedir __attribute__((cleanup(closedirp)))
#define cleanup_strv     __attribute__((cleanup(strv_freep)))

/* Aborting allocators for small, internal sizes (crun OOM(), git xmalloc). */
void *xmalloc(size_t n);
void *xzalloc(size_t n);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* NULL when n * size overflows (never aborts for that case). */
void *xmalloc_array(size_t n, size_t size);
size_t strv_length(char *const *v);
