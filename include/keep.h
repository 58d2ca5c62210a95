/*
 * keep.h — the public embedding API of Keep.  The only header a host
 * includes (`#include <keep.h>`, link with `-lkeep`, or
 * `pkg-config --cflags --libs keep`).
 *
 * The model.  A host creates a VM from a KpConfig that says what the VM may
 * do: the allocator every byte comes from (in the spirit of Lua's
 * lua_Alloc), where output goes, the memory it may use, whether scripts may
 * touch the file system, their arguments.  The host runs source text or
 * files, reads and writes script values through numbered *slots* (as in
 * Wren: slot 0, 1, ... hold values the host is working with), calls script
 * functions, and registers C functions that scripts call.
 *
 * Ownership.  A slot owns its value: setting a slot deinitializes what it
 * held; values moved out of a slot (into a list, a field, a by-value
 * parameter) leave it empty.  A KpHandle keeps one value alive across calls
 * until the host releases it.  Strings returned by the getters are borrowed
 * from the VM and valid until that slot is next changed.  Everything the VM
 * allocated is freed by kp_vm_free: the host allocator's count is back to
 * zero after it.
 *
 * Errors.  Functions return KP_OK or an error code; nothing calls exit() or
 * longjmps across the host's frames.  kp_vm_last_error gives the message
 * with its file:line:col.  After an error the VM stays usable.
 *
 * Threads.  There is no global state: a process may hold many VMs, and
 * different threads may use different VMs at the same time (one thread per
 * VM at a time).  kp_vm_interrupt is the one function that may be called
 * from another thread while the VM runs.
 */
#ifndef KEEP_H
#define KEEP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__) || defined(__clang__)
#define KP_API __attribute__((visibility("default")))
#else
#define KP_API
#endif

#define KEEP_VERSION "0.1.0"
#define KEEP_VERSION_NUM 100 /* major*10000 + minor*100 + patch */

typedef struct KpVM KpVM;
typedef struct KpHandle KpHandle;

/* Result codes (the first four are also the `keep` binary's exit codes). */
enum {
    KP_OK = 0,             /* success                                         */
    KP_ERR_RUNTIME = 1,    /* a runtime error: message in kp_vm_last_error    */
    KP_ERR_COMPILE = 2,    /* syntax or compile errors                        */
    KP_ERR_INCOMPLETE = 3, /* kp_vm_eval: the input ends inside an unfinished
                              construct (an open bracket, string, block)      */
    KP_ERR_ARG = 4,        /* the host passed a bad argument (slot out of
                              range, wrong value kind, unknown name)          */
    KP_ERR_USAGE = 64,     /* a file that cannot be read                      */
    KP_EXIT = 5,           /* the script called exit(code): every frame's
                              deinits and defers have run (top-level
                              variables stay, as after an error, until
                              kp_vm_finish or kp_vm_free); nothing is
                              reported; the code is kp_vm_exit_code(vm).
                              The VM stays usable: a later run starts
                              afresh.  A C function that gets KP_EXIT from
                              kp_call or a nested run should return it (any
                              failure return continues the exit)           */
};

#ifndef KP_WRITEFN_DEFINED
#define KP_WRITEFN_DEFINED
/* Output callback: `bytes` (len bytes, not NUL-terminated) are borrowed for
 * the duration of the call. */
typedef void (*KpWriteFn)(void *ud, const char *bytes, size_t len);
#endif

/* The host allocator (Lua's lua_Alloc, with an alignment): allocate
 * `new_size` bytes when ptr is NULL; free `ptr` (of old_size bytes) when
 * new_size is 0 and return NULL; otherwise resize.  `align` is a power of
 * two (at most 16 except for stack and page-sized blocks, at most 4096).
 * Return NULL on failure (the VM reports "out of memory"). */
typedef void *(*KpAllocFn)(void *ud, void *ptr, size_t old_size, size_t new_size, size_t align);

