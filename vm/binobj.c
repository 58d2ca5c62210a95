/*
 * binobj.c — the binary data objects in the VM: the KP_T_BIN tag's drop and
 * printing (Writer, Reader, View, Pin), HeapAllocation deinit, borrows and
 * pins, and the element encodings (vm/binary.h).  The functions scripts
 * call are in stdlib/binary.c and stdlib/view.c.
 *
 * Design.  A HeapAllocation is never freed while something borrows or pins
 * it: its deinit then is a runtime error and the object becomes an orphan
 * (KP_OF_ORPHAN), released when the last Reader, View, pin or
 * FixedBufferAllocator over it ends.  A borrow also holds the checked
 * reference it was made from, so a buffer moved away, replaced, or gone
 * with its scope is found at the next use (kp_borrow_bytes) with the
 * messages of stale references.  Pins are few and short: the VM keeps them
 * in one array, so that a reset of an allocator can name the pin under it.
 */
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

#include "binary.h"
#include "vm.h"

#define LIKELY(x) __builtin_expect(!!(x), 1)

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
#define HOST_BIG 1
#else
#define HOST_BIG 0
#endif

static const char *const bin_names[KP_BK__COUNT] = {"Binary", "Writer", "Reader", "View", "Pin"};

const char *kp_bin_kind_name(int kind) { return kind > 0 && kind < KP_BK__COUNT ? bin_names[kind] : "Binary"; }

/* ------------------------------------------------------------ elements */

const uint8_t kp_elem_size[KP_E__COUNT] = {1, 2, 4, 8, 1, 2, 4, 8, 4, 8};
const char *const kp_elem_name[KP_E__COUNT] = {"Int8", "Int16", "Int32", "Int64", "UInt8",
                                               "UInt16", "UInt32", "UInt64", "Float32", "Float64"};

int kp_elem_of_type(KpVM *vm, const KpType *t) {
    if (!t) return -1;
    if (t == vm->t_int) return KP_E_I64;
    if (t == vm->t_float) return KP_E_F64;
    if (t == vm->t_float32) return KP_E_F32;
    if (t->kind != KP_TK_SCALAR) return -1;
    switch (t->tag) {
    case KP_T_I8: return KP_E_I8;
    case KP_T_I16: return KP_E_I16;
    case KP_T_I32: return KP_E_I32;
    case KP_T_U8: return KP_E_U8;
    case KP_T_U16: return KP_E_U16;
    case KP_T_U32: return KP_E_U32;
    case KP_T_U64: return KP_E_U64;
    default: return -1;
    }
}

static inline uint16_t sw16(uint16_t x, bool s) { return s ? __builtin_bswap16(x) : x; }
static inline uint32_t sw32(uint32_t x, bool s) { return s ? __builtin_bswap32(x) : x; }
static inline uint64_t sw64(uint64_t x, bool s) { return s ? __builtin_bswap64(x) : x; }

KpValue kp_elem_load(int elem, const unsigned char *p, bool big) {
    bool s = big != HOST_BIG;
    KpValue v = {.tag = KP_T_INT};
    /* integers read as Int (the type says how they are stored); only a
     * UInt64 above Int's range stays a UInt64 */
    switch (elem) {
    case KP_E_I8: v.i = (int8_t)p[0]; break;
    case KP_E_U8: v.i = p[0]; break;
    case KP_E_I16: { uint16_t x; memcpy(&x, p, 2); v.i = (int16_t)sw16(x, s); break; }
    case KP_E_U16: { uint16_t x; memcpy(&x, p, 2); v.i = sw16(x, s); break; }
    case KP_E_I32: { uint32_t x; memcpy(&x, p, 4); v.i = (int32_t)sw32(x, s); break; }
    case KP_E_U32: { uint32_t x; memcpy(&x, p, 4); v.i = sw32(x, s); break; }
    case KP_E_I64: { uint64_t x; memcpy(&x, p, 8); v.i = (int64_t)sw64(x, s); break; }
    case KP_E_U64: { uint64_t x; memcpy(&x, p, 8); v.i = (int64_t)sw64(x, s); if (v.i < 0) v.tag = KP_T_U64; break; }
    case KP_E_F32: {
        uint32_t x; float f;
        memcpy(&x, p, 4);
        x = sw32(x, s);
        memcpy(&f, &x, 4);
        v = kp_float(f);
        break;
    }
    case KP_E_F64: {
        uint64_t x; double f;
        memcpy(&x, p, 8);
        x = sw64(x, s);
        memcpy(&f, &x, 8);
        v = kp_float(f);
        break;
    }
    }
    return v;
}

