/*
 * embed.c — the host's side of include/keep.h: slots, handles, calls into
 * scripts and C functions called by scripts.
 *
 * Design (after Wren's slots and Lua's stack).  The host works on numbered
 * slots.  Outside a C function the slots are the host's own array
 * (vm->hslots, from the host allocator); inside a C function they are a
 * window on the VM stack whose first slots are the function's arguments,
 * already bound to their parameter modes by the VM.  A slot owns its value,
 * exactly like a register: setting it drops the old value.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vm.h"

#if defined(__GNUC__) || defined(__clang__)
#define LIKELY(x) __builtin_expect(!!(x), 1)
#define UNLIKELY(x) __builtin_expect(!!(x), 0)
#else
#define LIKELY(x) (x)
#define UNLIKELY(x) (x)
#endif

struct KpHandle {
    KpValue v;
    struct KpHandle *prev, *next;
};

static void begin(KpVM *vm) {
    kp_tls_vm = vm;
    if (vm->in_cfunc) return;
    vm->status = KP_OK;
    vm->err.len = 0; /* kp_buf_reset, inline */
    if (vm->err.data) vm->err.data[0] = 0;
    vm->err_located = false;
}

static KpValue *slot_at(KpVM *vm, int slot) {
    kp_tls_vm = vm; /* checked references read the current VM */
    if (!vm->api_slots && !vm->in_cfunc) {
        vm->api_slots = vm->hslots;
        vm->api_nslots = vm->nhslots;
    }
    if (slot < 0 || slot >= vm->api_nslots) return NULL;
    return &vm->api_slots[slot];
}

static int arg_error(KpVM *vm, const char *fmt, ...) {
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    kp_buf_reset(&vm->err);
    kp_buf_add(vm, &vm->err, buf, strlen(buf));
    if (!vm->in_cfunc) vm->status = KP_ERR_ARG;
    return KP_ERR_ARG;
}

/* A call that failed for want of memory (the helpers that failed may have
 * said so already; otherwise the message is said here). */
static int failed(KpVM *vm) {
    if (!vm->err.len) kp_buf_printf(vm, &vm->err, "out of memory");
    if (!vm->in_cfunc) vm->status = KP_ERR_RUNTIME;
    return KP_ERR_RUNTIME;
}

#define SLOT(s, v)                                                          \
    KpValue *v = slot_at(vm, s);                                            \
    if (!v) return arg_error(vm, "slot %d does not exist (%d slots)", s, vm->api_nslots)

int kp_slots_ensure(KpVM *vm, int n) {
    begin(vm);
    if (n < 0 || n > 100000) return arg_error(vm, "cannot have %d slots", n);
    if (vm->in_cfunc) {
        if (n <= vm->api_nslots) return KP_OK;
        KpValue *end = vm->api_slots + n;
        if (end + 300 >= vm->stack_end) return arg_error(vm, "no stack space for %d slots", n);
        for (KpValue *p = vm->api_slots + vm->api_nslots; p < end; p++) *p = kp_unset();
        vm->api_nslots = n;
        if (end > vm->native_top) vm->native_top = end;
        return KP_OK;
    }
    if (n > vm->cap_hslots) {
        int ncap = vm->cap_hslots ? vm->cap_hslots : 8;
        while (ncap < n) ncap *= 2;
        KpValue *h = kp_realloc(vm->host, vm->hslots, sizeof(KpValue) * (size_t)vm->cap_hslots,
                                sizeof(KpValue) * (size_t)ncap, 16, NULL);
        if (!h) return failed(vm);
        for (int i = vm->cap_hslots; i < ncap; i++) h[i] = kp_unset();
        vm->hslots = h;
        vm->cap_hslots = ncap;
    }
    if (n > vm->nhslots) vm->nhslots = n;
    vm->api_slots = vm->hslots;
    vm->api_nslots = vm->nhslots;
    return KP_OK;
}

int kp_slot_count(KpVM *vm) {
    slot_at(vm, 0);
    return vm->api_nslots;
}

static int set(KpVM *vm, int slot, KpValue v) {
    KpValue *s = slot_at(vm, slot);
    if (!s) {
        kp_drop(vm, v);
        return arg_error(vm, "slot %d does not exist (%d slots)", slot, vm->api_nslots);
    }
    KpValue old = *s;
    *s = v;
    if (KP_NEEDS_DROP(old) && !kp_drop(vm, old)) return KP_ERR_RUNTIME;
    return KP_OK;
}

