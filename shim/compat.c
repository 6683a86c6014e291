/* compat.c: stat, lstat, fstat and fstatat as syscalls, for compat.h (glibc
 * before 2.33 has no such functions, only __xstat and friends). */
#define _GNU_SOURCE
#include <fcntl.h>
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
