/* SPDX-License-Identifier: MIT */
#include "b64.h"
#include "macro.h"

static const char std_alpha[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char url_alpha[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

size_t b64_encoded_len(size_t n, int flags)
{
        if (flags & B64_NOPAD)
                return (n / 3) * 4 + (n % 3 ? n % 3 + 1 : 0);
        return ((n + 2) / 3) * 4;
}

void b64_encode(const void *in, size_t n, char *out, int flags)
{
        const unsigned char *s = in;
        const char *a = (flags & B64_URL) ? url_alpha : std_alpha;
        size_t o = 0, i = 0;

        for (; i + 2 < n; i += 3) {
                uint32_t v = (uint32_t)s[i] << 16 | (uint32_t)s[i + 1] << 8 | s[i + 2];
                out[o++] = a[v >> 18 & 63];
                out[o++] = a[v >> 12 & 63];
                out[o++] = a[v >> 6 & 63];
                out[o++] = a[v & 63];
        }
        if (i < n) {
                uint32_t v = (uint32_t)s[i] << 16 | (i + 1 < n ? (uint32_t)s[i + 1] << 8 : 0);
                out[o++] = a[v >> 18 & 63];
                out[o++] = a[v >> 12 & 63];
                if (i + 1 < n)
                        out[o++] = a[v >> 6 & 63];
                else if (!(flags & B64_NOPAD))
                        out[o++] = '=';
                if (!(flags & B64_NOPAD))
                        out[o++] = '=';
        }
        out[o] = '\0';
}

char *b64_encode_alloc(const void *in, size_t n, int flags)
{
        char *out = xmalloc(b64_encoded_len(n, flags) + 1);
        b64_encode(in, n, out, flags);
        return out;
}

static int b64_val(char c, int flags)
{
        if (c >= 'A' && c <= 'Z')
                return c - 'A';
        if (c >= 'a' && c <= 'z')
                return c - 'a' + 26;
        if (c >= '0' && c <= '9')
                return c - '0' + 52;
        if (c == ((flags & B64_URL) ? '-' : '+'))
                return 62;
        if (c == ((flags & B64_URL) ? '_' : '/'))
                return 63;
        return -1;
}

int b64_decode(const char *in, size_t n, int flags, unsigned char **ret, size_t *ret_len)
{
        while (n > 0 && in[n - 1] == '=')
                n--;
        if (n % 4 == 1)
                return -EINVAL;
        cleanup_free unsigned char *out = xmalloc(n / 4 * 3 + 3);
        size_t o = 0;
        uint32_t acc = 0;
        int bits = 0;

        for (size_t i = 0; i < n; i++) {
                int v = b64_val(in[i], flags);
                if (v < 0)
                        return -EINVAL;
                acc = acc << 6 | (uint32_t)v;
                bits += 6;
                if (bits >= 8) {
                        bits -= 8;
                        out[o++] = (unsigned char)(acc >> bits & 0xff);
                }
        }
        *ret = TAKE_PTR(out);
        *ret_len = o;
        return 0;
}
