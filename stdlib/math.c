/*
 * math.c — numbers: abs min max clamp sqrt cbrt hypot pow exp log log2
 * log10 sin cos tan asin acos atan atan2 sinh cosh tanh floor ceil round
 * trunc is_nan is_inf, and the constants pi e inf nan.
 *
 * Design.  Functions take Int or Float and follow C's <math.h> (IEEE:
 * sqrt(-1) is nan, log(0) is -inf), except where an Int result is exact:
 * abs, min, max and clamp of Ints are Ints; floor, ceil, round and trunc
 * of an Int return it unchanged, of a Float return a Float (as in Rust;
 * int(x) converts); pow of two Ints is an Int, its overflow and negative
 * exponents errors (Rust's checked_pow).  round rounds half away from
 * zero.  The constants are values of the language (see kp_builtin_consts).
 */
#include <inttypes.h>
#include <math.h>
#include <string.h>

#include "lib.h"

const KpBuiltinConst kp_builtin_consts[] = {
    {"pi", 3.14159265358979323846},
    {"e", 2.71828182845904523536},
    {"inf", HUGE_VAL},
    {"nan", NAN},
    {NULL, 0},
};

bool kp_builtin_const(const char *name, KpValue *out) {
    for (int i = 0; kp_builtin_consts[i].name; i++)
        if (!strcmp(kp_builtin_consts[i].name, name)) {
            *out = kp_float(kp_builtin_consts[i].value);
            return true;
        }
    return false;
}

static bool b_abs(KpVM *vm, KpValue *a, int n, KpValue *out) {
    (void)n;
    KpValue v = kp_deref(a[0]);
    if (v.tag == KP_T_INT) {
        if (v.i == INT64_MIN) return kp_vm_error(vm, "integer overflow in abs");
        *out = kp_int(v.i < 0 ? -v.i : v.i);
        return true;
    }
    double d;
    bool ii;
    if (!kp_lib_num(vm, "abs", a, 0, &d, &ii)) return false;
    *out = ii ? v : kp_float(fabs(d));
    return true;
}

static bool minmax(KpVM *vm, KpValue *a, int n, KpValue *out, bool want_min) {
    const char *fn = want_min ? "min" : "max";
    if (n < 1) return kp_vm_error(vm, "%s needs at least one value", fn);
    KpValue best = kp_deref(a[0]);
    double bd;
    bool bi;
    if (!kp_lib_num(vm, fn, a, 0, &bd, &bi)) return false;
    for (int i = 1; i < n; i++) {
        KpValue v = kp_deref(a[i]);
        double d;
        bool ii;
        if (!kp_lib_num(vm, fn, a, i, &d, &ii)) return false;
        bool better = (bi && ii) ? (want_min ? v.i < best.i : v.i > best.i) : (want_min ? d < bd : d > bd);
        if (better) { best = v; bd = d; bi = ii; }
    }
    *out = best;
    return true;
}
static bool b_min(KpVM *vm, KpValue *a, int n, KpValue *out) { return minmax(vm, a, n, out, true); }
static bool b_max(KpVM *vm, KpValue *a, int n, KpValue *out) { return minmax(vm, a, n, out, false); }

/* clamp(x, lo, hi): lo if x < lo, hi if x > hi, else x. */
static bool b_clamp(KpVM *vm, KpValue *a, int n, KpValue *out) {
    (void)n;
    double x, lo, hi;
    bool xi, li, hi_i;
    if (!kp_lib_num(vm, "clamp", a, 0, &x, &xi) || !kp_lib_num(vm, "clamp", a, 1, &lo, &li) ||
        !kp_lib_num(vm, "clamp", a, 2, &hi, &hi_i))
        return false;
    KpValue vx = kp_deref(a[0]), vl = kp_deref(a[1]), vh = kp_deref(a[2]);
    if (xi && li && hi_i) {
        if (vl.i > vh.i) return kp_vm_error(vm, "clamp: the lower bound %" PRId64 " is above the upper bound %" PRId64, vl.i, vh.i);
        *out = kp_int(vx.i < vl.i ? vl.i : vx.i > vh.i ? vh.i : vx.i);
        return true;
    }
    if (!(lo <= hi)) return kp_vm_error(vm, "clamp: the lower bound %g is above the upper bound %g", lo, hi);
    *out = kp_float(x < lo ? lo : x > hi ? hi : x);
    return true;
}

typedef double (*Fn1)(double);
static bool math1(KpVM *vm, KpValue *a, KpValue *out, const char *name, Fn1 f) {
    double d;
    bool ii;
    if (!kp_lib_num(vm, name, a, 0, &d, &ii)) return false;
    *out = kp_float(f(d));
    return true;
}
#define MATH1(NAME)                                                                   \
    static bool b_##NAME(KpVM *vm, KpValue *a, int n, KpValue *out) {                 \
        (void)n;                                                                      \
        return math1(vm, a, out, #NAME, NAME);                                        \
    }
MATH1(sqrt) MATH1(cbrt) MATH1(exp) MATH1(log) MATH1(log2) MATH1(log10)
MATH1(sin) MATH1(cos) MATH1(tan) MATH1(asin) MATH1(acos) MATH1(atan)
MATH1(sinh) MATH1(cosh) MATH1(tanh)

