/* test_policy.c: unit tests of shim/policy.c: which errno values are
 * retried (libreshim(7), WHAT IS RETRIED) and the
 * "one more retry?" decision (attempts, ETIMEDOUT once, deadline, floors). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <errno.h>
#include <netdb.h>
#include <sys/socket.h>

#include <cmocka.h>

#include "policy.h"

#define MS 1000000ull
#define SEC 1000000000ull

#define CHECK(cond, ...)           \
    do {                           \
        if (!(cond))               \
            fail_msg(__VA_ARGS__); \
    } while (0)

static const int families[] = {AF_INET, AF_INET6, AF_UNIX};

static void test_connect_class_retried(void **state)
{
    static const int retry[] = {ECONNREFUSED, ECONNRESET, ENETUNREACH, EHOSTUNREACH};
    for (size_t f = 0; f < 3; f++) {
        for (size_t i = 0; i < sizeof retry / sizeof retry[0]; i++)
            CHECK(policy_connect_class(families[f], retry[i]) == RC_RETRY,
                  "family %d errno %d (%s): not RC_RETRY", families[f], retry[i],
                  strerror(retry[i]));
        CHECK(policy_connect_class(families[f], ETIMEDOUT) == RC_RETRY_ONCE,
              "family %d ETIMEDOUT: not RC_RETRY_ONCE", families[f]);
    }
    assert_int_equal(policy_connect_class(AF_INET, EADDRNOTAVAIL), RC_RETRY_SLOW);
    assert_int_equal(policy_connect_class(AF_INET6, EADDRNOTAVAIL), RC_RETRY_SLOW);
    /* AF_UNIX only: the server socket is not there yet, or its backlog is full. */
    assert_int_equal(policy_connect_class(AF_UNIX, ENOENT), RC_RETRY);
    assert_int_equal(policy_connect_class(AF_UNIX, EAGAIN), RC_RETRY);
    assert_int_equal(policy_connect_class(AF_UNIX, EWOULDBLOCK), RC_RETRY);
}

static void test_connect_class_never(void **state)
{
    static const int never[] = {
        0, EACCES, EPERM, EAFNOSUPPORT, EINVAL, EBADF, ENOTSOCK, EISCONN, EINTR, EALREADY,
        EINPROGRESS, EPROTOTYPE, EFAULT, ENOMEM, ENOBUFS, ENETDOWN, EPIPE, ECONNABORTED, -1,
    };
    for (size_t f = 0; f < 3; f++)
        for (size_t i = 0; i < sizeof never / sizeof never[0]; i++)
            CHECK(policy_connect_class(families[f], never[i]) == RC_NEVER,
                  "family %d errno %d: retried", families[f], never[i]);
    /* ENOENT and EAGAIN mean something else on inet sockets: never retried. */
    assert_int_equal(policy_connect_class(AF_INET, ENOENT), RC_NEVER);
    assert_int_equal(policy_connect_class(AF_INET6, ENOENT), RC_NEVER);
    assert_int_equal(policy_connect_class(AF_INET, EAGAIN), RC_NEVER);
    assert_int_equal(policy_connect_class(AF_INET6, EAGAIN), RC_NEVER);
}

static struct retry_call call_at(unsigned retries, unsigned timeouts, uint64_t deadline)
{
    struct retry_call c = {retries, timeouts, 0, deadline};
    return c;
}

static void test_next_attempts(void **state)
{
    struct backoff b = {100 * MS, 1 * SEC, JITTER_NONE};
    const uint64_t now = 1000 * SEC;
    uint64_t delay;
    static const uint64_t want[] = {100 * MS, 200 * MS, 400 * MS};
    for (unsigned r = 0; r < 3; r++) {
        struct retry_call c = call_at(r, 0, now + 10 * SEC);
        delay = 0;
        assert_int_equal(policy_connect_next(&b, 3, &c, AF_INET, ECONNREFUSED, now, 0, &delay),
                         RV_RETRY);
        assert_int_equal(delay, want[r]);
    }
    struct retry_call c = call_at(3, 0, now + 10 * SEC);
    assert_int_equal(policy_connect_next(&b, 3, &c, AF_INET, ECONNREFUSED, now, 0, &delay),
                     RV_ATTEMPTS);
    c = call_at(4, 0, now + 10 * SEC);
    assert_int_equal(policy_connect_next(&b, 3, &c, AF_INET, ECONNREFUSED, now, 0, &delay),
                     RV_ATTEMPTS);

    /* Many retries: the delay is capped. */
    c = call_at(50, 0, now + 100 * SEC);
    assert_int_equal(policy_connect_next(&b, 100, &c, AF_INET6, EHOSTUNREACH, now, 0, &delay),
                     RV_RETRY);
    assert_int_equal(delay, 1 * SEC);
    c = call_at(100, 0, now + 100 * SEC);
    assert_int_equal(policy_connect_next(&b, 100, &c, AF_INET6, EHOSTUNREACH, now, 0, &delay),
                     RV_ATTEMPTS);

    /* AF_UNIX server not up yet. */
    c = call_at(0, 0, now + 10 * SEC);
    assert_int_equal(policy_connect_next(&b, 3, &c, AF_UNIX, ENOENT, now, 0, &delay), RV_RETRY);
    assert_int_equal(delay, 100 * MS);
}

