/*
 * state.c — the VM's state: creating and freeing it, interned names, the
 * function table, the built-in types, limits and statistics.  What runs
 * source (parse, compile, execute) is the driver's, in api/driver.c; this
 * file knows neither the compiler nor the standard library.
 *
 * Memory.  The VM struct and its bookkeeping come from the host allocator
 * (`host`); the compiler's output (code, types, names, the AST) from an
 * arena over it (`meta`), released at kp_vm_free; script values from the
 * script heap (`heap`), a separate allocator over the host's so that its
 * statistics count script values only — that is what --check-leaks reads —
 * and which becomes a DebugAllocator with --debug-alloc.  Without it the
 * heap's small blocks go through a ClassCache (alloc/classes.c): freed ones
 * wait on size-class free lists for the next request of their size, so
 * most allocations never reach the host allocator.  The value stack
 * is mapped from the page allocator: its pages are zero (UNSET) and only
 * touched ones cost memory.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vm.h"
#include "parallel.h"
#include "binary.h"

typedef struct KpVMBox {
    KpVM vm;
    KpAllocator host_a;   /* the root: the host's KpAllocFn, or malloc */
    KpAllocator heap_a;   /* script heap: counted (vm->acct) over heap_inner */
    KpAllocator heap_inner; /* the class cache over host_a, or the debug one */
    KpDebug debug;
    KpClassCache classes;
    KpAllocator page_a;
    KpAllocFn host_fn;
    void *host_ud;
    size_t stack_values;
    bool stack_from_host;
    bool debug_on;
    bool finished;
} KpVMBox;

/* --------------------------------------------------- the host allocator */

static void *hostfn_alloc(void *ctx, size_t size, size_t align, const KpSrcLoc *loc) {
    (void)loc;
    KpVMBox *b = ctx;
    void *p = b->host_fn(b->host_ud, NULL, 0, size, align);
    if (!p) {
        /* remembered for an error path that finds no message (a helper
         * that returned false on a failed allocation without saying why) */
        b->vm.host_refusals++;
        b->vm.host_refused_bytes = size;
        /* the compiler gives up at once (everything it made is in the
         * VM's arena, released with the VM) */
        if (b->vm.compile_oom) longjmp(*b->vm.compile_oom, 1);
    }
    return p;
}
static void hostfn_free(void *ctx, void *ptr, size_t size, size_t align, const KpSrcLoc *loc) {
    (void)loc;
    KpVMBox *b = ctx;
    b->host_fn(b->host_ud, ptr, size, 0, align);
}
static const KpAllocatorVT hostfn_vt = {hostfn_alloc, NULL, hostfn_free, NULL};


static void write_stdout(void *ud, const char *s, size_t n) {
    (void)ud;
    fwrite(s, 1, n, stdout);
}
static void write_stderr(void *ud, const char *s, size_t n) {
    (void)ud;
    fflush(stdout);
    fwrite(s, 1, n, stderr);
}

void kp_vm_write(KpVM *vm, const char *s, size_t n) { vm->write_out(vm->write_ud, s, n); }

/* ------------------------------------------------------------ names */

const char *kp_intern(KpVM *vm, const char *s, size_t len) {
    if (vm->nnames * 2 >= vm->names_cap) {
        uint32_t ncap = vm->names_cap ? vm->names_cap * 2 : 256;
        const char **n = kp_alloc(vm->host, sizeof(char *) * ncap, 8, NULL);
        if (!n) { vm->init_failed = true; return "?"; }
        memset(n, 0, sizeof(char *) * ncap);
        for (uint32_t i = 0; i < vm->names_cap; i++) {
            const char *x = vm->names[i];
            if (!x) continue;
            uint32_t h = kp_hash_bytes(x, strlen(x)) & (ncap - 1);
            while (n[h]) h = (h + 1) & (ncap - 1);
            n[h] = x;
        }
        if (vm->names) kp_free(vm->host, vm->names, sizeof(char *) * vm->names_cap, 8, NULL);
        vm->names = n;
        vm->names_cap = ncap;
    }
    uint32_t h = kp_hash_bytes(s, len) & (vm->names_cap - 1);
    while (vm->names[h]) {
        const char *x = vm->names[h];
        if (strlen(x) == len && memcmp(x, s, len) == 0) return x;
        h = (h + 1) & (vm->names_cap - 1);
    }
    char *copy = kp_arena_alloc(&vm->names_arena, len + 1, 1);
    if (!copy) { vm->init_failed = true; return "?"; }
    memcpy(copy, s, len);
    copy[len] = 0;
    vm->names[h] = copy;
    vm->nnames++;
    return copy;
}

