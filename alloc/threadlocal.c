/*
 * threadlocal.c — ThreadLocalAllocator: per-thread size-class caches.
 *
 * Features
 *   - Small blocks (size and alignment both at most 2048 bytes) come from
 *     the calling thread's own cache without any lock: eight size classes,
 *     16, 32, 64, ..., 2048 bytes (powers of two; a request takes the
 *     smallest class >= max(size, align, 16)), each a free list fed by
 *     bump allocation from 64 KiB slabs.  Every block of class c is
 *     aligned to c, so alignment comes free.
 *   - Larger requests go straight to the backing allocator, under the
 *     allocator's mutex.
 *   - A free from the owning thread pushes the block on that thread's free
 *     list.  A free from any other thread pushes it on the owner cache's
 *     remote-free list, a lock-free stack (C11 atomics, one CAS); the owner
 *     takes the whole stack with one atomic exchange at its next alloc
 *     (only when it is non-empty) and moves the blocks to its free lists.
 *   - Resize in place succeeds while the block stays in its size class (or
 *     when both sizes are large and the backing allocator can do it).
 *
 * What goes back to the backing allocator, and when
 *   - Large blocks: at their kp_free.
 *   - Slabs of a live thread: never while the thread lives (their blocks
 *     are recycled through its free lists).
 *   - When a thread exits (pthread key destructor), its cache is orphaned:
 *     blocks waiting on its remote list are taken back, its free lists are
 *     dropped, and every slab with no block in use goes back at once.  The
 *     other slabs go back when their last block is freed (by any thread,
 *     under the mutex).  The cache struct itself (~300 bytes) stays on the
 *     list and is reused by the next new thread once all its slabs are
 *     gone, so the number of cache structs is bounded by the peak number
 *     of threads that used the allocator at once.
 *   - kp_tl_deinit: everything (all slabs, even with blocks still in use,
 *     and all cache structs).
 *
 * Design.  A slab is a 64 KiB block of the backing allocator aligned to
 * 64 KiB; its first bytes are a header (owner cache, class, count of
 * blocks handed out), so the slab of any small block is found by masking
 * its address.  A thread finds its cache of an allocator in its own cache
 * table, indexed by the allocator's slot: ONE pthread key for the whole
 * process holds each thread's table, so any number of allocators coexist
 * without using up the host's keys (POSIX guarantees only 128).  Slots
 * are handed out by a process-wide registry (a mutex, the live allocator
 * of each slot and a generation); a deinitialized allocator's slot is
 * reused with the next generation, so a stale table entry (an allocator
 * deinitialized while the thread lives) is recognized by its generation
 * and never followed.  At thread exit the key's destructor orphans the
 * thread's cache of every allocator still alive — under the registry's
 * mutex, which kp_tl_deinit also takes before freeing, so an allocator
 * cannot go away under the exiting thread — and frees the table.  The
 * tables and the registry come from the C library (a few bytes per slot
 * per thread), not from a backing allocator: they belong to no single
 * allocator.  Per-slab counts are
 * changed only by the owner thread while it lives and only under the mutex
 * once it is orphaned.  Remote frees race with orphaning: a remote freer
 * pushes (seq_cst CAS), then re-reads the owner's `orphaned` flag
 * (seq_cst); the exiting owner sets the flag (seq_cst) and then drains the
 * stack (seq_cst exchange).  In the single total order either the drain
 * sees the push, or the freer sees the flag and drains the stack itself
 * under the mutex — no block is stranded.
 *
 * Stats: flagged KP_ALLOC_THREADSAFE, so the generic wrappers count with
 * atomic adds; the backing allocator's stats count slabs, caches and large
 * blocks (the backing is only ever called under the mutex, so it need not
 * be thread-safe).
 *
 * Thread-safety: fully thread-safe for alloc/free/resize.  kp_tl_init and
 * kp_tl_deinit are not: call deinit once every other thread has stopped
 * using the allocator (joined or quiescent).
 *
 * Cost: small alloc/free is a TLS lookup plus a few loads and stores, no
 * atomics on the owner path except one relaxed load of the remote stack;
 * a remote free is one CAS and one load.  Memory: up to 2x internal
 * fragmentation from power-of-two classes, a 64-byte slab header (1/32 of
 * a 2048-class slab), and the unused tails of each thread's current slabs.
 */
#include "alloc.h"

#include <stdatomic.h>
#include <string.h>

#define SLAB_SIZE ((size_t)64 * 1024)
#define NCLASS 8
#define MIN_CLASS 16
#define MAX_SMALL 2048

typedef struct Slab {
    struct Slab *next, *prev; /* in the owner cache's slab list */
    KpTlCache *owner;
    uint32_t cls;  /* class index */
    uint32_t live; /* blocks handed out and not yet freed back */
    unsigned char pad[32];
} Slab;

