/* SPDX-License-Identifier: MIT */
/*
 * cmd_auth.c — `cove auth login|status|set-key|logout` (cli.md §3).
 *
 * The key is checked with GET /teams. A server that does not serve /teams yet answers 404
 * "no route"; then GET /sandboxes?limit=1 checks the key instead (docs/cli.md).
 */
#include "cli.h"

#include "lib/macro.h"

#include <termios.h>

#include "lib/banned.h" /* last */

/* "****f3a9" (cli.md §3: the key masked to its last 4 characters). */
static char *mask_key(const char *key)
{
        size_t n = key ? strlen(key) : 0;

        if (n == 0)
                return xstrdup("(none)");
        return xasprintf("****%s", n > 4 ? key + n - 4 : key);
}

/* 0 when the server accepts the key; *ret_team gets the default team's ID when known. */
static int check_key(struct cove_client *c, char **ret_team, struct cove_error **err)
{
        struct cove_response res = {};
        struct cove_error *e = NULL;
        json_t *query;
        int r;

        r = cove_api_call(c, "GET", "/teams", NULL, NULL, &res, &e);
        if (r == 0) {
                json_t *t;
                size_t i;
                char *team = NULL;

                json_array_foreach (res.body, i, t) {
                        if (json_is_true(json_object_get(t, "isDefault")) || !team) {
                                free(team);
                                team = json_str(t, "teamID") ? xstrdup(json_str(t, "teamID"))
                                                             : NULL;
                        }
                }
                cove_response_release(&res);
                *ret_team = team;
                return 0;
        }
        if (e->kind != COVE_ERROR_NOT_FOUND) {
                *err = e;
                return r;
        }
        /* No /teams route on this server: any authenticated list call checks the key. */
        cove_error_free(&e);
        query = json_pack("{s:i}", "limit", 1);
        r = cove_api_call(c, "GET", "/sandboxes", query, NULL, NULL, err);
        json_decref(query);
        if (r == 0)
                *ret_team = NULL;
        return r;
}

/* Reads one line from fd 0 (no echo when it is a terminal). Caller frees. */
static char *read_secret(const char *prompt)
{
        struct termios saved, t;
        bool tty = isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &saved) == 0;
        char *line = NULL;
        size_t cap = 0;
        ssize_t n;

        if (tty) {
                fprintf(stderr, "%s", prompt);
                t = saved;
                t.c_lflag &= ~(tcflag_t)ECHO;
                (void)tcsetattr(STDIN_FILENO, TCSAFLUSH, &t);
        }
        n = getline(&line, &cap, stdin);
        if (tty) {
                (void)tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved);
                fputc('\n', stderr);
        }
        if (n < 0) {
                free(line);
                return NULL;
        }
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r' || line[n - 1] == ' '))
                line[--n] = '\0';
        return line;
}

static int auth_login(int argc, char **argv)
{
        static const struct cmd_help help = {
                "cove auth login [--url URL] [--api-key KEY | --api-key-stdin]",
                "Check the server URL and API key with GET /api/v1/teams and store them (mode "
                "0600)\nin $XDG_CONFIG_HOME/cove/config.json (or $COVE_CONFIG). Asks for missing "
                "values on a terminal.\nA rejected key exits 3 and stores nothing."
        };
        static int arg_key_stdin = -1;
        static const struct opt opts[] = {
                { "api-key-stdin", NULL, OPT_BOOL, &arg_key_stdin, "read the key from stdin" }, {}
        };
        cleanup_free char **pos = NULL;
        cleanup_free char *key = NULL, *url = NULL, *team = NULL, *masked = NULL;
        struct cove_config cfg;
        struct cove_error *err = NULL;
        struct cove_client *c;
        int r;

        if (opt_parse(argc, argv, opts, &help, 0, &pos) < 0)
                return EXIT_USAGE;
        if (pos[0])
                return usage_error(&help, "unexpected argument '%s'", pos[0]);
        if (cove_config_load(&cfg, arg_url, arg_api_key, arg_project_id, &err) < 0)
                return cli_error(&err);
        url = xstrdup(cfg.url);
        if (arg_api_key)
                key = xstrdup(arg_api_key);
        else if (arg_key_stdin > 0 || !isatty(STDIN_FILENO))
                key = read_secret("");
        else
                key = read_secret("API key: ");
        if (!key || !*key) {
                cove_config_release(&cfg);
                return usage_error(&help, "no API key given (use --api-key or --api-key-stdin)");
        }
        if (arg_dry_run) {
                struct cli_req rq = { .action = "check API key",
                                      .method = "GET",
                                      .path = xstrdup("/teams") };

                cli_req_note(&rq, "then store the URL '%s' and the key in '%s' (mode 0600)", url,
                             cfg.config_path);
                cli_print_dry_run(&rq);
                cli_req_release(&rq);
                cove_config_release(&cfg);
                return 0;
        }
        c = cove_client_new(url, key, cfg.project_id);
        r = check_key(c, &team, &err);
        cove_client_free(c);
        if (r < 0) {
                cove_config_release(&cfg);
                if (err && err->kind == COVE_ERROR_AUTH) {
                        fprintf(stderr,
                                "cove: the server at '%s' rejected this API key; nothing "
                                "was stored\n",
                                url);
                        cove_error_free(&err);
                        return EXIT_AUTH;
                }
                return cli_error(&err);
        }
        r = cove_config_store(cfg.config_path, url, key, false, &err);
        if (r < 0) {
                cove_config_release(&cfg);
                return cli_error(&err);
        }
        masked = mask_key(key);
        if (arg_output == OUTPUT_JSON) {
                json_t *o = json_pack("{s:s,s:s,s:s?,s:s}", "url", url, "apiKey", masked, "team",
                                      team, "configPath", cfg.config_path);

                print_json(o);
                json_decref(o);
        } else {
                printf("Logged in to %s with key %s%s%s (stored in %s)\n", url, masked,
                       team ? ", team " : "", team ? team : "", cfg.config_path);
        }
        cove_config_release(&cfg);
        return 0;
}

