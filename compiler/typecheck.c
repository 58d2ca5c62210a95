/*
 * typecheck.c — the types pass: static types of expressions, the checks
 * they allow before the program runs, and static overload resolution.
 *
 * Design.  The pass runs over each block right after the block's
 * declarations are hoisted (resolve.c) and before any of its statements is
 * compiled (codegen_stmt.c), so it sees every type and function the block
 * can name, and every local of the enclosing blocks with its static type.
 * Code generation compiles every block, the ones that never run included
 * (`if false { … }`), so every block of the program is checked.  The pass
 * walks the block's statements in order, keeping the static type of each
 * local the block declares (and recording it on the declaration,
 * KpNode.stype, for the ownership pass); nested blocks — branches, loop
 * bodies with their loop variables, bare, using and defer blocks — are
 * checked in the same walk, so that when the ownership pass (ownpass.c)
 * walks a function body, every call in it is bound.  A nested block that
 * declares functions or types is checked when code generation reaches it,
 * after its declarations are hoisted, with the locals declared before it in
 * scope.
 *
 * A static type is known or unknown (NULL).  Known types come from
 * literals, constructors, annotations, parameters, declared outputs, and
 * operations on known types; a value of unknown type (an untyped
 * parameter, a loop variable, the result of a function whose overloads
 * return different types, a host value) is checked when the program runs,
 * as before.  Every comparison of types therefore has three answers
 * (Fit): certainly fits, certainly does not (a compile error), or cannot
 * tell (the run-time check stays).
 *
 * Calls.  For a call of a named function, every overload is matched
 * against the arguments' static types the way the VM's run-time selection
 * does (vm/vm.c select_overload): arity, named arguments, defaults,
 * parameter modes, and the same preference scores (an exact type beats an
 * Abstract, which beats an untyped parameter).  When no overload can
 * accept the arguments the call is a compile error: for a function with
 * one overload the precise one (wrong number of arguments, argument N
 * must be T), otherwise "no overload" with the candidates listed; two
 * equally good overloads are "ambiguous".  When exactly one overload is
 * certain to be chosen, the call is bound to it (KpNode.bound): code
 * generation passes each argument in the form its parameter takes and
 * emits a direct call (CALLS) that the VM runs without selection, checking
 * at run time only the arguments whose types the pass could not prove.
 * An expected output type (`b : HeapAllocation = init(…)`, `T | init(…)`)
 * first narrows the overloads to those returning it, as at run time.
 *
 * A function's overloads are all known only once every declaration of it
 * in the chunk is hoisted: a declaration nested in a function body is
 * hoisted when that body is compiled.  The pass counts the declarations
 * of each name in the chunk first (kp_tc_count_decls), and a call of a
 * function not yet complete, or with a host-registered overload, is
 * resolved at run time.
 *
 * The REPL.  A line is checked against the functions defined so far, as a
 * name must be defined before a line uses it: a call no overload accepts
 * is a compile error there too.  A later line may add overloads, so the
 * REPL binds a call only when every argument's static type is exactly its
 * parameter's: a new overload can then at best tie, which redefines the
 * bound one — in place (types.c), so the bound call runs the new body.
 * Any other call is selected at run time among the overloads of that time.
 */
#include "compiler_int.h"
#include <inttypes.h>

typedef enum Fit { FIT_NO = 0, FIT_MAYBE = 1, FIT_YES = 2 } Fit;

typedef struct TcVar {
    const char *name;
    KpType *type;
    bool global;  /* a top-level variable of the main chunk */
} TcVar;

typedef struct Tc {
    C *c;
    KpVM *vm;
    TcVar *vars;
    int nvars, cap;
    KpType *hole; /* static type of `_` in the pipe being checked */
    bool in_pipe;
    int depth;    /* nested blocks checked in this walk */
} Tc;

/* ------------------------------------------------ declarations count */

static KpDeclCount *decl_slot(C *c, const char *name, bool add) {
    if (!c->decls.cap) {
        if (!add) return NULL;
        c->decls.cap = 64;
        c->decls.items = kp_arena_alloc(&c->vm->meta_arena, sizeof(KpDeclCount) * 64, 8);
        if (!c->decls.items) { c->decls.cap = 0; return NULL; }
        memset(c->decls.items, 0, sizeof(KpDeclCount) * 64);
    }
    if (add && (c->decls.n + 1) * 2 > c->decls.cap) {
        uint32_t ncap = c->decls.cap * 2;
        KpDeclCount *n = kp_arena_alloc(&c->vm->meta_arena, sizeof(KpDeclCount) * ncap, 8);
        if (!n) return NULL;
        memset(n, 0, sizeof(KpDeclCount) * ncap);
        for (uint32_t i = 0; i < c->decls.cap; i++) {
            KpDeclCount *o = &c->decls.items[i];
            if (!o->name) continue;
            uint32_t h = kp_compile_hash_ptr(o->name) & (ncap - 1);
            while (n[h].name) h = (h + 1) & (ncap - 1);
            n[h] = *o;
        }
        c->decls.items = n;
        c->decls.cap = ncap;
    }
    uint32_t h = kp_compile_hash_ptr(name) & (c->decls.cap - 1);
    while (c->decls.items[h].name) {
        if (c->decls.items[h].name == name) return &c->decls.items[h];
        h = (h + 1) & (c->decls.cap - 1);
    }
    if (!add) return NULL;
    c->decls.items[h].name = name;
    c->decls.n++;
    return &c->decls.items[h];
}

/* Counts the function declarations of the chunk, at every depth. */
void kp_tc_count_decls(C *c, KpNode *n) {
    if (!n) return;
    if (n->kind == KP_N_FUNC && n->b && n->name) {
        KpDeclCount *d = decl_slot(c, kp_compile_intern(c, n->name), true);
        if (d) d->total++;
    }
    if (n->kind == KP_N_TYPEDECL) return; /* Abstract signatures declare nothing */
    kp_tc_count_decls(c, n->a);
    kp_tc_count_decls(c, n->b);
    kp_tc_count_decls(c, n->c);
    for (int i = 0; i < n->list.count; i++) kp_tc_count_decls(c, n->list.items[i]);
}

/* Notes that one declaration of `name` was hoisted. */
void kp_tc_declared(C *c, const char *name) {
    KpDeclCount *d = decl_slot(c, name, false);
    if (d) d->seen++;
}

bool kp_tc_chunk_declares(C *c, const char *name) {
    KpDeclCount *d = decl_slot(c, name, false);
    return d && d->total > 0;
}

/* Are all the overloads of f known now, and fixed for the program? */
static bool overloads_complete(C *c, KpFunc *f) {
    for (uint32_t i = 0; i < f->n; i++)
        if (f->ovs[i]->host_fn) return false;
    KpDeclCount *d = decl_slot(c, f->name, false);
    return !d || d->seen >= d->total;
}

