/*
 * grammar.y — the Keep grammar, for the Lemon parser generator.
 *
 * Every action is a one-line call into the AST builder (parse.c, declared
 * in parser_int.h); the builder owns every decision that needs to look at
 * more than one token.  Nodes live in the compile arena, so no
 * %destructor is needed.
 *
 * Newlines: the driver (parse.c) filters raw newlines Go-style, so NEWLINE
 * reaches the grammar only where the previous token can end a statement.
 * It separates statements and, inside ( ) and [ ], items, exactly like a
 * comma.
 *
 * Cover grammar.  A few constructs cannot be told apart until a later
 * token: `f(a: Int)` is a call until `->` or `:= {` makes it a function
 * declaration, `( .x : Int )` is an expression until `Name : Type =`
 * takes it as the member list of a type, and `Pair#(.a: Type)` is a
 * generic instantiation until `: Type = (...)` makes it a generic type's
 * parameters.  So the grammar parses one superset — `items`, whose members
 * may be expressions, `.name = v`, `k = v`, `x: T [= v]`, `.x: T [= v]` or
 * `sig -> R` — and the builder converts, leaving a "pending" mark on
 * anything that only a later rule may accept; marks left when parsing ends
 * become errors.
 *
 * Error recovery is per statement: `error` may stand for a statement in
 * any statement list; Lemon then drops tokens up to the next NEWLINE or
 * `}`.  The driver resets Lemon's error counter at each top-level newline
 * so that every bad line is reported.
 */

%name kp_grammar
%token_prefix TK_
%token_type {KpTok}
%default_type {KpNode *}
%extra_context {KpParseCtx *ctx}
%stack_size 12000

%include {
#include <assert.h>
#include "parser/parser_int.h"
static const KpTok kp_no_tok = {0, 0, 0, 0};
}

%code {
/* sizeof the parser, so parse.c can allocate it. */
size_t kp_grammar_parser_size(void) { return sizeof(yyParser); }
void kp_grammar_init(void *p, KpParseCtx *c) { kp_grammarInit(p, c); }
void kp_grammar_feed(void *p, int kind, KpTok tok) { kp_grammar(p, kind, tok); }
bool kp_grammar_accepts(void *p, int kind) {
    yyParser *y = p;
    return yy_find_shift_action((YYCODETYPE)kind, y->yytos->stateno) != YY_ERROR_ACTION;
}
/* Lets the next syntax error be reported (see the driver). */
void kp_grammar_rearm(void *p) {
    yyParser *y = p;
    if (y->yyerrcnt >= 0) y->yyerrcnt = -1;
}
}

%syntax_error { kp_pb_syntax_error(ctx, yypParser, yymajor, yyminor); }
%stack_overflow { kp_pb_overflow(ctx); }

/* The token numbers, in a fixed order (the lexer uses them). */
%token NEWLINE IDENT INT FLOAT STRING TRUE FALSE HOLE ELLIPSIS
       IF ELSE WHILE FOR IN BREAK CONTINUE RETURN AND OR NOT
       KEEP WITH USING DEFER
       DECLARE COLON ASSIGN EQ NE LT LE GT GE
       PLUS MINUS STAR SLASH PERCENT
       PLUSEQ MINUSEQ STAREQ SLASHEQ PERCENTEQ
       LPAREN RPAREN LBRACKET RBRACKET LBRACE RBRACE
       COMMA DOT RANGE PIPE AMP MUTREF MOVE ARROW HASHPAREN
       LAND LOR LXOR LNOT LSL LSR ASR
       TRY CATCH.

/* `x | keep _ with a, b` inside call arguments: the commas belong to the
 * owner list (greedy), as a reader would expect. */
%left WITH.
%left COMMA.
/* `( items ) ->` is a function literal's head: `(a: Int) -> Int := { … }`.
 * A parenthesized expression followed by `->` is nothing else (a
 * signature's head is `name (params)`), so the shift wins. */
%nonassoc PARENS.
%nonassoc ARROW.

/* ======================================================== program */
program ::= top_open.
program ::= top_closed.

top_open ::= .
top_open ::= top_open NEWLINE.
top_open ::= top_closed NEWLINE.
top_closed ::= top_open stmt(S).                { kp_pb_top(ctx, S); }
top_closed ::= top_open error.

/* ========================================================= blocks */
/* Two rules rather than a `bseq` nonterminal: after error recovery the
 * parser must not reduce to "the statements are over" on a bad token. */
