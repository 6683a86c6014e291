/* sys.c: the shim's own system calls and /proc reads (see sys.h). Every
 * call is syscall(2) itself: never an interposed libc name, never a real_*
 * pointer (those need dlsym, which may allocate), never a lock. Works on
 * x86_64 and aarch64 (no SYS_open or SYS_poll there: openat and ppoll). */
#define _GNU_SOURCE
#include "sys.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

void *sys_map(size_t n)
{
    n = sys_page_round(n);
    long p = syscall(SYS_mmap, NULL, n, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    return (p == -1 || (void *)p == MAP_FAILED) ? NULL : (void *)p;
}

void sys_unmap(void *p, size_t n)
{
    if (p && n)
        syscall(SYS_munmap, p, sys_page_round(n));
}

int sys_openat(int dfd, const char *path, int flags, unsigned mode)
{
    return (int)syscall(SYS_openat, dfd, path, flags, mode);
}

int sys_open(const char *path, int flags)
{
    return sys_openat(AT_FDCWD, path, flags | O_CLOEXEC, 0);
}

#if defined(__SANITIZE_THREAD__)
/* The TSan build of tests/stress: TSan keeps a table of descriptors from the
 * calls it intercepts and cannot see a close made with syscall(2). A number
 * opened through libc (pipe2 in server.c) and closed here would stay in its
 * table, and the app's next pipe or socket with that number would be
 * reported as racing with the shim. Its syscall hook tells it. */
void __sanitizer_syscall_pre_impl_close(long fd);
#endif

int sys_close(int fd)
{
#if defined(__SANITIZE_THREAD__)
    __sanitizer_syscall_pre_impl_close(fd);
#endif
    return (int)syscall(SYS_close, fd);
}

ssize_t sys_read(int fd, void *buf, size_t n)
{
    return syscall(SYS_read, fd, buf, n);
}

ssize_t sys_pread(int fd, void *buf, size_t n, off_t off)
{
    return syscall(SYS_pread64, fd, buf, n, off);
}

ssize_t sys_write(int fd, const void *buf, size_t n)
{
    return syscall(SYS_write, fd, buf, n);
}

int sys_fcntl(int fd, int cmd, long arg)
{
    return (int)syscall(SYS_fcntl, fd, cmd, arg);
}

int sys_poll(struct pollfd *fds, nfds_t n, int timeout_ms)
{
    struct timespec ts, *t = NULL;
    if (timeout_ms >= 0) {
        ts.tv_sec = timeout_ms / 1000;
        ts.tv_nsec = (long)(timeout_ms % 1000) * 1000000L;
        t = &ts;
    }
    return (int)syscall(SYS_ppoll, fds, n, t, NULL, (size_t)(_NSIG / 8));
}

/* musl-gcc has no kernel headers: the two futex operations, from the
 * kernel's uapi (stable ABI). */
#define SYS_FUTEX_WAIT_PRIVATE (0 | 128)
#define SYS_FUTEX_WAKE_PRIVATE (1 | 128)

void sys_futex_wait(atomic_int *word, int val, uint64_t timeout_ns)
{
    struct timespec ts = sys_timespec(timeout_ns);
    syscall(SYS_futex, word, SYS_FUTEX_WAIT_PRIVATE, val, timeout_ns == SYS_FOREVER ? NULL : &ts,
            NULL, 0);
}

void sys_futex_wake(atomic_int *word, int n)
{
    syscall(SYS_futex, word, SYS_FUTEX_WAKE_PRIVATE, n, NULL, NULL, 0);
}

int sys_socket(int domain, int type, int proto)
{
    return (int)syscall(SYS_socket, domain, type, proto);
}

int sys_accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags)
{
    return (int)syscall(SYS_accept4, fd, addr, len, flags);
}

ssize_t sys_sendto(int fd, const void *buf, size_t n, int flags, const struct sockaddr *to,
                   socklen_t tolen)
{
    return syscall(SYS_sendto, fd, buf, n, flags, to, tolen);
}

ssize_t sys_send(int fd, const void *buf, size_t n, int flags)
{
    return sys_sendto(fd, buf, n, flags, NULL, 0);
}

ssize_t sys_recv(int fd, void *buf, size_t n, int flags)
{
    return syscall(SYS_recvfrom, fd, buf, n, flags, NULL, NULL);
}

int sys_getsockopt(int fd, int level, int opt, void *val, socklen_t *len)
{
    return (int)syscall(SYS_getsockopt, fd, level, opt, val, len);
}

int sys_shutdown(int fd, int how)
{
    return (int)syscall(SYS_shutdown, fd, how);
}

ssize_t sys_read_file(const char *path, char *buf, size_t n)
{
    buf[0] = 0;
    int fd = sys_open(path, O_RDONLY);
    if (fd < 0)
        return -1;
    size_t got = 0;
    while (got < n - 1) {
        ssize_t r = sys_read(fd, buf + got, n - 1 - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    int saved = errno;
    sys_close(fd);
    errno = saved;
    buf[got] = 0;
    return (ssize_t)got;
}

bool sys_fd_id(int fd, uint64_t *dev, uint64_t *ino)
{
    struct stat st;
    if (fd < 0 || syscall(SYS_fstat, fd, &st) != 0)
        return false;
    *dev = (uint64_t)st.st_dev;
    *ino = (uint64_t)st.st_ino;
    return true;
}

bool sys_fd_is(int fd, uint64_t dev, uint64_t ino)
{
    uint64_t d, i;
    return sys_fd_id(fd, &d, &i) && d == dev && i == ino;
}

bool sys_own_take(struct sys_owned *o, int fd)
{
    if (!sys_fd_id(fd, &o->dev, &o->ino)) {
        o->fd = -1;
        return false;
    }
    o->fd = fd;
    return true;
}

void sys_own_close(struct sys_owned *o)
{
    if (sys_own_ok(o))
        sys_close(o->fd);
    o->fd = -1;
}
