/*
 * binary.c — binary data: sized reads and writes on buffers, Writer,
 * Reader, resize, aligned alloc, map_file and pinning.
 *
 * Design.  A HeapAllocation is a run of bytes at a fixed address (no Keep
 * allocator ever moves a block).  `read_int(T, &buf, offset)` and
 * `write_int(T, $&buf, offset, v)` (and read_float/write_float) read and
 * write one value of a sized type at a byte offset, little-endian unless
 * `.endian = "big"`; every access is bounds-checked and every written
 * value range-checked, with messages that give the offset, the size and
 * the buffer's length.  The same reads work on a String's bytes.
 *
 * A Writer is a growable byte buffer in an allocator (the context
 * allocator, or one passed in), with per-writer byte order; `take_bytes`
 * moves its bytes out as a HeapAllocation of exactly the written length.
 * A Reader borrows a buffer (see vm/binary.h: a checked reference plus a
 * count on the buffer, so the buffer cannot be freed under it) and keeps
 * a position; reading past the end is an error naming the position.  The
 * encodings are the usual ones: fixed-size integers in two's complement,
 * IEEE 754 floats, LEB128 varints (unsigned; `svarint` is signed LEB128),
 * strings as a varint byte length then the bytes (as in protobuf).
 *
 * map_file maps a file with mmap (read-only and private, or writable and
 * shared with `.write = true`); the result is a HeapAllocation whose
 * deinit unmaps it, so readers and views accept it like any buffer.
 *
 * Pinning (after the "temporarily pinning objects" note: pinnedness is a
 * temporary property, taken for the duration of a blocking call): a pin
 * counts on the buffer; while it is held the buffer cannot be resized or
 * freed, nor its allocator reset, and the refusal names the pin.  Scripts
 * take one with `pin(&buf)` (a guard value: the pin ends with its scope),
 * hosts with kp_pin_bytes/kp_unpin_bytes (include/keep.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../vm/binary.h"
#include "../vm/vm.h"

#define LIKELY(x) __builtin_expect(!!(x), 1)
#define UNLIKELY(x) __builtin_expect(!!(x), 0)

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
    switch (elem) {
    case KP_E_I8: v.i = (int8_t)p[0]; v.tag = KP_T_I8; break;
    case KP_E_U8: v.i = p[0]; v.tag = KP_T_U8; break;
    case KP_E_I16: { uint16_t x; memcpy(&x, p, 2); v.i = (int16_t)sw16(x, s); v.tag = KP_T_I16; break; }
    case KP_E_U16: { uint16_t x; memcpy(&x, p, 2); v.i = sw16(x, s); v.tag = KP_T_U16; break; }
    case KP_E_I32: { uint32_t x; memcpy(&x, p, 4); v.i = (int32_t)sw32(x, s); v.tag = KP_T_I32; break; }
    case KP_E_U32: { uint32_t x; memcpy(&x, p, 4); v.i = sw32(x, s); v.tag = KP_T_U32; break; }
    case KP_E_I64: { uint64_t x; memcpy(&x, p, 8); v.i = (int64_t)sw64(x, s); break; }
    case KP_E_U64: { uint64_t x; memcpy(&x, p, 8); v.i = (int64_t)sw64(x, s); v.tag = KP_T_U64; break; }
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

/* ------------------------------------------------------------ arguments */

static bool endian_arg(KpVM *vm, KpValue v, const char *fn, bool *big) {
    v = kp_deref(v);
    if (v.tag == KP_T_STR) {
        KpString *s = v.p;
        if (s->len == 6 && !memcmp(s->data, "little", 6)) { *big = false; return true; }
        if (s->len == 3 && !memcmp(s->data, "big", 3)) { *big = true; return true; }
        return kp_vm_error(vm, "%s: .endian is \"little\" or \"big\", not \"%.40s\"", fn, s->data);
    }
    return kp_vm_error(vm, "%s: .endian is \"little\" or \"big\", not %s", fn, kp_a(kp_value_type_name(vm, v)));
}

static bool int_arg(KpVM *vm, KpValue v, const char *fn, const char *what, int64_t *out) {
    v = kp_deref(v);
    if (v.tag == KP_T_INT || (KP_IS_SIZED_INT(v.tag) && !(v.tag == KP_T_U64 && v.i < 0))) { *out = v.i; return true; }
    return kp_vm_error(vm, "%s: %s must be an Int, not %s", fn, what, kp_a(kp_value_type_name(vm, v)));
}

static int elem_arg(KpVM *vm, KpValue v, const char *fn, bool want_float) {
    v = kp_deref(v);
    int e = v.tag == KP_T_TYPE ? kp_elem_of_type(vm, v.p) : -1;
    if (e >= 0 && (e >= KP_E_F32) == want_float) return e;
    if (want_float)
        kp_vm_error(vm, "%s needs Float32 or Float64, not %s", fn, v.tag == KP_T_TYPE ? kp_type_name(v.p) : kp_a(kp_value_type_name(vm, v)));
    else
        kp_vm_error(vm, "%s needs an integer type (Int8, Int16, Int32, Int64, UInt8, UInt16, UInt32, UInt64), not %s", fn,
                    v.tag == KP_T_TYPE ? kp_type_name(v.p) : kp_a(kp_value_type_name(vm, v)));
    return -1;
}

/* The bytes of a buffer argument: a HeapAllocation (or mapped file) or a
 * String (read-only). */
