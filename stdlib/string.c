/*
 * string.c — the string functions: find rfind replace upper lower trim
 * trim_start trim_end starts_with ends_with repeat split lines join substr
 * chars bytes ord chr parse_int parse_float.
 *
 * Design.  Strings are immutable UTF-8 bytes; offsets are byte offsets, as
 * in Rust: `find` returns one, `substr` takes two, and an offset that is
 * out of range or falls inside a character is an error (never a silently
 * clamped or broken string).  `chars`, `for c in s` and `ord`/`chr` work
 * on code points.  Case mapping covers ASCII, Latin-1, Greek and Cyrillic
 * (the one-to-one mappings; other characters are unchanged).  Whitespace
 * for `trim` is ASCII whitespace (space, \t \n \v \f \r).  Every result is
 * a new string from the context allocator; the arguments are borrowed.
 */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib.h"

static bool ret_str(KpVM *vm, const char *s, size_t n, KpValue *out) { return kp_lib_ret_str(vm, s, n, out); }

/* A string result of n bytes to fill in place (hash set by str_finish). */
static KpString *str_alloc(KpVM *vm, size_t n) {
    if (n > UINT32_MAX - 64) {
        kp_vm_error(vm, "string too long (%zu bytes)", n);
        return NULL;
    }
    KpString *s = kp_obj_new(vm, vm->ctx, KP_T_STR, sizeof(KpString) + n + 1);
    if (!s) return NULL;
    s->rc = 1;
    s->len = (uint32_t)n;
    s->data[n] = 0;
    return s;
}
static void str_finish(KpString *s, KpValue *out) {
    s->hash = kp_hash_bytes(s->data, s->len);
    *out = kp_ptr(KP_T_STR, s);
}

static const char *find_bytes(const char *h, size_t hn, const char *n, size_t nn) {
    if (!nn) return h;
    if (nn == 1) return memchr(h, n[0], hn);
    return memmem(h, hn, n, nn);
}

/* find(s, pat) -> Int: the byte offset of the first occurrence, or -1. */
static bool b_find(KpVM *vm, KpValue *a, int n, KpValue *out) {
    (void)n;
    KpString *s = kp_lib_str(vm, "find", a, 0), *p = s ? kp_lib_str(vm, "find", a, 1) : NULL;
    if (!p) return false;
    const char *q = find_bytes(s->data, s->len, p->data, p->len);
    *out = kp_int(q ? q - s->data : -1);
    return true;
}

/* has(s, sub) / contains(s, sub) -> Bool: sub occurs in s. */
static bool b_has(KpVM *vm, KpValue *a, int n, KpValue *out) {
    (void)n;
    KpString *s = kp_lib_str(vm, "has", a, 0), *p = s ? kp_lib_str(vm, "has", a, 1) : NULL;
    if (!p) return false;
    *out = kp_bool(find_bytes(s->data, s->len, p->data, p->len) != NULL);
    return true;
}

/* rfind(s, pat) -> Int: the byte offset of the last occurrence, or -1. */
static bool b_rfind(KpVM *vm, KpValue *a, int n, KpValue *out) {
    (void)n;
    KpString *s = kp_lib_str(vm, "rfind", a, 0), *p = s ? kp_lib_str(vm, "rfind", a, 1) : NULL;
    if (!p) return false;
    int64_t r = -1;
    if (p->len <= s->len)
        for (int64_t i = (int64_t)s->len - p->len; i >= 0; i--)
            if (!memcmp(s->data + i, p->data, p->len)) { r = i; break; }
    *out = kp_int(r);
    return true;
}

