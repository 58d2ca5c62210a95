/*
 * ownership.c — the ownership rules: moves, borrows, drops on every exit
 * path, defers, keep boxes and keep cycles, reference escapes, and values
 * that would outlive their allocator.
 *
 * Design.
 *  - Scopes.  Every block is a scope; its locals take consecutive registers
 *    in declaration order, so "deinitialize in reverse declaration order" is
 *    one DROP over a register range, last register first.  Every exit path
 *    (end of block, break, continue, return) emits the drops of the scopes
 *    it leaves, with the active defers inlined at their place (LIFO).  A
 *    runtime error unwinds with the same order from the VM's side, using the
 *    defer table written here (KpDeferInfo: pc range, watermark, body).
 *  - Moves.  A consuming use (initializer, assignment, return, field or
 *    element store, by-value argument) of a movable value moves it; the VM
 *    marks the source MOVED with the position.  Where the compiler can see
 *    that a move certainly happened (straight-line code in the same
 *    function), a later read is a compile error naming the move; after a
 *    branch or a loop a move is no longer certain and is forgotten.
 *  - Borrows.  A place (variable, field, element) passed as an argument is
 *    passed as an implicit borrow (a REF with KP_VF_PLACE); the callee's
 *    parameter mode decides at run time whether it moves out of the place
 *    (by value) or keeps the reference (& / $&).  A field or element of a
 *    temporary that an argument borrows is "pinned": the temporary is
 *    evaluated before the call and dropped after it returns.
 *  - Keeps.  A variable a function keeps lives in a box from its
 *    declaration; `keep x with a, b` hands the box's count to the owners.
 *    The keep edges of a function (owner -> kept) are recorded, and a cycle
 *    among them is a compile error: such values would keep each other
 *    alive.
 *  - Escapes.  Storing `&x` into something that outlives x (a global, a
 *    parameter's value, a variable declared before x) is an error laid out
 *    like Rust's E0597, unless a keep covers x; a value made inside
 *    `using A { }` stored into a variable declared before A would outlive
 *    A, an error where the compiler can see it.
 *
 * Which of these is an error — a use after a certain move, a reference
 * that outlives its referent, a value outliving its allocator, a borrow
 * returned, a keep cycle — is decided before code generation, by the
 * ownership pass over each function body (ownpass.c), and so is which
 * variables each exit drops (its drop plan, kp_own_local_drops) and which
 * uses move (KP_F_MOVES).  What remains here is carrying them out while
 * code is generated: the functions below emit the drops, defer bodies and
 * keep instructions the plan calls for, and the record of them.
 *
 * The record.  Every instruction that moves, drops, deinitializes, boxes,
 * keeps or releases a value is recorded as it is emitted (kp_own_record,
 * called by kp_cg_emit when a log is asked for) — what it is about (the
 * local in its register, or what the emitting code says with kp_own_hint),
 * its static type and the position the instruction carries — and
 * kp_own_note adds the operations the VM performs at a call (by-value
 * arguments moved out of their places, a native's arguments dropped).
 * `--emit=ownership` prints this record (emit.c); the VM's
 * --trace-ownership reports the same operations at the same positions as
 * it performs them, and tests/ownership/agree.sh checks on the whole suite
 * that everything traced is recorded.  Values that own nothing (scalars,
 * strings, references) and variables certainly moved from get no event.
 */
#include "compiler_int.h"

/* Is local l's register dropped when its scope ends?  For a declared
 * variable, the ownership pass's plan (KP_F_DROPS on its declaration:
 * ownpass.c plan_drop).  Code generation adds one fact of its own: a
 * register it made a reference to is dropped too (its generation must
 * change), in case the plan did not see that borrow.  Hidden locals (keep
 * boxes, a `using` block's saved allocator, a view's pin) and parameters:
 * by their static types. */
bool kp_own_local_drops(C *c, const Local *l) {
    if (l->global) return false;
    if (l->decl && (l->decl->flags & KP_F_PLANNED)) return (l->decl->flags & l->decl_bit) || l->addr_taken;
    return !(kp_types_scalar(c->vm, l->type) && !l->addr_taken);
}