static unsigned char *bytes_arg(KpVM *vm, KpValue v, const char *fn, bool write, int64_t *len, const char **what) {
    KpValue x = kp_deref(v);
    static unsigned char none[1];
    if (x.tag == KP_T_HEAP) {
        KpHeapAlloc *h = x.p;
        if (write && !kp_heap_writable(vm, h)) return NULL;
        *len = h->size;
        *what = h->mapped ? "mapped file" : "HeapAllocation";
        return h->data ? h->data : none;
    }
    if (x.tag == KP_T_STR) {
        if (write) {
            kp_vm_error(vm, "%s: a String is immutable; write into a HeapAllocation or a Writer", fn);
            return NULL;
        }
        *len = ((KpString *)x.p)->len;
        *what = "String";
        return (unsigned char *)((KpString *)x.p)->data;
    }
    if (x.tag == KP_T_MOVED || x.tag == KP_T_UNSET) {
        kp_vm_error(vm, "%s: use of a %s value", fn, x.tag == KP_T_MOVED ? "moved" : "never set");
        return NULL;
    }
    kp_vm_error(vm, "%s needs a HeapAllocation or a String, not %s", fn, kp_a(kp_value_type_name(vm, x)));
    return NULL;
}

static bool range_check(KpVM *vm, const char *fn, int e, int64_t off, int64_t len, const char *what) {
    int64_t sz = kp_elem_size[e];
    if (LIKELY(off >= 0 && off <= len - sz)) return true;
    return kp_vm_error(vm, "%s: %s (%" PRId64 " byte%s) at offset %" PRId64 " is out of bounds for %s of %" PRId64 " byte%s",
                       fn, kp_elem_name[e], sz, sz == 1 ? "" : "s", off, kp_a(what), len, len == 1 ? "" : "s");
}

/* ------------------------------------------------------------ read/write at offsets */

static bool rw_read(KpVM *vm, KpValue *a, KpValue *out, const char *fn, bool flt) {
    int e = elem_arg(vm, a[0], fn, flt);
    if (e < 0) return false;
    int64_t len, off;
    const char *what;
    bool big;
    unsigned char *p = bytes_arg(vm, a[1], fn, false, &len, &what);
    if (!p || !int_arg(vm, a[2], fn, "the offset", &off) || !endian_arg(vm, a[3], fn, &big)) return false;
    if (!range_check(vm, fn, e, off, len, what)) return false;
    *out = kp_elem_load(e, p + off, big);
    return true;
}

static bool rw_write(KpVM *vm, KpValue *a, KpValue *out, const char *fn, bool flt) {
    int e = elem_arg(vm, a[0], fn, flt);
    if (e < 0) return false;
    int64_t len, off;
    const char *what;
    bool big;
    unsigned char *p = bytes_arg(vm, a[1], fn, true, &len, &what);
    if (!p || !int_arg(vm, a[2], fn, "the offset", &off) || !endian_arg(vm, a[4], fn, &big)) return false;
    if (!range_check(vm, fn, e, off, len, what)) return false;
    *out = kp_unit();
    return kp_elem_store(vm, e, p + off, a[3], big, fn);
}

static bool b_read_int(KpVM *vm, KpValue *a, int n, KpValue *out) { (void)n; return rw_read(vm, a, out, "read_int", false); }
static bool b_read_float(KpVM *vm, KpValue *a, int n, KpValue *out) { (void)n; return rw_read(vm, a, out, "read_float", true); }
static bool b_write_int(KpVM *vm, KpValue *a, int n, KpValue *out) { (void)n; return rw_write(vm, a, out, "write_int", false); }
static bool b_write_float(KpVM *vm, KpValue *a, int n, KpValue *out) { (void)n; return rw_write(vm, a, out, "write_float", true); }

/* bytes(s): a copy of a string's bytes as a HeapAllocation (context allocator). */
static bool new_buffer(KpVM *vm, KpAllocator *from, KpValue *from_self, const void *src, size_t len, KpValue *out) {
    KpHeapAlloc *h = kp_obj_new(vm, vm->ctx, KP_T_HEAP, sizeof(KpHeapAlloc));
    if (!h) return false;
    if (len) {
        h->data = kp_alloc(from, len, 16, kp_vm_loc(vm, from));
        if (!h->data) {
            kp_block_release(&h->h, NULL);
            kp_free(h->h.alloc, h, sizeof(KpHeapAlloc), 16, NULL);
            return kp_oom_error(vm, from, len);
        }
        if (src) memcpy(h->data, src, len);
        else memset(h->data, 0, len);
    }
    h->size = (int64_t)len;
    h->from = from;
    h->from_self = from_self;
    h->align = 16;
    *out = kp_ptr(KP_T_HEAP, h);
    return true;
}

static bool b_bytes(KpVM *vm, KpValue *a, int n, KpValue *out) {
    (void)n;
    KpValue s = kp_deref(a[0]);
    if (s.tag != KP_T_STR) return kp_vm_error(vm, "bytes needs a String, not %s", kp_a(kp_value_type_name(vm, s)));
    return new_buffer(vm, vm->ctx, NULL, ((KpString *)s.p)->data, ((KpString *)s.p)->len, out);
}

/* ------------------------------------------------------------ borrows */

static void *bin_new(KpVM *vm, int kind, size_t size) {
    KpBinObj *o = kp_obj_new(vm, vm->ctx, KP_T_BIN, size);
    if (o) o->bkind = (uint8_t)kind;
    return o;
}

/* A reference into a register: its frame must bump its registers'
 * generations on return, so the borrow sees the buffer go. */
static void mark_frame_refd(KpVM *vm, const KpValue *slot) {
    if (!(slot >= vm->stack && slot < vm->stack_end)) return;
    for (int i = vm->nframes; i-- > 0;)
        if (vm->frames[i].base <= slot) { vm->frames[i].refd = true; return; }
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
    h->views++;
    vm->live_views++;
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
        h->views--;
        vm->live_views--;
        kp_heap_unborrow(vm, h);
    }
}