/* replace(s, from, to) -> String: every occurrence of from replaced. */
static bool b_replace(KpVM *vm, KpValue *a, int n, KpValue *out) {
    (void)n;
    KpString *s = kp_lib_str(vm, "replace", a, 0), *f = s ? kp_lib_str(vm, "replace", a, 1) : NULL,
             *t = f ? kp_lib_str(vm, "replace", a, 2) : NULL;
    if (!t) return false;
    if (!f->len) return kp_vm_error(vm, "replace with an empty pattern: there is nothing to replace");
    KpBuf b = {0};
    const char *p = s->data, *end = s->data + s->len;
    bool ok = true;
    for (;;) {
        const char *q = find_bytes(p, (size_t)(end - p), f->data, f->len);
        if (!q) break;
        ok = ok && kp_buf_add(vm, &b, p, (size_t)(q - p)) && kp_buf_add(vm, &b, t->data, t->len);
        p = q + f->len;
    }
    ok = ok && kp_buf_add(vm, &b, p, (size_t)(end - p)) && ret_str(vm, b.data, b.len, out);
    kp_buf_free(vm, &b);
    return ok;
}

static uint32_t case_map(uint32_t c, bool up) {
    if (up) {
        if (c >= 'a' && c <= 'z') return c - 32;
        if (c < 0x80) return c;
        if ((c >= 0xE0 && c <= 0xFE && c != 0xF7)) return c - 32;
        if (c >= 0x3B1 && c <= 0x3C9 && c != 0x3C2) return c - 32;
        if (c >= 0x430 && c <= 0x44F) return c - 32;
        if (c >= 0x450 && c <= 0x45F) return c - 80;
    } else {
        if (c >= 'A' && c <= 'Z') return c + 32;
        if (c < 0x80) return c;
        if ((c >= 0xC0 && c <= 0xDE && c != 0xD7)) return c + 32;
        if (c >= 0x391 && c <= 0x3A9 && c != 0x3A2) return c + 32;
        if (c >= 0x410 && c <= 0x42F) return c + 32;
        if (c >= 0x400 && c <= 0x40F) return c + 80;
    }
    return c;
}

static bool change_case(KpVM *vm, KpValue *a, KpValue *out, bool up, const char *fn) {
    KpString *s = kp_lib_str(vm, fn, a, 0);
    if (!s) return false;
    /* every mapping keeps the encoded length */
    KpString *r = str_alloc(vm, s->len);
    if (!r) return false;
    const unsigned char *p = (const unsigned char *)s->data;
    size_t i = 0;
    while (i < s->len) {
        unsigned char c = p[i];
        if (c < 0x80) {
            r->data[i] = (char)(up ? (c >= 'a' && c <= 'z' ? c - 32 : c) : (c >= 'A' && c <= 'Z' ? c + 32 : c));
            i++;
            continue;
        }
        uint32_t cp;
        int k = kp_utf8_decode(p + i, s->len - i, &cp);
        if (!k) { r->data[i] = (char)c; i++; continue; }
        uint32_t m = case_map(cp, up);
        char enc[4];
        if (kp_utf8_encode(m, enc) == k) memcpy(r->data + i, enc, (size_t)k);
        else memcpy(r->data + i, p + i, (size_t)k);
        i += (size_t)k;
    }
    str_finish(r, out);
    return true;
}
static bool b_upper(KpVM *vm, KpValue *a, int n, KpValue *out) { (void)n; return change_case(vm, a, out, true, "upper"); }
static bool b_lower(KpVM *vm, KpValue *a, int n, KpValue *out) { (void)n; return change_case(vm, a, out, false, "lower"); }

static bool is_space(char c) { return c == ' ' || (c >= '\t' && c <= '\r'); }

static bool trim(KpVM *vm, KpValue *a, KpValue *out, bool start, bool end, const char *fn) {
    KpString *s = kp_lib_str(vm, fn, a, 0);
    if (!s) return false;
    size_t i = 0, j = s->len;
    if (start) while (i < j && is_space(s->data[i])) i++;
    if (end) while (j > i && is_space(s->data[j - 1])) j--;
    if (i == 0 && j == s->len) {
        kp_str_incref(s);
        *out = kp_ptr(KP_T_STR, s);
        return true;
    }
    return ret_str(vm, s->data + i, j - i, out);
}
static bool b_trim(KpVM *vm, KpValue *a, int n, KpValue *out) { (void)n; return trim(vm, a, out, true, true, "trim"); }
static bool b_trim_start(KpVM *vm, KpValue *a, int n, KpValue *out) { (void)n; return trim(vm, a, out, true, false, "trim_start"); }
static bool b_trim_end(KpVM *vm, KpValue *a, int n, KpValue *out) { (void)n; return trim(vm, a, out, false, true, "trim_end"); }

