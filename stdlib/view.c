/*
 * view.c — typed views with shape and strides over a buffer.
 *
 * Design.  A View is the tensor layout of the design notes (a parent
 * buffer, a byte offset, a shape and strides): `view(&buf, Float64,
 * .shape = [2, 3])` looks at buf's bytes as a 2×3 row-major matrix;
 * `.offset` (bytes) and `.strides` (elements, one per dimension, may be
 * negative) describe any strided layout.  transpose, slice and reshape make
 * new views of the same bytes, never a copy.  Elements are in the host's
 * byte order (little-endian on every platform Keep runs on today); use a
 * Reader with `.endian` for foreign data.
 *
 * Safety.  Every view's extent is checked against the buffer when it is
 * made (so an access needs only the per-dimension index checks), and every
 * element must be aligned to its size.  A view borrows its buffer (see
 * vm/binary.h): a moved, replaced or out-of-scope buffer is a runtime error
 * at the next use, and the buffer cannot be freed or resized while the view
 * lives.  Writes (`v[i, j] = x`) need a view made from `$&buf`.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "../vm/binary.h"
#include "../vm/vm.h"
#include "builtins.h"

#define UNLIKELY(x) __builtin_expect(!!(x), 0)
#define LIKELY(x) __builtin_expect(!!(x), 1)

static KpView *view_arg(KpVM *vm, KpValue v, const char *fn) {
    KpValue x = kp_deref(v);
    if (x.tag == KP_T_BIN && ((KpBinObj *)x.p)->bkind == KP_BK_VIEW) return x.p;
    kp_vm_error(vm, "%s needs a View, not %s", fn, kp_a(kp_value_type_name(vm, x)));
    return NULL;
}

static const char *shape_text(const int64_t *s, int n, char *buf, size_t cap) {
    size_t len = 0;
    len += (size_t)snprintf(buf + len, cap - len, "[");
    for (int i = 0; i < n && len < cap - 24; i++) len += (size_t)snprintf(buf + len, cap - len, "%s%" PRId64, i ? ", " : "", s[i]);
    snprintf(buf + len, cap - len, "]");
    return buf;
}

/* Reads a list of Ints (1..KP_VIEW_MAXDIM of them). */
static int ints_arg(KpVM *vm, KpValue v, int64_t *out, const char *fn, const char *what) {
    KpValue x = kp_deref(v);
    if (x.tag != KP_T_LIST) {
        kp_vm_error(vm, "%s: %s must be a list of Ints, not %s", fn, what, kp_a(kp_value_type_name(vm, x)));
        return -1;
    }
    KpList *l = x.p;
    if (l->len < 1 || l->len > KP_VIEW_MAXDIM) {
        kp_vm_error(vm, "%s: %s needs 1 to %d values, not %u", fn, what, KP_VIEW_MAXDIM, l->len);
        return -1;
    }
    for (uint32_t i = 0; i < l->len; i++) {
        KpValue e = kp_deref(l->items[i]);
        if (e.tag != KP_T_INT && !(KP_IS_SIZED_INT(e.tag) && e.tag != KP_T_U64)) {
            kp_vm_error(vm, "%s: %s must be a list of Ints, but element %u is %s", fn, what, i, kp_a(kp_value_type_name(vm, e)));
            return -1;
        }
        out[i] = e.i;
    }
    return (int)l->len;
}

