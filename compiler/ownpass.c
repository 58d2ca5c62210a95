/*
 * ownpass.c — the ownership pass: the ownership diagnostics of a function,
 * decided over its typed tree before any of its code is generated.
 *
 * Design.  The pass runs once per function body (and once per chunk, over
 * the top-level block), right after the types pass has checked the body
 * (typecheck.c, which also checks the nested blocks in the same walk and
 * binds their calls), and before code generation compiles the body's first
 * statement (codegen_stmt.c kp_cg_block_body).  It walks the whole body in
 * order — every branch, loop body, bare block, `using` body and defer body,
 * the ones that never run included (`if false { … }`), but not the nested
 * function declarations, which get a pass of their own — and marks every
 * block it walked (KP_F_OWNED).  A block that declares functions or types
 * is walked too, but quietly: it gets a pass of its own when code
 * generation reaches it (after its declarations are hoisted), which
 * reports its diagnostics and starts from the moves made before it.
 *
 * It keeps its own table of the variables in scope (OVar): the function's
 * parameters and outputs, then each declaration and loop variable as it is
 * met, popped at the end of its block; lookups go through a hash of the
 * interned names (each name's newest variable, chained to the older one it
 * hides), so the pass is linear in the size of the body.  For each variable
 * it knows its static type (the types pass's, DECL.stype), where it was
 * declared, whether it holds a reference (a `$&` or `&` parameter, a `$&`
 * loop variable), whether it is kept (lives in a keep box), and its state
 * along the walk:
 *  - moved: certainly moved (a consuming use of a movable value, deinit),
 *    with the position of the move.  Code that reads it afterwards is a
 *    compile error naming the move.  After a branch or a loop every certain
 *    move becomes uncertain (maybe moved): the VM checks those uses.
 *    Assigning a new value makes the variable live again.
 *  - holds_ref: the variable holds a reference to the local `holds_ref`
 *    (h.f = &x, v := view(&buf), r := wrap(&t) per wrap's summary), so
 *    returning it is an error.
 * What consumes a value mirrors code generation exactly: an initializer, an
 * assigned value, a record, list or map literal's element, a constructor's
 * field, a by-value argument of a call the types pass bound, `~x`, the
 * operand of deinit; a place passed to a call resolved at run time is an
 * implicit borrow (the VM moves it if the overload chosen takes it by
 * value: not certain here).
 *
 * The diagnostics it produces: use after a certain move; a reference
 * stored where it outlives its referent (h.f = &x, push(xs, &x), a call
 * whose summary stores its & parameter into its $& one — summary.c); a
 * value made in `using A { }` stored into a variable declared before A;
 * returning a reference to a local, a borrow of a local (view(&buf)), a
 * variable holding one, or a call whose result may carry a reference to a
 * local (Rust's E0515); cycles among the keep edges of a function.  A defer
 * body is walked where it runs: at each exit of its scope, with the state
 * there (a use after move is reported once).
 *
 * Code generation no longer decides any of these: it reads the tree the
 * types and ownership passes annotated, and emits the drops, moves and
 * keeps the ownership rules call for (ownership.c).  The pass's decisions
 * it reads:
 *  - which uses of a variable move its value (KP_F_MOVES on the IDENT:
 *    from there the variable is moved, and the ownership record lists no
 *    drop for it);
 *  - the drop plan of every declared variable (KP_F_PLANNED and KP_F_DROPS
 *    / KP_F_DROPS2 on its DECL or FOR, plan_drop): whether the exits of its
 *    scope drop its register — when its value may own something, or a
 *    reference to it is made anywhere in its scope (decided over the whole
 *    scope, so an exit before the `&x` drops it too).  Each exit (the end of
 *    a block, break, continue, return) drops the planned variables of the
 *    scopes it leaves, last declared first, and runs the defers registered
 *    in those scopes, newest first, interleaved by position — the rule both
 *    this pass (run_defers) and code generation (kp_own_emit_exit) follow.
 */
#include "compiler_int.h"

typedef struct OVar {
    const char *name;       /* interned */
    KpType *type;           /* static type, or NULL */
    uint32_t decl_line, decl_col;
    int depth;              /* the pass's block depth */
    KpNode *block;          /* the block it belongs to, or NULL */
    uint8_t through;        /* 1: $& (writes through), 2: & */
    bool global;            /* a top-level variable (main's pass) */
    bool kept;              /* lives in a keep box */
    bool using_mark;        /* the marker of a `using` block */
    int using_key;          /* its allocator's order key, -1: none */
    KpNode *using_node;
    uint32_t moved_line, moved_col;
    bool may_move;
    const char *holds_ref;
    int32_t prev_same;      /* the older variable of the same name, or -1 */
    KpNode *decl;           /* its declaration (DECL or FOR), or NULL */
    uint32_t decl_bit;      /* KP_F_DROPS or KP_F_DROPS2 on decl */
    bool borrowed;          /* a reference to it is made (&x, $&x, a place argument) */
} OVar;

typedef struct ODefer {
    KpNode *stmt;
    int depth;
} ODefer;

typedef struct OP {
    C *c;
    OVar *vars;
    int nvars, cap;
    struct { const char *name; int32_t idx; } *index; /* open addressing */
    uint32_t icap, in;
    int depth;
    ODefer *defers;
    int ndefers, dcap;
    int loop_defers[64];    /* active defers when each open loop began */
    int loop_depth[64];
    int nloops;
    int using_depth;
    struct { const char *owner, *kept; uint32_t line; } kedges[64];
    int nkedges;
    KpNode *blocks[64];
    bool is_main;
    KpNode *loop_node;      /* the FOR whose variables body() declares next */
    int quiet;              /* inside a block walked again by its own pass: no diagnostics */
    bool implicit;          /* place(): an argument of a call resolved at run time */
    int base;               /* code generation's block depth at the start */
    int nouts;              /* named outputs: variables 0.. of the outputs */
    int first_out;
} OP;

static void expr(OP *o, KpNode *n, int mode);
static void stmt(OP *o, KpNode *n);

/* ------------------------------------------------------------ variables */

