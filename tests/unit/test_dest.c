/* test_dest.c: unit tests of shim/dest.c: RESHIM_DEST parsing, matching on
 * real socket addresses, printable names, and the glob. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <cmocka.h>

#include "dest.h"

#define CHECK(cond, ...)           \
    do {                           \
        if (!(cond))               \
            fail_msg(__VA_ARGS__); \
    } while (0)

/* ---- socket address builders ---- */

static socklen_t mk4(struct sockaddr_storage *ss, const char *ip, uint16_t port)
{
    struct sockaddr_in *in = (struct sockaddr_in *)ss;
    memset(ss, 0, sizeof *ss);
    in->sin_family = AF_INET;
    in->sin_port = htons(port);
    assert_int_equal(inet_pton(AF_INET, ip, &in->sin_addr), 1);
    return sizeof *in;
}

static socklen_t mk6(struct sockaddr_storage *ss, const char *ip, uint16_t port)
{
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
    memset(ss, 0, sizeof *ss);
    in6->sin6_family = AF_INET6;
    in6->sin6_port = htons(port);
    assert_int_equal(inet_pton(AF_INET6, ip, &in6->sin6_addr), 1);
    return sizeof *in6;
}

/* A path socket, with the usual length (path and its NUL). */
static socklen_t mkun(struct sockaddr_storage *ss, const char *path)
{
    struct sockaddr_un *un = (struct sockaddr_un *)ss;
    memset(ss, 0, sizeof *ss);
    un->sun_family = AF_UNIX;
    size_t len = strlen(path);
    assert_true(len < sizeof un->sun_path);
    memcpy(un->sun_path, path, len);
    return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len + 1);
}

/* An abstract socket: a leading NUL, the name, no trailing NUL. */
static socklen_t mkabs(struct sockaddr_storage *ss, const char *name)
{
    struct sockaddr_un *un = (struct sockaddr_un *)ss;
    memset(ss, 0, sizeof *ss);
    un->sun_family = AF_UNIX;
    size_t len = strlen(name);
    assert_true(len + 1 <= sizeof un->sun_path);
    memcpy(un->sun_path + 1, name, len);
    return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + len);
}

#define SA(ss) ((const struct sockaddr *)(ss))

static void parse_ok(const char *s, struct dest_rules *r)
{
    int rc = dest_rules_parse(s, r);
    CHECK(rc == 0, "dest_rules_parse(\"%s\") rejected", s);
}

static bool allow_rules(const char *rules, const struct sockaddr_storage *ss, socklen_t len)
{
    struct dest_rules r;
    parse_ok(rules, &r);
    return dest_rules_allow(&r, SA(ss), len, NULL, NULL);
}

/* ---- parsing ---- */

static void test_parse_host_port(void **state)
{
    struct dest_rules r;
    parse_ok("db.internal:5432", &r);
    assert_int_equal(r.n, 1);
    assert_true(r.has_positive);
    assert_int_equal(r.r[0].kind, DR_NAME);
    assert_false(r.r[0].negate);
    assert_int_equal(r.r[0].port, 5432);
    assert_string_equal(r.r[0].text, "db.internal");

    parse_ok("localhost", &r);
    assert_int_equal(r.n, 1);
    assert_int_equal(r.r[0].kind, DR_NAME);
    assert_int_equal(r.r[0].port, 0);
    assert_string_equal(r.r[0].text, "localhost");

    parse_ok("my_host-1.example.com:65535", &r);
    assert_int_equal(r.r[0].kind, DR_NAME);
    assert_int_equal(r.r[0].port, 65535);
    assert_string_equal(r.r[0].text, "my_host-1.example.com");

    parse_ok("db:1", &r);
    assert_int_equal(r.r[0].port, 1);
}

static void test_parse_ipv4(void **state)
{
    static const uint8_t a[4] = {10, 1, 2, 3};
    struct dest_rules r;
    parse_ok("10.1.2.3", &r);
    assert_int_equal(r.n, 1);
    assert_int_equal(r.r[0].kind, DR_ADDR);
    assert_int_equal(r.r[0].family, AF_INET);
    assert_int_equal(r.r[0].prefix, 32);
    assert_int_equal(r.r[0].port, 0);
    assert_memory_equal(r.r[0].addr, a, 4);

    parse_ok("10.1.2.3:8080", &r);
    assert_int_equal(r.r[0].kind, DR_ADDR);
    assert_int_equal(r.r[0].family, AF_INET);
    assert_int_equal(r.r[0].port, 8080);
    assert_memory_equal(r.r[0].addr, a, 4);
}

