/* test_dnscache.c: unit tests of shim/dnscache.c, the DNS answer cache.
 *   - keys: numeric hosts, AI_NUMERICHOST and names too long are not cached;
 *   - a remembered answer is found for the same lookup only (node, service,
 *     family, socktype, flags each make another key), within max_age;
 *   - the copy handed out is freed by the C library's own freeaddrinfo,
 *     and holds the same addresses, in order, and the canonical name;
 *   - a new answer for a key replaces the old one;
 *   - 64 entries: a 65th lookup evicts the least recently used one, and
 *     every other is still found (the same node with many services too);
 *   - the name match of RESHIM_DEST host rules: the addresses of a resolved
 *     name, ignoring case, any service; localhost's loopback addresses;
 *   - the cache's own copies never come from the app's allocator (only
 *     the copies handed out do), answers larger than a page included, and
 *     every node's canonical name is kept.
 * The app's allocator handed to dnscache.c (dns.c hands alloc.h's
 * reshim_app_*) is the C library's here: this program is the app. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>

#include <cmocka.h>

#include "dnscache.h"

static unsigned app_allocs; /* the app's allocator, as dnscache.c calls it */
static void *app_malloc(size_t n)
{
    app_allocs++;
    return malloc(n);
}
static void *app_calloc(size_t nmemb, size_t size)
{
    app_allocs++;
    return calloc(nmemb, size);
}
static const struct dns_app_alloc app = {app_malloc, app_calloc, free};

#define HOUR 3600000000000ull

/* An answer as glibc's getaddrinfo makes it: n IPv4 nodes 10.0.x.(first+i)
 * for port, the first with canon as its canonical name. */
struct answer {
    struct addrinfo ai[8];
    struct sockaddr_in sin[8];
};
static struct addrinfo *make_answer(struct answer *a, int n, int x, int first, int port,
                                    char *canon)
{
    memset(a, 0, sizeof *a);
    for (int i = 0; i < n; i++) {
        a->sin[i].sin_family = AF_INET;
        a->sin[i].sin_port = htons((uint16_t)port);
        a->sin[i].sin_addr.s_addr = htonl(0x0a000000u | (unsigned)x << 8 | (unsigned)(first + i));
        a->ai[i].ai_family = AF_INET;
        a->ai[i].ai_socktype = SOCK_STREAM;
        a->ai[i].ai_protocol = IPPROTO_TCP;
        a->ai[i].ai_addrlen = sizeof a->sin[i];
        a->ai[i].ai_addr = (struct sockaddr *)&a->sin[i];
        a->ai[i].ai_canonname = i == 0 ? canon : NULL;
        a->ai[i].ai_next = i + 1 < n ? &a->ai[i + 1] : NULL;
    }
    return &a->ai[0];
}

static struct dns_key key_of(const char *node, const char *service, int family, int socktype,
                             int flags)
{
    struct addrinfo hints = {.ai_family = family, .ai_socktype = socktype, .ai_flags = flags};
    struct dns_key k;
    assert_true(dns_make_key(node, service, &hints, &k));
    return k;
}

static void remember(const char *node, const char *service, int x, int first, int n)
{
    struct answer a;
    struct dns_key k = key_of(node, service, AF_UNSPEC, SOCK_STREAM, 0);
    dns_remember(&k, make_answer(&a, n, x, first, 80, NULL));
}

/* The addresses' last byte, "1,2,3", of a copy (then freed with freeaddrinfo). */
static void expect_copy(const struct dns_key *k, const char *want)
{
    uint64_t age = HOUR;
    struct addrinfo *c = dns_stale_answer(k, HOUR, &age, &app);
    assert_non_null(c);
    assert_true(age < HOUR);
    char got[64] = "";
    for (struct addrinfo *ai = c; ai; ai = ai->ai_next) {
        assert_int_equal(ai->ai_family, AF_INET);
        assert_int_equal(ai->ai_addrlen, sizeof(struct sockaddr_in));
        const struct sockaddr_in *s = (const struct sockaddr_in *)ai->ai_addr;
        snprintf(got + strlen(got), sizeof got - strlen(got), "%s%u", got[0] ? "," : "",
                 (unsigned)(ntohl(s->sin_addr.s_addr) & 0xff));
    }
    freeaddrinfo(c);
    assert_string_equal(got, want);
}

