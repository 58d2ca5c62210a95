/*
 * test_alloc.c — tests of the allocators in alloc/, one behaviour each.
 *
 * Every test ends with a leak check: the allocator at the bottom of the
 * stack (direct or page) has live_bytes == 0 and live_count == 0.
 * Out-of-memory paths run over a FailingAllocator.  The debug allocator's
 * corruption tests write only into memory the debug allocator owns
 * (redzones, quarantined blocks), so the file is clean under ASan/UBSan.
 *
 * Prints one line per failed check on stderr, then "N passed, M failed".
 */
#include "alloc/alloc.h"

#include "check.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>


/* Compares text, showing both on failure. */
#define CHECK_STR(got, want)                                                 \
    do {                                                                     \
        const char *g_ = (got), *w_ = (want);                                \
        if (strcmp(g_, w_) == 0) {                                           \
            passed++;                                                        \
        } else {                                                             \
            failed++;                                                        \
            fprintf(stderr, "%s:%d: %s: text differs\n--- got:\n%s--- want:\n%s---\n", \
                    __FILE__, __LINE__, check_current, g_, w_);                        \
        }                                                                    \
    } while (0)

#define CHECK_HAS(hay, needle)                                               \
    do {                                                                     \
        const char *h_ = (hay), *n_ = (needle);                              \
        if (strstr(h_, n_)) {                                                \
            passed++;                                                        \
        } else {                                                             \
            failed++;                                                        \
            fprintf(stderr, "%s:%d: %s: missing \"%s\" in:\n%s---\n",        \
                    __FILE__, __LINE__, check_current, n_, h_);              \
        }                                                                    \
    } while (0)

/* The leak check every test ends with. */
#define CHECK_NO_LEAK(a)                                                     \
    do {                                                                     \
        CHECK((a)->stats.live_bytes == 0);                                   \
        CHECK((a)->stats.live_count == 0);                                   \
    } while (0)

static bool aligned(const void *p, size_t align) {
    return ((uintptr_t)p & (align - 1)) == 0;
}

/* A report sink that collects text. */
typedef struct Capture {
    char text[16384];
    size_t len;
} Capture;

static void capture(void *ud, const char *bytes, size_t len) {
    Capture *c = ud;
    if (len > sizeof c->text - 1 - c->len) len = sizeof c->text - 1 - c->len;
    memcpy(c->text + c->len, bytes, len);
    c->len += len;
    c->text[c->len] = '\0';
}

static void capture_clear(Capture *c) {
    c->len = 0;
    c->text[0] = '\0';
}

static const KpSrcLoc L3 = {"t.kp", 3, 0};
static const KpSrcLoc L5 = {"t.kp", 5, 0};
static const KpSrcLoc L7 = {"t.kp", 7, 0};
static const KpSrcLoc L9 = {"t.kp", 9, 2};

/* =========================================================== class cache */

static void test_class_cache_reuses_a_freed_block_of_its_class(void) {
    KpAllocator back, a;
    KpClassCache cc;
    kp_direct_init(&back);
    kp_class_cache_init(&cc, &back, "cache", &a);
    void *p = kp_alloc(&a, 40, 16, NULL);
    CHECK(p != NULL && aligned(p, 16));
    kp_free(&a, p, 40, 16, NULL);
    CHECK(back.stats.live_count == 1); /* cached, not freed */
    void *q = kp_alloc(&a, 48, 8, NULL); /* same class (33..48) */
    CHECK(q == p);
    CHECK(back.stats.total_allocs == 1);
    void *r = kp_alloc(&a, 49, 16, NULL); /* the next class: a new block */
    CHECK(r != NULL && r != p);
    kp_free(&a, q, 48, 8, NULL);
    kp_free(&a, r, 49, 16, NULL);
    CHECK_NO_LEAK(&a);
    kp_class_cache_deinit(&cc);
    CHECK_NO_LEAK(&back);
}

/* keep 0 (a VM with a memory limit): nothing waits, every free is real, so
 * the memory the host sees is what the limit counts */
static void test_class_cache_keeping_nothing_frees_at_once(void) {
    KpAllocator back, a;
    KpClassCache cc;
    kp_direct_init(&back);
    kp_class_cache_init(&cc, &back, "cache", &a);
    cc.keep = 0;
    void *p = kp_alloc(&a, 40, 16, NULL);
    CHECK(p != NULL);
    kp_free(&a, p, 40, 16, NULL);
    CHECK(back.stats.live_count == 0);
    CHECK(cc.cached == 0);
    kp_class_cache_deinit(&cc);
    CHECK_NO_LEAK(&back);
}

static void test_class_cache_passes_large_and_overaligned_blocks_through(void) {
    KpAllocator back, a;
    KpClassCache cc;
    kp_direct_init(&back);
    kp_class_cache_init(&cc, &back, "cache", &a);
    void *big = kp_alloc(&a, KP_CC_MAX + 1, 16, NULL);
    void *al = kp_alloc(&a, 64, 64, NULL);
    CHECK(big && al && aligned(al, 64));
    kp_free(&a, big, KP_CC_MAX + 1, 16, NULL);
    kp_free(&a, al, 64, 64, NULL);
    CHECK_NO_LEAK(&back); /* nothing was cached */
    kp_class_cache_deinit(&cc);
    CHECK_NO_LEAK(&back);
}

static void test_class_cache_resizes_in_place_within_a_class(void) {
    KpAllocator back, a;
    KpClassCache cc;
    kp_direct_init(&back);
    kp_class_cache_init(&cc, &back, "cache", &a);
    unsigned char *p = kp_alloc(&a, 20, 16, NULL);
    CHECK(p != NULL);
    memset(p, 7, 20);
    CHECK(kp_resize(&a, p, 20, 32, 16, NULL));  /* 17..32 */
    CHECK(!kp_resize(&a, p, 32, 33, 16, NULL)); /* the next class */
    p = kp_realloc(&a, p, 32, 100, 16, NULL);
    CHECK(p != NULL && p[19] == 7);
    p = kp_realloc(&a, p, 100, 1000, 16, NULL); /* out of the classes */
    CHECK(p != NULL && p[0] == 7);
    kp_free(&a, p, 1000, 16, NULL);
    CHECK_NO_LEAK(&a);
    kp_class_cache_deinit(&cc);
    CHECK_NO_LEAK(&back);
}

static void test_class_cache_returns_null_when_inner_fails(void) {
    KpAllocator back, fail, a;
    KpFailing f;
    KpClassCache cc;
    kp_direct_init(&back);
    kp_failing_init(&f, &back, 1, &fail);
    kp_class_cache_init(&cc, &fail, "cache", &a);
    void *p = kp_alloc(&a, 16, 16, NULL);
    CHECK(p != NULL);
    CHECK(kp_alloc(&a, 16, 16, NULL) == NULL);
    kp_free(&a, p, 16, 16, NULL);
    CHECK(kp_alloc(&a, 16, 16, NULL) == p); /* from the list: no inner call */
    kp_free(&a, p, 16, 16, NULL);
    kp_class_cache_deinit(&cc);
    CHECK_NO_LEAK(&back);
}

/* ================================================================ direct */

static void test_direct_alignment_1_to_4096(void) {
    KpAllocator a;
    kp_direct_init(&a);
    for (size_t al = 1; al <= 4096; al *= 2) {
        for (size_t sz = 1; sz <= 5000; sz = sz * 3 + 1) {
            unsigned char *p = kp_alloc(&a, sz, al, NULL);
            CHECK(p != NULL);
            CHECK(aligned(p, al));
            memset(p, 0x5a, sz);
            kp_free(&a, p, sz, al, NULL);
        }
    }
    CHECK_NO_LEAK(&a);
}

