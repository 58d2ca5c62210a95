/*
 * fmt.c — the Keep formatter: the canonical layout of a program.
 *
 * Design.  A token-based formatter, like gofmt's printer before it had an
 * AST: the re2c lexer, in its comment mode (KpLexer.comments), gives every
 * token with its line and column, comments included; the layout is decided
 * from the tokens alone, and the text of each token (strings, comments,
 * numbers) is copied byte for byte.  Formatting never moves a token to
 * another line except to split a bracket group that is too long, and never
 * joins lines, so Keep's newline rules (a newline ends a statement unless
 * the line cannot end there) see the same statements; indentation and
 * spaces between tokens carry no meaning in Keep, so changing them keeps
 * the program.  The rules:
 *
 *  - Indentation: 4 spaces per open bracket level, counted per line (a line
 *    that opens several brackets indents the next by one level), a line
 *    that starts with closers back at the level of the line that opened
 *    them; a line that continues a statement (it starts with `|`, or the
 *    line before ended with a binary operator) one level more.  Inside
 *    `( )` and `[ ]` whose opener is not the last token of its line
 *    (`f(a,`), a line indented deeper than that keeps its indentation (an
 *    item aligned under the bracket).
 *  - Spaces: one around binary operators, `:=`, `=`, `->`, `|` and after
 *    keywords and commas; none before `,` `;` `)` `]`, after `.`, `&`,
 *    `$&`, `~&` and unary minus, around `..`, before `[` of an index or
 *    `#(`.  Where the community writes both (`f (x)` declaring a function
 *    and `f(x)` calling one; `( .x : Int )` and `(.x = 1)`; `.x : Int` and
 *    `n: Int`) the source's choice is kept, reduced to one space or none.
 *  - Comments stay on their line: a full-line comment takes the indentation
 *    of the code around it; a trailing comment keeps its column (so aligned
 *    comments stay aligned) unless the code now reaches it.
 *  - At most one blank line in a row; none at the start or the end; no
 *    trailing spaces; the file ends with one newline.
 *  - A line longer than KP_FMT_WIDTH columns that holds a `( ... )` or
 *    `[ ... ]` group with commas is split, one item per line (inside
 *    brackets a newline separates items as a comma does), then its lines
 *    are split again if they are still too long.
 *
 * A file with a line `-- fmt: off` (at the start of the line) is left as
 * it is: for text kept verbatim on purpose (copies of design snippets).
 *
 * Safety.  A file that does not lex or parse is not formatted (the error is
 * reported).  Before anything is written, the output is lexed again and
 * must give the same tokens (ignoring the commas and newlines a split
 * trades), and must parse; otherwise KP_FMT_INTERNAL is returned and the
 * file is left alone.  Two tokens are never written together when their
 * concatenation would lex otherwise (`- -x` does not become a comment).
 */
#include "fmt.h"

#include <stdio.h>
#include <string.h>

#include "../alloc/alloc.h"
#include "../lexer/lexer.h"
#include "../parser/ast.h"
#include "grammar.h"

#define KP_FMT_WIDTH 100
#define INDENT 4

typedef struct Tok {
    int kind;
    size_t off, len;
    uint32_t line, col;
} Tok;

typedef struct Fmt {
    const char *src;
    size_t srclen;
    KpArena arena;
    Tok *toks;
    int ntoks;
    /* the output */
    char *out;
    size_t len, cap;
    bool oom;
    /* the bracket stack: for each open bracket, the indentation its
     * contents get and the indentation of the line that opened it */
    struct {
        int inner, outer;
        int brace; /* a `{` (statements), not `(` `[` `#(` (items) */
        int hanging; /* tokens follow the opener on its line: `f(a,` */
    } stack[1280]; /* KP_PARSE_MAX_DEPTH brackets fit */
    int depth;
    int comment_col; /* output column of the last trailing comment, or -1 */
} Fmt;

/* ------------------------------------------------------------ output */

static void put(Fmt *f, const char *s, size_t n) {
    if (f->oom) return;
    if (f->len + n + 1 > f->cap) {
        size_t cap = f->cap ? f->cap * 2 : 4096;
        while (cap < f->len + n + 1) cap *= 2;
        char *p = kp_arena_alloc(&f->arena, cap, 1);
        if (!p) { f->oom = true; return; }
        if (f->len) memcpy(p, f->out, f->len);
        f->out = p;
        f->cap = cap;
    }
    memcpy(f->out + f->len, s, n);
    f->len += n;
}

