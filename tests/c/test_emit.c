/*
 * test_emit.c — kp_vm_emit_ownership (what `keep --emit=ownership` prints),
 * through the public header only.
 *
 * Each case emits a small program and checks events of the listing (the
 * compiler's ownership record, docs/ownership.md section 9): drops at the
 * position where they run, none for scalars, strings, references and
 * moved-from variables, moves (into by-value parameters too), keep boxes
 * and their counts, the temporaries of pipes, the top-level variables
 * dropped when the program ends, and a program the compiler rejects
 * (diagnostics, exit code, no listing).  Every VM is made on
 * a counting host allocator, and after kp_vm_free its count of live blocks
 * and bytes must be zero; a last case makes every allocation fail in turn.
 *
 * Prints one line per failed check on stderr, then "N passed, M failed".
 */
#include <keep.h>

#include "check.h"

#include "counting.h"
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


/* ------------------------------------------------------------ the host */

typedef struct Host {
    Counting mem; /* the host allocator (counting.h) */
    char *out;
    size_t out_len, out_cap;
    char err[8192];
    size_t err_len;
    size_t script_out; /* bytes the script printed (must stay 0) */
} Host;

static void emit_out(void *ud, const char *bytes, size_t len) {
    Host *h = ud;
    if (h->out_len + len + 1 > h->out_cap) {
        size_t cap = h->out_cap ? h->out_cap : 1024;
        while (cap < h->out_len + len + 1) cap *= 2;
        char *n = realloc(h->out, cap);
        if (!n) abort();
        h->out = n;
        h->out_cap = cap;
    }
    memcpy(h->out + h->out_len, bytes, len);
    h->out_len += len;
    h->out[h->out_len] = 0;
}

static void script_out(void *ud, const char *bytes, size_t len) {
    (void)bytes;
    ((Host *)ud)->script_out += len;
}

static void host_err(void *ud, const char *bytes, size_t len) {
    Host *h = ud;
    if (h->err_len + len >= sizeof h->err) len = sizeof h->err - 1 - h->err_len;
    memcpy(h->err + h->err_len, bytes, len);
    h->err_len += len;
    h->err[h->err_len] = 0;
}

static KpVM *new_vm(Host *h) {
    KpConfig cfg = {0};
    cfg.alloc = counting_alloc;
    cfg.alloc_ud = &h->mem;
    cfg.write_out = script_out;
    cfg.write_err = host_err;
    cfg.ud = h;
    return kp_vm_new(&cfg);
}

/* Emits src on a fresh VM; returns the result code, output in h->out. */
static int emit(Host *h, const char *src) {
    KpVM *vm = new_vm(h);
    if (!vm) return -1;
    int rc = kp_vm_emit_ownership(vm, "t.kp", src, strlen(src), emit_out, h);
    kp_vm_free(vm);
    return rc;
}

static void host_done(Host *h) {
    CHECK(h->mem.blocks == 0);
    CHECK(h->mem.bytes == 0);
    CHECK(h->script_out == 0); /* emitting never runs the program */
    if (failed && h->out) fprintf(stderr, "--- %s emitted:\n%s---\n", check_current, h->out);
    free(h->out);
    h->out = NULL;
}

/* true if out has a line equal to `line` once leading spaces are stripped */
static bool has_line(const char *out, const char *line) {
    size_t n = strlen(line);
    const char *p = out;
    while (p && *p) {
        while (*p == ' ') p++;
        const char *e = strchr(p, '\n');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (len == n && !memcmp(p, line, n)) return true;
        p = e ? e + 1 : NULL;
    }
    return false;
}

/* true if some line starts (after indentation) with `prefix` */
static bool has_line_prefix(const char *out, const char *prefix) {
    size_t n = strlen(prefix);
    const char *p = out;
    while (p && *p) {
        while (*p == ' ') p++;
        if (!strncmp(p, prefix, n)) return true;
        const char *e = strchr(p, '\n');
        p = e ? e + 1 : NULL;
    }
    return false;
}

