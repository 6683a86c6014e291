/* spawn.c: the ways a process makes a child that the fork handlers do not
 * see: vfork, clone and _Fork. A child that shares our memory (a vfork
 * child runs on its parent's memory and TLS until it execs or exits) must
 * never change the parent's tables, and a child that no fork handler made
 * the owner must leave them alone too: reshim_in_foreign_child (state.c)
 * tells both, and asks the kernel for the pid only when one of these said
 * such a child may exist (a vfork on this thread, until the parent is back;
 * a clone with CLONE_VM, for good). fork() itself needs nothing here: its
 * child handler (atfork.c) makes the child the owner.
 *
 * A child made with a raw system call (syscall(SYS_vfork), SYS_clone) is
 * not seen. posix_spawn, system and popen make theirs inside the C library,
 * whose child calls nothing interposed before it execs.
 *
 * vfork cannot be wrapped by a C function: its child returns through the
 * wrapper's frame and then runs on, over the stack the parent returns
 * through later. So vfork is a few instructions of assembly that call
 * vfork_prepare (which returns before the vfork) and jump to the real
 * vfork, which returns straight to the app, in the child and in the
 * parent. Where the shim has no such stub, vfork is fork, as POSIX allows. */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <stdarg.h>
#include <unistd.h>

#include "real.h"
#include "reshim.h"

/* fork for a C library without vfork: called, not address-taken (an
 * address would be looked up at every start). */
static pid_t vfork_as_fork(void)
{
    return fork();
}

/* Called by the stub: marks this thread and returns the real vfork. */
HIDDEN void *reshim_vfork_prepare(void);
HIDDEN void *reshim_vfork_prepare(void)
{
    int saved = errno; /* binding the real symbols and init may set it */
    (void)reshim_active(); /* initialised first: fork handlers in, our pid known */
    pid_t (*f)(void) = REAL(vfork);
    reshim_vfork_begin();
    errno = saved;
    return f ? (void *)f : (void *)vfork_as_fork;
}

#if defined(__x86_64__)
/* The stack is aligned for the call (entered with the return address
 * pushed: 8 more), and back as it came before the jump. */
__asm__(".pushsection .text\n"
        ".globl vfork\n"
        ".type vfork,@function\n"
        "vfork:\n"
        "    sub $8, %rsp\n"
        "    call reshim_vfork_prepare\n"
        "    add $8, %rsp\n"
        "    jmp *%rax\n"
        ".size vfork, .-vfork\n"
        ".popsection\n");
#elif defined(__aarch64__)
/* The link register (the app's return address) kept across the call. */
__asm__(".pushsection .text\n"
        ".globl vfork\n"
        ".type vfork,%function\n"
        "vfork:\n"
        "    stp x29, x30, [sp, #-16]!\n"
        "    mov x29, sp\n"
        "    bl reshim_vfork_prepare\n"
        "    ldp x29, x30, [sp], #16\n"
        "    br x0\n"
        ".size vfork, .-vfork\n"
        ".popsection\n");
#else
EXPORT pid_t vfork(void)
{
    return vfork_as_fork();
}
#endif

/* A child that shares our memory (CLONE_VM without CLONE_THREAD): checks ask
 * the pid from now on. One that does not: the checks ask while it is made,
 * so that its copy asks for good (its pid is not the owner's: it passes
 * everything through, as a _Fork child does). The three optional arguments
 * are passed on as they came (glibc's clone reads them only when the flags
 * say so). */
EXPORT int clone(int (*fn)(void *), void *stack, int flags, void *arg, ...)
{
    va_list ap;
    va_start(ap, arg);
    pid_t *ptid = va_arg(ap, pid_t *);
    void *tls = va_arg(ap, void *);
    pid_t *ctid = va_arg(ap, pid_t *);
    va_end(ap);
    int saved = errno;
    (void)reshim_active(); /* initialised first: fork handlers in, our pid known */
    int (*f)(int (*)(void *), void *, int, void *, ...) = REAL(clone);
    errno = saved;
    if (!f) {
        errno = ENOSYS;
        return -1;
    }
    if (flags & CLONE_THREAD)
        return f(fn, stack, flags, arg, ptid, tls, ctid);
    if (flags & CLONE_VM)
        reshim_pid_checks_forever();
    else
        reshim_pid_checks_add(1);
    int r = f(fn, stack, flags, arg, ptid, tls, ctid);
    if (!(flags & CLONE_VM))
        reshim_pid_checks_add(-1);
    return r;
}

/* fork without the fork handlers: its child is left as not the owner (its
 * copy asks the pid, which is not the owner's), so it passes everything
 * through, as it did before these checks were cheap. */
EXPORT pid_t _Fork(void)
{
    int saved = errno;
    (void)reshim_active(); /* initialised first: our pid known */
    pid_t (*f)(void) = REAL(_Fork);
    errno = saved;
    if (!f) {
        errno = ENOSYS;
        return -1;
    }
    pid_t r = f();
    if (r == 0)
        reshim_pid_checks_forever();
    return r;
}
