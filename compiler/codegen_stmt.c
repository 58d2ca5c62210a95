/*
 * codegen_stmt.c — register bytecode for statements: declarations,
 * assignments, if/while/for, break/continue/return, and function bodies.
 *
 * Design.  A statement leaves the register stack where it found it; the
 * locals a declaration adds belong to the enclosing scope, which drops
 * them at its exit (ownership.c).  Conditions compile straight to a
 * conditional jump (compare with an immediate, compare two registers, or
 * test a Bool).  Loops record their break and continue jumps and patch
 * them when the loop ends; each exit path first emits the drops and
 * defers of the scopes it leaves.  A function body is compiled into its
 * own KpProto: parameters take the first registers, named outputs the
 * next (UNSET until assigned), and falling off the end returns the
 * outputs (or unit) after the defers and drops.
 */
#include "compiler_int.h"

static void emit_check(C *c, uint32_t r, KpType *t, const char *name) {
    if (!t || t->kind == KP_TK_ANY) return;
    kp_cg_emit(c, KP_BC_CHECK, r, kp_cg_add_k(c, kp_ptr(KP_T_TYPE, t)), name ? kp_cg_k_name(c, name) + 1 : 0, 0);
}

static void compile_decl(C *c, KpNode *n) {
    const char *name = kp_compile_intern(c, n->name);
    Fn *f = c->fn;
    KpType *t = n->a ? kp_types_resolve(c, n->a) : NULL;
    bool top = f->is_main && f->depth == 0 && c->func_depth == 0;
    if (!top && f->nouts && f->depth == 2) {
        /* `hm : H` (or `hm : H = e`) in a function's body, where hm is a
         * named output: it gives the output its first value — the type's
         * default — rather than declaring a variable that would hide it */
        Local *o = kp_resolve_find_local(f, name);
        if (o && o->depth == 1 && o->reg >= f->out_reg && o->reg < f->out_reg + (uint32_t)f->nouts) {
            if (t && o->type && t != o->type) {
                kp_compile_error(c, n, "'%s' is an output of type %s, but it is declared here as %s", n->name,
                                 o->type->name, t->name);
                return;
            }
            if (!t) t = o->type;
            kp_cg_at(c, n);
            if (n->b) {
                uint32_t tmp = kp_cg_reg_alloc(c);
                KpType *st = n->b->kind == KP_N_CALL ? kp_cg_call(c, n->b, tmp, t) : kp_cg_expr(c, n->b, tmp, M_VALUE);
                if (n->b->kind == KP_N_FIELD || n->b->kind == KP_N_INDEX) kp_cg_take(c, tmp);
                kp_cg_at(c, n);
                if (t && !kp_types_same_static(c, t, st)) emit_check(c, tmp, t, n->name);
                kp_cg_emit(c, KP_BC_MOVE, o->reg, tmp, 0, 0);
                kp_cg_reg_free_to(c, tmp);
            } else if (!t) {
                kp_compile_error(c, n, "'%s' needs a type or a value", n->name);
                return;
            } else {
                kp_cg_emit(c, KP_BC_DEFAULT, o->reg, kp_cg_add_k(c, kp_ptr(KP_T_TYPE, t)), 0, 0);
            }
            o->moved_line = 0;
            return;
        }
    }
    /* the newest local of this name: one at this depth is in this scope */
    Local *same = c->repl ? NULL : kp_resolve_find_local(f, name);
    if (same && same->depth == f->depth) {
        kp_compile_error(c, n, "'%s' is already declared in this scope (line %u)", n->name, same->decl_line);
        return;
    }
    uint32_t r;
    struct KpGlobal *g = NULL;
    uint32_t gi = 0;
    bool far = false;
    if (top) {
        g = kp_resolve_find_pending_global(c, name);
        if (!g) g = kp_resolve_find_global(c, name);
        if (!g) return; /* not reserved: too many top-level variables (reported) */
        gi = (uint32_t)(g - c->vm->globals);
        far = g->far;
        /* g->pending stays set until the initializer is compiled; a far
         * global's value is made in a temporary, then stored with SETG */
        r = far ? kp_cg_reg_alloc(c) : g->reg;
    } else {
        r = kp_cg_reg_alloc(c);
    }
    KpType *st;
    kp_cg_at(c, n);
    int ki = kp_own_kept_index(f, name);
    if (ki >= 0 && top && !f->kept[ki].manual) {
        kp_compile_error(c, n, "'%s' is a top-level variable, which lives until the program ends: keep is for the values of a scope", n->name);
        ki = -1;
    }
    /* `x := … | keep _ with x | …`: a register for the box, kept until x exists */
    uint32_t pend = NO_REG;
    const char *save_pname = c->pending_name;
    uint32_t save_preg = c->pending_reg;
    bool save_pused = c->pending_used;
    if (n->b && kp_own_mentions_keep_of(n->b, n->name)) {
        pend = kp_cg_reg_alloc(c);
        c->pending_name = name;
        c->pending_reg = pend;
        c->pending_used = false;
    }
    if (n->b) {
        uint32_t target = r;
        if (top && c->repl && !far) target = kp_cg_reg_alloc(c); /* keep the old value until the new one exists */
        /* t := x (or t : &T = x), x a `&T` parameter: t borrows what x
         * refers to — the reference x holds, or x's own value when the
         * caller passed a temporary */
        if ((!t || t->kind == KP_TK_REF) && kp_tc_names_ref_param(c, n->b)) {
            kp_cg_place_ref(c, n->b, target, 0);
            Local *src = kp_resolve_find_local(f, kp_compile_intern(c, n->b->name));
            st = src && src->type ? kp_types_derived(c, KP_TK_REF, src->type, NULL, 1) : NULL;
        } else if (n->b->kind == KP_N_CALL) st = kp_cg_call(c, n->b, target, t);
        else st = kp_cg_expr(c, n->b, target, M_VALUE);
        if (n->b->kind == KP_N_FIELD || n->b->kind == KP_N_INDEX) kp_cg_take(c, target);
        kp_cg_at(c, n);
        if (t && !kp_types_same_static(c, t, st)) emit_check(c, target, t, n->name);
        if (target != r) {
            kp_cg_emit(c, KP_BC_MOVE, r, target, 0, 0);
            kp_cg_reg_free_to(c, target);
        }
        /* a REPL line declaring an earlier chunk's variable again ends the
         * old value now that the new one is in place (functions compiled
         * against the old variable then read it as having no value) */
        struct KpGlobal *old = top && c->repl ? kp_resolve_find_global(c, name) : NULL;
        g = top ? &c->vm->globals[gi] : NULL;
        if (old && old != g && !old->pending && old->reg != g->reg) {
            if (old->far) kp_cg_setg(c, old, 0, 1);
            else kp_cg_emit(c, KP_BC_DROP, old->reg, 1, 0, 0);
        }
    } else {
        if (!t) { kp_compile_error(c, n, "'%s' needs a type or a value", n->name); return; }
        kp_cg_emit(c, KP_BC_DEFAULT, r, kp_cg_add_k(c, kp_ptr(KP_T_TYPE, t)), 0, 0);
        st = t;
    }
    if (top) g = &c->vm->globals[gi];
    uint32_t ki_box = NO_REG; /* a far global kept manually: its value's register */
    if (far && ki < 0) {
        kp_own_quiet(c); /* (a fresh slot: nothing to drop) */
        kp_cg_setg(c, g, r, 0); /* the value in place */
    } else if (far) {
        ki_box = r;
    }
    if (pend != NO_REG) {
        c->pending_name = save_pname;
        c->pending_reg = save_preg;
        bool used = c->pending_used;
        c->pending_used = save_pused;
        if (used) {
            /* now x exists: tie the pipe's kept value to it */
            uint32_t o = kp_cg_reg_alloc(c);
            if (far) kp_cg_getg(c, o, g, 2 | 4 | 8); /* a mutable reference to the place */
            else kp_cg_emit(c, KP_BC_REF, o, r, 0, KP_VF_PLACE | KP_VF_MUT);
            kp_cg_at(c, n);
            kp_cg_emit(c, KP_BC_KEEP, pend, o, 1, 0);
        }
        kp_cg_reg_free_to(c, pend + 1);
    }
    Local *l = kp_resolve_add_local(c, name, top ? g->reg : r, t ? t : st);
    l->global = top;
    l->decl = n;
    l->decl_bit = KP_F_DROPS;
    l->far = far;
    l->gidx = gi;
    l->decl_line = n->line;
    l->decl_col = n->col;
    if (n->b && ki < 0 && t == NULL) l->view_elem = kp_cg_view_elem(c, n->b, n, top);
    if (top) {
        g->type = l->type;
        g->pending = 0;
    }
    if (pend != NO_REG) {
        /* the box register stays a hidden local: dropped with the scope (a
         * no-op once the keep ran) */
        kp_resolve_add_local(c, kp_compile_intern(c, "(kept)"), pend, NULL);
        l = &f->locals[f->nlocals - 2];
    }
    if (ki >= 0) {
        /* a kept variable lives in a box from here on (a top-level one,
         * kept manually, in the slot reserved for its box) */
        uint32_t box = top && !far ? f->kept[ki].box_reg : kp_cg_reg_alloc(c);
        KpNode *ue = f->kept[ki].using_expr;
        uint8_t d = 0;
        if (ue) {
            kp_cg_place_ref(c, ue, box, KP_VF_PLACE);
            d = 1;
        }
        kp_cg_at(c, n);
        kp_own_hint(c, l->name, l->type, NULL);
        kp_cg_emit(c, KP_BC_BOXNEW, box, r, kp_cg_k_name(c, n->name) + 1, d);
        kp_cg_emit(c, KP_BC_BOXREF, r, box, 0, 0);
        l->through = 1;
        l->boxed = 1;
        uint32_t bgi = far ? f->kept[ki].box_reg : 0; /* far: the box's global */
        Local *bl = kp_resolve_add_local(c, kp_compile_intern(c, "(box)"), far ? c->vm->globals[bgi].reg : box, NULL);
        bl->global = top;
        if (far) {
            /* the box and the reference to its value in their far slots */
            bl->far = true;
            bl->gidx = bgi;
            c->vm->globals[bgi].pending = 0;
            kp_own_quiet(c);
            kp_cg_setg(c, &c->vm->globals[bgi], box, 0);
            kp_own_quiet(c);
            kp_cg_setg(c, &c->vm->globals[gi], ki_box, 0);
        }
    }
    /* a far global's temporaries (not a pending keep's box register,
     * which stays a hidden local) */
    if (far && pend == NO_REG) kp_cg_reg_free_to(c, r);
}

