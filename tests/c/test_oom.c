/*
 * test_oom.c — out of host memory, the VM still says so.
 *
 * A host allocator that fails on purpose — from the Nth allocation on
 * ("persistent": the machine is out of memory), or only the Nth ("once": a
 * transient failure) — is given to a VM running a small script, for every N
 * up to the number of allocations a clean run makes.  Every run that does
 * not succeed must leave a non-empty "out of memory" message in
 * kp_vm_last_error and in what reached write_err; every run that succeeds
 * must print the right output; nothing may leak after kp_vm_free.  The
 * error path itself must not need memory: that is what is tested when every
 * later allocation fails too.
 *
 * (The whole suite under the same treatment is `make test-oom`,
 * tests/oom/; this file keeps the two bugs it was written for in
 * `make test`.)
 *
 * Prints one line per failed check on stderr, then "N passed, M failed".
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
    char out[4096];
    size_t out_len;
    char err[8192];
    size_t err_len;
} Host;

static void append(char *buf, size_t cap, size_t *len, const char *bytes, size_t n) {
    if (n == 0) return;
    if (*len + n >= cap) n = cap - 1 - *len;
    memcpy(buf + *len, bytes, n);
    *len += n;
    buf[*len] = 0;
}
static void host_out(void *ud, const char *b, size_t n) { Host *h = ud; append(h->out, sizeof h->out, &h->out_len, b, n); }
static void host_err(void *ud, const char *b, size_t n) { Host *h = ud; append(h->err, sizeof h->err, &h->err_len, b, n); }

static KpVM *host_vm(Host *h, long fail_at, bool once, const KpConfig *base) {
    memset(h, 0, sizeof *h);
    KpConfig cfg = {0};
    if (base) cfg = *base;
    cfg.alloc = counting_alloc;
    cfg.alloc_ud = &h->mem;
    cfg.write_out = host_out;
    cfg.write_err = host_err;
    cfg.ud = h;
    cfg.stack_values = 80000;
    KpVM *vm = kp_vm_new(&cfg);
    /* count from after the VM exists: N is the Nth allocation of the run */
    h->mem.requests = 0;
    h->mem.fail = fail_at >= 0;
    h->mem.fail_at = fail_at;
    h->mem.once = once;
    return vm;
}

static bool has(const char *hay, const char *needle) { return hay && strstr(hay, needle) != NULL; }

static int run(KpVM *vm, const char *src) { return kp_vm_run_string(vm, "oom.kp", src, strlen(src)); }

/* How many allocations a clean run of src makes. */
static long allocations_of(const char *src, const KpConfig *base, const char *want) {
    Host h;
    KpVM *vm = host_vm(&h, -1, false, base);
    CHECK(vm != NULL);
    if (!vm) return 0;
    CHECK(run(vm, src) == KP_OK);
    CHECK(strcmp(h.out, want) == 0);
    long n = h.mem.requests;
    kp_vm_free(vm);
    CHECK(h.mem.blocks == 0 && h.mem.bytes == 0);
    return n;
}

/* ------------------------------------------------------------ tests */

static const char alloc_heavy[] =
    "P : Type = ( .name : String, .xs : List#(Int) )\n"
    "ps : List#(P) = []\n"
    "for i in 0..30 { push(ps, P(.name = \"p\" + str(i), .xs = [i, i + 1])) }\n"
    "m := (\"a\" = 1)\n"
    "for i in 0..30 { m[str(i)] = i }\n"
    "f (n: Int) -> String := { return join(split(\"a,b,c\", \",\"), str(n)) }\n"
    "print(len(ps), len(m), f(1))\n";

/* Out of memory for good: every failed run still has its message, both in
 * kp_vm_last_error and on write_err, and so does every failed API call. */
