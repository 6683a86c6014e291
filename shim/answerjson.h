/* answerjson.h: the answers of the stats socket other than `stats` (heap
 * N, config, trim, and the {"error":..} of any request) as plain values,
 * and their JSON. Their key tables (answerjson.c) are walked by the one
 * encoder (snapjson.c), its size bound and the one parser (jsonparse.c,
 * CLI only), as the stats object's are: the library writes these structs
 * and the CLI reads them back by the same keys. Pure: no I/O, no
 * allocation. Layouts in libreshim(7). */
#ifndef RESHIM_ANSWERJSON_H
#define RESHIM_ANSWERJSON_H

#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "snapshot.h"

/* {"error":"..."}: the answer to a request that failed. */
#define SNAP_ERROR_MAX 1024
struct snap_error {
    bool has_error;               /* the key was there (reading) */
    char error[SNAP_ERROR_MAX];
};

/* trim: {"trimmed_bytes":..,"rss_before_bytes":..,"rss_after_bytes":..,"ms":..} */
struct snap_trim {
    uint64_t trimmed_bytes, rss_before_bytes, rss_after_bytes, ms;
};

/* config: {"RESHIM_X":{"value":"..","source":".."[,"given":".."]},...} in
 * the order of reshim_config_names; given only for an invalid value. The
 * library keeps 1023 bytes of each value as given (answer.c). */
#define SNAP_CONFIG_VALUE_MAX 1024
struct snap_config_var {
    bool present;                 /* written / read */
    char value[SNAP_CONFIG_VALUE_MAX];
    char source[SNAP_WORD_MAX];   /* "default", "env", "invalid" */
    bool has_given;
    char given[SNAP_CONFIG_VALUE_MAX];
};
struct snap_config {
    struct snap_config_var var[V_COUNT];
};

/* heap N: {"sample_bytes":..,"sites":[{"live_bytes":..,"live_bytes_sd":..,
 * "live_objects":..,"allocs":..,"samples":..,"live_samples":..,
 * "stack":["f+0x1 (m)",..],"pcs":[..][,"python":[{"file":..,"function":..,
 * "line":..},..]]},..],"sampled_live_bytes":..,"live_samples":..,
 * "sites_used":..,"other_samples":..,"dropped":..,"unwinder":..,
 * "stacks_cached":..,"stacks_full":..,"python":..,"profiler_resident_bytes":..} */
#define SNAP_HEAP_SITES SREQ_HEAP_MAX_N
#define SNAP_HEAP_DEPTH 24       /* native frames of a site (heapprof.c) */
#define SNAP_HEAP_SYM_MAX 200    /* bytes of one symbolized frame */
#define SNAP_HEAP_PY_DEPTH 16    /* Python frames of a site (pyheap.h) */
#define SNAP_HEAP_PY_STR_MAX 256 /* a Python file or function name (heapsample.h's 255) */
struct snap_heap_pyframe {
    char file[SNAP_HEAP_PY_STR_MAX];
    char function[SNAP_HEAP_PY_STR_MAX];
    uint64_t line;
};
struct snap_heap_site {
    uint64_t live_bytes, live_bytes_sd, live_objects, allocs, samples, live_samples;
    unsigned nstack, npcs, npython;
    char stack[SNAP_HEAP_DEPTH + 1][SNAP_HEAP_SYM_MAX]; /* "[other]" and its frames */
    uint64_t pcs[SNAP_HEAP_DEPTH];
    bool has_python;                                     /* npython > 0 */
    struct snap_heap_pyframe python[SNAP_HEAP_PY_DEPTH];
};
struct snap_heap {
    uint64_t sample_bytes;
    struct snap_list sites; /* of struct snap_heap_site */
    uint64_t sampled_live_bytes, live_samples, sites_used, other_samples, dropped;
    char unwinder[64];
    uint64_t stacks_cached, stacks_full; /* stacks walked by cfiwalk's rules, by the unwinder */
    char python[64];        /* the state of the CPython hook */
    uint64_t profiler_resident_bytes;
};

/* Each answer: _json writes it, one line ending in "\n" (the length
 * written; b->overflow tells a cut); _json_max is a buffer size that always
 * fits (heap: for nsites sites); _parse reads it back (any key order,
 * unknown keys ignored; the keys of FL_REQ, see answerjson.c, required),
 * 0, or -1 with a reason in *err and out all zero. Never reads past len. */
size_t snap_error_json(const struct snap_error *e, struct sbuf *b);
size_t snap_error_json_max(void);
int snap_error_parse(const char *text, size_t len, struct snap_error *out, const char **err);

size_t snap_trim_json(const struct snap_trim *t, struct sbuf *b);
size_t snap_trim_json_max(void);
int snap_trim_parse(const char *text, size_t len, struct snap_trim *out, const char **err);

size_t snap_config_json(const struct snap_config *c, struct sbuf *b);
size_t snap_config_json_max(void);
int snap_config_parse(const char *text, size_t len, struct snap_config *out, const char **err);

size_t snap_heap_json(const struct snap_heap *h, struct sbuf *b);
size_t snap_heap_json_max(unsigned nsites);
/* sites: room for SNAP_HEAP_SITES (out->sites.p points to it). */
int snap_heap_parse(const char *text, size_t len, struct snap_heap *out,
                    struct snap_heap_site *sites, const char **err);

#endif
