/*
 * summary.c — function summaries: which parameters of a function can flow
 * into its result, and which can be stored into its `$&` parameters.
 *
 * Design.  The ownership checks at a call site need to know what the
 * callee does with the references it is given: `return wrap(&t)` is an
 * error (Rust's E0515) only when wrap's result can carry its `&T`, and
 * `fill($&h, &k)` stores a reference to k in h (Rust's E0597 when h
 * outlives k) only when fill's body stores its `&T` into its `$&`
 * parameter.  Rust asks the programmer to write lifetimes and elides the
 * obvious ones; Lean 4 infers which parameters are borrowed from the
 * bodies.  Keep infers, as Lean does: the summary of a function is read
 * from its body.
 *
 * A summary is a set of bits per overload (KpOverload.sum_ret, sum_into):
 * bit i of sum_ret says that parameter i, or a reference to (a part of)
 * its referent, can reach the result; bit i of sum_into[j] says it can be
 * stored into the value `$&` parameter j refers to.  The walk over a body
 * is flow-insensitive: every variable has the set of parameters its value
 * may carry, the union over all its assignments, and the walk repeats
 * until no set grows.  An expression carries:
 *   - `&p.x`, `$&p`, a place passed to a `&`/`$&` parameter: what the root
 *     variable p carries (a reference into p's referent);
 *   - a variable, field or element read as a value: what its root carries,
 *     unless its static type cannot hold a reference (an Int, a String, a
 *     record without reference fields);
 *   - a record, list or map literal, or a constructor: the union of its
 *     parts;
 *   - a call: per the callee's summary (every overload of the name that
 *     takes that many arguments, when it is not known which one runs);
 *     natives per their table flags (KP_BF_BORROWS: the result carries the
 *     first argument; KP_BF_STORES: the last is stored into the first).
 * A store `h.f = e` (or `h = e`, or a call storing into h) adds what e
 * carries to h, and to sum_into[h] when h is a `$&` parameter.
 *
 * The summaries of the functions of one block are computed together,
 * after their signatures are declared and before any body is compiled
 * (resolve.c's hoisting), so a call may name a function declared later
 * in the file.  Recursion, direct or mutual, is a fixpoint: every summary
 * of the block starts empty and the bodies are walked again until none
 * grows (the sets only grow, and are bounded, so it ends).
 *
 * What a summary does not see: a function whose result type is not
 * declared (or cannot hold a reference) has an empty sum_ret (a `$&`
 * parameter whose type is undeclared may receive anything); a call through a
 * function value carries the union of its arguments; aliasing (a local
 * holding a `$&` parameter, then stored through) is not followed.  What
 * the summaries miss, the run-time generation check of references still
 * catches where the reference is used.
 */
#include "compiler_int.h"

typedef uint64_t Mask;

static Mask bit(int i) { return i >= 0 && i < 64 ? (Mask)1 << i : 0; }

typedef struct SVar {
    const char *name;
    Mask m;
    KpType *type;
} SVar;

typedef struct S {
    C *c;
    KpOverload *ov;
    SVar *vars;
    int nvars, cap;
    Mask ret;
    Mask *into;      /* nparams entries */
    Mask hole;       /* what the piped value carries */
    KpType *hole_type;
    bool changed;
    int depth;
    /* vars by name, once there are many (a function with thousands of
     * locals): open addressing, the newest var of a name; ixn vars in */
    struct SIx { const char *name; int idx; } *ix;
    uint32_t ixcap;
    int ixn;
} S;

/* ------------------------------------------------------------ types */