/* "a UInt8", "an Int8" (kp_a would say "an UInt8") */
static const char *elem_a(int e) {
    static const char *const names[KP_E__COUNT] = {"an Int8", "an Int16", "an Int32", "an Int64", "a UInt8",
                                                   "a UInt16", "a UInt32", "a UInt64", "a Float32", "a Float64"};
    return names[e];
}

static const int64_t elem_min[] = {INT8_MIN, INT16_MIN, INT32_MIN, INT64_MIN, 0, 0, 0, 0};
static const int64_t elem_max[] = {INT8_MAX, INT16_MAX, INT32_MAX, INT64_MAX, UINT8_MAX, UINT16_MAX, UINT32_MAX, INT64_MAX};

bool kp_elem_store(KpVM *vm, int elem, unsigned char *p, KpValue v, bool big, const char *fn) {
    bool s = big != HOST_BIG;
    v = kp_deref(v);
    uint64_t bits;
    if (elem == KP_E_F32 || elem == KP_E_F64) {
        double d;
        if (v.tag == KP_T_FLOAT) d = v.f;
        else if (v.tag == KP_T_INT || (KP_IS_SIZED_INT(v.tag) && v.tag != KP_T_U64)) d = (double)v.i;
        else if (v.tag == KP_T_U64) d = (double)(uint64_t)v.i;
        else return kp_vm_error(vm, "%s: %s is written from a Float, not from %s", fn, elem_a(elem), kp_a(kp_value_type_name(vm, v)));
        if (elem == KP_E_F32) {
            float f = (float)d;
            uint32_t x;
            memcpy(&x, &f, 4);
            x = sw32(x, s);
            memcpy(p, &x, 4);
        } else {
            memcpy(&bits, &d, 8);
            bits = sw64(bits, s);
            memcpy(p, &bits, 8);
        }
        return true;
    }
    if (v.tag != KP_T_INT && !KP_IS_SIZED_INT(v.tag))
        return kp_vm_error(vm, "%s: %s is written from an Int, not from %s", fn, elem_a(elem), kp_a(kp_value_type_name(vm, v)));
    if (v.tag == KP_T_U64 && v.i < 0) { /* above Int's range: only UInt64 holds it */
        if (elem != KP_E_U64) return kp_vm_error(vm, "%s: %" PRIu64 " does not fit in %s", fn, (uint64_t)v.i, elem_a(elem));
    } else if (v.i < elem_min[elem] || v.i > elem_max[elem]) {
        if (elem == KP_E_U64)
            return kp_vm_error(vm, "%s: %" PRId64 " does not fit in a UInt64 (0..18446744073709551615)", fn, v.i);
        return kp_vm_error(vm, "%s: %" PRId64 " does not fit in %s (%" PRId64 "..%" PRId64 ")", fn, v.i, elem_a(elem),
                           elem_min[elem], elem_max[elem]);
    }
    bits = (uint64_t)v.i;
    switch (kp_elem_size[elem]) {
    case 1: p[0] = (unsigned char)bits; break;
    case 2: { uint16_t x = sw16((uint16_t)bits, s); memcpy(p, &x, 2); break; }
    case 4: { uint32_t x = sw32((uint32_t)bits, s); memcpy(p, &x, 4); break; }
    default: { uint64_t x = sw64(bits, s); memcpy(p, &x, 8); break; }
    }
    return true;
}

static void mark_frame_refd(KpVM *vm, const KpValue *slot) {
    if (!(slot >= vm->stack && slot < vm->stack_end)) return;
    for (int i = vm->nframes; i-- > 0;)
        if (vm->frames[i].base <= slot) { vm->frames[i].refd = true; return; }
}

void kp_heap_count_view(KpVM *vm, KpHeapAlloc *h, int d) {
    h->views = (uint32_t)((int64_t)h->views + d);
    vm->live_views += d;
    if (h->from_self) ((KpAllocObj *)((char *)h->from_self - offsetof(KpAllocObj, self)))->live_views += d;
}

