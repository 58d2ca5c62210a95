/*
 * source.c — diagnostics against source text.
 */
#include "source.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


void kp_diags_init(KpDiags *d, KpArena *arena) {
    memset(d, 0, sizeof *d);
    d->arena = arena;
}

static const char *vformat(KpArena *arena, const char *fmt, va_list ap) {
    char buf[1024];
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    if (n < 0) n = 0;
    if ((size_t)n >= sizeof buf) n = sizeof buf - 1;
    char *s = kp_arena_alloc(arena, (size_t)n + 1, 1);
    if (!s) return "out of memory";
    memcpy(s, buf, (size_t)n);
    s[n] = 0;
    return s;
}

void kp_diag_add(KpDiags *d, uint32_t line, uint32_t col, const char *fmt, ...) {
    if (d->count >= KP_MAX_DIAGS || d->oom) { /* after a lost one, count only: items has no room */
        d->count++;
        return;
    }
    if (d->count >= d->cap) {
        int ncap = d->cap ? d->cap * 2 : 8;
        KpDiag *n = kp_arena_alloc(d->arena, sizeof(KpDiag) * (size_t)ncap, 8);
        if (!n) {
            if (!d->oom) {
                d->oom = true;
                d->oom_line = line;
                d->oom_col = col;
            }
            d->count++;
            return;
        }
        if (d->cap) memcpy(n, d->items, sizeof(KpDiag) * (size_t)d->cap);
        d->items = n;
        d->cap = ncap;
    }
    va_list ap;
    va_start(ap, fmt);
    const char *msg = vformat(d->arena, fmt, ap);
    va_end(ap);
    d->items[d->count++] = (KpDiag){line, col, msg, {NULL}, 0, NULL, {{0}}, 0};
}

void kp_diag_label(KpDiags *d, const char *fmt, ...) {
    if (d->count == 0 || d->count > KP_MAX_DIAGS || d->count > d->cap) return;
    va_list ap;
    va_start(ap, fmt);
    d->items[d->count - 1].label = vformat(d->arena, fmt, ap);
    va_end(ap);
}

void kp_diag_span(KpDiags *d, uint32_t line, uint32_t col, const char *fmt, ...) {
    if (d->count == 0 || d->count > KP_MAX_DIAGS || d->count > d->cap) return;
    KpDiag *last = &d->items[d->count - 1];
    if (last->nspans >= KP_DIAG_MAX_SPANS) return;
    va_list ap;
    va_start(ap, fmt);
    last->spans[last->nspans++] = (KpDiagSpan){line, col, vformat(d->arena, fmt, ap)};
    va_end(ap);
}

void kp_diag_note(KpDiags *d, const char *fmt, ...) {
    if (d->count == 0 || d->count > KP_MAX_DIAGS || d->count > d->cap) return;
    KpDiag *last = &d->items[d->count - 1];
    if (last->nnotes >= KP_DIAG_MAX_NOTES) return;
    va_list ap;
    va_start(ap, fmt);
    last->notes[last->nnotes++] = vformat(d->arena, fmt, ap);
    va_end(ap);
}

const char *kp_source_line(const KpSource *src, uint32_t line, size_t *len) {
    const char *p = src->text, *end = src->text + src->len;
    for (uint32_t l = 1; l < line && p < end; p++)
        if (*p == '\n') l++;
    const char *e = p;
    while (e < end && *e != '\n') e++;
    if (e > p && e[-1] == '\r') e--;
    *len = (size_t)(e - p);
    return p;
}

/* The text of one diagnostic, cut at its capacity. */
typedef struct Text {
    char *p;
    size_t len, cap;
} Text;

static void put(Text *t, const char *s, size_t n) {
    if (n > t->cap - 1 - t->len) n = t->cap - 1 - t->len;
    memcpy(t->p + t->len, s, n);
    t->len += n;
    t->p[t->len] = 0;
}
static void puts_(Text *t, const char *s) { put(t, s, strlen(s)); }

/* Length of the valid UTF-8 sequence at s (n bytes left), or 0. */
static size_t utf8_len(const unsigned char *s, size_t n) {
    size_t k = s[0] >= 0xF0 && s[0] <= 0xF4 ? 4 : s[0] >= 0xE0 ? 3 : s[0] >= 0xC2 && s[0] < 0xE0 ? 2 : 0;
    if (!k || k > n) return 0;
    for (size_t i = 1; i < k; i++)
        if ((s[i] & 0xC0) != 0x80) return 0;
    return k;
}

/* The echoed source line and its caret: printable text and valid UTF-8 as
 * they are, every other byte (control bytes, NUL, invalid UTF-8) as \xHH,
 * so binary garbage cannot disturb a terminal; the caret stays under byte
 * `col`.  A label follows the caret. */
static void snippet(Text *t, const char *l, size_t len, uint32_t col, char caret, const char *label) {
    char esc[8];
    puts_(t, "    ");
    for (size_t i = 0; i < len;) {
        unsigned char c = (unsigned char)l[i];
        size_t k = c >= 0x80 ? utf8_len((const unsigned char *)l + i, len - i) : 0;
        if (k) { put(t, l + i, k); i += k; continue; }
        if (c == '\t' || (c >= 32 && c < 127)) put(t, l + i, 1);
        else { snprintf(esc, sizeof esc, "\\x%02X", c); puts_(t, esc); }
        i++;
    }
    puts_(t, "\n    ");
    for (size_t i = 0; i + 1 < col && i < len;) {
        unsigned char c = (unsigned char)l[i];
        size_t k = c >= 0x80 ? utf8_len((const unsigned char *)l + i, len - i) : 0;
        if (k) { puts_(t, " "); i += k; continue; }
        puts_(t, c == '\t' ? "\t" : (c >= 32 && c < 127) ? " " : "    ");
        i++;
    }
    put(t, &caret, 1);
    if (label && *label) {
        puts_(t, " ");
        puts_(t, label);
    }
    puts_(t, "\n");
}

