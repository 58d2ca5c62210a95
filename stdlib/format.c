/*
 * format.c — format(fmt, args...) with Rust's placeholders, and the text
 * of floats.
 *
 * Design.  The format string is text with placeholders in braces, as in
 * Rust's std::fmt:  {[index][:[[fill]align][sign]['#']['0'][width]['.'precision][type]]}
 *   - index: which argument (0-based); without it, the next one in turn.
 *   - fill: any one character, before an align; align: `<` left, `>`
 *     right, `^` centre.  Default: numbers to the right, the rest left.
 *   - sign `+`: a plus sign on non-negative numbers.  `#`: the 0x / 0b /
 *     0o prefix with x / b / o.  `0`: pad numbers with zeros after the
 *     sign.  width: the minimum width in characters (code points).
 *   - precision: digits after the point for a Float (rounded), the most
 *     characters kept of a String.
 *   - type: `x` `X` hexadecimal, `b` binary, `o` octal (Ints), `e` `E`
 *     exponent form (numbers), `?` the debug form (strings quoted, as
 *     inside containers).
 *   - `{{` and `}}` are literal braces.
 * A float without precision prints the shortest text that reads back as
 * the same Float (Ryu's guarantee, found here by trying 1..17 digits), with
 * `.0` on integral values as print does.  Every other value prints as
 * print shows it.  String interpolation ("x = {x}") is compiled to a call
 * of format (parser/parse.c), so it means exactly the same.
 * Errors: an unclosed or unmatched brace, a bad spec, a missing argument,
 * unused arguments, x/b/o on a non-Int — each with the placeholder's
 * position in the format string.
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib.h"

typedef struct Spec {
    uint32_t fill;      /* code point */
    char align;         /* 0, '<', '>', '^' */
    bool plus, alt, zero;
    int width, prec;    /* -1: none */
    char type;          /* 0, 'x', 'X', 'b', 'o', 'e', 'E', '?' */
} Spec;

static size_t utf8_count(const char *s, size_t n) {
    size_t c = 0;
    for (size_t i = 0; i < n; i++)
        if (((unsigned char)s[i] & 0xC0) != 0x80) c++;
    return c;
}

static bool put_fill(KpVM *vm, KpBuf *b, uint32_t fill, size_t n) {
    char enc[4];
    int k = kp_utf8_encode(fill, enc);
    for (size_t i = 0; i < n; i++)
        if (!kp_buf_add(vm, b, enc, (size_t)k)) return false;
    return true;
}

/* Appends text (chars characters) padded per spec; num: a number (zero
 * padding goes after its sign / prefix of `signlen` bytes). */
static bool pad(KpVM *vm, KpBuf *b, const Spec *sp, const char *text, size_t len, bool num, size_t signlen) {
    size_t chars = utf8_count(text, len);
    size_t w = sp->width > 0 ? (size_t)sp->width : 0;
    if (chars >= w) return kp_buf_add(vm, b, text, len);
    size_t gap = w - chars;
    if (num && sp->zero && !sp->align) {
        return kp_buf_add(vm, b, text, signlen) && put_fill(vm, b, '0', gap) &&
               kp_buf_add(vm, b, text + signlen, len - signlen);
    }
    char align = sp->align ? sp->align : num ? '>' : '<';
    size_t left = align == '>' ? gap : align == '^' ? gap / 2 : 0;
    return put_fill(vm, b, sp->fill, left) && kp_buf_add(vm, b, text, len) && put_fill(vm, b, sp->fill, gap - left);
}

static bool fmt_int(KpVM *vm, KpBuf *b, const Spec *sp, int64_t v) {
    char digits[80], out[100];
    uint64_t u = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
    int base = sp->type == 'x' || sp->type == 'X' ? 16 : sp->type == 'b' ? 2 : sp->type == 'o' ? 8 : 10;
    const char *dig = sp->type == 'X' ? "0123456789ABCDEF" : "0123456789abcdef";
    int n = 0;
    do { digits[n++] = dig[u % (uint64_t)base]; u /= (uint64_t)base; } while (u);
    size_t k = 0;
    if (v < 0) out[k++] = '-';
    else if (sp->plus) out[k++] = '+';
    if (sp->alt && base != 10) {
        out[k++] = '0';
        out[k++] = base == 16 ? 'x' : base == 2 ? 'b' : 'o';
    }
    size_t signlen = k;
    while (n) out[k++] = digits[--n];
    return pad(vm, b, sp, out, k, true, signlen);
}

