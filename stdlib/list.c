/*
 * list.c — the list functions: push pop insert remove remove_at has
 * contains index_of slice reverse sort sum min max clear extend.
 *
 * Design.  A list owns its elements.  Functions that change a list take it
 * `$&` and are errors while a for loop iterates over it; functions that
 * move elements inside it (insert, remove_at, reverse, sort, clear) renew
 * its storage block, so a reference to an element taken before is
 * reported as stale rather than silently seeing another element.
 * `push`, `insert` and `extend` move their values in; `pop`, `remove_at`
 * move one out.  `slice` makes a new list of clones.
 *
 * `sort` is a stable merge sort (like Rust's slice::sort and Python's
 * list.sort) over an index permutation, so the comparison may call script
 * code — a `less (a: &T, b: &T) -> Bool` overload, or the function given
 * as second argument — with references to the elements, which stay in
 * place until every comparison is done; the list is locked meanwhile.
 * Int, Float, String and Bool elements are ordered natively.
 */
#include <inttypes.h>
#include <math.h>
#include <string.h>

#include "lib.h"

static inline bool check_elem(KpVM *vm, const char *fn, KpList *l, KpValue *v) {
    if (l->elem && !kp_type_fits(l->elem, v)) {
        const char *why;
        if (!kp_type_coerce(vm, l->elem, v, &why))
            return kp_vm_error(vm, "%s: the list holds %s, but the value is %s", fn, l->elem->name, kp_value_type_name(vm, *v));
    }
    if (v->tag == KP_T_REF && (KpValue *)v->p >= vm->stack && (KpValue *)v->p < vm->stack_end)
        return kp_vm_error(vm, "%s: a reference to a local variable cannot be stored in a list: it could outlive the variable; keep the variable with the list first", fn);
    return true;
}

static bool b_push(KpVM *vm, KpValue *a, int n, KpValue *out) {
    (void)n;
    KpList *l = kp_lib_list(vm, "push", a, 0, true);
    if (!l) return false;
    KpValue v = a[1];
    if (!check_elem(vm, "push", l, &v)) return false;
    a[1] = kp_unset();
    *out = kp_unit();
    return kp_list_push(vm, l, v); /* it drops v when it fails */
}

static bool b_pop(KpVM *vm, KpValue *a, int n, KpValue *out) {
    (void)n;
    KpList *l = kp_lib_list(vm, "pop", a, 0, true);
    if (!l) return false;
    if (!l->len) return kp_vm_error(vm, "pop from an empty list");
    *out = l->items[--l->len];
    kp_block_renew(&l->h, "an element popped from its list");
    return true;
}

static bool index_arg(KpVM *vm, const char *fn, KpValue *a, int i, uint32_t len, bool end_ok, int64_t *out) {
    if (!kp_lib_int(vm, fn, a, i, out)) return false;
    if (*out < 0 || *out > (int64_t)len || (!end_ok && *out == (int64_t)len))
        return kp_vm_error(vm, "%s: index %" PRId64 " out of range for a list of length %u", fn, *out, len);
    return true;
}

/* insert(xs, i, v): v moves in at index i (0..len). */
static bool b_insert(KpVM *vm, KpValue *a, int n, KpValue *out) {
    (void)n;
    KpList *l = kp_lib_list(vm, "insert", a, 0, true);
    int64_t i;
    if (!l || !index_arg(vm, "insert", a, 1, l->len, true, &i)) return false;
    KpValue v = a[2];
    if (!check_elem(vm, "insert", l, &v)) return false;
    a[2] = kp_unset();
    if (!kp_list_push(vm, l, v)) return false; /* it dropped v */
    memmove(&l->items[i + 1], &l->items[i], sizeof(KpValue) * (l->len - 1 - (uint32_t)i));
    l->items[i] = v;
    kp_block_renew(&l->h, "an element moved by insert");
    *out = kp_unit();
    return true;
}

/* remove_at(xs, i) -> T: the element at i, moved out. */
static bool b_remove_at(KpVM *vm, KpValue *a, int n, KpValue *out) {
    (void)n;
    KpList *l = kp_lib_list(vm, "remove_at", a, 0, true);
    int64_t i;
    if (!l || !index_arg(vm, "remove_at", a, 1, l->len, false, &i)) return false;
    *out = l->items[i];
    kp_block_renew(&l->h, "an element removed from its list");
    memmove(&l->items[i], &l->items[i + 1], sizeof(KpValue) * (l->len - (uint32_t)i - 1));
    l->len--;
    return true;
}

