/*
 * classes.c — ClassCache: size-class free lists in front of another
 * allocator, for the many small blocks a script makes and frees.
 *
 * Features
 *   - Blocks of up to KP_CC_MAX bytes (alignment up to 16) are served in
 *     classes of 16-byte steps; a freed block goes on its class's free list
 *     and the next request of that class takes it back (last in, first
 *     out, so it is likely still in cache) without a call to the inner
 *     allocator.  Larger blocks, and larger alignments, pass through.
 *   - A resize in place succeeds when the new size is in the same class.
 *   - At most `keep` bytes (KP_CC_KEEP unless the owner sets less) wait on
 *     the lists; past that a freed block goes back to the inner allocator
 *     at once.  A VM with a memory limit keeps none: the memory it holds
 *     from its host is then exactly what the limit counts.
 *   - kp_class_cache_deinit hands every cached block back.
 *
 * Design: one singly linked list per class, threaded through the free
 * blocks' first word.  A block's class comes from the size the caller
 * gives back at free (as every allocator here requires), so no header.
 * The inner allocator sees the class size, not the caller's.
 *
 * Stats: the view's stats count what callers asked for (as every
 * allocator's); the inner allocator's count the blocks it handed out,
 * cached ones included.
 *
 * Thread-safety: none (one VM's heap).  Cost: a pop or a push per call for
 * small blocks; up to 15 bytes of rounding per block; KP_CC_KEEP bytes of
 * memory that stays with the cache.
 */
#include "alloc.h"

/* Under AddressSanitizer a cached block is poisoned, so that a use after
 * free is still caught while it waits on its list. */
#if defined(__SANITIZE_ADDRESS__)
#define CC_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define CC_ASAN 1
#endif
#endif
#ifdef CC_ASAN
#include <sanitizer/asan_interface.h>
#define POISON(p, n) ASAN_POISON_MEMORY_REGION((p), (n))
#define UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#else
#define POISON(p, n) ((void)(p), (void)(n))
#define UNPOISON(p, n) ((void)(p), (void)(n))
#endif

static size_t class_of(size_t size) { return size ? (size - 1) >> 4 : 0; }
static size_t class_size(size_t k) { return (k + 1) << 4; }

static void *cc_alloc(void *ctx, size_t size, size_t align, const KpSrcLoc *loc) {
    KpClassCache *c = ctx;
    if (size > KP_CC_MAX || align > 16) return kp_alloc(c->inner, size, align, loc);
    size_t k = class_of(size);
    void *p = c->free[k];
    if (p) {
        UNPOISON(p, class_size(k));
        c->free[k] = *(void **)p;
        c->cached -= class_size(k);
        return p;
    }
    return kp_alloc(c->inner, class_size(k), 16, loc);
}

static bool cc_resize(void *ctx, void *ptr, size_t old_size, size_t new_size, size_t align, const KpSrcLoc *loc) {
    KpClassCache *c = ctx;
    bool old_small = old_size <= KP_CC_MAX && align <= 16, new_small = new_size <= KP_CC_MAX && align <= 16;
    if (!old_small && !new_small) return kp_resize(c->inner, ptr, old_size, new_size, align, loc);
    return old_small && new_small && class_of(old_size) == class_of(new_size);
}

static void cc_free(void *ctx, void *ptr, size_t size, size_t align, const KpSrcLoc *loc) {
    KpClassCache *c = ctx;
    if (size > KP_CC_MAX || align > 16) {
        kp_free(c->inner, ptr, size, align, loc);
        return;
    }
    size_t k = class_of(size);
    if (c->cached + class_size(k) > c->keep) {
        kp_free(c->inner, ptr, class_size(k), 16, loc);
        return;
    }
    *(void **)ptr = c->free[k];
    c->free[k] = ptr;
    c->cached += class_size(k);
    POISON(ptr, class_size(k));
}

static const KpAllocatorVT cc_vt = {cc_alloc, cc_resize, cc_free, NULL};

/* An empty cache over `inner` (which must outlive it); `out` gets the
 * allocator view, named `name`. */
void kp_class_cache_init(KpClassCache *c, KpAllocator *inner, const char *name, KpAllocator *out) {
    c->inner = inner;
    c->cached = 0;
    c->keep = KP_CC_KEEP;
    for (size_t k = 0; k < KP_CC_CLASSES; k++) c->free[k] = NULL;
    *out = (KpAllocator){&cc_vt, c, name, 0, -1, {0}, NULL};
}

/* Hands every cached block back to the inner allocator. */
void kp_class_cache_deinit(KpClassCache *c) {
    for (size_t k = 0; k < KP_CC_CLASSES; k++) {
        while (c->free[k]) {
            void *p = c->free[k];
            UNPOISON(p, class_size(k));
            c->free[k] = *(void **)p;
            kp_free(c->inner, p, class_size(k), 16, NULL);
        }
    }
    c->cached = 0;
}
