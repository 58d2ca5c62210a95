/*
 * fuzz_eval.c — libFuzzer target: the REPL path.  The input is split at
 * newlines into REPL entries; each goes to kp_vm_eval(KP_EVAL_REPL) on one
 * VM, and an entry answered KP_ERR_INCOMPLETE is kept and continued with
 * the next line, as the CLI's REPL does.  Redefinitions, printing of
 * expression values and the globals that live across entries are all
 * exercised; the host allocator must be empty after kp_vm_free.
 */
#include "fuzz_host.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    FuzzHost h;
    KpVM *vm = fuzz_vm_new(&h);
    const char *src = (const char *)data;
    size_t start = 0; /* the pending entry begins here */
    int entries = 0;
    for (size_t i = 0; i <= size && entries < 200; i++) {
        if (i < size && src[i] != '\n') continue;
        size_t end = i < size ? i + 1 : size;
        if (end == start) break;
        kp_vm_set_budget(vm, FUZZ_BUDGET);
        int rc = kp_vm_eval(vm, "<repl>", src + start, end - start, KP_EVAL_REPL);
        entries++;
        if (rc == KP_ERR_INCOMPLETE && i < size) continue; /* read one more line */
        if (rc != KP_ERR_INCOMPLETE) fuzz_check_error(vm, rc);
        start = end;
    }
    int rc = kp_vm_finish(vm);
    fuzz_check_error(vm, rc);
    fuzz_vm_free(vm, &h);
    return 0;
}
