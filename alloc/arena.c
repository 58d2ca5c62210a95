/*
 * arena.c — ArenaAllocator: bump allocation in growing chunks.
 *
 * Features
 *   - O(1) allocation (a pointer bump), any alignment: the address is
 *     aligned, not the offset, so alignments above the chunk's own 16 work.
 *   - Freeing the most recent allocation undoes it (the bump pointer goes
 *     back to the block's start); any other free is a no-op.  The most
 *     recent block can also grow or shrink in place while its chunk has
 *     room; other blocks may only shrink (freeing nothing).
 *   - kp_arena_reset(retain=false) returns every chunk; retain=true keeps
 *     the largest chunk, empty, and returns the rest.
 *   - kp_arena_mark / kp_arena_rewind: rewinding returns the chunks taken
 *     after the mark and restores the bump pointer of the marked chunk.
 *     A mark is invalidated by a reset, or by rewinding to an older mark.
 *   - kp_arena_deinit (or kp_allocator_deinit on the view) returns every
 *     chunk to the backing allocator.
 *   - kp_arena_reserve makes room for n bytes of bumps in one chunk now
 *     (a caller that cannot handle a failed allocation later).
 *   - kp_arena_owns tells whether a pointer is inside one of the arena's
 *     chunks; kp_arena_absorb moves every chunk of one arena into another
 *     (a run's scratch arena kept because something lasting points in).
 *
 * Design: a singly linked list of chunks, newest first, each one block of
 * the backing allocator (16-aligned).  Chunk capacities double, the first
 * being 4 KiB including the header, up to 8 MiB, and stay there; a request
 * that does not fit the next chunk gets a chunk sized for it (rounded to
 * 4 KiB).
 * Allocation only ever bumps in the newest chunk; the tail of an older
 * chunk is not revisited.
 *
 * Stats: the view's stats count what callers asked for, like every
 * allocator; a reset or rewind does not change them (the arena cannot see
 * its views).  The backing allocator's stats show the chunks.
 *
 * Thread-safety: none.  Cost: a 32-byte header per chunk, up to
 * align - 1 bytes of padding per block, at most half of the last chunk
 * (and never more than 8 MiB) unused.
 */
#include "alloc.h"

#include <string.h>

struct KpArenaChunk {
    KpArenaChunk *prev;
    size_t size; /* usable bytes in data[] */
    size_t used;
    _Alignas(16) unsigned char data[];
};

#define FIRST_CHUNK (4096 - sizeof(KpArenaChunk))
/* Doubling stops here: past it each new chunk is 8 MiB (or exactly what
 * one request needs), so an arena's unused tail stays under 8 MiB however
 * large it grows (a compile of a 30 MB source once took chunks of 33, 66
 * and 133 MB for 120 MB of nodes). */
#define MAX_GROW ((size_t)8 << 20)

static KpArenaChunk *new_chunk(KpArena *ar, size_t need) {
    size_t size = ar->next_chunk_size;
    if (need > SIZE_MAX / 2 - sizeof(KpArenaChunk)) return NULL;
    if (size < need) size = (need + 4095) & ~(size_t)4095; /* sized for it, not doubled past it */
    KpArenaChunk *c =
        kp_alloc(ar->backing, sizeof(KpArenaChunk) + size, 16, NULL);
    if (!c) return NULL;
    c->prev = ar->chunk;
    c->size = size;
    c->used = 0;
    ar->chunk = c;
    size_t next = size <= MAX_GROW / 2 ? size * 2 : MAX_GROW;
    if (next > ar->next_chunk_size) ar->next_chunk_size = next;
    return c;
}

/* Bumps `size` bytes aligned to `align` in chunk c; NULL if it won't fit. */
static void *bump(KpArenaChunk *c, size_t size, size_t align) {
    uintptr_t base = (uintptr_t)c->data;
    uintptr_t cur = base + c->used;
    uintptr_t at = (cur + align - 1) & ~(uintptr_t)(align - 1);
    if (at < cur) return NULL;
    size_t off = (size_t)(at - base);
    if (off > c->size || size > c->size - off) return NULL;
    c->used = off + size;
    return c->data + off;
}

/* Bumps in the newest chunk, or starts a new chunk sized for the request. */
void *kp_arena_alloc(KpArena *ar, size_t size, size_t align) {
    if (align == 0) align = 1;
    if (ar->chunk) {
        void *p = bump(ar->chunk, size, align);
        if (p) return p;
    }
    if (size > SIZE_MAX / 4 || align > SIZE_MAX / 4) return NULL;
    /* data[] is 16-aligned: larger alignments may need align-16 padding */
    size_t pad = align > 16 ? align - 16 : 0;
    if (!new_chunk(ar, size + pad)) return NULL;
    return bump(ar->chunk, size, align);
}

static void *arena_alloc(void *ctx, size_t size, size_t align,
                         const KpSrcLoc *loc) {
    (void)loc;
    KpArena *ar = ctx;
    KpArenaChunk *c = ar->chunk;
    /* the common case inline: room in the newest chunk, an alignment of
     * at most data[]'s own 16 (so aligning the offset aligns the address) */
    if (c && align - 1 < 16) {
        size_t off = (c->used + (align - 1)) & ~(align - 1);
        if (off <= c->size && size <= c->size - off) {
            c->used = off + size;
            return c->data + off;
        }
    }
    return kp_arena_alloc(ar, size, align);
}

