/*
 * object.h — heap objects, types and functions.
 *
 * Every heap object starts with a KpObj header naming the allocator it came
 * from (the brief's "each value records the allocator it came from"); drop
 * gives the memory back to exactly that allocator.  Objects are single-owner
 * (records, lists, maps, allocations move) except strings, which are
 * immutable and refcounted.  Types and functions are created by the compiler
 * and live as long as the VM ("immortal"): values of those tags own nothing.
 */
#ifndef KP_OBJECT_H
#define KP_OBJECT_H

#include "../alloc/alloc.h"
#include "value.h"

typedef struct KpVM KpVM;
typedef struct KpType KpType;
typedef struct KpFunc KpFunc;
typedef struct KpProto KpProto;

enum {
    KP_OF_IMMORTAL = 1u << 0, /* owned by the VM's metadata (constants) */
    KP_OF_KEEPER = 1u << 2,   /* owns keep boxes (see vm/keep.c)            */
    KP_OF_DEINITED = 1u << 3, /* its user deinit already ran (a collected
                                 cycle runs them all before taking apart) */
    KP_OF_ORPHAN = 1u << 1,   /* deinitialized while locked: freed when the
                                 last lock goes (HeapAllocation under a
                                 FixedBufferAllocator, allocator under others,
                                 a user allocator record under its values) */
};

typedef struct KpObj {
    uint8_t kind;  /* KpTag of the value that points at it */
    uint8_t flags; /* KP_OF_* */
    uint16_t lock; /* lists/maps: active for-loops over it */
    uint32_t block; /* its entry in the VM's block table: references into
                       it carry that entry's generation (checked refs) */
    KpAllocator *alloc;
} KpObj;

typedef struct KpString {
    KpObj h;
    int64_t rc;
    uint32_t len;
    uint32_t hash;
    char data[]; /* len bytes + NUL */
} KpString;

typedef struct KpRecord {
    KpObj h;
    KpType *type;
    KpValue f[]; /* type->nfields */
} KpRecord;

typedef struct KpList {
    KpObj h;
    KpType *elem; /* checked element type, or NULL */
    KpValue *items;
    uint32_t len, cap;
} KpList;

typedef struct KpMapEntry {
    KpValue key; /* KP_T_UNSET key = deleted entry */
    KpValue val;
} KpMapEntry;

/* Insertion-ordered hash map (the layout of CPython's compact dict): an
 * entries array in insertion order plus an open-addressing index of
 * int32 positions into it. */
typedef struct KpMap {
    KpObj h;
    KpType *ktype, *vtype;
    KpMapEntry *entries;
    uint32_t nentries, cap; /* used slots (incl. deleted), capacity */
    uint32_t count;         /* live entries */
    int32_t *index;         /* size icap, -1 = empty */
    uint32_t icap;
} KpMap;

/* --------------------------------------------------------------- types */

typedef enum KpTypeKind {
    KP_TK_ANY,      /* matches everything (untyped)                      */
    KP_TK_SCALAR,   /* Int, Float, Bool, String, (), sized ints: `tag`  */
    KP_TK_RECORD,   /* declared record type or anonymous record         */
    KP_TK_LIST,     /* List#(elem)                                      */
    KP_TK_MAP,      /* HashMap#(key, elem)                              */
    KP_TK_REF,      /* &elem / $&elem (refmode 1/2)                     */
    KP_TK_ABSTRACT, /* an interface: members are function signatures    */
    KP_TK_TYPE,     /* the type of types (`Type`)                       */
    KP_TK_FUNC,     /* functions                                        */
    KP_TK_OPAQUE,   /* built-in object kinds matched by tag (HeapAllocation,
                       allocators, System)                               */
} KpTypeKind;

