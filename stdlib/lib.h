/*
 * lib.h — helpers shared by the stdlib modules (internal to stdlib/).
 *
 * Natives receive their arguments already bound to their parameter modes
 * (vm.c's bind_args): `&`/`$&` parameters arrive as references (or as an
 * owned temporary when the caller passed one), by-value parameters as
 * owned values that the VM drops after the call unless the native moves
 * them out (setting the slot to UNSET).  Every result is allocated from
 * the context allocator (vm->ctx) and owned by the caller.
 *
 * The argument getters below check an argument's type and give the
 * uniform message "argument N of 'f' must be T, but it is U"; they return
 * false (NULL) with the error set.
 */
#ifndef KP_STDLIB_LIB_H
#define KP_STDLIB_LIB_H

#include <stdint.h>

#include "builtins.h"

/* A new string of `n` bytes copied from `s`, from the context allocator,
 * stored in *out. */
bool kp_lib_ret_str(KpVM *vm, const char *s, size_t n, KpValue *out);
/* The string argument a[i] of function fn (1-based numbering in messages). */
KpString *kp_lib_str(KpVM *vm, const char *fn, KpValue *a, int i);
/* The Int argument a[i] (sized integers accepted). */
bool kp_lib_int(KpVM *vm, const char *fn, KpValue *a, int i, int64_t *out);
/* A number argument as a double; *is_int tells whether it was an Int. */
bool kp_lib_num(KpVM *vm, const char *fn, KpValue *a, int i, double *d, bool *is_int);
/* kp_lib_list's out-of-line part: deeper references, and the errors. */
KpList *kp_lib_list_slow(KpVM *vm, const char *fn, KpValue *a, int i, bool mut);
/* The list argument a[i] (a list, or a reference to one); `mut`: it is
 * about to change length (an error while a for loop iterates over it).
 * NULL with the error set ("argument N of 'fn' must be a List..."). */
static inline KpList *kp_lib_list(KpVM *vm, const char *fn, KpValue *a, int i, bool mut) {
    /* the common case inline: a list, or a live reference to one, not
     * locked; the rest (deeper references, the errors) out of line */
    const KpValue *v = &a[i];
    if (v->tag == KP_T_REF && kp_ref_ok_in(vm, *v)) v = v->p;
    if (v->tag == KP_T_LIST && !(mut && ((const KpObj *)v->p)->lock)) return v->p;
    return kp_lib_list_slow(vm, fn, a, i, mut);
}
KpMap *kp_lib_map(KpVM *vm, const char *fn, KpValue *a, int i, bool mut);
/* A new empty list value (context allocator). */
KpList *kp_lib_new_list(KpVM *vm, uint32_t cap, KpValue *out);
/* Appends the text of v (as print shows it) to b. */
bool kp_lib_text(KpVM *vm, KpBuf *b, KpValue v);
/* Orders two values of the same comparable kind (Int, Float, String, Bool):
 * sets *lt to a < b.  Other kinds: false with an error naming fn. */
bool kp_lib_less(KpVM *vm, const char *fn, KpValue a, KpValue b, bool *lt);

/* UTF-8: the length of the sequence starting at s[0] of at most n bytes
 * and its code point, or 0 when it is not valid UTF-8. */
int kp_utf8_decode(const unsigned char *s, size_t n, uint32_t *cp);
/* Writes code point cp (valid, not a surrogate) to out; returns 1..4. */
int kp_utf8_encode(uint32_t cp, char *out);
/* Is byte offset i of s a character boundary (0..len inclusive)? */
bool kp_utf8_boundary(const KpString *s, int64_t i);

/* format(...)'s engine (stdlib/format.c): appends the formatted text to b. */
bool kp_format_to(KpVM *vm, KpBuf *b, const char *fn, const char *fmt, size_t flen, KpValue *args, int nargs);
/* The shortest text that reads back as f ("0.1", "1e+100", "inf"). */
void kp_lib_float_text(double f, char *buf, size_t n);

#endif
