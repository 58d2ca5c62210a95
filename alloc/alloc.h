/*
 * alloc.h — the one allocator interface of Keep.
 *
 * Design (after Zig's std.mem.Allocator): an allocator is a small struct
 * holding a vtable and a context pointer.  Every byte the interpreter uses —
 * tokens, AST, bytecode, VM stack, script values — comes through
 * kp_alloc / kp_resize / kp_free on some KpAllocator; nothing outside
 * alloc/ calls malloc or free.
 *
 * Callers always pass the size (bytes) and alignment (bytes, a power of two)
 * of the block they free or resize, like Zig: allocators need no per-block
 * header to remember sizes, and the debug allocator checks that both match.
 * Every call also passes the caller's location (a script file:line when the
 * VM allocates on behalf of a script, or a C file:line), which the debug
 * allocator records; pass NULL when there is none.
 *
 * The generic wrappers below keep AllocStats for every allocator, so
 * stats(&a) works for all of them at the cost of a few adds per call.
 *
 * Thread-safety: a KpAllocator is not thread-safe unless its own file says
 * so.  Those that are (page, debug, thread-local) set KP_ALLOC_THREADSAFE,
 * which makes the wrappers update `stats` with atomic adds; every other
 * allocator keeps the plain, non-atomic fast path.
 */
#ifndef KP_ALLOC_H
#define KP_ALLOC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <pthread.h>

/* A source location: file name (borrowed, must outlive the allocation
 * record; script file names live as long as the VM), 1-based line/col. */
typedef struct KpSrcLoc {
    const char *file;
    uint32_t line;
    uint32_t col;
} KpSrcLoc;

/* Counters every allocator keeps (seed 001's AllocStats). Bytes are the
 * sizes callers asked for, not including allocator overhead. */
typedef struct KpAllocStats {
    int64_t live_bytes;   /* bytes currently allocated */
    int64_t live_count;   /* blocks currently allocated */
    int64_t peak_bytes;   /* high-water mark of live_bytes */
    int64_t total_allocs; /* successful alloc calls */
    int64_t total_frees;  /* free calls (including no-op frees) */
} KpAllocStats;

typedef struct KpAllocator KpAllocator;

/* The vtable. Implementations never update stats; the wrappers do. */
typedef struct KpAllocatorVT {
    /* Returns a block of `size` bytes aligned to `align`, or NULL when the
     * allocator is exhausted.  size > 0. */
    void *(*alloc)(void *ctx, size_t size, size_t align, const KpSrcLoc *loc);
    /* Tries to grow or shrink `ptr` (old_size bytes) in place to new_size.
     * Returns true on success; false means the caller must move the block.
     * May be NULL: then resizing in place always fails. */
    bool (*resize)(void *ctx, void *ptr, size_t old_size, size_t new_size,
                   size_t align, const KpSrcLoc *loc);
    /* Gives back a block obtained from alloc with exactly this size/align. */
    void (*free)(void *ctx, void *ptr, size_t size, size_t align,
                 const KpSrcLoc *loc);
    /* Releases everything the allocator holds (its own memory goes back to
     * its backing allocator).  May be NULL. */
    void (*deinit)(void *ctx);
} KpAllocatorVT;

/* Flags describing an allocator. */
enum {
    KP_ALLOC_FREE_IS_NOOP = 1u << 0, /* free does not reclaim (arena, fixed) */
    KP_ALLOC_WANTS_LOC = 1u << 1,    /* records caller locations (debug)    */
    KP_ALLOC_ZOMBIE = 1u << 8,       /* its owner was deinitialized while blocks
                                        were live: `on_empty` runs when the
                                        last one is freed (see vm/memory) */
    KP_ALLOC_THREADSAFE = 1u << 2,   /* callable from many threads at once;
                                        the wrappers update stats atomically */
};

/* A sink for reports: receives `len` bytes (not NUL-terminated). */
#ifndef KP_WRITEFN_DEFINED
#define KP_WRITEFN_DEFINED
typedef void (*KpWriteFn)(void *ud, const char *bytes, size_t len);
#endif

struct KpAllocator {
    const KpAllocatorVT *vt;
    void *ctx;              /* the implementation's state */
    const char *name;       /* for reports: "DirectAllocator", ... (static) */
    uint32_t flags;         /* KP_ALLOC_* */
    int64_t limit;          /* cap on live_bytes; <0 = none (see --mem-limit) */
    KpAllocStats stats;
    /* With KP_ALLOC_ZOMBIE: called by kp_free once live_count drops to 0.
     * Lets the VM release an allocator whose owner went first. */
    void (*on_empty)(KpAllocator *a);
};