static void put_spaces(Fmt *f, int n) {
    for (int i = 0; i < n; i++) put(f, " ", 1);
}

/* ------------------------------------------------------------ tokens */

static const char *text(Fmt *f, const Tok *t) { return f->src + t->off; }

static bool is_open(int k) { return k == TK_LPAREN || k == TK_LBRACKET || k == TK_HASHPAREN || k == TK_LBRACE; }
static bool is_close(int k) { return k == TK_RPAREN || k == TK_RBRACKET || k == TK_RBRACE; }

/* A token after which an expression may end (so a following `-` is binary
 * and a following `[` is an index). */
static bool ends_operand(int k) {
    return k == TK_IDENT || k == TK_INT || k == TK_FLOAT || k == TK_STRING || k == TK_RPAREN || k == TK_RBRACKET ||
           k == TK_RBRACE || k == TK_HOLE || k == TK_TRUE || k == TK_FALSE;
}

/* An operator after which a line continues the statement. */
static bool is_binary_op(int k) {
    switch (k) {
    case TK_PLUS: case TK_STAR: case TK_SLASH: case TK_PERCENT: case TK_EQ: case TK_NE: case TK_LT:
    case TK_LE: case TK_GT: case TK_GE: case TK_AND: case TK_OR: case TK_DECLARE: case TK_ASSIGN:
    case TK_PLUSEQ: case TK_MINUSEQ: case TK_STAREQ: case TK_SLASHEQ: case TK_PERCENTEQ: case TK_ARROW:
    case TK_PIPE: case TK_MINUS: case TK_LAND: case TK_LOR: case TK_LXOR: case TK_LSL: case TK_LSR: case TK_ASR:
        return true;
    default:
        return false;
    }
}

static int lex_all(Fmt *f, const KpSource *src, Tok **out, int *n) {
    KpLexer lx;
    kp_lexer_init(&lx, src);
    lx.comments = true;
    int cap = 256, cnt = 0;
    Tok *toks = kp_arena_alloc(&f->arena, sizeof(Tok) * (size_t)cap, 8);
    if (!toks) return KP_FMT_NO_MEMORY;
    for (;;) {
        KpToken t = kp_lexer_next(&lx);
        if (t.err || t.kind == KP_TOK_BAD) return KP_FMT_NO_PARSE;
        if (t.kind == KP_TOK_EOF) break;
        if (cnt == cap) {
            Tok *p = kp_arena_alloc(&f->arena, sizeof(Tok) * (size_t)cap * 2, 8);
            if (!p) return KP_FMT_NO_MEMORY;
            memcpy(p, toks, sizeof(Tok) * (size_t)cap);
            toks = p;
            cap *= 2;
        }
        toks[cnt++] = (Tok){t.kind, t.off, t.len, t.line, t.col};
    }
    *out = toks;
    *n = cnt;
    return KP_FMT_OK;
}

/* ------------------------------------------------------------ spacing */

/* Spaces (0 or 1) between token a and the token b after it on one line;
 * `before` is the token before a (NULL at the start of the line), `gap`
 * whether the source had blanks between them. */
static int space_between(Fmt *f, const Tok *before, const Tok *a, const Tok *b, bool gap) {
    int A = a->kind, B = b->kind;
    if (B == TK_COMMA || B == KP_TOK_SEMI) return 0;
    if (A == TK_COMMA || A == KP_TOK_SEMI) return 1;
    if (A == TK_LPAREN || A == TK_LBRACKET || A == TK_HASHPAREN) {
        if ((A == TK_LPAREN || A == TK_HASHPAREN) && B == TK_RPAREN) return 0;
        if (A == TK_LBRACKET && B == TK_RBRACKET) return 0;
        return gap;
    }
    if (B == TK_RPAREN || B == TK_RBRACKET) return gap;
    if (A == TK_DOT) return 0;
    if (B == TK_DOT) return ends_operand(A) ? 0 : 1;
    if (A == TK_RANGE || B == TK_RANGE) return 0;
    if (A == TK_ELLIPSIS || B == TK_ELLIPSIS) return gap;
    if (B == TK_HASHPAREN) return 0;
    if (B == TK_LPAREN) return ends_operand(A) && A != TK_RBRACE ? gap : 1;
    if (B == TK_LBRACKET) return ends_operand(A) && A != TK_RBRACE ? 0 : 1;
    if (A == TK_LBRACE) return B == TK_RBRACE ? gap : 1;
    if (B == TK_COLON) return -1; /* the source's spaces, kept (aligned fields) */
    if (B == TK_ASSIGN || B == TK_DECLARE) return -2; /* kept, at least one */
    if (A == TK_AMP || A == TK_MUTREF || A == TK_MOVE) return 0;
    if (A == TK_MINUS && !(before && ends_operand(before->kind))) return 0; /* unary */
    (void)f;
    return 1;
}

