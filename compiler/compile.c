/*
 * compile.c — from the AST to bytecode, with the ownership pass built in.
 *
 * Design.  One pass over the AST per function, emitting register bytecode
 * (vm/opcodes.h).  The ownership rules of the brief are decided here:
 *
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
 *    function), a later read is a compile error naming the move.
 *  - Borrows.  A place (variable, field, element) passed as an argument is
 *    passed as an implicit borrow (a REF with KP_VF_PLACE); the callee's
 *    parameter mode decides at run time whether it moves out of the place
 *    (by value) or keeps the reference (& / $&), since overloads are chosen
 *    by the arguments' run-time types.
 *  - Types.  Type declarations are static: the compiler creates their
 *    KpType objects, so field layouts, annotations and signatures are
 *    resolved here.  `x := e` gives x the static type of e when the compiler
 *    can tell it; assignments to typed variables are checked (statically
 *    when possible, with CHECK otherwise).
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "../compiler/compiler.h"
#include "../parser/ast.h"
#include "../vm/vm.h"

/* ------------------------------------------------------------ state */

typedef struct Local Local;
struct Local {
    const char *name;
    uint32_t reg;
    KpType *type;      /* static type, or NULL */
    bool global;       /* top-level variable: reg is an absolute stack slot */
    int depth;
    uint32_t moved_line, moved_col; /* certain move, 0 = none */
    uint32_t start_pc;
    uint8_t using_mark; /* the hidden local of a `using` block */
    uint8_t through;    /* holds a reference: 1 = $& (assignment writes
                           through it), 2 = & (assignment is an error) */
    uint32_t using_alloc; /* its allocator's register (NO_REG: not a local) */
    uint32_t decl_line;   /* where it was declared */
    uint8_t boxed;        /* a kept variable (lives in a keep box) */
    uint8_t addr_taken;   /* a reference to it was made: its register is
                             cleared at scope exit even when it holds a
                             scalar, so the reference is seen to die */
    const char *holds_ref; /* a record variable holding a reference to this
                              function's local `holds_ref` (set by h.f = &x) */
    KpNode *using_node;
};

typedef struct TypeBind {
    const char *name;
    KpType *type;
    KpNode *generic;   /* generic declaration, or NULL */
    int depth;         /* compiler-wide block depth */
} TypeBind;

typedef struct ActiveDefer {
    KpNode *stmt;
    int depth;
    uint32_t watermark;
    uint32_t info;     /* index in proto->defers */
} ActiveDefer;

typedef struct Loop {
    int depth;          /* block depth of the loop's body scope minus one */
    int ndefers;        /* active defers when the loop began */
    uint32_t *breaks;
    int nbreaks, cap_breaks;
    uint32_t *conts;
    int nconts, cap_conts;
} Loop;

typedef struct Fn {
    struct Fn *outer;
    KpProto *p;
    uint32_t cap_code, cap_k, cap_calls, cap_defers, cap_locals;
    Local *locals;
    int nlocals, cap_loc;
    int depth;
    uint32_t freereg;
    Loop *loops;
    int nloops, cap_loops;
    ActiveDefer *defers;
    int ndefers, cap_adef;
    KpNode **pending_defers; /* compiled out of line at the end */
    uint32_t *pending_info;
    int npending, cap_pending, cap_pinfo;
    KpType *ret;
    int nouts;
    uint32_t out_reg;
    KpType *out_type;   /* anonymous record for several outputs */
    bool is_main;
    uint32_t line, col;
    /* keep: the variables this function keeps (boxed from their
     * declaration), and the keep edges seen so far (owner -> kept) */
    struct {
        const char *name;
        KpNode *using_expr;
    } kept[64];
    int nkept;
    struct {
        const char *owner, *kept;
        uint32_t line;
    } kedges[64];
    int nkedges;
    KpNode *blocks[64]; /* the block being compiled at each depth */
} Fn;

typedef struct PipeVal {
    uint32_t reg;        /* register holding the value (or the place) */
    bool place;          /* reg is a variable (not a temporary) */
    bool global;
    bool boxed;          /* reg holds a reference to a kept value */
} PipeVal;

typedef struct C {
    KpVM *vm;
    const KpSource *src;
    KpDiags *diags;
    Fn *fn;
    TypeBind *types;
    int ntypes, cap_types;
    int tdepth;
    PipeVal pipe[64];
    int npipe;
    int nerrors_at_start;
    bool repl;
    int func_depth;
    int using_depth;
    /* temporaries an argument borrows from (`f(mk().x)`): evaluated before
     * the call, dropped after it returns */
    int depth_guard;     /* expression nesting, bounded */
    /* `x := … | keep _ with x | …`: the box waits for x to exist */
    const char *pending_name;
    uint32_t pending_reg;
    bool pending_used;
    struct TypeBind tb_scratch;
    KpNode *pinned_node[32];
    uint32_t pinned_reg[32];
    int npinned;
} C;

#define NO_REG 0xffffffffu

static void error_at(C *c, KpNode *n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void error_at(C *c, KpNode *n, const char *fmt, ...) {
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    kp_diag_add(c->diags, n ? n->line : c->fn->line, n ? n->col : c->fn->col, "%s", buf);
}

static void *grow(C *c, void *arr, uint32_t *cap, uint32_t n, size_t elem) {
    if (n < *cap) return arr;
    uint32_t ncap = *cap ? *cap * 2 : 16;
    void *q = kp_realloc(c->vm->meta, arr, elem * *cap, elem * ncap, 16, NULL);
    if (!q) return NULL;
    *cap = ncap;
    return q;
}
#define GROW(c, arr, cap, n) ((arr) = grow((c), (arr), (cap), (n), sizeof *(arr)))

static int igrow_cap(int cap) { return cap ? cap * 2 : 16; }
#define IGROW(c, arr, n, cap)                                                         \
    do {                                                                              \
        if ((n) >= (cap)) {                                                           \
            int nc_ = igrow_cap(cap);                                                 \
            void *q_ = kp_realloc((c)->vm->meta, (arr), sizeof *(arr) * (size_t)(cap), \
                                  sizeof *(arr) * (size_t)nc_, 16, NULL);             \
            (arr) = q_;                                                               \
            (cap) = nc_;                                                              \
        }                                                                             \
    } while (0)

/* ------------------------------------------------------------ emission */

static void at(C *c, KpNode *n) {
    if (n && n->line) {
        c->fn->line = n->line;
        c->fn->col = n->col;
    }
}

static uint32_t pc(C *c) { return c->fn->p->ncode; }
static bool fold_number(KpNode *n, KpValue *out);

static uint32_t emit(C *c, uint8_t op, uint32_t a, uint32_t b, uint32_t cc, uint8_t d) {
    Fn *f = c->fn;
    KpProto *p = f->p;
    uint32_t cap = f->cap_code;
    GROW(c, p->code, &f->cap_code, p->ncode);
    GROW(c, p->lines, &cap, p->ncode);
    if (!p->code || !p->lines) return 0;
    KpInstr *i = &p->code[p->ncode];
    i->op = op;
    i->d = d;
    i->a = (uint16_t)a;
    i->b = (uint16_t)b;
    i->c = (uint16_t)cc;
    p->lines[p->ncode] = (KpLineInfo){f->line, f->col};
    return p->ncode++;
}

static uint32_t emit_sbx(C *c, uint8_t op, uint32_t a, int32_t sbx) {
    uint32_t i = emit(c, op, a, 0, 0, 0);
    c->fn->p->code[i].sbx = sbx;
    return i;
}

/* Patches jump `at` to land on `target`. */
static void patch(C *c, uint32_t j, uint32_t target) {
    KpInstr *i = &c->fn->p->code[j];
    int32_t off = (int32_t)target - (int32_t)(j + 1);
    switch (i->op) {
    case KP_BC_JLT: case KP_BC_JLE: case KP_BC_JEQ: case KP_BC_JNE:
    case KP_BC_JLTI: case KP_BC_JLEI: case KP_BC_JGTI: case KP_BC_JGEI:
        if (off < -(1 << 23) || off >= (1 << 23)) {
            error_at(c, NULL, "function too large (a jump spans over 8 million instructions)");
            return;
        }
        i->c = (uint16_t)(off & 0xffff);
        i->d = (uint8_t)((off >> 16) & 0xff);
        break;
    default:
        i->sbx = off;
    }
}

static uint32_t add_k(C *c, KpValue v) {
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
        error_at(c, NULL, "too many constants in one function (32767 at most)");
        return 0;
    }
    p->k[p->nk] = v;
    return p->nk++;
}

static KpString *const_str(C *c, const char *s, size_t len) {
    KpString *str = kp_str_new(c->vm, c->vm->meta, s, len);
    if (str) str->h.flags |= KP_OF_IMMORTAL;
    return str;
}

static uint32_t k_name(C *c, const char *name) {
    return add_k(c, kp_ptr(KP_T_NAME, (void *)kp_intern(c->vm, name, strlen(name))));
}

static uint32_t reg_alloc(C *c) {
    Fn *f = c->fn;
    uint32_t r = f->freereg++;
    if (f->freereg > 30000) {
        error_at(c, NULL, "function too large (more than 30000 registers)");
        f->freereg = 30000;
        return 29999;
    }
    if (f->freereg > f->p->nregs) f->p->nregs = f->freereg;
    return r;
}

static void reg_free_to(C *c, uint32_t mark) { c->fn->freereg = mark; }

/* ------------------------------------------------------------ scopes */

static Local *find_local(Fn *f, const char *name) {
    for (int i = f->nlocals - 1; i >= 0; i--)
        if (f->locals[i].name == name) return &f->locals[i];
    return NULL;
}

static Local *add_local(C *c, const char *name, uint32_t reg, KpType *t) {
    Fn *f = c->fn;
    IGROW(c, f->locals, f->nlocals, f->cap_loc);
    Local *l = &f->locals[f->nlocals++];
    memset(l, 0, sizeof *l);
    l->name = name;
    l->reg = reg;
    l->type = t;
    l->depth = f->depth;
    l->start_pc = pc(c);
    l->decl_line = f->line;
    return l;
}

static void note_local_info(C *c, Local *l) {
    KpProto *p = c->fn->p;
    GROW(c, p->locals, &c->fn->cap_locals, p->nlocals);
    p->locals[p->nlocals++] = (KpLocalInfo){l->name, l->reg, l->start_pc, pc(c)};
}

static void compile_stmt(C *c, KpNode *n);
static void compile_using(C *c, KpNode *n);
static void add_kedge(C *c, const char *owner, const char *kept, uint32_t line);
static void check_outlives_allocator(C *c, KpNode *n, Local *target, KpType *st);
static bool type_scalar(KpVM *vm, KpType *t);
static void compile_block_body(C *c, KpNode *block);
static KpType *expr_to(C *c, KpNode *n, uint32_t dst, int mode);
static KpType *resolve_type(C *c, KpNode *n);

enum { M_VALUE = 0, M_BORROW = 1 };

/* Emits the drops of locals with register >= `floor_reg` declared in
 * scopes deeper than `depth`, interleaving the inline copies of the
 * defers registered deeper than `depth` (newest first).  Does not pop. */
static void emit_exit(C *c, int depth, int ndefers_floor) {
    Fn *f = c->fn;
    /* registers of locals deeper than depth: a contiguous range at the top
     * of the locals (they are allocated in order) */
    uint32_t top = NO_REG, bottom = NO_REG;
    for (int i = f->nlocals - 1; i >= 0 && f->locals[i].depth > depth; i--) {
        if (f->locals[i].global || (type_scalar(c->vm, f->locals[i].type) && !f->locals[i].addr_taken)) continue;
        if (top == NO_REG) top = f->locals[i].reg + 1;
        bottom = f->locals[i].reg;
    }
    uint32_t hi = top;
    for (int d = f->ndefers - 1; d >= ndefers_floor; d--) {
        ActiveDefer *ad = &f->defers[d];
        if (ad->depth <= depth) break;
        if (hi != NO_REG && hi > ad->watermark && bottom != NO_REG) {
            uint32_t lo = ad->watermark > bottom ? ad->watermark : bottom;
            if (hi > lo) emit(c, KP_BC_DROP, lo, hi - lo, 0, 0);
            hi = lo;
        }
        /* inline copy of the deferred statement */
        uint32_t save = f->freereg;
        int save_n = f->ndefers;
        f->ndefers = d; /* a defer body does not see itself or later ones */
        compile_stmt(c, ad->stmt);
        f->ndefers = save_n;
        reg_free_to(c, save);
    }
    if (hi != NO_REG && bottom != NO_REG && hi > bottom)
        emit(c, KP_BC_DROP, bottom, hi - bottom, 0, 0);
}

static void push_scope(C *c) {
    c->fn->depth++;
    c->tdepth++;
}

static void pop_scope(C *c, bool emit_drops) {
    Fn *f = c->fn;
    if (emit_drops) emit_exit(c, f->depth - 1, 0);
    /* close defers of this scope: their pc range ends here, and their
     * out-of-line bodies (run when a runtime error unwinds) go here, where
     * the scope's locals are still visible */
    int first = f->ndefers;
    while (first > 0 && f->defers[first - 1].depth >= f->depth) first--;
    if (first < f->ndefers) {
        for (int d = first; d < f->ndefers; d++) f->p->defers[f->defers[d].info].end_pc = pc(c);
        uint32_t jover = emit_sbx(c, KP_BC_JMP, 0, 0);
        int nd = f->ndefers;
        for (int d = first; d < nd; d++) {
            KpDeferInfo *di = &f->p->defers[f->defers[d].info];
            uint32_t save = f->freereg;
            f->freereg = f->defers[d].watermark;
            f->ndefers = 0;
            di = &f->p->defers[f->defers[d].info];
            di->code_pc = pc(c);
            compile_stmt(c, f->defers[d].stmt);
            emit(c, KP_BC_DEFEREND, 0, 0, 0, 0);
            f->ndefers = nd;
            f->freereg = save;
        }
        patch(c, jover, pc(c));
        f->ndefers = first;
    }
    uint32_t low = NO_REG;
    while (f->nlocals > 0 && f->locals[f->nlocals - 1].depth >= f->depth) {
        Local *l = &f->locals[f->nlocals - 1];
        note_local_info(c, l);
        if (!l->global) low = l->reg;
        f->nlocals--;
    }
    if (low != NO_REG) reg_free_to(c, low);
    while (c->ntypes > 0 && c->types[c->ntypes - 1].depth >= c->tdepth) c->ntypes--;
    f->depth--;
    c->tdepth--;
}