struct KpType {
    uint8_t kind;    /* KpTypeKind */
    uint8_t tag;     /* SCALAR/OPAQUE: the value tag it matches */
    uint8_t refmode; /* REF: 1 = &, 2 = $& */
    uint8_t anon;    /* RECORD: anonymous (named outputs, literals) */
    uint8_t akind;   /* OPAQUE allocator types: KpAllocKind, 0 = any */
    uint16_t cid;    /* RECORD: its number in field-name caches (vm.c
                        field_cached), given at its first field lookup;
                        0: none yet */
    const char *name;
    /* RECORD */
    uint32_t nfields;
    const char **fnames;   /* interned */
    KpType **ftypes;       /* NULL entries = untyped */
    KpValue *defaults;     /* KP_T_UNSET = no default */
    struct KpOverload *user_deinit; /* deinit overload for this type */
    /* LIST, MAP, REF */
    KpType *elem, *key;
    /* ABSTRACT: required function names (with `_` at param position) */
    uint32_t nreqs;
    const char **reqs;
    /* RECORD made by kp_define_type: no fields, `host_size` bytes of the
     * host's payload after the record header; scripts cannot create one */
    void (*host_deinit)(void *payload, void *ud);
    void *host_ud;
    size_t host_size;
    bool host;
    /* FUNC: the type of a function literal that captures (its values are
     * records of it: the captures are its fields); the overload, and bit
     * i set when capture i is taken (owned) rather than borrowed */
    struct KpOverload *closure;
    uint64_t closure_take;
};

/* The host's payload of a record of a host type (16-aligned). */
#define KP_HOST_PAYLOAD(r) ((void *)(r)->f)
/* Bytes of a host type's payload as stored (a multiple of 16). */
#define KP_HOST_BYTES(t) (((t)->host_size + 15) & ~(size_t)15)

/* ----------------------------------------------------------- functions */

typedef enum KpParamMode {
    KP_PM_VALUE = 0, /* by value: moves movable arguments                 */
    KP_PM_REF = 1,   /* &T: borrows read-only                             */
    KP_PM_MUTREF = 2,/* $&T: borrows mutably                              */
} KpParamMode;

typedef struct KpParam {
    const char *name; /* interned; NULL for `_` */
    uint8_t named;    /* written `.name` */
    uint8_t mode;     /* KpParamMode */
    uint8_t fast_tag; /* exact value tag for a scalar param type, 0 = any, 255 = slow check */
    KpType *type;     /* NULL = any */
    KpValue def;      /* default (constant) or UNSET */
} KpParam;

typedef bool (*KpNativeFn)(KpVM *vm, KpValue *args, int nargs, KpValue *out);

typedef struct KpOverload {
    KpFunc *func;
    KpProto *proto;    /* script function, or NULL */
    KpNativeFn native; /* native function, or NULL */
    uint16_t nparams;
    uint8_t variadic;  /* natives: extra args allowed (bound by `vmode`) */
    uint8_t vmode;     /* mode of variadic args */
    uint8_t by_result; /* natives: selected only where the expected type
                          asks for its output type (KP_BF_BY_RESULT) */
    KpParam *params;
    KpType *ret;       /* declared output type, or NULL */
    const char *file;
    uint32_t line;
    uint8_t stores_arg;     /* natives: stores its last argument into its
                               first (push; KP_BF_STORES) */
    uint8_t result_borrows; /* natives: the result borrows the first argument
                          (view, Reader): it may not outlive it */
    uint8_t view_op;        /* natives (stdlib/builtins.h KP_BF_VIEW_* rows):
                               1 the result View's element type is the type
                               argument, 2 the first argument's; 3 #index
                               (VINDEX), 4 #setindex (VSETINDEX); 0 none */
    /* The function summary (compiler/summary.c), set for script functions
     * whose body the compiler has read: bit i of sum_ret — the value or a
     * reference of parameter i can flow into the result; sum_into[j] (an
     * array of nparams, or NULL) — parameter i can be stored into $&
     * parameter j.  sum_known 0: no summary (the signature decides). */
    uint8_t sum_known;
    uint64_t sum_ret;
    uint64_t *sum_into;
    void *host_fn;     /* a host C function (KpCFunction), see vm/embed.c */
    void *host_ud;
    uint8_t host_overload; /* registered with KP_REG_OVERLOAD: scripts may
                              add overloads of the same name */
    /* compiler/parcheck.c: the first top-level variable the function
     * writes (interned; NULL: none known), where, and the function it
     * calls that writes it (NULL: its own body does) */
    const char *par_writes, *par_via;
    uint32_t par_line, par_col;
    uint16_t literal;  /* a function literal's: how many of the last
                          parameters are its captures (passed by the call,
                          never by the caller); 0 otherwise */
} KpOverload;

