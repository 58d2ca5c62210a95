/*
 * debug.c — DebugAllocator: a checking layer over any backing allocator.
 *
 * Features
 *   - Redzones: every block has canary bytes (0xFD) before and after it
 *     (cfg.redzone each, default 16).  They are checked when the block is
 *     freed or resized and, for blocks still live, at deinit.  A write past
 *     the end is reported as "buffer overflow", before the start as
 *     "buffer underflow", with where the block was allocated and where the
 *     damage was found.  The canaries are then repaired so one bug gives
 *     one report.
 *   - New blocks are filled with 0xAA, so reads of uninitialized memory
 *     show a recognizable pattern.
 *   - Quarantine: a freed block is poisoned (every byte 0xDD) and held in
 *     a FIFO quarantine until the bytes it holds (block + header +
 *     redzones) pass cfg.quarantine_bytes (default 1 MiB); then the oldest
 *     blocks leave it, their poison and canaries are verified, and they go
 *     back to the backing allocator.  A write after free is thus reported
 *     when the block leaves the quarantine, or at deinit, with the block's
 *     allocation and free locations.  A block larger than the budget
 *     leaves at once (still verified, but a later write goes unseen).
 *   - Double free (the block is still in the quarantine), invalid free (a
 *     pointer this allocator does not know: never allocated here, an
 *     interior pointer, or freed long ago), size mismatch and alignment
 *     mismatch (the caller's size/align differ from the allocation's) are
 *     reported with both locations.  Resize gets the same checks.
 *     Nothing of this ever crashes or touches memory it does not own: the
 *     pointer is looked up in the live set (or the quarantine index)
 *     before its header is read, so a bad pointer is never dereferenced,
 *     and the tests' deliberate corruptions stay inside memory the debug
 *     allocator owns (redzones, quarantined blocks), so ASan stays quiet.
 *     After an invalid or double free nothing is freed; after a mismatch
 *     the block is freed with its true size.
 *   - Leak report (kp_debug_leak_report, and at deinit): live blocks
 *     grouped by allocation location (file and line; all unknown locations
 *     form one group), largest group first (ties: more allocations first,
 *     then by file and line), one line each,
 *         leak: 48 bytes in 3 allocations from f.kp:12
 *     ("1 byte", "1 allocation" in the singular; a location without a file
 *     prints as <unknown>), then
 *         SUMMARY: KeepDebugAllocator: 48 byte(s) leaked in 3 allocation(s).
 *     With no leaks the report prints nothing at all.
 *   - Counts for exit codes: kp_debug_error_count, kp_debug_leak_count,
 *     kp_debug_leak_bytes.
 *
 * Report format: every error is one headline
 *     DebugAllocator: <kind>: <details>
 * followed by indented lines "  allocated at L", "  freed at L" /
 * "  first freed at L", "  freed again at L", "  detected at ...".  A
 * location prints as file:line, or file:line:col when col is nonzero.
 *
 * Design.  Block layout inside one backing allocation (aligned to
 * max(align, 16)):
 *     [header | front redzone (>= redzone bytes, padded for alignment)
 *      | user block (size) | back redzone (redzone bytes)]
 * The header holds size, align, both locations, a magic (live / freed)
 * and a checksum of its fields; a header that fails either check is
 * reported as corrupted and its block is leaked rather than trusted.
 * Live blocks are indexed by user pointer in an open-addressing hash set
 * (linear probing, backward-shift deletion) kept outside the blocks; the
 * quarantine is a ring buffer of (pointer, header) pairs, also outside the
 * blocks.  Both tables come from the backing allocator and grow by
 * doubling; when they cannot grow, alloc returns NULL and free skips the
 * quarantine (the block is verified and released at once).  Resize
 * shrinks in place (the freed tail becomes back redzone); it never grows
 * in place, so a growing kp_realloc always moves the block and the stale
 * copy goes to the quarantine, where late writes through old pointers
 * are caught.
 *
 * Stats: the generic wrappers count what callers pass; after a double or
 * invalid free they have counted a free that did not happen.  The debug
 * allocator's own live_count/live_bytes (kp_debug_leak_count/bytes) are
 * exact.
 *
 * Thread-safety: safe — one mutex around every call (the backing
 * allocator is only used under it, so it need not be thread-safe itself);
 * flagged KP_ALLOC_THREADSAFE.  The report callback runs under the mutex
 * and must not call back into this allocator.
 *
 * Cost: per block, a 96-byte header plus two redzones and alignment
 * padding, a fill of the block at alloc and free, a hash-set insert and
 * delete, and the quarantine holding up to quarantine_bytes of freed
 * memory.  Leak report: O(n log n) in live blocks.
 */
