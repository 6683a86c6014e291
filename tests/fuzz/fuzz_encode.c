/* fuzz_encode: the JSON and Prometheus encoders (shim/snapjson.c, prom.c) fed hostile
 * snapshots: every string field (process name, version, destinations,
 * directions, errors, breaker and memory words) is raw fuzzed bytes, full
 * arrays without a NUL included, every number any bit pattern (doubles:
 * NaN, infinities, subnormals, 1e308). Heap site names (any bytes a symbol
 * table can hold) go through the `heap N` answer's table and back.
 *
 * Checked on the JSON:
 *   - it fits snap_json_max() and is one line;
 *   - it is strict JSON (fuzz_common.h: RFC 8259 grammar, valid UTF-8, no
 *     raw control byte, every escape well-formed);
 *   - its numbers have no exponent;
 *   - snap_parse_json (the CLI's one reader) reads it back to the same snapshot (strings may be cut
 *     at a character boundary when U+FFFD made them longer than the array),
 *     and encoding that snapshot gives the same text when nothing was cut.
 * Checked on the Prometheus text (1 or 2 snapshots):
 *   - it fits snap_prometheus_max(), is valid UTF-8 and ends in a newline;
 *   - each line is "# HELP name text", "# TYPE name counter|gauge" or one
 *     sample "name{label="value",...} number", names [a-zA-Z_:][a-zA-Z0-9_:]*,
 *     label names [a-zA-Z_][a-zA-Z0-9_]*, values with only \\ \" \n escapes;
 *   - every sample's family had its HELP and TYPE lines first, each family
 *     once; the pid and comm labels come back as the snapshot's. */
#include <inttypes.h>
#include <math.h>

#include "answerjson.h"
#include "fuzz_common.h"
#include "snapshot.h"

#define MAX_SNAPS 2
#define MAX_DESTS 5

static struct reshim_snapshot snaps[MAX_SNAPS], back;

static void fill(struct rd *r, struct reshim_snapshot *s, unsigned ndest)
{
    memset(s, 0, sizeof *s);
    s->pid = (int)(uint32_t)rd_u64(r);
    rd_field(r, s->comm, sizeof s->comm);
    rd_field(r, s->version, sizeof s->version);
    s->uptime_s = rd_double(r);
    s->start_time_s = rd_double(r);
    s->time_s = rd_double(r);
    for (int c = 0; c < SNAP_CLASSES; c++) {
        s->net[c].calls = rd_u64(r);
        s->net[c].failures = rd_u64(r);
        s->net[c].gave_up = rd_u64(r);
    }
    s->dns_stale = rd_u64(r);
    s->mem.heap_live_bytes = (int64_t)rd_u64(r);
    s->mem.rss_bytes = rd_u64(r);
    s->mem.budget_bytes = rd_u64(r);
    rd_field(r, s->mem.budget_source, sizeof s->mem.budget_source);
    rd_field(r, s->mem.state, sizeof s->mem.state);
    rd_field(r, s->mem.policy, sizeof s->mem.policy);
    s->mem.enomem = rd_u64(r);
    s->ndest = ndest;
    for (unsigned i = 0; i < ndest; i++) {
        struct snap_dest *d = &s->dest[i];
        rd_field(r, d->dest, sizeof d->dest);
        rd_field(r, d->dir, sizeof d->dir);
        rd_field(r, d->last_error, sizeof d->last_error);
        rd_field(r, d->breaker, sizeof d->breaker);
        d->connect.calls = rd_u64(r);
        d->bytes_out = rd_u64(r);
        d->skipped_filter = rd_u64(r);
    }
}

/* The field's text as the encoders see it: at most size - 1 bytes, to a NUL. */
static size_t flen(const char *s, size_t size)
{
    return strnlen(s, size - 1);
}

/* What a string field should decode to. */
static const char *want_str(const char *field, size_t size, char *buf)
{
    u8_repair(field, flen(field, size), buf);
    return buf;
}

#define STR_BUF (3 * SNAP_HEAP_SYM_MAX + 1) /* > 3 * SNAP_DEST_MAX + 1 */

