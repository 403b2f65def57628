/* SPDX-License-Identifier: MIT */
#include "build/dockerfile.h"

#include "lib/buf.h"
#include "lib/json.h"
#include "lib/macro.h"
#include "lib/parse.h"

#include <ctype.h>
#include <strings.h>

#include "lib/banned.h"

#define EXPAND_DEPTH_MAX 16
#define WORDS_MAX        4096

/* ---- expansion (Docker's shell lexer, the part Dockerfiles use) ---- */

struct expander {
        char esc;
        df_lookup_fn lookup;
        void (*on_unset)(void *ud, const char *name); /* a plain $VAR / ${VAR} was unset */
        void *ud;
        struct cove_err **err;
};

static bool is_space(char c)
{
        return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

static bool is_name_start(char c)
{
        return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_';
}

static bool is_name_char(char c)
{
        return is_name_start(c) || (c >= '0' && c <= '9');
}

static int add(struct expander *x, struct buf *out, const char *p, size_t n)
{
        if (buf_add(out, p, n) < 0)
                return cove_err_set(x->err, E2BIG, "expanded value is longer than %d bytes",
                                    DOCKERFILE_EXPAND_MAX);
        return 0;
}

static int expand_until(struct expander *x, const char **p, char stop, bool split, int depth,
                        struct buf *out, bool *ret_any);

/* After '$'. */
static int expand_dollar(struct expander *x, const char **p, int depth, struct buf *out)
{
        const char *s = *p;

        if (*s == '{') {
                const char *name = ++s;
                while (is_name_char(*s))
                        s++;
                size_t nl = (size_t)(s - name);
                if (nl == 0)
                        return cove_err_set(x->err, EINVAL, "bad substitution '${%.20s'", name);
                cleanup_free char *n = xstrndup(name, nl);
                const char *v = x->lookup ? x->lookup(x->ud, n) : NULL;
                if (*s == '}') {
                        *p = s + 1;
                        if (!v && x->on_unset)
                                x->on_unset(x->ud, n);
                        return v ? add(x, out, v, strlen(v)) : 0;
                }
                bool colon = *s == ':';
                if (colon)
                        s++;
                char mod = *s;
                if (mod != '-' && mod != '+' && mod != '?')
                        return cove_err_set(x->err, EINVAL, "bad substitution '${%.40s'", name);
                s++;
                if (depth >= EXPAND_DEPTH_MAX)
                        return cove_err_set(x->err, EINVAL, "substitutions nested too deeply");
                cleanup_buf struct buf word;
                buf_init(&word, DOCKERFILE_EXPAND_MAX);
                int r = expand_until(x, &s, '}', false, depth + 1, &word, NULL);
                if (r < 0)
                        return r;
                if (*s != '}')
                        return cove_err_set(x->err, EINVAL, "missing '}' in '${%.40s'", name);
                *p = s + 1;
                bool set = v && (!colon || *v);
                switch (mod) {
                case '-':
                        return set ? add(x, out, v, strlen(v))
                                   : add(x, out, buf_str(&word), word.len);
                case '+':
                        return set ? add(x, out, buf_str(&word), word.len) : 0;
                default:
                        if (!set)
                                return cove_err_set(x->err, EINVAL, "%s: %s", n,
                                                    word.len ? buf_str(&word) : "is not set");
                        return add(x, out, v, strlen(v));
                }
        }
        if (is_name_start(*s)) {
                const char *name = s;
                while (is_name_char(*s))
                        s++;
                cleanup_free char *n = xstrndup(name, (size_t)(s - name));
                const char *v = x->lookup ? x->lookup(x->ud, n) : NULL;
                *p = s;
                if (!v && x->on_unset)
                        x->on_unset(x->ud, n);
                return v ? add(x, out, v, strlen(v)) : 0;
        }
        return add(x, out, "$", 1); /* a lone '$' is literal */
}

/* Processes *p until the unquoted `stop` (or its end; in split mode also unquoted
 * whitespace). *ret_any is set when something (even "") made up a word. */
static int expand_until(struct expander *x, const char **p, char stop, bool split, int depth,
                        struct buf *out, bool *ret_any)
{
        const char *s = *p;
        bool any = false;
        int r;

        while (*s && *s != stop) {
                char c = *s;
                if (split && is_space(c))
                        break;
                any = true;
                if (c == x->esc) {
                        s++;
                        if (!*s)
                                break; /* an escape at the end is dropped */
                        if ((r = add(x, out, s, 1)) < 0)
                                return r;
                        s++;
                } else if (c == '\'') {
                        const char *end = strchr(s + 1, '\'');
                        if (!end)
                                return cove_err_set(x->err, EINVAL,
                                                    "unexpected end of statement while looking for "
                                                    "matching single-quote");
                        if ((r = add(x, out, s + 1, (size_t)(end - s - 1))) < 0)
                                return r;
                        s = end + 1;
                } else if (c == '"') {
                        s++;
                        for (;;) {
                                if (!*s)
                                        return cove_err_set(x->err, EINVAL,
                                                            "unexpected end of statement while "
                                                            "looking for matching double-quote");
                                if (*s == '"') {
                                        s++;
                                        break;
                                }
                                if (*s == '$') {
                                        s++;
                                        if ((r = expand_dollar(x, &s, depth, out)) < 0)
                                                return r;
                                        continue;
                                }
                                if (*s == x->esc && (s[1] == '"' || s[1] == '$' || s[1] == x->esc))
                                        s++;
                                if ((r = add(x, out, s, 1)) < 0)
                                        return r;
                                s++;
                        }
                } else if (c == '$') {
                        s++;
                        if ((r = expand_dollar(x, &s, depth, out)) < 0)
                                return r;
                } else {
                        if ((r = add(x, out, s, 1)) < 0)
                                return r;
                        s++;
                }
        }
        *p = s;
        if (ret_any)
                *ret_any = any;
        return 0;
}

static int expand_words(const char *raw, char escape, bool split, df_lookup_fn lookup,
                        void (*on_unset)(void *, const char *), void *ud, char ***ret,
                        struct cove_err **err)
{
        struct expander x = {
                .esc = escape, .lookup = lookup, .on_unset = on_unset, .ud = ud, .err = err
        };
        const char *p = raw;
        char **v = xzalloc(sizeof(char *));
        size_t n = 0;
        int r;

        for (;;) {
                cleanup_buf struct buf w;
                bool any = false;

                buf_init(&w, DOCKERFILE_EXPAND_MAX);
                if (split)
                        while (is_space(*p))
                                p++;
                if (!*p && (split || n > 0))
                        break;
                r = expand_until(&x, &p, '\0', split, 0, &w, &any);
                if (r < 0) {
                        strv_free(v);
                        return r;
                }
                if (n + 2 > WORDS_MAX) {
                        strv_free(v);
                        return cove_err_set(err, E2BIG, "too many words");
                }
                v = xrealloc(v, (n + 2) * sizeof(char *));
                v[n++] = w.len ? buf_take(&w, NULL) : xstrdup("");
                v[n] = NULL;
                if (!split)
                        break;
        }
        *ret = v;
        return 0;
}

int dockerfile_expand(const char *raw, char escape, bool split, df_lookup_fn lookup, void *ud,
                      char ***ret, struct cove_err **err)
{
        return expand_words(raw, escape, split, lookup, NULL, ud, ret, err);
}

/* Splits raw into words at unquoted whitespace, keeping quotes and escapes (Docker's
 * parseWords): used for ENV/ARG name=value lists and flags. */
static char **split_raw(const char *raw, char esc)
{
        char **v = xzalloc(sizeof(char *));
        size_t n = 0;
        const char *p = raw;

        for (;;) {
                while (is_space(*p))
                        p++;
                if (!*p || n + 2 > WORDS_MAX)
                        break;
                const char *start = p;
                char quote = 0;
                while (*p) {
                        if (*p == esc && p[1]) {
                                p += 2;
                                continue;
                        }
                        if (quote) {
                                if (*p == quote)
                                        quote = 0;
                        } else if (*p == '"' || *p == '\'') {
                                quote = *p;
                        } else if (is_space(*p)) {
                                break;
                        }
                        p++;
                }
                v = xrealloc(v, (n + 2) * sizeof(char *));
                v[n++] = xstrndup(start, (size_t)(p - start));
                v[n] = NULL;
        }
        return v;
}

char *shell_quote_join(char *const *argv)
{
        cleanup_buf struct buf b;

        buf_init(&b, SIZE_MAX / 2);
        for (size_t i = 0; argv[i]; i++) {
                (void)buf_adds(&b, i ? " '" : "'");
                for (const char *c = argv[i]; *c; c++)
                        (void)(*c == '\'' ? buf_adds(&b, "'\\''") : buf_addc(&b, *c));
                (void)buf_addc(&b, '\'');
        }
        return b.len ? buf_take(&b, NULL) : xstrdup("");
}

/* ---- parsing ---- */

static void instr_release(struct df_instr *in)
{
        free(in->raw);
        strv_free(in->json);
        free(in->chown);
}

void dockerfile_free(struct dockerfile *df)
{
        if (!df)
                return;
        free(df->from);
        free(df->stage);
        strv_free(df->global_args);
        for (size_t i = 0; i < df->n_instrs; i++)
                instr_release(&df->instrs[i]);
        free(df->instrs);
        free(df->start_cmd);
        free(df);
}

/* JSON form: a JSON array of strings, else NULL (shell form). */
static char **parse_json_form(const char *s)
{
        json_t *j = NULL;
        char **v;
        size_t i;
        json_t *e;

        while (is_space(*s))
                s++;
        if (*s != '[' || json_parse(s, strlen(s), false, &j, NULL) < 0)
                return NULL;
        if (!json_is_array(j)) {
                json_decref(j);
                return NULL;
        }
        json_array_foreach (j, i, e)
                if (!json_is_string(e) || strlen(json_string_value(e)) != json_string_length(e)) {
                        json_decref(j);
                        return NULL;
                }
        v = xzalloc((json_array_size(j) + 1) * sizeof(char *));
        json_array_foreach (j, i, e)
                v[i] = xstrdup(json_string_value(e));
        json_decref(j);
        return v;
}

struct parser {
        struct dockerfile *df;
        size_t cap;
        int froms;
        char **entrypoint_exec, **cmd_exec;
        char *entrypoint_shell, *cmd_shell;
        bool has_entrypoint, has_cmd;
};

static const char *global_lookup(void *ud, const char *name)
{
        struct dockerfile *df = ud;
        size_t nl = strlen(name);
        const char *found = NULL;
        for (char **a = df->global_args; a && *a; a++)
                if (strncmp(*a, name, nl) == 0 && (*a)[nl] == '=')
                        found = *a + nl + 1;
        return found;
}

/* Leading "--name[=value]" flags; *rest points after them. */
static int take_flags(const char *kw, int line, char esc, const char *args, const char **rest,
                      char **ret_chown, bool allow_chown, bool allow_platform,
                      struct cove_err **err)
{
        const char *p = args;

        (void)esc;
        for (;;) {
                while (is_space(*p))
                        p++;
                if (strncmp(p, "--", 2) != 0)
                        break;
                const char *start = p;
                while (*p && !is_space(*p))
                        p++;
                size_t n = (size_t)(p - start);
                if (allow_chown && n > 8 && strncmp(start, "--chown=", 8) == 0) {
                        free(*ret_chown);
                        *ret_chown = xstrndup(start + 8, n - 8);
                        continue;
                }
                if (allow_platform && n > 11 && strncmp(start, "--platform=", 11) == 0)
                        continue;
                size_t fl = strcspn(start, "= \t");
                if (fl == 6 && strncmp(start, "--from", 6) == 0 &&
                    (streq(kw, "COPY") || streq(kw, "ADD")))
                        return cove_err_set(err, EINVAL,
                                            "line %d: %s --from is not supported (multi-stage "
                                            "builds are not supported)",
                                            line, kw);
                return cove_err_set(err, EINVAL, "line %d: %s flag '%.*s' is not supported", line,
                                    kw, (int)MIN(fl, (size_t)40), start);
        }
        *rest = p;
        return 0;
}

static struct df_instr *push(struct parser *ps, enum df_kind kind, int line)
{
        struct dockerfile *df = ps->df;
        if (df->n_instrs == ps->cap) {
                ps->cap = ps->cap ? ps->cap * 2 : 16;
                df->instrs = xrealloc(df->instrs, ps->cap * sizeof(*df->instrs));
        }
        struct df_instr *in = &df->instrs[df->n_instrs++];
        *in = (struct df_instr){ .kind = kind, .line = line };
        return in;
}

static bool is_url(const char *s)
{
        return strstr(s, "://") || strncmp(s, "git@", 4) == 0;
}

static int parse_expose(struct parser *ps, int line, const char *args, struct cove_err **err)
{
        char **words = NULL;
        int r = dockerfile_expand(args, ps->df->escape, true, global_lookup, ps->df, &words, err);
        if (r < 0)
                return cove_err_wrap(err, "line %d: EXPOSE", line);
        for (char **w = words; *w && ps->df->port == 0; w++) {
                char num[8];
                size_t l = strcspn(*w, "/-");
                uint32_t port;
                if (l > 0 && l < sizeof(num)) {
                        memcpy(num, *w, l);
                        num[l] = '\0';
                }
                if (l == 0 || l >= sizeof(num) || safe_atou32(num, &port) < 0 || port == 0 ||
                    port > 65535) {
                        r = cove_err_set(err, EINVAL, "line %d: invalid port '%.40s'", line, *w);
                        strv_free(words);
                        return r;
                }
                ps->df->port = (int)port;
        }
        strv_free(words);
        return 0;
}

static int parse_instruction(struct parser *ps, int line, const char *text, struct cove_err **err)
{
        struct dockerfile *df = ps->df;
        const char *p = text, *kw_start, *args;
        char kw[16];
        int r;

        while (is_space(*p))
                p++;
        kw_start = p;
        while (isalpha((unsigned char)*p))
                p++;
        size_t kl = (size_t)(p - kw_start);
        if (kl == 0 || kl >= sizeof(kw) || (*p && !is_space(*p)))
                return cove_err_set(err, EINVAL, "line %d: unknown instruction '%.40s'", line,
                                    kw_start);
        for (size_t i = 0; i < kl; i++)
                kw[i] = (char)toupper((unsigned char)kw_start[i]);
        kw[kl] = '\0';
        args = p;
        while (is_space(*args))
                args++;
        cleanup_free char *trimmed = xstrdup(args);
        for (size_t l = strlen(trimmed); l > 0 && is_space(trimmed[l - 1]); l--)
                trimmed[l - 1] = '\0';
        args = trimmed;

        if (streq(kw, "FROM")) {
                const char *rest;
                cleanup_free char *unused = NULL;
                char **words = NULL;
                if (++ps->froms > 1)
                        return cove_err_set(err, EINVAL, "multi-stage builds are not supported");
                r = take_flags(kw, line, df->escape, args, &rest, &unused, false, true, err);
                if (r < 0)
                        return r;
                r = dockerfile_expand(rest, df->escape, true, global_lookup, df, &words, err);
                if (r < 0)
                        return cove_err_wrap(err, "line %d: FROM", line);
                size_t n = strv_length(words);
                if (n == 3 && strcasecmp(words[1], "as") == 0 && *words[0]) {
                        df->stage = xstrdup(words[2]);
                } else if (n != 1 || !*words[0]) {
                        strv_free(words);
                        return cove_err_set(err, EINVAL, "line %d: FROM needs exactly one image",
                                            line);
                }
                df->from = xstrdup(words[0]);
                strv_free(words);
                return 0;
        }
        if (streq(kw, "ARG")) {
                if (!*args)
                        return cove_err_set(err, EINVAL, "line %d: ARG needs a name", line);
                char **words = split_raw(args, df->escape);
                for (char **w = words; *w; w++) {
                        size_t nl = strcspn(*w, "=");
                        cleanup_free char *name = xstrndup(*w, nl);
                        if (!build_env_key_valid(name)) {
                                strv_free(words);
                                return cove_err_set(err, EINVAL,
                                                    "line %d: invalid ARG name '%.40s'", line,
                                                    name);
                        }
                }
                if (ps->froms == 0) {
                        /* global ARGs: expanded now, for FROM */
                        for (char **w = words; *w; w++) {
                                size_t nl = strcspn(*w, "=");
                                char *entry;
                                if ((*w)[nl] == '=') {
                                        char **val = NULL;
                                        r = dockerfile_expand(*w + nl + 1, df->escape, false,
                                                              global_lookup, df, &val, err);
                                        if (r < 0) {
                                                strv_free(words);
                                                return cove_err_wrap(err, "line %d: ARG", line);
                                        }
                                        entry = xasprintf("%.*s=%s", (int)nl, *w, val[0]);
                                        strv_free(val);
                                } else {
                                        entry = xstrdup(*w);
                                }
                                size_t ng = strv_length(df->global_args);
                                df->global_args =
                                        xrealloc(df->global_args, (ng + 2) * sizeof(char *));
                                df->global_args[ng] = entry;
                                df->global_args[ng + 1] = NULL;
                        }
                        strv_free(words);
                        return 0;
                }
                strv_free(words);
                push(ps, DF_ARG, line)->raw = xstrdup(args);
                return 0;
        }
        if (ps->froms == 0)
                return cove_err_set(err, EINVAL, "line %d: '%s' before FROM", line, kw);

        if (streq(kw, "RUN")) {
                const char *rest;
                cleanup_free char *unused = NULL;
                r = take_flags(kw, line, df->escape, args, &rest, &unused, false, false, err);
                if (r < 0)
                        return r;
                if (!*rest)
                        return cove_err_set(err, EINVAL, "line %d: RUN needs a command", line);
                struct df_instr *in = push(ps, DF_RUN, line);
                in->json = parse_json_form(rest);
                in->raw = xstrdup(rest);
                if (in->json && !in->json[0])
                        return cove_err_set(err, EINVAL, "line %d: RUN needs a command", line);
                return 0;
        }
        if (streq(kw, "ENV") || streq(kw, "WORKDIR") || streq(kw, "USER")) {
                if (!*args)
                        return cove_err_set(err, EINVAL, "line %d: %s needs arguments", line, kw);
                enum df_kind k = kw[0] == 'E' ? DF_ENV : kw[0] == 'W' ? DF_WORKDIR : DF_USER;
                if (k == DF_ENV) {
                        char **words = split_raw(args, df->escape);
                        bool pairs = strchr(words[0], '=') != NULL;
                        for (char **w = words; *w; w++) {
                                size_t nl = strcspn(*w, "=");
                                cleanup_free char *name = xstrndup(*w, nl);
                                if ((pairs && !(*w)[nl]) || !build_env_key_valid(name)) {
                                        r = cove_err_set(err, EINVAL,
                                                         "line %d: ENV: invalid variable '%.40s'",
                                                         line, *w);
                                        strv_free(words);
                                        return r;
                                }
                                if (!pairs)
                                        break;
                        }
                        bool legacy_without_value = !pairs && !words[1];
                        strv_free(words);
                        if (legacy_without_value)
                                return cove_err_set(err, EINVAL, "line %d: ENV needs a value",
                                                    line);
                }
                push(ps, k, line)->raw = xstrdup(args);
                return 0;
        }
        if (streq(kw, "COPY") || streq(kw, "ADD")) {
                const char *rest;
                char *chown = NULL;
                r = take_flags(kw, line, df->escape, args, &rest, &chown, true, false, err);
                if (r < 0) {
                        free(chown);
                        return r;
                }
                struct df_instr *in = push(ps, kw[0] == 'C' ? DF_COPY : DF_ADD, line);
                in->chown = chown;
                in->json = parse_json_form(rest);
                in->raw = xstrdup(rest);
                char **words = in->json ? NULL : split_raw(rest, df->escape);
                char **v = in->json ? in->json : words;
                size_t n = strv_length(v);
                bool url = false;
                for (size_t i = 0; i + 1 < n; i++)
                        url |= is_url(v[i]);
                strv_free(words);
                if (n < 2)
                        return cove_err_set(err, EINVAL,
                                            "line %d: %s needs a source and a destination", line,
                                            kw);
                if (url)
                        return cove_err_set(err, EINVAL, "line %d: %s from a URL is not supported",
                                            line, kw);
                df->needs_context = true;
                return 0;
        }
        if (streq(kw, "CMD") || streq(kw, "ENTRYPOINT")) {
                bool ep = kw[0] == 'E';
                char **j = parse_json_form(args);
                char ***exec = ep ? &ps->entrypoint_exec : &ps->cmd_exec;
                char **shell = ep ? &ps->entrypoint_shell : &ps->cmd_shell;
                strv_free(*exec);
                free(*shell);
                *exec = j;
                *shell = j ? NULL : xstrdup(args);
                if (ep)
                        ps->has_entrypoint = true;
                else
                        ps->has_cmd = true;
                return 0;
        }
        if (streq(kw, "EXPOSE")) {
                if (!*args)
                        return cove_err_set(err, EINVAL, "line %d: EXPOSE needs a port", line);
                return parse_expose(ps, line, args, err);
        }
        static const char *const ignored[] = { "LABEL",  "HEALTHCHECK", "SHELL",     "STOPSIGNAL",
                                               "VOLUME", "ONBUILD",     "MAINTAINER" };
        for (size_t i = 0; i < ARRAY_SIZE(ignored); i++)
                if (streq(kw, ignored[i]))
                        return 0;
        return cove_err_set(err, EINVAL, "line %d: unknown instruction '%s'", line, kw);
}

static char *cmd_string(char **exec, const char *shell)
{
        if (exec)
                return shell_quote_join(exec);
        return xstrdup(shell ? shell : "");
}

/* `# key=value` at the top of the file. Returns true and fills key/value when it is one. */
static bool directive(const char *line, char **key, char **value)
{
        const char *p = line;
        while (is_space(*p))
                p++;
        if (*p++ != '#')
                return false;
        while (is_space(*p))
                p++;
        const char *k = p;
        while (isalpha((unsigned char)*p))
                p++;
        if (p == k)
                return false;
        const char *ke = p;
        while (is_space(*p))
                p++;
        if (*p++ != '=')
                return false;
        while (is_space(*p))
                p++;
        const char *v = p, *ve = p + strlen(p);
        while (ve > v && is_space(ve[-1]))
                ve--;
        *key = xstrndup(k, (size_t)(ke - k));
        *value = xstrndup(v, (size_t)(ve - v));
        return true;
}

static bool blank_or_comment(const char *line)
{
        while (is_space(*line))
                line++;
        return !*line || *line == '#';
}

int dockerfile_parse(const char *text, size_t len, struct dockerfile **ret, struct cove_err **err)
{
        struct parser ps = { 0 };
        cleanup_buf struct buf instr;
        bool directives = true, in_instr = false;
        int line = 0, instr_line = 0, r = 0;
        size_t count = 0;

        buf_init(&instr, DOCKERFILE_MAX + 1);
        if (len > DOCKERFILE_MAX)
                return cove_err_set(err, E2BIG, "Dockerfile is larger than %d bytes",
                                    DOCKERFILE_MAX);
        if (memchr(text, '\0', len))
                return cove_err_set(err, EINVAL, "Dockerfile contains NUL bytes");
        ps.df = xzalloc(sizeof(*ps.df));
        ps.df->escape = '\\';

        for (const char *p = text, *end = text + len; p < end || in_instr;) {
                const char *nl = p < end ? memchr(p, '\n', (size_t)(end - p)) : NULL;
                const char *le = nl ? nl : end;
                cleanup_free char *l = xstrndup(p, (size_t)(le - p));
                bool eof = p >= end;
                size_t ll = strlen(l);

                p = nl ? nl + 1 : end;
                line++;
                if (ll > 0 && l[ll - 1] == '\r')
                        l[--ll] = '\0';

                if (!eof && directives) {
                        cleanup_free char *k = NULL, *v = NULL;
                        if (directive(l, &k, &v)) {
                                if (strcasecmp(k, "escape") == 0) {
                                        if (!streq(v, "\\") && !streq(v, "`")) {
                                                r = cove_err_set(
                                                        err, EINVAL,
                                                        "line %d: invalid escape token '%.10s'",
                                                        line, v);
                                                goto fail;
                                        }
                                        ps.df->escape = v[0];
                                        continue;
                                }
                                if (strcasecmp(k, "syntax") == 0 || strcasecmp(k, "check") == 0)
                                        continue;
                        }
                        directives = false;
                }
                if (!eof && blank_or_comment(l))
                        continue;
                if (!eof) {
                        /* continuation: the escape token, then only whitespace, ends the line */
                        size_t e = ll;
                        while (e > 0 && is_space(l[e - 1]))
                                e--;
                        bool cont = e > 0 && l[e - 1] == ps.df->escape;
                        if (!in_instr)
                                instr_line = line;
                        in_instr = true;
                        if (buf_add(&instr, l, cont ? e - 1 : ll) < 0) {
                                r = cove_err_set(err, E2BIG, "line %d: instruction is too long",
                                                 line);
                                goto fail;
                        }
                        if (cont)
                                continue;
                }
                if (!in_instr)
                        continue;
                in_instr = false;
                if (++count > DOCKERFILE_INSTR_MAX) {
                        r = cove_err_set(err, E2BIG, "Dockerfile has more than %d instructions",
                                         DOCKERFILE_INSTR_MAX);
                        goto fail;
                }
                r = parse_instruction(&ps, instr_line, buf_str(&instr), err);
                buf_reset(&instr);
                if (r < 0)
                        goto fail;
                if (eof)
                        break;
        }
        if (ps.froms == 0) {
                r = cove_err_set(err, EINVAL, "Dockerfile has no FROM instruction");
                goto fail;
        }
        if (ps.has_entrypoint || ps.has_cmd) {
                cleanup_free char *ep =
                        ps.has_entrypoint ? cmd_string(ps.entrypoint_exec, ps.entrypoint_shell)
                                          : NULL;
                cleanup_free char *cmd = ps.has_cmd ? cmd_string(ps.cmd_exec, ps.cmd_shell) : NULL;
                if (ep && *ep && cmd && *cmd)
                        ps.df->start_cmd = xasprintf("%s %s", ep, cmd);
                else
                        ps.df->start_cmd = xstrdup(ep && *ep ? ep : cmd ? cmd : "");
        }
        strv_free(ps.entrypoint_exec);
        strv_free(ps.cmd_exec);
        free(ps.entrypoint_shell);
        free(ps.cmd_shell);
        *ret = ps.df;
        return 0;
fail:
        strv_free(ps.entrypoint_exec);
        strv_free(ps.cmd_exec);
        free(ps.entrypoint_shell);
        free(ps.cmd_shell);
        dockerfile_free(ps.df);
        return r;
}

/* ---- lowering ---- */

struct lower {
        char **env;  /* "K=V" */
        char **args; /* "K=V" (set) or "K" (declared without a value) */
        const struct dockerfile *df;
        bool strict;
        char *unset; /* first variable a plain reference found unset (strict mode) */
};

static void lower_on_unset(void *ud, const char *name)
{
        struct lower *lw = ud;
        if (lw->strict && !lw->unset)
                lw->unset = xstrdup(name);
}

static int check_unset(struct lower *lw, int line, const char *what, struct cove_err **err)
{
        if (!lw->unset)
                return 0;
        return cove_err_set(err, ENOENT, "line %d: %s: variable '%s' is not set", line, what,
                            lw->unset);
}

static ssize_t kv_find(char **v, const char *name)
{
        size_t nl = strlen(name);
        for (size_t i = 0; v && v[i]; i++)
                if (strncmp(v[i], name, nl) == 0 && (v[i][nl] == '=' || v[i][nl] == '\0'))
                        return (ssize_t)i;
        return -1;
}

static void kv_set(char ***v, const char *name, const char *value)
{
        ssize_t i = kv_find(*v, name);
        char *e = value ? xasprintf("%s=%s", name, value) : xstrdup(name);
        if (i >= 0) {
                free((*v)[i]);
                (*v)[i] = e;
                return;
        }
        size_t n = strv_length(*v);
        *v = xrealloc(*v, (n + 2) * sizeof(char *));
        (*v)[n] = e;
        (*v)[n + 1] = NULL;
}

static const char *kv_value(char **v, const char *name)
{
        ssize_t i = kv_find(v, name);
        if (i < 0)
                return NULL;
        const char *eq = strchr(v[i], '=');
        return eq ? eq + 1 : NULL;
}

static const char *lower_lookup(void *ud, const char *name)
{
        struct lower *lw = ud;
        const char *v = kv_value(lw->env, name); /* ENV always overrides ARG (Docker) */
        return v ? v : kv_value(lw->args, name);
}

static int expand_one(struct lower *lw, const char *raw, int line, const char *what, char **ret,
                      struct cove_err **err)
{
        char **v = NULL;
        int r = expand_words(raw, lw->df->escape, false, lower_lookup, lower_on_unset, lw, &v, err);
        if (r < 0)
                return cove_err_wrap(err, "line %d: %s", line, what);
        r = check_unset(lw, line, what, err);
        if (r < 0) {
                strv_free(v);
                return r;
        }
        *ret = xstrdup(v[0]);
        strv_free(v);
        return 0;
}

static int lower_instr(struct lower *lw, const struct df_instr *in, const struct df_lower_opts *o,
                       struct build_step *st, bool *emitted, struct cove_err **err)
{
        int r;

        *emitted = false;
        switch (in->kind) {
        case DF_ARG: {
                char **words = split_raw(in->raw, lw->df->escape);
                for (char **w = words; *w; w++) {
                        size_t nl = strcspn(*w, "=");
                        cleanup_free char *name = xstrndup(*w, nl);
                        cleanup_free char *val = NULL;
                        if ((*w)[nl] == '=') {
                                r = expand_one(lw, *w + nl + 1, in->line, "ARG", &val, err);
                                if (r < 0) {
                                        strv_free(words);
                                        return r;
                                }
                        } else {
                                const char *g = NULL;
                                ssize_t gi = kv_find(lw->df->global_args, name);
                                if (gi >= 0 && strchr(lw->df->global_args[gi], '='))
                                        g = strchr(lw->df->global_args[gi], '=') + 1;
                                val = g ? xstrdup(g) : NULL;
                        }
                        kv_set(&lw->args, name, val);
                }
                strv_free(words);
                return 0;
        }
        case DF_ENV: {
                char **words = split_raw(in->raw, lw->df->escape);
                char **pairs = xzalloc(sizeof(char *));
                size_t n = 0;
                bool kv = strchr(words[0], '=') != NULL;
                for (char **w = words; *w; w++) {
                        size_t nl = strcspn(*w, "=");
                        const char *raw_val;
                        cleanup_free char *legacy = NULL;
                        if (kv) {
                                raw_val = *w + nl + 1;
                        } else {
                                /* ENV key the rest of the line */
                                const char *p = in->raw;
                                while (is_space(*p))
                                        p++;
                                p += strlen(*w);
                                while (is_space(*p))
                                        p++;
                                legacy = xstrdup(p);
                                raw_val = legacy;
                        }
                        char *val = NULL;
                        r = expand_one(lw, raw_val, in->line, "ENV", &val, err);
                        if (r < 0) {
                                strv_free(words);
                                strv_free(pairs);
                                return r;
                        }
                        pairs = xrealloc(pairs, (n + 3) * sizeof(char *));
                        pairs[n++] = xstrndup(*w, nl);
                        pairs[n++] = val;
                        pairs[n] = NULL;
                        if (!kv)
                                break;
                }
                strv_free(words);
                /* all values were expanded with the environment before this instruction */
                for (size_t i = 0; i < n; i += 2)
                        kv_set(&lw->env, pairs[i], pairs[i + 1]);
                st->type = BUILD_STEP_ENV;
                st->args = pairs;
                st->n_args = n;
                break;
        }
        case DF_RUN:
                st->type = BUILD_STEP_RUN;
                if (in->json) {
                        st->exec_form = true;
                        st->n_args = strv_length(in->json);
                        st->args = xzalloc((st->n_args + 1) * sizeof(char *));
                        for (size_t i = 0; i < st->n_args; i++)
                                st->args[i] = xstrdup(in->json[i]);
                } else {
                        st->args = xzalloc(2 * sizeof(char *));
                        st->args[0] = xstrdup(in->raw);
                        st->n_args = 1;
                }
                for (char **a = lw->args; a && *a; a++) {
                        const char *eq = strchr(*a, '=');
                        if (!eq)
                                continue;
                        cleanup_free char *name = xstrndup(*a, (size_t)(eq - *a));
                        if (kv_find(lw->env, name) >= 0)
                                continue;
                        size_t k = strv_length(st->run_env);
                        st->run_env = xrealloc(st->run_env, (k + 2) * sizeof(char *));
                        st->run_env[k] = xstrdup(*a);
                        st->run_env[k + 1] = NULL;
                }
                break;
        case DF_WORKDIR:
        case DF_USER: {
                char *v = NULL;
                const char *what = in->kind == DF_WORKDIR ? "WORKDIR" : "USER";
                r = expand_one(lw, in->raw, in->line, what, &v, err);
                if (r < 0)
                        return r;
                if (!*v) {
                        free(v);
                        return cove_err_set(err, EINVAL, "line %d: %s is empty", in->line, what);
                }
                st->type = in->kind == DF_WORKDIR ? BUILD_STEP_WORKDIR : BUILD_STEP_USER;
                st->args = xzalloc(2 * sizeof(char *));
                st->args[0] = v;
                st->n_args = 1;
                break;
        }
        case DF_COPY:
        case DF_ADD: {
                const char *what = in->kind == DF_COPY ? "COPY" : "ADD";
                char **words = NULL;
                if (in->json) {
                        size_t n = strv_length(in->json);
                        words = xzalloc((n + 1) * sizeof(char *));
                        for (size_t i = 0; i < n; i++) {
                                r = expand_one(lw, in->json[i], in->line, what, &words[i], err);
                                if (r < 0) {
                                        strv_free(words);
                                        return r;
                                }
                        }
                } else {
                        r = expand_words(in->raw, lw->df->escape, true, lower_lookup,
                                         lower_on_unset, lw, &words, err);
                        if (r < 0)
                                return cove_err_wrap(err, "line %d: %s", in->line, what);
                        r = check_unset(lw, in->line, what, err);
                        if (r < 0) {
                                strv_free(words);
                                return r;
                        }
                }
                size_t n = strv_length(words);
                bool bad = n < 2;
                for (size_t i = 0; i + 1 < n; i++)
                        bad |= !*words[i] || is_url(words[i]);
                if (bad || !*words[n - 1]) {
                        strv_free(words);
                        return cove_err_set(err, EINVAL,
                                            "line %d: %s needs local sources and a destination",
                                            in->line, what);
                }
                if (!o->context_hash) {
                        strv_free(words);
                        return cove_err_set(err, EINVAL,
                                            "line %d: %s needs a build context, and none was given",
                                            in->line, what);
                }
                st->type = BUILD_STEP_COPY;
                st->args = words;
                st->n_args = n;
                st->files_hash = xstrdup(o->context_hash);
                if (in->chown) {
                        r = expand_one(lw, in->chown, in->line, "--chown", &st->chown, err);
                        if (r < 0)
                                return r;
                }
                break;
        }
        case _DF_KIND_MAX:
        case _DF_KIND_INVALID:
                return cove_err_set(err, EINVAL, "line %d: bad instruction", in->line);
        }
        st->line = in->line;
        *emitted = true;
        return 0;
}

int dockerfile_lower(const struct dockerfile *df, const struct df_lower_opts *o,
                     struct build_step **ret, size_t *ret_n, struct cove_err **err)
{
        struct lower lw = { .df = df, .strict = o->fail_on_unset };
        struct build_step *steps = xzalloc(MAX(df->n_instrs, (size_t)1) * sizeof(*steps));
        size_t n = 0;
        int r = 0;

        for (char *const *e = o->base_env; e && *e; e++) {
                const char *eq = strchr(*e, '=');
                if (!eq)
                        continue;
                cleanup_free char *k = xstrndup(*e, (size_t)(eq - *e));
                kv_set(&lw.env, k, eq + 1);
        }
        for (size_t i = 0; i < df->n_instrs; i++) {
                bool emitted;
                r = lower_instr(&lw, &df->instrs[i], o, &steps[n], &emitted, err);
                if (r < 0) {
                        build_step_release(&steps[n]);
                        break;
                }
                if (emitted)
                        n++;
        }
        strv_free(lw.env);
        strv_free(lw.args);
        free(lw.unset);
        if (r < 0) {
                build_steps_free(steps, n);
                return r;
        }
        *ret = steps;
        *ret_n = n;
        return 0;
}
