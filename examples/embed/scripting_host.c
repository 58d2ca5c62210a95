/*
 * scripting_host.c — a host that lets scripts drive it, and drives them.
 *
 *  1. C functions exposed to scripts with kp_register, one per parameter
 *     mode: `limit(x, lo, hi)` takes its arguments by value, `area(&r)`
 *     reads a record it borrows read-only (&), `log_event($&log, text)`
 *     appends to a list it borrows mutably ($&).
 *  2. The host calls script functions with kp_call, passing arguments in
 *     slots and reading the results (a by-value list argument is moved out
 *     of its slot; a `$&` one is borrowed and changed in place).
 *  3. A KpHandle keeps a script value (an inventory list) alive across
 *     calls and runs, until the host releases it.
 *     An error raised in C with kp_error reaches the script as a runtime
 *     error naming the function.
 *  4. Limits: an instruction budget stops a runaway loop; a memory limit
 *     (KpConfig.mem_limit) stops a script that allocates without end.
 *     Both are ordinary runtime errors: the VM stays usable afterwards.
 *  5. Every byte comes from a counting host allocator; its count is back to
 *     zero after kp_vm_free.
 */
#define _POSIX_C_SOURCE 200809L /* posix_memalign */
#include <keep.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------- the counting allocator */

typedef struct Counter {
    long blocks, bytes;
} Counter;

static void *counting_alloc(void *ud, void *ptr, size_t old_size, size_t new_size, size_t align) {
    Counter *c = ud;
    if (align < sizeof(void *)) align = sizeof(void *);
    if (new_size == 0) {
        if (ptr) {
            free(ptr);
            c->blocks--;
            c->bytes -= (long)old_size;
        }
        return NULL;
    }
    void *p = NULL;
    if (posix_memalign(&p, align, new_size) != 0) return NULL;
    if (ptr) {
        memcpy(p, ptr, old_size < new_size ? old_size : new_size);
        free(ptr);
        c->bytes -= (long)old_size;
    } else {
        c->blocks++;
    }
    c->bytes += (long)new_size;
    return p;
}

/* ------------------------------------------------------ output callbacks */

/* Script output goes through stdio, so it interleaves with our printf. */
static void write_out(void *ud, const char *bytes, size_t len) {
    (void)ud;
    fwrite(bytes, 1, len, stdout);
}

/* Diagnostics (error reports with source lines and stack traces) are
 * counted, not shown: this host prints kp_vm_last_error itself. */
static size_t diagnostics;
static void write_err(void *ud, const char *bytes, size_t len) {
    (void)ud;
    (void)bytes;
    diagnostics += len;
}

/* --------------------------------------------------- functions for scripts */

/* limit(x, lo, hi) -> Int: three Ints by value. */
static int c_limit(KpVM *vm, int nargs, void *ud) {
    (void)nargs;
    (void)ud;
    int64_t x, lo, hi;
    if (kp_get_int(vm, 0, &x) || kp_get_int(vm, 1, &lo) || kp_get_int(vm, 2, &hi))
        return kp_error(vm, "expects three Ints, got %s", kp_get_type_name(vm, 0));
    if (lo > hi) return kp_error(vm, "empty range %lld..%lld", (long long)lo, (long long)hi);
    return kp_set_int(vm, 0, x < lo ? lo : x > hi ? hi : x);
}

/* area(&r) -> Int: reads the fields .w and .h of a borrowed record. */
static int c_area(KpVM *vm, int nargs, void *ud) {
    (void)nargs;
    (void)ud;
    int64_t w, h;
    if (kp_slots_ensure(vm, 3) != KP_OK) return KP_ERR_RUNTIME;
    if (kp_get_field(vm, 0, "w", 1) || kp_get_int(vm, 1, &w) || kp_get_field(vm, 0, "h", 2) || kp_get_int(vm, 2, &h))
        return kp_error(vm, "needs a record with Int fields .w and .h, got %s", kp_get_type_name(vm, 0));
    return kp_set_int(vm, 0, w * h); /* slot 0 (the reference) becomes the result */
}

