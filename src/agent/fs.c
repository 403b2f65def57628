/* SPDX-License-Identifier: MIT */
/*
 * fs.c — dispatch of the file API's ops (fs.h lists the modules), their request bodies, and
 * the one errno → status and message map they all report through (runtime.md §3).
 */
#include "agent/fs.h"
#include "agent/watch.h"
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

/* ---- dispatch ---- */

struct fs_op {
        const char *name;
        int (*fn)(struct agent_call *c, struct cove_err **err);
};

static const struct fs_op fs_ops[] = {
        { "filesystem.ListDir", fs_op_list_dir },
        { "filesystem.Stat", fs_op_stat },
        { "filesystem.MakeDir", fs_op_make_dir },
        { "filesystem.Remove", fs_op_remove },
        { "filesystem.Move", fs_op_move },
        { "filesystem.Edit", fs_op_edit },
        { "files.read", fs_op_read },
        { "files.write", fs_op_write },
        { "files.content", fs_op_content },
        { "files.compose", fs_op_compose },
};

bool fs_handles(const char *op)
{
        return strncmp(op, "filesystem.", STRLEN("filesystem.")) == 0 ||
               strncmp(op, "files.", STRLEN("files.")) == 0; /* read, write, content, compose */
}

int fs_handle(struct agent_call *c)
{
        cleanup_err struct cove_err *err = NULL;
        const struct fs_op *op = NULL;
        int r;

        if (watch_handles(c->op))
                return watch_handle(c); /* watch.c: WatchDir and the polled watchers */
        for (size_t i = 0; i < ARRAY_SIZE(fs_ops); i++)
                if (streq(c->op, fs_ops[i].name))
                        op = &fs_ops[i];
        if (!op)
                return agent_reply_err(c->fd, 501, "method '%s' is not implemented", c->op);

        /* E2B: root's privileges, the acting user's ownership (e2b.md §4.2) */
        r = agent_e2b_dialect ? 0 : agent_fscreds_enter(c->user);
        if (r < 0)
                return agent_reply_err(c->fd, 500, "cannot act as user '%s': %s",
                                       c->user ? c->user->name : "root", strerror(-r));
        agent_fs_owner = agent_e2b_dialect && c->user && c->user->uid != 0 ? c->user : NULL;
        r = op->fn(c, &err);
        agent_fs_owner = NULL;
        if (!agent_e2b_dialect)
                agent_fscreds_leave();
        if (r >= 0)
                return 0;
        if (!err)
                return r;
        return agent_reply_err(c->fd,
                               err->status ? err->status : (int)http_status_from_errno(err->errnum),
                               "%s", err->msg);
}