void kp_bin_region_stats(KpVM *vm, KpAllocator *a, int64_t *pinned_bytes, int64_t *live_views) {
    int64_t p = 0, v;
    for (uint32_t i = 0; i < vm->npinned; i++) {
        KpHeapAlloc *h = vm->pinned[i];
        bool seen = false;
        for (uint32_t j = 0; j < i && !seen; j++) seen = vm->pinned[j] == h;
        if (!seen && (!a || (h->from_self && h->from == a))) p += h->size;
    }
    /* a script allocator's KpAllocator is embedded in its KpAllocObj */
    v = a ? ((KpAllocObj *)((char *)a - offsetof(KpAllocObj, a)))->live_views : vm->live_views;
    *pinned_bytes = p;
    *live_views = v;
}

bool kp_borrow_begin(KpVM *vm, KpValue arg, KpBorrow *b, const char *fn, bool want_mut) {
    memset(b, 0, sizeof *b);
    KpValue v = kp_deref(arg);
    if (v.tag == KP_T_STR) {
        if (want_mut) return kp_vm_error(vm, "%s: a String is immutable; use a HeapAllocation", fn);
        b->s = v.p;
        kp_str_incref(b->s);
        return true;
    }
    if (v.tag == KP_T_MOVED || v.tag == KP_T_UNSET)
        return kp_vm_error(vm, "%s: use of a %s value", fn, v.tag == KP_T_MOVED ? "moved" : "never set");
    if (v.tag != KP_T_HEAP)
        return kp_vm_error(vm, "%s needs a HeapAllocation, a mapped file or a String, not %s", fn, kp_a(kp_value_type_name(vm, v)));
    if (arg.tag != KP_T_REF)
        return kp_vm_error(vm, "%s borrows its buffer: pass a variable by reference (&buf), not a temporary value", fn);
    b->mut = (arg.flags & KP_VF_MUT) != 0;
    if (want_mut && !b->mut) return kp_vm_error(vm, "%s writes: pass the buffer as $&buf", fn);
    KpHeapAlloc *h = v.p;
    if (b->mut && h->readonly) b->mut = 0;
    b->ref = arg;
    b->ref.flags &= (uint8_t)~KP_VF_PLACE;
    b->h = h;
    KpValue *slot = arg.p;
    if (!(arg.flags & KP_VF_STATIC) && slot >= vm->stack && slot < vm->stack_end && slot->tag == KP_T_HEAP)
        b->gen = &vm->reg_gen[slot - vm->stack];
    kp_heap_count_view(vm, h, 1);
    mark_frame_refd(vm, arg.p);
    return true;
}

static unsigned char none_byte[1];

unsigned char *kp_borrow_bytes(KpVM *vm, const KpBorrow *b, int64_t *len, const char *what) {
    if (b->s) {
        *len = b->s->len;
        return (unsigned char *)b->s->data;
    }
    KpValue v = kp_deref(b->ref);
    if (LIKELY(v.tag == KP_T_HEAP && v.p == b->h)) {
        *len = b->h->size;
        return b->h->data ? b->h->data : none_byte;
    }
    if (v.tag == KP_T_MOVED && (v.flags & KP_VF_DEAD)) {
        if (v.aux)
            kp_vm_error(vm, "the buffer this %s borrows is gone: %s ended at line %u (a %s may not outlive its buffer)", what,
                        (const char *)v.p, KP_POS_LINE(v.aux), what);
        else
            kp_vm_error(vm, "the buffer this %s borrows is gone: it was %s (a %s may not outlive its buffer)", what,
                        (const char *)v.p, what);
    } else if (v.tag == KP_T_MOVED) {
        kp_vm_error(vm, "the buffer this %s borrows was %s at line %u:%u (a %s may not outlive its buffer)", what,
                    (v.flags & KP_VF_DEINIT) ? "deinitialized" : "moved away", KP_POS_LINE(v.aux), KP_POS_COL(v.aux), what);
    } else {
        kp_vm_error(vm, "the variable this %s borrows no longer holds its buffer (it was replaced)", what);
    }
    return NULL;
}

static void heap_free(KpVM *vm, KpHeapAlloc *h) {
    (void)vm;
    if (h->mapped) {
        if (h->data) munmap(h->data, (size_t)h->size);
    } else if (h->data) {
        kp_free(h->from, h->data, (size_t)h->size, h->align ? h->align : 16, NULL);
    }
    kp_block_release(&h->h, "HeapAllocation");
    kp_free(h->h.alloc, h, sizeof(KpHeapAlloc), 16, NULL);
}

