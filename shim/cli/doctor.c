/* doctor.c: `reshim doctor [CMD [ARGS...]]`: can the shim be preloaded here,
 * and into CMD? Without CMD: is the library there (found as `run` finds it:
 * RESHIM_LIBRARY, else <bin>/../lib/reshim/libreshim.so, else libreshim.so
 * beside the binary) and does it load (LD_PRELOAD into /bin/true with
 * LD_BIND_NOW=1 and RESHIM_DISABLE=1); which C library it was built for
 * (DT_NEEDED, and the highest GLIBC_2.x of its verneed against this system's
 * glibc); is the RESHIM_ environment valid (config.c, warn callback); are the
 * run dir and RESHIM_PUSH usable; what LD_PRELOAD already holds.
 *
 * With CMD (looked up in PATH like execvp; extra ARGS are ignored so a whole
 * command line can be pasted): the checks of preload.c, the same that
 * `reshim run` makes before it runs a program.
 *
 * Output (stdout): one line per check, "ok", "warn" or "fail" first
 * (coloured on a terminal unless NO_COLOR), then a verdict line: "CMD can be
 * preloaded" or "CMD cannot be preloaded: <reason>" (without CMD: "the shim
 * can be preloaded here" / "the shim cannot be preloaded: <reason>").
 * --json: one JSON object instead (README: doctor --json).
 * Exit: 0 can, 1 cannot (a CMD not found or not executable included: that is
 * a verdict, not a usage error), 2 usage or a bad RESHIM_ variable (the
 * verdict is still printed). Never runs CMD. */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "config.h"
#include "preload.h"
#include "snapshot.h"

extern char **environ;

/* The highest GLIBC_x.y[.z] named in a file (a libc.so.6 defines one
 * version per release up to its own), into v; "" when none or unreadable. */
static void glibc_of_file(const char *path, char *v, size_t n)
{
    v[0] = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    static char buf[1 << 16];
    size_t keep = 0; /* a name cut at a chunk's end is carried to the next */
    for (;;) {
        ssize_t got = read(fd, buf + keep, sizeof buf - keep);
        if (got <= 0)
            break;
        size_t len = keep + (size_t)got;
        for (size_t i = 0; i + 8 <= len; i++) {
            if (memcmp(buf + i, "GLIBC_2.", 8) != 0)
                continue;
            char cand[32];
            size_t j = 0;
            for (size_t k = i + 6; k < len && j < sizeof cand - 1 &&
                                   ((buf[k] >= '0' && buf[k] <= '9') || buf[k] == '.');
                 k++)
                cand[j++] = buf[k];
            cand[j] = 0;
            if (!v[0] || elf_version_cmp(cand, v) > 0)
                snprintf(v, n, "%s", cand);
        }
        keep = len < 32 ? len : 32;
        memmove(buf, buf + len - keep, keep);
    }
    close(fd);
}

/* This system's glibc version, or NULL when it has none. A CLI linked with
 * glibc asks its own C library (it is the system's); the static one (musl,
 * build/reshim-static) has none of its own to ask, so it reads the version
 * from the first libc.so.6 where the loader of a glibc system keeps it. */
static const char *system_glibc(void)
{
    static char v[64];
    static bool done;
    if (!done) {
        done = true;
        char buf[64];
        size_t k = confstr(_CS_GNU_LIBC_VERSION, buf, sizeof buf);
        if (k > 0 && k <= sizeof buf && !strncmp(buf, "glibc ", 6)) {
            snprintf(v, sizeof v, "%s", buf + 6);
            return v;
        }
        static const char *const dirs[] = {
#if defined(__x86_64__)
            "/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu",
#elif defined(__aarch64__)
            "/lib/aarch64-linux-gnu", "/usr/lib/aarch64-linux-gnu",
#endif
            "/lib64", "/usr/lib64", "/lib", "/usr/lib"};
        for (size_t i = 0; i < sizeof dirs / sizeof dirs[0] && !v[0]; i++) {
            char path[PATH_MAX];
            snprintf(path, sizeof path, "%s/libc.so.6", dirs[i]);
            glibc_of_file(path, v, sizeof v);
        }
    }
    return v[0] ? v : NULL;
}

