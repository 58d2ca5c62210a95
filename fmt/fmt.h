/*
 * fmt.h — the Keep formatter (fmt/fmt.c): source text in, the canonical
 * layout out (`keep fmt`).  Internal to the project: the `keep` command and
 * the tests call it; hosts do not.
 */
#ifndef KP_FMT_H
#define KP_FMT_H

#include <stdbool.h>
#include <stddef.h>

#include "../include/keep.h"

enum {
    KP_FMT_OK = 0,
    KP_FMT_NO_PARSE = 1, /* the text does not lex or parse: not formatted    */
    KP_FMT_NO_MEMORY = 2,
    KP_FMT_INTERNAL = 3, /* the layout would change the tokens: not formatted
                            (a formatter bug, reported rather than written) */
};

/* Formats `len` bytes of `src` (named `name` in messages) and writes the
 * canonical layout to `out` in one call (the bytes are borrowed for the
 * call).  On KP_FMT_NO_PARSE the first diagnostic, "name:line:col:
 * message", is written to `err` and nothing to `out`.  Allocates only for
 * the call (an arena over the C allocator, alloc/direct.c). */
int kp_fmt(const char *name, const char *src, size_t len, KpWriteFn out, void *out_ud, KpWriteFn err,
           void *err_ud);

/* Writes one line per token of `src`, comments included:
 * "LINE COL LEN CLASS\n" (1-based line and byte column), CLASS one of
 * keyword, constant, directive, string, number, comment, name, operator,
 * punctuation, newline.  The classes are the lexer's own (lexer/lexer.re),
 * what the editor grammars in editors/ are checked against.  Returns
 * KP_FMT_OK, or KP_FMT_NO_PARSE at a lexical error. */
int kp_fmt_tokens(const char *src, size_t len, KpWriteFn out, void *ud);

#endif