/* Set on a thread that shares allocators that are not thread-safe with
 * other threads (a parallel worker of the VM: vm/parallel.c): each call of
 * kp_alloc, kp_free and kp_resize on an allocator without
 * KP_ALLOC_THREADSAFE holds this mutex (a recursive one: an allocator's
 * backing is called inside).  NULL (the default): no lock, the plain path. */
extern _Thread_local pthread_mutex_t *kp_alloc_serial;

/* Allocates `size` bytes (size may be 0: returns a unique non-NULL pointer
 * only if the backend does; callers in Keep never ask for 0).  Returns NULL
 * when exhausted or when the allocator's limit would be passed. */
void *kp_alloc(KpAllocator *a, size_t size, size_t align, const KpSrcLoc *loc);

/* Frees a block; ptr NULL is a no-op.  size/align must match the alloc. */
void kp_free(KpAllocator *a, void *ptr, size_t size, size_t align,
             const KpSrcLoc *loc);

/* Resizes in place; returns false (block untouched) when it cannot. */
bool kp_resize(KpAllocator *a, void *ptr, size_t old_size, size_t new_size,
               size_t align, const KpSrcLoc *loc);

/* Resizes, moving the block when it cannot grow in place (like realloc).
 * ptr may be NULL (old_size 0): then it is kp_alloc.  new_size 0 frees and
 * returns NULL.  Returns NULL on exhaustion, leaving the old block valid. */
void *kp_realloc(KpAllocator *a, void *ptr, size_t old_size, size_t new_size,
                 size_t align, const KpSrcLoc *loc);

/* True when free really returns memory (false for arena, fixed buffer). */
static inline bool kp_alloc_free_is_real(const KpAllocator *a) {
    return !(a->flags & KP_ALLOC_FREE_IS_NOOP);
}

/* Releases the allocator's own resources (calls vt->deinit). */
void kp_allocator_deinit(KpAllocator *a);

/* Alignment suitable for any scalar or pointer. */
#define KP_ALIGN_MAX 16

/* Writes one line `name: live N bytes in M blocks, peak P bytes, A allocs,
 * F frees` describing a->stats (seed 001's printAllocReport).  write NULL
 * means stderr. */
void kp_alloc_report(const KpAllocator *a, KpWriteFn write, void *ud);

/* A snapshot of a->stats (read atomically for KP_ALLOC_THREADSAFE ones). */
KpAllocStats kp_alloc_stats(const KpAllocator *a);

/* ---------------------------------------------------------------- page */

/* PageAllocator: whole pages from mmap/munmap (see page.c).  Thread-safe.
 * Its state is just the KpAllocator struct. */
void kp_page_init(KpAllocator *a);
/* PageAllocator with a cache of freed mappings (see page.c). */
#define KP_PAGE_CACHE_SPANS 16
#define KP_PAGE_CACHE_BYTES ((size_t)32 << 20)
typedef struct KpPageCache {
    void *span[KP_PAGE_CACHE_SPANS];
    size_t len[KP_PAGE_CACHE_SPANS];
    size_t bytes;
    size_t keep;  /* at most this many bytes kept (KP_PAGE_CACHE_BYTES; 0
                     under a memory limit: every free unmaps) */
    int n;
    bool lock;
} KpPageCache;
void kp_page_cache_init(KpPageCache *c, KpAllocator *a);
void kp_page_cache_deinit(KpPageCache *c);
/* The page size the page allocator rounds to. */
size_t kp_page_size(void);

/* ---------------------------------------------------------------- direct */

/* DirectAllocator: malloc/free.  Thread-safe as malloc is.  Its state is
 * just the KpAllocator struct; `a` is caller-owned storage. */
void kp_direct_init(KpAllocator *a);

/* ---------------------------------------------------------------- arena */

/* ArenaAllocator: bump allocation in growing chunks taken from `backing`.
 * Freeing the most recent allocation undoes it; other frees are no-ops.
 * kp_arena_deinit returns every chunk to the backing allocator. */
typedef struct KpArenaChunk KpArenaChunk;
typedef struct KpArena {
    KpAllocator *backing;
    KpArenaChunk *chunk;    /* current chunk (newest), linked to older ones */
    size_t next_chunk_size; /* bytes for the next chunk (grows x2)         */
} KpArena;

