/* fuzz_snapjson: snap_parse_json (shim/jsonparse.c), the parser of the `stats`
 * object that the CLI applies to whatever a process answers, on arbitrary
 * bytes.
 *
 * Checked: no crash or undefined behaviour, no read past len, bounded
 * recursion; on failure a reason and an all-zero snapshot; on success every
 * string field NUL-terminated and valid UTF-8, at most SNAP_DESTS
 * destinations; the snapshot encodes (snap_json) to strict JSON within
 * snap_json_max(), which parses back to the same snapshot (doubles within
 * the 3 decimals written) and encodes to the same text again. */
#include <math.h>

#include "fuzz_common.h"
#include "snapshot.h"

static struct reshim_snapshot s1, s2, zero;
static char text1[1 << 21], text2[1 << 21];

static void check_str(const char *what, const char *f, size_t size)
{
    size_t n = strnlen(f, size);
    CHECK(n < size, "%s not terminated", what);
    CHECK(u8_valid(f, n), "%s not UTF-8", what);
}

static void check_strings(const struct reshim_snapshot *s)
{
    check_str("comm", s->comm, sizeof s->comm);
    check_str("version", s->version, sizeof s->version);
    check_str("budget_source", s->mem.budget_source, SNAP_WORD_MAX);
    check_str("state", s->mem.state, SNAP_WORD_MAX);
    check_str("policy", s->mem.policy, SNAP_WORD_MAX);
    CHECK(s->ndest <= SNAP_DESTS, "%u destinations", s->ndest);
    for (unsigned i = 0; i < s->ndest; i++) {
        check_str("dest", s->dest[i].dest, SNAP_DEST_MAX);
        check_str("dir", s->dest[i].dir, sizeof s->dest[i].dir);
        check_str("last_error", s->dest[i].last_error, SNAP_WORD_MAX);
        check_str("breaker", s->dest[i].breaker, SNAP_WORD_MAX);
    }
}

static size_t encode(const struct reshim_snapshot *s, char *buf)
{
    size_t max = snap_json_max(s->ndest);
    CHECK(max <= sizeof text1, "snap_json_max %zu", max);
    struct sbuf b;
    sb_init(&b, buf, max);
    size_t len = snap_json(s, &b);
    CHECK(!b.overflow && len == b.len && len < max, "overflow: %zu of %zu", len, max);
    const char *why = json_strict(buf, len, 8);
    CHECK(!why, "not strict JSON (%s): %s", why, buf);
    return len;
}

static bool close_to(double a, double b)
{
    if (isnan(b) || isinf(b))
        b = 0;
    return fabs(a - b) <= 0.0005 + fabs(b) * 1e-14;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *err = NULL;
    if (snap_parse_json((const char *)data, size, &s1, &err) != 0) {
        CHECK(err && err[0], "refused without a reason");
        CHECK(memcmp(&s1, &zero, sizeof s1) == 0, "a refused input left data");
        return 0;
    }
    CHECK(err && !err[0], "accepted with a reason: %s", err);
    check_strings(&s1);
    size_t len1 = encode(&s1, text1);
    CHECK(snap_parse_json(text1, len1, &s2, &err) == 0, "its encoding refused: %s", err);
    check_strings(&s2);
    /* The same snapshot: doubles within their 3 decimals, the rest exact. */
    CHECK(close_to(s2.uptime_s, s1.uptime_s) && close_to(s2.start_time_s, s1.start_time_s) &&
              close_to(s2.time_s, s1.time_s),
          "doubles %.17g %.17g %.17g", s1.uptime_s, s1.start_time_s, s1.time_s);
    bool big = fabs(s1.uptime_s) >= 9e12 || fabs(s1.start_time_s) >= 9e12 ||
               fabs(s1.time_s) >= 9e12;
    s2.uptime_s = s1.uptime_s;
    s2.start_time_s = s1.start_time_s;
    s2.time_s = s1.time_s;
    CHECK(memcmp(&s1, &s2, sizeof s1) == 0, "read back differently");
    if (!big) {
        CHECK(snap_parse_json(text1, len1, &s2, &err) == 0, "refused: %s", err);
        size_t len2 = encode(&s2, text2);
        CHECK(len2 == len1 && memcmp(text1, text2, len1) == 0, "encoded differently:\n%s\n%s",
              text1, text2);
    }
    return 0;
}
