/*
 * types.c — static types: type expressions, record layouts, generic
 * instantiation, function signatures, and what the compiler can tell about
 * an expression's type before the program runs.
 *
 * Design.  Type declarations are static: the compiler creates their
 * KpType objects, so field layouts, annotations and signatures are
 * resolved here.  Derived types (List#(T), HashMap#(K, V), &T, $&T,
 * anonymous records, generic instances) are interned in the VM, so two
 * equal types are the same pointer and comparing types is comparing
 * pointers.  A generic record is instantiated once per argument list: its
 * parameters are bound as types in a scope of their own and its fields
 * resolved against them.
 *
 * Static types are best effort: `x := e` gives x the static type of e when
 * the compiler can tell it (literals, constructors, annotations, a
 * function with one overload); where it cannot, the value is checked at
 * run time (CHECK).  Constant folding of literal arithmetic lives here too,
 * since it decides the type of the folded value; an Int operation that
 * would overflow is left to run, so the error is reported as usual.
 */
#include <math.h>

#include "compiler_int.h"
#include "../stdlib/builtins.h"

static KpType *instantiate(C *c, TypeBind *tb, KpNode *use);

KpType *kp_types_new(C *c, KpTypeKind kind, const char *name) {
    KpType *t = kp_arena_alloc(&c->vm->meta_arena, sizeof(KpType), 16);
    memset(t, 0, sizeof *t);
    t->kind = (uint8_t)kind;
    t->name = name;
    return t;
}

/* Derived types (List#(T), HashMap#(K,V), &T, anonymous records) are
 * interned so that equal types are the same pointer. */
KpType *kp_types_derived(C *c, KpTypeKind kind, KpType *elem, KpType *key, int refmode) {
    KpVM *vm = c->vm;
    for (uint32_t i = 0; i < vm->nderived; i++) {
        KpType *t = vm->derived[i];
        if (t->kind == kind && t->elem == elem && t->key == key && t->refmode == refmode) return t;
    }
    char buf[256];
    switch (kind) {
    case KP_TK_LIST: snprintf(buf, sizeof buf, "List#(%s)", kp_type_name(elem)); break;
    case KP_TK_MAP: snprintf(buf, sizeof buf, "HashMap#(%s, %s)", kp_type_name(key), kp_type_name(elem)); break;
    default: snprintf(buf, sizeof buf, "%s%s", refmode == 2 ? "$&" : "&", kp_type_name(elem)); break;
    }
    KpType *t = kp_types_new(c, kind, kp_intern(vm, buf, strlen(buf)));
    t->elem = elem;
    t->key = key;
    t->refmode = (uint8_t)refmode;
    IGROW(c, vm->derived, (int)vm->nderived, vm->cap_derived);
    vm->derived[vm->nderived++] = t;
    return t;
}

/* Anonymous record type with these field names (and types), interned. */
KpType *kp_types_anon(C *c, int n, const char **names, KpType **types) {
    KpVM *vm = c->vm;
    for (uint32_t i = 0; i < vm->nanon; i++) {
        KpType *t = vm->anon[i];
        if ((int)t->nfields != n) continue;
        bool same = true;
        for (int j = 0; j < n && same; j++)
            same = t->fnames[j] == names[j] && t->ftypes[j] == (types ? types[j] : NULL);
        if (same) return t;
    }
    char buf[512];
    size_t len = 0;
    len += (size_t)snprintf(buf + len, sizeof buf - len, "(");
    for (int j = 0; j < n && len < sizeof buf - 64; j++)
        len += (size_t)snprintf(buf + len, sizeof buf - len, "%s.%s%s%s", j ? ", " : "", names[j],
                                types && types[j] ? ": " : "", types && types[j] ? types[j]->name : "");
    snprintf(buf + len, sizeof buf - len, ")");
    KpType *t = kp_types_new(c, KP_TK_RECORD, kp_intern(vm, buf, strlen(buf)));
    t->anon = 1;
    t->nfields = (uint32_t)n;
    t->fnames = kp_arena_alloc(&vm->meta_arena, sizeof(char *) * (size_t)(n + 1), 8);
    t->ftypes = kp_arena_alloc(&vm->meta_arena, sizeof(KpType *) * (size_t)(n + 1), 8);
    t->defaults = kp_arena_alloc(&vm->meta_arena, sizeof(KpValue) * (size_t)(n + 1), 16);
    for (int j = 0; j < n; j++) {
        t->fnames[j] = names[j];
        t->ftypes[j] = types ? types[j] : NULL;
        t->defaults[j] = kp_unset();
    }
    IGROW(c, vm->anon, (int)vm->nanon, vm->cap_anon);
    vm->anon[vm->nanon++] = t;
    return t;
}

