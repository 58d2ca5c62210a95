/*
 * map.c — the map functions: keys values entries get has remove clear.
 *
 * Design.  HashMap keeps its entries in insertion order (the layout of
 * CPython's compact dict, vm/object.c): `keys`, `values`, `entries` and
 * `for k, v in m` all go in the order the keys were first inserted;
 * replacing a value keeps the key's place, removing and re-inserting a key
 * moves it to the end.  `keys`, `values` and `entries` are new lists of
 * clones; `get` returns a clone of the value, or of the default;
 * `remove` moves the value out.  The empty map is written `(=)` — the way
 * it prints — and a typed one `m : HashMap#(String, Int) = (=)`.
 */
#include <inttypes.h>
#include <string.h>

#include "lib.h"

static bool b_keys(KpVM *vm, KpValue *a, int n, KpValue *out) {
    (void)n;
    KpMap *m = kp_lib_map(vm, "keys", a, 0, false);
    if (!m) return false;
    KpValue lv;
    KpList *l = kp_lib_new_list(vm, m->count, &lv);
    if (!l) return false;
    for (uint32_t i = 0; i < m->nentries; i++) {
        KpValue k = m->entries[i].key;
        if (k.tag == KP_T_UNSET) continue;
        if (k.tag == KP_T_STR) kp_str_incref(k.p);
        l->items[l->len++] = k;
    }
    *out = lv;
    return true;
}

static bool b_values(KpVM *vm, KpValue *a, int n, KpValue *out) {
    (void)n;
    KpMap *m = kp_lib_map(vm, "values", a, 0, false);
    if (!m) return false;
    KpValue lv;
    KpList *l = kp_lib_new_list(vm, m->count, &lv);
    if (!l) return false;
    for (uint32_t i = 0; i < m->nentries; i++) {
        if (m->entries[i].key.tag == KP_T_UNSET) continue;
        if (!kp_clone(vm, kp_deref(m->entries[i].val), &l->items[l->len])) {
            kp_drop(vm, lv);
            return false;
        }
        l->len++;
    }
    *out = lv;
    return true;
}

/* The anonymous record type (.key, .value), made once per VM. */
static KpType *entry_type(KpVM *vm) {
    const char *kn = kp_intern(vm, "key", 3), *vn = kp_intern(vm, "value", 5);
    for (uint32_t i = 0; i < vm->nanon; i++) {
        KpType *t = vm->anon[i];
        if (t->nfields == 2 && t->fnames[0] == kn && t->fnames[1] == vn && !t->ftypes[0] && !t->ftypes[1]) return t;
    }
    if ((int)vm->nanon >= vm->cap_anon) {
        int nc = vm->cap_anon ? vm->cap_anon * 2 : 16;
        KpType **q = kp_realloc(vm->meta, vm->anon, sizeof(KpType *) * (size_t)vm->cap_anon, sizeof(KpType *) * (size_t)nc, 16, NULL);
        if (!q) return NULL;
        vm->anon = q;
        vm->cap_anon = nc;
    }
    KpType *t = kp_arena_alloc(&vm->meta_arena, sizeof(KpType), 16);
    const char **fn = kp_arena_alloc(&vm->meta_arena, sizeof(char *) * 2, 8);
    KpType **ft = kp_arena_alloc(&vm->meta_arena, sizeof(KpType *) * 2, 8);
    KpValue *df = kp_arena_alloc(&vm->meta_arena, sizeof(KpValue) * 2, 16);
    if (!t || !fn || !ft || !df) return NULL;
    memset(t, 0, sizeof *t);
    t->kind = KP_TK_RECORD;
    t->name = kp_intern(vm, "(.key, .value)", 14);
    t->anon = 1;
    t->nfields = 2;
    fn[0] = kn;
    fn[1] = vn;
    ft[0] = ft[1] = NULL;
    df[0] = df[1] = kp_unset();
    t->fnames = fn;
    t->ftypes = ft;
    t->defaults = df;
    vm->anon[vm->nanon++] = t;
    return t;
}

