/* preload.c: can the shim be preloaded into a program? The one check that
 * `reshim run` (a warning, and which build to preload) and `reshim doctor`
 * (every line, or JSON) share: where the shim is and what it is built for;
 * the program found as execvp finds it; its ELF file (elf.c): class and
 * machine against the shim's, static or dynamic (PT_INTERP), glibc or musl
 * (the interpreter's name), Go (.go.buildinfo/.gopclntab/.gosymtab/
 * .note.go.buildid sections, or a "Go" build-ID note: its net package makes
 * raw system calls); setuid/setgid bits and file capabilities
 * (security.capability), judged as the kernel does: secure-execution only
 * when the exec changes the uid or gid, or raises capabilities for a non-root
 * user, and never on a nosuid mount; #! scripts, followed to their
 * interpreter (through env too) up to the kernel's nesting depth. Reads
 * files only: never runs the program, prints nothing. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/types.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "cli.h"
#include "preload.h"

/* ---- the report: one line per check, the first failure is the verdict --- */

void report_add(struct report *r, enum level lv, const char *fmt, ...)
{
    if (r->n >= REPORT_LINES)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->text[r->n], LINE_MAX_LEN, fmt, ap);
    va_end(ap);
    r->lv[r->n++] = lv;
}

void report_fail(struct report *r, const char *reason, const char *fmt, ...)
{
    if (r->n < REPORT_LINES) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(r->text[r->n], LINE_MAX_LEN, fmt, ap);
        va_end(ap);
        r->lv[r->n++] = L_FAIL;
    }
    if (!r->failed) {
        snprintf(r->reason, sizeof r->reason, "%s", reason);
        r->failed = true;
    }
}

void report_print(const struct report *r, FILE *f)
{
    bool color = cli_color(f);
    static const char *const word[] = {"ok", "warn", "fail"};
    static const char *const col[] = {"\033[32m", "\033[33m", "\033[31m"};
    for (int i = 0; i < r->n; i++) {
        if (color)
            fprintf(f, "%s%-4s\033[0m  %s\n", col[r->lv[i]], word[r->lv[i]], r->text[i]);
        else
            fprintf(f, "%-4s  %s\n", word[r->lv[i]], r->text[i]);
    }
}

/* ---- the shim library ---------------------------------------------------- */

int preload_find_shim(char *out, size_t n)
{
    const char *env = getenv("RESHIM_LIBRARY"); /* `run` honours it first, so do we */
    if (env && *env) {
        char real[PATH_MAX];
        if (!realpath(env, real) || access(real, R_OK) != 0 || strlen(real) >= n)
            return -1;
        memcpy(out, real, strlen(real) + 1);
        return 0;
    }
    char exe[PATH_MAX];
    ssize_t k = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (k <= 0)
        return -1;
    exe[k] = 0;
    char *slash = strrchr(exe, '/');
    if (!slash)
        return -1;
    *slash = 0;
    const char *const rel[] = {"../lib/reshim/libreshim.so", "libreshim.so"};
    for (size_t i = 0; i < sizeof rel / sizeof rel[0]; i++) {
        char cand[PATH_MAX + 32], real[PATH_MAX];
        snprintf(cand, sizeof cand, "%s/%s", exe, rel[i]);
        if (access(cand, R_OK) == 0 && realpath(cand, real)) {
            if (strlen(real) >= n)
                return -1;
            memcpy(out, real, strlen(real) + 1);
            return 0;
        }
    }
    return -1;
}

void preload_shim_inspect(struct shim_info *si)
{
    memset(si, 0, sizeof *si);
    if (preload_find_shim(si->path, sizeof si->path) != 0)
        return;
    si->found = true;
    int fd = open(si->path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0)
        return;
    struct elf e;
    char why[160];
    if (fstat(fd, &st) == 0 && elf_open(&e, fd, (uint64_t)st.st_size, why, sizeof why) == 0) {
        struct elf_facts *f = calloc(1, sizeof *f);
        if (f) {
            elf_facts(&e, f);
            si->elf_ok = true;
            si->is64 = e.is64;
            si->machine = e.machine;
            si->libc = elf_needed_libc(f);
            snprintf(si->glibc_max, sizeof si->glibc_max, "%s", f->glibc_max);
            free(f);
        }
    }
    close(fd);
}

/* execvp's lookup: 0 with the path in out; -1 with errno ENOENT (nowhere)
 * or EACCES (found, not executable). */