static void test_direct_zero_size_gives_unique_pointers(void) {
    KpAllocator a;
    kp_direct_init(&a);
    void *p = kp_alloc(&a, 0, 1, NULL), *q = kp_alloc(&a, 0, 64, NULL);
    CHECK(p && q && p != q);
    CHECK(aligned(q, 64));
    kp_free(&a, p, 0, 1, NULL);
    kp_free(&a, q, 0, 64, NULL);
    CHECK_NO_LEAK(&a);
}

static void test_realloc_keeps_contents_and_frees_old(void) {
    KpAllocator a;
    kp_direct_init(&a);
    unsigned char *p = kp_realloc(&a, NULL, 0, 10, 1, NULL);
    CHECK(p != NULL);
    for (int i = 0; i < 10; i++) p[i] = (unsigned char)i;
    p = kp_realloc(&a, p, 10, 1000, 1, NULL);
    CHECK(p != NULL);
    bool same = true;
    for (int i = 0; i < 10; i++) same &= p[i] == i;
    CHECK(same);
    CHECK(a.stats.live_bytes == 1000 && a.stats.live_count == 1);
    p = kp_realloc(&a, p, 1000, 4, 1, NULL); /* shrink: in place */
    CHECK(p != NULL && p[3] == 3);
    CHECK(a.stats.live_bytes == 4);
    CHECK(kp_realloc(&a, p, 4, 0, 1, NULL) == NULL); /* size 0 frees */
    CHECK_NO_LEAK(&a);
}

static void test_stats_track_live_peak_and_totals(void) {
    KpAllocator a;
    kp_direct_init(&a);
    void *p = kp_alloc(&a, 100, 8, NULL);
    void *q = kp_alloc(&a, 50, 8, NULL);
    CHECK(a.stats.live_bytes == 150 && a.stats.live_count == 2);
    kp_free(&a, p, 100, 8, NULL);
    void *r = kp_alloc(&a, 10, 8, NULL);
    CHECK(a.stats.live_bytes == 60);
    CHECK(a.stats.peak_bytes == 150);
    CHECK(a.stats.total_allocs == 3 && a.stats.total_frees == 1);
    kp_free(&a, q, 50, 8, NULL);
    kp_free(&a, r, 10, 8, NULL);
    kp_free(&a, NULL, 10, 8, NULL); /* NULL: no-op, not counted */
    CHECK(a.stats.total_frees == 3);
    KpAllocStats s = kp_alloc_stats(&a);
    CHECK(s.peak_bytes == 150 && s.total_allocs == 3);
    CHECK_NO_LEAK(&a);
}

static void test_limit_refuses_allocs_and_growth_past_it(void) {
    KpAllocator a;
    kp_direct_init(&a);
    a.limit = 100;
    void *p = kp_alloc(&a, 60, 1, NULL);
    CHECK(p != NULL);
    CHECK(kp_alloc(&a, 41, 1, NULL) == NULL);
    CHECK(a.stats.total_allocs == 1 && a.stats.live_bytes == 60);
    void *q = kp_alloc(&a, 40, 1, NULL); /* exactly at the limit */
    CHECK(q != NULL);
    CHECK(kp_realloc(&a, q, 40, 41, 1, NULL) == NULL); /* old block kept */
    CHECK(a.stats.live_bytes == 100);
    kp_free(&a, p, 60, 1, NULL);
    kp_free(&a, q, 40, 1, NULL);
    CHECK_NO_LEAK(&a);
}

static void test_alloc_report_prints_one_line(void) {
    KpAllocator a;
    kp_direct_init(&a);
    void *p = kp_alloc(&a, 48, 8, NULL);
    void *q = kp_alloc(&a, 16, 8, NULL);
    kp_free(&a, q, 16, 8, NULL);
    Capture c;
    capture_clear(&c);
    kp_alloc_report(&a, capture, &c);
    CHECK_STR(c.text, "DirectAllocator: live 48 bytes in 1 blocks, peak 64 "
                      "bytes, 2 allocs, 1 frees\n");
    kp_free(&a, p, 48, 8, NULL);
    CHECK_NO_LEAK(&a);
}

/* ================================================================ page */

static bool mapped(void *p, size_t len) {
    /* msync fails with ENOMEM on unmapped ranges */
    return msync(p, len, MS_ASYNC) == 0;
}

static void test_page_rounds_to_pages(void) {
    KpAllocator a;
    kp_page_init(&a);
    size_t ps = kp_page_size();
    CHECK(ps >= 4096 && (ps & (ps - 1)) == 0);
    unsigned char *p = kp_alloc(&a, 1, 1, NULL);
    CHECK(p && aligned(p, ps));
    memset(p, 1, ps); /* the whole page is ours */
    CHECK(mapped(p, ps));
    /* resize within the page succeeds, past it fails */
    CHECK(kp_resize(&a, p, 1, ps, 1, NULL));
    CHECK(!kp_resize(&a, p, ps, ps + 1, 1, NULL));
    kp_free(&a, p, ps, 1, NULL);
    CHECK(!mapped(p, ps));
    CHECK(a.stats.peak_bytes == (int64_t)ps);
    CHECK_NO_LEAK(&a);
}

static void test_page_zero_size_maps_a_page(void) {
    KpAllocator a;
    kp_page_init(&a);
    void *p = kp_alloc(&a, 0, 1, NULL), *q = kp_alloc(&a, 0, 1, NULL);
    CHECK(p && q && p != q);
    kp_free(&a, p, 0, 1, NULL);
    kp_free(&a, q, 0, 1, NULL);
    CHECK(!mapped(p, 1) && !mapped(q, 1));
    CHECK_NO_LEAK(&a);
}

static void test_page_alignment_above_page_trims_extra(void) {
    KpAllocator a;
    kp_page_init(&a);
    size_t ps = kp_page_size();
    for (size_t al = 1; al <= 64 * ps; al *= 2) {
        unsigned char *p = kp_alloc(&a, ps + 1, al, NULL);
        CHECK(p && aligned(p, al));
        memset(p, 2, 2 * ps);
        CHECK(mapped(p, 2 * ps));
        kp_free(&a, p, ps + 1, al, NULL);
        CHECK(!mapped(p, 2 * ps));
    }
    CHECK_NO_LEAK(&a);
}

static void test_page_shrink_unmaps_tail_pages(void) {
    KpAllocator a;
    kp_page_init(&a);
    size_t ps = kp_page_size();
    unsigned char *p = kp_alloc(&a, 3 * ps, 1, NULL);
    CHECK(p != NULL);
    CHECK(kp_resize(&a, p, 3 * ps, ps - 10, 1, NULL));
    CHECK(mapped(p, ps));
    CHECK(!mapped(p + ps, 2 * ps));
    CHECK(a.stats.live_bytes == (int64_t)(ps - 10));
    /* realloc growing past the mapping moves the block */
    p[0] = 42;
    unsigned char *q = kp_realloc(&a, p, ps - 10, 5 * ps, 1, NULL);
    CHECK(q && q[0] == 42);
    kp_free(&a, q, 5 * ps, 1, NULL);
    CHECK_NO_LEAK(&a);
}

static void test_page_cache_reuses_a_freed_span_zeroed(void) {
    KpAllocator a;
    KpPageCache pc;
    kp_page_cache_init(&pc, &a);
    size_t page = kp_page_size();
    unsigned char *p = kp_alloc(&a, 3 * page, 16, NULL);
    CHECK(p != NULL);
    memset(p, 0xAB, 3 * page);
    kp_free(&a, p, 3 * page, 16, NULL);
    CHECK(pc.n == 1);
    unsigned char *q = kp_alloc(&a, 3 * page - 100, 16, NULL); /* the same span */
    CHECK(q == p);
    CHECK(pc.n == 0);
    bool zero = true;
    for (size_t i = 0; i < 3 * page; i++) zero = zero && q[i] == 0;
    CHECK(zero);
    unsigned char *r = kp_alloc(&a, page, 16, NULL); /* another span: mapped */
    CHECK(r != NULL && r != p);
    kp_free(&a, q, 3 * page - 100, 16, NULL);
    kp_free(&a, r, page, 16, NULL);
    CHECK(pc.n == 2);
    CHECK_NO_LEAK(&a);
    kp_page_cache_deinit(&pc);
    CHECK(pc.n == 0 && pc.bytes == 0);
}