/* The value an assignment stores, into register t: the value for `=`, or
 * `cur op value` for `op=` where register `cur` holds the current value. */
static KpType *assigned_value(C *c, KpNode *n, uint32_t t, uint32_t cur, KpType *expect) {
    if (n->op != KP_OP_NONE) {
        Operand b = kp_cg_operand(c, n->b);
        bool swap;
        kp_cg_at(c, n);
        kp_cg_emit(c, kp_cg_binop_code(n->op, &swap), t, cur, b.r, 0);
        kp_cg_free_operand(c, &b, true);
        return NULL;
    }
    KpType *st = n->b->kind == KP_N_CALL ? kp_cg_call(c, n->b, t, expect) : kp_cg_expr(c, n->b, t, M_VALUE);
    if (n->b->kind == KP_N_FIELD || n->b->kind == KP_N_INDEX) kp_cg_take(c, t);
    return st;
}

/* The local variable n names when it is one of a plain scalar type (Unit,
 * Bool, Int, Float, a sized integer) held in its own register (not a
 * reference, not kept, not a global), else NULL: a store may copy from
 * its register. */
static Local *plain_local(C *c, KpNode *n) {
    Local *l = kp_cg_reg_local(c, n);
    if (!l || l->through || !l->type) return NULL;
    const KpType *t = l->type;
    return t->kind == KP_TK_SCALAR && t->tag >= KP_T_UNIT && t->tag < KP_T_MOVED ? l : NULL;
}

