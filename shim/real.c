/* real.c: resolves the next definition of each interposed symbol. Owns the
 * real_* pointers. Must never call an interposed function itself. */
#define _GNU_SOURCE
#include "real.h"

#include <dlfcn.h>
#include <stdatomic.h>

#include "reshim.h"

#define REAL_DEF(name, ret, args) HIDDEN ret(*real_##name) args;
REAL_SYMBOLS(REAL_DEF)
#undef REAL_DEF

static atomic_int bound;

HIDDEN void reshim_bind_symbols(void)
{
    if (atomic_load_explicit(&bound, memory_order_acquire))
        return;
    /* Racing threads resolve the same values; the stores are idempotent. */
#define REAL_BIND(name, ret, args) \
    if (!real_##name)              \
        real_##name = (ret(*) args)dlsym(RTLD_NEXT, #name);
    REAL_SYMBOLS(REAL_BIND)
#undef REAL_BIND
    atomic_store_explicit(&bound, 1, memory_order_release);
}
