/*
 * driver.c — the driver above every stage: creating a VM with its standard
 * library, and running source through the parser, the compiler and the VM
 * (kp_vm_new, kp_vm_run_string, kp_vm_run_file, kp_vm_eval,
 * kp_vm_emit_ownership of include/keep.h).
 *
 * Layout.  Data flows one way: source → tokens → AST (parser/) → bytecode
 * (compiler/) → execution (vm/).  vm/ knows nothing of the stages above it;
 * this folder is the one place that calls them all in order.
 *
 * Memory per run.  A host may run thousands of chunks on one VM (a REPL,
 * a server evaluating requests), so a run must not leave its working
 * memory behind.  For the length of one run the VM's meta arena is a fresh
 * scratch arena: the source copy, the AST, the compiler's working arrays
 * and the chunk's main function all go there (the parser's own stack comes
 * from the host and goes back when the parse ends; interned names and
 * string constants live in an arena of their own, since values may hold
 * them).  When the run ends, the lasting tables — functions and their
 * overloads, named, derived, anonymous and generic types, globals — are
 * checked for pointers into the scratch arena: if the chunk defined
 * something lasting, the scratch arena joins the meta arena (the AST of a
 * generic type, the source of a function's error messages stay with it);
 * otherwise it is freed whole.  So a chunk of statements costs nothing
 * once it has run.  Diagnostics have an arena of their own, released when
 * the run ends.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../compiler/compiler.h"
#include "../parser/ast.h"
#include "../stdlib/stdlib.h"
#include "../vm/vm.h"

KpVM *kp_vm_new(const KpConfig *cfg) {
    KpVM *vm = kp_vm_create(cfg);
    if (!vm) return NULL;
    vm->lib_lookup = kp_stdlib_lookup; /* the library, a name at a time */
    if (vm->init_failed) {
        kp_vm_free(vm);
        return NULL;
    }
    if (cfg && cfg->argc > 0 && cfg->argv) kp_vm_set_args(vm, cfg->argc, cfg->argv);
    return vm;
}

/* ------------------------------------------------------------ running */

/* Sources up to this size get their compile's memory reserved up front. */
#define KP_RUN_RESERVE_MAX ((size_t)16 << 20)

static void set_compile_error(KpVM *vm, const KpDiags *d, const KpSource *src) {
    kp_buf_reset(&vm->err);
    if (d->count > 0 && d->items && d->cap > 0)
        kp_buf_printf(vm, &vm->err, "%s:%u:%u: %s", src->name, d->items[0].line, d->items[0].col, d->items[0].msg);
    else if (d->oom)
        kp_buf_printf(vm, &vm->err, "%s:%u:%u: out of memory", src->name, d->oom_line, d->oom_col);
    vm->status = KP_ERR_COMPILE;
}

/* Out of memory before anything could be compiled: the message goes to
 * kp_vm_last_error (its space is reserved) and to write_err (from the C
 * stack), neither of which allocates. */
static int report_oom(KpVM *vm, const char *name) {
    char buf[320];
    snprintf(buf, sizeof buf, "%.256s:1:1: runtime error: out of memory\n", name);
    vm->write_err(vm->write_ud, buf, strlen(buf));
    kp_buf_reset(&vm->err);
    kp_buf_printf(vm, &vm->err, "%.256s:1:1: out of memory", name);
    vm->status = KP_ERR_RUNTIME;
    return KP_ERR_RUNTIME;
}

/* Does anything that outlives the run point into the run's arena? */
static bool in_run(const KpArena *run, const void *p) { return p && kp_arena_owns(run, p); }

static bool types_in_run(const KpArena *run, KpType **ts, uint32_t n) {
    if (in_run(run, ts)) return true;
    for (uint32_t i = 0; i < n; i++)
        if (in_run(run, ts[i]) || (ts[i] && in_run(run, ts[i]->user_deinit))) return true;
    return false;
}

