/* cgroup.c: the container's memory limit and working set (see cgroup.h).
 * Reads /proc/self/cgroup, /proc/self/mountinfo and the cgroup's memory
 * files with sys.c's raw open/read/close into stack buffers: never
 * allocates, no stdio, no lock, so it can run inside the shim (under its guard) and in unit tests
 * against a fake tree. Runs once at budget resolution, and for the working
 * set once a second at most: nothing here is on a hot path. */
#define _GNU_SOURCE
#include "cgroup.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <string.h>
#include <unistd.h>

#include "sys.h"

/* ---- small helpers ------------------------------------------------------- */

/* dst = a + b (+ c), truncation refused. */
static bool join(char *dst, size_t n, const char *a, const char *b, const char *c)
{
    size_t la = strlen(a), lb = strlen(b), lc = c ? strlen(c) : 0;
    if (la + lb + lc + 1 > n)
        return false;
    memcpy(dst, a, la);
    memcpy(dst + la, b, lb);
    if (c)
        memcpy(dst + la + lb, c, lc);
    dst[la + lb + lc] = 0;
    return true;
}

/* A decimal number, saturating at UINT64_MAX. */
static bool parse_dec(const char *s, uint64_t *v)
{
    while (*s == ' ' || *s == '\t')
        s++;
    if (*s < '0' || *s > '9')
        return false;
    uint64_t x = 0;
    for (; *s >= '0' && *s <= '9'; s++) {
        unsigned d = (unsigned)(*s - '0');
        x = x > (UINT64_MAX - d) / 10 ? UINT64_MAX : x * 10 + d;
    }
    *v = x;
    return *s == 0 || *s == '\n' || *s == ' ';
}

/* A limit file: a number, or "max" (v2: none). 0 = none or unreadable. */
static uint64_t read_limit(const char *dir, const char *file, bool *present)
{
    char path[CG_PATH_MAX + 64], buf[64];
    uint64_t v;
    if (!join(path, sizeof path, dir, "/", file) || sys_read_file(path, buf, sizeof buf) <= 0)
        return 0;
    *present = true;
    if (strncmp(buf, "max", 3) == 0 || !parse_dec(buf, &v))
        return 0;
    return v >= CG_UNLIMITED_V1 ? 0 : v;
}

static uint64_t min_limit(uint64_t a, uint64_t b)
{
    if (!a)
        return b;
    if (!b)
        return a;
    return a < b ? a : b;
}

/* Streams a file line by line through a stack buffer; a line longer than
 * the buffer is skipped whole. fn returns true to stop. */
typedef bool (*line_fn)(char *line, void *ctx);

static int for_each_line(const char *path, line_fn fn, void *ctx)
{
    int fd = sys_open(path, O_RDONLY);
    if (fd < 0)
        return -1;
    char buf[4096];
    size_t have = 0;
    bool skipping = false, stop = false;
    for (;;) {
        ssize_t r = sys_read(fd, buf + have, sizeof buf - 1 - have);
        if (r < 0 && errno == EINTR)
            continue;
        bool eof = r <= 0;
        if (!eof)
            have += (size_t)r;
        size_t start = 0;
        for (size_t i = 0; i < have && !stop; i++) {
            if (buf[i] != '\n')
                continue;
            buf[i] = 0;
            if (!skipping)
                stop = fn(buf + start, ctx);
            skipping = false;
            start = i + 1;
        }
        if (stop)
            break;
        if (eof) {
            if (start < have && !skipping) {
                buf[have] = 0;
                fn(buf + start, ctx);
            }
            break;
        }
        memmove(buf, buf + start, have - start);
        have -= start;
        if (have == sizeof buf - 1) { /* a line longer than the buffer */
            skipping = true;
            have = 0;
        }
    }
    sys_close(fd);
    return 0;
}

/* Splits s at spaces into at most max fields; returns how many. */
static int split(char *s, char **f, int max)
{
    int n = 0;
    while (*s && n < max) {
        while (*s == ' ')
            *s++ = 0;
        if (!*s)
            break;
        f[n++] = s;
        while (*s && *s != ' ')
            s++;
    }
    return n;
}

/* mountinfo escapes space, tab, newline and backslash as \ooo. */
static void unescape(char *s)
{
    char *o = s;
    for (; *s; s++) {
        if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] >= '0' && s[2] <= '7' &&
            s[3] >= '0' && s[3] <= '7') {
            *o++ = (char)((s[1] - '0') * 64 + (s[2] - '0') * 8 + (s[3] - '0'));
            s += 3;
        } else {
            *o++ = *s;
        }
    }
    *o = 0;
}