/* ------------------------------------------------------------ fits */

static bool is_sized(KpType *t) { return t && t->kind == KP_TK_SCALAR && KP_IS_SIZED_INT(t->tag); }

/* Does a value of static type `have` fit a place of type `want`? */
static Fit fit(KpVM *vm, KpType *want, KpType *have) {
    if (!want || want->kind == KP_TK_ANY || want->kind == KP_TK_ABSTRACT) return FIT_YES;
    if (!have || have->kind == KP_TK_ANY || have->kind == KP_TK_ABSTRACT) return FIT_MAYBE;
    if (want == have) return FIT_YES;
    if (have->kind == KP_TK_REF) return want->kind == KP_TK_REF ? fit(vm, want->elem, have->elem) : FIT_MAYBE;
    switch (want->kind) {
    case KP_TK_SCALAR:
        if (have->kind != KP_TK_SCALAR) return FIT_NO;
        if (want->tag == have->tag) return FIT_YES; /* Float32 is a Float stored in 32 bits */
        if (want->tag == KP_T_FLOAT && have == vm->t_int) return FIT_YES;
        if (is_sized(want) && (have == vm->t_int || is_sized(have))) return FIT_MAYBE; /* range: at run time */
        if (want == vm->t_int && is_sized(have)) return FIT_YES;
        return FIT_NO;
    case KP_TK_RECORD:
        return have->kind == KP_TK_RECORD && !(want->anon && have->anon) ? FIT_NO
             : have->kind == KP_TK_RECORD ? FIT_MAYBE : FIT_NO;
    case KP_TK_LIST:
    case KP_TK_MAP:
        if (have->kind != want->kind) return FIT_NO;
        return FIT_MAYBE; /* element types are checked (and converted) at run time */
    case KP_TK_REF:
        return FIT_MAYBE;
    case KP_TK_TYPE:
    case KP_TK_FUNC:
        return have->kind == want->kind ? FIT_YES : FIT_NO;
    case KP_TK_OPAQUE:
        if (have->kind != KP_TK_OPAQUE) return FIT_NO;
        if (have->tag != want->tag) return FIT_NO;
        if (want->akind && have->akind && want->akind != have->akind) return FIT_NO;
        return want->akind ? FIT_MAYBE : FIT_YES;
    default:
        return FIT_MAYBE;
    }
}

static const char *tname(KpType *t) { return t ? t->name : "_"; }

/* ------------------------------------------------------------ scopes */

static void tc_push_var(Tc *t, const char *name, KpType *type) {
    if (t->nvars == t->cap) {
        int ncap = t->cap ? t->cap * 2 : 16;
        TcVar *q = kp_realloc(t->vm->meta, t->vars, sizeof(TcVar) * (size_t)t->cap, sizeof(TcVar) * (size_t)ncap, 8, NULL);
        if (!q) return;
        t->vars = q;
        t->cap = ncap;
    }
    C *c = t->c;
    bool global = t->depth == 0 && c->fn->is_main && c->fn->depth == 0 && c->func_depth == 0;
    t->vars[t->nvars++] = (TcVar){name, type, global};
}

/* The static type of variable `name`, and whether it is a variable. */
static KpType *var_type(Tc *t, const char *name, bool *is_var) {
    *is_var = true;
    for (int i = t->nvars - 1; i >= 0; i--)
        if (t->vars[i].name == name) return t->vars[i].type;
    bool global;
    struct KpGlobal *g;
    Local *l = kp_resolve_lookup_var(t->c, name, &global, &g);
    if (l == (Local *)1) return NULL;
    if (l) return l->type;
    if (global) return g ? g->type : NULL;
    *is_var = false;
    return NULL;
}

/* Resolves a type expression without reporting (code generation reports
 * what is wrong with it). */
static KpType *quiet_type(Tc *t, KpNode *n) {
    KpDiags *d = t->c->diags;
    int mark = d->count;
    KpType *ty = kp_types_resolve(t->c, n);
    if (d->count != mark && mark <= 100) { d->count = mark; return NULL; }
    return ty;
}

/* ------------------------------------------------------------ moves */

static KpType *expr_type(Tc *t, KpNode *n);

/* The static type of n without reporting (it is reported where n is
 * checked itself). */
static KpType *quiet_expr_type(Tc *t, KpNode *n) {
    KpDiags *d = t->c->diags;
    int mark = d->count;
    KpType *ty = expr_type(t, n);
    if (d->count != mark && mark <= KP_MAX_DIAGS) d->count = mark;
    return ty;
}

/* A consuming use of `v` (an initializer, an assigned value, a returned
 * value, a by-value argument): moving out of a list or map element would
 * leave a hole in the container — a compile error when the element's type
 * is known to move. */
/* ------------------------------------------------------------ calls */

typedef struct Arg {
    KpNode *node;     /* the argument expression (the value of a named one) */
    const char *name; /* named argument, or NULL */
    KpType *type;     /* static type of the value (of the referent for &x) */
    uint8_t ref;      /* written &x (1) or $&x (2) */
    bool place;       /* a variable, field or element: passed as a borrow */
} Arg;

typedef struct Match {
    Fit fit;
    int score;
    uint64_t check; /* arguments (by parameter index) bound at run time */
    bool inexact;   /* some argument's static type is not exactly its
                       parameter's: a later overload could fit it better */
    char why[200];  /* the first reason it does not fit */
    char label[120]; /* its label under the call */
} Match;

/* Is expression n, of static type `want`, a new plain value — never a
 * reference nor a place — of one of the types whose values the VM passes
 * as they are (Int, Float, Bool; not Float32 or a sized int, which the
 * binding converts)? */
static bool fresh_scalar(KpVM *vm, const KpType *want, const KpNode *n) {
    if (want != vm->t_int && want != vm->t_float && want != vm->t_bool) return false;
    switch (n->kind) {
    case KP_N_INT: case KP_N_FLOAT: case KP_N_BOOL: return true;
    case KP_N_UNARY: return n->op == KP_OP_NEG || n->op == KP_OP_NOT || n->op == KP_OP_LNOT;
    case KP_N_BINARY:
        switch (n->op) {
        case KP_OP_ADD: case KP_OP_SUB: case KP_OP_MUL: case KP_OP_DIV: case KP_OP_MOD:
        case KP_OP_LAND: case KP_OP_LOR: case KP_OP_LXOR: case KP_OP_LSL: case KP_OP_LSR: case KP_OP_ASR:
        case KP_OP_EQ: case KP_OP_NE: case KP_OP_LT: case KP_OP_LE: case KP_OP_GT: case KP_OP_GE: return true;
        default: return false;
        }
    default: return false;
    }
}

