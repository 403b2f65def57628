/* SPDX-License-Identifier: MIT */
/*
 * ecr.h — registry credentials from AWS keys (build-plane.md §7.1, `fromImageRegistry`
 * `{"type": "aws", …}`), as `aws ecr get-login-password` makes them: one call of Amazon ECR's
 * GetAuthorizationToken (POST to https://api.ecr.<region>.amazonaws.com/, JSON 1.1 protocol,
 * signed with AWS Signature Version 4 over the access key), whose token decodes to
 * "AWS:<password>" — Basic credentials for the registry (<account>.dkr.ecr.<region>…).
 *
 * The keys are borrowed and sent nowhere: only the signature derived from them leaves, to the
 * ECR endpoint. Neither they nor the token appear in error messages. The endpoint may be
 * replaced (operator setting `aws-ecr-endpoint`, for air-gapped hosts with an ECR proxy and for
 * the tests' fake); plain http is accepted only on loopback. Bounded: 30 s, a 64 KiB answer.
 */
#pragma once

#include "lib/err.h"

#include <stdint.h>
#include <time.h>

struct ecr_opts {
        const char *access_key_id;
        const char *secret_access_key;
        const char *region;         /* [a-z0-9-]{1,32} */
        const char *endpoint;       /* NULL or "": https://api.ecr.<region>.amazonaws.com */
        volatile const int *cancel; /* may be NULL */
};

/* The registry credentials for o: *ret_user ("AWS") and *ret_password, owned (the caller wipes
 * and frees the password). Errors: -EINVAL bad region or endpoint, -EACCES refused by AWS (its
 * error type and message), -EIO transport or malformed answer. */
int ecr_login(const struct ecr_opts *o, char **ret_user, char **ret_password,
              struct cove_err **err);