int preload_resolve(const char *cmd, char *out, size_t n)
{
    if (strchr(cmd, '/')) {
        if (strlen(cmd) >= n) {
            errno = ENAMETOOLONG;
            return -1;
        }
        memcpy(out, cmd, strlen(cmd) + 1);
        return 0;
    }
    const char *path = getenv("PATH");
    if (!path)
        path = "/usr/local/bin:/usr/bin:/bin";
    bool seen_noexec = false;
    char noexec[PATH_MAX] = "";
    for (const char *p = path;; p++) {
        const char *end = strchrnul(p, ':');
        char cand[PATH_MAX];
        int len = end == p ? snprintf(cand, sizeof cand, "%s", cmd)
                           : snprintf(cand, sizeof cand, "%.*s/%s", (int)(end - p), p, cmd);
        struct stat st;
        if (len > 0 && (size_t)len < sizeof cand && stat(cand, &st) == 0 && S_ISREG(st.st_mode)) {
            if (access(cand, X_OK) == 0) {
                if ((size_t)len >= n) {
                    errno = ENAMETOOLONG;
                    return -1;
                }
                memcpy(out, cand, (size_t)len + 1);
                return 0;
            }
            if (!seen_noexec)
                snprintf(noexec, sizeof noexec, "%s", cand);
            seen_noexec = true;
        }
        if (!*end)
            break;
        p = end;
    }
    if (seen_noexec) {
        snprintf(out, n, "%s", noexec);
        errno = EACCES;
    } else {
        errno = ENOENT;
    }
    return -1;
}

static const char *cap_name(int bit)
{
    static const char *const names[] = {
        "cap_chown", "cap_dac_override", "cap_dac_read_search", "cap_fowner", "cap_fsetid",
        "cap_kill", "cap_setgid", "cap_setuid", "cap_setpcap", "cap_linux_immutable",
        "cap_net_bind_service", "cap_net_broadcast", "cap_net_admin", "cap_net_raw",
        "cap_ipc_lock", "cap_ipc_owner", "cap_sys_module", "cap_sys_rawio", "cap_sys_chroot",
        "cap_sys_ptrace", "cap_sys_pacct", "cap_sys_admin", "cap_sys_boot", "cap_sys_nice",
        "cap_sys_resource", "cap_sys_time", "cap_sys_tty_config", "cap_mknod", "cap_lease",
        "cap_audit_write", "cap_audit_control", "cap_setfcap", "cap_mac_override",
        "cap_mac_admin", "cap_syslog", "cap_wake_alarm", "cap_block_suspend", "cap_audit_read",
        "cap_perfmon", "cap_bpf", "cap_checkpoint_restore"};
    return bit >= 0 && (size_t)bit < sizeof names / sizeof names[0] ? names[bit] : NULL;
}

/* The file capabilities as "cap_net_raw,cap_net_admin=ep" into buf; false
 * when there are none. */
static bool file_caps(const char *path, char *buf, size_t n)
{
    unsigned char x[32];
    ssize_t k = getxattr(path, "security.capability", x, sizeof x);
    if (k < 8)
        return false;
    uint32_t magic = (uint32_t)x[0] | (uint32_t)x[1] << 8 | (uint32_t)x[2] << 16 |
                     (uint32_t)x[3] << 24;
    uint32_t rev = magic & 0xff000000u;
    bool eff = magic & 1;
    uint64_t perm = (uint32_t)x[4] | (uint32_t)x[5] << 8 | (uint32_t)x[6] << 16 |
                    (uint32_t)x[7] << 24;
    if (rev != 0x01000000u && k >= 20)
        perm |= (uint64_t)((uint32_t)x[12] | (uint32_t)x[13] << 8 | (uint32_t)x[14] << 16 |
                           (uint32_t)x[15] << 24) << 32;
    size_t len = 0;
    buf[0] = 0;
    for (int b = 0; b < 64 && len + 40 < n; b++) {
        if (!(perm >> b & 1))
            continue;
        const char *nm = cap_name(b);
        int w = nm ? snprintf(buf + len, n - len, "%s%s", len ? "," : "", nm)
                   : snprintf(buf + len, n - len, "%scap_%d", len ? "," : "", b);
        if (w > 0)
            len += (size_t)w;
    }
    if (!len)
        snprintf(buf, n, "(none permitted)");
    else
        snprintf(buf + len, n - len, "=%s", eff ? "ep" : "p");
    return true;
}

