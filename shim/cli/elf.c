/* elf.c: what the CLI needs to know of an ELF file (`run` and `doctor`
 * judge a program, `doctor` the shim itself), read with pread and bounds
 * checks. Nothing is mapped: every read is checked against the file size
 * first, with overflow-safe arithmetic, and every count is capped, so a
 * truncated or crafted file can only produce an error message. Reads
 * files only: runs nothing, prints nothing. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "preload.h"

/* Copies src into dst (n bytes), cut at n-1. */
static void scopy(char *dst, size_t n, const char *src)
{
    if (!n)
        return;
    size_t len = strnlen(src, n - 1);
    memcpy(dst, src, len);
    dst[len] = 0;
}

#define ELF_NOTE_MAX (1u << 20)    /* bytes of one note segment or section we read */
#define ELF_DYN_MAX 4096           /* dynamic entries we look at */
#define ELF_VERNEED_MAX 256        /* verneed files, and aux entries per file */

struct phdr {
    uint32_t type, flags;
    uint64_t offset, vaddr, filesz, memsz, align;
};

struct shdr {
    uint32_t name, type, link, info;
    uint64_t flags, addr, offset, size, addralign, entsize;
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
int elf_open(struct elf *e, int fd, uint64_t size, char *why, size_t n)
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
void elf_facts(const struct elf *e, struct elf_facts *f)
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

const char *elf_machine_name(uint16_t m)
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

const char *elf_type_name(uint16_t t, bool pie)
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
const char *elf_interp_libc(const char *interp)
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
const char *elf_needed_libc(const struct elf_facts *f)
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
int elf_version_cmp(const char *a, const char *b)
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