/* The static type of a field `a.f` or element `a[i]` of a variable `a`,
 * or NULL (for the ownership record: the old value an assignment drops). */
static KpType *place_type(C *c, KpNode *target) {
    if (!target->a || target->a->kind != KP_N_IDENT) return NULL;
    bool global;
    struct KpGlobal *g;
    Local *l = kp_resolve_lookup_var(c, kp_compile_intern(c, target->a->name), &global, &g);
    KpType *t = l && l != (Local *)1 ? l->type : global ? g->type : NULL;
    while (t && t->kind == KP_TK_REF) t = t->elem;
    if (!t) return NULL;
    if (target->kind == KP_N_INDEX) return t->kind == KP_TK_LIST || t->kind == KP_TK_MAP ? t->elem : NULL;
    if (t->kind != KP_TK_RECORD || !t->ftypes) return NULL;
    const char *name = kp_compile_intern(c, target->name);
    for (uint32_t i = 0; i < t->nfields; i++)
        if (t->fnames[i] == name) return t->ftypes[i];
    return NULL;
}

static void compile_assign(C *c, KpNode *n) {
    KpVM *vm = c->vm;
    KpNode *target = n->a;
    uint32_t save = c->fn->freereg;
    kp_cg_at(c, n);
    if (target->kind == KP_N_UNARY) {
        kp_compile_error(c, target, "cannot assign to ~&%s here: `~&x` names a taken capture only inside a function literal",
                         target->a && target->a->name ? target->a->name : "?");
        return;
    }
    if (target->kind == KP_N_IDENT) {
        const char *name = kp_compile_intern(c, target->name);
        bool global;
        struct KpGlobal *g;
        Local *l = kp_resolve_lookup_var(c, name, &global, &g);
        if (l == (Local *)1) {
            kp_compile_error(c, target, "cannot assign to local variable '%s' of an enclosing function", target->name);
            return;
        }
        if (!l && !global) {
            kp_compile_error(c, target, "unknown variable '%s' (declare it with %s := ...)", target->name, target->name);
            KpSimilar s;
            kp_compile_similar_init(&s, name);
            kp_compile_similar_names(c, &s, true, false, false);
            kp_compile_similar_help(c, &s);
            return;
        }
        if (global && c->fn->is_main && c->func_depth == 0 && !l && g->pending) {
            kp_compile_error(c, target, "'%s' is used before its declaration", target->name);
            return;
        }
        KpType *vt = global ? g->type : l->type;
        if (!global && l->through == 2) {
            kp_compile_error(c, target, "cannot assign to '%s': it is a read-only reference (&); take the parameter as $& to change the caller's value", target->name);
            return;
        }
        if (!global && l->through == 1) {
            /* a $& reference: the assignment writes the referent */
            uint32_t t = kp_cg_reg_alloc(c);
            assigned_value(c, n, t, l->reg, vt);
            kp_cg_at(c, n);
            emit_check(c, t, vt, target->name);
            kp_cg_emit(c, KP_BC_SETREF, l->reg, t, 0, 0);
            kp_cg_reg_free_to(c, save);
            return;
        }
        if (!global) {
            KpType *st;
            bool checked = false;
            if (n->op != KP_OP_NONE) {
                /* x op= v: compute straight into x */
                Operand b = kp_cg_operand(c, n->b);
                bool swap;
                kp_cg_at(c, n);
                (void)swap;
                kp_cg_emit(c, kp_cg_arith_code(c, n->op, l->type, b.type), l->reg, l->reg, b.r, 0);
                st = kp_types_static_binop_type(c, n->op, l->type, b.type);
                kp_cg_free_operand(c, &b, true);
            } else if (n->b->kind == KP_N_BINARY || n->b->kind == KP_N_INT || n->b->kind == KP_N_FLOAT ||
                       n->b->kind == KP_N_BOOL) {
                st = kp_cg_expr(c, n->b, l->reg, M_VALUE);
            } else {
                uint32_t t = kp_cg_reg_alloc(c);
                st = n->b->kind == KP_N_CALL ? kp_cg_call(c, n->b, t, vt) : kp_cg_expr(c, n->b, t, M_VALUE);
                if (n->b->kind == KP_N_FIELD || n->b->kind == KP_N_INDEX) kp_cg_take(c, t);
                kp_cg_at(c, n);
                if (vt && !kp_types_same_static(c, vt, st)) emit_check(c, t, vt, target->name);
                kp_own_hint(c, NULL, NULL, "assignment"); /* the old value is dropped */
                kp_cg_emit(c, KP_BC_MOVE, l->reg, t, 0, 0);
                st = vt;
                checked = true; /* (the value was checked before the move) */
            }
            if (vt && !checked && !kp_types_same_static(c, vt, st)) {
                kp_cg_at(c, n);
                emit_check(c, l->reg, vt, target->name);
            }
            l->moved_line = 0;
        } else {
            uint32_t t = kp_cg_reg_alloc(c);
            if (n->op != KP_OP_NONE) kp_cg_getg(c, t, g, 0);
            assigned_value(c, n, t, t, vt);
            kp_cg_at(c, n);
            emit_check(c, t, vt, target->name);
            kp_cg_setg(c, g, t, 0);
        }
        kp_cg_reg_free_to(c, save);
        return;
    }
    if (target->kind == KP_N_FIELD || target->kind == KP_N_INDEX) {
        /* `v.f[i] = x` of a local v: SETFX in front of the general
         * sequence stores a plain value straight into the list field when
         * it can (the sequence must be the field's reference and the
         * store, one after the other: kept only if it is) */
        uint32_t fx = NO_REG;
        Operand idx = {0, false, NULL, false};
        if (target->kind == KP_N_INDEX && n->op == KP_OP_NONE && target->a->kind == KP_N_FIELD &&
            kp_cg_reg_local(c, target->a->a) && plain_local(c, n->b) && kp_cg_pure_int(c, target->b, 3))
            fx = kp_cg_fused_begin(c, n, KP_BC_SETFX, target->b, &idx);
        bool early = fx != NO_REG && !kp_cg_pure_int(c, target->b, 0); /* (computed first) */
        uint32_t obj;
        if (target->a->kind == KP_N_IDENT) {
            bool global;
            struct KpGlobal *g;
            Local *l = kp_resolve_lookup_var(c, kp_compile_intern(c, target->a->name), &global, &g);
            if (l && l != (Local *)1 && !global) {
                /* x.f = v and x[i] = v on a local: SETFIELD and SETINDEX
                 * work on x's register itself (a record or container, or
                 * the reference a $& parameter or a kept variable holds);
                 * no reference to the register, so the frame's registers
                 * need no new generation on return */
                obj = l->reg;
            }
            else kp_cg_place_ref(c, target->a, obj = kp_cg_reg_alloc(c), KP_VF_PLACE | KP_VF_MUT);
        } else {
            kp_cg_place_ref(c, target->a, obj = kp_cg_reg_alloc(c), KP_VF_PLACE | KP_VF_MUT);
        }
        if (target->kind == KP_N_INDEX && !early) idx = kp_cg_operand(c, target->b);
        /* `x.f = v` of a local v of a plain scalar type: the store copies
         * from v's register (d 1), no MOVE into a temporary first */
        Local *src = n->op == KP_OP_NONE ? plain_local(c, n->b) : NULL;
        uint32_t v = src ? src->reg : kp_cg_reg_alloc(c);
        if (n->op != KP_OP_NONE) {
            kp_cg_at(c, target);
            if (target->kind == KP_N_FIELD) kp_cg_emit(c, KP_BC_GETFIELD, v, obj, kp_cg_k_name(c, target->name), 0);
            else kp_cg_emit(c, KP_BC_GETINDEX, v, obj, idx.r, 0);
        }
        if (!src) assigned_value(c, n, v, v, NULL);
        kp_cg_at(c, n);
        kp_own_hint(c, target->kind == KP_N_FIELD ? target->name : NULL, place_type(c, target), NULL);
        if (target->kind == KP_N_FIELD) kp_cg_emit(c, KP_BC_SETFIELD, obj, kp_cg_k_name(c, target->name), v, src ? 1 : 0);
        else kp_cg_emit(c, KP_BC_SETINDEX, obj, idx.r, v, src ? 1 : 0);
        kp_cg_free_operand(c, &idx, true);
        kp_cg_reg_free_to(c, save);
        if (fx != NO_REG) kp_cg_fused_done(c, fx, KP_BC_SETINDEX);
        return;
    }
    (void)vm;
    kp_compile_error(c, target, "cannot assign to this expression");
}

