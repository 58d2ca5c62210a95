/*
 * memory.c — allocators and HeapAllocation in scripts.
 *
 * Design.  An allocator value (KpAllocObj) wraps one of the C allocators
 * of alloc/ and embeds the KpAllocator interface that the values it
 * allocates point at (KpObj.alloc), so every value goes back to the
 * allocator it came from.  Allocators are made from capabilities: page and
 * direct allocators from `&system.memory`, the others from a backing
 * allocator (borrowed) — the only roots of the right to allocate are
 * `system.memory` and the host's root allocator.
 *
 * A value may not outlive its allocator: the VM's side of allocator values
 * (their deinit, zombies, `using` over a script record) is vm/allocobj.c.
 *
 * The built-in functions here: init overloads selected by output type
 * (`a : ArenaAllocator = init(&page)`, `PageAllocator | init(&system.memory)`,
 * or the constructor form `ArenaAllocator(&page)`), alloc, dealloc, stats,
 * reset, and the seed's init(allocator, map literal).
 */
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "../stdlib/stdlib.h"
#include "../vm/binary.h"
#include "builtins.h"

/* ------------------------------------------------------------ helpers */

static KpAllocator *alloc_of(KpVM *vm, KpValue v, const char *fn) {
    KpValue x = kp_deref(v);
    if (x.tag == KP_T_ALLOCATOR) return &((KpAllocObj *)x.p)->a;
    if (x.tag == KP_T_SYSTEM && x.aux == 1) {
        kp_vm_error(vm, "%s: system.memory is the right to make allocators, not an allocator; make one with PageAllocator(&system.memory)", fn);
        return NULL;
    }
    kp_vm_error(vm, "%s needs an allocator, but the value is %s", fn, kp_value_type_name(vm, x));
    return NULL;
}

static KpValue *self_of(KpValue v) {
    KpValue x = kp_deref(v);
    return x.tag == KP_T_ALLOCATOR ? &((KpAllocObj *)x.p)->self : NULL;
}

static bool is_memory(KpVM *vm, KpValue v, const char *what) {
    KpValue x = kp_deref(v);
    if (x.tag == KP_T_SYSTEM && x.aux == 1) return true;
    return kp_vm_error(vm, "%s is made from &system.memory, not from %s", what, kp_value_type_name(vm, x));
}

static KpAllocObj *new_alloc_obj(KpVM *vm, int kind) {
    KpAllocObj *o = kp_obj_new(vm, vm->ctx, KP_T_ALLOCATOR, sizeof(KpAllocObj));
    if (!o) return NULL;
    o->kind = (uint8_t)kind;
    o->self = kp_ptr(KP_T_ALLOCATOR, o);
    const KpSrcLoc *l = NULL;
    if (vm->nframes) {
        KpFrame *f = &vm->frames[vm->nframes - 1];
        size_t off = (size_t)(f->pc - f->proto->code);
        if (off) off--;
        if (off < f->proto->ncode) {
            vm->loc.file = f->proto->src ? f->proto->src->name : NULL;
            vm->loc.line = f->proto->lines[off].line;
            l = &vm->loc;
        }
    }
    o->file = l ? l->file : NULL;
    o->line = l ? l->line : 0;
    return o;
}

static void set_backing_obj(KpAllocObj *o, KpValue b) {
    KpValue x = kp_deref(b);
    if (x.tag != KP_T_ALLOCATOR) return;
    o->backing_obj = x.p;
    o->backing_obj->h.lock++;
}

static bool finish(KpAllocObj *o, KpValue *out) {
    o->a.name = kp_alloc_kind_name(o->kind);
    o->a.limit = -1;
    *out = kp_ptr(KP_T_ALLOCATOR, o);
    return true;
}

/* ------------------------------------------------------------ init */

static bool init_page(KpVM *vm, KpValue *a, int n, KpValue *out) {
    (void)n;
    if (!is_memory(vm, a[0], "a PageAllocator")) return false;
    KpAllocObj *o = new_alloc_obj(vm, KP_AK_PAGE);
    if (!o) return false;
    /* counted against the VM's memory limit, by whole pages */
    kp_page_cache_init(&o->u.sys.pages, &o->u.sys.inner);
    if (vm->acct.limit > 0) o->u.sys.pages.keep = 0; /* (the limit counts all it holds) */
    kp_counted_init(&o->u.sys.counted, &o->u.sys.inner, kp_page_size(), &vm->acct, &o->a);
    return finish(o, out);
}

