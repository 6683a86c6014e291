/* main.c: the reshim CLI's entry point: global options, dispatch to one
 * function per command, every help text (`reshim --help`, `reshim COMMAND
 * --help`), and the helpers the commands share: output (colour, sizes,
 * durations, messages), the clock, the stop signals of collect and serve.
 * Data goes to stdout, messages to stderr prefixed "reshim: "; exit codes
 * are those of cli.h. */
#define _GNU_SOURCE
#include "cli.h"

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "reshim.h"

int cli_timeout_ms = CLI_TIMEOUT_MS;

/* ---- help ---------------------------------------------------------------- */

struct command {
    const char *name;
    int (*fn)(int, char **);
    const char *summary;
    const char *help;      /* NULL: the command prints its own (doctor, collect, serve) */
};

static const struct command commands[] = {
    {"ls", cmd_ls, "the shimmed processes of this user, one row each",
     "usage: reshim ls [--json | -q]\n"
     "\n"
     "One row per live process of this user with the shim (its stats socket in the\n"
     "run directory, or an abstract socket @reshim-<uid>/<pid>): PID, COMMAND,\n"
     "UPTIME (since the shim started in it), RSS / BUDGET and MEM % (the resident\n"
     "memory the shim counts against the budget: anonymous and shared pages, or the\n"
     "container's working set when the budget comes from the cgroup and that is\n"
     "larger), STATE (ok, warn, critical, over), RETRIES and RECOVERED (all classes\n"
     "of calls: connect, dns, send, recv). `reshim stats PID` splits RSS up.\n"
     "Sockets left by processes that are gone are removed. A process that does not\n"
     "answer within the timeout is left out, with a message (the exit status is\n"
     "still 0). With no process: a message on stderr, exit 0; the header is printed\n"
     "only on a terminal, so a pipe gets nothing (and --json gets []).\n"
     "\n"
     "options:\n"
     "  --json   a JSON array, one object per row: pid, comm, uptime_s, rss_bytes,\n"
     "           budget_bytes, usage_bytes, mem_percent, state, retries,\n"
     "           recovered, gave_up\n"
     "  -q       the pids only, one a line\n"
     "\n"
     "examples:\n"
     "  reshim ls\n"
     "  reshim ls --json | jq '.[] | select(.state != \"ok\") | .pid'\n"
     "  for p in $(reshim ls -q); do reshim trim $p; done\n"},
    {"stats", cmd_stats, "one process's figures: network, destinations, memory",
     "usage: reshim stats PID [--json]\n"
     "\n"
     "The figures of one shimmed process: calls, failures, retries, recovered and\n"
     "gave-up calls per class (connect, dns, send, recv), the per-destination table\n"
     "(with the last error and the breaker's state), and memory (RSS, heap, budget,\n"
     "state, trims). Sizes are 1024-based (1 MB = 1 MiB), as in RESHIM_MEM_BUDGET.\n"
     "\n"
     "options:\n"
     "  --json   the process's own JSON line, as it sent it (keys in libreshim(7))\n"
     "\n"
     "examples:\n"
     "  reshim stats 4242\n"
     "  reshim stats 4242 --json | jq .mem.rss_bytes\n"},
    {"watch", cmd_watch, "a live view of one process",
     "usage: reshim watch PID [-n SECONDS] [--count N] [--json]\n"
     "\n"
     "On a terminal, a full-screen view redrawn every interval: the RSS the shim\n"
     "counts against the budget as a bar (green ok, yellow warn, red critical or\n"
     "over), total RSS, heap live and peak, call and retry rates per class (per\n"
     "second, from consecutive frames), recovered and gave-up totals, and the\n"
     "per-destination table, busiest first (calls/s, retries, recovered, last\n"
     "error, breaker). Keys: q quits (Ctrl-C too), r redraws; the terminal is\n"
     "restored on every way out (q, Ctrl-C, SIGTERM, SIGHUP, the process ending).\n"
     "Not on a terminal: one plain line per frame (key=value, bytes as integers,\n"
     "rates per second, '-' on the first frame), no escape sequences.\n"
     "When the process exits while being watched: a message, exit 0. A process\n"
     "that cannot be watched: exit 3. A connection that breaks while the process\n"
     "lives is made again; when it cannot be: exit 1.\n"
     "\n"
     "options:\n"
     "  -n SECONDS   the interval: 0.5, 2, or a duration such as 250ms (10ms to\n"
     "               1h; default RESHIM_INTERVAL, else 1s)\n"
     "  --count N    stop after N frames\n"
     "  --json       print the process's JSON frames as they come, one a line\n"
     "\n"
     "examples:\n"
     "  reshim watch 4242\n"
     "  reshim watch 4242 -n 0.2\n"
     "  reshim watch 4242 -n 5s > watch.log\n"},
    {"metrics", cmd_metrics, "Prometheus text for the named processes, or all",
     "usage: reshim metrics [PID...]\n"
     "\n"
     "Prometheus text exposition (0.0.4) of the named processes, or of every\n"
     "shimmed process of this user: each metric family once, one sample per\n"
     "process, labelled pid and comm. A named process that cannot be found: a\n"
     "message, the others are still printed, exit 3 (1 when one does not answer).\n"
     "With no process at all: empty output, exit 0.\n"
     "\n"
     "examples:\n"
     "  reshim metrics\n"
     "  reshim metrics 4242 4243 | promtool check metrics\n"
     "  d=/var/lib/prometheus/node-exporter\n"
     "  reshim metrics > $d/reshim.prom.tmp && mv $d/reshim.prom.tmp $d/reshim.prom\n"},
    {"trim", cmd_trim, "return free heap to the OS now",
     "usage: reshim trim PID [--json]\n"
     "\n"
     "Asks the process to return its free heap to the OS now (malloc_trim, or an\n"
     "arena purge under jemalloc) and prints the RSS it released. The process\n"
     "refuses when it trimmed less than a second ago, or when its allocator offers\n"
     "no trim: its reason is printed, exit 1.\n"
     "\n"
     "options:\n"
     "  --json   the process's JSON answer: trimmed_bytes, rss_before_bytes,\n"
     "           rss_after_bytes, ms\n"
     "\n"
     "examples:\n"
     "  reshim trim 4242\n"},
    {"heap", cmd_heap, "the top sampled allocation sites",
     "usage: reshim heap PID [--top N] [--by site|python] [--json]\n"
     "\n"
     "The top N allocation sites by estimated live bytes, +- one standard\n"
     "deviation of the sampling, from the process's sampled allocation stacks\n"
     "(RESHIM_HEAP_SAMPLE). In a CPython process, the Python frames (function,\n"
     "file:line) come first; native frames get their file:line from the\n"
     "programs' DWARF when elfutils' libdw.so.1 is installed. A process whose\n"
     "shim does not sample says so: the message is printed, exit 1.\n"
     "\n"
     "options:\n"
     "  --top N        how many sites (1 to 1000, default 20)\n"
     "  --by python    one row per innermost Python line (the sites behind it summed)\n"
     "  --json         the process's JSON answer (with --by python: the groups)\n"
     "\n"
     "examples:\n"
     "  reshim heap 4242 --top 5\n"
     "  reshim heap 4242 --by python\n"},
    {"run", cmd_run, "run a program with the shim preloaded",
     "usage: reshim run [--budget SIZE] [--retries N] [--log LEVEL] [--policy P]\n"
     "                  [--] CMD [ARGS...]\n"
     "\n"
     "Runs CMD (looked up in PATH) in this process (exec: same PID, same signals)\n"
     "with libreshim.so put first in LD_PRELOAD by its absolute path (what is there\n"
     "is kept; the library is never added twice): RESHIM_LIBRARY if set, else\n"
     "../lib/reshim/libreshim.so from this binary (installed), else libreshim.so\n"
     "beside it (build/). The options set RESHIM_MEM_BUDGET, RESHIM_RETRIES,\n"
     "RESHIM_LOG and RESHIM_MEM_POLICY.\n"
     "Every RESHIM_ variable (the options and the environment) is checked first:\n"
     "a bad value is named and nothing runs (exit 2). When CMD cannot be preloaded\n"
     "(static: no ELF interpreter; setuid or setgid; file capabilities) a warning\n"
     "says so and CMD runs without the shim. A musl program gets the musl build\n"
     "beside the library (DIR/musl/libreshim.so); without it, it runs without the\n"
     "library in LD_PRELOAD (the glibc build would stop it).\n"
     "`reshim doctor CMD` tells more.\n"
     "Exit status: CMD's own; 127 when CMD is not found, 126 when it cannot be\n"
     "executed, 1 when the library is not found, 2 on a bad option or value.\n"
     "\n"
     "options:\n"
     "  --budget SIZE   the memory budget: 300M, 1G, 90% (of the container's\n"
     "                  limit), auto or off\n"
     "  --retries N     retries after a failed first attempt (0 to 100; 0: off)\n"
     "  --log LEVEL     error, warn, info or debug\n"
     "  --policy P      past the budget: warn, trim or enforce\n"
     "\n"
     "examples:\n"
     "  reshim run -- python3 app.py\n"
     "  reshim run --budget 300M --policy enforce -- ./worker --threads 4\n"
     "  Dockerfile: ENTRYPOINT [\"reshim\", \"run\", \"--\"]\n"},
    {"config", cmd_config, "validate the environment; or show a process's settings",
     "usage: reshim config [--check] [--json]\n"
     "       reshim config PID [--json]\n"
     "\n"
     "Without PID: every RESHIM_ variable of this environment as the shim would\n"
     "read it, with its effective value and its source (default, env, or invalid:\n"
     "set but bad, so the default is used). With --check a bad value is an error:\n"
     "each is named on stderr with the value given and the form expected, and the\n"
     "exit status is 2 (0 when every value is good).\n"
     "With PID: the settings that running process uses, as it reports them.\n"
     "\n"
     "options:\n"
     "  --check   exit 2 on any bad value\n"
     "  --json    one JSON object, each variable as\n"
     "            {\"value\":\"...\",\"source\":\"default|env|invalid\"[,\"given\":\"...\"]}\n"
     "\n"
     "examples:\n"
     "  reshim config --check\n"
     "  RESHIM_MEM_BUDGET=300M reshim config --check\n"
     "  reshim config 4242\n"},
    {"doctor", cmd_doctor, "can CMD be preloaded? C library, static, setuid, config errors", NULL},
    {"collect", cmd_collect, "receive the stats datagrams pushed by RESHIM_PUSH", NULL},
    {"serve", cmd_serve, "serve the metrics over HTTP for Prometheus", NULL},
};
#define NCOMMANDS (sizeof commands / sizeof commands[0])