int kp_set_unit(KpVM *vm, int slot) { return set(vm, slot, kp_unit()); }
int kp_set_bool(KpVM *vm, int slot, bool v) { return set(vm, slot, kp_bool(v)); }
int kp_set_int(KpVM *vm, int slot, int64_t v) {
    /* fast path (a C function's result, a call's argument): a slot of the
     * current window whose old value owns nothing */
    KpValue *s = vm->api_slots;
    if (LIKELY(s && (unsigned)slot < (unsigned)vm->api_nslots && !KP_NEEDS_DROP(s[slot]))) {
        s[slot] = kp_int(v);
        return KP_OK;
    }
    return set(vm, slot, kp_int(v));
}
int kp_set_float(KpVM *vm, int slot, double v) { return set(vm, slot, kp_float(v)); }

int kp_set_string(KpVM *vm, int slot, const char *bytes, size_t len) {
    begin(vm);
    if (!slot_at(vm, slot)) return arg_error(vm, "slot %d does not exist", slot);
    KpString *s = kp_str_new(vm, vm->ctx, bytes ? bytes : "", bytes ? len : 0);
    if (!s) return failed(vm);
    return set(vm, slot, kp_ptr(KP_T_STR, s));
}

int kp_new_list(KpVM *vm, int slot) {
    begin(vm);
    if (!slot_at(vm, slot)) return arg_error(vm, "slot %d does not exist", slot);
    KpList *l = kp_list_new(vm, 0);
    if (!l) return failed(vm);
    return set(vm, slot, kp_ptr(KP_T_LIST, l));
}

int kp_new_map(KpVM *vm, int slot) {
    begin(vm);
    if (!slot_at(vm, slot)) return arg_error(vm, "slot %d does not exist", slot);
    KpMap *m = kp_map_new(vm);
    if (!m) return failed(vm);
    return set(vm, slot, kp_ptr(KP_T_MAP, m));
}

static KpType *find_type(KpVM *vm, const char *name) {
    const char *in = kp_intern(vm, name, strlen(name));
    for (uint32_t i = vm->ntypes; i-- > 0;)
        if (vm->types[i].name == in && vm->types[i].type) return vm->types[i].type;
    return NULL;
}

int kp_new_record(KpVM *vm, int slot, const char *type_name) {
    begin(vm);
    if (!slot_at(vm, slot)) return arg_error(vm, "slot %d does not exist", slot);
    KpType *t = type_name ? find_type(vm, type_name) : NULL;
    if (!t || t->kind != KP_TK_RECORD) return arg_error(vm, "no record type '%s' is declared at top level", type_name ? type_name : "");
    KpRecord *r = kp_record_new(vm, t);
    if (!r) return failed(vm);
    for (uint32_t i = 0; i < t->nfields; i++)
        if (t->defaults[i].tag != KP_T_UNSET && !kp_clone(vm, t->defaults[i], &r->f[i])) {
            kp_drop(vm, kp_ptr(KP_T_RECORD, r));
            return failed(vm);
        }
    return set(vm, slot, kp_ptr(KP_T_RECORD, r));
}

/* Takes a slot's value for moving into a container. */
/* Is the value in `slot` the container `c` itself?  (Putting a container
 * into itself would make a cycle that nothing frees.) */
static bool is_itself(KpVM *vm, int slot, KpValue c) {
    KpValue *s = slot_at(vm, slot);
    return s && KP_IS_MOVABLE(*s) && s->p == c.p;
}

static int take(KpVM *vm, int slot, KpValue *out) {
    SLOT(slot, s);
    KpValue v = *s;
    if (v.tag == KP_T_UNSET || v.tag == KP_T_MOVED) return arg_error(vm, "slot %d is empty", slot);
    if (v.tag == KP_T_REF) {
        KpValue t = kp_deref(v);
        if (KP_IS_MOVABLE(t)) return arg_error(vm, "slot %d holds a reference: copy the value first", slot);
        if (t.tag == KP_T_STR) kp_str_incref(t.p);
        *out = t;
        return KP_OK;
    }
    *s = kp_unset();
    *out = v;
    return KP_OK;
}

static KpValue target(KpVM *vm, int slot, KpTag tag) {
    KpValue *s = slot_at(vm, slot);
    if (!s) return kp_unset();
    KpValue v = *s;
    if (v.tag == KP_T_REF && !(v.flags & (KP_VF_MUT | KP_VF_PLACE))) return kp_unset(); /* read-only */
    v = kp_deref(v);
    return v.tag == tag ? v : kp_unset();
}

int kp_list_append(KpVM *vm, int list_slot, int value_slot) {
    begin(vm);
    KpValue l = target(vm, list_slot, KP_T_LIST);
    if (l.tag != KP_T_LIST) return arg_error(vm, "slot %d does not hold a list (or holds a read-only reference)", list_slot);
    if (((KpObj *)l.p)->lock) return arg_error(vm, "the list is being iterated");
    if (is_itself(vm, value_slot, l)) return arg_error(vm, "cannot append a list to itself");
    KpValue v;
    int rc = take(vm, value_slot, &v);
    if (rc) return rc;
    KpList *list = l.p;
    if (list->elem) {
        const char *why;
        if (!kp_type_coerce(vm, list->elem, &v, &why)) {
            kp_drop(vm, v);
            return arg_error(vm, "the list holds %s", list->elem->name);
        }
    }
    return kp_list_push(vm, list, v) ? KP_OK : failed(vm);
}

