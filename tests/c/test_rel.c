/*
 * test_rel.c — reliability of a long-running host: memory that does not
 * grow per run, leaks the suite's scripts cannot see (REPL chunks, runs
 * after kp_vm_finish, allocators that outlive their owner), and bad
 * arguments of the running API.
 *
 * Every test makes its VMs on a counting host allocator (KpConfig.alloc)
 * and checks that after kp_vm_free the host's live blocks and bytes are
 * back to zero.  Only <keep.h> is included.
 *
 * Prints one line per failed check on stderr, then "N passed, M failed".
 */
#include <keep.h>

#include "check.h"

#include "counting.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>


/* ------------------------------------------------------------ the host */

typedef struct Host {
    Counting mem;             /* the host allocator (counting.h) */
    char out[4096];           /* what scripts printed (the last 4 KiB) */
    size_t out_len;
    char err[4096];           /* diagnostics (the last 4 KiB) */
    size_t err_len;
} Host;

static void keep_tail(char *buf, size_t *len, size_t cap, const char *s, size_t n) {
    if (n >= cap) { s += n - (cap - 1); n = cap - 1; }
    if (*len + n >= cap) *len = 0;
    memcpy(buf + *len, s, n);
    *len += n;
    buf[*len] = 0;
}
static void host_out(void *ud, const char *s, size_t n) {
    Host *h = ud;
    keep_tail(h->out, &h->out_len, sizeof h->out, s, n);
}
static void host_err(void *ud, const char *s, size_t n) {
    Host *h = ud;
    keep_tail(h->err, &h->err_len, sizeof h->err, s, n);
}

static KpConfig host_config(Host *h) {
    KpConfig cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.alloc = counting_alloc;
    cfg.alloc_ud = &h->mem;
    cfg.write_out = host_out;
    cfg.write_err = host_err;
    cfg.ud = h;
    return cfg;
}

static KpVM *host_vm(Host *h) {
    memset(h, 0, sizeof *h);
    KpConfig cfg = host_config(h);
    return kp_vm_new(&cfg);
}

static int run(KpVM *vm, const char *src) { return kp_vm_run_string(vm, "test.kp", src, strlen(src)); }
static int eval_repl(KpVM *vm, const char *src) { return kp_vm_eval(vm, "<repl>", src, strlen(src), KP_EVAL_REPL); }

/* Frees the VM and checks that the host got every byte back. */
static void done(Host *h, KpVM *vm) {
    kp_vm_free(vm);
    CHECK(h->mem.blocks == 0);
    CHECK(h->mem.bytes == 0);
    if (h->mem.blocks || h->mem.bytes) fprintf(stderr, "    %s: %ld blocks, %ld bytes left\n", check_current, h->mem.blocks, h->mem.bytes);
}

/* ------------------------------------------------------------ tests */

static void run_string_null_source_empty(void) {
    Host h;
    KpVM *vm = host_vm(&h);
    CHECK(kp_vm_run_string(vm, "empty.kp", NULL, 0) == KP_OK);
    CHECK(kp_vm_eval(vm, "empty.kp", NULL, 0, KP_EVAL_REPL) == KP_OK);
    done(&h, vm);
}

static void repl_string_temporaries_freed(void) {
    Host h;
    KpVM *vm = host_vm(&h);
    CHECK(eval_repl(vm, "s := \"\" + \"\"") == KP_OK);
    CHECK(eval_repl(vm, "print(s + \"-\")") == KP_OK);
    CHECK(eval_repl(vm, "t := str(1)") == KP_OK);
    CHECK(strcmp(h.out, "-\n") == 0);
    KpHeapStats st;
    CHECK(kp_vm_finish(vm) == KP_OK);
    kp_vm_heap_stats(vm, &st);
    CHECK(st.live_count == 0);
    if (st.live_count) fprintf(stderr, "    %s: %lld script blocks live after finish\n", check_current, (long long)st.live_count);
    done(&h, vm);
}

static void runs_after_finish_freed(void) {
    Host h;
    KpVM *vm = host_vm(&h);
    CHECK(run(vm, "a := [1, 2, 3]") == KP_OK);
    CHECK(kp_vm_finish(vm) == KP_OK);
    CHECK(run(vm, "b := [4, 5, \"x\" + str(6)]\nprint(len(b))") == KP_OK);
    CHECK(strcmp(h.out, "3\n") == 0);
    done(&h, vm);
}

static void allocator_deinit_while_values_live_freed(void) {
    Host h;
    KpVM *vm = host_vm(&h);
    /* the arena is deinitialized while a list it allocated lives: an error,
     * and the arena stays until that list goes — at the latest in kp_vm_free */
    int rc = run(vm, "page := PageAllocator(&system.memory)\n"
                     "a := ArenaAllocator(&page)\n"
                     "xs : List#(Int) = []\n"
                     "using a { xs = [1, 2, 3] }\n"
                     "deinit(a)\n");
    CHECK(rc == KP_ERR_RUNTIME);
    CHECK(strstr(kp_vm_last_error(vm), "still alive") != NULL);
    done(&h, vm);
}

