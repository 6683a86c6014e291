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
 * command line can be pasted): its ELF file, read here with bounds checks on
 * every offset (ELF32/ELF64, either byte order; any file, truncated or
 * hostile, gives a message, never a crash): class and machine against the
 * shim's; static or dynamic (PT_INTERP); glibc or musl (the interpreter's
 * name); Go (.go.buildinfo/.gopclntab/.gosymtab/.note.go.buildid sections,
 * or a "Go" build-ID note: its net package makes raw system calls); setuid/
 * setgid bits and file capabilities (security.capability), judged as the
 * kernel does: secure-execution only when the exec changes the uid or gid,
 * or raises capabilities for a non-root user, and never on a nosuid mount;
 * #! scripts, followed to their interpreter (through env too) up to the
 * kernel's nesting depth.
 *
 * Output (stdout): one line per check, "ok", "warn" or "fail" first
 * (coloured on a terminal unless NO_COLOR), then a verdict line: "CMD can be
 * preloaded" or "CMD cannot be preloaded: <reason>" (without CMD: "the shim
 * can be preloaded here" / "the shim cannot be preloaded: <reason>").
 * Exit: 0 can, 1 cannot (a CMD not found or not executable included: that is
 * a verdict, not a usage error), 2 usage or a bad RESHIM_ variable (the
 * verdict is still printed). Never runs CMD. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "config.h"

extern char **environ;

/* Copies src into dst (n bytes), cut at n-1. */
static void scopy(char *dst, size_t n, const char *src)
{
    if (!n)
        return;
    size_t len = strnlen(src, n - 1);
    memcpy(dst, src, len);
    dst[len] = 0;
}

/* ---- the report: one line per check, the first failure is the verdict --- */

enum level { L_OK, L_WARN, L_FAIL };

#define REPORT_LINES 64
#define LINE_MAX_LEN 400

struct report {
    int n;
    enum level lv[REPORT_LINES];
    char text[REPORT_LINES][LINE_MAX_LEN];
    char reason[LINE_MAX_LEN]; /* of the first failure */
    bool failed;
    int bad_config;
};

__attribute__((format(printf, 3, 4))) static void add(struct report *r, enum level lv,
                                                      const char *fmt, ...)
{
    if (r->n >= REPORT_LINES)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->text[r->n], LINE_MAX_LEN, fmt, ap);
    va_end(ap);
    r->lv[r->n++] = lv;
}

/* A failure: its line, and the verdict's reason if it is the first. */
__attribute__((format(printf, 3, 4))) static void add_fail(struct report *r, const char *reason,
                                                           const char *fmt, ...)
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

static void report_print(const struct report *r, FILE *f)
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

/* ---- ELF, read with pread and bounds checks ------------------------------
 * Nothing is mapped: every read is checked against the file size first, with
 * overflow-safe arithmetic, and every count is capped, so a truncated or
 * crafted file can only produce an error message. */

#define ELF_NOTE_MAX (1u << 20)    /* bytes of one note segment or section we read */
#define ELF_DYN_MAX 4096           /* dynamic entries we look at */
#define ELF_NEEDED_MAX 64
#define ELF_VERNEED_MAX 256        /* verneed files, and aux entries per file */

struct elf {
    int fd;
    uint64_t size;
    bool is64, be;
    uint16_t type, machine;
    uint64_t phoff, shoff;
    uint32_t phnum, shnum, shstrndx;
    uint16_t phentsize, shentsize;
};

struct phdr {
    uint32_t type, flags;
    uint64_t offset, vaddr, filesz, memsz, align;
};

