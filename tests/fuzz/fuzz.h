/* SPDX-License-Identifier: MIT */
/*
 * fuzz.h — what every harness in tests/fuzz/ shares.
 *
 * A harness defines LLVMFuzzerTestOneInput() and nothing else that libFuzzer calls. It is
 * linked either with libFuzzer (`make fuzz`, clang, -fsanitize=fuzzer,address,undefined) or
 * with fuzz-main.c, which replays the harness's corpus as a test (`make test`).
 *
 * Rules for a harness:
 * - start with `if (size > FUZZ_MAX_INPUT) return 0;` (systemd's fuzzers): the parsers' own
 *   limits are tested by unit tests, and big inputs only slow the fuzzer down;
 * - never read or write outside what it allocated, leak nothing, keep no state between inputs
 *   (libFuzzer runs millions of inputs in one process);
 * - check what the parser promises, not only "no crash": a broken invariant is FUZZ_CHECK(),
 *   which aborts, so libFuzzer saves the input and the corpus replay fails.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FUZZ_MAX_INPUT (64 * 1024)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_CHECK(e)                                                                              \
        do {                                                                                       \
                if (!(e)) {                                                                        \
                        fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, #e);  \
                        abort();                                                                   \
                }                                                                                  \
        } while (0)

/* Cut points for differential harnesses that feed a decoder in pieces. The input starts with
 * a count byte c, then (c % FUZZ_MAX_CUTS) big-endian u16 offsets (taken modulo the payload
 * length + 1, then sorted); the rest is the payload. The fuzzer mutates the cuts like any other
 * byte, so it chooses where the payload is split. Returns false when the input is too short. */
#define FUZZ_MAX_CUTS 16
struct fuzz_cuts {
        size_t n;
        size_t at[FUZZ_MAX_CUTS + 2]; /* at[0] = 0 … at[n + 1] = payload length */
        const uint8_t *payload;
        size_t len;
};

static inline bool fuzz_take_cuts(const uint8_t *data, size_t size, struct fuzz_cuts *ret)
{
        if (size < 1)
                return false;
        size_t n = data[0] % FUZZ_MAX_CUTS;
        if (size < 1 + 2 * n)
                return false;
        ret->n = n;
        ret->payload = data + 1 + 2 * n;
        ret->len = size - 1 - 2 * n;
        ret->at[0] = 0;
        for (size_t i = 0; i < n; i++) {
                size_t v = (size_t)data[1 + 2 * i] << 8 | data[2 + 2 * i];
                size_t x = v % (ret->len + 1);
                size_t j = i + 1;
                while (j > 1 && ret->at[j - 1] > x) { /* insertion sort: n <= 15 */
                        ret->at[j] = ret->at[j - 1];
                        j--;
                }
                ret->at[j] = x;
        }
        ret->at[n + 1] = ret->len;
        return true;
}
