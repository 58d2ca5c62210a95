/*
 * vm.h — the virtual machine's internal state (not public: see keep.h).
 *
 * The VM is a register machine in the manner of Lua 5: each call frame owns
 * a window of the value stack; arguments sit right above the callee slot
 * and become the callee's first registers.  The stack is one fixed block
 * allocated at VM creation, so a pointer to a register (a reference, or an
 * implicit borrow passed to a call) stays valid while the frame lives;
 * running past its end is the "stack overflow" runtime error.
 *
 * Invariant: a register that is not live holds nothing that needs dropping
 * (UNSET or a non-owning tag).  Calls clear their frame on return, so a
 * runtime error can unwind by dropping every owned register from the top of
 * the stack down, running the active defers at their place in that order.
 */
#ifndef KP_VM_H
#define KP_VM_H

#include <pthread.h>
#include <setjmp.h>
#include <stdatomic.h>
#include <stdio.h>

#include "../include/keep.h"
#include "../lexer/source.h"
#include "object.h"
#include "opcodes.h"

typedef struct KpInstr {
    uint8_t op;
    uint8_t d;
    uint16_t a;
    union {
        struct {
            uint16_t b, c;
        };
        int32_t sbx;
    };
} KpInstr;

#define KP_RK_CONST 0x8000u

/* Where an instruction came from, for errors and traces. */
typedef struct KpLineInfo {
    uint32_t line;
    uint32_t col;
} KpLineInfo;

/* A defer active over a pc range, run out of line while unwinding. */
typedef struct KpDeferInfo {
    uint32_t start_pc, end_pc; /* active for pc in [start, end) */
    uint32_t code_pc;          /* out-of-line body, ends with DEFEREND */
    uint32_t watermark;        /* registers >= watermark drop before it */
} KpDeferInfo;

/* A try block: a runtime error raised while the frame's pc is in
 * [start, end) unwinds to catch_pc — the registers from `watermark` up
 * are dropped (running the try block's defers), and the Error goes into
 * err_reg.  The table lists inner try blocks after outer ones. */
typedef struct KpTryInfo {
    uint32_t start_pc, end_pc;
    uint32_t catch_pc;
    uint32_t watermark;
    uint32_t err_reg;
    uint32_t line, col;   /* the catch block's `{` (--trace-ownership) */
} KpTryInfo;

/* A local variable's name over a pc range (for messages). */
typedef struct KpLocalInfo {
    const char *name;
    uint32_t reg, start_pc, end_pc;
} KpLocalInfo;

/* A call site's argument names and expected output type. */
typedef struct KpCallDesc {
    uint16_t nnamed;       /* the last nnamed args are named */
    const char **names;    /* interned names of those args   */
    KpType *expect;        /* output type wanted, or NULL     */
    struct KpOverload *ov; /* CALLS: the overload bound at compile time */
    uint64_t check;        /* CALLS: arguments the VM still binds (bit i:
                              argument i; bit 63 also stands for the rest) */
    uint8_t fast;          /* CALLS, set at the first run: 1 when each
                              argument in `check` is one of the first four,
                              by value, of a scalar type or untyped (a host
                              function's): then binding it is testing its
                              tag against fmask; 2 if not */
    uint32_t fmask[4];     /* the tags (bit per tag) argument i may have
                              as it is: one for a scalar parameter, all but
                              KP_T_REF for an untyped one, all when the
                              argument is not in `check` */
} KpCallDesc;