static int32_t *slot(OP *o, const char *name, bool add) {
    if (!o->icap) {
        if (!add) return NULL;
        o->icap = 64;
        o->index = kp_arena_alloc(&o->c->vm->meta_arena, sizeof *o->index * o->icap, 8);
        memset(o->index, 0, sizeof *o->index * o->icap);
    }
    if (add && (o->in + 1) * 2 > o->icap) {
        uint32_t ncap = o->icap * 2;
        void *nn = kp_arena_alloc(&o->c->vm->meta_arena, sizeof *o->index * ncap, 8);
        memset(nn, 0, sizeof *o->index * ncap);
        __typeof__(o->index) ni = nn;
        for (uint32_t i = 0; i < o->icap; i++) {
            if (!o->index[i].name) continue;
            uint32_t h = kp_compile_hash_ptr(o->index[i].name) & (ncap - 1);
            while (ni[h].name) h = (h + 1) & (ncap - 1);
            ni[h] = o->index[i];
        }
        o->index = ni;
        o->icap = ncap;
    }
    uint32_t h = kp_compile_hash_ptr(name) & (o->icap - 1);
    while (o->index[h].name) {
        if (o->index[h].name == name) return &o->index[h].idx;
        h = (h + 1) & (o->icap - 1);
    }
    if (!add) return NULL;
    o->index[h].name = name;
    o->index[h].idx = -1;
    o->in++;
    return &o->index[h].idx;
}

static OVar *add_var(OP *o, const char *name, KpType *type, KpNode *at) {
    IGROW(o->c, o->vars, o->nvars, o->cap);
    int32_t *s = slot(o, name, true);
    OVar *v = &o->vars[o->nvars];
    memset(v, 0, sizeof *v);
    v->name = name;
    v->type = type;
    v->depth = o->depth;
    v->block = o->depth >= 0 && o->depth < 64 ? o->blocks[o->depth] : NULL;
    v->using_key = -1;
    if (at) { v->decl_line = at->line; v->decl_col = at->col; }
    v->kept = kp_own_kept_index(o->c->fn, name) >= 0;
    v->prev_same = s ? *s : -1;
    if (s) *s = o->nvars;
    o->nvars++;
    return v;
}

/* The end of a variable's scope: whether its register is dropped there
 * (the drop plan code generation carries out, ownership.c): when its value
 * may own something (its static type is not a scalar, or is unknown), or
 * a reference to it was made anywhere in its scope (the drop then also
 * ends the reference's validity, checked references seeing the
 * register's generation change). */
static void plan_drop(OP *o, OVar *v) {
    if (!v->decl) return;
    v->decl->flags |= KP_F_PLANNED;
    if (!v->global && (!kp_types_scalar(o->c->vm, v->type) || v->borrowed)) v->decl->flags |= v->decl_bit;
}

static void pop_to(OP *o, int n) {
    while (o->nvars > n) {
        OVar *v = &o->vars[--o->nvars];
        plan_drop(o, v);
        int32_t *s = slot(o, v->name, false);
        if (s) *s = v->prev_same;
    }
}

/* The variable `name` refers to in this function, or NULL (a global of
 * an earlier chunk or seen from a function, a function, a type...). */
static OVar *find(OP *o, const char *name) {
    if (!name) return NULL;
    int32_t *s = slot(o, kp_compile_intern(o->c, name), false);
    return s && *s >= 0 ? &o->vars[*s] : NULL;
}

static int var_index(OP *o, OVar *v) { return (int)(v - o->vars); }

/* The order of variables' registers: top-level variables have theirs
 * below every local's. */
static int order_key(OP *o, OVar *v) { return v->global ? var_index(o, v) : (1 << 28) + var_index(o, v); }

/* ------------------------------------------------------------ checks */

/* The decisions code generation reads: a use that moves (KP_F_MOVES). */

static void check_not_moved(OP *o, KpNode *n, OVar *v) {
    if (!v || !v->moved_line || (n->flags & KP_F_OWNERR) || o->quiet) return;
    C *c = o->c;
    n->flags |= KP_F_OWNERR;
    kp_compile_error(c, n, "use of moved value '%s' (moved at line %u:%u)", n->name, v->moved_line, v->moved_col);
    kp_diag_label(c->diags, "value used here after move");
    kp_diag_span(c->diags, v->moved_line, v->moved_col, "'%s' moved here", n->name);
    if (v->decl_line) kp_diag_span(c->diags, v->decl_line, v->decl_col ? v->decl_col : 1, "'%s' declared here", n->name);
    kp_diag_note(c->diags, "help: to use it after this, pass a copy (clone(%s)) or a reference (&%s)", n->name, n->name);
}

static void forget_moves(OP *o) {
    for (int i = 0; i < o->nvars; i++) {
        if (o->vars[i].moved_line) o->vars[i].may_move = true;
        o->vars[i].moved_line = 0;
    }
}

/* A variable of this function that a reference may not outlive: not a
 * top-level one, not a reference itself, not kept. */
static OVar *plain_local(OP *o, KpNode *root) {
    OVar *x = root ? find(o, root->name) : NULL;
    if (!x || x->global || x->through || x->kept) return NULL;
    return x;
}

/* A function literal's first borrowed capture of a local of this
 * function (not of a reference parameter's referent), or NULL. */
static KpNode *borrowed_capture(OP *o, KpNode *lit) {
    if (!lit || lit->kind != KP_N_FUNCLIT) return NULL;
    for (int i = 0; i < lit->list2.count; i++) {
        KpNode *u = lit->list2.items[i];
        if (u->op != KP_OP_REF && u->op != KP_OP_MUTREF) continue;
        if (plain_local(o, u->a)) return u->a;
    }
    return NULL;
}

/* The local a borrowing call's result borrows (view(&buf, ...)), or a
 * function literal's borrowed capture, or NULL. */
static OVar *borrowed_local(OP *o, KpNode *value, const char **what) {
    KpNode *cap = borrowed_capture(o, value);
    if (cap) {
        if (what) *what = "capture";
        return plain_local(o, cap);
    }
    KpNode *arg = kp_own_borrowed_arg(o->c, value, what);
    return arg ? plain_local(o, kp_resolve_root_ident(arg)) : NULL;
}

/* `target = &x` (or a field/element of target, or a call storing &x into
 * target): an error, laid out like Rust's E0597, when target outlives x —
 * it is a top-level variable, a parameter's value, or a variable declared
 * before x — and no keep covers x. */
