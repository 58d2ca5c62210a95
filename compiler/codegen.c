/*
 * codegen.c — register bytecode generation (vm/opcodes.h): the emission
 * primitives, constants, registers, and the code of expressions, calls and
 * pipes.
 *
 * Design.  One pass over each function's AST emits its code.  Registers
 * are allocated as a stack (`Fn.freereg`): a local takes the next register
 * for the rest of its scope, a temporary is freed as soon as the
 * expression that needed it is done (reg_free_to).  An expression is
 * compiled into a destination register `dst` with a mode: M_VALUE when it
 * is consumed (a movable value moves), M_BORROW when it is only read (a
 * variable is passed as a reference to its place).  Arithmetic takes its
 * operands where they already are — a constant (KP_RK_CONST), a local's
 * register — and only copies into a temporary what must be computed.
 *
 * A call puts the callee at R(base) and its arguments above it; places are
 * passed as implicit borrows and the VM selects the overload by the
 * arguments' run-time types.  A pipe `a | f(_)` binds `_` to the left
 * value (a place, or a temporary dropped after the right side unless it
 * moved on).
 */
#include "compiler_int.h"
#include "../stdlib/builtins.h"
#include "../vm/binary.h"

static KpType *compile_pipe(C *c, KpNode *n, uint32_t dst);

void kp_cg_at(C *c, KpNode *n) {
    if (n && n->line) {
        c->fn->line = n->line;
        c->fn->col = n->col;
    }
}

uint32_t kp_cg_pc(C *c) { return c->fn->p->ncode; }

uint32_t kp_cg_emit(C *c, uint8_t op, uint32_t a, uint32_t b, uint32_t cc, uint8_t d) {
    Fn *f = c->fn;
    KpProto *p = f->p;
    uint32_t cap = f->cap_code;
    GROW(c, p->code, &f->cap_code, p->ncode);
    GROW(c, p->lines, &cap, p->ncode);
    if (!p->code || !p->lines) return 0;
    if (c->own) kp_own_record(c, op, a, b, cc, d);
    KpInstr *i = &p->code[p->ncode];
    i->op = op;
    i->d = d;
    i->a = (uint16_t)a;
    i->b = (uint16_t)b;
    i->c = (uint16_t)cc;
    p->lines[p->ncode] = (KpLineInfo){f->line, f->col};
    return p->ncode++;
}

uint32_t kp_cg_emit_sbx(C *c, uint8_t op, uint32_t a, int32_t sbx) {
    uint32_t i = kp_cg_emit(c, op, a, 0, 0, 0);
    c->fn->p->code[i].sbx = sbx;
    return i;
}

uint32_t kp_cg_fused_begin(C *c, KpNode *at, uint8_t op, KpNode *index, Operand *idx) {
    /* an index of Int arithmetic on Int locals (`c - r + 7`) is computed
     * before the field is read, so that the two reads are next to each
     * other (it calls nothing and moves nothing; only which of two errors
     * is reported first could change) */
    if (!kp_cg_pure_int(c, index, 0)) *idx = kp_cg_operand(c, index);
    kp_cg_at(c, at);
    return kp_cg_emit_quiet(c, op, 0, 0, 0, 0);
}

void kp_cg_fused_done(C *c, uint32_t fx, uint8_t second) {
    KpInstr *code = c->fn->p->code;
    if (!code) return;
    uint32_t start = fx + 1, len = kp_cg_pc(c) - start;
    const KpInstr *g = &code[start], *x = &code[start + 1];
    /* (GETINDEX reads its container from b, SETINDEX from a) */
    if (len >= 2 && len <= 0xffff && g->op == KP_BC_GETFIELD && x->op == second &&
        (second == KP_BC_GETINDEX ? x->b : x->a) == g->a)
        code[fx].a = (uint16_t)len;
    else
        code[fx].op = KP_BC_NOP;
}

void kp_cg_take(C *c, uint32_t r) {
    const KpProto *p = c->fn->p;
    if (p->ncode) {
        const KpInstr *last = &p->code[p->ncode - 1];
        if ((last->op == KP_BC_GETFIELD || last->op == KP_BC_GETINDEX) && last->a == r && (last->d & 3) == 1) return;
    }
    kp_cg_emit(c, KP_BC_TAKE, r, 0, 0, 0);
}

Local *kp_cg_reg_local(C *c, KpNode *x) {
    if (x->kind != KP_N_IDENT) return NULL;
    bool global;
    struct KpGlobal *g;
    Local *l = kp_resolve_lookup_var(c, kp_compile_intern(c, x->name), &global, &g);
    return l && l != (Local *)1 && !global ? l : NULL;
}

bool kp_cg_pure_int(C *c, KpNode *x, int depth) {
    if (x->kind == KP_N_INT) return true;
    if (x->kind == KP_N_IDENT) {
        Local *l = kp_cg_reg_local(c, x);
        return l && !l->through && l->type == c->vm->t_int;
    }
    return depth > 0 && x->kind == KP_N_BINARY && (x->op == KP_OP_ADD || x->op == KP_OP_SUB) &&
           kp_cg_pure_int(c, x->a, depth - 1) && kp_cg_pure_int(c, x->b, depth - 1);
}

uint32_t kp_cg_getg(C *c, uint32_t dst, const struct KpGlobal *g, uint8_t d) {
    uint32_t gi = (uint32_t)(g - c->vm->globals);
    return kp_cg_emit(c, KP_BC_GETG, dst, gi & 0xffff, gi >> 16, d);
}

uint32_t kp_cg_setg(C *c, const struct KpGlobal *g, uint32_t src, uint8_t d) {
    uint32_t gi = (uint32_t)(g - c->vm->globals);
    return kp_cg_emit(c, KP_BC_SETG, src, gi & 0xffff, gi >> 16, d);
}

/* Patches jump `at` to land on `target`. */
void kp_cg_patch(C *c, uint32_t j, uint32_t target) {
    KpInstr *i = &c->fn->p->code[j];
    int32_t off = (int32_t)target - (int32_t)(j + 1);
    switch (i->op) {
    case KP_BC_JLT: case KP_BC_JLE: case KP_BC_JEQ: case KP_BC_JNE:
    case KP_BC_JLTI: case KP_BC_JLEI: case KP_BC_JGTI: case KP_BC_JGEI: case KP_BC_JFUNIT:
        if (off < -(1 << 23) || off >= (1 << 23)) {
            kp_compile_error(c, NULL, "function too large (a jump spans over 8 million instructions)");
            return;
        }
        i->c = (uint16_t)(off & 0xffff);
        i->d = (uint8_t)((off >> 16) & 0xff);
        break;
    default:
        i->sbx = off;
    }
}

uint32_t kp_cg_add_k(C *c, KpValue v) {
    KpProto *p = c->fn->p;
    for (uint32_t i = 0; i < p->nk; i++) {
        KpValue k = p->k[i];
        if (k.tag == v.tag && k.i == v.i) return i;
        if (k.tag == KP_T_STR && v.tag == KP_T_STR) {
            KpString *x = k.p, *y = v.p;
            if (x->len == y->len && memcmp(x->data, y->data, x->len) == 0) return i;
        }
    }
    GROW(c, p->k, &c->fn->cap_k, p->nk);
    if (p->nk >= 0x7fff) {
        kp_compile_error(c, NULL, "too many constants in one function (32767 at most)");
        return 0;
    }
    p->k[p->nk] = v;
    return p->nk++;
}

uint32_t kp_cg_packed_k(C *c, const KpPacked *pk) {
    KpVM *vm = c->vm;
    KpList *l = kp_obj_new(vm, vm->meta, KP_T_LIST, sizeof(KpList));
    if (!l) return 0; /* (a refused host allocation jumps out of the compiler) */
    l->h.flags |= KP_OF_IMMORTAL;
    l->h.alloc = vm->meta;
    l->items = kp_alloc(vm->meta, sizeof(KpValue) * pk->count, 16, NULL);
    if (!l->items) return 0;
    for (const KpPackedChunk *ch = pk->first; ch; ch = ch->next)
        for (uint32_t j = 0; j < ch->n; j++)
            l->items[l->len++] = pk->kind == KP_N_INT ? kp_int(ch->v[j].i) : kp_float(ch->v[j].f);
    l->cap = l->len;
    return kp_cg_add_k(c, kp_ptr(KP_T_LIST, l));
}

uint32_t kp_cg_k_name(C *c, const char *name) {
    KpValue k = kp_ptr(KP_T_NAME, (void *)kp_intern(c->vm, name, strlen(name)));
    k.aux = ~(uint32_t)0; /* the field cache (vm.c field_cached): empty */
    return kp_cg_add_k(c, k);
}

uint32_t kp_cg_reg_alloc(C *c) {
    Fn *f = c->fn;
    uint32_t r = f->freereg++;
    if (f->freereg > 30000) {
        kp_compile_error(c, NULL, "function too large (more than 30000 registers)");
        f->freereg = 30000;
        return 29999;
    }
    if (f->freereg > f->p->nregs) f->p->nregs = f->freereg;
    return r;
}

void kp_cg_reg_free_to(C *c, uint32_t mark) { c->fn->freereg = mark; }

static void emit_loadk(C *c, uint32_t dst, KpValue v) {
    uint32_t k = kp_cg_add_k(c, v);
    kp_cg_emit_sbx(c, KP_BC_LOADK, dst, (int32_t)k);
}

