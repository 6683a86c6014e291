/* test_cgroup.c: unit tests of shim/cgroup.c: cgroup_detect (which memory
 * cgroup, which limit binds and where) and cgroup_working_set, against fake
 * cgroup trees built in a temporary directory (the `root` prefix): v2 leaf
 * limits, memory.high vs memory.max, "max", nested limits and the mount point
 * as the top of the walk, cgroup namespaces; v1 limit_in_bytes, the unlimited
 * value, hierarchical_memory_limit, controller lists; hybrid systems and the
 * fallback to v2; mount roots other than "/", octal escapes, optional fields
 * and over-long lines in mountinfo; missing files; the working set (usage less
 * inactive file pages, v1 total_ preferred, floored at 0). */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <cmocka.h>

#include "cgroup.h"

#define MIB (1024ull * 1024)
#define GIB (1024ull * MIB)
#define V1_UNLIMITED "9223372036854771712\n" /* what v1 shows for "no limit" */

#define CHECK(cond, ...)           \
    do {                           \
        if (!(cond))               \
            fail_msg(__VA_ARGS__); \
    } while (0)

/* mountinfo lines. */
#define MI_ROOTFS "22 1 8:1 / / rw,relatime - ext4 /dev/sda1 rw,errors=remount-ro\n"
#define MI_PROC "23 22 0:21 / /proc rw,nosuid,nodev,noexec,relatime - proc proc rw\n"
#define MI_V2 \
    "30 22 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime - cgroup2 cgroup2 rw,nsdelegate\n"
#define MI_V1_CPU \
    "34 31 0:31 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu,cpuacct\n"
#define MI_V1_MEM "35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n"
#define MI_V2_UNIFIED \
    "33 31 0:29 / /sys/fs/cgroup/unified rw,nosuid,nodev,noexec,relatime - cgroup2 cgroup2 rw\n"

/* ---- the fake tree ---- */

static char g_root[64];

static int make_root(void **state)
{
    snprintf(g_root, sizeof g_root, "/tmp/reshim-test-cgroup-XXXXXX");
    if (!mkdtemp(g_root))
        return -1;
    *state = g_root;
    return 0;
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    return remove(path);
}