#include "alloc.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CANARY 0xFD
#define FRESH 0xAA
#define POISON 0xDD
#define MAGIC_LIVE 0x4b50444247414c4cULL  /* "KPDBGALL" */
#define MAGIC_FREED 0x4b50444247465245ULL /* "KPDBGFRE" */
#define DEFAULT_REDZONE 16
#define DEFAULT_QUARANTINE ((size_t)1 << 20)

typedef struct Block {
    uint64_t magic;
    uint64_t check; /* checksum of the fields below up to the locations */
    unsigned char *user;
    size_t size;     /* current user size */
    size_t align;    /* caller's alignment */
    size_t off;      /* user - raw */
    size_t raw_size; /* bytes taken from backing */
    size_t raw_align;
    KpSrcLoc alloc_loc;
    KpSrcLoc free_loc;
} Block;

struct KpDebugSlot {
    void *key;    /* user pointer; NULL = empty slot */
    Block *blk;
    size_t bytes; /* live set: user size; quarantine: raw size (kept here
                     too, so a smashed header cannot skew the counts) */
};

/* ------------------------------------------------------------ helpers */

static uint64_t mix(uint64_t h, uint64_t v) {
    h ^= v + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2);
    return h;
}

static uint64_t checksum(const Block *b) {
    uint64_t h = b->magic;
    h = mix(h, (uint64_t)(uintptr_t)b->user);
    h = mix(h, b->size);
    h = mix(h, b->align);
    h = mix(h, b->off);
    h = mix(h, b->raw_size);
    h = mix(h, b->raw_align);
    return h;
}

static void seal(Block *b) { b->check = checksum(b); }

static bool intact(const Block *b, uint64_t magic) {
    return b->magic == magic && b->check == checksum(b);
}

static unsigned char *raw_of(const Block *b) { return (unsigned char *)b; }

static void write_stderr(void *ud, const char *bytes, size_t len) {
    (void)ud;
    fwrite(bytes, 1, len, stderr);
}

static void emit(KpDebug *d, const char *fmt, ...) {
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    if ((size_t)n >= sizeof buf) n = (int)sizeof buf - 1;
    d->cfg.write(d->cfg.ud, buf, (size_t)n);
}

/* Formats a location as file:line[:col] or <unknown>. */
static const char *loc_str(char *buf, size_t cap, const KpSrcLoc *l) {
    if (!l || !l->file) return "<unknown>";
    if (l->col)
        snprintf(buf, cap, "%s:%" PRIu32 ":%" PRIu32, l->file, l->line, l->col);
    else
        snprintf(buf, cap, "%s:%" PRIu32, l->file, l->line);
    return buf;
}

static KpSrcLoc loc_copy(const KpSrcLoc *l) {
    return l ? *l : (KpSrcLoc){NULL, 0, 0};
}

static size_t count_not(const unsigned char *p, size_t n, unsigned char v) {
    size_t bad = 0;
    for (size_t i = 0; i < n; i++) bad += p[i] != v;
    return bad;
}

static size_t front_len(const Block *b) { return b->off - sizeof(Block); }
static unsigned char *front(const Block *b) { return raw_of(b) + sizeof(Block); }
static unsigned char *back(const Block *b) { return b->user + b->size; }
static size_t back_len(const Block *b) {
    return b->raw_size - b->off - b->size;
}

/* ------------------------------------------------------------ live set */

static size_t hash_ptr(const void *p, size_t cap) {
    uint64_t h = (uint64_t)(uintptr_t)p;
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    return (size_t)h & (cap - 1);
}

