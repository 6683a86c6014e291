/* listener.c: the stats socket's listener: placed in the run directory
 * (rundir.c, which checks and binds without following another user's
 * paths) or, refused there with one warning, on the abstract socket
 * @reshim-<uid>/<pid>; checked every CHECK_NS (an app that closed or reused
 * our descriptor) and every PATH_CHECK_NS (a socket file removed under us),
 * and made again (at most every RELISTEN_NS; RETRY_LISTEN_NS after a
 * failure). The uid is the effective one when the socket is made (the one
 * SO_PEERCRED reports): a process that changed it (nginx's workers, `user
 * nobody`) gets the default run directory of its new uid (config.c:
 * reshim_run_dir_for), and a listener made before such a change is made
 * again. Runs on the stats thread only (the destructor's listener_unlink
 * aside). */
#define _GNU_SOURCE
#include "listener.h"

#include <errno.h>
#include <stddef.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "reshim.h"
#include "rundir.h"
#include "snapshot.h"
#include "sys.h"

#define MS_NS 1000000ull
#define SEC_NS 1000000000ull
#define LISTEN_BACKLOG 128
#define CHECK_NS (250 * MS_NS)       /* listener identity check */
#define PATH_CHECK_NS (5 * SEC_NS)   /* is our socket file still there? */
#define RELISTEN_NS SEC_NS           /* re-create the listener at most this often */
#define RETRY_LISTEN_NS (10 * SEC_NS)/* after a failure to create one */
#define SOCK_PATH_MAX RUNDIR_SOCK_MAX

static struct sys_owned lsn = SYS_OWNED_NONE;
/* Our socket file (rd.sock; "" when abstract or none), the run directory
 * it is in and the identities of both (rundir.c). Every operation on the
 * socket file goes through a descriptor of that directory, checked to be
 * the same one: a path component swapped for a symbolic link by whoever
 * owns a parent never leads us to bind, chmod or unlink elsewhere. */
static struct rundir rd;
static bool place_warned, abstract_warned;
/* The run directory chosen at the last listener_open, and the effective uid
 * the listener was made under. */
static char run_dir[RESHIM_PATH_MAX];
static uid_t lsn_euid;
static uint64_t next_listen, last_lsn_check, last_path_check;

int listener_fd(void)
{
    return lsn.fd;
}

bool listener_ours(void)
{
    return sys_own_ok(&lsn);
}

uint64_t listener_next(void)
{
    return next_listen;
}

const char *listener_run_dir(void)
{
    return run_dir;
}

/* The uid of our socket's name: the effective one, as SO_PEERCRED tells
 * our clients. */
static unsigned my_uid(void)
{
    return (unsigned)geteuid();
}

/* Where the walk starts and who must own the run directory. */
static struct rundir_env rundir_env(void)
{
    struct rundir_env e = {"", my_uid()};
    return e;
}

static int new_stream_socket(void)
{
    return reshim_fd_above_stdio(
        sys_socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
}

static size_t abstract_name(char *buf, size_t n)
{
    return reshim_format(buf, n, "reshim-%u/%d", my_uid(), (int)sys_getpid());
}

static int bind_abstract(void)
{
    char name[64], eb[16];
    size_t len = abstract_name(name, sizeof name);
    int fd = new_stream_socket();
    if (fd < 0)
        return -1;
    struct sockaddr_un a;
    memset(&a, 0, sizeof a);
    a.sun_family = AF_UNIX;
    memcpy(a.sun_path + 1, name, len); /* sun_path[0] = 0: abstract, no trailing NUL */
    socklen_t alen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + len);
    if (bind(fd, (struct sockaddr *)&a, alen) != 0 || listen(fd, LISTEN_BACKLOG) != 0) {
        if (!abstract_warned) {
            abstract_warned = true;
            LOG_WARN("stats socket: cannot bind the abstract socket @%s (%s): no stats socket "
                     "in this process",
                     name, reshim_errno_name(errno, eb));
        }
        sys_close(fd);
        return -1;
    }
    return fd;
}

/* True when our socket file is still the one we bound, in the directory we
 * checked; unlinks it too when asked. */
static bool path_is_ours_do(bool remove)
{
    struct rundir_env e = rundir_env();
    return rundir_is_ours(&e, &rd, remove);
}

static bool path_is_ours(void)
{
    return path_is_ours_do(false);
}

void listener_unlink(void)
{
    path_is_ours_do(true);
    rd.sock[0] = 0;
}

