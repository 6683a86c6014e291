/* watch.c: `reshim watch PID [-n SECONDS]`: a live view of one process from
 * the protocol's `watch MS` stream. On a terminal: a full-screen view
 * redrawn in place on the alternate screen (cursor hidden, keys read in
 * raw mode: q quits), restored on every way out (q, Ctrl-C, SIGTERM,
 * SIGHUP, the process ending; Ctrl-Z suspends and resumes cleanly): RSS
 * against the budget as a bar coloured by state, heap, per-class call and
 * retry rates from consecutive frames, totals, and the per-destination
 * table. Not on a terminal: one plain key=value line per frame, flushed,
 * no escape bytes. --json passes the frames through. */
#define _GNU_SOURCE
#include "cli.h"

#include <errno.h>
#include <getopt.h>
#include <fcntl.h>
#include <langinfo.h>
#include <locale.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "utf8.h"

/* ---- terminal state, restored on every way out --------------------------- */

static volatile sig_atomic_t sig_quit, sig_winch, sig_tstp;
static bool term_on;            /* alternate screen entered */
static bool raw_on;             /* stdin in raw mode */
static bool sgr_on;             /* colour and attributes in use (not with NO_COLOR) */
static struct termios saved_tio;

static void on_signal(int sig)
{
    if (sig == SIGWINCH)
        sig_winch = 1;
    else if (sig == SIGTSTP)
        sig_tstp = 1;
    else
        sig_quit = sig;
}

static void term_write(const char *s)
{
    size_t n = strlen(s);
    while (n) {
        ssize_t w = write(STDOUT_FILENO, s, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return;
        s += w;
        n -= (size_t)w;
    }
}

static void term_restore(void)
{
    if (raw_on) {
        tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved_tio);
        raw_on = false;
    }
    if (term_on) {
        /* reset attributes, show the cursor, leave the alternate screen */
        term_write(sgr_on ? "\033[0m\033[?25h\033[?1049l" : "\033[?25h\033[?1049l");
        term_on = false;
    }
}

static void term_setup(void)
{
    fflush(stdout);
    term_write("\033[?1049h\033[?25l\033[H\033[2J");
    term_on = true;
    if (isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &saved_tio) == 0) {
        struct termios t = saved_tio;
        t.c_lflag &= (tcflag_t) ~(ICANON | ECHO); /* keys one by one, not echoed; ISIG kept */
        t.c_cc[VMIN] = 0;
        t.c_cc[VTIME] = 0;
        if (tcsetattr(STDIN_FILENO, TCSAFLUSH, &t) == 0)
            raw_on = true;
    }
}

static void install(int sig, void (*fn)(int))
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = fn;
    sigemptyset(&sa.sa_mask);
    sigaction(sig, &sa, NULL); /* no SA_RESTART: poll returns EINTR */
}

/* ---- frames and rates ------------------------------------------------------ */

struct view {
    int pid;
    double interval_s;
    struct reshim_snapshot *cur, *prev;  /* prev NULL until the second frame */
    double cur_t, prev_t;                /* when they were taken (s) */
    unsigned long frames;
    bool color, utf8;
    int w, h;
    double last_frame_mono;              /* for "stalled" */
};

/* Per second, from the previous frame; NAN on the first. */
static double rate(const struct view *v, uint64_t now, uint64_t before)
{
    if (!v->prev)
        return NAN;
    double dt = v->cur_t - v->prev_t;
    if (!(dt > 0))
        return NAN;
    return now >= before ? (double)(now - before) / dt : 0;
}

static const struct snap_dest *prev_dest(const struct view *v, const struct snap_dest *d,
                                         unsigned hint)
{
    if (!v->prev)
        return NULL;
    const struct reshim_snapshot *p = v->prev;
    if (hint < p->ndest && strcmp(p->dest[hint].dest, d->dest) == 0 &&
        strcmp(p->dest[hint].dir, d->dir) == 0)
        return &p->dest[hint];
    for (unsigned i = 0; i < p->ndest && i < SNAP_DESTS; i++)
        if (strcmp(p->dest[i].dest, d->dest) == 0 && strcmp(p->dest[i].dir, d->dir) == 0)
            return &p->dest[i];
    return NULL;
}

