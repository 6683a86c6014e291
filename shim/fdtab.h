/* fdtab.h: what reshim knows about each file descriptor: socket or not, its
 * family and type, the phase of its connection, its destination slot, and a
 * generation that changes whenever the number is closed or reused. One packed
 * 64-bit atomic per fd (readable and writable in signal context), in a lazily
 * touched mmap (only the pages of fds in use cost memory). */
#ifndef RESHIM_FDTAB_H
#define RESHIM_FDTAB_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#define FDTAB_MAX (1u << 20) /* Linux's default nr_open: covers every fd */

enum fd_kind { FD_UNKNOWN, FD_NOTSOCK, FD_SOCK };
enum fd_phase {
    PH_NONE,        /* not connected, nothing pending */
    PH_CONNECTING,  /* a non-blocking connect is pending; its outcome not counted yet */
    PH_CONNECTED,
    PH_FAILED,      /* the last connect failed */
    PH_LISTENING,
};

struct fdinfo {
    uint8_t kind;   /* enum fd_kind */
    uint8_t family; /* AF_INET, AF_INET6, AF_UNIX, ... */
    uint8_t stype;  /* SOCK_STREAM, SOCK_DGRAM, ... (flags stripped) */
    uint8_t phase;  /* enum fd_phase */
    uint16_t dest;  /* destination slot; 0 = none */
    uint16_t gen;
};

int fdtab_init(void);

/* The table (fdtab.c's; read here so that the hot path's lookup is inline). */
extern _Atomic uint64_t *reshim_fdtab __attribute__((visibility("hidden")));

static inline struct fdinfo fdtab_unpack(uint64_t v)
{
    struct fdinfo i = {
        .kind = (uint8_t)v,
        .family = (uint8_t)(v >> 8),
        .stype = (uint8_t)(v >> 16),
        .phase = (uint8_t)(v >> 24),
        .dest = (uint16_t)(v >> 32),
        .gen = (uint16_t)(v >> 48),
    };
    return i;
}

static inline uint64_t fdtab_pack(struct fdinfo i)
{
    return (uint64_t)i.kind | (uint64_t)i.family << 8 | (uint64_t)i.stype << 16 |
           (uint64_t)i.phase << 24 | (uint64_t)i.dest << 32 | (uint64_t)i.gen << 48;
}

/* The entry's word as stored; 0 (kind FD_UNKNOWN) for fds never seen (or
 * out of range). The data path reads its fields with FDW_*: a struct
 * fdinfo unpacked there was packed again for every call it was passed to. */
static inline uint64_t fdtab_word(int fd)
{
    if (!reshim_fdtab || fd < 0 || (unsigned)fd >= FDTAB_MAX)
        return 0;
    return atomic_load_explicit(&reshim_fdtab[fd], memory_order_acquire);
}
#define FDW_KIND(w) ((uint8_t)(w))
#define FDW_PHASE(w) ((uint8_t)((w) >> 24))
#define FDW_DEST(w) ((uint16_t)((w) >> 32))
#define FDW_GEN(w) ((uint16_t)((w) >> 48))

/* The entry as stored; kind FD_UNKNOWN for fds never seen (or out of range). */
static inline struct fdinfo fdtab_get(int fd)
{
    return fdtab_unpack(fdtab_word(fd));
}
/* As fdtab_get, but an unknown fd is examined (fstat, SO_DOMAIN, SO_TYPE,
 * peer) and the answer stored. */
struct fdinfo fdtab_classify(int fd);

/* Mutations. They do nothing in a vfork child (shared memory) or out of range. */
void fdtab_set(int fd, struct fdinfo info);          /* bumps gen */
void fdtab_new_socket(int fd, int family, int stype); /* a fresh socket */
/* Compare-and-set of phase and dest only while gen is unchanged. */
bool fdtab_update(int fd, uint16_t gen, uint8_t phase, uint16_t dest);
void fdtab_clear(int fd);
void fdtab_clear_range(unsigned first, unsigned last);
void fdtab_copy(int from, int to);                   /* dup family */

/* What became of a pending connect on fd. soerr is SO_ERROR as the app read
 * it, or -1 to read it here (which clears it, as the app's read would); *err
 * gets it. A zero SO_ERROR means connected only when there is a peer; while
 * TCP is still in SYN_SENT the connect is pending; otherwise someone else
 * took its error (neither). */
enum conn_result { CONN_CONNECTED, CONN_FAILED, CONN_PENDING, CONN_NEITHER };
enum conn_result fdtab_connect_result(int fd, int soerr, int *err);

#endif
