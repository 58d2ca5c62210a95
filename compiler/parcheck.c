/*
 * parcheck.c — what the worker function of a parallel call may touch.
 *
 * Design.  parallel_map and parallel_for (stdlib/parallel.c) run one
 * function on several threads at once.  The ownership rules already make
 * most of that safe: the shared list reaches the workers as `&` borrows
 * (read-only all the way down) or as one `$&` element each (exclusive),
 * and a function literal's `&` captures are read-only too.  What is left
 * are the writes the borrow rules allow a single thread but that would
 * race between workers, and this pass refuses them before the program
 * runs (the VM's check of SETG in a worker catches what goes through a
 * function value):
 *
 *   - a capture the literal writes (`$&` — assigned in the body) or takes
 *     (`~&`: every worker would share the one value it owns);
 *   - a top-level variable the function writes (assigns, `$&`, `~&`),
 *     directly or through the functions it calls.
 *
 * Which top-level variable a function writes is worked out per block of
 * functions, after their summaries (summary.c), by the same syntactic
 * walk as the captures of a literal (resolve.c kp_resolve_outer_uses):
 * a function writes what its own body writes, and what the functions it
 * names write — a fixpoint over the block, as the summaries are (the
 * functions of earlier blocks and chunks have theirs already).  It is
 * conservative the way Rust's Send/Sync checks are: a call in a branch
 * never taken still counts.
 */
#include "compiler_int.h"

#include <string.h>

static bool is_top_level(C *c, const char *name) {
    bool global;
    struct KpGlobal *g;
    Local *l = kp_resolve_lookup_var(c, name, &global, &g);
    if (l == (Local *)1) return false; /* a variable of an enclosing function */
    if (l) return l->global;
    return global || kp_vm_global_find(c->vm, name, -1) >= 0;
}

/* The overload of f that writes a top-level variable, or NULL. */
static KpOverload *writer_of(KpFunc *f) {
    for (uint32_t i = 0; f && i < f->n; i++)
        if (f->ovs[i]->par_writes) return f->ovs[i];
    return NULL;
}

typedef struct BlockWalk {
    C *c;
    KpOverload *ov;
    bool changed;
} BlockWalk;

static void block_use(void *ud, const char *name, int op, KpNode *at) {
    BlockWalk *w = ud;
    if (w->ov->par_writes) return;
    if (op != KP_OP_REF && is_top_level(w->c, name)) {
        w->ov->par_writes = name;
        w->ov->par_via = NULL;
        w->ov->par_line = at->line;
        w->ov->par_col = at->col;
        w->changed = true;
        return;
    }
    if (op == KP_OP_REF) {
        KpOverload *o = writer_of(kp_resolve_find_func(w->c, name));
        if (o && o != w->ov) {
            w->ov->par_writes = o->par_writes;
            w->ov->par_via = o->func->name;
            w->ov->par_line = at->line;
            w->ov->par_col = at->col;
            w->changed = true;
        }
    }
}

void kp_parcheck_block(C *c, KpNode **fns, KpOverload **ovs, int n) {
    for (int i = 0; i < n; i++)
        if (ovs[i]) ovs[i]->par_writes = NULL;
    for (int round = 0; round < 16; round++) {
        bool changed = false;
        for (int i = 0; i < n; i++) {
            if (!ovs[i] || ovs[i]->par_writes) continue;
            BlockWalk w = {c, ovs[i], false};
            kp_resolve_outer_uses(c, fns[i], block_use, &w);
            if (w.changed) changed = true;
        }
        if (!changed) break;
    }
}

/* ------------------------------------------------------- at the call */

typedef struct CallWalk {
    C *c;
    KpNode *call;
    const char *who;
    const char *fname; /* the worker function's name, for messages */
    KpNode *lit;       /* the function literal, or NULL */
    bool failed;
} CallWalk;

static void call_note(CallWalk *w) {
    kp_diag_note(w->c->diags, "note: %s runs '%s' on several threads at once (line %u): a worker may read "
                              "what it shares, not write it", w->who, w->fname, w->call->line);
}

static void call_use(void *ud, const char *name, int op, KpNode *at) {
    CallWalk *w = ud;
    if (w->failed) return;
    bool global;
    struct KpGlobal *g;
    Local *l = kp_resolve_lookup_var(w->c, name, &global, &g);
    /* the literal's captures are the variables of the enclosing function
     * it uses (the types pass kept only those) */
    bool captured = false;
    for (int i = 0; w->lit && i < w->lit->list2.count; i++)
        if (kp_compile_intern(w->c, w->lit->list2.items[i]->a->name) == name) captured = true;
    bool top = !captured && is_top_level(w->c, name);
    if (op != KP_OP_REF && (top || captured)) {
        kp_compile_error(w->c, at, "%s: the worker function '%s' %s the %s '%s'", w->who, w->fname,
                         op == KP_OP_MOVE ? "takes" : "writes", captured ? "captured variable" : "top-level variable",
                         name);
        kp_diag_label(w->c->diags, op == KP_OP_MOVE ? "taken by every worker" : "written by every worker");
        call_note(w);
        w->failed = true;
        return;
    }
    if (op == KP_OP_REF && !l && !top && !captured) {
        KpOverload *o = writer_of(kp_resolve_find_func(w->c, name));
        if (o) {
            kp_compile_error(w->c, at, "%s: the worker function '%s' calls '%s', which writes the top-level variable '%s'",
                             w->who, w->fname, name, o->par_writes);
            kp_diag_label(w->c->diags, "writes a top-level variable");
            if (o->par_line && !o->par_via) kp_diag_note(w->c->diags, "note: %s writes it at line %u", name, o->par_line);
            else if (o->par_line) kp_diag_note(w->c->diags, "note: %s calls %s at line %u", name, o->par_via, o->par_line);
            call_note(w);
            w->failed = true;
        }
    }
}

