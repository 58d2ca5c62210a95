/*
 * compile.c — from the AST to bytecode: the driver of the compiler's passes
 * and the helpers they share.
 *
 * Design.  kp_compile_ex compiles one chunk (a file, a REPL line, a host
 * run) into the main KpProto: it reserves a global slot for every
 * top-level variable, then compiles the program's top-level block through
 * the passes — names (resolve.c), static types (types.c), ownership
 * (ownership.c) and bytecode (codegen.c, codegen_stmt.c); function bodies
 * are compiled as their declarations are hoisted.  Errors accumulate in
 * the chunk's KpDiags and compilation goes on; a chunk with any error
 * yields no code.  Everything the compiler allocates comes from the VM's
 * metadata allocator and arena (vm->meta, vm->meta_arena), released with
 * the VM.
 *
 * Out of memory.  A refused host allocation while compiling ends the
 * compile at once: the VM's host allocator jumps back to kp_compile_ex
 * (vm->compile_oom; Lua's parser raises its memory errors the same way),
 * which reports "out of memory" for the chunk.  Nothing leaks, since all
 * the compiler allocates is in the VM's arena, and nothing is half-made
 * that outlives the chunk: its reserved globals stay pending and are
 * released by the driver like those of any chunk with errors.
 */
#include "compiler_int.h"
#include "../stdlib/builtins.h"

void kp_compile_error(C *c, KpNode *n, const char *fmt, ...) {
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    kp_diag_add(c->diags, n ? n->line : c->fn->line, n ? n->col : c->fn->col, "%s", buf);
}

void *kp_compile_grow(C *c, void *arr, uint32_t *cap, uint32_t n, size_t elem) {
    if (n < *cap) return arr;
    uint32_t ncap = *cap ? *cap * 2 : 16;
    void *q = kp_realloc(c->vm->meta, arr, elem * *cap, elem * ncap, 16, NULL);
    if (!q) return NULL;
    *cap = ncap;
    return q;
}

KpString *kp_compile_const_str(C *c, const char *s, size_t len) {
    KpString *str = kp_vm_const_str(c->vm, s, len); /* outlives the run's arena */
    if (str) return str;
    kp_compile_error(c, NULL, "out of memory");
    return c->vm->empty_str; /* the chunk does not run */
}

const char *kp_compile_intern(C *c, const char *s) { return kp_intern(c->vm, s, strlen(s)); }

KpProto *kp_compile_new_proto(C *c, const char *name) {
    KpProto *p = kp_arena_alloc(&c->vm->meta_arena, sizeof(KpProto), 16);
    memset(p, 0, sizeof *p);
    p->name = name;
    p->src = c->src;
    p->own_regs = ~(uint64_t)0; /* until kp_proto_finish: all */
    return p;
}

static KpProto *compile_chunk(KpVM *vm, const KpSource *src, KpNode *program, KpDiags *diags, bool repl,
                              KpOwnLog *log);

KpProto *kp_compile_ex(KpVM *vm, const KpSource *src, KpNode *program, KpDiags *diags, bool repl) {
    return kp_compile_own(vm, src, program, diags, repl, NULL);
}

void kp_compile_undo_push(C *c, const struct KpDeclUndo *u) {
    KpVM *vm = c->vm;
    if (vm->ndecl_undo == vm->cap_decl_undo) {
        uint32_t ncap = vm->cap_decl_undo ? vm->cap_decl_undo * 2 : 8;
        /* refused: the host allocator jumps to kp_compile_own before the
         * change is made */
        struct KpDeclUndo *q = kp_realloc(vm->meta, vm->decl_undo, sizeof *q * vm->cap_decl_undo, sizeof *q * ncap, 16, NULL);
        if (!q) return;
        vm->decl_undo = q;
        vm->cap_decl_undo = ncap;
    }
    vm->decl_undo[vm->ndecl_undo++] = *u;
}

/* Undoes what the undo log (from entry `from` on) records, newest first,
 * and drops the types declared after the first `ntypes`. */
static void undo_decls(KpVM *vm, uint32_t from, uint32_t ntypes) {
    while (vm->ndecl_undo > from) {
        struct KpDeclUndo *u = &vm->decl_undo[--vm->ndecl_undo];
        switch (u->kind) {
        case KP_UNDO_APPEND: u->f->n--; break;
        case KP_UNDO_REDEFINE: *u->ov = u->saved; break;
        case KP_UNDO_DEINIT: u->type->user_deinit = u->old_deinit; break;
        }
    }
    if (vm->ntypes > ntypes) vm->ntypes = ntypes;
}

