/*
 * parallel.c — parallel_map and parallel_for: data parallelism.
 *
 *   parallel_map(&xs, f)      -> the list of f(&x) for every x of xs, in order
 *   parallel_map(a..b, f)     -> the list of f(i) for every i of a..b
 *   parallel_for(a..b, f)     -> f(i) for every i of a..b (also (a, b, f))
 *   parallel_for($&xs, f)     -> f($&x) — or f(i, $&x) — for every element
 *   parallel_for(~&xs, f)     -> the same, then xs is the result (a pipe
 *                                stage: `make() | parallel_for(~&_, f)`)
 *
 * Each call runs f on worker threads (vm/parallel.c: how workers are made
 * and stopped, what they share); the compiler checks that f shares data
 * only by reading it (compiler/parcheck.c).  The order in which the
 * elements are visited is not defined; the results are in index order.
 * Rules and examples: docs/language.md §15.
 */
#include <string.h>

#include "lib.h"
#include "../vm/parallel.h"

static bool fn_arg(KpVM *vm, const char *who, KpValue *a, int i, KpValue *fn) {
    KpValue f = kp_deref(a[i]);
    if (f.tag != KP_T_FUNC && !(f.tag == KP_T_RECORD && ((KpRecord *)f.p)->type->closure))
        return kp_vm_error(vm, "argument %d of '%s' must be a function, but it is %s", i + 1, who,
                           kp_value_type_name(vm, f));
    *fn = f;
    return true;
}

/* A list of len UNSET items for the results of fn, typed by fn's
 * declared output type when it has one; NULL when out of memory. */
static KpList *results_for(KpVM *vm, uint32_t len, KpValue fn) {
    KpList *ys = kp_list_new(vm, len);
    if (!ys) return NULL;
    for (uint32_t i = 0; i < len; i++) ys->items[i] = kp_unset();
    ys->len = len;
    KpOverload *ov = kp_par_fn_overload(fn);
    KpType *rt = ov ? ov->ret : NULL;
    if (rt && rt != vm->t_any && rt->kind != KP_TK_REF) ys->elem = rt;
    return ys;
}

/* Runs a job whose results go to ys: ys becomes *out, or is dropped. */
static bool run_into(KpVM *vm, KpParJob *job, KpList *ys, KpValue *out) {
    if (!kp_par_run(vm, job)) {
        kp_drop(vm, kp_ptr(KP_T_LIST, ys)); /* the results made so far */
        return false;
    }
    *out = kp_ptr(KP_T_LIST, ys);
    return true;
}

static bool b_parallel_map(KpVM *vm, KpValue *a, int n, KpValue *out) {
    (void)n;
    KpList *xs = kp_lib_list(vm, "parallel_map", a, 0, false);
    KpValue fn;
    if (!xs || !fn_arg(vm, "parallel_map", a, 1, &fn)) return false;
    KpList *ys = results_for(vm, xs->len, fn);
    if (!ys) return false;
    /* xs cannot change meanwhile: the caller holds it borrowed, and the
     * workers only read it */
    KpParJob job = {KP_PAR_MAP, 0, xs->len, fn, xs, ys, "parallel_map"};
    return run_into(vm, &job, ys, out);
}

/* parallel_map(a..b, f): the list of f(i) */
static bool b_parallel_map_range(KpVM *vm, KpValue *a, int n, KpValue *out) {
    (void)n;
    KpValue lo = kp_deref(a[0]), hi = kp_deref(a[1]), fn;
    if (lo.tag != KP_T_INT || hi.tag != KP_T_INT) return kp_vm_error(vm, "parallel_map: a range needs Int bounds");
    if (!fn_arg(vm, "parallel_map", a, 2, &fn)) return false;
    int64_t len = hi.i > lo.i ? hi.i - lo.i : 0;
    if (len > UINT32_MAX / 2) return kp_vm_error(vm, "parallel_map: a range of %lld indices is too long", (long long)len);
    KpList *ys = results_for(vm, (uint32_t)len, fn);
    if (!ys) return false;
    KpParJob job = {KP_PAR_RANGE, lo.i, lo.i + len, fn, NULL, ys, "parallel_map"};
    return run_into(vm, &job, ys, out);
}

static bool b_parallel_range(KpVM *vm, KpValue *a, int n, KpValue *out) {
    (void)n;
    KpValue lo = kp_deref(a[0]), hi = kp_deref(a[1]), fn;
    if (lo.tag != KP_T_INT || hi.tag != KP_T_INT)
        return kp_vm_error(vm, "parallel_for: a range needs Int bounds");
    if (!fn_arg(vm, "parallel_for", a, 2, &fn)) return false;
    *out = kp_unit();
    KpParJob job = {KP_PAR_RANGE, lo.i, hi.i > lo.i ? hi.i : lo.i, fn, NULL, NULL, "parallel_for"};
    return kp_par_run(vm, &job);
}

static bool each(KpVM *vm, KpList *xs, KpValue fn) {
    /* the elements stay where they are while the workers write them */
    kp_obj_lock_add(&xs->h, 1);
    KpParJob job = {KP_PAR_EACH, 0, xs->len, fn, xs, NULL, "parallel_for"};
    bool ok = kp_par_run(vm, &job);
    kp_obj_lock_add(&xs->h, -1);
    return ok;
}

static bool b_parallel_each(KpVM *vm, KpValue *a, int n, KpValue *out) {
    (void)n;
    KpList *xs = kp_lib_list(vm, "parallel_for", a, 0, true);
    KpValue fn;
    if (!xs || !fn_arg(vm, "parallel_for", a, 1, &fn)) return false;
    *out = kp_unit();
    return each(vm, xs, fn);
}

/* parallel_for(~&xs, f): xs was moved in; it is the result. */
static bool b_parallel_each_owned(KpVM *vm, KpValue *a, int n, KpValue *out) {
    (void)n;
    KpList *xs = kp_lib_list(vm, "parallel_for", a, 0, true);
    KpValue fn;
    if (!xs || !fn_arg(vm, "parallel_for", a, 1, &fn)) return false;
    if (!each(vm, xs, fn)) return false;
    *out = a[0];
    a[0] = kp_unset();
    return true;
}

const KpBuiltin kp_builtins_parallel[] = {
    {"parallel_map", b_parallel_map, "xs: &List#(T), f: &Function", "List", KP_BF_CTX},
    {"parallel_map", b_parallel_map_range, "from: Int, to: Int, f: &Function", "List", KP_BF_CTX},
    {"parallel_for", b_parallel_range, "from: Int, to: Int, f: &Function", "()", 0},
    {"parallel_for", b_parallel_each, "xs: $&List#(T), f: &Function", "()", 0},
    {"parallel_for", b_parallel_each_owned, "xs: List#(T), f: &Function", "List#(T)", 0},
    {NULL, NULL, NULL, NULL, 0},
};