static void test_parse_ipv4_cidr(void **state)
{
    static const uint8_t a[4] = {10, 0, 0, 0};
    struct dest_rules r;
    parse_ok("10.0.0.0/8", &r);
    assert_int_equal(r.r[0].kind, DR_CIDR);
    assert_int_equal(r.r[0].family, AF_INET);
    assert_int_equal(r.r[0].prefix, 8);
    assert_int_equal(r.r[0].port, 0);
    assert_memory_equal(r.r[0].addr, a, 4);

    parse_ok("10.0.0.0/8:443", &r);
    assert_int_equal(r.r[0].kind, DR_CIDR);
    assert_int_equal(r.r[0].prefix, 8);
    assert_int_equal(r.r[0].port, 443);

    parse_ok("0.0.0.0/0", &r);
    assert_int_equal(r.r[0].kind, DR_CIDR);
    assert_int_equal(r.r[0].prefix, 0);

    parse_ok("192.168.1.0/24", &r);
    assert_int_equal(r.r[0].prefix, 24);
    parse_ok("192.168.1.7/32", &r);
    assert_int_equal(r.r[0].prefix, 32);
}

static void test_parse_ipv6(void **state)
{
    uint8_t lo[16] = {0};
    lo[15] = 1;
    struct dest_rules r;
    parse_ok("[::1]:6379", &r);
    assert_int_equal(r.n, 1);
    assert_int_equal(r.r[0].kind, DR_ADDR);
    assert_int_equal(r.r[0].family, AF_INET6);
    assert_int_equal(r.r[0].prefix, 128);
    assert_int_equal(r.r[0].port, 6379);
    assert_memory_equal(r.r[0].addr, lo, 16);

    parse_ok("::1", &r);
    assert_int_equal(r.r[0].kind, DR_ADDR);
    assert_int_equal(r.r[0].family, AF_INET6);
    assert_int_equal(r.r[0].port, 0);
    assert_memory_equal(r.r[0].addr, lo, 16);

    parse_ok("[::1]", &r);
    assert_int_equal(r.r[0].kind, DR_ADDR);
    assert_int_equal(r.r[0].port, 0);

    parse_ok("2001:db8::/32", &r);
    assert_int_equal(r.r[0].kind, DR_CIDR);
    assert_int_equal(r.r[0].family, AF_INET6);
    assert_int_equal(r.r[0].prefix, 32);
    assert_int_equal(r.r[0].port, 0);
    assert_int_equal(r.r[0].addr[0], 0x20);
    assert_int_equal(r.r[0].addr[1], 0x01);
    assert_int_equal(r.r[0].addr[2], 0x0d);
    assert_int_equal(r.r[0].addr[3], 0xb8);

    parse_ok("[2001:db8::/48]:443", &r);
    assert_int_equal(r.r[0].kind, DR_CIDR);
    assert_int_equal(r.r[0].prefix, 48);
    assert_int_equal(r.r[0].port, 443);

    parse_ok("fe80::1:2:3:4", &r);
    assert_int_equal(r.r[0].family, AF_INET6);
}

static void test_parse_unix(void **state)
{
    struct dest_rules r;
    parse_ok("unix:/run/app-*.sock", &r);
    assert_int_equal(r.n, 1);
    assert_int_equal(r.r[0].kind, DR_UNIX);
    assert_string_equal(r.r[0].text, "/run/app-*.sock");

    parse_ok("unix:@abstract-name", &r);
    assert_int_equal(r.r[0].kind, DR_UNIX);
    assert_string_equal(r.r[0].text, "@abstract-name");

    /* The longest glob that fits. */
    char rule[5 + DEST_NAME_MAX + 1];
    memcpy(rule, "unix:/", 6);
    memset(rule + 6, 'x', DEST_NAME_MAX - 2);
    rule[5 + DEST_NAME_MAX - 1] = '\0';
    parse_ok(rule, &r);
    assert_int_equal(strlen(r.r[0].text), DEST_NAME_MAX - 1);
}

