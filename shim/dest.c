/* dest.c: RESHIM_DEST rules and printable destination names. Pure and
 * async-signal-safe: no allocation, no locale, no stdio. */
#define _GNU_SOURCE
#include "dest.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/un.h>

bool dest_glob(const char *p, const char *s)
{
    const char *star = NULL, *resume = NULL;
    while (*s) {
        if (*p == '*') {
            star = p++;
            resume = s;
        } else if (*p == '?' || *p == *s) {
            p++;
            s++;
        } else if (star) {
            p = star + 1;
            s = ++resume;
        } else {
            return false;
        }
    }
    while (*p == '*')
        p++;
    return *p == '\0';
}

static int parse_port(const char *s, size_t len, uint16_t *port)
{
    unsigned v = 0;
    if (len == 0 || len > 5)
        return -1;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (unsigned)(s[i] - '0');
    }
    if (v == 0 || v > 65535)
        return -1;
    *port = (uint16_t)v;
    return 0;
}

/* An address, with an optional "/prefix", into the rule. */
static int parse_addr(const char *s, size_t len, struct dest_rule *r)
{
    char buf[64];
    if (len == 0 || len >= sizeof buf)
        return -1;
    memcpy(buf, s, len);
    buf[len] = '\0';
    char *slash = strchr(buf, '/');
    int prefix = -1;
    if (slash) {
        *slash = '\0';
        uint16_t p;
        const char *ps = slash + 1;
        if (strcmp(ps, "0") == 0)
            prefix = 0;
        else if (parse_port(ps, strlen(ps), &p) == 0)
            prefix = p;
        else
            return -1;
    }
    if (inet_pton(AF_INET, buf, r->addr) == 1) {
        r->family = AF_INET;
        if (prefix > 32)
            return -1;
        r->prefix = (uint8_t)(prefix < 0 ? 32 : prefix);
    } else if (inet_pton(AF_INET6, buf, r->addr) == 1) {
        r->family = AF_INET6;
        if (prefix > 128)
            return -1;
        r->prefix = (uint8_t)(prefix < 0 ? 128 : prefix);
    } else {
        return -1;
    }
    r->kind = slash ? DR_CIDR : DR_ADDR;
    return 0;
}

static bool valid_hostname(const char *s, size_t len)
{
    if (len == 0 || len >= DEST_NAME_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        char ch = s[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '-' || ch == '.' || ch == '_'))
            return false;
    }
    return true;
}

static int parse_rule(const char *s, size_t len, struct dest_rule *r)
{
    memset(r, 0, sizeof *r);
    while (len && (*s == ' ' || *s == '\t'))
        s++, len--;
    while (len && (s[len - 1] == ' ' || s[len - 1] == '\t'))
        len--;
    if (len && *s == '!') {
        r->negate = true;
        s++, len--;
    }
    if (len == 0)
        return -1;
    if (len > 5 && strncmp(s, "unix:", 5) == 0) {
        if (len - 5 >= DEST_NAME_MAX)
            return -1;
        r->kind = DR_UNIX;
        memcpy(r->text, s + 5, len - 5);
        return 0;
    }
    const char *host = s;
    size_t hlen = len;
    if (*s == '[') { /* [v6addr[/prefix]][:port] */
        const char *close = memchr(s, ']', len);
        if (!close)
            return -1;
        host = s + 1;
        hlen = (size_t)(close - host);
        size_t rest = len - (size_t)(close + 1 - s);
        if (rest) {
            if (close[1] != ':' || parse_port(close + 2, rest - 1, &r->port))
                return -1;
        }
        return parse_addr(host, hlen, r);
    }
    /* One colon: host:port or v4/prefix:port. More: a bare IPv6 address or CIDR. */
    const char *colon = memchr(s, ':', len);
    if (colon && !memchr(colon + 1, ':', len - (size_t)(colon + 1 - s))) {
        hlen = (size_t)(colon - s);
        if (parse_port(colon + 1, len - hlen - 1, &r->port))
            return -1;
    }
    if (parse_addr(host, hlen, r) == 0)
        return 0;
    if (colon && hlen == len) /* a bare v6 that did not parse */
        return -1;
    if (!valid_hostname(host, hlen))
        return -1;
    memset(r->addr, 0, sizeof r->addr);
    r->kind = DR_NAME;
    memcpy(r->text, host, hlen);
    r->text[hlen] = '\0';
    return 0;
}

int dest_rules_parse(const char *s, struct dest_rules *out)
{
    struct dest_rules tmp;
    memset(&tmp, 0, sizeof tmp);
    memset(out, 0, sizeof *out);
    if (!s)
        return -1;
    const char *p = s;
    while (*p == ' ' || *p == '\t')
        p++;
    size_t plen = strlen(p); /* "all " must not become a host named "all" */
    while (plen && (p[plen - 1] == ' ' || p[plen - 1] == '\t'))
        plen--;
    if (plen == 0 || (plen == 3 && strncmp(p, "all", 3) == 0) || (plen == 1 && *p == '*'))
        return 0;
    for (;;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        if (tmp.n == DEST_MAX_RULES || parse_rule(p, len, &tmp.r[tmp.n]))
            return -1;
        if (!tmp.r[tmp.n].negate)
            tmp.has_positive = true;
        tmp.n++;
        if (!comma)
            break;
        p = comma + 1;
    }
    *out = tmp;
    return 0;
}

