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
 * so (the thread-local allocator is; its stats are updated atomically there).
 */
#ifndef KP_ALLOC_H
#define KP_ALLOC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

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
};

struct KpAllocator {
    const KpAllocatorVT *vt;
    void *ctx;              /* the implementation's state */
    const char *name;       /* for reports: "DirectAllocator", ... (static) */
    uint32_t flags;         /* KP_ALLOC_* */
    int64_t limit;          /* cap on live_bytes; <0 = none (see --mem-limit) */
    KpAllocStats stats;
};

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

#endif