static void check_privilege(struct report *r, const char *path, const struct stat *st)
{
    struct statvfs vfs;
    bool nosuid = statvfs(path, &vfs) == 0 && (vfs.f_flag & ST_NOSUID);
    bool any = false;
    uid_t uid = getuid();
    gid_t gid = getgid();
    if (st->st_mode & S_ISUID) {
        any = true;
        if (nosuid)
            report_add(r, L_OK, "setuid bit ignored: the file system is mounted nosuid");
        else if (st->st_uid == uid)
            report_add(r, L_WARN, "setuid (owner uid %u, you): preloaded only when run by uid %u; for "
                "any other user the loader drops LD_PRELOAD (secure-execution)",
                (unsigned)st->st_uid, (unsigned)st->st_uid);
        else {
            char reason[LINE_MAX_LEN];
            snprintf(reason, sizeof reason, "setuid (owner uid %u): the loader drops LD_PRELOAD",
                     (unsigned)st->st_uid);
            report_fail(r, reason, "setuid, owner uid %u: run by you (uid %u) it is secure-execution, "
                     "the loader drops LD_PRELOAD", (unsigned)st->st_uid, (unsigned)uid);
        }
    }
    if ((st->st_mode & S_ISGID) && (st->st_mode & S_IXGRP)) {
        any = true;
        if (nosuid)
            report_add(r, L_OK, "setgid bit ignored: the file system is mounted nosuid");
        else if (st->st_gid == gid)
            report_add(r, L_WARN, "setgid (group %u, yours): preloaded only for members whose real "
                "group is %u; for others the loader drops LD_PRELOAD", (unsigned)st->st_gid,
                (unsigned)st->st_gid);
        else {
            char reason[LINE_MAX_LEN];
            snprintf(reason, sizeof reason, "setgid (group %u): the loader drops LD_PRELOAD",
                     (unsigned)st->st_gid);
            report_fail(r, reason, "setgid, group %u: run by you (gid %u) it is secure-execution, "
                     "the loader drops LD_PRELOAD", (unsigned)st->st_gid, (unsigned)gid);
        }
    }
    char caps[LINE_MAX_LEN - 120];
    if (file_caps(path, caps, sizeof caps)) {
        any = true;
        if (nosuid)
            report_add(r, L_OK, "file capabilities %s ignored: the file system is mounted nosuid", caps);
        else if (uid == 0)
            report_add(r, L_WARN, "file capabilities %s: preloaded when root runs it; for any other "
                "user the loader drops LD_PRELOAD (secure-execution)", caps);
        else {
            char reason[LINE_MAX_LEN];
            snprintf(reason, sizeof reason, "file capabilities (%s): the loader drops LD_PRELOAD",
                     caps);
            report_fail(r, reason, "file capabilities %s: secure-execution, the loader drops "
                     "LD_PRELOAD", caps);
        }
    }
    if (!any)
        report_add(r, L_OK, "no setuid/setgid bit, no file capabilities");
}

