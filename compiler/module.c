/*
 * module.c — the names of modules: what `geo := import("lib/geometry.kp")`
 * makes visible, and what a module may not name.
 *
 * Design.  Keep's functions and types are program-wide tables keyed by
 * name (vm->funcs, vm->types, vm->globals), and every pass after this one
 * looks names up there.  A module gets a namespace of its own without any
 * pass knowing: before the passes run, this one renames.  In a module's
 * chunk every top-level function, type and variable `area` is declared as
 * `geometry.area` (the module's prefix: its file name without directory
 * and `.kp`, made unique in the VM), and every use of that name the
 * module's code makes — where no local of the name hides it — is renamed
 * alike.  In an importing chunk, `geo.area` (a field of a name that is an
 * import alias, where no local hides it) becomes the name `geometry.area`
 * itself, so a call through a module is a call of a named function:
 * resolved, type-checked, bound and checked for ownership exactly like a
 * call of a local function (wrong arity, argument types, unknown member —
 * compile errors, in dead code too).  A '.' cannot occur in a name the
 * user writes, so no script name collides with a member's.
 *
 * What is not renamed: a top-level function whose name the library (or
 * the host) already defines — `deinit`, `print`, `to_string`, … — adds an
 * overload to that function, as in any script, and is no member.  Names
 * that start with `_` are renamed (they are the module's own) but are not
 * exported: `geo._helper` is an error.
 *
 * Capabilities.  Inside a module, `system` is refused: a module can only
 * use the capabilities its caller passes it as parameters.
 *
 * The walk keeps a stack of the locals that could hide a renamed name
 * (parameters of functions and function literals, declarations inside
 * blocks, loop and catch variables, generic parameters); only names that matter are pushed, so the stack stays
 * small and the walk linear in the program.
 */
#include "compiler_int.h"

typedef struct MW {
    C *c;
    struct KpModule *mod; /* the module compiled, or NULL: the main script */
    const char **top;     /* the module's renamed top-level names (interned) */
    const char **renamed; /* ... and their new names */
    int ntop, cap_top, cap_ren;
    const char **locals;  /* names that hide one of the above here */
    int nlocals, cap_locals;
    const char *system, *import;
} MW;

static const char *intern(MW *w, const char *s) { return s ? kp_compile_intern(w->c, s) : NULL; }

static int top_index(MW *w, const char *name) {
    for (int i = 0; i < w->ntop; i++)
        if (w->top[i] == name) return i;
    return -1;
}

static struct KpModAlias *find_alias(MW *w, const char *name) {
    KpVM *vm = w->c->vm;
    for (uint32_t i = vm->ncur_aliases; i-- > 0;)
        if (vm->cur_aliases[i].alias == name) return &vm->cur_aliases[i];
    return NULL;
}

static bool is_local(MW *w, const char *name) {
    for (int i = w->nlocals - 1; i >= 0; i--)
        if (w->locals[i] == name) return true;
    return false;
}

/* A local named `name` begins here: pushed when it could hide something. */
static void push_local(MW *w, const char *raw) {
    const char *name = intern(w, raw);
    if (!name) return;
    if (top_index(w, name) < 0 && !find_alias(w, name) && name != w->system && name != w->import) return;
    IGROW(w->c, w->locals, w->nlocals, w->cap_locals);
    w->locals[w->nlocals++] = name;
}

static const char *join(MW *w, const char *prefix, const char *name) {
    size_t lp = strlen(prefix), ln = strlen(name);
    char *s = kp_arena_alloc(&w->c->vm->meta_arena, lp + ln + 1, 1);
    if (!s) return name; /* (out of memory: the host allocator has jumped) */
    memcpy(s, prefix, lp);
    memcpy(s + lp, name, ln + 1);
    return kp_compile_intern(w->c, s);
}

bool kp_mod_is_library_func(KpVM *vm, const char *name) {
    KpFunc *f = kp_func_get(vm, name, false);
    if (!f) return false;
    if (f->special) return true;
    for (uint32_t i = 0; i < f->n; i++)
        if (f->ovs[i]->native) return true;
    return false;
}

