/*
 * parser_int.h — what the Lemon grammar (grammar.y) and the parse driver
 * (parse.c) share: the token value, the parser state, and the AST builder
 * helpers the grammar's one-line actions call.  Not for other modules.
 */
#ifndef KP_PARSER_INT_H
#define KP_PARSER_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ast.h"

/* The deepest expression tree (and bracket nesting) the parser accepts;
 * the compiler recurses over the AST, so this bounds its recursion. */
#define KP_PARSE_MAX_DEPTH 1200

/* A token as the grammar sees it: a span and a position. */
typedef struct KpTok {
    uint32_t off, len;
    uint32_t line, col;
} KpTok;

/* A construct that is valid only if a later rule consumes it (a call
 * whose arguments are really parameters, a parenthesized member list, the
 * literal 2^63 before unary minus).  Checked when parsing ends. */
typedef struct KpPending {
    KpNode *node;      /* carries KP_F_COVER until consumed */
    uint32_t line, col;
    const char *msg;
    struct KpPending *next;
} KpPending;

/* Flags used only while parsing (cleared when the construct is consumed). */
enum {
    KP_F_COVER = 1u << 30,  /* node still pending in ctx->pending */
    KP_F_TRAIL = 1u << 29,  /* item list ended with a separator */
};

typedef struct KpParseCtx {
    KpSource *src;
    KpArena *arena;
    KpDiags *diags;
    KpNode *program;      /* top-level block, filled as statements reduce */
    KpPending *pending;
    bool stop;            /* fatal (too deep, out of memory): stop feeding */
    bool last_newline;    /* the newline being fed is the input's last token */
    bool wants_catch;     /* the input ended after a try block: incomplete */
    bool depth_reported;
    bool oom;
    KpTok last;           /* the token being fed (for overflow errors) */
    KpNode dummy;         /* returned when the arena is exhausted */
    KpNode *spare;        /* a literal's node packed away (KpPacked):
                             the next node made reuses it */
} KpParseCtx;

/* Lemon entry points (grammar.c). */
size_t kp_grammar_parser_size(void);
void kp_grammar_init(void *parser, KpParseCtx *ctx);
void kp_grammar_feed(void *parser, int kind, KpTok tok);
/* True when the parser, in its current state, could shift `kind`. */
bool kp_grammar_accepts(void *parser, int kind);
/* Re-enables syntax error reports (Lemon mutes them for 3 tokens). */
void kp_grammar_rearm(void *parser);

/* ------------------------------------------------------------ builders
 * All return a node (or NULL only when out of memory, which sets
 * ctx->stop).  `t` is the token the node's position comes from. */
KpNode *kp_pb_node(KpParseCtx *c, KpNodeKind kind, KpTok t);
KpNode *kp_pb_at(KpParseCtx *c, KpNodeKind kind, const KpNode *pos);
KpNode *kp_pb_done(KpParseCtx *c, KpNode *n); /* computes depth, checks it */
const char *kp_pb_name(KpParseCtx *c, KpTok t);

KpNode *kp_pb_int(KpParseCtx *c, KpTok t);
KpNode *kp_pb_float(KpParseCtx *c, KpTok t);
KpNode *kp_pb_string(KpParseCtx *c, KpTok t);
KpNode *kp_pb_bool(KpParseCtx *c, KpTok t, bool v);
KpNode *kp_pb_ident(KpParseCtx *c, KpTok t);
KpNode *kp_pb_leaf(KpParseCtx *c, KpNodeKind kind, KpTok t);

KpNode *kp_pb_binary(KpParseCtx *c, KpOp op, KpNode *a, KpTok optok, KpNode *b);
KpNode *kp_pb_unary(KpParseCtx *c, KpOp op, KpTok optok, KpNode *a);
KpNode *kp_pb_reftype(KpParseCtx *c, KpOp op, KpTok optok, KpNode *a);
KpNode *kp_pb_pipe(KpParseCtx *c, KpNode *a, KpTok bar, KpNode *b);
KpNode *kp_pb_field(KpParseCtx *c, KpNode *a, KpTok dot, KpTok name);
KpNode *kp_pb_index(KpParseCtx *c, KpNode *a, KpTok br, KpNode *idx);
/* `pin(&buf) { ... }`: the block with a hidden first local holding the
 * pin, so the pin ends with the block however it is left. */
