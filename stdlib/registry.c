/*
 * registry.c — registers the builtin tables (builtins.h) with the VM.
 *
 * Design.  Each stdlib module exports one table of KpBuiltin rows; this
 * file lists the tables and turns every row into a native overload: the
 * parameter text gives each parameter its mode, name, default and (when it
 * names one concrete type) its run-time type; the result text gives the
 * overload's declared output type, which selects among overloads by the
 * expected type (`a : ArenaAllocator = init(&page)`).  The splitting of a
 * row's parameter text is public (kp_builtin_params) so the compiler's
 * passes read the same rows the same way.
 */
#include <stdlib.h>
#include <string.h>

#include "stdlib.h"
#include "builtins.h"

const KpBuiltin *const kp_builtin_modules[] = {
    kp_builtins_core,
    kp_builtins_memory,
    kp_builtins_string,
    kp_builtins_list,
    kp_builtins_map,
    kp_builtins_math,
    kp_builtins_io,
    kp_builtins_format,
    kp_builtins_time,
    kp_builtins_random,
    kp_builtins_binary,
    kp_builtins_view,
    kp_builtins_parallel,
    NULL,
};

static const char *skip_ws(const char *p) {
    while (*p == ' ') p++;
    return p;
}

static size_t trim_len(const char *s, size_t n) {
    while (n && s[n - 1] == ' ') n--;
    return n;
}