/* Emits the drops of locals with register >= `floor_reg` declared in
 * scopes deeper than `depth`, interleaving the inline copies of the
 * defers registered deeper than `depth` (newest first).  Does not pop. */
void kp_own_emit_exit(C *c, int depth, int ndefers_floor) {
    Fn *f = c->fn;
    /* registers of locals deeper than depth: a contiguous range at the top
     * of the locals (they are allocated in order) */
    uint32_t top = NO_REG, bottom = NO_REG;
    for (int i = f->nlocals - 1; i >= 0 && f->locals[i].depth > depth; i--) {
        if (!kp_own_local_drops(c, &f->locals[i])) continue;
        if (top == NO_REG) top = f->locals[i].reg + 1;
        bottom = f->locals[i].reg;
    }
    uint32_t hi = top;
    for (int d = f->ndefers - 1; d >= ndefers_floor; d--) {
        ActiveDefer *ad = &f->defers[d];
        if (ad->depth <= depth) break;
        if (hi != NO_REG && hi > ad->watermark && bottom != NO_REG) {
            uint32_t lo = ad->watermark > bottom ? ad->watermark : bottom;
            if (hi > lo) kp_cg_emit(c, KP_BC_DROP, lo, hi - lo, 0, 0);
            hi = lo;
        }
        /* inline copy of the deferred statement */
        uint32_t save = f->freereg;
        int save_n = f->ndefers;
        f->ndefers = d; /* a defer body does not see itself or later ones */
        kp_cg_stmt(c, ad->stmt);
        f->ndefers = save_n;
        kp_cg_reg_free_to(c, save);
    }
    if (hi != NO_REG && bottom != NO_REG && hi > bottom)
        kp_cg_emit(c, KP_BC_DROP, bottom, hi - bottom, 0, 0);
}

void kp_own_push_scope(C *c) {
    c->fn->depth++;
    c->tdepth++;
}

void kp_own_pop_scope(C *c, bool emit_drops) {
    Fn *f = c->fn;
    if (emit_drops) kp_own_emit_exit(c, f->depth - 1, 0);
    /* close defers of this scope: their pc range ends here, and their
     * out-of-line bodies (run when a runtime error unwinds) go here, where
     * the scope's locals are still visible */
    int first = f->ndefers;
    while (first > 0 && f->defers[first - 1].depth >= f->depth) first--;
    if (first < f->ndefers) {
        for (int d = first; d < f->ndefers; d++) f->p->defers[f->defers[d].info].end_pc = kp_cg_pc(c);
        uint32_t jover = kp_cg_emit_sbx(c, KP_BC_JMP, 0, 0);
        int nd = f->ndefers;
        for (int d = first; d < nd; d++) {
            KpDeferInfo *di = &f->p->defers[f->defers[d].info];
            uint32_t save = f->freereg;
            f->freereg = f->defers[d].watermark;
            f->ndefers = 0;
            di = &f->p->defers[f->defers[d].info];
            di->code_pc = kp_cg_pc(c);
            kp_cg_stmt(c, f->defers[d].stmt);
            kp_cg_emit(c, KP_BC_DEFEREND, 0, 0, 0, 0);
            f->ndefers = nd;
            f->freereg = save;
        }
        kp_cg_patch(c, jover, kp_cg_pc(c));
        f->ndefers = first;
    }
    uint32_t low = NO_REG;
    while (f->nlocals > 0 && f->locals[f->nlocals - 1].depth >= f->depth) {
        Local *l = &f->locals[f->nlocals - 1];
        kp_resolve_note_local_info(c, l);
        if (!l->global) low = l->reg;
        kp_resolve_pop_local(f);
    }
    if (low != NO_REG) kp_cg_reg_free_to(c, low);
    while (c->ntypes > 0 && c->types[c->ntypes - 1].depth >= c->tdepth) c->ntypes--;
    f->depth--;
    c->tdepth--;
}

/* Finds the variables a function body keeps (not looking into nested
 * function declarations): they live in boxes from their declaration. */