void kp_heap_unborrow(KpVM *vm, KpHeapAlloc *h) {
    if ((h->h.flags & KP_OF_ORPHAN) && !h->views && !h->pins && !h->h.lock) heap_free(vm, h);
}

void kp_borrow_end(KpVM *vm, KpBorrow *b) {
    if (b->s) {
        kp_drop(vm, kp_ptr(KP_T_STR, b->s));
        b->s = NULL;
    }
    if (b->h) {
        KpHeapAlloc *h = b->h;
        b->h = NULL;
        kp_heap_count_view(vm, h, -1);
        kp_heap_unborrow(vm, h);
    }
}

bool kp_heap_drop(KpVM *vm, KpHeapAlloc *h) {
    if (h->pins || h->views || h->h.lock) {
        /* kept until the last borrow ends: never freed under a reader */
        h->h.flags |= KP_OF_ORPHAN;
        if (h->pins)
        {
            char d[128];
            return kp_vm_error(vm, "a HeapAllocation of %" PRId64 " bytes was deinitialized while pinned (by %s); it is kept until the pin ends",
                               h->size, kp_pin_desc(h, d, sizeof d));
        }
        if (h->views)
            return kp_vm_error(vm, "a HeapAllocation of %" PRId64 " bytes was deinitialized while %u Reader%s or View%s still borrow%s it; "
                               "it is kept until they end (a view may not outlive its buffer)",
                               h->size, h->views, h->views == 1 ? "" : "s", h->views == 1 ? "" : "s", h->views == 1 ? "s" : "");
        return kp_vm_error(vm, "a HeapAllocation was deinitialized while a FixedBufferAllocator still uses it; it is kept until that allocator ends");
    }
    heap_free(vm, h);
    return true;
}

bool kp_heap_writable(KpVM *vm, KpHeapAlloc *h) {
    if (!h->readonly) return true;
    return kp_vm_error(vm, "this mapped file is read-only: map it with map_file(&system.fs, path, .write = true) to write");
}

/* ------------------------------------------------------------ pins */

const char *kp_pin_desc(KpHeapAlloc *h, char *buf, size_t n) {
    if (h->pin_line) snprintf(buf, n, "%s at line %u", h->pin_what ? h->pin_what : "a pin", h->pin_line);
    else snprintf(buf, n, "%s", h->pin_what ? h->pin_what : "a pin");
    return buf;
}

bool kp_pin_refuse(KpVM *vm, KpHeapAlloc *h, const char *action) {
    char d[128];
    return kp_vm_error(vm, "cannot %s a pinned HeapAllocation (pinned by %s): unpin it first", action, kp_pin_desc(h, d, sizeof d));
}

static bool pinned_add(KpVM *vm, KpHeapAlloc *h) {
    if (vm->npinned == vm->cap_pinned) {
        uint32_t ncap = vm->cap_pinned ? vm->cap_pinned * 2 : 8;
        KpHeapAlloc **n = kp_realloc(vm->host, vm->pinned, sizeof(void *) * vm->cap_pinned, sizeof(void *) * ncap, 8, NULL);
        if (!n) return kp_oom_error(vm, vm->host, sizeof(void *) * ncap);
        vm->pinned = n;
        vm->cap_pinned = ncap;
    }
    vm->pinned[vm->npinned++] = h;
    return true;
}

static void pinned_remove(KpVM *vm, KpHeapAlloc *h) {
    for (uint32_t i = vm->npinned; i-- > 0;)
        if (vm->pinned[i] == h) {
            vm->pinned[i] = vm->pinned[--vm->npinned];
            return;
        }
}

bool kp_heap_pin(KpVM *vm, KpHeapAlloc *h, const char *who, uint32_t line) {
    if (!pinned_add(vm, h)) return false;
    h->pins++;
    h->pin_what = who;
    h->pin_line = line;
    vm->pinned_bytes += h->size;
    return true;
}

void kp_heap_unpin(KpVM *vm, KpHeapAlloc *h) {
    pinned_remove(vm, h);
    h->pins--;
    vm->pinned_bytes -= h->size;
    kp_heap_unborrow(vm, h);
}

