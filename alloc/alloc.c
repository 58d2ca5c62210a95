/*
 * alloc.c — the generic allocator wrappers: limit checks and AllocStats.
 * The allocators themselves live one per file beside this one.
 *
 * Two paths: the plain one (a few non-atomic adds) for allocators used
 * from one thread, and, for allocators flagged KP_ALLOC_THREADSAFE, one
 * whose counters are updated with atomic read-modify-writes.  On that path
 * the limit is enforced by reserving the bytes in live_bytes before the
 * call (and giving them back if the call fails), so concurrent callers can
 * never together pass the limit.
 */
#include "alloc.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#define RELAXED __ATOMIC_RELAXED

static bool threadsafe(const KpAllocator *a) {
    return (a->flags & KP_ALLOC_THREADSAFE) != 0;
}

static void atomic_peak(KpAllocator *a, int64_t live) {
    int64_t peak = __atomic_load_n(&a->stats.peak_bytes, RELAXED);
    while (live > peak &&
           !__atomic_compare_exchange_n(&a->stats.peak_bytes, &peak, live, true,
                                        RELAXED, RELAXED)) {
    }
}

/* Reserves `n` live bytes atomically and returns the new live total, or
 * -1 (nothing reserved) if that would pass the limit.  The peak is only
 * raised once the call succeeds, with this total. */
static int64_t atomic_reserve(KpAllocator *a, int64_t n) {
    int64_t live = __atomic_add_fetch(&a->stats.live_bytes, n, RELAXED);
    if (a->limit >= 0 && live > a->limit) {
        __atomic_sub_fetch(&a->stats.live_bytes, n, RELAXED);
        return -1;
    }
    return live;
}

_Thread_local pthread_mutex_t *kp_alloc_serial;

static void *alloc_plain(KpAllocator *a, size_t size, size_t align, const KpSrcLoc *loc);
static void free_plain(KpAllocator *a, void *ptr, size_t size, size_t align, const KpSrcLoc *loc);
static bool resize_plain(KpAllocator *a, void *ptr, size_t old_size, size_t new_size, size_t align,
                         const KpSrcLoc *loc);

/* Allocates through a->vt after the limit check; counts on success. */
void *kp_alloc(KpAllocator *a, size_t size, size_t align, const KpSrcLoc *loc) {
    if (size > (size_t)INT64_MAX) return NULL;
    if (threadsafe(a)) {
        int64_t live = atomic_reserve(a, (int64_t)size);
        if (live < 0) return NULL;
        void *p = a->vt->alloc(a->ctx, size, align, loc);
        if (!p) {
            __atomic_sub_fetch(&a->stats.live_bytes, (int64_t)size, RELAXED);
            return NULL;
        }
        atomic_peak(a, live);
        __atomic_add_fetch(&a->stats.live_count, 1, RELAXED);
        __atomic_add_fetch(&a->stats.total_allocs, 1, RELAXED);
        return p;
    }
    pthread_mutex_t *m = kp_alloc_serial;
    if (!m) return alloc_plain(a, size, align, loc);
    pthread_mutex_lock(m);
    void *p = alloc_plain(a, size, align, loc);
    pthread_mutex_unlock(m);
    return p;
}