static const struct command *find_command(const char *name)
{
    for (size_t i = 0; i < NCOMMANDS; i++)
        if (strcmp(commands[i].name, name) == 0)
            return &commands[i];
    return NULL;
}

static void main_usage(FILE *f)
{
    fprintf(f,
            "reshim %s: look at the programs running with libreshim.so (which retries\n"
            "transient network failures and accounts memory against a budget), and run\n"
            "programs with it.\n"
            "\n"
            "usage: reshim [--timeout SECONDS] COMMAND [ARGS...]\n"
            "\n"
            "commands:\n",
            RESHIM_VERSION);
    for (size_t i = 0; i < NCOMMANDS; i++)
        fprintf(f, "  %-9s %s\n", commands[i].name, commands[i].summary);
    fprintf(f,
            "  help      help of one command (also: reshim COMMAND --help)\n"
            "\n"
            "options:\n"
            "  -h, --help          this help\n"
            "  --version           the version\n"
            "  --timeout SECONDS   the longest wait for one process's answer (default 2)\n"
            "\n"
            "exit codes: 0 ok, 1 failure, 2 usage or bad configuration, 3 no such process\n"
            "or no shim in it.\n"
            "\n"
            "environment: RESHIM_RUN_DIR (where the stats sockets are; default\n"
            "$XDG_RUNTIME_DIR/reshim, else /tmp/reshim-$UID), RESHIM_INTERVAL (watch's\n"
            "interval), NO_COLOR (set and not empty: no colour; colour is only ever used on\n"
            "a terminal).\n"
            "\n"
            "examples:\n"
            "  reshim run --budget 300M -- python3 app.py\n"
            "  reshim ls\n"
            "  reshim stats 4242\n"
            "  reshim watch 4242\n"
            "  reshim metrics | promtool check metrics\n"
            "  reshim config --check\n");
}