/* ------------------------------------------------------------ names */

static const char *intern(C *c, const char *s) { return kp_intern(c->vm, s, strlen(s)); }

static TypeBind *find_type(C *c, const char *name) {
    for (int i = c->ntypes - 1; i >= 0; i--)
        if (c->types[i].name == name) return &c->types[i];
    for (uint32_t i = 0; i < c->vm->ntypes; i++)
        if (c->vm->types[i].name == name) {
            c->tb_scratch = (TypeBind){name, c->vm->types[i].type, c->vm->types[i].generic, 0};
            return &c->tb_scratch;
        }
    return NULL;
}

static KpFunc *find_func(C *c, const char *name) {
    for (uint32_t i = 0; i < c->vm->nfuncs; i++)
        if (c->vm->funcs[i]->name == name) return c->vm->funcs[i];
    return NULL;
}

/* A top-level variable by name: one from an earlier chunk (REPL line,
 * host run) before one this chunk is about to declare, so that
 * `x := x + 1` reads the old x. */
static struct KpGlobal *find_global(C *c, const char *name) {
    for (uint32_t i = c->vm->nglobals; i-- > 0;)
        if (c->vm->globals[i].name == name && !c->vm->globals[i].pending) return &c->vm->globals[i];
    for (uint32_t i = c->vm->nglobals; i-- > 0;)
        if (c->vm->globals[i].name == name) return &c->vm->globals[i];
    return NULL;
}

/* ------------------------------------------------------------ types */

static KpType *new_type(C *c, KpTypeKind kind, const char *name) {
    KpType *t = kp_arena_alloc(&c->vm->meta_arena, sizeof(KpType), 16);
    memset(t, 0, sizeof *t);
    t->kind = (uint8_t)kind;
    t->name = name;
    return t;
}

/* Derived types (List#(T), HashMap#(K,V), &T, anonymous records) are
 * interned so that equal types are the same pointer. */
static KpType *derived_type(C *c, KpTypeKind kind, KpType *elem, KpType *key, int refmode) {
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
    KpType *t = new_type(c, kind, kp_intern(vm, buf, strlen(buf)));
    t->elem = elem;
    t->key = key;
    t->refmode = (uint8_t)refmode;
    IGROW(c, vm->derived, (int)vm->nderived, vm->cap_derived);
    vm->derived[vm->nderived++] = t;
    return t;
}

