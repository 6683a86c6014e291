/* prom.c: the Prometheus text exposition (0.0.4) of many snapshots
 * (snapshot.h), from one table of families, and the size that always fits.
 * Pure and reentrant: no I/O, no allocation, no static state but constant
 * tables. */
#include <limits.h>
#include <string.h>

#include "snapenc.h"

/* ---- Prometheus -------------------------------------------------------------
 * One table of families; each sample line is
 *   name{pid="..",comm=".."[,more labels]} value
 * and prom_max mirrors prom_sample piece by piece. */

enum pkind {
    PK_INFO,  /* version label, value 1 */
    PK_PROC,  /* one sample per process, value at off in the snapshot */
    PK_OP,    /* one per class (op label), off in struct snap_calls */
    PK_DEST,  /* one per destination (dest, dir labels), off in struct snap_dest */
    PK_STATE, /* one per memory state (state label), one-hot */
    PK_CASE,  /* one per replay case (case label), off in struct snap_replay */
    PK_DEST_CASE, /* one per destination and replay case, off in struct snap_replay */
};
enum pval { PV_U64, PV_I64, PV_DBL, PV_BREAKER, PV_ONE };

/* The texts in the table itself, not pointed to: a pointer in a constant
 * table is a relocation for the loader at every start-up (111 here were
 * 2k instructions of each preloaded /bin/true's). A text as long as its
 * array would lose its terminating NUL: the sizes leave room (longest: a
 * name of 41, a help of 98); test_encode checks each family's name and
 * type as printed. */
struct pfam {
    char name[48], type[8], help[112];
    enum pkind kind;
    enum pval val;
    size_t off;
};