static double dest_rate(const struct view *v, unsigned i)
{
    const struct snap_dest *d = &v->cur->dest[i];
    const struct snap_dest *p = prev_dest(v, d, i);
    if (!v->prev)
        return NAN;
    return rate(v, d->connect.calls + d->sends + d->recvs,
                p ? p->connect.calls + p->sends + p->recvs : 0);
}

static uint64_t total(const struct reshim_snapshot *s, int what)
{
    uint64_t t = 0;
    for (int c = 0; c < SNAP_CLASSES; c++)
        t += what == 0 ? s->net[c].calls
           : what == 1 ? s->net[c].retries
           : what == 2 ? s->net[c].recovered
                       : s->net[c].gave_up;
    return t;
}

static double usage_frac(const struct reshim_snapshot *s)
{
    if (!s->mem.budget_bytes)
        return NAN;
    uint64_t u = s->mem.usage_bytes ? s->mem.usage_bytes : s->mem.rss_bytes;
    return (double)u / (double)s->mem.budget_bytes;
}

static const char *fmt_rate(double r, char *buf, size_t n)
{
    if (isnan(r))
        snprintf(buf, n, "-");
    else if (r >= 9999.5)
        snprintf(buf, n, "%.0f", r);
    else
        snprintf(buf, n, "%.1f", r);
    return buf;
}

/* ---- plain lines (not a terminal) ----------------------------------------- */

static void plain_line(const struct view *v)
{
    const struct reshim_snapshot *s = v->cur;
    char ts[64], r1[32], r2[32], r3[32], r4[32];
    double t = s->time_s > 0 ? s->time_s : (double)time(NULL);
    time_t tt = (time_t)t;
    struct tm tm;
    localtime_r(&tt, &tm);
    strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S%z", &tm);
    double calls = v->prev ? rate(v, total(s, 0), total(v->prev, 0)) : NAN;
    double retries = v->prev ? rate(v, total(s, 1), total(v->prev, 1)) : NAN;
    double conn = v->prev ? rate(v, s->net[SNAP_CONNECT].calls, v->prev->net[SNAP_CONNECT].calls)
                          : NAN;
    double conn_r = v->prev ? rate(v, s->net[SNAP_CONNECT].retries,
                                   v->prev->net[SNAP_CONNECT].retries)
                            : NAN;
    double f = usage_frac(s);
    char pct[32];
    if (isnan(f))
        snprintf(pct, sizeof pct, "-");
    else
        snprintf(pct, sizeof pct, "%.1f", 100 * f);
    printf("%s pid=%d rss_bytes=%llu budget_bytes=%llu usage_pct=%s state=%s heap_live_bytes=%lld "
           "heap_peak_bytes=%llu calls_per_s=%s retries_per_s=%s connect_per_s=%s "
           "connect_retries_per_s=%s recovered=%llu gave_up=%llu destinations=%u "
           "replays=%llu replay_held_bytes=%llu\n",
           ts, s->pid ? s->pid : v->pid, (unsigned long long)s->mem.rss_bytes,
           (unsigned long long)s->mem.budget_bytes, pct, s->mem.state[0] ? s->mem.state : "?",
           (long long)s->mem.heap_live_bytes, (unsigned long long)s->mem.heap_peak_bytes,
           fmt_rate(calls, r1, sizeof r1), fmt_rate(retries, r2, sizeof r2),
           fmt_rate(conn, r3, sizeof r3), fmt_rate(conn_r, r4, sizeof r4),
           (unsigned long long)total(s, 2), (unsigned long long)total(s, 3), s->ndest,
           (unsigned long long)snap_replays_total(&s->replay),
           (unsigned long long)s->replay_held_bytes);
    fflush(stdout);
}

/* ---- the full-screen view -------------------------------------------------- */

struct scr {
    FILE *f;
    int w, h;       /* terminal size */
    int col, row;   /* where the next character goes (0-based) */
    bool color;
    bool sgr;       /* attributes set on this line */
};

