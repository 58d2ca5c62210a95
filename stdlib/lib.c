/*
 * lib.c — the helpers every stdlib module uses (see lib.h): argument
 * getters with uniform messages, result strings and lists from the context
 * allocator, value text, ordering, and UTF-8 coding.
 */
#include <math.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "lib.h"

bool kp_lib_ret_str(KpVM *vm, const char *s, size_t n, KpValue *out) {
    KpString *str = kp_str_new(vm, vm->ctx, s ? s : "", n);
    if (!str) return false;
    *out = kp_ptr(KP_T_STR, str);
    return true;
}

static bool bad_arg(KpVM *vm, const char *fn, int i, const char *want, KpValue v) {
    return kp_vm_error(vm, "argument %d of '%s' must be %s, but it is %s", i + 1, fn, want, kp_value_type_name(vm, v));
}

KpString *kp_lib_str(KpVM *vm, const char *fn, KpValue *a, int i) {
    KpValue v = kp_deref_in(vm, a[i]);
    if (v.tag == KP_T_STR) return v.p;
    bad_arg(vm, fn, i, "String", v);
    return NULL;
}

bool kp_lib_int(KpVM *vm, const char *fn, KpValue *a, int i, int64_t *out) {
    KpValue v = kp_deref_in(vm, a[i]);
    if (v.tag == KP_T_INT || KP_IS_SIZED_INT(v.tag)) {
        *out = v.i;
        return true;
    }
    return bad_arg(vm, fn, i, "Int", v);
}

bool kp_lib_num(KpVM *vm, const char *fn, KpValue *a, int i, double *d, bool *is_int) {
    KpValue v = kp_deref_in(vm, a[i]);
    if (v.tag == KP_T_INT || KP_IS_SIZED_INT(v.tag)) { *d = (double)v.i; *is_int = true; return true; }
    if (v.tag == KP_T_FLOAT) { *d = v.f; *is_int = false; return true; }
    return bad_arg(vm, fn, i, "a number (Int or Float)", v);
}

KpList *kp_lib_list_slow(KpVM *vm, const char *fn, KpValue *a, int i, bool mut) {
    KpValue l = kp_deref_in(vm, a[i]);
    if (l.tag != KP_T_LIST) {
        bad_arg(vm, fn, i, "a List", l);
        return NULL;
    }
    if (mut && ((KpObj *)l.p)->lock) {
        kp_vm_error(vm, "cannot change a list with %s while a for loop is iterating over it", fn);
        return NULL;
    }
    return l.p;
}

KpMap *kp_lib_map(KpVM *vm, const char *fn, KpValue *a, int i, bool mut) {
    KpValue m = kp_deref_in(vm, a[i]);
    if (m.tag != KP_T_MAP) {
        bad_arg(vm, fn, i, "a HashMap", m);
        return NULL;
    }
    if (mut && ((KpObj *)m.p)->lock) {
        kp_vm_error(vm, "cannot change a map with %s while a for loop is iterating over it", fn);
        return NULL;
    }
    return m.p;
}

KpList *kp_lib_new_list(KpVM *vm, uint32_t cap, KpValue *out) {
    KpList *l = kp_list_new(vm, cap);
    if (l) *out = kp_ptr(KP_T_LIST, l);
    return l;
}

bool kp_lib_text(KpVM *vm, KpBuf *b, KpValue v) {
    v = kp_deref(v);
    if (v.tag == KP_T_STR) return kp_buf_add(vm, b, ((KpString *)v.p)->data, ((KpString *)v.p)->len);
    if (v.tag == KP_T_INT) {
        char buf[24];
        int n = snprintf(buf, sizeof buf, "%lld", (long long)v.i);
        return kp_buf_add(vm, b, buf, (size_t)n);
    }
    if (v.tag == KP_T_MOVED || v.tag == KP_T_UNSET) {
        if (v.tag == KP_T_MOVED && (v.flags & KP_VF_DEAD)) return kp_vm_error(vm, "use of a dead reference");
        if (v.tag == KP_T_MOVED)
            return kp_vm_error(vm, "use of a moved value (moved at line %u:%u)", KP_POS_LINE(v.aux), KP_POS_COL(v.aux));
        return kp_vm_error(vm, "use of a value that was never set");
    }
    kp_buf_reset(&vm->scratch);
    if (!kp_tostring(vm, v, false)) return false;
    return kp_buf_add(vm, b, vm->scratch.data ? vm->scratch.data : "", vm->scratch.len);
}

bool kp_lib_less(KpVM *vm, const char *fn, KpValue a, KpValue b, bool *lt) {
    a = kp_deref(a);
    b = kp_deref(b);
    bool ai = a.tag == KP_T_INT || KP_IS_SIZED_INT(a.tag), bi = b.tag == KP_T_INT || KP_IS_SIZED_INT(b.tag);
    if (ai && bi) { *lt = a.i < b.i; return true; }
    if ((ai || a.tag == KP_T_FLOAT) && (bi || b.tag == KP_T_FLOAT)) {
        double x = ai ? (double)a.i : a.f, y = bi ? (double)b.i : b.f;
        *lt = x < y;
        return true;
    }
    if (a.tag == KP_T_STR && b.tag == KP_T_STR) {
        KpString *s = a.p, *t = b.p;
        uint32_t n = s->len < t->len ? s->len : t->len;
        int c = memcmp(s->data, t->data, n);
        *lt = c < 0 || (c == 0 && s->len < t->len);
        return true;
    }
    if (a.tag == KP_T_BOOL && b.tag == KP_T_BOOL) { *lt = a.i < b.i; return true; }
    return kp_vm_error(vm, "%s cannot order %s and %s (it orders Int, Float, String and Bool, or give it a less function)",
                       fn, kp_value_type_name(vm, a), kp_value_type_name(vm, b));
}

int kp_utf8_decode(const unsigned char *s, size_t n, uint32_t *cp) {
    if (!n) return 0;
    unsigned c = s[0];
    if (c < 0x80) { *cp = c; return 1; }
    int len;
    uint32_t v, min;
    if ((c & 0xE0) == 0xC0) { len = 2; v = c & 0x1F; min = 0x80; }
    else if ((c & 0xF0) == 0xE0) { len = 3; v = c & 0x0F; min = 0x800; }
    else if ((c & 0xF8) == 0xF0) { len = 4; v = c & 0x07; min = 0x10000; }
    else return 0;
    if ((size_t)len > n) return 0;
    for (int i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80) return 0;
        v = (v << 6) | (s[i] & 0x3F);
    }
    if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) return 0;
    *cp = v;
    return len;
}

int kp_utf8_encode(uint32_t cp, char *out) {
    if (cp < 0x80) { out[0] = (char)cp; return 1; }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

bool kp_utf8_boundary(const KpString *s, int64_t i) {
    if (i < 0 || i > (int64_t)s->len) return false;
    return i == (int64_t)s->len || ((unsigned char)s->data[i] & 0xC0) != 0x80;
}

void kp_lib_float_text(double f, char *buf, size_t n) { kp_format_float(f, buf, n); }