static KpDebugSlot *table_find(KpDebug *d, const void *p) {
    if (!d->table_cap || !p) return NULL;
    size_t mask = d->table_cap - 1;
    for (size_t i = hash_ptr(p, d->table_cap);; i = (i + 1) & mask) {
        KpDebugSlot *s = &d->table[i];
        if (!s->key) return NULL;
        if (s->key == p) return s;
    }
}

static void table_put(KpDebugSlot *t, size_t cap, KpDebugSlot s) {
    size_t mask = cap - 1;
    size_t i = hash_ptr(s.key, cap);
    while (t[i].key) i = (i + 1) & mask;
    t[i] = s;
}

/* Makes room for one more live block (load kept at most 1/2). */
static bool table_reserve(KpDebug *d) {
    if ((d->live_count + 1) * 2 <= d->table_cap) return true;
    size_t cap = d->table_cap ? d->table_cap * 2 : 64;
    if (cap > SIZE_MAX / sizeof(KpDebugSlot)) return false;
    KpDebugSlot *t = kp_alloc(d->backing, cap * sizeof *t, _Alignof(KpDebugSlot),
                              NULL);
    if (!t) return false;
    memset(t, 0, cap * sizeof *t);
    for (size_t i = 0; i < d->table_cap; i++)
        if (d->table[i].key) table_put(t, cap, d->table[i]);
    if (d->table)
        kp_free(d->backing, d->table, d->table_cap * sizeof *t,
                _Alignof(KpDebugSlot), NULL);
    d->table = t;
    d->table_cap = cap;
    return true;
}

/* Removes slot s (backward-shift deletion keeps probe chains whole). */
static void table_remove(KpDebug *d, KpDebugSlot *s) {
    size_t mask = d->table_cap - 1;
    size_t i = (size_t)(s - d->table);
    size_t j = i;
    for (;;) {
        j = (j + 1) & mask;
        if (!d->table[j].key) break;
        size_t home = hash_ptr(d->table[j].key, d->table_cap);
        /* move j back to i unless its home lies cyclically in (i, j] */
        bool stays = (i <= j) ? (i < home && home <= j) : (i < home || home <= j);
        if (stays) continue;
        d->table[i] = d->table[j];
        i = j;
    }
    d->table[i] = (KpDebugSlot){NULL, NULL, 0};
}

/* ------------------------------------------------------------ checks */

/* Checks both redzones of a live block, reports damage, repairs it.
 * `where` completes "detected ...". */
static void check_redzones(KpDebug *d, Block *b, const char *where,
                           const KpSrcLoc *at) {
    char l1[512], l2[512];
    size_t under = count_not(front(b), front_len(b), CANARY);
    size_t over = count_not(back(b), back_len(b), CANARY);
    if (under) {
        d->errors++;
        emit(d,
             "DebugAllocator: buffer underflow: %zu byte(s) before the start "
             "of a %zu-byte block were overwritten\n"
             "  allocated at %s\n  detected %s%s\n",
             under, b->size, loc_str(l1, sizeof l1, &b->alloc_loc), where,
             at ? loc_str(l2, sizeof l2, at) : "");
        memset(front(b), CANARY, front_len(b));
    }
    if (over) {
        d->errors++;
        emit(d,
             "DebugAllocator: buffer overflow: %zu byte(s) past the end "
             "of a %zu-byte block were overwritten\n"
             "  allocated at %s\n  detected %s%s\n",
             over, b->size, loc_str(l1, sizeof l1, &b->alloc_loc), where,
             at ? loc_str(l2, sizeof l2, at) : "");
        memset(back(b), CANARY, back_len(b));
    }
}

static void report_corrupt_header(KpDebug *d, const void *p, const char *where,
                                  const KpSrcLoc *at) {
    char l[512];
    d->errors++;
    emit(d,
         "DebugAllocator: corrupted block header at %p (written far before "
         "the block); the block is leaked\n  detected %s%s\n",
         p, where, at ? loc_str(l, sizeof l, at) : "");
}

