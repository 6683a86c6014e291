/* attempt.h: the steps of connecting a socket again inside the app's call
 * (attempt.c): the backoff sleep, one connect attempt bounded by a
 * deadline, dropping a half-open or broken connection, and the app's own
 * timeout on the socket. Used by the blocking connect retry (net.c) and by
 * a replay (replay.c); below both, calls neither. The backoff sleep is
 * also the DNS retry's (dns.c). */
#ifndef RESHIM_ATTEMPT_H
#define RESHIM_ATTEMPT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

/* Sleeps ns; false when a signal interrupted the sleep (and a handler
 * without SA_RESTART is installed). */
bool attempt_sleep(uint64_t ns);
/* Drops a half-open or broken connection so the socket can connect again. */
void attempt_dissolve(int fd);
#define ATTEMPT_DEADLINE (-1)
#define ATTEMPT_INTERRUPTED (-2)
/* One more connect of fd to addr, bounded by the deadline: 0, an errno,
 * ATTEMPT_DEADLINE (the attempt was dropped) or ATTEMPT_INTERRUPTED (a
 * signal; the attempt is still pending). */
int attempt_connect(int fd, const struct sockaddr *addr, socklen_t len, uint64_t deadline);
/* The app's own timeout on fd (SO_SNDTIMEO, or SO_RCVTIMEO with rcv), in
 * ns; 0 when none. */
uint64_t attempt_app_timeout_ns(int fd, bool rcv);

#endif