static bool run_arena_needed(KpVM *vm, const KpArena *run) {
    if (!run->chunk) return false;
    if (in_run(run, vm->funcs)) return true;
    for (uint32_t i = 0; i < vm->nfuncs; i++) {
        KpFunc *f = vm->funcs[i];
        if (in_run(run, f) || in_run(run, f->ovs)) return true;
        for (uint32_t j = 0; j < f->n; j++) {
            KpOverload *ov = f->ovs[j];
            if (in_run(run, ov) || in_run(run, ov->params) || in_run(run, ov->proto) || in_run(run, ov->ret))
                return true;
        }
    }
    for (uint32_t i = 0; i < vm->nliterals; i++)
        if (in_run(run, vm->literals[i])) return true; /* its value may be in a global */
    if (in_run(run, vm->types)) return true;
    for (uint32_t i = 0; i < vm->ntypes; i++)
        if (in_run(run, vm->types[i].type) || in_run(run, vm->types[i].generic) || in_run(run, vm->types[i].gen_scope) ||
            (vm->types[i].type && in_run(run, vm->types[i].type->user_deinit)))
            return true;
    if (types_in_run(run, vm->derived, vm->nderived) || types_in_run(run, vm->anon, vm->nanon) ||
        types_in_run(run, vm->inst, vm->ninst))
        return true;
    for (uint32_t i = 0; i < vm->nmodules; i++)
        if (in_run(run, vm->modules[i]->main)) return true; /* compiled, not yet run */
    if (in_run(run, vm->globals)) return true;
    for (uint32_t i = 0; i < vm->nglobals; i++)
        if (in_run(run, vm->globals[i].type)) return true;
    return false;
}

static int run_source_in(KpVM *vm, const char *name, const char *text, size_t len, bool repl);

/* One run in its own scratch arena (see the essay above). */
static int run_in_arena(KpVM *vm, const char *name, const char *text, size_t len, bool repl) {
    KpArena lasting = vm->meta_arena;
    kp_arena_init(&vm->meta_arena, vm->host, NULL);
    int rc = run_source_in(vm, name, text, len, repl);
    KpArena run = vm->meta_arena;
    vm->meta_arena = lasting;
    if (run_arena_needed(vm, &run)) kp_arena_absorb(&vm->meta_arena, &run);
    else kp_arena_deinit(&run);
    return rc;
}

/*
 * Re-entrancy.  A C function called by a running script may run more
 * source on the same VM (and so may a C function that chunk calls).  The
 * top-level variables are registers at the bottom of the stack, below the
 * main chunk's temporaries; every main chunk leaves KP_NESTED_GLOBALS
 * registers free above its globals (compiler/compile.c), and a chunk run
 * while another runs declares its globals there, while its temporaries go
 * above everything in use (the running frames and the C function's
 * slots, vm->temps_floor): the caller's registers are never touched.  The
 * nested run allocates from the root allocator, not from a `using` block of
 * the caller, and its errors are its own: the calling script carries on
 * when the C function returns normally.
 */
static int run_source(KpVM *vm, const char *name, const char *text, size_t len, bool repl) {
    if (!vm->nframes) {
        vm->temps_floor = 0;
        return run_in_arena(vm, name, text, len, repl);
    }
    if (vm->in_host_deinit) {
#ifdef KP_DEBUG_API
        fprintf(stderr, "keep: kp_vm_run_string/kp_vm_eval from a host type's deinit callback\n");
        abort();
#endif
        kp_buf_reset(&vm->err);
        kp_buf_printf(vm, &vm->err, "cannot run '%s' from a host type's deinit callback: it may not call back into the VM",
                      name);
        vm->status = KP_ERR_USAGE;
        return KP_ERR_USAGE;
    }
    uint32_t top = (uint32_t)(kp_vm_stack_top(vm) - vm->stack);
    if (top + 16 > KP_MAX_MAIN_REGS) {
        kp_buf_reset(&vm->err);
        kp_buf_printf(vm, &vm->err, "cannot run '%s' from a C function this deep in the stack (%u registers in use)",
                      name, top);
        vm->status = KP_ERR_RUNTIME;
        return KP_ERR_RUNTIME;
    }
    KpAllocator *save_ctx = vm->ctx;
    uint32_t save_floor = vm->temps_floor;
    vm->temps_floor = top;
    vm->ctx = vm->heap;
    int rc = run_in_arena(vm, name, text, len, repl);
    vm->ctx = save_ctx;
    vm->temps_floor = save_floor;
    return rc;
}

