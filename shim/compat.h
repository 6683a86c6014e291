/* compat.h: the glibc floor. Force-included (-include) before everything
 * else in every file of the library and the CLI, so it may not include any
 * header itself (the file's own _GNU_SOURCE comes after it).
 *
 * A library linked against a new glibc records the newest version of each
 * symbol (dlsym@GLIBC_2.34, pthread_create@GLIBC_2.34, stat@GLIBC_2.33...),
 * and an older glibc refuses to load it. Here every import whose default
 * version is newer than the floor is pinned to the oldest version glibc
 * still exports (the same function: glibc keeps the old versions as aliases).
 * stat, fstat, lstat and fstatat were not functions before glibc 2.33
 * (inline wrappers around __xstat): they go to the syscalls (compat.c).
 * The floor: GLIBC_2.17 (clock_gettime, in libc since 2.17). `make
 * check-compat` (scripts/check-compat.sh) checks it with `objdump -T` and runs
 * the library and the CLI on glibc 2.31.
 *
 * Only for glibc (a musl or other libc has no symbol versions), on x86_64
 * (base version GLIBC_2.2.5) and aarch64 (GLIBC_2.17); RESHIM_NO_COMPAT
 * turns it off. */
#ifndef RESHIM_COMPAT_H
#define RESHIM_COMPAT_H

#if !defined(RESHIM_NO_COMPAT) && defined(__has_include)
#if __has_include(<gnu/libc-version.h>) && (defined(__x86_64__) || defined(__aarch64__))
#define RESHIM_COMPAT 1
#endif
#endif

#ifdef RESHIM_COMPAT
#ifdef __aarch64__
#define RESHIM_PIN(sym, x86) __asm__(".symver " #sym "," #sym "@GLIBC_2.17");
#else
#define RESHIM_PIN(sym, x86) __asm__(".symver " #sym "," #sym "@GLIBC_" #x86);
#endif
/* libdl, moved into libc in 2.34 */
RESHIM_PIN(dladdr, 2.2.5)
RESHIM_PIN(dlclose, 2.2.5)
RESHIM_PIN(dlerror, 2.2.5)
RESHIM_PIN(dlopen, 2.2.5)
RESHIM_PIN(dlsym, 2.2.5)
RESHIM_PIN(dlvsym, 2.2.5)
/* libpthread, moved into libc in 2.32-2.34 */
RESHIM_PIN(pthread_attr_getstacksize, 2.2.5)
RESHIM_PIN(pthread_attr_setguardsize, 2.2.5)
RESHIM_PIN(pthread_attr_setstacksize, 2.2.5)
RESHIM_PIN(pthread_create, 2.2.5)
RESHIM_PIN(pthread_detach, 2.2.5)
RESHIM_PIN(pthread_getattr_np, 2.2.5)
RESHIM_PIN(pthread_getspecific, 2.2.5)
RESHIM_PIN(pthread_join, 2.2.5)
RESHIM_PIN(pthread_key_create, 2.2.5)
RESHIM_PIN(pthread_key_delete, 2.2.5)
RESHIM_PIN(pthread_kill, 2.2.5)
RESHIM_PIN(pthread_mutex_trylock, 2.2.5)
RESHIM_PIN(pthread_mutexattr_destroy, 2.2.5)
RESHIM_PIN(pthread_mutexattr_init, 2.2.5)
RESHIM_PIN(pthread_mutexattr_settype, 2.2.5)
RESHIM_PIN(pthread_once, 2.2.5)
RESHIM_PIN(pthread_rwlock_rdlock, 2.2.5)
RESHIM_PIN(pthread_rwlock_unlock, 2.2.5)
RESHIM_PIN(pthread_rwlock_wrlock, 2.2.5)
RESHIM_PIN(pthread_setname_np, 2.12)
RESHIM_PIN(pthread_setspecific, 2.2.5)
RESHIM_PIN(pthread_sigmask, 2.2.5)
/* memcpy@GLIBC_2.14 is the same function as the older memmove alias: one
 * version fewer for the loader to check at start-up. */
RESHIM_PIN(memcpy, 2.2.5)
#undef RESHIM_PIN

/* The library names neither libdl.so.2 nor libpthread.so.0 as needed (on
 * glibc 2.34 and newer they are empty stubs, and loading the two was 15 %
 * of a preloaded /bin/true's start-up). The functions it uses that an older
 * libc.so.6 lacks (in libdl or libpthread there) are called through these
 * names (compat.c): glibc's own when the process has it (any glibc 2.34 or
 * newer, an older one whose program links libdl or libpthread), else the
 * library is loaded at its first use. The others (pthread_mutex_lock,
 * pthread_mutex_unlock...) are in every libc.so.6. */
#define dladdr reshim_compat_dladdr
#define dlopen reshim_compat_dlopen
#define dlsym reshim_compat_dlsym
#define pthread_attr_setstacksize reshim_compat_pthread_attr_setstacksize
#define pthread_create reshim_compat_pthread_create
#define pthread_key_create reshim_compat_pthread_key_create
#define pthread_mutex_trylock reshim_compat_pthread_mutex_trylock
#define pthread_setspecific reshim_compat_pthread_setspecific
#define pthread_sigmask reshim_compat_pthread_sigmask

/* The library's constructor: loads what an older glibc needs (compat.c);
 * and how compat.c binds the allocator before it opens a library. */
void reshim_compat_boot(void) __attribute__((visibility("hidden")));
void reshim_compat_prepare(void (*bind_allocator)(void)) __attribute__((visibility("hidden")));

/* Defined before <sys/stat.h> is read: its declarations become these
 * (hidden, in compat.c; `struct stat` is not followed by a parenthesis). */
#define stat(path, buf) reshim_compat_stat(path, buf)
#define lstat(path, buf) reshim_compat_lstat(path, buf)
#define fstat(fd, buf) reshim_compat_fstat(fd, buf)
#define fstatat(dfd, path, buf, flags) reshim_compat_fstatat(dfd, path, buf, flags)
/* These four as system calls too: glibc's need GLIBC_2.4 and GLIBC_2.9,
 * two versions more for the loader to check at every start-up. */
#define fchmodat(dfd, path, mode, flags) reshim_compat_fchmodat(dfd, path, mode, flags)
#define mkdirat(dfd, path, mode) reshim_compat_mkdirat(dfd, path, mode)
#define unlinkat(dfd, path, flags) reshim_compat_unlinkat(dfd, path, flags)
#define pipe2(fds, flags) reshim_compat_pipe2(fds, flags)
#else
#define reshim_compat_boot() ((void)0)
#define reshim_compat_prepare(bind_allocator) ((void)(bind_allocator))
#endif

#endif