int kp_map_set(KpVM *vm, int map_slot, int key_slot, int value_slot) {
    begin(vm);
    KpValue m = target(vm, map_slot, KP_T_MAP);
    if (m.tag != KP_T_MAP) return arg_error(vm, "slot %d does not hold a map", map_slot);
    if (is_itself(vm, value_slot, m)) return arg_error(vm, "cannot put a map into itself");
    SLOT(key_slot, ks);
    KpValue k;
    if (!kp_clone(vm, kp_deref(*ks), &k)) return failed(vm);
    KpValue v;
    int rc = take(vm, value_slot, &v);
    if (rc) { kp_drop(vm, k); return rc; }
    return kp_map_put(vm, m.p, k, v) ? KP_OK : failed(vm);
}

static KpValue *field_of(KpVM *vm, KpValue rec, const char *name, KpType **ft) {
    KpRecord *r = rec.p;
    const char *in = kp_intern(vm, name, strlen(name));
    for (uint32_t i = 0; i < r->type->nfields; i++)
        if (r->type->fnames[i] == in) {
            if (ft) *ft = r->type->ftypes[i];
            return &r->f[i];
        }
    return NULL;
}

int kp_set_field(KpVM *vm, int record_slot, const char *name, int value_slot) {
    begin(vm);
    KpValue r = target(vm, record_slot, KP_T_RECORD);
    if (r.tag != KP_T_RECORD) return arg_error(vm, "slot %d does not hold a record", record_slot);
    KpType *ft = NULL;
    KpValue *f = field_of(vm, r, name, &ft);
    if (!f) return arg_error(vm, "%s has no field '%s'", ((KpRecord *)r.p)->type->name, name);
    if (is_itself(vm, value_slot, r)) return arg_error(vm, "cannot put a record into its own field");
    KpValue v;
    int rc = take(vm, value_slot, &v);
    if (rc) return rc;
    const char *why;
    if (ft && !kp_type_coerce(vm, ft, &v, &why)) {
        const char *vt = kp_value_type_name(vm, v);
        kp_drop(vm, v);
        return arg_error(vm, "field '%s' is %s, but the value is %s", name, ft->name, vt);
    }
    KpValue old = *f;
    *f = v;
    return KP_NEEDS_DROP(old) && !kp_drop(vm, old) ? KP_ERR_RUNTIME : KP_OK;
}

/* ------------------------------------------------------------ getters */

static KpValue get(KpVM *vm, int slot) {
    KpValue *s = slot_at(vm, slot);
    return s ? kp_deref(*s) : kp_unset();
}

KpKind kp_get_kind(KpVM *vm, int slot) {
    KpValue v = get(vm, slot);
    switch (v.tag) {
    case KP_T_UNSET: case KP_T_MOVED: return KP_KIND_NONE;
    case KP_T_UNIT: return KP_KIND_UNIT;
    case KP_T_BOOL: return KP_KIND_BOOL;
    case KP_T_INT: return KP_KIND_INT;
    case KP_T_FLOAT: return KP_KIND_FLOAT;
    case KP_T_STR: return KP_KIND_STRING;
    case KP_T_LIST: return KP_KIND_LIST;
    case KP_T_MAP: return KP_KIND_MAP;
    case KP_T_RECORD: return KP_KIND_RECORD;
    case KP_T_FUNC: return KP_KIND_FUNCTION;
    case KP_T_TYPE: return KP_KIND_TYPE;
    default: return KP_IS_SIZED_INT(v.tag) ? KP_KIND_INT : KP_KIND_OTHER;
    }
}

const char *kp_get_type_name(KpVM *vm, int slot) {
    KpValue v = get(vm, slot);
    return kp_value_type_name(vm, v);
}

int kp_get_bool(KpVM *vm, int slot, bool *out) {
    KpValue v = get(vm, slot);
    if (v.tag != KP_T_BOOL) return arg_error(vm, "slot %d holds %s, not a Bool", slot, kp_value_type_name(vm, v));
    *out = v.i != 0;
    return KP_OK;
}

static int get_int_slow(KpVM *vm, int slot, int64_t *out);

int kp_get_int(KpVM *vm, int slot, int64_t *out) {
    KpValue *s = vm->api_slots; /* fast path: an Int in the current window */
    if (LIKELY(s && (unsigned)slot < (unsigned)vm->api_nslots && s[slot].tag == KP_T_INT)) {
        *out = s[slot].i;
        return KP_OK;
    }
    return get_int_slow(vm, slot, out);
}

