/* run.c: `reshim run [options] -- CMD...`: sets the RESHIM_ variables of
 * the options, checks every RESHIM_ variable with config.c (a bad value:
 * exit 2, nothing runs), puts libreshim.so (absolute path, found beside
 * this binary) first in LD_PRELOAD without dropping what is there or adding
 * it twice, warns when CMD cannot be preloaded (a small check: static, setuid
 * or setgid, file capabilities, musl; `reshim doctor` does it in depth),
 * then execs CMD: same PID, same signals. */
#define _GNU_SOURCE
#include "cli.h"

#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "config.h"

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

/* The library: RESHIM_LIBRARY, else ../lib/reshim/libreshim.so from this binary
 * (installed), else libreshim.so beside it (build/). Absolute; 0 or -1. */
static int find_lib(char *out, size_t n)
{
    const char *env = getenv("RESHIM_LIBRARY");
    char exe[PATH_MAX], cand[PATH_MAX + 64];
    if (env && *env) {
        if (!realpath(env, out) || access(out, R_OK) != 0) {
            cli_err("run: RESHIM_LIBRARY=%s: %s", env, strerror(errno));
            return -1;
        }
        return 0;
    }
    ssize_t k = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (k <= 0) {
        cli_err("run: cannot find this program's path (/proc/self/exe): %s", strerror(errno));
        return -1;
    }
    exe[k] = 0;
    char *slash = strrchr(exe, '/');
    if (slash)
        *slash = 0;
    static const char *const rel[] = {"/../lib/reshim/libreshim.so", "/libreshim.so"};
    for (size_t i = 0; i < sizeof rel / sizeof rel[0]; i++) {
        snprintf(cand, sizeof cand, "%s%s", exe, rel[i]);
        if (access(cand, R_OK) == 0 && realpath(cand, out) && strlen(out) < n)
            return 0;
    }
    cli_err("run: libreshim.so not found (looked for %s/../lib/reshim/libreshim.so and "
            "%s/libreshim.so); set RESHIM_LIBRARY to its path",
            exe, exe);
    return -1;
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

/* CMD as execvp would find it, into out; -1 when not found. */
static int resolve_cmd(const char *cmd, char *out, size_t n)
{
    if (strchr(cmd, '/')) {
        snprintf(out, n, "%s", cmd);
        return access(out, F_OK);
    }
    const char *path = getenv("PATH");
    if (!path)
        path = "/usr/local/bin:/usr/bin:/bin";
    for (const char *p = path;; p++) {
        const char *e = strchr(p, ':');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (len == 0)
            snprintf(out, n, "./%s", cmd);
        else
            snprintf(out, n, "%.*s/%s", (int)len, p, cmd);
        struct stat st;
        if (stat(out, &st) == 0 && S_ISREG(st.st_mode) && access(out, X_OK) == 0)
            return 0;
        if (!e)
            return -1;
        p = e;
    }
}

enum elf_kind { ELF_DYNAMIC, ELF_STATIC, ELF_MUSL, ELF_OTHER };

/* Reads the ELF interpreter (PT_INTERP) of an executable. */
static enum elf_kind elf_interp(int fd, char *interp, size_t n)
{
    unsigned char id[EI_NIDENT];
    interp[0] = 0;
    if (pread(fd, id, sizeof id, 0) != (ssize_t)sizeof id || memcmp(id, ELFMAG, SELFMAG) != 0)
        return ELF_OTHER;
    if (id[EI_DATA] != (__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__ ? ELFDATA2LSB : ELFDATA2MSB))
        return ELF_OTHER;
    uint64_t phoff, phnum, phentsize;
    bool is64 = id[EI_CLASS] == ELFCLASS64;
    if (is64) {
        Elf64_Ehdr h;
        if (pread(fd, &h, sizeof h, 0) != (ssize_t)sizeof h)
            return ELF_OTHER;
        phoff = h.e_phoff, phnum = h.e_phnum, phentsize = h.e_phentsize;
    } else if (id[EI_CLASS] == ELFCLASS32) {
        Elf32_Ehdr h;
        if (pread(fd, &h, sizeof h, 0) != (ssize_t)sizeof h)
            return ELF_OTHER;
        phoff = h.e_phoff, phnum = h.e_phnum, phentsize = h.e_phentsize;
    } else {
        return ELF_OTHER;
    }
    if (phnum > 4096 || phentsize < (is64 ? sizeof(Elf64_Phdr) : sizeof(Elf32_Phdr)))
        return ELF_OTHER;
    for (uint64_t i = 0; i < phnum; i++) {
        uint64_t type, off, size;
        off_t at = (off_t)(phoff + i * phentsize);
        if (is64) {
            Elf64_Phdr ph;
            if (pread(fd, &ph, sizeof ph, at) != (ssize_t)sizeof ph)
                return ELF_OTHER;
            type = ph.p_type, off = ph.p_offset, size = ph.p_filesz;
        } else {
            Elf32_Phdr ph;
            if (pread(fd, &ph, sizeof ph, at) != (ssize_t)sizeof ph)
                return ELF_OTHER;
            type = ph.p_type, off = ph.p_offset, size = ph.p_filesz;
        }
        if (type != PT_INTERP)
            continue;
        if (size >= n)
            size = n - 1;
        ssize_t got = pread(fd, interp, size, (off_t)off);
        interp[got > 0 ? got : 0] = 0;
        return strstr(interp, "musl") ? ELF_MUSL : ELF_DYNAMIC;
    }
    return ELF_STATIC;
}

bool cli_lib_is_musl(const char *lib)
{
    const char *base = strrchr(lib, '/');
    base = base ? base + 1 : lib;
    if (strstr(base, "musl"))
        return true;
    size_t dlen = (size_t)(base - lib);
    return dlen >= 6 && strncmp(base - 6, "/musl/", 6) == 0;
}

bool cli_lib_for(char *lib, size_t n, bool musl)
{
    if (cli_lib_is_musl(lib) == musl)
        return true;
    char dir[PATH_MAX], cand[PATH_MAX + 32];
    snprintf(dir, sizeof dir, "%s", lib);
    char *slash = strrchr(dir, '/');
    if (!slash)
        return false;
    *slash = 0;
    if (musl) {
        snprintf(cand, sizeof cand, "%s/musl/libreshim.so", dir);
    } else {
        slash = strrchr(dir, '/'); /* DIR/musl -> DIR */
        if (!slash)
            return false;
        *slash = 0;
        snprintf(cand, sizeof cand, "%s/libreshim.so", dir);
    }
    if (access(cand, R_OK) != 0 || cli_lib_is_musl(cand) != musl || strlen(cand) >= n)
        return false;
    snprintf(lib, n, "%s", cand);
    return true;
}

/* Warns when CMD cannot be preloaded, and picks the library for its C
 * library (lib: glibc's or musl's build, the one beside the other); returns
 * false when no library must be added at all (one built for another C
 * library would stop CMD). */
static bool check_target(const char *cmd, char *lib, size_t libn)
{
    char path[PATH_MAX], line[PATH_MAX];
    if (resolve_cmd(cmd, path, sizeof path) != 0)
        return true; /* execvp says so */
    for (int depth = 0; depth < 2; depth++) {
        struct stat st;
        if (stat(path, &st) != 0)
            return true;
        if (st.st_mode & (S_ISUID | S_ISGID))
            cli_err("warning: %s is set%s: the loader ignores LD_PRELOAD for it, so it runs "
                    "without the shim",
                    path, st.st_mode & S_ISUID ? "uid" : "gid");
        if (getxattr(path, "security.capability", NULL, 0) > 0)
            cli_err("warning: %s has file capabilities: the loader ignores LD_PRELOAD for it, so "
                    "it runs without the shim",
                    path);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            return true;
        char head[2] = {0};
        if (pread(fd, head, 2, 0) == 2 && head[0] == '#' && head[1] == '!') {
            /* A script: check its interpreter instead (one level). */
            ssize_t k = pread(fd, line, sizeof line - 1, 2);
            close(fd);
            if (k <= 0)
                return true;
            line[k] = 0;
            line[strcspn(line, "\n")] = 0;
            char *p = line + strspn(line, " \t");
            p[strcspn(p, " \t")] = 0;
            if (!*p)
                return true;
            snprintf(path, sizeof path, "%s", p);
            continue;
        }
        char interp[256];
        enum elf_kind k = elf_interp(fd, interp, sizeof interp);
        close(fd);
        if (k == ELF_STATIC) {
            cli_err("warning: %s is statically linked (no ELF interpreter): nothing can be "
                    "preloaded into it, so it runs without the shim",
                    path);
            return true;
        }
        bool musl = k == ELF_MUSL;
        if (!cli_lib_for(lib, libn, musl)) {
            cli_err("warning: %s uses the %s C library (%s) and %s is built for %s (no %s build "
                    "beside it): preloading it would stop the program, so it runs without the "
                    "shim",
                    path, musl ? "musl" : "GNU", interp, lib, musl ? "glibc" : "musl",
                    musl ? "musl/libreshim.so" : "glibc");
            return false;
        }
        return true;
    }
    return true;
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
    int i = 0;
    while (i < argc) {
        const char *a = argv[i];
        if (strcmp(a, "--") == 0) {
            i++;
            break;
        }
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            cli_usage("run", stdout);
            return EXIT_OK;
        }
        if (a[0] != '-')
            break;
        bool known = false;
        for (int k = 0; k < nopts && !known; k++) {
            size_t len = strlen(opts[k].name);
            if (strncmp(a, opts[k].name, len) != 0 || (a[len] && a[len] != '='))
                continue;
            known = true;
            if (a[len] == '=') {
                opts[k].value = a + len + 1;
            } else if (i + 1 < argc) {
                opts[k].value = argv[++i];
            } else {
                return cli_usage_error("run", "%s needs a value", opts[k].name);
            }
        }
        if (!known)
            return cli_usage_error("run", "unknown option '%s'", a);
        i++;
    }
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
    if (find_lib(lib, sizeof lib) != 0)
        return EXIT_FAIL;
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