static void test_keys(void **state)
{
    (void)state;
    struct dns_key k;
    struct addrinfo numeric = {.ai_flags = AI_NUMERICHOST};
    assert_false(dns_make_key("127.0.0.1", "80", NULL, &k));
    assert_false(dns_make_key("::1", NULL, NULL, &k));
    assert_false(dns_make_key("example.test", "80", &numeric, &k));
    assert_false(dns_make_key(NULL, "80", NULL, &k));
    char longname[DNS_NODE_MAX + 1];
    memset(longname, 'a', sizeof longname - 1);
    longname[sizeof longname - 1] = 0;
    assert_false(dns_make_key(longname, NULL, NULL, &k));
    longname[DNS_NODE_MAX - 1] = 0; /* the longest that fits */
    assert_true(dns_make_key(longname, NULL, NULL, &k));
    assert_true(dns_make_key("example.test", NULL, NULL, &k));
}

static void test_same_lookup_only(void **state)
{
    (void)state;
    struct answer a;
    char canon[] = "canonical.keys.test";
    struct dns_key k = key_of("keys.test", "http", AF_UNSPEC, SOCK_STREAM, AI_CANONNAME);
    assert_false(dns_have_stale(&k, HOUR));
    dns_remember(&k, make_answer(&a, 3, 1, 1, 80, canon));
    assert_true(dns_have_stale(&k, HOUR));
    expect_copy(&k, "1,2,3");

    uint64_t age;
    struct addrinfo *c = dns_stale_answer(&k, HOUR, &age, &app);
    assert_non_null(c);
    assert_non_null(c->ai_canonname);
    assert_string_equal(c->ai_canonname, canon);
    freeaddrinfo(c);

    struct dns_key other[] = {
        key_of("keys.tes", "http", AF_UNSPEC, SOCK_STREAM, AI_CANONNAME),
        key_of("keys.test.", "http", AF_UNSPEC, SOCK_STREAM, AI_CANONNAME),
        key_of("keys.test", "https", AF_UNSPEC, SOCK_STREAM, AI_CANONNAME),
        key_of("keys.test", NULL, AF_UNSPEC, SOCK_STREAM, AI_CANONNAME),
        key_of("keys.test", "http", AF_INET, SOCK_STREAM, AI_CANONNAME),
        key_of("keys.test", "http", AF_UNSPEC, SOCK_DGRAM, AI_CANONNAME),
        key_of("keys.test", "http", AF_UNSPEC, SOCK_STREAM, 0),
    };
    for (size_t i = 0; i < sizeof other / sizeof other[0]; i++) {
        assert_false(dns_have_stale(&other[i], HOUR));
        assert_null(dns_stale_answer(&other[i], HOUR, &age, &app));
    }
}

static void test_max_age(void **state)
{
    (void)state;
    struct answer a;
    struct dns_key k = key_of("age.test", "80", AF_UNSPEC, SOCK_STREAM, 0);
    dns_remember(&k, make_answer(&a, 1, 2, 9, 80, NULL));
    /* The monotonic clock moves on by at least 1 ms (CLOCK_MONOTONIC). */
    struct timespec ts = {0, 1000000};
    while (clock_nanosleep(CLOCK_MONOTONIC, 0, &ts, &ts) != 0)
        ;
    uint64_t age = 0;
    assert_false(dns_have_stale(&k, 1000));
    assert_null(dns_stale_answer(&k, 1000, &age, &app));
    assert_true(dns_have_stale(&k, HOUR));
    struct addrinfo *c = dns_stale_answer(&k, HOUR, &age, &app);
    assert_non_null(c);
    freeaddrinfo(c);
    assert_true(age >= 1000000);
}

static void test_replace(void **state)
{
    (void)state;
    remember("replace.test", "80", 3, 1, 2);
    struct dns_key k = key_of("replace.test", "80", AF_UNSPEC, SOCK_STREAM, 0);
    expect_copy(&k, "1,2");
    remember("replace.test", "80", 3, 7, 1);
    expect_copy(&k, "7");
}

/* 64 entries at most: filled with 64 services of one node, the next new
 * lookup evicts the least recently used (the first, unless it was used
 * again: then the second). */