#if defined(__GNUC__) || defined(__clang__)
__attribute__((noinline))
#endif
static int get_int_slow(KpVM *vm, int slot, int64_t *out) {
    KpValue v = get(vm, slot);
    if (v.tag != KP_T_INT && !KP_IS_SIZED_INT(v.tag)) return arg_error(vm, "slot %d holds %s, not an Int", slot, kp_value_type_name(vm, v));
    *out = v.i;
    return KP_OK;
}

int kp_get_float(KpVM *vm, int slot, double *out) {
    KpValue v = get(vm, slot);
    if (v.tag == KP_T_FLOAT) *out = v.f;
    else if (v.tag == KP_T_INT || KP_IS_SIZED_INT(v.tag)) *out = (double)v.i;
    else return arg_error(vm, "slot %d holds %s, not a Float", slot, kp_value_type_name(vm, v));
    return KP_OK;
}

const char *kp_get_string(KpVM *vm, int slot, size_t *len) {
    KpValue v = get(vm, slot);
    if (v.tag != KP_T_STR) return NULL;
    KpString *s = v.p;
    if (len) *len = s->len;
    return s->data;
}

int64_t kp_get_count(KpVM *vm, int slot) {
    KpValue v = get(vm, slot);
    if (v.tag == KP_T_LIST) return ((KpList *)v.p)->len;
    if (v.tag == KP_T_MAP) return ((KpMap *)v.p)->count;
    return -1;
}

static int put_copy(KpVM *vm, int out_slot, KpValue v) {
    if (!slot_at(vm, out_slot)) return arg_error(vm, "slot %d does not exist", out_slot);
    KpValue c;
    if (!kp_clone(vm, v, &c)) return failed(vm);
    return set(vm, out_slot, c);
}

int kp_list_get(KpVM *vm, int list_slot, int64_t index, int out_slot) {
    begin(vm);
    KpValue l = get(vm, list_slot);
    if (l.tag != KP_T_LIST) return arg_error(vm, "slot %d holds %s, not a list", list_slot, kp_value_type_name(vm, l));
    KpList *list = l.p;
    if (index < 0 || (uint64_t)index >= list->len) return arg_error(vm, "index %lld out of range (length %u)", (long long)index, list->len);
    return put_copy(vm, out_slot, list->items[index]);
}

int kp_map_get(KpVM *vm, int map_slot, int key_slot, int out_slot) {
    begin(vm);
    KpValue m = get(vm, map_slot);
    if (m.tag != KP_T_MAP) return arg_error(vm, "slot %d holds %s, not a map", map_slot, kp_value_type_name(vm, m));
    KpMapEntry *e = kp_map_find(m.p, get(vm, key_slot));
    if (!e) return arg_error(vm, "key not found");
    return put_copy(vm, out_slot, e->val);
}

int kp_get_field(KpVM *vm, int record_slot, const char *name, int out_slot) {
    begin(vm);
    KpValue r = get(vm, record_slot);
    if (r.tag != KP_T_RECORD) return arg_error(vm, "slot %d holds %s, not a record", record_slot, kp_value_type_name(vm, r));
    KpValue *f = field_of(vm, r, name, NULL);
    if (!f) return arg_error(vm, "%s has no field '%s'", ((KpRecord *)r.p)->type->name, name);
    if (f->tag == KP_T_UNSET || f->tag == KP_T_MOVED) return arg_error(vm, "field '%s' has no value", name);
    return put_copy(vm, out_slot, *f);
}

int kp_slot_move(KpVM *vm, int from, int to) {
    SLOT(from, f);
    if (!slot_at(vm, to)) return arg_error(vm, "slot %d does not exist", to);
    if (from == to) return KP_OK;
    KpValue v = *f;
    *f = kp_unset();
    return set(vm, to, v);
}

/* ------------------------------------------------------------ calling */

int kp_get_global(KpVM *vm, const char *name, int slot) {
    begin(vm);
    if (!slot_at(vm, slot)) return arg_error(vm, "slot %d does not exist", slot);
    const char *in = kp_intern(vm, name, strlen(name));
    int32_t gi = in ? kp_vm_global_find(vm, in, -1) : -1;
    if (gi >= 0) {
        KpValue v = vm->stack[vm->globals[gi].reg];
        if (v.tag == KP_T_UNSET || v.tag == KP_T_MOVED) return arg_error(vm, "'%s' has no value", name);
        return put_copy(vm, slot, v);
    }
    KpFunc *f = kp_func_get(vm, in, false);
    if (f) return set(vm, slot, kp_ptr(KP_T_FUNC, f));
    KpType *t = find_type(vm, name);
    if (t) return set(vm, slot, kp_ptr(KP_T_TYPE, t));
    return arg_error(vm, "no top-level '%s'", name);
}

