/* SPDX-License-Identifier: MIT */
/*
 * fs_dispatch.c — the file API's entry (agent.h): which ops are its, and each op run with the
 * acting user's fs credentials, its failure sent as the spec's error frame (fs.h, "Op
 * convention"). The watchers' ops go to watch.c.
 */
#include "agent/fs.h"
#include "agent/watch.h"
#include "lib/http_status.h"
#include "lib/macro.h"

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
        { "files.open", fs_op_open },
        { "files.write", fs_op_write },
        { "files.content", fs_op_content },
        { "files.compose", fs_op_compose },
};

bool fs_handles(const char *op)
{
        return strncmp(op, "filesystem.", STRLEN("filesystem.")) == 0 ||
               strncmp(op, "files.", STRLEN("files.")) ==
                       0; /* read, open, write, content, compose */
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
