/* snapjson.c: the `stats` JSON object of snapshot.h: its key tables
 * (snapenc.h), and the one JSON encoder and its size bound, which walk any
 * answer's tables (these, and answerjson.c's for heap, config, trim and
 * errors). The parser that walks the same tables is jsonparse.c, built
 * into the CLI only. Pure and reentrant: no I/O, no allocation, no static
 * state but the constant tables. */
#include <limits.h>
#include <string.h>

#include "snapenc.h"

const char snap_class_names[SNAP_CLASSES][SNAP_WORD_MAX] = {"connect", "dns", "send", "recv"};

/* ---- the JSON layout ------------------------------------------------------
 * One table per object; the encoder, its bound and the parser walk the
 * same tables. */

#define F_U64(t, k, m) FLD(k, T_U64, 0, offsetof(t, m), NULL)
#define F_STR(t, k, m) FLD(k, T_STR, FSIZE(t, m), offsetof(t, m), NULL)

static const struct field calls_f[] = {
    F_U64(struct snap_calls, "calls", calls),
    F_U64(struct snap_calls, "failures", failures),
    F_U64(struct snap_calls, "retries", retries),
    F_U64(struct snap_calls, "recovered", recovered),
    F_U64(struct snap_calls, "gave_up", gave_up),
};

const char snap_replay_case_names[SNAP_RP_CASES][SNAP_WORD_MAX] = {"nothing_sent", "tls_hello",
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
    FLD("replay", T_OBJ, NELEM(replay_dest_f), offsetof(D, replay), replay_dest_f),
    FLD("last_error", T_STRN, FSIZE(D, last_error), offsetof(D, last_error), NULL),
    F_STR(D, "breaker", breaker),
};
#undef D

#define S struct reshim_snapshot
static const struct farr dests_a = {
    .elem = snap_dest_f, .nelem = NELEM(snap_dest_f), .stride = sizeof(struct snap_dest),
    .max = SNAP_DESTS, .count_off = offsetof(S, ndest), .counted = true,
};
#define F_CALLS(k, c) FLD(k, T_OBJ, NELEM(calls_f), offsetof(S, net[c]), calls_f)
static const struct field net_f[] = {
    F_CALLS("connect", SNAP_CONNECT),
    F_CALLS("dns", SNAP_DNS),
    F_CALLS("send", SNAP_SEND),
    F_CALLS("recv", SNAP_RECV),
    F_U64(S, "dns_stale", dns_stale),
    F_U64(S, "dest_overflow", dest_overflow),
    FLD("replay", T_OBJ, NELEM(replay_f), 0, replay_f), /* its keys sit in the snapshot itself */
    {.key = "destinations", .type = T_ARR, .off = offsetof(S, dest), .arr = &dests_a},
};
#undef F_CALLS

#define M struct snap_mem
static const struct field mem_f[] = {
    F_U64(M, "rss_bytes", rss_bytes),
    F_U64(M, "rss_peak_bytes", rss_peak_bytes),
    F_U64(M, "rss_anon_bytes", rss_anon_bytes),
    F_U64(M, "rss_file_bytes", rss_file_bytes),
    F_U64(M, "rss_shmem_bytes", rss_shmem_bytes),
    FLD("heap_live_bytes", T_I64, 0, offsetof(M, heap_live_bytes), NULL),
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
    FLD("pid", T_INT, 0, offsetof(S, pid), NULL),
    F_STR(S, "comm", comm),
    F_STR(S, "version", version),
    FLD("uptime_s", T_DBL, 0, offsetof(S, uptime_s), NULL),
    FLD("start_time_s", T_DBL, 0, offsetof(S, start_time_s), NULL),
    FLD("time_s", T_DBL, 0, offsetof(S, time_s), NULL),
    FLD("net", T_OBJ, NELEM(net_f), 0, net_f), /* net's keys sit in the snapshot itself */
    FLD("mem", T_OBJ, NELEM(mem_f), offsetof(S, mem), mem_f),
};
#undef S
const size_t snap_dest_n = NELEM(snap_dest_f);
const size_t snap_top_n = NELEM(snap_top_f);

const struct field snap_stats_doc = FLD("", T_OBJ, NELEM(snap_top_f), 0, snap_top_f);

/* ---- JSON encoder ---------------------------------------------------------- */

static void enc_obj(struct sbuf *b, const struct field *f, size_t n, const char *base);
static void enc_value(struct sbuf *b, const struct field *f, const char *base);

