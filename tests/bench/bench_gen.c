/* bench_gen.c: makes the inputs of the memory benchmarks, deterministically
 * (a fixed-seed xorshift: the same bytes on every machine and every run).
 *
 *   bench_gen words BYTES     random lowercase words, one a line, about BYTES
 *                             in all (the input of the `sort` benchmark)
 *   bench_gen csrc FUNCS      a C translation unit of FUNCS generated
 *                             functions (loops, switches, structs, calls to
 *                             earlier functions, string and math calls) after
 *                             a list of system headers: preprocessed once with
 *                             gcc -E, the input of the cc1 benchmark
 *
 * Writes to stdout; exits 1 if the write fails. */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t rng = 0x2545f4914f6cdd1dull;

static uint64_t next(void)
{
    uint64_t x = rng;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return rng = x;
}

static unsigned below(unsigned n)
{
    return (unsigned)(next() % n);
}

static int words(long long bytes)
{
    static char buf[1 << 16];
    size_t used = 0;
    long long total = 0;
    while (total < bytes) {
        /* lengths 1-16, most 4-10, like words of a text */
        unsigned len = 1 + below(6) + below(6) + below(5);
        for (unsigned i = 0; i < len; i++)
            buf[used++] = (char)('a' + below(26));
        buf[used++] = '\n';
        total += len + 1;
        if (used > sizeof buf - 32) {
            if (fwrite(buf, 1, used, stdout) != used)
                return 1;
            used = 0;
        }
    }
    if (fwrite(buf, 1, used, stdout) != used)
        return 1;
    return fflush(stdout) != 0;
}

static const char *const headers[] = {
    "assert.h", "ctype.h", "errno.h", "fenv.h", "float.h", "inttypes.h", "limits.h",
    "locale.h", "math.h", "setjmp.h", "signal.h", "stdarg.h", "stdatomic.h", "stdbool.h",
    "stddef.h", "stdint.h", "stdio.h", "stdlib.h", "string.h", "tgmath.h", "time.h",
    "uchar.h", "wchar.h", "wctype.h", "complex.h", "pthread.h", "unistd.h", "fcntl.h",
    "dirent.h", "dlfcn.h", "glob.h", "grp.h", "iconv.h", "langinfo.h", "libgen.h",
    "netdb.h", "poll.h", "pwd.h", "regex.h", "sched.h", "search.h", "semaphore.h",
    "spawn.h", "strings.h", "syslog.h", "termios.h", "wordexp.h", "arpa/inet.h",
    "net/if.h", "netinet/in.h", "netinet/tcp.h", "sys/epoll.h", "sys/eventfd.h",
    "sys/file.h", "sys/ioctl.h", "sys/mman.h", "sys/resource.h", "sys/select.h",
    "sys/socket.h", "sys/stat.h", "sys/statvfs.h", "sys/time.h", "sys/times.h",
    "sys/types.h", "sys/uio.h", "sys/un.h", "sys/utsname.h", "sys/wait.h", "malloc.h",
    "getopt.h", "error.h", "err.h", "ifaddrs.h", "sys/prctl.h", "sys/signalfd.h",
    "sys/timerfd.h", "sys/inotify.h", "sys/sysinfo.h", "mntent.h", "utmp.h",
};

/* One function; `n` is its number, it may call any earlier one. */
static void function(unsigned n)
{
    unsigned k1 = below(1000) + 1, k2 = below(97) + 3, k3 = below(50000) + 100;
    unsigned cases = 3 + below(6);
    printf("struct rec%u { int a; long b; double c; char name[%u]; struct rec%u *next; };\n", n,
           8 + below(24), n);
    printf("static int helper%u(int x, int y)\n{\n", n);
    printf("    int r = x * %u + (y >> %u);\n", k2, 1 + below(5));
    printf("    if (r %% %u == 0) r ^= y * %u; else r += x - %u;\n", 2 + below(9), k2, k1);
    printf("    return r;\n}\n");
    printf("int func%u(struct item *it, int n, const char *s, struct rec%u *list)\n{\n", n, n);
    printf("    int acc = %u, i;\n    double d = 0.%u;\n    char buf[64];\n", k1, k2);
    printf("    struct rec%u tmp = { .a = n, .b = %uL, .c = 1.5 };\n", n, k3);
    printf("    for (i = 0; i < n; i++) {\n");
    printf("        switch ((it[i].kind + i) %% %u) {\n", cases);
    for (unsigned c = 0; c < cases; c++) {
        printf("        case %u:\n", c);
        switch (below(7)) {
        case 0:
            printf("            acc += it[i].v * %u;\n", below(1000));
            break;
        case 1:
            printf("            acc ^= helper%u(it[i].v, acc);\n", n);
            break;
        case 2:
            if (n > 0)
                printf("            acc += func%u(it + i, n - i > 4 ? 4 : n - i, s, 0);\n",
                       below(n));
            else
                printf("            acc -= it[i].v;\n");
            break;
        case 3:
            printf("            d += sqrt((double)(it[i].v & 0xffff)) * %u.%u;\n", below(10),
                   below(100));
            break;
        case 4:
            printf("            acc += (int)strlen(s + (i %% 3)) + s[i %% 5];\n");
            break;
        case 5:
            printf("            for (struct rec%u *p = list; p; p = p->next) { acc += p->a; "
                   "tmp.b ^= p->b; }\n",
                   n);
            break;
        default:
            printf("            it[i].v = (it[i].v << %u) | (acc & %u);\n", 1 + below(7),
                   below(255));
            break;
        }
        printf("            break;\n");
    }
    printf("        default:\n            acc--;\n        }\n");
    printf("        if (acc > %u) acc = (acc >> %u) + s[i & 7];\n", k3, 1 + below(4));
    printf("    }\n");
    printf("    for (i = 0; i < %u; i++) d += (double)((acc >> (i & 7)) & 0xff) * %u.25;\n",
           4 + below(28), below(10));
    if (below(3) == 0)
        printf("    snprintf(buf, sizeof buf, \"%%d:%%ld:%%g\", acc, tmp.b, d);\n"
               "    acc += (int)strlen(buf);\n");
    else
        printf("    memset(buf, acc & 0x7f, sizeof buf);\n    acc += buf[%u] + (int)tmp.c;\n",
               below(64));
    printf("    return acc + (int)d + (int)tmp.b;\n}\n\n");
}

static int csrc(unsigned funcs)
{
    for (size_t i = 0; i < sizeof headers / sizeof headers[0]; i++)
        printf("#include <%s>\n", headers[i]);
    printf("\nstruct item { int kind; int v; };\n\n");
    for (unsigned n = 0; n < funcs; n++)
        function(n);
    printf("int bench_main(struct item *it, int n, const char *s)\n{\n    int acc = 0;\n");
    for (unsigned n = 0; n < funcs; n += 1 + below(8))
        printf("    acc += func%u(it, n, s, 0);\n", n);
    printf("    return acc;\n}\n");
    return fflush(stdout) != 0 || ferror(stdout);
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "words") == 0 && atoll(argv[2]) > 0)
        return words(atoll(argv[2]));
    if (argc == 3 && strcmp(argv[1], "csrc") == 0 && atoi(argv[2]) > 0)
        return csrc((unsigned)atoi(argv[2]));
    fprintf(stderr, "usage: bench_gen words BYTES | bench_gen csrc FUNCS\n");
    return 2;
}