/* The bitwise operators take Ints only: an operand whose static type is
 * known and not Int is a compile error (an unknown one is checked when it
 * runs), and so is a constant shift count outside 0..63.  b is NULL for
 * `lnot`. */
static void check_bitwise(Tc *t, KpNode *n, KpType *a, KpType *b) {
    KpVM *vm = t->vm;
    const char *op = kp_ast_op_name(n->op);
    if (a && a->kind == KP_TK_REF) a = a->elem; /* read through */
    if (b && b->kind == KP_TK_REF) b = b->elem;
    if (n->kind == KP_N_UNARY) {
        if (a && a != vm->t_int) kp_compile_error(t->c, n, "'lnot' needs an Int, but the value is %s", a->name);
        return;
    }
    if ((a && a != vm->t_int) || (b && b != vm->t_int)) {
        kp_compile_error(t->c, n, "'%s' needs Int operands, but they are %s and %s", op, a ? a->name : "unknown",
                         b ? b->name : "unknown");
        return;
    }
    KpValue k;
    if ((n->op == KP_OP_LSL || n->op == KP_OP_LSR || n->op == KP_OP_ASR) && kp_types_fold_number(n->b, &k) &&
        k.tag == KP_T_INT && (k.i < 0 || k.i > 63))
        kp_compile_error(t->c, n->b, "shift count %" PRId64 " is out of range 0..63 (in %s)", k.i, op);
}

static void accept_arg(Tc *t, KpFunc *f, int idx, const KpParam *p, const Arg *a, Match *m) {
    KpVM *vm = t->vm;
    const char *pname = p->name ? p->name : "_";
    if (p->mode == KP_PM_MUTREF && a->ref == 1) {
        if (m->fit != FIT_NO)
            snprintf(m->why, sizeof m->why, "argument %d of '%s' (%s) needs $&: a read-only reference (&) was passed",
                     idx + 1, f->name, pname);
        m->fit = FIT_NO;
        return;
    }
    bool needs = false;
    Fit r;
    int s = 0;
    KpType *have = a->type, *want = p->type;
    if (!want) { r = FIT_YES; s = 1; }
    else if (want->kind == KP_TK_ABSTRACT) { r = FIT_YES; s = 2; needs = true; }
    else if (!have) { r = FIT_MAYBE; s = 1; }
    else if (want->kind == KP_TK_REF) { r = FIT_MAYBE; s = 3; }
    else if (want == have) { r = FIT_YES; s = 3; }
    else if (is_sized(want) && have == vm->t_int) { r = FIT_YES; s = 2; needs = true; }
    else if (want->kind == KP_TK_SCALAR && want->tag == KP_T_FLOAT && have == vm->t_int) { r = FIT_YES; s = 1; needs = true; }
    else if (want == vm->t_int && is_sized(have)) { r = FIT_YES; s = 1; needs = true; }
    /* a List or HashMap parameter without element types (a builtin's
     * `List#(T)`) takes every list or map as it is: nothing to bind —
     * when that cannot make two overloads tie (the only overload, or the
     * argument's explicit & or $& is the parameter's mode); otherwise the
     * run time keeps choosing by mode */
    else if ((want->kind == KP_TK_LIST || want->kind == KP_TK_MAP) && !want->elem && !want->key &&
             have->kind == want->kind && (f->n == 1 || (p->mode != KP_PM_VALUE && a->ref == p->mode))) {
        r = FIT_YES;
        s = 3;
    }
    else { r = fit(vm, want, have); s = 3; needs = true; if (r == FIT_YES) r = FIT_MAYBE; }
    if (r == FIT_NO) {
        if (m->fit != FIT_NO)
        {
            snprintf(m->why, sizeof m->why, "argument %d of '%s' (%s) must be %s%s, but it is %s", idx + 1, f->name, pname,
                     p->mode == KP_PM_MUTREF ? "$&" : p->mode == KP_PM_REF ? "&" : "", want->name, have->name);
            snprintf(m->label, sizeof m->label, "expected %s, found %s", want->name, have->name);
        }
        m->fit = FIT_NO;
        return;
    }
    if (r == FIT_MAYBE) needs = true;
    if (!want || want != have || r != FIT_YES) m->inexact = true;
    /* a moved-out field or element, or a place whose value may be gone:
     * the binding checks it (a variable's register is checked by REF) */
    if (a->node->kind == KP_N_FIELD || a->node->kind == KP_N_INDEX || a->node->kind == KP_N_HOLE) needs = true;
    /* by value: a variable may hold a reference (a copy of a & parameter),
     * so the binding looks at the value; its exact scalar tag is one test.
     * A fresh Int, Float or Bool of exactly the parameter's type (a literal,
     * arithmetic, a comparison) is no reference: nothing to bind. */
    if (p->mode == KP_PM_VALUE && !(want && want == have && fresh_scalar(vm, want, a->node))) needs = true;
    if (needs) m->check |= idx < 64 ? (uint64_t)1 << idx : ~(uint64_t)0;
    if (r == FIT_MAYBE && m->fit == FIT_YES) m->fit = FIT_MAYBE;
    m->score += s;
}

static void match_overload(Tc *t, KpOverload *ov, Arg *args, int nargs, int npos, Match *m) {
    KpFunc *f = ov->func;
    memset(m, 0, sizeof *m);
    m->fit = FIT_YES;
    if (!ov->variadic && nargs > ov->nparams) {
        snprintf(m->why, sizeof m->why, "'%s' takes %d argument%s, but %d %s given", f->name, ov->nparams,
                 ov->nparams == 1 ? "" : "s", nargs, nargs == 1 ? "was" : "were");
        snprintf(m->label, sizeof m->label, "expected %d argument%s", ov->nparams, ov->nparams == 1 ? "" : "s");
        m->fit = FIT_NO;
        return;
    }
    for (int j = 0; j < npos; j++) {
        if (j < ov->nparams) accept_arg(t, f, j, &ov->params[j], &args[j], m);
        else {
            KpParam vp = {0};
            vp.mode = ov->vmode;
            accept_arg(t, f, j, &vp, &args[j], m);
        }
    }
    for (int j = npos; j < nargs; j++) {
        int k = -1;
        for (int q = 0; q < ov->nparams; q++)
            if (ov->params[q].name == args[j].name) k = q;
        if (k < npos) {
            if (m->fit != FIT_NO)
                snprintf(m->why, sizeof m->why, "'%s' has no parameter '%s'%s", f->name, args[j].name,
                         k >= 0 ? " left to name (it was given by position)" : "");
            m->fit = FIT_NO;
            return;
        }
        accept_arg(t, f, k, &ov->params[k], &args[j], m);
    }
    for (int q = npos; q < ov->nparams; q++) {
        bool given = false;
        for (int j = npos; j < nargs; j++)
            if (args[j].name == ov->params[q].name) given = true;
        if (!given && ov->params[q].def.tag == KP_T_UNSET) {
            if (m->fit != FIT_NO) {
                if (nargs < ov->nparams && npos == nargs) {
                    snprintf(m->why, sizeof m->why, "'%s' takes %d argument%s, but %d %s given", f->name, ov->nparams,
                             ov->nparams == 1 ? "" : "s", nargs, nargs == 1 ? "was" : "were");
                    snprintf(m->label, sizeof m->label, "expected %d argument%s", ov->nparams, ov->nparams == 1 ? "" : "s");
                }
                else
                    snprintf(m->why, sizeof m->why, "missing argument %d of '%s' (%s)", q + 1, f->name,
                             ov->params[q].name ? ov->params[q].name : "_");
            }
            m->fit = FIT_NO;
            return;
        }
    }
}

