/* SPDX-License-Identifier: MIT */
/*
 * client.c — libcove: errors, configuration, the HTTP core and the control-plane calls.
 */
#include "internal.h"

#include "lib/macro.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <strings.h>
#include <sys/stat.h>

#include "lib/banned.h" /* last */

/* ---- errors ------------------------------------------------------------------------------ */

void cove_error_free(struct cove_error **err)
{
        if (!err || !*err)
                return;
        free((*err)->message);
        free((*err)->request_id);
        free((*err)->code);
        free(*err);
        *err = NULL;
}

int error_set(struct cove_error **err, int kind, int http_status, int errnum, const char *fmt, ...)
{
        struct cove_error *e;
        va_list ap;

        if (!err || *err)
                return -errnum;
        e = xzalloc(sizeof(*e));
        va_start(ap, fmt);
        if (vasprintf(&e->message, fmt, ap) < 0)
                abort();
        va_end(ap);
        e->kind = kind;
        e->http_status = http_status;
        *err = e;
        return -errnum;
}

int error_network(struct cove_error **err, const char *url, CURLcode code, const char *errbuf)
{
        cleanup_free char *origin = xstrdup(url);
        char *p = strstr(origin, "://");
        int errnum = EHOSTUNREACH;

        /* Name the server, not the route: "cannot reach 'http://127.0.0.1:49982'". */
        if (p) {
                p = strchr(p + 3, '/');
                if (p)
                        *p = '\0';
        }
        if (code == CURLE_COULDNT_CONNECT)
                errnum = ECONNREFUSED;
        else if (code == CURLE_OPERATION_TIMEDOUT)
                errnum = ETIMEDOUT;
        return error_set(err, COVE_ERROR_NETWORK, 0, errnum, "cannot reach '%s': %s", origin,
                         errbuf && *errbuf ? errbuf : curl_easy_strerror(code));
}

int error_from_result(const struct http_result *r, const char *what, struct cove_error **err)
{
        json_t *root = NULL;
        const char *msg = NULL, *code = NULL, *rid = r->request_id;
        int kind = COVE_ERROR_API, errnum = EIO, ret;
        json_error_t jerr;

        if (r->body.len > 0)
                root = json_loadb(r->body.ptr, r->body.len, 0, &jerr);
        if (json_is_object(root)) {
                json_t *e = json_object_get(root, "error");

                msg = json_string_value(json_object_get(root, "message"));
                if (json_is_object(e)) {
                        const char *details = json_string_value(json_object_get(e, "details"));

                        code = json_string_value(json_object_get(e, "code"));
                        if (details && *details)
                                msg = details;
                        else if (!msg)
                                msg = json_string_value(json_object_get(e, "message"));
                } else if (json_is_string(e) && !msg) {
                        msg = json_string_value(e);
                }
                if (json_is_string(json_object_get(root, "request_id")))
                        rid = json_string_value(json_object_get(root, "request_id"));
        }
        if (r->status == 401) {
                kind = COVE_ERROR_AUTH;
                errnum = EACCES;
        } else if (r->status == 404) {
                kind = COVE_ERROR_NOT_FOUND;
                errnum = ENOENT;
        }
        if (msg)
                ret = error_set(err, kind, (int)r->status, errnum, "%s", msg);
        else
                ret = error_set(err, kind, (int)r->status, errnum, "%s: HTTP %ld", what, r->status);
        if (err && *err && (*err)->http_status == (int)r->status && !(*err)->request_id) {
                (*err)->request_id = rid ? xstrdup(rid) : NULL;
                (*err)->code = code ? xstrdup(code) : NULL;
        }
        json_decref(root);
        return ret;
}

/* ---- URL and configuration --------------------------------------------------------------- */

static bool has_suffix(const char *s, size_t n, const char *suffix)
{
        size_t k = strlen(suffix);

        return n >= k && memcmp(s + n - k, suffix, k) == 0;
}

char *cove_url_normalize(const char *url)
{
        size_t n;
        const char *host;

        if (!url)
                return NULL;
        if (strncmp(url, "http://", 7) == 0)
                host = url + 7;
        else if (strncmp(url, "https://", 8) == 0)
                host = url + 8;
        else
                return NULL;
        if (*host == '\0' || *host == '/')
                return NULL;
        n = strlen(url);
        while (n > 0 && url[n - 1] == '/')
                n--;
        if (has_suffix(url, n, "/api/v1") || has_suffix(url, n, "/api/sandbox/v1") ||
            has_suffix(url, n, "/api/v1/sandbox"))
                return xstrndup(url, n);
        return xasprintf("%.*s/api/v1", (int)n, url);
}

