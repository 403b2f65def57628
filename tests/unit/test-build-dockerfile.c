/* SPDX-License-Identifier: MIT */
/* Dockerfile subset (build-plane.md §7.5), its lowering to steps, and the JSON step model
 * (§7.2) of src/build/. */
#include "build/dockerfile.h"
#include "build/steps.h"
#include "lib/json.h"
#include "lib/macro.h"

#include "tap.h"

#define HEX64 "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

static struct dockerfile *parse_ok(const char *text)
{
        struct dockerfile *df = NULL;
        struct cove_err *err = NULL;
        int r = dockerfile_parse(text, strlen(text), &df, &err);
        if (r < 0)
                printf("# parse: %s\n", err->msg);
        ASSERT_EQ(r, 0);
        return df;
}

static void parse_bad(const char *text, const char *fragment)
{
        struct dockerfile *df = NULL;
        struct cove_err *err = NULL;
        ASSERT_EQ(dockerfile_parse(text, strlen(text), &df, &err), -EINVAL);
        if (!strstr(err->msg, fragment))
                printf("# got: %s\n", err->msg);
        ASSERT_TRUE(strstr(err->msg, fragment) != NULL);
        cove_err_free(&err);
}

static void lower_ok(struct dockerfile *df, char *const *env, const char *ctx,
                     struct build_step **steps, size_t *n)
{
        struct df_lower_opts o = { .base_env = env, .context_hash = ctx };
        struct cove_err *err = NULL;
        int r = dockerfile_lower(df, &o, steps, n, &err);
        if (r < 0)
                printf("# lower: %s\n", err->msg);
        ASSERT_EQ(r, 0);
}

static void test_full_example(void)
{
        const char *text = "# syntax=docker/dockerfile:1\n"
                           "ARG BASE=python:3.12-slim\n"
                           "FROM ${BASE} AS app\n"
                           "ARG GREETING=hello\n"
                           "ENV APP_HOME=/srv/app PATH=$PATH:/opt/bin\n"
                           "ENV LEGACY value with  spaces\n"
                           "WORKDIR $APP_HOME\n"
                           "# a comment\n"
                           "RUN apt-get update && \\\n"
                           "    # comment inside a continuation\n"
                           "    apt-get install -y curl\n"
                           "\n"
                           "COPY --chown=1000:1000 requirements.txt src/ ./\n"
                           "USER ${APP_USER:-appuser}\n"
                           "RUN [\"python\", \"-c\", \"print(1)\"]\n"
                           "EXPOSE 8080/tcp 9090\n"
                           "LABEL a=b\n"
                           "HEALTHCHECK CMD true\n"
                           "ENTRYPOINT [\"python\", \"server.py\"]\n"
                           "CMD [\"--port\", \"it's\"]\n";
        struct dockerfile *df = parse_ok(text);
        struct build_step *s = NULL;
        size_t n = 0;
        char *env[] = { "PATH=/usr/local/bin:/usr/bin", "HOME=/root", NULL };

        ASSERT_STREQ(df->from, "python:3.12-slim");
        ASSERT_STREQ(df->stage, "app");
        ASSERT_EQ(df->port, 8080);
        ASSERT_TRUE(df->needs_context);
        ASSERT_STREQ(df->start_cmd, "'python' 'server.py' '--port' 'it'\\''s'");

        lower_ok(df, env, HEX64, &s, &n);
        ASSERT_EQ(n, 7);
        ASSERT_EQ(s[0].type, BUILD_STEP_ENV);
        ASSERT_EQ(s[0].n_args, 4);
        ASSERT_STREQ(s[0].args[0], "APP_HOME");
        ASSERT_STREQ(s[0].args[1], "/srv/app");
        ASSERT_STREQ(s[0].args[2], "PATH");
        ASSERT_STREQ(s[0].args[3], "/usr/local/bin:/usr/bin:/opt/bin");
        ASSERT_EQ(s[1].type, BUILD_STEP_ENV);
        ASSERT_STREQ(s[1].args[0], "LEGACY");
        ASSERT_STREQ(s[1].args[1], "value with  spaces");
        ASSERT_EQ(s[2].type, BUILD_STEP_WORKDIR);
        ASSERT_STREQ(s[2].args[0], "/srv/app");
        ASSERT_EQ(s[3].type, BUILD_STEP_RUN);
        ASSERT_TRUE(!s[3].exec_form);
        ASSERT_STREQ(s[3].args[0], "apt-get update &&     apt-get install -y curl");
        ASSERT_STREQ(s[3].run_env[0], "GREETING=hello");
        ASSERT_TRUE(s[3].run_env[1] == NULL);
        ASSERT_EQ(s[3].line, 9);
        ASSERT_EQ(s[4].type, BUILD_STEP_COPY);
        ASSERT_EQ(s[4].n_args, 3);
        ASSERT_STREQ(s[4].args[0], "requirements.txt");
        ASSERT_STREQ(s[4].args[1], "src/");
        ASSERT_STREQ(s[4].args[2], "./");
        ASSERT_STREQ(s[4].chown, "1000:1000");
        ASSERT_STREQ(s[4].files_hash, HEX64);
        ASSERT_EQ(s[5].type, BUILD_STEP_USER);
        ASSERT_STREQ(s[5].args[0], "appuser");
        ASSERT_EQ(s[6].type, BUILD_STEP_RUN);
        ASSERT_TRUE(s[6].exec_form);
        ASSERT_EQ(s[6].n_args, 3);
        ASSERT_STREQ(s[6].args[2], "print(1)");
        build_steps_free(s, n);
        dockerfile_free(df);
}