struct shdr {
    uint32_t name, type, link, info;
    uint64_t flags, addr, offset, size, addralign, entsize;
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

static bool range_ok(const struct elf *e, uint64_t off, uint64_t len)
{
    return off <= e->size && len <= e->size - off;
}

static int rd(const struct elf *e, uint64_t off, void *buf, size_t n)
{
    if (!range_ok(e, off, n))
        return -1;
    size_t got = 0;
    while (got < n) {
        ssize_t k = pread(e->fd, (char *)buf + got, n - got, (off_t)(off + got));
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return -1;
        got += (size_t)k;
    }
    return 0;
}

static uint16_t g16(const struct elf *e, const unsigned char *p)
{
    return e->be ? (uint16_t)(p[0] << 8 | p[1]) : (uint16_t)(p[1] << 8 | p[0]);
}

static uint32_t g32(const struct elf *e, const unsigned char *p)
{
    return e->be ? (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]
                 : (uint32_t)p[3] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[1] << 8 | p[0];
}

static uint64_t g64(const struct elf *e, const unsigned char *p)
{
    uint64_t hi = g32(e, e->be ? p : p + 4), lo = g32(e, e->be ? p + 4 : p);
    return hi << 32 | lo;
}

/* A word of the class: 8 bytes in ELF64, 4 in ELF32. */
static uint64_t gw(const struct elf *e, const unsigned char *p)
{
    return e->is64 ? g64(e, p) : g32(e, p);
}

static int elf_shdr(const struct elf *e, uint32_t i, struct shdr *s);

/* Reads and checks the header. 0, or -1 with a reason in why. */
static int elf_open(struct elf *e, int fd, uint64_t size, char *why, size_t n)
{
    unsigned char h[64];
    memset(e, 0, sizeof *e);
    e->fd = fd;
    e->size = size;
    if (size < 16 || rd(e, 0, h, 16) != 0 || memcmp(h, "\177ELF", 4) != 0) {
        snprintf(why, n, "neither an ELF file nor a #! script");
        return -1;
    }
    if (h[4] != 1 && h[4] != 2) {
        snprintf(why, n, "corrupt ELF header (class %u)", h[4]);
        return -1;
    }
    if (h[5] != 1 && h[5] != 2) {
        snprintf(why, n, "corrupt ELF header (byte order %u)", h[5]);
        return -1;
    }
    e->is64 = h[4] == 2;
    e->be = h[5] == 2;
    size_t hsz = e->is64 ? 64 : 52;
    if (rd(e, 0, h, hsz) != 0) {
        snprintf(why, n, "truncated ELF file (%llu bytes, shorter than its header)",
                 (unsigned long long)size);
        return -1;
    }
    e->type = g16(e, h + 16);
    e->machine = g16(e, h + 18);
    if (g32(e, h + 20) != 1) {
        snprintf(why, n, "corrupt ELF header (version %u)", g32(e, h + 20));
        return -1;
    }
    const unsigned char *q = h + 24 + (e->is64 ? 8 : 4); /* after e_entry */
    e->phoff = gw(e, q);
    e->shoff = gw(e, q + (e->is64 ? 8 : 4));
    q += e->is64 ? 16 : 8;
    q += 4;                                               /* e_flags */
    q += 2;                                               /* e_ehsize */
    e->phentsize = g16(e, q);
    e->phnum = g16(e, q + 2);
    e->shentsize = g16(e, q + 4);
    e->shnum = g16(e, q + 6);
    e->shstrndx = g16(e, q + 8);

    size_t phmin = e->is64 ? 56 : 32, shmin = e->is64 ? 64 : 40;
    /* Extended numbering lives in section 0. */
    if (e->shoff && e->shentsize >= shmin && range_ok(e, e->shoff, shmin)) {
        uint32_t real_shnum = e->shnum, real_phnum = e->phnum;
        struct shdr s0;
        uint32_t save = e->shnum;
        e->shnum = 1;
        if (elf_shdr(e, 0, &s0) == 0) {
            if (save == 0)
                real_shnum = s0.size > 0xffffffu ? 0xffffffu : (uint32_t)s0.size;
            if (e->phnum == 0xffff)
                real_phnum = s0.info;
            if (e->shstrndx == 0xffff)
                e->shstrndx = s0.link;
        }
        e->shnum = real_shnum;
        e->phnum = real_phnum;
    }
    if (e->phnum) {
        if (e->phentsize < phmin) {
            snprintf(why, n, "corrupt ELF header (program header size %u)", e->phentsize);
            return -1;
        }
        if (e->phnum > 65535 ||
            !range_ok(e, e->phoff, (uint64_t)e->phnum * e->phentsize)) {
            snprintf(why, n, "truncated or corrupt ELF file: its %u program headers lie "
                     "past the end of the file (%llu bytes)", e->phnum,
                     (unsigned long long)size);
            return -1;
        }
    }
    if (e->shnum && (e->shentsize < shmin ||
                     !range_ok(e, e->shoff, (uint64_t)e->shnum * e->shentsize)))
        e->shnum = 0; /* sections are optional for running: ignore bad ones */
    return 0;
}

static int elf_phdr(const struct elf *e, uint32_t i, struct phdr *p)
{
    unsigned char b[56];
    if (i >= e->phnum || rd(e, e->phoff + (uint64_t)i * e->phentsize, b, e->is64 ? 56 : 32))
        return -1;
    p->type = g32(e, b);
    if (e->is64) {
        p->flags = g32(e, b + 4);
        p->offset = g64(e, b + 8);
        p->vaddr = g64(e, b + 16);
        p->filesz = g64(e, b + 32);
        p->memsz = g64(e, b + 40);
        p->align = g64(e, b + 48);
    } else {
        p->offset = g32(e, b + 4);
        p->vaddr = g32(e, b + 8);
        p->filesz = g32(e, b + 16);
        p->memsz = g32(e, b + 20);
        p->flags = g32(e, b + 24);
        p->align = g32(e, b + 28);
    }
    return 0;
}

static int elf_shdr(const struct elf *e, uint32_t i, struct shdr *s)
{
    unsigned char b[64];
    if (i >= e->shnum || rd(e, e->shoff + (uint64_t)i * e->shentsize, b, e->is64 ? 64 : 40))
        return -1;
    s->name = g32(e, b);
    s->type = g32(e, b + 4);
    if (e->is64) {
        s->flags = g64(e, b + 8);
        s->addr = g64(e, b + 16);
        s->offset = g64(e, b + 24);
        s->size = g64(e, b + 32);
        s->link = g32(e, b + 40);
        s->info = g32(e, b + 44);
        s->addralign = g64(e, b + 48);
        s->entsize = g64(e, b + 56);
    } else {
        s->flags = g32(e, b + 8);
        s->addr = g32(e, b + 12);
        s->offset = g32(e, b + 16);
        s->size = g32(e, b + 20);
        s->link = g32(e, b + 24);
        s->info = g32(e, b + 28);
        s->addralign = g32(e, b + 32);
        s->entsize = g32(e, b + 36);
    }
    return 0;
}

/* A NUL-terminated string at off inside a table [base, base+tsize): into
 * buf (cut to n-1). 0, or -1 when it runs off the table or the file. */
static int elf_str(const struct elf *e, uint64_t base, uint64_t tsize, uint64_t off, char *buf,
                   size_t n)
{
    if (n == 0 || off >= tsize || !range_ok(e, base, tsize))
        return -1;
    uint64_t avail = tsize - off;
    size_t want = avail < n - 1 ? (size_t)avail : n - 1;
    if (rd(e, base + off, buf, want))
        return -1;
    buf[want] = 0;
    size_t len = strnlen(buf, want);
    if (len == want && want == avail) /* no terminator inside the table */
        return -1;
    return 0;
}

/* File offset of a virtual address, through the PT_LOAD segments. */
static int elf_v2off(const struct elf *e, uint64_t va, uint64_t *off, uint64_t *room)
{
    struct phdr p;
    for (uint32_t i = 0; i < e->phnum; i++) {
        if (elf_phdr(e, i, &p) || p.type != 1 /* PT_LOAD */)
            continue;
        if (va >= p.vaddr && va - p.vaddr < p.filesz) {
            uint64_t o = p.offset + (va - p.vaddr);
            if (o < p.offset || !range_ok(e, o, 1))
                return -1;
            *off = o;
            *room = p.filesz - (va - p.vaddr);
            if (*room > e->size - o)
                *room = e->size - o;
            return 0;
        }
    }
    return -1;
}

static bool is_go_section(const char *name)
{
    return !strcmp(name, ".go.buildinfo") || !strcmp(name, ".gopclntab") ||
           !strcmp(name, ".gosymtab") || !strcmp(name, ".note.go.buildid") ||
           !strcmp(name, ".go.fipsinfo");
}

/* Notes in [off, off+len), padded to align (4, or 8 for some ELF64 notes),
 * positions counted from the start of the segment: sets f->go on a "Go"
 * note of type 4 (Go's build ID). */
static void scan_notes(const struct elf *e, uint64_t off, uint64_t len, uint64_t align,
                       struct elf_facts *f)
{
    uint64_t pad = align == 8 ? 7 : 3;
    if (len > ELF_NOTE_MAX)
        len = ELF_NOTE_MAX;
    if (!range_ok(e, off, len))
        return;
    uint64_t pos = 0;
    for (int guard = 0; guard < 4096 && len - pos >= 12; guard++) {
        unsigned char h[12];
        if (rd(e, off + pos, h, 12))
            return;
        uint64_t namesz = g32(e, h), descsz = g32(e, h + 4);
        uint32_t type = g32(e, h + 8);
        uint64_t name = pos + 12;
        uint64_t desc = (name + namesz + pad) & ~pad; /* no overflow: all below 2^34 */
        uint64_t next = (desc + descsz + pad) & ~pad;
        if (name + namesz > len || desc + descsz > len)
            return;
        if (namesz == 3 && type == 4) {
            char nm[3];
            if (rd(e, off + name, nm, 3) == 0 && !memcmp(nm, "Go", 3)) {
                f->go = true;
                snprintf(f->go_why, sizeof f->go_why, "a Go build ID note");
                return;
            }
        }
        if (next <= pos || next > len)
            return;
        pos = next;
    }
}

static void scan_verneed(const struct elf *e, uint64_t voff, uint64_t vroom, uint32_t count,
                         uint64_t stroff, uint64_t strsz, struct elf_facts *f)
{
    int best_major = -1, best_minor = -1;
    uint64_t pos = 0;
    if (count > ELF_VERNEED_MAX)
        count = ELF_VERNEED_MAX;
    for (uint32_t i = 0; i < count; i++) {
        unsigned char vn[16];
        if (pos > vroom || vroom - pos < 16 || rd(e, voff + pos, vn, 16))
            return;
        uint16_t cnt = g16(e, vn + 2);
        uint32_t aux = g32(e, vn + 8), next = g32(e, vn + 12);
        uint64_t apos = pos + aux;
        for (uint16_t j = 0; j < cnt && j < ELF_VERNEED_MAX; j++) {
            unsigned char va[16];
            if (apos > vroom || vroom - apos < 16 || rd(e, voff + apos, va, 16))
                break;
            char name[64];
            if (elf_str(e, stroff, strsz, g32(e, va + 8), name, sizeof name) == 0) {
                int ma, mi = 0;
                if (sscanf(name, "GLIBC_%d.%d", &ma, &mi) >= 1 &&
                    (ma > best_major || (ma == best_major && mi > best_minor))) {
                    best_major = ma;
                    best_minor = mi;
                    scopy(f->glibc_max, sizeof f->glibc_max, name);
                }
            }
            uint32_t an = g32(e, va + 12);
            if (an == 0)
                break;
            apos += an;
        }
        if (next == 0)
            break;
        pos += next;
    }
}

/* The facts of an opened ELF file. */
static void elf_facts(const struct elf *e, struct elf_facts *f)
{
    memset(f, 0, sizeof *f);
    struct phdr p, dyn = {0};
    for (uint32_t i = 0; i < e->phnum; i++) {
        if (elf_phdr(e, i, &p))
            break;
        if (p.type == 1 /* PT_LOAD */ && !f->cut_segment && !range_ok(e, p.offset, p.filesz))
            f->cut_segment = (int)i + 1;
        if (p.type == 3 /* PT_INTERP */ && !f->has_interp) {
            f->has_interp = true;
            if (elf_str(e, p.offset, p.filesz, 0, f->interp, sizeof f->interp) != 0)
                snprintf(f->interp, sizeof f->interp, "?");
        } else if (p.type == 2 /* PT_DYNAMIC */) {
            f->has_dynamic = true;
            dyn = p;
        } else if (p.type == 4 /* PT_NOTE */ && !f->go) {
            scan_notes(e, p.offset, p.filesz, p.align, f);
        }
    }
    /* Sections: Go's are named; notes again (a note may be outside PT_NOTE). */
    struct shdr shs;
    if (e->shnum && e->shstrndx < e->shnum && elf_shdr(e, e->shstrndx, &shs) == 0) {
        for (uint32_t i = 0; i < e->shnum && !f->go; i++) {
            struct shdr s;
            char name[32];
            if (elf_shdr(e, i, &s))
                break;
            if (elf_str(e, shs.offset, shs.size, s.name, name, sizeof name) == 0 &&
                is_go_section(name)) {
                f->go = true;
                snprintf(f->go_why, sizeof f->go_why, "a %s section", name);
            } else if (s.type == 7 /* SHT_NOTE */) {
                scan_notes(e, s.offset, s.size, s.addralign, f);
            }
        }
    }
    if (!f->has_dynamic)
        return;
    /* The dynamic section: DT_NEEDED names, DT_FLAGS_1 PIE, the verneed list. */
    size_t esz = e->is64 ? 16 : 8;
    uint64_t nent = dyn.filesz / esz;
    if (nent > ELF_DYN_MAX)
        nent = ELF_DYN_MAX;
    uint64_t strtab = 0, strsz = 0, verneed = 0, verneednum = 0;
    bool have_strtab = false, have_verneed = false;
    uint32_t needed_off[ELF_NEEDED_MAX];
    int nneeded = 0;
    for (uint64_t i = 0; i < nent; i++) {
        unsigned char b[16];
        if (rd(e, dyn.offset + i * esz, b, esz))
            break;
        uint64_t tag = gw(e, b), val = gw(e, b + esz / 2);
        if (tag == 0 /* DT_NULL */)
            break;
        switch (tag) {
        case 1: /* DT_NEEDED */
            if (nneeded < ELF_NEEDED_MAX && val <= UINT32_MAX)
                needed_off[nneeded++] = (uint32_t)val;
            break;
        case 5: /* DT_STRTAB */
            strtab = val;
            have_strtab = true;
            break;
        case 10: /* DT_STRSZ */
            strsz = val;
            break;
        case 0x6ffffffe: /* DT_VERNEED */
            verneed = val;
            have_verneed = true;
            break;
        case 0x6fffffff: /* DT_VERNEEDNUM */
            verneednum = val;
            break;
        case 0x6ffffffb: /* DT_FLAGS_1 */
            if (val & 0x08000000 /* DF_1_PIE */)
                f->pie = true;
            break;
        }
    }
    uint64_t stroff, strroom;
    if (!have_strtab || elf_v2off(e, strtab, &stroff, &strroom))
        return;
    if (strsz == 0 || strsz > strroom)
        strsz = strroom;
    for (int i = 0; i < nneeded; i++)
        if (elf_str(e, stroff, strsz, needed_off[i], f->needed[f->nneeded],
                    sizeof f->needed[0]) == 0)
            f->nneeded++;
    uint64_t voff, vroom;
    if (have_verneed && verneednum && elf_v2off(e, verneed, &voff, &vroom) == 0)
        scan_verneed(e, voff, vroom, verneednum > UINT32_MAX ? UINT32_MAX : (uint32_t)verneednum,
                     stroff, strsz, f);
}

static const char *machine_name(uint16_t m)
{
    switch (m) {
    case 3: return "i386";
    case 8: return "mips";
    case 20: return "ppc";
    case 21: return "ppc64";
    case 22: return "s390";
    case 40: return "arm";
    case 43: return "sparc64";
    case 62: return "x86-64";
    case 183: return "aarch64";
    case 243: return "riscv";
    case 258: return "loongarch";
    default: return NULL;
    }
}

static const char *type_name(uint16_t t, bool pie)
{
    switch (t) {
    case 1: return "relocatable object";
    case 2: return "executable";
    case 3: return pie ? "PIE executable" : "shared object";
    case 4: return "core file";
    default: return "object of unknown type";
    }
}

/* glibc, musl, or NULL, from a program interpreter's name. */
static const char *interp_libc(const char *interp)
{
    const char *b = strrchr(interp, '/');
    b = b ? b + 1 : interp;
    if (!strncmp(b, "ld-musl-", 8))
        return "musl";
    if (!strncmp(b, "ld-linux", 8) || !strncmp(b, "ld64.so", 7) || !strcmp(b, "ld.so.1") ||
        !strncmp(b, "ld-2.", 5))
        return "glibc";
    return NULL;
}

/* glibc, musl, or NULL, from a shared object's DT_NEEDED and verneed. */
static const char *needed_libc(const struct elf_facts *f)
{
    if (f->glibc_max[0])
        return "glibc";
    for (int i = 0; i < f->nneeded; i++) {
        if (!strcmp(f->needed[i], "libc.so.6"))
            return "glibc";
        if (!strcmp(f->needed[i], "libc.so") || !strncmp(f->needed[i], "libc.musl-", 10) ||
            !strncmp(f->needed[i], "ld-musl-", 8))
            return "musl";
    }
    return NULL;
}

/* Dotted version numbers: "2.36" against "2.34" (missing parts are 0). */
static int version_cmp(const char *a, const char *b)
{
    for (int i = 0; i < 8 && (*a || *b); i++) {
        char *ea, *eb;
        long x = strtol(a, &ea, 10), y = strtol(b, &eb, 10);
        if (x != y)
            return x < y ? -1 : 1;
        a = *ea == '.' ? ea + 1 : ea;
        b = *eb == '.' ? eb + 1 : eb;
        if (ea == a && eb == b) /* neither moved: not numbers */
            break;
    }
    return 0;
}

/* ---- the shim library ---------------------------------------------------- */

int doctor_find_shim(char *out, size_t n)
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

struct shim_info {
    bool found, is64, elf_ok;
    uint16_t machine;
    char path[PATH_MAX];
    const char *libc;    /* "glibc", "musl", NULL */
    char glibc_max[32];
};

static void shim_inspect(struct shim_info *si)
{
    memset(si, 0, sizeof *si);
    if (doctor_find_shim(si->path, sizeof si->path) != 0)
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
            si->libc = needed_libc(f);
            snprintf(si->glibc_max, sizeof si->glibc_max, "%s", f->glibc_max);
            free(f);
        }
    }
    close(fd);
}

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
            if (!v[0] || version_cmp(cand, v) > 0)
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

