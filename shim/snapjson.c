/* snapjson.c: the `stats` JSON object of snapshot.h: the key tables
 * (snapenc.h), the encoder that walks them and its size bound. The parser
 * that walks the same tables is jsonparse.c, built into the CLI only.
 * Pure and reentrant: no I/O, no allocation, no static state but the
 * constant tables. */
#include <limits.h>
#include <string.h>

#include "snapenc.h"

const char *const snap_class_names[SNAP_CLASSES] = {"connect", "dns", "send", "recv"};

/* ---- the JSON layout ------------------------------------------------------
 * One table per object; the encoder, snap_json_max and the parser walk the
 * same tables. */

#define F_U64(t, k, m) {k, T_U64, 0, offsetof(t, m), NULL}
#define F_STR(t, k, m) {k, T_STR, FSIZE(t, m), offsetof(t, m), NULL}

static const struct field calls_f[] = {
    F_U64(struct snap_calls, "calls", calls),
    F_U64(struct snap_calls, "failures", failures),
    F_U64(struct snap_calls, "retries", retries),
    F_U64(struct snap_calls, "recovered", recovered),
    F_U64(struct snap_calls, "gave_up", gave_up),
};

const char *const snap_replay_case_names[SNAP_RP_CASES] = {"nothing_sent", "tls_hello",
                                                            "http_request"};

#define R struct snap_replay
static const struct field replay_dest_f[] = {
    F_U64(R, "nothing_sent", replays[SNAP_RP_NOTHING]),
    F_U64(R, "tls_hello", replays[SNAP_RP_HELLO]),
    F_U64(R, "http_request", replays[SNAP_RP_REQUEST]),
    F_U64(R, "recovered", recovered),
    F_U64(R, "gave_up", gave_up),
};
#undef R

#define S struct reshim_snapshot
static const struct field replay_f[] = {
    F_U64(S, "nothing_sent", replay.replays[SNAP_RP_NOTHING]),
    F_U64(S, "tls_hello", replay.replays[SNAP_RP_HELLO]),
    F_U64(S, "http_request", replay.replays[SNAP_RP_REQUEST]),
    F_U64(S, "recovered", replay.recovered),
    F_U64(S, "gave_up", replay.gave_up),
    F_U64(S, "over_max", replay_over_max),
    F_U64(S, "held_bytes", replay_held_bytes),
    F_U64(S, "held_peak_bytes", replay_held_peak_bytes),
};
#undef S

#define D struct snap_dest
const struct field snap_dest_f[] = {
    F_STR(D, "dest", dest),
    F_STR(D, "dir", dir),
    F_U64(D, "calls", connect.calls),
    F_U64(D, "failures", connect.failures),
    F_U64(D, "retries", connect.retries),
    F_U64(D, "recovered", connect.recovered),
    F_U64(D, "gave_up", connect.gave_up),
    F_U64(D, "sends", sends),
    F_U64(D, "recvs", recvs),
    F_U64(D, "bytes_out", bytes_out),
    F_U64(D, "bytes_in", bytes_in),
    F_U64(D, "io_failures", io_failures),
    F_U64(D, "skipped_breaker", skipped_breaker),
    F_U64(D, "skipped_budget", skipped_budget),
    F_U64(D, "skipped_filter", skipped_filter),
    {"replay", T_OBJ, NELEM(replay_dest_f), offsetof(D, replay), replay_dest_f},
    {"last_error", T_STRN, FSIZE(D, last_error), offsetof(D, last_error), NULL},
    F_STR(D, "breaker", breaker),
};
#undef D

#define S struct reshim_snapshot
#define F_CALLS(k, c) {k, T_OBJ, NELEM(calls_f), offsetof(S, net[c]), calls_f}
static const struct field net_f[] = {
    F_CALLS("connect", SNAP_CONNECT),
    F_CALLS("dns", SNAP_DNS),
    F_CALLS("send", SNAP_SEND),
    F_CALLS("recv", SNAP_RECV),
    F_U64(S, "dns_stale", dns_stale),
    F_U64(S, "dest_overflow", dest_overflow),
    {"replay", T_OBJ, NELEM(replay_f), 0, replay_f}, /* its keys sit in the snapshot itself */
    {"destinations", T_DESTS, 0, offsetof(S, dest), NULL},
};
#undef F_CALLS

#define M struct snap_mem
static const struct field mem_f[] = {
    F_U64(M, "rss_bytes", rss_bytes),
    F_U64(M, "rss_peak_bytes", rss_peak_bytes),
    F_U64(M, "rss_anon_bytes", rss_anon_bytes),
    F_U64(M, "rss_file_bytes", rss_file_bytes),
    F_U64(M, "rss_shmem_bytes", rss_shmem_bytes),
    {"heap_live_bytes", T_I64, 0, offsetof(M, heap_live_bytes), NULL},
    F_U64(M, "heap_peak_bytes", heap_peak_bytes),
    F_U64(M, "allocs", allocs),
    F_U64(M, "frees", frees),
    F_U64(M, "mmap_anon_bytes", mmap_anon_bytes),
    F_U64(M, "mmap_anon_peak_bytes", mmap_anon_peak_bytes),
    F_U64(M, "budget_bytes", budget_bytes),
    F_U64(M, "usage_bytes", usage_bytes),
    F_U64(M, "working_set_bytes", working_set_bytes),
    F_STR(M, "budget_source", budget_source),
    F_STR(M, "state", state),
    F_STR(M, "policy", policy),
    F_U64(M, "trims", trims),
    F_U64(M, "trimmed_bytes", trimmed_bytes),
    F_U64(M, "enomem", enomem),
    F_STR(M, "trim", trim),
};
#undef M