/* The first host function of f registered without KP_REG_OVERLOAD, which a
 * script function of the same name would silently overload; or NULL. */
KpOverload *kp_func_host_owner(KpFunc *f);

/* A function's dispatch cache (vm/vm.c select_cached): the overloads the
 * run time chose for the argument shapes seen last — an inline cache kept
 * per function rather than per call site, since the calls that stay
 * dynamic are mostly one polymorphic site (Richards' run_fn over four task
 * kinds).  Valid while the function has `n` overloads; it lives in the
 * VM's lib_arena, as long as the VM. */
#define KP_DISPATCH_WAYS 8
typedef struct KpDispatchCache {
    uint32_t n;     /* f->n when filled */
    uint32_t next;  /* the way to replace next (round robin) */
    struct {
        KpOverload *ov; /* NULL: empty */
        uint64_t hash;  /* of nargs, the shapes and expect: compared first */
        const struct KpType *expect; /* the output type the call asks for */
        int nargs;
        uint64_t shape[4][2];
    } way[KP_DISPATCH_WAYS];
} KpDispatchCache;

struct KpFunc {
    const char *name;
    uint32_t n, cap;
    KpOverload **ovs;
    uint8_t special; /* built-ins compiled as special forms (deinit) */
    KpDispatchCache *dispatch; /* made at the first dynamic choice (lib_arena) */
};

/* ---------------------------------------------------------- allocators */

typedef enum KpAllocKind {
    KP_AK_ANY = 0, KP_AK_PAGE, KP_AK_ARENA, KP_AK_FIXED, KP_AK_DEBUG,
    KP_AK_THREADLOCAL, KP_AK_DIRECT, KP_AK__COUNT
} KpAllocKind;

/* An allocator value (PageAllocator, ArenaAllocator, ...).  `a` is the
 * interface the values it allocates point at (KpObj.alloc); its stats
 * count them.  See stdlib/memory.c. */
typedef struct KpAllocObj {
    KpObj h;
    uint8_t kind;          /* KpAllocKind */
    KpAllocator a;
    union {
        KpArena arena;
        KpFixed fixed;
        KpDebug debug;
        KpThreadLocal tl;
        struct {             /* page and direct: the system allocator, */
            KpAllocator inner; /* counted against the VM's memory limit */
            KpCounted counted;
            KpPageCache pages; /* page: its cache of freed mappings */
        } sys;
    } u;
    KpAllocator *backing;  /* NULL for page and direct */
    struct KpAllocObj *backing_obj; /* the backing when it is a script allocator:
                              locked (h.lock) while this one lives */
    struct KpHeapAlloc *buf; /* FixedBufferAllocator over a borrowed HeapAllocation */
    void *own_buf;         /* FixedBufferAllocator's own buffer (from backing) */
    size_t own_len;
    KpValue self;          /* {ALLOCATOR, this}: `h.allocator` refers here */
    int64_t live_views;    /* Readers and Views of buffers it allocated */
    const char *file;      /* where it was created */
    uint32_t line;
} KpAllocObj;