KpString *kp_vm_const_str(KpVM *vm, const char *s, size_t len) {
    uint32_t hash = kp_hash_bytes(s, len);
    if ((vm->nkstrs + 1) * 2 > vm->kstrs_cap) {
        uint32_t ncap = vm->kstrs_cap ? vm->kstrs_cap * 2 : 64;
        KpString **n = kp_alloc(vm->host, sizeof(void *) * ncap, 8, NULL);
        if (!n) return NULL;
        memset(n, 0, sizeof(void *) * ncap);
        for (uint32_t i = 0; i < vm->kstrs_cap; i++) {
            KpString *x = vm->kstrs[i];
            if (!x) continue;
            uint32_t j = x->hash & (ncap - 1);
            while (n[j]) j = (j + 1) & (ncap - 1);
            n[j] = x;
        }
        if (vm->kstrs) kp_free(vm->host, vm->kstrs, sizeof(void *) * vm->kstrs_cap, 8, NULL);
        vm->kstrs = n;
        vm->kstrs_cap = ncap;
    }
    uint32_t j = hash & (vm->kstrs_cap - 1);
    for (KpString *x; (x = vm->kstrs[j]); j = (j + 1) & (vm->kstrs_cap - 1))
        if (x->hash == hash && x->len == len && memcmp(x->data, s, len) == 0) return x;
    KpString *str = kp_str_new(vm, &vm->names_view, s, len);
    if (!str) return NULL;
    str->h.flags |= KP_OF_IMMORTAL;
    vm->kstrs[j] = str;
    vm->nkstrs++;
    return str;
}

/* ------------------------------------------------------------ functions */

/* The library's functions are registered by name, when a name is first
 * looked up (by the compiler, kp_get_global, kp_register), not all at VM
 * creation: a VM pays only for what its scripts use.  They go to the
 * lasting library arena, also when the lookup happens during a run (whose
 * meta arena is scratch, see api/driver.c). */
static KpFunc *find_func(KpVM *vm, const char *name) {
    for (uint32_t i = 0; i < vm->nfuncs; i++)
        if (vm->funcs[i]->name == name) return vm->funcs[i];
    return NULL;
}

KpFunc *kp_func_get(KpVM *vm, const char *name, bool create) {
    KpFunc *found = find_func(vm, name);
    if (found) return found;
    if (vm->lib_lookup && !vm->lib_loading) {
        KpArena run = vm->meta_arena;
        vm->meta_arena = vm->lib_arena;
        vm->lib_loading = true;
        /* out of memory, the library is not left half-registered: the
         * compiler's jump waits until this state is restored, and a name
         * registered in part is taken back */
        jmp_buf *jb = vm->compile_oom;
        vm->compile_oom = NULL;
        uint32_t nfuncs = vm->nfuncs;
        uint64_t refusals = vm->host_refusals;
        bool any = vm->lib_lookup(vm, name);
        vm->lib_loading = false;
        vm->lib_arena = vm->meta_arena;
        vm->meta_arena = run;
        vm->compile_oom = jb;
        if (vm->host_refusals != refusals) {
            vm->nfuncs = nfuncs;
            if (jb) longjmp(*jb, 1);
            return NULL;
        }
        if (any && (found = find_func(vm, name))) return found;
    }
    if (!create) return NULL;
    if (vm->nfuncs == vm->funcs_cap) {
        uint32_t ncap = vm->funcs_cap ? vm->funcs_cap * 2 : 64;
        KpFunc **n = kp_realloc(vm->meta, vm->funcs, sizeof(void *) * vm->funcs_cap, sizeof(void *) * ncap, 8, NULL);
        if (!n) return NULL;
        vm->funcs = n;
        vm->funcs_cap = ncap;
    }
    KpFunc *f = kp_arena_alloc(&vm->meta_arena, sizeof(KpFunc), 16);
    if (!f) { vm->init_failed = true; return NULL; }
    memset(f, 0, sizeof *f);
    f->name = name;
    vm->funcs[vm->nfuncs++] = f;
    return f;
}