/* A saved position for kp_arena_rewind. */
typedef struct KpArenaMark {
    KpArenaChunk *chunk;
    size_t used;
} KpArenaMark;

/* Initializes `arena` (caller-owned) over `backing` and sets `out` to an
 * allocator view of it.  No memory is taken until the first alloc. */
void kp_arena_init(KpArena *arena, KpAllocator *backing, KpAllocator *out);
/* Bump-allocates directly (same as kp_alloc on the view, without stats). */
void *kp_arena_alloc(KpArena *arena, size_t size, size_t align);
/* Frees all chunks (reset with retain=false) or keeps the largest chunk and
 * empties it (retain=true). */
void kp_arena_reset(KpArena *arena, bool retain);
KpArenaMark kp_arena_mark(KpArena *arena);
/* Frees everything allocated after `mark`. */
void kp_arena_rewind(KpArena *arena, KpArenaMark mark);
void kp_arena_deinit(KpArena *arena);
/* Makes sure the next `n` bytes of allocation fit the newest chunk (one
 * chunk of at least n bytes is taken now); false when out of memory. */
bool kp_arena_reserve(KpArena *arena, size_t n);
/* True when p points into one of the arena's chunks. */
bool kp_arena_owns(const KpArena *arena, const void *p);
/* Moves every chunk of `from` into `into` (both over the same backing):
 * they are released with `into`; `from` is left empty and usable. */
void kp_arena_absorb(KpArena *into, KpArena *from);
/* Bytes of chunk capacity the arena holds (for tests and reports). */
size_t kp_arena_capacity(const KpArena *arena);

/* ---------------------------------------------------------------- fixed */

/* FixedBufferAllocator: bump allocation inside one caller-provided buffer
 * (see fixed.c).  Exhaustion returns NULL; freeing the most recent block
 * undoes it; other frees are no-ops. */
typedef struct KpFixed {
    unsigned char *buf;
    size_t len;
    size_t end; /* bytes used from buf */
} KpFixed;

/* Initializes `f` over buf[0..len) (caller-owned, must outlive `f`) and
 * sets `out` (may be NULL) to an allocator view of it. */
void kp_fixed_init(KpFixed *f, void *buf, size_t len, KpAllocator *out);
/* Forgets every allocation: the whole buffer is free again. */
void kp_fixed_reset(KpFixed *f);
/* True when ptr points into the buffer. */
bool kp_fixed_owns(const KpFixed *f, const void *ptr);

/* ---------------------------------------------------------------- counted */

/* A memory budget shared by counted allocators (see counted.c): `limit`
 * bytes at most (<0: none); `used` and `peak` are updated atomically. */
typedef struct KpAccount {
    int64_t limit;
    int64_t used;
    int64_t peak;
    int64_t refusals; /* allocations refused for the limit, so far */
} KpAccount;

/* CountedAllocator: forwards to `inner`, charging every block (rounded up
 * to `granule` bytes, 0 = 1) to `acct`; an allocation that would pass the
 * account's limit fails.  Thread-safe when inner is. */
typedef struct KpCounted {
    KpAllocator *inner;
    size_t granule;
    KpAccount *acct;
} KpCounted;

/* Initializes `c` (caller-owned, like inner and acct: all must outlive the
 * view) and sets `out` to the allocator view (named as inner). */
void kp_counted_init(KpCounted *c, KpAllocator *inner, size_t granule, KpAccount *acct, KpAllocator *out);

/* ------------------------------------------------------------- class cache */

/* ClassCache (see classes.c): free lists of blocks up to KP_CC_MAX bytes,
 * in 16-byte classes, in front of `inner`; at most KP_CC_KEEP bytes wait. */
#define KP_CC_MAX 512
#define KP_CC_CLASSES (KP_CC_MAX / 16)
#define KP_CC_KEEP ((size_t)64 << 20)
typedef struct KpClassCache {
    KpAllocator *inner;
    size_t cached; /* bytes on the lists */
    size_t keep;   /* at most this many bytes wait (KP_CC_KEEP; 0 under a
                      memory limit: every free is real) */
    void *free[KP_CC_CLASSES];
} KpClassCache;

void kp_class_cache_init(KpClassCache *c, KpAllocator *inner, const char *name, KpAllocator *out);
void kp_class_cache_deinit(KpClassCache *c);

