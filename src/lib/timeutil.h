/* SPDX-License-Identifier: MIT */
/* timeutil.h — clocks and RFC 3339 formatting (UTC, millisecond precision, 'Z'). */
#pragma once

#include <stdint.h>

#define TIME_RFC3339_MAX 96

int64_t time_now_ms(void);  /* CLOCK_REALTIME, ms since the epoch */
int64_t time_mono_ms(void); /* CLOCK_MONOTONIC, ms */
int64_t time_mono_us(void); /* CLOCK_MONOTONIC, µs */
/* "2026-06-10T08:55:50.123Z"; out must hold TIME_RFC3339_MAX bytes. */
void time_format_rfc3339(int64_t ms, char out[TIME_RFC3339_MAX]);
/* Nanosecond variant for EntryInfo.modifiedTime: "2026-06-10T08:55:50.123456789Z". */
void time_format_rfc3339_ns(int64_t sec, long nsec, char out[TIME_RFC3339_MAX]);
/* Parses an RFC 3339 time ("2026-06-10T08:55:50Z", fractional seconds and a numeric offset
 * allowed; 't'/'z' and a space for 'T' too) into Unix ms. -EINVAL for anything else. */
int time_parse_rfc3339(const char *s, int64_t *ret_ms);
