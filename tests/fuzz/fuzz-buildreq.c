/* SPDX-License-Identifier: MIT */
/*
 * fuzz-buildreq.c — the build plane's request bodies (src/build/request.c, steps.c, digest.c,
 * build-plane.md §4, §7): template create and update bodies (template_req_parse, through its
 * three dispatch tables: top level, `extensions`, `extensions.seacloud`), BuildRequest
 * (build_req_parse, with `steps` and `fromImageRegistry`), a bare steps array
 * (build_steps_from_json) and digests (digest_parse). Any client with an API key sends them.
 *
 * The input is a body as the server reads it (json_parse, the contract's limits); its text up
 * to the first NUL is also read as a digest. Checked: a refusal is EINVAL with a message; an
 * accepted template has a valid name, 1–10 valid tags on create, resources inside the default
 * limits, a known visibility, an absolute workdir, a parseable image and Dockerfile; an update
 * names a field; an accepted build has at most BUILD_STEPS_MAX steps of known types with
 * counted NULL-terminated args and valid hashes, credentials complete for their type, and a
 * build ID only where one is allowed; an accepted digest points at 64 lower-case hex digits.
 */
#include "fuzz.h"
#include "build/digest.h"
#include "build/dockerfile.h"
#include "build/ref.h"
#include "build/request.h"
#include "build/steps.h"
#include "lib/json.h"

#include <errno.h>

static void check_failure(int r, struct cove_err **err)
{
        if (r < 0)
                FUZZ_CHECK(r == -EINVAL && *err && (*err)->msg && (*err)->errnum == EINVAL);
        cove_err_free(err);
}

static void check_steps(const struct build_step *s, size_t n)
{
        FUZZ_CHECK(n <= BUILD_STEPS_MAX);
        for (size_t i = 0; i < n; i++) {
                FUZZ_CHECK(s[i].type >= 0 && s[i].type < _BUILD_STEP_TYPE_MAX);
                FUZZ_CHECK(s[i].args);
                for (size_t a = 0; a < s[i].n_args; a++)
                        FUZZ_CHECK(s[i].args[a]);
                FUZZ_CHECK(s[i].args[s[i].n_args] == NULL);
                FUZZ_CHECK(!s[i].files_hash || sha256_hex_valid(s[i].files_hash));
        }
}

static void template(json_t *body, bool create)
{
        struct template_req t = { 0 };
        struct cove_err *err = NULL;
        int r = template_req_parse(body, create, NULL, &t, &err);

        check_failure(r, &err);
        if (r < 0)
                return;
        if (create) {
                FUZZ_CHECK(t.name && template_name_check("name", t.name, false, NULL, &err) == 0);
                size_t n = 0;
                for (char **tag = t.tags; tag && *tag; tag++, n++)
                        FUZZ_CHECK(template_tag_check(*tag, &err) == 0);
                FUZZ_CHECK(n >= 1 && n <= TEMPLATE_TAGS_MAX);
                FUZZ_CHECK(t.cpu_count.set && t.memory_mb.set && t.disk_size_mb.set);
                FUZZ_CHECK(t.has_visibility);
                FUZZ_CHECK(!t.alias ||
                           template_name_check("alias", t.alias, true, NULL, &err) == 0);
        } else {
                FUZZ_CHECK(t.any_field);
        }
        FUZZ_CHECK(!t.cpu_count.set || (t.cpu_count.v >= 1 && t.cpu_count.v <= 8));
        FUZZ_CHECK(!t.memory_mb.set || (t.memory_mb.v >= 128 && t.memory_mb.v <= 16384));
        FUZZ_CHECK(!t.disk_size_mb.set || (t.disk_size_mb.v >= 512 && t.disk_size_mb.v <= 51200));
        FUZZ_CHECK(!t.port.set || (t.port.v >= 0 && t.port.v <= 65535));
        FUZZ_CHECK(!t.has_visibility ||
                   (t.visibility >= 0 && t.visibility < _TEMPLATE_VISIBILITY_MAX));
        FUZZ_CHECK(!t.workdir || t.workdir[0] == '/');
        FUZZ_CHECK(!t.storage_type || strcmp(t.storage_type, "ephemeral") == 0);
        FUZZ_CHECK(!t.volume_mounts || json_is_array(t.volume_mounts));
        if (t.image) {
                struct image_ref ref = { 0 };
                FUZZ_CHECK(image_ref_parse(t.image, &ref, &err) == 0);
                image_ref_free(&ref);
        }
        if (t.dockerfile) {
                struct dockerfile *df = NULL;
                FUZZ_CHECK(dockerfile_parse(t.dockerfile, strlen(t.dockerfile), &df, &err) == 0);
                dockerfile_free(df);
        }
        template_req_release(&t);
}