static void test_page_cache_holds_a_bounded_number_of_spans(void) {
    KpAllocator a;
    KpPageCache pc;
    kp_page_cache_init(&pc, &a);
    size_t page = kp_page_size();
    void *p[KP_PAGE_CACHE_SPANS + 4];
    for (int i = 0; i < KP_PAGE_CACHE_SPANS + 4; i++) CHECK((p[i] = kp_alloc(&a, page, 16, NULL)) != NULL);
    for (int i = 0; i < KP_PAGE_CACHE_SPANS + 4; i++) kp_free(&a, p[i], page, 16, NULL);
    CHECK(pc.n == KP_PAGE_CACHE_SPANS);
    CHECK(pc.bytes == KP_PAGE_CACHE_SPANS * page);
    void *big = kp_alloc(&a, KP_PAGE_CACHE_BYTES + page, 16, NULL); /* too big to keep */
    CHECK(big != NULL);
    kp_free(&a, big, KP_PAGE_CACHE_BYTES + page, 16, NULL);
    CHECK(pc.n == KP_PAGE_CACHE_SPANS);
    CHECK_NO_LEAK(&a);
    kp_page_cache_deinit(&pc);
}

static void test_page_blocks_are_zeroed(void) {
    KpAllocator a;
    kp_page_init(&a);
    unsigned char *p = kp_alloc(&a, 1000, 8, NULL);
    bool zero = true;
    for (int i = 0; i < 1000; i++) zero &= p[i] == 0;
    CHECK(zero);
    kp_free(&a, p, 1000, 8, NULL);
    CHECK_NO_LEAK(&a);
}

/* ================================================================ arena */

static void test_arena_free_last_undoes(void) {
    KpAllocator back, a;
    KpArena ar;
    kp_direct_init(&back);
    kp_arena_init(&ar, &back, &a);
    char *x = kp_alloc(&a, 10, 1, NULL);
    char *y = kp_alloc(&a, 20, 1, NULL);
    kp_free(&a, y, 20, 1, NULL);
    char *y2 = kp_alloc(&a, 20, 1, NULL);
    CHECK(y2 == y);
    kp_free(&a, y2, 20, 1, NULL);
    kp_free(&a, x, 10, 1, NULL); /* now x is the last: undone too */
    CHECK(kp_alloc(&a, 5, 1, NULL) == x);
    kp_allocator_deinit(&a);
    CHECK_NO_LEAK(&back);
}

static void test_arena_free_of_older_block_is_noop(void) {
    KpAllocator back, a;
    KpArena ar;
    kp_direct_init(&back);
    kp_arena_init(&ar, &back, &a);
    CHECK(!kp_alloc_free_is_real(&a));
    char *x = kp_alloc(&a, 10, 1, NULL);
    char *y = kp_alloc(&a, 10, 1, NULL);
    kp_free(&a, x, 10, 1, NULL);
    char *z = kp_alloc(&a, 10, 1, NULL);
    CHECK(z != x && z == y + 10);
    kp_arena_deinit(&ar);
    CHECK_NO_LEAK(&back);
}

static void test_arena_alignment_1_to_4096(void) {
    KpAllocator back, a;
    KpArena ar;
    kp_direct_init(&back);
    kp_arena_init(&ar, &back, &a);
    for (int round = 0; round < 3; round++)
        for (size_t al = 1; al <= 4096; al *= 2) {
            unsigned char *p = kp_alloc(&a, 3, al, NULL);
            CHECK(p && aligned(p, al));
            memset(p, 7, 3);
        }
    kp_arena_deinit(&ar);
    CHECK_NO_LEAK(&back);
}

static void test_arena_resizes_last_block_in_place(void) {
    KpAllocator back, a;
    KpArena ar;
    kp_direct_init(&back);
    kp_arena_init(&ar, &back, &a);
    char *x = kp_alloc(&a, 16, 1, NULL);
    char *y = kp_alloc(&a, 16, 1, NULL);
    CHECK(!kp_resize(&a, x, 16, 32, 1, NULL)); /* not last: cannot grow */
    CHECK(kp_resize(&a, x, 16, 8, 1, NULL));   /* but may shrink */
    CHECK(kp_resize(&a, y, 16, 1000, 1, NULL));
    CHECK(kp_alloc(&a, 1, 1, NULL) == y + 1000);
    CHECK(!kp_resize(&a, x, 8, 1 << 20, 1, NULL));
    kp_arena_deinit(&ar);
    CHECK_NO_LEAK(&back);
}

static void test_arena_large_request_gets_its_own_chunk(void) {
    KpAllocator back, a;
    KpArena ar;
    kp_direct_init(&back);
    kp_arena_init(&ar, &back, &a);
    unsigned char *p = kp_alloc(&a, 100000, 4096, NULL);
    CHECK(p && aligned(p, 4096));
    memset(p, 1, 100000);
    CHECK(back.stats.live_count == 1);
    CHECK(kp_arena_capacity(&ar) >= 100000);
    kp_allocator_deinit(&a);
    CHECK_NO_LEAK(&back);
}

static void test_arena_reset_retain_keeps_largest_chunk(void) {
    KpAllocator back, a;
    KpArena ar;
    kp_direct_init(&back);
    kp_arena_init(&ar, &back, &a);
    for (int i = 0; i < 100; i++) CHECK(kp_alloc(&a, 500, 8, NULL) != NULL);
    CHECK(back.stats.live_count > 1);
    size_t before = kp_arena_capacity(&ar);
    kp_arena_reset(&ar, true);
    CHECK(back.stats.live_count == 1);
    size_t kept = kp_arena_capacity(&ar);
    CHECK(kept > 0 && kept < before && kept >= before / 2);
    /* the kept chunk is empty and reused: no new backing allocs */
    int64_t allocs = back.stats.total_allocs;
    unsigned char *p = kp_alloc(&a, kept, 1, NULL);
    CHECK(p != NULL);
    CHECK(back.stats.total_allocs == allocs);
    kp_arena_reset(&ar, false);
    CHECK(kp_arena_capacity(&ar) == 0);
    CHECK_NO_LEAK(&back);
    kp_arena_reset(&ar, true); /* on an empty arena: nothing to keep */
    kp_arena_deinit(&ar);
    CHECK_NO_LEAK(&back);
}

static void test_arena_rewind_frees_chunks_after_mark(void) {
    KpAllocator back, a;
    KpArena ar;
    kp_direct_init(&back);
    kp_arena_init(&ar, &back, &a);
    kp_alloc(&a, 100, 8, NULL);
    KpArenaMark m = kp_arena_mark(&ar);
    int64_t chunks = back.stats.live_count;
    char *first = kp_alloc(&a, 64, 8, NULL);
    for (int i = 0; i < 200; i++) kp_alloc(&a, 300, 8, NULL);
    CHECK(back.stats.live_count > chunks);
    kp_arena_rewind(&ar, m);
    CHECK(back.stats.live_count == chunks);
    CHECK(kp_alloc(&a, 64, 8, NULL) == first);
    kp_arena_deinit(&ar);
    CHECK_NO_LEAK(&back);
}

static void test_arena_rewind_to_empty_mark_frees_everything(void) {
    KpAllocator back, a;
    KpArena ar;
    kp_direct_init(&back);
    kp_arena_init(&ar, &back, &a);
    KpArenaMark m = kp_arena_mark(&ar);
    for (int i = 0; i < 50; i++) kp_alloc(&a, 1000, 8, NULL);
    kp_arena_rewind(&ar, m);
    CHECK_NO_LEAK(&back);
    CHECK(kp_alloc(&a, 8, 8, NULL) != NULL); /* still usable */
    kp_arena_deinit(&ar);
    CHECK_NO_LEAK(&back);
}

