/* pyheap.c: who holds the memory, in a CPython process's own words.
 *
 * Owns: finding CPython's C API in the process (at run time, in the
 * dynamic symbol tables of the loaded objects: the library never links
 * libpython; not dlsym, whose failure in a process without Python would
 * leave glibc's error message allocated, and whose dlerror() takes the
 * locale lock, which the sampled malloc may be under: setlocale); hooks on the interpreter's own allocator,
 * the MEM and OBJ domains of PyMem_SetAllocator, wrapping whatever is there
 * as tracemalloc does: most Python objects of 512 bytes or less never reach
 * malloc (pymalloc carves them from arenas it maps itself), and these hooks
 * sample them by bytes with the malloc family's countdown (heap_due: one TLS
 * decrement per call); and the Python stack of those samples, read through
 * the public C API (PyThreadState_GetFrame, PyFrame_GetBack, PyFrame_GetCode,
 * PyFrame_GetLineNumber, co_filename/co_qualname).
 *
 * When the Python stack is read: only on a sample taken in these hooks, after
 * the interpreter's allocator returned (never from the malloc family: malloc
 * may be called from inside pymalloc or mid-update of the interpreter's
 * state, and reading frames allocates), and only when this thread holds the
 * GIL (PyGILState_Check, with a thread state of its own), the interpreter
 * is initialised and not finalising, the stack has no signal frame, and the
 * recursion guard is held (what the walk allocates passes straight through,
 * unsampled). The exception being raised is put aside and back; the cyclic
 * GC is held off during the walk (3.11 creates frame objects on demand, and
 * a GC there would run finalizers inside an allocation).
 *
 * Each block is counted once, by the hook: malloc's countdown is parked
 * while the wrapped allocator runs (pymalloc passes a large object to
 * malloc), and the sample malloc is made to take for a sampled block is
 * recorded by the hook (heap_in_py_hook), with its Python stack.
 *
 * Above heapprof.c: these hooks are an allocator's entry points, as alloc.c's
 * are, and call down into its countdown and record. What heapprof needs of
 * this file (the probe, hooking, a sample's Python stack, the state word)
 * it calls through pyheap_ops, handed to it at init by lifecycle.c: a table
 * rather than a split of this file, because hooking is needed from below
 * (on a native sample) and is the hooks' own business.
 * Never: holds a lock of ours while calling the interpreter. */
#define _GNU_SOURCE
#include "pyheap.h"

#include <dlfcn.h>
#include <elf.h>
#include <link.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "heapprof.h"

/* PyMemAllocatorEx, as <Python.h> has it since 3.5. */
struct py_alloc {
    void *ctx;
    void *(*malloc)(void *ctx, size_t n);
    void *(*calloc)(void *ctx, size_t nelem, size_t elsize);
    void *(*realloc)(void *ctx, void *p, size_t n);
    void (*free)(void *ctx, void *p);
};
enum { PYMEM_DOMAIN_MEM = 1, PYMEM_DOMAIN_OBJ = 2 };

static struct {
    int (*is_init)(void);
    int (*finalizing)(void);
    void *(*tstate)(void);
    int (*gil_check)(void);
    void *(*get_frame)(void *);
    void *(*back)(void *);
    void *(*code)(void *);
    int (*lineno)(void *);
    void *(*getattr)(void *, const char *);
    const char *(*utf8)(void *, ssize_t *);
    void (*decref)(void *);
    void (*fetch)(void **, void **, void **);
    void (*restore)(void *, void *, void *);
    void (*clear)(void);
    int (*gc_disable)(void);
    int (*gc_enable)(void);
    void (*get_alloc)(int, struct py_alloc *);
    void (*set_alloc)(int, struct py_alloc *);
    const char *(*version)(void);
} py;

enum { PY_OFF, PY_UNPROBED, PY_ABSENT, PY_FOUND, PY_HOOKED };
static atomic_int py_state = PY_UNPROBED;
static const char *name_attr = "co_name"; /* co_qualname from 3.11 */
static int py_minor;

void pyheap_init(bool on)
{
    atomic_store(&py_state, on ? PY_UNPROBED : PY_OFF);
}

const char *pyheap_state(void)
{
    switch (atomic_load(&py_state)) {
    case PY_OFF: return "off (RESHIM_HEAP_PYTHON=off)";
    case PY_UNPROBED: return "not probed yet";
    case PY_ABSENT: return "not a CPython 3.9+ process";
    case PY_FOUND: return "CPython found, its allocator not hooked yet";
    default: return "CPython allocator hooked";
    }
}