static bool b_starts_with(KpVM *vm, KpValue *a, int n, KpValue *out) {
    (void)n;
    KpString *s = kp_lib_str(vm, "starts_with", a, 0), *p = s ? kp_lib_str(vm, "starts_with", a, 1) : NULL;
    if (!p) return false;
    *out = kp_bool(p->len <= s->len && !memcmp(s->data, p->data, p->len));
    return true;
}

static bool b_ends_with(KpVM *vm, KpValue *a, int n, KpValue *out) {
    (void)n;
    KpString *s = kp_lib_str(vm, "ends_with", a, 0), *p = s ? kp_lib_str(vm, "ends_with", a, 1) : NULL;
    if (!p) return false;
    *out = kp_bool(p->len <= s->len && !memcmp(s->data + s->len - p->len, p->data, p->len));
    return true;
}

/* repeat(s, n) -> String: n copies of s. */
static bool b_repeat(KpVM *vm, KpValue *a, int n, KpValue *out) {
    (void)n;
    KpString *s = kp_lib_str(vm, "repeat", a, 0);
    int64_t k;
    if (!s || !kp_lib_int(vm, "repeat", a, 1, &k)) return false;
    if (k < 0) return kp_vm_error(vm, "repeat(s, %" PRId64 "): the count must not be negative", k);
    if (s->len && (uint64_t)k > (uint64_t)(UINT32_MAX - 64) / s->len)
        return kp_vm_error(vm, "repeat: %" PRId64 " copies of %u bytes is too long a string", k, s->len);
    KpString *r = str_alloc(vm, (size_t)k * s->len);
    if (!r) return false;
    for (int64_t i = 0; i < k; i++) memcpy(r->data + (size_t)i * s->len, s->data, s->len);
    str_finish(r, out);
    return true;
}

static bool push_piece(KpVM *vm, KpList *l, const char *p, size_t n) {
    KpValue piece;
    return ret_str(vm, p, n, &piece) && kp_list_push(vm, l, piece);
}

/* split(s, sep) -> List#(String): the pieces between separators (n
 * separators give n + 1 pieces, empty ones included, as in Rust). */
static bool b_split(KpVM *vm, KpValue *a, int n, KpValue *out) {
    (void)n;
    KpString *s = kp_lib_str(vm, "split", a, 0), *sp = s ? kp_lib_str(vm, "split", a, 1) : NULL;
    if (!sp) return false;
    if (!sp->len) return kp_vm_error(vm, "split with an empty separator");
    KpValue lv;
    KpList *l = kp_lib_new_list(vm, 0, &lv);
    if (!l) return false;
    const char *p = s->data, *end = s->data + s->len;
    for (;;) {
        const char *q = find_bytes(p, (size_t)(end - p), sp->data, sp->len);
        const char *e = q ? q : end;
        if (!push_piece(vm, l, p, (size_t)(e - p))) { kp_drop(vm, lv); return false; }
        if (!q) break;
        p = q + sp->len;
    }
    *out = lv;
    return true;
}

/* lines(s) -> List#(String): split at "\n" (a "\r" before it is dropped);
 * a final line ending does not start another line (Rust's lines). */
static bool b_lines(KpVM *vm, KpValue *a, int n, KpValue *out) {
    (void)n;
    KpString *s = kp_lib_str(vm, "lines", a, 0);
    if (!s) return false;
    KpValue lv;
    KpList *l = kp_lib_new_list(vm, 0, &lv);
    if (!l) return false;
    const char *p = s->data, *end = s->data + s->len;
    while (p < end) {
        const char *q = memchr(p, '\n', (size_t)(end - p));
        const char *e = q ? q : end;
        const char *e2 = (e > p && e[-1] == '\r') ? e - 1 : e;
        if (!push_piece(vm, l, p, (size_t)(e2 - p))) { kp_drop(vm, lv); return false; }
        p = q ? q + 1 : end;
    }
    *out = lv;
    return true;
}

