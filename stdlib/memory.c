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
 * A value may not outlive its allocator.  The allocator's own statistics
 * count its live blocks; deinitializing an allocator that still has live
 * blocks is a runtime error naming the allocator, and the allocator becomes
 * a zombie (KP_ALLOC_ZOMBIE): it stays valid until its last block is
 * freed, then releases itself.  So a free never reaches a dead allocator.
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
#include "../vm/vm.h"

static const char *const kind_names[KP_AK__COUNT] = {
    "Allocator", "PageAllocator", "ArenaAllocator", "FixedBufferAllocator",
    "DebugAllocator", "ThreadLocalAllocator", "DirectAllocator",
};

const char *kp_alloc_kind_name(int kind) {
    return kind >= 0 && kind < KP_AK__COUNT ? kind_names[kind] : "Allocator";
}

/* ------------------------------------------------------------ lifetime */

static void destroy(KpAllocObj *o);

static bool dead_and_free(KpAllocObj *o) {
    return (o->h.flags & KP_OF_ORPHAN) && o->h.lock == 0 && o->a.stats.live_count == 0;
}

/* One fewer allocator depends on `o`: an orphaned backing may go now. */
static void unlock_backing(KpAllocObj *o) {
    if (!o) return;
    o->h.lock--;
    if (dead_and_free(o)) destroy(o);
}

static void destroy(KpAllocObj *o) {
    KpAllocObj *backing_obj = o->backing_obj;
    switch (o->kind) {
    case KP_AK_ARENA: kp_arena_deinit(&o->u.arena); break;
    case KP_AK_DEBUG: kp_debug_deinit(&o->u.debug); break;
    case KP_AK_THREADLOCAL: kp_tl_deinit(&o->u.tl); break;
    case KP_AK_FIXED:
        if (o->buf) {
            KpHeapAlloc *h = o->buf;
            h->h.lock--;
            kp_heap_unborrow(kp_tls_vm, h); /* its owner went first: free it now */
        }
        if (o->own_buf) kp_free(o->backing, o->own_buf, o->own_len, 16, NULL);
        break;
    default: break;
    }
    KpAllocator *from = o->h.alloc;
    kp_block_release(&o->h, kind_names[o->kind]);
    kp_free(from, o, sizeof(KpAllocObj), 16, NULL);
    unlock_backing(backing_obj);
}

static void zombie_empty(KpAllocator *a) {
    KpAllocObj *o = (KpAllocObj *)((char *)a - offsetof(KpAllocObj, a));
    if (o->h.lock == 0) destroy(o);
}

static void report_stats(KpVM *vm, KpAllocObj *o) {
    char buf[256];
    KpAllocStats s = o->a.stats;
    snprintf(buf, sizeof buf, "stats: %s (%s:%u): peak %lld bytes, %lld allocs, %lld frees\n", kind_names[o->kind],
             o->file ? o->file : "?", o->line, (long long)s.peak_bytes, (long long)s.total_allocs,
             (long long)s.total_frees);
    vm->write_err(vm->write_ud, buf, strlen(buf));
}

bool kp_alloc_obj_drop(KpVM *vm, KpAllocObj *o) {
    if (vm->stats_report) report_stats(vm, o);
    if (vm->ctx == &o->a) vm->ctx = vm->heap; /* defensive: never keep a dead context */
    if (o->h.lock > 0) {
        /* allocators made from this one still live: keep it valid for them */
        o->h.flags |= KP_OF_ORPHAN;
        o->a.flags |= KP_ALLOC_ZOMBIE;
        o->a.on_empty = zombie_empty;
        return kp_vm_error(vm,
                           "%s (made at %s:%u) was deinitialized while %u allocator%s made from it %s still alive; "
                           "deinitialize them first (an allocator may not outlive its backing allocator)",
                           kind_names[o->kind], o->file ? o->file : "?", o->line, (unsigned)o->h.lock,
                           o->h.lock == 1 ? "" : "s", o->h.lock == 1 ? "is" : "are");
    }
    if (o->a.stats.live_count > 0) {
        o->h.flags |= KP_OF_ORPHAN;
        o->a.flags |= KP_ALLOC_ZOMBIE;
        o->a.on_empty = zombie_empty;
        if (o->kind == KP_AK_DEBUG) {
            /* a debug allocator reports what outlived it, grouped by the
             * script line that allocated it, and stays valid for them */
            kp_debug_leak_report(&o->u.debug);
            return true;
        }
        return kp_vm_error(vm,
                           "%s (made at %s:%u) was deinitialized while %lld value%s it allocated (%lld bytes) %s still alive; "
                           "deinitialize them first (a value may not outlive its allocator)",
                           kind_names[o->kind], o->file ? o->file : "?", o->line, (long long)o->a.stats.live_count,
                           o->a.stats.live_count == 1 ? "" : "s", (long long)o->a.stats.live_bytes,
                           o->a.stats.live_count == 1 ? "is" : "are");
    }
    destroy(o);
    return true;
}

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
    o->a.name = kind_names[o->kind];
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
    kp_page_init(&o->a);
    return finish(o, out);
}