KpOverload *kp_func_add_native(KpVM *vm, const char *name, KpNativeFn fn, int nparams, const uint8_t *modes,
                               uint8_t variadic, uint8_t vmode) {
    KpFunc *f = kp_func_get(vm, kp_intern(vm, name, strlen(name)), true);
    if (!f) { vm->init_failed = true; return NULL; }
    KpOverload *ov = kp_arena_alloc(&vm->meta_arena, sizeof(KpOverload), 16);
    if (!ov) { vm->init_failed = true; return NULL; }
    memset(ov, 0, sizeof *ov);
    ov->func = f;
    ov->native = fn;
    ov->nparams = (uint16_t)nparams;
    ov->variadic = variadic;
    ov->vmode = vmode;
    ov->params = kp_arena_alloc(&vm->meta_arena, sizeof(KpParam) * (size_t)(nparams + 1), 16);
    if (!ov->params) { vm->init_failed = true; return NULL; }
    for (int i = 0; i < nparams; i++) {
        memset(&ov->params[i], 0, sizeof(KpParam));
        ov->params[i].mode = modes[i];
        ov->params[i].def = kp_unset();
        ov->params[i].fast_tag = 255;
    }
    ov->file = "<builtin>";
    if (f->n == f->cap) {
        uint32_t ncap = f->cap ? f->cap * 2 : 4;
        KpOverload **q = kp_realloc(vm->meta, f->ovs, sizeof(void *) * f->cap, sizeof(void *) * ncap, 8, NULL);
        if (!q) return NULL;
        f->ovs = q;
        f->cap = ncap;
    }
    f->ovs[f->n++] = ov;
    return ov;
}

/* ------------------------------------------------------------ types */

static KpType *mk_type(KpVM *vm, KpTypeKind kind, const char *name, uint8_t tag) {
    static KpType dummy; /* only written when out of memory at creation; never used */
    KpType *t = kp_arena_alloc(&vm->meta_arena, sizeof(KpType), 16);
    if (!t) {
        vm->init_failed = true;
        return &dummy;
    }
    memset(t, 0, sizeof *t);
    t->kind = (uint8_t)kind;
    t->name = kp_intern(vm, name, strlen(name));
    t->tag = tag;
    return t;
}

static void make_builtin_types(KpVM *vm) {
    vm->t_any = mk_type(vm, KP_TK_ANY, "Any", 0);
    vm->t_int = mk_type(vm, KP_TK_SCALAR, "Int", KP_T_INT);
    vm->t_float = mk_type(vm, KP_TK_SCALAR, "Float", KP_T_FLOAT);
    vm->t_bool = mk_type(vm, KP_TK_SCALAR, "Bool", KP_T_BOOL);
    vm->t_string = mk_type(vm, KP_TK_SCALAR, "String", KP_T_STR);
    vm->t_unit = mk_type(vm, KP_TK_SCALAR, "()", KP_T_UNIT);
    vm->t_type = mk_type(vm, KP_TK_TYPE, "Type", KP_T_TYPE);
    vm->t_func = mk_type(vm, KP_TK_FUNC, "Function", KP_T_FUNC);
    vm->t_list = mk_type(vm, KP_TK_LIST, "List", KP_T_LIST);
    vm->t_map = mk_type(vm, KP_TK_MAP, "HashMap", KP_T_MAP);
    vm->t_heap = mk_type(vm, KP_TK_OPAQUE, "HeapAllocation", KP_T_HEAP);
    vm->t_allocator = mk_type(vm, KP_TK_OPAQUE, "Allocator", KP_T_ALLOCATOR);
    vm->t_system = mk_type(vm, KP_TK_OPAQUE, "System", KP_T_SYSTEM);
    static const char *sized[] = {"Int8", "Int16", "Int32", "UInt8", "UInt16", "UInt32", "UInt64"};
    for (int i = 0; i < 7; i++) vm->t_sized[i] = mk_type(vm, KP_TK_SCALAR, sized[i], (uint8_t)(KP_T_I8 + i));
    for (int k = 0; k < KP_AK__COUNT; k++) {
        vm->t_akind[k] = mk_type(vm, KP_TK_OPAQUE, kp_alloc_kind_name(k), KP_T_ALLOCATOR);
        vm->t_akind[k]->akind = (uint8_t)k;
    }
    vm->t_allocator = vm->t_akind[KP_AK_ANY];
    vm->t_sysmem = mk_type(vm, KP_TK_OPAQUE, "System.Memory", KP_T_SYSTEM);
    vm->t_sysmem->akind = 1;
    vm->t_sysfs = mk_type(vm, KP_TK_OPAQUE, "System.Fs", KP_T_SYSTEM);
    vm->t_sysfs->akind = 2;
    vm->t_sysrandom = mk_type(vm, KP_TK_OPAQUE, "System.Random", KP_T_SYSTEM);
    vm->t_sysrandom->akind = 3;
    vm->t_sysenv = mk_type(vm, KP_TK_OPAQUE, "System.Env", KP_T_SYSTEM);
    vm->t_sysenv->akind = 4;
    /* Random (stdlib/random.c): a record of the host kind, its payload the
     * generator's 32 bytes of state; printed <Random>, never copied */
    vm->t_random = mk_type(vm, KP_TK_RECORD, "Random", 0);
    if (!vm->init_failed) {
        vm->t_random->host = true;
        vm->t_random->host_size = 32;
    }
    /* AllocStats(.live_bytes, .live_count, .peak_bytes, .total_allocs, .total_frees) */
    static const char *sf[] = {"live_bytes", "live_count", "peak_bytes", "total_allocs", "total_frees"};
    KpType *st = mk_type(vm, KP_TK_RECORD, "AllocStats", 0);
    st->nfields = 5;
    st->fnames = kp_arena_alloc(&vm->meta_arena, sizeof(char *) * 5, 8);
    st->ftypes = kp_arena_alloc(&vm->meta_arena, sizeof(KpType *) * 5, 8);
    st->defaults = kp_arena_alloc(&vm->meta_arena, sizeof(KpValue) * 5, 16);
    if (vm->init_failed || !st->fnames || !st->ftypes || !st->defaults) {
        vm->init_failed = true;
        return;
    }
    for (int i = 0; i < 5; i++) {
        st->fnames[i] = kp_intern(vm, sf[i], strlen(sf[i]));
        st->ftypes[i] = vm->t_int;
        st->defaults[i] = kp_unset();
    }
    vm->t_allocstats = st;
    /* Error(.kind, .message, .file: String, .line, .col: Int, .trace:
     * List): the value a `catch` gets (vm.c catch_error) */
    static const char *ef[] = {"kind", "message", "file", "line", "col", "trace"};
    KpType *et = mk_type(vm, KP_TK_RECORD, "Error", 0);
    et->nfields = 6;
    et->fnames = kp_arena_alloc(&vm->meta_arena, sizeof(char *) * 6, 8);
    et->ftypes = kp_arena_alloc(&vm->meta_arena, sizeof(KpType *) * 6, 8);
    et->defaults = kp_arena_alloc(&vm->meta_arena, sizeof(KpValue) * 6, 16);
    if (vm->init_failed || !et->fnames || !et->ftypes || !et->defaults) {
        vm->init_failed = true;
        return;
    }
    for (int i = 0; i < 6; i++) {
        et->fnames[i] = kp_intern(vm, ef[i], strlen(ef[i]));
        et->ftypes[i] = i < 3 ? vm->t_string : i < 5 ? vm->t_int : vm->t_list;
        et->defaults[i] = kp_unset();
    }
    vm->t_error = et;
    /* binary data (vm/binary.h): Float32 stores a Float rounded to single
     * precision (akind 32); Writer, Reader, View and Pin are KP_T_BIN
     * objects told apart by their kind byte */
    vm->t_float32 = mk_type(vm, KP_TK_SCALAR, "Float32", KP_T_FLOAT);
    vm->t_float32->akind = 32;
    static const char *bin[] = {"Binary", "Writer", "Reader", "View", "Pin"};
    for (int k = 0; k < 5; k++) {
        vm->t_bin[k] = mk_type(vm, KP_TK_OPAQUE, bin[k], KP_T_BIN);
        vm->t_bin[k]->akind = (uint8_t)k;
    }
}

