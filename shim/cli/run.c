/* run.c: `reshim run [options] -- CMD...`: sets the RESHIM_ variables of
 * the options, checks every RESHIM_ variable with config.c (a bad value:
 * exit 2, nothing runs), puts libreshim.so (absolute path, found beside
 * this binary) first in LD_PRELOAD without dropping what is there or adding
 * it twice, warns when CMD cannot be preloaded (the checks of preload.c,
 * those `reshim doctor CMD` shows: static, musl, Go, setuid or setgid, file
 * capabilities), then execs CMD: same PID, same signals. */
#define _GNU_SOURCE
#include "cli.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "preload.h"

struct opt {
    const char *name;   /* --budget */
    const char *var;    /* RESHIM_MEM_BUDGET */
    const char *value;  /* given, or NULL */
};

static const char *env_get(void *ctx, const char *name)
{
    (void)ctx;
    return getenv(name);
}

struct check_ctx {
    const struct opt *opts;
    int nopts;
};

static void bad_value(void *c, const char *var, const char *value, const char *expected)
{
    const struct check_ctx *x = c;
    for (int i = 0; i < x->nopts; i++)
        if (x->opts[i].value && strcmp(x->opts[i].var, var) == 0) {
            cli_err("run: %s %s: expected %s", x->opts[i].name, value, expected);
            return;
        }
    cli_err("run: %s=%s: expected %s", var, value, expected);
}

/* LD_PRELOAD with lib in front (entries are separated by ':' or ' '); the
 * same value when lib is already there. malloc'd. */
static char *preload_with(const char *cur, const char *lib)
{
    if (!cur || !*cur)
        return strdup(lib);
    char *copy = strdup(cur);
    if (!copy)
        return NULL;
    bool have = false;
    char *save = NULL;
    for (char *tok = strtok_r(copy, ": ", &save); tok && !have; tok = strtok_r(NULL, ": ", &save)) {
        char real[PATH_MAX];
        have = strcmp(tok, lib) == 0 || (realpath(tok, real) && strcmp(real, lib) == 0);
    }
    free(copy);
    char *out = NULL;
    if (have)
        return strdup(cur);
    /* In front: the shim must come before an allocator preloaded with it
     * (jemalloc), so that its malloc wraps the allocator's. */
    if (asprintf(&out, "%s:%s", lib, cur) < 0)
        return NULL;
    return out;
}

/* Warns when CMD cannot be preloaded (preload.c: the checks `reshim doctor
 * CMD` shows line by line), and puts the build of the shim for CMD's C
 * library into lib; returns false when no library must be added at all (one
 * built for another C library would stop CMD). */
static bool check_target(const char *cmd, char *lib, size_t libn)
{
    char path[PATH_MAX];
    if (preload_resolve(cmd, path, sizeof path) != 0)
        return true; /* execvp says so */
    struct shim_info *si = malloc(sizeof *si);
    struct report *r = calloc(1, sizeof *r);
    bool add = true;
    if (si && r) {
        preload_shim_inspect(si);
        preload_check_cmd(r, cmd, si);
        if (r->failed)
            cli_err("warning: %s cannot be preloaded: %s; it runs without the shim's help "
                    "(reshim doctor %s tells more)", cmd, r->reason, cmd);
        add = r->lib[0] != 0;
        if (add)
            snprintf(lib, libn, "%s", r->lib);
    }
    free(si);
    free(r);
    return add;
}

int cmd_run(int argc, char **argv)
{
    struct opt opts[] = {
        {"--budget", "RESHIM_MEM_BUDGET", NULL},
        {"--retries", "RESHIM_RETRIES", NULL},
        {"--log", "RESHIM_LOG", NULL},
        {"--policy", "RESHIM_MEM_POLICY", NULL},
    };
    int nopts = (int)(sizeof opts / sizeof opts[0]);
    static const struct option longopts[] = {
        {"help", no_argument, NULL, 'h'},
        {"budget", required_argument, NULL, 0},
        {"retries", required_argument, NULL, 1},
        {"log", required_argument, NULL, 2},
        {"policy", required_argument, NULL, 3},
        {NULL, 0, NULL, 0},
    };
    /* '+': the options end at CMD; what follows is CMD's. */
    for (int c; (c = cli_getopt(argc, argv, "+h", longopts)) != -1;) {
        if (c == 'h') {
            cli_usage("run", stdout);
            return EXIT_OK;
        }
        if (c < 0 || c >= nopts)
            return EXIT_USAGE;
        opts[c].value = optarg;
    }
    int i = optind;
    if (i >= argc)
        return cli_usage_error("run", "which program? (reshim run [options] -- CMD [ARGS...])");
    char **cmd = argv + i;

    for (int k = 0; k < nopts; k++)
        if (opts[k].value && setenv(opts[k].var, opts[k].value, 1) != 0) {
            cli_err("run: setenv %s: %s", opts[k].var, strerror(errno));
            return EXIT_FAIL;
        }
    struct reshim_config cfg;
    struct check_ctx cc = {opts, nopts};
    int nbad = reshim_config_load(&cfg, env_get, NULL, bad_value, &cc, (unsigned)getuid());
    if (nbad > 0) {
        cli_err("run: not running %s: fix the value%s above (reshim config --check shows every "
                "setting)",
                cmd[0], nbad > 1 ? "s" : "");
        return EXIT_USAGE;
    }

    char lib[PATH_MAX];
    if (preload_find_shim(lib, sizeof lib) != 0) {
        const char *env = getenv("RESHIM_LIBRARY");
        if (env && *env)
            cli_err("run: RESHIM_LIBRARY=%s: %s", env,
                    access(env, R_OK) == 0 ? "not usable" : strerror(errno));
        else
            cli_err("run: libreshim.so not found (looked for ../lib/reshim/libreshim.so and "
                    "libreshim.so beside this reshim); set RESHIM_LIBRARY to its path");
        return EXIT_FAIL;
    }
    if (strpbrk(lib, ": ")) {
        cli_err("run: the library's path %s holds a ':' or a space: LD_PRELOAD cannot name it",
                lib);
        return EXIT_FAIL;
    }
    if (check_target(cmd[0], lib, sizeof lib)) {
        char *pre = preload_with(getenv("LD_PRELOAD"), lib);
        if (!pre || setenv("LD_PRELOAD", pre, 1) != 0) {
            cli_err("run: cannot set LD_PRELOAD: %s", strerror(errno ? errno : ENOMEM));
            free(pre);
            return EXIT_FAIL;
        }
        free(pre);
    }
    fflush(NULL);
    execvp(cmd[0], cmd);
    int e = errno;
    cli_err("run: %s: %s", cmd[0], strerror(e));
    return e == ENOENT ? 127 : 126;
}
