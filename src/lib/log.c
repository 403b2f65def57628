/* SPDX-License-Identifier: MIT */
#include "log.h"
#include "macro.h"
#include "timeutil.h"

#include <stdarg.h>

enum log_level log_max_level = LOG_LEVEL_INFO;
static int log_json;
static const char *log_ident = "cove";
static __thread const char *ctx_request;
static __thread const char *ctx_sandbox;

static const char *const level_names[] = {
        [LOG_LEVEL_ERROR] = "error",
        [LOG_LEVEL_WARNING] = "warning",
        [LOG_LEVEL_INFO] = "info",
        [LOG_LEVEL_DEBUG] = "debug",
};

void log_set_json(int on)
{
        log_json = on;
}

void log_set_ident(const char *ident)
{
        log_ident = ident;
}

void log_set_context(const char *request_id, const char *sandbox_id)
{
        ctx_request = request_id;
        ctx_sandbox = sandbox_id;
}

static void json_escape_into(char *out, size_t outsz, const char *s)
{
        size_t o = 0;
        for (; *s && o + 7 < outsz; s++) {
                unsigned char c = (unsigned char)*s;
                if (c == '"' || c == '\\') {
                        out[o++] = '\\';
                        out[o++] = (char)c;
                } else if (c < 0x20) {
                        o += (size_t)snprintf(out + o, outsz - o, "\\u%04x", c);
                } else {
                        out[o++] = (char)c;
                }
        }
        out[o] = '\0';
}

int log_internal(enum log_level level, int err, const char *fmt, ...)
{
        int saved = errno;
        char msg[2048], line[4096], ts[TIME_RFC3339_MAX];
        va_list ap;

        if (err < 0)
                err = -err;
        errno = err ? err : saved;
        va_start(ap, fmt);
        (void)vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        time_format_rfc3339(time_now_ms(), ts);

        if (log_json) {
                char emsg[sizeof(msg) * 2];
                json_escape_into(emsg, sizeof(emsg), msg);
                (void)snprintf(line, sizeof(line),
                               "{\"time\":\"%s\",\"level\":\"%s\",\"ident\":\"%s\"%s%s%s%s%s%s,"
                               "\"msg\":\"%s\"}\n",
                               ts, level_names[level], log_ident,
                               ctx_request ? ",\"request_id\":\"" : "",
                               ctx_request ? ctx_request : "", ctx_request ? "\"" : "",
                               ctx_sandbox ? ",\"sandbox_id\":\"" : "",
                               ctx_sandbox ? ctx_sandbox : "", ctx_sandbox ? "\"" : "", emsg);
        } else {
                (void)snprintf(line, sizeof(line), "%s %s[%d] %s: %s%s%s%s%s%s\n", ts, log_ident,
                               (int)getpid(), level_names[level], ctx_request ? "[" : "",
                               ctx_request ? ctx_request : "", ctx_request ? "] " : "",
                               ctx_sandbox ? "[" : "", ctx_sandbox ? ctx_sandbox : "",
                               ctx_sandbox ? "] " : "");
                size_t l = strlen(line);
                if (l > 0)
                        line[l - 1] = '\0';
                (void)snprintf(line + strlen(line), sizeof(line) - strlen(line), "%s\n", msg);
        }
        (void)!write(STDERR_FILENO, line, strlen(line));
        errno = saved;
        return -(err ? err : EIO);
}
