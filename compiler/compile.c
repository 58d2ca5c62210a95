/*
 * compile.c — from the AST to bytecode: the driver of the compiler's passes
 * and the helpers they share.
 *
 * Design.  kp_compile_ex compiles one chunk (a file, a REPL line, a host
 * run) into the main KpProto: it reserves a global slot for every
 * top-level variable, then compiles the program's top-level block through
 * the passes — names (resolve.c), static types (types.c), ownership
 * (ownership.c) and bytecode (codegen.c, codegen_stmt.c); function bodies
 * are compiled as their declarations are hoisted.  Errors accumulate in
 * the chunk's KpDiags and compilation goes on; a chunk with any error
 * yields no code.  Everything the compiler allocates comes from the VM's
 * metadata allocator and arena (vm->meta, vm->meta_arena), released with
 * the VM.
 *
 * Out of memory.  A refused host allocation while compiling ends the
 * compile at once: the VM's host allocator jumps back to kp_compile_ex
 * (vm->compile_oom; Lua's parser raises its memory errors the same way),
 * which reports "out of memory" for the chunk.  Nothing leaks, since all
 * the compiler allocates is in the VM's arena, and nothing is half-made
 * that outlives the chunk: its reserved globals stay pending and are
 * released by the driver like those of any chunk with errors.
 */
#include "compiler_int.h"

void kp_compile_error(C *c, KpNode *n, const char *fmt, ...) {
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    kp_diag_add(c->diags, n ? n->line : c->fn->line, n ? n->col : c->fn->col, "%s", buf);
}

void *kp_compile_grow(C *c, void *arr, uint32_t *cap, uint32_t n, size_t elem) {
    if (n < *cap) return arr;
    uint32_t ncap = *cap ? *cap * 2 : 16;
    void *q = kp_realloc(c->vm->meta, arr, elem * *cap, elem * ncap, 16, NULL);
    if (!q) return NULL;
    *cap = ncap;
    return q;
}

KpString *kp_compile_const_str(C *c, const char *s, size_t len) {
    KpString *str = kp_vm_const_str(c->vm, s, len); /* outlives the run's arena */
    if (str) return str;
    kp_compile_error(c, NULL, "out of memory");
    return c->vm->empty_str; /* the chunk does not run */
}

const char *kp_compile_intern(C *c, const char *s) { return kp_intern(c->vm, s, strlen(s)); }

KpProto *kp_compile_new_proto(C *c, const char *name) {
    KpProto *p = kp_arena_alloc(&c->vm->meta_arena, sizeof(KpProto), 16);
    memset(p, 0, sizeof *p);
    p->name = name;
    p->src = c->src;
    return p;
}

static KpProto *compile_chunk(KpVM *vm, const KpSource *src, KpNode *program, KpDiags *diags, bool repl);

KpProto *kp_compile_ex(KpVM *vm, const KpSource *src, KpNode *program, KpDiags *diags, bool repl) {
    jmp_buf oom;
    jmp_buf *outer = vm->compile_oom;
    if (setjmp(oom)) {
        vm->compile_oom = outer;
        kp_diag_add(diags, 1, 1, "out of memory while compiling");
        return NULL;
    }
    vm->compile_oom = &oom;
    KpProto *p = compile_chunk(vm, src, program, diags, repl);
    vm->compile_oom = outer;
    return p;
}

static KpProto *compile_chunk(KpVM *vm, const KpSource *src, KpNode *program, KpDiags *diags, bool repl) {
    C c;
    memset(&c, 0, sizeof c);
    c.vm = vm;
    c.src = src;
    c.diags = diags;
    c.repl = repl;
    int errors_before = diags->count;
    Fn fn;
    memset(&fn, 0, sizeof fn);
    fn.is_main = true;
    fn.p = kp_compile_new_proto(&c, kp_compile_intern(&c, "main"));
    c.fn = &fn;

    kp_own_scan_keeps(&c, &fn, program);
    /* reserve a register for every top-level variable, and one for the box
     * of each that is kept manually (`keep x` with no owner) */
    for (int i = 0; i < program->list.count; i++) {
        KpNode *s = program->list.items[i];
        if (!s || s->kind != KP_N_DECL) continue;
        const char *name = kp_compile_intern(&c, s->name);
        IGROW(&c, vm->globals, (int)vm->nglobals, vm->globals_cap);
        vm->globals[vm->nglobals++] = (struct KpGlobal){name, vm->main_nregs++, NULL, 1};
        int ki = kp_own_kept_index(&fn, name);
        if (ki >= 0 && fn.kept[ki].manual && fn.kept[ki].box_reg == NO_REG) fn.kept[ki].box_reg = vm->main_nregs++;
    }
    fn.freereg = vm->main_nregs;
    fn.p->nregs = vm->main_nregs;
    if (repl && program->list.count > 0) {
        /* the REPL shows the value of a final expression statement */
        KpNode *last = program->list.items[program->list.count - 1];
        if (last && last->kind == KP_N_EXPRSTMT && last->a && last->a->kind != KP_N_ASSIGN) {
            KpNode *call = kp_ast_new(&vm->meta_arena, KP_N_CALL, last->line, last->col);
            KpNode *callee = kp_ast_new(&vm->meta_arena, KP_N_IDENT, last->line, last->col);
            if (call && callee) {
                callee->name = "#show";
                call->a = callee;
                kp_ast_push(&vm->meta_arena, &call->list, last->a);
                last->a = call;
            }
        }
    }
    kp_tc_count_decls(&c, program);
    kp_cg_block_body(&c, program);
    /* top-level function bodies compiled in hoist_block; now the end */
    kp_cg_at(&c, NULL);
    /* end of the chunk: top-level defers run now (globals stay alive) */
    if (fn.ndefers > 0) kp_own_emit_exit(&c, -1, 0);
    kp_cg_emit(&c, KP_BC_HALT, 0, 0, 0, 0);
    kp_own_finish_defers(&c);
    /* record names of globals in the local info for messages */
    for (int i = 0; i < fn.nlocals; i++) kp_resolve_note_local_info(&c, &fn.locals[i]);
    for (uint32_t i = 0; i < vm->nglobals; i++) vm->globals[i].pending = 0;
    if (diags->count > errors_before) return NULL;
    if (vm->dump_bytecode) kp_dump_proto(vm, fn.p);
    return fn.p;
}

KpProto *kp_compile(KpVM *vm, const KpSource *src, KpNode *program, KpDiags *diags) {
    return kp_compile_ex(vm, src, program, diags, false);
}

/* The static type of one expression in the top-level scope, for the REPL's
 * :type: the expression is compiled into a throwaway main proto (never
 * run), exactly as a REPL line would compile it, and the type the passes
 * inferred is returned — NULL when they cannot tell before running. */
KpType *kp_compile_static_type(KpVM *vm, const KpSource *src, KpNode *expr, KpDiags *diags) {
    C c;
    memset(&c, 0, sizeof c);
    c.vm = vm;
    c.src = src;
    c.diags = diags;
    c.repl = true;
    int errors_before = diags->count;
    Fn fn;
    memset(&fn, 0, sizeof fn);
    fn.is_main = true;
    fn.p = kp_compile_new_proto(&c, kp_compile_intern(&c, "main"));
    c.fn = &fn;
    fn.freereg = vm->main_nregs;
    fn.p->nregs = vm->main_nregs;
    uint32_t dst = kp_cg_reg_alloc(&c);
    KpType *t = kp_cg_expr(&c, expr, dst, M_VALUE);
    return diags->count > errors_before ? NULL : t;
}
