/* rundir.c: the run directory of the stats socket (see rundir.h). Every
 * file operation on the directory and the socket name is a no-follow form:
 * an O_PATH | O_NOFOLLOW | O_DIRECTORY open one component at a time from the
 * root, then *at calls on that descriptor (fstatat with AT_SYMLINK_NOFOLLOW,
 * mkdirat, unlinkat, fchmodat). Never allocates, never logs. */
#define _GNU_SOURCE
#include "rundir.h"

#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "sys.h"

#define O_DIR_PATH (O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)

/* Can a user other than us (and root) rename or replace entries of this
 * directory? Owned by another uid, or writable by group or others without
 * the sticky bit (/tmp has it). */
static bool others_can_change(const struct rundir_env *env, const struct stat *st)
{
    return (st->st_uid != env->euid && st->st_uid != 0) ||
           ((st->st_mode & 022) && !(st->st_mode & S_ISVTX));
}

/* root + path, or false when it does not fit. */
static bool rooted(char *dst, size_t n, const struct rundir_env *env, const char *path)
{
    return reshim_format(dst, n, "%s%s", env->root, path) + 1 < n;
}

const char *rundir_check(const struct rundir_env *env, const char *dir, struct rundir *rd,
                         int *dfd, bool *changeable, char *why, size_t n)
{
    char p[RUNDIR_SOCK_MAX + 32];
    char eb[16];
    struct stat st;
    *dfd = -1;
    *changeable = false;
    size_t len = strlen(dir);
    if (len >= sizeof p || dir[0] != '/')
        return "it is not an absolute path";
    memcpy(p, dir, len + 1);
    while (len > 1 && p[len - 1] == '/')
        p[--len] = 0;
    int fd = sys_open(env->root[0] ? env->root : "/", O_PATH | O_DIRECTORY);
    if (fd < 0) {
        reshim_format(why, n, "it cannot be examined (%s)", reshim_errno_name(errno, eb));
        return why;
    }
    bool made = false;
    char *c = p + 1;
    while (*c) {
        char *e = strchr(c, '/');
        if (e)
            *e = 0; /* p is now the path up to this component */
        bool last = !e || !e[1 + strspn(e + 1, "/")];
        if (fstat(fd, &st) == 0 && others_can_change(env, &st))
            *changeable = true;
        int nfd = sys_openat(fd, c, O_DIR_PATH, 0);
        if (nfd < 0 && errno == ENOENT && last) {
            if (mkdirat(fd, c, 0700) != 0 && errno != EEXIST) {
                reshim_format(why, n, "it cannot be created (%s)", reshim_errno_name(errno, eb));
                sys_close(fd);
                return why;
            }
            made = true;
            nfd = sys_openat(fd, c, O_DIR_PATH, 0);
        }
        if (nfd < 0) {
            int err = errno;
            struct stat ls;
            bool link = fstatat(fd, c, &ls, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(ls.st_mode);
            sys_close(fd);
            if (err == ENOENT && !last)
                return "it cannot be created (ENOENT)"; /* a missing parent */
            if (last && link)
                return "it is a symbolic link";
            if (last && (err == ENOTDIR || err == ELOOP))
                return "it is not a directory";
            if (link)
                reshim_format(why, n, "its parent %s is a symbolic link", p);
            else if (err == ENOTDIR || err == ELOOP)
                reshim_format(why, n, "its parent %s is not a directory", p);
            else if (last)
                reshim_format(why, n, "it cannot be examined (%s)", reshim_errno_name(err, eb));
            else
                reshim_format(why, n, "its parent %s cannot be examined (%s)", p,
                              reshim_errno_name(err, eb));
            return why;
        }
        sys_close(fd);
        fd = nfd;
        if (last)
            break;
        *e = '/';
        c = e + 1;
        while (*c == '/')
            c++;
    }
    if (fstat(fd, &st) != 0) {
        reshim_format(why, n, "it cannot be examined (%s)", reshim_errno_name(errno, eb));
        sys_close(fd);
        return why;
    }
    if (!S_ISDIR(st.st_mode)) {
        sys_close(fd);
        return "it is not a directory";
    }
    if (st.st_uid != env->euid) {
        reshim_format(why, n, "it is owned by uid %u, not by uid %u", (unsigned)st.st_uid,
                      env->euid);
        sys_close(fd);
        return why;
    }
    if (made && (st.st_mode & 07777) != 0700) {
        /* A umask made it narrower: 0700, on the directory we just checked. */
        int rfd = sys_openat(fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
        if (rfd >= 0) {
            if (fchmod(rfd, 0700) == 0)
                st.st_mode = (st.st_mode & ~(mode_t)07777) | 0700;
            sys_close(rfd);
        }
    }
    if (st.st_mode & 077) {
        reshim_format(why, n, "its mode %c%c%c%c lets other users in (0700 is required)", '0',
                      (char)('0' + ((st.st_mode >> 6) & 7)),
                      (char)('0' + ((st.st_mode >> 3) & 7)), (char)('0' + (st.st_mode & 7)));
        sys_close(fd);
        return why;
    }
    rd->dir_dev = (uint64_t)st.st_dev;
    rd->dir_ino = (uint64_t)st.st_ino;
    *dfd = fd;
    return NULL;
}

int rundir_reopen(const struct rundir_env *env, const struct rundir *rd)
{
    char dir[RUNDIR_SOCK_MAX], full[RUNDIR_SOCK_MAX + RUNDIR_SOCK_MAX];
    if (!rd->sock[0] || rd->dir_len == 0 || rd->dir_len >= sizeof dir)
        return -1;
    memcpy(dir, rd->sock, rd->dir_len);
    dir[rd->dir_len] = 0;
    if (!rooted(full, sizeof full, env, dir))
        return -1;
    int fd = sys_open(full, O_DIR_PATH);
    if (fd < 0)
        return -1;
    if (!sys_fd_is(fd, rd->dir_dev, rd->dir_ino)) {
        sys_close(fd);
        return -1;
    }
    return fd;
}

int rundir_bind(const struct rundir_env *env, struct rundir *rd, int dfd, int fd,
                const char *path, size_t dir_len, bool via_fd, int backlog, char *why, size_t n)
{
    char eb[16];
    struct stat st;
    const char *name = path + dir_len + 1;
    size_t plen = strlen(path);
    struct sockaddr_un a;
    memset(&a, 0, sizeof a);
    a.sun_family = AF_UNIX;
    if (plen >= sizeof rd->sock || (!via_fd && !rooted(a.sun_path, sizeof a.sun_path, env, path))) {
        reshim_format(why, n, "the socket path would not fit a unix socket address (%d bytes)",
                      RUNDIR_SOCK_MAX - 1);
        return -1;
    }
    if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0) {
        if (!S_ISSOCK(st.st_mode)) {
            reshim_format(why, n, "%s exists and is not a socket (left alone)", path);
            return -1;
        }
        unlinkat(dfd, name, 0); /* stale: a dead process of the same pid */
    }
    fchmod(fd, 0600); /* the file is created with the socket inode's mode */
    if (via_fd) {
        char via[32];
        reshim_format(via, sizeof via, "/proc/self/fd/%d", dfd);
        if (stat(via, &st) != 0 || !S_ISDIR(st.st_mode) || (uint64_t)st.st_dev != rd->dir_dev ||
            (uint64_t)st.st_ino != rd->dir_ino) {
            reshim_format(why, n, "a directory above it can be changed by other users, and "
                          "/proc/self/fd is not there to bind safely");
            return -1;
        }
        reshim_format(a.sun_path, sizeof a.sun_path, "%s/%s", via, name);
    } /* else root + path, set above: no one else can change the way */
    if (bind(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        reshim_format(why, n, "cannot bind %s (%s)", path, reshim_errno_name(errno, eb));
        return -1;
    }
    fchmodat(dfd, name, 0600, 0); /* our 0700 directory: nobody else can swap the name */
    if (listen(fd, backlog) != 0 || fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0 ||
        !S_ISSOCK(st.st_mode)) {
        reshim_format(why, n, "cannot listen on %s (%s)", path, reshim_errno_name(errno, eb));
        unlinkat(dfd, name, 0);
        return -1;
    }
    memcpy(rd->sock, path, plen + 1);
    rd->dir_len = dir_len;
    rd->sock_dev = (uint64_t)st.st_dev;
    rd->sock_ino = (uint64_t)st.st_ino;
    return 0;
}

bool rundir_is_ours(const struct rundir_env *env, const struct rundir *rd, bool remove)
{
    int dfd = rundir_reopen(env, rd);
    if (dfd < 0)
        return false;
    struct stat st;
    const char *name = rd->sock + rd->dir_len + 1;
    bool ours = fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISSOCK(st.st_mode) &&
                (uint64_t)st.st_dev == rd->sock_dev && (uint64_t)st.st_ino == rd->sock_ino;
    if (ours && remove)
        unlinkat(dfd, name, 0);
    sys_close(dfd);
    return ours;
}
