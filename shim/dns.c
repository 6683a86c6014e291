/* dns.c: getaddrinfo. Normal lookups pass through untouched (the answer is
 * also remembered). On EAI_AGAIN, a temporary failure, the lookup is retried;
 * when it persists, the last good answer for the same query, up to
 * RESHIM_DNS_STALE old, is returned instead (serve-stale, RFC 8767).
 * EAI_NONAME and EAI_FAIL are never retried. The answers and the stale
 * copies live in dnscache.c. */
#define _GNU_SOURCE
#include "dnscache.h"

#include <errno.h>
#include <netdb.h>
#include <string.h>

#include "alloc.h"
#include "attempt.h"
#include "backoff.h"
#include "config.h"
#include "log.h"
#include "net.h"
#include "policy.h"
#include "stats.h"

#define DNS_STALE_RETRY_NS 200000000ull /* one quick retry when a stale answer waits */

/* A stale answer handed to the app is the app's memory: its freeaddrinfo
 * frees it. */
static const struct dns_app_alloc app_alloc = {reshim_app_malloc, reshim_app_calloc,
                                               reshim_app_free};

static int reshim_getaddrinfo(const char *node, const char *service,
                              const struct addrinfo *hints, struct addrinfo **res)
{
    if (!REAL(getaddrinfo))
        return EAI_SYSTEM;
    if (!reshim_active())
        return real_getaddrinfo(node, service, hints, res);
    reshim_slow_point();
    const struct reshim_config *cfg = reshim_cfg();
    struct net_counters *g = &reshim_stats.net[NC_DNS];
    struct dns_key key;
    bool cacheable = dns_make_key(node, service, hints, &key);
    uint64_t start = reshim_now_ns();
    ATOMIC_INC(&g->calls);

    int r = real_getaddrinfo(node, service, hints, res);
    if (r == 0) {
        if (cacheable && cfg->dns_stale_ns)
            dns_remember(&key, *res);
        return 0;
    }
    int saved_errno = errno;
    if (!policy_dns_retryable(r) || !cacheable) {
        ATOMIC_INC(&g->failures);
        errno = saved_errno;
        return r;
    }
    /* EAI_AGAIN. With a stale answer at hand, one quick retry, then the
     * stale answer: glibc may already have waited for its own timeouts. */
    bool stale = cfg->dns_stale_ns && dns_have_stale(&key, cfg->dns_stale_ns);
    struct backoff bo = {cfg->backoff_base_ns, cfg->backoff_max_ns, cfg->jitter};
    unsigned max = stale ? (cfg->retries ? 1 : 0) : cfg->retries;
    uint64_t deadline = start + cfg->retry_deadline_ns, prev = 0;
    unsigned retries = 0;
    while (retries < max && r == EAI_AGAIN) {
        uint64_t delay = stale ? reshim_random() % DNS_STALE_RETRY_NS
                               : backoff_delay(&bo, retries, prev, reshim_random());
        uint64_t now = reshim_now_ns();
        if (now >= deadline || delay >= deadline - now)
            break;
        LOG_DEBUG("getaddrinfo(%.200s): temporary failure; retry %u/%u in %llu ms", node,
                  retries + 1, max, (unsigned long long)(delay / 1000000));
        if (!attempt_sleep(delay))
            break;
        prev = delay;
        retries++;
        ATOMIC_INC(&g->retries);
        r = real_getaddrinfo(node, service, hints, res);
        saved_errno = errno;
    }
    if (r == 0) {
        ATOMIC_INC(&g->recovered);
        if (cfg->dns_stale_ns)
            dns_remember(&key, *res);
        LOG_INFO("getaddrinfo(%.200s) recovered after %u %s", node, retries,
                 retries == 1 ? "retry" : "retries");
        return 0;
    }
    if (r == EAI_AGAIN && stale) {
        uint64_t age = 0;
        struct addrinfo *copy = dns_stale_answer(&key, cfg->dns_stale_ns, &age, &app_alloc);
        if (copy) {
            *res = copy;
            ATOMIC_INC(&g->recovered);
            ATOMIC_INC(&reshim_stats.dns_stale_answers);
            LOG_INFO("getaddrinfo(%.200s): temporary failure; answering with the last good "
                     "answer, %llu s old", node, (unsigned long long)(age / 1000000000ull));
            return 0;
        }
    }
    ATOMIC_INC(&g->failures);
    if (retries)
        ATOMIC_INC(&g->gave_up);
    errno = saved_errno;
    return r;
}

EXPORT int getaddrinfo(const char *node, const char *service, const struct addrinfo *hints,
                       struct addrinfo **res)
{
    return reshim_getaddrinfo(node, service, hints, res);
}
