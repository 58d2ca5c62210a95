/*
 * ast.c — AST node allocation and debugging dumps (see ast.h).
 *
 * The S-expression form is the one the parser tests compare against and
 * `--dump-ast` prints: literals as written, `-` for an absent child,
 * `(kind children...)` otherwise, e.g.
 *   add (a: Int) -> Int := { return a }
 *   (func add ((param a Int -)) Int (block (return a)))
 */
#include "ast.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

KpNode *kp_ast_new(KpArena *arena, KpNodeKind kind, uint32_t line,
                   uint32_t col) {
    KpNode *n = kp_arena_alloc(arena, sizeof(KpNode), _Alignof(KpNode));
    if (!n) return NULL;
    memset(n, 0, sizeof *n);
    n->kind = (uint16_t)kind;
    n->line = line;
    n->col = col;
    n->depth = 1;
    return n;
}

bool kp_ast_push(KpArena *arena, KpNodeList *list, KpNode *item) {
    /* The capacity is implied by the count: 4, then each power of two. */
    int n = list->count;
    if (n == 0 || (n >= 4 && (n & (n - 1)) == 0)) {
        if (n > (1 << 28)) return false;
        size_t cap = n == 0 ? 4 : (size_t)n * 2;
        KpNode **items =
            kp_arena_alloc(arena, sizeof(KpNode *) * cap, _Alignof(KpNode *));
        if (!items) return false;
        if (n) memcpy(items, list->items, sizeof(KpNode *) * (size_t)n);
        list->items = items;
    }
    list->items[list->count++] = item;
    return true;
}

const char *kp_ast_strdup(KpArena *arena, const char *s, size_t len) {
    char *d = kp_arena_alloc(arena, len + 1, 1);
    if (!d) return NULL;
    if (len) memcpy(d, s, len);
    d[len] = 0;
    return d;
}

static const char *const kind_names[KP_N__COUNT] = {
    [KP_N_INT] = "int",         [KP_N_FLOAT] = "float",
    [KP_N_STRING] = "string",   [KP_N_BOOL] = "bool",
    [KP_N_UNIT] = "unit",       [KP_N_IDENT] = "ident",
    [KP_N_HOLE] = "hole",       [KP_N_LIST] = "list",
    [KP_N_MAP] = "map",         [KP_N_PAIR] = "pair",
    [KP_N_RECORD] = "record",   [KP_N_FIELDINIT] = "fieldinit",
    [KP_N_BINARY] = "binary",   [KP_N_UNARY] = "unary",
    [KP_N_CALL] = "call",       [KP_N_FIELD] = "field",
    [KP_N_INDEX] = "index",     [KP_N_GENERIC] = "generic",
    [KP_N_PIPE] = "pipe",       [KP_N_FUNCLIT] = "funclit",       [KP_N_REFTYPE] = "reftype",
    [KP_N_BLOCK] = "block",     [KP_N_DECL] = "decl",
    [KP_N_ASSIGN] = "assign",   [KP_N_EXPRSTMT] = "exprstmt",
    [KP_N_FUNC] = "func",       [KP_N_OUTPUTS] = "outputs",
    [KP_N_PARAM] = "param",     [KP_N_TYPEDECL] = "typedecl",
    [KP_N_FIELDDECL] = "fielddecl", [KP_N_IF] = "if",
    [KP_N_WHILE] = "while",     [KP_N_FOR] = "for",
    [KP_N_BREAK] = "break",     [KP_N_CONTINUE] = "continue",
    [KP_N_RETURN] = "return",   [KP_N_DEFER] = "defer",
    [KP_N_KEEP] = "keep",       [KP_N_USING] = "using",      [KP_N_TRY] = "try",
};

const char *kp_ast_kind_name(KpNodeKind kind) {
    if ((unsigned)kind >= KP_N__COUNT || !kind_names[kind]) return "?";
    return kind_names[kind];
}