static void test_parse_negation(void **state)
{
    struct dest_rules r;
    parse_ok("!10.0.0.5:22", &r);
    assert_int_equal(r.n, 1);
    assert_true(r.r[0].negate);
    assert_false(r.has_positive);
    assert_int_equal(r.r[0].kind, DR_ADDR);
    assert_int_equal(r.r[0].port, 22);

    parse_ok("10.0.0.0/8,!10.0.0.5,!unix:/tmp/*", &r);
    assert_int_equal(r.n, 3);
    assert_true(r.has_positive);
    assert_false(r.r[0].negate);
    assert_true(r.r[1].negate);
    assert_true(r.r[2].negate);
    assert_int_equal(r.r[2].kind, DR_UNIX);
    assert_string_equal(r.r[2].text, "/tmp/*");
}

static void test_parse_all_and_empty(void **state)
{
    /* Whitespace around "all" is trimmed as around any rule ("all " must not
     * become a host named "all", which would turn retrying off everywhere). */
    static const char *const none[] = {"",     "all",    "   ",  "  all", "*",
                                       "all ", "\tall\t", " * ",  "\t"};
    for (size_t i = 0; i < sizeof none / sizeof none[0]; i++) {
        struct dest_rules r;
        memset(&r, 0xff, sizeof r);
        CHECK(dest_rules_parse(none[i], &r) == 0, "\"%s\" rejected", none[i]);
        CHECK(r.n == 0 && !r.has_positive, "\"%s\": %u rules", none[i], r.n);
    }
    /* "all" is a keyword only on its own. */
    struct dest_rules r;
    parse_ok("all,10.0.0.1", &r);
    assert_int_equal(r.n, 2);
    assert_int_equal(r.r[0].kind, DR_NAME);
    parse_ok("allhosts", &r);
    assert_int_equal(r.n, 1);
    assert_string_equal(r.r[0].text, "allhosts");
    parse_ok("al", &r);
    assert_int_equal(r.n, 1);
}

static void test_parse_whitespace(void **state)
{
    struct dest_rules r;
    parse_ok(" 10.0.0.1:80 ,\t!10.0.0.5 , db.internal:5432\t, unix:/run/x.sock ", &r);
    assert_int_equal(r.n, 4);
    assert_int_equal(r.r[0].kind, DR_ADDR);
    assert_int_equal(r.r[0].port, 80);
    assert_true(r.r[1].negate);
    assert_int_equal(r.r[1].kind, DR_ADDR);
    assert_int_equal(r.r[2].kind, DR_NAME);
    assert_string_equal(r.r[2].text, "db.internal");
    assert_int_equal(r.r[2].port, 5432);
    assert_int_equal(r.r[3].kind, DR_UNIX);
    assert_string_equal(r.r[3].text, "/run/x.sock");
}

static void test_parse_max_rules(void **state)
{
    char buf[DEST_MAX_RULES * 20];
    size_t at = 0;
    for (int i = 0; i < DEST_MAX_RULES; i++)
        at += (size_t)snprintf(buf + at, sizeof buf - at, "%s10.0.%d.1", i ? "," : "", i);
    struct dest_rules r;
    parse_ok(buf, &r);
    assert_int_equal(r.n, DEST_MAX_RULES);
    assert_int_equal(r.r[DEST_MAX_RULES - 1].addr[2], DEST_MAX_RULES - 1);

    snprintf(buf + at, sizeof buf - at, ",10.9.9.9"); /* one more */
    assert_int_equal(dest_rules_parse(buf, &r), -1);
    assert_int_equal(r.n, 0);
}

