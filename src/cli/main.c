/* SPDX-License-Identifier: MIT */
/*
 * main.c — the `cove` CLI: global flags, option parsing, command dispatch, request sending
 * (or printing, under --dry-run), error reporting and output helpers.
 */
#include "cli.h"

#include "lib/macro.h"
#include "lib/parse.h"

#include <stdarg.h>

#include "lib/banned.h" /* last */

const char *arg_url;
const char *arg_api_key;
const char *arg_project_id;
bool arg_dry_run;
enum output_mode arg_output = OUTPUT_TABLE;

static const char *arg_output_str;
static int arg_dry_run_flag = -1;
static int arg_version_flag = -1;

static const struct opt global_opts[] = {
        { "dry-run", NULL, OPT_BOOL, &arg_dry_run_flag, "print the request as JSON, send nothing" },
        { "output", "format", OPT_STRING, &arg_output_str, "json | table (default table)" },
        { "url", "base-url", OPT_STRING, &arg_url, "server URL (COVE_URL)" },
        { "api-key", NULL, OPT_STRING, &arg_api_key, "API key (COVE_API_KEY)" },
        { "project-id", NULL, OPT_STRING, &arg_project_id, "team to act in (COVE_PROJECT_ID)" },
        { "version", NULL, OPT_BOOL, &arg_version_flag, "print the version" },
        {}
};

/* ---- options ---------------------------------------------------------------------------- */

static void print_opts(const struct opt *opts)
{
        for (const struct opt *o = opts; o && o->name; o++) {
                const char *meta = o->type == OPT_STRING ? " VALUE"
                                   : o->type == OPT_INT  ? " N"
                                   : o->type == OPT_LIST ? " VALUE..."
                                                         : "";
                cleanup_free char *left =
                        xasprintf("--%s%s%s%s", o->name, meta, o->alias ? ", --" : "",
                                  o->alias ? o->alias : "");

                printf("  %-34s %s\n", left, o->help ? o->help : "");
        }
}

static void print_help(const struct cmd_help *help, const struct opt *opts)
{
        printf("Usage: %s\n\n%s\n", help->usage, help->summary);
        if (opts && opts->name) {
                printf("\nFlags:\n");
                print_opts(opts);
        }
        printf("\nGlobal flags:\n");
        print_opts(global_opts);
        printf("  %-34s %s\n", "-h, --help", "show this help");
}

int usage_error(const struct cmd_help *help, const char *fmt, ...)
{
        va_list ap;

        fputs("cove: ", stderr);
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        if (help)
                fprintf(stderr, " (usage: %s; see --help)\n", help->usage);
        else
                fputc('\n', stderr);
        return EXIT_USAGE;
}

static const struct opt *opt_find(const struct opt *opts, const char *name, size_t n)
{
        for (const struct opt *o = opts; o && o->name; o++)
                if ((strlen(o->name) == n && strncmp(o->name, name, n) == 0) ||
                    (o->alias && strlen(o->alias) == n && strncmp(o->alias, name, n) == 0))
                        return o;
        return NULL;
}

static int parse_bool(const char *v, int *ret)
{
        if (streq(v, "true") || streq(v, "1") || streq(v, "yes"))
                *ret = 1;
        else if (streq(v, "false") || streq(v, "0") || streq(v, "no"))
                *ret = 0;
        else
                return -EINVAL;
        return 0;
}

static int list_append(char ***list, const char *value)
{
        cleanup_free char *copy = xstrdup(value);
        char **v = *list, *save = NULL;
        size_t n = strv_length(v);

        for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
                if (!*tok)
                        continue;
                v = xrealloc(v, (n + 2) * sizeof(char *));
                v[n++] = xstrdup(tok);
                v[n] = NULL;
        }
        *list = v;
        return 0;
}