bool kp_heap_drop(KpVM *vm, KpHeapAlloc *h) {
    if (h->pins || h->views || h->h.lock) {
        /* kept until the last borrow ends: never freed under a reader */
        h->h.flags |= KP_OF_ORPHAN;
        if (h->pins)
            return kp_vm_error(vm, "a HeapAllocation of %" PRId64 " bytes was deinitialized while pinned (%s%s%.0u); it is kept until the pin ends",
                               h->size, h->pin_what ? h->pin_what : "a pin", h->pin_line ? " at line " : "", h->pin_line);
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

static const char *pin_desc(KpHeapAlloc *h, char *buf, size_t n) {
    if (h->pin_line) snprintf(buf, n, "%s at line %u", h->pin_what ? h->pin_what : "a pin", h->pin_line);
    else snprintf(buf, n, "%s", h->pin_what ? h->pin_what : "a pin");
    return buf;
}

static bool pin_refuse(KpVM *vm, KpHeapAlloc *h, const char *action) {
    char d[128];
    return kp_vm_error(vm, "cannot %s a pinned HeapAllocation (pinned by %s): unpin it first", action, pin_desc(h, d, sizeof d));
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

/* Pins h (who: "pin", "kp_pin_bytes"); line 0 = no script line. */
static bool heap_pin(KpVM *vm, KpHeapAlloc *h, const char *who, uint32_t line) {
    if (!pinned_add(vm, h)) return false;
    h->pins++;
    h->pin_what = who;
    h->pin_line = line;
    vm->pinned_bytes += h->size;
    return true;
}

static void heap_unpin(KpVM *vm, KpHeapAlloc *h) {
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
                               h->size, pin_desc(h, d, sizeof d));
        }
    }
    return true;
}

static uint32_t cur_line(KpVM *vm) {
    if (!vm->nframes) return 0;
    KpFrame *f = &vm->frames[vm->nframes - 1];
    size_t off = (size_t)(f->pc - f->proto->code);
    if (off) off--;
    return off < f->proto->ncode ? f->proto->lines[off].line : 0;
}

/* pin(&buf) -> Pin: a guard; the pin ends when the guard is deinitialized. */
static bool b_pin(KpVM *vm, KpValue *a, int n, KpValue *out) {
    (void)n;
    KpValue v = kp_deref(a[0]);
    if (v.tag != KP_T_HEAP) return kp_vm_error(vm, "pin needs a HeapAllocation or a mapped file, not %s", kp_a(kp_value_type_name(vm, v)));
    if (a[0].tag != KP_T_REF) return kp_vm_error(vm, "pin borrows its buffer: pass a variable (&buf)");
    KpPin *p = bin_new(vm, KP_BK_PIN, sizeof(KpPin));
    if (!p) return false;
    if (!heap_pin(vm, v.p, "pin", cur_line(vm))) {
        kp_block_release(&p->h, NULL);
        kp_free(p->h.alloc, p, sizeof(KpPin), 16, NULL);
        return false;
    }
    p->buf = v.p;
    *out = kp_ptr(KP_T_BIN, p);
    return true;
}

/* is_pinned(&buf) */
static bool b_is_pinned(KpVM *vm, KpValue *a, int n, KpValue *out) {
    (void)n;
    KpValue v = kp_deref(a[0]);
    if (v.tag != KP_T_HEAP) return kp_vm_error(vm, "is_pinned needs a HeapAllocation, not %s", kp_a(kp_value_type_name(vm, v)));
    *out = kp_bool(((KpHeapAlloc *)v.p)->pins > 0);
    return true;
}

/* ------------------------------------------------------------ resize, aligned alloc */

/* resize($&buf, n): the bytes move to a block of n bytes (the first
 * min(old, n) kept, new bytes zero); refused while borrowed or pinned. */
static bool b_resize(KpVM *vm, KpValue *a, int n, KpValue *out) {
    (void)n;
    KpValue v = kp_deref(a[0]);
    if (v.tag != KP_T_HEAP) return kp_vm_error(vm, "resize needs a HeapAllocation, not %s", kp_a(kp_value_type_name(vm, v)));
    KpHeapAlloc *h = v.p;
    int64_t sz;
    if (!int_arg(vm, a[1], "resize", "the size", &sz)) return false;
    if (sz <= 0 || sz > ((int64_t)1 << 40)) return kp_vm_error(vm, "resize to %" PRId64 " bytes: the size must be positive", sz);
    if (h->pins) return pin_refuse(vm, h, "resize");
    if (h->views)
        return kp_vm_error(vm, "cannot resize a HeapAllocation while %u Reader%s or View%s borrow%s it", h->views,
                           h->views == 1 ? "" : "s", h->views == 1 ? "" : "s", h->views == 1 ? "s" : "");
    if (h->h.lock) return kp_vm_error(vm, "cannot resize a HeapAllocation while a FixedBufferAllocator uses it");
    if (h->mapped) return kp_vm_error(vm, "cannot resize a mapped file");
    size_t align = h->align ? h->align : 16;
    unsigned char *d = kp_alloc(h->from, (size_t)sz, align, kp_vm_loc(vm, h->from));
    if (!d) return kp_oom_error(vm, h->from, (size_t)sz);
    size_t keep = (size_t)(sz < h->size ? sz : h->size);
    if (keep) memcpy(d, h->data, keep);
    if ((size_t)sz > keep) memset(d + keep, 0, (size_t)sz - keep);
    if (h->data) kp_free(h->from, h->data, (size_t)h->size, align, NULL);
    h->data = d;
    h->size = sz;
    /* references into the old bytes die (none can exist: bytes are not places) */
    *out = kp_unit();
    return true;
}

static KpAllocator *alloc_arg(KpVM *vm, KpValue v, KpValue **self, const char *fn) {
    KpValue x = kp_deref(v);
    if (x.tag == KP_T_ALLOCATOR) {
        if (self) *self = &((KpAllocObj *)x.p)->self;
        return &((KpAllocObj *)x.p)->a;
    }
    kp_vm_error(vm, "%s needs an allocator, not %s", fn, kp_a(kp_value_type_name(vm, x)));
    return NULL;
}