static void test_multi_stage_refused(void)
{
        parse_bad("FROM a AS build\nRUN make\nFROM b\nCOPY --from=build /x /x\n",
                  "multi-stage builds are not supported");
        parse_bad("FROM a\nCOPY --from=build /x /x\n", "multi-stage builds are not supported");
}

static void test_parse_errors(void)
{
        parse_bad("RUN true\n", "before FROM");
        parse_bad("# only a comment\n", "no FROM");
        parse_bad("FROM a\nFOO bar\n", "line 2: unknown instruction 'FOO'");
        parse_bad("FROM a\nCOPY --chmod=755 a b\n", "flag '--chmod' is not supported");
        parse_bad("FROM a\nADD https://example.com/x.tgz /x\n", "from a URL is not supported");
        parse_bad("FROM a\nRUN --mount=type=cache,target=/x true\n",
                  "flag '--mount' is not supported");
        parse_bad("FROM a\nCOPY onlyone\n", "needs a source and a destination");
        parse_bad("FROM a\nENV\n", "ENV needs arguments");
        parse_bad("FROM a\nENV 1BAD=x\n", "invalid variable");
        parse_bad("FROM a\nENV A=1 B\n", "invalid variable");
        parse_bad("FROM a\nEXPOSE http\n", "invalid port");
        parse_bad("FROM\n", "FROM needs exactly one image");
        parse_bad("ARG B\nFROM ${B} AS build\n", "FROM needs exactly one image");
        parse_bad("# escape=x\nFROM a\n", "invalid escape token");
        parse_bad("FROM a\nRUN\n", "RUN needs a command");
        struct dockerfile *df = NULL;
        struct cove_err *err = NULL;
        ASSERT_EQ(dockerfile_parse("FROM a\0", 7, &df, &err), -EINVAL);
        cove_err_free(&err);
}

static void test_escape_directive_and_crlf(void)
{
        const char *text =
                "# escape=`\r\nFROM mcr/windows-ish\r\nRUN echo a `\r\n  b\r\nWORKDIR C:\\\\x\r\n";
        struct dockerfile *df = parse_ok(text);
        struct build_step *s = NULL;
        size_t n = 0;
        ASSERT_EQ(df->escape, '`');
        lower_ok(df, NULL, NULL, &s, &n);
        ASSERT_EQ(n, 2);
        ASSERT_STREQ(s[0].args[0], "echo a   b");
        ASSERT_STREQ(s[1].args[0], "C:\\\\x");
        build_steps_free(s, n);
        dockerfile_free(df);
}