block(A) ::= LBRACE(L) bopen(S) RBRACE.         { A = kp_pb_block_close(ctx, S, L); }
block(A) ::= LBRACE(L) bclosed(S) RBRACE.       { A = kp_pb_block_close(ctx, S, L); }
bopen(A) ::= .                                  { A = kp_pb_block(ctx, kp_no_tok); }
bopen(A) ::= bopen(B) NEWLINE.                  { A = B; }
bopen(A) ::= bclosed(B) NEWLINE.                { A = B; }
bclosed(A) ::= bopen(B) stmt(S).                { A = kp_pb_block_push(ctx, B, S); }
bclosed(A) ::= bopen(B) error.                  { A = B; }

/* ===================================================== statements */
/* ---- expression, declaration, function, assignment */
stmt(A) ::= expr(E).                            { A = kp_pb_exprstmt(ctx, E); }
stmt(A) ::= expr(E) block(B).                   { A = kp_pb_pin_block(ctx, E, B); }
stmt(A) ::= expr(L) DECLARE(T) expr(R).         { A = kp_pb_declare(ctx, L, T, R); }
stmt(A) ::= expr(L) DECLARE(T) block(B).        { A = kp_pb_func(ctx, L, T, NULL, B); }
stmt(A) ::= expr(L) ARROW(T) rettype(R) DECLARE block(B). { A = kp_pb_func(ctx, L, T, R, B); }
stmt(A) ::= expr(L) ARROW(T) rettype(R).        { A = kp_pb_func(ctx, L, T, R, NULL); }
stmt(A) ::= expr(L) COLON(T) type(Y).           { A = kp_pb_typed_decl(ctx, L, T, Y, NULL); }
stmt(A) ::= expr(L) COLON(T) type(Y) ASSIGN expr(R). { A = kp_pb_typed_decl(ctx, L, T, Y, R); }
stmt(A) ::= assign(S).                          { A = S; }

assign(A) ::= expr(L) ASSIGN(T) expr(R).        { A = kp_pb_assign(ctx, L, T, KP_OP_NONE, R); }
assign(A) ::= expr(L) PLUSEQ(T) expr(R).        { A = kp_pb_assign(ctx, L, T, KP_OP_ADD, R); }
assign(A) ::= expr(L) MINUSEQ(T) expr(R).       { A = kp_pb_assign(ctx, L, T, KP_OP_SUB, R); }
assign(A) ::= expr(L) STAREQ(T) expr(R).        { A = kp_pb_assign(ctx, L, T, KP_OP_MUL, R); }
assign(A) ::= expr(L) SLASHEQ(T) expr(R).       { A = kp_pb_assign(ctx, L, T, KP_OP_DIV, R); }
assign(A) ::= expr(L) PERCENTEQ(T) expr(R).     { A = kp_pb_assign(ctx, L, T, KP_OP_MOD, R); }

/* ---- blocks and control flow */
stmt(A) ::= block(B).                           { A = B; }
stmt(A) ::= if_stmt(S).                         { A = S; }
if_stmt(A) ::= IF(K) expr(C) block(T).          { A = kp_pb_if(ctx, K, C, T, NULL); }
if_stmt(A) ::= IF(K) expr(C) block(T) ELSE block(E). { A = kp_pb_if(ctx, K, C, T, E); }
if_stmt(A) ::= IF(K) expr(C) block(T) ELSE if_stmt(E). { A = kp_pb_if(ctx, K, C, T, E); }
stmt(A) ::= WHILE(K) expr(C) block(B).          { A = kp_pb_while(ctx, K, C, B); }
stmt(A) ::= FOR(K) loopvar(V) IN expr(E) block(B). { A = kp_pb_for(ctx, K, V, NULL, E, B); }
stmt(A) ::= FOR(K) loopvar(V) COMMA loopvar(W) IN expr(E) block(B). { A = kp_pb_for(ctx, K, V, &W, E, B); }
%type loopvar {KpTok}
loopvar(A) ::= IDENT(T).                        { A = T; }
loopvar(A) ::= HOLE(T).                         { A = T; }
stmt(A) ::= BREAK(K).                           { A = kp_pb_leaf(ctx, KP_N_BREAK, K); }
stmt(A) ::= CONTINUE(K).                        { A = kp_pb_leaf(ctx, KP_N_CONTINUE, K); }
stmt(A) ::= RETURN(K).                          { A = kp_pb_return(ctx, K, NULL); }
stmt(A) ::= RETURN(K) expr(E).                  { A = kp_pb_return(ctx, K, E); }