/* The log is the compiling chunk's: released when the outermost compile
 * ends (a chunk may be compiled while another is, re-entrantly). */
static void end_undo(KpVM *vm, uint32_t from) {
    vm->ndecl_undo = from;
    if (from == 0 && vm->decl_undo) {
        kp_realloc(vm->meta, vm->decl_undo, sizeof *vm->decl_undo * vm->cap_decl_undo, 0, 16, NULL);
        vm->decl_undo = NULL;
        vm->cap_decl_undo = 0;
    }
}

KpProto *kp_compile_own(KpVM *vm, const KpSource *src, KpNode *program, KpDiags *diags, bool repl, KpOwnLog *log) {
    jmp_buf oom;
    jmp_buf *outer = vm->compile_oom;
    const uint32_t undo_from = vm->ndecl_undo, ntypes = vm->ntypes;
    if (setjmp(oom)) {
        vm->compile_oom = outer;
        undo_decls(vm, undo_from, ntypes);
        end_undo(vm, undo_from);
        kp_diag_add(diags, 1, 1, "out of memory while compiling");
        return NULL;
    }
    vm->compile_oom = &oom;
    KpProto *p = compile_chunk(vm, src, program, diags, repl, log);
    vm->compile_oom = outer;
    if (!p) undo_decls(vm, undo_from, ntypes);
    end_undo(vm, undo_from);
    return p;
}

/* ------------------------------------------- early types of globals */

/* The type of a top-level variable's initializer when it is evident from
 * the text alone: an Int, Float or Bool literal, a negated number, or + -
 * * of numbers of one kind that folds (so code generation gives the
 * declaration the same type); else NULL. */
static KpType *literal_type(C *c, KpNode *n) {
    KpVM *vm = c->vm;
    switch (n->kind) {
    case KP_N_INT: return vm->t_int;
    case KP_N_FLOAT: return vm->t_float;
    case KP_N_BOOL: return vm->t_bool;
    case KP_N_UNARY:
        if (n->op != KP_OP_NEG) return NULL;
        {
            KpType *t = literal_type(c, n->a);
            KpValue v;
            return t != vm->t_bool && kp_types_fold_number(n, &v) ? t : NULL;
        }
    case KP_N_BINARY: {
        if (n->op != KP_OP_ADD && n->op != KP_OP_SUB && n->op != KP_OP_MUL) return NULL;
        KpType *a = literal_type(c, n->a), *b = literal_type(c, n->b);
        KpValue v;
        return a && a == b && a != vm->t_bool && kp_types_fold_number(n, &v) ? a : NULL;
    }
    default: return NULL;
    }
}

/* Marks in mut[] the globals reserved by this chunk that n changes where
 * their static type is not checked today: assigned inside a function
 * body (in_func), or borrowed mutably or taken anywhere; *all when a
 * mutable borrow's root is not a name (`$&_`). */
static void mark_mutated(C *c, KpNode *n, bool in_func, uint8_t *mut, uint32_t from, bool *all) {
    if (!n || *all) return;
    if (n->kind == KP_N_FUNC || n->kind == KP_N_FUNCLIT) in_func = true;
    KpNode *target = NULL;
    if (n->kind == KP_N_ASSIGN && in_func) target = n->a;
    if (n->kind == KP_N_UNARY && (n->op == KP_OP_MUTREF || n->op == KP_OP_MOVE)) target = n->a;
    if (target) {
        KpNode *r = kp_resolve_root_ident(target);
        if (!r || !r->name) {
            *all = true;
            return;
        }
        struct KpGlobal *g = kp_resolve_find_pending_global(c, kp_compile_intern(c, r->name));
        if (g && (uint32_t)(g - c->vm->globals) >= from) mut[g - c->vm->globals - from] = 1;
    }
    mark_mutated(c, n->a, in_func, mut, from, all);
    mark_mutated(c, n->b, in_func, mut, from, all);
    mark_mutated(c, n->c, in_func, mut, from, all);
    for (int i = 0; i < n->list.count; i++) mark_mutated(c, n->list.items[i], in_func, mut, from, all);
    for (int i = 0; i < n->list2.count; i++) mark_mutated(c, n->list2.items[i], in_func, mut, from, all);
}