/* ------------------------------------------------------------ cases */

/* true if some event line of the listing ("|   L:C KIND ...") starts with
 * `ev` once the "|   " is stripped */
static bool has_event(const char *out, const char *ev) {
    size_t n = strlen(ev);
    const char *p = out;
    while (p && *p) {
        while (*p == ' ') p++;
        if (!strncmp(p, "|   ", 4) && !strncmp(p + 4, ev, n)) return true;
        const char *e = strchr(p, '\n');
        p = e ? e + 1 : NULL;
    }
    return false;
}

/* true if some event line names `what` with this kind, at any position */
static bool has_kind_of(const char *out, const char *kind, const char *what) {
    char pat[128];
    snprintf(pat, sizeof pat, " %s %s:", kind, what);
    const char *p = out;
    while (p && (p = strstr(p, pat))) {
        const char *b = p;
        while (b > out && b[-1] != '\n') b--;
        while (*b == ' ') b++;
        if (!strncmp(b, "|   ", 4)) return true;
        p++;
    }
    return false;
}

static void test_drops(void) {
    Host h = {0};
    int rc = emit(&h,
                  "V : Type = ( .name : String )\n"
                  "f () -> () := {\n"
                  "    n := 5\n"
                  "    x := 1.5\n"
                  "    ok := true\n"
                  "    a := V(.name = \"a\")\n"
                  "    xs := [1, 2]\n"
                  "    s := \"text\"\n"
                  "    r := &a\n"
                  "    print(n, x, ok, r.name, len(xs), s)\n"
                  "}\n");
    CHECK(rc == KP_OK);
    /* dropped when f returns, at its last statement, last declared first */
    CHECK(h.out && has_event(h.out, "10:10 drop xs: List"));
    CHECK(h.out && has_event(h.out, "10:10 drop a: V -- the function returns"));
    CHECK(h.out && strstr(h.out, "drop xs: List") < strstr(h.out, "drop a: V"));
    /* scalars, strings and references own nothing: no event */
    CHECK(h.out && !has_kind_of(h.out, "drop", "n"));
    CHECK(h.out && !has_kind_of(h.out, "drop", "x"));
    CHECK(h.out && !has_kind_of(h.out, "drop", "ok"));
    CHECK(h.out && !has_kind_of(h.out, "drop", "s"));
    CHECK(h.out && !has_kind_of(h.out, "drop", "r"));
    /* the program's lines, numbered */
    CHECK(h.out && strstr(h.out, "   6 |     a := V(.name = \"a\")\n"));
    host_done(&h);
}

static void test_typed_declarations(void) {
    Host h = {0};
    int rc = emit(&h,
                  "H : Type = ( .n : Int )\n"
                  "f () -> () := {\n"
                  "    i : Int = 3\n"
                  "    b : Int64 = 4\n"
                  "    h : H\n"
                  "    print(i, b, h)\n"
                  "}\n");
    CHECK(rc == KP_OK);
    CHECK(h.out && has_kind_of(h.out, "drop", "h"));
    CHECK(h.out && !has_kind_of(h.out, "drop", "i"));
    CHECK(h.out && !has_kind_of(h.out, "drop", "b"));
    host_done(&h);
}

