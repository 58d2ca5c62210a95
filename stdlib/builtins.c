/*
 * builtins.c — the core functions every script can call: print, str,
 * len, clone, deinit, int, float, error, assert, #get_fields,
 * #check_cycles, #show.  The other modules: string.c, list.c, map.c,
 * math.c, format.c, io.c, time.c, random.c, memory.c (their tables are
 * listed in registry.c).
 *
 * Natives receive their arguments already bound to their parameter modes
 * (vm.c's bind_args): `&`/`$&` parameters arrive as references (or as an
 * owned temporary when the caller passed one), by-value parameters as
 * owned values that the VM drops after the call unless the native moves
 * them out (setting the slot to UNSET).
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../stdlib/stdlib.h"
#include "builtins.h"

static bool ret_str(KpVM *vm, const char *s, size_t n, KpValue *out) {
    KpString *str = kp_str_new(vm, vm->ctx, s, n);
    if (!str) return false;
    *out = kp_ptr(KP_T_STR, str);
    return true;
}

static bool b_print(KpVM *vm, KpValue *a, int n, KpValue *out) {
    kp_buf_reset(&vm->scratch);
    for (int i = 0; i < n; i++) {
        if (i && !kp_buf_add(vm, &vm->scratch, " ", 1)) return false;
        KpValue v = kp_deref(a[i]);
        if (v.tag == KP_T_MOVED || v.tag == KP_T_UNSET) {
            if (v.tag == KP_T_MOVED)
                return kp_vm_error(vm, "use of a moved value (moved at line %u:%u)", KP_POS_LINE(v.aux), KP_POS_COL(v.aux));
            return kp_vm_error(vm, "print of a value that was never set");
        }
        if (!kp_tostring(vm, v, false)) return false;
    }
    if (!kp_buf_add(vm, &vm->scratch, "\n", 1)) return false;
    vm->write_out(vm->write_ud, vm->scratch.data, vm->scratch.len);
    *out = kp_unit();
    return true;
}

static bool b_str(KpVM *vm, KpValue *a, int n, KpValue *out) {
    (void)n;
    KpValue v = kp_deref(a[0]);
    if (v.tag == KP_T_STR) {
        kp_str_incref(v.p);
        *out = v;
        return true;
    }
    kp_buf_reset(&vm->scratch);
    if (!kp_tostring(vm, v, false)) return false;
    return ret_str(vm, vm->scratch.data ? vm->scratch.data : "", vm->scratch.len, out);
}

static bool b_len(KpVM *vm, KpValue *a, int n, KpValue *out) {
    (void)n;
    KpValue v = kp_deref(a[0]);
    switch (v.tag) {
    case KP_T_STR: *out = kp_int(((KpString *)v.p)->len); return true;
    case KP_T_LIST: *out = kp_int(((KpList *)v.p)->len); return true;
    case KP_T_MAP: *out = kp_int(((KpMap *)v.p)->count); return true;
    default: return kp_vm_error(vm, "len of %s: len works on strings, lists and maps", kp_a(kp_value_type_name(vm, v)));
    }
}

static bool b_clone(KpVM *vm, KpValue *a, int n, KpValue *out) {
    (void)n;
    return kp_clone(vm, a[0], out);
}

static bool b_deinit(KpVM *vm, KpValue *a, int n, KpValue *out) {
    (void)n;
    *out = kp_unit();
    if (a[0].tag != KP_T_REF) return true; /* an owned temporary: dropped after the call */
    KpValue *s = a[0].p;
    KpValue v = *s;
    s->tag = KP_T_MOVED;
    s->aux = 0;
    return kp_drop(vm, v);
}

