/* procs.c: finding the shimmed processes of this user and talking to their
 * stats sockets (protocol: one request line, half-close, read to EOF).
 * Discovery: <run dir>/<pid>.sock files (the run dir computed by config.c
 * exactly as the library does) and abstract @reshim-<uid>/<pid> sockets
 * listed in /proc/net/unix. Root sees every user's: each user's default run
 * directory (/tmp/reshim-<uid>, /run/user/<uid>/reshim) and abstract names
 * of every uid, where only that user's process of that pid is believed.
 * Every request has a deadline: a hung or malicious process never hangs
 * the CLI. */
#define _GNU_SOURCE
#include "cli.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/fsuid.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h> /* struct timeval: glibc brings it with sys/socket.h, musl does not */
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "config.h"

/* A socket file younger than this that refuses connections may belong to a
 * process between its bind and its listen: never called stale. */
#define STALE_GRACE_S 3

static const char *env_get(void *ctx, const char *name)
{
    (void)ctx;
    return getenv(name);
}

const char *cli_run_dir(void)
{
    static struct reshim_config cfg;
    static bool done;
    if (!done) {
        reshim_config_load(&cfg, env_get, NULL, NULL, NULL, (unsigned)getuid());
        done = true;
    }
    return cfg.run_dir;
}

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* alive: exists and is not a zombie. */
static bool pid_alive(int pid)
{
    if (pid <= 0 || (kill(pid, 0) != 0 && errno != EPERM))
        return false;
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return true; /* no /proc: kill said it exists */
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return true;
    buf[n] = 0;
    const char *rp = strrchr(buf, ')');
    return !(rp && rp[1] == ' ' && (rp[2] == 'Z' || rp[2] == 'X'));
}

const char *proc_comm(int pid, char *buf, size_t n)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/comm", pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    ssize_t r = fd >= 0 ? read(fd, buf, n - 1) : -1;
    if (fd >= 0)
        close(fd);
    if (r <= 0) {
        snprintf(buf, n, "?");
        return buf;
    }
    buf[r] = 0;
    buf[strcspn(buf, "\n")] = 0;
    return buf;
}

static socklen_t make_addr(const struct proc_ref *p, struct sockaddr_un *sa)
{
    memset(sa, 0, sizeof *sa);
    sa->sun_family = AF_UNIX;
    size_t n = strnlen(p->path, sizeof p->path);
    if (p->abstract) {
        if (n > sizeof sa->sun_path - 1)
            n = sizeof sa->sun_path - 1;
        memcpy(sa->sun_path + 1, p->path, n);
        return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + n);
    }
    if (n > sizeof sa->sun_path - 1)
        n = sizeof sa->sun_path - 1;
    memcpy(sa->sun_path, p->path, n);
    return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1);
}

/* The server connect_ref refused last (errno EPERM): its uid and pid, and
 * the user and pid its socket's place said. */
static unsigned foreign_uid, expected_uid;
static int foreign_pid, expected_pid;

/* What connect_ref's errno means, for a message. */
static const char *connect_error(int e, char *buf, size_t n)
{
    if (e == EAGAIN || e == ETIMEDOUT)
        return "busy (its backlog is full)";
    if (e == EPERM && expected_uid != getuid()) {
        snprintf(buf, n, "it is served by uid %u (pid %d), not by process %d of uid %u itself: "
                 "not trusted, ignored", foreign_uid, foreign_pid, expected_pid, expected_uid);
        return buf;
    }
    if (e == EPERM) {
        if (getuid() == 0)
            snprintf(buf, n, "it is served by uid %u, not by root: not trusted, ignored",
                     foreign_uid);
        else
            snprintf(buf, n, "it is served by uid %u, not by uid %u or root: not trusted, ignored",
                     foreign_uid, (unsigned)getuid());
        return buf;
    }
    return strerror(e);
}

/* Another user's socket file (root's CLI) is reached with that user's
 * rights (fsuid and fsgid), never root's: its owner may have swapped it for
 * a link to a socket only root can reach. on false: back to ours. */
static bool owner_rights(const struct proc_ref *p, bool on)
{
    if (p->abstract || p->uid == getuid())
        return true;
    uid_t u = on ? (uid_t)p->uid : getuid();
    gid_t g = on ? (gid_t)p->gid : getgid();
    if (on) /* the group first: a non-zero fsuid may not set it */
        setfsgid(g);
    setfsuid(u);
    if (!on)
        setfsgid(g);
    return (uid_t)setfsuid((uid_t)-1) == u && (gid_t)setfsgid((gid_t)-1) == g;
}

