/*
 * fuzz_host.h — the host every libFuzzer target of tests/fuzz/ runs the VM
 * in (`make fuzz T=run SECONDS=60`; see tests/fuzz/README.md).
 *
 * One bounded VM per input: a counting host allocator (every block and
 * byte the VM takes), a memory limit, an instruction budget, no file
 * system and no system.memory, a smaller value stack, output thrown away.
 * After kp_vm_free the host allocator must hold nothing: a leak aborts the
 * run (libFuzzer then saves the input as a crash), as does an empty
 * out-of-memory message or any sanitizer report.
 */
#ifndef KP_FUZZ_HOST_H
#define KP_FUZZ_HOST_H

#include <keep.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FUZZ_MEM_LIMIT (16 << 20) /* script memory per input */
#define FUZZ_BUDGET 20000         /* calls + loop iterations per run */

typedef struct FuzzHost {
    long blocks, bytes; /* live in the host allocator */
    long peak;
} FuzzHost;

static void *fuzz_alloc(void *ud, void *ptr, size_t old_size, size_t new_size, size_t align) {
    FuzzHost *h = ud;
    if (new_size == 0) {
        if (ptr) {
            free(ptr);
            h->blocks--;
            h->bytes -= (long)old_size;
        }
        return NULL;
    }
    /* the compiler's working memory is not script memory: still, one input
     * may not take more than 256 MiB of the host in all */
    if (h->bytes + (long)new_size - (long)(ptr ? old_size : 0) > (256L << 20)) return NULL;
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
    if (h->bytes > h->peak) h->peak = h->bytes;
    return p;
}

static void fuzz_sink(void *ud, const char *b, size_t n) {
    (void)ud;
    (void)b;
    (void)n;
}

static KpVM *fuzz_vm_new(FuzzHost *h) {
    memset(h, 0, sizeof *h);
    KpConfig cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.alloc = fuzz_alloc;
    cfg.alloc_ud = h;
    cfg.write_out = fuzz_sink;
    cfg.write_err = fuzz_sink;
    cfg.mem_limit = FUZZ_MEM_LIMIT;
    cfg.allow_fs = false;
    cfg.no_system_memory = true;
    cfg.stack_values = 1 << 16;
    KpVM *vm = kp_vm_new(&cfg);
    if (!vm) {
        fprintf(stderr, "fuzz: kp_vm_new failed\n");
        abort();
    }
    kp_vm_set_budget(vm, FUZZ_BUDGET);
    return vm;
}

/* After a failed call: an error must say what it is (a script's exit(code)
 * is not an error and says nothing). */
static void fuzz_check_error(KpVM *vm, int rc) {
    if (rc == KP_OK || rc == KP_EXIT) return;
    const char *e = kp_vm_last_error(vm);
    if (!e || !*e) {
        fprintf(stderr, "fuzz: error %d with an empty kp_vm_last_error\n", rc);
        abort();
    }
}

static void fuzz_vm_free(KpVM *vm, FuzzHost *h) {
    kp_vm_free(vm);
    if (h->blocks != 0 || h->bytes != 0) {
        fprintf(stderr, "fuzz: %ld blocks (%ld bytes) still allocated after kp_vm_free\n", h->blocks, h->bytes);
        abort();
    }
}

#endif
