/* test_rundir.c: unit tests of shim/rundir.c, the run directory of the
 * stats socket, in a tree of its own (the injected root) and without root
 * privileges (the uid that must own the directory is injected too): every
 * case of tests/integration/test_stats_security.sh and
 * test_security_paths.sh that needs no second user.
 *   - made 0700 when missing (also under umask 0277), used when 0700 and ours;
 *   - refused, named and left untouched: modes 0770 0707 0730 0703 0750
 *     0711 0755, a symlink, a file, a parent that is a symlink or a file, a
 *     missing parent, a relative path, a directory of another uid;
 *   - "changeable" for a parent of another uid or group-writable without
 *     the sticky bit, not for a sticky world-writable one (like /tmp);
 *   - the bind: the socket 0600; a FIFO (never opened), a directory or a
 *     symlink at the name left alone; a stale socket replaced;
 *   - the directory swapped for a symlink to a victim directory between the
 *     check and the bind: a bind through the descriptor lands in the
 *     checked directory, the victim stays empty (control: a plain bind
 *     lands in the victim);
 *   - afterwards: the socket file replaced, or the directory moved away
 *     and another planted with a socket at the name: not ours, nothing
 *     removed through the changed path. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include "rundir.h"

#define CHECK(cond, ...)           \
    do {                           \
        if (!(cond))               \
            fail_msg(__VA_ARGS__); \
    } while (0)

static char root[256];

/* root + rel */
static const char *at(const char *rel)
{
    static char buf[4][512];
    static int k;
    char *b = buf[k++ % 4];
    snprintf(b, sizeof buf[0], "%s%s", root, rel);
    return b;
}

static void mkdir_mode(const char *rel, mode_t mode)
{
    CHECK(mkdir(at(rel), 0700) == 0, "mkdir %s: %s", rel, strerror(errno));
    CHECK(chmod(at(rel), mode) == 0, "chmod %s: %s", rel, strerror(errno));
}

static mode_t mode_of(const char *rel)
{
    struct stat st;
    CHECK(lstat(at(rel), &st) == 0, "lstat %s: %s", rel, strerror(errno));
    return st.st_mode;
}

static bool exists(const char *rel)
{
    struct stat st;
    return lstat(at(rel), &st) == 0;
}

static int entries(const char *rel)
{
    DIR *d = opendir(at(rel));
    CHECK(d, "opendir %s", rel);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
            n++;
    closedir(d);
    return n;
}

static int make_root(void **state)
{
    (void)state;
    snprintf(root, sizeof root, "/tmp/reshim-rundir.XXXXXX");
    if (!mkdtemp(root))
        return -1;
    chmod(root, 0755);
    mkdir_mode("/run", 0755);
    return 0;
}

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    chmod(p, 0700);
    return remove(p);
}