char *cove_config_path(void)
{
        const char *p = getenv("COVE_CONFIG");

        if (p && *p)
                return xstrdup(p);
        p = getenv("XDG_CONFIG_HOME");
        if (p && *p == '/')
                return xasprintf("%s/cove/config.json", p);
        p = getenv("HOME");
        return xasprintf("%s/.config/cove/config.json", p && *p ? p : ".");
}

/* The stored file as an object: {} when it does not exist. */
static int config_read(const char *path, json_t **ret, struct cove_error **err)
{
        json_error_t jerr;
        json_t *root;

        if (access(path, F_OK) < 0) {
                if (errno != ENOENT)
                        return error_set(err, COVE_ERROR_USAGE, 0, errno, "config '%s': %s", path,
                                         strerror(errno));
                *ret = json_object();
                return 0;
        }
        root = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
        if (!json_is_object(root)) {
                json_decref(root);
                return error_set(err, COVE_ERROR_USAGE, 0, EINVAL,
                                 "config '%s' is not a JSON object: %s (fix or remove it)", path,
                                 jerr.text);
        }
        *ret = root;
        return 0;
}

static const char *getenv_nonempty(const char *name)
{
        const char *v = getenv(name);

        return v && *v ? v : NULL;
}

void cove_config_release(struct cove_config *cfg)
{
        free(cfg->url);
        free(cfg->api_key);
        free(cfg->project_id);
        free(cfg->config_path);
        memset(cfg, 0, sizeof(*cfg));
}

int cove_config_load(struct cove_config *cfg, const char *flag_url, const char *flag_key,
                     const char *flag_project, struct cove_error **err)
{
        json_t *stored = NULL;
        const char *url = NULL, *key = NULL, *v;
        int r;

        memset(cfg, 0, sizeof(*cfg));
        cfg->config_path = cove_config_path();
        r = config_read(cfg->config_path, &stored, err);
        if (r < 0) {
                cove_config_release(cfg); /* a failure leaves nothing to release */
                return r;
        }

        if (flag_url) {
                url = flag_url;
                cfg->url_source = "flag";
        } else if ((v = getenv_nonempty("COVE_URL")) ||
                   (v = getenv_nonempty("SEACLOUD_BASE_URL"))) {
                url = v;
                cfg->url_source = "env";
        } else if ((v = json_string_value(json_object_get(stored, "url"))) && *v) {
                url = v;
                cfg->url_source = "config";
        } else {
                url = COVE_DEFAULT_URL;
                cfg->url_source = "default";
        }
        cfg->url = cove_url_normalize(url);
        if (!cfg->url) {
                r = error_set(err, COVE_ERROR_USAGE, 0, EINVAL,
                              "invalid server URL '%s' (from %s): expected http://HOST:PORT", url,
                              cfg->url_source);
                json_decref(stored);
                cove_config_release(cfg);
                return r;
        }

        if (flag_key) {
                key = flag_key;
                cfg->key_source = "flag";
        } else if ((v = getenv_nonempty("COVE_API_KEY")) ||
                   (v = getenv_nonempty("SEACLOUD_API_KEY"))) {
                key = v;
                cfg->key_source = "env";
        } else if ((v = json_string_value(json_object_get(stored, "apiKey"))) && *v) {
                key = v;
                cfg->key_source = "config";
        }
        cfg->api_key = key ? xstrdup(key) : NULL;

        v = flag_project ? flag_project : getenv_nonempty("COVE_PROJECT_ID");
        cfg->project_id = v ? xstrdup(v) : NULL;
        json_decref(stored);
        return 0;
}

/* mkdir -p for the directory part of path, mode 0700 for what it creates. */
static int mkdir_parents(const char *path)
{
        cleanup_free char *p = xstrdup(path);

        for (char *s = strchr(p + 1, '/'); s; s = strchr(s + 1, '/')) {
                *s = '\0';
                if (mkdir(p, 0700) < 0 && errno != EEXIST)
                        return -errno;
                *s = '/';
        }
        return 0;
}

