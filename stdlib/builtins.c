/*
 * builtins.c — the functions every script can call: print, str, len,
 * clone, deinit, push, pop, remove, has, keys, substr, ord, chr, split,
 * join, int, float, abs, min, max, sqrt, floor, error, assert,
 * #get_fields, #check_cycles.
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

void kp_format_float(double f, char *buf, size_t n);

static bool ret_str(KpVM *vm, const char *s, size_t n, KpValue *out) {
    KpString *str = kp_str_new(vm, vm->ctx, s, n);
    if (!str) return false;
    *out = kp_ptr(KP_T_STR, str);
    return true;
}

static bool want(KpVM *vm, const char *fn, int idx, KpValue v, KpTag tag, const char *tname) {
    if (v.tag == tag || (tag == KP_T_INT && KP_IS_SIZED_INT(v.tag))) return true;
    return kp_vm_error(vm, "argument %d of '%s' must be %s, but it is %s", idx, fn, tname, kp_value_type_name(vm, v));
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

static KpList *list_arg(KpVM *vm, const char *fn, KpValue v, bool mut) {
    KpValue l = kp_deref(v);
    if (l.tag != KP_T_LIST) {
        kp_vm_error(vm, "'%s' needs a list, but the value is %s", fn, kp_value_type_name(vm, l));
        return NULL;
    }
    if (mut && ((KpObj *)l.p)->lock) {
        kp_vm_error(vm, "cannot change a list with %s while a for loop is iterating over it", fn);
        return NULL;
    }
    return l.p;
}

static bool b_push(KpVM *vm, KpValue *a, int n, KpValue *out) {
    (void)n;
    KpList *l = list_arg(vm, "push", a[0], true);
    if (!l) return false;
    KpValue v = a[1];
    if (l->elem) {
        const char *why;
        if (!kp_type_coerce(vm, l->elem, &v, &why))
            return kp_vm_error(vm, "push: the list holds %s, but the value is %s", l->elem->name, kp_value_type_name(vm, v));
    }
    if (v.tag == KP_T_REF && (KpValue *)v.p >= vm->stack && (KpValue *)v.p < vm->stack_end)
        return kp_vm_error(vm, "push: a reference to a local variable cannot be stored in a list: it could outlive the variable; keep the variable with the list first");
    a[1] = kp_unset();
    *out = kp_unit();
    return kp_list_push(vm, l, v);
}

static bool b_pop(KpVM *vm, KpValue *a, int n, KpValue *out) {
    (void)n;
    KpList *l = list_arg(vm, "pop", a[0], true);
    if (!l) return false;
    if (!l->len) return kp_vm_error(vm, "pop from an empty list");
    *out = l->items[--l->len];
    kp_block_renew(&l->h, "an element popped from its list");
    return true;
}

static bool b_remove(KpVM *vm, KpValue *a, int n, KpValue *out) {
    (void)n;
    KpValue c = kp_deref(a[0]);
    KpValue k = kp_deref(a[1]);
    if (c.tag == KP_T_MAP) {
        if (((KpObj *)c.p)->lock) return kp_vm_error(vm, "cannot remove from a map while a for loop is iterating over it");
        if (!kp_map_remove(vm, c.p, k, out)) {
            return kp_vm_error(vm, "remove: key %s not found", kp_tostring_msg(vm, k, true));
        }
        return true;
    }
    KpList *l = list_arg(vm, "remove", a[0], true);
    if (!l) return false;
    if (!want(vm, "remove", 2, k, KP_T_INT, "Int")) return false;
    if (k.i < 0 || (uint64_t)k.i >= l->len)
        return kp_vm_error(vm, "remove: index %" PRId64 " out of range for a list of length %u", k.i, l->len);
    *out = l->items[k.i];
    kp_block_renew(&l->h, "an element removed from its list");
    memmove(&l->items[k.i], &l->items[k.i + 1], sizeof(KpValue) * (l->len - (uint32_t)k.i - 1));
    l->len--;
    return true;
}

static bool b_has(KpVM *vm, KpValue *a, int n, KpValue *out) {
    (void)n;
    KpValue c = kp_deref(a[0]);
    KpValue k = kp_deref(a[1]);
    if (c.tag == KP_T_MAP) {
        *out = kp_bool(kp_map_find(c.p, k) != NULL);
        return true;
    }
    if (c.tag == KP_T_LIST) {
        KpList *l = c.p;
        for (uint32_t i = 0; i < l->len; i++) {
            bool eq;
            if (!kp_equal_checked(vm, l->items[i], k, &eq)) return false;
            if (eq) { *out = kp_bool(true); return true; }
        }
        *out = kp_bool(false);
        return true;
    }
    if (c.tag == KP_T_STR && k.tag == KP_T_STR) {
        KpString *s = c.p, *t = k.p;
        *out = kp_bool(t->len == 0 || memmem(s->data, s->len, t->data, t->len) != NULL);
        return true;
    }
    return kp_vm_error(vm, "has needs a map, a list or a string, but the value is %s", kp_value_type_name(vm, c));
}

static bool b_keys(KpVM *vm, KpValue *a, int n, KpValue *out) {
    (void)n;
    KpValue c = kp_deref(a[0]);
    if (c.tag != KP_T_MAP) return kp_vm_error(vm, "keys needs a map, but the value is %s", kp_value_type_name(vm, c));
    KpMap *m = c.p;
    KpList *l = kp_list_new(vm, m->count);
    if (!l) return false;
    for (uint32_t i = 0; i < m->nentries; i++) {
        KpValue k = m->entries[i].key;
        if (k.tag == KP_T_UNSET) continue;
        if (k.tag == KP_T_STR) kp_str_incref(k.p);
        l->items[l->len++] = k;
    }
    *out = kp_ptr(KP_T_LIST, l);
    return true;
}

static bool b_substr(KpVM *vm, KpValue *a, int n, KpValue *out) {
    (void)n;
    KpValue s = kp_deref(a[0]), x = kp_deref(a[1]), y = kp_deref(a[2]);
    if (!want(vm, "substr", 1, s, KP_T_STR, "String") || !want(vm, "substr", 2, x, KP_T_INT, "Int") ||
        !want(vm, "substr", 3, y, KP_T_INT, "Int"))
        return false;
    KpString *str = s.p;
    if (x.i < 0 || y.i < x.i || (uint64_t)y.i > str->len)
        return kp_vm_error(vm, "substr(%" PRId64 ", %" PRId64 ") out of range for a string of %u bytes", x.i, y.i, str->len);
    return ret_str(vm, str->data + x.i, (size_t)(y.i - x.i), out);
}

static bool b_ord(KpVM *vm, KpValue *a, int n, KpValue *out) {
    (void)n;
    KpValue s = kp_deref(a[0]);
    if (!want(vm, "ord", 1, s, KP_T_STR, "String")) return false;
    KpString *str = s.p;
    if (!str->len) return kp_vm_error(vm, "ord of an empty string");
    *out = kp_int((unsigned char)str->data[0]);
    return true;
}

static bool b_chr(KpVM *vm, KpValue *a, int n, KpValue *out) {
    (void)n;
    KpValue c = kp_deref(a[0]);
    if (!want(vm, "chr", 1, c, KP_T_INT, "Int")) return false;
    if (c.i < 0 || c.i > 255) return kp_vm_error(vm, "chr(%" PRId64 "): a byte is 0..255", c.i);
    char b = (char)c.i;
    return ret_str(vm, &b, 1, out);
}

static bool b_split(KpVM *vm, KpValue *a, int n, KpValue *out) {
    (void)n;
    KpValue s = kp_deref(a[0]), sep = kp_deref(a[1]);
    if (!want(vm, "split", 1, s, KP_T_STR, "String") || !want(vm, "split", 2, sep, KP_T_STR, "String")) return false;
    KpString *str = s.p, *sp = sep.p;
    if (!sp->len) return kp_vm_error(vm, "split with an empty separator");
    KpList *l = kp_list_new(vm, 0);
    if (!l) return false;
    KpValue lv = kp_ptr(KP_T_LIST, l);
    const char *p = str->data, *end = str->data + str->len;
    for (;;) {
        const char *q = memmem(p, (size_t)(end - p), sp->data, sp->len);
        const char *e = q ? q : end;
        KpValue piece;
        if (!ret_str(vm, p, (size_t)(e - p), &piece) || !kp_list_push(vm, l, piece)) {
            kp_drop(vm, lv);
            return false;
        }
        if (!q) break;
        p = q + sp->len;
    }
    *out = lv;
    return true;
}

static bool b_join(KpVM *vm, KpValue *a, int n, KpValue *out) {
    (void)n;
    KpList *l = list_arg(vm, "join", a[0], false);
    KpValue sep = kp_deref(a[1]);
    if (!l || !want(vm, "join", 2, sep, KP_T_STR, "String")) return false;
    KpBuf b = {0};
    bool ok = true;
    for (uint32_t i = 0; i < l->len && ok; i++) {
        KpValue v = kp_deref(l->items[i]);
        if (i) ok = kp_buf_add(vm, &b, ((KpString *)sep.p)->data, ((KpString *)sep.p)->len);
        kp_buf_reset(&vm->scratch);
        ok = ok && kp_tostring(vm, v, false) && kp_buf_add(vm, &b, vm->scratch.data ? vm->scratch.data : "", vm->scratch.len);
    }
    ok = ok && ret_str(vm, b.data ? b.data : "", b.len, out);
    kp_buf_free(vm, &b);
    return ok;
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

static bool num_arg(KpVM *vm, const char *fn, KpValue v, double *d, bool *is_int) {
    v = kp_deref(v);
    if (v.tag == KP_T_INT || KP_IS_SIZED_INT(v.tag)) { *d = (double)v.i; *is_int = true; return true; }
    if (v.tag == KP_T_FLOAT) { *d = v.f; *is_int = false; return true; }
    return kp_vm_error(vm, "'%s' needs a number, but the value is %s", fn, kp_value_type_name(vm, v));
}

static bool b_abs(KpVM *vm, KpValue *a, int n, KpValue *out) {
    (void)n;
    KpValue v = kp_deref(a[0]);
    if (v.tag == KP_T_INT) {
        if (v.i == INT64_MIN) return kp_vm_error(vm, "integer overflow in abs");
        *out = kp_int(v.i < 0 ? -v.i : v.i);
        return true;
    }
    double d;
    bool ii;
    if (!num_arg(vm, "abs", v, &d, &ii)) return false;
    *out = kp_float(fabs(d));
    return true;
}

static bool minmax(KpVM *vm, KpValue *a, int n, KpValue *out, bool want_min) {
    if (n < 1) return kp_vm_error(vm, "%s needs at least one value", want_min ? "min" : "max");
    KpValue best = kp_deref(a[0]);
    double bd;
    bool bi;
    if (!num_arg(vm, want_min ? "min" : "max", best, &bd, &bi)) return false;
    for (int i = 1; i < n; i++) {
        KpValue v = kp_deref(a[i]);
        double d;
        bool ii;
        if (!num_arg(vm, want_min ? "min" : "max", v, &d, &ii)) return false;
        bool better = (bi && ii) ? (want_min ? v.i < best.i : v.i > best.i) : (want_min ? d < bd : d > bd);
        if (better) { best = v; bd = d; bi = ii; }
    }
    *out = best;
    return true;
}
static bool b_min(KpVM *vm, KpValue *a, int n, KpValue *out) { return minmax(vm, a, n, out, true); }
static bool b_max(KpVM *vm, KpValue *a, int n, KpValue *out) { return minmax(vm, a, n, out, false); }

static bool b_sqrt(KpVM *vm, KpValue *a, int n, KpValue *out) {
    (void)n;
    double d;
    bool ii;
    if (!num_arg(vm, "sqrt", a[0], &d, &ii)) return false;
    *out = kp_float(sqrt(d));
    return true;
}

static bool b_floor(KpVM *vm, KpValue *a, int n, KpValue *out) {
    (void)n;
    double d;
    bool ii;
    if (!num_arg(vm, "floor", a[0], &d, &ii)) return false;
    if (ii) { *out = kp_deref(a[0]); return true; }
    *out = kp_float(floor(d));
    return true;
}

static bool b_error(KpVM *vm, KpValue *a, int n, KpValue *out) {
    (void)n;
    (void)out;
    KpValue v = kp_deref(a[0]);
    return kp_vm_error(vm, "%s", kp_tostring_msg(vm, v, false));
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
        if (ref.tag != KP_T_REF) {
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

static bool fs_arg(KpVM *vm, KpValue v, const char *fn) {
    v = kp_deref(v);
    if (v.tag == KP_T_SYSTEM && v.aux == 2) return true;
    return kp_vm_error(vm, "%s needs the file system capability: %s(&system.fs, ...)", fn, fn);
}

/* read_file(&system.fs, path) -> String */
static bool b_read_file(KpVM *vm, KpValue *a, int n, KpValue *out) {
    (void)n;
    if (!fs_arg(vm, a[0], "read_file")) return false;
    KpValue p = kp_deref(a[1]);
    if (!want(vm, "read_file", 2, p, KP_T_STR, "String")) return false;
    FILE *f = fopen(((KpString *)p.p)->data, "rb");
    if (!f) return kp_vm_error(vm, "read_file: cannot open '%s': %s", ((KpString *)p.p)->data, strerror(errno));
    KpBuf b = {0};
    char chunk[16384];
    size_t got;
    bool ok = true;
    while ((got = fread(chunk, 1, sizeof chunk, f)) > 0)
        if (!kp_buf_add(vm, &b, chunk, got)) { ok = false; break; }
    fclose(f);
    ok = ok && ret_str(vm, b.data ? b.data : "", b.len, out);
    kp_buf_free(vm, &b);
    return ok;
}