void kp_own_check_ref_escape(C *c, KpNode *target, KpNode *value, KpNode *at_node) {
    OP *o = c->own_pass; /* the pass running, or NULL */
    if (!o) return;
    const char *what = NULL;
    KpNode *referent = NULL;
    if (value && value->kind == KP_N_UNARY && (value->op == KP_OP_REF || value->op == KP_OP_MUTREF)) referent = value->a;
    else if (value && value->kind == KP_N_FUNCLIT) {
        referent = borrowed_capture(o, value);
        what = "capture";
    } else referent = kp_own_borrowed_arg(c, value, &what);
    if (!referent) return;
    KpNode *xr = kp_resolve_root_ident(referent), *tr = kp_resolve_root_ident(target);
    if (!xr || !tr) return;
    OVar *x = plain_local(o, xr);
    if (!x) return;
    OVar *t = find(o, tr->name);
    bool tg = !t && kp_resolve_find_global(c, kp_compile_intern(c, tr->name));
    const char *why = NULL;
    char buf[160];
    if (tg || (t && t->global)) why = "a top-level variable, which lives until the program ends";
    else if (t && t->through) why = "a parameter's value, which belongs to the caller";
    else if (t && var_index(o, t) < var_index(o, x)) {
        snprintf(buf, sizeof buf, "declared before it (line %u), so it is deinitialized after it", t->decl_line);
        why = buf;
    }
    if (!why) {
        /* target dies first, but it may still be returned: remember */
        if (t) t->holds_ref = x->name;
        return;
    }
    uint32_t xline = x->decl_line;
    /* the referent dies at the end of its block: after its last statement */
    uint32_t end_line = at_node->line;
    KpNode *blk = x->block;
    if (blk && blk->list.count) {
        KpNode *last = blk->list.items[blk->list.count - 1];
        if (last && last->line > end_line) end_line = last->line;
    }
    if (what) {
        kp_compile_error(c, value, "'%s' does not live long enough: a %s of it is stored in '%s'", xr->name, what, tr->name);
        kp_diag_note(c->diags,
                     "note: '%s' is declared at line %u; the %s is made here and stored in '%s' at line %u; '%s' is %s; "
                     "'%s' is deinitialized at the end of its block (after line %u) while '%s' still borrows it\n"
                     "    = hint: a %s may not outlive its buffer: make the %s where the buffer lives, or declare '%s' after '%s'",
                     xr->name, xline, what, tr->name, at_node->line, tr->name, why, xr->name, end_line, tr->name, what, what,
                     tr->name, xr->name);
        return;
    }
    kp_compile_error(c, value, "'%s' does not live long enough: a reference to it is stored in '%s'", xr->name, tr->name);
    kp_diag_note(c->diags,
                 "note: '%s' is declared at line %u; the reference is taken here and stored in '%s' at line %u; '%s' is %s; "
                 "'%s' is deinitialized at the end of its block (after line %u) while '%s' still holds the reference\n"
                 "    = hint: make the value live as long as '%s': keep %s with %s",
                 xr->name, xline, tr->name, at_node->line, tr->name, why, xr->name, end_line, tr->name, tr->name, xr->name,
                 tr->name);
}

/* A value made inside `using A { }` stored into a variable declared before
 * A would outlive A: a compile error where the pass can see it (the
 * run-time check at A's deinit catches the rest). */
static void check_outlives_allocator(OP *o, KpNode *n, OVar *target, KpType *st) {
    C *c = o->c;
    if (!o->using_depth || !st || !(kp_types_movable(st) || st == c->vm->t_string)) return;
    for (int i = o->nvars - 1; i >= 0; i--) {
        OVar *u = &o->vars[i];
        if (!u->using_mark) continue;
        if (u->using_key >= 0 && order_key(o, target) < u->using_key && target->depth < u->depth) {
            const char *an = u->using_node->name ? u->using_node->name : "?";
            kp_compile_error(c, n, "'%s' would outlive the allocator '%s': the value is allocated in `using %s`, but '%s' is declared before '%s'",
                             target->name, an, an, target->name, an);
            kp_diag_note(c->diags, "hint: declare '%s' after the allocator, or clone the value outside the using block", target->name);
        }
        return;
    }
}

/* Records `owner keeps kept` and reports a cycle of keeps in this
 * function (a keeps b keeps a): such values would keep each other alive. */
static void add_kedge(OP *o, const char *owner, const char *kept, KpNode *at) {
    C *c = o->c;
    const char *path[66];
    uint32_t lines[66];
    int plen = 0;
    const char *cur = kept;
    bool found = false;
    for (int guard = 0; guard < 64 && !found; guard++) {
        bool step = false;
        for (int i = 0; i < o->nkedges; i++) {
            if (o->kedges[i].owner != cur) continue;
            path[plen] = cur;
            lines[plen++] = o->kedges[i].line;
            cur = o->kedges[i].kept;
            step = true;
            if (cur == owner) found = true;
            break;
        }
        if (!step) break;
    }
    if (found || kept == owner) {
        char buf[512];
        size_t len = (size_t)snprintf(buf, sizeof buf, "%s (line %u)", owner, at->line);
        for (int i = 0; i < plen && len < sizeof buf - 64; i++)
            len += (size_t)snprintf(buf + len, sizeof buf - len, " -> %s (line %u)", path[i], lines[i]);
        snprintf(buf + len, sizeof buf - len, " -> %s", owner);
        kp_compile_error(c, at, "these keeps form a cycle: %s keeps %s, which keeps it alive in turn: %s", owner, kept, buf);
        kp_diag_note(c->diags, "hint: keep both with one common owner (keep a with owner, then keep b with owner), or allocate them in an arena that ends them together");
        return;
    }
    if (o->nkedges < 64) {
        o->kedges[o->nkedges].owner = owner;
        o->kedges[o->nkedges].kept = kept;
        o->kedges[o->nkedges++].line = at->line;
    }
}

/* `r := f(&t, …)` where f's result can carry its & argument (its summary,
 * summary.c), or `v := view(&buf, …)`: r holds a reference to t. */
