/* SPDX-License-Identifier: MIT */
/*
 * buf.h — the one growable byte buffer (git strbuf invariants, curl dynbuf's mandatory cap).
 *
 * - `ptr` is NULL until the first append; buf_str() never returns NULL.
 * - The content is always NUL-terminated after a successful append (len excludes the NUL).
 * - An append that would exceed `max` fails with -E2BIG; on any failure the buffer is
 *   released (curl dynbuf), so callers need no cleanup on the error path.
 * - buf_take() hands the allocation to the caller and re-initialises the buffer.
 */
#pragma once

#include <stdarg.h>
#include <stddef.h>

struct buf {
        char *ptr;
        size_t len;
        size_t cap;
        size_t max;
};

#define BUF_MAX_HTTP_HEAD   (16 * 1024)
#define BUF_MAX_HTTP_BODY   (8 * 1024 * 1024)
#define BUF_MAX_JSON_UPLOAD (64 * 1024 * 1024)
#define BUF_MAX_AGENT_FRAME (1 * 1024 * 1024)
#define BUF_MAX_ERR_MSG     1024

void buf_init(struct buf *b, size_t max);
int buf_add(struct buf *b, const void *p, size_t n);
int buf_adds(struct buf *b, const char *s);
int buf_addc(struct buf *b, char c);
int buf_addf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int buf_vaddf(struct buf *b, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
const char *buf_str(const struct buf *b);
char *buf_take(struct buf *b, size_t *ret_len);
void buf_reset(struct buf *b); /* len = 0, keeps the allocation */
void buf_release(struct buf *b);
#define cleanup_buf __attribute__((cleanup(buf_release)))
