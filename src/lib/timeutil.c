/* SPDX-License-Identifier: MIT */
#include "timeutil.h"
#include "macro.h"

#include <errno.h>
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

int64_t time_mono_us(void)
{
        struct timespec ts;
        (void)clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

void time_format_rfc3339(int64_t ms, char out[TIME_RFC3339_MAX])
{
        /* floor division: a time before 1970 is the second before plus a positive fraction */
        int64_t frac = ms % 1000;
        time_t s = (time_t)(ms / 1000 - (frac < 0));
        struct tm tm;
        (void)gmtime_r(&s, &tm);
        (void)snprintf(out, TIME_RFC3339_MAX, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
                       tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                       tm.tm_sec, (int)(frac < 0 ? frac + 1000 : frac));
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

/* n decimal digits at *p into *v (advancing); false when fewer digits. */
static bool take_digits(const char **p, int n, int *v)
{
        *v = 0;
        for (int i = 0; i < n; i++) {
                if ((*p)[i] < '0' || (*p)[i] > '9')
                        return false;
                *v = *v * 10 + ((*p)[i] - '0');
        }
        *p += n;
        return true;
}

static bool take_char(const char **p, const char *set)
{
        if (!**p || !strchr(set, **p))
                return false;
        (*p)++;
        return true;
}

int time_parse_rfc3339(const char *s, int64_t *ret_ms)
{
        const char *p = s;
        int y, mo, d, h, mi, sec, oh = 0, om = 0, ms = 0;

        if (!take_digits(&p, 4, &y) || !take_char(&p, "-") || !take_digits(&p, 2, &mo) ||
            !take_char(&p, "-") || !take_digits(&p, 2, &d) || !take_char(&p, "Tt ") ||
            !take_digits(&p, 2, &h) || !take_char(&p, ":") || !take_digits(&p, 2, &mi) ||
            !take_char(&p, ":") || !take_digits(&p, 2, &sec))
                return -EINVAL;
        if (*p == '.') {
                p++;
                int n = 0;
                while (*p >= '0' && *p <= '9') {
                        if (n < 3)
                                ms = ms * 10 + (*p - '0');
                        n++;
                        p++;
                }
                if (n == 0)
                        return -EINVAL;
                for (; n < 3; n++)
                        ms *= 10;
        }
        int sign = 0;
        if (take_char(&p, "Zz"))
                sign = 0;
        else if (*p == '+' || *p == '-') {
                sign = *p == '+' ? 1 : -1;
                p++;
                if (!take_digits(&p, 2, &oh) || !take_char(&p, ":") || !take_digits(&p, 2, &om))
                        return -EINVAL;
        } else
                return -EINVAL;
        if (*p || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60 ||
            oh > 23 || om > 59)
                return -EINVAL;
        struct tm tm = { .tm_year = y - 1900,
                         .tm_mon = mo - 1,
                         .tm_mday = d,
                         .tm_hour = h,
                         .tm_min = mi,
                         .tm_sec = sec };
        time_t t = timegm(&tm);
        *ret_ms = ((int64_t)t - sign * (oh * 3600 + om * 60)) * 1000 + ms;
        return 0;
}
