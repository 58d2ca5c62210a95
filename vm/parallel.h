/*
 * parallel.h — parallel calls: one script function on worker threads
 * (vm/parallel.c; the builtins parallel_map and parallel_for in
 * stdlib/parallel.c).  Internal to the VM: see docs/language.md §15.
 */
#ifndef KP_PARALLEL_H
#define KP_PARALLEL_H

#include "vm.h"

/* The most workers a parallel call uses, whatever KpConfig.threads says. */
#define KP_MAX_THREADS 64

/* What one parallel call does with each index k of [from, to). */
typedef enum KpParKind {
    KP_PAR_MAP,   /* dst[k] = f(&src[k]) (f(src[k]) when f takes a scalar by value) */
    KP_PAR_RANGE, /* f(k); with dst: dst[k - from] = f(k) */
    KP_PAR_EACH,  /* f($&src[k]), or f(k, $&src[k]) when f has two parameters */
} KpParKind;

typedef struct KpParJob {
    KpParKind kind;
    int64_t from, to;      /* the indices, from <= to */
    KpValue fn;            /* the function (a KP_T_FUNC or a closure record), borrowed */
    KpList *src;           /* MAP, EACH: the list, borrowed */
    KpList *dst;           /* MAP (and RANGE, for parallel_map(a..b, f)): the
                              results, len == to - from, every item UNSET */
    const char *who;       /* "parallel_map" ... for messages */
} KpParJob;

/* Runs the job on worker threads — KpVM.threads of them at most (1: on
 * the calling thread, in order) — each worker a copy of vm's running
 * state with its own registers (a window of vm's stack above every live
 * register), frames, error buffers and drop stack, sharing the compiled
 * code, the globals and the data it reads.  Workers allocate from the
 * worker allocator (kp_par_allocator).  The first worker that fails stops
 * the others at their next call or backward jump; its error (message,
 * position, trace) becomes vm's, located and reported as if raised here,
 * once every worker has unwound.  An interrupt of vm stops every worker.
 * Returns false with vm's error set. */
bool kp_par_run(KpVM *vm, KpParJob *job);

/* The allocator workers allocate from, for a call made under the context
 * allocator vm->ctx: the VM's own ThreadLocalAllocator over the root when
 * ctx is the root, ctx itself when it is thread-safe (a
 * ThreadLocalAllocator, PageAllocator or DebugAllocator of the script),
 * else NULL with the error set (an arena, a fixed buffer...). */
KpAllocator *kp_par_allocator(KpVM *vm, const char *who);

/* Gives the workers' allocator's memory back to the root when nothing
 * allocated from it is alive (kp_vm_finish: before the leak check); the
 * next parallel call makes it again. */
void kp_par_release(KpVM *vm);
/* Frees what parallel calls keep for the VM's life (the worker allocator
 * and its lock); vm/state.c calls it once every script value is gone. */
void kp_par_free(KpVM *vm);

/* The one overload of fn — a function value (KP_T_FUNC) or a function
 * literal's closure record — or NULL when it has several or is no
 * function.  Borrowed: the overload lives as long as the VM. */
KpOverload *kp_par_fn_overload(KpValue fn);

#endif