KpType *kp_types_builtin(C *c, const char *name) {
    KpVM *vm = c->vm;
    static const struct { const char *n; int idx; } sized[] = {
        {"Int8", 0}, {"Int16", 1}, {"Int32", 2}, {"UInt8", 3}, {"Byte", 3},
        {"UInt16", 4}, {"UInt32", 5}, {"UInt64", 6},
    };
    if (!strcmp(name, "Int") || !strcmp(name, "Int64")) return vm->t_int;
    if (!strcmp(name, "Float") || !strcmp(name, "Float64")) return vm->t_float;
    if (!strcmp(name, "Bool")) return vm->t_bool;
    if (!strcmp(name, "String")) return vm->t_string;
    if (!strcmp(name, "Type")) return vm->t_type;
    if (!strcmp(name, "Any")) return vm->t_any;
    if (!strcmp(name, "List")) return vm->t_list;
    if (!strcmp(name, "HashMap")) return vm->t_map;
    if (!strcmp(name, "HeapAllocation")) return vm->t_heap;
    if (!strcmp(name, "Float32")) return vm->t_float32;
    for (int k = 1; k < 5; k++) /* Writer, Reader, View, Pin (vm/binary.h) */
        if (!strcmp(name, vm->t_bin[k]->name)) return vm->t_bin[k];
    if (!strcmp(name, "Function")) return vm->t_func;
    if (!strcmp(name, "AllocStats")) return vm->t_allocstats;
    if (!strcmp(name, "Error")) return vm->t_error;
    if (!strcmp(name, "Random")) return vm->t_random;
    for (int k = 0; k < KP_AK__COUNT; k++)
        if (!strcmp(name, vm->t_akind[k]->name)) return vm->t_akind[k];
    for (size_t i = 0; i < sizeof sized / sizeof *sized; i++)
        if (!strcmp(name, sized[i].n)) return vm->t_sized[sized[i].idx];
    return NULL;
}

KpType *kp_types_resolve(C *c, KpNode *n) {
    if (!n) return NULL;
    switch (n->kind) {
    case KP_N_UNIT: return c->vm->t_unit;
    case KP_N_IDENT: {
        const char *name = kp_compile_intern(c, n->name);
        TypeBind *tb = kp_resolve_find_type(c, name);
        if (tb) {
            if (tb->generic) {
                kp_compile_error(c, n, "generic type %s needs arguments: %s#(...)", name, name);
                return NULL;
            }
            return tb->type;
        }
        KpType *t = kp_types_builtin(c, name);
        if (t) return t;
        kp_compile_error(c, n, "unknown type '%s'", n->name);
        KpSimilar s;
        kp_compile_similar_init(&s, name);
        kp_compile_similar_names(c, &s, false, false, true);
        kp_compile_similar_help(c, &s);
        return NULL;
    }
    case KP_N_FIELD: {
        if (n->a && n->a->kind == KP_N_IDENT && !strcmp(n->a->name, "System")) {
            if (!strcmp(n->name, "Memory")) return c->vm->t_sysmem;
            if (!strcmp(n->name, "Fs")) return c->vm->t_sysfs;
            if (!strcmp(n->name, "Random")) return c->vm->t_sysrandom;
            if (!strcmp(n->name, "Env")) return c->vm->t_sysenv;
            return c->vm->t_system;
        }
        kp_compile_error(c, n, "unknown type");
        return NULL;
    }
    case KP_N_REFTYPE: {
        KpType *e = kp_types_resolve(c, n->a);
        if (n->op == KP_OP_MOVE) return e;
        return kp_types_derived(c, KP_TK_REF, e, NULL, n->op == KP_OP_MUTREF ? 2 : 1);
    }
    case KP_N_UNARY:
        if (n->op == KP_OP_REF || n->op == KP_OP_MUTREF) {
            KpType *e = kp_types_resolve(c, n->a);
            return kp_types_derived(c, KP_TK_REF, e, NULL, n->op == KP_OP_MUTREF ? 2 : 1);
        }
        break;
    case KP_N_GENERIC: {
        if (n->a->kind != KP_N_IDENT) break;
        const char *name = kp_compile_intern(c, n->a->name);
        TypeBind *tb = kp_resolve_find_type(c, name);
        if (tb && tb->generic) return instantiate(c, tb, n);
        if (!strcmp(name, "List")) {
            if (n->list.count != 1) { kp_compile_error(c, n, "List#(T) takes one type"); return NULL; }
            return kp_types_derived(c, KP_TK_LIST, kp_types_resolve(c, n->list.items[0]), NULL, 0);
        }
        if (!strcmp(name, "HashMap") || !strcmp(name, "Hashmap")) {
            if (n->list.count != 2) { kp_compile_error(c, n, "HashMap#(K, V) takes two types"); return NULL; }
            KpType *k = kp_types_resolve(c, n->list.items[0]);
            KpType *v = kp_types_resolve(c, n->list.items[1]);
            return kp_types_derived(c, KP_TK_MAP, v, k, 0);
        }
        kp_compile_error(c, n, "unknown generic type '%s'", n->a->name);
        return NULL;
    }
    default: break;
    }
    kp_compile_error(c, n, "expected a type");
    return NULL;
}