const char *kp_ast_op_name(unsigned op) {
    static const char *const names[] = {
        [KP_OP_NONE] = "=",  [KP_OP_ADD] = "+",   [KP_OP_SUB] = "-",
        [KP_OP_MUL] = "*",   [KP_OP_DIV] = "/",   [KP_OP_MOD] = "%",
        [KP_OP_EQ] = "==",   [KP_OP_NE] = "!=",   [KP_OP_LT] = "<",
        [KP_OP_LE] = "<=",   [KP_OP_GT] = ">",    [KP_OP_GE] = ">=",
        [KP_OP_AND] = "and", [KP_OP_OR] = "or",   [KP_OP_RANGE] = "..",
        [KP_OP_NEG] = "neg", [KP_OP_NOT] = "not", [KP_OP_REF] = "&",
        [KP_OP_MUTREF] = "$&", [KP_OP_MOVE] = "~&",
        [KP_OP_LAND] = "land", [KP_OP_LOR] = "lor", [KP_OP_LXOR] = "lxor",
        [KP_OP_LSL] = "lsl", [KP_OP_LSR] = "lsr", [KP_OP_ASR] = "asr", [KP_OP_LNOT] = "lnot",
    };
    return op < sizeof names / sizeof names[0] ? names[op] : "?";
}

/* ------------------------------------------------------------ writer */

typedef struct Out {
    char *buf;  /* NULL: write to stdout */
    size_t cap, len;
} Out;

static void put(Out *o, const char *s, size_t n) {
    if (!o->buf) {
        fwrite(s, 1, n, stdout);
    } else if (o->len + 1 < o->cap) {
        size_t room = o->cap - 1 - o->len;
        memcpy(o->buf + o->len, s, n < room ? n : room);
    }
    o->len += n;
}

static void puts_(Out *o, const char *s) { put(o, s, strlen(s)); }

static void put_quoted(Out *o, const char *s, size_t n) {
    puts_(o, "\"");
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        char esc[8];
        if (c == '"' || c == '\\') {
            esc[0] = '\\'; esc[1] = (char)c;
            put(o, esc, 2);
        } else if (c == '\n') {
            puts_(o, "\\n");
        } else if (c < 32 || c == 127) {
            snprintf(esc, sizeof esc, "\\x%02X", c);
            puts_(o, esc);
        } else {
            put(o, (const char *)&s[i], 1);
        }
    }
    puts_(o, "\"");
}

static void node(Out *o, const KpNode *n, int indent);

/* Separator before a child: a space, or newline + indent in pretty mode. */
static void sep(Out *o, int indent) {
    if (indent < 0) {
        puts_(o, " ");
    } else {
        puts_(o, "\n");
        for (int i = 0; i < indent + 1; i++) puts_(o, "  ");
    }
}

static int sub(int indent) { return indent < 0 ? indent : indent + 1; }

static void child(Out *o, const KpNode *n, int indent) {
    sep(o, indent);
    node(o, n, sub(indent));
}

static void children(Out *o, const KpNodeList *l, int indent) {
    for (int i = 0; i < l->count; i++) child(o, l->items[i], indent);
}

/* A parenthesized group of a list: ((param ..) (param ..)). */
static void group(Out *o, const KpNodeList *l, int indent) {
    sep(o, indent);
    puts_(o, "(");
    for (int i = 0; i < l->count; i++) {
        if (i) puts_(o, " ");
        node(o, l->items[i], -1);
    }
    puts_(o, ")");
}

static void name_or_dash(Out *o, const char *s) { puts_(o, s ? s : "-"); }

static size_t compact_len(const KpNode *n) {
    char none[1];
    Out m = {none, 0, 0}; /* cap 0: count only */
    node(&m, n, -1);
    return m.len;
}