/* Visible text, cut at the right edge (counted in code points). */
static void s_put(struct scr *s, const char *text)
{
    if (s->row >= s->h)
        return;
    for (const unsigned char *p = (const unsigned char *)text; *p;) {
        size_t len = utf8_seq(p, strnlen((const char *)p, UTF8_MAX));
        if (len == 0)
            len = 1; /* not UTF-8 (the text is sanitized before): a byte a column */
        if (s->col < s->w)
            fwrite(p, 1, len, s->f);
        s->col++;
        p += len;
    }
}

__attribute__((format(printf, 2, 3))) static void s_printf(struct scr *s, const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    cli_vformat(buf, sizeof buf, fmt, ap);
    va_end(ap);
    s_put(s, buf);
}

static void s_sgr(struct scr *s, const char *code)
{
    if (s->color && code && s->row < s->h) {
        fprintf(s->f, "\033[%sm", code);
        s->sgr = true;
    }
}

static void s_reset(struct scr *s)
{
    if (s->sgr && s->row < s->h) {
        fputs("\033[0m", s->f);
        s->sgr = false;
    }
}

/* Ends a line: clears the rest of it; the last row is never followed by a
 * newline (the screen would scroll). */
static void s_nl(struct scr *s)
{
    if (s->row >= s->h)
        return;
    s_reset(s);
    fputs("\033[K", s->f);
    s->row++;
    s->col = 0;
    if (s->row < s->h)
        fputs("\n", s->f);
}

static void s_pad(struct scr *s, int to)
{
    while (s->col < to && s->col < s->w)
        s_put(s, " ");
}

/* Right-aligned in a field of width w. */
static void s_num(struct scr *s, int w, const char *text, const char *color)
{
    int len = (int)cli_width(text);
    while (len++ < w)
        s_put(s, " ");
    s_sgr(s, color);
    s_put(s, text);
    if (color)
        s_reset(s);
}

static void draw_bar(struct scr *s, const struct view *v, double frac, int width)
{
    const char *color = cli_state_color(v->cur->mem.state);
    if (frac < 0 || isnan(frac))
        frac = 0;
    double cells = fmin(frac, 1.0) * width;
    int full = (int)cells;
    int eighths = (int)((cells - full) * 8);
    static const char *const part[] = {"", "▏", "▎", "▍", "▌", "▋", "▊", "▉"};
    s_put(s, "[");
    s_sgr(s, color);
    int used = 0;
    for (; used < full; used++)
        s_put(s, v->utf8 ? "█" : "#");
    if (used < width && eighths > 0 && v->utf8) {
        s_put(s, part[eighths]);
        used++;
    }
    s_reset(s);
    s_sgr(s, "90");
    for (; used < width; used++)
        s_put(s, v->utf8 ? "░" : ".");
    s_reset(s);
    s_put(s, "]");
}

struct dest_order {
    unsigned i;
    double r;
    uint64_t calls;
};

static int by_activity(const void *a, const void *b)
{
    const struct dest_order *x = a, *y = b;
    double rx = isnan(x->r) ? -1 : x->r, ry = isnan(y->r) ? -1 : y->r;
    if (rx != ry)
        return rx < ry ? 1 : -1;
    if (x->calls != y->calls)
        return x->calls < y->calls ? 1 : -1;
    return (x->i > y->i) - (x->i < y->i);
}

