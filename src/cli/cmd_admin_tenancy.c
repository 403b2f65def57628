/* SPDX-License-Identifier: MIT */
/*
 * cmd_admin_tenancy.c — `cove admin team …` and `cove admin key …` (Cove additions to cli.md,
 * docs/cli.md): the operator's teams, API keys and limits through the admin routes (an admin
 * key is needed). cmd_admin.c dispatches to them.
 *
 *   cove admin team list | create <name> | get <team-id>
 *   cove admin team limits <team-id> [--set metric=value…] [--clear metric…]
 *   cove admin key list [--team ID] | create [--team ID] [--role admin|user] [--name N]
 *                       [--also-team ID…] [--e2b] | get <key-id> | revoke <key-id>
 *                       | add-team <key-id> <team-id>
 *   cove admin key limits <key-id> [--set metric=value…] [--clear metric…]
 *
 * Answers are wrapped (README §4.3); tables show their data, --output json the whole body.
 */
#include "cli.h"

#include "lib/macro.h"
#include "lib/parse.h"

#include "lib/banned.h" /* last */

static const json_t *data_of(const json_t *body)
{
        const json_t *d = json_object_get(body, "data");
        return d ? d : body;
}

static void teams_table(const json_t *body)
{
        static const char *const h[] = { "TEAM", "NAME", "CREATED" };
        struct table *t = table_new(h, ARRAY_SIZE(h));
        const json_t *x, *d = data_of(body);
        size_t i;

        if (json_is_object(d)) {
                table_add(t, json_str(d, "teamID"), json_str(d, "name"),
                          short_time(json_str(d, "createdAt")));
        } else {
                json_array_foreach (d, i, x)
                        table_add(t, json_str(x, "teamID"), json_str(x, "name"),
                                  short_time(json_str(x, "createdAt")));
        }
        table_print_free(t);
}

static void key_row(struct table *t, const json_t *k)
{
        table_add(t, json_str(k, "keyID"), json_str(k, "apiKey"), json_str(k, "role"),
                  json_str(k, "teamID"), json_str(k, "name"),
                  json_is_true(json_object_get(k, "revoked")) ? "revoked" : "valid");
}

static void keys_table(const json_t *body)
{
        static const char *const h[] = { "KEY", "MASKED", "ROLE", "TEAM", "NAME", "STATE" };
        struct table *t = table_new(h, ARRAY_SIZE(h));
        const json_t *x, *d = data_of(body);
        size_t i;

        if (json_is_object(d))
                key_row(t, d);
        else
                json_array_foreach (d, i, x)
                        key_row(t, x);
        table_print_free(t);
        if (json_is_object(d) && json_str(d, "key"))
                printf("\nAPI key (shown once, store it now): %s\n", json_str(d, "key"));
}

static void limits_table(const json_t *body)
{
        static const char *const h[] = { "LIMIT", "VALUE", "FROM" };
        struct table *t = table_new(h, ARRAY_SIZE(h));
        const json_t *d = data_of(body), *v, *set = json_object_get(d, "set");
        const char *k;

        json_object_foreach ((json_t *)json_object_get(d, "limits"), k, v) {
                char val[32] = "none";
                bool own = false;
                const json_t *x;
                size_t i;
                if (json_is_integer(v))
                        (void)snprintf(val, sizeof(val), "%lld", (long long)json_integer_value(v));
                json_array_foreach (set, i, x)
                        own |= streq(json_string_value(x), k);
                table_add(t, k, val,
                          own ? "set here"
                          : streq(json_str(d, "scope") ? json_str(d, "scope") : "", "project")
                                  ? "config default"
                                  : "-");
        }
        table_print_free(t);
}

static int one_arg(int n, char **pos, const struct cmd_help *help, int want)
{
        if (n > want)
                return usage_error(help, "unexpected argument '%s'", pos[want]);
        if (n < 0)
                return EXIT_USAGE;
        if (n != want)
                return usage_error(help, "expected %d argument%s", want, want == 1 ? "" : "s");
        return 0;
}

/* ---- teams ---- */

static int team_list(int argc, char **argv)
{
        static const struct cmd_help help = { "cove admin team list", "List every team." };
        cleanup_free char **pos = NULL;
        struct cli_req rq = { .action = "list teams", .method = "GET" };
        int n = opt_parse(argc, argv, NULL, &help, 0, &pos);
        int r = one_arg(n, pos, &help, 0);

        if (r)
                return r;
        rq.path = xstrdup("/admin/teams");
        return cli_run(&rq, teams_table, NULL);
}