/* entries(m) -> List#((.key: K, .value: V)): clones, in insertion order. */
static bool b_entries(KpVM *vm, KpValue *a, int n, KpValue *out) {
    (void)n;
    KpMap *m = kp_lib_map(vm, "entries", a, 0, false);
    if (!m) return false;
    KpType *et = entry_type(vm);
    if (!et) return kp_oom_error(vm, vm->meta, sizeof(KpType));
    KpValue lv;
    KpList *l = kp_lib_new_list(vm, m->count, &lv);
    if (!l) return false;
    for (uint32_t i = 0; i < m->nentries; i++) {
        KpMapEntry *e = &m->entries[i];
        if (e->key.tag == KP_T_UNSET) continue;
        KpRecord *r = kp_record_new(vm, et);
        if (!r) { kp_drop(vm, lv); return false; }
        l->items[l->len++] = kp_ptr(KP_T_RECORD, r);
        r->f[0] = kp_unset();
        r->f[1] = kp_unset();
        if (!kp_clone(vm, e->key, &r->f[0]) || !kp_clone(vm, kp_deref(e->val), &r->f[1])) {
            kp_drop(vm, lv);
            return false;
        }
    }
    *out = lv;
    return true;
}

/* get(m, key, default) -> V: a clone of the value, or of default. */
static bool b_get(KpVM *vm, KpValue *a, int n, KpValue *out) {
    (void)n;
    KpMap *m = kp_lib_map(vm, "get", a, 0, false);
    if (!m) return false;
    KpMapEntry *e = kp_map_find(m, kp_deref(a[1]));
    return kp_clone(vm, kp_deref(e ? e->val : a[2]), out);
}

static bool b_has(KpVM *vm, KpValue *a, int n, KpValue *out) {
    (void)n;
    KpMap *m = kp_lib_map(vm, "has", a, 0, false);
    if (!m) return false;
    *out = kp_bool(kp_map_find(m, kp_deref(a[1])) != NULL);
    return true;
}

/* remove(m, key) -> V: the value, moved out; a missing key is an error. */
static bool b_remove(KpVM *vm, KpValue *a, int n, KpValue *out) {
    (void)n;
    KpMap *m = kp_lib_map(vm, "remove", a, 0, true);
    if (!m) return false;
    KpValue k = kp_deref(a[1]);
    if (!kp_map_remove(vm, m, k, out)) {
        return kp_vm_error(vm, "remove: key %s not found", kp_tostring_msg(vm, kp_deref(k), true));
    }
    return true;
}

static bool b_clear(KpVM *vm, KpValue *a, int n, KpValue *out) {
    (void)n;
    KpMap *m = kp_lib_map(vm, "clear", a, 0, true);
    if (!m) return false;
    *out = kp_unit();
    bool ok = true;
    for (uint32_t i = 0; i < m->nentries && m->count; i++) {
        if (m->entries[i].key.tag == KP_T_UNSET) continue;
        KpValue k = m->entries[i].key, v;
        if (k.tag == KP_T_STR) kp_str_incref(k.p);
        if (!kp_map_remove(vm, m, k, &v)) break;
        if (k.tag == KP_T_STR) kp_drop(vm, k);
        if (!kp_drop(vm, v)) ok = false;
    }
    return ok;
}

const KpBuiltin kp_builtins_map[] = {
    {"keys", b_keys, "m: &HashMap#(K, V)", "List#(K)", KP_BF_CTX},
    {"values", b_values, "m: &HashMap#(K, V)", "List#(V)", KP_BF_CTX},
    {"entries", b_entries, "m: &HashMap#(K, V)", "List#(Any)", KP_BF_CTX},
    {"get", b_get, "m: &HashMap#(K, V), key: &K, default: &V", "V", KP_BF_CTX},
    {"has", b_has, "m: &HashMap#(K, V), key: &K", "Bool", 0},
    {"remove", b_remove, "m: $&HashMap#(K, V), key: &K", "V", 0},
    {"clear", b_clear, "m: $&HashMap#(K, V)", "()", 0},
    {NULL, NULL, NULL, NULL, 0},
};