/* ------------------------------------------------------------ lifetime */

KpVM *kp_vm_create(const KpConfig *cfg) {
    KpAllocator boot;
    KpVMBox tmp;
    memset(&tmp, 0, sizeof tmp);
    if (cfg && cfg->alloc) {
        tmp.host_fn = cfg->alloc;
        tmp.host_ud = cfg->alloc_ud;
        boot = (KpAllocator){&hostfn_vt, NULL, "host", 0, -1, {0}, NULL};
    } else {
        kp_direct_init(&boot);
        boot.name = "host";
    }
    boot.ctx = &tmp;
    KpVMBox *box = kp_alloc(&boot, sizeof(KpVMBox), 16, NULL);
    if (!box) return NULL;
    memset(box, 0, sizeof *box);
    box->host_fn = tmp.host_fn;
    box->host_ud = tmp.host_ud;
    box->host_a = boot;
    if (box->host_fn) box->host_a.ctx = box;
    /* the C library's malloc is thread-safe: with atomic statistics, the
     * host is one parallel workers call without the lock (vm/parallel.c);
     * a host's KpAllocFn is not assumed to be */
    else box->host_a.flags |= KP_ALLOC_THREADSAFE;
    KpVM *vm = &box->vm;
    vm->host = &box->host_a;
    kp_arena_init(&vm->meta_arena, vm->host, &vm->meta_view);
    vm->meta = &vm->meta_view;
    kp_arena_init(&vm->names_arena, vm->host, &vm->names_view);
    kp_arena_init(&vm->lib_arena, vm->host, NULL);
    /* the root is a counted view (the VM's one memory account) over the
     * host allocator, or over a debug allocator over it */
    vm->acct.limit = cfg && cfg->mem_limit > 0 ? cfg->mem_limit : -1;
    if (cfg && cfg->debug_alloc) {
        kp_debug_init(&box->debug, vm->host, NULL, &box->heap_inner);
        box->debug_on = true;
    } else {
        kp_class_cache_init(&box->classes, vm->host, "root", &box->heap_inner);
        if (vm->acct.limit > 0) box->classes.keep = 0; /* the limit counts all it holds */
    }
    kp_counted_init(&vm->heap_counted, &box->heap_inner, 0, &vm->acct, &box->heap_a);
    kp_counted_init(&vm->rt_counted, vm->host, 0, &vm->acct, &vm->rt_a);
    vm->rt_a.name = "runtime tables";
    vm->rt = &vm->rt_a;
    box->heap_a.name = box->debug_on ? "root (DebugAllocator)" : "root";
    vm->heap = &box->heap_a;
    vm->ctx = vm->heap;
    vm->stats_report = cfg && cfg->stats;
    vm->allow_fs = cfg && cfg->allow_fs;
    vm->allow_random = cfg && cfg->allow_random;
    vm->allow_env = cfg && cfg->allow_env;
    vm->no_memory = cfg && cfg->no_system_memory;
    vm->max_source = cfg && cfg->max_source_bytes ? cfg->max_source_bytes : (size_t)256 << 20;
    vm->collect_cycles = cfg && cfg->collect_cycles;
    vm->trace_own = cfg && cfg->trace_ownership;
    if (cfg && cfg->threads > 0) vm->threads = cfg->threads;
    else {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        vm->threads = n > 0 ? (int)n : 1;
    }
    if (vm->threads > KP_MAX_THREADS) vm->threads = KP_MAX_THREADS;
    box->stack_values = cfg && cfg->stack_values ? cfg->stack_values : KP_STACK_VALUES;
    if (box->stack_values < 4096 + 65536 + 1024) box->stack_values = 4096 + 65536 + 1024;
    size_t stack_bytes = sizeof(KpValue) * box->stack_values;
    size_t gen_bytes = sizeof(uint32_t) * box->stack_values;
    /* The value stack, its generations and the call frames never move (a
     * reference is a pointer to a register, a C function holds a pointer to
     * its arguments across calls back into the VM): address space for the
     * configured maximum is reserved from the page allocator, and the
     * system commits its pages as the stack first reaches them, so a VM
     * costs memory for the depth it uses, not for its maximum.  Zero pages
     * are UNSET registers.  With KpConfig.stack_from_host the host
     * allocator gives all of it at once instead. */
    size_t frames_bytes = sizeof(KpFrame) * KP_MAX_FRAMES;
    if (box->host_fn && cfg && cfg->stack_from_host) {
        vm->stack = kp_alloc(vm->host, stack_bytes, 16, NULL);
        if (vm->stack) memset(vm->stack, 0, stack_bytes);
        vm->reg_gen = kp_alloc(vm->host, gen_bytes, 16, NULL);
        if (vm->reg_gen) memset(vm->reg_gen, 0, gen_bytes);
        vm->frames = kp_alloc(vm->host, frames_bytes, 16, NULL);
        box->stack_from_host = true;
    } else {
        kp_page_init(&box->page_a);
        vm->stack = kp_alloc(&box->page_a, stack_bytes, 16, NULL);
        vm->reg_gen = kp_alloc(&box->page_a, gen_bytes, 16, NULL);
        vm->frames = kp_alloc(&box->page_a, frames_bytes, 16, NULL);
    }
    if (!vm->reg_gen || !vm->frames) {
        kp_vm_free(vm);
        return NULL;
    }
    /* the error message and the stack trace have their space from the
     * start: reporting "out of memory" must not need memory */
    if (!vm->stack || !kp_buf_reserve(vm, &vm->err, KP_ERR_RESERVE) ||
        !kp_buf_reserve(vm, &vm->trace, KP_TRACE_RESERVE)) {
        kp_vm_free(vm);
        return NULL;
    }
    vm->stack_end = vm->stack + box->stack_values;
    vm->stack_values = (uint32_t)box->stack_values;
    vm->call_limit = kp_vm_call_limit(vm);
    vm->write_out = cfg && cfg->write_out ? cfg->write_out : write_stdout;
    vm->write_err = cfg && cfg->write_err ? cfg->write_err : write_stderr;
    vm->write_ud = cfg ? cfg->ud : NULL;
    vm->on_diagnostic = cfg ? cfg->on_diagnostic : NULL;
    vm->load_module = cfg ? cfg->load_module : NULL;
    vm->budget = -1;
    vm->native_top = vm->stack;
    make_builtin_types(vm);
    if (vm->init_failed) {
        kp_vm_free(vm);
        return NULL;
    }
    vm->empty_str = kp_str_new(vm, vm->meta, "", 0);
    if (!vm->empty_str) {
        kp_vm_free(vm);
        return NULL;
    }
    vm->empty_str->h.flags |= KP_OF_IMMORTAL;
    vm->sys_memory = (KpValue){.tag = KP_T_SYSTEM, .aux = 1};
    vm->sys_fs = (KpValue){.tag = KP_T_SYSTEM, .aux = 2};
    vm->sys_random = (KpValue){.tag = KP_T_SYSTEM, .aux = 3};
    vm->sys_env = (KpValue){.tag = KP_T_SYSTEM, .aux = 4};
    vm->sys_args = kp_unset();
    vm->sys_script = kp_unset();
    return vm;
}