static long elapsed_ms(const struct timespec *t0)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long)((t.tv_sec - t0->tv_sec) * 1000 + (t.tv_nsec - t0->tv_nsec) / 1000000);
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
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        long left = 5000 - elapsed_ms(&t0);
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
        if (w != 0 || elapsed_ms(&t0) >= 5000)
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
        scopy(why, n, msg);
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
    add(r, L_FAIL, "configuration: %s=\"%s\": expected %s (the default is used)", var, value,
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
        add(r, L_OK, "configuration: valid (%d RESHIM_ variable%s set)", set, set == 1 ? "" : "s");
    for (char **e = environ; *e; e++) {
        if (strncmp(*e, "RESHIM_", 7))
            continue;
        size_t len = strcspn(*e, "=");
        bool known = len == 14 && !strncmp(*e, "RESHIM_LIBRARY", 14); /* the CLI's own */
        for (int v = 0; v < V_COUNT && !known; v++)
            known = strlen(reshim_config_names[v]) == len &&
                    !strncmp(*e, reshim_config_names[v], len);
        if (!known)
            add(r, L_WARN, "configuration: %.*s is not a reshim setting (a typo?)", (int)len, *e);
    }
    if (cfg.disable)
        add(r, L_WARN, "configuration: RESHIM_DISABLE=1: the shim passes every call through");

    struct stat st;
    if (lstat(cfg.run_dir, &st) != 0) {
        add(r, L_OK, "run dir %s: not there yet (created 0700 by the first shimmed process)",
            cfg.run_dir);
    } else if (S_ISLNK(st.st_mode) || !S_ISDIR(st.st_mode)) {
        add(r, L_WARN, "run dir %s: not a directory (stats sockets fall back to the abstract "
            "namespace)", cfg.run_dir);
    } else if (st.st_uid != getuid() || (st.st_mode & 077)) {
        add(r, L_WARN, "run dir %s: owner %u mode %03o, not yours with 0700 (stats sockets fall "
            "back to the abstract namespace)", cfg.run_dir, (unsigned)st.st_uid,
            (unsigned)(st.st_mode & 0777));
    } else {
        add(r, L_OK, "run dir %s", cfg.run_dir);
    }
    if (cfg.push[0]) {
        if (stat(cfg.push, &st) != 0)
            add(r, L_WARN, "RESHIM_PUSH=%s: nothing there yet (start `reshim collect --listen "
                "%s`)", cfg.push, cfg.push);
        else if (!S_ISSOCK(st.st_mode))
            add(r, L_WARN, "RESHIM_PUSH=%s: not a socket", cfg.push);
        else
            add(r, L_OK, "RESHIM_PUSH=%s: a socket", cfg.push);
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
        add(r, L_OK, "LD_PRELOAD: not set here");
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
            add(r, L_WARN, "LD_PRELOAD entry %s is not an absolute path (searched in the "
                "loader's path; ignored for setuid programs)", tok);
        else if (access(tok, R_OK) != 0)
            add(r, L_WARN, "LD_PRELOAD entry %s: %s (the loader skips it with an error "
                "line)", tok, strerror(errno));
        else if (is_shim && si->found && !same_file(tok, si->path))
            add(r, L_WARN, "LD_PRELOAD holds another copy of the shim: %s (this reshim uses "
                "%s)", tok, si->path);
    }
    free(copy);
    if (has_shim)
        add(r, L_OK, "LD_PRELOAD=%s: holds the shim (programs started from here are shimmed)",
            lp);
    else
        add(r, L_OK, "LD_PRELOAD=%s: without the shim (`reshim run` appends it)", lp);
}