/* Verifies a quarantined block and gives it back to the backing. */
static void release_freed(KpDebug *d, KpDebugSlot q, const char *where) {
    Block *b = q.blk;
    if (!intact(b, MAGIC_FREED)) {
        report_corrupt_header(d, q.key, where, NULL);
        return;
    }
    size_t changed = count_not(front(b), front_len(b), CANARY) +
                     count_not(b->user, b->size, POISON) +
                     count_not(back(b), back_len(b), CANARY);
    if (changed) {
        char l1[512], l2[512];
        d->errors++;
        emit(d,
             "DebugAllocator: write after free: %zu byte(s) of a %zu-byte "
             "block (or its redzones) changed after it was freed\n"
             "  allocated at %s\n  freed at %s\n  detected %s\n",
             changed, b->size, loc_str(l1, sizeof l1, &b->alloc_loc),
             loc_str(l2, sizeof l2, &b->free_loc), where);
    }
    kp_free(d->backing, raw_of(b), b->raw_size, b->raw_align, NULL);
}

/* ------------------------------------------------------------ quarantine */

static KpDebugSlot *q_at(KpDebug *d, size_t i) {
    return &d->q_ring[(d->q_head + i) & (d->q_cap - 1)];
}

static KpDebugSlot q_pop(KpDebug *d) {
    KpDebugSlot s = *q_at(d, 0);
    d->q_head = (d->q_head + 1) & (d->q_cap - 1);
    d->q_count--;
    d->q_bytes -= s.bytes;
    return s;
}

static bool q_reserve(KpDebug *d) {
    if (d->q_count < d->q_cap) return true;
    size_t cap = d->q_cap ? d->q_cap * 2 : 64;
    if (cap > SIZE_MAX / sizeof(KpDebugSlot)) return false;
    KpDebugSlot *r = kp_alloc(d->backing, cap * sizeof *r,
                              _Alignof(KpDebugSlot), NULL);
    if (!r) return false;
    for (size_t i = 0; i < d->q_count; i++) r[i] = *q_at(d, i);
    if (d->q_ring)
        kp_free(d->backing, d->q_ring, d->q_cap * sizeof *r,
                _Alignof(KpDebugSlot), NULL);
    d->q_ring = r;
    d->q_cap = cap;
    d->q_head = 0;
    return true;
}

/* The quarantined slot for p, or NULL (linear: only on the error path). */
static KpDebugSlot *q_find(KpDebug *d, const void *p) {
    for (size_t i = d->q_count; i-- > 0;)
        if (q_at(d, i)->key == p) return q_at(d, i);
    return NULL;
}

/* Poisons a block that was just unlinked from the live set and puts it
 * in the quarantine (or releases it when there is no room). */
static void quarantine(KpDebug *d, Block *b) {
    memset(b->user, POISON, b->size);
    KpDebugSlot s = {b->user, b, b->raw_size};
    if (!q_reserve(d)) {
        release_freed(d, s, "when the block was released");
        return;
    }
    *q_at(d, d->q_count) = s;
    d->q_count++;
    d->q_bytes += b->raw_size;
    while (d->q_count && d->q_bytes > d->cfg.quarantine_bytes)
        release_freed(d, q_pop(d), "when the block left the quarantine");
}

/* ------------------------------------------------------------ bad calls */

/* Reports a free/resize of a pointer that is not live.  `verb` is "free"
 * or "resize". */
static void report_not_live(KpDebug *d, const void *p, const char *verb,
                            const KpSrcLoc *at) {
    char l1[512], l2[512], l3[512];
    d->errors++;
    KpDebugSlot *q = q_find(d, p);
    if (q && intact(q->blk, MAGIC_FREED)) {
        Block *b = q->blk;
        if (verb[0] == 'f')
            emit(d,
                 "DebugAllocator: double free of a %zu-byte block\n"
                 "  allocated at %s\n  first freed at %s\n  freed again at %s\n",
                 b->size, loc_str(l1, sizeof l1, &b->alloc_loc),
                 loc_str(l2, sizeof l2, &b->free_loc),
                 loc_str(l3, sizeof l3, at));
        else
            emit(d,
                 "DebugAllocator: resize after free of a %zu-byte block\n"
                 "  allocated at %s\n  freed at %s\n  resized at %s\n",
                 b->size, loc_str(l1, sizeof l1, &b->alloc_loc),
                 loc_str(l2, sizeof l2, &b->free_loc),
                 loc_str(l3, sizeof l3, at));
        return;
    }
    emit(d,
         "DebugAllocator: invalid %s of %p: not a block of this allocator "
         "(or one freed long ago)\n  %s at %s\n",
         verb, p, verb[0] == 'f' ? "freed" : "resized",
         loc_str(l3, sizeof l3, at));
}

