/*
 * test_modules.c — KpConfig.load_module: a host serving modules from
 * memory, a VM with no loader (imports refused), a loader that says no,
 * text delivered in pieces, once-only loading, the names the loader is
 * asked for, and the REPL keeping an import between lines; every VM
 * gives all its memory back.
 */
#include <stdio.h>
#include <string.h>

#include "keep.h"
#include "check.h"
#include "counting.h"

typedef struct Host {
    Counting mem;
    char out[4096];
    size_t nout;
    char err[4096];
    size_t nerr;
    char asked[8][64];
    int nasked;
} Host;

static void host_out(void *ud, const char *b, size_t n) {
    Host *h = ud;
    if (h->nout + n < sizeof h->out) memcpy(h->out + h->nout, b, n), h->nout += n, h->out[h->nout] = 0;
}
static void host_err(void *ud, const char *b, size_t n) {
    Host *h = ud;
    if (h->nerr + n < sizeof h->err) memcpy(h->err + h->nerr, b, n), h->nerr += n, h->err[h->nerr] = 0;
}

static const char *const geometry =
    "Rect : Type = (\n    .w : Int\n    .h : Int\n)\n"
    "area (r: &Rect) -> Int := { return r.w * r.h }\n"
    "print(\"geometry runs\")\n";

/* Serves "app/lib/geometry.kp" from memory, in pieces of 7 bytes. */
static bool loader(void *ud, const char *name, KpWriteFn write, void *sink, const char **why) {
    Host *h = ud;
    if (h->nasked < 8) snprintf(h->asked[h->nasked++], sizeof h->asked[0], "%s", name);
    if (strcmp(name, "app/lib/geometry.kp") != 0) {
        *why = "not in this host's table";
        return false;
    }
    size_t n = strlen(geometry);
    for (size_t i = 0; i < n; i += 7) write(sink, geometry + i, n - i < 7 ? n - i : 7);
    return true;
}

static KpVM *new_vm(Host *h, KpLoadModuleFn load) {
    memset(h, 0, sizeof *h);
    KpConfig cfg = {.alloc = counting_alloc, .alloc_ud = &h->mem, .write_out = host_out, .write_err = host_err,
                    .ud = h, .load_module = load};
    return kp_vm_new(&cfg);
}

static void end_vm(Host *h, KpVM *vm) {
    kp_vm_free(vm);
    CHECKF(h->mem.blocks == 0, "%ld blocks left", h->mem.blocks);
}

static void test_loader_serves_module(void) {
    Host h;
    KpVM *vm = new_vm(&h, loader);
    const char *src = "geo := import(\"lib/geometry.kp\")\n"
                      "again := import(\"./lib/geometry.kp\")\n"
                      "r := geo.Rect(.w = 3, .h = 4)\n"
                      "print(again.area(&r))\n";
    int rc = kp_vm_run_string(vm, "app/main.kp", src, strlen(src));
    CHECKF(rc == KP_OK, "rc %d: %s", rc, kp_vm_last_error(vm));
    CHECKF(!strcmp(h.out, "geometry runs\n12\n"), "out: %s", h.out);
    CHECKF(h.nasked == 1 && !strcmp(h.asked[0], "app/lib/geometry.kp"), "asked %d: %s", h.nasked, h.asked[0]);
    /* a later chunk importing it again: the same module, not run again */
    const char *more = "g := import(\"app/lib/geometry.kp\")\nq := g.Rect(.w = 1, .h = 2)\nprint(g.area(&q))\n";
    h.nout = 0;
    h.out[0] = 0;
    rc = kp_vm_run_string(vm, "<chunk>", more, strlen(more));
    CHECKF(rc == KP_OK, "rc %d: %s", rc, kp_vm_last_error(vm));
    CHECKF(!strcmp(h.out, "2\n"), "out: %s", h.out);
    CHECK(h.nasked == 1);
    end_vm(&h, vm);
}