/* Numbers without an exponent: outside the strings, no 'e' or 'E' (the
 * stats object has no true or false). */
static void check_no_exponent(const char *text, size_t len)
{
    bool in = false;
    for (size_t i = 0; i < len; i++) {
        if (in && text[i] == '\\')
            i++;
        else if (text[i] == '"')
            in = !in;
        else if (!in)
            CHECK(text[i] != 'e' && text[i] != 'E', "an exponent at %zu: %s", i, text);
    }
}

/* A string read back by snap_parse_json: the expected text, or a prefix of
 * it cut at a character boundary because the array was full. Returns true
 * when it was cut. */
static bool check_back_str(const char *what, const char *got, size_t size, const char *field)
{
    char want[STR_BUF];
    want_str(field, size, want);
    size_t g = strlen(got), w = strlen(want);
    CHECK(g < size, "%s: %zu bytes in %zu", what, g, size);
    CHECK(g <= w && memcmp(got, want, g) == 0, "%s: '%s' is not a prefix of '%s'", what, got,
          want);
    if (g == w)
        return false;
    size_t next = u8_len((const unsigned char *)want + g, w - g);
    CHECK(next && g + next > size - 1, "%s: cut at %zu of '%s' with room left", what, g, want);
    return true;
}

static void check_round_trip(const struct reshim_snapshot *s, const char *text, size_t len)
{
    const char *err = NULL;
    CHECK(snap_parse_json(text, len, &back, &err) == 0, "snap_parse_json: %s", err);
    bool cut = false;
    CHECK(back.pid == s->pid, "pid");
    cut |= check_back_str("comm", back.comm, sizeof back.comm, s->comm);
    cut |= check_back_str("version", back.version, sizeof back.version, s->version);
    cut |= check_back_str("budget_source", back.mem.budget_source, SNAP_WORD_MAX,
                          s->mem.budget_source);
    cut |= check_back_str("state", back.mem.state, SNAP_WORD_MAX, s->mem.state);
    cut |= check_back_str("policy", back.mem.policy, SNAP_WORD_MAX, s->mem.policy);
    CHECK(back.ndest == s->ndest, "ndest %u, wanted %u", back.ndest, s->ndest);
    for (unsigned i = 0; i < s->ndest; i++) {
        const struct snap_dest *d = &s->dest[i], *b = &back.dest[i];
        cut |= check_back_str("dest", b->dest, sizeof b->dest, d->dest);
        cut |= check_back_str("dir", b->dir, sizeof b->dir, d->dir);
        cut |= check_back_str("last_error", b->last_error, sizeof b->last_error, d->last_error);
        cut |= check_back_str("breaker", b->breaker, sizeof b->breaker, d->breaker);
        CHECK(b->connect.calls == d->connect.calls && b->bytes_out == d->bytes_out &&
                  b->skipped_filter == d->skipped_filter, "dest %u numbers", i);
    }
    for (int c = 0; c < SNAP_CLASSES; c++)
        CHECK(memcmp(&back.net[c], &s->net[c], sizeof s->net[c]) == 0, "net %d", c);
    CHECK(back.dns_stale == s->dns_stale && back.mem.heap_live_bytes == s->mem.heap_live_bytes &&
              back.mem.rss_bytes == s->mem.rss_bytes && back.mem.enomem == s->mem.enomem,
          "mem numbers");
    bool big = false;
    const double dv[3] = {s->uptime_s, s->start_time_s, s->time_s};
    const double bv[3] = {back.uptime_s, back.start_time_s, back.time_s};
    for (int i = 0; i < 3; i++) {
        double v = isnan(dv[i]) || isinf(dv[i]) ? 0 : dv[i];
        /* Up to 2^53 / 1000 the 3 decimals read back to the double nearest
         * them; above, the parser is within a few units in the last place. */
        big |= fabs(v) >= 9e12;
        CHECK(fabs(bv[i] - v) <= 0.0005 + fabs(v) * 1e-14, "double %d: %.17g for %.17g", i,
              bv[i], v);
    }
    if (cut || big)
        return;
    /* Nothing cut: encoding what was read gives the same text, but for the
     * bytes that were not UTF-8: written \ufffd at first, U+FFFD itself
     * (raw) the second time. */
    static char again[1 << 16], norm[1 << 16];
    struct sbuf b;
    sb_init(&b, again, sizeof again);
    snap_json(&back, &b);
    size_t nl = 0;
    for (size_t i = 0; i < len;) {
        if (text[i] == '\\' && i + 6 <= len && memcmp(text + i + 1, "ufffd", 5) == 0) {
            memcpy(norm + nl, "\xef\xbf\xbd", 3);
            nl += 3;
            i += 6;
        } else if (text[i] == '\\') {
            memcpy(norm + nl, text + i, 2);
            nl += 2;
            i += 2;
        } else {
            norm[nl++] = text[i++];
        }
    }
    CHECK(!b.overflow && b.len == nl && memcmp(again, norm, nl) == 0,
          "re-encoded differently:\n%s\n%s", text, again);
}