/* A re-entrant chunk's globals go in the room the running main chunks left
 * above theirs (KP_NESTED_GLOBALS registers): a diagnostic when they do not
 * fit (each may need a second register, for a kept box). */
static void nested_room(KpVM *vm, KpNode *prog, KpDiags *diags) {
    uint32_t limit = UINT32_MAX;
    for (int i = 0; i < vm->nframes; i++)
        if (vm->frames[i].is_main && vm->frames[i].globals < limit) limit = vm->frames[i].globals;
    uint32_t need = 0;
    KpNode *first = NULL;
    for (int i = 0; i < prog->list.count; i++) {
        KpNode *s = prog->list.items[i];
        if (!s || s->kind != KP_N_DECL) continue;
        if (!first) first = s;
        if (vm->main_nregs + need + 2 <= KP_NEAR_GLOBALS) need += 2; /* (the later ones go far) */
    }
    if (first && vm->main_nregs + need > limit)
        kp_diag_add(diags, first->line, first->col,
                    "a chunk run from a C function while a script runs may declare only a few top-level variables "
                    "(room for %u more); declare them in a chunk run at top level",
                    (limit - vm->main_nregs) / 2);
}

/* The globals a chunk that did not compile reserved are released. */
static void drop_pending_globals(KpVM *vm) {
    uint32_t n = vm->nglobals;
    while (n > 0 && vm->globals[n - 1].pending) n--;
    kp_vm_globals_truncate(vm, n);
}

/* ------------------------------------------------------------ modules */

/*
 * Imports.  Before a chunk compiles, its top-level `name := import("p")`
 * declarations are loaded, depth first: the file's name is resolved
 * against the importing file's (module_name), a module already compiled
 * in this VM is reused, otherwise KpConfig.load_module gives its text,
 * which is parsed, its own imports loaded, and compiled as a chunk of its
 * own with vm->cur_module set (compiler/module.c gives it its namespace).
 * Each module's diagnostics are its own file's.  The chain of files being
 * loaded finds cycles.  A module's top-level statements run once: the
 * modules compiled but not yet run run, in the order they finished
 * compiling, just before the chunk that imported them first (so nothing
 * runs when anything fails to compile).
 */
#define KP_MAX_IMPORT_DEPTH 64

typedef struct ImportChain {
    const char *names[KP_MAX_IMPORT_DEPTH + 1];
    struct KpModule *mods[KP_MAX_IMPORT_DEPTH + 1];
    int n;
    bool failed;    /* a module failed to compile (its errors are printed) */
    KpWriteFn emit; /* --emit=ownership: each module's record, or NULL */
    void *emit_ud;
} ImportChain;

/* `path` joined to the directory of `importer`, with "." and "dir/.."
 * folded (interned). */
static const char *module_name(KpVM *vm, const char *importer, const char *path, size_t plen) {
    KpBuf in = {0}, out = {0};
    size_t dl = 0;
    if (plen == 0 || path[0] != '/') {
        const char *slash = importer && importer[0] != '<' ? strrchr(importer, '/') : NULL;
        if (slash) dl = (size_t)(slash - importer) + 1;
    }
    if (dl) kp_buf_add(vm, &in, importer, dl);
    kp_buf_add(vm, &in, path, plen);
    kp_buf_add(vm, &in, "", 1);
    const char *s = in.data ? in.data : "";
    bool abs = s[0] == '/';
    if (abs) kp_buf_add(vm, &out, "/", 1);
    size_t keep_ups = 0; /* leading ".." kept */
    while (*s) {
        const char *e = strchr(s, '/');
        size_t n = e ? (size_t)(e - s) : strlen(s);
        if (n == 0 || (n == 1 && s[0] == '.')) {
            /* nothing */
        } else if (n == 2 && s[0] == '.' && s[1] == '.' && out.len > (abs ? 1u : 0u) + keep_ups * 3) {
            size_t l = out.len - 1; /* drop the last component and its '/' */
            while (l > (abs ? 1u : 0u) && out.data[l - 1] != '/') l--;
            out.len = l;
        } else {
            if (n == 2 && s[0] == '.' && s[1] == '.') keep_ups++;
            kp_buf_add(vm, &out, s, n);
            if (e) kp_buf_add(vm, &out, "/", 1);
        }
        s += n;
        if (*s == '/') s++;
    }
    while (out.len > 1 && out.data[out.len - 1] == '/') out.len--;
    const char *r = kp_intern(vm, out.data ? out.data : "", out.len);
    kp_buf_free(vm, &in);
    kp_buf_free(vm, &out);
    return r;
}