/* ---- top-level variables by name: name -> the newest global of that
 * name (linear probing over interned pointers), each global linking to
 * the older one of its name (prev_same); synced lazily with vm->globals */

static uint32_t gname_hash(const char *p) { return (uint32_t)(((uintptr_t)p >> 3) * 2654435761u); }

static struct KpGlobalSlot *gslot(KpVM *vm, const char *name) {
    uint32_t m = vm->gindex_cap - 1, i = gname_hash(name) & m;
    while (vm->gindex[i].name && vm->gindex[i].name != name) i = (i + 1) & m;
    return &vm->gindex[i];
}

/* Brings the index up to date with vm->globals: new globals are added
 * (newest of a name first in its chain); when globals were dropped (a
 * failed chunk's reservations) or the index is full, it is rebuilt.
 * False when out of memory (lookups then scan). */
static bool gindex_sync(KpVM *vm) {
    if (vm->gindex_n > vm->nglobals || (vm->gindex_keys + (vm->nglobals - vm->gindex_n) + 1) * 2 > vm->gindex_cap) {
        uint32_t ncap = 64;
        while ((uint64_t)(vm->nglobals + 1) * 2 > ncap) ncap *= 2;
        struct KpGlobalSlot *n = kp_alloc(vm->host, sizeof *n * ncap, 8, NULL);
        if (!n) return false;
        memset(n, 0, sizeof *n * ncap);
        if (vm->gindex) kp_free(vm->host, vm->gindex, sizeof *n * vm->gindex_cap, 8, NULL);
        vm->gindex = n;
        vm->gindex_cap = ncap;
        vm->gindex_keys = vm->gindex_n = 0;
    }
    for (; vm->gindex_n < vm->nglobals; vm->gindex_n++) {
        struct KpGlobal *g = &vm->globals[vm->gindex_n];
        struct KpGlobalSlot *s = gslot(vm, g->name);
        if (!s->name) {
            s->name = g->name;
            s->idx = -1;
            vm->gindex_keys++;
        }
        g->prev_same = s->idx;
        s->idx = (int32_t)vm->gindex_n;
    }
    return true;
}

