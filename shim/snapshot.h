/* snapshot.h: one process's figures at one instant, as plain values, and
 * their encodings: the `stats` JSON object of libreshim(7), its parser, and the
 * Prometheus text exposition (0.0.4) of one or many snapshots.
 *
 * This is the contract between the three places that show figures: the
 * stats thread in libreshim.so (server.c fills a snapshot from the live
 * counters and encodes it), the pushed datagrams (RESHIM_PUSH), and the
 * reshim CLI (which parses the JSON of each process back into a snapshot,
 * then renders tables, the live view, or merged Prometheus text for many
 * processes with the same encoder). The encoders are pure: no I/O, no clock,
 * no allocation, no stdio (they run inside the shim), one file per concern:
 * sbuf.c (the buffer, numbers, escaped strings), snapjson.c (the JSON key
 * tables and the one encoder), answerjson.c (the tables of the other
 * answers: answerjson.h), jsonparse.c (the one parser, in the CLI only: not
 * linked into libreshim.so), prom.c (Prometheus), request.c (request
 * lines), and utf8.c under them. Callers include this header (and
 * answerjson.h) only; snapenc.h is what the encoders share among
 * themselves. Unit-tested in tests/unit/test_encode.c. */
#ifndef RESHIM_SNAPSHOT_H
#define RESHIM_SNAPSHOT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define SNAP_COMM_MAX 64     /* comm (16 on Linux) or a longer name parsed from JSON */
#define SNAP_DEST_MAX 128    /* DEST_NAME_MAX of dest.h */
#define SNAP_DESTS 512       /* DEST_SLOTS of stats.h */
#define SNAP_WORD_MAX 16     /* "ECONNREFUSED", "half-open", "critical", "cgroup" */

enum snap_class { SNAP_CONNECT, SNAP_DNS, SNAP_SEND, SNAP_RECV, SNAP_CLASSES };
/* Name tables hold their texts (no pointer: no relocation at load). */
extern const char snap_class_names[SNAP_CLASSES][SNAP_WORD_MAX]; /* "connect" "dns" "send" "recv" */

struct snap_calls {
    uint64_t calls, failures, retries, recovered, gave_up;
};

/* Replays (libreshim(7), RESHIM_REPLAY), per case: nothing sent yet, a TLS
 * ClientHello only, one safe HTTP/1.x request. */
enum snap_replay_case { SNAP_RP_NOTHING, SNAP_RP_HELLO, SNAP_RP_REQUEST, SNAP_RP_CASES };
extern const char snap_replay_case_names[SNAP_RP_CASES][SNAP_WORD_MAX]; /* as the JSON keys */

struct snap_replay {
    uint64_t replays[SNAP_RP_CASES]; /* connected again and resent */
    uint64_t recovered, gave_up;     /* broken calls answered in the end / not */
};

static inline uint64_t snap_replays_total(const struct snap_replay *r)
{
    return r->replays[SNAP_RP_NOTHING] + r->replays[SNAP_RP_HELLO] + r->replays[SNAP_RP_REQUEST];
}

struct snap_dest {
    char dest[SNAP_DEST_MAX];        /* "127.0.0.1:8080", "[::1]:443", "unix:/run/x.sock" */
    char dir[4];                     /* "out" (we connected) or "in" (we accepted) */
    struct snap_calls connect;       /* calls, failures, retries, recovered, gave_up */
    uint64_t sends, recvs, bytes_out, bytes_in, io_failures;
    uint64_t skipped_breaker, skipped_budget, skipped_filter;
    struct snap_replay replay;
    char last_error[SNAP_WORD_MAX];  /* errno name, "" when none */
    char breaker[SNAP_WORD_MAX];     /* "closed", "open", "half-open" */
};

