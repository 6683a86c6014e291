/* fork_early: forks before it makes any call the shim interposes, so that
 * the preloaded library has not initialised when the child is made (for
 * test_fork.sh: build/bin/fork_early).
 *
 *   fork_early PORT
 *   fork_early race
 *
 * The child connects to 127.0.0.1:PORT, sends "early", reads the echo and
 * leaves with exit(0) (so that the library's exit code runs); the parent
 * waits for it and prints "child PID ok" when it got its echo back. Exit 0
 * then, else 1.
 *
 * race: a thread makes the process's first interposed call (a socket)
 * while the main thread forks, so that the library may be initialising in
 * that thread at the fork; the child makes its own first call (alarm(5):
 * a child that waits for ever dies of SIGALRM). Exit 0 when the child
 * exited 0, else 1. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

static atomic_int go;

static void *first_call(void *arg)
{
    (void)arg;
    while (!atomic_load(&go))
        ;
    close(socket(AF_INET, SOCK_STREAM, 0));
    return NULL;
}

static int race(void)
{
    pthread_t t;
    if (pthread_create(&t, NULL, first_call, NULL) != 0)
        return 1;
    atomic_store(&go, 1);
    for (volatile int i = (int)(getpid() % 2000); i > 0; i--) /* a varying moment */
        ;
    pid_t pid = fork();
    if (pid == 0) {
        alarm(5);
        close(socket(AF_INET, SOCK_STREAM, 0));
        _exit(0);
    }
    int st = 0;
    if (pid < 0 || waitpid(pid, &st, 0) != pid)
        return 1;
    pthread_join(t, NULL);
    return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
    if (argc != 2)
        return 2;
    if (strcmp(argv[1], "race") == 0)
        return race();
    int port = atoi(argv[1]);
    pid_t pid = fork();
    if (pid < 0)
        return 1;
    if (pid == 0) {
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((unsigned short)port)};
        inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
        int s = socket(AF_INET, SOCK_STREAM, 0);
        char buf[16] = {0};
        if (s < 0 || connect(s, (struct sockaddr *)&a, sizeof a) != 0 ||
            send(s, "early", 5, 0) != 5 || recv(s, buf, 5, MSG_WAITALL) != 5 ||
            strcmp(buf, "early") != 0)
            exit(1);
        close(s);
        exit(0);
    }
    int st = 0;
    if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
        return 1;
    printf("child %d ok\n", (int)pid);
    return 0;
}