/* Whether a and b written together lex as a and b. */
static bool glue_ok(Fmt *f, const Tok *a, const Tok *b) {
    char buf[256];
    if (a->len + b->len >= sizeof buf) return true; /* long tokens: strings, names */
    memcpy(buf, text(f, a), a->len);
    memcpy(buf + a->len, text(f, b), b->len);
    KpSource s = {"", buf, a->len + b->len};
    KpLexer lx;
    kp_lexer_init(&lx, &s);
    lx.comments = true;
    KpToken t1 = kp_lexer_next(&lx);
    KpToken t2 = kp_lexer_next(&lx);
    KpToken t3 = kp_lexer_next(&lx);
    return t1.kind == a->kind && t1.len == a->len && t2.kind == b->kind && t2.len == b->len && t3.kind == KP_TOK_EOF;
}

/* The spaces written between a and b (on one line). */
static int spaces(Fmt *f, const Tok *before, const Tok *a, const Tok *b) {
    size_t end = a->off + a->len;
    bool same_line = a->line == b->line;
    bool gap = !same_line || b->off > end;
    int sp = space_between(f, before, a, b, gap);
    if (sp < 0) { /* kept from the source: its blanks, at most 40 */
        int least = sp == -2 ? 1 : 0;
        sp = 0;
        if (same_line)
            for (size_t k = end; k < b->off && sp < 40 && (f->src[k] == ' ' || f->src[k] == '\t'); k++) sp++;
        if (sp == 0 && !same_line) sp = 1;
        if (sp < least) sp = least;
    }
    if (sp == 0 && !glue_ok(f, a, b)) sp = 1;
    return sp;
}

/* ------------------------------------------------------------ lines */

/* Writes tokens [from, to) of one line, after `indent` columns; a trailing
 * comment (index `comment`, or -1) at its column.  Lines too wide are
 * split at the commas of their first bracket group. */
static void emit_line(Fmt *f, int indent, int from, int to, int comment, int depth_budget);

static size_t line_width(Fmt *f, int indent, int from, int to) {
    size_t w = (size_t)indent;
    for (int i = from; i < to; i++) {
        w += f->toks[i].len;
        if (i + 1 < to) {
            const Tok *before = i > from ? &f->toks[i - 1] : NULL;
            w += (size_t)spaces(f, before, &f->toks[i], &f->toks[i + 1]);
        }
    }
    return w;
}

static void write_tokens(Fmt *f, int indent, int from, int to, int comment) {
    put_spaces(f, indent);
    size_t col = (size_t)indent;
    for (int i = from; i < to; i++) {
        const Tok *t = &f->toks[i];
        put(f, text(f, t), t->len);
        col += t->len;
        if (i + 1 < to) {
            const Tok *n = &f->toks[i + 1];
            const Tok *before = i > from ? &f->toks[i - 1] : NULL;
            int sp = spaces(f, before, t, n);
            put_spaces(f, sp);
            col += (size_t)sp;
        }
    }
    if (comment >= 0) {
        const Tok *c = &f->toks[comment];
        size_t want = c->col - 1; /* its column in the source, 0-based */
        size_t at = from < to ? (want > col ? want : col + 1) : (size_t)indent;
        put_spaces(f, (int)(at - col));
        put(f, text(f, c), c->len);
        if (from < to) f->comment_col = (int)at;
    }
    put(f, "\n", 1);
}