static void test_cmd_forms(void)
{
        struct dockerfile *df = parse_ok("FROM a\nCMD python app.py\n");
        ASSERT_STREQ(df->start_cmd, "python app.py");
        dockerfile_free(df);
        df = parse_ok("FROM a\nENTRYPOINT [\"/bin/tini\", \"--\"]\nCMD [\"node\", \"index.js\"]\n");
        ASSERT_STREQ(df->start_cmd, "'/bin/tini' '--' 'node' 'index.js'");
        dockerfile_free(df);
        df = parse_ok("FROM a\nCMD [\"a\"]\nCMD [\"b\"]\n");
        ASSERT_STREQ(df->start_cmd, "'b'");
        dockerfile_free(df);
        df = parse_ok("FROM a\nRUN true\n");
        ASSERT_TRUE(df->start_cmd == NULL);
        ASSERT_EQ(df->port, 0);
        ASSERT_TRUE(!df->needs_context);
        dockerfile_free(df);
}

static void test_copy_needs_context(void)
{
        struct dockerfile *df = parse_ok("FROM a\nCOPY x /y\n");
        struct df_lower_opts o = { 0 };
        struct build_step *s = NULL;
        size_t n = 0;
        struct cove_err *err = NULL;
        ASSERT_EQ(dockerfile_lower(df, &o, &s, &n, &err), -EINVAL);
        ASSERT_TRUE(strstr(err->msg, "needs a build context"));
        cove_err_free(&err);
        dockerfile_free(df);
}

static const char *lookup_fixed(void *ud, const char *name)
{
        (void)ud;
        if (streq(name, "A"))
                return "alpha";
        if (streq(name, "EMPTY"))
                return "";
        if (streq(name, "SP"))
                return "x y";
        return NULL;
}

static void expand_eq(const char *raw, bool split, const char *const *want)
{
        char **v = NULL;
        struct cove_err *err = NULL;
        int r = dockerfile_expand(raw, '\\', split, lookup_fixed, NULL, &v, &err);
        if (r < 0)
                printf("# %s: %s\n", raw, err->msg);
        ASSERT_EQ(r, 0);
        size_t i = 0;
        for (; want[i]; i++) {
                if (!v[i] || !streq(v[i], want[i]))
                        printf("# %s: word %zu is '%s', want '%s'\n", raw, i,
                               v[i] ? v[i] : "(none)", want[i]);
                ASSERT_STREQ(v[i], want[i]);
        }
        ASSERT_TRUE(v[i] == NULL);
        strv_free(v);
}

static void test_expand(void)
{
        expand_eq("$A ${A}b", true, (const char *[]){ "alpha", "alphab", NULL });
        expand_eq("'$A' \"$A\" \\$A", true, (const char *[]){ "$A", "alpha", "$A", NULL });
        expand_eq("${NOPE:-def} ${NOPE-d2} ${EMPTY:-e} ${EMPTY-f}x", true,
                  (const char *[]){ "def", "d2", "e", "x", NULL });
        expand_eq("${A:+set} ${NOPE:+set}z ${EMPTY+set}", true,
                  (const char *[]){ "set", "z", "set", NULL });
        expand_eq("${NOPE:-${A:-x}}", true, (const char *[]){ "alpha", NULL });
        expand_eq("a  \"b c\"  ''", true, (const char *[]){ "a", "b c", "", NULL });
        expand_eq("  keep   inner  ", false, (const char *[]){ "  keep   inner  ", NULL });
        expand_eq("\"q\\\"q\" \"\\x\"", true, (const char *[]){ "q\"q", "\\x", NULL });
        expand_eq("$ 1$ $1", true, (const char *[]){ "$", "1$", "$1", NULL });
        expand_eq("${SP}", true, (const char *[]){ "x y", NULL });

        char **v = NULL;
        struct cove_err *err = NULL;
        ASSERT_EQ(
                dockerfile_expand("${NOPE:?is required}", '\\', true, lookup_fixed, NULL, &v, &err),
                -EINVAL);
        ASSERT_TRUE(strstr(err->msg, "NOPE: is required"));
        cove_err_free(&err);
        ASSERT_EQ(dockerfile_expand("'open", '\\', true, lookup_fixed, NULL, &v, &err), -EINVAL);
        cove_err_free(&err);
        ASSERT_EQ(dockerfile_expand("${A", '\\', true, lookup_fixed, NULL, &v, &err), -EINVAL);
        cove_err_free(&err);
        ASSERT_EQ(dockerfile_expand("${}", '\\', true, lookup_fixed, NULL, &v, &err), -EINVAL);
        cove_err_free(&err);
        /* nesting is bounded */
        char deep[400];
        size_t o = 0;
        for (int i = 0; i < 30; i++)
                o += (size_t)snprintf(deep + o, sizeof(deep) - o, "${X:-");
        for (int i = 0; i < 30; i++)
                o += (size_t)snprintf(deep + o, sizeof(deep) - o, "}");
        ASSERT_EQ(dockerfile_expand(deep, '\\', true, lookup_fixed, NULL, &v, &err), -EINVAL);
        ASSERT_TRUE(strstr(err->msg, "nested too deeply"));
        cove_err_free(&err);
}