static void check_shim(struct report *r, struct shim_info *si, bool load)
{
    shim_inspect(si);
    const char *env = getenv("RESHIM_LIBRARY");
    if (!si->found) {
        if (env && *env)
            add_fail(r, "libreshim.so not found", "library: RESHIM_LIBRARY=%s: %s", env,
                     access(env, R_OK) == 0 ? "not usable" : strerror(errno));
        else
            add_fail(r, "libreshim.so not found",
                     "library: not found (looked for ../lib/reshim/libreshim.so and "
                     "libreshim.so relative to this reshim binary; RESHIM_LIBRARY overrides)");
        return;
    }
    add(r, L_OK, "library: %s%s", si->path, env && *env ? " (RESHIM_LIBRARY)" : "");
    if (!si->elf_ok) {
        add_fail(r, "libreshim.so is not a valid ELF shared object", "library: %s is not a "
                 "valid ELF shared object", si->path);
        return;
    }
    const char *sys = system_glibc();
    if (si->libc && !strcmp(si->libc, "glibc")) {
        if (!si->glibc_max[0]) {
            add(r, L_OK, "library built for glibc");
        } else if (!sys) {
            add_fail(r, "libreshim.so was built for glibc; this system's C library is not glibc",
                     "library built for glibc (needs %s); this system has no glibc",
                     si->glibc_max);
        } else if (version_cmp(si->glibc_max + 6, sys) > 0) {
            char reason[LINE_MAX_LEN];
            snprintf(reason, sizeof reason, "libreshim.so needs %s, this system has glibc %s",
                     si->glibc_max, sys);
            add_fail(r, reason, "library built for glibc, needs %s; this system has glibc %s "
                     "(too old)", si->glibc_max, sys);
        } else {
            add(r, L_OK, "library built for glibc, needs %s; this system has glibc %s",
                si->glibc_max, sys);
        }
    } else if (si->libc) {
        add(r, sys ? L_WARN : L_OK, "library built for %s%s", si->libc,
            sys ? "; this system's programs mostly use glibc" : "");
    } else {
        add(r, L_WARN, "library: its C library could not be told (no libc in DT_NEEDED)");
    }
    if (!load)
        return;
    char why[LINE_MAX_LEN - 64];
    if (shim_load_test(si->path, why, sizeof why) == 0) {
        add(r, L_OK, "library loads (preloaded into /bin/true with LD_BIND_NOW=1)");
    } else {
        char reason[LINE_MAX_LEN];
        snprintf(reason, sizeof reason, "libreshim.so does not load: %s", why);
        add_fail(r, reason, "library does not load: %s", why);
    }
}