/* ---------------------------------------------------------------- failing */

/* FailingAllocator, for tests of out-of-memory paths (see failing.c):
 * passes calls to `backing` but makes every alloc after the first
 * `fail_after` successful ones return NULL (fail_after < 0: never fails).
 * Growing resizes fail too once allocs have started failing. */
typedef struct KpFailing {
    KpAllocator *backing;
    int fail_after;   /* successes allowed before failing; <0 = unlimited */
    int allocs;       /* successful allocs so far */
    int failures;     /* allocs refused so far */
} KpFailing;

void kp_failing_init(KpFailing *f, KpAllocator *backing, int fail_after,
                     KpAllocator *out);

/* ---------------------------------------------------------------- debug */

/* DebugAllocator: checks every call against a backing allocator (see
 * debug.c for the full contract).  Thread-safe (one mutex). */
typedef struct KpDebugConfig {
    /* Bytes of canary before and after each block.  Default 16; 0 means
     * the default; rounded up to a multiple of 8. */
    size_t redzone;
    /* Freed blocks are poisoned and held back until their sizes sum past
     * this many bytes; then the oldest are checked and released.
     * Default 1 MiB (1 << 20).  0 means the default; use
     * KP_DEBUG_NO_QUARANTINE to release blocks at once. */
    size_t quarantine_bytes;
    /* Where reports go; NULL means stderr (ud unused then). */
    KpWriteFn write;
    void *ud;
} KpDebugConfig;

#define KP_DEBUG_NO_QUARANTINE ((size_t)1)

typedef struct KpDebugSlot KpDebugSlot; /* (pointer, block header) pair */
typedef struct KpDebug {
    KpAllocator *backing;  /* used only under `lock` */
    KpDebugConfig cfg;     /* with defaults filled in */
    pthread_mutex_t lock;
    KpDebugSlot *table;    /* live blocks: open addressing by user pointer */
    size_t table_cap;      /* slots, a power of two (0 before first use) */
    size_t live_count, live_bytes;
    KpDebugSlot *q_ring;   /* quarantine FIFO (ring buffer), oldest first */
    size_t q_cap, q_head, q_count, q_bytes;
    uint64_t errors;
    uint64_t leak_count, leak_bytes; /* found by the last deinit */
    bool deinited;
} KpDebug;

/* Initializes `d` over `backing`; cfg NULL means all defaults.  Sets
 * `out` (may be NULL) to an allocator view with KP_ALLOC_WANTS_LOC. */
void kp_debug_init(KpDebug *d, KpAllocator *backing, const KpDebugConfig *cfg,
                   KpAllocator *out);
/* Checks every live block's canaries and every quarantined block's poison,
 * prints the leak report, and returns all memory (leaked blocks too) to the
 * backing allocator.  Also reached through kp_allocator_deinit(out). */
void kp_debug_deinit(KpDebug *d);
/* Prints the leak report for the blocks live now (nothing when none). */
void kp_debug_leak_report(KpDebug *d);
/* Errors detected so far (overflows, double/invalid frees, mismatches,
 * writes after free). */
uint64_t kp_debug_error_count(const KpDebug *d);
/* Blocks / bytes live now (after deinit: what deinit found leaked). */
uint64_t kp_debug_leak_count(const KpDebug *d);
uint64_t kp_debug_leak_bytes(const KpDebug *d);

/* ---------------------------------------------------------- thread-local */

/* ThreadLocalAllocator: per-thread size-class caches over a shared backing
 * allocator (see threadlocal.c).  Thread-safe. */
typedef struct KpTlCache KpTlCache;
typedef struct KpThreadLocal {
    KpAllocator *backing;   /* used only under `lock` */
    pthread_mutex_t lock;
    uint32_t slot, gen;     /* its place in every thread's cache table
                               (threadlocal.c: one pthread key in all) */
    KpTlCache *caches;      /* every cache, live or orphaned (under lock) */
} KpThreadLocal;

/* Initializes `t` over `backing` and sets `out` to the allocator view
 * (flag KP_ALLOC_THREADSAFE).  Returns false if the process's one key
 * for every ThreadLocalAllocator cannot be made, or out of memory. */
bool kp_tl_init(KpThreadLocal *t, KpAllocator *backing, KpAllocator *out);
/* Returns every slab and cache to the backing allocator.  Call once, after
 * every other thread has stopped using the allocator. */
void kp_tl_deinit(KpThreadLocal *t);

#endif