static Loop *push_loop(C *c) {
    Fn *f = c->fn;
    IGROW(c, f->loops, f->nloops, f->cap_loops);
    Loop *lp = &f->loops[f->nloops++];
    memset(lp, 0, sizeof *lp);
    lp->depth = f->depth;
    lp->ndefers = f->ndefers;
    return lp;
}

static void loop_add(C *c, uint32_t **arr, int *n, int *cap, uint32_t j) {
    IGROW(c, *arr, *n, *cap);
    (*arr)[(*n)++] = j;
}

static void pop_loop(C *c, uint32_t brk, uint32_t cont) {
    Fn *f = c->fn;
    Loop *lp = &f->loops[f->nloops - 1];
    for (int i = 0; i < lp->nbreaks; i++) kp_cg_patch(c, lp->breaks[i], brk);
    for (int i = 0; i < lp->nconts; i++) kp_cg_patch(c, lp->conts[i], cont);
    f->nloops--;
}

/* Emits the conditional jump taken when `cond` is false; returns it. */
static uint32_t compile_cond_jump(C *c, KpNode *cond) {
    KpVM *vm = c->vm;
    uint32_t save = c->fn->freereg;
    if (cond->kind == KP_N_BINARY && cond->op >= KP_OP_LT && cond->op <= KP_OP_GE && cond->b->kind == KP_N_INT &&
        cond->b->ival >= INT16_MIN && cond->b->ival <= INT16_MAX && cond->a->kind != KP_N_INT && cond->a->kind != KP_N_FLOAT) {
        /* x < 2: compare a register with a small immediate */
        Operand a = kp_cg_operand(c, cond->a);
        if (a.r & KP_RK_CONST) { uint32_t t = kp_cg_reg_alloc(c); kp_cg_emit_sbx(c, KP_BC_LOADK, t, (int32_t)(a.r & 0x7fff)); a.r = t; }
        uint8_t jop = cond->op == KP_OP_LT ? KP_BC_JLTI : cond->op == KP_OP_LE ? KP_BC_JLEI
                    : cond->op == KP_OP_GT ? KP_BC_JGTI : KP_BC_JGEI;
        kp_cg_at(c, cond);
        uint32_t j = kp_cg_emit(c, jop, a.r, (uint32_t)(uint16_t)(int16_t)cond->b->ival, 0, 0);
        kp_cg_free_operand(c, &a, true);
        kp_cg_reg_free_to(c, save);
        return j;
    }
    if (cond->kind == KP_N_BINARY && cond->op >= KP_OP_EQ && cond->op <= KP_OP_GE) {
        Operand a = kp_cg_operand(c, cond->a);
        Operand b = kp_cg_operand(c, cond->b);
        bool swap;
        uint8_t op = kp_cg_binop_code(cond->op, &swap);
        uint8_t jop = op == KP_BC_LT ? KP_BC_JLT : op == KP_BC_LE ? KP_BC_JLE : op == KP_BC_EQ ? KP_BC_JEQ : KP_BC_JNE;
        kp_cg_at(c, cond);
        uint32_t j = swap ? kp_cg_emit(c, jop, b.r, a.r, 0, 0) : kp_cg_emit(c, jop, a.r, b.r, 0, 0);
        kp_cg_free_operand(c, &b, true);
        kp_cg_free_operand(c, &a, true);
        kp_cg_reg_free_to(c, save);
        (void)vm;
        return j;
    }
    if (cond->kind == KP_N_IDENT) {
        /* a variable: JMPF tests its register (through a reference) */
        Operand a = kp_cg_operand(c, cond);
        if (!(a.r & KP_RK_CONST)) {
            kp_cg_at(c, cond);
            uint32_t j = kp_cg_emit_sbx(c, KP_BC_JMPF, a.r, 0);
            kp_cg_free_operand(c, &a, true);
            kp_cg_reg_free_to(c, save);
            return j;
        }
        kp_cg_free_operand(c, &a, true);
        kp_cg_reg_free_to(c, save);
    }
    uint32_t r = kp_cg_reg_alloc(c);
    kp_cg_expr(c, cond, r, M_VALUE);
    kp_cg_at(c, cond);
    uint32_t j = kp_cg_emit_sbx(c, KP_BC_JMPF, r, 0);
    kp_cg_reg_free_to(c, save);
    return j;
}