void kp_own_scan_keeps(C *c, Fn *f, KpNode *n) {
    if (!n || n->kind == KP_N_FUNC || n->kind == KP_N_TYPEDECL) return;
    if (n->kind == KP_N_KEEP && n->a && n->a->kind == KP_N_IDENT && f->nkept < 64) {
        const char *name = kp_compile_intern(c, n->a->name);
        bool dup = false;
        for (int i = 0; i < f->nkept; i++) if (f->kept[i].name == name) dup = true;
        if (!dup) {
            f->kept[f->nkept].name = name;
            f->kept[f->nkept].manual = n->list.count == 0;
            f->kept[f->nkept].box_reg = NO_REG;
            f->kept[f->nkept++].using_expr = n->b;
        }
    }
    kp_own_scan_keeps(c, f, n->a);
    kp_own_scan_keeps(c, f, n->b);
    kp_own_scan_keeps(c, f, n->c);
    for (int i = 0; i < n->list.count; i++) kp_own_scan_keeps(c, f, n->list.items[i]);
}

int kp_own_kept_index(Fn *f, const char *name) {
    for (int i = 0; i < f->nkept; i++) if (f->kept[i].name == name) return i;
    return -1;
}

bool kp_own_mentions_keep_of(KpNode *n, const char *name) {
    if (!n) return false;
    if (n->kind == KP_N_KEEP) {
        for (int i = 0; i < n->list.count; i++)
            if (n->list.items[i]->kind == KP_N_IDENT && !strcmp(n->list.items[i]->name, name)) return true;
    }
    if (kp_own_mentions_keep_of(n->a, name) || kp_own_mentions_keep_of(n->b, name)) return true;
    for (int i = 0; i < n->list.count; i++) if (kp_own_mentions_keep_of(n->list.items[i], name)) return true;
    return false;
}


/* GETFIELD/GETINDEX flags for a read of a field or element of `container`.
 * Of a temporary value (a call's result...) it is moved out (d 1|16: the
 * temporary dies at once, so even an element may be taken); of a place it
 * is borrowed (8) unless consumed (1). */
uint8_t kp_own_read_flags(int mode, KpNode *container) {
    if (!kp_resolve_is_place(container)) return 1 | 16;
    return mode == M_VALUE ? 1 : 8;
}

uint32_t kp_own_pinned(C *c, KpNode *n) {
    for (int i = c->npinned - 1; i >= 0; i--)
        if (c->pinned_node[i] == n) return c->pinned_reg[i];
    return NO_REG;
}

/* `target = &x` (or a field/element of target, or push(target, &x)):
 * an error, laid out like Rust's E0597, when target outlives x — it is a
 * global, a parameter's value, or a variable declared before x — and no
 * keep covers x. */
/* A call whose result borrows its first argument (a builtin row flagged
 * KP_BF_BORROWS: view(&buf, ...), Reader(&buf), transpose(&v), ...): that
 * argument, and in *what the name of the result's type; else NULL. */
KpNode *kp_own_borrowed_arg(C *c, KpNode *value, const char **what) {
    if (!value || value->kind != KP_N_CALL || !value->a || value->a->kind != KP_N_IDENT || value->list.count < 1) return NULL;
    const char *name = kp_compile_intern(c, value->a->name);
    KpFunc *f = kp_resolve_find_func(c, name);
    KpType *ctor = NULL;
    if (kp_resolve_find_type(c, name) == NULL && (ctor = kp_types_builtin(c, name)) && ctor->kind == KP_TK_OPAQUE)
        f = kp_types_ctor_func(c); /* T(&buf): an init returning T */
    else
        ctor = NULL;
    if (!f) return NULL;
    for (uint32_t i = 0; i < f->n; i++) {
        KpOverload *ov = f->ovs[i];
        if (!ov->result_borrows || (ctor && ov->ret != ctor)) continue;
        KpNode *arg = value->list.items[0];
        if (arg->kind == KP_N_UNARY && (arg->op == KP_OP_REF || arg->op == KP_OP_MUTREF)) arg = arg->a;
        if (what) *what = ov->ret ? ov->ret->name : "borrow";
        return arg;
    }
    return NULL;
}






