/* collect.c: `reshim collect --listen PATH [--textfile DIR] [--interval S]
 * [--keep S] [--json | --quiet] [--count N]`: the receiving end of
 * RESHIM_PUSH. Binds an AF_UNIX SOCK_DGRAM socket at PATH (mode 0600; a
 * stale socket there is replaced, a live one or anything that is not a
 * socket is refused; "@name" is an abstract socket, as RESHIM_PUSH takes it,
 * where the sender's uid is checked on every datagram instead), reads the
 * stats datagrams shimmed processes push (every RESHIM_INTERVAL and once at
 * exit), parses each with snap_parse_json (bad ones are counted and reported
 * on stderr, rate-limited, never fatal), and keeps the latest snapshot of
 * each pid in a bounded table (uthash by pid; a new start time under a
 * known pid is a new process). Per datagram one line on stdout ("PID COMM state=.. rss=.. ..."),
 * or the raw JSON line with --json, nothing with --quiet. With --textfile,
 * DIR/reshim.prom holds the merged Prometheus text of every known process
 * (snap_prometheus) plus the collector's own counters, rewritten at most once
 * per interval when something changed: written to a hidden temp file in DIR,
 * then rename(2) (node_exporter's textfile collector convention: atomic, no
 * timestamps).
 *
 * Exited processes: a process that stops pushing keeps its last figures
 * (usually its exit datagram) for --keep seconds (default 300, so several
 * scrapes see the final counters) or three of its own push periods, whichever
 * is longer; then it is dropped. When the table is full (4096 processes) the
 * one silent longest is dropped.
 *
 * Bursts: the kernel queues at most net.unix.max_dgram_qlen (10 by default)
 * datagrams on a unix datagram socket, whatever SO_RCVBUF says; a sender that
 * does not wait loses the rest (the shim retries its exit datagram for
 * 200 ms). So the socket is drained completely on each wakeup, with nothing
 * slow in between (stdout is flushed once per batch), and SO_RCVBUF is
 * raised anyway (it bounds the bytes queued).
 *
 * SIGINT/SIGTERM (or --count N datagrams): the textfile is written a last
 * time (and left in place: node_textfile_mtime_seconds shows its age), PATH
 * is unlinked, a summary goes to stderr, exit 0. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

/* The table's own allocations (buckets) failing: a CLI may stop there. */
#define uthash_fatal(msg) (cli_err("collect: out of memory (%s)", msg), exit(EXIT_FAIL))
#include <uthash.h>

#define COLLECT_PROCS 4096          /* processes kept at once */
#define COLLECT_RCVBUF (8 << 20)    /* bytes asked for SO_RCVBUF */
#define COLLECT_BATCH 4096          /* datagrams read before looking at the clock */
#define BAD_REPORT_BURST 10         /* bad datagrams reported one by one, then... */
#define BAD_REPORT_PERIOD 10.0      /* ...one summary line per this many seconds */

struct entry {
    int pid;                /* the key */
    UT_hash_handle hh;      /* in c->table, least recently heard from first */
    double start_time_s;    /* from the snapshot: tells a reused pid */
    double time_s;          /* of the last snapshot */
    double period_s;        /* between its last two snapshots, 0 when unknown */
    double last_rx;         /* monotonic seconds */
    struct reshim_snapshot *snap; /* compact: only its ndest destinations allocated */
};

struct collector {
    int fd;
    char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
    bool abstract;                /* "@name": no file */
    const char *textfile_dir;
    double interval, keep;
    bool json, quiet;
    unsigned long long count;     /* 0: no limit */

    struct entry *table;          /* uthash by pid, at most COLLECT_PROCS */
    int n;
    bool dirty;
    unsigned long long received, bad, evicted, writes, write_errors;
    unsigned long long seen;      /* processes (pid and start time) ever stored */
    unsigned long long bad_unreported;
    int bad_reported;
    double bad_window_start;
    char bad_last[128];

    char *buf;                    /* one datagram */
    size_t bufsz;
    struct reshim_snapshot *scratch;
};

/* ---- the table ------------------------------------------------------------ */