/* Connects within timeout_ms (a unix connect waits only while the backlog is
 * full: SO_SNDTIMEO bounds it). Returns a non-blocking fd, or -1 with errno.
 * The server must be of our uid or root (SO_PEERCRED): anyone in the network
 * namespace can bind an abstract @reshim-<uid>/<pid> first, and a socket file
 * can be swapped between our lstat and our connect; such a server would
 * otherwise feed us made-up stats. Refused with EPERM. Another user's
 * socket (root's CLI) must be served by that user's process of that pid. */
static int connect_ref(const struct proc_ref *p, int timeout_ms)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    if (timeout_ms < 1)
        timeout_ms = 1;
    struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    struct sockaddr_un sa;
    socklen_t len = make_addr(p, &sa);
    int rc = -1;
    errno = EACCES;
    if (owner_rights(p, true))
        do
            rc = connect(fd, (struct sockaddr *)&sa, len);
        while (rc < 0 && errno == EINTR);
    int e0 = errno;
    if (!owner_rights(p, false)) { /* never go on with another user's rights */
        cli_err("cannot take back the CLI's own file system rights");
        exit(EXIT_FAIL);
    }
    errno = e0;
    if (rc < 0) {
        int e = errno;
        close(fd);
        errno = e == EINPROGRESS ? ETIMEDOUT : e;
        return -1;
    }
    struct ucred cr = {.pid = 0, .uid = (uid_t)-1, .gid = (gid_t)-1};
    socklen_t cl = sizeof cr;
    bool ok = getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &cl) == 0 && cl == sizeof cr;
    if (!ok || (p->uid == getuid() ? cr.uid != getuid() && cr.uid != 0
                                   : cr.uid != p->uid || cr.pid != p->pid)) {
        foreign_uid = ok ? (unsigned)cr.uid : (unsigned)-1;
        foreign_pid = ok ? cr.pid : 0;
        expected_uid = p->uid;
        expected_pid = p->pid;
        close(fd);
        errno = EPERM;
        return -1;
    }
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    return fd;
}

/* ---- discovery ------------------------------------------------------------ */

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
    if (!pid_alive(p->pid))
        return true;
    int fd = connect_ref(p, 200);
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

static bool have_pid(const struct proc_ref *out, int n, int pid)
{
    for (int i = 0; i < n; i++)
        if (out[i].pid == pid)
            return true;
    return false;
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

struct list_ctx {
    struct proc_ref *out;
    int n, max;
};

static void add_abstract(void *c, unsigned uid, int pid)
{
    struct list_ctx *l = c;
    /* An abstract socket goes away with its process: never stale. Its pid
     * may be of another pid namespace (a sidecar container sharing the
     * network namespace), so it is not checked against ours. */
    if (l->n >= l->max || have_pid(l->out, l->n, pid))
        return;
    struct proc_ref *p = &l->out[l->n++];
    memset(p, 0, sizeof *p);
    p->pid = pid;
    p->abstract = true;
    p->uid = uid;
    snprintf(p->path, sizeof p->path, "reshim-%u/%d", uid, pid);
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
    struct list_ctx l = {out, 0, max};
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
            if (pid <= 0 || pid == getpid() || have_pid(out, l.n, pid) ||
                !file_ref(&dirs[k], e->d_name, pid, &p, &st))
                continue;
            if (file_is_stale(&p, &st)) {
                if (remove_stale && unlinkat(dirs[k].fd, e->d_name, 0) != 0 && errno != ENOENT)
                    cli_err("cannot remove the stale socket %s: %s", p.path, strerror(errno));
                continue;
            }
            out[l.n++] = p;
        }
        closedir(d);
    }
    run_dirs_close(dirs, nd);
    scan_abstract(add_abstract, &l);
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
    if (!pid_alive(pid))
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

/* ---- requests ------------------------------------------------------------- */

struct req {
    int fd;
    size_t sent;
    char *buf;
    size_t len, cap;
    bool done;
};

__attribute__((format(printf, 3, 4)))
static void req_fail(struct req *r, const struct proc_ref *p, const char *fmt, ...)
{
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    cli_err("process %d: %s", p->pid, msg);
    if (r->fd >= 0)
        close(r->fd);
    r->fd = -1;
    free(r->buf);
    r->buf = NULL;
    r->done = true;
}

