/* rundir.h: the run directory of the stats socket, reached and used without
 * ever following a path another user could change (the placement rules of
 * server.c's head comment). Pure: no state of its own, no log line, no
 * thread; the root the walk starts from and the uid that must own the
 * directory are given, so tests/unit/test_rundir.c runs every case of the
 * security tests without root, in a tree of its own. Descriptors come from
 * sys.h; a socket to bind is made by the caller. */
#ifndef RESHIM_RUNDIR_H
#define RESHIM_RUNDIR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/un.h>

#define RUNDIR_SOCK_MAX ((int)sizeof(((struct sockaddr_un *)0)->sun_path))

struct rundir_env {
    const char *root; /* prefixed to every absolute path: "" on a real system */
    unsigned euid;    /* who must own the run directory (our effective uid) */
};

/* A checked run directory and the socket file bound in it. */
struct rundir {
    char sock[RUNDIR_SOCK_MAX]; /* <dir>/<name>: our socket file; "" when none */
    size_t dir_len;             /* sock[0..dir_len) is the directory */
    uint64_t dir_dev, dir_ino;  /* the directory as checked */
    uint64_t sock_dev, sock_ino; /* the socket file as bound */
};

/* Why dir cannot be used (NULL: it can; *dfd is then an O_PATH descriptor
 * of it and rd->dir_dev/dir_ino its identity). It is reached from the root
 * one component at a time, never following a symbolic link, made (mkdirat,
 * 0700, and chmod 0700 through its descriptor under a narrow umask) when
 * missing, and must be a directory owned by env->euid with no access for
 * group or others. *changeable: a directory above it could be changed by
 * another user (owned by another uid but root, or writable by group or
 * others without the sticky bit): the bind must then go through the
 * descriptor. The reason is a constant or written to why[n]. */
const char *rundir_check(const struct rundir_env *env, const char *dir, struct rundir *rd,
                         int *dfd, bool *changeable, char *why, size_t n);

/* Binds and listens (backlog) on <path> = <dir of dfd>/<name> (path as
 * given to rundir_check: below env->root) with the
 * unbound unix stream socket fd: 0, and rd->sock is path and the socket
 * file's identity recorded; -1 with the reason in why (fd left to the
 * caller to close). What already is at name is left alone unless it is a
 * socket (a dead process's, removed). via_fd: bound through
 * /proc/self/fd/<dfd>/<name>, which lands in that directory whatever its
 * path leads to by then. The file is made 0600. */
int rundir_bind(const struct rundir_env *env, struct rundir *rd, int dfd, int fd,
                const char *path, size_t dir_len, bool via_fd, int backlog, char *why, size_t n);

/* The run directory of rd->sock again, when it is still the one checked
 * (-1: it is not, or there is no socket file). */
int rundir_reopen(const struct rundir_env *env, const struct rundir *rd);

/* True when rd->sock is still the socket file bound, in the directory
 * checked; removes it too when remove is set. Never through a changed path. */
bool rundir_is_ours(const struct rundir_env *env, const struct rundir *rd, bool remove);

#endif