int cove_config_store(const char *path, const char *url, const char *api_key, bool remove_key,
                      struct cove_error **err)
{
        cleanup_free char *tmp = NULL, *text = NULL;
        cleanup_close int fd = -1;
        json_t *root = NULL;
        size_t len;
        int r;

        r = config_read(path, &root, err);
        if (r < 0)
                return r;
        if (url)
                json_object_set_new(root, "url", json_string(url));
        if (api_key)
                json_object_set_new(root, "apiKey", json_string(api_key));
        else if (remove_key)
                json_object_del(root, "apiKey");
        text = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        json_decref(root);
        if (!text)
                return error_set(err, COVE_ERROR_USAGE, 0, ENOMEM, "serialise config");
        len = strlen(text);

        r = mkdir_parents(path);
        if (r < 0)
                return error_set(err, COVE_ERROR_USAGE, 0, -r, "create directory for '%s': %s",
                                 path, strerror(-r));
        tmp = xasprintf("%s.tmp.%d", path, (int)getpid());
        fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd < 0)
                return error_set(err, COVE_ERROR_USAGE, 0, errno, "write config '%s': %s", tmp,
                                 strerror(errno));
        /* umask cannot widen 0600, but an old file of the same name could have: be explicit. */
        if (fchmod(fd, 0600) < 0 || TEMP_FAILURE_RETRY(write(fd, text, len)) != (long)len ||
            TEMP_FAILURE_RETRY(write(fd, "\n", 1)) != 1 || fsync(fd) < 0) {
                r = errno ? errno : EIO;
                (void)unlink(tmp);
                return error_set(err, COVE_ERROR_USAGE, 0, r, "write config '%s': %s", tmp,
                                 strerror(r));
        }
        if (rename(tmp, path) < 0) {
                r = errno;
                (void)unlink(tmp);
                return error_set(err, COVE_ERROR_USAGE, 0, r, "rename config to '%s': %s", path,
                                 strerror(r));
        }
        return 0;
}

/* ---- the HTTP core ----------------------------------------------------------------------- */

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;

static void curl_init_once(void)
{
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
                abort();
}

struct cove_client *cove_client_new(const char *api_url, const char *api_key,
                                    const char *project_id)
{
        struct cove_client *c;
        char *url = cove_url_normalize(api_url);
        const char *p;

        if (!url)
                return NULL;
        pthread_once(&curl_once, curl_init_once);
        c = xzalloc(sizeof(*c));
        c->api_url = url;
        p = strstr(url, "://") + 3;
        p = strchr(p, '/');
        c->api_path = xstrdup(p ? p : "");
        c->api_key = api_key ? xstrdup(api_key) : NULL;
        c->project_id = project_id ? xstrdup(project_id) : NULL;
        c->timeout_s = 180;
        c->easy = curl_easy_init();
        if (!c->easy)
                abort();
        return c;
}

struct cove_client *cove_client_free(struct cove_client *c)
{
        if (!c)
                return NULL;
        curl_easy_cleanup(c->easy);
        free(c->api_url);
        free(c->api_path);
        free(c->api_key);
        free(c->project_id);
        free(c);
        return NULL;
}

const char *cove_client_url(const struct cove_client *c)
{
        return c->api_url;
}

const char *cove_client_api_path(const struct cove_client *c)
{
        return c->api_path;
}

void cove_client_set_timeout(struct cove_client *c, long seconds)
{
        c->timeout_s = seconds < 0 ? 0 : seconds;
}

void http_result_release(struct http_result *r)
{
        buf_release(&r->body);
        free(r->request_id);
        free(r->next_token);
        memset(r, 0, sizeof(*r));
}

struct curl_slist *header_add(struct curl_slist *l, const char *name, const char *value)
{
        cleanup_free char *h = xasprintf("%s: %s", name, value);
        struct curl_slist *n = curl_slist_append(l, h);

        if (!n)
                abort();
        return n;
}

