/* wake.c: the stats thread's wake-up pipe (see wake.h). A pipe, not an
 * eventfd: every eventfd shares one inode, so the fstat identity check of
 * the shim's own descriptors (sys_own_ok) could not tell ours from the
 * app's. Both ends are kept above the standard descriptors, non-blocking,
 * close-on-exec.
 *
 * The write end is replaced by the thread and written by the destructor on
 * the main thread: a spin lock keeps the destructor from writing to a
 * descriptor half made or being replaced. Held for a few system calls,
 * never across a wait; dropped in a fork child. */
#define _GNU_SOURCE
#include "wake.h"

#include <fcntl.h>
#include <sched.h>
#include <stdatomic.h>
#include <unistd.h>

#include "reshim.h"
#include "sys.h"

static struct sys_owned wakefd = SYS_OWNED_NONE, wakew = SYS_OWNED_NONE;
static atomic_flag wake_lock = ATOMIC_FLAG_INIT;

static void wake_lock_take(void)
{
    while (atomic_flag_test_and_set_explicit(&wake_lock, memory_order_acquire))
        sched_yield();
}

static void wake_lock_drop(void)
{
    atomic_flag_clear_explicit(&wake_lock, memory_order_release);
}

static void wake_open(void)
{
    int p[2];
    wake_lock_take();
    sys_own_close(&wakefd);
    sys_own_close(&wakew);
    if (pipe2(p, O_NONBLOCK | O_CLOEXEC) == 0) {
        p[0] = reshim_fd_above_stdio(p[0]);
        p[1] = reshim_fd_above_stdio(p[1]);
        if (!sys_own_take(&wakefd, p[0]) || !sys_own_take(&wakew, p[1])) {
            sys_close(p[0]);
            sys_close(p[1]);
            wakefd.fd = wakew.fd = -1;
        }
    }
    wake_lock_drop();
}

void wake_keep(void)
{
    if (wakefd.fd >= 0 && !sys_own_ok(&wakefd))
        wakefd.fd = -1;
    if (wakefd.fd < 0)
        wake_open();
}

int wake_fd(void)
{
    return wakefd.fd;
}

void wake_lost(void)
{
    wakefd.fd = -1;
}

void wake_drain(void)
{
    char v[64];
    if (sys_own_ok(&wakefd))
        while (sys_read(wakefd.fd, v, sizeof v) > 0)
            ;
}

void wake_send(uint64_t deadline)
{
    uint64_t one = 1;
    bool locked = false;
    while (!(locked = !atomic_flag_test_and_set_explicit(&wake_lock, memory_order_acquire)) &&
           reshim_now_ns() < deadline)
        sched_yield();
    if (locked) {
        if (sys_own_ok(&wakew))
            (void)!sys_write(wakew.fd, &one, 1);
        wake_lock_drop();
    }
}

void wake_forget(void)
{
    wake_lock_drop(); /* the fork may have come while the thread held it */
    sys_own_close(&wakefd);
    sys_own_close(&wakew);
}
