/* answer.c: the answers to the stats socket's requests: stats, metrics,
 * trim (at most one a second), heap N (symbolized here, on the stats
 * thread, holding no lock of ours), config (config_show.c, with the values
 * as given and the run directory as placed), version, help and the errors.
 * Requests are classified by snap_parse_request (request.c, fuzzed). Writes
 * only into the buffer its caller gives; never allocates. */
#define _GNU_SOURCE
#include "answer.h"

#include <string.h>

#include "alloc.h"
#include "answerjson.h"
#include "config_show.h"
#include "heapprof.h"
#include "listener.h"
#include "log.h"
#include "memmon.h"
#include "reshim.h"

#define MS_NS 1000000ull
#define TRIM_GAP_NS 1000000000ull /* requested trims: at most one a second */

/* The raw values of the RESHIM_ variables (for `config`). */
#define RAW_POOL 8192
#define RAW_ONE 1024
_Static_assert(RAW_ONE <= SNAP_CONFIG_VALUE_MAX, "a value as given fits the config answer");
static char raw_pool[RAW_POOL];
static uint16_t raw_at[V_COUNT];
static bool raw_have[V_COUNT];
static uint64_t last_trim_ns;

void answer_init(reshim_getenv_fn get, void *ctx)
{
    const struct reshim_config *cfg = reshim_cfg();
    size_t at = 0;
    for (int v = 0; v < V_COUNT; v++) {
        raw_have[v] = false;
        if (cfg->source[v] == SRC_DEFAULT)
            continue;
        const char *s = get(ctx, reshim_config_names[v]);
        if (!s)
            continue;
        size_t n = strnlen(s, RAW_ONE - 1);
        if (at + n + 1 > RAW_POOL)
            break;
        memcpy(raw_pool + at, s, n);
        raw_pool[at + n] = 0;
        raw_at[v] = (uint16_t)at;
        raw_have[v] = true;
        at += n + 1;
    }
}

void answer_forget(void)
{
    last_trim_ns = 0;
}

static bool begin(struct answer *a, size_t need)
{
    size_t cap;
    char *p = a->room(a->ctx, need, &cap);
    if (!p)
        return false;
    sb_init(&a->b, p, cap);
    return true;
}

bool answer_error(struct answer *a, const char *msg)
{
    struct snap_error e = {.has_error = true};
    snap_word(e.error, sizeof e.error, msg);
    if (!begin(a, ANSWER_SMALL))
        return false;
    snap_error_json(&e, &a->b);
    return true;
}

/* An answer that did not fit its buffer (its size was estimated). */
static bool finish(struct answer *a)
{
    return !a->b.overflow || answer_error(a, "internal error: the answer did not fit its buffer");
}

static bool text(struct answer *a, const char *line)
{
    if (!begin(a, strlen(line) + 2))
        return false;
    sb_str(&a->b, line);
    sb_str(&a->b, "\n");
    return true;
}

bool answer_stats(struct answer *a, const struct reshim_snapshot *s)
{
    if (!begin(a, snap_json_max(s->ndest)))
        return false;
    snap_json(s, &a->b);
    return finish(a);
}

static bool metrics(struct answer *a, const struct reshim_snapshot *s)
{
    const struct reshim_snapshot *const one[1] = {s};
    if (!begin(a, snap_prometheus_max(one, 1)))
        return false;
    snap_prometheus(one, 1, &a->b);
    return finish(a);
}

static bool trim(struct answer *a, uint64_t now)
{
    if (last_trim_ns && now - last_trim_ns < TRIM_GAP_NS)
        return answer_error(a, "a trim ran less than 1 s ago; try again in a second");
    last_trim_ns = now;
    uint64_t before = memmon_rss_read(), t0 = reshim_now_ns();
    int64_t released = memmon_trim(false);
    uint64_t t1 = reshim_now_ns(), after = memmon_rss_read();
    a->done_ns = t1;
    if (released < 0) {
        char msg[128];
#ifdef RESHIM_MUSL
        reshim_format(msg, sizeof msg, "no trim: musl's allocator (%s) returns freed memory "
                      "itself and has no trim entry point", alloc_next_name());
#else
        reshim_format(msg, sizeof msg, "no trim: the allocator (%s) offers none",
                      alloc_next_name());
#endif
        return answer_error(a, msg);
    }
    struct snap_trim t = {(uint64_t)released, before, after, (t1 - t0) / MS_NS};
    if (!begin(a, snap_trim_json_max()))
        return false;
    snap_trim_json(&t, &a->b);
    return finish(a);
}