static void test_moves(void) {
    Host h = {0};
    int rc = emit(&h,
                  "V : Type = ( .name : String )\n"
                  "twice (n: Int) -> Int := { return n * 2 }\n"
                  "eat (v: V) -> () := { print(v.name) }\n"
                  "f () -> () := {\n"
                  "    x := twice(21)\n"
                  "    y := x\n"
                  "    a := V(.name = \"a\")\n"
                  "    b := a\n"
                  "    eat(b)\n"
                  "    print(y)\n"
                  "}\n");
    CHECK(rc == KP_OK);
    CHECK(h.out && has_event(h.out, "8:10 move a: V"));
    CHECK(h.out && has_event(h.out, "9:9 move b: V")); /* a by-value parameter */
    /* an Int is copied: neither moved nor dropped */
    CHECK(h.out && !has_kind_of(h.out, "move", "x"));
    CHECK(h.out && !has_kind_of(h.out, "drop", "x"));
    CHECK(h.out && !has_kind_of(h.out, "drop", "y"));
    /* moved-from variables are not dropped */
    CHECK(h.out && !has_kind_of(h.out, "drop", "a"));
    CHECK(h.out && !has_kind_of(h.out, "drop", "b"));
    /* the by-value parameter is dropped when eat returns */
    CHECK(h.out && has_event(h.out, "3:28 drop v: V -- the function returns"));
    host_done(&h);
}

/* try / catch: the listing shows the catch, the catch variable's drop,
 * and the try block's own drops on its normal exit */
static void test_try_catch(void) {
    Host h = {0};
    int rc = emit(&h,
                  "V : Type = ( .name : String )\n"
                  "f () -> () := {\n"
                  "    try {\n"
                  "        a := V(.name = \"a\")\n"
                  "        print(a.name)\n"
                  "    } catch e {\n"
                  "        print(e.message)\n"
                  "    }\n"
                  "}\n");
    CHECK(rc == KP_OK);
    CHECK(h.out && has_event(h.out, "6:15 catch e: Error -- a runtime error in the try block unwinds to here"));
    CHECK(h.out && has_kind_of(h.out, "drop", "e"));
    CHECK(h.out && has_kind_of(h.out, "drop", "a"));
    host_done(&h);
}

/* function literals: each capture is listed where the literal is made,
 * with how it is captured; the value that owns a capture is dropped */
static void test_captures(void) {
    Host h = {0};
    int rc = emit(&h,
                  "V : Type = ( .name : String )\n"
                  "f () -> () := {\n"
                  "    v := V(.name = \"a\")\n"
                  "    n := 0\n"
                  "    g := () -> () := { n += 1; print(v.name) }\n"
                  "    k := () -> String := { return ~&v.name }\n"
                  "}\n");
    CHECK(rc == KP_OK);
    CHECK(h.out && has_event(h.out, "5:10 capture n: Int -- borrowed mutably ($&): the function value may not outlive it"));
    CHECK(h.out && has_event(h.out, "5:10 capture v: V -- borrowed (&): the function value may not outlive it"));
    CHECK(h.out && has_event(h.out, "6:10 capture v: V -- taken (~&): moved into the function value, which owns it"));
    CHECK(h.out && has_kind_of(h.out, "drop", "k"));
    host_done(&h);
}

/* `return v` of a local: its value moves to the caller (not dropped) */
static void test_return_moves(void) {
    Host h = {0};
    int rc = emit(&h,
                  "V : Type = ( .name : String )\n"
                  "mk () -> V := {\n"
                  "    v := V(.name = \"a\")\n"
                  "    n := 3\n"
                  "    print(n)\n"
                  "    return v\n"
                  "}\n"
                  "num () -> Int := {\n"
                  "    k := 4\n"
                  "    return k\n"
                  "}\n");
    CHECK(rc == KP_OK);
    CHECK(h.out && has_event(h.out, "6:5 move v: V -- returned to the caller"));
    CHECK(h.out && !has_kind_of(h.out, "drop", "v"));
    /* an Int is copied out: no event */
    CHECK(h.out && !has_kind_of(h.out, "move", "k"));
    host_done(&h);
}