/* An operand for an arithmetic instruction: a constant, a local's register
 * (no copy), or a temporary. */
Operand kp_cg_operand(C *c, KpNode *n) {
    KpVM *vm = c->vm;
    Operand o = {0, false, NULL, false};
    if (n->kind == KP_N_INT) {
        o.r = kp_cg_add_k(c, kp_int(n->ival)) | KP_RK_CONST;
        o.type = vm->t_int;
        return o;
    }
    if (n->kind == KP_N_FLOAT) {
        o.r = kp_cg_add_k(c, kp_float(n->fval)) | KP_RK_CONST;
        o.type = vm->t_float;
        return o;
    }
    if (n->kind == KP_N_UNIT) { /* `x == ()`: a constant operand, no LOADUNIT */
        o.r = kp_cg_add_k(c, kp_unit()) | KP_RK_CONST;
        o.type = vm->t_unit;
        return o;
    }
    KpValue folded;
    if ((n->kind == KP_N_BINARY || n->kind == KP_N_UNARY) && kp_types_fold_number(n, &folded)) {
        o.r = kp_cg_add_k(c, folded) | KP_RK_CONST;
        o.type = folded.tag == KP_T_INT ? vm->t_int : vm->t_float;
        return o;
    }
    if (n->kind == KP_N_IDENT) {
        bool global;
        struct KpGlobal *g;
        Local *l = kp_resolve_lookup_var(c, kp_compile_intern(c, n->name), &global, &g);
        if (l && l != (Local *)1 && !global) {
            o.r = l->reg;
            o.type = l->type;
            return o;
        }
        if (global && g && !l && kp_types_scalar(vm, g->type) && !(c->fn->is_main && c->func_depth == 0 && g->pending)) {
            /* a top-level variable of a scalar type: its value is read
             * (GETG d=0 copies it; nothing to drop), not a reference to
             * it made */
            o.r = kp_cg_reg_alloc(c);
            o.temp = true;
            kp_cg_at(c, n);
            kp_cg_getg(c, o.r, g, 0);
            o.type = g->type;
            return o;
        }
    }
    o.r = kp_cg_reg_alloc(c);
    o.temp = true;
    o.type = kp_cg_expr(c, n, o.r, M_BORROW);
    return o;
}

void kp_cg_free_operand(C *c, Operand *o, bool may_own) {
    if (!o->temp || o->borrowed) return;
    if (may_own && !kp_types_scalar(c->vm, o->type)) {
        kp_own_hint(c, NULL, o->type, "a temporary");
        kp_cg_emit(c, KP_BC_DROP, o->r, 1, 0, 0);
    }
}

/* The type a field or element read sees through: t without its
 * references (`&T`, `$&T` are read through to T). */
static KpType *through_ref_types(KpType *t) {
    for (int guard = 0; t && t->kind == KP_TK_REF && guard < 8; guard++) t = t->elem;
    return t;
}

/* The static type of field `name` (an interned name) of a value of type
 * ct, read through references; NULL when ct is no record type or has no
 * such field (the types pass reports an unknown field). */
static KpType *field_static_type(KpType *ct, const char *name) {
    ct = through_ref_types(ct);
    if (!ct || ct->kind != KP_TK_RECORD) return NULL;
    for (uint32_t i = 0; i < ct->nfields; i++)
        if (ct->fnames[i] == name) return ct->ftypes[i];
    return NULL;
}

/* The static type of an element of a value of type ct (a list or map,
 * read through references), or NULL. */
static KpType *elem_static_type(KpType *ct) {
    ct = through_ref_types(ct);
    return ct && (ct->kind == KP_TK_LIST || ct->kind == KP_TK_MAP) ? ct->elem : NULL;
}

/* The container of a field or element read: a variable's own register, or
 * a temporary holding the container (borrowed when it is a place). */
static Operand container_operand(C *c, KpNode *n) {
    if (n->kind == KP_N_IDENT) return kp_cg_operand(c, n);
    Operand o = {kp_cg_reg_alloc(c), true, NULL, false};
    o.type = kp_cg_expr(c, n, o.r, M_BORROW);
    /* a field or element of a variable read in borrow mode (GETFIELD d 8)
     * is an implicit borrow when its static type is a record, list or
     * map: the read makes a reference to it, owning nothing */
    if ((n->kind == KP_N_FIELD || n->kind == KP_N_INDEX) && kp_resolve_is_place(n->a) && o.type &&
        (o.type->kind == KP_TK_RECORD || o.type->kind == KP_TK_LIST || o.type->kind == KP_TK_MAP))
        o.borrowed = true;
    return o;
}

uint8_t kp_cg_binop_code(int op, bool *swap) {
    *swap = false;
    switch (op) {
    case KP_OP_ADD: return KP_BC_ADD;
    case KP_OP_SUB: return KP_BC_SUB;
    case KP_OP_MUL: return KP_BC_MUL;
    case KP_OP_DIV: return KP_BC_DIV;
    case KP_OP_MOD: return KP_BC_MOD;
    case KP_OP_LAND: return KP_BC_BAND;
    case KP_OP_LOR: return KP_BC_BOR;
    case KP_OP_LXOR: return KP_BC_BXOR;
    case KP_OP_LSL: return KP_BC_SHL;
    case KP_OP_LSR: return KP_BC_SHR;
    case KP_OP_ASR: return KP_BC_ASR;
    case KP_OP_EQ: return KP_BC_EQ;
    case KP_OP_NE: return KP_BC_NE;
    case KP_OP_LT: return KP_BC_LT;
    case KP_OP_LE: return KP_BC_LE;
    case KP_OP_GT: *swap = true; return KP_BC_LT;
    case KP_OP_GE: *swap = true; return KP_BC_LE;
    }
    return KP_BC_NOP;
}

uint8_t kp_cg_arith_code(C *c, int op, KpType *ta, KpType *tb) {
    bool swap;
    uint8_t code = kp_cg_binop_code(op, &swap);
    if (ta != c->vm->t_float || tb != c->vm->t_float) return code;
    switch (code) {
    case KP_BC_ADD: return KP_BC_ADDF;
    case KP_BC_SUB: return KP_BC_SUBF;
    case KP_BC_MUL: return KP_BC_MULF;
    case KP_BC_DIV: return KP_BC_DIVF;
    }
    return code;
}

/* dst := op R(operand) for a unary operator node n (NOT, BNOT). */
static void emit_unary(C *c, KpNode *n, uint32_t dst, uint8_t op) {
    uint32_t save = c->fn->freereg;
    Operand a = kp_cg_operand(c, n->a);
    kp_cg_at(c, n);
    kp_cg_emit(c, op, dst, a.r, 0, 0);
    kp_cg_free_operand(c, &a, true);
    kp_cg_reg_free_to(c, save);
}

/* Compiles a place for a borrow: dst := REF(place) with flags. */
/* GETFIELD/GETINDEX/GETG `d` bits for a reference with value flags. */
static uint8_t ref_flags(uint8_t vflags) {
    return (uint8_t)(2 | ((vflags & KP_VF_MUT) ? 4 : 0) | ((vflags & KP_VF_PLACE) ? 8 : 0));
}

KpType *kp_cg_place_ref(C *c, KpNode *n, uint32_t dst, uint8_t flags) {
    kp_cg_at(c, n);
    uint32_t pr = kp_own_pinned(c, n);
    if (pr != NO_REG) {
        kp_cg_emit(c, KP_BC_REF, dst, pr, 0, flags);
        return NULL;
    }
    switch (n->kind) {
    case KP_N_IDENT: {
        bool global;
        struct KpGlobal *g;
        const char *name = kp_compile_intern(c, n->name);
        Local *l = kp_resolve_lookup_var(c, name, &global, &g);
        if (l == (Local *)1) {
            kp_compile_error(c, n, "cannot use local variable '%s' of an enclosing function (closures are not supported)", n->name);
            return NULL;
        }
        if (l && !global) {
            l->addr_taken = 1;
            kp_cg_emit(c, KP_BC_REF, dst, l->reg, 0, (uint8_t)(flags | (l->through ? 16 : 0)));
            return l->type;
        }
        if (global) {
            if (c->fn->is_main && c->func_depth == 0 && !l && g->pending) {
                kp_compile_error(c, n, "'%s' is used before its declaration", n->name);
                return NULL;
            }
            kp_cg_getg(c, dst, g, ref_flags(flags));
            return g->type;
        }
        /* not a variable: a value (function, type...) */
        return kp_cg_expr(c, n, dst, M_BORROW);
    }
    case KP_N_HOLE: {
        if (c->npipe == 0) {
            kp_compile_error(c, n, "'_' stands for the piped value and can only be used in a pipe");
            return NULL;
        }
        PipeVal *pv = &c->pipe[c->npipe - 1];
        if (pv->global)
            kp_cg_getg(c, dst, &c->vm->globals[pv->reg], ref_flags(flags));
        else
            kp_cg_emit(c, KP_BC_REF, dst, pv->reg, 0, (uint8_t)(flags | (pv->boxed ? 16 : 0)));
        return NULL;
    }
    case KP_N_FIELD:
    case KP_N_INDEX: {
        /* the container as a place, then a reference to the field/element */
        uint32_t save = c->fn->freereg;
        Operand o = {0};
        if (n->a->kind == KP_N_IDENT) {
            o = kp_cg_operand(c, n->a);
        } else {
            o.r = kp_cg_reg_alloc(c);
            o.temp = true;
            o.type = kp_cg_place_ref(c, n->a, o.r, KP_VF_PLACE | (flags & KP_VF_MUT));
        }
        uint8_t d = ref_flags(flags);
        KpType *t;
        if (n->kind == KP_N_FIELD) {
            kp_cg_emit(c, KP_BC_GETFIELD, dst, o.r, kp_cg_k_name(c, n->name), d);
            t = field_static_type(o.type, kp_compile_intern(c, n->name));
        } else {
            Operand idx = kp_cg_operand(c, n->b);
            kp_cg_emit(c, KP_BC_GETINDEX, dst, o.r, idx.r, d);
            kp_cg_free_operand(c, &idx, true);
            t = elem_static_type(o.type);
        }
        kp_cg_reg_free_to(c, save);
        /* the place's static type (a field that holds a reference passes
         * it on, a reference of its own type: left unknown) */
        return t && t->kind != KP_TK_REF ? t : NULL;
    }
    default:
        if (flags & KP_VF_PLACE) return kp_cg_expr(c, n, dst, M_VALUE);
        kp_compile_error(c, n, "can only take a reference to a variable, a field or an element");
        return NULL;
    }
}

