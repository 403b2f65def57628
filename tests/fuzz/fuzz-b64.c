/* SPDX-License-Identifier: MIT */
/*
 * fuzz-b64.c — base64 (lib/b64.c): `Authorization: Basic` on the runtime API, list offsets and
 * tokens handed back by clients.
 *
 * For each alphabet and padding mode: decoding never overruns its output, and whatever it
 * accepts decodes again to the same bytes after encoding; encoding the raw input yields
 * b64_encoded_len() characters that decode back to the input.
 */
#include "fuzz.h"
#include "lib/b64.h"

#include <errno.h>

static void check_mode(const uint8_t *data, size_t size, int flags)
{
        unsigned char *dec = NULL, *dec2 = NULL;
        size_t n = 0, n2 = 0;

        int r = b64_decode((const char *)data, size, flags, &dec, &n);
        FUZZ_CHECK(r == 0 || r == -EINVAL);
        if (r == 0) {
                FUZZ_CHECK(n <= size / 4 * 3 + 2);
                char *enc = b64_encode_alloc(dec, n, flags);
                FUZZ_CHECK(strlen(enc) == b64_encoded_len(n, flags));
                FUZZ_CHECK(b64_decode(enc, strlen(enc), flags, &dec2, &n2) == 0);
                FUZZ_CHECK(n2 == n && (n == 0 || memcmp(dec, dec2, n) == 0));
                free(enc);
                free(dec2);
                free(dec);
        }

        char *enc = b64_encode_alloc(data, size, flags);
        FUZZ_CHECK(strlen(enc) == b64_encoded_len(size, flags));
        FUZZ_CHECK(b64_decode(enc, strlen(enc), flags, &dec, &n) == 0);
        FUZZ_CHECK(n == size && (size == 0 || memcmp(dec, data, size) == 0));
        free(dec);
        free(enc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        if (size > FUZZ_MAX_INPUT)
                return 0;
        check_mode(data, size, 0);
        check_mode(data, size, B64_URL);
        check_mode(data, size, B64_NOPAD);
        check_mode(data, size, B64_URL | B64_NOPAD);
        return 0;
}