/* Reports size/alignment mismatches; returns true when there were any. */
static bool check_call(KpDebug *d, Block *b, size_t size, size_t align,
                       const char *verb, const KpSrcLoc *at) {
    char l1[512], l2[512];
    bool bad = false;
    if (size != b->size) {
        d->errors++;
        bad = true;
        emit(d,
             "DebugAllocator: size mismatch: %s a %zu-byte block as %zu "
             "bytes\n  allocated at %s\n  %s at %s\n",
             verb[0] == 'f' ? "freeing" : "resizing", b->size, size,
             loc_str(l1, sizeof l1, &b->alloc_loc),
             verb[0] == 'f' ? "freed" : "resized", loc_str(l2, sizeof l2, at));
    }
    if (align != b->align) {
        d->errors++;
        bad = true;
        emit(d,
             "DebugAllocator: alignment mismatch: %s a block aligned to %zu "
             "as aligned to %zu\n  allocated at %s\n  %s at %s\n",
             verb[0] == 'f' ? "freeing" : "resizing", b->align, align,
             loc_str(l1, sizeof l1, &b->alloc_loc),
             verb[0] == 'f' ? "freed" : "resized", loc_str(l2, sizeof l2, at));
    }
    return bad;
}

/* ------------------------------------------------------------ vtable */

static void *debug_alloc(void *ctx, size_t size, size_t align,
                         const KpSrcLoc *loc) {
    KpDebug *d = ctx;
    if (align == 0) align = 1;
    if (align & (align - 1)) return NULL;
    size_t ralign = align < 16 ? 16 : align;
    size_t rz = d->cfg.redzone;
    size_t head = sizeof(Block) + rz;
    if (head > SIZE_MAX - ralign) return NULL;
    size_t off = (head + ralign - 1) & ~(ralign - 1);
    if (size > SIZE_MAX - off - rz) return NULL;
    size_t raw_size = off + size + rz;

    pthread_mutex_lock(&d->lock);
    void *p = NULL;
    if (d->deinited || !table_reserve(d)) goto out;
    unsigned char *raw = kp_alloc(d->backing, raw_size, ralign, loc);
    if (!raw) goto out;
    Block *b = (Block *)raw;
    b->magic = MAGIC_LIVE;
    b->user = raw + off;
    b->size = size;
    b->align = align;
    b->off = off;
    b->raw_size = raw_size;
    b->raw_align = ralign;
    b->alloc_loc = loc_copy(loc);
    b->free_loc = (KpSrcLoc){NULL, 0, 0};
    seal(b);
    memset(front(b), CANARY, front_len(b));
    memset(b->user, FRESH, size);
    memset(back(b), CANARY, back_len(b));
    table_put(d->table, d->table_cap, (KpDebugSlot){b->user, b, size});
    d->live_count++;
    d->live_bytes += size;
    p = b->user;
out:
    pthread_mutex_unlock(&d->lock);
    return p;
}

static void debug_free(void *ctx, void *ptr, size_t size, size_t align,
                       const KpSrcLoc *loc) {
    KpDebug *d = ctx;
    if (align == 0) align = 1;
    pthread_mutex_lock(&d->lock);
    KpDebugSlot *s = table_find(d, ptr);
    if (!s) {
        report_not_live(d, ptr, "free", loc);
        goto out;
    }
    Block *b = s->blk;
    d->live_count--;
    d->live_bytes -= s->bytes;
    table_remove(d, s);
    if (!intact(b, MAGIC_LIVE)) {
        /* cannot trust the header's sizes: leave the block alone */
        report_corrupt_header(d, ptr, "at free from ", loc);
        goto out;
    }
    check_call(d, b, size, align, "free", loc);
    check_redzones(d, b, "at free from ", loc);
    b->magic = MAGIC_FREED;
    b->free_loc = loc_copy(loc);
    seal(b);
    quarantine(d, b);
out:
    pthread_mutex_unlock(&d->lock);
}

