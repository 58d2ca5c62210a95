/*
 * compiler_int.h — the compiler's internal header: the state the passes
 * share (the compiler `C`, the function being compiled `Fn`, its `Local`s,
 * scopes, loops and active defers) and the functions one pass module calls
 * in another.  Nothing outside compiler/ includes it; the compiler's
 * entry points (kp_compile, kp_compile_ex, kp_emit_ownership) are declared
 * in compiler/compiler.h, for the driver (api/).
 *
 * The modules, in the order data flows through them:
 *   resolve.c       names: scopes, lookup of locals/globals/types/functions,
 *                   hoisting of declarations
 *   types.c         static types: type expressions, record layouts,
 *                   generics, function signatures, constant folding
 *   summary.c       function summaries: which parameters flow into a
 *                   function's result and into its $& parameters
 *   ownpass.c       the ownership pass, over each function body before
 *                   its code is generated: use after a certain move,
 *                   reference escapes (through summaries too), values
 *                   outliving their allocator, returned borrows, keep
 *                   cycles — every ownership diagnostic
 *   ownership.c     the ownership rules carried out while generating
 *                   code: drops on every exit path, defers, keep boxes,
 *                   pins; and the ownership record (--emit=ownership)
 *   codegen.c       register bytecode: emission primitives, expressions,
 *                   calls and pipes
 *   codegen_stmt.c  register bytecode: declarations, assignments, control
 *                   flow, returns, function bodies
 *   compile.c       the driver: the shared helpers and kp_compile
 *   emit.c          the listing of the ownership record (--emit=ownership)
 * Names carry their module: kp_resolve_, kp_types_, kp_sum_, kp_own_ (ownpass.c
 * and ownership.c), kp_cg_,
 * kp_compile_.
 */
#ifndef KP_COMPILER_INT_H
#define KP_COMPILER_INT_H

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "../parser/ast.h"
#include "../vm/vm.h"
#include "compiler.h"

typedef struct Local Local;

struct Local {
    const char *name;
    uint32_t reg;
    KpType *type;      /* static type, or NULL */
    bool global;       /* top-level variable: reg is an absolute stack slot */
    bool far;          /* a top-level variable in the far region (vm.h
                          KpVM.globals): main reaches it as functions do,
                          with GETG/SETG of global gidx, never as a register */
    uint32_t gidx;     /* top-level variables: the index in vm->globals */
    int depth;
    uint32_t moved_line, moved_col; /* certain move, 0 = none: what the
                                       ownership record says of its drop
                                       (the diagnostics are ownpass.c's) */
    uint8_t may_move;  /* moved on some path (the ownership record: its drop
                          happens only if it was not) */
    uint32_t start_pc;
    uint8_t using_mark; /* the hidden local of a `using` block */
    uint8_t through;    /* holds a reference: 1 = $& (assignment writes
                           through it), 2 = & (assignment is an error) */
    uint32_t using_alloc; /* its allocator's register (NO_REG: not a local) */
    uint32_t decl_line, decl_col; /* where it was declared */
    uint8_t boxed;        /* a kept variable (lives in a keep box) */
    uint8_t view_elem;    /* a View variable whose elements are known to
                             read as Float (1) or as Int (2), 0: unknown
                             (kp_cg_view_elem: codegen.c) */
    uint8_t addr_taken;   /* a reference to it was made: its register is
                             cleared at scope exit even when it holds a
                             scalar, so the reference is seen to die */
    KpNode *using_node;
    int32_t prev_same;    /* the older local of the same name, or -1 (the
                             chain of Fn.lindex) */
    KpNode *decl;         /* its declaration (DECL, FOR), whose KP_F_DROPS /
                             KP_F_DROPS2 bit (decl_bit) is the ownership
                             pass's plan for the end of its scope; NULL for
                             parameters and hidden locals */
    uint32_t decl_bit;
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
    uint32_t cap_code, cap_k, cap_calls, cap_defers, cap_locals, cap_tries;
    Local *locals;
    int nlocals, cap_loc;
    /* name -> index of the newest local of that name (-1: none now), open
     * addressing over interned name pointers: lookups and redeclaration
     * checks cost O(1), not a scan of every local (resolve.c) */
    struct LocalSlot { const char *name; int32_t idx; } *lindex;
    uint32_t lindex_cap, lindex_n;
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
     * declaration; the keep edges and their cycles are ownpass.c's) */
    struct {
        const char *name;
        KpNode *using_expr;
        bool manual;      /* `keep x` with no owner */
        uint32_t box_reg; /* a top-level variable's box: a reserved slot */
    } kept[64];
    int nkept;
    KpNode *blocks[64]; /* the block being compiled at each depth */
} Fn;