/* True when [ptr, ptr+size) is the most recent block of the newest chunk. */
static bool is_last(const KpArena *ar, const void *ptr, size_t size) {
    const KpArenaChunk *c = ar->chunk;
    if (!c) return false;
    uintptr_t p = (uintptr_t)ptr, base = (uintptr_t)c->data;
    return p >= base && p - base <= c->used && c->used - (p - base) == size;
}

static bool arena_resize(void *ctx, void *ptr, size_t old_size, size_t new_size,
                         size_t align, const KpSrcLoc *loc) {
    (void)align; (void)loc;
    KpArena *ar = ctx;
    if (!is_last(ar, ptr, old_size)) return new_size <= old_size;
    KpArenaChunk *c = ar->chunk;
    size_t start = c->used - old_size;
    if (new_size > c->size - start) return false;
    c->used = start + new_size;
    return true;
}

static void arena_free(void *ctx, void *ptr, size_t size, size_t align,
                       const KpSrcLoc *loc) {
    (void)align; (void)loc;
    KpArena *ar = ctx;
    if (is_last(ar, ptr, size)) ar->chunk->used -= size;
}

static void arena_deinit_vt(void *ctx) { kp_arena_deinit(ctx); }

static const KpAllocatorVT arena_vt = {arena_alloc, arena_resize, arena_free,
                                       arena_deinit_vt};

/* Empty arena over `backing`; `out` (optional) gets the allocator view. */
void kp_arena_init(KpArena *ar, KpAllocator *backing, KpAllocator *out) {
    ar->backing = backing;
    ar->chunk = NULL;
    ar->next_chunk_size = FIRST_CHUNK;
    if (out)
        *out = (KpAllocator){&arena_vt, ar, "ArenaAllocator",
                             KP_ALLOC_FREE_IS_NOOP, -1, {0}, NULL};
}

static void free_chunks(KpArena *ar, KpArenaChunk *until) {
    while (ar->chunk && ar->chunk != until) {
        KpArenaChunk *c = ar->chunk;
        ar->chunk = c->prev;
        kp_free(ar->backing, c, sizeof(KpArenaChunk) + c->size, 16, NULL);
    }
}

/* Empties the arena, keeping the largest chunk when `retain`. */
void kp_arena_reset(KpArena *ar, bool retain) {
    if (!retain || !ar->chunk) {
        free_chunks(ar, NULL);
        ar->next_chunk_size = FIRST_CHUNK;
        return;
    }
    KpArenaChunk *big = ar->chunk;
    for (KpArenaChunk *c = ar->chunk; c; c = c->prev)
        if (c->size > big->size) big = c;
    /* unlink the largest, free the rest, keep it alone and empty */
    KpArenaChunk **pp = &ar->chunk;
    while (*pp != big) pp = &(*pp)->prev;
    *pp = big->prev;
    free_chunks(ar, NULL);
    big->prev = NULL;
    big->used = 0;
    ar->chunk = big;
}

/* The current bump position (newest chunk and its fill). */
KpArenaMark kp_arena_mark(KpArena *ar) {
    return (KpArenaMark){ar->chunk, ar->chunk ? ar->chunk->used : 0};
}

/* Frees the chunks newer than the mark and restores its fill. */
void kp_arena_rewind(KpArena *ar, KpArenaMark m) {
    /* A mark whose chunk is gone (stale mark): keep memory safe by
     * emptying the arena rather than walking off the list. */
    bool found = m.chunk == NULL;
    for (KpArenaChunk *c = ar->chunk; c && !found; c = c->prev)
        found = c == m.chunk;
    free_chunks(ar, found ? m.chunk : NULL);
    if (ar->chunk && m.used < ar->chunk->used) ar->chunk->used = m.used;
}

/* Returns every chunk to the backing allocator; the arena stays usable. */
void kp_arena_deinit(KpArena *ar) {
    free_chunks(ar, NULL);
    ar->next_chunk_size = FIRST_CHUNK;
}

/* Makes sure the newest chunk has `n` free bytes (a new chunk of at least
 * n bytes otherwise), so that the next n bytes of bumps cannot fail. */
bool kp_arena_reserve(KpArena *ar, size_t n) {
    if (ar->chunk && ar->chunk->size - ar->chunk->used >= n) return true;
    if (n > SIZE_MAX / 4) return false;
    return new_chunk(ar, n) != NULL;
}

/* Is p inside one of the arena's chunks? */
bool kp_arena_owns(const KpArena *ar, const void *p) {
    uintptr_t x = (uintptr_t)p;
    for (const KpArenaChunk *c = ar->chunk; c; c = c->prev)
        if (x >= (uintptr_t)c->data && x < (uintptr_t)c->data + c->size) return true;
    return false;
}

/* Moves every chunk of `from` into `into` (same backing allocator): they
 * are freed with `into`; allocation goes on in from's newest chunk. */
void kp_arena_absorb(KpArena *into, KpArena *from) {
    if (!from->chunk) return;
    KpArenaChunk *oldest = from->chunk;
    while (oldest->prev) oldest = oldest->prev;
    oldest->prev = into->chunk;
    into->chunk = from->chunk;
    if (from->next_chunk_size > into->next_chunk_size) into->next_chunk_size = from->next_chunk_size;
    from->chunk = NULL;
    from->next_chunk_size = FIRST_CHUNK;
}

/* Sum of the usable bytes of all chunks held. */
size_t kp_arena_capacity(const KpArena *ar) {
    size_t n = 0;
    for (const KpArenaChunk *c = ar->chunk; c; c = c->prev) n += c->size;
    return n;
}