void kp_own_forget_moves_since(C *c, int nlocals) {
    (void)nlocals;
    /* after a branch or loop a move is no longer certain */
    for (int i = 0; i < c->fn->nlocals; i++) {
        if (c->fn->locals[i].moved_line) c->fn->locals[i].may_move = 1;
        c->fn->locals[i].moved_line = 0;
    }
}

void kp_own_defer(C *c, KpNode *n) {
    Fn *f = c->fn;
    KpProto *p = f->p;
    GROW(c, p->defers, &f->cap_defers, p->ndefers);
    uint32_t info = p->ndefers++;
    p->defers[info] = (KpDeferInfo){kp_cg_pc(c), 0, 0, f->freereg};
    IGROW(c, f->defers, f->ndefers, f->cap_adef);
    f->defers[f->ndefers++] = (ActiveDefer){n->a, f->depth, f->freereg, info};
    IGROW(c, f->pending_defers, f->npending, f->cap_pending);
    IGROW(c, f->pending_info, f->npending, f->cap_pinfo);
    f->pending_defers[f->npending] = n->a;
    f->pending_info[f->npending++] = info;
}


/* keep x with a, b (using A): hands the box's count to the owners. */
void kp_own_keep(C *c, KpNode *n) {
    Fn *f = c->fn;
    if (!n->a || n->a->kind != KP_N_IDENT) {
        kp_compile_error(c, n, "keep needs a variable (or `_` inside a pipe)");
        return;
    }
    const char *name = kp_compile_intern(c, n->a->name);
    Local *l = kp_resolve_find_local(f, name);
    int ki = kp_own_kept_index(f, name);
    if (!l || (l->global && (ki < 0 || !f->kept[ki].manual)) || ki < 0 || !l->boxed) {
        kp_compile_error(c, n->a, "keep %s: '%s' must be a variable declared in this function", n->a->name, n->a->name);
        return;
    }
    /* the box is the hidden local right after the variable */
    Local *box = NULL;
    for (int i = 0; i < f->nlocals; i++)
        if (&f->locals[i] == l && i + 1 < f->nlocals) box = &f->locals[i + 1];
    if (!box) {
        kp_compile_error(c, n->a, "keep %s: no box", n->a->name);
        return;
    }
    uint32_t save = f->freereg;
    uint32_t boxr = box->reg;
    if (box->far) { /* a far top-level box: read out of its slot for KEEP */
        kp_own_quiet(c);
        kp_cg_getg(c, boxr = kp_cg_reg_alloc(c), &c->vm->globals[box->gidx], 0);
    }
    uint32_t first = f->freereg;
    for (int i = 0; i < n->list.count; i++) {
        uint32_t o = kp_cg_reg_alloc(c);
        kp_cg_place_ref(c, n->list.items[i], o, KP_VF_PLACE | KP_VF_MUT);
    }
    kp_cg_at(c, n);
    if (box->far) kp_own_hint(c, l->name, l->type, NULL); /* (boxr is a temporary) */
    kp_cg_emit(c, KP_BC_KEEP, boxr, first, (uint32_t)n->list.count, 0);
    if (box->far) { /* the box went to its owners: the slot no longer holds it */
        kp_own_quiet(c);
        kp_cg_setg(c, &c->vm->globals[box->gidx], 0, 2);
    }
    kp_cg_reg_free_to(c, save);
}

/* using A { body }: the context allocator is A inside the block and its
 * callees.  A hidden local holds the allocator to restore (KP_T_CTXSAVE);
 * it is the block's first local, so it is dropped last — on every exit,
 * and by the unwinding of a runtime error. */
