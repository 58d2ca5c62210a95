/*
 * parse.c — the parse driver and the AST builder.
 *
 * Driver.  kp_parse pulls tokens from the re2c lexer and feeds the Lemon
 * parser (grammar.y) through a small filter that owns the newline rule
 * (Go's automatic semicolons): a raw newline becomes a NEWLINE token only
 * when the previous token can end a statement (a name, a literal, `_`,
 * `)`, `]`, `}`, break, continue, return) and the next token is not `|`
 * (a line starting with `|` continues a pipe) nor `else` (`}` newline
 * `else` reads as one if).  Blank lines and comments collapse; `;` is an
 * explicit NEWLINE.  The filter also counts open brackets: more than
 * KP_PARSE_MAX_DEPTH stops the parse with an error, and input that ends
 * inside one marks the diagnostics incomplete (the REPL then reads on).
 *
 * Builder.  The grammar's actions call the kp_pb_* functions below; they
 * create nodes in the arena, decode literals, turn the grammar's cover
 * constructs into the real nodes (see the essay in grammar.y), and compute
 * each node's depth so that no tree gets deeper than KP_PARSE_MAX_DEPTH:
 * the compiler recurses over the AST and must not overflow the C stack.
 *
 * Errors accumulate in the KpDiags; Lemon's `error` token resynchronizes
 * at the next statement.  Nothing here calls malloc: the Lemon parser
 * object (its 12,000-entry stack, about 1 MB) comes from the arena's
 * backing allocator for the length of one parse, then goes back.
 */
#include "parser/parser_int.h"

#include <locale.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "grammar.h"
#include "lexer/lexer.h"

/* ============================================================ nodes */

static void oom(KpParseCtx *c) {
    if (!c->oom) kp_diag_add(c->diags, c->last.line, c->last.col, "out of memory while parsing");
    c->oom = true;
    c->stop = true;
}

KpNode *kp_pb_node(KpParseCtx *c, KpNodeKind kind, KpTok t) {
    if (c->spare) { /* a packed literal's node, as new */
        KpNode *n = c->spare;
        c->spare = NULL;
        memset(n, 0, sizeof *n);
        n->kind = (uint16_t)kind;
        n->line = t.line;
        n->col = t.col;
        n->depth = 1;
        return n;
    }
    KpNode *n = kp_ast_new(c->arena, kind, t.line, t.col);
    if (!n) {
        oom(c);
        memset(&c->dummy, 0, sizeof c->dummy);
        c->dummy.kind = (uint16_t)kind;
        return &c->dummy;
    }
    return n;
}

KpNode *kp_pb_at(KpParseCtx *c, KpNodeKind kind, const KpNode *pos) {
    KpTok t = {0, 0, pos ? pos->line : 0, pos ? pos->col : 0};
    return kp_pb_node(c, kind, t);
}

static void push(KpParseCtx *c, KpNodeList *l, KpNode *item) {
    if (!kp_ast_push(c->arena, l, item)) oom(c);
}

/* A literal that may be packed (see KpPacked in ast.h). */
static bool packable(const KpNode *n) {
    return n && (n->kind == KP_N_INT || n->kind == KP_N_FLOAT) && !n->a && n->depth == 1 && !n->flags;
}

/* Appends a literal's value to the packed run; its node becomes spare. */
static void pack_value(KpParseCtx *c, KpPacked *pk, KpNode *item) {
    if (!pk->last || pk->last->n == KP_PACK_CHUNK) {
        KpPackedChunk *ch = kp_arena_alloc(c->arena, sizeof *ch, _Alignof(KpPackedChunk));
        if (!ch) { oom(c); return; }
        ch->next = NULL;
        ch->n = 0;
        if (pk->last) pk->last->next = ch;
        else pk->first = ch;
        pk->last = ch;
    }
    if (pk->kind == KP_N_INT) pk->last->v[pk->last->n++].i = item->ival;
    else pk->last->v[pk->last->n++].f = item->fval;
    pk->count++;
    if (item != &c->dummy) c->spare = item;
}

/* The items' packed literals back as nodes (in front of any others). */
static void unpack(KpParseCtx *c, KpNode *items) {
    KpPacked *pk = items->packed;
    if (!pk) return;
    items->packed = NULL;
    items->ival = -1;
    KpTok t = {0, 0, pk->line, pk->col};
    for (KpPackedChunk *ch = pk->first; ch && !c->oom; ch = ch->next)
        for (uint32_t j = 0; j < ch->n; j++) {
            KpNode *n = kp_pb_node(c, (KpNodeKind)pk->kind, t);
            if (pk->kind == KP_N_INT) n->ival = ch->v[j].i;
            else n->fval = ch->v[j].f;
            push(c, &items->list, n);
        }
}

static void error_at(KpParseCtx *c, uint32_t line, uint32_t col, const char *msg) {
    kp_diag_add(c->diags, line, col, "%s", msg);
}

void kp_pb_error(KpParseCtx *c, const KpNode *at, const char *msg) {
    error_at(c, at ? at->line : 0, at ? at->col : 0, msg);
}

static uint32_t depth_of(const KpNode *n) { return n ? n->depth : 0; }

KpNode *kp_pb_done(KpParseCtx *c, KpNode *n) {
    uint32_t d = depth_of(n->a);
    if (depth_of(n->b) > d) d = depth_of(n->b);
    if (depth_of(n->c) > d) d = depth_of(n->c);
    for (int i = 0; i < n->list.count; i++)
        if (depth_of(n->list.items[i]) > d) d = depth_of(n->list.items[i]);
    for (int i = 0; i < n->list2.count; i++)
        if (depth_of(n->list2.items[i]) > d) d = depth_of(n->list2.items[i]);
    n->depth = d + 1;
    if (n->depth > KP_PARSE_MAX_DEPTH && !c->depth_reported) {
        c->depth_reported = true;
        c->stop = true;
        kp_pb_error(c, n, "expression nested too deeply");
        kp_diag_note(c->diags, "hint: the limit is %d levels; split it with variables",
                     KP_PARSE_MAX_DEPTH);
    }
    return n;
}

const char *kp_pb_name(KpParseCtx *c, KpTok t) {
    const char *s = kp_ast_strdup(c->arena, c->src->text + t.off, t.len);
    if (!s) {
        oom(c);
        return "?";
    }
    return s;
}

static void pend(KpParseCtx *c, KpNode *n, const KpNode *at, const char *msg) {
    KpPending *p = kp_arena_alloc(c->arena, sizeof *p, _Alignof(KpPending));
    if (!p) {
        oom(c);
        return;
    }
    n->flags |= KP_F_COVER;
    p->node = n;
    p->line = at->line;
    p->col = at->col;
    p->msg = msg;
    p->next = c->pending;
    c->pending = p;
}