static bool ret_compatible(const KpType *ret, const KpType *expect) {
    if (!ret || !expect) return false;
    if (ret == expect) return true;
    return (ret->kind == KP_TK_LIST || ret->kind == KP_TK_MAP) && ret->kind == expect->kind && !ret->elem && !ret->key;
}

static void describe_ov(char *buf, size_t n, KpOverload *ov) {
    size_t len = (size_t)snprintf(buf, n, "%s (", ov->func->name);
    for (int i = 0; i < ov->nparams && len < n - 40; i++) {
        const KpParam *p = &ov->params[i];
        len += (size_t)snprintf(buf + len, n - len, "%s%s%s: %s%s", i ? ", " : "", p->named ? "." : "", p->name ? p->name : "_",
                                p->mode == KP_PM_MUTREF ? "$&" : p->mode == KP_PM_REF ? "&" : "", p->type ? p->type->name : "Any");
    }
    if (ov->variadic && len < n - 8) len += (size_t)snprintf(buf + len, n - len, "%s...", ov->nparams ? ", " : "");
    if (len < n - 40) len += (size_t)snprintf(buf + len, n - len, ") -> %s", ov->ret ? ov->ret->name : "_");
    if (ov->proto && len < n - 24) snprintf(buf + len, n - len, " (line %u)", ov->line);
    else if (!ov->proto && len < n - 16) snprintf(buf + len, n - len, " (built-in)");
}

static void note_candidates(Tc *t, KpFunc *f, KpOverload **only, int nonly) {
    char note[1400];
    size_t len = (size_t)snprintf(note, sizeof note, "note: candidates:");
    int shown = 0;
    for (uint32_t i = 0; i < f->n && len < sizeof note - 300; i++) {
        KpOverload *ov = f->ovs[i];
        if (only) {
            bool in = false;
            for (int k = 0; k < nonly; k++) in |= only[k] == ov;
            if (!in) continue;
        }
        char d[256];
        describe_ov(d, sizeof d, ov);
        len += (size_t)snprintf(note + len, sizeof note - len, "\n        %s", d);
        shown++;
    }
    if (shown) kp_diag_note(t->c->diags, "%s", note);
}

/* Checks a call of function f with these arguments; binds it when one
 * overload is certain.  Returns the static result type. */
static KpType *check_call_of(Tc *t, KpNode *n, KpFunc *f, Arg *args, int nargs, int npos, KpType *expect, bool bindable) {
    KpVM *vm = t->vm;
    if (f->special || f->n == 0) return NULL;
    bool complete = overloads_complete(t->c, f);
    bool some_ret = false;
    if (expect)
        for (uint32_t i = 0; i < f->n; i++)
            if (ret_compatible(f->ovs[i]->ret, expect)) some_ret = true;
    Match best = {0}, cur;
    KpOverload *best_ov = NULL, *tied[8];
    int nties = 0, nviable = 0, nmaybe = 0;
    Match first_no = {0};
    bool have_no = false;
    for (uint32_t i = 0; i < f->n; i++) {
        KpOverload *ov = f->ovs[i];
        if (some_ret && !ret_compatible(ov->ret, expect)) continue;
        if (!some_ret && ov->by_result) continue; /* chosen only by its output type */
        match_overload(t, ov, args, nargs, npos, &cur);
        if (cur.fit == FIT_NO) {
            if (!have_no) { first_no = cur; have_no = true; }
            continue;
        }
        nviable++;
        if (cur.fit == FIT_MAYBE) nmaybe++;
        if (!best_ov || cur.score > best.score) {
            best = cur;
            best_ov = ov;
            nties = 0;
        } else if (cur.score == best.score) {
            if (nties < 8) tied[nties] = ov;
            nties++;
        }
    }
    if (!nviable) {
        if (!complete) return NULL;
        if (f->n == 1 || (some_ret && f->n == 1)) {
            kp_compile_error(t->c, n, "%s", first_no.why);
            if (first_no.label[0]) kp_diag_label(t->c->diags, "%s", first_no.label);
            KpOverload *o = f->ovs[0];
            if (o->proto && o->file == t->c->src->name)
                kp_diag_span(t->c->diags, o->line, 1, "'%s' is declared here", f->name);
        } else {
            char buf[400];
            size_t len = 0;
            buf[0] = 0;
            for (int j = 0; j < nargs && len < sizeof buf - 64; j++)
                len += (size_t)snprintf(buf + len, sizeof buf - len, "%s%s%s%s%s", j ? ", " : "", args[j].name ? "." : "",
                                        args[j].name ? args[j].name : "", args[j].name ? " = " : "",
                                        args[j].ref == 2 ? "$&" : args[j].ref ? "&" : "");
            len = 0;
            for (int j = 0; j < nargs && len < sizeof buf - 64; j++)
                len += (size_t)snprintf(buf + len, sizeof buf - len, "%s%s%s", j ? ", " : "",
                                        args[j].ref == 2 ? "$&" : args[j].ref ? "&" : "", tname(args[j].type));
            if (some_ret)
                kp_compile_error(t->c, n, "no overload of '%s' returning %s accepts (%s)", f->name, expect->name, buf);
            else
                kp_compile_error(t->c, n, "no overload of '%s' accepts (%s)", f->name, buf);
            note_candidates(t, f, NULL, 0);
        }
        return NULL;
    }
    if (nmaybe == 0 && nties > 0) {
        if (!complete) return NULL;
        char buf[400];
        size_t len = 0;
        buf[0] = 0;
        for (int j = 0; j < nargs && len < sizeof buf - 64; j++)
            len += (size_t)snprintf(buf + len, sizeof buf - len, "%s%s", j ? ", " : "", tname(args[j].type));
        kp_compile_error(t->c, n, "ambiguous call to '%s' with (%s): several overloads match equally", f->name, buf);
        KpOverload *cands[9];
        cands[0] = best_ov;
        int nc = 1;
        for (int k = 0; k < nties && k < 8; k++) cands[nc++] = tied[k];
        note_candidates(t, f, cands, nc);
        return NULL;
    }
    KpOverload *chosen = NULL;
    if (nmaybe == 0) chosen = best_ov;            /* certain: the best of the fitting ones */
    else if (nviable == 1 && f->n == 1) chosen = best_ov; /* the only overload: checked where unproven */
    if (!chosen) {
        /* the run time chooses; the static result is known if they agree */
        KpType *rt = NULL;
        bool same = true;
        for (uint32_t i = 0; i < f->n; i++) {
            if (some_ret && !ret_compatible(f->ovs[i]->ret, expect)) continue;
            if (!rt) rt = f->ovs[i]->ret;
            else if (rt != f->ovs[i]->ret) same = false;
        }
        return some_ret ? expect : same ? rt : NULL;
    }
    for (int j = 0; j < npos && j < chosen->nparams && j < 64; j++)
        if (chosen->params[j].mode == KP_PM_VALUE) args[j].node->flags |= KP_F_BYVALUE;
    /* bound only when the call passes every parameter by position (named
     * arguments and defaults are arranged by the run-time binding), and no
     * argument borrows from a temporary (code generation pins those) */
    if (npos != nargs || nargs < chosen->nparams || (!chosen->variadic && nargs != chosen->nparams)) bindable = false;
    for (int j = 0; j < nargs && bindable; j++) {
        KpNode *a = args[j].node;
        if (a->kind == KP_N_HOLE || ((a->kind == KP_N_FIELD || a->kind == KP_N_INDEX) && !kp_resolve_is_place(a)))
            bindable = false;
        if (a->kind == KP_N_UNARY && (a->op == KP_OP_REF || a->op == KP_OP_MUTREF) && !kp_resolve_is_place(a->a))
            bindable = false;
    }
    /* a host function that is its name's only overload is bound like a
     * built-in (overloads registered later serve scripts compiled later) */
    bool host_single = f->n == 1 && chosen->host_fn && !t->c->repl;
    /* the REPL binds only a call that no later line can change: every
     * argument exactly of its parameter's type (an overload added later
     * can at best tie with it — a redefinition, which replaces the bound
     * overload's body in place) and no output type asked for */
    if (t->c->repl && (best.inexact || some_ret)) bindable = false;
    /* (a script function declared later in the source has no code yet:
     * CALLS reads the overload's proto when it runs) */
    if ((complete || host_single) && bindable && (chosen->proto || chosen->native || !chosen->host_fn)) {
        n->bound = chosen;
        n->bound_check = best.check;
    }
    (void)vm;
    if (some_ret) return expect;
    return chosen->ret;
}

