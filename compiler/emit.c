/*
 * emit.c — `keep --emit=ownership`: the program written back as Keep
 * source with every operation the compiler inserts spelled out.
 *
 * Design.  A walk over the AST that mirrors the compiler's ownership rules
 * (compile.c) without generating code, so it has no effect on the VM:
 *
 *  - every variable that may own a value gets, right after its
 *    declaration, the seed's `#defer x | deinit(_)`: deinitialization at
 *    scope exit *is* a defer registered at the declaration, which is why
 *    deinits and user defers interleave last-in-first-out and run on every
 *    exit path (end of block, return, break, continue, an error);
 *  - a by-value parameter that may own its argument gets the same line at
 *    the top of the function body;
 *  - a consuming use of a variable that may hold a movable value is written
 *    as an explicit move `~&x`;
 *  - a pipe's intermediate values are temporaries: the line says when they
 *    are deinitialized;
 *  - `keep` statements get the reference counts they set up.
 *
 * "May own" uses the same static knowledge as the compiler: literals,
 * constructors and annotations tell the type; Int, Float, Bool and the
 * sized integers never own anything and get no deinit line.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "../parser/ast.h"

typedef struct Out {
    KpWriteFn write;
    void *ud;
} Out;

typedef struct Var {
    const char *name;
    int kind; /* 0 unknown, 1 scalar, 2 movable, 3 string */
} Var;

typedef struct Em {
    Out out;
    Var vars[512];
    int nvars;
    int indent;
    const char *kept[64]; /* variables a `keep` statement names */
    int nkept;
} Em;

static void scan_kept(Em *e, const KpNode *n) {
    if (!n || n->kind == KP_N_FUNC) return;
    if (n->kind == KP_N_KEEP && n->a && n->a->kind == KP_N_IDENT && e->nkept < 64) e->kept[e->nkept++] = n->a->name;
    scan_kept(e, n->a);
    scan_kept(e, n->b);
    scan_kept(e, n->c);
    for (int i = 0; i < n->list.count; i++) scan_kept(e, n->list.items[i]);
}

static bool is_kept(Em *e, const char *name) {
    for (int i = 0; i < e->nkept; i++)
        if (!strcmp(e->kept[i], name)) return true;
    return false;
}