/* One change a chunk made to what the VM keeps from chunk to chunk (the
 * functions' overloads, a type's user deinit): the compiler logs it before
 * making it (kp_compile_undo_push), and when the chunk fails to compile —
 * errors or out of memory — kp_compile_own undoes the log newest first, so
 * a failed REPL line or host chunk leaves every function and type exactly
 * as it was (the types it declared are dropped, its reserved globals are
 * released by the driver). */
typedef enum KpUndoKind { KP_UNDO_APPEND, KP_UNDO_REDEFINE, KP_UNDO_DEINIT } KpUndoKind;
struct KpDeclUndo {
    KpUndoKind kind;
    KpFunc *f;            /* APPEND: the function that gained an overload */
    KpOverload *ov;       /* REDEFINE: the overload redefined in place */
    KpOverload saved;     /* REDEFINE: what it was */
    KpType *type;         /* DEINIT: the type whose user deinit was set */
    KpOverload *old_deinit;
};

/* How many declarations of a function name the chunk has, and how many
 * are hoisted so far (typecheck.c: a function's overloads are complete
 * when every one is). */
typedef struct KpDeclCount {
    const char *name;
    uint32_t total, seen;
} KpDeclCount;

typedef struct PipeVal {
    uint32_t reg;        /* register holding the value (or the place);
                            global: the index in vm->globals */
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
    struct {
        KpDeclCount *items; /* open addressing on the interned name */
        uint32_t n, cap;
    } decls;
    /* the ownership record being written (NULL: none asked for), and what
     * the next ownership instruction emitted is about, when its registers
     * do not tell (ownership.c kp_own_record) */
    KpOwnLog *own;
    void *own_pass; /* the ownership pass running (ownpass.c), or NULL: per
                       compile, as VMs on other threads compile at once */
    bool own_dead; /* compiling code after a final return: never runs */
    struct {
        const char *what, *why;
        KpType *type;
        bool set, quiet, maybe;
    } hint;
} C;

/* How an expression's value is wanted: as a value (consumed: a movable
 * value moves) or borrowed (a reference to a place, or a temporary). */
enum { M_VALUE = 0, M_BORROW = 1 };

/* An operand of an arithmetic instruction (codegen.c kp_cg_operand). */
typedef struct Operand {
    uint32_t r;        /* register, or constant | KP_RK_CONST */
    bool temp;         /* a temporary this expression allocated */
    KpType *type;
    bool borrowed;     /* the temporary holds an implicit borrow (a field
                          or element of a variable, of a record, list or
                          map type, read for its container): it owns
                          nothing, so it needs no DROP */
} Operand;

/* ------------------------------------------------------------ helpers */

/* "no register" */
#define NO_REG 0xffffffffu
/* Grows the array `arr` (capacity *cap, uint32_t) to hold element n. */
#define GROW(c, arr, cap, n) ((arr) = kp_compile_grow((c), (arr), (cap), (n), sizeof *(arr)))
/* The same for int counts and capacities. */
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

static inline int igrow_cap(int cap) { return cap ? cap * 2 : 16; }

/* A hash of an interned name's pointer, for the passes' open-addressing
 * tables (mask the result with the power-of-two capacity). */
static inline uint32_t kp_compile_hash_ptr(const void *p) {
    uintptr_t x = (uintptr_t)p;
    x ^= x >> 17;
    x *= 0x9E3779B1u;
    return (uint32_t)(x ^ (x >> 15));
}