bool kp_pin_check_reset(KpVM *vm, KpAllocator *a) {
    for (uint32_t i = 0; i < vm->npinned; i++) {
        KpHeapAlloc *h = vm->pinned[i];
        if (h->from == a) {
            char d[128];
            return kp_vm_error(vm, "cannot reset %s: a HeapAllocation of %" PRId64 " bytes from it is pinned (by %s)", kp_a(a->name),
                               h->size, kp_pin_desc(h, d, sizeof d));
        }
    }
    return true;
}

/* ------------------------------------------------------------ printing */

static bool add(KpVM *vm, const char *s) { return kp_buf_add(vm, &vm->scratch, s, strlen(s)); }

#define PRINT_LIMIT 1000

static bool print_dim(KpVM *vm, const KpView *v, const unsigned char *base, int d, int64_t off, int64_t *budget) {
    if (!add(vm, "[")) return false;
    int64_t es = kp_elem_size[v->elem];
    for (int64_t i = 0; i < v->shape[d]; i++) {
        if (i) {
            if (d == v->ndim - 1) {
                if (!add(vm, ", ")) return false;
            } else {
                if (!add(vm, ",\n")) return false;
                for (int k = 0; k <= d; k++)
                    if (!add(vm, " ")) return false;
            }
        }
        if (*budget <= 0) return add(vm, "...]");
        int64_t o = off + i * v->strides[d] * es;
        if (d == v->ndim - 1) {
            (*budget)--;
            if (!kp_tostring(vm, kp_elem_load(v->elem, base + o, false), false)) return false;
        } else if (!print_dim(vm, v, base, d + 1, o, budget)) {
            return false;
        }
    }
    return add(vm, "]");
}

/* A 1-D view prints as a list, a 2-D view one row per line. */
static bool view_tostring(KpVM *vm, KpView *v) {
    int64_t len;
    const unsigned char *base;
    if (v->src.s) base = (const unsigned char *)v->src.s->data;
    else {
        KpValue x = kp_deref(v->src.ref);
        if (!(x.tag == KP_T_HEAP && x.p == v->src.h)) return add(vm, "<View of a buffer that is gone>");
        base = v->src.h->data;
    }
    (void)len;
    int64_t budget = PRINT_LIMIT;
    return print_dim(vm, v, base, 0, v->offset, &budget);
}

/* ------------------------------------------------------------ the tag's hooks */

bool kp_bin_drop(KpVM *vm, KpBinObj *o) {
    size_t size = sizeof(KpBinObj);
    switch (o->bkind) {
    case KP_BK_WRITER: {
        KpWriter *w = (KpWriter *)o;
        if (w->data) kp_free(w->a, w->data, w->cap, 16, NULL);
        size = sizeof(KpWriter);
        break;
    }
    case KP_BK_READER:
        kp_borrow_end(vm, &((KpReader *)o)->src);
        size = sizeof(KpReader);
        break;
    case KP_BK_VIEW:
        kp_borrow_end(vm, &((KpView *)o)->src);
        size = sizeof(KpView);
        break;
    case KP_BK_PIN:
        kp_heap_unpin(vm, ((KpPin *)o)->buf);
        size = sizeof(KpPin);
        break;
    }
    kp_block_release(&o->h, kp_bin_kind_name(o->bkind));
    kp_free(o->h.alloc, o, size, 16, NULL);
    return true;
}

bool kp_bin_tostring(KpVM *vm, KpBinObj *o) {
    char buf[160];
    switch (o->bkind) {
    case KP_BK_WRITER:
        snprintf(buf, sizeof buf, "<Writer %zu bytes>", ((KpWriter *)o)->len);
        break;
    case KP_BK_READER: {
        KpReader *r = (KpReader *)o;
        int64_t len = r->src.s ? r->src.s->len : r->src.h ? r->src.h->size : 0;
        snprintf(buf, sizeof buf, "<Reader at %" PRId64 " of %" PRId64 " bytes>", r->pos, len);
        break;
    }
    case KP_BK_VIEW: return view_tostring(vm, (KpView *)o);
    case KP_BK_PIN:
        snprintf(buf, sizeof buf, "<Pin of %" PRId64 " bytes>", ((KpPin *)o)->buf->size);
        break;
    default: snprintf(buf, sizeof buf, "<Binary>"); break;
    }
    return kp_buf_add(vm, &vm->scratch, buf, strlen(buf));
}


/* ------------------------------------------------------------ host pins */