static void test_arena_returns_null_when_backing_fails(void) {
    KpAllocator back, fail, a;
    KpFailing f;
    KpArena ar;
    kp_direct_init(&back);
    kp_failing_init(&f, &back, 1, &fail);
    kp_arena_init(&ar, &fail, &a);
    char *x = kp_alloc(&a, 100, 8, NULL);
    CHECK(x != NULL);
    memset(x, 9, 100);
    CHECK(kp_alloc(&a, 10000, 8, NULL) == NULL); /* needs a 2nd chunk */
    CHECK(f.failures == 1);
    CHECK(a.stats.live_count == 1 && a.stats.total_allocs == 1);
    CHECK(kp_alloc(&a, 100, 8, NULL) != NULL); /* first chunk still has room */
    CHECK(x[99] == 9);
    kp_arena_deinit(&ar);
    CHECK_NO_LEAK(&back);
}

static void test_arena_over_page_allocator(void) {
    KpAllocator pages, a;
    KpArena ar;
    kp_page_init(&pages);
    kp_arena_init(&ar, &pages, &a);
    for (int i = 0; i < 1000; i++) {
        int *p = kp_alloc(&a, sizeof(int) * 10, _Alignof(int), NULL);
        CHECK(p != NULL);
        p[9] = i;
    }
    kp_allocator_deinit(&a);
    CHECK_NO_LEAK(&pages);
}

/* ================================================================ fixed */

static void test_fixed_exhaustion_returns_null(void) {
    _Alignas(16) unsigned char buf[256];
    KpFixed f;
    KpAllocator a;
    kp_fixed_init(&f, buf, sizeof buf, &a);
    CHECK(kp_alloc(&a, 200, 1, NULL) == buf);
    CHECK(kp_alloc(&a, 57, 1, NULL) == NULL);
    CHECK(kp_alloc(&a, 56, 1, NULL) == buf + 200);
    CHECK(kp_alloc(&a, 1, 1, NULL) == NULL);
    CHECK(kp_alloc(&a, (size_t)-1, 1, NULL) == NULL);
    CHECK(kp_alloc(&a, 0, 1, NULL) != NULL); /* 0 bytes still fit */
    CHECK(a.stats.total_allocs == 3);
    kp_fixed_reset(&f);
    CHECK(kp_alloc(&a, 256, 1, NULL) == buf);
    kp_free(&a, buf, 256, 1, NULL);
    CHECK(f.end == 0);
    a.stats = (KpAllocStats){0}; /* frees of older blocks were no-ops */
    CHECK_NO_LEAK(&a);
}

static void test_fixed_free_last_undoes(void) {
    unsigned char buf[64];
    KpFixed f;
    KpAllocator a;
    kp_fixed_init(&f, buf, sizeof buf, &a);
    char *x = kp_alloc(&a, 10, 1, NULL);
    char *y = kp_alloc(&a, 10, 1, NULL);
    kp_free(&a, x, 10, 1, NULL); /* not last: no-op */
    CHECK(f.end == 20);
    kp_free(&a, y, 10, 1, NULL);
    CHECK(f.end == 10);
    kp_free(&a, x, 10, 1, NULL); /* last now */
    CHECK(f.end == 0);
    CHECK(kp_alloc(&a, 64, 1, NULL) == (void *)buf);
    kp_free(&a, buf, 64, 1, NULL);
    CHECK(f.end == 0);
    a.stats.live_bytes += 10; a.stats.live_count += 1; /* the no-op free */
    CHECK_NO_LEAK(&a);
}

static void test_fixed_alignment_1_to_4096(void) {
    static unsigned char buf[3 * 4096 + 1];
    KpFixed f;
    KpAllocator a;
    kp_fixed_init(&f, buf + 1, sizeof buf - 1, &a); /* misaligned buffer */
    for (size_t al = 1; al <= 4096; al *= 2) {
        unsigned char *p = kp_alloc(&a, 1, al, NULL);
        CHECK(p && aligned(p, al) && kp_fixed_owns(&f, p));
    }
    kp_fixed_reset(&f);
    CHECK(f.end == 0);
    /* padding for alignment counts against the buffer */
    _Alignas(64) unsigned char small[64];
    kp_fixed_init(&f, small, sizeof small, &a);
    CHECK(kp_alloc(&a, 1, 1, NULL) == small);
    CHECK(kp_alloc(&a, 1, 64, NULL) == NULL);
    CHECK(kp_alloc(&a, 1, 32, NULL) == small + 32);
}

static void test_fixed_resize_last_grows_until_full(void) {
    unsigned char buf[100];
    KpFixed f;
    KpAllocator a;
    kp_fixed_init(&f, buf, sizeof buf, &a);
    char *x = kp_alloc(&a, 10, 1, NULL);
    char *y = kp_alloc(&a, 10, 1, NULL);
    CHECK(kp_resize(&a, y, 10, 90, 1, NULL));
    CHECK(!kp_resize(&a, y, 90, 91, 1, NULL));
    CHECK(!kp_resize(&a, x, 10, 11, 1, NULL));
    CHECK(kp_resize(&a, x, 10, 5, 1, NULL));
    CHECK(kp_resize(&a, y, 90, 1, 1, NULL));
    CHECK(f.end == 11);
    /* realloc of a non-last block moves it within the buffer */
    char *z = kp_realloc(&a, x, 5, 50, 1, NULL);
    CHECK(z == (char *)buf + 11);
    CHECK(kp_realloc(&a, z, 50, 100, 1, NULL) == NULL); /* no room */
    kp_fixed_reset(&f);
    CHECK(f.end == 0);
}

static void test_fixed_zero_length_buffer_refuses_everything(void) {
    KpFixed f;
    KpAllocator a;
    kp_fixed_init(&f, NULL, 0, &a);
    CHECK(kp_alloc(&a, 1, 1, NULL) == NULL);
    CHECK(!kp_fixed_owns(&f, &f));
    CHECK_NO_LEAK(&a);
}

/* ================================================================ failing */

static void test_failing_fails_every_alloc_after_n(void) {
    KpAllocator back, a;
    KpFailing f;
    kp_direct_init(&back);
    kp_failing_init(&f, &back, 2, &a);
    void *p = kp_alloc(&a, 8, 8, NULL), *q = kp_alloc(&a, 8, 8, NULL);
    CHECK(p && q);
    CHECK(kp_alloc(&a, 8, 8, NULL) == NULL);
    CHECK(kp_alloc(&a, 1, 1, NULL) == NULL);
    CHECK(f.failures == 2 && f.allocs == 2);
    CHECK(a.stats.total_allocs == 2);
    kp_free(&a, p, 8, 8, NULL); /* frees always go through */
    CHECK(kp_alloc(&a, 8, 8, NULL) == NULL); /* still failing */
    q = kp_realloc(&a, q, 8, 4, 8, NULL);    /* shrinking works */
    CHECK(q != NULL);
    CHECK(kp_realloc(&a, q, 4, 100, 8, NULL) == NULL);
    kp_free(&a, q, 4, 8, NULL);
    CHECK_NO_LEAK(&a);
    CHECK_NO_LEAK(&back);
}

static void test_failing_negative_never_fails(void) {
    KpAllocator back, a;
    KpFailing f;
    kp_direct_init(&back);
    kp_failing_init(&f, &back, -1, &a);
    void *ps[100];
    for (int i = 0; i < 100; i++) ps[i] = kp_alloc(&a, 16, 8, NULL);
    bool all = true;
    for (int i = 0; i < 100; i++) all &= ps[i] != NULL;
    CHECK(all && f.allocs == 100 && f.failures == 0);
    for (int i = 0; i < 100; i++) kp_free(&a, ps[i], 16, 8, NULL);
    CHECK_NO_LEAK(&back);
}

