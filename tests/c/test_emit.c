/*
 * test_emit.c — kp_vm_emit_ownership (what `keep --emit=ownership` prints),
 * through the public header only.
 *
 * Each case emits a small program and checks key lines of the result: the
 * seed's `#defer x | deinit(_)` after each owning declaration and at the top
 * of functions with by-value parameters, none for scalars and references,
 * `~&x` for moves, the reference counts of keep, the temporaries of pipes.
 * Lines are compared with their indentation stripped.  Every VM is made on
 * a counting host allocator, and after kp_vm_free its count of live blocks
 * and bytes must be zero; a last case makes every allocation fail in turn.
 *
 * Prints one line per failed check on stderr, then "N passed, M failed".
 */
#include <keep.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int passed, failed;
static const char *current;

#define CHECK(c)                                                               \
    do {                                                                       \
        if (c) {                                                               \
            passed++;                                                          \
        } else {                                                               \
            failed++;                                                          \
            fprintf(stderr, "%s:%d: %s: check failed: %s\n", __FILE__,         \
                    __LINE__, current, #c);                                    \
        }                                                                      \
    } while (0)

/* ------------------------------------------------------------ the host */

typedef struct Host {
    long blocks, bytes, allocs;
    bool limited;
    long fail_after;
    char *out;
    size_t out_len, out_cap;
    char err[8192];
    size_t err_len;
    size_t script_out; /* bytes the script printed (must stay 0) */
} Host;

static void *host_alloc(void *ud, void *ptr, size_t old_size, size_t new_size, size_t align) {
    Host *h = ud;
    if (new_size == 0) {
        if (ptr) {
            free(ptr);
            h->blocks--;
            h->bytes -= (long)old_size;
        }
        return NULL;
    }
    if (h->limited && h->allocs >= h->fail_after) return NULL;
    h->allocs++;
    if (align < sizeof(void *)) align = sizeof(void *);
    void *p = NULL;
    if (posix_memalign(&p, align, new_size) != 0) return NULL;
    if (ptr) {
        memcpy(p, ptr, old_size < new_size ? old_size : new_size);
        free(ptr);
        h->bytes -= (long)old_size;
    } else {
        h->blocks++;
    }
    h->bytes += (long)new_size;
    return p;
}

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
    cfg.alloc = host_alloc;
    cfg.alloc_ud = h;
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
    CHECK(h->blocks == 0);
    CHECK(h->bytes == 0);
    CHECK(h->script_out == 0); /* emitting never runs the program */
    if (failed && h->out) fprintf(stderr, "--- %s emitted:\n%s---\n", current, h->out);
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

static void test_deinit_lines(void) {
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
    CHECK(h.out && has_line(h.out, "#defer a | deinit(_)"));
    CHECK(h.out && has_line(h.out, "#defer xs | deinit(_)"));
    CHECK(h.out && has_line(h.out, "#defer s | deinit(_)"));
    /* scalars and references own nothing: no deinit line */
    CHECK(h.out && !has_line_prefix(h.out, "#defer n |"));
    CHECK(h.out && !has_line_prefix(h.out, "#defer x |"));
    CHECK(h.out && !has_line_prefix(h.out, "#defer ok |"));
    CHECK(h.out && !has_line_prefix(h.out, "#defer r |"));
    /* the defer comes right after the declaration */
    CHECK(h.out && strstr(h.out, "a := V(.name = \"a\")\n    #defer a | deinit(_)\n"));
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
    CHECK(h.out && has_line(h.out, "#defer h | deinit(_)"));
    CHECK(h.out && !has_line_prefix(h.out, "#defer i |"));
    CHECK(h.out && !has_line_prefix(h.out, "#defer b |"));
    host_done(&h);
}

static void test_moves(void) {
    Host h = {0};
    int rc = emit(&h,
                  "V : Type = ( .name : String )\n"
                  "make (n: String) -> V := {\n"
                  "    v := V(.name = n)\n"
                  "    return v\n"
                  "}\n"
                  "f () -> () := {\n"
                  "    a := make(\"a\")\n"
                  "    b := a\n"
                  "    n := 1\n"
                  "    m := n\n"
                  "    print(b.name, m)\n"
                  "}\n");
    CHECK(rc == KP_OK);
    CHECK(h.out && has_line(h.out, "b := ~&a"));
    CHECK(h.out && has_line_prefix(h.out, "return ~&v"));
    CHECK(h.out && has_line(h.out, "m := n")); /* an Int is copied */
    CHECK(h.out && !has_line(h.out, "m := ~&n"));
    CHECK(h.out && !has_line(h.out, "b := a"));
    /* a by-value parameter owns its argument */
    CHECK(h.out && has_line_prefix(h.out, "#defer n | deinit(_)"));
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
                  "    #keep man\n"
                  "    deinit(man)\n"
                  "}\n");
    CHECK(rc == KP_OK);
    CHECK(h.out && has_line_prefix(h.out, "keep one with h1   -- a box with refcount 1"));
    CHECK(h.out && has_line_prefix(h.out, "keep two with h1, h2   -- a box with refcount 2"));
    CHECK(h.out && has_line_prefix(h.out, "keep man   -- manual"));
    CHECK(h.out && strstr(h.out, "each owner's deinit drops one count"));
    CHECK(h.out && has_line(h.out, "#defer two | release(_)   -- the box's count: handed to the owners by keep"));
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
                  "}\n"
                  "g () -> () := {\n"
                  "result :=\n"
                  "      make(\"image.png\")\n"
                  "    | keep _ with result\n"
                  "    | show(&_)\n"
                  "}\n");
    CHECK(rc == KP_OK);
    CHECK(h.out && strstr(h.out, "make(\"t\") | show(&_)   -- each stage's value is deinitialized after the next call returns"));
    CHECK(h.out && strstr(h.out, "| keep _ with result |"));
    host_done(&h);
}