static int auth_status(int argc, char **argv)
{
        static const struct cmd_help help = {
                "cove auth status",
                "Print the server URL, the API key masked to its last 4 characters, the default "
                "team,\nand whether the server accepts the key. Exit 0 if usable, 3 if rejected, 1 "
                "if unreachable."
        };
        cleanup_free char **pos = NULL;
        cleanup_free char *team = NULL, *masked = NULL;
        struct cove_config cfg;
        struct cove_error *err = NULL;
        struct cove_client *c;
        const char *state;
        int r, code;

        if (opt_parse(argc, argv, NULL, &help, 0, &pos) < 0)
                return EXIT_USAGE;
        if (cove_config_load(&cfg, arg_url, arg_api_key, arg_project_id, &err) < 0)
                return cli_error(&err);
        masked = mask_key(cfg.api_key);
        if (arg_dry_run) {
                struct cli_req rq = { .action = "check API key",
                                      .method = "GET",
                                      .path = xstrdup("/teams") };

                cli_print_dry_run(&rq);
                cli_req_release(&rq);
                cove_config_release(&cfg);
                return 0;
        }
        c = cove_client_new(cfg.url, cfg.api_key, cfg.project_id);
        cove_client_set_timeout(c, 15);
        r = check_key(c, &team, &err);
        cove_client_free(c);
        if (r == 0) {
                state = "accepted";
                code = 0;
        } else if (err->kind == COVE_ERROR_AUTH) {
                state = "rejected";
                code = EXIT_AUTH;
        } else if (err->kind == COVE_ERROR_NETWORK) {
                state = "unreachable";
                code = EXIT_API;
        } else {
                state = "error";
                code = EXIT_API;
        }
        if (arg_output == OUTPUT_JSON) {
                json_t *o = json_pack("{s:s,s:s,s:s,s:s?,s:s?,s:s,s:b,s:s?}", "url", cfg.url,
                                      "urlSource", cfg.url_source, "apiKey", masked, "keySource",
                                      cfg.key_source, "team", team, "configPath", cfg.config_path,
                                      "valid", r == 0, "error", err ? err->message : NULL);

                print_json(o);
                json_decref(o);
        } else {
                printf("URL:     %s (%s)\n", cfg.url, cfg.url_source);
                printf("API key: %s%s%s%s\n", masked, cfg.key_source ? " (" : "",
                       cfg.key_source ? cfg.key_source : "", cfg.key_source ? ")" : "");
                printf("Team:    %s\n", team ? team : "-");
                printf("Server:  %s%s%s\n", state, err ? ": " : "", err ? err->message : "");
                printf("Config:  %s\n", cfg.config_path);
        }
        cove_error_free(&err);
        cove_config_release(&cfg);
        return code;
}

static int auth_set_key(int argc, char **argv)
{
        static const struct cmd_help help = { "cove auth set-key <api-key>",
                                              "Store an API key without checking it." };
        cleanup_free char **pos = NULL;
        cleanup_free char *path = NULL;
        struct cove_error *err = NULL;
        int n = opt_parse(argc, argv, NULL, &help, 0, &pos);

        if (n < 0)
                return EXIT_USAGE;
        if (n != 1 || !*pos[0])
                return usage_error(&help, "expected exactly one API key");
        path = cove_config_path();
        if (arg_dry_run) {
                printf("{\n  \"action\": \"store API key\",\n  \"path\": \"%s\"\n}\n", path);
                return 0;
        }
        if (cove_config_store(path, NULL, pos[0], false, &err) < 0)
                return cli_error(&err);
        printf("API key stored in %s\n", path);
        return 0;
}

static int auth_logout(int argc, char **argv)
{
        static const struct cmd_help help = { "cove auth logout", "Remove the stored API key." };
        cleanup_free char **pos = NULL;
        cleanup_free char *path = NULL;
        struct cove_error *err = NULL;

        if (opt_parse(argc, argv, NULL, &help, 0, &pos) < 0)
                return EXIT_USAGE;
        path = cove_config_path();
        if (arg_dry_run) {
                printf("{\n  \"action\": \"remove stored API key\",\n  \"path\": \"%s\"\n}\n",
                       path);
                return 0;
        }
        if (access(path, F_OK) == 0 && cove_config_store(path, NULL, NULL, true, &err) < 0)
                return cli_error(&err);
        printf("Logged out (no key stored in %s)\n", path);
        return 0;
}

static const struct cmd auth_cmds[] = {
        { "login", NULL, auth_login, "check and store the server URL and API key" },
        { "status", NULL, auth_status, "show the configuration and whether the key works" },
        { "set-key", NULL, auth_set_key, "store an API key without checking it" },
        { "logout", NULL, auth_logout, "remove the stored API key" },
        {}
};

int cmd_auth(int argc, char **argv)
{
        return cmd_dispatch(auth_cmds, argv[0], argc, argv);
}
