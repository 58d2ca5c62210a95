/*
 * counting.h — the counting host allocator of the C tests (tests/c/) and of
 * the out-of-memory driver (tests/oom/oom.c), in one place.
 *
 * Every block a VM takes from its host goes through counting_alloc (a
 * KpAllocFn; its `ud` is a Counting), which keeps the live blocks and
 * bytes (both back to zero after kp_vm_free, or the VM leaked), the most
 * bytes live at once and the number of requests, and can refuse requests
 * to inject out-of-memory: with `fail` set, request number `fail_at`
 * (0-based, resizes included) and every later one, or only that one when
 * `once` is set.  A zeroed Counting counts and refuses nothing.
 *
 *     typedef struct Host { Counting mem; ... } Host;
 *     KpConfig cfg = {.alloc = counting_alloc, .alloc_ud = &h->mem, ...};
 *     ... kp_vm_free(vm); CHECK(h->mem.blocks == 0 && h->mem.bytes == 0);
 *
 * Header-only (static functions): each test program includes it once.
 */
#ifndef KP_TESTS_COUNTING_H
#define KP_TESTS_COUNTING_H

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

typedef struct Counting {
    long blocks, bytes; /* live in the host allocator */
    long peak_bytes;    /* the most bytes live at once */
    long requests;      /* allocation requests, resizes included (frees are not) */
    bool fail;          /* refuse requests: */
    long fail_at;       /*   from request fail_at on, */
    bool once;          /*   or only that one */
    long refused;       /* requests refused */
    void (*on_refuse)(void *ctx); /* called at each refusal (may be NULL) */
    void *ctx;
} Counting;

static void *counting_alloc(void *ud, void *ptr, size_t old_size, size_t new_size, size_t align) {
    Counting *c = ud;
    if (new_size == 0) {
        if (ptr) {
            free(ptr);
            c->blocks--;
            c->bytes -= (long)old_size;
        }
        return NULL;
    }
    long n = c->requests++;
    if (c->fail && (c->once ? n == c->fail_at : n >= c->fail_at)) {
        c->refused++;
        if (c->on_refuse) c->on_refuse(c->ctx);
        return NULL;
    }
    if (align < sizeof(void *)) align = sizeof(void *);
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
    if (c->bytes > c->peak_bytes) c->peak_bytes = c->bytes;
    return p;
}

#endif