/* Collects a call's arguments (with the piped value first, if any). */
static int collect_args(Tc *t, KpNode *n, Arg *args, int max, int *npos, KpNode *first, KpType *first_type) {
    int na = 0;
    if (first && na < max) args[na++] = (Arg){first, NULL, first_type, 0, true};
    for (int pass = 0; pass < 2; pass++) {
        for (int i = 0; i < n->list.count && na < max; i++) {
            KpNode *a = n->list.items[i];
            bool named = a->kind == KP_N_FIELDINIT;
            if (named != (pass == 1)) continue;
            KpNode *v = named ? a->a : a;
            Arg g = {v, named ? kp_compile_intern(t->c, a->name) : NULL, NULL, 0, false};
            if (v->kind == KP_N_UNARY && (v->op == KP_OP_REF || v->op == KP_OP_MUTREF)) {
                g.ref = v->op == KP_OP_MUTREF ? 2 : 1;
                g.type = expr_type(t, v->a);
            } else {
                g.type = expr_type(t, v);
                g.place = kp_resolve_is_place(v);
            }
            args[na++] = g;
        }
        if (pass == 0) *npos = na;
    }
    return na;
}

/* parallel_map(&xs, f) / parallel_for(…, f): f may not write what the
 * workers share (parcheck.c); parallel_map's result is List#(R) when f's
 * output type R is known. */
static KpType *parallel_call(Tc *t, KpNode *n, const char *name, KpType *rt) {
    kp_parcheck_call(t->c, n, name);
    if (!n->list.count) return rt;
    KpNode *f = n->list.items[n->list.count - 1];
    KpOverload *ov = NULL;
    if (f->kind == KP_N_FUNCLIT && f->bound) {
        /* the parameters the workers pass: the element (or index), and for
         * parallel_for over a list, optionally the index before it */
        int np = f->bound->nparams - f->bound->literal;
        bool each = !strcmp(name, "parallel_for") && n->list.count == 2;
        if (np != 1 && !(each && np == 2)) {
            kp_compile_error(t->c, f, "%s calls its function with %s, but this one takes %d parameter%s", name,
                             each ? "one argument ($&element) or two (index, $&element)"
                                  : (n->list.count == 3 ? "one argument (the index)" : "one argument (the element)"),
                             np, np == 1 ? "" : "s");
            return rt;
        }
    }
    if (strcmp(name, "parallel_map")) return rt;
    if (f->kind == KP_N_FUNCLIT) ov = f->bound;
    else if (f->kind == KP_N_IDENT) {
        bool is_var;
        const char *fname = kp_compile_intern(t->c, f->name);
        var_type(t, fname, &is_var);
        KpFunc *ff = is_var ? NULL : kp_resolve_find_func(t->c, fname);
        if (ff && ff->n == 1) ov = ff->ovs[0];
    }
    if (!ov || !ov->ret || ov->ret == t->vm->t_any || ov->ret->kind == KP_TK_REF) return rt;
    return kp_types_derived(t->c, KP_TK_LIST, ov->ret, NULL, 0);
}

