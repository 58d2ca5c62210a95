/*
 * emit.c — `keep --emit=ownership`: the listing of the ownership record.
 *
 * Design.  There is one model of ownership, the one code generation
 * follows: every instruction that moves, drops or keeps a value is
 * recorded, with the source position it carries, as it is emitted
 * (ownership.c kp_own_record, into a KpOwnLog), and this file only prints
 * that record.  So the listing is what runs: the VM's --trace-ownership
 * reports each operation it performs at the same position, and the suite's
 * agreement test (tests/ownership/agree.sh) checks that every traced
 * operation is listed.
 *
 * Layout (docs/ownership.md, section 9): the program's lines, numbered,
 * each followed by the events at its positions —
 *
 *        8 | b := a
 *          |   8:6 move a: V
 *
 * `KIND WHAT: TYPE`, KIND one of move, drop, deinit, box, keep, release,
 * catch (where a try block's errors unwind to)
 * (and `summary NAME: …`, a function's summary at its declaration);
 * WHAT `_` for a temporary; TYPE `?` when the static type is unknown.  An
 * event marked "(at run time ...)" is one the compiler emits but whose
 * effect only the value decides (a value of unknown type, a callee whose
 * parameter mode is chosen when it runs).  The top-level variables'
 * drops when the program ends come last.  Values that own nothing —
 * scalars, strings, references — and variables certainly moved from show
 * no event.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compiler_int.h"

static int cmp_event(const KpOwnEvent *a, const KpOwnEvent *b) {
    /* the end of the program (line 0) last */
    uint32_t la = a->line ? a->line : UINT32_MAX, lb = b->line ? b->line : UINT32_MAX;
    if (la != lb) return la < lb ? -1 : 1;
    if (a->col != b->col) return a->col < b->col ? -1 : 1;
    return 0;
}

static bool same_event(const KpOwnEvent *a, const KpOwnEvent *b) {
    return a->kind == b->kind && a->line == b->line && a->col == b->col && a->maybe == b->maybe &&
           a->type == b->type && a->count == b->count &&
           (a->what == b->what || (a->what && b->what && !strcmp(a->what, b->what))) &&
           (a->why == b->why || (a->why && b->why && !strcmp(a->why, b->why)));
}

static void put(KpWriteFn w, void *ud, const char *s, size_t n) { w(ud, s, n); }

static void put_event(KpWriteFn w, void *ud, const KpOwnEvent *e) {
    char buf[512];
    int n;
    if (e->kind == KP_OWN_SUMMARY) {
        n = snprintf(buf, sizeof buf, "     |   %u:%u summary %s: %s\n", e->line, e->col, e->what ? e->what : "_",
                     e->why ? e->why : "");
        if (n > 0) put(w, ud, buf, (size_t)n < sizeof buf ? (size_t)n : sizeof buf - 1);
        return;
    }
    if (e->line)
        n = snprintf(buf, sizeof buf, "     |   %u:%u %s %s: %s", e->line, e->col, kp_own_kind_names[e->kind],
                     e->what ? e->what : "_", e->type ? kp_type_name(e->type) : "?");
    else
        n = snprintf(buf, sizeof buf, "     |   end %s %s: %s", kp_own_kind_names[e->kind], e->what ? e->what : "_",
                     e->type ? kp_type_name(e->type) : "?");
    if (n < 0) return;
    size_t len = (size_t)n < sizeof buf ? (size_t)n : sizeof buf - 1;
    if (e->kind == KP_OWN_KEEP && len < sizeof buf)
        len += (size_t)snprintf(buf + len, sizeof buf - len, e->count ? " (%u owner%s)" : " (manual)", e->count,
                                e->count == 1 ? "" : "s");
    if (e->maybe && len < sizeof buf)
        len += (size_t)snprintf(buf + len, sizeof buf - len, " (at run time: if it %s)",
                                e->kind == KP_OWN_MOVE ? "is an owned value taken by value" : "holds an owned value");
    if (e->why && len < sizeof buf) len += (size_t)snprintf(buf + len, sizeof buf - len, " -- %s", e->why);
    if (len >= sizeof buf) len = sizeof buf - 1;
    buf[len++] = '\n';
    put(w, ud, buf, len);
}

void kp_emit_ownership(KpVM *vm, const KpSource *src, const KpOwnLog *log, KpWriteFn w, void *ud) {
    uint32_t n = log ? log->n : 0;
    /* sorted by position, stable (insertion sort: the record is almost in
     * order already), duplicates (a defer body inlined on every exit path
     * records its events at each copy) printed once */
    KpOwnEvent *ev = n ? kp_arena_alloc(&vm->meta_arena, sizeof(KpOwnEvent) * n, 8) : NULL;
    if (n && !ev) n = 0;
    uint32_t m = 0;
    for (uint32_t i = 0; i < n; i++) {
        const KpOwnEvent *e = &log->items[i];
        uint32_t j = m;
        while (j > 0 && cmp_event(&ev[j - 1], e) > 0) j--;
        bool dup = false;
        for (uint32_t k = j; k-- > 0 && cmp_event(&ev[k], e) == 0;)
            if (same_event(&ev[k], e)) dup = true;
        if (dup) continue;
        memmove(ev + j + 1, ev + j, sizeof(KpOwnEvent) * (m - j));
        ev[j] = *e;
        m++;
    }
    char head[400];
    int hn = snprintf(head, sizeof head,
                      "-- %s: the moves, drops and keeps Keep inserts, at the positions where they run\n",
                      src->name);
    if (hn > 0) put(w, ud, head, (size_t)hn < sizeof head ? (size_t)hn : sizeof head - 1);
    const char *p = src->text, *end = src->text + src->len;
    uint32_t line = 1, k = 0;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t len = nl ? (size_t)(nl - p) : (size_t)(end - p);
        char num[16];
        int nn = snprintf(num, sizeof num, "%4u | ", line);
        put(w, ud, num, (size_t)nn);
        put(w, ud, p, len);
        put(w, ud, "\n", 1);
        while (k < m && ev[k].line && ev[k].line <= line) put_event(w, ud, &ev[k++]);
        p = nl ? nl + 1 : end;
        line++;
    }
    while (k < m && ev[k].line) put_event(w, ud, &ev[k++]); /* (past the last line) */
    if (k < m) {
        static const char endl[] = "     | when the program ends (last declared first):\n";
        put(w, ud, endl, sizeof endl - 1);
    }
    while (k < m) put_event(w, ud, &ev[k++]);
}