static void check_elf(struct report *r, const char *path, int fd, const struct stat *st,
                      const struct shim_info *si)
{
    uint64_t size = (uint64_t)st->st_size;
    struct elf e;
    char why[200];
    if (elf_open(&e, fd, size, why, sizeof why) != 0) {
        char reason[LINE_MAX_LEN];
        snprintf(reason, sizeof reason, "not a valid ELF executable (%s)", why);
        report_fail(r, reason, "%s: %s", path, why);
        return;
    }
    struct elf_facts *f = calloc(1, sizeof *f);
    if (!f) {
        report_fail(r, "out of memory", "out of memory");
        return;
    }
    elf_facts(&e, f);
    const char *mach = elf_machine_name(e.machine);
    char mbuf[32];
    if (!mach) {
        snprintf(mbuf, sizeof mbuf, "machine %u", e.machine);
        mach = mbuf;
    }
    report_add(r, L_OK, "%s: ELF %d-bit %s %s %s", path, e.is64 ? 64 : 32, e.be ? "MSB" : "LSB", mach,
        elf_type_name(e.type, f->pie || (e.type == 3 && f->has_interp)));
    if (e.type != 2 && e.type != 3) {
        report_fail(r, "not an executable", "%s is a %s, not an executable", path,
                 elf_type_name(e.type, false));
        goto out;
    }
    if (f->cut_segment) {
        char reason[LINE_MAX_LEN];
        snprintf(reason, sizeof reason, "not a valid ELF executable (truncated: segment %d lies "
                 "past the end of the file)", f->cut_segment - 1);
        report_fail(r, reason, "%s: truncated or corrupt: loadable segment %d lies past the end of "
                 "the file (%llu bytes)", path, f->cut_segment - 1, (unsigned long long)size);
        goto out;
    }
    check_privilege(r, path, st);
    if (si->elf_ok && (e.is64 != si->is64 || e.machine != si->machine)) {
        const char *sm = elf_machine_name(si->machine);
        char reason[LINE_MAX_LEN];
        snprintf(reason, sizeof reason, "a %d-bit %s program; the shim is %d-bit %s",
                 e.is64 ? 64 : 32, mach, si->is64 ? 64 : 32, sm ? sm : "?");
        report_fail(r, reason, "%s; the loader ignores a preload of another class or machine "
                 "(\"wrong ELF class\")", reason);
    }
    if (!f->has_interp) {
        bool spie = f->has_dynamic && e.type == 3;
        report_fail(r, spie ? "statically linked (static-pie): no dynamic loader runs, "
                 "nothing is preloaded" : "statically linked: no dynamic loader runs, nothing "
                 "is preloaded",
                 "statically linked (%sno program interpreter): nothing is preloaded",
                 spie ? "static-pie, " : "");
    } else {
        const char *libc = elf_interp_libc(f->interp);
        bool interp_here = access(f->interp, F_OK) == 0;
        const char *shim_libc = si->libc ? si->libc : "glibc";
        char other[PATH_MAX];
        if (!libc) {
            report_add(r, L_WARN, "dynamically linked, interpreter %s: an unknown C library", f->interp);
        } else if (strcmp(libc, shim_libc) && si->found &&
                   (!strcmp(libc, "musl") || !strcmp(libc, "glibc")) &&
                   cli_lib_for(strcpy(other, si->path), sizeof other, !strcmp(libc, "musl")) &&
                   strcmp(other, si->path)) {
            /* `reshim run` and reshim-run take the build beside this one. */
            snprintf(r->lib, sizeof r->lib, "%s", other);
            report_add(r, L_OK, "dynamically linked, interpreter %s (%s): `reshim run` and reshim-run "
                "preload the %s build, %s", f->interp, libc, libc, other);
            if (!strcmp(libc, "musl"))
                report_add(r, L_OK, "on musl: no trim (musl's allocator returns freed memory itself "
                    "and has no trim entry point; the trim step does nothing, stats mem.trim "
                    "\"none\"); retries, serve-stale DNS, the budget and enforce work; heap "
                    "sampling needs libgcc_s.so.1 where musl's loader finds it");
        } else if (strcmp(libc, shim_libc)) {
            r->lib[0] = 0; /* it would stop the program */
            char reason[LINE_MAX_LEN];
            snprintf(reason, sizeof reason, "built for %s (interpreter %s); the shim is built "
                     "for %s", libc, f->interp, shim_libc);
            report_fail(r, reason, "dynamically linked, interpreter %s (%s): the %s-built shim "
                     "cannot be preloaded into a %s program (it fails to relocate)", f->interp,
                     libc, shim_libc, libc);
        } else {
            report_add(r, L_OK, "dynamically linked, interpreter %s (%s)", f->interp, libc);
        }
        if (!interp_here)
            report_fail(r, "its interpreter is not on this system",
                     "interpreter %s is not on this system: the program cannot run here",
                     f->interp);
    }
    if (f->go) {
        report_fail(r, "a Go program: its net package makes raw system calls, bypassing the C "
                 "library (even when dynamically linked)",
                 "a Go program (%s): Go's net package and runtime make raw system calls, so "
                 "the shim would see no connect and no allocation", f->go_why);
    } else {
        report_add(r, L_OK, "not a Go program");
    }
out:
    free(f);
}