/* ------------------------------------------------------------ diagnostics
 *
 * Every compile error and runtime error reaches the host once, as one
 * KpDiagnostic (the shape of Wren's errorFn and of LSP diagnostics) when the
 * host sets KpConfig.on_diagnostic, or else as its text through write_err,
 * in one call per message.  Both come from the one place the VM formats a
 * message, so the text in KpDiagnostic.text is byte for byte what write_err
 * receives.  Reports that are not about one message (leak and cycle
 * reports, --stats) always go to write_err. */

typedef enum KpSeverity {
    KP_SEVERITY_ERROR = 0,   /* a compile or runtime error                    */
    KP_SEVERITY_WARNING = 1, /* the program runs; something looks wrong       */
    KP_SEVERITY_NOTE = 2,    /* information ("... and 3 more errors")         */
} KpSeverity;

/* One diagnostic.  Every pointer is borrowed for the duration of the
 * callback (copy what you keep); strings are NUL-terminated. */
typedef struct KpDiagnostic {
    KpSeverity severity;
    int code;                  /* KP_ERR_COMPILE or KP_ERR_RUNTIME            */
    const char *file;          /* the source's name ("config.kp", "<repl>");
                                  "?" when unknown                            */
    uint32_t line, col;        /* 1-based; 0 when there is no position        */
    const char *message;       /* the message alone, without position         */
    const char *source_line;   /* the line at `line` (control bytes shown as
                                  spaces, at most 200 bytes); "" if none      */
    const char *const *notes;  /* nnotes extra lines ("hint: ...")            */
    size_t nnotes;
    const char *const *trace;  /* runtime errors: the stack, most recent call
                                  first, each "name (file:line)"; else none   */
    size_t ntrace;
    const char *text;          /* the whole formatted report (text_len bytes),
                                  as write_err would have received it         */
    size_t text_len;
} KpDiagnostic;

/* Receives each diagnostic; `ud` is KpConfig.ud. */
typedef void (*KpDiagnosticFn)(void *ud, const KpDiagnostic *d);

/* Finds the source text of a module a script imports.  `name` is the
 * import's path joined to the directory of the importing file's name
 * ("lib/geometry.kp" imported by "app/main.kp" is "app/lib/geometry.kp";
 * a path starting with '/' is kept; "./" and "dir/.." are folded; from a
 * name with no directory, such as "<repl>" or a kp_vm_run_string chunk,
 * the path as written).  It is also the module's name in diagnostics,
 * and the key under which the module is compiled once per VM.  `ud` is
 * KpConfig.ud.
 *
 * The loader hands the text over by calling write(sink, bytes, len) any
 * number of times (the pieces are joined; the VM copies them during the
 * call, so the host keeps ownership of its bytes) and returns true; or it
 * returns false when there is no such module, setting *why to a short
 * reason ("No such file or directory"), a NUL-terminated string the host
 * keeps valid until the callback returns (or leaving it NULL).  The text
 * may be at most KpConfig.max_source_bytes; more, or no loader at all, is
 * a compile error at the import.  The loader may not call into the VM. */
typedef bool (*KpLoadModuleFn)(void *ud, const char *name, KpWriteFn write, void *sink, const char **why);