/* Can a value of static type t hold a reference?  Unknown: yes. */
static bool may_hold(KpType *t, int depth) {
    if (!t || depth > 8) return true;
    switch (t->kind) {
    case KP_TK_REF:
    case KP_TK_ANY:
    case KP_TK_ABSTRACT:
    case KP_TK_OPAQUE: return true; /* a View or a Reader borrows its buffer */
    case KP_TK_LIST:
    case KP_TK_MAP: return may_hold(t->elem, depth + 1);
    case KP_TK_RECORD:
        if (!t->fnames && t->nfields == 0) return true; /* not filled in yet */
        for (uint32_t i = 0; i < t->nfields; i++)
            if (may_hold(t->ftypes[i], depth + 1)) return true;
        return false;
    default: return false;
    }
}

static uint32_t str_hash(const char *p) {
    uint32_t h = 2166136261u;
    while (*p) h = (h ^ (uint8_t)*p++) * 16777619u;
    return h;
}

static struct SIx *ix_slot(S *s, const char *name) {
    uint32_t m = s->ixcap - 1, i = str_hash(name) & m;
    while (s->ix[i].name && strcmp(s->ix[i].name, name)) i = (i + 1) & m;
    return &s->ix[i];
}

/* Brings the index up to date with the vars (false: none, scan). */
static bool ix_sync(S *s) {
    if (s->nvars < 32) return false;
    if ((uint32_t)s->nvars * 2 > s->ixcap) {
        uint32_t ncap = 64;
        while (ncap < (uint32_t)s->nvars * 4) ncap *= 2;
        struct SIx *n = kp_alloc(s->c->vm->meta, sizeof *n * ncap, 16, NULL);
        if (!n) return false;
        memset(n, 0, sizeof *n * ncap);
        if (s->ix) kp_free(s->c->vm->meta, s->ix, sizeof *n * s->ixcap, 16, NULL);
        s->ix = n;
        s->ixcap = ncap;
        s->ixn = 0;
    }
    for (; s->ixn < s->nvars; s->ixn++) {
        struct SIx *e = ix_slot(s, s->vars[s->ixn].name);
        e->name = s->vars[s->ixn].name;
        e->idx = s->ixn;
    }
    return true;
}

static SVar *var(S *s, const char *name) {
    if (!name) return NULL;
    if (ix_sync(s)) {
        struct SIx *e = ix_slot(s, name);
        return e->name ? &s->vars[e->idx] : NULL;
    }
    for (int i = s->nvars - 1; i >= 0; i--)
        if (!strcmp(s->vars[i].name, name)) return &s->vars[i];
    return NULL;
}

static void var_or(S *s, SVar *v, Mask m) {
    if ((v->m | m) != v->m) {
        v->m |= m;
        s->changed = true;
    }
}

static SVar *var_add(S *s, const char *name, Mask m, KpType *t) {
    if (!name) return NULL;
    SVar *v = var(s, name);
    if (!v) {
        IGROW(s->c, s->vars, s->nvars, s->cap);
        v = &s->vars[s->nvars++];
        v->name = name;
        v->m = 0;
        v->type = t;
        if (m) s->changed = true;
    } else if (v->type != t) {
        v->type = NULL; /* two declarations of one name: unknown */
    }
    var_or(s, v, m);
    return v;
}

/* A type expression's type, without reporting (code generation reports). */
static KpType *quiet_type(S *s, KpNode *n) {
    KpDiags *d = s->c->diags;
    int mark = d->count;
    KpType *ty = kp_types_resolve(s->c, n);
    if (d->count != mark && mark <= KP_MAX_DIAGS) {
        d->count = mark;
        return NULL;
    }
    return ty;
}

