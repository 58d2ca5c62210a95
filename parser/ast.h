/*
 * ast.h — the abstract syntax tree the parser builds and the compiler reads.
 *
 * One node struct for every kind, with children by role (a, b, c, d, list,
 * list2): the table below says which roles each kind uses.  Nodes, names and
 * decoded string bytes live in the compile arena (a KpArena); nothing in the
 * AST is freed piecemeal.  Names are NUL-terminated copies.
 *
 * Positions are 1-based line and column (column counts bytes) of the node's
 * first token, except where the table names another token (operators point
 * at the operator, so errors can put the caret there).
 */
#ifndef KP_AST_H
#define KP_AST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../alloc/alloc.h"
#include "../lexer/source.h"

typedef enum KpNodeKind {
    /* ---------------------------------------------------------- literals */
    KP_N_INT,     /* ival.  `42`, `0x2A`, `1_000`                        */
    KP_N_FLOAT,   /* fval.  `1.5`, `2e10`                                 */
    KP_N_STRING,  /* str/str_len: decoded bytes (escapes done), may hold NUL */
    KP_N_BOOL,    /* ival 0/1.  `true`, `false`                           */
    KP_N_UNIT,    /* `()`                                                 */
    KP_N_IDENT,   /* name.  Also `#get_fields`, `#check_cycles` (name keeps
                     the '#').                                            */
    KP_N_HOLE,    /* `_`: the piped value, or the implementing value in an
                     Abstract's signatures, or an unnamed parameter       */
    KP_N_LIST,    /* list: elements.  `[1, 2, 3]`, `[]`.  A long literal
                     of Int (or Float) literals only has no element nodes:
                     list is empty and `packed` holds the values (see
                     KpPacked)                                            */
    KP_N_MAP,     /* list: KP_N_PAIR items.  `("a" = 1, "b" = 2)`         */
    KP_N_PAIR,    /* a = key, b = value (inside KP_N_MAP)                 */
    KP_N_RECORD,  /* list: KP_N_FIELDINIT items.  `(.x = 1, .y = 2)`      */
    KP_N_FIELDINIT, /* name, a = value.  `.x = 1` (records, named args)  */

    /* ------------------------------------------------------- expressions */
    KP_N_BINARY,  /* op (KpOp), a, b; pos = the operator's position       */
    KP_N_UNARY,   /* op (KP_OP_NEG, KP_OP_NOT, KP_OP_REF `&`, KP_OP_MUTREF
                     `$&`, KP_OP_MOVE `~&`), a                            */
    KP_N_CALL,    /* a = callee expr, list = args (expr or KP_N_FIELDINIT
                     for a named arg `.p = v`); pos = the '(' position.
                     `f(x)`, `Point(.x = 1)`, `init()`                     */
    KP_N_FIELD,   /* a = object, name.  `p.x`; pos = the '.'              */
    KP_N_INDEX,   /* a = object, b = index.  `xs[i]`; pos = the '['       */
    KP_N_GENERIC, /* a = generic expr, list = args (exprs, or FIELDINIT for
                     `.a = Int`).  `List#(Int)`, `Pair#(Int, String)`     */
    KP_N_PIPE,    /* a = lhs, b = rhs; pos = the '|'.  The rhs is whatever
                     follows the bar: a KP_N_CALL (`f(_, 1)`, `f(1)`), a bare
                     callee (KP_N_IDENT `deinit`, KP_N_FIELD `m.f`), or a
                     KP_N_KEEP (`keep _ with r`).                          */
    KP_N_FUNCLIT, /* a function literal: list = params (KP_N_PARAM), a =
                     return spec (as KP_N_FUNC's), b = body, list2 = its
                     captures, found by the compiler (resolve.c
                     kp_resolve_captures): one KP_N_UNARY per captured
                     variable, op KP_OP_REF (`&x`), KP_OP_MUTREF (`$&x`)
                     or KP_OP_MOVE (`~&x`: taken), a = a KP_N_IDENT;
                     bound = its overload, stype = its type (set by the
                     types pass).  `(a: &P, b: &P) -> Bool := { ... }`  */
    KP_N_REFTYPE, /* op (KP_OP_REF/KP_OP_MUTREF/KP_OP_MOVE), a = type expr.
                     Only in type position: `x: &Point`, `-> $&T`         */

    /* -------------------------------------------------------- statements */
    KP_N_BLOCK,   /* list: statements.  `{ ... }`, and the whole program   */
    KP_N_DECL,    /* name, a = type expr or NULL, b = initializer or NULL.
                     `x := e` (a NULL), `x : T = e`, `x : T` (b NULL)      */
    KP_N_ASSIGN,  /* op (KP_OP_NONE for `=`, KP_OP_ADD for `+=`, SUB, MUL,
                     DIV, MOD), a = target (IDENT, FIELD or INDEX), b = value;
                     pos = the '=' token                                  */
    KP_N_EXPRSTMT,/* a = expression                                       */
    KP_N_FUNC,    /* name, list = params (KP_N_PARAM), a = return spec or
                     NULL (see below), b = body (KP_N_BLOCK) or NULL for a
                     signature inside an Abstract.
                       add (a: Int, b: Int) -> Int := { ... }
                       divmod (a: Int, b: Int) -> (.q: Int, .r: Int) := {...}
                       deinit (.p: $&Point) -> () := { ... }
                       main () := { ... }
                     Return spec: a type expr (IDENT, GENERIC, FIELD,
                     REFTYPE), KP_N_UNIT for `-> ()`, or KP_N_OUTPUTS.    */
    KP_N_OUTPUTS, /* list: KP_N_PARAM (named outputs).  `(.q: Int, .r: Int)` */
    KP_N_PARAM,   /* name (NULL for `_`), flags KP_F_NAMED when written
                     `.name`, a = type expr or NULL (untyped), b = default
                     value expr or NULL.  `a: Int`, `.p: $&Point`, `_`,
                     `.name: T = v`                                        */
    KP_N_TYPEDECL,/* name, list = members, list2 = generic params
                     (KP_N_PARAM, empty when not generic), flags
                     KP_F_ABSTRACT for `: Abstract`.  Members are
                     KP_N_FIELDDECL for `Type`, KP_N_FUNC signatures (b NULL)
                     for `Abstract`.
                       Point : Type = ( .x : Int \n .y : Int = 0 )
                       Pair#(.a: Type, .b: Type) : Type = ( .first: a ... )
                       Allocator : Abstract = ( alloc (_, size: Int) -> HeapAllocation ) */
    KP_N_FIELDDECL, /* name, a = type expr or NULL, b = default or NULL.
                     `.x : Int = 0`                                       */
    KP_N_IF,      /* a = condition, b = then block, c = else (KP_N_BLOCK,
                     KP_N_IF for `else if`, or NULL)                      */
    KP_N_WHILE,   /* a = condition, b = body block                        */
    KP_N_FOR,     /* name = first loop variable, name2 = second or NULL
                     (`for k, v in m`), a = iterable expr, b = body.
                     flags: none.  `for i in 0..10 { }`                    */
    KP_N_BREAK,
    KP_N_CONTINUE,
    KP_N_RETURN,  /* a = value or NULL                                    */
    KP_N_DEFER,   /* a = deferred statement (EXPRSTMT, ASSIGN or BLOCK).
                     `#defer expr`, `defer expr`, `defer { ... }`         */
    KP_N_KEEP,    /* a = kept value expr (IDENT or HOLE `_`), list = owner
                     exprs (empty for `keep x` alone), b = `using` allocator
                     expr or NULL.  `keep x with y, z using A`, `#keep ...` */
    KP_N_USING,   /* a = allocator expr, b = block.  `using A { ... }`     */
    KP_N_TRY,     /* a = try block, name = the catch variable (NULL for
                     `_`), b = catch block.  `try { ... } catch e { ... }`.
                     flags: KP_F_PLANNED / KP_F_DROPS for the variable    */
    KP_N__COUNT
} KpNodeKind;