/* The builtin scalar type a declaration's annotation names (`x : Int`),
 * or NULL. */
static KpType *annotation_type(C *c, KpNode *a) {
    KpVM *vm = c->vm;
    if (a->kind != KP_N_IDENT || !a->name) return NULL;
    KpType *t = kp_types_builtin(c, a->name);
    return t == vm->t_int || t == vm->t_float || t == vm->t_bool ? t : NULL;
}

/* Function bodies are compiled before the top-level statements (they are
 * hoisted), so a top-level variable has no static type yet where they
 * read it, and every read is dynamic (a comparison with it borrows it and
 * drops the temporary).  Here each global this chunk reserves gets its
 * static type at once when that type is evident (literal_type) and
 * nothing can give it a value of another type before the declaration is
 * compiled: declared once in the chunk, never assigned inside a function
 * body (those assignments are checked only against a known type), never
 * borrowed mutably or taken.  The declaration later sets the same type. */
static void early_global_types(C *c, KpNode *program, uint32_t from) {
    KpVM *vm = c->vm;
    uint32_t n = vm->nglobals - from;
    if (!n) return;
    uint8_t *mut = kp_arena_alloc(&vm->meta_arena, 2 * (size_t)n, 1); /* by global index - from */
    if (!mut) return;
    memset(mut, 0, 2 * (size_t)n);
    uint8_t *decls = mut + n;
    bool all = false;
    mark_mutated(c, program, false, mut, from, &all);
    if (all) return;
    for (int i = 0; i < program->list.count; i++) {
        KpNode *s = program->list.items[i];
        if (!s || s->kind != KP_N_DECL) continue;
        struct KpGlobal *g = kp_resolve_find_pending_global(c, kp_compile_intern(c, s->name));
        if (g && (uint32_t)(g - vm->globals) >= from && decls[g - vm->globals - from] < 2) decls[g - vm->globals - from]++;
    }
    for (int i = 0; i < program->list.count; i++) {
        KpNode *s = program->list.items[i];
        if (!s || s->kind != KP_N_DECL) continue;
        struct KpGlobal *g = kp_resolve_find_pending_global(c, kp_compile_intern(c, s->name));
        if (!g || (uint32_t)(g - vm->globals) < from || g->type) continue;
        uint32_t k = (uint32_t)(g - vm->globals) - from;
        if (decls[k] != 1 || mut[k]) continue;
        g->type = s->a ? annotation_type(c, s->a) : s->b ? literal_type(c, s->b) : NULL;
    }
}