/* Code under test for the all-failures loop: builds a list of n strings,
 * and on any failure frees what it built and returns false. */
static bool build_list(KpAllocator *a, int n, char ***out) {
    char **v = NULL;
    size_t cap = 0;
    int i;
    for (i = 0; i < n; i++) {
        if ((size_t)i == cap) {
            size_t nc = cap ? cap * 2 : 2;
            char **nv = kp_realloc(a, v, cap * sizeof *v, nc * sizeof *v,
                                   _Alignof(char *), NULL);
            if (!nv) goto fail;
            v = nv;
            cap = nc;
        }
        v[i] = kp_alloc(a, 16, 1, NULL);
        if (!v[i]) goto fail;
        snprintf(v[i], 16, "item %d", i);
    }
    *out = v;
    return true;
fail:
    for (int j = 0; j < i; j++) kp_free(a, v[j], 16, 1, NULL);
    kp_free(a, v, cap * sizeof *v, _Alignof(char *), NULL);
    return false;
}

static void free_list(KpAllocator *a, char **v, int n) {
    size_t cap = 2;
    while (cap < (size_t)n) cap *= 2;
    for (int j = 0; j < n; j++) kp_free(a, v[j], 16, 1, NULL);
    kp_free(a, v, cap * sizeof *v, _Alignof(char *), NULL);
}

static void test_failing_checks_every_allocation_failure(void) {
    KpAllocator back, a;
    KpFailing f;
    kp_direct_init(&back);
    kp_failing_init(&f, &back, -1, &a);
    char **v;
    CHECK(build_list(&a, 9, &v));
    int n = f.allocs;
    free_list(&a, v, 9);
    CHECK(n > 9);
    for (int i = 0; i < n; i++) {
        kp_failing_init(&f, &back, i, &a);
        CHECK(!build_list(&a, 9, &v));
        CHECK(f.failures >= 1);
        CHECK_NO_LEAK(&back);
    }
    CHECK_NO_LEAK(&back);
}

/* ================================================================ debug */

typedef struct DebugFixture {
    KpAllocator back, a;
    KpDebug d;
    Capture out;
} DebugFixture;

static void dbg_setup(DebugFixture *t, size_t quarantine) {
    kp_direct_init(&t->back);
    capture_clear(&t->out);
    KpDebugConfig cfg = {0, quarantine, capture, &t->out};
    kp_debug_init(&t->d, &t->back, &cfg, &t->a);
}

static void test_debug_clean_run_reports_nothing(void) {
    DebugFixture t;
    dbg_setup(&t, 0);
    CHECK(t.a.flags & KP_ALLOC_WANTS_LOC);
    CHECK(t.d.cfg.redzone == 16 && t.d.cfg.quarantine_bytes == 1u << 20);
    void *ps[50];
    for (int i = 0; i < 50; i++) ps[i] = kp_alloc(&t.a, (size_t)i + 1, 8, &L3);
    for (int i = 0; i < 50; i++) kp_free(&t.a, ps[i], (size_t)i + 1, 8, &L5);
    CHECK(kp_debug_leak_count(&t.d) == 0);
    kp_debug_leak_report(&t.d);
    kp_allocator_deinit(&t.a);
    CHECK_STR(t.out.text, "");
    CHECK(kp_debug_error_count(&t.d) == 0);
    CHECK(kp_debug_leak_count(&t.d) == 0 && kp_debug_leak_bytes(&t.d) == 0);
    CHECK_NO_LEAK(&t.a);
    CHECK_NO_LEAK(&t.back);
}

static void test_debug_alignment_1_to_4096(void) {
    DebugFixture t;
    dbg_setup(&t, 0);
    for (size_t al = 1; al <= 4096; al *= 2) {
        unsigned char *p = kp_alloc(&t.a, 33, al, &L3);
        CHECK(p && aligned(p, al));
        memset(p, 1, 33);
        kp_free(&t.a, p, 33, al, &L5);
    }
    kp_debug_deinit(&t.d);
    CHECK(kp_debug_error_count(&t.d) == 0);
    CHECK_STR(t.out.text, "");
    CHECK_NO_LEAK(&t.back);
}

static void test_debug_fills_new_and_freed_blocks(void) {
    DebugFixture t;
    dbg_setup(&t, 0);
    unsigned char *p = kp_alloc(&t.a, 8, 1, &L3);
    bool fresh = true;
    for (int i = 0; i < 8; i++) fresh &= p[i] == 0xAA;
    CHECK(fresh);
    kp_free(&t.a, p, 8, 1, &L5);
    bool poisoned = true; /* quarantined: still ours to read */
    for (int i = 0; i < 8; i++) poisoned &= p[i] == 0xDD;
    CHECK(poisoned);
    kp_debug_deinit(&t.d);
    CHECK_NO_LEAK(&t.back);
}

static void test_debug_reports_overflow_at_free(void) {
    DebugFixture t;
    dbg_setup(&t, 0);
    unsigned char *p = kp_alloc(&t.a, 32, 8, &L3);
    p[32] = 1; /* one byte past the end: lands in the back redzone */
    kp_free(&t.a, p, 32, 8, &L9);
    CHECK_STR(t.out.text,
              "DebugAllocator: buffer overflow: 1 byte(s) past the end of a "
              "32-byte block were overwritten\n"
              "  allocated at t.kp:3\n"
              "  detected at free from t.kp:9:2\n");
    CHECK(kp_debug_error_count(&t.d) == 1);
    kp_debug_deinit(&t.d); /* repaired: not reported again */
    CHECK(kp_debug_error_count(&t.d) == 1);
    CHECK_NO_LEAK(&t.back);
}

static void test_debug_reports_underflow_at_free(void) {
    DebugFixture t;
    dbg_setup(&t, 0);
    unsigned char *p = kp_alloc(&t.a, 5, 1, &L3);
    p[-1] = 0; /* front redzone */
    p[-3] = 0;
    kp_free(&t.a, p, 5, 1, &L5);
    CHECK_STR(t.out.text,
              "DebugAllocator: buffer underflow: 2 byte(s) before the start "
              "of a 5-byte block were overwritten\n"
              "  allocated at t.kp:3\n"
              "  detected at free from t.kp:5\n");
    kp_debug_deinit(&t.d);
    CHECK(kp_debug_error_count(&t.d) == 1);
    CHECK_NO_LEAK(&t.back);
}

static void test_debug_reports_overflow_of_leaked_block_at_deinit(void) {
    DebugFixture t;
    dbg_setup(&t, 0);
    unsigned char *p = kp_alloc(&t.a, 16, 16, &L7);
    p[16 + 15] = 0; /* last byte of the 16-byte back redzone */
    kp_debug_deinit(&t.d);
    CHECK_STR(t.out.text,
              "DebugAllocator: buffer overflow: 1 byte(s) past the end of a "
              "16-byte block were overwritten\n"
              "  allocated at t.kp:7\n"
              "  detected at deinit\n"
              "leak: 16 bytes in 1 allocation from t.kp:7\n"
              "SUMMARY: KeepDebugAllocator: 16 byte(s) leaked in 1 "
              "allocation(s).\n");
    CHECK(kp_debug_error_count(&t.d) == 1);
    CHECK(kp_debug_leak_count(&t.d) == 1 && kp_debug_leak_bytes(&t.d) == 16);
    CHECK_NO_LEAK(&t.back);
}

