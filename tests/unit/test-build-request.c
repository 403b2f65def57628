/* SPDX-License-Identifier: MIT */
/* Template create/update bodies (three generations), BuildRequest, names, tags, build IDs and
 * upload signatures (src/build/request.c, upload.c). */
#include "build/request.h"
#include "build/upload.h"
#include "lib/macro.h"

#include "tap.h"

#define HEX64 "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

static char *officials[] = { "base", "code-interpreter", NULL };
static const struct template_limits lim = {
        .max_cpu = 8, .max_memory_mb = 16384, .max_disk_mb = 51200, .official_types = officials
};

static json_t *J(const char *s)
{
        json_error_t e;
        json_t *j = json_loads(s, 0, &e);
        if (!j)
                printf("# bad test JSON: %s\n", e.text);
        ASSERT_TRUE(j != NULL);
        return j;
}

static void tmpl_ok(const char *body, bool create, struct template_req *r)
{
        json_t *j = J(body);
        struct cove_err *err = NULL;
        int rc = template_req_parse(j, create, &lim, r, &err);
        if (rc < 0)
                printf("# %s\n", err->msg);
        ASSERT_EQ(rc, 0);
        json_decref(j);
}

static void tmpl_bad(const char *body, bool create, const char *fragment)
{
        json_t *j = J(body);
        struct template_req r = { 0 };
        struct cove_err *err = NULL;
        ASSERT_EQ(template_req_parse(j, create, &lim, &r, &err), -EINVAL);
        if (!strstr(err->msg, fragment))
                printf("# got: %s\n", err->msg);
        ASSERT_TRUE(strstr(err->msg, fragment) != NULL);
        cove_err_free(&err);
        json_decref(j);
}

static void test_generation_1_flat(void)
{
        struct template_req r = { 0 };
        tmpl_ok("{\"name\":\"demo\",\"visibility\":\"private\",\"image\":\"alpine:3.20\","
                "\"envs\":{\"A\":\"1\"},\"cpuCount\":2,\"memoryMB\":1024,\"startCmd\":\"sleep 1\"}",
                true, &r);
        ASSERT_STREQ(r.name, "demo");
        ASSERT_EQ(r.visibility, TEMPLATE_PERSONAL);
        ASSERT_STREQ(r.image, "alpine:3.20");
        ASSERT_STREQ(json_string_value(json_object_get(r.envs, "A")), "1");
        ASSERT_EQ(r.cpu_count.v, 2);
        ASSERT_EQ(r.disk_size_mb.v, 10240);
        ASSERT_STREQ(r.tags[0], "latest");
        ASSERT_TRUE(r.tags[1] == NULL);
        ASSERT_STREQ(r.start_cmd, "sleep 1");
        template_req_release(&r);
}

static void test_generation_2_nested_extensions(void)
{
        struct template_req r = { 0 };
        tmpl_ok("{\"name\":\"demo\",\"tags\":[\"v1\"],\"alias\":\"demo-alias\",\"teamID\":\"team_"
                "default\","
                "\"cpuCount\":2,\"memoryMB\":1024,\"visibility\":\"official\",\"workdir\":\"/top\","
                "\"extensions\":{\"visibility\":\"personal\",\"workdir\":\"/ext\",\"seacloud\":{"
                "\"baseTemplateID\":\"base\",\"visibility\":\"team\",\"envs\":{},"
                "\"storageType\":\"ephemeral\",\"storageSizeGB\":10}}}",
                true, &r);
        ASSERT_EQ(r.visibility, TEMPLATE_TEAM); /* seacloud > extensions > top level */
        ASSERT_STREQ(r.workdir, "/ext");
        ASSERT_STREQ(r.base_template_id, "base");
        ASSERT_STREQ(r.alias, "demo-alias");
        ASSERT_STREQ(r.team_id, "team_default");
        ASSERT_STREQ(r.tags[0], "v1");
        ASSERT_EQ(r.disk_size_mb.v, 10240); /* storageSizeGB × 1024 */
        ASSERT_STREQ(r.storage_type, "ephemeral");
        template_req_release(&r);
}