static struct reshim_snapshot *snap_compact(const struct reshim_snapshot *s)
{
    unsigned nd = s->ndest < SNAP_DESTS ? s->ndest : SNAP_DESTS;
    size_t sz = offsetof(struct reshim_snapshot, dest) + (size_t)nd * sizeof(struct snap_dest);
    struct reshim_snapshot *c = malloc(sz);
    if (c)
        memcpy(c, s, sz);
    return c;
}

static void drop(struct collector *c, struct entry *e)
{
    HASH_DEL(c->table, e);
    free(e->snap);
    free(e);
    c->n--;
    c->dirty = true;
}

/* Drops the processes silent for longer than they may be kept. */
static void expire(struct collector *c, double now)
{
    struct entry *e, *tmp;
    HASH_ITER(hh, c->table, e, tmp) {
        double hold = c->keep;
        if (3 * e->period_s > hold)
            hold = 3 * e->period_s;
        if (now - e->last_rx > hold)
            drop(c, e);
    }
}

static void store(struct collector *c, const struct reshim_snapshot *s, double now)
{
    struct reshim_snapshot *copy = snap_compact(s);
    if (!copy) {
        cli_err("collect: out of memory; datagram of process %d dropped", s->pid);
        return;
    }
    struct entry *e;
    int pid = s->pid;
    HASH_FIND_INT(c->table, &pid, e);
    if (e) {
        HASH_DEL(c->table, e); /* added again below: the table's order is of last_rx */
        if (fabs(e->start_time_s - s->start_time_s) > 1.0) {
            /* The pid was reused by a new process: start over. */
            free(e->snap);
            *e = (struct entry){.pid = pid};
        }
    } else {
        if (c->n == COLLECT_PROCS) {
            drop(c, c->table); /* the one silent longest */
            c->evicted++;
        }
        e = malloc(sizeof *e);
        if (!e) {
            cli_err("collect: out of memory; datagram of process %d dropped", pid);
            free(copy);
            return;
        }
        *e = (struct entry){.pid = pid};
        c->n++;
    }
    if (!e->snap)
        c->seen++;
    if (e->snap) {
        double d = s->time_s - e->time_s;
        if (d > 0.005 && d < 86400)
            e->period_s = d;
        free(e->snap);
    }
    e->snap = copy;
    e->start_time_s = s->start_time_s;
    e->time_s = s->time_s;
    e->last_rx = now;
    HASH_ADD_INT(c->table, pid, e);
    c->dirty = true;
}

/* ---- bad datagrams --------------------------------------------------------- */

static void bad_datagram(struct collector *c, const char *why, double now)
{
    c->bad++;
    snprintf(c->bad_last, sizeof c->bad_last, "%s", why);
    if (c->bad_reported < BAD_REPORT_BURST) {
        c->bad_reported++;
        cli_err("collect: bad datagram (%s)%s", why,
                c->bad_reported == BAD_REPORT_BURST ? "; further ones are summed up every 10 s"
                                                    : "");
        c->bad_window_start = now;
        return;
    }
    c->bad_unreported++;
}

static void bad_flush(struct collector *c, double now, bool force)
{
    if (!c->bad_unreported || (!force && now - c->bad_window_start < BAD_REPORT_PERIOD))
        return;
    cli_err("collect: %llu more bad datagrams (last: %s)", c->bad_unreported, c->bad_last);
    c->bad_unreported = 0;
    c->bad_window_start = now;
}

/* ---- output ------------------------------------------------------------------ */

static const char *compact_bytes(unsigned long long v, char *buf, size_t n)
{
    cli_bytes(v, buf, n);
    char *sp = strchr(buf, ' ');
    if (sp)
        memmove(sp, sp + 1, strlen(sp));
    return buf;
}