/* The static type of an expression, as far as this walk can tell. */
static KpType *stype(S *s, KpNode *n) {
    KpVM *vm = s->c->vm;
    if (!n || ++s->depth > 200) { if (n) s->depth--; return NULL; }
    KpType *t = NULL;
    switch (n->kind) {
    case KP_N_INT: t = vm->t_int; break;
    case KP_N_FLOAT: t = vm->t_float; break;
    case KP_N_STRING: t = vm->t_string; break;
    case KP_N_BOOL: t = vm->t_bool; break;
    case KP_N_UNIT: t = vm->t_unit; break;
    case KP_N_IDENT: { SVar *v = var(s, n->name); t = v ? v->type : NULL; break; }
    case KP_N_HOLE: t = s->hole_type; break;
    case KP_N_FIELD: {
        KpType *ct = stype(s, n->a);
        if (ct && ct->kind == KP_TK_REF) ct = ct->elem;
        if (ct && ct->kind == KP_TK_RECORD && ct->fnames)
            for (uint32_t i = 0; i < ct->nfields; i++)
                if (!strcmp(ct->fnames[i], n->name)) t = ct->ftypes[i];
        break;
    }
    case KP_N_INDEX: {
        KpType *ct = stype(s, n->a);
        if (ct && ct->kind == KP_TK_REF) ct = ct->elem;
        if (ct && (ct->kind == KP_TK_LIST || ct->kind == KP_TK_MAP)) t = ct->elem;
        else if (ct == vm->t_string) t = vm->t_int;
        break;
    }
    case KP_N_BINARY:
        if (n->op != KP_OP_RANGE) t = kp_types_static_binop_type(s->c, n->op, stype(s, n->a), stype(s, n->b));
        break;
    case KP_N_UNARY:
        if (n->op == KP_OP_NOT) t = vm->t_bool;
        else if (n->op == KP_OP_LNOT) t = vm->t_int;
        else if (n->op == KP_OP_NEG || n->op == KP_OP_MOVE) t = stype(s, n->a);
        break;
    case KP_N_CALL:
        if (n->a && n->a->kind == KP_N_IDENT && !var(s, n->a->name)) {
            const char *name = kp_compile_intern(s->c, n->a->name);
            TypeBind *tb = kp_resolve_find_type(s->c, name);
            if (tb) { t = tb->generic ? NULL : tb->type; break; }
            KpFunc *f = kp_resolve_find_func(s->c, name);
            for (uint32_t i = 0; f && i < f->n; i++) {
                if (i == 0) t = f->ovs[i]->ret;
                else if (t != f->ovs[i]->ret) { t = NULL; break; }
            }
        }
        break;
    default: break;
    }
    s->depth--;
    return t;
}

/* m, unless n's static type cannot hold a reference. */
static Mask filt(S *s, KpNode *n, Mask m) {
    if (!m) return 0;
    KpType *t = stype(s, n);
    return t && !may_hold(t, 0) ? 0 : m;
}

/* ------------------------------------------------------- the summaries */

/* The summary of ov, whatever made it: bit i of the result's flows. */
static Mask ret_mask(const KpOverload *ov) {
    if (ov->sum_known) return ov->sum_ret;
    if (ov->native) return ov->result_borrows ? 1 : 0;
    if (ov->host_fn || !ov->ret || !may_hold(ov->ret, 0)) return 0;
    Mask m = 0; /* not read yet (declared in a block not hoisted yet): as Rust's elision */
    for (int i = 0; i < ov->nparams; i++)
        if (ov->params[i].mode != KP_PM_VALUE) m |= bit(i);
    return m;
}

/* The parameters that can be stored into $& parameter j. */
static Mask into_mask(const KpOverload *ov, int j) {
    if (j < 0 || j >= ov->nparams) return 0;
    if (ov->sum_known) return ov->sum_into ? ov->sum_into[j] : 0;
    if (ov->native && ov->stores_arg && j == 0 && ov->nparams >= 2) return bit(ov->nparams - 1);
    return 0;
}

bool kp_sum_ret_flows(const KpOverload *ov, int i) {
    if (i < 0 || i >= ov->nparams || ov->params[i].mode == KP_PM_VALUE) return false;
    return (ret_mask(ov) & bit(i)) != 0;
}

/* ------------------------------------------------------------ the walk */

static Mask expr(S *s, KpNode *n);

/* What a reference to the place n carries: its root variable's set (the
 * index expressions on the way are walked for their calls). */