void listener_open(uint64_t now, uint64_t t0)
{
    char path[SOCK_PATH_MAX + 32], whybuf[SOCK_PATH_MAX + 96], dbuf[RESHIM_PATH_MAX];
    const char *why = NULL;
    lsn_euid = geteuid();
    const char *dir = reshim_run_dir_for(reshim_cfg(), (unsigned)lsn_euid, dbuf, sizeof dbuf);
    snap_word(run_dir, sizeof run_dir, dir);
    size_t plen = reshim_format(path, sizeof path, "%s/%d.sock", run_dir,
                                (int)sys_getpid());
    int fd = -1, dfd = -1;
    bool changeable = false;
    size_t dlen = strlen(run_dir);
    struct rundir_env env = rundir_env();
    rd.sock[0] = 0;
    if (plen >= (size_t)SOCK_PATH_MAX)
        why = "the socket path would not fit a unix socket address (107 bytes)";
    else
        why = rundir_check(&env, run_dir, &rd, &dfd, &changeable, whybuf, sizeof whybuf);
    if (!why) {
        char eb[16];
        fd = new_stream_socket();
        if (fd < 0) {
            reshim_format(whybuf, sizeof whybuf, "no socket (%s)", reshim_errno_name(errno, eb));
            why = whybuf;
        } else if (rundir_bind(&env, &rd, dfd, fd, path, dlen, changeable, LISTEN_BACKLOG,
                               whybuf, sizeof whybuf) != 0) {
            sys_close(fd);
            fd = -1;
            why = whybuf;
        }
    }
    if (dfd >= 0)
        sys_close(dfd);
    if (fd < 0) {
        if (!place_warned) {
            char name[64];
            abstract_name(name, sizeof name);
            place_warned = true;
            LOG_WARN("stats socket: not using the run directory %s: %s; serving on the abstract "
                     "socket @%s instead",
                     run_dir, why, name);
        }
        fd = bind_abstract();
    }
    if (fd >= 0 && !sys_own_take(&lsn, fd))
        sys_close(fd);
    if (lsn.fd >= 0 && reshim_log_enabled(RLOG_DEBUG)) {
        char name[SOCK_PATH_MAX + 1] = "@";
        if (rd.sock[0])
            snap_word(name, sizeof name, rd.sock);
        else
            abstract_name(name + 1, sizeof name - 1);
        LOG_DEBUG("stats socket: serving on %s, %llu ms after start", name,
                  (unsigned long long)((now - t0) / MS_NS));
    }
    next_listen = now + (lsn.fd >= 0 ? RELISTEN_NS : RETRY_LISTEN_NS);
    last_lsn_check = last_path_check = now;
}

void listener_close(void)
{
    sys_own_close(&lsn);
    listener_unlink();
}

/* The app closed our listener (or its number now holds something else):
 * forgotten, never closed by us; listener_maintain makes a new one. */
void listener_lost(void)
{
    LOG_INFO("stats socket: its descriptor was closed by the app; re-creating it");
    lsn.fd = -1;
    listener_unlink();
}

/* Notices an app that closed (or reused) our descriptor, or a socket file
 * removed under us (tmp cleaners), and re-creates the listener. */
void listener_maintain(uint64_t now, uint64_t t0)
{
    if (lsn.fd >= 0 && now - last_lsn_check >= CHECK_NS) {
        last_lsn_check = now;
        if (!sys_own_ok(&lsn)) {
            listener_lost();
        } else if (geteuid() != lsn_euid) {
            /* The process changed its uid since (a daemon dropping root):
             * the socket goes where the new uid's is looked for. The old
             * file is removed when the new uid may; else `reshim ls` of
             * the old uid removes it as stale. */
            LOG_DEBUG("stats socket: the uid changed from %u to %u; re-creating it",
                      (unsigned)lsn_euid, (unsigned)geteuid());
            listener_close();
            next_listen = now;
        }
    }
    if (lsn.fd >= 0 && rd.sock[0] && now - last_path_check >= PATH_CHECK_NS) {
        last_path_check = now;
        if (!path_is_ours()) {
            LOG_INFO("stats socket: %s was removed; re-creating it", rd.sock);
            rd.sock[0] = 0; /* not ours any more: left alone */
            sys_own_close(&lsn);
        }
    }
    if (lsn.fd < 0 && now >= next_listen)
        listener_open(now, t0);
}

void listener_forget(void)
{
    sys_own_close(&lsn);
    rd.sock[0] = run_dir[0] = 0;
    place_warned = abstract_warned = false;
    next_listen = last_lsn_check = last_path_check = 0;
}