/* Anonymous record type with these field names (and types), interned. */
static KpType *anon_type(C *c, int n, const char **names, KpType **types) {
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
    KpType *t = new_type(c, KP_TK_RECORD, kp_intern(vm, buf, strlen(buf)));
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

static KpType *builtin_type(C *c, const char *name) {
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
    if (!strcmp(name, "Function")) return vm->t_func;
    if (!strcmp(name, "AllocStats")) return vm->t_allocstats;
    for (int k = 0; k < KP_AK__COUNT; k++)
        if (!strcmp(name, vm->t_akind[k]->name)) return vm->t_akind[k];
    for (size_t i = 0; i < sizeof sized / sizeof *sized; i++)
        if (!strcmp(name, sized[i].n)) return vm->t_sized[sized[i].idx];
    return NULL;
}

static KpType *instantiate(C *c, TypeBind *tb, KpNode *gen_use);

static KpType *resolve_type(C *c, KpNode *n) {
    if (!n) return NULL;
    switch (n->kind) {
    case KP_N_UNIT: return c->vm->t_unit;
    case KP_N_IDENT: {
        const char *name = intern(c, n->name);
        TypeBind *tb = find_type(c, name);
        if (tb) {
            if (tb->generic) {
                error_at(c, n, "generic type %s needs arguments: %s#(...)", name, name);
                return NULL;
            }
            return tb->type;
        }
        KpType *t = builtin_type(c, name);
        if (t) return t;
        error_at(c, n, "unknown type '%s'", n->name);
        return NULL;
    }
    case KP_N_FIELD: {
        if (n->a && n->a->kind == KP_N_IDENT && !strcmp(n->a->name, "System")) {
            if (!strcmp(n->name, "Memory")) return c->vm->t_sysmem;
            if (!strcmp(n->name, "Fs")) return c->vm->t_sysfs;
            return c->vm->t_system;
        }
        error_at(c, n, "unknown type");
        return NULL;
    }
    case KP_N_REFTYPE: {
        KpType *e = resolve_type(c, n->a);
        if (n->op == KP_OP_MOVE) return e;
        return derived_type(c, KP_TK_REF, e, NULL, n->op == KP_OP_MUTREF ? 2 : 1);
    }
    case KP_N_UNARY:
        if (n->op == KP_OP_REF || n->op == KP_OP_MUTREF) {
            KpType *e = resolve_type(c, n->a);
            return derived_type(c, KP_TK_REF, e, NULL, n->op == KP_OP_MUTREF ? 2 : 1);
        }
        break;
    case KP_N_GENERIC: {
        if (n->a->kind != KP_N_IDENT) break;
        const char *name = intern(c, n->a->name);
        TypeBind *tb = find_type(c, name);
        if (tb && tb->generic) return instantiate(c, tb, n);
        if (!strcmp(name, "List")) {
            if (n->list.count != 1) { error_at(c, n, "List#(T) takes one type"); return NULL; }
            return derived_type(c, KP_TK_LIST, resolve_type(c, n->list.items[0]), NULL, 0);
        }
        if (!strcmp(name, "HashMap") || !strcmp(name, "Hashmap")) {
            if (n->list.count != 2) { error_at(c, n, "HashMap#(K, V) takes two types"); return NULL; }
            KpType *k = resolve_type(c, n->list.items[0]);
            KpType *v = resolve_type(c, n->list.items[1]);
            return derived_type(c, KP_TK_MAP, v, k, 0);
        }
        error_at(c, n, "unknown generic type '%s'", n->a->name);
        return NULL;
    }
    default: break;
    }
    error_at(c, n, "expected a type");
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
    case KP_N_STRING: *out = kp_ptr(KP_T_STR, const_str(c, n->str, n->str_len)); return true;
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

static void fill_record_type(C *c, KpType *t, KpNode *decl) {
    int n = decl->list.count;
    t->nfields = 0;
    t->fnames = kp_arena_alloc(&c->vm->meta_arena, sizeof(char *) * (size_t)(n + 1), 8);
    t->ftypes = kp_arena_alloc(&c->vm->meta_arena, sizeof(KpType *) * (size_t)(n + 1), 8);
    t->defaults = kp_arena_alloc(&c->vm->meta_arena, sizeof(KpValue) * (size_t)(n + 1), 16);
    for (int i = 0; i < n; i++) {
        KpNode *f = decl->list.items[i];
        if (f->kind != KP_N_FIELDDECL) {
            error_at(c, f, "expected a field declaration `.name : Type`");
            continue;
        }
        const char *fname = intern(c, f->name);
        for (uint32_t j = 0; j < t->nfields; j++)
            if (t->fnames[j] == fname) error_at(c, f, "field '%s' is declared twice", f->name);
        uint32_t k = t->nfields++;
        t->fnames[k] = fname;
        t->ftypes[k] = f->a ? resolve_type(c, f->a) : NULL;
        t->defaults[k] = kp_unset();
        if (f->b) {
            KpValue v;
            if (!const_eval(c, f->b, &v)) {
                error_at(c, f->b, "a field default must be a constant (a literal, or a list or map of literals)");
            } else {
                const char *why;
                if (t->ftypes[k] && !kp_type_coerce(c->vm, t->ftypes[k], &v, &why))
                    error_at(c, f->b, "default of field '%s' is %s, but the field is %s%s%s", f->name,
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
        error_at(c, use, "%s takes %d type arguments, got %d", g->name, np, use->list.count);
        return NULL;
    }
    KpType *args[16];
    if (np > 16) { error_at(c, use, "too many type parameters"); return NULL; }
    char buf[512];
    size_t len = (size_t)snprintf(buf, sizeof buf, "%s#(", g->name);
    for (int i = 0; i < np; i++) {
        KpNode *an = use->list.items[i];
        if (an->kind == KP_N_FIELDINIT) an = an->a;
        args[i] = resolve_type(c, an);
        if (!args[i]) return NULL;
        len += (size_t)snprintf(buf + len, sizeof buf - len > len ? sizeof buf - len : 0, "%s%s",
                                i ? ", " : "", args[i]->name);
        if (len >= sizeof buf - 64) len = sizeof buf - 64;
    }
    snprintf(buf + len, sizeof buf - len, ")");
    const char *name = kp_intern(vm, buf, strlen(buf));
    for (uint32_t i = 0; i < vm->ninst; i++)
        if (vm->inst[i]->name == name) return vm->inst[i];
    KpType *t = new_type(c, KP_TK_RECORD, name);
    IGROW(c, vm->inst, (int)vm->ninst, vm->cap_inst);
    vm->inst[vm->ninst++] = t;
    /* bind the parameters as types in a scope of their own */
    c->tdepth++;
    for (int i = 0; i < np; i++) {
        IGROW(c, c->types, c->ntypes, c->cap_types);
        const char *pn = g->list2.items[i]->name ? intern(c, g->list2.items[i]->name) : NULL;
        c->types[c->ntypes++] = (TypeBind){pn, args[i], NULL, c->tdepth};
    }
    fill_record_type(c, t, g);
    while (c->ntypes > 0 && c->types[c->ntypes - 1].depth >= c->tdepth) c->ntypes--;
    c->tdepth--;
    return t;
}

/* --------------------------------------------------------- functions */

static void compile_function(C *c, KpNode *fn, KpOverload *ov);

/* Finds the variables a function body keeps (not looking into nested
 * function declarations): they live in boxes from their declaration. */
static void scan_keeps(C *c, Fn *f, KpNode *n) {
    if (!n || n->kind == KP_N_FUNC || n->kind == KP_N_TYPEDECL) return;
    if (n->kind == KP_N_KEEP && n->a && n->a->kind == KP_N_IDENT && f->nkept < 64) {
        const char *name = intern(c, n->a->name);
        bool dup = false;
        for (int i = 0; i < f->nkept; i++) if (f->kept[i].name == name) dup = true;
        if (!dup) {
            f->kept[f->nkept].name = name;
            f->kept[f->nkept++].using_expr = n->b;
        }
    }
    scan_keeps(c, f, n->a);
    scan_keeps(c, f, n->b);
    scan_keeps(c, f, n->c);
    for (int i = 0; i < n->list.count; i++) scan_keeps(c, f, n->list.items[i]);
}

static int kept_index(Fn *f, const char *name) {
    for (int i = 0; i < f->nkept; i++) if (f->kept[i].name == name) return i;
    return -1;
}

static bool mentions_keep_of(KpNode *n, const char *name) {
    if (!n) return false;
    if (n->kind == KP_N_KEEP) {
        for (int i = 0; i < n->list.count; i++)
            if (n->list.items[i]->kind == KP_N_IDENT && !strcmp(n->list.items[i]->name, name)) return true;
    }
    if (mentions_keep_of(n->a, name) || mentions_keep_of(n->b, name)) return true;
    for (int i = 0; i < n->list.count; i++) if (mentions_keep_of(n->list.items[i], name)) return true;
    return false;
}

static KpOverload *declare_function(C *c, KpNode *n) {
    KpVM *vm = c->vm;
    const char *name = intern(c, n->name);
    KpFunc *f = kp_func_get(vm, name, true);
    if (!f) return NULL;
    if (f->special) {
        if (strcmp(name, "deinit") != 0) {
            error_at(c, n, "'%s' is a built-in and cannot be redefined", n->name);
            return NULL;
        }
    }
    KpOverload *ov = kp_arena_alloc(&vm->meta_arena, sizeof(KpOverload), 16);
    memset(ov, 0, sizeof *ov);
    ov->func = f;
    ov->nparams = (uint16_t)n->list.count;
    ov->params = kp_arena_alloc(&vm->meta_arena, sizeof(KpParam) * (size_t)(n->list.count + 1), 16);
    ov->file = c->src->name;
    ov->line = n->line;
    for (int i = 0; i < n->list.count; i++) {
        KpNode *pn = n->list.items[i];
        KpParam *p = &ov->params[i];
        memset(p, 0, sizeof *p);
        p->def = kp_unset();
        if (pn->kind == KP_N_HOLE) continue;
        if (pn->kind != KP_N_PARAM) {
            error_at(c, pn, "expected a parameter");
            continue;
        }
        p->name = pn->name ? intern(c, pn->name) : NULL;
        p->named = (pn->flags & KP_F_NAMED) != 0;
        KpNode *tn = pn->a;
        if (tn && (tn->kind == KP_N_REFTYPE || (tn->kind == KP_N_UNARY && (tn->op == KP_OP_REF || tn->op == KP_OP_MUTREF)))) {
            p->mode = tn->op == KP_OP_MUTREF ? KP_PM_MUTREF : tn->op == KP_OP_REF ? KP_PM_REF : KP_PM_VALUE;
            tn = tn->a;
        }
        p->type = tn ? resolve_type(c, tn) : NULL;
        if (p->type && p->type->kind == KP_TK_ANY) p->type = NULL;
        p->fast_tag = !p->type ? 0 : (p->type->kind == KP_TK_SCALAR ? p->type->tag : 255);
        if (pn->b) {
            if (!const_eval(c, pn->b, &p->def))
                error_at(c, pn->b, "a parameter default must be a constant");
        }
        for (int j = 0; j < i; j++)
            if (p->name && ov->params[j].name == p->name)
                error_at(c, pn, "parameter '%s' is declared twice", pn->name);
    }
    if (n->a) {
        if (n->a->kind == KP_N_OUTPUTS) {
            int no = n->a->list.count;
            if (no == 1) {
                ov->ret = n->a->list.items[0]->a ? resolve_type(c, n->a->list.items[0]->a) : NULL;
            } else if (no > 1) {
                const char *names[64];
                KpType *types[64];
                if (no > 64) no = 64;
                for (int i = 0; i < no; i++) {
                    KpNode *o = n->a->list.items[i];
                    names[i] = intern(c, o->name ? o->name : "_");
                    types[i] = o->a ? resolve_type(c, o->a) : NULL;
                }
                ov->ret = anon_type(c, no, names, types);
            }
        } else {
            ov->ret = resolve_type(c, n->a);
        }
    }
    /* a second overload with the same parameter types is an error */
    for (uint32_t i = 0; i < f->n; i++) {
        KpOverload *o = f->ovs[i];
        if (o->nparams != ov->nparams || o->native) continue;
        bool same = o->ret == ov->ret;
        for (int j = 0; j < ov->nparams && same; j++)
            same = o->params[j].type == ov->params[j].type;
        if (same && !c->repl) {
            error_at(c, n, "'%s' is already defined with these parameter types (at line %u)", n->name, o->line);
            return NULL;
        }
        if (same && c->repl) { /* the REPL redefines */
            f->ovs[i] = ov;
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
    f->ovs[f->n++] = ov;
added:
    if (name == intern(c, "deinit")) {
        KpType *t = ov->nparams == 1 ? ov->params[0].type : NULL;
        if (!t || t->kind != KP_TK_RECORD || ov->params[0].mode != KP_PM_MUTREF) {
            error_at(c, n, "a deinit overload takes one parameter of a record type, as $&T: deinit (.x: $&T) -> ()");
        } else if (t->user_deinit && t->user_deinit != ov && !c->repl) {
            error_at(c, n, "%s already has a deinit (at line %u)", t->name, t->user_deinit->line);
        } else {
            t->user_deinit = ov;
        }
    }
    return ov;
}

/* Hoisting: type declarations, then function signatures and bodies. */
static void hoist_block(C *c, KpNodeList *stmts) {
    KpVM *vm = c->vm;
    bool top = c->fn->is_main && c->fn->depth == 0 && c->func_depth == 0;
    /* 1. type shells */
    for (int i = 0; i < stmts->count; i++) {
        KpNode *n = stmts->items[i];
        if (!n || n->kind != KP_N_TYPEDECL) continue;
        const char *name = intern(c, n->name);
        for (int j = c->ntypes - 1; j >= 0 && c->types[j].depth == c->tdepth; j--)
            if (c->types[j].name == name) error_at(c, n, "type '%s' is declared twice in this scope", n->name);
        KpType *t = NULL;
        if (!n->list2.count) {
            t = new_type(c, (n->flags & KP_F_ABSTRACT) ? KP_TK_ABSTRACT : KP_TK_RECORD, name);
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
        TypeBind *tb = find_type(c, intern(c, n->name));
        if (!tb || !tb->type) continue;
        if (n->flags & KP_F_ABSTRACT) {
            KpType *t = tb->type;
            t->nreqs = 0;
            t->reqs = kp_arena_alloc(&vm->meta_arena, sizeof(char *) * (size_t)(n->list.count + 1), 8);
            for (int j = 0; j < n->list.count; j++)
                if (n->list.items[j]->kind == KP_N_FUNC)
                    t->reqs[t->nreqs++] = intern(c, n->list.items[j]->name);
        } else {
            fill_record_type(c, tb->type, n);
        }
    }
    /* 3. function signatures */
    KpOverload **ovs = NULL;
    int novs = 0, cap = 0;
    for (int i = 0; i < stmts->count; i++) {
        KpNode *n = stmts->items[i];
        if (!n || n->kind != KP_N_FUNC) continue;
        if (!n->b) { error_at(c, n, "function '%s' has no body", n->name); continue; }
        IGROW(c, ovs, novs, cap);
        ovs[novs++] = declare_function(c, n);
    }
    /* 4. bodies */
    int k = 0;
    for (int i = 0; i < stmts->count; i++) {
        KpNode *n = stmts->items[i];
        if (!n || n->kind != KP_N_FUNC || !n->b) continue;
        KpOverload *ov = ovs[k++];
        if (ov) compile_function(c, n, ov);
    }
}

/* ------------------------------------------------------------ static types */

static bool is_num(KpVM *vm, KpType *t) { return t == vm->t_int || t == vm->t_float; }

static bool type_movable(KpType *t) {
    return t && (t->kind == KP_TK_RECORD || t->kind == KP_TK_LIST || t->kind == KP_TK_MAP);
}
static bool type_scalar(KpVM *vm, KpType *t) {
    return t && t->kind == KP_TK_SCALAR && t != vm->t_string;
}

/* ------------------------------------------------------------ expressions */

typedef struct Operand {
    uint32_t r;        /* register, or constant | KP_RK_CONST */
    bool temp;         /* a temporary this expression allocated */
    KpType *type;
} Operand;

/* A place is a variable, or a field or element of a place: something that
 * outlives the expression.  A field of a call's result is not one. */
static bool is_place(KpNode *n) {
    while (n->kind == KP_N_FIELD || n->kind == KP_N_INDEX) n = n->a;
    return n->kind == KP_N_IDENT || n->kind == KP_N_HOLE;
}

/* Resolves a local or global variable.  Reports captures. */
static Local *lookup_var(C *c, const char *name, bool *global, struct KpGlobal **g) {
    *global = false;
    *g = NULL;
    Local *l = find_local(c->fn, name);
    if (l) {
        if (l->global) { *global = !c->fn->is_main; *g = find_global(c, name); }
        return l;
    }
    for (Fn *o = c->fn->outer; o; o = o->outer) {
        Local *ol = find_local(o, name);
        if (ol && !ol->global) return (Local *)1; /* capture marker */
    }
    struct KpGlobal *gl = find_global(c, name);
    if (gl) { *global = true; *g = gl; }
    return NULL;
}

static void check_not_moved(C *c, KpNode *n, Local *l) {
    if (l && l->moved_line)
        error_at(c, n, "use of moved value '%s' (moved at line %u:%u)", n->name, l->moved_line, l->moved_col);
}

static void emit_loadk(C *c, uint32_t dst, KpValue v) {
    uint32_t k = add_k(c, v);
    emit_sbx(c, KP_BC_LOADK, dst, (int32_t)k);
}

static KpType *static_binop_type(C *c, int op, KpType *a, KpType *b) {
    KpVM *vm = c->vm;
    switch (op) {
    case KP_OP_EQ: case KP_OP_NE: case KP_OP_LT: case KP_OP_LE: case KP_OP_GT: case KP_OP_GE:
    case KP_OP_AND: case KP_OP_OR:
        return vm->t_bool;
    default:
        if (a == vm->t_int && b == vm->t_int) return vm->t_int;
        if (is_num(vm, a) && is_num(vm, b)) return vm->t_float;
        if (op == KP_OP_ADD && a == vm->t_string && b == vm->t_string) return vm->t_string;
        return NULL;
    }
}

/* An operand for an arithmetic instruction: a constant, a local's register
 * (no copy), or a temporary. */
static Operand operand(C *c, KpNode *n) {
    KpVM *vm = c->vm;
    Operand o = {0, false, NULL};
    if (n->kind == KP_N_INT) {
        o.r = add_k(c, kp_int(n->ival)) | KP_RK_CONST;
        o.type = vm->t_int;
        return o;
    }
    if (n->kind == KP_N_FLOAT) {
        o.r = add_k(c, kp_float(n->fval)) | KP_RK_CONST;
        o.type = vm->t_float;
        return o;
    }
    KpValue folded;
    if ((n->kind == KP_N_BINARY || n->kind == KP_N_UNARY) && fold_number(n, &folded)) {
        o.r = add_k(c, folded) | KP_RK_CONST;
        o.type = folded.tag == KP_T_INT ? vm->t_int : vm->t_float;
        return o;
    }
    if (n->kind == KP_N_IDENT) {
        bool global;
        struct KpGlobal *g;
        Local *l = lookup_var(c, intern(c, n->name), &global, &g);
        if (l && l != (Local *)1 && !global) {
            check_not_moved(c, n, l);
            o.r = l->reg;
            o.type = l->type;
            return o;
        }
    }
    o.r = reg_alloc(c);
    o.temp = true;
    o.type = expr_to(c, n, o.r, M_BORROW);
    return o;
}

static void free_operand(C *c, Operand *o, bool may_own) {
    if (!o->temp) return;
    if (may_own && !type_scalar(c->vm, o->type)) emit(c, KP_BC_DROP, o->r, 1, 0, 0);
}

static KpType *compile_call(C *c, KpNode *n, uint32_t dst, KpType *expect);
static KpType *compile_pipe(C *c, KpNode *n, uint32_t dst);

/* The container of a field or element read: a variable's own register, or
 * a temporary holding the container (borrowed when it is a place). */
static Operand container_operand(C *c, KpNode *n) {
    if (n->kind == KP_N_IDENT) return operand(c, n);
    Operand o = {reg_alloc(c), true, NULL};
    o.type = expr_to(c, n, o.r, M_BORROW);
    return o;
}

static bool is_place(KpNode *n);

/* GETFIELD/GETINDEX flags for a read of a field or element of `container`.
 * Of a temporary value (a call's result...) it is moved out (d 1|16: the
 * temporary dies at once, so even an element may be taken); of a place it
 * is borrowed (8) unless consumed (1). */
static uint8_t read_flags(int mode, KpNode *container) {
    if (!is_place(container)) return 1 | 16;
    return mode == M_VALUE ? 1 : 8;
}

static uint8_t binop_code(int op, bool *swap) {
    *swap = false;
    switch (op) {
    case KP_OP_ADD: return KP_BC_ADD;
    case KP_OP_SUB: return KP_BC_SUB;
    case KP_OP_MUL: return KP_BC_MUL;
    case KP_OP_DIV: return KP_BC_DIV;
    case KP_OP_MOD: return KP_BC_MOD;
    case KP_OP_EQ: return KP_BC_EQ;
    case KP_OP_NE: return KP_BC_NE;
    case KP_OP_LT: return KP_BC_LT;
    case KP_OP_LE: return KP_BC_LE;
    case KP_OP_GT: *swap = true; return KP_BC_LT;
    case KP_OP_GE: *swap = true; return KP_BC_LE;
    }
    return KP_BC_NOP;
}

/* Compiles a place for a borrow: dst := REF(place) with flags. */
/* GETFIELD/GETINDEX/GETG `d` bits for a reference with value flags. */
static uint8_t ref_flags(uint8_t vflags) {
    return (uint8_t)(2 | ((vflags & KP_VF_MUT) ? 4 : 0) | ((vflags & KP_VF_PLACE) ? 8 : 0));
}

static uint32_t pinned(C *c, KpNode *n) {
    for (int i = c->npinned - 1; i >= 0; i--)
        if (c->pinned_node[i] == n) return c->pinned_reg[i];
    return NO_REG;
}

static KpNode *place_root(KpNode *n) {
    while (n->kind == KP_N_FIELD || n->kind == KP_N_INDEX) n = n->a;
    return n;
}

static KpType *compile_place_ref(C *c, KpNode *n, uint32_t dst, uint8_t flags) {
    at(c, n);
    uint32_t pr = pinned(c, n);
    if (pr != NO_REG) {
        emit(c, KP_BC_REF, dst, pr, 0, flags);
        return NULL;
    }
    switch (n->kind) {
    case KP_N_IDENT: {
        bool global;
        struct KpGlobal *g;
        const char *name = intern(c, n->name);
        Local *l = lookup_var(c, name, &global, &g);
        if (l == (Local *)1) {
            error_at(c, n, "cannot use local variable '%s' of an enclosing function (closures are not supported)", n->name);
            return NULL;
        }
        if (l && !global) {
            check_not_moved(c, n, l);
            l->addr_taken = 1;
            emit(c, KP_BC_REF, dst, l->reg, 0, (uint8_t)(flags | (l->through ? 16 : 0)));
            return l->type;
        }
        if (global) {
            if (c->fn->is_main && c->func_depth == 0 && !l && g->pending) {
                error_at(c, n, "'%s' is used before its declaration", n->name);
                return NULL;
            }
            emit(c, KP_BC_GETG, dst, g->reg, 0, ref_flags(flags));
            return g->type;
        }
        /* not a variable: a value (function, type...) */
        return expr_to(c, n, dst, M_BORROW);
    }
    case KP_N_HOLE: {
        if (c->npipe == 0) {
            error_at(c, n, "'_' stands for the piped value and can only be used in a pipe");
            return NULL;
        }
        PipeVal *pv = &c->pipe[c->npipe - 1];
        if (pv->global)
            emit(c, KP_BC_GETG, dst, pv->reg, 0, ref_flags(flags));
        else
            emit(c, KP_BC_REF, dst, pv->reg, 0, flags);
        return NULL;
    }
    case KP_N_FIELD:
    case KP_N_INDEX: {
        /* the container as a place, then a reference to the field/element */
        uint32_t save = c->fn->freereg;
        Operand o = {0};
        if (n->a->kind == KP_N_IDENT) {
            o = operand(c, n->a);
        } else {
            o.r = reg_alloc(c);
            o.temp = true;
            compile_place_ref(c, n->a, o.r, KP_VF_PLACE | (flags & KP_VF_MUT));
        }
        uint8_t d = ref_flags(flags);
        if (n->kind == KP_N_FIELD) {
            emit(c, KP_BC_GETFIELD, dst, o.r, k_name(c, n->name), d);
        } else {
            Operand idx = operand(c, n->b);
            emit(c, KP_BC_GETINDEX, dst, o.r, idx.r, d);
            free_operand(c, &idx, true);
        }
        reg_free_to(c, save);
        return NULL;
    }
    default:
        if (flags & KP_VF_PLACE) return expr_to(c, n, dst, M_VALUE);
        error_at(c, n, "can only take a reference to a variable, a field or an element");
        return NULL;
    }
}

static KpType *compile_ident(C *c, KpNode *n, uint32_t dst, int mode) {
    KpVM *vm = c->vm;
    const char *name = intern(c, n->name);
    bool global;
    struct KpGlobal *g;
    Local *l = lookup_var(c, name, &global, &g);
    if (l == (Local *)1) {
        error_at(c, n, "cannot use local variable '%s' of an enclosing function (closures are not supported)", n->name);
        return NULL;
    }
    if (l && !global) {
        check_not_moved(c, n, l);
        if (l->through == 1 && mode == M_VALUE && l->reg != dst) {
            /* a kept variable or a $& parameter: read through it */
            emit(c, KP_BC_COPY, dst, l->reg, 0, 0);
            emit(c, KP_BC_TAKE, dst, 0, 0, 0);
        } else if (mode == M_BORROW && (!l->type || type_movable(l->type)))
            emit(c, KP_BC_REF, dst, l->reg, 0, KP_VF_PLACE);
        else if (l->reg != dst) {
            emit(c, KP_BC_MOVE, dst, l->reg, 0, 0);
            if (type_movable(l->type) && mode == M_VALUE && c->fn->depth >= l->depth) {
                l->moved_line = n->line;
                l->moved_col = n->col;
            }
        }
        return l->type;
    }
    if (global) {
        if (c->fn->is_main && c->func_depth == 0 && !l && g->pending) {
            error_at(c, n, "'%s' is used before its declaration", n->name);
            return NULL;
        }
        emit(c, KP_BC_GETG, dst, g->reg, 0, mode == M_BORROW ? 2 | 8 : 1);
        return g->type;
    }
    TypeBind *tb = find_type(c, name);
    KpType *bt = tb ? tb->type : builtin_type(c, name);
    if (bt) {
        emit_loadk(c, dst, kp_ptr(KP_T_TYPE, bt));
        return vm->t_type;
    }
    KpFunc *f = find_func(c, name);
    if (f) {
        emit_loadk(c, dst, kp_ptr(KP_T_FUNC, f));
        return vm->t_func;
    }
    if (!strcmp(name, "system")) {
        emit_loadk(c, dst, (KpValue){.tag = KP_T_SYSTEM});
        return vm->t_system;
    }
    if (!strcmp(name, "...")) {
        error_at(c, n, "'...' is a placeholder and cannot run");
        return NULL;
    }
    error_at(c, n, "unknown name '%s'", n->name);
    return NULL;
}

static bool fits_i32(int64_t v) { return v >= INT32_MIN && v <= INT32_MAX; }

/* nesting guard of expr_to: c->depth_guard */

/* Constant folding: a literal number, or arithmetic and comparisons on
 * literal numbers.  Int results that would overflow (or divide by zero)
 * are left to run, so the error is reported at run time as usual. */
static bool fold_number(KpNode *n, KpValue *out) {
    if (n->kind == KP_N_INT) { *out = kp_int(n->ival); return true; }
    if (n->kind == KP_N_FLOAT) { *out = kp_float(n->fval); return true; }
    if (n->kind == KP_N_UNARY && n->op == KP_OP_NEG && fold_number(n->a, out)) {
        if (out->tag == KP_T_INT) { if (out->i == INT64_MIN) return false; out->i = -out->i; return true; }
        out->f = -out->f;
        return true;
    }
    if (n->kind == KP_N_BINARY) {
        KpValue a, b;
        if (n->op > KP_OP_MOD || !fold_number(n->a, &a) || !fold_number(n->b, &b)) return false;
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

static bool fold_binary(C *c, KpNode *n, KpValue *out) {
    (void)c;
    if (n->op <= KP_OP_MOD) return fold_number(n, out);
    KpValue a, b;
    if (n->op < KP_OP_EQ || n->op > KP_OP_GE || !fold_number(n->a, &a) || !fold_number(n->b, &b)) return false;
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

static KpType *expr_to(C *c, KpNode *n, uint32_t dst, int mode) {
    KpVM *vm = c->vm;
    if (!n) return NULL;
    if (++c->depth_guard > 3000) {
        error_at(c, n, "expression nested too deeply");
        c->depth_guard--;
        return NULL;
    }
    KpType *result = NULL;
    at(c, n);
    switch (n->kind) {
    case KP_N_INT:
        if (fits_i32(n->ival)) emit_sbx(c, KP_BC_LOADI, dst, (int32_t)n->ival);
        else emit_loadk(c, dst, kp_int(n->ival));
        result = vm->t_int;
        break;
    case KP_N_FLOAT:
        emit_loadk(c, dst, kp_float(n->fval));
        result = vm->t_float;
        break;
    case KP_N_STRING:
        emit_loadk(c, dst, kp_ptr(KP_T_STR, const_str(c, n->str, n->str_len)));
        result = vm->t_string;
        break;
    case KP_N_BOOL:
        emit(c, KP_BC_LOADBOOL, dst, n->ival != 0, 0, 0);
        result = vm->t_bool;
        break;
    case KP_N_UNIT:
        emit(c, KP_BC_LOADUNIT, dst, 0, 0, 0);
        result = vm->t_unit;
        break;
    case KP_N_IDENT:
        result = compile_ident(c, n, dst, mode);
        break;
    case KP_N_HOLE: {
        if (c->npipe == 0) {
            error_at(c, n, "'_' stands for the piped value and can only be used in a pipe");
            break;
        }
        PipeVal *pv = &c->pipe[c->npipe - 1];
        if (pv->global) emit(c, KP_BC_GETG, dst, pv->reg, 0, mode == M_BORROW ? 2 | 8 : 1);
        else if (mode == M_BORROW) emit(c, KP_BC_REF, dst, pv->reg, 0, KP_VF_PLACE);
        else if (pv->boxed) { emit(c, KP_BC_COPY, dst, pv->reg, 0, 0); emit(c, KP_BC_TAKE, dst, 0, 0, 0); }
        else emit(c, KP_BC_MOVE, dst, pv->reg, 0, 0);
        break;
    }
    case KP_N_LIST: {
        uint32_t save = c->fn->freereg;
        uint32_t lst = dst;
        emit(c, KP_BC_NEWLIST, lst, (uint32_t)(n->list.count < 65535 ? n->list.count : 65535), 0, 0);
        uint32_t t = reg_alloc(c);
        for (int i = 0; i < n->list.count; i++) {
            expr_to(c, n->list.items[i], t, M_VALUE);
            at(c, n->list.items[i]);
            emit(c, KP_BC_LISTPUSH, lst, t, 0, 0);
        }
        reg_free_to(c, save);
        result = vm->t_list;
        break;
    }
    case KP_N_MAP: {
        uint32_t save = c->fn->freereg;
        emit(c, KP_BC_NEWMAP, dst, 0, 0, 0);
        uint32_t k = reg_alloc(c), v = reg_alloc(c);
        for (int i = 0; i < n->list.count; i++) {
            KpNode *pair = n->list.items[i];
            expr_to(c, pair->a, k, M_VALUE);
            expr_to(c, pair->b, v, M_VALUE);
            at(c, pair);
            emit(c, KP_BC_MAPSET, dst, k, v, 0);
        }
        reg_free_to(c, save);
        result = vm->t_map;
        break;
    }
    case KP_N_RECORD: {
        int nf = n->list.count;
        if (nf > 256) { error_at(c, n, "too many fields"); break; }
        const char **names = kp_arena_alloc(&vm->meta_arena, sizeof(char *) * (size_t)(nf + 1), 8);
        for (int i = 0; i < nf; i++) {
            names[i] = intern(c, n->list.items[i]->name);
            for (int j = 0; j < i; j++)
                if (names[j] == names[i]) error_at(c, n->list.items[i], "field '%s' given twice", names[i]);
        }
        KpType *t = anon_type(c, nf, names, NULL);
        uint32_t save = c->fn->freereg;
        uint32_t base = c->fn->freereg;
        for (int i = 0; i < nf; i++) reg_alloc(c);
        for (int i = 0; i < nf; i++) expr_to(c, n->list.items[i]->a, base + (uint32_t)i, M_VALUE);
        at(c, n);
        emit(c, KP_BC_NEWREC, dst, add_k(c, kp_ptr(KP_T_TYPE, t)), base, 0);
        reg_free_to(c, save);
        result = t;
        break;
    }
    case KP_N_BINARY: {
        if (n->op == KP_OP_AND || n->op == KP_OP_OR) {
            expr_to(c, n->a, dst, M_VALUE);
            at(c, n);
            uint32_t j = emit_sbx(c, n->op == KP_OP_AND ? KP_BC_JMPF : KP_BC_JMPT, dst, 0);
            expr_to(c, n->b, dst, M_VALUE);
            at(c, n);
            emit(c, KP_BC_CHECK, dst, add_k(c, kp_ptr(KP_T_TYPE, vm->t_bool)), 0, 1);
            patch(c, j, pc(c));
            result = vm->t_bool;
            break;
        }
        if (n->op == KP_OP_RANGE) {
            error_at(c, n, "a range a..b can only be used in a for loop");
            break;
        }
        KpValue folded;
        if (fold_binary(c, n, &folded)) {
            if (folded.tag == KP_T_INT && fits_i32(folded.i)) emit_sbx(c, KP_BC_LOADI, dst, (int32_t)folded.i);
            else if (folded.tag == KP_T_BOOL) emit(c, KP_BC_LOADBOOL, dst, (uint32_t)folded.i, 0, 0);
            else emit_loadk(c, dst, folded);
            result = folded.tag == KP_T_INT ? vm->t_int : folded.tag == KP_T_FLOAT ? vm->t_float : vm->t_bool;
            break;
        }
        uint32_t save = c->fn->freereg;
        Operand a = operand(c, n->a);
        if ((n->op == KP_OP_ADD || n->op == KP_OP_SUB) && n->b->kind == KP_N_INT && !(a.r & KP_RK_CONST) &&
            (a.type == vm->t_int || !a.type) && n->b->ival > INT16_MIN && n->b->ival <= INT16_MAX) {
            /* x + 1, n - 2: an immediate operand */
            int64_t imm = n->op == KP_OP_ADD ? n->b->ival : -n->b->ival;
            at(c, n);
            emit(c, KP_BC_ADDI, dst, a.r, (uint32_t)(uint16_t)(int16_t)imm, 0);
            result = a.type == vm->t_int ? vm->t_int : NULL;
            free_operand(c, &a, true);
            reg_free_to(c, save);
            break;
        }
        Operand b = operand(c, n->b);
        bool swap;
        uint8_t op = binop_code(n->op, &swap);
        at(c, n);
        if (swap) emit(c, op, dst, b.r, a.r, 0);
        else emit(c, op, dst, a.r, b.r, 0);
        result = static_binop_type(c, n->op, a.type, b.type);
        free_operand(c, &b, true);
        free_operand(c, &a, true);
        reg_free_to(c, save);
        break;
    }
    case KP_N_UNARY: {
        switch (n->op) {
        case KP_OP_NEG: {
            if (n->a->kind == KP_N_INT) {
                if (n->a->ival == INT64_MIN) emit_loadk(c, dst, kp_int(INT64_MIN));
                else if (fits_i32(-n->a->ival)) emit_sbx(c, KP_BC_LOADI, dst, (int32_t)-n->a->ival);
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
            Operand a = operand(c, n->a);
            if (a.r & KP_RK_CONST) { uint32_t t = reg_alloc(c); emit_sbx(c, KP_BC_LOADK, t, (int32_t)(a.r & 0x7fff)); a.r = t; }
            at(c, n);
            emit(c, KP_BC_NEG, dst, a.r, 0, 0);
            result = is_num(vm, a.type) ? a.type : NULL;
            free_operand(c, &a, true);
            reg_free_to(c, save);
            break;
        }
        case KP_OP_NOT: {
            uint32_t save = c->fn->freereg;
            Operand a = operand(c, n->a);
            at(c, n);
            emit(c, KP_BC_NOT, dst, a.r, 0, 0);
            free_operand(c, &a, true);
            reg_free_to(c, save);
            result = vm->t_bool;
            break;
        }
        case KP_OP_REF:
        case KP_OP_MUTREF: {
            KpType *t = compile_place_ref(c, n->a, dst, n->op == KP_OP_MUTREF ? KP_VF_MUT : 0);
            result = t ? derived_type(c, KP_TK_REF, t, NULL, n->op == KP_OP_MUTREF ? 2 : 1) : NULL;
            break;
        }
        case KP_OP_MOVE:
            result = expr_to(c, n->a, dst, M_VALUE);
            if (n->a->kind == KP_N_FIELD || n->a->kind == KP_N_INDEX) emit(c, KP_BC_TAKE, dst, 0, 0, 0);
            break;
        }
        break;
    }
    case KP_N_CALL:
        result = compile_call(c, n, dst, NULL);
        break;
    case KP_N_PIPE:
        result = compile_pipe(c, n, dst);
        break;
    case KP_N_FIELD: {
        uint32_t save = c->fn->freereg;
        Operand o = container_operand(c, n->a);
        at(c, n);
        KpType *ft = NULL;
        if (o.type && o.type->kind == KP_TK_RECORD) {
            const char *fname = intern(c, n->name);
            bool found = false;
            for (uint32_t i = 0; i < o.type->nfields; i++)
                if (o.type->fnames[i] == fname) { ft = o.type->ftypes[i]; found = true; }
            if (!found) error_at(c, n, "%s has no field '%s'", o.type->name, n->name);
        }
        emit(c, KP_BC_GETFIELD, dst, o.r, k_name(c, n->name), read_flags(mode, n->a));
        free_operand(c, &o, true);
        reg_free_to(c, save);
        result = ft;
        break;
    }
    case KP_N_INDEX: {
        uint32_t save = c->fn->freereg;
        Operand o = container_operand(c, n->a);
        Operand idx = operand(c, n->b);
        at(c, n);
        emit(c, KP_BC_GETINDEX, dst, o.r, idx.r, read_flags(mode, n->a));
        free_operand(c, &idx, true);
        free_operand(c, &o, true);
        reg_free_to(c, save);
        if (o.type && o.type->kind == KP_TK_LIST) result = o.type->elem;
        else if (o.type && o.type->kind == KP_TK_MAP) result = o.type->elem;
        break;
    }
    case KP_N_GENERIC: {
        KpType *t = resolve_type(c, n);
        if (t) emit_loadk(c, dst, kp_ptr(KP_T_TYPE, t));
        result = vm->t_type;
        break;
    }
    case KP_N_KEEP:
        error_at(c, n, "keep is not supported yet");
        break;
    default:
        error_at(c, n, "expected an expression");
        break;
    }
    c->depth_guard--;
    return result;
}

/* ------------------------------------------------------------ calls */

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
    return ++p->ncalls;
}

/* Compiles one argument into register r: places are passed as implicit
 * borrows; everything else as a value. */
static void compile_arg(C *c, KpNode *a, uint32_t r) {
    if (a->kind == KP_N_HOLE) {
        expr_to(c, a, r, M_BORROW);
        return;
    }
    if ((a->kind == KP_N_FIELD || a->kind == KP_N_INDEX) && pinned(c, place_root(a)) != NO_REG) {
        compile_place_ref(c, a, r, KP_VF_PLACE);
        return;
    }
    if (is_place(a)) {
        if (a->kind == KP_N_IDENT) {
            bool global;
            struct KpGlobal *g;
            Local *l = lookup_var(c, intern(c, a->name), &global, &g);
            if ((l && l != (Local *)1) || global) {
                compile_place_ref(c, a, r, KP_VF_PLACE);
                return;
            }
            expr_to(c, a, r, M_VALUE);
            return;
        }
        compile_place_ref(c, a, r, KP_VF_PLACE);
        return;
    }
    expr_to(c, a, r, M_VALUE);
}

/* Record construction: T(.x = 1, .y = 2) or T(1, 2). */
static KpType *compile_construct(C *c, KpNode *n, KpType *t, uint32_t dst) {
    if (t->kind != KP_TK_RECORD) {
        error_at(c, n, "%s cannot be called; only record types construct values", t->name);
        return NULL;
    }
    uint32_t save = c->fn->freereg;
    uint32_t base = c->fn->freereg;
    for (uint32_t i = 0; i < t->nfields; i++) reg_alloc(c);
    /* fields not given must read UNSET (the registers may hold stale
     * non-owning values from earlier temporaries) */
    if (t->nfields && (uint32_t)n->list.count < t->nfields) emit(c, KP_BC_DROP, base, t->nfields, 0, 0);
    bool *given = kp_arena_alloc(&c->vm->meta_arena, t->nfields + 1, 1);
    memset(given, 0, t->nfields + 1);
    int pos = 0;
    for (int i = 0; i < n->list.count; i++) {
        KpNode *a = n->list.items[i];
        int idx = -1;
        KpNode *val = a;
        if (a->kind == KP_N_FIELDINIT) {
            const char *fname = intern(c, a->name);
            for (uint32_t j = 0; j < t->nfields; j++)
                if (t->fnames[j] == fname) idx = (int)j;
            if (idx < 0) { error_at(c, a, "%s has no field '%s'", t->name, a->name); continue; }
            val = a->a;
        } else {
            idx = pos++;
            if (idx >= (int)t->nfields) { error_at(c, a, "too many values for %s (%u fields)", t->name, t->nfields); continue; }
        }
        if (given[idx]) { error_at(c, a, "field '%s' given twice", t->fnames[idx]); continue; }
        given[idx] = true;
        expr_to(c, val, base + (uint32_t)idx, M_VALUE);
    }
    at(c, n);
    emit(c, KP_BC_NEWREC, dst, add_k(c, kp_ptr(KP_T_TYPE, t)), base, 0);
    reg_free_to(c, save);
    return t;
}

/* The general call: R(base) = callee, args above; result moved to dst. */
static KpType *compile_call_general(C *c, KpNode *n, KpNode *callee, KpFunc *f, uint32_t dst,
                                    KpType *expect, KpNode *pipe_first) {
    uint32_t save = c->fn->freereg;
    /* temporaries that arguments borrow fields or elements of */
    int pin_mark = c->npinned;
    for (int i = -1; i < n->list.count; i++) {
        KpNode *a = i < 0 ? pipe_first : n->list.items[i];
        if (!a) continue;
        if (a->kind == KP_N_FIELDINIT) a = a->a;
        if ((a->kind != KP_N_FIELD && a->kind != KP_N_INDEX) || is_place(a)) continue;
        KpNode *root = place_root(a);
        if (c->npinned >= 32 || pinned(c, root) != NO_REG) continue;
        uint32_t t = reg_alloc(c);
        expr_to(c, root, t, M_VALUE);
        c->pinned_node[c->npinned] = root;
        c->pinned_reg[c->npinned++] = t;
    }
    bool pins = c->npinned > pin_mark;
    uint32_t base = (!pins && dst == save - 1 && dst >= c->fn->freereg - 1) ? dst : reg_alloc(c);
    if (base == dst && dst != save - 1) base = reg_alloc(c);
    if (f) emit_loadk(c, base, kp_ptr(KP_T_FUNC, f));
    else expr_to(c, callee, base, M_BORROW);
    int nargs = 0, nnamed = 0;
    const char **names = kp_arena_alloc(&c->vm->meta_arena, sizeof(char *) * (size_t)(n->list.count + 1), 8);
    if (pipe_first) {
        uint32_t r = reg_alloc(c);
        compile_arg(c, pipe_first, r);
        nargs++;
    }
    for (int pass = 0; pass < 2; pass++) {
        for (int i = 0; i < n->list.count; i++) {
            KpNode *a = n->list.items[i];
            bool named = a->kind == KP_N_FIELDINIT;
            if (named != (pass == 1)) continue;
            if (nargs >= 250) { error_at(c, a, "too many arguments (250 at most)"); break; }
            uint32_t r = reg_alloc(c);
            if (named) {
                names[nnamed++] = intern(c, a->name);
                compile_arg(c, a->a, r);
            } else {
                compile_arg(c, a, r);
            }
            nargs++;
        }
    }
    at(c, n);
    uint32_t desc = (nnamed || expect) ? add_calldesc(c, nnamed, names, expect) : 0;
    emit(c, KP_BC_CALL, base, (uint32_t)nargs, desc, 0);
    if (base != dst) emit(c, KP_BC_MOVE, dst, base, 0, 0);
    if (pins) {
        /* the borrowed temporaries die after the call */
        emit(c, KP_BC_DROP, c->pinned_reg[pin_mark], (uint32_t)(c->npinned - pin_mark), 0, 0);
        c->npinned = pin_mark;
    }
    reg_free_to(c, save);
    KpType *rt = NULL;
    if (f && f->n == 1) rt = f->ovs[0]->ret;
    if (expect) rt = expect;
    return rt;
}

static void check_ref_escape(C *c, KpNode *target, KpNode *value, KpNode *at_node);

static KpType *compile_call_with(C *c, KpNode *n, uint32_t dst, KpType *expect, KpNode *pipe_first) {
    KpNode *callee = n->a;
    KpFunc *f = NULL;
    if (callee->kind == KP_N_IDENT && !strcmp(callee->name, "push") && !pipe_first && n->list.count == 2)
        check_ref_escape(c, n->list.items[0], n->list.items[1], n);
    if (callee->kind == KP_N_GENERIC) {
        KpType *t = resolve_type(c, callee);
        if (!t) return NULL;
        if (pipe_first) { error_at(c, n, "cannot pipe into a constructor"); return NULL; }
        return compile_construct(c, n, t, dst);
    }
    if (callee->kind == KP_N_IDENT) {
        const char *name = intern(c, callee->name);
        bool global;
        struct KpGlobal *g;
        Local *l = lookup_var(c, name, &global, &g);
        if (!l && !global) {
            TypeBind *tb = find_type(c, name);
            KpType *t = tb ? tb->type : NULL;
            if (tb && tb->generic) { error_at(c, callee, "generic type %s needs arguments: %s#(...)", name, name); return NULL; }
            if (t && t->kind != KP_TK_OPAQUE) {
                if (pipe_first) { error_at(c, n, "cannot pipe into a constructor"); return NULL; }
                return compile_construct(c, n, t, dst);
            }
            KpType *bt = t ? t : builtin_type(c, name); /* opaque types (Writer, ...) construct through init */
            if (bt && (bt->kind == KP_TK_OPAQUE || bt == c->vm->t_heap) && !pipe_first) {
                KpFunc *init = find_func(c, intern(c, "init"));
                if (init) return compile_call_general(c, n, callee, init, dst, bt, NULL);
            }
            f = find_func(c, name);
            if (!f) {
                if (bt) {
                    error_at(c, callee, "%s cannot be called; use int(), float() or str() to convert", name);
                    return NULL;
                }
                error_at(c, callee, "unknown function '%s'", callee->name);
                return NULL;
            }
            if (f->special == 1) { /* deinit(x): the drop of a place */
                int na = n->list.count + (pipe_first ? 1 : 0);
                if (na != 1) { error_at(c, n, "deinit takes one argument"); return NULL; }
                KpNode *a = pipe_first ? pipe_first : n->list.items[0];
                uint32_t save = c->fn->freereg;
                uint32_t r = reg_alloc(c);
                if (a->kind == KP_N_UNARY && (a->op == KP_OP_MUTREF || a->op == KP_OP_MOVE)) a = a->a;
                if (is_place(a) || a->kind == KP_N_HOLE) {
                    compile_place_ref(c, a->kind == KP_N_HOLE ? a : a, r, KP_VF_PLACE | KP_VF_MUT);
                    if (a->kind == KP_N_HOLE) { emit(c, KP_BC_DROP, r, 1, 0, 0); expr_to(c, a, r, M_BORROW); }
                    at(c, n);
                    emit(c, KP_BC_DEINIT, r, 0, 0, 0);
                    if (a->kind == KP_N_IDENT) {
                        bool gg; struct KpGlobal *g2;
                        Local *l2 = lookup_var(c, intern(c, a->name), &gg, &g2);
                        if (l2 && l2 != (Local *)1 && !gg) { l2->moved_line = n->line; l2->moved_col = n->col; }
                    }
                } else {
                    expr_to(c, a, r, M_VALUE);
                    at(c, n);
                    emit(c, KP_BC_DEINIT, r, 0, 0, 1);
                }
                reg_free_to(c, save);
                emit(c, KP_BC_LOADUNIT, dst, 0, 0, 0);
                return c->vm->t_unit;
            }
        }
    }
    return compile_call_general(c, n, callee, f, dst, expect, pipe_first);
}

static KpType *compile_call(C *c, KpNode *n, uint32_t dst, KpType *expect) {
    return compile_call_with(c, n, dst, expect, NULL);
}

static bool has_hole(KpNode *n) {
    if (!n) return false;
    if (n->kind == KP_N_HOLE) return true;
    if (n->kind == KP_N_PIPE) return has_hole(n->a); /* a nested pipe binds its own _ on the right */
    if (has_hole(n->a) || has_hole(n->b) || has_hole(n->c)) return true;
    for (int i = 0; i < n->list.count; i++)
        if (has_hole(n->list.items[i])) return true;
    return false;
}

static KpType *compile_pipe(C *c, KpNode *n, uint32_t dst) {
    KpVM *vm = c->vm;
    KpNode *lhs = n->a, *rhs = n->b;
    uint32_t save = c->fn->freereg;
    /* `Type | init(...)`: output-type selection, no insertion */
    if (rhs->kind == KP_N_CALL && !has_hole(rhs) &&
        (lhs->kind == KP_N_IDENT || lhs->kind == KP_N_GENERIC)) {
        KpType *t = NULL;
        if (lhs->kind == KP_N_GENERIC) t = resolve_type(c, lhs);
        else {
            bool global;
            struct KpGlobal *g;
            const char *name = intern(c, lhs->name);
            if (!lookup_var(c, name, &global, &g) && !global) {
                TypeBind *tb = find_type(c, name);
                t = tb ? tb->type : builtin_type(c, name);
            }
        }
        if (t) return compile_call(c, rhs, dst, t);
    }
    if (c->npipe >= 64) { error_at(c, n, "pipes nested too deeply"); return NULL; }
    PipeVal pv = {0};
    bool temp = false;
    if (lhs->kind == KP_N_IDENT) {
        bool global;
        struct KpGlobal *g;
        Local *l = lookup_var(c, intern(c, lhs->name), &global, &g);
        if (l && l != (Local *)1 && !global) { pv.reg = l->reg; pv.place = true; check_not_moved(c, lhs, l); }
        else if (global) { pv.reg = g->reg; pv.place = true; pv.global = true; }
    }
    if (!pv.place) {
        pv.reg = reg_alloc(c);
        temp = true;
        expr_to(c, lhs, pv.reg, M_VALUE);
        if (lhs->kind == KP_N_PIPE && lhs->b && lhs->b->kind == KP_N_KEEP) pv.boxed = true;
        if (lhs->kind == KP_N_FIELD || lhs->kind == KP_N_INDEX) {
            /* a field piped on is borrowed, not moved: re-read as a borrow */
            emit(c, KP_BC_DROP, pv.reg, 1, 0, 0);
            compile_place_ref(c, lhs, pv.reg, KP_VF_PLACE);
            temp = false;
        }
    }
    c->pipe[c->npipe++] = pv;
    KpType *rt = NULL;
    uint32_t out = temp ? reg_alloc(c) : dst;
    at(c, n);
    if (rhs->kind == KP_N_CALL) {
        if (has_hole(rhs)) rt = compile_call(c, rhs, out, NULL);
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
                intern(c, rhs->list.items[0]->name) == c->pending_name) {
                box = c->pending_reg;
                pending = true;
                c->pending_used = true;
            } else {
                box = reg_alloc(c);
            }
            uint8_t d = 0;
            if (rhs->b) { compile_place_ref(c, rhs->b, box, KP_VF_PLACE); d = 1; }
            at(c, rhs);
            emit(c, KP_BC_BOXNEW, box, pv.reg, 0, d);
            emit(c, KP_BC_BOXREF, out, box, 0, 0);
            if (!pending) {
                uint32_t first = c->fn->freereg;
                for (int i = 0; i < rhs->list.count; i++) {
                    uint32_t o = reg_alloc(c);
                    compile_place_ref(c, rhs->list.items[i], o, KP_VF_PLACE | KP_VF_MUT);
                }
                at(c, rhs);
                emit(c, KP_BC_KEEP, box, first, (uint32_t)rhs->list.count, 0);
            }
            temp = false; /* the value now lives in the box */
            if (out != dst) emit(c, KP_BC_COPY, dst, out, 0, 0);
        } else {
            error_at(c, rhs, "keep _ in a pipe keeps a temporary; to keep a variable write `keep x with ...`");
        }
    } else {
        error_at(c, rhs, "expected a function call after '|'");
    }
    c->npipe--;
    if (temp) {
        emit(c, KP_BC_DROP, pv.reg, 1, 0, 0); /* the temporary, unless moved on */
        emit(c, KP_BC_MOVE, dst, out, 0, 0);
    }
    reg_free_to(c, save);
    return rt;
}

/* ------------------------------------------------------------ statements */

static void emit_check(C *c, uint32_t r, KpType *t, const char *name) {
    if (!t || t->kind == KP_TK_ANY) return;
    emit(c, KP_BC_CHECK, r, add_k(c, kp_ptr(KP_T_TYPE, t)), name ? k_name(c, name) + 1 : 0, 0);
}

static bool same_static(C *c, KpType *want, KpType *have) {
    (void)c;
    return want && have && want == have && want->kind == KP_TK_SCALAR;
}

static void compile_decl(C *c, KpNode *n) {
    KpVM *vm = c->vm;
    const char *name = intern(c, n->name);
    Fn *f = c->fn;
    KpType *t = n->a ? resolve_type(c, n->a) : NULL;
    bool top = f->is_main && f->depth == 0 && c->func_depth == 0;
    for (int i = f->nlocals - 1; i >= 0 && f->locals[i].depth == f->depth; i--)
        if (f->locals[i].name == name && !c->repl) {
            error_at(c, n, "'%s' is already declared in this scope (line %u)", n->name, f->locals[i].decl_line);
            return;
        }
    uint32_t r;
    struct KpGlobal *g = NULL;
    if (top) {
        g = NULL;
        for (uint32_t i = vm->nglobals; i-- > 0;)
            if (vm->globals[i].name == name && vm->globals[i].pending) { g = &vm->globals[i]; break; }
        if (!g) g = find_global(c, name);
        r = g->reg; /* g->pending stays set until the initializer is compiled */
    } else {
        r = reg_alloc(c);
    }
    KpType *st;
    at(c, n);
    int ki = kept_index(f, name);
    if (ki >= 0 && top) {
        error_at(c, n, "'%s' is a top-level variable, which lives until the program ends: keep is for the values of a scope", n->name);
        ki = -1;
    }
    /* `x := … | keep _ with x | …`: a register for the box, kept until x exists */
    uint32_t pend = NO_REG;
    const char *save_pname = c->pending_name;
    uint32_t save_preg = c->pending_reg;
    bool save_pused = c->pending_used;
    if (n->b && mentions_keep_of(n->b, n->name)) {
        pend = reg_alloc(c);
        c->pending_name = name;
        c->pending_reg = pend;
        c->pending_used = false;
    }
    if (n->b) {
        uint32_t target = r;
        if (top && c->repl) target = reg_alloc(c); /* keep the old value until the new one exists */
        if (n->b->kind == KP_N_CALL) st = compile_call(c, n->b, target, t);
        else st = expr_to(c, n->b, target, M_VALUE);
        if (n->b->kind == KP_N_FIELD || n->b->kind == KP_N_INDEX) emit(c, KP_BC_TAKE, target, 0, 0, 0);
        at(c, n);
        if (t && !same_static(c, t, st)) emit_check(c, target, t, n->name);
        if (target != r) {
            emit(c, KP_BC_MOVE, r, target, 0, 0);
            reg_free_to(c, target);
        }
    } else {
        if (!t) { error_at(c, n, "'%s' needs a type or a value", n->name); return; }
        emit(c, KP_BC_DEFAULT, r, add_k(c, kp_ptr(KP_T_TYPE, t)), 0, 0);
        st = t;
    }
    if (pend != NO_REG) {
        c->pending_name = save_pname;
        c->pending_reg = save_preg;
        bool used = c->pending_used;
        c->pending_used = save_pused;
        if (used) {
            /* now x exists: tie the pipe's kept value to it */
            uint32_t o = reg_alloc(c);
            emit(c, KP_BC_REF, o, r, 0, KP_VF_PLACE | KP_VF_MUT);
            at(c, n);
            emit(c, KP_BC_KEEP, pend, o, 1, 0);
            add_kedge(c, name, "_", n->line);
        }
        reg_free_to(c, pend + 1);
    }
    Local *l = add_local(c, name, r, t ? t : st);
    l->global = top;
    l->decl_line = n->line;
    if (top) {
        g->type = l->type;
        g->pending = 0;
    }
    if (pend != NO_REG) {
        /* the box register stays a hidden local: dropped with the scope (a
         * no-op once the keep ran) */
        add_local(c, intern(c, "(kept)"), pend, NULL);
        l = &f->locals[f->nlocals - 2];
    }
    if (ki >= 0) {
        /* a kept variable lives in a box from here on */
        uint32_t box = reg_alloc(c);
        KpNode *ue = f->kept[ki].using_expr;
        uint8_t d = 0;
        if (ue) {
            compile_place_ref(c, ue, box, KP_VF_PLACE);
            d = 1;
        }
        at(c, n);
        emit(c, KP_BC_BOXNEW, box, r, k_name(c, n->name) + 1, d);
        emit(c, KP_BC_BOXREF, r, box, 0, 0);
        l->through = 1;
        l->boxed = 1;
        add_local(c, intern(c, "(box)"), box, NULL);
    }
}

/* The value an assignment stores, into register t: the value for `=`, or
 * `cur op value` for `op=` where register `cur` holds the current value. */
static KpType *assigned_value(C *c, KpNode *n, uint32_t t, uint32_t cur, KpType *expect) {
    if (n->op != KP_OP_NONE) {
        Operand b = operand(c, n->b);
        bool swap;
        at(c, n);
        emit(c, binop_code(n->op, &swap), t, cur, b.r, 0);
        free_operand(c, &b, true);
        return NULL;
    }
    KpType *st = n->b->kind == KP_N_CALL ? compile_call(c, n->b, t, expect) : expr_to(c, n->b, t, M_VALUE);
    if (n->b->kind == KP_N_FIELD || n->b->kind == KP_N_INDEX) emit(c, KP_BC_TAKE, t, 0, 0, 0);
    return st;
}

/* ---------------------------------------------------------- escapes */

static int local_index(Fn *f, Local *l) { return (int)(l - f->locals); }

/* The variable at the root of a place (`h` in `h.a[1].b`), or NULL. */
static KpNode *root_ident(KpNode *n) {
    while (n && (n->kind == KP_N_FIELD || n->kind == KP_N_INDEX)) n = n->a;
    return n && n->kind == KP_N_IDENT ? n : NULL;
}

/* `target = &x` (or a field/element of target, or push(target, &x)):
 * an error, laid out like Rust's E0597, when target outlives x — it is a
 * global, a parameter's value, or a variable declared before x — and no
 * keep covers x. */
static void check_ref_escape(C *c, KpNode *target, KpNode *value, KpNode *at_node) {
    if (!value || value->kind != KP_N_UNARY || (value->op != KP_OP_REF && value->op != KP_OP_MUTREF)) return;
    KpNode *xr = root_ident(value->a), *tr = root_ident(target);
    if (!xr || !tr) return;
    Fn *f = c->fn;
    bool xg, tg;
    struct KpGlobal *xgl, *tgl;
    Local *x = lookup_var(c, intern(c, xr->name), &xg, &xgl);
    Local *t = lookup_var(c, intern(c, tr->name), &tg, &tgl);
    if (!x || x == (Local *)1 || xg || x->global || x->through || kept_index(f, x->name) >= 0) return;
    const char *why = NULL;
    char buf[160];
    if (tg || (t && t != (Local *)1 && t->global)) why = "a top-level variable, which lives until the program ends";
    else if (t && t != (Local *)1 && t->through) why = "a parameter's value, which belongs to the caller";
    else if (t && t != (Local *)1 && local_index(f, t) < local_index(f, x)) {
        snprintf(buf, sizeof buf, "declared before it (line %u), so it is deinitialized after it", t->decl_line);
        why = buf;
    }
    if (!why) {
        /* target dies first, but it may still be returned: remember */
        if (t && t != (Local *)1) t->holds_ref = x->name;
        return;
    }
    uint32_t xline = x->decl_line;
    /* the referent dies at the end of its block: after its last statement */
    uint32_t end_line = at_node->line;
    KpNode *blk = x->depth >= 0 && x->depth < 64 ? f->blocks[x->depth] : NULL;
    if (blk && blk->list.count) {
        KpNode *last = blk->list.items[blk->list.count - 1];
        if (last && last->line > end_line) end_line = last->line;
    }
    error_at(c, value, "'%s' does not live long enough: a reference to it is stored in '%s'", xr->name, tr->name);
    kp_diag_note(c->diags,
                 "note: '%s' is declared at line %u; the reference is taken here and stored in '%s' at line %u; '%s' is %s; "
                 "'%s' is deinitialized at the end of its block (after line %u) while '%s' still holds the reference\n"
                 "    = hint: make the value live as long as '%s': keep %s with %s",
                 xr->name, xline, tr->name, at_node->line, tr->name, why, xr->name, end_line, tr->name, tr->name, xr->name,
                 tr->name);
}

static void compile_assign(C *c, KpNode *n) {
    KpVM *vm = c->vm;
    KpNode *target = n->a;
    uint32_t save = c->fn->freereg;
    at(c, n);
    if (n->op == KP_OP_NONE) check_ref_escape(c, target, n->b, n);
    if (target->kind == KP_N_IDENT) {
        const char *name = intern(c, target->name);
        bool global;
        struct KpGlobal *g;
        Local *l = lookup_var(c, name, &global, &g);
        if (l == (Local *)1) {
            error_at(c, target, "cannot assign to local variable '%s' of an enclosing function", target->name);
            return;
        }
        if (!l && !global) {
            error_at(c, target, "unknown variable '%s' (declare it with %s := ...)", target->name, target->name);
            return;
        }
        if (global && c->fn->is_main && c->func_depth == 0 && !l && g->pending) {
            error_at(c, target, "'%s' is used before its declaration", target->name);
            return;
        }
        KpType *vt = global ? g->type : l->type;
        if (!global && l->through == 2) {
            error_at(c, target, "cannot assign to '%s': it is a read-only reference (&); take the parameter as $& to change the caller's value", target->name);
            return;
        }
        if (!global && l->through == 1) {
            /* a $& reference: the assignment writes the referent */
            uint32_t t = reg_alloc(c);
            assigned_value(c, n, t, l->reg, vt);
            at(c, n);
            emit_check(c, t, vt, target->name);
            emit(c, KP_BC_SETREF, l->reg, t, 0, 0);
            reg_free_to(c, save);
            return;
        }
        if (!global) {
            KpType *st;
            if (n->op != KP_OP_NONE) {
                /* x op= v: compute straight into x */
                Operand b = operand(c, n->b);
                bool swap;
                at(c, n);
                emit(c, binop_code(n->op, &swap), l->reg, l->reg, b.r, 0);
                st = static_binop_type(c, n->op, l->type, b.type);
                free_operand(c, &b, true);
            } else if (n->b->kind == KP_N_BINARY || n->b->kind == KP_N_INT || n->b->kind == KP_N_FLOAT ||
                       n->b->kind == KP_N_BOOL) {
                st = expr_to(c, n->b, l->reg, M_VALUE);
            } else {
                uint32_t t = reg_alloc(c);
                st = n->b->kind == KP_N_CALL ? compile_call(c, n->b, t, vt) : expr_to(c, n->b, t, M_VALUE);
                if (n->b->kind == KP_N_FIELD || n->b->kind == KP_N_INDEX) emit(c, KP_BC_TAKE, t, 0, 0, 0);
                at(c, n);
                if (vt && !same_static(c, vt, st)) emit_check(c, t, vt, target->name);
                emit(c, KP_BC_MOVE, l->reg, t, 0, 0);
                st = vt;
            }
            if (vt && !same_static(c, vt, st)) {
                at(c, n);
                emit_check(c, l->reg, vt, target->name);
            }
            l->moved_line = 0;
            check_outlives_allocator(c, n, l, st);
        } else {
            uint32_t t = reg_alloc(c);
            if (n->op != KP_OP_NONE) emit(c, KP_BC_GETG, t, g->reg, 0, 0);
            assigned_value(c, n, t, t, vt);
            at(c, n);
            emit_check(c, t, vt, target->name);
            emit(c, KP_BC_SETG, g->reg, t, 0, 0);
        }
        reg_free_to(c, save);
        return;
    }
    if (target->kind == KP_N_FIELD || target->kind == KP_N_INDEX) {
        uint32_t obj = reg_alloc(c);
        if (target->a->kind == KP_N_IDENT) {
            bool global;
            struct KpGlobal *g;
            Local *l = lookup_var(c, intern(c, target->a->name), &global, &g);
            if (l && l != (Local *)1 && !global) { check_not_moved(c, target->a, l); emit(c, KP_BC_REF, obj, l->reg, 0, KP_VF_PLACE | KP_VF_MUT); }
            else compile_place_ref(c, target->a, obj, KP_VF_PLACE | KP_VF_MUT);
        } else {
            compile_place_ref(c, target->a, obj, KP_VF_PLACE | KP_VF_MUT);
        }
        Operand idx = {0};
        if (target->kind == KP_N_INDEX) idx = operand(c, target->b);
        uint32_t v = reg_alloc(c);
        if (n->op != KP_OP_NONE) {
            at(c, target);
            if (target->kind == KP_N_FIELD) emit(c, KP_BC_GETFIELD, v, obj, k_name(c, target->name), 0);
            else emit(c, KP_BC_GETINDEX, v, obj, idx.r, 0);
        }
        assigned_value(c, n, v, v, NULL);
        at(c, n);
        if (target->kind == KP_N_FIELD) emit(c, KP_BC_SETFIELD, obj, k_name(c, target->name), v, 0);
        else emit(c, KP_BC_SETINDEX, obj, idx.r, v, 0);
        free_operand(c, &idx, true);
        reg_free_to(c, save);
        return;
    }
    (void)vm;
    error_at(c, target, "cannot assign to this expression");
}

/* A value made inside `using A { }` stored into a variable declared before
 * A would outlive A: a compile error where the compiler can see it (the
 * run-time check at A's deinit catches the rest). */
static void check_outlives_allocator(C *c, KpNode *n, Local *target, KpType *st) {
    if (!c->using_depth || !st || !(type_movable(st) || st == c->vm->t_string)) return;
    Fn *f = c->fn;
    for (int i = f->nlocals - 1; i >= 0; i--) {
        Local *u = &f->locals[i];
        if (!u->using_mark) continue;
        if (u->using_alloc != NO_REG && target->reg < u->using_alloc && target->depth < u->depth) {
            error_at(c, n, "'%s' would outlive the allocator '%s': the value is allocated in `using %s`, but '%s' is declared before '%s'",
                     target->name, u->using_node->name ? u->using_node->name : "?", u->using_node->name ? u->using_node->name : "?",
                     target->name, u->using_node->name ? u->using_node->name : "?");
            kp_diag_note(c->diags, "hint: declare '%s' after the allocator, or clone the value outside the using block", target->name);
        }
        return;
    }
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
    for (int i = 0; i < lp->nbreaks; i++) patch(c, lp->breaks[i], brk);
    for (int i = 0; i < lp->nconts; i++) patch(c, lp->conts[i], cont);
    f->nloops--;
}

/* Emits the conditional jump taken when `cond` is false; returns it. */
static uint32_t compile_cond_jump(C *c, KpNode *cond) {
    KpVM *vm = c->vm;
    uint32_t save = c->fn->freereg;
    if (cond->kind == KP_N_BINARY && cond->op >= KP_OP_LT && cond->op <= KP_OP_GE && cond->b->kind == KP_N_INT &&
        cond->b->ival >= INT16_MIN && cond->b->ival <= INT16_MAX && cond->a->kind != KP_N_INT && cond->a->kind != KP_N_FLOAT) {
        /* x < 2: compare a register with a small immediate */
        Operand a = operand(c, cond->a);
        if (a.r & KP_RK_CONST) { uint32_t t = reg_alloc(c); emit_sbx(c, KP_BC_LOADK, t, (int32_t)(a.r & 0x7fff)); a.r = t; }
        uint8_t jop = cond->op == KP_OP_LT ? KP_BC_JLTI : cond->op == KP_OP_LE ? KP_BC_JLEI
                    : cond->op == KP_OP_GT ? KP_BC_JGTI : KP_BC_JGEI;
        at(c, cond);
        uint32_t j = emit(c, jop, a.r, (uint32_t)(uint16_t)(int16_t)cond->b->ival, 0, 0);
        free_operand(c, &a, true);
        reg_free_to(c, save);
        return j;
    }
    if (cond->kind == KP_N_BINARY && cond->op >= KP_OP_EQ && cond->op <= KP_OP_GE) {
        Operand a = operand(c, cond->a);
        Operand b = operand(c, cond->b);
        bool swap;
        uint8_t op = binop_code(cond->op, &swap);
        uint8_t jop = op == KP_BC_LT ? KP_BC_JLT : op == KP_BC_LE ? KP_BC_JLE : op == KP_BC_EQ ? KP_BC_JEQ : KP_BC_JNE;
        at(c, cond);
        uint32_t j = swap ? emit(c, jop, b.r, a.r, 0, 0) : emit(c, jop, a.r, b.r, 0, 0);
        free_operand(c, &b, true);
        free_operand(c, &a, true);
        reg_free_to(c, save);
        (void)vm;
        return j;
    }
    uint32_t r = reg_alloc(c);
    expr_to(c, cond, r, M_VALUE);
    at(c, cond);
    uint32_t j = emit_sbx(c, KP_BC_JMPF, r, 0);
    reg_free_to(c, save);
    return j;
}

/* A jump emitted after a DROP of the condition temp would need the drop on
 * both paths; conditions are Bool scalars, so nothing is owned. */

static void compile_body(C *c, KpNode *block) {
    push_scope(c);
    if (block && block->kind == KP_N_BLOCK) compile_block_body(c, block);
    else if (block) compile_stmt(c, block);
    pop_scope(c, true);
}

static void compile_if(C *c, KpNode *n) {
    uint32_t jf = compile_cond_jump(c, n->a);
    compile_body(c, n->b);
    if (n->c) {
        uint32_t jend = emit_sbx(c, KP_BC_JMP, 0, 0);
        patch(c, jf, pc(c));
        if (n->c->kind == KP_N_IF) compile_if(c, n->c);
        else compile_body(c, n->c);
        patch(c, jend, pc(c));
    } else {
        patch(c, jf, pc(c));
    }
}

static void forget_moves_since(C *c, int nlocals) {
    (void)nlocals;
    /* after a branch or loop a move is no longer certain */
    for (int i = 0; i < c->fn->nlocals; i++) c->fn->locals[i].moved_line = 0;
}

static void compile_while(C *c, KpNode *n) {
    uint32_t top = pc(c);
    uint32_t jf = compile_cond_jump(c, n->a);
    push_loop(c);
    compile_body(c, n->b);
    at(c, n);
    uint32_t back = emit_sbx(c, KP_BC_JMP, 0, 0);
    patch(c, back, top);
    patch(c, jf, pc(c));
    pop_loop(c, pc(c), top);
    forget_moves_since(c, 0);
}

static void compile_for(C *c, KpNode *n) {
    KpVM *vm = c->vm;
    uint32_t save = c->fn->freereg;
    KpNode *it = n->a;
    push_scope(c); /* the loop's state registers */
    if (it->kind == KP_N_BINARY && it->op == KP_OP_RANGE) {
        if (n->name2) { error_at(c, n, "a range loop has one variable"); }
        uint32_t base = reg_alloc(c);
        reg_alloc(c);
        uint32_t var = reg_alloc(c);
        expr_to(c, it->a, base, M_VALUE);
        expr_to(c, it->b, base + 1, M_VALUE);
        at(c, n);
        uint32_t prep = emit_sbx(c, KP_BC_FORPREP, base, 0);
        uint32_t body = pc(c);
        push_loop(c);
        push_scope(c);
        Local *l = add_local(c, intern(c, n->name), var, vm->t_int);
        (void)l;
        if (n->b) compile_block_body(c, n->b);
        pop_scope(c, true);
        uint32_t cont = pc(c);
        at(c, n);
        uint32_t fl = emit_sbx(c, KP_BC_FORLOOP, base, 0);
        patch(c, fl, body);
        patch(c, prep, pc(c));
        pop_loop(c, pc(c), cont);
        /* the counter and end are Ints: nothing to drop */
    } else {
        uint8_t mode = 0;
        KpNode *src = it;
        if (src->kind == KP_N_UNARY && src->op == KP_OP_MUTREF) { mode = 1; src = src->a; }
        else if (src->kind == KP_N_UNARY && src->op == KP_OP_MOVE) { mode = 2; src = src->a; }
        else if (src->kind == KP_N_UNARY && src->op == KP_OP_REF) { src = src->a; }
        uint32_t base = reg_alloc(c);
        reg_alloc(c);
        uint32_t v1 = reg_alloc(c), v2 = reg_alloc(c);
        if (mode == 2) expr_to(c, src, base, M_VALUE);
        else if (is_place(src)) compile_place_ref(c, src, base, KP_VF_PLACE | (mode == 1 ? KP_VF_MUT : 0));
        else expr_to(c, src, base, M_VALUE);
        at(c, n);
        uint8_t d = (uint8_t)(mode | (n->name2 ? 4 : 0));
        uint32_t prep = emit_sbx(c, KP_BC_ITERPREP, base, 0);
        c->fn->p->code[prep].d = d;
        uint32_t jnext = emit_sbx(c, KP_BC_JMP, 0, 0);
        uint32_t body = pc(c);
        push_loop(c);
        push_scope(c);
        if (n->name2) {
            add_local(c, intern(c, n->name), v1, NULL);
            Local *ev = add_local(c, intern(c, n->name2), v2, NULL);
            if (mode == 1) ev->through = 1;
        } else {
            Local *ev = add_local(c, intern(c, n->name), v1, NULL);
            if (mode == 1) ev->through = 1;
        }
        if (n->b) compile_block_body(c, n->b);
        pop_scope(c, true);
        uint32_t cont = pc(c);
        patch(c, jnext, cont);
        at(c, n);
        uint32_t nx = emit_sbx(c, KP_BC_ITERNEXT, base, 0);
        c->fn->p->code[nx].d = d;
        patch(c, nx, body);
        uint32_t end = pc(c);
        patch(c, prep, end);
        emit(c, KP_BC_ITEREND, base, 0, 0, 0);
        pop_loop(c, end, cont);
    }
    pop_scope(c, false);
    reg_free_to(c, save);
    forget_moves_since(c, 0);
}

/* Builds the return value of a function with named outputs into r. */
static void emit_outputs(C *c, uint32_t r) {
    Fn *f = c->fn;
    if (f->nouts == 1) {
        emit(c, KP_BC_MOVE, r, f->out_reg, 0, 0);
    } else {
        emit(c, KP_BC_NEWREC, r, add_k(c, kp_ptr(KP_T_TYPE, f->out_type)), f->out_reg, 0);
    }
}

static void compile_return(C *c, KpNode *n) {
    Fn *f = c->fn;
    if (f->is_main && c->func_depth == 0) {
        error_at(c, n, "return outside a function");
        return;
    }
    uint32_t save = f->freereg;
    if (n->a && n->a->kind == KP_N_IDENT) {
        bool global;
        struct KpGlobal *g;
        Local *l = lookup_var(c, intern(c, n->a->name), &global, &g);
        if (l && l != (Local *)1 && !global && l->holds_ref) {
            Local *x = find_local(f, l->holds_ref);
            if (x && !x->boxed) {
                error_at(c, n->a, "'%s' does not live long enough: '%s' holds a reference to it and is returned",
                         x->name, n->a->name);
                kp_diag_note(c->diags,
                             "note: '%s' is declared at line %u and deinitialized when '%s' returns, but the caller gets '%s'\n"
                             "    = hint: keep %s with %s",
                             x->name, x->decl_line, f->p->name, n->a->name, x->name, n->a->name);
                return;
            }
        }
    }
    if (n->a && n->a->kind == KP_N_IDENT && f->ndefers == 0) {
        bool global;
        struct KpGlobal *g;
        Local *l = lookup_var(c, intern(c, n->a->name), &global, &g);
        if (l && l != (Local *)1 && !global) {
            check_not_moved(c, n->a, l);
            at(c, n);
            emit(c, KP_BC_RET, l->reg, 0, 0, 0);
            return;
        }
    }
    if (n->a && n->a->kind == KP_N_UNARY && (n->a->op == KP_OP_REF || n->a->op == KP_OP_MUTREF)) {
        KpNode *pl = n->a->a;
        while (pl && (pl->kind == KP_N_FIELD || pl->kind == KP_N_INDEX)) pl = pl->a;
        if (pl && pl->kind == KP_N_IDENT) {
            bool global;
            struct KpGlobal *g;
            Local *l = lookup_var(c, intern(c, pl->name), &global, &g);
            if (l && l != (Local *)1 && !global && !l->through) {
                error_at(c, n->a, "cannot return a reference to '%s': it is a local of '%s' and is deinitialized when the function returns",
                         pl->name, f->p->name);
                kp_diag_note(c->diags, "hint: return the value itself (it moves to the caller), or keep it with an owner that outlives the call");
                return;
            }
        }
    }
    uint32_t r = reg_alloc(c);
    if (n->a) {
        if (n->a->kind == KP_N_CALL) compile_call(c, n->a, r, f->ret);
        else expr_to(c, n->a, r, M_VALUE);
        if (n->a->kind == KP_N_FIELD || n->a->kind == KP_N_INDEX) emit(c, KP_BC_TAKE, r, 0, 0, 0);
    } else if (f->nouts) {
        at(c, n);
        emit_outputs(c, r);
    } else {
        emit(c, KP_BC_LOADUNIT, r, 0, 0, 0);
    }
    at(c, n);
    if (f->ndefers > 0) emit_exit(c, 0, 0); /* defers and drops in order */
    emit(c, KP_BC_RET, r, 0, 0, 0);
    reg_free_to(c, save);
}

static void compile_jump(C *c, KpNode *n, bool is_break) {
    Fn *f = c->fn;
    if (f->nloops == 0) {
        error_at(c, n, "%s outside a loop", is_break ? "break" : "continue");
        return;
    }
    Loop *lp = &f->loops[f->nloops - 1];
    at(c, n);
    emit_exit(c, lp->depth, lp->ndefers);
    uint32_t j = emit_sbx(c, KP_BC_JMP, 0, 0);
    lp = &f->loops[f->nloops - 1];
    if (is_break) loop_add(c, &lp->breaks, &lp->nbreaks, &lp->cap_breaks, j);
    else loop_add(c, &lp->conts, &lp->nconts, &lp->cap_conts, j);
}

static void compile_defer(C *c, KpNode *n) {
    Fn *f = c->fn;
    KpProto *p = f->p;
    GROW(c, p->defers, &f->cap_defers, p->ndefers);
    uint32_t info = p->ndefers++;
    p->defers[info] = (KpDeferInfo){pc(c), 0, 0, f->freereg};
    IGROW(c, f->defers, f->ndefers, f->cap_adef);
    f->defers[f->ndefers++] = (ActiveDefer){n->a, f->depth, f->freereg, info};
    IGROW(c, f->pending_defers, f->npending, f->cap_pending);
    IGROW(c, f->pending_info, f->npending, f->cap_pinfo);
    f->pending_defers[f->npending] = n->a;
    f->pending_info[f->npending++] = info;
}

/* Records `owner keeps kept` and reports a cycle of keeps in this
 * function (a keeps b keeps a): such values would keep each other alive. */
static void add_kedge(C *c, const char *owner, const char *kept, uint32_t line) {
    Fn *f = c->fn;
    /* does `kept` already reach `owner` through edges owner -> kept? */
    const char *path[66];
    uint32_t lines[66];
    int plen = 0;
    const char *cur = kept;
    bool found = false;
    for (int guard = 0; guard < 64 && !found; guard++) {
        bool step = false;
        for (int i = 0; i < f->nkedges; i++) {
            if (f->kedges[i].owner != cur) continue;
            path[plen] = cur;
            lines[plen++] = f->kedges[i].line;
            cur = f->kedges[i].kept;
            step = true;
            if (cur == owner) found = true;
            break;
        }
        if (!step) break;
    }
    if (found || kept == owner) {
        char buf[512];
        size_t len = (size_t)snprintf(buf, sizeof buf, "%s (line %u)", owner, line);
        for (int i = 0; i < plen && len < sizeof buf - 64; i++)
            len += (size_t)snprintf(buf + len, sizeof buf - len, " -> %s (line %u)", path[i], lines[i]);
        snprintf(buf + len, sizeof buf - len, " -> %s", owner);
        error_at(c, NULL, "these keeps form a cycle: %s keeps %s, which keeps it alive in turn: %s", owner, kept, buf);
        kp_diag_note(c->diags, "hint: keep both with one common owner (keep a with owner, then keep b with owner), or allocate them in an arena that ends them together");
        return;
    }
    if (f->nkedges < 64) {
        f->kedges[f->nkedges].owner = owner;
        f->kedges[f->nkedges].kept = kept;
        f->kedges[f->nkedges++].line = line;
    }
}

/* keep x with a, b (using A): hands the box's count to the owners. */
static void compile_keep(C *c, KpNode *n) {
    Fn *f = c->fn;
    if (!n->a || n->a->kind != KP_N_IDENT) {
        error_at(c, n, "keep needs a variable (or `_` inside a pipe)");
        return;
    }
    const char *name = intern(c, n->a->name);
    Local *l = find_local(f, name);
    if (!l || l->global || kept_index(f, name) < 0 || !l->boxed) {
        error_at(c, n->a, "keep %s: '%s' must be a variable declared in this function", n->a->name, n->a->name);
        return;
    }
    /* the box is the hidden local right after the variable */
    Local *box = NULL;
    for (int i = 0; i < f->nlocals; i++)
        if (&f->locals[i] == l && i + 1 < f->nlocals) box = &f->locals[i + 1];
    if (!box) {
        error_at(c, n->a, "keep %s: no box", n->a->name);
        return;
    }
    uint32_t save = f->freereg;
    uint32_t first = f->freereg;
    for (int i = 0; i < n->list.count; i++) {
        uint32_t o = reg_alloc(c);
        compile_place_ref(c, n->list.items[i], o, KP_VF_PLACE | KP_VF_MUT);
    }
    at(c, n);
    for (int i = 0; i < n->list.count; i++) {
        KpNode *on = n->list.items[i];
        if (on->kind == KP_N_IDENT) add_kedge(c, intern(c, on->name), name, n->line);
    }
    emit(c, KP_BC_KEEP, box->reg, first, (uint32_t)n->list.count, 0);
    reg_free_to(c, save);
}

/* using A { body }: the context allocator is A inside the block and its
 * callees.  A hidden local holds the allocator to restore (KP_T_CTXSAVE);
 * it is the block's first local, so it is dropped last — on every exit,
 * and by the unwinding of a runtime error. */
static void compile_using(C *c, KpNode *n) {
    push_scope(c);
    uint32_t save = reg_alloc(c);
    uint32_t mark = c->fn->freereg;
    uint32_t ar;
    if (n->a->kind == KP_N_IDENT) {
        bool global;
        struct KpGlobal *g;
        Local *l = lookup_var(c, intern(c, n->a->name), &global, &g);
        if (l && l != (Local *)1 && !global) ar = l->reg;
        else { ar = reg_alloc(c); compile_place_ref(c, n->a, ar, KP_VF_PLACE); }
    } else if (is_place(n->a)) {
        ar = reg_alloc(c);
        compile_place_ref(c, n->a, ar, KP_VF_PLACE);
    } else {
        error_at(c, n->a, "using needs an allocator variable (an allocator made for the block would die before its values)");
        ar = reg_alloc(c);
    }
    at(c, n);
    emit(c, KP_BC_USING, save, ar, 0, 0);
    uint32_t alloc_reg = ar < mark ? ar : NO_REG;
    if (alloc_reg == NO_REG && n->a->kind == KP_N_IDENT) {
        bool global;
        struct KpGlobal *g;
        Local *al = lookup_var(c, intern(c, n->a->name), &global, &g);
        if (global && g && c->fn->is_main) alloc_reg = g->reg;
        (void)al;
    }
    reg_free_to(c, mark);
    Local *l = add_local(c, intern(c, "(using)"), save, NULL);
    c->using_depth++;
    l->using_mark = 1;
    l->using_alloc = alloc_reg;
    l->using_node = n->a;
    if (n->b && n->b->kind == KP_N_BLOCK) compile_block_body(c, n->b);
    c->using_depth--;
    pop_scope(c, true);
}

static void compile_stmt(C *c, KpNode *n) {
    if (!n) return;
    at(c, n);
    uint32_t save = c->fn->freereg;
    switch (n->kind) {
    case KP_N_DECL: compile_decl(c, n); return;
    case KP_N_ASSIGN: compile_assign(c, n); break;
    case KP_N_EXPRSTMT: {
        uint32_t r = reg_alloc(c);
        KpType *t = expr_to(c, n->a, r, M_BORROW);
        if (!type_scalar(c->vm, t)) emit(c, KP_BC_DROP, r, 1, 0, 0);
        break;
    }
    case KP_N_BLOCK: compile_body(c, n); break;
    case KP_N_IF: compile_if(c, n); forget_moves_since(c, 0); break;
    case KP_N_WHILE: compile_while(c, n); break;
    case KP_N_FOR: compile_for(c, n); break;
    case KP_N_BREAK: compile_jump(c, n, true); break;
    case KP_N_CONTINUE: compile_jump(c, n, false); break;
    case KP_N_RETURN: compile_return(c, n); break;
    case KP_N_DEFER: compile_defer(c, n); break;
    case KP_N_TYPEDECL:
    case KP_N_FUNC: break; /* hoisted */
    case KP_N_KEEP: compile_keep(c, n); break;
    case KP_N_USING: compile_using(c, n); break;
    default: {
        uint32_t r = reg_alloc(c);
        KpType *t = expr_to(c, n, r, M_BORROW);
        if (!type_scalar(c->vm, t)) emit(c, KP_BC_DROP, r, 1, 0, 0);
        break;
    }
    }
    reg_free_to(c, save);
}

static void compile_block_body(C *c, KpNode *block) {
    if (c->fn->depth >= 0 && c->fn->depth < 64) c->fn->blocks[c->fn->depth] = block;
    hoist_block(c, &block->list);
    for (int i = 0; i < block->list.count; i++) compile_stmt(c, block->list.items[i]);
}

/* ------------------------------------------------------------ protos */

static KpProto *new_proto(C *c, const char *name) {
    KpProto *p = kp_arena_alloc(&c->vm->meta_arena, sizeof(KpProto), 16);
    memset(p, 0, sizeof *p);
    p->name = name;
    p->src = c->src;
    return p;
}

static void finish_defers(C *c) {
    Fn *f = c->fn;
    /* defers still open at the end (top level of main) */
    for (int i = 0; i < f->npending; i++) {
        if (f->p->defers[f->pending_info[i]].code_pc) continue;
        KpDeferInfo *di = &f->p->defers[f->pending_info[i]];
        di->code_pc = pc(c);
        uint32_t save = f->freereg;
        f->freereg = di->watermark;
        int nd = f->ndefers;
        f->ndefers = 0;
        compile_stmt(c, f->pending_defers[i]);
        f->ndefers = nd;
        emit(c, KP_BC_DEFEREND, 0, 0, 0, 0);
        f->freereg = save;
    }
}

static void compile_function(C *c, KpNode *n, KpOverload *ov) {
    Fn fn;
    memset(&fn, 0, sizeof fn);
    fn.outer = c->fn;
    fn.p = new_proto(c, ov->func->name);
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
    scan_keeps(c, &fn, n->b);
    push_scope(c);
    for (int i = 0; i < ov->nparams; i++) {
        uint32_t r = reg_alloc(c);
        KpParam *p = &ov->params[i];
        const char *pname = p->name ? p->name : intern(c, "_");
        Local *pl = add_local(c, pname, r, p->type);
        if (p->mode == KP_PM_MUTREF) pl->through = 1;
        else if (p->mode == KP_PM_REF) pl->through = 2;
    }
    if (n->a && n->a->kind == KP_N_OUTPUTS) {
        fn.nouts = n->a->list.count;
        fn.out_reg = fn.freereg;
        for (int i = 0; i < fn.nouts; i++) {
            KpNode *o = n->a->list.items[i];
            uint32_t r = reg_alloc(c);
            KpType *t = o->a ? resolve_type(c, o->a) : NULL;
            add_local(c, intern(c, o->name ? o->name : "_"), r, t);
        }
        if (fn.nouts > 1) fn.out_type = ov->ret;
        fn.p->named_outputs = 1;
        emit(c, KP_BC_DROP, fn.out_reg, (uint32_t)fn.nouts, 0, 0); /* unset until assigned */
    }
    push_scope(c);
    compile_block_body(c, n->b);
    /* falling off the end: the result, then the defers and drops in order */
    uint32_t r = reg_alloc(c);
    if (fn.nouts) emit_outputs(c, r);
    else emit(c, KP_BC_LOADUNIT, r, 0, 0, 0);
    if (fn.ndefers > 0) emit_exit(c, 0, 0);
    emit(c, KP_BC_RET, r, 0, 0, 0);
    pop_scope(c, false);
    pop_scope(c, false);
    finish_defers(c);
    c->npipe = save_npipe;
    c->func_depth--;
    c->fn = outer;
    if (c->vm->dump_bytecode) kp_dump_proto(c->vm, fn.p);
}

KpProto *kp_compile_ex(KpVM *vm, const KpSource *src, KpNode *program, KpDiags *diags, bool repl) {
    C c;
    memset(&c, 0, sizeof c);
    c.vm = vm;
    c.src = src;
    c.diags = diags;
    c.repl = repl;
    int errors_before = diags->count;
    Fn fn;
    memset(&fn, 0, sizeof fn);
    fn.is_main = true;
    fn.p = new_proto(&c, intern(&c, "main"));
    c.fn = &fn;

    /* reserve a register for every top-level variable */
    for (int i = 0; i < program->list.count; i++) {
        KpNode *s = program->list.items[i];
        if (!s || s->kind != KP_N_DECL) continue;
        const char *name = intern(&c, s->name);
        IGROW(&c, vm->globals, (int)vm->nglobals, vm->globals_cap);
        vm->globals[vm->nglobals++] = (struct KpGlobal){name, vm->main_nregs++, NULL, 1};
    }
    fn.freereg = vm->main_nregs;
    fn.p->nregs = vm->main_nregs;
    scan_keeps(&c, &fn, program);
    if (repl && program->list.count > 0) {
        /* the REPL shows the value of a final expression statement */
        KpNode *last = program->list.items[program->list.count - 1];
        if (last && last->kind == KP_N_EXPRSTMT && last->a && last->a->kind != KP_N_ASSIGN) {
            KpNode *call = kp_ast_new(&vm->meta_arena, KP_N_CALL, last->line, last->col);
            KpNode *callee = kp_ast_new(&vm->meta_arena, KP_N_IDENT, last->line, last->col);
            if (call && callee) {
                callee->name = "#show";
                call->a = callee;
                kp_ast_push(&vm->meta_arena, &call->list, last->a);
                last->a = call;
            }
        }
    }
    compile_block_body(&c, program);
    /* top-level function bodies compiled in hoist_block; now the end */
    at(&c, NULL);
    /* end of the chunk: top-level defers run now (globals stay alive) */
    if (fn.ndefers > 0) emit_exit(&c, -1, 0);
    emit(&c, KP_BC_HALT, 0, 0, 0, 0);
    finish_defers(&c);
    /* record names of globals in the local info for messages */
    for (int i = 0; i < fn.nlocals; i++) note_local_info(&c, &fn.locals[i]);
    for (uint32_t i = 0; i < vm->nglobals; i++) vm->globals[i].pending = 0;
    if (diags->count > errors_before) return NULL;
    if (vm->dump_bytecode) kp_dump_proto(vm, fn.p);
    return fn.p;
}

KpProto *kp_compile(KpVM *vm, const KpSource *src, KpNode *program, KpDiags *diags) {
    return kp_compile_ex(vm, src, program, diags, false);
}