/* Evaluates a constant expression (field and parameter defaults). */
static bool const_eval(C *c, KpNode *n, KpValue *out) {
    KpVM *vm = c->vm;
    switch (n->kind) {
    case KP_N_INT: *out = kp_int(n->ival); return true;
    case KP_N_FLOAT: *out = kp_float(n->fval); return true;
    case KP_N_BOOL: *out = kp_bool(n->ival != 0); return true;
    case KP_N_UNIT: *out = kp_unit(); return true;
    case KP_N_STRING: *out = kp_ptr(KP_T_STR, kp_compile_const_str(c, n->str, n->str_len)); return true;
    case KP_N_UNARY:
        if (n->op == KP_OP_NEG && const_eval(c, n->a, out)) {
            if (out->tag == KP_T_INT && out->i != INT64_MIN) { out->i = -out->i; return true; }
            if (out->tag == KP_T_FLOAT) { out->f = -out->f; return true; }
        }
        return false;
    case KP_N_LIST: {
        KpList *l = kp_obj_new(vm, vm->meta, KP_T_LIST, sizeof(KpList));
        if (!l) return false;
        l->h.flags |= KP_OF_IMMORTAL;
        l->h.alloc = vm->meta;
        for (const KpPackedChunk *ch = n->packed ? n->packed->first : NULL; ch; ch = ch->next)
            for (uint32_t j = 0; j < ch->n; j++)
                if (!kp_list_push(vm, l, n->packed->kind == KP_N_INT ? kp_int(ch->v[j].i) : kp_float(ch->v[j].f)))
                    return false;
        for (int i = 0; i < n->list.count; i++) {
            KpValue v;
            if (!const_eval(c, n->list.items[i], &v)) return false;
            if (!kp_list_push(vm, l, v)) return false;
        }
        *out = kp_ptr(KP_T_LIST, l);
        return true;
    }
    case KP_N_MAP: {
        KpMap *m = kp_obj_new(vm, vm->meta, KP_T_MAP, sizeof(KpMap));
        if (!m) return false;
        m->h.flags |= KP_OF_IMMORTAL;
        for (int i = 0; i < n->list.count; i++) {
            KpValue k, v;
            if (!const_eval(c, n->list.items[i]->a, &k) || !const_eval(c, n->list.items[i]->b, &v))
                return false;
            if (!kp_map_put(vm, m, k, v)) return false;
        }
        *out = kp_ptr(KP_T_MAP, m);
        return true;
    }
    default:
        return false;
    }
}