/* the function summaries, at each declaration with a reference parameter */
static void test_summaries(void) {
    Host h = {0};
    int rc = emit(&h,
                  "H : Type = ( .r : &Int )\n"
                  "W : Type = ( .t : &Int )\n"
                  "fill (h: $&H, k: &Int) -> () := { h.r = k }\n"
                  "wrap (t: &Int) -> W := { return W(.t = t) }\n"
                  "look (t: &Int) -> Int := { return t + 1 }\n"
                  "twice (n: Int) -> Int := { return n * 2 }\n");
    CHECK(rc == KP_OK);
    CHECK(h.out && has_event(h.out, "3:1 summary fill: it may store k into h"));
    CHECK(h.out && has_event(h.out, "4:1 summary wrap: the result may hold a reference from t"));
    CHECK(h.out && has_event(h.out, "5:1 summary look: its reference parameters reach neither"));
    CHECK(h.out && !has_event(h.out, "6:1 summary")); /* no reference parameter */
    host_done(&h);
}

static void test_keep_refcounts(void) {
    Host h = {0};
    int rc = emit(&h,
                  "V : Type = ( .name : String )\n"
                  "H : Type = ( .ref : &V )\n"
                  "f () -> () := {\n"
                  "    h1 : H\n"
                  "    h2 : H\n"
                  "    one := V(.name = \"1\")\n"
                  "    keep one with h1\n"
                  "    two := V(.name = \"2\")\n"
                  "    keep two with h1, h2\n"
                  "    man := V(.name = \"m\")\n"
                  "    keep man\n"
                  "    deinit(man)\n"
                  "}\n");
    CHECK(rc == KP_OK);
    CHECK(h.out && has_event(h.out, "6:5 box one: V"));
    CHECK(h.out && has_event(h.out, "7:5 keep one: V (1 owner)"));
    CHECK(h.out && has_event(h.out, "9:5 keep two: V (2 owners)"));
    CHECK(h.out && has_event(h.out, "11:5 keep man: V (manual)"));
    CHECK(h.out && has_event(h.out, "12:11 deinit man: V"));
    host_done(&h);
}

static void test_pipe_temporaries(void) {
    Host h = {0};
    int rc = emit(&h,
                  "V : Type = ( .name : String )\n"
                  "make (n: String) -> V := { return V(.name = n) }\n"
                  "show (v: &V) -> () := { print(v.name) }\n"
                  "f () -> () := {\n"
                  "    make(\"t\") | show(&_)\n"
                  "}\n");
    CHECK(rc == KP_OK);
    CHECK(h.out && has_event(h.out, "5:21 drop _: V -- the piped value, unless the call took it"));
    host_done(&h);
}

static void test_top_level(void) {
    Host h = {0};
    int rc = emit(&h, "xs := [1, 2]\nys := xs\nn := 3\n");
    CHECK(rc == KP_OK);
    CHECK(h.out && has_event(h.out, "2:7 move xs: List"));
    /* top-level variables are dropped when the program ends; xs was moved */
    CHECK(h.out && has_event(h.out, "end drop ys: List"));
    CHECK(h.out && !has_kind_of(h.out, "drop", "xs"));
    CHECK(h.out && !has_kind_of(h.out, "drop", "n"));
    host_done(&h);
}

static void test_header_and_no_run(void) {
    Host h = {0};
    int rc = emit(&h, "print(\"never printed\")\nerror(\"never raised\")\n");
    CHECK(rc == KP_OK);
    CHECK(h.out && has_line_prefix(h.out, "-- t.kp: the moves, drops and keeps Keep inserts"));
    CHECK(h.out && has_line(h.out, "1 | print(\"never printed\")"));
    CHECK(h.err_len == 0);
    host_done(&h);
}

static void test_parse_error(void) {
    Host h = {0};
    int rc = emit(&h, "f () -> () := {\n    x := (\n");
    CHECK(rc == KP_ERR_COMPILE);
    CHECK(strstr(h.err, "t.kp:") != NULL);
    CHECK(strstr(h.err, "error") != NULL);
    host_done(&h);
}

/* Found by tests/fuzz/fuzz_emit.c: a source that does not parse leaves its
 * first error in kp_vm_last_error, as kp_vm_run_string does. */
