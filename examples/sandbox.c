/* SPDX-License-Identifier: MIT */
/*
 * sandbox.c — libcove in one page: create a sandbox, run a command in it (streaming its
 * output), write and read back a file, and delete the sandbox.
 *
 *   cc -o example-sandbox examples/sandbox.c $(pkg-config --cflags --libs libcove)
 *   COVE_URL=http://127.0.0.1:49982 COVE_API_KEY=… ./example-sandbox
 *
 * Uses only <cove/cove.h> (and jansson, which libcove's API is expressed in).
 */
#if __has_include(<cove/cove.h>)
#include <cove/cove.h> /* installed */
#else
#include "libcove/cove.h" /* in the source tree */
#endif

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int print_out(void *ud, const void *data, size_t len)
{
        (void)ud;
        fwrite(data, 1, len, stdout);
        return 0;
}

static int print_err(void *ud, const void *data, size_t len)
{
        (void)ud;
        fwrite(data, 1, len, stderr);
        return 0;
}

static int on_start(void *ud, int64_t pid, const char *cmd_id)
{
        (void)ud;
        printf("started pid %" PRId64 " (%s)\n", pid, cmd_id);
        return 0;
}

static int on_end(void *ud, const struct cove_process_end *end)
{
        *(int *)ud = end->exit_code;
        printf("ended: %s\n", end->status ? end->status : "?");
        return 0;
}

static int fail(const char *what, struct cove_error **err)
{
        fprintf(stderr, "example: %s: %s", what, (*err)->message);
        if ((*err)->request_id)
                fprintf(stderr, " (request %s)", (*err)->request_id);
        fputc('\n', stderr);
        cove_error_free(err);
        return 1;
}

int main(void)
{
        struct cove_config cfg;
        struct cove_error *err = NULL;
        struct cove_client *c = NULL;
        struct cove_runtime rt = { 0 };
        struct cove_process_callbacks cb = {
                .on_start = on_start,
                .on_stdout = print_out,
                .on_stderr = print_err,
                .on_end = on_end,
        };
        json_t *sandbox = NULL, *request;
        const char *id;
        char *data = NULL;
        size_t len = 0;
        int exit_code = -1, ret = 1;

        /* Flags would come first; here only the environment and the stored config count. */
        if (cove_config_load(&cfg, NULL, NULL, NULL, &err) < 0)
                return fail("load configuration", &err);
        c = cove_client_new(cfg.url, cfg.api_key, cfg.project_id);
        cove_config_release(&cfg);
        if (!c)
                return 1;

        request = json_pack("{s:s,s:b,s:i,s:{s:s}}", "templateID", "base", "waitReady", 1,
                            "timeout", 120, "metadata", "example", "libcove");
        if (cove_sandbox_create(c, request, &sandbox, &err) < 0) {
                json_decref(request);
                ret = fail("create sandbox", &err);
                goto out;
        }
        json_decref(request);
        id = json_string_value(json_object_get(sandbox, "sandboxID"));
        printf("sandbox %s is %s\n", id, json_string_value(json_object_get(sandbox, "state")));

        if (cove_runtime_init(&rt, sandbox, NULL, &err) < 0) {
                ret = fail("runtime", &err);
                goto delete;
        }

        /* A streaming run: output arrives through the callbacks while the command runs. */
        request = json_pack("{s:{s:s,s:[s,s]},s:b}", "process", "cmd", "sh", "args", "-lc",
                            "echo hello from $(uname -n); echo to stderr >&2; exit 3", "stdin", 0);
        if (cove_process_start(c, &rt, request, &cb, &exit_code, NULL, &err) < 0) {
                json_decref(request);
                ret = fail("run command", &err);
                goto delete;
        }
        json_decref(request);
        printf("exit code %d\n", exit_code);

        static const char text[] = "written by libcove\n";
        if (cove_files_write(c, &rt, "/tmp/example.txt", text, strlen(text), &err) < 0 ||
            cove_files_read(c, &rt, "/tmp/example.txt", 1 << 20, &data, &len, &err) < 0) {
                ret = fail("file round trip", &err);
                goto delete;
        }
        printf("read back %zu bytes: %s", len, data);
        ret = exit_code == 3 && len == strlen(text) && memcmp(data, text, len) == 0 ? 0 : 1;

        delete : if (cove_sandbox_delete(c, id, &err) < 0) ret = fail("delete sandbox", &err);
        else printf("deleted %s\n", id);
out:
        free(data);
        cove_runtime_release(&rt);
        json_decref(sandbox);
        cove_client_free(c);
        return ret;
}