static KpProto *compile_chunk(KpVM *vm, const KpSource *src, KpNode *program, KpDiags *diags, bool repl,
                              KpOwnLog *log) {
    C c;
    memset(&c, 0, sizeof c);
    c.vm = vm;
    c.own = log;
    c.src = src;
    c.diags = diags;
    c.repl = repl;
    int errors_before = diags->count;
    Fn fn;
    memset(&fn, 0, sizeof fn);
    fn.is_main = true;
    fn.p = kp_compile_new_proto(&c, kp_compile_intern(&c, "main"));
    c.fn = &fn;

    kp_mod_rewrite(&c, program);
    kp_own_scan_keeps(&c, &fn, program);
    /* reserve a register for every top-level variable, and one for the box
     * of each that is kept manually (`keep x` with no owner); once
     * KP_NEAR_GLOBALS registers are taken, a slot of the far region
     * instead (its box a far global too, hidden: "(box)") */
    uint32_t nglobals0 = vm->nglobals, main_nregs0 = vm->main_nregs;
    for (int i = 0; i < program->list.count; i++) {
        KpNode *s = program->list.items[i];
        if (!s || s->kind != KP_N_DECL) continue;
        const char *name = kp_compile_intern(&c, s->name);
        int ki = kp_own_kept_index(&fn, name);
        bool boxed = ki >= 0 && fn.kept[ki].manual && fn.kept[ki].box_reg == NO_REG;
        if (vm->main_nregs + 2 <= KP_NEAR_GLOBALS) {
            IGROW(&c, vm->globals, (int)vm->nglobals, vm->globals_cap);
            vm->globals[vm->nglobals++] = (struct KpGlobal){name, vm->main_nregs++, NULL, 1, -1, false};
            if (boxed) fn.kept[ki].box_reg = vm->main_nregs++;
            continue;
        }
        for (int k = 0; k < (boxed ? 2 : 1); k++) {
            uint32_t slot = kp_vm_far_slot(vm);
            if (slot == UINT32_MAX) {
                /* the chunk declares nothing: its reservations are undone */
                kp_compile_error(&c, s, "too many top-level variables: the value stack (%u values) has no room for more",
                                 vm->stack_values);
                kp_vm_globals_truncate(vm, nglobals0);
                vm->main_nregs = main_nregs0;
                return NULL;
            }
            IGROW(&c, vm->globals, (int)vm->nglobals, vm->globals_cap);
            vm->globals[vm->nglobals++] =
                (struct KpGlobal){k ? kp_compile_intern(&c, "(box)") : name, slot, NULL, 1, -1, true};
            if (k) fn.kept[ki].box_reg = vm->nglobals - 1; /* far: the box's global index */
        }
    }
    /* temporaries start above the globals and the room kept for the
     * globals of chunks run re-entrantly, or, for such a chunk, above
     * everything in use (api/driver.c) */
    uint32_t temps = vm->main_nregs + KP_NESTED_GLOBALS;
    if (vm->temps_floor > temps) temps = vm->temps_floor;
    fn.freereg = temps;
    fn.p->nregs = temps;
    fn.p->temps = temps;
    if (repl && program->list.count > 0) {
        /* the REPL shows the value of a final expression statement */
        KpNode *last = program->list.items[program->list.count - 1];
        const char *show = kp_builtin_name_with(KP_BF_SHOW); /* #show */
        if (show && last && last->kind == KP_N_EXPRSTMT && last->a && last->a->kind != KP_N_ASSIGN) {
            KpNode *call = kp_ast_new(&vm->meta_arena, KP_N_CALL, last->line, last->col);
            KpNode *callee = kp_ast_new(&vm->meta_arena, KP_N_IDENT, last->line, last->col);
            if (call && callee) {
                callee->name = show;
                call->a = callee;
                kp_ast_push(&vm->meta_arena, &call->list, last->a);
                last->a = call;
            }
        }
    }
    early_global_types(&c, program, nglobals0);
    kp_tc_count_decls(&c, program);
    kp_cg_block_body(&c, program);
    /* top-level function bodies compiled in hoist_block; now the end */
    kp_cg_at(&c, NULL);
    /* end of the chunk: top-level defers run now (globals stay alive) */
    if (fn.ndefers > 0) kp_own_emit_exit(&c, -1, 0);
    kp_cg_emit(&c, KP_BC_HALT, 0, 0, 0, 0);
    kp_own_finish_defers(&c);
    kp_own_note_end(&c);
    /* record names of globals in the local info for messages */
    for (int i = 0; i < fn.nlocals; i++) kp_resolve_note_local_info(&c, &fn.locals[i]);
    for (uint32_t i = 0; i < vm->nglobals; i++) vm->globals[i].pending = 0;
    if (diags->count > errors_before) return NULL;
    if (vm->dump_bytecode) kp_dump_proto(vm, fn.p);
    return fn.p;
}

KpProto *kp_compile(KpVM *vm, const KpSource *src, KpNode *program, KpDiags *diags) {
    return kp_compile_ex(vm, src, program, diags, false);
}

/* The static type of one expression in the top-level scope, for the REPL's
 * :type: the expression is compiled into a throwaway main proto (never
 * run), exactly as a REPL line would compile it, and the type the passes
 * inferred is returned — NULL when they cannot tell before running. */
KpType *kp_compile_static_type(KpVM *vm, const KpSource *src, KpNode *expr, KpDiags *diags) {
    C c;
    memset(&c, 0, sizeof c);
    c.vm = vm;
    c.src = src;
    c.diags = diags;
    c.repl = true;
    int errors_before = diags->count;
    Fn fn;
    memset(&fn, 0, sizeof fn);
    fn.is_main = true;
    fn.p = kp_compile_new_proto(&c, kp_compile_intern(&c, "main"));
    c.fn = &fn;
    /* temporaries start above the globals and the room kept for the
     * globals of chunks run re-entrantly, or, for such a chunk, above
     * everything in use (api/driver.c) */
    uint32_t temps = vm->main_nregs + KP_NESTED_GLOBALS;
    if (vm->temps_floor > temps) temps = vm->temps_floor;
    fn.freereg = temps;
    fn.p->nregs = temps;
    fn.p->temps = temps;
    /* the types pass first, as for a line that runs (it binds calls), and
     * its type when it knows one: it follows element types (List#(Int)),
     * where code generation knows only the kind of value */
    /* `geo.area(…)`: the names of the main script's imports */
    struct KpModAlias *al = vm->cur_aliases;
    uint32_t nal = vm->ncur_aliases;
    vm->cur_aliases = vm->aliases;
    vm->ncur_aliases = vm->naliases;
    kp_mod_rewrite_expr(&c, expr);
    vm->cur_aliases = al;
    vm->ncur_aliases = nal;
    KpType *tt = kp_tc_expr_type(&c, expr);
    uint32_t dst = kp_cg_reg_alloc(&c);
    KpType *t = kp_cg_expr(&c, expr, dst, M_VALUE);
    if (tt) t = tt;
    return diags->count > errors_before ? NULL : t;
}