void kp_types_fill_record(C *c, KpType *t, KpNode *decl) {
    int n = decl->list.count;
    t->nfields = 0;
    t->cid = 0; /* (fields laid out again: no field cache may keep its slots) */
    t->fnames = kp_arena_alloc(&c->vm->meta_arena, sizeof(char *) * (size_t)(n + 1), 8);
    t->ftypes = kp_arena_alloc(&c->vm->meta_arena, sizeof(KpType *) * (size_t)(n + 1), 8);
    t->defaults = kp_arena_alloc(&c->vm->meta_arena, sizeof(KpValue) * (size_t)(n + 1), 16);
    for (int i = 0; i < n; i++) {
        KpNode *f = decl->list.items[i];
        if (f->kind != KP_N_FIELDDECL) {
            kp_compile_error(c, f, "expected a field declaration `.name : Type`");
            continue;
        }
        const char *fname = kp_compile_intern(c, f->name);
        for (uint32_t j = 0; j < t->nfields; j++)
            if (t->fnames[j] == fname) kp_compile_error(c, f, "field '%s' is declared twice", f->name);
        uint32_t k = t->nfields++;
        t->fnames[k] = fname;
        t->ftypes[k] = f->a ? kp_types_resolve(c, f->a) : NULL;
        t->defaults[k] = kp_unset();
        if (f->b) {
            KpValue v;
            if (!const_eval(c, f->b, &v)) {
                kp_compile_error(c, f->b, "a field default must be a constant (a literal, or a list or map of literals)");
            } else {
                const char *why;
                if (t->ftypes[k] && !kp_type_coerce(c->vm, t->ftypes[k], &v, &why))
                    kp_compile_error(c, f->b, "default of field '%s' is %s, but the field is %s%s%s", f->name,
                             kp_value_type_name(c->vm, v), t->ftypes[k]->name, why ? ": " : "", why ? why : "");
                t->defaults[k] = v;
            }
        }
    }
}

static KpType *instantiate(C *c, TypeBind *tb, KpNode *use) {
    KpNode *g = tb->generic;
    KpVM *vm = c->vm;
    int np = g->list2.count;
    if (use->list.count != np) {
        kp_compile_error(c, use, "%s takes %d type arguments, got %d", g->name, np, use->list.count);
        return NULL;
    }
    KpType *args[16];
    if (np > 16) { kp_compile_error(c, use, "too many type parameters"); return NULL; }
    char buf[512];
    size_t len = (size_t)snprintf(buf, sizeof buf, "%s#(", g->name);
    for (int i = 0; i < np; i++) {
        KpNode *an = use->list.items[i];
        if (an->kind == KP_N_FIELDINIT) an = an->a;
        args[i] = kp_types_resolve(c, an);
        if (!args[i]) return NULL;
        len += (size_t)snprintf(buf + len, sizeof buf - len > len ? sizeof buf - len : 0, "%s%s",
                                i ? ", " : "", args[i]->name);
        if (len >= sizeof buf - 64) len = sizeof buf - 64;
    }
    snprintf(buf + len, sizeof buf - len, ")");
    const char *name = kp_intern(vm, buf, strlen(buf));
    for (uint32_t i = 0; i < vm->ninst; i++)
        if (vm->inst[i]->name == name) return vm->inst[i];
    KpType *t = kp_types_new(c, KP_TK_RECORD, name);
    IGROW(c, vm->inst, (int)vm->ninst, vm->cap_inst);
    vm->inst[vm->ninst++] = t;
    /* bind the parameters as types in a scope of their own */
    c->tdepth++;
    for (int i = 0; i < np; i++) {
        IGROW(c, c->types, c->ntypes, c->cap_types);
        const char *pn = g->list2.items[i]->name ? kp_compile_intern(c, g->list2.items[i]->name) : NULL;
        c->types[c->ntypes++] = (TypeBind){pn, args[i], NULL, c->tdepth};
    }
    kp_types_fill_record(c, t, g);
    while (c->ntypes > 0 && c->types[c->ntypes - 1].depth >= c->tdepth) c->ntypes--;
    c->tdepth--;
    return t;
}

/* The parameters (n->list) and the output type (n->a) of function
 * declaration or literal n into ov (its params array allocated). */