static void test_generation_3_flat_extensions(void)
{
        struct template_req r = { 0 };
        tmpl_ok("{\"name\":\"demo:v2\",\"tags\":[\"v1\",\"v2\"],\"cpuCount\":2,\"memoryMB\":1024,"
                "\"diskSizeMB\":4096,\"extensions\":{\"baseTemplateID\":\"base\",\"visibility\":"
                "\"team\","
                "\"envs\":{\"K\":\"v\"},\"storageType\":\"ephemeral\",\"storageSizeGB\":10,"
                "\"volumeMounts\":[{\"name\":\"cache\",\"path\":\"/cache\"}],\"workdir\":\"/"
                "app\"}}",
                true, &r);
        ASSERT_STREQ(r.name, "demo");
        ASSERT_STREQ(r.tags[0], "v2"); /* from name:tag, then the list, without duplicates */
        ASSERT_STREQ(r.tags[1], "v1");
        ASSERT_TRUE(r.tags[2] == NULL);
        ASSERT_EQ(r.disk_size_mb.v, 4096); /* diskSizeMB wins over storageSizeGB */
        ASSERT_EQ(json_array_size(r.volume_mounts), 1);
        ASSERT_STREQ(r.workdir, "/app");
        template_req_release(&r);
}

static void test_update_bodies(void)
{
        struct template_req r = { 0 };
        tmpl_ok("{\"public\":false}", false, &r);
        ASSERT_TRUE(r.public_.set && !r.public_.v);
        ASSERT_TRUE(r.tags == NULL); /* no defaults on update */
        ASSERT_TRUE(!r.cpu_count.set);
        template_req_release(&r);
        tmpl_ok("{\"extensions\":{\"seacloud\":{\"envs\":{\"APP_ENV\":\"prod\"}}}}", false, &r);
        ASSERT_STREQ(json_string_value(json_object_get(r.envs, "APP_ENV")), "prod");
        template_req_release(&r);
        tmpl_ok("{\"name\":\"demo-updated\"}", false, &r);
        ASSERT_STREQ(r.name, "demo-updated");
        template_req_release(&r);
        tmpl_bad("{}", false, "no updatable template fields");
        tmpl_bad("{\"tags\":[\"x\"],\"unknown\":1}", false, "no updatable template fields");
        tmpl_bad("{\"extensions\":{}}", false, "no updatable template fields");
}