/* log_event($&log, text): appends "#N text" to the caller's list. */
static int c_log_event(KpVM *vm, int nargs, void *ud) {
    (void)nargs;
    long *serial = ud;
    size_t len;
    const char *text = kp_get_string(vm, 1, &len);
    if (!text) return kp_error(vm, "the event must be a String, not %s", kp_get_type_name(vm, 1));
    char line[128];
    int n = snprintf(line, sizeof line, "#%ld %.*s", ++*serial, (int)len, text);
    if (kp_set_string(vm, 1, line, (size_t)n) != KP_OK) return KP_ERR_RUNTIME;
    return kp_list_append(vm, 0, 1); /* writes through the $& reference */
}

/* ------------------------------------------------------------ the script */

static const char script[] =
    "Rect : Type = ( .w : Int, .h : Int )\n"
    "\n"
    "events : List#(String) = []\n"
    "log_event(events, \"started\")          -- auto-borrowed as $&\n"
    "room := Rect(.w = 4, .h = 3)\n"
    "print(\"area of\", room, \"is\", area(&room))\n"
    "print(\"limited:\", limit(250, 0, 100), limit(-3, 0, 100))\n"
    "log_event($&events, \"measured room\")\n"
    "print(\"events:\", events)\n"
    "\n"
    "-- functions the host calls\n"
    "score (r: &Rect, bonus: Int) -> Int := { return area(r) * 10 + limit(bonus, 0, 5) }\n"
    "total (xs: List#(Int)) -> Int := {     -- takes the list by value\n"
    "    t := 0\n"
    "    for x in xs { t += x }\n"
    "    return t\n"
    "}\n"
    "new_inventory () -> List#(String) := { return [\"rope\"] }\n"
    "add_item (inv: $&List#(String), item: String) -> Int := {\n"
    "    push(inv, item)\n"
    "    log_event(events, \"added \" + item)\n"
    "    return len(inv)\n"
    "}\n"
    "describe (inv: &List#(String)) -> String := { return join(inv, \", \") }\n"
    "show_events () -> () := { print(\"events:\", events) }\n";

/* ------------------------------------------------------------ helpers */

static int check(KpVM *vm, int rc, const char *what) {
    if (rc != KP_OK) {
        printf("%s failed: code %d: %s\n", what, rc, kp_vm_last_error(vm));
        exit(1);
    }
    return rc;
}

static void run(KpVM *vm, const char *name, const char *src) {
    check(vm, kp_vm_run_string(vm, name, src, strlen(src)), name);
}

/* Calls the top-level function `name` with the arguments in slots 1..nargs;
 * the function goes in slot 0 and the result lands in slot 0. */
static void call(KpVM *vm, const char *name, int nargs) {
    check(vm, kp_get_global(vm, name, 0), name);
    check(vm, kp_call(vm, 0, 1, nargs, 0), name);
}

static void print_slot(KpVM *vm, const char *label, int slot) {
    int64_t i;
    const char *s;
    if (kp_get_int(vm, slot, &i) == KP_OK) printf("%s %lld\n", label, (long long)i);
    else if ((s = kp_get_string(vm, slot, NULL))) printf("%s \"%s\"\n", label, s);
    else printf("%s <%s>\n", label, kp_get_type_name(vm, slot));
}