/* A HeapAllocation: `size` bytes at `data` from allocator `from`. */
typedef struct KpHeapAlloc {
    KpObj h;
    unsigned char *data;
    int64_t size;
    KpAllocator *from;     /* NULL for a mapped file */
    KpValue *from_self;    /* the allocator's `self` slot (for .allocator) */
    uint32_t align;        /* the alignment it was allocated with (0 = 16) */
    uint32_t views;        /* Readers and Views borrowing it (vm/binary.h) */
    uint32_t pins;         /* pins (script pin blocks, kp_pin_bytes) */
    uint32_t host_pins;    /* of them, kp_pin_bytes's */
    uint8_t mapped;        /* map_file: munmap at deinit */
    uint8_t readonly;      /* a read-only mapping */
    const char *pin_what;  /* the most recent pin, for messages */
    uint32_t pin_line;
} KpHeapAlloc;

bool kp_alloc_obj_drop(KpVM *vm, KpAllocObj *o);
/* `using r` over a record that implements Allocator (vm/allocobj.c). */
bool kp_script_allocator_begin(KpVM *vm, KpValue rec, KpValue *save);
void kp_script_allocator_end(KpVM *vm, void *wrapper);
const char *kp_alloc_kind_name(int kind);
/* The location of the running instruction, when `a` records locations. */
const KpSrcLoc *kp_vm_loc(KpVM *vm, KpAllocator *a);
/* Sets the "out of memory" error naming allocator `a` and the request. */
bool kp_oom_error(KpVM *vm, KpAllocator *a, size_t size);

/* ---------------------------------------------------------- keep boxes */

/* A kept value (vm/keep.c): `rc` counts its owners (or the kept local
 * before `keep` runs, or the manual keep). */
typedef struct KpBox {
    KpObj h;
    int32_t rc;
    int32_t trial;          /* the cycle detector's trial count */
    uint8_t color, manual, buffered;
    const char *name;       /* the kept variable, for reports */
    const char *file;       /* where `keep` ran */
    uint32_t line;
    KpValue v;
    struct KpBox *next_all, *prev_all; /* every live box */
} KpBox;

bool kp_box_new(KpVM *vm, KpAllocator *a, KpValue v, const char *name, KpValue *out);
/* Drops one count of a box (its value deinitialized at zero). */
bool kp_box_release(KpVM *vm, KpBox *b);
/* kp_drop's step for one count of a box: at zero, the value and a
 * KP_DROP_BOX_FREE marker go on the drop work stack. */
bool kp_box_drop_count(KpVM *vm, KpBox *b);
/* Frees a box whose value is gone (the KP_DROP_BOX_FREE marker). */
void kp_box_free(KpVM *vm, KpBox *b);
/* `keep` with `n` owner references; 0 owners: manual. */
bool kp_keep(KpVM *vm, KpBox *b, KpValue *owners, int n, const char *file, uint32_t line);
/* An owner object is being dropped: its boxes go on the drop work stack,
 * to be released newest first (called from kp_drop only). */
bool kp_keep_release_owner(KpVM *vm, KpObj *o);
/* Ends a manual keep (`deinit(x)` of a kept variable). */
bool kp_keep_end_manual(KpVM *vm, KpBox *b);
/* Trial deletion over the boxes (Bacon & Rajan 2001); reports every cycle
 * of boxes no longer reachable; collect: deinitialize them too.  Returns
 * the number of cyclic boxes found, or -1 when out of memory (nothing
 * was reported or collected; the candidates stay for the next check). */
int kp_check_cycles(KpVM *vm, bool collect);
/* At the end of a program: report manual keeps never ended and cycles. */
bool kp_keep_report(KpVM *vm); /* false: out of memory for the cycle check (error set) */
/* When the VM is freed: release every box left. */
void kp_keep_shutdown(KpVM *vm);

/* ---------------------------------------------------------------- API */

/* Strings.  `a` is the allocator the string comes from. */
KpString *kp_str_new(KpVM *vm, KpAllocator *a, const char *bytes, size_t len);
uint32_t kp_hash_bytes(const char *s, size_t len);
/* The length in bytes of the UTF-8 character at byte offset i < s->len
 * (1 for a byte that does not start a valid sequence). */