/* Loads the shim into /bin/true (LD_BIND_NOW=1 resolves every symbol,
 * RESHIM_DISABLE=1 keeps it quiet): 0 loads, -1 with the loader's words. */
static int shim_load_test(const char *shim, char *why, size_t n)
{
    const char *prog = access("/bin/true", X_OK) == 0 ? "/bin/true" : "/usr/bin/true";
    size_t ne = 0;
    while (environ[ne])
        ne++;
    char **env = calloc(ne + 4, sizeof *env);
    char *pre = NULL;
    if (!env || asprintf(&pre, "LD_PRELOAD=%s", shim) < 0) {
        free(env);
        snprintf(why, n, "out of memory");
        return -1;
    }
    size_t k = 0;
    for (size_t i = 0; i < ne; i++)
        if (strncmp(environ[i], "LD_PRELOAD=", 11) && strncmp(environ[i], "LD_BIND_NOW=", 12) &&
            strncmp(environ[i], "RESHIM_", 7))
            env[k++] = environ[i];
    env[k++] = pre;
    env[k++] = (char *)"LD_BIND_NOW=1";
    env[k++] = (char *)"RESHIM_DISABLE=1";
    env[k] = NULL;

    int pfd[2] = {-1, -1};
    int rc = -1;
    posix_spawn_file_actions_t fa;
    if (pipe2(pfd, O_CLOEXEC) != 0) {
        snprintf(why, n, "pipe: %s", strerror(errno));
        goto out;
    }
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, pfd[1], 2);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    pid_t pid;
    char *argv[] = {(char *)prog, NULL};
    int err = posix_spawn(&pid, prog, &fa, NULL, argv, env);
    posix_spawn_file_actions_destroy(&fa);
    close(pfd[1]);
    pfd[1] = -1;
    if (err) {
        snprintf(why, n, "cannot run %s: %s", prog, strerror(err));
        goto out;
    }
    char msg[1024];
    size_t len = 0;
    int64_t t0 = cli_mono_ms();
    for (;;) {
        long left = (long)(5000 - (cli_mono_ms() - t0));
        if (left <= 0)
            break;
        struct pollfd p = {.fd = pfd[0], .events = POLLIN};
        int r = poll(&p, 1, (int)left);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        char tmp[512];
        ssize_t got = read(pfd[0], tmp, sizeof tmp);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            break;
        size_t c = (size_t)got < sizeof msg - 1 - len ? (size_t)got : sizeof msg - 1 - len;
        memcpy(msg + len, tmp, c);
        len += c;
    }
    msg[len] = 0;
    /* stderr closes a moment before the child can be reaped: wait for it,
     * within what is left of the 5 s. */
    int status = 0;
    pid_t w;
    for (;;) {
        w = waitpid(pid, &status, WNOHANG);
        if (w != 0 || cli_mono_ms() - t0 >= 5000)
            break;
        struct timespec nap = {0, 2 * 1000 * 1000};
        nanosleep(&nap, NULL);
    }
    if (w == 0) {
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
        snprintf(why, n, "%s with the shim preloaded did not finish within 5 s", prog);
        goto out;
    }
    char *nl = strchr(msg, '\n');
    if (nl)
        *nl = 0;
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0 && len == 0) {
        rc = 0;
    } else if (len) {
        memcpy(why, msg, len < n ? len + 1 : n); /* cut to n - 1 */
        why[n - 1] = 0;
    } else if (WIFSIGNALED(status)) {
        snprintf(why, n, "%s with the shim preloaded was killed by signal %d", prog,
                 WTERMSIG(status));
    } else {
        snprintf(why, n, "%s with the shim preloaded exited with %d", prog,
                 WEXITSTATUS(status));
    }
out:
    if (pfd[0] >= 0)
        close(pfd[0]);
    free(pre);
    free(env);
    return rc;
}

/* ---- environment checks ------------------------------------------------- */