static struct KpGlobal *find_global(KpVM *vm, const char *name) {
    const char *in = kp_intern(vm, name, strlen(name));
    int32_t gi = in ? kp_vm_global_find(vm, in, 0) : -1;
    return gi >= 0 ? &vm->globals[gi] : NULL;
}

int kp_get_global_ref(KpVM *vm, const char *name, int slot) {
    begin(vm);
    if (!name) return arg_error(vm, "kp_get_global_ref needs a name");
    if (!slot_at(vm, slot)) return arg_error(vm, "slot %d does not exist", slot);
    struct KpGlobal *g = find_global(vm, name);
    if (!g) return arg_error(vm, "no top-level variable '%s'", name);
    KpValue *r = &vm->stack[g->reg];
    if (r->tag == KP_T_UNSET || r->tag == KP_T_MOVED) return arg_error(vm, "'%s' has no value", name);
    if (r->tag == KP_T_REF) return set(vm, slot, *r); /* a reference variable: the same reference */
    return set(vm, slot, kp_make_ref(vm, r, NULL, KP_VF_MUT));
}

int kp_set_global(KpVM *vm, const char *name, int slot) {
    begin(vm);
    if (!name) return arg_error(vm, "kp_set_global needs a name");
    SLOT(slot, s);
    struct KpGlobal *g = find_global(vm, name);
    if (!g) {
        KpValue dead = *s;
        *s = kp_unset();
        if (KP_NEEDS_DROP(dead)) kp_drop(vm, dead);
        return arg_error(vm, "no top-level variable '%s' (declare it in a script first, e.g. '%s := ...')", name, name);
    }
    KpValue v;
    int rc = take(vm, slot, &v);
    if (rc) return rc;
    const char *why;
    if (g->type && !kp_type_coerce(vm, g->type, &v, &why)) {
        const char *vt = kp_value_type_name(vm, v);
        char tn[128];
        snprintf(tn, sizeof tn, "%s", vt);
        kp_drop(vm, v);
        return arg_error(vm, "'%s' is %s, but the value is %s", name, g->type->name, tn);
    }
    KpValue *r = &vm->stack[g->reg];
    KpValue old = *r;
    *r = v;
    vm->ran_since_finish = true; /* set after kp_vm_finish: kp_vm_free finishes it again */
    return KP_NEEDS_DROP(old) && !kp_drop(vm, old) ? KP_ERR_RUNTIME : KP_OK;
}

int kp_call(KpVM *vm, int fn_slot, int first_arg, int nargs, int result_slot) {
    begin(vm);
    if (vm->in_host_deinit) {
#ifdef KP_DEBUG_API
        fprintf(stderr, "keep: kp_call from a host type's deinit callback\n");
        abort();
#endif
        kp_buf_reset(&vm->err);
        kp_buf_printf(vm, &vm->err, "cannot call a function from a host type's deinit callback: it may not call back into the VM");
        if (!vm->in_cfunc) vm->status = KP_ERR_USAGE;
        return KP_ERR_USAGE;
    }
    SLOT(fn_slot, fs);
    int ns = vm->api_nslots; /* (slot_at made the window current) */
    if ((unsigned)result_slot >= (unsigned)ns) return arg_error(vm, "slot %d does not exist", result_slot);
    if (nargs < 0 || nargs > 250) return arg_error(vm, "bad argument count %d", nargs);
    if (nargs && (first_arg < 0 || first_arg > ns - nargs))
        return arg_error(vm, "argument slots %d..%d do not exist", first_arg, first_arg + nargs - 1);
    /* the arguments go straight to the top of the stack (kp_vm_call_at),
     * unless the call fails before it runs (kp_vm_call_value reports it) */
    KpValue fn = kp_deref(*fs);
    KpValue *top = kp_vm_stack_top(vm);
    bool direct = fn.tag == KP_T_FUNC && top + nargs + 2 < vm->stack_end;
    KpValue argbuf[250];
    KpValue *args = direct ? top + 1 : argbuf;
    for (int i = 0; i < nargs; i++) {
        KpValue *s = &vm->api_slots[first_arg + i];
        if (KP_IS_MOVABLE(*s) || s->tag == KP_T_REF) {
            /* passed like a script variable: by-value parameters move out
             * of the slot, reference parameters borrow it */
            args[i] = kp_ptr(KP_T_REF, s);
            args[i].flags = KP_VF_PLACE | KP_VF_STATIC; /* the host's slot outlives the call */
            if (s->tag == KP_T_REF) args[i] = *s;
        } else {
            args[i] = *s;
            if (s->tag == KP_T_STR) kp_str_incref(s->p);
        }
    }
    KpValue out;
    /* the host slots must not move while the call runs */
    KpValue *save_slots = vm->api_slots;
    int save_n = vm->api_nslots;
    int save_cf = vm->in_cfunc;
    vm->in_cfunc = 0;
    bool ok;
    if (direct) {
        top[0] = fn;
        ok = kp_vm_call_at(vm, top, nargs, &out);
    } else {
        ok = kp_vm_call_value(vm, fn, args, nargs, &out);
    }
    vm->in_cfunc = save_cf;
    vm->api_slots = save_slots;
    vm->api_nslots = save_n;
    if (!ok) return vm->exiting ? KP_EXIT : KP_ERR_RUNTIME;
    KpValue *rs = &vm->api_slots[result_slot];
    if (LIKELY(!KP_NEEDS_DROP(*rs))) { /* set(), without its checks */
        *rs = out;
        return KP_OK;
    }
    return set(vm, result_slot, out);
}