static void fill_signature(C *c, KpOverload *ov, KpNode *n) {
    for (int i = 0; i < n->list.count; i++) {
        KpNode *pn = n->list.items[i];
        KpParam *p = &ov->params[i];
        memset(p, 0, sizeof *p);
        p->def = kp_unset();
        if (pn->kind == KP_N_HOLE) continue;
        if (pn->kind != KP_N_PARAM) {
            kp_compile_error(c, pn, "expected a parameter");
            continue;
        }
        p->name = pn->name ? kp_compile_intern(c, pn->name) : NULL;
        p->named = (pn->flags & KP_F_NAMED) != 0;
        KpNode *tn = pn->a;
        if (tn && (tn->kind == KP_N_REFTYPE || (tn->kind == KP_N_UNARY && (tn->op == KP_OP_REF || tn->op == KP_OP_MUTREF)))) {
            p->mode = tn->op == KP_OP_MUTREF ? KP_PM_MUTREF : tn->op == KP_OP_REF ? KP_PM_REF : KP_PM_VALUE;
            tn = tn->a;
        }
        p->type = tn ? kp_types_resolve(c, tn) : NULL;
        if (p->type && p->type->kind == KP_TK_ANY) p->type = NULL;
        p->fast_tag = !p->type ? 0 : (p->type->kind == KP_TK_SCALAR ? p->type->tag : 255);
        if (pn->b) {
            if (!const_eval(c, pn->b, &p->def))
                kp_compile_error(c, pn->b, "a parameter default must be a constant");
        }
        for (int j = 0; j < i; j++)
            if (p->name && ov->params[j].name == p->name)
                kp_compile_error(c, pn, "parameter '%s' is declared twice", pn->name);
    }
    if (n->a) {
        if (n->a->kind == KP_N_OUTPUTS) {
            int no = n->a->list.count;
            if (no == 1) {
                ov->ret = n->a->list.items[0]->a ? kp_types_resolve(c, n->a->list.items[0]->a) : NULL;
            } else if (no > 1) {
                const char *names[64];
                KpType *types[64];
                if (no > 64) no = 64;
                for (int i = 0; i < no; i++) {
                    KpNode *o = n->a->list.items[i];
                    names[i] = kp_compile_intern(c, o->name ? o->name : "_");
                    types[i] = o->a ? kp_types_resolve(c, o->a) : NULL;
                }
                ov->ret = kp_types_anon(c, no, names, types);
            }
        } else {
            ov->ret = kp_types_resolve(c, n->a);
        }
    }
}

KpOverload *kp_types_declare_function(C *c, KpNode *n) {
    KpVM *vm = c->vm;
    const char *name = kp_compile_intern(c, n->name);
    KpFunc *f = kp_func_get(vm, name, true);
    if (!f) return NULL;
    if (kp_func_host_owner(f)) { /* see kp_register_ex in include/keep.h */
        kp_compile_error(c, n, "'%s' is a C function registered by the host (kp_register); a script function of "
                         "that name would overload it: rename it (or the host registers it with KP_REG_OVERLOAD)",
                         n->name);
        return NULL;
    }
    KpOverload *ov = kp_arena_alloc(&vm->meta_arena, sizeof(KpOverload), 16);
    memset(ov, 0, sizeof *ov);
    ov->func = f;
    ov->nparams = (uint16_t)n->list.count;
    ov->params = kp_arena_alloc(&vm->meta_arena, sizeof(KpParam) * (size_t)(n->list.count + 1), 16);
    ov->file = c->src->name;
    ov->line = n->line;
    fill_signature(c, ov, n);
    /* a second overload with the same parameter types is an error */
    for (uint32_t i = 0; i < f->n; i++) {
        KpOverload *o = f->ovs[i];
        if (o->nparams != ov->nparams || o->native) continue;
        bool same = o->ret == ov->ret;
        for (int j = 0; j < ov->nparams && same; j++)
            same = o->params[j].type == ov->params[j].type;
        if (same && !c->repl) {
            kp_compile_error(c, n, "'%s' is already defined with these parameter types (at line %u)", n->name, o->line);
            return NULL;
        }
        if (same && c->repl) {
            /* the REPL redefines: in place, so that the calls bound to
             * the overload (typecheck.c) run the new body */
            struct KpDeclUndo u = {.kind = KP_UNDO_REDEFINE, .ov = o, .saved = *o};
            kp_compile_undo_push(c, &u);
            *o = *ov;
            ov = o;
            goto added;
        }
    }
    if (f->n == f->cap) {
        uint32_t ncap = f->cap ? f->cap * 2 : 4;
        KpOverload **q = kp_realloc(vm->meta, f->ovs, sizeof(void *) * f->cap, sizeof(void *) * ncap, 8, NULL);
        if (!q) return NULL;
        f->ovs = q;
        f->cap = ncap;
    }
    kp_compile_undo_push(c, &(struct KpDeclUndo){.kind = KP_UNDO_APPEND, .f = f});
    f->ovs[f->n++] = ov;
added:
    if (f->special) { /* deinit (the table's KP_BF_SPECIAL): a record's user deinit */
        KpType *t = ov->nparams == 1 ? ov->params[0].type : NULL;
        if (!t || t->kind != KP_TK_RECORD || ov->params[0].mode != KP_PM_MUTREF) {
            kp_compile_error(c, n, "a deinit overload takes one parameter of a record type, as $&T: deinit (.x: $&T) -> ()");
        } else if (t->user_deinit && t->user_deinit != ov && !c->repl) {
            kp_compile_error(c, n, "%s already has a deinit (at line %u)", t->name, t->user_deinit->line);
        } else {
            kp_compile_undo_push(c, &(struct KpDeclUndo){.kind = KP_UNDO_DEINIT, .type = t, .old_deinit = t->user_deinit});
            t->user_deinit = ov;
        }
    }
    return ov;
}

