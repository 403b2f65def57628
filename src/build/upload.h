/* SPDX-License-Identifier: MIT */
/*
 * upload.h — pre-signed upload URLs for build archives (build-plane.md §9):
 *
 *   {publicURL}/build-files/{templateID}/{hash}?expires=<unix seconds>&signature=<hex>
 *   signature = lower-case hex HMAC-SHA256(server secret, "PUT\n<templateID>\n<hash>\n<expires>")
 *
 * E2B's opaque uploads (e2b.md §2.7: the hash names the content, not the archive) add
 * `&opaque=1` to the URL and "\nopaque" to the signed message.
 *
 * upload_signature() computes the signature; upload_signature_check() verifies one in
 * constant time and checks the expiry against `now` (seconds): EACCES with a message fit for a
 * 403 ("upload URL signature is invalid" / "upload URL has expired").
 */
#pragma once

#include "lib/err.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define UPLOAD_URL_TTL_S 3600

void upload_signature(const void *secret, size_t secret_len, const char *template_id,
                      const char *hash, int64_t expires, bool opaque, char out[65]);
int upload_signature_check(const void *secret, size_t secret_len, const char *template_id,
                           const char *hash, const char *expires, bool opaque,
                           const char *signature, int64_t now, struct cove_err **err);