/* ------------------------------------------------------------ handles */

KpHandle *kp_handle_new(KpVM *vm, int slot) {
    begin(vm);
    KpValue v;
    if (take(vm, slot, &v) != KP_OK) return NULL;
    KpHandle *h = kp_alloc(vm->host, sizeof *h, 16, NULL);
    if (!h) {
        kp_drop(vm, v);
        failed(vm);
        return NULL;
    }
    h->v = v;
    h->prev = NULL;
    h->next = vm->handles;
    if (vm->handles) vm->handles->prev = h;
    vm->handles = h;
    return h;
}

int kp_handle_get(KpVM *vm, KpHandle *h, int slot) {
    if (!h) return arg_error(vm, "NULL handle");
    if (!slot_at(vm, slot)) return arg_error(vm, "slot %d does not exist", slot);
    KpValue v = h->v;
    if (KP_IS_MOVABLE(v)) {
        KpValue r = kp_ptr(KP_T_REF, &h->v);
        r.flags = KP_VF_MUT | KP_VF_STATIC; /* valid while the handle lives (see keep.h) */
        return set(vm, slot, r);
    }
    if (v.tag == KP_T_STR) kp_str_incref(v.p);
    return set(vm, slot, v);
}

/* The host's slots that still hold a reference kp_handle_get gave out
 * (only slots can hold one: take() refuses to move a reference anywhere
 * else) are emptied, so that they read as empty, not the freed handle. */
static void forget_refs_to(KpVM *vm, const KpValue *target) {
    for (int i = 0; i < vm->nhslots; i++)
        if (vm->hslots[i].tag == KP_T_REF && vm->hslots[i].p == target) vm->hslots[i] = kp_unset();
    if (vm->api_slots && vm->api_slots != vm->hslots)
        for (int i = 0; i < vm->api_nslots; i++)
            if (vm->api_slots[i].tag == KP_T_REF && vm->api_slots[i].p == target) vm->api_slots[i] = kp_unset();
}

void kp_handle_release(KpVM *vm, KpHandle *h) {
    if (!h) return;
    forget_refs_to(vm, &h->v);
    if (h->prev) h->prev->next = h->next;
    else vm->handles = h->next;
    if (h->next) h->next->prev = h->prev;
    KpValue v = h->v;
    kp_free(vm->host, h, sizeof *h, 16, NULL);
    kp_drop(vm, v);
}

/* ------------------------------------------------------------ C functions */

static bool host_trampoline(KpVM *vm, KpValue *args, int nargs, KpValue *out) {
    KpOverload *ov = vm->cur_native;
    if (vm->par) /* its slots and handles are the VM's, not a worker's */
        return kp_vm_error(vm, "%s is a host function: it cannot run in a parallel worker", ov->func->name);
    KpCFunction fn = (KpCFunction)ov->host_fn;
    KpValue *save_slots = vm->api_slots;
    int save_n = vm->api_nslots;
    KpValue *save_top = vm->native_top;
    vm->api_slots = args;
    vm->api_nslots = nargs > 0 ? nargs : 1;
    if (UNLIKELY(nargs == 0)) {
        args[0] = kp_unset();
        if (args + 1 > vm->native_top) vm->native_top = args + 1;
    } else if (UNLIKELY(args + nargs > vm->native_top)) {
        vm->native_top = args + nargs;
    }
    vm->in_cfunc++;
    vm->err.len = 0; /* kp_buf_reset, inline */
    if (vm->err.data) vm->err.data[0] = 0;
    vm->err_kind = KP_EK_HOST; /* unless a script it calls raises its own */
    int rc = fn(vm, nargs, ov->host_ud);
    vm->in_cfunc--;
    int n = vm->api_nslots;
    vm->api_slots = save_slots;
    vm->api_nslots = save_n;
    vm->native_top = save_top;
    bool ok = true;
    if (rc == KP_OK) {
        /* an error of a nested run or call it made is not the script's */
        vm->status = KP_OK;
    } else {
        char msg[512];
        snprintf(msg, sizeof msg, "%s", vm->err.len ? vm->err.data : "failed");
        kp_buf_reset(&vm->err);
        vm->status = KP_OK;
        /* the error keeps its kind: a script's error passed on stays
         * catchable as what it was, an interrupt stays uncatchable */
        ok = kp_vm_error_kind(vm, vm->err_kind, "%s: %s", ov->func->name, msg);
    }
    /* the result is slot 0, unless it still holds an argument reference;
     * after a failure there is none, and what slot 0 holds stays there for
     * the caller's cleanup of the arguments to drop */
    KpValue r = args[0];
    if (!ok || r.tag == KP_T_REF || r.tag == KP_T_UNSET || r.tag == KP_T_MOVED) r = kp_unit();
    else args[0] = kp_unset();
    *out = r;
    /* slots the function added above its arguments */
    if (LIKELY(n <= nargs)) return ok;
    for (int i = n; i-- > (nargs > 0 ? nargs : 0);) {
        KpValue v = args[i];
        args[i] = kp_unset();
        if (KP_NEEDS_DROP(v)) kp_drop(vm, v);
    }
    return ok;
}