int32_t kp_vm_global_find(KpVM *vm, const char *name, int pending) {
    if (gindex_sync(vm)) {
        struct KpGlobalSlot *s = gslot(vm, name);
        for (int32_t i = s->name ? s->idx : -1; i >= 0; i = vm->globals[i].prev_same)
            if (pending < 0 || vm->globals[i].pending == pending) return i;
        return -1;
    }
    for (uint32_t i = vm->nglobals; i-- > 0;)
        if (vm->globals[i].name == name && (pending < 0 || vm->globals[i].pending == pending)) return (int32_t)i;
    return -1;
}

uint32_t kp_vm_far_slot(KpVM *vm) {
    /* room kept below the far region: main's registers and a deep call
     * chain above them */
    KpValue *floor = kp_vm_stack_top(vm) + KP_MAX_MAIN_REGS + 4096;
    if (vm->stack_end - 1 < floor) return UINT32_MAX;
    vm->stack_end--;
    vm->call_limit = kp_vm_call_limit(vm); /* (frames stay below the far region) */
    *vm->stack_end = kp_unset();
    vm->nfar++;
    return vm->stack_values - vm->nfar;
}

void kp_vm_globals_truncate(KpVM *vm, uint32_t n) {
    while (vm->nglobals > n) {
        struct KpGlobal *g = &vm->globals[--vm->nglobals];
        if (g->far && vm->nfar > 0) {
            vm->stack[g->reg] = kp_unset();
            vm->nfar--;
            vm->stack_end++;
            vm->call_limit = kp_vm_call_limit(vm);
        }
    }
    vm->gindex_n = UINT32_MAX; /* the globals' name index is rebuilt */
}

