/* pyheap.h: who holds the memory, in a CPython process's own words (see
 * pyheap.c): the interpreter's own allocator hooked and sampled with the
 * malloc family's countdown, and the Python stack (file, function, line) of
 * those samples. Used by heapprof.c only. */
#ifndef RESHIM_PYHEAP_H
#define RESHIM_PYHEAP_H

#include <stdbool.h>
#include <stddef.h>

#include "reshim.h"

#define PY_DEPTH 16 /* Python frames kept per stack */

/* One Python frame; the strings stay valid until pyheap_release(). */
struct py_frame {
    const char *file, *func;
    size_t file_len, func_len;
    int line;
};

struct py_stack {
    int n;
    struct py_frame f[PY_DEPTH];
    void *refs[2 * PY_DEPTH]; /* the strings' objects, released after use */
    int nrefs;
    void *exc[3]; /* the exception being raised, put back after the walk */
    bool saved;
};

/* Init: whether Python frames are wanted (RESHIM_HEAP_PYTHON). */
HIDDEN void pyheap_init(bool on);
/* At the heap profiler's set-up (under the guard): is this a CPython 3.9+
 * process? Finds its C API with dlsym. */
HIDDEN void pyheap_probe(void);
/* On a sampled stack outside the interpreter's allocator (under the guard,
 * no lock of ours held): hooks the allocator when it is safe and not done
 * yet (or undone since: the interpreter sets its allocators up at start). */
HIDDEN void pyheap_maybe_hook(void);
/* The Python stack of the allocation being sampled in the interpreter's
 * allocator (under the guard, no lock of ours held): 0 frames unless it is
 * safe to read (this thread holds the GIL; the interpreter initialised and
 * not finalising; not in a signal handler: in_signal). pyheap_release()
 * must follow, once the strings are copied. */
HIDDEN int pyheap_stack(struct py_stack *s, bool in_signal);
HIDDEN void pyheap_release(struct py_stack *s);
/* "hooked", "found, not hooked yet", "not a CPython process", "off"... */
HIDDEN const char *pyheap_state(void);

/* >0 while a hook on the interpreter's allocator calls the allocator it
 * wraps with a block that may reach malloc: a malloc sample then is dropped
 * (the hook decided for that block). */
extern TLS_IE int pyheap_in_hook;

/* heapprof.c: a sample taken in the interpreter's allocator, with its
 * Python stack. */
HIDDEN void heap_record_py(void *p, size_t n);

#endif