struct KpProto {
    const char *name;     /* function name, "main" for a chunk */
    const KpSource *src;  /* the source it was compiled from */
    KpInstr *code;
    KpLineInfo *lines;
    uint32_t ncode;
    KpValue *k;
    uint32_t nk;
    KpCallDesc *calls;
    uint32_t ncalls;
    KpDeferInfo *defers;
    uint32_t ndefers;
    KpTryInfo *tries;     /* try blocks (vm.c's error path) */
    uint32_t ntries;
    KpLocalInfo *locals;
    uint32_t nlocals;
    uint32_t nregs;       /* registers the frame needs */
    uint32_t temps;       /* main chunks: the first register above the
                             globals and their reserve (see KP_NESTED_GLOBALS) */
    uint16_t nparams;
    KpType *ret;          /* declared return type or NULL */
    uint8_t named_outputs;
    /* Set by kp_proto_finish, read by RET (the defaults are the slow,
     * always-correct paths): */
    uint32_t ret_tags;    /* bit t: a plain value of tag t is returned as
                             it is (nothing to check, take or convert) */
    uint64_t own_regs;    /* registers that may hold a value to drop when
                             the frame returns (bit 63: any from 63 up;
                             in a frame of fewer registers, "look at
                             all of them": kp_proto_finish);
                             the others hold only plain values, references
                             and other non-owning tags, left as they are */
    uint8_t ptags[4];     /* pfast: the exact tag of each parameter */
    uint8_t pfast;        /* 1: at most four parameters, each by value of
                             an exact plain type (kp_vm_call_at's test) */
};

/* Works out a function's ret_tags and own_regs from its finished code and
 * its overload's parameters (code generation calls it once per function;
 * a proto it was not called on keeps the defaults: every register is
 * dropped and cleared at return). */
void kp_proto_finish(KpVM *vm, KpProto *p, const KpOverload *ov);
/* Where a script call's frame must end: the stack's end less the reserve
 * for the deinits and defers of an unwinding "stack overflow" (vm.c). */
KpValue *kp_vm_call_limit(KpVM *vm);

typedef struct KpFrame {
    KpProto *proto;
    KpOverload *ov;      /* the overload running (NULL for chunks/natives) */
    const KpInstr *pc;   /* saved pc (next instruction) */
    KpValue *base;
    bool is_defer;       /* running an out-of-line defer while unwinding */
    bool is_main;        /* the main chunk: registers below main_nregs are globals */
    bool refd;           /* a reference to one of its registers was made: its
                            registers' generations must change on return */
    uint32_t globals;    /* main chunks: registers below this are globals */
} KpFrame;

#define KP_STACK_VALUES (1u << 20) /* 16 MiB of registers */
/* Registers a main chunk leaves free above the globals, where a chunk run
 * re-entrantly (from a C function, api/driver.c) declares its own. */
#define KP_NESTED_GLOBALS 32
/* Registers of a main chunk are instruction operands (16 bits). */
#define KP_MAX_MAIN_REGS 65000u
/* Registers of frame 0 that top-level variables may use; the later ones
 * go to the far region (see KpVM.globals).  Main's temporaries need the
 * rest of its 30,000 registers.  (A build may lower it, e.g.
 * -DKP_NEAR_GLOBALS=8, to run everything through the far region.) */
#ifndef KP_NEAR_GLOBALS
#define KP_NEAR_GLOBALS 16384u
#endif
#define KP_MAX_FRAMES 20000

/* The bits of KpVM.interrupt. */
/* KP_ATTN_STOP: a parallel worker is told to stop (another one failed). */
enum { KP_ATTN_INTERRUPT = 1, KP_ATTN_BUDGET = 2, KP_ATTN_STOP = 4 };

/* The class of a runtime error (KpVM.err_kind): what a script's
 * `catch` sees as Error.kind (kp_vm_error_kind_name).  kp_vm_error gives
 * each message its class (vm.c classify, the one place that decides);
 * error() from a script, the interrupt and the budget set theirs.  The
 * last two are never caught: a host can always stop a script. */
typedef enum KpErrKind {
    KP_EK_RUNTIME,    /* "runtime": any other */
    KP_EK_OOM,        /* "out_of_memory": an allocator or --mem-limit refused */
    KP_EK_BOUNDS,     /* "bounds": an index or offset out of range */
    KP_EK_ARITH,      /* "arithmetic": division by zero, overflow */
    KP_EK_TYPE,       /* "type": a value of the wrong type */
    KP_EK_MOVED,      /* "moved": use of a moved, deinitialized or unset value */
    KP_EK_CONVERSION, /* "conversion": parse_int, parse_float, int(...) */
    KP_EK_IO,         /* "io": a file could not be opened, read or written */
    KP_EK_KEY,        /* "key": a map key not found */
    KP_EK_ASSERT,     /* "assert": assert(...) failed */
    KP_EK_STACK,      /* "stack_overflow": too many nested calls */
    KP_EK_USER,       /* "user": error("message") */
    KP_EK_HOST,       /* "host": a C function reported an error */
    KP_EK_INTERRUPT,  /* "interrupt": kp_vm_interrupt (never caught) */
    KP_EK_BUDGET,     /* "budget": the instruction budget ran out (never caught) */
    KP_EK__COUNT
} KpErrKind;

