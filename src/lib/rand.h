/* SPDX-License-Identifier: MIT */
/*
 * rand.h — kernel randomness (getrandom) and the ID shapes of spec README §7.
 */
#pragma once

#include <stddef.h>

int random_bytes(void *p, size_t n); /* 0 or -errno; never partially fills silently */
/* n chars of [a-z0-9] into out (NUL-terminated, out holds n + 1). */
void random_alnum(char *out, size_t n);
/* n lowercase hex chars into out (NUL-terminated, out holds n + 1). */
void random_hex(char *out, size_t n);
/* prefix + random part, e.g. random_id("cmd_", 20) → "cmd_a1s2…"; caller frees. */
char *random_id(const char *prefix, size_t n);