int url_escape(struct buf *b, const char *s)
{
        static const char hex[] = "0123456789ABCDEF";

        for (; *s; s++) {
                unsigned char ch = (unsigned char)*s;
                int r;

                if ((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
                    (ch >= '0' && ch <= '9') || ch == '-' || ch == '.' || ch == '_' || ch == '~')
                        r = buf_addc(b, (char)ch);
                else
                        r = buf_addf(b, "%%%c%c", hex[ch >> 4], hex[ch & 15]);
                if (r < 0)
                        return r;
        }
        return 0;
}

struct http_sink {
        CURL *easy;
        const struct http_call *call;
        struct http_result *res;
};

static size_t http_write(char *p, size_t size, size_t nmemb, void *ud)
{
        struct http_sink *s = ud;
        size_t n = size * nmemb;
        long status = 0;

        (void)curl_easy_getinfo(s->easy, CURLINFO_RESPONSE_CODE, &status);
        if (s->call->sink && status >= 200 && status < 300) {
                if (fwrite(p, 1, n, s->call->sink) != n) {
                        s->res->sink_failed = true;
                        return 0;
                }
                return n;
        }
        if (buf_add(&s->res->body, p, n) < 0)
                return 0;
        return n;
}

/* "X-Next-Token: MjA\r\n" → value without surrounding blanks, or NULL for another header. */
static char *header_value(const char *line, size_t n, const char *name)
{
        size_t k = strlen(name);

        if (n <= k || strncasecmp(line, name, k) != 0 || line[k] != ':')
                return NULL;
        line += k + 1;
        n -= k + 1;
        while (n > 0 && (*line == ' ' || *line == '\t')) {
                line++;
                n--;
        }
        while (n > 0 && (line[n - 1] == '\r' || line[n - 1] == '\n' || line[n - 1] == ' '))
                n--;
        return xstrndup(line, n);
}

static size_t http_header(char *p, size_t size, size_t nmemb, void *ud)
{
        struct http_result *r = ud;
        size_t n = size * nmemb;
        char *v;

        if ((v = header_value(p, n, "X-Request-ID"))) {
                free(r->request_id);
                r->request_id = v;
        } else if ((v = header_value(p, n, "X-Next-Token"))) {
                free(r->next_token);
                r->next_token = *v ? v : (free(v), NULL);
        } else if ((v = header_value(p, n, "X-Has-Next"))) {
                r->has_next = streq(v, "true") || streq(v, "1");
                free(v);
        }
        return n;
}

void http_setup(CURL *easy)
{
        curl_easy_reset(easy);
        (void)curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
        (void)curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT, 10L);
        (void)curl_easy_setopt(easy, CURLOPT_TCP_KEEPALIVE, 1L);
        (void)curl_easy_setopt(easy, CURLOPT_USERAGENT, "cove/" COVE_VERSION);
        (void)curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https");
}

int http_call(CURL *easy, const struct http_call *call, struct http_result *ret,
              struct cove_error **err)
{
        struct http_sink sink = { .easy = easy, .call = call, .res = ret };
        char errbuf[CURL_ERROR_SIZE] = "";
        CURLcode rc;

        memset(ret, 0, sizeof(*ret));
        buf_init(&ret->body, call->max ? call->max : COVE_MAX_RESPONSE);
        http_setup(easy);
        (void)curl_easy_setopt(easy, CURLOPT_URL, call->url);
        (void)curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, errbuf);
        (void)curl_easy_setopt(easy, CURLOPT_CUSTOMREQUEST, call->method);
        if (streq(call->method, "GET"))
                (void)curl_easy_setopt(easy, CURLOPT_HTTPGET, 1L);
        else if (streq(call->method, "HEAD"))
                (void)curl_easy_setopt(easy, CURLOPT_NOBODY, 1L);
        if (call->source) {
                (void)curl_easy_setopt(easy, CURLOPT_POST, 1L);
                (void)curl_easy_setopt(easy, CURLOPT_READFUNCTION, fread);
                (void)curl_easy_setopt(easy, CURLOPT_READDATA, call->source);
                (void)curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE,
                                       (curl_off_t)call->source_len);
        } else if (call->has_body) {
                (void)curl_easy_setopt(easy, CURLOPT_POSTFIELDS, call->body ? call->body : "");
                (void)curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE,
                                       (curl_off_t)call->body_len);
        } else if (!streq(call->method, "GET") && !streq(call->method, "HEAD") &&
                   !streq(call->method, "DELETE")) {
                /* A POST without a body: Content-Length: 0 and no Content-Type. */
                (void)curl_easy_setopt(easy, CURLOPT_POSTFIELDS, "");
                (void)curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)0);
        }
        (void)curl_easy_setopt(easy, CURLOPT_HTTPHEADER, call->headers);
        (void)curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, http_write);
        (void)curl_easy_setopt(easy, CURLOPT_WRITEDATA, &sink);
        (void)curl_easy_setopt(easy, CURLOPT_HEADERFUNCTION, http_header);
        (void)curl_easy_setopt(easy, CURLOPT_HEADERDATA, ret);
        (void)curl_easy_setopt(easy, CURLOPT_TIMEOUT, call->timeout_s);

        rc = curl_easy_perform(easy);
        (void)curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &ret->status);
        if (rc == CURLE_WRITE_ERROR && ret->sink_failed) {
                int e = errno ? errno : EIO;

                http_result_release(ret);
                return error_set(err, COVE_ERROR_USAGE, 0, e, "write output: %s", strerror(e));
        }
        if (rc == CURLE_WRITE_ERROR && ret->status > 0) {
                long st = ret->status;

                http_result_release(ret);
                return error_set(err, COVE_ERROR_API, (int)st, E2BIG,
                                 "response from '%s' is larger than %zu bytes", call->url,
                                 call->max ? call->max : (size_t)COVE_MAX_RESPONSE);
        }
        if (rc != CURLE_OK) {
                http_result_release(ret);
                return error_network(err, call->url, rc, errbuf);
        }
        return 0;
}