/* A prefix no other module has: the file name without directory and
 * ".kp", then a number if that is taken. */
static const char *module_prefix(KpVM *vm, const char *name, const ImportChain *ch) {
    const char *base = strrchr(name, '/');
    base = base ? base + 1 : name;
    size_t n = strlen(base);
    if (n > 3 && !strcmp(base + n - 3, ".kp")) n -= 3;
    if (n > 200) n = 200;
    char buf[224];
    for (unsigned k = 1;; k++) {
        if (k == 1) snprintf(buf, sizeof buf, "%.*s.", (int)n, base);
        else snprintf(buf, sizeof buf, "%.*s%u.", (int)n, base, k);
        const char *p = kp_intern(vm, buf, strlen(buf));
        bool taken = false;
        for (uint32_t i = 0; i < vm->nmodules && !taken; i++) taken = vm->modules[i]->prefix == p;
        for (int i = 0; i < ch->n && !taken; i++) taken = ch->mods[i] && ch->mods[i]->prefix == p;
        /* (a failed import's declarations were taken back, but a name
         * left by --emit=ownership may remain) */
        if (!taken && kp_func_get(vm, p, false)) taken = true;
        if (!taken) return p;
    }
}

/* Grows a names_arena array to hold element n (they last with the VM). */
static void *grow_lasting(KpVM *vm, void *arr, uint32_t *cap, uint32_t n, size_t elem) {
    if (n < *cap) return arr;
    uint32_t ncap = *cap ? *cap * 2 : 8;
    void *q = kp_arena_alloc(&vm->names_arena, elem * ncap, 16);
    if (!q) return NULL;
    if (arr) memcpy(q, arr, elem * *cap);
    *cap = ncap;
    return q;
}

typedef struct LoadSink {
    KpVM *vm;
    KpBuf b;
    bool oom, too_big;
} LoadSink;

static void load_write(void *ud, const char *bytes, size_t len) {
    LoadSink *s = ud;
    if (s->oom || s->too_big || !len) return;
    if (s->b.len + len > s->vm->max_source) {
        s->too_big = true;
        return;
    }
    if (!kp_buf_add(s->vm, &s->b, bytes, len)) s->oom = true;
}

static bool load_imports(KpVM *vm, const KpSource *src, KpNode *prog, KpDiags *diags, struct KpModAlias **al,
                         uint32_t *nal, uint32_t *cap, ImportChain *ch);

/* The module `name`, imported at node `at` of the importer (whose
 * diagnostics are `diags`): found, or loaded and compiled; NULL on an
 * error (reported). */
