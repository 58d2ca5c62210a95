/*
 * allocobj.c — the lifetime of allocator values (KpAllocObj): their type
 * names, their deinit (an allocator with live values or live allocators
 * made from it becomes a zombie, valid until its last block goes), and the
 * KpAllocator the VM wraps around a script record used in `using`.
 *
 * These are the VM's side of the object kind: the VM drops allocator values
 * and opens `using` scopes, so the code lives here; the functions scripts
 * call to make and use allocators (init, alloc, dealloc, stats, reset) are
 * the library's, in stdlib/memory.c.
 *
 * A value may not outlive its allocator.  The allocator's own statistics
 * count its live blocks; deinitializing an allocator that still has live
 * blocks is a runtime error naming the allocator, and the allocator becomes
 * a zombie (KP_ALLOC_ZOMBIE): it stays valid until its last block is
 * freed, then releases itself.  So a free never reaches a dead allocator.
 */
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "vm.h"
#include "binary.h"

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
    case KP_AK_PAGE: kp_page_cache_deinit(&o->u.sys.pages); break;
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
    int64_t pinned, views;
    kp_bin_region_stats(vm, &o->a, &pinned, &views);
    char extra[96] = "";
    if (o->kind == KP_AK_DEBUG || pinned || views) /* binary data: pins and views over its buffers */
        snprintf(extra, sizeof extra, ", %lld bytes pinned, %lld live views", (long long)pinned, (long long)views);
    snprintf(buf, sizeof buf, "stats: %s (%s:%u): peak %lld bytes, %lld allocs, %lld frees%s\n", kind_names[o->kind],
             o->file ? o->file : "?", o->line, (long long)s.peak_bytes, (long long)s.total_allocs,
             (long long)s.total_frees, extra);
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
            int64_t pinned, views;
            kp_bin_region_stats(vm, &o->a, &pinned, &views);
            if (pinned || views) {
                char buf[200];
                snprintf(buf, sizeof buf, "DebugAllocator (made at %s:%u): of what is still alive, %lld bytes are pinned and %lld views are live\n",
                         o->file ? o->file : "?", o->line, (long long)pinned, (long long)views);
                vm->write_err(vm->write_ud, buf, strlen(buf));
            }
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
    KpRecord *rec = w->rec;
    if (w->keys) kp_free(vm->host, w->keys, sizeof(void *) * w->cap, 8, NULL);
    kp_free(vm->host, w, sizeof *w, 16, NULL);
    if (--rec->h.lock == 0 && (rec->h.flags & KP_OF_ORPHAN)) {
        /* it was deinitialized while its values lived (an error then):
         * now that the last of them is gone, it goes too */
        rec->h.flags &= (uint8_t)~KP_OF_ORPHAN;
        kp_drop(vm, kp_ptr(KP_T_RECORD, rec));
    }
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
