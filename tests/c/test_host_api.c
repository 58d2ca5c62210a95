/*
 * test_host_api.c — what a real host needs from include/keep.h beyond
 * running scripts: globals from C, structured diagnostics, a message with
 * every error, registration conflicts, re-entrant calls, small VMs and
 * host-defined types.  Only <keep.h> is included, as in a host.
 *
 * Every VM runs on a counting host allocator and must give every block
 * back at kp_vm_free.  Prints one line per failed check on stderr, then
 * "N passed, M failed".
 */
#include <keep.h>

#include "check.h"

#include "counting.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>


/* ------------------------------------------------------------ the host */

typedef struct Host {
    Counting mem; /* the host allocator (counting.h) */
    char out[8192];
    size_t out_len;
    char err[16384];
    size_t err_len;
    int nerr_writes; /* write_err calls */
} Host;

static void append(char *buf, size_t cap, size_t *len, const char *bytes, size_t n) {
    if (n == 0) return;
    if (*len + n >= cap) n = cap - 1 - *len;
    memcpy(buf + *len, bytes, n);
    *len += n;
    buf[*len] = 0;
}
static void host_out(void *ud, const char *bytes, size_t len) {
    Host *h = ud;
    append(h->out, sizeof h->out, &h->out_len, bytes, len);
}
static void host_err(void *ud, const char *bytes, size_t len) {
    Host *h = ud;
    h->nerr_writes++;
    append(h->err, sizeof h->err, &h->err_len, bytes, len);
}

static KpConfig host_config(Host *h) {
    memset(h, 0, sizeof *h);
    KpConfig cfg = {0};
    cfg.alloc = counting_alloc;
    cfg.alloc_ud = &h->mem;
    cfg.write_out = host_out;
    cfg.write_err = host_err;
    cfg.ud = h;
    return cfg;
}

static KpVM *host_vm(Host *h) {
    KpConfig cfg = host_config(h);
    KpVM *vm = kp_vm_new(&cfg);
    CHECK(vm != NULL);
    return vm;
}

static void clear_output(Host *h) {
    h->out_len = h->err_len = 0;
    h->out[0] = h->err[0] = 0;
    h->nerr_writes = 0;
}

#define HOST_DONE(h, vm)                                                                           \
    do {                                                                                           \
        kp_vm_free(vm);                                                                            \
        CHECK((h)->mem.blocks == 0);                                                                   \
        CHECK((h)->mem.bytes == 0);                                                                    \
    } while (0)

static int run(KpVM *vm, const char *src) { return kp_vm_run_string(vm, "test.kp", src, strlen(src)); }
static bool has(const char *hay, const char *needle) { return hay && strstr(hay, needle) != NULL; }
static bool has_error(KpVM *vm) { return kp_vm_last_error(vm)[0] != 0; }

/* ------------------------------------------------------------ globals */

static void set_global_moves_a_value_in_type_checked(void) {
    Host h;
    KpVM *vm = host_vm(&h);
    CHECK(run(vm, "P : Type = (.x : Int, .y : Int)\nlevel := 1\nname : String = \"a\"\nps : List#(P) = []\n"
                  "show () := { print(level, name, len(ps)) }\n") == KP_OK);
    kp_slots_ensure(vm, 3);
    kp_set_int(vm, 0, 7);
    CHECK(kp_set_global(vm, "level", 0) == KP_OK);
    CHECK(kp_get_kind(vm, 0) == KP_KIND_NONE); /* moved in */
    kp_set_string(vm, 0, "zed", 3);
    CHECK(kp_set_global(vm, "name", 0) == KP_OK);
    CHECK(run(vm, "show()\n") == KP_OK);
    CHECK(strcmp(h.out, "7 zed 0\n") == 0);
    /* the wrong type is refused, the slot emptied, the global unchanged */
    kp_set_string(vm, 0, "seven", 5);
    CHECK(kp_set_global(vm, "level", 0) == KP_ERR_ARG);
    CHECK(has(kp_vm_last_error(vm), "'level' is Int, but the value is String"));
    CHECK(kp_get_kind(vm, 0) == KP_KIND_NONE);
    kp_new_list(vm, 0);
    CHECK(kp_set_global(vm, "ps", 0) == KP_OK); /* an empty list fits List#(P) */
    kp_set_int(vm, 0, 1);
    CHECK(kp_set_global(vm, "nope", 0) == KP_ERR_ARG);
    CHECK(has(kp_vm_last_error(vm), "no top-level variable 'nope'"));
    CHECK(kp_get_kind(vm, 0) == KP_KIND_NONE);
    clear_output(&h);
    CHECK(run(vm, "show()\nlevel += 1\nprint(level)\n") == KP_OK);
    CHECK(strcmp(h.out, "7 zed 0\n8\n") == 0);
    /* a record into a record-typed global */
    CHECK(run(vm, "origin : P = P(.x = 0, .y = 0)\n") == KP_OK);
    kp_new_record(vm, 1, "P");
    kp_set_int(vm, 2, 5);
    kp_set_field(vm, 1, "x", 2);
    kp_set_int(vm, 2, 6);
    kp_set_field(vm, 1, "y", 2);
    CHECK(kp_set_global(vm, "origin", 1) == KP_OK);
    clear_output(&h);
    CHECK(run(vm, "print(origin.x + origin.y)\n") == KP_OK);
    CHECK(strcmp(h.out, "11\n") == 0);
    HOST_DONE(&h, vm);
}