/* The function `T(…)` calls for a built-in type T that is not a record:
 * the builtin table's constructor (KP_BF_CTOR, init), or NULL. */
KpFunc *kp_types_ctor_func(C *c) {
    const char *name = kp_builtin_name_with(KP_BF_CTOR);
    return name ? kp_resolve_find_func(c, kp_compile_intern(c, name)) : NULL;
}

bool kp_types_is_num(KpVM *vm, KpType *t) { return t == vm->t_int || t == vm->t_float; }

bool kp_types_movable(KpType *t) {
    return t && (t->kind == KP_TK_RECORD || t->kind == KP_TK_LIST || t->kind == KP_TK_MAP ||
                 (t->kind == KP_TK_FUNC && t->closure));
}

bool kp_types_scalar(KpVM *vm, KpType *t) {
    return t && t->kind == KP_TK_SCALAR && t != vm->t_string;
}

KpType *kp_types_static_binop_type(C *c, int op, KpType *a, KpType *b) {
    KpVM *vm = c->vm;
    switch (op) {
    case KP_OP_EQ: case KP_OP_NE: case KP_OP_LT: case KP_OP_LE: case KP_OP_GT: case KP_OP_GE:
    case KP_OP_AND: case KP_OP_OR:
        return vm->t_bool;
    case KP_OP_LAND: case KP_OP_LOR: case KP_OP_LXOR: case KP_OP_LSL: case KP_OP_LSR: case KP_OP_ASR:
        return vm->t_int; /* or an error: the operands must be Ints */
    default:
        if (a == vm->t_int && b == vm->t_int) return vm->t_int;
        if (kp_types_is_num(vm, a) && kp_types_is_num(vm, b)) return vm->t_float;
        if (op == KP_OP_ADD && a == vm->t_string && b == vm->t_string) return vm->t_string;
        return NULL;
    }
}

bool kp_types_fits_i32(int64_t v) { return v >= INT32_MIN && v <= INT32_MAX; }

/* nesting guard of expr_to: c->depth_guard */
/* Constant folding: a literal number, or arithmetic and comparisons on
 * literal numbers.  Int results that would overflow (or divide by zero)
 * are left to run, so the error is reported at run time as usual. */