#define S struct reshim_snapshot
#define MEM(m) offsetof(S, mem.m)
#define C(m) offsetof(struct snap_calls, m)
#define DST(m) offsetof(struct snap_dest, m)
static const struct pfam fams[] = {
    {"reshim_info", "gauge", "Version of reshim in the process; always 1.", PK_INFO, PV_ONE, 0},
    {"reshim_uptime_seconds", "gauge", "Seconds since reshim started in the process.",
     PK_PROC, PV_DBL, offsetof(S, uptime_s)},
    {"reshim_start_time_seconds", "gauge", "Unix time reshim started in the process, in seconds.",
     PK_PROC, PV_DBL, offsetof(S, start_time_s)},
    {"reshim_net_calls_total", "counter", "Interposed network calls, by operation.", PK_OP,
     PV_U64, C(calls)},
    {"reshim_net_failures_total", "counter",
     "Calls that failed in the end (after any retries), by operation.", PK_OP, PV_U64,
     C(failures)},
    {"reshim_net_retries_total", "counter", "Retries made, by operation.", PK_OP, PV_U64,
     C(retries)},
    {"reshim_net_recovered_total", "counter",
     "Calls that failed at first and succeeded after retries, by operation.", PK_OP, PV_U64,
     C(recovered)},
    {"reshim_net_gave_up_total", "counter",
     "Calls that still failed when their retries ran out, by operation.", PK_OP, PV_U64,
     C(gave_up)},
    {"reshim_dns_stale_answers_total", "counter",
     "getaddrinfo calls answered from the stale cache during a DNS failure.", PK_PROC, PV_U64,
     offsetof(S, dns_stale)},
    {"reshim_destination_connects_total", "counter",
     "Connect calls, by destination (dir=in rows are listeners).", PK_DEST, PV_U64,
     DST(connect.calls)},
    {"reshim_destination_connect_failures_total", "counter",
     "Connects that failed in the end, by destination.", PK_DEST, PV_U64,
     DST(connect.failures)},
    {"reshim_destination_retries_total", "counter", "Connect retries, by destination.",
     PK_DEST, PV_U64, DST(connect.retries)},
    {"reshim_destination_recovered_total", "counter",
     "Connects that succeeded after retries, by destination.", PK_DEST, PV_U64,
     DST(connect.recovered)},
    {"reshim_destination_gave_up_total", "counter",
     "Connects whose retries ran out, by destination.", PK_DEST, PV_U64,
     DST(connect.gave_up)},
    {"reshim_destination_sent_bytes_total", "counter", "Bytes sent, by destination.", PK_DEST,
     PV_U64, DST(bytes_out)},
    {"reshim_destination_received_bytes_total", "counter", "Bytes received, by destination.",
     PK_DEST, PV_U64, DST(bytes_in)},
    {"reshim_destination_breaker_open", "gauge",
     "1 while the destination's circuit breaker is open or half-open, else 0.", PK_DEST,
     PV_BREAKER, DST(breaker)},
    {"reshim_replays_total", "counter",
     "Broken connections connected again and their bytes resent, by case.", PK_CASE, PV_U64,
     offsetof(struct snap_replay, replays)},
    {"reshim_replay_recovered_total", "counter",
     "Calls on a broken connection answered after replays.", PK_PROC, PV_U64,
     offsetof(S, replay.recovered)},
    {"reshim_replay_gave_up_total", "counter",
     "Calls on a broken connection whose replays ran out.", PK_PROC, PV_U64,
     offsetof(S, replay.gave_up)},
    {"reshim_replay_held_bytes", "gauge", "Bytes kept by reshim for a possible resend.",
     PK_PROC, PV_U64, offsetof(S, replay_held_bytes)},
    {"reshim_destination_replays_total", "counter", "Replays, by destination and case.",
     PK_DEST_CASE, PV_U64, DST(replay.replays)},
    {"reshim_resident_memory_bytes", "gauge", "Resident set size of the process.", PK_PROC,
     PV_U64, MEM(rss_bytes)},
    {"reshim_resident_memory_peak_bytes", "gauge", "Peak resident set size of the process.",
     PK_PROC, PV_U64, MEM(rss_peak_bytes)},
    {"reshim_resident_anon_memory_bytes", "gauge", "Resident anonymous memory of the process.",
     PK_PROC, PV_U64, MEM(rss_anon_bytes)},
    {"reshim_heap_live_bytes", "gauge", "Usable size of the live heap blocks.", PK_PROC,
     PV_I64, MEM(heap_live_bytes)},
    {"reshim_heap_peak_bytes", "gauge", "Peak of the live heap bytes.", PK_PROC, PV_U64,
     MEM(heap_peak_bytes)},
    {"reshim_allocations_total", "counter", "Heap allocations.", PK_PROC, PV_U64,
     MEM(allocs)},
    {"reshim_frees_total", "counter", "Heap frees.", PK_PROC, PV_U64, MEM(frees)},
    {"reshim_mmap_anon_bytes", "gauge", "Writable private anonymous mappings made by the app.",
     PK_PROC, PV_U64, MEM(mmap_anon_bytes)},
    {"reshim_memory_budget_bytes", "gauge", "Memory budget; 0 when there is none.", PK_PROC,
     PV_U64, MEM(budget_bytes)},
    {"reshim_memory_usage_bytes", "gauge",
     "Memory compared to the budget: resident anon and shared, or the container's working set "
     "if larger.", PK_PROC, PV_U64, MEM(usage_bytes)},
    {"reshim_container_working_set_bytes", "gauge",
     "Working set of the container (usage less inactive file pages).", PK_PROC, PV_U64,
     MEM(working_set_bytes)},
    {"reshim_memory_state", "gauge", "1 for the current memory state, 0 for the others.",
     PK_STATE, PV_ONE, 0},
    {"reshim_memory_trims_total", "counter", "Trims that returned free heap to the OS.",
     PK_PROC, PV_U64, MEM(trims)},
    {"reshim_memory_trimmed_bytes_total", "counter", "Bytes the trims returned to the OS.",
     PK_PROC, PV_U64, MEM(trimmed_bytes)},
    {"reshim_memory_denied_allocations_total", "counter",
     "Allocations refused with ENOMEM past the budget (policy enforce).", PK_PROC, PV_U64,
     MEM(enomem)},
};
#undef S
#undef MEM
#undef C
#undef DST

static const char mem_states[][SNAP_WORD_MAX] = {"ok", "warn", "critical", "over"};

#define P_PID "{pid=\""
#define P_COMM "\",comm=\""
#define P_VERSION "\",version=\""
#define P_OP "\",op=\""
#define P_DEST "\",dest=\""
#define P_DIR "\",dir=\""
#define P_STATE "\",state=\""
#define P_CASE "\",case=\""
#define P_END "\"} "

