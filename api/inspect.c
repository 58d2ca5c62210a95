/*
 * inspect.c — what a tool can ask a VM about the program it holds, without
 * running anything: the static type of an expression (the REPL's :type)
 * and the names in scope (the REPL's tab completion).  kp_vm_static_type
 * and kp_vm_complete of include/keep.h.
 *
 * Design.  Both answer from the compiler's own knowledge, so they cannot
 * disagree with it.  :type compiles the expression exactly as a REPL line
 * would (compiler/compile.c kp_compile_static_type) into a proto that is
 * thrown away; its text and AST live in the VM's meta arena like every
 * compiled run's, since compiled types may point into them.  Completion
 * walks the VM's tables — top-level variables (vm->globals), functions
 * (vm->funcs, the built-ins included), named types (vm->types), the built-in
 * type names and the keywords — and, after `a.b.`, the fields of the
 * record type the compiler inferred for `a` (or, when it could not tell,
 * the type of a's current value), following the field types down the
 * chain.
 */
#include <string.h>

#include "../compiler/compiler.h"
#include "../parser/ast.h"
#include "../stdlib/builtins.h"
#include "../vm/vm.h"

int kp_vm_static_type(KpVM *vm, const char *text, size_t len, KpWriteFn out, void *ud) {
    kp_tls_vm = vm;
    KpSource *src = kp_arena_alloc(&vm->meta_arena, sizeof(KpSource), 8);
    char *copy = kp_arena_alloc(&vm->meta_arena, len + 1, 1);
    if (!src || !copy) return KP_ERR_RUNTIME;
    memcpy(copy, text, len);
    copy[len] = 0;
    src->name = "<type>";
    src->text = copy;
    src->len = len;
    KpArena diag_arena;
    kp_arena_init(&diag_arena, vm->host, NULL);
    KpDiags diags;
    kp_diags_init(&diags, &diag_arena);
    KpNode *prog = kp_parse(src, &vm->meta_arena, &diags);
    int rc = KP_OK;
    if (prog && diags.count == 0) {
        KpNode *s = prog->list.count == 1 ? prog->list.items[0] : NULL;
        if (!s || s->kind != KP_N_EXPRSTMT || !s->a) {
            kp_diag_add(&diags, 1, 1, ":type takes one expression");
        } else {
            KpType *t = kp_compile_static_type(vm, src, s->a, &diags);
            if (diags.count == 0 && t) {
                const char *name = kp_type_name(t);
                out(ud, name, strlen(name));
            }
        }
    }
    if (diags.count) {
        kp_diags_print(&diags, src, &(KpDiagSink){vm->write_err, vm->on_diagnostic, vm->write_ud});
        rc = KP_ERR_COMPILE;
    }
    kp_arena_deinit(&diag_arena);
    return rc;
}

/* ------------------------------------------------------------ completion */

static const char *const keywords[] = {
    "if", "else", "while", "for", "in", "break", "continue", "return", "and", "or", "not",
    "true", "false", "keep", "with", "using", "defer", "try", "catch", "deinit", "Type", "system", NULL,
};

static const char *const builtin_types[] = {
    "Int", "Int8", "Int16", "Int32", "Int64", "UInt8", "UInt16", "UInt32", "UInt64", "Byte",
    "Float", "Float64", "Bool", "String", "Any", "List", "HashMap", "HeapAllocation", "Function",
    "AllocStats", "Random", NULL,
};

static bool is_name_char(char ch) {
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '_';
}

typedef struct Offer {
    KpWriteFn each;
    void *ud;
    const char *head; /* the text before the last name ("p." of "p.x") */
    size_t nhead;
    const char *word; /* the partial last name */
    size_t nword;
    int count;
    const char *seen[512]; /* names offered already (interned or static) */
    int nseen;
} Offer;