void kp_own_using(C *c, KpNode *n) {
    kp_own_push_scope(c);
    uint32_t save = kp_cg_reg_alloc(c);
    uint32_t mark = c->fn->freereg;
    uint32_t ar;
    if (n->a->kind == KP_N_IDENT) {
        bool global;
        struct KpGlobal *g;
        Local *l = kp_resolve_lookup_var(c, kp_compile_intern(c, n->a->name), &global, &g);
        if (l && l != (Local *)1 && !global) ar = l->reg;
        else { ar = kp_cg_reg_alloc(c); kp_cg_place_ref(c, n->a, ar, KP_VF_PLACE); }
    } else if (kp_resolve_is_place(n->a)) {
        ar = kp_cg_reg_alloc(c);
        kp_cg_place_ref(c, n->a, ar, KP_VF_PLACE);
    } else {
        kp_compile_error(c, n->a, "using needs an allocator variable (an allocator made for the block would die before its values)");
        ar = kp_cg_reg_alloc(c);
    }
    kp_cg_at(c, n);
    kp_cg_emit(c, KP_BC_USING, save, ar, 0, 0);
    uint32_t alloc_reg = ar < mark ? ar : NO_REG;
    if (alloc_reg == NO_REG && n->a->kind == KP_N_IDENT) {
        bool global;
        struct KpGlobal *g;
        Local *al = kp_resolve_lookup_var(c, kp_compile_intern(c, n->a->name), &global, &g);
        if (global && g && c->fn->is_main) alloc_reg = g->reg;
        (void)al;
    }
    kp_cg_reg_free_to(c, mark);
    Local *l = kp_resolve_add_local(c, kp_compile_intern(c, "(using)"), save, NULL);
    c->using_depth++;
    l->using_mark = 1;
    l->using_alloc = alloc_reg;
    l->using_node = n->a;
    if (n->b && n->b->kind == KP_N_BLOCK) kp_cg_block_body(c, n->b);
    c->using_depth--;
    kp_own_pop_scope(c, true);
}

void kp_own_finish_defers(C *c) {
    Fn *f = c->fn;
    /* defers still open at the end (top level of main) */
    for (int i = 0; i < f->npending; i++) {
        if (f->p->defers[f->pending_info[i]].code_pc) continue;
        KpDeferInfo *di = &f->p->defers[f->pending_info[i]];
        di->code_pc = kp_cg_pc(c);
        uint32_t save = f->freereg;
        f->freereg = di->watermark;
        int nd = f->ndefers;
        f->ndefers = 0;
        kp_cg_stmt(c, f->pending_defers[i]);
        f->ndefers = nd;
        kp_cg_emit(c, KP_BC_DEFEREND, 0, 0, 0, 0);
        f->freereg = save;
    }
}

/* ------------------------------------------------ escapes through calls */

/* Can a value of type t hold a reference?  (A declared & type, or a record,
 * list or map with one inside.) */
static bool type_holds_ref(KpType *t, int depth) {
    if (!t || depth > 8) return false;
    switch (t->kind) {
    case KP_TK_REF: return true;
    case KP_TK_LIST:
    case KP_TK_MAP: return type_holds_ref(t->elem, depth + 1);
    case KP_TK_RECORD:
        for (uint32_t i = 0; i < t->nfields; i++)
            if (type_holds_ref(t->ftypes[i], depth + 1)) return true;
        return false;
    default: return false;
    }
}

/* The function summary: can reference parameter i of ov flow into its
 * result?  Read from the function's body (summary.c); for a function not
 * read yet, as Rust's lifetime elision assumes: a result that can hold a
 * reference may hold one derived from any reference parameter. */
bool kp_own_param_flows(const KpOverload *ov, int i) {
    if (i >= ov->nparams || ov->params[i].mode == KP_PM_VALUE) return false;
    if (ov->sum_known) return kp_sum_ret_flows(ov, i);
    return type_holds_ref(ov->ret, 0);
}


/* ------------------------------------------------ the ownership record */

const char *const kp_own_kind_names[KP_OWN__COUNT] = {"move", "drop", "deinit", "box", "keep", "release", "summary", "capture", "catch"};

/* Does a value of static type t own something that must be dropped?
 * 0 never (scalars, strings, references, types, functions), 1 always
 * (records, lists, maps, the built-in object kinds), 2 cannot tell before
 * running (untyped, Any, an abstract type). */