/* The first ( ... ) or [ ... ] group in [from, to) that closes on the line
 * and has a comma at its own level; its bracket indexes, or false. */
static bool find_split(Fmt *f, int from, int to, int *open, int *close) {
    for (int i = from; i < to; i++) {
        int k = f->toks[i].kind;
        if (k != TK_LPAREN && k != TK_LBRACKET) continue;
        int d = 0;
        bool comma = false;
        for (int j = i; j < to; j++) {
            int kj = f->toks[j].kind;
            if (is_open(kj)) d++;
            else if (is_close(kj) && --d == 0) {
                if (comma) {
                    *open = i;
                    *close = j;
                    return true;
                }
                break;
            } else if (kj == TK_COMMA && d == 1) {
                /* a record's fields: the items start with `.` */
                comma = j + 1 < to && f->toks[j + 1].kind == TK_DOT && f->toks[i + 1].kind == TK_DOT;
                if (!comma) break;
            }
        }
    }
    return false;
}

static void emit_line(Fmt *f, int indent, int from, int to, int comment, int depth_budget) {
    int open, close;
    size_t w = line_width(f, indent, from, to);
    if (w <= KP_FMT_WIDTH || depth_budget <= 0 || !find_split(f, from, to, &open, &close)) {
        write_tokens(f, indent, from, to, comment);
        return;
    }
    emit_line(f, indent, from, open + 1, -1, depth_budget - 1);
    int start = open + 1, d = 0;
    for (int j = open + 1; j <= close; j++) {
        int kj = f->toks[j].kind;
        if (j == close || (kj == TK_COMMA && d == 0)) {
            if (j > start) emit_line(f, indent + INDENT, start, j, -1, depth_budget - 1);
            start = j + 1;
        } else if (is_open(kj)) {
            d++;
        } else if (is_close(kj)) {
            d--;
        }
    }
    emit_line(f, indent, close, to, comment, depth_budget - 1);
}

/* ------------------------------------------------------------ the file */

#define MAX_STACK ((int)(sizeof ((Fmt *)0)->stack / sizeof ((Fmt *)0)->stack[0]))

/* The indentation of the contents of the innermost of `depth` brackets. */
static int inner_of(Fmt *f, int depth) {
    if (depth <= 0) return 0;
    if (depth > MAX_STACK) depth = MAX_STACK;
    return f->stack[depth - 1].inner;
}