/* `geo.member`: the member's name, or NULL (an error reported). */
static const char *member(MW *w, struct KpModAlias *al, KpNode *at, const char *m) {
    C *c = w->c;
    KpVM *vm = c->vm;
    const char *full = join(w, al->mod->prefix, m);
    bool is_func = false;
    KpFunc *f = kp_func_get(vm, full, false);
    if (f && f->n) is_func = true;
    bool found = is_func || kp_resolve_find_global(c, full) || kp_resolve_find_type(c, full);
    if (found && m[0] != '_') return full;
    if (found) {
        kp_compile_error(c, at, "'%s' is private to module '%s' (%s): names starting with '_' are not exported", m,
                         al->alias, al->mod->name);
        return NULL;
    }
    kp_compile_error(c, at, "module '%s' (%s) has no member '%s'", al->alias, al->mod->name, m);
    /* did you mean: among the module's exported names */
    KpSimilar s;
    kp_compile_similar_init(&s, m);
    size_t lp = strlen(al->mod->prefix);
    for (uint32_t i = 0; i < vm->nfuncs; i++)
        if (vm->funcs[i]->n && !strncmp(vm->funcs[i]->name, al->mod->prefix, lp) && vm->funcs[i]->name[lp] != '_')
            kp_compile_similar_try(&s, vm->funcs[i]->name + lp);
    for (uint32_t i = 0; i < vm->ntypes; i++)
        if (!strncmp(vm->types[i].name, al->mod->prefix, lp) && vm->types[i].name[lp] != '_')
            kp_compile_similar_try(&s, vm->types[i].name + lp);
    for (uint32_t i = 0; i < vm->nglobals; i++)
        if (!strncmp(vm->globals[i].name, al->mod->prefix, lp) && vm->globals[i].name[lp] != '_')
            kp_compile_similar_try(&s, vm->globals[i].name + lp);
    kp_compile_similar_help(c, &s);
    return NULL;
}

/* Is n `alias.x` for an alias no local hides?  Its alias, or NULL. */
static struct KpModAlias *alias_field(MW *w, KpNode *n) {
    if (!n || n->kind != KP_N_FIELD || !n->a || n->a->kind != KP_N_IDENT) return NULL;
    const char *name = intern(w, n->a->name);
    if (is_local(w, name)) return NULL;
    return find_alias(w, name);
}

static void walk(MW *w, KpNode *n);

static void walk_list(MW *w, KpNodeList *l) {
    for (int i = 0; i < l->count; i++) walk(w, l->items[i]);
}

static void walk_func(MW *w, KpNode *n) {
    int mark = w->nlocals;
    for (int i = 0; i < n->list.count; i++) {
        KpNode *p = n->list.items[i];
        if (!p) continue;
        walk(w, p->a);
        walk(w, p->b);
        if (p->name) push_local(w, p->name);
    }
    if (n->a && n->a->kind == KP_N_OUTPUTS) {
        for (int i = 0; i < n->a->list.count; i++) {
            KpNode *p = n->a->list.items[i];
            if (!p) continue;
            walk(w, p->a);
            walk(w, p->b);
            if (p->name) push_local(w, p->name);
        }
    } else {
        walk(w, n->a);
    }
    walk(w, n->b);
    w->nlocals = mark;
}

static void read_only(MW *w, KpNode *target, const char *how) {
    kp_compile_error(w->c, target, "cannot %s '%s.%s': a module's variables are read-only outside it", how,
                     target->a->name, target->name);
}

static void walk(MW *w, KpNode *n) {
    if (!n) return;
    C *c = w->c;
    switch (n->kind) {
    case KP_N_IDENT: {
        const char *name = intern(w, n->name);
        if (is_local(w, name)) break;
        int ti = top_index(w, name);
        if (ti >= 0) {
            n->name = w->renamed[ti];
        } else if (w->mod && name == w->system) {
            kp_compile_error(c, n, "unknown name 'system': modules receive capabilities as parameters");
        } else {
            struct KpModAlias *al = find_alias(w, name);
            if (al) {
                kp_compile_error(c, n, "'%s' is a module (%s), not a value: use its members, as %s.name", n->name,
                                 al->mod->name, n->name);
                n->flags |= KP_F_REPORTED;
            }
        }
        break;
    }
    case KP_N_FIELD: {
        struct KpModAlias *al = alias_field(w, n);
        if (!al) {
            walk(w, n->a);
            break;
        }
        const char *full = member(w, al, n, n->name);
        n->kind = KP_N_IDENT;
        n->a = NULL;
        if (full) n->name = full;
        else n->flags |= KP_F_REPORTED;
        break;
    }
    case KP_N_CALL:
        if (n->a && n->a->kind == KP_N_IDENT && intern(w, n->a->name) == w->import && !is_local(w, w->import)) {
            kp_compile_error(c, n->a, "import is a top-level declaration of its own: name := import(\"file.kp\")");
            break;
        }
        walk(w, n->a);
        walk_list(w, &n->list);
        break;
    case KP_N_ASSIGN:
        if (alias_field(w, n->a)) read_only(w, n->a, "assign to");
        walk(w, n->a);
        walk(w, n->b);
        break;
    case KP_N_UNARY:
        if ((n->op == KP_OP_MUTREF || n->op == KP_OP_MOVE) && alias_field(w, n->a))
            read_only(w, n->a, n->op == KP_OP_MOVE ? "move" : "borrow mutably");
        walk(w, n->a);
        break;
    case KP_N_DECL:
        walk(w, n->a);
        walk(w, n->b);
        push_local(w, n->name); /* (top-level ones were renamed: never a hit) */
        break;
    case KP_N_FUNC:
    case KP_N_FUNCLIT: walk_func(w, n); break;
    case KP_N_TYPEDECL: {
        int mark = w->nlocals;
        for (int i = 0; i < n->list2.count; i++) {
            KpNode *p = n->list2.items[i];
            if (!p) continue;
            walk(w, p->a);
            if (p->name) push_local(w, p->name);
        }
        walk_list(w, &n->list);
        w->nlocals = mark;
        break;
    }
    case KP_N_FOR: {
        walk(w, n->a);
        int mark = w->nlocals;
        if (n->name) push_local(w, n->name);
        if (n->name2) push_local(w, n->name2);
        walk(w, n->b);
        w->nlocals = mark;
        break;
    }
    case KP_N_TRY: {
        walk(w, n->a);
        int mark = w->nlocals;
        if (n->name) push_local(w, n->name); /* the catch variable */
        walk(w, n->b);
        w->nlocals = mark;
        break;
    }
    case KP_N_BLOCK: {
        int mark = w->nlocals;
        walk_list(w, &n->list);
        w->nlocals = mark;
        break;
    }
    default:
        walk(w, n->a);
        walk(w, n->b);
        walk(w, n->c);
        walk_list(w, &n->list);
        walk_list(w, &n->list2);
        break;
    }
}