typedef struct KpConfig {
    KpAllocFn alloc;       /* NULL: the C library's malloc                  */
    void *alloc_ud;
    KpWriteFn write_out;   /* script output (print); NULL: stdout           */
    KpWriteFn write_err;   /* diagnostics and error reports; NULL: stderr   */
    void *ud;              /* passed to write_out and write_err             */
    int64_t mem_limit;     /* cap on script memory in bytes; <= 0: none     */
    bool debug_alloc;      /* scripts run on a debug root allocator         */
    bool stats;            /* allocator statistics to write_err at the end  */
    bool allow_fs;         /* grant system.fs (read_file, write_file)       */
    bool allow_random;     /* grant system.random: Random(&system.random)
                              generators, seeded from the OS (getrandom)
                              or by the script (.seed = n)                  */
    bool allow_env;        /* grant system.env: get_env(&system.env, name)
                              reads the process's environment variables     */
    int argc;              /* system.args (copied)                          */
    const char *const *argv;
    size_t stack_values;   /* the value stack's maximum, in values (16 bytes
                              each; 0: 1 Mi values, 16 MiB).  Only address
                              space is reserved for it: memory is taken as
                              the stack first reaches it (see kp_vm_new)    */
    bool collect_cycles;   /* #check_cycles() and the end of the program also
                              deinitialize the unreachable keep cycles they
                              report (default: report only)                 */
    KpDiagnosticFn on_diagnostic; /* compile and runtime errors, one
                              KpDiagnostic each, instead of their text on
                              write_err; NULL: text on write_err            */
    bool stack_from_host;  /* take the value stack and the call frames from
                              `alloc` too, all of stack_values at creation
                              (for hosts without virtual memory; a VM then
                              costs ~21 bytes per stack value up front)     */
    bool no_system_memory; /* withhold system.memory (like system.fs):
                              scripts cannot make PageAllocator or
                              DirectAllocator (a runtime error) and allocate
                              from the root and allocators over it          */
    size_t max_source_bytes; /* kp_vm_run_file refuses larger files (and
                              anything not a regular file); 0: 256 MiB      */
    bool trace_ownership;  /* write to write_err a line for every move, drop,
                              deinit, keep box, keep and box release the VM
                              performs, with its source position:
                              `[own] FILE:LINE:COL KIND NAME: TYPE` (NAME
                              `_` for a temporary; FILE:end for the top-level
                              variables dropped when the program ends).
                              Strings and scalars never appear: they are
                              copied.  `keep --trace-ownership`; the
                              events are those `--emit=ownership` lists
                              (docs/ownership.md)                           */
    int threads;           /* the most worker threads one parallel call
                              (parallel_map, parallel_for) uses; 1: every
                              call runs on the calling thread; <= 0: the
                              machine's online cores (at most 64)          */
    KpLoadModuleFn load_module; /* the source of `name := import("file.kp")`
                              (see KpLoadModuleFn); NULL: every import is
                              refused with a compile error                  */
} KpConfig;

/* ------------------------------------------------------------ lifetime */

/* Creates a VM.  cfg may be NULL (defaults); it is read during the call
 * only (argv is copied).  Returns NULL when out of memory.  The VM owns
 * everything it allocates; kp_vm_free releases it.
 *
 * Memory.  A new VM with the default config takes about 26 KiB from the
 * host allocator, in 7 blocks (its state, the standard library's tables,
 * the reserved space of error messages), so a process can hold thousands
 * (1,000 VMs: ~26 MiB; tested under 64 KiB and 64 MiB).  Tables (names, functions,
 * types, handles, slots) start small and grow by doubling.  The value
 * stack, its per-register generations and the call frames never move:
 * address space for KpConfig.stack_values values is reserved from the
 * system when the VM is made (mmap), and the system gives memory to its
 * pages as the stack first reaches them (as a thread's stack grows), so a
 * VM costs memory for the depth it has used, not for its maximum.  That is
 * why growth never invalidates anything: a reference (&x, a KpHandle, the
 * slot of kp_get_global_ref) is a pointer to a register or a heap slot
 * plus a generation, checked when it is used; registers change generation
 * when their frame returns, never because the stack grew.  A host that
 * wants every byte from its allocator sets KpConfig.stack_from_host (the
 * whole stack is then allocated at creation). */
KP_API KpVM *kp_vm_new(const KpConfig *cfg);

/* Deinitializes the top-level variables (in reverse declaration order,
 * running their deinits) and the host slots and handles, then frees the
 * VM.  vm may be NULL. */
KP_API void kp_vm_free(KpVM *vm);

/* Deinitializes the top-level variables now (what kp_vm_free does first);
 * KP_ERR_RUNTIME if a deinit raised an error. */
KP_API int kp_vm_finish(KpVM *vm);

/* ------------------------------------------------------------ running */

/* Compiles and runs `len` bytes of `src`, named `name` in messages (both
 * copied).  Top-level variables and functions stay defined for later runs
 * and calls.  Returns KP_OK, KP_ERR_COMPILE (diagnostics written to
 * write_err; nothing of the chunk runs and nothing it declared stays: its
 * variables, functions, overloads and types are taken back, as a Lua
 * chunk that fails to load), KP_ERR_RUNTIME (error and stack trace written to write_err)
 * or KP_EXIT (the script called exit(code): see KP_EXIT). */