/* A function literal: its body compiled once, as a function of its own
 * (codegen_stmt.c kp_cg_function) whose last parameters are the captures;
 * the value made where the literal is: the function itself when it
 * captures nothing, else a record of its closure type holding each
 * capture — a reference for `&x` and `$&x`, the value moved in for `~&x`
 * (NEWREC; the types pass declared the overload and the type). */
static KpType *compile_funclit(C *c, KpNode *n, uint32_t dst) {
    KpVM *vm = c->vm;
    if (!n->bound) kp_tc_expr_type(c, n);
    KpOverload *ov = n->bound;
    if (!ov) return NULL;
    if (!ov->proto) kp_cg_function(c, n, ov);
    int ncap = n->list2.count;
    if (!ncap || !n->stype) {
        emit_loadk(c, dst, kp_ptr(KP_T_FUNC, ov->func));
        return vm->t_func;
    }
    uint32_t save = c->fn->freereg;
    uint32_t base = c->fn->freereg;
    for (int i = 0; i < ncap; i++) kp_cg_reg_alloc(c);
    kp_cg_at(c, n);
    for (int i = 0; i < ncap; i++) {
        KpNode *u = n->list2.items[i];
        KpParam *cp = &ov->params[ov->nparams - ncap + i];
        kp_own_note_capture(c, u->a->name, cp->type, u->op);
    }
    for (int i = 0; i < ncap; i++) kp_cg_expr(c, n->list2.items[i], base + (uint32_t)i, M_VALUE);
    kp_cg_at(c, n);
    kp_own_hint(c, NULL, n->stype, "the function literal's value");
    kp_cg_emit(c, KP_BC_NEWREC, dst, kp_cg_add_k(c, kp_ptr(KP_T_TYPE, n->stype)), base, 0);
    kp_cg_reg_free_to(c, save);
    return n->stype;
}

static KpType *compile_ident(C *c, KpNode *n, uint32_t dst, int mode) {
    KpVM *vm = c->vm;
    const char *name = kp_compile_intern(c, n->name);
    bool global;
    struct KpGlobal *g;
    Local *l = kp_resolve_lookup_var(c, name, &global, &g);
    if (l == (Local *)1) {
        kp_compile_error(c, n, "cannot use local variable '%s' of an enclosing function (closures are not supported)", n->name);
        return NULL;
    }
    if (l && !global) {
        if (l->through == 1 && mode == M_VALUE && l->reg != dst) {
            /* a kept variable or a $& parameter: read through it */
            kp_cg_emit(c, KP_BC_COPY, dst, l->reg, 0, 0);
            kp_cg_take(c, dst);
        } else if (mode == M_BORROW && (!l->type || kp_types_movable(l->type) || l->type->kind == KP_TK_FUNC))
            /* (a Function may be a function literal's value, which moves) */
            kp_cg_emit(c, KP_BC_REF, dst, l->reg, 0, KP_VF_PLACE);
        else if (l->reg != dst) {
            kp_cg_emit(c, KP_BC_MOVE, dst, l->reg, 0, 0);
            if (n->flags & KP_F_MOVES) { /* the ownership pass's decision */
                l->moved_line = n->line;
                l->moved_col = n->col;
            }
        }
        return l->type;
    }
    if (global) {
        if (c->fn->is_main && c->func_depth == 0 && !l && g->pending) {
            kp_compile_error(c, n, "'%s' is used before its declaration", n->name);
            return NULL;
        }
        kp_cg_getg(c, dst, g, mode == M_BORROW ? 2 | 8 : 1);
        return g->type;
    }
    TypeBind *tb = kp_resolve_find_type(c, name);
    KpType *bt = tb ? tb->type : kp_types_builtin(c, name);
    if (bt) {
        emit_loadk(c, dst, kp_ptr(KP_T_TYPE, bt));
        return vm->t_type;
    }
    KpFunc *f = kp_resolve_find_func(c, name);
    if (f) {
        emit_loadk(c, dst, kp_ptr(KP_T_FUNC, f));
        return vm->t_func;
    }
    KpValue cv;
    KpType *ct;
    if (kp_builtin_value(vm, name, &cv, &ct)) { /* system; pi, e, inf, nan (stdlib/builtins.h) */
        emit_loadk(c, dst, cv);
        return ct;
    }
    if (!strcmp(name, "...")) {
        kp_compile_error(c, n, "'...' is a placeholder and cannot run");
        return NULL;
    }
    if (n->flags & KP_F_REPORTED) return NULL;
    kp_compile_error(c, n, "unknown name '%s'", n->name);
    kp_diag_label(c->diags, "not found in this scope");
    KpSimilar s;
    kp_compile_similar_init(&s, name);
    kp_compile_similar_names(c, &s, true, true, true);
    kp_compile_similar_help(c, &s);
    return NULL;
}

