/* st_signal: signals that arrive while the shim retries a connect, and
 * inside wrapped recv, send and poll.
 *
 *   st_signal MODE            prints "MODE result=WHAT sent=N handled=N"
 *
 * A sender thread sends SIGUSR1 to the main thread every 3 ms for as long as
 * the main thread is in the call under test, one at a time: it waits for the
 * handler to have run before it sends the next, so none is merged with a
 * pending one and "handled" must equal "sent". The handler is
 * async-signal-safe: it counts and write()s one byte to /dev/null. It is
 * installed with SA_RESTART in the *-restart modes, without in the
 * *-intr modes.
 *
 *   connect-restart, connect-intr: a blocking connect to a refused port
 *     (bound, never listening). Without the shim: ECONNREFUSED at once.
 *   late-restart, late-intr: a blocking connect to a port whose listener
 *     starts 150 ms later (a thread of this process). Without the shim:
 *     ECONNREFUSED; with it the retry should reach the listener.
 *   recv-restart, recv-intr: recv on a socketpair whose peer writes 1 byte
 *     after 300 ms. Kernel: restarted with SA_RESTART (result=1), else EINTR.
 *   send-restart: a blocking send of 8 MiB to a peer that reads slowly: a
 *     signal after the first bytes ends it with a partial count, never
 *     EINTR (result=sent: a count > 0, all or part).
 *   poll-restart: poll on a socket with no data, 300 ms timeout: poll is never
 *     restarted, EINTR even with SA_RESTART.
 *   nbconnect-restart: a non-blocking connect to the late listener, then
 *     poll(POLLOUT) again after every EINTR and SO_ERROR at the end.
 *   backlog-rt-restart: a blocking connect to a refused port that, 50 ms
 *     later, listens with a full accept queue (backlog 0, one connection
 *     queued by a helper thread) and accepts after 1 s: the shim's retry
 *     attempt waits in its poll (the SYN is dropped until then). Signals
 *     start only after 300 ms, inside that attempt. A handler without
 *     SA_RESTART for SIGRTMIN+2 (never sent) is installed too, so the shim
 *     hands the interruption to the app: EINTR (or OK, should the attempt
 *     end first); never the EINVAL of sigaction() refusing glibc's own
 *     signals 32 and 33 (a review found the attempt returning that). Kernel:
 *     ECONNREFUSED at once.
 * result is OK, an errno name, or a byte count. Exit 0 when the call
 * returned at all and handled == sent; the caller compares the results. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>

#include "stress_util.h"

static volatile sig_atomic_t handled;
static atomic_int sent, stop_sending;
static int devnull = -1;
static pthread_t main_thread;

static void on_usr1(int sig)
{
    int e = errno;
    handled = handled + 1;
    (void)!write(devnull, "s", 1);
    errno = e;
}

static int send_after_us;
static void *sender(void *arg)
{
    if (send_after_us)
        usleep((useconds_t)send_after_us);
    while (!atomic_load(&stop_sending)) {
        int before = handled;
        pthread_kill(main_thread, SIGUSR1);
        atomic_fetch_add(&sent, 1);
        for (int i = 0; i < 2000 && handled == before; i++) /* up to 2 s */
            usleep(1000);
        usleep(3000);
    }
    return NULL;
}