static int opt_set(const struct opt *o, const char *name, const char *value, bool *consumed,
                   const char *next, const struct cmd_help *help)
{
        int64_t i;

        *consumed = false;
        if (o->type == OPT_BOOL) {
                int b = 1;

                if (value) {
                        if (parse_bool(value, &b) < 0) {
                                usage_error(help, "--%s takes true or false, not '%s'", name,
                                            value);
                                return -1;
                        }
                } else if (next && parse_bool(next, &b) == 0) {
                        *consumed = true;
                } else {
                        b = 1;
                }
                *(int *)o->dst = b;
                return 0;
        }
        if (!value) {
                if (!next) {
                        usage_error(help, "--%s needs a value", name);
                        return -1;
                }
                value = next;
                *consumed = true;
        }
        switch (o->type) {
        case OPT_STRING:
                *(const char **)o->dst = value;
                return 0;
        case OPT_INT:
                if (safe_atoi64(value, &i) < 0 || i < 0) {
                        usage_error(help, "--%s takes a non-negative integer, not '%s'", name,
                                    value);
                        return -1;
                }
                *(int64_t *)o->dst = i;
                return 0;
        case OPT_LIST:
                return list_append((char ***)o->dst, value);
        case OPT_BOOL:
                break;
        }
        return -1;
}

static void apply_globals(void)
{
        if (arg_dry_run_flag >= 0)
                arg_dry_run = arg_dry_run_flag > 0;
}

int opt_parse(int argc, char **argv, const struct opt *opts, const struct cmd_help *help,
              int stop_after, char ***ret_pos)
{
        char **pos = xzalloc((size_t)(argc + 1) * sizeof(char *));
        int npos = 0;
        bool no_more_opts = false;

        for (int i = 1; i < argc; i++) {
                const char *a = argv[i], *eq, *name;
                const struct opt *o;
                cleanup_free char *oname = NULL;
                bool consumed;
                size_t n;

                if (no_more_opts || a[0] != '-' || streq(a, "-")) {
                        pos[npos++] = argv[i];
                        if (stop_after > 0 && npos >= stop_after)
                                no_more_opts = true;
                        continue;
                }
                if (streq(a, "--")) {
                        no_more_opts = true;
                        continue;
                }
                if (streq(a, "-h") || streq(a, "--help")) {
                        print_help(help, opts);
                        exit(0);
                }
                if (a[1] != '-') {
                        free(pos);
                        usage_error(help, "unknown flag '%s'", a);
                        return -1;
                }
                name = a + 2;
                eq = strchr(name, '=');
                n = eq ? (size_t)(eq - name) : strlen(name);
                o = opt_find(opts, name, n);
                if (!o)
                        o = opt_find(global_opts, name, n);
                if (!o) {
                        free(pos);
                        usage_error(help, "unknown flag '--%.*s'", (int)n, name);
                        return -1;
                }
                oname = xstrndup(name, n);
                if (opt_set(o, oname, eq ? eq + 1 : NULL, &consumed,
                            i + 1 < argc ? argv[i + 1] : NULL, help) < 0) {
                        free(pos);
                        return -1;
                }
                if (consumed)
                        i++;
        }
        apply_globals();
        if (arg_output_str) {
                if (streq(arg_output_str, "json"))
                        arg_output = OUTPUT_JSON;
                else if (streq(arg_output_str, "table") || streq(arg_output_str, "pretty"))
                        arg_output = OUTPUT_TABLE;
                else {
                        free(pos);
                        usage_error(help, "--output takes json or table, not '%s'", arg_output_str);
                        return -1;
                }
        }
        *ret_pos = pos;
        return npos;
}

int parse_kv_list(char **items, const char *flag, json_t **ret)
{
        json_t *obj = json_object();

        for (char **s = items; s && *s; s++) {
                const char *eq = strchr(*s, '=');
                cleanup_free char *k = NULL;

                if (!eq || eq == *s) {
                        json_decref(obj);
                        usage_error(NULL, "--%s takes key=value, not '%s'", flag, *s);
                        return -1;
                }
                k = xstrndup(*s, (size_t)(eq - *s));
                json_object_set_new(obj, k, json_string(eq + 1));
        }
        *ret = obj;
        return 0;
}