static void test_parse_rejects(void **state)
{
    char longunix[5 + DEST_NAME_MAX + 2];
    memcpy(longunix, "unix:/", 6);
    memset(longunix + 6, 'x', DEST_NAME_MAX - 1);
    longunix[5 + DEST_NAME_MAX] = '\0'; /* a glob of DEST_NAME_MAX bytes */
    char longname[DEST_NAME_MAX + 8];
    memset(longname, 'h', DEST_NAME_MAX);
    longname[DEST_NAME_MAX] = '\0';

    const char *const bad[] = {
        "host:0",
        "host:70000",
        "host:65536",
        "host:123456",
        "host:",
        "host:port",
        "host:-1",
        "10.0.0.1:0",
        "10.0.0.1:99999",
        "10.0.0.0/33",
        "10.0.0.0/",
        "10.0.0.0/8/8",
        "10.0.0.0/x",
        "10.0.0.0/-1",
        "::1/129",
        "[::1",
        "[::1]:",
        "[::1]80",
        "[::1]:0",
        "[::1]:70000",
        "[nonsense]:80",
        "[]:80",
        "a,,b",
        "a,",
        ",a",
        "a, ,b",
        "!",
        "! ",
        "unix:",
        "bad host",
        "bad/host",
        "host:80:90",
        "x:1:2",
        "::zz",
        "10.0.0.1:80,host:0",
        longunix,
        longname,
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct dest_rules r;
        /* Out holds rules before; after a reject it is left empty. */
        parse_ok("10.0.0.1,10.0.0.2", &r);
        CHECK(dest_rules_parse(bad[i], &r) == -1, "dest_rules_parse(\"%s\") accepted", bad[i]);
        CHECK(r.n == 0 && !r.has_positive, "\"%s\": out not left empty", bad[i]);
    }
    struct dest_rules r;
    assert_int_equal(dest_rules_parse(NULL, &r), -1);
    assert_int_equal(r.n, 0);
}

/* ---- matching ---- */

static void test_allow_no_rules(void **state)
{
    struct dest_rules r;
    parse_ok("all", &r);
    struct sockaddr_storage ss;
    socklen_t len = mk4(&ss, "192.0.2.1", 80);
    assert_true(dest_rules_allow(&r, SA(&ss), len, NULL, NULL));
    len = mk6(&ss, "2001:db8::1", 443);
    assert_true(dest_rules_allow(&r, SA(&ss), len, NULL, NULL));
    len = mkun(&ss, "/run/x.sock");
    assert_true(dest_rules_allow(&r, SA(&ss), len, NULL, NULL));
    len = mkabs(&ss, "x");
    assert_true(dest_rules_allow(&r, SA(&ss), len, NULL, NULL));
}

static void test_allow_positive_list(void **state)
{
    const char *rules = "10.0.0.0/8,192.168.1.7,[2001:db8::/32]";
    struct sockaddr_storage ss;
    socklen_t len;
    len = mk4(&ss, "10.0.0.1", 80);
    assert_true(allow_rules(rules, &ss, len));
    len = mk4(&ss, "10.255.255.255", 1);
    assert_true(allow_rules(rules, &ss, len));
    len = mk4(&ss, "11.0.0.1", 80);
    assert_false(allow_rules(rules, &ss, len));
    len = mk4(&ss, "9.255.255.255", 80);
    assert_false(allow_rules(rules, &ss, len));
    len = mk4(&ss, "192.168.1.7", 5000);
    assert_true(allow_rules(rules, &ss, len));
    len = mk4(&ss, "192.168.1.8", 5000);
    assert_false(allow_rules(rules, &ss, len));
    len = mk6(&ss, "2001:db8:1::5", 80);
    assert_true(allow_rules(rules, &ss, len));
    len = mk6(&ss, "2001:db9::5", 80);
    assert_false(allow_rules(rules, &ss, len));
    len = mk6(&ss, "::1", 80);
    assert_false(allow_rules(rules, &ss, len));
    /* A unix socket is not in an inet-only list. */
    len = mkun(&ss, "/run/x.sock");
    assert_false(allow_rules(rules, &ss, len));

    /* Prefix lengths that are not a multiple of 8. */
    len = mk4(&ss, "172.31.255.1", 80);
    assert_true(allow_rules("172.16.0.0/12", &ss, len));
    len = mk4(&ss, "172.32.0.1", 80);
    assert_false(allow_rules("172.16.0.0/12", &ss, len));
    len = mk4(&ss, "203.0.113.200", 80);
    assert_true(allow_rules("0.0.0.0/0", &ss, len));
    len = mk6(&ss, "fe80::1", 80);
    assert_true(allow_rules("fe80::/10", &ss, len));
    len = mk6(&ss, "fec0::1", 80);
    assert_false(allow_rules("fe80::/10", &ss, len));
}