int proc_request_many(const struct proc_ref *p, int n, const char *request, char **answers,
                      size_t *lens, int timeout_ms)
{
    if (n <= 0)
        return 0;
    long long deadline = now_ms() + timeout_ms;
    size_t qlen = strlen(request);
    char *line = malloc(qlen + 2);
    struct req *r = calloc((size_t)n, sizeof *r);
    struct pollfd *pf = calloc((size_t)n, sizeof *pf);
    if (!line || !r || !pf) {
        free(line), free(r), free(pf);
        cli_err("out of memory");
        return 0;
    }
    memcpy(line, request, qlen);
    line[qlen++] = '\n';
    line[qlen] = 0;
    for (int i = 0; i < n; i++) {
        answers[i] = NULL;
        lens[i] = 0;
        long long left = deadline - now_ms();
        r[i].fd = connect_ref(&p[i], left > 0 ? (int)left : 1);
        if (r[i].fd < 0) {
            char eb[160];
            req_fail(&r[i], &p[i], "cannot connect to its stats socket: %s",
                     connect_error(errno, eb, sizeof eb));
        }
    }
    int ok = 0;
    for (;;) {
        int np = 0;
        for (int i = 0; i < n; i++) {
            if (r[i].done)
                continue;
            pf[np].fd = r[i].fd;
            pf[np].events = r[i].sent < qlen ? POLLOUT : POLLIN;
            pf[np].revents = 0;
            np++;
        }
        if (np == 0)
            break;
        long long left = deadline - now_ms();
        int rc = left > 0 ? poll(pf, (nfds_t)np, (int)left) : 0;
        if (rc < 0 && errno == EINTR)
            continue;
        if (rc <= 0) {
            for (int i = 0; i < n; i++)
                if (!r[i].done) {
                    req_fail(&r[i], &p[i], "no answer within %.1f s", timeout_ms / 1000.0);
                }
            break;
        }
        for (int i = 0, k = 0; i < n; i++) {
            if (r[i].done)
                continue;
            struct pollfd *q = &pf[k++];
            if (!q->revents)
                continue;
            struct req *x = &r[i];
            if (x->sent < qlen) {
                ssize_t w = send(x->fd, line + x->sent, qlen - x->sent, MSG_NOSIGNAL);
                if (w < 0 && (errno == EAGAIN || errno == EINTR))
                    continue;
                if (w < 0) {
                    req_fail(x, &p[i], "cannot send the request: %s", strerror(errno));
                    continue;
                }
                x->sent += (size_t)w;
                if (x->sent == qlen)
                    shutdown(x->fd, SHUT_WR);
                continue;
            }
            if (x->len + 4096 + 1 > x->cap) {
                size_t cap = x->cap ? x->cap * 2 : 16384;
                char *nb = realloc(x->buf, cap);
                if (!nb) {
                    req_fail(x, &p[i], "out of memory");
                    continue;
                }
                x->buf = nb;
                x->cap = cap;
            }
            ssize_t got = recv(x->fd, x->buf + x->len, x->cap - x->len - 1, 0);
            if (got < 0 && (errno == EAGAIN || errno == EINTR))
                continue;
            if (got < 0) {
                req_fail(x, &p[i], "reading the answer: %s", strerror(errno));
                continue;
            }
            if (got > 0) {
                x->len += (size_t)got;
                continue;
            }
            /* EOF: the whole answer */
            close(x->fd);
            x->fd = -1;
            x->done = true;
            if (x->len == 0) {
                req_fail(x, &p[i], "closed the connection without an answer");
                continue;
            }
            x->buf[x->len] = 0;
            answers[i] = x->buf;
            lens[i] = x->len;
            x->buf = NULL;
            ok++;
        }
    }
    free(line);
    free(r);
    free(pf);
    return ok;
}

int proc_request(const struct proc_ref *p, const char *request, char **answer, size_t *len,
                 int timeout_ms)
{
    return proc_request_many(p, 1, request, answer, len, timeout_ms) == 1 ? 0 : -1;
}