KpNode *kp_pb_pin_block(KpParseCtx *c, KpNode *call, KpNode *block);
/* a[i, j, ...]: an index whose value is the list [i, j, ...] (views) */
KpNode *kp_pb_index_multi(KpParseCtx *c, KpNode *a, KpTok br, KpNode *first, KpNode *rest);
KpNode *kp_pb_call(KpParseCtx *c, KpNode *callee, KpTok lp, KpNode *items);
KpNode *kp_pb_generic(KpParseCtx *c, KpNode *base, KpTok hp, KpNode *items);
KpNode *kp_pb_parens(KpParseCtx *c, KpTok lp, KpNode *items);
KpNode *kp_pb_list(KpParseCtx *c, KpTok lb, KpNode *items);
/* `(params) -> R := { body }`: a function literal (items NULL: no params). */
KpNode *kp_pb_funclit(KpParseCtx *c, KpTok lp, KpNode *items, KpNode *ret, KpNode *body);

/* Item lists (a temporary KP_N_LIST node holding the items). */
KpNode *kp_pb_items(KpParseCtx *c, KpNode *first);
KpNode *kp_pb_items_push(KpParseCtx *c, KpNode *items, KpNode *item);
KpNode *kp_pb_items_trail(KpParseCtx *c, KpNode *items);
KpNode *kp_pb_item_typed(KpParseCtx *c, KpNode *who, KpTok colon, KpNode *type,
                         KpNode *dflt);
KpNode *kp_pb_item_named(KpParseCtx *c, KpTok name, KpNode *type, KpNode *dflt);
KpNode *kp_pb_fieldinit(KpParseCtx *c, KpTok name, KpNode *value);
KpNode *kp_pb_pair(KpParseCtx *c, KpNode *key, KpNode *value);
KpNode *kp_pb_signature(KpParseCtx *c, KpNode *call, KpNode *ret);
KpNode *kp_pb_outputs(KpParseCtx *c, KpTok lp, KpNode *items);

/* Statements. */
KpNode *kp_pb_block(KpParseCtx *c, KpTok lb);
KpNode *kp_pb_block_push(KpParseCtx *c, KpNode *block, KpNode *stmt);
KpNode *kp_pb_block_close(KpParseCtx *c, KpNode *block, KpTok lbrace);
void kp_pb_top(KpParseCtx *c, KpNode *stmt);
KpNode *kp_pb_exprstmt(KpParseCtx *c, KpNode *e);
KpNode *kp_pb_declare(KpParseCtx *c, KpNode *lhs, KpTok op, KpNode *init);
KpNode *kp_pb_typed_decl(KpParseCtx *c, KpNode *lhs, KpTok colon, KpNode *type,
                         KpNode *init);
KpNode *kp_pb_func(KpParseCtx *c, KpNode *lhs, KpTok op, KpNode *ret,
                   KpNode *body);
KpNode *kp_pb_assign(KpParseCtx *c, KpNode *target, KpTok eq, KpOp op,
                     KpNode *value);
KpNode *kp_pb_if(KpParseCtx *c, KpTok kw, KpNode *cond, KpNode *then,
                 KpNode *els);
KpNode *kp_pb_while(KpParseCtx *c, KpTok kw, KpNode *cond, KpNode *body);
KpNode *kp_pb_for(KpParseCtx *c, KpTok kw, KpTok v1, KpTok *v2, KpNode *iter,
                  KpNode *body);
KpNode *kp_pb_return(KpParseCtx *c, KpTok kw, KpNode *value);
KpNode *kp_pb_defer(KpParseCtx *c, KpTok kw, KpNode *stmt);
KpNode *kp_pb_keep(KpParseCtx *c, KpTok kw, KpNode *value, KpNode *owners,
                   KpNode *alloc);
KpNode *kp_pb_using(KpParseCtx *c, KpTok kw, KpNode *alloc, KpNode *body);
KpNode *kp_pb_try(KpParseCtx *c, KpTok kw, KpNode *body, KpTok var, KpNode *handler);
void kp_pb_error(KpParseCtx *c, const KpNode *at, const char *msg);

/* Syntax errors and stack overflow, reported from grammar.c. */
void kp_pb_syntax_error(KpParseCtx *c, void *parser, int kind, KpTok t);
void kp_pb_overflow(KpParseCtx *c);

#endif
