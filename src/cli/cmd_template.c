/* SPDX-License-Identifier: MIT */
/*
 * cmd_template.c — `cove template …` (cli.md §5): request builders over the build plane.
 * `template init` and `template build` have files of their own (cmd_template_init.c,
 * cmd_template_build.c).
 */
#include "cli.h"

#include "lib/macro.h"

#include "lib/banned.h" /* last */

static int send_print(struct cli_req *rq, void (*table)(const json_t *))
{
        struct cove_response res = {};
        int r = cli_call(rq, &res);

        cli_req_release(rq);
        if (r == CLI_DRY_RUN)
                return 0;
        if (r)
                return r;
        if (arg_output == OUTPUT_TABLE && table && res.body)
                table(res.body);
        else if (res.body)
                print_json(res.body);
        else if (arg_output == OUTPUT_TABLE)
                printf("Done\n");
        cove_response_release(&res);
        return 0;
}

/* GET /templates/resolve/{ref} → the template ID. Under --dry-run, *ret_id is `ref`. */
static int resolve(const char *ref, char **ret_id)
{
        struct cli_req rq = { .action = "resolve template", .method = "GET" };
        struct cove_response res = {};
        const char *id;
        int r;

        if (arg_dry_run) {
                *ret_id = xstrdup(ref);
                return 0;
        }
        rq.path = xasprintf("/templates/resolve/%s", ref);
        r = cli_call(&rq, &res);
        cli_req_release(&rq);
        if (r)
                return r;
        id = json_str(res.body, "templateID");
        *ret_id = xstrdup(id ? id : ref);
        cove_response_release(&res);
        return 0;
}

static void templates_table(const json_t *body)
{
        static const char *const hdr[] = { "TEMPLATE ID", "NAMES", "STATUS", "PUBLIC", "UPDATED" };
        struct table *t = table_new(hdr, ARRAY_SIZE(hdr));
        const json_t *tp, *nm;
        size_t i, k;

        json_array_foreach ((json_t *)body, i, tp) {
                char names[256] = "";
                size_t used = 0;

                json_array_foreach (json_object_get(tp, "names"), k, nm)
                        if (used + 2 < sizeof(names))
                                used += (size_t)snprintf(names + used, sizeof(names) - used, "%s%s",
                                                         k ? "," : "", json_string_value(nm));
                table_add(t, json_str(tp, "templateID"), names, json_str(tp, "buildStatus"),
                          json_is_true(json_object_get(tp, "public")) ? "yes" : "no",
                          short_time(json_str(tp, "updatedAt")));
        }
        table_print_free(t);
}

static int template_list(int argc, char **argv)
{
        static const struct cmd_help help = { "cove template list [--visibility V] [--limit N] "
                                              "[--offset N]",
                                              "List templates." };
        static const char *a_vis;
        static int64_t a_limit = -1, a_offset = -1;
        static const struct opt opts[] = { { "visibility", NULL, OPT_STRING, &a_vis,
                                             "personal | private | team | public" },
                                           { "limit", NULL, OPT_INT, &a_limit, "page size" },
                                           { "offset", NULL, OPT_INT, &a_offset, "skip N" },
                                           {} };
        cleanup_free char **pos = NULL;
        struct cli_req rq = { .action = "list templates", .method = "GET" };
        int n = opt_parse(argc, argv, opts, &help, 0, &pos);

        if (n < 0)
                return EXIT_USAGE;
        rq.path = xstrdup("/templates");
        rq.query = json_object();
        if (a_vis)
                json_object_set_new(rq.query, "visibility", json_string(a_vis));
        if (a_limit >= 0)
                json_object_set_new(rq.query, "limit", json_integer(a_limit));
        if (a_offset >= 0)
                json_object_set_new(rq.query, "offset", json_integer(a_offset));
        return send_print(&rq, templates_table);
}

/* `<verb> <template> [more…]`: resolve the template, then `method` on fmt(id, pos[1]). */
static int resolved_cmd(int argc, char **argv, const struct cmd_help *help, const struct opt *opts,
                        int nargs, const char *action, const char *method, const char *fmt,
                        void (*fill_query)(json_t *q), bool destructive)
{
        cleanup_free char **pos = NULL;
        cleanup_free char *id = NULL;
        struct cli_req rq = { .action = action, .method = method, .destructive = destructive };
        int n = opt_parse(argc, argv, opts, help, 0, &pos);
        int r;

        if (fill_query && n >= 0) {
                rq.query = json_object();
                fill_query(rq.query); /* reads the flags just parsed */
        }

        if (n < 0 || n != nargs) {
                cli_req_release(&rq);
                return n < 0 ? EXIT_USAGE
                             : usage_error(help, "expected %d argument%s", nargs,
                                           nargs == 1 ? "" : "s");
        }
        r = resolve(pos[0], &id);
        if (r) {
                cli_req_release(&rq);
                return r;
        }
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
        rq.path = xasprintf(fmt, id, n > 1 ? pos[1] : "");
#pragma GCC diagnostic pop
        rq.ids = json_pack("[s]", pos[0]);
        if (arg_dry_run)
                cli_req_note(&rq,
                             "the reference '%s' is first resolved with GET "
                             "/templates/resolve/%s",
                             pos[0], pos[0]);
        return send_print(&rq, NULL);
}