static int late_port;
static int late_fd = -1;
static void *late_listener(void *arg)
{
    usleep(150000);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((unsigned short)late_port);
    a.sin_addr.s_addr = htonl(0x7f000001);
    int one = 1;
    setsockopt(late_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (listen(late_fd, 16) != 0)
        perror("st_signal: listen");
    return NULL;
}

static int backlog_fd = -1;
static void *late_accept(void *arg)
{
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((unsigned short)late_port);
    a.sin_addr.s_addr = htonl(0x7f000001);
    usleep(50000);
    int q = socket(AF_INET, SOCK_STREAM, 0);
    if (listen(backlog_fd, 0) != 0 || q < 0 || connect(q, (struct sockaddr *)&a, sizeof a) != 0)
        perror("st_signal: a listener with a full queue");
    usleep(1000000);
    int c = accept(backlog_fd, NULL, NULL); /* frees the queue */
    if (c >= 0)
        close(c);
    return NULL;
}

static void on_rt(int sig) { (void)sig; }

static void *late_writer(void *arg)
{
    usleep(300000);
    (void)!write(*(int *)arg, "x", 1);
    return NULL;
}

static void *slow_reader(void *arg)
{
    int fd = *(int *)arg;
    static char buf[65536];
    long total = 0;
    while (total < (8l << 20)) {
        usleep(2000);
        ssize_t n = read(fd, buf, sizeof buf);
        if (n <= 0)
            break;
        total += n;
    }
    return NULL;
}

static const char *ename(int e)
{
    switch (e) {
    case EINTR: return "EINTR";
    case ECONNREFUSED: return "ECONNREFUSED";
    case EINPROGRESS: return "EINPROGRESS";
    case EALREADY: return "EALREADY";
    case ETIMEDOUT: return "ETIMEDOUT";
    default: return strerror(e);
    }
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: st_signal MODE\n");
        return 2;
    }
    const char *mode = argv[1];
    int restart = strstr(mode, "-restart") != NULL;
    devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
    main_thread = pthread_self();
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_usr1;
    sa.sa_flags = restart ? SA_RESTART : 0;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGUSR1, &sa, NULL);

    /* Set-up before the signals start. */
    int dead_port = 0, hold = refused_port(&dead_port);
    struct sockaddr_in late = {0};
    int pair[2] = {-1, -1};
    pthread_t helper;
    int have_helper = 0;
    if (strncmp(mode, "late", 4) == 0 || strncmp(mode, "nbconnect", 9) == 0) {
        late_fd = refused_port(&late_port); /* bound now, listening later */
        late.sin_family = AF_INET;
        late.sin_port = htons((unsigned short)late_port);
        late.sin_addr.s_addr = htonl(0x7f000001);
        have_helper = !pthread_create(&helper, NULL, late_listener, NULL);
    } else if (strncmp(mode, "backlog", 7) == 0) {
        struct sigaction rt;
        memset(&rt, 0, sizeof rt);
        rt.sa_handler = on_rt; /* no SA_RESTART */
        sigemptyset(&rt.sa_mask);
        sigaction(SIGRTMIN + 2, &rt, NULL);
        backlog_fd = refused_port(&late_port); /* bound, listening later */
        send_after_us = 300000;
        have_helper = !pthread_create(&helper, NULL, late_accept, NULL);
    } else if (strncmp(mode, "recv", 4) == 0) {
        socketpair(AF_UNIX, SOCK_STREAM, 0, pair);
        have_helper = !pthread_create(&helper, NULL, late_writer, &pair[1]);
    } else if (strncmp(mode, "send", 4) == 0) {
        socketpair(AF_UNIX, SOCK_STREAM, 0, pair);
        have_helper = !pthread_create(&helper, NULL, slow_reader, &pair[1]);
    }
    if (hold < 0) {
        perror("st_signal: set-up");
        return 1;
    }
    pthread_t snd;
    if (pthread_create(&snd, NULL, sender, NULL))
        return 1;

    char result[64] = "?";
    int r, e;
    if (strncmp(mode, "connect", 7) == 0 || strncmp(mode, "late", 4) == 0 ||
        strncmp(mode, "backlog", 7) == 0) {
        int port = strncmp(mode, "connect", 7) != 0 ? late_port : dead_port;
        int fd = tcp_connect(port);
        e = errno;
        snprintf(result, sizeof result, "%s", fd >= 0 ? "OK" : ename(e));
    } else if (strncmp(mode, "recv", 4) == 0) {
        char b;
        ssize_t n = recv(pair[0], &b, 1, 0);
        e = errno;
        if (n < 0)
            snprintf(result, sizeof result, "%s", ename(e));
        else
            snprintf(result, sizeof result, "%zd", n);
    } else if (strncmp(mode, "send", 4) == 0) {
        static char big[8 << 20];
        ssize_t n = send(pair[0], big, sizeof big, 0);
        e = errno;
        shutdown(pair[0], SHUT_WR); /* the reader's EOF after a partial send */
        if (n < 0)
            snprintf(result, sizeof result, "%s", ename(e));
        else /* all, or part when a signal came after some bytes */
            snprintf(result, sizeof result, "%s", n > 0 ? "sent" : "0");
    } else if (strncmp(mode, "poll", 4) == 0) {
        int s = socket(AF_INET, SOCK_DGRAM, 0);
        struct pollfd p = {.fd = s, .events = POLLIN};
        r = poll(&p, 1, 300);
        e = errno;
        snprintf(result, sizeof result, "%s", r < 0 ? ename(e) : (r == 0 ? "timeout" : "ready"));
    } else if (strncmp(mode, "nbconnect", 9) == 0) {
        int s = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
        r = connect(s, (struct sockaddr *)&late, sizeof late);
        e = errno;
        int eintr = 0;
        if (r < 0 && e == EINPROGRESS) {
            double end = now_s() + 30;
            for (;;) {
                struct pollfd p = {.fd = s, .events = POLLOUT};
                r = poll(&p, 1, 1000);
                if (r < 0 && errno == EINTR) {
                    eintr++;
                    if (now_s() < end)
                        continue;
                }
                if (r != 0 || now_s() > end)
                    break;
            }
            int soerr = 0;
            socklen_t sl = sizeof soerr;
            getsockopt(s, SOL_SOCKET, SO_ERROR, &soerr, &sl);
            snprintf(result, sizeof result, "%s", soerr ? ename(soerr) : "OK");
        } else {
            snprintf(result, sizeof result, "%s", r == 0 ? "OK" : ename(e));
        }
    } else {
        fprintf(stderr, "st_signal: unknown mode %s\n", mode);
        return 2;
    }
    atomic_store(&stop_sending, 1);
    pthread_join(snd, NULL);
    if (have_helper)
        pthread_join(helper, NULL);
    int s = atomic_load(&sent), h = handled;
    printf("%s result=%s sent=%d handled=%d\n", mode, result, s, h);
    if (s != h) {
        fprintf(stderr, "st_signal: %d signals sent, the handler ran %d times\n", s, h);
        return 1;
    }
    return 0;
}