struct KpTlCache {
    KpThreadLocal *tl;
    KpTlCache *next;                  /* in tl->caches (under lock) */
    Slab *slabs;                      /* every slab of this cache */
    void *free[NCLASS];               /* owner-only free lists */
    unsigned char *bump[NCLASS];      /* owner-only bump region ... */
    unsigned char *end[NCLASS];       /* ... of the current slab per class */
    _Alignas(64) _Atomic(void *) remote; /* blocks freed by other threads */
    atomic_int orphaned;              /* owner thread has exited */
};

_Static_assert(sizeof(Slab) == 64, "slab header is one cache line");

static size_t class_size(unsigned c) { return (size_t)MIN_CLASS << c; }

/* The class for (size, align), or -1 for the large path. */
static int class_of(size_t size, size_t align) {
    size_t need = size > align ? size : align;
    if (need > MAX_SMALL) return -1;
    int c = 0;
    while (class_size((unsigned)c) < need) c++;
    return c;
}

static Slab *slab_of(void *p) {
    return (Slab *)((uintptr_t)p & ~(uintptr_t)(SLAB_SIZE - 1));
}

/* ------------------------------------------------------------ slabs */

static void slab_unlink(KpTlCache *c, Slab *s) {
    if (s->prev) s->prev->next = s->next;
    else c->slabs = s->next;
    if (s->next) s->next->prev = s->prev;
}

static void slab_release(KpThreadLocal *t, KpTlCache *c, Slab *s) {
    slab_unlink(c, s);
    kp_free(t->backing, s, SLAB_SIZE, SLAB_SIZE, NULL);
}

/* Gives the block back while its cache is orphaned (under the mutex). */
static void orphan_free(KpThreadLocal *t, KpTlCache *c, void *p) {
    Slab *s = slab_of(p);
    if (--s->live == 0) slab_release(t, c, s);
}

/* Takes the remote stack of an orphaned cache (under the mutex). */
static void drain_orphan(KpThreadLocal *t, KpTlCache *c) {
    void *p = atomic_exchange(&c->remote, NULL);
    while (p) {
        void *next = *(void **)p;
        orphan_free(t, c, p);
        p = next;
    }
}

/* ------------------------------------------------- the slot registry */

#include <stdlib.h>

typedef struct TlEntry {
    uint32_t gen;
    KpTlCache *cache;
} TlEntry;

typedef struct TlTable {
    uint32_t cap;
    uint32_t used; /* entries with a cache */
    TlEntry e[];
} TlTable;

static pthread_once_t reg_once = PTHREAD_ONCE_INIT;
static int reg_key_ok;
static pthread_key_t reg_key; /* this thread's TlTable */
static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static KpThreadLocal **reg_owner; /* the live allocator of each slot, or NULL */
static uint32_t *reg_gen;
static uint32_t reg_n, reg_cap;

static void cache_orphan(KpTlCache *c);

/* Key destructor: the thread exits with this table. */
static void table_exit(void *v) {
    TlTable *tb = v;
    pthread_mutex_lock(&reg_lock);
    for (uint32_t i = 0; i < tb->cap; i++)
        if (tb->e[i].cache && i < reg_n && reg_owner[i] && reg_gen[i] == tb->e[i].gen) cache_orphan(tb->e[i].cache);
    pthread_mutex_unlock(&reg_lock);
    free(tb);
}

static void reg_init(void) { reg_key_ok = pthread_key_create(&reg_key, table_exit) == 0; }

static bool reg_add(KpThreadLocal *t) {
    pthread_once(&reg_once, reg_init);
    if (!reg_key_ok) return false;
    pthread_mutex_lock(&reg_lock);
    uint32_t s = 0;
    while (s < reg_n && reg_owner[s]) s++; /* (a free slot; thousands at most) */
    if (s == reg_n) {
        if (reg_n == reg_cap) {
            uint32_t ncap = reg_cap ? reg_cap * 2 : 64;
            KpThreadLocal **no = realloc(reg_owner, sizeof *no * ncap);
            if (no) reg_owner = no;
            uint32_t *ng = no ? realloc(reg_gen, sizeof *ng * ncap) : NULL;
            if (ng) reg_gen = ng;
            if (!no || !ng) {
                pthread_mutex_unlock(&reg_lock);
                return false;
            }
            reg_cap = ncap;
        }
        reg_gen[reg_n++] = 0;
    }
    reg_owner[s] = t;
    t->slot = s;
    t->gen = ++reg_gen[s];
    pthread_mutex_unlock(&reg_lock);
    return true;
}

/* After this no exiting thread touches t's caches. */
static void reg_remove(KpThreadLocal *t) {
    pthread_mutex_lock(&reg_lock);
    reg_owner[t->slot] = NULL;
    pthread_mutex_unlock(&reg_lock);
}