static void print_line(const struct reshim_snapshot *s)
{
    char comm[SNAP_COMM_MAX], rss[32], budget[32], heap[32];
    snprintf(comm, sizeof comm, "%s", s->comm[0] ? s->comm : "?");
    cli_sanitize(comm);
    for (char *p = comm; *p; p++)
        if (*p == ' ')
            *p = '_';
    char state[SNAP_WORD_MAX];
    snprintf(state, sizeof state, "%s", s->mem.state[0] ? s->mem.state : "?");
    cli_sanitize(state);
    uint64_t retries = 0, recovered = 0, gave_up = 0;
    for (int k = 0; k < SNAP_CLASSES; k++) {
        retries += s->net[k].retries;
        recovered += s->net[k].recovered;
        gave_up += s->net[k].gave_up;
    }
    compact_bytes(s->mem.rss_bytes, rss, sizeof rss);
    compact_bytes((unsigned long long)(s->mem.heap_live_bytes > 0 ? s->mem.heap_live_bytes : 0),
                  heap, sizeof heap);
    if (s->mem.budget_bytes)
        compact_bytes(s->mem.budget_bytes, budget, sizeof budget);
    else
        snprintf(budget, sizeof budget, "none");
    printf("%d %s state=%s rss=%s budget=%s heap=%s connects=%llu dns=%llu retries=%llu "
           "recovered=%llu gave_up=%llu enomem=%llu uptime=%.1fs\n",
           s->pid, comm, state, rss, budget, heap,
           (unsigned long long)s->net[SNAP_CONNECT].calls,
           (unsigned long long)s->net[SNAP_DNS].calls, (unsigned long long)retries,
           (unsigned long long)recovered, (unsigned long long)gave_up,
           (unsigned long long)s->mem.enomem, s->uptime_s);
}

static int cmp_pid(const void *a, const void *b)
{
    const struct reshim_snapshot *x = *(const struct reshim_snapshot *const *)a;
    const struct reshim_snapshot *y = *(const struct reshim_snapshot *const *)b;
    return (x->pid > y->pid) - (x->pid < y->pid);
}

static void own_metrics(struct collector *c, struct sbuf *b)
{
    static const struct {
        const char *name, *type, *help;
    } m[] = {
        {"reshim_collector_datagrams_total", "counter",
         "Stats datagrams received by reshim collect."},
        {"reshim_collector_bad_datagrams_total", "counter",
         "Datagrams reshim collect could not parse as stats."},
        {"reshim_collector_evicted_total", "counter",
         "Processes dropped from a full table before their time."},
        {"reshim_collector_processes", "gauge", "Processes whose figures this file holds."},
    };
    unsigned long long v[] = {c->received, c->bad, c->evicted, (unsigned long long)c->n};
    for (size_t i = 0; i < sizeof m / sizeof m[0]; i++) {
        sb_str(b, "# HELP ");
        sb_str(b, m[i].name);
        sb_str(b, " ");
        sb_str(b, m[i].help);
        sb_str(b, "\n# TYPE ");
        sb_str(b, m[i].name);
        sb_str(b, " ");
        sb_str(b, m[i].type);
        sb_str(b, "\n");
        sb_str(b, m[i].name);
        sb_str(b, " ");
        sb_u64(b, v[i]);
        sb_str(b, "\n");
    }
}

static int write_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t k = write(fd, p, n);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return -1;
        p += k;
        n -= (size_t)k;
    }
    return 0;
}

static int write_textfile(struct collector *c)
{
    const struct reshim_snapshot **v = calloc((size_t)c->n + 1, sizeof *v);
    if (!v)
        return -1;
    int n = 0;
    for (const struct entry *e = c->table; e; e = e->hh.next)
        if (e->snap)
            v[n++] = e->snap;
    qsort(v, (size_t)n, sizeof *v, cmp_pid);
    size_t cap = snap_prometheus_max(v, (size_t)n) + 4096;
    char *mem = malloc(cap);
    int rc = -1;
    char tmp[PATH_MAX], dst[PATH_MAX];
    snprintf(tmp, sizeof tmp, "%s/.reshim.prom.%d.tmp", c->textfile_dir, (int)getpid());
    snprintf(dst, sizeof dst, "%s/reshim.prom", c->textfile_dir);
    if (mem) {
        struct sbuf b;
        sb_init(&b, mem, cap);
        snap_prometheus(v, (size_t)n, &b);
        own_metrics(c, &b);
        if (b.overflow) {
            cli_err("collect: the metrics text did not fit its buffer (%zu bytes)", cap);
        } else {
            int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
            if (fd < 0) {
                cli_err("collect: %s: %s", tmp, strerror(errno));
            } else {
                bool ok = write_all(fd, b.p, b.len) == 0 && fchmod(fd, 0644) == 0;
                if (close(fd) != 0)
                    ok = false;
                if (!ok || rename(tmp, dst) != 0) {
                    cli_err("collect: writing %s: %s", dst, strerror(errno));
                    unlink(tmp);
                } else {
                    rc = 0;
                }
            }
        }
    }
    free(mem);
    free(v);
    if (rc == 0) {
        c->writes++;
        c->dirty = false;
    } else {
        c->write_errors++;
    }
    return rc;
}

