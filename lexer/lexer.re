/*
 * lexer.re — the Keep tokenizer, a re2c specification (see lexer.h).
 *
 * Design: re2c's custom input API with the end-of-input rule (`$`) and a
 * sentinel of 0 that YYPEEK returns at the limit, so the generated matcher
 * never reads at or past src->len even though the text is not
 * NUL-terminated; a real NUL byte inside the text is told apart by the
 * bounds check and lexes as a bad byte.  String literals are scanned by a
 * small hand loop after the opening quote (escapes skipped, UTF-8
 * validated), which keeps huge literals linear and lets us stop at a
 * newline for a precise "unterminated string" error.
 */
#include "lexer/lexer.h"

#include <string.h>

#include "grammar.h"

void kp_lexer_init(KpLexer *lx, const KpSource *src) {
    lx->base = (const unsigned char *)src->text;
    lx->cur = lx->base;
    lx->lim = lx->base + src->len;
    lx->line_start = lx->base;
    lx->line = 1;
    lx->comments = false;
    /* A UTF-8 byte order mark is skipped; a first line starting with `#!`
     * (a Unix script's interpreter line) is a comment. */
    if (src->len >= 3 && memcmp(lx->base, "\xEF\xBB\xBF", 3) == 0) {
        lx->cur += 3;
        lx->line_start = lx->cur;
    }
    if (lx->lim - lx->cur >= 2 && lx->cur[0] == '#' && lx->cur[1] == '!')
        while (lx->cur < lx->lim && *lx->cur != '\n') lx->cur++;
}