static void test_arg_semantics(void)
{
        const char *text = "ARG V=1\nARG ONLYGLOBAL=g\nFROM img:$V\n"
                           "ARG ONLYGLOBAL\nARG LOCAL\nARG HOME=fromarg\n"
                           "RUN echo\nENV E=$ONLYGLOBAL-$V-$HOME\n";
        struct dockerfile *df = parse_ok(text);
        struct build_step *s = NULL;
        size_t n = 0;
        char *env[] = { "HOME=/root", NULL };

        ASSERT_STREQ(df->from, "img:1");
        lower_ok(df, env, NULL, &s, &n);
        ASSERT_EQ(n, 2);
        /* RUN sees declared ARGs with values, minus names the environment already has */
        ASSERT_STREQ(s[0].run_env[0], "ONLYGLOBAL=g");
        ASSERT_TRUE(s[0].run_env[1] == NULL);
        /* V was not re-declared after FROM: unset; ENV wins over ARG for HOME */
        ASSERT_STREQ(s[1].args[1], "g--/root");
        build_steps_free(s, n);
        dockerfile_free(df);
}

static json_t *J(const char *s)
{
        json_error_t e;
        json_t *j = json_loads(s, 0, &e);
        ASSERT_TRUE(j != NULL);
        return j;
}

static void steps_bad(const char *json, const char *fragment)
{
        json_t *j = J(json);
        struct build_step *s = NULL;
        size_t n = 0;
        struct cove_err *err = NULL;
        ASSERT_EQ(build_steps_from_json(j, &s, &n, NULL, &err), -EINVAL);
        if (!strstr(err->msg, fragment))
                printf("# got: %s\n", err->msg);
        ASSERT_TRUE(strstr(err->msg, fragment) != NULL);
        cove_err_free(&err);
        json_decref(j);
}