int kp_builtin_params(const KpBuiltin *b, KpBuiltinParam *out, int max) {
    const char *p = skip_ws(b->params ? b->params : "");
    int n = 0;
    while (*p) {
        if (n >= max) return -1;
        KpBuiltinParam *q = &out[n];
        memset(q, 0, sizeof *q);
        if (*p == '.') { q->named = 1; p++; }
        q->name = p;
        while (*p == '_' || (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9')) p++;
        q->name_len = (size_t)(p - q->name);
        if (!q->name_len) return -1;
        p = skip_ws(p);
        if (*p != ':') return -1;
        p = skip_ws(p + 1);
        q->mode = KP_PM_VALUE;
        if (p[0] == '$' && p[1] == '&') { q->mode = KP_PM_MUTREF; p += 2; }
        else if (p[0] == '&') { q->mode = KP_PM_REF; p++; }
        q->type = p;
        int depth = 0;
        while (*p && (depth || (*p != ',' && *p != '='))) {
            if (*p == '(') depth++;
            else if (*p == ')') depth--;
            p++;
        }
        q->type_len = trim_len(q->type, (size_t)(p - q->type));
        if (!q->type_len) return -1;
        if (*p == '=') {
            p = skip_ws(p + 1);
            q->def = p;
            while (*p && *p != ',') p++;
            q->def_len = trim_len(q->def, (size_t)(p - q->def));
            if (!q->def_len) return -1;
        }
        if (*p == ',') p = skip_ws(p + 1);
        n++;
    }
    return n;
}

static bool text_is(const char *s, size_t n, const char *lit) {
    return strlen(lit) == n && memcmp(s, lit, n) == 0;
}

/* The run-time type named by a type text, or NULL when the text is a
 * union, `Any` or a type variable (left to the native to check). */
static KpType *runtime_type(KpVM *vm, const char *s, size_t n) {
    if (memchr(s, '|', n)) return NULL;
    const char *hash = memchr(s, '#', n);
    size_t base = hash ? (size_t)(hash - s) : n;
    if (text_is(s, base, "List")) return vm->t_list;
    if (text_is(s, base, "HashMap")) return vm->t_map;
    if (hash) return NULL;
    static const struct { const char *name; size_t off; } named[] = {
        {"Int", offsetof(KpVM, t_int)}, {"Float", offsetof(KpVM, t_float)},
        {"Bool", offsetof(KpVM, t_bool)}, {"String", offsetof(KpVM, t_string)},
        {"()", offsetof(KpVM, t_unit)}, {"Type", offsetof(KpVM, t_type)},
        {"Function", offsetof(KpVM, t_func)}, {"HeapAllocation", offsetof(KpVM, t_heap)},
        {"System.Memory", offsetof(KpVM, t_sysmem)}, {"System.Fs", offsetof(KpVM, t_sysfs)},
        {"System.Random", offsetof(KpVM, t_sysrandom)}, {"System.Env", offsetof(KpVM, t_sysenv)},
        {"Random", offsetof(KpVM, t_random)},
        {"AllocStats", offsetof(KpVM, t_allocstats)}, {"Error", offsetof(KpVM, t_error)}, {"Float32", offsetof(KpVM, t_float32)},
        {"Writer", offsetof(KpVM, t_bin[1])}, {"Reader", offsetof(KpVM, t_bin[2])},
        {"View", offsetof(KpVM, t_bin[3])}, {"Pin", offsetof(KpVM, t_bin[4])},
    };
    for (size_t i = 0; i < sizeof named / sizeof named[0]; i++)
        if (text_is(s, n, named[i].name)) return *(KpType **)((char *)vm + named[i].off);
    for (int k = 0; k < KP_AK__COUNT; k++)
        if (text_is(s, n, kp_alloc_kind_name(k))) return vm->t_akind[k];
    return NULL;
}

static bool parse_default(KpVM *vm, const char *s, size_t n, KpValue *out) {
    char buf[64];
    if (n >= sizeof buf) return false;
    memcpy(buf, s, n);
    buf[n] = 0;
    if (n >= 2 && buf[0] == '"' && buf[n - 1] == '"') { /* a string without escapes, immortal */
        KpString *str = kp_str_new(vm, vm->meta, buf + 1, n - 2);
        if (!str) return false;
        str->h.flags |= KP_OF_IMMORTAL;
        *out = kp_ptr(KP_T_STR, str);
        return true;
    }
    if (!strcmp(buf, "true") || !strcmp(buf, "false")) { *out = kp_bool(buf[0] == 't'); return true; }
    if (!strcmp(buf, "()")) { *out = kp_unit(); return true; }
    char *end;
    if (!strchr(buf, '.') && !strchr(buf, 'e')) {
        long long v = strtoll(buf, &end, 10);
        if (*end) return false;
        *out = kp_int(v);
        return true;
    }
    double d = strtod(buf, &end);
    if (*end) return false;
    *out = kp_float(d);
    return true;
}

#define KP_BUILTIN_MAX_PARAMS 16

static bool register_row(KpVM *vm, const KpBuiltin *b) {
    {
        KpBuiltinParam ps[KP_BUILTIN_MAX_PARAMS];
        int n = kp_builtin_params(b, ps, KP_BUILTIN_MAX_PARAMS);
        if (n < 0 || ((b->flags & KP_BF_VARIADIC) && n == 0)) { vm->init_failed = true; return false; }
        bool variadic = (b->flags & KP_BF_VARIADIC) != 0;
        int fixed = variadic ? n - 1 : n;
        uint8_t modes[KP_BUILTIN_MAX_PARAMS];
        for (int i = 0; i < fixed; i++) modes[i] = ps[i].mode;
        KpOverload *ov = kp_func_add_native(vm, b->name, b->fn, fixed, modes, variadic, variadic ? ps[n - 1].mode : 0);
        if (!ov) { vm->init_failed = true; return false; }
        if (b->flags & KP_BF_SPECIAL) ov->func->special = 1;
        ov->by_result = (b->flags & KP_BF_BY_RESULT) != 0;
        if (b->flags & KP_BF_BORROWS) ov->result_borrows = 1;
        if (b->flags & KP_BF_STORES) ov->stores_arg = 1;
        ov->view_op = (b->flags & KP_BF_VIEW_TYPED) ? 1 : (b->flags & KP_BF_VIEW_SAME) ? 2 : (b->flags & KP_BF_VINDEX) ? 3
                      : (b->flags & KP_BF_VSETINDEX) ? 4 : 0;
        ov->ret = runtime_type(vm, b->result, strlen(b->result));
        for (int i = 0; i < fixed; i++) {
            KpParam *p = &ov->params[i];
            if (!text_is(ps[i].name, ps[i].name_len, "_")) p->name = kp_intern(vm, ps[i].name, ps[i].name_len);
            p->named = ps[i].named;
            p->type = runtime_type(vm, ps[i].type, ps[i].type_len);
            if (ps[i].def && !parse_default(vm, ps[i].def, ps[i].def_len, &p->def)) { vm->init_failed = true; return false; }
        }
    }
    return true;
}

bool kp_builtins_register(KpVM *vm, const KpBuiltin *table) {
    for (const KpBuiltin *b = table; b->name; b++)
        if (!register_row(vm, b)) return false;
    return true;
}

void kp_stdlib_register(KpVM *vm) {
    for (int i = 0; kp_builtin_modules[i]; i++)
        if (!kp_builtins_register(vm, kp_builtin_modules[i])) return;
}

const char *kp_builtin_name_with(uint32_t flag) {
    for (int i = 0; kp_builtin_modules[i]; i++)
        for (const KpBuiltin *b = kp_builtin_modules[i]; b->name; b++)
            if (b->flags & flag) return b->name;
    return NULL;
}

/* The values that are names (the capabilities), then the constants. */
static const struct { const char *name; uint8_t tag; } builtin_values[] = {
    {"system", KP_T_SYSTEM},
    {NULL, 0},
};

bool kp_builtin_value(KpVM *vm, const char *name, KpValue *out, KpType **type) {
    for (int i = 0; builtin_values[i].name; i++)
        if (!strcmp(builtin_values[i].name, name)) {
            *out = (KpValue){.tag = builtin_values[i].tag};
            *type = vm->t_system;
            return true;
        }
    if (!kp_builtin_const(name, out)) return false;
    *type = vm->t_float;
    return true;
}

/* Registers every row named `name` (vm->lib_lookup: the library is
 * registered a name at a time, as scripts use it). */
bool kp_stdlib_lookup(KpVM *vm, const char *name) {
    bool any = false;
    for (int i = 0; kp_builtin_modules[i]; i++)
        for (const KpBuiltin *b = kp_builtin_modules[i]; b->name; b++)
            if (b->name[0] == name[0] && strcmp(b->name, name) == 0) {
                if (!register_row(vm, b)) return any;
                any = true;
            }
    return any;
}
