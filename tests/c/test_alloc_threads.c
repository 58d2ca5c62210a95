/*
 * test_alloc_threads.c — the thread-safe allocators under many threads.
 *
 * The stress test runs 8 threads doing random allocs and frees of random
 * sizes (small classes and the large path) on one ThreadLocalAllocator,
 * passing about a third of their blocks to other threads through a shared
 * queue so they are freed remotely; every block carries a pattern that is
 * verified when it is freed.  Every test ends with a leak check on the
 * backing allocator after kp_tl_deinit / kp_debug_deinit.
 *
 * tests/c/tsan.sh builds this file with -fsanitize=thread.
 * Prints one line per failed check on stderr, then "N passed, M failed".
 */
#include "alloc/alloc.h"

#include "check.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


#define CHECK_NO_LEAK(a)                                                     \
    do {                                                                     \
        KpAllocStats s_ = kp_alloc_stats(a);                                 \
        CHECK(s_.live_bytes == 0);                                           \
        CHECK(s_.live_count == 0);                                           \
    } while (0)

enum { THREADS = 8, QCAP = 4096 };

typedef struct Item {
    unsigned char *p;
    size_t size, align;
    unsigned char pat;
} Item;

/* The shared queue blocks travel through between threads. */
typedef struct Queue {
    pthread_mutex_t lock;
    Item items[QCAP];
    size_t head, count;
} Queue;

static bool q_push(Queue *q, Item it) {
    pthread_mutex_lock(&q->lock);
    bool ok = q->count < QCAP;
    if (ok) q->items[(q->head + q->count++) % QCAP] = it;
    pthread_mutex_unlock(&q->lock);
    return ok;
}

static bool q_pop(Queue *q, Item *it) {
    pthread_mutex_lock(&q->lock);
    bool ok = q->count > 0;
    if (ok) {
        *it = q->items[q->head];
        q->head = (q->head + 1) % QCAP;
        q->count--;
    }
    pthread_mutex_unlock(&q->lock);
    return ok;
}

typedef struct Worker {
    KpAllocator *a;
    Queue *q;
    unsigned seed;
    int iters;
    long allocs, bad;
} Worker;

static unsigned rnd(unsigned *s) {
    *s ^= *s << 13;
    *s ^= *s >> 17;
    *s ^= *s << 5;
    return *s;
}

static bool verify(const Item *it) {
    size_t n = it->size < 64 ? it->size : 64;
    for (size_t i = 0; i < n; i++)
        if (it->p[i] != it->pat) return false;
    return it->size == 0 || it->p[it->size - 1] == it->pat;
}

static void release(Worker *w, Item *it) {
    if (!verify(it)) w->bad++;
    kp_free(w->a, it->p, it->size, it->align, NULL);
}

static void *work(void *arg) {
    Worker *w = arg;
    enum { KEEP = 64 };
    Item mine[KEEP];
    int n = 0;
    for (int i = 0; i < w->iters; i++) {
        unsigned r = rnd(&w->seed);
        switch (r % 8) {
        case 0: case 1: case 2: case 3: { /* allocate */
            if (n == KEEP) {
                release(w, &mine[--n]);
                break;
            }
            Item it;
            unsigned k = rnd(&w->seed);
            it.size = (k % 16 == 0) ? 2049 + k % 9000 : 1 + k % 2048;
            it.align = (size_t)1 << (rnd(&w->seed) % 8); /* 1..128 */
            it.pat = (unsigned char)(rnd(&w->seed) | 1);
            it.p = kp_alloc(w->a, it.size, it.align, NULL);
            if (!it.p || ((uintptr_t)it.p & (it.align - 1))) {
                w->bad++;
                break;
            }
            memset(it.p, it.pat, it.size);
            w->allocs++;
            mine[n++] = it;
            break;
        }
        case 4: /* free one of ours */
            if (n) {
                unsigned j = rnd(&w->seed) % (unsigned)n;
                release(w, &mine[j]);
                mine[j] = mine[--n];
            }
            break;
        case 5: case 6: /* hand one to another thread */
            if (n && q_push(w->q, mine[n - 1])) n--;
            break;
        case 7: { /* free one another thread made */
            Item it;
            if (q_pop(w->q, &it)) release(w, &it);
            break;
        }
        }
    }
    while (n) release(w, &mine[--n]);
    return NULL;
}

/* Runs THREADS workers on `a`, then frees what is left in the queue from
 * the calling thread.  Returns the number of allocs done. */
