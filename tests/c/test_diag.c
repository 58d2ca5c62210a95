/*
 * test_diag.c — the layout of diagnostics (lexer/source.c, the one place
 * they are formatted): the echoed line with control bytes and invalid
 * UTF-8 escaped as \xHH and the caret kept under its byte, the label after
 * the caret, secondary places as located notes with a '-' marker, notes,
 * and the cap of 20 errors.
 */
#include <stdio.h>

#include "check.h"
#include <string.h>

#include "lexer/source.h"


typedef struct Out {
    char buf[16384];
    size_t len;
} Out;

static void out_write(void *ud, const char *s, size_t n) {
    Out *o = ud;
    if (n > sizeof o->buf - 1 - o->len) n = sizeof o->buf - 1 - o->len;
    memcpy(o->buf + o->len, s, n);
    o->len += n;
    o->buf[o->len] = 0;
}

static void test_escaped_line_and_caret(void) {
    const char text[] = "x := 1 \x01\xff + 2\n";
    KpSource src = {"t.kp", text, sizeof text - 1};
    Out o = {{0}, 0};
    KpDiagSink sink = {out_write, NULL, &o};
    kp_diag_emit_spans(&sink, &src, KP_SEVERITY_ERROR, 2, "error", 1, 11, "unexpected '+'", "here", NULL, 0, NULL, 0,
                       NULL, 0);
    const char *want = "t.kp:1:11: error: unexpected '+'\n"
                       "    x := 1 \\x01\\xFF + 2\n"
                       "                    ^ here\n";
    CHECKF(!strcmp(o.buf, want), "escaped line: got\n%s", o.buf);
}

static void test_utf8_kept(void) {
    const char text[] = "s := \"\xc3\xa9t\xc3\xa9\" + 1\n";
    KpSource src = {"u.kp", text, sizeof text - 1};
    Out o = {{0}, 0};
    KpDiagSink sink = {out_write, NULL, &o};
    kp_diag_emit(&sink, &src, KP_SEVERITY_ERROR, 2, "error", 1, 14, "no", NULL, 0, NULL, 0);
    const char *want = "u.kp:1:14: error: no\n"
                       "    s := \"\xc3\xa9t\xc3\xa9\" + 1\n"
                       "               ^\n";
    CHECKF(!strcmp(o.buf, want), "utf-8 line: got\n%s", o.buf);
}

static void test_spans_and_notes(void) {
    const char text[] = "x := T()\ntake(x)\nprint(x)\n";
    KpSource src = {"m.kp", text, sizeof text - 1};
    Out o = {{0}, 0};
    KpDiagSink sink = {out_write, NULL, &o};
    KpDiagSpan spans[] = {{2, 6, "'x' moved here"}};
    const char *notes[] = {"help: clone it"};
    kp_diag_emit_spans(&sink, &src, KP_SEVERITY_ERROR, 2, "error", 3, 7, "use of moved value 'x'",
                       "value used here after move", spans, 1, notes, 1, NULL, 0);
    const char *want = "m.kp:3:7: error: use of moved value 'x'\n"
                       "    print(x)\n"
                       "          ^ value used here after move\n"
                       "m.kp:2:6: note: 'x' moved here\n"
                       "    take(x)\n"
                       "         -\n"
                       "    = help: clone it\n";
    CHECKF(!strcmp(o.buf, want), "spans: got\n%s", o.buf);
}

static void test_cap_of_20(void) {
    char text[64 * 30];
    size_t len = 0;
    for (int i = 0; i < 30; i++) len += (size_t)snprintf(text + len, sizeof text - len, "bad%d\n", i);
    KpSource src = {"c.kp", text, len};
    KpAllocator a;
    kp_direct_init(&a);
    KpArena arena;
    KpAllocator view;
    kp_arena_init(&arena, &a, &view);
    KpDiags d;
    kp_diags_init(&d, &arena);
    for (int i = 0; i < 30; i++) kp_diag_add(&d, (uint32_t)i + 1, 1, "error %d", i);
    Out o = {{0}, 0};
    KpDiagSink sink = {out_write, NULL, &o};
    kp_diags_print(&d, &src, &sink);
    int headers = 0;
    for (const char *p = o.buf; (p = strstr(p, ": error: ")); p++) headers++;
    CHECKF(headers == 20, "20 errors shown, got %d", headers);
    CHECKF(strstr(o.buf, "too many errors, stopping (10 more not shown)") != NULL, "cap message: %s", o.buf);
    kp_arena_deinit(&arena);
}

int main(void) {
    test_escaped_line_and_caret();
    test_utf8_kept();
    test_spans_and_notes();
    test_cap_of_20();
    return CHECK_DONE();
}