static bool init_direct(KpVM *vm, KpValue *a, int n, KpValue *out) {
    (void)n;
    if (!is_memory(vm, a[0], "a DirectAllocator")) return false;
    KpAllocObj *o = new_alloc_obj(vm, KP_AK_DIRECT);
    if (!o) return false;
    /* counted against the VM's memory limit */
    kp_direct_init(&o->u.sys.inner);
    kp_counted_init(&o->u.sys.counted, &o->u.sys.inner, 0, &vm->acct, &o->a);
    return finish(o, out);
}

static void debug_write(void *ud, const char *s, size_t len) {
    KpVM *vm = ud;
    vm->write_err(vm->write_ud, s, len);
}

static bool init_backed(KpVM *vm, KpValue *a, int kind, KpValue *out) {
    KpAllocator *b = alloc_of(vm, a[0], kp_alloc_kind_name(kind));
    if (!b) return false;
    KpAllocObj *o = new_alloc_obj(vm, kind);
    if (!o) return false;
    o->backing = b;
    set_backing_obj(o, a[0]);
    switch (kind) {
    case KP_AK_ARENA: kp_arena_init(&o->u.arena, b, &o->a); break;
    case KP_AK_DEBUG: {
        KpDebugConfig cfg = {0};
        cfg.write = debug_write;
        cfg.ud = vm;
        kp_debug_init(&o->u.debug, b, &cfg, &o->a);
        break;
    }
    case KP_AK_THREADLOCAL:
        if (!kp_tl_init(&o->u.tl, b, &o->a)) {
            if (o->backing_obj) o->backing_obj->h.lock--;
            kp_block_release(&o->h, NULL);
            kp_free(o->h.alloc, o, sizeof(KpAllocObj), 16, NULL);
            return kp_vm_error(vm, "cannot create a ThreadLocalAllocator (no thread key left)");
        }
        break;
    }
    return finish(o, out);
}
static bool init_arena(KpVM *vm, KpValue *a, int n, KpValue *out) { (void)n; return init_backed(vm, a, KP_AK_ARENA, out); }
static bool init_debug(KpVM *vm, KpValue *a, int n, KpValue *out) { (void)n; return init_backed(vm, a, KP_AK_DEBUG, out); }
static bool init_tl(KpVM *vm, KpValue *a, int n, KpValue *out) { (void)n; return init_backed(vm, a, KP_AK_THREADLOCAL, out); }

static bool init_fixed_size(KpVM *vm, KpValue *a, int n, KpValue *out) {
    (void)n;
    KpValue sz = kp_deref(a[0]);
    if (sz.tag != KP_T_INT || sz.i <= 0 || sz.i > ((int64_t)1 << 40))
        return kp_vm_error(vm, "a FixedBufferAllocator needs a positive size, not %s", kp_value_type_name(vm, sz));
    KpAllocator *b = alloc_of(vm, a[1], "FixedBufferAllocator");
    if (!b) return false;
    void *buf = kp_alloc(b, (size_t)sz.i, 16, kp_vm_loc(vm, b));
    if (!buf) return kp_oom_error(vm, b, (size_t)sz.i);
    KpAllocObj *o = new_alloc_obj(vm, KP_AK_FIXED);
    if (!o) {
        kp_free(b, buf, (size_t)sz.i, 16, NULL);
        return false;
    }
    o->backing = b;
    set_backing_obj(o, a[1]);
    o->own_buf = buf;
    o->own_len = (size_t)sz.i;
    kp_fixed_init(&o->u.fixed, buf, (size_t)sz.i, &o->a);
    return finish(o, out);
}

static bool init_fixed_buf(KpVM *vm, KpValue *a, int n, KpValue *out) {
    (void)n;
    KpValue h = kp_deref(a[0]);
    if (h.tag != KP_T_HEAP) return kp_vm_error(vm, "a FixedBufferAllocator is made from a HeapAllocation, not %s", kp_value_type_name(vm, h));
    if (a[0].tag != KP_T_REF) return kp_vm_error(vm, "pass the HeapAllocation by reference (&buf): the allocator borrows it");
    KpHeapAlloc *ha = h.p;
    if (!kp_heap_writable(vm, ha)) return false;
    KpAllocObj *o = new_alloc_obj(vm, KP_AK_FIXED);
    if (!o) return false;
    o->buf = ha;
    ha->h.lock++;
    kp_fixed_init(&o->u.fixed, ha->data, (size_t)ha->size, &o->a);
    return finish(o, out);
}

/* ------------------------------------------------------------ HeapAllocation */

