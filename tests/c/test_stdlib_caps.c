/*
 * test_stdlib_caps.c — the standard library's capabilities and exit(code)
 * as an embedding host sees them (only <keep.h> is included):
 * system.random, system.env and system.fs (read_line) are withheld unless
 * KpConfig grants them; exit(code) makes a run return KP_EXIT with
 * kp_vm_exit_code, after the frames' deinits ran, and the VM stays usable.
 *
 * Prints one line per failed check on stderr, then "N passed, M failed".
 */
#include <keep.h>

#include "check.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>


typedef struct Out {
    char out[4096], err[4096];
    size_t nout, nerr;
} Out;

static void add(char *b, size_t *n, const char *s, size_t len) {
    if (*n + len >= 4095) len = 4095 - *n;
    memcpy(b + *n, s, len);
    *n += len;
    b[*n] = 0;
}
static void w_out(void *ud, const char *s, size_t n) { Out *o = ud; add(o->out, &o->nout, s, n); }
static void w_err(void *ud, const char *s, size_t n) { Out *o = ud; add(o->err, &o->nerr, s, n); }

static KpVM *vm_with(Out *o, bool fs, bool rnd, bool env) {
    memset(o, 0, sizeof *o);
    KpConfig cfg = {0};
    cfg.write_out = w_out;
    cfg.write_err = w_err;
    cfg.ud = o;
    cfg.allow_fs = fs;
    cfg.allow_random = rnd;
    cfg.allow_env = env;
    cfg.stack_values = 80000;
    return kp_vm_new(&cfg);
}

static int run(KpVM *vm, const char *src) { return kp_vm_run_string(vm, "t.kp", src, strlen(src)); }

static void capabilities_are_withheld_by_default(void) {
    check_current = "capabilities_are_withheld_by_default";
    Out o;
    KpVM *vm = vm_with(&o, false, false, false);
    CHECK(vm != NULL);
    CHECK(run(vm, "r := Random(&system.random, .seed = 1)\n") == KP_ERR_RUNTIME);
    CHECK(strstr(kp_vm_last_error(vm), "not granted random numbers") != NULL);
    CHECK(run(vm, "print(get_env(&system.env, \"HOME\"))\n") == KP_ERR_RUNTIME);
    CHECK(strstr(kp_vm_last_error(vm), "not granted the environment variables (system.env)") != NULL);
    CHECK(run(vm, "print(read_line())\n") == KP_ERR_RUNTIME);
    CHECK(strstr(kp_vm_last_error(vm), "read_line: this program was not granted input") != NULL);
    /* the error lists only what was granted */
    CHECK(run(vm, "x := system.nothing\n") == KP_ERR_RUNTIME);
    CHECK(strstr(kp_vm_last_error(vm), "(it has memory, args, script)") != NULL);
    kp_vm_free(vm);
}

static void granted_capabilities_work(void) {
    check_current = "granted_capabilities_work";
    Out o;
    KpVM *vm = vm_with(&o, false, true, true);
    setenv("KEEP_TEST_CAPS_VAR", "forty two", 1);
    CHECK(run(vm, "r := Random(&system.random, .seed = 42)\n"
                  "print(next_float(r), get_env(&system.env, \"KEEP_TEST_CAPS_VAR\"))\n") == KP_OK);
    CHECK(strcmp(o.out, "0.08386297105988216 forty two\n") == 0);
    unsetenv("KEEP_TEST_CAPS_VAR");
    o.nout = 0;
    CHECK(run(vm, "print(get_env(&system.env, \"KEEP_TEST_CAPS_VAR\"))\n") == KP_OK);
    CHECK(strcmp(o.out, "()\n") == 0);
    kp_vm_free(vm);
}

static void exit_returns_kp_exit_and_the_vm_stays_usable(void) {
    check_current = "exit_returns_kp_exit_and_the_vm_stays_usable";
    Out o;
    KpVM *vm = vm_with(&o, false, false, false);
    CHECK(kp_vm_exit_code(vm) == 0);
    CHECK(run(vm, "T : Type = ( .n : Int )\n"
                  "deinit (.t: $&T) -> () := { print(\"deinit\", t.n) }\n"
                  "keep_me := T(.n = 1)\n"
                  "{\n    inner := T(.n = 2)\n    exit(9)\n}\n"
                  "print(\"not reached\")\n") == KP_EXIT);
    CHECK(kp_vm_exit_code(vm) == 9);
    CHECK(strcmp(o.out, "deinit 2\n") == 0); /* the top-level variable stays */
    CHECK(o.nerr == 0);                      /* nothing is reported */
    /* the VM runs on; the next run clears the exit */
    CHECK(run(vm, "print(keep_me.n)\n") == KP_OK);
    CHECK(kp_vm_exit_code(vm) == 0);
    CHECK(strcmp(o.out, "deinit 2\n1\n") == 0);
    /* exit from a function the host calls */
    CHECK(run(vm, "quit () -> () := { exit(4) }\n") == KP_OK);
    CHECK(kp_slots_ensure(vm, 2) == KP_OK);
    CHECK(kp_get_global(vm, "quit", 0) == KP_OK);
    CHECK(kp_call(vm, 0, 1, 0, 1) == KP_EXIT);
    CHECK(kp_vm_exit_code(vm) == 4);
    CHECK(kp_vm_finish(vm) == KP_OK);
    CHECK(strstr(o.out, "deinit 1\n") != NULL);
    kp_vm_free(vm);
}

static void *interrupt_soon(void *vm) {
    struct timespec ts = {0, 100 * 1000 * 1000};
    nanosleep(&ts, NULL);
    kp_vm_interrupt(vm);
    return NULL;
}

/* kp_vm_interrupt ends a long sleep (the script would sleep an hour) */
static void interrupt_ends_a_sleep(void) {
    check_current = "interrupt_ends_a_sleep";
    Out o;
    KpVM *vm = vm_with(&o, false, false, false);
    pthread_t t;
    CHECK(pthread_create(&t, NULL, interrupt_soon, vm) == 0);
    CHECK(run(vm, "sleep(3600)\nprint(\"not reached\")\n") == KP_ERR_RUNTIME);
    pthread_join(t, NULL);
    CHECK(strstr(kp_vm_last_error(vm), "interrupted") != NULL);
    CHECK(o.nout == 0);
    kp_vm_free(vm);
}

int main(void) {
    interrupt_ends_a_sleep();
    capabilities_are_withheld_by_default();
    granted_capabilities_work();
    exit_returns_kp_exit_and_the_vm_stays_usable();
    return CHECK_DONE();
}
