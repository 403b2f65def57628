/* SPDX-License-Identifier: MIT */
/* interp_state.c — the persisted contexts of the code interpreter (interp_state.h). */
#include "coved/envd/interp_state.h"
#include "lib/json.h"
#include "lib/macro.h"
#include "lib/rand.h"

#include <errno.h>
#include <stdint.h>

static bool uuid_ok(const char *s, size_t n)
{
        if (n != INTERP_STATE_ID_LEN)
                return false;
        for (size_t i = 0; i < n; i++) {
                bool dash = i == 8 || i == 13 || i == 18 || i == 23;
                char c = s[i];
                if (dash ? c != '-' : !((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
                        return false;
        }
        return true;
}

static bool language_ok(const char *l, const char *const *languages)
{
        for (; languages && *languages; languages++)
                if (streq(*languages, l))
                        return true;
        return false;
}

void interp_state_free(struct interp_state_ctx *v, size_t n)
{
        for (size_t i = 0; v && i < n; i++) {
                free(v[i].language);
                free(v[i].cwd);
        }
        free(v);
}

int interp_state_parse(const char *p, size_t n, size_t max, const char *const *languages,
                       struct interp_state_ctx **ret, size_t *ret_n)
{
        json_error_t jerr;
        struct interp_state_ctx *v = NULL;
        size_t k = 0, i;
        json_t *c;

        *ret = NULL;
        *ret_n = 0;
        if (n > INTERP_STATE_MAX)
                return -EINVAL;
        json_auto_t *root = json_loadb(p, n, JSON_REJECT_DUPLICATES, &jerr);
        json_t *ctxs = json_object_get(root, "contexts");
        int64_t version;
        if (!json_is_object(root) || !json_get_integer(json_object_get(root, "v"), &version) ||
            version != 1 || !json_is_array(ctxs) || json_array_size(ctxs) > max)
                return -EINVAL;
        v = xzalloc(MAX(json_array_size(ctxs), (size_t)1) * sizeof(*v));
        json_array_foreach (ctxs, i, c) {
                json_t *id = json_object_get(c, "id"), *lang = json_object_get(c, "language"),
                       *cwd = json_object_get(c, "cwd"), *pid = json_object_get(c, "pid");
                int64_t pv = 0;
                if (!json_is_object(c) || !json_is_string(id) || !json_is_string(lang) ||
                    !json_is_string(cwd) ||
                    !uuid_ok(json_string_value(id), json_string_length(id)) ||
                    !language_ok(json_string_value(lang), languages) ||
                    json_string_length(cwd) > INTERP_STATE_CWD_MAX ||
                    strlen(json_string_value(cwd)) != json_string_length(cwd) ||
                    json_string_value(cwd)[0] != '/' ||
                    (pid && !json_is_null(pid) &&
                     (!json_get_integer(pid, &pv) || pv < 1 || pv > INT32_MAX)))
                        goto bad;
                for (size_t d = 0; d < k; d++)
                        if (streq(v[d].id, json_string_value(id)))
                                goto bad;
                memcpy(v[k].id, json_string_value(id), INTERP_STATE_ID_LEN + 1);
                v[k].language = xstrdup(json_string_value(lang));
                v[k].cwd = xstrdup(json_string_value(cwd));
                v[k].pid = pv;
                k++;
        }
        *ret = v;
        *ret_n = k;
        return 0;
bad:
        interp_state_free(v, k);
        return -EINVAL;
}

char *interp_state_format(const struct interp_state_ctx *v, size_t n)
{
        json_auto_t *arr = json_array();
        for (size_t i = 0; i < n; i++) {
                json_t *c = json_pack("{s:s, s:s, s:s}", "id", v[i].id, "language", v[i].language,
                                      "cwd", v[i].cwd);
                if (v[i].pid > 0)
                        json_object_set_new(c, "pid", json_integer(v[i].pid));
                json_array_append_new(arr, c);
        }
        json_auto_t *root = json_pack("{s:i, s:O}", "v", 1, "contexts", arr);
        return json_dumps_compact(root);
}

char *interp_state_kernel_tag(const char *ctx_id)
{
        char rnd[9];
        random_hex(rnd, 8);
        return xasprintf("%s%s-%s", INTERP_KERNEL_TAG, ctx_id, rnd);
}

bool interp_state_is_kernel_tag(const char *tag, const char *ctx_id)
{
        size_t pl = strlen(INTERP_KERNEL_TAG), il = strlen(ctx_id);
        return tag && strncmp(tag, INTERP_KERNEL_TAG, pl) == 0 &&
               strncmp(tag + pl, ctx_id, il) == 0 && tag[pl + il] == '-' &&
               strlen(tag + pl + il + 1) == 8;
}