static void *alloc_plain(KpAllocator *a, size_t size, size_t align, const KpSrcLoc *loc) {
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

/* Frees through a->vt and counts the free (NULL is a no-op). */
void kp_free(KpAllocator *a, void *ptr, size_t size, size_t align,
             const KpSrcLoc *loc) {
    if (!ptr) return;
    if (!threadsafe(a)) {
        pthread_mutex_t *m = kp_alloc_serial;
        if (m) pthread_mutex_lock(m);
        free_plain(a, ptr, size, align, loc);
        if (m) pthread_mutex_unlock(m);
        return;
    }
    a->vt->free(a->ctx, ptr, size, align, loc);
    {
        __atomic_sub_fetch(&a->stats.live_bytes, (int64_t)size, RELAXED);
        int64_t left = __atomic_sub_fetch(&a->stats.live_count, 1, RELAXED);
        __atomic_add_fetch(&a->stats.total_frees, 1, RELAXED);
        if ((a->flags & KP_ALLOC_ZOMBIE) && left == 0 && a->on_empty)
            a->on_empty(a);
    }
}

static void free_plain(KpAllocator *a, void *ptr, size_t size, size_t align, const KpSrcLoc *loc) {
    a->vt->free(a->ctx, ptr, size, align, loc);
    a->stats.live_bytes -= (int64_t)size;
    a->stats.live_count--;
    a->stats.total_frees++;
    if ((a->flags & KP_ALLOC_ZOMBIE) && a->stats.live_count == 0 && a->on_empty)
        a->on_empty(a);
}

/* Resizes in place through a->vt; growth is checked against the limit. */
bool kp_resize(KpAllocator *a, void *ptr, size_t old_size, size_t new_size,
               size_t align, const KpSrcLoc *loc) {
    if (!a->vt->resize) return false;
    if (new_size > (size_t)INT64_MAX) return false;
    int64_t delta = (int64_t)new_size - (int64_t)old_size;
    if (threadsafe(a)) {
        int64_t live = 0;
        if (delta > 0 && (live = atomic_reserve(a, delta)) < 0) return false;
        if (!a->vt->resize(a->ctx, ptr, old_size, new_size, align, loc)) {
            if (delta > 0)
                __atomic_sub_fetch(&a->stats.live_bytes, delta, RELAXED);
            return false;
        }
        if (delta > 0) atomic_peak(a, live);
        if (delta < 0) __atomic_add_fetch(&a->stats.live_bytes, delta, RELAXED);
        return true;
    }
    pthread_mutex_t *m = kp_alloc_serial;
    if (!m) return resize_plain(a, ptr, old_size, new_size, align, loc);
    pthread_mutex_lock(m);
    bool ok = resize_plain(a, ptr, old_size, new_size, align, loc);
    pthread_mutex_unlock(m);
    return ok;
}

static bool resize_plain(KpAllocator *a, void *ptr, size_t old_size, size_t new_size, size_t align,
                         const KpSrcLoc *loc) {
    int64_t delta = (int64_t)new_size - (int64_t)old_size;
    if (delta > 0 && a->limit >= 0 && a->stats.live_bytes + delta > a->limit)
        return false;
    if (!a->vt->resize(a->ctx, ptr, old_size, new_size, align, loc))
        return false;
    a->stats.live_bytes += delta;
    if (a->stats.live_bytes > a->stats.peak_bytes)
        a->stats.peak_bytes = a->stats.live_bytes;
    return true;
}

/* Resize in place, else allocate, copy and free (see alloc.h). */
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

/* Calls the allocator's deinit, if it has one. */
void kp_allocator_deinit(KpAllocator *a) {
    if (a->vt->deinit) a->vt->deinit(a->ctx);
}

/* Reads every counter with an atomic load (harmless when not shared). */
KpAllocStats kp_alloc_stats(const KpAllocator *a) {
    KpAllocStats s;
    s.live_bytes = __atomic_load_n(&a->stats.live_bytes, RELAXED);
    s.live_count = __atomic_load_n(&a->stats.live_count, RELAXED);
    s.peak_bytes = __atomic_load_n(&a->stats.peak_bytes, RELAXED);
    s.total_allocs = __atomic_load_n(&a->stats.total_allocs, RELAXED);
    s.total_frees = __atomic_load_n(&a->stats.total_frees, RELAXED);
    return s;
}

static void write_stderr(void *ud, const char *bytes, size_t len) {
    (void)ud;
    fwrite(bytes, 1, len, stderr);
}

/* One stats line through `write` (stderr when NULL). */
void kp_alloc_report(const KpAllocator *a, KpWriteFn write, void *ud) {
    KpAllocStats s = kp_alloc_stats(a);
    char line[256];
    int n = snprintf(line, sizeof line,
                     "%s: live %" PRId64 " bytes in %" PRId64
                     " blocks, peak %" PRId64 " bytes, %" PRId64
                     " allocs, %" PRId64 " frees\n",
                     a->name ? a->name : "allocator", s.live_bytes,
                     s.live_count, s.peak_bytes, s.total_allocs,
                     s.total_frees);
    if (n < 0) return;
    if ((size_t)n >= sizeof line) n = (int)sizeof line - 1;
    if (!write) write = write_stderr;
    write(ud, line, (size_t)n);
}