static long stress(KpAllocator *a, int iters) {
    static Queue q;
    pthread_mutex_init(&q.lock, NULL);
    q.head = q.count = 0;
    Worker w[THREADS];
    pthread_t th[THREADS];
    for (int i = 0; i < THREADS; i++) {
        w[i] = (Worker){a, &q, 0x9e3779b9u * (unsigned)(i + 1), iters, 0, 0};
        pthread_create(&th[i], NULL, work, &w[i]);
    }
    long allocs = 0, bad = 0;
    for (int i = 0; i < THREADS; i++) {
        pthread_join(th[i], NULL);
        allocs += w[i].allocs;
        bad += w[i].bad;
    }
    Worker self = {a, &q, 1, 0, 0, 0};
    Item it;
    while (q_pop(&q, &it)) release(&self, &it);
    bad += self.bad;
    CHECK(bad == 0);
    pthread_mutex_destroy(&q.lock);
    return allocs;
}

static void test_tl_stress_cross_thread_frees_over_direct(void) {
    KpAllocator back, a;
    KpThreadLocal tl;
    kp_direct_init(&back);
    CHECK(kp_tl_init(&tl, &back, &a));
    long allocs = stress(&a, 200000);
    KpAllocStats s = kp_alloc_stats(&a);
    CHECK(s.total_allocs == allocs);
    CHECK(s.total_frees == allocs);
    CHECK(s.peak_bytes > 0);
    CHECK_NO_LEAK(&a);
    /* every thread has exited and every block is freed: all slabs are
     * back; only the (reusable) cache structs remain */
    CHECK(back.stats.live_count <= THREADS);
    CHECK(back.stats.live_bytes <= THREADS * 1024);
    kp_tl_deinit(&tl);
    CHECK_NO_LEAK(&back);
}

static void test_tl_stress_over_page_allocator(void) {
    KpAllocator pages, a;
    KpThreadLocal tl;
    kp_page_init(&pages);
    kp_tl_init(&tl, &pages, &a);
    stress(&a, 5000);
    CHECK_NO_LEAK(&a);
    kp_tl_deinit(&tl);
    CHECK_NO_LEAK(&pages);
}

/* --- thread exit hands slabs back */

typedef struct Batch {
    KpAllocator *a;
    void *blocks[1000];
    int n;
    bool free_them;
} Batch;

static void *alloc_batch(void *arg) {
    Batch *b = arg;
    for (int i = 0; i < b->n; i++) b->blocks[i] = kp_alloc(b->a, 48, 8, NULL);
    if (b->free_them)
        for (int i = 0; i < b->n; i++) kp_free(b->a, b->blocks[i], 48, 8, NULL);
    return NULL;
}

static void run_thread(void *(*fn)(void *), void *arg) {
    pthread_t t;
    pthread_create(&t, NULL, fn, arg);
    pthread_join(t, NULL);
}

static void test_tl_thread_exit_returns_empty_slabs(void) {
    KpAllocator back, a;
    KpThreadLocal tl;
    kp_direct_init(&back);
    kp_tl_init(&tl, &back, &a);
    Batch b = {&a, {0}, 1000, true};
    run_thread(alloc_batch, &b);
    CHECK(back.stats.live_count == 1); /* just the orphaned cache struct */
    int64_t total = back.stats.total_allocs;
    run_thread(alloc_batch, &b);        /* a new thread adopts that struct */
    CHECK(back.stats.live_count == 1);
    CHECK(back.stats.total_allocs == total + 1); /* one slab, no new cache */
    kp_tl_deinit(&tl);
    CHECK_NO_LEAK(&back);
}

static void test_tl_blocks_outliving_their_thread_free_their_slabs(void) {
    KpAllocator back, a;
    KpThreadLocal tl;
    kp_direct_init(&back);
    kp_tl_init(&tl, &back, &a);
    Batch b = {&a, {0}, 1000, false};
    run_thread(alloc_batch, &b);
    CHECK(back.stats.live_count > 1); /* slabs still hold live blocks */
    for (int i = 0; i < b.n; i++) kp_free(&a, b.blocks[i], 48, 8, NULL);
    CHECK(back.stats.live_count == 1);
    CHECK_NO_LEAK(&a);
    kp_tl_deinit(&tl);
    CHECK_NO_LEAK(&back);
}

/* --- remote frees reach the owner */

typedef struct Remote {
    KpAllocator *a;
    void *p;
} Remote;

static void *free_remote(void *arg) {
    Remote *r = arg;
    kp_free(r->a, r->p, 100, 8, NULL);
    return NULL;
}