/* At most this many jumps for one if/while condition: a longer chain of
 * `and`s compiles its tail as one value. */
#define KP_COND_JUMPS 16

/* The jumps taken when `cond` is false, appended to js (at most lim - n
 * of them; n < lim): `a and b` is a's jumps, then b's — no Bool value is
 * made, and a comparison is one compare-and-jump.  As `a and b` computed
 * as a value checks b with CHECK ('and' / 'or' need Bool operands) and a
 * with its JMPF, `checked` says this operand is a right one: anything but
 * a comparison (whose result is a Bool) gets that CHECK.  Returns the new
 * count. */
static int compile_cond_jumps(C *c, KpNode *cond, bool checked, uint32_t *js, int n, int lim) {
    if (cond->kind == KP_N_BOOL) { /* `while true`: no test; `false`: a jump */
        if (cond->ival) return n;
        kp_cg_at(c, cond);
        js[n++] = kp_cg_emit_sbx(c, KP_BC_JMP, 0, 0);
        return n;
    }
    if (cond->kind == KP_N_BINARY && cond->op == KP_OP_AND && lim - n >= 2) {
        n = compile_cond_jumps(c, cond->a, false, js, n, lim - 1);
        return compile_cond_jumps(c, cond->b, true, js, n, lim);
    }
    bool cmp = cond->kind == KP_N_BINARY && cond->op >= KP_OP_EQ && cond->op <= KP_OP_GE;
    if (cmp && (cond->op == KP_OP_EQ || cond->op == KP_OP_NE) && lim - n >= 2) {
        /* `v.f == ()` / `v.f != ()` of a local variable v: JFUNIT decides
         * it from the field's tag, in front of the general sequence (a
         * field read, a compare-and-jump, a drop), which runs when
         * JFUNIT cannot decide.  Both jumps go where the condition fails. */
        KpNode *f = cond->a->kind == KP_N_UNIT ? cond->b : cond->b->kind == KP_N_UNIT ? cond->a : NULL;
        if (f && f->kind == KP_N_FIELD && f->a->kind == KP_N_IDENT) {
            KpProto *p = c->fn->p;
            kp_cg_at(c, cond);
            uint32_t fj = kp_cg_emit_quiet(c, KP_BC_JFUNIT, 0, cond->op == KP_OP_NE, 0, 0);
            uint32_t start = kp_cg_pc(c);
            js[n++] = compile_cond_jump(c, cond);
            uint32_t len = kp_cg_pc(c) - start;
            /* (the sequence must begin with the field read of the
             * variable's register: a global's GETG comes first) */
            if (p->code && len <= 0xffff && p->code[start].op == KP_BC_GETFIELD) {
                p->code[fj].a = (uint16_t)len;
                js[n++] = fj;
            } else if (p->code) {
                p->code[fj].op = KP_BC_NOP;
            }
            return n;
        }
    }
    if (checked && !cmp) {
        uint32_t save = c->fn->freereg;
        uint32_t r = kp_cg_reg_alloc(c);
        KpType *t = kp_cg_expr(c, cond, r, M_VALUE);
        kp_cg_at(c, cond);
        if (t != c->vm->t_bool) kp_cg_emit(c, KP_BC_CHECK, r, kp_cg_add_k(c, kp_ptr(KP_T_TYPE, c->vm->t_bool)), 0, 1);
        js[n++] = kp_cg_emit_sbx(c, KP_BC_JMPF, r, 0);
        kp_cg_reg_free_to(c, save);
        return n;
    }
    js[n++] = compile_cond_jump(c, cond);
    return n;
}

/* A jump emitted after a DROP of the condition temp would need the drop on
 * both paths; conditions are Bool scalars, so nothing is owned. */

static void compile_body(C *c, KpNode *block) {
    kp_own_push_scope(c);
    if (block && block->kind == KP_N_BLOCK) kp_cg_block_body(c, block);
    else if (block) kp_cg_stmt(c, block);
    kp_own_pop_scope(c, true);
}

static void compile_if(C *c, KpNode *n) {
    uint32_t jf[KP_COND_JUMPS];
    int nj = compile_cond_jumps(c, n->a, false, jf, 0, KP_COND_JUMPS);
    compile_body(c, n->b);
    if (n->c) {
        uint32_t jend = kp_cg_emit_sbx(c, KP_BC_JMP, 0, 0);
        for (int k = 0; k < nj; k++) kp_cg_patch(c, jf[k], kp_cg_pc(c));
        if (n->c->kind == KP_N_IF) compile_if(c, n->c);
        else compile_body(c, n->c);
        kp_cg_patch(c, jend, kp_cg_pc(c));
    } else {
        for (int k = 0; k < nj; k++) kp_cg_patch(c, jf[k], kp_cg_pc(c));
    }
}

/* `while a < b` (<=, >, >=) of Int operands that compile to no code: the
 * test again at the bottom of the loop, jumping back to the body while it
 * holds (loop inversion: one instruction per iteration instead of a test
 * at the top and a JMP back).  JLT and JLE jump when their comparison is
 * false, and for Ints (no NaN) `a < b` is `not (b <= a)`: the jump back
 * for `a < b` is JLE b, a.  Returns false (nothing emitted) for any other
 * test. */
