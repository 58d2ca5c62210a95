/*
 * builtins.h — the builtin table: one KpBuiltin entry per native function.
 *
 * Design.  Every native function of the standard library is described by
 * one row of a per-module table, in the style of Lua's luaL_Reg: its name,
 * its C function, its signature, and flags.  The VM registers the natives
 * from these tables (kp_stdlib_register walks kp_builtin_modules), and the
 * compiler's passes read the same rows to learn each builtin's parameter
 * modes and types and its result type — no pass needs to know a builtin by
 * its name.  One row may share its name with others: they are overloads.
 *
 * The signature is Keep text, written exactly as in a function declaration
 * (docs/language.md §6), so a reader that knows Keep's types knows it:
 *
 *     params:  "s: &String, .base: Int = 10"     result: "Int"
 *
 *   - Parameters are separated by commas.  Each is `name: MODE TYPE`,
 *     `.name: MODE TYPE` for a named parameter (passed by position or by
 *     name), optionally followed by `= DEFAULT` (an Int, Float, String,
 *     Bool or `()` literal).  The name `_` is an unnamed parameter.
 *   - MODE is `&` (borrows read-only), `$&` (borrows mutably) or nothing
 *     (by value: the argument is moved in; the native owns it).
 *   - TYPE is a Keep type: `Int Float Bool String () Type Function`,
 *     `List#(T)`, `HashMap#(K, V)`, `HeapAllocation`, `Allocator` and the
 *     allocator kinds, `System.Memory`, `System.Fs`, `System.Random`, `System.Env`, `AllocStats`,
 *     `Random`; two pseudo-types: `Any` (any value) and a union `A|B|C`
 *     (any of these; the native tells them apart).  A single capital
 *     letter (`T`, `K`, `V`) is a type variable: it is bound by the first
 *     parameter it appears in, and every later use (in parameters or in
 *     the result) means that same type — `xs: $&List#(T)` → `T` says pop
 *     returns the list's element type.  `Int` also accepts the sized
 *     integers (Int8 … UInt64).
 *   - The result is a TYPE without a mode; `()` is unit.
 *
 * At registration the VM gives each parameter the run-time type its text
 * names when that is one concrete type (so overloads of one name, such as
 * the `init`s of memory.c, are selected by it); a union, `Any` or a type
 * variable leaves the parameter unchecked by the VM (the native checks it
 * and gives the precise message).
 *
 * Flags:
 *   KP_BF_VARIADIC  the last parameter repeats: zero or more further
 *                   arguments with its mode and type (print, min, max).
 *   KP_BF_MOVES     the native moves its first argument out of its place
 *                   although it is passed `$&` (deinit): afterwards the
 *                   caller's variable is moved.
 *   KP_BF_SPECIAL   the compiler treats the call as a special form
 *                   (deinit: user overloads of it run only from the VM).
 *   KP_BF_BY_RESULT  the overload is chosen only where the expected type
 *                   asks for its result (`xs : List#(Int) = bytes(s)`);
 *                   without one, the other overloads of the name are
 *                   considered (bytes(s) is then binary.c's HeapAllocation).
 *   KP_BF_BORROWS   the result borrows the first argument (a View or a
 *                   Reader of a buffer): the ownership pass treats it like
 *                   a reference to that argument (it may not outlive it).
 *   KP_BF_STORES    the native stores its last argument into its first
 *                   (push): the ownership pass checks that a reference
 *                   stored so does not outlive its referent.
 *   KP_BF_CTX       the result is allocated from the context allocator
 *                   (documentation for the passes: it is a fresh owned
 *                   value, never a borrow of an argument).
 *   KP_BF_CTOR      a constructor: `T(…)` of a built-in type T that is not
 *                   a record (HeapAllocation, an allocator, Writer) calls
 *                   the overloads of this row's name that return T (init).
 *   KP_BF_SHOW      the REPL shows the value of a final expression
 *                   statement by a call of this row (#show).
 *   KP_BF_VIEW_TYPED  the result is a View whose element type is the type
 *                   named by the second positional argument (view(&buf,
 *                   Float64, …)): code generation knows how its elements
 *                   read (VGET, kp_cg_view_elem).
 *   KP_BF_VIEW_SAME the result is a View with the element type of the
 *                   View its first argument borrows (transpose, slice,
 *                   reshape).
 *   KP_BF_VINDEX    `v[i, …]` of a View: compiled as VINDEX (#index).
 *   KP_BF_VSETINDEX `v[i, …] = x` of a View: compiled as VSETINDEX
 *                   (#setindex).
 */