/* ---- the socket ---------------------------------------------------------------- */

static int bind_socket(struct collector *c, const char *path)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    size_t len = strlen(path);
    if (len >= sizeof sa.sun_path) {
        cli_err("collect: %s: path longer than %zu bytes", path, sizeof sa.sun_path - 1);
        return -1;
    }
    memcpy(sa.sun_path, path, len + 1);
    snprintf(c->path, sizeof c->path, "%s", path);
    socklen_t alen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len + 1);
    c->abstract = path[0] == '@';
    if (c->abstract) { /* "@name", as RESHIM_PUSH takes it: no file, no mode */
        sa.sun_path[0] = 0;
        alen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len);
    }
    struct stat st;
    if (!c->abstract && lstat(path, &st) == 0) {
        if (!S_ISSOCK(st.st_mode)) {
            cli_err("collect: %s exists and is not a socket; not replacing it", path);
            return -1;
        }
        /* A socket: live (another collector) or stale (left by a crash)? */
        int probe = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (probe >= 0) {
            int r = connect(probe, (struct sockaddr *)&sa, alen);
            int err = errno;
            close(probe);
            if (r == 0) {
                cli_err("collect: %s: another process is receiving on it", path);
                return -1;
            }
            if (err != ECONNREFUSED) {
                cli_err("collect: %s: %s", path, strerror(err));
                return -1;
            }
        }
        if (unlink(path) != 0) {
            cli_err("collect: %s: cannot remove the stale socket: %s", path, strerror(errno));
            return -1;
        }
    }
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
        cli_err("collect: socket: %s", strerror(errno));
        return -1;
    }
    int sz = COLLECT_RCVBUF;
    if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &sz, sizeof sz) != 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof sz);
    if (c->abstract) {
        /* Anyone in the network namespace may send to an abstract name:
         * the sender's credentials come with each datagram and are checked. */
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_PASSCRED, &one, sizeof one);
    }
    mode_t old = umask(0177);
    int r = bind(fd, (struct sockaddr *)&sa, alen);
    int err = errno;
    umask(old);
    if (r != 0) {
        cli_err("collect: bind %s: %s", path, strerror(err));
        close(fd);
        return -1;
    }
    /* No chmod after the bind: umask 0177 made it 0600 already, and a chmod
     * by path would follow a symlink swapped in meanwhile (in a directory
     * others can write), changing the mode of whatever it points to. */
    c->fd = fd;
    return 0;
}

/* One datagram into c->buf: its length (MSG_TRUNC: the real one), or -1
 * (errno EAGAIN when the queue is empty). *foreign: sent by another user
 * (abstract sockets only; root may send). */
static ssize_t receive(struct collector *c, bool *foreign)
{
    *foreign = false;
    if (!c->abstract)
        return recv(c->fd, c->buf, c->bufsz - 1, MSG_DONTWAIT | MSG_TRUNC);
    union {
        char b[CMSG_SPACE(sizeof(struct ucred))];
        struct cmsghdr align;
    } ctl;
    struct iovec iov = {.iov_base = c->buf, .iov_len = c->bufsz - 1};
    struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.b,
                       .msg_controllen = sizeof ctl.b};
    ssize_t k = recvmsg(c->fd, &m, MSG_DONTWAIT | MSG_TRUNC | MSG_CMSG_CLOEXEC);
    if (k < 0)
        return k;
    bool known = false;
    for (struct cmsghdr *h = CMSG_FIRSTHDR(&m); h; h = CMSG_NXTHDR(&m, h)) {
        if (h->cmsg_level == SOL_SOCKET && h->cmsg_type == SCM_CREDENTIALS &&
            h->cmsg_len >= CMSG_LEN(sizeof(struct ucred))) {
            struct ucred u;
            memcpy(&u, CMSG_DATA(h), sizeof u);
            known = true;
            *foreign = u.uid != getuid() && u.uid != 0;
        }
    }
    if (!known)
        *foreign = true;
    return k;
}

