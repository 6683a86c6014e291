/* cfiwalk.c: a stack walk with cached unwind rules (cfiwalk.h).
 *
 * On x86_64, what a walk needs of a frame, at its return address: where the
 * caller's stack pointer (the CFA) is (rsp or rbp plus an offset), where the
 * return address is (CFA - 8) and whether the caller's rbp was saved (and
 * where). GCC's code gives exactly that almost everywhere. Those rules are
 * read once per return address from the FDE libgcc's _Unwind_Find_FDE finds
 * (the CIE's and the FDE's DWARF call-frame program run up to the address,
 * as libgcc runs it) and kept, packed in a word, in an open-addressing
 * table: every thread's walk reads it; the first to miss an address writes
 * it (one compare-and-swap claims a slot, keys are never moved).
 *
 * Anything else is the full unwinder's: a CFA on another register or an
 * expression, rbp or the return address kept other than on the stack, a
 * signal frame ('S'), set_loc, 64-bit DWARF: that frame's rule says so and
 * the walk returns -1. Code with no FDE ends the stack there, as it ends
 * libgcc's (reported, then the end); no rule is kept for it, nor for code
 * outside every loaded object (a JIT's, whose registered FDEs may change
 * under the same address).
 *
 * An object unloaded (dlclose, or glibc's own) may leave rules for addresses
 * that later hold other code: each walk reads the loader's count of objects
 * removed (dl_iterate_phdr's dlpi_subs, its first object only) and a change
 * starts a new epoch; a rule of an older epoch is read again. A rule read
 * for an address on a live stack stays true while the walk runs: code on a
 * stack is not unloaded.
 *
 * Memory: reads are of the stack only, at the CFA the rules give, which
 * must rise frame by frame (as libgcc, which trusts the same tables).
 * Never: allocates, takes a lock of its own, or writes outside the table
 * and f. */
#define _GNU_SOURCE
#include "cfiwalk.h"

#include <link.h>
#include <stdatomic.h>
#include <string.h>

#if defined(__x86_64__)

#define SLOTS 8192 /* 128 KiB mapped, touched as return addresses come */
#define PROBES 8
#define WALK_MAX 512          /* frames walked at most */
#define STEP_MAX (64u << 20)  /* a frame larger than this: the full unwinder */

/* A rule in 32 bits: kind, the CFA's base (rbp, else rsp), rbp saved, its
 * slot's offset from the CFA in words (8 bits signed), the CFA's offset from
 * its base (20 bits signed). The return address is at CFA - 8 (else FULL). */
enum { K_NONE, K_STEP, K_END, K_FULL };
#define R_KIND 3u
#define R_CFA_BP 4u
#define R_BP_SAVED 8u
#define R_NOCACHE (1ull << 40) /* compute's flag: do not keep (above the packed word) */
#define BP_OFF_MIN (-128 * 8)
#define BP_OFF_MAX (127 * 8)
#define CFA_OFF_MIN (-(1 << 19))
#define CFA_OFF_MAX ((1 << 19) - 1)

struct slot {
    _Atomic uint64_t key; /* a return address; 0 free */
    _Atomic uint64_t val; /* epoch << 32 | rule; 0 not written yet */
};
_Static_assert(SLOTS * sizeof(struct slot) == 128 * 1024, "the table's size");

static struct slot *tab;
static cfi_find_fde_fn find_fde;
static cfi_find_object_fn find_object;
static atomic_uint epoch = 1;
static _Atomic unsigned long long seen_subs;
static _Atomic uint64_t reads;

size_t cfiwalk_table_bytes(void)
{
    return SLOTS * sizeof(struct slot);
}

bool cfiwalk_setup(void *mem, cfi_find_fde_fn fde, cfi_find_object_fn object)
{
    if (!mem || !fde || !object)
        return false;
    find_fde = fde;
    find_object = object;
    tab = mem;
    return true;
}

uint64_t cfiwalk_reads(void)
{
    return atomic_load_explicit(&reads, memory_order_relaxed);
}