static int team_create(int argc, char **argv)
{
        static const struct cmd_help help = { "cove admin team create <name>", "Create a team." };
        cleanup_free char **pos = NULL;
        struct cli_req rq = { .action = "create team", .method = "POST" };
        int n = opt_parse(argc, argv, NULL, &help, 0, &pos);
        int r = one_arg(n, pos, &help, 1);

        if (r)
                return r;
        rq.path = xstrdup("/admin/teams");
        rq.body = json_pack("{s:s}", "name", pos[0]);
        return cli_run(&rq, teams_table, NULL);
}

static int team_get(int argc, char **argv)
{
        static const struct cmd_help help = { "cove admin team get <team-id>",
                                              "A team with its usage and limits (JSON)." };
        cleanup_free char **pos = NULL;
        struct cli_req rq = { .action = "get team", .method = "GET" };
        int n = opt_parse(argc, argv, NULL, &help, 0, &pos);
        int r = one_arg(n, pos, &help, 1);

        if (r)
                return r;
        rq.path = xasprintf("/admin/teams/%s", pos[0]);
        rq.ids = json_pack("[s]", pos[0]);
        return cli_run(&rq, NULL, NULL);
}

/* `limits <id> [--set m=v…] [--clear m…]` of a team or a key. */
static int limits_cmd(int argc, char **argv, bool key)
{
        static const struct cmd_help team_help = {
                "cove admin team limits <team-id> [--set METRIC=N…] [--clear METRIC…]",
                "Show or change a team's limits (0 = no limit; --clear: back to the config "
                "default). Metrics: concurrentSandboxes, cpuCount, memoryMB, diskSizeMB, "
                "templates, concurrentBuilds, maxLifetimeSeconds."
        };
        static const struct cmd_help key_help = {
                "cove admin key limits <key-id> [--set METRIC=N…] [--clear METRIC…]",
                "Show or change an API key's own limits (scope user), as for teams."
        };
        static char **a_set, **a_clear;
        static const struct opt opts[] = {
                { "set", NULL, OPT_LIST, &a_set, "METRIC=N (repeatable)" },
                { "clear", NULL, OPT_LIST, &a_clear, "METRIC (repeatable)" },
                {}
        };
        const struct cmd_help *help = key ? &key_help : &team_help;
        cleanup_free char **pos = NULL;
        struct cli_req rq = { .action = key ? "key limits" : "team limits", .method = "GET" };
        int n = opt_parse(argc, argv, opts, help, 0, &pos);
        int r = one_arg(n, pos, help, 1);

        if (r)
                return r;
        rq.path = xasprintf("/admin/%s/%s/limits", key ? "keys" : "teams", pos[0]);
        rq.ids = json_pack("[s]", pos[0]);
        if (a_set || a_clear) {
                json_t *body = NULL;
                if (parse_kv_list(a_set, "set", &body) < 0) {
                        cli_req_release(&rq);
                        return EXIT_USAGE;
                }
                const char *k;
                json_t *v;
                void *tmp;
                json_object_foreach_safe(body, tmp, k, v)
                {
                        int64_t i;
                        if (safe_atoi64(json_string_value(v), &i) < 0 || i < 0) {
                                json_decref(body);
                                cli_req_release(&rq);
                                return usage_error(help,
                                                   "--set %s: the value must be an integer "
                                                   ">= 0",
                                                   k);
                        }
                        json_object_set_new(body, k, json_integer(i));
                }
                for (char **c = a_clear; c && *c; c++)
                        json_object_set_new(body, *c, json_null());
                rq.method = "PUT";
                rq.body = body;
        }
        return cli_run(&rq, limits_table, NULL);
}

static int team_limits(int argc, char **argv)
{
        return limits_cmd(argc, argv, false);
}

int cmd_admin_team(int argc, char **argv)
{
        static const struct cmd cmds[] = {
                { "list", "ls", team_list, "list teams" },
                { "create", NULL, team_create, "create a team" },
                { "get", NULL, team_get, "a team with usage and limits" },
                { "limits", NULL, team_limits, "show or change a team's limits" },
                {}
        };
        return cmd_dispatch(cmds, argv[0], argc, argv);
}

/* ---- keys ---- */

static int key_list(int argc, char **argv)
{
        static const struct cmd_help help = { "cove admin key list [--team TEAM-ID]",
                                              "List API keys, masked to their last 4 characters." };
        static const char *a_team;
        static const struct opt opts[] = {
                { "team", NULL, OPT_STRING, &a_team, "only this team's keys" }, {}
        };
        cleanup_free char **pos = NULL;
        struct cli_req rq = { .action = "list keys", .method = "GET" };
        int n = opt_parse(argc, argv, opts, &help, 0, &pos);
        int r = one_arg(n, pos, &help, 0);

        if (r)
                return r;
        rq.path = xstrdup("/admin/keys");
        if (a_team)
                rq.query = json_pack("{s:s}", "teamID", a_team);
        return cli_run(&rq, keys_table, NULL);
}

