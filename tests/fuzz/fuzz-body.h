/* SPDX-License-Identifier: MIT */
/*
 * fuzz-body.h — what the harnesses of JSON request bodies share (fuzz.h has the rest).
 *
 * FUZZ_JSON_INIT defines LLVMFuzzerInitialize(), which fixes jansson's hash seed: an input
 * then runs the same way each time (object iteration order included), so a crash replays.
 *
 * fuzz_request_body() parses the input as a request body (lib/json.h json_parse(), as coved
 * and the agent parse theirs) and returns it when it is a JSON object — the only bodies the
 * parsers behind it ever see (the agent refuses any other in main.c) — or NULL. A refused
 * input must carry a message. The caller json_decref()s the body.
 */
#pragma once

#include "fuzz.h"
#include "lib/json.h"

#define FUZZ_JSON_INIT                                                                             \
        int LLVMFuzzerInitialize(int *argc, char ***argv);                                         \
        int LLVMFuzzerInitialize(int *argc, char ***argv)                                          \
        {                                                                                          \
                (void)argc;                                                                        \
                (void)argv;                                                                        \
                json_object_seed(1);                                                               \
                return 0;                                                                          \
        }

static inline json_t *fuzz_request_body(const uint8_t *data, size_t size)
{
        json_t *body = NULL;
        struct cove_err *err = NULL;

        if (json_parse((const char *)data, size, /* empty_ok= */ false, &body, &err) < 0) {
                FUZZ_CHECK(err && err->msg);
                cove_err_free(&err);
                return NULL;
        }
        if (!json_is_object(body)) {
                json_decref(body);
                return NULL;
        }
        return body;
}