typedef enum KpOp {
    KP_OP_NONE,
    KP_OP_ADD, KP_OP_SUB, KP_OP_MUL, KP_OP_DIV, KP_OP_MOD,
    KP_OP_EQ, KP_OP_NE, KP_OP_LT, KP_OP_LE, KP_OP_GT, KP_OP_GE,
    KP_OP_AND, KP_OP_OR, KP_OP_RANGE, /* `..` */
    KP_OP_NEG, KP_OP_NOT, KP_OP_REF, KP_OP_MUTREF, KP_OP_MOVE,
    /* bitwise on Int: `land lor lxor lsl lsr asr`, and prefix `lnot` */
    KP_OP_LAND, KP_OP_LOR, KP_OP_LXOR, KP_OP_LSL, KP_OP_LSR, KP_OP_ASR, KP_OP_LNOT,
} KpOp;

/* Is op one of the binary bitwise operators (land … asr)? */
#define KP_OP_IS_BITWISE(op) ((op) >= KP_OP_LAND && (op) <= KP_OP_ASR)

enum {
    KP_F_NAMED = 1u << 0,    /* PARAM written `.name`                      */
    KP_F_ABSTRACT = 1u << 1, /* TYPEDECL declared `: Abstract`             */
    KP_F_PAREN = 1u << 2,    /* expression was written in parentheses      */
    KP_F_TYPED = 1u << 3,    /* BLOCK already checked by the compiler's
                                types pass (a defer body is compiled at
                                each exit, but checked once)              */
    KP_F_OWNED = 1u << 4,    /* BLOCK already walked by the ownership pass */
    KP_F_OWNERR = 1u << 5,   /* IDENT: its use-after-move error is reported
                                (a defer body is walked at each exit)     */
    KP_F_MOVES = 1u << 6,    /* IDENT: the ownership pass decided that this
                                use moves the variable's value (a consuming
                                use of a movable value, deinit's operand):
                                code generation marks it moved from here  */
    KP_F_PLANNED = 1u << 7,  /* DECL, FOR: the ownership pass decided what
                                the end of the variable's scope does      */
    KP_F_DROPS = 1u << 8,    /* DECL, FOR (its first variable): its
                                register is dropped (cleared) when its
                                scope ends: its value may own something,
                                or a reference to it was made             */
    KP_F_DROPS2 = 1u << 9,   /* FOR: the same for its second variable     */
    KP_F_BYVALUE = 1u << 10, /* a call's argument: the types pass is certain
                                it goes to a by-value parameter (a
                                consuming use, for the ownership pass)    */
    KP_F_CAPTURED = 1u << 11,/* FUNCLIT: its captures are found (list2)   */
    KP_F_REPORTED = 1u << 12, /* IDENT: its error is reported already (an
                                unknown member of a module, a module used
                                as a value: compiler/module.c); code
                                generation says nothing more of it        */
};