static void test_parse_error_sets_last_error(void) {
    Host h = {0};
    KpVM *vm = new_vm(&h);
    CHECK(vm != NULL);
    if (vm) {
        const char *src = "x := := 1\n";
        CHECK(kp_vm_emit_ownership(vm, "e.kp", src, strlen(src), emit_out, &h) == KP_ERR_COMPILE);
        CHECK(strncmp(kp_vm_last_error(vm), "e.kp:1:", 7) == 0);
        CHECK(kp_vm_emit_ownership(vm, "e.kp", "x := 1\n", 7, emit_out, &h) == KP_OK);
        CHECK(strcmp(kp_vm_last_error(vm), "") == 0);
        kp_vm_free(vm);
    }
    host_done(&h);
}

/* a program the compiler rejects: its diagnostics, no listing */
static void test_compile_error(void) {
    Host h = {0};
    int rc = emit(&h, "if false {\n    n : Int = \"five\"\n}\n");
    CHECK(rc == KP_ERR_COMPILE);
    CHECK(strstr(h.err, "t.kp:2:") != NULL);
    CHECK(h.out == NULL);
    host_done(&h);
}

static void test_same_vm_twice(void) {
    Host h = {0};
    KpVM *vm = new_vm(&h);
    CHECK(vm != NULL);
    if (vm) {
        const char *src = "V : Type = ( .n : Int )\nf () -> () := {\n    v := V(.n = 1)\n}\nw := V(.n = 2)\n";
        CHECK(kp_vm_emit_ownership(vm, "a.kp", src, strlen(src), emit_out, &h) == KP_OK);
        size_t first = h.out_len;
        /* its functions and types are declared, as by a run: a second
         * listing of them needs the REPL's rules (redefinitions) */
        CHECK(kp_vm_emit_ownership_ex(vm, "a.kp", src, strlen(src), KP_EVAL_REPL, emit_out, &h) == KP_OK);
        CHECK(h.out_len == 2 * first); /* same source, same text */
        /* nothing ran: w was not declared */
        CHECK(kp_vm_run_string(vm, "c.kp", "print(w)\n", 9) == KP_ERR_COMPILE);
        CHECK(kp_vm_run_string(vm, "d.kp", "x := [1]\n", 9) == KP_OK);
        kp_vm_free(vm);
    }
    host_done(&h);
}

/* every allocation fails in turn: no crash, nothing leaked */
static void test_out_of_memory(void) {
    const char *src =
        "V : Type = ( .name : String )\n"
        "H : Type = ( .ref : &V )\n"
        "f () -> H := {\n"
        "    h : H\n"
        "    v := V(.name = \"v\")\n"
        "    h.ref = &v\n"
        "    keep v with h\n"
        "    return h\n"
        "}\n";
    long total;
    {
        Host h = {0};
        CHECK(emit(&h, src) == KP_OK);
        total = h.mem.requests;
        host_done(&h);
    }
    bool all_clean = true;
    for (long k = 0; k < total; k++) {
        Host h = {0};
        h.mem.fail = true;
        h.mem.fail_at = k;
        int rc = emit(&h, src);
        (void)rc;
        if (h.mem.blocks != 0 || h.mem.bytes != 0) all_clean = false;
        free(h.out);
    }
    CHECK(all_clean);
}

int main(void) {
    RUN(test_drops);
    RUN(test_try_catch);
    RUN(test_captures);
    RUN(test_parse_error_sets_last_error);
    RUN(test_typed_declarations);
    RUN(test_moves);
    RUN(test_return_moves);
    RUN(test_summaries);
    RUN(test_keep_refcounts);
    RUN(test_pipe_temporaries);
    RUN(test_top_level);
    RUN(test_header_and_no_run);
    RUN(test_parse_error);
    RUN(test_compile_error);
    RUN(test_same_vm_twice);
    RUN(test_out_of_memory);
    return CHECK_DONE();
}
