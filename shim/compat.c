/* compat.c: stat, lstat, fstat and fstatat as syscalls, for compat.h (glibc
 * before 2.33 has no such functions, only __xstat and friends); the
 * functions of libdl and libpthread that compat.h renames. */
#ifdef RESHIM_COMPAT /* here the real names: compat.h renamed them */
#undef dladdr
#undef dlopen
#undef dlsym
#undef pthread_attr_setstacksize
#undef pthread_create
#undef pthread_key_create
#undef pthread_mutex_trylock
#undef pthread_setspecific
#undef pthread_sigmask
#endif
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifdef RESHIM_COMPAT
/* The kernel's struct stat is glibc's on x86_64 and aarch64. */
__attribute__((visibility("hidden"))) int reshim_compat_fstatat(int dfd, const char *path,
                                                                struct stat *buf, int flags)
{
    return (int)syscall(SYS_newfstatat, dfd, path, buf, flags);
}

__attribute__((visibility("hidden"))) int reshim_compat_stat(const char *path, struct stat *buf)
{
    return (int)syscall(SYS_newfstatat, AT_FDCWD, path, buf, 0);
}

__attribute__((visibility("hidden"))) int reshim_compat_lstat(const char *path, struct stat *buf)
{
    return (int)syscall(SYS_newfstatat, AT_FDCWD, path, buf, AT_SYMLINK_NOFOLLOW);
}

__attribute__((visibility("hidden"))) int reshim_compat_fstat(int fd, struct stat *buf)
{
    return (int)syscall(SYS_fstat, fd, buf);
}

/* FLAGS: 0 only (the kernel's fchmodat has none). */
__attribute__((visibility("hidden"))) int reshim_compat_fchmodat(int dfd, const char *path,
                                                                 mode_t mode, int flags)
{
    if (flags) {
        errno = EINVAL;
        return -1;
    }
    return (int)syscall(SYS_fchmodat, dfd, path, mode);
}

__attribute__((visibility("hidden"))) int reshim_compat_mkdirat(int dfd, const char *path,
                                                                mode_t mode)
{
    return (int)syscall(SYS_mkdirat, dfd, path, mode);
}

__attribute__((visibility("hidden"))) int reshim_compat_unlinkat(int dfd, const char *path, int flags)
{
    return (int)syscall(SYS_unlinkat, dfd, path, flags);
}

__attribute__((visibility("hidden"))) int reshim_compat_pipe2(int fds[2], int flags)
{
    return (int)syscall(SYS_pipe2, fds, flags);
}

/* libdl and libpthread, which the library does not name as needed
 * (compat.h). From glibc 2.34 on, their functions are libc.so.6's: called
 * here through the PLT, bound at the first call (weak, so that an older
 * glibc loads the library without them; their addresses are never taken:
 * that would look each one up at start-up). Before 2.34 they are found in
 * the two libraries, opened with glibc's internal dlopen (libc.so.6 exports
 * __libc_dlopen_mode and __libc_dlsym, its NSS and iconv modules' loader,
 * up to 2.33), RTLD_LOCAL: out of the program's scope, as without the shim
 * (the program's own copy when it links them).
 *
 * libpthread is loaded by the library's constructor only
 * (reshim_compat_boot), as it was at start-up when it was needed: once it
 * is there, libc's internal locks (setlocale's, stdio's) stop being no-ops,
 * and one taken as a no-op and released for real never comes free again
 * (seen with mawk: loaded from a malloc within setlocale, its next
 * setlocale hung). Elsewhere its functions are found only if it is loaded
 * already (RTLD_NOLOAD), else they fail (pthread_sigmask: the system call).
 * libdl changes nothing of libc: loaded at its first use. */
#pragma weak dladdr
#pragma weak dlopen
#pragma weak dlsym
#pragma weak pthread_attr_setstacksize
#pragma weak pthread_create
#pragma weak pthread_key_create
#pragma weak pthread_mutex_trylock
#pragma weak pthread_setspecific
#pragma weak pthread_sigmask
extern void *__libc_dlopen_mode(const char *name, int mode) __attribute__((weak));
extern void *__libc_dlsym(void *map, const char *name) __attribute__((weak));

/* glibc 2.34 or newer (the functions are libc's): the one that dropped
 * __libc_dlopen_mode. */
static int libc_has_them(void)
{
    return !__libc_dlopen_mode;
}

static const char LIBDL[] = "libdl.so.2", LIBPTHREAD[] = "libpthread.so.0";

/* Binds the shim's allocator (handed in by lifecycle.c: this file calls
 * nothing of the shim). Before opening a library: the allocator's own
 * binding asks for dlsym and comes back here, where dlopen's allocations
 * are served from its bootstrap arena; any other first caller finds it
 * bound, rather than a dlopen within a dlopen's allocation. */
static void (*bind_allocator)(void);

__attribute__((visibility("hidden"))) void reshim_compat_prepare(void (*bind)(void))
{
    __atomic_store_n(&bind_allocator, bind, __ATOMIC_RELAXED);
}

static void allocator_first(void)
{
    void (*bind)(void) = __atomic_load_n(&bind_allocator, __ATOMIC_RELAXED);
    if (bind)
        bind();
}

/* NAME in SONAME on a glibc before 2.34, NULL if it cannot be had: libdl
 * opened if need be, libpthread only if it is loaded (see above). */
static void *old_function(const char *soname, const char *name)
{
    allocator_first();
    int mode = RTLD_NOW | RTLD_LOCAL | (soname == LIBPTHREAD ? RTLD_NOLOAD : 0);
    void *h = __libc_dlopen_mode(soname, mode);
    return h ? __libc_dlsym(h, name) : NULL;
}

