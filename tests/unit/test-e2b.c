/* SPDX-License-Identifier: MIT */
/* Unit tests of the E2B face's pure parsers: request classification (e2b.md §1.1), the code
 * interpreter's contexts file (interp_state.h), RFC 3339 times of the list filters. */
#include "coved/envd/interp_state.h"
#include "coved/http/e2b_classify.h"
#include "lib/macro.h"
#include "lib/timeutil.h"
#include "tap.h"

#include <errno.h>

static const char *const LANGS[] = { "python", "javascript", NULL };

static enum e2b_class classify(const struct e2b_request_view *v, const char *domain, char **id,
                               char **port, char *msg)
{
        *id = *port = NULL;
        msg[0] = '\0';
        return e2b_classify(v, domain, id, port, msg, 128);
}

static void test_classify_headers(void)
{
        const char *segs[] = { "health" };
        struct e2b_request_view v = { .method = "GET",
                                      .segs = segs,
                                      .nsegs = 1,
                                      .sandbox_id = "abc",
                                      .sandbox_port = "49983" };
        char *id, *port, msg[128];
        ASSERT_EQ(classify(&v, NULL, &id, &port, msg), E2B_CLASS_SANDBOX);
        ASSERT_STREQ(id, "abc");
        ASSERT_STREQ(port, "49983");
        free(id);
        free(port);
        v.sandbox_port = ""; /* empty counts as absent */
        ASSERT_EQ(classify(&v, NULL, &id, &port, msg), E2B_CLASS_BAD);
        ASSERT_STREQ(msg, "missing header: E2b-Sandbox-Port");
        v.sandbox_id = NULL;
        v.sandbox_port = "1";
        ASSERT_EQ(classify(&v, NULL, &id, &port, msg), E2B_CLASS_BAD);
        ASSERT_STREQ(msg, "missing header: E2b-Sandbox-Id");
        /* headers win over the Host */
        v.sandbox_id = "hdr";
        v.host = "49999-fromhost.sbx.test";
        ASSERT_EQ(classify(&v, "sbx.test", &id, &port, msg), E2B_CLASS_SANDBOX);
        ASSERT_STREQ(id, "hdr");
        free(id);
        free(port);
}

static void test_classify_host(void)
{
        struct e2b_request_view v = { .method = "GET" };
        char *id, *port, msg[128];
        v.host = "49983-AbC123-6532622b.SBX.test:443";
        ASSERT_EQ(classify(&v, "sbx.test", &id, &port, msg), E2B_CLASS_SANDBOX);
        ASSERT_STREQ(port, "49983");
        ASSERT_STREQ(id, "abc123-6532622b"); /* the gateway drops the suffix */
        free(id);
        free(port);
        static const char *const not_routed[] = {
                "api.sbx.test",            /* the control plane */
                "49983-abc.x.sbx.test",    /* two labels before the domain */
                "49983-.sbx.test",         /* no ID */
                "-abc.sbx.test",           /* no port */
                "49983abc.sbx.test",       /* no dash */
                "sbx.test",                /* the domain itself */
                "49983-abc.sbx.test.evil", /* another domain */
                "49983-abcsbx.test",       /* not a label boundary */
                "[::1]:49982",
                "",
        };
        for (size_t i = 0; i < ARRAY_SIZE(not_routed); i++) {
                v.host = not_routed[i];
                ASSERT_EQ(classify(&v, "sbx.test", &id, &port, msg), E2B_CLASS_NONE);
                ASSERT_TRUE(!id && !port);
        }
        v.host = "49983-abc.sbx.test";
        ASSERT_EQ(classify(&v, "", &id, &port, msg), E2B_CLASS_NONE); /* Host routing off */
}

static void test_classify_preflight_and_signed(void)
{
        const char *files[] = { "files" }, *files_slash[] = { "files", "" },
                   *other[] = { "files", "x" };
        struct e2b_request_view v = { .method = "OPTIONS",
                                      .acr_headers = "content-type, E2B-Sandbox-Id" };
        char *id, *port, msg[128];
        ASSERT_EQ(classify(&v, NULL, &id, &port, msg), E2B_CLASS_PREFLIGHT);
        v.acr_headers = "content-type";
        ASSERT_EQ(classify(&v, NULL, &id, &port, msg), E2B_CLASS_NONE);
        v = (struct e2b_request_view){
                .method = "POST", .segs = files, .nsegs = 1, .has_signature = true
        };
        ASSERT_EQ(classify(&v, NULL, &id, &port, msg), E2B_CLASS_SIGNED_FILES);
        v.segs = files_slash;
        v.nsegs = 2;
        ASSERT_EQ(classify(&v, NULL, &id, &port, msg), E2B_CLASS_SIGNED_FILES);
        v.segs = other;
        ASSERT_EQ(classify(&v, NULL, &id, &port, msg), E2B_CLASS_NONE);
        v.segs = files;
        v.nsegs = 1;
        v.method = "PUT";
        ASSERT_EQ(classify(&v, NULL, &id, &port, msg), E2B_CLASS_NONE);
        v.method = "GET";
        v.has_signature = false;
        ASSERT_EQ(classify(&v, NULL, &id, &port, msg), E2B_CLASS_NONE);
}

#define U1 "0b9f2d1e-4c3a-4f6b-8a7d-1e2f3a4b5c6d"
#define U2 "9e8d7c6b-5a49-4382-b716-05f4e3d2c1b0"