static int type_owns(KpType *t) {
    if (!t) return 2;
    switch (t->kind) {
    case KP_TK_SCALAR:
    case KP_TK_REF:
    case KP_TK_TYPE: return 0;
    case KP_TK_FUNC: return t->closure ? 1 : 2; /* a capturing literal's value; a Function may be one */
    case KP_TK_RECORD:
    case KP_TK_LIST:
    case KP_TK_MAP:
    case KP_TK_OPAQUE: return 1;
    default: return 2;
    }
}

static void own_add(C *c, int kind, const char *what, KpType *type, bool maybe, const char *why, uint32_t count) {
    KpOwnLog *log = c->own;
    if (log->n == log->cap) {
        uint32_t ncap = log->cap ? log->cap * 2 : 64;
        KpOwnEvent *n = kp_arena_alloc(&c->vm->meta_arena, sizeof(KpOwnEvent) * ncap, 8);
        if (!n) return;
        if (log->n) memcpy(n, log->items, sizeof(KpOwnEvent) * log->n);
        log->items = n;
        log->cap = ncap;
    }
    log->items[log->n++] = (KpOwnEvent){(uint8_t)kind, maybe, c->fn->line, c->fn->col, what, type, why,
                                        c->fn->p ? c->fn->p->name : NULL, count};
}

/* The summary of overload ov (summary.c), for the listing: recorded at
 * the function's declaration when it has a reference parameter. */
void kp_own_note_summary(C *c, const KpOverload *ov) {
    if (!c->own || !ov->sum_known) return;
    bool refs = false;
    for (int i = 0; i < ov->nparams; i++)
        if (ov->params[i].mode != KP_PM_VALUE) refs = true;
    if (!refs) return;
    char buf[400];
    size_t len = 0;
    int nret = 0;
    for (int i = 0; i < ov->nparams && len < sizeof buf - 80; i++) {
        if (!kp_sum_ret_flows(ov, i)) continue;
        len += (size_t)snprintf(buf + len, sizeof buf - len, "%s%s", nret++ ? ", " : "the result may hold a reference from ",
                                ov->params[i].name ? ov->params[i].name : "_");
    }
    for (int j = 0; j < ov->nparams && len < sizeof buf - 80; j++) {
        uint64_t m = ov->sum_into ? ov->sum_into[j] : 0;
        for (int i = 0; i < ov->nparams && i < 64 && len < sizeof buf - 80; i++) {
            if (!(m & ((uint64_t)1 << i))) continue;
            len += (size_t)snprintf(buf + len, sizeof buf - len, "%sit may store %s into %s", len ? "; " : "",
                                    ov->params[i].name ? ov->params[i].name : "_", ov->params[j].name ? ov->params[j].name : "_");
        }
    }
    if (!len) len = (size_t)snprintf(buf, sizeof buf, "its reference parameters reach neither its result nor its $& parameters");
    char *why = kp_arena_alloc(&c->vm->meta_arena, len + 1, 1);
    if (!why) return;
    memcpy(why, buf, len);
    why[len] = 0;
    own_add(c, KP_OWN_SUMMARY, ov->func->name, NULL, false, why, 0);
}

void kp_own_note_capture(C *c, const char *name, KpType *type, int op) {
    if (!c->own || c->own_dead) return;
    own_add(c, KP_OWN_CAPTURE, name, type, false,
            op == KP_OP_MOVE     ? "taken (~&): moved into the function value, which owns it"
            : op == KP_OP_MUTREF ? "borrowed mutably ($&): the function value may not outlive it"
                                 : "borrowed (&): the function value may not outlive it",
            0);
}

/* A catch, for the listing (at the catch variable's position). */
void kp_own_note_catch(C *c, const char *name) {
    if (!c->own) return;
    own_add(c, KP_OWN_CATCH, name, c->vm->t_error, false,
            "a runtime error in the try block unwinds to here, dropping the try block's values", 0);
}

void kp_own_note(C *c, int kind, const char *what, KpType *type, bool maybe, const char *why) {
    if (!c->own) return;
    int o = type_owns(type);
    if (o == 0) return;
    own_add(c, kind, what, type, maybe || o == 2, why, 0);
}

