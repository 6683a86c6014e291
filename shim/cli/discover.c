/* discover.c: finding the shimmed processes of this user: <run dir>/<pid>.sock
 * files (the run dir computed by config.c exactly as the library does) and
 * abstract @reshim-<uid>/<pid> sockets listed in /proc/net/unix. Root sees
 * every user's: each user's default run directory (/tmp/reshim-<uid>,
 * /run/user/<uid>/reshim) and abstract names of every uid, where only that
 * user's process of that pid is believed. A socket file whose process is
 * gone, or that refuses connections past a grace time, is stale (removed by
 * `ls`). Talking to the sockets is procs.c's. */
#define _GNU_SOURCE
#include "cli.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* The table's own allocations (buckets) failing: a CLI may stop there. */
#define uthash_fatal(msg) (cli_err("out of memory (%s)", msg), exit(EXIT_FAIL))
#include <uthash.h>

/* A socket file younger than this that refuses connections may belong to a
 * process between its bind and its listen: never called stale. */
#define STALE_GRACE_S 3

/* "<digits>.sock" -> pid, else -1. */
static int sock_name_pid(const char *name)
{
    const char *dot = strchr(name, '.');
    if (!dot || strcmp(dot, ".sock") != 0 || dot == name || dot - name > 9)
        return -1;
    char num[16];
    memcpy(num, name, (size_t)(dot - name));
    num[dot - name] = 0;
    return cli_parse_pid(num);
}

/* A socket file of a live process that refuses connections, old enough not
 * to be one being set up, or of a process that is gone: stale. */
static bool file_is_stale(const struct proc_ref *p, const struct stat *st)
{
    if (!procs_pid_alive(p->pid))
        return true;
    int fd = procs_connect(p, 200);
    if (fd >= 0) {
        close(fd);
        return false;
    }
    if (errno != ECONNREFUSED)
        return false; /* busy (backlog full, timeout): alive */
    return time(NULL) - st->st_mtime > STALE_GRACE_S;
}

static int by_pid(const void *a, const void *b)
{
    const struct proc_ref *x = a, *y = b;
    return (x->pid > y->pid) - (x->pid < y->pid);
}

/* The pids listed so far: a uthash set over entries of one array (no
 * allocation per pid). */
struct seen {
    int pid;
    UT_hash_handle hh;
};

struct list_ctx {
    struct proc_ref *out;
    int n, max;
    struct seen *set, *pool;
};

static bool have_pid(const struct list_ctx *l, int pid)
{
    struct seen *s;
    HASH_FIND_INT(l->set, &pid, s);
    return s != NULL;
}

/* Appends p to the list (its pid not there yet, room left). */
static void list_add(struct list_ctx *l, const struct proc_ref *p)
{
    struct seen *s = &l->pool[l->n];
    s->pid = p->pid;
    HASH_ADD_INT(l->set, pid, s);
    l->out[l->n++] = *p;
}

/* A uid in a name: digits only, no sign, fits 32 bits; -1 otherwise. */
static long long parse_uid(const char *s, const char **end)
{
    long long v = 0;
    const char *p = s;
    while (*p >= '0' && *p <= '9' && p - s < 10)
        v = v * 10 + (*p++ - '0');
    *end = p;
    return p == s || v > 4294967295ll ? -1 : v;
}

/* ---- run directories ------------------------------------------------------ */

#define RUN_DIRS_MAX 256

struct run_dir {
    int fd;             /* O_RDONLY | O_DIRECTORY */
    unsigned uid, gid;  /* its owner: the user whose sockets it holds */
    dev_t dev;
    ino_t ino;
    char path[108];
};

/* dirs[*n] = <parent>/<name> when it is a directory of that uid, reached
 * without following a symbolic link (its owner could point it anywhere),
 * and not one already there. */
static void run_dir_add(struct run_dir *dirs, int *n, int parent, const char *name, unsigned uid,
                        const char *path)
{
    struct stat st;
    int fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return;
    bool seen = fstat(fd, &st) != 0 || st.st_uid != uid ||
                snprintf(dirs[*n].path, sizeof dirs[*n].path, "%s", path) >=
                    (int)sizeof dirs[*n].path;
    for (int i = 0; i < *n && !seen; i++)
        seen = dirs[i].dev == st.st_dev && dirs[i].ino == st.st_ino;
    if (seen) {
        close(fd);
        return;
    }
    dirs[*n] = (struct run_dir){fd, uid, (unsigned)st.st_gid, st.st_dev, st.st_ino, ""};
    snprintf(dirs[*n].path, sizeof dirs[*n].path, "%s", path);
    (*n)++;
}

/* Every run directory with sockets to look at: ours (cli_run_dir()), and as
 * root every user's default one too: /tmp/reshim-<uid> and
 * /run/user/<uid>/reshim, owned by that uid (a process that changed its
 * uid puts its socket there: reshim_run_dir_for). Returns how many are open;
 * run_dirs_close closes them. complain: a message when ours is unreadable. */