static void test_header_and_no_run(void) {
    Host h = {0};
    int rc = emit(&h, "print(\"never printed\")\nerror(\"never raised\")\n");
    CHECK(rc == KP_OK);
    CHECK(h.out && has_line_prefix(h.out, "-- the program with the operations Keep inserts written out:"));
    CHECK(h.out && has_line(h.out, "print(\"never printed\")"));
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

static void test_same_vm_twice(void) {
    Host h = {0};
    KpVM *vm = new_vm(&h);
    CHECK(vm != NULL);
    if (vm) {
        const char *src = "V : Type = ( .n : Int )\nf () -> () := {\n    v := V(.n = 1)\n}\n";
        CHECK(kp_vm_emit_ownership(vm, "a.kp", src, strlen(src), emit_out, &h) == KP_OK);
        size_t first = h.out_len;
        CHECK(kp_vm_emit_ownership(vm, "b.kp", src, strlen(src), emit_out, &h) == KP_OK);
        CHECK(h.out_len == 2 * first); /* same source, same text */
        CHECK(kp_vm_run_string(vm, "c.kp", "x := [1]\n", 9) == KP_OK);
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
        total = h.allocs;
        host_done(&h);
    }
    bool all_clean = true;
    for (long k = 0; k < total; k++) {
        Host h = {0};
        h.limited = true;
        h.fail_after = k;
        int rc = emit(&h, src);
        (void)rc;
        if (h.blocks != 0 || h.bytes != 0) all_clean = false;
        free(h.out);
    }
    CHECK(all_clean);
}

int main(void) {
#define RUN(fn)                                                                \
    do {                                                                       \
        current = #fn;                                                         \
        fn();                                                                  \
    } while (0)
    RUN(test_deinit_lines);
    RUN(test_parse_error_sets_last_error);
    RUN(test_typed_declarations);
    RUN(test_moves);
    RUN(test_keep_refcounts);
    RUN(test_pipe_temporaries);
    RUN(test_header_and_no_run);
    RUN(test_parse_error);
    RUN(test_same_vm_twice);
    RUN(test_out_of_memory);
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
