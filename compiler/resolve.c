/*
 * resolve.c — name resolution: what every name in the program refers to.
 *
 * Design.  Keep has lexical scopes: every block is a scope, and a local is
 * visible from its declaration to the end of its block.  Locals live in
 * the compiled function's `Fn.locals` stack, newest last, so a lookup scans
 * from the top and finds the innermost binding; a name not found among the
 * function's locals may be a local of an enclosing function (a capture,
 * reported: closures are not supported), then a top-level variable (a
 * global slot, `KpGlobal`), then a type or a function.  Top-level
 * variables of earlier chunks (REPL lines, host runs) are found before
 * those this chunk is about to declare, so `x := x + 1` reads the old x.
 *
 * Declarations are hoisted per block (hoist_block): type names first, then
 * record fields, then function signatures, then the functions' summaries
 * (summary.c), then function bodies, so that
 * types and functions can be used before their declaration and can refer
 * to each other.
 */
#include "compiler_int.h"

/* ---- indices by name (interned pointers): linear probing, keys never
 * removed (a name with no binding now maps to -1) */

static uint32_t name_hash(const char *p) { return (uint32_t)(((uintptr_t)p >> 3) * 2654435761u); }

static struct LocalSlot *lslot(Fn *f, const char *name) {
    uint32_t m = f->lindex_cap - 1, i = name_hash(name) & m;
    while (f->lindex[i].name && f->lindex[i].name != name) i = (i + 1) & m;
    return &f->lindex[i];
}

/* Rebuilds the local index at twice the size (false: out of memory, the
 * lookups then scan). */
static bool lindex_grow(C *c, Fn *f) {
    uint32_t ncap = f->lindex_cap ? f->lindex_cap * 2 : 64;
    struct LocalSlot *n = kp_alloc(c->vm->meta, sizeof *n * ncap, 16, NULL);
    if (!n) return false;
    memset(n, 0, sizeof *n * ncap);
    struct LocalSlot *old = f->lindex;
    uint32_t ocap = f->lindex_cap;
    f->lindex = n;
    f->lindex_cap = ncap;
    f->lindex_n = 0;
    for (uint32_t i = 0; i < ocap; i++)
        if (old[i].name) {
            *lslot(f, old[i].name) = old[i];
            f->lindex_n++;
        }
    if (old) kp_free(c->vm->meta, old, sizeof *old * ocap, 16, NULL);
    return true;
}

Local *kp_resolve_find_local(Fn *f, const char *name) {
    if (f->lindex_cap) {
        struct LocalSlot *sl = lslot(f, name);
        return sl->name && sl->idx >= 0 ? &f->locals[sl->idx] : NULL;
    }
    for (int i = f->nlocals - 1; i >= 0; i--)
        if (f->locals[i].name == name) return &f->locals[i];
    return NULL;
}

void kp_resolve_pop_local(Fn *f) {
    Local *l = &f->locals[--f->nlocals];
    if (f->lindex_cap) lslot(f, l->name)->idx = l->prev_same;
}

Local *kp_resolve_add_local(C *c, const char *name, uint32_t reg, KpType *t) {
    Fn *f = c->fn;
    IGROW(c, f->locals, f->nlocals, f->cap_loc);
    int32_t k = f->nlocals;
    Local *l = &f->locals[f->nlocals++];
    memset(l, 0, sizeof *l);
    l->name = name;
    l->reg = reg;
    l->type = t;
    l->depth = f->depth;
    l->start_pc = kp_cg_pc(c);
    l->decl_line = f->line;
    l->decl_col = f->col;
    l->prev_same = -1;
    if ((f->lindex_n + 1) * 2 > f->lindex_cap && !lindex_grow(c, f)) {
        /* no index any more: lookups scan */
        f->lindex = NULL;
        f->lindex_cap = f->lindex_n = 0;
    }
    if (f->lindex_cap) {
        struct LocalSlot *s = lslot(f, name);
        if (!s->name) {
            s->name = name;
            s->idx = -1;
            f->lindex_n++;
        }
        l->prev_same = s->idx;
        s->idx = k;
    }
    return l;
}