/* ---- reading .eh_frame ------------------------------------------------------- */

struct rd {
    const uint8_t *p, *end;
    bool bad;
};

static uint64_t fixed(struct rd *r, int n)
{
    if (r->end - r->p < n) {
        r->bad = true;
        return 0;
    }
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--)
        v = v << 8 | r->p[i];
    r->p += n;
    return v;
}

static uint64_t uleb(struct rd *r)
{
    uint64_t v = 0;
    for (unsigned sh = 0; r->p < r->end && sh < 64; sh += 7) {
        uint8_t b = *r->p++;
        v |= (uint64_t)(b & 0x7f) << sh;
        if (!(b & 0x80))
            return v;
    }
    r->bad = true;
    return 0;
}

static int64_t sleb(struct rd *r)
{
    uint64_t v = 0;
    for (unsigned sh = 0; r->p < r->end && sh < 64; sh += 7) {
        uint8_t b = *r->p++;
        v |= (uint64_t)(b & 0x7f) << sh;
        if (!(b & 0x80)) {
            if (sh + 7 < 64 && (b & 0x40))
                v |= ~(uint64_t)0 << (sh + 7);
            return (int64_t)v;
        }
    }
    r->bad = true;
    return 0;
}

/* Past a pointer in DW_EH_PE encoding enc (its format: the low 4 bits). */
static void skip_enc(struct rd *r, uint8_t enc)
{
    if (enc == 0xff) /* omitted */
        return;
    if ((enc & 0x70) == 0x50) { /* aligned */
        r->bad = true;
        return;
    }
    switch (enc & 0x0f) {
    case 0x00: case 0x04: case 0x0c: fixed(r, 8); break;
    case 0x02: case 0x0a: fixed(r, 2); break;
    case 0x03: case 0x0b: fixed(r, 4); break;
    case 0x01: uleb(r); break;
    case 0x09: sleb(r); break;
    default: r->bad = true;
    }
}

/* A length-prefixed entry (CIE or FDE): its body, or false (64-bit DWARF,
 * a terminator). */
static bool entry(const uint8_t *at, struct rd *r)
{
    uint32_t len;
    memcpy(&len, at, 4);
    if (len == 0 || len == 0xffffffffu)
        return false;
    r->p = at + 4;
    r->end = at + 4 + len;
    r->bad = false;
    return true;
}

struct cie {
    uint64_t code_align;
    int64_t data_align;
    uint8_t fde_enc;
    bool z;
    struct rd insns;
};

static bool read_cie(const uint8_t *at, struct cie *c)
{
    struct rd r;
    if (!entry(at, &r) || fixed(&r, 4) != 0)
        return false;
    unsigned version = (unsigned)fixed(&r, 1);
    if (version != 1 && version != 3)
        return false;
    const char *aug = (const char *)r.p;
    size_t alen = strnlen(aug, (size_t)(r.end - r.p));
    if (alen == (size_t)(r.end - r.p))
        return false;
    r.p += alen + 1;
    if (aug[0] && aug[0] != 'z')
        return false;
    c->code_align = uleb(&r);
    c->data_align = sleb(&r);
    uint64_t ra_col = version == 1 ? fixed(&r, 1) : uleb(&r);
    if (ra_col != 16)
        return false;
    c->fde_enc = 0;
    c->z = aug[0] == 'z';
    if (c->z) {
        uint64_t n = uleb(&r);
        if (r.bad || n > (uint64_t)(r.end - r.p))
            return false;
        const uint8_t *data_end = r.p + n;
        for (const char *a = aug + 1; *a && !r.bad; a++) {
            if (*a == 'R')
                c->fde_enc = (uint8_t)fixed(&r, 1);
            else if (*a == 'L')
                fixed(&r, 1);
            else if (*a == 'P')
                skip_enc(&r, (uint8_t)fixed(&r, 1));
            else
                return false; /* 'S' (a signal frame) and the rest: the full unwinder's */
        }
        r.p = data_end;
    }
    c->insns = r;
    return !r.bad;
}