static void test_template_errors(void)
{
        tmpl_bad("{}", true, "field 'name' is required");
        tmpl_bad("{\"name\":\"tpl-x\"}", true, "may not start with 'tpl-'");
        tmpl_bad("{\"name\":\"tags\"}", true, "is reserved");
        tmpl_bad("{\"name\":\"resolve\"}", true, "is reserved");
        tmpl_bad("{\"name\":\"base\"}", true, "official template");
        tmpl_bad("{\"name\":\"-x\"}", true, "is invalid");
        tmpl_bad("{\"name\":\"a b\"}", true, "is invalid");
        tmpl_bad("{\"name\":\"x:-bad\"}", true, "tag '-bad' is invalid");
        tmpl_bad("{\"name\":\"x\",\"tags\":[\"a\",\"b\",\"c\",\"d\",\"e\",\"f\",\"g\",\"h\",\"i\","
                 "\"j\",\"k\"]}",
                 true, "at most 10 tags");
        tmpl_bad("{\"name\":\"x\",\"cpuCount\":9}", true,
                 "field 'cpuCount' must be between 1 and 8");
        tmpl_bad("{\"name\":\"x\",\"cpuCount\":1.5}", true, "field 'cpuCount' must be an integer");
        tmpl_bad("{\"name\":\"x\",\"memoryMB\":64}", true, "field 'memoryMB' must be between 128");
        tmpl_bad("{\"name\":\"x\",\"diskSizeMB\":100}", true, "field 'diskSizeMB'");
        tmpl_bad("{\"name\":\"x\",\"ttlSeconds\":86401}", true, "field 'ttlSeconds'");
        tmpl_bad("{\"name\":\"x\",\"port\":70000}", true, "field 'port'");
        tmpl_bad("{\"name\":\"x\",\"visibility\":\"world\"}", true,
                 "field 'visibility' must be one of");
        tmpl_bad("{\"name\":\"x\",\"image\":\"Bad/Image\"}", true, "field 'image'");
        tmpl_bad("{\"name\":\"x\",\"dockerfile\":\"FROM a\\nFROM b\\n\"}", true,
                 "multi-stage builds are not supported");
        tmpl_bad("{\"name\":\"x\",\"workdir\":\"rel\"}", true, "absolute path");
        tmpl_bad("{\"name\":\"x\",\"extensions\":{\"storageType\":\"persistent\"}}", true,
                 "storageType 'persistent' is not supported");
        tmpl_bad("{\"name\":\"x\",\"extensions\":{\"storageSizeGB\":0}}", true,
                 "field 'storageSizeGB'");
        tmpl_bad("{\"name\":\"x\",\"extensions\":[]}", true,
                 "field 'extensions' must be an object");
        tmpl_bad("{\"name\":\"x\",\"extensions\":{\"seacloud\":1}}", true, "extensions.seacloud");
        tmpl_bad("{\"name\":\"x\",\"envs\":{\"A\":1}}", true, "field 'envs.A' must be a string");
        tmpl_bad("{\"name\":\"x\",\"alias\":\"-a\"}", true, "alias '-a' is invalid");
        tmpl_bad("{\"name\":\"x\",\"public\":\"yes\"}", true, "field 'public' must be a boolean");
        tmpl_bad("{\"name\":\"x\",\"startCmd\":5}", true, "field 'startCmd' must be a string");
        tmpl_bad("{\"name\":\"x\",\"volumeMounts\":{}}", true, "must be an array");
        tmpl_bad("{\"name\":\"x\",\"volumeMounts\":[{\"name\":\"v\",\"path\":\"/\"}]}", true,
                 "path must be absolute, not '/'");
        tmpl_bad("{\"name\":\"x\",\"volumeMounts\":[{\"name\":\"v\",\"path\":\"/a/../b\"}]}", true,
                 "without '..'");
        tmpl_bad("{\"name\":\"x\",\"volumeMounts\":[{\"path\":\"/a\"}]}", true,
                 "needs a string 'name' and 'path'");
        tmpl_bad("{\"name\":\"x\",\"extensions\":{\"volumeMounts\":[{\"name\":\"v\",\"path\":"
                 "\"/a\"},{\"name\":\"w\",\"path\":\"/a\"}]}}",
                 true, "path '/a' appears twice");
        /* null is absent */
        struct template_req r = { 0 };
        tmpl_ok("{\"name\":\"x\",\"cpuCount\":null,\"image\":null,\"extensions\":null}", true, &r);
        ASSERT_EQ(r.cpu_count.v, 2);
        template_req_release(&r);
}

static void build_ok(const char *body, bool allow, struct build_req *r)
{
        json_t *j = body ? J(body) : NULL;
        struct cove_err *err = NULL;
        int rc = build_req_parse(j, allow, r, &err);
        if (rc < 0)
                printf("# %s\n", err->msg);
        ASSERT_EQ(rc, 0);
        json_decref(j);
}

static void build_bad(const char *body, const char *fragment)
{
        json_t *j = J(body);
        struct build_req r = { 0 };
        struct cove_err *err = NULL;
        ASSERT_EQ(build_req_parse(j, true, &r, &err), -EINVAL);
        if (!strstr(err->msg, fragment))
                printf("# got: %s\n", err->msg);
        ASSERT_TRUE(strstr(err->msg, fragment) != NULL);
        cove_err_free(&err);
        json_decref(j);
}

