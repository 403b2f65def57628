/* SPDX-License-Identifier: MIT */
/*
 * log.h — leveled logging to stderr, text or JSON lines (--log-format=json).
 *
 * Only the top of a call chain logs (main, HTTP handlers, the runtime's error reporter).
 * The level is checked before the arguments are evaluated. The *_errno variants return
 * -abs(r) so `return log_error_errno(r, "bind '%s': %m", addr);` is one statement; %m
 * prints strerror of that r.
 * log_set_context() sets a per-thread prefix (request id, sandbox id) added to every line.
 */
#pragma once

enum log_level {
        LOG_LEVEL_ERROR,
        LOG_LEVEL_WARNING,
        LOG_LEVEL_INFO,
        LOG_LEVEL_DEBUG,
};

extern enum log_level log_max_level;

void log_set_json(int on);
void log_set_ident(const char *ident);                                /* borrowed; e.g. "coved" */
void log_set_context(const char *request_id, const char *sandbox_id); /* borrowed, per thread */
int log_internal(enum log_level level, int err, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

#define log_full_errno(level, err, ...)                                                            \
        ((level) <= log_max_level ? log_internal((level), (err), __VA_ARGS__)                      \
                                  : -((err) < 0 ? -(err) : (err)))
#define log_error(...)              (void)log_full_errno(LOG_LEVEL_ERROR, 0, __VA_ARGS__)
#define log_warning(...)            (void)log_full_errno(LOG_LEVEL_WARNING, 0, __VA_ARGS__)
#define log_info(...)               (void)log_full_errno(LOG_LEVEL_INFO, 0, __VA_ARGS__)
#define log_debug(...)              (void)log_full_errno(LOG_LEVEL_DEBUG, 0, __VA_ARGS__)
#define log_error_errno(err, ...)   log_full_errno(LOG_LEVEL_ERROR, (err), __VA_ARGS__)
#define log_warning_errno(err, ...) log_full_errno(LOG_LEVEL_WARNING, (err), __VA_ARGS__)
#define log_debug_errno(err, ...)   log_full_errno(LOG_LEVEL_DEBUG, (err), __VA_ARGS__)