void kp_pins_shutdown(KpVM *vm) {
    while (vm->npinned) {
        KpHeapAlloc *h = vm->pinned[vm->npinned - 1];
        if (h->host_pins) {
            char buf[160];
            snprintf(buf, sizeof buf, "keep: kp_vm_free: a HeapAllocation of %" PRId64 " bytes is still pinned by kp_pin_bytes (unpinned now)\n",
                     h->size);
            vm->write_err(vm->write_ud, buf, strlen(buf));
            h->host_pins--;
        }
        kp_heap_unpin(vm, h);
    }
    if (vm->pinned) kp_free(vm->host, vm->pinned, sizeof(void *) * vm->cap_pinned, 8, NULL);
    vm->pinned = NULL;
    vm->cap_pinned = 0;
}

/* The slot window as vm/embed.c sees it (its slot_at, which is private). */
static KpValue *api_slot(KpVM *vm, int slot) {
    kp_tls_vm = vm;
    if (!vm->api_slots && !vm->in_cfunc) {
        vm->api_slots = vm->hslots;
        vm->api_nslots = vm->nhslots;
    }
    if (slot < 0 || slot >= vm->api_nslots) return NULL;
    return &vm->api_slots[slot];
}

static int api_error(KpVM *vm, const char *msg, int slot, const char *type) {
    if (!vm->in_cfunc) {
        kp_buf_reset(&vm->err);
        vm->err_located = false;
    }
    kp_buf_printf(vm, &vm->err, msg, slot, type);
    if (!vm->in_cfunc) vm->status = KP_ERR_ARG;
    return KP_ERR_ARG;
}

/* The buffer (and byte range) of a slot's value: a HeapAllocation, a
 * mapped file, or a contiguous View's bytes. */
static KpHeapAlloc *slot_buffer(KpVM *vm, int slot, int64_t *off, int64_t *len, int *err) {
    KpValue *s = api_slot(vm, slot);
    if (!s) {
        *err = api_error(vm, "slot %d does not exist%s", slot, "");
        return NULL;
    }
    KpValue v = kp_deref(*s);
    if (v.tag == KP_T_HEAP) {
        KpHeapAlloc *h = v.p;
        *off = 0;
        *len = h->size;
        return h;
    }
    if (v.tag == KP_T_BIN && ((KpBinObj *)v.p)->bkind == KP_BK_VIEW) {
        KpView *w = v.p;
        int64_t n, blen;
        if (!w->src.h || !kp_borrow_bytes(vm, &w->src, &blen, "View")) {
            *err = api_error(vm, "slot %d holds a View whose bytes cannot be pinned%s (a View of a String, or of a buffer that is gone)", slot, "");
            return NULL;
        }
        n = kp_elem_size[w->elem];
        int64_t s2 = 1;
        for (int d = w->ndim; d-- > 0;) {
            if (w->shape[d] != 1 && w->strides[d] != s2) {
                *err = api_error(vm, "slot %d holds a View that is not contiguous%s: pin its buffer instead", slot, "");
                return NULL;
            }
            s2 *= w->shape[d];
        }
        *off = w->offset;
        *len = s2 * n;
        return w->src.h;
    }
    *err = api_error(vm, "slot %d holds %s, not a HeapAllocation, a mapped file or a View", slot, kp_value_type_name(vm, v));
    return NULL;
}

KP_API int kp_pin_bytes(KpVM *vm, int slot, void **ptr, size_t *len) {
    int err = KP_OK;
    int64_t off, n;
    KpHeapAlloc *h = slot_buffer(vm, slot, &off, &n, &err);
    if (!h) return err;
    if (!kp_heap_pin(vm, h, "kp_pin_bytes", 0)) return KP_ERR_RUNTIME;
    h->host_pins++;
    if (ptr) *ptr = h->data ? h->data + off : NULL;
    if (len) *len = (size_t)n;
    return KP_OK;
}

KP_API int kp_unpin_bytes(KpVM *vm, int slot) {
    int err = KP_OK;
    int64_t off, n;
    KpHeapAlloc *h = slot_buffer(vm, slot, &off, &n, &err);
    if (!h) return err;
    if (!h->host_pins) return api_error(vm, "slot %d holds a buffer that kp_pin_bytes did not pin%s", slot, "");
    h->host_pins--;
    kp_heap_unpin(vm, h);
    return KP_OK;
}