/* The name of an error kind ("bounds", ...), or NULL if out of range. */
const char *kp_vm_error_kind_name(int kind);
/* The kind named `name`, or -1. */
int kp_vm_error_kind_of(const char *name, size_t len);

/* Growable byte buffer from the VM's internal allocator. */
/* Bytes reserved at kp_vm_new for the message of the last error and for
 * the stack trace, so that reporting "out of memory" needs no memory. */
enum { KP_ERR_RESERVE = 2048, KP_TRACE_RESERVE = 4096 };

typedef struct KpBuf {
    char *data;
    size_t len, cap;
} KpBuf;

/* The drop work stack: drops nest through user deinits, each nested drop
 * working above its caller's entries (see object.c). */
typedef struct KpValueStack {
    KpValue *items;
    size_t len, cap;
} KpValueStack;

struct KpVM {
    KpAllocator *host;       /* the root allocator (host's or ours) */
    KpAllocator *heap;       /* the root script allocator */
    KpAllocator *ctx;        /* the context allocator: root, or `using A` */
    KpAllocator *meta;       /* the VM's own data: code, types, names */
    KpArena meta_arena;      /* code and types for the VM's life; during a
                                run, that run's scratch (see api/driver.c) */
    KpArena names_arena;     /* interned names and string constants */
    KpAllocator names_view;
    KpString **kstrs;        /* string constants, deduplicated (open
                                addressing by hash; kp_vm_const_str) */
    uint32_t nkstrs, kstrs_cap;
    KpAllocator meta_view;

    KpValue *stack;          /* fixed, KP_STACK_VALUES */
    uint32_t *reg_gen;       /* a generation per register (checked refs) */
    struct KpBlock {
        uint16_t gen;
        uint16_t alive;
        uint32_t next_free;  /* free list */
    } *blocks;
    uint32_t nblocks, cap_blocks, free_block;
    uint16_t next_cid;       /* the last KpType.cid given (field_cached) */
    /* the last KP_GRAVES deaths, for the messages of stale references */
#define KP_GRAVES 1024
    struct KpGrave {
        uint32_t id;
        uint16_t gen;
        uint32_t pos;        /* where it died (packed line/col) */
        const char *what;    /* what died: "Point", "an element of a list ..." */
    } *graves;               /* KP_GRAVES of them, from the host at the first
                                death (a VM that never needs them pays nothing) */
    uint32_t next_grave;
    KpValue *stack_end;
    KpValue *call_limit;     /* a call's frame must end below this (vm.c) */
    KpFrame *frames;
    int nframes;

    /* interned names: open addressing over const char* */
    const char **names;
    uint32_t nnames, names_cap;

    /* globals: the top-level variables, in declaration order.  GETG and
     * SETG name one by its index here (a 32-bit operand); its value is
     * the stack slot `reg`: a register of frame 0 for the first ones
     * ("near": main reads and writes them as registers), a slot of the
     * far region at the top of the stack for those declared once
     * KP_NEAR_GLOBALS registers are in use (main reaches them with
     * GETG/SETG, as functions reach every global) */
    struct KpGlobal {
        const char *name;
        uint32_t reg;      /* absolute stack slot */
        KpType *type;
        int pending; /* reserved by the chunk being compiled */
        int32_t prev_same; /* the older global of the same name, or -1 */
        bool far;          /* in the far region (reg >= far_floor) */
    } *globals;
    uint32_t nglobals;
    int globals_cap;
    /* the far region: slots stack_values-1, -2, ... downwards, nfar of
     * them; vm->stack_end is lowered over it, so frames never reach it
     * (a reference to a far slot is then an unchecked, static one: the
     * slot lives as long as the VM) */
    uint32_t nfar;
    uint32_t stack_values;   /* the stack's size: stack_end + nfar */
    /* name -> newest global of that name (compiler/resolve.c), synced
     * lazily with `globals` (gindex_n entries indexed); from the host */
    struct KpGlobalSlot { const char *name; int32_t idx; } *gindex;
    uint32_t gindex_cap, gindex_keys, gindex_n;
    uint32_t main_nregs;     /* registers of frame 0 kept across chunks */
    uint32_t temps_floor;    /* a re-entrant chunk's temporaries start here */
    uint32_t main_clean;     /* registers from here up hold nothing of a
                                chunk's (UNSET, or what returned frames left:
                                nothing to drop); a chunk run at frame 0
                                empties them up to its own top first, so its
                                new globals start UNSET */
    bool in_host_deinit;     /* a host type's deinit runs: no calls back in */