/* alloc(&a, size, .align = A): `size` zero bytes aligned to A (a power of two). */
static bool b_alloc_aligned(KpVM *vm, KpValue *a, int n, KpValue *out) {
    (void)n;
    KpValue *self = NULL;
    KpAllocator *from = alloc_arg(vm, a[0], &self, "alloc");
    if (!from) return false;
    int64_t sz, al;
    if (!int_arg(vm, a[1], "alloc", "the size", &sz) || !int_arg(vm, a[2], "alloc", ".align", &al)) return false;
    if (sz <= 0 || sz > ((int64_t)1 << 40)) return kp_vm_error(vm, "cannot allocate %" PRId64 " bytes: the size must be positive", sz);
    if (al <= 0 || (al & (al - 1)) || al > 65536)
        return kp_vm_error(vm, "alloc: .align must be a power of two from 1 to 65536, not %" PRId64, al);
    if (al < 16) al = 16;
    KpHeapAlloc *h = kp_obj_new(vm, vm->ctx, KP_T_HEAP, sizeof(KpHeapAlloc));
    if (!h) return false;
    h->data = kp_alloc(from, (size_t)sz, (size_t)al, kp_vm_loc(vm, from));
    if (!h->data) {
        kp_block_release(&h->h, NULL);
        kp_free(h->h.alloc, h, sizeof(KpHeapAlloc), 16, NULL);
        return kp_oom_error(vm, from, (size_t)sz);
    }
    memset(h->data, 0, (size_t)sz);
    h->size = sz;
    h->from = from;
    h->from_self = self;
    h->align = (uint32_t)al;
    *out = kp_ptr(KP_T_HEAP, h);
    return true;
}

/* ------------------------------------------------------------ Writer */

static KpWriter *writer_arg(KpVM *vm, KpValue v, const char *fn) {
    KpValue x = kp_deref(v);
    if (LIKELY(x.tag == KP_T_BIN && ((KpBinObj *)x.p)->bkind == KP_BK_WRITER)) return x.p;
    kp_vm_error(vm, "%s needs a Writer, not %s", fn, kp_a(kp_value_type_name(vm, x)));
    return NULL;
}

static bool writer_new(KpVM *vm, KpAllocator *a, KpValue *self, KpValue endian, KpValue *out) {
    bool big;
    if (!endian_arg(vm, endian, "Writer", &big)) return false;
    KpWriter *w = bin_new(vm, KP_BK_WRITER, sizeof(KpWriter));
    if (!w) return false;
    w->big = big;
    w->a = a;
    w->a_self = self;
    *out = kp_ptr(KP_T_BIN, w);
    return true;
}

static bool init_writer0(KpVM *vm, KpValue *a, int n, KpValue *out) {
    (void)n;
    return writer_new(vm, vm->ctx, NULL, a[0], out);
}

static bool init_writer1(KpVM *vm, KpValue *a, int n, KpValue *out) {
    (void)n;
    KpValue *self;
    KpAllocator *al = alloc_arg(vm, a[0], &self, "Writer");
    return al && writer_new(vm, al, self, a[1], out);
}

static bool writer_grow(KpVM *vm, KpWriter *w, size_t need) {
    size_t ncap = w->cap ? w->cap : 64;
    while (ncap - w->len < need) {
        if (ncap > ((size_t)1 << 40)) return kp_vm_error(vm, "Writer: too many bytes");
        ncap *= 2;
    }
    unsigned char *d = kp_realloc(w->a, w->data, w->cap, ncap, 16, kp_vm_loc(vm, w->a));
    if (!d) return kp_oom_error(vm, w->a, ncap);
    w->data = d;
    w->cap = ncap;
    return true;
}

static inline unsigned char *writer_room(KpVM *vm, KpWriter *w, size_t n) {
    if (UNLIKELY(w->cap - w->len < n) && !writer_grow(vm, w, n)) return NULL;
    unsigned char *p = w->data + w->len;
    w->len += n;
    return p;
}

static bool w_put(KpVM *vm, KpValue *a, KpValue *out, int e, const char *fn) {
    KpWriter *w = writer_arg(vm, a[0], fn);
    if (!w) return false;
    unsigned char *p = writer_room(vm, w, kp_elem_size[e]);
    if (!p) return false;
    *out = kp_unit();
    if (!kp_elem_store(vm, e, p, a[1], w->big, fn)) {
        w->len -= kp_elem_size[e];
        return false;
    }
    return true;
}

#define WRITER_FN(NAME, E)                                                        \
    static bool b_##NAME(KpVM *vm, KpValue *a, int n, KpValue *out) {             \
        (void)n;                                                                  \
        return w_put(vm, a, out, E, #NAME);                                       \
    }
WRITER_FN(write_u8, KP_E_U8)
WRITER_FN(write_u16, KP_E_U16)
WRITER_FN(write_u32, KP_E_U32)
WRITER_FN(write_u64, KP_E_U64)
WRITER_FN(write_i8, KP_E_I8)
WRITER_FN(write_i16, KP_E_I16)
WRITER_FN(write_i32, KP_E_I32)
WRITER_FN(write_i64, KP_E_I64)
WRITER_FN(write_f32, KP_E_F32)
WRITER_FN(write_f64, KP_E_F64)

static bool put_varint(KpVM *vm, KpWriter *w, uint64_t x) {
    unsigned char tmp[10];
    size_t k = 0;
    do {
        unsigned char b = x & 0x7f;
        x >>= 7;
        tmp[k++] = (unsigned char)(b | (x ? 0x80 : 0));
    } while (x);
    unsigned char *p = writer_room(vm, w, k);
    if (!p) return false;
    memcpy(p, tmp, k);
    return true;
}

/* write_varint($&w, v): unsigned LEB128 of an Int >= 0 (or a UInt64). */
static bool b_write_varint(KpVM *vm, KpValue *a, int n, KpValue *out) {
    (void)n;
    KpWriter *w = writer_arg(vm, a[0], "write_varint");
    if (!w) return false;
    KpValue v = kp_deref(a[1]);
    if (v.tag != KP_T_INT && !KP_IS_SIZED_INT(v.tag))
        return kp_vm_error(vm, "write_varint needs an Int, not %s", kp_a(kp_value_type_name(vm, v)));
    if (v.i < 0 && v.tag != KP_T_U64)
        return kp_vm_error(vm, "write_varint: %" PRId64 " is negative; use write_svarint for signed values", v.i);
    *out = kp_unit();
    return put_varint(vm, w, (uint64_t)v.i);
}