/* Is s the top-level declaration `name := import(...)`? */
bool kp_mod_is_import(const KpNode *s) {
    return s && s->kind == KP_N_DECL && !s->a && s->b && s->b->kind == KP_N_CALL && s->b->a &&
           s->b->a->kind == KP_N_IDENT && s->b->a->name && !strcmp(s->b->a->name, "import");
}

void kp_mod_rewrite(C *c, KpNode *program) {
    KpVM *vm = c->vm;
    MW w;
    memset(&w, 0, sizeof w);
    w.c = c;
    w.mod = vm->cur_module;
    w.system = kp_compile_intern(c, "system");
    w.import = kp_compile_intern(c, "import");
    /* the imports were the driver's: they declare nothing here */
    for (int i = 0; i < program->list.count; i++) {
        KpNode *s = program->list.items[i];
        if (!kp_mod_is_import(s)) continue;
        s->kind = KP_N_BLOCK; /* an empty statement */
        s->a = s->b = NULL;
        s->name = NULL;
        s->list = (KpNodeList){0};
    }
    if (w.mod) {
        for (int i = 0; i < program->list.count; i++) {
            KpNode *s = program->list.items[i];
            if (!s || !s->name || (s->kind != KP_N_DECL && s->kind != KP_N_FUNC && s->kind != KP_N_TYPEDECL)) continue;
            const char *name = kp_compile_intern(c, s->name);
            if (s->kind == KP_N_FUNC && kp_mod_is_library_func(vm, name)) continue;
            int ti = top_index(&w, name);
            if (ti < 0) {
                IGROW(c, w.top, w.ntop, w.cap_top);
                IGROW(c, w.renamed, w.ntop, w.cap_ren);
                w.top[w.ntop] = name;
                w.renamed[w.ntop] = join(&w, w.mod->prefix, name);
                ti = w.ntop++;
            }
            s->name = w.renamed[ti];
        }
    }
    for (int i = 0; i < program->list.count; i++) {
        KpNode *s = program->list.items[i];
        if (!s) continue;
        /* the top-level declarations' own names are done; their parts are walked */
        if (s->kind == KP_N_DECL) {
            walk(&w, s->a);
            walk(&w, s->b);
        } else {
            walk(&w, s);
        }
    }
    if (w.top) kp_free(vm->meta, w.top, sizeof *w.top * (size_t)w.cap_top, 16, NULL);
    if (w.renamed) kp_free(vm->meta, w.renamed, sizeof *w.renamed * (size_t)w.cap_ren, 16, NULL);
    if (w.locals) kp_free(vm->meta, w.locals, sizeof *w.locals * (size_t)w.cap_locals, 16, NULL);
}

void kp_mod_rewrite_expr(C *c, KpNode *expr) {
    MW w;
    memset(&w, 0, sizeof w);
    w.c = c;
    w.system = kp_compile_intern(c, "system");
    w.import = kp_compile_intern(c, "import");
    walk(&w, expr);
    if (w.locals) kp_free(c->vm->meta, w.locals, sizeof *w.locals * (size_t)w.cap_locals, 16, NULL);
}