int cli_usage(const char *cmd, FILE *f)
{
    const struct command *c = find_command(cmd);
    if (!c || !c->help)
        return -1;
    fputs(c->help, f);
    return 0;
}

bool cli_wants_help(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0)
            return false;
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0)
            return true;
    }
    return false;
}

int cli_getopt(int argc, char **argv, const char *shortopts, const struct option *longopts)
{
    /* getopt_long with its messages off (opterr) and ':' first, so that a
     * missing value is told from an unknown option; '+' (stop at the first
     * operand) stays in front when the command asks for it. */
    char spec[64];
    bool stop = shortopts[0] == '+';
    snprintf(spec, sizeof spec, "%s:%s", stop ? "+" : "", shortopts + stop);
    opterr = 0;
    int prev = optind;
    int c = getopt_long(argc, argv, spec, longopts, NULL);
    if (c == '?' || c == ':') {
        /* The word that failed: a long option as given, else the letter
         * (optind stays put inside a cluster such as -jx). */
        const char *last = optind > prev && optind - 1 < argc ? argv[optind - 1] : "";
        char word[80];
        if (strncmp(last, "--", 2) == 0)
            snprintf(word, sizeof word, "%.*s", (int)strcspn(last, "="), last);
        else
            snprintf(word, sizeof word, "-%c", optopt ? optopt : '?');
        if (c == ':')
            cli_usage_error(argv[0], "%s needs a value", word);
        else if (word[1] == '-' && strchr(last, '='))
            cli_usage_error(argv[0], "%s takes no value", word);
        else
            cli_usage_error(argv[0], "unknown option '%s'", word);
        return '?';
    }
    return c;
}