static void build(json_t *body, bool allow_build_id)
{
        struct build_req b = { 0 };
        struct cove_err *err = NULL;
        int r = build_req_parse(body, allow_build_id, &b, &err);

        check_failure(r, &err);
        if (r < 0)
                return;
        FUZZ_CHECK(!(b.from_template && b.from_image));
        FUZZ_CHECK(!b.from_template || b.from_template[0]);
        check_steps(b.steps, b.n_steps);
        FUZZ_CHECK(b.has_steps || b.n_steps == 0);
        FUZZ_CHECK(!b.legacy_hash || sha256_hex_valid(b.legacy_hash));
        FUZZ_CHECK(!b.files_hash || sha256_hex_valid(b.files_hash));
        FUZZ_CHECK(!b.files_hash || !b.legacy_hash || strcmp(b.files_hash, b.legacy_hash) == 0);
        FUZZ_CHECK(allow_build_id || !b.build_id);
        FUZZ_CHECK(!b.build_id || build_id_check(b.build_id, &err) == 0);
        switch (b.cred_type) {
        case REGISTRY_CRED_NONE:
                FUZZ_CHECK(!b.username && !b.password);
                break;
        case REGISTRY_CRED_BASIC:
        case REGISTRY_CRED_GCP:
                FUZZ_CHECK(b.username && b.username[0] && b.password && b.password[0]);
                break;
        case REGISTRY_CRED_AWS:
                FUZZ_CHECK(b.aws_key_id && b.aws_secret && b.aws_region);
                break;
        }
        build_req_release(&b);
}

static void steps(json_t *body)
{
        struct build_step *s = NULL;
        size_t n = 0;
        char *legacy = NULL;
        struct cove_err *err = NULL;
        int r = build_steps_from_json(body, &s, &n, &legacy, &err);

        check_failure(r, &err);
        if (r < 0)
                return;
        check_steps(s, n);
        FUZZ_CHECK(!legacy || sha256_hex_valid(legacy));
        free(legacy);
        build_steps_free(s, n);
}

static void digest(const uint8_t *data, size_t size)
{
        char *s = strndup((const char *)data, size);
        const char *hex = NULL;
        struct cove_err *err = NULL;

        FUZZ_CHECK(s);
        int r = digest_parse(s, &hex, &err);
        check_failure(r, &err);
        if (r == 0)
                FUZZ_CHECK(hex > s && hex[-1] == ':' && sha256_hex_valid(hex) &&
                           strncmp(s, "sha256:", 7) == 0);
        free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        json_t *body = NULL;
        struct cove_err *err = NULL;

        if (size > FUZZ_MAX_INPUT)
                return 0;
        digest(data, size);
        if (json_parse((const char *)data, size, true, &body, &err) < 0) {
                FUZZ_CHECK(err && err->msg);
                cove_err_free(&err);
                return 0;
        }
        if (!body) { /* an empty body: only a build request may be empty */
                build(NULL, true);
                return 0;
        }
        if (json_is_array(body)) {
                steps(body);
        } else {
                template(body, true);
                template(body, false);
                build(body, true);
                build(body, false);
        }
        json_decref(body);
        return 0;
}
