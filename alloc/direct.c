/*
 * direct.c — DirectAllocator: the C library's malloc and free.
 *
 * Features: any size (0 is served as 1 so the pointer is unique);
 * alignment up to 16 from malloc, larger through aligned_alloc; shrinking
 * in place always succeeds (the block keeps its malloc size), growing in
 * place never does.  Design: no state beyond the KpAllocator struct.
 * Thread-safety: the allocator calls are as thread-safe as malloc, but the
 * stats in the KpAllocator struct are not; share one per thread.
 * Cost: one malloc/free per call.
 */
#include "alloc.h"

#include <stdint.h>
#include <stdlib.h>

static void *direct_alloc(void *ctx, size_t size, size_t align,
                          const KpSrcLoc *loc) {
    (void)ctx; (void)loc;
    if (size == 0) size = 1;
    if (align <= 16) return malloc(size);
    /* aligned_alloc wants a multiple of align (and never 0) */
    if (size > SIZE_MAX - (align - 1)) return NULL;
    size_t rounded = (size + align - 1) & ~(align - 1);
    return aligned_alloc(align, rounded);
}

static bool direct_resize(void *ctx, void *ptr, size_t old_size,
                          size_t new_size, size_t align, const KpSrcLoc *loc) {
    (void)ctx; (void)ptr; (void)align; (void)loc;
    return new_size <= old_size; /* shrinking in place always works */
}

static void direct_free(void *ctx, void *ptr, size_t size, size_t align,
                        const KpSrcLoc *loc) {
    (void)ctx; (void)size; (void)align; (void)loc;
    free(ptr);
}

static const KpAllocatorVT direct_vt = {direct_alloc, direct_resize,
                                        direct_free, NULL};

/* Sets `a` to the stateless malloc-backed allocator. */
void kp_direct_init(KpAllocator *a) {
    *a = (KpAllocator){&direct_vt, NULL, "DirectAllocator", 0, -1, {0}, NULL};
}