void kp_resolve_note_local_info(C *c, Local *l) {
    KpProto *p = c->fn->p;
    GROW(c, p->locals, &c->fn->cap_locals, p->nlocals);
    p->locals[p->nlocals++] = (KpLocalInfo){l->name, l->reg, l->start_pc, kp_cg_pc(c)};
}

TypeBind *kp_resolve_find_type(C *c, const char *name) {
    for (int i = c->ntypes - 1; i >= 0; i--)
        if (c->types[i].name == name) return &c->types[i];
    for (uint32_t i = 0; i < c->vm->ntypes; i++)
        if (c->vm->types[i].name == name) {
            c->tb_scratch = (TypeBind){name, c->vm->types[i].type, c->vm->types[i].generic, 0};
            return &c->tb_scratch;
        }
    return NULL;
}

KpFunc *kp_resolve_find_func(C *c, const char *name) {
    KpFunc *f = kp_func_get(c->vm, name, false); /* (registers library functions on first use) */
    /* a function whose every overload a failed chunk declared (and took
     * back, compile.c) is unknown again */
    return f && (f->n || f->special) ? f : NULL;
}

/* A top-level variable by name: one from an earlier chunk (REPL line,
 * host run) before one this chunk is about to declare, so that
 * `x := x + 1` reads the old x (the index by name: vm/state.c). */
struct KpGlobal *kp_resolve_find_global(C *c, const char *name) {
    KpVM *vm = c->vm;
    int32_t i = kp_vm_global_find(vm, name, 0);
    if (i < 0) i = kp_vm_global_find(vm, name, -1);
    return i >= 0 ? &vm->globals[i] : NULL;
}

struct KpGlobal *kp_resolve_find_pending_global(C *c, const char *name) {
    int32_t i = kp_vm_global_find(c->vm, name, 1);
    return i >= 0 ? &c->vm->globals[i] : NULL;
}

/* Hoisting: type declarations, then function signatures and bodies. */
void kp_resolve_hoist_block(C *c, KpNodeList *stmts) {
    KpVM *vm = c->vm;
    bool top = c->fn->is_main && c->fn->depth == 0 && c->func_depth == 0;
    /* 1. type shells */
    for (int i = 0; i < stmts->count; i++) {
        KpNode *n = stmts->items[i];
        if (!n || n->kind != KP_N_TYPEDECL) continue;
        const char *name = kp_compile_intern(c, n->name);
        for (int j = c->ntypes - 1; j >= 0 && c->types[j].depth == c->tdepth; j--)
            if (c->types[j].name == name) kp_compile_error(c, n, "type '%s' is declared twice in this scope", n->name);
        KpType *t = NULL;
        if (!n->list2.count) {
            t = kp_types_new(c, (n->flags & KP_F_ABSTRACT) ? KP_TK_ABSTRACT : KP_TK_RECORD, name);
        }
        IGROW(c, c->types, c->ntypes, c->cap_types);
        c->types[c->ntypes++] = (TypeBind){name, t, n->list2.count ? n : NULL, c->tdepth};
        if (top) {
            IGROW(c, vm->types, (int)vm->ntypes, vm->types_cap);
            vm->types[vm->ntypes++] = (struct KpNamedType){name, t, n->list2.count ? n : NULL, NULL};
        }
    }
    /* 2. fields */
    for (int i = 0; i < stmts->count; i++) {
        KpNode *n = stmts->items[i];
        if (!n || n->kind != KP_N_TYPEDECL || n->list2.count) continue;
        TypeBind *tb = kp_resolve_find_type(c, kp_compile_intern(c, n->name));
        if (!tb || !tb->type) continue;
        if (n->flags & KP_F_ABSTRACT) {
            KpType *t = tb->type;
            t->nreqs = 0;
            t->reqs = kp_arena_alloc(&vm->meta_arena, sizeof(char *) * (size_t)(n->list.count + 1), 8);
            for (int j = 0; j < n->list.count; j++)
                if (n->list.items[j]->kind == KP_N_FUNC)
                    t->reqs[t->nreqs++] = kp_compile_intern(c, n->list.items[j]->name);
        } else {
            kp_types_fill_record(c, tb->type, n);
        }
    }
    /* 3. function signatures */
    KpOverload **ovs = NULL;
    int novs = 0, cap = 0;
    for (int i = 0; i < stmts->count; i++) {
        KpNode *n = stmts->items[i];
        if (!n || n->kind != KP_N_FUNC) continue;
        if (!n->b) { kp_compile_error(c, n, "function '%s' has no body", n->name); continue; }
        IGROW(c, ovs, novs, cap);
        ovs[novs++] = kp_types_declare_function(c, n);
        kp_tc_declared(c, kp_compile_intern(c, n->name));
    }
    /* 4. the summaries of the functions (summary.c): before any body, so
     * that a call may name a function declared later, or recursively */
    if (novs) kp_sum_block(c, stmts, ovs, novs);
    /* 5. bodies */
    int k = 0;
    for (int i = 0; i < stmts->count; i++) {
        KpNode *n = stmts->items[i];
        if (!n || n->kind != KP_N_FUNC || !n->b) continue;
        KpOverload *ov = ovs[k++];
        if (ov) kp_cg_function(c, n, ov);
    }
}

