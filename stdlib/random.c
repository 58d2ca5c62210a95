/*
 * random.c — random numbers as a capability: Random, next_float, next_int,
 * shuffle.
 *
 * Design.  A program gets randomness only through system.random, which
 * the host grants (KpConfig.allow_random; the `keep` command does), as it
 * reaches files only through system.fs.  `Random(&system.random)` makes a
 * generator seeded from the operating system (getrandom); `.seed = n`
 * makes one that gives the same sequence on every machine and every run
 * (tests, simulations, reproducible shuffles).
 *
 * The generator is xoshiro256** (Blackman and Vigna, 2018): 256 bits of
 * state, period 2^256 − 1, fast, and good on every statistical test
 * suite; the seed is expanded into the state by splitmix64, as its
 * authors recommend (so seeds 0, 1, 2 give unrelated streams).  A
 * generator is a value of the built-in host type `Random` (vm->t_random):
 * its payload is the state; it prints as <Random>, moves, and cannot be
 * copied (two copies would repeat each other's numbers).
 *
 * next_float is the top 53 bits over 2^53: uniform in [0, 1), every value
 * a multiple of 2^-53.  next_int(lo, hi) is uniform over lo ≤ n < hi (hi
 * excluded, as in ranges `lo..hi`), without modulo bias: draws at or above
 * the largest multiple of the range are rejected.  shuffle is
 * Fisher–Yates from the end, one next_int per element.
 */
#include <errno.h>
#include <inttypes.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "lib.h"

typedef struct Rng {
    uint64_t s[4];
} Rng;

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static uint64_t next64(Rng *r) {
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* A uniform draw from 0 .. range-1 (range > 0), without bias. */
static uint64_t below(Rng *r, uint64_t range) {
    uint64_t limit = -range % range; /* 2^64 mod range: draws below it are rejected */
    for (;;) {
        uint64_t x = next64(r);
        if (x >= limit) return x % range;
    }
}

static Rng *rng_arg(KpVM *vm, const char *fn, KpValue v) {
    v = kp_deref(v);
    if (v.tag == KP_T_RECORD && ((KpRecord *)v.p)->type == vm->t_random) return KP_HOST_PAYLOAD((KpRecord *)v.p);
    kp_vm_error(vm, "argument 1 of '%s' must be &Random, but it is %s", fn, kp_value_type_name(vm, v));
    return NULL;
}

/* Random(&system.random, .seed = ()) -> Random */
static bool b_random(KpVM *vm, KpValue *a, int n, KpValue *out) {
    (void)n;
    KpValue cap = kp_deref(a[0]);
    if (!(cap.tag == KP_T_SYSTEM && cap.aux == 3))
        return kp_vm_error(vm, "Random needs the random capability: Random(&system.random)");
    KpValue sv = kp_deref(a[1]);
    uint64_t seed;
    if (sv.tag == KP_T_UNIT) {
        ssize_t got = getrandom(&seed, sizeof seed, 0);
        while (got < 0 && errno == EINTR) got = getrandom(&seed, sizeof seed, 0);
        if (got != (ssize_t)sizeof seed)
            return kp_vm_error(vm, "Random: the system gave no random seed (getrandom: %s)", strerror(errno));
    } else {
        int64_t s;
        if (!kp_lib_int(vm, "Random", a, 1, &s)) return false;
        seed = (uint64_t)s;
    }
    KpRecord *r = kp_obj_new(vm, vm->ctx, KP_T_RECORD, sizeof(KpRecord) + KP_HOST_BYTES(vm->t_random));
    if (!r) return false;
    r->type = vm->t_random;
    Rng *g = KP_HOST_PAYLOAD(r);
    for (int i = 0; i < 4; i++) g->s[i] = splitmix64(&seed);
    *out = kp_ptr(KP_T_RECORD, r);
    return true;
}

/* next_float(&rng) -> Float in [0, 1) */
static bool b_next_float(KpVM *vm, KpValue *a, int n, KpValue *out) {
    (void)n;
    Rng *g = rng_arg(vm, "next_float", a[0]);
    if (!g) return false;
    *out = kp_float((double)(next64(g) >> 11) * 0x1.0p-53);
    return true;
}

/* next_int(&rng, lo, hi) -> Int in lo .. hi-1 */
static bool b_next_int(KpVM *vm, KpValue *a, int n, KpValue *out) {
    (void)n;
    Rng *g = rng_arg(vm, "next_int", a[0]);
    int64_t lo, hi;
    if (!g || !kp_lib_int(vm, "next_int", a, 1, &lo) || !kp_lib_int(vm, "next_int", a, 2, &hi)) return false;
    if (lo >= hi)
        return kp_vm_error(vm, "next_int(rng, %" PRId64 ", %" PRId64 "): the range lo..hi is empty (hi is excluded)", lo, hi);
    uint64_t range = (uint64_t)hi - (uint64_t)lo;
    *out = kp_int((int64_t)((uint64_t)lo + below(g, range)));
    return true;
}

/* shuffle(&rng, $&xs): a uniform permutation, in place */
static bool b_shuffle(KpVM *vm, KpValue *a, int n, KpValue *out) {
    (void)n;
    Rng *g = rng_arg(vm, "shuffle", a[0]);
    if (!g) return false;
    KpList *l = kp_lib_list(vm, "shuffle", a, 1, true);
    if (!l) return false;
    for (uint32_t i = l->len; i > 1; i--) {
        uint32_t j = (uint32_t)below(g, i);
        KpValue t = l->items[i - 1];
        l->items[i - 1] = l->items[j];
        l->items[j] = t;
    }
    if (l->len > 1) kp_block_renew(&l->h, "an element moved by shuffle");
    *out = kp_unit();
    return true;
}

const KpBuiltin kp_builtins_random[] = {
    {"Random", b_random, "_: &System.Random, .seed: Int|() = ()", "Random", KP_BF_CTX},
    {"next_float", b_next_float, "rng: $&Random", "Float", 0},
    {"next_int", b_next_int, "rng: $&Random, lo: Int, hi: Int", "Int", 0},
    {"shuffle", b_shuffle, "rng: $&Random, xs: $&List#(T)", "()", 0},
    {NULL, NULL, NULL, NULL, 0},
};
