/* SPDX-License-Identifier: MIT */
/*
 * users.c — the sandbox's users, read from its own /etc/passwd and /etc/group.
 *
 * cove-agent is static, so NSS is out: we parse the two files ourselves. The parsed tables are
 * cached and re-read when either file changes (inode, size or mtime), so ListDir's owner names
 * do not re-read /etc/passwd per entry. Per-thread fs credentials use raw syscalls: glibc's
 * setgroups()/setfsuid() wrappers would broadcast to every thread of the process.
 */
#include "agent/agent.h"
#include "lib/fdutil.h"
#include "lib/macro.h"
#include "lib/parse.h"

#include <pthread.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#define USERS_FILE_MAX  (8 * 1024 * 1024)
#define USER_GROUPS_MAX 1024

struct pw_entry {
        char *name, *home, *shell;
        uid_t uid;
        gid_t gid;
};

struct gr_entry {
        char *name;
        gid_t gid;
        char **members; /* owned, NULL-terminated */
};

struct file_stamp {
        bool ok;
        dev_t dev;
        ino_t ino;
        off_t size;
        struct timespec mtime;
};

static pthread_mutex_t users_lock = PTHREAD_MUTEX_INITIALIZER;
static struct pw_entry *pw_tab;
static size_t pw_n;
static struct gr_entry *gr_tab;
static size_t gr_n;
static struct file_stamp pw_stamp, gr_stamp;
static bool users_loaded;

static void stamp_of(const char *path, struct file_stamp *s)
{
        struct stat st;

        *s = (struct file_stamp){ 0 };
        if (stat(path, &st) < 0)
                return;
        *s = (struct file_stamp){ .ok = true,
                                  .dev = st.st_dev,
                                  .ino = st.st_ino,
                                  .size = st.st_size,
                                  .mtime = st.st_mtim };
}

static bool stamp_eq(const struct file_stamp *a, const struct file_stamp *b)
{
        return a->ok == b->ok && a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
               a->mtime.tv_sec == b->mtime.tv_sec && a->mtime.tv_nsec == b->mtime.tv_nsec;
}

/* Splits line at ':' into at most n fields (in place). Returns the number of fields. */
static size_t split_colons(char *line, char **fields, size_t n)
{
        size_t k = 0;
        char *p = line;

        while (k < n) {
                fields[k++] = p;
                char *c = strchr(p, ':');
                if (!c)
                        break;
                *c = '\0';
                p = c + 1;
        }
        return k;
}

static int parse_id(const char *s, uint32_t *ret)
{
        uint32_t v;
        int r = safe_atou32(s, &v);
        if (r < 0)
                return r;
        if (v == UINT32_MAX) /* (uid_t)-1 is "no change" for the set*id calls */
                return -ERANGE;
        *ret = v;
        return 0;
}

static void tables_free(void)
{
        for (size_t i = 0; i < pw_n; i++) {
                free(pw_tab[i].name);
                free(pw_tab[i].home);
                free(pw_tab[i].shell);
        }
        free(pw_tab);
        pw_tab = NULL;
        pw_n = 0;
        for (size_t i = 0; i < gr_n; i++) {
                free(gr_tab[i].name);
                strv_free(gr_tab[i].members);
        }
        free(gr_tab);
        gr_tab = NULL;
        gr_n = 0;
}

static void load_passwd(void)
{
        cleanup_free char *data = NULL;
        size_t len, cap = 0;

        if (read_small_file("/etc/passwd", USERS_FILE_MAX, &data, &len) < 0)
                return;
        for (char *line = data, *next; line && *line; line = next) {
                char *f[7];
                uint32_t uid, gid;

                next = strchr(line, '\n');
                if (next)
                        *next++ = '\0';
                if (split_colons(line, f, 7) != 7 || !*f[0] || parse_id(f[2], &uid) < 0 ||
                    parse_id(f[3], &gid) < 0)
                        continue;
                if (pw_n == cap) {
                        cap = cap ? cap * 2 : 64;
                        pw_tab = xrealloc(pw_tab, cap * sizeof(*pw_tab));
                }
                pw_tab[pw_n++] = (struct pw_entry){ .name = xstrdup(f[0]),
                                                    .home = xstrdup(*f[5] ? f[5] : "/"),
                                                    .shell = xstrdup(*f[6] ? f[6] : "/bin/sh"),
                                                    .uid = uid,
                                                    .gid = gid };
        }
}

static void load_group(void)
{
        cleanup_free char *data = NULL;
        size_t len, cap = 0;

        if (read_small_file("/etc/group", USERS_FILE_MAX, &data, &len) < 0)
                return;
        for (char *line = data, *next; line && *line; line = next) {
                char *f[4];
                uint32_t gid;

                next = strchr(line, '\n');
                if (next)
                        *next++ = '\0';
                if (split_colons(line, f, 4) != 4 || !*f[0] || parse_id(f[2], &gid) < 0)
                        continue;

                size_t nm = 0, mcap = 4;
                char **members = xmalloc(mcap * sizeof(char *));
                for (char *m = f[3], *c; m && *m; m = c) {
                        c = strchr(m, ',');
                        if (c)
                                *c++ = '\0';
                        if (!*m)
                                continue;
                        if (nm + 1 >= mcap) {
                                mcap *= 2;
                                members = xrealloc(members, mcap * sizeof(char *));
                        }
                        members[nm++] = xstrdup(m);
                }
                members[nm] = NULL;
                if (gr_n == cap) {
                        cap = cap ? cap * 2 : 64;
                        gr_tab = xrealloc(gr_tab, cap * sizeof(*gr_tab));
                }
                gr_tab[gr_n++] =
                        (struct gr_entry){ .name = xstrdup(f[0]), .gid = gid, .members = members };
        }
}