/* A defined dynamic symbol of the loaded objects (the first in load order),
 * found through their GNU hash tables: nothing allocated, no lock but the
 * loader's (dl_iterate_phdr). */
struct sym_query {
    const char *name;
    uint32_t hash;
    void *addr;
};

static int sym_in(struct dl_phdr_info *info, size_t size, void *arg)
{
    (void)size;
    struct sym_query *q = arg;
    const ElfW(Dyn) *dyn = NULL;
    for (int i = 0; i < info->dlpi_phnum; i++)
        if (info->dlpi_phdr[i].p_type == PT_DYNAMIC)
            dyn = (const ElfW(Dyn) *)(info->dlpi_addr + info->dlpi_phdr[i].p_vaddr);
    if (!dyn)
        return 0;
    const ElfW(Sym) *symtab = NULL;
    const char *strtab = NULL;
    const uint32_t *gh = NULL;
    for (; dyn->d_tag != DT_NULL; dyn++) {
        /* glibc relocates these in place, musl does not */
        uintptr_t p = dyn->d_un.d_ptr;
        if (p < info->dlpi_addr)
            p += info->dlpi_addr;
        if (dyn->d_tag == DT_SYMTAB)
            symtab = (const ElfW(Sym) *)p;
        else if (dyn->d_tag == DT_STRTAB)
            strtab = (const char *)p;
        else if (dyn->d_tag == DT_GNU_HASH)
            gh = (const uint32_t *)p;
    }
    if (!symtab || !strtab || !gh || !gh[0] || !gh[2])
        return 0;
    uint32_t nbuckets = gh[0], symoffset = gh[1], bloom_size = gh[2], shift = gh[3];
    const ElfW(Addr) *bloom = (const ElfW(Addr) *)&gh[4];
    const uint32_t *buckets = (const uint32_t *)&bloom[bloom_size];
    const uint32_t *chain = &buckets[nbuckets];
    const unsigned bits = sizeof(ElfW(Addr)) * 8;
    uint32_t h = q->hash;
    ElfW(Addr) word = bloom[(h / bits) % bloom_size];
    ElfW(Addr) mask = (ElfW(Addr))1 << (h % bits) | (ElfW(Addr))1 << ((h >> shift) % bits);
    if ((word & mask) != mask)
        return 0;
    uint32_t i = buckets[h % nbuckets];
    if (i < symoffset)
        return 0;
    for (;; i++) {
        uint32_t c = chain[i - symoffset];
        const ElfW(Sym) *s = &symtab[i];
        if ((c | 1) == (h | 1) && s->st_shndx != SHN_UNDEF && s->st_value &&
            strcmp(strtab + s->st_name, q->name) == 0) {
            q->addr = (void *)(info->dlpi_addr + s->st_value);
            return 1;
        }
        if (c & 1)
            return 0;
    }
}

static void *look(const char *name)
{
    struct sym_query q = {name, 5381, NULL};
    for (const char *c = name; *c; c++)
        q.hash = q.hash * 33 + (unsigned char)*c;
    dl_iterate_phdr(sym_in, &q);
    return q.addr;
}

void pyheap_probe(void)
{
    if (atomic_load(&py_state) != PY_UNPROBED)
        return;
    int to = PY_ABSENT;
    *(void **)&py.is_init = look("Py_IsInitialized");
    if (!py.is_init)
        goto out;
    /* 3.9+: PyFrame_GetBack and PyFrame_GetCode. */
#define NEED(field, name)                                                                         \
    if (!(*(void **)&py.field = look(name)))                                                       \
        goto out;
    NEED(version, "Py_GetVersion");
    NEED(gil_check, "PyGILState_Check");
    NEED(get_frame, "PyThreadState_GetFrame");
    NEED(back, "PyFrame_GetBack");
    NEED(code, "PyFrame_GetCode");
    NEED(lineno, "PyFrame_GetLineNumber");
    NEED(getattr, "PyObject_GetAttrString");
    NEED(utf8, "PyUnicode_AsUTF8AndSize");
    NEED(decref, "Py_DecRef");
    NEED(fetch, "PyErr_Fetch");
    NEED(restore, "PyErr_Restore");
    NEED(clear, "PyErr_Clear");
    NEED(get_alloc, "PyMem_GetAllocator");
    NEED(set_alloc, "PyMem_SetAllocator");
#undef NEED
    if (!(*(void **)&py.tstate = look("PyThreadState_GetUnchecked")) &&
        !(*(void **)&py.tstate = look("_PyThreadState_UncheckedGet")))
        goto out;
    if (!(*(void **)&py.finalizing = look("Py_IsFinalizing")))
        *(void **)&py.finalizing = look("_Py_IsFinalizing");
    const char *v = py.version();
    py_minor = v[0] == '3' && v[1] == '.' ? atoi(v + 2) : 0;
    if (py_minor < 9)
        goto out;
    if (py_minor >= 11) {
        name_attr = "co_qualname";
        /* Frame objects are made on demand: the GC must be held off. */
        *(void **)&py.gc_disable = look("PyGC_Disable");
        *(void **)&py.gc_enable = look("PyGC_Enable");
        if (!py.gc_disable || !py.gc_enable || !py.finalizing)
            goto out;
    }
    to = PY_FOUND;
out:
    atomic_store(&py_state, to);
}