/* ---- try / catch: a runtime error in the try block unwinds to the catch
 * block, where the loop variable-like name holds the Error record */
stmt(A) ::= TRY(K) block(B) CATCH loopvar(V) block(C). { A = kp_pb_try(ctx, K, B, V, C); }

/* ---- defer, keep, using */
stmt(A) ::= DEFER(K) expr(E).                   { A = kp_pb_defer(ctx, K, kp_pb_exprstmt(ctx, E)); }
stmt(A) ::= DEFER(K) assign(S).                 { A = kp_pb_defer(ctx, K, S); }
stmt(A) ::= DEFER(K) block(B).                  { A = kp_pb_defer(ctx, K, B); }
stmt(A) ::= keep(K).                            { A = K; }
stmt(A) ::= USING(K) expr(E) block(B).          { A = kp_pb_using(ctx, K, E, B); }

keep(A) ::= KEEP(K) or_e(V) keep_owners(O) keep_using(U). { A = kp_pb_keep(ctx, K, V, O, U); }
keep_owners(A) ::= .                            { A = NULL; }
keep_owners(A) ::= WITH owner_list(L). [WITH]   { A = L; }
owner_list(A) ::= or_e(E).                      { A = kp_pb_items(ctx, E); }
owner_list(A) ::= owner_list(L) COMMA or_e(E).  { A = kp_pb_items_push(ctx, L, E); }
keep_using(A) ::= .                             { A = NULL; }
keep_using(A) ::= USING or_e(E).                { A = E; }

/* ==================================================== expressions */
/* Precedence, low to high: pipe, or, and, not, comparison, range,
 * + -, * / % land lor lxor, lsl lsr asr, prefix - lnot & $& ~&,
 * postfix call . [] #().  Every binary level is left-associative. */
expr(A) ::= pipe(P).                            { A = P; }

pipe(A) ::= or_e(E).                            { A = E; }
pipe(A) ::= pipe(L) PIPE(T) postfix(R).         { A = kp_pb_pipe(ctx, L, T, R); }
pipe(A) ::= pipe(L) PIPE(T) keep(R).            { A = kp_pb_pipe(ctx, L, T, R); }

or_e(A) ::= and_e(E).                           { A = E; }
or_e(A) ::= or_e(L) OR(T) and_e(R).             { A = kp_pb_binary(ctx, KP_OP_OR, L, T, R); }
and_e(A) ::= not_e(E).                          { A = E; }
and_e(A) ::= and_e(L) AND(T) not_e(R).          { A = kp_pb_binary(ctx, KP_OP_AND, L, T, R); }
not_e(A) ::= cmp_e(E).                          { A = E; }
not_e(A) ::= NOT(T) not_e(E).                   { A = kp_pb_unary(ctx, KP_OP_NOT, T, E); }

/* Left-recursive so that a chain parses; the builder rejects it. */
cmp_e(A) ::= range_e(E).                        { A = E; }
cmp_e(A) ::= cmp_e(L) EQ(T) range_e(R).         { A = kp_pb_binary(ctx, KP_OP_EQ, L, T, R); }
cmp_e(A) ::= cmp_e(L) NE(T) range_e(R).         { A = kp_pb_binary(ctx, KP_OP_NE, L, T, R); }
cmp_e(A) ::= cmp_e(L) LT(T) range_e(R).         { A = kp_pb_binary(ctx, KP_OP_LT, L, T, R); }
cmp_e(A) ::= cmp_e(L) LE(T) range_e(R).         { A = kp_pb_binary(ctx, KP_OP_LE, L, T, R); }
cmp_e(A) ::= cmp_e(L) GT(T) range_e(R).         { A = kp_pb_binary(ctx, KP_OP_GT, L, T, R); }
cmp_e(A) ::= cmp_e(L) GE(T) range_e(R).         { A = kp_pb_binary(ctx, KP_OP_GE, L, T, R); }

range_e(A) ::= add_e(E).                        { A = E; }
range_e(A) ::= add_e(L) RANGE(T) add_e(R).      { A = kp_pb_binary(ctx, KP_OP_RANGE, L, T, R); }