KP_API int kp_vm_run_string(KpVM *vm, const char *name, const char *src, size_t len);

/* The code the script passed to exit(code) (0..255) when the last run
 * returned KP_EXIT; 0 otherwise.  The `keep` command exits with it. */
KP_API int kp_vm_exit_code(KpVM *vm);

/* Reads the file at `path` and runs it; KP_ERR_USAGE if it cannot be read,
 * is not a regular file (a device, a pipe, /dev/zero) or is larger than
 * KpConfig.max_source_bytes (default 256 MiB). */
KP_API int kp_vm_run_file(KpVM *vm, const char *path);

/* Flags for kp_vm_eval. */
enum {
    KP_EVAL_REPL = 1u << 0, /* redefinitions allowed; the value of a final
                               expression statement is printed; returns
                               KP_ERR_INCOMPLETE for unfinished input        */
};
/* kp_vm_run_string with flags (the REPL's entry point). */
KP_API int kp_vm_eval(KpVM *vm, const char *name, const char *src, size_t len, unsigned flags);

/* The message of the last error, "file:line:col: message" (for errors of
 * the API's own arguments, just the message), or "" if none.  Inside a C
 * function it is the message of the last failed slot call.  Owned by the
 * VM, valid until the next call into it. */
KP_API const char *kp_vm_last_error(KpVM *vm);

/* ------------------------------------------------------------ limits */

/* Sets the instruction budget: the script may take this many more steps
 * (each call and each loop iteration is one step); past it, the running
 * script stops with the runtime error "instruction budget exhausted" and
 * the VM stays usable.  budget < 0 removes the limit (the default). */
KP_API void kp_vm_set_budget(KpVM *vm, int64_t budget);

/* Asks the running script to stop with the runtime error "interrupted" at
 * its next call or loop iteration.  Safe from any thread and from signal
 * handlers (an atomic flag); a no-op when nothing runs. */
KP_API void kp_vm_interrupt(KpVM *vm);

/* Script heap statistics (bytes and blocks of script values). */
typedef struct KpHeapStats {
    int64_t live_bytes, live_count, peak_bytes, total_allocs, total_frees;
} KpHeapStats;
KP_API void kp_vm_heap_stats(KpVM *vm, KpHeapStats *out);

/* Writes a per-allocator report (the root and every script allocator
 * alive) to write_err. */
KP_API void kp_vm_report_stats(KpVM *vm);

/* ------------------------------------------------------------ slots */

/* The kinds of values a slot can hold. */
typedef enum KpKind {
    KP_KIND_NONE, KP_KIND_UNIT, KP_KIND_BOOL, KP_KIND_INT, KP_KIND_FLOAT,
    KP_KIND_STRING, KP_KIND_LIST, KP_KIND_MAP, KP_KIND_RECORD,
    KP_KIND_FUNCTION, KP_KIND_TYPE, KP_KIND_OTHER,
} KpKind;

/* Makes sure slots 0..n-1 exist (new ones are empty).  Inside a C function
 * the first slots are its arguments.  Returns KP_OK or KP_ERR_ARG (n too
 * large) / KP_ERR_RUNTIME (out of memory). */
KP_API int kp_slots_ensure(KpVM *vm, int n);
KP_API int kp_slot_count(KpVM *vm);

/* Setters: the slot's old value is deinitialized.  Strings are copied. */
KP_API int kp_set_unit(KpVM *vm, int slot);
KP_API int kp_set_bool(KpVM *vm, int slot, bool v);
KP_API int kp_set_int(KpVM *vm, int slot, int64_t v);
KP_API int kp_set_float(KpVM *vm, int slot, double v);
KP_API int kp_set_string(KpVM *vm, int slot, const char *bytes, size_t len);
KP_API int kp_new_list(KpVM *vm, int slot);
KP_API int kp_new_map(KpVM *vm, int slot);
/* A record of the script type `type_name` (declared at top level) with its
 * field defaults; fields without one are unset.  KP_ERR_ARG if no such
 * record type. */
