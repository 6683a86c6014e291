/* pyheap.h: who holds the memory, in a CPython process's own words (see
 * pyheap.c): the interpreter's own allocator hooked and sampled with the
 * malloc family's countdown, and the Python stack (file, function, line) of
 * those samples. The hooks call down into heapprof.c (the countdown, the
 * record); what heapprof needs of this file it calls through pyheap_ops. */
#ifndef RESHIM_PYHEAP_H
#define RESHIM_PYHEAP_H

#include <stdbool.h>
#include <stddef.h>

#include "heapprof.h"
#include "reshim.h"

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

/* The above, handed to heapprof at init (lifecycle.c:
 * heapprof_init(config, &pyheap_ops)): heapprof.c calls them through this,
 * never by name, as it sits below this file (see pyheap.c). */
extern const struct heap_py_ops pyheap_ops;

#endif
