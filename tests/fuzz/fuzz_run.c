/*
 * fuzz_run.c — libFuzzer target: the input is a script, run with
 * kp_vm_run_string on a bounded VM (fuzz_host.h), then the top-level
 * deinits (kp_vm_finish); the host allocator must be empty after
 * kp_vm_free.
 */
#include "fuzz_host.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    FuzzHost h;
    KpVM *vm = fuzz_vm_new(&h);
    int rc = kp_vm_run_string(vm, "fuzz.kp", (const char *)data, size);
    fuzz_check_error(vm, rc);
    rc = kp_vm_finish(vm);
    fuzz_check_error(vm, rc);
    fuzz_vm_free(vm, &h);
    return 0;
}