static bool new_heap(KpVM *vm, KpAllocator *from, KpValue *self, int64_t size, KpValue *out) {
    if (size <= 0) return kp_vm_error(vm, "cannot allocate %lld bytes: the size must be positive", (long long)size);
    if (size > ((int64_t)1 << 40))
        return kp_vm_error(vm, "cannot allocate %lld bytes: more than the largest allocation (2^40 bytes)", (long long)size);
    KpHeapAlloc *h = kp_obj_new(vm, vm->ctx, KP_T_HEAP, sizeof(KpHeapAlloc));
    if (!h) return false;
    h->data = kp_alloc(from, (size_t)size, 16, kp_vm_loc(vm, from));
    if (!h->data) {
        kp_block_release(&h->h, NULL);
        kp_free(h->h.alloc, h, sizeof(KpHeapAlloc), 16, NULL);
        return kp_oom_error(vm, from, (size_t)size);
    }
    memset(h->data, 0, (size_t)size);
    h->size = size;
    h->from = from;
    h->from_self = self;
    *out = kp_ptr(KP_T_HEAP, h);
    return true;
}

static bool init_heap(KpVM *vm, KpValue *a, int n, KpValue *out) {
    (void)n;
    KpValue sz = kp_deref(a[0]);
    if (sz.tag != KP_T_INT) return kp_vm_error(vm, "HeapAllocation size must be an Int");
    KpAllocator *from = alloc_of(vm, a[1], "init");
    if (!from) return false;
    return new_heap(vm, from, self_of(a[1]), sz.i, out);
}

static bool b_alloc(KpVM *vm, KpValue *a, int n, KpValue *out) {
    (void)n;
    KpAllocator *from = alloc_of(vm, a[0], "alloc");
    if (!from) return false;
    KpValue sz = kp_deref(a[1]);
    if (sz.tag != KP_T_INT) return kp_vm_error(vm, "alloc: the size must be an Int, not %s", kp_value_type_name(vm, sz));
    return new_heap(vm, from, self_of(a[0]), sz.i, out);
}

static bool b_dealloc(KpVM *vm, KpValue *a, int n, KpValue *out) {
    (void)n;
    KpAllocator *from = alloc_of(vm, a[0], "dealloc");
    if (!from) return false;
    KpValue h = a[1];
    if (h.tag != KP_T_HEAP) return kp_vm_error(vm, "dealloc needs a HeapAllocation, not %s", kp_value_type_name(vm, h));
    KpHeapAlloc *ha = h.p;
    if (ha->from != from)
        return kp_vm_error(vm, "dealloc: this HeapAllocation came from %s, not from this %s", ha->from->name, from->name);
    *out = kp_unit();
    return true; /* the VM drops the argument after the call: that frees it */
}

/* dealloc(h): gives h back to the allocator it came from. */
static bool b_dealloc1(KpVM *vm, KpValue *a, int n, KpValue *out) {
    (void)n;
    if (a[0].tag != KP_T_HEAP) return kp_vm_error(vm, "dealloc needs a HeapAllocation, not %s", kp_value_type_name(vm, a[0]));
    *out = kp_unit();
    return true; /* dropped after the call */
}

static bool b_stats(KpVM *vm, KpValue *a, int n, KpValue *out) {
    (void)n;
    KpAllocator *al;
    KpValue x = kp_deref(a[0]);
    if (x.tag == KP_T_SYSTEM && x.aux == 1) al = vm->heap; /* the root */
    else if (!(al = alloc_of(vm, a[0], "stats"))) return false;
    KpAllocStats s = al->stats;
    KpRecord *r = kp_record_new(vm, vm->t_allocstats);
    if (!r) return false;
    r->f[0] = kp_int(s.live_bytes);
    r->f[1] = kp_int(s.live_count);
    r->f[2] = kp_int(s.peak_bytes);
    r->f[3] = kp_int(s.total_allocs);
    r->f[4] = kp_int(s.total_frees);
    *out = kp_ptr(KP_T_RECORD, r);
    return true;
}