int cli_run(struct cli_req *rq, void (*table)(const json_t *body), const char *done)
{
        struct cove_response res = {};
        int r = cli_call(rq, &res);

        cli_req_release(rq);
        if (r == CLI_DRY_RUN)
                return 0;
        if (r)
                return r;
        if (arg_output == OUTPUT_JSON)
                print_json(res.body);
        else if (table && res.body)
                table(res.body);
        else if (done)
                printf("%s\n", done);
        else
                print_json(res.body);
        cove_response_release(&res);
        return 0;
}

/* ---- dispatch ---------------------------------------------------------------------------- */

static bool cmd_matches(const struct cmd *c, const char *name)
{
        const char *a;
        size_t n = strlen(name);

        if (streq(c->name, name))
                return true;
        for (a = c->aliases; a && *a;) {
                size_t k = strcspn(a, " ");

                if (k == n && strncmp(a, name, n) == 0)
                        return true;
                a += k;
                a += strspn(a, " ");
        }
        return false;
}

static void group_help(const struct cmd *table, const char *group, FILE *f)
{
        fprintf(f, "Usage: %s <command> [flags]\n\nCommands:\n", group);
        for (const struct cmd *c = table; c->name; c++) {
                cleanup_free char *left =
                        c->aliases ? xasprintf("%s (%s)", c->name, c->aliases) : xstrdup(c->name);

                fprintf(f, "  %-24s %s\n", left, c->summary);
        }
        fprintf(f, "\nRun '%s <command> --help' for the flags of a command.\n", group);
}

int cmd_dispatch(const struct cmd *table, const char *group, int argc, char **argv)
{
        int i = 1;

        /* Global flags may come before the command name: `cove --dry-run sandbox kill x`. */
        while (i < argc && argv[i][0] == '-') {
                const char *a = argv[i];
                const char *eq = strchr(a, '=');
                size_t n = eq ? (size_t)(eq - a - 2) : strlen(a) - 2;
                const struct opt *o;
                bool consumed;

                if (streq(a, "-h") || streq(a, "--help")) {
                        group_help(table, group, stdout);
                        return 0;
                }
                if (a[1] != '-' || !(o = opt_find(global_opts, a + 2, n))) {
                        return usage_error(NULL, "unknown flag '%s' (usage: %s <command>)", a,
                                           group);
                }
                {
                        cleanup_free char *name = xstrndup(a + 2, n);

                        if (opt_set(o, name, eq ? eq + 1 : NULL, &consumed,
                                    i + 1 < argc ? argv[i + 1] : NULL, NULL) < 0)
                                return EXIT_USAGE;
                }
                i += consumed ? 2 : 1;
        }
        apply_globals();
        if (arg_version_flag > 0)
                return cmd_version(1, (char *[]){ (char *)"version", NULL });
        if (i >= argc) {
                group_help(table, group, stderr);
                return EXIT_USAGE;
        }
        for (const struct cmd *c = table; c->name; c++)
                if (cmd_matches(c, argv[i])) {
                        cleanup_free char *sub = xasprintf("%s %s", group, c->name);

                        argv[i] = sub; /* the command's argv[0] names it for help */
                        return c->fn(argc - i, argv + i);
                }
        return usage_error(NULL, "unknown command '%s %s' (see '%s --help')", group, argv[i],
                           group);
}

/* ---- requests and errors ----------------------------------------------------------------- */

void cli_req_release(struct cli_req *rq)
{
        free(rq->path);
        json_decref(rq->query);
        json_decref(rq->body);
        json_decref(rq->ids);
        json_decref(rq->notes);
        memset(rq, 0, sizeof(*rq));
}

void cli_req_note(struct cli_req *rq, const char *fmt, ...)
{
        cleanup_free char *s = NULL;
        va_list ap;

        va_start(ap, fmt);
        if (vasprintf(&s, fmt, ap) < 0)
                abort();
        va_end(ap);
        if (!rq->notes)
                rq->notes = json_array();
        json_array_append_new(rq->notes, json_string(s));
}

