/* real.h: the next definitions of every symbol reshim interposes, found with
 * dlsym(RTLD_NEXT) (never __libc_*: the next object may be jemalloc or another
 * preload). One list, REAL_SYMBOLS, drives declaration and resolution. */
#ifndef RESHIM_REAL_H
#define RESHIM_REAL_H

#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>

/* sendmmsg/recvmmsg take their flags as int in glibc, unsigned int in musl. */
#ifdef __GLIBC__
typedef int reshim_mmsg_flags;
#else
typedef unsigned int reshim_mmsg_flags;
#endif

#define REAL_SYMBOLS(X)                                                                   \
    X(socket, int, (int, int, int))                                                       \
    X(socketpair, int, (int, int, int, int *))                                            \
    X(connect, int, (int, const struct sockaddr *, socklen_t))                            \
    X(accept, int, (int, struct sockaddr *, socklen_t *))                                 \
    X(accept4, int, (int, struct sockaddr *, socklen_t *, int))                           \
    X(close, int, (int))                                                                  \
    X(close_range, int, (unsigned int, unsigned int, int))                                \
    X(dup, int, (int))                                                                    \
    X(dup2, int, (int, int))                                                              \
    X(dup3, int, (int, int, int))                                                         \
    X(fcntl, int, (int, int, ...))                                                        \
    X(fcntl64, int, (int, int, ...))                                                      \
    X(getsockopt, int, (int, int, int, void *, socklen_t *))                              \
    X(send, ssize_t, (int, const void *, size_t, int))                                    \
    X(recv, ssize_t, (int, void *, size_t, int))                                          \
    X(sendto, ssize_t, (int, const void *, size_t, int, const struct sockaddr *, socklen_t)) \
    X(recvfrom, ssize_t, (int, void *, size_t, int, struct sockaddr *, socklen_t *))      \
    X(sendmsg, ssize_t, (int, const struct msghdr *, int))                                \
    X(recvmsg, ssize_t, (int, struct msghdr *, int))                                      \
    X(sendmmsg, int, (int, struct mmsghdr *, unsigned int, reshim_mmsg_flags))                    \
    X(recvmmsg, int, (int, struct mmsghdr *, unsigned int, reshim_mmsg_flags, struct timespec *))\
    X(read, ssize_t, (int, void *, size_t))                                               \
    X(write, ssize_t, (int, const void *, size_t))                                        \
    X(readv, ssize_t, (int, const struct iovec *, int))                                   \
    X(writev, ssize_t, (int, const struct iovec *, int))                                  \
    X(__recv_chk, ssize_t, (int, void *, size_t, size_t, int))                            \
    X(sendfile, ssize_t, (int, int, void *, size_t))                                      \
    X(sendfile64, ssize_t, (int, int, void *, size_t))                                    \
    X(splice, ssize_t, (int, void *, int, void *, size_t, unsigned int))                  \
    X(shutdown, int, (int, int))                                                          \
    X(__recvfrom_chk, ssize_t,                                                            \
      (int, void *, size_t, size_t, int, struct sockaddr *, socklen_t *))                 \
    X(__read_chk, ssize_t, (int, void *, size_t, size_t))                                 \
    X(getaddrinfo, int,                                                                   \
      (const char *, const char *, const struct addrinfo *, struct addrinfo **))          \
    X(poll, int, (struct pollfd *, nfds_t, int))                                          \
    X(ppoll, int, (struct pollfd *, nfds_t, const struct timespec *, const sigset_t *))  \
    X(__poll_chk, int, (struct pollfd *, nfds_t, int, size_t))                            \
    X(__ppoll_chk, int,                                                                   \
      (struct pollfd *, nfds_t, const struct timespec *, const sigset_t *, size_t))       \
    X(select, int, (int, fd_set *, fd_set *, fd_set *, struct timeval *))                 \
    X(pselect, int,                                                                       \
      (int, fd_set *, fd_set *, fd_set *, const struct timespec *, const sigset_t *))     \
    X(epoll_ctl, int, (int, int, int, struct epoll_event *))                              \
    X(epoll_wait, int, (int, struct epoll_event *, int, int))                             \
    X(epoll_pwait, int, (int, struct epoll_event *, int, int, const sigset_t *))          \
    X(epoll_pwait2, int,                                                                  \
      (int, struct epoll_event *, int, const struct timespec *, const sigset_t *))

#define REAL_DECL(name, ret, args) extern ret(*real_##name) args __attribute__((visibility("hidden")));
REAL_SYMBOLS(REAL_DECL)
#undef REAL_DECL

/* Resolves every symbol once; safe to call from any wrapper, any thread. */
void reshim_bind_symbols(void) __attribute__((visibility("hidden")));

/* real_X, bound on first use; NULL only when libc lacks the symbol. */
#define REAL(name) \
    (__builtin_expect(!!real_##name, 1) ? real_##name : (reshim_bind_symbols(), real_##name))

#endif
