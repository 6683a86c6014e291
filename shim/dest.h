/* dest.h: destinations: the RESHIM_DEST rule list (parse and match) and the
 * printable name of a socket address. Pure: no allocation, no locks, safe in
 * signal context (no locale, no malloc). */
#ifndef RESHIM_DEST_H
#define RESHIM_DEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define DEST_MAX_RULES 32
#define DEST_NAME_MAX 128   /* longest printable destination, NUL included */

enum dest_rule_kind { DR_ADDR, DR_CIDR, DR_NAME, DR_UNIX };

struct dest_rule {
    uint8_t kind;     /* enum dest_rule_kind */
    bool negate;      /* "!" in front: never retry these */
    uint8_t family;   /* AF_INET / AF_INET6 for DR_ADDR and DR_CIDR */
    uint8_t prefix;   /* CIDR prefix length */
    uint16_t port;    /* 0: any port */
    uint8_t addr[16];
    char text[DEST_NAME_MAX]; /* host name (DR_NAME) or path glob (DR_UNIX) */
};

struct dest_rules {
    unsigned n;
    bool has_positive;
    struct dest_rule r[DEST_MAX_RULES];
};

/* Parses "host:port,10.0.0.0/8,[::1]:6379,unix:/run/app-*.sock and
 * !10.0.0.5:22" (comma separated).
 * "all" or "" means no rule. Returns 0, or -1 (out is then left empty). */
int dest_rules_parse(const char *s, struct dest_rules *out);

/* Does the host name of a DR_NAME rule resolve to this address? dns.c
 * answers from the names it has seen the app resolve. */
typedef bool (*dest_name_fn)(void *ctx, const char *name, const struct sockaddr *sa,
                             socklen_t len);

/* true: retries allowed for this destination. No rules: everything. */
bool dest_rules_allow(const struct dest_rules *rules, const struct sockaddr *sa,
                      socklen_t len, dest_name_fn names, void *ctx);

/* "127.0.0.1:80", "[::1]:443", "unix:/run/x.sock", "unix:@abstract",
 * "unix:(unnamed)". Returns the length written (always NUL-terminated). */
size_t dest_format(const struct sockaddr *sa, socklen_t len, char *buf, size_t n);

/* Shell-style glob: '*' (any run, '/' included), '?', no classes. */
bool dest_glob(const char *pattern, const char *s);

#endif