/* A place is a variable, or a field or element of a place: something that
 * outlives the expression.  A field of a call's result is not one. */
bool kp_resolve_is_place(KpNode *n) {
    while (n->kind == KP_N_FIELD || n->kind == KP_N_INDEX) n = n->a;
    return n->kind == KP_N_IDENT || n->kind == KP_N_HOLE;
}

/* Resolves a local or global variable.  Reports captures. */
Local *kp_resolve_lookup_var(C *c, const char *name, bool *global, struct KpGlobal **g) {
    *global = false;
    *g = NULL;
    Local *l = kp_resolve_find_local(c->fn, name);
    if (l) {
        if (l->far) { /* main reaches it as functions do */
            *global = true;
            *g = &c->vm->globals[l->gidx];
            return NULL;
        }
        if (l->global) { *global = !c->fn->is_main; *g = kp_resolve_find_global(c, name); }
        return l;
    }
    for (Fn *o = c->fn->outer; o; o = o->outer) {
        Local *ol = kp_resolve_find_local(o, name);
        if (ol && !ol->global) return (Local *)1; /* capture marker */
    }
    struct KpGlobal *gl = kp_resolve_find_global(c, name);
    if (gl) { *global = true; *g = gl; }
    return NULL;
}

KpNode *kp_resolve_place_root(KpNode *n) {
    while (n->kind == KP_N_FIELD || n->kind == KP_N_INDEX) n = n->a;
    return n;
}

int kp_resolve_local_index(Fn *f, Local *l) { return (int)(l - f->locals); }

/* The variable at the root of a place (`h` in `h.a[1].b`), or NULL. */
KpNode *kp_resolve_root_ident(KpNode *n) {
    while (n && (n->kind == KP_N_FIELD || n->kind == KP_N_INDEX)) n = n->a;
    return n && n->kind == KP_N_IDENT ? n : NULL;
}

/* Does n use the pipe's `_`?  A nested pipe binds its own `_` on the right,
 * so only its left side counts. */
bool kp_resolve_has_hole(KpNode *n) {
    if (!n) return false;
    if (n->kind == KP_N_HOLE) return true;
    if (n->kind == KP_N_PIPE) return kp_resolve_has_hole(n->a);
    if (kp_resolve_has_hole(n->a) || kp_resolve_has_hole(n->b) || kp_resolve_has_hole(n->c)) return true;
    for (int i = 0; i < n->list.count; i++)
        if (kp_resolve_has_hole(n->list.items[i])) return true;
    return false;
}

/* ------------------------------------------------ function literal captures
 *
 * The captures of a function literal are the names its body uses that it
 * does not declare itself (its parameters, its locals, its loop variables,
 * the parameters of literals nested in it): a syntactic walk with a stack
 * of the names in scope.  How the literal captures each one is decided by
 * how the body uses it, in this order: `~&x` anywhere takes x (the
 * function value owns it from then on; `~&x` in the body names that value,
 * it does not move it out at each call); an assignment to x (or to a field
 * or element of it) or `$&x` borrows it mutably; any other use borrows it
 * read-only.  Which of those names are variables of the enclosing function
 * — the only ones captured; top-level variables, functions and types are
 * reached as from any function — the types pass decides, and it removes
 * the others (typecheck.c). */