static bool while_bottom_test(C *c, KpNode *cond, uint32_t body) {
    if (cond->kind != KP_N_BINARY || cond->op < KP_OP_LT || cond->op > KP_OP_GE || !kp_cg_pure_int(c, cond->a, 0) ||
        !kp_cg_pure_int(c, cond->b, 0))
        return false;
    uint32_t save = c->fn->freereg;
    Operand a = kp_cg_operand(c, cond->a);
    Operand b = kp_cg_operand(c, cond->b);
    /* continue while the test holds: jump when `not X` is false, with X
     * the test's negation as JLT/JLE spell it */
    uint8_t op;
    uint32_t x, y;
    switch (cond->op) {
    case KP_OP_LT: op = KP_BC_JLE; x = b.r; y = a.r; break; /* not (b <= a) */
    case KP_OP_LE: op = KP_BC_JLT; x = b.r; y = a.r; break; /* not (b < a) */
    case KP_OP_GT: op = KP_BC_JLE; x = a.r; y = b.r; break; /* not (a <= b) */
    default: op = KP_BC_JLT; x = a.r; y = b.r; break;       /* >=: not (a < b) */
    }
    kp_cg_at(c, cond);
    uint32_t j = kp_cg_emit(c, op, x, y, 0, 0);
    kp_cg_patch(c, j, body);
    kp_cg_free_operand(c, &b, true);
    kp_cg_free_operand(c, &a, true);
    kp_cg_reg_free_to(c, save);
    return true;
}

static void compile_while(C *c, KpNode *n) {
    uint32_t top = kp_cg_pc(c);
    uint32_t jf[KP_COND_JUMPS];
    int nj = compile_cond_jumps(c, n->a, false, jf, 0, KP_COND_JUMPS);
    uint32_t body = kp_cg_pc(c);
    push_loop(c);
    compile_body(c, n->b);
    uint32_t cont = kp_cg_pc(c);
    if (!while_bottom_test(c, n->a, body)) {
        cont = top;
        kp_cg_at(c, n);
        uint32_t back = kp_cg_emit_sbx(c, KP_BC_JMP, 0, 0);
        kp_cg_patch(c, back, top);
    }
    for (int k = 0; k < nj; k++) kp_cg_patch(c, jf[k], kp_cg_pc(c));
    pop_loop(c, kp_cg_pc(c), cont);
    kp_own_forget_moves_since(c, 0);
}

static void compile_for(C *c, KpNode *n) {
    KpVM *vm = c->vm;
    uint32_t save = c->fn->freereg;
    KpNode *it = n->a;
    kp_own_push_scope(c); /* the loop's state registers */
    if (it->kind == KP_N_BINARY && it->op == KP_OP_RANGE) {
        if (n->name2) { kp_compile_error(c, n, "a range loop has one variable"); }
        uint32_t base = kp_cg_reg_alloc(c);
        kp_cg_reg_alloc(c);
        uint32_t var = kp_cg_reg_alloc(c);
        kp_cg_expr(c, it->a, base, M_VALUE);
        kp_cg_expr(c, it->b, base + 1, M_VALUE);
        kp_cg_at(c, n);
        uint32_t prep = kp_cg_emit_sbx(c, KP_BC_FORPREP, base, 0);
        uint32_t body = kp_cg_pc(c);
        push_loop(c);
        kp_own_push_scope(c);
        Local *l = kp_resolve_add_local(c, kp_compile_intern(c, n->name), var, vm->t_int);
        l->decl = n;
        l->decl_bit = KP_F_DROPS;
        if (n->b) kp_cg_block_body(c, n->b);
        kp_own_pop_scope(c, true);
        uint32_t cont = kp_cg_pc(c);
        kp_cg_at(c, n);
        uint32_t fl = kp_cg_emit_sbx(c, KP_BC_FORLOOP, base, 0);
        kp_cg_patch(c, fl, body);
        kp_cg_patch(c, prep, kp_cg_pc(c));
        pop_loop(c, kp_cg_pc(c), cont);
        /* the counter and end are Ints: nothing to drop */
    } else {
        uint8_t mode = 0;
        KpNode *src = it;
        if (src->kind == KP_N_UNARY && src->op == KP_OP_MUTREF) { mode = 1; src = src->a; }
        else if (src->kind == KP_N_UNARY && src->op == KP_OP_MOVE) { mode = 2; src = src->a; }
        else if (src->kind == KP_N_UNARY && src->op == KP_OP_REF) { src = src->a; }
        uint32_t base = kp_cg_reg_alloc(c);
        kp_cg_reg_alloc(c);
        uint32_t v1 = kp_cg_reg_alloc(c), v2 = kp_cg_reg_alloc(c);
        KpType *owned = NULL; /* the loop owns its container: ITEREND drops it */
        bool owns = true;
        if (mode == 2) owned = kp_cg_expr(c, src, base, M_VALUE);
        else if (kp_resolve_is_place(src)) { kp_cg_place_ref(c, src, base, KP_VF_PLACE | (mode == 1 ? KP_VF_MUT : 0)); owns = false; }
        else owned = kp_cg_expr(c, src, base, M_VALUE);
        kp_cg_at(c, n);
        uint8_t d = (uint8_t)(mode | (n->name2 ? 4 : 0));
        uint32_t prep = kp_cg_emit_sbx(c, KP_BC_ITERPREP, base, 0);
        c->fn->p->code[prep].d = d;
        uint32_t jnext = kp_cg_emit_sbx(c, KP_BC_JMP, 0, 0);
        uint32_t body = kp_cg_pc(c);
        push_loop(c);
        kp_own_push_scope(c);
        if (n->name2) {
            Local *kv = kp_resolve_add_local(c, kp_compile_intern(c, n->name), v1, NULL);
            kv->decl = n;
            kv->decl_bit = KP_F_DROPS;
            Local *ev = kp_resolve_add_local(c, kp_compile_intern(c, n->name2), v2, NULL);
            ev->decl = n;
            ev->decl_bit = KP_F_DROPS2;
            if (mode == 1) ev->through = 1;
        } else {
            /* n->stype: the element type when the types pass knows it is
             * a scalar the loop copies into v1 */
            Local *ev = kp_resolve_add_local(c, kp_compile_intern(c, n->name), v1, mode == 1 ? NULL : n->stype);
            ev->decl = n;
            ev->decl_bit = KP_F_DROPS;
            if (mode == 1) ev->through = 1;
        }
        if (n->b) kp_cg_block_body(c, n->b);
        kp_own_pop_scope(c, true);
        uint32_t cont = kp_cg_pc(c);
        kp_cg_patch(c, jnext, cont);
        kp_cg_at(c, n);
        uint32_t nx = kp_cg_emit_sbx(c, KP_BC_ITERNEXT, base, 0);
        c->fn->p->code[nx].d = d;
        kp_cg_patch(c, nx, body);
        uint32_t end = kp_cg_pc(c);
        kp_cg_patch(c, prep, end);
        if (owns) kp_own_hint(c, NULL, owned, "the loop's list or map");
        else kp_own_quiet(c);
        kp_cg_emit(c, KP_BC_ITEREND, base, 0, 0, 0);
        pop_loop(c, end, cont);
    }
    kp_own_pop_scope(c, false);
    kp_cg_reg_free_to(c, save);
    kp_own_forget_moves_since(c, 0);
}