static void test_next_retries_zero(void **state)
{
    struct backoff b = {100 * MS, 1 * SEC, JITTER_NONE};
    const uint64_t now = 5 * SEC;
    struct retry_call c = call_at(0, 0, now + 10 * SEC);
    uint64_t delay;
    static const int errs[] = {ECONNREFUSED, ECONNRESET, ENETUNREACH, EHOSTUNREACH, ETIMEDOUT,
                               EADDRNOTAVAIL};
    for (size_t i = 0; i < sizeof errs / sizeof errs[0]; i++)
        CHECK(policy_connect_next(&b, 0, &c, AF_INET, errs[i], now, 0, &delay) == RV_ATTEMPTS,
              "RETRIES=0, errno %d: not RV_ATTEMPTS", errs[i]);
    assert_int_equal(policy_connect_next(&b, 0, &c, AF_UNIX, ENOENT, now, 0, &delay),
                     RV_ATTEMPTS);
    /* Not retryable is reported as such whatever the count. */
    assert_int_equal(policy_connect_next(&b, 0, &c, AF_INET, EACCES, now, 0, &delay),
                     RV_NOT_RETRYABLE);
}

static void test_next_not_retryable(void **state)
{
    struct backoff b = {100 * MS, 1 * SEC, JITTER_NONE};
    const uint64_t now = 5 * SEC;
    struct retry_call c = call_at(0, 0, now + 10 * SEC);
    uint64_t delay = 4242;
    static const int never[] = {EACCES, EPERM, EAFNOSUPPORT, EINVAL, EBADF, ENOTSOCK, EISCONN,
                                EINTR, EINPROGRESS};
    for (size_t f = 0; f < 3; f++)
        for (size_t i = 0; i < sizeof never / sizeof never[0]; i++)
            CHECK(policy_connect_next(&b, 3, &c, families[f], never[i], now, 0, &delay) ==
                      RV_NOT_RETRYABLE,
                  "family %d errno %d: not RV_NOT_RETRYABLE", families[f], never[i]);
    assert_int_equal(policy_connect_next(&b, 3, &c, AF_INET, ENOENT, now, 0, &delay),
                     RV_NOT_RETRYABLE);
    assert_int_equal(policy_connect_next(&b, 3, &c, AF_INET6, EAGAIN, now, 0, &delay),
                     RV_NOT_RETRYABLE);
    /* Exhausted attempts do not hide "not retryable". */
    c = call_at(9, 1, now + 10 * SEC);
    assert_int_equal(policy_connect_next(&b, 3, &c, AF_INET, EPERM, now, 0, &delay),
                     RV_NOT_RETRYABLE);
}

static void test_next_timeout_once(void **state)
{
    struct backoff b = {100 * MS, 1 * SEC, JITTER_NONE};
    const uint64_t now = 5 * SEC;
    uint64_t delay = 0;
    struct retry_call c = call_at(0, 0, now + 30 * SEC);
    assert_int_equal(policy_connect_next(&b, 3, &c, AF_INET, ETIMEDOUT, now, 0, &delay),
                     RV_RETRY);
    assert_int_equal(delay, 100 * MS);
    /* After one ETIMEDOUT retry: no second, even with retries left. */
    c = call_at(1, 1, now + 30 * SEC);
    assert_int_equal(policy_connect_next(&b, 3, &c, AF_INET, ETIMEDOUT, now, 0, &delay),
                     RV_ATTEMPTS);
    c = call_at(0, 1, now + 30 * SEC);
    assert_int_equal(policy_connect_next(&b, 3, &c, AF_INET6, ETIMEDOUT, now, 0, &delay),
                     RV_ATTEMPTS);
    /* Other errors still retry after a timeout was retried. */
    c = call_at(1, 1, now + 30 * SEC);
    assert_int_equal(policy_connect_next(&b, 3, &c, AF_INET, ECONNREFUSED, now, 0, &delay),
                     RV_RETRY);
    assert_int_equal(delay, 200 * MS);
    /* ETIMEDOUT not yet retried, but earlier retries of other errors. */
    c = call_at(2, 0, now + 30 * SEC);
    assert_int_equal(policy_connect_next(&b, 3, &c, AF_INET, ETIMEDOUT, now, 0, &delay),
                     RV_RETRY);
    assert_int_equal(delay, 400 * MS);
}