static KpType *check_call(Tc *t, KpNode *n, KpType *expect, KpNode *first, KpType *first_type) {
    KpNode *callee = n->a;
    Arg args[64];
    int npos = 0;
    if (n->list.count + 1 > 64) {
        for (int i = 0; i < n->list.count; i++) expr_type(t, n->list.items[i]);
        return NULL;
    }
    if (callee->kind == KP_N_GENERIC) {
        for (int i = 0; i < n->list.count; i++) {
            KpNode *a = n->list.items[i];
            expr_type(t, a->kind == KP_N_FIELDINIT ? a->a : a);
        }
        return quiet_type(t, callee);
    }
    if (callee->kind != KP_N_IDENT) {
        expr_type(t, callee);
        collect_args(t, n, args, 64, &npos, first, first_type);
        return NULL;
    }
    const char *name = kp_compile_intern(t->c, callee->name);
    bool is_var;
    var_type(t, name, &is_var);
    if (is_var) { /* a function value: chosen at run time */
        collect_args(t, n, args, 64, &npos, first, first_type);
        return NULL;
    }
    TypeBind *tb = kp_resolve_find_type(t->c, name);
    if (tb && tb->type && !tb->generic) { /* a constructor: checked by code generation */
        for (int i = 0; i < n->list.count; i++) {
            KpNode *a = n->list.items[i];
            expr_type(t, a->kind == KP_N_FIELDINIT ? a->a : a);
        }
        return tb->type;
    }
    KpType *bt = tb ? NULL : kp_types_builtin(t->c, name);
    int na = collect_args(t, n, args, 64, &npos, first, first_type);
    KpFunc *f = kp_resolve_find_func(t->c, name);
    if (bt && (bt->kind == KP_TK_OPAQUE || bt == t->vm->t_heap) && !first) {
        /* `HeapAllocation(…)`: init(…) returning that type */
        KpFunc *init = kp_types_ctor_func(t->c);
        if (init) check_call_of(t, n, init, args, na, npos, bt, false);
        return bt;
    }
    if (!f) return NULL;
    KpType *rt = check_call_of(t, n, f, args, na, npos, expect, first == NULL);
    if (name[0] == 'p' && (!strcmp(name, "parallel_map") || !strcmp(name, "parallel_for")) && f->n && f->ovs[0]->native)
        rt = parallel_call(t, n, name, rt);
    return rt;
}

/* ------------------------------------------------------------ expressions */

static KpType *field_of(Tc *t, KpNode *n, KpType *ct) {
    if (!ct) return NULL;
    if (ct->kind == KP_TK_REF) ct = ct->elem;
    if (!ct || ct->kind != KP_TK_RECORD || !ct->fnames) return NULL;
    const char *fname = kp_compile_intern(t->c, n->name);
    for (uint32_t i = 0; i < ct->nfields; i++)
        if (ct->fnames[i] == fname) return ct->ftypes[i];
    kp_compile_error(t->c, n, "%s has no field '%s'", ct->name, n->name);
    kp_diag_label(t->c->diags, "unknown field");
    KpSimilar s;
    kp_compile_similar_init(&s, fname);
    for (uint32_t i = 0; i < ct->nfields; i++) kp_compile_similar_try(&s, ct->fnames[i]);
    if (s.best) kp_compile_similar_help(t->c, &s);
    else if (ct->nfields) {
        char buf[300];
        size_t len = 0;
        buf[0] = 0;
        for (uint32_t i = 0; i < ct->nfields && len < sizeof buf - 40; i++)
            len += (size_t)snprintf(buf + len, sizeof buf - len, "%s.%s", i ? ", " : "", ct->fnames[i]);
        kp_diag_note(t->c->diags, "note: %s has the fields %s", ct->name, buf);
    }
    return NULL;
}

static KpType *check_pipe(Tc *t, KpNode *n) {
    KpNode *lhs = n->a, *rhs = n->b;
    /* `T | init(…)`: output-type selection */
    if (rhs->kind == KP_N_CALL && !kp_resolve_has_hole(rhs) && (lhs->kind == KP_N_IDENT || lhs->kind == KP_N_GENERIC)) {
        KpType *ty = NULL;
        if (lhs->kind == KP_N_GENERIC) ty = quiet_type(t, lhs);
        else {
            bool is_var;
            const char *name = kp_compile_intern(t->c, lhs->name);
            var_type(t, name, &is_var);
            if (!is_var) {
                TypeBind *tb = kp_resolve_find_type(t->c, name);
                ty = tb ? tb->type : kp_types_builtin(t->c, name);
            }
        }
        if (ty) {
            check_call(t, rhs, ty, NULL, NULL);
            return ty;
        }
    }
    KpType *lt = expr_type(t, lhs);
    if (lhs->kind == KP_N_PIPE && lhs->b && lhs->b->kind == KP_N_KEEP) lt = NULL; /* a kept box's reference */
    KpType *save = t->hole;
    bool save_in = t->in_pipe;
    t->hole = lt;
    t->in_pipe = true;
    KpType *rt = NULL;
    if (rhs->kind == KP_N_CALL) {
        /* the call with the piped value as its first argument (or where
         * the `_` is): checked as any call (the run time binds it) */
        bool hole = kp_resolve_has_hole(rhs);
        if (rhs->list.count < 63) rt = check_call(t, rhs, NULL, hole ? NULL : lhs, hole ? NULL : lt);
    } else if (rhs->kind == KP_N_KEEP) {
        for (int i = 0; i < rhs->list.count; i++) expr_type(t, rhs->list.items[i]);
        rt = NULL;
    }
    t->hole = save;
    t->in_pipe = save_in;
    return rt;
}

/* The static type of expression n (NULL: unknown), checking it. */
/* A function literal: its captures are the outer names its body uses
 * (resolve.c) that are variables of the enclosing function, not top-level
 * variables (reached as from any function); its overload is declared here
 * with the captures' static types, its body is checked when it is
 * compiled (as a function's).  Its type: Function when it captures
 * nothing, else its closure type (a value that moves). */
static KpType *funclit_type(Tc *t, KpNode *n) {
    C *c = t->c;
    if (n->bound) return n->stype ? n->stype : t->vm->t_func;
    kp_resolve_captures(c, n);
    int k = 0;
    KpType *types[64];
    for (int i = 0; i < n->list2.count; i++) {
        KpNode *u = n->list2.items[i];
        const char *name = kp_compile_intern(c, u->a->name);
        bool keep = false;
        KpType *ty = NULL;
        int j = t->nvars - 1;
        while (j >= 0 && t->vars[j].name != name) j--;
        if (j >= 0) {
            keep = !t->vars[j].global;
            ty = t->vars[j].type;
        } else {
            bool global;
            struct KpGlobal *g;
            Local *l = kp_resolve_lookup_var(c, name, &global, &g);
            if (l && l != (Local *)1 && !global) {
                keep = true;
                ty = l->type;
            }
        }
        if (!keep) continue;
        if (k < 64) types[k] = ty;
        n->list2.items[k++] = u;
    }
    n->list2.count = k;
    n->bound = kp_types_declare_literal(c, n, types, n->name ? kp_compile_intern(c, n->name) : kp_compile_intern(c, "anonymous"));
    if (!n->bound) return NULL;
    return n->stype ? n->stype : t->vm->t_func;
}