static void layout(Fmt *f, size_t start_off) {
    int i = 0;
    uint32_t last_line = 0;   /* source line of the last line written */
    bool continues = false;   /* the last code line ended with an operator */
    bool wrote = false;
    int trail_src_col = -1, trail_out_col = 0; /* the last trailing comment */
    while (i < f->ntoks) {
        if (f->toks[i].kind == TK_NEWLINE) { i++; continue; }
        if (f->toks[i].off < start_off) { i++; continue; }
        /* one source line: tokens [i, e), a trailing comment maybe */
        uint32_t line = f->toks[i].line;
        int e = i;
        while (e < f->ntoks && f->toks[e].kind != TK_NEWLINE) e++;
        int code_end = e, comment = -1;
        if (f->toks[e - 1].kind == KP_TOK_COMMENT) {
            comment = e - 1;
            code_end = e - 1;
        }
        if (wrote && line > last_line + 1) put(f, "\n", 1); /* blank lines: one */
        /* indentation: closers at the start go back to their opener's */
        int lead = 0;
        while (i + lead < code_end && is_close(f->toks[i + lead].kind)) lead++;
        int indent = inner_of(f, f->depth);
        if (lead) {
            int d = f->depth - lead;
            if (d < 0) d = 0;
            if (d < f->depth && d < MAX_STACK) indent = f->stack[d].outer;
        }
        bool is_code = code_end > i;
        bool in_items = f->depth > 0 && f->depth <= MAX_STACK && f->stack[f->depth - 1].brace == 0;
        bool may_align = in_items && f->stack[f->depth - 1].hanging;
        if (is_code && (continues || f->toks[i].kind == TK_PIPE) && !lead && !in_items) indent++;
        /* the brackets this line leaves open */
        int line_indent = indent;
        int base_inner = -1;
        int line_depth = f->depth; /* the depth this line starts at */
        for (int k = i; k < code_end; k++) {
            int kind = f->toks[k].kind;
            if (is_open(kind)) {
                if (f->depth < MAX_STACK) {
                    /* every bracket opened on this line indents its
                     * contents by one level from this line */
                    if (base_inner < 0) base_inner = line_indent + 1;
                    f->stack[f->depth].inner = base_inner;
                    f->stack[f->depth].outer = line_indent;
                    f->stack[f->depth].brace = kind == TK_LBRACE;
                    f->stack[f->depth].hanging = k + 1 < code_end;
                }
                f->depth++;
            } else if (is_close(kind) && f->depth > 0) {
                f->depth--;
                if (f->depth < line_depth && f->depth < MAX_STACK) {
                    /* a bracket of an earlier line closed here (the end of
                     * a parameter list laid over lines): brackets opened
                     * after it indent from the line that opened it */
                    line_depth = f->depth;
                    line_indent = f->stack[f->depth].outer;
                    base_inner = -1;
                }
            }
        }
        if (is_code) {
            /* inside ( ) or [ ], a line indented deeper than its level
             * keeps its indentation (aligned under an opening bracket) */
            int cols = indent * INDENT;
            if (may_align && !lead) {
                int vis = 0;
                for (size_t k = f->toks[i].off; k > 0 && (f->src[k - 1] == ' ' || f->src[k - 1] == '\t'); k--)
                    vis += f->src[k - 1] == '\t' ? INDENT : 1;
                if (vis > cols && vis <= 80) cols = vis;
            }
            emit_line(f, cols, i, code_end, comment, 8);
            int lastk = f->toks[code_end - 1].kind;
            continues = is_binary_op(lastk) && !is_open(lastk);
        } else if (trail_src_col >= 0 && line == last_line + 1 && f->toks[i].col == (uint32_t)trail_src_col) {
            /* a comment continuing the trailing comment above it: aligned */
            put_spaces(f, trail_out_col);
            put(f, text(f, &f->toks[i]), f->toks[i].len);
            put(f, "\n", 1);
        } else {
            /* a full-line comment: the indentation of the code around it */
            int ind = inner_of(f, f->depth);
            bool items = f->depth > 0 && f->depth <= MAX_STACK && f->stack[f->depth - 1].brace == 0;
            if (continues && !items) ind++;
            write_tokens(f, ind * INDENT, i, i, comment);
            trail_src_col = -1;
        }
        if (is_code) {
            trail_src_col = -1;
            if (comment >= 0) {
                trail_src_col = (int)f->toks[comment].col;
                trail_out_col = f->comment_col;
            }
        }
        wrote = true;
        last_line = line;
        i = e;
    }
}

/* The tokens of `s` without newlines and commas, compared with those of
 * the input: the layout may only trade those. */
static bool same_tokens(Fmt *f, const char *out, size_t outlen) {
    KpSource s = {"", out, outlen};
    KpLexer lx;
    kp_lexer_init(&lx, &s);
    lx.comments = true;
    int i = 0;
    for (;;) {
        KpToken t = kp_lexer_next(&lx);
        if (t.kind == TK_NEWLINE || t.kind == TK_COMMA) continue;
        while (i < f->ntoks && (f->toks[i].kind == TK_NEWLINE || f->toks[i].kind == TK_COMMA)) i++;
        if (t.kind == KP_TOK_EOF) return i == f->ntoks;
        if (i >= f->ntoks) return false;
        const Tok *o = &f->toks[i++];
        if (t.kind != o->kind || t.len != o->len || memcmp(out + t.off, f->src + o->off, t.len) != 0) return false;
    }
}

static bool parses(KpArena *arena, const char *name, const char *text_, size_t len, KpDiags *diags) {
    KpSource s = {name, text_, len};
    kp_diags_init(diags, arena);
    KpNode *prog = kp_parse(&s, arena, diags);
    return prog && diags->count == 0;
}

