/* SPDX-License-Identifier: MIT */
#include "rand.h"
#include "macro.h"

#include <sys/random.h>

int random_bytes(void *p, size_t n)
{
        size_t done = 0;
        while (done < n) {
                ssize_t r = getrandom((char *)p + done, n - done, 0);
                if (r < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                done += (size_t)r;
        }
        return 0;
}

static void random_from_alphabet(char *out, size_t n, const char *alpha, unsigned len)
{
        unsigned char b[64];
        size_t o = 0;
        /* Rejection sampling keeps the distribution uniform. */
        unsigned lim = 256 - 256 % len;
        while (o < n) {
                if (random_bytes(b, sizeof(b)) < 0)
                        abort(); /* getrandom cannot fail once the pool is initialised */
                for (size_t i = 0; i < sizeof(b) && o < n; i++)
                        if (b[i] < lim)
                                out[o++] = alpha[b[i] % len];
        }
        out[n] = '\0';
}

void random_alnum(char *out, size_t n)
{
        random_from_alphabet(out, n, "abcdefghijklmnopqrstuvwxyz0123456789", 36);
}

void random_hex(char *out, size_t n)
{
        random_from_alphabet(out, n, "0123456789abcdef", 16);
}

char *random_id(const char *prefix, size_t n)
{
        size_t pl = strlen(prefix);
        char *s = xmalloc(pl + n + 1);
        memcpy(s, prefix, pl);
        random_alnum(s + pl, n);
        return s;
}