KP_API int kp_new_record(KpVM *vm, int slot, const char *type_name);
/* The container setters below take (move) the value of `value_slot` — it
 * is empty afterwards, also when they fail (a type mismatch
 * deinitializes the value). */
/* Moves the value of `value_slot` to the end of the list in `list_slot`. */
KP_API int kp_list_append(KpVM *vm, int list_slot, int value_slot);
/* Moves `value_slot` into the map at key `key_slot` (the key is copied). */
KP_API int kp_map_set(KpVM *vm, int map_slot, int key_slot, int value_slot);
/* Moves `value_slot` into field `name` of the record (type-checked). */
KP_API int kp_set_field(KpVM *vm, int record_slot, const char *name, int value_slot);

/* Getters.  References are followed (a `&` argument reads as its value). */
KP_API KpKind kp_get_kind(KpVM *vm, int slot);
/* The type name of the value ("Int", "Point", "List#(Int)"); borrowed. */
KP_API const char *kp_get_type_name(KpVM *vm, int slot);
/* Each returns KP_OK, or KP_ERR_ARG when the slot holds another kind (sized
 * integers read as Int). */
KP_API int kp_get_bool(KpVM *vm, int slot, bool *out);
KP_API int kp_get_int(KpVM *vm, int slot, int64_t *out);
KP_API int kp_get_float(KpVM *vm, int slot, double *out); /* Ints convert */
/* The bytes (NUL-terminated; *len may be NULL), borrowed; NULL when the
 * slot is not a String. */
KP_API const char *kp_get_string(KpVM *vm, int slot, size_t *len);
/* Elements of a list, entries of a map; -1 for other kinds. */
KP_API int64_t kp_get_count(KpVM *vm, int slot);
/* A copy (deep, for records and lists) of element `index` into out_slot. */
KP_API int kp_list_get(KpVM *vm, int list_slot, int64_t index, int out_slot);
/* A copy of the value at key `key_slot`; KP_ERR_ARG if absent. */
KP_API int kp_map_get(KpVM *vm, int map_slot, int key_slot, int out_slot);
/* A copy of field `name`; KP_ERR_ARG if no such field or it is unset. */
KP_API int kp_get_field(KpVM *vm, int record_slot, const char *name, int out_slot);
/* Moves the value of `from` to `to` (`from` becomes empty). */
KP_API int kp_slot_move(KpVM *vm, int from, int to);

/* ------------------------------------------------------------ calling */

/* ------------------------------------------------------------ globals
 *
 * A script's top-level variables are the VM's globals (lua_getglobal /
 * lua_setglobal, Wren's wrenGetVariable).  They live until kp_vm_finish or
 * kp_vm_free; a host reads them by copy or by reference and replaces them
 * by moving a value in.  `name` is borrowed for the call. */

/* Puts the top-level value `name` into `slot`: a function (built-in or
 * script), a type declared by a script, or a COPY of a top-level variable
 * (deep for records, lists and maps: changing the copy does not change the
 * script's value; use kp_get_global_ref for that).  KP_ERR_ARG if there is
 * none or the variable has no value (moved away, not yet set). */
KP_API int kp_get_global(KpVM *vm, const char *name, int slot);

/* Puts a mutable REFERENCE to the top-level variable `name` into `slot`
 * (a borrow, like a `$&` argument): getters read through it and the
 * container setters (kp_list_append, kp_map_set, kp_set_field with the
 * slot as the container) change the script's value in place.  Nothing is
 * copied.  The reference is checked: once the variable is moved away or
 * deinitialized, reads give KP_KIND_NONE instead of a stale value.  It
 * stays valid across runs (globals never move: see "Memory" at
 * kp_vm_new).  KP_ERR_ARG if there is no such variable or it has no value. */
KP_API int kp_get_global_ref(KpVM *vm, const char *name, int slot);