static void test_steps_json(void)
{
        json_t *j = J("[{\"type\":\"copy\",\"args\":[\"a\",\"/b/\"],\"filesHash\":\"" HEX64 "\"},"
                      "{\"type\":\"ENV\",\"args\":[\"K\",\"v\",\"K2\",\"\"]},"
                      "{\"type\":\"Run\",\"args\":[\"echo hi\",\"ignored\"],\"force\":true},"
                      "{\"type\":\"WORKDIR\",\"args\":[\"app\"]},{\"type\":\"USER\",\"args\":["
                      "\"1000:1000\"]},"
                      "{\"type\":\"context\",\"filesHash\":\"" HEX64
                      "\"},{\"type\":\"files\",\"filesHash\":\"" HEX64 "\",\"args\":null}]");
        struct build_step *s = NULL;
        size_t n = 0;
        char *legacy = NULL;
        ASSERT_EQ(build_steps_from_json(j, &s, &n, &legacy, NULL), 0);
        ASSERT_EQ(n, 7);
        ASSERT_EQ(s[0].type, BUILD_STEP_COPY);
        ASSERT_STREQ(s[0].files_hash, HEX64);
        ASSERT_EQ(s[1].n_args, 4);
        ASSERT_EQ(s[2].type, BUILD_STEP_RUN);
        ASSERT_EQ(s[2].n_args, 1);
        ASSERT_TRUE(s[2].force);
        ASSERT_TRUE(s[2].args[1] == NULL);
        ASSERT_EQ(s[5].type, BUILD_STEP_CONTEXT);
        ASSERT_EQ(s[6].type, BUILD_STEP_FILES);
        ASSERT_STREQ(legacy, HEX64);
        ASSERT_STREQ(build_step_type_to_string(s[5].type), "context");
        free(legacy);
        build_steps_free(s, n);
        json_decref(j);

        steps_bad("{}", "must be an array");
        steps_bad("[{\"type\":\"FROM\"}]", "unknown step type 'FROM'");
        steps_bad("[{\"args\":[]}]", "'type' must be a string");
        steps_bad("[{\"type\":\"COPY\",\"args\":[\"a\"],\"filesHash\":\"" HEX64 "\"}]",
                  "exactly 2 non-empty args");
        steps_bad("[{\"type\":\"COPY\",\"args\":[\"a\",\"\"],\"filesHash\":\"" HEX64 "\"}]",
                  "exactly 2 non-empty args");
        steps_bad("[{\"type\":\"COPY\",\"args\":[\"a\",\"b\"]}]", "needs filesHash");
        steps_bad("[{\"type\":\"COPY\",\"args\":[\"a\",\"b\"],\"filesHash\":\"ABC\"}]",
                  "64 lower-case hex");
        steps_bad("[{\"type\":\"ENV\",\"args\":[\"K\"]}]", "even number");
        steps_bad("[{\"type\":\"ENV\",\"args\":[]}]", "even number");
        steps_bad("[{\"type\":\"ENV\",\"args\":[\"1K\",\"v\"]}]",
                  "invalid environment variable name '1K'");
        steps_bad("[{\"type\":\"RUN\",\"args\":[\"\"]}]", "RUN needs a non-empty args[0]");
        steps_bad("[{\"type\":\"WORKDIR\"}]", "WORKDIR needs a non-empty args[0]");
        steps_bad("[{\"type\":\"RUN\",\"args\":[1]}]", "args[0] must be a string");
        steps_bad("[{\"type\":\"RUN\",\"args\":[\"x\"],\"force\":\"yes\"}]",
                  "'force' must be a boolean");
        steps_bad("[{\"type\":\"context\"}]", "context needs filesHash");
        steps_bad("[{\"type\":\"files\",\"filesHash\":\"" HEX64 "\",\"args\":[\"x\"]}]",
                  "takes no args");
        steps_bad("[{\"type\":\"context\",\"filesHash\":\"" HEX64 "\",\"force\":false}]",
                  "takes no force");
        steps_bad("[{\"type\":\"context\",\"filesHash\":\"" HEX64
                  "\"},{\"type\":\"files\",\"filesHash\":"
                  "\"1111111111111111111111111111111111111111111111111111111111111111\"}]",
                  "only one distinct filesHash");

        /* 257 steps */
        json_t *many = json_array();
        for (int i = 0; i < 257; i++)
                json_array_append_new(many,
                                      json_pack("{s:s,s:[s]}", "type", "RUN", "args", "true"));
        ASSERT_EQ(build_steps_from_json(many, &s, &n, NULL, NULL), -EINVAL);
        json_decref(many);
}

static void test_strict_lowering(void)
{
        struct dockerfile *df =
                parse_ok("FROM a\nARG V=1\nENV A=${NOPE:-d} B=$V\nRUN echo $UNSEEN\n");
        struct df_lower_opts o = { .fail_on_unset = true };
        struct build_step *s = NULL;
        size_t n = 0;
        struct cove_err *err = NULL;

        /* defaults, ARGs and RUN's own variables are fine without the base environment */
        ASSERT_EQ(dockerfile_lower(df, &o, &s, &n, NULL), 0);
        ASSERT_STREQ(s[0].args[1], "d");
        ASSERT_STREQ(s[0].args[3], "1");
        build_steps_free(s, n);
        dockerfile_free(df);
        df = parse_ok("FROM a\nENV PATH=$PATH:/opt/bin\n");
        ASSERT_EQ(dockerfile_lower(df, &o, &s, &n, &err), -ENOENT);
        ASSERT_TRUE(strstr(err->msg, "variable 'PATH' is not set"));
        cove_err_free(&err);
        dockerfile_free(df);
        df = parse_ok("FROM a\nCOPY ${SRC} /x\n");
        o.context_hash = HEX64;
        ASSERT_EQ(dockerfile_lower(df, &o, &s, &n, &err), -ENOENT);
        cove_err_free(&err);
        dockerfile_free(df);
}

int main(void)
{
        RUN(test_full_example);
        RUN(test_multi_stage_refused);
        RUN(test_parse_errors);
        RUN(test_escape_directive_and_crlf);
        RUN(test_cmd_forms);
        RUN(test_copy_needs_context);
        RUN(test_expand);
        RUN(test_arg_semantics);
        RUN(test_steps_json);
        RUN(test_strict_lowering);
        return tap_done();
}
