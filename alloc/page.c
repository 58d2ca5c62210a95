/*
 * page.c — PageAllocator: whole pages straight from the operating system.
 *
 * Features
 *   - Every block is a fresh private anonymous mapping (mmap), zero-filled,
 *     returned with munmap on free: freed memory really leaves the process.
 *   - Sizes are rounded up to the page size (kp_page_size(), usually 4 KiB);
 *     a 0-byte request still maps one page so the pointer is unique.
 *   - Alignment up to the page size comes for free.  Larger alignments are
 *     served by mapping size + align - page bytes and unmapping the
 *     misaligned head and the unused tail, so only the block stays mapped.
 *   - Resize in place succeeds whenever the new size needs no more pages
 *     than the block already has; shrinking across pages unmaps the tail
 *     pages.  Growing past the mapped pages fails (the caller moves).
 *
 * Design: no state at all; the caller's size tells free and resize how
 * many pages the block spans (round_up(max(size, 1), page)).
 *
 * Thread-safety: safe (mmap/munmap are); flagged KP_ALLOC_THREADSAFE so its
 * stats are updated atomically.
 *
 * Cost: one system call per alloc/free (two or three for alignments above
 * a page), plus page-granular waste: a 100-byte block costs a whole page.
 * Use it as the backing of an arena or of the thread-local allocator, not
 * for small objects.
 *
 * PageCache (kp_page_cache_init): the same allocator keeping up to
 * KP_PAGE_CACHE_SPANS freed mappings (KP_PAGE_CACHE_BYTES at most) for the
 * next request of the same span, zeroed again with memset instead of
 * unmapped and mapped anew — an arena made and deinitialized over and over
 * on one PageAllocator then costs no system calls and no page faults after
 * the first round.  kp_page_cache_deinit unmaps what it holds.  Guarded by
 * a spin lock, so it stays thread-safe.
 */
#ifndef _GNU_SOURCE
#define _DEFAULT_SOURCE /* MAP_ANONYMOUS */
#endif
#include "alloc.h"

#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* The system page size, read once. */
size_t kp_page_size(void) {
    static size_t page;
    size_t p = __atomic_load_n(&page, __ATOMIC_RELAXED);
    if (!p) {
        long v = sysconf(_SC_PAGESIZE);
        p = v > 0 ? (size_t)v : 4096;
        __atomic_store_n(&page, p, __ATOMIC_RELAXED);
    }
    return p;
}

/* Bytes of pages a block of `size` spans; 0 on overflow. */
static size_t span(size_t size) {
    size_t page = kp_page_size();
    if (size == 0) size = 1;
    if (size > SIZE_MAX - page) return 0;
    return (size + page - 1) & ~(page - 1);
}

static void *page_alloc(void *ctx, size_t size, size_t align,
                        const KpSrcLoc *loc) {
    (void)ctx; (void)loc;
    size_t page = kp_page_size();
    size_t len = span(size);
    if (!len) return NULL;
    if (align <= page) {
        void *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        return p == MAP_FAILED ? NULL : p;
    }
    /* Over-map, then trim the misaligned head and the tail. */
    if (len > SIZE_MAX - (align - page)) return NULL;
    size_t over = len + align - page;
    void *m = mmap(NULL, over, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) return NULL;
    uintptr_t base = (uintptr_t)m;
    uintptr_t aligned = (base + align - 1) & ~(uintptr_t)(align - 1);
    size_t head = (size_t)(aligned - base);
    size_t tail = over - head - len;
    if (head) munmap(m, head);
    if (tail) munmap((void *)(aligned + len), tail);
    return (void *)aligned;
}

static bool page_resize(void *ctx, void *ptr, size_t old_size, size_t new_size,
                        size_t align, const KpSrcLoc *loc) {
    (void)ctx; (void)align; (void)loc;
    size_t old_len = span(old_size), new_len = span(new_size);
    if (!new_len) return false;
    if (new_len > old_len) return false;
    if (new_len < old_len)
        munmap((unsigned char *)ptr + new_len, old_len - new_len);
    return true;
}

static void page_free(void *ctx, void *ptr, size_t size, size_t align,
                      const KpSrcLoc *loc) {
    (void)ctx; (void)align; (void)loc;
    munmap(ptr, span(size));
}

static const KpAllocatorVT page_vt = {page_alloc, page_resize, page_free,
                                      NULL};

/* ------------------------------------------------------------ cache */

static void cache_lock(KpPageCache *c) {
    while (__atomic_test_and_set(&c->lock, __ATOMIC_ACQUIRE)) {
    }
}
static void cache_unlock(KpPageCache *c) { __atomic_clear(&c->lock, __ATOMIC_RELEASE); }

static void *pc_alloc(void *ctx, size_t size, size_t align, const KpSrcLoc *loc) {
    KpPageCache *c = ctx;
    size_t len = span(size);
    if (len && align <= kp_page_size()) {
        void *p = NULL;
        cache_lock(c);
        for (int i = 0; i < c->n; i++) {
            if (c->len[i] != len) continue;
            p = c->span[i];
            c->n--;
            c->span[i] = c->span[c->n];
            c->len[i] = c->len[c->n];
            c->bytes -= len;
            break;
        }
        cache_unlock(c);
        if (p) {
            memset(p, 0, len); /* zero-filled, as a fresh mapping */
            return p;
        }
    }
    return page_alloc(NULL, size, align, loc);
}

static void pc_free(void *ctx, void *ptr, size_t size, size_t align, const KpSrcLoc *loc) {
    KpPageCache *c = ctx;
    size_t len = span(size);
    if (len && align <= kp_page_size() && len <= c->keep) {
        cache_lock(c);
        /* full: the oldest span goes, so the cache follows the recent sizes */
        while (c->n && (c->n == KP_PAGE_CACHE_SPANS || c->bytes + len > c->keep)) {
            munmap(c->span[0], c->len[0]);
            c->bytes -= c->len[0];
            c->n--;
            for (int i = 0; i < c->n; i++) {
                c->span[i] = c->span[i + 1];
                c->len[i] = c->len[i + 1];
            }
        }
        c->span[c->n] = ptr;
        c->len[c->n] = len;
        c->n++;
        c->bytes += len;
        cache_unlock(c);
        return;
    }
    page_free(NULL, ptr, size, align, loc);
}

static const KpAllocatorVT pc_vt = {pc_alloc, page_resize, pc_free, NULL};

/* An empty page cache; `a` gets its allocator view (a PageAllocator). */
void kp_page_cache_init(KpPageCache *c, KpAllocator *a) {
    memset(c, 0, sizeof *c);
    c->keep = KP_PAGE_CACHE_BYTES;
    *a = (KpAllocator){&pc_vt, c, "PageAllocator", KP_ALLOC_THREADSAFE, -1, {0}, NULL};
}

/* Unmaps every cached span. */
void kp_page_cache_deinit(KpPageCache *c) {
    cache_lock(c);
    for (int i = 0; i < c->n; i++) munmap(c->span[i], c->len[i]);
    c->n = 0;
    c->bytes = 0;
    cache_unlock(c);
}

/* Sets `a` to the stateless mmap-backed allocator. */
void kp_page_init(KpAllocator *a) {
    *a = (KpAllocator){&page_vt, NULL, "PageAllocator", KP_ALLOC_THREADSAFE,
                       -1, {0}, NULL};
}