static void test_no_loader_refuses(void) {
    Host h;
    KpVM *vm = new_vm(&h, NULL);
    const char *src = "print(\"before\")\ngeo := import(\"lib/geometry.kp\")\n";
    int rc = kp_vm_run_string(vm, "main.kp", src, strlen(src));
    CHECK(rc == KP_ERR_COMPILE);
    const char *e = kp_vm_last_error(vm);
    CHECKF(strstr(e, "main.kp:2:15: cannot import 'lib/geometry.kp': this host loads no modules") != NULL, "%s", e);
    CHECKF(h.nout == 0, "ran: %s", h.out); /* nothing ran */
    end_vm(&h, vm);
}

static void test_loader_says_no(void) {
    Host h;
    KpVM *vm = new_vm(&h, loader);
    const char *src = "m := import(\"other.kp\")\n";
    int rc = kp_vm_run_string(vm, "app/main.kp", src, strlen(src));
    CHECK(rc == KP_ERR_COMPILE);
    const char *e = kp_vm_last_error(vm);
    CHECKF(strstr(e, "cannot import 'app/other.kp': not in this host's table") != NULL, "%s", e);
    /* the VM stays usable */
    rc = kp_vm_run_string(vm, "x", "print(1)", 8);
    CHECK(rc == KP_OK);
    end_vm(&h, vm);
}

static void test_repl_keeps_import(void) {
    Host h;
    KpVM *vm = new_vm(&h, loader);
    const char *l1 = "geo := import(\"app/lib/geometry.kp\")";
    const char *l2 = "r := geo.Rect(.w = 5, .h = 5)";
    const char *l3 = "geo.area(&r)";
    CHECK(kp_vm_eval(vm, "<repl>", l1, strlen(l1), KP_EVAL_REPL) == KP_OK);
    CHECK(kp_vm_eval(vm, "<repl>", l2, strlen(l2), KP_EVAL_REPL) == KP_OK);
    CHECK(kp_vm_eval(vm, "<repl>", l3, strlen(l3), KP_EVAL_REPL) == KP_OK);
    CHECKF(strstr(h.out, "geometry runs\n") && strstr(h.out, "25"), "out: %s", h.out);
    CHECK(h.nasked == 1);
    /* the REPL's :type sees the imports too */
    h.nout = 0;
    h.out[0] = 0;
    const char *t = "geo.area(&r)";
    int rc = kp_vm_static_type(vm, t, strlen(t), host_out, &h);
    CHECKF(rc == KP_OK && !strcmp(h.out, "Int"), "rc %d, out: %s, err: %s", rc, h.out, h.err);
    end_vm(&h, vm);
}

static void test_emit_ownership_across_modules(void) {
    Host h;
    KpVM *vm = new_vm(&h, loader);
    const char *src = "geo := import(\"lib/geometry.kp\")\nr := geo.Rect(.w = 1, .h = 2)\nq := r\n";
    int rc = kp_vm_emit_ownership(vm, "app/main.kp", src, strlen(src), host_out, &h);
    CHECKF(rc == KP_OK, "rc %d: %s", rc, kp_vm_last_error(vm));
    const char *m = strstr(h.out, "-- app/lib/geometry.kp: the moves");
    const char *p = strstr(h.out, "-- app/main.kp: the moves");
    CHECKF(m && p && m < p, "out: %s", h.out);
    CHECKF(p && strstr(p, "move r: geometry.Rect"), "out: %s", h.out);
    CHECK(strstr(h.out, "\ngeometry runs") == NULL); /* nothing ran (the source is echoed) */
    /* nothing ran, so a run afterwards loads and runs the module */
    h.nout = 0;
    h.out[0] = 0;
    const char *run = "geo := import(\"lib/geometry.kp\")\n";
    rc = kp_vm_run_string(vm, "app/main.kp", run, strlen(run));
    CHECKF(rc == KP_OK && !strcmp(h.out, "geometry runs\n"), "rc %d, out: %s", rc, h.out);
    end_vm(&h, vm);
}

int main(void) {
    RUN(test_emit_ownership_across_modules);
    RUN(test_loader_serves_module);
    RUN(test_no_loader_refuses);
    RUN(test_loader_says_no);
    RUN(test_repl_keeps_import);
    return CHECK_DONE();
}