const char *kp_vm_global_name_at(KpVM *vm, const KpValue *slot) {
    if (slot < vm->stack || slot >= vm->stack + vm->stack_values) return NULL;
    uint32_t r = (uint32_t)(slot - vm->stack);
    for (uint32_t g = vm->nglobals; g-- > 0;)
        if (vm->globals[g].reg == r) return vm->globals[g].name;
    return NULL;
}

int kp_vm_finish(KpVM *vm) {
    kp_tls_vm = vm;
    KpVMBox *box = (KpVMBox *)vm;
    if (box->finished && !vm->ran_since_finish) return KP_OK;
    box->finished = true;
    vm->ran_since_finish = false; /* a later run's globals are finished again */
    /* top-level variables, last declared first */
    bool ok = true;
    kp_buf_reset(&vm->err); /* (the last run's error is not this one's) */
    /* the far ones were declared after every near one: they go first, the
     * newest (lowest slot) first */
    for (uint32_t k = vm->nfar; k-- > 0;) {
        KpValue *s = &vm->stack[vm->stack_values - 1 - k];
        KpValue v = *s;
        *s = kp_unset();
        vm->status = KP_OK;
        if (vm->trace_own && (KP_IS_MOVABLE(v) || v.tag == KP_T_BOX)) kp_vm_trace_own(vm, NULL, v, s, 0);
        if (KP_NEEDS_DROP(v) && !kp_drop(vm, v)) {
            ok = false;
            vm->nframes = 0;
        }
    }
    for (uint32_t r = vm->main_nregs; r-- > 0;) {
        KpValue v = vm->stack[r];
        vm->stack[r] = kp_unset();
        vm->status = KP_OK;
        if (vm->trace_own && (KP_IS_MOVABLE(v) || v.tag == KP_T_BOX)) kp_vm_trace_own(vm, NULL, v, &vm->stack[r], 0);
        if (KP_NEEDS_DROP(v) && !kp_drop(vm, v)) {
            ok = false;
            vm->nframes = 0;
        }
    }
    if (KP_NEEDS_DROP(vm->sys_args)) kp_drop(vm, vm->sys_args);
    vm->sys_args = kp_unset();
    if (KP_NEEDS_DROP(vm->sys_script)) kp_drop(vm, vm->sys_script);
    vm->sys_script = kp_unset();
    if (!ok) {
        vm->status = KP_ERR_RUNTIME; /* (a later deinit may have succeeded) */
        if (kp_vm_error_unsaid(vm)) { /* reported nowhere yet */
            char buf[KP_ERR_RESERVE + 32];
            snprintf(buf, sizeof buf, "error: %s\n", vm->err.data);
            vm->write_err(vm->write_ud, buf, strlen(buf));
        }
    }
    if (!kp_keep_report(vm)) ok = false;
    kp_par_release(vm); /* the workers' allocator gives its slabs back */
    if (vm->stats_report) kp_vm_report_stats(vm);
    return ok ? KP_OK : KP_ERR_RUNTIME;
}

void kp_vm_free(KpVM *vm) {
    if (!vm) return;
    kp_tls_vm = vm;
    KpVMBox *box = (KpVMBox *)vm;
    if (vm->stack) kp_vm_finish(vm);
    kp_embed_free(vm);
    kp_pins_shutdown(vm); /* host pins left: reported, then ended */
    kp_keep_shutdown(vm);
    kp_drop_stack_free(vm);
    kp_par_free(vm); /* the workers' allocator: every script value is gone */
    if (vm->stack) {
        if (box->stack_from_host) kp_free(vm->host, vm->stack, sizeof(KpValue) * box->stack_values, 16, NULL);
        else kp_free(&box->page_a, vm->stack, sizeof(KpValue) * box->stack_values, 16, NULL);
    }
    if (vm->reg_gen) {
        if (box->stack_from_host) kp_free(vm->host, vm->reg_gen, sizeof(uint32_t) * box->stack_values, 16, NULL);
        else kp_free(&box->page_a, vm->reg_gen, sizeof(uint32_t) * box->stack_values, 16, NULL);
    }
    if (vm->blocks) kp_free(vm->rt, vm->blocks, sizeof(struct KpBlock) * vm->cap_blocks, 16, NULL);
    if (kp_tls_vm == vm) kp_tls_vm = NULL;
    if (vm->frames) kp_free(box->stack_from_host ? vm->host : &box->page_a, vm->frames, sizeof(KpFrame) * KP_MAX_FRAMES, 16, NULL);
    if (vm->graves) kp_free(vm->host, vm->graves, sizeof(struct KpGrave) * KP_GRAVES, 8, NULL);
    if (vm->names) kp_free(vm->host, vm->names, sizeof(char *) * vm->names_cap, 8, NULL);
    kp_buf_free(vm, &vm->err);
    kp_buf_free(vm, &vm->trace);
    kp_buf_free(vm, &vm->scratch);
    if (vm->kstrs) kp_free(vm->host, vm->kstrs, sizeof(void *) * vm->kstrs_cap, 8, NULL);
    if (vm->gindex) kp_free(vm->host, vm->gindex, sizeof(struct KpGlobalSlot) * vm->gindex_cap, 8, NULL);
    kp_arena_deinit(&vm->meta_arena);
    kp_arena_deinit(&vm->names_arena);
    kp_arena_deinit(&vm->lib_arena);
    if (box->debug_on) kp_debug_deinit(&box->debug);
    else kp_class_cache_deinit(&box->classes);
    KpAllocator boot = box->host_a;
    KpVMBox tmp;
    if (box->host_fn) {
        tmp.host_fn = box->host_fn;
        tmp.host_ud = box->host_ud;
        boot.ctx = &tmp;
    }
    kp_free(&boot, box, sizeof(KpVMBox), 16, NULL);
}