static void draw(struct view *v, bool stalled)
{
    const struct reshim_snapshot *s = v->cur;
    char *out = NULL;
    size_t outlen = 0;
    FILE *f = open_memstream(&out, &outlen);
    if (!f)
        return;
    struct scr sc = {f, v->w, v->h - 1 /* the last row: the footer */, 0, 0, v->color, false};
    struct scr *S = &sc;
    char a[32], b[32], c[32], when[16];
    time_t now = time(NULL);
    struct tm tm;
    localtime_r(&now, &tm);
    strftime(when, sizeof when, "%H:%M:%S", &tm);

    fputs("\033[H", f);
    /* header */
    s_sgr(S, "1");
    s_printf(S, " reshim watch");
    s_reset(S);
    s_printf(S, "  pid %d  %s  up %s  every %gs", s->pid ? s->pid : v->pid,
             s->comm[0] ? s->comm : "?", cli_duration(s->uptime_s, a, sizeof a), v->interval_s);
    int right = v->w - (int)strlen(when) - 1;
    if (S->col + 2 <= right) {
        s_pad(S, right);
        s_put(S, when);
    }
    s_nl(S);
    s_nl(S);

    /* memory */
    const struct snap_mem *m = &s->mem;
    double frac = usage_frac(s);
    const char *state = m->state[0] ? m->state : "?";
    s_sgr(S, "1");
    s_put(S, " memory   ");
    s_reset(S);
    if (!isnan(frac)) {
        int bw = v->w - 11 - 2 - 38;
        if (bw > 60)
            bw = 60;
        if (bw < 10)
            bw = 10;
        draw_bar(S, v, frac, bw);
        uint64_t u = m->usage_bytes ? m->usage_bytes : m->rss_bytes;
        s_printf(S, " %5.1f%%  %s / %s  ", 100 * frac, cli_bytes(u, a, sizeof a),
                 cli_bytes(m->budget_bytes, b, sizeof b));
    } else {
        s_printf(S, "rss %s, no budget  ", cli_bytes(m->rss_bytes, a, sizeof a));
    }
    s_sgr(S, cli_state_color(state));
    s_sgr(S, "1");
    s_put(S, state);
    s_reset(S);
    s_nl(S);
    char hl[32];
    if (m->heap_live_bytes < 0)
        snprintf(hl, sizeof hl, "-%s", cli_bytes((unsigned long long)-m->heap_live_bytes, a, sizeof a));
    else
        cli_bytes((unsigned long long)m->heap_live_bytes, hl, sizeof hl);
    s_printf(S, "          rss %s (peak %s)   heap live %s (peak %s)",
             cli_bytes(m->rss_bytes, a, sizeof a), cli_bytes(m->rss_peak_bytes, b, sizeof b), hl,
             cli_bytes(m->heap_peak_bytes, c, sizeof c));
    s_nl(S);
    s_printf(S, "          mmap %s (peak %s)   ", cli_bytes(m->mmap_anon_bytes, a, sizeof a),
             cli_bytes(m->mmap_anon_peak_bytes, b, sizeof b));
    if (m->budget_bytes)
        s_printf(S, "budget from %s, ", m->budget_source[0] ? m->budget_source : "?");
    s_printf(S, "policy %s", m->policy[0] ? m->policy : "?");
    s_nl(S);
    s_printf(S, "          trims %llu (%s released)   ", (unsigned long long)m->trims,
             cli_bytes(m->trimmed_bytes, a, sizeof a));
    s_sgr(S, m->enomem ? "31" : NULL);
    s_printf(S, "allocations denied (ENOMEM) %llu", (unsigned long long)m->enomem);
    s_reset(S);
    s_nl(S);
    s_nl(S);

    /* network */
    s_sgr(S, "1");
    s_put(S, " network");
    s_reset(S);
    s_pad(S, 10);
    static const char *const cols[] = {"calls/s", "retries/s", "calls", "failures", "retries",
                                       "recovered", "gave up"};
    static const int cw[] = {9, 11, 10, 10, 10, 11, 9};
    s_sgr(S, "2");
    for (int k = 0; k < 7; k++)
        s_num(S, cw[k], cols[k], NULL);
    s_reset(S);
    s_nl(S);
    for (int k = 0; k < SNAP_CLASSES; k++) {
        const struct snap_calls *n = &s->net[k];
        const struct snap_calls *p = v->prev ? &v->prev->net[k] : NULL;
        double cr = p ? rate(v, n->calls, p->calls) : NAN;
        double rr = p ? rate(v, n->retries, p->retries) : NAN;
        s_printf(S, " %s", snap_class_names[k]);
        s_pad(S, 10);
        s_num(S, cw[0], fmt_rate(cr, a, sizeof a), NULL);
        s_num(S, cw[1], fmt_rate(rr, a, sizeof a), rr > 0 ? "33" : NULL);
        snprintf(a, sizeof a, "%llu", (unsigned long long)n->calls);
        s_num(S, cw[2], a, NULL);
        snprintf(a, sizeof a, "%llu", (unsigned long long)n->failures);
        s_num(S, cw[3], a, NULL);
        snprintf(a, sizeof a, "%llu", (unsigned long long)n->retries);
        s_num(S, cw[4], a, NULL);
        snprintf(a, sizeof a, "%llu", (unsigned long long)n->recovered);
        s_num(S, cw[5], a, n->recovered ? "32" : NULL);
        snprintf(a, sizeof a, "%llu", (unsigned long long)n->gave_up);
        s_num(S, cw[6], a, n->gave_up ? "31" : NULL);
        s_nl(S);
    }
    s_printf(S, "          recovered ");
    s_sgr(S, total(s, 2) ? "32" : NULL);
    s_printf(S, "%llu", (unsigned long long)total(s, 2));
    s_reset(S);
    s_printf(S, "   gave up ");
    s_sgr(S, total(s, 3) ? "31" : NULL);
    s_printf(S, "%llu", (unsigned long long)total(s, 3));
    s_reset(S);
    if (s->dns_stale)
        s_printf(S, "   stale DNS answers %llu", (unsigned long long)s->dns_stale);
    s_nl(S);
    if (snap_replays_total(&s->replay) || s->replay_held_bytes) {
        char rb[32];
        s_printf(S, "          replays %llu (recovered %llu, gave up %llu)   kept for replay %s",
                 (unsigned long long)snap_replays_total(&s->replay),
                 (unsigned long long)s->replay.recovered, (unsigned long long)s->replay.gave_up,
                 cli_bytes(s->replay_held_bytes, rb, sizeof rb));
        s_nl(S);
    }
    s_nl(S);

    /* destinations, busiest first */
    unsigned nd = s->ndest < SNAP_DESTS ? s->ndest : SNAP_DESTS;
    s_sgr(S, "1");
    s_printf(S, " destinations");
    s_reset(S);
    s_printf(S, " (%u)", nd);
    s_nl(S);
    if (nd) {
        struct dest_order *ord = calloc(nd, sizeof *ord);
        int dw = 24;
        for (unsigned i = 0; i < nd; i++) {
            int len = (int)cli_width(s->dest[i].dest) + 4;
            if (len > dw)
                dw = len;
        }
        if (dw > v->w - 60)
            dw = v->w - 60 > 16 ? v->w - 60 : 16;
        s_sgr(S, "2");
        s_put(S, " DEST");
        s_pad(S, 1 + dw);
        s_num(S, 9, "calls/s", NULL);
        s_num(S, 9, "retries", NULL);
        s_num(S, 11, "recovered", NULL);
        s_put(S, "  last error     breaker");
        s_reset(S);
        s_nl(S);
        if (ord) {
            for (unsigned i = 0; i < nd; i++) {
                ord[i].i = i;
                ord[i].r = dest_rate(v, i);
                ord[i].calls = s->dest[i].connect.calls + s->dest[i].sends + s->dest[i].recvs;
            }
            qsort(ord, nd, sizeof *ord, by_activity);
            int room = S->h - S->row;
            for (unsigned k = 0; k < nd; k++) {
                if (room <= 1 && k + 1 < nd) {
                    s_printf(S, " ... and %u more", nd - k);
                    s_nl(S);
                    break;
                }
                const struct snap_dest *x = &s->dest[ord[k].i];
                char name[SNAP_DEST_MAX + 8];
                snprintf(name, sizeof name, "%s%s", x->dest, strcmp(x->dir, "in") == 0 ? " (in)" : "");
                s_put(S, " ");
                int start = S->col;
                /* cut long names so the numbers keep their place */
                if ((int)cli_width(name) > dw - 1)
                    name[dw - 1 > 0 ? dw - 1 : 0] = 0;
                s_printf(S, "%s", name);
                s_pad(S, start + dw);
                s_num(S, 9, fmt_rate(ord[k].r, a, sizeof a), NULL);
                snprintf(a, sizeof a, "%llu", (unsigned long long)x->connect.retries);
                s_num(S, 9, a, x->connect.retries ? "33" : NULL);
                snprintf(a, sizeof a, "%llu", (unsigned long long)x->connect.recovered);
                s_num(S, 11, a, x->connect.recovered ? "32" : NULL);
                s_put(S, "  ");
                int le = S->col;
                s_printf(S, "%s", x->last_error[0] ? x->last_error : "-");
                s_pad(S, le + 15);
                s_sgr(S, cli_state_color(x->breaker));
                s_printf(S, "%s", x->breaker[0] ? x->breaker : "-");
                s_reset(S);
                s_nl(S);
                room--;
            }
            free(ord);
        }
    }
    /* the rest of the screen, then the footer on the last row */
    s_reset(S);
    fputs("\033[J", f);
    fprintf(f, "\033[%d;1H", v->h);
    struct scr ft = {f, v->w, 1, 0, 0, v->color, false};
    s_sgr(&ft, "7");
    s_printf(&ft, " q quit   frame %lu", v->frames);
    if (stalled)
        s_printf(&ft, "   no frame for %.0f s: the process may be stopped or busy",
                 cli_mono_s() - v->last_frame_mono);
    s_pad(&ft, v->w);
    s_reset(&ft);
    fclose(f);
    if (out)
        term_write(out);
    free(out);
}

