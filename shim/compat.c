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