typedef struct CapWalk {
    C *c;
    const char **scope;
    int n, cap;
    struct { const char *name; int op; KpNode *at; } *found;
    int nfound, capfound;
    bool inspect; /* kp_resolve_outer_uses: find the uses, rewrite nothing */
} CapWalk;

static void cap_push(CapWalk *w, const char *name) {
    if (!name) return;
    IGROW(w->c, w->scope, w->n, w->cap);
    if (w->scope) w->scope[w->n++] = name;
}

static bool cap_bound(CapWalk *w, const char *name) {
    for (int i = w->n - 1; i >= 0; i--)
        if (w->scope[i] == name) return true;
    return false;
}

/* op strength: REF < MUTREF < MOVE */
static int cap_rank(int op) { return op == KP_OP_MOVE ? 3 : op == KP_OP_MUTREF ? 2 : 1; }

static void cap_note(CapWalk *w, const char *raw, int op, KpNode *at) {
    if (!raw || raw[0] == '#' || !strcmp(raw, "...") || !strcmp(raw, "_")) return;
    const char *name = kp_compile_intern(w->c, raw);
    if (cap_bound(w, name)) return;
    for (int i = 0; i < w->nfound; i++)
        if (w->found[i].name == name) {
            if (cap_rank(op) > cap_rank(w->found[i].op)) w->found[i].op = op;
            return;
        }
    IGROW(w->c, w->found, w->nfound, w->capfound);
    if (!w->found) return;
    w->found[w->nfound].name = name;
    w->found[w->nfound].op = op;
    w->found[w->nfound++].at = at;
}

static void cap_walk(CapWalk *w, KpNode *n);

static void cap_list(CapWalk *w, KpNodeList *l) {
    for (int i = 0; i < l->count; i++) cap_walk(w, l->items[i]);
}

static void cap_walk(CapWalk *w, KpNode *n) {
    if (!n) return;
    int mark = w->n;
    switch (n->kind) {
    case KP_N_IDENT: cap_note(w, n->name, KP_OP_REF, n); return;
    case KP_N_UNARY:
        if (n->op == KP_OP_MOVE && n->a) {
            /* `~&x` (or `~&x.f`, `~&xs[i]`) of an outer x: the literal
             * takes x; in the body it names the taken value (the node
             * becomes its operand: `x`, `x.f`) */
            KpNode *r = kp_resolve_root_ident(n->a);
            if (r && w->inspect) {
                cap_note(w, r->name, KP_OP_MOVE, r);
                cap_walk(w, n->a);
                return;
            }
            if (r && r->name[0] != '#' && !cap_bound(w, kp_compile_intern(w->c, r->name))) {
                cap_note(w, r->name, KP_OP_MOVE, r);
                uint32_t line = n->line, col = n->col;
                *n = *n->a;
                n->line = line;
                n->col = col;
                cap_walk(w, n);
                return;
            }
        }
        if (n->op == KP_OP_MUTREF) {
            KpNode *r = kp_resolve_root_ident(n->a);
            if (r) cap_note(w, r->name, KP_OP_MUTREF, r);
        }
        cap_walk(w, n->a);
        return;
    case KP_N_ASSIGN: {
        KpNode *r = kp_resolve_root_ident(n->a);
        if (r) cap_note(w, r->name, KP_OP_MUTREF, r);
        cap_walk(w, n->a);
        cap_walk(w, n->b);
        return;
    }
    case KP_N_FIELD: cap_walk(w, n->a); return;
    case KP_N_FIELDINIT: cap_walk(w, n->a); return;
    case KP_N_PARAM: cap_walk(w, n->b); return;
    case KP_N_REFTYPE: return;
    case KP_N_FUNC:
    case KP_N_TYPEDECL: return; /* named functions capture nothing */
    case KP_N_DECL:
        cap_walk(w, n->b);
        cap_push(w, kp_compile_intern(w->c, n->name));
        return; /* in scope to the end of the enclosing block */
    case KP_N_BLOCK:
        cap_list(w, &n->list);
        w->n = mark;
        return;
    case KP_N_FOR:
        cap_walk(w, n->a);
        if (n->name) cap_push(w, kp_compile_intern(w->c, n->name));
        if (n->name2) cap_push(w, kp_compile_intern(w->c, n->name2));
        cap_walk(w, n->b);
        w->n = mark;
        return;
    case KP_N_FUNCLIT:
        /* a nested literal: its own captures first; those it needs from
         * outside this literal are this literal's too */
        kp_resolve_captures(w->c, n);
        for (int i = 0; i < n->list2.count; i++) {
            KpNode *u = n->list2.items[i];
            cap_note(w, u->a->name, u->op, u->a);
        }
        return;
    default:
        cap_walk(w, n->a);
        cap_walk(w, n->b);
        cap_walk(w, n->c);
        cap_list(w, &n->list);
        cap_list(w, &n->list2);
        return;
    }
}