static void note_decl_ref(OP *o, OVar *l, KpNode *value) {
    C *c = o->c;
    OVar *b = borrowed_local(o, value, NULL);
    if (b) { l->holds_ref = b->name; return; }
    if (!value || value->kind != KP_N_CALL || !value->a || value->a->kind != KP_N_IDENT) return;
    if (find(o, value->a->name) || kp_resolve_find_global(c, kp_compile_intern(c, value->a->name))) return;
    KpOverload *ov = value->bound;
    if (!ov) {
        KpFunc *f = kp_resolve_find_func(c, kp_compile_intern(c, value->a->name));
        if (!f || f->n != 1) return;
        ov = f->ovs[0];
    }
    if (!ov->sum_known) return; /* natives: their borrows are KP_BF_BORROWS */
    for (int i = 0; i < value->list.count && i < ov->nparams; i++) {
        KpNode *a = value->list.items[i];
        if (a->kind == KP_N_FIELDINIT || !kp_sum_ret_flows(ov, i)) continue;
        KpNode *pl = a->kind == KP_N_UNARY && (a->op == KP_OP_REF || a->op == KP_OP_MUTREF) ? a->a : a;
        if (!kp_resolve_is_place(pl)) continue;
        OVar *x = plain_local(o, kp_resolve_root_ident(pl));
        if (!x) continue;
        l->holds_ref = x->name;
        return;
    }
}

/* `return f(&t)` where f's result may carry its & argument, t a local of
 * this function: t dies when the function returns — Rust's E0515. */
static void check_return_call(OP *o, KpNode *ret) {
    C *c = o->c;
    KpNode *call = ret->a;
    if (!call || call->kind != KP_N_CALL || !call->a || call->a->kind != KP_N_IDENT) return;
    KpOverload *ov = call->bound;
    if (!ov) {
        const char *name = kp_compile_intern(c, call->a->name);
        if (find(o, name) || kp_resolve_find_global(c, name)) return;
        KpFunc *f = kp_resolve_find_func(c, name);
        if (!f || f->n != 1) return;
        ov = f->ovs[0];
    }
    const char *fname = c->fn->p->name;
    for (int i = 0; i < call->list.count && i < ov->nparams; i++) {
        KpNode *a = call->list.items[i];
        if (a->kind == KP_N_FIELDINIT || !kp_own_param_flows(ov, i)) continue;
        KpNode *pl = a->kind == KP_N_UNARY && (a->op == KP_OP_REF || a->op == KP_OP_MUTREF) ? a->a : a;
        if (!kp_resolve_is_place(pl)) continue;
        KpNode *root = kp_resolve_root_ident(pl);
        OVar *x = plain_local(o, root);
        if (!x) continue;
        kp_compile_error(c, call, "cannot return the result of '%s': it may hold a reference to '%s', a local of '%s'",
                         call->a->name, root->name, fname);
        kp_diag_label(c->diags, "returns a value that may refer to '%s'", root->name);
        kp_diag_span(c->diags, a->line, a->col, "'%s' is borrowed here, and '%s' (-> %s) may keep the reference", root->name,
                     call->a->name, ov->ret ? ov->ret->name : "_");
        kp_diag_span(c->diags, x->decl_line, x->decl_col ? x->decl_col : 1, "'%s' is declared here and deinitialized when '%s' returns",
                     root->name, fname);
        if (ov->ret && ov->ret->kind != KP_TK_REF)
            kp_diag_note(c->diags, "help: keep '%s' with the result: r := %s(…); keep %s with r; return r", root->name,
                         call->a->name, root->name);
        else
            kp_diag_note(c->diags, "help: return a value rather than a reference (it moves to the caller), or take '%s' "
                         "as a parameter so that it outlives the call", root->name);
        return;
    }
}

/* ------------------------------------------------------------ the walk */

/* A read of variable n as a value (mode M_VALUE: consumed, a movable value
 * moves) or borrowed. */
static void use_ident(OP *o, KpNode *n, int mode) {
    OVar *v = find(o, n->name);
    if (!v) return;
    check_not_moved(o, n, v);
    if (mode == M_VALUE && v->through != 1 && kp_types_movable(v->type)) {
        n->flags |= KP_F_MOVES;
        v->moved_line = n->line;
        v->moved_col = n->col;
    }
}

/* A place borrowed (a reference made to it): its root must be live. */
static void place(OP *o, KpNode *n) {
    if (!n) return;
    switch (n->kind) {
    case KP_N_IDENT: {
        use_ident(o, n, M_BORROW);
        OVar *v = find(o, n->name);
        /* (a scalar passed to a call resolved at run time goes by value:
         * no reference to it is made) */
        if (v && !(o->implicit && kp_types_scalar(o->c->vm, v->type))) v->borrowed = true;
        break;
    }
    case KP_N_FIELD: place(o, n->a); break;
    case KP_N_INDEX: place(o, n->a); expr(o, n->b, M_BORROW); break;
    case KP_N_HOLE: break;
    default: expr(o, n, M_VALUE); break;
    }
}

/* A consuming use (an initializer, an assigned or returned value, a
 * by-value argument) of v: moving out of a list or map element is an
 * error (the types pass marked the INDEX with its container's type). */
static void consume_elem(OP *o, KpNode *v) {
    if (!v || v->kind != KP_N_INDEX || !kp_resolve_is_place(v)) return;
    KpType *ct = v->stype;
    if (!ct || (ct->kind != KP_TK_LIST && ct->kind != KP_TK_MAP) || !kp_types_movable(ct->elem)) return;
    C *c = o->c;
    const char *cn = v->a->kind == KP_N_IDENT ? v->a->name : "xs";
    kp_compile_error(c, v, "cannot move %s out of a list or map element", kp_a(ct->elem->name));
    kp_diag_label(c->diags, "the element would be moved out of '%s' here", cn);
    if (ct->kind == KP_TK_LIST)
        kp_diag_note(c->diags, "help: borrow it (&%s[i]), copy it (clone(%s[i])), or take it out (pop(%s))", cn, cn, cn);
    else
        kp_diag_note(c->diags, "help: borrow it (&%s[k]), copy it (clone(%s[k])), or take it out (remove(%s, k))", cn, cn, cn);
}

static bool is_ref(KpNode *a) { return a && a->kind == KP_N_UNARY && (a->op == KP_OP_REF || a->op == KP_OP_MUTREF); }

