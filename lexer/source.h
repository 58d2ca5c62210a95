/*
 * source.h — source text and diagnostics.
 *
 * A KpSource is one script's text (file or REPL line) with its name; every
 * stage reports problems against it as `file:line:col: error: message`,
 * followed by the source line and a caret under the column (the format of
 * gcc, clang and rustc).
 */
#ifndef KP_SOURCE_H
#define KP_SOURCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../alloc/alloc.h"

typedef struct KpSource {
    const char *name; /* file name as given ("tests/x.kp", "<repl>"); borrowed */
    const char *text; /* the bytes; borrowed, need not be NUL-terminated  */
    size_t len;
} KpSource;

/* One diagnostic.  msg and note are in the diags' arena. */
typedef struct KpDiag {
    uint32_t line, col;
    const char *msg;
    const char *note; /* optional extra line ("hint: ..."), or NULL */
} KpDiag;

typedef struct KpDiags {
    KpArena *arena;   /* where messages are copied */
    KpDiag *items;
    int count, cap;
    bool incomplete;  /* input ended inside an unfinished construct */
    bool oom;         /* a diagnostic was lost for want of memory: printed
                         as "out of memory" at oom_line:oom_col */
    uint32_t oom_line, oom_col;
} KpDiags;

/* Initializes an empty list whose messages go to `arena` (borrowed). */
void kp_diags_init(KpDiags *d, KpArena *arena);
/* Adds an error (printf-style message).  Beyond 100 errors the rest are
 * dropped (the count still grows, so callers see that errors happened). */
void kp_diag_add(KpDiags *d, uint32_t line, uint32_t col, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Attaches a note ("hint: ...") to the most recent diagnostic. */
void kp_diag_note(KpDiags *d, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Writes every diagnostic, in source order, through `write` (e.g. to
 * stderr): "file:line:col: error: msg", the line, a caret, the note. */
#ifndef KP_WRITEFN_DEFINED
#define KP_WRITEFN_DEFINED
typedef void (*KpWriteFn)(void *ud, const char *bytes, size_t len);
#endif
void kp_diags_print(const KpDiags *d, const KpSource *src, KpWriteFn write,
                    void *ud);
/* Formats one located message the same way (used by the VM for runtime
 * errors): "file:line:col: error: msg\n   line\n   ^\n".  `kind` is
 * "error" or "runtime error". */
void kp_diag_format(const KpSource *src, uint32_t line, uint32_t col,
                    const char *kind, const char *msg, KpWriteFn write,
                    void *ud);
/* Returns the bytes of 1-based line `line` (without the newline). */
const char *kp_source_line(const KpSource *src, uint32_t line, size_t *len);

#endif