static void cap_params(CapWalk *w, KpNode *lit) {
    C *c = w->c;
    for (int i = 0; i < lit->list.count; i++)
        if (lit->list.items[i]->kind == KP_N_PARAM) {
            cap_walk(w, lit->list.items[i]->b);
            if (lit->list.items[i]->name) cap_push(w, kp_compile_intern(c, lit->list.items[i]->name));
        }
    if (lit->a && lit->a->kind == KP_N_OUTPUTS)
        for (int i = 0; i < lit->a->list.count; i++)
            if (lit->a->list.items[i]->name) cap_push(w, kp_compile_intern(c, lit->a->list.items[i]->name));
}

void kp_resolve_outer_uses(C *c, KpNode *fn, void (*use)(void *ud, const char *name, int op, KpNode *at), void *ud) {
    CapWalk w;
    memset(&w, 0, sizeof w);
    w.c = c;
    w.inspect = true;
    cap_params(&w, fn);
    if (fn->b) {
        if (fn->b->kind == KP_N_BLOCK) cap_list(&w, &fn->b->list);
        else cap_walk(&w, fn->b);
    }
    for (int i = 0; i < w.nfound; i++) use(ud, w.found[i].name, w.found[i].op, w.found[i].at);
    if (w.scope) kp_free(c->vm->meta, w.scope, sizeof(char *) * (size_t)w.cap, 16, NULL);
    if (w.found) kp_free(c->vm->meta, w.found, sizeof *w.found * (size_t)w.capfound, 16, NULL);
}

void kp_resolve_captures(C *c, KpNode *lit) {
    if (lit->flags & KP_F_CAPTURED) return;
    lit->flags |= KP_F_CAPTURED;
    CapWalk w;
    memset(&w, 0, sizeof w);
    w.c = c;
    for (int i = 0; i < lit->list.count; i++)
        if (lit->list.items[i]->kind == KP_N_PARAM) {
            cap_walk(&w, lit->list.items[i]->b);
            if (lit->list.items[i]->name) cap_push(&w, kp_compile_intern(c, lit->list.items[i]->name));
        }
    if (lit->a && lit->a->kind == KP_N_OUTPUTS)
        for (int i = 0; i < lit->a->list.count; i++)
            if (lit->a->list.items[i]->name) cap_push(&w, kp_compile_intern(c, lit->a->list.items[i]->name));
    if (lit->b) cap_list(&w, &lit->b->list);
    lit->list2.count = 0;
    lit->list2.items = NULL;
    for (int i = 0; i < w.nfound; i++) {
        KpNode *at = w.found[i].at;
        KpNode *id = kp_ast_new(&c->vm->meta_arena, KP_N_IDENT, at->line, at->col);
        KpNode *u = kp_ast_new(&c->vm->meta_arena, KP_N_UNARY, at->line, at->col);
        if (!id || !u) break;
        id->name = w.found[i].name;
        id->depth = 1;
        u->op = (uint16_t)w.found[i].op;
        u->a = id;
        u->depth = 2;
        kp_ast_push(&c->vm->meta_arena, &lit->list2, u);
    }
    if (w.scope) kp_free(c->vm->meta, w.scope, sizeof(char *) * (size_t)w.cap, 16, NULL);
    if (w.found) kp_free(c->vm->meta, w.found, sizeof *w.found * (size_t)w.capfound, 16, NULL);
}