void kp_vm_set_budget(KpVM *vm, int64_t budget) {
    vm->budget = budget < 0 ? -1 : budget;
    if (budget < 0) atomic_fetch_and(&vm->interrupt, ~KP_ATTN_BUDGET);
    else atomic_fetch_or(&vm->interrupt, KP_ATTN_BUDGET);
}

void kp_vm_interrupt(KpVM *vm) { atomic_fetch_or(&vm->interrupt, KP_ATTN_INTERRUPT); }

void kp_vm_report_stats(KpVM *vm) {
    char buf[256];
    KpHeapStats s;
    kp_vm_heap_stats(vm, &s);
    int64_t pinned, views;
    kp_bin_region_stats(vm, NULL, &pinned, &views);
    char extra[96] = "";
    if (pinned || views) snprintf(extra, sizeof extra, ", %lld bytes pinned, %lld live views", (long long)pinned, (long long)views);
    snprintf(buf, sizeof buf, "stats: root (%s): live %lld bytes in %lld blocks, peak %lld bytes, %lld allocs, %lld frees%s\n",
             vm->heap->name, (long long)s.live_bytes, (long long)s.live_count, (long long)s.peak_bytes,
             (long long)s.total_allocs, (long long)s.total_frees, extra);
    vm->write_err(vm->write_ud, buf, strlen(buf));
}

const char *kp_vm_last_error(KpVM *vm) {
    if (vm->in_cfunc) return vm->err.data ? vm->err.data : "";
    if (vm->status == KP_OK || vm->status == KP_ERR_INCOMPLETE) return "";
    /* an error whose message could not be made: only memory can be short */
    return vm->err.len ? vm->err.data : "out of memory";
}

void kp_vm_heap_stats(KpVM *vm, KpHeapStats *out) {
    KpAllocStats s = vm->heap->stats;
    KpVMBox *box = (KpVMBox *)vm;
    if (box->debug_on) {
        s.live_bytes = (int64_t)kp_debug_leak_bytes(&box->debug);
        s.live_count = (int64_t)kp_debug_leak_count(&box->debug);
    }
    out->live_bytes = s.live_bytes;
    out->live_count = s.live_count;
    out->peak_bytes = s.peak_bytes;
    out->total_allocs = s.total_allocs;
    out->total_frees = s.total_frees;
}

void kp_vm_set_dump_bytecode(KpVM *vm, bool on) { vm->dump_bytecode = on; }

int kp_vm_set_args(KpVM *vm, int argc, const char *const *argv) {
    KpList *l = kp_list_new(vm, (uint32_t)(argc > 0 ? argc : 0));
    if (!l) return KP_ERR_RUNTIME;
    for (int i = 0; i < argc; i++) {
        KpString *s = kp_str_new(vm, vm->heap, argv[i], strlen(argv[i]));
        if (!s) { kp_drop(vm, kp_ptr(KP_T_LIST, l)); return KP_ERR_RUNTIME; }
        l->items[l->len++] = kp_ptr(KP_T_STR, s);
    }
    l->elem = vm->t_string;
    if (KP_NEEDS_DROP(vm->sys_args)) kp_drop(vm, vm->sys_args);
    vm->sys_args = kp_ptr(KP_T_LIST, l);
    return KP_OK;
}

int kp_vm_set_script(KpVM *vm, const char *path) {
    KpString *s = kp_str_new(vm, vm->heap, path ? path : "", path ? strlen(path) : 0);
    if (!s) return KP_ERR_RUNTIME;
    if (KP_NEEDS_DROP(vm->sys_script)) kp_drop(vm, vm->sys_script);
    vm->sys_script = kp_ptr(KP_T_STR, s);
    return KP_OK;
}