static bool prefix_match(const uint8_t *a, const uint8_t *b, unsigned bits)
{
    unsigned whole = bits / 8, rest = bits % 8;
    if (memcmp(a, b, whole))
        return false;
    if (!rest)
        return true;
    uint8_t mask = (uint8_t)(0xff << (8 - rest));
    return (a[whole] & mask) == (b[whole] & mask);
}

static bool rule_matches(const struct dest_rule *r, const struct sockaddr *sa, socklen_t len,
                         dest_name_fn names, void *ctx)
{
    if (sa->sa_family == AF_UNIX) {
        if (r->kind != DR_UNIX)
            return false;
        const struct sockaddr_un *un = (const struct sockaddr_un *)sa;
        char path[sizeof un->sun_path + 2];
        size_t n = len > offsetof(struct sockaddr_un, sun_path)
                       ? len - offsetof(struct sockaddr_un, sun_path) : 0;
        if (n > sizeof un->sun_path)
            n = sizeof un->sun_path;
        if (n && un->sun_path[0] == '\0') { /* abstract: matched as "@name" */
            path[0] = '@';
            memcpy(path + 1, un->sun_path + 1, n - 1);
            path[n] = '\0';
        } else {
            memcpy(path, un->sun_path, n);
            path[n] = '\0';
        }
        return dest_glob(r->text, path);
    }
    if (r->kind == DR_UNIX)
        return false;
    const uint8_t *addr;
    uint16_t port;
    int family = sa->sa_family;
    uint8_t mapped[16];
    if (family == AF_INET && len >= sizeof(struct sockaddr_in)) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        addr = (const uint8_t *)&in->sin_addr;
        port = ntohs(in->sin_port);
    } else if (family == AF_INET6 && len >= sizeof(struct sockaddr_in6)) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        addr = (const uint8_t *)&in6->sin6_addr;
        port = ntohs(in6->sin6_port);
        if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr) && r->family == AF_INET) {
            memcpy(mapped, addr + 12, 4); /* ::ffff:a.b.c.d matches v4 rules */
            addr = mapped;
            family = AF_INET;
        }
    } else {
        return false;
    }
    if (r->port && r->port != port)
        return false;
    if (r->kind == DR_NAME)
        return names && names(ctx, r->text, sa, len);
    if (r->family != family)
        return false;
    return prefix_match(addr, r->addr, r->prefix);
}

bool dest_rules_allow(const struct dest_rules *rules, const struct sockaddr *sa, socklen_t len,
                      dest_name_fn names, void *ctx)
{
    bool positive_hit = false;
    for (unsigned i = 0; i < rules->n; i++) {
        if (!rule_matches(&rules->r[i], sa, len, names, ctx))
            continue;
        if (rules->r[i].negate)
            return false;
        positive_hit = true;
    }
    return rules->has_positive ? positive_hit : true;
}

static size_t put(char *buf, size_t n, size_t at, const char *s)
{
    while (*s && at + 1 < n)
        buf[at++] = *s++;
    if (n)
        buf[at < n ? at : n - 1] = '\0';
    return at;
}

static size_t put_port(char *buf, size_t n, size_t at, unsigned port)
{
    char tmp[8];
    int i = 7;
    tmp[i] = '\0';
    do {
        tmp[--i] = (char)('0' + port % 10);
        port /= 10;
    } while (port && i > 0);
    return put(buf, n, at, tmp + i);
}

size_t dest_format(const struct sockaddr *sa, socklen_t len, char *buf, size_t n)
{
    char ip[INET6_ADDRSTRLEN];
    size_t at = 0;
    if (!n)
        return 0;
    buf[0] = '\0';
    if (!sa || len < sizeof(sa_family_t))
        return put(buf, n, 0, "(unknown)");
    switch (sa->sa_family) {
    case AF_INET: {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        if (len < sizeof *in || !inet_ntop(AF_INET, &in->sin_addr, ip, sizeof ip))
            return put(buf, n, 0, "(bad inet address)");
        at = put(buf, n, 0, ip);
        at = put(buf, n, at, ":");
        return put_port(buf, n, at, ntohs(in->sin_port));
    }
    case AF_INET6: {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        if (len < sizeof *in6 || !inet_ntop(AF_INET6, &in6->sin6_addr, ip, sizeof ip))
            return put(buf, n, 0, "(bad inet6 address)");
        at = put(buf, n, 0, "[");
        at = put(buf, n, at, ip);
        at = put(buf, n, at, "]:");
        return put_port(buf, n, at, ntohs(in6->sin6_port));
    }
    case AF_UNIX: {
        const struct sockaddr_un *un = (const struct sockaddr_un *)sa;
        size_t plen = len > offsetof(struct sockaddr_un, sun_path)
                          ? len - offsetof(struct sockaddr_un, sun_path) : 0;
        if (plen > sizeof un->sun_path)
            plen = sizeof un->sun_path;
        at = put(buf, n, 0, "unix:");
        if (plen == 0 || (un->sun_path[0] == '\0' && plen == 1))
            return put(buf, n, at, "(unnamed)");
        size_t i = 0;
        if (un->sun_path[0] == '\0') {
            at = put(buf, n, at, "@");
            i = 1;
        }
        for (; i < plen && at + 1 < n; i++) {
            char ch = un->sun_path[i];
            if (ch == '\0' && sa->sa_family == AF_UNIX && un->sun_path[0] != '\0')
                break;
            buf[at++] = (ch >= 0x20 && ch < 0x7f) ? ch : '?';
        }
        buf[at] = '\0';
        return at;
    }
    default:
        at = put(buf, n, 0, "family:");
        return put_port(buf, n, at, sa->sa_family);
    }
}