    /* functions by name (all function declarations are program-wide) */
    KpFunc **funcs;
    uint32_t nfuncs, funcs_cap;
    /* the function literals compiled (their functions are in no name's
     * overload set): a run's arena that holds one is kept (api/driver.c),
     * as a value of it may outlive the run in a top-level variable */
    KpFunc **literals;
    uint32_t nliterals, literals_cap;
    /* the library (set by the driver): registers the library's functions
     * named `name`, if any, when the name is first looked up; false when
     * there are none.  Their tables live in lib_arena. */
    bool (*lib_lookup)(KpVM *vm, const char *name);
    bool lib_loading;
    KpArena lib_arena;
    /* named types visible at top level */
    struct KpNamedType {
        const char *name;
        KpType *type;
        struct KpNode *generic; /* generic declaration AST, or NULL */
        void *gen_scope;
    } *types;
    uint32_t ntypes;
    int types_cap;

    /* interned derived types: List#(T), HashMap#(K,V), &T; anonymous
     * records; generic instances */
    KpType **derived, **anon, **inst;
    uint32_t nderived, nanon, ninst;
    int cap_derived, cap_anon, cap_inst;

    /* built-in types */
    KpType *t_any, *t_int, *t_float, *t_bool, *t_string, *t_unit, *t_type,
        *t_func, *t_list, *t_map, *t_heap, *t_allocator, *t_system;
    KpType *t_sized[8]; /* I8 I16 I32 U8 U16 U32 U64 ... by tag - KP_T_I8 */
    KpType *t_akind[KP_AK__COUNT]; /* Allocator, PageAllocator, ... */
    KpType *t_sysmem, *t_sysfs, *t_allocstats;
    KpType *t_error;         /* Error: what a `catch` gets (vm.c) */
    KpType *t_sysrandom, *t_sysenv; /* System.Random, System.Env (akind 3, 4) */
    KpType *t_random;        /* Random: a generator (stdlib/random.c), a built-in host type */
    /* binary data (vm/binary.h): Float32, Writer, Reader, View, Pin */
    KpType *t_float32, *t_bin[8];
    struct KpHeapAlloc **pinned; /* every pinned buffer (pins are few) */
    uint32_t npinned, cap_pinned;
    int64_t pinned_bytes;    /* bytes of pinned buffers now */
    int64_t live_views;      /* Readers and Views alive now */
    KpValue sys_memory;      /* system.memory: the right to make allocators */
    KpValue sys_args;        /* system.args: List#(String) */
    KpValue sys_script;      /* system.script: String, the script's path */
    KpValue sys_fs;          /* system.fs: granted by the host (allow_fs) */
    bool allow_fs;
    KpValue sys_random;      /* system.random: granted by the host (allow_random) */
    KpValue sys_env;         /* system.env: granted by the host (allow_env) */
    bool allow_random, allow_env;
    bool no_memory;          /* system.memory withheld by the host */
    size_t max_source;       /* kp_vm_run_file's size limit, bytes */
    KpAccount acct;          /* the memory limit of everything scripts
                                allocate: the root and every Page/Direct
                                allocator are counted views over it */
    KpCounted heap_counted;
    /* the VM's own run-time tables that grow with what scripts do (the
     * drop work stack, the block table, keep's owner table, link records
     * and walk stacks) come from `rt`, a counted view of the host
     * allocator on the same account: they count against mem_limit too */
    KpCounted rt_counted;
    KpAllocator rt_a, *rt;
    int64_t acct_refusals_seen; /* acct.refusals at the last OOM message */
    /* embedding (vm/embed.c): the host's slots, handles, C functions */
    KpValue *api_slots;      /* the current slot window */
    int api_nslots;
    KpValue *hslots;         /* the host's own slots (outside C functions) */
    int nhslots, cap_hslots;
    int in_cfunc;            /* C functions running */
    struct KpHandle *handles;
    KpOverload *cur_native;  /* the native being called */
    /* keep (vm/keep.c): owner object -> the boxes it keeps */
    struct KpKeepLink **keep_tab;
    uint32_t keep_cap, keep_count;
    KpBox *boxes;            /* every live box */
    bool collect_cycles;
    KpSrcLoc loc;            /* scratch for kp_vm_loc */
    bool stats_report;       /* --stats: report each allocator at its deinit */