static void test_debug_reports_write_after_free_when_block_leaves_quarantine(void) {
    DebugFixture t;
    dbg_setup(&t, 4096);
    unsigned char *p = kp_alloc(&t.a, 32, 8, &L3);
    kp_free(&t.a, p, 32, 8, &L5);
    p[4] = 'x'; /* the block is quarantined: memory still ours */
    p[5] = 'y';
    CHECK_STR(t.out.text, "");
    /* push it out of the 4 KiB quarantine */
    for (int i = 0; i < 40; i++) {
        void *q = kp_alloc(&t.a, 100, 8, &L7);
        kp_free(&t.a, q, 100, 8, &L7);
    }
    CHECK_STR(t.out.text,
              "DebugAllocator: write after free: 2 byte(s) of a 32-byte block "
              "(or its redzones) changed after it was freed\n"
              "  allocated at t.kp:3\n"
              "  freed at t.kp:5\n"
              "  detected when the block left the quarantine\n");
    CHECK(kp_debug_error_count(&t.d) == 1);
    CHECK(t.d.q_bytes <= 4096);
    kp_debug_deinit(&t.d);
    CHECK(kp_debug_error_count(&t.d) == 1);
    CHECK_NO_LEAK(&t.back);
}

static void test_debug_reports_write_after_free_at_deinit(void) {
    DebugFixture t;
    dbg_setup(&t, 0);
    unsigned char *p = kp_alloc(&t.a, 10, 2, &L3);
    kp_free(&t.a, p, 10, 2, NULL);
    p[9] = 0;
    kp_debug_deinit(&t.d);
    CHECK_STR(t.out.text,
              "DebugAllocator: write after free: 1 byte(s) of a 10-byte block "
              "(or its redzones) changed after it was freed\n"
              "  allocated at t.kp:3\n"
              "  freed at <unknown>\n"
              "  detected at deinit\n");
    CHECK(kp_debug_error_count(&t.d) == 1);
    CHECK_NO_LEAK(&t.back);
}

static void test_debug_reports_double_free_with_both_locations(void) {
    DebugFixture t;
    dbg_setup(&t, 0);
    void *p = kp_alloc(&t.a, 24, 8, &L3);
    kp_free(&t.a, p, 24, 8, &L5);
    kp_free(&t.a, p, 24, 8, &L7);
    CHECK_STR(t.out.text,
              "DebugAllocator: double free of a 24-byte block\n"
              "  allocated at t.kp:3\n"
              "  first freed at t.kp:5\n"
              "  freed again at t.kp:7\n");
    CHECK(kp_debug_error_count(&t.d) == 1);
    kp_debug_deinit(&t.d);
    CHECK(kp_debug_error_count(&t.d) == 1);
    CHECK_NO_LEAK(&t.back);
}

static void test_debug_reports_invalid_free_without_touching_it(void) {
    DebugFixture t;
    dbg_setup(&t, 0);
    long on_stack = 0;
    char *p = kp_alloc(&t.a, 64, 8, &L3);
    kp_free(&t.a, &on_stack, sizeof on_stack, 8, &L5);
    CHECK_HAS(t.out.text, "DebugAllocator: invalid free of ");
    CHECK_HAS(t.out.text, ": not a block of this allocator (or one freed long "
                          "ago)\n  freed at t.kp:5\n");
    capture_clear(&t.out);
    kp_free(&t.a, p + 8, 56, 8, &L7); /* interior pointer */
    CHECK_HAS(t.out.text, "invalid free of ");
    CHECK_HAS(t.out.text, "  freed at t.kp:7\n");
    capture_clear(&t.out);
    kp_free(&t.a, (void *)(uintptr_t)0x10, 8, 8, &L7); /* wild pointer */
    CHECK_HAS(t.out.text, "invalid free of ");
    CHECK(on_stack == 0);
    CHECK(kp_debug_error_count(&t.d) == 3);
    CHECK(kp_debug_leak_count(&t.d) == 1);
    kp_free(&t.a, p, 64, 8, &L9); /* the real block is still fine */
    kp_debug_deinit(&t.d);
    CHECK(kp_debug_error_count(&t.d) == 3);
    CHECK_NO_LEAK(&t.back);
}

static void test_debug_reports_size_and_alignment_mismatch(void) {
    DebugFixture t;
    dbg_setup(&t, 0);
    void *p = kp_alloc(&t.a, 32, 8, &L3);
    kp_free(&t.a, p, 16, 8, &L5);
    CHECK_STR(t.out.text,
              "DebugAllocator: size mismatch: freeing a 32-byte block as 16 "
              "bytes\n  allocated at t.kp:3\n  freed at t.kp:5\n");
    capture_clear(&t.out);
    p = kp_alloc(&t.a, 32, 16, &L7);
    kp_free(&t.a, p, 32, 4, &L9);
    CHECK_STR(t.out.text,
              "DebugAllocator: alignment mismatch: freeing a block aligned to "
              "16 as aligned to 4\n  allocated at t.kp:7\n  freed at t.kp:9:2\n");
    CHECK(kp_debug_error_count(&t.d) == 2);
    CHECK(kp_debug_leak_count(&t.d) == 0); /* freed with the true size */
    capture_clear(&t.out);
    p = kp_alloc(&t.a, 8, 8, &L3);
    CHECK(!kp_resize(&t.a, p, 9, 4, 8, &L5));
    CHECK_HAS(t.out.text, "size mismatch: resizing a 8-byte block as 9 bytes");
    kp_free(&t.a, p, 8, 8, &L5);
    kp_debug_deinit(&t.d);
    CHECK(kp_debug_error_count(&t.d) == 3);
    CHECK_NO_LEAK(&t.back);
}

static void test_debug_reports_resize_after_free(void) {
    DebugFixture t;
    dbg_setup(&t, 0);
    void *p = kp_alloc(&t.a, 8, 8, &L3);
    kp_free(&t.a, p, 8, 8, &L5);
    CHECK(!kp_resize(&t.a, p, 8, 4, 8, &L7));
    CHECK_STR(t.out.text,
              "DebugAllocator: resize after free of a 8-byte block\n"
              "  allocated at t.kp:3\n  freed at t.kp:5\n  resized at t.kp:7\n");
    kp_debug_deinit(&t.d);
    CHECK(kp_debug_error_count(&t.d) == 1);
    CHECK_NO_LEAK(&t.back);
}

static void test_debug_leak_report_groups_by_location_largest_first(void) {
    DebugFixture t;
    dbg_setup(&t, 0);
    KpSrcLoc f12 = {"f.kp", 12, 4}, f12b = {"f.kp", 12, 9};
    KpSrcLoc g1 = {"g.kp", 1, 0}, unk = {NULL, 5, 0};
    kp_alloc(&t.a, 16, 8, &f12);
    kp_alloc(&t.a, 16, 8, &f12b); /* same line, other column: same group */
    kp_alloc(&t.a, 16, 8, &f12);
    kp_alloc(&t.a, 100, 8, &g1);
    kp_alloc(&t.a, 1, 1, &unk);
    kp_alloc(&t.a, 2, 1, NULL);
    void *gone = kp_alloc(&t.a, 1000, 8, &g1);
    kp_free(&t.a, gone, 1000, 8, &g1);
    CHECK(kp_debug_leak_count(&t.d) == 6);
    CHECK(kp_debug_leak_bytes(&t.d) == 151);
    const char *want =
        "leak: 100 bytes in 1 allocation from g.kp:1\n"
        "leak: 48 bytes in 3 allocations from f.kp:12\n"
        "leak: 3 bytes in 2 allocations from <unknown>\n"
        "SUMMARY: KeepDebugAllocator: 151 byte(s) leaked in 6 "
        "allocation(s).\n";
    kp_debug_leak_report(&t.d);
    CHECK_STR(t.out.text, want);
    capture_clear(&t.out);
    kp_debug_deinit(&t.d); /* same report again, then frees them */
    CHECK_STR(t.out.text, want);
    CHECK(kp_debug_error_count(&t.d) == 0);
    CHECK(kp_debug_leak_count(&t.d) == 6 && kp_debug_leak_bytes(&t.d) == 151);
    CHECK_NO_LEAK(&t.back);
}