static void test_build_request(void)
{
        struct build_req r = { 0 };
        build_ok(NULL, true, &r);
        ASSERT_TRUE(!r.from_image && !r.has_steps);
        build_req_release(&r);
        build_ok("{\"fromImage\":\"python:3.12\",\"fromImageRegistry\":{\"type\":\"registry\","
                 "\"username\":\"u\",\"password\":\"p\"},\"force\":true,\"steps\":[{\"type\":"
                 "\"RUN\","
                 "\"args\":[\"true\"]}],\"startCmd\":\"s\",\"readyCmd\":\"r\",\"buildID\":\"b-1\"}",
                 true, &r);
        ASSERT_STREQ(r.from_image, "python:3.12");
        ASSERT_EQ(r.cred_type, REGISTRY_CRED_BASIC);
        ASSERT_STREQ(r.username, "u");
        ASSERT_STREQ(r.password, "p");
        ASSERT_TRUE(r.force.v);
        ASSERT_EQ(r.n_steps, 1);
        ASSERT_STREQ(r.build_id, "b-1");
        build_req_release(&r);
        /* buildID is not a field of the other trigger route */
        build_ok("{\"buildID\":\"NOT A LABEL\"}", false, &r);
        ASSERT_TRUE(r.build_id == NULL);
        build_req_release(&r);
        build_ok("{\"fromImage\":\"gcr.io/p/"
                 "i\",\"fromImageRegistry\":{\"type\":\"gcp\",\"serviceAccountJson\":\"{}\"}}",
                 true, &r);
        ASSERT_EQ(r.cred_type, REGISTRY_CRED_GCP);
        ASSERT_STREQ(r.username, "_json_key");
        build_req_release(&r);
        build_ok("{\"fromImageRegistry\":\"{\\\"username\\\":\\\"u\\\",\\\"password\\\":\\\"p\\\"}"
                 "\"}",
                 true, &r);
        ASSERT_EQ(r.cred_type, REGISTRY_CRED_BASIC);
        build_req_release(&r);
        build_ok("{\"fromImageRegistry\":{\"type\":\"aws\",\"awsAccessKeyId\":\"k\","
                 "\"awsSecretAccessKey\":\"s\",\"awsRegion\":\"eu-west-1\"}}",
                 true, &r);
        ASSERT_EQ(r.cred_type, REGISTRY_CRED_AWS);
        ASSERT_STREQ(r.aws_region, "eu-west-1");
        build_req_release(&r);
        build_ok("{\"steps\":[{\"type\":\"context\",\"filesHash\":\"" HEX64
                 "\"}],\"filesHash\":\"" HEX64 "\"}",
                 true, &r);
        ASSERT_STREQ(r.legacy_hash, HEX64);
        build_req_release(&r);

        build_bad("{\"fromTemplate\":\"base\",\"fromImage\":\"alpine\"}",
                  "cannot be used together");
        build_bad("{\"fromImage\":\"UPPER\"}", "field 'fromImage'");
        build_bad("{\"fromImageRegistry\":{\"type\":\"registry\",\"username\":\"u\"}}",
                  "field 'password'");
        build_bad("{\"fromImageRegistry\":{\"type\":\"ftp\"}}", "must be registry, aws or gcp");
        build_bad("{\"fromImageRegistry\":5}", "must be an object");
        build_bad("{\"fromImageRegistry\":\"not json\"}", "must be an object");
        build_bad("{\"filesHash\":\"abc\"}", "64 lower-case hex");
        build_bad("{\"steps\":[{\"type\":\"context\",\"filesHash\":\"" HEX64 "\"}],\"filesHash\":"
                  "\"1111111111111111111111111111111111111111111111111111111111111111\"}",
                  "one distinct hash");
        build_bad("{\"buildID\":\"-x\"}", "DNS label");
        build_bad("{\"steps\":[{\"type\":\"NOPE\"}]}", "unknown step type");
        build_bad("{\"force\":1}", "field 'force' must be a boolean");
        build_bad("[]", "must be a JSON object");
}