static bool present(const struct field *f, const char *base)
{
    return !(f->flags & FL_OPT) || *(const bool *)(const void *)(base + f->opt);
}

static unsigned arr_count(const struct farr *a, const char *base, const char *p)
{
    unsigned n = a->list ? ((const struct snap_list *)(const void *)p)->n
                         : *(const unsigned *)(const void *)(base + a->count_off);
    return n < a->max ? n : (unsigned)a->max;
}

/* Element i of an array or map at p. */
static const char *arr_elem(const struct farr *a, const char *p, unsigned i)
{
    if (!a->list)
        return p + i * a->stride;
    const struct snap_list *l = (const void *)p;
    if (l->at)
        return l->at(l->ctx, i);
    return l->p ? (const char *)l->p + i * a->stride : NULL;
}

static void enc_elem(struct sbuf *b, const struct farr *a, const char *e)
{
    if (a->bare)
        enc_value(b, a->elem, e);
    else
        enc_obj(b, a->elem, a->nelem, e);
}

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
    case T_ARR: {
        const struct farr *a = f->arr;
        LIT(b, "[");
        for (unsigned i = 0, n = arr_count(a, base, p); i < n; i++) {
            if (i)
                LIT(b, ",");
            const char *e = arr_elem(a, p, i);
            if (e)
                enc_elem(b, a, e);
            else
                LIT(b, "null"); /* at() had none: never in the library */
        }
        LIT(b, "]");
        break;
    }
    case T_MAP: {
        const struct farr *a = f->arr;
        bool first = true;
        LIT(b, "{");
        for (unsigned i = 0; i < a->max; i++) {
            const char *e = p + i * a->stride;
            if ((f->flags & FL_OPT) && !*(const bool *)(const void *)(e + f->opt))
                continue;
            if (!first)
                LIT(b, ",");
            first = false;
            sb_json_str(b, a->names[i]);
            LIT(b, ":");
            enc_elem(b, a, e);
        }
        LIT(b, "}");
        break;
    }
    }
}

static void enc_obj(struct sbuf *b, const struct field *f, size_t n, const char *base)
{
    bool first = true;
    LIT(b, "{");
    for (size_t i = 0; i < n; i++) {
        if (!present(&f[i], base))
            continue;
        if (!first)
            LIT(b, ",");
        first = false;
        LIT(b, "\"");
        sb_str(b, f[i].key);
        LIT(b, "\":");
        enc_value(b, &f[i], base);
    }
    LIT(b, "}");
}

size_t snap_doc_json(const struct field *top, const void *base, struct sbuf *b)
{
    size_t start = b->len;
    enc_value(b, top, base);
    LIT(b, "\n");
    return b->len - start;
}

size_t snap_json(const struct reshim_snapshot *s, struct sbuf *b)
{
    return snap_doc_json(&snap_stats_doc, s, b);
}

static size_t obj_max(const struct field *f, size_t n, size_t count);
static size_t value_max(const struct field *f, size_t count);

static size_t elem_max(const struct farr *a, size_t count)
{
    return a->bare ? value_max(a->elem, count) : obj_max(a->elem, a->nelem, count);
}

static size_t value_max(const struct field *f, size_t count)
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
        return obj_max(f->sub, f->size, count);
    case T_ARR: {
        const struct farr *a = f->arr;
        size_t n = a->counted && count < a->max ? count : a->max;
        return sat_add(LITLEN("[]") + (n ? n - 1 : 0), sat_mul(n, elem_max(a, count)));
    }
    case T_MAP: {
        const struct farr *a = f->arr;
        size_t len = LITLEN("{}") + (a->max ? a->max - 1 : 0), one = elem_max(a, count);
        for (size_t i = 0; i < a->max; i++)
            len = sat_add(len, LITLEN(":") + 2 + JSON_ESC_MAX * strlen(a->names[i]) + one);
        return len;
    }
    }
    return 0;
}

static size_t obj_max(const struct field *f, size_t n, size_t count)
{
    size_t len = LITLEN("{}") + (n ? n - 1 : 0); /* braces, commas */
    for (size_t i = 0; i < n; i++)
        len = sat_add(len, LITLEN("\"\":") + strlen(f[i].key) + value_max(&f[i], count));
    return len;
}

size_t snap_doc_json_max(const struct field *top, size_t count)
{
    return sat_add(value_max(top, count), LITLEN("\n") + 1 /* NUL */);
}

size_t snap_json_max(unsigned ndest)
{
    return snap_doc_json_max(&snap_stats_doc, ndest);
}