static KpType *expr_type(Tc *t, KpNode *n) {
    KpVM *vm = t->vm;
    if (!n) return NULL;
    switch (n->kind) {
    case KP_N_INT: return vm->t_int;
    case KP_N_FLOAT: return vm->t_float;
    case KP_N_STRING: return vm->t_string;
    case KP_N_BOOL: return vm->t_bool;
    case KP_N_UNIT: return vm->t_unit;
    case KP_N_IDENT: {
        bool is_var;
        KpType *ty = var_type(t, kp_compile_intern(t->c, n->name), &is_var);
        return is_var ? ty : NULL;
    }
    case KP_N_HOLE: return t->in_pipe ? t->hole : NULL;
    case KP_N_FUNCLIT: return funclit_type(t, n);
    case KP_N_LIST: { /* List#(T) when every element is a known T */
        if (n->packed) return kp_types_derived(t->c, KP_TK_LIST, n->packed->kind == KP_N_INT ? vm->t_int : vm->t_float, NULL, 0);
        KpType *et = NULL;
        bool same = n->list.count > 0;
        for (int i = 0; i < n->list.count; i++) {
            KpType *e = expr_type(t, n->list.items[i]);
            if (!e || (et && e != et)) same = false;
            if (!et) et = e;
        }
        return same && et ? kp_types_derived(t->c, KP_TK_LIST, et, NULL, 0) : vm->t_list;
    }
    case KP_N_MAP: {
        KpType *kt = NULL, *vt = NULL;
        bool same = n->list.count > 0;
        for (int i = 0; i < n->list.count; i++) {
            KpType *k = expr_type(t, n->list.items[i]->a), *v = expr_type(t, n->list.items[i]->b);
            if (!k || !v || (kt && (k != kt || v != vt))) same = false;
            if (!kt) { kt = k; vt = v; }
        }
        return same && kt && vt ? kp_types_derived(t->c, KP_TK_MAP, vt, kt, 0) : vm->t_map;
    }
    case KP_N_RECORD: {
        /* (.a = x, .b = y): the anonymous record type of those field names,
         * its fields untyped — the type code generation builds it with */
        int nf = n->list.count;
        for (int i = 0; i < nf; i++) expr_type(t, n->list.items[i]->a);
        if (nf > 256) return NULL;
        const char **names = kp_arena_alloc(&vm->meta_arena, sizeof(char *) * (size_t)(nf + 1), 8);
        if (!names) return NULL;
        for (int i = 0; i < nf; i++) {
            if (!n->list.items[i]->name) return NULL;
            names[i] = kp_compile_intern(t->c, n->list.items[i]->name);
            for (int j = 0; j < i; j++) if (names[j] == names[i]) return NULL;
        }
        return kp_types_anon(t->c, nf, names, NULL);
    }
    case KP_N_BINARY: {
        KpType *a = expr_type(t, n->a), *b = expr_type(t, n->b);
        if (n->op == KP_OP_RANGE) return NULL;
        if (KP_OP_IS_BITWISE(n->op)) check_bitwise(t, n, a, b);
        return kp_types_static_binop_type(t->c, n->op, a, b);
    }
    case KP_N_UNARY: {
        KpType *a = expr_type(t, n->a);
        switch (n->op) {
        case KP_OP_NEG: return kp_types_is_num(vm, a) ? a : NULL;
        case KP_OP_LNOT: check_bitwise(t, n, a, NULL); return vm->t_int;
        case KP_OP_NOT: return vm->t_bool;
        case KP_OP_REF:
        case KP_OP_MUTREF: return a ? kp_types_derived(t->c, KP_TK_REF, a, NULL, n->op == KP_OP_MUTREF ? 2 : 1) : NULL;
        default: return a;
        }
    }
    case KP_N_CALL: return check_call(t, n, NULL, NULL, NULL);
    case KP_N_PIPE: return check_pipe(t, n);
    case KP_N_FIELD: return field_of(t, n, expr_type(t, n->a));
    case KP_N_INDEX: {
        KpType *ct = expr_type(t, n->a);
        expr_type(t, n->b);
        if (ct && ct->kind == KP_TK_REF) ct = ct->elem;
        if (ct && (ct->kind == KP_TK_LIST || ct->kind == KP_TK_MAP)) {
            n->stype = ct; /* (for the ownership pass: moving out of an element) */
            return ct->elem;
        }
        if (ct == vm->t_string) return vm->t_int;
        return NULL;
    }
    case KP_N_GENERIC: return vm->t_type;
    default: return NULL;
    }
}

/* ------------------------------------------------------------ statements */

/* Is `init` the name of a `&T` parameter of the function being compiled?
 * Then `t := x` borrows: t holds the reference (its type is &T, as if
 * declared `t : &T = x`), and x keeps its value. */
bool kp_tc_names_ref_param(C *c, const KpNode *init) {
    if (!init || init->kind != KP_N_IDENT) return false;
    bool global;
    struct KpGlobal *g;
    Local *l = kp_resolve_lookup_var(c, kp_compile_intern(c, init->name), &global, &g);
    return l && l != (Local *)1 && !global && l->through == 2 && kp_resolve_local_index(c->fn, l) < (int)c->fn->p->nparams;
}

static void check_decl(Tc *t, KpNode *n) {
    KpType *want = n->a ? quiet_type(t, n->a) : NULL;
    if (n->b && n->b->kind == KP_N_FUNCLIT && !n->b->name) n->b->name = n->name; /* what it prints */
    KpType *have = NULL;
    if (n->b) {
        have = n->b->kind == KP_N_CALL ? check_call(t, n->b, want, NULL, NULL) : expr_type(t, n->b);
        if (want && have && fit(t->vm, want, have) == FIT_NO) {
            kp_compile_error(t->c, n->b, "'%s' is declared %s, but the value is %s", n->name, want->name, have->name);
            kp_diag_label(t->c->diags, "expected %s, found %s", want->name, have->name);
            kp_diag_span(t->c->diags, n->a->line, n->a->col, "'%s' is declared %s here", n->name, want->name);
        }
    }
    if (!want && have && have->kind != KP_TK_REF && kp_tc_names_ref_param(t->c, n->b))
        have = kp_types_derived(t->c, KP_TK_REF, have, NULL, 1);
    n->stype = want ? want : have;
    tc_push_var(t, kp_compile_intern(t->c, n->name), want ? want : have);
}

static void check_assign(Tc *t, KpNode *n) {
    KpNode *target = n->a;
    KpType *want = NULL;
    if (target->kind == KP_N_IDENT) {
        bool is_var;
        want = var_type(t, kp_compile_intern(t->c, target->name), &is_var);
    } else {
        want = expr_type(t, target);
    }
    KpType *have = n->b->kind == KP_N_CALL && n->op == KP_OP_NONE ? check_call(t, n->b, want, NULL, NULL) : expr_type(t, n->b);
    if (n->op == KP_OP_NONE && want && have && fit(t->vm, want, have) == FIT_NO) {
        if (target->kind == KP_N_IDENT)
            kp_compile_error(t->c, n->b, "'%s' is declared %s, but the value is %s", target->name, want->name, have->name);
        else if (target->kind == KP_N_FIELD)
            kp_compile_error(t->c, n->b, "field '%s' is %s, but the value is %s", target->name, want->name, have->name);
    }
}

