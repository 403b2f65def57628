/* SPDX-License-Identifier: MIT */
#include "timeutil.h"
#include "macro.h"

#include <time.h>

int64_t time_now_ms(void)
{
        struct timespec ts;
        (void)clock_gettime(CLOCK_REALTIME, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t time_mono_ms(void)
{
        struct timespec ts;
        (void)clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void time_format_rfc3339(int64_t ms, char out[TIME_RFC3339_MAX])
{
        time_t s = (time_t)(ms / 1000);
        struct tm tm;
        (void)gmtime_r(&s, &tm);
        (void)snprintf(out, TIME_RFC3339_MAX, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
                       tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                       tm.tm_sec, (int)(ms % 1000));
}

void time_format_rfc3339_ns(int64_t sec, long nsec, char out[TIME_RFC3339_MAX])
{
        time_t s = (time_t)sec;
        struct tm tm;
        (void)gmtime_r(&s, &tm);
        (void)snprintf(out, TIME_RFC3339_MAX, "%04d-%02d-%02dT%02d:%02d:%02d.%09ldZ",
                       tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                       tm.tm_sec, nsec);
}