    /* errors */
    KpBuf err;               /* message of the last error */
    KpBuf trace;             /* stack trace text */
    int status;              /* KP_OK, KP_ERR_RUNTIME, KP_ERR_COMPILE */
    bool err_located;        /* err already has position and trace */
    uint8_t err_kind;        /* KpErrKind of the error in err */
    bool err_caught;         /* a try block will catch it: not reported */
    uint32_t err_line, err_col; /* where it was raised (located) */
    const KpSource *err_src;
    size_t err_head;         /* bytes of "file:line:col: " before the message */
    uint32_t ntrace;         /* entries in trace */
    struct KpReraise {       /* error(e) of a caught Error: raised again
                                with e's place and trace */
        bool set;
        const char *file;    /* interned */
        uint32_t line, col;
    } reraise;
    bool exiting;            /* exit(code) unwinds the frames (stdlib/time.c):
                                no report; the run returns KP_EXIT */
    int exit_code;           /* exit's code, 0..255 */
    bool incomplete;         /* the last compile ended inside an open construct */
    bool init_failed;        /* out of memory while creating the VM */
    uint64_t host_refusals;  /* requests the host allocator refused */
    size_t host_refused_bytes; /* the size of the last one */
    jmp_buf *compile_oom;    /* while compiling: where a refused host
                                allocation jumps (compiler/compile.c) */
    struct KpDeclUndo *decl_undo; /* while compiling: what the chunk changed
                                in the functions and types the VM keeps,
                                undone if it fails (compiler/compile.c) */
    uint32_t ndecl_undo, cap_decl_undo;
    KpValue *native_top;     /* registers in use by a running native */
    KpString *empty_str;
    bool unwinding;
    bool catching;           /* unwinding to a catch (--trace-ownership says so) */

    KpBuf scratch;           /* tostring output */
    KpValueStack dstack;

    KpWriteFn write_out, write_err;
    void *write_ud;
    KpDiagnosticFn on_diagnostic; /* structured diagnostics, or NULL */

    /* Modules (api/driver.c loads them, compiler/module.c rewrites names):
     * every file imported, once per VM, in the order they finished
     * compiling (a module after the modules it imports).  Tables and
     * structs live in names_arena (they last as long as the VM). */
    KpLoadModuleFn load_module; /* KpConfig.load_module, or NULL */
    struct KpModule {
        const char *name;        /* the resolved file name (interned): key */
        const char *prefix;      /* its members' names are prefix + name,
                                    "geometry." (interned) */
        struct KpProto *main;    /* its top-level statements, until they run */
        bool loading;            /* being compiled: importing it is a cycle */
        struct KpModAlias *aliases; /* its own imports */
        uint32_t naliases, cap_aliases;
    } **modules;
    uint32_t nmodules, cap_modules;
    /* `geo := import("…")` of the main script (and of earlier REPL lines) */
    struct KpModAlias {
        const char *alias;       /* interned */
        struct KpModule *mod;
        uint32_t line, col;
    } *aliases;
    uint32_t naliases, cap_aliases;
    /* what the chunk being compiled sees: the module it is (NULL: the main
     * script), and its aliases */
    struct KpModule *cur_module;
    struct KpModAlias *cur_aliases;
    uint32_t ncur_aliases;