/* ------------------------------------------------------- did you mean */

/* Edit distance of a and b (insertions, deletions, substitutions, and
 * swaps of two neighbours: the optimal string alignment distance), or more
 * than `max` when it exceeds it. */
static size_t edit_distance(const char *a, const char *b, size_t max) {
    size_t la = strlen(a), lb = strlen(b);
    if (la > 64 || lb > 64) return max + 1;
    if ((la > lb ? la - lb : lb - la) > max) return max + 1;
    static _Thread_local size_t d[65][65];
    for (size_t i = 0; i <= la; i++) d[i][0] = i;
    for (size_t j = 0; j <= lb; j++) d[0][j] = j;
    for (size_t i = 1; i <= la; i++) {
        for (size_t j = 1; j <= lb; j++) {
            size_t cost = a[i - 1] != b[j - 1];
            size_t v = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < v) v = d[i][j - 1] + 1;
            if (d[i - 1][j - 1] + cost < v) v = d[i - 1][j - 1] + cost;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] && d[i - 2][j - 2] + 1 < v)
                v = d[i - 2][j - 2] + 1;
            d[i][j] = v;
        }
    }
    return d[la][lb];
}

void kp_compile_similar_init(KpSimilar *s, const char *name) {
    s->name = name;
    size_t len = strlen(name);
    s->max = len < 3 ? 1 : len / 3 > 1 ? len / 3 : 1; /* as rustc: a third of the length */
    s->best = NULL;
    s->dist = s->max + 1;
}

void kp_compile_similar_try(KpSimilar *s, const char *cand) {
    if (!cand || !*cand || cand[0] == '(' || !strcmp(cand, s->name)) return;
    size_t d = edit_distance(s->name, cand, s->max);
    if (d >= strlen(s->name)) return; /* nothing of the name left */
    if (d < s->dist) {
        s->dist = d;
        s->best = cand;
    }
}

void kp_compile_similar_help(C *c, KpSimilar *s) {
    if (s->best) kp_diag_note(c->diags, "help: did you mean '%s'?", s->best);
}

/* Names a variable, function or type could have been meant for `name`. */
void kp_compile_similar_names(C *c, KpSimilar *s, bool vars, bool funcs, bool types) {
    KpVM *vm = c->vm;
    if (vars) {
        for (Fn *f = c->fn; f; f = f->outer) {
            for (int i = 0; i < f->nlocals; i++) kp_compile_similar_try(s, f->locals[i].name);
            if (f == c->fn && !f->is_main) break; /* no closures: an enclosing function's locals do not count */
        }
        for (uint32_t i = 0; i < vm->nglobals; i++) kp_compile_similar_try(s, vm->globals[i].name);
    }
    if (funcs)
        for (uint32_t i = 0; i < vm->nfuncs; i++)
            if (vm->funcs[i]->n) kp_compile_similar_try(s, vm->funcs[i]->name);
    if (types) {
        static const char *const builtin[] = {"Int", "Float", "Bool", "String", "Type", "Any", "List", "HashMap",
                                              "HeapAllocation", "Function", "AllocStats", "Int8", "Int16", "Int32",
                                              "Int64", "UInt8", "UInt16", "UInt32", "UInt64", "Byte", "Float32", "Float64"};
        for (size_t i = 0; i < sizeof builtin / sizeof *builtin; i++) kp_compile_similar_try(s, builtin[i]);
        for (int i = 0; i < c->ntypes; i++) kp_compile_similar_try(s, c->types[i].name);
        for (uint32_t i = 0; i < vm->ntypes; i++) kp_compile_similar_try(s, vm->types[i].name);
    }
}