static bool b_int(KpVM *vm, KpValue *a, int n, KpValue *out) {
    (void)n;
    KpValue v = kp_deref(a[0]);
    switch (v.tag) {
    case KP_T_INT: *out = v; return true;
    case KP_T_FLOAT:
        if (v.f != v.f) return kp_vm_error(vm, "int(nan): NaN has no Int value");
        if (!(v.f >= -9223372036854775808.0 && v.f < 9223372036854775808.0)) {
            char buf[64];
            kp_format_float(v.f, buf, sizeof buf);
            return kp_vm_error(vm, "int(%s): out of the Int range", buf);
        }
        *out = kp_int((int64_t)v.f);
        return true;
    case KP_T_BOOL: *out = kp_int(v.i); return true;
    case KP_T_STR: {
        KpString *s = v.p;
        char *end;
        errno = 0;
        long long x = strtoll(s->data, &end, 10);
        if (!s->len || *end || end != s->data + s->len || errno)
            return kp_vm_error(vm, "int(\"%.40s\"): not an integer", s->data);
        *out = kp_int(x);
        return true;
    }
    default:
        if (KP_IS_SIZED_INT(v.tag)) { *out = kp_int(v.i); return true; }
        return kp_vm_error(vm, "int of %s", kp_a(kp_value_type_name(vm, v)));
    }
}

static bool b_float(KpVM *vm, KpValue *a, int n, KpValue *out) {
    (void)n;
    KpValue v = kp_deref(a[0]);
    if (v.tag == KP_T_FLOAT) { *out = v; return true; }
    if (v.tag == KP_T_INT || KP_IS_SIZED_INT(v.tag)) { *out = kp_float((double)v.i); return true; }
    if (v.tag == KP_T_STR) {
        KpString *s = v.p;
        char *end;
        double d = strtod(s->data, &end);
        if (!s->len || end != s->data + s->len) return kp_vm_error(vm, "float(\"%.40s\"): not a number", s->data);
        *out = kp_float(d);
        return true;
    }
    return kp_vm_error(vm, "float of %s", kp_a(kp_value_type_name(vm, v)));
}

/* error(message): a runtime error of kind "user"; error(e) of an Error
 * raises it again as it was — its kind, message, place and trace. */
static bool b_error(KpVM *vm, KpValue *a, int n, KpValue *out) {
    (void)n;
    (void)out;
    KpValue v = kp_deref(a[0]);
    if (v.tag == KP_T_RECORD && ((KpRecord *)v.p)->type == vm->t_error) {
        KpRecord *r = v.p;
        KpValue *f = r->f;
        bool ok = f[0].tag == KP_T_STR && f[1].tag == KP_T_STR && f[2].tag == KP_T_STR && f[3].tag == KP_T_INT &&
                  f[4].tag == KP_T_INT && f[5].tag == KP_T_LIST;
        KpList *tl = ok ? f[5].p : NULL;
        for (uint32_t i = 0; ok && i < tl->len; i++) ok = tl->items[i].tag == KP_T_STR;
        if (!ok) return kp_vm_error_kind(vm, KP_EK_TYPE, "error(e): e is an Error with a field moved out or of the wrong type");
        KpString *kind = f[0].p, *msg = f[1].p, *file = f[2].p;
        int k = kp_vm_error_kind_of(kind->data, kind->len);
        if (k < 0 || k == KP_EK_INTERRUPT || k == KP_EK_BUDGET) k = KP_EK_USER;
        if (vm->status == KP_ERR_RUNTIME && vm->err.len) return false;
        kp_vm_error_kind(vm, k, "%.*s", (int)msg->len, msg->data);
        kp_buf_reset(&vm->trace);
        for (uint32_t i = 0; i < tl->len; i++) {
            KpString *e = tl->items[i].p;
            kp_buf_add(vm, &vm->trace, e->data, e->len);
            kp_buf_add(vm, &vm->trace, "", 1);
        }
        vm->ntrace = tl->len;
        vm->reraise.set = true;
        vm->reraise.file = kp_intern(vm, file->data, file->len);
        vm->reraise.line = (uint32_t)f[3].i;
        vm->reraise.col = (uint32_t)f[4].i;
        return false;
    }
    return kp_vm_error_kind(vm, KP_EK_USER, "%s", kp_tostring_msg(vm, v, false));
}