/* join(xs, sep) -> String: the texts of the elements between separators. */
static bool b_join(KpVM *vm, KpValue *a, int n, KpValue *out) {
    (void)n;
    KpList *l = kp_lib_list(vm, "join", a, 0, false);
    KpString *sep = l ? kp_lib_str(vm, "join", a, 1) : NULL;
    if (!sep) return false;
    /* all strings (the common case): one exact allocation */
    size_t total = 0;
    bool all_str = true;
    for (uint32_t i = 0; i < l->len && all_str; i++) {
        KpValue v = kp_deref(l->items[i]);
        if (v.tag != KP_T_STR) all_str = false;
        else total += ((KpString *)v.p)->len + (i ? sep->len : 0);
    }
    if (all_str) {
        KpString *r = str_alloc(vm, total);
        if (!r) return false;
        char *w = r->data;
        for (uint32_t i = 0; i < l->len; i++) {
            KpString *x = kp_deref(l->items[i]).p;
            if (i) { memcpy(w, sep->data, sep->len); w += sep->len; }
            memcpy(w, x->data, x->len);
            w += x->len;
        }
        str_finish(r, out);
        return true;
    }
    KpBuf b = {0};
    bool ok = true;
    for (uint32_t i = 0; i < l->len && ok; i++) {
        if (i) ok = kp_buf_add(vm, &b, sep->data, sep->len);
        ok = ok && kp_lib_text(vm, &b, l->items[i]);
    }
    ok = ok && ret_str(vm, b.data, b.len, out);
    kp_buf_free(vm, &b);
    return ok;
}

static bool offset_ok(KpVM *vm, const char *fn, KpString *s, int64_t i) {
    if (i < 0 || i > (int64_t)s->len)
        return kp_vm_error(vm, "%s: offset %" PRId64 " is out of range for a string of %u bytes", fn, i, s->len);
    if (!kp_utf8_boundary(s, i))
        return kp_vm_error(vm, "%s: offset %" PRId64 " is inside a character (offsets are bytes; use find or chars)", fn, i);
    return true;
}

/* substr(s, from, to) -> String: bytes from..to (exclusive). */
static bool b_substr(KpVM *vm, KpValue *a, int n, KpValue *out) {
    (void)n;
    KpString *s = kp_lib_str(vm, "substr", a, 0);
    int64_t x, y;
    if (!s || !kp_lib_int(vm, "substr", a, 1, &x) || !kp_lib_int(vm, "substr", a, 2, &y)) return false;
    if (x < 0 || y < x || y > (int64_t)s->len)
        return kp_vm_error(vm, "substr(%" PRId64 ", %" PRId64 ") out of range for a string of %u bytes", x, y, s->len);
    if (!offset_ok(vm, "substr", s, x) || !offset_ok(vm, "substr", s, y)) return false;
    return ret_str(vm, s->data + x, (size_t)(y - x), out);
}

/* The character at byte offset i of s: its length in bytes (invalid
 * UTF-8: one byte). */
static int char_len(const KpString *s, uint32_t i) {
    uint32_t cp;
    int k = kp_utf8_decode((const unsigned char *)s->data + i, s->len - i, &cp);
    return k ? k : 1;
}

/* chars(s) -> List#(String): the characters, each a string. */
static bool b_chars(KpVM *vm, KpValue *a, int n, KpValue *out) {
    (void)n;
    KpString *s = kp_lib_str(vm, "chars", a, 0);
    if (!s) return false;
    KpValue lv;
    KpList *l = kp_lib_new_list(vm, s->len, &lv);
    if (!l) return false;
    for (uint32_t i = 0; i < s->len;) {
        int k = char_len(s, i);
        if (!push_piece(vm, l, s->data + i, (size_t)k)) { kp_drop(vm, lv); return false; }
        i += (uint32_t)k;
    }
    *out = lv;
    return true;
}