/* Moves the value of `slot` into the top-level variable `name` (declared by
 * a script that ran, `level := 1` or `cfg : Config = ...`), deinitializing
 * its old value; `slot` is empty afterwards, also when this fails.  The
 * value is checked against the variable's type (the declared one, or the
 * one the compiler gave it from its initializer), as an assignment in a
 * script is: KP_ERR_ARG when it does not fit, or when there is no such
 * variable (globals are declared by scripts, since compiled code refers to
 * them by position); KP_ERR_RUNTIME if the old value's deinit failed. */
KP_API int kp_set_global(KpVM *vm, const char *name, int slot);

/* Calls the function in `fn_slot` with the `nargs` values in slots
 * first_arg .. first_arg+nargs-1 and puts the result in `result_slot`.
 * Arguments are passed as a script passes variables: a by-value parameter
 * takes (moves) the slot's value, a `&`/`$&` parameter borrows the slot.
 * Returns KP_OK or KP_ERR_RUNTIME (message in kp_vm_last_error), or
 * KP_EXIT when the function called exit(code). */
KP_API int kp_call(KpVM *vm, int fn_slot, int first_arg, int nargs, int result_slot);

/* ------------------------------------------------------------ handles */

/* Moves the value of `slot` into a new handle that keeps it alive until
 * kp_handle_release.  NULL when out of memory or the slot is empty. */
KP_API KpHandle *kp_handle_new(KpVM *vm, int slot);
/* Puts the handle's value in `slot`: scalars and strings are copied,
 * other values are passed as a reference to the handle's value (valid
 * while the handle lives). */
KP_API int kp_handle_get(KpVM *vm, KpHandle *h, int slot);
/* Deinitializes the handle's value and frees the handle.  h may be NULL. */
KP_API void kp_handle_release(KpVM *vm, KpHandle *h);

/* ------------------------------------------------------------ C functions */

/* How a C function's parameter receives its argument (as in scripts). */
typedef enum KpMode {
    KP_MODE_VALUE = 0,  /* takes ownership (moves records, lists, maps)  */
    KP_MODE_REF = 1,    /* &T: borrows read-only                         */
    KP_MODE_MUTREF = 2, /* $&T: borrows mutably                          */
} KpMode;

/* A C function callable from scripts.  Its arguments are in slots
 * 0..nargs-1 (references for & and $& parameters, read through by the
 * getters; list and field setters write through $& ones).  The value left
 * in slot 0 when it returns is its result (unit if slot 0 is empty or
 * nargs is 0 and nothing was set).  Return KP_OK, or kp_error(...) to raise
 * a runtime error in the calling script. */
typedef int (*KpCFunction)(KpVM *vm, int nargs, void *ud);

/* Registers `fn` as an overload of `name` taking `nparams` arguments with
 * the given modes (NULL: all by value; the array is copied); nparams < 0
 * means any number, all borrowed read-only.  `ud` is passed back on every
 * call.  Must be called before running scripts that use the name.  `name`
 * is copied.  Several C functions may share a name (overloads chosen by
 * argument count and types, as for script functions).  A script call of
 * a name whose only overload is one C function is bound to it when the
 * script is compiled (no run-time selection, like a built-in): overloads
 * registered later serve the scripts compiled after them.  kp_register(...)
 * is kp_register_ex(..., 0).
 *
 * Conflicts.  A name that a script has defined, or that the standard
 * library defines, is refused (KP_ERR_ARG, the message names the script's
 * file:line): the C function would silently become one more overload and
 * calls could turn ambiguous.  The reverse holds too: a script that defines
 * a function with the name of a registered C function gets a compile error
 * at its declaration.  Pass KP_REG_OVERLOAD to mean the overload (a C
 * `str (f: &File)` next to the built-in str, or scripts adding overloads of
 * the host's `draw`).  KP_ERR_ARG also for a bad name, a NULL fn, more than
 * 64 parameters or an unknown flag. */
enum {
    KP_REG_OVERLOAD = 1u << 0, /* add to whatever else the name means */
};
KP_API int kp_register_ex(KpVM *vm, const char *name, KpCFunction fn, int nparams, const KpMode *modes, void *ud,
                          unsigned flags);