/* Finds v in l: *at is its first index or -1; false on an error (values
 * nested too deeply to compare). */
static bool find_value(KpVM *vm, KpList *l, KpValue v, int64_t *at) {
    v = kp_deref(v);
    *at = -1;
    for (uint32_t i = 0; i < l->len; i++) {
        bool eq;
        if (!kp_equal_checked(vm, kp_deref(l->items[i]), v, &eq)) return false;
        if (eq) { *at = i; return true; }
    }
    return true;
}

static bool b_contains(KpVM *vm, KpValue *a, int n, KpValue *out) {
    (void)n;
    KpList *l = kp_lib_list(vm, "contains", a, 0, false);
    if (!l) return false;
    int64_t at;
    if (!find_value(vm, l, a[1], &at)) return false;
    *out = kp_bool(at >= 0);
    return true;
}

static bool b_index_of(KpVM *vm, KpValue *a, int n, KpValue *out) {
    (void)n;
    KpList *l = kp_lib_list(vm, "index_of", a, 0, false);
    if (!l) return false;
    int64_t at;
    if (!find_value(vm, l, a[1], &at)) return false;
    *out = kp_int(at);
    return true;
}

/* slice(xs, from, to) -> List#(T): clones of elements from..to (exclusive). */
static bool b_slice(KpVM *vm, KpValue *a, int n, KpValue *out) {
    (void)n;
    KpList *l = kp_lib_list(vm, "slice", a, 0, false);
    int64_t x, y;
    if (!l || !kp_lib_int(vm, "slice", a, 1, &x) || !kp_lib_int(vm, "slice", a, 2, &y)) return false;
    if (x < 0 || y < x || y > (int64_t)l->len)
        return kp_vm_error(vm, "slice(%" PRId64 ", %" PRId64 ") out of range for a list of length %u", x, y, l->len);
    KpValue rv;
    KpList *r = kp_lib_new_list(vm, (uint32_t)(y - x), &rv);
    if (!r) return false;
    r->elem = l->elem;
    for (int64_t i = x; i < y; i++) {
        if (!kp_clone(vm, kp_deref(l->items[i]), &r->items[r->len])) {
            kp_drop(vm, rv);
            return false;
        }
        r->len++;
    }
    *out = rv;
    return true;
}

static bool b_reverse(KpVM *vm, KpValue *a, int n, KpValue *out) {
    (void)n;
    KpList *l = kp_lib_list(vm, "reverse", a, 0, true);
    if (!l) return false;
    for (uint32_t i = 0, j = l->len; i + 1 < j; i++, j--) {
        KpValue t = l->items[i];
        l->items[i] = l->items[j - 1];
        l->items[j - 1] = t;
    }
    if (l->len > 1) kp_block_renew(&l->h, "an element moved by reverse");
    *out = kp_unit();
    return true;
}

static bool b_clear(KpVM *vm, KpValue *a, int n, KpValue *out) {
    (void)n;
    KpList *l = kp_lib_list(vm, "clear", a, 0, true);
    if (!l) return false;
    bool ok = true;
    uint32_t len = l->len;
    l->len = 0;
    if (len) kp_block_renew(&l->h, "an element of a cleared list");
    for (uint32_t i = 0; i < len; i++)
        if (!kp_drop(vm, l->items[i])) ok = false;
    *out = kp_unit();
    return ok;
}

/* extend(xs, ys): ys's elements move to the end of xs; ys is used up. */
static bool b_extend(KpVM *vm, KpValue *a, int n, KpValue *out) {
    (void)n;
    KpList *l = kp_lib_list(vm, "extend", a, 0, true);
    KpList *m = l ? kp_lib_list(vm, "extend", a, 1, false) : NULL;
    if (!m) return false;
    if (m == l) return kp_vm_error(vm, "extend of a list with itself");
    for (uint32_t i = 0; i < m->len; i++)
        if (!check_elem(vm, "extend", l, &m->items[i])) return false;
    *out = kp_unit();
    uint32_t k = 0;
    bool ok = true;
    for (; k < m->len; k++)
        if (!kp_list_push(vm, l, m->items[k])) { k++; ok = false; break; } /* it dropped that one */
    /* what was not moved stays in ys, which the VM drops after the call */
    if (k && k < m->len) memmove(m->items, m->items + k, sizeof(KpValue) * (m->len - k));
    m->len -= k;
    return ok;
}