KpOverload *kp_func_host_owner(KpFunc *f) {
    for (uint32_t i = 0; f && i < f->n; i++)
        if (f->ovs[i]->host_fn && !f->ovs[i]->host_overload) return f->ovs[i];
    return NULL;
}

int kp_register_ex(KpVM *vm, const char *name, KpCFunction fn, int nparams, const KpMode *modes, void *ud,
                   unsigned flags) {
    begin(vm);
    if (!name || !*name || !fn) return arg_error(vm, "kp_register needs a name and a function");
    for (const char *p = name; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '_'))
            return arg_error(vm, "'%s' is not a valid function name", name);
    if (nparams > 64) return arg_error(vm, "too many parameters");
    if (flags & ~(unsigned)KP_REG_OVERLOAD) return arg_error(vm, "unknown kp_register flags 0x%x", flags);
    bool overload = (flags & KP_REG_OVERLOAD) != 0;
    KpFunc *f = kp_func_get(vm, kp_intern(vm, name, strlen(name)), false);
    for (uint32_t i = 0; f && i < f->n && !overload; i++) {
        KpOverload *o = f->ovs[i];
        if (o->proto || (!o->native && !o->host_fn)) /* a script function */
            return arg_error(vm, "'%s' is already defined by a script at %s:%u; registering a C function "
                             "of that name would overload it (register with KP_REG_OVERLOAD to mean that)",
                             name, o->file ? o->file : "?", o->line);
        if (o->native && !o->host_fn)
            return arg_error(vm, "'%s' is a built-in function; registering a C function of that name would "
                             "overload it (register with KP_REG_OVERLOAD to mean that)", name);
    }
    uint8_t m[64];
    for (int i = 0; i < nparams; i++) m[i] = modes ? (uint8_t)modes[i] : KP_PM_VALUE;
    KpOverload *ov = nparams < 0 ? kp_func_add_native(vm, name, host_trampoline, 0, NULL, 1, KP_PM_REF)
                                 : kp_func_add_native(vm, name, host_trampoline, nparams, m, 0, 0);
    if (!ov) return arg_error(vm, "out of memory registering '%s'", name);
    ov->host_fn = (void *)fn;
    ov->host_ud = ud;
    ov->host_overload = overload;
    ov->file = "<host>";
    return KP_OK;
}

int kp_register(KpVM *vm, const char *name, KpCFunction fn, int nparams, const KpMode *modes, void *ud) {
    return kp_register_ex(vm, name, fn, nparams, modes, ud, 0);
}

/* ------------------------------------------------------------ host types */

/* Is `name` one of the built-in types? */
static bool builtin_type_name(KpVM *vm, const char *name) {
    KpType *const fixed[] = {vm->t_any, vm->t_int, vm->t_float, vm->t_bool, vm->t_string, vm->t_unit, vm->t_type,
                             vm->t_func, vm->t_list, vm->t_map, vm->t_heap, vm->t_allocator, vm->t_system,
                             vm->t_sysmem, vm->t_sysfs, vm->t_allocstats, vm->t_error, vm->t_float32,
                             vm->t_sysrandom, vm->t_sysenv, vm->t_random};
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
        if (fixed[i] && strcmp(fixed[i]->name, name) == 0) return true;
    for (int i = 0; i < 7; i++) if (vm->t_sized[i] && strcmp(vm->t_sized[i]->name, name) == 0) return true;
    for (int k = 0; k < KP_AK__COUNT; k++) if (vm->t_akind[k] && strcmp(vm->t_akind[k]->name, name) == 0) return true;
    for (size_t i = 0; i < sizeof vm->t_bin / sizeof vm->t_bin[0]; i++)
        if (vm->t_bin[i] && strcmp(vm->t_bin[i]->name, name) == 0) return true;
    return !strcmp(name, "HashMap") || !strcmp(name, "List") || !strcmp(name, "System");
}