static bool debug_resize(void *ctx, void *ptr, size_t old_size,
                         size_t new_size, size_t align, const KpSrcLoc *loc) {
    KpDebug *d = ctx;
    if (align == 0) align = 1;
    bool ok = false;
    pthread_mutex_lock(&d->lock);
    KpDebugSlot *s = table_find(d, ptr);
    if (!s) {
        report_not_live(d, ptr, "resize", loc);
        goto out;
    }
    Block *b = s->blk;
    if (!intact(b, MAGIC_LIVE)) {
        report_corrupt_header(d, ptr, "at resize from ", loc);
        goto out;
    }
    if (check_call(d, b, old_size, align, "resize", loc)) goto out;
    check_redzones(d, b, "at resize from ", loc);
    if (new_size > b->size) goto out; /* never grows in place: see Design */
    /* the released tail becomes part of the back redzone */
    memset(b->user + new_size, CANARY, b->size - new_size);
    d->live_bytes -= b->size - new_size;
    s->bytes = new_size;
    b->size = new_size;
    seal(b);
    ok = true;
out:
    pthread_mutex_unlock(&d->lock);
    return ok;
}

static void debug_deinit_vt(void *ctx) { kp_debug_deinit(ctx); }

static const KpAllocatorVT debug_vt = {debug_alloc, debug_resize, debug_free,
                                       debug_deinit_vt};

/* ------------------------------------------------------------ public */

/* Fills in config defaults; tables are taken lazily from `backing`. */
void kp_debug_init(KpDebug *d, KpAllocator *backing, const KpDebugConfig *cfg,
                   KpAllocator *out) {
    memset(d, 0, sizeof *d);
    d->backing = backing;
    if (cfg) d->cfg = *cfg;
    if (!d->cfg.redzone) d->cfg.redzone = DEFAULT_REDZONE;
    d->cfg.redzone = (d->cfg.redzone + 7) & ~(size_t)7;
    if (!d->cfg.quarantine_bytes) d->cfg.quarantine_bytes = DEFAULT_QUARANTINE;
    if (!d->cfg.write) {
        d->cfg.write = write_stderr;
        d->cfg.ud = NULL;
    }
    pthread_mutex_init(&d->lock, NULL);
    if (out)
        *out = (KpAllocator){&debug_vt, d, "DebugAllocator",
                             KP_ALLOC_WANTS_LOC | KP_ALLOC_THREADSAFE, -1, {0}, NULL};
}

typedef struct Group {
    const char *file; /* NULL: unknown */
    uint32_t line;
    size_t bytes, count;
} Group;

static int cmp_file(const char *a, const char *b) {
    if (!a || !b) return (a != NULL) - (b != NULL);
    return strcmp(a, b);
}

static int by_loc(const void *x, const void *y) {
    const Group *a = x, *b = y;
    int c = cmp_file(a->file, b->file);
    if (c) return c;
    if (!a->file) return 0;
    return (a->line > b->line) - (a->line < b->line);
}

static int by_size(const void *x, const void *y) {
    const Group *a = x, *b = y;
    if (a->bytes != b->bytes) return a->bytes < b->bytes ? 1 : -1;
    if (a->count != b->count) return a->count < b->count ? 1 : -1;
    return by_loc(x, y);
}

static void leak_line(KpDebug *d, const Group *g) {
    char l[512];
    KpSrcLoc loc = {g->file, g->line, 0};
    emit(d, "leak: %zu byte%s in %zu allocation%s from %s\n", g->bytes,
         g->bytes == 1 ? "" : "s", g->count, g->count == 1 ? "" : "s",
         loc_str(l, sizeof l, &loc));
}