static bool b_reset(KpVM *vm, KpValue *a, int n, KpValue *out) {
    (void)n;
    KpValue x = kp_deref(a[0]);
    if (x.tag != KP_T_ALLOCATOR || (((KpAllocObj *)x.p)->kind != KP_AK_ARENA && ((KpAllocObj *)x.p)->kind != KP_AK_FIXED))
        return kp_vm_error(vm, "reset works on an ArenaAllocator or a FixedBufferAllocator, not %s", kp_value_type_name(vm, x));
    KpAllocObj *o = x.p;
    if (!kp_pin_check_reset(vm, &o->a)) return false;
    if (o->a.stats.live_count > 0)
        return kp_vm_error(vm, "reset of %s while %lld value%s it allocated %s alive", kp_a(kp_alloc_kind_name(o->kind)),
                           (long long)o->a.stats.live_count, o->a.stats.live_count == 1 ? "" : "s",
                           o->a.stats.live_count == 1 ? "is" : "are");
    if (o->kind == KP_AK_ARENA) kp_arena_reset(&o->u.arena, true);
    else kp_fixed_reset(&o->u.fixed);
    *out = kp_unit();
    return true;
}

/* init(allocator, map): the seed's `HashMap#(String, Int32) = init(a, ("a" = 1))`:
 * a copy of the map made in that allocator. */
static bool init_map(KpVM *vm, KpValue *a, int n, KpValue *out) {
    (void)n;
    KpAllocator *al = alloc_of(vm, a[0], "init");
    if (!al) return false;
    KpValue m = kp_deref(a[1]);
    if (m.tag != KP_T_MAP) return kp_vm_error(vm, "init(allocator, map) needs a map, not %s", kp_value_type_name(vm, m));
    KpAllocator *save = vm->ctx;
    vm->ctx = al;
    bool ok = kp_clone(vm, m, out);
    vm->ctx = save;
    return ok;
}

/* init(&allocator) where a List#(T) or a HashMap#(K, V) is expected: an
 * empty container whose storage (the list's element array, the map's
 * entries and index) comes from that allocator as it grows.  The elements
 * themselves are made where they are made (the context allocator). */
static bool init_empty(KpVM *vm, KpValue *a, KpValue *out, bool map) {
    KpAllocator *al = alloc_of(vm, a[0], "init");
    if (!al) return false;
    KpAllocator *save = vm->ctx;
    vm->ctx = al;
    void *o = map ? (void *)kp_map_new(vm) : (void *)kp_list_new(vm, 0);
    vm->ctx = save;
    if (!o) return false;
    *out = kp_ptr(map ? KP_T_MAP : KP_T_LIST, o);
    return true;
}
static bool init_list(KpVM *vm, KpValue *a, int n, KpValue *out) { (void)n; return init_empty(vm, a, out, false); }
static bool init_hashmap(KpVM *vm, KpValue *a, int n, KpValue *out) { (void)n; return init_empty(vm, a, out, true); }

/* ------------------------------------------------------------ registration */

const KpBuiltin kp_builtins_memory[] = {
    {"init", init_page, "_: &System.Memory", "PageAllocator", KP_BF_CTOR},
    {"init", init_direct, "_: &System.Memory", "DirectAllocator", KP_BF_CTOR},
    {"init", init_arena, "backing: &Allocator", "ArenaAllocator", KP_BF_CTOR},
    {"init", init_debug, "backing: &Allocator", "DebugAllocator", KP_BF_CTOR},
    {"init", init_tl, "backing: &Allocator", "ThreadLocalAllocator", KP_BF_CTOR},
    {"init", init_fixed_size, "size: Int, backing: &Allocator", "FixedBufferAllocator", KP_BF_CTOR},
    {"init", init_fixed_buf, "buffer: &HeapAllocation", "FixedBufferAllocator", KP_BF_CTOR},
    {"init", init_heap, "size: Int, from: &Allocator", "HeapAllocation", KP_BF_CTOR},
    {"init", init_map, "from: &Allocator, m: &HashMap#(K, V)", "HashMap#(K, V)", KP_BF_CTOR},
    {"init", init_list, "from: &Allocator", "List#(T)", KP_BF_BY_RESULT | KP_BF_BORROWS | KP_BF_CTOR},
    {"init", init_hashmap, "from: &Allocator", "HashMap#(K, V)", KP_BF_BY_RESULT | KP_BF_BORROWS | KP_BF_CTOR},
    {"alloc", b_alloc, "from: &Allocator, size: Int", "HeapAllocation", 0},
    {"dealloc", b_dealloc, "from: &Allocator, h: HeapAllocation", "()", 0},
    {"dealloc", b_dealloc1, "h: HeapAllocation", "()", 0},
    {"stats", b_stats, "a: &Allocator|System.Memory", "AllocStats", 0},
    {"reset", b_reset, "a: $&ArenaAllocator|FixedBufferAllocator", "()", 0},
    {NULL, NULL, NULL, NULL, 0},
};