void kp_diag_emit(const KpDiagSink *sink, const KpSource *src, KpSeverity severity, int code,
                  const char *kind, uint32_t line, uint32_t col, const char *msg,
                  const char *const *notes, size_t nnotes, const char *const *trace, size_t ntrace) {
    kp_diag_emit_spans(sink, src, severity, code, kind, line, col, msg, NULL, NULL, 0, notes, nnotes, trace, ntrace);
}

void kp_diag_emit_spans(const KpDiagSink *sink, const KpSource *src, KpSeverity severity, int code,
                        const char *kind, uint32_t line, uint32_t col, const char *msg, const char *label,
                        const KpDiagSpan *spans, size_t nspans, const char *const *notes, size_t nnotes,
                        const char *const *trace, size_t ntrace) {
    char textbuf[8192], shown[201];
    Text t = {textbuf, 0, sizeof textbuf};
    textbuf[0] = shown[0] = 0;
    const char *file = src && src->name ? src->name : "?";
    size_t len = 0;
    const char *l = NULL;
    if (src && line > 0) {
        l = kp_source_line(src, line, &len);
        if (len > 200) len = 200; /* keep giant lines readable */
        /* the line with control bytes (and NUL) replaced by spaces */
        for (size_t i = 0; i < len; i++) {
            unsigned char c = (unsigned char)l[i];
            shown[i] = (c < 32 && c != '\t') || c == 127 ? ' ' : (char)c;
        }
        shown[len] = 0;
    }
    if (severity == KP_SEVERITY_NOTE && line == 0) {
        puts_(&t, msg);
        puts_(&t, "\n");
    } else {
        char head[256];
        snprintf(head, sizeof head, "%s:%u:%u: %s: ", file, line, col, kind);
        puts_(&t, head);
        puts_(&t, msg);
        puts_(&t, "\n");
        if (l) snippet(&t, l, len, col, '^', label);
    }
    for (size_t i = 0; i < nspans; i++) {
        char head[256];
        snprintf(head, sizeof head, "%s:%u:%u: note: %s\n", file, spans[i].line, spans[i].col, spans[i].label);
        puts_(&t, head);
        size_t slen = 0;
        const char *sl = src && spans[i].line ? kp_source_line(src, spans[i].line, &slen) : NULL;
        if (slen > 200) slen = 200;
        if (sl) snippet(&t, sl, slen, spans[i].col, '-', NULL);
    }
    for (size_t i = 0; i < nnotes; i++) {
        puts_(&t, "    = ");
        puts_(&t, notes[i]);
        puts_(&t, "\n");
    }
    if (ntrace) puts_(&t, "stack trace (most recent call first):\n");
    for (size_t i = 0; i < ntrace; i++) {
        puts_(&t, trace[i][0] == '.' ? "    " : "    at ");
        puts_(&t, trace[i]);
        puts_(&t, "\n");
    }
    if (sink->on_diag) {
        KpDiagnostic d = {severity, code, file, line, col, msg, shown, notes, nnotes, trace, ntrace, textbuf, t.len};
        sink->on_diag(sink->ud, &d);
    } else if (sink->write) {
        sink->write(sink->ud, textbuf, t.len);
    }
}

static int cmp_diag(const void *x, const void *y) {
    const KpDiag *a = x, *b = y;
    if (a->line != b->line) return a->line < b->line ? -1 : 1;
    if (a->col != b->col) return a->col < b->col ? -1 : 1;
    return 0;
}

void kp_diags_print(const KpDiags *d, const KpSource *src, const KpDiagSink *sink) {
    int n = d->count < KP_MAX_DIAGS ? d->count : KP_MAX_DIAGS;
    if (n > d->cap) n = d->cap; /* out of memory while recording: show what was kept */
    if (!d->items) n = 0;
    KpDiag sorted[KP_MAX_DIAGS];
    if (n > 0) {
        memcpy(sorted, d->items, sizeof(KpDiag) * (size_t)n);
        qsort(sorted, (size_t)n, sizeof(KpDiag), cmp_diag);
    }
    for (int i = 0; i < n; i++)
        kp_diag_emit_spans(sink, src, KP_SEVERITY_ERROR, KP_ERR_COMPILE, "error", sorted[i].line, sorted[i].col,
                           sorted[i].msg, sorted[i].label, sorted[i].spans, (size_t)sorted[i].nspans, sorted[i].notes,
                           (size_t)sorted[i].nnotes, NULL, 0);
    if (d->oom)
        kp_diag_emit(sink, src, KP_SEVERITY_ERROR, KP_ERR_COMPILE, "error", d->oom_line, d->oom_col,
                     "out of memory", NULL, 0, NULL, 0);
    if (d->count > KP_MAX_DIAGS) {
        char buf[64];
        snprintf(buf, sizeof buf, "too many errors, stopping (%d more not shown)", d->count - KP_MAX_DIAGS);
        kp_diag_emit(sink, src, KP_SEVERITY_NOTE, KP_ERR_COMPILE, "note", 0, 0, buf, NULL, 0, NULL, 0);
    }
}