add_e(A) ::= mul_e(E).                          { A = E; }
add_e(A) ::= add_e(L) PLUS(T) mul_e(R).         { A = kp_pb_binary(ctx, KP_OP_ADD, L, T, R); }
add_e(A) ::= add_e(L) MINUS(T) mul_e(R).        { A = kp_pb_binary(ctx, KP_OP_SUB, L, T, R); }

mul_e(A) ::= shift_e(E).                        { A = E; }
mul_e(A) ::= mul_e(L) STAR(T) shift_e(R).       { A = kp_pb_binary(ctx, KP_OP_MUL, L, T, R); }
mul_e(A) ::= mul_e(L) SLASH(T) shift_e(R).      { A = kp_pb_binary(ctx, KP_OP_DIV, L, T, R); }
mul_e(A) ::= mul_e(L) PERCENT(T) shift_e(R).    { A = kp_pb_binary(ctx, KP_OP_MOD, L, T, R); }
mul_e(A) ::= mul_e(L) LAND(T) shift_e(R).       { A = kp_pb_binary(ctx, KP_OP_LAND, L, T, R); }
mul_e(A) ::= mul_e(L) LOR(T) shift_e(R).        { A = kp_pb_binary(ctx, KP_OP_LOR, L, T, R); }
mul_e(A) ::= mul_e(L) LXOR(T) shift_e(R).       { A = kp_pb_binary(ctx, KP_OP_LXOR, L, T, R); }

/* Shifts bind tighter than `*` (as in OCaml), but left-associative. */
shift_e(A) ::= unary(E).                        { A = E; }
shift_e(A) ::= shift_e(L) LSL(T) unary(R).      { A = kp_pb_binary(ctx, KP_OP_LSL, L, T, R); }
shift_e(A) ::= shift_e(L) LSR(T) unary(R).      { A = kp_pb_binary(ctx, KP_OP_LSR, L, T, R); }
shift_e(A) ::= shift_e(L) ASR(T) unary(R).      { A = kp_pb_binary(ctx, KP_OP_ASR, L, T, R); }

unary(A) ::= postfix(E).                        { A = E; }
unary(A) ::= MINUS(T) unary(E).                 { A = kp_pb_unary(ctx, KP_OP_NEG, T, E); }
unary(A) ::= LNOT(T) unary(E).                  { A = kp_pb_unary(ctx, KP_OP_LNOT, T, E); }
unary(A) ::= AMP(T) unary(E).                   { A = kp_pb_unary(ctx, KP_OP_REF, T, E); }
unary(A) ::= MUTREF(T) unary(E).                { A = kp_pb_unary(ctx, KP_OP_MUTREF, T, E); }
unary(A) ::= MOVE(T) unary(E).                  { A = kp_pb_unary(ctx, KP_OP_MOVE, T, E); }

postfix(A) ::= primary(E).                      { A = E; }
postfix(A) ::= postfix(F) LPAREN(T) items(I) RPAREN. { A = kp_pb_call(ctx, F, T, I); }
postfix(A) ::= postfix(O) DOT(T) IDENT(N).      { A = kp_pb_field(ctx, O, T, N); }
postfix(A) ::= postfix(O) LBRACKET(T) expr(I) RBRACKET. { A = kp_pb_index(ctx, O, T, I); }
postfix(A) ::= postfix(O) LBRACKET(T) expr(I) COMMA items_ne(J) RBRACKET. { A = kp_pb_index_multi(ctx, O, T, I, J); }
postfix(A) ::= postfix(B) HASHPAREN(T) items(I) RPAREN. { A = kp_pb_generic(ctx, B, T, I); }