static struct KpModule *import_module(KpVM *vm, const char *name, KpNode *at, KpDiags *diags, ImportChain *ch) {
    for (int i = 0; i < ch->n; i++) {
        if (ch->names[i] != name) continue;
        KpBuf b = {0};
        for (int k = i; k < ch->n; k++) {
            kp_buf_add(vm, &b, ch->names[k], strlen(ch->names[k]));
            kp_buf_add(vm, &b, " -> ", 4);
        }
        kp_buf_add(vm, &b, name, strlen(name));
        kp_diag_add(diags, at->line, at->col, "import cycle: %.*s", (int)b.len, b.data ? b.data : "");
        kp_buf_free(vm, &b);
        return NULL;
    }
    for (uint32_t i = 0; i < vm->nmodules; i++)
        if (vm->modules[i]->name == name) return vm->modules[i];
    if (ch->n >= KP_MAX_IMPORT_DEPTH) {
        kp_diag_add(diags, at->line, at->col, "cannot import '%s': imports nested more than %d deep", name,
                    KP_MAX_IMPORT_DEPTH);
        return NULL;
    }
    if (!vm->load_module) {
        kp_diag_add(diags, at->line, at->col,
                    "cannot import '%s': this host loads no modules (it set no KpConfig.load_module)", name);
        return NULL;
    }
    LoadSink sink = {vm, {0}, false, false};
    const char *why = NULL;
    bool found = vm->load_module(vm->write_ud, name, load_write, &sink, &why);
    if (!found || sink.oom || sink.too_big) {
        if (sink.too_big)
            kp_diag_add(diags, at->line, at->col, "cannot import '%s': more than the limit of %zu bytes", name,
                        vm->max_source);
        else if (sink.oom) kp_diag_add(diags, at->line, at->col, "cannot import '%s': out of memory", name);
        else kp_diag_add(diags, at->line, at->col, "cannot import '%s': %s", name, why ? why : "no such module");
        kp_buf_free(vm, &sink.b);
        return NULL;
    }
    KpSource *src = kp_arena_alloc(&vm->meta_arena, sizeof(KpSource), 8);
    char *copy = kp_arena_alloc(&vm->meta_arena, sink.b.len + 1, 1);
    if (!src || !copy) {
        kp_buf_free(vm, &sink.b);
        kp_diag_add(diags, at->line, at->col, "cannot import '%s': out of memory", name);
        return NULL;
    }
    if (sink.b.len) memcpy(copy, sink.b.data, sink.b.len);
    copy[sink.b.len] = 0;
    src->name = name;
    src->text = copy;
    src->len = sink.b.len;
    kp_buf_free(vm, &sink.b);

    struct KpModule *mod = kp_arena_alloc(&vm->names_arena, sizeof *mod, 16);
    if (!mod) {
        kp_diag_add(diags, at->line, at->col, "cannot import '%s': out of memory", name);
        return NULL;
    }
    memset(mod, 0, sizeof *mod);
    mod->name = name;
    mod->prefix = module_prefix(vm, name, ch);
    mod->loading = true;

    KpArena diag_arena;
    kp_arena_init(&diag_arena, vm->host, NULL);
    KpDiags md;
    kp_diags_init(&md, &diag_arena);
    KpNode *prog = kp_parse(src, &vm->meta_arena, &md);
    ch->names[ch->n] = name;
    ch->mods[ch->n] = mod;
    ch->n++;
    if (prog && md.count == 0) load_imports(vm, src, prog, &md, &mod->aliases, &mod->naliases, &mod->cap_aliases, ch);
    ch->n--;
    KpProto *proto = NULL;
    KpOwnLog log = {0};
    if (prog && md.count == 0 && !ch->failed) {
        struct KpModule *save_mod = vm->cur_module;
        struct KpModAlias *save_al = vm->cur_aliases;
        uint32_t save_nal = vm->ncur_aliases;
        vm->cur_module = mod;
        vm->cur_aliases = mod->aliases;
        vm->ncur_aliases = mod->naliases;
        proto = kp_compile_own(vm, src, prog, &md, false, ch->emit ? &log : NULL);
        vm->cur_module = save_mod;
        vm->cur_aliases = save_al;
        vm->ncur_aliases = save_nal;
    }
    mod->loading = false;
    if (!proto || md.count) {
        if (md.count == 0 && !ch->failed) kp_diag_add(&md, 1, 1, "out of memory");
        if (md.count) {
            kp_diags_print(&md, src, &(KpDiagSink){vm->write_err, vm->on_diagnostic, vm->write_ud});
            set_compile_error(vm, &md, src);
        }
        kp_arena_deinit(&diag_arena);
        drop_pending_globals(vm);
        ch->failed = true;
        return NULL;
    }
    kp_arena_deinit(&diag_arena);
    if (ch->emit) kp_emit_ownership(vm, src, &log, ch->emit, ch->emit_ud);
    vm->modules = grow_lasting(vm, vm->modules, &vm->cap_modules, vm->nmodules, sizeof *vm->modules);
    if (!vm->modules) {
        kp_diag_add(diags, at->line, at->col, "cannot import '%s': out of memory", name);
        return NULL;
    }
    mod->main = proto;
    vm->modules[vm->nmodules++] = mod;
    return mod;
}

/* Loads the modules of the chunk's top-level imports, appending their
 * aliases to *al; false when any failed (reported). */
