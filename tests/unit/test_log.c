/* test_log.c: unit tests of shim/log.c: the minimal printf, the per-site
 * rate limit, and reshim_log_at end to end (lines read back from a file).
 * Defines what log.c takes from lifecycle.c: the recursion guard and the
 * clock (here a fake one the tests set). */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <cmocka.h>

#include "log.h"
#include "reshim.h"

__thread __attribute__((tls_model("initial-exec"))) int reshim_guard;

static uint64_t fake_now;
uint64_t reshim_now_ns(void)
{
    return fake_now;
}

#define CHECK(cond, ...)           \
    do {                           \
        if (!(cond))               \
            fail_msg(__VA_ARGS__); \
    } while (0)

/* reshim_vformat without the printf attribute, for formats gcc would reject. */
static size_t fmt_raw(char *buf, size_t n, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    size_t len = reshim_vformat(buf, n, fmt, ap);
    va_end(ap);
    return len;
}

/* The same format and arguments through reshim_format and snprintf. */
#define SAME_AS_LIBC(...)                                                              \
    do {                                                                               \
        char mine_[256], libc_[256];                                                   \
        size_t n_ = reshim_format(mine_, sizeof mine_, __VA_ARGS__);                   \
        int m_ = snprintf(libc_, sizeof libc_, __VA_ARGS__);                           \
        CHECK(strcmp(mine_, libc_) == 0, "format %s: \"%s\", libc \"%s\"",         \
              #__VA_ARGS__, mine_, libc_);                                             \
        CHECK(n_ == (size_t)m_, "format %s: length %zu, want %d", #__VA_ARGS__, n_, m_); \
    } while (0)

/* ---- reshim_format ---- */

static void test_format_conversions(void **state)
{
    SAME_AS_LIBC("plain text");
    SAME_AS_LIBC("%s", "hello");
    SAME_AS_LIBC("%s", "");
    SAME_AS_LIBC("[%s|%s]", "a", "bc");
    SAME_AS_LIBC("%.3s", "abcdef");
    SAME_AS_LIBC("%.3s", "ab");
    SAME_AS_LIBC("%.0s|", "abc");
    SAME_AS_LIBC("%.10s", "abc");
    SAME_AS_LIBC("%.*s", 2, "abcdef");
    SAME_AS_LIBC("%d", 0);
    SAME_AS_LIBC("%d", 42);
    SAME_AS_LIBC("%d", -42);
    SAME_AS_LIBC("%d", INT_MIN);
    SAME_AS_LIBC("%d", INT_MAX);
    SAME_AS_LIBC("%i", -7);
    SAME_AS_LIBC("%u", 0u);
    SAME_AS_LIBC("%u", 4000000000u);
    SAME_AS_LIBC("%u", UINT_MAX);
    SAME_AS_LIBC("%ld", -1234567890123L);
    SAME_AS_LIBC("%ld", LONG_MIN);
    SAME_AS_LIBC("%ld", LONG_MAX);
    SAME_AS_LIBC("%lu", ULONG_MAX);
    SAME_AS_LIBC("%lld", LLONG_MIN);
    SAME_AS_LIBC("%lld", LLONG_MAX);
    SAME_AS_LIBC("%lld", -1LL);
    SAME_AS_LIBC("%llu", ULLONG_MAX);
    SAME_AS_LIBC("%llu", 0ULL);
    SAME_AS_LIBC("%zu", (size_t)0);
    SAME_AS_LIBC("%zu", SIZE_MAX);
    SAME_AS_LIBC("%zd", (ssize_t)-5);
    SAME_AS_LIBC("%zd", (ssize_t)123456789);
    SAME_AS_LIBC("%x", 0u);
    SAME_AS_LIBC("%x", 0xdeadbeefu);
    SAME_AS_LIBC("%x", 255u);
    SAME_AS_LIBC("%lx", ULONG_MAX);
    SAME_AS_LIBC("%c", 'A');
    SAME_AS_LIBC("%c%c%c", 'x', 'y', 'z');
    SAME_AS_LIBC("%%");
    SAME_AS_LIBC("100%% sure");
    SAME_AS_LIBC("%d%%", 80);
    SAME_AS_LIBC("reshim[%d]: %s: (%u similar lines suppressed)", 4242, "warn", 17u);
    SAME_AS_LIBC("%s=\"%.60s\" is %d/%u/%ld/%lu/%lld/%llu/%zu/%x/%c", "RESHIM_X", "val", -1, 2u,
                 -3L, 4UL, -5LL, 6ULL, (size_t)7, 0xabu, 'q');

    char buf[64];
    assert_int_equal(reshim_format(buf, sizeof buf, "%s", ""), 0);
    assert_string_equal(buf, "");
    assert_int_equal(reshim_format(buf, sizeof buf, "%s", "x"), 1);
    assert_string_equal(buf, "x");
}

static void test_format_unknown_conversions(void **state)
{
    char buf[64];
    /* An unknown conversion is copied as it is and takes no argument. */
    assert_int_equal(fmt_raw(buf, sizeof buf, "%q"), 2);
    assert_string_equal(buf, "%q");
    assert_int_equal(fmt_raw(buf, sizeof buf, "a%qb %s", "x"), 6);
    assert_string_equal(buf, "a%qb x");
    fmt_raw(buf, sizeof buf, "%p %d", 7);
    assert_string_equal(buf, "%p 7");
    fmt_raw(buf, sizeof buf, "%5d");
    assert_string_equal(buf, "%5d");
    /* A lone '%' at the end prints nothing and stops cleanly. */
    assert_int_equal(fmt_raw(buf, sizeof buf, "abc%"), 3);
    assert_string_equal(buf, "abc");
    /* NULL strings. */
    fmt_raw(buf, sizeof buf, "[%s]", (const char *)NULL);
    assert_string_equal(buf, "[(null)]");
}

static void test_format_truncation(void **state)
{
    char full[256];
    size_t flen = reshim_format(full, sizeof full, "id=%d neg=%d name=%.4s hex=%x %c%% %llu",
                                12345, -678, "abcdefgh", 0xbeefu, '!', ULLONG_MAX);
    assert_string_equal(full, "id=12345 neg=-678 name=abcd hex=beef !% 18446744073709551615");
    assert_int_equal(flen, strlen(full));
    for (size_t sz = 1; sz <= flen + 1; sz++) {
        char small[300];
        memset(small, 'Z', sizeof small);
        size_t n = reshim_format(small, sz, "id=%d neg=%d name=%.4s hex=%x %c%% %llu", 12345,
                                 -678, "abcdefgh", 0xbeefu, '!', ULLONG_MAX);
        CHECK(n == sz - 1, "size %zu: returned %zu", sz, n);
        CHECK(small[sz - 1] == '\0', "size %zu: not NUL-terminated", sz);
        CHECK(strlen(small) == sz - 1 && strncmp(small, full, sz - 1) == 0,
              "size %zu: \"%s\" is not a prefix of \"%s\"", sz, small, full);
        CHECK(small[sz] == 'Z', "size %zu: wrote past the buffer", sz);
    }
    /* Unknown conversions truncated too. */
    for (size_t sz = 1; sz <= 5; sz++) {
        char small[16];
        memset(small, 'Z', sizeof small);
        size_t n = fmt_raw(small, sz, "a%qb");
        CHECK(n == sz - 1 && small[sz - 1] == '\0' && strncmp(small, "a%qb", sz - 1) == 0 &&
                  small[sz] == 'Z',
              "\"a%%qb\" into %zu: \"%s\" (%zu)", sz, small, n);
    }
    /* n == 0: nothing written at all. */
    char one = 'Q';
    assert_int_equal(reshim_format(&one, 0, "%s", "abc"), 0);
    assert_int_equal(one, 'Q');
    /* n == 1: just the NUL. */
    char two[2] = {'Q', 'R'};
    assert_int_equal(reshim_format(two, 1, "%d", -5), 0);
    assert_int_equal(two[0], '\0');
    assert_int_equal(two[1], 'R');
}

/* ---- rate limit ---- */

#define WIN LOG_WINDOW_NS

static void test_site_admit_burst(void **state)
{
    struct log_site site;
    memset(&site, 0, sizeof site);
    uint64_t t = 100 * WIN + 5;
    uint32_t sup = 99;
    for (int i = 0; i < LOG_BURST; i++) {
        CHECK(log_site_admit(&site, t + (uint64_t)i, &sup) == 1, "line %d suppressed", i);
        CHECK(sup == 0, "line %d reports %u suppressed", i, sup);
    }
    for (int i = 0; i < 5; i++) {
        sup = 99;
        assert_int_equal(log_site_admit(&site, t + WIN / 2, &sup), 0);
        assert_int_equal(sup, 0);
    }
    /* Last instant of the window: still suppressed. */
    uint64_t end = 101 * WIN - 1;
    assert_int_equal(log_site_admit(&site, end, &sup), 0);
    /* Next window: admitted, and the 6 dropped lines are reported once. */
    assert_int_equal(log_site_admit(&site, 101 * WIN, &sup), 1);
    assert_int_equal(sup, 6);
    assert_int_equal(log_site_admit(&site, 101 * WIN + 1, &sup), 1);
    assert_int_equal(sup, 0);
    /* A full burst again in this window (2 used, 8 left), then suppressed. */
    for (int i = 2; i < LOG_BURST; i++) {
        assert_int_equal(log_site_admit(&site, 101 * WIN + 2, &sup), 1);
        assert_int_equal(sup, 0);
    }
    assert_int_equal(log_site_admit(&site, 101 * WIN + 3, &sup), 0);
    /* Much later: the one dropped line is still reported, once. */
    assert_int_equal(log_site_admit(&site, 250 * WIN, &sup), 1);
    assert_int_equal(sup, 1);
    assert_int_equal(log_site_admit(&site, 250 * WIN, &sup), 1);
    assert_int_equal(sup, 0);
}

static void test_site_admit_quiet_windows(void **state)
{
    struct log_site site;
    memset(&site, 0, sizeof site);
    uint32_t sup = 99;
    /* Time zero is a valid first window. */
    assert_int_equal(log_site_admit(&site, 0, &sup), 1);
    assert_int_equal(sup, 0);
    /* A window within the burst reports nothing suppressed next time. */
    for (int i = 1; i < LOG_BURST; i++)
        assert_int_equal(log_site_admit(&site, 1, &sup), 1);
    assert_int_equal(log_site_admit(&site, WIN, &sup), 1);
    assert_int_equal(sup, 0);
    /* Sites are independent. */
    struct log_site a, b;
    memset(&a, 0, sizeof a);
    memset(&b, 0, sizeof b);
    for (int i = 0; i < LOG_BURST + 3; i++)
        (void)log_site_admit(&a, 7 * WIN, &sup);
    assert_int_equal(log_site_admit(&b, 7 * WIN, &sup), 1);
    assert_int_equal(log_site_admit(&a, 7 * WIN, &sup), 0);
}

/* ---- reshim_log_at, end to end ---- */

static char log_path[64];

static int make_log_file(void **state)
{
    snprintf(log_path, sizeof log_path, "/tmp/reshim-test-log-XXXXXX");
    int fd = mkstemp(log_path);
    if (fd < 0)
        return -1;
    close(fd);
    unlink(log_path); /* log.c creates it */
    reshim_guard = 0;
    return 0;
}

static int remove_log_file(void **state)
{
    unlink(log_path);
    reshim_log_configure(RLOG_WARN, NULL);
    return 0;
}

static size_t read_log(char *buf, size_t n)
{
    int fd = open(log_path, O_RDONLY);
    if (fd < 0) {
        buf[0] = '\0';
        return 0;
    }
    ssize_t r = read(fd, buf, n - 1);
    close(fd);
    if (r < 0)
        r = 0;
    buf[r] = '\0';
    return (size_t)r;
}

static int count_lines(const char *s)
{
    int n = 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

static void test_log_line_to_file(void **state)
{
    reshim_log_configure(RLOG_INFO, log_path);
    assert_true(reshim_log_enabled(RLOG_ERROR));
    assert_true(reshim_log_enabled(RLOG_WARN));
    assert_true(reshim_log_enabled(RLOG_INFO));
    assert_false(reshim_log_enabled(RLOG_DEBUG));

    struct log_site site;
    memset(&site, 0, sizeof site);
    fake_now = 10 * WIN;
    errno = EADDRINUSE;
    reshim_log_at(&site, RLOG_INFO, "hello %s %d", "world", 42);
    assert_int_equal(errno, EADDRINUSE); /* errno is the app's */
    assert_int_equal(reshim_guard, 0);

    char buf[4096], want[256];
    read_log(buf, sizeof buf);
    snprintf(want, sizeof want, "reshim[%d]: info: hello world 42\n", (int)getpid());
    assert_string_equal(buf, want);

    /* Appended, with each level's name. */
    struct log_site s2, s3;
    memset(&s2, 0, sizeof s2);
    memset(&s3, 0, sizeof s3);
    reshim_log_at(&s2, RLOG_ERROR, "e%d", 1);
    reshim_log_at(&s3, RLOG_WARN, "w%d", 2);
    read_log(buf, sizeof buf);
    snprintf(want, sizeof want,
             "reshim[%d]: info: hello world 42\nreshim[%d]: error: e1\nreshim[%d]: warn: w2\n",
             (int)getpid(), (int)getpid(), (int)getpid());
    assert_string_equal(buf, want);

    /* The file is ours only while writing a line: mode 0600 when created. */
    struct stat st;
    assert_int_equal(stat(log_path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
}

static void test_log_macros_respect_level(void **state)
{
    reshim_log_configure(RLOG_WARN, log_path);
    fake_now = 20 * WIN;
    LOG_DEBUG("debug %d", 1);
    LOG_INFO("info %d", 2);
    LOG_WARN("warn %d", 3);
    LOG_ERROR("error %d", 4);
    char buf[4096], want[256];
    read_log(buf, sizeof buf);
    snprintf(want, sizeof want, "reshim[%d]: warn: warn 3\nreshim[%d]: error: error 4\n",
             (int)getpid(), (int)getpid());
    assert_string_equal(buf, want);

    reshim_log_configure(RLOG_DEBUG, log_path);
    assert_true(reshim_log_enabled(RLOG_DEBUG));
    reshim_log_configure(RLOG_ERROR, log_path);
    assert_false(reshim_log_enabled(RLOG_WARN));
    assert_true(reshim_log_enabled(RLOG_ERROR));
}

static void test_log_rate_limited(void **state)
{
    reshim_log_configure(RLOG_INFO, log_path);
    struct log_site site;
    memset(&site, 0, sizeof site);
    fake_now = 30 * WIN + 1;
    for (int i = 0; i < LOG_BURST + 4; i++)
        reshim_log_at(&site, RLOG_INFO, "line %d", i);
    char buf[8192];
    read_log(buf, sizeof buf);
    assert_int_equal(count_lines(buf), LOG_BURST);
    char want[128];
    snprintf(want, sizeof want, "reshim[%d]: info: line %d\n", (int)getpid(), LOG_BURST - 1);
    assert_non_null(strstr(buf, want));
    snprintf(want, sizeof want, "line %d\n", LOG_BURST);
    assert_null(strstr(buf, want));

    /* Next window: the count of dropped lines first, then the line. */
    fake_now = 31 * WIN;
    reshim_log_at(&site, RLOG_INFO, "after");
    reshim_log_at(&site, RLOG_INFO, "again");
    size_t len = read_log(buf, sizeof buf);
    assert_int_equal(count_lines(buf), LOG_BURST + 3);
    char tail[256];
    snprintf(tail, sizeof tail,
             "reshim[%d]: info: (4 similar lines suppressed)\nreshim[%d]: info: after\n"
             "reshim[%d]: info: again\n",
             (int)getpid(), (int)getpid(), (int)getpid());
    assert_true(len >= strlen(tail));
    assert_string_equal(buf + len - strlen(tail), tail);
}

static void test_log_long_line_truncated(void **state)
{
    reshim_log_configure(RLOG_INFO, log_path);
    struct log_site site;
    memset(&site, 0, sizeof site);
    fake_now = 40 * WIN;
    char big[3000];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    reshim_log_at(&site, RLOG_INFO, "%s", big);
    char buf[8192];
    size_t len = read_log(buf, sizeof buf);
    /* One line, at most LOG_LINE_MAX - 1 bytes, still ending with '\n'. */
    assert_true(len > LOG_LINE_MAX / 2);
    assert_true(len <= LOG_LINE_MAX - 1);
    assert_int_equal(buf[len - 1], '\n');
    assert_int_equal(count_lines(buf), 1);
    assert_int_equal(buf[len - 2], 'x');
}

/* With no file (or one that cannot be opened), lines go to stderr. */
static void test_log_stderr_fallback(void **state)
{
    char err_path[64];
    snprintf(err_path, sizeof err_path, "/tmp/reshim-test-err-XXXXXX");
    int efd = mkstemp(err_path);
    assert_true(efd >= 0);
    fflush(stderr);
    int saved = dup(2);
    assert_true(saved >= 0);

    struct log_site a, b, c;
    memset(&a, 0, sizeof a);
    memset(&b, 0, sizeof b);
    memset(&c, 0, sizeof c);
    fake_now = 50 * WIN;
    char longp[RESHIM_PATH_MAX + 40];
    longp[0] = '/';
    memset(longp + 1, 'q', sizeof longp - 2);
    longp[sizeof longp - 1] = '\0';

    dup2(efd, 2);
    reshim_log_configure(RLOG_INFO, NULL);
    reshim_log_at(&a, RLOG_INFO, "to stderr %d", 1);
    reshim_log_configure(RLOG_INFO, "/nonexistent-reshim-dir/x.log");
    reshim_log_at(&b, RLOG_INFO, "to stderr %d", 2);
    reshim_log_configure(RLOG_INFO, longp); /* too long to keep: stderr */
    reshim_log_at(&c, RLOG_INFO, "to stderr %d", 3);
    dup2(saved, 2);
    close(saved);

    char buf[1024], want[256];
    ssize_t r = pread(efd, buf, sizeof buf - 1, 0);
    close(efd);
    unlink(err_path);
    assert_true(r > 0);
    buf[r] = '\0';
    snprintf(want, sizeof want,
             "reshim[%d]: info: to stderr 1\nreshim[%d]: info: to stderr 2\n"
             "reshim[%d]: info: to stderr 3\n",
             (int)getpid(), (int)getpid(), (int)getpid());
    assert_string_equal(buf, want);
    assert_int_equal(access(longp, F_OK), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_format_conversions),
        cmocka_unit_test(test_format_unknown_conversions),
        cmocka_unit_test(test_format_truncation),
        cmocka_unit_test(test_site_admit_burst),
        cmocka_unit_test(test_site_admit_quiet_windows),
        cmocka_unit_test_setup_teardown(test_log_line_to_file, make_log_file, remove_log_file),
        cmocka_unit_test_setup_teardown(test_log_macros_respect_level, make_log_file,
                                        remove_log_file),
        cmocka_unit_test_setup_teardown(test_log_rate_limited, make_log_file, remove_log_file),
        cmocka_unit_test_setup_teardown(test_log_long_line_truncated, make_log_file,
                                        remove_log_file),
        cmocka_unit_test(test_log_stderr_fallback),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