static void consume(KpNode *n) {
    if (n) n->flags &= ~(uint32_t)KP_F_COVER;
}

/* True for a node that is an expression (not an item-only construct). */
static bool is_expr(const KpNode *n) {
    switch (n->kind) {
    case KP_N_FIELDINIT: case KP_N_PAIR: case KP_N_PARAM: case KP_N_FUNC:
        return false;
    default:
        return true;
    }
}

/* ========================================================= literals */

static int hexval(int ch) {
    if (ch >= '0' && ch <= '9') return ch - '0';
    if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F') return ch - 'A' + 10;
    return -1;
}

/*
 * Integer literals: decimal, 0x, 0b, with `_` separators.  A literal that
 * does not fit an Int is an error, except 2^63 itself, which is stored as
 * INT64_MIN and is accepted only directly under unary minus (kp_pb_unary),
 * so that -9223372036854775808 can be written.
 */
KpNode *kp_pb_int(KpParseCtx *c, KpTok t) {
    KpNode *n = kp_pb_node(c, KP_N_INT, t);
    const char *s = c->src->text + t.off, *e = s + t.len;
    unsigned base = 10;
    if (t.len > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'b')) {
        base = s[1] == 'x' ? 16 : 2;
        s += 2;
    }
    uint64_t v = 0;
    bool over = false, any = false;
    for (; s < e; s++) {
        if (*s == '_') continue;
        unsigned d = (unsigned)hexval((unsigned char)*s);
        any = true;
        if (v > (UINT64_MAX - d) / base) over = true;
        else v = v * base + d;
    }
    if (!any) {
        error_at(c, t.line, t.col, "invalid integer literal (no digits)");
    } else if (over || v > (uint64_t)INT64_MAX + 1) {
        error_at(c, t.line, t.col, "integer literal too large");
        kp_diag_note(c->diags, "hint: Int is 64-bit; the largest is 9223372036854775807");
    } else if (v == (uint64_t)INT64_MAX + 1) {
        n->ival = INT64_MIN;
        pend(c, n, n, "integer literal too large");
    } else {
        n->ival = (int64_t)v;
    }
    return kp_pb_done(c, n);
}

KpNode *kp_pb_float(KpParseCtx *c, KpTok t) {
    KpNode *n = kp_pb_node(c, KP_N_FLOAT, t);
    char small[128];
    char *buf = t.len < sizeof small ? small : kp_arena_alloc(c->arena, t.len + 1, 1);
    if (!buf) {
        oom(c);
        return n;
    }
    size_t k = 0;
    const char *s = c->src->text + t.off;
    for (uint32_t i = 0; i < t.len; i++)
        if (s[i] != '_') buf[k++] = s[i];
    buf[k] = 0;
    char *end;
    double v = strtod(buf, &end);
    if (*end == '.') { /* a locale with a decimal comma: retry with its point */
        const char *dp = localeconv()->decimal_point;
        if (dp && dp[0] && !dp[1]) {
            *end = dp[0];
            v = strtod(buf, &end);
        }
    }
    if (isinf(v)) error_at(c, t.line, t.col, "float literal out of range");
    n->fval = v;
    return kp_pb_done(c, n);
}