/* The stats thread's only (53 KiB: not on its 128 KiB stack). */
static struct snap_config config_shown;

static bool config(struct answer *a)
{
    /* The run directory as placed (a uid change may have moved it). */
    struct reshim_config shown = *reshim_cfg();
    const char *placed = listener_run_dir();
    if (placed[0])
        snap_word(shown.run_dir, sizeof shown.run_dir, placed);
    const char *given[V_COUNT];
    for (int v = 0; v < V_COUNT; v++)
        given[v] = raw_have[v] ? raw_pool + raw_at[v] : NULL;
    if (!begin(a, config_show_json_max(&shown, given)))
        return false;
    config_show_fill(&config_shown, &shown, given);
    snap_config_json(&config_shown, &a->b);
    return finish(a);
}

/* `heap N`: the top N sampled sites, symbolized here (dladdr). */
static bool heap(struct answer *a, unsigned n)
{
    if (!heapprof_ready())
        return answer_error(a, heapprof_off_reason());
    GUARD_ENTER();
    bool ok = false;
    for (int pass = 0; pass < 2 && !ok; pass++) {
        if (!begin(a, pass ? heapprof_json_max(n) : heapprof_json_guess(n))) {
            GUARD_LEAVE();
            return false;
        }
        ok = heapprof_json(&a->b, n);
    }
    GUARD_LEAVE();
    return ok || answer_error(a, "internal error: the answer did not fit its buffer");
}

static bool unknown(struct answer *a, const char *line, size_t len)
{
    if (!begin(a, ANSWER_SMALL))
        return false;
    snap_unknown_request(&a->b, line, len);
    return true;
}

enum answer_result answer_request(struct answer *a, const char *line, size_t len,
                                  const struct reshim_snapshot *(*snapshot)(void), uint64_t now,
                                  uint32_t *watch_ms)
{
    uint64_t v;
    bool ok = true;
    a->done_ns = 0;
    switch (snap_parse_request(line, len, &v)) {
    case SREQ_BLANK:
        return ANSWER_NONE; /* blank lines are ignored */
    case SREQ_STATS:
        ok = answer_stats(a, snapshot());
        break;
    case SREQ_METRICS:
        ok = metrics(a, snapshot());
        break;
    case SREQ_CONFIG:
        ok = config(a);
        break;
    case SREQ_VERSION:
        ok = text(a, "reshim " RESHIM_VERSION);
        break;
    case SREQ_HELP:
        ok = text(a, "requests: stats, watch MS, metrics, trim, heap N, config, version, help");
        break;
    case SREQ_TRIM:
        ok = trim(a, now);
        break;
    case SREQ_WATCH:
        if (!v) { /* the default period: RESHIM_INTERVAL */
            v = reshim_cfg()->interval_ns / MS_NS;
            v = v < SREQ_WATCH_MIN_MS ? SREQ_WATCH_MIN_MS
                : v > SREQ_WATCH_MAX_MS ? SREQ_WATCH_MAX_MS
                                        : v;
        }
        *watch_ms = (uint32_t)v;
        return ANSWER_WATCH;
    case SREQ_BAD_WATCH:
        ok = answer_error(a, "watch MS: MS must be a whole number of milliseconds from 10 to "
                             "3600000");
        break;
    case SREQ_HEAP:
        ok = heap(a, (unsigned)v);
        break;
    case SREQ_BAD_HEAP:
        ok = answer_error(a, "heap N: N must be a whole number from 1 to 1000");
        break;
    case SREQ_UNKNOWN:
        ok = unknown(a, line, len);
        break;
    }
    return ok ? ANSWER_TEXT : ANSWER_NOMEM;
}
