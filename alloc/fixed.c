/*
 * fixed.c — FixedBufferAllocator: bump allocation in one caller buffer.
 *
 * Features
 *   - Allocation is a pointer bump inside buf[0..len); any alignment (the
 *     address itself is aligned, not the offset, so the buffer needs no
 *     particular alignment).
 *   - Exhaustion returns NULL, never crashes: the VM turns that into the
 *     "FixedBufferAllocator exhausted" runtime error.
 *   - Freeing the most recent block undoes it (its bytes become free again;
 *     alignment padding before it stays used); any other free is a no-op.
 *   - Resize in place: the most recent block may grow while the buffer has
 *     room, and shrink (giving bytes back); other blocks may only shrink,
 *     which frees nothing.
 *   - kp_fixed_reset makes the whole buffer free again.
 *
 * Design: three words (buf, len, end).  The buffer belongs to the caller
 * and must outlive the allocator; nothing is ever taken from elsewhere, so
 * there is no deinit.
 *
 * Thread-safety: none.  Cost: O(1) for every call, no per-block overhead.
 */
#include "alloc.h"

static void *fixed_alloc(void *ctx, size_t size, size_t align,
                         const KpSrcLoc *loc) {
    (void)loc;
    KpFixed *f = ctx;
    if (align == 0) align = 1;
    uintptr_t base = (uintptr_t)f->buf;
    uintptr_t cur = base + f->end;
    if (cur > UINTPTR_MAX - (align - 1)) return NULL;
    uintptr_t at = (cur + align - 1) & ~(uintptr_t)(align - 1);
    size_t off = (size_t)(at - base);
    if (off > f->len || size > f->len - off) return NULL;
    f->end = off + size;
    return f->buf + off;
}

/* True when [ptr, ptr+size) is the block that ends at f->end. */
static bool is_last(const KpFixed *f, const void *ptr, size_t size) {
    uintptr_t p = (uintptr_t)ptr, base = (uintptr_t)f->buf;
    return p >= base && p - base <= f->end && f->end - (p - base) == size;
}

static bool fixed_resize(void *ctx, void *ptr, size_t old_size,
                         size_t new_size, size_t align, const KpSrcLoc *loc) {
    (void)align; (void)loc;
    KpFixed *f = ctx;
    if (!is_last(f, ptr, old_size)) return new_size <= old_size;
    size_t start = f->end - old_size;
    if (new_size > f->len - start) return false;
    f->end = start + new_size;
    return true;
}

static void fixed_free(void *ctx, void *ptr, size_t size, size_t align,
                       const KpSrcLoc *loc) {
    (void)align; (void)loc;
    KpFixed *f = ctx;
    if (is_last(f, ptr, size)) f->end -= size;
}

static const KpAllocatorVT fixed_vt = {fixed_alloc, fixed_resize, fixed_free,
                                       NULL};

/* Starts with the whole buffer free; a NULL buffer has length 0. */
void kp_fixed_init(KpFixed *f, void *buf, size_t len, KpAllocator *out) {
    f->buf = buf;
    f->len = buf ? len : 0;
    f->end = 0;
    if (out)
        *out = (KpAllocator){&fixed_vt, f, "FixedBufferAllocator",
                             KP_ALLOC_FREE_IS_NOOP, -1, {0}, NULL};
}

/* Forgets every block: the whole buffer is free again. */
void kp_fixed_reset(KpFixed *f) { f->end = 0; }

/* Whether ptr lies inside the buffer (allocated or not). */
bool kp_fixed_owns(const KpFixed *f, const void *ptr) {
    uintptr_t p = (uintptr_t)ptr, base = (uintptr_t)f->buf;
    return f->buf && p >= base && p - base < f->len;
}
