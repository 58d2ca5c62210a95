/*
 * time.c — time and the process: clock, time, sleep, exit, get_env.
 *
 * Design.  clock() reads the monotonic clock (CLOCK_MONOTONIC: it never
 * goes back, its origin is unspecified — for measuring intervals), time()
 * the wall clock (CLOCK_REALTIME, Unix seconds as a Float with the
 * fraction).  sleep(seconds) suspends the thread (nanosleep, in slices of
 * 50 ms until the monotonic clock has passed the end; kp_vm_interrupt
 * ends it early with the runtime error "interrupted").
 *
 * exit(code) ends the program as an error would, without the error: the
 * native marks the VM as exiting (vm->exiting, vm->exit_code) and fails
 * with an already-located message, so the VM's one unwinding path runs
 * every frame's deinits and defers and reports nothing; the run returns
 * KP_EXIT (include/keep.h) and the `keep` command deinitializes the
 * top-level variables and exits with the code.  An error raised by a
 * deinit while the exit unwinds is dropped, as one raised while an error
 * unwinds is.
 *
 * The environment is a capability (system.env, KpConfig.allow_env; the
 * `keep` command grants it): get_env(&system.env, name) is the variable's
 * value, or () when it is not set.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lib.h"

static double now(clockid_t id) {
    struct timespec ts;
    clock_gettime(id, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* clock() -> Float: monotonic seconds */
static bool b_clock(KpVM *vm, KpValue *a, int n, KpValue *out) {
    (void)vm; (void)a; (void)n;
    *out = kp_float(now(CLOCK_MONOTONIC));
    return true;
}

/* time() -> Float: seconds since 1970-01-01 00:00 UTC */
static bool b_time(KpVM *vm, KpValue *a, int n, KpValue *out) {
    (void)vm; (void)a; (void)n;
    *out = kp_float(now(CLOCK_REALTIME));
    return true;
}

/* sleep(seconds: Int|Float) */
static bool b_sleep(KpVM *vm, KpValue *a, int n, KpValue *out) {
    (void)n;
    double s;
    bool is_int;
    if (!kp_lib_num(vm, "sleep", a, 0, &s, &is_int)) return false;
    if (isnan(s) || s < 0) return kp_vm_error(vm, "sleep: the time must be zero or more seconds");
    if (s > 1e9) return kp_vm_error(vm, "sleep: at most 1e9 seconds");
    /* in slices of at most 50 ms, so kp_vm_interrupt (Ctrl-C in the
     * REPL) stops a long sleep with the VM's "interrupted" error */
    double end = now(CLOCK_MONOTONIC) + s;
    *out = kp_unit();
    for (;;) {
        double left = end - now(CLOCK_MONOTONIC);
        if (left <= 0) return true;
        if (atomic_load_explicit(&vm->interrupt, memory_order_relaxed) & KP_ATTN_INTERRUPT) {
            atomic_fetch_and(&vm->interrupt, ~KP_ATTN_INTERRUPT); /* as the VM's own check does */
            return kp_vm_error(vm, "interrupted");
        }
        if (left > 0.05) left = 0.05;
        struct timespec ts = {0, (long)(left * 1e9)};
        nanosleep(&ts, NULL);
    }
}

/* exit(code: Int): never returns to the script (see the essay above). */
static bool b_exit(KpVM *vm, KpValue *a, int n, KpValue *out) {
    (void)n;
    *out = kp_unit();
    int64_t code;
    if (!kp_lib_int(vm, "exit", a, 0, &code)) return false;
    if (code < 0 || code > 255) return kp_vm_error(vm, "exit(%" PRId64 "): the code must be 0..255", code);
    kp_buf_reset(&vm->err);
    kp_buf_printf(vm, &vm->err, "exit(%d)", (int)code);
    vm->status = KP_ERR_RUNTIME;
    vm->err_located = true; /* nothing to report */
    vm->exiting = true;
    vm->exit_code = (int)code;
    return false;
}

/* get_env(&system.env, name) -> String or () */
static bool b_get_env(KpVM *vm, KpValue *a, int n, KpValue *out) {
    (void)n;
    KpValue e = kp_deref(a[0]);
    if (!(e.tag == KP_T_SYSTEM && e.aux == 4))
        return kp_vm_error(vm, "get_env needs the environment capability: get_env(&system.env, name)");
    KpString *name = kp_lib_str(vm, "get_env", a, 1);
    if (!name) return false;
    if (!name->len || memchr(name->data, 0, name->len) || memchr(name->data, '=', name->len))
        return kp_vm_error(vm, "get_env: '%s' is not a variable name (empty, or with '=' or a NUL byte)", name->data);
    const char *v = getenv(name->data);
    if (!v) {
        *out = kp_unit();
        return true;
    }
    return kp_lib_ret_str(vm, v, strlen(v), out);
}

const KpBuiltin kp_builtins_time[] = {
    {"clock", b_clock, "", "Float", 0},
    {"time", b_time, "", "Float", 0},
    {"sleep", b_sleep, "seconds: Int|Float", "()", 0},
    {"exit", b_exit, "code: Int", "()", 0},
    {"get_env", b_get_env, "env: &System.Env, name: &String", "String|()", KP_BF_CTX},
    {NULL, NULL, NULL, NULL, 0},
};