/* ---- running the call-frame program ------------------------------------------ */

enum { H_SAME, H_OFFSET, H_UNDEF, H_OTHER };
struct frame_rules {
    uint64_t cfa_reg;
    int64_t cfa_off;
    bool cfa_expr;
    uint8_t bp_how, ra_how;
    int64_t bp_off, ra_off;
};
#define REG_BP 6
#define REG_SP 7
#define REG_RA 16
#define STATES 8

static void set_reg(struct frame_rules *s, uint64_t reg, uint8_t how, int64_t off)
{
    if (reg == REG_BP) {
        s->bp_how = how;
        s->bp_off = off;
    } else if (reg == REG_RA) {
        s->ra_how = how;
        s->ra_off = off;
    }
}

static void restore_reg(struct frame_rules *s, const struct frame_rules *init, uint64_t reg)
{
    if (reg == REG_BP)
        set_reg(s, reg, init->bp_how, init->bp_off);
    else if (reg == REG_RA)
        set_reg(s, reg, init->ra_how, init->ra_off);
}

static void skip_block(struct rd *r)
{
    uint64_t n = uleb(r);
    if (n > (uint64_t)(r->end - r->p))
        r->bad = true;
    else
        r->p += n;
}

/* Runs r's instructions while the location is below ra (libgcc's rule: the
 * state before the call instruction). init: the CIE's rules (restore). */
static bool run(struct rd *r, const struct cie *c, uint64_t *loc, uint64_t ra,
                struct frame_rules *s, const struct frame_rules *init)
{
    struct frame_rules saved[STATES];
    int depth = 0;
    while (r->p < r->end && *loc < ra && !r->bad) {
        uint8_t op = *r->p++;
        uint64_t reg;
        switch (op >> 6) {
        case 1: *loc += (op & 0x3f) * c->code_align; continue;
        case 2: set_reg(s, op & 0x3f, H_OFFSET, (int64_t)uleb(r) * c->data_align); continue;
        case 3: restore_reg(s, init, op & 0x3f); continue;
        }
        switch (op) {
        case 0x00: break; /* nop */
        case 0x02: *loc += fixed(r, 1) * c->code_align; break;
        case 0x03: *loc += fixed(r, 2) * c->code_align; break;
        case 0x04: *loc += fixed(r, 4) * c->code_align; break;
        case 0x05: reg = uleb(r); set_reg(s, reg, H_OFFSET, (int64_t)uleb(r) * c->data_align); break;
        case 0x06: restore_reg(s, init, uleb(r)); break;
        case 0x07: set_reg(s, uleb(r), H_UNDEF, 0); break;
        case 0x08: set_reg(s, uleb(r), H_SAME, 0); break;
        case 0x09: reg = uleb(r); uleb(r); set_reg(s, reg, H_OTHER, 0); break;
        case 0x0a:
            if (depth == STATES)
                return false;
            saved[depth++] = *s;
            break;
        case 0x0b: {
            if (depth == 0)
                return false;
            *s = saved[--depth]; /* the CFA's rule with the rest, as libgcc keeps it */
            break;
        }
        case 0x0c: s->cfa_reg = uleb(r); s->cfa_off = (int64_t)uleb(r); s->cfa_expr = false; break;
        case 0x0d: s->cfa_reg = uleb(r); s->cfa_expr = false; break;
        case 0x0e: s->cfa_off = (int64_t)uleb(r); break;
        case 0x0f: s->cfa_expr = true; skip_block(r); break;
        case 0x10: reg = uleb(r); skip_block(r); set_reg(s, reg, H_OTHER, 0); break;
        case 0x11: reg = uleb(r); set_reg(s, reg, H_OFFSET, sleb(r) * c->data_align); break;
        case 0x12: s->cfa_reg = uleb(r); s->cfa_off = sleb(r) * c->data_align; s->cfa_expr = false; break;
        case 0x13: s->cfa_off = sleb(r) * c->data_align; break;
        case 0x14: reg = uleb(r); uleb(r); set_reg(s, reg, H_OTHER, 0); break;
        case 0x15: reg = uleb(r); sleb(r); set_reg(s, reg, H_OTHER, 0); break;
        case 0x16: reg = uleb(r); skip_block(r); set_reg(s, reg, H_OTHER, 0); break;
        case 0x2e: uleb(r); break; /* GNU_args_size */
        case 0x2f: reg = uleb(r); set_reg(s, reg, H_OFFSET, -(int64_t)uleb(r) * c->data_align); break;
        default: return false; /* set_loc and the rest */
        }
    }
    return !r->bad;
}