const struct field snap_top_f[] = {
    {"pid", T_INT, 0, offsetof(S, pid), NULL},
    F_STR(S, "comm", comm),
    F_STR(S, "version", version),
    {"uptime_s", T_DBL, 0, offsetof(S, uptime_s), NULL},
    {"start_time_s", T_DBL, 0, offsetof(S, start_time_s), NULL},
    {"time_s", T_DBL, 0, offsetof(S, time_s), NULL},
    {"net", T_OBJ, NELEM(net_f), 0, net_f}, /* net's keys sit in the snapshot itself */
    {"mem", T_OBJ, NELEM(mem_f), offsetof(S, mem), mem_f},
};
#undef S
const size_t snap_dest_n = NELEM(snap_dest_f);
const size_t snap_top_n = NELEM(snap_top_f);

/* ---- JSON encoder ---------------------------------------------------------- */

static void enc_obj(struct sbuf *b, const struct field *f, size_t n, const char *base);

static void enc_value(struct sbuf *b, const struct field *f, const char *base)
{
    const char *p = base + f->off;
    switch (f->type) {
    case T_INT:
        sb_i64(b, *(const int *)(const void *)p);
        break;
    case T_U64:
        sb_u64(b, *(const uint64_t *)(const void *)p);
        break;
    case T_I64:
        sb_i64(b, *(const int64_t *)(const void *)p);
        break;
    case T_DBL:
        sb_fixed(b, *(const double *)(const void *)p, FIXED_DECIMALS);
        break;
    case T_STRN:
        if (field_len(p, f->size) == 0) {
            LIT(b, "null");
            break;
        }
        /* fall through */
    case T_STR:
        sb_json_strn(b, p, field_len(p, f->size));
        break;
    case T_OBJ:
        enc_obj(b, f->sub, f->size, p);
        break;
    case T_DESTS: {
        const struct reshim_snapshot *s = (const void *)base;
        unsigned nd = s->ndest < SNAP_DESTS ? s->ndest : SNAP_DESTS;
        LIT(b, "[");
        for (unsigned i = 0; i < nd; i++) {
            if (i)
                LIT(b, ",");
            enc_obj(b, snap_dest_f, snap_dest_n, (const char *)&s->dest[i]);
        }
        LIT(b, "]");
        break;
    }
    }
}

static void enc_obj(struct sbuf *b, const struct field *f, size_t n, const char *base)
{
    LIT(b, "{");
    for (size_t i = 0; i < n; i++) {
        if (i)
            LIT(b, ",");
        LIT(b, "\"");
        sb_str(b, f[i].key);
        LIT(b, "\":");
        enc_value(b, &f[i], base);
    }
    LIT(b, "}");
}

size_t snap_json(const struct reshim_snapshot *s, struct sbuf *b)
{
    size_t start = b->len;
    enc_obj(b, snap_top_f, snap_top_n, (const char *)s);
    LIT(b, "\n");
    return b->len - start;
}

static size_t obj_max(const struct field *f, size_t n, unsigned ndest);

static size_t value_max(const struct field *f, unsigned ndest)
{
    size_t str = f->size ? 2 + JSON_ESC_MAX * (f->size - 1) : 0;
    switch (f->type) {
    case T_INT:
        return sb_int_max_len();
    case T_U64:
        return sb_u64_len(UINT64_MAX);
    case T_I64:
        return 1 + sb_u64_len((uint64_t)INT64_MAX + 1); /* INT64_MIN */
    case T_DBL:
        return sb_fixed_max_len(FIXED_DECIMALS);
    case T_STR:
        return str;
    case T_STRN:
        return str > LITLEN("null") ? str : LITLEN("null");
    case T_OBJ:
        return obj_max(f->sub, f->size, ndest);
    case T_DESTS:
        return LITLEN("[]") + ndest * obj_max(snap_dest_f, snap_dest_n, 0) +
               (ndest ? ndest - 1 : 0);
    }
    return 0;
}

static size_t obj_max(const struct field *f, size_t n, unsigned ndest)
{
    size_t len = LITLEN("{}") + (n ? n - 1 : 0); /* braces, commas */
    for (size_t i = 0; i < n; i++)
        len += LITLEN("\"\":") + strlen(f[i].key) + value_max(&f[i], ndest);
    return len;
}

size_t snap_json_max(unsigned ndest)
{
    if (ndest > SNAP_DESTS)
        ndest = SNAP_DESTS;
    return obj_max(snap_top_f, snap_top_n, ndest) + LITLEN("\n") + 1 /* NUL */;
}