/* Length of the valid UTF-8 sequence at p (p < lim, *p >= 0x80), or 0. */
static size_t utf8_len(const unsigned char *p, const unsigned char *lim) {
    unsigned c = p[0];
    size_t n;
    unsigned min;
    if (c >= 0xC2 && c <= 0xDF) { n = 2; min = 0x80; }
    else if (c >= 0xE0 && c <= 0xEF) { n = 3; min = 0x800; }
    else if (c >= 0xF0 && c <= 0xF4) { n = 4; min = 0x10000; }
    else return 0;
    if ((size_t)(lim - p) < n) return 0;
    unsigned cp = c & (0x7Fu >> n);
    for (size_t i = 1; i < n; i++) {
        if ((p[i] & 0xC0) != 0x80) return 0;
        cp = (cp << 6) | (p[i] & 0x3Fu);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
    return n;
}

/* Scans a string literal whose opening quote is just before lx->cur. */
static void scan_string(KpLexer *lx, KpToken *t) {
    const unsigned char *p = lx->cur, *lim = lx->lim;
    const char *err = NULL;
    for (;;) {
        if (p >= lim || *p == '\n') {
            t->err = "unterminated string";
            break;
        }
        unsigned char c = *p;
        if (c == '"') {
            p++;
            t->err = err;
            break;
        }
        if (c == '\\') {
            p++;
            if (p < lim && *p != '\n') {
                if (*p >= 0x80) {
                    size_t n = utf8_len(p, lim);
                    if (!n) { err = "invalid UTF-8 in string literal"; n = 1; }
                    p += n;
                } else {
                    p++;
                }
            }
            continue;
        }
        if (c >= 0x80) {
            size_t n = utf8_len(p, lim);
            if (!n) { err = "invalid UTF-8 in string literal"; n = 1; }
            p += n;
            continue;
        }
        p++;
    }
    lx->cur = p;
}

KpToken kp_lexer_next(KpLexer *lx) {
    const unsigned char *cur = lx->cur, *lim = lx->lim, *mar = cur;
    KpToken t;
    for (;;) {
        const unsigned char *tok = cur;
        t.off = (size_t)(tok - lx->base);
        t.line = lx->line;
        t.col = (uint32_t)(tok - lx->line_start) + 1;
        t.err = NULL;
#define TOK(k) do { t.kind = (k); goto done; } while (0)
        /*!re2c
            re2c:api = custom;
            re2c:api:style = free-form;
            re2c:define:YYCTYPE = "unsigned char";
            re2c:define:YYPEEK = "(cur < lim ? *cur : 0)";
            re2c:define:YYSKIP = "++cur;";
            re2c:define:YYBACKUP = "mar = cur;";
            re2c:define:YYRESTORE = "cur = mar;";
            re2c:define:YYLESSTHAN = "(size_t)(lim - cur) < @@{len}";
            re2c:yyfill:enable = 0;
            re2c:eof = 0;

            ident = [A-Za-z_][A-Za-z0-9_]*;
            dec   = [0-9][0-9_]*;
            digits = [0-9][0-9_]*;
            exp   = [eE] [+-]? [0-9]+;

            $             { t.kind = KP_TOK_EOF; cur = lim; goto done; }
            [ \t\r]+      { continue; }
            "--" [^\n]*   { if (lx->comments) TOK(KP_TOK_COMMENT); continue; }
            "\n"          { lx->line++; lx->line_start = cur; TOK(TK_NEWLINE); }
            ";"           { TOK(KP_TOK_SEMI); }

            "if"          { TOK(TK_IF); }
            "else"        { TOK(TK_ELSE); }
            "while"       { TOK(TK_WHILE); }
            "for"         { TOK(TK_FOR); }
            "in"          { TOK(TK_IN); }
            "break"       { TOK(TK_BREAK); }
            "continue"    { TOK(TK_CONTINUE); }
            "return"      { TOK(TK_RETURN); }
            "and"         { TOK(TK_AND); }
            "or"          { TOK(TK_OR); }
            "not"         { TOK(TK_NOT); }
            "land"        { TOK(TK_LAND); }
            "lor"         { TOK(TK_LOR); }
            "lxor"        { TOK(TK_LXOR); }
            "lnot"        { TOK(TK_LNOT); }
            "lsl"         { TOK(TK_LSL); }
            "lsr"         { TOK(TK_LSR); }
            "asr"         { TOK(TK_ASR); }
            "true"        { TOK(TK_TRUE); }
            "false"       { TOK(TK_FALSE); }
            "keep"        { TOK(TK_KEEP); }
            "#keep"       { TOK(TK_KEEP); }
            "with"        { TOK(TK_WITH); }
            "using"       { TOK(TK_USING); }
            "defer"       { TOK(TK_DEFER); }
            "#defer"      { TOK(TK_DEFER); }
            "try"         { TOK(TK_TRY); }
            "catch"       { TOK(TK_CATCH); }
            "_"           { TOK(TK_HOLE); }
            ident         { TOK(TK_IDENT); }
            "#" ident     { TOK(TK_IDENT); }
            "#("          { TOK(TK_HASHPAREN); }

            dec                         { TOK(TK_INT); }
            "0x" [0-9a-fA-F_]+          { TOK(TK_INT); }
            "0b" [01_]+                 { TOK(TK_INT); }
            dec "." digits exp?         { TOK(TK_FLOAT); }
            dec exp                     { TOK(TK_FLOAT); }

            "\""          { t.kind = TK_STRING; lx->cur = cur; scan_string(lx, &t);
                            cur = lx->cur; goto done; }

            ":="          { TOK(TK_DECLARE); }
            ":"           { TOK(TK_COLON); }
            "="           { TOK(TK_ASSIGN); }
            "=="          { TOK(TK_EQ); }
            "!="          { TOK(TK_NE); }
            "<"           { TOK(TK_LT); }
            "<="          { TOK(TK_LE); }
            ">"           { TOK(TK_GT); }
            ">="          { TOK(TK_GE); }
            "+"           { TOK(TK_PLUS); }
            "-"           { TOK(TK_MINUS); }
            "*"           { TOK(TK_STAR); }
            "/"           { TOK(TK_SLASH); }
            "%"           { TOK(TK_PERCENT); }
            "+="          { TOK(TK_PLUSEQ); }
            "-="          { TOK(TK_MINUSEQ); }
            "*="          { TOK(TK_STAREQ); }
            "/="          { TOK(TK_SLASHEQ); }
            "%="          { TOK(TK_PERCENTEQ); }
            "("           { TOK(TK_LPAREN); }
            ")"           { TOK(TK_RPAREN); }
            "["           { TOK(TK_LBRACKET); }
            "]"           { TOK(TK_RBRACKET); }
            "{"           { TOK(TK_LBRACE); }
            "}"           { TOK(TK_RBRACE); }
            ","           { TOK(TK_COMMA); }
            "."           { TOK(TK_DOT); }
            ".."          { TOK(TK_RANGE); }
            "..."         { TOK(TK_ELLIPSIS); }
            "|"           { TOK(TK_PIPE); }
            "&"           { TOK(TK_AMP); }
            "$&"          { TOK(TK_MUTREF); }
            "~&"          { TOK(TK_MOVE); }
            "->"          { TOK(TK_ARROW); }

            *             { t.kind = KP_TOK_BAD; t.err = "unexpected character";
                            goto done; }
        */
#undef TOK
    }
done:
    (void)mar;
    lx->cur = cur;
    t.len = (size_t)(cur - lx->base) - t.off;
    return t;
}