/* The rule in force at return address ra (packed; R_NOCACHE set when it
 * must not be kept). */
static uint64_t compute(uintptr_t ra)
{
    atomic_fetch_add_explicit(&reads, 1, memory_order_relaxed);
    struct cfi_bases b = {0};
    const uint8_t *fde = find_fde((void *)(ra - 1), &b);
    if (!fde)
        return K_END | R_NOCACHE; /* no unwind table: the stack ends here, as for libgcc */
    unsigned char obj[CFI_FIND_OBJECT_BYTES] __attribute__((aligned(16)));
    uint64_t keep = find_object((void *)(ra - 1), obj) == 0 ? 0 : R_NOCACHE;
    struct rd r;
    if (!entry(fde, &r))
        return K_FULL | keep;
    int32_t cie_delta;
    memcpy(&cie_delta, r.p, 4);
    r.p += 4;
    struct cie c;
    if (!read_cie(r.p - 4 - cie_delta, &c))
        return K_FULL | keep;
    skip_enc(&r, c.fde_enc);        /* pc_begin: b.func */
    skip_enc(&r, c.fde_enc & 0x0f); /* pc_range */
    if (c.z)
        skip_block(&r);
    if (r.bad)
        return K_FULL | keep;
    struct frame_rules init = {.cfa_reg = REG_SP}, s;
    uint64_t loc = (uintptr_t)b.func;
    if (!run(&c.insns, &c, &loc, ra, &init, &init))
        return K_FULL | keep;
    s = init;
    if (!run(&r, &c, &loc, ra, &s, &init))
        return K_FULL | keep;
    if (s.ra_how == H_UNDEF)
        return K_END | keep; /* the outermost frame (_start, a thread's start) */
    if (s.cfa_expr || (s.cfa_reg != REG_SP && s.cfa_reg != REG_BP) || s.ra_how != H_OFFSET ||
        s.ra_off != -8 || s.cfa_off < CFA_OFF_MIN || s.cfa_off > CFA_OFF_MAX)
        return K_FULL | keep;
    uint64_t rule = K_STEP | (s.cfa_reg == REG_BP ? R_CFA_BP : 0) |
                    (uint64_t)((uint32_t)s.cfa_off & 0xfffffu) << 12;
    if (s.bp_how == H_OFFSET) {
        if (s.bp_off % 8 || s.bp_off < BP_OFF_MIN || s.bp_off > BP_OFF_MAX)
            return K_FULL | keep;
        rule |= R_BP_SAVED | (uint64_t)(uint8_t)(int8_t)(s.bp_off / 8) << 4;
    } else if (s.bp_how == H_OTHER) {
        return K_FULL | keep;
    }
    return rule | keep;
}

/* ---- the table --------------------------------------------------------------- */

static uint32_t keep(struct slot *s, uintptr_t ra, uint32_t ep)
{
    uint64_t r = compute(ra);
    if (s && !(r & R_NOCACHE))
        atomic_store_explicit(&s->val, (uint64_t)ep << 32 | (uint32_t)r, memory_order_release);
    return (uint32_t)r;
}