int kp_str_char_len(const KpString *s, uint32_t i);
/* True on a parallel worker's thread (vm/parallel.c).  Values shared
 * with the other workers are only read there, but reading a string can
 * still count it: refcounts and loop locks then change with atomic
 * operations (the calling thread waits meanwhile, so outside a parallel
 * call the plain ones are enough). */
extern _Thread_local bool kp_tls_par __attribute__((tls_model("initial-exec")));

static inline void kp_str_incref(KpString *s) {
    if (s->h.flags & KP_OF_IMMORTAL) return;
    if (__builtin_expect(kp_tls_par, 0)) __atomic_add_fetch(&s->rc, 1, __ATOMIC_RELAXED);
    else s->rc++;
}

/* Counts a string down; true when that was its last count. */
static inline bool kp_str_decref(KpString *s) {
    if (__builtin_expect(kp_tls_par, 0)) return __atomic_sub_fetch(&s->rc, 1, __ATOMIC_ACQ_REL) == 0;
    return --s->rc == 0;
}

/* A for-loop starts (d = 1) or ends (d = -1) over o: see KpObj.lock. */
static inline void kp_obj_lock_add(KpObj *o, int d) {
    if (__builtin_expect(kp_tls_par, 0)) __atomic_add_fetch(&o->lock, (uint16_t)d, __ATOMIC_RELAXED);
    else o->lock = (uint16_t)(o->lock + d);
}

/* Allocates a zero-filled object of `size` bytes from `a`, header set.
 * Returns NULL (and sets the VM error) when the allocator is exhausted. */
void *kp_obj_new(KpVM *vm, KpAllocator *a, KpTag kind, size_t size);

KpRecord *kp_record_new(KpVM *vm, KpType *t);
/* A value of a host type (kp_new_object): its payload zeroed. */
KpRecord *kp_host_object_new(KpVM *vm, KpType *t);
KpList *kp_list_new(KpVM *vm, uint32_t cap);
bool kp_list_push(KpVM *vm, KpList *l, KpValue v); /* moves v in */
KpMap *kp_map_new(KpVM *vm);
/* Finds key; returns the entry or NULL. */
KpMapEntry *kp_map_find(KpMap *m, KpValue key);
/* Inserts or replaces (old value dropped); moves key and val in. */
bool kp_map_put(KpVM *vm, KpMap *m, KpValue key, KpValue val);
bool kp_map_remove(KpVM *vm, KpMap *m, KpValue key, KpValue *out);

/* Releases what `v` owns (runs user deinit first for records).  The slot is
 * left as is; callers overwrite it.  Returns false if a user deinit raised
 * an error (the value is still fully released). */
bool kp_drop(KpVM *vm, KpValue v);
/* Work-stack entries of kp_drop that are not values: the rest of a
 * record, list or map whose kept boxes go first (p = the KpObj), and a box
 * to free once its value is gone (p = the KpBox). */
enum { KP_DROP_REST = KP_T__COUNT + 1, KP_DROP_BOX_FREE };
/* Schedules v on the running kp_drop's work stack (false: out of memory). */
bool kp_drop_push(KpVM *vm, KpValue v);
/* Gives the drop work stack back (kp_vm_free, or after a deep drop). */
void kp_drop_stack_free(KpVM *vm);
/* Deep copy into a fresh value owned by the caller. */
bool kp_clone(KpVM *vm, KpValue v, KpValue *out);
/* Structural equality (records, lists, maps compare element-wise), on the
 * C stack up to KP_EQUAL_DEPTH levels of nesting.  kp_equal answers false
 * past that depth (for map keys, which never nest); kp_equal_checked sets
 * the VM error and returns false instead (`==`, `!=`, has). */
