/* push.c: the stats line as a datagram to RESHIM_PUSH (a collector's unix
 * datagram socket, a path or "@abstract"): every RESHIM_INTERVAL from the
 * stats thread, and once at exit (retried within PUSH_EXIT_NS when the
 * collector's queue is full). Never blocks the thread: non-blocking sends,
 * a dropped datagram is dropped. Buffers are raw mappings (sys.c). */
#define _GNU_SOURCE
#include "push.h"

#include <errno.h>
#include <stddef.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>

#include "config.h"
#include "log.h"
#include "reshim.h"
#include "sys.h"

#define MS_NS 1000000ull
#define PUSH_EXIT_NS (200 * MS_NS) /* the final datagram: retries within this */

static struct sys_owned pushfd = SYS_OWNED_NONE;
static char *push_buf;
static size_t push_cap;

static socklen_t push_addr(struct sockaddr_un *a, const char *path)
{
    memset(a, 0, sizeof *a);
    a->sun_family = AF_UNIX;
    size_t n = strnlen(path, sizeof a->sun_path - 1);
    memcpy(a->sun_path, path, n);
    if (path[0] == '@') { /* "@name": an abstract collector */
        a->sun_path[0] = 0;
        return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);
    }
    return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1);
}

/* One datagram; with a budget, EAGAIN (the collector's queue is full) is
 * retried with short sleeps until it runs out. 0 sent, -1 dropped. */
static int push_send(int fd, const char *buf, size_t len, uint64_t budget_ns)
{
    struct sockaddr_un a;
    socklen_t alen = push_addr(&a, reshim_cfg()->push);
    uint64_t start = reshim_now_ns();
    uint64_t nap = MS_NS;
    for (;;) {
        ssize_t n =
            sys_sendto(fd, buf, len, MSG_DONTWAIT | MSG_NOSIGNAL, (struct sockaddr *)&a, alen);
        if (n >= 0)
            return 0;
        int e = errno;
        if (e == EINTR)
            continue;
        if ((e != EAGAIN && e != EWOULDBLOCK && e != ENOBUFS) || !budget_ns)
            return -1;
        uint64_t spent = reshim_now_ns() - start;
        if (spent >= budget_ns)
            return -1;
        if (nap > budget_ns - spent)
            nap = budget_ns - spent;
        struct timespec ts = {0, (long)nap};
        nanosleep(&ts, NULL);
        nap = nap * 2 > 40 * MS_NS ? 40 * MS_NS : nap * 2;
    }
}

static int new_dgram_socket(void)
{
    return reshim_fd_above_stdio(
        sys_socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
}

void push_periodic(const struct reshim_snapshot *s)
{
    size_t need = sys_page_round(snap_json_max(s->ndest));
    if (push_cap < need) {
        char *p = sys_map(need);
        if (!p)
            return;
        sys_unmap(push_buf, push_cap);
        push_buf = p;
        push_cap = need;
    }
    struct sbuf b;
    sb_init(&b, push_buf, push_cap);
    snap_json(s, &b);
    if (b.overflow)
        return;
    if (!sys_own_ok(&pushfd)) {
        pushfd.fd = -1;
        int fd = new_dgram_socket();
        if (fd < 0 || !sys_own_take(&pushfd, fd)) {
            if (fd >= 0)
                sys_close(fd);
            return;
        }
    }
    push_send(pushfd.fd, b.p, b.len, 0);
}

void push_final(const struct reshim_snapshot *s)
{
    size_t cap = sys_page_round(snap_json_max(s->ndest));
    char *buf = sys_map(cap); /* never unmapped: nothing is freed at exit */
    if (!buf)
        return;
    struct sbuf b;
    sb_init(&b, buf, cap);
    snap_json(s, &b);
    if (b.overflow)
        return;
    int fd = new_dgram_socket();
    if (fd < 0)
        return;
    if (push_send(fd, b.p, b.len, PUSH_EXIT_NS) != 0)
        LOG_DEBUG("pushed stats: the final datagram to %s was dropped", reshim_cfg()->push);
    sys_close(fd);
}

void push_close(void)
{
    sys_own_close(&pushfd);
}

void push_forget(void)
{
    sys_own_close(&pushfd);
    push_buf = NULL; /* forgotten, as the client buffers: the fork may have
                      * come in the middle of their update */
    push_cap = 0;
}
