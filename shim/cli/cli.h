/* cli.h: what the files of the reshim CLI share: finding shimmed processes
 * and talking to their stats sockets (procs.c), the commands (one function
 * each, in the file named after it), and output helpers. The CLI is an
 * ordinary program: it may allocate and use stdio, and links the pure
 * modules it shares with the library (snapshot encoders, configuration). */
#ifndef RESHIM_CLI_H
#define RESHIM_CLI_H

#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "snapshot.h"

/* Exit codes (reshim(1), EXIT STATUS). */
#define EXIT_OK 0
#define EXIT_FAIL 1
#define EXIT_USAGE 2   /* usage error or bad configuration */
#define EXIT_NOPROC 3  /* no such process, or no shim in it */

/* ---- discover.c and procs.c: finding processes, and requests ----------- */

struct proc_ref {
    int pid;
    bool abstract;        /* @reshim-<uid>/<pid> */
    unsigned uid;         /* whose socket: ours, or (root) its run dir's owner, its name's uid */
    unsigned gid;         /* the group of its run directory */
    char path[108];       /* socket path (for abstract: the name without the '@') */
};

/* The run directory the shim of this user would use (RESHIM_RUN_DIR or its
 * default, as config.c computes it). */
const char *cli_run_dir(void);

/* Every live shimmed process of this user: <run dir>/<pid>.sock files and
 * abstract @reshim-<uid>/<pid> sockets (/proc/net/unix); for root, of every
 * user (each one's default run directory, abstract names of every uid). A
 * socket whose process is gone (or does not answer a connect) is stale:
 * removed when remove_stale. Sorted by pid; returns how many (at most max),
 * -1 on error. */
int procs_list(struct proc_ref *out, int max, bool remove_stale);

/* "no process ... runs with the shim (sockets in ...)" on stderr. */
void procs_say_none(void);

/* The socket of one pid: 0 found, -1 not (no such process, or no shim). */
int procs_find(int pid, struct proc_ref *out);

/* alive: exists and is not a zombie. */
bool procs_pid_alive(int pid);
/* A connected socket to p (non-blocking once connected), its server checked
 * with SO_PEERCRED (the user, or for another user's socket that user's
 * process of that pid: else errno EPERM); -1 with errno. */
int procs_connect(const struct proc_ref *p, int timeout_ms);

/* One request: connects, sends the line, half-closes, reads to EOF within
 * timeout_ms. *answer is malloc'd and NUL-terminated. Returns 0, or -1 with
 * a message on stderr prefixed "reshim: ". */
int proc_request(const struct proc_ref *p, const char *request, char **answer, size_t *len,
                 int timeout_ms);

/* Connects and sends a request without half-closing (for `watch`): returns
 * the fd, or -1. */
int proc_open_stream(const struct proc_ref *p, const char *request);

/* stats of one process, parsed; 0 or -1 (message on stderr). */
int proc_snapshot(const struct proc_ref *p, struct reshim_snapshot *s, int timeout_ms);

/* Snapshots of the given pids (npids 0: every live process), malloc'd, into
 * snaps (at most max); returns how many were read. Processes that do not
 * answer are skipped with a message on stderr. */
int snapshots_collect(const int *pids, int npids, struct reshim_snapshot **snaps, int max);

/* ---- output helpers (main.c) -------------------------------------------- */

/* Colour on this stream: a terminal and NO_COLOR unset or empty. */
bool cli_color(FILE *f);
/* "12.3 MB", "512 KB", "3 B" into buf. */
const char *cli_bytes(unsigned long long v, char *buf, size_t n);
/* "3d4h", "2h05m", "4m10s", "12s" into buf. */
const char *cli_duration(double s, char *buf, size_t n);

/* ---- the clock, and the loops that run until a signal (main.c) ---------- */

/* CLOCK_MONOTONIC in seconds, and in milliseconds. */
double cli_mono_s(void);
int64_t cli_mono_ms(void);

/* The SIGINT or SIGTERM that asked a loop to stop; 0 until then. */
extern volatile sig_atomic_t cli_stop_signal;
/* For a command that runs until SIGINT or SIGTERM (collect, serve): blocks
 * both (the mask before into *orig: ppoll opens them while it waits, and the
 * command restores it at the end), makes them set cli_stop_signal, and
 * ignores SIGPIPE. */
void cli_stop_signals(sigset_t *orig);

/* ---- symbols.c: file:line of native frames (libdw, opened at run time) --- */

struct cli_syms;
/* The objects mapped by process pid, ready for look-ups; NULL (why in why)
 * when libdw is missing or cannot read them. */
struct cli_syms *syms_open(int pid, char *why, size_t n);
/* "function (file.c:42)" for a return address pc of that process, or
 * "function (module)" without line information; false when nothing is known
 * (the caller keeps the library's own name of the frame). */
bool syms_frame(struct cli_syms *s, unsigned long long pc, char *buf, size_t n);
void syms_close(struct cli_syms *s);

/* ---- commands: each takes the arguments after its name ----------------- */

int cmd_ls(int argc, char **argv);
int cmd_stats(int argc, char **argv);
int cmd_watch(int argc, char **argv);
int cmd_metrics(int argc, char **argv);
int cmd_trim(int argc, char **argv);
int cmd_heap(int argc, char **argv);
int cmd_run(int argc, char **argv);
int cmd_config(int argc, char **argv);
int cmd_doctor(int argc, char **argv);   /* doctor.c */
int cmd_collect(int argc, char **argv);  /* collect.c */
int cmd_serve(int argc, char **argv);    /* serve.c */

