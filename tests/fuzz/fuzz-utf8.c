/* SPDX-License-Identifier: MIT */
/*
 * fuzz-utf8.c — UTF-8 validation and escaping (lib/utf8.c): every request path, header and
 * JSON error message passes through it before it is echoed back.
 *
 * Differential: utf8_is_valid() and utf8_sequence_length() against a reference decoder
 * written here from RFC 3629 (shortest form, no surrogates, at most U+10FFFF). Checked too:
 * utf8_escape_invalid() always yields valid UTF-8 without NUL, leaves valid text without NUL
 * as it is, and never grows a byte into more than 4.
 */
#include "fuzz.h"
#include "lib/utf8.h"

/* Length of the valid sequence at p[0..n), or 0. */
static size_t ref_sequence(const unsigned char *p, size_t n)
{
        uint32_t cp, min;
        size_t len;

        if (n == 0)
                return 0;
        if (p[0] < 0x80)
                return 1;
        if ((p[0] & 0xe0) == 0xc0) {
                len = 2, cp = p[0] & 0x1f, min = 0x80;
        } else if ((p[0] & 0xf0) == 0xe0) {
                len = 3, cp = p[0] & 0x0f, min = 0x800;
        } else if ((p[0] & 0xf8) == 0xf0) {
                len = 4, cp = p[0] & 0x07, min = 0x10000;
        } else {
                return 0;
        }
        if (n < len)
                return 0;
        for (size_t i = 1; i < len; i++) {
                if ((p[i] & 0xc0) != 0x80)
                        return 0;
                cp = cp << 6 | (p[i] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
                return 0;
        return len;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        if (size > FUZZ_MAX_INPUT)
                return 0;
        const char *s = (const char *)data;
        bool valid = true;
        for (size_t i = 0; i < size;) {
                size_t l = ref_sequence(data + i, size - i);
                FUZZ_CHECK(utf8_sequence_length(s + i, size - i) == l);
                if (l == 0) {
                        valid = false;
                        i++;
                } else {
                        i += l;
                }
        }
        FUZZ_CHECK(utf8_is_valid(s, size) == valid);

        char *e = utf8_escape_invalid(s, size);
        size_t el = strlen(e);
        FUZZ_CHECK(el <= 4 * size);
        FUZZ_CHECK(utf8_is_valid(e, el));
        if (valid && !memchr(s, '\0', size))
                FUZZ_CHECK(el == size && memcmp(e, s, size) == 0);
        free(e);
        return 0;
}