static bool load_imports(KpVM *vm, const KpSource *src, KpNode *prog, KpDiags *diags, struct KpModAlias **al,
                         uint32_t *nal, uint32_t *cap, ImportChain *ch) {
    bool ok = true;
    for (int i = 0; i < prog->list.count && !ch->failed; i++) {
        KpNode *s = prog->list.items[i];
        if (!kp_mod_is_import(s)) continue;
        KpNode *call = s->b;
        KpNode *arg = call->list.count == 1 ? call->list.items[0] : NULL;
        if (!arg || arg->kind != KP_N_STRING) {
            kp_diag_add(diags, arg ? arg->line : call->line, arg ? arg->col : call->col,
                        "import takes one string literal, the module's path: import(\"lib/geometry.kp\")");
            ok = false;
            continue;
        }
        const char *name = module_name(vm, src->name, arg->str, arg->str_len);
        struct KpModule *mod = import_module(vm, name, arg, diags, ch);
        if (!mod) {
            ok = false;
            continue;
        }
        *al = grow_lasting(vm, *al, cap, *nal, sizeof **al);
        if (!*al) {
            kp_diag_add(diags, s->line, s->col, "out of memory");
            return false;
        }
        (*al)[(*nal)++] = (struct KpModAlias){kp_intern(vm, s->name, strlen(s->name)), mod, s->line, s->col};
    }
    return ok && !ch->failed;
}

/* Before a main chunk compiles: its imports.  false: an error, reported
 * in diags or (a module's own errors) printed; *mod_failed says which. */
static bool main_imports(KpVM *vm, const KpSource *src, KpNode *prog, KpDiags *diags, bool *mod_failed,
                         KpWriteFn emit, void *emit_ud) {
    ImportChain ch;
    memset(&ch, 0, sizeof ch);
    ch.emit = emit;
    ch.emit_ud = emit_ud;
    ch.names[0] = module_name(vm, "", src->name, strlen(src->name));
    ch.n = 1;
    bool ok = load_imports(vm, src, prog, diags, &vm->aliases, &vm->naliases, &vm->cap_aliases, &ch);
    *mod_failed = ch.failed;
    vm->cur_module = NULL;
    vm->cur_aliases = vm->aliases;
    vm->ncur_aliases = vm->naliases;
    return ok;
}

/* The modules compiled and not yet run run, dependencies first. */
static int run_modules(KpVM *vm) {
    for (uint32_t i = 0; i < vm->nmodules; i++) {
        KpProto *p = vm->modules[i]->main;
        if (!p) continue;
        vm->modules[i]->main = NULL; /* once, even when it fails */
        int rc = kp_vm_run_main(vm, p);
        if (rc != KP_OK) return rc;
    }
    return KP_OK;
}

static int run_source_in(KpVM *vm, const char *name, const char *text, size_t len, bool repl) {
    kp_tls_vm = vm;
    vm->status = KP_OK;
    kp_buf_reset(&vm->err);
    /* room for the source, the AST and the compiler's arrays taken at once:
     * out of memory is reported here, cleanly, rather than in the middle
     * of the compiler (which expects its allocations to succeed) */
    if (len <= KP_RUN_RESERVE_MAX && !kp_arena_reserve(&vm->meta_arena, 8 * len + 64 * 1024))
        return report_oom(vm, name);
    KpSource *src = kp_arena_alloc(&vm->meta_arena, sizeof(KpSource), 8);
    char *copy = kp_arena_alloc(&vm->meta_arena, len + 1, 1);
    if (!src || !copy) return report_oom(vm, name);
    if (len) memcpy(copy, text, len); /* text may be NULL when len is 0 */
    copy[len] = 0;
    src->name = kp_intern(vm, name, strlen(name));
    src->text = copy;
    src->len = len;
    KpArena diag_arena;
    kp_arena_init(&diag_arena, vm->host, NULL);
    KpDiags diags;
    kp_diags_init(&diags, &diag_arena);
    KpNode *prog = kp_parse(src, &vm->meta_arena, &diags);
    KpProto *proto = NULL;
    uint32_t naliases = vm->naliases;
    bool mod_failed = false;
    if (prog && diags.count == 0 && vm->nframes > 0) nested_room(vm, prog, &diags);
    if (prog && diags.count == 0) main_imports(vm, src, prog, &diags, &mod_failed, NULL, NULL);
    if (prog && diags.count == 0 && !mod_failed) proto = kp_compile_ex(vm, src, prog, &diags, repl);
    vm->cur_aliases = NULL;
    vm->ncur_aliases = 0;
    if (!proto || diags.count) {
        vm->naliases = naliases; /* the chunk's imports name nothing */
        if (diags.count == 0 && !mod_failed) kp_diag_add(&diags, 1, 1, "out of memory");
        if (repl && diags.incomplete) {
            kp_arena_deinit(&diag_arena);
            drop_pending_globals(vm);
            vm->status = KP_ERR_INCOMPLETE;
            return KP_ERR_INCOMPLETE;
        }
        if (diags.count) {
            kp_diags_print(&diags, src, &(KpDiagSink){vm->write_err, vm->on_diagnostic, vm->write_ud});
            if (!mod_failed) set_compile_error(vm, &diags, src);
        }
        vm->status = KP_ERR_COMPILE;
        vm->incomplete = diags.incomplete;
        kp_arena_deinit(&diag_arena);
        /* reserved globals of a failed chunk are released */
        drop_pending_globals(vm);
        return KP_ERR_COMPILE;
    }
    kp_arena_deinit(&diag_arena);
    int rc = run_modules(vm);
    if (rc != KP_OK) return rc;
    return kp_vm_run_main(vm, proto);
}