KpType *kp_cg_expr(C *c, KpNode *n, uint32_t dst, int mode) {
    KpVM *vm = c->vm;
    if (!n) return NULL;
    if (++c->depth_guard > 3000) {
        kp_compile_error(c, n, "expression nested too deeply");
        c->depth_guard--;
        return NULL;
    }
    KpType *result = NULL;
    kp_cg_at(c, n);
    switch (n->kind) {
    case KP_N_INT:
        if (kp_types_fits_i32(n->ival)) kp_cg_emit_sbx(c, KP_BC_LOADI, dst, (int32_t)n->ival);
        else emit_loadk(c, dst, kp_int(n->ival));
        result = vm->t_int;
        break;
    case KP_N_FLOAT:
        emit_loadk(c, dst, kp_float(n->fval));
        result = vm->t_float;
        break;
    case KP_N_STRING:
        emit_loadk(c, dst, kp_ptr(KP_T_STR, kp_compile_const_str(c, n->str, n->str_len)));
        result = vm->t_string;
        break;
    case KP_N_BOOL:
        kp_cg_emit(c, KP_BC_LOADBOOL, dst, n->ival != 0, 0, 0);
        result = vm->t_bool;
        break;
    case KP_N_UNIT:
        kp_cg_emit(c, KP_BC_LOADUNIT, dst, 0, 0, 0);
        result = vm->t_unit;
        break;
    case KP_N_IDENT:
        result = compile_ident(c, n, dst, mode);
        break;
    case KP_N_HOLE: {
        if (c->npipe == 0) {
            kp_compile_error(c, n, "'_' stands for the piped value and can only be used in a pipe");
            break;
        }
        PipeVal *pv = &c->pipe[c->npipe - 1];
        if (pv->global) kp_cg_getg(c, dst, &c->vm->globals[pv->reg], mode == M_BORROW ? 2 | 8 : 1);
        else if (mode == M_BORROW) kp_cg_emit(c, KP_BC_REF, dst, pv->reg, 0, KP_VF_PLACE);
        else if (pv->boxed) { kp_cg_emit(c, KP_BC_COPY, dst, pv->reg, 0, 0); kp_cg_take(c, dst); }
        else kp_cg_emit(c, KP_BC_MOVE, dst, pv->reg, 0, 0);
        break;
    }
    case KP_N_LIST: {
        if (n->packed) { /* a long literal of Int or Float literals: one constant */
            kp_cg_emit_sbx(c, KP_BC_NEWLISTK, dst, (int32_t)kp_cg_packed_k(c, n->packed));
            result = vm->t_list;
            break;
        }
        uint32_t save = c->fn->freereg;
        uint32_t lst = dst;
        kp_cg_emit(c, KP_BC_NEWLIST, lst, (uint32_t)(n->list.count < 65535 ? n->list.count : 65535), 0, 0);
        uint32_t t = kp_cg_reg_alloc(c);
        for (int i = 0; i < n->list.count; i++) {
            KpType *et = kp_cg_expr(c, n->list.items[i], t, M_VALUE);
            kp_cg_at(c, n->list.items[i]);
            (void)et;
            kp_own_quiet(c); /* a value moves in (a variable's move is its MOVE) */
            kp_cg_emit(c, KP_BC_LISTPUSH, lst, t, 0, 0);
        }
        kp_cg_reg_free_to(c, save);
        result = vm->t_list;
        break;
    }
    case KP_N_MAP: {
        uint32_t save = c->fn->freereg;
        kp_cg_emit(c, KP_BC_NEWMAP, dst, 0, 0, 0);
        uint32_t k = kp_cg_reg_alloc(c), v = kp_cg_reg_alloc(c);
        for (int i = 0; i < n->list.count; i++) {
            KpNode *pair = n->list.items[i];
            kp_cg_expr(c, pair->a, k, M_VALUE);
            kp_cg_expr(c, pair->b, v, M_VALUE);
            kp_cg_at(c, pair);
            kp_cg_emit(c, KP_BC_MAPSET, dst, k, v, 0);
        }
        kp_cg_reg_free_to(c, save);
        result = vm->t_map;
        break;
    }
    case KP_N_FUNCLIT: result = compile_funclit(c, n, dst); break;
    case KP_N_RECORD: {
        int nf = n->list.count;
        if (nf > 256) { kp_compile_error(c, n, "too many fields"); break; }
        const char **names = kp_arena_alloc(&vm->meta_arena, sizeof(char *) * (size_t)(nf + 1), 8);
        for (int i = 0; i < nf; i++) {
            names[i] = kp_compile_intern(c, n->list.items[i]->name);
            for (int j = 0; j < i; j++)
                if (names[j] == names[i]) kp_compile_error(c, n->list.items[i], "field '%s' given twice", names[i]);
        }
        KpType *t = kp_types_anon(c, nf, names, NULL);
        uint32_t save = c->fn->freereg;
        uint32_t base = c->fn->freereg;
        for (int i = 0; i < nf; i++) kp_cg_reg_alloc(c);
        for (int i = 0; i < nf; i++) kp_cg_expr(c, n->list.items[i]->a, base + (uint32_t)i, M_VALUE);
        kp_cg_at(c, n);
        kp_cg_emit(c, KP_BC_NEWREC, dst, kp_cg_add_k(c, kp_ptr(KP_T_TYPE, t)), base, 0);
        kp_cg_reg_free_to(c, save);
        result = t;
        break;
    }
    case KP_N_BINARY: {
        if (n->op == KP_OP_AND || n->op == KP_OP_OR) {
            kp_cg_expr(c, n->a, dst, M_VALUE);
            kp_cg_at(c, n);
            uint32_t j = kp_cg_emit_sbx(c, n->op == KP_OP_AND ? KP_BC_JMPF : KP_BC_JMPT, dst, 0);
            KpType *bt = kp_cg_expr(c, n->b, dst, M_VALUE);
            kp_cg_at(c, n);
            /* (a right operand known to be a Bool needs no check) */
            if (bt != vm->t_bool) kp_cg_emit(c, KP_BC_CHECK, dst, kp_cg_add_k(c, kp_ptr(KP_T_TYPE, vm->t_bool)), 0, 1);
            kp_cg_patch(c, j, kp_cg_pc(c));
            result = vm->t_bool;
            break;
        }
        if (n->op == KP_OP_RANGE) {
            kp_compile_error(c, n, "a range a..b can only be used in a for loop");
            break;
        }
        KpValue folded;
        if (kp_types_fold_binary(c, n, &folded)) {
            if (folded.tag == KP_T_INT && kp_types_fits_i32(folded.i)) kp_cg_emit_sbx(c, KP_BC_LOADI, dst, (int32_t)folded.i);
            else if (folded.tag == KP_T_BOOL) kp_cg_emit(c, KP_BC_LOADBOOL, dst, (uint32_t)folded.i, 0, 0);
            else emit_loadk(c, dst, folded);
            result = folded.tag == KP_T_INT ? vm->t_int : folded.tag == KP_T_FLOAT ? vm->t_float : vm->t_bool;
            break;
        }
        uint32_t save = c->fn->freereg;
        Operand a = kp_cg_operand(c, n->a);
        if ((n->op == KP_OP_ADD || n->op == KP_OP_SUB) && n->b->kind == KP_N_INT && !(a.r & KP_RK_CONST) &&
            (a.type == vm->t_int || !a.type) && n->b->ival > INT16_MIN && n->b->ival <= INT16_MAX) {
            /* x + 1, n - 2: an immediate operand */
            int64_t imm = n->op == KP_OP_ADD ? n->b->ival : -n->b->ival;
            kp_cg_at(c, n);
            kp_cg_emit(c, KP_BC_ADDI, dst, a.r, (uint32_t)(uint16_t)(int16_t)imm, 0);
            result = a.type == vm->t_int ? vm->t_int : NULL;
            kp_cg_free_operand(c, &a, true);
            kp_cg_reg_free_to(c, save);
            break;
        }
        Operand b = kp_cg_operand(c, n->b);
        bool swap;
        uint8_t op = kp_cg_binop_code(n->op, &swap);
        if (!swap) op = kp_cg_arith_code(c, n->op, a.type, b.type);
        kp_cg_at(c, n);
        if (swap) kp_cg_emit(c, op, dst, b.r, a.r, 0);
        else kp_cg_emit(c, op, dst, a.r, b.r, 0);
        result = kp_types_static_binop_type(c, n->op, a.type, b.type);
        kp_cg_free_operand(c, &b, true);
        kp_cg_free_operand(c, &a, true);
        kp_cg_reg_free_to(c, save);
        break;
    }
    case KP_N_UNARY: {
        switch (n->op) {
        case KP_OP_NEG: {
            if (n->a->kind == KP_N_INT) {
                if (n->a->ival == INT64_MIN) emit_loadk(c, dst, kp_int(INT64_MIN));
                else if (kp_types_fits_i32(-n->a->ival)) kp_cg_emit_sbx(c, KP_BC_LOADI, dst, (int32_t)-n->a->ival);
                else emit_loadk(c, dst, kp_int(-n->a->ival));
                result = vm->t_int;
                break;
            }
            if (n->a->kind == KP_N_FLOAT) {
                emit_loadk(c, dst, kp_float(-n->a->fval));
                result = vm->t_float;
                break;
            }
            uint32_t save = c->fn->freereg;
            Operand a = kp_cg_operand(c, n->a);
            if (a.r & KP_RK_CONST) { uint32_t t = kp_cg_reg_alloc(c); kp_cg_emit_sbx(c, KP_BC_LOADK, t, (int32_t)(a.r & 0x7fff)); a.r = t; }
            kp_cg_at(c, n);
            kp_cg_emit(c, KP_BC_NEG, dst, a.r, 0, 0);
            result = kp_types_is_num(vm, a.type) ? a.type : NULL;
            kp_cg_free_operand(c, &a, true);
            kp_cg_reg_free_to(c, save);
            break;
        }
        case KP_OP_LNOT: {
            KpValue folded;
            if (kp_types_fold_number(n, &folded)) {
                if (kp_types_fits_i32(folded.i)) kp_cg_emit_sbx(c, KP_BC_LOADI, dst, (int32_t)folded.i);
                else emit_loadk(c, dst, folded);
                result = vm->t_int;
                break;
            }
            emit_unary(c, n, dst, KP_BC_BNOT);
            result = vm->t_int;
            break;
        }
        case KP_OP_NOT:
            emit_unary(c, n, dst, KP_BC_NOT);
            result = vm->t_bool;
            break;
        case KP_OP_REF:
        case KP_OP_MUTREF: {
            KpType *t = kp_cg_place_ref(c, n->a, dst, n->op == KP_OP_MUTREF ? KP_VF_MUT : 0);
            result = t ? kp_types_derived(c, KP_TK_REF, t, NULL, n->op == KP_OP_MUTREF ? 2 : 1) : NULL;
            break;
        }
        case KP_OP_MOVE:
            result = kp_cg_expr(c, n->a, dst, M_VALUE);
            if (n->a->kind == KP_N_FIELD || n->a->kind == KP_N_INDEX) kp_cg_take(c, dst);
            break;
        }
        break;
    }
    case KP_N_CALL:
        result = kp_cg_call(c, n, dst, NULL);
        break;
    case KP_N_PIPE:
        result = compile_pipe(c, n, dst);
        break;
    case KP_N_FIELD: {
        uint32_t save = c->fn->freereg;
        Operand o = container_operand(c, n->a);
        kp_cg_at(c, n);
        KpType *ft = field_static_type(o.type, kp_compile_intern(c, n->name));
        /* d 32: the field's static type is an exact plain scalar, so the
         * result is a plain value (the RET scan needs no drop for it) */
        uint8_t plain = ft && ft->kind == KP_TK_SCALAR && ft->tag >= KP_T_UNIT && ft->tag < KP_T_MOVED ? 32 : 0;
        kp_cg_emit(c, KP_BC_GETFIELD, dst, o.r, kp_cg_k_name(c, n->name), (uint8_t)(kp_own_read_flags(mode, n->a) | plain));
        kp_cg_free_operand(c, &o, true);
        kp_cg_reg_free_to(c, save);
        result = ft;
        break;
    }
    case KP_N_INDEX: {
        uint32_t save = c->fn->freereg;
        /* `v.f[i]` of a local v: GETFX in front of the general sequence
         * (the field read, the element read, a drop) reads a plain element
         * straight from the list field when it can */
        uint32_t fx = NO_REG;
        Operand idx = {0, false, NULL, false};
        if (n->a->kind == KP_N_FIELD && kp_cg_reg_local(c, n->a->a) && kp_cg_pure_int(c, n->b, 3))
            fx = kp_cg_fused_begin(c, n, KP_BC_GETFX, n->b, &idx);
        bool early = fx != NO_REG && !kp_cg_pure_int(c, n->b, 0); /* (computed first) */
        Operand o = container_operand(c, n->a);
        if (!early) idx = kp_cg_operand(c, n->b);
        kp_cg_at(c, n);
        kp_cg_emit(c, KP_BC_GETINDEX, dst, o.r, idx.r, kp_own_read_flags(mode, n->a));
        kp_cg_free_operand(c, &idx, true);
        kp_cg_free_operand(c, &o, true);
        kp_cg_reg_free_to(c, save);
        if (fx != NO_REG) kp_cg_fused_done(c, fx, KP_BC_GETINDEX);
        result = elem_static_type(o.type);
        break;
    }
    case KP_N_GENERIC: {
        KpType *t = kp_types_resolve(c, n);
        if (t) emit_loadk(c, dst, kp_ptr(KP_T_TYPE, t));
        result = vm->t_type;
        break;
    }
    case KP_N_KEEP:
        kp_compile_error(c, n, "keep is not supported yet");
        break;
    default:
        kp_compile_error(c, n, "expected an expression");
        break;
    }
    c->depth_guard--;
    return result;
}