    const KpSource **sources; /* every source compiled, freed at the end */
    uint32_t nsources, sources_cap;

    /* What the checks at calls and backward jumps must look at: one word,
     * so that the usual case (neither) is one test.  KP_ATTN_INTERRUPT is
     * set by kp_vm_interrupt (any thread), KP_ATTN_BUDGET while a budget
     * is set (kp_vm_set_budget). */
    _Atomic int interrupt;
    int64_t budget;          /* remaining instructions, <0 = unlimited */
    bool dump_bytecode;
    bool trace_own;          /* --trace-ownership: vm.c kp_vm_trace_own */
    const char *trace_file;  /* the last main chunk's source name, for it */
    bool ran_since_finish;   /* a chunk ran after kp_vm_finish: its globals
                                are dropped by the next finish (or free) */

    /* Parallel calls (vm/parallel.c).  `threads`: the most workers a call
     * uses (KpConfig.threads; 1: every call runs on the calling thread).
     * `pstate`: what they keep for the VM's life, made at the first call
     * that needs it.  `par`: set in a worker's copy of the VM only — the
     * running VM it was copied from, and the lock of what they share. */
    int threads;
    struct KpParState *pstate;
    struct KpParShared {
        KpVM *root;
        pthread_mutex_t lock;
    } *par;
};

/* --trace-ownership: writes to write_err one line for an ownership
 * operation the VM performs — `[own] FILE:LINE:COL KIND NAME: TYPE` —
 * at the position of the running instruction (KIND: move, drop, deinit,
 * box, keep, release; NAME "_" for a temporary).  `slot` (may be NULL)
 * is where the value was, for its variable's name. */
void kp_vm_trace_own(KpVM *vm, const char *kind, KpValue v, const KpValue *slot, uint32_t count);

/* The immortal string constant with these bytes: one per distinct text
 * for the VM's life, outside the per-run arena (a value may hold it after
 * the run that compiled it).  NULL when out of memory. */
KpString *kp_vm_const_str(KpVM *vm, const char *s, size_t len);

/* ---------------------------------------------------- checked references */

/* Is reference r still valid in vm?  The check of a checked reference: a
 * register's generation, or a heap object's block generation. */
static inline bool kp_ref_ok_in(const KpVM *vm, KpValue r) {
    /* The flags first: a heap reference is one generation compare (a
     * block's generation changes when it ends, so an equal one is alive;
     * a retired block keeps 0xffff, which no reference was made with);
     * a static one needs nothing; only the rest test the stack's range. */
    if (r.flags & KP_VF_HEAP) return r.aux < vm->nblocks && vm->blocks[r.aux].gen == r.x;
    if (r.flags & KP_VF_STATIC) return true;
    KpValue *p = r.p;
    if (p >= vm->stack && p < vm->stack_end) return vm->reg_gen[p - vm->stack] == r.aux;
    return true;
}

static inline bool kp_ref_ok(KpValue r) {
    if (r.flags & KP_VF_STATIC) return true;
    KpVM *vm = kp_tls_vm;
    if (!vm) return true;
    return kp_ref_ok_in(vm, r);
}

static inline KpValue *kp_ref_slot(KpValue r) { return kp_ref_ok(r) ? (KpValue *)r.p : NULL; }

static inline KpValue kp_deref(KpValue v) {
    while (v.tag == KP_T_REF) {
        if (!kp_ref_ok(v)) return kp_ref_dead(v);
        v = *(KpValue *)v.p;
    }
    return v;
}

/* kp_deref with the VM given (no thread-local read): v through live
 * references, or the dead marker of the first stale one. */
static inline KpValue kp_deref_in(const KpVM *vm, KpValue v) {
    while (v.tag == KP_T_REF) {
        if (!kp_ref_ok_in(vm, v)) return kp_ref_dead(v);
        v = *(KpValue *)v.p;
    }
    return v;
}

/* ---------------------------------------------------------- internals */

const char *kp_intern(KpVM *vm, const char *s, size_t len);
/* Formats a runtime error at the current instruction (or `line`/`col` when
 * nonzero) and builds the stack trace.  Always returns false. */