/* ---- the hooks -------------------------------------------------------------
 * Every object the interpreter makes passes here: the fast path is the
 * countdown (one subtraction from TLS, heap_crossed) and a tail call. Each
 * block is counted here, once: a call that may reach malloc (a large
 * block, a sampled one, any realloc) parks the countdown while the
 * allocator runs (heap_park), so that pymalloc's malloc call for a block
 * above 512 bytes does not count it a second time. A sampled block is
 * asked of the interpreter's allocator with at least SMALL_MAX + 1 bytes,
 * so that pymalloc passes it to malloc (it does so above 512 bytes, as it
 * does for every large object), and that malloc call is made a sample too
 * (heap_park(true): with glibc, alloc.c marks the block, and free's fast
 * path forgets marked blocks only): its free then reaches free(), which
 * forgets it, and nothing else needs to. (Under the interpreter's debug
 * hooks, PYTHONMALLOC=debug or -X dev, a block's header moves the address
 * free() sees: such samples are not forgotten.) So free is not hooked: the
 * interpreter's own is installed with the hooks. heap_in_py_hook is held
 * while the allocator runs: malloc's sample made inside is dropped
 * (heapprof.c), this hook recording it with its Python stack. */
#define SMALL_MAX 512 /* pymalloc's largest block (3.8 and later) */

/* The countdown has crossed (smp: heap_decide said sample) or the block is
 * large: the allocator's call with the countdown parked, and the sample. */
#define WRAPPED_CALL(smp, n, call)                                                                 \
    __extension__({                                                                               \
        int64_t left_ = heap_park(smp);                                                           \
        heap_in_py_hook++;                                                                        \
        void *r_ = (call);                                                                        \
        heap_in_py_hook--;                                                                        \
        heap_unpark(left_);                                                                       \
        if (unlikely(smp) && r_)                                                                  \
            heap_record_py(r_, n);                                                                \
        r_;                                                                                       \
    })

static __attribute__((noinline)) void *malloc_slow(const struct py_alloc *o, size_t n)
{
    bool smp = heap_left < 0 && heap_decide(n);
    return WRAPPED_CALL(smp, n, o->malloc(o->ctx, smp && n <= SMALL_MAX ? SMALL_MAX + 1 : n));
}

static __attribute__((noinline)) void *calloc_slow(const struct py_alloc *o, size_t nelem,
                                                    size_t elsize)
{
    size_t n = nelem * elsize; /* the interpreter checked for overflow */
    bool smp = heap_left < 0 && heap_decide(n);
    return WRAPPED_CALL(smp, n,
                        smp && n <= SMALL_MAX ? o->calloc(o->ctx, 1, SMALL_MAX + 1)
                                              : o->calloc(o->ctx, nelem, elsize));
}

/* A sampled block being resized is a malloc'd one (see above): realloc()
 * forgets it. */
static __attribute__((noinline)) void *realloc_hooked(const struct py_alloc *o, void *ptr,
                                                       size_t n)
{
    bool smp = heap_due(n);
    return WRAPPED_CALL(smp, n, o->realloc(o->ctx, ptr, smp && n <= SMALL_MAX ? SMALL_MAX + 1 : n));
}

/* The hooks of one domain: they wrap orig (what was there), and get orig's
 * own ctx, so that its free is installed as it is (no hook on free). */