/* write_svarint($&w, v): signed LEB128. */
static bool b_write_svarint(KpVM *vm, KpValue *a, int n, KpValue *out) {
    (void)n;
    KpWriter *w = writer_arg(vm, a[0], "write_svarint");
    int64_t x;
    if (!w || !int_arg(vm, a[1], "write_svarint", "the value", &x)) return false;
    unsigned char tmp[10];
    size_t k = 0;
    for (;;) {
        unsigned char b = x & 0x7f;
        x >>= 7; /* arithmetic shift */
        bool done = (x == 0 && !(b & 0x40)) || (x == -1 && (b & 0x40));
        tmp[k++] = (unsigned char)(b | (done ? 0 : 0x80));
        if (done) break;
    }
    unsigned char *p = writer_room(vm, w, k);
    if (!p) return false;
    memcpy(p, tmp, k);
    *out = kp_unit();
    return true;
}

static bool b_write_bytes(KpVM *vm, KpValue *a, int n, KpValue *out) {
    (void)n;
    KpWriter *w = writer_arg(vm, a[0], "write_bytes");
    if (!w) return false;
    int64_t len;
    const char *what;
    unsigned char *src = bytes_arg(vm, a[1], "write_bytes", false, &len, &what);
    if (!src) return false;
    unsigned char *p = writer_room(vm, w, (size_t)len);
    if (!p) return false;
    if (len) memmove(p, src, (size_t)len);
    *out = kp_unit();
    return true;
}

/* write_str($&w, s): varint byte length, then the bytes. */
static bool b_write_str(KpVM *vm, KpValue *a, int n, KpValue *out) {
    (void)n;
    KpWriter *w = writer_arg(vm, a[0], "write_str");
    if (!w) return false;
    KpValue s = kp_deref(a[1]);
    if (s.tag != KP_T_STR) return kp_vm_error(vm, "write_str needs a String, not %s", kp_a(kp_value_type_name(vm, s)));
    KpString *str = s.p;
    if (!put_varint(vm, w, str->len)) return false;
    unsigned char *p = writer_room(vm, w, str->len);
    if (!p) return false;
    memcpy(p, str->data, str->len);
    *out = kp_unit();
    return true;
}

/* take_bytes(~&w): the written bytes as a HeapAllocation (the Writer is consumed). */
static bool b_take_bytes(KpVM *vm, KpValue *a, int n, KpValue *out) {
    (void)n;
    if (a[0].tag == KP_T_REF) return kp_vm_error(vm, "take_bytes consumes the Writer: pass it with ~&w");
    KpWriter *w = writer_arg(vm, a[0], "take_bytes");
    if (!w) return false;
    KpHeapAlloc *h = kp_obj_new(vm, vm->ctx, KP_T_HEAP, sizeof(KpHeapAlloc));
    if (!h) return false;
    if (w->len) {
        unsigned char *d = w->len == w->cap ? w->data : kp_realloc(w->a, w->data, w->cap, w->len, 16, kp_vm_loc(vm, w->a));
        if (!d) {
            kp_block_release(&h->h, NULL);
            kp_free(h->h.alloc, h, sizeof(KpHeapAlloc), 16, NULL);
            return kp_oom_error(vm, w->a, w->len);
        }
        h->data = d;
    } else if (w->data) {
        kp_free(w->a, w->data, w->cap, 16, NULL);
    }
    h->size = (int64_t)w->len;
    h->from = w->a;
    h->from_self = w->a_self;
    h->align = 16;
    w->data = NULL;
    w->len = w->cap = 0;
    *out = kp_ptr(KP_T_HEAP, h);
    return true; /* the emptied Writer is dropped after the call */
}

/* ------------------------------------------------------------ Reader */

static KpReader *reader_arg(KpVM *vm, KpValue v, const char *fn) {
    KpValue x = kp_deref(v);
    if (LIKELY(x.tag == KP_T_BIN && ((KpBinObj *)x.p)->bkind == KP_BK_READER)) return x.p;
    kp_vm_error(vm, "%s needs a Reader, not %s", fn, kp_a(kp_value_type_name(vm, x)));
    return NULL;
}

static bool init_reader(KpVM *vm, KpValue *a, int n, KpValue *out) {
    (void)n;
    bool big;
    if (!endian_arg(vm, a[1], "Reader", &big)) return false;
    KpReader *r = bin_new(vm, KP_BK_READER, sizeof(KpReader));
    if (!r) return false;
    if (!kp_borrow_begin(vm, a[0], &r->src, "Reader", false)) {
        kp_block_release(&r->h, NULL);
        kp_free(r->h.alloc, r, sizeof(KpReader), 16, NULL);
        return false;
    }
    r->big = big;
    *out = kp_ptr(KP_T_BIN, r);
    return true;
}

/* n bytes at the reader's position (advancing it), or NULL with the error. */
static inline const unsigned char *reader_take(KpVM *vm, KpReader *r, int64_t n, const char *fn) {
    int64_t len;
    const unsigned char *p = kp_borrow_bytes(vm, &r->src, &len, "Reader");
    if (UNLIKELY(!p)) return NULL;
    if (UNLIKELY(n < 0 || r->pos > len - n)) {
        kp_vm_error(vm, "%s: %" PRId64 " byte%s at position %" PRId64 " run past the end of the data (%" PRId64 " bytes, %" PRId64 " left)",
                    fn, n, n == 1 ? "" : "s", r->pos, len, len - r->pos);
        return NULL;
    }
    p += r->pos;
    r->pos += n;
    return p;
}

