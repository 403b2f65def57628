/* SPDX-License-Identifier: MIT */
#include "lib/path.h"
#include "lib/macro.h"

char *path_normalize(const char *base, const char *p)
{
        bool rel = p[0] != '/';
        if (!base)
                base = "/";
        size_t n = (rel ? strlen(base) + 1 : 0) + strlen(p) + 2;
        cleanup_free char *in = xmalloc(n);
        char *out = xmalloc(n);
        size_t o = 0;

        (void)snprintf(in, n, "%s%s%s", rel ? base : "", rel ? "/" : "", p);
        for (const char *s = in; *s;) {
                while (*s == '/')
                        s++;
                if (!*s)
                        break;
                const char *e = strchrnul(s, '/');
                size_t l = (size_t)(e - s);
                if (l == 1 && s[0] == '.') {
                        /* nothing */
                } else if (l == 2 && s[0] == '.' && s[1] == '.') {
                        while (o > 0 && out[o - 1] != '/')
                                o--;
                        if (o > 0)
                                o--;
                } else {
                        out[o++] = '/';
                        memcpy(out + o, s, l);
                        o += l;
                }
                s = e;
        }
        if (o == 0)
                out[o++] = '/';
        out[o] = '\0';
        return out;
}