static bool b_assert(KpVM *vm, KpValue *a, int n, KpValue *out) {
    KpValue c = kp_deref(a[0]);
    if (c.tag != KP_T_BOOL) return kp_vm_error(vm, "assert needs a Bool, but the value is %s", kp_value_type_name(vm, c));
    *out = kp_unit();
    if (c.i) return true;
    if (n > 1) {
        return kp_vm_error(vm, "assertion failed: %s", kp_tostring_msg(vm, kp_deref(a[1]), false));
    }
    return kp_vm_error(vm, "assertion failed");
}

static bool b_get_fields(KpVM *vm, KpValue *a, int n, KpValue *out) {
    (void)n;
    KpValue r = kp_deref(a[0]);
    if (r.tag != KP_T_RECORD) return kp_vm_error(vm, "#get_fields needs a record, but the value is %s", kp_value_type_name(vm, r));
    KpRecord *rec = r.p;
    if (a[0].tag != KP_T_REF) return kp_vm_error(vm, "#get_fields needs a record variable (its fields are borrowed)");
    KpList *l = kp_list_new(vm, rec->type->nfields);
    if (!l) return false;
    for (uint32_t i = 0; i < rec->type->nfields; i++) {
        KpValue ref = kp_make_ref(vm, &rec->f[i], &rec->h, a[0].flags & KP_VF_MUT);
        if (ref.tag != KP_T_REF) { /* out of memory */
            kp_drop(vm, kp_ptr(KP_T_LIST, l));
            return false;
        }
        l->items[l->len++] = ref;
    }
    *out = kp_ptr(KP_T_LIST, l);
    return true;
}

/* The REPL's display of an expression's value (nothing for unit). */
static bool b_show(KpVM *vm, KpValue *a, int n, KpValue *out) {
    (void)n;
    *out = kp_unit();
    KpValue v = kp_deref(a[0]);
    if (v.tag == KP_T_UNIT) return true;
    kp_buf_reset(&vm->scratch);
    if (!kp_tostring(vm, v, true) || !kp_buf_add(vm, &vm->scratch, "\n", 1)) return false;
    vm->write_out(vm->write_ud, vm->scratch.data, vm->scratch.len);
    return true;
}

static bool b_check_cycles(KpVM *vm, KpValue *a, int n, KpValue *out) {
    (void)a; (void)n;
    int before = vm->status;
    int found = kp_check_cycles(vm, vm->collect_cycles);
    if (found < 0) return kp_vm_error(vm, "out of memory: #check_cycles() could not look for cycles");
    *out = kp_int(found);
    /* a deinit of a collected value may have raised an error */
    return !(before != KP_ERR_RUNTIME && vm->status == KP_ERR_RUNTIME);
}

const KpBuiltin kp_builtins_core[] = {
    {"print", b_print, "values: &Any", "()", KP_BF_VARIADIC},
    {"str", b_str, "x: &Any", "String", KP_BF_CTX},
    {"len", b_len, "x: &String|List#(T)|HashMap#(K, V)", "Int", 0},
    {"clone", b_clone, "x: &T", "T", KP_BF_CTX},
    {"deinit", b_deinit, "x: $&Any", "()", KP_BF_MOVES | KP_BF_SPECIAL},
    {"int", b_int, "x: &Int|Float|Bool|String", "Int", 0},
    {"float", b_float, "x: &Int|Float|String", "Float", 0},
    {"error", b_error, "message: &Any", "()", 0},
    {"assert", b_assert, "condition: &Bool, message: &Any", "()", KP_BF_VARIADIC},
    {"#get_fields", b_get_fields, "r: $&Any", "List#(Any)", KP_BF_CTX},
    {"#check_cycles", b_check_cycles, "", "Int", 0},
    {"#show", b_show, "x: &Any", "()", KP_BF_SHOW},
    {NULL, NULL, NULL, NULL, 0},
};
