/* policy.c: errno classes and the "one more retry?" decision. Pure. */
#include "policy.h"

#include <errno.h>
#include <netdb.h>
#include <sys/socket.h>

#define SLOW_FLOOR_NS 100000000ull /* 100 ms */

enum retry_class policy_connect_class(int family, int err)
{
    switch (err) {
    case ECONNREFUSED:
    case ECONNRESET:
    case ENETUNREACH:
    case EHOSTUNREACH:
        return RC_RETRY;
    case ETIMEDOUT:
        return RC_RETRY_ONCE;
    case EADDRNOTAVAIL:
        return family == AF_UNIX ? RC_NEVER : RC_RETRY_SLOW;
    case ENOENT:  /* server socket not created yet */
    case EAGAIN:  /* listener backlog full */
        return family == AF_UNIX ? RC_RETRY : RC_NEVER;
    default:
        return RC_NEVER;
    }
}

bool policy_data_retryable(int err)
{
    return err == ENOBUFS || err == ENOMEM;
}

bool policy_data_failure(int err)
{
    return err != EAGAIN && err != EWOULDBLOCK && err != EINTR;
}

bool policy_dns_retryable(int eai)
{
    return eai == EAI_AGAIN;
}

enum retry_verdict policy_connect_next(const struct backoff *b, unsigned max_retries,
                                       const struct retry_call *call, int family, int err,
                                       uint64_t now_ns, uint64_t rnd, uint64_t *delay_ns)
{
    enum retry_class rc = policy_connect_class(family, err);
    if (rc == RC_NEVER)
        return RV_NOT_RETRYABLE;
    if (call->retries >= max_retries)
        return RV_ATTEMPTS;
    if (rc == RC_RETRY_ONCE && call->timeouts >= 1)
        return RV_ATTEMPTS;
    uint64_t d = backoff_delay(b, call->retries, call->prev_delay, rnd);
    if (rc == RC_RETRY_SLOW && d < SLOW_FLOOR_NS)
        d = SLOW_FLOOR_NS;
    if (now_ns >= call->deadline_ns || d >= call->deadline_ns - now_ns)
        return RV_DEADLINE;
    *delay_ns = d;
    return RV_RETRY;
}

const char *policy_verdict_name(enum retry_verdict v)
{
    switch (v) {
    case RV_RETRY: return "retry";
    case RV_NOT_RETRYABLE: return "not retryable";
    case RV_ATTEMPTS: return "retries used up";
    case RV_DEADLINE: return "deadline";
    }
    return "?";
}