/* ---- Prometheus ---- */

static bool name_start(int c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static bool name_char(int c)
{
    return name_start(c) || (c >= '0' && c <= '9');
}

static size_t metric_name(const char *s, size_t n)
{
    size_t i = 0;
    if (i < n && (name_start((unsigned char)s[i]) || s[i] == ':'))
        i++;
    else
        return 0;
    while (i < n && (name_char((unsigned char)s[i]) || s[i] == ':'))
        i++;
    return i;
}

struct fam_seen {
    char name[96];
    bool help, type;
};

static void check_prom_line(const char *l, size_t n, struct fam_seen *fams, int *nfams,
                            const struct reshim_snapshot *const *ss, int nsnap)
{
    if (n >= 7 && (memcmp(l, "# HELP ", 7) == 0 || memcmp(l, "# TYPE ", 7) == 0)) {
        bool help = l[2] == 'H';
        size_t k = metric_name(l + 7, n - 7);
        CHECK(k && k < sizeof fams[0].name && 7 + k < n && l[7 + k] == ' ', "bad header %.*s",
              (int)n, l);
        if (!help) {
            const char *t = l + 8 + k;
            size_t tl = n - 8 - k;
            CHECK((tl == 7 && memcmp(t, "counter", 7) == 0) ||
                      (tl == 5 && memcmp(t, "gauge", 5) == 0),
                  "type %.*s", (int)tl, t);
        }
        struct fam_seen *f = NULL;
        for (int i = 0; i < *nfams; i++)
            if (strlen(fams[i].name) == k && memcmp(fams[i].name, l + 7, k) == 0)
                f = &fams[i];
        if (!f) {
            CHECK(help, "TYPE before HELP: %.*s", (int)n, l);
            CHECK(*nfams < 64, "too many families");
            f = &fams[(*nfams)++];
            memset(f, 0, sizeof *f);
            memcpy(f->name, l + 7, k);
            f->name[k] = 0;
        }
        CHECK(help ? !f->help : (f->help && !f->type), "header repeated: %.*s", (int)n, l);
        if (help)
            f->help = true;
        else
            f->type = true;
        /* A family's samples follow its headers: the previous family is done. */
        for (int i = 0; i < *nfams - 1; i++)
            CHECK(fams[i].type, "family %s has no TYPE", fams[i].name);
        return;
    }
    CHECK(n && l[0] != '#', "comment line %.*s", (int)n, l);
    size_t k = metric_name(l, n);
    CHECK(k && k < n && l[k] == '{', "sample without labels: %.*s", (int)n, l);
    CHECK(*nfams > 0 && strlen(fams[*nfams - 1].name) == k &&
              memcmp(fams[*nfams - 1].name, l, k) == 0 && fams[*nfams - 1].type,
          "sample outside its family: %.*s", (int)n, l);
    size_t i = k + 1;
    char comm[3 * SNAP_COMM_MAX + 1] = "", pid[32] = "";
    bool has_comm = false;
    for (int nl = 0;; nl++) {
        size_t st = i;
        if (i < n && name_start((unsigned char)l[i]))
            while (i < n && name_char((unsigned char)l[i]))
                i++;
        CHECK(i > st && i + 1 < n && l[i] == '=' && l[i + 1] == '"', "label %d in %.*s", nl,
              (int)n, l);
        size_t nlen = i - st;
        const char *lname = l + st;
        i += 2;
        char val[3 * SNAP_DEST_MAX + 1];
        size_t vl = 0;
        for (;;) {
            CHECK(i < n, "unterminated label value in %.*s", (int)n, l);
            char c = l[i++];
            if (c == '"')
                break;
            if (c == '\\') {
                CHECK(i < n && (l[i] == '\\' || l[i] == '"' || l[i] == 'n'), "escape in %.*s",
                      (int)n, l);
                c = l[i] == 'n' ? '\n' : l[i];
                i++;
            }
            CHECK(vl < sizeof val - 1, "label value too long in %.*s", (int)n, l);
            val[vl++] = c;
        }
        val[vl] = 0;
        if (nlen == 4 && memcmp(lname, "comm", 4) == 0) {
            memcpy(comm, val, vl + 1);
            has_comm = true;
        } else if (nlen == 3 && memcmp(lname, "pid", 3) == 0) {
            CHECK(vl < sizeof pid, "pid label");
            memcpy(pid, val, vl + 1);
        }
        CHECK(i < n, "cut sample %.*s", (int)n, l);
        if (l[i] == ',') {
            i++;
            continue;
        }
        CHECK(l[i] == '}', "after label %d: %.*s", nl, (int)n, l);
        i++;
        break;
    }
    CHECK(i < n && l[i] == ' ', "no value in %.*s", (int)n, l);
    i++;
    size_t v0 = i;
    if (i < n && l[i] == '-')
        i++;
    size_t d0 = i;
    while (i < n && l[i] >= '0' && l[i] <= '9')
        i++;
    CHECK(i > d0, "value %.*s", (int)(n - v0), l + v0);
    if (i < n && l[i] == '.') {
        i++;
        d0 = i;
        while (i < n && l[i] >= '0' && l[i] <= '9')
            i++;
        CHECK(i > d0, "fraction %.*s", (int)(n - v0), l + v0);
    }
    CHECK(i == n, "after the value: %.*s", (int)n, l);
    /* pid and comm name one of the snapshots. */
    CHECK(has_comm && pid[0], "no pid or comm: %.*s", (int)n, l);
    bool found = false;
    for (int s = 0; s < nsnap && !found; s++) {
        char want[3 * SNAP_COMM_MAX + 1], p[32];
        u8_repair(ss[s]->comm, flen(ss[s]->comm, sizeof ss[s]->comm), want);
        snprintf(p, sizeof p, "%d", ss[s]->pid);
        found = strcmp(want, comm) == 0 && strcmp(p, pid) == 0;
    }
    CHECK(found, "pid %s comm '%s' is no snapshot's", pid, comm);
}

static void check_prometheus(const struct reshim_snapshot *const *ss, int n)
{
    size_t max = snap_prometheus_max(ss, (size_t)n);
    char *buf = malloc(max);
    CHECK(buf, "no memory for %zu", max);
    struct sbuf b;
    sb_init(&b, buf, max);
    size_t len = snap_prometheus(ss, (size_t)n, &b);
    CHECK(!b.overflow && len == b.len && len < max, "overflow: %zu of %zu", len, max);
    CHECK(u8_valid(buf, len), "not UTF-8");
    CHECK(len && buf[len - 1] == '\n', "no final newline");
    CHECK(strlen(buf) == len, "a NUL in the text");
    struct fam_seen fams[64];
    int nfams = 0;
    for (size_t at = 0; at < len;) {
        const char *nl = memchr(buf + at, '\n', len - at);
        size_t ln = (size_t)(nl - (buf + at));
        check_prom_line(buf + at, ln, fams, &nfams, ss, n);
        at += ln + 1;
    }
    CHECK(nfams >= 20, "only %d families", nfams);
    free(buf);
}

/* ---- heap site names, through the heap answer's table ---- */

static void check_site_names(struct rd *r)
{
    static struct snap_heap_site site, room[SNAP_HEAP_SITES];
    static char out[1 << 17];
    struct snap_heap h, hback;
    memset(&h, 0, sizeof h);
    memset(&site, 0, sizeof site);
    int k = 1 + rd_u8(r) % 4;
    for (int i = 0; i < k; i++) {
        rd_field(r, site.stack[i], SNAP_HEAP_SYM_MAX);
        site.stack[i][SNAP_HEAP_SYM_MAX - 1] = 0; /* the library's names are C strings */
    }
    site.nstack = (unsigned)k;
    h.sites.p = &site;
    h.sites.n = 1;
    size_t max = snap_heap_json_max(1);
    CHECK(max <= sizeof out, "snap_heap_json_max %zu", max);
    struct sbuf b;
    sb_init(&b, out, max);
    snap_heap_json(&h, &b);
    CHECK(!b.overflow, "site names overflowed");
    const char *why = json_strict(out, b.len, 6);
    CHECK(!why, "%s: %s", why, out);
    const char *err = NULL;
    CHECK(snap_heap_parse(out, b.len, &hback, room, &err) == 0, "heap answer refused: %s", err);
    CHECK(hback.sites.n == 1 && room[0].nstack == (unsigned)k, "stack of %u", room[0].nstack);
    for (int i = 0; i < k; i++)
        check_back_str("frame", room[0].stack[i], SNAP_HEAP_SYM_MAX, site.stack[i]);
    const char *names[1] = {site.stack[0]};

    /* The same names as Prometheus label values. */
    char lab[700];
    sb_init(&b, lab, sizeof lab);
    sb_prom_label(&b, names[0]);
    CHECK(!b.overflow && u8_valid(lab, b.len) && !memchr(lab, '\n', b.len), "label: %s", lab);
    char dec[700], want[3 * SNAP_HEAP_SYM_MAX + 1];
    size_t dl = 0;
    for (size_t i = 0; i < b.len; i++) {
        char c = lab[i];
        if (c == '"')
            CHECK(false, "raw quote in label %s", lab);
        if (c == '\\') {
            CHECK(i + 1 < b.len && strchr("\\\"n", lab[i + 1]), "escape in label %s", lab);
            c = lab[++i] == 'n' ? '\n' : lab[i];
        }
        dec[dl++] = c;
    }
    dec[dl] = 0;
    u8_repair(names[0], strlen(names[0]), want);
    CHECK(strcmp(dec, want) == 0, "label '%s', wanted '%s'", dec, want);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct rd r = {data, size};
    uint8_t head = rd_u8(&r);
    int nsnap = 1 + head % MAX_SNAPS;
    unsigned ndest = (head >> 2) % (MAX_DESTS + 1);
    for (int i = 0; i < nsnap; i++)
        fill(&r, &snaps[i], i ? ndest / 2 : ndest);

    static char text[1 << 16];
    const struct reshim_snapshot *s = &snaps[0];
    size_t max = snap_json_max(s->ndest);
    CHECK(max <= sizeof text, "snap_json_max %zu", max);
    struct sbuf b;
    sb_init(&b, text, max);
    size_t len = snap_json(s, &b);
    CHECK(!b.overflow && len == b.len && len < max, "JSON overflow: %zu of %zu", len, max);
    CHECK(len && text[len - 1] == '\n' && !memchr(text, '\n', len - 1), "not one line");
    CHECK(strlen(text) == len, "a NUL in the JSON");
    const char *why = json_strict(text, len, 8);
    CHECK(!why, "not strict JSON (%s): %s", why, text);
    check_no_exponent(text, len);
    check_round_trip(s, text, len);

    const struct reshim_snapshot *ss[MAX_SNAPS];
    for (int i = 0; i < nsnap; i++)
        ss[i] = &snaps[i];
    check_prometheus(ss, nsnap);
    check_site_names(&r);
    return 0;
}
