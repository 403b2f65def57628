/* SPDX-License-Identifier: MIT */
/*
 * fs.c — what every op of the file API shares (fs.h lists the modules): its request bodies and
 * the one errno → status and message map they all report through (runtime.md §3).
 */
#include "agent/fs.h"
#include "lib/http_status.h"
#include "lib/macro.h"

#include <sys/stat.h>

/* ---- errors ---- */

/* Maps errno e from an operation on path p to the spec's status and message. */
int fs_err(struct cove_err **err, int e, const char *p)
{
        if (e < 0)
                e = -e;
        switch (e) {
        case ENOENT:
                return cove_err_set_status(err, 404, e, "path '%s' not found", p);
        case ENOTDIR:
                return cove_err_set_status(err, 400, e, "'%s' is not a directory", p);
        case EISDIR:
                return cove_err_set_status(err, 400, e, "'%s' is a directory", p);
        case ENXIO:
                return cove_err_set_status(err, 400, e, "'%s' is not a regular file", p);
        case EACCES:
        case EPERM:
                return cove_err_set_status(err, 403, e, "permission denied: '%s'", p);
        case EROFS:
                return cove_err_set_status(err, 403, e, "'%s' is on a read-only filesystem", p);
        case ENOSPC:
        case EDQUOT:
                return cove_err_set_status(err, 507, e, "not enough disk space for '%s'", p);
        case ENAMETOOLONG:
                return cove_err_set_status(err, 400, e, "path '%s' is too long", p);
        case ELOOP:
                return cove_err_set_status(err, 400, e, "too many levels of symbolic links in '%s'",
                                           p);
        case ENOSYS:
                return cove_err_set_status(err, 500, e,
                                           "'%s': the kernel has no openat2 (Linux 5.6), which "
                                           "the file API needs",
                                           p);
        case FS_EMAGIC:
                return cove_err_set_status(err, 403, EACCES,
                                           "permission denied: '%s' goes through a magic link "
                                           "(/proc/<pid>/exe, cwd, root, fd or map_files), "
                                           "which the file API does not follow",
                                           p);
        default:
                return cove_err_set_status(err, (int)http_status_from_errno(e), e, "'%s': %m", p);
        }
}

/* Lookups: a path whose parent component is a file does not exist either. */
int fs_err_lookup(struct cove_err **err, int e, const char *p)
{
        if (e == ENOTDIR || e == -ENOTDIR)
                e = ENOENT;
        return fs_err(err, e, p);
}

int fs_err_not_regular(struct cove_err **err, const struct stat *st, const char *p)
{
        if (S_ISDIR(st->st_mode))
                return cove_err_set_status(err, 400, EISDIR, "'%s' is a directory", p);
        return cove_err_set_status(err, 400, EINVAL, "'%s' is not a regular file", p);
}

/* ---- request bodies ---- */

void fs_req_done(struct fs_req *q)
{
        free(q->path);
        free(q->source);
        free(q->destination);
        free(q->old_text);
        free(q->new_text);
}

const struct json_field fs_fields_path[] = {
        { "path", json_take_str, offsetof(struct fs_req, path) },
        {},
};
const struct json_field fs_fields_list[] = {
        { "path", json_take_str, offsetof(struct fs_req, path) },
        { "depth", json_take_int, offsetof(struct fs_req, depth), 0, 1, FS_LIST_MAX_DEPTH },
        {},
};
const struct json_field fs_fields_move[] = {
        { "source", json_take_str, offsetof(struct fs_req, source) },
        { "destination", json_take_str, offsetof(struct fs_req, destination) },
        {},
};
const struct json_field fs_fields_edit[] = {
        { "path", json_take_str, offsetof(struct fs_req, path) },
        { "oldText", json_take_str, offsetof(struct fs_req, old_text) },
        { "newText", json_take_str, offsetof(struct fs_req, new_text) },
        {},
};
const struct json_field fs_fields_write[] = {
        { "path", json_take_str, offsetof(struct fs_req, path) },
        { "mode", json_take_int, offsetof(struct fs_req, mode), 0, 0, 07777 },
        {},
};

int fs_req_parse(struct agent_call *c, const struct json_field *fields, struct fs_req *q,
                 struct cove_err **err)
{
        int r = json_dispatch(c->body, fields, q, err);
        if (r < 0) {
                if (*err)
                        (*err)->status = 400;
                return r;
        }
        return 0;
}

_Thread_local const struct agent_user *agent_fs_owner;

uid_t fs_acting_uid(const struct agent_call *c)
{
        return agent_e2b_dialect || !c->user ? 0 : c->user->uid;
}

bool fs_acting_root(const struct agent_call *c)
{
        return fs_acting_uid(c) == 0;
}
