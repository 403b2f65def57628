/* SPDX-License-Identifier: MIT */
/*
 * internal.h — what client.c shares with the runtime half of libcove (runtime.c). Not
 * installed.
 *
 * http_call() is the one place that drives libcurl for request/response calls: it fills a
 * `struct http_result` (body buffered up to `max`, or copied to `sink` on 2xx) and turns
 * transport failures into COVE_ERROR_NETWORK errors. HTTP error statuses are *not* errors at
 * this level: callers pass the result to error_from_result().
 */
#pragma once

#include "libcove/cove.h"
#include "lib/buf.h"

#include <curl/curl.h>

struct cove_client {
        char *api_url;    /* owned, normalised: "http://host:port/api/v1" */
        char *api_path;   /* owned, "/api/v1" */
        char *api_key;    /* owned, may be NULL */
        char *project_id; /* owned, may be NULL */
        CURL *easy;       /* owned; ordinary calls reuse it (keep-alive) */
        long timeout_s;
};

/* Response bodies we buffer are capped (spec README §3.1: JSON bodies ≤ 64 MiB). */
#define COVE_MAX_RESPONSE (64 * 1024 * 1024)

struct http_call {
        const char *method;
        const char *url;
        struct curl_slist *headers; /* borrowed */
        const void *body;           /* borrowed; sent when has_body */
        size_t body_len;
        bool has_body;
        FILE *source;       /* when not NULL, the body is read from it as it is sent */
        int64_t source_len; /* its length, or -1 when unknown (sent chunked) */
        FILE *sink;         /* when not NULL, a 2xx body is written here instead of buffered */
        size_t max;         /* cap on the buffered body */
        long timeout_s;
};

struct http_result {
        long status;
        struct buf body;
        char *request_id; /* owned */
        char *next_token; /* owned */
        bool has_next;
        bool sink_failed;
};

void http_result_release(struct http_result *r);

/* 0 when an HTTP answer (of any status) arrived; < 0 with a network error otherwise. */
int http_call(CURL *easy, const struct http_call *call, struct http_result *ret,
              struct cove_error **err);

/* Common libcurl options on a fresh or reset handle. */
void http_setup(CURL *easy);

/* Records an HTTP error answer in *err; returns its negative errno (-EIO, -ENOENT, -EACCES). */
int error_from_result(const struct http_result *r, const char *what, struct cove_error **err);

/* Stores a new error unless err is NULL or already set; returns -errnum. */
int error_set(struct cove_error **err, int kind, int http_status, int errnum, const char *fmt, ...)
        __attribute__((format(printf, 5, 6)));

/* A network error for url (the origin is named, "make run" is suggested by the CLI). */
int error_network(struct cove_error **err, const char *url, CURLcode code, const char *errbuf);

/* Appends "Name: value" to a header list (aborts on OOM). */
struct curl_slist *header_add(struct curl_slist *l, const char *name, const char *value);

/* Percent-encodes s into b (RFC 3986 unreserved characters kept). */
int url_escape(struct buf *b, const char *s);