static void test_allow_negation_wins(void **state)
{
    struct sockaddr_storage ss;
    socklen_t len;
    static const char *const orders[] = {"10.0.0.0/8,!10.0.0.5", "!10.0.0.5,10.0.0.0/8"};
    for (int i = 0; i < 2; i++) {
        len = mk4(&ss, "10.0.0.5", 80);
        assert_false(allow_rules(orders[i], &ss, len));
        len = mk4(&ss, "10.0.0.6", 80);
        assert_true(allow_rules(orders[i], &ss, len));
        len = mk4(&ss, "11.0.0.5", 80);
        assert_false(allow_rules(orders[i], &ss, len));
    }
    /* Only negations: everything else is allowed. */
    len = mk4(&ss, "10.0.0.5", 80);
    assert_false(allow_rules("!10.0.0.5", &ss, len));
    len = mk4(&ss, "10.0.0.6", 80);
    assert_true(allow_rules("!10.0.0.5", &ss, len));
    len = mkun(&ss, "/run/x.sock");
    assert_true(allow_rules("!10.0.0.5", &ss, len));
    assert_false(allow_rules("!unix:/run/*", &ss, len));
    len = mkun(&ss, "/var/run/x.sock");
    assert_true(allow_rules("!unix:/run/*", &ss, len));
}

static void test_allow_ports(void **state)
{
    struct sockaddr_storage ss;
    socklen_t len;
    len = mk4(&ss, "10.0.0.1", 5432);
    assert_true(allow_rules("10.0.0.1:5432", &ss, len));
    len = mk4(&ss, "10.0.0.1", 5433);
    assert_false(allow_rules("10.0.0.1:5432", &ss, len));
    len = mk4(&ss, "10.2.3.4", 443);
    assert_true(allow_rules("10.0.0.0/8:443", &ss, len));
    len = mk4(&ss, "10.2.3.4", 80);
    assert_false(allow_rules("10.0.0.0/8:443", &ss, len));
    len = mk6(&ss, "::1", 6379);
    assert_true(allow_rules("[::1]:6379", &ss, len));
    len = mk6(&ss, "::1", 6380);
    assert_false(allow_rules("[::1]:6379", &ss, len));
    /* A port-specific exclusion leaves other ports of the same host alone. */
    len = mk4(&ss, "10.0.0.5", 22);
    assert_false(allow_rules("10.0.0.0/8,!10.0.0.5:22", &ss, len));
    len = mk4(&ss, "10.0.0.5", 80);
    assert_true(allow_rules("10.0.0.0/8,!10.0.0.5:22", &ss, len));
}

static void test_allow_v4_mapped(void **state)
{
    struct sockaddr_storage ss;
    socklen_t len = mk6(&ss, "::ffff:10.1.2.3", 5432);
    assert_true(allow_rules("10.0.0.0/8", &ss, len));
    assert_true(allow_rules("10.1.2.3:5432", &ss, len));
    assert_false(allow_rules("10.1.2.3:5433", &ss, len));
    assert_false(allow_rules("11.0.0.0/8", &ss, len));
    assert_false(allow_rules("10.0.0.0/8,!10.1.2.3", &ss, len));
    /* A v6 rule written for the mapped form matches too. */
    assert_true(allow_rules("::ffff:10.1.2.3", &ss, len));
    /* A plain v6 address with the same low bytes is not v4. */
    len = mk6(&ss, "::10.1.2.3", 5432);
    assert_false(allow_rules("10.0.0.0/8", &ss, len));
}

static void test_allow_short_or_odd_addresses(void **state)
{
    struct sockaddr_storage ss;
    socklen_t len = mk4(&ss, "10.0.0.1", 80);
    struct dest_rules r;
    parse_ok("10.0.0.0/8", &r);
    /* Truncated sockaddr_in: never matches a rule. */
    assert_false(dest_rules_allow(&r, SA(&ss), len - 4, NULL, NULL));
    parse_ok("!10.0.0.0/8", &r);
    assert_true(dest_rules_allow(&r, SA(&ss), len - 4, NULL, NULL));
    /* Another family: no inet rule matches it. */
    ss.ss_family = AF_NETLINK;
    parse_ok("10.0.0.0/8", &r);
    assert_false(dest_rules_allow(&r, SA(&ss), sizeof ss, NULL, NULL));
}