/* Checks the file at path (resolved), following #! up to depth. */
static void check_file(struct report *r, const char *path,
                       const struct shim_info *si, int depth)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (stat(path, &st) != 0) {
        int err = errno;
        const char *why = err == ENOENT    ? "no such file"
                          : err == EACCES  ? "permission denied"
                          : err == ENOTDIR ? "a part of its path is not a directory"
                                           : strerror(err);
        report_fail(r, why, "%s: %s", path, why);
        goto out;
    }
    if (S_ISDIR(st.st_mode)) {
        report_fail(r, "a directory", "%s is a directory", path);
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        report_fail(r, "not a regular file", "%s is not a regular file", path);
        goto out;
    }
    if (access(path, X_OK) != 0 || !(st.st_mode & 0111)) {
        report_fail(r, "not executable", "%s is not executable (mode %03o)", path,
                 (unsigned)(st.st_mode & 0777));
        goto out;
    }
    if (fd < 0) {
        char reason[LINE_MAX_LEN];
        snprintf(reason, sizeof reason, "cannot read %s to check it: %s", path, strerror(errno));
        report_fail(r, reason, "%s: cannot read it to check: %s", path, strerror(errno));
        goto out;
    }
    unsigned char head[256];
    ssize_t k = pread(fd, head, sizeof head, 0);
    if (k < 0)
        k = 0;
    if (k >= 2 && head[0] == '#' && head[1] == '!') {
        /* The kernel reads at most the first 256 bytes: interpreter and one argument. */
        char line[256];
        size_t len = (size_t)k - 2;
        memcpy(line, head + 2, len);
        line[len] = 0;
        line[strcspn(line, "\n")] = 0;
        char *p = line + strspn(line, " \t");
        char *interp = p;
        p += strcspn(p, " \t");
        char *arg = NULL;
        if (*p) {
            *p++ = 0;
            p += strspn(p, " \t");
            size_t al = strlen(p);
            while (al && (p[al - 1] == ' ' || p[al - 1] == '\t' || p[al - 1] == '\r'))
                p[--al] = 0;
            if (*p)
                arg = p;
        }
        size_t il = strlen(interp);
        while (il && interp[il - 1] == '\r')
            interp[--il] = 0;
        if (!*interp) {
            report_fail(r, "a #! script without an interpreter", "%s: a #! line without an "
                     "interpreter", path);
            goto out;
        }
        if (st.st_mode & (S_ISUID | S_ISGID))
            report_add(r, L_OK, "setuid/setgid bits on a script are ignored by Linux");
        if (depth >= 4) {
            report_fail(r, "#! interpreters nested too deep", "%s: #! interpreters nested deeper "
                     "than the kernel allows", path);
            goto out;
        }
        const char *ib = strrchr(interp, '/');
        ib = ib ? ib + 1 : interp;
        char target[PATH_MAX];
        if (!strcmp(ib, "env") && arg) {
            /* env [-S] [-i] [NAME=VALUE...] PROG: the program env runs. */
            char *a = arg, *prog = NULL, *save = NULL;
            for (char *t = strtok_r(a, " \t", &save); t; t = strtok_r(NULL, " \t", &save)) {
                if (t[0] == '-' || strchr(t, '='))
                    continue;
                prog = t;
                break;
            }
            if (!prog) {
                report_fail(r, "a #!/usr/bin/env line without a program", "%s: #!%s %s names no "
                         "program", path, interp, arg);
                goto out;
            }
            if (preload_resolve(prog, target, sizeof target) != 0) {
                char reason[LINE_MAX_LEN];
                snprintf(reason, sizeof reason, "its interpreter %s is not found in PATH", prog);
                report_fail(r, reason, "%s: a script for %s (through %s), which is not found in "
                         "PATH", path, prog, interp);
                goto out;
            }
            report_add(r, L_OK, "%s: a script: #!%s %s, that is %s", path, interp, prog, target);
        } else {
            snprintf(target, sizeof target, "%s", interp);
            report_add(r, L_OK, "%s: a script for %s%s%s", path, interp, arg ? " " : "", arg ? arg : "");
        }
        close(fd);
        check_file(r, target, si, depth + 1);
        return;
    }
    check_elf(r, path, fd, &st, si);
out:
    if (fd >= 0)
        close(fd);
}

void preload_check_cmd(struct report *r, const char *cmd, const struct shim_info *si)
{
    snprintf(r->lib, sizeof r->lib, "%s", si->found ? si->path : "");
    char path[PATH_MAX];
    if (preload_resolve(cmd, path, sizeof path) != 0) {
        if (errno == EACCES)
            report_fail(r, "not executable", "%s: found as %s, not executable", cmd, path);
        else if (errno == ENAMETOOLONG)
            report_fail(r, "name too long", "%s: name too long", cmd);
        else if (strchr(cmd, '/'))
            report_fail(r, "no such file", "%s: no such file", cmd);
        else
            report_fail(r, "not found in PATH", "%s: not found in PATH", cmd);
        return;
    }
    if (!strchr(cmd, '/'))
        report_add(r, L_OK, "%s: %s (from PATH)", cmd, path);
    check_file(r, path, si, 0);
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