static void get_global_copies_and_get_global_ref_borrows(void) {
    Host h;
    KpVM *vm = host_vm(&h);
    CHECK(run(vm, "xs : List#(Int) = [1, 2]\nn := 5\n") == KP_OK);
    kp_slots_ensure(vm, 3);
    /* a copy: appending to it leaves the script's list alone */
    CHECK(kp_get_global(vm, "xs", 0) == KP_OK);
    kp_set_int(vm, 1, 3);
    CHECK(kp_list_append(vm, 0, 1) == KP_OK);
    CHECK(kp_get_count(vm, 0) == 3);
    CHECK(run(vm, "print(len(xs))\n") == KP_OK);
    CHECK(strcmp(h.out, "2\n") == 0);
    /* a reference: the script's list changes in place */
    CHECK(kp_get_global_ref(vm, "xs", 0) == KP_OK);
    kp_set_int(vm, 1, 30);
    CHECK(kp_list_append(vm, 0, 1) == KP_OK);
    CHECK(kp_get_count(vm, 0) == 3);
    clear_output(&h);
    CHECK(run(vm, "print(xs)\n") == KP_OK);
    CHECK(strcmp(h.out, "[1, 2, 30]\n") == 0);
    int64_t i = 0;
    CHECK(kp_get_global_ref(vm, "n", 2) == KP_OK);
    CHECK(kp_get_int(vm, 2, &i) == KP_OK && i == 5);
    CHECK(run(vm, "n = 6\n") == KP_OK);
    CHECK(kp_get_int(vm, 2, &i) == KP_OK && i == 6); /* reads the variable, not a copy */
    /* the reference is checked: the list moved away reads as nothing */
    CHECK(run(vm, "gone := xs\n") == KP_OK);
    CHECK(kp_get_kind(vm, 0) == KP_KIND_NONE);
    CHECK(kp_get_count(vm, 0) == -1);
    CHECK(kp_get_global_ref(vm, "xs", 1) == KP_ERR_ARG && has(kp_vm_last_error(vm), "has no value"));
    CHECK(kp_get_global_ref(vm, "missing", 1) == KP_ERR_ARG && has(kp_vm_last_error(vm), "missing"));
    HOST_DONE(&h, vm);
}

/* ------------------------------------------------------------ diagnostics */

typedef struct Seen {
    int n;
    KpDiagnostic d[8];
    char msg[8][256], file[8][64], line[8][256], note[8][256], trace0[8][128], text[8][1024];
} Seen;

static Seen seen;
static void collect(void *ud, const KpDiagnostic *d) {
    (void)ud;
    if (seen.n >= 8) return;
    int i = seen.n++;
    seen.d[i] = *d;
    snprintf(seen.msg[i], 256, "%s", d->message);
    snprintf(seen.file[i], 64, "%s", d->file);
    snprintf(seen.line[i], 256, "%s", d->source_line);
    snprintf(seen.note[i], 256, "%s", d->nnotes ? d->notes[0] : "");
    snprintf(seen.trace0[i], 128, "%s", d->ntrace ? d->trace[0] : "");
    snprintf(seen.text[i], 1024, "%.*s", (int)d->text_len, d->text);
}

static void diagnostics_arrive_structured_one_per_message(void) {
    Host h;
    KpConfig cfg = host_config(&h);
    cfg.on_diagnostic = collect;
    KpVM *vm = kp_vm_new(&cfg);
    memset(&seen, 0, sizeof seen);
    CHECK(run(vm, "x := 1\ny := x +\nz := 2 +\n") == KP_ERR_COMPILE);
    CHECK(seen.n >= 1);
    CHECK(seen.d[0].severity == KP_SEVERITY_ERROR && seen.d[0].code == KP_ERR_COMPILE);
    CHECK(strcmp(seen.file[0], "test.kp") == 0);
    CHECK(seen.d[0].line >= 2 && seen.d[0].col >= 1);
    CHECK(seen.msg[0][0] != 0 && !has(seen.msg[0], "test.kp:")); /* the message alone */
    CHECK(has(seen.text[0], "test.kp:") && has(seen.text[0], seen.msg[0]) && has(seen.text[0], "^"));
    CHECK(h.err_len == 0); /* nothing on write_err when a callback is set */
    /* a note travels as a note */
    memset(&seen, 0, sizeof seen);
    CHECK(run(vm, "f (t: Int) -> &Int := { return &t }\n") == KP_ERR_COMPILE);
    CHECK(seen.n == 1);
    /* a runtime error: message, position, source line and the stack */
    memset(&seen, 0, sizeof seen);
    CHECK(run(vm, "inner () := { xs : List#(Int) = []\n  return xs[3] }\nouter () := { inner() }\nouter()\n") ==
          KP_ERR_RUNTIME);
    CHECK(seen.n == 1);
    CHECK(seen.d[0].code == KP_ERR_RUNTIME && seen.d[0].severity == KP_SEVERITY_ERROR);
    CHECK(seen.d[0].line == 2);
    CHECK(has(seen.line[0], "return xs[3]"));
    CHECK(seen.d[0].ntrace >= 3);
    CHECK(has(seen.trace0[0], "inner (test.kp:2)"));
    CHECK(has(seen.text[0], "stack trace (most recent call first):"));
    CHECK(has(kp_vm_last_error(vm), "test.kp:2:"));
    CHECK(h.err_len == 0);
    HOST_DONE(&h, vm);
}

