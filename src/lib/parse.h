/* SPDX-License-Identifier: MIT */
/*
 * parse.h — strict number parsing. Whole string must be a decimal number, no sign for the
 * unsigned variants, no leading/trailing junk, no overflow. Return 0 or -EINVAL / -ERANGE;
 * *ret is written only on success.
 */
#pragma once

#include <stdint.h>

int safe_atou32(const char *s, uint32_t *ret);
int safe_atou64(const char *s, uint64_t *ret);
int safe_atoi64(const char *s, int64_t *ret);