static void persistent_failure_still_reports_out_of_memory(void) {
    long needed = allocations_of(alloc_heavy, NULL, "30 31 a1b1c\n");
    CHECK(needed > 10);
    int silent = 0, unreported = 0, wrong = 0, leaks = 0, api_silent = 0;
    for (long n = 0; n <= needed; n++) {
        Host h;
        KpVM *vm = host_vm(&h, n, false, NULL);
        if (!vm) { CHECK(!"kp_vm_new failed before the run"); break; }
        int rc = run(vm, alloc_heavy);
        if (rc == KP_OK) {
            if (strcmp(h.out, "30 31 a1b1c\n") != 0) wrong++;
        } else {
            if (!has(kp_vm_last_error(vm), "out of memory")) {
                if (!silent) fprintf(stderr, "N=%ld: rc %d, last error \"%s\"\n", n, rc, kp_vm_last_error(vm));
                silent++;
            }
            if (!has(h.err, "out of memory")) {
                if (!unreported) fprintf(stderr, "N=%ld: rc %d, write_err got \"%s\"\n", n, rc, h.err);
                unreported++;
            }
        }
        /* the host API fails with a message too */
        int r1 = kp_slots_ensure(vm, 4);
        if (r1 != KP_OK && !has(kp_vm_last_error(vm), "out of memory")) api_silent++;
        if (r1 == KP_OK) {
            int r2 = kp_set_string(vm, 1, "some text", 9);
            if (r2 != KP_OK && !has(kp_vm_last_error(vm), "out of memory")) api_silent++;
            int r3 = kp_new_list(vm, 0);
            if (r3 != KP_OK && !has(kp_vm_last_error(vm), "out of memory")) api_silent++;
            int r4 = kp_get_global(vm, "ps", 2);
            if (r4 != KP_OK && r4 != KP_ERR_ARG && !has(kp_vm_last_error(vm), "out of memory")) api_silent++;
        }
        kp_vm_free(vm);
        if (h.mem.blocks || h.mem.bytes) leaks++;
    }
    CHECK(silent == 0);
    CHECK(unreported == 0);
    CHECK(wrong == 0);
    CHECK(leaks == 0);
    CHECK(api_silent == 0);
}

/* A single failed allocation inside #check_cycles() must not make it
 * report "no cycles": it returns the right count or raises an error. */
static const char two_cycle[] =
    "Node : Type = ( .name : String, .peer : &Node, .kids : List#(Int) )\n"
    "pair () -> () := {\n"
    "    a := Node(.name = \"a\", .kids = [])\n"
    "    b := Node(.name = \"b\", .kids = [])\n"
    "    a.peer = &b\n"
    "    b.peer = &a\n"
    "    keep a with b.kids\n"
    "    keep b with a.kids\n"
    "}\n"
    "pair()\n"
    "print(\"found\", #check_cycles())\n";

static void check_cycles_reports_a_failed_allocation(void) {
    KpConfig base = {0};
    base.collect_cycles = true;
    long needed = allocations_of(two_cycle, &base, "found 2\n");
    CHECK(needed > 5);
    int zero = 0, silent = 0, leaks = 0;
    for (int mode = 0; mode < 2; mode++)
        for (long n = 0; n <= needed; n++) {
            Host h;
            KpVM *vm = host_vm(&h, n, mode == 0, &base);
            if (!vm) { CHECK(!"kp_vm_new failed before the run"); break; }
            int rc = run(vm, two_cycle);
            if (has(h.out, "found 0")) {
                if (!zero) fprintf(stderr, "N=%ld (%s): printed \"%s\"\n", n, mode ? "persistent" : "once", h.out);
                zero++;
            }
            if (rc != KP_OK && !has(kp_vm_last_error(vm), "out of memory")) silent++;
            kp_vm_free(vm);
            if (h.mem.blocks || h.mem.bytes) leaks++;
        }
    CHECK(zero == 0);
    CHECK(silent == 0);
    CHECK(leaks == 0);
}

/* The same VM runs a script again once memory is back. */
static void the_vm_recovers_when_memory_comes_back(void) {
    long needed = allocations_of(alloc_heavy, NULL, "30 31 a1b1c\n");
    int bad = 0;
    for (long n = 0; n <= needed; n += 3) {
        Host h;
        KpVM *vm = host_vm(&h, n, false, NULL);
        if (!vm) break;
        run(vm, alloc_heavy);
        h.mem.fail = false;
        h.out_len = 0;
        h.out[0] = 0;
        if (run(vm, "print(\"again\", len([1, 2, 3]))\n") != KP_OK || strcmp(h.out, "again 3\n") != 0) {
            if (!bad) fprintf(stderr, "N=%ld: follow-up printed \"%s\", error \"%s\"\n", n, h.out, kp_vm_last_error(vm));
            bad++;
        }
        kp_vm_free(vm);
        if (h.mem.blocks || h.mem.bytes) bad++;
    }
    CHECK(bad == 0);
}

int main(void) {
    RUN(persistent_failure_still_reports_out_of_memory);
    RUN(check_cycles_reports_a_failed_allocation);
    RUN(the_vm_recovers_when_memory_comes_back);
    return CHECK_DONE();
}
