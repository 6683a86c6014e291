/* libc_probe: small scenarios that test_musl.sh runs built with musl-gcc
 * (and built with cc, for the same outcomes under glibc), with and without
 * the shim. No output through stdio: the mem scenario's counts must hold
 * only the program's own allocations.
 *
 *   libc_probe nb PORT MS      non-blocking connect to 127.0.0.1:PORT, poll
 *                              for POLLOUT (up to MS), SO_ERROR; on success a
 *                              GET and the reply's first line. Prints
 *                              "nb: connected HTTP/1.0 200 OK" or "nb: ENAME";
 *                              exit 0 when connected and answered, else 1
 *   libc_probe mem N SIZE      polls nothing (a wait: the shim's stats
 *                              thread starts), mallocs and frees 2 MiB once,
 *                              prints "ready1", reads a line from stdin,
 *                              then N malloc(SIZE), frees the first N/4,
 *                              prints "ready2 usable=U" (malloc_usable_size
 *                              of one block), reads a line, frees the rest,
 *                              exit 0
 *   libc_probe enforce MB      malloc(MB MiB): prints "enforce: ENOMEM" (NULL
 *                              with errno ENOMEM, exit 0) or "enforce:
 *                              allocated" (exit 1) or another errno (exit 2)
 *   libc_probe gai NAME N FLAG getaddrinfo(NAME) (AF_INET, SOCK_STREAM), then
 *                              creates the file FLAG and looks NAME up N more
 *                              times; each answer is freed with freeaddrinfo.
 *                              Prints "gai I ok ADDR" or "gai I fail MESSAGE"
 *                              per lookup; exit 0 when all were answered
 *   libc_probe fork PORT MS    forks; the child runs `nb PORT MS`; the parent
 *                              prints "fork: child exit C" and exits C */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static void say(const char *s)
{
    size_t n = strlen(s);
    while (n) {
        ssize_t w = write(1, s, n);
        if (w <= 0)
            return;
        s += w;
        n -= (size_t)w;
    }
}

static const char *ename(int e)
{
    switch (e) {
    case ECONNREFUSED: return "ECONNREFUSED";
    case ETIMEDOUT: return "ETIMEDOUT";
    case ECONNRESET: return "ECONNRESET";
    case EINPROGRESS: return "EINPROGRESS";
    case ENOMEM: return "ENOMEM";
    default: return "EOTHER";
    }
}

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int nb(int port, int ms)
{
    char line[160];
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((unsigned short)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int err = 0;
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        err = errno;
        if (err == EINPROGRESS) {
            long long end = now_ms() + ms;
            struct pollfd p = {.fd = fd, .events = POLLOUT};
            int r;
            do
                r = poll(&p, 1, (int)(end - now_ms() > 0 ? end - now_ms() : 0));
            while (r < 0 && errno == EINTR);
            socklen_t len = sizeof err;
            if (r == 0)
                err = ETIMEDOUT;
            else if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
                err = errno;
        }
    }
    if (err) {
        snprintf(line, sizeof line, "nb: %s\n", ename(err));
        say(line);
        return 1;
    }
    static const char req[] = "GET / HTTP/1.0\r\n\r\n";
    if (send(fd, req, sizeof req - 1, MSG_NOSIGNAL) != (ssize_t)(sizeof req - 1)) {
        say("nb: send failed\n");
        return 1;
    }
    char buf[512];
    size_t got = 0;
    struct pollfd p = {.fd = fd, .events = POLLIN};
    while (got < sizeof buf - 1 && !memchr(buf, '\r', got) && poll(&p, 1, ms) > 0) {
        ssize_t r = recv(fd, buf + got, sizeof buf - 1 - got, 0);
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    buf[got] = 0;
    buf[strcspn(buf, "\r\n")] = 0;
    close(fd);
    snprintf(line, sizeof line, "nb: connected %.100s\n", buf);
    say(line);
    return strstr(buf, " 200 ") ? 0 : 1;
}

static void wait_line(void)
{
    char c;
    while (read(0, &c, 1) == 1 && c != '\n')
        ;
}

#define MEM_MAX 4096
static void *blocks[MEM_MAX]; /* static: the only allocations are the blocks */

static int mem(int n, size_t size)
{
    if (n < 4 || n > MEM_MAX)
        return 3;
    poll(NULL, 0, 0); /* a wait: under the shim its stats thread starts */
    /* A first large block: the shim's one-time setup at the first heap
     * growth step (the monitor, the unwinder's dlopen under glibc) happens
     * before the counts are compared. */
    free(malloc(2u << 20));
    say("ready1\n");
    wait_line();
    for (int i = 0; i < n; i++)
        if (!(blocks[i] = malloc(size)))
            return 1;
    for (int i = 0; i < n / 4; i++)
        free(blocks[i]);
    char line[64];
    snprintf(line, sizeof line, "ready2 usable=%zu\n", malloc_usable_size(blocks[n - 1]));
    say(line);
    wait_line();
    for (int i = n / 4; i < n; i++)
        free(blocks[i]);
    return 0;
}

static int gai(const char *name, int n, const char *flag)
{
    int bad = 0;
    for (int i = 0; i <= n; i++) {
        if (i == 1)
            close(open(flag, O_WRONLY | O_CREAT | O_CLOEXEC, 0644));
        struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM};
        struct addrinfo *res = NULL;
        int r = getaddrinfo(name, "80", &hints, &res);
        char line[200], addr[64] = "?";
        if (r == 0) {
            inet_ntop(AF_INET, &((struct sockaddr_in *)res->ai_addr)->sin_addr, addr, sizeof addr);
            snprintf(line, sizeof line, "gai %d ok %s\n", i, addr);
            freeaddrinfo(res);
        } else {
            snprintf(line, sizeof line, "gai %d fail %s\n", i, gai_strerror(r));
            bad++;
        }
        say(line);
    }
    return bad ? 1 : 0;
}

int main(int argc, char **argv)
{
    if (argc >= 5 && !strcmp(argv[1], "gai"))
        return gai(argv[2], atoi(argv[3]), argv[4]);
    if (argc >= 4 && !strcmp(argv[1], "nb"))
        return nb(atoi(argv[2]), atoi(argv[3]));
    if (argc >= 4 && !strcmp(argv[1], "mem"))
        return mem(atoi(argv[2]), (size_t)atol(argv[3]));
    if (argc >= 3 && !strcmp(argv[1], "enforce")) {
        errno = 0;
        void *p = malloc((size_t)atol(argv[2]) << 20);
        int e = errno;
        if (p) {
            say("enforce: allocated\n");
            free(p);
            return 1;
        }
        char line[64];
        snprintf(line, sizeof line, "enforce: %s\n", ename(e));
        say(line);
        return e == ENOMEM ? 0 : 2;
    }
    if (argc >= 4 && !strcmp(argv[1], "fork")) {
        pid_t pid = fork();
        if (pid == 0)
            _exit(nb(atoi(argv[2]), atoi(argv[3])));
        int st = 0;
        if (pid < 0 || waitpid(pid, &st, 0) != pid)
            return 3;
        int c = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        char line[64];
        snprintf(line, sizeof line, "fork: child exit %d\n", c);
        say(line);
        return c;
    }
    say("usage: libc_probe nb PORT MS | mem N SIZE | enforce MB | fork PORT MS\n");
    return 3;
}