int kp_vm_run_string(KpVM *vm, const char *name, const char *src, size_t len) {
    return run_source(vm, name, src, len, false);
}

int kp_vm_eval(KpVM *vm, const char *name, const char *src, size_t len, unsigned flags) {
    return run_source(vm, name, src, len, (flags & KP_EVAL_REPL) != 0);
}

int kp_vm_run_file(KpVM *vm, const char *path) {
    /* a named pipe is refused before it is opened: opening one waits for
     * a writer (the fstat below catches what changes in between) */
    struct stat pre;
    if (stat(path, &pre) == 0 && !S_ISREG(pre.st_mode)) {
        kp_buf_reset(&vm->err);
        kp_buf_printf(vm, &vm->err, "cannot run '%s': not a regular file", path);
        vm->status = KP_ERR_USAGE;
        return KP_ERR_USAGE;
    }
    FILE *f = fopen(path, "rb");
    if (!f) {
        kp_buf_reset(&vm->err);
        kp_buf_printf(vm, &vm->err, "cannot open '%s': %s", path, strerror(errno));
        vm->status = KP_ERR_USAGE;
        return KP_ERR_USAGE;
    }
    /* only regular files, and at most max_source bytes: /dev/zero or a
     * pipe would be read until memory runs out */
    struct stat st;
    const char *refuse = NULL;
    char why[96];
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        refuse = "not a regular file";
    } else if ((uint64_t)st.st_size > vm->max_source) {
        snprintf(why, sizeof why, "%lld bytes, more than the limit of %zu bytes", (long long)st.st_size, vm->max_source);
        refuse = why;
    }
    if (refuse) {
        fclose(f);
        kp_buf_reset(&vm->err);
        kp_buf_printf(vm, &vm->err, "cannot run '%s': %s", path, refuse);
        vm->status = KP_ERR_USAGE;
        return KP_ERR_USAGE;
    }
    KpBuf b = {0};
    char chunk[65536];
    size_t n;
    bool ok = true, too_big = false;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) {
        if (b.len + n > vm->max_source) { too_big = true; break; } /* it grew while being read */
        if (!kp_buf_add(vm, &b, chunk, n)) { ok = false; break; }
    }
    bool err = ferror(f);
    fclose(f);
    if (too_big) {
        kp_buf_free(vm, &b);
        kp_buf_reset(&vm->err);
        kp_buf_printf(vm, &vm->err, "cannot run '%s': more than the limit of %zu bytes", path, vm->max_source);
        vm->status = KP_ERR_USAGE;
        return KP_ERR_USAGE;
    }
    if (!ok || err) {
        kp_buf_free(vm, &b);
        kp_buf_reset(&vm->err);
        kp_buf_printf(vm, &vm->err, "cannot read '%s'%s", path, ok ? "" : ": out of memory");
        vm->status = KP_ERR_USAGE;
        return KP_ERR_USAGE;
    }
    int rc = run_source(vm, path, b.data ? b.data : "", b.len, false);
    kp_buf_free(vm, &b);
    return rc;
}