int cli_pid_json_command(int argc, char **argv, const char *request, int timeout_ms,
                         const char *refused, int (*human)(int pid, const char *ans, size_t len))
{
    static const struct option longopts[] = {
        {"json", no_argument, NULL, 'j'},
        {NULL, 0, NULL, 0},
    };
    bool json = false;
    for (int c; (c = cli_getopt(argc, argv, "", longopts)) != -1;) {
        if (c != 'j')
            return EXIT_USAGE;
        json = true;
    }
    int pid;
    if (cli_one_pid(argc, argv, &pid) != EXIT_OK)
        return EXIT_USAGE;
    char *ans;
    size_t len;
    int rc = cli_ask(pid, request, timeout_ms, refused, &ans, &len);
    if (rc != EXIT_OK)
        return rc;
    if (json)
        cli_print_raw(ans, len);
    else
        rc = human(pid, ans, len);
    free(ans);
    return rc;
}

int cli_one_pid(int argc, char **argv, int *pid)
{
    if (optind >= argc)
        return cli_usage_error(argv[0], "which process? (a PID; reshim ls lists them)");
    if (optind + 1 < argc)
        return cli_usage_error(argv[0], "unexpected argument '%s'", argv[optind + 1]);
    if ((*pid = cli_parse_pid(argv[optind])) < 0)
        return cli_usage_error(argv[0], "'%s' is not a process id", argv[optind]);
    return EXIT_OK;
}

/* ---- messages ------------------------------------------------------------ */

void cli_vformat(char *buf, size_t n, const char *fmt, va_list ap)
{
    vsnprintf(buf, n, fmt, ap);
    cli_sanitize(buf);
}

void cli_err(const char *fmt, ...)
{
    /* Messages quote what processes answered: sanitized for the terminal. */
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    cli_vformat(buf, sizeof buf, fmt, ap);
    va_end(ap);
    fprintf(stderr, "reshim: %s\n", buf);
}

int cli_usage_error(const char *cmd, const char *fmt, ...)
{
    /* cmd "reshim": the global options, before any command. */
    bool global = strcmp(cmd, "reshim") == 0;
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "reshim: %s%s", global ? "" : cmd, global ? "" : ": ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\nusage: see reshim %s%s--help\n", global ? "" : cmd, global ? "" : " ");
    va_end(ap);
    return EXIT_USAGE;
}

int cli_parse_pid(const char *s)
{
    if (!s || !*s)
        return -1;
    long v = 0;
    for (const char *p = s; *p; p++) {
        if (*p < '0' || *p > '9')
            return -1;
        v = v * 10 + (*p - '0');
        if (v > 0x7fffffff)
            return -1;
    }
    return v > 0 ? (int)v : -1;
}

/* ---- output helpers ------------------------------------------------------ */

bool cli_color(FILE *f)
{
    const char *nc = getenv("NO_COLOR");
    if (nc && *nc)
        return false;
    const char *term = getenv("TERM");
    if (term && strcmp(term, "dumb") == 0)
        return false;
    return isatty(fileno(f));
}

const char *cli_bytes(unsigned long long v, char *buf, size_t n)
{
    static const char *const units[] = {"B", "KB", "MB", "GB", "TB", "PB", "EB"};
    if (v < 1024) {
        snprintf(buf, n, "%llu B", v);
        return buf;
    }
    double d = (double)v;
    int u = 0;
    while (d >= 1024 && u < 6) {
        d /= 1024;
        u++;
    }
    if (d < 99.95) /* one decimal below 100 ("12.3 MB"), none above ("512 KB") */
        snprintf(buf, n, "%.1f %s", d, units[u]);
    else if (d < 1023.5 || u == 6)
        snprintf(buf, n, "%.0f %s", d, units[u]);
    else /* 1023.6 KB rounds to 1024: say 1.0 MB */
        snprintf(buf, n, "1.0 %s", units[u + 1]);
    return buf;
}