/* From the constructor: on a glibc before 2.34, libpthread and libdl
 * (nothing if the program has them: dlopen counts a reference). */
__attribute__((visibility("hidden"))) void reshim_compat_boot(void)
{
    if (libc_has_them())
        return;
    allocator_first();
    __libc_dlopen_mode(LIBPTHREAD, RTLD_NOW | RTLD_LOCAL);
    __libc_dlopen_mode(LIBDL, RTLD_NOW | RTLD_LOCAL);
}

/* Calls FN with ARGS: glibc's through the PLT (2.34 and newer), else the
 * old library's, found once (the same value in any thread that races; not
 * found is asked again); FAIL if it cannot be found. */
#define OLD_CALL(fn, soname, fail, ...)                                             \
    do {                                                                            \
        if (libc_has_them())                                                        \
            return fn(__VA_ARGS__);                                                 \
        static __typeof__(&fn) at;                                                  \
        __typeof__(&fn) f = __atomic_load_n(&at, __ATOMIC_RELAXED);                 \
        if (!f) {                                                                   \
            f = (__typeof__(&fn))old_function(soname, #fn);                         \
            __atomic_store_n(&at, f, __ATOMIC_RELAXED);                             \
        }                                                                           \
        return f ? f(__VA_ARGS__) : (fail);                                         \
    } while (0)
#define HIDDEN_FN __attribute__((visibility("hidden")))

/* Without libdl, dladdr and dlsym answer as when they find nothing. */
HIDDEN_FN int reshim_compat_dladdr(const void *addr, Dl_info *info)
{
    OLD_CALL(dladdr, LIBDL, 0, addr, info);
}

HIDDEN_FN void *reshim_compat_dlopen(const char *file, int mode)
{
    OLD_CALL(dlopen, LIBDL, NULL, file, mode);
}

/* RTLD_NEXT: glibc's dlsym finds its caller from its return address: here,
 * in the same object as the shim's call. */
HIDDEN_FN void *reshim_compat_dlsym(void *handle, const char *name)
{
    OLD_CALL(dlsym, LIBDL, NULL, handle, name);
}

HIDDEN_FN int reshim_compat_pthread_attr_setstacksize(pthread_attr_t *attr, size_t size)
{
    OLD_CALL(pthread_attr_setstacksize, LIBPTHREAD, ENOSYS, attr, size);
}

HIDDEN_FN int reshim_compat_pthread_create(pthread_t *thread, const pthread_attr_t *attr,
                                           void *(*start)(void *), void *arg)
{
    OLD_CALL(pthread_create, LIBPTHREAD, EAGAIN, thread, attr, start, arg);
}

HIDDEN_FN int reshim_compat_pthread_key_create(pthread_key_t *key, void (*destructor)(void *))
{
    OLD_CALL(pthread_key_create, LIBPTHREAD, EAGAIN, key, destructor);
}

HIDDEN_FN int reshim_compat_pthread_mutex_trylock(pthread_mutex_t *mutex)
{
    OLD_CALL(pthread_mutex_trylock, LIBPTHREAD, EBUSY, mutex);
}

HIDDEN_FN int reshim_compat_pthread_setspecific(pthread_key_t key, const void *value)
{
    OLD_CALL(pthread_setspecific, LIBPTHREAD, EINVAL, key, value);
}

/* No libpthread: no other thread either; the system call (8: the kernel's
 * sigset_t). */
HIDDEN_FN int reshim_compat_pthread_sigmask(int how, const sigset_t *set, sigset_t *old)
{
    OLD_CALL(pthread_sigmask, LIBPTHREAD,
             syscall(SYS_rt_sigprocmask, how, set, old, 8) == 0 ? 0 : errno, how, set, old);
}
#endif

#if defined(RESHIM_COMPAT) && defined(RESHIM_COMPAT_START)
/* The CLI's start: crt1.o of glibc 2.34 and newer calls
 * __libc_start_main@GLIBC_2.34 with no init function, leaving the
 * constructors to it. Linked with --wrap=__libc_start_main, the call comes
 * here and goes to the oldest version, with an init function that runs them
 * (what crt1.o passed before 2.34): a glibc 2.34 or newer calls it instead
 * of running them itself, an older one calls it as it always did. */
typedef int (*reshim_main_fn)(int, char **, char **);
typedef void (*reshim_init_fn)(int, char **, char **);
int reshim_old_libc_start_main(reshim_main_fn main_fn, int argc, char **argv, void (*init)(void),
                               void (*fini)(void), void (*rtld_fini)(void), void *stack_end);
#ifdef __aarch64__
__asm__(".symver reshim_old_libc_start_main,__libc_start_main@GLIBC_2.17");
#else
__asm__(".symver reshim_old_libc_start_main,__libc_start_main@GLIBC_2.2.5");
#endif
extern reshim_init_fn __init_array_start[] __attribute__((visibility("hidden")));
extern reshim_init_fn __init_array_end[] __attribute__((visibility("hidden")));
extern void _init(void);

static void reshim_run_init(int argc, char **argv, char **envp)
{
    _init();
    for (reshim_init_fn *f = __init_array_start; f < __init_array_end; f++)
        (*f)(argc, argv, envp);
}

int __wrap___libc_start_main(reshim_main_fn main_fn, int argc, char **argv, void (*init)(void),
                             void (*fini)(void), void (*rtld_fini)(void), void *stack_end);
int __wrap___libc_start_main(reshim_main_fn main_fn, int argc, char **argv, void (*init)(void),
                             void (*fini)(void), void (*rtld_fini)(void), void *stack_end)
{
    if (!init)
        init = (void (*)(void))reshim_run_init;
    return reshim_old_libc_start_main(main_fn, argc, argv, init, fini, rtld_fini, stack_end);
}
#endif
