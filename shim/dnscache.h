/* dnscache.h: the DNS answer cache: the last good answer of each recent
 * lookup (for serve-stale, RFC 8767) and the host names the app resolved
 * (for RESHIM_DEST rules that name hosts). Below the getaddrinfo
 * interposer (dns.c) and the retry policy; calls nothing above it. */
#ifndef RESHIM_DNSCACHE_H
#define RESHIM_DNSCACHE_H

#include <netdb.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#define DNS_NODE_MAX 256
#define DNS_SERVICE_MAX 32

/* A lookup's key (dns_make_key). Its bytes from flags to the node's NUL,
 * len of them, are the cache's hash key: short, so hashing is cheap. */
struct dns_key {
    unsigned len;
    unsigned node_at; /* the node's name: names + node_at */
    int flags, family, socktype, protocol;
    char names[DNS_SERVICE_MAX + DNS_NODE_MAX]; /* "service\0node\0" */
};

/* The key of a lookup; false when it is not cached (numeric, too long). */
bool dns_make_key(const char *node, const char *service, const struct addrinfo *hints,
                  struct dns_key *k);
/* Remembers a good answer (a copy). */
void dns_remember(const struct dns_key *k, const struct addrinfo *answer);
/* The app's allocator, handed in by the getaddrinfo interposer (dns.c:
 * alloc.h's reshim_app_*), so that the cache never calls up into the
 * allocation wrappers: glibc's layout takes malloc and free, musl's calloc. */
struct dns_app_alloc {
    void *(*malloc)(size_t n);
    void *(*calloc)(size_t nmemb, size_t size);
    void (*free)(void *p);
};
/* A copy of the remembered answer for the app (its freeaddrinfo frees it),
 * from app's allocator, when it is at most max_age old; *age its age. NULL
 * when none. */
struct addrinfo *dns_stale_answer(const struct dns_key *k, uint64_t max_age, uint64_t *age,
                                  const struct dns_app_alloc *app);
/* Is there an answer at most max_age old? */
bool dns_have_stale(const struct dns_key *k, uint64_t max_age);

/* dest_name_fn: has the app resolved name to this address? Never waits. */
bool reshim_dns_name_has_addr(void *ctx, const char *name, const struct sockaddr *sa,
                              socklen_t len);

#endif
