/* cfiwalk.h: the heap profiler's stack walk with cached unwind rules
 * (x86_64): each return address's rules are read once from its object's
 * .eh_frame (found by libgcc's _Unwind_Find_FDE) into a table shared by all
 * threads; a walk is then a lookup and two loads a frame, where
 * _Unwind_Backtrace reads and runs the DWARF program of every frame of
 * every sample (~1.8k instructions a frame). Stacks it cannot walk (a signal
 * frame, a rule it does not cache) are left to the full unwinder: the walk
 * says so. Pure: no state of the shim, unit-tested (test_cfiwalk). */
#ifndef RESHIM_CFIWALK_H
#define RESHIM_CFIWALK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* libgcc's struct dwarf_eh_bases (unwind-dw2-fde.h). */
struct cfi_bases {
    void *tbase, *dbase, *func;
};
/* libgcc_s's _Unwind_Find_FDE: the FDE covering pc, or NULL. */
typedef const void *(*cfi_find_fde_fn)(void *pc, struct cfi_bases *bases);
/* glibc's _dl_find_object (2.35): 0 when pc is in a loaded object; res is
 * its struct dl_find_object (CFI_FIND_OBJECT_BYTES are enough). */
typedef int (*cfi_find_object_fn)(void *pc, void *res);
#define CFI_FIND_OBJECT_BYTES 128

/* The table's size (mapped by the caller, zero-filled). */
size_t cfiwalk_table_bytes(void);
/* Walks with the rule table at mem, FDEs found by find_fde; only the rules
 * of code inside a loaded object (find_object) are kept (a JIT's code may be
 * replaced under the same address).
 * stack_end: &__libc_stack_end (the main thread's stack top). False where
 * the walk cannot run (not x86_64, a NULL argument): the caller keeps its
 * unwinder. */
bool cfiwalk_setup(void *mem, cfi_find_fde_fn find_fde, cfi_find_object_fn find_object,
                   const void *stack_end);

/* A thread's own stack, found at its first walk off the main stack (the
 * caller keeps one per thread, zeroed: thread-local). */
struct cfi_stack {
    uintptr_t lo, hi;
    int known; /* 0 not looked at, 1 found, -1 none */
};

/* The caller's stack: the return addresses of its frames, innermost first,
 * as _Unwind_Backtrace's _Unwind_GetIP gives them, up to max, the innermost
 * ones inside [skip_lo, skip_hi) left out (the shim's own). -1 when a frame
 * needs the full unwinder, or the walk is not on the thread's own stack
 * (nothing is written that counts then). */
int cfiwalk(uintptr_t *f, int max, uintptr_t skip_lo, uintptr_t skip_hi, struct cfi_stack *st);

/* Rules read from .eh_frame since setup (table misses), for the tests. */
uint64_t cfiwalk_reads(void);

#endif