static void without_a_callback_each_message_is_one_write(void) {
    Host h;
    KpVM *vm = host_vm(&h);
    CHECK(run(vm, "x := 1 +\n") == KP_ERR_COMPILE);
    CHECK(h.nerr_writes == 1);
    CHECK(has(h.err, "test.kp:2:1: error: ") && has(h.err, "^"));
    clear_output(&h);
    CHECK(run(vm, "f () := { error(\"boom\") }\nf()\n") == KP_ERR_RUNTIME);
    CHECK(h.nerr_writes == 1);
    CHECK(has(h.err, "boom") && has(h.err, "stack trace"));
    HOST_DONE(&h, vm);
}

/* ------------------------------------------------------------ errors */

/* Every failing call must leave a message: each check runs one failing
 * call and looks at kp_vm_last_error right after it. */
#define FAILS_WITH_MESSAGE(call)                                                                   \
    do {                                                                                           \
        int rc_ = (call);                                                                          \
        CHECK(rc_ != KP_OK);                                                                       \
        if (rc_ != KP_OK && !has_error(vm))                                                        \
            fprintf(stderr, "%s: no message after: %s\n", check_current, #call);                   \
        CHECK(rc_ == KP_OK || has_error(vm));                                                      \
    } while (0)

static int c_noop(KpVM *vm, int nargs, void *ud) {
    (void)vm, (void)nargs, (void)ud;
    return KP_OK;
}

static void every_error_return_leaves_a_message(void) {
    Host h;
    KpVM *vm = host_vm(&h);
    CHECK(run(vm, "P : Type = (.x : Int)\nxs := [1]\nf (n: Int) -> Int := { return n }\n") == KP_OK);
    kp_slots_ensure(vm, 4);
    int64_t i;
    double d;
    bool b;
    kp_new_list(vm, 0);
    FAILS_WITH_MESSAGE(kp_list_get(vm, 0, 0, 1)); /* out of range */
    FAILS_WITH_MESSAGE(kp_list_get(vm, 0, -1, 1));
    FAILS_WITH_MESSAGE(kp_list_get(vm, 9, 0, 1));
    FAILS_WITH_MESSAGE(kp_get_int(vm, 0, &i));
    FAILS_WITH_MESSAGE(kp_get_float(vm, 0, &d));
    FAILS_WITH_MESSAGE(kp_get_bool(vm, 0, &b));
    FAILS_WITH_MESSAGE(kp_set_int(vm, 99, 1));
    FAILS_WITH_MESSAGE(kp_set_string(vm, -1, "x", 1));
    FAILS_WITH_MESSAGE(kp_slots_ensure(vm, -1));
    FAILS_WITH_MESSAGE(kp_new_record(vm, 1, "Nope"));
    FAILS_WITH_MESSAGE(kp_list_append(vm, 1, 2)); /* slot 1 is not a list */
    FAILS_WITH_MESSAGE(kp_list_append(vm, 0, 2)); /* slot 2 is empty */
    kp_new_map(vm, 1);
    kp_set_int(vm, 2, 1);
    FAILS_WITH_MESSAGE(kp_map_get(vm, 1, 2, 3));
    FAILS_WITH_MESSAGE(kp_map_set(vm, 0, 2, 3));
    kp_new_record(vm, 1, "P");
    FAILS_WITH_MESSAGE(kp_get_field(vm, 1, "x", 3)); /* unset */
    FAILS_WITH_MESSAGE(kp_get_field(vm, 1, "y", 3));
    kp_set_string(vm, 2, "s", 1);
    FAILS_WITH_MESSAGE(kp_set_field(vm, 1, "x", 2));
    FAILS_WITH_MESSAGE(kp_slot_move(vm, 50, 0));
    FAILS_WITH_MESSAGE(kp_get_global(vm, "missing", 0));
    FAILS_WITH_MESSAGE(kp_get_global_ref(vm, "missing", 0));
    kp_set_int(vm, 2, 1);
    FAILS_WITH_MESSAGE(kp_set_global(vm, "missing", 2));
    FAILS_WITH_MESSAGE(kp_call(vm, 3, 0, 0, 0)); /* slot 3 holds no function */
    CHECK(kp_get_global(vm, "f", 3) == KP_OK);
    kp_set_string(vm, 2, "not an int", 10);
    FAILS_WITH_MESSAGE(kp_call(vm, 3, 2, 1, 0));
    FAILS_WITH_MESSAGE(kp_call(vm, 3, 2, -1, 0));
    FAILS_WITH_MESSAGE(kp_handle_get(vm, NULL, 0));
    FAILS_WITH_MESSAGE(kp_register(vm, "bad name", c_noop, 0, NULL, NULL));
    FAILS_WITH_MESSAGE(kp_register(vm, "ok", NULL, 0, NULL, NULL));
    FAILS_WITH_MESSAGE(kp_vm_run_file(vm, "/nonexistent/file.kp"));
    FAILS_WITH_MESSAGE(run(vm, "y := \n"));
    FAILS_WITH_MESSAGE(run(vm, "error(\"x\")\n"));
    CHECK(kp_vm_eval(vm, "<repl>", "(1 +", 4, KP_EVAL_REPL) == KP_ERR_INCOMPLETE);
    /* a success clears the message */
    CHECK(run(vm, "z := 1\n") == KP_OK && !has_error(vm));
    HOST_DONE(&h, vm);
}

/* ------------------------------------------------------------ registration */

static int c_draw(KpVM *vm, int nargs, void *ud) {
    (void)ud;
    int64_t n = 0;
    if (nargs == 1) kp_get_int(vm, 0, &n);
    return kp_set_int(vm, 0, 100 + n);
}

static void register_conflicts_with_scripts_are_errors(void) {
    Host h;
    KpVM *vm = host_vm(&h);
    KpMode v1[] = {KP_MODE_VALUE};
    /* a script function first, then the host: refused, naming the script */
    CHECK(run(vm, "\ndraw (n: Int) -> Int := { return n }\n") == KP_OK);
    CHECK(kp_register(vm, "draw", c_draw, 1, v1, NULL) == KP_ERR_ARG);
    CHECK(has(kp_vm_last_error(vm), "'draw' is already defined by a script at test.kp:2"));
    CHECK(has(kp_vm_last_error(vm), "KP_REG_OVERLOAD"));
    /* a built-in name: refused too */
    CHECK(kp_register(vm, "len", c_draw, 1, v1, NULL) == KP_ERR_ARG);
    CHECK(has(kp_vm_last_error(vm), "'len' is a built-in function"));
    CHECK(kp_register_ex(vm, "len", c_draw, 1, v1, NULL, 99) == KP_ERR_ARG);
    /* the host first, then a script: a compile error at the declaration */
    CHECK(kp_register(vm, "paint", c_draw, 1, v1, NULL) == KP_OK);
    CHECK(kp_register(vm, "paint", c_draw, 0, NULL, NULL) == KP_OK); /* C overloads of C functions are fine */
    CHECK(run(vm, "x := 1\npaint (s: String) -> Int := { return 1 }\n") == KP_ERR_COMPILE);
    CHECK(has(kp_vm_last_error(vm), "test.kp:2:"));
    CHECK(has(kp_vm_last_error(vm), "'paint' is a C function registered by the host"));
    clear_output(&h);
    CHECK(run(vm, "print(paint(1), paint())\n") == KP_OK);
    CHECK(strcmp(h.out, "101 100\n") == 0);
    /* asked for explicitly, both directions overload */
    CHECK(kp_register_ex(vm, "draw", c_draw, 0, NULL, NULL, KP_REG_OVERLOAD) == KP_OK);
    CHECK(kp_register_ex(vm, "shade", c_draw, 1, v1, NULL, KP_REG_OVERLOAD) == KP_OK);
    CHECK(kp_register_ex(vm, "str", c_draw, 0, NULL, NULL, KP_REG_OVERLOAD) == KP_OK);
    CHECK(run(vm, "shade (s: String) -> Int := { return len(s) }\n") == KP_OK);
    clear_output(&h);
    CHECK(run(vm, "print(draw(5), draw(), shade(2), shade(\"abc\"), str(), str(7))\n") == KP_OK);
    CHECK(strcmp(h.out, "5 100 102 3 100 7\n") == 0);
    HOST_DONE(&h, vm);
}

/* ------------------------------------------------------------ re-entrancy */

static int reenters; /* how many nested runs happened */

/* Runs more source on the same VM from inside an expression, returns 2. */
static int c_reenter(KpVM *vm, int nargs, void *ud) {
    (void)nargs, (void)ud;
    const char *src = "nested_n := 40\nprint(\"nested\", nested_n + 2)\n";
    int rc = kp_vm_run_string(vm, "nested.kp", src, strlen(src));
    if (rc != KP_OK) return kp_error(vm, "nested run failed: %s", kp_vm_last_error(vm));
    reenters++;
    return kp_set_int(vm, 0, 2);
}

/* Runs a nested chunk with temporaries only (no globals), returns 3. */
static int c_reenter_tmp(KpVM *vm, int nargs, void *ud) {
    (void)nargs, (void)ud;
    const char *src = "print(\"tmp\", [1, 2, 3], str(9) + \"!\")\n";
    int rc = kp_vm_eval(vm, "tmp.kp", src, strlen(src), 0);
    if (rc != KP_OK) return kp_error(vm, "nested eval failed: %s", kp_vm_last_error(vm));
    reenters++;
    return kp_set_int(vm, 0, 3);
}

/* Calls the script function `twice` through kp_call on its argument. */
static int c_call_twice(KpVM *vm, int nargs, void *ud) {
    (void)ud;
    int64_t n = 0;
    if (nargs != 1 || kp_get_int(vm, 0, &n) != KP_OK) return kp_error(vm, "wants an Int");
    kp_slots_ensure(vm, 4);
    if (kp_get_global(vm, "twice", 1) != KP_OK) return KP_ERR_RUNTIME;
    kp_set_int(vm, 2, n);
    if (kp_call(vm, 1, 2, 1, 3) != KP_OK) return KP_ERR_RUNTIME;
    reenters++;
    return kp_slot_move(vm, 3, 0);
}

/* A nested run that fails: the C function sees the error and carries on. */
static int c_reenter_fails(KpVM *vm, int nargs, void *ud) {
    (void)nargs, (void)ud;
    const char *src = "xs : List#(Int) = []\nprint(xs[5])\n";
    int rc = kp_vm_run_string(vm, "bad.kp", src, strlen(src));
    bool said = rc == KP_ERR_RUNTIME && strstr(kp_vm_last_error(vm), "bad.kp:2:") != NULL;
    const char *bad = "y := (\n";
    int rc2 = kp_vm_run_string(vm, "bad2.kp", bad, strlen(bad));
    bool said2 = rc2 == KP_ERR_COMPILE && kp_vm_last_error(vm)[0] != 0;
    return kp_set_int(vm, 0, said && said2 ? 1 : 0);
}

/* Runs `src` and compares what it printed. */
static void expect_run(Host *h, KpVM *vm, const char *src, const char *out) {
    clear_output(h);
    int rc = run(vm, src);
    CHECK(rc == KP_OK);
    if (rc != KP_OK) fprintf(stderr, "  %s\n", kp_vm_last_error(vm));
    CHECK(strcmp(h->out, out) == 0);
    if (strcmp(h->out, out) != 0) fprintf(stderr, "  printed: <%s>\n  wanted:  <%s>\n", h->out, out);
}

static void c_functions_may_reenter_the_vm_anywhere_in_an_expression(void) {
    Host h;
    KpVM *vm = host_vm(&h);
    CHECK(kp_register(vm, "reenter", c_reenter, 0, NULL, NULL) == KP_OK);
    CHECK(kp_register(vm, "reenter_tmp", c_reenter_tmp, 0, NULL, NULL) == KP_OK);
    KpMode v1[] = {KP_MODE_VALUE};
    CHECK(kp_register(vm, "call_twice", c_call_twice, 1, v1, NULL) == KP_OK);
    CHECK(kp_register(vm, "reenter_fails", c_reenter_fails, 0, NULL, NULL) == KP_OK);
    reenters = 0;
    /* an argument, after a temporary already computed (the bug of issue 13) */
    expect_run(&h, vm, "twice (n: Int) -> Int := { return n * 2 }\na := \"left\"\nprint(\"x\" + a, reenter(), \"y\")\n",
               "nested 42\nxleft 2 y\n");
    /* operands, inside a function with live locals and temporaries */
    expect_run(&h, vm,
               "f (k: Int) -> Int := { t := [k, k + 1]\n"
               "  r := t[0] * 10 + reenter_tmp() * (t[1] + reenter())\n"
               "  return r + len(t) }\n"
               "print(f(4))\n",
               "tmp [1, 2, 3] 9!\nnested 42\n63\n");
    /* kp_call from inside an expression: operand and argument */
    expect_run(&h, vm, "b := 5\nprint(b + call_twice(b) * 100, call_twice(call_twice(1)))\n", "1005 4\n");
    /* pipe stages */
    expect_run(&h, vm, "p := 7 | call_twice(_)\nq := reenter() | call_twice(_) | twice\nprint(p, q)\n",
               "nested 42\n14 8\n");
    /* inside a for over a list the loop is iterating, with the loop's lock live */
    expect_run(&h, vm,
               "ys := [1, 2, 3]\ntotal := 0\n"
               "for y in ys { total += y * 10 + reenter_tmp() + call_twice(y) }\n"
               "print(total, len(ys))\n",
               "tmp [1, 2, 3] 9!\ntmp [1, 2, 3] 9!\ntmp [1, 2, 3] 9!\n81 3\n");
    /* the nested chunk's globals stay for later runs */
    expect_run(&h, vm, "print(nested_n)\n", "40\n");
    /* a nested error is the C function's to handle; the caller goes on */
    expect_run(&h, vm, "s := \"ok\"\nprint(s, reenter_fails(), s + \"!\")\n", "ok 1 ok!\n");
    CHECK(has(h.err, "bad.kp:2:"));
    /* and a later error of the caller is reported as its own */
    clear_output(&h);
    CHECK(run(vm, "zs : List#(Int) = []\nprint(reenter(), zs[1])\n") == KP_ERR_RUNTIME);
    CHECK(has(kp_vm_last_error(vm), "test.kp:2:"));
    CHECK(reenters > 8);
    HOST_DONE(&h, vm);
}

/* Runs the source given as its argument (a String) and returns the code. */
static int c_run(KpVM *vm, int nargs, void *ud) {
    (void)ud;
    size_t len = 0;
    const char *src = nargs == 1 ? kp_get_string(vm, 0, &len) : NULL;
    if (!src) return kp_error(vm, "wants a String");
    char copy[512];
    snprintf(copy, sizeof copy, "%.*s", (int)len, src);
    int rc = kp_vm_run_string(vm, "inner.kp", copy, strlen(copy));
    return kp_set_int(vm, 0, rc);
}

static void nested_runs_nest_and_keep_their_globals_in_bounds(void) {
    Host h;
    KpVM *vm = host_vm(&h);
    KpMode v1[] = {KP_MODE_VALUE};
    CHECK(kp_register(vm, "run", c_run, 1, v1, NULL) == KP_OK);
    /* a run inside a run inside a run, each with a global of its own */
    expect_run(&h, vm,
               "a := 1\n"
               "r := run(\"b := 2\\nprint(run(\\\"c := 3\\\\nprint(a + b + c)\\\"), a + b)\")\n"
               "print(r)\n",
               "6\n0 3\n0\n");
    expect_run(&h, vm, "print(a, b, c)\n", "1 2 3\n");
    /* an error in the caller after a nested run keeps the nested globals */
    clear_output(&h);
    CHECK(run(vm, "x := [1]\nrun(\"d := 4\")\nprint(x[7])\n") == KP_ERR_RUNTIME);
    expect_run(&h, vm, "print(d, len(x))\n", "4 1\n");
    /* too many new globals for the room a running chunk left: refused */
    char many[600] = "";
    for (int i = 0; i < 40; i++) snprintf(many + strlen(many), sizeof many - strlen(many), "g%d := %d\\n", i, i);
    char src[800];
    snprintf(src, sizeof src, "print(run(\"%s\"))\n", many);
    clear_output(&h);
    CHECK(run(vm, src) == KP_OK);
    CHECK(strcmp(h.out, "2\n") == 0); /* KP_ERR_COMPILE */
    CHECK(has(h.err, "may declare only a few top-level variables"));
    /* at top level the same chunk is fine */
    snprintf(src, sizeof src, "%s", many);
    for (char *p = src; (p = strstr(p, "\\n"));) { p[0] = '\n'; memmove(p + 1, p + 2, strlen(p + 2) + 1); }
    CHECK(run(vm, src) == KP_OK);
    expect_run(&h, vm, "print(g39)\n", "39\n");
    HOST_DONE(&h, vm);
}

/* ------------------------------------------------------------ small VMs */

static void a_default_vm_takes_at_most_64_kib_from_the_host(void) {
    Host h;
    KpConfig cfg = host_config(&h); /* the defaults, on a counting allocator */
    KpVM *vm = kp_vm_new(&cfg);
    CHECK(vm != NULL);
    printf("note: a new VM takes %ld bytes in %ld blocks from the host allocator\n", h.mem.bytes, h.mem.blocks);
    CHECK(h.mem.bytes <= 64 * 1024);
    /* it still runs deep recursion: the stack grows to the depth used */
    long before = h.mem.bytes;
    CHECK(run(vm, "keep_level := 7\n") == KP_OK);
    kp_slots_ensure(vm, 2);
    CHECK(kp_get_global_ref(vm, "keep_level", 0) == KP_OK); /* a reference into the stack */
    kp_new_list(vm, 1);
    CHECK(kp_handle_new(vm, 1) != NULL); /* a handle the host holds across the growth */
    CHECK(run(vm, "depth (n: Int) -> Int := { if n == 0 { return 0 }\n  xs := [n]\n  return depth(n - 1) + xs[0] - n + 1 }\n"
                  "print(depth(5000))\n") == KP_OK);
    CHECK(strcmp(h.out, "5000\n") == 0);
    int64_t lvl = 0;
    CHECK(kp_get_int(vm, 0, &lvl) == KP_OK && lvl == 7); /* the reference still reads the global */
    CHECK(run(vm, "keep_level = 8\n") == KP_OK);
    CHECK(kp_get_int(vm, 0, &lvl) == KP_OK && lvl == 8);
    printf("note: after a 5000-deep recursion it holds %ld bytes (stack pages are not the host's)\n", h.mem.bytes);
    CHECK(h.mem.bytes - before < 1024 * 1024);
    HOST_DONE(&h, vm);
}

static void a_thousand_vms_stay_under_64_mib(void) {
    enum { N = 1000 };
    Host h;
    KpConfig cfg = host_config(&h);
    static KpVM *vms[N];
    int made = 0;
    for (int i = 0; i < N; i++)
        if ((vms[i] = kp_vm_new(&cfg))) made++;
    CHECK(made == N);
    printf("note: %d VMs take %ld bytes from the host allocator (%ld per VM)\n", N, h.mem.bytes, h.mem.bytes / N);
    CHECK(h.mem.bytes < 64L * 1024 * 1024);
    /* each one works, and on its own */
    char src[64];
    for (int i = 0; i < N; i += 97) {
        snprintf(src, sizeof src, "me := %d\n", i);
        CHECK(run(vms[i], src) == KP_OK);
    }
    int64_t v = -1;
    kp_slots_ensure(vms[97], 1);
    CHECK(kp_get_global(vms[97], "me", 0) == KP_OK && kp_get_int(vms[97], 0, &v) == KP_OK && v == 97);
    CHECK(kp_get_global(vms[1], "me", 0) == KP_ERR_ARG);
    for (int i = 0; i < N; i++) kp_vm_free(vms[i]);
    CHECK(h.mem.blocks == 0 && h.mem.bytes == 0);
}

static void stack_from_host_takes_the_whole_stack_up_front(void) {
    Host h;
    KpConfig cfg = host_config(&h);
    cfg.stack_from_host = true;
    cfg.stack_values = 100000;
    KpVM *vm = kp_vm_new(&cfg);
    CHECK(vm != NULL);
    CHECK(h.mem.bytes > 100000 * 16);
    CHECK(run(vm, "print(1 + 1)\n") == KP_OK && strcmp(h.out, "2\n") == 0);
    HOST_DONE(&h, vm);
}

/* ------------------------------------------------------------ host types */

/* A file handle: the host's resource, closed by the deinit. */
typedef struct FileH {
    int fd;
    char path[32];
    long bytes_written;
} FileH;

typedef struct Tracker {
    int opened, closed;
    int closed_fds[64];
    KpVM *vm;            /* for the deinit that (wrongly) calls back in */
    bool call_back;
    int refused;
} Tracker;

static Tracker tracker;
static KpHostType *file_t, *counter_t;

static void file_deinit(void *payload, void *ud) {
    Tracker *t = ud;
    FileH *f = payload;
    if (t->closed < 64) t->closed_fds[t->closed] = f->fd;
    t->closed++;
    if (t->call_back) { /* forbidden: refused with an error */
        KpVM *vm = t->vm;
        if (kp_vm_run_string(vm, "x.kp", "print(1)\n", 9) == KP_ERR_USAGE &&
            has(kp_vm_last_error(vm), "deinit callback"))
            t->refused++;
        if (kp_call(vm, 0, 0, 0, 0) == KP_ERR_USAGE) t->refused++;
    }
}

/* open(path) -> File */
static int c_open(KpVM *vm, int nargs, void *ud) {
    Tracker *t = ud;
    size_t len = 0;
    const char *path = nargs == 1 ? kp_get_string(vm, 0, &len) : NULL;
    if (!path) return kp_error(vm, "open wants a path");
    char p[32];
    snprintf(p, sizeof p, "%.*s", (int)len, path);
    FileH *f = kp_new_object(vm, 0, file_t); /* replaces the argument in slot 0: the result */
    if (!f) return KP_ERR_RUNTIME;
    f->fd = 100 + t->opened++;
    snprintf(f->path, sizeof f->path, "%s", p);
    return KP_OK;
}

/* write(f: $&File, s: String) -> Int */
static int c_write(KpVM *vm, int nargs, void *ud) {
    (void)ud;
    FileH *f = kp_get_object(vm, 0, file_t);
    size_t len = 0;
    if (!f || nargs != 2 || !kp_get_string(vm, 1, &len)) return kp_error(vm, "write wants a File and a String");
    f->bytes_written += (long)len;
    return kp_set_int(vm, 0, f->bytes_written);
}

/* fd(f: &File) -> Int */
static int c_fd(KpVM *vm, int nargs, void *ud) {
    (void)nargs, (void)ud;
    FileH *f = kp_get_object(vm, 0, file_t);
    if (!f) return kp_error(vm, "not a File");
    return kp_set_int(vm, 0, f->fd);
}

/* A counter: a second host type, to tell types apart. */
static int c_counter(KpVM *vm, int nargs, void *ud) {
    (void)nargs, (void)ud;
    int64_t *n = kp_new_object(vm, 0, counter_t);
    return n ? KP_OK : KP_ERR_RUNTIME;
}
static int c_bump(KpVM *vm, int nargs, void *ud) {
    (void)nargs, (void)ud;
    int64_t *n = kp_get_object(vm, 0, counter_t);
    if (!n) return kp_error(vm, "not a Counter");
    return kp_set_int(vm, 0, ++*n);
}

static int deinits_of_counters;
static void counter_deinit(void *payload, void *ud) {
    (void)payload, (void)ud;
    deinits_of_counters++;
}

static KpVM *host_types_vm(Host *h) {
    KpVM *vm = host_vm(h);
    memset(&tracker, 0, sizeof tracker);
    tracker.vm = vm;
    deinits_of_counters = 0;
    KpMode mw[] = {KP_MODE_MUTREF, KP_MODE_VALUE};
    KpMethod file_methods[] = {{"write", c_write, 2, mw}, {"fd", c_fd, 1, NULL}};
    file_t = kp_define_type(vm, "File", &(KpTypeDef){.size = sizeof(FileH), .deinit = file_deinit, .ud = &tracker,
                                                      .methods = file_methods, .nmethods = 2});
    CHECK(file_t != NULL);
    KpMethod counter_methods[] = {{"bump", c_bump, 1, (const KpMode[]){KP_MODE_MUTREF}}};
    counter_t = kp_define_type(vm, "Counter", &(KpTypeDef){.size = sizeof(int64_t), .deinit = counter_deinit,
                                                            .methods = counter_methods, .nmethods = 1});
    CHECK(counter_t != NULL);
    KpMode v1[] = {KP_MODE_VALUE};
    CHECK(kp_register(vm, "open", c_open, 1, v1, &tracker) == KP_OK);
    CHECK(kp_register(vm, "counter", c_counter, 0, NULL, NULL) == KP_OK);
    return vm;
}

static void host_types_pass_move_borrow_and_deinit_once(void) {
    Host h;
    KpVM *vm = host_types_vm(&h);
    /* borrowing, mutating through $&, overloading on the type, scope exit */
    expect_run(&h, vm,
               "describe (f: &File) -> String := { return \"file \" + str(fd(f)) }\n"
               "describe (c: &Counter) -> String := { return \"counter\" }\n"
               "log (f: $&File, s: String) -> Int := { return write(f, s) }\n"
               "{ f := open(\"a.txt\")\n  c := counter()\n"
               "  print(describe(&f), describe(&c), log($&f, \"hello\"), write($&f, \"!!\"), bump($&c), bump($&c))\n"
               "  print(f, str(f) == \"<File>\") }\n",
               "file 100 counter 5 7 1 2\n<File> true\n");
    CHECK(tracker.opened == 1 && tracker.closed == 1 && tracker.closed_fds[0] == 100);
    CHECK(deinits_of_counters == 1);
    /* moves: into a function, into a list; use after move is the usual error */
    expect_run(&h, vm,
               "sink (f: File) -> Int := { return fd(&f) }\n"
               "g := open(\"b\")\nprint(sink(g))\n"
               "fs : List#(File) = []\npush(fs, open(\"c\"))\npush(fs, open(\"d\"))\nprint(len(fs), fd(&fs[1]))\n",
               "101\n2 103\n");
    CHECK(tracker.closed == 2); /* b closed at the end of sink */
    clear_output(&h);
    CHECK(run(vm, "k := open(\"e\")\nk2 := k\nprint(fd(&k))\n") != KP_OK);
    CHECK(has(kp_vm_last_error(vm), "moved"));
    /* scripts cannot forge or copy one */
    clear_output(&h);
    CHECK(run(vm, "x := File()\n") != KP_OK);
    CHECK(has(kp_vm_last_error(vm), "host type"));
    CHECK(run(vm, "y := open(\"f\")\nz := clone(y)\n") == KP_ERR_RUNTIME);
    CHECK(has(kp_vm_last_error(vm), "cannot be copied"));
    CHECK(run(vm, "w := open(\"g\")\nprint(w.fd)\n") != KP_OK);
    kp_slots_ensure(vm, 3);
    CHECK(kp_new_record(vm, 0, "File") != KP_OK);
    /* the host reads its values; another type reads as NULL */
    CHECK(kp_get_global_ref(vm, "fs", 1) == KP_OK);
    CHECK(kp_list_get(vm, 1, 0, 2) != KP_OK); /* a copy is refused */
    FileH *mine = kp_new_object(vm, 2, file_t);
    CHECK(mine != NULL && mine->fd == 0); /* zeroed */
    mine->fd = 7;
    CHECK(kp_get_object(vm, 2, file_t) == mine);
    CHECK(kp_get_object(vm, 2, counter_t) == NULL);
    kp_set_int(vm, 0, 1);
    CHECK(kp_get_object(vm, 0, file_t) == NULL);
    CHECK(kp_set_global(vm, "g", 2) == KP_OK); /* a host-made value into a script's File */
    clear_output(&h);
    CHECK(run(vm, "print(fd(&g))\n") == KP_OK && strcmp(h.out, "7\n") == 0);
    int before = tracker.closed;
    /* kp_vm_free deinitializes what is left, each exactly once */
    int opened = tracker.opened;
    HOST_DONE(&h, vm);
    CHECK(tracker.closed == opened + 1); /* every File opened, and the host's own */
    CHECK(tracker.closed > before);
    for (int i = 0; i < tracker.closed && i < 64; i++)
        for (int j = i + 1; j < tracker.closed && j < 64; j++) CHECK(tracker.closed_fds[i] != tracker.closed_fds[j] || tracker.closed_fds[i] == 7);
}

static void a_host_type_deinit_may_not_call_back_into_the_vm(void) {
    Host h;
    KpVM *vm = host_types_vm(&h);
    tracker.call_back = true;
    kp_slots_ensure(vm, 1);
    expect_run(&h, vm, "{ f := open(\"a\")\n  print(fd(&f)) }\nprint(\"after\")\n", "100\nafter\n");
    CHECK(tracker.closed == 1);
    CHECK(tracker.refused == 2);
    HOST_DONE(&h, vm);
}

static void define_type_rejects_bad_definitions(void) {
    Host h;
    KpVM *vm = host_vm(&h);
    CHECK(kp_define_type(vm, "lower", &(KpTypeDef){0}) == NULL && has_error(vm));
    CHECK(kp_define_type(vm, "Int", &(KpTypeDef){0}) == NULL && has(kp_vm_last_error(vm), "already a type"));
    CHECK(kp_define_type(vm, "Ok", &(KpTypeDef){0}) != NULL);
    CHECK(kp_define_type(vm, "Ok", &(KpTypeDef){0}) == NULL);
    CHECK(kp_define_type(vm, "Bad", &(KpTypeDef){.methods = (KpMethod[]){{"m", c_fd, 0, NULL}}, .nmethods = 1}) == NULL);
    CHECK(run(vm, "f (o: &Ok) -> Int := { return 1 }\nprint(\"declared\")\n") == KP_OK);
    HOST_DONE(&h, vm);
}

/* ------------------------------------------------------------ main */

int main(void) {
    RUN(set_global_moves_a_value_in_type_checked);
    RUN(get_global_copies_and_get_global_ref_borrows);
    RUN(diagnostics_arrive_structured_one_per_message);
    RUN(without_a_callback_each_message_is_one_write);
    RUN(every_error_return_leaves_a_message);
    RUN(register_conflicts_with_scripts_are_errors);
    RUN(c_functions_may_reenter_the_vm_anywhere_in_an_expression);
    RUN(nested_runs_nest_and_keep_their_globals_in_bounds);
    RUN(a_default_vm_takes_at_most_64_kib_from_the_host);
    RUN(a_thousand_vms_stay_under_64_mib);
    RUN(stack_from_host_takes_the_whole_stack_up_front);
    RUN(host_types_pass_move_borrow_and_deinit_once);
    RUN(a_host_type_deinit_may_not_call_back_into_the_vm);
    RUN(define_type_rejects_bad_definitions);
    return CHECK_DONE();
}