const char *cli_duration(double s, char *buf, size_t n)
{
    if (!(s >= 0) || s > 1e12)
        s = 0;
    unsigned long long t = (unsigned long long)s;
    unsigned long long d = t / 86400, h = t / 3600 % 24, m = t / 60 % 60, sec = t % 60;
    if (d)
        snprintf(buf, n, "%llud%lluh", d, h);
    else if (h)
        snprintf(buf, n, "%lluh%02llum", h, m);
    else if (m)
        snprintf(buf, n, "%llum%02llus", m, sec);
    else
        snprintf(buf, n, "%llus", sec);
    return buf;
}

/* ---- the clock and the stop signals --------------------------------------- */

double cli_mono_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

int64_t cli_mono_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

volatile sig_atomic_t cli_stop_signal;

static void on_stop_signal(int sig)
{
    cli_stop_signal = sig;
}

void cli_stop_signals(sigset_t *orig)
{
    sigset_t block;
    sigemptyset(&block);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGTERM);
    sigprocmask(SIG_BLOCK, &block, orig);
    struct sigaction sa = {.sa_handler = on_stop_signal};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
}

/* ---- main ---------------------------------------------------------------- */

static int parse_timeout(const char *s)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !(v > 0) || v > 3600)
        return -1;
    cli_timeout_ms = (int)ceil(v * 1000);
    return 0;
}

int main(int argc, char **argv)
{
#ifndef __GLIBC__
    /* The static CLI (musl): musl's stdout buffers 1 KB off a terminal,
     * glibc's a block (4 KB). The same size keeps stdout's chunks where the
     * glibc CLI has them against stderr (2>&1 reads the same). */
    static char outbuf[4096];
    if (!isatty(STDOUT_FILENO))
        setvbuf(stdout, outbuf, _IOFBF, sizeof outbuf);
#endif
    static const struct option longopts[] = {
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {"timeout", required_argument, NULL, 't'},
        {NULL, 0, NULL, 0},
    };
    argv[0] = (char *)"reshim"; /* the name in usage messages */
    int c;
    while ((c = cli_getopt(argc, argv, "+hV", longopts)) != -1) {
        switch (c) {
        case 'h':
            main_usage(stdout);
            return EXIT_OK;
        case 'V':
            printf("reshim %s\n", RESHIM_VERSION);
            return EXIT_OK;
        case 't':
            if (parse_timeout(optarg) == 0)
                break;
            cli_err("--timeout needs a number of seconds (more than 0, at most 3600)");
            return EXIT_USAGE;
        default:
            return EXIT_USAGE;
        }
    }
    int i = optind;
    if (i >= argc) {
        main_usage(stderr);
        return EXIT_USAGE;
    }
    const char *name = argv[i];
    if (strcmp(name, "help") == 0) {
        if (i + 1 >= argc) {
            main_usage(stdout);
            return EXIT_OK;
        }
        const struct command *hc = find_command(argv[i + 1]);
        if (!hc) {
            cli_err("unknown command '%s' (see reshim --help)", argv[i + 1]);
            return EXIT_USAGE;
        }
        if (hc->help) {
            fputs(hc->help, stdout);
            return EXIT_OK;
        }
        char *hargv[] = {(char *)hc->name, (char *)"--help", NULL};
        optind = 0;
        return hc->fn(2, hargv);
    }
    if (strcmp(name, "version") == 0) {
        printf("reshim %s\n", RESHIM_VERSION);
        return EXIT_OK;
    }
    const struct command *cmd = find_command(name);
    if (!cmd) {
        cli_err("unknown command '%s' (see reshim --help)", name);
        return EXIT_USAGE;
    }
    /* Each command gets its name and the arguments after it, as a program
     * gets its argv, and parses them with cli_getopt from the start (run
     * looks for --help itself: after "--" it belongs to CMD). */
    if (cmd->help && cmd->fn != cmd_run && cli_wants_help(argc - i, argv + i)) {
        fputs(cmd->help, stdout);
        return EXIT_OK;
    }
    optind = 0;
    int rc = cmd->fn(argc - i, argv + i);
    if (fflush(stdout) != 0 && rc == EXIT_OK) {
        if (errno != EPIPE)
            cli_err("writing the output: %s", strerror(errno));
        rc = EXIT_FAIL;
    }
    return rc;
}
