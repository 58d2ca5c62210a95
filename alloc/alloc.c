/*
 * alloc.c — the generic allocator wrappers: limit checks and AllocStats.
 * The allocators themselves live one per file beside this one.
 */
#include "alloc.h"

#include <string.h>

void *kp_alloc(KpAllocator *a, size_t size, size_t align, const KpSrcLoc *loc) {
    if (a->limit >= 0 && a->stats.live_bytes + (int64_t)size > a->limit)
        return NULL;
    void *p = a->vt->alloc(a->ctx, size, align, loc);
    if (!p) return NULL;
    a->stats.live_bytes += (int64_t)size;
    a->stats.live_count++;
    a->stats.total_allocs++;
    if (a->stats.live_bytes > a->stats.peak_bytes)
        a->stats.peak_bytes = a->stats.live_bytes;
    return p;
}

void kp_free(KpAllocator *a, void *ptr, size_t size, size_t align,
             const KpSrcLoc *loc) {
    if (!ptr) return;
    a->vt->free(a->ctx, ptr, size, align, loc);
    a->stats.live_bytes -= (int64_t)size;
    a->stats.live_count--;
    a->stats.total_frees++;
}

bool kp_resize(KpAllocator *a, void *ptr, size_t old_size, size_t new_size,
               size_t align, const KpSrcLoc *loc) {
    if (!a->vt->resize) return false;
    if (new_size > old_size && a->limit >= 0 &&
        a->stats.live_bytes + (int64_t)(new_size - old_size) > a->limit)
        return false;
    if (!a->vt->resize(a->ctx, ptr, old_size, new_size, align, loc))
        return false;
    a->stats.live_bytes += (int64_t)new_size - (int64_t)old_size;
    if (a->stats.live_bytes > a->stats.peak_bytes)
        a->stats.peak_bytes = a->stats.live_bytes;
    return true;
}

void *kp_realloc(KpAllocator *a, void *ptr, size_t old_size, size_t new_size,
                 size_t align, const KpSrcLoc *loc) {
    if (!ptr) return new_size ? kp_alloc(a, new_size, align, loc) : NULL;
    if (new_size == 0) {
        kp_free(a, ptr, old_size, align, loc);
        return NULL;
    }
    if (kp_resize(a, ptr, old_size, new_size, align, loc)) return ptr;
    void *q = kp_alloc(a, new_size, align, loc);
    if (!q) return NULL;
    memcpy(q, ptr, old_size < new_size ? old_size : new_size);
    kp_free(a, ptr, old_size, align, loc);
    return q;
}

void kp_allocator_deinit(KpAllocator *a) {
    if (a->vt->deinit) a->vt->deinit(a->ctx);
}