/* ---- API calls --------------------------------------------------------------------------- */

static int query_add_value(struct buf *b, const char *key, const json_t *v)
{
        char num[DECIMAL_STR_MAX(json_int_t)];
        const char *s;
        int r;

        if (json_is_string(v))
                s = json_string_value(v);
        else if (json_is_integer(v)) {
                (void)snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT, json_integer_value(v));
                s = num;
        } else if (json_is_boolean(v))
                s = json_is_true(v) ? "true" : "false";
        else
                return 0; /* null and others: absent */
        if (b->len > 0 && (r = buf_addc(b, '&')) < 0)
                return r;
        if ((r = url_escape(b, key)) < 0 || (r = buf_addc(b, '=')) < 0)
                return r;
        return url_escape(b, s);
}

char *cove_query_string(const json_t *query)
{
        cleanup_buf struct buf b;
        const char *key;
        json_t *v;

        buf_init(&b, 1024 * 1024);
        json_object_foreach ((json_t *)query, key, v) {
                if (json_is_array(v)) {
                        size_t i;
                        json_t *e;

                        json_array_foreach (v, i, e)
                                if (query_add_value(&b, key, e) < 0)
                                        return NULL;
                } else if (query_add_value(&b, key, v) < 0) {
                        return NULL;
                }
        }
        return xstrdup(buf_str(&b));
}

void cove_response_release(struct cove_response *r)
{
        json_decref(r->body);
        free(r->request_id);
        free(r->next_token);
        memset(r, 0, sizeof(*r));
}

int cove_put_url(struct cove_client *c, const char *url, const void *data, size_t len,
                 const char *content_type, struct cove_error **err)
{
        struct curl_slist *h = NULL;
        struct http_result res;
        struct http_call call = {
                .method = "PUT",
                .url = url,
                .body = data,
                .body_len = len,
                .has_body = true,
                .max = COVE_MAX_RESPONSE,
                .timeout_s = c->timeout_s,
        };
        int r;

        h = header_add(h, "Expect", "");
        if (content_type)
                h = header_add(h, "Content-Type", content_type);
        call.headers = h;
        r = http_call(c->easy, &call, &res, err);
        curl_slist_free_all(h);
        if (r < 0)
                return r;
        if (res.status < 200 || res.status >= 300)
                r = error_from_result(&res, "PUT", err);
        http_result_release(&res);
        return r < 0 ? r : 0;
}

