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

/* compiler/emit.c: writes the program with every operation the compiler
 * inserts (drops, moves, defers, keep counts) spelled out. */
void kp_emit_ownership(const struct KpNode *program, KpWriteFn write, void *ud);

#endif