/* Checks that every element of v lies inside the buffer and is aligned. */
static bool check_extent(KpVM *vm, KpView *v, const char *fn) {
    int64_t len;
    unsigned char *base = kp_borrow_bytes(vm, &v->src, &len, "View");
    if (!base) return false;
    int64_t es = kp_elem_size[v->elem];
    if (v->offset < 0) return kp_vm_error(vm, "%s: the offset %" PRId64 " is negative", fn, v->offset);
    int64_t lo = 0, hi = 0, count = 1;
    for (int d = 0; d < v->ndim; d++) {
        if (v->shape[d] < 0) return kp_vm_error(vm, "%s: extent %" PRId64 " of dimension %d is negative", fn, v->shape[d], d);
        if (v->shape[d] > ((int64_t)1 << 40) || v->strides[d] > ((int64_t)1 << 40) || v->strides[d] < -((int64_t)1 << 40))
            return kp_vm_error(vm, "%s: the shape or strides are too large", fn);
        count *= v->shape[d];
        if (count > ((int64_t)1 << 40)) return kp_vm_error(vm, "%s: the view is too large", fn);
        int64_t span = (v->shape[d] - 1) * v->strides[d];
        if (span < 0) lo += span;
        else hi += span;
    }
    if (count == 0) return true;
    int64_t first = v->offset + lo * es, last = v->offset + hi * es + es;
    if (first < 0 || last > len) {
        char sh[128], st[128];
        return kp_vm_error(vm, "%s: a View of %s with shape %s, strides %s and offset %" PRId64 " needs bytes %" PRId64 "..%" PRId64
                               ", but the buffer has %" PRId64 " bytes",
                           fn, kp_elem_name[v->elem], shape_text(v->shape, v->ndim, sh, sizeof sh),
                           shape_text(v->strides, v->ndim, st, sizeof st), v->offset, first, last, len);
    }
    if (((uintptr_t)base + (uintptr_t)v->offset) % (uintptr_t)es)
        return kp_vm_error(vm, "%s: %s elements need %" PRId64 "-byte alignment, but the view starts at an address %" PRIuPTR
                               " bytes past a multiple of %" PRId64 " (offset %" PRId64 ")",
                           fn, kp_elem_name[v->elem], es, ((uintptr_t)base + (uintptr_t)v->offset) % (uintptr_t)es, es, v->offset);
    return true;
}

static void contiguous_strides(KpView *v) {
    int64_t s = 1;
    for (int d = v->ndim; d-- > 0;) {
        v->strides[d] = s;
        s *= v->shape[d];
    }
}

static KpView *view_alloc(KpVM *vm) {
    KpView *v = kp_obj_new(vm, vm->ctx, KP_T_BIN, sizeof(KpView));
    if (v) v->bkind = KP_BK_VIEW;
    return v;
}

static bool view_fail(KpVM *vm, KpView *v) {
    kp_borrow_end(vm, &v->src);
    kp_block_release(&v->h, NULL);
    kp_free(v->h.alloc, v, sizeof(KpView), 16, NULL);
    return false;
}

/* view(&buf, T, .shape = [...], .offset = 0, .strides = [...]) */
static bool b_view(KpVM *vm, KpValue *a, int n, KpValue *out) {
    (void)n;
    KpValue t = kp_deref(a[1]);
    int e = t.tag == KP_T_TYPE ? kp_elem_of_type(vm, t.p) : -1;
    if (e < 0)
        return kp_vm_error(vm, "view: the element type must be one of Int8 … Int64, UInt8 … UInt64, Float32, Float64, not %s",
                           t.tag == KP_T_TYPE ? kp_type_name(t.p) : kp_a(kp_value_type_name(vm, t)));
    int64_t shape[KP_VIEW_MAXDIM], strides[KP_VIEW_MAXDIM], off;
    int nd = ints_arg(vm, a[2], shape, "view", ".shape");
    if (nd < 0) return false;
    KpValue o = kp_deref(a[3]);
    if (o.tag != KP_T_INT) return kp_vm_error(vm, "view: .offset must be an Int, not %s", kp_a(kp_value_type_name(vm, o)));
    off = o.i;
    KpValue sv = kp_deref(a[4]);
    int ns = -1;
    if (sv.tag != KP_T_UNIT) {
        ns = ints_arg(vm, a[4], strides, "view", ".strides");
        if (ns < 0) return false;
        if (ns != nd) return kp_vm_error(vm, "view: %d strides for %d dimensions (one stride per dimension)", ns, nd);
    }
    KpView *v = view_alloc(vm);
    if (!v) return false;
    if (!kp_borrow_begin(vm, a[0], &v->src, "view", false)) return view_fail(vm, v);
    v->elem = (uint8_t)e;
    v->ndim = (uint8_t)nd;
    v->offset = off;
    memcpy(v->shape, shape, sizeof(int64_t) * (size_t)nd);
    if (ns < 0) contiguous_strides(v);
    else memcpy(v->strides, strides, sizeof(int64_t) * (size_t)nd);
    if (!check_extent(vm, v, "view")) return view_fail(vm, v);
    *out = kp_ptr(KP_T_BIN, v);
    return true;
}