bool kp_types_fold_number(KpNode *n, KpValue *out) {
    if (n->kind == KP_N_INT) { *out = kp_int(n->ival); return true; }
    if (n->kind == KP_N_FLOAT) { *out = kp_float(n->fval); return true; }
    if (n->kind == KP_N_UNARY && n->op == KP_OP_NEG && kp_types_fold_number(n->a, out)) {
        if (out->tag == KP_T_INT) { if (out->i == INT64_MIN) return false; out->i = -out->i; return true; }
        out->f = -out->f;
        return true;
    }
    if (n->kind == KP_N_UNARY && n->op == KP_OP_LNOT && kp_types_fold_number(n->a, out)) {
        if (out->tag != KP_T_INT) return false;
        out->i = ~out->i;
        return true;
    }
    if (n->kind == KP_N_BINARY && KP_OP_IS_BITWISE(n->op)) {
        KpValue a, b;
        if (!kp_types_fold_number(n->a, &a) || !kp_types_fold_number(n->b, &b)) return false;
        if (a.tag != KP_T_INT || b.tag != KP_T_INT) return false;
        if (!kp_types_bitwise(n->op, a.i, b.i, &out->i)) return false;
        out->tag = KP_T_INT;
        return true;
    }
    if (n->kind == KP_N_BINARY) {
        KpValue a, b;
        if (n->op > KP_OP_MOD || !kp_types_fold_number(n->a, &a) || !kp_types_fold_number(n->b, &b)) return false;
        if (a.tag == KP_T_INT && b.tag == KP_T_INT) {
            int64_t r;
            switch (n->op) {
            case KP_OP_ADD: if (__builtin_add_overflow(a.i, b.i, &r)) return false; break;
            case KP_OP_SUB: if (__builtin_sub_overflow(a.i, b.i, &r)) return false; break;
            case KP_OP_MUL: if (__builtin_mul_overflow(a.i, b.i, &r)) return false; break;
            case KP_OP_DIV: if (b.i == 0 || (a.i == INT64_MIN && b.i == -1)) return false; r = a.i / b.i; break;
            case KP_OP_MOD: if (b.i == 0 || b.i == -1) return false; r = a.i % b.i; break;
            default: return false;
            }
            *out = kp_int(r);
            return true;
        }
        double x = a.tag == KP_T_INT ? (double)a.i : a.f, y = b.tag == KP_T_INT ? (double)b.i : b.f;
        switch (n->op) {
        case KP_OP_ADD: *out = kp_float(x + y); return true;
        case KP_OP_SUB: *out = kp_float(x - y); return true;
        case KP_OP_MUL: *out = kp_float(x * y); return true;
        case KP_OP_DIV: *out = kp_float(x / y); return true;
        case KP_OP_MOD: *out = kp_float(fmod(x, y)); return true;
        default: return false;
        }
    }
    return false;
}

/* The bitwise operator op (land … asr) on Ints, as the VM computes it:
 * false for a shift count outside 0..63 (an error at run time). */
bool kp_types_bitwise(int op, int64_t a, int64_t b, int64_t *r) {
    if ((op == KP_OP_LSL || op == KP_OP_LSR || op == KP_OP_ASR) && (b < 0 || b > 63)) return false;
    switch (op) {
    case KP_OP_LAND: *r = a & b; return true;
    case KP_OP_LOR: *r = a | b; return true;
    case KP_OP_LXOR: *r = a ^ b; return true;
    case KP_OP_LSL: *r = (int64_t)((uint64_t)a << b); return true;
    case KP_OP_LSR: *r = (int64_t)((uint64_t)a >> b); return true;
    case KP_OP_ASR: *r = a >> b; return true;
    default: return false;
    }
}

bool kp_types_fold_binary(C *c, KpNode *n, KpValue *out) {
    (void)c;
    if (n->op <= KP_OP_MOD || KP_OP_IS_BITWISE(n->op)) return kp_types_fold_number(n, out);
    KpValue a, b;
    if (n->op < KP_OP_EQ || n->op > KP_OP_GE || !kp_types_fold_number(n->a, &a) || !kp_types_fold_number(n->b, &b)) return false;
    double x = a.tag == KP_T_INT ? (double)a.i : a.f, y = b.tag == KP_T_INT ? (double)b.i : b.f;
    bool r;
    if (a.tag == KP_T_INT && b.tag == KP_T_INT) {
        switch (n->op) {
        case KP_OP_EQ: r = a.i == b.i; break;
        case KP_OP_NE: r = a.i != b.i; break;
        case KP_OP_LT: r = a.i < b.i; break;
        case KP_OP_LE: r = a.i <= b.i; break;
        case KP_OP_GT: r = a.i > b.i; break;
        default: r = a.i >= b.i; break;
        }
    } else {
        switch (n->op) {
        case KP_OP_EQ: r = x == y; break;
        case KP_OP_NE: r = x != y; break;
        case KP_OP_LT: r = x < y; break;
        case KP_OP_LE: r = x <= y; break;
        case KP_OP_GT: r = x > y; break;
        default: r = x >= y; break;
        }
    }
    *out = kp_bool(r);
    return true;
}

bool kp_types_same_static(C *c, KpType *want, KpType *have) {
    (void)c;
    return want && have && want == have && want->kind == KP_TK_SCALAR;
}