/* ---- the command -------------------------------------------------------- */

/* execvp's lookup: 0 with the path in out; -1 with errno ENOENT (nowhere)
 * or EACCES (found, not executable). */
static int resolve_cmd(const char *cmd, char *out, size_t n)
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
            add(r, L_OK, "setuid bit ignored: the file system is mounted nosuid");
        else if (st->st_uid == uid)
            add(r, L_WARN, "setuid (owner uid %u, you): preloaded only when run by uid %u; for "
                "any other user the loader drops LD_PRELOAD (secure-execution)",
                (unsigned)st->st_uid, (unsigned)st->st_uid);
        else {
            char reason[LINE_MAX_LEN];
            snprintf(reason, sizeof reason, "setuid (owner uid %u): the loader drops LD_PRELOAD",
                     (unsigned)st->st_uid);
            add_fail(r, reason, "setuid, owner uid %u: run by you (uid %u) it is secure-execution, "
                     "the loader drops LD_PRELOAD", (unsigned)st->st_uid, (unsigned)uid);
        }
    }
    if ((st->st_mode & S_ISGID) && (st->st_mode & S_IXGRP)) {
        any = true;
        if (nosuid)
            add(r, L_OK, "setgid bit ignored: the file system is mounted nosuid");
        else if (st->st_gid == gid)
            add(r, L_WARN, "setgid (group %u, yours): preloaded only for members whose real "
                "group is %u; for others the loader drops LD_PRELOAD", (unsigned)st->st_gid,
                (unsigned)st->st_gid);
        else {
            char reason[LINE_MAX_LEN];
            snprintf(reason, sizeof reason, "setgid (group %u): the loader drops LD_PRELOAD",
                     (unsigned)st->st_gid);
            add_fail(r, reason, "setgid, group %u: run by you (gid %u) it is secure-execution, "
                     "the loader drops LD_PRELOAD", (unsigned)st->st_gid, (unsigned)gid);
        }
    }
    char caps[LINE_MAX_LEN - 120];
    if (file_caps(path, caps, sizeof caps)) {
        any = true;
        if (nosuid)
            add(r, L_OK, "file capabilities %s ignored: the file system is mounted nosuid", caps);
        else if (uid == 0)
            add(r, L_WARN, "file capabilities %s: preloaded when root runs it; for any other "
                "user the loader drops LD_PRELOAD (secure-execution)", caps);
        else {
            char reason[LINE_MAX_LEN];
            snprintf(reason, sizeof reason, "file capabilities (%s): the loader drops LD_PRELOAD",
                     caps);
            add_fail(r, reason, "file capabilities %s: secure-execution, the loader drops "
                     "LD_PRELOAD", caps);
        }
    }
    if (!any)
        add(r, L_OK, "no setuid/setgid bit, no file capabilities");
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
        add_fail(r, reason, "%s: %s", path, why);
        return;
    }
    struct elf_facts *f = calloc(1, sizeof *f);
    if (!f) {
        add_fail(r, "out of memory", "out of memory");
        return;
    }
    elf_facts(&e, f);
    const char *mach = machine_name(e.machine);
    char mbuf[32];
    if (!mach) {
        snprintf(mbuf, sizeof mbuf, "machine %u", e.machine);
        mach = mbuf;
    }
    add(r, L_OK, "%s: ELF %d-bit %s %s %s", path, e.is64 ? 64 : 32, e.be ? "MSB" : "LSB", mach,
        type_name(e.type, f->pie || (e.type == 3 && f->has_interp)));
    if (e.type != 2 && e.type != 3) {
        add_fail(r, "not an executable", "%s is a %s, not an executable", path,
                 type_name(e.type, false));
        goto out;
    }
    if (f->cut_segment) {
        char reason[LINE_MAX_LEN];
        snprintf(reason, sizeof reason, "not a valid ELF executable (truncated: segment %d lies "
                 "past the end of the file)", f->cut_segment - 1);
        add_fail(r, reason, "%s: truncated or corrupt: loadable segment %d lies past the end of "
                 "the file (%llu bytes)", path, f->cut_segment - 1, (unsigned long long)size);
        goto out;
    }
    check_privilege(r, path, st);
    if (si->elf_ok && (e.is64 != si->is64 || e.machine != si->machine)) {
        const char *sm = machine_name(si->machine);
        char reason[LINE_MAX_LEN];
        snprintf(reason, sizeof reason, "a %d-bit %s program; the shim is %d-bit %s",
                 e.is64 ? 64 : 32, mach, si->is64 ? 64 : 32, sm ? sm : "?");
        add_fail(r, reason, "%s; the loader ignores a preload of another class or machine "
                 "(\"wrong ELF class\")", reason);
    }
    if (!f->has_interp) {
        bool spie = f->has_dynamic && e.type == 3;
        add_fail(r, spie ? "statically linked (static-pie): no dynamic loader runs, "
                 "nothing is preloaded" : "statically linked: no dynamic loader runs, nothing "
                 "is preloaded",
                 "statically linked (%sno program interpreter): nothing is preloaded",
                 spie ? "static-pie, " : "");
    } else {
        const char *libc = interp_libc(f->interp);
        bool interp_here = access(f->interp, F_OK) == 0;
        const char *shim_libc = si->libc ? si->libc : "glibc";
        char other[PATH_MAX];
        if (!libc) {
            add(r, L_WARN, "dynamically linked, interpreter %s: an unknown C library", f->interp);
        } else if (strcmp(libc, shim_libc) && si->found &&
                   (!strcmp(libc, "musl") || !strcmp(libc, "glibc")) &&
                   cli_lib_for(strcpy(other, si->path), sizeof other, !strcmp(libc, "musl")) &&
                   strcmp(other, si->path)) {
            /* `reshim run` and reshim-run take the build beside this one. */
            add(r, L_OK, "dynamically linked, interpreter %s (%s): `reshim run` and reshim-run "
                "preload the %s build, %s", f->interp, libc, libc, other);
            if (!strcmp(libc, "musl"))
                add(r, L_OK, "on musl: no trim (musl's allocator returns freed memory itself "
                    "and has no trim entry point; the trim step does nothing, stats mem.trim "
                    "\"none\"); retries, serve-stale DNS, the budget and enforce work; heap "
                    "sampling needs libgcc_s.so.1 where musl's loader finds it");
        } else if (strcmp(libc, shim_libc)) {
            char reason[LINE_MAX_LEN];
            snprintf(reason, sizeof reason, "built for %s (interpreter %s); the shim is built "
                     "for %s", libc, f->interp, shim_libc);
            add_fail(r, reason, "dynamically linked, interpreter %s (%s): the %s-built shim "
                     "cannot be preloaded into a %s program (it fails to relocate)", f->interp,
                     libc, shim_libc, libc);
        } else {
            add(r, L_OK, "dynamically linked, interpreter %s (%s)", f->interp, libc);
        }
        if (!interp_here)
            add_fail(r, "its interpreter is not on this system",
                     "interpreter %s is not on this system: the program cannot run here",
                     f->interp);
    }
    if (f->go) {
        add_fail(r, "a Go program: its net package makes raw system calls, bypassing the C "
                 "library (even when dynamically linked)",
                 "a Go program (%s): Go's net package and runtime make raw system calls, so "
                 "the shim would see no connect and no allocation", f->go_why);
    } else {
        add(r, L_OK, "not a Go program");
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
        add_fail(r, why, "%s: %s", path, why);
        goto out;
    }
    if (S_ISDIR(st.st_mode)) {
        add_fail(r, "a directory", "%s is a directory", path);
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        add_fail(r, "not a regular file", "%s is not a regular file", path);
        goto out;
    }
    if (access(path, X_OK) != 0 || !(st.st_mode & 0111)) {
        add_fail(r, "not executable", "%s is not executable (mode %03o)", path,
                 (unsigned)(st.st_mode & 0777));
        goto out;
    }
    if (fd < 0) {
        char reason[LINE_MAX_LEN];
        snprintf(reason, sizeof reason, "cannot read %s to check it: %s", path, strerror(errno));
        add_fail(r, reason, "%s: cannot read it to check: %s", path, strerror(errno));
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
            add_fail(r, "a #! script without an interpreter", "%s: a #! line without an "
                     "interpreter", path);
            goto out;
        }
        if (st.st_mode & (S_ISUID | S_ISGID))
            add(r, L_OK, "setuid/setgid bits on a script are ignored by Linux");
        if (depth >= 4) {
            add_fail(r, "#! interpreters nested too deep", "%s: #! interpreters nested deeper "
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
                add_fail(r, "a #!/usr/bin/env line without a program", "%s: #!%s %s names no "
                         "program", path, interp, arg);
                goto out;
            }
            if (resolve_cmd(prog, target, sizeof target) != 0) {
                char reason[LINE_MAX_LEN];
                snprintf(reason, sizeof reason, "its interpreter %s is not found in PATH", prog);
                add_fail(r, reason, "%s: a script for %s (through %s), which is not found in "
                         "PATH", path, prog, interp);
                goto out;
            }
            add(r, L_OK, "%s: a script: #!%s %s, that is %s", path, interp, prog, target);
        } else {
            snprintf(target, sizeof target, "%s", interp);
            add(r, L_OK, "%s: a script for %s%s%s", path, interp, arg ? " " : "", arg ? arg : "");
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

int doctor_preloadable(const char *cmd, char *reason, size_t n)
{
    struct report *r = calloc(1, sizeof *r);
    if (!r) {
        snprintf(reason, n, "out of memory");
        return 0;
    }
    struct shim_info si;
    check_shim(r, &si, false);
    char path[PATH_MAX];
    if (resolve_cmd(cmd, path, sizeof path) != 0)
        add_fail(r, errno == EACCES ? "not executable" : "not found in PATH", "%s", cmd);
    else
        check_file(r, path, &si, 0);
    int ok = !r->failed;
    snprintf(reason, n, "%s", r->failed ? r->reason : "");
    free(r);
    return ok;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: reshim doctor [CMD [ARGS...]]\n"
               "  without CMD: is the shim library there and loadable, which C library it\n"
               "  needs, is the RESHIM_ environment valid, what LD_PRELOAD holds\n"
               "  with CMD (a path, or a name looked up in PATH): can the shim be preloaded\n"
               "  into it (static, musl, Go, setuid/setgid, file capabilities, #! scripts)\n"
               "exit: 0 it can, 1 it cannot, 2 usage or a bad RESHIM_ variable\n");
}