struct names {
    const char *name;
    const char *ip;
    int calls;
};

static bool fake_names(void *ctx, const char *name, const struct sockaddr *sa, socklen_t len)
{
    struct names *n = ctx;
    n->calls++;
    if (strcmp(name, n->name) != 0)
        return false;
    char buf[INET6_ADDRSTRLEN];
    if (sa->sa_family == AF_INET && len >= sizeof(struct sockaddr_in))
        inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, buf, sizeof buf);
    else if (sa->sa_family == AF_INET6 && len >= sizeof(struct sockaddr_in6))
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, buf, sizeof buf);
    else
        return false;
    return strcmp(buf, n->ip) == 0;
}

static void test_allow_names(void **state)
{
    struct names nm = {"db.internal", "10.9.9.9", 0};
    struct dest_rules r;
    struct sockaddr_storage ss;
    socklen_t len;

    parse_ok("db.internal:5432", &r);
    len = mk4(&ss, "10.9.9.9", 5432);
    assert_true(dest_rules_allow(&r, SA(&ss), len, fake_names, &nm));
    assert_true(nm.calls > 0);
    len = mk4(&ss, "10.9.9.8", 5432);
    assert_false(dest_rules_allow(&r, SA(&ss), len, fake_names, &nm));
    len = mk4(&ss, "10.9.9.9", 5433);
    assert_false(dest_rules_allow(&r, SA(&ss), len, fake_names, &nm));
    /* Without a resolver a name matches nothing. */
    len = mk4(&ss, "10.9.9.9", 5432);
    assert_false(dest_rules_allow(&r, SA(&ss), len, NULL, NULL));

    /* Any port; v6 too. */
    struct names nm6 = {"cache", "2001:db8::7", 0};
    parse_ok("cache", &r);
    len = mk6(&ss, "2001:db8::7", 11211);
    assert_true(dest_rules_allow(&r, SA(&ss), len, fake_names, &nm6));
    len = mk6(&ss, "2001:db8::8", 11211);
    assert_false(dest_rules_allow(&r, SA(&ss), len, fake_names, &nm6));

    /* A negated name excludes its addresses only. */
    parse_ok("!db.internal", &r);
    len = mk4(&ss, "10.9.9.9", 5432);
    assert_false(dest_rules_allow(&r, SA(&ss), len, fake_names, &nm));
    len = mk4(&ss, "10.9.9.10", 5432);
    assert_true(dest_rules_allow(&r, SA(&ss), len, fake_names, &nm));

    /* A name never matches a unix socket. */
    nm.calls = 0;
    parse_ok("db.internal", &r);
    len = mkun(&ss, "db.internal");
    assert_false(dest_rules_allow(&r, SA(&ss), len, fake_names, &nm));
    assert_int_equal(nm.calls, 0);
}