/* A function literal's overload and, when it captures, its type: a
 * KP_TK_FUNC type whose "fields" are the captures (the value is a record
 * of that type, vm/vm.c), so that a literal that owns or borrows what it
 * captures moves like a record.  The overload's parameters are the
 * literal's, then one per capture: `&T` for a `&` capture, `$&T` for a
 * `$&` one and for a taken one (the call passes a reference to the value
 * the function owns).  Its function is not in any name's overload set. */
KpOverload *kp_types_declare_literal(C *c, KpNode *n, KpType **captypes, const char *name) {
    KpVM *vm = c->vm;
    int ncap = n->list2.count;
    KpFunc *f = kp_arena_alloc(&vm->meta_arena, sizeof(KpFunc), 16);
    KpOverload *ov = kp_arena_alloc(&vm->meta_arena, sizeof(KpOverload), 16);
    KpOverload **ovs = kp_arena_alloc(&vm->meta_arena, sizeof(KpOverload *), 8);
    if (!f || !ov || !ovs) return NULL;
    memset(f, 0, sizeof *f);
    memset(ov, 0, sizeof *ov);
    f->name = name;
    f->n = f->cap = 1;
    f->ovs = ovs;
    ovs[0] = ov;
    ov->func = f;
    int np = n->list.count;
    ov->nparams = (uint16_t)(np + ncap);
    ov->params = kp_arena_alloc(&vm->meta_arena, sizeof(KpParam) * (size_t)(np + ncap + 1), 16);
    ov->file = c->src->name;
    ov->line = n->line;
    ov->literal = (uint16_t)ncap;
    if (vm->nliterals == vm->literals_cap) {
        uint32_t ncap2 = vm->literals_cap ? vm->literals_cap * 2 : 16;
        KpFunc **q = kp_realloc(vm->meta, vm->literals, sizeof(void *) * vm->literals_cap, sizeof(void *) * ncap2, 8, NULL);
        if (!q) return NULL;
        vm->literals = q;
        vm->literals_cap = ncap2;
    }
    vm->literals[vm->nliterals++] = f;
    fill_signature(c, ov, n);
    ov->nparams = (uint16_t)(np + ncap);
    for (int i = 0; i < np; i++)
        if (n->list.items[i]->kind == KP_N_PARAM && !n->list.items[i]->a)
            kp_compile_error(c, n->list.items[i], "a function literal's parameter needs a type: `%s: T`",
                             n->list.items[i]->name ? n->list.items[i]->name : "_");
    uint64_t take = 0;
    const char **names = ncap ? kp_arena_alloc(&vm->meta_arena, sizeof(char *) * (size_t)ncap, 8) : NULL;
    for (int j = 0; j < ncap; j++) {
        KpNode *u = n->list2.items[j];
        KpParam *p = &ov->params[np + j];
        memset(p, 0, sizeof *p);
        p->def = kp_unset();
        p->name = kp_compile_intern(c, u->a->name);
        p->mode = u->op == KP_OP_REF ? KP_PM_REF : KP_PM_MUTREF;
        KpType *ct = captypes ? captypes[j] : NULL;
        if (ct && ct->kind == KP_TK_REF) ct = ct->elem;
        if (ct && ct->kind == KP_TK_ANY) ct = NULL;
        p->type = ct;
        p->fast_tag = !ct ? 0 : (ct->kind == KP_TK_SCALAR ? ct->tag : 255);
        if (u->op == KP_OP_MOVE && j < 64) take |= 1ull << j;
        if (names) names[j] = p->name;
    }
    if (ncap > 64) kp_compile_error(c, n, "a function literal captures %d variables (64 at most)", ncap);
    if (ncap) {
        KpType *t = kp_types_new(c, KP_TK_FUNC, vm->t_func->name);
        t->nfields = (uint32_t)ncap;
        t->fnames = names;
        t->ftypes = kp_arena_alloc(&vm->meta_arena, sizeof(KpType *) * (size_t)(ncap + 1), 8);
        t->defaults = kp_arena_alloc(&vm->meta_arena, sizeof(KpValue) * (size_t)(ncap + 1), 16);
        for (int j = 0; j < ncap; j++) {
            t->ftypes[j] = NULL;
            t->defaults[j] = kp_unset();
        }
        t->closure = ov;
        t->closure_take = take;
        n->stype = t;
    }
    return ov;
}