static bool fmt_float(KpVM *vm, KpBuf *b, const Spec *sp, double f) {
    char out[400];
    int n;
    if (isnan(f) || isinf(f)) {
        n = snprintf(out, sizeof out, "%s%s", isnan(f) ? "" : f < 0 ? "-" : sp->plus ? "+" : "", isnan(f) ? "nan" : "inf");
        Spec s2 = *sp;
        s2.zero = false;
        return pad(vm, b, &s2, out, (size_t)n, true, 0);
    }
    const char *plus = sp->plus && !signbit(f) ? "+" : "";
    if (sp->type == 'e' || sp->type == 'E') {
        if (sp->prec >= 0) n = snprintf(out, sizeof out, sp->type == 'e' ? "%s%.*e" : "%s%.*E", plus, sp->prec, f);
        else {
            int p = 0;
            for (; p < 17; p++) {
                snprintf(out, sizeof out, "%.*e", p, f);
                if (strtod(out, NULL) == f) break;
            }
            n = snprintf(out, sizeof out, sp->type == 'e' ? "%s%.*e" : "%s%.*E", plus, p, f);
        }
    } else if (sp->prec >= 0) {
        n = snprintf(out, sizeof out, "%s%.*f", plus, sp->prec > 300 ? 300 : sp->prec, f);
    } else {
        char t[64];
        kp_lib_float_text(f, t, sizeof t);
        n = snprintf(out, sizeof out, "%s%s", plus, t);
    }
    if (n < 0) n = 0;
    if ((size_t)n >= sizeof out) n = (int)sizeof out - 1;
    size_t signlen = (out[0] == '-' || out[0] == '+') ? 1 : 0;
    return pad(vm, b, sp, out, (size_t)n, true, signlen);
}

static bool fmt_value(KpVM *vm, KpBuf *b, const Spec *sp, KpValue v, const char *fn, size_t at) {
    v = kp_deref(v);
    bool is_int = v.tag == KP_T_INT || KP_IS_SIZED_INT(v.tag);
    if (sp->type == 'x' || sp->type == 'X' || sp->type == 'b' || sp->type == 'o') {
        if (!is_int)
            return kp_vm_error(vm, "%s: {:%c} at byte %zu needs an Int, but the value is %s", fn, sp->type, at,
                               kp_a(kp_value_type_name(vm, v)));
        if (v.tag == KP_T_U64 && v.i < 0) { /* full 64-bit unsigned */
            Spec s2 = *sp;
            char out[80];
            uint64_t u = (uint64_t)v.i;
            int base = sp->type == 'x' || sp->type == 'X' ? 16 : sp->type == 'b' ? 2 : 8, n = 0;
            char d[70];
            const char *dig = sp->type == 'X' ? "0123456789ABCDEF" : "0123456789abcdef";
            do { d[n++] = dig[u % (uint64_t)base]; u /= (uint64_t)base; } while (u);
            size_t k = 0;
            if (sp->alt) { out[k++] = '0'; out[k++] = base == 16 ? 'x' : base == 2 ? 'b' : 'o'; }
            size_t sl = k;
            while (n) out[k++] = d[--n];
            return pad(vm, b, &s2, out, k, true, sl);
        }
        return fmt_int(vm, b, sp, v.i);
    }
    if (sp->type == 'e' || sp->type == 'E') {
        if (!is_int && v.tag != KP_T_FLOAT)
            return kp_vm_error(vm, "%s: {:%c} at byte %zu needs a number, but the value is %s", fn, sp->type, at,
                               kp_a(kp_value_type_name(vm, v)));
        return fmt_float(vm, b, sp, is_int ? (double)v.i : v.f);
    }
    if (is_int && sp->type != '?') {
        if (v.tag == KP_T_U64 && v.i < 0) {
            char out[32];
            int n = snprintf(out, sizeof out, "%s%" PRIu64, sp->plus ? "+" : "", (uint64_t)v.i);
            return pad(vm, b, sp, out, (size_t)n, true, sp->plus ? 1 : 0);
        }
        if (sp->prec >= 0) return fmt_float(vm, b, sp, (double)v.i);
        return fmt_int(vm, b, sp, v.i);
    }
    if (v.tag == KP_T_FLOAT) return fmt_float(vm, b, sp, v.f);
    if (v.tag == KP_T_MOVED || v.tag == KP_T_UNSET) {
        KpBuf tmp = {0};
        bool ok = kp_lib_text(vm, &tmp, v);
        kp_buf_free(vm, &tmp);
        return ok;
    }
    /* strings and everything else: their text */
    const char *text;
    size_t len;
    if (v.tag == KP_T_STR && sp->type != '?') {
        text = ((KpString *)v.p)->data;
        len = ((KpString *)v.p)->len;
    } else {
        kp_buf_reset(&vm->scratch);
        if (!kp_tostring(vm, v, sp->type == '?')) return false;
        text = vm->scratch.data ? vm->scratch.data : "";
        len = vm->scratch.len;
    }
    if (sp->prec >= 0) { /* at most prec characters */
        size_t c = 0, i = 0;
        while (i < len && c < (size_t)sp->prec) {
            i++;
            while (i < len && ((unsigned char)text[i] & 0xC0) == 0x80) i++;
            c++;
        }
        len = i;
    }
    if (text == vm->scratch.data) { /* pad writes to b, which is not scratch */
        KpBuf tmp = {0};
        bool ok = kp_buf_add(vm, &tmp, text, len) && pad(vm, b, sp, tmp.data ? tmp.data : "", len, false, 0);
        kp_buf_free(vm, &tmp);
        return ok;
    }
    return pad(vm, b, sp, text, len, false, 0);
}

