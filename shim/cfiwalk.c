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
 * Rules are kept for the process's life. An object unloaded and another
 * mapped at its addresses could meet rules read for the first: that walk
 * names wrong frames or ends, it cannot read out of bounds (below); a
 * library opened again at the same address has the same rules. (Watching
 * unloads costs: dl_iterate_phdr's count takes the loader's lock, which
 * would hang a fork child made while another thread held it, and could
 * meet an app's own lock taken in its callback; interposing dlclose, which
 * would miss glibc's own unloads, costs every process 0.5k instructions at
 * load.) A rule read for an address on a live stack stays true while the
 * walk runs: code on a stack is not unloaded. No lock is taken.
 *
 * Memory: only this thread's own stack is read, between the walk's stack
 * pointer and the stack's top (__libc_stack_end for the main thread; for
 * another, its descriptor, which glibc keeps above its stack, and its size
 * from pthread_getattr_np, once, never for the main thread), at CFAs that must rise frame by frame: a
 * wrong rule ends the walk (-1), it cannot fault. On another stack (a
 * signal's alternate one, a coroutine's) the full unwinder
 * walks. Never: takes a lock of its own or writes outside the table, f and
 * the caller's cfi_stack; allocates only in pthread_getattr_np, once a
 * thread. */
#define _GNU_SOURCE
#include "cfiwalk.h"
#include "sys.h"

#include <pthread.h>
#include <stdatomic.h>
#include <sys/resource.h>
#include <string.h>

#if defined(__x86_64__)

#define SLOTS 8192 /* 128 KiB mapped, touched as return addresses come */
#define PROBES 8
#define WALK_MAX 512          /* frames walked at most */

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
    _Atomic uint64_t val; /* its rule; 0 not written yet */
};
_Static_assert(SLOTS * sizeof(struct slot) == 128 * 1024, "the table's size");

static struct slot *tab;
static cfi_find_fde_fn find_fde;
static cfi_find_object_fn find_object;
static uintptr_t main_top;  /* __libc_stack_end: the main thread's stack top */
static uintptr_t main_size; /* how far below it the main stack may reach */
static _Atomic uint64_t reads;

size_t cfiwalk_table_bytes(void)
{
    return SLOTS * sizeof(struct slot);
}

bool cfiwalk_setup(void *mem, cfi_find_fde_fn fde, cfi_find_object_fn object,
                   const void *stack_end)
{
    if (!mem || !fde || !object || !stack_end)
        return false;
    find_fde = fde;
    find_object = object;
    main_top = *(const uintptr_t *)stack_end;
    /* The main stack grows to RLIMIT_STACK; the kernel maps nothing else
     * within 128 MiB below its top (mmap's base keeps that gap). */
    struct rlimit rl;
    main_size = (uintptr_t)128 << 20;
    if (getrlimit(RLIMIT_STACK, &rl) == 0 && rl.rlim_cur < main_size)
        main_size = (uintptr_t)rl.rlim_cur;
    tab = mem;
    return true;
}

/* This thread's stack (not the main one): its top is the thread's
 * descriptor, which glibc keeps above its stack (%fs:0x10, the descriptor's
 * own address); its size, pthread_getattr_np's (once per thread). */
static bool thread_stack(uintptr_t self, struct cfi_stack *st)
{
    if (!st->known) {
        pthread_attr_t a;
        size_t size = 0;
        st->known = -1;
        /* The main thread off its stack (a signal's alternate one): no
         * thread stack to find (pthread_getattr_np would read /proc, maybe
         * in a signal handler). */
        if (sys_call0(SYS_gettid) == sys_call0(SYS_getpid))
            return false;
        if (pthread_getattr_np(pthread_self(), &a) == 0) {
            if (pthread_attr_getstacksize(&a, &size) == 0 && size && size < self) {
                st->lo = self - size;
                st->hi = self;
                st->known = 1;
            }
            pthread_attr_destroy(&a);
        }
    }
    return st->known == 1;
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
    bool cfa_expr, sp_ruled;
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
    } else if (reg == REG_SP) {
        s->sp_ruled = true; /* the caller's rsp not the CFA: libgcc's to follow */
    }
}

/* As libgcc: a restored register is unsaved (the CIE's rule is not looked
 * at): rbp keeps its value; the return address so is not one we walk. */
static void restore_reg(struct frame_rules *s, uint64_t reg)
{
    set_reg(s, reg, reg == REG_RA ? H_OTHER : H_SAME, 0);
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
 * state before the call instruction). */