static uint32_t add_calldesc(C *c, int nnamed, const char **names, KpType *expect) {
    KpProto *p = c->fn->p;
    GROW(c, p->calls, &c->fn->cap_calls, p->ncalls);
    KpCallDesc *d = &p->calls[p->ncalls];
    d->nnamed = (uint16_t)nnamed;
    d->names = NULL;
    if (nnamed) {
        d->names = kp_arena_alloc(&c->vm->meta_arena, sizeof(char *) * (size_t)nnamed, 8);
        memcpy(d->names, names, sizeof(char *) * (size_t)nnamed);
    }
    d->expect = expect;
    d->ov = NULL;
    d->check = 0;
    d->fast = 0;
    memset(d->fmask, 0, sizeof d->fmask);
    return ++p->ncalls;
}

/* Compiles one argument into register r: places are passed as implicit
 * borrows; everything else as a value. */
static KpType *compile_arg(C *c, KpNode *a, uint32_t r) {
    if (a->kind == KP_N_HOLE) return kp_cg_expr(c, a, r, M_BORROW);
    if ((a->kind == KP_N_FIELD || a->kind == KP_N_INDEX) && kp_own_pinned(c, kp_resolve_place_root(a)) != NO_REG)
        return kp_cg_place_ref(c, a, r, KP_VF_PLACE);
    if (kp_resolve_is_place(a)) {
        if (a->kind == KP_N_IDENT) {
            bool global;
            struct KpGlobal *g;
            Local *l = kp_resolve_lookup_var(c, kp_compile_intern(c, a->name), &global, &g);
            if ((l && l != (Local *)1) || global) return kp_cg_place_ref(c, a, r, KP_VF_PLACE);
            return kp_cg_expr(c, a, r, M_VALUE);
        }
        return kp_cg_place_ref(c, a, r, KP_VF_PLACE);
    }
    return kp_cg_expr(c, a, r, M_VALUE);
}

/* The ownership record of a call resolved when it runs: an argument
 * passed as an implicit borrow of a place is moved out of it when the
 * overload chosen takes that parameter by value (vm.c bind_one), at the
 * call's position.  Certain when every overload takes it by value; none
 * when none does. */
static void note_arg_moves(C *c, KpFunc *f, KpNode *n, KpNode *pipe_first, KpType **argt) {
    if (!c->own) return;
    int pos = 0;
    bool native = !f;
    for (uint32_t k = 0; f && k < f->n; k++)
        if (!f->ovs[k]->proto) native = true;
    for (int i = -1; i < n->list.count; i++) {
        KpNode *a = i < 0 ? pipe_first : n->list.items[i];
        if (!a) continue;
        bool named = a->kind == KP_N_FIELDINIT;
        int idx = named ? -1 : pos++;
        if (named) a = a->a;
        const char *what = NULL;
        KpType *type = NULL;
        if (a->kind == KP_N_HOLE) {
            if (c->npipe == 0) continue;
            (void)0; /* the piped value: a variable, or the pipe's temporary */
        } else if (a->kind == KP_N_IDENT) {
            bool global;
            struct KpGlobal *g;
            Local *l = kp_resolve_lookup_var(c, kp_compile_intern(c, a->name), &global, &g);
            if (l == (Local *)1 || (!l && !global)) continue;
            if (l && l->through) continue; /* holds a reference */
            what = a->name;
            type = l ? l->type : g->type;
        } else if ((a->kind == KP_N_FIELD || a->kind == KP_N_INDEX) &&
                   (kp_resolve_is_place(a) || kp_own_pinned(c, kp_resolve_place_root(a)) != NO_REG)) {
            what = a->kind == KP_N_FIELD ? a->name : NULL;
        } else {
            /* a temporary: a native function's arguments that it did not
             * keep are dropped when it returns (a script function's are its
             * parameters, dropped when it returns) */
            if (native) kp_own_note(c, KP_OWN_DROP, NULL, argt[i + 1], true, "an argument the call did not keep");
            continue;
        }
        int by_value = 0, other = 0;
        for (uint32_t k = 0; f && k < f->n; k++) {
            KpOverload *ov = f->ovs[k];
            int mode = idx >= 0 && idx < ov->nparams ? ov->params[idx].mode : idx >= 0 && ov->variadic ? ov->vmode : -1;
            if (mode == KP_PM_VALUE) by_value++;
            else other++;
        }
        if (f && !by_value) continue;
        kp_own_note(c, KP_OWN_MOVE, what, type, !f || other > 0, "if the overload chosen takes it by value");
        if (native) kp_own_note(c, KP_OWN_DROP, NULL, type, true, "an argument the call did not keep");
    }
}

/* Record construction: T(.x = 1, .y = 2) or T(1, 2). */
static KpType *compile_construct(C *c, KpNode *n, KpType *t, uint32_t dst) {
    if (t->kind != KP_TK_RECORD) {
        kp_compile_error(c, n, "%s cannot be called; only record types construct values", t->name);
        return NULL;
    }
    uint32_t save = c->fn->freereg;
    uint32_t base = c->fn->freereg;
    for (uint32_t i = 0; i < t->nfields; i++) kp_cg_reg_alloc(c);
    /* fields not given must read UNSET (the registers may hold stale
     * non-owning values from earlier temporaries) */
    if (t->nfields && (uint32_t)n->list.count < t->nfields) {
        kp_own_quiet(c);
        kp_cg_emit(c, KP_BC_DROP, base, t->nfields, 0, 0);
    }
    bool *given = kp_arena_alloc(&c->vm->meta_arena, t->nfields + 1, 1);
    memset(given, 0, t->nfields + 1);
    int pos = 0;
    for (int i = 0; i < n->list.count; i++) {
        KpNode *a = n->list.items[i];
        int idx = -1;
        KpNode *val = a;
        if (a->kind == KP_N_FIELDINIT) {
            const char *fname = kp_compile_intern(c, a->name);
            for (uint32_t j = 0; j < t->nfields; j++)
                if (t->fnames[j] == fname) idx = (int)j;
            if (idx < 0) { kp_compile_error(c, a, "%s has no field '%s'", t->name, a->name); continue; }
            val = a->a;
        } else {
            idx = pos++;
            if (idx >= (int)t->nfields) { kp_compile_error(c, a, "too many values for %s (%u fields)", t->name, t->nfields); continue; }
        }
        if (given[idx]) { kp_compile_error(c, a, "field '%s' given twice", t->fnames[idx]); continue; }
        given[idx] = true;
        kp_cg_expr(c, val, base + (uint32_t)idx, M_VALUE);
    }
    kp_cg_at(c, n);
    kp_cg_emit(c, KP_BC_NEWREC, dst, kp_cg_add_k(c, kp_ptr(KP_T_TYPE, t)), base, 0);
    kp_cg_reg_free_to(c, save);
    return t;
}

/* ------------------------------------------------ views' element types
 *
 * A View's type does not say what its elements are, so `v[i, j]` is of
 * unknown type — a temporary to drop, a CHECK where it is assigned — unless
 * the compiler can see that v holds a view of Float (or of Int) elements
 * for all its life: v is declared from `view(&b, Float64, ...)` (the
 * builtin, with a type name written there) or from transpose / slice /
 * reshape of such a variable, and is never assigned, moved, passed as
 * anything but `&v`, or declared again in its block (in the whole chunk for
 * a top-level variable; never in the REPL, where a later line may assign
 * it).  Then `v[i, j]` is a Float (an Int): VGET takes the fast path only
 * for such a view, and the general sequence it skips ends with a CHECK, so
 * a view of another kind (which the rules above leave to the host's API
 * alone) is a run-time error, never a value of the wrong type. */

