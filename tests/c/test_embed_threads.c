/*
 * test_embed_threads.c — many VMs in many threads at once.
 *
 * 8 threads each create their own VMs (on their own counting host
 * allocator, on the C library's malloc, on a debug root allocator), run
 * allocation-heavy scripts in them (lists, maps, records with deinits,
 * strings, arena and page allocators), call script functions and C
 * functions, keep values in handles, hit budgets and memory limits, and
 * free the VMs, all concurrently.  One more thread interrupts a VM owned
 * by another thread.  features_vm uses the embedding features of keep.h
 * in each thread's own VM: a host-defined type with its deinit, globals
 * set and changed from C, the on_diagnostic callback, kp_vm_run_string
 * re-entered from a C function mid-expression, kp_pin_bytes.  The keep.h
 * header promises no global state: any
 * shared state shows up as wrong results here, and as a data race under
 * ThreadSanitizer (tests/c/tsan.sh builds this file and the library with
 * -fsanitize=thread).
 *
 * Prints one line per failed check on stderr, then "N passed, M failed".
 */
#include <keep.h>

#include "counting.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static atomic_int passed, failed;

#define CHECK(c)                                                               \
    do {                                                                       \
        if (c) {                                                               \
            atomic_fetch_add(&passed, 1);                                      \
        } else {                                                               \
            atomic_fetch_add(&failed, 1);                                      \
            fprintf(stderr, "%s:%d: thread %d: check failed: %s\n", __FILE__,  \
                    __LINE__, w->id, #c);                                      \
        }                                                                      \
    } while (0)

enum { THREADS = 8, ROUNDS = 20, STACK = 80000 };

/* One worker's state: its allocator counters and captured output. */
typedef struct Worker {
    int id;
    Counting mem; /* its host allocator (counting.h) */
    char out[4096];
    size_t out_len;
    size_t err_len;
    /* features_vm: its host type, what the callbacks saw */
    KpHostType *box_t;
    int boxes, deinits, wrong_owner, diags;
    uint32_t diag_line;
    char diag_msg[200];
} Worker;

static void on_out(void *ud, const char *bytes, size_t len) {
    Worker *w = ud;
    if (w->out_len + len >= sizeof w->out) w->out_len = 0; /* keep the tail */
    memcpy(w->out + w->out_len, bytes, len);
    w->out_len += len;
    w->out[w->out_len] = 0;
}

static void on_err(void *ud, const char *bytes, size_t len) {
    Worker *w = ud;
    (void)bytes;
    w->err_len += len;
}

static int run(KpVM *vm, const char *src) { return kp_vm_run_string(vm, "thread.kp", src, strlen(src)); }

/* A C function: tag(n) -> String, "t<thread>:<n>" (ud is the worker). */
static int c_tag(KpVM *vm, int nargs, void *ud) {
    (void)nargs;
    Worker *w = ud;
    int64_t n;
    if (kp_get_int(vm, 0, &n) != KP_OK) return kp_error(vm, "tag needs an Int");
    char buf[48];
    int len = snprintf(buf, sizeof buf, "t%d:%lld", w->id, (long long)n);
    return kp_set_string(vm, 0, buf, (size_t)len);
}

/* A C function: fill($&xs, n) appends n Ints. */
static int c_fill(KpVM *vm, int nargs, void *ud) {
    (void)nargs;
    (void)ud;
    int64_t n;
    if (kp_get_int(vm, 1, &n) != KP_OK || kp_slots_ensure(vm, 3) != KP_OK) return kp_error(vm, "bad fill");
    for (int64_t k = 0; k < n; k++)
        if (kp_set_int(vm, 2, k) != KP_OK || kp_list_append(vm, 0, 2) != KP_OK) return kp_error(vm, "append");
    return KP_OK;
}

static const char script[] =
    "Item : Type = ( .name : String, .tags : List#(String), .n : Int = 0 )\n"
    "dropped := 0\n"
    "deinit (.it: $&Item) -> () := { dropped += 1 }\n"
    "build (k: Int) -> List#(Item) := {\n"
    "    items : List#(Item) = []\n"
    "    for i in 0..k {\n"
    "        push(items, Item(.name = tag(i), .tags = split(\"a,b,\" + str(i), \",\"), .n = i))\n"
    "    }\n"
    "    return items\n"
    "}\n"
    "score (items: &List#(Item)) -> Int := {\n"
    "    t := 0\n"
    "    for it in items { t += it.n + len(it.tags) }\n"
    "    return t\n"
    "}\n"
    "arena_work (k: Int) -> Int := {\n"
    "    page := PageAllocator(&system.memory)\n"
    "    arena := ArenaAllocator(&page)\n"
    "    total := 0\n"
    "    for r in 0..4 {\n"
    "        using arena {\n"
    "            xs := build(k)\n"
    "            m := (\"k\" = 1)\n"
    "            for i in 0..k { m[str(i)] = i }\n"
    "            total += score(xs) + len(m)\n"
    "        }\n"
    "        reset(arena)\n"
    "    }\n"
    "    return total\n"
    "}\n"
    "numbers : List#(Int) = []\n"
    "fill(numbers, 100)\n"
    "first := build(50)\n"
    "print(len(first), score(first), arena_work(40), len(numbers))\n";

/* expected: score(build(k)) = sum(i) + 3k; arena_work(k) = 4 * (score + k + 1) */
static void expected_line(char *buf, size_t cap) {
    long s50 = 50 * 49 / 2 + 3 * 50;
    long s40 = 40 * 39 / 2 + 3 * 40;
    snprintf(buf, cap, "50 %ld %ld 100\n", s50, 4 * (s40 + 40 + 1));
}

static void one_vm(Worker *w, int round) {
    KpConfig cfg = {.write_out = on_out, .write_err = on_err, .ud = w, .stack_values = STACK};
    int mode = (w->id + round) % 3;
    if (mode != 1) {
        cfg.alloc = counting_alloc;
        cfg.alloc_ud = &w->mem;
    }
    if (mode == 2) cfg.debug_alloc = true;
    w->out_len = 0;
    w->out[0] = 0;
    KpVM *vm = kp_vm_new(&cfg);
    CHECK(vm != NULL);
    if (!vm) return;
    const KpMode fill_modes[2] = {KP_MODE_MUTREF, KP_MODE_VALUE};
    CHECK(kp_register(vm, "tag", c_tag, 1, NULL, w) == KP_OK);
    CHECK(kp_register(vm, "fill", c_fill, 2, fill_modes, NULL) == KP_OK);
    CHECK(run(vm, script) == KP_OK);
    char want[96];
    expected_line(want, sizeof want);
    CHECK(strcmp(w->out, want) == 0);

    /* the host calls in, keeps a list in a handle */
    CHECK(kp_slots_ensure(vm, 4) == KP_OK);
    CHECK(kp_get_global(vm, "build", 0) == KP_OK);
    CHECK(kp_set_int(vm, 1, 20) == KP_OK);
    CHECK(kp_call(vm, 0, 1, 1, 2) == KP_OK);
    KpHandle *h = kp_handle_new(vm, 2);
    CHECK(h != NULL);
    CHECK(run(vm, "junk := build(30)\n") == KP_OK);
    CHECK(kp_handle_get(vm, h, 1) == KP_OK);
    CHECK(kp_get_global(vm, "score", 0) == KP_OK);
    CHECK(kp_call(vm, 0, 1, 1, 3) == KP_OK);
    int64_t score = 0;
    CHECK(kp_get_int(vm, 3, &score) == KP_OK && score == 20 * 19 / 2 + 3 * 20);
    /* the C function saw this thread's worker */
    CHECK(kp_list_get(vm, 1, 7, 2) == KP_OK && kp_get_field(vm, 2, "name", 3) == KP_OK);
    char tag[32];
    snprintf(tag, sizeof tag, "t%d:7", w->id);
    const char *got = kp_get_string(vm, 3, NULL);
    CHECK(got && strcmp(got, tag) == 0);
    kp_handle_release(vm, h);

    /* a budget and an error, then more work */
    kp_vm_set_budget(vm, 2000);
    CHECK(run(vm, "spin () := { while true { } }\nspin()\n") == KP_ERR_RUNTIME);
    kp_vm_set_budget(vm, -1);
    CHECK(run(vm, "boom () := { error(\"boom\") }\nboom()\n") == KP_ERR_RUNTIME);
    CHECK(strstr(kp_vm_last_error(vm), "boom") != NULL);
    CHECK(run(vm, "more := build(10)\nprint(score(more))\n") == KP_OK);
    kp_vm_free(vm);
    if (cfg.alloc) {
        CHECK(w->mem.blocks == 0);
        CHECK(w->mem.bytes == 0);
    }
}

/* A VM with a memory limit, hit and recovered from. */
static void limited_vm(Worker *w) {
    KpConfig cfg = {.alloc = counting_alloc, .alloc_ud = &w->mem, .write_out = on_out, .write_err = on_err, .ud = w,
                    .mem_limit = 128 * 1024, .stack_values = STACK};
    KpVM *vm = kp_vm_new(&cfg);
    CHECK(vm != NULL);
    if (!vm) return;
    CHECK(run(vm, "hog () := {\n xs : List#(String) = []\n while true { push(xs, \"text \" + str(len(xs))) }\n}\nhog()\n") ==
          KP_ERR_RUNTIME);
    CHECK(strstr(kp_vm_last_error(vm), "out of memory") != NULL);
    CHECK(run(vm, "ys := [1, 2, 3]\n") == KP_OK);
    kp_vm_free(vm);
    CHECK(w->mem.blocks == 0 && w->mem.bytes == 0);
}

/* ------------------------------------------- the embedding features, per thread
 *
 * Each thread's own VM uses what keep.h added for real hosts: a host type
 * (kp_define_type, kp_new_object, kp_get_object, its deinit), globals set
 * and changed in place from C (kp_set_global, kp_get_global_ref), the
 * on_diagnostic callback, kp_vm_run_string re-entered from a C function in
 * the middle of an expression, and kp_pin_bytes.  The callbacks write only
 * to their own thread's Worker. */

typedef struct Box {
    int64_t value;
    int owner; /* the worker's id: a payload never crosses threads */
} Box;

static void box_deinit(void *payload, void *ud) {
    Worker *w = ud;
    Box *b = payload;
    if (b->owner != w->id) w->wrong_owner++;
    w->deinits++;
}

/* box(n) -> Box */
static int c_box(KpVM *vm, int nargs, void *ud) {
    (void)nargs;
    Worker *w = ud;
    int64_t n;
    if (kp_get_int(vm, 0, &n) != KP_OK) return kp_error(vm, "box needs an Int");
    Box *b = kp_new_object(vm, 0, w->box_t);
    if (!b) return KP_ERR_RUNTIME;
    b->value = n;
    b->owner = w->id;
    w->boxes++;
    return KP_OK;
}

/* unbox(b: &Box) -> Int */
static int c_unbox(KpVM *vm, int nargs, void *ud) {
    (void)nargs;
    Worker *w = ud;
    Box *b = kp_get_object(vm, 0, w->box_t);
    if (!b) return kp_error(vm, "unbox needs a Box, not %s", kp_get_type_name(vm, 0));
    return kp_set_int(vm, 0, b->value);
}

/* reenter(n) -> Int: runs a script in the same VM, then returns 2n */
static int c_reenter(KpVM *vm, int nargs, void *ud) {
    (void)nargs;
    (void)ud;
    int64_t n;
    if (kp_get_int(vm, 0, &n) != KP_OK) return kp_error(vm, "reenter needs an Int");
    static const char inner[] = "reentered += 1\ntmp := [1, 2, 3]\n";
    if (kp_vm_run_string(vm, "inner.kp", inner, sizeof inner - 1) != KP_OK) return kp_error(vm, "inner run failed");
    return kp_set_int(vm, 0, 2 * n);
}

static void on_diag(void *ud, const KpDiagnostic *d) {
    Worker *w = ud;
    w->diags++;
    w->diag_line = d->line;
    snprintf(w->diag_msg, sizeof w->diag_msg, "%s", d->message ? d->message : "");
}

static const char features_script[] =
    "reentered := 0\n"
    "counter := 0\n"
    "xs : List#(Int) = []\n"
    "page := PageAllocator(&system.memory)\n"
    "buf := page | alloc(64)\n"
    "keep_box := box(7)\n"
    "twice (b: &Box) -> Int := { return unbox(b) * 2 }\n"
    "{ b := box(5)\n"
    "  moved := b\n"
    "  print(unbox(&moved), twice(&keep_box), reenter(3) + reenter(4), reentered) }\n"
    "for i in 0..3 { xs = [i, reenter(i)] }\n"
    "print(reentered, xs)\n";

static void features_vm(Worker *w, int round) {
    KpConfig cfg = {.alloc = counting_alloc, .alloc_ud = &w->mem, .write_out = on_out, .write_err = on_err, .ud = w,
                    .stack_values = STACK, .on_diagnostic = on_diag};
    w->out_len = 0;
    w->out[0] = 0;
    w->boxes = w->deinits = w->wrong_owner = w->diags = 0;
    KpVM *vm = kp_vm_new(&cfg);
    CHECK(vm != NULL);
    if (!vm) return;
    w->box_t = kp_define_type(vm, "Box", &(KpTypeDef){.size = sizeof(Box), .deinit = box_deinit, .ud = w});
    CHECK(w->box_t != NULL);
    const KpMode ref1[1] = {KP_MODE_REF};
    CHECK(kp_register(vm, "box", c_box, 1, NULL, w) == KP_OK);
    CHECK(kp_register(vm, "unbox", c_unbox, 1, ref1, w) == KP_OK);
    CHECK(kp_register(vm, "reenter", c_reenter, 1, NULL, w) == KP_OK);
    CHECK(run(vm, features_script) == KP_OK);
    CHECK(strcmp(w->out, "5 14 14 2\n5 [2, 4]\n") == 0);
    CHECK(w->boxes == 2 && w->deinits == 1); /* b (moved to `moved`) went at its block's end */

    /* globals: set from C, changed in place through a reference */
    CHECK(kp_slots_ensure(vm, 4) == KP_OK);
    CHECK(kp_set_int(vm, 0, 40 + round) == KP_OK);
    CHECK(kp_set_global(vm, "counter", 0) == KP_OK);
    CHECK(kp_get_global_ref(vm, "xs", 1) == KP_OK);
    CHECK(kp_set_int(vm, 2, 100 + w->id) == KP_OK);
    CHECK(kp_list_append(vm, 1, 2) == KP_OK);
    /* a host-made Box into the script's global, the old one deinitialized */
    Box *mine = kp_new_object(vm, 3, w->box_t);
    CHECK(mine != NULL);
    if (mine) {
        mine->value = 1000 + w->id;
        mine->owner = w->id;
        w->boxes++;
    }
    CHECK(kp_get_object(vm, 3, w->box_t) == mine);
    CHECK(kp_set_global(vm, "keep_box", 3) == KP_OK);
    CHECK(w->deinits == 2);
    w->out_len = 0;
    CHECK(run(vm, "print(counter + 1, len(xs), xs[2], unbox(&keep_box))\n") == KP_OK);
    char want[96];
    snprintf(want, sizeof want, "%d 3 %d %d\n", 41 + round, 100 + w->id, 1000 + w->id);
    CHECK(strcmp(w->out, want) == 0);

    /* pinning: the host writes through the pointer; the script cannot
     * resize the buffer while the pin lasts */
    CHECK(kp_get_global_ref(vm, "buf", 0) == KP_OK);
    void *ptr = NULL;
    size_t len = 0;
    CHECK(kp_pin_bytes(vm, 0, &ptr, &len) == KP_OK && ptr && len == 64);
    if (ptr) memset(ptr, w->id + 1, len);
    CHECK(run(vm, "resize(buf, 128)\n") == KP_ERR_RUNTIME);
    CHECK(strstr(kp_vm_last_error(vm), "pinned") != NULL);
    CHECK(kp_get_global_ref(vm, "buf", 0) == KP_OK);
    CHECK(kp_unpin_bytes(vm, 0) == KP_OK);
    w->out_len = 0;
    CHECK(run(vm, "resize(buf, 128)\nprint(buf[63], buf.size)\n") == KP_OK);
    snprintf(want, sizeof want, "%d 128\n", w->id + 1);
    CHECK(strcmp(w->out, want) == 0);

    /* diagnostics arrive one by one, structured, on this thread's callback */
    int before = w->diags;
    CHECK(run(vm, "ok := 1\nbad := ok +\n") == KP_ERR_COMPILE);
    CHECK(w->diags == before + 1 && w->diag_line >= 2 && w->diag_msg[0] != 0);
    CHECK(run(vm, "error(\"from thread\")\n") == KP_ERR_RUNTIME);
    CHECK(w->diags == before + 2 && strstr(w->diag_msg, "from thread") != NULL);

    kp_vm_free(vm);
    CHECK(w->deinits == w->boxes); /* every Box exactly once */
    CHECK(w->wrong_owner == 0);
    CHECK(w->mem.blocks == 0 && w->mem.bytes == 0);
}

/* The workers start together, so their VMs really overlap in time. */
static atomic_int ready;

static void *worker(void *arg) {
    Worker *w = arg;
    atomic_fetch_add(&ready, 1);
    while (atomic_load(&ready) < THREADS) sched_yield();
    for (int round = 0; round < ROUNDS; round++) {
        one_vm(w, round);
        if (round % 2 == 0) limited_vm(w);
        else features_vm(w, round);
    }
    return NULL;
}

/* ------------------------------------------- interrupting another thread's VM */

typedef struct Spinner {
    Worker w;
    KpVM *vm;
    atomic_int started, done;
    int rc;
    char err[256];
} Spinner;

static int c_started(KpVM *vm, int nargs, void *ud) {
    (void)vm;
    (void)nargs;
    atomic_store(&((Spinner *)ud)->started, 1);
    return KP_OK;
}

static void *spinner(void *arg) {
    Spinner *s = arg;
    Worker *w = &s->w;
    CHECK(kp_register(s->vm, "started", c_started, 0, NULL, s) == KP_OK);
    s->rc = run(s->vm, "xs := [1]\nstarted()\nwhile true { push(xs, 1)\n pop(xs) }\n");
    snprintf(s->err, sizeof s->err, "%s", kp_vm_last_error(s->vm));
    atomic_store(&s->done, 1);
    return NULL;
}

static void interrupt_across_threads(void) {
    static Spinner s;
    memset(&s, 0, sizeof s);
    s.w.id = 99;
    Worker *w = &s.w;
    KpConfig cfg = {.alloc = counting_alloc, .alloc_ud = &w->mem, .write_out = on_out, .write_err = on_err, .ud = w, .stack_values = STACK};
    s.vm = kp_vm_new(&cfg);
    CHECK(s.vm != NULL);
    if (!s.vm) return;
    pthread_t t;
    CHECK(pthread_create(&t, NULL, spinner, &s) == 0);
    while (!atomic_load(&s.started)) {
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    while (!atomic_load(&s.done)) {
        kp_vm_interrupt(s.vm); /* from this thread, while the other runs it */
        struct timespec ts = {0, 5000000};
        nanosleep(&ts, NULL);
    }
    pthread_join(t, NULL);
    CHECK(s.rc == KP_ERR_RUNTIME);
    CHECK(strstr(s.err, "interrupted") != NULL);
    /* the VM now belongs to this thread, and works */
    CHECK(run(s.vm, "print(\"after\")\n") == KP_OK);
    CHECK(strstr(w->out, "after\n") != NULL);
    kp_vm_free(s.vm);
    CHECK(w->mem.blocks == 0 && w->mem.bytes == 0);
}

int main(void) {
    static Worker workers[THREADS];
    pthread_t t[THREADS];
    for (int i = 0; i < THREADS; i++) {
        workers[i].id = i;
        if (pthread_create(&t[i], NULL, worker, &workers[i]) != 0) {
            fprintf(stderr, "cannot start thread %d\n", i);
            return 1;
        }
    }
    interrupt_across_threads(); /* while the workers run */
    for (int i = 0; i < THREADS; i++) pthread_join(t[i], NULL);
    printf("%d passed, %d failed\n", atomic_load(&passed), atomic_load(&failed));
    return atomic_load(&failed) ? 1 : 0;
}