static bool run(struct rd *r, const struct cie *c, uint64_t *loc, uint64_t ra,
                struct frame_rules *s)
{
    struct frame_rules saved[STATES];
    int depth = 0;
    while (r->p < r->end && *loc < ra && !r->bad) {
        uint8_t op = *r->p++;
        uint64_t reg;
        switch (op >> 6) {
        case 1: *loc += (op & 0x3f) * c->code_align; continue;
        case 2: set_reg(s, op & 0x3f, H_OFFSET, (int64_t)uleb(r) * c->data_align); continue;
        case 3: restore_reg(s, op & 0x3f); continue;
        }
        switch (op) {
        case 0x00: break; /* nop */
        case 0x02: *loc += fixed(r, 1) * c->code_align; break;
        case 0x03: *loc += fixed(r, 2) * c->code_align; break;
        case 0x04: *loc += fixed(r, 4) * c->code_align; break;
        case 0x05: reg = uleb(r); set_reg(s, reg, H_OFFSET, (int64_t)uleb(r) * c->data_align); break;
        case 0x06: restore_reg(s, uleb(r)); break;
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
    if (!fde) /* no unwind table: the stack ends here, as for libgcc (which also
               * knows a signal return stub without one by its code: not read
               * here, ra may be any word when a rule was wrong) */
        return K_END | R_NOCACHE;
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
    struct frame_rules s = {.cfa_reg = REG_SP};
    uint64_t loc = (uintptr_t)b.func;
    if (!run(&c.insns, &c, &loc, ra, &s) || !run(&r, &c, &loc, ra, &s))
        return K_FULL | keep;
    if (s.ra_how == H_UNDEF)
        return K_END | keep; /* the outermost frame (_start, a thread's start) */
    if (s.cfa_expr || s.sp_ruled || (s.cfa_reg != REG_SP && s.cfa_reg != REG_BP) || s.ra_how != H_OFFSET ||
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

static uint32_t rule_of(uintptr_t ra)
{
    uint64_t h = (ra * 0x9e3779b97f4a7c15ull) >> (64 - 13);
    _Static_assert(SLOTS == 1 << 13, "the hash's bits");
    struct slot *mine = NULL; /* ra's slot, its rule not written yet */
    for (int i = 0; i < PROBES; i++) {
        struct slot *s = &tab[(h + (uint64_t)i) & (SLOTS - 1)];
        uint64_t k = atomic_load_explicit(&s->key, memory_order_acquire);
        if (k == ra) {
            uint64_t v = atomic_load_explicit(&s->val, memory_order_acquire);
            if (v)
                return (uint32_t)v;
            mine = s;
            break;
        }
        if (k == 0)
            break; /* not in the table */
    }
    uint64_t r = compute(ra);
    if (r & R_NOCACHE) /* not kept: no slot is claimed for it */
        return (uint32_t)r;
    for (int i = 0; !mine && i < PROBES; i++) {
        struct slot *s = &tab[(h + (uint64_t)i) & (SLOTS - 1)];
        uint64_t k = 0;
        if (atomic_compare_exchange_strong_explicit(&s->key, &k, ra, memory_order_acq_rel,
                                                    memory_order_acquire) ||
            k == ra)
            mine = s; /* claimed here, or by another thread for the same address */
    }
    if (mine) /* a crowded neighbourhood keeps none: read every time */
        atomic_store_explicit(&mine->val, (uint32_t)r, memory_order_release);
    return (uint32_t)r;
}

/* A word of this thread's stack, at an address its rules gave (checked
 * against the stack's bounds first). */
__attribute__((no_sanitize_address)) static inline uintptr_t stack_word(uintptr_t at)
{
    return *(const uintptr_t *)at;
}

__attribute__((noinline)) int cfiwalk(uintptr_t *f, int max, uintptr_t skip_lo, uintptr_t skip_hi,
                                      struct cfi_stack *st)
{
    if (!tab || max <= 0)
        return -1;
    uintptr_t ip, sp, bp, self;
    __asm__ volatile("lea 0(%%rip), %0\n\tmov %%rsp, %1\n\tmov %%rbp, %2\n\tmov %%fs:0x10, %3"
                     : "=r"(ip), "=r"(sp), "=r"(bp), "=r"(self));
    /* The walk reads [sp, top] of the thread's own stack: the main stack
     * below __libc_stack_end, or the thread's (thread_stack). Another stack
     * (a coroutine's, a signal's alternate one): the full unwinder's. */
    uintptr_t lo = sp, top;
    if (sp < main_top && main_top - sp < main_size)
        top = main_top;
    else if (thread_stack(self, st) && sp >= st->lo && sp < st->hi)
        top = st->hi;
    else
        return -1;
    uintptr_t ra = ip + 1; /* the rules in force at ip: those of a return address ip + 1 */
    int n = 0;
    for (int depth = 0; depth < WALK_MAX; depth++) {
        uint32_t r = rule_of(ra);
        if ((r & R_KIND) == K_END)
            return n;
        if ((r & R_KIND) != K_STEP)
            return -1;
        int32_t cfa_off = (int32_t)(r & 0xfffff000u) >> 12;
        uintptr_t cfa = ((r & R_CFA_BP) ? bp : sp) + (uintptr_t)(intptr_t)cfa_off;
        uintptr_t bp_at = cfa + (uintptr_t)(intptr_t)((int8_t)(uint8_t)(r >> 4) * 8);
        /* The stack rises, and every word read lies on it. */
        if (cfa <= sp || cfa - 8 < lo || cfa > top ||
            ((r & R_BP_SAVED) && (bp_at < lo || bp_at > top - 8)))
            return -1;
        uintptr_t next = stack_word(cfa - 8);
        if (r & R_BP_SAVED)
            bp = stack_word(bp_at);
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

bool cfiwalk_setup(void *mem, cfi_find_fde_fn fde, cfi_find_object_fn object,
                   const void *stack_end)
{
    (void)mem;
    (void)fde;
    (void)object;
    (void)stack_end;
    return false;
}


int cfiwalk(uintptr_t *f, int max, uintptr_t skip_lo, uintptr_t skip_hi, struct cfi_stack *st)
{
    (void)st;
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