static bool parse_num(const char **p, const char *e, int *out) {
    if (*p >= e || **p < '0' || **p > '9') return false;
    long v = 0;
    while (*p < e && **p >= '0' && **p <= '9') {
        v = v * 10 + (**p - '0');
        if (v > 100000) v = 100000;
        (*p)++;
    }
    *out = (int)v;
    return true;
}

/* Parses the spec between ':' and '}' (p .. e). */
static bool parse_spec(const char *p, const char *e, Spec *sp) {
    memset(sp, 0, sizeof *sp);
    sp->fill = ' ';
    sp->width = sp->prec = -1;
    if (p < e) {
        uint32_t cp;
        int k = kp_utf8_decode((const unsigned char *)p, (size_t)(e - p), &cp);
        if (k > 0 && p + k < e && (p[k] == '<' || p[k] == '>' || p[k] == '^')) {
            sp->fill = cp;
            sp->align = p[k];
            p += k + 1;
        } else if (*p == '<' || *p == '>' || *p == '^') {
            sp->align = *p++;
        }
    }
    if (p < e && *p == '+') { sp->plus = true; p++; }
    if (p < e && *p == '#') { sp->alt = true; p++; }
    if (p < e && *p == '0') { sp->zero = true; p++; }
    if (p < e && *p >= '0' && *p <= '9') parse_num(&p, e, &sp->width);
    if (p < e && *p == '.') {
        p++;
        if (!parse_num(&p, e, &sp->prec)) return false;
    }
    if (p < e && strchr("xXboeE?", *p)) sp->type = *p++;
    return p == e;
}

bool kp_format_to(KpVM *vm, KpBuf *b, const char *fn, const char *fmt, size_t flen, KpValue *args, int nargs) {
    const char *p = fmt, *e = fmt + flen;
    int next = 0;
    uint64_t used = 0;
    while (p < e) {
        const char *q = p;
        while (q < e && *q != '{' && *q != '}') q++;
        if (q > p && !kp_buf_add(vm, b, p, (size_t)(q - p))) return false;
        if (q >= e) break;
        size_t at = (size_t)(q - fmt);
        if (q + 1 < e && q[1] == *q) { /* {{ or }} */
            if (!kp_buf_add(vm, b, q, 1)) return false;
            p = q + 2;
            continue;
        }
        if (*q == '}') return kp_vm_error(vm, "%s: unmatched '}' at byte %zu of the format (write }} for a brace)", fn, at);
        const char *close = memchr(q, '}', (size_t)(e - q));
        if (!close) return kp_vm_error(vm, "%s: unclosed '{' at byte %zu of the format (write {{ for a brace)", fn, at);
        const char *r = q + 1;
        int idx;
        if (r < close && *r >= '0' && *r <= '9') parse_num(&r, close, &idx);
        else idx = next++;
        Spec sp;
        if (r < close && *r != ':')
            return kp_vm_error(vm, "%s: bad placeholder '%.*s' at byte %zu of the format", fn, (int)(close - q + 1), q, at);
        if (!parse_spec(r < close ? r + 1 : r, close, &sp))
            return kp_vm_error(vm, "%s: bad format spec '%.*s' at byte %zu", fn, (int)(close - q + 1), q, at);
        if (idx >= nargs)
            return kp_vm_error(vm, "%s: placeholder %d at byte %zu has no argument (%d given)", fn, idx, at, nargs);
        if (idx < 64) used |= (uint64_t)1 << idx;
        if (!fmt_value(vm, b, &sp, args[idx], fn, at)) return false;
        p = close + 1;
    }
    for (int i = 0; i < nargs && i < 64; i++)
        if (!(used & ((uint64_t)1 << i)))
            return kp_vm_error(vm, "%s: argument %d is not used by the format", fn, i + 1);
    return true;
}

/* format(fmt, args...) -> String */
static bool b_format(KpVM *vm, KpValue *a, int n, KpValue *out) {
    KpString *f = kp_lib_str(vm, "format", a, 0);
    if (!f) return false;
    KpBuf b = {0};
    bool ok = kp_format_to(vm, &b, "format", f->data, f->len, a + 1, n - 1) && kp_lib_ret_str(vm, b.data, b.len, out);
    kp_buf_free(vm, &b);
    return ok;
}

const KpBuiltin kp_builtins_format[] = {
    {"format", b_format, "fmt: &String, args: &Any", "String", KP_BF_VARIADIC | KP_BF_CTX},
    {NULL, NULL, NULL, NULL, 0},
};