void kp_own_hint(C *c, const char *what, KpType *type, const char *why) {
    if (!c->own) return;
    c->hint.set = true;
    c->hint.what = what;
    c->hint.type = type;
    c->hint.why = why;
}

void kp_own_quiet(C *c) {
    if (c->own) c->hint.quiet = true;
}

/* The live local of this function in register r (not a top-level one). */
static Local *local_in(C *c, uint32_t r) {
    Fn *f = c->fn;
    for (int i = f->nlocals - 1; i >= 0; i--)
        if (f->locals[i].reg == r && (!f->locals[i].global || f->is_main)) return &f->locals[i];
    return NULL;
}

/* The global a GETG/SETG names (its index is the b:c operand). */
static struct KpGlobal *global_in(C *c, uint32_t b, uint32_t cc) {
    uint32_t gi = b | cc << 16;
    return gi < c->vm->nglobals ? &c->vm->globals[gi] : NULL;
}

/* The drop of register r: what it holds, as the compiler knows it. */
static bool op_is_ret;

static void record_drop(C *c, uint32_t r, const char *why) {
    Local *l = local_in(c, r);
    if (!l) {
        if (c->hint.set) kp_own_note(c, KP_OWN_DROP, c->hint.what, c->hint.type, false, c->hint.why ? c->hint.why : why);
        else own_add(c, KP_OWN_DROP, NULL, NULL, true, why ? why : "a temporary", 0);
        return;
    }
    if (l->moved_line) return; /* certainly moved: nothing left to drop */
    if (l->name[0] == '(') {
        /* hidden locals: a keep box's own count, the allocator a `using`
         * block restores (owns nothing) */
        if (!strcmp(l->name, "(box)") || !strcmp(l->name, "(kept)")) {
            Local *v = l > c->fn->locals ? l - 1 : NULL;
            own_add(c, KP_OWN_RELEASE, v && v->name[0] != '(' ? v->name : NULL, v ? v->type : NULL, true,
                    "the box's own count, unless keep handed it to owners", 0);
        } else if (strcmp(l->name, "(using)")) {
            own_add(c, KP_OWN_DROP, l->name, l->type, true, why, 0); /* (pin): a view's pin */
        }
        return;
    }
    if (l->through) {
        /* holds a reference; but a reference parameter given a temporary
         * (f(make())) owns it, and drops it when the function returns */
        if (op_is_ret && l->through == 2 && kp_resolve_local_index(c->fn, l) < (int)c->fn->p->nparams)
            kp_own_note(c, KP_OWN_DROP, l->name, l->type && l->type->kind == KP_TK_REF ? l->type->elem : l->type, true,
                        "a temporary the caller passed to this reference parameter");
        return;
    }
    kp_own_note(c, KP_OWN_DROP, l->name, l->type, l->may_move, l->may_move ? "unless it was moved" : c->hint.why ? c->hint.why : why);
}