static void call(OP *o, KpNode *n, KpNode *pipe_first) {
    C *c = o->c;
    KpNode *callee = n->a;
    if (pipe_first && (pipe_first->flags & KP_F_BYVALUE)) consume_elem(o, pipe_first);
    for (int i = 0; i < n->list.count; i++) {
        KpNode *a = n->list.items[i]->kind == KP_N_FIELDINIT ? n->list.items[i]->a : n->list.items[i];
        if (a && (a->flags & KP_F_BYVALUE)) consume_elem(o, a);
    }
    kp_sum_check_call(c, n, pipe_first);
    if (callee && callee->kind == KP_N_IDENT && !find(o, callee->name)) {
        const char *name = kp_compile_intern(c, callee->name);
        KpFunc *f = kp_resolve_find_type(c, name) ? NULL : kp_resolve_find_func(c, name);
        if (f && f->special == 1) { /* deinit(x): the drop of a place, which is then moved */
            KpNode *a = pipe_first ? pipe_first : n->list.count ? n->list.items[0] : NULL;
            if (!a) return;
            if (a->kind == KP_N_UNARY && (a->op == KP_OP_MUTREF || a->op == KP_OP_MOVE)) a = a->a;
            if (kp_resolve_is_place(a) || a->kind == KP_N_HOLE) {
                place(o, a);
                OVar *v = a->kind == KP_N_IDENT ? find(o, a->name) : NULL;
                if (v) { v->moved_line = n->line; v->moved_col = n->col; a->flags |= KP_F_MOVES; }
            } else {
                expr(o, a, M_VALUE);
            }
            return;
        }
        if (n->bound && !pipe_first && f) {
            KpOverload *ov = n->bound;
            for (int i = 0; i < n->list.count; i++) {
                KpNode *a = n->list.items[i];
                int mode = i < ov->nparams ? ov->params[i].mode : ov->vmode;
                if (mode == KP_PM_VALUE || is_ref(a) || !kp_resolve_is_place(a)) expr(o, a, M_VALUE);
                else place(o, a);
            }
            return;
        }
    } else if (callee && callee->kind != KP_N_IDENT) {
        expr(o, callee, M_BORROW);
    }
    /* resolved at run time (or a constructor): places are implicit borrows */
    bool ctor = callee && callee->kind == KP_N_IDENT && !find(o, callee->name) &&
                (kp_resolve_find_type(c, kp_compile_intern(c, callee->name)) != NULL);
    if (callee && callee->kind == KP_N_GENERIC) ctor = true;
    if (pipe_first && pipe_first->kind != KP_N_HOLE) place(o, pipe_first);
    for (int i = 0; i < n->list.count; i++) {
        KpNode *a = n->list.items[i];
        if (a->kind == KP_N_FIELDINIT) a = a->a;
        if (!a) continue;
        if (ctor) { expr(o, a, M_VALUE); continue; }
        if (a->kind == KP_N_HOLE) continue;
        if (kp_resolve_is_place(a)) {
            if (a->kind == KP_N_IDENT && !find(o, a->name) && !kp_resolve_find_global(c, kp_compile_intern(c, a->name)))
                expr(o, a, M_VALUE);
            else {
                o->implicit = a->kind == KP_N_IDENT;
                place(o, a);
                o->implicit = false;
            }
        } else if (a->kind == KP_N_FIELD || a->kind == KP_N_INDEX) {
            KpNode *root = kp_resolve_place_root(a); /* a temporary's part: the temporary is made first */
            expr(o, root, M_VALUE);
            if (a->kind == KP_N_INDEX) expr(o, a->b, M_BORROW);
        } else {
            expr(o, a, M_VALUE);
        }
    }
}

static void pipe(OP *o, KpNode *n) {
    C *c = o->c;
    KpNode *lhs = n->a, *rhs = n->b;
    if (rhs->kind == KP_N_CALL && !kp_resolve_has_hole(rhs) &&
        (lhs->kind == KP_N_GENERIC || (lhs->kind == KP_N_IDENT && !find(o, lhs->name) &&
                                       !kp_resolve_find_global(c, kp_compile_intern(c, lhs->name)) &&
                                       (kp_resolve_find_type(c, kp_compile_intern(c, lhs->name)) ||
                                        kp_types_builtin(c, kp_compile_intern(c, lhs->name)))))) {
        call(o, rhs, NULL); /* `T | init(...)`: the output type chooses */
        return;
    }
    /* the piped value going to a by-value parameter (as the first argument,
     * or where the `_` is) */
    bool by_value = (lhs->flags & KP_F_BYVALUE) != 0;
    for (int i = 0; rhs->kind == KP_N_CALL && i < rhs->list.count; i++)
        if (rhs->list.items[i]->kind == KP_N_HOLE && (rhs->list.items[i]->flags & KP_F_BYVALUE)) by_value = true;
    if (by_value) consume_elem(o, lhs);
    if (lhs->kind == KP_N_IDENT) use_ident(o, lhs, M_BORROW);
    else expr(o, lhs, M_VALUE);
    if (rhs->kind == KP_N_CALL) {
        KpNode hole = {.kind = KP_N_HOLE, .line = lhs->line, .col = lhs->col};
        call(o, rhs, kp_resolve_has_hole(rhs) ? NULL : &hole);
    } else if (rhs->kind == KP_N_KEEP) {
        for (int i = 0; i < rhs->list.count; i++) place(o, rhs->list.items[i]);
    } else if (rhs->kind != KP_N_IDENT) {
        expr(o, rhs, M_BORROW);
    }
}

static void expr(OP *o, KpNode *n, int mode) {
    if (!n) return;
    switch (n->kind) {
    case KP_N_IDENT: use_ident(o, n, mode); break;
    case KP_N_LIST:
        for (int i = 0; i < n->list.count; i++) expr(o, n->list.items[i], M_VALUE);
        break;
    case KP_N_MAP:
        for (int i = 0; i < n->list.count; i++) {
            expr(o, n->list.items[i]->a, M_VALUE);
            expr(o, n->list.items[i]->b, M_VALUE);
        }
        break;
    case KP_N_RECORD:
        for (int i = 0; i < n->list.count; i++) expr(o, n->list.items[i]->a, M_VALUE);
        break;
    case KP_N_BINARY:
        if (n->op == KP_OP_AND || n->op == KP_OP_OR) {
            expr(o, n->a, M_VALUE);
            expr(o, n->b, M_VALUE);
        } else {
            expr(o, n->a, M_BORROW);
            expr(o, n->b, M_BORROW);
        }
        break;
    case KP_N_UNARY:
        if (n->op == KP_OP_REF || n->op == KP_OP_MUTREF) place(o, n->a);
        else if (n->op == KP_OP_MOVE) expr(o, n->a, M_VALUE);
        else expr(o, n->a, M_BORROW);
        break;
    case KP_N_CALL: call(o, n, NULL); break;
    case KP_N_PIPE: pipe(o, n); break;
    case KP_N_FIELD: expr(o, n->a, M_BORROW); break;
    case KP_N_INDEX: expr(o, n->a, M_BORROW); expr(o, n->b, M_BORROW); break;
    case KP_N_KEEP:
        for (int i = 0; i < n->list.count; i++) place(o, n->list.items[i]);
        break;
    case KP_N_FUNCLIT:
        /* its captures, as the literal is made: `&x` and `$&x` borrow,
         * `~&x` moves x in; its body gets a pass of its own */
        for (int i = 0; i < n->list2.count; i++) expr(o, n->list2.items[i], M_VALUE);
        break;
    default: break;
    }
}

