/* stats.h: reshim's counters: four classes of network calls (connect, dns,
 * send, recv) and a fixed table of destinations, each with its own counters,
 * breaker and retry budget. Relaxed atomics only: safe on the hot path and in
 * signal context. A snapshot is read field by field (no lock). */
#ifndef RESHIM_STATS_H
#define RESHIM_STATS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "breaker.h"
#include "dest.h"

/* In the snapshot's order (stats.c asserts it): names in snap_class_names. */
enum net_class { NC_CONNECT, NC_DNS, NC_SEND, NC_RECV, NC_COUNT };

struct net_counters {
    _Atomic uint64_t calls, failures, retries, recovered, gave_up;
};

enum dest_dir { DEST_OUT, DEST_IN };

/* The three cases of a connection that broke before the peer could act on
 * what was sent (libreshim(7), RESHIM_REPLAY), in the snapshot's order (stats.c
 * asserts it); names in snap_replay_case_names. */
enum replay_case { RPC_NOTHING, RPC_HELLO, RPC_REQUEST, RPC_COUNT };

struct replay_counters {
    _Atomic uint64_t replays[RPC_COUNT]; /* connected again and resent, per case */
    _Atomic uint64_t recovered, gave_up; /* broken calls that got an answer / did not */
};

#define DEST_SLOTS 512 /* slot 0 collects what does not fit */

struct dest_slot {
    _Atomic uint32_t state;  /* 0 free, 1 being claimed, 2 ready */
    uint32_t hash;
    uint8_t dir;             /* enum dest_dir: we connected, or we accepted */
    char name[DEST_NAME_MAX];
    struct net_counters connect;
    _Atomic uint64_t sends, recvs, bytes_out, bytes_in, io_failures;
    _Atomic uint64_t skipped_breaker, skipped_budget, skipped_filter;
    _Atomic int32_t last_error;
    struct replay_counters replay;
    _Atomic uint32_t replay_logged;  /* the first replay here was logged */
    struct breaker breaker;
    struct retry_budget budget;
};

struct reshim_stats {
    struct net_counters net[NC_COUNT];
    _Atomic uint64_t dns_stale_answers;   /* getaddrinfo answered from the stale cache */
    _Atomic uint64_t nonblock_pending;    /* non-blocking connects in progress seen */
    _Atomic uint64_t dest_overflow;       /* destinations that fell into slot 0 */
    _Atomic uint32_t dest_used;
    struct replay_counters replay;
    _Atomic uint64_t replay_over_max;     /* requests not kept: over RESHIM_REPLAY_MAX or no room */
    _Atomic uint64_t replay_held_bytes;   /* bytes kept for a possible resend now */
    _Atomic uint64_t replay_held_peak;
    struct dest_slot dest[DEST_SLOTS];
};

extern struct reshim_stats reshim_stats;

/* Finds or claims the slot of a destination; 0 when the table is full. */
uint16_t reshim_dest_lookup(const struct sockaddr *sa, socklen_t len, enum dest_dir dir);
static inline struct dest_slot *reshim_dest(uint16_t i)
{
    return &reshim_stats.dest[i < DEST_SLOTS ? i : 0];
}

/* Zeroes every counter (a fork child starts fresh) but keeps the names, so
 * inherited fds still point at the right slots. Single-threaded use only. */
void reshim_stats_reset(void);

/* "connect calls=.. failures=.. retries=.. recovered=.. gave_up=.." for each
 * class, into buf; used by the exit summary. */
size_t reshim_stats_summary(char *buf, size_t n);

/* The counters' part of the stats snapshot: the net classes, the stale DNS
 * answers and the destinations in use (breakers judged with bp at now). */
struct reshim_snapshot;
void stats_snapshot(struct reshim_snapshot *s, const struct breaker_params *bp, uint64_t now);

#endif