static struct cove_client *client;

struct cove_client *cli_client(void)
{
        struct cove_config cfg;
        struct cove_error *err = NULL;

        if (client)
                return client;
        if (cove_config_load(&cfg, arg_url, arg_api_key, arg_project_id, &err) < 0)
                exit(cli_error(&err));
        client = cove_client_new(cfg.url, cfg.api_key, cfg.project_id);
        cove_config_release(&cfg);
        if (!client) {
                fprintf(stderr, "cove: invalid server URL\n");
                exit(EXIT_USAGE);
        }
        return client;
}

void cli_print_dry_run(const struct cli_req *rq)
{
        /* The API path as it would be sent, without needing a configured server. */
        struct cove_config cfg;
        cleanup_free char *full = NULL;
        json_t *o;

        if (cove_config_load(&cfg, arg_url, arg_api_key, arg_project_id, NULL) == 0) {
                const char *p = strstr(cfg.url, "://");

                p = p ? strchr(p + 3, '/') : NULL;
                full = xasprintf("%s%s", p ? p : "", rq->path);
                cove_config_release(&cfg);
        } else {
                full = xasprintf("/api/v1%s", rq->path);
        }
        o = json_pack("{s:s,s:s,s:s}", "action", rq->action, "method", rq->method, "path", full);
        json_object_set_new(o, "query", rq->query ? json_incref(rq->query) : json_object());
        if (rq->body)
                json_object_set(o, "body", rq->body);
        json_object_set_new(o, "ids", rq->ids ? json_incref(rq->ids) : json_array());
        json_object_set_new(o, "destructive", json_boolean(rq->destructive));
        json_object_set_new(o, "notes", rq->notes ? json_incref(rq->notes) : json_array());
        print_json(o);
        json_decref(o);
}

int cli_error(struct cove_error **errp)
{
        struct cove_error *e = *errp;
        const char *hint = NULL;
        int code = EXIT_API;

        if (!e)
                return EXIT_API;
        switch (e->kind) {
        case COVE_ERROR_AUTH:
                code = EXIT_AUTH;
                hint = "run 'cove auth login' or set COVE_API_KEY";
                break;
        case COVE_ERROR_NETWORK:
                hint = "is coved running? start it with 'make run', or point --url / COVE_URL at "
                       "your server";
                break;
        case COVE_ERROR_USAGE:
                code = EXIT_USAGE;
                break;
        default:
                break;
        }
        if (arg_output == OUTPUT_JSON && e->http_status > 0) {
                json_t *o = json_pack("{s:i,s:s,s:s?,s:s?,s:{s:s?,s:s,s:s}}", "code",
                                      e->http_status, "message", e->message, "request_id",
                                      e->request_id, "requestID", e->request_id, "error", "code",
                                      e->code, "message", e->message, "details", e->message);

                if (o) {
                        cleanup_free char *s = json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER);

                        fprintf(stderr, "%s\n", s);
                        json_decref(o);
                }
        } else {
                fprintf(stderr, "cove: %s%s%s", e->message, hint ? "; " : "", hint ? hint : "");
                if (e->request_id)
                        fprintf(stderr, " (request %s)", e->request_id);
                fputc('\n', stderr);
        }
        cove_error_free(errp);
        return code;
}

int cli_call(struct cli_req *rq, struct cove_response *ret)
{
        struct cove_error *err = NULL;

        if (arg_dry_run) {
                cli_print_dry_run(rq);
                return CLI_DRY_RUN;
        }
        if (cove_api_call(cli_client(), rq->method, rq->path, rq->query, rq->body, ret, &err) < 0)
                return cli_error(&err);
        return 0;
}

/* ---- output ------------------------------------------------------------------------------ */

void print_json(const json_t *v)
{
        if (!v)
                return;
        (void)json_dumpf(v, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_ENCODE_ANY);
        fputc('\n', stdout);
        (void)fflush(stdout);
}

const char *json_str(const json_t *obj, const char *key)
{
        return json_string_value(json_object_get(obj, key));
}