static int key_create(int argc, char **argv)
{
        static const struct cmd_help help = {
                "cove admin key create [--team TEAM-ID] [--role admin|user] [--name NAME] "
                "[--also-team TEAM-ID…] [--e2b]",
                "Create an API key (default: a user key of team_default). The key is printed "
                "once; only its hash is kept. --e2b: a key of E2B's form (e2b_ + 40 hex), which "
                "E2B's Python SDK requires."
        };
        static const char *a_team, *a_role, *a_name;
        static char **a_also;
        static int a_e2b = -1;
        static const struct opt opts[] = {
                { "team", NULL, OPT_STRING, &a_team, "the key's own team" },
                { "role", NULL, OPT_STRING, &a_role, "admin | user (default user)" },
                { "name", NULL, OPT_STRING, &a_name, "a label" },
                { "also-team", NULL, OPT_LIST, &a_also, "more teams it may act in" },
                { "e2b", NULL, OPT_BOOL, &a_e2b, "e2b_ + 40 hex, for E2B's SDKs" },
                {}
        };
        cleanup_free char **pos = NULL;
        struct cli_req rq = { .action = "create key", .method = "POST" };
        int n = opt_parse(argc, argv, opts, &help, 0, &pos);
        int r = one_arg(n, pos, &help, 0);

        if (r)
                return r;
        if (a_role && !streq(a_role, "admin") && !streq(a_role, "user") && !streq(a_role, "member"))
                return usage_error(&help, "--role takes admin or user");
        rq.path = xstrdup("/admin/keys");
        rq.body = json_object();
        if (a_team)
                json_object_set_new(rq.body, "teamID", json_string(a_team));
        if (a_role)
                json_object_set_new(rq.body, "role", json_string(a_role));
        if (a_name)
                json_object_set_new(rq.body, "name", json_string(a_name));
        if (a_e2b == 1)
                json_object_set_new(rq.body, "format", json_string("e2b"));
        if (a_also) {
                json_t *a = json_array();
                for (char **t = a_also; *t; t++)
                        json_array_append_new(a, json_string(*t));
                json_object_set_new(rq.body, "teams", a);
        }
        return cli_run(&rq, keys_table, NULL);
}

static int key_simple(int argc, char **argv, const struct cmd_help *help, const char *action,
                      const char *method, bool destructive)
{
        cleanup_free char **pos = NULL;
        struct cli_req rq = { .action = action, .method = method, .destructive = destructive };
        int n = opt_parse(argc, argv, NULL, help, 0, &pos);
        int r = one_arg(n, pos, help, 1);

        if (r)
                return r;
        rq.path = xasprintf("/admin/keys/%s", pos[0]);
        rq.ids = json_pack("[s]", pos[0]);
        return cli_run(&rq, keys_table, NULL);
}

static int key_get(int argc, char **argv)
{
        static const struct cmd_help help = { "cove admin key get <key-id>", "Show an API key." };
        return key_simple(argc, argv, &help, "get key", "GET", false);
}

static int key_revoke(int argc, char **argv)
{
        static const struct cmd_help help = {
                "cove admin key revoke <key-id>",
                "Revoke an API key: requests with it fail from the next one on."
        };
        return key_simple(argc, argv, &help, "revoke key", "DELETE", true);
}

static int key_add_team(int argc, char **argv)
{
        static const struct cmd_help help = {
                "cove admin key add-team <key-id> <team-id>",
                "Let a key act in one more team (with X-Project-ID / --project-id)."
        };
        cleanup_free char **pos = NULL;
        struct cli_req rq = { .action = "add team to key", .method = "POST" };
        int n = opt_parse(argc, argv, NULL, &help, 0, &pos);
        int r = one_arg(n, pos, &help, 2);

        if (r)
                return r;
        rq.path = xasprintf("/admin/keys/%s/teams", pos[0]);
        rq.ids = json_pack("[s]", pos[0]);
        rq.body = json_pack("{s:s}", "teamID", pos[1]);
        return cli_run(&rq, keys_table, NULL);
}

static int key_limits(int argc, char **argv)
{
        return limits_cmd(argc, argv, true);
}

int cmd_admin_key(int argc, char **argv)
{
        static const struct cmd cmds[] = {
                { "list", "ls", key_list, "list keys (masked)" },
                { "create", NULL, key_create, "create a key (printed once)" },
                { "get", NULL, key_get, "show a key" },
                { "revoke", "rm delete", key_revoke, "revoke a key" },
                { "add-team", NULL, key_add_team, "let a key act in another team" },
                { "limits", NULL, key_limits, "show or change a key's limits" },
                {}
        };
        return cmd_dispatch(cmds, argv[0], argc, argv);
}