/* The name `name` occurs in tree n only as `&name` or as the view of
 * `name[i, j]` / `name[i, j] = x`, and nothing but `decl` declares it. */
static bool view_var_stable(KpNode *n, const char *name, KpNode *decl, int depth) {
    if (!n) return true;
    if (depth > 600) return false;
    switch (n->kind) {
    case KP_N_IDENT:
        return !n->name || strcmp(n->name, name) != 0;
    case KP_N_UNARY:
        if (n->op == KP_OP_REF && n->a && n->a->kind == KP_N_IDENT) return true;
        break;
    case KP_N_CALL:
        if (n->a && n->a->kind == KP_N_IDENT && n->a->name &&
            (!strcmp(n->a->name, "#index") || !strcmp(n->a->name, "#setindex")) && n->list.count > 0 &&
            n->list.items[0] && n->list.items[0]->kind == KP_N_IDENT) {
            for (int i = 1; i < n->list.count; i++)
                if (!view_var_stable(n->list.items[i], name, decl, depth + 1)) return false;
            return true;
        }
        break;
    case KP_N_FIELD:
    case KP_N_FIELDINIT:
    case KP_N_FIELDDECL:
        break; /* (name is a field's) */
    default:
        if (n != decl && ((n->name && !strcmp(n->name, name)) || (n->name2 && !strcmp(n->name2, name)))) return false;
    }
    if (!view_var_stable(n->a, name, decl, depth + 1) || !view_var_stable(n->b, name, decl, depth + 1) ||
        !view_var_stable(n->c, name, decl, depth + 1))
        return false;
    for (int i = 0; i < n->list.count; i++)
        if (!view_var_stable(n->list.items[i], name, decl, depth + 1)) return false;
    for (int i = 0; i < n->list2.count; i++)
        if (!view_var_stable(n->list2.items[i], name, decl, depth + 1)) return false;
    return true;
}

/* The i-th positional argument of call n, or NULL. */
static KpNode *positional_arg(KpNode *n, int i) {
    for (int k = 0; k < n->list.count; k++) {
        KpNode *a = n->list.items[k];
        if (!a || a->kind == KP_N_FIELDINIT) continue;
        if (i-- == 0) return a;
    }
    return NULL;
}

uint8_t kp_cg_view_elem(C *c, KpNode *init, KpNode *decl, bool top) {
    if (c->repl || !init || init->kind != KP_N_CALL || !decl->name || !init->a || init->a->kind != KP_N_IDENT) return 0;
    /* the callee: a builtin returning a View, with no overload of the
     * script's or the host's (the call need not be bound: view() with
     * named arguments is selected when it runs, among the builtin's own) */
    const char *fn = kp_compile_intern(c, init->a->name);
    bool fglobal;
    struct KpGlobal *fg;
    Local *fl = kp_resolve_lookup_var(c, fn, &fglobal, &fg);
    KpFunc *callee = fl || fglobal || kp_resolve_find_type(c, fn) ? NULL : kp_resolve_find_func(c, fn);
    if (!callee || !callee->n || kp_tc_chunk_declares(c, fn)) return 0;
    /* (the builtin table says how the result's elements read: view_op) */
    uint8_t vop = callee->ovs[0]->view_op;
    for (uint32_t k = 0; k < callee->n; k++)
        if (!callee->ovs[k]->native || callee->ovs[k]->host_fn || callee->ovs[k]->ret != c->vm->t_bin[KP_BK_VIEW] ||
            callee->ovs[k]->view_op != vop)
            return 0;
    uint8_t elem = 0;
    if (vop == 1) {
        KpNode *t = positional_arg(init, 1);
        if (!t || t->kind != KP_N_IDENT) return 0;
        bool global;
        struct KpGlobal *g;
        Local *l = kp_resolve_lookup_var(c, kp_compile_intern(c, t->name), &global, &g);
        if (l || global) return 0; /* a variable, not a type's name */
        int e = kp_elem_of_type(c->vm, kp_types_resolve(c, t));
        if (e == KP_E_F32 || e == KP_E_F64) elem = 1;
        else if (e >= 0 && e != KP_E_U64) elem = 2;
    } else if (vop == 2) {
        KpNode *r = positional_arg(init, 0);
        if (!r || r->kind != KP_N_UNARY || r->op != KP_OP_REF || !r->a || r->a->kind != KP_N_IDENT) return 0;
        bool global;
        struct KpGlobal *g;
        Local *l = kp_resolve_lookup_var(c, kp_compile_intern(c, r->a->name), &global, &g);
        if (!l || l == (Local *)1 || global) return 0;
        elem = l->view_elem;
    }
    if (!elem) return 0;
    Fn *f = c->fn;
    KpNode *scope = f->depth >= 0 && f->depth < 64 ? f->blocks[f->depth] : NULL;
    if (top && f->is_main) scope = f->blocks[0];
    if (!scope || !view_var_stable(scope, decl->name, decl, 0)) return 0;
    return elem;
}

/* VGET's operands (vm/opcodes.h): the register of a local variable that
 * holds its value in place (not a keep box; for the view, one holding a
 * reference to it is fine: the VM follows it), or, for an index, an Int
 * constant (RK).  False when the argument is anything else: then the
 * general sequence alone is compiled. */
static bool vget_operand(C *c, KpNode *n, bool is_view, uint32_t *out) {
    if (!is_view && n->kind == KP_N_INT) {
        uint32_t k = kp_cg_add_k(c, kp_int(n->ival));
        if (k >= KP_RK_CONST) return false;
        *out = k | KP_RK_CONST;
        return true;
    }
    if (n->kind != KP_N_IDENT || kp_own_pinned(c, n) != NO_REG) return false;
    bool global;
    struct KpGlobal *g;
    Local *l = kp_resolve_lookup_var(c, kp_compile_intern(c, n->name), &global, &g);
    if (!l || l == (Local *)1 || global || l->boxed || (!is_view && l->through)) return false;
    if (l->reg >= KP_RK_CONST) return false;
    *out = l->reg;
    return true;
}

uint32_t kp_cg_emit_quiet(C *c, uint8_t op, uint32_t a, uint32_t b, uint32_t cc, uint8_t d) {
    __typeof__(c->hint) hint = c->hint;
    uint32_t at = kp_cg_emit(c, op, a, b, cc, d);
    c->hint = hint;
    return at;
}

/* A call the types pass bound to overload `ov` (n->bound): each argument
 * is passed in the form its parameter takes — a value moved or copied in,
 * or a reference — and CALLS runs `ov` with no run-time selection; the VM
 * binds only the arguments in n->bound_check. */
static KpType *compile_call_bound(C *c, KpNode *n, KpOverload *ov, uint32_t dst, KpType *expect) {
    uint32_t save = c->fn->freereg;
    uint32_t base = (dst == save - 1 && dst >= c->fn->freereg - 1) ? dst : kp_cg_reg_alloc(c);
    if (base == dst && dst != save - 1) base = kp_cg_reg_alloc(c);
    int nargs = n->list.count;
    /* v[i, j] and v[i, j] = x: the View fast paths of the VM (the same
     * call when they do not apply) */
    int op = KP_BC_CALLS;
    if (ov->native && !ov->host_fn && ov->view_op == 3) op = KP_BC_VINDEX;
    else if (ov->native && !ov->host_fn && ov->view_op == 4) op = KP_BC_VSETINDEX;
    /* v[i, j] of a variable v with variables or constants i, j: VGET reads
     * the element straight from their registers and skips the general
     * sequence below, which runs when it cannot (vm/vm.c) */
    uint32_t vget_extra = NO_REG;
    uint8_t elem = 0; /* the view's elements: 1 Float, 2 Int (kp_cg_view_elem) */
    if (op == KP_BC_VINDEX && nargs >= 1 && n->list.items[0]->kind == KP_N_IDENT) {
        bool global;
        struct KpGlobal *g;
        Local *l = kp_resolve_lookup_var(c, kp_compile_intern(c, n->list.items[0]->name), &global, &g);
        if (l && l != (Local *)1 && !global) elem = l->view_elem;
    }
    if (op == KP_BC_VINDEX && (nargs == 3 || nargs == 4)) {
        uint32_t r[4] = {0, 0, 0, 0};
        bool ok = true;
        for (int k = 0; k < nargs && ok; k++) ok = vget_operand(c, n->list.items[k], k == 0, &r[k]);
        if (ok && dst < KP_RK_CONST) {
            kp_cg_at(c, n);
            bool k = (r[1] | r[2]) & KP_RK_CONST;
            kp_cg_emit_quiet(c, k ? KP_BC_VGETK : KP_BC_VGET, dst, r[0], r[1], (uint8_t)((nargs - 1) | elem << 4));
            vget_extra = kp_cg_emit_quiet(c, KP_BC_EXTRA, r[2], r[3], 0, 0);
        }
    }
    KpType **argt = c->own && ov->native ? kp_arena_alloc(&c->vm->meta_arena, sizeof(KpType *) * (size_t)(nargs + 1), 8) : NULL;
    for (int i = 0; i < nargs; i++) {
        KpNode *a = n->list.items[i];
        uint32_t r = kp_cg_reg_alloc(c);
        int mode = i < ov->nparams ? ov->params[i].mode : ov->vmode;
        if (argt) argt[i] = NULL;
        if (mode == KP_PM_VALUE) {
            KpType *at = kp_cg_expr(c, a, r, M_VALUE);
            if (argt) argt[i] = at ? at : c->vm->t_any; /* moved in, dropped unless kept */
            if (a->kind == KP_N_FIELD || a->kind == KP_N_INDEX) kp_cg_take(c, r);
        } else if (a->kind == KP_N_UNARY && (a->op == KP_OP_REF || a->op == KP_OP_MUTREF)) {
            kp_cg_expr(c, a, r, M_VALUE);
        } else if (kp_resolve_is_place(a)) {
            /* 16: a variable holding a reference passes that reference */
            kp_cg_place_ref(c, a, r, (uint8_t)((mode == KP_PM_MUTREF ? KP_VF_MUT : 0) | (a->kind == KP_N_IDENT ? 16 : 0)));
        } else {
            KpType *at = kp_cg_expr(c, a, r, M_VALUE); /* a temporary, owned by the argument */
            if (argt) argt[i] = at ? at : c->vm->t_any;
        }
    }
    kp_cg_at(c, n);
    for (int i = 0; argt && i < nargs; i++) /* a native's arguments it did not keep */
        if (argt[i]) kp_own_note(c, KP_OWN_DROP, NULL, argt[i] == c->vm->t_any ? NULL : argt[i], true, "an argument the call did not keep");
    uint32_t desc = add_calldesc(c, 0, NULL, expect);
    KpCallDesc *d = &c->fn->p->calls[desc - 1];
    d->ov = ov;
    d->check = n->bound_check;
    kp_cg_emit(c, op, base, (uint32_t)nargs, desc, 0);
    if (base != dst) kp_cg_emit(c, KP_BC_MOVE, dst, base, 0, 0);
    KpType *elem_t = elem == 1 ? c->vm->t_float : elem == 2 ? c->vm->t_int : NULL;
    if (elem_t) kp_cg_emit(c, KP_BC_CHECK, dst, kp_cg_add_k(c, kp_ptr(KP_T_TYPE, elem_t)), 0, 0);
    if (vget_extra != NO_REG) {
        uint32_t skip = c->fn->p->ncode - (vget_extra + 1);
        if (skip < 0x10000) c->fn->p->code[vget_extra].c = (uint16_t)skip;
        else c->fn->p->code[vget_extra - 1].d = 0; /* (a View has 1 or more dimensions: VGET never applies) */
    }
    kp_cg_reg_free_to(c, save);
    return elem_t ? elem_t : ov->ret;
}