static bool math2(KpVM *vm, KpValue *a, KpValue *out, const char *name, double (*f)(double, double)) {
    double x, y;
    bool xi, yi;
    if (!kp_lib_num(vm, name, a, 0, &x, &xi) || !kp_lib_num(vm, name, a, 1, &y, &yi)) return false;
    *out = kp_float(f(x, y));
    return true;
}
static bool b_atan2(KpVM *vm, KpValue *a, int n, KpValue *out) { (void)n; return math2(vm, a, out, "atan2", atan2); }
static bool b_hypot(KpVM *vm, KpValue *a, int n, KpValue *out) { (void)n; return math2(vm, a, out, "hypot", hypot); }

/* pow(x, y): Int ** Int is an Int (checked), otherwise a Float. */
static bool b_pow(KpVM *vm, KpValue *a, int n, KpValue *out) {
    (void)n;
    double x, y;
    bool xi, yi;
    if (!kp_lib_num(vm, "pow", a, 0, &x, &xi) || !kp_lib_num(vm, "pow", a, 1, &y, &yi)) return false;
    if (!(xi && yi)) {
        *out = kp_float(pow(x, y));
        return true;
    }
    int64_t b = kp_deref(a[0]).i, e = kp_deref(a[1]).i, r = 1;
    if (e < 0) return kp_vm_error(vm, "pow(%" PRId64 ", %" PRId64 "): a negative exponent of an Int (use a Float: pow(float(x), y))", b, e);
    int64_t base = b, ex = e;
    while (ex) {
        if ((ex & 1) && __builtin_mul_overflow(r, base, &r)) goto overflow;
        ex >>= 1;
        if (ex && __builtin_mul_overflow(base, base, &base)) goto overflow;
    }
    *out = kp_int(r);
    return true;
overflow:
    return kp_vm_error(vm, "integer overflow in pow(%" PRId64 ", %" PRId64 ")", b, e);
}

static bool rounding(KpVM *vm, KpValue *a, KpValue *out, const char *name, Fn1 f) {
    double d;
    bool ii;
    if (!kp_lib_num(vm, name, a, 0, &d, &ii)) return false;
    *out = ii ? kp_int(kp_deref(a[0]).i) : kp_float(f(d));
    return true;
}
static bool b_floor(KpVM *vm, KpValue *a, int n, KpValue *out) { (void)n; return rounding(vm, a, out, "floor", floor); }
static bool b_ceil(KpVM *vm, KpValue *a, int n, KpValue *out) { (void)n; return rounding(vm, a, out, "ceil", ceil); }
static bool b_round(KpVM *vm, KpValue *a, int n, KpValue *out) { (void)n; return rounding(vm, a, out, "round", round); }
static bool b_trunc(KpVM *vm, KpValue *a, int n, KpValue *out) { (void)n; return rounding(vm, a, out, "trunc", trunc); }

static bool b_is_nan(KpVM *vm, KpValue *a, int n, KpValue *out) {
    (void)n;
    double d;
    bool ii;
    if (!kp_lib_num(vm, "is_nan", a, 0, &d, &ii)) return false;
    *out = kp_bool(isnan(d));
    return true;
}

static bool b_is_inf(KpVM *vm, KpValue *a, int n, KpValue *out) {
    (void)n;
    double d;
    bool ii;
    if (!kp_lib_num(vm, "is_inf", a, 0, &d, &ii)) return false;
    *out = kp_bool(isinf(d));
    return true;
}

#define F1(NAME) {#NAME, b_##NAME, "x: Int|Float", "Float", 0}
const KpBuiltin kp_builtins_math[] = {
    {"abs", b_abs, "x: Int|Float", "Int|Float", 0},
    {"min", b_min, "values: &Int|Float", "Int|Float", KP_BF_VARIADIC},
    {"max", b_max, "values: &Int|Float", "Int|Float", KP_BF_VARIADIC},
    {"clamp", b_clamp, "x: Int|Float, lo: Int|Float, hi: Int|Float", "Int|Float", 0},
    F1(sqrt), F1(cbrt), F1(exp), F1(log), F1(log2), F1(log10),
    F1(sin), F1(cos), F1(tan), F1(asin), F1(acos), F1(atan),
    F1(sinh), F1(cosh), F1(tanh),
    {"atan2", b_atan2, "y: Int|Float, x: Int|Float", "Float", 0},
    {"hypot", b_hypot, "x: Int|Float, y: Int|Float", "Float", 0},
    {"pow", b_pow, "x: Int|Float, y: Int|Float", "Int|Float", 0},
    {"floor", b_floor, "x: Int|Float", "Int|Float", 0},
    {"ceil", b_ceil, "x: Int|Float", "Int|Float", 0},
    {"round", b_round, "x: Int|Float", "Int|Float", 0},
    {"trunc", b_trunc, "x: Int|Float", "Int|Float", 0},
    {"is_nan", b_is_nan, "x: Int|Float", "Bool", 0},
    {"is_inf", b_is_inf, "x: Int|Float", "Bool", 0},
    {NULL, NULL, NULL, NULL, 0},
};