/* sum(xs): the sum of the numbers (0 for an empty list); Int overflow is an error. */
static bool b_sum(KpVM *vm, KpValue *a, int n, KpValue *out) {
    (void)n;
    KpList *l = kp_lib_list(vm, "sum", a, 0, false);
    if (!l) return false;
    int64_t si = 0;
    double sf = 0;
    bool is_float = false;
    for (uint32_t i = 0; i < l->len; i++) {
        KpValue v = kp_deref(l->items[i]);
        if (v.tag == KP_T_INT || KP_IS_SIZED_INT(v.tag)) {
            if (is_float) sf += (double)v.i;
            else if (__builtin_add_overflow(si, v.i, &si)) return kp_vm_error(vm, "integer overflow in sum");
        } else if (v.tag == KP_T_FLOAT) {
            if (!is_float) { is_float = true; sf = (double)si; }
            sf += v.f;
        } else {
            return kp_vm_error(vm, "sum: element %u is %s, not a number", i, kp_a(kp_value_type_name(vm, v)));
        }
    }
    *out = is_float ? kp_float(sf) : kp_int(si);
    return true;
}

static bool list_extreme(KpVM *vm, KpValue *a, KpValue *out, bool want_min) {
    const char *fn = want_min ? "min" : "max";
    KpList *l = kp_lib_list(vm, fn, a, 0, false);
    if (!l) return false;
    if (!l->len) return kp_vm_error(vm, "%s of an empty list", fn);
    KpValue best = kp_deref(l->items[0]);
    for (uint32_t i = 1; i < l->len; i++) {
        KpValue v = kp_deref(l->items[i]);
        bool lt;
        if (!kp_lib_less(vm, fn, want_min ? v : best, want_min ? best : v, &lt)) return false;
        if (lt) best = v;
    }
    return kp_clone(vm, best, out);
}
static bool b_min_list(KpVM *vm, KpValue *a, int n, KpValue *out) { (void)n; return list_extreme(vm, a, out, true); }
static bool b_max_list(KpVM *vm, KpValue *a, int n, KpValue *out) { (void)n; return list_extreme(vm, a, out, false); }

/* ------------------------------------------------------------ sort */

typedef struct SortCtx {
    KpVM *vm;
    KpList *l;
    KpValue fn;     /* the less function, or UNSET for the native order */
    bool failed;
} SortCtx;

static bool less_at(SortCtx *s, uint32_t i, uint32_t j, bool *lt) {
    KpVM *vm = s->vm;
    KpValue *x = &s->l->items[i], *y = &s->l->items[j];
    if (s->fn.tag == KP_T_UNSET) return kp_lib_less(vm, "sort", *x, *y, lt);
    KpValue args[2];
    args[0] = x->tag == KP_T_REF ? *x : kp_make_ref(vm, x, &s->l->h, KP_VF_ELEM);
    args[1] = y->tag == KP_T_REF ? *y : kp_make_ref(vm, y, &s->l->h, KP_VF_ELEM);
    if (args[0].tag != KP_T_REF || args[1].tag != KP_T_REF) return false; /* out of memory */
    KpValue r;
    if (!kp_vm_call_value(vm, s->fn, args, 2, &r)) return false;
    if (r.tag != KP_T_BOOL) {
        kp_vm_error(vm, "sort: the less function returned %s, not a Bool", kp_a(kp_value_type_name(vm, r)));
        kp_drop(vm, r);
        return false;
    }
    *lt = r.i != 0;
    return true;
}