static void user_allocator_deinit_while_values_live_freed(void) {
    Host h;
    KpVM *vm = host_vm(&h);
    /* the record serving as an allocator is deinitialized while a list it
     * allocated lives: an error; the record goes when the list does */
    int rc = run(vm, "Counter : Type = ( .backing : &Allocator, .allocs : Int = 0 )\n"
                     "alloc (c: $&Counter, size: Int) -> HeapAllocation := {\n"
                     "    c.allocs += 1\n"
                     "    return c.backing | alloc(size)\n"
                     "}\n"
                     "dealloc (c: $&Counter, h: HeapAllocation) -> () := { c.backing | dealloc(h) }\n"
                     "deinit (.c: $&Counter) -> () := { print(\"deinit counter\", c.allocs) }\n"
                     "make (c: $&Counter) -> List#(Int) := {\n"
                     "    using c { return [1, 2, 3] }\n"
                     "}\n"
                     "page := PageAllocator(&system.memory)\n"
                     "c := Counter(.backing = &page)\n"
                     "xs := make(c)\n"
                     "deinit(c)\n");
    CHECK(rc == KP_ERR_RUNTIME);
    CHECK(strstr(kp_vm_last_error(vm), "kept until they are gone") != NULL);
    CHECK(h.out_len == 0);
    CHECK(kp_vm_finish(vm) == KP_OK);
    CHECK(strcmp(h.out, "deinit counter 2\n") == 0);
    done(&h, vm);
}

/* 10,000 evals on one VM: the host's live bytes after the first hundred
 * stay within a fixed bound (the parser's 1 MB stack, the AST and the
 * compiler's working memory of each run are given back). */
static void ten_thousand_evals_flat(void) {
    Host h;
    KpVM *vm = host_vm(&h);
    CHECK(run(vm, "x := 0\ns := \"\"\nxs : List#(Int) = []\n"
                  "f (n: Int) -> Int := { return n + 1 }\n") == KP_OK);
    const char *chunk = "x = f(x) + 1\ns = str(x) + \"!\"\nxs = [x, x + 1]\nif x % 1000 == 0 { print(s) }\n";
    long base = 0, worst = 0;
    for (int i = 0; i < 10000; i++) {
        if (kp_vm_eval(vm, "<eval>", chunk, strlen(chunk), 0) != KP_OK) {
            CHECK(!"eval failed");
            break;
        }
        if (i == 99) base = h.mem.bytes;
        if (i >= 99 && h.mem.bytes - base > worst) worst = h.mem.bytes - base;
    }
    CHECK(strstr(h.out, "10000!") != NULL);
    CHECK(worst <= 64 * 1024);
    printf("note: %s: host live bytes after 100 evals %ld, growth to 10,000 at most %ld, peak %ld\n", check_current, base,
           worst, h.mem.peak_bytes);
    done(&h, vm);
}

/* KpConfig.no_system_memory withholds system.memory like system.fs: no
 * Page or Direct allocator, but allocators over the root still work. */
static void system_memory_withheld(void) {
    Host h;
    memset(&h, 0, sizeof h);
    KpConfig cfg = host_config(&h);
    cfg.no_system_memory = true;
    KpVM *vm = kp_vm_new(&cfg);
    CHECK(run(vm, "page := PageAllocator(&system.memory)\n") == KP_ERR_RUNTIME);
    CHECK(strstr(kp_vm_last_error(vm), "not granted system.memory") != NULL);
    CHECK(run(vm, "d := DirectAllocator(&system.memory)\n") == KP_ERR_RUNTIME);
    CHECK(strstr(kp_vm_last_error(vm), "not granted system.memory") != NULL);
    CHECK(run(vm, "f (a: &Allocator) -> Int := {\n"
                  "    arena := ArenaAllocator(a)\n"
                  "    using arena { xs := [1, 2, 3]\n return len(xs) }\n"
                  "}\n"
                  "xs := [1]\nprint(len(xs))\n") == KP_OK);
    CHECK(strstr(h.out, "1\n") != NULL);
    done(&h, vm);
}

/* The memory limit holds for a host's scripts whatever allocator they
 * make: a 16 MiB limit, a script asking a DirectAllocator for 256 MiB. */
static void mem_limit_covers_direct_allocators(void) {
    Host h;
    memset(&h, 0, sizeof h);
    KpConfig cfg = host_config(&h);
    cfg.mem_limit = 16 << 20;
    KpVM *vm = kp_vm_new(&cfg);
    CHECK(run(vm, "d := DirectAllocator(&system.memory)\nh := d | alloc(268435456)\n") == KP_ERR_RUNTIME);
    CHECK(strstr(kp_vm_last_error(vm), "limit 16777216 bytes") != NULL);
    done(&h, vm);
}

/* kp_vm_run_file refuses what is not a regular file (/dev/zero would be
 * read until memory runs out) and files over KpConfig.max_source_bytes. */
static void source_files_bounded(void) {
    Host h;
    KpVM *vm = host_vm(&h);
    CHECK(kp_vm_run_file(vm, "/dev/zero") == KP_ERR_USAGE);
    CHECK(strstr(kp_vm_last_error(vm), "not a regular file") != NULL);
    done(&h, vm);
    memset(&h, 0, sizeof h);
    KpConfig cfg = host_config(&h);
    cfg.max_source_bytes = 100;
    vm = kp_vm_new(&cfg);
    char path[] = "/tmp/keep_test_rel_XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    FILE *f = fdopen(fd, "w");
    for (int i = 0; i < 20; i++) fputs("x := 1\n", f);
    fclose(f);
    CHECK(kp_vm_run_file(vm, path) == KP_ERR_USAGE);
    CHECK(strstr(kp_vm_last_error(vm), "140 bytes, more than the limit of 100 bytes") != NULL);
    remove(path);
    done(&h, vm);
}

int main(void) {
    RUN(run_string_null_source_empty);
    RUN(repl_string_temporaries_freed);
    RUN(runs_after_finish_freed);
    RUN(allocator_deinit_while_values_live_freed);
    RUN(user_allocator_deinit_while_values_live_freed);
    RUN(ten_thousand_evals_flat);
    RUN(system_memory_withheld);
    RUN(mem_limit_covers_direct_allocators);
    RUN(source_files_bounded);
    return CHECK_DONE();
}
