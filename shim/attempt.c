/* attempt.c: the steps of connecting a socket again inside the app's call
 * (see attempt.h): shared by the blocking connect retry (net.c) and a
 * replay (replay.c), which decide with the retry session (retry.h) and call
 * these to wait and act; the DNS retry (dns.c) waits with the same sleep. Here, below both, so that neither calls the
 * other: before, replay.c called these in net.c while net.c called
 * replay.c's tracking, a cycle of two files. Calls only real_* (real.h)
 * and the clock; never allocates, never logs, never counts. */
#define _GNU_SOURCE
#include "attempt.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <time.h>

#include "real.h"
#include "reshim.h"

/* True when every signal the app catches has SA_RESTART. A blocking
 * connect the kernel runs is then restarted after a handler, and the app
 * never hears EINTR: a signal that interrupts the shim's own backoff sleep
 * or attempt poll (never restarted by the kernel) must not end the retries
 * either (a periodic SA_RESTART timer would otherwise turn every retry
 * off). The fault signals are left out: their handlers (crash reporters,
 * sanitizers, runtimes) run on a fault of the thread itself, never in the
 * middle of a sleep. Asked only after an EINTR: one sigaction() per signal. */
static bool signals_restart(void)
{
    int saved = errno; /* sigaction refuses glibc's own signals with EINVAL */
    bool all = true;
    for (int s = 1; s < NSIG && all; s++) {
        struct sigaction sa;
        if (s == SIGSEGV || s == SIGBUS || s == SIGFPE || s == SIGILL || s == SIGTRAP ||
            s == SIGSYS || (s > SIGSYS && s < SIGRTMIN))
            continue;
        if (sigaction(s, NULL, &sa) != 0) /* SIGKILL, SIGSTOP are fine */
            continue;
        if (!(sa.sa_flags & SA_SIGINFO) && (sa.sa_handler == SIG_DFL || sa.sa_handler == SIG_IGN))
            continue; /* no handler: the signal kills, stops, or is ignored */
        if (!(sa.sa_flags & SA_RESTART))
            all = false;
    }
    errno = saved;
    return all;
}

/* Sleeps ns; false when a signal interrupted the sleep (and a handler
 * without SA_RESTART is installed: see signals_restart). */
bool attempt_sleep(uint64_t ns)
{
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    uint64_t t = (uint64_t)until.tv_nsec + ns;
    until.tv_sec += (time_t)(t / 1000000000ull);
    until.tv_nsec = (long)(t % 1000000000ull);
    for (;;) {
        int r = clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &until, NULL);
        if (r == EINTR && signals_restart())
            continue;
        return r == 0;
    }
}

void attempt_dissolve(int fd)
{
    struct sockaddr unspec = {.sa_family = AF_UNSPEC};
    real_connect(fd, &unspec, sizeof unspec);
}

/* Non-blocking connect, then poll (see attempt.h). */
int attempt_connect(int fd, const struct sockaddr *addr, socklen_t len, uint64_t deadline)
{
    int flags = real_fcntl(fd, F_GETFL);
    if (flags < 0)
        return errno;
    if (!(flags & O_NONBLOCK))
        real_fcntl(fd, F_SETFL, flags | O_NONBLOCK);
    int result;
    int r = real_connect(fd, addr, len);
    if (r < 0 && errno == ECONNABORTED) /* reaps an earlier failed attempt */
        r = real_connect(fd, addr, len);
    if (r == 0) {
        result = 0;
    } else if (errno != EINPROGRESS) {
        result = errno;
    } else {
        for (;;) {
            uint64_t now = reshim_now_ns();
            if (now >= deadline) {
                attempt_dissolve(fd);
                result = ATTEMPT_DEADLINE;
                break;
            }
            uint64_t left_ms = (deadline - now + 999999) / 1000000;
            struct pollfd p = {.fd = fd, .events = POLLOUT};
            int n = REAL(poll)(&p, 1, left_ms > 60000 ? 60000 : (int)left_ms);
            int perr = errno;
            if (n < 0 && perr == EINTR && attempt_app_timeout_ns(fd, false) == 0 &&
                signals_restart())
                continue; /* the kernel would have restarted the app's connect */
            errno = perr;
            if (n < 0 && errno == EINTR) {
                /* As the kernel does for an interrupted connect (a handler
                 * without SA_RESTART, or a send timeout on the socket): the
                 * attempt goes on in the background and the app hears EINTR. */
                result = ATTEMPT_INTERRUPTED;
                break;
            }
            if (n < 0) {
                result = errno;
                break;
            }
            if (n == 0)
                continue;
            int soerr = 0;
            socklen_t sl = sizeof soerr;
            if (real_getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0)
                soerr = errno;
            result = soerr;
            break;
        }
    }
    if (!(flags & O_NONBLOCK))
        real_fcntl(fd, F_SETFL, flags);
    return result;
}

uint64_t attempt_app_timeout_ns(int fd, bool rcv)
{
    struct timeval tv;
    socklen_t tl = sizeof tv;
    if (real_getsockopt(fd, SOL_SOCKET, rcv ? SO_RCVTIMEO : SO_SNDTIMEO, &tv, &tl) != 0)
        return 0;
    return (uint64_t)tv.tv_sec * 1000000000ull + (uint64_t)tv.tv_usec * 1000ull;
}