void kp_own_record(C *c, uint8_t op, uint32_t a, uint32_t b, uint32_t cc, uint8_t d) {
    if (c->hint.quiet || c->own_dead) goto done;
    switch (op) {
    case KP_BC_DROP:
        for (uint32_t r = a + b; r-- > a;) record_drop(c, r, "end of scope");
        break;
    case KP_BC_MOVE: {
        Local *src = local_in(c, b), *dst = local_in(c, a);
        if (dst && !dst->through && dst->name[0] != '(' && c->hint.why && !strcmp(c->hint.why, "assignment"))
            kp_own_note(c, KP_OWN_DROP, dst->name, dst->type, true, "its old value");
        if (src && src->name[0] != '(' && !src->through)
            kp_own_note(c, KP_OWN_MOVE, src->name, src->type, false, NULL);
        else if (c->hint.set && c->hint.what)
            kp_own_note(c, KP_OWN_MOVE, c->hint.what, c->hint.type, false, c->hint.why);
        break;
    }
    case KP_BC_TAKE:
        kp_own_note(c, KP_OWN_MOVE, c->hint.set ? c->hint.what : NULL, c->hint.set ? c->hint.type : NULL, true,
                    "out of a field, an element or a kept value");
        break;
    case KP_BC_GETFIELD:
    case KP_BC_GETINDEX:
        if (d & 1) kp_own_note(c, KP_OWN_MOVE, c->hint.what, c->hint.type, true, d & 16 ? "out of a temporary" : "out of a field");
        break;
    case KP_BC_GETG:
        if (d & 1) {
            struct KpGlobal *g = global_in(c, b, cc);
            kp_own_note(c, KP_OWN_MOVE, g ? g->name : NULL, g ? g->type : NULL, false, NULL);
        }
        break;
    case KP_BC_SETG: {
        struct KpGlobal *g = global_in(c, b, cc);
        kp_own_note(c, KP_OWN_DROP, g ? g->name : NULL, g ? g->type : NULL, true, "its old value");
        break;
    }
    case KP_BC_SETFIELD:
    case KP_BC_SETINDEX:
    case KP_BC_MAPSET:
        kp_own_note(c, KP_OWN_DROP, c->hint.what, c->hint.type, true, "the old value");
        break;
    case KP_BC_LISTPUSH:
        kp_own_note(c, KP_OWN_MOVE, c->hint.what, c->hint.type, true, "into the list");
        break;
    case KP_BC_DEINIT:
        if (d == 1) record_drop(c, a, "deinit of a temporary");
        else kp_own_note(c, KP_OWN_DEINIT, c->hint.what, c->hint.type, false, NULL);
        break;
    case KP_BC_BOXNEW:
        own_add(c, KP_OWN_BOX, c->hint.what, c->hint.type, false, NULL, 1);
        break;
    case KP_BC_KEEP: {
        Local *box = local_in(c, a);
        Local *v = box && box > c->fn->locals ? box - 1 : NULL;
        const char *name = c->hint.what ? c->hint.what : v && v->name[0] != '(' ? v->name : NULL;
        own_add(c, KP_OWN_KEEP, name, v ? v->type : c->hint.type, false, cc ? "the box's count goes to the owners" : "manual",
                cc);
        break;
    }
    case KP_BC_ITEREND:
        if (c->hint.set) kp_own_note(c, KP_OWN_DROP, NULL, c->hint.type, false, c->hint.why);
        break;
    case KP_BC_RET:
    case KP_BC_RET0:
        /* with no defer, returning drops the frame's locals (with defers,
         * kp_own_emit_exit dropped them in order before); the result moves
         * to the caller */
        op_is_ret = true;
        if (op == KP_BC_RET) {
            /* `return v`: the local's value moves to the caller */
            Local *rv = local_in(c, a);
            if (rv && !rv->global && !rv->through && rv->name[0] != '(' && !rv->moved_line)
                kp_own_note(c, KP_OWN_MOVE, rv->name, rv->type, rv->may_move, "returned to the caller");
        }
        for (int i = c->fn->nlocals; i-- > 0;) {
            Local *l = &c->fn->locals[i];
            if (!l->global && !(op == KP_BC_RET && l->reg == a) && (c->fn->ndefers == 0 || l->through))
                record_drop(c, l->reg, "the function returns");
        }
        op_is_ret = false;
        break;
    default: break;
    }
done:
    memset(&c->hint, 0, sizeof c->hint);
}

/* The top-level variables of the chunk are dropped when the program ends
 * (kp_vm_finish), last declared first: events at line 0. */
void kp_own_note_end(C *c) {
    if (!c->own) return;
    Fn *f = c->fn;
    uint32_t line = f->line, col = f->col;
    f->line = f->col = 0;
    for (int i = f->nlocals; i-- > 0;) {
        Local *l = &f->locals[i];
        if (!l->global || l->name[0] == '(' || l->moved_line) continue;
        /* (a far one is read with GETG: its moves are seen at run time only) */
        bool may = l->may_move || l->far;
        if (kp_own_kept_index(f, l->name) >= 0) own_add(c, KP_OWN_RELEASE, l->name, l->type, true, "its keep box", 0);
        else kp_own_note(c, KP_OWN_DROP, l->name, l->type, may, may ? "unless it was moved" : NULL);
    }
    f->line = line;
    f->col = col;
}