/* Samples a family has for one snapshot. */
static size_t prom_count(const struct pfam *f, const struct reshim_snapshot *s)
{
    switch (f->kind) {
    case PK_OP:
        return SNAP_CLASSES;
    case PK_DEST:
        return s->ndest < SNAP_DESTS ? s->ndest : SNAP_DESTS;
    case PK_STATE:
        return NELEM(mem_states);
    case PK_CASE:
        return SNAP_RP_CASES;
    case PK_DEST_CASE:
        return (s->ndest < SNAP_DESTS ? s->ndest : SNAP_DESTS) * SNAP_RP_CASES;
    default:
        return 1;
    }
}

static void prom_value(struct sbuf *b, enum pval val, const char *p)
{
    switch (val) {
    case PV_U64:
        sb_u64(b, *(const uint64_t *)(const void *)p);
        break;
    case PV_I64:
        sb_i64(b, *(const int64_t *)(const void *)p);
        break;
    case PV_DBL:
        sb_fixed(b, *(const double *)(const void *)p, FIXED_DECIMALS);
        break;
    case PV_BREAKER:
        sb_u64(b, field_is(p, SNAP_WORD_MAX, "open") || field_is(p, SNAP_WORD_MAX, "half-open"));
        break;
    case PV_ONE:
        LIT(b, "1");
        break;
    }
}

static size_t prom_value_max(enum pval val)
{
    switch (val) {
    case PV_U64:
    case PV_I64:
        return sb_u64_len(UINT64_MAX); /* 20, as is INT64_MIN */
    case PV_DBL:
        return sb_fixed_max_len(FIXED_DECIMALS);
    default:
        return 1;
    }
}

/* Sample i of family f for snapshot s. */
static void prom_sample(struct sbuf *b, const struct pfam *f, const struct reshim_snapshot *s,
                        size_t i)
{
    const struct snap_dest *d = &s->dest[i < SNAP_DESTS ? i : 0];
    sb_str(b, f->name);
    LIT(b, P_PID);
    sb_i64(b, s->pid);
    LIT(b, P_COMM);
    sb_prom_strn(b, s->comm, field_len(s->comm, sizeof s->comm));
    switch (f->kind) {
    case PK_INFO:
        LIT(b, P_VERSION);
        sb_prom_strn(b, s->version, field_len(s->version, sizeof s->version));
        LIT(b, P_END);
        prom_value(b, f->val, (const char *)s);
        break;
    case PK_PROC:
        LIT(b, P_END);
        prom_value(b, f->val, (const char *)s + f->off);
        break;
    case PK_OP:
        LIT(b, P_OP);
        sb_str(b, snap_class_names[i]);
        LIT(b, P_END);
        prom_value(b, f->val, (const char *)&s->net[i] + f->off);
        break;
    case PK_DEST:
        LIT(b, P_DEST);
        sb_prom_strn(b, d->dest, field_len(d->dest, sizeof d->dest));
        LIT(b, P_DIR);
        sb_prom_strn(b, d->dir, field_len(d->dir, sizeof d->dir));
        LIT(b, P_END);
        prom_value(b, f->val, (const char *)d + f->off);
        break;
    case PK_STATE:
        LIT(b, P_STATE);
        sb_str(b, mem_states[i]);
        LIT(b, P_END);
        sb_u64(b, field_is(s->mem.state, sizeof s->mem.state, mem_states[i]));
        break;
    case PK_CASE:
        LIT(b, P_CASE);
        sb_str(b, snap_replay_case_names[i]);
        LIT(b, P_END);
        prom_value(b, f->val, (const char *)&s->replay + f->off + i * sizeof(uint64_t));
        break;
    case PK_DEST_CASE: {
        size_t di = i / SNAP_RP_CASES, c = i % SNAP_RP_CASES;
        d = &s->dest[di < SNAP_DESTS ? di : 0];
        LIT(b, P_DEST);
        sb_prom_strn(b, d->dest, field_len(d->dest, sizeof d->dest));
        LIT(b, P_DIR);
        sb_prom_strn(b, d->dir, field_len(d->dir, sizeof d->dir));
        LIT(b, P_CASE);
        sb_str(b, snap_replay_case_names[c]);
        LIT(b, P_END);
        prom_value(b, f->val, (const char *)d + f->off + c * sizeof(uint64_t));
        break;
    }
    }
    LIT(b, "\n");
}