/* Merge sort of idx[0..n) using tmp; stable (ties keep their order). */
static bool merge_sort(SortCtx *s, uint32_t *idx, uint32_t *tmp, uint32_t n) {
    if (n < 2) return true;
    if (n <= 8) { /* insertion sort: stable */
        for (uint32_t i = 1; i < n; i++) {
            uint32_t v = idx[i], j = i;
            while (j > 0) {
                bool lt;
                if (!less_at(s, v, idx[j - 1], &lt)) return false;
                if (!lt) break;
                idx[j] = idx[j - 1];
                j--;
            }
            idx[j] = v;
        }
        return true;
    }
    uint32_t h = n / 2;
    if (!merge_sort(s, idx, tmp, h) || !merge_sort(s, idx + h, tmp, n - h)) return false;
    bool lt;
    if (!less_at(s, idx[h], idx[h - 1], &lt)) return false;
    if (!lt) return true; /* already in order */
    memcpy(tmp, idx, sizeof(uint32_t) * h);
    uint32_t i = 0, j = h, k = 0;
    while (i < h && j < n) {
        if (!less_at(s, idx[j], tmp[i], &lt)) return false;
        idx[k++] = lt ? idx[j++] : tmp[i++];
    }
    while (i < h) idx[k++] = tmp[i++];
    return true;
}

/* The fast path of the native order: a list of only Strings or only Ints
 * (no references) is sorted in place by a stable merge sort of the values
 * themselves with the comparison inlined — no script code can run, so no
 * index permutation is needed.  tmp holds n/2 + 1 values. */
static inline bool str_lt(const KpValue *x, const KpValue *y) {
    const KpString *s = x->p, *t = y->p;
    uint32_t n = s->len < t->len ? s->len : t->len;
    int c = memcmp(s->data, t->data, n);
    return c < 0 || (c == 0 && s->len < t->len);
}
static inline bool int_lt(const KpValue *x, const KpValue *y) { return x->i < y->i; }

#define DEFINE_VALUE_SORT(NAME, LT)                                              \
    static void NAME(KpValue *v, KpValue *tmp, uint32_t n) {                     \
        if (n <= 12) {                                                           \
            for (uint32_t i = 1; i < n; i++) {                                   \
                KpValue x = v[i];                                                \
                uint32_t j = i;                                                  \
                while (j > 0 && LT(&x, &v[j - 1])) { v[j] = v[j - 1]; j--; }     \
                v[j] = x;                                                        \
            }                                                                    \
            return;                                                              \
        }                                                                        \
        uint32_t h = n / 2;                                                      \
        NAME(v, tmp, h);                                                         \
        NAME(v + h, tmp, n - h);                                                 \
        if (!LT(&v[h], &v[h - 1])) return; /* already in order */               \
        memcpy(tmp, v, sizeof(KpValue) * h);                                     \
        uint32_t i = 0, j = h, k = 0;                                            \
        while (i < h && j < n) v[k++] = LT(&v[j], &tmp[i]) ? v[j++] : tmp[i++];  \
        while (i < h) v[k++] = tmp[i++];                                         \
    }
DEFINE_VALUE_SORT(sort_strings, str_lt)
DEFINE_VALUE_SORT(sort_ints, int_lt)

/* 1: sorted by the fast path; 0: not a list it takes; -1: out of memory */
static int sort_fast(KpVM *vm, KpList *l) {
    uint8_t tag = l->items[0].tag;
    if (tag != KP_T_STR && tag != KP_T_INT) return 0;
    for (uint32_t i = 1; i < l->len; i++)
        if (l->items[i].tag != tag) return 0;
    size_t bytes = sizeof(KpValue) * (l->len / 2 + 1);
    KpValue *tmp = kp_alloc(vm->host, bytes, 16, NULL);
    if (!tmp) return kp_oom_error(vm, vm->host, bytes), -1;
    if (tag == KP_T_STR) sort_strings(l->items, tmp, l->len);
    else sort_ints(l->items, tmp, l->len);
    kp_free(vm->host, tmp, bytes, 16, NULL);
    kp_block_renew(&l->h, "an element moved by sort");
    return 1;
}