/* ---- arguments ----------------------------------------------------------------- */

static void usage(FILE *f)
{
    fprintf(f,
            "usage: reshim collect --listen PATH [--textfile DIR] [--interval SECONDS]\n"
            "                      [--keep SECONDS] [--json | --quiet] [--count N]\n"
            "  receives the stats datagrams that processes started with RESHIM_PUSH=PATH send\n"
            "  (every RESHIM_INTERVAL and at exit); one line per datagram on stdout\n"
            "  --textfile DIR   keep DIR/reshim.prom (Prometheus text, all processes) up to date,\n"
            "                   for node_exporter's --collector.textfile.directory\n"
            "  --interval S     rewrite the textfile at most every S seconds (default 1)\n"
            "  --keep S         keep a process that stopped pushing S seconds (default 300)\n"
            "  --json           print each datagram as received (one JSON line)\n"
            "  --quiet          print nothing per datagram\n"
            "  --count N        exit after N datagrams\n");
}

static int parse_seconds(const char *s, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !(v >= 0.01) || v > 86400.0 * 365)
        return -1;
    *out = v;
    return 0;
}

static int collect_loop(struct collector *c)
{
    sigset_t orig;
    cli_stop_signals(&orig);

    double next_write = cli_mono_s();
    bool out_broken = false;
    c->dirty = c->textfile_dir != NULL; /* a first file at once, with no process yet */
    while (!cli_stop_signal) {
        double now = cli_mono_s();
        struct timespec ts, *tsp = NULL;
        double wait = next_write - now;
        if (c->n || c->dirty || c->bad_unreported) {
            if (wait < 0)
                wait = 0;
            ts.tv_sec = (time_t)wait;
            ts.tv_nsec = (long)((wait - (double)ts.tv_sec) * 1e9);
            tsp = &ts;
        }
        struct pollfd p = {.fd = c->fd, .events = POLLIN};
        int r = ppoll(&p, 1, tsp, &orig);
        if (r < 0 && errno != EINTR) {
            cli_err("collect: poll: %s", strerror(errno));
            break;
        }
        now = cli_mono_s();
        bool printed = false;
        for (int i = 0; i < COLLECT_BATCH; i++) {
            bool foreign;
            ssize_t k = receive(c, &foreign);
            if (k < 0) {
                if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
                    cli_err("collect: recv: %s", strerror(errno));
                break;
            }
            c->received++;
            const char *why = NULL;
            if (foreign) {
                bad_datagram(c, "sent by another user; dropped", now);
            } else if ((size_t)k >= c->bufsz - 1) {
                char m[64];
                snprintf(m, sizeof m, "%zd bytes, more than %zu", k, c->bufsz - 2);
                bad_datagram(c, m, now);
            } else if (snap_parse_json(c->buf, (size_t)k, c->scratch, &why) != 0) {
                bad_datagram(c, why, now);
            } else if (c->scratch->pid <= 0) {
                bad_datagram(c, "no pid", now);
            } else {
                store(c, c->scratch, now);
                if (!out_broken && c->json) {
                    fwrite(c->buf, 1, (size_t)k, stdout);
                    if (k == 0 || c->buf[k - 1] != '\n')
                        fputc('\n', stdout);
                    printed = true;
                } else if (!out_broken && !c->quiet) {
                    print_line(c->scratch);
                    printed = true;
                }
            }
            if (c->count && c->received >= c->count)
                break;
        }
        if (printed && fflush(stdout) != 0 && !out_broken) {
            out_broken = true; /* a closed pipe: keep collecting for the textfile */
            if (!c->textfile_dir)
                break;
        }
        bad_flush(c, now, false);
        if (c->count && c->received >= c->count)
            break;
        if (now >= next_write) {
            expire(c, now);
            if (c->textfile_dir && c->dirty)
                write_textfile(c);
            next_write = now + c->interval;
        }
    }
    expire(c, cli_mono_s());
    if (c->textfile_dir && (c->dirty || c->writes == 0))
        write_textfile(c);
    bad_flush(c, cli_mono_s(), true);
    fflush(stdout);
    sigprocmask(SIG_SETMASK, &orig, NULL);
    return 0;
}