static bool r_get(KpVM *vm, KpValue *a, KpValue *out, int e, const char *fn) {
    KpReader *r = reader_arg(vm, a[0], fn);
    if (!r) return false;
    const unsigned char *p = reader_take(vm, r, kp_elem_size[e], fn);
    if (!p) return false;
    *out = kp_elem_load(e, p, r->big);
    return true;
}

#define READER_FN(NAME, E)                                                        \
    static bool b_##NAME(KpVM *vm, KpValue *a, int n, KpValue *out) {             \
        (void)n;                                                                  \
        return r_get(vm, a, out, E, #NAME);                                       \
    }
READER_FN(read_u8, KP_E_U8)
READER_FN(read_u16, KP_E_U16)
READER_FN(read_u32, KP_E_U32)
READER_FN(read_u64, KP_E_U64)
READER_FN(read_i8, KP_E_I8)
READER_FN(read_i16, KP_E_I16)
READER_FN(read_i32, KP_E_I32)
READER_FN(read_i64, KP_E_I64)
READER_FN(read_f32, KP_E_F32)
READER_FN(read_f64, KP_E_F64)

static bool get_varint(KpVM *vm, KpReader *r, const char *fn, uint64_t *out, bool *neg_ext) {
    int64_t start = r->pos;
    uint64_t x = 0;
    for (int shift = 0;; shift += 7) {
        if (shift > 63) {
            r->pos = start;
            return kp_vm_error(vm, "%s: the varint at position %" PRId64 " is longer than 10 bytes", fn, start);
        }
        const unsigned char *p = reader_take(vm, r, 1, fn);
        if (!p) {
            r->pos = start;
            return false;
        }
        x |= (uint64_t)(*p & 0x7f) << shift;
        if (!(*p & 0x80)) {
            if (neg_ext && (*p & 0x40) && shift + 7 < 64) x |= ~(uint64_t)0 << (shift + 7);
            break;
        }
    }
    *out = x;
    return true;
}

static bool b_read_varint(KpVM *vm, KpValue *a, int n, KpValue *out) {
    (void)n;
    KpReader *r = reader_arg(vm, a[0], "read_varint");
    uint64_t x;
    if (!r) return false;
    int64_t start = r->pos;
    if (!get_varint(vm, r, "read_varint", &x, NULL)) return false;
    if (x > (uint64_t)INT64_MAX) {
        *out = kp_int((int64_t)x);
        out->tag = KP_T_U64;
        (void)start;
        return true;
    }
    *out = kp_int((int64_t)x);
    return true;
}

static bool b_read_svarint(KpVM *vm, KpValue *a, int n, KpValue *out) {
    (void)n;
    KpReader *r = reader_arg(vm, a[0], "read_svarint");
    uint64_t x;
    if (!r || !get_varint(vm, r, "read_svarint", &x, (bool[]){true})) return false;
    *out = kp_int((int64_t)x);
    return true;
}

static bool b_read_bytes(KpVM *vm, KpValue *a, int n, KpValue *out) {
    (void)n;
    KpReader *r = reader_arg(vm, a[0], "read_bytes");
    int64_t k;
    if (!r || !int_arg(vm, a[1], "read_bytes", "the count", &k)) return false;
    const unsigned char *p = reader_take(vm, r, k, "read_bytes");
    if (!p) return false;
    if (!new_buffer(vm, vm->ctx, NULL, p, (size_t)k, out)) {
        r->pos -= k;
        return false;
    }
    return true;
}

static bool b_read_str(KpVM *vm, KpValue *a, int n, KpValue *out) {
    (void)n;
    KpReader *r = reader_arg(vm, a[0], "read_str");
    if (!r) return false;
    int64_t start = r->pos;
    uint64_t k;
    if (!get_varint(vm, r, "read_str", &k, NULL)) return false;
    if (k > UINT32_MAX) {
        r->pos = start;
        return kp_vm_error(vm, "read_str: the length %" PRIu64 " at position %" PRId64 " is too large for a string", k, start);
    }
    const unsigned char *p = reader_take(vm, r, (int64_t)k, "read_str");
    if (!p) {
        r->pos = start;
        return false;
    }
    KpString *s = kp_str_new(vm, vm->ctx, (const char *)p, (size_t)k);
    if (!s) {
        r->pos = start;
        return false;
    }
    *out = kp_ptr(KP_T_STR, s);
    return true;
}

static bool b_position(KpVM *vm, KpValue *a, int n, KpValue *out) {
    (void)n;
    KpValue x = kp_deref(a[0]);
    if (x.tag == KP_T_BIN && ((KpBinObj *)x.p)->bkind == KP_BK_WRITER) { *out = kp_int((int64_t)((KpWriter *)x.p)->len); return true; }
    KpReader *r = reader_arg(vm, a[0], "position");
    if (!r) return false;
    *out = kp_int(r->pos);
    return true;
}

static bool b_remaining(KpVM *vm, KpValue *a, int n, KpValue *out) {
    (void)n;
    KpReader *r = reader_arg(vm, a[0], "remaining");
    int64_t len;
    if (!r || !kp_borrow_bytes(vm, &r->src, &len, "Reader")) return false;
    *out = kp_int(len > r->pos ? len - r->pos : 0);
    return true;
}

static bool b_skip(KpVM *vm, KpValue *a, int n, KpValue *out) {
    (void)n;
    KpReader *r = reader_arg(vm, a[0], "skip");
    int64_t k;
    if (!r || !int_arg(vm, a[1], "skip", "the count", &k)) return false;
    if (k < 0) return kp_vm_error(vm, "skip: the count %" PRId64 " is negative", k);
    if (!reader_take(vm, r, k, "skip")) return false;
    *out = kp_unit();
    return true;
}

