/* sys.h: the shim's own system calls and /proc reads, in one place. Every
 * function here is a raw system call (syscall(2)): it never passes through
 * the shim's own interposers (so what the shim maps is never counted as the
 * app's memory, its own descriptors never enter the fd table, its reads are
 * never retried), works before any symbol is bound, in a fork or vfork
 * child, in signal context and under the recursion guard alike. Errors as
 * the C library reports them: -1 (NULL for sys_map) and errno.
 *
 * Depends on nothing else of the shim, so pure modules (cgroup.c, the
 * run-directory walk) use it and are unit-tested with it. Every other file
 * of shim/ calls these, never the bare libc function of an interposed name
 * (`make check-symbols`, part of `make check`, fails when one does). */
#ifndef RESHIM_SYS_H
#define RESHIM_SYS_H

#include <poll.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#define SYS_HIDDEN __attribute__((visibility("hidden")))

/* A system call without arguments that cannot fail (getpid, gettid), by
 * the system call instruction itself where the shim knows it (x86_64,
 * aarch64), not syscall(2): the constructor's one system call (the owner
 * pid, state.c), which through syscall(2) would bind it lazily at every
 * preloaded start-up (0.7k instructions of /bin/true's); also each vfork
 * check, and cfiwalk's look at whether a thread is the main one. */
static inline long sys_call0(long nr)
{
#if defined(__x86_64__)
    long r;
    __asm__ volatile("syscall" : "=a"(r) : "0"(nr) : "rcx", "r11", "memory");
    return r;
#elif defined(__aarch64__)
    register long x8 __asm__("x8") = nr;
    register long x0 __asm__("x0");
    __asm__ volatile("svc 0" : "=r"(x0) : "r"(x8) : "memory");
    return x0;
#else
    return syscall(nr);
#endif
}

static inline pid_t sys_getpid(void)
{
    return (pid_t)sys_call0(SYS_getpid);
}

/* Memory of the shim's own: anonymous, private, read-write, MAP_NORESERVE
 * (pages cost only once touched). n is rounded up to whole pages. */
SYS_HIDDEN void *sys_map(size_t n);
static inline size_t sys_page_round(size_t n) /* what sys_map maps for n */
{
    return (n + 4095) & ~(size_t)4095;
}
SYS_HIDDEN void sys_unmap(void *p, size_t n);

/* Descriptors. sys_open adds O_CLOEXEC; mode only with O_CREAT. */
SYS_HIDDEN int sys_open(const char *path, int flags);
SYS_HIDDEN int sys_openat(int dfd, const char *path, int flags, unsigned mode);
SYS_HIDDEN int sys_close(int fd);
SYS_HIDDEN ssize_t sys_read(int fd, void *buf, size_t n);
SYS_HIDDEN ssize_t sys_pread(int fd, void *buf, size_t n, off_t off);
SYS_HIDDEN ssize_t sys_write(int fd, const void *buf, size_t n);
SYS_HIDDEN int sys_fcntl(int fd, int cmd, long arg);
SYS_HIDDEN int sys_poll(struct pollfd *fds, nfds_t n, int timeout_ms);

/* ns nanoseconds as a struct timespec (a timeout). */
static inline struct timespec sys_timespec(uint64_t ns)
{
    struct timespec ts = {(time_t)(ns / 1000000000u), (long)(ns % 1000000000u)};
    return ts;
}

/* A futex of the shim's own threads (private to the process): the wait
 * returns once *word is not val, once woken, or after timeout_ns
 * (SYS_FOREVER: no end); the wake wakes up to n waiters. A wait's caller
 * looks at what it waits for again, whatever the wait returned. */
#define SYS_FOREVER UINT64_MAX
SYS_HIDDEN void sys_futex_wait(atomic_int *word, int val, uint64_t timeout_ns);
SYS_HIDDEN void sys_futex_wake(atomic_int *word, int n);

/* Sockets. */
SYS_HIDDEN int sys_socket(int domain, int type, int proto);
SYS_HIDDEN int sys_accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags);
SYS_HIDDEN ssize_t sys_send(int fd, const void *buf, size_t n, int flags);
SYS_HIDDEN ssize_t sys_sendto(int fd, const void *buf, size_t n, int flags,
                              const struct sockaddr *to, socklen_t tolen);
SYS_HIDDEN ssize_t sys_recv(int fd, void *buf, size_t n, int flags);
SYS_HIDDEN int sys_getsockopt(int fd, int level, int opt, void *val, socklen_t *len);
SYS_HIDDEN int sys_shutdown(int fd, int how);

/* A whole small file (a /proc or cgroup file: at most n-1 bytes) read into
 * buf and NUL-terminated. Returns its length, or -1 when it cannot be
 * opened (buf is then ""). EINTR is retried. */
SYS_HIDDEN ssize_t sys_read_file(const char *path, char *buf, size_t n);

/* "Is this descriptor still ours?": a descriptor of the shim's own, with
 * the identity (device, inode) of what it was opened on. An app that closes
 * every fd may reuse the number: the shim then must never read, write or
 * close it. */
struct sys_owned {
    int fd; /* -1: none */
    uint64_t dev, ino;
};
#define SYS_OWNED_NONE {-1, 0, 0}
/* Records fd and its identity; false (o->fd -1) when fd is not open. */
SYS_HIDDEN bool sys_own_take(struct sys_owned *o, int fd);
/* The identity of fd (false when it is not open). */
SYS_HIDDEN bool sys_fd_id(int fd, uint64_t *dev, uint64_t *ino);
/* fd is open and is still the object of that identity. */
SYS_HIDDEN bool sys_fd_is(int fd, uint64_t dev, uint64_t ino);
static inline bool sys_own_ok(const struct sys_owned *o)
{
    return sys_fd_is(o->fd, o->dev, o->ino);
}
/* Closes o->fd only when it is still ours; o->fd becomes -1 either way. */
SYS_HIDDEN void sys_own_close(struct sys_owned *o);

#endif