static void put(Em *e, const char *s) { e->out.write(e->out.ud, s, strlen(s)); }
static void putn(Em *e, const char *s, size_t n) { e->out.write(e->out.ud, s, n); }
static void putf(Em *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void putf(Em *e, const char *fmt, ...) {
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    putn(e, buf, (size_t)n < sizeof buf ? (size_t)n : sizeof buf - 1);
}
static void nl(Em *e) {
    put(e, "\n");
    for (int i = 0; i < e->indent; i++) put(e, "    ");
}

static const char *scalar_names[] = {"Int", "Int64", "Float", "Bool", "Int8", "Int16", "Int32",
                                     "UInt8", "UInt16", "UInt32", "UInt64", "Byte", "()", NULL};

static int kind_of_type(const KpNode *t) {
    if (!t) return 0;
    if (t->kind == KP_N_UNIT) return 1;
    if (t->kind == KP_N_REFTYPE) return 1; /* references own nothing */
    if (t->kind == KP_N_IDENT) {
        for (int i = 0; scalar_names[i]; i++)
            if (!strcmp(t->name, scalar_names[i])) return 1;
        if (!strcmp(t->name, "String")) return 3;
        return 2;
    }
    return 2;
}

static Var *find(Em *e, const char *name) {
    for (int i = e->nvars - 1; i >= 0; i--)
        if (!strcmp(e->vars[i].name, name)) return &e->vars[i];
    return NULL;
}

static void add_var(Em *e, const char *name, int kind) {
    if (e->nvars < 512) e->vars[e->nvars++] = (Var){name, kind};
}

static int kind_of_expr(Em *e, const KpNode *n) {
    if (!n) return 0;
    switch (n->kind) {
    case KP_N_INT: case KP_N_FLOAT: case KP_N_BOOL: case KP_N_UNIT: return 1;
    case KP_N_STRING: return 3;
    case KP_N_LIST: case KP_N_MAP: case KP_N_RECORD: return 2;
    case KP_N_BINARY:
        if (n->op >= KP_OP_EQ && n->op <= KP_OP_OR) return 1;
        {
            int a = kind_of_expr(e, n->a), b = kind_of_expr(e, n->b);
            if (a == 1 && b == 1) return 1;
            if (a == 3 || b == 3) return 3;
            return 0;
        }
    case KP_N_UNARY:
        if (n->op == KP_OP_NEG || n->op == KP_OP_NOT) return 1;
        if (n->op == KP_OP_REF || n->op == KP_OP_MUTREF) return 1;
        return kind_of_expr(e, n->a);
    case KP_N_IDENT: {
        Var *v = find(e, n->name);
        return v ? v->kind : 0;
    }
    case KP_N_CALL:
        if (n->a && n->a->kind == KP_N_IDENT && n->a->name[0] >= 'A' && n->a->name[0] <= 'Z') return 2;
        if (n->a && n->a->kind == KP_N_IDENT &&
            (!strcmp(n->a->name, "len") || !strcmp(n->a->name, "int") || !strcmp(n->a->name, "float") ||
             !strcmp(n->a->name, "ord") || !strcmp(n->a->name, "has")))
            return 1;
        if (n->a && n->a->kind == KP_N_IDENT && (!strcmp(n->a->name, "str") || !strcmp(n->a->name, "substr")))
            return 3;
        return 0;
    default: return 0;
    }
}

static void expr(Em *e, const KpNode *n, bool consume);
static void stmt(Em *e, const KpNode *n);

static const char *op_text(int op) {
    switch (op) {
    case KP_OP_ADD: return "+"; case KP_OP_SUB: return "-"; case KP_OP_MUL: return "*";
    case KP_OP_DIV: return "/"; case KP_OP_MOD: return "%"; case KP_OP_EQ: return "==";
    case KP_OP_NE: return "!="; case KP_OP_LT: return "<"; case KP_OP_LE: return "<=";
    case KP_OP_GT: return ">"; case KP_OP_GE: return ">="; case KP_OP_AND: return "and";
    case KP_OP_OR: return "or"; case KP_OP_RANGE: return "..";
    case KP_OP_NEG: return "-"; case KP_OP_NOT: return "not "; case KP_OP_REF: return "&";
    case KP_OP_MUTREF: return "$&"; case KP_OP_MOVE: return "~&";
    }
    return "?";
}

static void string_lit(Em *e, const KpNode *n) {
    put(e, "\"");
    for (size_t i = 0; i < n->str_len; i++) {
        unsigned char c = (unsigned char)n->str[i];
        switch (c) {
        case '"': put(e, "\\\""); break;
        case '\\': put(e, "\\\\"); break;
        case '\n': put(e, "\\n"); break;
        case '\t': put(e, "\\t"); break;
        case '\r': put(e, "\\r"); break;
        case 0: put(e, "\\0"); break;
        default:
            if (c < 32 || c == 127) putf(e, "\\x%02x", c);
            else putn(e, (const char *)&n->str[i], 1);
        }
    }
    put(e, "\"");
}

static void list(Em *e, const KpNodeList *l, bool consume) {
    for (int i = 0; i < l->count; i++) {
        if (i) put(e, ", ");
        expr(e, l->items[i], consume);
    }
}

static void type_expr(Em *e, const KpNode *n) { expr(e, n, false); }

/* A consuming use of a variable that may hold a movable value is a move. */
static void expr(Em *e, const KpNode *n, bool consume) {
    if (!n) return;
    switch (n->kind) {
    case KP_N_INT: putf(e, "%lld", (long long)n->ival); break;
    case KP_N_FLOAT: {
        char buf[64];
        snprintf(buf, sizeof buf, "%.17g", n->fval);
        if (!strpbrk(buf, ".eEn")) strcat(buf, ".0");
        put(e, buf);
        break;
    }
    case KP_N_STRING: string_lit(e, n); break;
    case KP_N_BOOL: put(e, n->ival ? "true" : "false"); break;
    case KP_N_UNIT: put(e, "()"); break;
    case KP_N_IDENT: {
        Var *v = find(e, n->name);
        if (consume && v && (v->kind == 0 || v->kind == 2)) put(e, "~&");
        put(e, n->name);
        break;
    }
    case KP_N_HOLE: put(e, "_"); break;
    case KP_N_LIST: put(e, "["); list(e, &n->list, true); put(e, "]"); break;
    case KP_N_MAP:
        put(e, "(");
        for (int i = 0; i < n->list.count; i++) {
            if (i) put(e, ", ");
            expr(e, n->list.items[i]->a, true);
            put(e, " = ");
            expr(e, n->list.items[i]->b, true);
        }
        put(e, n->list.count ? ")" : "=)");
        break;
    case KP_N_PAIR: expr(e, n->a, true); put(e, " = "); expr(e, n->b, true); break;
    case KP_N_RECORD: put(e, "("); list(e, &n->list, true); put(e, ")"); break;
    case KP_N_FIELDINIT: putf(e, ".%s = ", n->name); expr(e, n->a, true); break;
    case KP_N_BINARY:
        if (n->flags & KP_F_PAREN) put(e, "(");
        expr(e, n->a, false);
        putf(e, n->op == KP_OP_RANGE ? "%s" : " %s ", op_text(n->op));
        expr(e, n->b, false);
        if (n->flags & KP_F_PAREN) put(e, ")");
        break;
    case KP_N_UNARY: put(e, op_text(n->op)); expr(e, n->a, false); break;
    case KP_N_CALL: {
        expr(e, n->a, false);
        put(e, "(");
        /* arguments: a by-value parameter moves a variable, a reference
         * parameter borrows it; which one is decided per overload at run
         * time, so plain variables are written as they are */
        bool push = n->a && n->a->kind == KP_N_IDENT && !strcmp(n->a->name, "push");
        for (int i = 0; i < n->list.count; i++) {
            if (i) put(e, ", ");
            expr(e, n->list.items[i], push && i == 1); /* push takes its value */
        }
        put(e, ")");
        break;
    }
    case KP_N_FIELD: expr(e, n->a, false); putf(e, ".%s", n->name); break;
    case KP_N_INDEX: expr(e, n->a, false); put(e, "["); expr(e, n->b, false); put(e, "]"); break;
    case KP_N_GENERIC: expr(e, n->a, false); put(e, "#("); list(e, &n->list, false); put(e, ")"); break;
    case KP_N_PIPE:
        expr(e, n->a, false);
        put(e, " | ");
        expr(e, n->b, false);
        break;
    case KP_N_REFTYPE: put(e, op_text(n->op)); type_expr(e, n->a); break;
    case KP_N_KEEP:
        put(e, "keep ");
        expr(e, n->a, false);
        if (n->list.count) { put(e, " with "); list(e, &n->list, false); }
        if (n->b) { put(e, " using "); expr(e, n->b, false); }
        break;
    default: put(e, "…"); break;
    }
}

static void block(Em *e, const KpNode *b);

static void defer_line(Em *e, const char *name) {
    nl(e);
    putf(e, "#defer %s | deinit(_)", name);
}

static void params(Em *e, const KpNodeList *ps) {
    for (int i = 0; i < ps->count; i++) {
        const KpNode *p = ps->items[i];
        if (i) put(e, ", ");
        if (p->kind == KP_N_HOLE || !p->name) { put(e, "_"); if (p->a) { put(e, ": "); type_expr(e, p->a); } continue; }
        putf(e, "%s%s", (p->flags & KP_F_NAMED) ? "." : "", p->name);
        if (p->a) { put(e, ": "); type_expr(e, p->a); }
        if (p->b) { put(e, " = "); expr(e, p->b, true); }
    }
}

static void func(Em *e, const KpNode *n) {
    putf(e, "%s (", n->name);
    params(e, &n->list);
    put(e, ")");
    if (n->a) {
        put(e, " -> ");
        if (n->a->kind == KP_N_OUTPUTS) { put(e, "("); params(e, &n->a->list); put(e, ")"); }
        else type_expr(e, n->a);
    }
    if (!n->b) return;
    put(e, " := {");
    int save = e->nvars;
    int save_kept = e->nkept;
    scan_kept(e, n->b);
    e->indent++;
    for (int i = 0; i < n->list.count; i++) {
        const KpNode *p = n->list.items[i];
        if (p->kind != KP_N_PARAM || !p->name) continue;
        bool ref = p->a && (p->a->kind == KP_N_REFTYPE ||
                            (p->a->kind == KP_N_UNARY && (p->a->op == KP_OP_REF || p->a->op == KP_OP_MUTREF)));
        int k = ref ? 1 : kind_of_type(p->a);
        add_var(e, p->name, k);
        if (k != 1) {
            nl(e);
            putf(e, "#defer %s | deinit(_)   -- a by-value parameter owns its argument", p->name);
        }
    }
    if (n->a && n->a->kind == KP_N_OUTPUTS)
        for (int i = 0; i < n->a->list.count; i++)
            add_var(e, n->a->list.items[i]->name ? n->a->list.items[i]->name : "_", kind_of_type(n->a->list.items[i]->a));
    for (int i = 0; i < n->b->list.count; i++) {
        nl(e);
        stmt(e, n->b->list.items[i]);
    }
    e->indent--;
    e->nvars = save;
    e->nkept = save_kept;
    nl(e);
    put(e, "}");
}

static void typedecl(Em *e, const KpNode *n) {
    put(e, n->name);
    if (n->list2.count) { put(e, "#("); params(e, &n->list2); put(e, ")"); }
    putf(e, " : %s = (", (n->flags & KP_F_ABSTRACT) ? "Abstract" : "Type");
    e->indent++;
    for (int i = 0; i < n->list.count; i++) {
        const KpNode *m = n->list.items[i];
        nl(e);
        if (m->kind == KP_N_FIELDDECL) {
            putf(e, ".%s", m->name);
            if (m->a) { put(e, " : "); type_expr(e, m->a); }
            if (m->b) { put(e, " = "); expr(e, m->b, true); }
        } else if (m->kind == KP_N_FUNC) {
            func(e, m);
        }
    }
    e->indent--;
    nl(e);
    put(e, ")");
}

static void stmt(Em *e, const KpNode *n) {
    if (!n) return;
    switch (n->kind) {
    case KP_N_DECL: {
        put(e, n->name);
        if (n->a) { put(e, " : "); type_expr(e, n->a); }
        if (n->b) {
            put(e, n->a ? " = " : " := ");
            expr(e, n->b, true);
        }
        int k = n->a ? kind_of_type(n->a) : kind_of_expr(e, n->b);
        add_var(e, n->name, k);
        if (is_kept(e, n->name)) {
            put(e, "   -- kept below: it lives in a keep box from here on");
            nl(e);
            putf(e, "#defer %s | release(_)   -- the box's count: handed to the owners by keep", n->name);
        } else if (k != 1) {
            defer_line(e, n->name);
        }
        break;
    }
    case KP_N_ASSIGN:
        expr(e, n->a, false);
        if (n->op == KP_OP_NONE) {
            put(e, " = ");
            expr(e, n->b, true);
            if (n->a->kind == KP_N_IDENT) {
                Var *v = find(e, n->a->name);
                if (v && v->kind != 1) put(e, "   -- the old value is deinitialized first");
            }
        } else {
            putf(e, " %s= ", op_text(n->op));
            expr(e, n->b, false);
        }
        break;
    case KP_N_EXPRSTMT:
        expr(e, n->a, false);
        if (n->a && n->a->kind == KP_N_PIPE) put(e, "   -- each stage's value is deinitialized after the next call returns, unless moved on");
        break;
    case KP_N_FUNC: func(e, n); break;
    case KP_N_TYPEDECL: typedecl(e, n); break;
    case KP_N_BLOCK: block(e, n); break;
    case KP_N_IF:
        put(e, "if ");
        expr(e, n->a, false);
        put(e, " ");
        block(e, n->b);
        if (n->c) {
            put(e, " else ");
            if (n->c->kind == KP_N_IF) stmt(e, n->c);
            else block(e, n->c);
        }
        break;
    case KP_N_WHILE:
        put(e, "while ");
        expr(e, n->a, false);
        put(e, " ");
        block(e, n->b);
        break;
    case KP_N_FOR: {
        putf(e, "for %s", n->name);
        if (n->name2) putf(e, ", %s", n->name2);
        put(e, " in ");
        expr(e, n->a, false);
        put(e, " ");
        int save = e->nvars;
        bool consume = n->a->kind == KP_N_UNARY && n->a->op == KP_OP_MOVE;
        add_var(e, n->name, consume ? 0 : 1);
        if (n->name2) add_var(e, n->name2, consume ? 0 : 1);
        if (consume) {
            put(e, "{");
            e->indent++;
            nl(e);
            putf(e, "#defer %s | deinit(_)   -- each element is moved out of the list", n->name2 ? n->name2 : n->name);
            for (int i = 0; n->b && i < n->b->list.count; i++) { nl(e); stmt(e, n->b->list.items[i]); }
            e->indent--;
            nl(e);
            put(e, "}");
        } else {
            block(e, n->b);
        }
        e->nvars = save;
        break;
    }
    case KP_N_BREAK: put(e, "break   -- runs the defers above, innermost first"); break;
    case KP_N_CONTINUE: put(e, "continue   -- runs the defers of the loop body"); break;
    case KP_N_RETURN:
        put(e, "return");
        if (n->a) { put(e, " "); expr(e, n->a, true); }
        put(e, "   -- runs every defer above, innermost first");
        break;
    case KP_N_DEFER: put(e, "#defer "); stmt(e, n->a); break;
    case KP_N_KEEP: {
        expr(e, n, false);
        int owners = n->list.count;
        if (owners == 0) put(e, "   -- manual: ends with deinit(...); reported at exit if never ended");
        else if (owners == 1) put(e, "   -- a box with refcount 1: deinitialized after its owner's deinit");
        else putf(e, "   -- a box with refcount %d: each owner's deinit drops one count", owners);
        break;
    }
    case KP_N_USING:
        put(e, "using ");
        expr(e, n->a, false);
        put(e, " ");
        block(e, n->b);
        break;
    default: expr(e, n, false); break;
    }
}

static void block(Em *e, const KpNode *b) {
    put(e, "{");
    int save = e->nvars;
    e->indent++;
    for (int i = 0; b && i < b->list.count; i++) {
        nl(e);
        stmt(e, b->list.items[i]);
    }
    e->indent--;
    e->nvars = save;
    nl(e);
    put(e, "}");
}

void kp_emit_ownership(const KpNode *program, KpWriteFn write, void *ud) {
    static const char head[] =
        "-- the program with the operations Keep inserts written out:\n"
        "-- `#defer x | deinit(_)` is each variable's deinit at scope exit,\n"
        "-- `~&x` is a move; references, scalars and moved-from values need nothing.\n";
    Em *e = NULL;
    Em local;
    e = &local;
    memset(e, 0, sizeof *e);
    e->out = (Out){write, ud};
    put(e, head);
    scan_kept(e, program);
    for (int i = 0; program && i < program->list.count; i++) {
        stmt(e, program->list.items[i]);
        put(e, "\n");
    }
}