typedef struct KpNode KpNode;

/* The elements of a long list literal made only of Int literals (or only
 * of Float literals), packed 8 bytes each in chunks of the arena instead
 * of a node each (a node is 150 bytes): `xs := [0, 1, 2, ...]` of 30 MB
 * costs its values, not a tree.  The parser packs once an item list has
 * KP_PACK_AFTER such items and nothing else, and unpacks (back into
 * nodes, at the position of the first element) if anything else follows
 * or the items turn out to be arguments.  The compiler makes one
 * constant list of them. */
#define KP_PACK_AFTER 64
#define KP_PACK_CHUNK 4096
typedef struct KpPackedChunk {
    struct KpPackedChunk *next;
    uint32_t n;
    union {
        int64_t i;
        double f;
    } v[KP_PACK_CHUNK];
} KpPackedChunk;
typedef struct KpPacked {
    uint16_t kind;         /* KP_N_INT or KP_N_FLOAT */
    uint32_t count;
    uint32_t line, col;    /* the first element's position */
    KpPackedChunk *first, *last;
} KpPacked;

typedef struct KpNodeList {
    KpNode **items;
    int count;
} KpNodeList;

struct KpNode {
    uint16_t kind;  /* KpNodeKind */
    uint16_t op;    /* KpOp where the kind uses one */
    uint32_t flags; /* KP_F_* */
    uint32_t line, col;
    KpNode *a, *b, *c;
    KpNodeList list, list2;
    const char *name;  /* NUL-terminated, in the arena */
    const char *name2;
    union {
        int64_t ival;
        double fval;
    };
    union {
        const char *str;   /* KP_N_STRING bytes (not NUL-terminated) */
        KpPacked *packed;  /* KP_N_LIST: packed literal elements, or NULL */
    };
    size_t str_len;
    uint32_t depth;  /* height of this subtree (1 for a leaf), set by the
                        parser; it keeps every tree under 500 levels */
    /* Set by the compiler's types pass (compiler/typecheck.c) on a CALL
     * bound at compile time: the overload, and the arguments (bit i: the
     * i-th) whose types it could not prove, which the VM still checks. */
    struct KpOverload *bound;
    uint64_t bound_check;
    /* Set by the types pass on a DECL: the variable's static type (its
     * annotation, else its value's), or NULL; on an INDEX of a list or map
     * whose type it knows: that container type.  Read by the ownership
     * pass. */
    struct KpType *stype;
};

/* Allocates a zeroed node in `arena`; returns NULL when out of memory. */
KpNode *kp_ast_new(KpArena *arena, KpNodeKind kind, uint32_t line, uint32_t col);
/* Appends `item` to `list`, growing it in `arena` (doubling). */
bool kp_ast_push(KpArena *arena, KpNodeList *list, KpNode *item);
/* Copies `len` bytes of `s` into `arena` as a NUL-terminated string. */
const char *kp_ast_strdup(KpArena *arena, const char *s, size_t len);
/* Kind name for debugging dumps ("KP_N_CALL" -> "call"). */
const char *kp_ast_kind_name(KpNodeKind kind);
/* An operator's spelling ("+", "land"; "neg" for unary minus). */
const char *kp_ast_op_name(unsigned op);
/* Prints the tree as an S-expression to stdout (for `--dump-ast`). */
void kp_ast_dump(const KpNode *node, int indent);
/* Writes the tree as a one-line S-expression into buf (always
 * NUL-terminated, truncated to cap-1 bytes); returns the full length.
 * Used by tests: `x := 1 + 2` is "(block (decl x - (+ 1 2)))". */
size_t kp_ast_sexpr(const KpNode *node, char *buf, size_t cap);

/*
 * Parses a whole program.  Returns a KP_N_BLOCK of top-level statements
 * (allocated in `arena`; never NULL unless out of memory).  Syntax errors
 * are added to `diags` — several per run, the parser resynchronizing at the
 * next statement — and the returned tree then holds the statements that
 * parsed.  When the input ends inside an open bracket, string, block or
 * statement, diags->incomplete is set (the REPL reads another line then).
 */
KpNode *kp_parse(KpSource *src, KpArena *arena, KpDiags *diags);

#endif
