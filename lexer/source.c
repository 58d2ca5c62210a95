/*
 * source.c — diagnostics against source text.
 */
#include "source.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KP_MAX_DIAGS 100

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
    if (d->count >= KP_MAX_DIAGS) {
        d->count++;
        return;
    }
    if (d->count >= d->cap) { /* (count passes cap once memory ran out) */
        int ncap = d->cap ? d->cap * 2 : 8;
        while (ncap <= d->count) ncap *= 2;
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
        for (int i = d->cap; i < d->count; i++) /* the ones lost meanwhile */
            n[i] = (KpDiag){d->oom_line, d->oom_col, "out of memory", NULL};
        d->items = n;
        d->cap = ncap;
    }
    va_list ap;
    va_start(ap, fmt);
    const char *msg = vformat(d->arena, fmt, ap);
    va_end(ap);
    d->items[d->count++] = (KpDiag){line, col, msg, NULL};
}

void kp_diag_note(KpDiags *d, const char *fmt, ...) {
    if (d->count == 0 || d->count > KP_MAX_DIAGS || d->count > d->cap) return;
    va_list ap;
    va_start(ap, fmt);
    d->items[d->count - 1].note = vformat(d->arena, fmt, ap);
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

static void out(KpWriteFn w, void *ud, const char *s) { w(ud, s, strlen(s)); }

void kp_diag_format(const KpSource *src, uint32_t line, uint32_t col,
                    const char *kind, const char *msg, KpWriteFn write,
                    void *ud) {
    char head[256];
    snprintf(head, sizeof head, "%s:%u:%u: %s: ", src ? src->name : "?",
             line, col, kind);
    out(write, ud, head);
    out(write, ud, msg);
    out(write, ud, "\n");
    if (!src || line == 0) return;
    size_t len;
    const char *l = kp_source_line(src, line, &len);
    if (len > 200) len = 200; /* keep giant lines readable */
    out(write, ud, "    ");
    /* show the line with control bytes (and NUL) replaced by spaces */
    char buf[201];
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)l[i];
        buf[i] = (c < 32 && c != '\t') || c == 127 ? ' ' : (char)c;
    }
    write(ud, buf, len);
    out(write, ud, "\n    ");
    for (uint32_t i = 1; i < col && i <= len; i++)
        write(ud, l[i - 1] == '\t' ? "\t" : " ", 1);
    out(write, ud, "^\n");
}

static int cmp_diag(const void *x, const void *y) {
    const KpDiag *a = x, *b = y;
    if (a->line != b->line) return a->line < b->line ? -1 : 1;
    if (a->col != b->col) return a->col < b->col ? -1 : 1;
    return 0;
}

void kp_diags_print(const KpDiags *d, const KpSource *src, KpWriteFn write,
                    void *ud) {
    int n = d->count < KP_MAX_DIAGS ? d->count : KP_MAX_DIAGS;
    if (n > d->cap) n = d->cap; /* out of memory while recording: show what was kept */
    if (!d->items) n = 0;
    KpDiag sorted[KP_MAX_DIAGS];
    if (n > 0) {
        memcpy(sorted, d->items, sizeof(KpDiag) * (size_t)n);
        qsort(sorted, (size_t)n, sizeof(KpDiag), cmp_diag);
    }
    for (int i = 0; i < n; i++) {
        kp_diag_format(src, sorted[i].line, sorted[i].col, "error",
                       sorted[i].msg, write, ud);
        if (sorted[i].note) {
            out(write, ud, "    = ");
            out(write, ud, sorted[i].note);
            out(write, ud, "\n");
        }
    }
    if (d->oom && d->count > d->cap && d->cap < KP_MAX_DIAGS) /* lost, not shown */
        kp_diag_format(src, d->oom_line, d->oom_col, "error",
                       "out of memory", write, ud);
    if (d->count > KP_MAX_DIAGS) {
        char buf[64];
        snprintf(buf, sizeof buf, "... and %d more errors\n",
                 d->count - KP_MAX_DIAGS);
        out(write, ud, buf);
    }
}
