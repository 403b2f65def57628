/* SPDX-License-Identifier: MIT */
#include "build/upload.h"

#include "build/digest.h"
#include "lib/macro.h"
#include "lib/parse.h"

#include "lib/banned.h"

void upload_signature(const void *secret, size_t secret_len, const char *template_id,
                      const char *hash, int64_t expires, bool opaque, char out[65])
{
        cleanup_free char *msg = xasprintf("PUT\n%s\n%s\n%lld%s", template_id, hash,
                                           (long long)expires, opaque ? "\nopaque" : "");
        hmac_sha256_hex(secret, secret_len, msg, strlen(msg), out);
}

int upload_signature_check(const void *secret, size_t secret_len, const char *template_id,
                           const char *hash, const char *expires, bool opaque,
                           const char *signature, int64_t now, struct cove_err **err)
{
        int64_t exp;
        char want[65];
        unsigned diff = 0;

        if (!expires || !signature || safe_atoi64(expires, &exp) < 0 || strlen(signature) != 64)
                return cove_err_set(err, EACCES, "upload URL signature is invalid");
        upload_signature(secret, secret_len, template_id, hash, exp, opaque, want);
        for (size_t i = 0; i < 64; i++)
                diff |= (unsigned)(want[i] ^ signature[i]);
        if (diff)
                return cove_err_set(err, EACCES, "upload URL signature is invalid");
        if (exp < now)
                return cove_err_set(err, EACCES, "upload URL has expired");
        return 0;
}