/* write_file(&system.fs, path, text) */
static bool b_write_file(KpVM *vm, KpValue *a, int n, KpValue *out) {
    (void)n;
    if (!fs_arg(vm, a[0], "write_file")) return false;
    KpValue p = kp_deref(a[1]), t = kp_deref(a[2]);
    if (!want(vm, "write_file", 2, p, KP_T_STR, "String") || !want(vm, "write_file", 3, t, KP_T_STR, "String")) return false;
    FILE *f = fopen(((KpString *)p.p)->data, "wb");
    if (!f) return kp_vm_error(vm, "write_file: cannot open '%s': %s", ((KpString *)p.p)->data, strerror(errno));
    KpString *s = t.p;
    bool ok = fwrite(s->data, 1, s->len, f) == s->len;
    if (fclose(f) != 0) ok = false;
    *out = kp_unit();
    return ok ? true : kp_vm_error(vm, "write_file: cannot write '%s'", ((KpString *)p.p)->data);
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
    {"push", b_push, "xs: $&List#(T), value: T", "()", 0},
    {"pop", b_pop, "xs: $&List#(T)", "T", 0},
    {"remove", b_remove, "c: $&HashMap#(K, V)|List#(V), key: &K|Int", "V", 0},
    {"has", b_has, "c: &HashMap#(K, V)|List#(T)|String, x: &Any", "Bool", 0},
    {"keys", b_keys, "m: &HashMap#(K, V)", "List#(K)", KP_BF_CTX},
    {"substr", b_substr, "s: &String, from: &Int, to: &Int", "String", KP_BF_CTX},
    {"ord", b_ord, "s: &String", "Int", 0},
    {"chr", b_chr, "code: &Int", "String", KP_BF_CTX},
    {"split", b_split, "s: &String, sep: &String", "List#(String)", KP_BF_CTX},
    {"join", b_join, "xs: &List#(T), sep: &String", "String", KP_BF_CTX},
    {"int", b_int, "x: &Int|Float|Bool|String", "Int", 0},
    {"float", b_float, "x: &Int|Float|String", "Float", 0},
    {"abs", b_abs, "x: &Int|Float", "Int|Float", 0},
    {"min", b_min, "values: &Int|Float", "Int|Float", KP_BF_VARIADIC},
    {"max", b_max, "values: &Int|Float", "Int|Float", KP_BF_VARIADIC},
    {"sqrt", b_sqrt, "x: &Int|Float", "Float", 0},
    {"floor", b_floor, "x: &Int|Float", "Int|Float", 0},
    {"error", b_error, "message: &Any", "()", 0},
    {"assert", b_assert, "condition: &Bool, message: &Any", "()", KP_BF_VARIADIC},
    {"#get_fields", b_get_fields, "r: $&Any", "List#(Any)", KP_BF_CTX},
    {"#check_cycles", b_check_cycles, "", "Int", 0},
    {"#show", b_show, "x: &Any", "()", 0},
    {"read_file", b_read_file, "fs: &System.Fs, path: &String", "String", KP_BF_CTX},
    {"write_file", b_write_file, "fs: &System.Fs, path: &String, text: &String", "()", 0},
    {NULL, NULL, NULL, NULL, 0},
};