static void term_size(struct view *v)
{
    struct winsize ws;
    v->w = 80;
    v->h = 24;
    if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0 && ws.ws_row > 0) {
        v->w = ws.ws_col;
        v->h = ws.ws_row;
    }
    if (v->w > 512)
        v->w = 512;
    if (v->h < 3)
        v->h = 3;
}

/* ---- the command ------------------------------------------------------------ */

static const char *env_get(void *ctx, const char *name)
{
    (void)ctx;
    return getenv(name);
}

/* "0.5", "2", "250ms", "1min" -> seconds; -1 when bad or out of 10ms..1h. */
static double parse_interval(const char *s)
{
    char *end;
    double v = strtod(s, &end);
    if (end != s && *end == 0 && v == v) {
        /* a bare number: seconds */
    } else {
        uint64_t ns;
        if (reshim_parse_duration(s, &ns))
            return -1;
        v = (double)ns / 1e9;
    }
    if (!(v >= 0.01 - 1e-9) || v > 3600)
        return -1;
    return v;
}

static bool pid_dead(int pid)
{
    char path[64], st[512];
    if (kill(pid, 0) != 0 && errno == ESRCH)
        return true;
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    FILE *f = fopen(path, "re");
    if (!f)
        return false;
    size_t n = fread(st, 1, sizeof st - 1, f);
    fclose(f);
    st[n] = 0;
    const char *rp = strrchr(st, ')');
    return rp && rp[1] == ' ' && (rp[2] == 'Z' || rp[2] == 'X');
}

