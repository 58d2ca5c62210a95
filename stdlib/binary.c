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
#include "builtins.h"

#define LIKELY(x) __builtin_expect(!!(x), 1)
#define UNLIKELY(x) __builtin_expect(!!(x), 0)

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
#define HOST_BIG 1
#else
#define HOST_BIG 0
#endif

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
    if (!kp_heap_pin(vm, v.p, "pin", cur_line(vm))) {
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
    if (h->pins) return kp_pin_refuse(vm, h, "resize");
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
    if (UNLIKELY(w->cap - w->len < n || !w->data) && !writer_grow(vm, w, n)) return NULL; /* (no buffer yet: even 0 bytes get one, so p is never NULL + 0) */
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

/* write_file(&system.fs, path, &bytes): a file of exactly these bytes. */
static bool b_write_file_bytes(KpVM *vm, KpValue *a, int n, KpValue *out) {
    (void)n;
    KpValue p = kp_deref(a[1]);
    int64_t len;
    const char *what;
    unsigned char *src = bytes_arg(vm, a[2], "write_file", false, &len, &what);
    if (!src) return false;
    const char *path = ((KpString *)p.p)->data;
    FILE *f = fopen(path, "wb");
    if (!f) return kp_vm_error(vm, "write_file: cannot open '%s': %s", path, strerror(errno));
    bool ok = len == 0 || fwrite(src, 1, (size_t)len, f) == (size_t)len;
    int e = errno;
    if (fclose(f) != 0 && ok) {
        ok = false;
        e = errno;
    }
    *out = kp_unit();
    return ok ? true : kp_vm_error(vm, "write_file: cannot write '%s': %s", path, strerror(e));
}

/* ------------------------------------------------------------ the table */

#define LE ".endian: String = \"little\""

const KpBuiltin kp_builtins_binary[] = {
    {"read_int", b_read_int, "t: Type, buf: &HeapAllocation|String, offset: Int, " LE, "Int", 0},
    {"read_float", b_read_float, "t: Type, buf: &HeapAllocation|String, offset: Int, " LE, "Float", 0},
    {"write_int", b_write_int, "t: Type, buf: $&HeapAllocation, offset: Int, value: Int|UInt64, " LE, "()", 0},
    {"write_float", b_write_float, "t: Type, buf: $&HeapAllocation, offset: Int, value: Float, " LE, "()", 0},
    {"bytes", b_bytes, "s: &String", "HeapAllocation", KP_BF_CTX},
    {"resize", b_resize, "buf: $&HeapAllocation, size: Int", "()", 0},
    {"alloc", b_alloc_aligned, "from: &Allocator, size: Int, .align: Int", "HeapAllocation", 0},
    {"pin", b_pin, "buf: &HeapAllocation", "Pin", KP_BF_CTX},
    {"is_pinned", b_is_pinned, "buf: &HeapAllocation", "Bool", 0},
    {"write_file", b_write_file_bytes, "fs: &System.Fs, path: &String, bytes: &HeapAllocation", "()", 0},
    {"map_file", b_map_file, "fs: &System.Fs, path: &String, .write: Bool = false", "HeapAllocation", KP_BF_CTX},
    /* Writer */
    {"init", init_writer0, LE, "Writer", KP_BF_CTX | KP_BF_CTOR},
    {"init", init_writer1, "from: &Allocator, " LE, "Writer", KP_BF_CTX | KP_BF_CTOR},
    {"write_u8", b_write_u8, "w: $&Writer, value: Int", "()", 0},
    {"write_u16", b_write_u16, "w: $&Writer, value: Int", "()", 0},
    {"write_u32", b_write_u32, "w: $&Writer, value: Int", "()", 0},
    {"write_u64", b_write_u64, "w: $&Writer, value: Int|UInt64", "()", 0},
    {"write_i8", b_write_i8, "w: $&Writer, value: Int", "()", 0},
    {"write_i16", b_write_i16, "w: $&Writer, value: Int", "()", 0},
    {"write_i32", b_write_i32, "w: $&Writer, value: Int", "()", 0},
    {"write_i64", b_write_i64, "w: $&Writer, value: Int", "()", 0},
    {"write_f32", b_write_f32, "w: $&Writer, value: Float", "()", 0},
    {"write_f64", b_write_f64, "w: $&Writer, value: Float", "()", 0},
    {"write_varint", b_write_varint, "w: $&Writer, value: Int|UInt64", "()", 0},
    {"write_svarint", b_write_svarint, "w: $&Writer, value: Int", "()", 0},
    {"write_bytes", b_write_bytes, "w: $&Writer, bytes: &HeapAllocation|String", "()", 0},
    {"write_str", b_write_str, "w: $&Writer, s: &String", "()", 0},
    {"take_bytes", b_take_bytes, "w: Writer", "HeapAllocation", KP_BF_CTX},
    {"position", b_position, "w: &Writer", "Int", 0},
    /* Reader */
    {"init", init_reader, "buf: &HeapAllocation|String, " LE, "Reader", KP_BF_CTX | KP_BF_BORROWS | KP_BF_CTOR},
    {"read_u8", b_read_u8, "r: $&Reader", "Int", 0},
    {"read_u16", b_read_u16, "r: $&Reader", "Int", 0},
    {"read_u32", b_read_u32, "r: $&Reader", "Int", 0},
    {"read_u64", b_read_u64, "r: $&Reader", "Int", 0},
    {"read_i8", b_read_i8, "r: $&Reader", "Int", 0},
    {"read_i16", b_read_i16, "r: $&Reader", "Int", 0},
    {"read_i32", b_read_i32, "r: $&Reader", "Int", 0},
    {"read_i64", b_read_i64, "r: $&Reader", "Int", 0},
    {"read_f32", b_read_f32, "r: $&Reader", "Float", 0},
    {"read_f64", b_read_f64, "r: $&Reader", "Float", 0},
    {"read_varint", b_read_varint, "r: $&Reader", "Int", 0},
    {"read_svarint", b_read_svarint, "r: $&Reader", "Int", 0},
    {"read_str", b_read_str, "r: $&Reader", "String", KP_BF_CTX},
    {"read_bytes", b_read_bytes, "r: $&Reader, n: Int", "HeapAllocation", KP_BF_CTX},
    {"skip", b_skip, "r: $&Reader, n: Int", "()", 0},
    {"seek", b_seek, "r: $&Reader, pos: Int", "()", 0},
    {"position", b_position, "r: &Reader", "Int", 0},
    {"remaining", b_remaining, "r: &Reader", "Int", 0},
    {NULL, NULL, NULL, NULL, 0},
};