/* A new view of the same buffer as `p`, with p's layout. */
static KpView *derive(KpVM *vm, KpView *p, const char *fn) {
    int64_t len;
    if (!kp_borrow_bytes(vm, &p->src, &len, "View")) return NULL;
    KpView *v = view_alloc(vm);
    if (!v) return NULL;
    v->src = p->src;
    if (v->src.s) kp_str_incref(v->src.s);
    if (v->src.h) kp_heap_count_view(vm, v->src.h, 1);
    v->elem = p->elem;
    v->ndim = p->ndim;
    v->offset = p->offset;
    memcpy(v->shape, p->shape, sizeof v->shape);
    memcpy(v->strides, p->strides, sizeof v->strides);
    (void)fn;
    return v;
}

static bool b_transpose(KpVM *vm, KpValue *a, int n, KpValue *out) {
    (void)n;
    KpView *p = view_arg(vm, a[0], "transpose");
    if (!p) return false;
    KpView *v = derive(vm, p, "transpose");
    if (!v) return false;
    for (int d = 0; d < p->ndim; d++) {
        v->shape[d] = p->shape[p->ndim - 1 - d];
        v->strides[d] = p->strides[p->ndim - 1 - d];
    }
    *out = kp_ptr(KP_T_BIN, v);
    return true;
}

/* slice(&v, .dim = 0, .from = a, .to = b): elements a ≤ i < b of one dimension. */
static bool b_slice(KpVM *vm, KpValue *a, int n, KpValue *out) {
    (void)n;
    KpView *p = view_arg(vm, a[0], "slice");
    if (!p) return false;
    KpValue d = kp_deref(a[1]), f = kp_deref(a[2]), t = kp_deref(a[3]);
    if (d.tag != KP_T_INT || f.tag != KP_T_INT || (t.tag != KP_T_INT && t.tag != KP_T_UNIT))
        return kp_vm_error(vm, "slice: .dim, .from and .to must be Ints");
    if (d.i < 0 || d.i >= p->ndim)
        return kp_vm_error(vm, "slice: dimension %" PRId64 " does not exist (the View has %d dimension%s)", d.i, p->ndim, p->ndim == 1 ? "" : "s");
    int64_t ext = p->shape[d.i], to = t.tag == KP_T_UNIT ? ext : t.i;
    if (f.i < 0 || to < f.i || to > ext)
        return kp_vm_error(vm, "slice: %" PRId64 "..%" PRId64 " is out of range for dimension %" PRId64 " (extent %" PRId64 ")", f.i, to, d.i, ext);
    KpView *v = derive(vm, p, "slice");
    if (!v) return false;
    v->shape[d.i] = to - f.i;
    if (to > f.i) v->offset += f.i * p->strides[d.i] * kp_elem_size[p->elem];
    *out = kp_ptr(KP_T_BIN, v);
    return true;
}

static bool contiguous(const KpView *v) {
    int64_t s = 1;
    for (int d = v->ndim; d-- > 0;) {
        if (v->shape[d] != 1 && v->strides[d] != s) return false;
        s *= v->shape[d];
    }
    return true;
}

static bool b_reshape(KpVM *vm, KpValue *a, int n, KpValue *out) {
    (void)n;
    KpView *p = view_arg(vm, a[0], "reshape");
    if (!p) return false;
    char sh[128], st[128];
    if (!contiguous(p))
        return kp_vm_error(vm, "reshape needs a contiguous View, but this one has shape %s and strides %s",
                           shape_text(p->shape, p->ndim, sh, sizeof sh), shape_text(p->strides, p->ndim, st, sizeof st));
    int64_t shape[KP_VIEW_MAXDIM];
    int nd = ints_arg(vm, a[1], shape, "reshape", "the shape");
    if (nd < 0) return false;
    int64_t have = 1, want = 1;
    for (int d = 0; d < p->ndim; d++) have *= p->shape[d];
    for (int d = 0; d < nd; d++) {
        if (shape[d] < 0) return kp_vm_error(vm, "reshape: extent %" PRId64 " of dimension %d is negative", shape[d], d);
        want *= shape[d];
        if (want > ((int64_t)1 << 40)) return kp_vm_error(vm, "reshape: the shape is too large");
    }
    if (have != want)
        return kp_vm_error(vm, "reshape: shape %s has %" PRId64 " elements, but the View has %" PRId64, shape_text(shape, nd, sh, sizeof sh),
                           want, have);
    KpView *v = derive(vm, p, "reshape");
    if (!v) return false;
    v->ndim = (uint8_t)nd;
    memcpy(v->shape, shape, sizeof(int64_t) * (size_t)nd);
    contiguous_strides(v);
    *out = kp_ptr(KP_T_BIN, v);
    return true;
}