/* The general call: R(base) = callee, args above; result moved to dst. */
static KpType *compile_call_general(C *c, KpNode *n, KpNode *callee, KpFunc *f, uint32_t dst,
                                    KpType *expect, KpNode *pipe_first) {
    if (n->bound && !pipe_first && f) return compile_call_bound(c, n, n->bound, dst, expect);
    uint32_t save = c->fn->freereg;
    /* temporaries that arguments borrow fields or elements of */
    int pin_mark = c->npinned;
    for (int i = -1; i < n->list.count; i++) {
        KpNode *a = i < 0 ? pipe_first : n->list.items[i];
        if (!a) continue;
        if (a->kind == KP_N_FIELDINIT) a = a->a;
        if ((a->kind != KP_N_FIELD && a->kind != KP_N_INDEX) || kp_resolve_is_place(a)) continue;
        KpNode *root = kp_resolve_place_root(a);
        if (c->npinned >= 32 || kp_own_pinned(c, root) != NO_REG) continue;
        uint32_t t = kp_cg_reg_alloc(c);
        kp_cg_expr(c, root, t, M_VALUE);
        c->pinned_node[c->npinned] = root;
        c->pinned_reg[c->npinned++] = t;
    }
    bool pins = c->npinned > pin_mark;
    uint32_t base = (!pins && dst == save - 1 && dst >= c->fn->freereg - 1) ? dst : kp_cg_reg_alloc(c);
    if (base == dst && dst != save - 1) base = kp_cg_reg_alloc(c);
    uint32_t callee_tmp = NO_REG;
    KpType *callee_t = NULL; /* a function value's static type */
    if (f) emit_loadk(c, base, kp_ptr(KP_T_FUNC, f));
    else if (callee->kind != KP_N_IDENT && callee->kind != KP_N_FIELD && callee->kind != KP_N_INDEX) {
        /* a callee that is a temporary (a call's result, a function
         * literal called where it is made): held below the call, which
         * borrows it, and dropped after it */
        callee_tmp = base;
        kp_cg_expr(c, callee, callee_tmp, M_VALUE);
        base = kp_cg_reg_alloc(c);
        kp_cg_emit(c, KP_BC_REF, base, callee_tmp, 0, 0);
    } else callee_t = kp_cg_expr(c, callee, base, M_BORROW);
    int nargs = 0, nnamed = 0;
    const char **names = kp_arena_alloc(&c->vm->meta_arena, sizeof(char *) * (size_t)(n->list.count + 1), 8);
    /* the arguments' static types, [0] the piped value's (for the record) */
    KpType **argt = kp_arena_alloc(&c->vm->meta_arena, sizeof(KpType *) * (size_t)(n->list.count + 2), 8);
    memset(argt, 0, sizeof(KpType *) * (size_t)(n->list.count + 2));
    if (pipe_first) {
        uint32_t r = kp_cg_reg_alloc(c);
        argt[0] = compile_arg(c, pipe_first, r);
        nargs++;
    }
    for (int pass = 0; pass < 2; pass++) {
        for (int i = 0; i < n->list.count; i++) {
            KpNode *a = n->list.items[i];
            bool named = a->kind == KP_N_FIELDINIT;
            if (named != (pass == 1)) continue;
            if (nargs >= 250) { kp_compile_error(c, a, "too many arguments (250 at most)"); break; }
            uint32_t r = kp_cg_reg_alloc(c);
            if (named) {
                names[nnamed++] = kp_compile_intern(c, a->name);
                argt[i + 1] = compile_arg(c, a->a, r);
            } else {
                argt[i + 1] = compile_arg(c, a, r);
            }
            nargs++;
        }
    }
    kp_cg_at(c, n);
    note_arg_moves(c, f, n, pipe_first, argt);
    uint32_t desc = (nnamed || expect) ? add_calldesc(c, nnamed, names, expect) : 0;
    kp_cg_emit(c, KP_BC_CALL, base, (uint32_t)nargs, desc, 0);
    if (callee_tmp != NO_REG) {
        kp_own_hint(c, NULL, NULL, "the function called, a temporary");
        kp_cg_emit(c, KP_BC_DROP, callee_tmp, 1, 0, 0);
    }
    if (base != dst) kp_cg_emit(c, KP_BC_MOVE, dst, base, 0, 0);
    if (pins) {
        /* the borrowed temporaries die after the call */
        kp_own_hint(c, NULL, NULL, "a temporary an argument borrowed from");
        kp_cg_emit(c, KP_BC_DROP, c->pinned_reg[pin_mark], (uint32_t)(c->npinned - pin_mark), 0, 0);
        c->npinned = pin_mark;
    }
    kp_cg_reg_free_to(c, save);
    KpType *rt = NULL;
    if (f && f->n == 1) rt = f->ovs[0]->ret;
    /* a function literal that captures: its closure type knows its one
     * overload, whose RET checks the declared result */
    if (!f && callee_t && callee_t->kind == KP_TK_FUNC && callee_t->closure) rt = callee_t->closure->ret;
    /* the expected output type is the result's only when an overload
     * returning it exists (then the run time selects among those) */
    for (uint32_t i = 0; expect && f && i < f->n; i++)
        if (f->ovs[i]->ret == expect) rt = expect;
    return rt;
}