/* bytes(s) -> List#(Int): the bytes, 0..255. */
static bool b_bytes(KpVM *vm, KpValue *a, int n, KpValue *out) {
    (void)n;
    KpString *s = kp_lib_str(vm, "bytes", a, 0);
    if (!s) return false;
    KpValue lv;
    KpList *l = kp_lib_new_list(vm, s->len, &lv);
    if (!l) return false;
    for (uint32_t i = 0; i < s->len; i++) l->items[l->len++] = kp_int((unsigned char)s->data[i]);
    *out = lv;
    return true;
}

/* ord(s) -> Int: the code point of the first character. */
static bool b_ord(KpVM *vm, KpValue *a, int n, KpValue *out) {
    (void)n;
    KpString *s = kp_lib_str(vm, "ord", a, 0);
    if (!s) return false;
    if (!s->len) return kp_vm_error(vm, "ord of an empty string");
    uint32_t cp;
    if (!kp_utf8_decode((const unsigned char *)s->data, s->len, &cp))
        return kp_vm_error(vm, "ord: the string does not start with valid UTF-8 (byte 0x%02X)", (unsigned char)s->data[0]);
    *out = kp_int(cp);
    return true;
}

/* chr(code) -> String: the character with that code point. */
static bool b_chr(KpVM *vm, KpValue *a, int n, KpValue *out) {
    (void)n;
    int64_t c;
    if (!kp_lib_int(vm, "chr", a, 0, &c)) return false;
    if (c < 0 || c > 0x10FFFF)
        return kp_vm_error(vm, "chr(%" PRId64 "): a code point is 0..0x10FFFF", c);
    if (c >= 0xD800 && c <= 0xDFFF)
        return kp_vm_error(vm, "chr(%" PRId64 "): surrogate code points (0xD800..0xDFFF) are not characters and would make invalid UTF-8", c);
    char enc[4];
    return ret_str(vm, enc, (size_t)kp_utf8_encode((uint32_t)c, enc), out);
}

/* Copies s without `_` between digits and without surrounding spaces into
 * buf; false when it does not fit or a `_` is misplaced. */
static bool clean_number(const KpString *s, char *buf, size_t cap) {
    size_t i = 0, j = s->len, k = 0;
    while (i < j && is_space(s->data[i])) i++;
    while (j > i && is_space(s->data[j - 1])) j--;
    for (size_t p = i; p < j; p++) {
        char c = s->data[p];
        if (c == '_') {
            /* only between two digits/letters */
            if (p == i || p + 1 == j || !isalnum((unsigned char)s->data[p - 1]) || !isalnum((unsigned char)s->data[p + 1]))
                return false;
            continue;
        }
        if (!c || k + 1 >= cap) return false;
        buf[k++] = c;
    }
    buf[k] = 0;
    return true;
}

static int digit_of(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'z') return c - 'a' + 10;
    if (c >= 'A' && c <= 'Z') return c - 'A' + 10;
    return 99;
}