/* try { body } catch e { handler }: the try block's pc range, its
 * register watermark and the catch's entry go into the proto's try table,
 * which the VM's error path reads (vm.c catch_error); the catch variable
 * is a local of the handler's scope, in the first register above the
 * try block's, where the VM puts the Error. */
static void compile_try(C *c, KpNode *n) {
    Fn *f = c->fn;
    uint32_t save = f->freereg;
    GROW(c, f->p->tries, &f->cap_tries, f->p->ntries);
    uint32_t ti = f->p->ntries++;
    f->p->tries[ti] = (KpTryInfo){kp_cg_pc(c), 0, 0, save, save, 0, 0};
    compile_body(c, n->a);
    kp_own_forget_moves_since(c, 0);
    kp_cg_at(c, n);
    uint32_t jend = kp_cg_emit_sbx(c, KP_BC_JMP, 0, 0);
    f->p->tries[ti].end_pc = kp_cg_pc(c);
    f->p->tries[ti].catch_pc = kp_cg_pc(c);
    kp_own_push_scope(c);
    uint32_t er = kp_cg_reg_alloc(c);
    f->p->tries[ti].err_reg = er;
    Local *l = kp_resolve_add_local(c, kp_compile_intern(c, n->name ? n->name : "_"), er, c->vm->t_error);
    l->decl = n;
    l->decl_bit = KP_F_DROPS;
    if (n->b) {
        f->p->tries[ti].line = n->b->line;
        f->p->tries[ti].col = n->b->col;
    }
    if (n->b && n->b->kind == KP_N_BLOCK) {
        kp_cg_at(c, n->b);
        kp_own_note_catch(c, l->name);
        kp_cg_block_body(c, n->b);
    }
    kp_own_pop_scope(c, true);
    kp_cg_patch(c, jend, kp_cg_pc(c));
    kp_own_forget_moves_since(c, 0);
    kp_cg_reg_free_to(c, save);
}

/* Builds the return value of a function with named outputs into r. */
static void emit_outputs(C *c, uint32_t r) {
    Fn *f = c->fn;
    if (f->nouts == 1) {
        kp_cg_emit(c, KP_BC_MOVE, r, f->out_reg, 0, 0);
    } else {
        kp_cg_emit(c, KP_BC_NEWREC, r, kp_cg_add_k(c, kp_ptr(KP_T_TYPE, f->out_type)), f->out_reg, 0);
    }
}

static void compile_return(C *c, KpNode *n) {
    Fn *f = c->fn;
    if (f->is_main && c->func_depth == 0) {
        kp_compile_error(c, n, "return outside a function");
        return;
    }
    uint32_t save = f->freereg;
    if (n->a && n->a->kind == KP_N_IDENT && f->ndefers == 0) {
        bool global;
        struct KpGlobal *g;
        Local *l = kp_resolve_lookup_var(c, kp_compile_intern(c, n->a->name), &global, &g);
        if (l && l != (Local *)1 && !global) {
            kp_cg_at(c, n);
            kp_cg_emit(c, KP_BC_RET, l->reg, 0, 0, 0);
            return;
        }
    }
    uint32_t r = kp_cg_reg_alloc(c);
    if (n->a) {
        if (n->a->kind == KP_N_CALL) kp_cg_call(c, n->a, r, f->ret);
        else kp_cg_expr(c, n->a, r, M_VALUE);
        if (n->a->kind == KP_N_FIELD || n->a->kind == KP_N_INDEX) kp_cg_take(c, r);
    } else if (f->nouts) {
        kp_cg_at(c, n);
        emit_outputs(c, r);
    } else {
        kp_cg_emit(c, KP_BC_LOADUNIT, r, 0, 0, 0);
    }
    kp_cg_at(c, n);
    if (f->ndefers > 0) kp_own_emit_exit(c, 0, 0); /* defers and drops in order */
    kp_cg_emit(c, KP_BC_RET, r, 0, 0, 0);
    kp_cg_reg_free_to(c, save);
}

static void compile_jump(C *c, KpNode *n, bool is_break) {
    Fn *f = c->fn;
    if (f->nloops == 0) {
        kp_compile_error(c, n, "%s outside a loop", is_break ? "break" : "continue");
        return;
    }
    Loop *lp = &f->loops[f->nloops - 1];
    kp_cg_at(c, n);
    kp_own_emit_exit(c, lp->depth, lp->ndefers);
    uint32_t j = kp_cg_emit_sbx(c, KP_BC_JMP, 0, 0);
    lp = &f->loops[f->nloops - 1];
    if (is_break) loop_add(c, &lp->breaks, &lp->nbreaks, &lp->cap_breaks, j);
    else loop_add(c, &lp->conts, &lp->nconts, &lp->cap_conts, j);
}