int kp_fmt(const char *name, const char *src, size_t len, KpWriteFn out, void *out_ud, KpWriteFn err, void *err_ud) {
    KpAllocator direct;
    kp_direct_init(&direct);
    Fmt *f = NULL;
    KpArena arena;
    kp_arena_init(&arena, &direct, NULL);
    f = kp_arena_alloc(&arena, sizeof *f, 16);
    if (!f) { kp_arena_deinit(&arena); return KP_FMT_NO_MEMORY; }
    memset(f, 0, sizeof *f);
    f->arena = arena; /* the arena now lives in f (moved) */
    f->src = src;
    f->srclen = len;
    int rc = KP_FMT_OK;
    KpSource s = {name, src, len};
    KpDiags diags;
    if (!parses(&f->arena, name, src, len, &diags)) {
        if (err && diags.count > 0) {
            char buf[600];
            int n = snprintf(buf, sizeof buf, "%s:%u:%u: %s\n", name, diags.items[0].line, diags.items[0].col,
                             diags.items[0].msg);
            err(err_ud, buf, (size_t)n < sizeof buf ? (size_t)n : sizeof buf - 1);
        }
        rc = KP_FMT_NO_PARSE;
        goto done;
    }
    rc = lex_all(f, &s, &f->toks, &f->ntoks);
    if (rc != KP_FMT_OK) goto done;
    /* a line `-- fmt: off` keeps the whole file as it is */
    for (int k = 0; k < f->ntoks; k++) {
        const Tok *t = &f->toks[k];
        if (t->kind == KP_TOK_COMMENT && t->col == 1 && t->len == 11 && !memcmp(text(f, t), "-- fmt: off", 11)) {
            out(out_ud, src, len);
            goto done;
        }
    }
    /* a byte-order mark and a #! line are kept as they are */
    size_t start = 0;
    if (len >= 3 && memcmp(src, "\xEF\xBB\xBF", 3) == 0) start = 3;
    if (len - start >= 2 && src[start] == '#' && src[start + 1] == '!') {
        size_t e = start;
        while (e < len && src[e] != '\n') e++;
        put(f, src, e);
        put(f, "\n", 1);
        start = e;
    } else if (start) {
        put(f, src, start);
    }
    size_t body = f->len;
    layout(f, start);
    if (f->oom) { rc = KP_FMT_NO_MEMORY; goto done; }
    if (!same_tokens(f, f->out + body, f->len - body) || !parses(&f->arena, name, f->out, f->len, &diags)) {
        if (err) {
            char buf[300];
            int n = snprintf(buf, sizeof buf, "%s: the formatter would change the program; left as it is (a bug in keep fmt)\n", name);
            err(err_ud, buf, (size_t)n < sizeof buf ? (size_t)n : sizeof buf - 1);
        }
        rc = KP_FMT_INTERNAL;
        goto done;
    }
    out(out_ud, f->out ? f->out : "", f->len);
done:;
    KpArena a = f->arena;
    kp_arena_deinit(&a);
    return rc;
}

/* ------------------------------------------------------------ token dump */

static const char *token_class(const char *src, const KpToken *t) {
    const char *s = src + t->off;
    switch (t->kind) {
    case KP_TOK_COMMENT: return "comment";
    case TK_NEWLINE: return "newline";
    case TK_STRING: return "string";
    case TK_INT: case TK_FLOAT: return "number";
    case TK_TRUE: case TK_FALSE: return "constant";
    case TK_HOLE: return "name";
    case TK_IDENT: return s[0] == '#' ? "directive" : "name";
    case TK_LPAREN: case TK_RPAREN: case TK_LBRACKET: case TK_RBRACKET: case TK_LBRACE: case TK_RBRACE:
    case TK_COMMA: case KP_TOK_SEMI: case TK_DOT: case TK_HASHPAREN:
        return "punctuation";
    default:
        if (s[0] == '#') return "directive";
        if ((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= 'A' && s[0] <= 'Z')) return "keyword";
        return "operator";
    }
}

int kp_fmt_tokens(const char *src, size_t len, KpWriteFn out, void *ud) {
    KpSource s = {"", src, len};
    KpLexer lx;
    kp_lexer_init(&lx, &s);
    lx.comments = true;
    for (;;) {
        KpToken t = kp_lexer_next(&lx);
        if (t.err || t.kind == KP_TOK_BAD) return KP_FMT_NO_PARSE;
        if (t.kind == KP_TOK_EOF) return KP_FMT_OK;
        char buf[96];
        int n = snprintf(buf, sizeof buf, "%u %u %zu %s\n", t.line, t.col, t.len, token_class(src, &t));
        out(ud, buf, (size_t)n);
    }
}