struct snap_mem {
    uint64_t rss_bytes, rss_peak_bytes, rss_anon_bytes, rss_file_bytes, rss_shmem_bytes;
    int64_t heap_live_bytes;
    uint64_t heap_peak_bytes, allocs, frees;
    uint64_t mmap_anon_bytes, mmap_anon_peak_bytes;
    uint64_t budget_bytes, usage_bytes, working_set_bytes;
    char budget_source[SNAP_WORD_MAX]; /* "env", "cgroup", "none" */
    char state[SNAP_WORD_MAX];         /* "ok", "warn", "critical", "over" */
    char policy[SNAP_WORD_MAX];        /* "warn", "trim", "enforce" */
    uint64_t trims, trimmed_bytes, enomem;
    char trim[SNAP_WORD_MAX];          /* "malloc_trim", "jemalloc", "tcmalloc", "none" */
};

struct reshim_snapshot {
    int pid;
    char comm[SNAP_COMM_MAX];
    char version[SNAP_WORD_MAX];
    double uptime_s;             /* since the shim initialised in this process */
    double start_time_s;         /* unix time of that start */
    double time_s;               /* unix time the snapshot was taken */
    struct snap_calls net[SNAP_CLASSES];
    uint64_t dns_stale;          /* getaddrinfo answered from the stale cache */
    uint64_t dest_overflow;      /* destinations that did not fit the table */
    struct snap_replay replay;
    uint64_t replay_over_max;    /* requests not kept: over RESHIM_REPLAY_MAX or no room */
    uint64_t replay_held_bytes;  /* bytes kept for a possible resend, now and at most */
    uint64_t replay_held_peak_bytes;
    struct snap_mem mem;
    unsigned ndest;
    struct snap_dest dest[SNAP_DESTS];
};

/* An array of an answer whose elements are not inline (a heap answer's
 * sites): n elements at p, stride apart, or, when at is set, element i
 * made by at(ctx, i) as it is written (the library symbolizes one heap
 * site at a time). A parser fills p, which has room for the array's max. */
struct snap_list {
    void *p;
    unsigned n;
    const void *(*at)(const void *ctx, unsigned i);
    const void *ctx;
};

/* ---- the output buffer ----------------------------------------------------
 * Appends never write past cap; a write that does not fit sets overflow and
 * the text is cut there (callers size the buffer from snap_*_max()). */
struct sbuf {
    char *p;
    size_t len, cap;   /* p[len] is kept NUL when cap > 0 */
    bool overflow;
};
void sb_init(struct sbuf *b, char *mem, size_t cap);
/* A string field of a snapshot: s cut to n-1 bytes, NUL-terminated. (A
 * loop, not strnlen: given a short literal, GCC's -O1 ASan build warns that
 * the bound exceeds the literal, which strnlen never reads past.) */
static inline void snap_word(char *dst, size_t n, const char *s)
{
    size_t len = 0;
    while (len + 1 < n && s[len])
        len++;
    memcpy(dst, s, len);
    dst[len] = 0;
}
void sb_str(struct sbuf *b, const char *s);
void sb_mem(struct sbuf *b, const char *s, size_t n);
void sb_u64(struct sbuf *b, uint64_t v);
void sb_i64(struct sbuf *b, int64_t v);
void sb_fixed(struct sbuf *b, double v, int decimals); /* no exponent; NaN/inf as 0 */
/* A JSON string literal: quotes, and \" \\ \b \f \n \r \t \u00XX for other
 * control bytes; bytes >= 0x80 that are not valid UTF-8 become \ufffd, so
 * the output is always valid JSON whatever the input (a comm can hold
 * anything). */
void sb_json_str(struct sbuf *b, const char *s);
/* A Prometheus label value: \\ \" \n escaped, invalid UTF-8 replaced. */
void sb_prom_label(struct sbuf *b, const char *s);

/* ---- JSON ------------------------------------------------------------------ */