static void test_next_deadline(void **state)
{
    struct backoff b = {100 * MS, 1 * SEC, JITTER_NONE};
    const uint64_t now = 7 * SEC;
    uint64_t delay = 0;
    /* 150 ms left: a 100 ms delay fits, a 200 ms one does not. */
    struct retry_call c = call_at(0, 0, now + 150 * MS);
    assert_int_equal(policy_connect_next(&b, 3, &c, AF_INET, ECONNREFUSED, now, 0, &delay),
                     RV_RETRY);
    assert_int_equal(delay, 100 * MS);
    c = call_at(1, 0, now + 150 * MS);
    assert_int_equal(policy_connect_next(&b, 3, &c, AF_INET, ECONNREFUSED, now, 0, &delay),
                     RV_DEADLINE);
    /* Deadline reached or passed: no retry, no underflow. */
    c = call_at(0, 0, now);
    assert_int_equal(policy_connect_next(&b, 3, &c, AF_INET, ECONNREFUSED, now, 0, &delay),
                     RV_DEADLINE);
    c = call_at(0, 0, now - 1 * SEC);
    assert_int_equal(policy_connect_next(&b, 3, &c, AF_INET, ECONNREFUSED, now, 0, &delay),
                     RV_DEADLINE);
    c = call_at(0, 0, 0);
    assert_int_equal(policy_connect_next(&b, 3, &c, AF_INET, ECONNREFUSED, now, 0, &delay),
                     RV_DEADLINE);
    /* The jittered delay is what counts: equal jitter with rnd 0 halves it. */
    struct backoff eq = {100 * MS, 1 * SEC, JITTER_EQUAL};
    c = call_at(1, 0, now + 150 * MS);
    assert_int_equal(policy_connect_next(&eq, 3, &c, AF_INET, ECONNREFUSED, now, 0, &delay),
                     RV_RETRY);
    assert_int_equal(delay, 100 * MS);
    assert_int_equal(policy_connect_next(&eq, 3, &c, AF_INET, ECONNREFUSED, now, 100 * MS,
                                         &delay),
                     RV_DEADLINE); /* rnd picks the full 200 ms */
    /* A far deadline near the top of the clock. */
    c = call_at(0, 0, UINT64_MAX);
    assert_int_equal(policy_connect_next(&b, 3, &c, AF_INET, ECONNREFUSED, UINT64_MAX - SEC, 0,
                                         &delay),
                     RV_RETRY);
    assert_int_equal(delay, 100 * MS);
}

static void test_next_addrnotavail_floor(void **state)
{
    struct backoff b = {1 * MS, 1 * SEC, JITTER_NONE};
    const uint64_t now = 3 * SEC;
    uint64_t delay = 0;
    struct retry_call c = call_at(0, 0, now + 10 * SEC);
    assert_int_equal(policy_connect_next(&b, 3, &c, AF_INET, EADDRNOTAVAIL, now, 0, &delay),
                     RV_RETRY);
    assert_int_equal(delay, 100 * MS);
    c = call_at(2, 0, now + 10 * SEC); /* nominal 4 ms: still floored */
    assert_int_equal(policy_connect_next(&b, 3, &c, AF_INET6, EADDRNOTAVAIL, now, 0, &delay),
                     RV_RETRY);
    assert_int_equal(delay, 100 * MS);
    /* Other errors are not floored. */
    c = call_at(0, 0, now + 10 * SEC);
    assert_int_equal(policy_connect_next(&b, 3, &c, AF_INET, ECONNREFUSED, now, 0, &delay),
                     RV_RETRY);
    assert_int_equal(delay, 1 * MS);
    /* Longer delays are kept as they are. */
    struct backoff slow = {300 * MS, 1 * SEC, JITTER_NONE};
    assert_int_equal(policy_connect_next(&slow, 3, &c, AF_INET, EADDRNOTAVAIL, now, 0, &delay),
                     RV_RETRY);
    assert_int_equal(delay, 300 * MS);
    /* The floor counts against the deadline. */
    c = call_at(0, 0, now + 50 * MS);
    assert_int_equal(policy_connect_next(&b, 3, &c, AF_INET, EADDRNOTAVAIL, now, 0, &delay),
                     RV_DEADLINE);
    assert_int_equal(policy_connect_next(&b, 3, &c, AF_INET, ECONNREFUSED, now, 0, &delay),
                     RV_RETRY);
}