/* `~&p` (or `~&p.f`) of a `&` parameter p of the worker literal: a move
 * out of data the workers share. */
static KpNode *move_of_shared(C *c, KpNode *n, const char **names, int nnames) {
    if (!n || n->kind == KP_N_FUNCLIT || n->kind == KP_N_FUNC) return NULL;
    if (n->kind == KP_N_UNARY && n->op == KP_OP_MOVE && n->a) {
        KpNode *r = kp_resolve_root_ident(n->a);
        if (r && r->name)
            for (int i = 0; i < nnames; i++)
                if (kp_compile_intern(c, r->name) == names[i]) return r;
    }
    KpNode *kids[3] = {n->a, n->b, n->c};
    for (int i = 0; i < 3; i++) {
        KpNode *f = move_of_shared(c, kids[i], names, nnames);
        if (f) return f;
    }
    for (int i = 0; i < n->list.count; i++) {
        KpNode *f = move_of_shared(c, n->list.items[i], names, nnames);
        if (f) return f;
    }
    for (int i = 0; i < n->list2.count; i++) {
        KpNode *f = move_of_shared(c, n->list2.items[i], names, nnames);
        if (f) return f;
    }
    return NULL;
}

static void check_shared_params(CallWalk *w, KpNode *lit) {
    const char *names[64];
    int k = 0;
    for (int i = 0; i < lit->list.count && k < 64; i++) {
        KpNode *p = lit->list.items[i];
        if (p->kind != KP_N_PARAM || !p->name || !p->a) continue;
        KpNode *t = p->a;
        bool shared = (t->kind == KP_N_REFTYPE && t->op == KP_OP_REF) || (t->kind == KP_N_UNARY && t->op == KP_OP_REF);
        if (shared) names[k++] = kp_compile_intern(w->c, p->name);
    }
    if (!k || !lit->b) return;
    KpNode *at = move_of_shared(w->c, lit->b, names, k);
    if (!at) return;
    kp_compile_error(w->c, at, "%s: the worker function '%s' moves out of '%s', which the workers share (&)", w->who,
                     w->fname, at->name);
    kp_diag_label(w->c->diags, "moved out of shared data");
    call_note(w);
    w->failed = true;
}

void kp_parcheck_call(C *c, KpNode *call, const char *who) {
    if (!call->list.count) return;
    KpNode *f = call->list.items[call->list.count - 1];
    if (f->kind == KP_N_FIELDINIT) f = f->a;
    if (f->kind == KP_N_UNARY && f->op == KP_OP_REF) f = f->a;
    CallWalk w = {c, call, who, "anonymous", NULL, false};
    if (f->kind == KP_N_FUNCLIT) {
        w.lit = f;
        if (f->name) w.fname = f->name;
        /* a taken capture (`~&x`): every worker would share the one value
         * the function owns (the body names it as x by now) */
        for (int i = 0; i < f->list2.count && !w.failed; i++) {
            KpNode *u = f->list2.items[i];
            if (u->op == KP_OP_MOVE) call_use(&w, u->a->name, KP_OP_MOVE, u->a);
        }
        if (!w.failed) kp_resolve_outer_uses(c, f, call_use, &w);
        if (!w.failed) check_shared_params(&w, f);
        return;
    }
    if (f->kind != KP_N_IDENT) return;
    bool global;
    struct KpGlobal *g;
    if (kp_resolve_lookup_var(c, kp_compile_intern(c, f->name), &global, &g) || global) return; /* a value: the VM checks */
    KpFunc *fn = kp_resolve_find_func(c, kp_compile_intern(c, f->name));
    KpOverload *o = writer_of(fn);
    if (!o) return;
    w.fname = f->name;
    kp_compile_error(c, f, "%s: the worker function '%s' writes the top-level variable '%s'%s%s%s", who, f->name,
                     o->par_writes, o->par_via ? " (through " : "", o->par_via ? o->par_via : "", o->par_via ? ")" : "");
    kp_diag_label(c->diags, "writes a top-level variable");
    if (o->par_line && !o->par_via) kp_diag_note(c->diags, "note: %s writes it at line %u", f->name, o->par_line);
    else if (o->par_line) kp_diag_note(c->diags, "note: %s calls %s at line %u", f->name, o->par_via, o->par_line);
    call_note(&w);
}