KpHostType *kp_define_type(KpVM *vm, const char *name, const KpTypeDef *def) {
    begin(vm);
    if (!name || !def) { arg_error(vm, "kp_define_type needs a name and a KpTypeDef"); return NULL; }
    if (!(name[0] >= 'A' && name[0] <= 'Z')) { arg_error(vm, "a type name starts with a capital letter: '%s'", name); return NULL; }
    for (const char *p = name; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '_')) {
            arg_error(vm, "'%s' is not a valid type name", name);
            return NULL;
        }
    if (def->size > ((size_t)1 << 30)) { arg_error(vm, "a host type's payload is at most 1 GiB"); return NULL; }
    if (find_type(vm, name) || builtin_type_name(vm, name)) { arg_error(vm, "there is already a type '%s'", name); return NULL; }
    if ((int)vm->ntypes == vm->types_cap) {
        int ncap = vm->types_cap ? vm->types_cap * 2 : 16;
        struct KpNamedType *n = kp_realloc(vm->meta, vm->types, sizeof *n * (size_t)vm->types_cap, sizeof *n * (size_t)ncap, 8, NULL);
        if (!n) { arg_error(vm, "out of memory"); return NULL; }
        vm->types = n;
        vm->types_cap = ncap;
    }
    KpType *t = kp_arena_alloc(&vm->meta_arena, sizeof(KpType), 16);
    if (!t) { arg_error(vm, "out of memory"); return NULL; }
    memset(t, 0, sizeof *t);
    t->kind = KP_TK_RECORD;
    t->name = kp_intern(vm, name, strlen(name));
    t->host = true;
    t->host_size = def->size;
    t->host_deinit = def->deinit;
    t->host_ud = def->ud;
    vm->types[vm->ntypes++] = (struct KpNamedType){t->name, t, NULL, NULL};
    for (size_t i = 0; i < def->nmethods; i++) {
        const KpMethod *m = &def->methods[i];
        if (m->nparams < 1 || m->nparams > 64) { arg_error(vm, "method '%s' needs the object as its first parameter", m->name ? m->name : "?"); return NULL; }
        KpMode modes[64];
        for (int j = 0; j < m->nparams; j++) modes[j] = m->modes ? m->modes[j] : j == 0 ? KP_MODE_REF : KP_MODE_VALUE;
        if (kp_register_ex(vm, m->name, m->fn, m->nparams, modes, def->ud, KP_REG_OVERLOAD) != KP_OK) return NULL;
        KpFunc *f = kp_func_get(vm, kp_intern(vm, m->name, strlen(m->name)), false);
        KpOverload *ov = f->ovs[f->n - 1];
        ov->params[0].type = t;
        ov->params[0].fast_tag = 255;
    }
    return (KpHostType *)t;
}

void *kp_new_object(KpVM *vm, int slot, KpHostType *type) {
    begin(vm);
    if (!type) { arg_error(vm, "kp_new_object needs a type"); return NULL; }
    if (!slot_at(vm, slot)) { arg_error(vm, "slot %d does not exist", slot); return NULL; }
    KpRecord *r = kp_host_object_new(vm, (KpType *)type);
    if (!r) return NULL;
    void *payload = KP_HOST_PAYLOAD(r);
    return set(vm, slot, kp_ptr(KP_T_RECORD, r)) == KP_OK ? payload : NULL;
}

void *kp_get_object(KpVM *vm, int slot, KpHostType *type) {
    KpValue v = get(vm, slot);
    if (v.tag != KP_T_RECORD || !type || ((KpRecord *)v.p)->type != (KpType *)type) return NULL;
    return KP_HOST_PAYLOAD((KpRecord *)v.p);
}

int kp_error(KpVM *vm, const char *fmt, ...) {
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    kp_buf_reset(&vm->err);
    kp_buf_add(vm, &vm->err, buf, strlen(buf));
    vm->err_kind = KP_EK_HOST; /* the C function's own error */
    return KP_ERR_RUNTIME;
}

void kp_embed_free(KpVM *vm) {
    while (vm->handles) kp_handle_release(vm, vm->handles);
    for (int i = vm->nhslots; i-- > 0;) {
        KpValue v = vm->hslots[i];
        vm->hslots[i] = kp_unset();
        if (KP_NEEDS_DROP(v)) kp_drop(vm, v);
    }
    if (vm->hslots) kp_free(vm->host, vm->hslots, sizeof(KpValue) * (size_t)vm->cap_hslots, 16, NULL);
    vm->hslots = NULL;
    vm->nhslots = vm->cap_hslots = 0;
}

/* exit(code)'s code while the last run's exit stands (vm->exiting is
 * cleared when the next run starts). */
int kp_vm_exit_code(KpVM *vm) { return vm && vm->exiting ? vm->exit_code : 0; }
