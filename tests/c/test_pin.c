/*
 * test_pin.c — kp_pin_bytes / kp_unpin_bytes (include/keep.h), as a host
 * uses them: a C function pins a script's buffer, the script cannot resize
 * or free it while the pin lasts, the host writes through the pointer, a
 * pin left at kp_vm_free is reported.  Every VM runs on a counting host
 * allocator that must be back to zero after kp_vm_free.
 *
 * Prints one line per failed check on stderr, then "N passed, M failed".
 */
#include <keep.h>

#include "check.h"

#include "counting.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>


typedef struct Host {
    Counting mem; /* the host allocator (counting.h) */
    char out[4096], err[8192];
    size_t out_len, err_len;
    void *ptr; /* what the pinning C function got */
    size_t len;
} Host;

static void add(char *buf, size_t cap, size_t *len, const char *s, size_t n) {
    if (*len + n >= cap) n = cap - 1 - *len;
    memcpy(buf + *len, s, n);
    *len += n;
    buf[*len] = 0;
}
static void host_out(void *ud, const char *s, size_t n) { Host *h = ud; add(h->out, sizeof h->out, &h->out_len, s, n); }
static void host_err(void *ud, const char *s, size_t n) { Host *h = ud; add(h->err, sizeof h->err, &h->err_len, s, n); }

static KpVM *host_vm(Host *h) {
    memset(h, 0, sizeof *h);
    KpConfig cfg = {0};
    cfg.alloc = counting_alloc;
    cfg.alloc_ud = &h->mem;
    cfg.write_out = host_out;
    cfg.write_err = host_err;
    cfg.ud = h;
    cfg.stack_values = 80000;
    return kp_vm_new(&cfg);
}

static int run(KpVM *vm, const char *src) { return kp_vm_run_string(vm, "t.kp", src, strlen(src)); }

/* c_pin(&buf): pins the buffer and writes 42 into its first byte. */
static int c_pin(KpVM *vm, int nargs, void *ud) {
    (void)nargs;
    Host *h = ud;
    int rc = kp_pin_bytes(vm, 0, &h->ptr, &h->len);
    if (rc != KP_OK) return kp_error(vm, "pin failed: %s", kp_vm_last_error(vm));
    if (h->len) ((unsigned char *)h->ptr)[0] = 42;
    return kp_set_unit(vm, 0);
}

static int c_unpin(KpVM *vm, int nargs, void *ud) {
    (void)nargs;
    (void)ud;
    int rc = kp_unpin_bytes(vm, 0);
    if (rc != KP_OK) return kp_error(vm, "unpin failed: %s", kp_vm_last_error(vm));
    return kp_set_unit(vm, 0);
}

static void pinned_buffer_refuses_resize_and_free(void) {
    Host h;
    KpVM *vm = host_vm(&h);
    const KpMode ref[1] = {KP_MODE_REF};
    CHECK(kp_register(vm, "c_pin", c_pin, 1, ref, &h) == KP_OK);
    CHECK(kp_register(vm, "c_unpin", c_unpin, 1, ref, &h) == KP_OK);
    CHECK(run(vm, "page := PageAllocator(&system.memory)\nbuf := page | alloc(16)\nc_pin(&buf)\nprint(buf[0], is_pinned(&buf))\n") == KP_OK);
    CHECK(strstr(h.out, "42 true\n") != NULL);
    CHECK(h.len == 16 && h.ptr != NULL);
    CHECK(run(vm, "resize(buf, 32)\n") == KP_ERR_RUNTIME);
    CHECK(strstr(kp_vm_last_error(vm), "cannot resize a pinned HeapAllocation (pinned by kp_pin_bytes)") != NULL);
    CHECK(run(vm, "a := ArenaAllocator(&page)\nb2 := a | alloc(8)\nc_pin(&b2)\nreset(a)\n") == KP_ERR_RUNTIME);
    CHECK(strstr(kp_vm_last_error(vm), "cannot reset an ArenaAllocator: a HeapAllocation of 8 bytes from it is pinned (by kp_pin_bytes)") != NULL);
    CHECK(run(vm, "c_unpin(&b2)\nc_unpin(&buf)\nresize(buf, 32)\nprint(buf.size, buf[0], is_pinned(&buf))\n") == KP_OK);
    CHECK(strstr(h.out, "32 42 false\n") != NULL);
    CHECK(run(vm, "c_unpin(&buf)\n") == KP_ERR_RUNTIME); /* no pin left */
    CHECK(strstr(kp_vm_last_error(vm), "did not pin") != NULL);
    kp_vm_free(vm);
    CHECK(h.mem.blocks == 0);
}

