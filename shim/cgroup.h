/* cgroup.h: the container's memory limit and working set, from the cgroup
 * files (v2 memory.max/memory.high, v1 hierarchical limit). Reads files with
 * sys.c's raw open/read/close into stack buffers: never allocates, no
 * stdio, so it can run inside the shim. Every path is prefixed with `root`
 * ("" on a real system) so that tests can point it at a fake tree. */
#ifndef RESHIM_CGROUP_H
#define RESHIM_CGROUP_H

#include <stdint.h>

#define CG_PATH_MAX 512
#define CG_UNLIMITED_V1 (1ull << 62) /* v1 limits at or above this mean "unlimited" */

struct cg_limit {
    int version;              /* 0: no memory cgroup found; 1 or 2 */
    uint64_t limit;           /* bytes; 0 = unlimited or unknown */
    char dir[CG_PATH_MAX];    /* the cgroup directory whose limit binds (where the working
                                 set is read); the process's own cgroup when unlimited;
                                 "" when version is 0. Includes the root prefix. */
};

/* Finds this process's memory cgroup from <root>/proc/self/cgroup and
 * <root>/proc/self/mountinfo. v1 (a hierarchy whose controllers include
 * "memory") is preferred on hybrid systems; else the v2 "0::" line on a
 * cgroup2 mount. The cgroup path is joined to the mount point after removing
 * the mount's root (field 4 of mountinfo; octal escapes like \040 decoded).
 * v2: the smallest of memory.max and memory.high ("max" = none) over the
 * cgroup and every ancestor up to the mount point. v1: the smallest of
 * memory.limit_in_bytes over the cgroup and its ancestors, and of
 * hierarchical_memory_limit in its memory.stat; values >= CG_UNLIMITED_V1 are
 * unlimited. Returns 0 when a memory cgroup was found (limit may still be
 * 0), -1 when none (version 0). */
int cgroup_detect(const char *root, struct cg_limit *out);

/* The working set of cg->dir: usage minus inactive file pages (v2:
 * memory.current - inactive_file of memory.stat; v1: memory.usage_in_bytes -
 * total_inactive_file), floored at 0. Returns 0, or -1 when unreadable. */
int cgroup_working_set(const struct cg_limit *cg, uint64_t *bytes);

#endif