/* The `stats` object, one line, ending in "\n". Keys as libreshim(7):
 * {"pid":..,"comm":..,"version":..,"uptime_s":..,"start_time_s":..,"time_s":..,
 *  "net":{"connect":{calls,failures,retries,recovered,gave_up},"dns":{..},
 *         "send":{..},"recv":{..},"dns_stale":..,"dest_overflow":..,
 *         "replay":{"nothing_sent":..,"tls_hello":..,"http_request":..,"recovered":..,
 *                   "gave_up":..,"over_max":..,"held_bytes":..,"held_peak_bytes":..},
 *         "destinations":[{"dest":..,"dir":..,"calls":..,"failures":..,"retries":..,
 *                          "recovered":..,"gave_up":..,"sends":..,"recvs":..,
 *                          "bytes_out":..,"bytes_in":..,"io_failures":..,
 *                          "skipped_breaker":..,"skipped_budget":..,
 *                          "skipped_filter":..,"replay":{"nothing_sent":..,"tls_hello":..,
 *                          "http_request":..,"recovered":..,"gave_up":..},
 *                          "last_error":..,"breaker":..}, ...]},
 *  "mem":{"rss_bytes":..,"rss_peak_bytes":..,"rss_anon_bytes":..,"rss_file_bytes":..,
 *         "rss_shmem_bytes":..,"heap_live_bytes":..,"heap_peak_bytes":..,"allocs":..,
 *         "frees":..,"mmap_anon_bytes":..,"mmap_anon_peak_bytes":..,"budget_bytes":..,
 *         "usage_bytes":..,"working_set_bytes":..,"budget_source":..,"state":..,
 *         "policy":..,"trims":..,"trimmed_bytes":..,"enomem":..,"trim":..}}
 * last_error is null when empty. Returns the length written (b->overflow
 * tells a cut). */
size_t snap_json(const struct reshim_snapshot *s, struct sbuf *b);
size_t snap_json_max(unsigned ndest); /* a buffer size that always fits */

/* Parses a `stats` object (as written above, any key order, unknown keys
 * and extra whitespace ignored, missing keys left zero). Returns 0, or -1
 * with a short reason in err (never NULL) on input that is not such an
 * object. Never reads past len; any input is safe (fuzzed). */
int snap_parse_json(const char *text, size_t len, struct reshim_snapshot *out,
                    const char **err);

/* ---- Prometheus ------------------------------------------------------------
 * Text exposition format 0.0.4 of n snapshots: each metric family once, with
 * its # HELP and # TYPE lines, then one sample per process (and per class,
 * destination or state where the family has that label), every sample
 * labelled pid="..",comm="..". Names start with reshim_, units are base
 * units in the name (_bytes, _seconds), counters end in _total. */
size_t snap_prometheus(const struct reshim_snapshot *const *snaps, size_t n, struct sbuf *b);
size_t snap_prometheus_max(const struct reshim_snapshot *const *snaps, size_t n);

/* ---- requests ----------------------------------------------------------------
 * One request line of the stats socket (libreshim(7)), as the stats thread reads
 * it: blanks around it and a final \r dropped, then a word and, for watch
 * and heap, a whole number. Pure, so that it can be fuzzed apart from the
 * sockets (server.c only dispatches on the answer). */
enum snap_req {
    SREQ_BLANK,     /* an empty or blank line: ignored */
    SREQ_STATS, SREQ_METRICS, SREQ_CONFIG, SREQ_VERSION, SREQ_HELP, SREQ_TRIM,
    SREQ_WATCH,     /* *arg: the period in ms; 0 = RESHIM_INTERVAL's */
    SREQ_HEAP,      /* *arg: N */
    SREQ_BAD_WATCH, /* watch with an argument that is not MS */
    SREQ_BAD_HEAP,  /* heap with an argument that is not N */
    SREQ_UNKNOWN,
};
#define SREQ_WATCH_MIN_MS 10
#define SREQ_WATCH_MAX_MS 3600000
#define SREQ_HEAP_MAX_N 1000
#define SREQ_ECHO_MAX 64 /* bytes of an unknown request repeated in its error */

/* Classifies line[0..len) (any bytes; never read past len). *arg is set for
 * SREQ_WATCH and SREQ_HEAP (0 otherwise). */
enum snap_req snap_parse_request(const char *line, size_t len, uint64_t *arg);
/* The answer to an unknown request, one line of JSON:
 * {"error":"unknown request \"<its first 64 bytes, escaped>\"; try help"}\n */
void snap_unknown_request(struct sbuf *b, const char *line, size_t len);

#endif
