/* budget.h: the memory budget as pure decisions: where the budget comes
 * from, which state a usage figure puts the process in (with hysteresis),
 * whether to trim, whether to deny an allocation, how often to poll RSS.
 * Pure: no I/O, no clock (times are passed in), no allocation; unit-tested
 * in tests/unit/test_budget.c. */
#ifndef RESHIM_BUDGET_H
#define RESHIM_BUDGET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"

enum mem_state { MS_OK, MS_WARN, MS_CRITICAL, MS_OVER };
enum budget_source { BSRC_NONE, BSRC_ENV, BSRC_CGROUP };

const char *mem_state_name(enum mem_state s);         /* "ok" "warn" "critical" "over" */
const char *budget_source_name(enum budget_source s); /* "none" "env" "cgroup" */

#define BUDGET_HYSTERESIS 0.05   /* share of the budget usage must fall below a threshold to leave a state */
#define BUDGET_RESERVE 0.02      /* share of the budget kept for small allocations under enforce */
#define BUDGET_SMALL_REQUEST (64u * 1024) /* requests below this may use the reserve */
#define BUDGET_TRIM_INTERVAL_NS (30ull * 1000000000ull) /* after a futile automatic trim: 30 s */
#define BUDGET_TRIM_AGAIN_NS (1000000000ull) /* after one that released at least the floor: 1 s */

struct budget_params {
    uint64_t budget;             /* bytes; 0 = no budget (state always ok, nothing denied) */
    double warn, trim;           /* fractions of the budget (config mem_warn, mem_trim) */
    enum reshim_mem_policy policy;
    /* The container's limit (0: none known): where the kernel kills. Under
     * enforce nothing is granted within KILL_HEADROOM of it, whatever the
     * budget: the kernel charges the container for more than the process's
     * resident memory (page tables, socket buffers, page cache; measured:
     * 13 MB over the process's own usage in a 256M cgroup), and a budget at
     * the limit (auto) let python3 be OOM-killed after its first denial. */
    uint64_t kill_line;
};
#define KILL_HEADROOM 0.08

/* The budget in bytes from the configuration and the container limit
 * (cgroup_limit 0 = none known). BYTES: the size, source env. PERCENT: that
 * share of the container limit, source cgroup; 0/none without a limit. AUTO:
 * the container limit, source cgroup; 0/none without one. OFF: 0/none. */
uint64_t budget_resolve(const struct reshim_config *c, uint64_t cgroup_limit,
                        enum budget_source *src);

/* What is compared to the budget: the larger of the process's RSS and, when
 * the budget comes from the cgroup, the container's working set. */
uint64_t budget_usage(uint64_t rss, uint64_t working_set, enum budget_source src);

/* The state for a usage figure, given the current state. Rising: the highest
 * threshold reached (warn at warn*budget, critical at trim*budget, over at
 * budget; shares of the budget are rounded up to whole bytes). Thresholds
 * are kept in order whatever the shares say: a warn share above the trim
 * share reaches critical together with warn, a share above 1 is the budget.
 * Falling: a state is left only once usage is BUDGET_HYSTERESIS of the
 * budget below its threshold. budget 0: always MS_OK. */
enum mem_state budget_next_state(const struct budget_params *p, enum mem_state cur,
                                 uint64_t usage);

/* Minimum estimated reclaimable bytes that make a trim worth its cost:
 * budget/20, clamped to [1 MiB, 64 MiB]. */
uint64_t budget_trim_floor(uint64_t budget);

/* Automatic trim: state >= critical, policy trim or enforce, reclaimable >=
 * budget_trim_floor(budget), and the last automatic trim (last_trim_ns, 0 =
 * never) far enough back: BUDGET_TRIM_INTERVAL_NS when it released less than
 * the floor (a fragmented heap: trimming again soon would only cost time
 * under the arena locks), BUDGET_TRIM_AGAIN_NS when it released at least the
 * floor (a program that frees in steps gets each step back). After a trim
 * that released at least the floor, less than BUDGET_TRIM_INTERVAL_NS ago,
 * any state will do: the episode goes on until nothing worth it is left. */
bool budget_should_trim(const struct budget_params *p, enum mem_state s, uint64_t now_ns,
                        uint64_t last_trim_ns, uint64_t last_released, uint64_t reclaimable);

/* True when the allocation gate must be consulted on every allocation:
 * policy enforce, a budget, and state >= warn. */
bool budget_gate_armed(const struct budget_params *p, enum mem_state s);

/* Enforce: deny a request of n bytes when usage + n would pass the budget
 * minus BUDGET_RESERVE of it; requests below BUDGET_SMALL_REQUEST may use
 * the reserve (denied only past the budget itself), so that an app can still
 * handle the error it gets. Never denies under other policies or without a
 * budget. Overflow-safe for any n. */
bool budget_should_deny(const struct budget_params *p, uint64_t usage, size_t n);

/* How long until the next RSS poll: 100 ms below 50 % of the budget, 10 ms
 * at or above 70 %, 50 ms between; 1 s without a budget. */
uint64_t budget_poll_interval_ns(const struct budget_params *p, uint64_t usage);

#endif
