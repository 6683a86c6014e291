/* answerjson.c: the key tables of the stats socket's answers other than
 * `stats` (answerjson.h): errors, trim, config and heap N, and their
 * encoders, which are the one encoder of snapjson.c walking these tables.
 * Their parsers are in jsonparse.c (CLI only). Pure and reentrant: no I/O,
 * no allocation, no static state but the constant tables. */
#include "answerjson.h"

#include "snapenc.h"

#define F_U64(t, k, m) FLD(k, T_U64, 0, offsetof(t, m), NULL)
#define F_U64R(t, k, m) {.key = k, .type = T_U64, .off = offsetof(t, m), .flags = FL_REQ}
#define F_STR(t, k, m) FLD(k, T_STR, FSIZE(t, m), offsetof(t, m), NULL)
#define DOC(sub) FLD("", T_OBJ, NELEM(sub), 0, sub)

/* ---- errors ---------------------------------------------------------------- */

static const struct field error_f[] = {
    {.key = "error", .type = T_STR, .size = FSIZE(struct snap_error, error),
     .off = offsetof(struct snap_error, error), .flags = FL_OPT,
     .opt = offsetof(struct snap_error, has_error)},
};
const struct field snap_error_doc = DOC(error_f);

/* ---- trim ------------------------------------------------------------------ */

#define T struct snap_trim
static const struct field trim_f[] = {
    F_U64R(T, "trimmed_bytes", trimmed_bytes),
    F_U64R(T, "rss_before_bytes", rss_before_bytes),
    F_U64R(T, "rss_after_bytes", rss_after_bytes),
    F_U64R(T, "ms", ms),
};
#undef T
const struct field snap_trim_doc = DOC(trim_f);

/* ---- config ------------------------------------------------------------------ */

#define V struct snap_config_var
static const struct field config_var_f[] = {
    {.key = "value", .type = T_STR, .size = FSIZE(V, value), .off = offsetof(V, value),
     .flags = FL_REQ},
    {.key = "source", .type = T_STR, .size = FSIZE(V, source), .off = offsetof(V, source),
     .flags = FL_REQ},
    /* Only for an invalid value. */
    {.key = "given", .type = T_STR, .size = FSIZE(V, given), .off = offsetof(V, given),
     .flags = FL_OPT, .opt = offsetof(V, has_given)},
};
static const struct farr config_vars_a = {
    .elem = config_var_f, .nelem = NELEM(config_var_f), .stride = sizeof(V), .max = V_COUNT,
    .names = reshim_config_names,
};
/* Only the variables present (the library: all of them). */
const struct field snap_config_doc = {.type = T_MAP, .off = offsetof(struct snap_config, var),
                                      .arr = &config_vars_a, .flags = FL_OPT,
                                      .opt = offsetof(V, present)};
#undef V

/* ---- heap N -------------------------------------------------------------------- */

#define P struct snap_heap_pyframe
static const struct field pyframe_f[] = {
    F_STR(P, "file", file),
    F_STR(P, "function", function),
    F_U64(P, "line", line),
};
#undef P

#define S struct snap_heap_site
static const struct field frame_f = FLD("", T_STR, SNAP_HEAP_SYM_MAX, 0, NULL);
static const struct field pc_f = FLD("", T_U64, 0, 0, NULL);
static const struct farr stack_a = {
    .elem = &frame_f, .nelem = 1, .bare = true, .stride = SNAP_HEAP_SYM_MAX,
    .max = SNAP_HEAP_DEPTH + 1, .count_off = offsetof(S, nstack),
};
static const struct farr pcs_a = {
    .elem = &pc_f, .nelem = 1, .bare = true, .stride = sizeof(uint64_t),
    .max = SNAP_HEAP_DEPTH, .count_off = offsetof(S, npcs),
};
static const struct farr python_a = {
    .elem = pyframe_f, .nelem = NELEM(pyframe_f), .stride = sizeof(struct snap_heap_pyframe),
    .max = SNAP_HEAP_PY_DEPTH, .count_off = offsetof(S, npython),
};
static const struct field site_f[] = {
    F_U64(S, "live_bytes", live_bytes),
    F_U64(S, "live_bytes_sd", live_bytes_sd),
    F_U64(S, "live_objects", live_objects),
    F_U64(S, "allocs", allocs),
    F_U64(S, "samples", samples),
    F_U64(S, "live_samples", live_samples),
    {.key = "stack", .type = T_ARR, .off = offsetof(S, stack), .arr = &stack_a},
    {.key = "pcs", .type = T_ARR, .off = offsetof(S, pcs), .arr = &pcs_a},
    /* Only for a site sampled in a CPython's own allocator. */
    {.key = "python", .type = T_ARR, .off = offsetof(S, python), .arr = &python_a,
     .flags = FL_OPT, .opt = offsetof(S, has_python)},
};
#undef S

#define H struct snap_heap
static const struct farr sites_a = {
    .elem = site_f, .nelem = NELEM(site_f), .stride = sizeof(struct snap_heap_site),
    .max = SNAP_HEAP_SITES, .list = true, .counted = true,
};
static const struct field heap_f[] = {
    F_U64(H, "sample_bytes", sample_bytes),
    {.key = "sites", .type = T_ARR, .off = offsetof(H, sites), .arr = &sites_a, .flags = FL_REQ},
    F_U64(H, "sampled_live_bytes", sampled_live_bytes),
    F_U64(H, "live_samples", live_samples),
    F_U64(H, "sites_used", sites_used),
    F_U64(H, "other_samples", other_samples),
    F_U64(H, "dropped", dropped),
    F_STR(H, "unwinder", unwinder),
    F_U64(H, "stacks_cached", stacks_cached),
    F_U64(H, "stacks_full", stacks_full),
    F_STR(H, "python", python),
    F_U64(H, "profiler_resident_bytes", profiler_resident_bytes),
};
#undef H
const struct field snap_heap_doc = DOC(heap_f);

/* ---- the encoders ------------------------------------------------------------- */

size_t snap_error_json(const struct snap_error *e, struct sbuf *b)
{
    return snap_doc_json(&snap_error_doc, e, b);
}

size_t snap_error_json_max(void)
{
    return snap_doc_json_max(&snap_error_doc, 0);
}

size_t snap_trim_json(const struct snap_trim *t, struct sbuf *b)
{
    return snap_doc_json(&snap_trim_doc, t, b);
}

size_t snap_trim_json_max(void)
{
    return snap_doc_json_max(&snap_trim_doc, 0);
}

size_t snap_config_json(const struct snap_config *c, struct sbuf *b)
{
    return snap_doc_json(&snap_config_doc, c, b);
}

size_t snap_config_json_max(void)
{
    return snap_doc_json_max(&snap_config_doc, 0);
}

size_t snap_heap_json(const struct snap_heap *h, struct sbuf *b)
{
    return snap_doc_json(&snap_heap_doc, h, b);
}

size_t snap_heap_json_max(unsigned nsites)
{
    return snap_doc_json_max(&snap_heap_doc, nsites);
}
