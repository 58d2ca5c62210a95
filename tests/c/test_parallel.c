/*
 * test_parallel.c — parallel calls from the embedding side: KpConfig.threads
 * (several workers and one give the same output), kp_vm_interrupt from
 * another thread stops every worker of a running parallel call (and the
 * VM runs again afterwards), a host C function called in a worker is a
 * runtime error, and every VM gives all its memory back to its host.
 */
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "keep.h"
#include "check.h"
#include "counting.h"

typedef struct Host {
    Counting mem;
    char out[8192];
    size_t nout;
    char err[4096];
    size_t nerr;
    pthread_mutex_t lock; /* print may be called from workers */
} Host;

static void host_out(void *ud, const char *b, size_t n) {
    Host *h = ud;
    pthread_mutex_lock(&h->lock);
    if (h->nout + n < sizeof h->out) memcpy(h->out + h->nout, b, n), h->nout += n, h->out[h->nout] = 0;
    pthread_mutex_unlock(&h->lock);
}
static void host_err(void *ud, const char *b, size_t n) {
    Host *h = ud;
    pthread_mutex_lock(&h->lock);
    if (h->nerr + n < sizeof h->err) memcpy(h->err + h->nerr, b, n), h->nerr += n, h->err[h->nerr] = 0;
    pthread_mutex_unlock(&h->lock);
}

static KpVM *make(Host *h, int threads) {
    memset(h, 0, sizeof *h);
    pthread_mutex_init(&h->lock, NULL);
    KpConfig cfg = {.alloc = counting_alloc, .alloc_ud = &h->mem, .write_out = host_out, .write_err = host_err,
                    .ud = h, .threads = threads};
    return kp_vm_new(&cfg);
}

static void done(Host *h, KpVM *vm) {
    kp_vm_free(vm);
    CHECKF(h->mem.blocks == 0 && h->mem.bytes == 0, "%ld blocks, %ld bytes left", h->mem.blocks, h->mem.bytes);
    pthread_mutex_destroy(&h->lock);
}

static const char *const program =
    "Item : Type = (.name : String, .n : Int)\n"
    "xs : List#(Item) = []\n"
    "for i in 0..2000 { push(xs, Item(\"i{i}\", i)) }\n"
    "ys := parallel_map(&xs, (it: &Item) -> String := { return \"{it.name}/{it.n}\" })\n"
    "parallel_for($&xs, (it: $&Item) -> () := { it.n = it.n + 1 })\n"
    "print(len(ys), ys[0], ys[1999], xs[1999].n)\n";

static void test_threads(void) {
    const char *want = "2000 i0/0 i1999/1999 2000\n";
    for (int t = 1; t <= 4; t++) {
        Host h;
        KpVM *vm = make(&h, t);
        CHECK(vm != NULL);
        int rc = kp_vm_run_string(vm, "threads.kp", program, strlen(program));
        CHECKF(rc == KP_OK, "threads %d: rc %d: %s", t, rc, h.err);
        CHECKF(!strcmp(h.out, want), "threads %d: output %s", t, h.out);
        done(&h, vm);
    }
}

typedef struct Runner {
    KpVM *vm;
    const char *src;
    int rc;
    atomic_int finished;
} Runner;

static void *run_thread(void *arg) {
    Runner *r = arg;
    r->rc = kp_vm_run_string(r->vm, "spin.kp", r->src, strlen(r->src));
    atomic_store(&r->finished, 1);
    return NULL;
}

static void test_interrupt(void) {
    Host h;
    KpVM *vm = make(&h, 2);
    CHECK(vm != NULL);
    Runner r = {vm,
                "Res : Type = (.id : Int)\n"
                "deinit (r: $&Res) -> () := { print(\"deinit\") }\n"
                "parallel_for(0..2, (i: Int) -> () := {\n"
                "    r := Res(i)\n"
                "    n := 0\n"
                "    while true { n += 1 }\n"
                "})\n",
                0, 0};
    pthread_t th;
    CHECK(pthread_create(&th, NULL, run_thread, &r) == 0);
    struct timespec ts = {0, 50 * 1000 * 1000};
    nanosleep(&ts, NULL);
    /* the interrupt may come before the workers start: asked until it ends */
    for (int k = 0; k < 400 && !atomic_load(&r.finished); k++) {
        kp_vm_interrupt(vm);
        nanosleep(&ts, NULL);
    }
    pthread_join(th, NULL);
    CHECKF(r.rc == KP_ERR_RUNTIME, "rc %d", r.rc);
    CHECKF(strstr(h.err, "interrupted") != NULL, "err: %s", h.err);
    /* both workers unwound: each deinitialized its Res */
    CHECKF(!strcmp(h.out, "deinit\ndeinit\n"), "out: %s", h.out);
    /* the VM runs again */
    h.nout = 0;
    h.out[0] = 0;
    const char *again = "print(parallel_map(0..3, (i: Int) -> Int := { return i + 1 }))\n";
    CHECK(kp_vm_run_string(vm, "again.kp", again, strlen(again)) == KP_OK);
    CHECKF(!strcmp(h.out, "[1, 2, 3]\n"), "out: %s", h.out);
    done(&h, vm);
}

static int host_double(KpVM *vm, int nargs, void *ud) {
    (void)vm, (void)nargs, (void)ud;
    return KP_OK;
}

static void test_host_function(void) {
    Host h;
    KpVM *vm = make(&h, 2);
    CHECK(kp_register(vm, "host_double", host_double, 1, NULL, NULL) == KP_OK);
    const char *src = "xs := [1, 2, 3]\n"
                      "ys := parallel_map(&xs, (x: Int) -> Int := { host_double(x)\n return x })\n";
    CHECK(kp_vm_run_string(vm, "host.kp", src, strlen(src)) == KP_ERR_RUNTIME);
    CHECKF(strstr(h.err, "host_double is a host function: it cannot run in a parallel worker") != NULL, "err: %s", h.err);
    done(&h, vm);
}

int main(void) {
    RUN(test_threads);
    RUN(test_interrupt);
    RUN(test_host_function);
    return CHECK_DONE();
}