primary(A) ::= IDENT(T).                        { A = kp_pb_ident(ctx, T); }
primary(A) ::= ELLIPSIS(T).                     { A = kp_pb_ident(ctx, T); }
primary(A) ::= INT(T).                          { A = kp_pb_int(ctx, T); }
primary(A) ::= FLOAT(T).                        { A = kp_pb_float(ctx, T); }
primary(A) ::= STRING(T).                       { A = kp_pb_string(ctx, T); }
primary(A) ::= TRUE(T).                         { A = kp_pb_bool(ctx, T, true); }
primary(A) ::= FALSE(T).                        { A = kp_pb_bool(ctx, T, false); }
primary(A) ::= HOLE(T).                         { A = kp_pb_leaf(ctx, KP_N_HOLE, T); }
primary(A) ::= LPAREN(T) RPAREN. [PARENS]       { A = kp_pb_leaf(ctx, KP_N_UNIT, T); }
primary(A) ::= LPAREN(T) ASSIGN RPAREN.         { A = kp_pb_leaf(ctx, KP_N_MAP, T); }
primary(A) ::= LPAREN(T) items_ne(I) RPAREN. [PARENS] { A = kp_pb_parens(ctx, T, I); }
primary(A) ::= LBRACKET(T) items(I) RBRACKET.   { A = kp_pb_list(ctx, T, I); }
/* A function literal: `(a: Int, b: Int) -> Int := { return a + b }`. */
primary(A) ::= LPAREN(T) items_ne(I) RPAREN ARROW rettype(R) DECLARE block(B). { A = kp_pb_funclit(ctx, T, I, R, B); }
primary(A) ::= LPAREN(T) RPAREN ARROW rettype(R) DECLARE block(B). { A = kp_pb_funclit(ctx, T, NULL, R, B); }

/* ========================================================== items */
/* Comma- or newline-separated, trailing separator allowed.  A trailing
 * comma is remembered: `(x,)` is not a parenthesized x. */
items(A) ::= .                                  { A = kp_pb_items(ctx, NULL); }
items(A) ::= items_ne(B).                       { A = B; }
items_ne(A) ::= item_seq(B).                    { A = B; }
items_ne(A) ::= item_seq(B) NEWLINE.            { A = B; }
items_ne(A) ::= item_seq(B) COMMA.              { A = kp_pb_items_trail(ctx, B); }
item_seq(A) ::= item(I).                        { A = kp_pb_items(ctx, I); }
item_seq(A) ::= item_seq(L) sep item(I).        { A = kp_pb_items_push(ctx, L, I); }
sep ::= COMMA.
sep ::= NEWLINE.

item(A) ::= expr(E).                            { A = E; }
item(A) ::= expr(W) COLON(T) ptype(Y).          { A = kp_pb_item_typed(ctx, W, T, Y, NULL); }
item(A) ::= expr(W) COLON(T) ptype(Y) ASSIGN expr(D). { A = kp_pb_item_typed(ctx, W, T, Y, D); }
item(A) ::= DOT IDENT(N) COLON ptype(Y).        { A = kp_pb_item_named(ctx, N, Y, NULL); }
item(A) ::= DOT IDENT(N) COLON ptype(Y) ASSIGN expr(D). { A = kp_pb_item_named(ctx, N, Y, D); }
item(A) ::= DOT IDENT(N) ASSIGN expr(V).        { A = kp_pb_fieldinit(ctx, N, V); }
item(A) ::= expr(K) ASSIGN expr(V).             { A = kp_pb_pair(ctx, K, V); }
item(A) ::= expr(C) ARROW rettype(R).           { A = kp_pb_signature(ctx, C, R); }

/* ========================================================== types */
/* After `:` and `->`.  A parameter type may carry a stray trailing `&`
 * (the seed writes `.hm:$&Hashmap&`); it is accepted and ignored. */
ptype(A) ::= type(B).                           { A = B; }
ptype(A) ::= type(B) AMP.                       { A = B; }

type(A) ::= btype(B).                           { A = B; }
type(A) ::= AMP(T) type(B).                     { A = kp_pb_reftype(ctx, KP_OP_REF, T, B); }
type(A) ::= MUTREF(T) type(B).                  { A = kp_pb_reftype(ctx, KP_OP_MUTREF, T, B); }
type(A) ::= MOVE(T) type(B).                    { A = kp_pb_reftype(ctx, KP_OP_MOVE, T, B); }

btype(A) ::= IDENT(T).                          { A = kp_pb_ident(ctx, T); }
btype(A) ::= btype(B) DOT(T) IDENT(N).          { A = kp_pb_field(ctx, B, T, N); }
btype(A) ::= btype(B) HASHPAREN(T) items(I) RPAREN. { A = kp_pb_generic(ctx, B, T, I); }
btype(A) ::= LPAREN(T) RPAREN.                  { A = kp_pb_leaf(ctx, KP_N_UNIT, T); }

/* A function's return spec: a type, `()`, or named outputs. */
rettype(A) ::= type(B).                         { A = B; }
rettype(A) ::= LPAREN(T) items_ne(I) RPAREN.    { A = kp_pb_outputs(ctx, T, I); }