/* --emit=ownership: the program is compiled as a run would compile it
 * (in a scratch arena of its own, kp_compile_own filling the ownership
 * record) and the record is printed (compiler/emit.c); nothing runs.  The
 * top-level variables the compile reserved are released again; functions
 * and types it declared stay declared, as when a chunk runs. */
static int emit_in(KpVM *vm, const char *name, const char *text, size_t len, bool repl, KpWriteFn out, void *ud) {
    kp_tls_vm = vm;
    vm->status = KP_OK;
    kp_buf_reset(&vm->err);
    if (len <= KP_RUN_RESERVE_MAX && !kp_arena_reserve(&vm->meta_arena, 8 * len + 64 * 1024))
        return report_oom(vm, name);
    KpSource *src = kp_arena_alloc(&vm->meta_arena, sizeof(KpSource), 8);
    char *copy = kp_arena_alloc(&vm->meta_arena, len + 1, 1);
    if (!src || !copy) return report_oom(vm, name);
    if (len) memcpy(copy, text, len);
    copy[len] = 0;
    src->name = kp_intern(vm, name, strlen(name));
    src->text = copy;
    src->len = len;
    uint32_t nglobals = vm->nglobals, main_nregs = vm->main_nregs;
    KpArena diag_arena;
    kp_arena_init(&diag_arena, vm->host, NULL);
    KpDiags diags;
    kp_diags_init(&diags, &diag_arena);
    KpNode *prog = kp_parse(src, &vm->meta_arena, &diags);
    KpOwnLog log = {0};
    KpProto *proto = NULL;
    uint32_t nmodules = vm->nmodules, naliases = vm->naliases;
    bool mod_failed = false;
    if (prog && diags.count == 0 && vm->nframes > 0) nested_room(vm, prog, &diags);
    if (prog && diags.count == 0) main_imports(vm, src, prog, &diags, &mod_failed, out, ud);
    if (prog && diags.count == 0 && !mod_failed) proto = kp_compile_own(vm, src, prog, &diags, repl, &log);
    vm->cur_aliases = NULL;
    vm->ncur_aliases = 0;
    int rc = KP_OK;
    if (!proto || diags.count) {
        if (diags.count == 0 && !mod_failed) kp_diag_add(&diags, 1, 1, "out of memory");
        if (diags.count) {
            kp_diags_print(&diags, src, &(KpDiagSink){vm->write_err, vm->on_diagnostic, vm->write_ud});
            if (!mod_failed) set_compile_error(vm, &diags, src);
        }
        vm->status = KP_ERR_COMPILE;
        rc = KP_ERR_COMPILE;
    } else {
        kp_emit_ownership(vm, src, &log, out, ud);
    }
    /* nothing ran: the modules this emit compiled are not loaded */
    vm->nmodules = nmodules;
    vm->naliases = naliases;
    kp_arena_deinit(&diag_arena);
    /* nothing ran: the chunk's top-level variables do not exist */
    kp_vm_globals_truncate(vm, nglobals);
    vm->main_nregs = main_nregs;
    return rc;
}

int kp_vm_emit_ownership(KpVM *vm, const char *name, const char *src, size_t len, KpWriteFn out, void *ud) {
    return kp_vm_emit_ownership_ex(vm, name, src, len, 0, out, ud);
}

int kp_vm_emit_ownership_ex(KpVM *vm, const char *name, const char *src, size_t len, unsigned flags, KpWriteFn out,
                            void *ud) {
    if (vm->in_host_deinit || vm->nframes) return KP_ERR_USAGE;
    KpArena lasting = vm->meta_arena;
    kp_arena_init(&vm->meta_arena, vm->host, NULL);
    int rc = emit_in(vm, name ? name : "<input>", src ? src : "", src ? len : 0, (flags & KP_EVAL_REPL) != 0, out, ud);
    KpArena run = vm->meta_arena;
    vm->meta_arena = lasting;
    if (run_arena_needed(vm, &run)) kp_arena_absorb(&vm->meta_arena, &run);
    else kp_arena_deinit(&run);
    return rc;
}
