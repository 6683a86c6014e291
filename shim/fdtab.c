/* fdtab.c: the per-fd table. Lock-free; never allocates after init (one
 * mmap); safe in signal context. Mutations are skipped in a vfork child,
 * which shares our memory and must not change the parent's view. */
#define _GNU_SOURCE
#include "fdtab.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include "real.h"
#include "reshim.h"
#include "stats.h"
#include "sys.h"

_Atomic uint64_t *reshim_fdtab;
static _Atomic unsigned highest; /* highest fd ever stored, bounds close_range */

int fdtab_init(void)
{
    if (reshim_fdtab)
        return 0;
    void *p = sys_map(FDTAB_MAX * sizeof(uint64_t));
    if (!p)
        return -1;
    reshim_fdtab = p;
    return 0;
}

static inline bool in_range(int fd)
{
    return reshim_fdtab && fd >= 0 && (unsigned)fd < FDTAB_MAX;
}

static void store(int fd, struct fdinfo info)
{
    if (!in_range(fd) || reshim_in_foreign_child())
        return;
    uint64_t old = atomic_load_explicit(&reshim_fdtab[fd], memory_order_relaxed);
    info.gen = (uint16_t)(fdtab_unpack(old).gen + 1);
    atomic_store_explicit(&reshim_fdtab[fd], fdtab_pack(info), memory_order_release);
    unsigned h = atomic_load_explicit(&highest, memory_order_relaxed);
    while ((unsigned)fd > h &&
           !atomic_compare_exchange_weak_explicit(&highest, &h, (unsigned)fd,
                                                  memory_order_relaxed, memory_order_relaxed))
        ;
}

void fdtab_set(int fd, struct fdinfo info)
{
    store(fd, info);
}

void fdtab_new_socket(int fd, int family, int stype)
{
    struct fdinfo i = {.kind = FD_SOCK, .family = (uint8_t)family,
                       .stype = (uint8_t)(stype & 0xf), .phase = PH_NONE};
    store(fd, i);
}

bool fdtab_update(int fd, uint16_t gen, uint8_t phase, uint16_t dest)
{
    if (!in_range(fd) || reshim_in_foreign_child())
        return false;
    uint64_t old = atomic_load_explicit(&reshim_fdtab[fd], memory_order_relaxed);
    for (;;) {
        struct fdinfo i = fdtab_unpack(old);
        if (i.gen != gen)
            return false;
        i.phase = phase;
        i.dest = dest;
        if (atomic_compare_exchange_weak_explicit(&reshim_fdtab[fd], &old, fdtab_pack(i),
                                                  memory_order_release, memory_order_relaxed))
            return true;
    }
}

void fdtab_clear(int fd)
{
    struct fdinfo none = {0};
    if (in_range(fd) && fdtab_get(fd).kind != FD_UNKNOWN)
        store(fd, none);
}

void fdtab_clear_range(unsigned first, unsigned last)
{
    unsigned h = atomic_load_explicit(&highest, memory_order_relaxed);
    if (last > h)
        last = h;
    for (unsigned fd = first; fd <= last && fd < FDTAB_MAX; fd++)
        fdtab_clear((int)fd);
}

void fdtab_copy(int from, int to)
{
    if (from == to)
        return;
    struct fdinfo i = fdtab_get(from);
    if (i.kind == FD_UNKNOWN)
        fdtab_clear(to);
    else
        store(to, i);
}

struct fdinfo fdtab_classify(int fd)
{
    struct fdinfo i = fdtab_get(fd);
    if (i.kind != FD_UNKNOWN || !in_range(fd))
        return i;
    reshim_bind_symbols();
    int saved = errno;
    struct stat st;
    struct fdinfo n = {.kind = FD_NOTSOCK};
    if (fstat(fd, &st) != 0) {
        errno = saved;
        return i; /* not open: nothing to remember */
    }
    if (S_ISSOCK(st.st_mode)) {
        int domain = 0, type = 0;
        socklen_t len = sizeof domain;
        n.kind = FD_SOCK;
        if (real_getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len) == 0)
            n.family = (uint8_t)domain;
        len = sizeof type;
        if (real_getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) == 0)
            n.stype = (uint8_t)type;
        struct sockaddr_storage ss;
        socklen_t sl = sizeof ss;
        if (getpeername(fd, (struct sockaddr *)&ss, &sl) == 0) {
            n.phase = PH_CONNECTED;
            n.dest = reshim_dest_lookup((struct sockaddr *)&ss, sl, DEST_OUT);
        }
    }
    errno = saved;
    store(fd, n);
    struct fdinfo stored = fdtab_get(fd);
    return stored.kind == FD_UNKNOWN ? n : stored;
}

enum conn_result fdtab_connect_result(int fd, int soerr, int *err)
{
    if (soerr < 0) {
        socklen_t sl = sizeof soerr;
        soerr = 0;
        if (real_getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) != 0)
            soerr = errno;
    }
    *err = soerr;
    if (soerr)
        return CONN_FAILED;
    struct sockaddr_storage ss;
    socklen_t pl = sizeof ss;
    if (getpeername(fd, (struct sockaddr *)&ss, &pl) == 0)
        return CONN_CONNECTED;
    struct tcp_info ti;
    socklen_t tl = sizeof ti;
    if (real_getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &tl) == 0 && ti.tcpi_state == TCP_SYN_SENT)
        return CONN_PENDING;
    return CONN_NEITHER;
}