KP_API int kp_register(KpVM *vm, const char *name, KpCFunction fn, int nparams, const KpMode *modes, void *ud);

/* Sets the runtime error message (printf-style) for the calling script and
 * returns KP_ERR_RUNTIME, for `return kp_error(vm, "bad %d", x);`. */
KP_API int kp_error(KpVM *vm, const char *fmt, ...)
#if defined(__GNUC__) || defined(__clang__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* ------------------------------------------------- pinning (binary data)
 *
 * After the note on temporarily pinning objects: pinnedness is a temporary
 * property, taken for as long as C code (a blocking call, a DMA transfer,
 * a device) holds a pointer to a buffer's bytes.  No Keep allocator ever
 * moves a block, so a pointer to a HeapAllocation's bytes stays put for the
 * block's life; what a pin adds is that the life cannot end, nor the bytes
 * move, while the host holds it: a script's resize, free (deinit, dealloc)
 * or reset of the allocator under a pinned buffer is a runtime error that
 * names the pin, and a buffer whose owner goes while it is pinned is kept
 * until the last pin ends.  Scripts pin with `pin(&buf) { ... }`.
 *
 * kp_pin_bytes pins the buffer of the value in `slot` — a HeapAllocation,
 * a mapped file (map_file), or a contiguous View (its bytes within its
 * buffer; the whole buffer is pinned) — and stores its first byte's address
 * in *ptr and its length in bytes in *len (either may be NULL; a
 * zero-length buffer gives NULL and 0).  The bytes belong to the VM: the
 * host may read them (and write them, unless the buffer is a read-only
 * mapping) until it calls kp_unpin_bytes on a slot holding the same buffer
 * (or a View of it).  Pins nest: each kp_pin_bytes needs one
 * kp_unpin_bytes.  Both return KP_OK, or KP_ERR_ARG (message in
 * kp_vm_last_error) for a slot that does not exist, a value with no bytes,
 * a View that is not contiguous, or an unpin without a pin.  A pin still
 * held at kp_vm_free is reported on write_err and ended there. */
KP_API int kp_pin_bytes(KpVM *vm, int slot, void **ptr, size_t *len);
KP_API int kp_unpin_bytes(KpVM *vm, int slot);

/* ------------------------------------------------------------ host types
 *
 * A host-defined type (Lua's full userdata with __gc, Wren's foreign
 * classes): an opaque type whose values carry `size` bytes of the host's
 * data.  Only the host makes them (kp_new_object); scripts name the type in
 * annotations and signatures, pass, move and borrow its values (`f: File`,
 * `&File`, `$&File`), overload functions on it and call its methods, but
 * cannot construct one (`File()` is a runtime error), copy one (`clone`),
 * or reach its bytes.  The ownership rules are a record's: a File moves,
 * and use after a move is the usual error.  When its owner goes (scope
 * exit, a deinit, kp_vm_free for globals, slots and handles) `deinit` runs
 * exactly once with the payload.  The deinit may not call back into the
 * VM: kp_call, kp_vm_run_string and kp_vm_eval refuse there (KP_ERR_USAGE,
 * "... from a host type's deinit callback"); built with -DKP_DEBUG_API the
 * library aborts instead, to find the mistake early. */

typedef struct KpHostType KpHostType; /* owned by the VM, valid until kp_vm_free */

/* A C function callable as a method of the type: its first parameter is the
 * object (typed: overloads of the same name on other types stay apart),
 * `nparams` counts it.  `modes` as for kp_register (NULL: the object
 * borrowed read-only, &T, and the rest by value). */
typedef struct KpMethod {
    const char *name;
    KpCFunction fn;
    int nparams;
    const KpMode *modes;
} KpMethod;

typedef struct KpTypeDef {
    size_t size;                                /* payload bytes (0 allowed) */
    void (*deinit)(void *payload, void *ud);    /* or NULL; exactly once     */
    void *ud;                                   /* passed to deinit and to the
                                                   methods' C functions      */
    const KpMethod *methods;                    /* nmethods entries, or NULL */
    size_t nmethods;
} KpTypeDef;