static void test_debug_leak_report_singular_byte(void) {
    DebugFixture t;
    dbg_setup(&t, 0);
    kp_alloc(&t.a, 1, 1, &L3);
    kp_debug_deinit(&t.d);
    CHECK_STR(t.out.text,
              "leak: 1 byte in 1 allocation from t.kp:3\n"
              "SUMMARY: KeepDebugAllocator: 1 byte(s) leaked in 1 "
              "allocation(s).\n");
    CHECK_NO_LEAK(&t.back);
}

static void test_debug_realloc_moves_and_quarantines_old_copy(void) {
    DebugFixture t;
    dbg_setup(&t, 0);
    char *p = kp_alloc(&t.a, 10, 1, &L3);
    memcpy(p, "abcdefghij", 10);
    CHECK(kp_resize(&t.a, p, 10, 4, 1, &L5)); /* shrink in place */
    CHECK(!kp_resize(&t.a, p, 4, 5, 1, &L5)); /* never grows in place */
    p[4] = 'z'; /* the released tail is redzone now */
    char *q = kp_realloc(&t.a, p, 4, 100, 1, &L7);
    CHECK(q && q != p && memcmp(q, "abcd", 4) == 0);
    CHECK_HAS(t.out.text, "buffer overflow: 1 byte(s) past the end of a "
                          "4-byte block");
    CHECK(kp_debug_leak_count(&t.d) == 1 && kp_debug_leak_bytes(&t.d) == 100);
    CHECK(t.a.stats.live_bytes == 100);
    kp_free(&t.a, q, 100, 1, &L9);
    kp_debug_deinit(&t.d);
    CHECK(kp_debug_error_count(&t.d) == 1);
    CHECK_NO_LEAK(&t.a);
    CHECK_NO_LEAK(&t.back);
}

static void test_debug_quarantine_stays_within_budget(void) {
    DebugFixture t;
    dbg_setup(&t, 10000);
    for (int i = 0; i < 1000; i++) {
        void *p = kp_alloc(&t.a, 200, 8, &L3);
        kp_free(&t.a, p, 200, 8, &L5);
        CHECK(t.d.q_bytes <= 10000);
    }
    CHECK(t.d.q_count > 10 && t.d.q_count < 100);
    /* a block bigger than the whole budget passes straight through */
    void *big = kp_alloc(&t.a, 20000, 8, &L3);
    kp_free(&t.a, big, 20000, 8, &L5);
    CHECK(t.d.q_bytes <= 10000);
    kp_debug_deinit(&t.d);
    CHECK_STR(t.out.text, "");
    CHECK_NO_LEAK(&t.back);
}

static void test_debug_no_quarantine_releases_at_once(void) {
    DebugFixture t;
    dbg_setup(&t, KP_DEBUG_NO_QUARANTINE);
    void *p = kp_alloc(&t.a, 64, 8, &L3);
    kp_free(&t.a, p, 64, 8, &L5); /* first free sets up the (empty) ring */
    p = kp_alloc(&t.a, 64, 8, &L3);
    int64_t before = t.back.stats.live_count;
    kp_free(&t.a, p, 64, 8, &L5);
    CHECK(t.back.stats.live_count == before - 1);
    kp_debug_deinit(&t.d);
    CHECK_NO_LEAK(&t.back);
}

static void test_debug_many_blocks_stay_indexed(void) {
    DebugFixture t;
    dbg_setup(&t, KP_DEBUG_NO_QUARANTINE);
    enum { N = 5000 };
    static void *ps[N];
    for (int i = 0; i < N; i++) ps[i] = kp_alloc(&t.a, (size_t)(i % 97) + 1, 8, &L3);
    /* free in a scrambled order to exercise deletion in the hash set */
    for (int i = 0; i < N; i++) {
        int j = (int)(((unsigned)i * 7919u) % N);
        kp_free(&t.a, ps[j], (size_t)(j % 97) + 1, 8, &L5);
    }
    CHECK(kp_debug_leak_count(&t.d) == 0);
    kp_debug_deinit(&t.d);
    CHECK(kp_debug_error_count(&t.d) == 0);
    CHECK_STR(t.out.text, "");
    CHECK_NO_LEAK(&t.back);
}

static void test_debug_returns_null_when_backing_fails(void) {
    KpAllocator back, fail, a;
    KpFailing f;
    KpDebug d;
    Capture out;
    capture_clear(&out);
    kp_direct_init(&back);
    kp_failing_init(&f, &back, -1, &fail);
    KpDebugConfig cfg = {0, 0, capture, &out};
    /* count the allocs of a small workload, then fail each in turn */
    int n = -1;
    for (int k = -1; k < n || n < 0; k++) {
        kp_failing_init(&f, &back, k, &fail);
        kp_debug_init(&d, &fail, &cfg, &a);
        void *ps[70];
        int got = 0;
        for (int i = 0; i < 70; i++) {
            ps[i] = kp_alloc(&a, 24, 8, &L3);
            if (ps[i]) got++;
        }
        for (int i = 0; i < 70; i++) kp_free(&a, ps[i], 24, 8, &L5);
        kp_debug_deinit(&d);
        if (k < 0) {
            n = f.allocs;
            CHECK(got == 70);
        } else {
            /* the failed alloc was a block, the live set or the ring */
            CHECK(f.failures > 0);
        }
        CHECK(kp_debug_error_count(&d) == 0);
        CHECK_NO_LEAK(&back);
    }
    CHECK_STR(out.text, "");
    CHECK_NO_LEAK(&back);
}

static void test_debug_over_arena_over_page(void) {
    KpAllocator pages, arena, a;
    KpArena ar;
    KpDebug d;
    Capture out;
    capture_clear(&out);
    kp_page_init(&pages);
    kp_arena_init(&ar, &pages, &arena);
    KpDebugConfig cfg = {32, 0, capture, &out};
    kp_debug_init(&d, &arena, &cfg, &a);
    char *p = kp_alloc(&a, 10, 1, &L3);
    p[10 + 31] = 0; /* end of a 32-byte redzone */
    kp_free(&a, p, 10, 1, &L5);
    CHECK_HAS(out.text, "buffer overflow: 1 byte(s) past the end of a 10-byte");
    kp_debug_deinit(&d);
    kp_arena_deinit(&ar);
    CHECK_NO_LEAK(&pages);
}

/* ============================================================ thread-local */

static void test_tl_single_thread_sizes_and_alignments(void) {
    KpAllocator back, a;
    KpThreadLocal tl;
    kp_direct_init(&back);
    CHECK(kp_tl_init(&tl, &back, &a));
    CHECK(a.flags & KP_ALLOC_THREADSAFE);
    static unsigned char *ps[13][12];
    for (int s = 0; s < 13; s++) {
        size_t al = (size_t)1 << s;
        for (int k = 0; k < 12; k++) {
            size_t size = (size_t)1 << k;
            ps[s][k] = kp_alloc(&a, size, al, NULL);
            CHECK(ps[s][k] && aligned(ps[s][k], al));
            memset(ps[s][k], s, size);
        }
    }
    bool intact = true;
    for (int s = 0; s < 13; s++)
        for (int k = 0; k < 12; k++) {
            intact &= ps[s][k][0] == s && ps[s][k][((size_t)1 << k) - 1] == s;
            kp_free(&a, ps[s][k], (size_t)1 << k, (size_t)1 << s, NULL);
        }
    CHECK(intact);
    CHECK_NO_LEAK(&a);
    kp_tl_deinit(&tl);
    CHECK_NO_LEAK(&back);
}

