/* SPDX-License-Identifier: MIT */
/*
 * fuzz-oci.c — what coved reads from registries and images (src/build): manifests and indexes
 * (oci_manifest_parse, oci_index_select), image configs (oci_config_parse), image references
 * (image_ref_parse) and the registry's WWW-Authenticate challenge and token answer (wwwauth.c).
 * Registries are untrusted (any image a client names); references come from clients.
 *
 * The first byte chooses the manifest media type; the rest is fed to every parser (as a C
 * string to those that take one). Checked: failures carry messages; parsed documents keep
 * their limits (layers, entries, digests of the form "sha256:<64 hex>"); an image reference
 * written back parses to the same reference; a token is non-empty printable ASCII within
 * TOKEN_MAX; a Bearer challenge has a realm.
 */
#include "fuzz.h"
#include "build/manifest.h"
#include "build/ref.h"
#include "build/wwwauth.h"
#include "lib/err.h"

static void check_digest(const char *d)
{
        FUZZ_CHECK(d && strncmp(d, "sha256:", 7) == 0 && strlen(d) == 7 + 64);
        for (const char *c = d + 7; *c; c++)
                FUZZ_CHECK((*c >= '0' && *c <= '9') || (*c >= 'a' && *c <= 'f'));
}

static void check_failure(int r, struct cove_err **err)
{
        if (r < 0)
                FUZZ_CHECK(*err && (*err)->msg);
        cove_err_free(err);
}

static void manifest(const char *p, size_t n, const char *type)
{
        struct oci_manifest *m = NULL;
        struct cove_err *err = NULL;
        int r = oci_manifest_parse(p, n, type, &m, &err);
        check_failure(r, &err);
        if (r < 0)
                return;
        if (m->kind == OCI_DOC_MANIFEST) {
                check_digest(m->config.digest);
                FUZZ_CHECK(m->n_layers <= OCI_MAX_LAYERS);
                for (size_t i = 0; i < m->n_layers; i++) {
                        check_digest(m->layers[i].digest);
                        FUZZ_CHECK(m->layers[i].size >= 0 && m->layers[i].size <= OCI_BLOB_MAX);
                }
        } else {
                FUZZ_CHECK(m->n_entries <= OCI_MAX_INDEX_ENTRIES);
                for (size_t i = 0; i < m->n_entries; i++)
                        check_digest(m->entries[i].digest);
                const struct oci_descriptor *d = NULL;
                r = oci_index_select(m, "linux", "amd64", &d, &err);
                check_failure(r, &err);
                FUZZ_CHECK(r < 0 || (d >= m->entries && d < m->entries + m->n_entries));
        }
        oci_manifest_free(m);
}

static void config(const char *p, size_t n)
{
        struct oci_config *c = NULL;
        struct cove_err *err = NULL;
        int r = oci_config_parse(p, n, &c, &err);
        check_failure(r, &err);
        if (r < 0)
                return;
        FUZZ_CHECK(c->env && c->diff_ids);
        FUZZ_CHECK(c->port >= 0 && c->port <= 65535);
        oci_config_free(c);
}

static void reference(const char *s)
{
        struct image_ref a = { 0 }, b = { 0 };
        struct cove_err *err = NULL;
        int r = image_ref_parse(s, &a, &err);
        check_failure(r, &err);
        if (r < 0)
                return;
        FUZZ_CHECK(a.domain && *a.domain && a.repository && *a.repository);
        FUZZ_CHECK(a.tag || a.digest);
        if (a.digest)
                check_digest(a.digest);
        char *text = image_ref_to_string(&a);
        FUZZ_CHECK(image_ref_parse(text, &b, &err) == 0);
        FUZZ_CHECK(strcmp(a.domain, b.domain) == 0 && strcmp(a.repository, b.repository) == 0);
        FUZZ_CHECK((!a.tag && !b.tag) || (a.tag && b.tag && strcmp(a.tag, b.tag) == 0));
        FUZZ_CHECK((!a.digest && !b.digest) ||
                   (a.digest && b.digest && strcmp(a.digest, b.digest) == 0));
        free(text);
        image_ref_free(&a);
        image_ref_free(&b);
}

static void auth(const char *s, const char *p, size_t n)
{
        struct www_auth a = { 0 };
        struct cove_err *err = NULL;
        int r = www_auth_parse(s, &a, &err);
        check_failure(r, &err);
        if (r >= 0) {
                FUZZ_CHECK(a.scheme == WWW_AUTH_BASIC || a.scheme == WWW_AUTH_BEARER);
                FUZZ_CHECK(a.scheme != WWW_AUTH_BEARER || (a.realm && *a.realm));
                FUZZ_CHECK(!a.realm || strlen(a.realm) <= WWW_AUTH_VALUE_MAX);
                FUZZ_CHECK(!a.scope || strlen(a.scope) <= WWW_AUTH_VALUE_MAX);
                www_auth_free(&a);
        }
        char *token = NULL;
        r = token_response_parse(p, n, &token, &err);
        check_failure(r, &err);
        if (r >= 0) {
                size_t l = strlen(token);
                FUZZ_CHECK(l > 0 && l <= TOKEN_MAX);
                for (size_t i = 0; i < l; i++)
                        FUZZ_CHECK(token[i] > ' ' && token[i] < 0x7f);
                free(token);
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        static const char *const types[] = { MT_OCI_MANIFEST, MT_OCI_INDEX, MT_DOCKER_MANIFEST,
                                             MT_DOCKER_LIST, NULL };
        if (size < 1 || size > FUZZ_MAX_INPUT)
                return 0;
        const char *p = (const char *)data + 1;
        size_t n = size - 1;
        char *s = strndup(p, n);
        FUZZ_CHECK(s);

        manifest(p, n, types[data[0] % 5]);
        config(p, n);
        reference(s);
        auth(s, p, n);
        free(s);
        return 0;
}