static void push_block(OP *o, KpNode *b) {
    o->depth++;
    if (o->depth >= 0 && o->depth < 64) o->blocks[o->depth] = b;
}

/* The defers registered deeper than `depth`, newest first, from `floor`:
 * walked where they run (an exit of their scope). */
static void run_defers(OP *o, int depth, int floor);

/* A jump out (break, continue, return) runs the defers it leaves; what
 * they move is moved on that path only. */
static void jump_defers(OP *o, int depth, int floor) {
    if (o->ndefers <= floor) return;
    C *c = o->c;
    uint32_t *saved = kp_arena_alloc(&c->vm->meta_arena, sizeof(uint32_t) * 2 * (size_t)(o->nvars + 1), 8);
    int n = o->nvars;
    for (int i = 0; i < n; i++) { saved[2 * i] = o->vars[i].moved_line; saved[2 * i + 1] = o->vars[i].moved_col; }
    run_defers(o, depth, floor);
    for (int i = 0; i < n && i < o->nvars; i++) { o->vars[i].moved_line = saved[2 * i]; o->vars[i].moved_col = saved[2 * i + 1]; }
}

static void run_defers(OP *o, int depth, int floor) {
    int save = o->ndefers;
    for (int d = o->ndefers - 1; d >= floor; d--) {
        if (o->defers[d].depth <= depth) break;
        o->ndefers = d; /* a defer body does not see itself or later ones */
        stmt(o, o->defers[d].stmt);
        o->ndefers = save;
    }
}

static void pop_block(OP *o, int nvars_mark, bool exit) {
    if (exit) run_defers(o, o->depth - 1, 0);
    while (o->ndefers > 0 && o->defers[o->ndefers - 1].depth >= o->depth) o->ndefers--;
    pop_to(o, nvars_mark);
    o->depth--;
}

/* A block that declares functions or types is walked when code
 * generation reaches it, after its declarations are hoisted and its
 * statements typed (a pass of its own, kp_own_pass). */
static bool declares(KpNode *b) {
    if (!b || b->kind != KP_N_BLOCK) return false;
    for (int i = 0; i < b->list.count; i++)
        if (b->list.items[i] && (b->list.items[i]->kind == KP_N_FUNC || b->list.items[i]->kind == KP_N_TYPEDECL)) return true;
    return false;
}

static void body(OP *o, KpNode *b, const char *v1, KpType *t1, const char *v2, uint8_t through) {
    KpNode *loop = o->loop_node; /* the FOR declaring v1, v2 */
    o->loop_node = NULL;
    /* A block that declares functions or types gets a pass of its own when
     * code generation reaches it (its calls of them are resolved then).
     * It is walked here too, quietly — its diagnostics are that pass's —
     * so the moves in it count after it, and its variables get their drop
     * plans (a call of a function it declares counts as resolved at run
     * time here: its places are borrows, not certain moves). */
    bool late = declares(b);
    KpDiags *dg = o->c->diags;
    int dmark = dg->count;
    if (late) o->quiet++;
    int mark = o->nvars;
    push_block(o, b && b->kind == KP_N_BLOCK ? b : NULL);
    if (v1) {
        OVar *v = add_var(o, kp_compile_intern(o->c, v1), t1, NULL);
        if (!v2) v->through = through;
        v->decl = loop;
        v->decl_bit = KP_F_DROPS;
    }
    if (v2) {
        OVar *v = add_var(o, kp_compile_intern(o->c, v2), NULL, NULL);
        v->through = through;
        v->decl = loop;
        v->decl_bit = KP_F_DROPS2;
    }
    if (b && b->kind == KP_N_BLOCK) {
        if (!late) b->flags |= KP_F_OWNED;
        for (int i = 0; i < b->list.count; i++) stmt(o, b->list.items[i]);
    } else if (b) {
        stmt(o, b);
    }
    pop_block(o, mark, true);
    if (late) {
        o->quiet--;
        if (dg->count != dmark && dmark <= KP_MAX_DIAGS) dg->count = dmark;
    }
}

static void decl(OP *o, KpNode *n) {
    C *c = o->c;
    consume_elem(o, n->b);
    const char *name = kp_compile_intern(c, n->name);
    bool top = o->is_main && o->base + o->depth == 0 && c->func_depth == 0;
    if (!top && o->nouts && o->depth == 0) {
        /* `hm : H` in a function's body, hm a named output: its first value */
        OVar *out = find(o, name);
        int oi = out ? var_index(o, out) : -1;
        if (out && oi >= o->first_out && oi < o->first_out + o->nouts) {
            if (n->b) {
                if (n->b->kind == KP_N_CALL) call(o, n->b, NULL);
                else expr(o, n->b, M_VALUE);
            }
            out->moved_line = 0;
            return;
        }
    }
    if (n->b) {
        OVar *src = n->b->kind == KP_N_IDENT ? find(o, n->b->name) : NULL;
        if (n->b->kind == KP_N_CALL) call(o, n->b, NULL);
        else if (src && kp_tc_names_ref_param(c, n->b)) place(o, n->b); /* t := x, x a & parameter: a borrow */
        else expr(o, n->b, M_VALUE);
        if (kp_own_mentions_keep_of(n->b, n->name)) add_kedge(o, name, "_", n);
    }
    KpType *t = n->stype;
    if (!t && n->a) {
        KpDiags *d = c->diags;
        int mark = d->count;
        t = kp_types_resolve(c, n->a);
        if (d->count != mark && mark <= KP_MAX_DIAGS) { d->count = mark; t = NULL; }
    }
    OVar *v = add_var(o, name, t, n);
    v->global = top;
    v->decl = n;
    v->decl_bit = KP_F_DROPS;
    if (n->b && !top) note_decl_ref(o, v, n->b);
}