static void offer(Offer *o, const char *name) {
    if (!name || name[0] == '#' || strncmp(name, o->word, o->nword) != 0) return;
    for (int i = 0; i < o->nseen; i++)
        if (!strcmp(o->seen[i], name)) return;
    if (o->nseen < (int)(sizeof o->seen / sizeof *o->seen)) o->seen[o->nseen++] = name;
    char buf[512];
    size_t n = strlen(name);
    if (o->nhead + n >= sizeof buf) return;
    memcpy(buf, o->head, o->nhead);
    memcpy(buf + o->nhead, name, n);
    o->each(o->ud, buf, o->nhead + n);
    o->count++;
}

static struct KpGlobal *find_global(KpVM *vm, const char *name, size_t n) {
    for (uint32_t i = vm->nglobals; i-- > 0;) /* the latest definition */
        if (strlen(vm->globals[i].name) == n && !strncmp(vm->globals[i].name, name, n)) return &vm->globals[i];
    return NULL;
}

/* The record type of the value at the end of the chain `a.b.c` (n bytes),
 * or NULL. */
static KpType *chain_type(KpVM *vm, const char *s, size_t n) {
    size_t i = 0;
    while (i < n && is_name_char(s[i])) i++;
    struct KpGlobal *g = find_global(vm, s, i);
    if (!g) return NULL;
    KpType *t = g->type;
    if (!t || t->kind != KP_TK_RECORD) { /* the compiler could not tell: the value's */
        KpValue v = kp_deref(vm->stack[g->reg]);
        t = v.tag == KP_T_RECORD ? ((KpRecord *)v.p)->type : NULL;
    }
    while (t && i < n && s[i] == '.') {
        size_t j = ++i;
        while (i < n && is_name_char(s[i])) i++;
        KpType *next = NULL;
        for (uint32_t f = 0; f < t->nfields; f++)
            if (strlen(t->fnames[f]) == i - j && !strncmp(t->fnames[f], s + j, i - j)) next = t->ftypes ? t->ftypes[f] : NULL;
        while (next && next->kind == KP_TK_REF) next = next->elem;
        t = next;
    }
    return t && t->kind == KP_TK_RECORD && i == n ? t : NULL;
}

int kp_vm_complete(KpVM *vm, const char *text, size_t len, KpWriteFn each, void *ud) {
    Offer o;
    memset(&o, 0, sizeof o);
    o.each = each;
    o.ud = ud;
    /* the partial name at the end, and what comes before it */
    size_t w = len;
    while (w > 0 && is_name_char(text[w - 1])) w--;
    o.word = text + w;
    o.nword = len - w;
    if (w > 0 && text[w - 1] == '.') {
        /* a field: the chain of names before the dot */
        size_t c = w - 1;
        while (c > 0 && (is_name_char(text[c - 1]) || text[c - 1] == '.')) c--;
        o.head = text;
        o.nhead = w;
        if (c == w - 1 || !is_name_char(text[c]) || (text[c] >= '0' && text[c] <= '9')) return 0;
        if (w - 1 - c == 6 && !strncmp(text + c, "system", 6)) {
            static const char *const sys[] = {"memory", "args", "script", "fs", "random", "env", NULL};
            for (int i = 0; sys[i]; i++) offer(&o, sys[i]);
            return o.count;
        }
        KpType *t = chain_type(vm, text + c, w - 1 - c);
        for (uint32_t f = 0; t && f < t->nfields; f++) offer(&o, t->fnames[f]);
        return o.count;
    }
    o.head = text;
    o.nhead = w;
    for (uint32_t i = vm->nglobals; i-- > 0;) offer(&o, vm->globals[i].name);
    for (uint32_t i = 0; i < vm->nfuncs; i++) offer(&o, vm->funcs[i]->name);
    /* the library's functions, registered or not yet (see kp_func_get) */
    for (int m = 0; kp_builtin_modules[m]; m++)
        for (const KpBuiltin *b = kp_builtin_modules[m]; b->name; b++)
            if (b->name[0] != '#') offer(&o, b->name);
    for (uint32_t i = 0; i < vm->ntypes; i++) offer(&o, vm->types[i].name);
    for (int i = 0; builtin_types[i]; i++) offer(&o, builtin_types[i]);
    for (int i = 0; keywords[i]; i++) offer(&o, keywords[i]);
    return o.count;
}