int cove_api_call(struct cove_client *c, const char *method, const char *path, const json_t *query,
                  const json_t *body, struct cove_response *ret, struct cove_error **err)
{
        cleanup_free char *qs = NULL, *url = NULL, *bearer = NULL, *text = NULL;
        struct curl_slist *h = NULL;
        struct http_result res;
        struct http_call call = {
                .method = method,
                .max = COVE_MAX_RESPONSE,
                .timeout_s = c->timeout_s,
        };
        json_t *parsed = NULL;
        int r;

        if (query && json_object_size(query) > 0) {
                qs = cove_query_string(query);
                if (!qs)
                        return error_set(err, COVE_ERROR_USAGE, 0, E2BIG, "query too long");
        }
        url = xasprintf("%s%s%s%s", c->api_url, path, qs && *qs ? "?" : "", qs ? qs : "");
        call.url = url;
        h = header_add(h, "Accept", "application/json");
        h = header_add(h, "Expect", "");
        if (c->api_key) {
                bearer = xasprintf("Bearer %s", c->api_key);
                h = header_add(h, "X-API-Key", c->api_key);
                h = header_add(h, "Authorization", bearer);
        }
        if (c->project_id)
                h = header_add(h, "X-Project-ID", c->project_id);
        if (body) {
                text = json_dumps(body, JSON_COMPACT | JSON_PRESERVE_ORDER);
                if (!text) {
                        curl_slist_free_all(h);
                        return error_set(err, COVE_ERROR_USAGE, 0, EINVAL,
                                         "cannot serialise request body");
                }
                h = header_add(h, "Content-Type", "application/json");
                call.body = text;
                call.body_len = strlen(text);
                call.has_body = true;
        }
        call.headers = h;
        r = http_call(c->easy, &call, &res, err);
        curl_slist_free_all(h);
        if (r < 0)
                return r;
        if (res.status < 200 || res.status >= 300) {
                r = error_from_result(&res, method, err);
                http_result_release(&res);
                return r;
        }
        if (res.body.len > 0) {
                json_error_t jerr;

                parsed = json_loadb(res.body.ptr, res.body.len, 0, &jerr);
                if (!parsed) {
                        r = error_set(err, COVE_ERROR_API, (int)res.status, EBADMSG,
                                      "%s %s: response is not JSON: %s", method, path, jerr.text);
                        http_result_release(&res);
                        return r;
                }
        }
        if (ret) {
                ret->status = res.status;
                ret->body = parsed;
                ret->request_id = TAKE_PTR(res.request_id);
                ret->next_token = TAKE_PTR(res.next_token);
                ret->has_next = res.has_next;
        } else {
                json_decref(parsed);
        }
        http_result_release(&res);
        return 0;
}

int cove_server_version(struct cove_client *c, char **ret_version, struct cove_error **err)
{
        cleanup_free char *url = xasprintf("%s/metrics", c->api_url);
        cleanup_free char *bearer = NULL;
        struct curl_slist *h = NULL;
        struct http_result res;
        struct http_call call = {
                .method = "GET", .url = url, .max = COVE_MAX_RESPONSE, .timeout_s = c->timeout_s
        };
        static const char marker[] = "cove_build_info{version=\"";

        if (c->api_key) {
                bearer = xasprintf("Bearer %s", c->api_key);
                h = header_add(h, "X-API-Key", c->api_key);
                h = header_add(h, "Authorization", bearer);
        }
        call.headers = h;
        int r = http_call(c->easy, &call, &res, err);
        curl_slist_free_all(h);
        if (r < 0)
                return r;
        if (res.status < 200 || res.status >= 300) {
                r = error_from_result(&res, "GET", err);
                http_result_release(&res);
                return r;
        }
        const char *p = strstr(buf_str(&res.body), marker);
        const char *e = p ? strchr(p + sizeof(marker) - 1, '"') : NULL;
        if (!p || !e) {
                http_result_release(&res);
                return error_set(err, COVE_ERROR_API, 200, EBADMSG,
                                 "GET /metrics has no cove_build_info");
        }
        p += sizeof(marker) - 1;
        *ret_version = xstrndup(p, (size_t)(e - p));
        http_result_release(&res);
        return 0;
}

/* ---- sandboxes --------------------------------------------------------------------------- */

static int check_id(const char *id, struct cove_error **err)
{
        if (!id || !*id || strchr(id, '/') || strchr(id, '?') || strchr(id, '#'))
                return error_set(err, COVE_ERROR_USAGE, 0, EINVAL, "invalid sandbox ID '%s'",
                                 id ? id : "");
        return 0;
}

/* The body of a successful call; an empty body is an error where one is expected. */
static int take_body(struct cove_response *res, const char *what, json_t **ret,
                     struct cove_error **err)
{
        if (!res->body) {
                cove_response_release(res);
                return error_set(err, COVE_ERROR_API, (int)res->status, EBADMSG,
                                 "%s: empty response", what);
        }
        if (ret)
                *ret = TAKE_PTR(res->body);
        cove_response_release(res);
        return 0;
}