/* The leak report, under the lock. */
static void leak_report_locked(KpDebug *d) {
    size_t n = d->live_count;
    if (n == 0) return;
    size_t bytes = 0;
    Group *g = NULL;
    if (n <= SIZE_MAX / sizeof(Group))
        g = kp_alloc(d->backing, n * sizeof(Group), _Alignof(Group), NULL);
    size_t k = 0;
    for (size_t i = 0; i < d->table_cap; i++) {
        if (!d->table[i].key) continue;
        Block *b = d->table[i].blk;
        Group one = {NULL, 0, d->table[i].bytes, 1};
        if (intact(b, MAGIC_LIVE)) {
            one.file = b->alloc_loc.file;
            one.line = b->alloc_loc.file ? b->alloc_loc.line : 0;
        }
        bytes += one.bytes;
        if (g)
            g[k++] = one;
        else
            leak_line(d, &one); /* out of memory: one line per block */
    }
    if (g) {
        qsort(g, k, sizeof *g, by_loc);
        size_t m = 0;
        for (size_t i = 0; i < k; i++) {
            if (m && by_loc(&g[m - 1], &g[i]) == 0) {
                g[m - 1].bytes += g[i].bytes;
                g[m - 1].count += g[i].count;
            } else {
                g[m++] = g[i];
            }
        }
        qsort(g, m, sizeof *g, by_size);
        for (size_t i = 0; i < m; i++) leak_line(d, &g[i]);
        kp_free(d->backing, g, n * sizeof(Group), _Alignof(Group), NULL);
    }
    emit(d, "SUMMARY: KeepDebugAllocator: %zu byte(s) leaked in %zu "
            "allocation(s).\n", bytes, n);
}

/* Prints the grouped leak report for the blocks live now. */
void kp_debug_leak_report(KpDebug *d) {
    pthread_mutex_lock(&d->lock);
    leak_report_locked(d);
    pthread_mutex_unlock(&d->lock);
}

/* Final checks and report, then returns all memory; idempotent. */
void kp_debug_deinit(KpDebug *d) {
    pthread_mutex_lock(&d->lock);
    if (d->deinited) {
        pthread_mutex_unlock(&d->lock);
        return;
    }
    d->deinited = true;
    for (size_t i = 0; i < d->table_cap; i++) {
        Block *b = d->table[i].blk;
        if (d->table[i].key && intact(b, MAGIC_LIVE))
            check_redzones(d, b, "at deinit", NULL);
    }
    d->leak_count = d->live_count;
    d->leak_bytes = d->live_bytes;
    leak_report_locked(d);
    while (d->q_count) release_freed(d, q_pop(d), "at deinit");
    for (size_t i = 0; i < d->table_cap; i++) {
        Block *b = d->table[i].blk;
        if (d->table[i].key && intact(b, MAGIC_LIVE))
            kp_free(d->backing, raw_of(b), b->raw_size, b->raw_align, NULL);
    }
    if (d->table)
        kp_free(d->backing, d->table, d->table_cap * sizeof(KpDebugSlot),
                _Alignof(KpDebugSlot), NULL);
    if (d->q_ring)
        kp_free(d->backing, d->q_ring, d->q_cap * sizeof(KpDebugSlot),
                _Alignof(KpDebugSlot), NULL);
    d->table = d->q_ring = NULL;
    d->table_cap = d->q_cap = d->q_head = 0;
    d->live_count = d->live_bytes = 0;
    pthread_mutex_unlock(&d->lock);
    pthread_mutex_destroy(&d->lock);
}

/* Errors reported so far. */
uint64_t kp_debug_error_count(const KpDebug *d) {
    return __atomic_load_n(&d->errors, __ATOMIC_RELAXED);
}

/* Live blocks now, or the count deinit found leaked. */
uint64_t kp_debug_leak_count(const KpDebug *d) {
    return d->deinited ? d->leak_count
                       : __atomic_load_n(&d->live_count, __ATOMIC_RELAXED);
}

/* Live bytes now, or the bytes deinit found leaked. */
uint64_t kp_debug_leak_bytes(const KpDebug *d) {
    return d->deinited ? d->leak_bytes
                       : __atomic_load_n(&d->live_bytes, __ATOMIC_RELAXED);
}