static int remove_root(void **state)
{
    (void)state;
    chmod(root, 0700);
    nftw(root, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    return 0;
}

static struct rundir_env env_me(void)
{
    struct rundir_env e = {root, (unsigned)geteuid()};
    return e;
}

/* rundir_check of rel: the reason (NULL when usable); the descriptor is
 * closed, or returned in *dfd when dfd is given. */
static const char *check(const struct rundir_env *e, const char *rel, struct rundir *rd,
                         bool *changeable, int *dfd)
{
    static char why[256];
    int fd;
    bool ch;
    const char *r = rundir_check(e, rel, rd, &fd, changeable ? changeable : &ch, why, sizeof why);
    CHECK(r ? fd == -1 : fd >= 0, "descriptor %d with reason %s", fd, r ? r : "(none)");
    if (dfd)
        *dfd = fd;
    else if (fd >= 0)
        close(fd);
    return r;
}

static void expect_refused(const char *rel, const char *reason)
{
    struct rundir_env e = env_me();
    struct rundir rd;
    const char *r = check(&e, rel, &rd, NULL, NULL);
    CHECK(r && strcmp(r, reason) == 0, "%s: expected \"%s\", got \"%s\"", rel, reason,
          r ? r : "(usable)");
}

static void test_made_and_used(void **state)
{
    (void)state;
    struct rundir_env e = env_me();
    struct rundir rd;
    bool ch = true;
    int dfd;
    CHECK(check(&e, "/run/reshim", &rd, &ch, &dfd) == NULL, "a missing run dir not made");
    assert_int_equal(mode_of("/run/reshim") & 07777, 0700);
    assert_true(S_ISDIR(mode_of("/run/reshim")));
    assert_false(ch);
    struct stat st;
    assert_int_equal(stat(at("/run/reshim"), &st), 0);
    assert_true(rd.dir_dev == (uint64_t)st.st_dev && rd.dir_ino == (uint64_t)st.st_ino);
    assert_int_equal(fcntl(dfd, F_GETFL) & O_PATH, O_PATH);
    close(dfd);
    /* Again, now that it is there; trailing slashes are the same directory. */
    CHECK(check(&e, "/run/reshim//", &rd, &ch, NULL) == NULL, "an existing 0700 run dir refused");
}

static void test_narrow_umask(void **state)
{
    (void)state;
    mode_t old = umask(0277);
    struct rundir_env e = env_me();
    struct rundir rd;
    const char *r = check(&e, "/run/u", &rd, NULL, NULL);
    umask(old);
    CHECK(r == NULL, "umask 0277: %s", r);
    assert_int_equal(mode_of("/run/u") & 07777, 0700);
}

static void test_modes_refused(void **state)
{
    (void)state;
    static const mode_t modes[] = {0770, 0707, 0730, 0703, 0750, 0711, 0755};
    for (size_t i = 0; i < sizeof modes / sizeof modes[0]; i++) {
        char rel[32], reason[96];
        snprintf(rel, sizeof rel, "/run/m%o", (unsigned)modes[i]);
        mkdir_mode(rel, modes[i]);
        snprintf(reason, sizeof reason, "its mode 0%o lets other users in (0700 is required)",
                 (unsigned)modes[i]);
        expect_refused(rel, reason);
        assert_int_equal(mode_of(rel) & 07777, modes[i]); /* untouched */
        assert_int_equal(entries(rel), 0);
    }
}

static void test_not_directories(void **state)
{
    (void)state;
    mkdir_mode("/run/target", 0700);
    assert_int_equal(symlink(at("/run/target"), at("/run/link")), 0);
    expect_refused("/run/link", "it is a symbolic link");
    assert_int_equal(entries("/run/target"), 0);
    assert_true(S_ISLNK(mode_of("/run/link")));

    int f = open(at("/run/file"), O_CREAT | O_WRONLY, 0600);
    close(f);
    expect_refused("/run/file", "it is not a directory");

    /* A dangling symlink: never followed to make its target. */
    assert_int_equal(symlink(at("/run/nothing"), at("/run/dangling")), 0);
    expect_refused("/run/dangling", "it is a symbolic link");
    assert_false(exists("/run/nothing"));
}

static void test_parents(void **state)
{
    (void)state;
    assert_int_equal(symlink(at("/run"), at("/plink")), 0);
    expect_refused("/plink/reshim", "its parent /plink is a symbolic link");
    assert_false(exists("/run/reshim")); /* nothing made through it */

    int f = open(at("/pfile"), O_CREAT | O_WRONLY, 0600);
    close(f);
    expect_refused("/pfile/reshim", "its parent /pfile is not a directory");

    expect_refused("/nope/reshim", "it cannot be created (ENOENT)");
    assert_false(exists("/nope"));
    expect_refused("run/reshim", "it is not an absolute path");
    expect_refused("", "it is not an absolute path");
}

static void test_other_owner(void **state)
{
    (void)state;
    mkdir_mode("/run/theirs", 0700);
    struct rundir_env e = env_me();
    e.euid = (unsigned)geteuid() + 1; /* we pretend to be the next uid */
    struct rundir rd;
    char reason[96];
    snprintf(reason, sizeof reason, "it is owned by uid %u, not by uid %u", (unsigned)geteuid(),
             e.euid);
    const char *r = check(&e, "/run/theirs", &rd, NULL, NULL);
    CHECK(r && strcmp(r, reason) == 0, "expected \"%s\", got \"%s\"", reason, r ? r : "(usable)");
}

static void test_changeable(void **state)
{
    (void)state;
    struct rundir_env e = env_me();
    struct rundir rd;
    bool ch;
    mkdir_mode("/gw", 0775); /* group-writable, not sticky */
    CHECK(check(&e, "/gw/reshim", &rd, &ch, NULL) == NULL, "below a 0775 dir: refused");
    assert_true(ch);
    mkdir_mode("/tmpish", 01777); /* world-writable and sticky, like /tmp */
    CHECK(check(&e, "/tmpish/reshim", &rd, &ch, NULL) == NULL, "below a 1777 dir: refused");
    assert_false(ch);
    /* A parent of another uid (root's own are trusted). */
    mkdir_mode("/other", 0755);
    if (geteuid() == 0) {
        assert_int_equal(chown(at("/other"), 65534, 65534), 0);
        CHECK(check(&e, "/other/reshim", &rd, &ch, NULL) == NULL, "below uid 65534's: refused");
    } else {
        e.euid = (unsigned)geteuid() + 1; /* then /other is another uid's */
        check(&e, "/other/reshim", &rd, &ch, NULL);
    }
    assert_true(ch);
}

/* An unbound unix stream socket. */
static int new_sock(void)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    CHECK(fd >= 0, "socket: %s", strerror(errno));
    return fd;
}

