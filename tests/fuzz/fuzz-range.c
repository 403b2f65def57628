/* SPDX-License-Identifier: MIT */
/*
 * fuzz-range.c — the Range request header (lib/range.c) of file downloads.
 *
 * Input: 8 bytes of representation size (big-endian; the top byte selects a small size, so
 * that both tiny and huge files are tried), then the header value. Checked: a satisfiable
 * range lies inside the representation and is not empty; an unsatisfiable one is answered
 * only when no byte of the request exists; the range written back as "bytes=a-b" parses to
 * itself.
 */
#include "fuzz.h"
#include "lib/range.h"

#include <inttypes.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        if (size > 4096 || size < 8) /* header values are short */
                return 0;
        uint64_t fsize = 0;
        for (int i = 0; i < 8; i++)
                fsize = fsize << 8 | data[i];
        if (data[0] & 0x80)
                fsize &= 0xff; /* small files: the edges at 0, 1, size - 1 */
        const char *p = (const char *)data + 8;
        size_t n = size - 8;

        uint64_t start = 7, len = 7;
        int r = http_range_parse(p, n, fsize, &start, &len);
        FUZZ_CHECK(r == 0 || r == 1 || r == -1);
        if (r != 1) {
                FUZZ_CHECK(start == 7 && len == 7); /* untouched */
                return 0;
        }
        FUZZ_CHECK(len >= 1 && start < fsize && len <= fsize - start);

        char again[64];
        (void)snprintf(again, sizeof(again), "bytes=%" PRIu64 "-%" PRIu64, start, start + len - 1);
        uint64_t s2, l2;
        FUZZ_CHECK(http_range_parse(again, strlen(again), fsize, &s2, &l2) == 1);
        FUZZ_CHECK(s2 == start && l2 == len);
        return 0;
}