int cove_sandbox_create(struct cove_client *c, const json_t *request, json_t **ret_sandbox,
                        struct cove_error **err)
{
        struct cove_response res = {};
        json_t *empty = NULL;
        int r;

        if (!request)
                request = empty = json_object();
        r = cove_api_call(c, "POST", "/sandboxes", NULL, request, &res, err);
        json_decref(empty);
        if (r < 0)
                return r;
        return take_body(&res, "create sandbox", ret_sandbox, err);
}

int cove_sandbox_list(struct cove_client *c, const json_t *query, json_t **ret_items,
                      char **ret_next_token, struct cove_error **err)
{
        struct cove_response res = {};
        int r;

        r = cove_api_call(c, "GET", "/sandboxes", query, NULL, &res, err);
        if (r < 0)
                return r;
        if (!json_is_array(res.body)) {
                cove_response_release(&res);
                return error_set(err, COVE_ERROR_API, 200, EBADMSG,
                                 "list sandboxes: response is not an array");
        }
        if (ret_next_token)
                *ret_next_token = res.has_next ? TAKE_PTR(res.next_token) : NULL;
        if (ret_items)
                *ret_items = TAKE_PTR(res.body);
        cove_response_release(&res);
        return 0;
}

int cove_sandbox_get(struct cove_client *c, const char *id, json_t **ret_detail,
                     struct cove_error **err)
{
        cleanup_free char *path = NULL;
        struct cove_response res = {};
        int r;

        if ((r = check_id(id, err)) < 0)
                return r;
        path = xasprintf("/sandboxes/%s", id);
        r = cove_api_call(c, "GET", path, NULL, NULL, &res, err);
        if (r < 0)
                return r;
        return take_body(&res, "get sandbox", ret_detail, err);
}

static int sandbox_action(struct cove_client *c, const char *method, const char *id,
                          const char *action, const json_t *body, struct cove_response *ret,
                          struct cove_error **err)
{
        cleanup_free char *path = NULL;
        int r;

        if ((r = check_id(id, err)) < 0)
                return r;
        path = xasprintf("/sandboxes/%s%s%s", id, action ? "/" : "", action ? action : "");
        return cove_api_call(c, method, path, NULL, body, ret, err);
}

int cove_sandbox_delete(struct cove_client *c, const char *id, struct cove_error **err)
{
        return sandbox_action(c, "DELETE", id, NULL, NULL, NULL, err);
}

int cove_sandbox_connect(struct cove_client *c, const char *id, int timeout_s, json_t **ret_sandbox,
                         struct cove_error **err)
{
        struct cove_response res = {};
        json_t *body = json_pack("{s:i}", "timeout", timeout_s);
        int r;

        r = sandbox_action(c, "POST", id, "connect", body, &res, err);
        json_decref(body);
        if (r < 0)
                return r;
        return take_body(&res, "connect sandbox", ret_sandbox, err);
}

int cove_sandbox_pause(struct cove_client *c, const char *id, struct cove_error **err)
{
        return sandbox_action(c, "POST", id, "pause", NULL, NULL, err);
}

int cove_sandbox_set_timeout(struct cove_client *c, const char *id, int timeout_s,
                             struct cove_error **err)
{
        json_t *body = json_pack("{s:i}", "timeout", timeout_s);
        int r = sandbox_action(c, "POST", id, "timeout", body, NULL, err);

        json_decref(body);
        return r;
}

int cove_sandbox_refresh(struct cove_client *c, const char *id, int duration_s,
                         struct cove_error **err)
{
        json_t *body = duration_s >= 0 ? json_pack("{s:i}", "duration", duration_s) : NULL;
        int r = sandbox_action(c, "POST", id, "refreshes", body, NULL, err);

        json_decref(body);
        return r;
}

int cove_sandbox_logs(struct cove_client *c, const char *id, const json_t *query, json_t **ret_logs,
                      struct cove_error **err)
{
        cleanup_free char *path = NULL;
        struct cove_response res = {};
        int r;

        if ((r = check_id(id, err)) < 0)
                return r;
        path = xasprintf("/sandboxes/%s/logs", id);
        r = cove_api_call(c, "GET", path, query, NULL, &res, err);
        if (r < 0)
                return r;
        return take_body(&res, "sandbox logs", ret_logs, err);
}