/* Checks rel and binds rel/name in it: the result of rundir_bind. */
static int check_and_bind(const char *rel, const char *name, bool via_fd, struct rundir *rd,
                          int *sock, char *why, size_t n)
{
    struct rundir_env e = env_me();
    int dfd;
    bool ch;
    CHECK(check(&e, rel, rd, &ch, &dfd) == NULL, "%s refused", rel);
    char path[128];
    snprintf(path, sizeof path, "%s/%s", rel, name);
    *sock = new_sock();
    int rc = rundir_bind(&e, rd, dfd, *sock, path, strlen(rel), via_fd, 8, why, n);
    close(dfd);
    return rc;
}

static bool connects(const char *rel)
{
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    snprintf(a.sun_path, sizeof a.sun_path, "%s", at(rel));
    int c = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    bool ok = connect(c, (struct sockaddr *)&a, sizeof a) == 0;
    close(c);
    return ok;
}

static void test_bind(void **state)
{
    (void)state;
    mode_t old = umask(0);
    struct rundir rd;
    int sock;
    char why[256];
    for (int via = 0; via < 2; via++) {
        const char *name = via ? "2.sock" : "1.sock";
        char rel[32];
        snprintf(rel, sizeof rel, "/run/r/%s", name);
        CHECK(check_and_bind("/run/r", name, via, &rd, &sock, why, sizeof why) == 0, "bind: %s",
              why);
        assert_string_equal(rd.sock, rel);
        assert_int_equal(rd.dir_len, strlen("/run/r"));
        assert_true(S_ISSOCK(mode_of(rel)));
        assert_int_equal(mode_of(rel) & 07777, 0600);
        assert_true(connects(rel));
        struct rundir_env e = env_me();
        assert_true(rundir_is_ours(&e, &rd, false));
        assert_true(rundir_is_ours(&e, &rd, true)); /* and removed */
        assert_false(exists(rel));
        close(sock);
    }
    umask(old);
}

static void test_planted(void **state)
{
    (void)state;
    struct rundir rd;
    int sock;
    char why[256], reason[160];
    mkdir_mode("/run/r", 0700);
    /* A FIFO: left alone, never opened (a writer finds no reader). */
    assert_int_equal(mkfifo(at("/run/r/1.sock"), 0600), 0);
    assert_int_equal(check_and_bind("/run/r", "1.sock", false, &rd, &sock, why, sizeof why), -1);
    close(sock);
    snprintf(reason, sizeof reason, "/run/r/1.sock exists and is not a socket (left alone)");
    assert_string_equal(why, reason);
    assert_true(S_ISFIFO(mode_of("/run/r/1.sock")));
    int w = open(at("/run/r/1.sock"), O_WRONLY | O_NONBLOCK);
    assert_int_equal(w, -1);
    assert_int_equal(errno, ENXIO);
    /* A directory. */
    mkdir_mode("/run/r/2.sock", 0700);
    assert_int_equal(check_and_bind("/run/r", "2.sock", true, &rd, &sock, why, sizeof why), -1);
    close(sock);
    assert_true(S_ISDIR(mode_of("/run/r/2.sock")));
    /* A symlink to another program's live socket: left alone, never named. */
    mkdir_mode("/elsewhere", 0700);
    int live;
    struct rundir rd2;
    CHECK(check_and_bind("/elsewhere", "live.sock", false, &rd2, &live, why, sizeof why) == 0,
          "bind: %s", why);
    assert_int_equal(symlink(at("/elsewhere/live.sock"), at("/run/r/3.sock")), 0);
    assert_int_equal(check_and_bind("/run/r", "3.sock", false, &rd, &sock, why, sizeof why), -1);
    close(sock);
    assert_true(S_ISLNK(mode_of("/run/r/3.sock")));
    assert_true(connects("/elsewhere/live.sock"));
    close(live);
    /* A stale socket (its process gone): replaced. */
    int old;
    CHECK(check_and_bind("/run/r", "4.sock", false, &rd, &old, why, sizeof why) == 0, "%s", why);
    close(old);
    assert_false(connects("/run/r/4.sock"));
    CHECK(check_and_bind("/run/r", "4.sock", false, &rd, &sock, why, sizeof why) == 0, "%s", why);
    assert_true(connects("/run/r/4.sock"));
    close(sock);
}

/* The run dir is swapped for a symlink to a victim directory between the
 * check and the bind (what another user owning a parent could do). */