static bool has_word(const char *list, const char *word)
{
    size_t lw = strlen(word);
    for (const char *p = list; p && *p;) {
        const char *e = strchr(p, ',');
        size_t l = e ? (size_t)(e - p) : strlen(p);
        if (l == lw && memcmp(p, word, l) == 0)
            return true;
        p = e ? e + 1 : NULL;
    }
    return false;
}

/* ---- /proc/self/cgroup ---------------------------------------------------- */

struct own_paths {
    char v1[CG_PATH_MAX]; /* path of the v1 memory hierarchy, "" none */
    char v2[CG_PATH_MAX]; /* path of the v2 "0::" line, "" none */
    bool have_v1, have_v2;
};

static bool on_cgroup_line(char *line, void *ctx)
{
    struct own_paths *o = ctx;
    char *c1 = strchr(line, ':');
    char *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
    if (!c2)
        return false;
    *c1 = 0;
    *c2 = 0;
    const char *id = line, *controllers = c1 + 1, *path = c2 + 1;
    size_t lp = strlen(path);
    if (lp == 0 || lp >= CG_PATH_MAX)
        return false;
    if (strcmp(id, "0") == 0 && *controllers == 0) {
        memcpy(o->v2, path, lp + 1);
        o->have_v2 = true;
    } else if (has_word(controllers, "memory")) {
        memcpy(o->v1, path, lp + 1);
        o->have_v1 = true;
    }
    return false;
}

/* ---- /proc/self/mountinfo ------------------------------------------------- */

struct mount_find {
    int version;             /* 1: cgroup with "memory" in its super options; 2: cgroup2 */
    char point[CG_PATH_MAX]; /* mount point, "" not found */
    char root[CG_PATH_MAX];  /* the mount's root within the hierarchy */
};

static bool on_mount_line(char *line, void *ctx)
{
    struct mount_find *m = ctx;
    char *f[32];
    int n = split(line, f, 32);
    int dash = -1;
    for (int i = 6; i < n; i++)
        if (strcmp(f[i], "-") == 0) {
            dash = i;
            break;
        }
    if (dash < 0 || dash + 1 >= n)
        return false;
    const char *type = f[dash + 1];
    const char *super = dash + 3 < n ? f[dash + 3] : "";
    if (m->version == 2 ? strcmp(type, "cgroup2") != 0
                        : strcmp(type, "cgroup") != 0 || !has_word(super, "memory"))
        return false;
    unescape(f[3]);
    unescape(f[4]);
    if (strlen(f[3]) >= CG_PATH_MAX || strlen(f[4]) >= CG_PATH_MAX)
        return false;
    strcpy(m->root, f[3]);
    strcpy(m->point, f[4]);
    return true;
}

/* dir = root prefix + mount point + (own path less the mount's root). When
 * the own path is outside the mount's root (a cgroup namespace seen through
 * a host mount), the mount point itself. Trailing slashes removed. */
static bool cgroup_dir(const char *rootpfx, const struct mount_find *m, const char *own,
                       char *dir, size_t n)
{
    const char *rel = own;
    size_t lr = strlen(m->root);
    if (strcmp(m->root, "/") != 0) {
        if (strncmp(own, m->root, lr) == 0 && (own[lr] == 0 || own[lr] == '/'))
            rel = own + lr;
        else
            rel = "";
    }
    if (strcmp(rel, "/") == 0)
        rel = "";
    const char *point = strcmp(m->point, "/") == 0 ? "" : m->point;
    if (!join(dir, n, rootpfx, point, rel))
        return false;
    size_t l = strlen(dir);
    while (l > 1 && dir[l - 1] == '/')
        dir[--l] = 0;
    return true;
}

/* ---- limits ---------------------------------------------------------------- */

/* Walks from dir up to the mount point (inclusive), taking the smallest
 * limit; bind gets the directory it came from. */