static Mask ref_mask(S *s, KpNode *n) {
    if (!n) return 0;
    if (!kp_resolve_is_place(n)) return expr(s, n);
    KpNode *p = n;
    while (p->kind == KP_N_FIELD || p->kind == KP_N_INDEX) {
        if (p->kind == KP_N_INDEX) expr(s, p->b);
        p = p->a;
    }
    if (p->kind == KP_N_HOLE) return s->hole;
    SVar *v = var(s, p->name);
    return v ? v->m : 0;
}

/* `target = value`, or a call storing into target: value carries m. */
static void store(S *s, KpNode *target, Mask m) {
    if (!target || !m) return;
    if (target->kind == KP_N_UNARY && (target->op == KP_OP_REF || target->op == KP_OP_MUTREF)) target = target->a;
    KpNode *root = kp_resolve_root_ident(target);
    if (!root) return;
    KpType *tt = stype(s, target);
    if (tt && !may_hold(tt, 0)) return;
    SVar *v = var(s, root->name);
    if (!v) return;
    var_or(s, v, m);
    int p = (int)(v - s->vars);
    if (p < s->ov->nparams && s->ov->params[p].mode == KP_PM_MUTREF) s->into[p] |= m;
}

typedef struct SArg {
    KpNode *node;     /* the argument expression (NULL: the piped value) */
    const char *name; /* a named argument's name */
    Mask v, r;        /* carried as a value, and as a reference to its place */
} SArg;

static SArg arg_of(S *s, KpNode *a) {
    SArg g = {a, NULL, 0, 0};
    if (a->kind == KP_N_FIELDINIT) {
        g.name = a->name;
        a = a->a;
        g.node = a;
    }
    if (a->kind == KP_N_UNARY && (a->op == KP_OP_REF || a->op == KP_OP_MUTREF)) {
        g.v = g.r = ref_mask(s, a->a);
    } else if (kp_resolve_is_place(a)) {
        g.r = ref_mask(s, a);
        g.v = filt(s, a, g.r);
    } else {
        g.v = g.r = expr(s, a);
    }
    return g;
}

/* The parameter argument k binds to in ov, or -1. */
static int param_of(const KpOverload *ov, const SArg *args, int k, int npos) {
    if (k < npos) {
        if (k < ov->nparams) return k;
        return ov->variadic && ov->nparams ? ov->nparams - 1 : -1;
    }
    for (int i = 0; i < ov->nparams; i++)
        if (ov->params[i].name && !strcmp(ov->params[i].name, args[k].name)) return i;
    return -1;
}

/* Can ov take these arguments (their number)? */
static bool arity_fits(const KpOverload *ov, int nargs) {
    int req = 0;
    for (int i = 0; i < ov->nparams; i++)
        if (ov->params[i].def.tag == KP_T_UNSET) req = i + 1;
    if (nargs < req) return false;
    return nargs <= ov->nparams || ov->variadic;
}

static Mask apply(S *s, const KpOverload *ov, SArg *args, int nargs, int npos) {
    Mask am[64];
    int where[64];
    for (int k = 0; k < nargs; k++) where[k] = param_of(ov, args, k, npos);
    for (int i = 0; i < ov->nparams && i < 64; i++) am[i] = 0;
    for (int k = 0; k < nargs; k++) {
        int i = where[k];
        if (i < 0 || i >= 64) continue;
        am[i] |= ov->params[i].mode != KP_PM_VALUE ? args[k].r : args[k].v;
    }
    Mask res = 0, rm = ret_mask(ov);
    for (int i = 0; i < ov->nparams && i < 64; i++)
        if (rm & bit(i)) res |= am[i];
    for (int k = 0; k < nargs; k++) {
        int j = where[k];
        Mask im = into_mask(ov, j);
        if (!im || !args[k].node) continue;
        Mask in = 0;
        for (int i = 0; i < ov->nparams && i < 64; i++)
            if (im & bit(i)) in |= am[i];
        store(s, args[k].node, in);
    }
    return res;
}