static bool int_list(KpVM *vm, const int64_t *xs, int n, KpValue *out) {
    KpList *l = kp_list_new(vm, (uint32_t)n);
    if (!l) return false;
    for (int i = 0; i < n; i++) l->items[l->len++] = kp_int(xs[i]);
    *out = kp_ptr(KP_T_LIST, l);
    return true;
}

static bool b_shape(KpVM *vm, KpValue *a, int n, KpValue *out) {
    (void)n;
    KpView *v = view_arg(vm, a[0], "shape");
    return v && int_list(vm, v->shape, v->ndim, out);
}

static bool b_strides(KpVM *vm, KpValue *a, int n, KpValue *out) {
    (void)n;
    KpView *v = view_arg(vm, a[0], "strides");
    return v && int_list(vm, v->strides, v->ndim, out);
}

static bool b_is_contiguous(KpVM *vm, KpValue *a, int n, KpValue *out) {
    (void)n;
    KpView *v = view_arg(vm, a[0], "is_contiguous");
    if (!v) return false;
    *out = kp_bool(contiguous(v));
    return true;
}

/* The byte offset of element idx (ndim indices), or -1 with the error. */
static int64_t elem_offset(KpVM *vm, const KpView *v, const int64_t *idx, int ni) {
    if (UNLIKELY(ni != v->ndim)) {
        kp_vm_error(vm, "a View with %d dimension%s needs %d ind%s, not %d", v->ndim, v->ndim == 1 ? "" : "s", v->ndim,
                    v->ndim == 1 ? "ex" : "ices", ni);
        return -1;
    }
    int64_t e = 0;
    for (int d = 0; d < ni; d++) {
        if (UNLIKELY(idx[d] < 0 || idx[d] >= v->shape[d])) {
            char sh[128];
            kp_vm_error(vm, "index %" PRId64 " out of range for dimension %d of a View of shape %s (extent %" PRId64 ")", idx[d], d,
                        shape_text(v->shape, v->ndim, sh, sizeof sh), v->shape[d]);
            return -1;
        }
        e += idx[d] * v->strides[d];
    }
    return v->offset + e * kp_elem_size[v->elem];
}

/* The element of View `vv` at the ni indices `ix` (script values): checks
 * that vv is a View and each index an Int in range, borrows the bytes.
 * Returns the element's address, or NULL with the error raised; *view_out
 * is the view. Shared by v[i, j] reads and writes. */
static unsigned char *view_element(KpVM *vm, KpValue vv, const KpValue *ix, int ni, KpView **view_out) {
    KpValue x = kp_deref(vv);
    if (UNLIKELY(!(x.tag == KP_T_BIN && ((KpBinObj *)x.p)->bkind == KP_BK_VIEW))) {
        kp_vm_error(vm, "only a View takes several indices (v[i, j]), not %s", kp_a(kp_value_type_name(vm, x)));
        return NULL;
    }
    KpView *v = x.p;
    int64_t idx[KP_VIEW_MAXDIM];
    if (ni > KP_VIEW_MAXDIM) {
        kp_vm_error(vm, "a View has at most %d dimensions", KP_VIEW_MAXDIM);
        return NULL;
    }
    for (int i = 0; i < ni; i++) {
        KpValue e = kp_deref(ix[i]);
        if (UNLIKELY(e.tag != KP_T_INT && !(KP_IS_SIZED_INT(e.tag) && e.tag != KP_T_U64))) {
            kp_vm_error(vm, "a View index must be an Int, not %s", kp_a(kp_value_type_name(vm, e)));
            return NULL;
        }
        idx[i] = e.i;
    }
    int64_t len;
    unsigned char *base = kp_borrow_bytes(vm, &v->src, &len, "View");
    if (!base) return NULL;
    int64_t off = elem_offset(vm, v, idx, ni);
    if (off < 0) return NULL;
    *view_out = v;
    return base + off;
}