#define KP_EQUAL_DEPTH 10000
bool kp_equal(KpValue a, KpValue b);
bool kp_equal_checked(KpVM *vm, KpValue a, KpValue b, bool *eq);
/* ------------------------------------------------ checked references
 *
 * Every reference carries its referent's generation.  A reference to a
 * register (a local variable) records the register's generation, bumped
 * whenever the register is cleared (scope exit, return); a reference into
 * a heap object (a field, an element, a box) records the object's block id
 * and that block's generation, bumped when the object is freed, and for
 * lists and maps also when their storage moves or shrinks.  Using a stale
 * reference yields a "dead" MOVED marker that every reader reports as an
 * error — never a read of freed memory.  The VM running on this thread is
 * kp_tls_vm (one thread per VM at a time; nested VMs save and restore it).
 */
extern _Thread_local KpVM *kp_tls_vm __attribute__((tls_model("initial-exec")));
/* Is the referent of r still there?  (Inline, in vm.h.) */
static inline bool kp_ref_ok(KpValue r);
KpValue kp_ref_dead(KpValue r);
/* The slot a reference points at, or NULL when the referent is gone. */
static inline KpValue *kp_ref_slot(KpValue r);
/* A reference to `slot`, inside heap object `owner` (NULL: the slot is a
 * register, or lives as long as every use of the reference).  Out of
 * memory to track it, an UNSET value with the error set (check the tag). */
KpValue kp_make_ref(KpVM *vm, KpValue *slot, KpObj *owner, uint8_t flags);
/* Grows the block table so that `spare` more entries fit without moving
 * it (vm/parallel.c, before workers start).  False when out of memory. */
bool kp_blocks_reserve(KpVM *vm, uint32_t spare);
/* A reference that keeps the checking information of `from` but points at
 * another slot of the same storage. */
/* Gives `o` a new block (invalidating references into its old storage),
 * or releases it when it is freed; `why` names what was lost. */
void kp_block_renew(KpObj *o, const char *why);
void kp_block_release(KpObj *o, const char *what);

/* Follows references to the value they point at (a dead reference gives a
 * MOVED marker with KP_VF_DEAD).  Inline, in vm.h. */
static inline KpValue kp_deref(KpValue v);
/* Appends the text of `v` to the VM's scratch buffer (quoted: strings in
 * quotes, as inside containers). */
bool kp_tostring(KpVM *vm, KpValue v, bool quoted);
/* The text of a Float as print, str and format show it: the shortest that
 * reads back as f, with a point or an exponent ("2.0", "0.1", "1e+100",
 * "inf", "nan"); n >= 32 is enough. */
void kp_format_float(double f, char *buf, size_t n);
/* The text of v for a message (vm->scratch is reset and used); when it
 * cannot be made for want of memory, "(a value: out of memory to show
 * it)".  Valid until scratch is next used. */
const char *kp_tostring_msg(KpVM *vm, KpValue v, bool quoted);
/* Name of v's type for messages ("Int", "Point", "List#(Int)", "&Point"). */
const char *kp_value_type_name(KpVM *vm, KpValue v);
const char *kp_type_name(const KpType *t);
/* "a Point", "an Int": the name with its article (a rotating buffer). */
const char *kp_a(const char *name);
/* Does v satisfy type t?  Sized-int coercion happens in kp_type_coerce. */
bool kp_type_matches(KpVM *vm, const KpType *t, KpValue v);
/* Checks v against t, converting Int to a sized int type (range-checked);
 * returns false with *why set on mismatch. */
bool kp_type_coerce(KpVM *vm, const KpType *t, KpValue *v, const char **why);
/* kp_type_coerce's common cases, inline: is *v of type t as it is (a
 * scalar of exactly the type, not rounded into a Float32; a record of the
 * record type), so that kp_type_coerce would leave it unchanged and
 * succeed?  False says nothing: kp_type_coerce decides. */
static inline bool kp_type_fits(const KpType *t, const KpValue *v) {
    if (t->kind == KP_TK_SCALAR) return v->tag == t->tag && t->akind != 32;
    return t->kind == KP_TK_RECORD && v->tag == KP_T_RECORD && ((const KpRecord *)v->p)->type == t;
}

#endif
