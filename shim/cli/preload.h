/* preload.h: can the shim be preloaded into a program? One check, shared by
 * `reshim run` (which warns and runs) and `reshim doctor` (which reports
 * every line): the ELF reader (elf.c), the shim's library and the checks of a
 * program (preload.c). */
#ifndef RESHIM_CLI_PRELOAD_H
#define RESHIM_CLI_PRELOAD_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* ---- elf.c --------------------------------------------------------------- */

#define ELF_NEEDED_MAX 64

struct elf {
    int fd;
    uint64_t size;
    bool is64, be;
    uint16_t type, machine;
    uint64_t phoff, shoff;
    uint32_t phnum, shnum, shstrndx;
    uint16_t phentsize, shentsize;
};

/* What the checks need from one file. */
struct elf_facts {
    bool has_interp, has_dynamic, pie;
    char interp[256];
    bool go;
    char go_why[64];
    int cut_segment;           /* 1 + index of a PT_LOAD that runs past the end, or 0 */
    int nneeded;
    char needed[ELF_NEEDED_MAX][64];
    char glibc_max[32];        /* highest GLIBC_x.y needed, "" when none */
};

/* Reads and checks the header of the file fd (size bytes): 0, or -1 with a
 * reason in why. */
int elf_open(struct elf *e, int fd, uint64_t size, char *why, size_t n);
/* The facts of an opened file (f is large: allocate it). */
void elf_facts(const struct elf *e, struct elf_facts *f);
/* "x86-64", "aarch64"...; NULL when unknown. */
const char *elf_machine_name(uint16_t m);
/* "executable", "PIE executable", "shared object"... */
const char *elf_type_name(uint16_t t, bool pie);
/* "glibc", "musl" or NULL, from a program interpreter's name. */
const char *elf_interp_libc(const char *interp);
/* "glibc", "musl" or NULL, from a shared object's DT_NEEDED and verneed. */
const char *elf_needed_libc(const struct elf_facts *f);
/* Dotted version numbers: "2.36" against "2.34" (missing parts are 0). */
int elf_version_cmp(const char *a, const char *b);

/* ---- preload.c: the report ----------------------------------------------- */

enum level { L_OK, L_WARN, L_FAIL };

#define REPORT_LINES 64
#define LINE_MAX_LEN 400

/* One line per check; the first failure is the verdict. */
struct report {
    int n;
    enum level lv[REPORT_LINES];
    char text[REPORT_LINES][LINE_MAX_LEN];
    char reason[LINE_MAX_LEN]; /* of the first failure */
    bool failed;
    int bad_config;
    /* The build of the shim to preload into the program checked: the shim
     * found, or the build beside it for the program's C library; "" when
     * none must be (one built for another C library would stop it). */
    char lib[PATH_MAX];
};

void report_add(struct report *r, enum level lv, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* A failure: its line, and the verdict's reason if it is the first. */
void report_fail(struct report *r, const char *reason, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* "ok", "warn" or "fail" and the text, a line each (coloured by cli_color). */
void report_print(const struct report *r, FILE *f);

/* ---- preload.c: the shim and the program --------------------------------- */

/* The shim library as `run` and `doctor` find it: RESHIM_LIBRARY, else
 * <dir of this binary>/../lib/reshim/libreshim.so, else libreshim.so beside
 * the binary (build/). The real path into out; 0, or -1 when not there. */
int preload_find_shim(char *out, size_t n);

struct shim_info {
    bool found, is64, elf_ok;
    uint16_t machine;
    char path[PATH_MAX];
    const char *libc;    /* "glibc", "musl", NULL */
    char glibc_max[32];
};
/* Finds the shim and reads its class, machine and C library. */
void preload_shim_inspect(struct shim_info *si);

/* execvp's lookup: 0 with the path in out; -1 with errno ENOENT (nowhere),
 * EACCES (found, not executable; its path in out) or ENAMETOOLONG. */
int preload_resolve(const char *cmd, char *out, size_t n);

/* Can the shim si be preloaded into cmd (a path, or a name looked up in
 * PATH)? Its lines into r: found where, the ELF file (class and machine,
 * static or dynamic, glibc or musl, Go), setuid/setgid and file
 * capabilities judged as the kernel does for this user, #! scripts followed
 * to their interpreter; r->lib says which build to preload. Runs nothing. */
void preload_check_cmd(struct report *r, const char *cmd, const struct shim_info *si);

/* The two builds of the library, DIR/libreshim.so (glibc) and
 * DIR/musl/libreshim.so (musl). cli_lib_is_musl: the path is the musl build
 * (its name says musl, or its directory is named musl). cli_lib_for:
 * switches lib (n bytes) to the build for a musl (or glibc) program found
 * beside it; false, lib untouched, when there is none. */
bool cli_lib_is_musl(const char *lib);
bool cli_lib_for(char *lib, size_t n, bool musl);

#endif