/* A call (with the piped value first when `piped`). */
static Mask call(S *s, KpNode *n, bool piped, Mask pv, Mask pr) {
    SArg args[64];
    int na = 0, npos = 0;
    if (piped) args[na++] = (SArg){NULL, NULL, pv, pr};
    for (int pass = 0; pass < 2; pass++) {
        for (int i = 0; i < n->list.count && na < 64; i++) {
            KpNode *a = n->list.items[i];
            if ((a->kind == KP_N_FIELDINIT) != (pass == 1)) continue;
            args[na++] = arg_of(s, a);
        }
        if (pass == 0) npos = na;
    }
    Mask all = 0;
    for (int k = 0; k < na; k++) all |= args[k].v;
    KpNode *callee = n->a;
    if (!callee || callee->kind != KP_N_IDENT) {
        if (callee && callee->kind != KP_N_GENERIC) all |= expr(s, callee);
        return all; /* a constructor of a generic type, or a function value */
    }
    if (var(s, callee->name)) return all | var(s, callee->name)->m;
    const char *name = kp_compile_intern(s->c, callee->name);
    TypeBind *tb = kp_resolve_find_type(s->c, name);
    if (tb) return all; /* a constructor: the record holds its fields */
    KpFunc *f = kp_resolve_find_func(s->c, name);
    KpType *ctor = NULL;
    if (!f && (ctor = kp_types_builtin(s->c, name)) && (ctor->kind == KP_TK_OPAQUE || ctor == s->c->vm->t_heap))
        f = kp_types_ctor_func(s->c); /* T(&buf): an init returning T */
    if (!f || f->n == 0) return f ? 0 : all;
    Mask res = 0;
    for (uint32_t i = 0; i < f->n; i++) {
        KpOverload *ov = f->ovs[i];
        if (ctor && ov->ret != ctor) continue;
        if (!arity_fits(ov, na)) continue;
        res |= apply(s, ov, args, na, npos);
    }
    return res;
}

static Mask pipe(S *s, KpNode *n) {
    KpNode *lhs = n->a, *rhs = n->b;
    Mask lr = ref_mask(s, lhs);
    Mask lv = kp_resolve_is_place(lhs) ? filt(s, lhs, lr) : lr;
    KpType *lt = stype(s, lhs);
    Mask save = s->hole;
    KpType *save_t = s->hole_type;
    s->hole = lr;
    s->hole_type = lt;
    Mask r = 0;
    if (!rhs) r = lv;
    else if (rhs->kind == KP_N_KEEP) r = lv;
    else if (rhs->kind == KP_N_CALL) r = kp_resolve_has_hole(rhs) ? call(s, rhs, false, 0, 0) : call(s, rhs, true, lv, lr);
    else if (rhs->kind == KP_N_IDENT) {
        KpNode fake = *rhs;
        fake.kind = KP_N_CALL;
        fake.a = rhs;
        fake.list.count = 0;
        fake.list.items = NULL;
        r = call(s, &fake, true, lv, lr);
    } else {
        r = lv | expr(s, rhs);
    }
    s->hole = save;
    s->hole_type = save_t;
    return r;
}

