/*
 * counted.c — CountedAllocator: one memory budget shared by many
 * allocators.
 *
 * Features
 *   - Forwards every call to an inner allocator and charges the bytes to a
 *     KpAccount (limit, used, peak) that any number of counted allocators
 *     share: together they never hold more than `limit` bytes.  This is the
 *     accounting root of a VM (Lua's single lua_Alloc, which sees every
 *     byte of a state): the script heap and every PageAllocator and
 *     DirectAllocator a script makes are counted views over one account,
 *     and every other allocator takes its memory from one of those.
 *   - A charge is rounded up to the inner allocator's granule (the page
 *     size for a page allocator), so the budget counts what the system
 *     really hands out, not just what was asked for.
 *   - Failing the budget is an ordinary failed allocation (NULL / false);
 *     frees and shrinking resizes always go through.
 *
 * Design: the account is reserved before the inner call, with an atomic
 * add, and given back if the call fails — concurrent callers can never
 * together pass the limit (as in alloc.c's thread-safe path).
 *
 * Thread-safety: the account is atomic; the view is as thread-safe as the
 * inner allocator (it copies the inner's KP_ALLOC_THREADSAFE flag).
 * Cost: two atomic adds per call.
 */
#include "alloc.h"

#define RELAXED __ATOMIC_RELAXED

static int64_t charge_of(const KpCounted *c, size_t size) {
    size_t g = c->granule, n = size ? size : 1;
    if (g <= 1) return n > (size_t)INT64_MAX ? INT64_MAX : (int64_t)n; /* no rounding: no division */
    if (n > (size_t)INT64_MAX - g) return INT64_MAX;
    return (int64_t)((n + g - 1) / g * g);
}

/* Reserves n bytes of the account; false (nothing reserved) past the limit. */
static bool reserve(KpAccount *a, int64_t n) {
    int64_t used = __atomic_add_fetch(&a->used, n, RELAXED);
    if (a->limit >= 0 && used > a->limit) {
        __atomic_sub_fetch(&a->used, n, RELAXED);
        __atomic_add_fetch(&a->refusals, 1, RELAXED);
        return false;
    }
    int64_t peak = __atomic_load_n(&a->peak, RELAXED);
    while (used > peak && !__atomic_compare_exchange_n(&a->peak, &peak, used, true, RELAXED, RELAXED)) {
    }
    return true;
}

static void give_back(KpAccount *a, int64_t n) { __atomic_sub_fetch(&a->used, n, RELAXED); }

static void *counted_alloc(void *ctx, size_t size, size_t align, const KpSrcLoc *loc) {
    KpCounted *c = ctx;
    int64_t n = charge_of(c, size);
    if (!reserve(c->acct, n)) return NULL;
    void *p = kp_alloc(c->inner, size, align, loc);
    if (!p) give_back(c->acct, n);
    return p;
}

static bool counted_resize(void *ctx, void *ptr, size_t old_size, size_t new_size, size_t align,
                           const KpSrcLoc *loc) {
    KpCounted *c = ctx;
    int64_t o = charge_of(c, old_size), n = charge_of(c, new_size);
    if (n > o && !reserve(c->acct, n - o)) return false;
    if (!kp_resize(c->inner, ptr, old_size, new_size, align, loc)) {
        if (n > o) give_back(c->acct, n - o);
        return false;
    }
    if (n < o) give_back(c->acct, o - n);
    return true;
}

static void counted_free(void *ctx, void *ptr, size_t size, size_t align, const KpSrcLoc *loc) {
    KpCounted *c = ctx;
    kp_free(c->inner, ptr, size, align, loc);
    give_back(c->acct, charge_of(c, size));
}

static const KpAllocatorVT counted_vt = {counted_alloc, counted_resize, counted_free, NULL};

void kp_counted_init(KpCounted *c, KpAllocator *inner, size_t granule, KpAccount *acct, KpAllocator *out) {
    c->inner = inner;
    c->granule = granule;
    c->acct = acct;
    *out = (KpAllocator){&counted_vt, c, inner->name, inner->flags & (KP_ALLOC_THREADSAFE | KP_ALLOC_WANTS_LOC),
                         -1, {0}, NULL};
}
