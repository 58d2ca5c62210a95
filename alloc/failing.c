/*
 * failing.c — FailingAllocator: an allocator that fails on purpose.
 *
 * Features: forwards every call to a backing allocator, but after
 * `fail_after` successful allocs every further alloc returns NULL (and
 * counts in `failures`), as do growing resizes once failing has begun.
 * Frees and shrinking resizes always go through, so the code under test
 * can clean up.  With fail_after < 0 it never fails (and just counts).
 *
 * The usual test loop (after Zig's checkAllAllocationFailures): run the
 * code once with fail_after = -1 to count its allocs N, then for each
 * i in 0..N-1 run it with fail_after = i, check it reports out-of-memory
 * cleanly, and check the backing allocator's live_bytes is back to 0.
 *
 * Design: a counter in front of the backing allocator; the backing
 * allocator's stats see only the calls that got through.
 * Thread-safety: none (counters are plain ints).  Cost: one compare.
 */
#include "alloc.h"

static bool exhausted(const KpFailing *f) {
    return f->fail_after >= 0 && f->allocs >= f->fail_after;
}

static void *failing_alloc(void *ctx, size_t size, size_t align,
                           const KpSrcLoc *loc) {
    KpFailing *f = ctx;
    if (exhausted(f)) {
        f->failures++;
        return NULL;
    }
    void *p = kp_alloc(f->backing, size, align, loc);
    if (p) f->allocs++;
    return p;
}

static bool failing_resize(void *ctx, void *ptr, size_t old_size,
                           size_t new_size, size_t align, const KpSrcLoc *loc) {
    KpFailing *f = ctx;
    if (new_size > old_size && exhausted(f)) {
        f->failures++;
        return false;
    }
    return kp_resize(f->backing, ptr, old_size, new_size, align, loc);
}

static void failing_free(void *ctx, void *ptr, size_t size, size_t align,
                         const KpSrcLoc *loc) {
    KpFailing *f = ctx;
    kp_free(f->backing, ptr, size, align, loc);
}

static const KpAllocatorVT failing_vt = {failing_alloc, failing_resize,
                                         failing_free, NULL};

/* Resets the counters; `out` (optional) gets the allocator view. */
void kp_failing_init(KpFailing *f, KpAllocator *backing, int fail_after,
                     KpAllocator *out) {
    f->backing = backing;
    f->fail_after = fail_after;
    f->allocs = 0;
    f->failures = 0;
    if (out)
        *out = (KpAllocator){&failing_vt, f, "FailingAllocator",
                             backing->flags & KP_ALLOC_FREE_IS_NOOP, -1, {0}, NULL};
}