/* What the value of expression n carries (walking its calls). */
static Mask expr(S *s, KpNode *n) {
    if (!n) return 0;
    if (++s->depth > 200) { s->depth--; return 0; }
    Mask m = 0;
    switch (n->kind) {
    case KP_N_IDENT: {
        SVar *v = var(s, n->name);
        m = v ? filt(s, n, v->m) : 0;
        break;
    }
    case KP_N_HOLE: m = filt(s, n, s->hole); break;
    case KP_N_FIELD:
    case KP_N_INDEX:
        if (kp_resolve_is_place(n)) m = filt(s, n, ref_mask(s, n));
        else {
            m = expr(s, n->a);
            if (n->kind == KP_N_INDEX) expr(s, n->b);
            m = filt(s, n, m);
        }
        break;
    case KP_N_UNARY:
        if (n->op == KP_OP_REF || n->op == KP_OP_MUTREF) m = ref_mask(s, n->a);
        else if (n->op == KP_OP_MOVE) m = expr(s, n->a);
        else expr(s, n->a);
        break;
    case KP_N_BINARY:
        expr(s, n->a);
        expr(s, n->b);
        break;
    case KP_N_LIST:
        for (int i = 0; i < n->list.count; i++) m |= expr(s, n->list.items[i]);
        break;
    case KP_N_MAP:
        for (int i = 0; i < n->list.count; i++) {
            KpNode *p = n->list.items[i];
            m |= expr(s, p->a) | expr(s, p->b);
        }
        break;
    case KP_N_RECORD:
        for (int i = 0; i < n->list.count; i++) m |= expr(s, n->list.items[i]->a);
        break;
    case KP_N_CALL: m = call(s, n, false, 0, 0); break;
    case KP_N_PIPE: m = pipe(s, n); break;
    default: break;
    }
    s->depth--;
    return m;
}

static void stmt(S *s, KpNode *n) {
    if (!n || s->depth > 200) return;
    s->depth++;
    switch (n->kind) {
    case KP_N_BLOCK:
        for (int i = 0; i < n->list.count; i++) stmt(s, n->list.items[i]);
        break;
    case KP_N_DECL: {
        Mask m = n->b ? expr(s, n->b) : 0;
        KpType *t = n->a ? quiet_type(s, n->a) : n->b ? stype(s, n->b) : NULL;
        if (t && !may_hold(t, 0)) m = 0;
        var_add(s, n->name, m, t);
        break;
    }
    case KP_N_ASSIGN: {
        Mask m = expr(s, n->b);
        if (n->a && n->a->kind == KP_N_INDEX) expr(s, n->a->b);
        if (n->op == KP_OP_NONE) store(s, n->a, m);
        break;
    }
    case KP_N_EXPRSTMT: expr(s, n->a); break;
    case KP_N_IF:
        expr(s, n->a);
        stmt(s, n->b);
        stmt(s, n->c);
        break;
    case KP_N_WHILE:
        expr(s, n->a);
        stmt(s, n->b);
        break;
    case KP_N_FOR: {
        Mask m = 0;
        KpNode *it = n->a;
        if (it && it->kind == KP_N_BINARY && it->op == KP_OP_RANGE) {
            expr(s, it->a);
            expr(s, it->b);
        } else if (it && it->kind == KP_N_UNARY && (it->op == KP_OP_REF || it->op == KP_OP_MUTREF)) {
            m = ref_mask(s, it->a);
        } else if (it) {
            m = ref_mask(s, it);
        }
        var_add(s, n->name, m, NULL);
        if (n->name2) var_add(s, n->name2, m, NULL);
        stmt(s, n->b);
        break;
    }
    case KP_N_RETURN: s->ret |= expr(s, n->a); break;
    case KP_N_DEFER: stmt(s, n->a); break;
    case KP_N_USING:
        expr(s, n->a);
        stmt(s, n->b);
        break;
    case KP_N_TRY:
        stmt(s, n->a);
        var_add(s, n->name, 0, s->c->vm->t_error);
        stmt(s, n->b);
        break;
    default: break; /* nested functions and types, break, continue, keep */
    }
    s->depth--;
}

/* Reads the body of one function: its summary as of the summaries of the
 * functions it calls now.  Returns whether it grew. */
