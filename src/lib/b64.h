/* SPDX-License-Identifier: MIT */
/*
 * b64.h — base64 (RFC 4648). The standard alphabet with padding is what the runtime API
 * sends; decoding accepts missing padding. The url-safe alphabet without padding is used for
 * tokens and list offsets.
 */
#pragma once

#include <stddef.h>

enum b64_flags {
        B64_URL = 1 << 0,   /* '-' '_' instead of '+' '/' */
        B64_NOPAD = 1 << 1, /* no trailing '=' */
};

size_t b64_encoded_len(size_t n, int flags);
/* Writes b64_encoded_len(n) bytes plus a NUL into out. */
void b64_encode(const void *in, size_t n, char *out, int flags);
char *b64_encode_alloc(const void *in, size_t n, int flags);
/* Decodes into a new allocation; -EINVAL on bad input. Whitespace is not accepted. */
int b64_decode(const char *in, size_t n, int flags, unsigned char **ret, size_t *ret_len);