static void assign(OP *o, KpNode *n) {
    C *c = o->c;
    KpNode *target = n->a;
    if (n->op == KP_OP_NONE) consume_elem(o, n->b);
    if (n->op == KP_OP_NONE) kp_own_check_ref_escape(c, target, n->b, n);
    if (target->kind == KP_N_IDENT) {
        OVar *l = find(o, target->name);
        if (!l) { expr(o, n->b, M_VALUE); return; }
        if (l->through == 2) return;
        if (l->through == 1) { expr(o, n->b, M_VALUE); return; }
        KpType *st = NULL;
        KpNode *b = n->b;
        if (n->op != KP_OP_NONE) {
            expr(o, b, M_BORROW);
            st = kp_types_static_binop_type(c, n->op, l->type, b->kind == KP_N_IDENT && find(o, b->name) ? find(o, b->name)->type
                                                                : b->kind == KP_N_STRING ? c->vm->t_string : NULL);
        } else if (b->kind == KP_N_BINARY || b->kind == KP_N_INT || b->kind == KP_N_FLOAT || b->kind == KP_N_BOOL) {
            expr(o, b, M_VALUE);
            if (b->kind == KP_N_BINARY && b->op == KP_OP_ADD) {
                KpNode *x = b->a;
                OVar *xv = x->kind == KP_N_IDENT ? find(o, x->name) : NULL;
                if (x->kind == KP_N_STRING || (xv && xv->type == c->vm->t_string)) st = c->vm->t_string;
            }
        } else {
            if (b->kind == KP_N_CALL) call(o, b, NULL);
            else expr(o, b, M_VALUE);
            st = l->type;
        }
        l->moved_line = 0;
        check_outlives_allocator(o, n, l, st);
        return;
    }
    if (target->kind == KP_N_FIELD || target->kind == KP_N_INDEX) {
        if (target->a->kind == KP_N_IDENT) use_ident(o, target->a, M_BORROW);
        else place(o, target->a);
        if (target->kind == KP_N_INDEX) expr(o, target->b, M_BORROW);
        if (n->b->kind == KP_N_CALL) call(o, n->b, NULL);
        else expr(o, n->b, M_VALUE);
    }
}

static void ret(OP *o, KpNode *n) {
    C *c = o->c;
    if (o->is_main && c->func_depth == 0) return; /* code generation reports it */
    const char *fname = c->fn->p->name;
    consume_elem(o, n->a);
    if (n->a) {
        const char *what = NULL;
        OVar *x = borrowed_local(o, n->a, &what);
        if (x && n->a->kind == KP_N_FUNCLIT) {
            kp_compile_error(c, n->a, "'%s' does not live long enough: the function literal borrows it and is returned", x->name);
            kp_diag_note(c->diags, "note: '%s' is declared at line %u and deinitialized when '%s' returns, but the caller gets the function\n"
                         "    = hint: let the function own it: write ~&%s in the literal's body (it is moved in when the literal is made)",
                         x->name, x->decl_line, fname, x->name);
            return;
        }
        if (x) {
            kp_compile_error(c, n->a, "'%s' does not live long enough: a %s of it is returned", x->name, what);
            kp_diag_note(c->diags, "note: '%s' is declared at line %u and deinitialized when '%s' returns, but the caller gets the %s\n"
                         "    = hint: a %s may not outlive its buffer: return the buffer, or take it as a parameter",
                         x->name, x->decl_line, fname, what, what);
            return;
        }
    }
    check_return_call(o, n);
    if (n->a && n->a->kind == KP_N_IDENT) {
        OVar *l = find(o, n->a->name);
        if (l && !l->global && l->holds_ref) {
            OVar *x = find(o, l->holds_ref);
            if (x && !x->kept) {
                kp_compile_error(c, n->a, "'%s' does not live long enough: '%s' holds a reference to it and is returned",
                                 x->name, n->a->name);
                kp_diag_note(c->diags,
                             "note: '%s' is declared at line %u and deinitialized when '%s' returns, but the caller gets '%s'\n"
                             "    = hint: keep %s with %s",
                             x->name, x->decl_line, fname, n->a->name, x->name, n->a->name);
                return;
            }
        }
        if (l && o->ndefers == 0) { /* returned from its register: RET */
            check_not_moved(o, n->a, l);
            return;
        }
    }
    if (is_ref(n->a)) {
        KpNode *pl = n->a->a;
        while (pl && (pl->kind == KP_N_FIELD || pl->kind == KP_N_INDEX)) pl = pl->a;
        OVar *l = pl && pl->kind == KP_N_IDENT ? find(o, pl->name) : NULL;
        if (l && !l->global && !l->through) {
            kp_compile_error(c, n->a, "cannot return a reference to '%s': it is a local of '%s' and is deinitialized when the function returns",
                             pl->name, fname);
            kp_diag_note(c->diags, "hint: return the value itself (it moves to the caller), or keep it with an owner that outlives the call");
            return;
        }
    }
    if (n->a) {
        if (n->a->kind == KP_N_CALL) call(o, n->a, NULL);
        else expr(o, n->a, M_VALUE);
    }
    if (o->ndefers > 0) jump_defers(o, -1, 0);
}

static void using_block(OP *o, KpNode *n) {
    int mark = o->nvars;
    int key = -1;
    if (n->a->kind == KP_N_IDENT) {
        OVar *a = find(o, n->a->name);
        if (a) { use_ident(o, n->a, M_BORROW); key = order_key(o, a); }
    } else if (kp_resolve_is_place(n->a)) {
        place(o, n->a);
    }
    push_block(o, n->b && n->b->kind == KP_N_BLOCK ? n->b : NULL);
    OVar *u = add_var(o, kp_compile_intern(o->c, "(using)"), NULL, NULL);
    u->using_mark = true;
    u->using_key = key;
    u->using_node = n->a;
    o->using_depth++;
    if (n->b && n->b->kind == KP_N_BLOCK && !declares(n->b)) {
        n->b->flags |= KP_F_OWNED;
        for (int i = 0; i < n->b->list.count; i++) stmt(o, n->b->list.items[i]);
    }
    o->using_depth--;
    pop_block(o, mark, true);
}