void kp_cg_stmt(C *c, KpNode *n) {
    if (!n) return;
    kp_cg_at(c, n);
    uint32_t save = c->fn->freereg;
    switch (n->kind) {
    case KP_N_DECL: compile_decl(c, n); return;
    case KP_N_ASSIGN: compile_assign(c, n); break;
    case KP_N_EXPRSTMT: {
        uint32_t r = kp_cg_reg_alloc(c);
        KpType *t = kp_cg_expr(c, n->a, r, M_BORROW);
        if (!kp_types_scalar(c->vm, t)) {
            kp_own_hint(c, NULL, t, "the statement's value, unused");
            kp_cg_emit(c, KP_BC_DROP, r, 1, 0, 0);
        }
        break;
    }
    case KP_N_BLOCK: compile_body(c, n); break;
    case KP_N_IF: compile_if(c, n); kp_own_forget_moves_since(c, 0); break;
    case KP_N_WHILE: compile_while(c, n); break;
    case KP_N_FOR: compile_for(c, n); break;
    case KP_N_BREAK: compile_jump(c, n, true); break;
    case KP_N_CONTINUE: compile_jump(c, n, false); break;
    case KP_N_RETURN: compile_return(c, n); break;
    case KP_N_DEFER: kp_own_defer(c, n); break;
    case KP_N_TYPEDECL:
    case KP_N_FUNC: break; /* hoisted */
    case KP_N_KEEP: kp_own_keep(c, n); break;
    case KP_N_USING: kp_own_using(c, n); break;
    case KP_N_TRY: compile_try(c, n); break;
    default: {
        uint32_t r = kp_cg_reg_alloc(c);
        KpType *t = kp_cg_expr(c, n, r, M_BORROW);
        if (!kp_types_scalar(c->vm, t)) {
            kp_own_hint(c, NULL, t, "the statement's value, unused");
            kp_cg_emit(c, KP_BC_DROP, r, 1, 0, 0);
        }
        break;
    }
    }
    kp_cg_reg_free_to(c, save);
}

void kp_cg_block_body(C *c, KpNode *block) {
    if (c->fn->depth >= 0 && c->fn->depth < 64) c->fn->blocks[c->fn->depth] = block;
    kp_resolve_hoist_block(c, &block->list);
    kp_tc_block(c, block);
    kp_own_pass(c, block);
    for (int i = 0; i < block->list.count; i++) kp_cg_stmt(c, block->list.items[i]);
}

void kp_cg_function(C *c, KpNode *n, KpOverload *ov) {
    Fn fn;
    memset(&fn, 0, sizeof fn);
    fn.outer = c->fn;
    fn.p = kp_compile_new_proto(c, ov->func->name);
    fn.ret = ov->ret;
    fn.line = n->line;
    fn.col = n->col;
    Fn *outer = c->fn;
    c->fn = &fn;
    c->func_depth++;
    int save_npipe = c->npipe;
    c->npipe = 0;
    ov->proto = fn.p;
    fn.p->nparams = ov->nparams;
    fn.p->ret = ov->ret;
    kp_own_scan_keeps(c, &fn, n->b);
    if (!c->own_dead) kp_own_note_summary(c, ov); /* for the listing */
    kp_own_push_scope(c);
    for (int i = 0; i < ov->nparams; i++) {
        uint32_t r = kp_cg_reg_alloc(c);
        KpParam *p = &ov->params[i];
        const char *pname = p->name ? p->name : kp_compile_intern(c, "_");
        Local *pl = kp_resolve_add_local(c, pname, r, p->type);
        if (p->mode == KP_PM_MUTREF) pl->through = 1;
        else if (p->mode == KP_PM_REF) pl->through = 2;
    }
    if (n->a && n->a->kind == KP_N_OUTPUTS) {
        fn.nouts = n->a->list.count;
        fn.out_reg = fn.freereg;
        for (int i = 0; i < fn.nouts; i++) {
            KpNode *o = n->a->list.items[i];
            uint32_t r = kp_cg_reg_alloc(c);
            KpType *t = o->a ? kp_types_resolve(c, o->a) : NULL;
            kp_resolve_add_local(c, kp_compile_intern(c, o->name ? o->name : "_"), r, t);
        }
        if (fn.nouts > 1) fn.out_type = ov->ret;
        fn.p->named_outputs = 1;
        kp_own_quiet(c);
        kp_cg_emit(c, KP_BC_DROP, fn.out_reg, (uint32_t)fn.nouts, 0, 0); /* unset until assigned */
    }
    kp_own_push_scope(c);
    kp_cg_block_body(c, n->b);
    /* falling off the end: the result, then the defers and drops in order
     * (after a final `return`, code that never runs: not in the record) */
    KpNode *last = n->b && n->b->list.count ? n->b->list.items[n->b->list.count - 1] : NULL;
    bool dead = c->own_dead;
    if (last && last->kind == KP_N_RETURN) c->own_dead = true;
    uint32_t r = kp_cg_reg_alloc(c);
    if (fn.nouts) emit_outputs(c, r);
    else if (fn.ndefers == 0 && (!fn.ret || fn.ret == c->vm->t_unit)) {
        /* a function of no result falling off its end: RET0 (one
         * instruction instead of LOADUNIT + RET) */
        kp_cg_emit(c, KP_BC_RET0, 0, 0, 0, 0);
        goto done;
    } else kp_cg_emit(c, KP_BC_LOADUNIT, r, 0, 0, 0);
    if (fn.ndefers > 0) kp_own_emit_exit(c, 0, 0);
    kp_cg_emit(c, KP_BC_RET, r, 0, 0, 0);
done:
    c->own_dead = dead;
    kp_own_pop_scope(c, false);
    kp_own_pop_scope(c, false);
    kp_own_finish_defers(c);
    c->npipe = save_npipe;
    c->func_depth--;
    c->fn = outer;
    kp_proto_finish(c->vm, fn.p, ov);
    if (c->vm->dump_bytecode) kp_dump_proto(c->vm, fn.p);
}