static void check_stmt(Tc *t, KpNode *n);

/* A nested block (a branch, a loop's body, a bare block, a using or defer
 * body) is checked in the same walk, with the locals declared before it in
 * scope and `v1`, `v2` (a loop's variables) declared in it — unless it
 * declares types or functions, which are hoisted only when code generation
 * reaches it: then it is checked then (kp_tc_block), as a function body. */
static void check_nested(Tc *t, KpNode *b, const char *v1, KpType *t1, const char *v2) {
    if (!b) return;
    if (b->kind != KP_N_BLOCK) { check_stmt(t, b); return; }
    if (b->flags & KP_F_TYPED) return;
    for (int i = 0; i < b->list.count; i++)
        if (b->list.items[i] && (b->list.items[i]->kind == KP_N_FUNC || b->list.items[i]->kind == KP_N_TYPEDECL)) return;
    b->flags |= KP_F_TYPED;
    int mark = t->nvars;
    t->depth++;
    if (v1) tc_push_var(t, kp_compile_intern(t->c, v1), t1);
    if (v2) tc_push_var(t, kp_compile_intern(t->c, v2), NULL);
    for (int i = 0; i < b->list.count; i++) check_stmt(t, b->list.items[i]);
    t->nvars = mark;
    t->depth--;
}

/* Does n assign variable `name` (or a place rooted at it), borrow it
 * mutably or take it (`$&name`, `~&name`)?  Also true for a mutable
 * borrow or take of something that is not a named place (`$&_`), and for
 * a variable of that name declared inside (a cheap, conservative test:
 * a loop variable typed by its list's elements is given no type where
 * the body may give it a value of another type). */
static bool changes_name(KpNode *n, const char *name) {
    if (!n) return false;
    KpNode *target = NULL;
    if (n->kind == KP_N_ASSIGN) target = n->a;
    if (n->kind == KP_N_UNARY && (n->op == KP_OP_MUTREF || n->op == KP_OP_MOVE)) target = n->a;
    if (target) {
        KpNode *r = kp_resolve_root_ident(target);
        if (!r || !r->name || !strcmp(r->name, name)) return true;
    }
    if ((n->kind == KP_N_DECL || n->kind == KP_N_FOR) && n->name && !strcmp(n->name, name)) return true;
    if (changes_name(n->a, name) || changes_name(n->b, name) || changes_name(n->c, name)) return true;
    for (int i = 0; i < n->list.count; i++)
        if (changes_name(n->list.items[i], name)) return true;
    for (int i = 0; i < n->list2.count; i++)
        if (changes_name(n->list2.items[i], name)) return true;
    return false;
}

static void check_stmt(Tc *t, KpNode *n) {
    if (!n) return;
    switch (n->kind) {
    case KP_N_DECL: check_decl(t, n); break;
    case KP_N_ASSIGN: check_assign(t, n); break;
    case KP_N_EXPRSTMT: expr_type(t, n->a); break;
    case KP_N_IF:
        expr_type(t, n->a);
        check_nested(t, n->b, NULL, NULL, NULL);
        if (n->c) check_nested(t, n->c, NULL, NULL, NULL);
        break;
    case KP_N_WHILE: expr_type(t, n->a); check_nested(t, n->b, NULL, NULL, NULL); break;
    case KP_N_FOR:
        if (n->a && n->a->kind == KP_N_BINARY && n->a->op == KP_OP_RANGE) {
            expr_type(t, n->a->a);
            expr_type(t, n->a->b);
            check_nested(t, n->b, n->name, t->vm->t_int, NULL);
        } else {
            KpType *ct = expr_type(t, n->a && n->a->kind == KP_N_UNARY ? n->a->a : n->a);
            /* one variable over a list of a scalar type, not `$&xs`: the
             * variable holds each element's value (the VM's ITERNEXT
             * copies a plain element), so it has the element's type
             * (n->stype, for the ownership pass and code generation) */
            bool mut = n->a && n->a->kind == KP_N_UNARY && n->a->op == KP_OP_MUTREF;
            if (ct && ct->kind == KP_TK_REF) ct = ct->elem;
            KpType *et = !mut && !n->name2 && ct && ct->kind == KP_TK_LIST && kp_types_scalar(t->vm, ct->elem) &&
                                 !changes_name(n->b, n->name) ? ct->elem : NULL;
            n->stype = et;
            check_nested(t, n->b, n->name, et, n->name2);
        }
        break;
    case KP_N_RETURN: expr_type(t, n->a); break;
    case KP_N_DEFER:
        if (n->a && n->a->kind != KP_N_BLOCK) check_stmt(t, n->a);
        else check_nested(t, n->a, NULL, NULL, NULL);
        break;
    case KP_N_KEEP:
        for (int i = 0; i < n->list.count; i++) expr_type(t, n->list.items[i]);
        break;
    case KP_N_USING: expr_type(t, n->a); check_nested(t, n->b, NULL, NULL, NULL); break;
    case KP_N_TRY: /* the catch variable is an Error */
        check_nested(t, n->a, NULL, NULL, NULL);
        check_nested(t, n->b, n->name, t->vm->t_error, NULL);
        break;
    case KP_N_BLOCK: check_nested(t, n, NULL, NULL, NULL); break;
    case KP_N_TYPEDECL:
    case KP_N_FUNC:
    case KP_N_BREAK:
    case KP_N_CONTINUE:
        break;
    default: expr_type(t, n); break;
    }
}

/* Checks the statements of `block` (its declarations already hoisted). */
void kp_tc_block(C *c, KpNode *block) {
    if (!block || (block->flags & KP_F_TYPED)) return;
    block->flags |= KP_F_TYPED;
    Tc t;
    memset(&t, 0, sizeof t);
    t.c = c;
    t.vm = c->vm;
    for (int i = 0; i < block->list.count; i++) check_stmt(&t, block->list.items[i]);
    if (t.vars) kp_free(c->vm->meta, t.vars, sizeof(TcVar) * (size_t)t.cap, 8, NULL);
}

/* The static type of one expression in the current scope, as the pass
 * infers it (the REPL's :type, compile.c kp_compile_static_type); NULL
 * when it cannot tell. */
KpType *kp_tc_expr_type(C *c, KpNode *n) {
    Tc t;
    memset(&t, 0, sizeof t);
    t.c = c;
    t.vm = c->vm;
    KpType *ty = quiet_expr_type(&t, n);
    if (t.vars) kp_free(c->vm->meta, t.vars, sizeof(TcVar) * (size_t)t.cap, 8, NULL);
    return ty;
}