static bool init_direct(KpVM *vm, KpValue *a, int n, KpValue *out) {
    (void)n;
    if (!is_memory(vm, a[0], "a DirectAllocator")) return false;
    KpAllocObj *o = new_alloc_obj(vm, KP_AK_DIRECT);
    if (!o) return false;
    kp_direct_init(&o->a);
    return finish(o, out);
}

static void debug_write(void *ud, const char *s, size_t len) {
    KpVM *vm = ud;
    vm->write_err(vm->write_ud, s, len);
}

static bool init_backed(KpVM *vm, KpValue *a, int kind, KpValue *out) {
    KpAllocator *b = alloc_of(vm, a[0], kind_names[kind]);
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
    if (size <= 0 || size > ((int64_t)1 << 40)) return kp_vm_error(vm, "cannot allocate %lld bytes: the size must be positive", (long long)size);
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
        return kp_vm_error(vm, "reset of %s while %lld value%s it allocated %s alive", kp_a(kind_names[o->kind]),
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

/* ------------------------------------------------------------ registration */

static KpOverload *reg(KpVM *vm, const char *name, KpNativeFn fn, KpType *ret, int n, const uint8_t *modes,
                       KpType *const *types) {
    KpOverload *ov = kp_func_add_native(vm, name, fn, n, modes, 0, 0);
    if (!ov) return NULL;
    ov->ret = ret;
    for (int i = 0; i < n; i++) {
        ov->params[i].type = types[i];
        ov->params[i].fast_tag = 255;
    }
    return ov;
}

void kp_memory_register(KpVM *vm) {
    const uint8_t R1[] = {KP_PM_REF}, VR[] = {KP_PM_VALUE, KP_PM_REF}, RV[] = {KP_PM_REF, KP_PM_VALUE},
                  RR[] = {KP_PM_REF, KP_PM_REF}, M1[] = {KP_PM_MUTREF};
    KpType *any = vm->t_akind[KP_AK_ANY];
    KpType *mem[] = {vm->t_sysmem}, *al[] = {any}, *sz_al[] = {vm->t_int, any}, *al_sz[] = {any, vm->t_int},
           *al_h[] = {any, vm->t_heap}, *buf[] = {vm->t_heap}, *al_map[] = {any, vm->t_map};
    reg(vm, "init", init_page, vm->t_akind[KP_AK_PAGE], 1, R1, mem);
    reg(vm, "init", init_direct, vm->t_akind[KP_AK_DIRECT], 1, R1, mem);
    reg(vm, "init", init_arena, vm->t_akind[KP_AK_ARENA], 1, R1, al);
    reg(vm, "init", init_debug, vm->t_akind[KP_AK_DEBUG], 1, R1, al);
    reg(vm, "init", init_tl, vm->t_akind[KP_AK_THREADLOCAL], 1, R1, al);
    reg(vm, "init", init_fixed_size, vm->t_akind[KP_AK_FIXED], 2, VR, sz_al);
    reg(vm, "init", init_fixed_buf, vm->t_akind[KP_AK_FIXED], 1, R1, buf);
    reg(vm, "init", init_heap, vm->t_heap, 2, VR, sz_al);
    reg(vm, "init", init_map, vm->t_map, 2, RR, al_map);
    reg(vm, "alloc", b_alloc, vm->t_heap, 2, (const uint8_t[]){KP_PM_REF, KP_PM_VALUE}, al_sz);
    reg(vm, "dealloc", b_dealloc, vm->t_unit, 2, RV, al_h);
    reg(vm, "dealloc", b_dealloc1, vm->t_unit, 1, (const uint8_t[]){KP_PM_VALUE}, buf);
    reg(vm, "stats", b_stats, vm->t_allocstats, 1, R1, (KpType *const[]){NULL});
    reg(vm, "reset", b_reset, vm->t_unit, 1, M1, (KpType *const[]){NULL});
}

/* ------------------------------------------------------------ user allocators */

/*
 * A record value whose type has `alloc (_, size: Int) -> HeapAllocation` and
 * `dealloc (_, h: HeapAllocation) -> ()` overloads satisfies Allocator and
 * can be used in `using`.  The VM then wraps it in a KpAllocator whose
 * alloc calls the script's `alloc` (with the enclosing context allocator,
 * so the script's own allocations do not recurse) and places its object
 * in the HeapAllocation's bytes; free finds that HeapAllocation again and
 * hands it to the script's `dealloc`.  The record is locked while the
 * wrapper lives, so it cannot be deinitialized under its values.
 */
typedef struct KpScriptAlloc {
    KpAllocator a;
    KpVM *vm;
    KpRecord *rec;
    KpAllocator *parent;   /* the context allocator around the using block */
    KpFunc *alloc_fn, *dealloc_fn;
    KpHeapAlloc **keys;    /* open addressing by data pointer */
    uint32_t cap, count;
    bool ended;            /* the using block is over */
} KpScriptAlloc;

static uint32_t ptr_hash(const void *p) { return (uint32_t)(((uintptr_t)p >> 4) * 2654435761u); }

static bool table_put(KpScriptAlloc *w, KpHeapAlloc *h) {
    KpVM *vm = w->vm;
    if ((w->count + 1) * 2 > w->cap) {
        uint32_t ncap = w->cap ? w->cap * 2 : 16;
        KpHeapAlloc **n = kp_alloc(vm->host, sizeof(void *) * ncap, 8, NULL);
        if (!n) return false;
        memset(n, 0, sizeof(void *) * ncap);
        for (uint32_t i = 0; i < w->cap; i++) {
            KpHeapAlloc *x = w->keys[i];
            if (!x || x == (KpHeapAlloc *)1) continue;
            uint32_t j = ptr_hash(x->data) & (ncap - 1);
            while (n[j]) j = (j + 1) & (ncap - 1);
            n[j] = x;
        }
        if (w->keys) kp_free(vm->host, w->keys, sizeof(void *) * w->cap, 8, NULL);
        w->keys = n;
        w->cap = ncap;
    }
    uint32_t j = ptr_hash(h->data) & (w->cap - 1);
    while (w->keys[j] && w->keys[j] != (KpHeapAlloc *)1) j = (j + 1) & (w->cap - 1);
    w->keys[j] = h;
    w->count++;
    return true;
}

static KpHeapAlloc *table_take(KpScriptAlloc *w, const void *data) {
    if (!w->cap) return NULL;
    uint32_t j = ptr_hash(data) & (w->cap - 1);
    for (uint32_t n = 0; n < w->cap && w->keys[j]; n++, j = (j + 1) & (w->cap - 1)) {
        KpHeapAlloc *x = w->keys[j];
        if (x != (KpHeapAlloc *)1 && x->data == data) {
            w->keys[j] = (KpHeapAlloc *)1; /* tombstone */
            w->count--;
            return x;
        }
    }
    return NULL;
}

static void *script_alloc(void *ctx, size_t size, size_t align, const KpSrcLoc *loc) {
    (void)loc;
    KpScriptAlloc *w = ctx;
    KpVM *vm = w->vm;
    KpValue slot = kp_ptr(KP_T_RECORD, w->rec);
    KpValue args[2] = {kp_ptr(KP_T_REF, &slot), kp_int((int64_t)size)};
    args[0].flags = KP_VF_MUT | KP_VF_STATIC;
    KpAllocator *save = vm->ctx;
    vm->ctx = w->parent;
    KpValue out;
    bool ok = kp_vm_call_value(vm, kp_ptr(KP_T_FUNC, w->alloc_fn), args, 2, &out);
    vm->ctx = save;
    if (!ok) return NULL;
    if (out.tag != KP_T_HEAP) {
        kp_vm_error(vm, "%s's alloc returned %s, not a HeapAllocation", w->rec->type->name, kp_value_type_name(vm, out));
        kp_drop(vm, out);
        return NULL;
    }
    KpHeapAlloc *h = out.p;
    if ((size_t)h->size < size || ((uintptr_t)h->data & (align - 1))) {
        kp_vm_error(vm, "%s's alloc returned %lld bytes at alignment %zu; %zu bytes aligned to %zu were needed",
                    w->rec->type->name, (long long)h->size, (size_t)((uintptr_t)h->data & -(uintptr_t)h->data), size, align);
        kp_drop(vm, out);
        return NULL;
    }
    if (!table_put(w, h)) {
        kp_drop(vm, out);
        return NULL;
    }
    return h->data;
}

static void script_free(void *ctx, void *ptr, size_t size, size_t align, const KpSrcLoc *loc) {
    (void)size; (void)align; (void)loc;
    KpScriptAlloc *w = ctx;
    KpVM *vm = w->vm;
    KpHeapAlloc *h = table_take(w, ptr);
    if (!h) return;
    KpValue slot = kp_ptr(KP_T_RECORD, w->rec);
    KpValue args[2] = {kp_ptr(KP_T_REF, &slot), kp_ptr(KP_T_HEAP, h)};
    args[0].flags = KP_VF_MUT | KP_VF_STATIC;
    KpAllocator *save = vm->ctx;
    vm->ctx = w->parent;
    KpValue out;
    if (kp_vm_call_value(vm, kp_ptr(KP_T_FUNC, w->dealloc_fn), args, 2, &out)) kp_drop(vm, out);
    vm->ctx = save;
}

static const KpAllocatorVT script_vt = {script_alloc, NULL, script_free, NULL};

static void script_release(KpScriptAlloc *w) {
    KpVM *vm = w->vm;
    w->rec->h.lock--;
    if (w->keys) kp_free(vm->host, w->keys, sizeof(void *) * w->cap, 8, NULL);
    kp_free(vm->host, w, sizeof *w, 16, NULL);
}

static void script_empty(KpAllocator *a) {
    KpScriptAlloc *w = (KpScriptAlloc *)a;
    if (w->ended) script_release(w);
}

static bool has_overload_for(KpFunc *f, KpType *t) {
    if (!f) return false;
    for (uint32_t i = 0; i < f->n; i++)
        if (f->ovs[i]->nparams >= 1 && f->ovs[i]->params[0].type == t) return true;
    return false;
}

bool kp_script_allocator_begin(KpVM *vm, KpValue recv, KpValue *save) {
    KpRecord *rec = recv.p;
    KpFunc *af = kp_func_get(vm, kp_intern(vm, "alloc", 5), false);
    KpFunc *df = kp_func_get(vm, kp_intern(vm, "dealloc", 7), false);
    if (!has_overload_for(af, rec->type) || !has_overload_for(df, rec->type))
        return kp_vm_error(vm, "%s is not an Allocator: it needs alloc (_: $&%s, size: Int) -> HeapAllocation and dealloc (_: $&%s, h: HeapAllocation) -> () overloads",
                           rec->type->name, rec->type->name, rec->type->name);
    KpScriptAlloc *w = kp_alloc(vm->host, sizeof *w, 16, NULL);
    if (!w) return kp_oom_error(vm, vm->host, sizeof *w);
    memset(w, 0, sizeof *w);
    w->a = (KpAllocator){&script_vt, w, rec->type->name, 0, -1, {0}, NULL};
    w->vm = vm;
    w->rec = rec;
    w->parent = vm->ctx;
    w->alloc_fn = af;
    w->dealloc_fn = df;
    rec->h.lock++;
    *save = kp_ptr(KP_T_CTXSAVE, w);
    save->flags = 1;
    vm->ctx = &w->a;
    return true;
}

/* The end of `using` over a user allocator (the CTXSAVE drop). */
void kp_script_allocator_end(KpVM *vm, void *p) {
    KpScriptAlloc *w = p;
    vm->ctx = w->parent;
    w->ended = true;
    if (w->a.stats.live_count == 0) {
        script_release(w);
    } else {
        w->a.flags |= KP_ALLOC_ZOMBIE;
        w->a.on_empty = script_empty;
    }
}