static void test_next_decorrelated_uses_prev(void **state)
{
    struct backoff b = {100 * MS, 10 * SEC, JITTER_DECORRELATED};
    const uint64_t now = 3 * SEC;
    uint64_t delay = 0;
    struct retry_call c = {2, 0, 1 * SEC, now + 60 * SEC};
    /* U(base, 3 * prev): rnd at the top of the span gives 3 s. */
    assert_int_equal(policy_connect_next(&b, 5, &c, AF_INET, ECONNRESET, now,
                                         3 * SEC - 100 * MS, &delay),
                     RV_RETRY);
    assert_int_equal(delay, 3 * SEC);
    assert_int_equal(policy_connect_next(&b, 5, &c, AF_INET, ECONNRESET, now, 0, &delay),
                     RV_RETRY);
    assert_int_equal(delay, 100 * MS);
}

static void test_data_path(void **state)
{
    assert_true(policy_data_retryable(ENOBUFS));
    assert_true(policy_data_retryable(ENOMEM));
    static const int no[] = {0, EAGAIN, EWOULDBLOCK, EINTR, ECONNRESET, EPIPE, ETIMEDOUT,
                             ECONNREFUSED, EBADF, EINVAL, EMSGSIZE};
    for (size_t i = 0; i < sizeof no / sizeof no[0]; i++)
        CHECK(!policy_data_retryable(no[i]), "data errno %d retryable", no[i]);

    assert_false(policy_data_failure(EAGAIN));
    assert_false(policy_data_failure(EWOULDBLOCK));
    assert_false(policy_data_failure(EINTR));
    static const int fail[] = {ECONNRESET, EPIPE, ETIMEDOUT, ENOBUFS, ENOMEM, EBADF,
                               ENOTCONN, EHOSTUNREACH};
    for (size_t i = 0; i < sizeof fail / sizeof fail[0]; i++)
        CHECK(policy_data_failure(fail[i]), "data errno %d not a failure", fail[i]);
}

static void test_dns(void **state)
{
    assert_true(policy_dns_retryable(EAI_AGAIN));
    static const int no[] = {0, EAI_NONAME, EAI_FAIL, EAI_MEMORY, EAI_SYSTEM, EAI_SERVICE,
                             EAI_FAMILY, EAI_BADFLAGS, EAI_SOCKTYPE, EAI_OVERFLOW};
    for (size_t i = 0; i < sizeof no / sizeof no[0]; i++)
        CHECK(!policy_dns_retryable(no[i]), "EAI %d retryable", no[i]);
}

static void test_verdict_names(void **state)
{
    const char *n[4] = {
        policy_verdict_name(RV_RETRY), policy_verdict_name(RV_NOT_RETRYABLE),
        policy_verdict_name(RV_ATTEMPTS), policy_verdict_name(RV_DEADLINE),
    };
    for (int i = 0; i < 4; i++) {
        assert_non_null(n[i]);
        assert_true(n[i][0] != '\0');
        assert_string_not_equal(n[i], "?");
        for (int j = 0; j < i; j++)
            assert_string_not_equal(n[i], n[j]);
    }
    assert_string_equal(policy_verdict_name((enum retry_verdict)99), "?");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_connect_class_retried),
        cmocka_unit_test(test_connect_class_never),
        cmocka_unit_test(test_next_attempts),
        cmocka_unit_test(test_next_retries_zero),
        cmocka_unit_test(test_next_not_retryable),
        cmocka_unit_test(test_next_timeout_once),
        cmocka_unit_test(test_next_deadline),
        cmocka_unit_test(test_next_addrnotavail_floor),
        cmocka_unit_test(test_next_decorrelated_uses_prev),
        cmocka_unit_test(test_data_path),
        cmocka_unit_test(test_dns),
        cmocka_unit_test(test_verdict_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