/* seek($&r, pos): moves to an absolute position (0..length). */
static bool b_seek(KpVM *vm, KpValue *a, int n, KpValue *out) {
    (void)n;
    KpReader *r = reader_arg(vm, a[0], "seek");
    int64_t k, len;
    if (!r || !int_arg(vm, a[1], "seek", "the position", &k) || !kp_borrow_bytes(vm, &r->src, &len, "Reader")) return false;
    if (k < 0 || k > len)
        return kp_vm_error(vm, "seek: position %" PRId64 " is outside the data (0..%" PRId64 ")", k, len);
    r->pos = k;
    *out = kp_unit();
    return true;
}

/* ------------------------------------------------------------ map_file */

static bool b_map_file(KpVM *vm, KpValue *a, int n, KpValue *out) {
    (void)n;
    KpValue fs = kp_deref(a[0]);
    if (!(fs.tag == KP_T_SYSTEM && fs.aux == 2))
        return kp_vm_error(vm, "map_file needs the file system capability: map_file(&system.fs, path)");
    KpValue p = kp_deref(a[1]), wv = kp_deref(a[2]);
    if (p.tag != KP_T_STR) return kp_vm_error(vm, "map_file: the path must be a String, not %s", kp_a(kp_value_type_name(vm, p)));
    if (wv.tag != KP_T_BOOL) return kp_vm_error(vm, "map_file: .write must be a Bool, not %s", kp_a(kp_value_type_name(vm, wv)));
    const char *path = ((KpString *)p.p)->data;
    bool write = wv.i != 0;
    int fd = open(path, write ? O_RDWR : O_RDONLY);
    if (fd < 0) return kp_vm_error(vm, "map_file: cannot open '%s': %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return kp_vm_error(vm, "map_file: cannot stat '%s': %s", path, strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return kp_vm_error(vm, "map_file: '%s' is not a regular file", path);
    }
    void *data = NULL;
    if (st.st_size > 0) {
        data = mmap(NULL, (size_t)st.st_size, write ? PROT_READ | PROT_WRITE : PROT_READ, write ? MAP_SHARED : MAP_PRIVATE, fd, 0);
        if (data == MAP_FAILED) {
            int e = errno;
            close(fd);
            return kp_vm_error(vm, "map_file: cannot map '%s': %s", path, strerror(e));
        }
    }
    close(fd);
    KpHeapAlloc *h = kp_obj_new(vm, vm->ctx, KP_T_HEAP, sizeof(KpHeapAlloc));
    if (!h) {
        if (data) munmap(data, (size_t)st.st_size);
        return false;
    }
    h->data = data;
    h->size = (int64_t)st.st_size;
    h->mapped = 1;
    h->readonly = !write;
    h->align = 4096;
    *out = kp_ptr(KP_T_HEAP, h);
    return true;
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
        heap_unpin(vm, ((KpPin *)o)->buf);
        size = sizeof(KpPin);
        break;
    }
    kp_block_release(&o->h, kp_bin_kind_name(o->bkind));
    kp_free(o->h.alloc, o, size, 16, NULL);
    return true;
}

bool kp_view_tostring(KpVM *vm, KpView *v);

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
    case KP_BK_VIEW: return kp_view_tostring(vm, (KpView *)o);
    case KP_BK_PIN:
        snprintf(buf, sizeof buf, "<Pin of %" PRId64 " bytes>", ((KpPin *)o)->buf->size);
        break;
    default: snprintf(buf, sizeof buf, "<Binary>"); break;
    }
    return kp_buf_add(vm, &vm->scratch, buf, strlen(buf));
}

/* ------------------------------------------------------------ registration */

typedef struct Param {
    const char *name; /* NULL = positional only */
    uint8_t mode;
    KpType *type;
    KpValue def;      /* UNSET = required */
} Param;

static KpValue imm_str(KpVM *vm, const char *s) {
    KpString *str = kp_str_new(vm, vm->meta, s, strlen(s));
    if (!str) {
        vm->init_failed = true;
        return kp_unset();
    }
    str->h.flags |= KP_OF_IMMORTAL;
    return kp_ptr(KP_T_STR, str);
}

static void def(KpVM *vm, const char *name, KpNativeFn fn, KpType *ret, int n, const Param *ps) {
    uint8_t modes[8];
    for (int i = 0; i < n; i++) modes[i] = ps[i].mode;
    KpOverload *ov = kp_func_add_native(vm, name, fn, n, modes, 0, 0);
    if (!ov) return;
    ov->ret = ret;
    for (int i = 0; i < n; i++) {
        if (ps[i].name) {
            ov->params[i].name = kp_intern(vm, ps[i].name, strlen(ps[i].name));
            ov->params[i].named = 1;
        }
        ov->params[i].type = ps[i].type;
        ov->params[i].def = ps[i].def;
        ov->params[i].fast_tag = 255;
    }
}

static KpType *bin_type(KpVM *vm, const char *name, uint8_t tag, uint8_t akind, uint8_t kind) {
    KpType *t = kp_arena_alloc(&vm->meta_arena, sizeof(KpType), 16);
    if (!t) {
        vm->init_failed = true;
        return vm->t_any;
    }
    memset(t, 0, sizeof *t);
    t->kind = kind;
    t->tag = tag;
    t->akind = akind;
    t->name = kp_intern(vm, name, strlen(name));
    /* a named type visible to every program */
    if ((int)vm->ntypes == vm->types_cap) {
        int ncap = vm->types_cap ? vm->types_cap * 2 : 16;
        struct KpNamedType *nt = kp_realloc(vm->meta, vm->types, sizeof(*nt) * (size_t)vm->types_cap, sizeof(*nt) * (size_t)ncap, 8, NULL);
        if (!nt) {
            vm->init_failed = true;
            return t;
        }
        vm->types = nt;
        vm->types_cap = ncap;
    }
    vm->types[vm->ntypes++] = (struct KpNamedType){t->name, t, NULL, NULL};
    return t;
}

#define V KP_PM_VALUE
#define R KP_PM_REF
#define M KP_PM_MUTREF