static void swapped_bind(bool via_fd, int *victim_entries, int *moved_entries, int *rc)
{
    struct rundir_env e = env_me();
    struct rundir rd;
    char why[256];
    mkdir_mode("/gw", 0777); /* anyone may rename in it */
    mkdir_mode("/victim", 0700);
    int dfd;
    bool ch;
    CHECK(check(&e, "/gw/run", &rd, &ch, &dfd) == NULL, "/gw/run refused");
    assert_true(ch);
    assert_int_equal(rename(at("/gw/run"), at("/gw/moved")), 0);
    assert_int_equal(symlink(at("/victim"), at("/gw/run")), 0);
    int sock = new_sock();
    *rc = rundir_bind(&e, &rd, dfd, sock, "/gw/run/7.sock", strlen("/gw/run"), via_fd, 8, why,
                      sizeof why);
    close(dfd);
    *victim_entries = entries("/victim");
    *moved_entries = entries("/gw/moved");
    if (*rc == 0) {
        /* The path no longer leads to the checked directory: not ours,
         * and nothing is removed through it. */
        assert_false(rundir_is_ours(&e, &rd, true));
        assert_int_equal(rundir_reopen(&e, &rd), -1);
        assert_int_equal(entries("/victim") + entries("/gw/moved"),
                         *victim_entries + *moved_entries);
    }
    close(sock);
}

static void test_swap_through_fd(void **state)
{
    (void)state;
    int victim, moved, rc;
    swapped_bind(true, &victim, &moved, &rc);
    assert_int_equal(rc, 0);
    assert_int_equal(victim, 0);
    assert_int_equal(moved, 1);
    assert_true(S_ISSOCK(mode_of("/gw/moved/7.sock")));
}

static void test_swap_control(void **state)
{
    (void)state;
    int victim, moved, rc;
    /* A plain bind through the path, what the descriptor prevents: the
     * socket lands in the victim (and is then not found in the checked
     * directory: refused, but the file is made). */
    swapped_bind(false, &victim, &moved, &rc);
    assert_int_equal(rc, -1);
    assert_int_equal(victim, 1);
    assert_int_equal(moved, 0);
}

static void test_replaced_later(void **state)
{
    (void)state;
    struct rundir_env e = env_me();
    struct rundir rd;
    int sock, other;
    char why[256];
    CHECK(check_and_bind("/run/r", "5.sock", false, &rd, &sock, why, sizeof why) == 0, "%s", why);
    int dfd = rundir_reopen(&e, &rd);
    assert_true(dfd >= 0);
    close(dfd);
    /* The socket file replaced by another socket of the same name. */
    assert_int_equal(unlink(at("/run/r/5.sock")), 0);
    struct rundir rd2;
    CHECK(check_and_bind("/run/r", "5.sock", false, &rd2, &other, why, sizeof why) == 0, "%s",
          why);
    assert_false(rundir_is_ours(&e, &rd, true));
    assert_true(connects("/run/r/5.sock")); /* the other one: not removed */
    close(other);
    close(sock);
    /* The directory moved away, another planted with a socket at the name. */
    CHECK(check_and_bind("/run/r", "6.sock", false, &rd, &sock, why, sizeof why) == 0, "%s", why);
    assert_int_equal(rename(at("/run/r"), at("/run/gone")), 0);
    CHECK(check_and_bind("/run/r", "6.sock", false, &rd2, &other, why, sizeof why) == 0, "%s",
          why);
    assert_int_equal(rundir_reopen(&e, &rd), -1);
    assert_false(rundir_is_ours(&e, &rd, true));
    assert_true(exists("/run/r/6.sock"));
    assert_true(exists("/run/gone/6.sock"));
    close(other);
    close(sock);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_made_and_used, make_root, remove_root),
        cmocka_unit_test_setup_teardown(test_narrow_umask, make_root, remove_root),
        cmocka_unit_test_setup_teardown(test_modes_refused, make_root, remove_root),
        cmocka_unit_test_setup_teardown(test_not_directories, make_root, remove_root),
        cmocka_unit_test_setup_teardown(test_parents, make_root, remove_root),
        cmocka_unit_test_setup_teardown(test_other_owner, make_root, remove_root),
        cmocka_unit_test_setup_teardown(test_changeable, make_root, remove_root),
        cmocka_unit_test_setup_teardown(test_bind, make_root, remove_root),
        cmocka_unit_test_setup_teardown(test_planted, make_root, remove_root),
        cmocka_unit_test_setup_teardown(test_swap_through_fd, make_root, remove_root),
        cmocka_unit_test_setup_teardown(test_swap_control, make_root, remove_root),
        cmocka_unit_test_setup_teardown(test_replaced_later, make_root, remove_root),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