static bool summarize(C *c, KpNode *fn, KpOverload *ov, Mask *into) {
    /* no parameter: nothing can flow anywhere, and the body need not be
     * walked (the walk's variable lookups are linear) */
    if (ov->nparams == 0) return false;
    S s;
    memset(&s, 0, sizeof s);
    s.c = c;
    s.ov = ov;
    s.into = into;
    int np = ov->nparams;
    for (int i = 0; i < np; i++) {
        const char *pname = ov->params[i].name ? ov->params[i].name : "_";
        IGROW(c, s.vars, s.nvars, s.cap);
        KpType *pt = ov->params[i].type;
        if (pt && ov->params[i].mode != KP_PM_VALUE) /* read as a value, it is the reference */
            pt = kp_types_derived(c, KP_TK_REF, pt, NULL, ov->params[i].mode == KP_PM_MUTREF ? 2 : 1);
        s.vars[s.nvars++] = (SVar){pname, bit(i), pt};
    }
    int nouts = 0;
    if (fn->a && fn->a->kind == KP_N_OUTPUTS) {
        for (int i = 0; i < fn->a->list.count; i++) {
            KpNode *o = fn->a->list.items[i];
            IGROW(c, s.vars, s.nvars, s.cap);
            s.vars[s.nvars++] = (SVar){o->name ? o->name : "_", 0, o->a ? quiet_type(&s, o->a) : NULL};
            nouts++;
        }
    }
    for (int i = 0; i < np; i++) into[i] = 0;
    for (int guard = 0; guard < 64; guard++) {
        s.changed = false;
        stmt(&s, fn->b);
        if (!s.changed) break;
    }
    for (int i = 0; i < nouts; i++) s.ret |= s.vars[np + i].m;
    Mask ret = s.ret;
    if (!ov->ret || !may_hold(ov->ret, 0)) ret = 0;
    for (int j = 0; j < np; j++) {
        KpType *pt = ov->params[j].type;
        if (ov->params[j].mode != KP_PM_MUTREF || (pt && !may_hold(pt, 0))) into[j] = 0; /* untyped: may hold one */
        into[j] &= ~bit(j);
    }
    if (s.vars) kp_free(c->vm->meta, s.vars, sizeof(SVar) * (size_t)s.cap, 16, NULL);
    if (s.ix) kp_free(c->vm->meta, s.ix, sizeof *s.ix * s.ixcap, 16, NULL);
    bool grew = ret != ov->sum_ret;
    ov->sum_ret = ret;
    for (int j = 0; j < np; j++) {
        if (into[j] != ov->sum_into[j]) grew = true;
        ov->sum_into[j] = into[j];
    }
    return grew;
}

/* Computes the summaries of the functions declared in one block: the
 * FUNC nodes of `stmts`, whose overloads are ovs[0..novs) in order. */
void kp_sum_block(C *c, KpNodeList *stmts, KpOverload **ovs, int novs) {
    KpNode **fns = NULL;
    int nfns = 0, cap = 0, k = 0, maxp = 0;
    for (int i = 0; i < stmts->count && k < novs; i++) {
        KpNode *n = stmts->items[i];
        if (!n || n->kind != KP_N_FUNC || !n->b) continue;
        KpOverload *ov = ovs[k++];
        IGROW(c, fns, nfns, cap);
        fns[nfns++] = n;
        if (!ov) continue;
        ov->sum_known = 1;
        ov->sum_ret = 0;
        ov->sum_into = ov->nparams ? kp_arena_alloc(&c->vm->meta_arena, sizeof(Mask) * ov->nparams, 8) : NULL;
        if (ov->nparams && !ov->sum_into) ov->sum_known = 0;
        else if (ov->nparams) memset(ov->sum_into, 0, sizeof(Mask) * ov->nparams);
        if (ov->nparams > maxp) maxp = ov->nparams;
    }
    Mask *into = maxp ? kp_arena_alloc(&c->vm->meta_arena, sizeof(Mask) * (size_t)maxp, 8) : NULL;
    for (int round = 0; round < 256; round++) {
        bool grew = false;
        for (int i = 0; i < nfns; i++) {
            KpOverload *ov = ovs[i];
            if (!ov || !ov->sum_known || (ov->nparams && !into)) continue;
            if (summarize(c, fns[i], ov, into)) grew = true;
        }
        if (!grew) break;
    }
    kp_parcheck_block(c, fns, ovs, nfns);
    if (fns) kp_free(c->vm->meta, fns, sizeof(KpNode *) * (size_t)cap, 16, NULL);
}