/* Called with users_lock held: (re)loads the tables when the files changed. */
static void tables_refresh(void)
{
        struct file_stamp p, g;

        stamp_of("/etc/passwd", &p);
        stamp_of("/etc/group", &g);
        if (users_loaded && stamp_eq(&p, &pw_stamp) && stamp_eq(&g, &gr_stamp))
                return;
        tables_free();
        load_passwd();
        load_group();
        pw_stamp = p;
        gr_stamp = g;
        users_loaded = true;
}

struct agent_user *agent_user_free(struct agent_user *u)
{
        if (!u)
                return NULL;
        free(u->name);
        free(u->home);
        free(u->shell);
        free(u->groups);
        free(u);
        return NULL;
}

static void add_group(struct agent_user *u, gid_t g)
{
        for (size_t i = 0; i < u->ngroups; i++)
                if (u->groups[i] == g)
                        return;
        if (u->ngroups < USER_GROUPS_MAX)
                u->groups[u->ngroups++] = g;
}

int agent_user_lookup(const char *name, struct agent_user **ret)
{
        const struct pw_entry *pw = NULL;
        struct agent_user *u;

        if (!name)
                name = "root";

        pthread_mutex_lock(&users_lock);
        tables_refresh();
        for (size_t i = 0; i < pw_n; i++)
                if (streq(pw_tab[i].name, name)) {
                        pw = &pw_tab[i];
                        break;
                }
        if (!pw && !streq(name, "root")) {
                pthread_mutex_unlock(&users_lock);
                return -ENOENT;
        }

        u = xzalloc(sizeof(*u));
        u->groups = xmalloc(USER_GROUPS_MAX * sizeof(gid_t));
        if (pw) {
                u->name = xstrdup(pw->name);
                u->home = xstrdup(pw->home);
                u->shell = xstrdup(pw->shell);
                u->uid = pw->uid;
                u->gid = pw->gid;
        } else {
                /* A rootfs without /etc/passwd still has root. */
                u->name = xstrdup("root");
                u->home = xstrdup("/root");
                u->shell = xstrdup("/bin/sh");
                u->uid = 0;
                u->gid = 0;
        }
        add_group(u, u->gid);
        for (size_t i = 0; i < gr_n; i++)
                for (char **m = gr_tab[i].members; *m; m++)
                        if (streq(*m, u->name)) {
                                add_group(u, gr_tab[i].gid);
                                break;
                        }
        pthread_mutex_unlock(&users_lock);

        *ret = u;
        return 0;
}

char *agent_uid_name(uid_t uid)
{
        char *s = NULL;

        pthread_mutex_lock(&users_lock);
        tables_refresh();
        for (size_t i = 0; i < pw_n; i++)
                if (pw_tab[i].uid == uid) {
                        s = xstrdup(pw_tab[i].name);
                        break;
                }
        pthread_mutex_unlock(&users_lock);
        if (!s && uid == 0)
                s = xstrdup("root");
        return s ? s : xasprintf("%u", (unsigned)uid);
}

char *agent_gid_name(gid_t gid)
{
        char *s = NULL;

        pthread_mutex_lock(&users_lock);
        tables_refresh();
        for (size_t i = 0; i < gr_n; i++)
                if (gr_tab[i].gid == gid) {
                        s = xstrdup(gr_tab[i].name);
                        break;
                }
        pthread_mutex_unlock(&users_lock);
        if (!s && gid == 0)
                s = xstrdup("root");
        return s ? s : xasprintf("%u", (unsigned)gid);
}

/* The agent's own supplementary groups, restored by agent_fscreds_leave(). */
static pthread_once_t orig_groups_once = PTHREAD_ONCE_INIT;
static gid_t orig_groups[USER_GROUPS_MAX];
static int orig_ngroups;

static void orig_groups_init(void)
{
        int n = getgroups(USER_GROUPS_MAX, orig_groups);
        orig_ngroups = n < 0 ? 0 : n;
}

int agent_fscreds_enter(const struct agent_user *u)
{
        pthread_once(&orig_groups_once, orig_groups_init);
        if (syscall(SYS_setgroups, u->ngroups, u->groups) < 0)
                return -errno;
        /* setfsgid/setfsuid report no error: read the value back to check. */
        (void)syscall(SYS_setfsgid, u->gid);
        if ((gid_t)syscall(SYS_setfsgid, (gid_t)-1) != u->gid) {
                agent_fscreds_leave();
                return -EPERM;
        }
        (void)syscall(SYS_setfsuid, u->uid);
        if ((uid_t)syscall(SYS_setfsuid, (uid_t)-1) != u->uid) {
                agent_fscreds_leave();
                return -EPERM;
        }
        return 0;
}

void agent_fscreds_leave(void)
{
        pthread_once(&orig_groups_once, orig_groups_init);
        (void)syscall(SYS_setfsuid, geteuid());
        (void)syscall(SYS_setfsgid, getegid());
        (void)syscall(SYS_setgroups, (size_t)orig_ngroups, orig_groups);
}