static int64_t g_limit = -1, g_offset = -1, g_cursor = -1;
static const char *g_next, *g_level, *g_dir;

static void set_int(json_t *q, const char *k, int64_t v)
{
        if (v >= 0)
                json_object_set_new(q, k, json_integer(v));
}

static void set_str(json_t *q, const char *k, const char *v)
{
        if (v)
                json_object_set_new(q, k, json_string(v));
}

static void get_query(json_t *q)
{
        set_int(q, "limit", g_limit);
        set_str(q, "nextToken", g_next);
}

static void status_query(json_t *q)
{
        set_int(q, "logsOffset", g_offset);
        set_int(q, "limit", g_limit);
        set_str(q, "level", g_level);
}

static void logs_query(json_t *q)
{
        if (g_cursor > 0)
                set_int(q, "cursor", g_cursor);
        set_int(q, "limit", g_limit);
        set_str(q, "direction", g_dir);
        set_str(q, "level", g_level);
}

static int template_get(int argc, char **argv)
{
        static const struct cmd_help help = { "cove template get <template> [--limit N] "
                                              "[--next-token T]",
                                              "Show a template and its build history." };
        static const struct opt opts[] = { { "limit", NULL, OPT_INT, &g_limit, "builds per page" },
                                           { "next-token", NULL, OPT_STRING, &g_next,
                                             "build ID to continue from" },
                                           {} };

        return resolved_cmd(argc, argv, &help, opts, 1, "get template", "GET", "/templates/%s%s",
                            get_query, false);
}

static int template_delete(int argc, char **argv)
{
        static const struct cmd_help help = { "cove template delete <template>",
                                              "Delete a template." };

        return resolved_cmd(argc, argv, &help, NULL, 1, "delete template", "DELETE",
                            "/templates/%s%s", NULL, true);
}

/* POST /templates/{id}/rollback {buildID} (build-plane.md §10): the build stays current until
 * a later one is rolled back to or the pin is released. */
static int template_rollback(int argc, char **argv)
{
        static const struct cmd_help help = { "cove template rollback <template> <buildID>",
                                              "Make an earlier ready build the current one." };
        cleanup_free char **pos = NULL;
        cleanup_free char *id = NULL;
        struct cli_req rq = { .action = "roll back template", .method = "POST" };
        int n = opt_parse(argc, argv, NULL, &help, 0, &pos);
        int r;

        if (n < 0 || n != 2)
                return n < 0 ? EXIT_USAGE : usage_error(&help, "expected 2 arguments");
        r = resolve(pos[0], &id);
        if (r)
                return r;
        rq.path = xasprintf("/templates/%s/rollback", id);
        rq.body = json_pack("{s:s}", "buildID", pos[1]);
        rq.ids = json_pack("[s]", pos[0]);
        if (arg_dry_run)
                cli_req_note(&rq,
                             "the reference '%s' is first resolved with GET "
                             "/templates/resolve/%s",
                             pos[0], pos[0]);
        return send_print(&rq, NULL);
}

static int template_builds(int argc, char **argv)
{
        static const struct cmd_help help = { "cove template builds <template>",
                                              "List a template's builds." };

        return resolved_cmd(argc, argv, &help, NULL, 1, "list builds", "GET",
                            "/templates/%s/builds%s", NULL, false);
}

static int template_status(int argc, char **argv)
{
        static const struct cmd_help help = { "cove template status <template> <build-id> "
                                              "[--logs-offset N] [--limit N] [--level L]",
                                              "A build's status and new log entries." };
        static const struct opt opts[] = { { "logs-offset", NULL, OPT_INT, &g_offset,
                                             "log entries to skip" },
                                           { "limit", NULL, OPT_INT, &g_limit, "log entries" },
                                           { "level", NULL, OPT_STRING, &g_level, "minimum level" },
                                           {} };

        return resolved_cmd(argc, argv, &help, opts, 2, "build status", "GET",
                            "/templates/%s/builds/%s/status", status_query, false);
}

static int template_logs(int argc, char **argv)
{
        static const struct cmd_help help = { "cove template logs <template> <build-id> "
                                              "[--cursor N] [--limit N] [--direction D] "
                                              "[--level L]",
                                              "A build's log entries." };
        static const struct opt opts[] = {
                { "cursor", NULL, OPT_INT, &g_cursor, "entry to start at" },
                { "limit", NULL, OPT_INT, &g_limit, "entries" },
                { "direction", NULL, OPT_STRING, &g_dir, "forward | backward" },
                { "level", NULL, OPT_STRING, &g_level, "minimum level" },
                {}
        };

        return resolved_cmd(argc, argv, &help, opts, 2, "build logs", "GET",
                            "/templates/%s/builds/%s/logs", logs_query, false);
}