int cmd_doctor(int argc, char **argv)
{
    int i = 0;
    for (; i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            usage(stdout);
            return EXIT_OK;
        }
        if (!strcmp(argv[i], "--")) {
            i++;
            break;
        }
        if (argv[i][0] == '-' && argv[i][1]) {
            fprintf(stderr, "reshim: doctor: unknown option %s\n", argv[i]);
            usage(stderr);
            return EXIT_USAGE;
        }
        break;
    }
    const char *cmd = i < argc ? argv[i] : NULL;
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
    if (cmd) {
        char path[PATH_MAX];
        if (resolve_cmd(cmd, path, sizeof path) != 0) {
            if (errno == EACCES)
                add_fail(r, "not executable", "%s: found as %s, not executable", cmd, path);
            else if (errno == ENAMETOOLONG)
                add_fail(r, "name too long", "%s: name too long", cmd);
            else if (strchr(cmd, '/'))
                add_fail(r, "no such file", "%s: no such file", cmd);
            else
                add_fail(r, "not found in PATH", "%s: not found in PATH", cmd);
        } else {
            if (!strchr(cmd, '/'))
                add(r, L_OK, "%s: %s (from PATH)", cmd, path);
            check_file(r, path, &si, 0);
        }
    }
    report_print(r, stdout);
    const char *what = cmd ? cmd : "the shim";
    if (r->failed)
        printf("%s cannot be preloaded: %s\n", what, r->reason);
    else if (r->bad_config)
        printf("%s can be preloaded%s, but %d RESHIM_ setting%s invalid (%s used instead)\n",
               what, cmd ? "" : " here", r->bad_config, r->bad_config == 1 ? " is" : "s are",
               r->bad_config == 1 ? "its default is" : "their defaults are");
    else
        printf("%s can be preloaded%s\n", what, cmd ? "" : " here");
    fflush(stdout);
    int rc = r->bad_config ? EXIT_USAGE : r->failed ? EXIT_FAIL : EXIT_OK;
    free(r);
    return rc;
}