#ifndef KEEP_STDLIB_BUILTINS_H
#define KEEP_STDLIB_BUILTINS_H

#include <stddef.h>
#include <stdint.h>

#include "../vm/vm.h"

enum {
    KP_BF_VARIADIC = 1u << 0,
    KP_BF_MOVES = 1u << 1,
    KP_BF_SPECIAL = 1u << 2,
    KP_BF_CTX = 1u << 3,
    KP_BF_BY_RESULT = 1u << 4,
    KP_BF_BORROWS = 1u << 5,
    KP_BF_STORES = 1u << 6,
    KP_BF_CTOR = 1u << 7,
    KP_BF_SHOW = 1u << 8,
    KP_BF_VIEW_TYPED = 1u << 9,
    KP_BF_VIEW_SAME = 1u << 10,
    KP_BF_VINDEX = 1u << 11,
    KP_BF_VSETINDEX = 1u << 12,
};

typedef struct KpBuiltin {
    const char *name;   /* the Keep name; `#name` for directives */
    KpNativeFn fn;      /* the C function (see KpNativeFn in vm/object.h) */
    const char *params; /* parameter list text, without parentheses; "" for none */
    const char *result; /* result type text */
    uint32_t flags;     /* KP_BF_* */
} KpBuiltin;

/* One parameter of a row, as kp_builtin_params splits it.  The texts
 * point into the row's `params` string (static storage); they are not
 * NUL-terminated: use the lengths. */
typedef struct KpBuiltinParam {
    const char *name;     /* "_" for an unnamed parameter */
    size_t name_len;
    uint8_t named;        /* written `.name` */
    uint8_t mode;         /* KpParamMode: KP_PM_VALUE, KP_PM_REF, KP_PM_MUTREF */
    const char *type;     /* the type text after the mode ("Any" when none) */
    size_t type_len;
    const char *def;      /* default value text, or NULL */
    size_t def_len;
} KpBuiltinParam;

/* Splits b->params into at most `max` parameters written to `out`.
 * Returns the number of parameters, or -1 when the text is malformed or
 * has more than `max` parameters (a defect of the table: the VM reports
 * it at registration as an initialization failure). */
int kp_builtin_params(const KpBuiltin *b, KpBuiltinParam *out, int max);

/* The tables, each ended by a row with a NULL name, and the list of all of
 * them, ended by NULL.  A module's table is `kp_builtins_<module>`. */
extern const KpBuiltin kp_builtins_core[];
extern const KpBuiltin kp_builtins_memory[];
extern const KpBuiltin kp_builtins_string[];
extern const KpBuiltin kp_builtins_list[];
extern const KpBuiltin kp_builtins_map[];
extern const KpBuiltin kp_builtins_math[];
extern const KpBuiltin kp_builtins_io[];
extern const KpBuiltin kp_builtins_format[];
extern const KpBuiltin kp_builtins_time[];   /* stdlib/time.c */
extern const KpBuiltin kp_builtins_random[]; /* stdlib/random.c */
extern const KpBuiltin kp_builtins_binary[]; /* stdlib/binary.c */
extern const KpBuiltin kp_builtins_view[];   /* stdlib/view.c */
extern const KpBuiltin kp_builtins_parallel[]; /* stdlib/parallel.c */
extern const KpBuiltin *const kp_builtin_modules[];

/* The constants of the language that are not literals (math.c): pi, e,
 * inf, nan — Floats.  Ended by a NULL name.  kp_builtin_const finds one
 * by name (the code generator's last resort for a name). */
typedef struct KpBuiltinConst {
    const char *name;
    double value;
} KpBuiltinConst;
extern const KpBuiltinConst kp_builtin_consts[];
bool kp_builtin_const(const char *name, KpValue *out);

/* The name of the first row of the tables carrying `flag` (KP_BF_CTOR:
 * "init", KP_BF_SHOW: "#show"), or NULL: how the compiler's passes find
 * the functions the language calls on its own, without knowing names. */
const char *kp_builtin_name_with(uint32_t flag);

/* A value of the language that is a name, not a literal: `system` (the
 * capabilities, of type System) and the constants of kp_builtin_consts
 * (Floats).  Sets *out and *type (the static type); false for any other
 * name. */
bool kp_builtin_value(KpVM *vm, const char *name, KpValue *out, KpType **type);

/* Registers every row of `table` as a native overload in `vm`.  Returns
 * false (and sets vm->init_failed) when a row is malformed or memory ran
 * out. */
bool kp_builtins_register(KpVM *vm, const KpBuiltin *table);

#endif