static void test_tl_remote_free_is_reused_by_owner(void) {
    KpAllocator back, a;
    KpThreadLocal tl;
    kp_direct_init(&back);
    kp_tl_init(&tl, &back, &a);
    void *p = kp_alloc(&a, 100, 8, NULL);
    void *keep = kp_alloc(&a, 100, 8, NULL);
    Remote r = {&a, p};
    run_thread(free_remote, &r);
    CHECK(kp_alloc(&a, 128, 8, NULL) == p); /* drained, then reused */
    kp_free(&a, p, 128, 8, NULL);
    kp_free(&a, keep, 100, 8, NULL);
    CHECK_NO_LEAK(&a);
    kp_tl_deinit(&tl);
    CHECK_NO_LEAK(&back);
}

/* --- the debug allocator is thread-safe too */

static void test_debug_under_threads_finds_no_errors(void) {
    KpAllocator back, a;
    KpDebug d;
    kp_direct_init(&back);
    KpDebugConfig cfg = {0, 64 * 1024, NULL, NULL};
    kp_debug_init(&d, &back, &cfg, &a);
    stress(&a, 3000);
    CHECK(kp_debug_error_count(&d) == 0);
    CHECK(kp_debug_leak_count(&d) == 0);
    CHECK_NO_LEAK(&a);
    kp_debug_deinit(&d);
    CHECK(kp_debug_error_count(&d) == 0);
    CHECK_NO_LEAK(&back);
}

static void test_debug_over_thread_local_finds_no_errors(void) {
    KpAllocator back, tla, a;
    KpThreadLocal tl;
    KpDebug d;
    kp_direct_init(&back);
    kp_tl_init(&tl, &back, &tla);
    kp_debug_init(&d, &tla, NULL, &a);
    stress(&a, 2000);
    kp_debug_deinit(&d);
    CHECK(kp_debug_error_count(&d) == 0);
    CHECK_NO_LEAK(&tla);
    kp_tl_deinit(&tl);
    CHECK_NO_LEAK(&back);
}

/* --- many allocators share one pthread key */

enum { MANY = 2500 };

typedef struct Many {
    KpAllocator *as;
    void **blocks;
} Many;

static void *use_many(void *arg) {
    Many *m = arg;
    for (int i = 0; i < MANY; i++) m->blocks[i] = kp_alloc(&m->as[i], 32, 8, NULL);
    return NULL; /* the thread exits with a cache in every allocator */
}

static void test_tl_thousands_of_allocators_leave_the_hosts_pthread_keys(void) {
    KpAllocator back;
    kp_direct_init(&back);
    KpThreadLocal *tls = calloc(MANY, sizeof *tls);
    KpAllocator *as = calloc(MANY, sizeof *as);
    void **mine = calloc(MANY, sizeof *mine), **theirs = calloc(MANY, sizeof *theirs);
    int made = 0;
    for (int i = 0; i < MANY; i++) made += kp_tl_init(&tls[i], &back, &as[i]);
    CHECK(made == MANY);
    /* every allocator works here and in another thread, at once */
    for (int i = 0; i < MANY; i++) mine[i] = kp_alloc(&as[i], 64, 8, NULL);
    Many m = {as, theirs};
    run_thread(use_many, &m);
    bool all = true;
    for (int i = 0; i < MANY; i++) all = all && mine[i] && theirs[i];
    CHECK(all);
    /* the host can still make pthread keys of its own */
    pthread_key_t k;
    CHECK(pthread_key_create(&k, NULL) == 0);
    pthread_key_delete(k);
    for (int i = 0; i < MANY; i++) {
        kp_free(&as[i], mine[i], 64, 8, NULL);
        kp_free(&as[i], theirs[i], 32, 8, NULL); /* freed after its thread exited */
    }
    for (int i = 0; i < MANY; i++) kp_tl_deinit(&tls[i]);
    CHECK_NO_LEAK(&back);
    /* allocators made after others were deinitialized reuse their places */
    for (int round = 0; round < 3; round++) {
        KpThreadLocal tl;
        KpAllocator a;
        CHECK(kp_tl_init(&tl, &back, &a));
        void *p = kp_alloc(&a, 16, 8, NULL);
        CHECK(p != NULL);
        kp_free(&a, p, 16, 8, NULL);
        kp_tl_deinit(&tl);
    }
    CHECK_NO_LEAK(&back);
    free(tls), free(as), free(mine), free(theirs);
}

int main(void) {
    RUN(test_tl_stress_cross_thread_frees_over_direct);
    RUN(test_tl_stress_over_page_allocator);
    RUN(test_tl_thread_exit_returns_empty_slabs);
    RUN(test_tl_blocks_outliving_their_thread_free_their_slabs);
    RUN(test_tl_remote_free_is_reused_by_owner);
    RUN(test_debug_under_threads_finds_no_errors);
    RUN(test_debug_over_thread_local_finds_no_errors);
    RUN(test_tl_thousands_of_allocators_leave_the_hosts_pthread_keys);
    return CHECK_DONE();
}