static size_t put_utf8(char *o, uint32_t cp) {
    if (cp < 0x80) { o[0] = (char)cp; return 1; }
    if (cp < 0x800) {
        o[0] = (char)(0xC0 | (cp >> 6));
        o[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (char)(0xE0 | (cp >> 12));
        o[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (char)(0xF0 | (cp >> 18));
    o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    o[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/*
 * Decodes a string literal: \n \t \r \\ \" \0 \xHH (HH <= 7F, as in Rust:
 * strings are UTF-8) and \u{H...} (a Unicode scalar value, 1-6 digits).
 * The token may lack its closing quote (the lexer reported that).
 */
static bool is_name_start(char ch) { return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || ch == '_'; }
static bool is_name_char(char ch) { return is_name_start(ch) || (ch >= '0' && ch <= '9'); }

/* A token for the source bytes p .. p+len inside string token t. */
static KpTok sub_tok(KpParseCtx *c, KpTok t, const char *p, size_t len) {
    KpTok r;
    r.off = (uint32_t)(p - c->src->text);
    r.len = (uint32_t)len;
    r.line = t.line;
    r.col = t.col + (uint32_t)(r.off - t.off);
    return r;
}

/* The place expression of an interpolation `{name.field[2][i]}` starting
 * at *pp (a name start), or NULL when the text is not one.  *pp is left
 * after it. */
static KpNode *interp_place(KpParseCtx *c, KpTok t, const char **pp, const char *e) {
    const char *p = *pp, *q = p;
    while (q < e && is_name_char(*q)) q++;
    KpNode *x = kp_pb_ident(c, sub_tok(c, t, p, (size_t)(q - p)));
    p = q;
    for (;;) {
        if (p + 1 < e && *p == '.' && is_name_start(p[1])) {
            q = p + 1;
            while (q < e && is_name_char(*q)) q++;
            x = kp_pb_field(c, x, sub_tok(c, t, p, 1), sub_tok(c, t, p + 1, (size_t)(q - p - 1)));
            p = q;
        } else if (p < e && *p == '[') {
            q = p + 1;
            KpNode *idx;
            if (q < e && *q >= '0' && *q <= '9') {
                while (q < e && *q >= '0' && *q <= '9') q++;
                idx = kp_pb_int(c, sub_tok(c, t, p + 1, (size_t)(q - p - 1)));
            } else if (q < e && is_name_start(*q)) {
                while (q < e && is_name_char(*q)) q++;
                idx = kp_pb_ident(c, sub_tok(c, t, p + 1, (size_t)(q - p - 1)));
            } else {
                return NULL;
            }
            if (q >= e || *q != ']') return NULL;
            x = kp_pb_index(c, x, sub_tok(c, t, p, 1), idx);
            p = q + 1;
        } else {
            break;
        }
    }
    *pp = p;
    return x;
}

KpNode *kp_pb_string(KpParseCtx *c, KpTok t) {
    KpNode *n = kp_pb_node(c, KP_N_STRING, t);
    KpNode *interp = NULL; /* the interpolated places, when there are any */
    bool stray = false;
    const char *s = c->src->text + t.off + 1, *e = c->src->text + t.off + t.len;
    if (s > e) s = e;
    char *out = kp_arena_alloc(c->arena, (size_t)(e - s) + 1, 1);
    if (!out) {
        oom(c);
        return n;
    }
    size_t k = 0;
    while (s < e && *s != '"') {
        if (*s == '{' && s + 1 < e && is_name_start(s[1])) {
            /* "x = {x}" and "{p.name:>8}": a place, then an optional spec */
            const char *p = s + 1;
            KpNode *x = interp_place(c, t, &p, e);
            const char *spec = p;
            while (x && p < e && *p != '}' && *p != '"' && *p != '{') p++;
            if (x && p < e && *p == '}' && (spec == p || *spec == ':')) {
                out[k++] = '{';
                memcpy(out + k, spec, (size_t)(p - spec));
                k += (size_t)(p - spec);
                out[k++] = '}';
                interp = interp ? kp_pb_items_push(c, interp, x) : kp_pb_items(c, x);
                s = p + 1;
                continue;
            }
        }
        if ((*s == '{' || *s == '}') && s + 1 < e && s[1] == *s) { /* {{ }}: format's escapes */
            out[k++] = *s++;
            out[k++] = *s++;
            continue;
        }
        if (*s == '{' || *s == '}') stray = true;
        if (*s != '\\') {
            out[k++] = *s++;
            continue;
        }
        uint32_t col = t.col + (uint32_t)(s - (c->src->text + t.off));
        s++;
        if (s >= e) break;
        char ch = *s++;
        switch (ch) {
        case 'n': out[k++] = '\n'; break;
        case 't': out[k++] = '\t'; break;
        case 'r': out[k++] = '\r'; break;
        case '\\': out[k++] = '\\'; break;
        case '"': out[k++] = '"'; break;
        case '0': out[k++] = '\0'; break;
        case 'x': {
            int h1 = s < e ? hexval((unsigned char)s[0]) : -1;
            int h2 = s + 1 < e ? hexval((unsigned char)s[1]) : -1;
            if (h1 < 0 || h2 < 0) {
                error_at(c, t.line, col, "invalid \\x escape: it takes two hex digits");
                break;
            }
            s += 2;
            if (h1 > 7) {
                error_at(c, t.line, col, "\\x escape above \\x7F in a string");
                kp_diag_note(c->diags, "hint: strings are UTF-8; write the character as \\u{...}");
                break;
            }
            out[k++] = (char)(h1 * 16 + h2);
            break;
        }
        case 'u': {
            uint32_t cp = 0;
            int digits = 0;
            bool ok = s < e && *s == '{';
            if (ok) s++;
            while (ok && s < e && hexval((unsigned char)*s) >= 0) {
                if (++digits <= 6) cp = cp * 16 + (uint32_t)hexval((unsigned char)*s);
                s++;
            }
            ok = ok && s < e && *s == '}' && digits >= 1 && digits <= 6;
            if (ok) s++;
            if (!ok) {
                error_at(c, t.line, col, "invalid \\u escape: write \\u{1F600} (1 to 6 hex digits)");
            } else if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
                error_at(c, t.line, col, "\\u{...} escape is not a Unicode scalar value");
            } else {
                k += put_utf8(out + k, cp);
            }
            break;
        }
        default:
            if ((unsigned char)ch >= 0x20 && (unsigned char)ch < 0x7F)
                kp_diag_add(c->diags, t.line, col, "invalid escape sequence '\\%c'", ch);
            else
                error_at(c, t.line, col, "invalid escape sequence");
            kp_diag_note(c->diags, "hint: the escapes are \\n \\t \\r \\\\ \\\" \\0 \\xHH \\u{HHHH}");
            break;
        }
    }
    out[k] = 0;
    n->str = out;
    n->str_len = k;
    n = kp_pb_done(c, n);
    if (!interp) return n;
    if (stray)
        error_at(c, t.line, t.col, "a brace in an interpolated string is written {{ or }}");
    /* "a {x} b" is format("a {} b", x) */
    KpNode *callee = kp_pb_node(c, KP_N_IDENT, t);
    callee->name = kp_ast_strdup(c->arena, "format", 6);
    if (!callee->name) { oom(c); callee->name = "format"; }
    KpNode *args = kp_pb_items(c, n);
    for (int i = 0; i < interp->list.count; i++) kp_pb_items_push(c, args, interp->list.items[i]);
    KpNode *call = kp_pb_node(c, KP_N_CALL, t);
    call->a = kp_pb_done(c, callee);
    call->list = args->list;
    return kp_pb_done(c, call);
}

KpNode *kp_pb_bool(KpParseCtx *c, KpTok t, bool v) {
    KpNode *n = kp_pb_node(c, KP_N_BOOL, t);
    n->ival = v;
    return kp_pb_done(c, n);
}

KpNode *kp_pb_ident(KpParseCtx *c, KpTok t) {
    KpNode *n = kp_pb_node(c, KP_N_IDENT, t);
    n->name = kp_pb_name(c, t);
    return kp_pb_done(c, n);
}

KpNode *kp_pb_leaf(KpParseCtx *c, KpNodeKind kind, KpTok t) {
    return kp_pb_done(c, kp_pb_node(c, kind, t));
}

/* ====================================================== expressions */

static bool is_comparison(const KpNode *n) {
    return n->kind == KP_N_BINARY && !(n->flags & KP_F_PAREN) &&
           n->op >= KP_OP_EQ && n->op <= KP_OP_GE;
}

KpNode *kp_pb_binary(KpParseCtx *c, KpOp op, KpNode *a, KpTok optok, KpNode *b) {
    KpNode *n = kp_pb_node(c, KP_N_BINARY, optok);
    if (op >= KP_OP_EQ && op <= KP_OP_GE && is_comparison(a)) {
        error_at(c, optok.line, optok.col, "comparison operators cannot be chained");
        kp_diag_note(c->diags, "hint: write `a < b and b < c`");
    }
    n->op = (uint16_t)op;
    n->a = a;
    n->b = b;
    return kp_pb_done(c, n);
}

KpNode *kp_pb_unary(KpParseCtx *c, KpOp op, KpTok optok, KpNode *a) {
    if (op == KP_OP_NEG && a->kind == KP_N_INT && (a->flags & KP_F_COVER) &&
        !(a->flags & KP_F_PAREN)) {
        /* -9223372036854775808: the one literal that needs the minus */
        consume(a);
        a->line = optok.line;
        a->col = optok.col;
        return a;
    }
    KpNode *n = kp_pb_node(c, KP_N_UNARY, optok);
    n->op = (uint16_t)op;
    n->a = a;
    return kp_pb_done(c, n);
}

KpNode *kp_pb_reftype(KpParseCtx *c, KpOp op, KpTok optok, KpNode *a) {
    KpNode *n = kp_pb_node(c, KP_N_REFTYPE, optok);
    n->op = (uint16_t)op;
    n->a = a;
    return kp_pb_done(c, n);
}

KpNode *kp_pb_pipe(KpParseCtx *c, KpNode *a, KpTok bar, KpNode *b) {
    KpNode *n = kp_pb_node(c, KP_N_PIPE, bar);
    switch (b->kind) {
    case KP_N_CALL: case KP_N_IDENT: case KP_N_FIELD: case KP_N_KEEP:
    case KP_N_GENERIC: case KP_N_INDEX:
        break;
    default:
        kp_pb_error(c, b, "expected a function, a call or `keep` after `|`");
        break;
    }
    n->a = a;
    n->b = b;
    return kp_pb_done(c, n);
}

KpNode *kp_pb_field(KpParseCtx *c, KpNode *a, KpTok dot, KpTok name) {
    KpNode *n = kp_pb_node(c, KP_N_FIELD, dot);
    n->a = a;
    n->name = kp_pb_name(c, name);
    return kp_pb_done(c, n);
}

KpNode *kp_pb_index(KpParseCtx *c, KpNode *a, KpTok br, KpNode *idx) {
    KpNode *n = kp_pb_node(c, KP_N_INDEX, br);
    n->a = a;
    n->b = idx;
    return kp_pb_done(c, n);
}

KpNode *kp_pb_pin_block(KpParseCtx *c, KpNode *call, KpNode *block) {
    if (call->kind != KP_N_CALL || !call->a || call->a->kind != KP_N_IDENT || strcmp(call->a->name, "pin") != 0) {
        kp_pb_error(c, block, "unexpected block after an expression (only `pin(&buf) { ... }` takes a block)");
        return kp_pb_exprstmt(c, call);
    }
    KpNode *d = kp_pb_at(c, KP_N_DECL, call);
    d->name = "(pin)";
    d->b = call;
    kp_pb_done(c, d);
    push(c, &block->list, d);
    memmove(&block->list.items[1], &block->list.items[0], sizeof(KpNode *) * (size_t)(block->list.count - 1));
    block->list.items[0] = d;
    return block;
}

/* v[i, j]: a call of the View builtin #index(v, i, j) (stdlib/view.c), so
 * that a multi-index allocates nothing; as an assignment target it
 * becomes #setindex(v, value, i, j) (kp_pb_assign). */
static KpNode *hidden_callee(KpParseCtx *c, KpTok at, const char *name) {
    KpNode *f = kp_pb_node(c, KP_N_IDENT, at);
    f->name = name;
    return kp_pb_done(c, f);
}

KpNode *kp_pb_index_multi(KpParseCtx *c, KpNode *a, KpTok br, KpNode *first, KpNode *rest) {
    unpack(c, rest);
    KpNode *l = kp_pb_items(c, a);
    kp_pb_items_push(c, l, first);
    for (int i = 0; i < rest->list.count; i++) kp_pb_items_push(c, l, rest->list.items[i]);
    return kp_pb_call(c, hidden_callee(c, br, "#index"), br, l);
}

static bool is_multi_index(const KpNode *n) {
    return n->kind == KP_N_CALL && n->a && n->a->kind == KP_N_IDENT && !strcmp(n->a->name, "#index");
}

/* Items that are never arguments: `k = v` and `sig -> R`. */
static void reject_non_args(KpParseCtx *c, KpNode *items, const char *where) {
    for (int i = 0; i < items->list.count; i++) {
        KpNode *it = items->list.items[i];
        if (it->kind == KP_N_PAIR) {
            kp_pb_error(c, it, "unexpected `key = value` here");
            kp_diag_note(c->diags, "hint: named %s are written `.name = value`", where);
        } else if (it->kind == KP_N_FUNC) {
            kp_pb_error(c, it, "a function signature is only allowed in an `Abstract` type");
        }
    }
}

KpNode *kp_pb_call(KpParseCtx *c, KpNode *callee, KpTok lp, KpNode *items) {
    unpack(c, items);
    KpNode *n = kp_pb_node(c, KP_N_CALL, lp);
    n->a = callee;
    if (callee && callee->kind == KP_N_IDENT && callee->name && (!strcmp(callee->name, "parallel_for") || !strcmp(callee->name, "parallel_map")) &&
        items->list.count >= 1 && items->list.items[0]->kind == KP_N_BINARY && items->list.items[0]->op == KP_OP_RANGE) {
        /* parallel_for(a..b, f) is parallel_for(a, b, f): a range is no
         * value, it only ever names the indices of a loop */
        KpNode *r = items->list.items[0];
        KpNode *split = kp_pb_items(c, r->a);
        kp_pb_items_push(c, split, r->b);
        for (int i = 1; i < items->list.count; i++) kp_pb_items_push(c, split, items->list.items[i]);
        items->list = split->list;
    }
    n->list = items->list;
    reject_non_args(c, items, "arguments");
    for (int i = 0; i < n->list.count; i++) {
        KpNode *it = n->list.items[i];
        if (it->kind == KP_N_PARAM) {
            /* a function declaration's parameters, if `:=` or `->` follows */
            pend(c, n, it, "expected an expression (`name: Type` declares a "
                           "parameter; a function needs `:= { ... }`)");
            break;
        }
    }
    return kp_pb_done(c, n);
}

KpNode *kp_pb_generic(KpParseCtx *c, KpNode *base, KpTok hp, KpNode *items) {
    unpack(c, items);
    KpNode *n = kp_pb_node(c, KP_N_GENERIC, hp);
    n->a = base;
    n->list = items->list;
    reject_non_args(c, items, "generic arguments");
    for (int i = 0; i < n->list.count; i++) {
        KpNode *it = n->list.items[i];
        if (it->kind == KP_N_PARAM) {
            pend(c, n, it, "`.name: Type` declares a generic parameter; it is "
                           "only allowed in `Name#(...) : Type = (...)`");
            break;
        }
    }
    return kp_pb_done(c, n);
}

KpNode *kp_pb_parens(KpParseCtx *c, KpTok lp, KpNode *items) {
    unpack(c, items);
    KpNodeList *l = &items->list;
    KpNode *first = l->items[0];
    if (l->count == 1 && !(items->flags & KP_F_TRAIL) && is_expr(first)) {
        first->flags |= KP_F_PAREN;
        return first;
    }
    int inits = 0, pairs = 0;
    for (int i = 0; i < l->count; i++) {
        inits += l->items[i]->kind == KP_N_FIELDINIT;
        pairs += l->items[i]->kind == KP_N_PAIR;
    }
    KpNode *n;
    if (inits == l->count) {
        n = kp_pb_node(c, KP_N_RECORD, lp);
    } else if (pairs == l->count) {
        n = kp_pb_node(c, KP_N_MAP, lp);
    } else {
        /* a member list for `Name : Type = (...)`, or an error */
        n = kp_pb_node(c, KP_N_RECORD, lp);
        const KpNode *bad = NULL;
        const char *msg = NULL;
        for (int i = 0; i < l->count && !bad; i++) {
            KpNode *it = l->items[i];
            if (it->kind == KP_N_PARAM) {
                bad = it;
                msg = "`.name : Type` declares a field; it is only allowed in "
                      "`Name : Type = ( ... )`";
            } else if (it->kind == KP_N_FUNC) {
                bad = it;
                msg = "a function signature is only allowed in "
                      "`Name : Abstract = ( ... )`";
            }
        }
        if (!bad) {
            bool mixed = inits || pairs;
            for (int i = 1; i < l->count && !bad; i++)
                if (!mixed || l->items[i]->kind != l->items[0]->kind) bad = l->items[i];
            if (!bad) bad = first;
            msg = mixed ? "a parenthesized list is either a record (`.name = "
                          "value`, ...) or a map (`key = value`, ...), not both"
                        : "expected `)` (there are no tuples: use a list "
                          "`[a, b]` or a record `(.a = x, .b = y)`)";
        }
        pend(c, n, bad, msg);
    }
    n->list = *l;
    return kp_pb_done(c, n);
}

KpNode *kp_pb_list(KpParseCtx *c, KpTok lb, KpNode *items) {
    for (int i = 0; i < items->list.count; i++)
        if (!is_expr(items->list.items[i]))
            kp_pb_error(c, items->list.items[i], "expected an expression in a list");
    items->line = lb.line;
    items->col = lb.col;
    items->flags = 0;
    items->ival = 0;
    return kp_pb_done(c, items);
}

/* ============================================================ items */

KpNode *kp_pb_items(KpParseCtx *c, KpNode *first) {
    KpTok t = {0, 0, first ? first->line : 0, first ? first->col : 0};
    KpNode *n = kp_pb_node(c, KP_N_LIST, t);
    if (first) push(c, &n->list, first);
    n->ival = packable(first); /* items so far that are literals of first's kind */
    return n;
}

KpNode *kp_pb_items_push(KpParseCtx *c, KpNode *items, KpNode *item) {
    KpPacked *pk = items->packed;
    if (pk) {
        if (packable(item) && item->kind == pk->kind) {
            pack_value(c, pk, item);
            return items;
        }
        unpack(c, items);
    }
    if (items->list.count > 0 && items->ival == items->list.count && packable(item) &&
        items->list.items[0]->kind == item->kind) {
        items->ival++;
        if (items->ival >= KP_PACK_AFTER && !c->oom) {
            /* a long run of literals: from here on, values only (the
             * first nodes stay in the arena, unused) */
            pk = kp_arena_alloc(c->arena, sizeof *pk, _Alignof(KpPacked));
            if (pk) {
                memset(pk, 0, sizeof *pk);
                pk->kind = item->kind;
                pk->line = items->list.items[0]->line;
                pk->col = items->list.items[0]->col;
                for (int i = 0; i < items->list.count; i++) pack_value(c, pk, items->list.items[i]);
                c->spare = NULL;
                pack_value(c, pk, item);
                items->list.count = 0;
                items->packed = pk;
                return items;
            }
            oom(c);
        }
    } else {
        items->ival = -1; /* not all literals of one kind */
    }
    push(c, &items->list, item);
    return items;
}

KpNode *kp_pb_items_trail(KpParseCtx *c, KpNode *items) {
    (void)c;
    items->flags |= KP_F_TRAIL;
    return items;
}

KpNode *kp_pb_item_typed(KpParseCtx *c, KpNode *who, KpTok colon, KpNode *type,
                         KpNode *dflt) {
    KpNode *n = kp_pb_at(c, KP_N_PARAM, who);
    if (who->kind == KP_N_IDENT && !(who->flags & KP_F_PAREN)) {
        n->name = who->name;
    } else if (who->kind != KP_N_HOLE) {
        error_at(c, colon.line, colon.col, "expected a parameter name before `:`");
    }
    n->a = type;
    n->b = dflt;
    return kp_pb_done(c, n);
}

KpNode *kp_pb_item_named(KpParseCtx *c, KpTok name, KpNode *type, KpNode *dflt) {
    KpNode *n = kp_pb_node(c, KP_N_PARAM, name);
    n->flags |= KP_F_NAMED;
    n->name = kp_pb_name(c, name);
    n->a = type;
    n->b = dflt;
    return kp_pb_done(c, n);
}

KpNode *kp_pb_fieldinit(KpParseCtx *c, KpTok name, KpNode *value) {
    KpNode *n = kp_pb_node(c, KP_N_FIELDINIT, name);
    n->name = kp_pb_name(c, name);
    n->a = value;
    return kp_pb_done(c, n);
}

KpNode *kp_pb_pair(KpParseCtx *c, KpNode *key, KpNode *value) {
    KpNode *n = kp_pb_at(c, KP_N_PAIR, key);
    n->a = key;
    n->b = value;
    return kp_pb_done(c, n);
}

/* Turns a call's arguments into parameters (in place). */
static void to_params(KpParseCtx *c, KpNodeList *l) {
    for (int i = 0; i < l->count; i++) {
        KpNode *it = l->items[i];
        switch (it->kind) {
        case KP_N_PARAM:
            break;
        case KP_N_HOLE:
            it->kind = KP_N_PARAM;
            it->name = NULL;
            break;
        case KP_N_IDENT:
            if (it->flags & KP_F_PAREN) goto bad;
            it->kind = KP_N_PARAM; /* untyped */
            break;
        case KP_N_FIELDINIT: /* `.name = default` */
            it->kind = KP_N_PARAM;
            it->flags |= KP_F_NAMED;
            it->b = it->a;
            it->a = NULL;
            break;
        default:
        bad:
            kp_pb_error(c, it, "expected a parameter (`name: Type`, `.name: Type` or `_`)");
            break;
        }
    }
}

KpNode *kp_pb_funclit(KpParseCtx *c, KpTok lp, KpNode *items, KpNode *ret, KpNode *body) {
    KpNode *n = kp_pb_node(c, KP_N_FUNCLIT, lp);
    if (items) {
        unpack(c, items);
        n->list = items->list;
        for (int i = 0; i < n->list.count; i++) consume(n->list.items[i]);
        to_params(c, &n->list);
    }
    n->a = ret;
    n->b = body;
    return kp_pb_done(c, n);
}

/* A call `name (params)` read as a function head; NULL if it is not one. */
static KpNode *func_head(KpParseCtx *c, KpNode *lhs) {
    if (lhs->kind != KP_N_CALL || lhs->a->kind != KP_N_IDENT ||
        (lhs->flags & KP_F_PAREN))
        return NULL;
    consume(lhs);
    KpNode *f = kp_pb_at(c, KP_N_FUNC, lhs->a);
    f->name = lhs->a->name;
    f->list = lhs->list;
    to_params(c, &f->list);
    return f;
}

KpNode *kp_pb_signature(KpParseCtx *c, KpNode *call, KpNode *ret) {
    KpNode *f = func_head(c, call);
    if (!f) {
        kp_pb_error(c, call, "expected a function signature `name (params) -> Type`");
        f = kp_pb_at(c, KP_N_FUNC, call);
        f->name = "?";
    }
    f->a = ret;
    return kp_pb_done(c, f);
}

KpNode *kp_pb_outputs(KpParseCtx *c, KpTok lp, KpNode *items) {
    unpack(c, items);
    KpNode *n = kp_pb_node(c, KP_N_OUTPUTS, lp);
    n->list = items->list;
    for (int i = 0; i < n->list.count; i++) {
        KpNode *it = n->list.items[i];
        if (it->kind != KP_N_PARAM || !it->name)
            kp_pb_error(c, it, "expected a named output `.name: Type`");
    }
    return kp_pb_done(c, n);
}

/* ======================================================= statements */

KpNode *kp_pb_block(KpParseCtx *c, KpTok lb) {
    return kp_pb_node(c, KP_N_BLOCK, lb);
}

KpNode *kp_pb_block_push(KpParseCtx *c, KpNode *block, KpNode *stmt) {
    push(c, &block->list, stmt);
    return block;
}

KpNode *kp_pb_block_close(KpParseCtx *c, KpNode *block, KpTok lbrace) {
    block->line = lbrace.line;
    block->col = lbrace.col;
    return kp_pb_done(c, block);
}

void kp_pb_top(KpParseCtx *c, KpNode *stmt) {
    push(c, &c->program->list, stmt);
}

KpNode *kp_pb_exprstmt(KpParseCtx *c, KpNode *e) {
    KpNode *n = kp_pb_at(c, KP_N_EXPRSTMT, e);
    n->a = e;
    return kp_pb_done(c, n);
}

static bool is_name(const KpNode *n) {
    return n->kind == KP_N_IDENT && !(n->flags & KP_F_PAREN);
}

KpNode *kp_pb_declare(KpParseCtx *c, KpNode *lhs, KpTok op, KpNode *init) {
    KpNode *n = kp_pb_at(c, KP_N_DECL, lhs);
    if (is_name(lhs)) {
        n->name = lhs->name;
    } else {
        if (lhs->kind == KP_N_CALL) {
            consume(lhs);
            error_at(c, op.line, op.col, "a function body must be a block `{ ... }`");
        } else {
            error_at(c, op.line, op.col, "expected a variable name before `:=`");
        }
        n->name = "?";
    }
    n->b = init;
    return kp_pb_done(c, n);
}

static bool is_kw_type(const KpNode *t, const char *which) {
    return t && is_name(t) && strcmp(t->name, which) == 0;
}

/* `Name : Type = ( members )`, `Name : Abstract = ( sigs )`, generics. */
static KpNode *typedecl(KpParseCtx *c, KpNode *lhs, KpNode *type, KpNode *init) {
    bool abstract = is_kw_type(type, "Abstract");
    KpNode *n = kp_pb_at(c, KP_N_TYPEDECL, lhs);
    if (abstract) n->flags |= KP_F_ABSTRACT;
    if (lhs->kind == KP_N_GENERIC) {
        consume(lhs);
        n->name = is_name(lhs->a) ? lhs->a->name : "?";
        if (!is_name(lhs->a)) kp_pb_error(c, lhs->a, "expected a type name");
        n->list2 = lhs->list;
        to_params(c, &n->list2);
    } else {
        n->name = lhs->name;
    }
    if (!init || init->kind == KP_N_UNIT) return kp_pb_done(c, n);
    if (init->kind != KP_N_RECORD) {
        kp_pb_error(c, init, abstract ? "expected `( signatures )` after `: Abstract =`"
                                      : "expected `( fields )` after `: Type =`");
        return kp_pb_done(c, n);
    }
    consume(init);
    n->list = init->list;
    for (int i = 0; i < n->list.count; i++) {
        KpNode *m = n->list.items[i];
        if (abstract) {
            if (m->kind != KP_N_FUNC)
                kp_pb_error(c, m, "expected a signature `name (params) -> Type`");
        } else if (m->kind == KP_N_PARAM && (m->flags & KP_F_NAMED)) {
            m->kind = KP_N_FIELDDECL;
            m->flags &= ~(uint32_t)KP_F_NAMED;
        } else if (m->kind == KP_N_FIELDINIT) {
            kp_pb_error(c, m, "a field needs a type: `.name : Type = value`");
        } else {
            kp_pb_error(c, m, "expected a field `.name : Type`");
        }
    }
    return kp_pb_done(c, n);
}

KpNode *kp_pb_typed_decl(KpParseCtx *c, KpNode *lhs, KpTok colon, KpNode *type,
                         KpNode *init) {
    bool kw = is_kw_type(type, "Type") || is_kw_type(type, "Abstract");
    if (kw && (lhs->kind == KP_N_GENERIC ||
               (is_name(lhs) && init &&
                (init->kind == KP_N_UNIT || (init->kind == KP_N_RECORD &&
                                             !(init->flags & KP_F_PAREN))))))
        return typedecl(c, lhs, type, init);
    KpNode *n = kp_pb_at(c, KP_N_DECL, lhs);
    if (is_name(lhs)) {
        n->name = lhs->name;
    } else {
        if (lhs->kind == KP_N_GENERIC) consume(lhs);
        error_at(c, colon.line, colon.col,
                 lhs->kind == KP_N_GENERIC ? "generic parameters need `: Type = ( ... )`"
                                           : "expected a variable name before `:`");
        n->name = "?";
    }
    n->a = type;
    n->b = init;
    return kp_pb_done(c, n);
}

KpNode *kp_pb_func(KpParseCtx *c, KpNode *lhs, KpTok op, KpNode *ret,
                   KpNode *body) {
    KpNode *f = func_head(c, lhs);
    if (!f) {
        error_at(c, op.line, op.col,
                 is_name(lhs) && !ret
                     ? "a block is not a value; declare a function as `name () := { ... }`"
                     : "expected `name (params)` before the function body");
        f = kp_pb_at(c, KP_N_FUNC, lhs);
        f->name = "?";
    } else if (!body) {
        error_at(c, op.line, op.col, "expected `:= { ... }` after the function signature");
    }
    f->a = ret;
    f->b = body;
    return kp_pb_done(c, f);
}

KpNode *kp_pb_assign(KpParseCtx *c, KpNode *target, KpTok eq, KpOp op,
                     KpNode *value) {
    if (is_multi_index(target)) {
        /* v[i, j] = x  ->  #setindex(v, x, i, j); v[i, j] += x reads it first */
        KpNode *l = kp_pb_items(c, target->list.items[0]);
        kp_pb_items_push(c, l, op == KP_OP_NONE ? value : kp_pb_binary(c, op, target, eq, value));
        for (int i = 1; i < target->list.count; i++) kp_pb_items_push(c, l, target->list.items[i]);
        return kp_pb_exprstmt(c, kp_pb_call(c, hidden_callee(c, eq, "#setindex"), eq, l));
    }
    KpNode *n = kp_pb_node(c, KP_N_ASSIGN, eq);
    switch (target->kind) {
    case KP_N_IDENT: case KP_N_FIELD: case KP_N_INDEX:
        break;
    case KP_N_UNARY:
        /* `~&n += 1` inside a function literal: n is taken by the literal
         * (the compiler turns the target into n; elsewhere it is an error) */
        if (target->op == KP_OP_MOVE && target->a && target->a->kind == KP_N_IDENT) break;
        /* fallthrough */
    default:
        kp_pb_error(c, target, "cannot assign to this expression");
        kp_diag_note(c->diags, "hint: assign to a variable, a field `p.x` or an element `xs[i]`");
        break;
    }
    n->op = (uint16_t)op;
    n->a = target;
    n->b = value;
    return kp_pb_done(c, n);
}

KpNode *kp_pb_if(KpParseCtx *c, KpTok kw, KpNode *cond, KpNode *then,
                 KpNode *els) {
    KpNode *n = kp_pb_node(c, KP_N_IF, kw);
    n->a = cond;
    n->b = then;
    n->c = els;
    return kp_pb_done(c, n);
}

KpNode *kp_pb_while(KpParseCtx *c, KpTok kw, KpNode *cond, KpNode *body) {
    KpNode *n = kp_pb_node(c, KP_N_WHILE, kw);
    n->a = cond;
    n->b = body;
    return kp_pb_done(c, n);
}

KpNode *kp_pb_for(KpParseCtx *c, KpTok kw, KpTok v1, KpTok *v2, KpNode *iter,
                  KpNode *body) {
    KpNode *n = kp_pb_node(c, KP_N_FOR, kw);
    n->name = kp_pb_name(c, v1);
    n->name2 = v2 ? kp_pb_name(c, *v2) : NULL;
    n->a = iter;
    n->b = body;
    return kp_pb_done(c, n);
}

KpNode *kp_pb_return(KpParseCtx *c, KpTok kw, KpNode *value) {
    KpNode *n = kp_pb_node(c, KP_N_RETURN, kw);
    n->a = value;
    return kp_pb_done(c, n);
}

KpNode *kp_pb_defer(KpParseCtx *c, KpTok kw, KpNode *stmt) {
    KpNode *n = kp_pb_node(c, KP_N_DEFER, kw);
    n->a = stmt;
    return kp_pb_done(c, n);
}

KpNode *kp_pb_keep(KpParseCtx *c, KpTok kw, KpNode *value, KpNode *owners,
                   KpNode *alloc) {
    KpNode *n = kp_pb_node(c, KP_N_KEEP, kw);
    if (!is_name(value) && value->kind != KP_N_HOLE)
        kp_pb_error(c, value, "`keep` takes a variable name or `_`");
    n->a = value;
    if (owners) n->list = owners->list;
    n->b = alloc;
    return kp_pb_done(c, n);
}

KpNode *kp_pb_try(KpParseCtx *c, KpTok kw, KpNode *body, KpTok var, KpNode *handler) {
    KpNode *n = kp_pb_node(c, KP_N_TRY, kw);
    n->a = body;
    n->name = kp_pb_name(c, var);
    n->b = handler;
    return kp_pb_done(c, n);
}

KpNode *kp_pb_using(KpParseCtx *c, KpTok kw, KpNode *alloc, KpNode *body) {
    KpNode *n = kp_pb_node(c, KP_N_USING, kw);
    n->a = alloc;
    n->b = body;
    return kp_pb_done(c, n);
}

/* =========================================================== errors */

static const char *token_desc(int kind) {
    switch (kind) {
    case TK_NEWLINE: return "end of line";
    case TK_IDENT: return "name";
    case TK_INT: case TK_FLOAT: return "number";
    case TK_STRING: return "string";
    default: return NULL;
    }
}

void kp_pb_syntax_error(KpParseCtx *c, void *parser, int kind, KpTok t) {
    if (c->stop) return;
    if (kind == 0) {
        c->diags->incomplete = true;
        error_at(c, t.line, t.col, "unexpected end of input");
        return;
    }
    /* What the parser could have taken here: at most two hints. */
    static const struct { int kind; const char *what; } hints[] = {
        {TK_INT, "an expression"}, {TK_LBRACE, "`{`"}, {TK_RPAREN, "`)`"},
        {TK_RBRACKET, "`]`"},      {TK_IDENT, "a name"}, {TK_NEWLINE, "end of line"},
        {TK_RBRACE, "`}`"},        {TK_CATCH, "`catch`"},
    };
    /* the input ends after a try block: the REPL asks for its catch */
    if (kind == TK_NEWLINE && c->last_newline && kp_grammar_accepts(parser, TK_CATCH)) c->wants_catch = true;
    const char *exp[2] = {NULL, NULL};
    int ne = 0;
    for (size_t i = 0; i < sizeof hints / sizeof hints[0] && ne < 2; i++) {
        if (hints[i].kind == TK_IDENT && exp[0] && strcmp(exp[0], "an expression") == 0)
            continue; /* a name is an expression */
        if (kp_grammar_accepts(parser, hints[i].kind)) exp[ne++] = hints[i].what;
    }
    char expect_buf[64];
    const char *expect = NULL;
    if (ne == 1) expect = exp[0];
    if (ne == 2) {
        snprintf(expect_buf, sizeof expect_buf, "%s or %s", exp[0], exp[1]);
        expect = expect_buf;
    }
    const char *desc = token_desc(kind);
    const char *text = c->src->text + t.off;
    int len = t.len > 24 ? 24 : (int)t.len;
    char what[64];
    if (kind == TK_NEWLINE) snprintf(what, sizeof what, "end of line");
    else if (kind == TK_STRING) snprintf(what, sizeof what, "string");
    else if (desc) snprintf(what, sizeof what, "%s '%.*s%s'", desc, len, text,
                            t.len > 24 ? "..." : "");
    else snprintf(what, sizeof what, "'%.*s'", len, text);
    if (expect)
        kp_diag_add(c->diags, t.line, t.col, "unexpected %s, expected %s", what, expect);
    else
        kp_diag_add(c->diags, t.line, t.col, "unexpected %s", what);
}

void kp_pb_overflow(KpParseCtx *c) {
    if (!c->stop)
        kp_diag_add(c->diags, c->last.line, c->last.col,
                    "nesting too deep (the parser's stack is full)");
    c->stop = true;
}

/* =========================================================== driver */

/* Can a statement end with this token (then a newline after it ends it)? */
static bool ends_statement(int kind) {
    switch (kind) {
    case TK_IDENT: case TK_INT: case TK_FLOAT: case TK_STRING: case TK_TRUE:
    case TK_FALSE: case TK_HOLE: case TK_ELLIPSIS: case TK_RPAREN:
    case TK_RBRACKET: case TK_RBRACE: case TK_BREAK: case TK_CONTINUE:
    case TK_RETURN:
        return true;
    default:
        return false;
    }
}

static KpTok to_tok(const KpToken *t) {
    KpTok k = {(uint32_t)t->off, (uint32_t)t->len, t->line, t->col};
    return k;
}

static bool only_blanks(const KpSource *src, size_t from) {
    for (size_t i = from; i < src->len; i++) {
        char ch = src->text[i];
        if (ch != ' ' && ch != '\t' && ch != '\r' && ch != '\n') return false;
    }
    return true;
}

static void report_bad(KpParseCtx *c, const KpToken *t) {
    unsigned char ch = (unsigned char)c->src->text[t->off];
    if (ch > 32 && ch < 127)
        kp_diag_add(c->diags, t->line, t->col, "unexpected character '%c'", ch);
    else
        kp_diag_add(c->diags, t->line, t->col, "unexpected character (byte 0x%02X)", ch);
}

static void feed(KpParseCtx *c, void *parser, int kind, KpTok t) {
    c->last = t;
    kp_grammar_feed(parser, kind, t);
}

KpNode *kp_parse(KpSource *src, KpArena *arena, KpDiags *diags) {
    KpParseCtx c;
    memset(&c, 0, sizeof c);
    c.src = src;
    c.arena = arena;
    c.diags = diags;
    c.program = kp_ast_new(arena, KP_N_BLOCK, 1, 1);
    if (!c.program) return NULL;
    if (src->len >= UINT32_MAX) {
        kp_diag_add(diags, 1, 1, "source too large (4 GiB or more)");
        return c.program;
    }
    /* the parser's stack (about 1 MB) is working memory: it comes from the
     * arena's backing allocator and is given back when the parse ends, so
     * that only the AST stays in the arena */
    KpAllocator *work = arena->backing;
    size_t parser_size = kp_grammar_parser_size();
    void *parser = kp_alloc(work, parser_size, KP_ALIGN_MAX, NULL);
    if (!parser) {
        kp_diag_add(diags, 1, 1, "out of memory while parsing");
        return c.program;
    }
    kp_grammar_init(parser, &c);

    KpLexer lx;
    kp_lexer_init(&lx, src);
    int prev = 0;              /* last token fed to the parser */
    bool nl_pending = false;   /* a newline after a statement-ending token */
    KpTok nl_tok = {0, 0, 0, 0};
    size_t bad_end = SIZE_MAX; /* end of the last bad byte (to merge runs) */
    int parens = 0, braces = 0;
    for (;;) {
        KpToken t = kp_lexer_next(&lx);
        if (t.kind == KP_TOK_BAD) {
            if (t.off != bad_end) report_bad(&c, &t);
            bad_end = t.off + t.len;
            continue;
        }
        if (t.kind == TK_NEWLINE) {
            if (ends_statement(prev) && !nl_pending) {
                nl_pending = true;
                nl_tok = to_tok(&t);
            }
            continue;
        }
        if (t.kind == KP_TOK_SEMI) {
            nl_pending = false;
            if (prev != TK_NEWLINE) {
                feed(&c, parser, TK_NEWLINE, to_tok(&t));
                prev = TK_NEWLINE;
                if (parens == 0) kp_grammar_rearm(parser);
            }
            if (c.stop) break;
            continue;
        }
        if (nl_pending) {
            nl_pending = false;
            if (t.kind != TK_PIPE && t.kind != TK_ELSE && t.kind != TK_CATCH) {
                c.last_newline = t.kind == KP_TOK_EOF;
                feed(&c, parser, TK_NEWLINE, nl_tok);
                c.last_newline = false;
                prev = TK_NEWLINE;
                if (parens == 0) kp_grammar_rearm(parser);
                if (c.stop) break;
            }
        }
        if (t.kind == KP_TOK_EOF) {
            /* Only an input whose every token was accepted can be mended
             * by more lines: after an error (a stray `)` inside `if x {`)
             * it is reported at once, not continued. */
            int errors_before_end = diags->count;
            if ((parens > 0 || braces > 0) && errors_before_end == 0) diags->incomplete = true;
            feed(&c, parser, 0, to_tok(&t));
            if (errors_before_end > 0) {
                diags->incomplete = false;
                /* an open bracket's "unexpected end of input" after an
                 * error inside it is that error's echo */
                if ((parens > 0 || braces > 0) && diags->count > errors_before_end)
                    diags->count = errors_before_end;
            }
            if (c.wants_catch && errors_before_end == 1) diags->incomplete = true;
            break;
        }
        if (t.err) {
            kp_diag_add(diags, t.line, t.col, "%s", t.err);
            /* strings cannot span lines, so an unterminated one is an
             * error even at the end of the input (not "incomplete") */
            (void)only_blanks;
        }
        switch (t.kind) {
        case TK_LPAREN: case TK_LBRACKET: case TK_HASHPAREN:
            if (++parens > KP_PARSE_MAX_DEPTH) {
                kp_diag_add(diags, t.line, t.col, "expression nested too deeply");
                kp_diag_note(diags, "hint: the limit is %d levels of brackets",
                             KP_PARSE_MAX_DEPTH);
                c.stop = true;
            }
            break;
        case TK_LBRACE:
            if (++braces > KP_PARSE_MAX_DEPTH) {
                kp_diag_add(diags, t.line, t.col, "blocks nested too deeply");
                kp_diag_note(diags, "hint: the limit is %d levels of `{`",
                             KP_PARSE_MAX_DEPTH);
                c.stop = true;
            }
            break;
        case TK_RPAREN: case TK_RBRACKET:
            if (parens > 0) parens--;
            break;
        case TK_RBRACE:
            if (braces > 0) braces--;
            break;
        default:
            break;
        }
        if (c.stop) break;
        feed(&c, parser, t.kind, to_tok(&t));
        prev = t.kind;
        if (c.stop || diags->count > 100) break;
    }
    /* Constructs only a later rule could have accepted, never accepted. */
    if (!c.stop) {
        for (KpPending *p = c.pending; p; p = p->next) {
            if (p->node->flags & KP_F_COVER) {
                p->node->flags &= ~(uint32_t)KP_F_COVER;
                kp_diag_add(diags, p->line, p->col, "%s", p->msg);
            }
        }
    }
    kp_free(work, parser, parser_size, KP_ALIGN_MAX, NULL);
    return c.program;
}