static KpType *compile_call_with(C *c, KpNode *n, uint32_t dst, KpType *expect, KpNode *pipe_first) {
    KpNode *callee = n->a;
    KpFunc *f = NULL;
    /* a call that stores an argument into a $& one (push, the table's
     * KP_BF_STORES; a function whose summary says so) */
    if (callee->kind == KP_N_GENERIC) {
        KpType *t = kp_types_resolve(c, callee);
        if (!t) return NULL;
        if (pipe_first) { kp_compile_error(c, n, "cannot pipe into a constructor"); return NULL; }
        return compile_construct(c, n, t, dst);
    }
    if (callee->kind == KP_N_IDENT) {
        const char *name = kp_compile_intern(c, callee->name);
        bool global;
        struct KpGlobal *g;
        Local *l = kp_resolve_lookup_var(c, name, &global, &g);
        if (!l && !global) {
            TypeBind *tb = kp_resolve_find_type(c, name);
            KpType *t = tb ? tb->type : NULL;
            if (tb && tb->generic) { kp_compile_error(c, callee, "generic type %s needs arguments: %s#(...)", name, name); return NULL; }
            if (t) {
                if (pipe_first) { kp_compile_error(c, n, "cannot pipe into a constructor"); return NULL; }
                return compile_construct(c, n, t, dst);
            }
            KpType *bt = kp_types_builtin(c, name);
            if (bt && (bt->kind == KP_TK_OPAQUE || bt == c->vm->t_heap) && !pipe_first) {
                KpFunc *init = kp_types_ctor_func(c);
                if (init) return compile_call_general(c, n, callee, init, dst, bt, NULL);
            }
            f = kp_resolve_find_func(c, name);
            if (!f) {
                if (bt) {
                    kp_compile_error(c, callee, "%s cannot be called; use int(), float() or str() to convert", name);
                    return NULL;
                }
                if (callee->flags & KP_F_REPORTED) return NULL;
                kp_compile_error(c, callee, "unknown function '%s'", callee->name);
                kp_diag_label(c->diags, "not found in this scope");
                KpSimilar s;
                kp_compile_similar_init(&s, name);
                kp_compile_similar_names(c, &s, false, true, true);
                kp_compile_similar_help(c, &s);
                return NULL;
            }
            if (f->special == 1) { /* deinit(x): the drop of a place */
                int na = n->list.count + (pipe_first ? 1 : 0);
                if (na != 1) { kp_compile_error(c, n, "deinit takes one argument"); return NULL; }
                KpNode *a = pipe_first ? pipe_first : n->list.items[0];
                uint32_t save = c->fn->freereg;
                uint32_t r = kp_cg_reg_alloc(c);
                if (a->kind == KP_N_UNARY && (a->op == KP_OP_MUTREF || a->op == KP_OP_MOVE)) a = a->a;
                if (kp_resolve_is_place(a) || a->kind == KP_N_HOLE) {
                    kp_cg_place_ref(c, a->kind == KP_N_HOLE ? a : a, r, KP_VF_PLACE | KP_VF_MUT);
                    if (a->kind == KP_N_HOLE) { kp_cg_emit(c, KP_BC_DROP, r, 1, 0, 0); kp_cg_expr(c, a, r, M_BORROW); }
                    kp_cg_at(c, n);
                    if (a->kind == KP_N_IDENT) {
                        bool gg;
                        struct KpGlobal *g2;
                        Local *l2 = kp_resolve_lookup_var(c, kp_compile_intern(c, a->name), &gg, &g2);
                        kp_own_hint(c, a->name, l2 && l2 != (Local *)1 ? l2->type : gg ? g2->type : NULL, NULL);
                    } else {
                        kp_own_hint(c, a->kind == KP_N_FIELD ? a->name : NULL, NULL, NULL);
                    }
                    kp_cg_emit(c, KP_BC_DEINIT, r, 0, 0, 0);
                    if (a->kind == KP_N_IDENT) {
                        bool gg; struct KpGlobal *g2;
                        Local *l2 = kp_resolve_lookup_var(c, kp_compile_intern(c, a->name), &gg, &g2);
                        if (l2 && l2 != (Local *)1 && !gg && (a->flags & KP_F_MOVES)) { l2->moved_line = n->line; l2->moved_col = n->col; }
                    }
                } else {
                    kp_cg_expr(c, a, r, M_VALUE);
                    kp_cg_at(c, n);
                    kp_cg_emit(c, KP_BC_DEINIT, r, 0, 0, 1);
                }
                kp_cg_reg_free_to(c, save);
                kp_cg_emit(c, KP_BC_LOADUNIT, dst, 0, 0, 0);
                return c->vm->t_unit;
            }
        }
    }
    return compile_call_general(c, n, callee, f, dst, expect, pipe_first);
}

KpType *kp_cg_call(C *c, KpNode *n, uint32_t dst, KpType *expect) {
    return compile_call_with(c, n, dst, expect, NULL);
}

static KpType *compile_pipe(C *c, KpNode *n, uint32_t dst) {
    KpVM *vm = c->vm;
    KpNode *lhs = n->a, *rhs = n->b;
    uint32_t save = c->fn->freereg;
    /* `Type | init(...)`: output-type selection, no insertion */
    if (rhs->kind == KP_N_CALL && !kp_resolve_has_hole(rhs) &&
        (lhs->kind == KP_N_IDENT || lhs->kind == KP_N_GENERIC)) {
        KpType *t = NULL;
        if (lhs->kind == KP_N_GENERIC) t = kp_types_resolve(c, lhs);
        else {
            bool global;
            struct KpGlobal *g;
            const char *name = kp_compile_intern(c, lhs->name);
            if (!kp_resolve_lookup_var(c, name, &global, &g) && !global) {
                TypeBind *tb = kp_resolve_find_type(c, name);
                t = tb ? tb->type : kp_types_builtin(c, name);
            }
        }
        if (t) return kp_cg_call(c, rhs, dst, t);
    }
    if (c->npipe >= 64) { kp_compile_error(c, n, "pipes nested too deeply"); return NULL; }
    PipeVal pv = {0};
    bool temp = false;
    KpType *lhs_type = NULL;
    if (lhs->kind == KP_N_IDENT) {
        bool global;
        struct KpGlobal *g;
        Local *l = kp_resolve_lookup_var(c, kp_compile_intern(c, lhs->name), &global, &g);
        if (l && l != (Local *)1 && !global) { pv.reg = l->reg; pv.place = true; }
        else if (global) { pv.reg = (uint32_t)(g - c->vm->globals); pv.place = true; pv.global = true; }
    }
    if (!pv.place) {
        pv.reg = kp_cg_reg_alloc(c);
        temp = true;
        lhs_type = kp_cg_expr(c, lhs, pv.reg, M_VALUE);
        if (lhs->kind == KP_N_PIPE && lhs->b && lhs->b->kind == KP_N_KEEP) pv.boxed = true;
        if (lhs->kind == KP_N_FIELD || lhs->kind == KP_N_INDEX) {
            /* a field piped on is borrowed, not moved: re-read as a borrow */
            kp_own_hint(c, NULL, lhs_type, "a temporary");
            kp_cg_emit(c, KP_BC_DROP, pv.reg, 1, 0, 0);
            kp_cg_place_ref(c, lhs, pv.reg, KP_VF_PLACE);
            temp = false;
        }
    }
    c->pipe[c->npipe++] = pv;
    KpType *rt = NULL;
    uint32_t out = temp ? kp_cg_reg_alloc(c) : dst;
    kp_cg_at(c, n);
    if (rhs->kind == KP_N_CALL) {
        if (kp_resolve_has_hole(rhs)) rt = kp_cg_call(c, rhs, out, NULL);
        else {
            KpNode hole = {.kind = KP_N_HOLE, .line = lhs->line, .col = lhs->col};
            KpNode *hp = kp_ast_new(&vm->meta_arena, KP_N_HOLE, lhs->line, lhs->col);
            if (!hp) hp = &hole;
            rt = compile_call_with(c, rhs, out, NULL, hp);
        }
    } else if (rhs->kind == KP_N_IDENT || rhs->kind == KP_N_FIELD) {
        KpNode *call = kp_ast_new(&vm->meta_arena, KP_N_CALL, rhs->line, rhs->col);
        KpNode *hp = kp_ast_new(&vm->meta_arena, KP_N_HOLE, lhs->line, lhs->col);
        if (call && hp) {
            call->a = rhs;
            rt = compile_call_with(c, call, out, NULL, hp);
        }
    } else if (rhs->kind == KP_N_KEEP) {
        /* `… | keep _ with r | …`: the value goes into a box tied to r; the
         * pipe goes on with a reference to it */
        if (!pv.place || pv.global) {
            uint32_t box;
            bool pending = false;
            if (rhs->list.count == 1 && rhs->list.items[0]->kind == KP_N_IDENT && c->pending_name &&
                kp_compile_intern(c, rhs->list.items[0]->name) == c->pending_name) {
                box = c->pending_reg;
                pending = true;
                c->pending_used = true;
            } else {
                box = kp_cg_reg_alloc(c);
            }
            uint8_t d = 0;
            if (rhs->b) { kp_cg_place_ref(c, rhs->b, box, KP_VF_PLACE); d = 1; }
            kp_cg_at(c, rhs);
            uint32_t src = pv.reg;
            if (pv.global) kp_cg_getg(c, src = kp_cg_reg_alloc(c), &vm->globals[pv.reg], 1); /* moved out */
            kp_cg_emit(c, KP_BC_BOXNEW, box, src, 0, d);
            kp_cg_emit(c, KP_BC_BOXREF, out, box, 0, 0);
            if (!pending) {
                uint32_t first = c->fn->freereg;
                for (int i = 0; i < rhs->list.count; i++) {
                    uint32_t o = kp_cg_reg_alloc(c);
                    kp_cg_place_ref(c, rhs->list.items[i], o, KP_VF_PLACE | KP_VF_MUT);
                }
                kp_cg_at(c, rhs);
                kp_cg_emit(c, KP_BC_KEEP, box, first, (uint32_t)rhs->list.count, 0);
            }
            temp = false; /* the value now lives in the box */
            if (out != dst) kp_cg_emit(c, KP_BC_COPY, dst, out, 0, 0);
        } else {
            kp_compile_error(c, rhs, "keep _ in a pipe keeps a temporary; to keep a variable write `keep x with ...`");
        }
    } else {
        kp_compile_error(c, rhs, "expected a function call after '|'");
    }
    c->npipe--;
    if (temp) {
        kp_own_hint(c, NULL, lhs_type, "the piped value, unless the call took it");
        kp_cg_emit(c, KP_BC_DROP, pv.reg, 1, 0, 0); /* the temporary, unless moved on */
        kp_cg_emit(c, KP_BC_MOVE, dst, out, 0, 0);
    }
    kp_cg_reg_free_to(c, save);
    return rt;
}