bool kp_vm_error(KpVM *vm, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
bool kp_vm_error_at(KpVM *vm, uint32_t line, uint32_t col, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* After a failure: gives the error a message if none was set (out of
 * memory when the host refused a request, else an internal error); true
 * when it did. */
bool kp_vm_error_unsaid(KpVM *vm);
/* kp_vm_error with the kind given rather than read from the message. */
bool kp_vm_error_kind(KpVM *vm, int kind, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Makes the located error of `from` (a parallel worker's copy of vm)
 * vm's own — message, position, trace, kind — and reports it unless a
 * try block of vm's frames will catch it. */
void kp_vm_adopt_error(KpVM *vm, KpVM *from);
/* Runs `proto` as a main chunk: at frame 0, or, called from a C function
 * while a script runs (re-entrant), in a frame above the running ones. */
int kp_vm_run_main(KpVM *vm, KpProto *proto);
/* The first stack slot above everything in use (frames and C functions). */
KpValue *kp_vm_stack_top(KpVM *vm);
/* Reserves the next slot of the far region for a top-level variable
 * (lowering stack_end over it) and returns its absolute index, or
 * UINT32_MAX when the stack has no room left for it above what runs. */
uint32_t kp_vm_far_slot(KpVM *vm);
/* Forgets the globals from index n on (a chunk that did not compile, or
 * was only analysed): their far slots are given back to the stack. */
void kp_vm_globals_truncate(KpVM *vm, uint32_t n);
/* The index in vm->globals of the newest top-level variable named
 * `name` (interned) whose `pending` is `pending` (-1: any), or -1: a hash
 * lookup (a scan only when out of memory for the index). */
int32_t kp_vm_global_find(KpVM *vm, const char *name, int pending);
/* The top-level variable whose value is at stack slot `slot`, or NULL
 * (a scan: for messages and --trace-ownership only). */
const char *kp_vm_global_name_at(KpVM *vm, const KpValue *slot);
/* Calls `ov` with args at `base` (nargs values already bound). */
bool kp_vm_call_value(KpVM *vm, KpValue fn, KpValue *args, int nargs,
                      KpValue *out);
/* The same with the function already at top[0] (a KP_T_FUNC) and the
 * arguments above it, where top is kp_vm_stack_top(vm) and top + nargs + 2
 * is below the stack's end. */
bool kp_vm_call_at(KpVM *vm, KpValue *top, int nargs, KpValue *out);
/* Calls the user deinit overload on a record (slot holds the record). */
bool kp_vm_call_deinit(KpVM *vm, KpOverload *ov, KpValue *slot);

void kp_buf_reset(KpBuf *b);
/* Makes room for `need` bytes in all (false when out of memory). */
bool kp_buf_reserve(KpVM *vm, KpBuf *b, size_t need);
/* Appends n bytes; false when out of memory.  vm->err and vm->trace
 * never lose a message: out of memory, it is cut to their reserved space
 * (KP_ERR_RESERVE, KP_TRACE_RESERVE bytes, allocated with the VM). */
bool kp_buf_add(KpVM *vm, KpBuf *b, const char *s, size_t n);
/* Inserts the string s at the front (cutting the end of b's text short
 * when out of memory). */
void kp_buf_prepend(KpVM *vm, KpBuf *b, const char *s);
bool kp_buf_printf(KpVM *vm, KpBuf *b, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void kp_buf_free(KpVM *vm, KpBuf *b);

KpFunc *kp_func_get(KpVM *vm, const char *name, bool create);
KpOverload *kp_func_add_native(KpVM *vm, const char *name, KpNativeFn fn,
                               int nparams, const uint8_t *modes, uint8_t variadic,
                               uint8_t vmode);
void kp_embed_free(KpVM *vm);
void kp_vm_write(KpVM *vm, const char *s, size_t n);
/* vm/state.c: a VM with its stack, built-in types and output set up from
 * cfg, but no library functions (kp_vm_new in api/driver.c adds them).
 * NULL when out of memory. */
KpVM *kp_vm_create(const KpConfig *cfg);

void kp_dump_proto(KpVM *vm, const KpProto *p);

#endif
