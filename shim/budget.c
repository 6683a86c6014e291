/* budget.c: the memory budget's decisions (see budget.h): where the budget
 * comes from, the state for a usage figure with hysteresis, when to trim,
 * when to deny, how often to poll. Pure: no I/O, no clock, no allocation. */
#include "budget.h"

const char *mem_state_name(enum mem_state s)
{
    static const char names[][9] = {"ok", "warn", "critical", "over"}; /* no relocation */
    return (unsigned)s < sizeof names / sizeof names[0] ? names[s] : "?";
}

const char *budget_source_name(enum budget_source s)
{
    static const char names[][7] = {"none", "env", "cgroup"};
    return (unsigned)s < sizeof names / sizeof names[0] ? names[s] : "?";
}

/* fraction * of, rounded up to a whole byte ("warn at 80 %" means usage >=
 * 0.8 * budget), except that a product within rounding error of a whole
 * number is that number: 0.7 * 47185920 is 33030143.99999... in doubles. */
static uint64_t share(double fraction, uint64_t of)
{
    if (fraction <= 0)
        return 0;
    double v = fraction * (double)of;
    if (v >= 18446744073709549568.0)
        return UINT64_MAX;
    uint64_t whole = (uint64_t)v;
    double eps = v * 1e-12 + 1e-9;
    return v - (double)whole > eps ? whole + 1 : whole;
}

uint64_t budget_resolve(const struct reshim_config *c, uint64_t cgroup_limit,
                        enum budget_source *src)
{
    uint64_t b = 0;
    *src = BSRC_NONE;
    switch (c->mem_budget_kind) {
    case BUDGET_BYTES:
        b = c->mem_budget_bytes;
        *src = b ? BSRC_ENV : BSRC_NONE;
        break;
    case BUDGET_PERCENT:
        b = share(c->mem_budget_fraction, cgroup_limit);
        *src = b ? BSRC_CGROUP : BSRC_NONE;
        break;
    case BUDGET_AUTO:
        b = cgroup_limit;
        *src = b ? BSRC_CGROUP : BSRC_NONE;
        break;
    case BUDGET_OFF:
        break;
    }
    return b;
}

uint64_t budget_usage(uint64_t rss, uint64_t working_set, enum budget_source src)
{
    return src == BSRC_CGROUP && working_set > rss ? working_set : rss;
}

/* Thresholds in bytes, made monotone (warn <= critical <= over) whatever the
 * configuration says: a warn share above the trim share means the critical
 * threshold is reached together with warn. */
static void thresholds(const struct budget_params *p, uint64_t t[4])
{
    t[MS_OK] = 0;
    t[MS_OVER] = p->budget;
    t[MS_CRITICAL] = share(p->trim, p->budget);
    t[MS_WARN] = share(p->warn, p->budget);
    if (t[MS_CRITICAL] > t[MS_OVER])
        t[MS_CRITICAL] = t[MS_OVER];
    if (t[MS_WARN] > t[MS_CRITICAL])
        t[MS_CRITICAL] = t[MS_WARN] <= t[MS_OVER] ? t[MS_WARN] : t[MS_OVER];
    if (t[MS_WARN] > t[MS_CRITICAL])
        t[MS_WARN] = t[MS_CRITICAL];
}

static enum mem_state level(const uint64_t t[4], uint64_t usage)
{
    for (int s = MS_OVER; s > MS_OK; s--)
        if (usage >= t[s])
            return (enum mem_state)s;
    return MS_OK;
}

enum mem_state budget_next_state(const struct budget_params *p, enum mem_state cur,
                                 uint64_t usage)
{
    if (!p->budget)
        return MS_OK;
    uint64_t t[4];
    thresholds(p, t);
    enum mem_state up = level(t, usage);
    if (up >= cur)
        return up;
    /* Falling: stay in a state until usage is the hysteresis below its
     * threshold. */
    uint64_t hyst = share(BUDGET_HYSTERESIS, p->budget);
    uint64_t lifted = usage > UINT64_MAX - hyst ? UINT64_MAX : usage + hyst;
    enum mem_state held = level(t, lifted);
    return held < cur ? held : cur;
}

uint64_t budget_trim_floor(uint64_t budget)
{
    uint64_t f = budget / 20;
    if (f < (1u << 20))
        f = 1u << 20;
    if (f > (64u << 20))
        f = 64u << 20;
    return f;
}

bool budget_should_trim(const struct budget_params *p, enum mem_state s, uint64_t now_ns,
                        uint64_t last_trim_ns, uint64_t last_released, uint64_t reclaimable)
{
    if (!p->budget || p->policy == MEMPOL_WARN)
        return false;
    uint64_t floor = budget_trim_floor(p->budget);
    bool paid_off = last_trim_ns && last_released >= floor;
    uint64_t since = now_ns - last_trim_ns;
    /* A trim at critical that paid off goes on (an episode), whatever the
     * state: the first trim often comes while the app is in the middle of
     * freeing, and takes usage under critical with most of the freed heap
     * still resident. */
    if (s < MS_CRITICAL && !(paid_off && since < BUDGET_TRIM_INTERVAL_NS))
        return false;
    uint64_t gap = paid_off ? BUDGET_TRIM_AGAIN_NS : BUDGET_TRIM_INTERVAL_NS;
    if (last_trim_ns && since < gap)
        return false;
    return reclaimable >= floor;
}

bool budget_gate_armed(const struct budget_params *p, enum mem_state s)
{
    return p->budget && p->policy == MEMPOL_ENFORCE && s >= MS_WARN;
}

bool budget_should_deny(const struct budget_params *p, uint64_t usage, size_t n)
{
    if (!p->budget || p->policy != MEMPOL_ENFORCE)
        return false;
    uint64_t limit = p->budget;
    if (n >= BUDGET_SMALL_REQUEST)
        limit -= share(BUDGET_RESERVE, p->budget);
    if (p->kill_line) {
        uint64_t safe = p->kill_line - share(KILL_HEADROOM, p->kill_line);
        if (limit > safe)
            limit = safe;
    }
    if (usage > limit)
        return true;
    return (uint64_t)n > limit - usage;
}

uint64_t budget_poll_interval_ns(const struct budget_params *p, uint64_t usage)
{
    if (!p->budget)
        return 1000000000ull;
    if (usage >= share(0.70, p->budget))
        return 10000000ull;
    if (usage < share(0.50, p->budget))
        return 100000000ull;
    return 50000000ull;
}