/* Declares the host type `name` (an identifier starting with a capital,
 * not already a type) for every later script; `def` and the method table
 * are copied.  Methods are registered as overloads (KP_REG_OVERLOAD).
 * Returns the type, or NULL with kp_vm_last_error set (bad name, a type of
 * that name exists, too large a size, out of memory). */
KP_API KpHostType *kp_define_type(KpVM *vm, const char *name, const KpTypeDef *def);

/* Puts a new value of `type` into `slot` (its old value deinitialized) and
 * returns its payload: def.size bytes, zeroed, 16-byte aligned, owned by
 * the value (valid until the value's deinit has run: do not keep the
 * pointer past the value's life).  NULL with kp_vm_last_error set when the
 * slot does not exist or memory runs out. */
KP_API void *kp_new_object(KpVM *vm, int slot, KpHostType *type);

/* The payload of the value in `slot` (references followed, so a C function
 * reads its `&File` argument this way), or NULL when the slot holds
 * anything else, including a value of another host type. */
KP_API void *kp_get_object(KpVM *vm, int slot, KpHostType *type);

/* ------------------------------------------------------------ tools */

/* Compiles `src` (`len` bytes, named `name` in messages) as a run would,
 * without running it, and writes to `out` the compiler's ownership record:
 * the program's lines, each followed by the moves, drops, deinits, keep
 * boxes, keeps and box releases code generation emitted at its positions
 * (`KIND WHAT: TYPE`, the layout in docs/ownership.md) — what
 * `keep --emit=ownership` and the REPL's :ownership print, and what the VM
 * reports as it runs under KpConfig.trace_ownership.  The top-level
 * variables src declares are not kept (nothing ran); its functions and
 * types are declared, as by a run.  Returns KP_OK, or KP_ERR_COMPILE when
 * src does not compile (diagnostics to write_err).  The _ex form takes
 * kp_vm_eval's flags (KP_EVAL_REPL: the REPL's rules). */
KP_API int kp_vm_emit_ownership(KpVM *vm, const char *name, const char *src, size_t len, KpWriteFn out, void *ud);
KP_API int kp_vm_emit_ownership_ex(KpVM *vm, const char *name, const char *src, size_t len, unsigned flags,
                                   KpWriteFn out, void *ud);

/* Sets system.args (copied). */
KP_API int kp_vm_set_args(KpVM *vm, int argc, const char *const *argv);
/* Sets system.script, the path of the running script (copied; "-" for a
 * script read from standard input, what the keep command passes).  Until it
 * is set, system.script is "".  KP_ERR_RUNTIME when out of memory. */
KP_API int kp_vm_set_script(KpVM *vm, const char *path);
/* Tools' views of the program a VM holds; nothing runs (api/inspect.c).
 * kp_vm_static_type writes to `out` the name of the static type the
 * compiler infers for the expression `src` (`len` bytes) in the top-level
 * scope — nothing when it can only tell at run time — and returns KP_OK,
 * or KP_ERR_COMPILE (diagnostics to write_err).  kp_vm_complete calls
 * `each` with every completion of the name at the end of `text` (`len`
 * bytes): top-level variables, functions, types and keywords, or after
 * `a.b.` the fields of that record; each completion is the whole text with
 * the last name completed (borrowed for the call).  Returns their count. */
KP_API int kp_vm_static_type(KpVM *vm, const char *src, size_t len, KpWriteFn out, void *ud);
KP_API int kp_vm_complete(KpVM *vm, const char *text, size_t len, KpWriteFn each, void *ud);
/* How this library was built, e.g. "gcc 12.2.0, computed goto on": the
 * compiler and whether the VM dispatches with computed goto.  A static
 * string. */
KP_API const char *kp_build_info(void);
/* Prints compiled bytecode to write_err as scripts are compiled. */
KP_API void kp_vm_set_dump_bytecode(KpVM *vm, bool on);

#ifdef __cplusplus
}
#endif
#endif
