/* SPDX-License-Identifier: MIT */
/*
 * cmd_sandbox.c — `cove sandbox …` (cli.md §4) except exec and connect (cmd_exec.c).
 */
#include "cli.h"

#include "lib/buf.h"
#include "lib/macro.h"
#include "lib/parse.h"

#include <inttypes.h>

#include "lib/banned.h" /* last */

static json_t *ids_of(char **ids)
{
        json_t *a = json_array();

        for (char **s = ids; s && *s; s++)
                json_array_append_new(a, json_string(*s));
        return a;
}

static json_t *strv_json(char **v)
{
        return ids_of(v);
}

/* Exactly one positional ID. */
static int one_id(int n, char **pos, const struct cmd_help *help, const char **ret)
{
        if (n < 1)
                return usage_error(help, "missing sandbox ID");
        if (n > 1)
                return usage_error(help, "unexpected argument '%s'", pos[1]);
        *ret = pos[0];
        return 0;
}

static int escape_into(struct buf *b, const char *s, size_t n)
{
        static const char hex[] = "0123456789ABCDEF";

        for (size_t i = 0; i < n; i++) {
                unsigned char ch = (unsigned char)s[i];
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

/* --metadata k=v… as the one query string of cli.md §4: "k=v&k2=v2" with each key and value
 * percent-encoded (the whole value is encoded once more when the query is sent). */
static int metadata_query(char **items, json_t *query)
{
        cleanup_buf struct buf b;

        buf_init(&b, 64 * 1024);
        for (char **s = items; s && *s; s++) {
                const char *eq = strchr(*s, '=');

                if (!eq || eq == *s)
                        return usage_error(NULL, "--metadata takes key=value, not '%s'", *s);
                if ((b.len && buf_addc(&b, '&') < 0) ||
                    escape_into(&b, *s, (size_t)(eq - *s)) < 0 || buf_addc(&b, '=') < 0 ||
                    escape_into(&b, eq + 1, strlen(eq + 1)) < 0)
                        return usage_error(NULL, "--metadata is too long");
        }
        if (b.len)
                json_object_set_new(query, "metadata", json_string(buf_str(&b)));
        return 0;
}

static json_t *states_json(char **states)
{
        return strv_json(states);
}

static const char *metadata_str(const json_t *md, struct buf *b)
{
        const char *k;
        json_t *v;

        buf_reset(b);
        json_object_foreach ((json_t *)md, k, v)
                (void)buf_addf(b, "%s%s=%s", b->len ? "," : "", k,
                               json_string_value(v) ? json_string_value(v) : "");
        return buf_str(b);
}

static void sandbox_rows(const json_t *items)
{
        static const char *const hdr[] = { "SANDBOX ID", "TEMPLATE", "STATE",
                                           "STARTED",    "ENDS",     "METADATA" };
        struct table *t = table_new(hdr, ARRAY_SIZE(hdr));
        cleanup_buf struct buf b;
        const json_t *sb;
        size_t i;

        buf_init(&b, 64 * 1024);
        json_array_foreach ((json_t *)items, i, sb) {
                char started[32] = "";
                const char *s = short_time(json_str(sb, "startedAt"));

                if (s)
                        (void)snprintf(started, sizeof(started), "%s", s);
                table_add(t, json_str(sb, "sandboxID"),
                          json_str(sb, "alias") ? json_str(sb, "alias")
                                                : json_str(sb, "templateID"),
                          json_str(sb, "state"), started, short_time(json_str(sb, "endAt")),
                          metadata_str(json_object_get(sb, "metadata"), &b));
        }
        table_print_free(t);
}

static void sandbox_one(const json_t *sb)
{
        json_t *a = json_array();

        json_array_append((json_t *)a, (json_t *)sb);
        sandbox_rows(a);
        json_decref(a);
}

/* ---- create ------------------------------------------------------------------------------ */

static int tristate_set(json_t *obj, const char *key, int v)
{
        if (v >= 0)
                json_object_set_new(obj, key, json_boolean(v));
        return 0;
}

static json_t *network_json(int pub, int inet, char **allow, char **deny)
{
        json_t *n = json_object();

        tristate_set(n, "allowPublicTraffic", pub);
        tristate_set(n, "allowInternetAccess", inet);
        if (allow)
                json_object_set_new(n, "allowOut", strv_json(allow));
        if (deny)
                json_object_set_new(n, "denyOut", strv_json(deny));
        return n;
}

static int sandbox_create(int argc, char **argv)
{
        static const struct cmd_help help = {
                "cove sandbox create [template] [flags]",
                "Create a sandbox (POST /sandboxes). On a terminal, without --no-connect or "
                "--output json,\nopen a shell in it and delete it when the shell exits."
        };
        static int64_t a_timeout = -1, a_conn_timeout = -1;
        static int a_wait = -1, a_pause = -1, a_resume = -1, a_pub = -1, a_inet = -1,
                   a_connect = -1, a_no_connect = -1, a_kill = -1;
        static char **a_md, **a_env, **a_allow, **a_deny, **a_vol;
        static const char *a_shell = "sh";
        static const struct opt opts[] = {
                { "timeout", NULL, OPT_INT, &a_timeout, "lifetime in seconds" },
                { "wait", NULL, OPT_BOOL, &a_wait, "wait until the sandbox is running" },
                { "auto-pause", NULL, OPT_BOOL, &a_pause, "pause instead of kill on timeout" },
                { "auto-resume", NULL, OPT_BOOL, &a_resume, "resume on runtime traffic" },
                { "metadata", NULL, OPT_LIST, &a_md, "label k=v (repeatable)" },
                { "env", NULL, OPT_LIST, &a_env, "environment k=v (repeatable)" },
                { "allow-public-traffic", NULL, OPT_BOOL, &a_pub, "true|false" },
                { "allow-internet-access", NULL, OPT_BOOL, &a_inet, "true|false" },
                { "allow-out", NULL, OPT_LIST, &a_allow, "allowed egress CIDR" },
                { "deny-out", NULL, OPT_LIST, &a_deny, "denied egress CIDR" },
                { "volume-mount", NULL, OPT_LIST, &a_vol, "name:/path" },
                { "connect", NULL, OPT_BOOL, &a_connect, "open a shell after creating" },
                { "no-connect", NULL, OPT_BOOL, &a_no_connect, "just print the sandbox" },
                { "kill-on-exit", NULL, OPT_BOOL, &a_kill, "delete it when the shell exits" },
                { "shell", NULL, OPT_STRING, &a_shell, "shell for --connect (default sh)" },
                { "connect-timeout", NULL, OPT_INT, &a_conn_timeout, "connect timeout seconds" },
                {}
        };
        cleanup_free char **pos = NULL;
        struct cli_req rq = { .action = "create sandbox", .method = "POST" };
        struct cove_response res = {};
        json_t *body, *md = NULL, *env = NULL, *net;
        bool interactive;
        int n, r;

        n = opt_parse(argc, argv, opts, &help, 0, &pos);
        if (n < 0)
                return EXIT_USAGE;
        if (n > 1)
                return usage_error(&help, "unexpected argument '%s'", pos[1]);
        if (a_timeout > 86400)
                return usage_error(&help, "--timeout is at most 86400 seconds");
        interactive =
                a_connect > 0 || (a_connect < 0 && a_no_connect <= 0 && arg_output != OUTPUT_JSON &&
                                  isatty(STDOUT_FILENO) && isatty(STDIN_FILENO));
        if (parse_kv_list(a_md, "metadata", &md) < 0 || parse_kv_list(a_env, "env", &env) < 0) {
                json_decref(md);
                return EXIT_USAGE;
        }
        body = json_object();
        if (n == 1)
                json_object_set_new(body, "templateID", json_string(pos[0]));
        if (a_timeout >= 0)
                json_object_set_new(body, "timeout", json_integer(a_timeout));
        if (a_wait > 0 || interactive)
                json_object_set_new(body, "waitReady", json_true());
        if (json_object_size(md))
                json_object_set(body, "metadata", md);
        if (json_object_size(env))
                json_object_set(body, "envVars", env);
        json_decref(md);
        json_decref(env);
        tristate_set(body, "autoPause", a_pause);
        tristate_set(body, "autoResume", a_resume);
        net = network_json(a_pub, a_inet, a_allow, a_deny);
        if (json_object_size(net))
                json_object_set(body, "network", net);
        json_decref(net);
        if (a_vol) {
                json_t *mounts = json_array();

                for (char **v = a_vol; *v; v++) {
                        const char *colon = strchr(*v, ':');
                        cleanup_free char *name = NULL;

                        if (!colon || colon == *v || colon[1] != '/') {
                                json_decref(mounts);
                                json_decref(body);
                                return usage_error(&help,
                                                   "--volume-mount takes name:/path, not "
                                                   "'%s'",
                                                   *v);
                        }
                        name = xstrndup(*v, (size_t)(colon - *v));
                        json_array_append_new(
                                mounts, json_pack("{s:s,s:s}", "name", name, "path", colon + 1));
                }
                json_object_set_new(body, "volumeMounts", mounts);
        }
        rq.path = xstrdup("/sandboxes");
        rq.body = body;
        if (interactive) {
                cli_req_note(&rq, "then open '%s' on a terminal in the sandbox", a_shell);
                if (a_kill != 0)
                        cli_req_note(&rq, "then delete the sandbox when the shell exits");
        }
        r = cli_call(&rq, &res);
        cli_req_release(&rq);
        if (r == CLI_DRY_RUN)
                return 0;
        if (r)
                return r;
        if (interactive) {
                const char *id = json_str(res.body, "sandboxID");
                struct cove_error *err = NULL;

                fprintf(stderr, "Sandbox %s created; opening %s (exit the shell to %s it)\n", id,
                        a_shell, a_kill != 0 ? "delete" : "leave");
                r = pty_session(cli_client(), res.body, a_shell);
                if (a_kill != 0 && cove_sandbox_delete(cli_client(), id, &err) < 0)
                        (void)cli_error(&err);
                cove_response_release(&res);
                return r;
        }
        if (arg_output == OUTPUT_JSON)
                print_json(res.body);
        else
                sandbox_one(res.body);
        cove_response_release(&res);
        return 0;
}

/* ---- list, info -------------------------------------------------------------------------- */

static int sandbox_list(int argc, char **argv)
{
        static const struct cmd_help help = {
                "cove sandbox list [--state S…] [--metadata k=v…] [--limit N] [--next-token T]",
                "List sandboxes (one page). JSON output: {\"items\", \"nextToken\", \"hasNext\"}."
        };
        static char **a_state, **a_md;
        static int64_t a_limit = -1;
        static const char *a_next;
        static const struct opt opts[] = {
                { "state", NULL, OPT_LIST, &a_state, "starting|running|paused|stopped" },
                { "metadata", NULL, OPT_LIST, &a_md, "filter k=v (all must match)" },
                { "limit", NULL, OPT_INT, &a_limit, "page size (≤ 100)" },
                { "next-token", NULL, OPT_STRING, &a_next, "page token from a previous list" },
                {}
        };
        cleanup_free char **pos = NULL;
        struct cli_req rq = { .action = "list sandboxes", .method = "GET" };
        struct cove_response res = {};
        int n, r;

        n = opt_parse(argc, argv, opts, &help, 0, &pos);
        if (n < 0)
                return EXIT_USAGE;
        if (n > 0)
                return usage_error(&help, "unexpected argument '%s'", pos[0]);
        rq.path = xstrdup("/sandboxes");
        rq.query = json_object();
        if (a_state)
                json_object_set_new(rq.query, "state", states_json(a_state));
        if (metadata_query(a_md, rq.query) != 0) {
                cli_req_release(&rq);
                return EXIT_USAGE;
        }
        if (a_limit >= 0)
                json_object_set_new(rq.query, "limit", json_integer(a_limit));
        if (a_next)
                json_object_set_new(rq.query, "nextToken", json_string(a_next));
        r = cli_call(&rq, &res);
        cli_req_release(&rq);
        if (r == CLI_DRY_RUN)
                return 0;
        if (r)
                return r;
        if (arg_output == OUTPUT_JSON) {
                json_t *page =
                        json_pack("{s:O,s:s?,s:b}", "items", res.body, "nextToken",
                                  res.has_next ? res.next_token : NULL, "hasNext", res.has_next);

                if (!json_object_get(page, "nextToken"))
                        json_object_set_new(page, "nextToken", json_null());
                print_json(page);
                json_decref(page);
        } else {
                sandbox_rows(res.body);
                if (res.has_next && res.next_token)
                        fprintf(stderr, "More: cove sandbox list --next-token %s\n",
                                res.next_token);
        }
        cove_response_release(&res);
        return 0;
}

static int sandbox_info(int argc, char **argv)
{
        static const struct cmd_help help = { "cove sandbox info <id>",
                                              "Print a sandbox's details as JSON." };
        cleanup_free char **pos = NULL;
        struct cli_req rq = { .action = "get sandbox", .method = "GET" };
        const char *id = NULL;
        int n = opt_parse(argc, argv, NULL, &help, 0, &pos);

        if (n < 0 || one_id(n, pos, &help, &id))
                return EXIT_USAGE;
        rq.path = xasprintf("/sandboxes/%s", id);
        rq.ids = ids_of(pos);
        return cli_run(&rq, NULL, NULL);
}

/* ---- logs, metrics ----------------------------------------------------------------------- */

static void logs_table(const json_t *body)
{
        const json_t *e;
        size_t i;

        json_array_foreach (json_object_get(body, "logs"), i, e) {
                const char *lvl = json_str(e, "level");
                char up[16] = "";

                for (size_t k = 0; lvl && lvl[k] && k + 1 < sizeof(up); k++)
                        up[k] = (char)(lvl[k] >= 'a' && lvl[k] <= 'z' ? lvl[k] - 32 : lvl[k]);
                printf("[%s] %s %s\n", json_str(e, "timestamp") ? json_str(e, "timestamp") : "", up,
                       json_str(e, "message") ? json_str(e, "message") : "");
        }
        if (json_is_true(json_object_get(body, "hasMore")))
                fprintf(stderr, "More: --cursor %" JSON_INTEGER_FORMAT "\n",
                        json_integer_value(json_object_get(body, "nextCursor")));
}

static int sandbox_logs(int argc, char **argv)
{
        static const struct cmd_help help = {
                "cove sandbox logs <id> [--limit N] [--cursor N] [--direction forward|backward] "
                "[--level L] [--search TEXT]",
                "Print a sandbox's log entries as [timestamp] LEVEL message."
        };
        static int64_t a_limit = -1, a_cursor = -1;
        static const char *a_dir, *a_level, *a_search;
        static const struct opt opts[] = {
                { "limit", NULL, OPT_INT, &a_limit, "entries (≤ 1000)" },
                { "cursor", NULL, OPT_INT, &a_cursor, "entry number to start at" },
                { "direction", NULL, OPT_STRING, &a_dir, "forward | backward" },
                { "level", NULL, OPT_STRING, &a_level, "debug | info | warn | error" },
                { "search", NULL, OPT_STRING, &a_search, "case-insensitive substring" },
                {}
        };
        cleanup_free char **pos = NULL;
        struct cli_req rq = { .action = "sandbox logs", .method = "GET" };
        const char *id = NULL;
        int n = opt_parse(argc, argv, opts, &help, 0, &pos);

        if (n < 0 || one_id(n, pos, &help, &id))
                return EXIT_USAGE;
        if (a_dir && !streq(a_dir, "forward") && !streq(a_dir, "backward"))
                return usage_error(&help, "--direction takes forward or backward");
        rq.path = xasprintf("/sandboxes/%s/logs", id);
        rq.ids = ids_of(pos);
        rq.query = json_object();
        if (a_limit >= 0)
                json_object_set_new(rq.query, "limit", json_integer(a_limit));
        if (a_cursor > 0)
                json_object_set_new(rq.query, "cursor", json_integer(a_cursor));
        if (a_dir)
                json_object_set_new(rq.query, "direction", json_string(a_dir));
        if (a_level)
                json_object_set_new(rq.query, "level", json_string(a_level));
        if (a_search)
                json_object_set_new(rq.query, "search", json_string(a_search));
        return cli_run(&rq, logs_table, NULL);
}

static int sandbox_metrics(int argc, char **argv)
{
        static const struct cmd_help help = {
                "cove sandbox metrics [id…] [--limit N]",
                "Resource metrics of one sandbox, or of several (fleet route)."
        };
        static int64_t a_limit = -1;
        static const struct opt opts[] = { { "limit", NULL, OPT_INT, &a_limit, "samples" }, {} };
        cleanup_free char **pos = NULL;
        struct cli_req rq = { .action = "sandbox metrics", .method = "GET" };
        int n = opt_parse(argc, argv, opts, &help, 0, &pos);

        if (n < 0)
                return EXIT_USAGE;
        rq.ids = ids_of(pos);
        if (n == 1 && a_limit < 0) {
                rq.path = xasprintf("/sandboxes/%s/metrics", pos[0]);
        } else {
                cleanup_buf struct buf b;

                buf_init(&b, 64 * 1024);
                for (int i = 0; i < n; i++)
                        (void)buf_addf(&b, "%s%s", i ? "," : "", pos[i]);
                rq.path = xstrdup("/sandboxes/metrics");
                rq.query = json_object();
                if (n > 0)
                        json_object_set_new(rq.query, "sandbox_ids", json_string(buf_str(&b)));
                if (a_limit >= 0)
                        json_object_set_new(rq.query, "limit", json_integer(a_limit));
        }
        return cli_run(&rq, NULL, NULL);
}

/* ---- lifecycle actions ------------------------------------------------------------------- */

static int sandbox_pause(int argc, char **argv)
{
        static const struct cmd_help help = { "cove sandbox pause <id>",
                                              "Pause a running sandbox ('connect' resumes it)." };
        cleanup_free char **pos = NULL;
        cleanup_free char *done = NULL;
        struct cli_req rq = { .action = "pause sandbox", .method = "POST" };
        const char *id = NULL;
        int n = opt_parse(argc, argv, NULL, &help, 0, &pos);

        if (n < 0 || one_id(n, pos, &help, &id))
                return EXIT_USAGE;
        rq.path = xasprintf("/sandboxes/%s/pause", id);
        rq.ids = ids_of(pos);
        done = xasprintf("Paused %s", id);
        return cli_run(&rq, NULL, done);
}

static int sandbox_timeout(int argc, char **argv)
{
        static const struct cmd_help help = { "cove sandbox timeout <id> [--seconds N]",
                                              "Set the sandbox to expire N seconds from now "
                                              "(default 3600)." };
        static int64_t a_seconds = -1;
        static const struct opt opts[] = {
                { "seconds", NULL, OPT_INT, &a_seconds, "1–86400 (default 3600)" }, {}
        };
        cleanup_free char **pos = NULL;
        cleanup_free char *done = NULL;
        struct cli_req rq = { .action = "set sandbox timeout", .method = "POST" };
        const char *id = NULL;
        int n = opt_parse(argc, argv, opts, &help, 0, &pos);

        if (n < 0 || one_id(n, pos, &help, &id))
                return EXIT_USAGE;
        if (a_seconds < 0)
                a_seconds = 3600;
        rq.path = xasprintf("/sandboxes/%s/timeout", id);
        rq.ids = ids_of(pos);
        rq.body = json_pack("{s:I}", "timeout", (json_int_t)a_seconds);
        done = xasprintf("Sandbox %s now expires in %" PRId64 " s", id, a_seconds);
        return cli_run(&rq, NULL, done);
}

static int sandbox_refresh(int argc, char **argv)
{
        static const struct cmd_help help = { "cove sandbox refresh <id> [--duration SECONDS]",
                                              "Extend the sandbox's lifetime (never shortens)." };
        static int64_t a_dur = -1;
        static const struct opt opts[] = {
                { "duration", NULL, OPT_INT, &a_dur, "0–3600 (server default 300)" }, {}
        };
        cleanup_free char **pos = NULL;
        cleanup_free char *done = NULL;
        struct cli_req rq = { .action = "refresh sandbox", .method = "POST" };
        const char *id = NULL;
        int n = opt_parse(argc, argv, opts, &help, 0, &pos);

        if (n < 0 || one_id(n, pos, &help, &id))
                return EXIT_USAGE;
        rq.path = xasprintf("/sandboxes/%s/refreshes", id);
        rq.ids = ids_of(pos);
        if (a_dur >= 0)
                rq.body = json_pack("{s:I}", "duration", (json_int_t)a_dur);
        done = xasprintf("Refreshed %s", id);
        return cli_run(&rq, NULL, done);
}

/* Every sandbox ID that list returns with these filters (all pages). */
static int list_all_ids(json_t *query, json_t *ids)
{
        struct cove_error *err = NULL;
        cleanup_free char *next = NULL;

        do {
                json_t *items = NULL, *sb;
                size_t i;

                if (next)
                        json_object_set_new(query, "nextToken", json_string(next));
                free(next);
                next = NULL;
                if (cove_sandbox_list(cli_client(), query, &items, &next, &err) < 0)
                        return cli_error(&err);
                json_array_foreach (items, i, sb)
                        json_array_append_new(ids, json_string(json_str(sb, "sandboxID")));
                json_decref(items);
        } while (next);
        return 0;
}

static int sandbox_kill(int argc, char **argv)
{
        static const struct cmd_help help = {
                "cove sandbox kill [id…] [--all [--state S…] [--metadata k=v…]]",
                "Delete sandboxes: the given IDs, or with --all every sandbox that list returns "
                "with the filters."
        };
        static int a_all = -1;
        static char **a_state, **a_md;
        static const struct opt opts[] = {
                { "all", NULL, OPT_BOOL, &a_all, "every (matching) sandbox" },
                { "state", NULL, OPT_LIST, &a_state, "with --all: only these states" },
                { "metadata", NULL, OPT_LIST, &a_md, "with --all: only these labels" },
                {}
        };
        cleanup_free char **pos = NULL;
        json_t *ids = NULL, *id;
        size_t i;
        int n, r, code = 0;

        n = opt_parse(argc, argv, opts, &help, 0, &pos);
        if (n < 0)
                return EXIT_USAGE;
        if (a_all <= 0 && n == 0)
                return usage_error(&help, "give sandbox IDs or --all");
        if (a_all > 0 && n > 0)
                return usage_error(&help, "give sandbox IDs or --all, not both");
        if (a_all > 0) {
                json_t *query = json_object();

                if (a_state)
                        json_object_set_new(query, "state", states_json(a_state));
                if (metadata_query(a_md, query) != 0) {
                        json_decref(query);
                        return EXIT_USAGE;
                }
                if (arg_dry_run) {
                        struct cli_req rq = { .action = "delete sandboxes",
                                              .method = "GET",
                                              .path = xstrdup("/sandboxes"),
                                              .query = query,
                                              .destructive = true };

                        cli_req_note(&rq, "then DELETE /sandboxes/{sandboxID} for every sandbox "
                                          "listed (all pages)");
                        cli_print_dry_run(&rq);
                        cli_req_release(&rq);
                        return 0;
                }
                if (!a_state && !a_md && isatty(STDIN_FILENO)) {
                        char answer[16] = "";

                        fprintf(stderr, "Delete ALL sandboxes at %s? [y/N] ",
                                cove_client_url(cli_client()));
                        if (!fgets(answer, sizeof(answer), stdin) ||
                            (answer[0] != 'y' && answer[0] != 'Y')) {
                                json_decref(query);
                                fprintf(stderr, "Nothing deleted\n");
                                return EXIT_API;
                        }
                }
                ids = json_array();
                r = list_all_ids(query, ids);
                json_decref(query);
                if (r) {
                        json_decref(ids);
                        return r;
                }
        } else {
                ids = ids_of(pos);
        }
        if (arg_dry_run) {
                struct cli_req rq = { .action = "delete sandbox",
                                      .method = "DELETE",
                                      .ids = ids,
                                      .destructive = true };

                rq.path = json_array_size(ids) == 1
                                  ? xasprintf("/sandboxes/%s",
                                              json_string_value(json_array_get(ids, 0)))
                                  : xstrdup("/sandboxes/{sandboxID}");
                cli_print_dry_run(&rq);
                cli_req_release(&rq);
                return 0;
        }
        json_array_foreach (ids, i, id) {
                struct cove_error *err = NULL;

                if (cove_sandbox_delete(cli_client(), json_string_value(id), &err) < 0) {
                        r = cli_error(&err);
                        if (r > code)
                                code = r;
                        continue;
                }
                if (arg_output != OUTPUT_JSON)
                        printf("Killed %s\n", json_string_value(id));
        }
        if (arg_output == OUTPUT_JSON) {
                json_t *o = json_pack("{s:O}", "deleted", ids);

                print_json(o);
                json_decref(o);
        }
        json_decref(ids);
        return code;
}

/* ---- network, volumes, events, webhooks, teams, observability ---------------------------- */

static int network_update(int argc, char **argv)
{
        static const struct cmd_help help = {
                "cove sandbox network update <id> [--allow-public-traffic B] "
                "[--allow-internet-access B] [--allow-out CIDR…] [--deny-out CIDR…]",
                "Change a sandbox's network policy; only the given keys change."
        };
        static int a_pub = -1, a_inet = -1;
        static char **a_allow, **a_deny;
        static const struct opt opts[] = {
                { "allow-public-traffic", NULL, OPT_BOOL, &a_pub, "true|false" },
                { "allow-internet-access", NULL, OPT_BOOL, &a_inet, "true|false" },
                { "allow-out", NULL, OPT_LIST, &a_allow, "allowed egress CIDR" },
                { "deny-out", NULL, OPT_LIST, &a_deny, "denied egress CIDR" },
                {}
        };
        cleanup_free char **pos = NULL;
        cleanup_free char *done = NULL;
        struct cli_req rq = { .action = "update sandbox network", .method = "PUT" };
        const char *id = NULL;
        int n = opt_parse(argc, argv, opts, &help, 0, &pos);

        if (n < 0 || one_id(n, pos, &help, &id))
                return EXIT_USAGE;
        rq.body = network_json(a_pub, a_inet, a_allow, a_deny);
        if (json_object_size(rq.body) == 0) {
                cli_req_release(&rq);
                return usage_error(&help, "give at least one policy flag");
        }
        rq.path = xasprintf("/sandboxes/%s/network", id);
        rq.ids = ids_of(pos);
        done = xasprintf("Network policy of %s updated", id);
        return cli_run(&rq, NULL, done);
}

/* One list of the policy as `label: a, b` (or `-` when empty). */
static void print_list(const char *label, const json_t *list)
{
        const json_t *v;
        size_t i;

        printf("%-22s", label);
        if (json_array_size(list) == 0)
                printf(" -");
        json_array_foreach (list, i, v) {
                printf("%s %s", i ? "," : "", json_string_value(v) ? json_string_value(v) : "?");
        }
        printf("\n");
}

static int network_get(int argc, char **argv)
{
        static const struct cmd_help help = {
                "cove sandbox network get <id>",
                "Show a sandbox's network policy (the `network` object of GET /sandboxes/{id})."
        };
        cleanup_free char **pos = NULL;
        struct cli_req rq = { .action = "get sandbox network", .method = "GET" };
        struct cove_response res = { 0 };
        const char *id = NULL;
        int n = opt_parse(argc, argv, NULL, &help, 0, &pos);

        if (n < 0 || one_id(n, pos, &help, &id))
                return EXIT_USAGE;
        rq.path = xasprintf("/sandboxes/%s", id);
        rq.ids = ids_of(pos);
        int r = cli_call(&rq, &res);
        cli_req_release(&rq);
        if (r == CLI_DRY_RUN)
                return 0;
        if (r)
                return r;
        const json_t *net = json_object_get(res.body, "network");
        if (arg_output == OUTPUT_JSON) {
                json_t *o = json_pack("{s:s?, s:O?}", "sandboxID", json_str(res.body, "sandboxID"),
                                      "network", net);
                print_json(o);
                json_decref(o);
        } else {
                const json_t *pub = json_object_get(net, "allowPublicTraffic");
                const json_t *inet = json_object_get(net, "allowInternetAccess");
                printf("%-22s %s\n", "allowPublicTraffic:", json_is_false(pub) ? "false" : "true");
                printf("%-22s %s\n",
                       "allowInternetAccess:", json_is_false(inet) ? "false" : "true");
                print_list("allowOut:", json_object_get(net, "allowOut"));
                print_list("denyOut:", json_object_get(net, "denyOut"));
        }
        cove_response_release(&res);
        return 0;
}

static int network_group(int argc, char **argv)
{
        static const struct cmd cmds[] = {
                { "get", "show", network_get, "show the network policy" },
                { "update", "set", network_update, "change the network policy" },
                {}
        };
        return cmd_dispatch(cmds, argv[0], argc, argv);
}

/* A command with fixed positionals and no flags: `fmt` takes them in order. */
static int simple_cmd(int argc, char **argv, const struct cmd_help *help, int nargs,
                      const char *action, const char *method, const char *fmt, bool destructive,
                      void (*table)(const json_t *body))
{
        cleanup_free char **pos = NULL;
        struct cli_req rq = { .action = action, .method = method, .destructive = destructive };
        int n = opt_parse(argc, argv, NULL, help, 0, &pos);

        if (n < 0)
                return EXIT_USAGE;
        if (n != nargs)
                return usage_error(help, "expected %d argument%s", nargs, nargs == 1 ? "" : "s");
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
        rq.path = xasprintf(fmt, n > 0 ? pos[0] : "", n > 1 ? pos[1] : "");
#pragma GCC diagnostic pop
        if (n > 0)
                rq.ids = ids_of(pos);
        return cli_run(&rq, table, destructive ? "Deleted" : NULL);
}

static int volume_create(int argc, char **argv)
{
        static const struct cmd_help help = { "cove sandbox volume create <name>",
                                              "Create a team volume." };
        cleanup_free char **pos = NULL;
        struct cli_req rq = { .action = "create volume", .method = "POST" };
        int n = opt_parse(argc, argv, NULL, &help, 0, &pos);

        if (n < 0)
                return EXIT_USAGE;
        if (n != 1)
                return usage_error(&help, "expected a volume name");
        rq.path = xstrdup("/volumes");
        rq.body = json_pack("{s:s}", "name", pos[0]);
        return cli_run(&rq, NULL, NULL);
}

static int volume_list(int argc, char **argv)
{
        static const struct cmd_help help = { "cove sandbox volume list", "List volumes." };

        return simple_cmd(argc, argv, &help, 0, "list volumes", "GET", "/volumes", false, NULL);
}

static int volume_get(int argc, char **argv)
{
        static const struct cmd_help help = { "cove sandbox volume get <volume-id>",
                                              "Show a volume." };

        return simple_cmd(argc, argv, &help, 1, "get volume", "GET", "/volumes/%s", false, NULL);
}

static int volume_delete(int argc, char **argv)
{
        static const struct cmd_help help = { "cove sandbox volume delete <volume-id>",
                                              "Delete a volume and its data." };

        return simple_cmd(argc, argv, &help, 1, "delete volume", "DELETE", "/volumes/%s", true,
                          NULL);
}

static int volume_group(int argc, char **argv)
{
        static const struct cmd cmds[] = { { "create", NULL, volume_create, "create a volume" },
                                           { "list", "ls", volume_list, "list volumes" },
                                           { "get", NULL, volume_get, "show a volume" },
                                           { "delete", "rm", volume_delete, "delete a volume" },
                                           {} };
        return cmd_dispatch(cmds, argv[0], argc, argv);
}

static void events_table(const json_t *body)
{
        static const char *const h[] = { "TIME", "TYPE", "SANDBOX", "DATA" };
        struct table *t = table_new(h, ARRAY_SIZE(h));
        const json_t *e;
        size_t i;

        json_array_foreach (body, i, e) {
                cleanup_free char *data =
                        json_object_get(e, "eventData")
                                ? json_dumps(json_object_get(e, "eventData"), JSON_COMPACT)
                                : NULL;
                const char *type = json_str(e, "type");
                if (type && strncmp(type, "sandbox.lifecycle.", 18) == 0)
                        type += 18;
                table_add(t, short_time(json_str(e, "timestamp")), type, json_str(e, "sandboxId"),
                          data);
        }
        table_print_free(t);
}

static int sandbox_events(int argc, char **argv)
{
        static const struct cmd_help help = {
                "cove sandbox events [id] [--type T…] [--limit N] [--offset N] [--order-asc]",
                "Lifecycle events, newest first unless --order-asc."
        };
        static char **a_type;
        static int64_t a_limit = -1, a_offset = -1;
        static int a_asc = -1;
        static const struct opt opts[] = { { "type", NULL, OPT_LIST, &a_type, "event type" },
                                           { "limit", NULL, OPT_INT, &a_limit, "default 10" },
                                           { "offset", NULL, OPT_INT, &a_offset, "skip N" },
                                           { "order-asc", NULL, OPT_BOOL, &a_asc, "oldest first" },
                                           {} };
        cleanup_free char **pos = NULL;
        struct cli_req rq = { .action = "list events", .method = "GET" };
        int n = opt_parse(argc, argv, opts, &help, 0, &pos);

        if (n < 0)
                return EXIT_USAGE;
        if (n > 1)
                return usage_error(&help, "unexpected argument '%s'", pos[1]);
        rq.path = n ? xasprintf("/events/sandboxes/%s", pos[0]) : xstrdup("/events/sandboxes");
        rq.ids = ids_of(pos);
        rq.query = json_pack("{s:I}", "limit", (json_int_t)(a_limit >= 0 ? a_limit : 10));
        if (a_type)
                json_object_set_new(rq.query, "types", strv_json(a_type));
        if (a_offset >= 0)
                json_object_set_new(rq.query, "offset", json_integer(a_offset));
        if (a_asc >= 0)
                json_object_set_new(rq.query, "orderAsc", json_boolean(a_asc));
        return cli_run(&rq, events_table, NULL);
}

/* Webhook create/update share their flags; update sends only what was given. */
static const char *w_name, *w_url, *w_secret, *w_dl_url, *w_delays;
static char **w_events;
static int w_enabled = -1, w_dl = -1;
static int64_t w_attempts = -1;
static const struct opt webhook_opts[] = {
        { "name", NULL, OPT_STRING, &w_name, "webhook name" },
        { "url", NULL, OPT_STRING, &w_url, "target URL (note: not the server URL here)" },
        { "secret", NULL, OPT_STRING, &w_secret, "signing secret" },
        { "event", NULL, OPT_LIST, &w_events, "event type (repeatable)" },
        { "enabled", NULL, OPT_BOOL, &w_enabled, "true|false" },
        { "max-attempts", NULL, OPT_INT, &w_attempts, "delivery attempts" },
        { "delay-seconds", NULL, OPT_STRING, &w_delays, "retry delays, e.g. 10,60" },
        { "dead-letter-enabled", NULL, OPT_BOOL, &w_dl, "true|false" },
        { "dead-letter-url", NULL, OPT_STRING, &w_dl_url, "dead-letter URL" },
        {}
};

static int webhook_body(json_t **ret)
{
        json_t *b = json_object(), *retry = json_object();

        if (w_name)
                json_object_set_new(b, "name", json_string(w_name));
        if (w_url)
                json_object_set_new(b, "url", json_string(w_url));
        if (w_secret)
                json_object_set_new(b, "signatureSecret", json_string(w_secret));
        if (w_events)
                json_object_set_new(b, "events", strv_json(w_events));
        if (w_enabled >= 0)
                json_object_set_new(b, "enabled", json_boolean(w_enabled));
        if (w_attempts >= 0)
                json_object_set_new(retry, "maxAttempts", json_integer(w_attempts));
        if (w_delays) {
                cleanup_free char *copy = xstrdup(w_delays);
                json_t *a = json_array();
                char *save = NULL;

                for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
                        int64_t v;

                        if (safe_atoi64(t, &v) < 0 || v < 0) {
                                json_decref(a);
                                json_decref(b);
                                json_decref(retry);
                                return usage_error(NULL, "--delay-seconds takes numbers like "
                                                         "10,60");
                        }
                        json_array_append_new(a, json_integer(v));
                }
                json_object_set_new(retry, "delaySeconds", a);
        }
        if (w_dl >= 0)
                json_object_set_new(retry, "deadLetterEnabled", json_boolean(w_dl));
        if (w_dl_url) /* a field of the webhook, not of its retry policy (§12.3) */
                json_object_set_new(b, "deadLetterUrl", json_string(w_dl_url));
        if (json_object_size(retry))
                json_object_set(b, "retryPolicy", retry);
        json_decref(retry);
        *ret = b;
        return 0;
}

static int webhook_create(int argc, char **argv)
{
        static const struct cmd_help help = { "cove sandbox webhook create --name N --url URL "
                                              "[--event T…] [flags]",
                                              "Create a lifecycle webhook." };
        cleanup_free char **pos = NULL;
        struct cli_req rq = { .action = "create webhook", .method = "POST" };
        const char *saved_url = arg_url;
        int n;

        /* --url is the webhook's target here, not the server: keep the server's URL. */
        n = opt_parse(argc, argv, webhook_opts, &help, 0, &pos);
        arg_url = saved_url;
        if (n < 0)
                return EXIT_USAGE;
        if (w_enabled < 0)
                w_enabled = 1;
        if (webhook_body(&rq.body))
                return EXIT_USAGE;
        rq.path = xstrdup("/events/webhooks");
        return cli_run(&rq, NULL, NULL);
}

static int webhook_update(int argc, char **argv)
{
        static const struct cmd_help help = { "cove sandbox webhook update <webhook-id> [flags]",
                                              "Change a webhook; only the given fields change." };
        cleanup_free char **pos = NULL;
        struct cli_req rq = { .action = "update webhook", .method = "PATCH" };
        const char *saved_url = arg_url;
        int n = opt_parse(argc, argv, webhook_opts, &help, 0, &pos);

        arg_url = saved_url;
        if (n < 0)
                return EXIT_USAGE;
        if (n != 1)
                return usage_error(&help, "expected a webhook ID");
        if (webhook_body(&rq.body))
                return EXIT_USAGE;
        rq.path = xasprintf("/events/webhooks/%s", pos[0]);
        rq.ids = ids_of(pos);
        return cli_run(&rq, NULL, NULL);
}

static void webhooks_table(const json_t *body)
{
        static const char *const h[] = { "ID", "NAME", "ENABLED", "EVENTS", "URL" };
        struct table *t = table_new(h, ARRAY_SIZE(h));
        const json_t *w;
        size_t i;

        json_array_foreach (body, i, w) {
                char n[16];
                (void)snprintf(n, sizeof(n), "%zu", json_array_size(json_object_get(w, "events")));
                table_add(t, json_str(w, "id"), json_str(w, "name"),
                          json_is_true(json_object_get(w, "enabled")) ? "yes" : "no", n,
                          json_str(w, "url"));
        }
        table_print_free(t);
}

static void deliveries_table(const json_t *body)
{
        static const char *const h[] = { "ID", "STATUS", "ATTEMPTS", "HTTP", "EVENT", "ERROR" };
        struct table *t = table_new(h, ARRAY_SIZE(h));
        const json_t *d;
        size_t i;

        json_array_foreach (body, i, d) {
                char a[32], code[16] = "-";
                (void)snprintf(a, sizeof(a), "%lld/%lld",
                               (long long)json_integer_value(json_object_get(d, "attempts")),
                               (long long)json_integer_value(json_object_get(d, "maxAttempts")));
                if (json_object_get(d, "httpStatus"))
                        (void)snprintf(
                                code, sizeof(code), "%lld",
                                (long long)json_integer_value(json_object_get(d, "httpStatus")));
                table_add(t, json_str(d, "id"), json_str(d, "status"), a, code,
                          json_str(d, "eventId"), json_str(d, "error"));
        }
        table_print_free(t);
}

static int webhook_list(int argc, char **argv)
{
        static const struct cmd_help help = { "cove sandbox webhook list", "List webhooks." };

        return simple_cmd(argc, argv, &help, 0, "list webhooks", "GET", "/events/webhooks", false,
                          webhooks_table);
}

static int webhook_get(int argc, char **argv)
{
        static const struct cmd_help help = { "cove sandbox webhook get <id>", "Show a webhook." };

        return simple_cmd(argc, argv, &help, 1, "get webhook", "GET", "/events/webhooks/%s", false,
                          NULL);
}

static int webhook_delete(int argc, char **argv)
{
        static const struct cmd_help help = { "cove sandbox webhook delete <id>",
                                              "Delete a webhook." };

        return simple_cmd(argc, argv, &help, 1, "delete webhook", "DELETE", "/events/webhooks/%s",
                          true, NULL);
}

static int webhook_replay(int argc, char **argv)
{
        static const struct cmd_help help = { "cove sandbox webhook replay <delivery-id>",
                                              "Send a delivery again." };

        return simple_cmd(argc, argv, &help, 1, "replay delivery", "POST",
                          "/events/webhook-deliveries/%s/replay", false, NULL);
}

static int webhook_deliveries(int argc, char **argv)
{
        static const struct cmd_help help = {
                "cove sandbox webhook deliveries [--webhook-id ID] [--event-id ID] [--status S] "
                "[--limit N] [--offset N]",
                "List webhook deliveries."
        };
        static const char *a_wh, *a_ev, *a_status;
        static int64_t a_limit = -1, a_offset = -1;
        static const struct opt opts[] = {
                { "webhook-id", NULL, OPT_STRING, &a_wh, "one webhook's deliveries" },
                { "event-id", NULL, OPT_STRING, &a_ev, "one event's deliveries" },
                { "status", NULL, OPT_STRING, &a_status,
                  "pending | retrying | delivered | failed | dead_lettered" },
                { "limit", NULL, OPT_INT, &a_limit, "default 10" },
                { "offset", NULL, OPT_INT, &a_offset, "skip N" },
                {}
        };
        cleanup_free char **pos = NULL;
        struct cli_req rq = { .action = "list webhook deliveries", .method = "GET" };
        int n = opt_parse(argc, argv, opts, &help, 0, &pos);

        if (n < 0)
                return EXIT_USAGE;
        if (n > 0)
                return usage_error(&help, "unexpected argument '%s'", pos[0]);
        rq.path = a_wh ? xasprintf("/events/webhooks/%s/deliveries", a_wh)
                       : xstrdup("/events/webhook-deliveries");
        rq.query = json_pack("{s:I}", "limit", (json_int_t)(a_limit >= 0 ? a_limit : 10));
        if (a_ev)
                json_object_set_new(rq.query, "eventID", json_string(a_ev));
        if (a_status)
                json_object_set_new(rq.query, "status", json_string(a_status));
        if (a_offset >= 0)
                json_object_set_new(rq.query, "offset", json_integer(a_offset));
        return cli_run(&rq, deliveries_table, NULL);
}

static int webhook_group(int argc, char **argv)
{
        static const struct cmd cmds[] = {
                { "create", NULL, webhook_create, "create a webhook" },
                { "update", NULL, webhook_update, "change a webhook" },
                { "list", "ls", webhook_list, "list webhooks" },
                { "get", NULL, webhook_get, "show a webhook" },
                { "delete", "rm", webhook_delete, "delete a webhook" },
                { "deliveries", NULL, webhook_deliveries, "list deliveries" },
                { "replay", NULL, webhook_replay, "send a delivery again" },
                {}
        };
        return cmd_dispatch(cmds, argv[0], argc, argv);
}

static void teams_table(const json_t *body)
{
        static const char *const h[] = { "TEAM", "NAME", "KEY", "DEFAULT" };
        struct table *t = table_new(h, ARRAY_SIZE(h));
        const json_t *x;
        size_t i;

        json_array_foreach (body, i, x)
                table_add(t, json_str(x, "teamID"), json_str(x, "name"), json_str(x, "apiKey"),
                          json_is_true(json_object_get(x, "isDefault")) ? "yes" : "");
        table_print_free(t);
}

static int team_list(int argc, char **argv)
{
        static const struct cmd_help help = { "cove sandbox team list", "List your teams." };

        return simple_cmd(argc, argv, &help, 0, "list teams", "GET", "/teams", false, teams_table);
}

static int team_metrics_common(int argc, char **argv, bool max)
{
        static const struct cmd_help help = { "cove sandbox team metrics <team-id> [--start UNIX] "
                                              "[--end UNIX]",
                                              "Team metrics over time." };
        static const struct cmd_help help_max = {
                "cove sandbox team metrics-max <team-id> [--metric M] [--start UNIX] [--end UNIX]",
                "The maximum of a team metric (concurrent_sandboxes | sandbox_start_rate)."
        };
        static int64_t a_start = -1, a_end = -1;
        static const char *a_metric = "concurrent_sandboxes";
        static const struct opt opts[] = { { "start", NULL, OPT_INT, &a_start, "Unix seconds" },
                                           { "end", NULL, OPT_INT, &a_end, "Unix seconds" },
                                           { "metric", NULL, OPT_STRING, &a_metric,
                                             "metrics-max only" },
                                           {} };
        cleanup_free char **pos = NULL;
        struct cli_req rq = { .action = max ? "team metrics max" : "team metrics",
                              .method = "GET" };
        const struct cmd_help *h = max ? &help_max : &help;
        int n = opt_parse(argc, argv, opts, h, 0, &pos);

        if (n < 0)
                return EXIT_USAGE;
        if (n != 1)
                return usage_error(h, "expected a team ID");
        rq.path = xasprintf("/teams/%s/metrics%s", pos[0], max ? "/max" : "");
        rq.ids = ids_of(pos);
        rq.query = json_object();
        if (max)
                json_object_set_new(rq.query, "metric", json_string(a_metric));
        if (a_start >= 0)
                json_object_set_new(rq.query, "start", json_integer(a_start));
        if (a_end >= 0)
                json_object_set_new(rq.query, "end", json_integer(a_end));
        return cli_run(&rq, NULL, NULL);
}

static int team_metrics(int argc, char **argv)
{
        return team_metrics_common(argc, argv, false);
}

static int team_metrics_max(int argc, char **argv)
{
        return team_metrics_common(argc, argv, true);
}

static int team_group(int argc, char **argv)
{
        static const struct cmd cmds[] = { { "list", "ls", team_list, "list your teams" },
                                           { "metrics", NULL, team_metrics, "team metrics" },
                                           { "metrics-max", NULL, team_metrics_max,
                                             "maximum of a team metric" },
                                           {} };
        return cmd_dispatch(cmds, argv[0], argc, argv);
}

static void observability_table(const json_t *body)
{
        const json_t *c;
        const char *k;
        size_t i;

        printf("Status: %s\n", json_str(body, "status") ? json_str(body, "status") : "-");
        json_object_foreach ((json_t *)json_object_get(body, "availability"), k, c)
                printf("  %-10s %s%s%s\n", k, json_str(c, "status") ? json_str(c, "status") : "-",
                       json_str(c, "message") ? ": " : "",
                       json_str(c, "message") ? json_str(c, "message") : "");
        json_array_foreach (json_object_get(body, "checks"), i, c)
                printf("  check  %-9s %s %s/%s: %lld of %lld\n",
                       json_str(c, "status") ? json_str(c, "status") : "-",
                       json_str(c, "scope") ? json_str(c, "scope") : "-",
                       json_str(c, "resource") ? json_str(c, "resource") : "-",
                       json_str(c, "metric") ? json_str(c, "metric") : "-",
                       (long long)json_integer_value(json_object_get(c, "used")),
                       (long long)json_integer_value(json_object_get(c, "limit")));
        json_array_foreach (json_object_get(body, "actions"), i, c)
                printf("  action %-13s %s\n", json_str(c, "status") ? json_str(c, "status") : "-",
                       json_str(c, "message") ? json_str(c, "message") : "-");
}

static int sandbox_observability(int argc, char **argv)
{
        static const struct cmd_help help = { "cove sandbox observability",
                                              "Health summary of the fleet." };
        cleanup_free char **pos = NULL;
        struct cli_req rq = { .action = "observability summary", .method = "GET" };
        int n = opt_parse(argc, argv, NULL, &help, 0, &pos);

        if (n < 0)
                return EXIT_USAGE;
        rq.path = xstrdup("/observability/summary");
        return cli_run(&rq, observability_table, NULL);
}

static void usage_table(const json_t *body)
{
        static const char *const h[] = { "SCOPE", "ID", "METRIC", "USED", "LIMIT" };
        struct table *t = table_new(h, ARRAY_SIZE(h));
        static const char *const scopes[] = { "project", "user" };

        for (size_t s = 0; s < ARRAY_SIZE(scopes); s++) {
                const json_t *sc = json_object_get(body, scopes[s]), *v;
                const json_t *limits = json_object_get(sc, "limits");
                const char *k;
                json_object_foreach ((json_t *)json_object_get(sc, "usage"), k, v) {
                        char used[32], lim[32] = "-";
                        const json_t *l = json_object_get(limits, k);
                        (void)snprintf(used, sizeof(used), "%lld",
                                       (long long)json_integer_value(v));
                        if (l)
                                (void)snprintf(
                                        lim, sizeof(lim), "%lld",
                                        (long long)json_integer_value(json_object_get(l, "limit")));
                        table_add(t, scopes[s], json_str(sc, "id"), k, used, lim);
                }
        }
        table_print_free(t);
        const json_t *rt = json_object_get(body, "runtime");
        if (rt)
                printf("Longest sandbox lifetime: %lld s\n",
                       (long long)json_integer_value(json_object_get(rt, "maxRuntimeSeconds")));
}

static int sandbox_usage(int argc, char **argv)
{
        static const struct cmd_help help = {
                "cove sandbox usage [--resource sandboxes|templates]",
                "What your team and your key use, against the limits the operator set."
        };
        static const char *a_resource;
        static const struct opt opts[] = {
                { "resource", NULL, OPT_STRING, &a_resource, "sandboxes (default) | templates" }, {}
        };
        cleanup_free char **pos = NULL;
        struct cli_req rq = { .action = "usage limits", .method = "GET" };
        int n = opt_parse(argc, argv, opts, &help, 0, &pos);

        if (n < 0)
                return EXIT_USAGE;
        if (n > 0)
                return usage_error(&help, "unexpected argument '%s'", pos[0]);
        if (a_resource && !streq(a_resource, "sandboxes") && !streq(a_resource, "templates"))
                return usage_error(&help, "--resource takes sandboxes or templates");
        rq.path = xstrdup("/usage/limits");
        rq.query = json_object();
        if (a_resource)
                json_object_set_new(rq.query, "resource", json_string(a_resource));
        return cli_run(&rq, usage_table, NULL);
}

static const struct cmd sandbox_cmds[] = {
        { "create", NULL, sandbox_create, "create a sandbox (and open a shell on a terminal)" },
        { "list", "ls", sandbox_list, "list sandboxes" },
        { "info", "get", sandbox_info, "show a sandbox as JSON" },
        { "exec", NULL, cmd_sandbox_exec, "run a command, streaming its output" },
        { "connect", NULL, cmd_sandbox_connect, "open an interactive shell" },
        { "run", NULL, cmd_sandbox_run, "run a command in a new sandbox, then delete it" },
        { "upload", NULL, cmd_sandbox_upload, "copy a local file into a sandbox" },
        { "download", NULL, cmd_sandbox_download, "copy a file out of a sandbox" },
        { "wake", NULL, cmd_sandbox_wake, "resume a paused sandbox" },
        { "logs", NULL, sandbox_logs, "show a sandbox's logs" },
        { "metrics", NULL, sandbox_metrics, "resource metrics" },
        { "pause", NULL, sandbox_pause, "pause a sandbox" },
        { "timeout", NULL, sandbox_timeout, "set the expiry" },
        { "refresh", NULL, sandbox_refresh, "extend the lifetime" },
        { "kill", "delete rm", sandbox_kill, "delete sandboxes" },
        { "network", NULL, network_group, "network policy" },
        { "volume", "volumes", volume_group, "team volumes" },
        { "events", NULL, sandbox_events, "lifecycle events" },
        { "webhook", "webhooks", webhook_group, "lifecycle webhooks" },
        { "team", "teams", team_group, "teams and their metrics" },
        { "observability", NULL, sandbox_observability, "fleet health summary" },
        { "usage", NULL, sandbox_usage, "usage and limits of your team and key" },
        {}
};

int cmd_sandbox(int argc, char **argv)
{
        return cmd_dispatch(sandbox_cmds, argv[0], argc, argv);
}