static void pin_of_views_and_errors(void) {
    Host h;
    KpVM *vm = host_vm(&h);
    const KpMode ref[1] = {KP_MODE_REF};
    CHECK(kp_register(vm, "c_pin", c_pin, 1, ref, &h) == KP_OK);
    CHECK(kp_register(vm, "c_unpin", c_unpin, 1, ref, &h) == KP_OK);
    /* a contiguous view: its bytes; a transposed one is refused */
    CHECK(run(vm, "page := PageAllocator(&system.memory)\nbuf := page | alloc(48)\n"
                  "v := view(&buf, Float64, .shape = [2, 2], .offset = 16)\nc_pin(&v)\nprint(buf[16])\nc_unpin(&v)\n") == KP_OK);
    CHECK(h.len == 32 && strstr(h.out, "42\n") != NULL);
    CHECK(run(vm, "t := transpose(&v)\nc_pin(&t)\n") == KP_ERR_RUNTIME);
    CHECK(strstr(kp_vm_last_error(vm), "not contiguous") != NULL);
    CHECK(run(vm, "c_pin(3)\n") == KP_ERR_RUNTIME);
    CHECK(strstr(kp_vm_last_error(vm), "not a HeapAllocation") != NULL);
    /* from the host's own slots */
    CHECK(kp_slots_ensure(vm, 2) == KP_OK);
    CHECK(kp_set_int(vm, 0, 5) == KP_OK);
    CHECK(kp_pin_bytes(vm, 0, NULL, NULL) == KP_ERR_ARG);
    CHECK(kp_pin_bytes(vm, 7, NULL, NULL) == KP_ERR_ARG);
    CHECK(strstr(kp_vm_last_error(vm), "slot 7 does not exist") != NULL);
    kp_vm_free(vm);
    CHECK(h.mem.blocks == 0);
}

static void pin_left_at_free_is_reported(void) {
    Host h;
    KpVM *vm = host_vm(&h);
    const KpMode ref[1] = {KP_MODE_REF};
    CHECK(kp_register(vm, "c_pin", c_pin, 1, ref, &h) == KP_OK);
    CHECK(run(vm, "page := PageAllocator(&system.memory)\nbuf := page | alloc(64)\nc_pin(&buf)\n") == KP_OK);
    kp_vm_free(vm);
    CHECK(strstr(h.err, "kp_vm_free: a HeapAllocation of 64 bytes is still pinned by kp_pin_bytes (unpinned now)") != NULL);
    CHECK(h.mem.blocks == 0);
}

/* map_file is refused to a program that was not granted the file system */
static void map_file_needs_the_fs_capability(void) {
    Host h;
    KpVM *vm = host_vm(&h); /* allow_fs is off */
    CHECK(run(vm, "m := map_file(&system.fs, \"x.bin\")\n") == KP_ERR_RUNTIME);
    CHECK(strstr(kp_vm_last_error(vm), "not granted the file system") != NULL);
    kp_vm_free(vm);
    CHECK(h.mem.blocks == 0);
}

int main(void) {
    check_current = "map_file_needs_the_fs_capability";
    map_file_needs_the_fs_capability();
    check_current = "pinned_buffer_refuses_resize_and_free";
    pinned_buffer_refuses_resize_and_free();
    check_current = "pin_of_views_and_errors";
    pin_of_views_and_errors();
    check_current = "pin_left_at_free_is_reported";
    pin_left_at_free_is_reported();
    return CHECK_DONE();
}