static int run_dirs_open(struct run_dir *dirs, bool complain)
{
    int n = 0;
    const char *own = cli_run_dir();
    char sub[32];
    run_dir_add(dirs, &n, AT_FDCWD, own, getuid(), own);
    if (n == 0 && complain && errno != ENOENT)
        cli_err("cannot read the run directory %s: %s", own, strerror(errno));
    if (getuid() != 0)
        return n;
    static const char *const parents[] = {"/tmp", "/run/user"};
    for (int k = 0; k < 2; k++) {
        DIR *d = opendir(parents[k]);
        struct dirent *e;
        while (d && (e = readdir(d)) && n < RUN_DIRS_MAX) {
            const char *end, *num = k == 0 ? e->d_name + 7 : e->d_name;
            if (k == 0 && strncmp(e->d_name, "reshim-", 7) != 0)
                continue;
            long long uid = parse_uid(num, &end);
            if (uid < 0 || *end)
                continue;
            if (k == 0) {
                if (snprintf(sub, sizeof sub, "/tmp/%s", e->d_name) < (int)sizeof sub)
                    run_dir_add(dirs, &n, dirfd(d), e->d_name, (unsigned)uid, sub);
                continue;
            }
            /* /run/user/<uid> is the user's own: its reshim entry too */
            struct stat st;
            int ufd = openat(dirfd(d), e->d_name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (ufd < 0)
                continue;
            if (snprintf(sub, sizeof sub, "/run/user/%s/reshim", e->d_name) < (int)sizeof sub &&
                fstat(ufd, &st) == 0 && st.st_uid == (uid_t)uid)
                run_dir_add(dirs, &n, ufd, "reshim", (unsigned)uid, sub);
            close(ufd);
        }
        if (d)
            closedir(d);
    }
    return n;
}

static void run_dirs_close(struct run_dir *dirs, int n)
{
    for (int i = 0; i < n; i++)
        close(dirs[i].fd);
}

/* ---- abstract sockets ----------------------------------------------------- */

/* Abstract sockets from /proc/net/unix: calls fn for each listener on
 * @reshim-<uid>/<pid> of this user (root: of every uid). */
static void scan_abstract(void (*fn)(void *ctx, unsigned uid, int pid), void *ctx)
{
    FILE *f = fopen("/proc/net/unix", "re");
    if (!f)
        return;
    char line[512];
    while (fgets(line, sizeof line, f)) {
        /* Num RefCount Protocol Flags Type St Inode Path */
        char flags[16], path[256];
        unsigned type, st;
        if (sscanf(line, "%*s %*s %*s %15s %x %x %*s %255s", flags, &type, &st, path) != 4)
            continue;
        if (type != 1 /* SOCK_STREAM */ || strtoul(flags, NULL, 16) != 0x10000 /* listening */)
            continue;
        const char *end;
        long long uid = strncmp(path, "@reshim-", 8) == 0 ? parse_uid(path + 8, &end) : -1;
        if (uid < 0 || *end != '/' || (getuid() != 0 && uid != getuid()))
            continue;
        int pid = cli_parse_pid(end + 1);
        if (pid > 0)
            fn(ctx, (unsigned)uid, pid);
    }
    fclose(f);
}

static void add_abstract(void *c, unsigned uid, int pid)
{
    struct list_ctx *l = c;
    /* An abstract socket goes away with its process: never stale. Its pid
     * may be of another pid namespace (a sidecar container sharing the
     * network namespace), so it is not checked against ours. */
    if (l->n >= l->max || have_pid(l, pid))
        return;
    struct proc_ref p = {.pid = pid, .abstract = true, .uid = uid};
    snprintf(p.path, sizeof p.path, "reshim-%u/%d", uid, pid);
    list_add(l, &p);
}

/* The socket file <dir>/<name> as a proc_ref: a socket of the directory's
 * owner (the entry of the directory we opened, never a path that may lead
 * elsewhere by now); *st its status. */
static bool file_ref(const struct run_dir *dir, const char *name, int pid, struct proc_ref *p,
                     struct stat *st)
{
    memset(p, 0, sizeof *p);
    p->pid = pid;
    p->uid = dir->uid;
    p->gid = dir->gid;
    return snprintf(p->path, sizeof p->path, "%s/%s", dir->path, name) < (int)sizeof p->path &&
           fstatat(dir->fd, name, st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISSOCK(st->st_mode) &&
           st->st_uid == dir->uid;
}

int procs_list(struct proc_ref *out, int max, bool remove_stale)
{
    struct list_ctx l = {out, 0, max, NULL, calloc(max > 0 ? (size_t)max : 1, sizeof *l.pool)};
    if (!l.pool) {
        cli_err("out of memory");
        return -1;
    }
    struct run_dir dirs[RUN_DIRS_MAX];
    int nd = run_dirs_open(dirs, true);
    for (int k = 0; k < nd; k++) {
        int dfd = dup(dirs[k].fd);
        DIR *d = dfd >= 0 ? fdopendir(dfd) : NULL;
        if (!d) {
            if (dfd >= 0)
                close(dfd);
            continue;
        }
        struct dirent *e;
        while ((e = readdir(d)) && l.n < max) {
            int pid = sock_name_pid(e->d_name);
            struct proc_ref p;
            struct stat st;
            if (pid <= 0 || pid == getpid() || have_pid(&l, pid) ||
                !file_ref(&dirs[k], e->d_name, pid, &p, &st))
                continue;
            if (file_is_stale(&p, &st)) {
                if (remove_stale && unlinkat(dirs[k].fd, e->d_name, 0) != 0 && errno != ENOENT)
                    cli_err("cannot remove the stale socket %s: %s", p.path, strerror(errno));
                continue;
            }
            list_add(&l, &p);
        }
        closedir(d);
    }
    run_dirs_close(dirs, nd);
    scan_abstract(add_abstract, &l);
    HASH_CLEAR(hh, l.set);
    free(l.pool);
    /* our own socket, when this CLI itself runs under the shim */
    for (int i = 0; i < l.n; i++)
        if (out[i].pid == getpid())
            out[i--] = out[--l.n];
    qsort(out, (size_t)l.n, sizeof *out, by_pid);
    return l.n;
}

void procs_say_none(void)
{
    if (getuid() == 0)
        cli_err("no process runs with the shim (sockets in %s, in every user's run directory, "
                "and abstract ones)", cli_run_dir());
    else
        cli_err("no process of uid %u runs with the shim (sockets in %s)", (unsigned)getuid(),
                cli_run_dir());
}

struct find_ctx {
    int pid;
    bool found;
    unsigned uid;
};

static void match_abstract(void *c, unsigned uid, int pid)
{
    struct find_ctx *f = c;
    if (pid == f->pid && !f->found) {
        f->found = true;
        f->uid = uid;
    }
}

enum find_result { FOUND, NO_PROCESS, NO_SHIM, STALE };

static enum find_result find(int pid, struct proc_ref *out)
{
    struct run_dir dirs[RUN_DIRS_MAX];
    int nd = run_dirs_open(dirs, false);
    bool stale = false;
    char name[32];
    struct proc_ref staled = {.pid = pid};
    snprintf(name, sizeof name, "%d.sock", pid);
    for (int k = 0; k < nd; k++) {
        struct stat st;
        if (!file_ref(&dirs[k], name, pid, out, &st))
            continue;
        if (!file_is_stale(out, &st)) {
            run_dirs_close(dirs, nd);
            return FOUND;
        }
        if (!stale)
            staled = *out;
        stale = true;
    }
    run_dirs_close(dirs, nd);
    struct find_ctx f = {pid, false, 0};
    scan_abstract(match_abstract, &f);
    memset(out, 0, sizeof *out);
    out->pid = pid;
    if (f.found) {
        out->abstract = true;
        out->uid = f.uid;
        snprintf(out->path, sizeof out->path, "reshim-%u/%d", f.uid, pid);
        return FOUND;
    }
    *out = staled;
    if (!procs_pid_alive(pid))
        return NO_PROCESS;
    return stale ? STALE : NO_SHIM;
}

int procs_find(int pid, struct proc_ref *out)
{
    return find(pid, out) == FOUND ? 0 : -1;
}

int procs_find_or_explain(int pid, struct proc_ref *out)
{
    char comm[64];
    switch (find(pid, out)) {
    case FOUND:
        return EXIT_OK;
    case NO_PROCESS:
        cli_err("no process %d", pid);
        break;
    case STALE:
        cli_err("process %d (%s): its stats socket %s refuses connections (the shim in it "
                "stopped serving, or the pid was reused)",
                pid, proc_comm(pid, comm, sizeof comm), out->path);
        break;
    case NO_SHIM: {
        char path[64];
        struct stat st;
        snprintf(path, sizeof path, "/proc/%d", pid);
        if (stat(path, &st) == 0 && st.st_uid != getuid() && getuid() != 0)
            cli_err("process %d (%s) belongs to uid %u: reshim sees only the processes of "
                    "its own user (uid %u)",
                    pid, proc_comm(pid, comm, sizeof comm), (unsigned)st.st_uid,
                    (unsigned)getuid());
        else
            cli_err("process %d (%s) has no reshim stats socket in %s%s (not started with the "
                    "shim, RESHIM_DISABLE=1, or another RESHIM_RUN_DIR)",
                    pid, proc_comm(pid, comm, sizeof comm), cli_run_dir(),
                    getuid() == 0 ? " or another user's run directory" : "");
        break;
    }
    }
    return EXIT_NOPROC;
}