static const char *env_get(void *ctx, const char *name)
{
    (void)ctx;
    return getenv(name);
}

static void env_warn(void *ctx, const char *var, const char *value, const char *expected)
{
    struct report *r = ctx;
    r->bad_config++;
    report_add(r, L_FAIL, "configuration: %s=\"%s\": expected %s (the default is used)", var, value,
        expected);
}

static void check_config(struct report *r)
{
    struct reshim_config cfg;
    int set = 0;
    for (int v = 0; v < V_COUNT; v++)
        if (getenv(reshim_config_names[v]))
            set++;
    int bad = reshim_config_load(&cfg, env_get, NULL, env_warn, r, (unsigned)getuid());
    if (bad == 0)
        report_add(r, L_OK, "configuration: valid (%d RESHIM_ variable%s set)", set, set == 1 ? "" : "s");
    for (char **e = environ; *e; e++) {
        if (strncmp(*e, "RESHIM_", 7))
            continue;
        size_t len = strcspn(*e, "=");
        bool known = len == 14 && !strncmp(*e, "RESHIM_LIBRARY", 14); /* the CLI's own */
        for (int v = 0; v < V_COUNT && !known; v++)
            known = strlen(reshim_config_names[v]) == len &&
                    !strncmp(*e, reshim_config_names[v], len);
        if (!known)
            report_add(r, L_WARN, "configuration: %.*s is not a reshim setting (a typo?)", (int)len, *e);
    }
    if (cfg.disable)
        report_add(r, L_WARN, "configuration: RESHIM_DISABLE=1: the shim passes every call through");

    struct stat st;
    if (lstat(cfg.run_dir, &st) != 0) {
        report_add(r, L_OK, "run dir %s: not there yet (created 0700 by the first shimmed process)",
            cfg.run_dir);
    } else if (S_ISLNK(st.st_mode) || !S_ISDIR(st.st_mode)) {
        report_add(r, L_WARN, "run dir %s: not a directory (stats sockets fall back to the abstract "
            "namespace)", cfg.run_dir);
    } else if (st.st_uid != getuid() || (st.st_mode & 077)) {
        report_add(r, L_WARN, "run dir %s: owner %u mode %03o, not yours with 0700 (stats sockets fall "
            "back to the abstract namespace)", cfg.run_dir, (unsigned)st.st_uid,
            (unsigned)(st.st_mode & 0777));
    } else {
        report_add(r, L_OK, "run dir %s", cfg.run_dir);
    }
    if (cfg.push[0]) {
        if (stat(cfg.push, &st) != 0)
            report_add(r, L_WARN, "RESHIM_PUSH=%s: nothing there yet (start `reshim collect --listen "
                "%s`)", cfg.push, cfg.push);
        else if (!S_ISSOCK(st.st_mode))
            report_add(r, L_WARN, "RESHIM_PUSH=%s: not a socket", cfg.push);
        else
            report_add(r, L_OK, "RESHIM_PUSH=%s: a socket", cfg.push);
    }
}

static bool same_file(const char *a, const char *b)
{
    struct stat sa, sb;
    return stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev &&
           sa.st_ino == sb.st_ino;
}

static void check_ld_preload(struct report *r, const struct shim_info *si)
{
    const char *lp = getenv("LD_PRELOAD");
    if (!lp || !*lp) {
        report_add(r, L_OK, "LD_PRELOAD: not set here");
        return;
    }
    char *copy = strdup(lp);
    if (!copy)
        return;
    bool has_shim = false;
    char *save = NULL;
    for (char *tok = strtok_r(copy, ": ", &save); tok; tok = strtok_r(NULL, ": ", &save)) {
        const char *base = strrchr(tok, '/');
        base = base ? base + 1 : tok;
        bool is_shim = !strcmp(base, "libreshim.so") || (si->found && same_file(tok, si->path));
        has_shim |= is_shim;
        if (!strchr(tok, '/'))
            report_add(r, L_WARN, "LD_PRELOAD entry %s is not an absolute path (searched in the "
                "loader's path; ignored for setuid programs)", tok);
        else if (access(tok, R_OK) != 0)
            report_add(r, L_WARN, "LD_PRELOAD entry %s: %s (the loader skips it with an error "
                "line)", tok, strerror(errno));
        else if (is_shim && si->found && !same_file(tok, si->path))
            report_add(r, L_WARN, "LD_PRELOAD holds another copy of the shim: %s (this reshim uses "
                "%s)", tok, si->path);
    }
    free(copy);
    if (has_shim)
        report_add(r, L_OK, "LD_PRELOAD=%s: holds the shim (programs started from here are shimmed)",
            lp);
    else
        report_add(r, L_OK, "LD_PRELOAD=%s: without the shim (`reshim run` appends it)", lp);
}