int cmd_collect(int argc, char **argv)
{
    struct collector c = {.fd = -1, .interval = 1.0, .keep = 300.0};
    const char *listen_path = NULL;
    static const struct option longopts[] = {
        {"help", no_argument, NULL, 'h'},
        {"json", no_argument, NULL, 'j'},
        {"quiet", no_argument, NULL, 'q'},
        {"listen", required_argument, NULL, 'l'},
        {"textfile", required_argument, NULL, 't'},
        {"interval", required_argument, NULL, 'i'},
        {"keep", required_argument, NULL, 'k'},
        {"count", required_argument, NULL, 'c'},
        {NULL, 0, NULL, 0},
    };
    for (int o; (o = cli_getopt(argc, argv, "hq", longopts)) != -1;) {
        const char *val = optarg;
        char *end;
        unsigned long long v;
        switch (o) {
        case 'h':
            usage(stdout);
            return EXIT_OK;
        case 'j':
            c.json = true;
            break;
        case 'q':
            c.quiet = true;
            break;
        case 'l':
            listen_path = val;
            break;
        case 't':
            c.textfile_dir = val;
            break;
        case 'i':
            if (parse_seconds(val, &c.interval))
                return cli_usage_error("collect", "--interval %s: expected seconds, "
                                       "0.01 or more (e.g. 1, 0.5)", val);
            break;
        case 'k':
            if (parse_seconds(val, &c.keep))
                return cli_usage_error("collect", "--keep %s: expected seconds, 0.01 or "
                                       "more", val);
            break;
        case 'c':
            errno = 0;
            v = strtoull(val, &end, 10);
            if (errno || end == val || *end || v == 0 || val[0] == '-')
                return cli_usage_error("collect", "--count %s: expected a whole number "
                                       "above 0", val);
            c.count = v;
            break;
        default:
            return EXIT_USAGE;
        }
    }
    if (optind < argc)
        return cli_usage_error("collect", "unexpected argument %s", argv[optind]);
    if (!listen_path || !*listen_path)
        return cli_usage_error("collect", "--listen PATH is required");
    if (c.json && c.quiet)
        return cli_usage_error("collect", "--json and --quiet exclude each other");
    if (c.textfile_dir) {
        struct stat st;
        if (stat(c.textfile_dir, &st) != 0) {
            if (errno != ENOENT || mkdir(c.textfile_dir, 0755) != 0) {
                cli_err("collect: --textfile %s: %s", c.textfile_dir, strerror(errno));
                return EXIT_FAIL;
            }
        } else if (!S_ISDIR(st.st_mode)) {
            cli_err("collect: --textfile %s: not a directory", c.textfile_dir);
            return EXIT_FAIL;
        }
    }
    c.bufsz = snap_json_max(SNAP_DESTS) + 2;
    c.buf = malloc(c.bufsz);
    c.scratch = malloc(sizeof *c.scratch);
    if (!c.buf || !c.scratch) {
        cli_err("collect: out of memory");
        free(c.buf);
        free(c.scratch);
        return EXIT_FAIL;
    }
    int rc = EXIT_FAIL;
    if (bind_socket(&c, listen_path) == 0) {
        if (!c.quiet)
            cli_err("collect: receiving on %s%s%s%s", c.path,
                    c.textfile_dir ? ", writing " : "", c.textfile_dir ? c.textfile_dir : "",
                    c.textfile_dir ? "/reshim.prom" : "");
        rc = collect_loop(&c) == 0 ? EXIT_OK : EXIT_FAIL;
        close(c.fd);
        if (!c.abstract)
            unlink(c.path);
        cli_err("collect: %llu datagram%s (%llu bad) from %llu process%s%s", c.received,
                c.received == 1 ? "" : "s", c.bad, c.seen, c.seen == 1 ? "" : "es",
                cli_stop_signal ? "; stopped by a signal" : "");
    }
    while (c.table)
        drop(&c, c.table);
    free(c.buf);
    free(c.scratch);
    return rc;
}
