/* SPDX-License-Identifier: MIT */
/*
 * tap.h — a tiny TAP harness (crun/bubblewrap style): explicit RUN() list in main, assertions
 * that print the expression and both values, exit 77 for "skip all".
 *
 *   static void test_x(void) { ASSERT_EQ(f(1), 2); }
 *   int main(void) { RUN(test_x); return tap_done(); }
 */
#pragma once

#include <inttypes.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int tap_n, tap_failed;
static jmp_buf tap_jmp;
static const char *tap_cur;

#define TAP_FAIL(fmt, ...)                                                                         \
        do {                                                                                       \
                printf("# %s:%d: " fmt "\n", __FILE__, __LINE__, __VA_ARGS__);                     \
                longjmp(tap_jmp, 1);                                                               \
        } while (0)

#define ASSERT_TRUE(e)                                                                             \
        do {                                                                                       \
                if (!(e))                                                                          \
                        TAP_FAIL("assertion failed: %s", #e);                                      \
        } while (0)
#define ASSERT_EQ(a, b)                                                                            \
        do {                                                                                       \
                intmax_t _a = (intmax_t)(a), _b = (intmax_t)(b);                                   \
                if (_a != _b)                                                                      \
                        TAP_FAIL("%s == %s: %jd != %jd", #a, #b, _a, _b);                          \
        } while (0)
#define ASSERT_STREQ(a, b)                                                                         \
        do {                                                                                       \
                const char *_a = (a), *_b = (b);                                                   \
                if (!_a || !_b || strcmp(_a, _b) != 0)                                             \
                        TAP_FAIL("%s == %s: \"%s\" != \"%s\"", #a, #b, _a ? _a : "(null)",         \
                                 _b ? _b : "(null)");                                              \
        } while (0)

#define RUN(fn)                                                                                    \
        do {                                                                                       \
                tap_cur = #fn;                                                                     \
                tap_n++;                                                                           \
                if (setjmp(tap_jmp) == 0) {                                                        \
                        fn();                                                                      \
                        printf("ok %d - %s\n", tap_n, tap_cur);                                    \
                } else {                                                                           \
                        printf("not ok %d - %s\n", tap_n, tap_cur);                                \
                        tap_failed++;                                                              \
                }                                                                                  \
                fflush(stdout);                                                                    \
        } while (0)

static inline int tap_done(void)
{
        printf("1..%d\n", tap_n);
        return tap_failed ? 1 : 0;
}