static void test_evict(void **state)
{
    (void)state;
    char svc[16];
    for (int i = 0; i < 64; i++) {
        snprintf(svc, sizeof svc, "%d", 1000 + i);
        remember("evict.test", svc, 4, i, 1);
    }
    for (int i = 0; i < 64; i++) {
        snprintf(svc, sizeof svc, "%d", 1000 + i);
        struct dns_key k = key_of("evict.test", svc, AF_UNSPEC, SOCK_STREAM, 0);
        char want[16];
        snprintf(want, sizeof want, "%d", i);
        expect_copy(&k, want); /* each one used again, in order */
    }
    remember("evict2.test", "1", 5, 100, 1);
    struct dns_key first = key_of("evict.test", "1000", AF_UNSPEC, SOCK_STREAM, 0);
    assert_false(dns_have_stale(&first, HOUR));
    for (int i = 1; i < 64; i++) {
        snprintf(svc, sizeof svc, "%d", 1000 + i);
        struct dns_key k = key_of("evict.test", svc, AF_UNSPEC, SOCK_STREAM, 0);
        assert_true(dns_have_stale(&k, HOUR));
    }
    struct dns_key added = key_of("evict2.test", "1", AF_UNSPEC, SOCK_STREAM, 0);
    expect_copy(&added, "100");
    /* A replaced answer takes no new entry: nothing else is evicted. */
    remember("evict2.test", "1", 5, 101, 1);
    struct dns_key second = key_of("evict.test", "1001", AF_UNSPEC, SOCK_STREAM, 0);
    assert_true(dns_have_stale(&second, HOUR));
    expect_copy(&added, "101");
}

static bool has_addr(const char *name, uint32_t ip4)
{
    struct sockaddr_in s = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(ip4)};
    return reshim_dns_name_has_addr(NULL, name, (const struct sockaddr *)&s, sizeof s);
}

static void test_name_match(void **state)
{
    (void)state;
    remember("Match.Test", "80", 6, 1, 2);
    remember("match.test", "443", 6, 20, 1);
    assert_true(has_addr("match.test", 0x0a000601));
    assert_true(has_addr("MATCH.TEST", 0x0a000602));
    assert_true(has_addr("match.test", 0x0a000614));
    assert_false(has_addr("match.test", 0x0a000603));
    assert_false(has_addr("other.test", 0x0a000601));
    assert_true(has_addr("localhost", 0x7f000001));
    assert_true(has_addr("localhost", 0x7f0a0b0c));
    assert_false(has_addr("localhost", 0x0a000601));
    struct sockaddr_in6 s6 = {.sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT};
    assert_true(reshim_dns_name_has_addr(NULL, "localhost", (const struct sockaddr *)&s6,
                                         sizeof s6));
}

/* Remembering takes nothing from the app's allocator (the cache's copies
 * are the shim's own memory, sys_map); a copy handed out does. An answer
 * larger than a page (8 nodes, each with a 1000-byte canonical name) and a
 * small one after it, for the same key and for a new one. */
static void test_own_memory(void **state)
{
    (void)state;
    static char canon[8][1001];
    struct answer a;
    struct addrinfo *big = make_answer(&a, 8, 7, 1, 80, NULL);
    for (int i = 0; i < 8; i++) {
        memset(canon[i], 'a' + i, 1000);
        canon[i][1000] = 0;
        a.ai[i].ai_canonname = canon[i];
    }
    struct dns_key k = key_of("own.test", "80", AF_UNSPEC, SOCK_STREAM, AI_CANONNAME);
    unsigned before = app_allocs;
    remember("own.test", "80", 7, 9, 1); /* AI_CANONNAME aside: another key */
    dns_remember(&k, big);
    assert_int_equal(app_allocs, before);
    uint64_t age;
    struct addrinfo *c = dns_stale_answer(&k, HOUR, &age, &app);
    assert_non_null(c);
    assert_true(app_allocs > before);
    int n = 0;
    for (struct addrinfo *ai = c; ai; ai = ai->ai_next, n++) {
        assert_non_null(ai->ai_canonname);
        assert_string_equal(ai->ai_canonname, canon[n]);
        const struct sockaddr_in *s = (const struct sockaddr_in *)ai->ai_addr;
        assert_int_equal(ntohl(s->sin_addr.s_addr), 0x0a000700u | (unsigned)(n + 1));
    }
    assert_int_equal(n, 8);
    freeaddrinfo(c);
    before = app_allocs;
    remember("own.test", "80", 7, 9, 1);
    dns_remember(&k, make_answer(&a, 2, 7, 30, 80, NULL)); /* written over in place */
    remember("own2.test", "80", 7, 40, 3);
    assert_int_equal(app_allocs, before);
    expect_copy(&k, "30,31");
    struct dns_key k2 = key_of("own2.test", "80", AF_UNSPEC, SOCK_STREAM, 0);
    expect_copy(&k2, "40,41,42");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_keys),       cmocka_unit_test(test_same_lookup_only),
        cmocka_unit_test(test_max_age),    cmocka_unit_test(test_replace),
        cmocka_unit_test(test_evict),      cmocka_unit_test(test_name_match),
        cmocka_unit_test(test_own_memory),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