static bool do_sort(KpVM *vm, KpList *l, KpValue fn) {
    if (l->len < 2) return true;
    if (fn.tag == KP_T_UNSET) {
        int r = sort_fast(vm, l);
        if (r) return r > 0;
    }
    SortCtx s = {vm, l, fn, false};
    if (fn.tag == KP_T_UNSET) {
        KpValue first = kp_deref(l->items[0]);
        if (first.tag == KP_T_RECORD || first.tag == KP_T_LIST || first.tag == KP_T_MAP) {
            KpFunc *f = kp_func_get(vm, kp_intern(vm, "less", 4), false);
            if (!f)
                return kp_vm_error(vm, "sort: %s has no order; declare less (a: &%s, b: &%s) -> Bool or pass a less function",
                                   kp_value_type_name(vm, first), kp_value_type_name(vm, first), kp_value_type_name(vm, first));
            s.fn = kp_ptr(KP_T_FUNC, f);
        }
    }
    size_t bytes = sizeof(uint32_t) * l->len;
    uint32_t *idx = kp_alloc(vm->host, bytes * 2, 8, NULL);
    if (!idx) return kp_oom_error(vm, vm->host, bytes * 2);
    uint32_t *tmp = idx + l->len;
    for (uint32_t i = 0; i < l->len; i++) idx[i] = i;
    uint32_t len = l->len;
    l->h.lock++;
    bool ok = merge_sort(&s, idx, tmp, len);
    l->h.lock--;
    if (ok) {
        KpValue *items = kp_alloc(vm->host, sizeof(KpValue) * len, 16, NULL);
        if (!items) {
            ok = kp_oom_error(vm, vm->host, sizeof(KpValue) * len);
        } else {
            for (uint32_t i = 0; i < len; i++) items[i] = l->items[idx[i]];
            memcpy(l->items, items, sizeof(KpValue) * len);
            kp_free(vm->host, items, sizeof(KpValue) * len, 16, NULL);
            kp_block_renew(&l->h, "an element moved by sort");
        }
    }
    kp_free(vm->host, idx, bytes * 2, 8, NULL);
    return ok;
}

static bool b_sort(KpVM *vm, KpValue *a, int n, KpValue *out) {
    (void)n;
    KpList *l = kp_lib_list(vm, "sort", a, 0, true);
    if (!l) return false;
    *out = kp_unit();
    return do_sort(vm, l, kp_unset());
}

static bool b_sort_by(KpVM *vm, KpValue *a, int n, KpValue *out) {
    (void)n;
    KpList *l = kp_lib_list(vm, "sort", a, 0, true);
    if (!l) return false;
    KpValue f = kp_deref(a[1]);
    if (f.tag != KP_T_FUNC && !(f.tag == KP_T_RECORD && ((KpRecord *)f.p)->type->closure))
        return kp_vm_error(vm, "argument 2 of 'sort' must be a less function, but it is %s", kp_value_type_name(vm, f));
    *out = kp_unit();
    return do_sort(vm, l, f);
}

const KpBuiltin kp_builtins_list[] = {
    {"push", b_push, "xs: $&List#(T), value: T", "()", KP_BF_STORES},
    {"pop", b_pop, "xs: $&List#(T)", "T", 0},
    {"insert", b_insert, "xs: $&List#(T), i: Int, value: T", "()", 0},
    {"remove_at", b_remove_at, "xs: $&List#(T), i: Int", "T", 0},
    {"remove", b_remove_at, "xs: $&List#(T), i: Int", "T", 0},
    {"contains", b_contains, "xs: &List#(T), value: &T", "Bool", 0},
    {"has", b_contains, "xs: &List#(T), value: &T", "Bool", 0},
    {"index_of", b_index_of, "xs: &List#(T), value: &T", "Int", 0},
    {"slice", b_slice, "xs: &List#(T), from: Int, to: Int", "List#(T)", KP_BF_CTX},
    {"reverse", b_reverse, "xs: $&List#(T)", "()", 0},
    {"sort", b_sort, "xs: $&List#(T)", "()", 0},
    {"sort", b_sort_by, "xs: $&List#(T), less: &Function", "()", 0},
    {"sum", b_sum, "xs: &List#(T)", "T", 0},
    {"min", b_min_list, "xs: &List#(T)", "T", 0},
    {"max", b_max_list, "xs: &List#(T)", "T", 0},
    {"clear", b_clear, "xs: $&List#(T)", "()", 0},
    {"extend", b_extend, "xs: $&List#(T), ys: List#(T)", "()", 0},
    {NULL, NULL, NULL, NULL, 0},
};
