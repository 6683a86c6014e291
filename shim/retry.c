/* retry.c: the retry session (see retry.h): the one place that decides,
 * counts and logs connect retries, and counts every connect's outcome.
 * Never blocks, never allocates. */
#define _GNU_SOURCE
#include "retry.h"

#include <errno.h>

#include "backoff.h"
#include "config.h"
#include "dnscache.h"
#include "log.h"
#include "reshim.h"
#include "stats.h"

static struct backoff backoff_of(const struct reshim_config *cfg)
{
    return (struct backoff){cfg->backoff_base_ns, cfg->backoff_max_ns, cfg->jitter};
}

struct breaker_params retry_breaker_params(void)
{
    const struct reshim_config *cfg = reshim_cfg();
    struct backoff bo = backoff_of(cfg);
    return (struct breaker_params){
        cfg->breaker, breaker_after_ns(backoff_span(&bo, cfg->retries, cfg->retry_deadline_ns))};
}

void retry_count_call(uint16_t dest)
{
    ATOMIC_INC(&reshim_stats.net[NC_CONNECT].calls);
    if (dest) {
        struct dest_slot *ds = reshim_dest(dest);
        ATOMIC_INC(&ds->connect.calls);
        rbudget_note_call(&ds->budget, reshim_cfg()->retry_budget);
    }
}

/* Counters and breaker for one call's final outcome. */
static void account(uint16_t dest, int err, unsigned retries, bool *probe, uint64_t start_ns,
                    bool replay)
{
    struct dest_slot *ds = reshim_dest(dest);
    struct net_counters *g = &reshim_stats.net[NC_CONNECT];
    if (replay) {
        if (retries) {
            ATOMIC_INC(err ? &reshim_stats.replay.gave_up : &reshim_stats.replay.recovered);
            if (dest)
                ATOMIC_INC(err ? &ds->replay.gave_up : &ds->replay.recovered);
        }
    } else if (err == 0) {
        if (retries) {
            ATOMIC_INC(&g->recovered);
            if (dest)
                ATOMIC_INC(&ds->connect.recovered);
        }
    } else {
        ATOMIC_INC(&g->failures);
        if (retries)
            ATOMIC_INC(&g->gave_up);
        if (dest) {
            ATOMIC_INC(&ds->connect.failures);
            if (retries)
                ATOMIC_INC(&ds->connect.gave_up);
            ATOMIC_STORE(&ds->last_error, err);
        }
    }
    if (!dest) { /* the overflow slot's breaker never opens */
        breaker_drop_probe(&ds->breaker, probe);
        return;
    }
    uint64_t now = reshim_now_ns();
    struct breaker_params bp = retry_breaker_params();
    if (breaker_record(&ds->breaker, &bp, err != 0, *probe, start_ns, now, reshim_random()))
        LOG_WARN("breaker open for %s after %u failed connects in a row over %llu ms: no "
                 "retries until it half-opens", ds->name,
                 (unsigned)ATOMIC_LOAD(&ds->breaker.consecutive),
                 (unsigned long long)((now - ATOMIC_LOAD(&ds->breaker.failing_since)) / 1000000));
    *probe = false;
}

void retry_outcome(uint16_t dest, int err, uint64_t start_ns)
{
    bool probe = false;
    account(dest, err, 0, &probe, start_ns, false);
}

void retry_connect_learned(int fd, struct fdinfo fi, int err)
{
    if (!fdtab_update(fd, fi.gen, err ? PH_FAILED : PH_CONNECTED, fi.dest))
        return; /* someone else counted it, or the fd changed */
    retry_outcome(fi.dest, err, reshim_now_ns());
}

void retry_begin(struct retry_session *s, uint16_t dest, int family, bool nonblocking,
                 uint64_t start_ns, uint64_t deadline_ns)
{
    *s = (struct retry_session){.dest = dest, .family = (uint8_t)family,
                                .nonblocking = nonblocking, .start_ns = start_ns,
                                .call.deadline_ns = deadline_ns};
}