/* The stream ended: the process is exiting (wait up to 3 s for it to be
 * gone: -1), or the connection broke while it lives (after a suspend of
 * ours longer than the server's 10 s, say): a new stream (its fd), or -2
 * when none can be had in that time. */
static int stream_ended(int pid, const char *req)
{
    for (int i = 0; i < 30; i++) {
        if (pid_dead(pid))
            return -1;
        struct proc_ref p;
        if (i >= 2 && procs_find(pid, &p) == 0) {
            int fd = proc_open_stream(&p, req);
            if (fd >= 0)
                return fd;
        }
        usleep(100000);
    }
    return pid_dead(pid) ? -1 : -2;
}

int cmd_watch(int argc, char **argv)
{
    int pid = 0;
    double interval = -1;
    long count = -1;
    bool json = false;
    static const struct option longopts[] = {
        {"interval", required_argument, NULL, 'n'},
        {"count", required_argument, NULL, 'c'},
        {"json", no_argument, NULL, 'j'},
        {NULL, 0, NULL, 0},
    };
    for (int c; (c = cli_getopt(argc, argv, "n:c:", longopts)) != -1;) {
        char *end;
        if (c == 'n' && (interval = parse_interval(optarg)) < 0)
            return cli_usage_error("watch", "-n needs a number of seconds from 0.01 to 3600 "
                                            "(or a duration such as 250ms)");
        else if (c == 'c' && ((count = strtol(optarg, &end, 10)) <= 0 || *end))
            return cli_usage_error("watch", "--count needs a whole number above 0");
        else if (c == 'j')
            json = true;
        else if (c != 'n' && c != 'c')
            return EXIT_USAGE;
    }
    if (cli_one_pid(argc, argv, &pid) != EXIT_OK)
        return EXIT_USAGE;
    if (interval < 0) {
        struct reshim_config cfg;
        reshim_config_load(&cfg, env_get, NULL, NULL, NULL, (unsigned)getuid());
        interval = (double)cfg.interval_ns / 1e9;
    }
    struct proc_ref p;
    if (procs_find_or_explain(pid, &p) != EXIT_OK)
        return EXIT_NOPROC;
    char req[48];
    long ms = lround(interval * 1000);
    snprintf(req, sizeof req, "watch %ld", ms < 10 ? 10 : ms);
    int fd = proc_open_stream(&p, req);
    if (fd < 0)
        return EXIT_FAIL;

    struct view v = {.pid = pid, .interval_s = interval};
    v.cur = malloc(sizeof *v.cur);
    struct reshim_snapshot *spare = malloc(sizeof *spare);
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap);
    if (!v.cur || !spare || !buf) {
        cli_err("out of memory");
        free(v.cur), free(spare), free(buf);
        close(fd);
        return EXIT_FAIL;
    }
    bool tty = !json && isatty(STDOUT_FILENO);
    if (tty) {
        setlocale(LC_CTYPE, "");
        const char *cs = nl_langinfo(CODESET);
        v.utf8 = cs && (strcasecmp(cs, "UTF-8") == 0 || strcasecmp(cs, "utf8") == 0);
        v.color = sgr_on = cli_color(stdout);
        term_size(&v);
        install(SIGINT, on_signal);
        install(SIGTERM, on_signal);
        install(SIGHUP, on_signal);
        install(SIGQUIT, on_signal);
        install(SIGWINCH, on_signal);
        install(SIGTSTP, on_signal);
        signal(SIGPIPE, SIG_IGN);
        atexit(term_restore);
        term_setup();
    }

    int rc = EXIT_OK;
    char comm[SNAP_COMM_MAX] = "";
    enum { RUNNING, QUIT, ENDED, BROKEN, FAILED } how = RUNNING;
    char *errmsg = NULL;
    int reconnects = 0;
    bool stall_said = false;
    v.last_frame_mono = cli_mono_s();
    while (how == RUNNING) {
        if (sig_quit) {
            how = QUIT;
            break;
        }
        if (sig_tstp) { /* Ctrl-Z: give the terminal back, stop, take it again */
            sig_tstp = 0;
            term_restore();
            signal(SIGTSTP, SIG_DFL);
            raise(SIGTSTP);
            install(SIGTSTP, on_signal);
            term_setup();
            sig_winch = 1;
        }
        if (sig_winch) {
            sig_winch = 0;
            term_size(&v);
            if (v.frames)
                draw(&v, false);
        }
        struct pollfd pf[2] = {{fd, POLLIN, 0}, {STDIN_FILENO, POLLIN, 0}};
        int npf = raw_on ? 2 : 1;
        int stall_ms = (int)fmin(3 * interval * 1000 + 1000, 600000);
        int r = poll(pf, (nfds_t)npf, stall_ms);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            errmsg = strdup(strerror(errno));
            how = FAILED;
            break;
        }
        if (r == 0) { /* no frame for a while: say so (once off a terminal), keep waiting */
            if (tty && v.frames) {
                draw(&v, true);
            } else if (!tty && !stall_said) {
                cli_err("process %d: no frame for %.0f s (stopped or busy?); still waiting", pid,
                        cli_mono_s() - v.last_frame_mono);
                stall_said = true;
            }
            continue;
        }
        if (npf == 2 && (pf[1].revents & POLLIN)) {
            char keys[64];
            ssize_t k = read(STDIN_FILENO, keys, sizeof keys);
            for (ssize_t i = 0; i < k; i++) {
                if (keys[i] == 'q' || keys[i] == 'Q' || keys[i] == 3 /* ^C */)
                    how = QUIT;
                else if (keys[i] == 12 /* ^L */ || keys[i] == 'r') {
                    term_write("\033[2J");
                    if (v.frames)
                        draw(&v, false);
                }
            }
            if (how != RUNNING)
                break;
        }
        if (!(pf[0].revents & (POLLIN | POLLHUP | POLLERR)))
            continue;
        if (len + 65536 + 1 > cap) {
            size_t nc = cap * 2;
            char *nb = nc <= (64u << 20) ? realloc(buf, nc) : NULL;
            if (!nb) {
                errmsg = strdup("a frame larger than 64 MB");
                how = FAILED;
                break;
            }
            buf = nb;
            cap = nc;
        }
        ssize_t got = recv(fd, buf + len, cap - len - 1, 0);
        if (got < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (got <= 0) {
            close(fd);
            fd = reconnects < 3 ? stream_ended(pid, req) : pid_dead(pid) ? -1 : -2;
            if (fd >= 0) { /* a new stream: rates restart from its first frame */
                reconnects++;
                len = 0;
                free(v.prev);
                v.prev = NULL;
                continue;
            }
            how = fd == -1 ? ENDED : BROKEN;
            break;
        }
        len += (size_t)got;
        /* every complete line is a frame; only the newest is drawn */
        char *start = buf, *nl;
        while (how == RUNNING && (nl = memchr(start, '\n', (size_t)(buf + len - start)))) {
            size_t llen = (size_t)(nl - start);
            char *e = proc_answer_error(start, llen);
            if (e) {
                errmsg = e;
                how = FAILED;
                break;
            }
            if (json) {
                fwrite(start, 1, llen + 1, stdout);
                fflush(stdout);
            }
            const char *why = NULL;
            if (snap_parse_json(start, llen, spare, &why) != 0) {
                if (asprintf(&errmsg, "a frame that is not a stats object (%s)", why) < 0)
                    errmsg = NULL;
                how = FAILED;
                break;
            }
            cli_sanitize_snapshot(spare);
            /* rotate: prev <- cur <- spare */
            struct reshim_snapshot *recycled = v.cur;
            if (v.frames) {
                recycled = v.prev;
                v.prev = v.cur;
                v.prev_t = v.cur_t;
            }
            v.cur = spare;
            spare = recycled ? recycled : malloc(sizeof *spare);
            v.cur_t = v.cur->time_s > 0 ? v.cur->time_s : cli_mono_s();
            v.frames++;
            reconnects = 0;
            stall_said = false;
            v.last_frame_mono = cli_mono_s();
            snprintf(comm, sizeof comm, "%s", v.cur->comm);
            if (!spare) {
                errmsg = strdup("out of memory");
                how = FAILED;
                break;
            }
            if (!json && !tty)
                plain_line(&v);
            if (count > 0 && (long)v.frames >= count)
                how = QUIT;
            start = nl + 1;
        }
        if (tty && v.frames && how != FAILED)
            draw(&v, false);
        memmove(buf, start, (size_t)(buf + len - start));
        len = (size_t)(buf + len - start);
    }
    if (fd >= 0)
        close(fd);
    if (tty)
        term_restore();
    switch (how) {
    case RUNNING:
    case QUIT:
        rc = EXIT_OK;
        break;
    case ENDED:
        cli_err("process %d%s%s%s exited", pid, comm[0] ? " (" : "", comm, comm[0] ? ")" : "");
        rc = v.frames ? EXIT_OK : EXIT_NOPROC;
        break;
    case BROKEN:
        cli_err("process %d closed the stats connection", pid);
        rc = EXIT_FAIL;
        break;
    case FAILED:
        cli_err("process %d: %s", pid, errmsg ? errmsg : "failed");
        rc = EXIT_FAIL;
        break;
    }
    free(errmsg);
    free(buf);
    free(v.cur);
    free(v.prev);
    free(spare);
    return rc;
}