/* ---- added by the CLI's commands (main.c, procs.c) ---------------------- */

#define CLI_TIMEOUT_MS 2000      /* default wait for one process's answer */
extern int cli_timeout_ms;       /* reshim --timeout SECONDS; CLI_TIMEOUT_MS otherwise */

/* "reshim: " + the message (cut to 1 KiB, cli_sanitize'd) + "\n" on stderr. */
void cli_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* A message formatted into buf (cut to n bytes) and cli_sanitize'd: safe for
 * the terminal however much of it a process wrote (cli_err, watch's screen). */
void cli_vformat(char *buf, size_t n, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));
/* "reshim: CMD: message" and a pointer to CMD --help on stderr; returns EXIT_USAGE. */
int cli_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Every command gets argc/argv as a program does: argv[0] is its name, the
 * arguments follow. */
/* true when -h or --help is among the arguments (before any "--"). */
bool cli_wants_help(int argc, char **argv);
struct option;
/* The next option of a command (getopt_long: --opt=value and --opt value,
 * -xVALUE and -x VALUE, options and operands in any order unless shortopts
 * starts with '+'). -1 at the end (operands from optind on); '?' after a
 * usage message naming the command (an unknown option, a missing value). */
int cli_getopt(int argc, char **argv, const char *shortopts, const struct option *longopts);
/* The one PID operand left after the options: EXIT_OK with *pid, or
 * EXIT_USAGE after a message (none, more than one, not a PID). */
int cli_one_pid(int argc, char **argv, int *pid);
/* A command that takes PID [--json] (stats, trim): reads its arguments
 * (EXIT_USAGE after a message), asks the process request (cli_ask, with
 * timeout_ms and refused), then prints the answer as it came (--json,
 * EXIT_OK) or by human(pid, answer, its length), whose exit code is returned.
 * Otherwise returns what cli_ask did. */
int cli_pid_json_command(int argc, char **argv, const char *request, int timeout_ms,
                         const char *refused, int (*human)(int pid, const char *ans, size_t len));
/* Prints the help of a command written in main.c; -1 when it has none there. */
int cli_usage(const char *cmd, FILE *f);
/* A PID argument: digits only, > 0; -1 otherwise. */
int cli_parse_pid(const char *s);

/* procs_find, and when it fails a message on stderr saying why (no such
 * process; a process without the shim, or of another user; a stale socket).
 * Returns EXIT_OK or EXIT_NOPROC. */
int procs_find_or_explain(int pid, struct proc_ref *out);

/* The same request to n processes at once, within timeout_ms in all:
 * answers[i] is malloc'd and NUL-terminated (lens[i] its length), or NULL
 * for a process that failed (with a message on stderr). Returns how many
 * answered. */
int proc_request_many(const struct proc_ref *p, int n, const char *request, char **answers,
                      size_t *lens, int timeout_ms);

/* When an answer is {"error":"..."}, the message (malloc'd, cli_sanitize'd); NULL
 * otherwise. */
char *proc_answer_error(const char *answer, size_t len);

/* One request to the process of a command's PID argument: finds it (or says
 * why not: EXIT_NOPROC), asks within timeout_ms (EXIT_FAIL), and turns an
 * {"error":...} answer into the message "process PID: <refused><error>"
 * (EXIT_FAIL; refused is "" or e.g. "trim refused: "). On EXIT_OK *ans is
 * the answer, malloc'd and NUL-terminated. */
int cli_ask(int pid, const char *request, int timeout_ms, const char *refused, char **ans,
            size_t *len);
/* An answer as it came (--json), with a final newline. */
void cli_print_raw(const char *ans, size_t len);

/* A process's command name from /proc/PID/comm into buf ("?" if unknown). */
const char *proc_comm(int pid, char *buf, size_t n);

/* ---- table.c: aligned tables for human output ---------------------------- */

struct cli_table;
/* ncols columns (at most 16) with their headings; align: one 'l' or 'r' per
 * column (NULL: all left). */
struct cli_table *table_new(int ncols, const char *const *head, const char *align);
/* Appends the next cell (rows fill left to right); color is an SGR code such
 * as "31" or NULL; the text is sanitized (cli_sanitize). */
void table_cell(struct cli_table *t, const char *color, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
size_t table_rows(const struct cli_table *t);
void table_print(const struct cli_table *t, FILE *f, bool use_color, const char *indent,
                 bool header);
void table_free(struct cli_table *t);
/* Control characters (< 0x20, 0x7f, U+0080-U+009F) and bytes that are not
 * UTF-8 become '?', in place (the text may get shorter). */
void cli_sanitize(char *s);
/* cli_sanitize on every string of a snapshot (for terminal output). */
void cli_sanitize_snapshot(struct reshim_snapshot *s);
/* Columns a UTF-8 string takes (code points). */
size_t cli_width(const char *s);
/* The SGR colour of a memory state or a breaker state: green ok/closed,
 * yellow warn/half-open, red critical/over/open; NULL otherwise. */
const char *cli_state_color(const char *state);

#endif