static void test_allow_unix(void **state)
{
    struct sockaddr_storage ss;
    socklen_t len;
    const char *rules = "unix:/run/app-*.sock";
    len = mkun(&ss, "/run/app-1.sock");
    assert_true(allow_rules(rules, &ss, len));
    len = mkun(&ss, "/run/app-worker/7.sock");
    assert_true(allow_rules(rules, &ss, len)); /* '*' crosses '/' */
    len = mkun(&ss, "/run/other.sock");
    assert_false(allow_rules(rules, &ss, len));
    len = mkun(&ss, "/run/app-1.sock.bak");
    assert_false(allow_rules(rules, &ss, len));
    /* The whole sockaddr_un as length (what many apps pass). */
    len = mkun(&ss, "/run/app-2.sock");
    assert_true(allow_rules(rules, &ss, sizeof(struct sockaddr_un)));
    /* Inet addresses never match a unix rule. */
    len = mk4(&ss, "10.0.0.1", 80);
    assert_false(allow_rules(rules, &ss, len));

    /* Abstract names are matched as "@name". */
    len = mkabs(&ss, "app-1");
    assert_true(allow_rules("unix:@app-*", &ss, len));
    assert_false(allow_rules("unix:/app-*", &ss, len));
    assert_false(allow_rules("unix:app-*", &ss, len));
    assert_false(allow_rules(rules, &ss, len));
    len = mkabs(&ss, "other");
    assert_false(allow_rules("unix:@app-*", &ss, len));
    assert_true(allow_rules("unix:@*", &ss, len));
    /* A path is not an abstract name. */
    len = mkun(&ss, "/app-1");
    assert_false(allow_rules("unix:@app-*", &ss, len));
    assert_false(allow_rules("unix:@*", &ss, len));
    /* Exact paths. */
    len = mkun(&ss, "/run/x.sock");
    assert_true(allow_rules("unix:/run/x.sock", &ss, len));
    assert_false(allow_rules("unix:/run/x.soc", &ss, len));
    assert_true(allow_rules("unix:/run/?.sock", &ss, len));
}

/* ---- printable names ---- */

static void check_format(const struct sockaddr_storage *ss, socklen_t len, const char *want)
{
    char buf[DEST_NAME_MAX];
    memset(buf, 'Z', sizeof buf);
    size_t n = dest_format(SA(ss), len, buf, sizeof buf);
    CHECK(strcmp(buf, want) == 0, "dest_format = \"%s\", want \"%s\"", buf, want);
    CHECK(n == strlen(want), "dest_format(\"%s\") returned %zu", want, n);
    /* Every smaller buffer: the prefix that fits, NUL-terminated, its length. */
    for (size_t sz = 1; sz <= strlen(want) + 1; sz++) {
        char small[DEST_NAME_MAX + 1];
        memset(small, 'Z', sizeof small);
        size_t got = dest_format(SA(ss), len, small, sz);
        CHECK(got == sz - 1, "\"%s\" into %zu bytes: returned %zu", want, sz, got);
        CHECK(small[sz - 1] == '\0', "\"%s\" into %zu bytes: not NUL-terminated", want, sz);
        CHECK(strncmp(small, want, sz - 1) == 0 && strlen(small) == sz - 1,
              "\"%s\" into %zu bytes: got \"%s\"", want, sz, small);
        CHECK(small[sz] == 'Z', "\"%s\" into %zu bytes: wrote past the buffer", want, sz);
    }
}

static void test_format(void **state)
{
    struct sockaddr_storage ss;
    socklen_t len;
    len = mk4(&ss, "127.0.0.1", 80);
    check_format(&ss, len, "127.0.0.1:80");
    len = mk4(&ss, "255.255.255.255", 65535);
    check_format(&ss, len, "255.255.255.255:65535");
    len = mk4(&ss, "0.0.0.0", 0);
    check_format(&ss, len, "0.0.0.0:0");
    len = mk6(&ss, "::1", 443);
    check_format(&ss, len, "[::1]:443");
    len = mk6(&ss, "2001:db8::1:2", 8080);
    check_format(&ss, len, "[2001:db8::1:2]:8080");
    len = mk6(&ss, "::ffff:10.1.2.3", 5432);
    check_format(&ss, len, "[::ffff:10.1.2.3]:5432");
    len = mkun(&ss, "/run/x.sock");
    check_format(&ss, len, "unix:/run/x.sock");
    check_format(&ss, sizeof(struct sockaddr_un), "unix:/run/x.sock");
    len = mkabs(&ss, "name");
    check_format(&ss, len, "unix:@name");
    len = mkun(&ss, "");
    check_format(&ss, (socklen_t)offsetof(struct sockaddr_un, sun_path), "unix:(unnamed)");
    check_format(&ss, (socklen_t)sizeof(sa_family_t), "unix:(unnamed)");
    check_format(&ss, (socklen_t)offsetof(struct sockaddr_un, sun_path) + 1, "unix:(unnamed)");
    /* Non-printable bytes of an abstract name are shown as '?'. */
    len = mkabs(&ss, "a\tb\x7f");
    check_format(&ss, len, "unix:@a?b?");
    /* A path filling the whole of sun_path (no NUL). */
    struct sockaddr_un *un = (struct sockaddr_un *)&ss;
    memset(un->sun_path, 'p', sizeof un->sun_path);
    un->sun_path[0] = '/';
    char want[8 + sizeof un->sun_path];
    snprintf(want, sizeof want, "unix:%.*s", (int)sizeof un->sun_path, un->sun_path);
    check_format(&ss, sizeof *un, want);

    /* Short inet addresses and unknown families. */
    len = mk4(&ss, "127.0.0.1", 80);
    check_format(&ss, len - 1, "(bad inet address)");
    len = mk6(&ss, "::1", 80);
    check_format(&ss, len - 1, "(bad inet6 address)");
    memset(&ss, 0, sizeof ss);
    ss.ss_family = AF_NETLINK;
    char fam[32];
    snprintf(fam, sizeof fam, "family:%d", AF_NETLINK);
    check_format(&ss, sizeof ss, fam);
    check_format(&ss, 1, "(unknown)");

    char buf[32];
    assert_int_equal(dest_format(NULL, 0, buf, sizeof buf), strlen("(unknown)"));
    assert_string_equal(buf, "(unknown)");
    /* n == 0: nothing written. */
    buf[0] = 'Q';
    len = mk4(&ss, "127.0.0.1", 80);
    assert_int_equal(dest_format(SA(&ss), len, buf, 0), 0);
    assert_int_equal(buf[0], 'Q');
}