static void test_names(void)
{
        ASSERT_EQ(build_id_check("build-18c3f2a4b5d6e7f8", NULL), 0);
        ASSERT_EQ(build_id_check("a", NULL), 0);
        ASSERT_EQ(build_id_check("a-", NULL), -EINVAL);
        ASSERT_EQ(build_id_check("A", NULL), -EINVAL);
        ASSERT_EQ(build_id_check("", NULL), -EINVAL);
        ASSERT_EQ(build_id_check("a_b", NULL), -EINVAL);
        char long_id[70];
        memset(long_id, 'a', 64);
        long_id[64] = '\0';
        ASSERT_EQ(build_id_check(long_id, NULL), -EINVAL);
        long_id[63] = '\0';
        ASSERT_EQ(build_id_check(long_id, NULL), 0);
        ASSERT_EQ(template_tag_check("v1.2_rc-3", NULL), 0);
        ASSERT_EQ(template_tag_check(".x", NULL), -EINVAL);
        ASSERT_EQ(template_name_check("alias", "tpl-ok-as-alias", true, officials, NULL), 0);
        ASSERT_EQ(template_visibility_from_string("private"), TEMPLATE_PERSONAL);
        ASSERT_STREQ(template_visibility_to_string(TEMPLATE_OFFICIAL), "official");
}

static void test_upload_signature(void)
{
        const char *secret = "s3cr3t";
        char sig[65], exp[32];
        struct cove_err *err = NULL;
        upload_signature(secret, 6, "tpl-1", HEX64, 2000, false, sig);
        ASSERT_EQ(strlen(sig), 64);
        ASSERT_EQ(upload_signature_check(secret, 6, "tpl-1", HEX64, "2000", false, sig, 1999, NULL),
                  0);
        ASSERT_EQ(upload_signature_check(secret, 6, "tpl-1", HEX64, "2000", false, sig, 2001, &err),
                  -EACCES);
        ASSERT_TRUE(strstr(err->msg, "expired"));
        cove_err_free(&err);
        ASSERT_EQ(upload_signature_check(secret, 6, "tpl-2", HEX64, "2000", false, sig, 1, &err),
                  -EACCES);
        ASSERT_TRUE(strstr(err->msg, "signature is invalid"));
        cove_err_free(&err);
        (void)snprintf(exp, sizeof(exp), "3000");
        ASSERT_EQ(upload_signature_check(secret, 6, "tpl-1", HEX64, exp, false, sig, 1, NULL),
                  -EACCES);
        ASSERT_EQ(upload_signature_check(secret, 6, "tpl-1", HEX64, NULL, false, sig, 1, NULL),
                  -EACCES);
        ASSERT_EQ(
                upload_signature_check(secret, 6, "tpl-1", HEX64, "2000", false, "short", 1, NULL),
                -EACCES);
        /* an opaque URL (E2B's content hashes) signs another message: neither passes as the
         * other */
        char osig[65];
        upload_signature(secret, 6, "tpl-1", HEX64, 2000, true, osig);
        ASSERT_TRUE(strcmp(osig, sig) != 0);
        ASSERT_EQ(upload_signature_check(secret, 6, "tpl-1", HEX64, "2000", true, osig, 1, NULL),
                  0);
        ASSERT_EQ(upload_signature_check(secret, 6, "tpl-1", HEX64, "2000", true, sig, 1, NULL),
                  -EACCES);
        ASSERT_EQ(upload_signature_check(secret, 6, "tpl-1", HEX64, "2000", false, osig, 1, NULL),
                  -EACCES);
}

int main(void)
{
        RUN(test_generation_1_flat);
        RUN(test_generation_2_nested_extensions);
        RUN(test_generation_3_flat_extensions);
        RUN(test_update_bodies);
        RUN(test_template_errors);
        RUN(test_build_request);
        RUN(test_names);
        RUN(test_upload_signature);
        return tap_done();
}