static void test_tl_reuses_freed_blocks(void) {
    KpAllocator back, a;
    KpThreadLocal tl;
    kp_direct_init(&back);
    kp_tl_init(&tl, &back, &a);
    void *p = kp_alloc(&a, 40, 8, NULL);
    kp_free(&a, p, 40, 8, NULL);
    CHECK(kp_alloc(&a, 33, 8, NULL) == p); /* same 64-byte class */
    int64_t slabs = back.stats.live_count;
    for (int i = 0; i < 1000; i++) {
        void *q = kp_alloc(&a, 100, 8, NULL);
        kp_free(&a, q, 100, 8, NULL);
    }
    CHECK(back.stats.live_count == slabs + 1 || back.stats.live_count == slabs);
    kp_free(&a, p, 33, 8, NULL);
    kp_tl_deinit(&tl);
    CHECK_NO_LEAK(&back);
}

static void test_tl_resize_within_class_and_realloc(void) {
    KpAllocator back, a;
    KpThreadLocal tl;
    kp_direct_init(&back);
    kp_tl_init(&tl, &back, &a);
    char *p = kp_alloc(&a, 20, 1, NULL);
    CHECK(kp_resize(&a, p, 20, 32, 1, NULL));  /* still the 32 class */
    CHECK(!kp_resize(&a, p, 32, 33, 1, NULL)); /* next class: must move */
    memcpy(p, "0123456789", 10);
    p = kp_realloc(&a, p, 32, 5000, 1, NULL); /* to the large path */
    CHECK(p && memcmp(p, "0123456789", 10) == 0);
    CHECK(kp_resize(&a, p, 5000, 6000, 1, NULL) ||
          !kp_resize(&a, p, 5000, 6000, 1, NULL));
    p = kp_realloc(&a, p, 5000, 16, 1, NULL); /* large to small: moves */
    CHECK(p && memcmp(p, "0123456789", 10) == 0);
    kp_free(&a, p, 16, 1, NULL);
    CHECK_NO_LEAK(&a);
    kp_tl_deinit(&tl);
    CHECK_NO_LEAK(&back);
}

static void test_tl_limit_applies(void) {
    KpAllocator back, a;
    KpThreadLocal tl;
    kp_direct_init(&back);
    kp_tl_init(&tl, &back, &a);
    a.limit = 1000;
    void *p = kp_alloc(&a, 600, 8, NULL);
    CHECK(p != NULL);
    CHECK(kp_alloc(&a, 401, 8, NULL) == NULL);
    CHECK(a.stats.live_bytes == 600);
    kp_free(&a, p, 600, 8, NULL);
    CHECK_NO_LEAK(&a);
    kp_tl_deinit(&tl);
    CHECK_NO_LEAK(&back);
}

static void test_tl_returns_null_when_backing_fails(void) {
    KpAllocator back, fail, a;
    KpFailing f;
    KpThreadLocal tl;
    kp_direct_init(&back);
    for (int k = 0; k < 4; k++) {
        kp_failing_init(&f, &back, k, &fail);
        kp_tl_init(&tl, &fail, &a);
        void *small[3], *big;
        for (int i = 0; i < 3; i++) small[i] = kp_alloc(&a, 16 << (i * 3), 8, NULL);
        big = kp_alloc(&a, 100000, 8, NULL);
        CHECK(f.failures > 0);
        for (int i = 0; i < 3; i++) kp_free(&a, small[i], 16 << (i * 3), 8, NULL);
        kp_free(&a, big, 100000, 8, NULL);
        CHECK_NO_LEAK(&a);
        kp_tl_deinit(&tl);
        CHECK_NO_LEAK(&back);
    }
}

static void test_tl_over_page_allocator(void) {
    KpAllocator pages, a;
    KpThreadLocal tl;
    kp_page_init(&pages);
    kp_tl_init(&tl, &pages, &a);
    void *ps[300];
    for (int i = 0; i < 300; i++) ps[i] = kp_alloc(&a, (size_t)i * 11 + 1, 8, NULL);
    for (int i = 0; i < 300; i++) kp_free(&a, ps[i], (size_t)i * 11 + 1, 8, NULL);
    kp_tl_deinit(&tl);
    CHECK_NO_LEAK(&pages);
}

int main(void) {
    RUN(test_direct_alignment_1_to_4096);
    RUN(test_direct_zero_size_gives_unique_pointers);
    RUN(test_realloc_keeps_contents_and_frees_old);
    RUN(test_stats_track_live_peak_and_totals);
    RUN(test_limit_refuses_allocs_and_growth_past_it);
    RUN(test_alloc_report_prints_one_line);

    RUN(test_page_rounds_to_pages);
    RUN(test_page_zero_size_maps_a_page);
    RUN(test_page_alignment_above_page_trims_extra);
    RUN(test_page_shrink_unmaps_tail_pages);
    RUN(test_page_blocks_are_zeroed);
    RUN(test_page_cache_reuses_a_freed_span_zeroed);
    RUN(test_page_cache_holds_a_bounded_number_of_spans);

    RUN(test_arena_free_last_undoes);
    RUN(test_arena_free_of_older_block_is_noop);
    RUN(test_arena_alignment_1_to_4096);
    RUN(test_arena_resizes_last_block_in_place);
    RUN(test_arena_large_request_gets_its_own_chunk);
    RUN(test_arena_reset_retain_keeps_largest_chunk);
    RUN(test_arena_rewind_frees_chunks_after_mark);
    RUN(test_arena_rewind_to_empty_mark_frees_everything);
    RUN(test_arena_returns_null_when_backing_fails);
    RUN(test_arena_over_page_allocator);

    RUN(test_class_cache_reuses_a_freed_block_of_its_class);
    RUN(test_class_cache_keeping_nothing_frees_at_once);
    RUN(test_class_cache_passes_large_and_overaligned_blocks_through);
    RUN(test_class_cache_resizes_in_place_within_a_class);
    RUN(test_class_cache_returns_null_when_inner_fails);

    RUN(test_fixed_exhaustion_returns_null);
    RUN(test_fixed_free_last_undoes);
    RUN(test_fixed_alignment_1_to_4096);
    RUN(test_fixed_resize_last_grows_until_full);
    RUN(test_fixed_zero_length_buffer_refuses_everything);

    RUN(test_failing_fails_every_alloc_after_n);
    RUN(test_failing_negative_never_fails);
    RUN(test_failing_checks_every_allocation_failure);

    RUN(test_debug_clean_run_reports_nothing);
    RUN(test_debug_alignment_1_to_4096);
    RUN(test_debug_fills_new_and_freed_blocks);
    RUN(test_debug_reports_overflow_at_free);
    RUN(test_debug_reports_underflow_at_free);
    RUN(test_debug_reports_overflow_of_leaked_block_at_deinit);
    RUN(test_debug_reports_write_after_free_when_block_leaves_quarantine);
    RUN(test_debug_reports_write_after_free_at_deinit);
    RUN(test_debug_reports_double_free_with_both_locations);
    RUN(test_debug_reports_invalid_free_without_touching_it);
    RUN(test_debug_reports_size_and_alignment_mismatch);
    RUN(test_debug_reports_resize_after_free);
    RUN(test_debug_leak_report_groups_by_location_largest_first);
    RUN(test_debug_leak_report_singular_byte);
    RUN(test_debug_realloc_moves_and_quarantines_old_copy);
    RUN(test_debug_quarantine_stays_within_budget);
    RUN(test_debug_no_quarantine_releases_at_once);
    RUN(test_debug_many_blocks_stay_indexed);
    RUN(test_debug_returns_null_when_backing_fails);
    RUN(test_debug_over_arena_over_page);

    RUN(test_tl_single_thread_sizes_and_alignments);
    RUN(test_tl_reuses_freed_blocks);
    RUN(test_tl_resize_within_class_and_realloc);
    RUN(test_tl_limit_applies);
    RUN(test_tl_returns_null_when_backing_fails);
    RUN(test_tl_over_page_allocator);

    return CHECK_DONE();
}