void retry_begin_replay(struct retry_session *s, uint16_t dest, int family, int replay_case,
                        uint64_t start_ns, uint64_t deadline_ns)
{
    retry_begin(s, dest, family, false, start_ns, deadline_ns);
    s->replay = (uint8_t)(1 + replay_case);
}

bool retry_next(struct retry_session *s, const struct sockaddr *addr, socklen_t len, int err,
                uint64_t now, uint64_t *delay_ns)
{
    const struct reshim_config *cfg = reshim_cfg();
    struct dest_slot *ds = reshim_dest(s->dest);
    struct backoff bo = backoff_of(cfg);
    char eb[16];
    uint64_t delay = 0;
    enum retry_verdict v = policy_connect_next(&bo, cfg->retries, &s->call, s->family, err, now,
                                               reshim_random(), &delay);
    if (v != RV_RETRY) {
        s->why = policy_verdict_name(v);
        return false;
    }
    if (!s->guards_checked) { /* once per call: filter, then breaker */
        s->guards_checked = true;
        if (!dest_rules_allow(&cfg->dest, addr, len, reshim_dns_name_has_addr, NULL)) {
            ATOMIC_INC(&ds->skipped_filter);
            s->why = "RESHIM_DEST";
            return false;
        }
        struct breaker_params bp = retry_breaker_params();
        if (!breaker_allow_retry(&ds->breaker, &bp, now, &s->probe)) {
            ATOMIC_INC(&ds->skipped_breaker);
            LOG_INFO("breaker for %s is open: not retrying %s", ds->name,
                     reshim_errno_name(err, eb));
            s->why = "breaker open";
            return false;
        }
    }
    if (!rbudget_take(&ds->budget, &s->hold)) { /* slot 0's is shared by the overflow */
        ATOMIC_INC(&ds->skipped_budget);
        LOG_INFO("retry budget for %s spent: not retrying %s", ds->name,
                 reshim_errno_name(err, eb));
        s->why = "retry budget spent";
        return false;
    }
    s->call.retries++;
    if (err == ETIMEDOUT)
        s->call.timeouts++;
    s->call.prev_delay = delay;
    if (s->replay) {
        ATOMIC_INC(&reshim_stats.replay.replays[s->replay - 1]);
        if (s->dest)
            ATOMIC_INC(&ds->replay.replays[s->replay - 1]);
    } else {
        ATOMIC_INC(&reshim_stats.net[NC_CONNECT].retries);
        if (s->dest)
            ATOMIC_INC(&ds->connect.retries);
    }
    LOG_DEBUG("%s to %s%s: %s; retry %u/%u in %llu ms", s->replay ? "replay" : "connect",
              ds->name, s->nonblocking ? " (non-blocking)" : "", reshim_errno_name(err, eb),
              s->call.retries, cfg->retries, (unsigned long long)(delay / 1000000));
    *delay_ns = delay;
    return true;
}

void retry_end(struct retry_session *s, int err)
{
    if (s->ended)
        return;
    s->ended = true;
    struct dest_slot *ds = reshim_dest(s->dest);
    unsigned n = s->call.retries;
    char eb[16];
    const char *what = s->replay ? "replay to" : "connect to";
    account(s->dest, err, n, &s->probe, s->start_ns, s->replay != 0);
    rbudget_done(&ds->budget, &s->hold, err == 0);
    if (n && !err)
        LOG_INFO("%s %s recovered after %u %s", what, ds->name, n, n == 1 ? "retry" : "retries");
    else if (n)
        LOG_INFO("%s %s gave up after %u retries (%s): %s", what, ds->name, n,
                 s->why ? s->why : "?", reshim_errno_name(err, eb));
}

void retry_abandon(struct retry_session *s)
{
    if (s->ended)
        return;
    s->ended = true;
    struct dest_slot *ds = reshim_dest(s->dest);
    breaker_drop_probe(&ds->breaker, &s->probe);
    rbudget_done(&ds->budget, &s->hold, false);
}