static void loop_body(OP *o, KpNode *b, const char *v1, KpType *t1, const char *v2, uint8_t through) {
    if (o->nloops < 64) {
        o->loop_defers[o->nloops] = o->ndefers;
        o->loop_depth[o->nloops] = o->depth;
    }
    o->nloops++;
    body(o, b, v1, t1, v2, through);
    o->nloops--;
}

static void stmt(OP *o, KpNode *n) {
    if (!n) return;
    switch (n->kind) {
    case KP_N_DECL: decl(o, n); break;
    case KP_N_ASSIGN: assign(o, n); break;
    case KP_N_EXPRSTMT: expr(o, n->a, M_BORROW); break;
    case KP_N_BLOCK: body(o, n, NULL, NULL, NULL, 0); break;
    case KP_N_IF:
        expr(o, n->a, M_VALUE);
        body(o, n->b, NULL, NULL, NULL, 0);
        if (n->c) {
            if (n->c->kind == KP_N_IF) stmt(o, n->c);
            else body(o, n->c, NULL, NULL, NULL, 0);
        }
        forget_moves(o);
        break;
    case KP_N_WHILE:
        expr(o, n->a, M_VALUE);
        loop_body(o, n->b, NULL, NULL, NULL, 0);
        forget_moves(o);
        break;
    case KP_N_FOR: {
        KpNode *it = n->a;
        int mark = o->nvars;
        push_block(o, NULL); /* the loop's state */
        if (it->kind == KP_N_BINARY && it->op == KP_OP_RANGE) {
            expr(o, it->a, M_VALUE);
            expr(o, it->b, M_VALUE);
            o->loop_node = n;
            loop_body(o, n->b, n->name, o->c->vm->t_int, NULL, 0);
        } else {
            uint8_t through = 0;
            KpNode *src = it;
            if (src->kind == KP_N_UNARY && src->op == KP_OP_MUTREF) { through = 1; src = src->a; }
            else if (src->kind == KP_N_UNARY && src->op == KP_OP_MOVE) { src = src->a; expr(o, src, M_VALUE); src = NULL; }
            else if (src->kind == KP_N_UNARY && src->op == KP_OP_REF) src = src->a;
            if (src) {
                if (kp_resolve_is_place(src)) place(o, src);
                else expr(o, src, M_VALUE);
            }
            o->loop_node = n;
            loop_body(o, n->b, n->name, n->stype, n->name2, through); /* (stype: the types pass's element type) */
        }
        pop_block(o, mark, false);
        forget_moves(o);
        break;
    }
    case KP_N_BREAK:
    case KP_N_CONTINUE:
        if (o->nloops > 0 && o->nloops <= 64) jump_defers(o, o->loop_depth[o->nloops - 1], o->loop_defers[o->nloops - 1]);
        break;
    case KP_N_RETURN: ret(o, n); break;
    case KP_N_DEFER:
        IGROW(o->c, o->defers, o->ndefers, o->dcap);
        o->defers[o->ndefers++] = (ODefer){n->a, o->depth};
        if (n->a && n->a->kind == KP_N_BLOCK && !declares(n->a)) n->a->flags |= KP_F_OWNED;
        break;
    case KP_N_TYPEDECL:
    case KP_N_FUNC: break;
    case KP_N_KEEP:
        if (!n->a || n->a->kind != KP_N_IDENT) break;
        for (int i = 0; i < n->list.count; i++) place(o, n->list.items[i]);
        for (int i = 0; i < n->list.count; i++) {
            KpNode *on = n->list.items[i];
            if (on->kind == KP_N_IDENT)
                add_kedge(o, kp_compile_intern(o->c, on->name), kp_compile_intern(o->c, n->a->name), n);
        }
        break;
    case KP_N_USING: using_block(o, n); break;
    case KP_N_TRY:
        /* the try block may stop anywhere: after it (in the catch and
         * after the statement) its moves are uncertain, as after a branch */
        body(o, n->a, NULL, NULL, NULL, 0);
        forget_moves(o);
        o->loop_node = n; /* the catch variable's drop plan goes on n */
        body(o, n->b, n->name, o->c->vm->t_error, NULL, 0);
        forget_moves(o);
        break;
    default: expr(o, n, M_BORROW); break;
    }
}

/* Runs the ownership pass over `block`, the body of the function being
 * compiled (or the chunk's top-level block), unless it was walked as part
 * of an enclosing one.  The function's parameters and outputs are the
 * locals code generation has declared so far. */
void kp_own_pass(C *c, KpNode *block) {
    if (!block || (block->flags & KP_F_OWNED)) return;
    block->flags |= KP_F_OWNED;
    OP o;
    memset(&o, 0, sizeof o);
    o.c = c;
    Fn *f = c->fn;
    o.is_main = f->is_main;
    o.base = f->depth;
    o.depth = 0;
    o.blocks[0] = block;
    o.first_out = -1;
    for (int i = 0; i < f->nlocals; i++) {
        Local *l = &f->locals[i];
        if (l->name[0] == '(') continue;
        OVar *v = add_var(&o, l->name, l->type, NULL);
        v->through = l->through;
        v->global = l->global;
        v->decl_line = l->decl_line;
        v->decl_col = l->decl_col;
        v->block = NULL;
        v->decl = l->decl; /* (an outer variable a late block borrows: its plan grows) */
        v->decl_bit = l->decl_bit;
        v->moved_line = l->moved_line; /* (moved before a late block: a use in it is an error) */
        v->moved_col = l->moved_col;
        v->may_move = l->may_move;
        if (f->nouts && f->depth == 2 && l->reg >= f->out_reg && l->reg < f->out_reg + (uint32_t)f->nouts) {
            if (o.first_out < 0) o.first_out = o.nvars - 1;
            o.nouts++;
        }
    }
    void *outer = c->own_pass;
    c->own_pass = &o;
    for (int i = 0; i < block->list.count; i++) stmt(&o, block->list.items[i]);
    run_defers(&o, -1, 0); /* the end of the body (of the chunk) */
    pop_to(&o, 0);         /* (the drop plans of the body's variables) */
    c->own_pass = outer;
    if (o.vars) kp_free(c->vm->meta, o.vars, sizeof(OVar) * (size_t)o.cap, 16, NULL);
    if (o.defers) kp_free(c->vm->meta, o.defers, sizeof(ODefer) * (size_t)o.dcap, 16, NULL);
}