static uint32_t rule_of(uintptr_t ra, uint32_t ep)
{
    uint64_t h = (ra * 0x9e3779b97f4a7c15ull) >> (64 - 13);
    _Static_assert(SLOTS == 1 << 13, "the hash's bits");
    for (int i = 0; i < PROBES; i++) {
        struct slot *s = &tab[(h + (uint64_t)i) & (SLOTS - 1)];
        uint64_t k = atomic_load_explicit(&s->key, memory_order_acquire);
        if (k == 0) {
            uint64_t zero = 0;
            if (atomic_compare_exchange_strong_explicit(&s->key, &zero, ra, memory_order_acq_rel,
                                                        memory_order_acquire))
                return keep(s, ra, ep);
            k = zero; /* another thread's claim */
        }
        if (k == ra) {
            uint64_t v = atomic_load_explicit(&s->val, memory_order_acquire);
            if ((uint32_t)(v >> 32) == ep)
                return (uint32_t)v;
            return keep(s, ra, ep); /* not written yet, or of an older epoch */
        }
    }
    return keep(NULL, ra, ep); /* a crowded neighbourhood: read every time */
}

static int first_subs(struct dl_phdr_info *info, size_t size, void *arg)
{
    if (size >= offsetof(struct dl_phdr_info, dlpi_subs) + sizeof info->dlpi_subs)
        *(unsigned long long *)arg = info->dlpi_subs;
    return 1;
}

static uint32_t epoch_now(void)
{
    unsigned long long subs = 0;
    dl_iterate_phdr(first_subs, &subs);
    if (subs != atomic_load_explicit(&seen_subs, memory_order_acquire)) {
        atomic_store_explicit(&seen_subs, subs, memory_order_release);
        atomic_fetch_add_explicit(&epoch, 1, memory_order_acq_rel);
    }
    return atomic_load_explicit(&epoch, memory_order_acquire);
}

/* A word of this thread's stack, at an address its rules gave. */
__attribute__((no_sanitize_address)) static inline uintptr_t stack_word(uintptr_t at)
{
    return *(const uintptr_t *)at;
}

__attribute__((noinline)) int cfiwalk(uintptr_t *f, int max, uintptr_t skip_lo, uintptr_t skip_hi)
{
    if (!tab || max <= 0)
        return -1;
    uint32_t ep = epoch_now();
    uintptr_t ip, sp, bp;
    __asm__ volatile("lea 0(%%rip), %0\n\tmov %%rsp, %1\n\tmov %%rbp, %2"
                     : "=r"(ip), "=r"(sp), "=r"(bp));
    uintptr_t ra = ip + 1; /* the rules in force at ip: those of a return address ip + 1 */
    int n = 0;
    for (int depth = 0; depth < WALK_MAX; depth++) {
        uint32_t r = rule_of(ra, ep);
        if ((r & R_KIND) == K_END)
            return n;
        if ((r & R_KIND) != K_STEP)
            return -1;
        int32_t cfa_off = (int32_t)(r & 0xfffff000u) >> 12;
        uintptr_t cfa = ((r & R_CFA_BP) ? bp : sp) + (uintptr_t)(intptr_t)cfa_off;
        if (cfa <= sp || cfa - sp > STEP_MAX)
            return -1; /* a stack that does not rise: not ours to walk */
        uintptr_t next = stack_word(cfa - 8);
        if (r & R_BP_SAVED)
            bp = stack_word(cfa + (uintptr_t)(intptr_t)((int8_t)(uint8_t)(r >> 4) * 8));
        sp = cfa;
        if (!next)
            return n;
        ra = next;
        if (n == 0 && ra >= skip_lo && ra < skip_hi)
            continue;
        f[n++] = ra;
        if (n >= max)
            return n;
    }
    return n;
}

#else /* not x86_64: the full unwinder always */

size_t cfiwalk_table_bytes(void)
{
    return 0;
}

bool cfiwalk_setup(void *mem, cfi_find_fde_fn fde, cfi_find_object_fn object)
{
    (void)mem;
    (void)fde;
    (void)object;
    return false;
}

int cfiwalk(uintptr_t *f, int max, uintptr_t skip_lo, uintptr_t skip_hi)
{
    (void)f;
    (void)max;
    (void)skip_lo;
    (void)skip_hi;
    return -1;
}

uint64_t cfiwalk_reads(void)
{
    return 0;
}

#endif