/* ---- glob ---- */

static void test_glob(void **state)
{
    static const struct { const char *p, *s; bool match; } cases[] = {
        {"", "", true},
        {"", "a", false},
        {"a", "", false},
        {"abc", "abc", true},
        {"abc", "abcd", false},
        {"abcd", "abc", false},
        {"*", "", true},
        {"*", "anything/at/all", true},
        {"**", "x", true},
        {"?", "", false},
        {"?", "a", true},
        {"?", "ab", false},
        {"a?c", "abc", true},
        {"a?c", "ac", false},
        {"a*c", "ac", true},
        {"a*c", "abbbc", true},
        {"a*c", "abcd", false},
        {"a*c", "ab", false},
        {"*ab", "aab", true},
        {"*ab", "abab", true},
        {"*ab", "abba", false},
        {"*a*b*", "xxaxxbxx", true},
        {"*a*b*", "xxbxxaxx", false},
        {"a*b*c", "abbbc", true},
        {"a*b*c", "acb", false},
        {"/run/*.sock", "/run/a/b.sock", true},
        {"/run/app-*.sock", "/run/app-1.sock", true},
        {"/run/app-*.sock", "/run/app-1.sockx", false},
        {"/run/app-*.sock", "/run/ap-1.sock", false},
        {"@reshim-*", "@reshim-1000/42", true},
        {"ABC", "abc", false},
        {"[ab]", "a", false}, /* no classes: '[' is literal */
        {"[ab]", "[ab]", true},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        CHECK(dest_glob(cases[i].p, cases[i].s) == cases[i].match,
              "dest_glob(\"%s\", \"%s\") != %d", cases[i].p, cases[i].s, cases[i].match);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_host_port),
        cmocka_unit_test(test_parse_ipv4),
        cmocka_unit_test(test_parse_ipv4_cidr),
        cmocka_unit_test(test_parse_ipv6),
        cmocka_unit_test(test_parse_unix),
        cmocka_unit_test(test_parse_negation),
        cmocka_unit_test(test_parse_all_and_empty),
        cmocka_unit_test(test_parse_whitespace),
        cmocka_unit_test(test_parse_max_rules),
        cmocka_unit_test(test_parse_rejects),
        cmocka_unit_test(test_allow_no_rules),
        cmocka_unit_test(test_allow_positive_list),
        cmocka_unit_test(test_allow_negation_wins),
        cmocka_unit_test(test_allow_ports),
        cmocka_unit_test(test_allow_v4_mapped),
        cmocka_unit_test(test_allow_short_or_odd_addresses),
        cmocka_unit_test(test_allow_names),
        cmocka_unit_test(test_allow_unix),
        cmocka_unit_test(test_format),
        cmocka_unit_test(test_glob),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