static void node(Out *o, const KpNode *n, int indent) {
    char tmp[64];
    /* pretty mode: anything short enough stays on one line */
    if (indent >= 0 && n && compact_len(n) + (size_t)indent * 2 <= 72) indent = -1;
    if (!n) {
        puts_(o, "-");
        return;
    }
    switch ((KpNodeKind)n->kind) {
    case KP_N_INT:
        snprintf(tmp, sizeof tmp, "%" PRId64, n->ival);
        puts_(o, tmp);
        return;
    case KP_N_FLOAT:
        snprintf(tmp, sizeof tmp, "%.15g", n->fval);
        if (strtod(tmp, NULL) != n->fval) snprintf(tmp, sizeof tmp, "%.17g", n->fval);
        if (!strpbrk(tmp, ".eEni")) strcat(tmp, ".0");
        puts_(o, tmp);
        return;
    case KP_N_STRING: put_quoted(o, n->str, n->str_len); return;
    case KP_N_BOOL: puts_(o, n->ival ? "true" : "false"); return;
    case KP_N_UNIT: puts_(o, "()"); return;
    case KP_N_IDENT: name_or_dash(o, n->name); return;
    case KP_N_HOLE: puts_(o, "_"); return;
    case KP_N_BREAK: puts_(o, "(break)"); return;
    case KP_N_CONTINUE: puts_(o, "(continue)"); return;
    default: break;
    }
    puts_(o, "(");
    switch ((KpNodeKind)n->kind) {
    case KP_N_BINARY:
    case KP_N_UNARY:
        puts_(o, kp_ast_op_name(n->op));
        if (n->kind == KP_N_UNARY && n->op != KP_OP_NEG && n->op != KP_OP_NOT && n->op != KP_OP_LNOT)
            puts_(o, "x"); /* "&x", "$&x", "~&x": a reference expression */
        child(o, n->a, indent);
        if (n->kind == KP_N_BINARY) child(o, n->b, indent);
        break;
    case KP_N_REFTYPE:
        puts_(o, kp_ast_op_name(n->op));
        puts_(o, "T");
        child(o, n->a, indent);
        break;
    case KP_N_ASSIGN:
        puts_(o, n->op == KP_OP_NONE ? "=" : kp_ast_op_name(n->op));
        if (n->op != KP_OP_NONE) puts_(o, "=");
        child(o, n->a, indent);
        child(o, n->b, indent);
        break;
    case KP_N_FIELDINIT:
        puts_(o, ".");
        name_or_dash(o, n->name);
        child(o, n->a, indent);
        break;
    case KP_N_FIELD:
        puts_(o, ". ");
        node(o, n->a, sub(indent));
        puts_(o, " ");
        name_or_dash(o, n->name);
        break;
    case KP_N_DECL:
    case KP_N_FIELDDECL:
        puts_(o, kp_ast_kind_name((KpNodeKind)n->kind));
        puts_(o, " ");
        name_or_dash(o, n->name);
        child(o, n->a, indent);
        child(o, n->b, indent);
        break;
    case KP_N_PARAM:
        puts_(o, "param ");
        if (n->flags & KP_F_NAMED) puts_(o, ".");
        puts_(o, n->name ? n->name : "_");
        child(o, n->a, indent);
        child(o, n->b, indent);
        break;
    case KP_N_FUNCLIT:
    case KP_N_FUNC:
        puts_(o, n->kind == KP_N_FUNC ? "func " : "funclit ");
        name_or_dash(o, n->name);
        group(o, &n->list, indent);
        child(o, n->a, indent);
        child(o, n->b, indent);
        break;
    case KP_N_TYPEDECL:
        puts_(o, n->flags & KP_F_ABSTRACT ? "abstract " : "type ");
        name_or_dash(o, n->name);
        if (n->list2.count) group(o, &n->list2, indent);
        children(o, &n->list, indent);
        break;
    case KP_N_FOR:
        puts_(o, "for ");
        name_or_dash(o, n->name);
        puts_(o, " ");
        name_or_dash(o, n->name2);
        child(o, n->a, indent);
        child(o, n->b, indent);
        break;
    case KP_N_KEEP:
        puts_(o, "keep");
        child(o, n->a, indent);
        group(o, &n->list, indent);
        child(o, n->b, indent);
        break;
    case KP_N_CALL:
    case KP_N_GENERIC:
        puts_(o, kp_ast_kind_name((KpNodeKind)n->kind));
        child(o, n->a, indent);
        children(o, &n->list, indent);
        break;
    case KP_N_IF:
        puts_(o, "if");
        child(o, n->a, indent);
        child(o, n->b, indent);
        if (n->c) child(o, n->c, indent);
        break;
    case KP_N_RETURN:
        puts_(o, "return");
        if (n->a) child(o, n->a, indent);
        break;
    case KP_N_EXPRSTMT:
        puts_(o, "expr");
        child(o, n->a, indent);
        break;
    default: /* generic: kind, then a, b, c, list, list2 */
        puts_(o, kp_ast_kind_name((KpNodeKind)n->kind));
        if (n->name) { puts_(o, " "); puts_(o, n->name); }
        if (n->a) child(o, n->a, indent);
        if (n->b) child(o, n->b, indent);
        if (n->c) child(o, n->c, indent);
        children(o, &n->list, indent);
        children(o, &n->list2, indent);
        break;
    }
    puts_(o, ")");
}

void kp_ast_dump(const KpNode *n, int indent) {
    Out o = {NULL, 0, 0};
    node(&o, n, indent < 0 ? 0 : indent);
    puts_(&o, "\n");
}

size_t kp_ast_sexpr(const KpNode *n, char *buf, size_t cap) {
    Out o = {buf, cap, 0};
    node(&o, n, -1);
    if (cap) buf[o.len < cap ? o.len : cap - 1] = 0;
    return o.len;
}