int main(void) {
    Counter counter = {0};
    KpConfig cfg = {
        .alloc = counting_alloc,
        .alloc_ud = &counter,
        .write_out = write_out,
        .write_err = write_err,
        .mem_limit = 4 << 20, /* 4 MiB of script memory */
    };
    KpVM *vm = kp_vm_new(&cfg);
    if (!vm) return 1;

    /* 1. C functions with their parameter modes, then the script */
    long serial = 0;
    static const KpMode by_value[3] = {KP_MODE_VALUE, KP_MODE_VALUE, KP_MODE_VALUE};
    static const KpMode by_ref[1] = {KP_MODE_REF};
    static const KpMode log_modes[2] = {KP_MODE_MUTREF, KP_MODE_VALUE};
    check(vm, kp_register(vm, "limit", c_limit, 3, by_value, NULL), "register limit");
    check(vm, kp_register(vm, "area", c_area, 1, by_ref, NULL), "register area");
    check(vm, kp_register(vm, "log_event", c_log_event, 2, log_modes, &serial), "register log_event");
    printf("== script\n");
    run(vm, "main.kp", script);

    /* 2. calling script functions */
    printf("== kp_call\n");
    check(vm, kp_slots_ensure(vm, 4), "slots");
    check(vm, kp_new_record(vm, 1, "Rect"), "Rect");
    check(vm, kp_set_int(vm, 3, 7), "w");
    check(vm, kp_set_field(vm, 1, "w", 3), "w");
    check(vm, kp_set_int(vm, 3, 2), "h");
    check(vm, kp_set_field(vm, 1, "h", 3), "h");
    check(vm, kp_set_int(vm, 2, 9), "bonus");
    call(vm, "score", 2); /* score(&Rect(7, 2), 9): the record is borrowed */
    print_slot(vm, "score(Rect(.w = 7, .h = 2), 9) =", 0);
    printf("the record is still in slot 1: %s\n", kp_get_type_name(vm, 1));

    check(vm, kp_new_list(vm, 1), "list");
    for (int i = 1; i <= 4; i++) {
        check(vm, kp_set_int(vm, 2, i * i), "int");
        check(vm, kp_list_append(vm, 1, 2), "append");
    }
    call(vm, "total", 1); /* total([1, 4, 9, 16]): the list is moved */
    print_slot(vm, "total([1, 4, 9, 16]) =", 0);
    printf("slot 1 after the by-value call: %s\n", kp_get_kind(vm, 1) == KP_KIND_NONE ? "empty (moved)" : "still full");

    /* 3. a handle keeps the inventory alive between calls and runs */
    printf("== handle\n");
    call(vm, "new_inventory", 0);
    KpHandle *inventory = kp_handle_new(vm, 0);
    if (!inventory) return 1;
    const char *items[] = {"lamp", "map"};
    for (int i = 0; i < 2; i++) {
        check(vm, kp_handle_get(vm, inventory, 1), "handle"); /* a $& reference to the list */
        check(vm, kp_set_string(vm, 2, items[i], strlen(items[i])), "item");
        call(vm, "add_item", 2);
        print_slot(vm, "items now:", 0);
        run(vm, "between.kp", "print(\"(another run in between)\")\n");
    }
    check(vm, kp_handle_get(vm, inventory, 1), "handle");
    call(vm, "describe", 1);
    print_slot(vm, "inventory:", 0);
    run(vm, "events.kp", "show_events()\n");
    kp_handle_release(vm, inventory);

    /* an error raised by a C function with kp_error is a runtime error of
     * the calling script, prefixed with the function's name */
    printf("== kp_error\n");
    static const char bad_call[] = "print(limit(1, 5, 0))\n";
    int rc = kp_vm_run_string(vm, "bad.kp", bad_call, sizeof bad_call - 1);
    printf("code %d: %s\n", rc, kp_vm_last_error(vm));

    /* 4a. the instruction budget stops a runaway script */
    printf("== budget\n");
    kp_vm_set_budget(vm, 100000);
    static const char runaway[] = "n := 0\nwhile true { n += 1 }\n";
    rc = kp_vm_run_string(vm, "runaway.kp", runaway, sizeof runaway - 1);
    printf("runaway script: code %d: %s\n", rc, strstr(kp_vm_last_error(vm), "instruction budget exhausted") ? "instruction budget exhausted" : kp_vm_last_error(vm));
    kp_vm_set_budget(vm, -1);
    run(vm, "after.kp", "print(\"after the budget: limit still works:\", limit(7, 0, 5))\n");

    /* 4b. the memory limit stops a script that allocates without end */
    printf("== memory limit\n");
    static const char hog[] =
        "fill () -> () := {\n"
        "    hog : List#(String) = []\n"
        "    while true { push(hog, \"a string that takes some room \" + str(len(hog))) }\n"
        "}\n"
        "fill()   -- the error unwinds fill and deinitializes hog\n";
    rc = kp_vm_run_string(vm, "hog.kp", hog, sizeof hog - 1);
    printf("hungry script: code %d: %s\n", rc, strstr(kp_vm_last_error(vm), "out of memory") ? "out of memory" : kp_vm_last_error(vm));
    run(vm, "after.kp", "xs := [1, 2, 3]\nprint(\"after the limit: a new list\", xs)\nshow_events()\n");

    /* 5. everything goes back to the host allocator */
    kp_vm_free(vm);
    printf("== after kp_vm_free: %ld blocks, %ld bytes live in the host allocator\n", counter.blocks, counter.bytes);
    printf("diagnostics were written for the errors: %s\n", diagnostics > 0 ? "yes" : "no");
    return counter.blocks == 0 && counter.bytes == 0 ? 0 : 1;
}