/* The longest prom_sample(f, s, i) can write. */
static size_t prom_sample_max(const struct pfam *f, size_t i)
{
    const struct reshim_snapshot *s = NULL;
    const struct snap_dest *d = NULL;
    size_t len = strlen(f->name) + LITLEN(P_PID) + sb_int_max_len() + LITLEN(P_COMM) +
                 PROM_ESC_MAX * (sizeof s->comm - 1) + LITLEN(P_END) +
                 prom_value_max(f->val) + LITLEN("\n");
    switch (f->kind) {
    case PK_INFO:
        len += LITLEN(P_VERSION) + PROM_ESC_MAX * (sizeof s->version - 1);
        break;
    case PK_PROC:
        break;
    case PK_OP:
        len += LITLEN(P_OP) + strlen(snap_class_names[i]);
        break;
    case PK_DEST:
        len += LITLEN(P_DEST) + PROM_ESC_MAX * (sizeof d->dest - 1) + LITLEN(P_DIR) +
               PROM_ESC_MAX * (sizeof d->dir - 1);
        break;
    case PK_STATE:
        len += LITLEN(P_STATE) + strlen(mem_states[i]);
        break;
    case PK_CASE:
        len += LITLEN(P_CASE) + strlen(snap_replay_case_names[i % SNAP_RP_CASES]);
        break;
    case PK_DEST_CASE:
        len += LITLEN(P_DEST) + PROM_ESC_MAX * (sizeof d->dest - 1) + LITLEN(P_DIR) +
               PROM_ESC_MAX * (sizeof d->dir - 1) + LITLEN(P_CASE) +
               strlen(snap_replay_case_names[i % SNAP_RP_CASES]);
        break;
    }
    return len;
}

static void prom_header(struct sbuf *b, const struct pfam *f)
{
    LIT(b, "# HELP ");
    sb_str(b, f->name);
    LIT(b, " ");
    sb_str(b, f->help);
    LIT(b, "\n# TYPE ");
    sb_str(b, f->name);
    LIT(b, " ");
    sb_str(b, f->type);
    LIT(b, "\n");
}

static size_t prom_header_len(const struct pfam *f)
{
    return LITLEN("# HELP ") + 2 * strlen(f->name) + 1 + strlen(f->help) + LITLEN("\n# TYPE ") +
           1 + strlen(f->type) + LITLEN("\n");
}

/* A family with no sample at all (destinations, when no process has any)
 * is left out, as client libraries do. */
size_t snap_prometheus(const struct reshim_snapshot *const *snaps, size_t n, struct sbuf *b)
{
    size_t start = b->len;
    for (size_t k = 0; k < NELEM(fams); k++) {
        const struct pfam *f = &fams[k];
        bool any = false;
        for (size_t j = 0; j < n && !any; j++)
            any = prom_count(f, snaps[j]) > 0;
        if (!any)
            continue;
        prom_header(b, f);
        for (size_t j = 0; j < n; j++)
            for (size_t i = 0, c = prom_count(f, snaps[j]); i < c; i++)
                prom_sample(b, f, snaps[j], i);
    }
    return b->len - start;
}

size_t snap_prometheus_max(const struct reshim_snapshot *const *snaps, size_t n)
{
    size_t total = 1; /* NUL */
    for (size_t k = 0; k < NELEM(fams); k++) {
        const struct pfam *f = &fams[k];
        size_t fam = 0;
        bool any = false;
        for (size_t j = 0; j < n; j++) {
            size_t c = prom_count(f, snaps[j]);
            any |= c > 0;
            if (f->kind == PK_OP || f->kind == PK_STATE || f->kind == PK_CASE ||
                f->kind == PK_DEST_CASE) {
                for (size_t i = 0; i < c; i++)
                    fam = sat_add(fam, prom_sample_max(f, i));
            } else {
                size_t one = prom_sample_max(f, 0);
                fam = sat_add(fam, sat_mul(c, one));
            }
        }
        if (any)
            total = sat_add(total, sat_add(fam, prom_header_len(f)));
    }
    return total;
}