/* compile.c — the driver of the passes and their shared state */
KpString *kp_compile_const_str(C *c, const char *s, size_t len);
void kp_compile_error(C *c, KpNode *n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void *kp_compile_grow(C *c, void *arr, uint32_t *cap, uint32_t n, size_t elem);
const char *kp_compile_intern(C *c, const char *s);
KpProto *kp_compile_new_proto(C *c, const char *name);
void kp_compile_undo_push(C *c, const struct KpDeclUndo *u);

/* resolve.c — names, scopes, hoisting */
Local *kp_resolve_add_local(C *c, const char *name, uint32_t reg, KpType *t);
KpFunc *kp_resolve_find_func(C *c, const char *name);
struct KpGlobal *kp_resolve_find_global(C *c, const char *name);
Local *kp_resolve_find_local(Fn *f, const char *name);
TypeBind *kp_resolve_find_type(C *c, const char *name);
/* The newest global of this name still pending (reserved by this chunk). */
struct KpGlobal *kp_resolve_find_pending_global(C *c, const char *name);
/* A local is popped at the end of its block (ownership.c). */
void kp_resolve_pop_local(Fn *f);
void kp_resolve_hoist_block(C *c, KpNodeList *stmts);
bool kp_resolve_is_place(KpNode *n);
bool kp_resolve_has_hole(KpNode *n);
int kp_resolve_local_index(Fn *f, Local *l);
Local *kp_resolve_lookup_var(C *c, const char *name, bool *global, struct KpGlobal **g);
void kp_resolve_note_local_info(C *c, Local *l);
KpNode *kp_resolve_place_root(KpNode *n);
KpNode *kp_resolve_root_ident(KpNode *n);
/* Finds the captures of function literal `lit` (once): its list2, one
 * KP_N_UNARY (& / $& / ~&) of a KP_N_IDENT per outer name its body uses. */
void kp_resolve_captures(C *c, KpNode *lit);
/* Calls use() once per name function fn (a FUNC or FUNCLIT node) uses
 * without declaring it, with how it uses it at the strongest (KP_OP_REF:
 * read, KP_OP_MUTREF: assigned or `$&`, KP_OP_MOVE: `~&`) and one place;
 * the same walk as kp_resolve_captures, rewriting nothing. */
void kp_resolve_outer_uses(C *c, KpNode *fn, void (*use)(void *ud, const char *name, int op, KpNode *at), void *ud);

/* parcheck.c — what a parallel call's worker function may touch */
/* After kp_sum_block: works out, for each function of the block, the
 * top-level variable it writes, directly or through the functions it
 * calls (KpOverload.par_writes). */
void kp_parcheck_block(C *c, KpNode **fns, KpOverload **ovs, int n);
/* A call of parallel_map / parallel_for: compile errors for a worker
 * function (its last argument) that writes a captured variable or a
 * top-level one (docs/language.md §15). */
void kp_parcheck_call(C *c, KpNode *call, const char *who);

/* types.c — static types, signatures, constant folding */
KpType *kp_types_anon(C *c, int n, const char **names, KpType **types);
KpType *kp_types_builtin(C *c, const char *name);
KpFunc *kp_types_ctor_func(C *c);
KpOverload *kp_types_declare_function(C *c, KpNode *n);
/* The overload of function literal n (its captures found, their static
 * types in captypes, NULL = unknown), and its closure type in n->stype
 * when it captures; `name` is what its values print. */
KpOverload *kp_types_declare_literal(C *c, KpNode *n, KpType **captypes, const char *name);
KpType *kp_types_derived(C *c, KpTypeKind kind, KpType *elem, KpType *key, int refmode);
void kp_types_fill_record(C *c, KpType *t, KpNode *decl);
bool kp_types_fits_i32(int64_t v);
bool kp_types_fold_binary(C *c, KpNode *n, KpValue *out);
bool kp_types_fold_number(KpNode *n, KpValue *out);
bool kp_types_bitwise(int op, int64_t a, int64_t b, int64_t *r);
bool kp_types_is_num(KpVM *vm, KpType *t);
KpType *kp_types_new(C *c, KpTypeKind kind, const char *name);
KpType *kp_types_resolve(C *c, KpNode *n);
bool kp_types_same_static(C *c, KpType *want, KpType *have);
KpType *kp_types_static_binop_type(C *c, int op, KpType *a, KpType *b);
bool kp_types_movable(KpType *t);
bool kp_types_scalar(KpVM *vm, KpType *t);

/* ownership.c — moves, drops, defers, keeps, escapes */
KpNode *kp_own_borrowed_arg(C *c, KpNode *value, const char **what);
void kp_own_defer(C *c, KpNode *n);
void kp_own_keep(C *c, KpNode *n);
void kp_own_using(C *c, KpNode *n);
void kp_own_emit_exit(C *c, int depth, int ndefers_floor);
void kp_own_finish_defers(C *c);
void kp_own_forget_moves_since(C *c, int nlocals);
int kp_own_kept_index(Fn *f, const char *name);
bool kp_own_mentions_keep_of(KpNode *n, const char *name);
uint32_t kp_own_pinned(C *c, KpNode *n);
void kp_own_pop_scope(C *c, bool emit_drops);
void kp_own_push_scope(C *c);
bool kp_own_local_drops(C *c, const Local *l);
bool kp_tc_names_ref_param(C *c, const KpNode *init);
uint8_t kp_own_read_flags(int mode, KpNode *container);
void kp_own_scan_keeps(C *c, Fn *f, KpNode *n);
bool kp_own_param_flows(const KpOverload *ov, int i);

/* The ownership record (compiler.h KpOwnLog): kp_own_record is called by
 * kp_cg_emit for every instruction that moves, drops or keeps; kp_own_note
 * adds an event the instruction's registers do not show (the by-value
 * arguments a call may move); kp_own_hint names the value the next one is
 * about (quiet: it owns nothing, such as a register cleared before use). */
void kp_own_record(C *c, uint8_t op, uint32_t a, uint32_t b, uint32_t cc, uint8_t d);
void kp_own_note(C *c, int kind, const char *what, KpType *type, bool maybe, const char *why);
/* Records a `catch` of variable `name` at the current position (the
 * listing shows where errors unwind to). */
void kp_own_note_catch(C *c, const char *name);
void kp_own_hint(C *c, const char *what, KpType *type, const char *why);
void kp_own_quiet(C *c);
void kp_own_note_end(C *c);
/* A function literal captures `name` (op: KP_OP_REF, KP_OP_MUTREF, KP_OP_MOVE). */
void kp_own_note_capture(C *c, const char *name, KpType *type, int op);
void kp_own_note_summary(C *c, const KpOverload *ov);

/* codegen.c — bytecode emission, expressions and calls */
uint32_t kp_cg_add_k(C *c, KpValue v);
/* `v := init` declaring local `name`: 1 when init is certain to make a
 * View whose elements read as Float, 2 as Int, and v can hold no other
 * value while it lives (see codegen.c); else 0. */
uint8_t kp_cg_view_elem(C *c, KpNode *init, KpNode *decl, bool top);
void kp_cg_at(C *c, KpNode *n);
uint8_t kp_cg_binop_code(int op, bool *swap);
/* The instruction of arithmetic op on operands of static types ta, tb:
 * ADDF, SUBF, MULF, DIVF when both are Float, else kp_cg_binop_code's. */
uint8_t kp_cg_arith_code(C *c, int op, KpType *ta, KpType *tb);
KpType *kp_cg_call(C *c, KpNode *n, uint32_t dst, KpType *expect);
KpType *kp_cg_place_ref(C *c, KpNode *n, uint32_t dst, uint8_t flags);
uint32_t kp_cg_emit(C *c, uint8_t op, uint32_t a, uint32_t b, uint32_t cc, uint8_t d);
uint32_t kp_cg_emit_sbx(C *c, uint8_t op, uint32_t a, int32_t sbx);
/* Emits an instruction with no ownership record (VGET, EXTRA, JFUNIT:
 * they move and drop nothing; the general sequence after them records
 * what it does), leaving the pending hint to that sequence. */
uint32_t kp_cg_emit_quiet(C *c, uint8_t op, uint32_t a, uint32_t b, uint32_t cc, uint8_t d);
/* Moves the value of a field or element read into register r out of its
 * place (TAKE r), unless the read just emitted already took it: a
 * GETFIELD/GETINDEX into r in take mode (d & 3 == 1) leaves a value, no
 * implicit borrow, so its TAKE would do nothing. */
void kp_cg_take(C *c, uint32_t r);
/* The local variable x names, held in a register of this frame (its
 * value, or the reference a $& parameter or kept variable holds:
 * Local.through), or NULL (not a variable, a global, an enclosing
 * function's). */
Local *kp_cg_reg_local(C *c, KpNode *x);
/* Is x Int arithmetic that compiles to nothing or to arithmetic only: an
 * Int literal, an Int local in its own register (depth 0), or + and - of
 * such, at most `depth` levels deep?  It calls nothing and moves nothing. */
bool kp_cg_pure_int(C *c, KpNode *x, int depth);
/* A fused instruction (GETFX, SETFX: vm/opcodes.h) for the field-then-
 * element access `v.f[index]` at node `at`: computes an index that is
 * arithmetic into a temporary first (*idx, left as it is for a literal or
 * a local), then emits `op` with no ownership record and returns its
 * position, for kp_cg_fused_done once the general sequence follows it. */
uint32_t kp_cg_fused_begin(C *c, KpNode *at, uint8_t op, KpNode *index, Operand *idx);
/* Ends the fused instruction at fx: kept, with a = the length of the
 * general sequence after it, when that sequence begins with a GETFIELD
 * and then `second` (GETINDEX, SETINDEX) on its result, which is what the
 * VM reads; otherwise made a NOP. */
void kp_cg_fused_done(C *c, uint32_t fx, uint8_t second);
/* GETG: R(dst) := global g (d as GETFIELD); SETG: global g := R(src)
 * (d=1: global g is dropped, src unused).  The global's index is a 32-bit
 * operand in b:c. */
/* The constant list of a packed list literal (parser/ast.h KpPacked):
 * immortal, in the VM's metadata; NEWLISTK copies it. */
uint32_t kp_cg_packed_k(C *c, const KpPacked *pk);
uint32_t kp_cg_getg(C *c, uint32_t dst, const struct KpGlobal *g, uint8_t d);
uint32_t kp_cg_setg(C *c, const struct KpGlobal *g, uint32_t src, uint8_t d);
KpType *kp_cg_expr(C *c, KpNode *n, uint32_t dst, int mode);
void kp_cg_free_operand(C *c, Operand *o, bool may_own);
uint32_t kp_cg_k_name(C *c, const char *name);
Operand kp_cg_operand(C *c, KpNode *n);
void kp_cg_patch(C *c, uint32_t j, uint32_t target);
uint32_t kp_cg_pc(C *c);
uint32_t kp_cg_reg_alloc(C *c);
void kp_cg_reg_free_to(C *c, uint32_t mark);

/* codegen_stmt.c — statements and function bodies */
void kp_cg_block_body(C *c, KpNode *block);
void kp_cg_function(C *c, KpNode *n, KpOverload *ov);
void kp_cg_stmt(C *c, KpNode *n);

/* The closest name to `name` among candidates (edit distance at most a
 * third of its length), for "help: did you mean 'x'?" (compile.c). */
typedef struct KpSimilar {
    const char *name, *best;
    size_t max, dist;
} KpSimilar;
void kp_compile_similar_init(KpSimilar *s, const char *name);
void kp_compile_similar_try(KpSimilar *s, const char *cand);
void kp_compile_similar_names(C *c, KpSimilar *s, bool vars, bool funcs, bool types);
void kp_compile_similar_help(C *c, KpSimilar *s);

/* summary.c — function summaries: parameters flowing into results and
 * into $& parameters */
void kp_sum_block(C *c, KpNodeList *stmts, KpOverload **ovs, int novs);
bool kp_sum_ret_flows(const KpOverload *ov, int i);
void kp_sum_check_call(C *c, KpNode *n, KpNode *pipe_first);

/* ownpass.c — the ownership pass: the ownership diagnostics of a
 * function body, before its code is generated */
void kp_own_pass(C *c, KpNode *block);
/* `target = &x` (or a call storing &x into target, summary.c): an error
 * when target outlives x (the pass running decides). */
void kp_own_check_ref_escape(C *c, KpNode *target, KpNode *value, KpNode *at_node);

/* module.c — modules' names (see its essay): renames a module's
 * top-level names to its prefix and an importer's `alias.member` to the
 * member's name, refuses `system` in a module, and empties the top-level
 * `name := import(...)` declarations (the driver has loaded them); run
 * before every other pass, on the chunk vm->cur_module / cur_aliases
 * describe. */
void kp_mod_rewrite(C *c, KpNode *program);
/* The same for one expression of the main script (the REPL's :type). */
void kp_mod_rewrite_expr(C *c, KpNode *expr);
/* Is this a function the library (or the host) defines? */
bool kp_mod_is_library_func(KpVM *vm, const char *name);

/* typecheck.c — the types pass */
void kp_tc_block(C *c, KpNode *block);
void kp_tc_count_decls(C *c, KpNode *n);
void kp_tc_declared(C *c, const char *name);
/* Does the chunk declare a function `name` (at any depth)? */
bool kp_tc_chunk_declares(C *c, const char *name);
KpType *kp_tc_expr_type(C *c, KpNode *n);

#endif