/* parse_int(s, .base = 10) -> Int. */
static bool b_parse_int(KpVM *vm, KpValue *a, int n, KpValue *out) {
    (void)n;
    KpString *s = kp_lib_str(vm, "parse_int", a, 0);
    int64_t base;
    if (!s || !kp_lib_int(vm, "parse_int", a, 1, &base)) return false;
    if (base < 2 || base > 36) return kp_vm_error(vm, "parse_int: base %" PRId64 " is not in 2..36", base);
    char buf[128];
    if (!clean_number(s, buf, sizeof buf) || !buf[0]) goto bad;
    const char *p = buf;
    bool neg = false;
    if (*p == '+' || *p == '-') neg = *p++ == '-';
    if (p[0] == '0' && (p[1] == 'x' || p[1] == 'X' || p[1] == 'b' || p[1] == 'B' || p[1] == 'o' || p[1] == 'O')) {
        int pb = (p[1] | 32) == 'x' ? 16 : (p[1] | 32) == 'b' ? 2 : 8;
        if (base == 10 || base == pb) { base = pb; p += 2; }
    }
    if (!*p) goto bad;
    uint64_t v = 0, lim = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    for (; *p; p++) {
        int d = digit_of(*p);
        if (d >= base) goto bad;
        if (v > (lim - (uint64_t)d) / (uint64_t)base)
            return kp_vm_error(vm, "parse_int(\"%.60s\"): out of the Int range", s->data);
        v = v * (uint64_t)base + (uint64_t)d;
    }
    *out = kp_int(neg ? (int64_t)(0 - v) : (int64_t)v);
    return true;
bad:
    return kp_vm_error(vm, "parse_int(\"%.60s\"): not an integer in base %" PRId64, s->data, base);
}

/* parse_float(s) -> Float. */
static bool b_parse_float(KpVM *vm, KpValue *a, int n, KpValue *out) {
    (void)n;
    KpString *s = kp_lib_str(vm, "parse_float", a, 0);
    if (!s) return false;
    char buf[400];
    if (!clean_number(s, buf, sizeof buf) || !buf[0]) goto bad;
    const char *p = buf;
    if (*p == '+' || *p == '-') p++;
    if (!isdigit((unsigned char)*p) && *p != '.' && strcasecmp(p, "inf") && strcasecmp(p, "infinity") && strcasecmp(p, "nan"))
        goto bad;
    char *end;
    double d = strtod(buf, &end);
    if (*end || end == buf) goto bad;
    *out = kp_float(d);
    return true;
bad:
    return kp_vm_error(vm, "parse_float(\"%.60s\"): not a number", s->data);
}

const KpBuiltin kp_builtins_string[] = {
    {"find", b_find, "s: &String, pat: &String", "Int", 0},
    {"has", b_has, "s: &String, sub: &String", "Bool", 0},
    {"contains", b_has, "s: &String, sub: &String", "Bool", 0},
    {"rfind", b_rfind, "s: &String, pat: &String", "Int", 0},
    {"replace", b_replace, "s: &String, from: &String, to: &String", "String", KP_BF_CTX},
    {"upper", b_upper, "s: &String", "String", KP_BF_CTX},
    {"lower", b_lower, "s: &String", "String", KP_BF_CTX},
    {"trim", b_trim, "s: &String", "String", KP_BF_CTX},
    {"trim_start", b_trim_start, "s: &String", "String", KP_BF_CTX},
    {"trim_end", b_trim_end, "s: &String", "String", KP_BF_CTX},
    {"starts_with", b_starts_with, "s: &String, prefix: &String", "Bool", 0},
    {"ends_with", b_ends_with, "s: &String, suffix: &String", "Bool", 0},
    {"repeat", b_repeat, "s: &String, n: Int", "String", KP_BF_CTX},
    {"split", b_split, "s: &String, sep: &String", "List#(String)", KP_BF_CTX},
    {"lines", b_lines, "s: &String", "List#(String)", KP_BF_CTX},
    {"join", b_join, "xs: &List#(T), sep: &String", "String", KP_BF_CTX},
    {"substr", b_substr, "s: &String, from: Int, to: Int", "String", KP_BF_CTX},
    {"chars", b_chars, "s: &String", "List#(String)", KP_BF_CTX},
    {"bytes", b_bytes, "s: &String", "List#(Int)", KP_BF_CTX | KP_BF_BY_RESULT},
    {"ord", b_ord, "s: &String", "Int", 0},
    {"chr", b_chr, "code: Int", "String", KP_BF_CTX},
    {"parse_int", b_parse_int, "s: &String, .base: Int = 10", "Int", 0},
    {"parse_float", b_parse_float, "s: &String", "Float", 0},
    {NULL, NULL, NULL, NULL, 0},
};