#define DOMAIN_HOOKS(dom)                                                                          \
    static struct py_alloc orig_##dom;                                                            \
    static void *dom##_malloc(void *ctx, size_t n)                                                \
    {                                                                                             \
        if (likely(!heap_crossed(n)) && likely(n <= SMALL_MAX))                                   \
            return orig_##dom.malloc(ctx, n);                                                      \
        return malloc_slow(&orig_##dom, n);                                                        \
    }                                                                                             \
    static void *dom##_calloc(void *ctx, size_t nelem, size_t elsize)                             \
    {                                                                                             \
        size_t n = nelem * elsize;                                                                \
        if (likely(!heap_crossed(n)) && likely(n <= SMALL_MAX))                                   \
            return orig_##dom.calloc(ctx, nelem, elsize);                                          \
        return calloc_slow(&orig_##dom, nelem, elsize);                                            \
    }                                                                                             \
    static void *dom##_realloc(void *ctx, void *ptr, size_t n)                                    \
    {                                                                                             \
        (void)ctx;                                                                                \
        return realloc_hooked(&orig_##dom, ptr, n);                                                \
    }
DOMAIN_HOOKS(mem)
DOMAIN_HOOKS(obj)

/* May the interpreter be called on this thread now? */
static bool may_call(void)
{
    if (!py.is_init())
        return false;
    if (py.finalizing && py.finalizing())
        return false;
    return py.tstate() && py.gil_check();
}

void pyheap_maybe_hook(void)
{
    int st = atomic_load_explicit(&py_state, memory_order_acquire);
    if (st != PY_FOUND && st != PY_HOOKED)
        return;
    /* Once the interpreter is initialised (it may set its allocators during
     * start-up; and its start-up objects are its own), with the GIL: no
     * other thread is in these domains. Looked at on every malloc sample:
     * hooked again if someone set them since. */
    if (!may_call())
        return;
    struct py_alloc cur;
    py.get_alloc(PYMEM_DOMAIN_OBJ, &cur);
    if (cur.malloc == obj_malloc)
        return;
    py.get_alloc(PYMEM_DOMAIN_MEM, &orig_mem);
    orig_obj = cur;
    struct py_alloc h = {orig_mem.ctx, mem_malloc, mem_calloc, mem_realloc, orig_mem.free};
    py.set_alloc(PYMEM_DOMAIN_MEM, &h);
    h = (struct py_alloc){orig_obj.ctx, obj_malloc, obj_calloc, obj_realloc, orig_obj.free};
    py.set_alloc(PYMEM_DOMAIN_OBJ, &h);
    atomic_store_explicit(&py_state, PY_HOOKED, memory_order_release);
}

/* ---- the Python stack -------------------------------------------------------- */

static const char *str_of(struct py_stack *s, void *code, const char *attr, size_t *len)
{
    void *o = py.getattr(code, attr);
    if (!o) {
        py.clear();
        return NULL;
    }
    s->refs[s->nrefs++] = o;
    ssize_t n = 0;
    const char *u = py.utf8(o, &n);
    if (!u) {
        py.clear();
        return NULL;
    }
    *len = (size_t)n;
    return u;
}

int pyheap_stack(struct py_stack *s, bool in_signal)
{
    s->n = 0;
    s->nrefs = 0;
    s->saved = false;
    if (in_signal || atomic_load_explicit(&py_state, memory_order_acquire) != PY_HOOKED ||
        !may_call())
        return 0;
    py.fetch(&s->exc[0], &s->exc[1], &s->exc[2]);
    s->saved = true;
    int gc_was = py.gc_disable ? py.gc_disable() : 0;
    void *f = py.get_frame(py.tstate());
    while (f && s->n < PY_DEPTH) {
        struct py_frame *pf = &s->f[s->n];
        void *code = py.code(f);
        if (code) {
            pf->file = str_of(s, code, "co_filename", &pf->file_len);
            pf->func = str_of(s, code, name_attr, &pf->func_len);
            py.decref(code);
            if (pf->file && pf->func) {
                pf->line = py.lineno(f);
                s->n++;
            }
        }
        void *back = py.back(f);
        py.decref(f);
        f = back;
    }
    if (f)
        py.decref(f);
    if (gc_was)
        py.gc_enable();
    return s->n;
}

void pyheap_release(struct py_stack *s)
{
    for (int i = 0; i < s->nrefs; i++)
        py.decref(s->refs[i]);
    s->nrefs = 0;
    if (s->saved)
        py.restore(s->exc[0], s->exc[1], s->exc[2]);
    s->saved = false;
}

const struct heap_py_ops pyheap_ops = {
    .init = pyheap_init,
    .probe = pyheap_probe,
    .maybe_hook = pyheap_maybe_hook,
    .stack = pyheap_stack,
    .release = pyheap_release,
    .state = pyheap_state,
};