/* This thread's cache of t, or NULL (none yet). */
static KpTlCache *lookup(KpThreadLocal *t) {
    TlTable *tb = pthread_getspecific(reg_key);
    if (!tb || t->slot >= tb->cap) return NULL;
    TlEntry *e = &tb->e[t->slot];
    return e->gen == t->gen ? e->cache : NULL;
}

/* Records c as this thread's cache of t (NULL: forgets it). */
static bool table_set(KpThreadLocal *t, KpTlCache *c) {
    TlTable *tb = pthread_getspecific(reg_key);
    if (!tb || t->slot >= tb->cap) {
        if (!c) return true;
        uint32_t ncap = tb ? tb->cap : 8;
        while (ncap <= t->slot) ncap *= 2;
        TlTable *nt = realloc(tb, sizeof *nt + sizeof(TlEntry) * ncap);
        if (!nt) return false;
        uint32_t from = tb ? nt->cap : 0;
        if (!tb) nt->used = 0;
        memset(&nt->e[from], 0, sizeof(TlEntry) * (ncap - from));
        nt->cap = ncap;
        tb = nt;
        if (pthread_setspecific(reg_key, tb) != 0) {
            free(tb);
            return false;
        }
    }
    TlEntry *e = &tb->e[t->slot];
    bool had = e->cache != NULL;
    if (c && !had) tb->used++;
    if (!c && had) tb->used--;
    e->gen = t->gen;
    e->cache = c;
    if (tb->used == 0) {
        /* (also stale entries of allocators gone: they are dropped too) */
        free(tb);
        pthread_setspecific(reg_key, NULL);
    }
    return true;
}

/* ------------------------------------------------------------ caches */

static void cache_reset(KpTlCache *c, KpThreadLocal *t) {
    c->tl = t;
    c->slabs = NULL;
    for (int i = 0; i < NCLASS; i++) c->free[i] = c->bump[i] = c->end[i] = NULL;
    atomic_store(&c->remote, NULL);
    atomic_store(&c->orphaned, 0);
}

/* The owner thread is exiting (table_exit, under reg_lock). */
static void cache_orphan(KpTlCache *c) {
    KpThreadLocal *t = c->tl;
    pthread_mutex_lock(&t->lock);
    atomic_store(&c->orphaned, 1);
    drain_orphan(t, c);
    for (int i = 0; i < NCLASS; i++) c->free[i] = c->bump[i] = c->end[i] = NULL;
    for (Slab *s = c->slabs, *next; s; s = next) {
        next = s->next;
        if (s->live == 0) slab_release(t, c, s);
    }
    pthread_mutex_unlock(&t->lock);
}

/* This thread's cache, created (or an empty orphan adopted) on first use;
 * NULL when the backing allocator is out of memory. */
static KpTlCache *my_cache(KpThreadLocal *t) {
    KpTlCache *c = lookup(t);
    if (c) return c;
    pthread_mutex_lock(&t->lock);
    for (c = t->caches; c; c = c->next)
        if (atomic_load(&c->orphaned) && !c->slabs) break;
    if (c) {
        cache_reset(c, t);
    } else {
        c = kp_alloc(t->backing, sizeof *c, _Alignof(KpTlCache), NULL);
        if (c) {
            cache_reset(c, t);
            c->next = t->caches;
            t->caches = c;
        }
    }
    pthread_mutex_unlock(&t->lock);
    if (c && !table_set(t, c)) {
        /* cannot register: leave it orphaned (and empty) for reuse */
        atomic_store(&c->orphaned, 1);
        return NULL;
    }
    return c;
}

/* Owner-only free: onto the free list. */
static void local_free(KpTlCache *c, void *p) {
    Slab *s = slab_of(p);
    *(void **)p = c->free[s->cls];
    c->free[s->cls] = p;
    s->live--;
}

static void drain_own(KpTlCache *c) {
    void *p = atomic_exchange_explicit(&c->remote, NULL, memory_order_acquire);
    while (p) {
        void *next = *(void **)p;
        local_free(c, p);
        p = next;
    }
}

/* A fresh slab for class `cls`, made the current bump region. */
static bool refill(KpThreadLocal *t, KpTlCache *c, unsigned cls) {
    pthread_mutex_lock(&t->lock);
    Slab *s = kp_alloc(t->backing, SLAB_SIZE, SLAB_SIZE, NULL);
    if (s) {
        s->owner = c;
        s->cls = cls;
        s->live = 0;
        s->prev = NULL;
        s->next = c->slabs;
        if (c->slabs) c->slabs->prev = s;
        c->slabs = s;
    }
    pthread_mutex_unlock(&t->lock);
    if (!s) return false;
    size_t cs = class_size(cls);
    size_t first = (sizeof(Slab) + cs - 1) & ~(cs - 1);
    c->bump[cls] = (unsigned char *)s + first;
    c->end[cls] = (unsigned char *)s + SLAB_SIZE;
    return true;
}