static uint64_t walk_up(const char *dir, const char *top, int version, char *bind,
                        bool *any)
{
    char cur[CG_PATH_MAX];
    strcpy(cur, dir);
    strcpy(bind, dir);
    uint64_t best = 0;
    size_t ltop = strlen(top);
    for (;;) {
        uint64_t here;
        if (version == 2)
            here = min_limit(read_limit(cur, "memory.max", any),
                             read_limit(cur, "memory.high", any));
        else
            here = read_limit(cur, "memory.limit_in_bytes", any);
        if (here && (!best || here < best)) {
            best = here;
            strcpy(bind, cur);
        }
        size_t l = strlen(cur);
        if (l <= ltop)
            break;
        char *slash = strrchr(cur, '/');
        if (!slash || (size_t)(slash - cur) < ltop)
            break;
        *slash = 0;
        if (strlen(cur) < ltop) /* never above the mount point */
            break;
    }
    return best;
}

struct stat_find {
    const char *key;
    uint64_t value;
    bool found;
};

static bool on_stat_line(char *line, void *ctx)
{
    struct stat_find *s = ctx;
    size_t l = strlen(s->key);
    if (strncmp(line, s->key, l) != 0 || line[l] != ' ')
        return false;
    s->found = parse_dec(line + l + 1, &s->value);
    return s->found;
}

static bool stat_value(const char *dir, const char *key, uint64_t *v)
{
    char path[CG_PATH_MAX + 64];
    struct stat_find s = {key, 0, false};
    if (!join(path, sizeof path, dir, "/memory.stat", NULL) ||
        for_each_line(path, on_stat_line, &s) < 0 || !s.found)
        return false;
    *v = s.value;
    return true;
}

static int detect_version(const char *root, const char *own, int version,
                          struct cg_limit *out)
{
    char path[CG_PATH_MAX];
    struct mount_find m = {.version = version};
    if (!join(path, sizeof path, root, "/proc/self/mountinfo", NULL) ||
        for_each_line(path, on_mount_line, &m) < 0 || !m.point[0])
        return -1;
    char dir[CG_PATH_MAX], top[CG_PATH_MAX];
    const char *point = strcmp(m.point, "/") == 0 ? "" : m.point;
    if (!cgroup_dir(root, &m, own, dir, sizeof dir) || !join(top, sizeof top, root, point, NULL))
        return -1;
    if (access(dir, F_OK) != 0)
        return -1;
    bool any = false;
    char bind[CG_PATH_MAX];
    uint64_t limit = walk_up(dir, top, version, bind, &any);
    if (version == 1) {
        uint64_t h;
        if (stat_value(dir, "hierarchical_memory_limit", &h)) {
            any = true;
            if (h < CG_UNLIMITED_V1 && (!limit || h < limit)) {
                limit = h; /* set above what this mount shows: read where we are */
                strcpy(bind, dir);
            }
        }
        if (!any)
            return -1; /* a hierarchy without the memory files */
    }
    out->version = version;
    out->limit = limit;
    strcpy(out->dir, limit ? bind : dir);
    return 0;
}

int cgroup_detect(const char *root, struct cg_limit *out)
{
    memset(out, 0, sizeof *out);
    if (!root)
        root = "";
    char path[CG_PATH_MAX];
    struct own_paths own;
    memset(&own, 0, sizeof own);
    if (!join(path, sizeof path, root, "/proc/self/cgroup", NULL) ||
        for_each_line(path, on_cgroup_line, &own) < 0)
        return -1;
    if (own.have_v1 && detect_version(root, own.v1, 1, out) == 0)
        return 0;
    if (own.have_v2 && detect_version(root, own.v2, 2, out) == 0)
        return 0;
    memset(out, 0, sizeof *out);
    return -1;
}

int cgroup_working_set(const struct cg_limit *cg, uint64_t *bytes)
{
    if (!cg || cg->version == 0 || !cg->dir[0])
        return -1;
    char path[CG_PATH_MAX + 64], buf[64];
    uint64_t usage, inactive = 0;
    const char *file = cg->version == 2 ? "/memory.current" : "/memory.usage_in_bytes";
    if (!join(path, sizeof path, cg->dir, file, NULL) ||
        sys_read_file(path, buf, sizeof buf) <= 0 ||
        !parse_dec(buf, &usage))
        return -1;
    /* v1's memory.stat has inactive_file (this cgroup) and total_inactive_file
     * (with descendants, which usage_in_bytes includes). */
    if (cg->version == 2)
        stat_value(cg->dir, "inactive_file", &inactive);
    else if (!stat_value(cg->dir, "total_inactive_file", &inactive))
        stat_value(cg->dir, "inactive_file", &inactive);
    *bytes = usage > inactive ? usage - inactive : 0;
    return 0;
}
