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
#include "../include/keep.h"

typedef struct KpSource {
    const char *name; /* file name as given ("tests/x.kp", "<repl>"); borrowed */
    const char *text; /* the bytes; borrowed, need not be NUL-terminated  */
    size_t len;
} KpSource;

/* A secondary place a diagnostic points at ("moved here"). */
typedef struct KpDiagSpan {
    uint32_t line, col;
    const char *label;
} KpDiagSpan;

/* One diagnostic.  msg, label, spans and notes are in the diags' arena. */
#define KP_DIAG_MAX_NOTES 4
#define KP_DIAG_MAX_SPANS 4
typedef struct KpDiag {
    uint32_t line, col;
    const char *msg;
    const char *notes[KP_DIAG_MAX_NOTES]; /* extra lines ("note: ...",
                                             "help: ...") */
    int nnotes;
    const char *label;                    /* after the caret, or NULL */
    KpDiagSpan spans[KP_DIAG_MAX_SPANS];  /* secondary places */
    int nspans;
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
/* Adds an error (printf-style message).  Beyond KP_MAX_DIAGS (20) errors
 * the rest are dropped (the count still grows, so callers see that errors
 * happened) and the report ends "too many errors, stopping". */
#define KP_MAX_DIAGS 20
void kp_diag_add(KpDiags *d, uint32_t line, uint32_t col, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Attaches a note ("hint: ...") to the most recent diagnostic (at most
 * KP_DIAG_MAX_NOTES; more are dropped). */
void kp_diag_note(KpDiags *d, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Sets the label written after the caret of the most recent diagnostic
 * ("value used here after move"). */
void kp_diag_label(KpDiags *d, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Adds a secondary place to the most recent diagnostic, printed after it
 * as "file:line:col: note: label" with its line and caret (at most
 * KP_DIAG_MAX_SPANS; more are dropped). */
void kp_diag_span(KpDiags *d, uint32_t line, uint32_t col, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Where diagnostics go: each one to `on_diag` as a KpDiagnostic when it is
 * set, else its text to `write` (one call per diagnostic).  `ud` is passed
 * to both. */
typedef struct KpDiagSink {
    KpWriteFn write;
    KpDiagnosticFn on_diag;
    void *ud;
} KpDiagSink;

/* The one formatting point of every located message.  Builds the
 * KpDiagnostic (file from src, the source line, notes, trace) and its text
 * "file:line:col: error: msg\n    line\n    ^\n    = note\n" (then, for
 * a trace, "stack trace (most recent call first):\n    at entry\n" ...),
 * and hands it to the sink.  `kind` is the word after the position
 * ("error", "runtime error", "warning"); with line 0 and severity NOTE only
 * the message is written.  The text is cut at 8 KiB. */
void kp_diag_emit(const KpDiagSink *sink, const KpSource *src, KpSeverity severity, int code,
                  const char *kind, uint32_t line, uint32_t col, const char *msg,
                  const char *const *notes, size_t nnotes, const char *const *trace, size_t ntrace);
/* kp_diag_emit with a label after the caret and secondary places. */
void kp_diag_emit_spans(const KpDiagSink *sink, const KpSource *src, KpSeverity severity, int code,
                        const char *kind, uint32_t line, uint32_t col, const char *msg, const char *label,
                        const KpDiagSpan *spans, size_t nspans, const char *const *notes, size_t nnotes,
                        const char *const *trace, size_t ntrace);

/* Hands every diagnostic to the sink, in source order, then "... and N
 * more errors" when some were dropped. */
void kp_diags_print(const KpDiags *d, const KpSource *src, const KpDiagSink *sink);
/* Returns the bytes of 1-based line `line` (without the newline). */
const char *kp_source_line(const KpSource *src, uint32_t line, size_t *len);

#endif
