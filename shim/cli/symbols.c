/* symbols.c: function, file and line of the native frames `reshim heap`
 * shows, read by the CLI (never the library) from the DWARF of the objects
 * a live process has mapped, with elfutils' libdw (libdw.so.1) opened at
 * run time: the CLI needs nothing more to run, and says what it lacks when
 * libdw is not there (the frames then stay as the library named them:
 * symbol+offset or module+offset). Static functions are named from the
 * objects' own symbol tables (.symtab) or their separate debug files
 * (/usr/lib/debug/.build-id), which dladdr in the process cannot see.
 *
 * libdw's interface is declared here, the few functions used (stable since
 * elfutils 0.122), so no elfutils headers are needed to build. */
#define _GNU_SOURCE
#include "cli.h"

#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct Dwfl Dwfl;
typedef struct Dwfl_Module Dwfl_Module;
typedef struct Dwfl_Line Dwfl_Line;
typedef uint64_t Dwarf_Addr;

/* Dwfl_Callbacks: three function pointers and a path, as libdwfl.h has it. */
struct dwfl_callbacks {
    void *find_elf, *find_debuginfo, *section_address;
    char **debuginfo_path;
};

static struct {
    void *h;
    Dwfl *(*begin)(const struct dwfl_callbacks *);
    void (*end)(Dwfl *);
    int (*proc_report)(Dwfl *, int);
    int (*report_end)(Dwfl *, void *, void *);
    Dwfl_Module *(*addrmodule)(Dwfl *, Dwarf_Addr);
    const char *(*addrname)(Dwfl_Module *, Dwarf_Addr);
    Dwfl_Line *(*getsrc)(Dwfl_Module *, Dwarf_Addr);
    const char *(*lineinfo)(Dwfl_Line *, Dwarf_Addr *, int *, int *, uint64_t *, uint64_t *);
    const char *(*modinfo)(Dwfl_Module *, void ***, Dwarf_Addr *, Dwarf_Addr *, Dwarf_Addr *,
                           Dwarf_Addr *, const char **, const char **);
    int (*errno_)(void);
    const char *(*errmsg)(int);
    void *find_elf, *find_debuginfo;
} dw;

struct cli_syms {
    Dwfl *dwfl;
    char *debuginfo_path;
    struct dwfl_callbacks cb;
};

static bool load_libdw(char *why, size_t n)
{
    if (dw.h)
        return true;
    void *h = dlopen("libdw.so.1", RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        snprintf(why, n, "libdw.so.1 (elfutils; Debian package libdw1) cannot be loaded: "
                         "native frames shown as symbol+offset or module+offset, without file:line");
        return false;
    }
#define SYM(field, name)                                                                          \
    if (!(*(void **)&dw.field = dlsym(h, name))) {                                                 \
        snprintf(why, n, "libdw.so.1 lacks %s: native frames shown without file:line", name);    \
        dlclose(h);                                                                                \
        return false;                                                                              \
    }
    SYM(begin, "dwfl_begin");
    SYM(end, "dwfl_end");
    SYM(proc_report, "dwfl_linux_proc_report");
    SYM(report_end, "dwfl_report_end");
    SYM(addrmodule, "dwfl_addrmodule");
    SYM(addrname, "dwfl_module_addrname");
    SYM(getsrc, "dwfl_module_getsrc");
    SYM(lineinfo, "dwfl_lineinfo");
    SYM(modinfo, "dwfl_module_info");
    SYM(errno_, "dwfl_errno");
    SYM(errmsg, "dwfl_errmsg");
    SYM(find_elf, "dwfl_linux_proc_find_elf");
    SYM(find_debuginfo, "dwfl_standard_find_debuginfo");
#undef SYM
    dw.h = h;
    return true;
}

struct cli_syms *syms_open(int pid, char *why, size_t n)
{
    if (!load_libdw(why, n))
        return NULL;
    struct cli_syms *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->cb.find_elf = dw.find_elf;
    s->cb.find_debuginfo = dw.find_debuginfo;
    s->cb.debuginfo_path = &s->debuginfo_path; /* NULL: libdw's default places */
    s->dwfl = dw.begin(&s->cb);
    int rc = s->dwfl ? dw.proc_report(s->dwfl, pid) : -1;
    if (rc != 0 || dw.report_end(s->dwfl, NULL, NULL) != 0) {
        snprintf(why, n, "libdw cannot read the mappings of process %d (%s): native frames "
                         "shown without file:line",
                 pid, rc > 0 ? strerror(rc) : dw.errmsg(-1));
        if (s->dwfl)
            dw.end(s->dwfl);
        free(s);
        return NULL;
    }
    return s;
}

void syms_close(struct cli_syms *s)
{
    if (!s)
        return;
    dw.end(s->dwfl);
    free(s);
}

static const char *base_name(const char *p)
{
    const char *b = p ? strrchr(p, '/') : NULL;
    return b ? b + 1 : p && *p ? p : "?";
}

bool syms_frame(struct cli_syms *s, unsigned long long pc, char *buf, size_t n)
{
    if (!s || pc < 1)
        return false;
    Dwarf_Addr at = pc - 1; /* a return address: the call is just before it */
    Dwfl_Module *m = dw.addrmodule(s->dwfl, at);
    if (!m)
        return false;
    Dwarf_Addr start = 0;
    const char *mod = dw.modinfo(m, NULL, &start, NULL, NULL, NULL, NULL, NULL);
    const char *fn = dw.addrname(m, at);
    Dwfl_Line *l = dw.getsrc(m, at);
    int line = 0;
    const char *file = l ? dw.lineinfo(l, NULL, &line, NULL, NULL, NULL) : NULL;
    if (fn && file)
        snprintf(buf, n, "%s (%s:%d)", fn, base_name(file), line);
    else if (fn)
        snprintf(buf, n, "%s (%s)", fn, base_name(mod));
    else if (file)
        snprintf(buf, n, "%s+0x%llx (%s:%d)", base_name(mod),
                 (unsigned long long)(pc - start), base_name(file), line);
    else
        return false;
    return true;
}
