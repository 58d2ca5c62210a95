/*
 * arena.c — ArenaAllocator: bump allocation in growing chunks.
 *
 * Features: O(1) allocation (a pointer bump); freeing the most recent
 * allocation undoes it, any other free is a no-op; reset (free all, or keep
 * the largest chunk); mark/rewind; deinit returns every chunk.
 * Design: a singly linked list of chunks, newest first, each taken from the
 * backing allocator; chunk sizes double (4 KiB first), and a request larger
 * than the next chunk gets a chunk of its own size.
 * Thread-safety: none.  Cost: a chunk header (24 bytes) per chunk.
 */
#include "alloc.h"

#include <string.h>

struct KpArenaChunk {
    KpArenaChunk *prev;
    size_t size; /* usable bytes in data[] */
    size_t used;
    _Alignas(16) unsigned char data[];
};

static KpArenaChunk *new_chunk(KpArena *ar, size_t need) {
    size_t size = ar->next_chunk_size;
    while (size < need) size *= 2;
    KpArenaChunk *c = kp_alloc(ar->backing, sizeof(KpArenaChunk) + size, 16, NULL);
    if (!c) return NULL;
    c->prev = ar->chunk;
    c->size = size;
    c->used = 0;
    ar->chunk = c;
    ar->next_chunk_size = size * 2;
    return c;
}

void *kp_arena_alloc(KpArena *ar, size_t size, size_t align) {
    if (align == 0) align = 1;
    KpArenaChunk *c = ar->chunk;
    if (c) {
        size_t off = (c->used + align - 1) & ~(align - 1);
        if (off + size <= c->size && off + size >= off) {
            c->used = off + size;
            return c->data + off;
        }
    }
    if (size > SIZE_MAX / 4) return NULL;
    c = new_chunk(ar, size + align);
    if (!c) return NULL;
    size_t off = (c->used + align - 1) & ~(align - 1);
    c->used = off + size;
    return c->data + off;
}

static void *arena_alloc(void *ctx, size_t size, size_t align,
                         const KpSrcLoc *loc) {
    (void)loc;
    return kp_arena_alloc(ctx, size, align);
}

static bool is_last(KpArena *ar, void *ptr, size_t size) {
    KpArenaChunk *c = ar->chunk;
    return c && (unsigned char *)ptr + size == c->data + c->used &&
           (unsigned char *)ptr >= c->data;
}

static bool arena_resize(void *ctx, void *ptr, size_t old_size, size_t new_size,
                         size_t align, const KpSrcLoc *loc) {
    (void)align; (void)loc;
    KpArena *ar = ctx;
    if (!is_last(ar, ptr, old_size)) return new_size <= old_size;
    KpArenaChunk *c = ar->chunk;
    size_t start = (size_t)((unsigned char *)ptr - c->data);
    if (start + new_size > c->size) return false;
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

void kp_arena_init(KpArena *ar, KpAllocator *backing, KpAllocator *out) {
    ar->backing = backing;
    ar->chunk = NULL;
    ar->next_chunk_size = 4096 - sizeof(KpArenaChunk);
    if (out)
        *out = (KpAllocator){&arena_vt, ar, "ArenaAllocator",
                             KP_ALLOC_FREE_IS_NOOP, -1, {0}};
}

static void free_chunks(KpArena *ar, KpArenaChunk *until) {
    while (ar->chunk && ar->chunk != until) {
        KpArenaChunk *c = ar->chunk;
        ar->chunk = c->prev;
        kp_free(ar->backing, c, sizeof(KpArenaChunk) + c->size, 16, NULL);
    }
}

void kp_arena_reset(KpArena *ar, bool retain) {
    if (!retain || !ar->chunk) {
        free_chunks(ar, NULL);
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

KpArenaMark kp_arena_mark(KpArena *ar) {
    return (KpArenaMark){ar->chunk, ar->chunk ? ar->chunk->used : 0};
}

void kp_arena_rewind(KpArena *ar, KpArenaMark m) {
    free_chunks(ar, m.chunk);
    if (ar->chunk) ar->chunk->used = m.used;
}

void kp_arena_deinit(KpArena *ar) { free_chunks(ar, NULL); }
