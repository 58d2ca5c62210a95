/*
 * embed_keep.c — the embedding benchmarks, Keep side (twin: embed_lua.c).
 *
 *   embed_keep call     the host calls the script function add(acc, i)
 *                       1,000,000 times through kp_call
 *   embed_keep native   a script calls the C function cadd(acc, i)
 *                       10,000,000 times (registered with kp_register)
 *
 * Both print the final sum; bench/run.sh times them against embed_lua.c
 * doing the same through Lua 5.4's C API (lua_pcall, lua_pushcfunction).
 */
#include <keep.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void die(KpVM *vm, const char *what) {
    fprintf(stderr, "embed_keep: %s: %s\n", what, kp_vm_last_error(vm));
    exit(1);
}

static int c_add(KpVM *vm, int nargs, void *ud) {
    (void)nargs;
    (void)ud;
    int64_t a, b;
    if (kp_get_int(vm, 0, &a) || kp_get_int(vm, 1, &b)) return kp_error(vm, "cadd needs two Ints");
    return kp_set_int(vm, 0, a + b);
}

/* the counts (-DN_CALL=... -DN_NATIVE=... for a profile run) */
#ifndef N_CALL
#define N_CALL 1000000
#endif
#ifndef N_NATIVE
#define N_NATIVE 10000000
#endif
#define STR_(x) #x
#define STR(x) STR_(x)

static const char call_src[] = "add (a: Int, b: Int) -> Int := { return a + b }\n";

static const char native_src[] =
    "acc := 0\n"
    "for i in 0.." STR(N_NATIVE) " { acc = cadd(acc, i) }\n"
    "print(acc)\n";

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "call";
    KpVM *vm = kp_vm_new(NULL);
    if (!vm) return 1;
    if (!strcmp(mode, "call")) {
        if (kp_vm_run_string(vm, "call", call_src, sizeof call_src - 1)) die(vm, "script");
        if (kp_slots_ensure(vm, 4) || kp_get_global(vm, "add", 0)) die(vm, "add");
        int64_t acc = 0;
        for (int64_t i = 0; i < N_CALL; i++) {
            kp_set_int(vm, 1, acc);
            kp_set_int(vm, 2, i);
            if (kp_call(vm, 0, 1, 2, 3)) die(vm, "kp_call");
            if (kp_get_int(vm, 3, &acc)) die(vm, "result");
        }
        printf("%lld\n", (long long)acc);
    } else if (!strcmp(mode, "native")) {
        if (kp_register(vm, "cadd", c_add, 2, NULL, NULL)) die(vm, "kp_register");
        if (kp_vm_run_string(vm, "native", native_src, sizeof native_src - 1)) die(vm, "script");
    } else {
        fprintf(stderr, "usage: embed_keep call|native\n");
        return 64;
    }
    fflush(stdout);
    kp_vm_free(vm);
    return 0;
}