static void check_shim(struct report *r, struct shim_info *si, bool load)
{
    preload_shim_inspect(si);
    const char *env = getenv("RESHIM_LIBRARY");
    if (!si->found) {
        if (env && *env)
            report_fail(r, "libreshim.so not found", "library: RESHIM_LIBRARY=%s: %s", env,
                     access(env, R_OK) == 0 ? "not usable" : strerror(errno));
        else
            report_fail(r, "libreshim.so not found",
                     "library: not found (looked for ../lib/reshim/libreshim.so and "
                     "libreshim.so relative to this reshim binary; RESHIM_LIBRARY overrides)");
        return;
    }
    report_add(r, L_OK, "library: %s%s", si->path, env && *env ? " (RESHIM_LIBRARY)" : "");
    if (!si->elf_ok) {
        report_fail(r, "libreshim.so is not a valid ELF shared object", "library: %s is not a "
                 "valid ELF shared object", si->path);
        return;
    }
    const char *sys = system_glibc();
    if (si->libc && !strcmp(si->libc, "glibc")) {
        if (!si->glibc_max[0]) {
            report_add(r, L_OK, "library built for glibc");
        } else if (!sys) {
            report_fail(r, "libreshim.so was built for glibc; this system's C library is not glibc",
                     "library built for glibc (needs %s); this system has no glibc",
                     si->glibc_max);
        } else if (elf_version_cmp(si->glibc_max + 6, sys) > 0) {
            char reason[LINE_MAX_LEN];
            snprintf(reason, sizeof reason, "libreshim.so needs %s, this system has glibc %s",
                     si->glibc_max, sys);
            report_fail(r, reason, "library built for glibc, needs %s; this system has glibc %s "
                     "(too old)", si->glibc_max, sys);
        } else {
            report_add(r, L_OK, "library built for glibc, needs %s; this system has glibc %s",
                si->glibc_max, sys);
        }
    } else if (si->libc) {
        report_add(r, sys ? L_WARN : L_OK, "library built for %s%s", si->libc,
            sys ? "; this system's programs mostly use glibc" : "");
    } else {
        report_add(r, L_WARN, "library: its C library could not be told (no libc in DT_NEEDED)");
    }
    if (!load)
        return;
    char why[LINE_MAX_LEN - 64];
    if (shim_load_test(si->path, why, sizeof why) == 0) {
        report_add(r, L_OK, "library loads (preloaded into /bin/true with LD_BIND_NOW=1)");
    } else {
        char reason[LINE_MAX_LEN];
        snprintf(reason, sizeof reason, "libreshim.so does not load: %s", why);
        report_fail(r, reason, "library does not load: %s", why);
    }
}

static void usage(FILE *f)
{
    fprintf(f, "usage: reshim doctor [--json] [CMD [ARGS...]]\n"
               "  without CMD: is the shim library there and loadable, which C library it\n"
               "  needs, is the RESHIM_ environment valid, what LD_PRELOAD holds\n"
               "  with CMD (a path, or a name looked up in PATH): can the shim be preloaded\n"
               "  into it (static, musl, Go, setuid/setgid, file capabilities, #! scripts)\n"
               "  --json: one JSON object: command, preloadable, reason, bad_config,\n"
               "  library, checks (a list of {level, text}), verdict\n"
               "exit: 0 it can, 1 it cannot, 2 usage or a bad RESHIM_ variable\n");
}