static int template_exists(int argc, char **argv)
{
        static const struct cmd_help help = { "cove template exists <template>",
                                              "Print true or false; exit 0 either way." };
        cleanup_free char **pos = NULL;
        struct cli_req rq = { .action = "resolve template", .method = "GET" };
        struct cove_error *err = NULL;
        struct cove_response res = {};
        bool exists;
        int n = opt_parse(argc, argv, NULL, &help, 0, &pos);

        if (n < 0)
                return EXIT_USAGE;
        if (n != 1)
                return usage_error(&help, "expected a template reference");
        rq.path = xasprintf("/templates/resolve/%s", pos[0]);
        if (arg_dry_run) {
                cli_print_dry_run(&rq);
                cli_req_release(&rq);
                return 0;
        }
        if (cove_api_call(cli_client(), "GET", rq.path, NULL, NULL, &res, &err) < 0) {
                if (err->kind != COVE_ERROR_NOT_FOUND) {
                        cli_req_release(&rq);
                        return cli_error(&err);
                }
                cove_error_free(&err);
                exists = false;
        } else {
                exists = true;
        }
        cove_response_release(&res);
        cli_req_release(&rq);
        if (arg_output == OUTPUT_JSON) {
                json_t *o = json_pack("{s:s,s:b}", "template", pos[0], "exists", exists);

                print_json(o);
                json_decref(o);
        } else {
                printf("%s\n", exists ? "true" : "false");
        }
        return 0;
}

static int tags_assign(int argc, char **argv)
{
        static const struct cmd_help help = { "cove template tags assign <target> <tag…>",
                                              "Point tags at a template build." };
        cleanup_free char **pos = NULL;
        struct cli_req rq = { .action = "assign tags", .method = "POST" };
        json_t *tags;
        int n = opt_parse(argc, argv, NULL, &help, 0, &pos);

        if (n < 0)
                return EXIT_USAGE;
        if (n < 2)
                return usage_error(&help, "expected a target and at least one tag");
        tags = json_array();
        for (int i = 1; i < n; i++)
                json_array_append_new(tags, json_string(pos[i]));
        rq.path = xstrdup("/templates/tags");
        rq.body = json_pack("{s:s,s:o}", "target", pos[0], "tags", tags);
        return send_print(&rq, NULL);
}

static int tags_remove(int argc, char **argv)
{
        static const struct cmd_help help = { "cove template tags remove <template> <tag…>",
                                              "Remove tags from a template." };
        cleanup_free char **pos = NULL;
        struct cli_req rq = { .action = "remove tags", .method = "DELETE", .destructive = true };
        json_t *tags;
        int n = opt_parse(argc, argv, NULL, &help, 0, &pos);

        if (n < 0)
                return EXIT_USAGE;
        if (n < 2)
                return usage_error(&help, "expected a template and at least one tag");
        tags = json_array();
        for (int i = 1; i < n; i++)
                json_array_append_new(tags, json_string(pos[i]));
        rq.path = xstrdup("/templates/tags");
        rq.body = json_pack("{s:s,s:o}", "name", pos[0], "tags", tags);
        return send_print(&rq, NULL);
}

static int tags_list(int argc, char **argv)
{
        static const struct cmd_help help = { "cove template tags list <template>",
                                              "List a template's tags." };

        return resolved_cmd(argc, argv, &help, NULL, 1, "list tags", "GET", "/templates/%s/tags%s",
                            NULL, false);
}

static int tags_group(int argc, char **argv)
{
        static const struct cmd cmds[] = { { "assign", NULL, tags_assign, "point tags at a build" },
                                           { "list", "ls", tags_list, "list tags" },
                                           { "remove", "rm", tags_remove, "remove tags" },
                                           {} };
        return cmd_dispatch(cmds, argv[0], argc, argv);
}

static const struct cmd template_cmds[] = {
        { "init", NULL, cmd_template_init, "write a starter template project here" },
        { "build", NULL, cmd_template_build, "build a template and follow its log" },
        { "list", "ls", template_list, "list templates" },
        { "get", NULL, template_get, "show a template" },
        { "delete", "rm", template_delete, "delete a template" },
        { "exists", NULL, template_exists, "does a template reference resolve?" },
        { "builds", NULL, template_builds, "list builds" },
        { "status", NULL, template_status, "build status" },
        { "logs", NULL, template_logs, "build logs" },
        { "tags", NULL, tags_group, "template tags" },
        { "rollback", NULL, template_rollback, "make an earlier build current" },
        {}
};

int cmd_template(int argc, char **argv)
{
        return cmd_dispatch(template_cmds, argv[0], argc, argv);
}