static void test_interp_state_round_trip(void)
{
        struct interp_state_ctx in[2] = {
                { .id = U1, .language = (char *)"python", .cwd = (char *)"/home/user", .pid = 42 },
                { .id = U2, .language = (char *)"javascript", .cwd = (char *)"/tmp", .pid = 0 },
        };
        cleanup_free char *text = interp_state_format(in, 2);
        struct interp_state_ctx *out = NULL;
        size_t n = 0;
        ASSERT_EQ(interp_state_parse(text, strlen(text), 64, LANGS, &out, &n), 0);
        ASSERT_EQ(n, 2u);
        ASSERT_STREQ(out[0].id, U1);
        ASSERT_STREQ(out[0].language, "python");
        ASSERT_STREQ(out[0].cwd, "/home/user");
        ASSERT_EQ(out[0].pid, 42);
        ASSERT_EQ(out[1].pid, 0);
        interp_state_free(out, n);
        cleanup_free char *tag = interp_state_kernel_tag(U1);
        ASSERT_TRUE(interp_state_is_kernel_tag(tag, U1));
        ASSERT_TRUE(!interp_state_is_kernel_tag(tag, U2));
        ASSERT_TRUE(!interp_state_is_kernel_tag("cove-interp-" U1, U1));
        ASSERT_TRUE(!interp_state_is_kernel_tag(NULL, U1));
}

static void test_interp_state_refusals(void)
{
        static const char *const bad[] = {
                "",
                "null",
                "[]",
                "{\"v\":2,\"contexts\":[]}",
                "{\"v\":1}",
                "{\"v\":1,\"contexts\":{}}",
                "{\"v\":1,\"contexts\":[1]}",
                "{\"v\":1,\"contexts\":[{\"id\":\"../x\",\"language\":\"python\",\"cwd\":\"/\"}]}",
                "{\"v\":1,\"contexts\":[{\"id\":\"" U1 "\",\"language\":\"cobol\",\"cwd\":\"/\"}]}",
                "{\"v\":1,\"contexts\":[{\"id\":\"" U1
                "\",\"language\":\"python\",\"cwd\":\"tmp\"}]}",
                "{\"v\":1,\"contexts\":[{\"id\":\"" U1
                "\",\"language\":\"python\",\"cwd\":\"/a\\u0000b\"}]}",
                "{\"v\":1,\"contexts\":[{\"id\":\"" U1 "\",\"language\":\"python\",\"cwd\":\"/\","
                "\"pid\":-1}]}",
                "{\"v\":1,\"contexts\":[{\"id\":\"" U1 "\",\"language\":\"python\",\"cwd\":\"/\","
                "\"pid\":99999999999}]}",
                "{\"v\":1,\"contexts\":[{\"id\":\"" U1 "\",\"language\":\"python\",\"cwd\":\"/\"},"
                "{\"id\":\"" U1 "\",\"language\":\"python\",\"cwd\":\"/\"}]}",
                "{\"v\":1,\"v\":1,\"contexts\":[]}",
        };
        for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
                struct interp_state_ctx *out = NULL;
                size_t n = 7;
                ASSERT_EQ(interp_state_parse(bad[i], strlen(bad[i]), 64, LANGS, &out, &n), -EINVAL);
                ASSERT_TRUE(out == NULL && n == 0);
        }
        /* more contexts than allowed */
        const char *two = "{\"v\":1,\"contexts\":[{\"id\":\"" U1
                          "\",\"language\":\"python\",\"cwd\":\"/\"},{\"id\":\"" U2
                          "\",\"language\":\"python\",\"cwd\":\"/\"}]}";
        struct interp_state_ctx *out = NULL;
        size_t n = 0;
        ASSERT_EQ(interp_state_parse(two, strlen(two), 1, LANGS, &out, &n), -EINVAL);
        ASSERT_EQ(interp_state_parse(two, strlen(two), 2, LANGS, &out, &n), 0);
        interp_state_free(out, n);
}

static void test_rfc3339(void)
{
        int64_t ms = 0;
        ASSERT_EQ(time_parse_rfc3339("2026-06-10T08:55:50Z", &ms), 0);
        ASSERT_EQ(ms, 1781081750000);
        ASSERT_EQ(time_parse_rfc3339("2026-06-10T10:55:50.123+02:00", &ms), 0);
        ASSERT_EQ(ms, 1781081750123);
        static const char *const bad[] = { "",
                                           "2026-06-10",
                                           "2026-13-10T00:00:00Z",
                                           "2026-06-10T25:00:00Z",
                                           "2026-06-10T08:55:50",
                                           "2026-06-10T08:55:50Zjunk" };
        for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
                ASSERT_EQ(time_parse_rfc3339(bad[i], &ms), -EINVAL);
        /* before 1970: the second before, plus a positive fraction (found by fuzz-rfc3339) */
        char out[TIME_RFC3339_MAX];
        time_format_rfc3339(-1, out);
        ASSERT_STREQ(out, "1969-12-31T23:59:59.999Z");
        ASSERT_EQ(time_parse_rfc3339("0026-06-10T10:55:50.126519+02:00", &ms), 0);
        time_format_rfc3339(ms, out);
        int64_t again = 0;
        ASSERT_EQ(time_parse_rfc3339(out, &again), 0);
        ASSERT_EQ(again, ms);
}

int main(void)
{
        RUN(test_classify_headers);
        RUN(test_classify_host);
        RUN(test_classify_preflight_and_signed);
        RUN(test_interp_state_round_trip);
        RUN(test_interp_state_refusals);
        RUN(test_rfc3339);
        return tap_done();
}