/* #index(v, i, j, ...): v[i, j, ...] */
static bool b_vindex(KpVM *vm, KpValue *a, int n, KpValue *out) {
    KpView *v;
    unsigned char *p = view_element(vm, a[0], a + 1, n - 1, &v);
    if (!p) return false;
    *out = kp_elem_load(v->elem, p, false);
    return true;
}

/* #setindex(v, value, i, j, ...): v[i, j, ...] = value */
static bool b_vsetindex(KpVM *vm, KpValue *a, int n, KpValue *out) {
    KpView *v;
    unsigned char *p = view_element(vm, a[0], a + 2, n - 2, &v);
    if (!p) return false;
    if (!v->src.mut) return kp_vm_error(vm, "this View is read-only: make it from $&buf to write through it");
    *out = kp_unit();
    return kp_elem_store(vm, v->elem, p, a[1], false, "View");
}

/* The fast paths of v[i, j] (the VINDEX and VSETINDEX instructions, which
 * the compiler emits for bound calls of #index and #setindex).  They take
 * the common case only — a View (or a reference to one), as many Int
 * indices as it has dimensions, each in range, its buffer still there —
 * and otherwise return 0 having done nothing, so the instruction runs the
 * call as CALLS would, with every check and message of b_vindex. */
__attribute__((always_inline)) static inline unsigned char *fast_element(KpVM *vm, const KpValue *view, const KpValue *ix, int ni, KpView **vout) {
    KpValue x = *view;
    if (x.tag == KP_T_REF) {
        /* kp_deref of the usual reference: to a live register */
        KpValue *t = x.p;
        if (LIKELY(!(x.flags & KP_VF_STATIC) && t >= vm->stack && t < vm->stack_end)) {
            if (UNLIKELY(vm->reg_gen[t - vm->stack] != x.aux)) return NULL;
            x = *t;
        }
        if (x.tag == KP_T_REF) x = kp_deref(x);
    }
    if (UNLIKELY(x.tag != KP_T_BIN || ((KpBinObj *)x.p)->bkind != KP_BK_VIEW)) return NULL;
    KpView *v = x.p;
    if (UNLIKELY(ni != v->ndim)) return NULL;
    int64_t e = 0;
    for (int d = 0; d < ni; d++) {
        /* one unsigned compare: a negative index is huge */
        if (UNLIKELY(ix[d].tag != KP_T_INT || (uint64_t)ix[d].i >= (uint64_t)v->shape[d])) return NULL;
        e += ix[d].i * v->strides[d];
    }
    unsigned char *base;
    if (v->src.s) base = (unsigned char *)v->src.s->data;
    else {
        /* the borrow check of kp_borrow_bytes: the reference the view was
         * made from is alive and still refers to the same buffer */
        KpValue b = kp_deref(v->src.ref);
        if (UNLIKELY(b.tag != KP_T_HEAP || b.p != v->src.h || !v->src.h->data)) return NULL;
        base = v->src.h->data;
    }
    *vout = v;
    return base + v->offset + e * (int64_t)kp_elem_size[v->elem];
}

int kp_view_get_fast(KpVM *vm, const KpValue *args, int n, KpValue *out) {
    KpView *v;
    unsigned char *p = fast_element(vm, args, args + 1, n - 1, &v);
    if (!p) return 0;
    if (LIKELY(v->elem == KP_E_F64)) {
        double f;
        memcpy(&f, p, 8);
        *out = kp_float(f);
    } else if (v->elem == KP_E_I64) {
        int64_t x;
        memcpy(&x, p, 8);
        *out = kp_int(x);
    } else {
        *out = kp_elem_load(v->elem, p, false);
    }
    return 1;
}

