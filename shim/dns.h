/* dns.h: getaddrinfo with EAI_AGAIN retries and a stale-answer cache
 * (RESHIM_DNS_STALE), plus the host names the app has resolved (for
 * RESHIM_DEST rules that name hosts). */
#ifndef RESHIM_DNS_H
#define RESHIM_DNS_H

#include <stdbool.h>
#include <sys/socket.h>

/* dest_name_fn: has the app resolved name to this address? */
bool reshim_dns_name_has_addr(void *ctx, const char *name, const struct sockaddr *sa,
                              socklen_t len);

#endif
