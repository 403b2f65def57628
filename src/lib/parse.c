/* SPDX-License-Identifier: MIT */
#include "parse.h"
#include "macro.h"

#include <ctype.h>

int safe_atou64(const char *s, uint64_t *ret)
{
        uint64_t v = 0;

        if (!s || !*s)
                return -EINVAL;
        for (const char *p = s; *p; p++) {
                if (!isdigit((unsigned char)*p))
                        return -EINVAL;
                unsigned d = (unsigned)(*p - '0');
                if (v > (UINT64_MAX - d) / 10)
                        return -ERANGE;
                v = v * 10 + d;
        }
        *ret = v;
        return 0;
}

int safe_atou32(const char *s, uint32_t *ret)
{
        uint64_t v;
        int r = safe_atou64(s, &v);
        if (r < 0)
                return r;
        if (v > UINT32_MAX)
                return -ERANGE;
        *ret = (uint32_t)v;
        return 0;
}

int safe_atoi64(const char *s, int64_t *ret)
{
        uint64_t v;
        bool neg = false;

        if (s && *s == '-') {
                neg = true;
                s++;
        }
        int r = safe_atou64(s, &v);
        if (r < 0)
                return r;
        if (neg) {
                if (v > (uint64_t)INT64_MAX + 1)
                        return -ERANGE;
                *ret = v == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)v;
        } else {
                if (v > (uint64_t)INT64_MAX)
                        return -ERANGE;
                *ret = (int64_t)v;
        }
        return 0;
}