int kp_view_set_fast(KpVM *vm, const KpValue *args, int n) {
    if (n < 3) return 0;
    KpView *v;
    KpValue val = args[1];
    if (UNLIKELY(val.tag != KP_T_INT && val.tag != KP_T_FLOAT)) return 0;
    unsigned char *p = fast_element(vm, args, args + 2, n - 2, &v);
    if (!p || UNLIKELY(!v->src.mut)) return 0;
    if (LIKELY(v->elem == KP_E_F64 && val.tag == KP_T_FLOAT)) {
        memcpy(p, &val.f, 8);
        return 1;
    }
    if (v->elem == KP_E_I64 && val.tag == KP_T_INT) {
        memcpy(p, &val.i, 8);
        return 1;
    }
    /* conversions and range checks: the store's own (its errors are the
     * general path's too) */
    return kp_elem_store(vm, v->elem, p, val, false, "View") ? 1 : -1;
}

bool kp_view_index(KpVM *vm, KpView *v, KpValue idx, KpValue *out, KpValue *newval) {
    int64_t ix[KP_VIEW_MAXDIM];
    int ni;
    idx = kp_deref(idx);
    if (idx.tag == KP_T_INT || (KP_IS_SIZED_INT(idx.tag) && idx.tag != KP_T_U64)) {
        ix[0] = idx.i;
        ni = 1;
    } else if (idx.tag == KP_T_LIST) {
        KpList *l = idx.p;
        if (l->len > KP_VIEW_MAXDIM) return kp_vm_error(vm, "a View has at most %d dimensions", KP_VIEW_MAXDIM);
        for (uint32_t i = 0; i < l->len; i++) {
            KpValue x = kp_deref(l->items[i]);
            if (x.tag != KP_T_INT && !(KP_IS_SIZED_INT(x.tag) && x.tag != KP_T_U64))
                return kp_vm_error(vm, "a View index must be an Int, not %s", kp_a(kp_value_type_name(vm, x)));
            ix[i] = x.i;
        }
        ni = (int)l->len;
    } else {
        return kp_vm_error(vm, "a View index must be an Int (or several: v[i, j]), not %s", kp_a(kp_value_type_name(vm, idx)));
    }
    int64_t len;
    unsigned char *base = kp_borrow_bytes(vm, &v->src, &len, "View");
    if (!base) return false;
    int64_t off = elem_offset(vm, v, ix, ni);
    if (off < 0) return false;
    if (newval) {
        if (!v->src.mut) return kp_vm_error(vm, "this View is read-only: make it from $&buf to write through it");
        if (!kp_elem_store(vm, v->elem, base + off, *newval, false, "View")) return false;
        *newval = kp_unset();
        return true;
    }
    *out = kp_elem_load(v->elem, base + off, false);
    return true;
}

/* ------------------------------------------------------------ the table */

const KpBuiltin kp_builtins_view[] = {
    {"view", b_view, "buf: &HeapAllocation|String, t: Type, .shape: List#(Int), .offset: Int = 0, .strides: List#(Int)|() = ()",
     "View", KP_BF_CTX | KP_BF_BORROWS | KP_BF_VIEW_TYPED},
    {"transpose", b_transpose, "v: &View", "View", KP_BF_CTX | KP_BF_BORROWS | KP_BF_VIEW_SAME},
    {"slice", b_slice, "v: &View, .dim: Int = 0, .from: Int = 0, .to: Int|() = ()", "View", KP_BF_CTX | KP_BF_BORROWS | KP_BF_VIEW_SAME},
    {"reshape", b_reshape, "v: &View, shape: List#(Int)", "View", KP_BF_CTX | KP_BF_BORROWS | KP_BF_VIEW_SAME},
    {"shape", b_shape, "v: &View", "List#(Int)", KP_BF_CTX},
    {"strides", b_strides, "v: &View", "List#(Int)", KP_BF_CTX},
    {"is_contiguous", b_is_contiguous, "v: &View", "Bool", 0},
    /* v[i, j] and v[i, j] = x (the parser writes these calls) */
    {"#index", b_vindex, "v: &Any, i: Int", "Any", KP_BF_VARIADIC | KP_BF_VINDEX},
    {"#setindex", b_vsetindex, "v: &Any, value: Any, i: Int", "()", KP_BF_VARIADIC | KP_BF_VSETINDEX},
    {NULL, NULL, NULL, NULL, 0},
};
