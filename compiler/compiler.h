/*
 * compiler.h — the compiler's entry points, for the driver (api/) and the
 * tests.  Internal: hosts use include/keep.h.
 *
 * The compiler reads an AST (parser/ast.h) and writes bytecode protos and
 * types into the VM's state (vm/vm.h); it never runs code.  The driver in
 * api/driver.c calls it between the parser and the VM, so the arrows run
 * source → parser → compiler → vm, with api/ above them all.
 */
#ifndef KP_COMPILER_H
#define KP_COMPILER_H

#include <stdbool.h>

#include "../include/keep.h"
#include "../lexer/source.h"

struct KpNode;
struct KpProto;
struct KpType;

/* Compiles a program into a main-chunk proto (allocated in the VM's meta
 * arena, alive until kp_vm_free).  `repl` allows redefinitions and wraps a
 * final expression statement in #show.  NULL when diagnostics were added to
 * `diags` (the top-level registers reserved by the chunk stay `pending`, so
 * the driver can release them). */
struct KpProto *kp_compile_ex(KpVM *vm, const KpSource *src, struct KpNode *program, KpDiags *diags, bool repl);
/* kp_compile_ex without the REPL's rules. */
struct KpProto *kp_compile(KpVM *vm, const KpSource *src, struct KpNode *program, KpDiags *diags);

/* The static type the compiler infers for the expression `expr` in the
 * top-level scope of `vm` (its globals, functions and types), or NULL when
 * it cannot tell before running (or on errors, added to `diags`).  Nothing
 * is run and no global is declared (the REPL's :type, api/inspect.c). */
struct KpType *kp_compile_static_type(KpVM *vm, const KpSource *src, struct KpNode *expr, KpDiags *diags);

/* ------------------------------------------------- the ownership record
 *
 * What code generation decides about ownership, one event per operation it
 * emits (compiler/ownership.c kp_own_record): each move, drop, deinit,
 * keep box and keep count, with the source position the instruction
 * carries — the position the VM reports when it performs it
 * (--trace-ownership).  `--emit=ownership` prints this record
 * (compiler/emit.c).  Events are recorded only when a log is given. */
typedef enum KpOwnKind {
    KP_OWN_MOVE,    /* a movable value leaves its owner                   */
    KP_OWN_DROP,    /* a value is deinitialized (scope exit, a temporary,
                       an overwritten value)                              */
    KP_OWN_DEINIT,  /* an explicit deinit(x)                              */
    KP_OWN_BOX,     /* `keep`: the value goes into a keep box (count 1)    */
    KP_OWN_KEEP,    /* `keep x with a, b`: the box's count goes to owners  */
    KP_OWN_RELEASE, /* one count of a keep box is dropped                 */
    KP_OWN_SUMMARY, /* a function's summary (what = its name, why = which
                       reference parameters reach its result or its $&
                       parameters), at its declaration: nothing runs      */
    KP_OWN_CAPTURE, /* a function literal captures a variable where it is
                       made (why: borrowed, borrowed mutably, or taken)    */
    KP_OWN_CATCH,   /* a `catch` (what = its variable): where a runtime
                       error in the try block unwinds to, dropping the
                       try block's values; the variable gets an Error     */
    KP_OWN__COUNT
} KpOwnKind;

extern const char *const kp_own_kind_names[KP_OWN__COUNT];

typedef struct KpOwnEvent {
    uint8_t kind;             /* KpOwnKind */
    uint8_t maybe;            /* decided at run time: the value's type (or the
                                 callee's parameter mode) is not known before */
    uint32_t line, col;       /* 0, 0: when the program ends (top level)     */
    const char *what;         /* the variable or field, NULL: a temporary    */
    const struct KpType *type;/* its static type, NULL: unknown              */
    const char *why;          /* a static phrase: "end of scope", ...        */
    const char *fn;           /* the function compiled                       */
    uint32_t count;           /* KP_OWN_KEEP: the owners                     */
} KpOwnEvent;

typedef struct KpOwnLog {
    KpOwnEvent *items;        /* in the VM's meta arena */
    uint32_t n, cap;
} KpOwnLog;

/* kp_compile_ex that also fills `log` (may be NULL) with the ownership
 * record of everything it compiles. */
struct KpProto *kp_compile_own(KpVM *vm, const KpSource *src, struct KpNode *program, KpDiags *diags, bool repl,
                               KpOwnLog *log);

/* compiler/emit.c: writes the listing of `log` for the program `src`: each
 * source line that has events, followed by them (docs/ownership.md). */
void kp_emit_ownership(KpVM *vm, const KpSource *src, const KpOwnLog *log, KpWriteFn write, void *ud);

/* Is `s` a top-level `name := import(...)` declaration (compiler/module.c)?
 * The driver loads such modules before compiling the chunk, and sets
 * vm->cur_module and vm->cur_aliases for the chunk's compile. */
bool kp_mod_is_import(const struct KpNode *s);

#endif