const char *short_time(const char *ts)
{
        static char out[32];
        size_t n;

        if (!ts)
                return NULL;
        n = strcspn(ts, ".Z");
        if (n >= sizeof(out) || n < 10)
                return ts;
        memcpy(out, ts, n);
        out[n] = '\0';
        if (n > 10 && out[10] == 'T')
                out[10] = ' ';
        return out;
}

struct table {
        size_t ncols, nrows;
        size_t *width;
        char **cells; /* nrows * ncols, owned */
};

struct table *table_new(const char *const *headers, size_t ncols)
{
        struct table *t = xzalloc(sizeof(*t));

        t->ncols = ncols;
        t->width = xzalloc(ncols * sizeof(size_t));
        t->cells = xzalloc(ncols * sizeof(char *));
        for (size_t i = 0; i < ncols; i++) {
                t->cells[i] = xstrdup(headers[i]);
                t->width[i] = strlen(headers[i]);
        }
        t->nrows = 1;
        return t;
}

void table_add(struct table *t, ...)
{
        va_list ap;

        t->cells = xrealloc(t->cells, (t->nrows + 1) * t->ncols * sizeof(char *));
        va_start(ap, t);
        for (size_t i = 0; i < t->ncols; i++) {
                const char *s = va_arg(ap, const char *);
                char *c = xstrdup(s && *s ? s : "-");

                t->cells[t->nrows * t->ncols + i] = c;
                t->width[i] = MAX(t->width[i], strlen(c));
        }
        va_end(ap);
        t->nrows++;
}

void table_print_free(struct table *t)
{
        for (size_t r = 0; r < t->nrows; r++) {
                for (size_t i = 0; i < t->ncols; i++) {
                        const char *c = t->cells[r * t->ncols + i];

                        if (i + 1 < t->ncols)
                                printf("%-*s  ", (int)t->width[i], c);
                        else
                                printf("%s", c);
                }
                putchar('\n');
        }
        for (size_t i = 0; i < t->nrows * t->ncols; i++)
                free(t->cells[i]);
        free(t->cells);
        free(t->width);
        free(t);
}

/* ---- version and main -------------------------------------------------------------------- */

int cmd_version(int argc, char **argv)
{
        static const struct cmd_help help = { "cove version", "Print the CLI version." };
        cleanup_free char **pos = NULL;

        if (opt_parse(argc, argv, NULL, &help, 0, &pos) < 0)
                return EXIT_USAGE;
        printf("cove %s\n", COVE_VERSION);
        /* The server's version when one is configured and answers (cli.md §6); quietly
         * nothing otherwise: `version` must work offline. */
        struct cove_config cfg;
        if (cove_config_load(&cfg, arg_url, arg_api_key, arg_project_id, NULL) < 0)
                return 0;
        struct cove_client *c = cove_client_new(cfg.url, cfg.api_key, cfg.project_id);
        cove_config_release(&cfg);
        if (!c)
                return 0;
        cove_client_set_timeout(c, 3);
        cleanup_free char *server = NULL;
        struct cove_error *err = NULL;
        if (cove_server_version(c, &server, &err) == 0)
                printf("server %s\n", server);
        cove_error_free(&err);
        (void)cove_client_free(c);
        return 0;
}

static const struct cmd top_cmds[] = {
        { "auth", NULL, cmd_auth, "log in, show or forget the API key" },
        { "sandbox", "sb sandboxes", cmd_sandbox, "create, run commands in, and manage sandboxes" },
        { "template", "tpl templates", cmd_template, "list and inspect templates" },
        { "version", NULL, cmd_version, "print the version" },
        { "admin", NULL, cmd_admin, "operator routes: pool, rolling updates, teams, keys, limits" },
        {}
};

int main(int argc, char **argv)
{
        int r;

        setvbuf(stdout, NULL, _IOLBF, 0);
        r = cmd_dispatch(top_cmds, "cove", argc, argv);
        (void)fflush(stdout);
        client = cove_client_free(client);
        return r;
}