void kp_binary_register(KpVM *vm) {
    vm->t_float32 = bin_type(vm, "Float32", KP_T_FLOAT, 32, KP_TK_SCALAR);
    vm->t_bin[KP_BK_WRITER] = bin_type(vm, "Writer", KP_T_BIN, KP_BK_WRITER, KP_TK_OPAQUE);
    vm->t_bin[KP_BK_READER] = bin_type(vm, "Reader", KP_T_BIN, KP_BK_READER, KP_TK_OPAQUE);
    vm->t_bin[KP_BK_VIEW] = bin_type(vm, "View", KP_T_BIN, KP_BK_VIEW, KP_TK_OPAQUE);
    vm->t_bin[KP_BK_PIN] = bin_type(vm, "Pin", KP_T_BIN, KP_BK_PIN, KP_TK_OPAQUE);
    KpType *wt = vm->t_bin[KP_BK_WRITER], *rt = vm->t_bin[KP_BK_READER], *ty = vm->t_type, *u = vm->t_unit;
    KpType *any_alloc = vm->t_akind[KP_AK_ANY];
    KpValue little = imm_str(vm, "little"), un = kp_unset();
    Param endian = {"endian", V, NULL, little};

    def(vm, "read_int", b_read_int, NULL, 4, (Param[]){{NULL, V, ty, un}, {NULL, R, NULL, un}, {NULL, V, NULL, un}, endian});
    def(vm, "read_float", b_read_float, vm->t_float, 4, (Param[]){{NULL, V, ty, un}, {NULL, R, NULL, un}, {NULL, V, NULL, un}, endian});
    def(vm, "write_int", b_write_int, u, 5,
        (Param[]){{NULL, V, ty, un}, {NULL, M, NULL, un}, {NULL, V, NULL, un}, {NULL, V, NULL, un}, endian});
    def(vm, "write_float", b_write_float, u, 5,
        (Param[]){{NULL, V, ty, un}, {NULL, M, NULL, un}, {NULL, V, NULL, un}, {NULL, V, NULL, un}, endian});
    def(vm, "bytes", b_bytes, vm->t_heap, 1, (Param[]){{NULL, R, vm->t_string, un}});
    def(vm, "resize", b_resize, u, 2, (Param[]){{NULL, M, vm->t_heap, un}, {NULL, V, NULL, un}});
    def(vm, "alloc", b_alloc_aligned, vm->t_heap, 3, (Param[]){{NULL, R, any_alloc, un}, {NULL, V, NULL, un}, {"align", V, NULL, un}});
    def(vm, "pin", b_pin, vm->t_bin[KP_BK_PIN], 1, (Param[]){{NULL, R, vm->t_heap, un}});
    def(vm, "is_pinned", b_is_pinned, vm->t_bool, 1, (Param[]){{NULL, R, vm->t_heap, un}});
    def(vm, "map_file", b_map_file, vm->t_heap, 3, (Param[]){{NULL, R, NULL, un}, {NULL, R, NULL, un}, {"write", V, NULL, kp_bool(false)}});

    /* Writer */
    def(vm, "init", init_writer0, wt, 1, (Param[]){endian});
    def(vm, "init", init_writer1, wt, 2, (Param[]){{NULL, R, any_alloc, un}, endian});
    static const struct { const char *n; KpNativeFn f; } wfs[] = {
        {"write_u8", b_write_u8}, {"write_u16", b_write_u16}, {"write_u32", b_write_u32}, {"write_u64", b_write_u64},
        {"write_i8", b_write_i8}, {"write_i16", b_write_i16}, {"write_i32", b_write_i32}, {"write_i64", b_write_i64},
        {"write_f32", b_write_f32}, {"write_f64", b_write_f64}, {"write_varint", b_write_varint},
        {"write_svarint", b_write_svarint}, {"write_bytes", b_write_bytes}, {"write_str", b_write_str},
    };
    for (size_t i = 0; i < sizeof wfs / sizeof *wfs; i++)
        def(vm, wfs[i].n, wfs[i].f, u, 2, (Param[]){{NULL, M, wt, un}, {NULL, i == 12 ? R : V, NULL, un}});
    def(vm, "take_bytes", b_take_bytes, vm->t_heap, 1, (Param[]){{NULL, V, wt, un}});
    def(vm, "position", b_position, vm->t_int, 1, (Param[]){{NULL, R, wt, un}});

    /* Reader */
    def(vm, "init", init_reader, rt, 2, (Param[]){{NULL, R, NULL, un}, endian});
    static const struct { const char *n; KpNativeFn f; KpType *ret; } rfs[] = {
        {"read_u8", b_read_u8, NULL}, {"read_u16", b_read_u16, NULL}, {"read_u32", b_read_u32, NULL},
        {"read_u64", b_read_u64, NULL}, {"read_i8", b_read_i8, NULL}, {"read_i16", b_read_i16, NULL},
        {"read_i32", b_read_i32, NULL}, {"read_i64", b_read_i64, NULL}, {"read_f32", b_read_f32, NULL},
        {"read_f64", b_read_f64, NULL}, {"read_varint", b_read_varint, NULL}, {"read_svarint", b_read_svarint, NULL},
        {"read_str", b_read_str, NULL},
    };
    for (size_t i = 0; i < sizeof rfs / sizeof *rfs; i++) def(vm, rfs[i].n, rfs[i].f, rfs[i].ret, 1, (Param[]){{NULL, M, rt, un}});
    def(vm, "read_bytes", b_read_bytes, vm->t_heap, 2, (Param[]){{NULL, M, rt, un}, {NULL, V, NULL, un}});
    def(vm, "skip", b_skip, u, 2, (Param[]){{NULL, M, rt, un}, {NULL, V, NULL, un}});
    def(vm, "seek", b_seek, u, 2, (Param[]){{NULL, M, rt, un}, {NULL, V, NULL, un}});
    def(vm, "position", b_position, vm->t_int, 1, (Param[]){{NULL, R, rt, un}});
    def(vm, "remaining", b_remaining, vm->t_int, 1, (Param[]){{NULL, R, rt, un}});

    kp_view_register(vm);
}
