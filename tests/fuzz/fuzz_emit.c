/*
 * fuzz_emit.c — libFuzzer target: the input is a script whose ownership
 * annotations are written out (kp_vm_emit_ownership, `keep
 * --emit=ownership`); nothing runs.  The output is checked to be
 * well-formed bytes only (it goes nowhere); the host allocator must be
 * empty after kp_vm_free.
 */
#include "fuzz_host.h"

static void count_out(void *ud, const char *b, size_t n) {
    (void)b;
    *(size_t *)ud += n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    FuzzHost h;
    KpVM *vm = fuzz_vm_new(&h);
    size_t written = 0;
    int rc = kp_vm_emit_ownership(vm, "fuzz.kp", (const char *)data, size, count_out, &written);
    fuzz_check_error(vm, rc);
    /* the same VM still runs a script afterwards */
    static const char after[] = "x := [1, 2]\nprint(len(x))\n";
    rc = kp_vm_run_string(vm, "after.kp", after, sizeof after - 1);
    if (rc != KP_OK) {
        fprintf(stderr, "fuzz: the VM cannot run a script after kp_vm_emit_ownership (%d: %s)\n", rc,
                kp_vm_last_error(vm));
        abort();
    }
    fuzz_vm_free(vm, &h);
    return 0;
}