/* The report as one JSON object (keys in the usage above). */
static void print_json(const struct report *r, const char *cmd, const struct shim_info *si,
                       const char *verdict)
{
    size_t cap = 1024 + (size_t)(r->n + 4) * (LINE_MAX_LEN * 6 + 32) + 6 * PATH_MAX;
    char *mem = malloc(cap);
    if (!mem) {
        cli_err("doctor: out of memory");
        return;
    }
    static const char *const word[] = {"ok", "warn", "fail"};
    struct sbuf b;
    sb_init(&b, mem, cap);
    sb_str(&b, "{\"command\":");
    if (cmd)
        sb_json_str(&b, cmd);
    else
        sb_str(&b, "null");
    sb_str(&b, r->failed ? ",\"preloadable\":false,\"reason\":" : ",\"preloadable\":true,\"reason\":");
    if (r->failed)
        sb_json_str(&b, r->reason);
    else
        sb_str(&b, "null");
    sb_str(&b, ",\"bad_config\":");
    sb_u64(&b, (uint64_t)r->bad_config);
    sb_str(&b, ",\"library\":");
    if (si->found)
        sb_json_str(&b, si->path);
    else
        sb_str(&b, "null");
    sb_str(&b, ",\"checks\":[");
    for (int i = 0; i < r->n; i++) {
        sb_str(&b, i ? ",{\"level\":\"" : "{\"level\":\"");
        sb_str(&b, word[r->lv[i]]);
        sb_str(&b, "\",\"text\":");
        sb_json_str(&b, r->text[i]);
        sb_str(&b, "}");
    }
    sb_str(&b, "],\"verdict\":");
    sb_json_str(&b, verdict);
    sb_str(&b, "}\n");
    fwrite(b.p, 1, b.len, stdout);
    free(mem);
}

int cmd_doctor(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"help", no_argument, NULL, 'h'},
        {"json", no_argument, NULL, 'j'},
        {NULL, 0, NULL, 0},
    };
    bool json = false;
    for (int c; (c = cli_getopt(argc, argv, "+h", longopts)) != -1;) {
        if (c == 'h') {
            usage(stdout);
            return EXIT_OK;
        }
        if (c != 'j')
            return EXIT_USAGE;
        json = true;
    }
    const char *cmd = optind < argc ? argv[optind] : NULL;
    if (cmd && !*cmd) {
        fprintf(stderr, "reshim: doctor: empty command name\n");
        return EXIT_USAGE;
    }
    struct report *r = calloc(1, sizeof *r);
    if (!r) {
        fprintf(stderr, "reshim: doctor: out of memory\n");
        return EXIT_FAIL;
    }
    struct shim_info si;
    check_shim(r, &si, true);
    check_config(r);
    check_ld_preload(r, &si);
    if (cmd)
        preload_check_cmd(r, cmd, &si);
    const char *what = cmd ? cmd : "the shim";
    char verdict[LINE_MAX_LEN + PATH_MAX];
    if (r->failed)
        snprintf(verdict, sizeof verdict, "%s cannot be preloaded: %s", what, r->reason);
    else if (r->bad_config)
        snprintf(verdict, sizeof verdict,
                 "%s can be preloaded%s, but %d RESHIM_ setting%s invalid (%s used instead)",
                 what, cmd ? "" : " here", r->bad_config, r->bad_config == 1 ? " is" : "s are",
                 r->bad_config == 1 ? "its default is" : "their defaults are");
    else
        snprintf(verdict, sizeof verdict, "%s can be preloaded%s", what, cmd ? "" : " here");
    if (json) {
        print_json(r, cmd, &si, verdict);
    } else {
        report_print(r, stdout);
        printf("%s\n", verdict);
    }
    fflush(stdout);
    int rc = r->bad_config ? EXIT_USAGE : r->failed ? EXIT_FAIL : EXIT_OK;
    free(r);
    return rc;
}