static int remove_root(void **state)
{
    if (g_root[0])
        nftw(g_root, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    g_root[0] = 0;
    return 0;
}

/* mkdir -p <root><rel>. */
static void mkd(const char *root, const char *rel)
{
    char p[1024];
    snprintf(p, sizeof p, "%s%s", root, rel);
    for (char *s = p + strlen(root) + 1; *s; s++) {
        if (*s != '/')
            continue;
        *s = 0;
        CHECK(mkdir(p, 0755) == 0 || errno == EEXIST, "mkdir %s: %s", p, strerror(errno));
        *s = '/';
    }
    CHECK(mkdir(p, 0755) == 0 || errno == EEXIST, "mkdir %s: %s", p, strerror(errno));
}

/* Writes <root><rel> (parents created), replacing it. */
static void put(const char *root, const char *rel, const char *text)
{
    char p[1024];
    snprintf(p, sizeof p, "%s%s", root, rel);
    char *slash = strrchr(p, '/');
    *slash = 0;
    mkd("", p);
    *slash = '/';
    int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    CHECK(fd >= 0, "open %s: %s", p, strerror(errno));
    size_t len = strlen(text);
    CHECK(write(fd, text, len) == (ssize_t)len, "write %s", p);
    close(fd);
}

static void del(const char *root, const char *rel)
{
    char p[1024];
    snprintf(p, sizeof p, "%s%s", root, rel);
    CHECK(unlink(p) == 0, "unlink %s: %s", p, strerror(errno));
}

/* Detects, and checks the return value, version, limit and directory
 * (<root><rel>; "" for none) exactly. */
#define EXPECT(root, rc, ver, lim, rel)                                                   \
    do {                                                                                  \
        struct cg_limit cg_;                                                              \
        memset(&cg_, 0x5a, sizeof cg_); /* garbage: detect must set every field */       \
        char want_[CG_PATH_MAX + 64];                                                     \
        if ((rel)[0])                                                                     \
            snprintf(want_, sizeof want_, "%s%s", (root), (rel));                         \
        else                                                                              \
            want_[0] = 0;                                                                 \
        int rc_ = cgroup_detect((root), &cg_);                                            \
        CHECK(rc_ == (rc), "line %d: cgroup_detect returned %d, want %d", __LINE__, rc_, \
              (rc));                                                                      \
        CHECK(cg_.version == (ver), "line %d: version %d, want %d", __LINE__, cg_.version, \
              (ver));                                                                     \
        CHECK(cg_.limit == (uint64_t)(lim), "line %d: limit %llu, want %llu", __LINE__,   \
              (unsigned long long)cg_.limit, (unsigned long long)(lim));                  \
        CHECK(memchr(cg_.dir, 0, sizeof cg_.dir) != NULL, "line %d: dir not terminated",  \
              __LINE__);                                                                  \
        CHECK(strcmp(cg_.dir, want_) == 0, "line %d: dir \"%s\", want \"%s\"", __LINE__,   \
              cg_.dir, want_);                                                            \
    } while (0)

/* The working set of a cg_limit built by hand. */
static int ws(const char *root, int version, const char *rel, uint64_t *bytes)
{
    struct cg_limit cg;
    memset(&cg, 0, sizeof cg);
    cg.version = version;
    snprintf(cg.dir, sizeof cg.dir, "%s%s", root, rel);
    return cgroup_working_set(&cg, bytes);
}

/* A v2 tree: /kubepods/pod1/ctr under /sys/fs/cgroup, "max" everywhere. */
#define V2_LEAF "/sys/fs/cgroup/kubepods/pod1/ctr"
#define V2_POD "/sys/fs/cgroup/kubepods/pod1"
#define V2_KUBE "/sys/fs/cgroup/kubepods"
#define V2_TOP "/sys/fs/cgroup"

static void v2_tree(const char *r)
{
    put(r, "/proc/self/cgroup", "0::/kubepods/pod1/ctr\n");
    put(r, "/proc/self/mountinfo", MI_ROOTFS MI_PROC MI_V2);
    const char *dirs[] = {V2_LEAF, V2_POD, V2_KUBE};
    for (int i = 0; i < 3; i++) {
        char p[256];
        snprintf(p, sizeof p, "%s/memory.max", dirs[i]);
        put(r, p, "max\n");
        snprintf(p, sizeof p, "%s/memory.high", dirs[i]);
        put(r, p, "max\n");
    }
    /* The root cgroup has no memory.max/memory.high, as on a real system. */
    put(r, V2_TOP "/cgroup.controllers", "cpu io memory pids\n");
}

/* A v1 tree: /process_api/abc under /sys/fs/cgroup/memory, unlimited. */
#define V1_LEAF "/sys/fs/cgroup/memory/process_api/abc"
#define V1_PARENT "/sys/fs/cgroup/memory/process_api"
#define V1_TOP "/sys/fs/cgroup/memory"

static void v1_tree(const char *r)
{
    put(r, "/proc/self/cgroup",
        "12:pids:/process_api/abc\n"
        "5:cpu,cpuacct:/process_api/abc\n"
        "4:memory:/process_api/abc\n"
        "1:name=systemd:/process_api/abc\n");
    put(r, "/proc/self/mountinfo", MI_ROOTFS MI_PROC MI_V1_CPU MI_V1_MEM);
    put(r, V1_LEAF "/memory.limit_in_bytes", V1_UNLIMITED);
    put(r, V1_PARENT "/memory.limit_in_bytes", V1_UNLIMITED);
    put(r, V1_TOP "/memory.limit_in_bytes", V1_UNLIMITED);
    put(r, V1_LEAF "/memory.stat",
        "cache 4096\nrss 8192\ninactive_file 0\n"
        "hierarchical_memory_limit 9223372036854771712\n"
        "hierarchical_memsw_limit 9223372036854771712\ntotal_inactive_file 0\n");
}

/* ---- cgroup v2 ---- */

static void test_v2_leaf_max(void **state)
{
    const char *r = *state;
    v2_tree(r);
    put(r, V2_LEAF "/memory.max", "536870912\n");
    EXPECT(r, 0, 2, 512 * MIB, V2_LEAF);
    /* Without a trailing newline too. */
    put(r, V2_LEAF "/memory.max", "536870912");
    EXPECT(r, 0, 2, 512 * MIB, V2_LEAF);
}

static void test_v2_high_below_max(void **state)
{
    const char *r = *state;
    v2_tree(r);
    put(r, V2_LEAF "/memory.max", "1073741824\n");
    put(r, V2_LEAF "/memory.high", "268435456\n");
    EXPECT(r, 0, 2, 256 * MIB, V2_LEAF);
    /* The other way round: max wins. */
    put(r, V2_LEAF "/memory.max", "134217728\n");
    EXPECT(r, 0, 2, 128 * MIB, V2_LEAF);
    /* memory.high alone (memory.max "max"). */
    put(r, V2_LEAF "/memory.max", "max\n");
    EXPECT(r, 0, 2, 256 * MIB, V2_LEAF);
    /* memory.high alone, memory.max absent. */
    del(r, V2_LEAF "/memory.max");
    EXPECT(r, 0, 2, 256 * MIB, V2_LEAF);
}

static void test_v2_all_max(void **state)
{
    const char *r = *state;
    v2_tree(r);
    EXPECT(r, 0, 2, 0, V2_LEAF);
    /* No memory files at all: still v2, unlimited, own cgroup. */
    del(r, V2_LEAF "/memory.max");
    del(r, V2_LEAF "/memory.high");
    del(r, V2_POD "/memory.max");
    del(r, V2_POD "/memory.high");
    EXPECT(r, 0, 2, 0, V2_LEAF);
}

static void test_v2_parent_stricter(void **state)
{
    const char *r = *state;
    v2_tree(r);
    put(r, V2_LEAF "/memory.max", "1073741824\n");
    put(r, V2_POD "/memory.max", "536870912\n");
    put(r, V2_KUBE "/memory.max", "2147483648\n");
    EXPECT(r, 0, 2, 512 * MIB, V2_POD);
    /* A memory.high on the grandparent, stricter still. */
    put(r, V2_KUBE "/memory.high", "104857600\n");
    EXPECT(r, 0, 2, 100 * MIB, V2_KUBE);
    /* The child stricter than every ancestor: the child's. */
    put(r, V2_LEAF "/memory.high", "52428800\n");
    EXPECT(r, 0, 2, 50 * MIB, V2_LEAF);
    /* Equal limits on child and parent: either dir would do, the limit is exact. */
    put(r, V2_LEAF "/memory.high", "max\n");
    put(r, V2_KUBE "/memory.high", "max\n");
    put(r, V2_LEAF "/memory.max", "536870912\n");
    struct cg_limit cg;
    assert_int_equal(cgroup_detect(r, &cg), 0);
    assert_int_equal(cg.version, 2);
    CHECK(cg.limit == 512 * MIB, "limit %llu", (unsigned long long)cg.limit);
}

static void test_v2_mount_point_is_top(void **state)
{
    const char *r = *state;
    v2_tree(r);
    put(r, V2_LEAF "/memory.max", "1073741824\n");
    /* Tighter limits above the mount point: never read. */
    put(r, "/sys/fs/memory.max", "1048576\n");
    put(r, "/sys/fs/memory.high", "1048576\n");
    put(r, "/sys/memory.max", "1048576\n");
    put(r, "/memory.max", "1048576\n");
    EXPECT(r, 0, 2, GIB, V2_LEAF);
    /* The mount point itself is the top of the walk and is read. */
    put(r, V2_TOP "/memory.max", "33554432\n");
    EXPECT(r, 0, 2, 32 * MIB, V2_TOP);
}

static void test_v2_namespace(void **state)
{
    const char *r = *state;
    put(r, "/proc/self/cgroup", "0::/\n");
    put(r, "/proc/self/mountinfo", MI_ROOTFS MI_PROC MI_V2);
    put(r, V2_TOP "/memory.max", "max\n");
    put(r, "/sys/fs/memory.max", "1048576\n"); /* above the mount: ignored */
    EXPECT(r, 0, 2, 0, V2_TOP);
    put(r, V2_TOP "/memory.max", "300000000\n");
    put(r, V2_TOP "/memory.high", "400000000\n");
    EXPECT(r, 0, 2, 300000000, V2_TOP);
}

/* ---- cgroup v1 ---- */

static void test_v1_unlimited(void **state)
{
    const char *r = *state;
    v1_tree(r);
    EXPECT(r, 0, 1, 0, V1_LEAF);
    /* The threshold: 2^62 is unlimited, 2^62 - 1 a limit. */
    put(r, V1_LEAF "/memory.limit_in_bytes", "4611686018427387904\n");
    EXPECT(r, 0, 1, 0, V1_LEAF);
    put(r, V1_LEAF "/memory.limit_in_bytes", "4611686018427387903\n");
    EXPECT(r, 0, 1, 4611686018427387903ull, V1_LEAF);
    /* Saturating: a number past UINT64_MAX is unlimited too. */
    put(r, V1_LEAF "/memory.limit_in_bytes", "99999999999999999999999\n");
    EXPECT(r, 0, 1, 0, V1_LEAF);
}

static void test_v1_numeric(void **state)
{
    const char *r = *state;
    v1_tree(r);
    put(r, V1_LEAF "/memory.limit_in_bytes", "268435456\n");
    EXPECT(r, 0, 1, 256 * MIB, V1_LEAF);
    /* A tighter limit above the mount point (the v1 root hierarchy's parent
     * directory): ignored. */
    put(r, "/sys/fs/cgroup/memory.limit_in_bytes", "1048576\n");
    EXPECT(r, 0, 1, 256 * MIB, V1_LEAF);
}

static void test_v1_parent_stricter(void **state)
{
    const char *r = *state;
    v1_tree(r);
    put(r, V1_LEAF "/memory.limit_in_bytes", "1073741824\n");
    put(r, V1_PARENT "/memory.limit_in_bytes", "536870912\n");
    EXPECT(r, 0, 1, 512 * MIB, V1_PARENT);
    /* The mount point (the hierarchy's root) stricter still. */
    put(r, V1_TOP "/memory.limit_in_bytes", "104857600\n");
    EXPECT(r, 0, 1, 100 * MIB, V1_TOP);
}

static void test_v1_hierarchical(void **state)
{
    const char *r = *state;
    v1_tree(r);
    put(r, V1_LEAF "/memory.limit_in_bytes", "1073741824\n");
    put(r, V1_PARENT "/memory.limit_in_bytes", "536870912\n");
    /* Set above what the mount shows: smaller than every visible limit, wins,
     * read in the own cgroup. */
    put(r, V1_LEAF "/memory.stat",
        "cache 4096\nrss 8192\ninactive_file 0\nhierarchical_memory_limit 209715200\n"
        "hierarchical_memsw_limit 9223372036854771712\n");
    EXPECT(r, 0, 1, 200 * MIB, V1_LEAF);
    /* Larger than a visible limit: the visible one. */
    put(r, V1_LEAF "/memory.stat", "hierarchical_memory_limit 805306368\n");
    EXPECT(r, 0, 1, 512 * MIB, V1_PARENT);
    /* The only limit anywhere: it. */
    put(r, V1_LEAF "/memory.limit_in_bytes", V1_UNLIMITED);
    put(r, V1_PARENT "/memory.limit_in_bytes", V1_UNLIMITED);
    EXPECT(r, 0, 1, 768 * MIB, V1_LEAF);
    /* Unlimited there too: 0. */
    put(r, V1_LEAF "/memory.stat", "hierarchical_memory_limit 9223372036854771712\n");
    EXPECT(r, 0, 1, 0, V1_LEAF);
    /* Only memory.stat present (no limit_in_bytes anywhere): still a memory cgroup. */
    del(r, V1_LEAF "/memory.limit_in_bytes");
    del(r, V1_PARENT "/memory.limit_in_bytes");
    del(r, V1_TOP "/memory.limit_in_bytes");
    put(r, V1_LEAF "/memory.stat", "hierarchical_memory_limit 104857600\n");
    EXPECT(r, 0, 1, 100 * MIB, V1_LEAF);
    /* No memory files at all: not a memory cgroup. */
    del(r, V1_LEAF "/memory.stat");
    EXPECT(r, -1, 0, 0, "");
}

static void test_v1_controller_list(void **state)
{
    const char *r = *state;
    put(r, "/proc/self/cgroup", "7:pids:/x\n4:cpu,memory:/x\n1:name=systemd:/x\n");
    put(r, "/proc/self/mountinfo",
        MI_ROOTFS MI_PROC
        "34 31 0:31 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids\n"
        "35 31 0:32 / /sys/fs/cgroup/cpu,memory rw,relatime - cgroup cgroup rw,cpu,memory\n");
    put(r, "/sys/fs/cgroup/cpu,memory/x/memory.limit_in_bytes", "67108864\n");
    put(r, "/sys/fs/cgroup/cpu,memory/memory.limit_in_bytes", V1_UNLIMITED);
    EXPECT(r, 0, 1, 64 * MIB, "/sys/fs/cgroup/cpu,memory/x");
    /* "memory" must be a whole word: memoryx / xmemory are other controllers. */
    put(r, "/proc/self/cgroup", "4:cpu,memoryx:/x\n5:xmemory:/x\n");
    EXPECT(r, -1, 0, 0, "");
    /* Nor a mount whose super options only contain "memory" as part of a word. */
    put(r, "/proc/self/cgroup", "4:cpu,memory:/x\n");
    put(r, "/proc/self/mountinfo",
        MI_ROOTFS
        "35 31 0:32 / /sys/fs/cgroup/cpu,memory rw,relatime - cgroup cgroup rw,cpu,nomemory\n");
    EXPECT(r, -1, 0, 0, "");
}

/* ---- hybrid ---- */

static void hybrid_tree(const char *r)
{
    put(r, "/proc/self/cgroup",
        "12:memory:/user.slice/app\n"
        "5:cpu,cpuacct:/user.slice/app\n"
        "1:name=systemd:/user.slice/app\n"
        "0::/user.slice/app\n");
    put(r, "/proc/self/mountinfo", MI_ROOTFS MI_PROC MI_V2_UNIFIED MI_V1_CPU MI_V1_MEM);
    put(r, "/sys/fs/cgroup/memory/user.slice/app/memory.limit_in_bytes", "157286400\n");
    put(r, "/sys/fs/cgroup/memory/user.slice/memory.limit_in_bytes", V1_UNLIMITED);
    put(r, "/sys/fs/cgroup/unified/user.slice/app/memory.max", "52428800\n");
}

static void test_hybrid_prefers_v1(void **state)
{
    const char *r = *state;
    hybrid_tree(r);
    EXPECT(r, 0, 1, 150 * MIB, "/sys/fs/cgroup/memory/user.slice/app");
    /* The v2 line first in the file: v1 still preferred. */
    put(r, "/proc/self/cgroup", "0::/user.slice/app\n12:memory:/user.slice/app\n");
    EXPECT(r, 0, 1, 150 * MIB, "/sys/fs/cgroup/memory/user.slice/app");
}

static void test_hybrid_falls_back_to_v2(void **state)
{
    const char *r = *state;
    hybrid_tree(r);
    /* No v1 memory mount. */
    put(r, "/proc/self/mountinfo", MI_ROOTFS MI_PROC MI_V2_UNIFIED MI_V1_CPU);
    EXPECT(r, 0, 2, 50 * MIB, "/sys/fs/cgroup/unified/user.slice/app");
    /* The v1 mount there but not the v1 directory. */
    put(r, "/proc/self/mountinfo", MI_ROOTFS MI_PROC MI_V2_UNIFIED MI_V1_CPU MI_V1_MEM);
    char p[256];
    snprintf(p, sizeof p, "%s/sys/fs/cgroup/memory/user.slice/app/memory.limit_in_bytes", r);
    assert_int_equal(unlink(p), 0);
    *strrchr(p, '/') = 0;
    assert_int_equal(rmdir(p), 0);
    EXPECT(r, 0, 2, 50 * MIB, "/sys/fs/cgroup/unified/user.slice/app");
    /* Neither: none. */
    put(r, "/proc/self/mountinfo", MI_ROOTFS MI_PROC MI_V1_CPU);
    EXPECT(r, -1, 0, 0, "");
}

/* ---- mountinfo ---- */

static void test_mount_root_stripped(void **state)
{
    const char *r = *state;
    put(r, "/proc/self/mountinfo",
        MI_ROOTFS "30 22 0:26 /docker/abc /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw\n");
    put(r, V2_TOP "/sub/memory.max", "10485760\n");
    put(r, V2_TOP "/memory.max", "max\n");
    put(r, "/proc/self/cgroup", "0::/docker/abc/sub\n");
    EXPECT(r, 0, 2, 10 * MIB, V2_TOP "/sub");
    /* The own path is the mount's root: the mount point. */
    put(r, "/proc/self/cgroup", "0::/docker/abc\n");
    EXPECT(r, 0, 2, 0, V2_TOP);
    /* Outside the mount's root: the mount point. */
    put(r, "/proc/self/cgroup", "0::/other/x\n");
    EXPECT(r, 0, 2, 0, V2_TOP);
    /* A prefix that is not a whole component is outside too. */
    put(r, "/proc/self/cgroup", "0::/docker/abcdef\n");
    EXPECT(r, 0, 2, 0, V2_TOP);

    /* v1 the same. */
    put(r, "/proc/self/mountinfo",
        MI_ROOTFS
        "35 31 0:32 /docker/abc /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n");
    put(r, V1_TOP "/memory.limit_in_bytes", V1_UNLIMITED);
    put(r, V1_TOP "/sub/memory.limit_in_bytes", "20971520\n");
    put(r, "/proc/self/cgroup", "4:memory:/docker/abc/sub\n");
    EXPECT(r, 0, 1, 20 * MIB, V1_TOP "/sub");
    put(r, "/proc/self/cgroup", "4:memory:/elsewhere\n");
    EXPECT(r, 0, 1, 0, V1_TOP);
}

static void test_mount_octal_escapes(void **state)
{
    const char *r = *state;
    put(r, "/proc/self/cgroup", "0::/a b/c\n");
    put(r, "/proc/self/mountinfo",
        MI_ROOTFS "30 22 0:26 / /sys/fs/my\\040cgroup rw,nosuid - cgroup2 cgroup2 rw\n");
    put(r, "/sys/fs/my cgroup/a b/c/memory.max", "7340032\n");
    EXPECT(r, 0, 2, 7 * MIB, "/sys/fs/my cgroup/a b/c");
    /* In the mount's root too, and a backslash (\134). */
    put(r, "/proc/self/cgroup", "0::/r t/in\\side/c\n");
    put(r, "/proc/self/mountinfo",
        MI_ROOTFS "30 22 0:26 /r\\040t /sys/fs/my\\040cgroup rw - cgroup2 cgroup2 rw\n");
    put(r, "/sys/fs/my cgroup/in\\side/c/memory.max", "8388608\n");
    EXPECT(r, 0, 2, 8 * MIB, "/sys/fs/my cgroup/in\\side/c");
    put(r, "/proc/self/mountinfo",
        MI_ROOTFS
        "30 22 0:26 /r\\040t/in\\134side /sys/fs/my\\040cgroup rw - cgroup2 cgroup2 rw\n");
    put(r, "/sys/fs/my cgroup/c/memory.max", "9437184\n");
    EXPECT(r, 0, 2, 9 * MIB, "/sys/fs/my cgroup/c");
}

static void test_mount_optional_fields(void **state)
{
    const char *r = *state;
    put(r, "/proc/self/cgroup", "0::/kubepods/pod1/ctr\n");
    put(r, "/proc/self/mountinfo",
        "22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n"
        "24 22 0:22 / /sys rw,nosuid shared:2 - sysfs sysfs rw\n"
        "30 24 0:26 / /sys/fs/cgroup rw,nosuid,nodev shared:5 master:2 - cgroup2 cgroup2 "
        "rw,nsdelegate,memory_recursiveprot\n");
    put(r, V2_LEAF "/memory.max", "12582912\n");
    EXPECT(r, 0, 2, 12 * MIB, V2_LEAF);
    /* v1 with optional fields, after a v1 mount without memory. */
    put(r, "/proc/self/cgroup", "4:memory:/process_api/abc\n");
    put(r, "/proc/self/mountinfo",
        "22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n"
        "34 31 0:31 / /sys/fs/cgroup/cpu rw,relatime shared:9 - cgroup cgroup rw,cpu\n"
        "35 31 0:32 / /sys/fs/cgroup/memory rw,relatime shared:10 master:3 propagate_from:1 "
        "unbindable - cgroup cgroup rw,memory\n");
    put(r, V1_LEAF "/memory.limit_in_bytes", "13631488\n");
    EXPECT(r, 0, 1, 13 * MIB, V1_LEAF);
}

static void test_mount_long_line(void **state)
{
    const char *r = *state;
    put(r, "/proc/self/cgroup", "0::/kubepods/pod1/ctr\n");
    put(r, V2_LEAF "/memory.max", "15728640\n");
    /* Lengths around the 4096-byte buffer, and well past it. */
    const size_t lens[] = {4000, 4093, 4094, 4095, 4096, 4097, 5000, 8191, 8192, 12289, 20000};
    static char text[3 * 20100 + 512];
    for (size_t k = 0; k < sizeof lens / sizeof lens[0]; k++) {
        size_t len = lens[k];
        /* A long line of options (an overlay mount with many lowerdirs). */
        char *p = text;
        p += sprintf(p, "%s", MI_ROOTFS);
        const char *head = "40 22 0:50 / /var/lib/docker/overlay rw - overlay overlay rw,lowerdir=";
        size_t lh = strlen(head);
        memcpy(p, head, lh);
        for (size_t i = lh; i < len; i++)
            p[i] = (char)('a' + i % 26);
        p += len;
        *p++ = '\n';
        /* Then a long line that looks like a cgroup2 mount: skipped whole,
         * its tail must not be taken for a line of its own. */
        const char *fake = "41 22 0:51 / /fake rw - overlay overlay rw,x=";
        size_t lf = strlen(fake);
        memcpy(p, fake, lf);
        for (size_t i = lf; i < len; i++)
            p[i] = 'y';
        p += len;
        p += sprintf(p, " 42 22 0:52 / /bogus rw - cgroup2 cgroup2 rw\n");
        p += sprintf(p, "%s%s", MI_PROC, MI_V2);
        put(r, "/proc/self/mountinfo", text);
        EXPECT(r, 0, 2, 15 * MIB, V2_LEAF);
        /* The real line last and without a newline. */
        text[strlen(text) - 1] = 0;
        put(r, "/proc/self/mountinfo", text);
        EXPECT(r, 0, 2, 15 * MIB, V2_LEAF);
    }
}

static void test_long_lines_elsewhere(void **state)
{
    const char *r = *state;
    /* proc/self/cgroup: a long line (named hierarchy) before the v2 line. */
    static char text[8192];
    char *p = text;
    p += sprintf(p, "1:name=");
    memset(p, 'n', 6000);
    p += 6000;
    p += sprintf(p, ":/x\n0::/kubepods/pod1/ctr\n");
    put(r, "/proc/self/cgroup", text);
    put(r, "/proc/self/mountinfo", MI_ROOTFS MI_V2);
    put(r, V2_LEAF "/memory.max", "16777216\n");
    EXPECT(r, 0, 2, 16 * MIB, V2_LEAF);
    /* memory.stat: a long line before inactive_file. */
    put(r, V2_LEAF "/memory.current", "1000000\n");
    p = text;
    p += sprintf(p, "anon 1\nweird ");
    memset(p, '7', 5000);
    p += 5000;
    p += sprintf(p, "\ninactive_file 250000\n");
    put(r, V2_LEAF "/memory.stat", text);
    uint64_t b = 0;
    assert_int_equal(ws(r, 2, V2_LEAF, &b), 0);
    CHECK(b == 750000, "working set %llu, want 750000", (unsigned long long)b);
}

/* ---- missing pieces ---- */

static void test_missing(void **state)
{
    const char *r = *state;
    /* No proc/self/cgroup. */
    put(r, "/proc/self/mountinfo", MI_ROOTFS MI_V2);
    put(r, V2_LEAF "/memory.max", "1048576\n");
    EXPECT(r, -1, 0, 0, "");
    /* No proc/self/mountinfo. */
    put(r, "/proc/self/cgroup", "0::/kubepods/pod1/ctr\n");
    del(r, "/proc/self/mountinfo");
    EXPECT(r, -1, 0, 0, "");
    /* A v2 line but no cgroup2 mount. */
    put(r, "/proc/self/mountinfo", MI_ROOTFS MI_PROC MI_V1_CPU);
    EXPECT(r, -1, 0, 0, "");
    /* A v1 memory line but no v1 memory mount (and no v2 line). */
    put(r, "/proc/self/cgroup", "4:memory:/process_api/abc\n");
    put(r, "/proc/self/mountinfo", MI_ROOTFS MI_PROC MI_V2 MI_V1_CPU);
    put(r, V1_LEAF "/memory.limit_in_bytes", "1048576\n");
    EXPECT(r, -1, 0, 0, "");
    /* Only "0::" is the v2 line: not another id with no controllers. */
    put(r, "/proc/self/cgroup", "0::/kubepods/pod1/ctr\n3::/nowhere\n");
    put(r, "/proc/self/mountinfo", MI_ROOTFS MI_V2);
    EXPECT(r, 0, 2, MIB, V2_LEAF);
    put(r, "/proc/self/cgroup", "3::/kubepods/pod1/ctr\n");
    EXPECT(r, -1, 0, 0, "");
    /* An empty proc/self/cgroup, and one with no v2 or memory line. */
    put(r, "/proc/self/cgroup", "");
    EXPECT(r, -1, 0, 0, "");
    put(r, "/proc/self/cgroup", "5:cpu,cpuacct:/x\n1:name=systemd:/x\n");
    EXPECT(r, -1, 0, 0, "");
    /* The mount is there, the cgroup directory is not. */
    put(r, "/proc/self/cgroup", "0::/kubepods/pod2/ctr\n");
    put(r, "/proc/self/mountinfo", MI_ROOTFS MI_V2);
    EXPECT(r, -1, 0, 0, "");
    put(r, "/proc/self/cgroup", "4:memory:/process_api/zzz\n");
    put(r, "/proc/self/mountinfo", MI_ROOTFS MI_V1_MEM);
    EXPECT(r, -1, 0, 0, "");
    /* A root prefix that does not exist. */
    char nowhere[128];
    snprintf(nowhere, sizeof nowhere, "%s/nowhere", r);
    EXPECT(nowhere, -1, 0, 0, "");
}

/* ---- working set ---- */

static void test_ws_v2(void **state)
{
    const char *r = *state;
    v2_tree(r);
    put(r, V2_POD "/memory.max", "536870912\n");
    put(r, V2_POD "/memory.current", "300000000\n");
    /* Keys match whole: not active_file, inactive_filex or total_inactive_file. */
    put(r, V2_POD "/memory.stat",
        "anon 100000000\nfile 200000000\nactive_file 150000000\ninactive_filex 5\n"
        "total_inactive_file 7\ninactive_file 50000000\ninactive_anon 7\n");
    put(r, V2_LEAF "/memory.current", "1\n");
    /* Read where the limit binds (the pod), not the leaf. */
    struct cg_limit cg;
    assert_int_equal(cgroup_detect(r, &cg), 0);
    assert_string_equal(cg.dir + strlen(r), V2_POD);
    uint64_t b = 0;
    assert_int_equal(cgroup_working_set(&cg, &b), 0);
    CHECK(b == 250000000, "working set %llu, want 250000000", (unsigned long long)b);
    /* No memory.stat: the whole usage. */
    del(r, V2_POD "/memory.stat");
    b = 0;
    assert_int_equal(cgroup_working_set(&cg, &b), 0);
    CHECK(b == 300000000, "working set %llu, want 300000000", (unsigned long long)b);
    /* v2 does not read total_inactive_file. */
    put(r, V2_POD "/memory.stat", "total_inactive_file 100000000\n");
    assert_int_equal(cgroup_working_set(&cg, &b), 0);
    CHECK(b == 300000000, "working set %llu, want 300000000", (unsigned long long)b);
}

static void test_ws_v1(void **state)
{
    const char *r = *state;
    put(r, V1_LEAF "/memory.usage_in_bytes", "1000000\n");
    /* total_inactive_file preferred, wherever it is in the file. */
    put(r, V1_LEAF "/memory.stat",
        "cache 1\ninactive_file 100\nactive_file 5\n"
        "hierarchical_memory_limit 9223372036854771712\ntotal_inactive_file 300000\n");
    uint64_t b = 0;
    assert_int_equal(ws(r, 1, V1_LEAF, &b), 0);
    CHECK(b == 700000, "working set %llu, want 700000", (unsigned long long)b);
    /* Without total_: inactive_file. */
    put(r, V1_LEAF "/memory.stat", "cache 1\nactive_file 5\ninactive_file 100\n");
    assert_int_equal(ws(r, 1, V1_LEAF, &b), 0);
    CHECK(b == 999900, "working set %llu, want 999900", (unsigned long long)b);
    /* Neither: the whole usage. */
    put(r, V1_LEAF "/memory.stat", "cache 1\ntotal_active_file 5\n");
    assert_int_equal(ws(r, 1, V1_LEAF, &b), 0);
    CHECK(b == 1000000, "working set %llu, want 1000000", (unsigned long long)b);
    /* v1 does not read memory.current. */
    put(r, V1_LEAF "/memory.current", "5\n");
    assert_int_equal(ws(r, 1, V1_LEAF, &b), 0);
    CHECK(b == 1000000, "working set %llu, want 1000000", (unsigned long long)b);
}

static void test_ws_floor_and_errors(void **state)
{
    const char *r = *state;
    uint64_t b;
    /* Inactive above usage: 0. */
    put(r, V2_LEAF "/memory.current", "1000\n");
    put(r, V2_LEAF "/memory.stat", "inactive_file 5000\n");
    b = 12345;
    assert_int_equal(ws(r, 2, V2_LEAF, &b), 0);
    CHECK(b == 0, "working set %llu, want 0", (unsigned long long)b);
    put(r, V1_LEAF "/memory.usage_in_bytes", "1000\n");
    put(r, V1_LEAF "/memory.stat", "total_inactive_file 1000\n");
    b = 12345;
    assert_int_equal(ws(r, 1, V1_LEAF, &b), 0);
    CHECK(b == 0, "working set %llu, want 0", (unsigned long long)b);
    put(r, V1_LEAF "/memory.stat", "total_inactive_file 1001\n");
    b = 12345;
    assert_int_equal(ws(r, 1, V1_LEAF, &b), 0);
    CHECK(b == 0, "working set %llu, want 0", (unsigned long long)b);

    /* Missing usage file: -1, bytes untouched. */
    b = 12345;
    assert_int_equal(ws(r, 2, V2_POD, &b), -1);
    assert_int_equal(ws(r, 1, V1_PARENT, &b), -1);
    /* Empty or not a number: -1. */
    put(r, V2_LEAF "/memory.current", "");
    assert_int_equal(ws(r, 2, V2_LEAF, &b), -1);
    put(r, V2_LEAF "/memory.current", "max\n");
    assert_int_equal(ws(r, 2, V2_LEAF, &b), -1);
    CHECK(b == 12345, "bytes changed on failure: %llu", (unsigned long long)b);
    /* Version 0, an empty dir, NULL: -1 (even with both usage files there). */
    put(r, V2_LEAF "/memory.current", "1000\n");
    put(r, V2_LEAF "/memory.usage_in_bytes", "1000\n");
    assert_int_equal(ws(r, 0, V2_LEAF, &b), -1);
    struct cg_limit cg;
    memset(&cg, 0, sizeof cg);
    cg.version = 2;
    assert_int_equal(cgroup_working_set(&cg, &b), -1);
    assert_int_equal(cgroup_working_set(NULL, &b), -1);
    /* What a failed detect returns. */
    assert_int_equal(cgroup_detect(r, &cg), -1);
    assert_int_equal(cgroup_working_set(&cg, &b), -1);
    CHECK(b == 12345, "bytes changed on failure: %llu", (unsigned long long)b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_v2_leaf_max, make_root, remove_root),
        cmocka_unit_test_setup_teardown(test_v2_high_below_max, make_root, remove_root),
        cmocka_unit_test_setup_teardown(test_v2_all_max, make_root, remove_root),
        cmocka_unit_test_setup_teardown(test_v2_parent_stricter, make_root, remove_root),
        cmocka_unit_test_setup_teardown(test_v2_mount_point_is_top, make_root, remove_root),
        cmocka_unit_test_setup_teardown(test_v2_namespace, make_root, remove_root),
        cmocka_unit_test_setup_teardown(test_v1_unlimited, make_root, remove_root),
        cmocka_unit_test_setup_teardown(test_v1_numeric, make_root, remove_root),
        cmocka_unit_test_setup_teardown(test_v1_parent_stricter, make_root, remove_root),
        cmocka_unit_test_setup_teardown(test_v1_hierarchical, make_root, remove_root),
        cmocka_unit_test_setup_teardown(test_v1_controller_list, make_root, remove_root),
        cmocka_unit_test_setup_teardown(test_hybrid_prefers_v1, make_root, remove_root),
        cmocka_unit_test_setup_teardown(test_hybrid_falls_back_to_v2, make_root, remove_root),
        cmocka_unit_test_setup_teardown(test_mount_root_stripped, make_root, remove_root),
        cmocka_unit_test_setup_teardown(test_mount_octal_escapes, make_root, remove_root),
        cmocka_unit_test_setup_teardown(test_mount_optional_fields, make_root, remove_root),
        cmocka_unit_test_setup_teardown(test_mount_long_line, make_root, remove_root),
        cmocka_unit_test_setup_teardown(test_long_lines_elsewhere, make_root, remove_root),
        cmocka_unit_test_setup_teardown(test_missing, make_root, remove_root),
        cmocka_unit_test_setup_teardown(test_ws_v2, make_root, remove_root),
        cmocka_unit_test_setup_teardown(test_ws_v1, make_root, remove_root),
        cmocka_unit_test_setup_teardown(test_ws_floor_and_errors, make_root, remove_root),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