/* ------------------------------------------------------- at call sites */

/* The overloads whose summary applies at this call: the one bound, or
 * the only one; with several, only the natives that store (push), as
 * every overload of them stores the same way. */
static int call_overloads(C *c, KpNode *n, KpOverload **out, int max) {
    if (n->bound) { out[0] = n->bound; return 1; }
    KpFunc *f = kp_resolve_find_func(c, kp_compile_intern(c, n->a->name));
    if (!f || f->n == 0) return 0;
    if (f->n == 1) { out[0] = f->ovs[0]; return 1; }
    int k = 0;
    for (uint32_t i = 0; i < f->n && k < max; i++)
        if (f->ovs[i]->native && f->ovs[i]->stores_arg && f->ovs[i]->nparams == n->list.count) out[k++] = f->ovs[i];
    return k;
}

/* A call that may store a reference into a `$&` argument (push(xs, &x),
 * or a function whose summary says so: fill($&h, &k)): the reference may
 * not outlive its referent — the checks of `h.f = &k` (ownpass.c, whose
 * walk calls this). */
void kp_sum_check_call(C *c, KpNode *n, KpNode *pipe_first) {
    if (!n->a || n->a->kind != KP_N_IDENT || pipe_first || n->list.count < 2) return;
    bool global;
    struct KpGlobal *g;
    if (kp_resolve_lookup_var(c, kp_compile_intern(c, n->a->name), &global, &g) || global) return;
    KpOverload *ovs[8];
    int novs = call_overloads(c, n, ovs, 8);
    for (int o = 0; o < novs; o++) {
        KpOverload *ov = ovs[o];
        for (int j = 0; j < n->list.count && j < ov->nparams; j++) {
            Mask im = into_mask(ov, j);
            KpNode *target = n->list.items[j];
            if (!im || target->kind == KP_N_FIELDINIT) continue;
            if (target->kind == KP_N_UNARY && (target->op == KP_OP_REF || target->op == KP_OP_MUTREF)) target = target->a;
            for (int i = 0; i < n->list.count && i < ov->nparams; i++) {
                if (!(im & bit(i))) continue;
                KpNode *value = n->list.items[i];
                if (value->kind == KP_N_FIELDINIT) continue;
                if (!(value->kind == KP_N_UNARY && (value->op == KP_OP_REF || value->op == KP_OP_MUTREF)) &&
                    ov->params[i].mode != KP_PM_VALUE && kp_resolve_is_place(value) && kp_resolve_root_ident(value)) {
                    /* a place passed to a & parameter is borrowed: as `&value` */
                    KpNode *r = kp_ast_new(&c->vm->meta_arena, KP_N_UNARY, value->line, value->col);
                    if (!r) continue;
                    r->op = ov->params[i].mode == KP_PM_MUTREF ? KP_OP_MUTREF : KP_OP_REF;
                    r->a = value;
                    value = r;
                }
                int before = c->diags->count;
                kp_own_check_ref_escape(c, target, value, n);
                if (c->diags->count > before && ov->sum_known) {
                    const char *pi = ov->params[i].name ? ov->params[i].name : "_";
                    const char *pj = ov->params[j].name ? ov->params[j].name : "_";
                    kp_diag_note(c->diags, "note: '%s' (line %u) can store its parameter '%s' into its $& parameter '%s'",
                                 ov->func->name, ov->line, pi, pj);
                    return;
                }
                if (c->diags->count > before) return;
            }
        }
    }
}

