/* procs.c: talking to the stats sockets of shimmed processes (protocol:
 * one request line, half-close, read to EOF; discover.c finds them). Every
 * request has a deadline: a hung or malicious process never hangs the CLI.
 * The server must be who the socket's place says (SO_PEERCRED). */
#define _GNU_SOURCE
#include "cli.h"

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

#include "answerjson.h"
#include "config.h"

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

/* alive: exists and is not a zombie. */
bool procs_pid_alive(int pid)
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

/* The server procs_connect refused last (errno EPERM): its uid and pid, and
 * the user and pid its socket's place said. */
static unsigned foreign_uid, expected_uid;
static int foreign_pid, expected_pid;

/* What procs_connect's errno means, for a message. */
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
int procs_connect(const struct proc_ref *p, int timeout_ms)
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
    /* The socket appears at bind, a moment before the library's listen: a
     * live process's refusal is asked again, every 10 ms for up to 100 ms
     * (within the timeout); a stale socket of a reused pid costs that once. */
    int refused_ms = timeout_ms < 100 ? timeout_ms : 100;
    if (owner_rights(p, true))
        for (int waited = 0;; waited += 10) {
            do
                rc = connect(fd, (struct sockaddr *)&sa, len);
            while (rc < 0 && errno == EINTR);
            if (rc == 0 || errno != ECONNREFUSED || waited >= refused_ms ||
                !procs_pid_alive(p->pid))
                break;
            struct timespec ts = {0, 10 * 1000 * 1000};
            nanosleep(&ts, NULL);
        }
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
    int64_t deadline = cli_mono_ms() + timeout_ms;
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
        int64_t left = deadline - cli_mono_ms();
        r[i].fd = procs_connect(&p[i], left > 0 ? (int)left : 1);
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
        int64_t left = deadline - cli_mono_ms();
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
    int fd = procs_connect(p, cli_timeout_ms);
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
    int64_t deadline = cli_mono_ms() + cli_timeout_ms;
    while (sent < n) {
        ssize_t w = send(fd, line + sent, n - sent, MSG_NOSIGNAL);
        if (w > 0) {
            sent += (size_t)w;
            continue;
        }
        if (w < 0 && (errno == EAGAIN || errno == EINTR) && cli_mono_ms() < deadline) {
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
    const char *err;
    struct snap_error e;
    if (snap_error_parse(answer, len, &e, &err) != 0 || !e.has_error)
        return NULL; /* not an object with an error (a stats line, say) */
    char *out = strdup(e.error);
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