/* ------------------------------------------------------------ vtable */

static void *tl_alloc(void *ctx, size_t size, size_t align,
                      const KpSrcLoc *loc) {
    (void)loc;
    KpThreadLocal *t = ctx;
    int cls = class_of(size, align);
    if (cls < 0) {
        pthread_mutex_lock(&t->lock);
        void *p = kp_alloc(t->backing, size, align, NULL);
        pthread_mutex_unlock(&t->lock);
        return p;
    }
    KpTlCache *c = my_cache(t);
    if (!c) return NULL;
    if (atomic_load_explicit(&c->remote, memory_order_relaxed)) drain_own(c);
    void *p = c->free[cls];
    if (p) {
        c->free[cls] = *(void **)p;
    } else {
        size_t cs = class_size((unsigned)cls);
        if (c->bump[cls] == c->end[cls] && !refill(t, c, (unsigned)cls))
            return NULL;
        p = c->bump[cls];
        c->bump[cls] += cs;
    }
    slab_of(p)->live++;
    return p;
}

static void tl_free(void *ctx, void *ptr, size_t size, size_t align,
                    const KpSrcLoc *loc) {
    (void)loc;
    KpThreadLocal *t = ctx;
    if (class_of(size, align) < 0) {
        pthread_mutex_lock(&t->lock);
        kp_free(t->backing, ptr, size, align, NULL);
        pthread_mutex_unlock(&t->lock);
        return;
    }
    KpTlCache *owner = slab_of(ptr)->owner;
    if (owner == lookup(t)) {
        local_free(owner, ptr);
        return;
    }
    if (atomic_load(&owner->orphaned)) {
        pthread_mutex_lock(&t->lock);
        orphan_free(t, owner, ptr);
        pthread_mutex_unlock(&t->lock);
        return;
    }
    void *head = atomic_load_explicit(&owner->remote, memory_order_relaxed);
    do {
        *(void **)ptr = head;
    } while (!atomic_compare_exchange_weak(&owner->remote, &head, ptr));
    if (atomic_load(&owner->orphaned)) {
        /* the owner exited around our push: drain for it */
        pthread_mutex_lock(&t->lock);
        if (atomic_load(&owner->orphaned)) drain_orphan(t, owner);
        pthread_mutex_unlock(&t->lock);
    }
}

static bool tl_resize(void *ctx, void *ptr, size_t old_size, size_t new_size,
                      size_t align, const KpSrcLoc *loc) {
    (void)loc;
    KpThreadLocal *t = ctx;
    int co = class_of(old_size, align), cn = class_of(new_size, align);
    if (co >= 0 || cn >= 0) return co == cn;
    pthread_mutex_lock(&t->lock);
    bool ok = kp_resize(t->backing, ptr, old_size, new_size, align, NULL);
    pthread_mutex_unlock(&t->lock);
    return ok;
}

static void tl_deinit_vt(void *ctx) { kp_tl_deinit(ctx); }

static const KpAllocatorVT tl_vt = {tl_alloc, tl_resize, tl_free,
                                    tl_deinit_vt};

/* ------------------------------------------------------------ public */

/* Takes a slot of the registry (the process's one pthread key is made by
 * the first call) and creates the mutex. */
bool kp_tl_init(KpThreadLocal *t, KpAllocator *backing, KpAllocator *out) {
    t->backing = backing;
    t->caches = NULL;
    if (!reg_add(t)) return false;
    pthread_mutex_init(&t->lock, NULL);
    if (out)
        *out = (KpAllocator){&tl_vt, t, "ThreadLocalAllocator",
                             KP_ALLOC_THREADSAFE, -1, {0}, NULL};
    return true;
}

/* Returns all slabs and caches; gives back the slot; deletes the mutex. */
void kp_tl_deinit(KpThreadLocal *t) {
    reg_remove(t); /* exiting threads leave its caches alone from here */
    /* this thread's entry goes; other threads' stale entries are told
     * apart by the slot's generation */
    if (lookup(t)) table_set(t, NULL);
    pthread_mutex_lock(&t->lock);
    KpTlCache *c = t->caches;
    t->caches = NULL;
    while (c) {
        KpTlCache *next = c->next;
        while (c->slabs) slab_release(t, c, c->slabs);
        kp_free(t->backing, c, sizeof *c, _Alignof(KpTlCache), NULL);
        c = next;
    }
    pthread_mutex_unlock(&t->lock);
    pthread_mutex_destroy(&t->lock);
}