int proc_open_stream(const struct proc_ref *p, const char *request)
{
    int fd = connect_ref(p, cli_timeout_ms);
    if (fd < 0) {
        char eb[160];
        cli_err("process %d: cannot connect to its stats socket: %s", p->pid,
                connect_error(errno, eb, sizeof eb));
        return -1;
    }
    size_t n = strlen(request);
    char line[256];
    if (n + 2 > sizeof line) {
        close(fd);
        return -1;
    }
    memcpy(line, request, n);
    line[n++] = '\n';
    size_t sent = 0;
    long long deadline = now_ms() + cli_timeout_ms;
    while (sent < n) {
        ssize_t w = send(fd, line + sent, n - sent, MSG_NOSIGNAL);
        if (w > 0) {
            sent += (size_t)w;
            continue;
        }
        if (w < 0 && (errno == EAGAIN || errno == EINTR) && now_ms() < deadline) {
            struct pollfd q = {fd, POLLOUT, 0};
            poll(&q, 1, 50);
            continue;
        }
        cli_err("process %d: cannot send the request: %s", p->pid, strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

char *proc_answer_error(const char *answer, size_t len)
{
    const char *p = answer, *end = answer + len;
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
        p++;
    if (end - p < 9 || strncmp(p, "{\"error\"", 8) != 0)
        return NULL;
    const char *err;
    struct json *j = json_parse(answer, len, &err);
    const char *msg = json_string(json_get(j, "error"));
    char *out = strdup(msg ? msg : "an error the CLI could not read");
    json_free(j);
    if (out)
        cli_sanitize(out); /* it goes to a terminal: no escape sequences of the process's */
    return out;
}

int cli_ask(int pid, const char *request, int timeout_ms, const char *refused, char **ans,
            size_t *len)
{
    struct proc_ref p;
    if (procs_find_or_explain(pid, &p) != EXIT_OK)
        return EXIT_NOPROC;
    if (proc_request(&p, request, ans, len, timeout_ms))
        return EXIT_FAIL;
    char *e = proc_answer_error(*ans, *len);
    if (!e)
        return EXIT_OK;
    cli_err("process %d: %s%s", pid, refused, e);
    free(e);
    free(*ans);
    *ans = NULL;
    return EXIT_FAIL;
}

void cli_print_raw(const char *ans, size_t len)
{
    fwrite(ans, 1, len, stdout);
    if (len && ans[len - 1] != '\n')
        putchar('\n');
}

int proc_snapshot(const struct proc_ref *p, struct reshim_snapshot *s, int timeout_ms)
{
    char *ans;
    size_t len;
    if (proc_request(p, "stats", &ans, &len, timeout_ms))
        return -1;
    char *e = proc_answer_error(ans, len);
    const char *why = NULL;
    int rc = 0;
    if (e) {
        cli_err("process %d: %s", p->pid, e);
        rc = -1;
    } else if (snap_parse_json(ans, len, s, &why) != 0) {
        cli_err("process %d: its stats answer is not a stats object (%s)", p->pid, why);
        rc = -1;
    }
    free(e);
    free(ans);
    return rc;
}

#define COLLECT_MAX 4096

int snapshots_collect(const int *pids, int npids, struct reshim_snapshot **snaps, int max)
{
    int cap = npids > 0 ? npids : COLLECT_MAX;
    struct proc_ref *refs = calloc((size_t)cap, sizeof *refs);
    if (!refs)
        return 0;
    int n = 0;
    if (npids > 0) {
        for (int i = 0; i < npids; i++)
            if (procs_find_or_explain(pids[i], &refs[n]) == EXIT_OK)
                n++;
    } else {
        n = procs_list(refs, cap, false);
        if (n < 0)
            n = 0;
    }
    if (n > max)
        n = max;
    char **ans = calloc((size_t)n + 1, sizeof *ans);
    size_t *lens = calloc((size_t)n + 1, sizeof *lens);
    int got = 0;
    if (ans && lens) {
        proc_request_many(refs, n, "stats", ans, lens, cli_timeout_ms);
        for (int i = 0; i < n; i++) {
            if (!ans[i])
                continue;
            char *e = proc_answer_error(ans[i], lens[i]);
            const char *why = NULL;
            struct reshim_snapshot *s = e ? NULL : malloc(sizeof *s);
            if (e)
                cli_err("process %d: %s", refs[i].pid, e);
            else if (!s)
                cli_err("out of memory");
            else if (snap_parse_json(ans[i], lens[i], s, &why) != 0) {
                cli_err("process %d: its stats answer is not a stats object (%s)", refs[i].pid,
                        why);
                free(s);
            } else {
                snaps[got++] = s;
            }
            free(e);
            free(ans[i]);
        }
    }
    free(ans);
    free(lens);
    free(refs);
    return got;
}
